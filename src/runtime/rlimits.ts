/**
 * `--ulimit` as the spec's process.rlimits, checked against what this process may grant.
 *
 * runc sets rlimits from inside the container's init, which inherits this process's
 * limits; raising a hard limit needs CAP_SYS_RESOURCE, which berthd may lack (it does on
 * hosts that run it in a restricted sandbox). A limit above our own hard limit would make
 * runc fail with a bare EPERM, so it is refused here with the numbers. With no --ulimit,
 * the container simply inherits the daemon's limits: no defaults are set.
 */
import { readFileSync } from 'node:fs';

import { InvalidArgument } from '../errors/errors.js';
import type { OciRlimit } from './spec-types.js';

export interface Ulimit {
  Name: string;
  Soft: number;
  Hard: number;
}

/** Docker's ulimit names and the row of /proc/self/limits that shows each. */
const ULIMITS: Readonly<Record<string, string>> = {
  core: 'Max core file size',
  cpu: 'Max cpu time',
  data: 'Max data size',
  fsize: 'Max file size',
  locks: 'Max file locks',
  memlock: 'Max locked memory',
  msgqueue: 'Max msgqueue size',
  nice: 'Max nice priority',
  nofile: 'Max open files',
  nproc: 'Max processes',
  rss: 'Max resident set',
  rtprio: 'Max realtime priority',
  rttime: 'Max realtime timeout',
  sigpending: 'Max pending signals',
  stack: 'Max stack size',
};

export interface ProcessLimit {
  soft: number;
  hard: number;
}

/** This process's limits by Docker's ulimit name; `Infinity` for "unlimited". */
export function processLimits(text: string = readFileSync('/proc/self/limits', 'utf8')): Record<string, ProcessLimit> {
  const out: Record<string, ProcessLimit> = {};
  const value = (v: string): number => (v === 'unlimited' ? Infinity : Number(v));
  for (const [name, row] of Object.entries(ULIMITS)) {
    const line = text.split('\n').find((l) => l.startsWith(row));
    if (!line) continue;
    const fields = line.slice(row.length).trim().split(/\s+/);
    if (fields.length >= 2 && fields[0] !== undefined && fields[1] !== undefined) {
      out[name] = { soft: value(fields[0]), hard: value(fields[1]) };
    }
  }
  return out;
}

function show(n: number): string {
  return n === Infinity ? 'unlimited' : String(n);
}

/**
 * The rlimits for `ulimits` (a negative value means unlimited, as in Docker). The last of
 * several entries with one name wins.
 */
export function buildRlimits(ulimits: readonly Ulimit[], limits: Record<string, ProcessLimit> = processLimits()): OciRlimit[] {
  const byName = new Map<string, OciRlimit>();
  for (const u of ulimits) {
    const name = u.Name.trim().toLowerCase();
    if (!(name in ULIMITS)) throw new InvalidArgument(`invalid ulimit type: ${u.Name}`);
    if (!Number.isInteger(u.Soft) || !Number.isInteger(u.Hard)) {
      throw new InvalidArgument(`invalid ulimit argument: ${u.Name}=${u.Soft}:${u.Hard}`);
    }
    const soft = u.Soft < 0 ? Infinity : u.Soft;
    const hard = u.Hard < 0 ? Infinity : u.Hard;
    if (soft > hard) {
      throw new InvalidArgument(
        soft === Infinity
          ? `ulimit soft limit must be less than or equal to hard limit: soft: -1 (unlimited), hard: ${hard}`
          : `ulimit soft limit must be less than or equal to hard limit: ${soft} > ${hard}`,
      );
    }
    const own = limits[name];
    if (own && hard > own.hard) {
      throw new InvalidArgument(
        `ulimit ${name}: hard limit ${show(hard)} is above the daemon's own hard limit ${show(own.hard)}; ` +
          'raising it needs CAP_SYS_RESOURCE, which the daemon does not have',
      );
    }
    byName.set(name, { type: `RLIMIT_${name.toUpperCase()}`, hard, soft });
  }
  return [...byName.values()];
}

/** RLIM_INFINITY as the exact decimal runc expects in config.json. */
export const RLIM_INFINITY_JSON = '18446744073709551615';
