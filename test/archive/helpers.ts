import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type { TestContext } from 'node:test';
import { promisify } from 'node:util';
import { readTar } from '../../src/archive/tar-reader.js';
import type { TarHeader } from '../../src/archive/tar-reader.js';

export const exec = promisify(execFile);

export interface ReadEntry {
  header: TarHeader;
  data: Buffer;
}

/** Every entry of an archive with its whole body (for small test archives). */
export async function readAll(input: Readable): Promise<ReadEntry[]> {
  const out: ReadEntry[] = [];
  for await (const { header, body } of readTar(input)) {
    const parts: Buffer[] = [];
    for await (const chunk of body) parts.push(chunk as Buffer);
    out.push({ header, data: Buffer.concat(parts) });
  }
  return out;
}

/** A temporary directory removed when the test ends, passed or failed. */
export async function tempDir(t: TestContext, label: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), `berth-${label}-`));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** A byte stream of `data` in chunks of `chunkSize` (to exercise reads that span chunks). */
export function chunked(data: Buffer, chunkSize: number): Readable {
  let offset = 0;
  return new Readable({
    read() {
      if (offset >= data.length) {
        this.push(null);
        return;
      }
      this.push(data.subarray(offset, offset + chunkSize));
      offset += chunkSize;
    },
  });
}

export interface RawFields {
  name?: string;
  mode?: string | Buffer;
  uid?: string | Buffer;
  gid?: string | Buffer;
  size?: string | Buffer;
  mtime?: string | Buffer;
  typeflag?: string;
  linkname?: string;
  magic?: 'ustar' | 'gnu' | 'v7';
  uname?: string;
  gname?: string;
  prefix?: string;
  /** Stored checksum text; computed when absent. */
  chksum?: string;
  /** Sum bytes as signed chars (historic tars). */
  signedChecksum?: boolean;
}

/**
 * One header block built field by field, independent of the writer under test, so that
 * tests can make exactly the broken or unusual headers they need.
 */
export function rawHeader(f: RawFields): Buffer {
  const block = Buffer.alloc(512);
  const put = (offset: number, length: number, value: string | Buffer | undefined): void => {
    if (value === undefined) return;
    const bytes = typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
    bytes.copy(block, offset, 0, Math.min(bytes.length, length));
  };
  put(0, 100, f.name ?? 'file');
  put(100, 8, f.mode ?? '0000644');
  put(108, 8, f.uid ?? '0000000');
  put(116, 8, f.gid ?? '0000000');
  put(124, 12, f.size ?? '00000000000');
  put(136, 12, f.mtime ?? '00000000000');
  put(156, 1, f.typeflag ?? '0');
  put(157, 100, f.linkname);
  const magic = f.magic ?? 'ustar';
  if (magic === 'ustar') put(257, 8, Buffer.from('ustar\u000000', 'latin1'));
  if (magic === 'gnu') put(257, 8, Buffer.from('ustar  \u0000', 'latin1'));
  put(265, 32, f.uname);
  put(297, 32, f.gname);
  put(345, 155, f.prefix);
  block.fill(0x20, 148, 156);
  let sum = 0;
  for (const b of block) sum += f.signedChecksum === true && b >= 0x80 ? b - 256 : b;
  const chksum = f.chksum ?? `${sum.toString(8).padStart(6, '0')}\u0000 `;
  block.fill(0, 148, 156);
  put(148, 8, chksum);
  return block;
}

/** A body padded to the block size. */
export function padded(data: Buffer | string): Buffer {
  const bytes = typeof data === 'string' ? Buffer.from(data) : data;
  const pad = (512 - (bytes.length % 512)) % 512;
  return Buffer.concat([bytes, Buffer.alloc(pad)]);
}

export function octal(value: number, width: number): string {
  return value.toString(8).padStart(width, '0');
}

/** A pax record with a correct length prefix. */
export function paxRecordText(key: string, value: string): string {
  const base = Buffer.byteLength(` ${key}=${value}\n`);
  let length = base + String(base).length;
  if (String(length).length !== String(base).length) length = base + String(length).length;
  return `${length} ${key}=${value}\n`;
}

export const END = Buffer.alloc(1024);
