/**
 * Devices: the device cgroup allowlist Docker gives every container, `--device` (a host
 * device node, or a directory of them, made in the container with a cgroup rule), and the
 * whole of the host's /dev for `--privileged`.
 *
 * runc itself creates the standard nodes (null, zero, full, random, urandom, tty, the
 * console and ptmx) and allows them in the cgroup, so the spec lists only the rest.
 */
import { lstatSync, readdirSync, realpathSync, type BigIntStats } from 'node:fs';
import { join } from 'node:path';

import { InvalidArgument } from '../errors/errors.js';
import type { OciDevice, OciDeviceCgroup } from './spec-types.js';

/** Docker's device cgroup rules: deny everything, allow the standard nodes, deny /dev/fuse. */
export function defaultDeviceRules(): OciDeviceCgroup[] {
  const allowChar = (major: number, minor: number): OciDeviceCgroup => ({ allow: true, type: 'c', major, minor, access: 'rwm' });
  return [
    { allow: false, access: 'rwm' },
    allowChar(1, 5), // zero
    allowChar(1, 3), // null
    allowChar(1, 9), // urandom
    allowChar(1, 8), // random
    allowChar(5, 0), // tty
    allowChar(5, 1), // console
    { allow: false, type: 'c', major: 10, minor: 229, access: 'rwm' }, // fuse
  ];
}

/** The device cgroup rule of a privileged container: every device. */
export function allowAllDevicesRule(): OciDeviceCgroup {
  return { allow: true, access: 'rwm' };
}

/** glibc's major()/minor() of a 64-bit dev_t. */
function majorMinor(rdev: bigint): { major: number; minor: number } {
  const major = ((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn);
  const minor = (rdev & 0xffn) | ((rdev >> 12n) & ~0xffn);
  return { major: Number(major), minor: Number(minor) };
}

/** The OCI device of a device node, or undefined when `stat` is not one (FIFOs excluded). */
function deviceOf(stat: BigIntStats, path: string): OciDevice | undefined {
  let type: 'c' | 'b';
  if (stat.isCharacterDevice()) type = 'c';
  else if (stat.isBlockDevice()) type = 'b';
  else return undefined;
  return {
    type,
    path,
    ...majorMinor(stat.rdev),
    fileMode: Number(stat.mode & 0o777n),
    uid: Number(stat.uid),
    gid: Number(stat.gid),
  };
}

export interface DeviceMapping {
  PathOnHost: string;
  PathInContainer?: string;
  CgroupPermissions?: string;
}

export interface MappedDevices {
  devices: OciDevice[];
  rules: OciDeviceCgroup[];
}

/**
 * One `--device`: a host device node (a symlink to one is followed) or a directory whose
 * device nodes all go in, under `PathInContainer` (defaulting to the host path).
 */
export function devicesFromPath(mapping: DeviceMapping): MappedDevices {
  const hostPath = mapping.PathOnHost;
  const containerPath = mapping.PathInContainer || hostPath;
  const permissions = mapping.CgroupPermissions || 'rwm';
  if (!/^[rwm]{1,3}$/.test(permissions) || new Set(permissions).size !== permissions.length) {
    throw new InvalidArgument(`invalid device cgroup permissions "${permissions}" for ${hostPath}: use a combination of r, w and m`);
  }
  if (!hostPath.startsWith('/') || !containerPath.startsWith('/')) {
    throw new InvalidArgument(`invalid device mapping ${hostPath}:${containerPath}: paths must be absolute`);
  }
  const fail = (why: string, cause?: unknown): InvalidArgument =>
    new InvalidArgument(`error gathering device information while adding custom device "${hostPath}": ${why}`, { cause });
  let resolved = hostPath;
  let stat: BigIntStats;
  try {
    stat = lstatSync(hostPath, { bigint: true });
    if (stat.isSymbolicLink()) {
      resolved = realpathSync(hostPath);
      stat = lstatSync(resolved, { bigint: true });
    }
  } catch (err) {
    throw fail((err as Error).message, err);
  }
  const out: MappedDevices = { devices: [], rules: [] };
  const add = (device: OciDevice): void => {
    out.devices.push(device);
    out.rules.push({ allow: true, type: device.type === 'b' ? 'b' : 'c', major: device.major, minor: device.minor, access: permissions });
  };
  const single = deviceOf(stat, containerPath);
  if (single) {
    add(single);
    return out;
  }
  if (!stat.isDirectory()) throw fail('not a device node');
  const walk = (dir: string, inContainer: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const host = join(dir, entry.name);
      const ctr = join(inContainer, entry.name);
      if (entry.isDirectory()) {
        walk(host, ctr);
        continue;
      }
      try {
        const device = deviceOf(lstatSync(host, { bigint: true }), ctr);
        if (device) add(device);
      } catch {
        // vanished while walking: skip, as Docker does
      }
    }
  };
  walk(resolved, containerPath);
  if (out.devices.length === 0) throw fail('not a device node');
  return out;
}

/** Directories under /dev that hold no devices a privileged container should get. */
const SKIPPED_DEV_DIRS = new Set(['pts', 'shm', 'fd', 'mqueue', '.lxc', '.lxd-mounts', '.udev']);

/** Every device node of the host's /dev (for --privileged), less the console. */
export function hostDevices(root = '/dev'): OciDevice[] {
  const out: OciDevice[] = [];
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) {
        if (!SKIPPED_DEV_DIRS.has(entry.name)) walk(path);
        continue;
      }
      if (dir === root && entry.name === 'console') continue;
      if (!entry.isCharacterDevice() && !entry.isBlockDevice()) continue;
      try {
        const device = deviceOf(lstatSync(path, { bigint: true }), path);
        if (device) out.push(device);
      } catch {
        // vanished while walking
      }
    }
  };
  walk(root);
  return out;
}
