/**
 * Turns an overlay upper dir into an OCI layer tar: overlay whiteouts (char devices 0:0)
 * become `.wh.<name>` files, opaque directories get a `.wh..wh..opq` entry, hardlinks are
 * kept as hardlink entries, and owners, modes, times and xattrs (not overlay's own) are kept.
 * Entries come in lexical order, each directory before its content; sockets are left out.
 */
import { createReadStream, type Stats } from 'node:fs';
import { lstat, readdir, readlink } from 'node:fs/promises';
import type { Readable } from 'node:stream';

import { TarWriter, type TarEntryType, type TarWriterHeader } from '../archive/tar-writer.js';
import { errnoCode } from '../errors/errors.js';
import { lgetxattr, llistxattr } from '../native/native.js';
import { OVERLAY_OPAQUE_XATTR, OVERLAY_XATTR_PREFIX, WHITEOUT_OPAQUE, WHITEOUT_PREFIX } from './apply-layer.js';

/** The layer tar of `upperDir`, produced as it is read. Errors destroy the stream. */
export function diffLayer(upperDir: string): Readable {
  const writer = new TarWriter();
  const stream = writer.stream;
  new LayerDiffer(upperDir, writer).run().catch((err: unknown) => {
    if (!stream.destroyed) stream.destroy(err instanceof Error ? err : new Error(String(err)));
  });
  return stream;
}

class LayerDiffer {
  readonly #root: string;
  readonly #writer: TarWriter;
  /** "dev:ino" of files with more than one link -> the name they were first written as. */
  readonly #links = new Map<string, string>();

  constructor(root: string, writer: TarWriter) {
    this.#root = root;
    this.#writer = writer;
  }

  async run(): Promise<void> {
    await this.#dir('');
    await this.#writer.finish();
  }

  async #dir(rel: string): Promise<void> {
    const dirPath = rel === '' ? this.#root : `${this.#root}/${rel}`;
    const names = (await readdir(dirPath)).sort(byBytes);
    for (const name of names) {
      const entryRel = rel === '' ? name : `${rel}/${name}`;
      await this.#entry(entryRel, `${dirPath}/${name}`, rel, name);
    }
  }

  async #entry(rel: string, path: string, parentRel: string, name: string): Promise<void> {
    let st: Stats;
    try {
      st = await lstat(path);
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return; // removed while we walked
      throw err;
    }
    const base = {
      mode: st.mode & 0o7777,
      uid: st.uid,
      gid: st.gid,
      mtime: st.mtime,
    };

    if (st.isCharacterDevice() && st.rdev === 0) {
      const whiteout = parentRel === '' ? `${WHITEOUT_PREFIX}${name}` : `${parentRel}/${WHITEOUT_PREFIX}${name}`;
      await this.#writer.add({ name: whiteout, type: 'file', size: 0, mode: 0, uid: st.uid, gid: st.gid, mtime: st.mtime });
      return;
    }
    if (st.isSocket()) return;

    const xattrs = readXattrs(path);
    if (st.isDirectory()) {
      await this.#writer.add({ ...base, name: `${rel}/`, type: 'directory', xattrs });
      if (lgetxattr(path, OVERLAY_OPAQUE_XATTR)?.toString() === 'y') {
        await this.#writer.add({ name: `${rel}/${WHITEOUT_OPAQUE}`, type: 'file', size: 0, mode: 0, mtime: st.mtime });
      }
      await this.#dir(rel);
      return;
    }
    if (st.isSymbolicLink()) {
      await this.#writer.add({ ...base, name: rel, type: 'symlink', linkname: await readlink(path), xattrs });
      return;
    }
    if (st.nlink > 1) {
      const id = `${st.dev}:${st.ino}`;
      const first = this.#links.get(id);
      if (first !== undefined) {
        await this.#writer.add({ ...base, name: rel, type: 'hardlink', linkname: first, xattrs });
        return;
      }
      this.#links.set(id, rel);
    }
    if (st.isFile()) {
      const body = createReadStream(path);
      try {
        await this.#writer.add({ ...base, name: rel, type: 'file', size: st.size, xattrs }, body);
      } finally {
        body.destroy();
      }
      return;
    }
    let type: TarEntryType;
    if (st.isFIFO()) type = 'fifo';
    else if (st.isCharacterDevice()) type = 'char';
    else type = 'block';
    const header: TarWriterHeader = { ...base, name: rel, type, xattrs };
    if (type !== 'fifo') {
      header.devmajor = major(st.rdev);
      header.devminor = minor(st.rdev);
    }
    await this.#writer.add(header);
  }
}

function readXattrs(path: string): Record<string, Buffer> {
  const out: Record<string, Buffer> = {};
  for (const name of llistxattr(path)) {
    if (name.startsWith(OVERLAY_XATTR_PREFIX)) continue;
    const value = lgetxattr(path, name);
    if (value !== null) out[name] = value;
  }
  return out;
}

/** Go's sort.Strings order (bytewise), which is what layer tars use. */
function byBytes(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

/** glibc's major(3)/minor(3) of a dev_t, without 32-bit bit operations. */
function major(dev: number): number {
  return (Math.floor(dev / 0x100) % 0x1000) + Math.floor(dev / 0x100000000000) * 0x1000;
}

function minor(dev: number): number {
  return (dev % 0x100) + (Math.floor(dev / 0x100000) % 0x1000000) * 0x100;
}
