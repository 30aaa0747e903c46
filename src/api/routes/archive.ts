/**
 * The archive endpoints behind `docker cp`:
 *   HEAD /containers/{id}/archive?path=   the stat, in X-Docker-Container-Path-Stat
 *   GET  /containers/{id}/archive?path=   application/x-tar of the path, with the same header
 *   PUT  /containers/{id}/archive?path=&noOverwriteDirNonDir=&copyUIDGID=   a tar body extracted into the directory
 */
import { once } from 'node:events';
import { pipeline } from 'node:stream/promises';

import type { Daemon } from '../../daemon/daemon.js';
import { InvalidArgument, errnoCode } from '../../errors/errors.js';
import { ContainerArchive } from '../../containers/container-archive.js';
import { PATH_STAT_HEADER, encodePathStat } from '../../containers/archive-path.js';
import { queryBool, type RequestContext, type Router } from '../router.js';

export function archiveRoutes(router: Router, daemon: Daemon): void {
  const archive = new ContainerArchive({
    containers: daemon.containers,
    snapshots: daemon.snapshots,
    events: daemon.events,
    execRoot: daemon.options.execRoot,
    volumeMountpoint: (name) => daemon.volumes.mountpoint(name),
    warn: (message, fields) => daemon.log.warn(message, fields),
  });

  router.add('HEAD', '/containers/{id}/archive', async (ctx) => {
    const stat = await archive.stat(ctx.params['id']!, pathOf(ctx));
    ctx.res!.writeHead(200, { [PATH_STAT_HEADER]: encodePathStat(stat), 'Content-Type': 'application/json' });
    ctx.res!.end();
  });

  router.add('GET', '/containers/{id}/archive', async (ctx) => {
    const { stat, stream, done } = await archive.archive(ctx.params['id']!, pathOf(ctx));
    const res = ctx.res!;
    res.writeHead(200, { [PATH_STAT_HEADER]: encodePathStat(stat), 'Content-Type': 'application/x-tar' });
    try {
      await pipeline(stream, res);
    } catch (err) {
      // A client that goes away ends the walk; anything else cuts the archive short, which
      // is all that can be said once the 200 went out.
      stream.destroy();
      if (!res.destroyed) res.destroy();
      if (errnoCode(err) !== 'ERR_STREAM_PREMATURE_CLOSE') {
        daemon.log.warn('archive of a container path failed midway', { id: ctx.params['id'], error: err instanceof Error ? err.message : String(err) });
      }
    } finally {
      await done;
    }
  });

  router.add('PUT', '/containers/{id}/archive', async (ctx) => {
    const path = pathOf(ctx);
    const body = ctx.bodyStream();
    try {
      await archive.extract(ctx.params['id']!, path, body, {
        noOverwriteDirNonDir: queryBool(ctx.query, 'noOverwriteDirNonDir'),
        copyUIDGID: queryBool(ctx.query, 'copyUIDGID'),
      });
    } catch (err) {
      // Detaches the rest of the request so that the server can read it and still answer;
      // the detach pauses the request, so the server must resume it only after that.
      if (!body.destroyed) {
        const closed = once(body, 'close');
        body.destroy();
        await closed;
      } else {
        // Destroyed already: its 'close' (and the detach) may still be pending.
        await new Promise((resolve) => setImmediate(resolve));
      }
      throw err;
    }
    ctx.res!.writeHead(200, { 'Content-Length': 0 });
    ctx.res!.end();
  });
}

function pathOf(ctx: RequestContext): string {
  const path = ctx.query.get('path');
  if (!path) throw new InvalidArgument('bad parameter: path cannot be empty');
  return path;
}
