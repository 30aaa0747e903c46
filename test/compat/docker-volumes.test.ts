// Volumes through the real docker CLI: named volumes made on first use and by `volume create`,
// data that outlives its container, copy-up of the image's files into a new volume, anonymous
// volumes (-v /path, an image's VOLUME) removed by `rm -v` and `run --rm`, --mount, read-only
// mounts, a volume in use refused, ls/inspect/rm/prune, and a hostile image whose symlink
// would lead the copy-up out of its root.
import * as assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { daemonWithBusybox, tarOf, until } from '../helpers/berthd.js';

const fixture = daemonWithBusybox();
const { docker, ok } = fixture;

async function volumeNames(): Promise<string[]> {
  return (await ok('volume', 'ls', '-q')).trim().split('\n').filter(Boolean).sort();
}

describe('docker CLI against berthd: volumes', () => {
  it('a named volume is made on first use and keeps its data after its container is gone', async () => {
    await ok('run', '--rm', '-v', 'data:/data', 'busybox', 'sh', '-c', 'echo kept > /data/file');
    assert.deepEqual(await volumeNames(), ['data']);
    assert.equal(await ok('run', '--rm', '-v', 'data:/data:ro', 'busybox', 'cat', '/data/file'), 'kept\n');
    const ro = await docker('run', '--rm', '-v', 'data:/data:ro', 'busybox', 'sh', '-c', 'echo x > /data/file');
    assert.notEqual(ro.code, 0);
    assert.match(ro.stderr, /Read-only file system/);
    const mountpoint = (await ok('volume', 'inspect', '-f', '{{.Mountpoint}}', 'data')).trim();
    assert.equal(mountpoint, join(fixture.daemon.dataRoot, 'volumes', 'data', '_data'));
    assert.equal(readFileSync(join(mountpoint, 'file'), 'utf8'), 'kept\n');
    // system df counts it, with its size.
    const df = await ok('system', 'df', '--format', '{{.Type}} {{.TotalCount}} {{.Size}}');
    assert.match(df, /^Local Volumes 1 5B$/m);
  });

  it('volume create, ls with filters, inspect; a volume in use cannot be removed; rm and prune', async () => {
    assert.equal((await ok('volume', 'create', '--label', 'tier=db', 'made')).trim(), 'made');
    assert.equal((await ok('volume', 'create', 'made')).trim(), 'made', 'create is idempotent');
    assert.equal((await ok('volume', 'ls', '-q', '-f', 'label=tier=db')).trim(), 'made');
    assert.equal((await ok('volume', 'ls', '-q', '-f', 'name=^ma.e$')).trim(), 'made', 'a name filter is a regular expression');
    const maybe = await docker('volume', 'ls', '-f', 'dangling=maybe');
    assert.notEqual(maybe.code, 0);
    assert.match(maybe.stderr, /invalid filter 'dangling=maybe'/);
    assert.equal((await ok('volume', 'inspect', '-f', '{{.Driver}} {{.Scope}} {{.Labels}}', 'made')).trim(), 'local local map[tier:db]');
    await ok('create', '--name', 'holder', '-v', 'made:/m', 'busybox', 'true');
    // system df -v lists it as the container list does (command, created, status).
    const holderRow = (await ok('system', 'df', '-v')).split('\n').find((l) => l.includes('holder'));
    assert.match(holderRow ?? '', /"true"\s+\d+\s+\S+\s+(Less than a second|\d+ seconds?) ago\s+Created\s+holder/);
    const busy = await docker('volume', 'rm', 'made');
    assert.notEqual(busy.code, 0);
    assert.match(busy.stderr, /volume is in use - \[[0-9a-f]{64}\]/);
    assert.equal((await ok('ps', '-aq', '--no-trunc', '-f', 'volume=made')).trim(), (await ok('inspect', '-f', '{{.Id}}', 'holder')).trim());
    await ok('rm', 'holder');
    await ok('volume', 'rm', 'made');
    const missing = await docker('volume', 'inspect', 'made');
    assert.match(missing.stderr, /no such volume/);
    const bad = await docker('volume', 'create', 'bad/name');
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /includes invalid characters for a local volume name/);
    // prune takes unused anonymous volumes; -a named ones too.
    await ok('volume', 'create', 'unused');
    await ok('create', '--name', 'anon-holder', '-v', '/scratch', 'busybox', 'true');
    const anon = (await ok('inspect', '-f', '{{range .Mounts}}{{.Name}}{{end}}', 'anon-holder')).trim();
    assert.match(anon, /^[0-9a-f]{64}$/);
    await ok('rm', 'anon-holder');
    const pruned = await ok('volume', 'prune', '-f');
    assert.match(pruned, new RegExp(anon));
    assert.ok((await volumeNames()).includes('unused'));
    await ok('volume', 'prune', '-a', '-f');
    assert.ok(!(await volumeNames()).includes('unused'));
  });

  it('an image VOLUME gets an anonymous volume with the image\'s files; rm -v and run --rm remove it', async () => {
    const build = join(fixture.daemon.root, 'volimage');
    mkdirSync(join(build, 'config'), { recursive: true });
    writeFileSync(join(build, 'config', 'app.conf'), 'from the image\n');
    // busybox with /config/app.conf, and VOLUME /config.
    await ok('create', '--name', 'withconf', 'busybox', 'true');
    await ok('cp', join(build, 'config'), 'withconf:/config');
    await ok('commit', '-c', 'VOLUME /config', 'withconf', 'busybox:withconf');
    await ok('rm', 'withconf');
    const before = await volumeNames();
    await ok('run', '--name', 'reader', 'busybox:withconf', 'cat', '/config/app.conf');
    assert.equal(await ok('logs', 'reader'), 'from the image\n');
    const added = (await volumeNames()).filter((v) => !before.includes(v));
    assert.equal(added.length, 1);
    assert.match(added[0]!, /^[0-9a-f]{64}$/);
    await ok('rm', '-v', 'reader');
    assert.deepEqual(await volumeNames(), before, 'rm -v removes the anonymous volume');
    assert.equal(await ok('run', '--rm', 'busybox:withconf', 'cat', '/config/app.conf'), 'from the image\n');
    assert.deepEqual(await volumeNames(), before, 'run --rm removes it too');
  });

  it('--mount type=volume, bind and tmpfs; inspect shows the mounts', async () => {
    const host = join(fixture.daemon.root, 'hostdir');
    mkdirSync(host, { recursive: true });
    writeFileSync(join(host, 'h.txt'), 'host\n');
    const out = await ok(
      'run', '--name', 'mounts',
      '--mount', 'type=volume,source=mnt-vol,target=/v',
      '--mount', `type=bind,source=${host},target=/h,readonly`,
      '--mount', 'type=tmpfs,target=/t',
      'busybox', 'sh', '-c', 'echo v > /v/f && cat /h/h.txt && grep " /t " /proc/mounts | cut -d" " -f3',
    );
    assert.equal(out, 'host\ntmpfs\n');
    const mounts = JSON.parse(await ok('inspect', '-f', '{{json .Mounts}}', 'mounts')) as Array<{ Type: string; Name?: string; Source: string; Destination: string; RW: boolean }>;
    const byDest = Object.fromEntries(mounts.map((m) => [m.Destination, m]));
    assert.equal(byDest['/v']?.Type, 'volume');
    assert.equal(byDest['/v']?.Name, 'mnt-vol');
    assert.equal(byDest['/h']?.Type, 'bind');
    assert.equal(byDest['/h']?.Source, host);
    assert.equal(byDest['/h']?.RW, false);
    await ok('rm', '-v', 'mounts');
    assert.ok((await volumeNames()).includes('mnt-vol'), 'rm -v keeps named volumes');
  });

  it('docker cp reads and writes a volume and a bound folder, running or stopped', async () => {
    const host = join(fixture.daemon.root, 'cp-bound');
    mkdirSync(host, { recursive: true });
    writeFileSync(join(host, 'on-host.txt'), 'host side\n');
    await ok('run', '-d', '--name', 'cpvol', '-v', 'cpdata:/data', '-v', `${host}:/bound`, 'busybox', 'sh', '-c', 'echo in volume > /data/inside.txt; sleep 300');
    try {
      const out = join(fixture.daemon.root, 'cp-out');
      mkdirSync(out, { recursive: true });
      await until('the container wrote its file', async () => (await docker('exec', 'cpvol', 'cat', '/data/inside.txt')).code === 0);
      await ok('cp', 'cpvol:/data/inside.txt', join(out, 'inside.txt'));
      assert.equal(readFileSync(join(out, 'inside.txt'), 'utf8'), 'in volume\n');
      await ok('cp', 'cpvol:/bound/on-host.txt', join(out, 'on-host.txt'));
      assert.equal(readFileSync(join(out, 'on-host.txt'), 'utf8'), 'host side\n');
      writeFileSync(join(out, 'sent.txt'), 'sent\n');
      await ok('cp', join(out, 'sent.txt'), 'cpvol:/data/sent.txt');
      assert.equal(await ok('exec', 'cpvol', 'cat', '/data/sent.txt'), 'sent\n');
      await ok('stop', '-t', '0', 'cpvol');
      // Stopped: the volume is still what cp sees.
      await ok('cp', 'cpvol:/data', join(out, 'data-dir'));
      assert.equal(readFileSync(join(out, 'data-dir', 'sent.txt'), 'utf8'), 'sent\n');
      assert.equal(await ok('run', '--rm', '-v', 'cpdata:/d', 'busybox', 'cat', '/d/sent.txt'), 'sent\n');
    } finally {
      await docker('rm', '-f', 'cpvol');
    }
  });

  it('copy-up cannot be led out of the image\'s root by a symlink', async () => {
    // An image whose /config is a symlink to the host's /etc: the copy must stay inside the image.
    const build = join(fixture.daemon.root, 'evil');
    mkdirSync(build, { recursive: true });
    symlinkSync('/etc', join(build, 'config'));
    const tar = join(fixture.daemon.root, 'evil.tar');
    tarOf(build, tar);
    await ok('import', '-c', 'VOLUME /config/ssl', tar, 'evil:1');
    const r = await docker('create', '--name', 'evil', 'evil:1', 'true');
    assert.equal(r.code, 0, r.stderr);
    await docker('start', 'evil');
    const name = (await ok('inspect', '-f', '{{range .Mounts}}{{.Name}}{{end}}', 'evil')).trim();
    const mountpoint = join(fixture.daemon.dataRoot, 'volumes', name, '_data');
    assert.ok(existsSync(mountpoint));
    // The host's /etc/ssl was not copied into the volume.
    assert.ok(!existsSync(join(mountpoint, 'certs')), 'host files were copied into the volume');
    await docker('rm', '-v', 'evil');
  });
});
