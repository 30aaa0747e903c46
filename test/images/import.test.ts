// `import` over real stores: the tarball is kept as it came (gzip, plain tar) and recorded in
// the layer sources under the layer's diff id; a gzip stream with bytes after it still
// imports, without a kept blob; a bad tarball leaves nothing behind.
import * as assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import { TarWriter } from '../../src/archive/tar-writer.js';
import { LocalContentStore } from '../../src/content/content-store.js';
import { ImageStore } from '../../src/images/image-store.js';
import { importImage } from '../../src/images/import.js';
import { MetadataStore } from '../../src/metadata/metadata-store.js';
import { emptyMetadata } from '../../src/metadata/schema.js';
import { LayerSources } from '../../src/registry/layer-sources.js';
import { OverlaySnapshotter } from '../../src/snapshots/overlay-snapshotter.js';

let scratch: string;

before(() => {
  scratch = mkdtempSync(join(tmpdir(), 'image-import-'));
});

after(() => {
  rmSync(scratch, { recursive: true, force: true });
});

let n = 0;
async function fresh(): Promise<{ store: ImageStore; content: LocalContentStore; sources: LayerSources }> {
  const root = join(scratch, `s${n++}`);
  const content = await LocalContentStore.open(join(root, 'content'));
  const meta = await MetadataStore.open(join(root, 'metadata.json'), emptyMetadata);
  const snapshots = new OverlaySnapshotter(join(root, 'snapshots'));
  await snapshots.cleanup();
  return { store: new ImageStore(content, snapshots, meta), content, sources: new LayerSources(root) };
}

const sha256 = (data: Buffer) => `sha256:${createHash('sha256').update(data).digest('hex')}`;

async function tarOf(files: Record<string, string>): Promise<Buffer> {
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

/** The input in chunks of 1000 bytes, as a request body arrives. */
function chunked(data: Buffer): Readable {
  const parts: Buffer[] = [];
  for (let i = 0; i < data.length; i += 1000) parts.push(data.subarray(i, i + 1000));
  return Readable.from(parts);
}

describe('import', () => {
  it('keeps a gzip tarball and a plain one as they came, under the diff id, held by no repository', async () => {
    const { store, content, sources } = await fresh();
    const tar = await tarOf({ 'etc/motd': 'hello\n', 'bin/tool': 'x'.repeat(20_000) });
    const gz = gzipSync(tar);
    const gzId = await importImage(store, sources, chunked(gz), { source: '-', reference: 'gz:1' });
    const image = await store.resolve(gzId);
    assert.deepEqual(image.config.rootfs.diff_ids, [sha256(tar)]);
    assert.deepEqual(await sources.get(sha256(tar)), [{ digest: sha256(gz), mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', size: gz.length, repositories: [] }]);
    assert.deepEqual(await content.readBlob(sha256(gz)), gz);

    const plain = await tarOf({ 'plain.txt': 'plain\n' });
    await importImage(store, sources, chunked(plain), { source: '-' });
    assert.deepEqual(await sources.get(sha256(plain)), [{ digest: sha256(plain), mediaType: 'application/vnd.oci.image.layer.v1.tar', size: plain.length, repositories: [] }]);
    assert.deepEqual(readdirSync(join(content.root, 'ingest')), [], 'a write was left in the content store');
  });

  it('a gzip stream with bytes after it imports, but keeps no blob (its unpack ends before the input)', async () => {
    const { store, content, sources } = await fresh();
    const tar = await tarOf({ 'a.txt': 'a\n' });
    const trailed = Buffer.concat([gzipSync(tar), Buffer.alloc(64 * 1024)]);
    const id = await importImage(store, sources, chunked(trailed), { source: '-' });
    assert.deepEqual((await store.resolve(id)).config.rootfs.diff_ids, [sha256(tar)]);
    assert.deepEqual(await sources.get(sha256(tar)), []);
    assert.equal(await content.info(sha256(trailed)), undefined);
    assert.deepEqual(readdirSync(join(content.root, 'ingest')), [], 'a write was left in the content store');
  });

  it('a bad tarball leaves no image, no blob, no record and no unpacked layer', async () => {
    const { store, content, sources } = await fresh();
    const tar = await tarOf({ 'big.bin': randomBytes(512 * 1024).toString('base64') });
    const bad: Array<[Buffer, RegExp]> = [
      [gzipSync(Buffer.alloc(4096, 'not a tar ')), /invalid tar header/],
      // Cut short far from its start: it fails while it unpacks.
      [gzipSync(tar).subarray(0, 400 * 1024), /unexpected EOF|truncated/],
    ];
    for (const [input, message] of bad) {
      await assert.rejects(importImage(store, sources, chunked(input), { source: '-' }), message);
    }
    assert.deepEqual(await store.list(), []);
    assert.deepEqual(await content.list(), []);
    assert.deepEqual(readdirSync(join(content.root, 'ingest')), []);
    assert.deepEqual(await sources.get(sha256(tar)), []);
    for await (const info of store.snapshots.walk()) assert.fail(`the failed import left the snapshot ${info.key}`);
  });
});
