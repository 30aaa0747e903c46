/**
 * Mounts as data (containerd's vocabulary): a snapshotter returns them, whoever needs a root
 * filesystem mounts them with mountAll and takes them down with unmountAll.
 */
import { setTimeout as sleep } from 'node:timers/promises';

import { InvalidArgument, errnoCode } from '../errors/errors.js';
import * as native from '../native/native.js';

export interface Mount {
  /** 'overlay', 'bind', 'tmpfs'... (the fstype; 'bind' means a bind mount). */
  type: string;
  source: string;
  /** Where to mount, relative to the target given to mountAll; the target itself when absent. */
  target?: string;
  /** mount(8)-style options: flags ('ro', 'rbind', 'nosuid'...) and fs data ('lowerdir=...'). */
  options: string[];
}

/** Options that are mount(2) flags; `true` sets the flag, `false` clears it. */
const FLAGS: Record<string, [number, boolean]> = {
  ro: [native.MS_RDONLY, true],
  rw: [native.MS_RDONLY, false],
  bind: [native.MS_BIND, true],
  rbind: [native.MS_BIND | native.MS_REC, true],
  nosuid: [native.MS_NOSUID, true],
  suid: [native.MS_NOSUID, false],
  nodev: [native.MS_NODEV, true],
  dev: [native.MS_NODEV, false],
  noexec: [native.MS_NOEXEC, true],
  exec: [native.MS_NOEXEC, false],
  noatime: [native.MS_NOATIME, true],
  atime: [native.MS_NOATIME, false],
  nodiratime: [native.MS_NODIRATIME, true],
  diratime: [native.MS_NODIRATIME, false],
  relatime: [native.MS_RELATIME, true],
  norelatime: [native.MS_RELATIME, false],
  strictatime: [native.MS_STRICTATIME, true],
  remount: [native.MS_REMOUNT, true],
  defaults: [0, false],
};

/** Propagation options: applied by a mount(2) call of their own, after the mount. */
const PROPAGATION: Record<string, number> = {
  private: native.MS_PRIVATE,
  rprivate: native.MS_PRIVATE | native.MS_REC,
  shared: native.MS_SHARED,
  rshared: native.MS_SHARED | native.MS_REC,
  slave: native.MS_SLAVE,
  rslave: native.MS_SLAVE | native.MS_REC,
  unbindable: native.MS_UNBINDABLE,
  runbindable: native.MS_UNBINDABLE | native.MS_REC,
};

/** The kernel copies at most one page of mount data. */
const MAX_MOUNT_DATA = 4095;

/** Mounts each of `mounts` in order on `target`; on failure, unmounts what it mounted. */
export async function mountAll(mounts: Mount[], target: string): Promise<void> {
  const done: string[] = [];
  try {
    for (const m of mounts) {
      const where = m.target ? `${target.replace(/\/+$/, '')}/${m.target.replace(/^\/+/, '')}` : target;
      mountOne(m, where);
      done.push(where);
    }
  } catch (err) {
    for (const where of done.reverse()) {
      try {
        native.umount2(where, native.MNT_DETACH);
      } catch {
        // best effort: the original error matters
      }
    }
    throw err;
  }
}

/**
 * Unmounts everything mounted on `target` (mounts stack), until it is no mount point.
 * A busy mount is retried for a while, then detached.
 */
export async function unmountAll(target: string): Promise<void> {
  for (let attempt = 0; attempt < 1000; attempt++) {
    try {
      native.umount2(target, attempt >= 50 ? native.MNT_DETACH : 0);
    } catch (err) {
      const code = errnoCode(err);
      if (code === 'EINVAL' || code === 'ENOENT') return; // not (or no longer) a mount point
      if (code !== 'EBUSY') throw err;
      await sleep(20);
    }
  }
  throw new Error(`unmount ${target}: still mounted after 1000 unmounts`);
}

function mountOne(m: Mount, target: string): void {
  let flags = 0;
  let propagation = 0;
  const data: string[] = [];
  for (const option of m.options) {
    const flag = FLAGS[option];
    const prop = PROPAGATION[option];
    if (flag) flags = flag[1] ? flags | flag[0] : flags & ~flag[0];
    else if (prop !== undefined) propagation |= prop;
    else if (option.includes(',')) throw new InvalidArgument(`mount ${m.type} on ${target}: option ${JSON.stringify(option)} has a comma`);
    else data.push(option);
  }
  const describe = `mount ${m.type} ${m.source} on ${target}`;
  try {
    if (m.type === 'bind' || flags & native.MS_BIND) {
      const bindFlags = native.MS_BIND | (flags & native.MS_REC);
      native.mount(m.source, target, null, bindFlags, null);
      // A bind mount ignores every other flag until it is remounted.
      const rest = flags & ~(native.MS_BIND | native.MS_REC);
      if (rest !== 0) native.mount(null, target, null, native.MS_REMOUNT | native.MS_BIND | rest, null);
    } else {
      let options = data.join(',');
      let cwd: string | undefined;
      if (Buffer.byteLength(options) > MAX_MOUNT_DATA && m.type === 'overlay') ({ options, cwd } = compactOverlay(data));
      if (Buffer.byteLength(options) > MAX_MOUNT_DATA) {
        throw new InvalidArgument(`${describe}: options are ${Buffer.byteLength(options)} bytes, more than a page`);
      }
      native.mount(m.source, target, m.type, flags, options === '' ? null : options, cwd);
    }
    if (propagation !== 0) native.mount(null, target, null, propagation, null);
  } catch (err) {
    if (!(err instanceof Error) || errnoCode(err) === undefined) throw err;
    // The native message is "<syscall> <path>: <reason>"; say instead what was being mounted.
    const reason = err.message.slice(err.message.lastIndexOf(': ') + 2);
    const shown = m.options.join(',');
    const options = shown.length > 300 ? `${shown.slice(0, 300)}…` : shown;
    throw Object.assign(new Error(`${describe} (${options}): ${reason}`, { cause: err }), { code: errnoCode(err) });
  }
}

/**
 * Overlay data with lowerdir/upperdir/workdir made relative to their longest common
 * directory, which becomes the mount's working directory (as containerd does), so 100+
 * layers fit in one page.
 */
function compactOverlay(data: string[]): { options: string; cwd: string } {
  const keys = ['lowerdir=', 'upperdir=', 'workdir='];
  const paths: string[] = [];
  for (const option of data) {
    const key = keys.find((k) => option.startsWith(k));
    if (key) paths.push(...option.slice(key.length).split(':'));
  }
  let common = paths[0]?.split('/').slice(0, -1) ?? [];
  for (const path of paths) {
    const parts = path.split('/');
    let n = 0;
    while (n < common.length && n < parts.length - 1 && common[n] === parts[n]) n++;
    common = common.slice(0, n);
  }
  const cwd = common.join('/');
  if (cwd === '' || !paths.every((p) => p.startsWith('/'))) return { options: data.join(','), cwd: '/' };
  const rel = (p: string): string => p.slice(cwd.length + 1);
  const options = data.map((option) => {
    const key = keys.find((k) => option.startsWith(k));
    return key ? key + option.slice(key.length).split(':').map(rel).join(':') : option;
  });
  return { options: options.join(','), cwd };
}
