/**
 * A layer's bytes as they came in (through load or import), kept in the content store and
 * recorded in the layer sources under the layer's diff id, as a pull keeps the blobs it
 * downloads. Save and push then send these bytes: a layer's tar made again from its unpacked
 * files seldom hashes to the diff id the image's config names, and the image would change id.
 *
 * What is kept is what a registry can take as a layer: gzip, zstd and plain tar as they came;
 * xz and bzip2, which no layer media type names, as the tar they hold.
 */
import { randomUUID } from 'node:crypto';
import { decompressStream, detectCompression, type Compression } from '../archive/decompress.js';
import type { BlobInfo, ContentStore } from '../content/content-store.js';
import { MediaTypes } from './oci-types.js';

/** A blob in the content store that carries a layer, with its media type. */
export interface KeptLayer {
  digest: string;
  mediaType: string;
  size: number;
}

/** The OCI layer media type of a blob so compressed; undefined where none fits. */
export function layerMediaType(compression: Compression): string | undefined {
  switch (compression) {
    case 'none':
      return MediaTypes.ociLayer;
    case 'gzip':
      return MediaTypes.ociLayerGzip;
    case 'zstd':
      return MediaTypes.ociLayerZstd;
    default:
      return undefined;
  }
}

/**
 * The stored blob `blob`, a layer that unpacked to `diffId`, as a layer to keep: itself, by
 * the compression its first bytes announce; or, for xz and bzip2, the tar it holds, stored
 * as a blob of its own (the received one is left to blob collection, which takes any blob
 * the layer sources do not record).
 */
export async function keptLayer(content: ContentStore, blob: BlobInfo, diffId: string): Promise<KeptLayer> {
  const mediaType = layerMediaType(detectCompression(await head(content, blob.digest)));
  if (mediaType) return { digest: blob.digest, size: blob.size, mediaType };
  const known = await content.info(diffId);
  if (known) return { ...known, mediaType: MediaTypes.ociLayer };
  const writer = await content.ingest(`layer-tar-${randomUUID()}`, { digest: diffId });
  try {
    for await (const chunk of await decompressStream(content.openBlob(blob.digest))) await writer.write(chunk as Buffer);
    return { ...(await writer.commit()), mediaType: MediaTypes.ociLayer };
  } catch (err) {
    await writer.abort().catch(() => undefined);
    throw err;
  }
}

/** The first bytes of a blob: enough for detectCompression's magic numbers. */
async function head(content: ContentStore, digest: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of content.openBlob(digest, 0, 8)) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}
