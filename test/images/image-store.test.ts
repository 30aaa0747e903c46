// The image store over real components (content store, overlay snapshotter, metadata store in
// a temporary folder): layers unpacked once and shared, lookups as docker does them, removal
// with docker's conflict rules, and what a crash leaves behind collected.
import * as assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import { TarWriter } from '../../src/archive/tar-writer.js';
import { LocalContentStore } from '../../src/content/content-store.js';
import { Conflict, InvalidArgument, NotFound } from '../../src/errors/errors.js';
import { ImageStore } from '../../src/images/image-store.js';
import type { ImageConfig } from '../../src/images/oci-types.js';
import { parseTaggedReference } from '../../src/images/reference.js';
import { MetadataStore } from '../../src/metadata/metadata-store.js';
import { emptyMetadata, type LayerRecord } from '../../src/metadata/schema.js';
import { OverlaySnapshotter } from '../../src/snapshots/overlay-snapshotter.js';

let scratch: string;

before(() => {
  scratch = mkdtempSync(join(tmpdir(), 'image-store-'));
});

after(() => {
  rmSync(scratch, { recursive: true, force: true });
});

let n = 0;
async function freshStore(): Promise<{ store: ImageStore; snapshots: OverlaySnapshotter; meta: MetadataStore<ReturnType<typeof emptyMetadata>>; root: string }> {
  const root = join(scratch, `s${n++}`);
  const content = await LocalContentStore.open(join(root, 'content'));
  const meta = await MetadataStore.open(join(root, 'metadata.json'), emptyMetadata);
  const snapshots = new OverlaySnapshotter(join(root, 'snapshots'));
  await snapshots.cleanup();
  return { store: new ImageStore(content, snapshots, meta), snapshots, meta, root };
}

async function tar(files: Record<string, string>): Promise<Buffer> {
  const writer = new TarWriter();
  const chunks: Buffer[] = [];
  writer.stream.on('data', (c: Buffer) => chunks.push(c));
  const ended = new Promise((resolve) => writer.stream.on('end', resolve));
  for (const [name, body] of Object.entries(files)) {
    await writer.add({ name, type: 'file', mode: 0o644, size: Buffer.byteLength(body), mtime: new Date(0) }, Buffer.from(body));
  }
  await writer.finish();
  await ended;
  return Buffer.concat(chunks);
}

const sha256 = (data: Buffer | string) => `sha256:${createHash('sha256').update(data).digest('hex')}`;

function config(layers: LayerRecord[], extra: Partial<ImageConfig> = {}): ImageConfig {
  return {
    architecture: 'amd64',
    os: 'linux',
    created: '2024-01-01T00:00:00Z',
    config: { Cmd: ['sh'] },
    rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
    history: layers.map((_, i) => ({ created: '2024-01-01T00:00:00Z', created_by: `layer ${i}` })),
    ...extra,
  };
}

async function committed(snapshots: OverlaySnapshotter): Promise<string[]> {
  const keys: string[] = [];
  for await (const info of snapshots.walk()) keys.push(`${info.kind}:${info.key}`);
  return keys.sort();
}

describe('image store', () => {
  it('garbage collection leaves alone a layer unpacked for an image not yet added (a pull under way)', async () => {
    const { store, snapshots } = await freshStore();
    const layer = await store.unpackLayer(Readable.from(await tar({ 'in-flight': 'x' })), undefined);
    await store.collectLayers();
    assert.ok((await committed(snapshots)).includes(`committed:${layer.chainId}`), 'a layer in flight was collected');
    store.unpin([layer.chainId]);
    await store.collectLayers();
    assert.ok(!(await committed(snapshots)).includes(`committed:${layer.chainId}`), 'an abandoned layer was kept');
  });

  it('unpacks a layer once, keyed by its chain id, and verifies the diff id', async () => {
    const { store, snapshots } = await freshStore();
    const bytes = await tar({ 'a.txt': 'hello\n' });
    const layer = await store.unpackLayer(Readable.from([bytes]), undefined, sha256(bytes));
    assert.deepEqual(layer, { chainId: sha256(bytes), diffId: sha256(bytes), size: 6 });
    const top = await tar({ 'b.txt': 'world!\n' });
    const upper = await store.unpackLayer(Readable.from([top]), layer.chainId);
    assert.equal(upper.chainId, sha256(`${layer.chainId} ${sha256(top)}`));
    assert.equal(upper.parent, layer.chainId);
    // The same layer again: nothing new on disk.
    await store.unpackLayer(Readable.from([bytes]), undefined);
    assert.deepEqual(await committed(snapshots), [`committed:${layer.chainId}`, `committed:${upper.chainId}`].sort());
    await assert.rejects(store.unpackLayer(Readable.from([bytes]), undefined, sha256('something else')), (err: unknown) => {
      assert.ok(err instanceof InvalidArgument);
      assert.match(err.message, /layer diff id mismatch/);
      return true;
    });
    assert.equal((await committed(snapshots)).length, 2, 'a refused layer left a snapshot behind');
  });

  it('unpacks the layers of an image in any order, then commits them in order', async () => {
    const { store, snapshots } = await freshStore();
    const lower = await tar({ 'lower.txt': 'l' });
    const upper = await tar({ 'upper.txt': 'u' });
    // The upper layer is unpacked first: it does not need the lower one on disk.
    const unpackedUpper = await store.extractLayer(Readable.from([upper]), sha256(upper));
    const unpackedLower = await store.extractLayer(Readable.from([lower]), sha256(lower));
    assert.deepEqual((await committed(snapshots)).map((k) => k.split(':')[0]), ['active', 'active']);
    const base = await store.commitLayer(unpackedLower, undefined);
    const top = await store.commitLayer(unpackedUpper, base.chainId);
    assert.equal(top.chainId, sha256(`${base.chainId} ${sha256(upper)}`));
    assert.deepEqual(await committed(snapshots), [`committed:${base.chainId}`, `committed:${top.chainId}`].sort());
    assert.equal((await snapshots.stat(top.chainId))?.parent, base.chainId);

    // A layer that is there already: the unpacked copy goes.
    const again = await store.extractLayer(Readable.from([upper]));
    assert.deepEqual(await store.commitLayer(again, base.chainId), top);
    const dropped = await store.extractLayer(Readable.from([await tar({ never: 'n' })]));
    await store.discardLayer(dropped);
    assert.deepEqual(await committed(snapshots), [`committed:${base.chainId}`, `committed:${top.chainId}`].sort());
  });

  it('a gzip cut short right away is refused, leaving nothing (the input fails before the unpack starts)', async () => {
    const { store, snapshots } = await freshStore();
    const cut = gzipSync(await tar({ 'f.txt': 'x'.repeat(100_000) })).subarray(0, 40);
    await assert.rejects(store.unpackLayer(Readable.from([cut]), undefined), (err: unknown) => {
      assert.ok(err instanceof InvalidArgument, String(err));
      assert.match(err.message, /gzip: unexpected EOF|truncated/);
      return true;
    });
    assert.deepEqual(await committed(snapshots), []);
  });

  it('concurrent unpacks of the same layer make one snapshot', async () => {
    const { store, snapshots } = await freshStore();
    const bytes = await tar({ 'big.bin': 'x'.repeat(2_000_000) });
    const layers = await Promise.all(Array.from({ length: 4 }, () => store.unpackLayer(Readable.from([bytes]), undefined)));
    assert.ok(layers.every((l) => l.chainId === sha256(bytes)));
    assert.deepEqual(await committed(snapshots), [`committed:${sha256(bytes)}`]);
  });

  it('finds an image by reference, full id, id prefix; says which lookups fail', async () => {
    const { store } = await freshStore();
    const layer = await store.unpackLayer(Readable.from([await tar({ f: '1' })]), undefined);
    const id = await store.addImage({ config: config([layer]), layers: [layer], references: [parseTaggedReference('team/app:1.0')] });
    assert.match(id, /^sha256:[a-f0-9]{64}$/);
    for (const name of ['team/app:1.0', 'docker.io/team/app:1.0', id, id.slice(7), id.slice(7, 19), id.slice(0, 12)]) {
      assert.equal((await store.resolve(name)).id, id, name);
    }
    const image = await store.resolve('team/app:1.0');
    assert.deepEqual(image.repoTags, ['docker.io/team/app:1.0']);
    assert.equal(image.size, 1);
    await assert.rejects(store.resolve('team/app'), /No such image: team\/app:latest/);
    await assert.rejects(store.resolve('nosuch:2'), NotFound);
    // Two images whose ids share a prefix make that prefix ambiguous.
    let other = '';
    for (let i = 0; other === '' || other.slice(7, 8) !== id.slice(7, 8); i++) {
      other = await store.addImage({ config: config([layer], { created: `2024-01-01T00:00:${String(i % 60).padStart(2, '0')}Z`, author: String(i) }), layers: [layer] });
    }
    await assert.rejects(store.resolve(id.slice(7, 8)), /multiple IDs found with provided prefix: /);
  });

  it('refuses a config whose diff ids do not match the layers', async () => {
    const { store } = await freshStore();
    const layer = await store.unpackLayer(Readable.from([await tar({ f: '1' })]), undefined);
    await assert.rejects(store.addImage({ config: config([]), layers: [layer] }), /rootfs\.diff_ids do not match the layers/);
  });

  it('rmi: untag, then delete, and the layers of the deleted image go while shared ones stay', async () => {
    const { store, snapshots } = await freshStore();
    const base = await store.unpackLayer(Readable.from([await tar({ base: 'b' })]), undefined);
    const top = await store.unpackLayer(Readable.from([await tar({ top: 't' })]), base.chainId);
    const baseId = await store.addImage({ config: config([base]), layers: [base], references: [parseTaggedReference('base:1')] });
    const appId = await store.addImage({ config: config([base, top]), layers: [base, top], references: [parseTaggedReference('app:1'), parseTaggedReference('app:2')] });
    assert.deepEqual(await store.remove('app:2'), [{ Untagged: 'app:2' }]);
    assert.deepEqual(await store.remove('app:1'), [{ Untagged: 'app:1' }, { Deleted: appId }]);
    assert.deepEqual(await committed(snapshots), [`committed:${base.chainId}`]);
    assert.equal(store.layer(top.chainId), undefined);
    assert.ok(store.layer(base.chainId));
    assert.deepEqual(await store.remove(baseId.slice(7, 19)), [{ Untagged: 'base:1' }, { Deleted: baseId }]);
    assert.deepEqual(await committed(snapshots), []);
    await assert.rejects(store.remove('app:1'), /No such image: app:1/);
  });

  it('rmi conflicts: several repositories, a child image, containers using it', async () => {
    const { store } = await freshStore();
    const layer = await store.unpackLayer(Readable.from([await tar({ f: 'x' })]), undefined);
    const parent = await store.addImage({ config: config([layer]), layers: [layer], references: [parseTaggedReference('a:1'), parseTaggedReference('b:1')] });
    await assert.rejects(store.remove(parent.slice(7)), (err: unknown) => {
      assert.ok(err instanceof Conflict);
      assert.equal(err.message, `conflict: unable to delete ${parent.slice(7, 19)} (must be forced) - image is referenced in multiple repositories`);
      return true;
    });
    const child = await store.addImage({ config: config([layer], { author: 'child' }), layers: [layer], parent, references: [parseTaggedReference('child:1')] });
    await assert.rejects(store.remove(parent.slice(7), { force: true }), /\(cannot be forced\) - image has dependent child images/);
    store.setContainerUsage(() => [{ id: 'c'.repeat(64), imageId: child, running: true }]);
    await assert.rejects(store.remove(child), /\(cannot be forced\) - image is being used by running container cccccccccccc/);
    await assert.rejects(
      store.remove('child:1'),
      /unable to remove repository reference "child:1" \(must force\) - container cccccccccccc is using its referenced image/,
    );
    store.setContainerUsage(() => [{ id: 'd'.repeat(64), imageId: child, running: false }]);
    await assert.rejects(store.remove(child), /\(must be forced\) - image is being used by stopped container dddddddddddd/);
    const forced = await store.remove(child, { force: true });
    assert.deepEqual(forced, [{ Untagged: 'child:1' }, { Deleted: child }]);
  });

  it('history lists newest first, with the sizes of the layers', async () => {
    const { store } = await freshStore();
    const a = await store.unpackLayer(Readable.from([await tar({ a: '12345' })]), undefined);
    const b = await store.unpackLayer(Readable.from([await tar({ b: '123' })]), a.chainId);
    const cfg = config([a, b]);
    cfg.history = [
      { created: '2024-01-01T00:00:00Z', created_by: 'ADD a' },
      { created: '2024-01-02T00:00:00Z', created_by: 'ENV x=1', empty_layer: true },
      { created: '2024-01-03T00:00:00Z', created_by: 'ADD b', comment: 'last' },
    ];
    const id = await store.addImage({ config: cfg, layers: [a, b], references: [parseTaggedReference('h:1')] });
    const history = await store.history('h:1');
    assert.deepEqual(
      history.map((h) => [h.id, h.createdBy, h.size, h.tags, h.comment]),
      [
        [id, 'ADD b', 3, ['h:1'], 'last'],
        ['<missing>', 'ENV x=1', 0, [], ''],
        ['<missing>', 'ADD a', 5, [], ''],
      ],
    );
  });

  it('collects layers that a crash left without an image, and keeps those in use', async () => {
    const { store, snapshots, root } = await freshStore();
    const used = await store.unpackLayer(Readable.from([await tar({ used: 'u' })]), undefined);
    await store.addImage({ config: config([used]), layers: [used], references: [parseTaggedReference('kept:1')] });
    // Unpacked, committed, but the image never recorded: what a kill between the two leaves.
    const orphan = await store.unpackLayer(Readable.from([await tar({ orphan: 'o' })]), undefined);
    assert.equal((await committed(snapshots)).length, 2);
    // A restart: the stores reopened from disk.
    const content = await LocalContentStore.open(join(root, 'content'));
    const meta = await MetadataStore.open(join(root, 'metadata.json'), emptyMetadata);
    const reopened = new OverlaySnapshotter(join(root, 'snapshots'));
    await reopened.cleanup();
    const again = new ImageStore(content, reopened, meta);
    assert.deepEqual(await again.collectLayers(), [orphan.chainId]);
    assert.deepEqual(await committed(reopened), [`committed:${used.chainId}`]);
    assert.equal((await again.resolve('kept:1')).record.layers[0], used.chainId);
  });

  it('prune removes dangling images only, or every unused one with all', async () => {
    const { store } = await freshStore();
    const layer = await store.unpackLayer(Readable.from([await tar({ p: 'pp' })]), undefined);
    const tagged = await store.addImage({ config: config([layer]), layers: [layer], references: [parseTaggedReference('p:1')] });
    const dangling = await store.addImage({ config: config([layer], { author: 'dangling' }), layers: [layer] });
    const result = await store.prune();
    assert.deepEqual(result.deleted, [{ Deleted: dangling }]);
    assert.equal(result.reclaimed, 0, 'the layer is still used by p:1');
    const all = await store.prune({ all: true });
    assert.deepEqual(all.deleted, [{ Untagged: 'p:1' }, { Deleted: tagged }]);
    assert.equal(all.reclaimed, 2);
    assert.deepEqual(await store.list(), []);
  });
});
