/**
 * A container's network, from its NetworkMode: `bridge` (the default, also '' and 'default'),
 * a network of the user's by name or id, `none`, `host`, or `container:<name|id>` (the other
 * container's namespace). Connects a container as it starts (namespace, address, published
 * ports) and disconnects it when it exits.
 */
import { Conflict, InvalidArgument, NotFound } from '../errors/errors.js';
import type { Endpoint, NetworkManager, NetworkRecord } from '../network/network-manager.js';
import { parsePortKey, type PortMap, type PortProxy } from '../network/port-proxy.js';
import type { HostConfig } from '../runtime/oci-spec.js';
import type { ContainerRecord } from './container.js';

/** What a started container's network is. */
export interface Connection {
  /** The namespace the container joins, or 'host'. */
  netns: string | 'host';
  endpoint?: Endpoint;
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

  /** Checks a create request's network settings before anything is stored. */
  check(hostConfig: HostConfig): void {
    const mode = hostConfig.NetworkMode;
    if (mode?.startsWith('container:')) {
      if (mode.length === 'container:'.length) throw new InvalidArgument('invalid network mode: container: needs a container name or id');
      this.#lookup(mode.slice('container:'.length));
      return;
    }
    // A network that does not exist fails the start, not the create (as docker: the CLI takes a
    // 404 from create to mean the image is missing).
    const network = this.networks.find(networkName(mode));
    const published = Object.values(hostConfig.PortBindings ?? {}).some((list) => (list?.length ?? 0) > 0) || hostConfig.PublishAllPorts;
    if (published && network && network.driver !== 'bridge') {
      throw new InvalidArgument(`conflicting options: port publishing and the ${network.name} network mode`);
    }
    for (const key of Object.keys(hostConfig.PortBindings ?? {})) parsePortKey(key);
  }

  /**
   * The container's namespace, address and published ports, made before its process starts.
   */
  async connect(record: ContainerRecord): Promise<Connection> {
    const mode = record.hostConfig.NetworkMode;
    if (mode?.startsWith('container:')) {
      const other = this.#lookup(mode.slice('container:'.length));
      if (!other.state.Running) throw new Conflict(`cannot join network namespace of a non running container: container ${other.id} is not running`);
      if (other.hostConfig.NetworkMode === 'host') return { netns: 'host' };
      return { netns: this.networks.netnsPath(other.id) };
    }
    const network = this.networkOf(mode)!;
    if (network.driver === 'host') return { netns: 'host' };
    const aliases = endpointAliases(record, network);
    const endpoint = await this.networks.attach(record.id, network, aliases);
    const connection: Connection = { netns: this.networks.netnsPath(record.id), endpoint };
    try {
      const wanted = portsToPublish(record);
      if (endpoint.ipAddress && Object.keys(wanted).length > 0) connection.ports = await this.#ports.publish(record.id, endpoint.ipAddress, wanted);
      else if (Object.keys(wanted).length > 0) connection.ports = wanted;
    } catch (err) {
      await this.networks.detach(record.id, network).catch(() => undefined);
      throw err;
    }
    return connection;
  }

  /** Undoes connect(): ports unbound, address given back, namespace removed. Safe to repeat. */
  async disconnect(record: ContainerRecord): Promise<void> {
    await this.#ports.unpublish(record.id);
    const mode = record.hostConfig.NetworkMode;
    if (mode?.startsWith('container:') || mode === 'host') return;
    const network = record.network ? this.networks.find(record.network.networkId) : this.networks.find(networkName(mode));
    await this.networks.detach(record.id, network);
  }

  /** After a daemon restart: binds a running container's published ports again. */
  async restore(record: ContainerRecord): Promise<void> {
    if (!record.network?.ipAddress || !record.ports) return;
    await this.#ports.publish(record.id, record.network.ipAddress, record.ports);
  }

  /**
   * What a container on a network of the user's finds in /etc/hosts besides itself: each other
   * running container on it, by name, aliases and short id (docker answers these names from
   * its embedded DNS server; on the default bridge, as in docker, containers see no names).
   */
  peerLines(record: ContainerRecord, all: ContainerRecord[]): string[] {
    const endpoint = record.network;
    if (!endpoint || endpoint.networkName === 'bridge') return [];
    return this.endpointsOn(endpoint.networkId, all)
      .filter((c) => c.id !== record.id && c.network?.ipAddress)
      .map((c) => `${c.network!.ipAddress}\t${[c.name.slice(1), ...(c.network!.aliases ?? []), c.id.slice(0, 12)].join(' ')}`);
  }

  /** The containers on network `id` now (docker's active endpoints). */
  endpointsOn(id: string, all: ContainerRecord[]): ContainerRecord[] {
    return all.filter((c) => c.state.Running && c.network?.networkId === id);
  }
}

/** Docker's aliases on a user network: what NetworkingConfig names, and the short id. */
function endpointAliases(record: ContainerRecord, network: NetworkRecord): string[] {
  const config = record.networkingConfig as { EndpointsConfig?: Record<string, { Aliases?: string[] | null }> } | undefined;
  const configured = config?.EndpointsConfig?.[network.name]?.Aliases ?? config?.EndpointsConfig?.[network.id]?.Aliases ?? [];
  return [...new Set([...(configured ?? [])])];
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
