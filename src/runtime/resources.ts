/**
 * `linux.resources` from Docker's HostConfig: memory, CPU and pids limits, checked with
 * Docker's rules and messages first so that a bad value fails at create, not inside runc.
 */
import { existsSync } from 'node:fs';
import { cpus } from 'node:os';

import { InvalidArgument } from '../errors/errors.js';
import type { HostConfig } from './oci-spec.js';
import type { OciCpu, OciMemory } from './spec-types.js';

/** The resource fields of Docker's HostConfig. */
export type ResourceConfig = Pick<
  HostConfig,
  'Memory' | 'MemorySwap' | 'MemoryReservation' | 'NanoCpus' | 'CpuShares' | 'CpuPeriod' | 'CpuQuota' | 'CpusetCpus' | 'PidsLimit' | 'OomKillDisable'
>;

/** What the host's cgroups can do; detected by `cgroupFeatures()`. */
export interface CgroupFeatures {
  v2: boolean;
  /** Swap limits (v1 needs swap accounting: memory.memsw.*). */
  swap: boolean;
  cpuCount: number;
}

/** The host's cgroup setup: v2 (unified) or v1, and whether swap can be limited. */
export function cgroupFeatures(root = '/sys/fs/cgroup'): CgroupFeatures {
  // The host's cgroups do not change under a running daemon: looked at once per root.
  let features = detected.get(root);
  if (!features) {
    const v2 = existsSync(`${root}/cgroup.controllers`);
    const swap = v2 ? true : existsSync(`${root}/memory/memory.memsw.limit_in_bytes`);
    features = { v2, swap, cpuCount: cpus().length };
    detected.set(root, features);
  }
  return features;
}

const detected = new Map<string, CgroupFeatures>();

const MIN_MEMORY = 6 * 1024 * 1024;

/** "0-2,4" → the CPU numbers it names, or undefined when it is not a cpuset list. */
function parseCpuset(text: string): number[] | undefined {
  const out: number[] = [];
  for (const part of text.split(',')) {
    const match = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
    if (!match) return undefined;
    const from = Number(match[1]);
    const to = match[2] === undefined ? from : Number(match[2]);
    if (to < from) return undefined;
    for (let n = from; n <= to && n - from < 4096; n++) out.push(n);
  }
  return out;
}

/** Refuses what Docker's daemon refuses, with its messages. */
export function validateResources(r: ResourceConfig, features: CgroupFeatures): void {
  const memory = r.Memory ?? 0;
  const swap = r.MemorySwap ?? 0;
  const reservation = r.MemoryReservation ?? 0;
  const nano = r.NanoCpus ?? 0;
  const period = r.CpuPeriod ?? 0;
  const quota = r.CpuQuota ?? 0;
  const fail = (message: string): never => {
    throw new InvalidArgument(message);
  };
  if (memory < 0) fail('invalid memory limit: it must be a positive number of bytes');
  if (memory !== 0 && memory < MIN_MEMORY) fail('Minimum memory limit allowed is 6MB');
  if (memory > 0 && swap > 0 && swap < memory) fail('Minimum memoryswap limit should be larger than memory limit, see usage');
  if (memory === 0 && swap > 0) fail('You should always set the Memory limit when using Memoryswap limit, see usage');
  if (reservation > 0 && reservation < MIN_MEMORY) fail('Minimum memory reservation allowed is 6MB');
  if (memory > 0 && reservation > 0 && memory < reservation) {
    fail('Minimum memory limit can not be less than memory reservation limit, see usage');
  }
  if (nano > 0 && period > 0) fail('Conflicting options: Nano CPUs and CPU Period cannot both be set');
  if (nano > 0 && quota > 0) fail('Conflicting options: Nano CPUs and CPU Quota cannot both be set');
  if (nano < 0 || nano > features.cpuCount * 1e9) {
    fail(`range of CPUs is from 0.01 to ${features.cpuCount}.00, as there are only ${features.cpuCount} CPUs available`);
  }
  if ((r.CpuShares ?? 0) < 0) fail(`invalid CPU shares (${r.CpuShares}): value must be a positive integer`);
  if (period !== 0 && (period < 1000 || period > 1000000)) {
    fail('CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)');
  }
  if (quota > 0 && quota < 1000) fail('CPU cfs quota can not be less than 1ms (i.e. 1000)');
  if (r.CpusetCpus) {
    const list = parseCpuset(r.CpusetCpus);
    if (!list) fail(`invalid value ${r.CpusetCpus} for cpuset cpus`);
    if (list && list.some((n) => n >= features.cpuCount)) {
      fail(`Requested CPUs are not available - requested ${r.CpusetCpus}, available: 0-${features.cpuCount - 1}`);
    }
  }
}

/** linux.resources.memory, or undefined when nothing is limited. */
export function memoryResources(r: ResourceConfig, features: CgroupFeatures): OciMemory | undefined {
  const out: OciMemory = {};
  const memory = r.Memory ?? 0;
  if (memory > 0) out.limit = memory;
  if ((r.MemoryReservation ?? 0) > 0) out.reservation = r.MemoryReservation;
  if (features.swap) {
    // Docker's daemon turns an unset swap into twice the memory limit.
    const swap = r.MemorySwap ?? 0;
    if (swap > 0 || swap === -1) out.swap = swap;
    else if (swap === 0 && memory > 0) out.swap = memory * 2;
  }
  // cgroup v2 has no OOM-killer switch; Docker drops the option there.
  if (r.OomKillDisable === true && !features.v2) out.disableOOMKiller = true;
  return Object.keys(out).length > 0 ? out : undefined;
}

/** linux.resources.cpu: `--cpus` becomes a CFS quota per 100 ms period. */
export function cpuResources(r: ResourceConfig): OciCpu | undefined {
  const out: OciCpu = {};
  if ((r.CpuShares ?? 0) > 0) out.shares = r.CpuShares;
  if (r.CpusetCpus) out.cpus = r.CpusetCpus;
  const nano = r.NanoCpus ?? 0;
  if (nano > 0) {
    out.period = 100000;
    out.quota = Math.floor((nano * 100000) / 1e9);
  }
  if ((r.CpuPeriod ?? 0) !== 0) out.period = r.CpuPeriod;
  if ((r.CpuQuota ?? 0) !== 0) out.quota = r.CpuQuota;
  return Object.keys(out).length > 0 ? out : undefined;
}

/** linux.resources.pids: unset leaves none; zero or less means unlimited (-1), as Docker. */
export function pidsResources(r: ResourceConfig): { limit: number } | undefined {
  if (r.PidsLimit === undefined || r.PidsLimit === null) return undefined;
  return { limit: r.PidsLimit <= 0 ? -1 : r.PidsLimit };
}
