import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';

import { BerthError } from '../../src/errors/errors.js';
import { makedev, mknod, S_IFCHR } from '../../src/native/native.js';
import { readFileInRoot, resolveUser } from '../../src/runtime/user.js';

let dir: string;
let root: string;
let outside: string;

const PASSWD = [
  'root:x:0:0:root:/root:/bin/sh',
  '# a comment',
  'daemon:x:1:1:daemon:/usr/sbin:/bin/false',
  'broken:x:notanumber:0::/:/bin/sh',
  'app:x:1000:1000::/home/app:/bin/sh',
  'nobody:x:65534:65534:nobody:/home:/bin/false',
  '',
].join('\n');
const GROUP = ['root:x:0:', 'wheel:x:10:root,app', 'staff:x:50:app', 'app:x:1000:', 'nogroup:x:65534:', ''].join('\n');

function reset(): void {
  rmSync(root, { recursive: true, force: true });
  mkdirSync(join(root, 'etc'), { recursive: true });
  writeFileSync(join(root, 'etc/passwd'), PASSWD);
  writeFileSync(join(root, 'etc/group'), GROUP);
}

async function rejects(promise: Promise<unknown>, message: string | RegExp): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof BerthError);
    assert.equal(err.code, 'INVALID_ARGUMENT');
    if (typeof message === 'string') assert.equal(err.message, message);
    else assert.match(err.message, message);
    return true;
  });
}

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'berth-user-'));
  root = join(dir, 'rootfs');
  outside = join(dir, 'outside');
  mkdirSync(outside);
  // A host file outside the root with a user that must never be found.
  writeFileSync(join(outside, 'passwd'), 'leak:x:4242:4242::/:/bin/sh\nroot:x:7:7::/:/bin/sh\n');
});

beforeEach(reset);

after(() => rmSync(dir, { recursive: true, force: true }));

describe('resolveUser', () => {
  it('defaults to root with its supplementary groups', async () => {
    assert.deepEqual(await resolveUser(root, undefined), { uid: 0, gid: 0, additionalGids: [0, 10] });
    assert.deepEqual(await resolveUser(root, ''), { uid: 0, gid: 0, additionalGids: [0, 10] });
  });

  it('a name, a uid in passwd, and a uid that is not', async () => {
    assert.deepEqual(await resolveUser(root, 'nobody'), { uid: 65534, gid: 65534, additionalGids: [65534] });
    assert.deepEqual(await resolveUser(root, 'app'), { uid: 1000, gid: 1000, additionalGids: [1000, 10, 50] });
    assert.deepEqual(await resolveUser(root, '1000'), { uid: 1000, gid: 1000, additionalGids: [1000, 10, 50] });
    assert.deepEqual(await resolveUser(root, '4321'), { uid: 4321, gid: 0, additionalGids: [0] });
  });

  it("an unknown name fails with Docker's message; a malformed entry never matches", async () => {
    await rejects(resolveUser(root, 'foo'), 'unable to find user foo: no matching entries in passwd file');
    await rejects(resolveUser(root, 'broken'), 'unable to find user broken: no matching entries in passwd file');
    await rejects(resolveUser(root, '99999999999'), /uids and gids must be in range/);
  });

  it('user:group and user:gid set the primary group, without supplementary groups', async () => {
    assert.deepEqual(await resolveUser(root, 'app:staff'), { uid: 1000, gid: 50, additionalGids: [50] });
    assert.deepEqual(await resolveUser(root, 'nobody:777'), { uid: 65534, gid: 777, additionalGids: [777] });
    assert.deepEqual(await resolveUser(root, '2000:2000'), { uid: 2000, gid: 2000, additionalGids: [2000] });
    await rejects(resolveUser(root, 'app:nogroupatall'), 'unable to find group nogroupatall: no matching entries in group file');
  });

  it('--group-add by name or gid', async () => {
    assert.deepEqual(await resolveUser(root, 'nobody', ['staff', '4242', 'wheel']), { uid: 65534, gid: 65534, additionalGids: [65534, 50, 4242, 10] });
    await rejects(resolveUser(root, 'nobody', ['ghosts']), 'unable to find group ghosts: no matching entries in group file');
  });

  it('without /etc/passwd and /etc/group only numeric ids work', async () => {
    rmSync(join(root, 'etc'), { recursive: true });
    assert.deepEqual(await resolveUser(root, undefined), { uid: 0, gid: 0, additionalGids: [0] });
    assert.deepEqual(await resolveUser(root, '1:2'), { uid: 1, gid: 2, additionalGids: [2] });
    await rejects(resolveUser(root, 'root'), 'unable to find user root: no matching entries in passwd file');
  });
});

describe('resolveUser: hostile files stay inside the root', () => {
  it("a passwd symlinked to the host's /etc/shadow reads nothing of the host", async () => {
    unlinkSync(join(root, 'etc/passwd'));
    symlinkSync('/etc/shadow', join(root, 'etc/passwd'));
    // Inside the root /etc/shadow does not exist, so there is no passwd at all.
    await rejects(resolveUser(root, 'root'), 'unable to find user root: no matching entries in passwd file');
    assert.equal(readFileInRoot(root, 'etc/passwd'), undefined);
  });

  it('absolute, relative and directory symlinks out of the root resolve inside it', async () => {
    unlinkSync(join(root, 'etc/passwd'));
    symlinkSync(join(outside, 'passwd'), join(root, 'etc/passwd'));
    await rejects(resolveUser(root, 'leak'), 'unable to find user leak: no matching entries in passwd file');
    unlinkSync(join(root, 'etc/passwd'));
    symlinkSync(`../../../../../../../../..${outside}/passwd`, join(root, 'etc/passwd'));
    await rejects(resolveUser(root, 'leak'), /unable to find user leak/);
    rmSync(join(root, 'etc'), { recursive: true });
    symlinkSync(outside, join(root, 'etc'));
    await rejects(resolveUser(root, 'leak'), /unable to find user leak/);
    // ...while a symlink that stays inside is followed.
    rmSync(join(root, 'etc'));
    mkdirSync(join(root, 'real-etc'));
    writeFileSync(join(root, 'real-etc/passwd'), 'inside:x:5:5::/:/bin/sh\n');
    symlinkSync('/real-etc', join(root, 'etc'));
    assert.deepEqual(await resolveUser(root, 'inside'), { uid: 5, gid: 5, additionalGids: [5] });
  });

  it('a FIFO or a device as /etc/passwd is refused without blocking', async () => {
    unlinkSync(join(root, 'etc/passwd'));
    assert.equal(spawnSync('mkfifo', [join(root, 'etc/passwd')]).status, 0);
    await rejects(resolveUser(root, 'root'), '/etc/passwd in the container is not a regular file');
    unlinkSync(join(root, 'etc/passwd'));
    mknod(join(root, 'etc/passwd'), S_IFCHR | 0o644, makedev(1, 5));
    await rejects(resolveUser(root, 'root'), '/etc/passwd in the container is not a regular file');
  });

  it('a file past the size cap is refused', () => {
    writeFileSync(join(root, 'etc/big'), 'x'.repeat(5000));
    assert.throws(() => readFileInRoot(root, 'etc/big', 4096), /larger than 4096 bytes/);
    assert.equal(readFileInRoot(root, 'etc/big', 5000)?.length, 5000);
  });
});
