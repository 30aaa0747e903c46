/**
 * The tar header block, shared by the reader, the writer and the format sniffer.
 *
 * One 512-byte block (POSIX ustar; old GNU and v7 differ only where noted):
 *
 *   offset size field
 *        0  100 name            v7
 *      100    8 mode            v7, octal
 *      108    8 uid             v7, octal or base-256
 *      116    8 gid             v7, octal or base-256
 *      124   12 size            v7, octal or base-256
 *      136   12 mtime           v7, octal or base-256
 *      148    8 chksum          v7, octal; summed as if it were eight spaces
 *      156    1 typeflag        v7 ('\0' or '0' file, '1' hardlink, '2' symlink)
 *      157  100 linkname        v7
 *      257    6 magic           "ustar\0" (POSIX) or "ustar " (old GNU)
 *      263    2 version         "00" (POSIX) or " \0" (old GNU)
 *      265   32 uname
 *      297   32 gname
 *      329    8 devmajor
 *      337    8 devminor
 *      345  155 prefix          POSIX only; old GNU keeps atime/ctime/sparse data here
 */
import { InvalidArgument } from '../errors/errors.js';

export type TarEntryType = 'file' | 'directory' | 'symlink' | 'hardlink' | 'char' | 'block' | 'fifo';

export interface TarHeader {
  /** As in the archive after pax/GNU long names are applied (not cleaned). */
  name: string;
  type: TarEntryType;
  /** Permission bits including setuid/setgid/sticky (07777). */
  mode: number;
  uid: number;
  gid: number;
  uname: string;
  gname: string;
  /** Body size; 0 for everything but files. */
  size: number;
  mtime: Date;
  /** Symlink target or hardlink target name. */
  linkname: string;
  devmajor: number;
  devminor: number;
  /** From pax SCHILY.xattr.* (and LIBARCHIVE.xattr.*, base64). */
  xattrs: Record<string, Buffer>;
}

export const BLOCK_SIZE = 512;
export const ZERO_BLOCK: Buffer = Buffer.alloc(BLOCK_SIZE);
/** pax extended headers and GNU long names larger than this are refused, not allocated. */
export const MAX_META_SIZE = 1 << 20;

export const OFFSET = {
  name: 0,
  mode: 100,
  uid: 108,
  gid: 116,
  size: 124,
  mtime: 136,
  chksum: 148,
  typeflag: 156,
  linkname: 157,
  magic: 257,
  version: 263,
  uname: 265,
  gname: 297,
  devmajor: 329,
  devminor: 337,
  prefix: 345,
} as const;

export const LENGTH = {
  name: 100,
  mode: 8,
  uid: 8,
  gid: 8,
  size: 12,
  mtime: 12,
  chksum: 8,
  linkname: 100,
  uname: 32,
  gname: 32,
  devmajor: 8,
  devminor: 8,
  prefix: 155,
} as const;

export type NumericField = 'mode' | 'uid' | 'gid' | 'size' | 'mtime' | 'devmajor' | 'devminor';

/** Bytes to add after a body of `size` bytes to reach the next block boundary. */
export function paddingFor(size: number): number {
  const rest = size % BLOCK_SIZE;
  return rest === 0 ? 0 : BLOCK_SIZE - rest;
}

export function isZeroBlock(block: Buffer): boolean {
  return block.equals(ZERO_BLOCK);
}

/**
 * The header checksum: the byte sum of the block with the checksum field read as spaces.
 * Some historic tars summed signed chars, so both sums are returned.
 */
export function checksums(block: Buffer): { unsigned: number; signed: number } {
  // Hot: once per header. A copy into an aligned scratch block lets the sum run over 32-bit
  // words, two bytes per 16-bit lane (128 words cannot overflow a lane), several times
  // faster than a loop over bytes. The signed sum is 256 less for every byte >= 0x80.
  block.copy(SCRATCH, 0, 0, BLOCK_SIZE);
  SCRATCH_WORDS[OFFSET.chksum / 4] = 0x20202020;
  SCRATCH_WORDS[OFFSET.chksum / 4 + 1] = 0x20202020;
  let lanes = 0;
  let high = 0;
  for (let i = 0; i < BLOCK_SIZE / 4; i++) {
    const w = SCRATCH_WORDS[i]!;
    lanes += (w & 0x00ff00ff) + ((w >>> 8) & 0x00ff00ff);
    high += (w >>> 7) & 0x01010101;
  }
  const unsigned = (lanes & 0xffff) + (lanes >>> 16);
  const highBytes = (high & 0xff) + ((high >>> 8) & 0xff) + ((high >>> 16) & 0xff) + (high >>> 24);
  return { unsigned, signed: unsigned - 256 * highBytes };
}

const SCRATCH = new Uint8Array(BLOCK_SIZE);
const SCRATCH_WORDS = new Uint32Array(SCRATCH.buffer);

/** True when the block's stored checksum matches its contents (either variant). */
export function hasValidChecksum(block: Buffer): boolean {
  let stored: number;
  try {
    stored = parseNumeric(block, OFFSET.chksum, LENGTH.chksum, 'chksum');
  } catch {
    return false;
  }
  const sums = checksums(block);
  return stored === sums.unsigned || stored === sums.signed;
}

function isPad(b: number): boolean {
  return b === 0x20 || b === 0x00;
}

/**
 * A numeric field: octal text padded with spaces or NULs, or GNU base-256 (high bit of the
 * first byte set; 0xff starts a negative number). Values beyond 2^53 are refused.
 */
export function parseNumeric(block: Buffer, offset: number, length: number, field: string): number {
  const first = block[offset]!;
  if (first & 0x80) return parseBase256(block, offset, length, field);
  let start = offset;
  let end = offset + length;
  while (start < end && isPad(block[start]!)) start++;
  // The field ends at the first NUL or space after the digits.
  let stop = start;
  while (stop < end && !isPad(block[stop]!)) stop++;
  for (let i = stop; i < end; i++) {
    if (!isPad(block[i]!)) throw badNumber(block, offset, length, field);
  }
  end = stop;
  let value = 0;
  for (let i = start; i < end; i++) {
    const c = block[i]! - 0x30;
    if (c < 0 || c > 7) throw badNumber(block, offset, length, field);
    value = value * 8 + c;
  }
  if (!Number.isSafeInteger(value)) throw badNumber(block, offset, length, field);
  return value;
}

function parseBase256(block: Buffer, offset: number, length: number, field: string): number {
  const negative = (block[offset]! & 0x40) !== 0;
  let value = 0;
  for (let i = 0; i < length; i++) {
    let b = block[offset + i]!;
    if (negative) b ^= 0xff;
    if (i === 0) b &= 0x7f;
    value = value * 256 + b;
    if (value > Number.MAX_SAFE_INTEGER) {
      throw new InvalidArgument(`archive/tar: invalid tar header: ${field} field is out of range`);
    }
  }
  return negative ? -(value + 1) : value;
}

function badNumber(block: Buffer, offset: number, length: number, field: string): InvalidArgument {
  const text = block.toString('latin1', offset, offset + length).replace(/\0+$/, '');
  return new InvalidArgument(
    `archive/tar: invalid tar header: ${field} field ${JSON.stringify(text)} is not a number`,
  );
}

/** A NUL-terminated string field, decoded as UTF-8. */
export function parseString(block: Buffer, offset: number, length: number): string {
  const end = offset + length;
  let stop = block.indexOf(0, offset);
  if (stop === -1 || stop > end) stop = end;
  return block.toString('utf8', offset, stop);
}

export type TarFlavor = 'ustar' | 'gnu' | 'v7';

export function flavorOf(block: Buffer): TarFlavor {
  const m = OFFSET.magic;
  if (block[m] !== 0x75 || block.toString('latin1', m, m + 5) !== 'ustar') return 'v7';
  // "ustar\0" + "00" is POSIX; "ustar " + " \0" is old GNU.
  return block[m + 5] === 0x20 ? 'gnu' : 'ustar';
}
