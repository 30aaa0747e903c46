/**
 * A container's network, from its NetworkMode: `bridge` (the default, also '' and 'default'),
 * a network of the user's by name or id, `none`, `host`, or `container:<name|id>` (the other
 * container's namespace). Connects a container as it starts (namespace, address, published
 * ports) and disconnects it when it exits.
 */
import { Conflict, Forbidden, InvalidArgument, NotFound } from '../errors/errors.js';
import type { Endpoint, NetworkManager, NetworkRecord } from '../network/network-manager.js';
import { parsePortKey, type PortMap, type PortProxy } from '../network/port-proxy.js';
import type { HostConfig } from '../runtime/oci-spec.js';
import type { ContainerRecord } from './container.js';

/** A starting container's network: its namespace now, its interfaces and ports when `attached` settles. */
export interface Connection {
  /** The namespace the container joins, or 'host'. */
  netns: string | 'host';
  attached: Promise<Attached>;
}

export interface Attached {
  /** One per bridge network, the first (eth0) first. */
  endpoints?: Endpoint[];
  ports?: PortMap;
}

/** The network a NetworkMode names: '' and 'default' are the default bridge. */
export function networkName(mode: string | undefined): string {
  return !mode || mode === 'default' ? 'bridge' : mode;
}

export class ContainerNetwork {
  readonly networks: NetworkManager;
  readonly #ports: PortProxy;
  readonly #lookup: (idOrName: string) => ContainerRecord;

  constructor(networks: NetworkManager, ports: PortProxy, lookup: (idOrName: string) => ContainerRecord) {
    this.networks = networks;
    this.#ports = ports;
    this.#lookup = lookup;
  }

  /** The network `mode` names; undefined for `container:…`. Docker's errors for the rest. */
  networkOf(mode: string | undefined): NetworkRecord | undefined {
    const name = networkName(mode);
    if (name.startsWith('container:')) return undefined;
    const network = this.networks.find(name);
    if (!network) throw new NotFound(`network ${name} not found`);
    return network;
  }

  /** Checks a create request's network settings before anything is stored; answers docker's warnings. */
  check(hostConfig: HostConfig): string[] {
    const mode = hostConfig.NetworkMode;
    const published = Object.values(hostConfig.PortBindings ?? {}).some((list) => (list?.length ?? 0) > 0) || hostConfig.PublishAllPorts === true;
    for (const key of Object.keys(hostConfig.PortBindings ?? {})) parsePortKey(key);
    if (mode?.startsWith('container:')) {
      if (mode.length === 'container:'.length) throw new InvalidArgument('invalid network mode: container: needs a container name or id');
      if (published) throw new InvalidArgument('conflicting options: port publishing and the container type network mode');
      this.#lookup(mode.slice('container:'.length));
      return [];
    }
    // A network that does not exist fails the start, not the create (as docker: the CLI takes a
    // 404 from create to mean the image is missing).
    const network = this.networks.find(networkName(mode));
    if (published && network?.driver === 'host') return ['Published ports are discarded when using host network mode'];
    if (published && network?.driver === 'null') throw new InvalidArgument('conflicting options: port publishing and the none network mode');
    return [];
  }

  /**
   * The networks a container is to be on when it starts: the one its NetworkMode names, then
   * those its NetworkingConfig (create, or `network connect` while it was stopped) adds.
   */
  wanted(record: ContainerRecord): NetworkRecord[] {
    const primary = this.networkOf(record.hostConfig.NetworkMode);
    const out: NetworkRecord[] = primary ? [primary] : [];
    for (const key of Object.keys(endpointsConfig(record))) {
      const n = this.networks.find(key);
      if (n && n.driver === 'bridge' && !out.some((o) => o.id === n.id)) out.push(n);
    }
    return out;
  }

  /**
   * The container's namespace, made before its process starts; `attached` settles when it
   * also has an interface on each of its bridge networks (eth0, eth1, …; the default route
   * through the first) and its ports are published on the first's address. The two are
   * apart so that the runtime can create the container (which needs only the namespace)
   * while CNI sets up the interfaces. A failed `attached` has undone its interfaces.
   */
  async connect(record: ContainerRecord): Promise<Connection> {
    const mode = record.hostConfig.NetworkMode;
    const none = Promise.resolve({});
    if (mode?.startsWith('container:')) {
      const other = this.#lookup(mode.slice('container:'.length));
      if (!other.state.Running) throw new Conflict(`cannot join network namespace of a non running container: container ${other.id} is not running`);
      if (other.hostConfig.NetworkMode === 'host') return { netns: 'host', attached: none };
      return { netns: this.networks.netnsPath(other.id), attached: none };
    }
    const networks = this.wanted(record);
    if (networks[0]?.driver === 'host') return { netns: 'host', attached: none };
    const netns = await this.networks.createNamespace(record.id);
    const attached = this.#attach(record, networks.filter((n) => n.driver === 'bridge'));
    attached.catch(() => undefined);
    return { netns, attached };
  }

  async #attach(record: ContainerRecord, networks: NetworkRecord[]): Promise<Attached> {
    const endpoints: Endpoint[] = [];
    try {
      for (const network of networks) {
        const ifName = `eth${endpoints.length}`;
        const ip = endpointAddress(record, network);
        endpoints.push(await this.networks.attach(record.id, network, { ifName, defaultRoute: ifName === 'eth0', aliases: endpointAliases(record, network), ...(ip ? { ip } : {}) }));
      }
      const wanted = portsToPublish(record);
      const address = endpoints[0]?.ipAddress;
      let ports: PortMap | undefined;
      if (address && Object.keys(wanted).length > 0) ports = await this.#ports.publish(record.id, address, wanted);
      else if (Object.keys(wanted).length > 0) ports = wanted;
      return { endpoints, ...(ports ? { ports } : {}) };
    } catch (err) {
      for (const e of endpoints) await this.networks.detach(record.id, e).catch(() => undefined);
      throw err;
    }
  }

  /** Undoes connect(): ports unbound, addresses given back, namespace removed. Safe to repeat. */
  async disconnect(record: ContainerRecord): Promise<void> {
    await this.#ports.unpublish(record.id);
    const mode = record.hostConfig.NetworkMode;
    if (mode?.startsWith('container:') || mode === 'host') return;
    for (const e of record.endpoints ?? []) await this.networks.detach(record.id, e);
    await this.networks.removeNamespace(record.id);
  }

  /** Puts a running container on one more network, as the next interface (at `ip`, when given). */
  async attachRunning(record: ContainerRecord, network: NetworkRecord, aliases: string[], ip?: string): Promise<Endpoint> {
    const mode = record.hostConfig.NetworkMode;
    if (mode === 'host' || mode?.startsWith('container:')) {
      throw new Forbidden('container sharing network namespace with another container or host cannot be connected to any other network');
    }
    const used = new Set((record.endpoints ?? []).map((e) => e.ifName));
    let n = 0;
    while (used.has(`eth${n}`)) n++;
    return this.networks.attach(record.id, network, { ifName: `eth${n}`, defaultRoute: (record.endpoints ?? []).length === 0, aliases, ...(ip ? { ip } : {}) });
  }

  /** After a daemon restart: binds a running container's published ports again. */
  async restore(record: ContainerRecord): Promise<void> {
    const address = record.endpoints?.[0]?.ipAddress;
    if (!address || !record.ports) return;
    await this.#ports.publish(record.id, address, record.ports);
  }

  /**
   * What a container on networks of the user's finds in /etc/hosts besides itself: each other
   * running container on them, by name, aliases and short id (docker answers these names from
   * its embedded DNS server; on the default bridge, as in docker, containers see no names).
   */
  peerLines(record: ContainerRecord, all: ContainerRecord[]): string[] {
    const lines: string[] = [];
    for (const endpoint of record.endpoints ?? []) {
      if (endpoint.networkName === 'bridge') continue;
      for (const c of this.endpointsOn(endpoint.networkId, all)) {
        const theirs = c.endpoints!.find((e) => e.networkId === endpoint.networkId)!;
        if (c.id === record.id || !theirs.ipAddress) continue;
        lines.push(`${theirs.ipAddress}\t${[c.name.slice(1), ...(theirs.aliases ?? []), c.id.slice(0, 12)].join(' ')}`);
      }
    }
    return lines;
  }

  /** The running containers on network `id` (docker's active endpoints). */
  endpointsOn(id: string, all: ContainerRecord[]): ContainerRecord[] {
    return all.filter((c) => c.state.Running && c.endpoints?.some((e) => e.networkId === id));
  }
}

/** A container's settings on one network (docker's EndpointSettings, what berth reads of it). */
export interface EndpointConfig {
  Aliases?: string[] | null;
  IPAMConfig?: { IPv4Address?: string } | null;
}

/** NetworkingConfig.EndpointsConfig: network name or id -> its settings. */
export function endpointsConfig(record: ContainerRecord): Record<string, EndpointConfig> {
  return (record.networkingConfig as { EndpointsConfig?: Record<string, EndpointConfig> } | undefined)?.EndpointsConfig ?? {};
}

/** A container's settings on `network`: by its name or id (the default bridge's also as 'default'). */
function endpointConfigOn(record: ContainerRecord, network: NetworkRecord): EndpointConfig | undefined {
  const config = endpointsConfig(record);
  return config[network.name] ?? config[network.id] ?? (network.name === 'bridge' ? config['default'] : undefined);
}

/** The address asked for on `network` (`--ip`), if any. */
function endpointAddress(record: ContainerRecord, network: NetworkRecord): string | undefined {
  return endpointConfigOn(record, network)?.IPAMConfig?.IPv4Address || undefined;
}

/** Docker's aliases on a user network: what NetworkingConfig names, and the short id. */
function endpointAliases(record: ContainerRecord, network: NetworkRecord): string[] {
  return [...new Set(endpointConfigOn(record, network)?.Aliases ?? [])];
}

/** -p bindings, and with -P every exposed port not bound by -p, on an ephemeral host port. */
function portsToPublish(record: ContainerRecord): PortMap {
  const out: PortMap = {};
  for (const [key, list] of Object.entries(record.hostConfig.PortBindings ?? {})) {
    if (list && list.length > 0) out[key.includes('/') ? key : `${key}/tcp`] = list.map((b) => ({ HostIp: b.HostIp ?? '', HostPort: b.HostPort ?? '' }));
  }
  if (record.hostConfig.PublishAllPorts) {
    for (const key of Object.keys(record.config.ExposedPorts ?? {})) {
      const full = key.includes('/') ? key : `${key}/tcp`;
      out[full] ??= [{ HostIp: '', HostPort: '' }];
    }
  }
  return out;
}
