/** The volume endpoints: list, inspect, create, remove, prune. */
import type { Daemon } from '../../daemon/daemon.js';
import { InvalidArgument } from '../../errors/errors.js';
import type { CreateVolumeRequest, VolumeRecord } from '../../volumes/volume-store.js';
import { labelsMatch } from './images.js';
import { checkFilterNames, parseFilters, queryBool, sendJson, type Router } from '../router.js';

export function volumeRoutes(router: Router, daemon: Daemon): void {
  const volumes = daemon.volumes;
  const users = (name: string) => daemon.containers.volumeUsers(name);

  router.add('GET', '/volumes', async (ctx) => {
    const filters = parseFilters(ctx.query.get('filters'));
    checkFilterNames(filters, ['dangling', 'driver', 'label', 'name']);
    const any = (key: string, test: (v: string) => boolean) => !filters.has(key) || filters.get(key)!.some(test);
    const dangling = filters.get('dangling')?.map((d) => boolFilter('dangling', d));
    // As moby: a name filter is a regular expression.
    const names = (filters.get('name') ?? []).map((n) => {
      try {
        return new RegExp(n);
      } catch {
        throw new InvalidArgument(`invalid filter 'name=${n}': not a regular expression`);
      }
    });
    const list = volumes.list().filter(
      (v) =>
        (names.length === 0 || names.some((re) => re.test(v.name))) &&
        any('driver', (d) => d === 'local') &&
        (!dangling || dangling.some((d) => d === (users(v.name).length === 0))) &&
        labelsMatch(v.labels, filters.get('label')),
    );
    sendJson(ctx.res!, 200, { Volumes: list.map((v) => volumeJson(daemon, v)), Warnings: null });
  });

  router.add('GET', '/volumes/{name}', async (ctx) => {
    sendJson(ctx.res!, 200, volumeJson(daemon, volumes.get(ctx.params['name']!)));
  });

  router.add('POST', '/volumes/create', async (ctx) => {
    const body = await ctx.json<CreateVolumeRequest>({});
    const existed = body.Name ? volumes.find(body.Name) : undefined;
    const created = await volumes.create(body);
    if (!existed) daemon.events.publish('volume', 'create', created.name, { driver: 'local' });
    sendJson(ctx.res!, 201, volumeJson(daemon, created));
  });

  router.add('DELETE', '/volumes/{name}', async (ctx) => {
    const name = ctx.params['name']!;
    const force = queryBool(ctx.query, 'force');
    if (force && !volumes.find(name)) {
      ctx.res!.writeHead(204);
      return void ctx.res!.end();
    }
    await volumes.remove(name, users(name));
    daemon.events.publish('volume', 'destroy', name, { driver: 'local' });
    ctx.res!.writeHead(204);
    ctx.res!.end();
  });

  router.add('POST', '/volumes/prune', async (ctx) => {
    const filters = parseFilters(ctx.query.get('filters'));
    checkFilterNames(filters, ['label', 'label!', 'all']);
    // As docker since API 1.42: only anonymous volumes, unless all=true.
    const allValues = filters.get('all') ?? [];
    if (allValues.length > 1) throw new InvalidArgument('invalid filter \'all\': only one value is expected');
    const all = allValues.length === 1 && boolFilter('all', allValues[0]!);
    const deleted: string[] = [];
    let reclaimed = 0;
    for (const v of volumes.list()) {
      if ((!all && !v.anonymous) || users(v.name).length > 0 || !labelsMatch(v.labels, filters.get('label'))) continue;
      const without = filters.get('label!');
      if (without && !without.every((l) => !labelsMatch(v.labels, [l]))) continue;
      reclaimed += await volumes.size(v.name).catch(() => 0);
      await volumes.remove(v.name, []);
      daemon.events.publish('volume', 'destroy', v.name, { driver: 'local' });
      deleted.push(v.name);
    }
    sendJson(ctx.res!, 200, { VolumesDeleted: deleted.length ? deleted : null, SpaceReclaimed: reclaimed });
  });
}

/** docker's Volume object. */
function volumeJson(daemon: Daemon, v: VolumeRecord): Record<string, unknown> {
  return {
    CreatedAt: v.created.replace(/\.\d+Z$/, 'Z'),
    Driver: 'local',
    Labels: Object.keys(v.labels).length ? v.labels : null,
    Mountpoint: daemon.volumes.mountpoint(v.name),
    Name: v.name,
    Options: null,
    Scope: 'local',
  };
}

/** A filter's boolean as Go's strconv.ParseBool reads it; docker's error for anything else. */
function boolFilter(name: string, value: string): boolean {
  if (['1', 't', 'T', 'true', 'TRUE', 'True'].includes(value)) return true;
  if (['0', 'f', 'F', 'false', 'FALSE', 'False'].includes(value)) return false;
  throw new InvalidArgument(`invalid filter '${name}=${value}'`);
}
