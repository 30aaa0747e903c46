/**
 * A container as the daemon records it, and the rules of its config: how an image's config
 * and a create request merge, names, restart policies.
 */
import { randomBytes } from 'node:crypto';
import { InvalidArgument } from '../errors/errors.js';
import type { RunConfig } from '../images/oci-types.js';
import type { Endpoint } from '../network/network-manager.js';
import type { PortMap } from '../network/port-proxy.js';
import type { ResolvedMounts } from './container-volumes.js';
import type { ContainerConfig, HostConfig } from '../runtime/oci-spec.js';

export type ContainerStatus = 'created' | 'running' | 'paused' | 'restarting' | 'removing' | 'exited' | 'dead';

/** Docker's State object, as inspect shows it. */
export interface ContainerState {
  Status: ContainerStatus;
  Running: boolean;
  Paused: boolean;
  Restarting: boolean;
  OOMKilled: boolean;
  Dead: boolean;
  Pid: number;
  ExitCode: number;
  Error: string;
  StartedAt: string;
  FinishedAt: string;
  /** Set while a container with a health check runs. */
  Health?: HealthState;
}

/** Docker's State.Health. */
export interface HealthState {
  Status: 'starting' | 'healthy' | 'unhealthy';
  FailingStreak: number;
  /** The last five checks, oldest first. */
  Log: Array<{ Start: string; End: string; ExitCode: number; Output: string }>;
}

export interface ContainerRecord {
  id: string;
  /** With Docker's leading slash: '/web'. */
  name: string;
  created: string;
  /** The image as the user named it. */
  image: string;
  imageId: string;
  config: ContainerConfig;
  hostConfig: HostConfig;
  networkingConfig?: unknown;
  state: ContainerState;
  restartCount: number;
  /** Set by stop/kill from a user: restart policies (but `always`, at daemon start) leave it down. */
  manuallyStopped: boolean;
  /** The pid of the shim that holds the running container. */
  shimPid?: number;
  /** While it runs: its places on its networks (eth0's first), and the ports published for it. */
  endpoints?: Endpoint[];
  ports?: PortMap;
  /** Its volumes, binds and tmpfs mounts, decided at create. */
  mounts?: ResolvedMounts;
}

export const ZERO_TIME = '0001-01-01T00:00:00Z';

export function newState(): ContainerState {
  return {
    Status: 'created',
    Running: false,
    Paused: false,
    Restarting: false,
    OOMKilled: false,
    Dead: false,
    Pid: 0,
    ExitCode: 0,
    Error: '',
    StartedAt: ZERO_TIME,
    FinishedAt: ZERO_TIME,
  };
}

export function newContainerId(): string {
  return randomBytes(32).toString('hex');
}

const NAME = /^\/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;

/** '/web' for 'web' or '/web'; Docker's message for anything else. */
export function checkName(name: string): string {
  if (!NAME.test(name)) throw new InvalidArgument(`Invalid container name (${name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`);
  return name.startsWith('/') ? name : `/${name}`;
}

const LEFT = [
  'agile', 'bold', 'brave', 'bright', 'calm', 'clever', 'cool', 'crisp', 'eager', 'fair', 'fond', 'gentle', 'happy',
  'keen', 'kind', 'lucid', 'merry', 'modest', 'nimble', 'noble', 'patient', 'quiet', 'rapid', 'serene', 'sharp',
  'steady', 'sturdy', 'swift', 'tidy', 'vivid', 'warm', 'wise', 'witty', 'zealous',
];
const RIGHT = [
  'albatross', 'anchor', 'barge', 'beacon', 'bollard', 'buoy', 'capstan', 'cormorant', 'cutter', 'dinghy', 'dory',
  'ferry', 'frigate', 'galley', 'gannet', 'harbor', 'hawser', 'jetty', 'keel', 'ketch', 'lighthouse', 'mooring',
  'osprey', 'pelican', 'petrel', 'pier', 'quay', 'rudder', 'schooner', 'sloop', 'tern', 'wharf', 'yawl',
];

/** A random `adjective_noun` name, as docker makes them, not yet taken. */
export function generateName(taken: (name: string) => boolean): string {
  for (let i = 0; ; i++) {
    const left = LEFT[Math.floor(Math.random() * LEFT.length)]!;
    const right = RIGHT[Math.floor(Math.random() * RIGHT.length)]!;
    const name = `/${left}_${right}${i > 10 ? Math.floor(Math.random() * 100) : ''}`;
    if (!taken(name)) return name;
  }
}

/**
 * The container's config: the request's, with what it leaves out taken from the image.
 * As docker: an Entrypoint in the request drops the image's Cmd; Env merges by key.
 */
export function mergeImageConfig(request: ContainerConfig, image: RunConfig | undefined): ContainerConfig {
  const merged: ContainerConfig = { ...request };
  const img = image ?? {};
  // `--entrypoint ''` sends [""]: no entrypoint at all, not one named "".
  const clearsEntrypoint = request.Entrypoint?.length === 1 && request.Entrypoint[0] === '';
  const requestEntrypoint = request.Entrypoint && request.Entrypoint.length > 0 && !clearsEntrypoint ? request.Entrypoint : undefined;
  const requestCmd = request.Cmd && request.Cmd.length > 0 ? request.Cmd : undefined;
  if (requestEntrypoint) {
    merged.Entrypoint = requestEntrypoint;
    merged.Cmd = requestCmd ?? null;
  } else if (clearsEntrypoint) {
    merged.Entrypoint = null;
    merged.Cmd = requestCmd ?? img.Cmd ?? null;
  } else {
    merged.Entrypoint = img.Entrypoint ?? null;
    merged.Cmd = requestCmd ?? img.Cmd ?? null;
  }
  const env = new Map<string, string>();
  for (const e of [...(img.Env ?? []), ...(request.Env ?? [])]) {
    const eq = e.indexOf('=');
    env.set(eq < 0 ? e : e.slice(0, eq), e);
  }
  merged.Env = [...env.values()];
  merged.WorkingDir = request.WorkingDir || img.WorkingDir || '';
  merged.User = request.User || img.User || '';
  merged.Labels = { ...(img.Labels ?? {}), ...(request.Labels ?? {}) };
  merged.ExposedPorts = { ...(img.ExposedPorts ?? {}), ...(request.ExposedPorts ?? {}) };
  merged.Volumes = { ...(img.Volumes ?? {}), ...(request.Volumes ?? {}) };
  if (!request.StopSignal && img.StopSignal) merged.StopSignal = img.StopSignal;
  // As docker: the image's check, unless the request has one; a request without a Test
  // keeps the image's Test, and its own durations where it sets them.
  const requested = request.Healthcheck;
  if (!requested && img.Healthcheck) merged.Healthcheck = { ...img.Healthcheck };
  else if (requested && !requested.Test?.length && img.Healthcheck) {
    merged.Healthcheck = { ...img.Healthcheck };
    for (const key of ['Interval', 'Timeout', 'StartPeriod', 'StartInterval', 'Retries'] as const) {
      if (requested[key]) merged.Healthcheck[key] = requested[key];
    }
  }
  return merged;
}

const RESTART_POLICIES = new Set(['', 'no', 'always', 'unless-stopped', 'on-failure']);

/** Docker's checks of a restart policy, with its messages. */
export function checkRestartPolicy(hostConfig: HostConfig): void {
  const policy = hostConfig.RestartPolicy;
  const name = policy?.Name ?? '';
  if (!RESTART_POLICIES.has(name)) throw new InvalidArgument(`invalid restart policy: unknown policy '${name}'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'`);
  const retries = policy?.MaximumRetryCount ?? 0;
  if (retries < 0) throw new InvalidArgument('invalid restart policy: maximum retry count cannot be negative');
  if (retries > 0 && name !== 'on-failure') {
    throw new InvalidArgument(`invalid restart policy: maximum retry count can only be used with 'on-failure'`);
  }
  if (hostConfig.AutoRemove && name !== '' && name !== 'no') {
    throw new InvalidArgument(`can't create 'AutoRemove' container with restart policy`);
  }
}

/** Whether a container that just exited with `exitCode` should be started again. */
export function shouldRestart(record: ContainerRecord, exitCode: number): boolean {
  if (record.manuallyStopped || record.hostConfig.AutoRemove) return false;
  const policy = record.hostConfig.RestartPolicy;
  switch (policy?.Name) {
    case 'always':
    case 'unless-stopped':
      return true;
    case 'on-failure': {
      const max = policy.MaximumRetryCount ?? 0;
      return exitCode !== 0 && (max === 0 || record.restartCount < max);
    }
    default:
      return false;
  }
}

/** Docker's signal names and numbers (linux/amd64). */
export const SIGNALS: Record<string, number> = {
  ABRT: 6, ALRM: 14, BUS: 7, CHLD: 17, CONT: 18, FPE: 8, HUP: 1, ILL: 4, INT: 2, IO: 29, IOT: 6, KILL: 9,
  PIPE: 13, POLL: 29, PROF: 27, PWR: 30, QUIT: 3, SEGV: 11, STKFLT: 16, STOP: 19, SYS: 31, TERM: 15, TRAP: 5,
  TSTP: 20, TTIN: 21, TTOU: 22, URG: 23, USR1: 10, USR2: 12, VTALRM: 26, WINCH: 28, XCPU: 24, XFSZ: 25,
};

/** 'SIGTERM', 'TERM', '15', 'SIGRTMIN+3' -> the number; Docker's message otherwise. */
export function parseSignal(value: string): number {
  const v = value.trim().toUpperCase().replace(/^SIG/, '');
  if (/^\d+$/.test(v)) {
    const n = Number(v);
    if (n < 1 || n > 64) throw new InvalidArgument(`Invalid signal: ${value}`);
    return n;
  }
  const rt = /^RTMIN(?:\+(\d+))?$/.exec(v) ?? /^RTMAX(?:-(\d+))?$/.exec(v);
  if (rt) return v.startsWith('RTMIN') ? 34 + Number(rt[1] ?? 0) : 64 - Number(rt[1] ?? 0);
  const n = SIGNALS[v];
  if (n === undefined) throw new InvalidArgument(`Invalid signal: ${value}`);
  return n;
}
