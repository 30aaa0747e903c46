/**
 * Pull: a reference's manifest (through an index, for this platform), its config and the
 * layers this engine does not have yet, with Docker's progress messages.
 *
 * Every byte is verified before it becomes visible: documents against the digests that name
 * them, layers in resumable content-store ingests that commit only when digest and size match.
 * Layers download in parallel (3 at a time) and unpack while they download, each into a
 * snapshot of its own (a layer's files never depend on the layers below), which are stacked
 * in order once verified; docker unpacks one layer after another, each after its download.
 * An interrupted pull leaves its partial layers in their ingests, and the next one resumes
 * them with Range requests. The compressed layers stay in the content store, and where they came
 * from is recorded: a layer's tar made again from its unpacked files seldom hashes to the
 * diff id the registry's config names, so push sends these very bytes.
 */
import { once } from 'node:events';
import { PassThrough, Transform } from 'node:stream';
import { InvalidArgument, NotFound, Unavailable } from '../errors/errors.js';
import type { UnpackedLayer } from '../images/image-store.js';
import type { ImageStore } from '../images/image-store.js';
import type { Descriptor, ImageConfig } from '../images/oci-types.js';
import { MediaTypes } from '../images/oci-types.js';
import { familiarName, familiarString, fullName, referenceString, type Reference } from '../images/reference.js';
import type { LayerRecord } from '../metadata/schema.js';
import { sha256Digest } from '../content/digest.js';
import type { AuthConfig } from './auth.js';
import type { LayerSources } from './layer-sources.js';
import { fetchManifest, isIndexType, parseManifest, selectFromIndex, sha256, type PlatformSpec } from './manifests.js';
import { Semaphore } from '../util/semaphore.js';
import { Throttle, progressMessage, shortDigest, type ProgressSink } from './progress.js';
import { RegistryClient, RegistryError, pullScope, readLimited, registryError, type RegistryClientOptions } from './registry-client.js';

/** Layers downloaded at once, as docker's max-concurrent-downloads default. */
export const PULL_CONCURRENCY = 3;
/** Image configs are small documents. */
const MAX_CONFIG_SIZE = 8 * 1024 * 1024;

/** What pull and push share in one daemon. */
export interface RegistryContext {
  images: ImageStore;
  sources: LayerSources;
  clientOptions: RegistryClientOptions;
  downloads: DownloadTracker;
  /** Told when a mirror could not serve a pull (which then tries the next, or the registry). */
  onMirrorError?: (mirror: string, err: unknown) => void;
}

export interface PullResult {
  id: string;
  /** Digest of what the reference names on the registry (an index, or the manifest). */
  digest: string;
  /** The reference the image was stored under. */
  reference: Reference;
}

/** One download per blob at a time across concurrent pulls. */
export class DownloadTracker {
  readonly #inFlight = new Map<string, { promise: Promise<void>; users: number }>();

  /** Runs `download` unless a download of `digest` is under way, which is joined instead. */
  acquire(digest: string, download: () => Promise<void>): Promise<void> {
    let entry = this.#inFlight.get(digest);
    if (!entry) {
      entry = { promise: download(), users: 0 };
      this.#inFlight.set(digest, entry);
      // A failed download is forgotten at once, so the next pull tries again.
      entry.promise.catch(() => {
        if (this.#inFlight.get(digest) === entry) this.#inFlight.delete(digest);
      });
    }
    entry.users++;
    return entry.promise;
  }

  /** The blobs being downloaded now (garbage collection must leave them). */
  digests(): string[] {
    return [...this.#inFlight.keys()];
  }

  /** Says this pull is done with `digest`. */
  release(digest: string): void {
    const entry = this.#inFlight.get(digest);
    if (!entry) return;
    entry.users--;
    if (entry.users <= 0) this.#inFlight.delete(digest);
  }
}

export async function pullImage(
  ctx: RegistryContext,
  ref: Reference,
  auth: AuthConfig,
  platform: PlatformSpec,
  progress: ProgressSink,
): Promise<PullResult> {
  const repository = ref.path;
  const scopes = [pullScope(repository)];
  const tagOrDigest = ref.digest ?? ref.tag ?? 'latest';
  const { client, top, blobs } = await resolveEndpoint(ctx, ref, auth, tagOrDigest, scopes);
  let manifestDesc: Descriptor = { mediaType: top.mediaType, digest: top.digest, size: top.bytes.length };
  let manifestBytes = top.bytes;
  if (isIndexType(top.mediaType)) {
    manifestDesc = selectFromIndex(top.bytes, platform);
    if (isIndexType(manifestDesc.mediaType)) throw new InvalidArgument(`index ${top.digest}: nested indexes are not supported`);
    manifestBytes = (await fetchManifest(client, repository, manifestDesc.digest, scopes, manifestDesc)).bytes;
  }
  const manifest = parseManifest(manifestBytes, manifestDesc.digest);

  progress({ status: `Pulling from ${repository}`, id: tagOrDigest });

  const configBytes = await fetchSmallBlob(blobs, repository, manifest.config, scopes);
  const config = parseConfig(configBytes, manifest.config.digest);
  const diffIds = config.rootfs.diff_ids;
  if (diffIds.length !== manifest.layers.length) {
    throw new InvalidArgument(`image ${familiarString(ref)}: the config lists ${diffIds.length} layers, the manifest ${manifest.layers.length}`);
  }
  const chainIds = chainIdsOf(diffIds);
  const imageId = manifest.config.digest;

  let layers: LayerRecord[];
  if (ctx.images.record(imageId) && chainIds.every((c) => ctx.images.layer(c))) {
    // The image is here already: nothing to fetch, only the names to point at it.
    layers = chainIds.map((c) => ctx.images.layer(c)!);
  } else {
    layers = await fetchLayers(ctx, blobs, ref, manifest.layers, diffIds, chainIds, scopes, progress);
  }

  const content = ctx.images.content;
  await content.writeBlob(manifestBytes, { digest: manifestDesc.digest });
  if (top.digest !== manifestDesc.digest) await content.writeBlob(top.bytes, { digest: top.digest });
  const named: Reference = ref.digest ? { domain: ref.domain, path: ref.path, digest: ref.digest } : { domain: ref.domain, path: ref.path, tag: ref.tag ?? 'latest' };
  const byDigest: Reference = { domain: ref.domain, path: ref.path, digest: top.digest };
  const before = ctx.images.record(imageId) ? await ctx.images.resolve(imageId).catch(() => undefined) : undefined;
  const upToDate = Boolean(before?.repoTags.includes(referenceString(named)) || (ref.digest && before?.repoDigests.includes(referenceString(named))));
  const references = named.digest ? [named] : [named, byDigest];
  const manifests = [...new Set([top.digest, manifestDesc.digest])];
  const id = await ctx.images.addImageWithConfig(configBytes, { layers, references, manifests });
  for (const [i, layer] of manifest.layers.entries()) {
    await ctx.sources.add(diffIds[i]!, { digest: layer.digest, mediaType: layer.mediaType, size: layer.size }, fullName(ref)).catch(() => undefined);
  }

  progress({ status: `Digest: ${top.digest}` });
  progress({ status: `Status: ${upToDate ? 'Image is up to date' : 'Downloaded newer image'} for ${familiarString(named)}` });
  return { id, digest: top.digest, reference: named };
}

/**
 * Where the pull reads from: the first mirror that has the reference's manifest, else the
 * registry itself. A mirror that fails in any way (down, 404, 5xx) only passes the turn to
 * the next; the registry's own error is the one reported. Mirrors get no credentials: those
 * belong to the registry. Blobs come from the endpoint that served the manifest, and from
 * the registry when a mirror lacks one.
 */
async function resolveEndpoint(
  ctx: RegistryContext,
  ref: Reference,
  auth: AuthConfig,
  tagOrDigest: string,
  scopes: string[],
): Promise<{ client: RegistryClient; top: Awaited<ReturnType<typeof fetchManifest>>; blobs: BlobEndpoints }> {
  const expected = ref.digest ? { digest: ref.digest } : {};
  const registry = new RegistryClient(ref.domain, auth, ctx.clientOptions);
  for (const mirror of ctx.clientOptions.config?.mirrors ?? []) {
    try {
      const client = new RegistryClient(ref.domain, {}, { ...ctx.clientOptions, endpoint: mirror });
      const top = await fetchManifest(client, ref.path, tagOrDigest, scopes, expected);
      return { client, top, blobs: new BlobEndpoints([client, registry], (err) => ctx.onMirrorError?.(mirror, err)) };
    } catch (err) {
      ctx.onMirrorError?.(mirror, err);
    }
  }
  try {
    return { client: registry, top: await fetchManifest(registry, ref.path, tagOrDigest, scopes, expected), blobs: new BlobEndpoints([registry]) };
  } catch (err) {
    throw pullError(err, ref);
  }
}

/**
 * The endpoints a pull fetches blobs from, in order: a mirror that lacks a blob, or fails to
 * answer for it, passes the request to the next (docker gives up on the mirror instead).
 */
export class BlobEndpoints {
  readonly #clients: RegistryClient[];
  readonly #onFallback: ((err: unknown) => void) | undefined;

  constructor(clients: RegistryClient[], onFallback?: (err: unknown) => void) {
    this.#clients = clients;
    this.#onFallback = onFallback;
  }

  /** GET of the blob: the first endpoint's answer that is not an error, else the last's. */
  async get(repository: string, digest: string, opts: { scopes: string[]; signal?: AbortSignal; headers?: Record<string, string> }): Promise<Response> {
    const path = `/v2/${repository}/blobs/${digest}`;
    for (const [i, client] of this.#clients.entries()) {
      const last = i === this.#clients.length - 1;
      try {
        const res = await client.request('GET', path, opts);
        if (res.ok || last) return res;
        this.#onFallback?.(await registryError(res, `fetching blob ${digest}`));
      } catch (err) {
        if (last || opts.signal?.aborted) throw err;
        this.#onFallback?.(err);
      }
    }
    throw new Unavailable(`fetching blob ${digest}: no registry endpoint to ask`);
  }
}

function pullError(err: unknown, ref: Reference): unknown {
  if (!(err instanceof RegistryError)) return err;
  if (err.hasCode('MANIFEST_UNKNOWN') || (err.status === 404 && !err.hasCode('NAME_UNKNOWN'))) {
    return new NotFound(`manifest for ${familiarString(ref)} not found: ${err.message}`, { cause: err });
  }
  if (err.status === 401 || err.status === 403 || err.hasCode('NAME_UNKNOWN') || err.hasCode('DENIED') || err.hasCode('UNAUTHORIZED')) {
    return new NotFound(`pull access denied for ${familiarName(ref)}, repository does not exist or may require 'docker login': ${err.message}`, { cause: err });
  }
  return err;
}

function chainIdsOf(diffIds: string[]): string[] {
  const out: string[] = [];
  for (const diffId of diffIds) out.push(out.length ? sha256Digest(`${out[out.length - 1]} ${diffId}`) : diffId);
  return out;
}

function parseConfig(bytes: Buffer, digest: string): ImageConfig {
  let config: ImageConfig;
  try {
    config = JSON.parse(bytes.toString('utf8')) as ImageConfig;
  } catch (err) {
    throw new InvalidArgument(`image config ${digest}: not valid JSON`, { cause: err });
  }
  if (!config?.rootfs || !Array.isArray(config.rootfs.diff_ids) || config.rootfs.diff_ids.some((d) => typeof d !== 'string' || !/^sha256:[a-f0-9]{64}$/.test(d))) {
    throw new InvalidArgument(`image config ${digest}: it has no valid rootfs.diff_ids`);
  }
  return config;
}

/** A config: small, read whole, verified against its descriptor. */
async function fetchSmallBlob(blobs: BlobEndpoints, repository: string, desc: Descriptor, scopes: string[]): Promise<Buffer> {
  if (desc.size > MAX_CONFIG_SIZE) throw new InvalidArgument(`blob ${desc.digest}: ${desc.size} bytes is too large for an image config`);
  const res = await blobs.get(repository, desc.digest, { scopes });
  if (!res.ok) throw await registryError(res, `fetching blob ${desc.digest}`);
  const bytes = await readLimited(res, desc.size, `blob ${desc.digest}`);
  const digest = sha256(bytes);
  if (digest !== desc.digest) throw new InvalidArgument(`blob ${desc.digest}: digest mismatch: the registry sent content that hashes to ${digest}`);
  if (bytes.length !== desc.size) throw new InvalidArgument(`blob ${desc.digest}: the registry sent ${bytes.length} bytes, its descriptor says ${desc.size}`);
  return bytes;
}

async function fetchLayers(
  ctx: RegistryContext,
  blobs: BlobEndpoints,
  ref: Reference,
  descs: Descriptor[],
  diffIds: string[],
  chainIds: string[],
  scopes: string[],
  progress: ProgressSink,
): Promise<LayerRecord[]> {
  const missing: number[] = [];
  for (const [i, desc] of descs.entries()) {
    checkLayerType(desc);
    const id = shortDigest(desc.digest);
    if (ctx.images.layer(chainIds[i]!)) progress({ status: 'Already exists', progressDetail: {}, id });
    else {
      missing.push(i);
      progress({ status: 'Pulling fs layer', progressDetail: {}, id });
    }
  }
  for (const i of missing.slice(PULL_CONCURRENCY)) progress({ status: 'Waiting', progressDetail: {}, id: shortDigest(descs[i]!.digest) });

  // Every missing layer downloads and unpacks at once (3 at a time), each into a snapshot of
  // its own; they are then put on top of each other in order.
  const abort = new AbortController();
  const slots = new Semaphore(PULL_CONCURRENCY);
  const unpacks = new Map<number, Promise<UnpackedLayer>>();
  for (const i of missing) {
    const layer: LayerFetch = { ctx, blobs, repository: ref.path, desc: descs[i]!, diffId: diffIds[i]!, scopes, signal: abort.signal, progress };
    const unpack = slots.run(() => fetchLayer(layer));
    // Failures are seen where the layer is awaited; this keeps them from being unhandled.
    unpack.catch(() => undefined);
    unpacks.set(i, unpack);
  }

  const records: LayerRecord[] = [];
  const committed = new Set<number>();
  try {
    for (const [i, desc] of descs.entries()) {
      const unpack = unpacks.get(i);
      if (!unpack) {
        records.push(ctx.images.layer(chainIds[i]!)!);
        continue;
      }
      const parent = i > 0 ? records[i - 1]!.chainId : undefined;
      const unpacked = await unpack;
      committed.add(i);
      records.push(await ctx.images.commitLayer(unpacked, parent));
      progress({ status: 'Pull complete', progressDetail: {}, id: shortDigest(desc.digest) });
    }
  } catch (err) {
    abort.abort(err);
    // Wait for every download to stop, so no ingest is left open (kept bytes stay resumable),
    // and drop what was unpacked but not committed.
    for (const [i, unpack] of unpacks) {
      const unpacked = await unpack.catch(() => undefined);
      if (unpacked && !committed.has(i)) await ctx.images.discardLayer(unpacked);
    }
    ctx.images.unpin(records.map((r) => r.chainId));
    throw err;
  }
  return records;
}

function checkLayerType(desc: Descriptor): void {
  const known: string[] = [
    MediaTypes.ociLayer,
    MediaTypes.ociLayerGzip,
    MediaTypes.ociLayerZstd,
    MediaTypes.dockerLayer,
    MediaTypes.dockerLayerGzip,
    MediaTypes.dockerLayerForeign,
    'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
  ];
  if (!known.includes(desc.mediaType)) throw new InvalidArgument(`layer ${desc.digest}: unsupported media type "${desc.mediaType}"`);
}

/** One layer to fetch and unpack. */
interface LayerFetch {
  ctx: RegistryContext;
  blobs: BlobEndpoints;
  repository: string;
  desc: Descriptor;
  diffId: string;
  scopes: string[];
  signal: AbortSignal;
  progress: ProgressSink;
}

/**
 * A layer unpacked into a snapshot of its own, its blob verified and stored. When another
 * pull is downloading the same blob, this one waits for it and unpacks the stored blob.
 */
async function fetchLayer(layer: LayerFetch): Promise<UnpackedLayer> {
  const { ctx, desc } = layer;
  let own: Promise<UnpackedLayer> | undefined;
  const stored = ctx.downloads.acquire(desc.digest, () => {
    const download = downloadUnpacking(layer);
    own = download.unpacked;
    return download.stored;
  });
  try {
    if (own) return await own;
    await stored;
    return await unpackStored(layer);
  } finally {
    ctx.downloads.release(desc.digest);
  }
}

/** Unpacks a layer whose blob is in the content store. */
async function unpackStored(layer: LayerFetch): Promise<UnpackedLayer> {
  const { ctx, desc, progress } = layer;
  const id = shortDigest(desc.digest);
  progress({ status: 'Download complete', progressDetail: {}, id });
  const throttle = new Throttle();
  let current = 0;
  const counted = ctx.images.content.openBlob(desc.digest).pipe(
    new Transform({
      transform(chunk: Buffer, _enc, done) {
        current += chunk.length;
        if (throttle.ready()) progress(progressMessage('Extracting', id, current, desc.size));
        done(null, chunk);
      },
    }),
  );
  const unpacked = await ctx.images.extractLayer(counted, layer.diffId).catch((err: unknown) => {
    throw unpackError(desc, err);
  });
  progress(progressMessage('Extracting', id, desc.size, desc.size));
  return unpacked;
}

/** A layer whose content could not be unpacked, named in the error. */
function unpackError(desc: Descriptor, err: unknown): unknown {
  if (err instanceof InvalidArgument) return new InvalidArgument(`layer ${desc.digest}: ${err.message}`, { cause: err });
  return err;
}

/**
 * Downloads a blob into the content store through the resumable ingest `pull-<digest>` and
 * unpacks it while it arrives: each chunk is written to the ingest, then handed to the
 * unpacker. Bytes kept from an interrupted download are not asked for again (Range): they
 * are read back from the ingest for the unpacker. The commit checks digest and size, and
 * the unpacked layer is handed on only when both match. A broken connection keeps the
 * bytes; wrong bytes throw them away.
 *
 * `stored` settles when the blob is in the content store (what a second pull of the same
 * blob waits for); `unpacked` when the layer is unpacked too.
 */
function downloadUnpacking(layer: LayerFetch): { stored: Promise<void>; unpacked: Promise<UnpackedLayer> } {
  let markStored!: () => void;
  let failStored!: (err: unknown) => void;
  const stored = new Promise<void>((resolve, reject) => {
    markStored = resolve;
    failStored = reject;
  });
  const unpacked = (async () => {
    try {
      return await downloadAndUnpack(layer, markStored);
    } catch (err) {
      failStored(err);
      throw err;
    }
  })();
  return { stored, unpacked };
}

async function downloadAndUnpack(layer: LayerFetch, markStored: () => void): Promise<UnpackedLayer> {
  const { ctx, desc, signal, progress } = layer;
  const content = ctx.images.content;
  const id = shortDigest(desc.digest);
  if (await content.info(desc.digest)) {
    markStored();
    return unpackStored(layer);
  }
  const ref = `pull-${desc.digest}`;
  const expected = { digest: desc.digest, size: desc.size };
  let writer = await content.ingest(ref, expected);
  let source: PassThrough | undefined;
  let unpacking: Promise<UnpackedLayer> | undefined;
  try {
    let res: Response | undefined;
    if (writer.offset < desc.size) {
      const resumeFrom = writer.offset;
      res = await layer.blobs.get(layer.repository, desc.digest, {
        scopes: layer.scopes,
        signal,
        headers: resumeFrom > 0 ? { Range: `bytes=${resumeFrom}-` } : {},
      });
      if (!res.ok) throw await registryError(res, `fetching blob ${desc.digest}`);
      if (!res.body) throw new Unavailable(`fetching blob ${desc.digest}: the registry sent no body`);
      if (resumeFrom > 0 && res.status !== 206) {
        // The registry sent the whole blob: start the ingest over.
        await writer.abort();
        writer = await content.ingest(ref, expected);
      }
    }
    source = new PassThrough({ highWaterMark: UNPACK_BUFFER });
    // The unpacker reports a failure through `unpacking`; a stream error needs no listener of its own.
    source.on('error', () => undefined);
    unpacking = ctx.images.extractLayer(source, layer.diffId).catch((err: unknown) => {
      throw unpackError(desc, err);
    });
    const feed = new UnpackFeed(source, unpacking);
    for await (const chunk of writer.readKept()) await feed.write(chunk as Buffer);
    if (res?.body) {
      const throttle = new Throttle();
      const reader = res.body.getReader();
      try {
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          // A view of the bytes undici read, not a copy.
          const chunk = Buffer.from(value.buffer, value.byteOffset, value.byteLength);
          await writer.write(chunk);
          if (throttle.ready()) progress(progressMessage('Downloading', id, writer.offset, desc.size));
          await feed.write(chunk);
        }
      } catch (err) {
        await reader.cancel().catch(() => undefined);
        if (err instanceof InvalidArgument || feed.failed) throw err;
        if (signal.aborted) throw signal.reason ?? err;
        throw new Unavailable(`fetching blob ${desc.digest}: the connection broke after ${writer.offset} of ${desc.size} bytes: ${causeMessage(err)}`, { cause: err });
      }
      progress(progressMessage('Downloading', id, writer.offset, desc.size));
      if (writer.offset < desc.size) {
        throw new Unavailable(`fetching blob ${desc.digest}: the registry ended the download after ${writer.offset} of ${desc.size} bytes`);
      }
    }
    source.end();
    progress({ status: 'Verifying Checksum', progressDetail: {}, id });
    // Checks digest and size; on a mismatch the bytes are thrown away, nothing is stored.
    await writer.commit();
    progress({ status: 'Download complete', progressDetail: {}, id });
  } catch (err) {
    source?.destroy(err instanceof Error ? err : new Error(String(err)));
    const partial = await unpacking?.catch(() => undefined);
    if (partial) await ctx.images.discardLayer(partial);
    // Wrong bytes are dropped; bytes cut short by the network are kept for a resume.
    if (err instanceof InvalidArgument) await writer.abort().catch(() => undefined);
    else await writer.close().catch(() => undefined);
    throw err;
  }
  markStored();
  const result = await unpacking;
  progress(progressMessage('Extracting', id, desc.size, desc.size));
  return result;
}

/** Bytes buffered between the download and the unpacker. */
const UNPACK_BUFFER = 1024 * 1024;

/**
 * Hands downloaded bytes to the unpacker, waiting while its buffer is full. When the unpack
 * fails (a bad tar, a diff id that does not match), the next write throws its error, which
 * stops the download.
 */
class UnpackFeed {
  readonly #stream: PassThrough;
  readonly #ended: Promise<void>;
  #error: unknown;
  #done = false;

  constructor(stream: PassThrough, unpacking: Promise<unknown>) {
    this.#stream = stream;
    this.#ended = unpacking.then(
      () => {
        this.#done = true;
      },
      (err: unknown) => {
        this.#done = true;
        this.#error = err ?? new Error('the layer unpack failed');
      },
    );
  }

  get failed(): boolean {
    return this.#error !== undefined;
  }

  async write(chunk: Buffer): Promise<void> {
    if (this.#error !== undefined) throw this.#error;
    // An unpack that ended early (bytes after the end of the tar) reads nothing more.
    if (this.#done) return;
    if (this.#stream.write(chunk)) return;
    await Promise.race([once(this.#stream, 'drain'), this.#ended]);
    if (this.#error !== undefined) throw this.#error;
  }
}

function causeMessage(err: unknown): string {
  const cause = err instanceof Error && err.cause instanceof Error ? err.cause : err;
  return cause instanceof Error ? cause.message : String(cause);
}
