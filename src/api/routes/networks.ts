/** The network endpoints: list, inspect, create, remove, prune, connect and disconnect. */
import type { ContainerRecord } from '../../containers/container.js';
import { endpointsConfig } from '../../containers/container-network.js';
import type { Daemon } from '../../daemon/daemon.js';
import { InvalidArgument } from '../../errors/errors.js';
import type { CreateNetworkRequest, NetworkRecord } from '../../network/network-manager.js';
import { parseTimestamp } from './containers.js';
import { labelsMatch } from './images.js';
import { checkFilterNames, parseFilters, sendJson, type Router } from '../router.js';

const PREDEFINED = ['bridge', 'host', 'none'];

export function networkRoutes(router: Router, daemon: Daemon): void {
  const networks = () => daemon.containers.network.networks;
  const onNetwork = (n: NetworkRecord) => daemon.containers.network.endpointsOn(n.id, daemon.containers.all());

  router.add('GET', '/networks', async (ctx) => {
    const filters = parseFilters(ctx.query.get('filters'));
    checkFilterNames(filters, ['driver', 'id', 'label', 'name', 'scope', 'type', 'dangling']);
    const list = networks()
      .list()
      .filter((n) => matches(n, filters, onNetwork(n).length));
    sendJson(ctx.res!, 200, list.map((n) => networkJson(daemon, n, false)));
  });

  router.add('GET', '/networks/{id}', async (ctx) => {
    sendJson(ctx.res!, 200, networkJson(daemon, networks().get(ctx.params['id']!), true));
  });

  router.add('POST', '/networks/create', async (ctx) => {
    const body = await ctx.json<CreateNetworkRequest>({} as CreateNetworkRequest);
    const created = await networks().create(body);
    daemon.events.publish('network', 'create', created.id, { name: created.name, type: created.driver });
    sendJson(ctx.res!, 201, { Id: created.id, Warning: '' });
  });

  router.add('DELETE', '/networks/{id}', async (ctx) => {
    const n = networks().get(ctx.params['id']!);
    const removed = await networks().remove(n.id, onNetwork(n).map((c) => c.id));
    daemon.events.publish('network', 'destroy', removed.id, { name: removed.name, type: removed.driver });
    ctx.res!.writeHead(204);
    ctx.res!.end();
  });

  router.add('POST', '/networks/prune', async (ctx) => {
    const filters = parseFilters(ctx.query.get('filters'));
    checkFilterNames(filters, ['label', 'label!', 'until']);
    const deleted: string[] = [];
    const until = filters.get('until')?.[0];
    const before = until ? parseTimestamp(until) * 1000 : undefined;
    const without = filters.get('label!');
    for (const n of networks().list()) {
      if (PREDEFINED.includes(n.name) || !labelsMatch(n.labels, filters.get('label'))) continue;
      if (before !== undefined && Date.parse(n.created) >= before) continue;
      if (without && without.some((l) => labelsMatch(n.labels, [l]))) continue;
      // A network that any container names (running or not) stays, as in docker.
      const named = (c: ContainerRecord) => c.hostConfig.NetworkMode === n.name || c.hostConfig.NetworkMode === n.id || n.name in endpointsConfig(c) || n.id in endpointsConfig(c);
      if (daemon.containers.all().some((c) => c.endpoints?.some((e) => e.networkId === n.id) || named(c))) continue;
      await networks().remove(n.id, []);
      daemon.events.publish('network', 'destroy', n.id, { name: n.name, type: n.driver });
      deleted.push(n.name);
    }
    sendJson(ctx.res!, 200, { NetworksDeleted: deleted.length ? deleted : null });
  });

  router.add('POST', '/networks/{id}/connect', async (ctx) => {
    const n = networks().get(ctx.params['id']!);
    const body = await ctx.json<{ Container?: string; EndpointConfig?: Record<string, unknown> }>({});
    if (!body.Container) throw new InvalidArgument('no container given to connect');
    await daemon.containers.connectNetwork(body.Container, n, body.EndpointConfig ?? {});
    ctx.res!.writeHead(200);
    ctx.res!.end();
  });

  router.add('POST', '/networks/{id}/disconnect', async (ctx) => {
    const n = networks().get(ctx.params['id']!);
    const body = await ctx.json<{ Container?: string; Force?: boolean }>({});
    if (!body.Container) throw new InvalidArgument('no container given to disconnect');
    await daemon.containers.disconnectNetwork(body.Container, n);
    ctx.res!.writeHead(200);
    ctx.res!.end();
  });
}

function matches(n: NetworkRecord, filters: Map<string, string[]>, endpoints: number): boolean {
  const any = (key: string, test: (v: string) => boolean) => !filters.has(key) || filters.get(key)!.some(test);
  const builtin = PREDEFINED.includes(n.name);
  return (
    any('driver', (v) => v === n.driver) &&
    any('id', (v) => n.id.startsWith(v)) &&
    any('name', (v) => n.name.includes(v)) &&
    any('scope', (v) => v === 'local') &&
    any('type', (v) => (v === 'builtin' ? builtin : v === 'custom' ? !builtin : false)) &&
    any('dangling', (v) => ((v === 'true' || v === '1') === (endpoints === 0 && !builtin))) &&
    labelsMatch(n.labels, filters.get('label'))
  );
}

/** docker's network object; with `verbose`, the containers on it. */
function networkJson(daemon: Daemon, n: NetworkRecord, withContainers: boolean): Record<string, unknown> {
  const containers: Record<string, unknown> = {};
  if (withContainers) {
    for (const c of daemon.containers.network.endpointsOn(n.id, daemon.containers.all())) {
      const e = c.endpoints!.find((x) => x.networkId === n.id)!;
      containers[c.id] = {
        Name: c.name.slice(1),
        EndpointID: e.endpointId,
        MacAddress: e.macAddress ?? '',
        IPv4Address: e.ipAddress ? `${e.ipAddress}/${e.prefixLen}` : '',
        IPv6Address: '',
      };
    }
  }
  return {
    Name: n.name,
    Id: n.id,
    Created: n.created,
    Scope: 'local',
    Driver: n.driver,
    EnableIPv4: true,
    EnableIPv6: false,
    IPAM: { Driver: 'default', Options: null, Config: n.subnet ? [{ Subnet: n.subnet, Gateway: n.gateway }] : [] },
    Internal: n.internal,
    Attachable: n.attachable,
    Ingress: false,
    ConfigFrom: { Network: '' },
    ConfigOnly: false,
    Containers: containers,
    Options: n.options,
    Labels: n.labels,
  };
}
