/**
 * Typed access to native/build/berth_native.node: the few Linux syscalls Node lacks.
 *
 * The addon is loaded on first use, not at import, so modules that merely import this
 * file work on machines (or in builds) without it. It is found, in order, at
 *   1. $BERTH_NATIVE (a path to the .node file),
 *   2. <dir>/native/build/berth_native.node for the nearest directory <dir> above this
 *      module, or above the current working directory, that holds a package.json.
 *
 * Every call but syncfs is a synchronous syscall and throws an Error whose `code` is the errno name
 * ("ENOENT", "EINVAL"...), with `syscall` and `path` set and a message naming the path.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { Unavailable } from '../errors/errors.js';

/** mount(2) flags (the Linux values; identical on every architecture). */
export const MS_RDONLY = 0x1;
export const MS_NOSUID = 0x2;
export const MS_NODEV = 0x4;
export const MS_NOEXEC = 0x8;
export const MS_REMOUNT = 0x20;
export const MS_NOATIME = 0x400;
export const MS_NODIRATIME = 0x800;
export const MS_BIND = 0x1000;
export const MS_MOVE = 0x2000;
export const MS_REC = 0x4000;
export const MS_UNBINDABLE = 0x20000;
export const MS_PRIVATE = 0x40000;
export const MS_SLAVE = 0x80000;
export const MS_SHARED = 0x100000;
export const MS_RELATIME = 0x200000;
export const MS_STRICTATIME = 0x1000000;

/** umount2(2) flags. */
export const MNT_FORCE = 0x1;
export const MNT_DETACH = 0x2;
export const UMOUNT_NOFOLLOW = 0x8;

/** open(2) O_PATH (x86_64 and arm64), absent from fs.constants. */
export const O_PATH = 0o10000000;

/** File type bits for mknod(2). */
export const S_IFIFO = 0o010000;
export const S_IFCHR = 0o020000;
export const S_IFBLK = 0o060000;

/** lsetxattr(2) flags. */
export const XATTR_CREATE = 0x1;
export const XATTR_REPLACE = 0x2;

/** The addon's own exports, as the C code defines them. */
export interface NativeAddon {
  mount(
    source: string | null,
    target: string,
    fstype: string | null,
    flags: number,
    data: string | null,
    cwd?: string | null,
  ): void;
  umount2(target: string, flags?: number): void;
  mknod(path: string, mode: number, dev: number): void;
  lsetxattr(path: string, name: string, value: Buffer, flags?: number): void;
  lgetxattr(path: string, name: string): Buffer | null;
  llistxattr(path: string): string[];
  openInRoot(rootPath: string, relPath: string, flags: number, mode?: number): number;
  syncfs(path: string): Promise<void>;
  /** The C headers' values of the constants exported above. */
  readonly constants: Readonly<Record<string, number>>;
}

const ADDON_PATH = join('native', 'build', 'berth_native.node');

let loaded: NativeAddon | undefined;

function findAddon(): string | undefined {
  const fromEnv = process.env['BERTH_NATIVE'];
  if (fromEnv) return resolve(fromEnv);
  for (const start of [dirname(fileURLToPath(import.meta.url)), process.cwd()]) {
    for (let dir = start; ; dir = dirname(dir)) {
      if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, ADDON_PATH))) return join(dir, ADDON_PATH);
      if (dirname(dir) === dir) break;
    }
  }
  return undefined;
}

/** The loaded addon; throws Unavailable when it was not built. */
export function nativeAddon(): NativeAddon {
  if (loaded) return loaded;
  const path = findAddon();
  if (!path) {
    throw new Unavailable(
      `berth native addon: ${ADDON_PATH} not found above ${dirname(fileURLToPath(import.meta.url))} ` +
        'or the working directory (build it with `make -C native`, or set BERTH_NATIVE)',
    );
  }
  try {
    loaded = createRequire(import.meta.url)(path) as NativeAddon;
  } catch (err) {
    throw new Unavailable(`berth native addon: cannot load ${path}`, { cause: err });
  }
  return loaded;
}

/** mount(2). With `cwd`, relative paths in `data` (overlay's lowerdir) resolve from it. */
export function mount(
  source: string | null,
  target: string,
  fstype: string | null,
  flags: number,
  data: string | null,
  cwd?: string,
): void {
  nativeAddon().mount(source, target, fstype, flags, data, cwd ?? null);
}

/** umount2(2). */
export function umount2(target: string, flags = 0): void {
  nativeAddon().umount2(target, flags);
}

/** mknod(2): `mode` holds the file type bits (S_IFCHR, S_IFBLK, S_IFIFO) and permissions. */
export function mknod(path: string, mode: number, dev = 0): void {
  nativeAddon().mknod(path, mode, dev);
}

/** The dev_t of a device number pair, as glibc's makedev(3) encodes it. */
export function makedev(major: number, minor: number): number {
  // Arithmetic rather than bitwise operators: dev_t is 64-bit, JS bit operations are 32-bit.
  const lowMinor = minor % 0x100;
  const highMinor = Math.floor(minor / 0x100);
  const lowMajor = major % 0x1000;
  const highMajor = Math.floor(major / 0x1000);
  return lowMinor + lowMajor * 0x100 + highMinor * 0x100000 + highMajor * 0x100000000000;
}

/** lsetxattr(2): sets an extended attribute without following a final symlink. */
export function lsetxattr(path: string, name: string, value: Buffer, flags = 0): void {
  nativeAddon().lsetxattr(path, name, value, flags);
}

/** lgetxattr(2): the attribute's value, or null when the file does not have it. */
export function lgetxattr(path: string, name: string): Buffer | null {
  return nativeAddon().lgetxattr(path, name);
}

/** llistxattr(2): the names of the file's extended attributes. */
export function llistxattr(path: string): string[] {
  return nativeAddon().llistxattr(path);
}

/**
 * openat2(2) with RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS: opens `relPath` as if `rootPath`
 * were "/" — absolute symlinks and ".." stay inside it, and /proc magic links are refused.
 * Returns a file descriptor (O_CLOEXEC is always added); the caller closes it.
 */
export function openInRoot(rootPath: string, relPath: string, flags: number, mode = 0): number {
  return nativeAddon().openInRoot(rootPath, relPath, flags, mode);
}

/**
 * syncfs(2) of the filesystem holding `path`, on a worker thread: makes everything written
 * there durable (e.g. an unpacked layer, before its snapshot is committed).
 */
export function syncfs(path: string): Promise<void> {
  try {
    return nativeAddon().syncfs(path);
  } catch (err) {
    return Promise.reject(err);
  }
}
