/**
 * `docker load`: images from an archive, in Docker's format (manifest.json, as `docker save`
 * writes it) or as an OCI image layout (index.json, blobs/sha256/…), tarred.
 *
 * The archive is hostile input. Its files are written to a scratch folder under flat,
 * generated names, so no name in the archive can place a file anywhere; symlinks and hardlinks
 * inside it are resolved by name within the archive, never on disk.
 *
 * Each layer is kept as it came (gzip, zstd or plain tar) in the content store, recorded in
 * the layer sources, so that save and push send those very bytes and the image keeps its id.
 * The layers of an image unpack at once, a few at a time, and are stacked in order.
 */
import { createHash, randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readFile, rm, stat } from 'node:fs/promises';
import { join, posix } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { readTar } from '../archive/tar-reader.js';
import { decompressStream } from '../archive/decompress.js';
import type { BlobInfo, ContentStore } from '../content/content-store.js';
import { InvalidArgument, NotFound } from '../errors/errors.js';
import type { LayerRecord } from '../metadata/schema.js';
import type { LayerSources } from '../registry/layer-sources.js';
import { Semaphore } from '../util/semaphore.js';
import type { ImageStore, UnpackedLayer } from './image-store.js';
import { keptLayer, type KeptLayer } from './kept-layer.js';
import type { Descriptor, ImageConfig, Index, Manifest } from './oci-types.js';
import { MediaTypes } from './oci-types.js';
import { familiarString, parseTaggedReference, type Reference } from './reference.js';

export interface LoadResult {
  /** Familiar names of the images loaded with a name ('busybox:latest'). */
  names: string[];
  /** Ids of the images loaded without one. */
  untagged: string[];
}

export type LoadProgress = { status: string; id?: string; progressDetail?: { current?: number; total?: number } };

/** Layers of one image unpacked at once. */
const LOAD_CONCURRENCY = 3;

/** The archive's files by name, as paths in the scratch folder. */
class ArchiveFiles {
  readonly #files = new Map<string, string>();
  readonly #links = new Map<string, string>();

  addFile(name: string, path: string): void {
    this.#files.set(name, path);
  }

  addLink(name: string, target: string): void {
    this.#links.set(name, target);
  }

  has(name: string): boolean {
    return this.resolve(name) !== undefined;
  }

  resolve(name: string): string | undefined {
    let current = cleanName(name);
    for (let hops = 0; hops < 32; hops++) {
      const file = this.#files.get(current);
      if (file) return file;
      const link = this.#links.get(current);
      if (link === undefined) return undefined;
      current = link;
    }
    return undefined;
  }

  path(name: string): string {
    const path = this.resolve(name);
    if (!path) throw new InvalidArgument(`invalid archive: it names "${name}" but has no such file`);
    return path;
  }
}

/** 'a/./b/' -> 'a/b'; refuses names that climb out of the archive. */
function cleanName(name: string): string {
  const cleaned = posix.normalize(`/${name}`).slice(1).replace(/\/$/, '');
  if (cleaned.startsWith('..')) throw new InvalidArgument(`invalid archive: entry "${name}" points outside the archive`);
  return cleaned;
}

/** Loads the archive `input` into `store`, recording each layer's kept blob in `sources`. */
export async function loadArchive(
  store: ImageStore,
  sources: LayerSources,
  input: Readable,
  progress: (p: LoadProgress) => void,
  scratchRoot: string,
): Promise<LoadResult> {
  const scratch = join(scratchRoot, `load-${randomUUID()}`);
  await mkdir(scratch, { recursive: true });
  try {
    const files = await extract(await decompressStream(input), scratch);
    if (files.has('manifest.json')) return await loadDockerArchive(store, sources, files, progress);
    if (files.has('index.json')) return await loadOciLayout(store, sources, files, progress);
    throw new InvalidArgument('invalid archive: it has neither manifest.json (docker save) nor index.json (OCI image layout)');
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

async function extract(tar: Readable, scratch: string): Promise<ArchiveFiles> {
  const files = new ArchiveFiles();
  let n = 0;
  let sawEntry = false;
  for await (const entry of readTar(tar)) {
    sawEntry = true;
    const { header } = entry;
    const name = cleanName(header.name);
    if (header.type === 'file') {
      const path = join(scratch, String(n++));
      await pipeline(entry.body, createWriteStream(path, { mode: 0o600 }));
      files.addFile(name, path);
      continue;
    }
    entry.body.resume();
    if (header.type === 'symlink') {
      files.addLink(name, cleanName(posix.join(posix.dirname(name), header.linkname)));
    } else if (header.type === 'hardlink') {
      files.addLink(name, cleanName(header.linkname));
    }
    // Directories are implied by names; devices and fifos have no place in an image archive.
  }
  if (!sawEntry) throw new InvalidArgument('invalid archive: it is empty');
  return files;
}

interface DockerManifestEntry {
  Config: string;
  RepoTags?: string[] | null;
  Layers: string[];
}

async function loadDockerArchive(store: ImageStore, sources: LayerSources, files: ArchiveFiles, progress: (p: LoadProgress) => void): Promise<LoadResult> {
  const entries = parseJson<DockerManifestEntry[]>(await readFile(files.path('manifest.json')), 'manifest.json');
  if (!Array.isArray(entries)) throw new InvalidArgument('invalid archive: manifest.json is not a list');
  const result: LoadResult = { names: [], untagged: [] };
  for (const entry of entries) {
    if (typeof entry?.Config !== 'string' || !Array.isArray(entry.Layers)) {
      throw new InvalidArgument('invalid archive: a manifest.json entry lacks Config or Layers');
    }
    const configBytes = await readFile(files.path(entry.Config));
    const config = parseConfig(configBytes, entry.Config);
    const references = (entry.RepoTags ?? []).map((t) => parseTaggedReference(t));
    const layers = await unpackLayers(store, sources, config, entry.Layers.map((l) => ({ path: files.path(l) })), progress);
    const id = await store.addImageWithConfig(configBytes, { layers, references });
    addResult(result, id, references);
  }
  return result;
}

async function loadOciLayout(store: ImageStore, sources: LayerSources, files: ArchiveFiles, progress: (p: LoadProgress) => void): Promise<LoadResult> {
  const blob = async (desc: Descriptor): Promise<Buffer> => {
    const data = await readFile(blobPath(files, desc));
    checkBlob(data, desc);
    return data;
  };
  const index = parseJson<Index>(await readFile(files.path('index.json')), 'index.json');
  if (!Array.isArray(index?.manifests)) throw new InvalidArgument('invalid archive: index.json has no manifests');
  const result: LoadResult = { names: [], untagged: [] };
  // index.json may list one image per platform (as `skopeo copy --all` writes it): load the
  // linux/amd64 one, not every platform under the same name. An archive with no image for
  // this platform at all is loaded as it is, as docker loads a foreign image.
  const native = index.manifests.filter((d) => isNativePlatform(d));
  for (const desc of native.length > 0 ? native : index.manifests) {
    const name = desc.annotations?.['io.containerd.image.name'] ?? desc.annotations?.['org.opencontainers.image.ref.name'];
    const manifestDesc = await selectManifest(desc, blob);
    const manifestBytes = await blob(manifestDesc);
    const manifest = parseJson<Manifest>(manifestBytes, `manifest ${manifestDesc.digest}`);
    if (!manifest?.config || !Array.isArray(manifest.layers)) throw new InvalidArgument(`invalid archive: manifest ${manifestDesc.digest} lacks config or layers`);
    const configBytes = await blob(manifest.config);
    const config = parseConfig(configBytes, manifest.config.digest);
    const layers = await unpackLayers(
      store,
      sources,
      config,
      manifest.layers.map((l) => {
        const path = blobPath(files, l);
        return { path, digest: l.digest, size: l.size };
      }),
      progress,
    );
    await store.content.writeBlob(manifestBytes, { digest: manifestDesc.digest });
    const references = name ? nameReference(name) : [];
    const id = await store.addImageWithConfig(configBytes, { layers, references, manifests: [manifestDesc.digest] });
    addResult(result, id, references);
  }
  return result;
}

function isNativePlatform(desc: Descriptor): boolean {
  return !desc.platform || (desc.platform.os === 'linux' && desc.platform.architecture === 'amd64');
}

/** An index entry may itself be an index: pick linux/amd64 from it. */
async function selectManifest(desc: Descriptor, blob: (d: Descriptor) => Promise<Buffer>, depth = 0): Promise<Descriptor> {
  if (desc.mediaType !== MediaTypes.ociIndex && desc.mediaType !== MediaTypes.dockerManifestList) return desc;
  if (depth > 4) throw new InvalidArgument('invalid archive: indexes nested too deep');
  const index = parseJson<Index>(await blob(desc), `index ${desc.digest}`);
  const chosen = index.manifests?.find(isNativePlatform);
  if (!chosen) throw new NotFound(`no matching manifest for linux/amd64 in the manifest list entries of ${desc.digest}`);
  return selectManifest(chosen, blob, depth + 1);
}

/** A name annotation: a full reference names the image; a bare tag says nothing of the repository. */
function nameReference(name: string): Reference[] {
  try {
    if (!name.includes(':') && !name.includes('/') && !name.includes('@')) return [];
    return [parseTaggedReference(name)];
  } catch {
    return [];
  }
}

/** A layer file of the archive; an OCI layout names its digest and size. */
interface ArchiveLayer {
  path: string;
  digest?: string;
  size?: number;
}

/**
 * Unpacks an image's layers, each into a snapshot of its own (a few at once), keeping each
 * layer's blob; then stacks them in order. On a failure, nothing unpacked is left behind.
 */
async function unpackLayers(
  store: ImageStore,
  sources: LayerSources,
  config: ImageConfig,
  layers: ArchiveLayer[],
  progress: (p: LoadProgress) => void,
): Promise<LayerRecord[]> {
  const diffIds = config.rootfs.diff_ids;
  if (diffIds.length !== layers.length) {
    throw new InvalidArgument(`invalid archive: the config lists ${diffIds.length} layers, the manifest ${layers.length}`);
  }
  const slots = new Semaphore(LOAD_CONCURRENCY);
  // Once one layer failed, those still waiting for a slot are not unpacked.
  let failure: unknown;
  const unpacks = layers.map((layer, i) =>
    slots.run(async () => {
      if (failure !== undefined) throw failure;
      progress({ status: 'Loading layer', id: diffIds[i]!.replace(/^sha256:/, '').slice(0, 12) });
      return unpackKeeping(store, layer, diffIds[i]!);
    }),
  );
  // Failures are seen where the layer is awaited; this keeps them from being unhandled.
  for (const unpack of unpacks) unpack.catch(() => undefined);
  const records: LayerRecord[] = [];
  try {
    for (const unpack of unpacks) {
      const { unpacked, kept } = await unpack;
      await sources.add(unpacked.diffId, kept);
      records.push(await store.commitLayer(unpacked, records.at(-1)?.chainId));
    }
  } catch (err) {
    failure = err;
    // Wait for every unpack to end; drop those not stacked (the first records.length are).
    for (const unpack of unpacks.slice(records.length)) {
      const done = await unpack.catch(() => undefined);
      if (done) await store.discardLayer(done.unpacked);
    }
    store.unpin(records.map((r) => r.chainId));
    throw err;
  }
  return records;
}

/** A layer unpacked, with its blob kept in the content store. */
interface KeptUnpack {
  unpacked: UnpackedLayer;
  kept: KeptLayer;
}

/** Stores the layer file as a blob (verified against its descriptor), then unpacks that blob. */
async function unpackKeeping(store: ImageStore, layer: ArchiveLayer, diffId: string): Promise<KeptUnpack> {
  const blob = await storeLayerFile(store.content, layer);
  const unpacked = await store.extractLayer(store.content.openBlob(blob.digest), diffId);
  try {
    return { unpacked, kept: await keptLayer(store.content, blob, diffId) };
  } catch (err) {
    await store.discardLayer(unpacked);
    throw err;
  }
}

/**
 * The layer file as a blob in the content store: its bytes as they are, checked against the
 * digest and size an OCI layout names (a blob the store has already is not written again).
 */
async function storeLayerFile(content: ContentStore, layer: ArchiveLayer): Promise<BlobInfo> {
  const { path, digest, size } = layer;
  const actualSize = (await stat(path)).size;
  if (digest !== undefined && size !== undefined && size !== actualSize) {
    throw new InvalidArgument(`invalid archive: layer ${digest} is ${actualSize} bytes, its descriptor says ${size}`);
  }
  if (digest !== undefined) {
    const known = await content.info(digest);
    if (known?.size === actualSize) return known;
  }
  const writer = await content.ingest(`load-${randomUUID()}`);
  try {
    // Hashed here too, so that a mismatch is told in the archive's words.
    const hash = digest === undefined ? undefined : createHash('sha256');
    for await (const chunk of createReadStream(path)) {
      hash?.update(chunk as Buffer);
      await writer.write(chunk as Buffer);
    }
    const actual = hash && `sha256:${hash.digest('hex')}`;
    if (actual !== digest) throw new InvalidArgument(`invalid archive: layer ${digest} hashes to ${actual}`);
    return await writer.commit();
  } catch (err) {
    await writer.abort().catch(() => undefined);
    throw err;
  }
}

function blobPath(files: ArchiveFiles, desc: Descriptor): string {
  const m = /^sha256:([a-f0-9]{64})$/.exec(desc?.digest ?? '');
  if (!m) throw new InvalidArgument(`invalid archive: unsupported digest "${desc?.digest}"`);
  return files.path(`blobs/sha256/${m[1]}`);
}

function checkBlob(data: Buffer, desc: Descriptor): void {
  const digest = `sha256:${createHash('sha256').update(data).digest('hex')}`;
  if (digest !== desc.digest) throw new InvalidArgument(`invalid archive: blob ${desc.digest} hashes to ${digest}`);
  if (desc.size !== undefined && desc.size !== data.length) {
    throw new InvalidArgument(`invalid archive: blob ${desc.digest} is ${data.length} bytes, its descriptor says ${desc.size}`);
  }
}

function parseConfig(bytes: Buffer, what: string): ImageConfig {
  const config = parseJson<ImageConfig>(bytes, `image config ${what}`);
  if (!config?.rootfs || !Array.isArray(config.rootfs.diff_ids)) throw new InvalidArgument(`invalid archive: image config ${what} has no rootfs.diff_ids`);
  return config;
}

function parseJson<T>(bytes: Buffer, what: string): T {
  try {
    return JSON.parse(bytes.toString('utf8')) as T;
  } catch (err) {
    throw new InvalidArgument(`invalid archive: ${what} is not valid JSON`, { cause: err });
  }
}

function addResult(result: LoadResult, id: string, references: Reference[]): void {
  if (references.length === 0) result.untagged.push(id);
  for (const ref of references) result.names.push(familiarString(ref));
}

