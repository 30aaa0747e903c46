// The real docker CLI against a private berthd: version, import, images, tag, inspect,
// history, rmi, load, prune, a daemon restart and a kill -9, and bad input of every kind.
import * as assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { TarWriter } from '../../src/archive/tar-writer.js';
import { TestDaemon, alpineRootfs, busyboxLayout, tarOf } from '../helpers/berthd.js';

let daemon: TestDaemon;
let scratch: string;

before(async () => {
  daemon = await TestDaemon.start();
  scratch = mkdtempSync(join(tmpdir(), 'berth-compat-'));
});

after(async () => {
  await daemon?.cleanup();
  rmSync(scratch, { recursive: true, force: true });
});

async function docker(...args: string[]) {
  return daemon.docker(args);
}

async function ok(...args: string[]): Promise<string> {
  const r = await docker(...args);
  assert.equal(r.code, 0, `docker ${args.join(' ')} failed (${r.code}): ${r.stderr}\n${daemon.log.slice(-2000)}`);
  return r.stdout;
}

/** A tar built entry by entry, so tests can write what GNU tar would refuse to. */
async function makeTar(entries: Array<{ name: string; type?: 'file' | 'directory' | 'symlink' | 'hardlink' | 'char'; body?: string; linkname?: string }>): Promise<string> {
  const writer = new TarWriter();
  const chunks: Buffer[] = [];
  writer.stream.on('data', (c: Buffer) => chunks.push(c));
  const ended = new Promise((resolve) => writer.stream.on('end', resolve));
  for (const e of entries) {
    const body = e.body === undefined ? undefined : Buffer.from(e.body);
    await writer.add(
      { name: e.name, type: e.type ?? 'file', mode: 0o644, size: body?.length ?? 0, linkname: e.linkname ?? '', devmajor: 1, devminor: 3 },
      body,
    );
  }
  await writer.finish();
  await ended;
  const path = join(scratch, `t-${Math.random().toString(16).slice(2)}.tar`);
  writeFileSync(path, Buffer.concat(chunks));
  return path;
}

describe('docker CLI against berthd: images', () => {
  it('docker version negotiates the API and names the engine', async () => {
    const out = await ok('version', '--format', '{{.Server.APIVersion}} {{.Server.Os}} {{.Client.APIVersion}}');
    assert.match(out.trim(), /^1\.47 linux 1\.47$/);
  });

  it('imports alpine from a file with a tag, -m and -c, and lists it', async () => {
    const id = (await ok('import', '-m', 'alpine rootfs', '-c', 'CMD ["/bin/sh"]', '-c', 'ENV A=1', alpineRootfs, 'alpine:3.20.3')).trim();
    assert.match(id, /^sha256:[a-f0-9]{64}$/);
    const list = await ok('images', '--format', '{{.Repository}}:{{.Tag}} {{.ID}}');
    assert.match(list, new RegExp(`^alpine:3.20.3 ${id.slice(7, 19)}$`, 'm'));
    const cfg = await ok('image', 'inspect', '--format', '{{json .Config.Cmd}} {{json .Config.Env}} {{.Comment}}', 'alpine:3.20.3');
    assert.equal(cfg.trim(), '["/bin/sh"] ["A=1"] alpine rootfs');
  });

  it('imports from stdin, and the same layer is not unpacked twice', async () => {
    const before = readdirSync(join(daemon.dataRoot, 'snapshots', 'snapshots')).length;
    const r = await daemon.docker(['import', '-', 'alpine:stdin'], { input: await import('node:fs').then((fs) => fs.readFileSync(alpineRootfs)) });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(readdirSync(join(daemon.dataRoot, 'snapshots', 'snapshots')).length, before, 'a second snapshot was made for the same layer');
    assert.equal((await ok('image', 'inspect', '--format', '{{index .RootFS.Layers 0}}', 'alpine:stdin')).trim(),
      (await ok('image', 'inspect', '--format', '{{index .RootFS.Layers 0}}', 'alpine:3.20.3')).trim());
  });

  it('loads the official busybox image from an OCI layout archive', async () => {
    const tar = join(scratch, 'busybox-layout.tar');
    tarOf(busyboxLayout, tar);
    const out = await ok('load', '-i', tar);
    assert.match(out, /Loaded image: busybox:1\.38\.0-musl/);
    const id = (await ok('image', 'inspect', '--format', '{{.Id}}', 'busybox:1.38.0-musl')).trim();
    // The image id is the digest of the config blob, kept byte for byte.
    assert.equal(id, 'sha256:654fc8fd836e35f4a64586bddf8f59b9029b48cf80f520834c6c98ca8ab5def9');
    const history = await ok('history', 'busybox:1.38.0-musl');
    assert.match(history, /^IMAGE\s+CREATED\s+CREATED BY\s+SIZE\s+COMMENT$/m);
    assert.match(history, /654fc8fd836e/);
  });

  it('tags, lists with filters and quiet ids, and untags', async () => {
    await ok('tag', 'busybox:1.38.0-musl', 'localhost:5000/team/bb:v1');
    await ok('tag', 'busybox:1.38.0-musl', 'busybox');
    const refs = await ok('images', '--format', '{{.Repository}}:{{.Tag}}', '--filter', 'reference=busybox');
    assert.deepEqual(refs.trim().split('\n').sort(), ['busybox:1.38.0-musl', 'busybox:latest']);
    const scoped = await ok('images', '--format', '{{.Repository}}', 'localhost:5000/team/*');
    assert.equal(scoped.trim(), 'localhost:5000/team/bb');
    const quiet = (await ok('images', '-q')).trim().split('\n');
    assert.ok(quiet.every((l) => /^[a-f0-9]{12}$/.test(l)), quiet.join(','));
    const untag = await ok('rmi', 'localhost:5000/team/bb:v1');
    assert.equal(untag.trim(), 'Untagged: localhost:5000/team/bb:v1');
    assert.equal((await ok('images', '-q', 'localhost:5000/team/bb')).trim(), '');
  });

  it('refuses to delete by id an image with several tags unless forced, then removes its layers', async () => {
    const id = (await ok('image', 'inspect', '--format', '{{.Id}}', 'alpine:3.20.3')).trim();
    await ok('tag', 'alpine:3.20.3', 'mirror/alpine:copy');
    const r = await docker('rmi', id.slice(7, 19));
    assert.equal(r.code, 1);
    assert.match(r.stderr, /Error response from daemon: conflict: unable to delete [a-f0-9]{12} \(must be forced\) - image is referenced in multiple repositories/);
    const out = await ok('rmi', '-f', id.slice(7, 19));
    assert.match(out, /Untagged: alpine:3.20.3/);
    assert.match(out, /Untagged: mirror\/alpine:copy/);
    assert.match(out, new RegExp(`Deleted: ${id}`));
    assert.equal((await ok('images', '-q', '--no-trunc')).includes(id), false);
    // Its layer is still used by alpine:stdin (another import of the same tarball).
    assert.match(await ok('history', 'alpine:stdin'), /Imported from -/);
  });

  it('images and tags survive a clean restart and a kill -9', async () => {
    await ok('tag', 'busybox:1.38.0-musl', 'survivor:1');
    await daemon.restart('SIGTERM');
    assert.match(await ok('images'), /survivor\s+1\s+654fc8fd836e/);
    await daemon.restart('SIGKILL');
    assert.match(await ok('images'), /survivor\s+1\s+654fc8fd836e/);
    assert.match(await ok('image', 'inspect', '--format', '{{.Os}}/{{.Architecture}}', 'survivor:1'), /linux\/amd64/);
  });

  it('answers an unknown image with 404 and docker\'s message', async () => {
    const r = await docker('image', 'inspect', 'nosuchimage');
    assert.equal(r.code, 1);
    assert.match(r.stderr, /No such image: nosuchimage/);
    const rmi = await docker('rmi', 'nosuchimage:v9');
    assert.match(rmi.stderr, /Error response from daemon: No such image: nosuchimage:v9/);
  });

  it('rejects invalid references with docker\'s message, from the daemon too', async () => {
    const r = await docker('tag', 'busybox:1.38.0-musl', 'Bad/Name');
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /invalid reference format: repository name \(\w+\) must be lowercase/);
    // The docker CLI checks that one itself; import's repo goes to the daemon unchecked.
    const imp = await docker('import', alpineRootfs, 'UPPER:case');
    assert.notEqual(imp.code, 0);
    assert.match(imp.stderr, /invalid reference format/);
  });

  it('rejects garbage instead of a tar, leaving nothing behind', async () => {
    const garbage = join(scratch, 'garbage.tar');
    writeFileSync(garbage, Buffer.from('this is not a tar archive, not even close'.repeat(20)));
    const before = await ok('images', '-q', '--no-trunc');
    const r = await docker('import', garbage, 'garbage:1');
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /tar|archive/i);
    assert.equal(await ok('images', '-q', '--no-trunc'), before);
    const load = await docker('load', '-i', garbage);
    assert.notEqual(load.code, 0);
  });

  it('contains a hostile tar: .. and absolute paths and symlink escapes write nothing outside', async () => {
    const outside = mkdtempSync(join(tmpdir(), 'berth-sentinel-'));
    try {
      const dotdot = await makeTar([{ name: `../../../../../../..${outside}/pwned`, body: 'x' }]);
      const r1 = await docker('import', dotdot, 'hostile:dotdot');
      assert.notEqual(r1.code, 0, 'a .. path must be refused');
      assert.match(r1.stderr, /\.\./);
      const link = await makeTar([
        { name: 'escape', type: 'symlink', linkname: outside },
        { name: 'escape/pwned', body: 'x' },
        { name: 'abs', type: 'symlink', linkname: '/' },
        { name: `abs${outside}/pwned2`, body: 'x' },
      ]);
      await docker('import', link, 'hostile:link');
      const hard = await makeTar([{ name: 'passwd', type: 'hardlink', linkname: '/etc/passwd' }]);
      await docker('import', hard, 'hostile:hard');
      assert.deepEqual(readdirSync(outside), [], 'something was written outside the layer');
      assert.equal(existsSync('/pwned'), false);
    } finally {
      rmSync(outside, { recursive: true, force: true });
    }
  });

  it('prunes dangling images', async () => {
    const id = (await ok('import', alpineRootfs)).trim();
    const dangling = await ok('images', '-q', '--filter', 'dangling=true', '--no-trunc');
    assert.ok(dangling.includes(id));
    const out = await ok('image', 'prune', '-f');
    assert.match(out, new RegExp(`deleted: ${id}`));
    assert.match(out, /Total reclaimed space: /);
    assert.equal((await ok('images', '-q', '--filter', 'dangling=true')).trim(), '');
  });

  it('reports disk usage', async () => {
    const out = await ok('system', 'df');
    assert.match(out, /^Images\s+\d+\s+0\s+\S+/m);
  });

  it('refuses a client API version above its own', async () => {
    const r = await daemon.docker(['version'], {});
    assert.equal(r.code, 0);
    const tooNew = await import('../helpers/berthd.js').then(({ run }) =>
      run('docker', ['version'], { env: { ...daemon.env, DOCKER_API_VERSION: '1.99' } }),
    );
    assert.match(tooNew.stderr, /client version 1\.99 is too new\. Maximum supported API version is 1\.47/);
  });
});
