/**
 * Which compressed blobs carry each layer: diff id -> the blobs that carry it (digest, media
 * type, size) and the repositories that hold each. Docker's classic store keeps no compressed
 * blobs, so this is what lets a push find a layer on the registry (a HEAD hit), mount it from
 * a sibling repository, or skip compressing it again; and what lets save and push send a
 * layer's very bytes (kept in the content store: pulled, loaded or imported), since its tar
 * made again from the unpacked files seldom hashes to the diff id the config names.
 *
 *   <root>/layer-sources.json   { "<diff id>": [{digest, mediaType, size, repositories: ["host/path"]}] }
 *
 * A blob that came in through load or import is held by no repository (`repositories: []`).
 * Written whole and atomically; losing it costs only a re-upload, or a layer's tar made again.
 */
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { errnoCode } from '../errors/errors.js';
import { removeAtomicLeftovers, writeFileAtomic } from '../util/atomic-file.js';

export interface BlobSource {
  digest: string;
  mediaType: string;
  size: number;
  /** The blob's uncompressed digest when it is not the diff id it is recorded under (a tar made again). */
  diffId?: string;
  /** 'domain/path' of the repositories known to hold the blob; none for a loaded or imported one. */
  repositories: string[];
}

export class LayerSources {
  readonly #path: string;
  /** The file's records, read once (a promise, so concurrent first calls share one read). */
  #data: Promise<Record<string, BlobSource[]>> | undefined;
  /** Writes in order: each waits for the one before. */
  #writing: Promise<void> = Promise.resolve();

  constructor(root: string) {
    this.#path = join(root, 'layer-sources.json');
  }

  #load(): Promise<Record<string, BlobSource[]>> {
    this.#data ??= this.#read().catch((err: unknown) => {
      // Read again next time: the failure may pass.
      this.#data = undefined;
      throw err;
    });
    return this.#data;
  }

  async #read(): Promise<Record<string, BlobSource[]>> {
    try {
      const parsed = JSON.parse(await readFile(this.#path, 'utf8')) as unknown;
      return typeof parsed === 'object' && parsed !== null ? (parsed as Record<string, BlobSource[]>) : {};
    } catch (err) {
      // A missing or unreadable file is an empty record: it only saves uploads.
      if (errnoCode(err) !== 'ENOENT' && !(err instanceof SyntaxError)) throw err;
      return {};
    }
  }

  /** The blobs known to carry `diffId`, most recently seen first. */
  async get(diffId: string): Promise<BlobSource[]> {
    return [...((await this.#load())[diffId] ?? [])];
  }

  /** The digests of every blob recorded for any of `diffIds`. */
  async blobsOf(diffIds: Iterable<string>): Promise<Set<string>> {
    const data = await this.#load();
    const out = new Set<string>();
    for (const diffId of diffIds) for (const blob of data[diffId] ?? []) out.add(blob.digest);
    return out;
  }

  /**
   * Records that `blob` carries `diffId` and, when given, that `repository` ('domain/path')
   * holds it; without one, the blob is one kept here (loaded or imported). A diff id keeps
   * the 8 blobs most recently seen on registries, and every blob held by none.
   */
  async add(diffId: string, blob: Omit<BlobSource, 'repositories'>, repository?: string): Promise<void> {
    const data = await this.#load();
    const list = data[diffId] ?? [];
    let entry = list.find((b) => b.digest === blob.digest);
    if (!entry) list.unshift((entry = { ...blob, repositories: [] }));
    if (repository !== undefined && !entry.repositories.includes(repository)) entry.repositories.unshift(repository);
    entry.repositories = entry.repositories.slice(0, 16);
    let seen = 0;
    data[diffId] = list.filter((b) => b.repositories.length === 0 || ++seen <= 8);
    await this.#save();
  }

  async #save(): Promise<void> {
    const write = this.#writing.then(async () => {
      await mkdir(join(this.#path, '..'), { recursive: true });
      await removeAtomicLeftovers(this.#path).catch(() => undefined);
      await writeFileAtomic(this.#path, JSON.stringify(await this.#load()));
    });
    this.#writing = write.catch(() => undefined);
    await write;
  }
}
