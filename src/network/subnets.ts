/**
 * IPv4 subnets: parsing, overlap, and picking a free one for a new network the way docker
 * does (the first of 172.17-31.0.0/16, then 192.168.x.0/20, that overlaps no route of the
 * host and no other network).
 */
import { readFile } from 'node:fs/promises';
import { InvalidArgument } from '../errors/errors.js';

export interface Subnet {
  /** The network address, as a 32-bit unsigned number. */
  base: number;
  prefix: number;
}

export function parseAddress(text: string): number | undefined {
  const parts = text.split('.');
  if (parts.length !== 4 || parts.some((p) => !/^\d{1,3}$/.test(p) || Number(p) > 255)) return undefined;
  return parts.reduce((n, p) => n * 256 + Number(p), 0);
}

export function formatAddress(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

function maskOf(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

/** '172.18.0.0/16'; a host address is taken to its network ('172.18.0.5/16' is 172.18.0.0/16). */
export function parseSubnet(text: string): Subnet {
  const m = /^([\d.]+)\/(\d{1,2})$/.exec(text.trim());
  const address = m ? parseAddress(m[1]!) : undefined;
  const prefix = m ? Number(m[2]) : NaN;
  if (address === undefined || !(prefix >= 0 && prefix <= 32)) throw new InvalidArgument(`invalid subnet ${JSON.stringify(text)}: want an IPv4 CIDR such as 172.20.0.0/16`);
  return { base: (address & maskOf(prefix)) >>> 0, prefix };
}

export function subnetString(s: Subnet): string {
  return `${formatAddress(s.base)}/${s.prefix}`;
}

export function contains(s: Subnet, address: number): boolean {
  return ((address & maskOf(s.prefix)) >>> 0) === s.base;
}

export function overlaps(a: Subnet, b: Subnet): boolean {
  const prefix = Math.min(a.prefix, b.prefix);
  return ((a.base & maskOf(prefix)) >>> 0) === ((b.base & maskOf(prefix)) >>> 0);
}

/** The first usable address: docker's default gateway. */
export function firstHost(s: Subnet): string {
  return formatAddress(s.base + 1);
}

/** The host's IPv4 routes, but the default route (from /proc/net/route). */
export async function hostRoutes(): Promise<Subnet[]> {
  let text = '';
  try {
    text = await readFile('/proc/net/route', 'utf8');
  } catch {
    return [];
  }
  const routes: Subnet[] = [];
  for (const line of text.split('\n').slice(1)) {
    const cols = line.trim().split(/\s+/);
    if (cols.length < 8) continue;
    // The kernel prints the address's bytes as a host-order (little-endian) number: read
    // back that way, they give the address as a number.
    const base = Buffer.from(cols[1]!, 'hex').readUInt32LE(0);
    const mask = Buffer.from(cols[7]!, 'hex').readUInt32LE(0);
    const prefix = mask.toString(2).replace(/0/g, '').length;
    if (prefix === 0) continue;
    routes.push({ base, prefix });
  }
  return routes;
}

function* candidates(): Generator<Subnet> {
  for (let second = 17; second <= 31; second++) yield { base: parseAddress(`172.${second}.0.0`)!, prefix: 16 };
  for (let third = 0; third < 256; third += 16) yield { base: parseAddress(`192.168.${third}.0`)!, prefix: 20 };
}

/** The first candidate subnet that overlaps none of `taken`. */
export function freeSubnet(taken: readonly Subnet[]): Subnet {
  for (const c of candidates()) if (!taken.some((t) => overlaps(c, t))) return c;
  throw new InvalidArgument('could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network');
}
