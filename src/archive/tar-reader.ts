/**
 * A streaming tar reader: ustar, pax (extended and global headers), GNU (long names 'L'
 * and 'K', base-256 numbers) and old-GNU/v7 archives. Bodies are slices of the input's own
 * chunks, pushed into one Readable per entry, so memory stays bounded whatever the sizes.
 */
import { Readable } from 'node:stream';
import { InvalidArgument, NotImplemented } from '../errors/errors.js';
import { ByteSource } from './byte-source.js';
import { applyPaxRecord, parsePaxRecords, type PaxOverrides } from './pax.js';
import {
  BLOCK_SIZE,
  LENGTH,
  MAX_META_SIZE,
  OFFSET,
  checksums,
  flavorOf,
  isZeroBlock,
  paddingFor,
  parseNumeric,
  parseString,
  type TarEntryType,
  type TarHeader,
} from './tar-format.js';

export type { TarEntryType, TarHeader } from './tar-format.js';

export interface TarEntry {
  header: TarHeader;
  body: Readable;
}

const BODY_HIGH_WATER_MARK = 64 * 1024;

/** Type flags of entries that carry no body, whatever their size field says. */
const TYPES: Record<string, TarEntryType> = {
  '0': 'file',
  '\0': 'file',
  '7': 'file', // contiguous file
  '1': 'hardlink',
  '2': 'symlink',
  '3': 'char',
  '4': 'block',
  '5': 'directory',
  '6': 'fifo',
  D: 'directory', // GNU dump dir: a directory whose body lists its contents
};

/**
 * Yields each entry; the consumer must consume or `body.resume()` each body before the
 * next. A body left untouched when the next entry is asked for is discarded; one that is
 * still being read (piped, iterated) is waited for.
 *
 * Broken or hostile input ends the iteration with InvalidArgument; a body cut short by the
 * end of the input also fails its own stream with the same error.
 */
export async function* readTar(input: Readable): AsyncGenerator<TarEntry> {
  const src = new ByteSource(input);
  let body: EntryBody | null = null;
  try {
    let meta: PaxOverrides = { xattrs: {} };
    let hasMeta = false;
    let metaBytes = 0;
    for (;;) {
      if (body !== null) {
        const left = await body.settle();
        const { entryName, bodySize } = body;
        body = null;
        if (left > 0 && (await src.skip(left)) < left) throw truncated(src, `in the body of ${JSON.stringify(entryName)}`);
        // A missing final padding loses nothing: accept it as the end of the archive.
        await src.skip(paddingFor(bodySize));
      }
      const start = src.position;
      const block = await src.read(BLOCK_SIZE);
      if (block.length === 0) {
        if (hasMeta) throw truncated(src, 'after an extended header, before its entry');
        return;
      }
      if (block.length < BLOCK_SIZE) throw truncated(src, `in a header (${block.length} of ${BLOCK_SIZE} bytes)`);
      if (isZeroBlock(block)) {
        // End of archive: two zero blocks, or one and then the end of the input.
        const second = await src.read(BLOCK_SIZE);
        if (second.length > 0 && !isZeroBlock(second)) {
          throw new InvalidArgument(
            `archive/tar: invalid tar header: a zero block followed by a non-zero block at offset ${start + BLOCK_SIZE}`,
          );
        }
        if (hasMeta) throw truncated(src, 'after an extended header, before its entry');
        // Read the rest (more zero padding, as tar writes up to a record boundary) so that
        // whatever produces the input (a digester, a decompressor) runs to its end.
        await src.drain();
        return;
      }
      verifyChecksum(block, start);

      const flag = String.fromCharCode(block[OFFSET.typeflag]!);
      const size = parseNumeric(block, OFFSET.size, LENGTH.size, 'size');
      if (size < 0) throw new InvalidArgument(`archive/tar: invalid tar header at offset ${start}: negative size ${size}`);

      if ((flag === 'x' || flag === 'L' || flag === 'K') && size <= MAX_META_SIZE) {
        // Each is capped (in readMeta), and so is a chain of them before one entry.
        metaBytes += size;
        if (metaBytes > MAX_META_SIZE * 2) {
          throw new InvalidArgument(
            `archive/tar: the extended headers before one entry total more than ${MAX_META_SIZE * 2} bytes (offset ${start})`,
          );
        }
      }
      switch (flag) {
        case 'x': {
          const data = await readMeta(src, size, 'pax extended header');
          parsePaxRecords(data, (key, value) => applyPaxRecord(meta, key, value));
          hasMeta = true;
          continue;
        }
        case 'g':
        case 'V': // global pax header, GNU volume label: nothing to unpack
          await skipBody(src, size, flag === 'g' ? 'pax global header' : 'volume label');
          continue;
        case 'L':
          meta.path = cString(await readMeta(src, size, 'GNU long name'));
          hasMeta = true;
          continue;
        case 'K':
          meta.linkpath = cString(await readMeta(src, size, 'GNU long link name'));
          hasMeta = true;
          continue;
      }

      const header = buildHeader(block, flag, size, meta, start);
      meta = { xattrs: {} };
      hasMeta = false;
      metaBytes = 0;
      // Only files carry a body; GNU dump dirs carry a listing, which is skipped.
      if (flag === 'D') {
        await skipBody(src, size, `directory listing of ${JSON.stringify(header.name)}`);
      }
      body = new EntryBody(src, header.size, header.name);
      yield { header, body };
    }
  } finally {
    if (body !== null) body.abandon();
    src.close();
  }
}

function buildHeader(block: Buffer, flag: string, rawSize: number, meta: PaxOverrides, start: number): TarHeader {
  const flavor = flavorOf(block);
  let name = parseString(block, OFFSET.name, LENGTH.name);
  if (flavor === 'ustar') {
    const prefix = parseString(block, OFFSET.prefix, LENGTH.prefix);
    if (prefix !== '') name = `${prefix}/${name}`;
  }
  if (meta.path !== undefined) name = meta.path;

  let type = TYPES[flag];
  if (type === undefined) {
    const shown = JSON.stringify(flag);
    if (flag === 'S') throw new NotImplemented(`archive/tar: entry ${JSON.stringify(name)}: GNU sparse files are not supported`);
    if (flag === 'M') throw new NotImplemented(`archive/tar: entry ${JSON.stringify(name)}: multi-volume archives are not supported`);
    throw new InvalidArgument(`archive/tar: invalid tar header at offset ${start}: entry ${JSON.stringify(name)} has unknown type flag ${shown}`);
  }
  // Old GNU and v7 mark directories only by the trailing slash.
  if (flag === '\0' && name.endsWith('/')) type = 'directory';

  const hasUstarFields = flavor !== 'v7';
  const size = type === 'file' ? (meta.size ?? rawSize) : 0;
  const mtime = meta.mtime ?? new Date(parseNumeric(block, OFFSET.mtime, LENGTH.mtime, 'mtime') * 1000);
  return {
    name,
    type,
    mode: parseNumeric(block, OFFSET.mode, LENGTH.mode, 'mode') & 0o7777,
    uid: meta.uid ?? parseNumeric(block, OFFSET.uid, LENGTH.uid, 'uid'),
    gid: meta.gid ?? parseNumeric(block, OFFSET.gid, LENGTH.gid, 'gid'),
    uname: meta.uname ?? (hasUstarFields ? parseString(block, OFFSET.uname, LENGTH.uname) : ''),
    gname: meta.gname ?? (hasUstarFields ? parseString(block, OFFSET.gname, LENGTH.gname) : ''),
    size,
    mtime,
    linkname: meta.linkpath ?? parseString(block, OFFSET.linkname, LENGTH.linkname),
    devmajor: meta.devmajor ?? (hasUstarFields ? parseNumeric(block, OFFSET.devmajor, LENGTH.devmajor, 'devmajor') : 0),
    devminor: meta.devminor ?? (hasUstarFields ? parseNumeric(block, OFFSET.devminor, LENGTH.devminor, 'devminor') : 0),
    xattrs: meta.xattrs,
  };
}

function verifyChecksum(block: Buffer, start: number): void {
  let stored: number;
  try {
    stored = parseNumeric(block, OFFSET.chksum, LENGTH.chksum, 'chksum');
  } catch (err) {
    throw new InvalidArgument(`archive/tar: invalid tar header at offset ${start}: the checksum field is not a number`, {
      cause: err,
    });
  }
  const sums = checksums(block);
  if (stored !== sums.unsigned && stored !== sums.signed) {
    throw new InvalidArgument(
      `archive/tar: invalid tar header at offset ${start}: checksum mismatch (stored ${stored}, computed ${sums.unsigned})`,
    );
  }
}

async function readMeta(src: ByteSource, size: number, what: string): Promise<Buffer> {
  if (size > MAX_META_SIZE) {
    throw new InvalidArgument(`archive/tar: ${what} of ${size} bytes is larger than the limit of ${MAX_META_SIZE} bytes`);
  }
  const data = await src.read(size);
  if (data.length < size) throw truncated(src, `in a ${what}`);
  await src.skip(paddingFor(size));
  return data;
}

async function skipBody(src: ByteSource, size: number, what: string): Promise<void> {
  if ((await src.skip(size)) < size) throw truncated(src, `in a ${what}`);
  await src.skip(paddingFor(size));
}

function cString(data: Buffer): string {
  const nul = data.indexOf(0);
  return data.toString('utf8', 0, nul === -1 ? data.length : nul);
}

function truncated(src: ByteSource, where: string): InvalidArgument {
  return new InvalidArgument(`archive/tar: unexpected EOF: the archive ends ${where} at offset ${src.position}`);
}

/**
 * One entry's body. Reading it pulls slices straight from the shared source; the reader
 * waits on `settle()` before it reads the next header.
 */
class EntryBody extends Readable {
  readonly entryName: string;
  readonly bodySize: number;
  #src: ByteSource;
  #remaining: number;
  #inflight = false;
  #failure: Error | null = null;
  #wake: (() => void) | null = null;

  constructor(src: ByteSource, size: number, name: string) {
    super({ highWaterMark: BODY_HIGH_WATER_MARK });
    this.entryName = name;
    this.#src = src;
    this.bodySize = size;
    this.#remaining = size;
    // The reader reports a failure itself; a body nobody listens to must not crash the process.
    this.on('error', () => {});
    this.once('close', () => this.#notify());
  }

  override _read(): void {
    if (this.#remaining === 0) {
      this.push(null);
      return;
    }
    const ready = this.#src.takeBuffered(this.#remaining);
    if (ready !== null) {
      this.#took(ready);
      return;
    }
    this.#inflight = true;
    this.#src.chunk(this.#remaining).then(
      (part) => {
        this.#inflight = false;
        if (part === null) {
          this.#fail(
            new InvalidArgument(
              `archive/tar: unexpected EOF: the archive ends in the body of ${JSON.stringify(this.entryName)} ` +
                `after ${this.bodySize - this.#remaining} of ${this.bodySize} bytes`,
            ),
          );
        } else {
          this.#took(part);
        }
        this.#notify();
      },
      (err: unknown) => {
        this.#inflight = false;
        this.#fail(err instanceof Error ? err : new Error(String(err)));
        this.#notify();
      },
    );
  }

  #took(part: Buffer): void {
    this.#remaining -= part.length;
    if (this.destroyed) return;
    this.push(part);
    if (this.#remaining === 0) {
      this.push(null);
      this.#notify();
    }
  }

  #fail(err: Error): void {
    this.#failure = err;
    this.destroy(err);
  }

  #notify(): void {
    const wake = this.#wake;
    this.#wake = null;
    wake?.();
  }

  /**
   * Waits until this body no longer reads from the source: it was pulled to its end, or it
   * was destroyed. Returns the bytes left unread (to skip); throws what failed the body.
   */
  async settle(): Promise<number> {
    if (this.#remaining > 0 && !this.destroyed && this.listenerCount('data') === 0 && this.listenerCount('readable') === 0) {
      // Nobody reads it: discard the rest instead of waiting forever.
      this.resume();
    }
    while (this.#failure === null && (this.#inflight || (this.#remaining > 0 && !this.destroyed))) {
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
      });
    }
    if (this.#failure !== null) throw this.#failure;
    return this.#remaining;
  }

  /** The reader stopped early: end this body if it was not pulled to its end. */
  abandon(): void {
    if (this.#remaining > 0 && !this.destroyed) {
      this.destroy(new InvalidArgument(`archive/tar: reading stopped in the body of ${JSON.stringify(this.entryName)}`));
    }
  }
}
