/** `docker import`: a filesystem tarball becomes a one-layer image. */
import type { Readable } from 'node:stream';
import { applyConfigChanges } from './config-changes.js';
import type { ImageStore } from './image-store.js';
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

export async function importImage(store: ImageStore, input: Readable, opts: ImportOptions): Promise<string> {
  // Check what can be checked before any byte is unpacked.
  const reference = opts.reference ? parseTaggedReference(opts.reference) : undefined;
  const runConfig = applyConfigChanges({}, opts.changes ?? []);
  const layer = await store.unpackLayer(input, undefined);
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
