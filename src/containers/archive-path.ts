/**
 * Paths as `docker cp` reads them, on both sides of the API: Go's path/filepath semantics
 * (Clean, Base, Dir, Join) and moby's archive conventions on top of them. A trailing `/`
 * asserts a directory; a trailing `/.` means "the contents of" that directory. Clean would
 * drop both, so they are put back after cleaning.
 *
 * Also the stat that travels in the `X-Docker-Container-Path-Stat` header: base64 of JSON
 * `{"name","size","mode","mtime","linkTarget"}` with `mode` a Go os.FileMode.
 */
import type { BigIntStats, Stats } from 'node:fs';

import { InvalidArgument } from '../errors/errors.js';

/** Go's filepath.Clean for slash-separated paths. */
export function cleanPath(path: string): string {
  if (path === '') return '.';
  const rooted = path.startsWith('/');
  const out: string[] = [];
  for (const part of path.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (out.length > 0 && out[out.length - 1] !== '..') out.pop();
      else if (!rooted) out.push('..');
      continue;
    }
    out.push(part);
  }
  const joined = out.join('/');
  if (rooted) return `/${joined}`;
  return joined === '' ? '.' : joined;
}

/** Go's filepath.Base: the last element, trailing slashes ignored; "/" for the root. */
export function baseName(path: string): string {
  if (path === '') return '.';
  const trimmed = path.replace(/\/+$/, '');
  if (trimmed === '') return '/';
  return trimmed.slice(trimmed.lastIndexOf('/') + 1);
}

/** Go's filepath.Dir: everything but the last element, cleaned. */
export function dirName(path: string): string {
  return cleanPath(path.slice(0, path.lastIndexOf('/') + 1));
}

/** Go's filepath.Join: the non-empty elements joined with "/" and cleaned. */
export function joinPath(...parts: string[]): string {
  const kept = parts.filter((p) => p !== '');
  return kept.length === 0 ? '' : cleanPath(kept.join('/'));
}

export function hasTrailingSeparator(path: string): boolean {
  return path.endsWith('/');
}

/** Whether the last element is ".": `dir/.` names the contents of dir. */
export function specifiesCurrentDir(path: string): boolean {
  return baseName(path) === '.';
}

/** Whether the path insists on a directory: a trailing "/" or "/.". */
export function assertsDirectory(path: string): boolean {
  return hasTrailingSeparator(path) || specifiesCurrentDir(path);
}

/** Puts back the trailing "/." or "/" of `original` that cleaning removed from `cleaned`. */
export function preserveTrailingDotOrSeparator(cleaned: string, original: string): string {
  let out = cleaned;
  if (!specifiesCurrentDir(out) && specifiesCurrentDir(original)) {
    if (!hasTrailingSeparator(out)) out += '/';
    out += '.';
  }
  if (!hasTrailingSeparator(out) && hasTrailingSeparator(original)) out += '/';
  return out;
}

/** A path given for a container, as an absolute path in it ("etc/x/." -> "/etc/x/."). */
export function containerAbsPath(path: string): string {
  if (path.includes('\0')) throw new InvalidArgument(`path ${JSON.stringify(path)} contains a NUL byte`);
  return preserveTrailingDotOrSeparator(cleanPath(`/${path}`), path);
}

/** The directory and the entry in it, keeping a final "." (moby's SplitPathDirEntry). */
export function splitPathDirEntry(path: string): [dir: string, base: string] {
  let cleaned = cleanPath(path);
  if (specifiesCurrentDir(path)) cleaned += '/.';
  return [dirName(cleaned), baseName(cleaned)];
}

/**
 * After `path` was resolved to `resolved` (a symlink followed): the resolved path with the
 * original's trailing "/." or "/", and the name the archive's entries must take instead of
 * the resolved base name ("" when they agree).
 */
export function rebaseName(path: string, resolved: string): [resolved: string, rebaseName: string] {
  let out = resolved;
  if (specifiesCurrentDir(path) && !specifiesCurrentDir(out)) out += '/.';
  if (hasTrailingSeparator(path) && !hasTrailingSeparator(out)) out += '/';
  return [out, baseName(path) !== baseName(out) ? baseName(path) : ''];
}

/**
 * The name an archive entry would take relative to the extraction directory: cleaned, with
 * a rooted path clamped to the directory (Go's Clean of "/../x" is "/x"). Throws when a
 * relative name climbs out of it, as moby's breakout check does. "" is the directory itself.
 */
export function archiveEntryPath(name: string, shownDir: string): string {
  if (name.includes('\0')) throw new InvalidArgument(`archive entry ${JSON.stringify(name)}: the name contains a NUL byte`);
  const cleaned = cleanPath(name);
  if (cleaned === '..' || cleaned.startsWith('../')) {
    throw new InvalidArgument(`${JSON.stringify(name)} is outside of ${JSON.stringify(shownDir)}`);
  }
  const rel = cleaned.replace(/^\/+/, '');
  return rel === '.' ? '' : rel;
}

// ---- the path stat ----

/** Go's os.FileMode bits (io/fs). */
export const GO_MODE = {
  dir: 2 ** 31,
  append: 2 ** 30,
  exclusive: 2 ** 29,
  temporary: 2 ** 28,
  symlink: 2 ** 27,
  device: 2 ** 26,
  namedPipe: 2 ** 25,
  socket: 2 ** 24,
  setuid: 2 ** 23,
  setgid: 2 ** 22,
  charDevice: 2 ** 21,
  sticky: 2 ** 20,
  irregular: 2 ** 19,
} as const;

const S_IFMT = 0o170000;

/** A stat(2) st_mode as Go's os.FileMode (what Lstat(...).Mode() gives). */
export function goFileMode(stMode: number): number {
  let mode = stMode & 0o777;
  switch (stMode & S_IFMT) {
    case 0o060000:
      mode += GO_MODE.device;
      break;
    case 0o020000:
      mode += GO_MODE.device + GO_MODE.charDevice;
      break;
    case 0o040000:
      mode += GO_MODE.dir;
      break;
    case 0o010000:
      mode += GO_MODE.namedPipe;
      break;
    case 0o120000:
      mode += GO_MODE.symlink;
      break;
    case 0o140000:
      mode += GO_MODE.socket;
      break;
  }
  if (stMode & 0o4000) mode += GO_MODE.setuid;
  if (stMode & 0o2000) mode += GO_MODE.setgid;
  if (stMode & 0o1000) mode += GO_MODE.sticky;
  return mode;
}

/** Whether a Go FileMode has `bit` (the high bits do not fit JavaScript's 32-bit `&`). */
export function hasModeBit(mode: number, bit: number): boolean {
  return Math.floor(mode / bit) % 2 === 1;
}

/** moby's ContainerPathStat, in its JSON field order. */
export interface PathStat {
  name: string;
  size: number;
  /** A Go os.FileMode. */
  mode: number;
  /** RFC 3339 with nanoseconds, as Go marshals a time.Time. */
  mtime: string;
  /** For a symlink: where it leads, fully resolved inside the container; "" otherwise. */
  linkTarget: string;
}

export const PATH_STAT_HEADER = 'X-Docker-Container-Path-Stat';

export function pathStatOf(name: string, st: BigIntStats | Stats, linkTarget: string): PathStat {
  const mtimeNs = typeof st.mtimeMs === 'bigint' ? (st as BigIntStats).mtimeNs : BigInt(Math.round((st as Stats).mtimeMs * 1e6));
  return { name, size: Number(st.size), mode: goFileMode(Number(st.mode)), mtime: rfc3339Nano(mtimeNs), linkTarget };
}

/** A time in nanoseconds since the epoch as Go's RFC3339Nano in UTC (trailing zeros dropped). */
export function rfc3339Nano(ns: bigint): string {
  const seconds = ns / 1_000_000_000n - (ns % 1_000_000_000n < 0n ? 1n : 0n);
  const frac = ns - seconds * 1_000_000_000n;
  const base = new Date(Number(seconds) * 1000).toISOString().slice(0, 19);
  const digits = frac === 0n ? '' : `.${frac.toString().padStart(9, '0').replace(/0+$/, '')}`;
  return `${base}${digits}Z`;
}

export function encodePathStat(stat: PathStat): string {
  return Buffer.from(JSON.stringify(stat)).toString('base64');
}

/** The header's stat; throws InvalidArgument when it is missing or not a stat. */
export function decodePathStat(header: string | string[] | undefined): PathStat {
  const text = Array.isArray(header) ? header[0] : header;
  if (!text) throw new InvalidArgument('the daemon sent no container path stat');
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(text, 'base64').toString('utf8'));
  } catch (err) {
    throw new InvalidArgument('unable to decode container path stat header', { cause: err });
  }
  const o = (typeof value === 'object' && value !== null ? value : {}) as Record<string, unknown>;
  return {
    name: typeof o['name'] === 'string' ? o['name'] : '',
    size: typeof o['size'] === 'number' ? o['size'] : 0,
    mode: typeof o['mode'] === 'number' ? o['mode'] : 0,
    mtime: typeof o['mtime'] === 'string' ? o['mtime'] : '',
    linkTarget: typeof o['linkTarget'] === 'string' ? o['linkTarget'] : '',
  };
}
