/**
 * The content store: blobs by digest.
 *
 *   <root>/blobs/sha256/<hex>        committed blobs, immutable, named by their digest
 *   <root>/ingest/<hash of ref>/data  bytes of a write in progress (resumable)
 *   <root>/ingest/<hash of ref>/ref   the ref that names that write
 *
 * A blob becomes visible only through `commit`, after its bytes were hashed, matched the
 * expected digest and size, fsynced and renamed into place. A crash at any moment leaves
 * either the whole blob or nothing (plus an ingest that a later write of the same ref resumes).
 */
import { createHash, randomUUID, type Hash } from 'node:crypto';
import { createReadStream, type ReadStream } from 'node:fs';
import { mkdir, open, readFile, readdir, rename, rm, stat, writeFile, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { InvalidArgument, NotFound, Unavailable, errnoCode } from '../errors/errors.js';
import { syncDir } from '../util/atomic-file.js';
import { checkDigest, digestHex } from './digest.js';

export interface BlobInfo {
  digest: string;
  size: number;
}

export interface Expected {
  digest?: string;
  size?: number;
}

export interface ContentStore {
  info(digest: string): Promise<BlobInfo | undefined>;
  readBlob(digest: string): Promise<Buffer>;
  /** The blob's bytes from `start` up to `end` (exclusive; the whole rest when absent). */
  openBlob(digest: string, start?: number, end?: number): ReadStream;
  blobPath(digest: string): string;
  /** Writes a whole blob at once; verifies it against `expected` when given. */
  writeBlob(data: Buffer, expected?: Expected): Promise<BlobInfo>;
  /** Opens (or resumes) the write named `ref`; `offset` says how many bytes it already has. */
  ingest(ref: string, expected?: Expected): Promise<IngestWriter>;
  delete(digest: string): Promise<void>;
  list(): Promise<BlobInfo[]>;
  /**
   * Deletes every blob not in `inUse` that was written at least `minAgeMs` ago (a blob
   * younger than that may belong to a write whose user is not recorded yet: a pull under way).
   */
  collect(inUse: ReadonlySet<string>, opts?: { minAgeMs?: number }): Promise<BlobInfo[]>;
}

/** How old an unused blob must be before `collect` takes it. */
export const COLLECT_MIN_AGE_MS = 60_000;

export interface IngestWriter {
  readonly ref: string;
  /** Bytes already written, including those kept from an earlier, interrupted write. */
  readonly offset: number;
  write(chunk: Buffer): Promise<void>;
  /** The bytes kept from an earlier write (the first `offset` bytes the writer opened with). */
  readKept(): Readable;
  /** Verifies, fsyncs and makes the blob visible. */
  commit(): Promise<BlobInfo>;
  /** Closes the file and keeps the bytes for a later resume. */
  close(): Promise<void>;
  /** Closes the file and throws the bytes away. */
  abort(): Promise<void>;
}

export class LocalContentStore implements ContentStore {
  readonly root: string;
  /** Refs with an open writer: two writers appending to one ingest file would mix their bytes. */
  readonly #locked = new Set<string>();

  private constructor(root: string) {
    this.root = root;
  }

  static async open(root: string): Promise<LocalContentStore> {
    await mkdir(join(root, 'blobs', 'sha256'), { recursive: true });
    await mkdir(join(root, 'ingest'), { recursive: true });
    return new LocalContentStore(root);
  }

  blobPath(digest: string): string {
    return join(this.root, 'blobs', 'sha256', digestHex(digest));
  }

  async info(digest: string): Promise<BlobInfo | undefined> {
    try {
      const st = await stat(this.blobPath(digest));
      return { digest, size: st.size };
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return undefined;
      throw err;
    }
  }

  async readBlob(digest: string): Promise<Buffer> {
    try {
      return await readFile(this.blobPath(digest));
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') throw new NotFound(`content ${digest}: not found`);
      throw err;
    }
  }

  openBlob(digest: string, start = 0, end?: number): ReadStream {
    // createReadStream's end is inclusive.
    return createReadStream(this.blobPath(digest), end === undefined ? { start } : { start, end: end - 1 });
  }

  async writeBlob(data: Buffer, expected: Expected = {}): Promise<BlobInfo> {
    const digest = `sha256:${createHash('sha256').update(data).digest('hex')}`;
    verify(digest, data.length, expected, 'blob');
    const existing = await this.info(digest);
    if (existing) return existing;
    // A ref of its own: concurrent writes of the same bytes must not share an ingest file.
    const writer = await this.ingest(`write-${randomUUID()}`, { digest, size: data.length });
    try {
      await writer.write(data);
      return await writer.commit();
    } catch (err) {
      await writer.abort();
      throw err;
    }
  }

  async ingest(ref: string, expected: Expected = {}): Promise<IngestWriter> {
    if (expected.digest !== undefined) checkDigest(expected.digest);
    if (this.#locked.has(ref)) throw new Unavailable(`content ingest: ref ${ref} is locked: another write of it is in progress`);
    this.#locked.add(ref);
    try {
      const dir = join(this.root, 'ingest', createHash('sha256').update(ref).digest('hex'));
      await mkdir(dir, { recursive: true });
      await writeFile(join(dir, 'ref'), ref);
      const dataPath = join(dir, 'data');
      let hash = createHash('sha256');
      let offset = 0;
      // Resuming: the hash state cannot be saved, so the bytes kept so far are hashed again.
      try {
        for await (const chunk of createReadStream(dataPath)) {
          hash.update(chunk as Buffer);
          offset += (chunk as Buffer).length;
        }
      } catch (err) {
        if (errnoCode(err) !== 'ENOENT') throw err;
      }
      if (expected.size !== undefined && offset > expected.size) {
        // More than the blob can have: the kept bytes are not a prefix of it. Start over.
        await rm(dataPath, { force: true });
        hash = createHash('sha256');
        offset = 0;
      }
      const file = await open(dataPath, 'a');
      let unlocked = false;
      // Once per writer: a closed writer's later abort must not free a newer writer's lock.
      const unlock = () => {
        if (!unlocked) this.#locked.delete(ref);
        unlocked = true;
      };
      return new LocalIngest(this, ref, dir, file, hash, offset, expected, unlock);
    } catch (err) {
      this.#locked.delete(ref);
      throw err;
    }
  }

  async delete(digest: string): Promise<void> {
    try {
      await rm(this.blobPath(digest));
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') throw new NotFound(`content ${digest}: not found`);
      throw err;
    }
  }

  async list(): Promise<BlobInfo[]> {
    const dir = join(this.root, 'blobs', 'sha256');
    const out: BlobInfo[] = [];
    for (const name of await readdir(dir)) {
      if (!/^[a-f0-9]{64}$/.test(name)) continue;
      const st = await stat(join(dir, name));
      out.push({ digest: `sha256:${name}`, size: st.size });
    }
    return out;
  }

  async collect(inUse: ReadonlySet<string>, opts: { minAgeMs?: number } = {}): Promise<BlobInfo[]> {
    const minAge = opts.minAgeMs ?? COLLECT_MIN_AGE_MS;
    const dir = join(this.root, 'blobs', 'sha256');
    const removed: BlobInfo[] = [];
    for (const name of await readdir(dir)) {
      if (!/^[a-f0-9]{64}$/.test(name)) continue;
      const digest = `sha256:${name}`;
      if (inUse.has(digest)) continue;
      try {
        const st = await stat(join(dir, name));
        // mtime, not ctime: the rename that commits a blob keeps the mtime its last write gave it.
        if (Date.now() - st.mtimeMs < minAge) continue;
        await rm(join(dir, name));
        removed.push({ digest, size: st.size });
      } catch (err) {
        // Collected by a concurrent collection already.
        if (errnoCode(err) !== 'ENOENT') throw err;
      }
    }
    return removed;
  }

  /**
   * Drops the ingests a crash left whose ref `keep` does not want (writes that cannot be
   * resumed). Run at daemon start, before any write.
   */
  async removeIngests(keep: (ref: string) => boolean): Promise<string[]> {
    const dir = join(this.root, 'ingest');
    const removed: string[] = [];
    for (const name of await readdir(dir).catch(() => [] as string[])) {
      const ref = await readFile(join(dir, name, 'ref'), 'utf8').catch(() => '');
      if (ref && keep(ref)) continue;
      await rm(join(dir, name), { recursive: true, force: true });
      removed.push(ref || name);
    }
    return removed;
  }
}

class LocalIngest implements IngestWriter {
  readonly ref: string;
  #offset: number;
  readonly #keptSize: number;
  readonly #store: LocalContentStore;
  readonly #dir: string;
  readonly #file: FileHandle;
  readonly #hash: Hash;
  readonly #expected: Expected;
  readonly #unlock: () => void;
  #closed = false;

  constructor(
    store: LocalContentStore,
    ref: string,
    dir: string,
    file: FileHandle,
    hash: Hash,
    offset: number,
    expected: Expected,
    unlock: () => void,
  ) {
    this.#store = store;
    this.ref = ref;
    this.#dir = dir;
    this.#file = file;
    this.#hash = hash;
    this.#offset = offset;
    this.#keptSize = offset;
    this.#expected = expected;
    this.#unlock = unlock;
  }

  get offset(): number {
    return this.#offset;
  }

  readKept(): Readable {
    if (this.#keptSize === 0) return Readable.from([]);
    return createReadStream(join(this.#dir, 'data'), { start: 0, end: this.#keptSize - 1 });
  }

  async write(chunk: Buffer): Promise<void> {
    if (this.#expected.size !== undefined && this.#offset + chunk.length > this.#expected.size) {
      throw new InvalidArgument(
        `blob ${this.#expected.digest ?? this.ref}: more data than the expected ${this.#expected.size} bytes`,
      );
    }
    let written = 0;
    while (written < chunk.length) {
      const r = await this.#file.write(chunk, written, chunk.length - written);
      written += r.bytesWritten;
    }
    this.#hash.update(chunk);
    this.#offset += chunk.length;
  }

  async commit(): Promise<BlobInfo> {
    const digest = `sha256:${this.#hash.digest('hex')}`;
    try {
      verify(digest, this.#offset, this.#expected, 'blob');
    } catch (err) {
      await this.abort();
      throw err;
    }
    try {
      await this.#file.sync();
      await this.#close();
      const target = this.#store.blobPath(digest);
      await rename(join(this.#dir, 'data'), target);
      await syncDir(join(this.#store.root, 'blobs', 'sha256'));
      await rm(this.#dir, { recursive: true, force: true });
    } finally {
      this.#unlock();
    }
    return { digest, size: this.#offset };
  }

  async close(): Promise<void> {
    try {
      await this.#close();
    } finally {
      this.#unlock();
    }
  }

  async abort(): Promise<void> {
    try {
      await this.#close();
      await rm(this.#dir, { recursive: true, force: true });
    } finally {
      this.#unlock();
    }
  }

  async #close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#file.close();
  }
}

function verify(digest: string, size: number, expected: Expected, what: string): void {
  if (expected.size !== undefined && size !== expected.size) {
    throw new InvalidArgument(`${what} ${expected.digest ?? digest}: size ${size} does not match the expected ${expected.size}`);
  }
  if (expected.digest !== undefined && digest !== expected.digest) {
    throw new InvalidArgument(`${what} ${expected.digest}: digest mismatch: the content hashes to ${digest}`);
  }
}

/**
 * A stream that passes on each chunk once `writer` has written it: a blob stored while its
 * bytes are being read (unpacked, say). The reader's pace is the writer's: no chunk waits
 * in memory for the disk.
 */
export function storeWhilePassing(writer: IngestWriter): Transform {
  return new Transform({
    transform(chunk: Buffer, _enc, done) {
      writer.write(chunk).then(() => done(null, chunk), done);
    },
  });
}
