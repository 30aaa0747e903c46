/**
 * A streaming tar writer. Entries are ustar; a pax extended header goes before an entry
 * only when ustar cannot hold it (long or non-ASCII names, link names, user and group
 * names; large sizes, ids or times; xattrs), as Go's archive/tar does by default.
 */
import { Readable } from 'node:stream';
import { Conflict, InvalidArgument, Unavailable } from '../errors/errors.js';
import { ByteSource } from './byte-source.js';
import { paxRecord } from './pax.js';
import { BLOCK_SIZE, LENGTH, OFFSET, ZERO_BLOCK, checksums, paddingFor, type TarEntryType, type TarHeader } from './tar-format.js';

export type { TarEntryType, TarHeader } from './tar-format.js';

/** What `add` needs: a name and a type; everything else has a default. */
export type TarWriterHeader = Partial<TarHeader> & { name: string; type: TarEntryType };

const HIGH_WATER_MARK = 64 * 1024;
const MAX_OCTAL_7 = 0o7777777; // 8-byte fields: 7 digits and a NUL
const MAX_OCTAL_11 = 0o77777777777; // 12-byte fields: 11 digits and a NUL

const FLAGS: Record<TarEntryType, string> = {
  file: '0',
  hardlink: '1',
  symlink: '2',
  char: '3',
  block: '4',
  directory: '5',
  fifo: '6',
};

const DEFAULT_MODE: Record<TarEntryType, number> = {
  file: 0o644,
  hardlink: 0o644,
  symlink: 0o777,
  char: 0o644,
  block: 0o644,
  directory: 0o755,
  fifo: 0o644,
};

export class TarWriter {
  /** The archive, as it is written; it applies backpressure to `add`. */
  readonly stream: Readable;
  #queue: Promise<void> = Promise.resolve();
  #wake: (() => void) | null = null;
  #finishing: Promise<void> | null = null;

  constructor() {
    this.stream = new Readable({
      highWaterMark: HIGH_WATER_MARK,
      read: () => this.#notify(),
    });
    this.stream.once('close', () => this.#notify());
  }

  /**
   * Appends one entry. `body` is required for a file with a non-zero size; a Readable body
   * needs `header.size`, a Buffer body gives it. Calls are queued, so they need not be
   * awaited one by one; the promise settles once the entry was taken by the reader side.
   */
  add(header: TarWriterHeader, body?: Buffer | Readable): Promise<void> {
    if (this.#finishing !== null) {
      return Promise.reject(new Conflict(`tar writer: cannot add ${JSON.stringify(header.name)} after finish()`));
    }
    const run = this.#queue.then(() => this.#add(header, body));
    this.#queue = run.catch(() => {});
    return run;
  }

  /** Writes the two zero blocks that end an archive and ends the stream (after pending adds). */
  finish(): Promise<void> {
    if (this.#finishing === null) {
      // Queued without waiting for the reader, so that a caller may finish() before it
      // starts to read a small archive.
      this.#finishing = this.#queue.then(() => {
        if (this.stream.destroyed) throw new Unavailable('tar writer: the output stream was closed');
        this.stream.push(Buffer.alloc(2 * BLOCK_SIZE));
        this.stream.push(null);
      });
    }
    return this.#finishing;
  }

  async #add(header: TarWriterHeader, body: Buffer | Readable | undefined): Promise<void> {
    const size = entrySize(header, body);
    const blocks = encodeHeader(header, size);
    await this.#push(blocks);
    if (size === 0) return;
    try {
      if (Buffer.isBuffer(body)) {
        await this.#push(body);
      } else if (body !== undefined) {
        await this.#pipeBody(header.name, body, size);
      }
      const pad = paddingFor(size);
      if (pad > 0) await this.#push(ZERO_BLOCK.subarray(0, pad));
    } catch (err) {
      // Part of the entry is out already: the archive cannot be continued.
      if (!this.stream.destroyed) this.stream.destroy(err instanceof Error ? err : new Error(String(err)));
      throw err;
    }
  }

  async #pipeBody(name: string, body: Readable, size: number): Promise<void> {
    // Chunk by chunk as the body emits them: iterating it with `for await` would
    // concatenate (copy) whatever it has buffered.
    const src = new ByteSource(body, `tar writer: entry ${JSON.stringify(name)}: the body`);
    try {
      let written = 0;
      for (;;) {
        const chunk = await src.chunk(Number.MAX_SAFE_INTEGER);
        if (chunk === null) break;
        if (written + chunk.length > size) {
          throw new InvalidArgument(`tar writer: entry ${JSON.stringify(name)}: the body is longer than its size of ${size} bytes`);
        }
        written += chunk.length;
        await this.#push(chunk);
      }
      if (written < size) {
        throw new InvalidArgument(
          `tar writer: entry ${JSON.stringify(name)}: the body ended after ${written} of its ${size} bytes`,
        );
      }
    } finally {
      src.close();
    }
  }

  async #push(chunk: Buffer): Promise<void> {
    if (this.stream.destroyed) throw new Unavailable('tar writer: the output stream was closed');
    if (this.stream.push(chunk)) return;
    await new Promise<void>((resolve) => {
      this.#wake = resolve;
    });
  }

  #notify(): void {
    const wake = this.#wake;
    this.#wake = null;
    wake?.();
  }
}

function entrySize(header: TarWriterHeader, body: Buffer | Readable | undefined): number {
  const name = JSON.stringify(header.name);
  if (header.type !== 'file') {
    if (body !== undefined) throw new InvalidArgument(`tar writer: entry ${name}: a ${header.type} has no body`);
    if (header.size !== undefined && header.size !== 0) {
      throw new InvalidArgument(`tar writer: entry ${name}: a ${header.type} has size 0, not ${header.size}`);
    }
    return 0;
  }
  if (header.size !== undefined && (!Number.isSafeInteger(header.size) || header.size < 0)) {
    throw new InvalidArgument(`tar writer: entry ${name}: size ${header.size} is not a byte count`);
  }
  if (Buffer.isBuffer(body)) {
    if (header.size !== undefined && header.size !== body.length) {
      throw new InvalidArgument(`tar writer: entry ${name}: size ${header.size} does not match the body of ${body.length} bytes`);
    }
    return body.length;
  }
  if (body === undefined) {
    if (header.size !== undefined && header.size !== 0) {
      throw new InvalidArgument(`tar writer: entry ${name}: size ${header.size} but no body`);
    }
    return 0;
  }
  if (header.size === undefined) {
    throw new InvalidArgument(`tar writer: entry ${name}: a stream body needs header.size`);
  }
  return header.size;
}

const ASCII = /^[\x01-\x7f]*$/;

/** The header block(s) for one entry: a pax header with its records when needed, then ustar. */
function encodeHeader(header: TarWriterHeader, size: number): Buffer {
  const where = `tar writer: entry ${JSON.stringify(header.name)}`;
  let name = header.name;
  if (name === '') throw new InvalidArgument('tar writer: an entry needs a name');
  if (header.type === 'directory' && !name.endsWith('/')) name += '/';
  const linkname = header.linkname ?? '';
  const uname = header.uname ?? '';
  const gname = header.gname ?? '';
  for (const [field, text] of [['name', name], ['linkname', linkname], ['uname', uname], ['gname', gname]] as const) {
    if (text.includes('\0')) throw new InvalidArgument(`${where}: ${field} contains a NUL byte`);
  }
  if ((header.type === 'symlink' || header.type === 'hardlink') && linkname === '') {
    throw new InvalidArgument(`${where}: a ${header.type} needs a linkname`);
  }
  const mode = header.mode ?? DEFAULT_MODE[header.type];
  const uid = header.uid ?? 0;
  const gid = header.gid ?? 0;
  const devmajor = header.devmajor ?? 0;
  const devminor = header.devminor ?? 0;
  const millis = header.mtime?.getTime() ?? 0;
  if (Number.isNaN(millis)) throw new InvalidArgument(`${where}: mtime is not a valid date`);
  const mtime = Math.floor(millis / 1000);
  checkRange(where, 'mode', mode, 0o7777);
  checkRange(where, 'uid', uid, Number.MAX_SAFE_INTEGER);
  checkRange(where, 'gid', gid, Number.MAX_SAFE_INTEGER);
  checkRange(where, 'devmajor', devmajor, MAX_OCTAL_7);
  checkRange(where, 'devminor', devminor, MAX_OCTAL_7);

  const records: Buffer[] = [];
  const fields = { name, prefix: '' };
  const split = ASCII.test(name) ? splitUstarPath(name) : null;
  if (split === null) records.push(paxRecord('path', name));
  else Object.assign(fields, split);
  if (!fits(linkname, LENGTH.linkname)) records.push(paxRecord('linkpath', linkname));
  if (!fits(uname, LENGTH.uname)) records.push(paxRecord('uname', uname));
  if (!fits(gname, LENGTH.gname)) records.push(paxRecord('gname', gname));
  if (uid > MAX_OCTAL_7) records.push(paxRecord('uid', String(uid)));
  if (gid > MAX_OCTAL_7) records.push(paxRecord('gid', String(gid)));
  if (size > MAX_OCTAL_11) records.push(paxRecord('size', String(size)));
  if (mtime < 0 || mtime > MAX_OCTAL_11) records.push(paxRecord('mtime', String(mtime)));
  for (const [key, value] of Object.entries(header.xattrs ?? {})) {
    if (key === '' || key.includes('=') || key.includes('\0')) {
      throw new InvalidArgument(`${where}: xattr name ${JSON.stringify(key)} cannot be written`);
    }
    records.push(paxRecord(`SCHILY.xattr.${key}`, value));
  }

  const entry = ustarBlock({
    name: fields.name,
    prefix: fields.prefix,
    mode,
    uid: uid > MAX_OCTAL_7 ? 0 : uid,
    gid: gid > MAX_OCTAL_7 ? 0 : gid,
    size: size > MAX_OCTAL_11 ? 0 : size,
    mtime: mtime < 0 || mtime > MAX_OCTAL_11 ? 0 : mtime,
    flag: FLAGS[header.type],
    linkname,
    uname,
    gname,
    devmajor,
    devminor,
  });
  if (records.length === 0) return entry;

  const data = Buffer.concat(records);
  const base = name.replace(/\/+$/, '').split('/').pop() ?? '';
  const paxHeader = ustarBlock({
    name: `PaxHeaders.0/${base}`,
    prefix: '',
    mode: 0o644,
    uid: 0,
    gid: 0,
    size: data.length,
    mtime: mtime < 0 || mtime > MAX_OCTAL_11 ? 0 : mtime,
    flag: 'x',
    linkname: '',
    uname: '',
    gname: '',
    devmajor: 0,
    devminor: 0,
  });
  return Buffer.concat([paxHeader, data, ZERO_BLOCK.subarray(0, paddingFor(data.length)), entry]);
}

function checkRange(where: string, field: string, value: number, max: number): void {
  if (!Number.isSafeInteger(value) || value < 0 || value > max) {
    throw new InvalidArgument(`${where}: ${field} ${value} is out of range (0 to ${max})`);
  }
}

function fits(text: string, length: number): boolean {
  return ASCII.test(text) && text.length <= length;
}

/** Splits an ASCII path into ustar's prefix and name fields, or null when it cannot. */
function splitUstarPath(path: string): { name: string; prefix: string } | null {
  if (path.length <= LENGTH.name) return { name: path, prefix: '' };
  if (path.length > LENGTH.prefix + 1 + LENGTH.name) return null;
  // The slash between them is implied; the name part may not be empty.
  let slash = path.indexOf('/', path.length - LENGTH.name - 1);
  while (slash !== -1) {
    if (slash > LENGTH.prefix) return null;
    if (slash > 0 && slash < path.length - 1) return { prefix: path.slice(0, slash), name: path.slice(slash + 1) };
    slash = path.indexOf('/', slash + 1);
  }
  return null;
}

interface UstarFields {
  name: string;
  prefix: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  flag: string;
  linkname: string;
  uname: string;
  gname: string;
  devmajor: number;
  devminor: number;
}

function ustarBlock(f: UstarFields): Buffer {
  const block = Buffer.alloc(BLOCK_SIZE);
  writeText(block, OFFSET.name, LENGTH.name, f.name);
  writeOctal(block, OFFSET.mode, LENGTH.mode, f.mode);
  writeOctal(block, OFFSET.uid, LENGTH.uid, f.uid);
  writeOctal(block, OFFSET.gid, LENGTH.gid, f.gid);
  writeOctal(block, OFFSET.size, LENGTH.size, f.size);
  writeOctal(block, OFFSET.mtime, LENGTH.mtime, f.mtime);
  block.write(f.flag, OFFSET.typeflag, 1, 'latin1');
  writeText(block, OFFSET.linkname, LENGTH.linkname, f.linkname);
  block.write('ustar\u000000', OFFSET.magic, 8, 'latin1');
  writeText(block, OFFSET.uname, LENGTH.uname, f.uname);
  writeText(block, OFFSET.gname, LENGTH.gname, f.gname);
  writeOctal(block, OFFSET.devmajor, LENGTH.devmajor, f.devmajor);
  writeOctal(block, OFFSET.devminor, LENGTH.devminor, f.devminor);
  writeText(block, OFFSET.prefix, LENGTH.prefix, f.prefix);
  // Six digits, a NUL and a space, as GNU tar and Go write it.
  const sum = checksums(block).unsigned;
  block.write(`${sum.toString(8).padStart(6, '0')}\u0000 `, OFFSET.chksum, LENGTH.chksum, 'latin1');
  return block;
}

/** A text field; what does not fit (a pax record carries the full value) is cut, as ASCII. */
function writeText(block: Buffer, offset: number, length: number, text: string): void {
  const ascii = ASCII.test(text) ? text : text.replace(/[^\x01-\x7f]/g, '_');
  block.write(ascii.slice(0, length), offset, length, 'latin1');
}

function writeOctal(block: Buffer, offset: number, length: number, value: number): void {
  block.write(value.toString(8).padStart(length - 1, '0'), offset, length - 1, 'latin1');
}
