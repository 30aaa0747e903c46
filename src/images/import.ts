/**
 * `docker import`: a filesystem tarball becomes a one-layer image. The tarball is kept as it
 * came (gzip, zstd or plain tar) in the content store while it unpacks, and recorded in the
 * layer sources, so that save and push send those very bytes and the image keeps its id.
 */
import { randomUUID } from 'node:crypto';
import type { Readable } from 'node:stream';
import { storeWhilePassing, type BlobInfo } from '../content/content-store.js';
import type { LayerRecord } from '../metadata/schema.js';
import type { LayerSources } from '../registry/layer-sources.js';
import { applyConfigChanges } from './config-changes.js';
import type { ImageStore, UnpackedLayer } from './image-store.js';
import { keptLayer } from './kept-layer.js';
import type { ImageConfig } from './oci-types.js';
import { parseTaggedReference } from './reference.js';

export interface ImportOptions {
  /** 'name:tag' to tag the image with. */
  reference?: string;
  /** Dockerfile instructions (CMD, ENV, …) applied to the config. */
  changes?: string[];
  /** The history comment; docker's default is "Imported from <source>". */
  message?: string;
  /** Where the tarball came from: '-' for the request body. */
  source: string;
}

/** Imports the tarball `input` into `store`, recording its kept blob in `sources`; the new image's id. */
export async function importImage(store: ImageStore, sources: LayerSources, input: Readable, opts: ImportOptions): Promise<string> {
  // Check what can be checked before any byte is unpacked.
  const reference = opts.reference ? parseTaggedReference(opts.reference) : undefined;
  const runConfig = applyConfigChanges({}, opts.changes ?? []);
  const { unpacked, blob } = await unpackStoring(store, input);
  let layer: LayerRecord;
  try {
    if (blob) await sources.add(unpacked.diffId, await keptLayer(store.content, blob, unpacked.diffId));
    layer = await store.commitLayer(unpacked, undefined);
  } catch (err) {
    await store.discardLayer(unpacked);
    throw err;
  }
  const now = new Date().toISOString();
  const config: ImageConfig = {
    architecture: 'amd64',
    os: 'linux',
    created: now,
    config: runConfig,
    rootfs: { type: 'layers', diff_ids: [layer.diffId] },
    history: [{ created: now, comment: opts.message || `Imported from ${opts.source}` }],
  };
  if (opts.message) config.comment = opts.message;
  return store.addImage({ config, layers: [layer], ...(reference ? { references: [reference] } : {}) });
}

/**
 * Unpacks the tarball into a snapshot of its own while its bytes are stored as a blob. The
 * blob is kept only when every byte went through: a gzip stream followed by other bytes ends
 * the unpack before the input's end, and such a layer has no blob (its tar is made again
 * when it is saved or pushed).
 */
async function unpackStoring(store: ImageStore, input: Readable): Promise<{ unpacked: UnpackedLayer; blob?: BlobInfo }> {
  const writer = await store.content.ingest(`import-${randomUUID()}`);
  const stored = storeWhilePassing(writer);
  input.on('error', (err) => stored.destroy(err));
  input.pipe(stored);
  let unpacked: UnpackedLayer;
  try {
    unpacked = await store.extractLayer(stored);
  } catch (err) {
    await writer.abort().catch(() => undefined);
    throw err;
  }
  try {
    if (stored.readableEnded) return { unpacked, blob: await writer.commit() };
    await writer.abort();
    // The rest is read and dropped, so the request still ends as a request should.
    input.unpipe(stored);
    input.resume();
    return { unpacked };
  } catch (err) {
    await store.discardLayer(unpacked);
    throw err;
  }
}
