/** Commit, changes and export: a container's filesystem as an image, a change list, a tar. */
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Daemon } from '../../daemon/daemon.js';
import { InvalidArgument } from '../../errors/errors.js';
import { ContainerFilesystem, filesystemTar } from '../../containers/container-changes.js';
import { checkCommittable, commitContainer, type CommitDeps } from '../../containers/container-commit.js';
import { parseReference, withTag, type Reference } from '../../images/reference.js';
import type { ContainerConfig } from '../../runtime/oci-spec.js';
import { queryBool, sendJson, type Router } from '../router.js';

export function commitRoutes(router: Router, daemon: Daemon): void {
  const deps: CommitDeps = {
    containers: daemon.containers,
    images: daemon.images,
    snapshots: daemon.snapshots,
    events: daemon.events,
    log: daemon.log,
    viewsDir: join(daemon.options.execRoot, 'views'),
  };

  router.add('POST', '/commit', async (ctx) => {
    const reference = repoTagReference(ctx.query.get('repo') ?? '', ctx.query.get('tag') ?? '');
    const body = await ctx.json<unknown>(null);
    if (body !== null && (typeof body !== 'object' || Array.isArray(body))) {
      throw new InvalidArgument('the request body must be a container Config (a JSON object)');
    }
    const id = await commitContainer(deps, ctx.query.get('container') ?? '', {
      ...(reference ? { reference } : {}),
      author: ctx.query.get('author') ?? '',
      comment: ctx.query.get('comment') ?? '',
      changes: ctx.query.getAll('changes'),
      ...(body !== null ? { config: body as ContainerConfig } : {}),
      // Docker pauses unless told `pause=0` (an absent pause means yes since API 1.13).
      pause: queryBool(ctx.query, 'pause', true) || ctx.query.get('pause') === '',
      squash: queryBool(ctx.query, 'squash'),
    });
    sendJson(ctx.res!, 201, { Id: id });
  });

  router.add('GET', '/containers/{id}/changes', async (ctx) => {
    const record = daemon.containers.get(ctx.params['id']!);
    const fs = await ContainerFilesystem.open(daemon.snapshots, record.id, daemon.containers.containerDir(record.id));
    sendJson(ctx.res!, 200, await fs.changes());
  });

  router.add('GET', '/containers/{id}/export', async (ctx) => {
    const record = daemon.containers.get(ctx.params['id']!);
    checkCommittable(record, 'export');
    const fs = await ContainerFilesystem.open(daemon.snapshots, record.id);
    const tar = await filesystemTar(fs.layers, deps.viewsDir, (err) => {
      daemon.log.warn('export: cannot unmount the view', { id: record.id, error: String(err) });
    });
    const res = ctx.res!;
    res.writeHead(200, { 'Content-Type': 'application/x-tar' });
    try {
      await pipeline(tar, res);
    } catch (err) {
      // The 200 is out: a failure can only cut the stream short.
      daemon.log.warn('export: the archive was cut short', { id: record.id, error: String(err) });
      res.destroy();
    }
    daemon.events.publish('container', 'export', record.id, { image: record.image, name: record.name.slice(1) });
  });
}

/** Docker's RepoTagReference: none without a repo; the tag given, else the repo's, else latest. */
function repoTagReference(repo: string, tag: string): Reference | undefined {
  if (repo === '') return undefined;
  let ref = parseReference(repo);
  if (ref.digest) throw new InvalidArgument('cannot commit to a digest reference');
  if (tag !== '') ref = withTag(ref, tag);
  return ref.tag ? ref : { ...ref, tag: 'latest' };
}
