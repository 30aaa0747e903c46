/**
 * Where each layer was seen on registries: diff id -> the compressed blobs that carry it
 * (digest, media type, size) and the repositories that hold each. Docker's classic store
 * keeps no compressed blobs, so this is what lets a push find a layer on the registry (a
 * HEAD hit), mount it from a sibling repository, or skip compressing it again.
 *
 *   <root>/layer-sources.json   { "<diff id>": [{digest, mediaType, size, repositories: ["host/path"]}] }
 *
 * Written whole and atomically; losing it costs only a re-upload.
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
  /** 'domain/path' of the repositories known to hold the blob. */
  repositories: string[];
}

export class LayerSources {
  readonly #path: string;
  #data: Record<string, BlobSource[]> | undefined;
  /** Writes in order: each waits for the one before. */
  #writing: Promise<void> = Promise.resolve();

  constructor(root: string) {
    this.#path = join(root, 'layer-sources.json');
  }

  async #load(): Promise<Record<string, BlobSource[]>> {
    if (this.#data) return this.#data;
    try {
      const parsed = JSON.parse(await readFile(this.#path, 'utf8')) as unknown;
      this.#data = typeof parsed === 'object' && parsed !== null ? (parsed as Record<string, BlobSource[]>) : {};
    } catch (err) {
      // A missing or unreadable file is an empty record: it only saves uploads.
      if (errnoCode(err) !== 'ENOENT' && !(err instanceof SyntaxError)) throw err;
      this.#data = {};
    }
    return this.#data;
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

  /** Records that `repository` ('domain/path') holds `blob`, which carries `diffId`. */
  async add(diffId: string, blob: Omit<BlobSource, 'repositories'>, repository: string): Promise<void> {
    const data = await this.#load();
    const list = data[diffId] ?? [];
    let entry = list.find((b) => b.digest === blob.digest);
    if (!entry) list.unshift((entry = { ...blob, repositories: [] }));
    if (!entry.repositories.includes(repository)) entry.repositories.unshift(repository);
    entry.repositories = entry.repositories.slice(0, 16);
    data[diffId] = list.slice(0, 8);
    await this.#save();
  }

  async #save(): Promise<void> {
    const write = this.#writing.then(async () => {
      await mkdir(join(this.#path, '..'), { recursive: true });
      await removeAtomicLeftovers(this.#path).catch(() => undefined);
      await writeFileAtomic(this.#path, JSON.stringify(this.#data ?? {}));
    });
    this.#writing = write.catch(() => undefined);
    await write;
  }
}
