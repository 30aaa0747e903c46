/**
 * docker's units (go-units and docker/cli): sizes ("4.26MB", "1.5MiB"), durations
 * ("About a minute", "3 days"), container status lines ("Up 3 minutes (Paused)",
 * "Exited (0) 2 hours ago"), size flags ("512m") and short IDs.
 */
import { InvalidArgument } from '../errors/errors.js';
import { formatFloat, quote } from './go-fmt.js';

const DECIMAL_UNITS = ['B', 'kB', 'MB', 'GB', 'TB', 'PB', 'EB', 'ZB', 'YB'];
const BINARY_UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB', 'ZiB', 'YiB'];

function sizeAndUnit(size: number, base: number, units: string[]): [number, string] {
  let i = 0;
  while (size >= base && i < units.length - 1) {
    size /= base;
    i++;
  }
  return [size, units[i] as string];
}

/**
 * A decimal size with `precision` significant digits, as go-units HumanSizeWithPrecision
 * (Go's %.*g): humanSize(4_260_000) is "4.26MB", humanSize(1200) "1.2kB", humanSize(0)
 * "0B". docker prints image, container and build-cache sizes with precision 3 (the
 * default here); go-units' HumanSize, used for "Total reclaimed space", is precision 4.
 */
export function humanSize(bytes: number, precision = 3): string {
  const [size, unit] = sizeAndUnit(bytes, 1000, DECIMAL_UNITS);
  return formatFloat(size, 'g', precision) + unit;
}

/** A binary size with 4 significant digits, as go-units BytesSize: "1.5MiB", "1KiB". */
export function bytesSize(bytes: number): string {
  const [size, unit] = sizeAndUnit(bytes, 1024, BINARY_UNITS);
  return formatFloat(size, 'g', 4) + unit;
}

/**
 * An approximate duration in words, as go-units HumanDuration: "Less than a second",
 * "1 second", "45 seconds", "About a minute", "3 minutes", "About an hour", "2 hours",
 * "3 days", "2 weeks", "3 months", "2 years".
 */
export function humanDuration(ms: number): string {
  const seconds = Math.trunc(ms / 1000);
  if (seconds < 1) return 'Less than a second';
  if (seconds === 1) return '1 second';
  if (seconds < 60) return `${seconds} seconds`;
  const minutes = Math.trunc(ms / 60_000);
  if (minutes === 1) return 'About a minute';
  if (minutes < 60) return `${minutes} minutes`;
  const hours = Math.trunc(ms / 3_600_000 + 0.5);
  if (hours === 1) return 'About an hour';
  if (hours < 48) return `${hours} hours`;
  if (hours < 24 * 7 * 2) return `${Math.trunc(hours / 24)} days`;
  if (hours < 24 * 30 * 2) return `${Math.trunc(hours / 24 / 7)} weeks`;
  if (hours < 24 * 365 * 2) return `${Math.trunc(hours / 24 / 30)} months`;
  return `${Math.trunc(Math.trunc(ms / 3_600_000) / 24 / 365)} years`;
}

export type Instant = Date | string | number;

function toMillis(t: Instant): number {
  if (t instanceof Date) return t.getTime();
  if (typeof t === 'number') return t;
  const ms = Date.parse(t);
  if (Number.isNaN(ms)) throw new InvalidArgument(`time ${quote(t)}: not a valid date`);
  return ms;
}

/** "3 minutes ago": how long before `now` a moment was, as docker's CREATED columns say. */
export function timeAgo(date: Instant, now: Instant = Date.now()): string {
  return `${humanDuration(toMillis(now) - toMillis(date))} ago`;
}

/** Go's zero time, as the Engine API writes an unset StartedAt or FinishedAt. */
function isZeroTime(t: Instant | null | undefined): boolean {
  if (t === undefined || t === null || t === '' || t === 0) return true;
  const ms = toMillis(t);
  return new Date(ms).getUTCFullYear() <= 1;
}

export interface ContainerStatusState {
  running: boolean;
  paused?: boolean;
  restarting?: boolean;
  dead?: boolean;
  removalInProgress?: boolean;
  exitCode?: number;
  /** Unset, null, "", 0 or Go's zero time "0001-01-01T00:00:00Z" mean never. */
  startedAt?: Instant | null;
  finishedAt?: Instant | null;
  /** The health-check status when the container has a health check. */
  health?: 'starting' | 'healthy' | 'unhealthy' | '' | null;
}

/**
 * A container's status line, as the daemon reports it in `docker ps` (moby's
 * State.String): "Up 3 minutes", "Up 3 minutes (Paused)", "Up 2 hours (healthy)",
 * "Up 5 seconds (health: starting)", "Restarting (1) 5 seconds ago", "Removal In
 * Progress", "Dead", "Created", "Exited (0) 2 hours ago".
 */
export function containerStatus(state: ContainerStatusState, now: Instant = Date.now()): string {
  const since = (t: Instant | null | undefined): string =>
    humanDuration(toMillis(now) - (isZeroTime(t) ? new Date('0001-01-01T00:00:00Z').getTime() : toMillis(t as Instant)));
  const exitCode = state.exitCode ?? 0;
  if (state.running) {
    if (state.paused) return `Up ${since(state.startedAt)} (Paused)`;
    if (state.restarting) return `Restarting (${exitCode}) ${since(state.finishedAt)} ago`;
    if (state.health !== undefined && state.health !== null) {
      const health = state.health === 'starting' ? 'health: starting' : state.health || 'unhealthy';
      return `Up ${since(state.startedAt)} (${health})`;
    }
    return `Up ${since(state.startedAt)}`;
  }
  if (state.removalInProgress) return 'Removal In Progress';
  if (state.dead) return 'Dead';
  if (isZeroTime(state.startedAt)) return 'Created';
  if (isZeroTime(state.finishedAt)) return '';
  return `Exited (${exitCode}) ${since(state.finishedAt)} ago`;
}

const DECIMAL_MULTIPLIERS: Record<string, number> = { k: 1e3, m: 1e6, g: 1e9, t: 1e12, p: 1e15 };
const BINARY_MULTIPLIERS: Record<string, number> = { k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40, p: 2 ** 50 };

/** go-units parseSize: a number, then optionally one space, then a unit. */
function parseSize(input: string, multipliers: Record<string, number>): number {
  let num: string;
  let suffix: string;
  const space = input.indexOf(' ');
  if (space >= 0) {
    num = input.slice(0, space);
    suffix = input.slice(space + 1);
  } else {
    let sep = -1;
    for (let i = input.length - 1; i >= 0; i--) {
      if ('0123456789.'.includes(input[i] as string)) {
        sep = i;
        break;
      }
    }
    if (sep < 0) throw new InvalidArgument(`invalid size: '${input}'`);
    num = input.slice(0, sep + 1);
    suffix = input.slice(sep + 1);
  }
  if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(num)) {
    throw new InvalidArgument(`strconv.ParseFloat: parsing ${quote(num)}: invalid syntax`);
  }
  let size = Number(num);
  if (size < 0) throw new InvalidArgument(`invalid size: '${input}'`);
  // Go's int64(size), without JavaScript's -0.
  const whole = (x: number): number => Math.trunc(x) + 0;
  if (suffix.length === 0) return whole(size);
  let sfx = suffix;
  const bad = (): never => {
    throw new InvalidArgument(`invalid suffix: '${sfx}'`);
  };
  if (suffix.length > 3) return bad();
  sfx = suffix.toLowerCase();
  if (sfx[0] === 'b') return sfx.length > 1 ? bad() : whole(size);
  const mul = multipliers[sfx[0] as string];
  if (mul === undefined) return bad();
  size *= mul;
  if (sfx.length === 2 && sfx[1] !== 'b') return bad();
  if (sfx.length === 3 && sfx.slice(1) !== 'ib') return bad();
  return whole(size);
}

/**
 * Bytes from a memory-like flag value, as go-units RAMInBytes: binary multiples, case
 * insensitive, an optional "b" or "ib" after the unit: "512m" and "512MiB" are 536870912,
 * "1.5g" is 1610612736. Throws InvalidArgument ("invalid suffix: 'x'") on bad input.
 */
export function parseBytes(input: string): number {
  return parseSize(input, BINARY_MULTIPLIERS);
}

/** Bytes from a decimal size, as go-units FromHumanSize: "32kB" is 32000, "1.5 MB" 1500000. */
export function parseHumanSize(input: string): number {
  return parseSize(input, DECIMAL_MULTIPLIERS);
}

/** A short ID as docker shows it: the digest algorithm dropped, 12 characters kept. */
export function truncateId(id: string): string {
  const colon = id.indexOf(':');
  const hex = colon >= 0 ? id.slice(colon + 1) : id;
  return hex.length > 12 ? hex.slice(0, 12) : hex;
}
