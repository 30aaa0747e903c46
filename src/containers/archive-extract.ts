/**
 * Unpacks a tar stream into a directory inside a root that belongs to someone else (the PUT
 * side of `docker cp`, and the CLI's side of copying out).
 *
 * The archive is hostile and so is the root (see archive-root.ts):
 *   - names are cleaned; one that climbs out of the extraction directory is refused, a
 *     rooted one ("/etc/x") lands inside it, as moby's Untar does;
 *   - parent directories resolve with openat2 RESOLVE_IN_ROOT from the root, so a symlinked
 *     parent leads where it would inside the container and never outside it; missing
 *     parents are made (0755);
 *   - the entry itself is created relative to its parent's descriptor and never followed:
 *     exclusive creates, O_NOFOLLOW, lchown, lutimes; metadata of a directory or FIFO is set
 *     through an O_PATH descriptor of what was just made;
 *   - what is in the way is removed without following symlinks (or refused, with
 *     noOverwriteDirNonDir, when a directory and a non-directory would replace each other);
 *   - symlinks whose target climbs out of the extraction directory and hardlinks to outside
 *     it are refused, as moby refuses them; device nodes are never created.
 */
import {
  chmodSync,
  chownSync,
  closeSync,
  constants as fsc,
  fchmodSync,
  fchownSync,
  fstatSync,
  futimesSync,
  lchownSync,
  linkSync,
  lstatSync,
  lutimesSync,
  mkdirSync,
  openSync,
  readlinkSync,
  realpathSync,
  symlinkSync,
  utimesSync,
  writeSync,
  type Stats,
} from 'node:fs';
import type { Readable } from 'node:stream';

import { readTar, type TarHeader } from '../archive/tar-reader.js';
import { InvalidArgument, errnoCode, isBerthError } from '../errors/errors.js';
import { S_IFIFO, mknod } from '../native/native.js';
import { setEntryXattrs } from '../snapshots/apply-layer.js';
import { archiveEntryPath, cleanPath, dirName, joinPath } from './archive-path.js';
import { O_PATH, closeQuietly, errnoText, fdPath, openIn, removeAt } from './archive-root.js';

export interface ExtractOptions {
  /** Refuse to replace a directory with a non-directory, or the reverse (docker cp sets it). */
  noOverwriteDirNonDir: boolean;
  /**
   * Owners: 'archive' takes each entry's uid/gid (the daemon, as moby); 'none' leaves
   * whoever extracts as the owner (the CLI, moby's NoLchown); or one owner for all (`cp -a`
   * into a container with a configured user).
   */
  owner: 'archive' | 'none' | { uid: number; gid: number };
  /** Where the root is, as the user sees it, for messages: "" for a container ("/tmp/x"), the host directory for the CLI. */
  shownRoot?: string;
}

export interface ExtractResult {
  /** Entries created. */
  entries: number;
  /** Bytes of file content written. */
  bytes: number;
  /** Device nodes in the archive, which were not created (as shown paths). */
  skippedDevices: string[];
}

/** Parent directory descriptors kept at once. */
const MAX_CACHED_DIRS = 256;

/**
 * Extracts the (uncompressed) tar `tar` into directory `destPath` (absolute in the root;
 * a symlink there is followed inside the root). Throws ENOENT/ENOTDIR errors from the
 * kernel when `destPath` is no directory; InvalidArgument for a hostile or conflicting entry.
 */
export async function extractInRoot(root: string, destPath: string, tar: Readable, opts: ExtractOptions): Promise<ExtractResult> {
  const extractor = new Extractor(realpathSync(root), destPath, opts);
  try {
    for await (const entry of readTar(tar)) {
      try {
        await extractor.apply(entry.header, entry.body);
      } catch (err) {
        throw withEntry(entry.header.name, err);
      }
    }
    extractor.finish();
    return extractor.result;
  } finally {
    extractor.close();
  }
}

class Extractor {
  readonly #root: string;
  readonly #opts: ExtractOptions;
  readonly #destFd: number;
  /** The extraction directory relative to the root ("" for the root itself). */
  readonly #destRel: string;
  /** The extraction directory as the user sees it, for messages. */
  readonly #shownDest: string;
  /** Parent directory (relative to the extraction directory) -> an O_PATH descriptor. */
  readonly #dirs = new Map<string, number>();
  /** Directories' times, set last: creating their content changes them. */
  readonly #dirTimes = new Map<string, Date>();
  readonly result: ExtractResult = { entries: 0, bytes: 0, skippedDevices: [] };

  constructor(root: string, destPath: string, opts: ExtractOptions) {
    this.#root = root;
    this.#opts = opts;
    this.#destFd = openIn(root, destPath, O_PATH | fsc.O_DIRECTORY);
    const real = readlinkSync(fdPath(this.#destFd));
    const prefix = root === '/' ? '/' : `${root}/`;
    if (real !== root && !real.startsWith(prefix)) {
      closeSync(this.#destFd);
      // The kernel guarantees it; checked because everything below trusts it.
      throw new InvalidArgument(`extraction point ${destPath} resolves outside of its root`);
    }
    this.#destRel = real === root ? '' : real.slice(prefix.length);
    const shownRoot = opts.shownRoot ?? '';
    this.#shownDest = shownRoot === '' ? cleanPath(`/${this.#destRel}`) : joinPath(shownRoot, this.#destRel);
  }

  async apply(header: TarHeader, body: Readable): Promise<void> {
    const rel = archiveEntryPath(header.name, this.#shownDest);
    // The extraction directory itself keeps its owner, mode and times.
    if (rel === '') return;
    const shown = joinPath(this.#shownDest, rel);
    if (header.type === 'char' || header.type === 'block') {
      this.result.skippedDevices.push(shown);
      return;
    }
    const slash = rel.lastIndexOf('/');
    const parentRel = slash < 0 ? '' : rel.slice(0, slash);
    const base = rel.slice(slash + 1);
    // Checked before anything is touched.
    const targetRel = header.type === 'hardlink' ? this.#hardlinkTarget(header, shown) : undefined;
    if (header.type === 'symlink') this.#checkSymlink(header, shown);

    const parentFd = this.#parent(parentRel, true);
    const path = fdPath(parentFd, base);
    let existing: Stats | undefined;
    try {
      existing = lstatSync(path);
    } catch (err) {
      if (errnoCode(err) !== 'ENOENT') throw err;
    }
    if (existing) {
      const isDir = header.type === 'directory';
      if (this.#opts.noOverwriteDirNonDir && existing.isDirectory() && !isDir) {
        throw new InvalidArgument(`cannot overwrite directory ${JSON.stringify(shown)} with non-directory ${JSON.stringify(this.#shownDest)}`);
      }
      if (this.#opts.noOverwriteDirNonDir && !existing.isDirectory() && isDir) {
        throw new InvalidArgument(`cannot overwrite non-directory ${JSON.stringify(shown)} with directory ${JSON.stringify(this.#shownDest)}`);
      }
      if (targetRel === rel) return;
      if (!(existing.isDirectory() && isDir)) this.#remove(parentFd, base, existing);
    }

    switch (header.type) {
      case 'directory':
        if (!existing?.isDirectory()) this.#create(parentFd, base, () => mkdirSync(path, 0o700));
        this.#metadata(parentFd, base, header, 'directory', rel);
        break;
      case 'file':
        await this.#file(parentFd, base, header, body);
        break;
      case 'symlink':
        this.#create(parentFd, base, () => symlinkSync(header.linkname, path));
        this.#symlinkMetadata(path, header);
        break;
      case 'hardlink': {
        const slashT = targetRel!.lastIndexOf('/');
        const targetDir = this.#parent(slashT < 0 ? '' : targetRel!.slice(0, slashT), false);
        // link(2) does not follow a symlink target: the new name shares the link's own inode.
        this.#create(parentFd, base, () => linkSync(fdPath(targetDir, targetRel!.slice(slashT + 1)), path));
        break;
      }
      case 'fifo':
        this.#create(parentFd, base, () => mknod(path, S_IFIFO | (header.mode & 0o7777)));
        this.#metadata(parentFd, base, header, 'fifo', rel);
        break;
    }
    this.result.entries++;
  }

  /** Sets the deferred directory times, each directory found again without following it. */
  finish(): void {
    for (const [rel, mtime] of this.#dirTimes) {
      let fd: number | undefined;
      try {
        fd = openIn(this.#root, `${this.#destRel}/${rel}`, O_PATH | fsc.O_NOFOLLOW);
        if (fstatSync(fd).isDirectory()) utimesSync(fdPath(fd), mtime, mtime);
      } catch (err) {
        if (errnoCode(err) !== 'ENOENT' && errnoCode(err) !== 'ENOTDIR') throw err;
      } finally {
        closeQuietly(fd);
      }
    }
  }

  close(): void {
    this.#forget();
    closeQuietly(this.#destFd);
  }

  async #file(parentFd: number, base: string, header: TarHeader, body: Readable): Promise<void> {
    const path = fdPath(parentFd, base);
    let fd: number | undefined;
    this.#create(parentFd, base, () => {
      fd = openSync(path, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL | fsc.O_NOFOLLOW | fsc.O_NOCTTY, 0o600);
    });
    try {
      let written = 0;
      // One chunk (at most the reader's 64 KiB) per write, then back to the event loop.
      for await (const chunk of body as AsyncIterable<Buffer>) {
        for (let off = 0; off < chunk.length; ) off += writeSync(fd!, chunk, off, chunk.length - off);
        written += chunk.length;
      }
      if (written !== header.size) {
        throw new InvalidArgument(`archive entry ${JSON.stringify(header.name)}: body has ${written} of ${header.size} bytes`);
      }
      this.result.bytes += written;
      const owner = this.#owner(header);
      // chown first: it clears setuid/setgid bits.
      if (owner) fchownSync(fd!, owner.uid, owner.gid);
      fchmodSync(fd!, header.mode & 0o7777);
      this.#xattrs(path, header);
      futimesSync(fd!, header.mtime, header.mtime);
    } finally {
      closeQuietly(fd);
    }
  }

  /** Owner, mode, xattrs and times of what was just made at `base`, through an O_PATH descriptor of it. */
  #metadata(parentFd: number, base: string, header: TarHeader, kind: 'directory' | 'fifo', rel: string): void {
    const path = fdPath(parentFd, base);
    const fd = openSync(path, O_PATH | fsc.O_NOFOLLOW);
    try {
      const st = fstatSync(fd);
      if (kind === 'directory' ? !st.isDirectory() : !st.isFIFO()) {
        throw new InvalidArgument(`${JSON.stringify(header.name)} was replaced while it was extracted`);
      }
      const owner = this.#owner(header);
      // The magic link reaches the inode the descriptor holds; no path is walked again.
      if (owner) chownSync(fdPath(fd), owner.uid, owner.gid);
      chmodSync(fdPath(fd), header.mode & 0o7777);
      this.#xattrs(path, header);
      if (kind === 'directory') this.#dirTimes.set(rel, header.mtime);
      else utimesSync(fdPath(fd), header.mtime, header.mtime);
    } finally {
      closeSync(fd);
    }
  }

  #symlinkMetadata(path: string, header: TarHeader): void {
    const owner = this.#owner(header);
    if (owner) lchownSync(path, owner.uid, owner.gid);
    this.#xattrs(path, header);
    lutimesSync(path, header.mtime, header.mtime);
  }

  #owner(header: TarHeader): { uid: number; gid: number } | undefined {
    const owner = this.#opts.owner;
    if (owner === 'none') return undefined;
    if (owner === 'archive') return { uid: header.uid, gid: header.gid };
    return owner;
  }

  #xattrs(path: string, header: TarHeader): void {
    setEntryXattrs(path, header);
  }

  /** moby refuses a symlink whose target, read from where it sits, climbs out of the extraction directory. */
  #checkSymlink(header: TarHeader, shown: string): void {
    const target = joinPath(dirName(shown), header.linkname);
    if (!target.startsWith(this.#shownDest)) {
      throw new InvalidArgument(`invalid symlink ${JSON.stringify(shown)} -> ${JSON.stringify(header.linkname)}`);
    }
  }

  /** A hardlink's target, relative to the extraction directory; refused when it is outside it. */
  #hardlinkTarget(header: TarHeader, shown: string): string {
    let target: string;
    try {
      target = archiveEntryPath(header.linkname, this.#shownDest);
    } catch (err) {
      throw new InvalidArgument(`invalid hardlink ${JSON.stringify(joinPath(this.#shownDest, header.linkname))} -> ${JSON.stringify(header.linkname)}`, { cause: err });
    }
    if (target === '') throw new InvalidArgument(`invalid hardlink ${JSON.stringify(shown)} -> ${JSON.stringify(header.linkname)}: the target is a directory`);
    return target;
  }

  /**
   * An O_PATH descriptor of directory `rel` (relative to the extraction directory), resolved
   * inside the root; missing directories are made when `create` says so.
   */
  #parent(rel: string, create: boolean): number {
    if (rel === '') return this.#destFd;
    const cached = this.#dirs.get(rel);
    if (cached !== undefined) return cached;
    const inRoot = this.#destRel === '' ? rel : `${this.#destRel}/${rel}`;
    let fd: number;
    try {
      fd = openIn(this.#root, inRoot, O_PATH | fsc.O_DIRECTORY);
    } catch (err) {
      const code = errnoCode(err);
      if (code === 'ENOTDIR') throw new InvalidArgument(`cannot extract into ${JSON.stringify(joinPath(this.#shownDest, rel))}: not a directory`, { cause: err });
      if (code !== 'ENOENT' || !create) throw err;
      const slash = rel.lastIndexOf('/');
      const parentFd = this.#parent(slash < 0 ? '' : rel.slice(0, slash), true);
      try {
        mkdirSync(fdPath(parentFd, rel.slice(slash + 1)), 0o755);
      } catch (mkdirErr) {
        if (errnoCode(mkdirErr) !== 'EEXIST') throw mkdirErr;
      }
      // A dangling symlink in the way fails here again, with ENOENT.
      fd = openIn(this.#root, inRoot, O_PATH | fsc.O_DIRECTORY);
    }
    if (this.#dirs.size >= MAX_CACHED_DIRS) this.#forget();
    this.#dirs.set(rel, fd);
    return fd;
  }

  /** Runs `make`; when something is in the way (a racing writer), removes it and runs it once more. */
  #create(parentFd: number, base: string, make: () => void): void {
    try {
      make();
    } catch (err) {
      if (errnoCode(err) !== 'EEXIST') throw err;
      this.#remove(parentFd, base, lstatSync(fdPath(parentFd, base)));
      make();
    }
  }

  #remove(parentFd: number, base: string, existing: Stats): void {
    removeAt(parentFd, base);
    // Cached descriptors may name what was removed, or what a symlink led to.
    if (existing.isDirectory() || existing.isSymbolicLink()) this.#forget();
  }

  #forget(): void {
    for (const fd of this.#dirs.values()) closeQuietly(fd);
    this.#dirs.clear();
  }
}

/** A system error as "extract <entry>: <reason>", keeping its code and no host path. */
function withEntry(name: string, err: unknown): unknown {
  if (isBerthError(err) || !(err instanceof Error)) return err;
  const wrapped = new Error(`extract ${JSON.stringify(name)}: ${errnoText(err)}`, { cause: err });
  const code = errnoCode(err);
  if (code !== undefined) Object.assign(wrapped, { code });
  return wrapped;
}
