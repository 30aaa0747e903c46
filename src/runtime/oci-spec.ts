/**
 * The OCI runtime spec (a bundle's config.json) for a container, from Docker's container
 * config, with Docker's defaults: its namespaces, mounts, capability set, masked and
 * read-only /proc and /sys paths, device allowlist and seccomp profile.
 *
 *   const spec = await buildSpec({ id, rootfs, config, hostConfig, hostsPath, ... });
 *   await writeFile(join(bundle, 'config.json'), specJson(spec));
 *
 * Write it with `specJson`, not JSON.stringify: an unlimited rlimit is 2^64-1 in
 * config.json, which a JS number cannot hold.
 */
import { existsSync, readdirSync } from 'node:fs';
import { hostname as osHostname } from 'node:os';
import { posix } from 'node:path';

import { InvalidArgument, NotImplemented, Unavailable } from '../errors/errors.js';
import { tweakCapabilities } from './capabilities.js';
import { allowAllDevicesRule, defaultDeviceRules, devicesFromPath, hostDevices } from './devices.js';
import {
  DEFAULT_SHM_SIZE,
  defaultMounts,
  parseBind,
  readOnlyBindOption,
  sortMounts,
  tmpfsMount,
} from './mounts.js';
import { cgroupFeatures, cpuResources, memoryResources, pidsResources, validateResources, type CgroupFeatures } from './resources.js';
import { buildRlimits, RLIM_INFINITY_JSON } from './rlimits.js';
import { compileSeccompProfile, defaultSeccompProfile } from './seccomp-profile.js';
import { parseSecurityOpts } from './security-opts.js';
import type { OciDevice, OciMount, OciNamespace, OciSpec } from './spec-types.js';
import { resolveUser } from './user.js';

export type { OciSpec } from './spec-types.js';

/** Docker's container create body, the parts berth honours (Config and HostConfig, API 1.47). */
export interface ContainerConfig {
  Hostname?: string;
  Domainname?: string;
  User?: string;
  Env?: string[] | null;
  Cmd?: string[] | null;
  Entrypoint?: string[] | null;
  WorkingDir?: string;
  Tty?: boolean;
  OpenStdin?: boolean;
  StdinOnce?: boolean;
  AttachStdin?: boolean;
  AttachStdout?: boolean;
  AttachStderr?: boolean;
  Labels?: Record<string, string> | null;
  StopSignal?: string;
  StopTimeout?: number | null;
  Image?: string;
  ExposedPorts?: Record<string, object> | null;
  Volumes?: Record<string, object> | null;
  /** Test ["CMD", …], ["CMD-SHELL", "…"] or ["NONE"]; durations in nanoseconds. */
  Healthcheck?: { Test?: string[]; Interval?: number; Timeout?: number; StartPeriod?: number; StartInterval?: number; Retries?: number };
}

export interface HostConfig {
  Privileged?: boolean;
  ReadonlyRootfs?: boolean;
  CapAdd?: string[] | null;
  CapDrop?: string[] | null;
  SecurityOpt?: string[] | null;
  Init?: boolean | null;
  Memory?: number;
  MemorySwap?: number;
  MemoryReservation?: number;
  NanoCpus?: number;
  CpuShares?: number;
  CpuPeriod?: number;
  CpuQuota?: number;
  CpusetCpus?: string;
  PidsLimit?: number | null;
  Ulimits?: Array<{ Name: string; Soft: number; Hard: number }> | null;
  ShmSize?: number;
  OomKillDisable?: boolean;
  Binds?: string[] | null;
  /** --mount: volumes, binds and tmpfs (the daemon turns them into Binds and Tmpfs). */
  Mounts?: MountRequest[] | null;
  Tmpfs?: Record<string, string> | null;
  NetworkMode?: string;
  /** '80/tcp' -> where on the host it is published ('' HostPort: an ephemeral port). */
  PortBindings?: Record<string, Array<{ HostIp?: string; HostPort?: string }> | null> | null;
  /** -P: every exposed port on an ephemeral host port. */
  PublishAllPorts?: boolean;
  IpcMode?: string;
  PidMode?: string;
  UTSMode?: string;
  ExtraHosts?: string[] | null;
  Dns?: string[] | null;
  DnsSearch?: string[] | null;
  DnsOptions?: string[] | null;
  GroupAdd?: string[] | null;
  Sysctls?: Record<string, string> | null;
  Devices?: Array<{ PathOnHost: string; PathInContainer: string; CgroupPermissions: string }> | null;
  AutoRemove?: boolean;
  RestartPolicy?: { Name: string; MaximumRetryCount?: number };
  /** The log driver: json-file (rotating by default), or none. */
  LogConfig?: { Type: string; Config?: Record<string, string> | null };
  /** [height, width] of the client's terminal, for a TTY's first size. */
  ConsoleSize?: [number, number] | null;
  /** Overrides of the masked and read-only paths (the docker CLI sends [] for `systempaths=unconfined`). */
  MaskedPaths?: string[] | null;
  ReadonlyPaths?: string[] | null;
}

/** One --mount, as the Engine API's HostConfig.Mounts has it. */
export interface MountRequest {
  Type?: string;
  Source?: string;
  Target?: string;
  ReadOnly?: boolean;
  BindOptions?: { Propagation?: string } | null;
  VolumeOptions?: { NoCopy?: boolean; DriverConfig?: { Name?: string } | null } | null;
  TmpfsOptions?: { SizeBytes?: number; Mode?: number } | null;
}

export interface SpecInput {
  /** 64-hex container id. */
  id: string;
  /** The mounted container root (overlay), absolute. */
  rootfs: string;
  /** Already merged with the image config (Env, Cmd/Entrypoint, WorkingDir, User). */
  config: ContainerConfig;
  hostConfig: HostConfig;
  /** Files the daemon made for the container, bind-mounted read-write: */
  hostsPath: string;
  hostnamePath: string;
  resolvConfPath: string;
  /** An existing network namespace path to join, or undefined for a new one (none/bridge), or 'host'. */
  netns?: string | 'host';
  /** e.g. '/berth/<id>' (cgroupfs, v1 here and v2 elsewhere). */
  cgroupsPath: string;
  /** A static init binary to bind at /sbin/docker-init for --init (e.g. /usr/bin/tini-static). */
  initPath?: string;
  /**
   * Namespaces of another container to join, for IpcMode/PidMode "container:<id>": the
   * daemon resolves the id to /proc/<pid>/ns/ipc or /proc/<pid>/ns/pid. For a shared IPC
   * namespace, `shmPath` is that container's /dev/shm on the host.
   */
  joinIpc?: { nsPath: string; shmPath?: string };
  joinPid?: { nsPath: string };
  /** The host's cgroup features; detected when not given (tests pass their own). */
  cgroups?: CgroupFeatures;
}

/** The PATH a container gets when its image sets none. */
export const DEFAULT_PATH_ENV = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** Where --init's binary appears in the container. */
export const CONTAINER_INIT_PATH = '/sbin/docker-init';

/** /proc and /sys paths a container cannot read (Docker's list). */
export function defaultMaskedPaths(): string[] {
  const paths = [
    '/proc/acpi', '/proc/asound', '/proc/interrupts', '/proc/kcore', '/proc/keys', '/proc/latency_stats',
    '/proc/sched_debug', '/proc/scsi', '/proc/timer_list', '/proc/timer_stats', '/sys/devices/virtual/powercap',
    '/sys/firmware',
  ];
  // Per-CPU thermal throttle counters leak host activity (as Docker, only where they exist).
  try {
    const cpus = readdirSync('/sys/devices/system/cpu').filter((n) => /^cpu\d+$/.test(n));
    cpus.sort((a, b) => Number(a.slice(3)) - Number(b.slice(3)));
    for (const cpu of cpus) {
      const path = `/sys/devices/system/cpu/${cpu}/thermal_throttle`;
      if (existsSync(path)) paths.push(path);
    }
  } catch {
    // no sysfs
  }
  return paths;
}

/** /proc paths a container can read but not write (Docker's list). */
export function defaultReadonlyPaths(): string[] {
  return ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'];
}

/**
 * Docker's environment merge: PATH, HOSTNAME and (with a TTY) TERM first, then the
 * container's own entries, which replace a default of the same name; an entry without "="
 * removes that name.
 */
export function mergeEnv(defaults: readonly string[], overrides: readonly string[]): string[] {
  const env: Array<string | undefined> = [...defaults];
  const index = new Map<string, number>();
  env.forEach((e, i) => index.set((e ?? '').split('=')[0] ?? '', i));
  for (const value of overrides) {
    const eq = value.indexOf('=');
    const key = eq < 0 ? value : value.slice(0, eq);
    const at = index.get(key);
    if (eq < 0) {
      if (at !== undefined) env[at] = undefined;
      continue;
    }
    if (at !== undefined && env[at] !== undefined) {
      env[at] = value;
    } else {
      index.set(key, env.length);
      env.push(value);
    }
  }
  return env.filter((e): e is string => e !== undefined);
}

/** The process args: entrypoint then cmd; Docker's error when both are empty. */
export function processArgs(config: ContainerConfig): string[] {
  const args = [...(config.Entrypoint ?? []), ...(config.Cmd ?? [])];
  if (args.length === 0) throw new InvalidArgument('no command specified');
  return args;
}

type NamespaceMode = { kind: 'private' } | { kind: 'host' } | { kind: 'none' } | { kind: 'container'; id: string };

function namespaceMode(what: string, value: string | undefined, allowed: readonly string[]): NamespaceMode {
  const v = value ?? '';
  if (v === '' || v === 'private' || v === 'shareable' || (v === 'none' && allowed.includes('none'))) {
    return v === 'none' ? { kind: 'none' } : { kind: 'private' };
  }
  if (v === 'host') return { kind: 'host' };
  if (v.startsWith('container:') && allowed.includes('container') && v.length > 'container:'.length) {
    return { kind: 'container', id: v.slice('container:'.length) };
  }
  throw new InvalidArgument(`invalid ${what} mode: ${v}`);
}

const IPC_SYSCTLS = new Set([
  'kernel.msgmax', 'kernel.msgmnb', 'kernel.msgmni', 'kernel.sem', 'kernel.shmall', 'kernel.shmmax',
  'kernel.shmmni', 'kernel.shm_rmid_forced',
]);

/** runc's rules for which sysctls a container may set, checked early with its messages. */
function checkSysctl(name: string, namespaces: readonly OciNamespace[], hostNetwork: boolean): void {
  const has = (type: OciNamespace['type']): boolean => namespaces.some((n) => n.type === type);
  if (!/^[a-z0-9_]+(\.[a-zA-Z0-9_\-]+)+$/.test(name)) throw new InvalidArgument(`invalid sysctl name "${name}"`);
  if (IPC_SYSCTLS.has(name) || name.startsWith('fs.mqueue.')) {
    if (!has('ipc')) throw new InvalidArgument(`sysctl "${name}" is not allowed in the hosts ipc namespace`);
    return;
  }
  if (name.startsWith('net.')) {
    if (hostNetwork || !has('network')) throw new InvalidArgument(`sysctl "${name}" is not allowed in the hosts network namespace`);
    return;
  }
  if (has('uts') && name === 'kernel.domainname') return;
  if (has('uts') && name === 'kernel.hostname') {
    throw new InvalidArgument(`sysctl "${name}" is not allowed as it conflicts with the OCI "hostname" field`);
  }
  throw new InvalidArgument(`sysctl "${name}" is not in a separate kernel namespace`);
}

function sysctlExists(name: string): boolean {
  return existsSync(`/proc/sys/${name.replaceAll('.', '/')}`);
}

/** Checks of the HostConfig that need no container: call at create to fail early. */
export function validateHostConfig(hostConfig: HostConfig, cgroups: CgroupFeatures = cgroupFeatures()): void {
  validateResources(hostConfig, cgroups);
  buildRlimits(hostConfig.Ulimits ?? []);
  parseSecurityOpts(hostConfig.SecurityOpt);
  tweakCapabilities({ capAdd: hostConfig.CapAdd, capDrop: hostConfig.CapDrop, privileged: hostConfig.Privileged === true });
  namespaceMode('IPC', hostConfig.IpcMode, ['none', 'container']);
  namespaceMode('PID', hostConfig.PidMode, ['container']);
  namespaceMode('UTS', hostConfig.UTSMode, []);
  if ((hostConfig.ShmSize ?? 0) < 0) throw new InvalidArgument('SHM size can not be less than 0');
}

/** The spec for one container. Reads the container's /etc/passwd and /etc/group safely. */
export async function buildSpec(input: SpecInput): Promise<OciSpec> {
  const { config, hostConfig: hc } = input;
  const privileged = hc.Privileged === true;
  const cgroups = input.cgroups ?? cgroupFeatures();
  validateHostConfig(hc, cgroups);
  if (!/^[0-9a-f]{64}$/.test(input.id)) throw new InvalidArgument(`invalid container id "${input.id}"`);
  if (!posix.isAbsolute(input.rootfs)) throw new InvalidArgument(`container root ${input.rootfs} is not an absolute path`);
  const security = parseSecurityOpts(hc.SecurityOpt);

  // Namespaces, in Docker's order.
  const networkMode = hc.NetworkMode ?? '';
  const hostNetwork = input.netns === 'host' || networkMode === 'host';
  const ipc = namespaceMode('IPC', hc.IpcMode, ['none', 'container']);
  const pid = namespaceMode('PID', hc.PidMode, ['container']);
  const uts = namespaceMode('UTS', hc.UTSMode, []);
  const namespaces: OciNamespace[] = [{ type: 'mount' }];
  if (!hostNetwork) namespaces.push(input.netns ? { type: 'network', path: input.netns } : { type: 'network' });
  if (uts.kind !== 'host') namespaces.push({ type: 'uts' });
  if (pid.kind === 'container') {
    if (!input.joinPid) throw new NotImplemented(`PID mode ${hc.PidMode}: the daemon must give the namespace path to join (joinPid)`);
    namespaces.push({ type: 'pid', path: input.joinPid.nsPath });
  } else if (pid.kind !== 'host') {
    namespaces.push({ type: 'pid' });
  }
  if (ipc.kind === 'container') {
    if (!input.joinIpc) throw new NotImplemented(`IPC mode ${hc.IpcMode}: the daemon must give the namespace path to join (joinIpc)`);
    namespaces.push({ type: 'ipc', path: input.joinIpc.nsPath });
  } else if (ipc.kind !== 'host') {
    namespaces.push({ type: 'ipc' });
  }
  // Docker's default on cgroup v2 is a private cgroup namespace.
  if (cgroups.v2) namespaces.push({ type: 'cgroup' });

  // Hostname: Docker's daemon names a container after its short id; with the host's
  // network it takes the host's name.
  let hostname: string | undefined;
  if (uts.kind !== 'host') {
    hostname = config.Hostname || (hostNetwork ? osHostname() : input.id.slice(0, 12));
    if (hostname.length > 64) throw new InvalidArgument(`invalid hostname: '${hostname}' - Hostname exceeds 64 bytes`);
  }

  // Process.
  let args = processArgs(config);
  const cwd = config.WorkingDir || '/';
  if (!posix.isAbsolute(cwd)) {
    throw new InvalidArgument(`the working directory '${cwd}' is invalid, it needs to be an absolute path`);
  }
  const defaultsEnv = [`PATH=${DEFAULT_PATH_ENV}`, `HOSTNAME=${hostname ?? osHostname()}`];
  if (config.Tty) defaultsEnv.push('TERM=xterm');
  const env = mergeEnv(defaultsEnv, config.Env ?? []);
  const user = await resolveUser(input.rootfs, config.User, hc.GroupAdd ?? []);
  const capabilities = tweakCapabilities({ capAdd: hc.CapAdd, capDrop: hc.CapDrop, privileged });
  const rlimits = buildRlimits(hc.Ulimits ?? []);

  // Mounts: Docker's defaults, less those a user mount replaces; then the user's.
  const userMounts: OciMount[] = [];
  let rootfsPropagation: string | undefined;
  const roBind = readOnlyBindOption();
  const readonlyRoot = hc.ReadonlyRootfs === true;
  for (const raw of hc.Binds ?? []) {
    const bind = parseBind(raw);
    userMounts.push(bind.mount);
    if (bind.propagation === 'shared' || bind.propagation === 'rshared') rootfsPropagation = 'shared';
    else if ((bind.propagation === 'slave' || bind.propagation === 'rslave') && rootfsPropagation !== 'shared') rootfsPropagation = 'rslave';
  }
  for (const [destination, data] of Object.entries(hc.Tmpfs ?? {})) userMounts.push(tmpfsMount(destination, data));
  const seen = new Set<string>();
  for (const m of userMounts) {
    if (seen.has(m.destination)) throw new InvalidArgument(`Duplicate mount point: ${m.destination}`);
    seen.add(m.destination);
  }
  const fileBind = (source: string, destination: string): OciMount => ({
    destination,
    type: 'bind',
    source,
    options: ['rbind', 'rprivate', ...(readonlyRoot ? [roBind] : [])],
  });
  for (const [source, destination] of [
    [input.resolvConfPath, '/etc/resolv.conf'],
    [input.hostnamePath, '/etc/hostname'],
    [input.hostsPath, '/etc/hosts'],
  ] as const) {
    if (!seen.has(destination)) {
      userMounts.push(fileBind(source, destination));
      seen.add(destination);
    }
  }
  if (ipc.kind === 'host' && !seen.has('/dev/shm')) {
    userMounts.push({ destination: '/dev/shm', type: 'bind', source: '/dev/shm', options: ['rbind', 'rprivate'] });
    seen.add('/dev/shm');
  } else if (ipc.kind === 'container' && input.joinIpc?.shmPath && !seen.has('/dev/shm')) {
    userMounts.push({ destination: '/dev/shm', type: 'bind', source: input.joinIpc.shmPath, options: ['rbind', 'rprivate'] });
    seen.add('/dev/shm');
  }

  const writableCgroups = security.writableCgroups ?? privileged;
  const userDev = seen.has('/dev');
  const mounts: OciMount[] = [];
  for (const m of defaultMounts(hc.ShmSize && hc.ShmSize > 0 ? hc.ShmSize : DEFAULT_SHM_SIZE)) {
    if (seen.has(m.destination)) continue;
    if (userDev && m.destination.startsWith('/dev/')) continue;
    if (m.destination === '/dev/shm' && ipc.kind === 'none') continue;
    let options = m.options ?? [];
    if (readonlyRoot && !['/proc', '/dev/pts', '/dev/shm', '/dev/mqueue', '/dev'].includes(m.destination) && !options.includes('ro')) {
      options = [...options, 'ro'];
    }
    if ((privileged && m.destination === '/sys') || (writableCgroups && m.type === 'cgroup')) {
      options = options.filter((o) => o !== 'ro');
    }
    mounts.push({ ...m, options });
  }
  if (hc.Init === true && pid.kind === 'private') {
    if (!input.initPath) {
      throw new Unavailable('--init: the daemon has no init binary (docker-init) to run; install tini (tini-static)');
    }
    args = [CONTAINER_INIT_PATH, '--', ...args];
    mounts.push({ destination: CONTAINER_INIT_PATH, type: 'bind', source: input.initPath, options: ['bind', 'ro'] });
  }
  mounts.push(...sortMounts(userMounts));

  // Devices.
  let devices: OciDevice[] = [];
  let deviceRules = defaultDeviceRules();
  if (privileged) {
    devices = hostDevices();
    for (const d of hc.Devices ?? []) {
      if (d.PathOnHost === d.PathInContainer) continue;
      devices.push(...devicesFromPath({ PathOnHost: d.PathOnHost, PathInContainer: d.PathInContainer, CgroupPermissions: 'rwm' }).devices);
    }
    deviceRules = [allowAllDevicesRule()];
  } else {
    for (const d of hc.Devices ?? []) {
      const mapped = devicesFromPath(d);
      devices.push(...mapped.devices);
      deviceRules.push(...mapped.rules);
    }
  }

  // Sysctls: Docker's two for a container with its own network, then the user's.
  const sysctl: Record<string, string> = {};
  const privateNetwork = !hostNetwork && !networkMode.startsWith('container:');
  if (privateNetwork) {
    if (sysctlExists('net.ipv4.ping_group_range')) sysctl['net.ipv4.ping_group_range'] = '0 2147483647';
    if (sysctlExists('net.ipv4.ip_unprivileged_port_start')) sysctl['net.ipv4.ip_unprivileged_port_start'] = '0';
  }
  for (const [name, value] of Object.entries(hc.Sysctls ?? {})) {
    checkSysctl(name, namespaces, hostNetwork);
    sysctl[name] = value;
  }

  const spec: OciSpec = {
    ociVersion: '1.0.2-dev',
    process: {
      terminal: config.Tty === true,
      user: { uid: user.uid, gid: user.gid, additionalGids: user.additionalGids },
      args,
      env,
      cwd,
      capabilities: { bounding: capabilities, effective: capabilities, permitted: capabilities },
    },
    root: { path: input.rootfs, readonly: readonlyRoot },
    mounts,
    linux: {
      namespaces,
      cgroupsPath: input.cgroupsPath,
      resources: { devices: deviceRules },
      devices,
    },
  };
  if (rlimits.length > 0) spec.process.rlimits = rlimits;
  if (security.noNewPrivileges) spec.process.noNewPrivileges = true;
  if (hostname !== undefined) spec.hostname = hostname;
  if (config.Domainname && uts.kind !== 'host') spec.domainname = config.Domainname;
  if (rootfsPropagation) spec.linux.rootfsPropagation = rootfsPropagation;
  if (Object.keys(sysctl).length > 0) spec.linux.sysctl = sysctl;

  const memory = memoryResources(hc, cgroups);
  const cpu = cpuResources(hc);
  const pids = pidsResources(hc);
  if (memory) spec.linux.resources.memory = memory;
  if (cpu) spec.linux.resources.cpu = cpu;
  if (pids) spec.linux.resources.pids = pids;

  if (!privileged) {
    spec.linux.maskedPaths = hc.MaskedPaths ? [...hc.MaskedPaths] : defaultMaskedPaths();
    spec.linux.readonlyPaths = hc.ReadonlyPaths ? [...hc.ReadonlyPaths] : defaultReadonlyPaths();
  }

  // Seccomp: none when unconfined, and none for --privileged unless a profile was given.
  if (security.seccomp !== 'unconfined' && !(privileged && security.seccomp === 'default')) {
    const profile = security.seccomp === 'default' ? defaultSeccompProfile() : security.seccomp;
    spec.linux.seccomp = compileSeccompProfile(profile, { capabilities });
  }
  return spec;
}

const INFINITY_MARK = '__berth_rlim_infinity__';

/**
 * config.json text for a spec. Unlimited rlimits (Infinity) become 18446744073709551615,
 * which JSON.stringify would turn into null (and runc into 0).
 */
export function specJson(spec: OciSpec, indent?: number): string {
  const text = JSON.stringify(spec, (key, value: unknown) => ((key === 'hard' || key === 'soft') && value === Infinity ? INFINITY_MARK : value), indent);
  return text.replaceAll(`"${INFINITY_MARK}"`, RLIM_INFINITY_JSON);
}
