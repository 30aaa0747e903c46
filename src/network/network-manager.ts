/**
 * Networks and the endpoints containers have on them.
 *
 * Three networks always exist, as in docker: `bridge` (the default), `host` and `none`; users
 * add bridge networks of their own. A bridge network is a Linux bridge on the host (berth0
 * for the default, br-<id> for the others) with the network's gateway address; each
 * container on it gets a network namespace of its own, kept at `<exec root>/netns/<id>`,
 * with a veth pair into the bridge and an address from the subnet, both made by CNI's
 * bridge and host-local plugins (the loopback plugin brings up lo). No NAT, no forwarding:
 * the host keeps ip_forward as it is (CNI's gateway mode would turn it on, so berth puts the
 * gateway address on the bridge itself), and nothing from a container subnet is routed
 * beyond this host. Published ports reach containers through berthd's relay (port-proxy.ts).
 *
 *   <data root>/network/networks.json   the networks, written whole and atomically
 *   <data root>/network/ipam/           host-local's address leases, one folder per network
 */
import { randomBytes } from 'node:crypto';
import { spawn } from 'node:child_process';
import { mkdir, readFile, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Conflict, Forbidden, InvalidArgument, NotFound, Unavailable, errnoCode } from '../errors/errors.js';
import { removeAtomicLeftovers, writeFileAtomic } from '../util/atomic-file.js';
import { runPlugin, type CniResult } from './cni.js';
import { createNetns, removeNetns } from './netns.js';
import { contains, firstHost, freeSubnet, hostRoutes, parseAddress, parseSubnet, subnetString, type Subnet } from './subnets.js';

export type NetworkDriver = 'bridge' | 'host' | 'null';

export interface NetworkRecord {
  id: string;
  name: string;
  driver: NetworkDriver;
  created: string;
  internal: boolean;
  attachable: boolean;
  labels: Record<string, string>;
  options: Record<string, string>;
  /** Bridge networks: the subnet ('172.18.0.0/16'), its gateway, and the host's bridge device. */
  subnet?: string;
  gateway?: string;
  bridge?: string;
}

/** A container's place on a network, as its record keeps it. */
export interface Endpoint {
  networkId: string;
  networkName: string;
  endpointId: string;
  /** The container's interface on the network: eth0 for its first. */
  ifName?: string;
  /** Bridge networks only. */
  ipAddress?: string;
  prefixLen?: number;
  gateway?: string;
  macAddress?: string;
  aliases?: string[];
}

export interface CreateNetworkRequest {
  Name: string;
  Driver?: string;
  Internal?: boolean;
  Attachable?: boolean;
  Labels?: Record<string, string>;
  Options?: Record<string, string>;
  IPAM?: { Driver?: string; Config?: Array<{ Subnet?: string; Gateway?: string; IPRange?: string }> };
  CheckDuplicate?: boolean;
}

export interface NetworkManagerOptions {
  dataRoot: string;
  execRoot: string;
  /** The default bridge's device (docker's `--bridge`); berth0 unless set. */
  bridgeName?: string;
}

const PREDEFINED = ['bridge', 'host', 'none'];
const NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

export class NetworkManager {
  readonly #file: string;
  readonly #ipamDir: string;
  readonly #netnsDir: string;
  readonly #options: NetworkManagerOptions;
  #networks = new Map<string, NetworkRecord>();
  /** Bridges whose gateway address this process has set. */
  readonly #gatewaysSet = new Set<string>();
  #writing: Promise<void> = Promise.resolve();

  private constructor(options: NetworkManagerOptions) {
    this.#options = options;
    this.#file = join(options.dataRoot, 'network', 'networks.json');
    this.#ipamDir = join(options.dataRoot, 'network', 'ipam');
    this.#netnsDir = join(options.execRoot, 'netns');
  }

  static async open(options: NetworkManagerOptions): Promise<NetworkManager> {
    const manager = new NetworkManager(options);
    await manager.#load();
    return manager;
  }

  async #load(): Promise<void> {
    await mkdir(join(this.#options.dataRoot, 'network'), { recursive: true, mode: 0o700 });
    await removeAtomicLeftovers(this.#file).catch(() => undefined);
    try {
      const list = JSON.parse(await readFile(this.#file, 'utf8')) as NetworkRecord[];
      for (const n of list) this.#networks.set(n.id, n);
    } catch (err) {
      // Written atomically by berth: a file that is not JSON is refused, not replaced (the
      // networks, their subnets and containers' references to them would be lost).
      if (err instanceof SyntaxError) throw new Unavailable(`network: ${this.#file} is not valid JSON; repair it or move it aside`);
      if (errnoCode(err) !== 'ENOENT') throw err;
    }
    let changed = false;
    for (const [name, driver] of [['bridge', 'bridge'], ['host', 'host'], ['none', 'null']] as const) {
      if (this.find(name)) continue;
      const record = newRecord(name, driver);
      if (driver === 'bridge') {
        const subnet = freeSubnet([...(await hostRoutes()), ...this.#subnets()]);
        record.subnet = subnetString(subnet);
        record.gateway = firstHost(subnet);
        record.bridge = this.#options.bridgeName ?? 'berth0';
        record.options = { 'com.docker.network.bridge.name': record.bridge, 'com.docker.network.bridge.default_bridge': 'true' };
      }
      this.#networks.set(record.id, record);
      changed = true;
    }
    const bridge = this.find('bridge')!;
    if (this.#options.bridgeName && bridge.bridge !== this.#options.bridgeName) {
      bridge.bridge = this.#options.bridgeName;
      bridge.options = { ...bridge.options, 'com.docker.network.bridge.name': bridge.bridge };
      changed = true;
    }
    if (changed) await this.#save();
  }

  list(): NetworkRecord[] {
    return [...this.#networks.values()].sort((a, b) => a.created.localeCompare(b.created) || a.name.localeCompare(b.name));
  }

  /** By full id, name, or unique id prefix (docker's order); undefined when none matches. */
  find(idOrName: string): NetworkRecord | undefined {
    const byId = this.#networks.get(idOrName);
    if (byId) return byId;
    for (const n of this.#networks.values()) if (n.name === idOrName) return n;
    if (/^[a-f0-9]+$/.test(idOrName)) {
      const matches = [...this.#networks.values()].filter((n) => n.id.startsWith(idOrName));
      if (matches.length === 1) return matches[0];
      if (matches.length > 1) throw new InvalidArgument(`network ${idOrName} is ambiguous (${matches.length} matches found based on ID prefix)`);
    }
    return undefined;
  }

  get(idOrName: string): NetworkRecord {
    const n = this.find(idOrName);
    if (!n) throw new NotFound(`network ${idOrName} not found`);
    return n;
  }

  async create(req: CreateNetworkRequest): Promise<NetworkRecord> {
    const name = req.Name;
    if (!name || !NAME.test(name)) throw new InvalidArgument(`invalid network name ${JSON.stringify(name ?? '')}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`);
    const driver = req.Driver || 'bridge';
    if (driver !== 'bridge') {
      if (driver === 'host' || driver === 'null') throw new Forbidden(`only one instance of "${driver}" network is allowed`);
      throw new NotFound(`plugin "${driver}" not found`);
    }
    if (this.find(name)?.name === name) throw new Conflict(`network with name ${name} already exists`);
    const config = req.IPAM?.Config?.[0];
    const taken = [...(await hostRoutes()), ...this.#subnets()];
    let subnet: Subnet;
    if (config?.Subnet) {
      subnet = parseSubnet(config.Subnet);
      if (subnet.prefix > 30) throw new InvalidArgument(`invalid subnet ${config.Subnet}: too small for a network`);
      const clash = this.list().find((n) => n.subnet && overlapsText(n.subnet, subnet));
      if (clash) throw new Forbidden(`invalid pool request: Pool overlaps with other one on this address space (network ${clash.name})`);
    } else {
      subnet = freeSubnet(taken);
    }
    let gateway = firstHost(subnet);
    if (config?.Gateway) {
      const gw = parseAddress(config.Gateway);
      if (gw === undefined || !contains(subnet, gw)) throw new InvalidArgument(`invalid gateway ${config.Gateway}: not an address in ${subnetString(subnet)}`);
      gateway = config.Gateway;
    }
    const record = newRecord(name, 'bridge');
    record.internal = req.Internal === true;
    record.attachable = req.Attachable === true;
    record.labels = { ...(req.Labels ?? {}) };
    record.options = { ...(req.Options ?? {}) };
    record.subnet = subnetString(subnet);
    record.gateway = gateway;
    record.bridge = req.Options?.['com.docker.network.bridge.name'] ?? `br-${record.id.slice(0, 12)}`;
    if (record.bridge.length > 15) throw new InvalidArgument(`bridge name ${record.bridge}: longer than 15 characters`);
    this.#networks.set(record.id, record);
    await this.#save();
    return record;
  }

  /** Removes a network of the user's; `endpoints` says which containers are on it. */
  async remove(idOrName: string, endpoints: string[]): Promise<NetworkRecord> {
    const n = this.get(idOrName);
    if (PREDEFINED.includes(n.name)) throw new Forbidden(`${n.name} is a pre-defined network and cannot be removed`);
    if (endpoints.length > 0) throw new Forbidden(`error while removing network: network ${n.name} id ${n.id} has active endpoints`);
    this.#networks.delete(n.id);
    await this.#save();
    if (n.bridge) await ip(['link', 'del', n.bridge]).catch(() => undefined);
    this.#gatewaysSet.delete(n.id);
    await rm(join(this.#ipamDir, n.id), { recursive: true, force: true });
    return n;
  }

  /** Where container `id`'s network namespace is kept. */
  netnsPath(id: string): string {
    return join(this.#netnsDir, id);
  }

  /**
   * Makes container `id`'s network namespace, with lo up (all `none` gets). Undone by
   * removeNamespace().
   */
  async createNamespace(id: string): Promise<string> {
    const netns = this.netnsPath(id);
    await removeNetns(netns).catch(() => undefined);
    await createNetns(netns);
    try {
      await runPlugin({ command: 'ADD', containerId: id, netns, ifName: 'lo', config: { type: 'loopback', name: 'lo' } });
    } catch (err) {
      await removeNetns(netns).catch(() => undefined);
      throw err;
    }
    return netns;
  }

  /** Removes container `id`'s namespace (its interfaces go with it); safe to call twice. */
  async removeNamespace(id: string): Promise<void> {
    await removeNetns(this.netnsPath(id));
  }

  /**
   * Puts container `id` (its namespace made) on bridge network `network` as interface
   * `ifName`, with an address from the network; the default route goes through the network
   * given `defaultRoute` (a container's first). Undone by detach().
   */
  async attach(id: string, network: NetworkRecord, opts: { ifName: string; defaultRoute: boolean; aliases?: string[]; ip?: string }): Promise<Endpoint> {
    if (network.driver !== 'bridge') throw new Forbidden(`container cannot be connected to the ${network.name} network`);
    const endpoint: Endpoint = { networkId: network.id, networkName: network.name, endpointId: randomBytes(32).toString('hex'), ifName: opts.ifName };
    if (opts.aliases?.length) endpoint.aliases = opts.aliases;
    const config = this.#bridgeConfig(network, opts.defaultRoute);
    if (opts.ip) {
      // As docker: a fixed address only on a network of the user's, and inside its subnet.
      if (PREDEFINED.includes(network.name)) throw new InvalidArgument('user specified IP address is supported on user defined networks only');
      const address = parseAddress(opts.ip);
      if (address === undefined || !contains(parseSubnet(network.subnet!), address)) {
        throw new InvalidArgument(`invalid IPv4 address ${opts.ip}: no configured subnet contains it (network ${network.name}: ${network.subnet})`);
      }
      // host-local takes the address it is asked for, and refuses one that is taken.
      config['args'] = { cni: { ips: [opts.ip] } };
    }
    const result = await runPlugin({ command: 'ADD', containerId: id, netns: this.netnsPath(id), ifName: opts.ifName, config });
    try {
      Object.assign(endpoint, addressOf(result));
      await this.#setGateway(network);
    } catch (err) {
      await this.detach(id, endpoint).catch(() => undefined);
      throw err;
    }
    return endpoint;
  }

  /** Takes container `id` off an endpoint's network and gives its address back; safe to call twice. */
  async detach(id: string, endpoint: Endpoint): Promise<void> {
    const network = this.#networks.get(endpoint.networkId);
    if (!network || network.driver !== 'bridge') return;
    const config = this.#bridgeConfig(network, false);
    const ifName = endpoint.ifName ?? 'eth0';
    await runPlugin({ command: 'DEL', containerId: id, netns: this.netnsPath(id), ifName, config }).catch(async () => {
      // The namespace may be gone already: DEL without it still frees the address.
      await runPlugin({ command: 'DEL', containerId: id, netns: '', ifName, config }).catch(() => undefined);
    });
  }

  /**
   * After a crash: removes the namespaces and gives back the addresses of containers that
   * are not running (a start cut short, an exit the daemon did not see through).
   */
  async releaseStale(running: ReadonlySet<string>): Promise<string[]> {
    const released: string[] = [];
    for (const id of await readdir(this.#netnsDir).catch(() => [] as string[])) {
      if (running.has(id)) continue;
      await removeNetns(join(this.#netnsDir, id)).catch(() => undefined);
      released.push(id);
    }
    // host-local keeps a file per address, named by it, that starts with the container's id.
    for (const network of await readdir(this.#ipamDir).catch(() => [] as string[])) {
      const dir = join(this.#ipamDir, network);
      for (const name of await readdir(dir).catch(() => [] as string[])) {
        if (parseAddress(name) === undefined) continue;
        const owner = (await readFile(join(dir, name), 'utf8').catch(() => '')).split(/\r?\n/)[0]!.trim();
        if (owner && !running.has(owner)) await rm(join(dir, name), { force: true });
      }
    }
    return released;
  }

  #bridgeConfig(network: NetworkRecord, defaultRoute: boolean): Record<string, unknown> & { type: string; name: string } {
    return {
      type: 'bridge',
      name: network.id,
      bridge: network.bridge,
      // The gateway address is set by #setGateway: CNI's gateway mode turns on ip_forward.
      isGateway: false,
      ipMasq: false,
      ipam: {
        type: 'host-local',
        ranges: [[{ subnet: network.subnet, gateway: network.gateway }]],
        routes: network.internal || !defaultRoute ? [] : [{ dst: '0.0.0.0/0' }],
        dataDir: this.#ipamDir,
      },
    };
  }

  async #setGateway(network: NetworkRecord): Promise<void> {
    if (this.#gatewaysSet.has(network.id)) return;
    const prefix = network.subnet!.split('/')[1];
    await ip(['addr', 'replace', `${network.gateway}/${prefix}`, 'dev', network.bridge!]);
    this.#gatewaysSet.add(network.id);
  }

  #subnets(): Subnet[] {
    return this.list().flatMap((n) => (n.subnet ? [parseSubnet(n.subnet)] : []));
  }

  async #save(): Promise<void> {
    const write = this.#writing.then(() => writeFileAtomic(this.#file, JSON.stringify(this.list(), null, 1), 0o600));
    this.#writing = write.catch(() => undefined);
    await write;
  }
}

function newRecord(name: string, driver: NetworkDriver): NetworkRecord {
  return { id: randomBytes(32).toString('hex'), name, driver, created: new Date().toISOString(), internal: false, attachable: false, labels: {}, options: {} };
}

function overlapsText(a: string, b: Subnet): boolean {
  const s = parseSubnet(a);
  return contains(s, b.base) || contains(b, s.base);
}

/** The container side of a bridge ADD: its address, prefix, gateway and MAC. */
function addressOf(result: CniResult): Partial<Endpoint> {
  const ipConfig = result.ips?.[0];
  if (!ipConfig) throw new Unavailable('network: the bridge plugin gave the container no address');
  const [address, prefix] = ipConfig.address.split('/');
  const iface = ipConfig.interface !== undefined ? result.interfaces?.[ipConfig.interface] : result.interfaces?.find((i) => i.sandbox);
  return {
    ipAddress: address!,
    prefixLen: Number(prefix),
    ...(ipConfig.gateway ? { gateway: ipConfig.gateway } : {}),
    ...(iface?.mac ? { macAddress: iface.mac } : {}),
  };
}

function ip(args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Unavailable(`network: ip ${args.join(' ')}: ${err.trim() || `exit status ${code}`}`))));
  });
}
