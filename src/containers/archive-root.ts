/**
 * File operations inside a root that belongs to someone else (a container's filesystem,
 * which a hostile process may change while we work in it).
 *
 * The rules that keep every operation inside the root:
 *   - A path is only ever resolved by the kernel with openat2 RESOLVE_IN_ROOT (`openIn`):
 *     symlinks, absolute or with "..", resolve as if the root were "/".
 *   - After that, work is relative to a directory file descriptor: `fdPath(dir, name)` is
 *     /proc/self/fd/<dir>/<name>. The magic link pins the directory's inode (no path is
 *     walked again) and `name` is one component, never ".." and never followed: only calls
 *     that do not follow a final symlink are made on it (lstat, readlink, mkdir, symlink,
 *     link, unlink, rmdir, lchown, lutimes, lsetxattr, open with O_NOFOLLOW).
 *   - Metadata of what was opened goes through the descriptor: fstat, fchown, or chmod and
 *     utimes of /proc/self/fd/<fd>, which reach the inode the descriptor holds.
 */
import { closeSync, constants as fsc, lstatSync, openSync, readdirSync, readlinkSync, rmdirSync, unlinkSync } from 'node:fs';

import { InvalidArgument, errnoCode } from '../errors/errors.js';
import { O_PATH, openInRoot } from '../native/native.js';

export { O_PATH };

/** /proc/self/fd/<fd>, or the entry `name` of directory `fd` (one component). */
export function fdPath(fd: number, name?: string): string {
  if (name === undefined) return `/proc/self/fd/${fd}`;
  if (name === '' || name === '.' || name === '..' || name.includes('/') || name.includes('\0')) {
    throw new InvalidArgument(`not a single path component: ${JSON.stringify(name)}`);
  }
  return `/proc/self/fd/${fd}/${name}`;
}

/** Opens `path` (absolute or relative, as in the root) inside `root`; see openInRoot. */
export function openIn(root: string, path: string, flags: number): number {
  const rel = path.replace(/^\/+/, '');
  return openInRoot(root, rel === '' ? '.' : rel, flags);
}

/** Closes a descriptor, ignoring errors (for cleanup paths). */
export function closeQuietly(fd: number | undefined): void {
  if (fd === undefined) return;
  try {
    closeSync(fd);
  } catch {
    // already closed or never valid: nothing to release
  }
}

/**
 * Removes entry `name` of directory `dirFd` and, for a directory, everything in it, never
 * following a symlink: each directory is opened O_NOFOLLOW and emptied through its own
 * descriptor, so one swapped for a symlink midway is unlinked, not entered.
 */
export function removeAt(dirFd: number, name: string): void {
  const path = fdPath(dirFd, name);
  const st = lstatSync(path);
  if (!st.isDirectory()) {
    unlinkSync(path);
    return;
  }
  let fd: number | undefined;
  try {
    fd = openSync(path, fsc.O_RDONLY | fsc.O_DIRECTORY | fsc.O_NOFOLLOW);
  } catch (err) {
    // Swapped for something else since the lstat: remove that instead.
    if (errnoCode(err) === 'ELOOP' || errnoCode(err) === 'ENOTDIR') {
      unlinkSync(path);
      return;
    }
    throw err;
  }
  try {
    for (const child of readdirSync(fdPath(fd))) removeAt(fd, child);
  } finally {
    closeSync(fd);
  }
  rmdirSync(path);
}

const ERRNO_TEXT: Record<string, string> = {
  ENOENT: 'no such file or directory',
  ENOTDIR: 'not a directory',
  EISDIR: 'is a directory',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  ELOOP: 'too many levels of symbolic links',
  EEXIST: 'file exists',
  ENOTEMPTY: 'directory not empty',
  EROFS: 'read-only file system',
  ENOSPC: 'no space left on device',
  EDQUOT: 'disk quota exceeded',
  EXDEV: 'invalid cross-device link',
  EMLINK: 'too many links',
  ENAMETOOLONG: 'file name too long',
  EBUSY: 'device or resource busy',
  EINVAL: 'invalid argument',
  EIO: 'input/output error',
};

/**
 * A system error's reason as Go (and so docker) words it, "no such file or directory",
 * without the host paths Node and the addon put in their messages.
 */
export function errnoText(err: unknown): string {
  const code = errnoCode(err);
  if (code !== undefined && ERRNO_TEXT[code] !== undefined) return ERRNO_TEXT[code];
  if (code !== undefined && /^E[A-Z0-9]+$/.test(code)) return code;
  return err instanceof Error ? err.message : String(err);
}

/** Symlinks followed before resolution gives up, as Linux's MAXSYMLINKS (40) and moby's 255. */
const MAX_LINKS = 255;

/**
 * Where `absPath` leads inside the root with every symlink followed, as an absolute path
 * in the root (moby's FollowSymlinkInScope). What does not exist is kept as written, so a
 * broken link still names its target. Only a name: every lookup it makes is in the root.
 */
export function resolveInScope(root: string, absPath: string): string {
  const resolved: string[] = [];
  const pending = absPath.split('/');
  let links = 0;
  while (pending.length > 0) {
    const part = pending.shift()!;
    if (part === '' || part === '.') continue;
    if (part === '..') {
      resolved.pop();
      continue;
    }
    let target: string | undefined;
    let dirFd: number | undefined;
    try {
      dirFd = openIn(root, resolved.join('/'), O_PATH | fsc.O_DIRECTORY);
      const path = fdPath(dirFd, part);
      if (lstatSync(path).isSymbolicLink()) target = readlinkSync(path);
    } catch (err) {
      const code = errnoCode(err);
      if (code !== 'ENOENT' && code !== 'ENOTDIR' && code !== 'ELOOP') throw err;
    } finally {
      closeQuietly(dirFd);
    }
    if (target === undefined) {
      resolved.push(part);
      continue;
    }
    if (++links > MAX_LINKS) throw new InvalidArgument(`too many links in ${absPath}`);
    if (target.startsWith('/')) resolved.length = 0;
    pending.unshift(...target.split('/'));
  }
  return `/${resolved.join('/')}`;
}
