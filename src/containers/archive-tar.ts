/**
 * A path inside a root as a tar stream (the GET side of `docker cp`), and its stat (HEAD).
 *
 * The root is hostile (see archive-root.ts): the requested path is resolved by the kernel
 * inside the root, and the walk below it goes entry by entry through directory
 * descriptors, never following a symlink and never reopening a path by name. A symlink in
 * the tree is archived as a symlink. A regular file is opened O_PATH first and read through
 * that very inode, so a file swapped for a FIFO or a device between the listing and the
 * open is never opened for reading.
 *
 * Entries are named as moby names them: the top entry takes `topName` (the requested
 * path's base name, "." for `dir/.`, "/" for the root), the rest follow below it. File
 * bodies stream with backpressure; memory does not grow with file sizes.
 */
import {
  closeSync,
  constants as fsc,
  fstatSync,
  lstatSync,
  openSync,
  read,
  readdirSync,
  readlinkSync,
  type BigIntStats,
  type Stats,
} from 'node:fs';
import { Readable } from 'node:stream';

import { TarWriter, type TarWriterHeader } from '../archive/tar-writer.js';
import { errnoCode } from '../errors/errors.js';
import { lgetxattr } from '../native/native.js';
import { assertsDirectory, baseName, dirName, pathStatOf, type PathStat } from './archive-path.js';
import { O_PATH, closeQuietly, fdPath, openIn, resolveInScope } from './archive-root.js';

const CHUNK = 64 * 1024;

/** Like lstat(2) of `absPath` inside `root` (parents followed in the root, the last element not). */
export function statInRoot(root: string, absPath: string): PathStat {
  const fd = openIn(root, absPath, O_PATH | fsc.O_NOFOLLOW);
  try {
    const st = fstatSync(fd, { bigint: true });
    const linkTarget = st.isSymbolicLink() ? resolveInScope(root, absPath) : '';
    return pathStatOf(baseName(absPath), st, linkTarget);
  } finally {
    closeSync(fd);
  }
}

export interface RootArchive {
  /** The stat of the requested path, for the stat header. */
  stat: PathStat;
  /** The archive; destroy it to stop early. */
  stream: Readable;
  /** Settles when the walk is over and every descriptor it held is closed. */
  done: Promise<void>;
}

/**
 * Starts archiving `absPath` inside `root`. Throws (ENOENT, ENOTDIR...) before anything is
 * streamed when the path cannot be opened.
 */
export function archiveInRoot(root: string, absPath: string, topName: string): RootArchive {
  const top = openTop(root, absPath);
  const linkTarget = top.st.isSymbolicLink() ? resolveInScope(root, absPath) : '';
  const stat = pathStatOf(baseName(absPath), top.st, linkTarget);
  const writer = new TarWriter();
  const walker = new Walker(writer);
  const done = (async () => {
    try {
      if (top.dirFd !== undefined) await walker.directory(top.dirFd, fstatSync(top.dirFd), topName);
      else await walker.entry(top.parentFd!, top.name!, topName);
      await writer.finish();
    } catch (err) {
      if (!writer.stream.destroyed) writer.stream.destroy(err instanceof Error ? err : new Error(String(err)));
    } finally {
      closeQuietly(top.dirFd);
      closeQuietly(top.parentFd);
    }
  })();
  return { stat, stream: writer.stream, done };
}

interface Top {
  st: BigIntStats;
  /** A directory asserted by the path ("/", "x/", "x/."), opened and followed. */
  dirFd?: number;
  /** Otherwise: the parent directory and the entry in it. */
  parentFd?: number;
  name?: string;
}

function openTop(root: string, absPath: string): Top {
  if (absPath === '/' || assertsDirectory(absPath)) {
    const dirFd = openIn(root, absPath, fsc.O_RDONLY | fsc.O_DIRECTORY);
    try {
      return { st: fstatSync(dirFd, { bigint: true }), dirFd };
    } catch (err) {
      closeSync(dirFd);
      throw err;
    }
  }
  const parentFd = openIn(root, dirName(absPath), O_PATH | fsc.O_DIRECTORY);
  const name = baseName(absPath);
  try {
    return { st: lstatSync(fdPath(parentFd, name), { bigint: true }), parentFd, name };
  } catch (err) {
    closeSync(parentFd);
    throw err;
  }
}

/** The part of a name below its top entry, joined as moby joins them ("/" + "bin" = "/bin"). */
function childName(parent: string, name: string): string {
  return parent.endsWith('/') ? `${parent}${name}` : `${parent}/${name}`;
}

class Walker {
  readonly #writer: TarWriter;
  /** dev:ino of files with more than one link -> the first name archived, for hardlinks. */
  readonly #seen = new Map<string, string>();

  constructor(writer: TarWriter) {
    this.#writer = writer;
  }

  /** Entry `name` of directory `parentFd`, whatever it is, archived as `entryName`. */
  async entry(parentFd: number, name: string, entryName: string): Promise<void> {
    const path = fdPath(parentFd, name);
    let st: Stats;
    try {
      st = lstatSync(path);
    } catch (err) {
      if (vanished(err)) return;
      throw err;
    }
    if (st.isDirectory()) {
      let fd: number;
      try {
        fd = openSync(path, fsc.O_RDONLY | fsc.O_DIRECTORY | fsc.O_NOFOLLOW);
      } catch (err) {
        if (vanished(err)) return; // replaced by something else since the listing
        throw err;
      }
      try {
        await this.directory(fd, fstatSync(fd), entryName);
      } finally {
        closeSync(fd);
      }
      return;
    }
    if (st.isSymbolicLink()) {
      let linkname: string;
      try {
        linkname = readlinkSync(path);
      } catch (err) {
        if (vanished(err)) return;
        throw err;
      }
      await this.#writer.add({ ...common(st), name: entryName, type: 'symlink', linkname });
      return;
    }
    if (st.isFile()) {
      await this.#file(parentFd, name, entryName);
      return;
    }
    await this.#special(st, entryName);
  }

  async directory(dirFd: number, st: Stats, entryName: string): Promise<void> {
    await this.#writer.add({ ...common(st), name: entryName, type: 'directory' });
    // Byte order, as Go's filepath.Walk lists a directory.
    const names = readdirSync(fdPath(dirFd)).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    for (const name of names) await this.entry(dirFd, name, childName(entryName, name));
  }

  async #file(parentFd: number, name: string, entryName: string): Promise<void> {
    const path = fdPath(parentFd, name);
    let pathFd: number;
    try {
      pathFd = openSync(path, O_PATH | fsc.O_NOFOLLOW);
    } catch (err) {
      if (vanished(err)) return;
      throw err;
    }
    let fd: number | undefined;
    try {
      const st = fstatSync(pathFd);
      if (!st.isFile()) {
        // Swapped since the lstat: archive what is there now, without opening it.
        if (st.isSymbolicLink()) return;
        await this.#special(st, entryName);
        return;
      }
      if (st.nlink > 1) {
        const key = `${st.dev}:${st.ino}`;
        const first = this.#seen.get(key);
        if (first !== undefined) {
          await this.#writer.add({ ...common(st), name: entryName, type: 'hardlink', linkname: first });
          return;
        }
        this.#seen.set(key, entryName);
      }
      // Reopened through the descriptor: the very inode just checked to be a regular file.
      fd = openSync(fdPath(pathFd), fsc.O_RDONLY | fsc.O_NOCTTY);
      const header: TarWriterHeader = { ...common(st), name: entryName, type: 'file', size: st.size };
      const capability = securityCapability(path);
      if (capability) header.xattrs = { 'security.capability': capability };
      const body = new FileBody(fd, st.size);
      fd = undefined; // the body owns it now
      try {
        await this.#writer.add(header, body);
      } finally {
        body.destroy();
      }
    } finally {
      closeQuietly(fd);
      closeSync(pathFd);
    }
  }

  /** FIFOs and device nodes: a header, never their content. Sockets are left out, as by moby. */
  async #special(st: Stats, entryName: string): Promise<void> {
    if (st.isFIFO()) {
      await this.#writer.add({ ...common(st), name: entryName, type: 'fifo' });
    } else if (st.isCharacterDevice() || st.isBlockDevice()) {
      const rdev = BigInt(st.rdev);
      const devmajor = Number(((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn));
      const devminor = Number((rdev & 0xffn) | ((rdev >> 12n) & ~0xffn));
      await this.#writer.add({ ...common(st), name: entryName, type: st.isCharacterDevice() ? 'char' : 'block', devmajor, devminor });
    }
  }
}

function common(st: Stats): { mode: number; uid: number; gid: number; mtime: Date } {
  return { mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, mtime: st.mtime };
}

/** A file's capabilities travel with it, as moby archives them. */
function securityCapability(path: string): Buffer | undefined {
  try {
    return lgetxattr(path, 'security.capability') ?? undefined;
  } catch {
    return undefined;
  }
}

/** The entry is gone, or is no longer what the listing said: skipped, as moby skips it. */
function vanished(err: unknown): boolean {
  const code = errnoCode(err);
  return code === 'ENOENT' || code === 'ENOTDIR' || code === 'ELOOP';
}

/**
 * Exactly `size` bytes of an open file, read as the consumer asks. A file that shrinks
 * while it is read ends in zeros, one that grows is cut at `size`: the archive stays whole.
 * Closes the descriptor when it ends or is destroyed.
 */
class FileBody extends Readable {
  readonly #fd: number;
  #remaining: number;
  #position = 0;
  #reading = false;
  #closed = false;

  constructor(fd: number, size: number) {
    super({ highWaterMark: CHUNK });
    this.#fd = fd;
    this.#remaining = size;
  }

  override _read(): void {
    if (this.#remaining === 0) {
      this.push(null);
      return;
    }
    const length = Math.min(this.#remaining, CHUNK);
    const buffer = Buffer.allocUnsafe(length);
    this.#reading = true;
    read(this.#fd, buffer, 0, length, this.#position, (err, bytes) => {
      this.#reading = false;
      if (this.destroyed) {
        this.#close();
        return;
      }
      if (err) {
        this.destroy(err);
        return;
      }
      let got = bytes;
      if (got === 0) {
        buffer.fill(0);
        got = length;
      }
      this.#position += got;
      this.#remaining -= got;
      this.push(buffer.subarray(0, got));
      if (this.#remaining === 0) this.push(null);
    });
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    // A read in flight still uses the descriptor: it is closed when that read returns.
    if (!this.#reading) this.#close();
    callback(err);
  }

  #close(): void {
    if (this.#closed) return;
    this.#closed = true;
    closeQuietly(this.#fd);
  }
}
