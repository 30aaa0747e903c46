/**
 * Volumes of docker's `local` driver: a folder each, mounted into containers by bind.
 *
 *   <data root>/volumes/<name>/_data        what containers see
 *   <data root>/volumes/<name>/volume.json  {name, created, labels, options, anonymous}:
 *                                           written last, atomically; a volume exists iff it
 *                                           has one (a crash mid-create leaves a folder that
 *                                           the next start removes)
 *
 * Named volumes are made by `volume create` or on first use by a container (`-v name:/path`);
 * anonymous ones (a random 64-hex name) for an image's VOLUME or `-v /path`, and removed with
 * their container by `rm -v` (and `run --rm`). A volume a container uses cannot be removed.
 */
import { randomBytes } from 'node:crypto';
import { spawn } from 'node:child_process';
import { closeSync, readlinkSync, constants as fsc } from 'node:fs';
import { lstat, mkdir, readFile, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Conflict, InvalidArgument, NotFound, Unavailable, errnoCode } from '../errors/errors.js';
import { O_PATH, openInRoot } from '../native/native.js';
import { writeFileAtomic } from '../util/atomic-file.js';

export interface VolumeRecord {
  name: string;
  created: string;
  labels: Record<string, string>;
  options: Record<string, string>;
  /** Made for a container, not named by a user: `rm -v` removes it with the container. */
  anonymous?: boolean;
}

export interface CreateVolumeRequest {
  Name?: string;
  Driver?: string;
  DriverOpts?: Record<string, string> | null;
  Labels?: Record<string, string> | null;
}

const NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;
const META = 'volume.json';

export class VolumeStore {
  readonly #root: string;
  readonly #volumes = new Map<string, VolumeRecord>();

  private constructor(root: string) {
    this.#root = root;
  }

  static async open(dataRoot: string): Promise<VolumeStore> {
    const store = new VolumeStore(join(dataRoot, 'volumes'));
    await mkdir(store.#root, { recursive: true, mode: 0o701 });
    for (const name of await readdir(store.#root)) {
      try {
        const record = JSON.parse(await readFile(join(store.#root, name, META), 'utf8')) as VolumeRecord;
        if (record.name === name) store.#volumes.set(name, record);
      } catch (err) {
        // No record: a create cut short (nothing can have used it). Its folder goes.
        if (errnoCode(err) === 'ENOENT') await rm(join(store.#root, name), { recursive: true, force: true });
        // A record that is not JSON was not written by berth (they are replaced atomically):
        // the volume's files are kept, and berthd will not start until someone looks.
        else if (err instanceof SyntaxError) throw new Unavailable(`volume ${name}: ${join(store.#root, name, META)} is not valid JSON; its files are kept, move the folder aside or repair it`);
        else throw err;
      }
    }
    return store;
  }

  list(): VolumeRecord[] {
    return [...this.#volumes.values()].sort((a, b) => a.name.localeCompare(b.name));
  }

  find(name: string): VolumeRecord | undefined {
    return this.#volumes.get(name);
  }

  get(name: string): VolumeRecord {
    const v = this.#volumes.get(name);
    if (!v) throw new NotFound(`get ${name}: no such volume`);
    return v;
  }

  /** Where the volume's files are (what containers mount). */
  mountpoint(name: string): string {
    return join(this.#root, name, '_data');
  }

  /** Creates a volume, or answers the one of that name (as docker: create is idempotent). */
  async create(req: CreateVolumeRequest, opts: { anonymous?: boolean } = {}): Promise<VolumeRecord> {
    const name = req.Name || randomBytes(32).toString('hex');
    if (!NAME.test(name)) {
      throw new InvalidArgument(`create ${name}: "${name}" includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, use absolute path`);
    }
    const driver = req.Driver || 'local';
    if (driver !== 'local') throw new NotFound(`error looking up volume plugin ${driver}: plugin "${driver}" not found`);
    const options = req.DriverOpts ?? {};
    if (Object.keys(options).length > 0) {
      throw new InvalidArgument(`create ${name}: driver options (${Object.keys(options).join(', ')}) are not supported: berth's local volumes are plain folders`);
    }
    const existing = this.#volumes.get(name);
    if (existing) return existing;
    const record: VolumeRecord = { name, created: new Date().toISOString(), labels: { ...(req.Labels ?? {}) }, options: {} };
    if (opts.anonymous) record.anonymous = true;
    await mkdir(this.mountpoint(name), { recursive: true, mode: 0o755 });
    await writeFileAtomic(join(this.#root, name, META), JSON.stringify(record), 0o600);
    this.#volumes.set(name, record);
    return record;
  }

  /** Removes a volume that `users` (container ids) do not use. */
  async remove(name: string, users: string[]): Promise<void> {
    this.get(name);
    if (users.length > 0) throw new Conflict(`remove ${name}: volume is in use - [${users.join(', ')}]`);
    this.#volumes.delete(name);
    // The record goes first: a crash after it leaves a folder that the next start removes.
    await rm(join(this.#root, name, META), { force: true });
    await rm(join(this.#root, name), { recursive: true, force: true });
  }

  /** Bytes of the files in a volume (what a prune reclaims). */
  async size(name: string): Promise<number> {
    let total = 0;
    const walk = async (dir: string): Promise<void> => {
      for (const entry of await readdir(dir, { withFileTypes: true })) {
        const path = join(dir, entry.name);
        if (entry.isDirectory()) await walk(path);
        else if (entry.isFile()) total += (await lstat(path)).size;
      }
    };
    await walk(this.mountpoint(name));
    return total;
  }

  async isEmpty(name: string): Promise<boolean> {
    return (await readdir(this.mountpoint(name))).length === 0;
  }

  /**
   * Docker's copy-up: a new, empty volume mounted over a folder of the image gets a copy of
   * that folder's files. `path` is resolved inside `rootfs` by the kernel (RESOLVE_IN_ROOT),
   * so an image's symlinks cannot point the copy anywhere outside it.
   */
  async copyUp(name: string, rootfs: string, path: string): Promise<void> {
    if (!(await this.isEmpty(name))) return;
    let fd: number;
    try {
      fd = openInRoot(rootfs, path.replace(/^\/+/, '') || '.', O_PATH | fsc.O_DIRECTORY);
    } catch (err) {
      // Nothing there in the image (or not a folder): nothing to copy.
      if (['ENOENT', 'ENOTDIR', 'ELOOP', 'EXDEV'].includes(errnoCode(err) ?? '')) return;
      throw err;
    }
    let source: string;
    try {
      source = readlinkSync(`/proc/self/fd/${fd}`);
    } finally {
      closeSync(fd);
    }
    await copyTree(source, this.mountpoint(name));
  }
}

/** `cp -a` of a folder's content: owners, modes, times and xattrs kept, symlinks not followed. */
function copyTree(from: string, to: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('cp', ['-a', '--no-dereference', '--', `${from}/.`, `${to}/`], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Unavailable(`copying ${from} into a new volume: ${err.trim() || `cp exited with ${code}`}`))));
  });
}
