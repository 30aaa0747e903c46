/**
 * Linux capabilities as Docker handles them: the default set a container gets, `--cap-add`
 * and `--cap-drop` (names with or without "CAP_", any case, and "ALL"), and `--privileged`.
 *
 * "All capabilities" means all that this process holds, not all the kernel knows: runc
 * cannot grant a capability its caller lacks (here root runs without CAP_SYS_RESOURCE),
 * so asking for one fails early with a clear message instead of inside runc.
 */
import { readFileSync } from 'node:fs';

import { InvalidArgument } from '../errors/errors.js';

/** Every capability name Linux defines, indexed by its number (capability.h). */
export const CAPABILITIES: readonly string[] = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_DAC_READ_SEARCH', 'CAP_FOWNER', 'CAP_FSETID', 'CAP_KILL',
  'CAP_SETGID', 'CAP_SETUID', 'CAP_SETPCAP', 'CAP_LINUX_IMMUTABLE', 'CAP_NET_BIND_SERVICE',
  'CAP_NET_BROADCAST', 'CAP_NET_ADMIN', 'CAP_NET_RAW', 'CAP_IPC_LOCK', 'CAP_IPC_OWNER', 'CAP_SYS_MODULE',
  'CAP_SYS_RAWIO', 'CAP_SYS_CHROOT', 'CAP_SYS_PTRACE', 'CAP_SYS_PACCT', 'CAP_SYS_ADMIN', 'CAP_SYS_BOOT',
  'CAP_SYS_NICE', 'CAP_SYS_RESOURCE', 'CAP_SYS_TIME', 'CAP_SYS_TTY_CONFIG', 'CAP_MKNOD', 'CAP_LEASE',
  'CAP_AUDIT_WRITE', 'CAP_AUDIT_CONTROL', 'CAP_SETFCAP', 'CAP_MAC_OVERRIDE', 'CAP_MAC_ADMIN', 'CAP_SYSLOG',
  'CAP_WAKE_ALARM', 'CAP_BLOCK_SUSPEND', 'CAP_AUDIT_READ', 'CAP_PERFMON', 'CAP_BPF', 'CAP_CHECKPOINT_RESTORE',
];

/** The capabilities Docker gives a container that asks for nothing (in Docker's order). */
export const DEFAULT_CAPABILITIES: readonly string[] = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FSETID', 'CAP_FOWNER', 'CAP_MKNOD', 'CAP_NET_RAW', 'CAP_SETGID',
  'CAP_SETUID', 'CAP_SETFCAP', 'CAP_SETPCAP', 'CAP_NET_BIND_SERVICE', 'CAP_SYS_CHROOT', 'CAP_KILL',
  'CAP_AUDIT_WRITE',
];

const ALL = 'ALL';

let available: readonly string[] | undefined;

/**
 * The capabilities this process may hand on: those in its effective set that the running
 * kernel knows (cap_last_cap). Read once; a process's capabilities do not grow.
 */
export function availableCapabilities(): readonly string[] {
  if (available) return available;
  let lastCap = CAPABILITIES.length - 1;
  try {
    lastCap = Math.min(lastCap, Number.parseInt(readFileSync('/proc/sys/kernel/cap_last_cap', 'utf8'), 10));
  } catch {
    // no /proc/sys: assume the kernel knows every name we do
  }
  let effective: bigint | undefined;
  try {
    const match = /^CapEff:\s*([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'));
    if (match?.[1]) effective = BigInt(`0x${match[1]}`);
  } catch {
    // unreadable: fall back to every known capability, as Docker does
  }
  available = CAPABILITIES.filter((_, bit) => bit <= lastCap && (effective === undefined || ((effective >> BigInt(bit)) & 1n) === 1n));
  return available;
}

/**
 * Upper-cases, adds the CAP_ prefix and checks each name; "ALL" passes through.
 * `requireAvailable` refuses names this process cannot grant (for adds, not drops).
 */
export function normalizeCapabilities(names: readonly string[], requireAvailable = true): string[] {
  const out: string[] = [];
  for (const raw of names) {
    let name = raw.trim().toUpperCase();
    if (name === ALL) {
      out.push(ALL);
      continue;
    }
    if (!name.startsWith('CAP_')) name = `CAP_${name}`;
    if (!CAPABILITIES.includes(name)) throw new InvalidArgument(`unknown capability: "${name}"`);
    if (requireAvailable && !availableCapabilities().includes(name)) {
      throw new InvalidArgument(`capability not supported by your kernel or not available in the current environment: "${name}"`);
    }
    out.push(name);
  }
  return out;
}

export interface CapabilityOptions {
  capAdd?: readonly string[] | null;
  capDrop?: readonly string[] | null;
  privileged?: boolean;
}

/**
 * The container's capability set, as Docker computes it: privileged gets all; otherwise
 * "ALL" in adds means all but the drops, "ALL" in drops means only the adds, else the
 * defaults less the drops plus the adds.
 */
export function tweakCapabilities(options: CapabilityOptions): string[] {
  if (options.privileged) return [...availableCapabilities()];
  const adds = normalizeCapabilities(options.capAdd ?? []);
  const drops = normalizeCapabilities(options.capDrop ?? [], false);
  let caps: string[];
  if (adds.includes(ALL)) {
    caps = availableCapabilities().filter((c) => !drops.includes(c));
  } else if (drops.includes(ALL)) {
    caps = adds;
  } else {
    caps = [...DEFAULT_CAPABILITIES.filter((c) => !drops.includes(c)), ...adds];
  }
  return [...new Set(caps)];
}

/** The bitmask of a set of capability names, as /proc/<pid>/status prints it (CapEff). */
export function capabilityMask(names: readonly string[]): bigint {
  let mask = 0n;
  for (const name of names) {
    const bit = CAPABILITIES.indexOf(name);
    if (bit < 0) throw new InvalidArgument(`unknown capability: "${name}"`);
    mask |= 1n << BigInt(bit);
  }
  return mask;
}
