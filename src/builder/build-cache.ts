/**
 * The classic builder's layer cache: which image a step made from a parent image.
 *
 *   <dataRoot>/builder/cache.json   { "version": 1, "entries": { "<key>": "<image id>" } }
 *
 * A key is the digest of the parent image's id and the step's description (its history
 * line, the run config it leaves, and for COPY/ADD the hash of the content copied). The
 * file only names images: it keeps none alive. An entry whose image was deleted (or no
 * longer has that parent) is a miss, and is dropped at the next write.
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { errnoCode } from '../errors/errors.js';
import { writeFileAtomic } from '../util/atomic-file.js';

interface CacheFile {
  version: 1;
  entries: Record<string, string>;
}

export interface ImageRecords {
  record(id: string): { parent?: string } | undefined;
}

export class BuildCache {
  readonly #path: string;
  readonly #images: ImageRecords;
  #entries: Record<string, string>;
  /** Writes one after another, so the last one wins with every entry. */
  #writing: Promise<void> = Promise.resolve();

  private constructor(path: string, images: ImageRecords, entries: Record<string, string>) {
    this.#path = path;
    this.#images = images;
    this.#entries = entries;
  }

  static async open(dataRoot: string, images: ImageRecords): Promise<BuildCache> {
    const dir = join(dataRoot, 'builder');
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const path = join(dir, 'cache.json');
    let entries: Record<string, string> = {};
    try {
      const parsed = JSON.parse(await readFile(path, 'utf8')) as Partial<CacheFile>;
      if (parsed.version === 1 && parsed.entries && typeof parsed.entries === 'object') entries = parsed.entries;
    } catch (err) {
      // No cache yet, or an unreadable one: the cache is only an optimisation.
      if (errnoCode(err) !== 'ENOENT' && !(err instanceof SyntaxError)) throw err;
    }
    return new BuildCache(path, images, entries);
  }

  /** The key of a step from image `parent` described by `parts`. */
  static key(parent: string, parts: readonly unknown[]): string {
    return createHash('sha256').update(JSON.stringify([parent, ...parts])).digest('hex');
  }

  /** The image the step `key` made from `parent`, if it is still there. */
  lookup(key: string, parent: string): string | undefined {
    const id = this.#entries[key];
    if (id === undefined) return undefined;
    const record = this.#images.record(id);
    // A first step from scratch has no parent: '' stands for it.
    return record && (record.parent ?? '') === parent ? id : undefined;
  }

  async store(key: string, imageId: string): Promise<void> {
    this.#entries[key] = imageId;
    const write = async () => {
      const live: Record<string, string> = {};
      for (const [k, id] of Object.entries(this.#entries)) if (this.#images.record(id)) live[k] = id;
      this.#entries = live;
      await writeFileAtomic(this.#path, JSON.stringify({ version: 1, entries: live } satisfies CacheFile), 0o600);
    };
    this.#writing = this.#writing.then(write, write);
    await this.#writing;
  }
}
