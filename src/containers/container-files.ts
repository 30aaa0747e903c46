/** The files the daemon makes for a container: /etc/hostname, /etc/hosts, /etc/resolv.conf. */
import { readFile, writeFile } from 'node:fs/promises';
import { InvalidArgument } from '../errors/errors.js';
import type { HostConfig } from '../runtime/oci-spec.js';

export function hostnameFile(hostname: string): string {
  return `${hostname}\n`;
}

/** Docker's default /etc/hosts, plus --add-host entries (`name:ip`, `name=ip`), the container's own address and its peers' lines. */
export function hostsFile(hostname: string, extraHosts: readonly string[] = [], address?: string, peers: readonly string[] = []): string {
  const lines = [
    '127.0.0.1\tlocalhost',
    '::1\tlocalhost ip6-localhost ip6-loopback',
    'fe00::0\tip6-localnet',
    'ff00::0\tip6-mcastprefix',
    'ff02::1\tip6-allnodes',
    'ff02::2\tip6-allrouters',
  ];
  for (const entry of extraHosts) {
    const m = /^([^:=]+)[:=](.+)$/.exec(entry);
    if (!m) throw new InvalidArgument(`invalid argument "${entry}" for "--add-host" flag: bad format for add-host: "${entry}"`);
    const ip = m[2]!.replace(/^\[(.*)\]$/, '$1');
    lines.push(`${ip === 'host-gateway' ? '127.0.0.1' : ip}\t${m[1]}`);
  }
  if (address) lines.push(`${address}\t${hostname}`);
  lines.push(...peers);
  return `${lines.join('\n')}\n`;
}

/**
 * The host's resolv.conf for a container: localhost name servers removed (they mean nothing
 * inside another network namespace), --dns, --dns-search and --dns-option applied.
 */
export async function resolvConfFile(hostConfig: HostConfig, hostNetwork: boolean): Promise<string> {
  let host = '';
  try {
    host = await readFile('/etc/resolv.conf', 'utf8');
  } catch {
    // No resolv.conf on the host: start from nothing.
  }
  const lines = host.split('\n');
  let nameservers = lines.filter((l) => /^\s*nameserver\s/.test(l)).map((l) => l.trim().split(/\s+/)[1]!);
  let search = lines.filter((l) => /^\s*(search|domain)\s/.test(l)).flatMap((l) => l.trim().split(/\s+/).slice(1));
  let options = lines.filter((l) => /^\s*options\s/.test(l)).flatMap((l) => l.trim().split(/\s+/).slice(1));
  if (!hostNetwork) nameservers = nameservers.filter((ns) => !/^(127\.|::1$|localhost)/.test(ns));
  if (hostConfig.Dns?.length) nameservers = [...hostConfig.Dns];
  if (hostConfig.DnsSearch?.length) search = hostConfig.DnsSearch.filter((s) => s !== '.');
  if (hostConfig.DnsOptions?.length) options = [...hostConfig.DnsOptions];
  const out: string[] = [];
  if (search.length) out.push(`search ${search.join(' ')}`);
  for (const ns of nameservers) out.push(`nameserver ${ns}`);
  if (options.length) out.push(`options ${options.join(' ')}`);
  return `${out.join('\n')}\n`;
}

export async function writeContainerFiles(
  paths: { hostname: string; hosts: string; resolvConf: string },
  hostname: string,
  hostConfig: HostConfig,
  /** The container's address on its network, which its hostname resolves to. */
  address?: string,
  /** The other containers on its network, as /etc/hosts lines. */
  peers: string[] = [],
): Promise<void> {
  const hostNetwork = hostConfig.NetworkMode === 'host';
  const hosts = hostNetwork ? await readFile('/etc/hosts', 'utf8').catch(() => hostsFile(hostname)) : hostsFile(hostname, hostConfig.ExtraHosts ?? [], address, peers);
  await Promise.all([
    writeFile(paths.hostname, hostnameFile(hostname)),
    writeFile(paths.hosts, hosts),
    writeFile(paths.resolvConf, await resolvConfFile(hostConfig, hostNetwork)),
  ]);
}
