/**
 * `docker cp` on the daemon's side: the stat of a path in a container (HEAD archive), a tar
 * of it (GET archive) and a tar extracted into a directory of it (PUT archive), for running
 * and stopped containers alike.
 *
 * Whose root: a running container's is its live overlay mount (`rootfs/`); a stopped one's
 * snapshot is mounted for the copy in a private folder under the exec root (0700, never
 * under a folder that something empties with rm -rf), shared by concurrent copies of that
 * container and unmounted after the last:
 *
 *   <exec-root>/archive/<container id>-<random>/    a stopped container's root, while copied
 *
 * Every path, from the client or found in the container, resolves inside that root as the
 * kernel would resolve it in the container (archive-root.ts): the container's own symlinks
 * (`/tmp/x -> /`, `/etc/passwd -> /../../etc/shadow`, a directory swapped for a symlink
 * while the copy runs) never lead outside it.
 */
import { closeSync, constants as fsc, statSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rmdir } from 'node:fs/promises';
import { dirname, join, posix } from 'node:path';
import type { Readable } from 'node:stream';

import { decompressStream } from '../archive/decompress.js';
import type { EventBus } from '../daemon/events.js';
import { InvalidArgument, NotFound, errnoCode, isBerthError } from '../errors/errors.js';
import { resolveUser } from '../runtime/user.js';
import { mountAll, unmountAll, type Mount } from '../snapshots/overlay-snapshotter.js';
import { extractInRoot, type ExtractResult } from './archive-extract.js';
import { baseName, containerAbsPath, type PathStat } from './archive-path.js';
import { O_PATH, errnoText, openIn } from './archive-root.js';
import { archiveInRoot, statInRoot } from './archive-tar.js';
import type { ContainerRecord } from './container.js';

export interface ContainerArchiveDeps {
  containers: {
    get(idOrName: string): ContainerRecord;
    rootfs(id: string): string;
  };
  snapshots: { mounts(key: string): Promise<Mount[]> };
  events: EventBus;
  /** The exec root: stopped containers' roots are mounted below it. */
  execRoot: string;
  /** Where a volume's files are on the host. */
  volumeMountpoint(name: string): string;
  /** Reports what could not be cleaned up (stale mounts) and skipped device nodes. */
  warn?: (message: string, fields?: Record<string, unknown>) => void;
}

export interface ContainerArchiveStream {
  stat: PathStat;
  stream: Readable;
  /** Settles when the archive is done (or abandoned) and the container's root is released. */
  done: Promise<void>;
}

export interface ExtractRequest {
  /** Refuse to replace a directory with a non-directory and the reverse. */
  noOverwriteDirNonDir: boolean;
  /** `cp -a`: files take the container's configured user, when it has one. */
  copyUIDGID: boolean;
}

interface HeldRoot {
  root: string;
  release(): Promise<void>;
}

interface SharedMount {
  refs: number;
  ready: Promise<string>;
}

export class ContainerArchive {
  readonly #deps: ContainerArchiveDeps;
  readonly #mountsDir: string;
  /** Stopped containers' roots mounted now, by container id. */
  readonly #mounts = new Map<string, SharedMount>();
  /** Unmounts in progress, by container id: the next mount of that root waits for them. */
  readonly #unmounting = new Map<string, Promise<void>>();
  readonly #cleaned: Promise<void>;

  constructor(deps: ContainerArchiveDeps) {
    this.#deps = deps;
    this.#mountsDir = join(deps.execRoot, 'archive');
    this.#cleaned = this.#cleanStale();
  }

  /** HEAD: the stat of `path` (its last element not followed). */
  async stat(idOrName: string, path: string): Promise<PathStat> {
    const record = this.#deps.containers.get(idOrName);
    const absPath = containerAbsPath(path);
    const held = await this.#acquire(record);
    try {
      const at = this.#locate(record, held.root, absPath);
      return { ...statInRoot(at.root, at.path), name: baseName(absPath) };
    } catch (err) {
      throw fileError(err, path, idOrName);
    } finally {
      await held.release();
    }
  }

  /** GET: a tar of `path`, entries named after its base name, and its stat. */
  async archive(idOrName: string, path: string): Promise<ContainerArchiveStream> {
    const record = this.#deps.containers.get(idOrName);
    const absPath = containerAbsPath(path);
    const held = await this.#acquire(record);
    let started;
    try {
      const at = this.#locate(record, held.root, absPath);
      started = archiveInRoot(at.root, at.path, baseName(absPath));
    } catch (err) {
      await held.release();
      throw fileError(err, path, idOrName);
    }
    this.#publish(record, 'archive-path');
    const done = started.done.finally(() => held.release());
    return { stat: started.stat, stream: started.stream, done };
  }

  /** PUT: extracts the (possibly compressed) tar `body` into directory `path`. */
  async extract(idOrName: string, path: string, body: Readable, request: ExtractRequest): Promise<ExtractResult> {
    const record = this.#deps.containers.get(idOrName);
    const absPath = containerAbsPath(path);
    if (record.hostConfig.ReadonlyRootfs) throw new InvalidArgument('container rootfs is marked read-only');
    const held = await this.#acquire(record);
    try {
      const at = this.#locate(record, held.root, absPath);
      try {
        closeSync(openIn(at.root, at.path, O_PATH | fsc.O_DIRECTORY));
      } catch (err) {
        if (errnoCode(err) === 'ENOTDIR') throw new InvalidArgument('extraction point is not a directory', { cause: err });
        throw fileError(err, path, idOrName);
      }
      let owner: ExtractRequestOwner = 'archive';
      if (request.copyUIDGID && record.config.User) {
        const user = await resolveUser(held.root, record.config.User);
        owner = { uid: user.uid, gid: user.gid };
      }
      const tar = await decompressStream(body);
      const result = await extractInRoot(at.root, at.path, tar, { noOverwriteDirNonDir: request.noOverwriteDirNonDir, owner });
      if (result.skippedDevices.length > 0) {
        this.#deps.warn?.('device nodes in an archive copied into a container were not created', { id: record.id, devices: result.skippedDevices.slice(0, 20) });
      }
      this.#publish(record, 'extract-to-dir');
      return result;
    } finally {
      await held.release();
    }
  }

  /**
   * Where `absPath` of the container is: under one of its volumes or bound folders (the
   * deepest that holds it), that folder on the host, else the container's root. Paths then
   * resolve inside the one found: a symlink in a volume does not lead out of the volume.
   */
  #locate(record: ContainerRecord, root: string, absPath: string): { root: string; path: string } {
    const mounts: Array<{ destination: string; source: string }> = [];
    for (const v of record.mounts?.volumes ?? []) mounts.push({ destination: v.Destination, source: this.#deps.volumeMountpoint(v.Name) });
    for (const raw of record.mounts?.binds ?? []) {
      const [source = '', destination = ''] = raw.split(':');
      if (isDirectory(source)) mounts.push({ destination: posix.normalize(destination), source });
    }
    let best: { destination: string; source: string } | undefined;
    for (const m of mounts) {
      const under = absPath === m.destination || absPath.startsWith(m.destination.endsWith('/') ? m.destination : `${m.destination}/`);
      if (under && (!best || m.destination.length > best.destination.length)) best = m;
    }
    if (!best) return { root, path: absPath };
    return { root: best.source, path: `/${absPath.slice(best.destination.length).replace(/^\/+/, '')}` };
  }

  #publish(record: ContainerRecord, action: string): void {
    this.#deps.events.publish('container', action, record.id, { image: record.image, name: record.name.replace(/^\//, '') });
  }

  /** The container's root: its live mount when it runs, else its snapshot mounted for the copy. */
  async #acquire(record: ContainerRecord): Promise<HeldRoot> {
    const rootfs = this.#deps.containers.rootfs(record.id);
    if (record.state.Running && isMountPoint(rootfs)) return { root: rootfs, release: async () => undefined };
    const id = record.id;
    let shared = this.#mounts.get(id);
    if (!shared) {
      const previous = this.#unmounting.get(id) ?? Promise.resolve();
      shared = { refs: 0, ready: previous.then(() => this.#mount(id)) };
      this.#mounts.set(id, shared);
    }
    const held = shared;
    held.refs++;
    let dir: string;
    try {
      dir = await held.ready;
    } catch (err) {
      if (--held.refs === 0 && this.#mounts.get(id) === held) this.#mounts.delete(id);
      throw err;
    }
    let released = false;
    return {
      root: dir,
      release: async () => {
        if (released) return;
        released = true;
        if (--held.refs > 0) return;
        if (this.#mounts.get(id) === held) this.#mounts.delete(id);
        const unmount = this.#unmount(dir);
        this.#unmounting.set(id, unmount);
        await unmount;
        if (this.#unmounting.get(id) === unmount) this.#unmounting.delete(id);
      },
    };
  }

  async #mount(id: string): Promise<string> {
    await this.#cleaned;
    // Nothing in the root is run or opened as a device through this mount.
    const mounts = (await this.#deps.snapshots.mounts(id)).map((m) => ({ ...m, options: [...m.options, 'nosuid', 'nodev', 'noexec'] }));
    await mkdir(this.#mountsDir, { recursive: true, mode: 0o700 });
    const dir = await mkdtemp(join(this.#mountsDir, `${id}-`));
    try {
      await mountAll(mounts, dir);
    } catch (err) {
      await rmdir(dir).catch(() => undefined);
      throw err;
    }
    return dir;
  }

  async #unmount(dir: string): Promise<void> {
    try {
      await unmountAll(dir);
      await rmdir(dir);
    } catch (err) {
      this.#deps.warn?.('cannot unmount a container root mounted for a copy', { dir, error: err instanceof Error ? err.message : String(err) });
    }
  }

  /** Mounts a crashed daemon left: unmounted, and their folders removed only when empty. */
  async #cleanStale(): Promise<void> {
    let names: string[];
    try {
      names = await readdir(this.#mountsDir);
    } catch {
      return;
    }
    for (const name of names) await this.#unmount(join(this.#mountsDir, name));
  }
}

type ExtractRequestOwner = 'archive' | { uid: number; gid: number };

/** Whether `path` is a mount point (its device differs from its parent's). */
function isMountPoint(path: string): boolean {
  try {
    return statSync(path).dev !== statSync(dirname(path)).dev;
  } catch {
    return false;
  }
}

/** A missing path as Docker words it (404); other failures keep their message. */
function fileError(err: unknown, path: string, container: string): unknown {
  const code = errnoCode(err);
  if (code === 'ENOENT' || code === 'ENOTDIR') return new NotFound(`Could not find the file ${path} in container ${container}`, { cause: err });
  if (code === 'ELOOP') return new InvalidArgument(`${path} in container ${container}: too many levels of symbolic links`, { cause: err });
  // Other system errors: the reason, not the host paths in Node's or the addon's message.
  if (code !== undefined && !isBerthError(err)) return new Error(`${path} in container ${container}: ${errnoText(err)}`, { cause: err });
  return err;
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}
