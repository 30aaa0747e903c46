/**
 * A container's mounts as Docker lays them out: the fixed set every container gets
 * (/proc, /dev, /dev/pts, /dev/shm, /dev/mqueue, /sys, /sys/fs/cgroup), then the mounts the
 * user asked for (`-v /host:/ctr[:opts]` binds, `--tmpfs`) and the files the daemon made
 * (/etc/hosts, /etc/hostname, /etc/resolv.conf), parents before children.
 */
import { statSync } from 'node:fs';
import { release } from 'node:os';
import { posix } from 'node:path';

import { InvalidArgument, NotImplemented } from '../errors/errors.js';
import type { OciMount } from './spec-types.js';

/** Docker's default /dev/shm size: 64 MiB. */
export const DEFAULT_SHM_SIZE = 64 * 1024 * 1024;

/** The mounts every container gets, Docker's options for each. */
export function defaultMounts(shmSize: number): OciMount[] {
  return [
    { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
    {
      destination: '/dev/pts',
      type: 'devpts',
      source: 'devpts',
      options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'],
    },
    { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
    { destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['ro', 'nosuid', 'noexec', 'nodev'] },
    { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
    {
      destination: '/dev/shm',
      type: 'tmpfs',
      source: 'shm',
      options: ['nosuid', 'noexec', 'nodev', 'mode=1777', `size=${shmSize}`],
    },
  ];
}

/**
 * "rro" (recursively read-only, mount_setattr, Linux 5.12+; runc 1.1 knows it) so that
 * mounts below a read-only bind are read-only too, as Docker does where it can; else "ro".
 */
export function readOnlyBindOption(kernelRelease: string = release()): 'rro' | 'ro' {
  const match = /^(\d+)\.(\d+)/.exec(kernelRelease);
  const [major, minor] = match ? [Number(match[1]), Number(match[2])] : [0, 0];
  return major > 5 || (major === 5 && minor >= 12) ? 'rro' : 'ro';
}

const RW_MODES = new Set(['rw', 'ro']);
const LABEL_MODES = new Set(['z', 'Z']);
const PROPAGATIONS = new Set(['private', 'rprivate', 'shared', 'rshared', 'slave', 'rslave']);
const COPY_MODES = new Set(['nocopy']);
const CONSISTENCY_MODES = new Set(['consistent', 'cached', 'delegated']);

/** A `-v` mode string is valid when each kind of option appears at most once. */
function validMountMode(mode: string): boolean {
  if (mode === '') return true;
  const counts = [0, 0, 0, 0, 0];
  for (const o of mode.split(',')) {
    const kind = [RW_MODES, LABEL_MODES, PROPAGATIONS, COPY_MODES, CONSISTENCY_MODES].findIndex((set) => set.has(o));
    if (kind < 0) return false;
    counts[kind] = (counts[kind] ?? 0) + 1;
  }
  return counts.every((n) => n <= 1);
}

function validateTarget(target: string): string | undefined {
  if (!posix.isAbsolute(target)) return `invalid mount path: '${target}' mount path must be absolute`;
  if (posix.normalize(target) === '/') return "invalid specification: destination can't be '/'";
  return undefined;
}

export interface BindMount {
  mount: OciMount;
  /** A propagation other than private, which asks the root to propagate too. */
  propagation?: string;
}

/**
 * One `HostConfig.Binds` entry, `/host:/ctr[:ro|rw][,propagation][,z|Z]`, as an OCI bind
 * mount. The host path must be absolute and exist; named and anonymous volumes belong to
 * the volume service and are refused here.
 */
export function parseBind(raw: string): BindMount {
  const invalid = (why?: string): InvalidArgument =>
    new InvalidArgument(`invalid volume specification: '${raw}'${why ? `: ${why}` : ''}`);
  const parts = raw.split(':');
  if (parts.length > 3 || parts[0] === '') throw invalid();
  if (parts.length === 1) {
    throw new NotImplemented(`anonymous volume '${raw}': volumes are not handled by the runtime spec; the volume service must resolve them to a host path`);
  }
  const [source = '', target = '', mode = ''] = parts;
  if (parts.length === 2 && validMountMode(target)) throw invalid();
  if (!validMountMode(mode)) throw new InvalidArgument(`invalid mode: ${mode}`);
  if (!posix.isAbsolute(source)) {
    throw new NotImplemented(`named volume '${source}': volumes are not handled by the runtime spec; the volume service must resolve them to a host path`);
  }
  const targetError = validateTarget(target);
  if (targetError) throw invalid(`invalid mount config for type "bind": ${targetError}`);
  try {
    statSync(source);
  } catch (err) {
    throw new InvalidArgument(`invalid volume specification: '${raw}': invalid mount config for type "bind": bind source path does not exist: ${source}`, { cause: err });
  }
  const modes = mode === '' ? [] : mode.split(',');
  const propagation = modes.find((m) => PROPAGATIONS.has(m)) ?? 'rprivate';
  const options = ['rbind'];
  if (modes.includes('ro')) options.push(readOnlyBindOption());
  options.push(propagation);
  const mount: OciMount = { destination: posix.normalize(target), type: 'bind', source: posix.normalize(source), options };
  return propagation === 'rprivate' || propagation === 'private' ? { mount } : { mount, propagation };
}

/** Each tmpfs/mount option and the setting it decides; later options win over earlier ones. */
const TMPFS_FLAGS: Readonly<Record<string, string>> = {
  ro: 'rdonly', rw: 'rdonly', suid: 'nosuid', nosuid: 'nosuid', dev: 'nodev', nodev: 'nodev', exec: 'noexec',
  noexec: 'noexec', sync: 'sync', async: 'sync', dirsync: 'dirsync', remount: 'remount', mand: 'mand',
  nomand: 'mand', atime: 'noatime', noatime: 'noatime', diratime: 'nodiratime', nodiratime: 'nodiratime',
  relatime: 'relatime', norelatime: 'relatime', strictatime: 'strictatime', nostrictatime: 'strictatime',
  bind: 'propagation', rbind: 'propagation', unbindable: 'propagation', runbindable: 'propagation',
  private: 'propagation', rprivate: 'propagation', shared: 'propagation', rshared: 'propagation',
  slave: 'propagation', rslave: 'propagation',
};
const TMPFS_DATA = new Set(['size', 'mode', 'uid', 'gid', 'nr_inodes', 'nr_blocks', 'mpol']);

/** Removes options overridden by later ones (Docker's MergeTmpfsOptions); refuses unknown ones. */
export function mergeTmpfsOptions(options: readonly string[]): string[] {
  const seen = new Set<string>();
  const out: string[] = [];
  for (let i = options.length - 1; i >= 0; i--) {
    const option = options[i] ?? '';
    if (option === 'defaults' || option === '') continue;
    let key = TMPFS_FLAGS[option];
    if (key === undefined) {
      const eq = option.indexOf('=');
      const name = eq < 0 ? option : option.slice(0, eq);
      if (eq < 0 || !TMPFS_DATA.has(name)) throw new InvalidArgument(`invalid tmpfs option "${name}"`);
      key = `data:${name}`;
    }
    if (seen.has(key)) continue;
    seen.add(key);
    out.unshift(option);
  }
  return out;
}

/** One `HostConfig.Tmpfs` entry (destination → "size=64m,mode=1777,..."). */
export function tmpfsMount(destination: string, data: string): OciMount {
  const targetError = validateTarget(destination);
  if (targetError) throw new InvalidArgument(`invalid tmpfs mount ${destination}: ${targetError}`);
  const options = mergeTmpfsOptions(['noexec', 'nosuid', 'nodev', 'rprivate', ...(data === '' ? [] : data.split(','))]);
  return { destination: posix.normalize(destination), type: 'tmpfs', source: 'tmpfs', options };
}

/** Number of path components: Docker mounts shallower destinations first. */
function depth(destination: string): number {
  return posix.normalize(destination).split('/').length;
}

/** Stable sort, parents first, so /a is mounted before /a/b. */
export function sortMounts(mounts: readonly OciMount[]): OciMount[] {
  return [...mounts].sort((a, b) => depth(a.destination) - depth(b.destination));
}
