/**
 * The one transactional store for metadata that must change atomically: names, tags,
 * container records and the references between objects.
 *
 * The whole state is one JSON document, held in memory and replaced on disk by an atomic
 * write (temp file, fsync, rename, fsync dir) at the end of every transaction. A kill -9 at
 * any moment leaves on disk either the state before the transaction or the state after it.
 * Transactions run one at a time; each works on a copy, so a transaction that throws changes
 * nothing. Reads see the last committed state.
 */
import { readFile } from 'node:fs/promises';
import { Unavailable, errnoCode } from '../errors/errors.js';
import { removeAtomicLeftovers, writeFileAtomic } from '../util/atomic-file.js';

export class MetadataStore<T extends object> {
  readonly path: string;
  #state: T;
  #queue: Promise<unknown> = Promise.resolve();

  private constructor(path: string, state: T) {
    this.path = path;
    this.#state = state;
  }

  /** Opens the store at `path`, creating it with `initial` when there is none yet. */
  static async open<T extends object>(path: string, initial: () => T): Promise<MetadataStore<T>> {
    // A kill during a transaction leaves its temporary file; each crash would add one more.
    await removeAtomicLeftovers(path);
    let state: T;
    try {
      state = JSON.parse(await readFile(path, 'utf8')) as T;
    } catch (err) {
      if (errnoCode(err) !== 'ENOENT') {
        throw new Unavailable(`metadata store ${path}: cannot be read`, { cause: err });
      }
      state = initial();
      await writeFileAtomic(path, JSON.stringify(state));
    }
    return new MetadataStore(path, state);
  }

  /** The last committed state. Callers must not change it: use `update`. */
  read(): Readonly<T> {
    return this.#state;
  }

  /**
   * Runs `change` on a copy of the state and commits the copy when it returns. What `change`
   * returns is passed through. Transactions are serialised.
   */
  update<R>(change: (draft: T) => R | Promise<R>): Promise<R> {
    const run = async (): Promise<R> => {
      const draft = structuredClone(this.#state);
      const result = await change(draft);
      await writeFileAtomic(this.path, JSON.stringify(draft));
      this.#state = draft;
      return result;
    };
    const next = this.#queue.then(run, run);
    this.#queue = next.catch(() => undefined);
    return next;
  }
}
