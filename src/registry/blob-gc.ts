/**
 * Garbage collection of the content store's blobs: a blob stays while an image uses it (its
 * config, a manifest it lists, or a blob the layer sources record for one of its layers: one
 * pulled, or the bytes a load or an import brought) or a download of it is under way; the
 * content store itself spares blobs written in the last minute, so a pull, load or import
 * that has not added its image yet keeps its blobs.
 */
import type { BlobInfo } from '../content/content-store.js';
import type { ImageStore } from '../images/image-store.js';
import type { LayerSources } from './layer-sources.js';

export interface BlobCollectionOptions {
  /** Digests to keep besides those images use (downloads under way). */
  inFlight?: () => Iterable<string>;
  minAgeMs?: number;
}

/** Deletes the blobs no image uses; answers what it deleted. */
export async function collectBlobs(images: ImageStore, sources: LayerSources, opts: BlobCollectionOptions = {}): Promise<BlobInfo[]> {
  const inUse = new Set<string>(opts.inFlight?.() ?? []);
  const diffIds = new Set<string>();
  for (const { record } of await images.list()) {
    inUse.add(record.id);
    for (const m of record.manifests) inUse.add(m);
    for (const chainId of record.layers) {
      const layer = images.layer(chainId);
      if (layer) diffIds.add(layer.diffId);
    }
  }
  for (const digest of await sources.blobsOf(diffIds)) inUse.add(digest);
  return images.content.collect(inUse, opts.minAgeMs === undefined ? {} : { minAgeMs: opts.minAgeMs });
}
