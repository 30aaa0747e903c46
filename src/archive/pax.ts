/**
 * pax extended header records (POSIX.1-2001): "<length> <key>=<value>\n", where <length>
 * counts the whole record including its own digits and the newline.
 */
import { InvalidArgument, NotImplemented } from '../errors/errors.js';

/** What a pax 'x' header (or GNU 'L'/'K' long names) overrides in the next entry. */
export interface PaxOverrides {
  path?: string;
  linkpath?: string;
  size?: number;
  uid?: number;
  gid?: number;
  uname?: string;
  gname?: string;
  mtime?: Date;
  devmajor?: number;
  devminor?: number;
  xattrs: Record<string, Buffer>;
}

const SPACE = 0x20;
const EQUALS = 0x3d;
const NEWLINE = 0x0a;
const EQUALS_BYTE = Buffer.from('=');
const NEWLINE_BYTE = Buffer.from('\n');

/** Calls `onRecord` for every record of a pax extended header body; throws on a malformed one. */
export function parsePaxRecords(data: Buffer, onRecord: (key: string, value: Buffer) => void): void {
  let pos = 0;
  while (pos < data.length) {
    // Some writers pad the body with NULs; nothing meaningful can follow them.
    if (data[pos] === 0) break;
    const space = data.indexOf(SPACE, pos);
    if (space === -1 || space === pos || space - pos > 16) throw badRecord(pos, 'no length before the first space');
    let length = 0;
    for (let i = pos; i < space; i++) {
      const d = data[i]! - 0x30;
      if (d < 0 || d > 9) throw badRecord(pos, `length ${JSON.stringify(data.toString('latin1', pos, space))} is not a number`);
      length = length * 10 + d;
    }
    const end = pos + length;
    if (length <= space - pos + 1 || end > data.length) {
      throw badRecord(pos, `length ${length} does not fit the ${data.length - pos} bytes left in the header`);
    }
    if (data[end - 1] !== NEWLINE) throw badRecord(pos, `length ${length} does not end at a newline`);
    const equals = data.indexOf(EQUALS, space + 1);
    if (equals === -1 || equals >= end - 1) throw badRecord(pos, 'no "=" between key and value');
    if (equals === space + 1) throw badRecord(pos, 'empty key');
    onRecord(data.toString('utf8', space + 1, equals), data.subarray(equals + 1, end - 1));
    pos = end;
  }
}

function badRecord(offset: number, why: string): InvalidArgument {
  return new InvalidArgument(`archive/tar: invalid pax extended header: record at offset ${offset}: ${why}`);
}

/** Applies one pax record to `into`. An empty value unsets the key, as POSIX says. */
export function applyPaxRecord(into: PaxOverrides, key: string, value: Buffer): void {
  switch (key) {
    case 'path':
    case 'linkpath':
    case 'uname':
    case 'gname':
      if (value.length === 0) delete into[key];
      else into[key] = value.toString('utf8');
      return;
    case 'size':
    case 'uid':
    case 'gid':
      if (value.length === 0) delete into[key];
      else into[key] = paxDecimal(key, value);
      return;
    case 'SCHILY.devmajor':
    case 'SCHILY.devminor': {
      const field = key === 'SCHILY.devmajor' ? 'devmajor' : 'devminor';
      if (value.length === 0) delete into[field];
      else into[field] = paxDecimal(key, value);
      return;
    }
    case 'mtime':
      if (value.length === 0) delete into.mtime;
      else into.mtime = paxTime(key, value);
      return;
  }
  if (key.startsWith('SCHILY.xattr.')) {
    into.xattrs[key.slice('SCHILY.xattr.'.length)] = Buffer.from(value);
    return;
  }
  if (key.startsWith('LIBARCHIVE.xattr.')) {
    let name: string;
    try {
      name = decodeURIComponent(key.slice('LIBARCHIVE.xattr.'.length));
    } catch (err) {
      throw new InvalidArgument(`archive/tar: invalid pax extended header: bad xattr name in ${JSON.stringify(key)}`, {
        cause: err,
      });
    }
    into.xattrs[name] = Buffer.from(value.toString('latin1'), 'base64');
    return;
  }
  if (key.startsWith('GNU.sparse.')) {
    throw new NotImplemented('archive/tar: GNU sparse files are not supported');
  }
  // Everything else (atime, ctime, comment, charset, SCHILY.dev/ino/nlink, ...) does not
  // change what gets unpacked.
}

function paxDecimal(key: string, value: Buffer): number {
  const text = value.toString('latin1');
  if (!/^[0-9]{1,16}$/.test(text) || !Number.isSafeInteger(Number(text))) {
    throw new InvalidArgument(`archive/tar: invalid pax extended header: ${key}=${JSON.stringify(text)} is not a number`);
  }
  return Number(text);
}

function paxTime(key: string, value: Buffer): Date {
  const text = value.toString('latin1');
  const match = /^(-?)([0-9]{1,15})(?:\.([0-9]*))?$/.exec(text);
  if (match === null) {
    throw new InvalidArgument(`archive/tar: invalid pax extended header: ${key}=${JSON.stringify(text)} is not a time`);
  }
  const sign = match[1] === '-' ? -1 : 1;
  const millis = Number(match[2]) * 1000 + Number((match[3] ?? '').padEnd(3, '0').slice(0, 3));
  return new Date(sign * millis);
}

/** One encoded record; its length prefix counts its own digits. */
export function paxRecord(key: string, value: Buffer | string): Buffer {
  const keyBytes = Buffer.from(key, 'utf8');
  const valueBytes = typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
  const base = 3 + keyBytes.length + valueBytes.length; // space, '=', newline
  let digits = String(base).length;
  if (String(base + digits).length > digits) digits++;
  const length = base + digits;
  return Buffer.concat([Buffer.from(`${length} `, 'latin1'), keyBytes, EQUALS_BYTE, valueBytes, NEWLINE_BYTE]);
}
