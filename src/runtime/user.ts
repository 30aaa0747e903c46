/**
 * `docker run -u` resolved against the container's own /etc/passwd and /etc/group.
 *
 * The files belong to the image, so they are hostile: /etc/passwd may be a symlink to
 * the host's /etc/shadow, /etc may be a symlink to the host's /etc, the file may be a FIFO
 * that never answers or /dev/zero that never ends. They are opened with openat2
 * RESOLVE_IN_ROOT (every symlink and ".." resolves inside the root), as an O_PATH handle
 * first, so nothing but a regular file is ever opened for reading, and read up to a cap.
 *
 * Matching follows runc's libcontainer/user, which Docker uses: a numeric user is a uid
 * (it need not be in passwd), a name must be; `user:group` picks the primary group, and
 * without a group the user's supplementary groups come from /etc/group's member lists.
 */
import { closeSync, constants as fsc, fstatSync, openSync, readSync } from 'node:fs';

import { InvalidArgument, errnoCode } from '../errors/errors.js';
import { O_PATH, openInRoot } from '../native/native.js';

export interface ResolvedUser {
  uid: number;
  gid: number;
  /** The primary gid first, then the supplementary groups, then `--group-add`, as Docker orders them. */
  additionalGids: number[];
}

interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
}

interface GroupEntry {
  name: string;
  gid: number;
  members: string[];
}

const MAX_ID = 2 ** 31 - 1;
/** Passwd and group files larger than this are refused rather than read. */
const MAX_FILE_BYTES = 16 * 1024 * 1024;

/**
 * The contents of `relPath` inside `rootfs`, resolved as if `rootfs` were "/", or undefined
 * when it does not exist there. Anything but a regular file is refused.
 */
export function readFileInRoot(rootfs: string, relPath: string, maxBytes = MAX_FILE_BYTES): string | undefined {
  let pathFd: number;
  try {
    pathFd = openInRoot(rootfs, relPath, O_PATH);
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    if (code === 'EXDEV' || code === 'ELOOP') {
      throw new InvalidArgument(`/${relPath} in the container escapes its root or loops`, { cause: err });
    }
    throw err;
  }
  let fd: number | undefined;
  try {
    const stat = fstatSync(pathFd);
    if (!stat.isFile()) throw new InvalidArgument(`/${relPath} in the container is not a regular file`);
    if (stat.size > maxBytes) throw new InvalidArgument(`/${relPath} in the container is larger than ${maxBytes} bytes`);
    // Re-open the very inode the O_PATH handle resolved to; no second path walk.
    fd = openSync(`/proc/self/fd/${pathFd}`, fsc.O_RDONLY | fsc.O_NOCTTY | fsc.O_NONBLOCK);
    const buffer = Buffer.alloc(Math.min(maxBytes, Math.max(stat.size, 4096)) + 1);
    let length = 0;
    for (;;) {
      const n = readSync(fd, buffer, length, buffer.length - length, null);
      if (n === 0) break;
      length += n;
      if (length > maxBytes) throw new InvalidArgument(`/${relPath} in the container is larger than ${maxBytes} bytes`);
      if (length === buffer.length) break;
    }
    return buffer.subarray(0, length).toString('utf8');
  } finally {
    if (fd !== undefined) closeSync(fd);
    closeSync(pathFd);
  }
}

/** A decimal id, or undefined when `text` is not one; out-of-range ids are refused. */
function parseId(text: string): number | undefined {
  if (!/^\d+$/.test(text)) return undefined;
  const value = Number(text);
  if (value > MAX_ID) throw new InvalidArgument(`uids and gids must be in range 0-${MAX_ID}`);
  return value;
}

function lines(text: string | undefined): string[][] {
  if (text === undefined) return [];
  return text
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line.length > 0 && !line.startsWith('#'))
    .map((line) => line.split(':'));
}

/** Entries with a non-numeric id are skipped: reading them as 0 would make them root. */
function parsePasswd(text: string | undefined): PasswdEntry[] {
  const out: PasswdEntry[] = [];
  for (const f of lines(text)) {
    const uid = /^\d+$/.test(f[2] ?? '') ? Number(f[2]) : undefined;
    const gid = /^\d+$/.test(f[3] ?? '') ? Number(f[3]) : undefined;
    if (uid === undefined || gid === undefined || uid > MAX_ID || gid > MAX_ID) continue;
    out.push({ name: f[0] ?? '', uid, gid });
  }
  return out;
}

function parseGroup(text: string | undefined): GroupEntry[] {
  const out: GroupEntry[] = [];
  for (const f of lines(text)) {
    const gid = /^\d+$/.test(f[2] ?? '') ? Number(f[2]) : undefined;
    if (gid === undefined || gid > MAX_ID) continue;
    const members = (f[3] ?? '').split(',').map((m) => m.trim()).filter((m) => m.length > 0);
    out.push({ name: f[0] ?? '', gid, members });
  }
  return out;
}

/**
 * Resolves Docker's `User` (`name|uid[:group|gid]`, empty for root) and `--group-add`
 * against the passwd and group files inside `rootfs`.
 */
export async function resolveUser(
  rootfs: string,
  user: string | undefined,
  groupAdd: readonly string[] = [],
): Promise<ResolvedUser> {
  const spec = user ?? '';
  const colon = spec.indexOf(':');
  const userArg = colon < 0 ? spec : spec.slice(0, colon);
  const groupArg = colon < 0 ? '' : spec.slice(colon + 1);
  const uidArg = parseId(userArg);
  const gidArg = parseId(groupArg);

  const passwdText = readFileInRoot(rootfs, 'etc/passwd');
  const groups = parseGroup(readFileInRoot(rootfs, 'etc/group'));
  const passwd = parsePasswd(passwdText);

  let uid = 0;
  let gid = 0;
  let matchedName = '';
  const match = passwd.find((p) => (userArg === '' ? p.uid === 0 : uidArg !== undefined ? p.uid === uidArg : p.name === userArg));
  if (match) {
    uid = match.uid;
    gid = match.gid;
    matchedName = match.name;
  } else if (userArg !== '') {
    if (uidArg === undefined) throw new InvalidArgument(`unable to find user ${userArg}: no matching entries in passwd file`);
    uid = uidArg;
  }

  let supplementary: number[] = [];
  if (groupArg !== '') {
    const group = groups.find((g) => (gidArg !== undefined ? g.gid === gidArg : g.name === groupArg));
    if (group) gid = group.gid;
    else if (gidArg !== undefined) gid = gidArg;
    else throw new InvalidArgument(`unable to find group ${groupArg}: no matching entries in group file`);
  } else if (matchedName !== '') {
    supplementary = groups.filter((g) => g.members.includes(matchedName)).map((g) => g.gid);
  }

  const added: number[] = [];
  for (const name of groupAdd) {
    const numeric = parseId(name);
    const group = groups.find((g) => (numeric !== undefined ? g.gid === numeric : g.name === name));
    if (group) added.push(group.gid);
    else if (numeric !== undefined) added.push(numeric);
    else throw new InvalidArgument(`unable to find group ${name}: no matching entries in group file`);
  }

  return { uid, gid, additionalGids: [...new Set([gid, ...supplementary, ...added])] };
}
