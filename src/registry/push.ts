/**
 * Push: an image's layers (each found on the registry with a HEAD, mounted from a sibling
 * repository, or compressed and uploaded), its config, then a Docker schema 2 manifest under
 * the tag, with Docker's progress messages.
 *
 * A layer whose blob this engine keeps (pulled, loaded, imported) is uploaded as that blob,
 * a kept plain tar gzipped. Other layers (built, committed) are gzipped from their tar made
 * again from the unpacked files. When that tar does not hash to the diff id the config
 * names, the config is pushed with the new diff ids, so the registry never holds an image
 * that cannot be pulled. The compressed digest is recorded per diff id, so the next push is
 * a HEAD hit.
 */
import { randomUUID } from 'node:crypto';
import { createHash } from 'node:crypto';
import { Transform, type Readable } from 'node:stream';
import { createGzip } from 'node:zlib';
import { NotFound, Unavailable } from '../errors/errors.js';
import type { Descriptor, Manifest } from '../images/oci-types.js';
import { MediaTypes } from '../images/oci-types.js';
import { familiarName, fullName, referenceString, withTag, type Reference } from '../images/reference.js';
import type { LayerRecord } from '../metadata/schema.js';
import { diffLayer } from '../snapshots/diff-layer.js';
import type { AuthConfig } from './auth.js';
import type { BlobSource } from './layer-sources.js';
import { sha256 } from './manifests.js';
import type { RegistryContext } from './pull.js';
import { Semaphore } from '../util/semaphore.js';
import { uploadBlob } from './blob-upload.js';
import { Throttle, progressMessage, shortDigest, type ProgressSink } from './progress.js';
import { RegistryClient, pullScope, pushScope, registryError } from './registry-client.js';

/** Layers uploaded at once, as docker's max-concurrent-uploads default. */
export const PUSH_CONCURRENCY = 5;

export interface PushResult {
  tag: string;
  digest: string;
  size: number;
}

/**
 * Pushes `repo:tag` for each tag (every tag of the repository when `tags` is empty).
 * Errors before anything was sent name the image as docker does.
 */
export async function pushImage(ctx: RegistryContext, repo: Reference, tags: string[], auth: AuthConfig, progress: ProgressSink): Promise<PushResult[]> {
  if (tags.length === 0) tags = await tagsOf(ctx, repo);
  if (tags.length === 0) throw new NotFound(`An image does not exist locally with the tag: ${familiarName(repo)}`);
  const images = [];
  for (const tag of tags) {
    const ref = withTag(repo, tag);
    try {
      images.push({ tag, image: await ctx.images.resolve(referenceString(ref)) });
    } catch (err) {
      if (err instanceof NotFound) throw new NotFound(`tag does not exist: ${familiarName(repo)}:${tag}`, { cause: err });
      throw err;
    }
  }
  const client = new RegistryClient(repo.domain, auth, ctx.clientOptions);
  progress({ status: `The push refers to repository [${fullName(repo)}]` });
  const results: PushResult[] = [];
  for (const { tag, image } of images) {
    const layers = image.record.layers.map((chainId) => {
      const layer = ctx.images.layer(chainId);
      if (!layer) throw new NotFound(`image ${image.id}: layer ${chainId} is missing`);
      return layer;
    });
    const pushed = await pushLayers(ctx, client, repo, layers, progress);
    const descriptors = pushed.map((p) => p.desc);
    const localConfig = await ctx.images.content.readBlob(image.id);
    const rewritten = pushed.some((p, i) => p.diffId !== layers[i]!.diffId);
    // A layer whose tar could not be made again byte for byte went up as the tar made now:
    // the config pushed names those diff ids (the image gets another id on the registry).
    const configBytes = rewritten ? withDiffIds(localConfig, pushed.map((p) => p.diffId)) : localConfig;
    const configDesc: Descriptor = { mediaType: MediaTypes.dockerConfig, size: configBytes.length, digest: sha256(configBytes) };
    await pushConfig(client, repo, configDesc, configBytes);
    const manifest: Manifest = { schemaVersion: 2, mediaType: MediaTypes.dockerManifest, config: configDesc, layers: descriptors };
    // Indented with three spaces, as docker writes its manifests.
    const bytes = Buffer.from(JSON.stringify(manifest, null, 3));
    const digest = sha256(bytes);
    const res = await client.request('PUT', `/v2/${repo.path}/manifests/${tag}`, {
      scopes: [pushScope(repo.path)],
      headers: { 'Content-Type': MediaTypes.dockerManifest },
      body: bytes,
    });
    if (!res.ok) throw await registryError(res);
    await res.body?.cancel().catch(() => undefined);
    if (!rewritten) {
      await ctx.images.content.writeBlob(bytes, { digest });
      await ctx.images.addImageWithConfig(configBytes, {
        layers,
        references: [{ domain: repo.domain, path: repo.path, digest }],
        manifests: [digest],
      });
    }
    progress({ status: `${tag}: digest: ${digest} size: ${bytes.length}` });
    progress({ aux: { Tag: tag, Digest: digest, Size: bytes.length } });
    results.push({ tag, digest, size: bytes.length });
  }
  return results;
}

async function tagsOf(ctx: RegistryContext, repo: Reference): Promise<string[]> {
  const prefix = `${fullName(repo)}:`;
  const tags = new Set<string>();
  for (const image of await ctx.images.list()) {
    for (const t of image.repoTags) if (t.startsWith(prefix)) tags.add(t.slice(prefix.length));
  }
  return [...tags].sort();
}

/** A layer on the registry: its descriptor and the digest of its uncompressed tar. */
interface PushedLayer {
  desc: Descriptor;
  diffId: string;
}

function withDiffIds(config: Buffer, diffIds: string[]): Buffer {
  const doc = JSON.parse(config.toString('utf8')) as { rootfs: { diff_ids: string[] } };
  doc.rootfs.diff_ids = diffIds;
  return Buffer.from(JSON.stringify(doc));
}

/** Pushes the layers top first, as docker lists them; returns them bottom first. */
async function pushLayers(ctx: RegistryContext, client: RegistryClient, repo: Reference, layers: LayerRecord[], progress: ProgressSink): Promise<PushedLayer[]> {
  const order = [...layers.keys()].reverse();
  for (const i of order) progress({ status: 'Preparing', progressDetail: {}, id: shortDigest(layers[i]!.diffId) });
  for (const i of order.slice(PUSH_CONCURRENCY)) progress({ status: 'Waiting', progressDetail: {}, id: shortDigest(layers[i]!.diffId) });
  const slots = new Semaphore(PUSH_CONCURRENCY);
  // The same layer twice in one image is pushed once.
  const byDiffId = new Map<string, Promise<PushedLayer>>();
  const tasks = order.map((i) => {
    const layer = layers[i]!;
    let task = byDiffId.get(layer.diffId);
    if (!task) {
      task = slots.run(() => pushLayer(ctx, client, repo, layer, progress));
      byDiffId.set(layer.diffId, task);
    }
    return [i, task] as const;
  });
  const results = await Promise.allSettled(tasks.map(([, t]) => t));
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
  const out: PushedLayer[] = new Array<PushedLayer>(layers.length);
  tasks.forEach(([i], n) => (out[i] = (results[n] as PromiseFulfilledResult<PushedLayer>).value));
  return out;
}

async function pushLayer(ctx: RegistryContext, client: RegistryClient, repo: Reference, layer: LayerRecord, progress: ProgressSink): Promise<PushedLayer> {
  const id = shortDigest(layer.diffId);
  const target = fullName(repo);
  const known = await ctx.sources.get(layer.diffId);
  const descOf = (b: BlobSource): PushedLayer => ({
    desc: { mediaType: manifestLayerType(b.mediaType), size: b.size, digest: b.digest },
    diffId: b.diffId ?? layer.diffId,
  });

  // 1. The registry may have it already, under this repository.
  for (const blob of known.slice(0, 4)) {
    if (await blobExists(client, repo.path, blob.digest)) {
      progress({ status: 'Layer already exists', progressDetail: {}, id });
      await ctx.sources.add(layer.diffId, blob, target);
      return descOf(blob);
    }
  }
  // 2. Or under a sibling repository of the same registry: mount it.
  for (const blob of known) {
    for (const source of blob.repositories) {
      const slash = source.indexOf('/');
      if (source.slice(0, slash) !== repo.domain || source === target) continue;
      const from = source.slice(slash + 1);
      if (await mountBlob(client, repo.path, blob.digest, from)) {
        progress({ status: `Mounted from ${from}`, progressDetail: {}, id });
        await ctx.sources.add(layer.diffId, blob, target);
        return descOf(blob);
      }
    }
  }
  // 3. Else upload it: a compressed blob this engine keeps for it (pulled, loaded or imported)
  // as it is; else a kept plain tar gzipped, as docker pushes layers; else the layer's tar
  // made again and gzipped.
  const content = ctx.images.content;
  const present: BlobSource[] = [];
  for (const b of known) if ((await content.info(b.digest))?.size === b.size) present.push(b);
  const kept = present.find((b) => !isPlainTar(b.mediaType)) ?? present[0];
  const blob: UploadBlob =
    kept && !isPlainTar(kept.mediaType)
      ? { digest: kept.digest, size: kept.size, mediaType: manifestLayerType(kept.mediaType), diffId: kept.diffId ?? layer.diffId }
      : { ...(await compressLayer(ctx, layer, kept)), mediaType: MediaTypes.dockerLayerGzip, compressed: true };
  try {
    const desc: Descriptor = { mediaType: blob.mediaType, size: blob.size, digest: blob.digest };
    if (await blobExists(client, repo.path, blob.digest)) {
      progress({ status: 'Layer already exists', progressDetail: {}, id });
    } else {
      const throttle = new Throttle();
      let sent = 0;
      await uploadBlob(client, repo.path, blob.digest, blob.size, (start, end) => {
        // A chunk sent again after a failure counts from where it starts.
        sent = start;
        return content.openBlob(blob.digest, start, end).pipe(
          new Transform({
            transform(chunk: Buffer, _enc, done) {
              sent += chunk.length;
              if (throttle.ready()) progress(progressMessage('Pushing', id, sent, blob.size));
              done(null, chunk);
            },
          }),
        );
      });
      progress(progressMessage('Pushing', id, blob.size, blob.size));
      progress({ status: 'Pushed', progressDetail: {}, id });
    }
    const source = { digest: blob.digest, mediaType: blob.mediaType, size: blob.size, ...(blob.diffId !== layer.diffId ? { diffId: blob.diffId } : {}) };
    await ctx.sources.add(layer.diffId, source, target);
    return { desc, diffId: blob.diffId };
  } finally {
    // A layer compressed for this push is not kept (docker's classic store keeps none): the
    // recorded digest makes the next push a HEAD hit.
    if (blob.compressed) await content.delete(blob.digest).catch(() => undefined);
  }
}

/** A layer blob to upload from the content store, and the diff id of the tar it holds. */
interface UploadBlob {
  digest: string;
  size: number;
  mediaType: string;
  diffId: string;
  /** Compressed for this push only: deleted once it is up. */
  compressed?: boolean;
}

function isPlainTar(mediaType: string): boolean {
  return mediaType === MediaTypes.ociLayer || mediaType === MediaTypes.dockerLayer;
}

/**
 * Docker schema 2 manifests name layers with docker's media types; zstd, which docker's
 * types lack, keeps the OCI one (as docker writes it).
 */
function manifestLayerType(mediaType: string): string {
  if (mediaType === MediaTypes.ociLayerGzip) return MediaTypes.dockerLayerGzip;
  if (mediaType === MediaTypes.ociLayer) return MediaTypes.dockerLayer;
  return mediaType;
}

/**
 * A layer's tar gzipped into the content store, with the digest of the tar: the kept plain
 * tar `from` when there is one, else the tar made again from the unpacked layer (whose digest
 * is the diff id it has now: a tar from elsewhere is seldom made again byte for byte).
 */
async function compressLayer(ctx: RegistryContext, layer: LayerRecord, from?: BlobSource): Promise<{ digest: string; size: number; diffId: string }> {
  const content = ctx.images.content;
  const tar: Readable = from ? content.openBlob(from.digest) : diffLayer(ctx.images.snapshots.upperDir(layer.chainId));
  const hash = createHash('sha256');
  const gzip = createGzip();
  tar.on('error', (err) => gzip.destroy(err));
  tar.on('data', (chunk: Buffer) => hash.update(chunk));
  tar.pipe(gzip);
  const writer = await content.ingest(`push-${layer.diffId}-${randomUUID()}`);
  try {
    for await (const chunk of gzip as Readable) await writer.write(chunk as Buffer);
    const diffId = `sha256:${hash.digest('hex')}`;
    return { ...(await writer.commit()), diffId };
  } catch (err) {
    await writer.abort().catch(() => undefined);
    throw err;
  }
}

async function blobExists(client: RegistryClient, repository: string, digest: string): Promise<boolean> {
  const res = await client.request('HEAD', `/v2/${repository}/blobs/${digest}`, { scopes: [pushScope(repository)] });
  await res.body?.cancel().catch(() => undefined);
  if (res.ok) return true;
  if (res.status === 404) return false;
  throw await registryError(res);
}

/** A cross-repository mount; false when the registry would rather take an upload. */
async function mountBlob(client: RegistryClient, repository: string, digest: string, from: string): Promise<boolean> {
  const res = await client.request('POST', `/v2/${repository}/blobs/uploads/?mount=${encodeURIComponent(digest)}&from=${encodeURIComponent(from)}`, {
    scopes: [pushScope(repository), pullScope(from)],
  });
  await res.body?.cancel().catch(() => undefined);
  if (res.status === 201) return true;
  if (res.status === 202) {
    // The registry opened an upload instead; it is not wanted.
    const location = res.headers.get('location');
    if (location) {
      const del = await client.request('DELETE', location, { scopes: [pushScope(repository)] }).catch(() => undefined);
      await del?.body?.cancel().catch(() => undefined);
    }
    return false;
  }
  if (res.status === 401 || res.status === 403 || res.status === 404) return false;
  throw await registryError(res);
}

async function pushConfig(client: RegistryClient, repo: Reference, desc: Descriptor, bytes: Buffer): Promise<void> {
  if (await blobExists(client, repo.path, desc.digest)) return;
  const scopes = [pushScope(repo.path)];
  const start = await client.request('POST', `/v2/${repo.path}/blobs/uploads/`, { scopes });
  await start.body?.cancel().catch(() => undefined);
  if (start.status !== 202) throw await registryError(start);
  const location = start.headers.get('location');
  if (!location) throw new Unavailable(`registry ${client.domain}: it started an upload without a Location`);
  const url = new URL(location, client.base);
  url.searchParams.set('digest', desc.digest);
  const res = await client.request('PUT', url.toString(), { scopes, headers: { 'Content-Type': 'application/octet-stream' }, body: bytes });
  if (res.status !== 201 && res.status !== 204) throw await registryError(res, `uploading config ${desc.digest}`);
  await res.body?.cancel().catch(() => undefined);
}

