/**
 * Snapshots stacked with overlayfs, in containerd's vocabulary: a *key* names an active
 * (writable) snapshot or a view, a *name* a committed one, a *parent* the committed snapshot
 * below. prepare() and view() return mounts and do not mount; mountAll() does.
 *
 * On disk, under the root it is given:
 *
 *   snapshots/
 *     <id>/              id: a small decimal number, taken by an exclusive mkdir
 *       fs/              the snapshot's own files (overlay upperdir; a lowerdir once committed)
 *       work/            overlay's workdir (writable snapshots)
 *       meta.json        {"key","parent","kind","created"}: written last, atomically (temp
 *                        file, fsync, rename, fsync dir); a snapshot exists iff it has one
 *
 * So a kill at any moment leaves each snapshot whole or absent: prepare() writes meta.json
 * last, commit() syncs the filesystem (the unpacked files) and then replaces meta.json in one
 * rename (same id, new key and kind), remove() unlinks it first. cleanup() deletes what has no meta.json. Lower dirs are passed by short numeric
 * paths, made relative at mount time when 100+ of them would overflow a page.
 *
 * Keys are unique within the snapshotter; one snapshotter instance owns its root.
 */
import { existsSync } from 'node:fs';
import { lstat, mkdir, open, readFile, readdir, rename, rm, unlink } from 'node:fs/promises';
import { join } from 'node:path';

import { AlreadyExists, Conflict, InvalidArgument, NotFound, errnoCode } from '../errors/errors.js';
import { syncfs } from '../native/native.js';
import type { Mount } from './mount.js';

export { mountAll, unmountAll, type Mount } from './mount.js';

export interface SnapshotInfo {
  key: string;
  parent?: string;
  kind: 'active' | 'committed';
  /** ISO 8601. */
  created: string;
  /** Set for a view: an active snapshot that mounts read-only and cannot be committed. */
  readonly?: boolean;
}

export interface Snapshotter {
  stat(key: string): Promise<SnapshotInfo | undefined>;
  /** An active, writable snapshot on top of committed `parent`. */
  prepare(key: string, parent?: string): Promise<Mount[]>;
  /** A read-only view of committed `parent`. */
  view(key: string, parent: string): Promise<Mount[]>;
  mounts(key: string): Promise<Mount[]>;
  /**
   * Active `key` becomes committed `name`; AlreadyExists when `name` is taken. `parent` puts
   * a snapshot prepared without one on top of committed `parent` (a layer unpacked before
   * the layer below it was: a layer's files never depend on those below).
   */
  commit(name: string, key: string, opts?: { parent?: string }): Promise<void>;
  /** Conflict when other snapshots have it as their parent. */
  remove(key: string): Promise<void>;
  walk(): AsyncIterable<SnapshotInfo>;
  usage(key: string): Promise<{ size: number; inodes: number }>;
  /** The directory that holds the snapshot's own files: where a layer is applied or diffed. */
  upperDir(key: string): string;
}

interface SnapshotRecord {
  id: number;
  key: string;
  parent?: string;
  kind: 'active' | 'committed';
  readonly?: boolean;
  created: string;
}

/** What meta.json holds. */
interface MetaFile {
  key: string;
  parent?: string;
  kind: 'active' | 'committed';
  readonly?: boolean;
  created: string;
}

const META = 'meta.json';
const META_TMP = 'meta.json.tmp';

export class OverlaySnapshotter implements Snapshotter {
  readonly #root: string;
  readonly #dir: string;
  #loading: Promise<void> | undefined;
  readonly #byKey = new Map<string, SnapshotRecord>();
  /** Keys being created or committed to, with the parent they will have. */
  readonly #reserved = new Map<string, string | undefined>();
  /** Ids whose directories are being written or removed: cleanup() leaves them alone. */
  readonly #busyIds = new Set<number>();
  /** Keys being committed or removed. */
  readonly #busyKeys = new Set<string>();
  #nextId = 1;
  readonly #indexOff: boolean;

  constructor(root: string) {
    this.#root = root;
    this.#dir = join(root, 'snapshots');
    // As containerd: with an index, overlay refuses a lower dir that another mount uses.
    this.#indexOff = existsSync('/sys/module/overlay/parameters/index');
  }

  get root(): string {
    return this.#root;
  }

  async stat(key: string): Promise<SnapshotInfo | undefined> {
    await this.#ready();
    const rec = this.#byKey.get(key);
    return rec && info(rec);
  }

  async prepare(key: string, parent?: string): Promise<Mount[]> {
    return this.#mounts(await this.#create(key, parent, false));
  }

  async view(key: string, parent: string): Promise<Mount[]> {
    return this.#mounts(await this.#create(key, parent, true));
  }

  async mounts(key: string): Promise<Mount[]> {
    await this.#ready();
    const rec = this.#get(key);
    if (rec.kind === 'committed') throw new Conflict(`snapshot ${key}: committed snapshots have no mounts; prepare or view one on top`);
    return this.#mounts(rec);
  }

  async commit(name: string, key: string, opts: { parent?: string } = {}): Promise<void> {
    validKey(name);
    await this.#ready();
    const rec = this.#get(key);
    if (rec.kind !== 'active' || rec.readonly) {
      throw new Conflict(`snapshot ${key}: only an active, writable snapshot can be committed (it is ${rec.readonly ? 'a view' : rec.kind})`);
    }
    if (this.#busyKeys.has(key)) throw new Conflict(`snapshot ${key}: is being committed or removed`);
    if (this.#byKey.has(name) || this.#reserved.has(name)) throw new AlreadyExists(`snapshot ${name}: already exists`);
    const parent = opts.parent ?? rec.parent;
    if (opts.parent !== undefined) {
      if (rec.parent !== undefined) throw new InvalidArgument(`snapshot ${key}: it has parent ${rec.parent} already`);
      const p = this.#byKey.get(opts.parent);
      if (!p || p.kind !== 'committed') throw new NotFound(`snapshot ${key}: parent snapshot ${opts.parent} not found or not committed`);
      if (this.#busyKeys.has(opts.parent)) throw new Conflict(`snapshot ${key}: parent snapshot ${opts.parent} is being removed`);
    }
    const committed: SnapshotRecord = { ...rec, key: name, kind: 'committed', ...(parent !== undefined ? { parent } : {}) };
    this.#reserved.set(name, parent);
    this.#busyKeys.add(key);
    try {
      // The content must be on disk before the record that calls it committed.
      await syncfs(this.#fsDir(rec.id));
      await this.#writeMeta(committed);
      this.#byKey.delete(key);
      this.#byKey.set(name, committed);
    } finally {
      this.#reserved.delete(name);
      this.#busyKeys.delete(key);
    }
  }

  async remove(key: string): Promise<void> {
    await this.#ready();
    const rec = this.#get(key);
    if (this.#busyKeys.has(key)) throw new Conflict(`snapshot ${key}: is being committed or removed`);
    const children = [...this.#byKey.values()].filter((r) => r.parent === key).map((r) => r.key);
    for (const [child, parent] of this.#reserved) if (parent === key) children.push(child);
    if (children.length > 0) {
      throw new Conflict(`snapshot ${key}: cannot remove, it is the parent of ${children.slice(0, 3).join(', ')}${children.length > 3 ? '…' : ''}`);
    }
    this.#byKey.delete(key);
    this.#busyIds.add(rec.id);
    try {
      // meta.json first: from then on a crash leaves a directory that cleanup() removes.
      try {
        await unlink(join(this.#snapshotDir(rec.id), META));
      } catch (err) {
        if (errnoCode(err) !== 'ENOENT') {
          this.#byKey.set(key, rec);
          throw err;
        }
      }
      await rm(this.#snapshotDir(rec.id), { recursive: true, force: true });
    } finally {
      this.#busyIds.delete(rec.id);
    }
  }

  async *walk(): AsyncIterable<SnapshotInfo> {
    await this.#ready();
    const all = [...this.#byKey.values()].sort((a, b) => a.id - b.id);
    for (const rec of all) yield info(rec);
  }

  async usage(key: string): Promise<{ size: number; inodes: number }> {
    await this.#ready();
    const rec = this.#get(key);
    const seen = new Set<number>();
    let size = 0;
    let inodes = 0;
    const walk = async (dir: string): Promise<void> => {
      for (const name of await readdir(dir)) {
        const path = `${dir}/${name}`;
        const st = await lstat(path);
        if (st.nlink > 1 && !st.isDirectory()) {
          if (seen.has(st.ino)) continue;
          seen.add(st.ino);
        }
        inodes++;
        size += st.blocks * 512;
        if (st.isDirectory()) await walk(path);
      }
    };
    await walk(this.#fsDir(rec.id));
    return { size, inodes };
  }

  upperDir(key: string): string {
    const rec = this.#byKey.get(key);
    if (!rec) throw new NotFound(`snapshot ${key}: not found`);
    return this.#fsDir(rec.id);
  }

  /**
   * Removes what a crash left half-made: snapshot directories without meta.json (a prepare
   * or remove cut short) and stray temporary meta files. Run it at startup.
   */
  async cleanup(): Promise<string[]> {
    await this.#ready();
    const live = new Set([...this.#byKey.values()].map((r) => r.id));
    const removed: string[] = [];
    for (const name of await readdirOrEmpty(this.#dir)) {
      const id = parseId(name);
      const path = join(this.#dir, name);
      if (id !== undefined && this.#busyIds.has(id)) continue;
      if (id === undefined || !live.has(id)) {
        await rm(path, { recursive: true, force: true });
        removed.push(path);
      } else {
        await rm(join(path, META_TMP), { force: true });
      }
    }
    return removed;
  }

  // ---- internals ----

  #ready(): Promise<void> {
    this.#loading ??= this.#load().catch((err: unknown) => {
      this.#loading = undefined;
      throw err;
    });
    return this.#loading;
  }

  async #load(): Promise<void> {
    await mkdir(this.#dir, { recursive: true, mode: 0o700 });
    let maxId = 0;
    for (const name of await readdirOrEmpty(this.#dir)) {
      const id = parseId(name);
      if (id === undefined) continue;
      maxId = Math.max(maxId, id);
      let meta: MetaFile;
      try {
        meta = parseMeta(await readFile(join(this.#dir, name, META), 'utf8'));
      } catch (err) {
        if (errnoCode(err) === 'ENOENT' || err instanceof SyntaxError || err instanceof InvalidArgument) continue;
        throw err;
      }
      const rec: SnapshotRecord = { id, ...meta };
      const other = this.#byKey.get(rec.key);
      // Two claims on one key cannot come from this code; keep the older one.
      if (other && other.id < id) continue;
      this.#byKey.set(rec.key, rec);
    }
    this.#nextId = maxId + 1;
  }

  #get(key: string): SnapshotRecord {
    const rec = this.#byKey.get(key);
    if (!rec) throw new NotFound(`snapshot ${key}: not found`);
    return rec;
  }

  async #create(key: string, parent: string | undefined, readonly: boolean): Promise<SnapshotRecord> {
    validKey(key);
    await this.#ready();
    // Checked and reserved with no await in between: two callers cannot both pass.
    if (this.#byKey.has(key) || this.#reserved.has(key)) throw new AlreadyExists(`snapshot ${key}: already exists`);
    if (parent !== undefined) {
      const p = this.#byKey.get(parent);
      if (!p) throw new NotFound(`snapshot ${key}: parent snapshot ${parent} not found`);
      if (p.kind !== 'committed') throw new InvalidArgument(`snapshot ${key}: parent snapshot ${parent} is not committed`);
      if (this.#busyKeys.has(parent)) throw new Conflict(`snapshot ${key}: parent snapshot ${parent} is being removed`);
    } else if (readonly) {
      throw new InvalidArgument(`snapshot ${key}: a view needs a parent`);
    }
    this.#reserved.set(key, parent);
    let id: number | undefined;
    try {
      id = await this.#allocateId();
      const dir = this.#snapshotDir(id);
      await mkdir(join(dir, 'fs'), { mode: 0o755 });
      if (!readonly) await mkdir(join(dir, 'work'), { mode: 0o700 });
      const rec: SnapshotRecord = { id, key, kind: 'active', created: new Date().toISOString() };
      if (parent !== undefined) rec.parent = parent;
      if (readonly) rec.readonly = true;
      await this.#writeMeta(rec);
      await fsyncDir(this.#dir);
      this.#byKey.set(key, rec);
      return rec;
    } catch (err) {
      if (id !== undefined) await rm(this.#snapshotDir(id), { recursive: true, force: true }).catch(() => undefined);
      throw err;
    } finally {
      this.#reserved.delete(key);
      if (id !== undefined) this.#busyIds.delete(id);
    }
  }

  /** A fresh snapshot directory: the next id whose mkdir succeeds. Marked busy. */
  async #allocateId(): Promise<number> {
    for (;;) {
      const id = this.#nextId++;
      try {
        await mkdir(this.#snapshotDir(id), { mode: 0o700 });
        this.#busyIds.add(id);
        return id;
      } catch (err) {
        if (errnoCode(err) !== 'EEXIST') throw err;
      }
    }
  }

  async #writeMeta(rec: SnapshotRecord): Promise<void> {
    const meta: MetaFile = { key: rec.key, kind: rec.kind, created: rec.created };
    if (rec.parent !== undefined) meta.parent = rec.parent;
    if (rec.readonly) meta.readonly = true;
    const dir = this.#snapshotDir(rec.id);
    const tmp = join(dir, META_TMP);
    const fh = await open(tmp, 'w', 0o600);
    try {
      await fh.writeFile(`${JSON.stringify(meta)}\n`);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, join(dir, META));
    await fsyncDir(dir);
  }

  #mounts(rec: SnapshotRecord): Mount[] {
    const lowers: string[] = [];
    for (let p = rec.parent; p !== undefined; ) {
      const parent = this.#byKey.get(p);
      if (!parent) throw new NotFound(`snapshot ${rec.key}: ancestor snapshot ${p} not found`);
      lowers.push(this.#fsDir(parent.id));
      p = parent.parent;
    }
    const extra = this.#indexOff ? ['index=off'] : [];
    if (rec.readonly) {
      if (lowers.length === 1) return [{ type: 'bind', source: lowers[0]!, options: ['rbind', 'ro'] }];
      return [{ type: 'overlay', source: 'overlay', options: [...extra, `lowerdir=${lowers.join(':')}`] }];
    }
    if (lowers.length === 0) return [{ type: 'bind', source: this.#fsDir(rec.id), options: ['rbind', 'rw'] }];
    return [
      {
        type: 'overlay',
        source: 'overlay',
        options: [
          ...extra,
          `workdir=${join(this.#snapshotDir(rec.id), 'work')}`,
          `upperdir=${this.#fsDir(rec.id)}`,
          `lowerdir=${lowers.join(':')}`,
        ],
      },
    ];
  }

  #snapshotDir(id: number): string {
    return `${this.#dir}/${id}`;
  }

  #fsDir(id: number): string {
    return `${this.#dir}/${id}/fs`;
  }
}

function info(rec: SnapshotRecord): SnapshotInfo {
  const out: SnapshotInfo = { key: rec.key, kind: rec.kind, created: rec.created };
  if (rec.parent !== undefined) out.parent = rec.parent;
  if (rec.readonly) out.readonly = true;
  return out;
}

function validKey(key: string): void {
  if (typeof key !== 'string' || key === '') throw new InvalidArgument('snapshot key: must be a non-empty string');
  if (key.includes('\0')) throw new InvalidArgument(`snapshot key ${JSON.stringify(key)}: contains a NUL byte`);
}

function parseId(name: string): number | undefined {
  return /^[1-9][0-9]{0,15}$/.test(name) ? Number(name) : undefined;
}

function parseMeta(text: string): MetaFile {
  const v: unknown = JSON.parse(text);
  if (typeof v !== 'object' || v === null) throw new InvalidArgument('snapshot metadata: not an object');
  const o = v as { [k: string]: unknown };
  if (typeof o['key'] !== 'string' || typeof o['created'] !== 'string' || (o['kind'] !== 'active' && o['kind'] !== 'committed')) {
    throw new InvalidArgument('snapshot metadata: key, kind or created missing');
  }
  const meta: MetaFile = { key: o['key'], kind: o['kind'], created: o['created'] };
  if (typeof o['parent'] === 'string') meta.parent = o['parent'];
  if (o['readonly'] === true) meta.readonly = true;
  return meta;
}

async function readdirOrEmpty(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return [];
    throw err;
  }
}

async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
