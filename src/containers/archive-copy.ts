/**
 * The client's half of `docker cp`, on the local filesystem: what the source and the
 * destination are (moby's CopyInfo), how an archive must be renamed so that extracting it
 * into a directory gives `cp -a` semantics, and the rename itself.
 *
 *   source    destination              result
 *   file      missing (no trailing /)  the file, named as the destination
 *   file      missing, "x/" or "x/."   error: no such directory
 *   file      existing file            replaced
 *   file      existing directory       copied into it
 *   dir       missing                  created with the destination's name
 *   dir       existing file            error: cannot copy directory
 *   dir       existing directory       copied into it (dir/. copies its content)
 */
import { lstatSync, readlinkSync, realpathSync, statSync } from 'node:fs';
import type { Readable } from 'node:stream';

import { readTar } from '../archive/tar-reader.js';
import { TarWriter } from '../archive/tar-writer.js';
import { errnoCode } from '../errors/errors.js';
import { assertsDirectory, baseName, hasTrailingSeparator, joinPath, rebaseName, splitPathDirEntry } from './archive-path.js';
import { errnoText } from './archive-root.js';
import { archiveInRoot } from './archive-tar.js';

export interface CopyInfo {
  path: string;
  exists: boolean;
  isDir: boolean;
  /** The name the archive's top entry must take ("" to keep it). */
  rebaseName: string;
}

/** A copy error worded as docker prints it. */
export class CopyError extends Error {}

/** Go's error text for a failed syscall on a path: "lstat /x: no such file or directory". */
export function goPathError(op: string, path: string, err: unknown): CopyError {
  return new CopyError(`${op} ${path}: ${errnoText(err)}`);
}

/**
 * The source of a copy to a container (an absolute local path, which must exist): symlinks
 * before its last element resolved, and the last one too with `followLink`.
 */
export function copyInfoSourcePath(path: string, followLink: boolean): CopyInfo {
  let resolved: string;
  let rebase = '';
  if (followLink) {
    try {
      resolved = realpathSync(path);
    } catch (err) {
      throw goPathError('lstat', path, err);
    }
    [resolved, rebase] = rebaseName(path, resolved);
  } else {
    const slash = path.lastIndexOf('/');
    const dir = path.slice(0, slash + 1);
    const base = path.slice(slash + 1);
    let resolvedDir: string;
    try {
      resolvedDir = realpathSync(dir === '' ? '.' : dir);
    } catch (err) {
      throw goPathError('lstat', dir, err);
    }
    resolved = resolvedDir === '/' ? `/${base}` : `${resolvedDir}/${base}`;
    if (hasTrailingSeparator(path) && baseName(path) !== baseName(resolved)) rebase = baseName(path);
  }
  let isDir: boolean;
  try {
    isDir = lstatSync(resolved).isDirectory();
  } catch (err) {
    throw goPathError('lstat', resolved, err);
  }
  return { path: resolved, exists: true, isDir, rebaseName: rebase };
}

/** The destination of a copy from a container (an absolute local path): symlinks followed; it need not exist, its parent must. */
export function copyInfoDestinationPath(path: string): CopyInfo {
  const original = path;
  let current = path;
  for (let n = 0; ; n++) {
    let st;
    try {
      st = lstatSync(current);
    } catch (err) {
      if (errnoCode(err) !== 'ENOENT') throw goPathError('lstat', current, err);
      // It may be missing; its parent directory must be there.
      const [parent] = splitPathDirEntry(current);
      let parentSt;
      try {
        parentSt = statSync(parent);
      } catch (statErr) {
        throw goPathError('stat', parent, statErr);
      }
      if (!parentSt.isDirectory()) throw new CopyError('not a directory');
      return { path: current, exists: false, isDir: false, rebaseName: '' };
    }
    if (!st.isSymbolicLink()) return { path: current, exists: true, isDir: st.isDirectory(), rebaseName: '' };
    if (n > 10) throw new CopyError(`too many symlinks in ${original}`);
    const target = readlinkSync(current);
    current = target.startsWith('/') ? target : joinPath(splitPathDirEntry(current)[0], target);
  }
}

/**
 * Where to extract `content` (an archive of `src`) so that it lands as `dst` says, and the
 * archive renamed for it. Throws CopyError for the combinations cp refuses.
 */
export function prepareArchiveCopy(content: Readable, src: CopyInfo, dst: CopyInfo): { dstDir: string; content: Readable } {
  const [dstDir, dstBase] = splitPathDirEntry(dst.path);
  let [, srcBase] = splitPathDirEntry(src.path);
  if (dst.exists && dst.isDir) return { dstDir: dst.path, content };
  if (dst.exists && src.isDir) throw new CopyError('cannot copy directory');
  if (!dst.exists && !src.isDir && assertsDirectory(dst.path)) throw new CopyError('no such directory');
  if (src.rebaseName !== '') srcBase = src.rebaseName;
  return { dstDir, content: rebaseArchiveEntries(content, srcBase, dstBase) };
}

/**
 * The archive with the first `oldBase` in each name (and hardlink target) replaced by
 * `newBase`; for the root ("/"), `newBase` goes in front of every name.
 */
export function rebaseArchiveEntries(input: Readable, oldBase: string, newBase: string): Readable {
  const from = oldBase === '/' ? '' : oldBase;
  const rename = (name: string): string => name.replace(from, () => newBase);
  const writer = new TarWriter();
  (async () => {
    for await (const { header, body } of readTar(input)) {
      const renamed = { ...header, name: rename(header.name), linkname: header.type === 'hardlink' ? rename(header.linkname) : header.linkname };
      if (header.type === 'file') await writer.add(renamed, body);
      else await writer.add(renamed);
    }
    await writer.finish();
  })().catch((err: unknown) => {
    input.destroy();
    if (!writer.stream.destroyed) writer.stream.destroy(err instanceof Error ? err : new Error(String(err)));
  });
  return writer.stream;
}

/** The local resource `src` as an archive, its top entry named by its base name or rebase name. */
export function tarResource(src: CopyInfo): Readable {
  const [, base] = splitPathDirEntry(src.path);
  const { stream } = archiveInRoot('/', src.path, src.rebaseName || base);
  return stream;
}
