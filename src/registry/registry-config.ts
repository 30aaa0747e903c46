/**
 * The daemon's registry settings: which registries are spoken to over plain HTTP
 * (`--insecure-registry host[:port]` or a CIDR, and loopback always) and which mirrors a pull
 * tries first (`--registry-mirror URL`), with what `/info` shows of them (RegistryConfig).
 *
 * Unlike docker, whose mirrors serve Docker Hub only, berth tries its mirrors for a pull from
 * any registry: each mirror in turn, then the registry itself. A mirror serves a repository
 * under the same path as the registry it mirrors.
 */
import { BlockList, isIP } from 'node:net';
import { InvalidArgument } from '../errors/errors.js';

/** Loopback, insecure whatever the flags say (as docker's defaults). */
const LOOPBACK_CIDRS = ['::1/128', '127.0.0.0/8'];

export interface RegistrySettings {
  /** As given: 'host', 'host:port' or a CIDR ('10.0.0.0/8'). */
  insecureRegistries?: readonly string[];
  /** Mirror URLs, normalised ('http://127.0.0.1:5001/'). */
  registryMirrors?: readonly string[];
}

/** docker's ValidateMirror: http(s), a host, nothing after it; normalised to 'scheme://host/'. */
export function normalizeMirror(input: string): string {
  let url: URL;
  try {
    url = new URL(input);
  } catch (err) {
    throw new InvalidArgument(`invalid mirror: "${input}" is not a valid URI`, { cause: err });
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new InvalidArgument(`invalid mirror: unsupported scheme "${url.protocol.slice(0, -1)}" in "${input}"`);
  }
  if ((url.pathname !== '/' && url.pathname !== '') || url.search || url.hash) {
    throw new InvalidArgument(`invalid mirror: path, query, or fragment at end of the URI "${input}"`);
  }
  if (url.username || url.password) throw new InvalidArgument(`invalid mirror: username/password not allowed in URI "${input}"`);
  return `${url.protocol}//${url.host}/`;
}

/** Checks an `--insecure-registry` value as docker does: no scheme, a CIDR or host[:port]. */
export function validateInsecureRegistry(input: string): string {
  if (input.includes('://')) throw new InvalidArgument(`insecure registry ${input} should not contain '://'`);
  if (input.includes('/')) {
    parseCidr(input);
    return input;
  }
  if (!/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+)(:\d{1,5})?$/.test(input)) throw new InvalidArgument(`insecure registry ${input} is not valid`);
  return input;
}

function parseCidr(cidr: string): { address: string; prefix: number; family: 'ipv4' | 'ipv6' } {
  const slash = cidr.lastIndexOf('/');
  const address = cidr.slice(0, slash);
  const prefix = Number(cidr.slice(slash + 1));
  const version = isIP(address);
  const max = version === 4 ? 32 : 128;
  if (version === 0 || !/^\d{1,3}$/.test(cidr.slice(slash + 1)) || prefix > max) {
    throw new InvalidArgument(`insecure registry ${cidr} is not a valid CIDR`);
  }
  return { address, prefix, family: version === 4 ? 'ipv4' : 'ipv6' };
}

/** 'host:port' -> 'host'; '[::1]:5000' -> '::1'. */
export function hostOf(domain: string): string {
  if (domain.startsWith('[')) return domain.slice(1, domain.indexOf(']'));
  const colon = domain.lastIndexOf(':');
  return colon >= 0 && domain.indexOf(':') === colon ? domain.slice(0, colon) : domain;
}

export class RegistryConfig {
  readonly #hosts: string[];
  readonly #cidrs: string[];
  readonly #blocks = new BlockList();
  readonly mirrors: string[];

  constructor(settings: RegistrySettings = {}) {
    const insecure = (settings.insecureRegistries ?? []).map(validateInsecureRegistry);
    this.#cidrs = [...LOOPBACK_CIDRS, ...insecure.filter((r) => r.includes('/') && !LOOPBACK_CIDRS.includes(r))];
    this.#hosts = [...new Set(insecure.filter((r) => !r.includes('/')))];
    for (const cidr of this.#cidrs) {
      const { address, prefix, family } = parseCidr(cidr);
      this.#blocks.addSubnet(address, prefix, family);
    }
    this.mirrors = [...new Set((settings.registryMirrors ?? []).map(normalizeMirror))];
  }

  /**
   * Whether `domain` (host[:port]) is reached over plain HTTP: localhost, a listed host or
   * host:port, or a literal address inside a listed CIDR (names are not resolved for this).
   */
  isInsecure(domain: string): boolean {
    const host = hostOf(domain);
    if (host === 'localhost') return true;
    if (this.#hosts.includes(domain) || this.#hosts.includes(host)) return true;
    const version = isIP(host);
    return version !== 0 && this.#blocks.check(host, version === 4 ? 'ipv4' : 'ipv6');
  }

  /** What `/info` shows as RegistryConfig, in docker's shape. */
  info(): Record<string, unknown> {
    const indexConfigs: Record<string, unknown> = {
      'docker.io': { Name: 'docker.io', Mirrors: this.mirrors, Secure: true, Official: true },
    };
    for (const host of this.#hosts) indexConfigs[host] = { Name: host, Mirrors: this.mirrors, Secure: false, Official: false };
    return {
      AllowNondistributableArtifactsCIDRs: [],
      AllowNondistributableArtifactsHostnames: [],
      InsecureRegistryCIDRs: this.#cidrs,
      IndexConfigs: indexConfigs,
      Mirrors: this.mirrors,
    };
  }
}
