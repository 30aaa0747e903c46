// An image keeps its id through save and push however it came in: loaded (an OCI layout
// with a gzip layer, a docker archive whose plain layer tars GNU tar made), imported (gzip
// and plain tarballs) or committed. The layer bytes that came in are kept in the content
// store, so neither save nor push has to make a layer's tar again from its unpacked files
// (which seldom hashes to the diff id the config names). A fresh berthd that has pulled
// nothing, so no pulled blob can stand in.
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { TestDaemon, alpineRootfs, busyboxLayout, tarOf } from '../helpers/berthd.js';
import { TestRegistry } from '../registry/registries.js';

const BUSYBOX_ID = 'sha256:654fc8fd836e35f4a64586bddf8f59b9029b48cf80f520834c6c98ca8ab5def9';
/** The busybox layout's one layer, a gzip blob. */
const BUSYBOX_LAYER_BLOB = 'sha256:5c3b447848a98e48dce106cb3e6acbd4fb6f9b26ee778798137349ce01f4d3c1';

let daemon: TestDaemon;
let registry: TestRegistry;
let scratch: string;

before(async () => {
  scratch = mkdtempSync(join(tmpdir(), 'berth-save-ids-'));
  [daemon, registry] = await Promise.all([TestDaemon.start(), TestRegistry.start()]);
});

after(async () => {
  await daemon?.cleanup();
  await registry?.stop();
  rmSync(scratch, { recursive: true, force: true });
});

async function ok(...args: string[]): Promise<string> {
  const r = await daemon.docker(args, { timeoutMs: 120_000 });
  assert.equal(r.code, 0, `docker ${args.join(' ')} failed (${r.code}): ${r.stderr}\n${daemon.log.slice(-2000)}`);
  return r.stdout;
}

async function imageId(name: string): Promise<string> {
  return (await ok('image', 'inspect', '-f', '{{.Id}}', name)).trim();
}

async function diffIds(name: string): Promise<string[]> {
  return JSON.parse(await ok('image', 'inspect', '-f', '{{json .RootFS.Layers}}', name)) as string[];
}

function sha256(data: Buffer | string): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

function tarFile(file: string, member: string): Buffer {
  const r = spawnSync('tar', ['-xOf', file, member], { timeout: 60_000, maxBuffer: 256 * 1024 * 1024 });
  assert.equal(r.status, 0, r.stderr?.toString());
  return r.stdout;
}

/**
 * Saves `name` and checks the archive holds it under its own id: the config blob is the
 * image's config byte for byte, and each layer is a blob named by, and hashing to, its diff id.
 */
async function savesWithItsId(name: string): Promise<string> {
  const id = await imageId(name);
  const layers = await diffIds(name);
  const file = join(scratch, `${name.replace(/[/:]/g, '-')}.tar`);
  await ok('save', '-o', file, name);
  const manifest = JSON.parse(tarFile(file, 'manifest.json').toString('utf8')) as Array<{ Config: string; Layers: string[] }>;
  assert.equal(manifest.length, 1);
  assert.equal(manifest[0]!.Config, `blobs/sha256/${id.slice(7)}`, `${name} was saved under another id`);
  assert.deepEqual(manifest[0]!.Layers, layers.map((d) => `blobs/sha256/${d.slice(7)}`));
  assert.equal(sha256(tarFile(file, manifest[0]!.Config)), id);
  for (const layer of manifest[0]!.Layers) assert.equal(sha256(tarFile(file, layer)), `sha256:${layer.slice('blobs/sha256/'.length)}`);
  return file;
}

interface RegistryManifest {
  mediaType: string;
  config: { mediaType: string; digest: string };
  layers: Array<{ mediaType: string; digest: string; size: number }>;
}

/** Pushes `name` as `repo:tag` on the test registry and reads the manifest back. */
async function pushed(name: string, repo: string, tag = 'v1'): Promise<RegistryManifest> {
  const target = `${registry.host}/${repo}:${tag}`;
  await ok('tag', name, target);
  await ok('push', target);
  const res = await fetch(`http://${registry.host}/v2/${repo}/manifests/${tag}`, {
    headers: { accept: 'application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json' },
  });
  assert.equal(res.status, 200);
  return JSON.parse(await res.text()) as RegistryManifest;
}

/** The uncompressed digest of a blob on the test registry (gunzipped when it is gzip). */
async function registryDiffId(repo: string, digest: string): Promise<string> {
  const res = await fetch(`http://${registry.host}/v2/${repo}/blobs/${digest}`);
  assert.equal(res.status, 200);
  const blob = Buffer.from(await res.arrayBuffer());
  assert.equal(sha256(blob), digest);
  const tar = blob[0] === 0x1f && blob[1] === 0x8b ? spawnSync('gzip', ['-dc'], { input: blob, maxBuffer: 256 * 1024 * 1024 }).stdout : blob;
  return sha256(tar);
}

/** Checks the pushed manifest names the local image: config digest = id, layers carry its diff ids. */
async function pushesWithItsId(name: string, repo: string): Promise<RegistryManifest> {
  const id = await imageId(name);
  const layers = await diffIds(name);
  const manifest = await pushed(name, repo);
  assert.equal(manifest.mediaType, 'application/vnd.docker.distribution.manifest.v2+json');
  assert.equal(manifest.config.digest, id, `${name} was pushed under another id`);
  assert.equal(manifest.layers.length, layers.length);
  for (const [i, layer] of manifest.layers.entries()) assert.equal(await registryDiffId(repo, layer.digest), layers[i]);
  // And the registry's image pulls back as this very image.
  await ok('rmi', `${registry.host}/${repo}:v1`);
  await ok('pull', `${registry.host}/${repo}:v1`);
  assert.equal(await imageId(`${registry.host}/${repo}:v1`), id);
  return manifest;
}

/**
 * A docker save archive (the classic format: <id>/layer.tar) of one image whose layer is a
 * plain tar GNU tar made: './' names, owner names, GNU headers, padding to 10 KiB records.
 */
function gnuTarArchive(name: string, files: Record<string, string>): { archive: string; diffId: string } {
  const dir = join(scratch, `archive-${name.replace(/[/:]/g, '-')}`);
  const rootfs = join(dir, 'rootfs');
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(join(rootfs, path, '..'), { recursive: true });
    writeFileSync(join(rootfs, path), content);
  }
  const out = join(dir, 'out');
  mkdirSync(join(out, 'layer0'), { recursive: true });
  assert.equal(spawnSync('tar', ['-C', rootfs, '--format=gnu', '-cf', join(out, 'layer0', 'layer.tar'), '.']).status, 0);
  const diffId = sha256(readFileSync(join(out, 'layer0', 'layer.tar')));
  const config = JSON.stringify({
    architecture: 'amd64',
    os: 'linux',
    created: '2024-05-01T00:00:00Z',
    config: { Cmd: ['/bin/sh'] },
    rootfs: { type: 'layers', diff_ids: [diffId] },
    history: [{ created: '2024-05-01T00:00:00Z', created_by: 'tar' }],
  });
  writeFileSync(join(out, 'config.json'), config);
  writeFileSync(join(out, 'manifest.json'), JSON.stringify([{ Config: 'config.json', RepoTags: [name], Layers: ['layer0/layer.tar'] }]));
  const archive = join(dir, 'archive.tar');
  tarOf(out, archive);
  return { archive, diffId };
}

function blobsDir(): string {
  return join(daemon.dataRoot, 'content', 'blobs', 'sha256');
}

describe('docker CLI: an image keeps its id through save and push', () => {
  it('a loaded OCI layout (gzip layer) saves, loads back and pushes with its id; the layer goes up as the blob that came in', async () => {
    const tar = join(scratch, 'busybox-layout.tar');
    tarOf(busyboxLayout, tar);
    await ok('load', '-i', tar);
    assert.equal(await imageId('busybox:1.38.0-musl'), BUSYBOX_ID);
    const file = await savesWithItsId('busybox:1.38.0-musl');
    await ok('rmi', 'busybox:1.38.0-musl');
    await ok('load', '-i', file);
    assert.equal(await imageId('busybox:1.38.0-musl'), BUSYBOX_ID);

    const manifest = await pushesWithItsId('busybox:1.38.0-musl', 'loaded/busybox');
    assert.deepEqual(manifest.layers.map((l) => [l.mediaType, l.digest]), [['application/vnd.docker.image.rootfs.diff.tar.gzip', BUSYBOX_LAYER_BLOB]]);
  });

  it('a loaded docker archive whose layer tar GNU tar made saves and pushes with its id', async () => {
    const { archive, diffId } = gnuTarArchive('gnutar:v1', { 'etc/motd': 'made by GNU tar\n', 'usr/share/doc/readme': 'docs\n' });
    const loaded = await ok('load', '-i', archive);
    assert.match(loaded, /Loaded image: gnutar:v1/);
    assert.deepEqual(await diffIds('gnutar:v1'), [diffId]);
    const id = await imageId('gnutar:v1');
    await savesWithItsId('gnutar:v1');
    const manifest = await pushesWithItsId('gnutar:v1', 'loaded/gnutar');
    // A plain tar goes up gzipped, as docker pushes it.
    assert.equal(manifest.layers[0]!.mediaType, 'application/vnd.docker.image.rootfs.diff.tar.gzip');
    assert.equal(await imageId('gnutar:v1'), id);
  });

  it('docker import of a gzip tarball saves with its id, and pushes the very tarball as its layer', async () => {
    const id = (await ok('import', alpineRootfs, 'alpine-import:v1')).trim();
    assert.equal(await imageId('alpine-import:v1'), id);
    await savesWithItsId('alpine-import:v1');
    const manifest = await pushesWithItsId('alpine-import:v1', 'imported/alpine');
    assert.deepEqual(manifest.layers.map((l) => [l.mediaType, l.digest]), [['application/vnd.docker.image.rootfs.diff.tar.gzip', sha256(readFileSync(alpineRootfs))]]);
  });

  it('docker import of a plain tar from stdin saves and pushes with its id', async () => {
    const rootfs = join(scratch, 'plain-rootfs');
    mkdirSync(join(rootfs, 'etc'), { recursive: true });
    writeFileSync(join(rootfs, 'etc', 'imported.txt'), 'imported from a plain tar\n');
    const tar = join(scratch, 'plain.tar');
    assert.equal(spawnSync('tar', ['-C', rootfs, '-cf', tar, '.']).status, 0);
    const r = await daemon.docker(['import', '-', 'plain-import:v1'], { input: readFileSync(tar), timeoutMs: 60_000 });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(await diffIds('plain-import:v1'), [sha256(readFileSync(tar))]);
    await savesWithItsId('plain-import:v1');
    await pushesWithItsId('plain-import:v1', 'imported/plain');
  });

  it('a committed container (a whiteout, an opaque dir, a hardlink) saves and pushes with its id', async () => {
    await ok('run', '--name', 'committer', 'busybox:1.38.0-musl', 'sh', '-c',
      'rm /bin/vi && rm -rf /home && mkdir /home && echo new > /home/file && mkdir -p /data && echo x > /data/a && ln /data/a /data/b && chmod 0600 /data/a');
    await ok('commit', 'committer', 'committed:v1');
    await ok('rm', 'committer');
    await savesWithItsId('committed:v1');
    await pushesWithItsId('committed:v1', 'committed/busybox');
  });

  it('the kept layer blobs stay while an image uses them (collection at start), and go with the last image', async () => {
    const { archive } = gnuTarArchive('kept:v1', { 'kept.txt': 'kept while the image lives\n' });
    await ok('load', '-i', archive);
    const [diffId] = await diffIds('kept:v1');
    // The plain tar is kept as it came: its digest is the diff id.
    assert.ok(existsSync(join(blobsDir(), diffId!.slice(7))), 'the loaded layer was not kept');
    const then = new Date(Date.now() - 120_000);
    for (const name of readdirSync(blobsDir())) utimesSync(join(blobsDir(), name), then, then);
    await daemon.restart();
    await new Promise((resolve) => setTimeout(resolve, 1000));
    assert.ok(existsSync(join(blobsDir(), diffId!.slice(7))), 'collection at start took a kept layer');
    await savesWithItsId('kept:v1');
    await ok('rmi', 'kept:v1');
    assert.ok(!existsSync(join(blobsDir(), diffId!.slice(7))), 'the kept layer outlived its image');
  });
  it('without its kept blob, a layer goes up as its tar made again: the image pulls back, under another id', async () => {
    const { archive, diffId } = gnuTarArchive('lost:v1', { 'lost.txt': 'its blob is gone\n' });
    await ok('load', '-i', archive);
    const id = await imageId('lost:v1');
    rmSync(join(blobsDir(), diffId.slice(7)));
    const manifest = await pushed('lost:v1', 'lost/image');
    assert.notEqual(manifest.config.digest, id);
    const res = await fetch(`http://${registry.host}/v2/lost/image/blobs/${manifest.config.digest}`);
    const config = JSON.parse(await res.text()) as { rootfs: { diff_ids: string[] } };
    assert.notEqual(config.rootfs.diff_ids[0], diffId);
    assert.equal(await registryDiffId('lost/image', manifest.layers[0]!.digest), config.rootfs.diff_ids[0]);
    await ok('pull', `${registry.host}/lost/image:v1`);
    assert.equal(await imageId(`${registry.host}/lost/image:v1`), manifest.config.digest);
  });
});
