/**
 * A container's filesystem as layers: its upper dir (what the container changed) over the
 * image's layers. From it: `docker diff` (the changes against the image), the paths the
 * runtime alone put there (mount points), and `docker export` (the whole filesystem as a tar,
 * read through a read-only overlay of all the layers).
 *
 * The layers below the upper dir are read as overlayfs would merge them (whiteouts are char
 * devices 0:0, an opaque directory hides what lies below it), without mounting them.
 */
import { randomUUID } from 'node:crypto';
import { existsSync, type BigIntStats } from 'node:fs';
import { lstat, mkdir, readFile, readdir, rmdir } from 'node:fs/promises';
import { join, posix } from 'node:path';
import type { Readable } from 'node:stream';

import { errnoCode } from '../errors/errors.js';
import { lgetxattr } from '../native/native.js';
import { OVERLAY_OPAQUE_XATTR } from '../snapshots/apply-layer.js';
import { diffLayer } from '../snapshots/diff-layer.js';
import { mountAll, unmountAll, type Mount } from '../snapshots/mount.js';
import type { Snapshotter } from '../snapshots/overlay-snapshotter.js';

/** Docker's ChangeType: what `docker diff` prints as C, A and D. */
export const ChangeKind = { Modified: 0, Added: 1, Deleted: 2 } as const;
export type ChangeKind = (typeof ChangeKind)[keyof typeof ChangeKind];

/** One entry of `GET /containers/{id}/changes`. */
export interface FilesystemChange {
  Path: string;
  Kind: ChangeKind;
}

/** A path the runtime made in the upper dir (a mount point), relative to the root. */
export interface RuntimeLeftover {
  path: string;
  /** The image has it too: only its copy-up (a directory's) is the runtime's. */
  inLower: boolean;
}

export class ContainerFilesystem {
  /** The container's own writable layer. */
  readonly upper: string;
  /** The image's layers, top first. */
  readonly lowers: readonly string[];
  /** Where the runtime mounted things over the root filesystem, relative ('etc/hosts'). */
  readonly mountPoints: readonly string[];

  constructor(upper: string, lowers: readonly string[], mountPoints: readonly string[] = []) {
    this.upper = upper;
    this.lowers = lowers;
    this.mountPoints = mountPoints;
  }

  /**
   * The filesystem of the active snapshot `key` (a container's): its upper dir and the
   * committed snapshots below it. `bundleDir` holds the OCI spec of its last start, whose
   * mount destinations are where the runtime may have made empty mount points.
   */
  static async open(snapshots: Snapshotter, key: string, bundleDir?: string): Promise<ContainerFilesystem> {
    const upper = snapshots.upperDir(key);
    const lowers: string[] = [];
    for (let parent = (await snapshots.stat(key))?.parent; parent !== undefined; ) {
      lowers.push(snapshots.upperDir(parent));
      parent = (await snapshots.stat(parent))?.parent;
    }
    return new ContainerFilesystem(upper, lowers, bundleDir ? await specMountPoints(join(bundleDir, 'config.json')) : []);
  }

  /** Every layer, top first: what an overlay of the container's root stacks. */
  get layers(): string[] {
    return [this.upper, ...this.lowers];
  }

  /**
   * What the image's layers show at `rel` ('' is the root), as overlayfs would: the entry
   * of the topmost layer that has one, unless a whiteout, a non-directory or an opaque
   * directory on the way hides it.
   */
  async lowerStat(rel: string): Promise<BigIntStats | undefined> {
    const parts = splitPath(rel);
    for (const layer of this.lowers) {
      const { entry, blocked } = await probe(layer, parts);
      if (entry) return entry;
      if (blocked) return undefined;
    }
    return undefined;
  }

  /** The names the image's layers show in the directory `rel`, merged as overlayfs would. */
  async lowerNames(rel: string): Promise<string[]> {
    const parts = splitPath(rel);
    const seen = new Map<string, boolean>();
    for (const layer of this.lowers) {
      const { entry, blocked } = await probe(layer, parts);
      if (!entry) {
        if (blocked) break;
        continue;
      }
      if (!entry.isDirectory()) break;
      const dir = joinRel(layer, rel);
      for (const name of await readdir(dir)) {
        if (seen.has(name)) continue;
        const st = await lstatOrUndefined(`${dir}/${name}`);
        seen.set(name, st !== undefined && !isWhiteout(st));
      }
      if (blocked || isOpaque(dir)) break;
    }
    return [...seen].filter(([, visible]) => visible).map(([name]) => name);
  }

  /**
   * The mount points the runtime made in the upper dir and nothing else touched: an empty
   * file or directory at a mount destination the image lacks (/etc/hosts, /proc), and each
   * directory that holds only those and is the image's own or absent from it. Docker keeps
   * these in an init layer that commit and diff never see; berth leaves them out instead.
   */
  async runtimeLeftovers(): Promise<RuntimeLeftover[]> {
    const found = new Map<string, boolean>();
    for (const point of this.mountPoints) {
      const st = await lstatOrUndefined(joinRel(this.upper, point));
      if (!st || found.has(point)) continue;
      const empty = st.isFile() ? st.size === 0n : st.isDirectory() ? (await readdir(joinRel(this.upper, point))).length === 0 : false;
      if (!empty || (await this.lowerStat(point))) continue;
      found.set(point, false);
    }
    // Their directories, deepest first, when nothing else changed in them.
    const dirs = [...new Set([...found.keys()].flatMap(ancestors))].sort((a, b) => splitPath(b).length - splitPath(a).length);
    for (const dir of dirs) {
      const path = joinRel(this.upper, dir);
      const st = await lstatOrUndefined(path);
      if (!st?.isDirectory() || isOpaque(path)) continue;
      const names = await readdir(path);
      if (!names.every((name) => found.has(dir === '' ? name : `${dir}/${name}`))) continue;
      const lower = await this.lowerStat(dir);
      if (lower && !(lower.isDirectory() && sameOwnerAndMode(st, lower))) continue;
      found.set(dir, lower !== undefined);
    }
    return [...found].map(([path, inLower]) => ({ path, inLower }));
  }

  /**
   * `docker diff`: each path the container added (A), changed (C) or deleted (D), in the
   * order of a walk of the upper dir, by docker's rules: a directory the image has counts
   * as changed when its size, mode or mtime differ, and the directory of an added or
   * deleted path is always listed as changed, once, before it. Beyond docker, an opaque
   * directory (one replaced as a whole) lists what it hid of the image as deleted.
   */
  async changes(): Promise<FilesystemChange[]> {
    const leftovers = new Set((await this.runtimeLeftovers()).map((l) => l.path));
    const holdsLeftover = (dir: string) => [...leftovers].some((l) => posix.dirname(l) === dir);
    const changes: FilesystemChange[] = [];
    const changedDirs = new Set<string>();
    const record = (path: string, kind: ChangeKind, isDir: boolean) => {
      if (isDir) changedDirs.add(path);
      if (kind !== ChangeKind.Modified) {
        const parent = posix.dirname(path);
        if (parent !== '/' && !changedDirs.has(parent)) {
          changes.push({ Path: parent, Kind: ChangeKind.Modified });
          changedDirs.add(parent);
        }
      }
      changes.push({ Path: path, Kind: kind });
    };

    // `hidesLower`: this directory, or one above it, is opaque, so the image's entries in
    // it that the upper dir lacks are gone.
    const walk = async (rel: string, hidesLower: boolean): Promise<void> => {
      const names = await readdirOrEmpty(joinRel(this.upper, rel));
      const hidden = new Set<string>();
      if (hidesLower) {
        const present = new Set(names);
        for (const name of await this.lowerNames(rel)) if (!present.has(name)) hidden.add(name);
      }
      for (const name of [...names, ...hidden].sort(byBytes)) {
        const childRel = rel === '' ? name : `${rel}/${name}`;
        const path = `/${childRel}`;
        if (leftovers.has(childRel)) continue;
        if (hidden.has(name)) {
          record(path, ChangeKind.Deleted, false);
          continue;
        }
        const full = joinRel(this.upper, childRel);
        const st = await lstatOrUndefined(full);
        if (!st) continue; // removed while we walked
        if (isWhiteout(st)) {
          record(path, ChangeKind.Deleted, false);
          continue;
        }
        const lower = await this.lowerStat(childRel);
        // A mount point made in a directory changed its mtime: that alone is no change.
        const unchangedDir =
          lower?.isDirectory() &&
          st.isDirectory() &&
          st.size === lower.size &&
          st.mode === lower.mode &&
          (sameFsTime(st, lower) || holdsLeftover(childRel));
        if (!unchangedDir) record(path, lower ? ChangeKind.Modified : ChangeKind.Added, st.isDirectory());
        if (st.isDirectory()) await walk(childRel, hidesLower || isOpaque(full));
      }
    };
    await walk('', false);
    return changes;
  }
}

/**
 * The whole filesystem of `layers` (top first) as a tar, read through a read-only overlay
 * mounted under `viewsDir` and unmounted when the stream closes (ended or destroyed).
 */
export async function filesystemTar(
  layers: readonly string[],
  viewsDir: string,
  onReleaseError: (err: unknown) => void = () => undefined,
): Promise<Readable> {
  const view = await mountView(layers, viewsDir);
  let tar: Readable;
  try {
    tar = diffLayer(view.path);
  } catch (err) {
    await view.release();
    throw err;
  }
  tar.once('close', () => {
    view.release().catch(onReleaseError);
  });
  return tar;
}

export interface MountedView {
  path: string;
  release(): Promise<void>;
}

/**
 * A read-only overlay of `layers` (top first) on a fresh directory under `viewsDir`. No
 * upper or work dir, so a layer that is some container's upper dir can be read meanwhile
 * (overlay then warns that it is in use; with index=off it does not refuse).
 */
export async function mountView(layers: readonly string[], viewsDir: string): Promise<MountedView> {
  await clearStaleViews(viewsDir);
  const path = join(viewsDir, randomUUID());
  await mkdir(path, { recursive: true, mode: 0o700 });
  const mount: Mount =
    layers.length === 1
      ? { type: 'bind', source: layers[0]!, options: ['rbind', 'ro'] }
      : { type: 'overlay', source: 'overlay', options: ['ro', ...(INDEX_PARAM ? ['index=off'] : []), `lowerdir=${layers.join(':')}`] };
  try {
    await mountAll([mount], path);
  } catch (err) {
    await rmdir(path).catch(() => undefined);
    throw err;
  }
  let released: Promise<void> | undefined;
  return {
    path,
    release() {
      released ??= unmountAll(path).then(() => rmdir(path));
      return released;
    },
  };
}

/** As the snapshotter: with an index, overlay refuses a lower dir that another mount uses. */
const INDEX_PARAM = existsSync('/sys/module/overlay/parameters/index');

/**
 * Per views directory, the clearing of what an earlier daemon (killed with views mounted)
 * left there: done once per process, before this process mounts any view of its own.
 */
const clearing = new Map<string, Promise<void>>();

function clearStaleViews(viewsDir: string): Promise<void> {
  let done = clearing.get(viewsDir);
  if (!done) {
    done = (async () => {
      for (const name of await readdirOrEmpty(viewsDir)) {
        const path = join(viewsDir, name);
        await unmountAll(path).catch(() => undefined);
        // rmdir: only an empty directory goes, never anything a mount still shows.
        await rmdir(path).catch(() => undefined);
      }
    })();
    clearing.set(viewsDir, done);
  }
  return done;
}

/** The mount destinations of an OCI spec, relative to the root; none when it is not there. */
async function specMountPoints(specPath: string): Promise<string[]> {
  let spec: unknown;
  try {
    spec = JSON.parse(await readFile(specPath, 'utf8'));
  } catch {
    return [];
  }
  const mounts = (spec as { mounts?: unknown }).mounts;
  if (!Array.isArray(mounts)) return [];
  const out: string[] = [];
  for (const m of mounts) {
    const destination = (m as { destination?: unknown }).destination;
    if (typeof destination !== 'string') continue;
    const rel = splitPath(posix.normalize(destination)).join('/');
    if (rel !== '' && !rel.split('/').includes('..')) out.push(rel);
  }
  return out;
}

/**
 * What one layer holds at `parts`: its entry, and whether layers below are hidden from it
 * (a whiteout, a non-directory or an opaque directory at or above it in this layer).
 */
async function probe(layer: string, parts: string[]): Promise<{ entry: BigIntStats | undefined; blocked: boolean }> {
  if (parts.length === 0) return { entry: await lstatOrUndefined(layer), blocked: false };
  let path = layer;
  let blocked = false;
  for (let i = 0; i < parts.length; i++) {
    path += `/${parts[i]}`;
    const st = await lstatOrUndefined(path);
    if (!st) return { entry: undefined, blocked };
    if (isWhiteout(st)) return { entry: undefined, blocked: true };
    if (i === parts.length - 1) return { entry: st, blocked };
    if (!st.isDirectory()) return { entry: undefined, blocked: true };
    if (isOpaque(path)) blocked = true;
  }
  return { entry: undefined, blocked };
}

function isWhiteout(st: BigIntStats): boolean {
  return st.isCharacterDevice() && st.rdev === 0n;
}

function isOpaque(path: string): boolean {
  return lgetxattr(path, OVERLAY_OPAQUE_XATTR)?.toString() === 'y';
}

/** Docker's sameFsTime: equal, or the same second with one of them lacking nanoseconds. */
function sameFsTime(a: BigIntStats, b: BigIntStats): boolean {
  if (a.mtimeNs === b.mtimeNs) return true;
  const second = 1_000_000_000n;
  return a.mtimeNs / second === b.mtimeNs / second && (a.mtimeNs % second === 0n || b.mtimeNs % second === 0n);
}

function sameOwnerAndMode(a: BigIntStats, b: BigIntStats): boolean {
  return a.mode === b.mode && a.uid === b.uid && a.gid === b.gid;
}

/** 'a/b/c' -> ['a/b', 'a']: the directories above a relative path, the root excluded. */
function ancestors(rel: string): string[] {
  const out: string[] = [];
  for (let dir = posix.dirname(rel); dir !== '.' && dir !== '/'; dir = posix.dirname(dir)) out.push(dir);
  return out;
}

function splitPath(rel: string): string[] {
  return rel.split('/').filter((p) => p !== '' && p !== '.');
}

function joinRel(root: string, rel: string): string {
  return rel === '' ? root : `${root}/${rel}`;
}

async function lstatOrUndefined(path: string): Promise<BigIntStats | undefined> {
  try {
    return await lstat(path, { bigint: true });
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw err;
  }
}

async function readdirOrEmpty(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'ENOENT' || code === 'ENOTDIR') return [];
    throw err;
  }
}

/** Go's string order (bytewise), which docker's walk follows. */
function byBytes(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}
