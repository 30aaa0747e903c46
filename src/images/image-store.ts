/**
 * The image store: images (a config plus layers), the references that name them, and the
 * layers they share.
 *
 * An image's id is the digest of its config, which lives in the content store. Each layer is
 * a committed snapshot keyed by its chain id, unpacked once however many images share it.
 * Images, references and layer records change together in one metadata transaction, written
 * only after the bytes they point at (blobs, snapshots) are durable; what a crash leaves
 * unreferenced is collected at the next start.
 */
import { createHash, randomUUID } from 'node:crypto';
import { Transform, type Readable } from 'node:stream';
import { decompressStream } from '../archive/decompress.js';
import type { ContentStore } from '../content/content-store.js';
import { sha256Digest } from '../content/digest.js';
import { AlreadyExists, Conflict, InvalidArgument, NotFound, errnoCode, isBerthError } from '../errors/errors.js';
import type { MetadataStore } from '../metadata/metadata-store.js';
import type { ImageRecord, LayerRecord, MetadataV1 } from '../metadata/schema.js';
import { applyLayer } from '../snapshots/apply-layer.js';
import type { Snapshotter } from '../snapshots/overlay-snapshotter.js';
import type { HistoryEntry, ImageConfig } from './oci-types.js';
import {
  familiarString,
  isFullId,
  looksLikeIdPrefix,
  parseReference,
  parseTaggedReference,
  referenceString,
  type Reference,
} from './reference.js';

/** An image as callers see it: plain data, resolved once. */
export interface Image {
  id: string;
  record: ImageRecord;
  config: ImageConfig;
  /** Full references ('docker.io/library/busybox:latest'), sorted. */
  repoTags: string[];
  /** Full canonical references ('docker.io/library/busybox@sha256:…'), sorted. */
  repoDigests: string[];
  /** Sum of the sizes of its layers. */
  size: number;
}

export interface HistoryItem {
  id: string;
  created: number;
  createdBy: string;
  tags: string[];
  size: number;
  comment: string;
}

export interface DeleteRecord {
  Untagged?: string;
  Deleted?: string;
}

/** A layer unpacked by extractLayer, in a snapshot of its own, not yet on top of anything. */
export interface UnpackedLayer {
  /** The active snapshot it is in. */
  key: string;
  diffId: string;
  /** Bytes of file content. */
  size: number;
}

/** What the image store needs to know of containers: which use which image. */
export interface ContainerUsage {
  id: string;
  imageId: string;
  running: boolean;
}

export interface NewImage {
  config: ImageConfig;
  layers: LayerRecord[];
  references?: Reference[];
  manifests?: string[];
  parent?: string;
}

export class ImageStore {
  readonly #content: ContentStore;
  readonly #snapshots: Snapshotter;
  readonly #meta: MetadataStore<MetadataV1>;
  readonly #configs = new Map<string, ImageConfig>();
  #containers: () => ContainerUsage[] = () => [];
  /** Collects the content store's unused blobs; set by the registry, which knows layer blobs. */
  #blobCollector: () => Promise<unknown> = async () => undefined;
  /**
   * Layers unpacked for an image not yet added (a pull or import under way): garbage
   * collection must not take them. Counted, as two pulls may share a layer.
   */
  readonly #pinned = new Map<string, number>();

  constructor(content: ContentStore, snapshots: Snapshotter, meta: MetadataStore<MetadataV1>) {
    this.#content = content;
    this.#snapshots = snapshots;
    this.#meta = meta;
  }

  /** Tells the store how to find the containers that use images (for rmi and prune). */
  setContainerUsage(list: () => ContainerUsage[]): void {
    this.#containers = list;
  }

  /** Tells the store how to collect unused blobs (after a deletion and at daemon start). */
  setBlobCollector(collect: () => Promise<unknown>): void {
    this.#blobCollector = collect;
  }

  /** Deletes the content store's blobs that no image uses any more. */
  async collectBlobs(): Promise<void> {
    await this.#blobCollector();
  }

  get content(): ContentStore {
    return this.#content;
  }

  get snapshots(): Snapshotter {
    return this.#snapshots;
  }

  /** Every image, newest first. */
  async list(): Promise<Image[]> {
    const state = this.#meta.read();
    const images = await Promise.all(Object.values(state.images).map((r) => this.#image(r)));
    return images.sort((a, b) => created(b) - created(a));
  }

  /**
   * Finds an image the way docker does: a reference (the tag defaults to latest), a digest
   * reference, a full id (with or without `sha256:`), or an unambiguous id prefix.
   */
  async resolve(nameOrId: string): Promise<Image> {
    return this.#image(this.#find(nameOrId));
  }

  /** The record of an image by its exact id, or undefined. */
  record(id: string): ImageRecord | undefined {
    return this.#meta.read().images[id];
  }

  layer(chainId: string): LayerRecord | undefined {
    return this.#meta.read().layers[chainId];
  }

  #find(nameOrId: string): ImageRecord {
    const state = this.#meta.read();
    const notFound = (what: string) => new NotFound(`No such image: ${what}`);
    if (nameOrId === '') throw notFound(nameOrId);
    if (isFullId(nameOrId)) {
      const id = nameOrId.startsWith('sha256:') ? nameOrId : `sha256:${nameOrId}`;
      const found = state.images[id];
      if (found) return found;
      throw notFound(nameOrId);
    }
    let ref: Reference | undefined;
    try {
      ref = parseTaggedReference(nameOrId);
    } catch (err) {
      if (!looksLikeIdPrefix(nameOrId)) throw err;
    }
    if (ref) {
      const id = state.references[referenceString(ref)];
      if (id && state.images[id]) return state.images[id]!;
    }
    const prefix = nameOrId.startsWith('sha256:') ? nameOrId.slice(7) : nameOrId;
    if (looksLikeIdPrefix(prefix)) {
      const matches = Object.keys(state.images).filter((id) => id.slice(7).startsWith(prefix));
      if (matches.length === 1) return state.images[matches[0]!]!;
      if (matches.length > 1) throw new InvalidArgument(`multiple IDs found with provided prefix: ${prefix}`);
    }
    throw notFound(ref ? familiarString(ref) : nameOrId);
  }

  async config(id: string): Promise<ImageConfig> {
    let config = this.#configs.get(id);
    if (!config) {
      config = JSON.parse((await this.#content.readBlob(id)).toString('utf8')) as ImageConfig;
      this.#configs.set(id, config);
    }
    return config;
  }

  async #image(record: ImageRecord): Promise<Image> {
    const state = this.#meta.read();
    const repoTags: string[] = [];
    const repoDigests: string[] = [];
    for (const [ref, id] of Object.entries(state.references)) {
      if (id !== record.id) continue;
      (ref.includes('@') ? repoDigests : repoTags).push(ref);
    }
    const size = record.layers.reduce((sum, chainId) => sum + (state.layers[chainId]?.size ?? 0), 0);
    return { id: record.id, record, config: await this.config(record.id), repoTags: repoTags.sort(), repoDigests: repoDigests.sort(), size };
  }

  /**
   * Unpacks one layer (a tar, compressed or not) on top of `parent` (a chain id) and commits
   * it as a snapshot keyed by its chain id. A layer that is already there is not unpacked
   * twice. The returned record is not stored until an image that uses it is added.
   */
  async unpackLayer(input: Readable, parent: string | undefined, expectedDiffId?: string): Promise<LayerRecord> {
    const unpacked = await this.extractLayer(input, expectedDiffId);
    return this.commitLayer(unpacked, parent);
  }

  /**
   * Unpacks one layer into a snapshot of its own, below nothing yet: a layer's files never
   * depend on the layers under it, so the layers of an image can be unpacked all at once and
   * in any order, then committed in order with commitLayer (or dropped with discardLayer).
   * Throws, keeping nothing, when the tar is bad or does not hash to `expectedDiffId`.
   */
  async extractLayer(input: Readable, expectedDiffId?: string): Promise<UnpackedLayer> {
    // Listened to from here on: decompressStream takes the input's events at once.
    const tar = await decompressStream(input);
    const hash = createHash('sha256');
    const hashed = tar.pipe(
      new Transform({
        transform(chunk: Buffer, _enc, done) {
          hash.update(chunk);
          done(null, chunk);
        },
      }),
    );
    tar.on('error', (err) => hashed.destroy(err));
    // A failure while the snapshot is prepared reaches the unpack through the stream (reading
    // a failed stream throws its error); until then this keeps it from being an uncaught one.
    hashed.on('error', () => undefined);
    const key = `extract-${randomUUID()}`;
    try {
      await this.#snapshots.prepare(key);
    } catch (err) {
      hashed.destroy();
      throw err;
    }
    try {
      const { size } = await applyLayer(this.#snapshots.upperDir(key), hashed);
      await drain(hashed);
      const diffId = `sha256:${hash.digest('hex')}`;
      if (expectedDiffId && diffId !== expectedDiffId) {
        throw new InvalidArgument(`layer diff id mismatch: the content hashes to ${diffId}, the image says ${expectedDiffId}`);
      }
      return { key, diffId, size };
    } catch (err) {
      await this.#snapshots.remove(key).catch(() => undefined);
      throw err;
    } finally {
      hashed.destroy();
    }
  }

  /**
   * Makes an unpacked layer the layer on top of `parent` (a chain id), keyed by its chain id;
   * when that layer is there already (unpacked by another pull meanwhile), the unpacked copy
   * is dropped. The layer is kept from garbage collection until an image uses it.
   */
  async commitLayer(unpacked: UnpackedLayer, parent: string | undefined): Promise<LayerRecord> {
    const { key, diffId, size } = unpacked;
    const chainId = parent ? sha256Digest(`${parent} ${diffId}`) : diffId;
    let committed = false;
    try {
      if (!(await this.#snapshots.stat(chainId))) {
        try {
          await this.#snapshots.commit(chainId, key, parent ? { parent } : {});
          committed = true;
        } catch (err) {
          // A concurrent unpack of the same layer won the race: use its snapshot.
          if (!(isBerthError(err) && err instanceof AlreadyExists)) throw err;
        }
      }
      this.#pinned.set(chainId, (this.#pinned.get(chainId) ?? 0) + 1);
      const existing = this.#meta.read().layers[chainId];
      return existing ?? { chainId, diffId, ...(parent ? { parent } : {}), size };
    } finally {
      if (!committed) await this.#snapshots.remove(key).catch(() => undefined);
    }
  }

  /** Drops a layer unpacked by extractLayer and never committed. */
  async discardLayer(unpacked: UnpackedLayer): Promise<void> {
    await this.#snapshots.remove(unpacked.key).catch(() => undefined);
  }

  /** Stores a config and adds the image with its layers and references in one transaction. */
  async addImage(image: NewImage): Promise<string> {
    const configBytes = Buffer.from(JSON.stringify(image.config));
    return this.addImageWithConfig(configBytes, image);
  }

  /** As addImage, with the config's exact bytes (kept byte-for-byte, so the id is stable). */
  async addImageWithConfig(configBytes: Buffer, image: Omit<NewImage, 'config'>): Promise<string> {
    const config = JSON.parse(configBytes.toString('utf8')) as ImageConfig;
    const diffIds = config.rootfs?.diff_ids ?? [];
    if (diffIds.length !== image.layers.length || diffIds.some((d, i) => d !== image.layers[i]!.diffId)) {
      throw new InvalidArgument('image config: rootfs.diff_ids do not match the layers');
    }
    const { digest: id } = await this.#content.writeBlob(configBytes);
    this.#configs.set(id, config);
    await this.#meta.update((state) => {
      for (const layer of image.layers) state.layers[layer.chainId] ??= layer;
      const previous = state.images[id];
      state.images[id] = {
        id,
        layers: image.layers.map((l) => l.chainId),
        manifests: [...new Set([...(previous?.manifests ?? []), ...(image.manifests ?? [])])],
        ...(image.parent ?? previous?.parent ? { parent: image.parent ?? previous?.parent } : {}),
        loaded: previous?.loaded ?? new Date().toISOString(),
      };
      for (const ref of image.references ?? []) state.references[referenceString(ref)] = id;
    });
    this.unpin(image.layers.map((l) => l.chainId));
    return id;
  }

  /** `docker tag`: points `target` (a reference) at the image `source` names. */
  async tag(source: string, target: string): Promise<void> {
    const record = this.#find(source);
    const ref = parseTaggedReference(target);
    if (ref.digest) throw new InvalidArgument(`refusing to create a tag with a digest reference`);
    await this.#meta.update((state) => {
      state.references[referenceString(ref)] = record.id;
    });
  }

  /** `docker rmi`: untag, or delete, with docker's conflict rules. */
  async remove(nameOrId: string, opts: { force?: boolean; prune?: boolean } = {}): Promise<DeleteRecord[]> {
    const force = opts.force ?? false;
    const prune = opts.prune ?? true;
    const record = this.#find(nameOrId);
    const id = record.id;
    const records: DeleteRecord[] = [];
    const plan = new Map(Object.entries(this.#meta.read().references));
    const refsOf = (imageId: string) => [...plan].filter(([, v]) => v === imageId).map(([k]) => k);
    const containers = this.#containers();
    let quiet = false;

    if (!isIdPrefix(id, nameOrId)) {
      const ref = parseTaggedReference(nameOrId);
      const full = referenceString(ref);
      if (!force && isSingleReference(refsOf(id))) {
        const user = containers.find((c) => c.imageId === id);
        if (user) {
          throw new Conflict(
            `conflict: unable to remove repository reference "${nameOrId}" (must force) - container ${short(user.id)} is using its referenced image ${short(id)}`,
          );
        }
      }
      plan.delete(full);
      records.push({ Untagged: familiarString(ref) });
      if (!ref.digest) {
        const name = full.slice(0, full.lastIndexOf(':'));
        const sameRepoTag = refsOf(id).some((r) => !r.includes('@') && r.slice(0, r.lastIndexOf(':')) === name);
        if (!sameRepoTag) {
          for (const r of refsOf(id)) {
            if (r.startsWith(`${name}@`)) {
              plan.delete(r);
              records.push({ Untagged: familiarString(parseReference(r)) });
            }
          }
        }
      }
      if (refsOf(id).length > 0) {
        await this.#commitReferences(plan);
        return records;
      }
      quiet = true;
    } else if (isSingleReference(refsOf(id))) {
      const conflict = this.#conflict(id, plan, containers, { hard: true, stopped: !force, references: false });
      if (conflict) throw conflict;
      for (const r of refsOf(id)) {
        plan.delete(r);
        records.push({ Untagged: familiarString(parseReference(r)) });
      }
    }

    const deleted = await this.#deleteHelper(id, plan, containers, records, force, prune, quiet);
    await this.#commitDeletion(plan, deleted);
    return records;
  }

  async #deleteHelper(
    id: string,
    plan: Map<string, string>,
    containers: ContainerUsage[],
    records: DeleteRecord[],
    force: boolean,
    prune: boolean,
    quiet: boolean,
    deleted: string[] = [],
  ): Promise<string[]> {
    const conflict = this.#conflict(id, plan, containers, { hard: true, stopped: !force, references: !force }, deleted);
    if (conflict) {
      const dangling = ![...plan.values()].includes(id) && !this.#children(id, deleted).length;
      if (quiet && (!dangling || conflict.used)) return deleted;
      throw conflict;
    }
    for (const [ref, target] of [...plan]) {
      if (target !== id) continue;
      plan.delete(ref);
      records.push({ Untagged: familiarString(parseReference(ref)) });
    }
    deleted.push(id);
    records.push({ Deleted: id });
    const parent = this.#meta.read().images[id]?.parent;
    if (prune && parent && this.#meta.read().images[parent]) {
      return this.#deleteHelper(parent, plan, containers, records, false, true, true, deleted);
    }
    return deleted;
  }

  #children(id: string, deleted: string[] = []): string[] {
    return Object.values(this.#meta.read().images)
      .filter((r) => r.parent === id && !deleted.includes(r.id))
      .map((r) => r.id);
  }

  #conflict(
    id: string,
    plan: Map<string, string>,
    containers: ContainerUsage[],
    mask: { hard: boolean; stopped: boolean; references: boolean },
    deleted: string[] = [],
  ): (Conflict & { used: boolean }) | undefined {
    const make = (hard: boolean, used: boolean, message: string) =>
      Object.assign(
        new Conflict(`conflict: unable to delete ${short(id)} (${hard ? 'cannot be forced' : 'must be forced'}) - ${message}`),
        { used },
      );
    if (mask.hard && this.#children(id, deleted).length > 0) return make(true, false, 'image has dependent child images');
    const running = containers.find((c) => c.imageId === id && c.running);
    if (mask.hard && running) return make(true, true, `image is being used by running container ${short(running.id)}`);
    if (mask.references && [...plan.values()].includes(id)) return make(false, false, 'image is referenced in multiple repositories');
    const stopped = containers.find((c) => c.imageId === id && !c.running);
    if (mask.stopped && stopped) return make(false, true, `image is being used by stopped container ${short(stopped.id)}`);
    return undefined;
  }

  async #commitReferences(plan: Map<string, string>): Promise<void> {
    await this.#meta.update((state) => {
      state.references = Object.fromEntries(plan);
    });
  }

  async #commitDeletion(plan: Map<string, string>, deleted: string[]): Promise<void> {
    const manifests = new Set<string>();
    await this.#meta.update((state) => {
      state.references = Object.fromEntries(plan);
      for (const id of deleted) {
        for (const m of state.images[id]?.manifests ?? []) manifests.add(m);
        delete state.images[id];
      }
      for (const image of Object.values(state.images)) for (const m of image.manifests) manifests.delete(m);
    });
    for (const id of deleted) {
      this.#configs.delete(id);
      await this.#content.delete(id).catch(ignoreNotFound);
    }
    for (const m of manifests) await this.#content.delete(m).catch(ignoreNotFound);
    await this.collectLayers();
    await this.collectBlobs();
  }

  /**
   * Removes the layers no image and no container uses: their records, then their snapshots,
   * top layers first. Also removes snapshots that a crash left behind without a record.
   */
  async collectLayers(): Promise<string[]> {
    const state = this.#meta.read();
    const used = new Set<string>();
    const keep = (chainId: string | undefined) => {
      for (let c = chainId; c && !used.has(c); c = state.layers[c]?.parent) used.add(c);
    };
    for (const image of Object.values(state.images)) keep(image.layers.at(-1));
    for (const c of this.#containers()) keep(state.images[c.imageId]?.layers.at(-1));
    for (const chainId of this.#extraLayerRoots()) keep(chainId);
    const unused = Object.keys(state.layers).filter((c) => !used.has(c));
    if (unused.length > 0) {
      await this.#meta.update((draft) => {
        for (const c of unused) delete draft.layers[c];
      });
    }
    // Committed snapshots keyed by a chain id with no record are unused too (a crash between
    // the snapshot commit and the metadata transaction leaves those).
    const removable = new Set(unused);
    const snapshots: { key: string; parent?: string | undefined }[] = [];
    for await (const info of this.#snapshots.walk()) {
      snapshots.push(info);
      if (info.kind === 'committed' && info.key.startsWith('sha256:') && !used.has(info.key)) removable.add(info.key);
    }
    const depth = (key: string): number => {
      let d = 0;
      for (let s = snapshots.find((x) => x.key === key); s?.parent; s = snapshots.find((x) => x.key === s!.parent)) d++;
      return d;
    };
    const order = [...removable].filter((k) => snapshots.some((s) => s.key === k)).sort((a, b) => depth(b) - depth(a));
    const removed: string[] = [];
    for (const key of order) {
      try {
        await this.#snapshots.remove(key);
        removed.push(key);
      } catch (err) {
        if (!(err instanceof Conflict) && !(err instanceof NotFound)) throw err;
      }
    }
    return removed;
  }

  /** Chain ids that something outside images and containers holds on to (pulls, imports). */
  #extraLayerRoots(): string[] {
    return [...this.#pinned.keys()];
  }

  /** Lets garbage collection take layers an abandoned pull or import had unpacked. */
  unpin(chainIds: string[]): void {
    for (const chainId of chainIds) {
      const n = (this.#pinned.get(chainId) ?? 0) - 1;
      if (n > 0) this.#pinned.set(chainId, n);
      else this.#pinned.delete(chainId);
    }
  }

  /** `docker image prune`: dangling images, or with `all` every image no container uses. */
  async prune(opts: { all?: boolean; filter?: (image: Image) => boolean } = {}): Promise<{ deleted: DeleteRecord[]; reclaimed: number }> {
    const containers = this.#containers();
    const before = await this.#diskUsage();
    const records: DeleteRecord[] = [];
    for (const image of await this.list()) {
      if (!this.#meta.read().images[image.id]) continue;
      if (containers.some((c) => c.imageId === image.id)) continue;
      if (this.#children(image.id).length > 0) continue;
      if (!opts.all && image.repoTags.length > 0) continue;
      if (opts.filter && !opts.filter(image)) continue;
      try {
        records.push(...(await this.remove(image.id, { force: opts.all ?? false, prune: true })));
      } catch (err) {
        if (!(err instanceof Conflict)) throw err;
      }
    }
    return { deleted: records, reclaimed: Math.max(0, before - (await this.#diskUsage())) };
  }

  async #diskUsage(): Promise<number> {
    return Object.values(this.#meta.read().layers).reduce((sum, l) => sum + l.size, 0);
  }

  /** `docker history`: newest first, as docker lists it. */
  async history(nameOrId: string): Promise<HistoryItem[]> {
    const top = await this.resolve(nameOrId);
    const state = this.#meta.read();
    // Which history entry is the top of which image: walk the parent chain.
    const owners = new Map<number, Image>();
    for (let image: Image | undefined = top; image; ) {
      const length = image.config.history?.length ?? 0;
      if (length > 0 && !owners.has(length - 1)) owners.set(length - 1, image);
      const parent: ImageRecord | undefined = image.record.parent ? state.images[image.record.parent] : undefined;
      image = parent ? await this.#image(parent) : undefined;
    }
    const history: HistoryEntry[] = top.config.history ?? [];
    const items: HistoryItem[] = [];
    let layerIndex = 0;
    history.forEach((entry, index) => {
      const owner = owners.get(index);
      let size = 0;
      if (!entry.empty_layer) {
        const chainId = top.record.layers[layerIndex++];
        size = chainId ? (state.layers[chainId]?.size ?? 0) : 0;
      }
      items.push({
        id: owner?.id ?? '<missing>',
        created: entry.created ? Math.floor(Date.parse(entry.created) / 1000) : 0,
        createdBy: entry.created_by ?? '',
        tags: owner ? owner.repoTags.map((r) => familiarString(parseReference(r))) : [],
        size,
        comment: entry.comment ?? '',
      });
    });
    if (history.length === 0) {
      items.push({ id: top.id, created: created(top), createdBy: '', tags: top.repoTags.map((r) => familiarString(parseReference(r))), size: top.size, comment: '' });
    }
    return items.reverse();
  }

  /** Layer sizes shared between images (for `system df`). */
  layerUsers(): Map<string, number> {
    const state = this.#meta.read();
    const users = new Map<string, number>();
    for (const image of Object.values(state.images)) {
      for (const chainId of image.layers) users.set(chainId, (users.get(chainId) ?? 0) + 1);
    }
    return users;
  }
}

export function created(image: Image): number {
  const t = image.config.created ? Date.parse(image.config.created) : NaN;
  return Number.isNaN(t) ? 0 : Math.floor(t / 1000);
}

export function short(id: string): string {
  return id.replace(/^sha256:/, '').slice(0, 12);
}

function isIdPrefix(id: string, candidate: string): boolean {
  return id.startsWith(candidate) || id.slice(7).startsWith(candidate);
}

/** All references are in one repository and at most one of them is a tag. */
function isSingleReference(refs: string[]): boolean {
  if (refs.length <= 1) return refs.length === 1;
  const name = (r: string) => (r.includes('@') ? r.slice(0, r.indexOf('@')) : r.slice(0, r.lastIndexOf(':')));
  const tags = refs.filter((r) => !r.includes('@'));
  if (tags.length > 1) return false;
  const canonicalNames = new Set(refs.filter((r) => r.includes('@')).map(name));
  const single = tags[0] ?? refs[0]!;
  return canonicalNames.size === 1 && canonicalNames.has(name(single));
}

function ignoreNotFound(err: unknown): void {
  if (err instanceof NotFound || errnoCode(err) === 'ENOENT') return;
  throw err;
}

function drain(stream: Readable): Promise<void> {
  if (stream.readableEnded || stream.destroyed) return Promise.resolve();
  return new Promise((resolve, reject) => {
    stream.on('end', resolve);
    stream.on('error', reject);
    stream.on('close', resolve);
    stream.resume();
  });
}
