/**
 * Network commands: network ls, inspect, create, rm, prune, connect and disconnect, as the
 * docker CLI (v28) has them: the same flags, requests, output and errors.
 */
import { BlockList, isIP } from 'node:net';
import { ApiError } from '../../client/engine-client.js';
import { NilSlice, asStruct, goMap } from '../../util/go-value.js';
import { naturalCompare } from '../../util/sort-order.js';
import { FORMAT_HELP, INSPECT_FORMAT_HELP, MAP_FLAG, filterArgs, parseArgs } from '../args.js';
import type { Command } from '../command.js';
import { ExitError, daemonError } from '../command.js';
import { kvMap, parseCsvLine, validateLabel, validateLink } from '../parse-opts.js';
import { confirm, inspectEach } from './images.js';

/** One network as `GET /networks` and `GET /networks/{id}` give it. */
interface NetworkJson {
  Name: string;
  Id: string;
  Created: string;
  Scope: string;
  Driver: string;
  EnableIPv4: boolean;
  EnableIPv6: boolean;
  IPAM: { Driver: string; Options: Record<string, string> | null; Config: IpamConfigJson[] | null } | null;
  Internal: boolean;
  Attachable: boolean;
  Ingress: boolean;
  ConfigFrom: { Network: string } | null;
  ConfigOnly: boolean;
  Containers: Record<string, EndpointJson> | null;
  Options: Record<string, string> | null;
  Labels: Record<string, string> | null;
  Peers?: unknown[] | null;
  Services?: Record<string, unknown> | null;
}

interface IpamConfigJson {
  Subnet?: string;
  IPRange?: string;
  Gateway?: string;
  AuxiliaryAddresses?: Record<string, string>;
}

interface EndpointJson {
  Name: string;
  EndpointID: string;
  MacAddress: string;
  IPv4Address: string;
  IPv6Address: string;
}

function networkPath(idOrName: string, rest = ''): string {
  return `/networks/${encodeURIComponent(idOrName)}${rest}`;
}

/** pflag's StringSlice: each value a line of CSV, adding its fields ("" adds none). */
const stringSlice = (value: string): string[] => (value === '' ? [] : parseCsvLine(value));

// --- network ls -------------------------------------------------------------------------

const LS_TABLE = 'table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}';
const LS_RAW = 'network_id: {{.ID}}\\nname: {{.Name}}\\ndriver: {{.Driver}}\\nscope: {{.Scope}}\\n';
const LS_HEADERS = {
  ID: 'NETWORK ID',
  Name: 'NAME',
  Driver: 'DRIVER',
  Scope: 'SCOPE',
  IPv4: 'IPV4',
  IPv6: 'IPV6',
  Internal: 'INTERNAL',
  Labels: 'LABELS',
  CreatedAt: 'CREATED AT',
};

export const networkLsCommand: Command = {
  spec: {
    usage: 'network ls [OPTIONS]',
    description: 'List networks',
    aliases: ['berth network ls', 'berth network list'],
    args: { max: 0 },
    flags: [
      { name: 'filter', short: 'f', type: 'list', placeholder: 'filter', description: 'Provide filter values (e.g. "driver=bridge")' },
      { name: 'format', type: 'string', description: FORMAT_HELP },
      { name: 'no-trunc', type: 'bool', description: 'Do not truncate the output' },
      { name: 'quiet', short: 'q', type: 'bool', description: 'Only display network IDs' },
    ],
  },
  async run(ctx, argv, path) {
    const a = parseArgs(this.spec, argv, path);
    const filters = filterArgs(a.list('filter'), 'filter', 'f');
    const list = await ctx.client.json<NetworkJson[]>('GET', '/networks', {
      query: { filters: Object.keys(filters).length ? JSON.stringify(filters) : undefined },
    });
    list.sort((x, y) => naturalCompare(x.Name, y.Name));
    const trunc = !a.bool('no-trunc');
    const format = a.string('format') ?? '';
    const quiet = a.bool('quiet');
    if (quiet && (format === '' || format === 'table')) {
      // {{.ID}} of every network: no template needed.
      ctx.out(list.map((n) => `${trunc ? n.Id.slice(0, 12) : n.Id}\n`).join(''));
      return 0;
    }
    const [{ contextRow, renderTable, resolveFormat }, { goTimeString }] = await Promise.all([import('../format/table.js'), import('../../util/go-fmt.js')]);
    // As docker's networkContext: its fields in alphabetical order, as its {{json .}} has them.
    const rows = list.map((n) => {
      const labels = n.Labels ?? {};
      return contextRow(
        {
          CreatedAt: goTimeString(new Date(n.Created)),
          Driver: n.Driver,
          ID: trunc ? n.Id.slice(0, 12) : n.Id,
          IPv4: String(n.EnableIPv4),
          IPv6: String(n.EnableIPv6),
          Internal: String(n.Internal),
          Label: (name: string) => labels[name] ?? '',
          Labels: Object.entries(labels).map(([k, v]) => `${k}=${v}`).join(','),
          Name: n.Name,
          Scope: n.Scope,
        },
        '*network.networkContext',
      );
    });
    const chosen = resolveFormat(format, { table: LS_TABLE, raw: LS_RAW, rawQuiet: 'network_id: {{.ID}}', quietOverridesCustom: false }, quiet);
    ctx.out(renderTable(chosen, rows, LS_HEADERS));
    return 0;
  },
};

// --- network inspect --------------------------------------------------------------------

export const networkInspectCommand: Command = {
  spec: {
    usage: 'network inspect [OPTIONS] NETWORK [NETWORK...]',
    description: 'Display detailed information on one or more networks',
    args: { min: 1 },
    flags: [
      { name: 'format', short: 'f', type: 'string', description: INSPECT_FORMAT_HELP },
      { name: 'verbose', short: 'v', type: 'bool', description: 'Verbose output for diagnostics' },
    ],
  },
  async run(ctx, argv, path) {
    const a = parseArgs(this.spec, argv, path);
    const verbose = a.bool('verbose') ? 'true' : undefined;
    return inspectEach(
      ctx,
      a.args,
      a.string('format'),
      (name) => ctx.client.json('GET', networkPath(name), { query: { verbose } }),
      { notFound: (_name, err) => daemonError(err), view: { typed: (raw) => typedNetwork(raw as NetworkJson) } },
    );
  },
};

/**
 * docker's network.Inspect, the typed object its --format runs over before the raw JSON:
 * Go's field names (ID, not Id), Created a time, the IPAM config and endpoints as structs,
 * and its JSON as Go marshals the struct (fields in order, empty Peers and Services left out).
 */
function typedNetwork(raw: NetworkJson): object {
  const ipam = raw.IPAM;
  const fields = {
    Name: raw.Name,
    ID: raw.Id,
    Created: new Date(raw.Created),
    Scope: raw.Scope,
    Driver: raw.Driver,
    EnableIPv4: raw.EnableIPv4,
    EnableIPv6: raw.EnableIPv6,
    IPAM: asStruct(
      {
        Driver: ipam?.Driver ?? '',
        Options: goMap(ipam?.Options),
        Config: ipam?.Config ? ipam.Config.map(typedIpamConfig) : new NilSlice(),
      },
      'network.IPAM',
    ),
    Internal: raw.Internal,
    Attachable: raw.Attachable,
    Ingress: raw.Ingress,
    ConfigFrom: asStruct({ Network: raw.ConfigFrom?.Network ?? '' }, 'network.ConfigReference'),
    ConfigOnly: raw.ConfigOnly,
    Containers: goMap(raw.Containers, (e) => asStruct({ ...e }, 'network.EndpointResource')),
    Options: goMap(raw.Options),
    Labels: goMap(raw.Labels),
    Peers: raw.Peers ?? new NilSlice(),
    Services: goMap(raw.Services),
  };
  const { Name, ID, Peers, Services, ...rest } = fields;
  const json = () => ({
    Name,
    Id: ID,
    ...rest,
    ...(Peers.length ? { Peers } : {}),
    ...(Services.size ? { Services } : {}),
  });
  return asStruct({ ...fields, toJSON: json }, 'network.Inspect');
}

/** network.IPAMConfig: its JSON leaves empty fields out and names AuxAddress AuxiliaryAddresses. */
function typedIpamConfig(c: IpamConfigJson): object {
  const fields = { Subnet: c.Subnet ?? '', IPRange: c.IPRange ?? '', Gateway: c.Gateway ?? '', AuxAddress: goMap(c.AuxiliaryAddresses) };
  const json = () => ({
    ...(fields.Subnet ? { Subnet: fields.Subnet } : {}),
    ...(fields.IPRange ? { IPRange: fields.IPRange } : {}),
    ...(fields.Gateway ? { Gateway: fields.Gateway } : {}),
    ...(fields.AuxAddress.size ? { AuxiliaryAddresses: fields.AuxAddress } : {}),
  });
  return asStruct({ ...fields, toJSON: json }, 'network.IPAMConfig');
}

// --- network create ---------------------------------------------------------------------

const SLICE_FLAG = { type: 'list', placeholder: 'strings', set: stringSlice } as const;

export const networkCreateCommand: Command = {
  spec: {
    usage: 'network create [OPTIONS] NETWORK',
    description: 'Create a network',
    args: { min: 1, max: 1 },
    flags: [
      { name: 'attachable', type: 'bool', description: 'Enable manual container attachment' },
      { name: 'aux-address', ...MAP_FLAG, description: 'Auxiliary IPv4 or IPv6 addresses used by Network driver' },
      { name: 'config-from', type: 'string', description: 'The network from which to copy the configuration' },
      { name: 'config-only', type: 'bool', description: 'Create a configuration only network' },
      { name: 'driver', short: 'd', type: 'string', default: 'bridge', description: 'Driver to manage the Network' },
      { name: 'gateway', ...SLICE_FLAG, description: 'IPv4 or IPv6 Gateway for the master subnet' },
      { name: 'ingress', type: 'bool', description: 'Create swarm routing-mesh network' },
      { name: 'internal', type: 'bool', description: 'Restrict external access to the network' },
      { name: 'ip-range', ...SLICE_FLAG, description: 'Allocate container ip from a sub-range' },
      { name: 'ipam-driver', type: 'string', default: 'default', description: 'IP Address Management Driver' },
      { name: 'ipam-opt', ...MAP_FLAG, description: 'Set IPAM driver specific options' },
      { name: 'ipv4', type: 'bool', default: true, description: 'Enable or disable IPv4 address assignment' },
      { name: 'ipv6', type: 'bool', description: 'Enable or disable IPv6 address assignment' },
      { name: 'label', type: 'list', set: (v) => [validateLabel(v)], description: 'Set metadata on a network' },
      { name: 'opt', short: 'o', ...MAP_FLAG, description: 'Set driver specific options' },
      { name: 'scope', type: 'string', description: "Control the network's scope" },
      { name: 'subnet', ...SLICE_FLAG, description: 'Subnet in CIDR format that represents a network segment' },
    ],
  },
  async run(ctx, argv, path) {
    const a = parseArgs(this.spec, argv, path);
    let config: IpamConfigJson[];
    try {
      config = ipamConfig(a.list('subnet'), a.list('ip-range'), a.list('gateway'), kvMap(a.list('aux-address')));
    } catch (err) {
      throw new ExitError((err as Error).message, 1);
    }
    const configFrom = a.string('config-from') ?? '';
    // The body as docker sends it; EnableIPv4 and EnableIPv6 only when given.
    const created = await ctx.client.json<{ Id: string }>('POST', '/networks/create', {
      body: {
        Driver: a.string('driver'),
        Scope: a.string('scope') ?? '',
        ...(a.has('ipv4') ? { EnableIPv4: a.bool('ipv4') } : {}),
        ...(a.has('ipv6') ? { EnableIPv6: a.bool('ipv6') } : {}),
        IPAM: { Driver: a.string('ipam-driver'), Options: kvMap(a.list('ipam-opt')), Config: config },
        Internal: a.bool('internal'),
        Attachable: a.bool('attachable'),
        Ingress: a.bool('ingress'),
        ConfigOnly: a.bool('config-only'),
        ConfigFrom: configFrom ? { Network: configFrom } : null,
        Options: kvMap(a.list('opt')),
        Labels: kvMap(a.list('label')),
        Name: a.args[0],
      },
    });
    ctx.out(`${created.Id}\n`);
    return 0;
  },
};

/**
 * docker's createIPAMConfig: one config per subnet, each ip-range, gateway and aux-address
 * given to the subnet it lies in. Throws with docker's message for what does not fit.
 */
function ipamConfig(subnets: string[], ranges: string[], gateways: string[], auxAddresses: Record<string, string>): IpamConfigJson[] {
  if (subnets.length < ranges.length || subnets.length < gateways.length) {
    throw new Error('every ip-range or gateway must have a corresponding subnet');
  }
  const bySubnet = new Map<string, IpamConfigJson & { AuxiliaryAddresses: Record<string, string> }>();
  for (const s of subnets) {
    for (const other of bySubnet.keys()) {
      if (subnetMatches(s, other) || subnetMatches(other, s)) throw new Error('multiple overlapping subnet configuration is not supported');
    }
    bySubnet.set(s, { Subnet: s, AuxiliaryAddresses: {} });
  }
  const place = (value: string, what: string, assign: (c: IpamConfigJson & { AuxiliaryAddresses: Record<string, string> }, subnet: string) => void) => {
    let matched = false;
    for (const s of subnets) {
      if (!subnetMatches(s, value)) continue;
      assign(bySubnet.get(s)!, s);
      matched = true;
    }
    if (!matched) throw new Error(`no matching subnet for ${what} ${value}`);
  };
  for (const r of ranges) {
    place(r, 'range', (c, s) => {
      if (c.IPRange) throw new Error(`cannot configure multiple ranges (${r}, ${c.IPRange}) on the same subnet (${s})`);
      c.IPRange = r;
    });
  }
  for (const g of gateways) {
    place(g, 'gateway', (c, s) => {
      if (c.Gateway) throw new Error(`cannot configure multiple gateways (${g}, ${c.Gateway}) for the same subnet (${s})`);
      c.Gateway = g;
    });
  }
  for (const [key, address] of Object.entries(auxAddresses)) {
    place(address, 'aux-address', (c) => {
      c.AuxiliaryAddresses[key] = address;
    });
  }
  // Go leaves the empty aux-address map out of the JSON.
  return [...bySubnet.values()].map(({ AuxiliaryAddresses, ...c }) => (Object.keys(AuxiliaryAddresses).length ? { ...c, AuxiliaryAddresses } : c));
}

/** Go's net.ParseCIDR, as far as docker's checks need it; throws "invalid CIDR address: ...". */
function parseCidr(text: string): { address: string; prefix: number; family: 'ipv4' | 'ipv6' } {
  const slash = text.indexOf('/');
  const address = text.slice(0, slash);
  const bits = text.slice(slash + 1);
  const version = slash < 0 ? 0 : isIP(address);
  if (version === 0 || !/^\d{1,3}$/.test(bits) || Number(bits) > (version === 4 ? 32 : 128)) throw new Error(`invalid CIDR address: ${text}`);
  return { address, prefix: Number(bits), family: version === 4 ? 'ipv4' : 'ipv6' };
}

/** docker's subnetMatches: whether `data`, an address or the address of a CIDR, lies in `subnet`. */
function subnetMatches(subnet: string, data: string): boolean {
  let net;
  try {
    net = parseCidr(subnet);
  } catch (err) {
    throw new Error(`invalid subnet: ${(err as Error).message}`);
  }
  const address = data.includes('/') ? parseCidr(data).address : data;
  const version = isIP(address);
  if (version === 0 || (version === 4) !== (net.family === 'ipv4')) return false;
  const list = new BlockList();
  list.addSubnet(net.address, net.prefix, net.family);
  return list.check(address, net.family);
}

// --- network rm -------------------------------------------------------------------------

export const networkRmCommand: Command = {
  spec: {
    usage: 'network rm NETWORK [NETWORK...]',
    description: 'Remove one or more networks',
    aliases: ['berth network rm', 'berth network remove'],
    args: { min: 1 },
    flags: [{ name: 'force', short: 'f', type: 'bool', description: 'Do not error if the network does not exist' }],
  },
  async run(ctx, argv, path) {
    const a = parseArgs(this.spec, argv, path);
    const force = a.bool('force');
    // docker asks before it removes an ingress network; berth has none, so it never asks.
    let failed = false;
    for (const name of a.args) {
      try {
        await ctx.client.send('DELETE', networkPath(name));
      } catch (err) {
        if (!(err instanceof ApiError)) throw err;
        if (force && err.status === 404) continue;
        ctx.err(`${daemonError(err)}\n`);
        failed = true;
        continue;
      }
      ctx.out(`${name}\n`);
    }
    // docker's StatusError without a message prints its status.
    if (failed) throw new ExitError('exit status 1', 1);
    return 0;
  },
};

// --- network prune ----------------------------------------------------------------------

export const networkPruneCommand: Command = {
  spec: {
    usage: 'network prune [OPTIONS]',
    description: 'Remove all unused networks',
    args: { max: 0 },
    flags: [
      { name: 'filter', type: 'list', placeholder: 'filter', description: 'Provide filter values (e.g. "until=<timestamp>")' },
      { name: 'force', short: 'f', type: 'bool', description: 'Do not prompt for confirmation' },
    ],
  },
  async run(ctx, argv, path) {
    const a = parseArgs(this.spec, argv, path);
    const filters = filterArgs(a.list('filter'), 'filter');
    const warning = 'WARNING! This will remove all custom networks not used by at least one container.';
    // A "no" cancels quietly, with status 0, as docker's.
    if (!a.bool('force') && !(await confirm(ctx, warning))) return 0;
    const report = await ctx.client.json<{ NetworksDeleted: string[] | null }>('POST', '/networks/prune', {
      query: { filters: Object.keys(filters).length ? JSON.stringify(filters) : undefined },
    });
    if (report.NetworksDeleted?.length) ctx.out(`Deleted Networks:\n${report.NetworksDeleted.map((name) => `${name}\n`).join('')}\n`);
    return 0;
  },
};

// --- network connect, disconnect --------------------------------------------------------

export const networkConnectCommand: Command = {
  spec: {
    usage: 'network connect [OPTIONS] NETWORK CONTAINER',
    description: 'Connect a container to a network',
    args: { min: 2, max: 2 },
    flags: [
      { name: 'alias', ...SLICE_FLAG, description: 'Add network-scoped alias for the container' },
      { name: 'driver-opt', ...SLICE_FLAG, description: 'driver options for the network' },
      { name: 'gw-priority', type: 'int', description: 'Highest gw-priority provides the default gateway. Accepts positive and negative values.' },
      { name: 'ip', type: 'string', description: 'IPv4 address (e.g., "172.30.100.104")' },
      { name: 'ip6', type: 'string', description: 'IPv6 address (e.g., "2001:db8::33")' },
      { name: 'link', type: 'list', set: (v) => [validateLink(v)], description: 'Add link to another container' },
      { name: 'link-local-ip', ...SLICE_FLAG, description: 'Add a link-local address for the container' },
    ],
  },
  async run(ctx, argv, path) {
    const a = parseArgs(this.spec, argv, path);
    const [network, container] = a.args as [string, string];
    const driverOpts: Record<string, string> = {};
    for (const opt of a.list('driver-opt')) {
      const eq = opt.indexOf('=');
      const key = opt.slice(0, eq).trim();
      if (eq < 0 || key === '') throw new ExitError('invalid key/value pair format in driver options', 1);
      driverOpts[key] = opt.slice(eq + 1).trim();
    }
    const links = a.list('link');
    const linkLocal = a.list('link-local-ip');
    await ctx.client.send('POST', networkPath(network, '/connect'), {
      body: {
        Container: container,
        EndpointConfig: {
          IPAMConfig: {
            ...(a.string('ip') ? { IPv4Address: a.string('ip') } : {}),
            ...(a.string('ip6') ? { IPv6Address: a.string('ip6') } : {}),
            ...(linkLocal.length ? { LinkLocalIPs: linkLocal } : {}),
          },
          Links: links.length ? links : null,
          Aliases: a.list('alias'),
          DriverOpts: driverOpts,
          GwPriority: a.int('gw-priority') ?? 0,
        },
      },
    });
    return 0;
  },
};

export const networkDisconnectCommand: Command = {
  spec: {
    usage: 'network disconnect [OPTIONS] NETWORK CONTAINER',
    description: 'Disconnect a container from a network',
    args: { min: 2, max: 2 },
    flags: [{ name: 'force', short: 'f', type: 'bool', description: 'Force the container to disconnect from a network' }],
  },
  async run(ctx, argv, path) {
    const a = parseArgs(this.spec, argv, path);
    const [network, container] = a.args as [string, string];
    await ctx.client.send('POST', networkPath(network, '/disconnect'), { body: { Container: container, Force: a.bool('force') } });
    return 0;
  },
};
