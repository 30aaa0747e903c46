/** Shared by the snapshot tests: real layers, tar building, tree listings, mount tracking. */
import { execFileSync } from 'node:child_process';
import { createReadStream, lstatSync, mkdirSync, mkdtempSync, readdirSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';

import { decompressStream } from '../../src/archive/decompress.js';
import { TarWriter, type TarWriterHeader } from '../../src/archive/tar-writer.js';
import { lgetxattr, llistxattr } from '../../src/native/native.js';
import { unmountAll } from '../../src/snapshots/mount.js';

export const IMAGES = '/work/shared/images';
export const BUSYBOX_LAYER = `${IMAGES}/busybox-1.38.0-musl/blobs/sha256/5c3b447848a98e48dce106cb3e6acbd4fb6f9b26ee778798137349ce01f4d3c1`;
export const ALPINE_ROOTFS = `${IMAGES}/alpine-minirootfs-3.20.3-x86_64.tar.gz`;

/** The uncompressed tar stream of a (gzip) layer file. */
export async function layerStream(path: string): Promise<Readable> {
  return decompressStream(createReadStream(path));
}

/** An in-memory tar of the given entries, written with berth's TarWriter. */
export async function tarOf(entries: [TarWriterHeader, (Buffer | string)?][]): Promise<Readable> {
  const writer = new TarWriter();
  const chunks: Buffer[] = [];
  writer.stream.on('data', (c: Buffer) => chunks.push(c));
  const ended = new Promise<void>((resolve, reject) => {
    writer.stream.on('end', resolve);
    writer.stream.on('error', reject);
  });
  for (const [header, body] of entries) {
    await writer.add(header, typeof body === 'string' ? Buffer.from(body) : body);
  }
  await writer.finish();
  await ended;
  return Readable.from([Buffer.concat(chunks)]);
}

/** One line per entry under `root` (root itself excluded unless asked): what a layer determines. */
export function listTree(root: string, opts: { times?: boolean; withRoot?: boolean } = {}): string[] {
  const times = opts.times ?? true;
  const out: string[] = [];
  const inodes = new Map<number, string>();
  const visit = (rel: string): void => {
    const path = rel === '' ? root : join(root, rel);
    const st = lstatSync(path);
    const type = st.isDirectory() ? 'd' : st.isSymbolicLink() ? 'l' : st.isFile() ? 'f' : st.isFIFO() ? 'p' : st.isCharacterDevice() ? `c${st.rdev}` : '?';
    let link = '';
    if (st.isSymbolicLink()) link = `-> ${readlinkSync(path)}`;
    else if (st.isFile() && st.nlink > 1) {
      // hardlinked: name the group by its first member
      const first = inodes.get(st.ino);
      if (first === undefined) inodes.set(st.ino, rel);
      link = `= ${first ?? rel}`;
    }
    const xattrs = llistxattr(path)
      .sort()
      .map((n) => `${n}=${lgetxattr(path, n)?.toString('hex')}`)
      .join(',');
    if (rel !== '' || opts.withRoot) {
      const mode = st.isSymbolicLink() ? '' : (st.mode & 0o7777).toString(8);
      const size = st.isFile() ? st.size : '';
      const mtime = times && !st.isSymbolicLink() ? Math.floor(st.mtimeMs / 1000) : '';
      out.push(`${rel || '.'} ${type} ${mode} ${st.uid}:${st.gid} ${size} ${mtime} ${link} ${xattrs}`.trimEnd());
    }
    if (st.isDirectory()) for (const name of readdirSync(path).sort()) visit(rel === '' ? name : `${rel}/${name}`);
  };
  visit('');
  return out;
}

/** Extracts a gzip tarball with GNU tar, as the reference to compare against. */
export function gnuTarExtract(tarball: string, into: string): void {
  mkdirSync(into, { recursive: true });
  execFileSync('tar', ['-xzpf', tarball, '-C', into, '--numeric-owner', '--xattrs', '--xattrs-include=*']);
}

/** Temp dirs and mount points of one test file, removed (mounts first) by `dispose()`. */
export class Scratch {
  readonly #dirs: string[] = [];
  readonly #mounts: string[] = [];

  dir(prefix = 'berth-snap-'): string {
    const d = mkdtempSync(join(tmpdir(), prefix));
    this.#dirs.push(d);
    return d;
  }

  /** Remembers `target` so that dispose() unmounts it if the test did not. */
  mounted(target: string): string {
    this.#mounts.push(target);
    return target;
  }

  async dispose(): Promise<void> {
    for (const m of this.#mounts.reverse()) await unmountAll(m).catch(() => undefined);
    for (const d of this.#dirs) rmSync(d, { recursive: true, force: true });
  }
}
