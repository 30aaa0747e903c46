/**
 * Unpacks an OCI layer (an uncompressed tar) into a directory, normally the empty upper dir
 * of a fresh snapshot, turning OCI whiteouts into overlayfs whiteouts.
 *
 * The tar is hostile. Every name is cleaned lexically and refused when it climbs above the
 * root. No entry is ever created through a symlink: the last component is never followed
 * (exclusive creates, lchown, lutimes, lsetxattr), and a parent directory that turns out to be
 * a symlink is resolved by the kernel as if the root were "/" (openat2 RESOLVE_IN_ROOT), as
 * docker's chrooted unpacker would. Hardlinks may only point at entries inside the root.
 * Device nodes are not created (they are returned as `skippedDevices`); fifos are.
 *
 * Speed: directories already resolved are cached (relative name -> real path), so a file
 * costs an open, its writes, fchown, fchmod, futimes and close, and no per-component lstat.
 * These syscalls are made synchronously: each takes microseconds, and a libuv round trip
 * per call made unpacking three to four times slower. The event loop still runs between
 * entries and between body chunks (at most 64 KiB each), so it is never held for long.
 */
import {
  chmodSync,
  chownSync,
  closeSync,
  constants as fsc,
  fchmodSync,
  fchownSync,
  futimesSync,
  lchownSync,
  linkSync,
  lstatSync,
  lutimesSync,
  mkdirSync,
  openSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  unlinkSync,
  writeSync,
  type Stats,
} from 'node:fs';
import { realpath } from 'node:fs/promises';
import type { Readable } from 'node:stream';

import { readTar, type TarEntry, type TarHeader } from '../archive/tar-reader.js';
import { InvalidArgument, errnoCode, isBerthError } from '../errors/errors.js';
import { O_PATH, S_IFCHR, S_IFIFO, lsetxattr, mknod, openInRoot } from '../native/native.js';

export interface ApplyResult {
  /** Bytes of file content written. */
  size: number;
  /** Cleaned names of the char and block devices the layer held, which were not created. */
  skippedDevices: string[];
}

/** OCI whiteout prefix: `.wh.name` deletes `name` from the layers below. */
export const WHITEOUT_PREFIX = '.wh.';
/** OCI opaque marker: its directory hides the content of the layers below. */
export const WHITEOUT_OPAQUE = '.wh..wh..opq';
/** Overlayfs's xattr for an opaque directory. */
export const OVERLAY_OPAQUE_XATTR = 'trusted.overlay.opaque';
/** Overlayfs's own xattrs; never taken from a layer (they could redirect lookups). */
export const OVERLAY_XATTR_PREFIX = 'trusted.overlay.';

/**
 * Unpacks the uncompressed layer tar `tar` into `root` (which must exist). Resolves when
 * every entry is on disk with its owner, mode, times and xattrs.
 */
export async function applyLayer(root: string, tar: Readable): Promise<ApplyResult> {
  const applier = new LayerApplier(await realpath(root));
  for await (const entry of readTar(tar)) {
    try {
      await applier.apply(entry);
    } catch (err) {
      throw withEntry(entry.header.name, err);
    }
  }
  applier.finish();
  return { size: applier.size, skippedDevices: applier.skippedDevices };
}

/**
 * The name cleaned: no leading '/', no '.' or empty components, '..' resolved lexically.
 * Throws InvalidArgument when it climbs above the root. The root itself is ''.
 */
export function cleanLayerPath(name: string): string {
  if (name.includes('\0')) throw new InvalidArgument(`layer entry ${JSON.stringify(name)}: name contains a NUL byte`);
  const parts: string[] = [];
  for (const part of name.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (parts.length === 0) {
        throw new InvalidArgument(`layer entry ${JSON.stringify(name)}: path climbs above the root of the layer`);
      }
      parts.pop();
      continue;
    }
    parts.push(part);
  }
  return parts.join('/');
}

class LayerApplier {
  readonly #root: string;
  /** Relative directory name -> its real path, known to be a directory inside the root. */
  readonly #dirs = new Map<string, string>();
  /** Directories' times, set last: creating their content changes them. */
  readonly #dirTimes = new Map<string, Date>();
  size = 0;
  readonly skippedDevices: string[] = [];

  constructor(root: string) {
    this.#root = root;
  }

  async apply({ header, body }: TarEntry): Promise<void> {
    const rel = cleanLayerPath(header.name);
    const slash = rel.lastIndexOf('/');
    const parentRel = slash < 0 ? '' : rel.slice(0, slash);
    const base = rel.slice(slash + 1);

    if (rel === '') {
      if (header.type !== 'directory') {
        throw new InvalidArgument(`layer entry ${JSON.stringify(header.name)}: a ${header.type} cannot replace the layer root`);
      }
      this.#setMetadata(this.#root, header);
      return;
    }
    if (header.type === 'char' || header.type === 'block') {
      this.skippedDevices.push(rel);
      return;
    }
    if (base.startsWith(WHITEOUT_PREFIX)) {
      this.#whiteout(header, parentRel, base);
      return;
    }

    const path = `${this.#dir(parentRel, header.name)}/${base}`;
    switch (header.type) {
      case 'directory':
        this.#directory(path, rel, header);
        return;
      case 'file':
        await this.#file(path, header, body);
        return;
      case 'symlink':
        this.#create(path, () => symlinkSync(header.linkname, path));
        this.#setMetadata(path, header);
        return;
      case 'hardlink':
        this.#hardlink(path, header);
        return;
      case 'fifo':
        this.#create(path, () => mknod(path, S_IFIFO | (header.mode & 0o7777)));
        this.#setMetadata(path, header);
        return;
    }
  }

  /** Sets the deferred directory times. */
  finish(): void {
    for (const [path, mtime] of this.#dirTimes) lutimesSync(path, mtime, mtime);
  }

  #whiteout(header: TarHeader, parentRel: string, base: string): void {
    if (base === WHITEOUT_OPAQUE) {
      lsetxattr(this.#dir(parentRel, header.name), OVERLAY_OPAQUE_XATTR, Buffer.from('y'));
      return;
    }
    // Other `.wh..wh.` names are aufs bookkeeping (hardlink dirs, plinks): nothing to do.
    if (base.startsWith(`${WHITEOUT_PREFIX}${WHITEOUT_PREFIX}`)) return;
    const name = base.slice(WHITEOUT_PREFIX.length);
    if (name === '' || name === '.' || name === '..') {
      throw new InvalidArgument(`layer entry ${JSON.stringify(header.name)}: whiteout of ${JSON.stringify(name)} names no entry`);
    }
    const path = `${this.#dir(parentRel, header.name)}/${name}`;
    this.#create(path, () => mknod(path, S_IFCHR, 0));
    // The whiteout's owner and time are the tar entry's: a layer's tar made again from the
    // unpacked files (save, push) then has the same bytes, and the image keeps its id.
    lchownSync(path, header.uid, header.gid);
    lutimesSync(path, header.mtime, header.mtime);
  }

  #directory(path: string, rel: string, header: TarHeader): void {
    try {
      mkdirSync(path, 0o700);
    } catch (err) {
      if (errnoCode(err) !== 'EEXIST') throw err;
      // An existing directory is merged (only its metadata changes); anything else is replaced.
      if (!lstatSync(path).isDirectory()) {
        this.#remove(path);
        mkdirSync(path, 0o700);
      }
    }
    this.#dirs.set(rel, path);
    this.#setMetadata(path, header);
  }

  async #file(path: string, header: TarHeader, body: Readable): Promise<void> {
    const flags = fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL | fsc.O_NOFOLLOW;
    let fd: number;
    try {
      fd = openSync(path, flags, 0o600);
    } catch (err) {
      if (errnoCode(err) !== 'EEXIST') throw err;
      this.#remove(path);
      fd = openSync(path, flags, 0o600);
    }
    try {
      let written = 0;
      // One chunk (at most the reader's 64 KiB) per synchronous write, then back to the loop.
      for await (const chunk of body as AsyncIterable<Buffer>) {
        for (let off = 0; off < chunk.length; ) off += writeSync(fd, chunk, off, chunk.length - off);
        written += chunk.length;
      }
      if (written !== header.size) {
        throw new InvalidArgument(`layer entry ${JSON.stringify(header.name)}: body has ${written} of ${header.size} bytes`);
      }
      this.size += written;
      // chown first: it clears setuid/setgid bits, and security.capability.
      fchownSync(fd, header.uid, header.gid);
      fchmodSync(fd, header.mode & 0o7777);
      this.#setXattrs(path, header);
      futimesSync(fd, header.mtime, header.mtime);
    } finally {
      closeSync(fd);
    }
  }

  #hardlink(path: string, header: TarHeader): void {
    const targetRel = cleanLayerPath(header.linkname);
    if (targetRel === '') {
      throw new InvalidArgument(`layer entry ${JSON.stringify(header.name)}: hardlink to the layer root`);
    }
    const slash = targetRel.lastIndexOf('/');
    const targetDir = this.#dir(slash < 0 ? '' : targetRel.slice(0, slash), header.name);
    const target = `${targetDir}/${targetRel.slice(slash + 1)}`;
    if (target === path) return;
    let info: Stats;
    try {
      info = lstatSync(target);
    } catch (err) {
      if (errnoCode(err) !== 'ENOENT') throw err;
      throw new InvalidArgument(
        `layer entry ${JSON.stringify(header.name)}: hardlink target ${JSON.stringify(header.linkname)} is not in the layer`,
      );
    }
    if (info.isDirectory()) {
      throw new InvalidArgument(
        `layer entry ${JSON.stringify(header.name)}: hardlink target ${JSON.stringify(header.linkname)} is a directory`,
      );
    }
    // link(2) does not follow a symlink target: the new name shares the symlink's own inode.
    this.#create(path, () => linkSync(target, path));
  }

  /**
   * The real path of directory `rel`, creating missing components (0755, root), resolving a
   * symlinked component inside the root. Throws when a component is not a directory.
   */
  #dir(rel: string, entryName: string): string {
    if (rel === '') return this.#root;
    const cached = this.#dirs.get(rel);
    if (cached !== undefined) return cached;
    const slash = rel.lastIndexOf('/');
    const parent = this.#dir(slash < 0 ? '' : rel.slice(0, slash), entryName);
    const candidate = `${parent}/${rel.slice(slash + 1)}`;
    let real = candidate;
    try {
      const info = lstatSync(candidate);
      if (info.isSymbolicLink()) {
        real = this.#resolveInRoot(candidate, entryName);
      } else if (!info.isDirectory()) {
        throw new InvalidArgument(`layer entry ${JSON.stringify(entryName)}: parent ${JSON.stringify(rel)} is not a directory`);
      }
    } catch (err) {
      if (errnoCode(err) !== 'ENOENT') throw err;
      mkdirSync(candidate, 0o755);
    }
    this.#dirs.set(rel, real);
    return real;
  }

  /** Where symlinked directory `path` leads when the root is "/": the kernel resolves it. */
  #resolveInRoot(path: string, entryName: string): string {
    let fd: number;
    try {
      fd = openInRoot(this.#root, path.slice(this.#root.length + 1), O_PATH | fsc.O_DIRECTORY);
    } catch (err) {
      const code = errnoCode(err);
      if (code !== 'ENOENT' && code !== 'ENOTDIR' && code !== 'ELOOP') throw err;
      throw new InvalidArgument(
        `layer entry ${JSON.stringify(entryName)}: parent ${JSON.stringify(path.slice(this.#root.length + 1))} ` +
          'is a symlink that leads to no directory inside the layer',
        { cause: err },
      );
    }
    try {
      const real = readlinkSync(`/proc/self/fd/${fd}`);
      // The kernel guarantees it; checked again because everything below trusts it.
      if (real !== this.#root && !real.startsWith(`${this.#root}/`)) {
        throw new InvalidArgument(`layer entry ${JSON.stringify(entryName)}: parent resolves outside the layer (${real})`);
      }
      return real;
    } finally {
      closeSync(fd);
    }
  }

  /** Runs `make`; when something is in the way, removes it (whatever it is) and runs it again. */
  #create(path: string, make: () => void): void {
    try {
      make();
    } catch (err) {
      if (errnoCode(err) !== 'EEXIST') throw err;
      this.#remove(path);
      make();
    }
  }

  /** Removes whatever is at `path`, never following it; forgets cached dirs that could route through it. */
  #remove(path: string): void {
    const info = lstatSync(path);
    if (info.isDirectory()) {
      rmSync(path, { recursive: true, force: true });
      for (const dir of this.#dirTimes.keys()) {
        if (dir === path || dir.startsWith(`${path}/`)) this.#dirTimes.delete(dir);
      }
    } else {
      unlinkSync(path);
    }
    if (info.isDirectory() || info.isSymbolicLink()) this.#dirs.clear();
  }

  /** Owner, mode, xattrs and times of a directory, symlink or fifo at `path`. */
  #setMetadata(path: string, header: TarHeader): void {
    if (header.type === 'symlink') {
      lchownSync(path, header.uid, header.gid);
      this.#setXattrs(path, header);
      lutimesSync(path, header.mtime, header.mtime);
      return;
    }
    // Nothing at `path` is a symlink: it was just created, or lstat said it is a directory.
    chownSync(path, header.uid, header.gid);
    chmodSync(path, header.mode & 0o7777);
    this.#setXattrs(path, header);
    if (header.type === 'directory') this.#dirTimes.set(path, header.mtime);
    else lutimesSync(path, header.mtime, header.mtime);
  }

  #setXattrs(path: string, header: TarHeader): void {
    setEntryXattrs(path, header);
  }
}

/**
 * Sets a tar entry's extended attributes on `path` (not following a symlink), except
 * overlayfs's own, which an archive must not set.
 */
export function setEntryXattrs(path: string, header: TarHeader): void {
  for (const [name, value] of Object.entries(header.xattrs)) {
    if (name.startsWith(OVERLAY_XATTR_PREFIX)) continue;
    try {
      lsetxattr(path, name, value);
    } catch (err) {
      // As docker: a filesystem or kernel that does not take an attribute is not fatal.
      const code = errnoCode(err);
      if (code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'EPERM') throw err;
    }
  }
}

/** Puts the entry's name in front of an error's message, keeping its kind and code. */
function withEntry(name: string, err: unknown): unknown {
  if (isBerthError(err) || !(err instanceof Error)) return err;
  const wrapped = new Error(`apply layer: entry ${JSON.stringify(name)}: ${err.message}`, { cause: err });
  const code = errnoCode(err);
  if (code !== undefined) Object.assign(wrapped, { code });
  return wrapped;
}
