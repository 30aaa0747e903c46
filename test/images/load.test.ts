// `load` over real stores: docker save archives and OCI layouts (tarred, gzipped), nested
// indexes, each layer kept as it came and recorded in the layer sources, and hostile or
// broken archives, which must be refused with a clear message and leave neither an image,
// nor scratch files, nor an unpacked layer behind.
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, mkdtempSync, readdirSync, rmSync, statSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import { TarWriter, type TarWriterHeader } from '../../src/archive/tar-writer.js';
import { LocalContentStore } from '../../src/content/content-store.js';
import { InvalidArgument } from '../../src/errors/errors.js';
import { ImageStore } from '../../src/images/image-store.js';
import { loadArchive, type LoadProgress } from '../../src/images/load.js';
import { MetadataStore } from '../../src/metadata/metadata-store.js';
import { emptyMetadata } from '../../src/metadata/schema.js';
import { LayerSources } from '../../src/registry/layer-sources.js';
import { OverlaySnapshotter } from '../../src/snapshots/overlay-snapshotter.js';
import { busyboxLayout } from '../helpers/berthd.js';

const BUSYBOX_ID = 'sha256:654fc8fd836e35f4a64586bddf8f59b9029b48cf80f520834c6c98ca8ab5def9';
const BUSYBOX_MANIFEST = 'sha256:a34ce92094b7b100a98fbd21411a92825f6827b1bc5f6918c253516c90556998';

let scratch: string;

before(() => {
  scratch = mkdtempSync(join(tmpdir(), 'image-load-'));
});

after(() => {
  rmSync(scratch, { recursive: true, force: true });
});

let n = 0;
interface Stores {
  store: ImageStore;
  content: LocalContentStore;
  sources: LayerSources;
  tmp: string;
}

async function fresh(): Promise<Stores> {
  const root = join(scratch, `s${n++}`);
  const content = await LocalContentStore.open(join(root, 'content'));
  const meta = await MetadataStore.open(join(root, 'metadata.json'), emptyMetadata);
  const snapshots = new OverlaySnapshotter(join(root, 'snapshots'));
  await snapshots.cleanup();
  const tmp = join(root, 'tmp');
  return { store: new ImageStore(content, snapshots, meta), content, sources: new LayerSources(root), tmp };
}

type Entry = [TarWriterHeader, (Buffer | string)?];

async function tarBytes(entries: Entry[]): Promise<Buffer> {
  const writer = new TarWriter();
  const chunks: Buffer[] = [];
  writer.stream.on('data', (c: Buffer) => chunks.push(c));
  const ended = new Promise((resolve) => writer.stream.on('end', resolve));
  for (const [header, body] of entries) {
    const data = body === undefined ? undefined : Buffer.from(body);
    await writer.add({ mode: 0o644, size: data?.length ?? 0, mtime: new Date(0), ...header }, data);
  }
  await writer.finish();
  await ended;
  return Buffer.concat(chunks);
}

const file = (name: string, body: Buffer | string): Entry => [{ name, type: 'file' }, body];
const sha256 = (data: Buffer | string) => `sha256:${createHash('sha256').update(data).digest('hex')}`;

async function layer(files: Record<string, string>): Promise<{ tar: Buffer; diffId: string }> {
  const tar = await tarBytes(Object.entries(files).map(([k, v]) => file(k, v)));
  return { tar, diffId: sha256(tar) };
}

function configOf(diffIds: string[], architecture = 'amd64'): string {
  return JSON.stringify({ architecture, os: 'linux', created: '2024-03-01T00:00:00Z', config: { Cmd: ['sh'] }, rootfs: { type: 'layers', diff_ids: diffIds } });
}

async function load({ store, sources, tmp }: Stores, archive: Buffer): Promise<{ names: string[]; untagged: string[]; progress: LoadProgress[] }> {
  const progress: LoadProgress[] = [];
  const result = await loadArchive(store, sources, Readable.from([archive]), (p) => progress.push(p), tmp);
  return { ...result, progress };
}

async function refuses(archive: Buffer, message: RegExp): Promise<void> {
  const { store, sources, tmp } = await fresh();
  await assert.rejects(loadArchive(store, sources, Readable.from([archive]), () => undefined, tmp), (err: unknown) => {
    assert.ok(err instanceof InvalidArgument || (err as Error).name === 'NotFound', `unexpected ${String(err)}`);
    assert.match((err as Error).message, message);
    return true;
  });
  assert.deepEqual(await store.list(), [], 'a refused archive left an image');
  assert.deepEqual(readdirSync(tmp), [], 'a refused archive left scratch files');
  for await (const info of store.snapshots.walk()) assert.notEqual(info.kind, 'active', `a refused archive left the unpacked layer ${info.key}`);
}

/** An OCI layout: blobs by digest, index.json with the given entries. */
async function ociLayout(blobs: Array<Buffer | string>, index: object, extra: Entry[] = []): Promise<Buffer> {
  return tarBytes([
    file('oci-layout', '{"imageLayoutVersion":"1.0.0"}'),
    file('index.json', JSON.stringify(index)),
    [{ name: 'blobs/', type: 'directory', mode: 0o755 }],
    [{ name: 'blobs/sha256/', type: 'directory', mode: 0o755 }],
    ...blobs.map((b) => file(`blobs/sha256/${sha256(b).slice(7)}`, b)),
    ...extra,
  ]);
}

function manifestOf(config: string, layers: Buffer[]): string {
  return JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(config), size: Buffer.byteLength(config) },
    layers: layers.map((l) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: sha256(l), size: l.length })),
  });
}

const descriptor = (blob: string, mediaType: string, extra: object = {}) => ({ mediaType, digest: sha256(blob), size: Buffer.byteLength(blob), ...extra });

describe('load', () => {
  it('loads the busybox OCI layout, tarred, keeping the config and manifest byte for byte', async () => {
    const { store, content, sources, tmp } = await fresh();
    const archive = join(scratch, 'busybox.tar');
    assert.equal(spawnSync('tar', ['-C', busyboxLayout, '-cf', archive, '.']).status, 0);
    const progress: LoadProgress[] = [];
    const result = await loadArchive(store, sources, createReadStream(archive), (p) => progress.push(p), tmp);
    assert.deepEqual(result, { names: ['busybox:1.38.0-musl'], untagged: [] });
    assert.deepEqual(progress, [{ status: 'Loading layer', id: '0f8918d0fe4f' }]);
    const image = await store.resolve('busybox:1.38.0-musl');
    assert.equal(image.id, BUSYBOX_ID);
    assert.deepEqual(image.record.manifests, [BUSYBOX_MANIFEST]);
    assert.ok(await content.info(BUSYBOX_MANIFEST), 'the manifest blob was not kept');
    assert.deepEqual(readdirSync(tmp), []);
  });

  it('loads a gzipped docker save archive, with and without tags', async () => {
    const stores = await fresh();
    const { store } = stores;
    const l1 = await layer({ 'one.txt': '1' });
    const l2 = await layer({ 'two.txt': '2' });
    const tagged = configOf([l1.diffId, l2.diffId]);
    const untagged = configOf([l1.diffId], 'amd64').replace('2024-03-01', '2024-03-02');
    const archive = await tarBytes([
      file('manifest.json', JSON.stringify([
        { Config: 'tagged.json', RepoTags: ['example.com/team/app:2', 'app:latest'], Layers: ['l1/layer.tar', 'l2/layer.tar'] },
        { Config: 'untagged.json', RepoTags: null, Layers: ['l1/layer.tar'] },
      ])),
      file('tagged.json', tagged),
      file('untagged.json', untagged),
      file('l1/layer.tar', l1.tar),
      file('l2/layer.tar', l2.tar),
    ]);
    const result = await load(stores, gzipSync(archive));
    assert.deepEqual(result.names, ['example.com/team/app:2', 'app:latest']);
    assert.deepEqual(result.untagged, [sha256(untagged)]);
    assert.equal((await store.resolve('app')).id, sha256(tagged));
    assert.equal((await store.resolve('example.com/team/app:2')).record.layers.length, 2);
  });

  it('follows links inside the archive by name, never on the host', async () => {
    const stores = await fresh();
    const l1 = await layer({ 'x': 'x' });
    const config = configOf([l1.diffId]);
    const archive = await tarBytes([
      file('manifest.json', JSON.stringify([{ Config: 'cfg-link.json', RepoTags: ['linked:1'], Layers: ['layer-link.tar'] }])),
      file('real/config.json', config),
      [{ name: 'cfg-link.json', type: 'symlink', linkname: 'real/config.json' }],
      file('real/layer.tar', l1.tar),
      [{ name: 'layer-link.tar', type: 'hardlink', linkname: 'real/layer.tar' }],
    ]);
    assert.deepEqual((await load(stores, archive)).names, ['linked:1']);
    // A link to a host file names an archive entry of that name, which there is not.
    await refuses(
      await tarBytes([
        file('manifest.json', JSON.stringify([{ Config: 'evil.json', RepoTags: ['evil:1'], Layers: [] }])),
        [{ name: 'evil.json', type: 'symlink', linkname: '/etc/passwd' }],
      ]),
      /invalid archive: it names "evil\.json" but has no such file/,
    );
  });

  it('keeps names with .. inside the archive: they can neither place files nor reach outside', async () => {
    const stores = await fresh();
    const outside = mkdtempSync(join(tmpdir(), 'load-sentinel-'));
    try {
      const l1 = await layer({ a: 'a' });
      const archive = await tarBytes([
        // `../../<outside>/c.json` is the archive's `<outside>/c.json`, a name like any other.
        file(`../../../../../..${outside}/pwned`, 'x'),
        file('manifest.json', JSON.stringify([{ Config: `../../c.json`, RepoTags: ['dots:1'], Layers: ['x/../l.tar'] }])),
        file('c.json', configOf([l1.diffId])),
        file('l.tar', l1.tar),
        [{ name: 'up', type: 'symlink', linkname: '../../../../etc' }],
      ]);
      assert.deepEqual((await load(stores, archive)).names, ['dots:1']);
      assert.deepEqual(readdirSync(outside), [], 'the archive wrote outside its scratch folder');
      assert.deepEqual(readdirSync(stores.tmp), []);
    } finally {
      rmSync(outside, { recursive: true, force: true });
    }
  });

  it('refuses what is not an image archive', async () => {
    await refuses(await tarBytes([]), /invalid archive: it is empty/);
    await refuses(await tarBytes([file('readme.txt', 'hi')]), /neither manifest\.json \(docker save\) nor index\.json \(OCI image layout\)/);
    await refuses(await tarBytes([file('manifest.json', '{not json')]), /manifest\.json is not valid JSON/);
    await refuses(await tarBytes([file('manifest.json', '{}')]), /manifest\.json is not a list/);
    await refuses(await tarBytes([file('manifest.json', '[{"Config":"c.json"}]')]), /lacks Config or Layers/);
  });

  it('refuses layers that do not match the config, without keeping an image', async () => {
    const l1 = await layer({ a: 'a' });
    const other = await layer({ b: 'b' });
    await refuses(
      await tarBytes([
        file('manifest.json', JSON.stringify([{ Config: 'c.json', RepoTags: ['bad:1'], Layers: ['l.tar'] }])),
        file('c.json', configOf([other.diffId])),
        file('l.tar', l1.tar),
      ]),
      /layer diff id mismatch/,
    );
    await refuses(
      await tarBytes([
        file('manifest.json', JSON.stringify([{ Config: 'c.json', RepoTags: ['bad:1'], Layers: ['l.tar', 'l.tar'] }])),
        file('c.json', configOf([l1.diffId])),
        file('l.tar', l1.tar),
      ]),
      /the config lists 1 layers, the manifest 2/,
    );
  });

  it('refuses OCI blobs whose bytes do not match their descriptor', async () => {
    const l1 = await layer({ a: 'a' });
    const config = configOf([l1.diffId]);
    const manifest = manifestOf(config, [l1.tar]);
    const index = { schemaVersion: 2, manifests: [descriptor(manifest, 'application/vnd.oci.image.manifest.v1+json', { annotations: { 'io.containerd.image.name': 'docker.io/library/x:1' } })] };
    // The layer's bytes under the name of other bytes: of the same size, and of another.
    const other = Buffer.from(l1.tar);
    other[other.length - 1] = 1;
    for (const [bytes, message] of [
      [other, /invalid archive: layer sha256:[a-f0-9]{64} hashes to sha256:/],
      [Buffer.concat([l1.tar, Buffer.alloc(512)]), /invalid archive: layer sha256:[a-f0-9]{64} is \d+ bytes, its descriptor says \d+/],
    ] as const) {
      const swapped = await tarBytes([
        file('index.json', JSON.stringify(index)),
        file(`blobs/sha256/${sha256(manifest).slice(7)}`, manifest),
        file(`blobs/sha256/${sha256(config).slice(7)}`, config),
        file(`blobs/sha256/${sha256(l1.tar).slice(7)}`, bytes),
      ]);
      await refuses(swapped, message);
    }
    const wrongSize = { schemaVersion: 2, manifests: [{ ...index.manifests[0], size: 3 }] };
    await refuses(await ociLayout([manifest, config, l1.tar], wrongSize), /is \d+ bytes, its descriptor says 3/);
    await refuses(await ociLayout([manifest, config, l1.tar], { schemaVersion: 2, manifests: [{ ...index.manifests[0], digest: 'sha256:../../x' }] }), /unsupported digest/);
  });

  it('picks linux/amd64 from a nested index, and skips other platforms listed at the top', async () => {
    const stores = await fresh();
    const { store } = stores;
    const amd = await layer({ arch: 'amd64' });
    const arm = await layer({ arch: 'arm64' });
    const amdConfig = configOf([amd.diffId]);
    const armConfig = configOf([arm.diffId], 'arm64');
    const amdManifest = manifestOf(amdConfig, [amd.tar]);
    const armManifest = manifestOf(armConfig, [arm.tar]);
    const m = 'application/vnd.oci.image.manifest.v1+json';
    const nested = JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: [
        descriptor(armManifest, m, { platform: { os: 'linux', architecture: 'arm64' } }),
        descriptor(amdManifest, m, { platform: { os: 'linux', architecture: 'amd64' } }),
      ],
    });
    const blobs = [amd.tar, arm.tar, amdConfig, armConfig, amdManifest, armManifest, nested];
    const viaIndex = await ociLayout(blobs, {
      schemaVersion: 2,
      manifests: [descriptor(nested, 'application/vnd.oci.image.index.v1+json', { annotations: { 'io.containerd.image.name': 'docker.io/library/multi:1' } })],
    });
    assert.deepEqual((await load(stores, viaIndex)).names, ['multi:1']);
    assert.equal((await store.resolve('multi:1')).id, sha256(amdConfig));
    // The same two manifests listed in index.json itself (as `skopeo copy --all` writes them).
    const flat = await fresh();
    const top = await ociLayout(blobs, {
      schemaVersion: 2,
      manifests: [
        descriptor(amdManifest, m, { platform: { os: 'linux', architecture: 'amd64' }, annotations: { 'io.containerd.image.name': 'docker.io/library/flat:1' } }),
        descriptor(armManifest, m, { platform: { os: 'linux', architecture: 'arm64' }, annotations: { 'io.containerd.image.name': 'docker.io/library/flat:1' } }),
      ],
    });
    const result = await load(flat, top);
    assert.deepEqual(result.names, ['flat:1']);
    assert.equal((await flat.store.resolve('flat:1')).id, sha256(amdConfig), 'flat:1 names the arm64 image');
    assert.deepEqual((await flat.store.list()).map((i) => i.id), [sha256(amdConfig)], 'the arm64 image was loaded too');
    // An archive of a foreign platform only is loaded as it is, as docker loads one.
    const foreign = await fresh();
    const armOnly = await ociLayout(blobs, {
      schemaVersion: 2,
      manifests: [descriptor(armManifest, m, { platform: { os: 'linux', architecture: 'arm64' }, annotations: { 'io.containerd.image.name': 'docker.io/library/arm:1' } })],
    });
    assert.deepEqual((await load(foreign, armOnly)).names, ['arm:1']);
    assert.equal((await foreign.store.resolve('arm:1')).config.architecture, 'arm64');
  });
  it('keeps each layer as it came, recorded under its diff id with no repository: tar, gzip, zstd; xz as the tar it holds', async () => {
    const stores = await fresh();
    const { store, content, sources } = stores;
    const layers = await Promise.all(['plain', 'gzip', 'zstd', 'xz'].map((name) => layer({ [`${name}.txt`]: name })));
    const compress = (command: string, tar: Buffer) => {
      const r = spawnSync(command, ['-c'], { input: tar });
      assert.equal(r.status, 0, r.stderr?.toString());
      return r.stdout;
    };
    const blobs = [layers[0]!.tar, gzipSync(layers[1]!.tar), compress('zstd', layers[2]!.tar), compress('xz', layers[3]!.tar)];
    const config = configOf(layers.map((l) => l.diffId));
    const archive = await tarBytes([
      file('manifest.json', JSON.stringify([{ Config: 'c.json', RepoTags: ['kept:1'], Layers: blobs.map((_, i) => `${i}/layer.tar`) }])),
      file('c.json', config),
      ...blobs.map((b, i) => file(`${i}/layer.tar`, b)),
    ]);
    await load(stores, archive);
    assert.deepEqual((await store.resolve('kept:1')).config.rootfs.diff_ids, layers.map((l) => l.diffId));
    const expected = [
      { digest: layers[0]!.diffId, mediaType: 'application/vnd.oci.image.layer.v1.tar', size: blobs[0]!.length },
      { digest: sha256(blobs[1]!), mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', size: blobs[1]!.length },
      { digest: sha256(blobs[2]!), mediaType: 'application/vnd.oci.image.layer.v1.tar+zstd', size: blobs[2]!.length },
      // No registry takes xz: the tar it holds is kept.
      { digest: layers[3]!.diffId, mediaType: 'application/vnd.oci.image.layer.v1.tar', size: layers[3]!.tar.length },
    ];
    for (const [i, l] of layers.entries()) {
      assert.deepEqual(await sources.get(l.diffId), [{ ...expected[i]!, repositories: [] }], `layer ${i}`);
      assert.deepEqual(await content.info(expected[i]!.digest), { digest: expected[i]!.digest, size: expected[i]!.size });
    }
    // Recorded on disk, for the next daemon.
    const again = new LayerSources(join(content.root, '..'));
    assert.deepEqual((await again.get(layers[1]!.diffId)).map((b) => b.digest), [sha256(blobs[1]!)]);
  });

  it('an OCI layout\'s layer blob already in the content store is not written again, and is recorded', async () => {
    const stores = await fresh();
    const { content, sources } = stores;
    const l1 = await layer({ a: 'a' });
    const gz = gzipSync(l1.tar);
    await content.writeBlob(gz);
    // Whole seconds, which the file system keeps exactly.
    const then = new Date(1_600_000_000_000);
    utimesSync(content.blobPath(sha256(gz)), then, then);
    const config = configOf([l1.diffId]);
    const manifest = JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(config), size: Buffer.byteLength(config) },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: sha256(gz), size: gz.length }],
    });
    const index = { schemaVersion: 2, manifests: [descriptor(manifest, 'application/vnd.oci.image.manifest.v1+json', { annotations: { 'io.containerd.image.name': 'docker.io/library/known:1' } })] };
    assert.deepEqual((await load(stores, await ociLayout([manifest, config, gz], index))).names, ['known:1']);
    assert.deepEqual(await sources.get(l1.diffId), [{ digest: sha256(gz), mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', size: gz.length, repositories: [] }]);
    assert.equal(statSync(content.blobPath(sha256(gz))).mtimeMs, then.getTime(), 'the blob was written again');
  });
});
