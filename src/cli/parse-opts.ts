/**
 * `run` and `create` flags turned into the Engine API's Config, HostConfig and
 * NetworkingConfig, as the docker CLI (v28) builds them: the same validation, the same
 * messages, and the same JSON body (zero values included), so berthd sees from `berth run`
 * exactly what it would see from `docker run`.
 *
 * Two kinds of failure, as docker has them:
 * - a flag value that does not parse (`-m x`) is a UsageError: `invalid argument "x" for
 *   "-m, --memory" flag: invalid size: 'x'`, exit 125;
 * - a combination or a file that does not work out (`--rm --restart always`, a missing
 *   --env-file) is a ContainerOptsError, printed as `berth: <message>` with a hint, exit 125.
 */
import { readFileSync } from 'node:fs';
import { isAbsolute, posix, resolve } from 'node:path';
import type { FlagSpec, ParsedArgs } from './args.js';
import { UsageError } from './args.js';
import { quote } from '../util/go-fmt.js';
import { parseBytes } from '../util/units.js';

// --- the API's types, as the docker CLI sends them ------------------------------------

export interface HealthConfig {
  Test?: string[];
  Interval?: number;
  Timeout?: number;
  StartPeriod?: number;
  StartInterval?: number;
  Retries?: number;
}

export interface ContainerConfig {
  Hostname: string;
  Domainname: string;
  User: string;
  AttachStdin: boolean;
  AttachStdout: boolean;
  AttachStderr: boolean;
  ExposedPorts?: Record<string, Record<string, never>>;
  Tty: boolean;
  OpenStdin: boolean;
  StdinOnce: boolean;
  Env: string[] | null;
  Cmd: string[] | null;
  Healthcheck?: HealthConfig;
  Image: string;
  Volumes: Record<string, Record<string, never>>;
  WorkingDir: string;
  Entrypoint: string[] | null;
  MacAddress?: string;
  OnBuild: string[] | null;
  Labels: Record<string, string>;
  StopSignal?: string;
  StopTimeout?: number;
}

export interface PortBinding {
  HostIp: string;
  HostPort: string;
}

export interface Ulimit {
  Name: string;
  Hard: number;
  Soft: number;
}

export interface DeviceMapping {
  PathOnHost: string;
  PathInContainer: string;
  CgroupPermissions: string;
}

export interface DeviceRequest {
  Driver: string;
  Count: number;
  DeviceIDs: string[] | null;
  Capabilities: string[][] | null;
  Options: Record<string, string> | null;
}

export interface Mount {
  Type?: string;
  Source?: string;
  Target?: string;
  ReadOnly?: boolean;
  Consistency?: string;
  BindOptions?: {
    Propagation?: string;
    NonRecursive?: boolean;
    CreateMountpoint?: boolean;
    ReadOnlyNonRecursive?: boolean;
    ReadOnlyForceRecursive?: boolean;
  };
  VolumeOptions?: {
    NoCopy?: boolean;
    Labels?: Record<string, string>;
    Subpath?: string;
    DriverConfig?: { Name?: string; Options?: Record<string, string> };
  };
  ImageOptions?: { Subpath?: string };
  TmpfsOptions?: { SizeBytes?: number; Mode?: number; Options?: string[][] };
}

export interface HostConfig {
  Binds: string[] | null;
  ContainerIDFile: string;
  LogConfig: { Type: string; Config: Record<string, string> };
  NetworkMode: string;
  PortBindings: Record<string, PortBinding[]>;
  RestartPolicy: { Name: string; MaximumRetryCount: number };
  AutoRemove: boolean;
  VolumeDriver: string;
  VolumesFrom: string[] | null;
  ConsoleSize: [number, number];
  Annotations?: Record<string, string>;
  CapAdd: string[] | null;
  CapDrop: string[] | null;
  CgroupnsMode: string;
  Dns: string[];
  DnsOptions: string[];
  DnsSearch: string[];
  ExtraHosts: string[] | null;
  GroupAdd: string[] | null;
  IpcMode: string;
  Cgroup: string;
  Links: string[] | null;
  OomScoreAdj: number;
  PidMode: string;
  Privileged: boolean;
  PublishAllPorts: boolean;
  ReadonlyRootfs: boolean;
  SecurityOpt: string[] | null;
  StorageOpt?: Record<string, string>;
  Tmpfs?: Record<string, string>;
  UTSMode: string;
  UsernsMode: string;
  ShmSize: number;
  Sysctls?: Record<string, string>;
  Runtime?: string;
  Isolation: string;
  CpuShares: number;
  Memory: number;
  NanoCpus: number;
  CgroupParent: string;
  BlkioWeight: number;
  BlkioWeightDevice: Array<{ Path: string; Weight: number }>;
  BlkioDeviceReadBps: Array<{ Path: string; Rate: number }>;
  BlkioDeviceWriteBps: Array<{ Path: string; Rate: number }>;
  BlkioDeviceReadIOps: Array<{ Path: string; Rate: number }>;
  BlkioDeviceWriteIOps: Array<{ Path: string; Rate: number }>;
  CpuPeriod: number;
  CpuQuota: number;
  CpuRealtimePeriod: number;
  CpuRealtimeRuntime: number;
  CpusetCpus: string;
  CpusetMems: string;
  Devices: DeviceMapping[];
  DeviceCgroupRules: string[] | null;
  DeviceRequests: DeviceRequest[] | null;
  MemoryReservation: number;
  MemorySwap: number;
  MemorySwappiness: number;
  OomKillDisable: boolean;
  PidsLimit: number;
  Ulimits: Ulimit[];
  CpuCount: number;
  CpuPercent: number;
  IOMaximumIOps: number;
  IOMaximumBandwidth: number;
  Mounts?: Mount[];
  MaskedPaths: string[] | null;
  ReadonlyPaths: string[] | null;
  Init?: boolean;
}

export interface EndpointSettings {
  IPAMConfig: { IPv4Address?: string; IPv6Address?: string; LinkLocalIPs?: string[] } | null;
  Links: string[] | null;
  Aliases: string[] | null;
  MacAddress: string;
  DriverOpts: Record<string, string> | null;
  GwPriority: number;
  NetworkID: string;
  EndpointID: string;
  Gateway: string;
  IPAddress: string;
  IPPrefixLen: number;
  IPv6Gateway: string;
  GlobalIPv6Address: string;
  GlobalIPv6PrefixLen: number;
  DNSNames: string[] | null;
}

export interface NetworkingConfig {
  EndpointsConfig: Record<string, EndpointSettings>;
}

/** What `POST /containers/create` takes: the Config with HostConfig and NetworkingConfig. */
export interface CreateRequest extends ContainerConfig {
  HostConfig: HostConfig;
  NetworkingConfig: NetworkingConfig;
}

/** A run/create command line that flag parsing accepted but that does not add up. */
export class ContainerOptsError extends Error {}

/** What the parser needs from the outside world; tests replace it. */
export interface OptsEnvironment {
  /** os.LookupEnv: `-e NAME` and env-file lines without "=" take their value from here. */
  lookupEnv(name: string): string | undefined;
  /** For relative bind sources ("./data"). */
  cwd(): string;
  readFile(path: string): Buffer;
  /** [height, width] of the terminal on stdout, [0, 0] when it is not one. */
  consoleSize(): [number, number];
}

export const processEnvironment: OptsEnvironment = {
  lookupEnv: (name) => process.env[name],
  cwd: () => process.cwd(),
  readFile: (path) => readFileSync(path),
  consoleSize: () => (process.stdout.isTTY ? [process.stdout.rows ?? 0, process.stdout.columns ?? 0] : [0, 0]),
};

// --- the flags ------------------------------------------------------------------------

/** The flags that make the container's configuration, shared by run and create. */
export const CONTAINER_FLAGS: FlagSpec[] = [
  { name: 'add-host', type: 'list', description: 'Add a custom host-to-IP mapping (host:ip)' },
  { name: 'annotation', type: 'list', placeholder: 'map', description: 'Add an annotation to the container (passed through to the OCI runtime)' },
  { name: 'attach', short: 'a', type: 'list', description: 'Attach to STDIN, STDOUT or STDERR' },
  { name: 'blkio-weight', type: 'string', placeholder: 'uint16', description: 'Block IO (relative weight), between 10 and 1000, or 0 to disable (default 0)' },
  { name: 'cap-add', type: 'list', description: 'Add Linux capabilities' },
  { name: 'cap-drop', type: 'list', description: 'Drop Linux capabilities' },
  { name: 'cgroup-parent', type: 'string', description: 'Optional parent cgroup for the container' },
  { name: 'cgroupns', type: 'string', description: 'Cgroup namespace to use (host|private)' },
  { name: 'cidfile', type: 'string', description: 'Write the container ID to the file' },
  { name: 'cpu-period', type: 'int', description: 'Limit CPU CFS (Completely Fair Scheduler) period' },
  { name: 'cpu-quota', type: 'int', description: 'Limit CPU CFS (Completely Fair Scheduler) quota' },
  { name: 'cpu-rt-period', type: 'int', description: 'Limit CPU real-time period in microseconds' },
  { name: 'cpu-rt-runtime', type: 'int', description: 'Limit CPU real-time runtime in microseconds' },
  { name: 'cpu-shares', short: 'c', type: 'int', description: 'CPU shares (relative weight)' },
  { name: 'cpus', type: 'string', placeholder: 'decimal', description: 'Number of CPUs' },
  { name: 'cpuset-cpus', type: 'string', description: 'CPUs in which to allow execution (0-3, 0,1)' },
  { name: 'cpuset-mems', type: 'string', description: 'MEMs in which to allow execution (0-3, 0,1)' },
  { name: 'device', type: 'list', description: 'Add a host device to the container' },
  { name: 'device-cgroup-rule', type: 'list', description: 'Add a rule to the cgroup allowed devices list' },
  { name: 'dns', type: 'list', description: 'Set custom DNS servers' },
  { name: 'dns-opt', type: 'list', description: 'Set DNS options' },
  { name: 'dns-option', type: 'list', description: 'Set DNS options' },
  { name: 'dns-search', type: 'list', description: 'Set custom DNS search domains' },
  { name: 'domainname', type: 'string', description: 'Container NIS domain name' },
  { name: 'entrypoint', type: 'string', description: 'Overwrite the default ENTRYPOINT of the image' },
  { name: 'env', short: 'e', type: 'list', description: 'Set environment variables' },
  { name: 'env-file', type: 'list', description: 'Read in a file of environment variables' },
  { name: 'expose', type: 'list', description: 'Expose a port or a range of ports' },
  { name: 'group-add', type: 'list', description: 'Add additional groups to join' },
  { name: 'health-cmd', type: 'string', description: 'Command to run to check health' },
  { name: 'health-interval', type: 'string', placeholder: 'duration', description: 'Time between running the check (ms|s|m|h) (default 0s)' },
  { name: 'health-retries', type: 'int', description: 'Consecutive failures needed to report unhealthy' },
  { name: 'health-start-interval', type: 'string', placeholder: 'duration', description: 'Time between running the check during the start period (ms|s|m|h) (default 0s)' },
  { name: 'health-start-period', type: 'string', placeholder: 'duration', description: 'Start period for the container to initialize before starting health-retries countdown (ms|s|m|h) (default 0s)' },
  { name: 'health-timeout', type: 'string', placeholder: 'duration', description: 'Maximum time to allow one check to run (ms|s|m|h) (default 0s)' },
  { name: 'hostname', short: 'h', type: 'string', description: 'Container host name' },
  { name: 'init', type: 'bool', description: 'Run an init inside the container that forwards signals and reaps processes' },
  { name: 'interactive', short: 'i', type: 'bool', description: 'Keep STDIN open even if not attached' },
  { name: 'ip', type: 'string', description: 'IPv4 address (e.g., 172.30.100.104)' },
  { name: 'ip6', type: 'string', description: 'IPv6 address (e.g., 2001:db8::33)' },
  { name: 'ipc', type: 'string', description: 'IPC mode to use' },
  { name: 'isolation', type: 'string', description: 'Container isolation technology' },
  { name: 'kernel-memory', type: 'string', placeholder: 'bytes', description: 'Kernel memory limit' },
  { name: 'label', short: 'l', type: 'list', description: 'Set meta data on a container' },
  { name: 'label-file', type: 'list', description: 'Read in a line delimited file of labels' },
  { name: 'link', type: 'list', description: 'Add link to another container' },
  { name: 'link-local-ip', type: 'list', description: 'Container IPv4/IPv6 link-local addresses' },
  { name: 'log-driver', type: 'string', description: 'Logging driver for the container' },
  { name: 'log-opt', type: 'list', description: 'Log driver options' },
  { name: 'mac-address', type: 'string', description: 'Container MAC address (e.g., 92:d0:c6:0a:29:33)' },
  { name: 'memory', short: 'm', type: 'string', placeholder: 'bytes', description: 'Memory limit' },
  { name: 'memory-reservation', type: 'string', placeholder: 'bytes', description: 'Memory soft limit' },
  { name: 'memory-swap', type: 'string', placeholder: 'bytes', description: "Swap limit equal to memory plus swap: '-1' to enable unlimited swap" },
  { name: 'memory-swappiness', type: 'int', default: -1, description: 'Tune container memory swappiness (0 to 100)' },
  { name: 'mount', type: 'list', placeholder: 'mount', description: 'Attach a filesystem mount to the container' },
  { name: 'net', type: 'list', placeholder: 'network', description: 'Connect a container to a network' },
  { name: 'net-alias', type: 'list', description: 'Add network-scoped alias for the container' },
  { name: 'network', type: 'list', placeholder: 'network', description: 'Connect a container to a network' },
  { name: 'network-alias', type: 'list', description: 'Add network-scoped alias for the container' },
  { name: 'no-healthcheck', type: 'bool', description: 'Disable any container-specified HEALTHCHECK' },
  { name: 'oom-kill-disable', type: 'bool', description: 'Disable OOM Killer' },
  { name: 'oom-score-adj', type: 'int', description: "Tune host's OOM preferences (-1000 to 1000)" },
  { name: 'pid', type: 'string', description: 'PID namespace to use' },
  { name: 'pids-limit', type: 'int', description: 'Tune container pids limit (set -1 for unlimited)' },
  { name: 'privileged', type: 'bool', description: 'Give extended privileges to this container' },
  { name: 'publish', short: 'p', type: 'list', description: "Publish a container's port(s) to the host" },
  { name: 'publish-all', short: 'P', type: 'bool', description: 'Publish all exposed ports to random ports' },
  { name: 'read-only', type: 'bool', description: "Mount the container's root filesystem as read only" },
  { name: 'restart', type: 'string', default: 'no', description: 'Restart policy to apply when a container exits' },
  { name: 'rm', type: 'bool', description: 'Automatically remove the container and its associated anonymous volumes when it exits' },
  { name: 'runtime', type: 'string', description: 'Runtime to use for this container' },
  { name: 'security-opt', type: 'list', description: 'Security Options' },
  { name: 'shm-size', type: 'string', placeholder: 'bytes', description: 'Size of /dev/shm' },
  { name: 'stop-signal', type: 'string', description: 'Signal to stop the container' },
  { name: 'stop-timeout', type: 'int', description: 'Timeout (in seconds) to stop a container' },
  { name: 'storage-opt', type: 'list', description: 'Storage driver options for the container' },
  { name: 'sysctl', type: 'list', placeholder: 'map', description: 'Sysctl options' },
  { name: 'tmpfs', type: 'list', description: 'Mount a tmpfs directory' },
  { name: 'tty', short: 't', type: 'bool', description: 'Allocate a pseudo-TTY' },
  { name: 'ulimit', type: 'list', placeholder: 'ulimit', description: 'Ulimit options' },
  { name: 'user', short: 'u', type: 'string', description: 'Username or UID (format: <name|uid>[:<group|gid>])' },
  { name: 'userns', type: 'string', description: 'User namespace to use' },
  { name: 'uts', type: 'string', description: 'UTS namespace to use' },
  { name: 'volume', short: 'v', type: 'list', description: 'Bind mount a volume' },
  { name: 'volume-driver', type: 'string', description: 'Optional volume driver for the container' },
  { name: 'volumes-from', type: 'list', description: 'Mount volumes from the specified container(s)' },
  { name: 'workdir', short: 'w', type: 'string', description: 'Working directory inside the container' },
];

/** Flags both run and create have beside the container's configuration. */
export const CREATE_FLAGS: FlagSpec[] = [
  { name: 'disable-content-trust', type: 'bool', default: true, description: 'Skip image verification' },
  { name: 'name', type: 'string', description: 'Assign a name to the container' },
  { name: 'platform', type: 'string', description: 'Set platform if server is multi-platform capable' },
  { name: 'pull', type: 'string', default: 'missing', description: 'Pull image before creating ("always", "missing", "never")' },
  { name: 'quiet', short: 'q', type: 'bool', description: 'Suppress the pull output' },
];

/** Flags only run has. */
export const RUN_ONLY_FLAGS: FlagSpec[] = [
  { name: 'detach', short: 'd', type: 'bool', description: 'Run container in background and print container ID' },
  { name: 'detach-keys', type: 'string', description: 'Override the key sequence for detaching a container' },
  { name: 'sig-proxy', type: 'bool', default: true, description: 'Proxy received signals to the process' },
];

export function sortedFlags(...groups: FlagSpec[][]): FlagSpec[] {
  return groups.flat().sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

// --- parsing --------------------------------------------------------------------------

export interface ParsedContainer {
  config: ContainerConfig;
  hostConfig: HostConfig;
  networkingConfig: NetworkingConfig;
  /** The streams -a named (lower case), empty when -a was not given. */
  attach: string[];
}

/** The create request's body: Config with HostConfig and NetworkingConfig inside. */
export function createRequestBody(p: ParsedContainer): CreateRequest {
  return { ...p.config, HostConfig: p.hostConfig, NetworkingConfig: p.networkingConfig };
}

/**
 * Config, HostConfig and NetworkingConfig from run/create flags. `a.args` holds the image
 * and the command. Throws UsageError for a flag value that does not parse and
 * ContainerOptsError for options that do not work together.
 */
export function parseContainerOptions(a: ParsedArgs, env: OptsEnvironment = processEnvironment): ParsedContainer {
  const flag = (name: string): FlagSpec => CONTAINER_FLAGS.find((f) => f.name === name)!;
  const bad = (name: string, value: string, message: string): UsageError => {
    const f = flag(name);
    return new UsageError(`invalid argument ${quote(value)} for "${f.short ? `-${f.short}, ` : ''}--${f.name}" flag: ${message}`);
  };
  /** A list flag's values through a docker validator, which may rewrite them. */
  const validated = (name: string, validate: (v: string) => string): string[] =>
    a.list(name).map((v) => {
      try {
        return validate(v);
      } catch (err) {
        throw bad(name, v, (err as Error).message);
      }
    });
  const parsedValue = <T>(name: string, parse: (v: string) => T, fallback: T): T => {
    const v = a.string(name);
    if (v === undefined) return fallback;
    try {
      return parse(v);
    } catch (err) {
      throw bad(name, v, (err as Error).message);
    }
  };
  const bytes = (name: string): number => parsedValue(name, (v) => parseBytes(v), 0);
  const duration = (name: string): number => parsedValue(name, parseGoDuration, 0);
  const int = (name: string): number => a.int(name) ?? 0;

  // Flag values first, as pflag would refuse them while reading the command line.
  const attachValues = validated('attach', validateAttach);
  const envValues = validated('env', (v) => validateEnv(v, env));
  const labelValues = validated('label', validateLabel);
  const extraHosts = validated('add-host', validateExtraHost);
  const dns = validated('dns', validateIpAddress);
  const dnsSearch = validated('dns-search', validateDnsSearch);
  const links = validated('link', validateLink);
  const deviceCgroupRules = validated('device-cgroup-rule', validateDeviceCgroupRule);
  const sysctls = mapOf(validated('sysctl', validateSysctl));
  const annotations = mapOf(a.list('annotation'));
  const ulimits = new Map<string, Ulimit>();
  for (const u of validated('ulimit', (v) => v)) {
    try {
      const parsed = parseUlimit(u);
      ulimits.set(parsed.Name, parsed);
    } catch (err) {
      throw bad('ulimit', u, (err as Error).message);
    }
  }
  const memory = bytes('memory');
  const memoryReservation = bytes('memory-reservation');
  const memorySwap = parsedValue('memory-swap', (v) => (v === '-1' ? -1 : parseBytes(v)), 0);
  const shmSize = bytes('shm-size');
  bytes('kernel-memory'); // deprecated and ignored, as docker ignores it, but still validated
  const nanoCpus = parsedValue('cpus', parseCpus, 0);
  const blkioWeight = parsedValue('blkio-weight', (v) => parseUint(v, 16), 0);
  const mounts: Mount[] = [];
  for (const m of a.list('mount')) {
    try {
      mounts.push(parseMount(m, env));
    } catch (err) {
      throw bad('mount', m, (err as Error).message);
    }
  }
  const networks: NetworkAttachment[] = [];
  for (const name of ['net', 'network']) {
    for (const v of a.list(name)) {
      try {
        networks.push(parseNetworkOpt(v));
      } catch (err) {
        throw bad(name, v, (err as Error).message);
      }
    }
  }
  const health = {
    interval: duration('health-interval'),
    timeout: duration('health-timeout'),
    startPeriod: duration('health-start-period'),
    startInterval: duration('health-start-interval'),
  };

  // Then docker's parse(): the options together.
  const attachStdin = attachValues.includes('stdin') || a.bool('interactive');
  const attachStdout = attachValues.length === 0 || attachValues.includes('stdout');
  const attachStderr = attachValues.length === 0 || attachValues.includes('stderr');

  const mac = a.string('mac-address') ?? '';
  if (mac !== '' && !isMac(mac.trim())) throw new ContainerOptsError(`${mac} is not a valid mac address`);

  const swappiness = a.int('memory-swappiness') ?? -1;
  if (swappiness !== -1 && (swappiness < 0 || swappiness > 100)) {
    throw new ContainerOptsError(`invalid value: ${swappiness}. Valid memory swappiness range is 0-100`);
  }

  const binds: string[] = [];
  const volumes: Record<string, Record<string, never>> = {};
  for (const spec of unique(a.list('volume'))) {
    const parsed = parseVolume(spec);
    if (parsed.source === '') {
      volumes[spec] = {};
      continue;
    }
    let bind = spec;
    if (parsed.type === 'bind') {
      const colon = spec.indexOf(':');
      if (colon >= 0) {
        let host = spec.slice(0, colon);
        if (!isAbsolute(host) && host.startsWith('.')) host = resolve(env.cwd(), host);
        bind = `${host}:${spec.slice(colon + 1)}`;
      }
    }
    binds.push(bind);
  }

  const tmpfs: Record<string, string> = {};
  for (const t of a.list('tmpfs')) {
    const [k, v] = cut(t, ':');
    tmpfs[k] = v;
  }

  const cmd = a.args.length > 1 ? a.args.slice(1) : null;
  let entrypoint: string[] | null = null;
  const ep = a.string('entrypoint');
  if (ep) entrypoint = [ep];
  else if (a.has('entrypoint')) entrypoint = [''];

  const { exposed, bindings } = parsePortSpecs(convertToStandardNotation(a.list('publish')));
  for (const e of a.list('expose')) {
    if (e.includes(':')) throw new ContainerOptsError(`invalid port format for --expose: ${e}`);
    const [proto, port] = splitProtoPort(e);
    let range: [number, number];
    try {
      range = parsePortRange(port);
    } catch (err) {
      throw new ContainerOptsError(`invalid range format for --expose: ${e}, error: ${(err as Error).message}`);
    }
    for (let p = range[0]; p <= range[1]; p++) exposed.add(`${p}/${proto}`);
  }

  const devices: DeviceMapping[] = [];
  const cdiDevices: string[] = [];
  for (const d of a.list('device')) {
    if (isCdiName(d)) {
      cdiDevices.push(d);
      continue;
    }
    devices.push(parseLinuxDevice(validateLinuxPath(d)));
  }

  const envVariables = readKvStrings(a.list('env-file'), dedupeEnv(envValues), env, true);
  const labels = readKvStrings(a.list('label-file'), labelValues, env, false);

  const pidMode = a.string('pid') ?? '';
  if (!(pidMode === '' || pidMode === 'host' || /^container:.+/.test(pidMode))) throw new ContainerOptsError('--pid: invalid PID mode');
  const utsMode = a.string('uts') ?? '';
  if (!(utsMode === '' || utsMode === 'host')) throw new ContainerOptsError('--uts: invalid UTS mode');
  const usernsMode = a.string('userns') ?? '';
  if (!(usernsMode === '' || usernsMode === 'host')) throw new ContainerOptsError('--userns: invalid USER mode');
  const cgroupnsMode = a.string('cgroupns') ?? '';
  if (!['', 'host', 'private'].includes(cgroupnsMode)) throw new ContainerOptsError('--cgroupns: invalid CGROUP mode');

  const restartPolicy = parseRestartPolicy(a.string('restart') ?? '');

  const logDriver = a.string('log-driver') ?? '';
  const logOpts = a.list('log-opt');
  if (logDriver === 'none' && logOpts.length > 0) throw new ContainerOptsError(`invalid logging opts for driver ${logDriver}`);

  const { securityOpts, maskedPaths, readonlyPaths } = parseSecurityOpts(a.list('security-opt'), env);

  const storageOpts: Record<string, string> = {};
  for (const o of a.list('storage-opt')) {
    if (!o.includes('=')) throw new ContainerOptsError('invalid storage option');
    const [k, v] = cut(o, '=');
    storageOpts[k] = v;
  }

  let healthcheck: HealthConfig | undefined;
  const healthCmd = a.string('health-cmd') ?? '';
  const healthRetries = int('health-retries');
  const haveHealth = healthCmd !== '' || health.interval !== 0 || health.timeout !== 0 || health.startPeriod !== 0 || healthRetries !== 0 || health.startInterval !== 0;
  if (a.bool('no-healthcheck')) {
    if (haveHealth) throw new ContainerOptsError('--no-healthcheck conflicts with --health-* options');
    healthcheck = { Test: ['NONE'] };
  } else if (haveHealth) {
    if (health.interval < 0) throw new ContainerOptsError('--health-interval cannot be negative');
    if (health.timeout < 0) throw new ContainerOptsError('--health-timeout cannot be negative');
    if (healthRetries < 0) throw new ContainerOptsError('--health-retries cannot be negative');
    if (health.startPeriod < 0) throw new ContainerOptsError('--health-start-period cannot be negative');
    if (health.startInterval < 0) throw new ContainerOptsError('--health-start-interval cannot be negative');
    healthcheck = omitZero({
      Test: healthCmd !== '' ? ['CMD-SHELL', healthCmd] : undefined,
      Interval: health.interval,
      Timeout: health.timeout,
      StartPeriod: health.startPeriod,
      StartInterval: health.startInterval,
      Retries: healthRetries,
    });
  }

  const deviceRequests: DeviceRequest[] | null = cdiDevices.length
    ? [{ Driver: 'cdi', Count: 0, DeviceIDs: cdiDevices, Capabilities: null, Options: null }]
    : null;

  const config: ContainerConfig = {
    Hostname: a.string('hostname') ?? '',
    Domainname: a.string('domainname') ?? '',
    User: a.string('user') ?? '',
    AttachStdin: attachStdin,
    AttachStdout: attachStdout,
    AttachStderr: attachStderr,
    ...(exposed.size ? { ExposedPorts: Object.fromEntries([...exposed].map((p) => [p, {}])) } : {}),
    Tty: a.bool('tty'),
    OpenStdin: a.bool('interactive'),
    StdinOnce: false,
    Env: envVariables,
    Cmd: cmd,
    ...(healthcheck ? { Healthcheck: healthcheck } : {}),
    Image: a.args[0] ?? '',
    Volumes: volumes,
    WorkingDir: a.string('workdir') ?? '',
    Entrypoint: entrypoint,
    OnBuild: null,
    Labels: kvMap(labels ?? []),
  };
  const stopSignal = a.string('stop-signal');
  if (stopSignal) config.StopSignal = stopSignal;
  if (a.has('stop-timeout')) config.StopTimeout = int('stop-timeout');

  const hostConfig: HostConfig = {
    Binds: binds.length ? binds : null,
    ContainerIDFile: a.string('cidfile') ?? '',
    LogConfig: { Type: logDriver, Config: kvMap(logOpts) },
    NetworkMode: networks[0]?.target ?? 'default',
    PortBindings: bindings,
    RestartPolicy: restartPolicy,
    AutoRemove: a.bool('rm'),
    VolumeDriver: a.string('volume-driver') ?? '',
    VolumesFrom: orNull(a.list('volumes-from')),
    ConsoleSize: [0, 0],
    ...(Object.keys(annotations).length ? { Annotations: annotations } : {}),
    CapAdd: normalizeCapabilities(a.list('cap-add')),
    CapDrop: normalizeCapabilities(a.list('cap-drop')),
    CgroupnsMode: cgroupnsMode,
    Dns: dns,
    DnsOptions: [...a.list('dns-opt'), ...a.list('dns-option')],
    DnsSearch: dnsSearch,
    ExtraHosts: orNull(extraHosts),
    GroupAdd: orNull(a.list('group-add')),
    IpcMode: a.string('ipc') ?? '',
    Cgroup: '',
    Links: orNull(links),
    OomScoreAdj: int('oom-score-adj'),
    PidMode: pidMode,
    Privileged: a.bool('privileged'),
    PublishAllPorts: a.bool('publish-all'),
    ReadonlyRootfs: a.bool('read-only'),
    SecurityOpt: securityOpts,
    ...(Object.keys(storageOpts).length ? { StorageOpt: storageOpts } : {}),
    ...(Object.keys(tmpfs).length ? { Tmpfs: tmpfs } : {}),
    UTSMode: utsMode,
    UsernsMode: usernsMode,
    ShmSize: shmSize,
    ...(Object.keys(sysctls).length ? { Sysctls: sysctls } : {}),
    ...(a.string('runtime') ? { Runtime: a.string('runtime')! } : {}),
    Isolation: a.string('isolation') ?? '',
    CpuShares: int('cpu-shares'),
    Memory: memory,
    NanoCpus: nanoCpus,
    CgroupParent: a.string('cgroup-parent') ?? '',
    BlkioWeight: blkioWeight,
    BlkioWeightDevice: [],
    BlkioDeviceReadBps: [],
    BlkioDeviceWriteBps: [],
    BlkioDeviceReadIOps: [],
    BlkioDeviceWriteIOps: [],
    CpuPeriod: int('cpu-period'),
    CpuQuota: int('cpu-quota'),
    CpuRealtimePeriod: int('cpu-rt-period'),
    CpuRealtimeRuntime: int('cpu-rt-runtime'),
    CpusetCpus: a.string('cpuset-cpus') ?? '',
    CpusetMems: a.string('cpuset-mems') ?? '',
    Devices: devices,
    DeviceCgroupRules: orNull(deviceCgroupRules),
    DeviceRequests: deviceRequests,
    MemoryReservation: memoryReservation,
    MemorySwap: memorySwap,
    MemorySwappiness: swappiness,
    OomKillDisable: a.bool('oom-kill-disable'),
    PidsLimit: int('pids-limit'),
    Ulimits: [...ulimits.values()].sort((x, y) => (x.Name < y.Name ? -1 : x.Name > y.Name ? 1 : 0)),
    CpuCount: 0,
    CpuPercent: 0,
    IOMaximumIOps: 0,
    IOMaximumBandwidth: 0,
    ...(mounts.length ? { Mounts: mounts } : {}),
    MaskedPaths: maskedPaths,
    ReadonlyPaths: readonlyPaths,
  };

  if (hostConfig.AutoRemove && !(restartPolicy.Name === 'no' || restartPolicy.Name === '')) {
    throw new ContainerOptsError('conflicting options: cannot specify both --restart and --rm');
  }
  if (a.has('init')) hostConfig.Init = a.bool('init');
  if (config.OpenStdin && config.AttachStdin) config.StdinOnce = true;

  const networkingConfig: NetworkingConfig = {
    EndpointsConfig: parseNetworkOpts(networks, {
      aliases: [...a.list('net-alias'), ...a.list('network-alias')],
      links,
      ipv4: a.string('ip') ?? '',
      ipv6: a.string('ip6') ?? '',
      mac,
      linkLocalIps: a.list('link-local-ip'),
    }),
  };

  return { config, hostConfig, networkingConfig, attach: attachValues };
}

// --- docker's validators (opts/*.go) --------------------------------------------------

function validateAttach(v: string): string {
  const s = v.toLowerCase();
  if (s === 'stdin' || s === 'stdout' || s === 'stderr') return s;
  throw new Error('valid streams are STDIN, STDOUT and STDERR');
}

function validateEnv(v: string, env: OptsEnvironment): string {
  const [k, , hasValue] = cut3(v, '=');
  if (k === '') throw new Error(`invalid environment variable: ${v}`);
  if (hasValue) return v;
  const found = env.lookupEnv(k);
  return found === undefined ? v : `${k}=${found}`;
}

export function validateLabel(v: string): string {
  const key = cut(v, '=')[0].replace(/^[ \t]+/, '');
  if (key === '') throw new Error(`invalid label '${v}': empty name`);
  if (/[ \t]/.test(key)) throw new Error(`label '${key}' contains whitespaces`);
  return v;
}

function validateExtraHost(v: string): string {
  let [k, addr, ok] = cut3(v, '=');
  if (!ok) [k, addr, ok] = cut3(v, ':');
  if (!ok || k === '' || k.includes(':')) throw new Error(`bad format for add-host: ${quote(v)}`);
  if (addr !== 'host-gateway') {
    if (addr.length > 2 && addr.startsWith('[') && addr.endsWith(']')) addr = addr.slice(1, -1);
    if (!isIp(addr)) throw new Error(`invalid IP address in add-host: ${quote(addr)}`);
  }
  return `${k}:${addr}`;
}

function validateIpAddress(v: string): string {
  const ip = v.trim();
  if (!isIp(ip)) throw new Error(`IP address is not correctly formatted: ${v}`);
  return canonicalIp(ip);
}

function validateDnsSearch(v: string): string {
  const val = v.replace(/^ +| +$/g, '');
  if (val === '.') return val;
  if (!/[a-zA-Z]/.test(val)) throw new Error(`${val} is not a valid domain`);
  const m = /^(:?(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*)\.?\s*$/.exec(val);
  if (m && m[1]!.length < 255) return m[1]!;
  throw new Error(`${val} is not a valid domain`);
}

export function validateLink(v: string): string {
  if (v === '') throw new Error('empty string specified for links');
  if (v.split(':').length > 2) throw new Error(`bad format for links: ${v}`);
  return v;
}

function validateDeviceCgroupRule(v: string): string {
  if (/^[acb] ([0-9]+|\*):([0-9]+|\*) [rwm]{1,3}$/.test(v)) return v;
  throw new Error(`invalid device cgroup format '${v}'`);
}

const SYSCTLS = new Set(['kernel.msgmax', 'kernel.msgmnb', 'kernel.msgmni', 'kernel.sem', 'kernel.shmall', 'kernel.shmmax', 'kernel.shmmni', 'kernel.shm_rmid_forced']);

function validateSysctl(v: string): string {
  const [k, , ok] = cut3(v, '=');
  if (!ok || k === '') throw new Error(`sysctl '${v}' is not allowed`);
  if (SYSCTLS.has(k) || k.startsWith('net.') || k.startsWith('fs.mqueue.')) return v;
  throw new Error(`sysctl '${v}' is not allowed`);
}

const ULIMIT_NAMES = new Set(['core', 'cpu', 'data', 'fsize', 'locks', 'memlock', 'msgqueue', 'nice', 'nofile', 'nproc', 'rss', 'rtprio', 'rttime', 'sigpending', 'stack']);

/** go-units ParseUlimit: `name=soft[:hard]`. */
export function parseUlimit(v: string): Ulimit {
  const eq = v.indexOf('=');
  if (eq < 0) throw new Error(`invalid ulimit argument: ${v}`);
  const name = v.slice(0, eq);
  if (!ULIMIT_NAMES.has(name)) throw new Error(`invalid ulimit type: ${name}`);
  const values = v.slice(eq + 1).split(':');
  if (values.length > 2) throw new Error(`too many limit value arguments - ${v.slice(eq + 1)}, can only have up to two, \`soft[:hard]\``);
  const soft = parseInt64(values[0]!);
  const hard = values.length === 2 ? parseInt64(values[1]!) : soft;
  if (hard !== -1) {
    if (soft === -1) throw new Error(`ulimit soft limit must be less than or equal to hard limit: soft: -1 (unlimited), hard: ${hard}`);
    if (soft > hard) throw new Error(`ulimit soft limit must be less than or equal to hard limit: ${soft} > ${hard}`);
  }
  return { Name: name, Hard: hard, Soft: soft };
}

/** Go's strconv.ParseInt(s, 10, 64), with its messages. */
export function parseInt64(s: string): number {
  if (!/^[+-]?\d+$/.test(s)) throw new Error(`strconv.ParseInt: parsing ${quote(s)}: invalid syntax`);
  const n = BigInt(s);
  if (n > 9223372036854775807n || n < -9223372036854775808n) throw new Error(`strconv.ParseInt: parsing ${quote(s)}: value out of range`);
  return Number(n);
}

/** Go's strconv.ParseUint(s, 10, bits). */
export function parseUint(s: string, bits: number): number {
  if (!/^\+?\d+$/.test(s) || s.startsWith('+')) throw new Error(`strconv.ParseUint: parsing ${quote(s)}: invalid syntax`);
  if (BigInt(s) >= 1n << BigInt(bits)) throw new Error(`strconv.ParseUint: parsing ${quote(s)}: value out of range`);
  return Number(s);
}

/** docker's ParseCPUs: a rational number of CPUs ("1.5", "3/2") in units of 1e-9 CPUs. */
export function parseCpus(v: string): number {
  const fail = (): never => {
    throw new Error(`failed to parse ${v} as a rational number`);
  };
  let num: bigint;
  let den: bigint;
  const slash = v.indexOf('/');
  if (slash >= 0) {
    const a = v.slice(0, slash);
    const b = v.slice(slash + 1);
    if (!/^[+-]?\d+$/.test(a) || !/^\d+$/.test(b) || BigInt(b) === 0n) return fail();
    num = BigInt(a);
    den = BigInt(b);
  } else {
    const m = /^([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/.exec(v);
    if (!m || (m[2] === '' && (m[3] ?? '') === '')) return fail();
    const frac = m[3] ?? '';
    num = BigInt(`${m[1]}${m[2] || '0'}${frac}`);
    den = 10n ** BigInt(frac.length);
    const exp = m[4] ? Number(m[4]) : 0;
    if (exp > 0) num *= 10n ** BigInt(exp);
    else if (exp < 0) den *= 10n ** BigInt(-exp);
  }
  const nano = num * 1_000_000_000n;
  if (nano % den !== 0n) throw new Error('value is too precise');
  return Number(nano / den);
}

const DURATION_UNITS: Record<string, number> = { ns: 1, us: 1e3, 'µs': 1e3, 'μs': 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };

/** Go's time.ParseDuration, in nanoseconds: "1h30m", "1.5s", "-2m", "0". */
export function parseGoDuration(s: string): number {
  const invalid = (): never => {
    throw new Error(`time: invalid duration ${quote(s)}`);
  };
  let rest = s;
  let sign = 1;
  if (rest.startsWith('-') || rest.startsWith('+')) {
    if (rest[0] === '-') sign = -1;
    rest = rest.slice(1);
  }
  if (rest === '0') return 0;
  if (rest === '') invalid();
  let total = 0;
  while (rest !== '') {
    const m = /^(\d*)(?:\.(\d*))?/.exec(rest)!;
    if (m[0] === '' || m[0] === '.') invalid();
    rest = rest.slice(m[0].length);
    const unit = /^[^\d.]+/.exec(rest)?.[0];
    if (unit === undefined) throw new Error(`time: missing unit in duration ${quote(s)}`);
    const scale = DURATION_UNITS[unit];
    if (scale === undefined) throw new Error(`time: unknown unit ${quote(unit)} in duration ${quote(s)}`);
    rest = rest.slice(unit.length);
    total += Number(`${m[1] || '0'}.${m[2] || '0'}`) * scale;
  }
  return sign * Math.round(total);
}

/** opts.ParseRestartPolicy: `name[:max-retries]`; the daemon judges the name. */
export function parseRestartPolicy(policy: string): { Name: string; MaximumRetryCount: number } {
  if (policy === '') return { Name: '', MaximumRetryCount: 0 };
  const [k, v, ok] = cut3(policy, ':');
  if (ok && k === '') throw new ContainerOptsError('invalid restart policy format: no policy provided before colon');
  let count = 0;
  if (v !== '') {
    if (!/^[+-]?\d+$/.test(v)) throw new ContainerOptsError('invalid restart policy format: maximum retry count must be an integer');
    count = Number(v);
  }
  return { Name: k, MaximumRetryCount: count };
}

/** The docker client's capability normalisation: upper case, "CAP_" prefix, sorted, unique. */
export function normalizeCapabilities(caps: string[]): string[] | null {
  if (caps.length === 0) return null;
  const out = new Set<string>();
  for (let c of caps) {
    c = c.toUpperCase();
    if (c !== 'ALL' && !c.startsWith('CAP_')) c = `CAP_${c}`;
    out.add(c);
  }
  return [...out].sort();
}

function parseSecurityOpts(opts: string[], env: OptsEnvironment): { securityOpts: string[] | null; maskedPaths: string[] | null; readonlyPaths: string[] | null } {
  const out: string[] = [];
  let maskedPaths: string[] | null = null;
  let readonlyPaths: string[] | null = null;
  for (const opt of opts) {
    let [k, v, ok] = cut3(opt, '=');
    if (!ok && k !== 'no-new-privileges') [k, v, ok] = cut3(opt, ':');
    if ((!ok || v === '') && k !== 'no-new-privileges') throw new ContainerOptsError(`Invalid --security-opt: ${quote(opt)}`);
    let value = opt;
    if (k === 'seccomp' && v !== 'builtin' && v !== 'unconfined') {
      let text: string;
      try {
        text = env.readFile(v).toString('utf8');
      } catch (err) {
        throw new ContainerOptsError(`opening seccomp profile (${v}) failed: ${goFileError('open', v, err)}`);
      }
      try {
        value = `seccomp=${JSON.stringify(JSON.parse(text))}`;
      } catch (err) {
        throw new ContainerOptsError(`compacting json for seccomp profile (${v}) failed: ${(err as Error).message}`);
      }
    }
    if (value === 'systempaths=unconfined') {
      maskedPaths = [];
      readonlyPaths = [];
      continue;
    }
    out.push(value);
  }
  return { securityOpts: out.length ? out : null, maskedPaths, readonlyPaths };
}

// --- volumes and mounts ---------------------------------------------------------------

interface VolumeSpec {
  source: string;
  target: string;
  type: 'bind' | 'volume';
}

/** docker's volume spec parser for -v: `[source:]target[:options]`. */
export function parseVolume(spec: string): VolumeSpec {
  if (spec.length === 0) throw new ContainerOptsError('invalid empty volume spec');
  if (spec.length <= 2) return { source: '', target: spec, type: 'volume' };
  const vol: VolumeSpec = { source: '', target: '', type: 'volume' };
  const chars = [...spec];
  let buffer: string[] = [];
  const END = '\0';
  for (const ch of [...chars, END]) {
    if (ch === ':' && buffer.length === 1 && /\p{L}/u.test(buffer[0]!)) {
      buffer.push(ch); // a Windows drive letter, as docker reads it everywhere
      continue;
    }
    if (ch !== ':' && ch !== END) {
      buffer.push(ch);
      continue;
    }
    const text = buffer.join('');
    if (buffer.length === 0) throw new ContainerOptsError(`invalid spec: ${spec}: empty section between colons`);
    if (vol.source === '' && ch === END) vol.target = text;
    else if (vol.source === '') vol.source = text;
    else if (vol.target === '') vol.target = text;
    else if (ch === ':') throw new ContainerOptsError(`invalid spec: ${spec}: too many colons`);
    buffer = [];
  }
  if (vol.source !== '' && /^[./~]/.test(vol.source)) vol.type = 'bind';
  return vol;
}

/** --mount's CSV fields (opts.MountOpt). */
export function parseMount(value: string, env: OptsEnvironment = processEnvironment): Mount {
  const m: Mount = { Type: 'volume' };
  const bindOptions = () => (m.BindOptions ??= {});
  const volumeOptions = () => {
    m.VolumeOptions ??= { Labels: {} };
    m.VolumeOptions.DriverConfig ??= {};
    return m.VolumeOptions;
  };
  const tmpfsOptions = () => (m.TmpfsOptions ??= {});
  const setOnMap = (target: Record<string, string>, v: string) => {
    const [k, val] = cut(v, '=');
    if (k !== '') target[k] = val;
  };
  const bool = (key: string, v: string): boolean => {
    if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(v)) return true;
    if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(v)) return false;
    throw new Error(`invalid value for ${key}: ${v}`);
  };
  for (const field of parseCsvLine(value)) {
    const [rawKey, val, ok] = cut3(field, '=');
    const key = rawKey.toLowerCase();
    if (!ok) {
      if (key === 'readonly' || key === 'ro') m.ReadOnly = true;
      else if (key === 'volume-nocopy') volumeOptions().NoCopy = true;
      else if (key === 'bind-nonrecursive') bindOptions().NonRecursive = true;
      else throw new Error(`invalid field '${field}' must be a key=value pair`);
      continue;
    }
    switch (key) {
      case 'type':
        m.Type = val.toLowerCase();
        break;
      case 'source':
      case 'src':
        m.Source = !isAbsolute(val) && val.startsWith('.') ? resolve(env.cwd(), val) : val;
        break;
      case 'target':
      case 'dst':
      case 'destination':
        m.Target = val;
        break;
      case 'readonly':
      case 'ro':
        m.ReadOnly = bool(key, val);
        break;
      case 'consistency':
        m.Consistency = val.toLowerCase();
        break;
      case 'bind-propagation':
        bindOptions().Propagation = val.toLowerCase();
        break;
      case 'bind-nonrecursive':
        bindOptions().NonRecursive = bool(key, val);
        break;
      case 'bind-recursive':
        if (val === 'disabled') bindOptions().NonRecursive = true;
        else if (val === 'writable') bindOptions().ReadOnlyNonRecursive = true;
        else if (val === 'readonly') bindOptions().ReadOnlyForceRecursive = true;
        else if (val !== 'enabled') throw new Error(`invalid value for ${key}: ${val} (must "enabled", "disabled", "writable", or "readonly")`);
        break;
      case 'volume-subpath':
        volumeOptions().Subpath = val;
        break;
      case 'volume-nocopy':
        if (!['1', 't', 'T', 'TRUE', 'true', 'True', '0', 'f', 'F', 'FALSE', 'false', 'False'].includes(val)) throw new Error(`invalid value for volume-nocopy: ${val}`);
        volumeOptions().NoCopy = bool(key, val);
        break;
      case 'volume-label':
        setOnMap(volumeOptions().Labels!, val);
        break;
      case 'volume-driver':
        volumeOptions().DriverConfig!.Name = val;
        break;
      case 'volume-opt': {
        const driver = volumeOptions().DriverConfig!;
        driver.Options ??= {};
        setOnMap(driver.Options, val);
        break;
      }
      case 'image-subpath':
        (m.ImageOptions ??= {}).Subpath = val;
        break;
      case 'tmpfs-size':
        try {
          tmpfsOptions().SizeBytes = parseBytes(val);
        } catch {
          throw new Error(`invalid value for ${key}: ${val}`);
        }
        break;
      case 'tmpfs-mode':
        if (!/^[0-7]+$/.test(val)) throw new Error(`invalid value for ${key}: ${val}`);
        tmpfsOptions().Mode = Number.parseInt(val, 8);
        break;
      default:
        throw new Error(`unexpected key '${key}' in '${field}'`);
    }
  }
  if (!m.Type) throw new Error('type is required');
  if (!m.Target) throw new Error('target is required');
  if (m.VolumeOptions && m.Type !== 'volume') throw new Error(`cannot mix 'volume-*' options with mount type '${m.Type}'`);
  if (m.ImageOptions && m.Type !== 'image') throw new Error(`cannot mix 'image-*' options with mount type '${m.Type}'`);
  if (m.BindOptions && m.Type !== 'bind') throw new Error(`cannot mix 'bind-*' options with mount type '${m.Type}'`);
  if (m.TmpfsOptions && m.Type !== 'tmpfs') throw new Error(`cannot mix 'tmpfs-*' options with mount type '${m.Type}'`);
  if (m.BindOptions?.ReadOnlyNonRecursive && !m.ReadOnly) throw new Error("option 'bind-recursive=writable' requires 'readonly' to be specified in conjunction");
  if (m.BindOptions?.ReadOnlyForceRecursive) {
    if (!m.ReadOnly) throw new Error("option 'bind-recursive=readonly' requires 'readonly' to be specified in conjunction");
    if (m.BindOptions.Propagation !== 'rprivate') throw new Error("option 'bind-recursive=readonly' requires 'bind-propagation=rprivate' to be specified in conjunction");
  }
  // Go leaves the Type empty-omitted only when empty; keep the order docker's JSON has.
  return m;
}

/** One line of Go's encoding/csv (quotes, doubled quotes inside). */
export function parseCsvLine(line: string): string[] {
  const fields: string[] = [];
  let i = 0;
  while (i <= line.length) {
    if (line[i] === '"') {
      let text = '';
      i++;
      for (;;) {
        if (i >= line.length) throw new Error(`parse error on line 1, column ${i + 1}: extraneous or missing " in quoted-field`);
        if (line[i] === '"') {
          if (line[i + 1] === '"') {
            text += '"';
            i += 2;
            continue;
          }
          i++;
          break;
        }
        text += line[i++];
      }
      if (i < line.length && line[i] !== ',') throw new Error(`parse error on line 1, column ${i + 1}: extraneous or missing " in quoted-field`);
      fields.push(text);
      i++;
      continue;
    }
    const comma = line.indexOf(',', i);
    const end = comma < 0 ? line.length : comma;
    const text = line.slice(i, end);
    if (text.includes('"')) throw new Error(`parse error on line 1, column ${i + text.indexOf('"') + 1}: bare " in non-quoted-field`);
    fields.push(text);
    i = end + 1;
  }
  return fields;
}

// --- devices --------------------------------------------------------------------------

function validDeviceMode(mode: string): boolean {
  if (mode === '') return false;
  const seen = new Set<string>();
  for (const c of mode) {
    if (!'rwm'.includes(c) || seen.has(c)) return false;
    seen.add(c);
  }
  return true;
}

/** docker's validateLinuxPath for --device: `[host:]container[:mode]`. */
function validateLinuxPath(val: string): string {
  if ((val.match(/:/g) ?? []).length > 2) throw new ContainerOptsError(`bad format for path: ${val}`);
  const split = val.split(':');
  if (split[0] === '') throw new ContainerOptsError(`bad format for path: ${val}`);
  let containerPath: string;
  let out: string;
  if (split.length === 1) {
    containerPath = split[0]!;
    out = cleanPath(containerPath);
  } else if (split.length === 2) {
    if (validDeviceMode(split[1]!)) {
      containerPath = split[0]!;
      out = `${cleanPath(containerPath)}:${split[1]}`;
    } else {
      containerPath = split[1]!;
      out = `${split[0]}:${cleanPath(containerPath)}`;
    }
  } else {
    containerPath = split[1]!;
    if (!validDeviceMode(split[2]!)) throw new ContainerOptsError(`bad mode specified: ${split[2]}`);
    out = val;
  }
  if (!containerPath.startsWith('/')) throw new ContainerOptsError(`${containerPath} is not an absolute path`);
  return out;
}

/** Go's path.Clean. */
function cleanPath(p: string): string {
  if (p === '') return '.';
  const n = posix.normalize(p);
  return n.length > 1 && n.endsWith('/') ? n.slice(0, -1) : n;
}

function parseLinuxDevice(device: string): DeviceMapping {
  const arr = device.split(':');
  if (arr.length > 3) throw new ContainerOptsError(`invalid device specification: ${device}`);
  let permissions = 'rwm';
  let dst = '';
  if (arr.length === 3) permissions = arr[2]!;
  if (arr.length >= 2) {
    if (validDeviceMode(arr[1]!)) permissions = arr[1]!;
    else dst = arr[1]!;
  }
  const src = arr[0]!;
  return { PathOnHost: src, PathInContainer: dst || src, CgroupPermissions: permissions };
}

/** A CDI device name: vendor.com/class=name. */
function isCdiName(d: string): boolean {
  return /^[a-zA-Z0-9][a-zA-Z0-9._-]*\/[a-zA-Z0-9][a-zA-Z0-9._-]*=[a-zA-Z0-9_.:-]+$/.test(d) && d.split('/')[0]!.includes('.');
}

// --- ports ----------------------------------------------------------------------------

/** `published=8080,target=80,protocol=udp` into `8080:80/udp`. */
function convertToStandardNotation(ports: string[]): string[] {
  return ports.map((p) => {
    if (!p.includes('=')) return p;
    const params: Record<string, string> = { protocol: 'tcp' };
    for (const param of p.split(',')) {
      const [k, v, ok] = cut3(param, '=');
      if (!ok || k === '') throw new ContainerOptsError(`invalid publish opts format (should be name=value but got '${param}')`);
      params[k] = v;
    }
    return `${params['published'] ?? ''}:${params['target'] ?? ''}/${params['protocol']}`;
  });
}

function splitProtoPort(raw: string): [string, string] {
  const parts = raw.split('/');
  if (raw === '' || parts[0] === '') return ['', ''];
  if (parts.length === 1) return ['tcp', raw];
  if (parts[1] === '') return ['tcp', parts[0]!];
  return [parts[1]!, parts[0]!];
}

/** go-connections ParsePortRange: "80" or "8000-8010". */
function parsePortRange(ports: string): [number, number] {
  if (ports === '') throw new Error('empty string specified for ports');
  if (!ports.includes('-')) {
    const p = parseUint(ports, 16);
    return [p, p];
  }
  const parts = ports.split('-');
  const start = parseUint(parts[0]!, 16);
  const end = parseUint(parts[1]!, 16);
  if (end < start) throw new Error(`invalid range specified for port: ${ports}`);
  return [start, end];
}

/** go-connections ParsePortSpecs: `[ip:][hostPort:]containerPort[/proto]`. */
export function parsePortSpecs(specs: string[]): { exposed: Set<string>; bindings: Record<string, PortBinding[]> } {
  const exposed = new Set<string>();
  const bindings: Record<string, PortBinding[]> = {};
  for (const raw of specs) {
    const parts = raw.split(':');
    const n = parts.length;
    let ip = n >= 3 ? parts.slice(0, n - 2).join(':') : '';
    let hostPort = n >= 2 ? parts[n - 2]! : '';
    const [proto, containerPort] = splitProtoPort(parts[n - 1]!);
    if (ip.startsWith('[')) {
      const m = /^\[([^\]]*)\]$/.exec(ip);
      if (!m) throw new ContainerOptsError(`invalid IP address ${ip}: address ${ip}:: missing ']' in address`);
      ip = m[1]!;
    }
    if (ip !== '' && !isIp(ip)) throw new ContainerOptsError(`invalid IP address: ${ip}`);
    if (containerPort === '') throw new ContainerOptsError(`no port specified: ${raw}<empty>`);
    let start: number;
    let end: number;
    try {
      [start, end] = parsePortRange(containerPort);
    } catch {
      throw new ContainerOptsError(`invalid containerPort: ${containerPort}`);
    }
    let hostStart = 0;
    let hostEnd = 0;
    if (hostPort !== '') {
      try {
        [hostStart, hostEnd] = parsePortRange(hostPort);
      } catch {
        throw new ContainerOptsError(`invalid hostPort: ${hostPort}`);
      }
    }
    if (hostPort !== '' && end - start !== hostEnd - hostStart && end !== start) {
      throw new ContainerOptsError(`invalid ranges specified for container and host Ports: ${containerPort} and ${hostPort}`);
    }
    if (!['tcp', 'udp', 'sctp'].includes(proto.toLowerCase())) throw new ContainerOptsError(`invalid proto: ${proto}`);
    for (let i = 0; i <= end - start; i++) {
      if (hostPort !== '') hostPort = String(hostStart + i);
      if (start === end && hostStart !== hostEnd) hostPort = `${hostPort}-${hostEnd}`;
      const port = `${start + i}/${proto.toLowerCase()}`;
      exposed.add(port);
      (bindings[port] ??= []).push({ HostIp: ip, HostPort: hostPort });
    }
  }
  return { exposed, bindings };
}

// --- networks -------------------------------------------------------------------------

interface NetworkAttachment {
  target: string;
  aliases: string[];
  links: string[];
  ipv4: string;
  ipv6: string;
  mac: string;
  linkLocalIps: string[];
  driverOpts: Record<string, string>;
  gwPriority: number;
}

/** opts.NetworkOpt: a network name, or `name=x,alias=y,ip=z,...`. */
function parseNetworkOpt(value: string): NetworkAttachment {
  const n: NetworkAttachment = { target: '', aliases: [], links: [], ipv4: '', ipv6: '', mac: '', linkLocalIps: [], driverOpts: {}, gwPriority: 0 };
  if (!/\w+=\w+(,\w+=\w+)*/.test(value)) {
    n.target = value;
    return n;
  }
  for (const field of parseCsvLine(value)) {
    const [rawKey, rawVal, ok] = cut3(field.toLowerCase(), '=');
    if (!ok || rawKey === '') throw new Error(`invalid field ${field}`);
    const key = rawKey.trim();
    const val = rawVal.trim();
    switch (key) {
      case 'name':
        n.target = val;
        break;
      case 'alias':
        n.aliases.push(val);
        break;
      case 'ip':
        n.ipv4 = val;
        break;
      case 'ip6':
        n.ipv6 = val;
        break;
      case 'mac-address':
        n.mac = val;
        break;
      case 'link-local-ip':
        n.linkLocalIps.push(val);
        break;
      case 'driver-opt': {
        const [k, v, has] = cut3(val, '=');
        if (!has) throw new Error('invalid key value pair format in driver options');
        n.driverOpts[k.trim().toLowerCase()] = v.trim().toLowerCase();
        break;
      }
      case 'gw-priority':
        if (!/^[+-]?\d+$/.test(val)) throw new Error(`invalid gw-priority (${val}): invalid syntax`);
        n.gwPriority = Number(val);
        break;
      default:
        throw new Error(`invalid field key ${key}`);
    }
  }
  if (n.target === '') throw new Error('network name/id is not specified');
  return n;
}

function isUserDefinedNetwork(name: string): boolean {
  return !['default', 'bridge', 'host', 'none'].includes(name) && !name.startsWith('container:');
}

interface LegacyNetworkFlags {
  aliases: string[];
  links: string[];
  ipv4: string;
  ipv6: string;
  mac: string;
  linkLocalIps: string[];
}

function parseNetworkOpts(networks: NetworkAttachment[], legacy: LegacyNetworkFlags): Record<string, EndpointSettings> {
  const endpoints: Record<string, EndpointSettings> = {};
  let userDefined = false;
  let other = false;
  const list = networks.length ? networks : [];
  if (list.length === 0) {
    const n: NetworkAttachment = { target: 'default', aliases: [], links: [], ipv4: '', ipv6: '', mac: '', linkLocalIps: [], driverOpts: {}, gwPriority: 0 };
    applyContainerOptions(n, legacy);
    endpoints['default'] = endpointSettings(n);
  }
  list.forEach((n, i) => {
    if (isUserDefinedNetwork(n.target)) userDefined = true;
    else other = true;
    if (i === 0) applyContainerOptions(n, legacy);
    const ep = endpointSettings(n);
    if (endpoints[n.target]) throw new ContainerOptsError(`network ${quote(n.target)} is specified multiple times`);
    if (i === 0 && list.length === 1 && isZeroEndpoint(ep)) return;
    endpoints[n.target] = ep;
  });
  if (userDefined && other) throw new ContainerOptsError('conflicting options: cannot attach both user-defined and non-user-defined network-modes');
  return endpoints;
}

function applyContainerOptions(n: NetworkAttachment, legacy: LegacyNetworkFlags): void {
  if (n.aliases.length && legacy.aliases.length) throw new ContainerOptsError('conflicting options: cannot specify both --network-alias and per-network alias');
  if (n.links.length && legacy.links.length) throw new ContainerOptsError('conflicting options: cannot specify both --link and per-network links');
  if (n.ipv4 && legacy.ipv4) throw new ContainerOptsError('conflicting options: cannot specify both --ip and per-network IPv4 address');
  if (n.ipv6 && legacy.ipv6) throw new ContainerOptsError('conflicting options: cannot specify both --ip6 and per-network IPv6 address');
  if (n.mac && legacy.mac) throw new ContainerOptsError('conflicting options: cannot specify both --mac-address and per-network MAC address');
  if (n.linkLocalIps.length && legacy.linkLocalIps.length) throw new ContainerOptsError('conflicting options: cannot specify both --link-local-ip and per-network link-local IP addresses');
  if (legacy.aliases.length) n.aliases = [...legacy.aliases];
  if (isUserDefinedNetwork(n.target) && legacy.links.length) n.links = [...legacy.links];
  if (legacy.ipv4) n.ipv4 = legacy.ipv4;
  if (legacy.ipv6) n.ipv6 = legacy.ipv6;
  if (legacy.mac) n.mac = legacy.mac;
  if (legacy.linkLocalIps.length) n.linkLocalIps = [...legacy.linkLocalIps];
}

function endpointSettings(n: NetworkAttachment): EndpointSettings {
  if (n.target.trim() === '') throw new ContainerOptsError('no name set for network');
  if (!isUserDefinedNetwork(n.target)) {
    if (n.aliases.length) throw new ContainerOptsError('network-scoped aliases are only supported for user-defined networks');
    if (n.links.length) throw new ContainerOptsError('links are only supported for user-defined networks');
  }
  let ipam: EndpointSettings['IPAMConfig'] = null;
  if (n.ipv4 || n.ipv6 || n.linkLocalIps.length) {
    ipam = {};
    if (n.ipv4) ipam.IPv4Address = n.ipv4;
    if (n.ipv6) ipam.IPv6Address = n.ipv6;
    if (n.linkLocalIps.length) ipam.LinkLocalIPs = n.linkLocalIps;
  }
  if (n.mac && !isMac(n.mac.trim())) throw new ContainerOptsError(`${n.mac} is not a valid mac address`);
  return {
    IPAMConfig: ipam,
    Links: n.links.length ? n.links : null,
    Aliases: n.aliases.length ? n.aliases : null,
    MacAddress: n.mac,
    DriverOpts: Object.keys(n.driverOpts).length ? n.driverOpts : null,
    GwPriority: n.gwPriority,
    NetworkID: '',
    EndpointID: '',
    Gateway: '',
    IPAddress: '',
    IPPrefixLen: 0,
    IPv6Gateway: '',
    GlobalIPv6Address: '',
    GlobalIPv6PrefixLen: 0,
    DNSNames: null,
  };
}

function isZeroEndpoint(ep: EndpointSettings): boolean {
  return ep.IPAMConfig === null && ep.Links === null && ep.Aliases === null && ep.MacAddress === '' && ep.DriverOpts === null && ep.GwPriority === 0;
}

// --- env and label files --------------------------------------------------------------

/**
 * docker's ReadKVStrings: the files' lines, then the flags. For env files (lookup) a line
 * without "=" takes its value from the environment, or is dropped when unset.
 */
function readKvStrings(files: string[], overrides: string[], env: OptsEnvironment, lookup: boolean): string[] | null {
  const out: string[] = [];
  for (const file of files) {
    let data: Buffer;
    try {
      data = env.readFile(file);
    } catch (err) {
      throw new ContainerOptsError(goFileError('open', file, err));
    }
    try {
      out.push(...parseKeyValueFile(data, lookup ? env : undefined));
    } catch (err) {
      throw new ContainerOptsError(`invalid env file (${file}): ${(err as Error).message}`);
    }
  }
  out.push(...overrides);
  return out.length ? out : null;
}

/** The lines of an env or label file (docker's kvfile). */
export function parseKeyValueFile(data: Buffer, env?: OptsEnvironment): string[] {
  const text = new TextDecoder('utf-8', { fatal: false }).decode(data);
  const lines = text.split(/\r?\n/);
  if (lines.length && lines[lines.length - 1] === '') lines.pop();
  const out: string[] = [];
  lines.forEach((raw, index) => {
    if (raw.includes('\ufffd')) throw new Error(`invalid utf8 bytes at line ${index + 1}`);
    let line = index === 0 ? raw.replace(/^\ufeff/, '') : raw;
    line = line.replace(/^\s+/, '');
    if (line === '' || line.startsWith('#')) return;
    const [key, , hasValue] = cut3(line, '=');
    if (key === '') throw new Error(`no variable name on line '${line}'`);
    if (/[ \t]/.test(key)) throw new Error(`variable '${key}' contains whitespaces`);
    if (hasValue) {
      out.push(line);
      return;
    }
    if (env) {
      const value = env.lookupEnv(line);
      if (value !== undefined) out.push(`${key}=${value}`);
    }
  });
  return out;
}

/** -e values as docker ends up with them: one entry per name, the last value winning. */
function dedupeEnv(values: string[]): string[] {
  const byName = new Map<string, string>();
  for (const v of values) byName.set(cut(v, '=')[0], v);
  return [...byName.values()];
}

// --- small helpers --------------------------------------------------------------------

/** Go's strings.Cut without the found flag. */
function cut(s: string, sep: string): [string, string] {
  const i = s.indexOf(sep);
  return i < 0 ? [s, ''] : [s.slice(0, i), s.slice(i + sep.length)];
}

function cut3(s: string, sep: string): [string, string, boolean] {
  const i = s.indexOf(sep);
  return i < 0 ? [s, '', false] : [s.slice(0, i), s.slice(i + sep.length), true];
}

/**
 * docker's ConvertKVStringsToMap (and what its MapOpts hold): KEY=VALUE pairs as a map, the
 * value empty when there is no "=". Its keys are sorted, as Go marshals a map: the daemon
 * gets them in the order docker sends them (and names them in that order in its errors).
 */
export function kvMap(values: string[]): Record<string, string> {
  const out = new Map<string, string>();
  for (const v of values) {
    const [k, val] = cut(v, '=');
    out.set(k, val);
  }
  return Object.fromEntries([...out].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

function mapOf(values: string[]): Record<string, string> {
  return kvMap(values);
}

function orNull(values: string[]): string[] | null {
  return values.length ? values : null;
}

function unique(values: string[]): string[] {
  return [...new Set(values)];
}

function omitZero(h: Record<string, unknown>): HealthConfig {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(h)) if (v !== undefined && v !== 0) out[k] = v;
  return out as HealthConfig;
}

function isIpv4(s: string): boolean {
  const parts = s.split('.');
  return parts.length === 4 && parts.every((p) => /^\d{1,3}$/.test(p) && Number(p) <= 255);
}

function isIp(s: string): boolean {
  if (isIpv4(s)) return true;
  if (!s.includes(':') || !/^[0-9a-fA-F:.]+$/.test(s)) return false;
  const dbl = s.split('::');
  if (dbl.length > 2) return false;
  const groups = (part: string) => (part === '' ? [] : part.split(':'));
  const head = groups(dbl[0]!);
  const tail = dbl.length === 2 ? groups(dbl[1]!) : [];
  const all = [...head, ...tail];
  let count = 0;
  for (let i = 0; i < all.length; i++) {
    const g = all[i]!;
    if (i === all.length - 1 && g.includes('.')) {
      if (!isIpv4(g)) return false;
      count += 2;
    } else if (/^[0-9a-fA-F]{1,4}$/.test(g)) count += 1;
    else return false;
  }
  return dbl.length === 2 ? count < 8 : count === 8;
}

/** net.IP.String(): IPv4 as is (without leading zeros), IPv6 in its shortest form. */
function canonicalIp(s: string): string {
  if (isIpv4(s)) return s.split('.').map((p) => String(Number(p))).join('.');
  try {
    return new URL(`http://[${s}]/`).hostname.slice(1, -1);
  } catch {
    return s;
  }
}

function isMac(s: string): boolean {
  return /^([0-9a-fA-F]{2}[:-]){5}[0-9a-fA-F]{2}$/.test(s) || /^([0-9a-fA-F]{2}[:-]){7}[0-9a-fA-F]{2}$/.test(s) || /^([0-9a-fA-F]{2}[:-]){19}[0-9a-fA-F]{2}$/.test(s);
}

/** An fs error as Go's os package words it: "open x: no such file or directory". */
export function goFileError(op: string, path: string, err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  const reason: Record<string, string> = {
    ENOENT: 'no such file or directory',
    EACCES: 'permission denied',
    EISDIR: 'is a directory',
    ENOTDIR: 'not a directory',
  };
  return `${op} ${path}: ${(code && reason[code]) ?? (err as Error).message}`;
}
