// `docker save` through a private berthd: the archive docker 25+ writes (an OCI image layout
// plus manifest.json and repositories), read back by berth's and docker's load and by skopeo.
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startDockerd } from '../../bench/lib.js';
import { TestDaemon, cliMain, run } from '../helpers/berthd.js';
import { BUSYBOX_TAG, TestRegistry, skopeo } from '../registry/registries.js';

let daemon: TestDaemon;
let registry: TestRegistry;
let scratch: string;
let pulled: string;

before(async () => {
  scratch = mkdtempSync(join(tmpdir(), 'berth-save-'));
  [daemon, registry] = await Promise.all([TestDaemon.start(), TestRegistry.start()]);
  await registry.pushBusybox();
  pulled = `${registry.host}/library/busybox:${BUSYBOX_TAG}`;
  await ok('pull', pulled);
});

after(async () => {
  await daemon?.cleanup();
  await registry?.stop();
  rmSync(scratch, { recursive: true, force: true });
});

async function ok(...args: string[]): Promise<{ stdout: string; stderr: string }> {
  const r = await daemon.docker(args, { timeoutMs: 120_000 });
  assert.equal(r.code, 0, `docker ${args.join(' ')} failed (${r.code}): ${r.stderr}\n${daemon.log.slice(-2000)}`);
  return r;
}

async function imageId(name: string): Promise<string> {
  return (await ok('image', 'inspect', '-f', '{{.Id}}', name)).stdout.trim();
}

function tarList(file: string): string[] {
  const r = spawnSync('tar', ['-tf', file], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.trim().split('\n');
}

function tarFile(file: string, member: string): string {
  const r = spawnSync('tar', ['-xOf', file, member], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout;
}

describe('docker CLI: save', () => {
  it('writes docker\'s files: an OCI layout with manifest.json and repositories, layers named by diff id', async () => {
    const file = join(scratch, 'busybox.tar');
    await ok('save', '-o', file, pulled);
    const id = await imageId(pulled);
    const diffIds = JSON.parse((await ok('image', 'inspect', '-f', '{{json .RootFS.Layers}}', pulled)).stdout) as string[];
    const files = tarList(file);
    assert.deepEqual(files.slice(0, 2), ['blobs/', 'blobs/sha256/']);
    assert.deepEqual(files.slice(-4), ['index.json', 'manifest.json', 'oci-layout', 'repositories']);
    assert.ok(files.includes(`blobs/sha256/${id.slice(7)}`), files.join('\n'));
    for (const d of diffIds) assert.ok(files.includes(`blobs/sha256/${d.slice(7)}`), `layer ${d} is not in ${files.join('\n')}`);
    const manifest = JSON.parse(tarFile(file, 'manifest.json')) as Array<{ Config: string; RepoTags: string[]; Layers: string[] }>;
    assert.deepEqual(manifest, [{ Config: `blobs/sha256/${id.slice(7)}`, RepoTags: [pulled], Layers: diffIds.map((d) => `blobs/sha256/${d.slice(7)}`) }]);
    const repositories = JSON.parse(tarFile(file, 'repositories')) as Record<string, Record<string, string>>;
    assert.deepEqual(repositories, { [`${registry.host}/library/busybox`]: { [BUSYBOX_TAG]: diffIds.at(-1)!.slice(7) } });
    const index = JSON.parse(tarFile(file, 'index.json')) as { manifests: Array<{ annotations: Record<string, string> }> };
    assert.deepEqual(index.manifests[0]!.annotations, { 'io.containerd.image.name': pulled, 'org.opencontainers.image.ref.name': BUSYBOX_TAG });
    assert.equal(tarFile(file, 'oci-layout'), '{"imageLayoutVersion": "1.0.0"}');
  });

  it('save, rmi, load: the same image id and tag come back (pulled layers, and a committed one on top)', async () => {
    await ok('run', '--name', 'saver', pulled, 'sh', '-c', 'echo saved > /saved.txt');
    await ok('commit', 'saver', 'saved:v1');
    await ok('rm', 'saver');
    const ids = { pulled: await imageId(pulled), saved: await imageId('saved:v1') };
    const file = join(scratch, 'two.tar');
    await ok('save', '-o', file, pulled, 'saved:v1');
    await ok('rmi', pulled, 'saved:v1');
    const loaded = await ok('load', '-i', file);
    assert.match(loaded.stdout, /Loaded image: saved:v1/);
    assert.equal(await imageId(pulled), ids.pulled);
    assert.equal(await imageId('saved:v1'), ids.saved);
    const out = await ok('run', '--rm', 'saved:v1', 'cat', '/saved.txt');
    assert.equal(out.stdout, 'saved\n');
  });

  it('streams to a pipe: docker save | tar -t lists the files; a missing image is docker\'s error', async () => {
    const r = spawnSync('bash', ['-c', `set -o pipefail; docker save ${pulled} | tar -t`], { env: daemon.env, encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^blobs\/\nblobs\/sha256\/\n/);
    assert.match(r.stdout, /index\.json\nmanifest\.json\noci-layout\nrepositories\n$/);
    const missing = await daemon.docker(['save', '-o', join(scratch, 'none.tar'), 'no-such-image:v9']);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /No such image: no-such-image:v9/);
  });

  it('berth save: to a file, to a pipe, and docker\'s errors', async (t) => {
    if ((await daemon.berth(['save', '--help'])).code !== 0) return t.skip('berth save is not wired into the CLI yet');
    const file = join(scratch, 'berth.tar');
    const r = await daemon.berth(['save', '-o', file, pulled]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(tarList(file).slice(-4), ['index.json', 'manifest.json', 'oci-layout', 'repositories']);
    const piped = spawnSync('bash', ['-c', `set -o pipefail; "${process.execPath}" "${cliMain}" save ${pulled} | tar -t`], { env: daemon.env, encoding: 'utf8', timeout: 60_000 });
    assert.equal(piped.status, 0, piped.stderr);
    assert.match(piped.stdout, /manifest\.json\n/);
    const missing = await daemon.berth(['save', '-o', join(scratch, 'none.tar'), 'no-such-image:v9']);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /No such image: no-such-image:v9/);
    const badDir = await daemon.berth(['save', '-o', join(scratch, 'no', 'dir.tar'), pulled]);
    assert.equal(badDir.code, 1);
    assert.match(badDir.stderr, /failed to save image: invalid output path: directory ".*no" does not exist/);
  });

  it('skopeo reads the archive as docker-archive and as oci-archive', async () => {
    const file = join(scratch, 'skopeo.tar');
    await ok('save', '-o', file, pulled);
    const id = await imageId(pulled);
    const docker = JSON.parse(await skopeo(['inspect', '--config', `docker-archive:${file}`])) as { rootfs: { diff_ids: string[] } };
    const oci = JSON.parse(await skopeo(['inspect', '--config', `oci-archive:${file}`])) as { rootfs: { diff_ids: string[] } };
    assert.deepEqual(docker.rootfs, oci.rootfs);
    const raw = await skopeo(['inspect', '--raw', `oci-archive:${file}`]);
    assert.equal((JSON.parse(raw) as { config: { digest: string } }).config.digest, id);
    // And skopeo copies it to a registry, from which it pulls as the same image.
    await skopeo(['copy', '--dest-tls-verify=false', `docker-archive:${file}`, `docker://${registry.host}/library/copied:v1`]);
    await ok('pull', `${registry.host}/library/copied:v1`);
    assert.equal(await imageId(`${registry.host}/library/copied:v1`), id);
  });

  it('an image loaded as an OCI layout saves with its id (its layer is the kept pulled blob)', async () => {
    await daemon.loadBusybox();
    const before = await imageId('busybox:latest');
    const file = join(scratch, 'loaded.tar');
    await ok('save', '-o', file, 'busybox:latest');
    await ok('rmi', 'busybox:latest', `busybox:${BUSYBOX_TAG}`);
    await ok('load', '-i', file);
    assert.equal(await imageId('busybox:latest'), before);
  });

  it('a layer from a foreign tar (imported) whose tar is made again still saves an archive that loads', async () => {
    const rootfs = join(scratch, 'rootfs');
    const tar = join(scratch, 'rootfs.tar');
    spawnSync('mkdir', ['-p', join(rootfs, 'etc')]);
    spawnSync('bash', ['-c', `echo imported > ${join(rootfs, 'etc', 'imported.txt')}`]);
    assert.equal(spawnSync('tar', ['-C', rootfs, '-cf', tar, '.'], { timeout: 30_000 }).status, 0);
    await ok('import', tar, 'imported:v1');
    // The import kept the tar as it came (a plain tar: its digest is the diff id); without it,
    // save makes the layer's tar again.
    const [diffId] = JSON.parse((await ok('image', 'inspect', '-f', '{{json .RootFS.Layers}}', 'imported:v1')).stdout) as string[];
    rmSync(join(daemon.dataRoot, 'content', 'blobs', 'sha256', diffId!.slice(7)));
    const file = join(scratch, 'imported.tar');
    await ok('save', '-o', file, 'imported:v1');
    await ok('rmi', 'imported:v1');
    const loaded = await ok('load', '-i', file);
    assert.match(loaded.stdout, /Loaded image: imported:v1/);
    const layers = JSON.parse((await ok('image', 'inspect', '-f', '{{json .RootFS.Layers}}', 'imported:v1')).stdout) as string[];
    assert.ok(tarList(file).includes(`blobs/sha256/${layers[0]!.slice(7)}`));
  });

  it('the real dockerd loads berth\'s archive as the same image', async () => {
    const file = join(scratch, 'for-dockerd.tar');
    await ok('save', '-o', file, pulled);
    const dockerd = await startDockerd();
    try {
      const env = { ...daemon.env, DOCKER_HOST: `unix://${dockerd.socket}` };
      const load = await run('docker', ['load', '-i', file], { env, timeoutMs: 120_000 });
      assert.equal(load.code, 0, load.stderr);
      assert.match(load.stdout, new RegExp(`Loaded image: ${pulled.replace(/\./g, '\\.')}`));
      const inspect = await run('docker', ['image', 'inspect', '-f', '{{.Id}}', pulled], { env, timeoutMs: 30_000 });
      assert.equal(inspect.stdout.trim(), await imageId(pulled));
      // And berth loads what dockerd saves.
      const back = join(scratch, 'from-dockerd.tar');
      const save = await run('docker', ['save', '-o', back, pulled], { env, timeoutMs: 120_000 });
      assert.equal(save.code, 0, save.stderr);
      assert.ok(readFileSync(back).length > 0);
      await ok('rmi', pulled);
      await ok('load', '-i', back);
      assert.equal(await imageId(pulled), inspect.stdout.trim());
    } finally {
      await dockerd.stop();
    }
  });
});
