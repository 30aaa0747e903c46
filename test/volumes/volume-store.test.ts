// The volume store: create (idempotent, names checked), remove (refused while in use), what a
// crash leaves (a folder without its record goes; a record that is not JSON stops the start
// and keeps the files), and copy-up that stays inside the image's root.
import * as assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { Conflict, InvalidArgument, NotFound, Unavailable } from '../../src/errors/errors.js';
import { VolumeStore } from '../../src/volumes/volume-store.js';

const scratch = mkdtempSync(join(tmpdir(), 'berth-volumes-'));
after(() => rmSync(scratch, { recursive: true, force: true }));
let n = 0;
const fresh = () => join(scratch, `root-${n++}`);

describe('volume store', () => {
  it('creates once per name, refuses bad names and driver options, removes what no container uses', async () => {
    const store = await VolumeStore.open(fresh());
    const a = await store.create({ Name: 'data', Labels: { k: 'v' } });
    assert.deepEqual(await store.create({ Name: 'data' }), a);
    assert.ok(existsSync(store.mountpoint('data')));
    await assert.rejects(store.create({ Name: 'a/b' }), InvalidArgument);
    await assert.rejects(store.create({ Name: 'xy', DriverOpts: { type: 'nfs' } }), InvalidArgument);
    await assert.rejects(store.create({ Name: 'xy', Driver: 'nfs' }), NotFound);
    const anon = await store.create({}, { anonymous: true });
    assert.match(anon.name, /^[0-9a-f]{64}$/);
    assert.equal(anon.anonymous, true);
    await assert.rejects(store.remove('data', ['c1']), (e: Error) => e instanceof Conflict && /volume is in use - \[c1\]/.test(e.message));
    await store.remove('data', []);
    assert.ok(!existsSync(join(store.mountpoint('data'), '..')));
    assert.throws(() => store.get('data'), NotFound);
  });

  it('after a crash: a folder without its record goes; a record that is not JSON keeps the files and stops the start', async () => {
    const root = fresh();
    const store = await VolumeStore.open(root);
    await store.create({ Name: 'kept' });
    writeFileSync(join(store.mountpoint('kept'), 'precious'), 'x');
    mkdirSync(join(root, 'volumes', 'halfmade', '_data'), { recursive: true });
    const again = await VolumeStore.open(root);
    assert.deepEqual(again.list().map((v) => v.name), ['kept']);
    assert.ok(!existsSync(join(root, 'volumes', 'halfmade')));
    writeFileSync(join(root, 'volumes', 'kept', 'volume.json'), '{not json');
    await assert.rejects(VolumeStore.open(root), (e: Error) => e instanceof Unavailable && /volume kept: .* is not valid JSON/.test(e.message));
    assert.equal(readFileSync(join(root, 'volumes', 'kept', '_data', 'precious'), 'utf8'), 'x');
  });

  it('copy-up copies the image\'s folder into an empty volume, and only inside the image\'s root', async () => {
    const store = await VolumeStore.open(fresh());
    const rootfs = join(scratch, `rootfs-${n++}`);
    mkdirSync(join(rootfs, 'etc', 'app'), { recursive: true });
    writeFileSync(join(rootfs, 'etc', 'app', 'conf'), 'c');
    symlinkSync('/etc', join(rootfs, 'escape'));
    await store.create({ Name: 'conf' });
    await store.copyUp('conf', rootfs, '/etc/app');
    assert.equal(readFileSync(join(store.mountpoint('conf'), 'conf'), 'utf8'), 'c');
    // A symlink to the host's /etc resolves inside the root: rootfs/etc, not the host's.
    await store.create({ Name: 'esc' });
    await store.copyUp('esc', rootfs, '/escape');
    assert.ok(existsSync(join(store.mountpoint('esc'), 'app', 'conf')));
    assert.ok(!existsSync(join(store.mountpoint('esc'), 'passwd')), 'the host\'s /etc was copied');
    // Not empty: left as it is.
    writeFileSync(join(rootfs, 'etc', 'app', 'later'), 'l');
    await store.copyUp('conf', rootfs, '/etc/app');
    assert.ok(!existsSync(join(store.mountpoint('conf'), 'later')));
  });
});
