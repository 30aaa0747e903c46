/**
 * `docker save`: images as the archive docker 25+ writes, an OCI image layout that is also a
 * classic docker archive, so that `docker load`, skopeo and other OCI tools all read it:
 *
 *   blobs/sha256/<config hex>     the image config, byte for byte (so the id survives)
 *   blobs/sha256/<diff id hex>    each layer, an uncompressed tar
 *   blobs/sha256/<manifest hex>   an OCI manifest per image
 *   index.json                    the manifests, one per tag (annotated with its name and tag)
 *   manifest.json                 docker's list: [{Config, RepoTags, Layers}]
 *   oci-layout                    {"imageLayoutVersion": "1.0.0"}
 *   repositories                  {"busybox": {"latest": "<top layer's diff id hex>"}}
 *
 * A layer's tar is the blob the layer came in as (pulled, loaded or imported), decompressed
 * (it hashes to the diff id exactly), when the content store still keeps that blob; else it
 * is made again from the layer's snapshot. A tar made again that does not hash to the diff
 * id the config names (a tar another tool made, whose blob is gone) goes in as it is now, and
 * that image's config is saved with the new diff ids: the archive always loads, under another id.
 *
 * Everything is prepared in a scratch folder first (a tar entry needs its size before its
 * bytes), then written out in lexical order with fixed times, as docker's is.
 */
import { createHash, randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough, Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { decompressStream } from '../archive/decompress.js';
import { TarWriter } from '../archive/tar-writer.js';
import { InvalidArgument, NotFound } from '../errors/errors.js';
import { diffLayer } from '../snapshots/diff-layer.js';
import type { Image, ImageStore } from './image-store.js';
import type { Descriptor, Index, Manifest } from './oci-types.js';
import { MediaTypes } from './oci-types.js';
import { familiarName, familiarString, fullName, parseReference, referenceString, type Reference } from './reference.js';

/** A blob in the content store known to carry a layer (pulled, loaded or imported; compressed or not). */
export interface KeptBlob {
  digest: string;
  size: number;
}

export interface SaveOptions {
  /** Where the archive is prepared (removed afterwards). */
  scratchRoot: string;
  /** The kept blobs that carry a diff id, best first. */
  keptBlobs?: (diffId: string) => Promise<KeptBlob[]>;
}

/** One image to save and the tags it is saved under. */
export interface SaveItem {
  image: Image;
  tags: Reference[];
}

interface SavedLayer {
  digest: string;
  size: number;
  path: string;
}

const EPOCH = new Date(0);

/**
 * What `names` select, as docker reads them: a repository without a tag is every tag of it,
 * a tagged reference that tag, an id or a digest reference the image under no tag. Throws
 * NotFound before anything is written.
 */
export async function resolveSaveItems(store: ImageStore, names: string[]): Promise<SaveItem[]> {
  if (names.length === 0) throw new InvalidArgument('no image names given to save');
  const items = new Map<string, SaveItem>();
  const add = (image: Image, tag?: Reference) => {
    let item = items.get(image.id);
    if (!item) items.set(image.id, (item = { image, tags: [] }));
    if (tag && !item.tags.some((t) => referenceString(t) === referenceString(tag))) item.tags.push(tag);
  };
  for (const name of names) {
    const repo = nameOnly(name);
    if (repo) {
      const prefix = `${fullName(repo)}:`;
      const tagged = (await store.list()).flatMap((image) => image.repoTags.filter((t) => t.startsWith(prefix)).map((t) => ({ image, t })));
      if (tagged.length > 0) {
        for (const { image, t } of tagged) add(image, parseReference(t));
        continue;
      }
    }
    const image = await store.resolve(name);
    let ref: Reference | undefined;
    try {
      ref = parseReference(name);
    } catch {
      ref = undefined;
    }
    const tag = ref?.tag && !ref.digest && image.repoTags.includes(referenceString(ref)) ? ref : undefined;
    add(image, tag);
  }
  return [...items.values()];
}

/** The repository a name-only reference ('busybox', 'localhost:5000/app') names, else undefined. */
function nameOnly(name: string): Reference | undefined {
  try {
    const ref = parseReference(name);
    return ref.tag === undefined && ref.digest === undefined ? ref : undefined;
  } catch {
    return undefined;
  }
}

/** The archive of `items`, as a stream; errors destroy it. */
export function saveArchive(store: ImageStore, items: SaveItem[], opts: SaveOptions): Readable {
  const out = new PassThrough();
  const scratch = join(opts.scratchRoot, `save-${randomUUID()}`);
  const run = async () => {
    await mkdir(join(scratch, 'blobs'), { recursive: true });
    try {
      const files = await prepare(store, items, opts, scratch);
      const writer = new TarWriter();
      const written = pipeline(writer.stream, out);
      const fixed = { mode: 0o644, mtime: EPOCH, uid: 0, gid: 0 };
      await writer.add({ name: 'blobs/', type: 'directory', mode: 0o755, mtime: EPOCH });
      await writer.add({ name: 'blobs/sha256/', type: 'directory', mode: 0o755, mtime: EPOCH });
      for (const [hex, path] of [...files.blobs].sort(([a], [b]) => (a < b ? -1 : 1))) {
        const { size } = await stat(path);
        await writer.add({ ...fixed, name: `blobs/sha256/${hex}`, type: 'file', size }, createReadStream(path));
      }
      for (const [name, bytes] of files.top) await writer.add({ ...fixed, name, type: 'file' }, bytes);
      await writer.finish();
      await written;
    } finally {
      await rm(scratch, { recursive: true, force: true });
    }
  };
  run().catch((err: unknown) => out.destroy(err instanceof Error ? err : new Error(String(err))));
  return out;
}

interface PreparedFiles {
  /** hex -> file in the scratch folder. */
  blobs: Map<string, string>;
  /** The top-level files, in the order they are written. */
  top: Array<[string, Buffer]>;
}

async function prepare(store: ImageStore, items: SaveItem[], opts: SaveOptions, scratch: string): Promise<PreparedFiles> {
  const blobs = new Map<string, string>();
  const layers = new Map<string, SavedLayer>();
  const writeBlob = async (bytes: Buffer): Promise<Descriptor & { hex: string }> => {
    const hex = createHash('sha256').update(bytes).digest('hex');
    const path = join(scratch, 'blobs', hex);
    await pipeline(bufferStream(bytes), createWriteStream(path));
    blobs.set(hex, path);
    return { mediaType: '', digest: `sha256:${hex}`, size: bytes.length, hex };
  };
  const manifestList: DockerManifestItem[] = [];
  const index: Index = { schemaVersion: 2, mediaType: MediaTypes.ociIndex, manifests: [] };
  const repositories: Record<string, Record<string, string>> = {};

  for (const { image, tags } of items) {
    const saved: SavedLayer[] = [];
    for (const chainId of image.record.layers) {
      const record = store.layer(chainId);
      if (!record) throw new NotFound(`image ${image.id}: layer ${chainId} is missing`);
      let layer = layers.get(chainId);
      if (!layer) {
        layer = await layerTar(store, chainId, record.diffId, opts, scratch);
        layers.set(chainId, layer);
        blobs.set(layer.digest.slice(7), layer.path);
      }
      saved.push(layer);
    }
    let configBytes = await store.content.readBlob(image.id);
    if (saved.some((l, i) => l.digest !== store.layer(image.record.layers[i]!)!.diffId)) {
      const doc = JSON.parse(configBytes.toString('utf8')) as { rootfs: { diff_ids: string[] } };
      doc.rootfs.diff_ids = saved.map((l) => l.digest);
      configBytes = Buffer.from(JSON.stringify(doc));
    }
    const config = await writeBlob(configBytes);
    const manifest: Manifest = {
      schemaVersion: 2,
      mediaType: MediaTypes.ociManifest,
      config: { mediaType: MediaTypes.ociConfig, digest: config.digest, size: config.size },
      layers: saved.map((l) => ({ mediaType: MediaTypes.ociLayer, digest: l.digest, size: l.size })),
    };
    const manifestBlob = await writeBlob(Buffer.from(JSON.stringify(manifest)));
    const manifestDesc: Descriptor = { mediaType: MediaTypes.ociManifest, digest: manifestBlob.digest, size: manifestBlob.size };
    if (tags.length === 0) index.manifests.push(manifestDesc);
    for (const tag of tags) {
      index.manifests.push({
        ...manifestDesc,
        annotations: { 'io.containerd.image.name': referenceString(tag), 'org.opencontainers.image.ref.name': tag.tag ?? 'latest' },
      });
      const top = saved.at(-1);
      if (top) (repositories[familiarName(tag)] ??= {})[tag.tag ?? 'latest'] = top.digest.slice(7);
    }
    manifestList.push({
      Config: `blobs/sha256/${config.hex}`,
      RepoTags: tags.length > 0 ? tags.map((t) => familiarString(t)) : null,
      Layers: saved.map((l) => `blobs/sha256/${l.digest.slice(7)}`),
    });
  }

  const top: Array<[string, Buffer]> = [
    ['index.json', Buffer.from(JSON.stringify(index))],
    ['manifest.json', Buffer.from(`${JSON.stringify(manifestList)}\n`)],
    ['oci-layout', Buffer.from('{"imageLayoutVersion": "1.0.0"}')],
  ];
  if (Object.keys(repositories).length > 0) top.push(['repositories', Buffer.from(`${JSON.stringify(repositories)}\n`)]);
  return { blobs, top };
}

interface DockerManifestItem {
  Config: string;
  RepoTags: string[] | null;
  Layers: string[];
}

/**
 * The layer's uncompressed tar in the scratch folder: a kept blob decompressed when one
 * hashes to the diff id, else the tar made again from the snapshot.
 */
async function layerTar(store: ImageStore, chainId: string, diffId: string, opts: SaveOptions, scratch: string): Promise<SavedLayer> {
  for (const kept of (await opts.keptBlobs?.(diffId)) ?? []) {
    if ((await store.content.info(kept.digest))?.size !== kept.size) continue;
    const tar = await writeHashed(await decompressStream(store.content.openBlob(kept.digest)), scratch).catch(() => undefined);
    if (tar?.digest === diffId) return tar;
    if (tar) await rm(tar.path, { force: true });
  }
  return writeHashed(diffLayer(store.snapshots.upperDir(chainId)), scratch);
}

/** Writes a stream to a file named by its digest, hashing it as it goes. */
async function writeHashed(input: Readable, scratch: string): Promise<SavedLayer> {
  const hash = createHash('sha256');
  let size = 0;
  const temp = join(scratch, `layer-${randomUUID()}`);
  await pipeline(
    input,
    new Transform({
      transform(chunk: Buffer, _enc, done) {
        hash.update(chunk);
        size += chunk.length;
        done(null, chunk);
      },
    }),
    createWriteStream(temp),
  );
  const hex = hash.digest('hex');
  const path = join(scratch, 'blobs', hex);
  await rename(temp, path);
  return { digest: `sha256:${hex}`, size, path };
}

function bufferStream(bytes: Buffer): Readable {
  const s = new PassThrough();
  s.end(bytes);
  return s;
}
