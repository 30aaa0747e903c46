/** The image endpoints: list, inspect, history, tag, remove, prune, import, load. */
import type { Daemon } from '../../daemon/daemon.js';
import { InvalidArgument, NotImplemented } from '../../errors/errors.js';
import { importImage } from '../../images/import.js';
import { loadArchive } from '../../images/load.js';
import { created, type Image } from '../../images/image-store.js';
import { familiarName, familiarString, parseReference, parseTaggedReference, withTag } from '../../images/reference.js';
import { JsonStream, checkFilterNames, parseFilters, queryBool, sendJson, type RequestContext, type Router } from '../router.js';

export function imageRoutes(router: Router, daemon: Daemon): void {
  const images = daemon.images;

  router.add('GET', '/images/json', async (ctx) => {
    const filters = parseFilters(ctx.query.get('filters'));
    checkFilterNames(filters, ['dangling', 'reference', 'label', 'before', 'since', 'until']);
    const all = queryBool(ctx.query, 'all');
    const list = await images.list();
    const parents = new Set(list.map((i) => i.record.parent).filter(Boolean));
    const before = filters.get('before')?.[0];
    const since = filters.get('since')?.[0];
    const beforeTime = before ? created(await images.resolve(before)) : undefined;
    const sinceTime = since ? created(await images.resolve(since)) : undefined;
    const usage = daemon.containerUsage();
    const out = [];
    for (const image of list) {
      const dangling = image.repoTags.length === 0;
      if (!all && dangling && parents.has(image.id)) continue;
      const wantDangling = filters.get('dangling')?.[0];
      if (wantDangling !== undefined) {
        const yes = wantDangling === 'true' || wantDangling === '1';
        if (!['true', 'false', '1', '0'].includes(wantDangling)) throw new InvalidArgument(`invalid filter 'dangling=${wantDangling}'`);
        if (yes !== dangling) continue;
      }
      let repoTags = image.repoTags.map(familiar);
      const refPatterns = filters.get('reference');
      if (refPatterns) {
        repoTags = repoTags.filter((tag) => refPatterns.some((p) => referenceMatches(p, tag)));
        if (repoTags.length === 0) continue;
      }
      if (!labelsMatch(image.config.config?.Labels ?? {}, filters.get('label'))) continue;
      if (beforeTime !== undefined && created(image) >= beforeTime) continue;
      if (sinceTime !== undefined && created(image) <= sinceTime) continue;
      out.push({
        Containers: usage.filter((c) => c.imageId === image.id).length,
        Created: created(image),
        Id: image.id,
        Labels: image.config.config?.Labels ?? {},
        ParentId: image.record.parent ?? '',
        RepoDigests: image.repoDigests.map(familiar),
        RepoTags: repoTags,
        SharedSize: -1,
        Size: image.size,
        ...(ctx.version < '1.44' ? { VirtualSize: image.size } : {}),
      });
    }
    sendJson(ctx.res!, 200, out);
  });

  router.add('POST', '/images/create', async (ctx) => {
    const fromSrc = ctx.query.get('fromSrc');
    if (fromSrc !== null) return importRoute(ctx, daemon, fromSrc);
    const fromImage = ctx.query.get('fromImage');
    if (!fromImage) throw new InvalidArgument('either fromSrc or fromImage must be given');
    if (!daemon.pull) throw new NotImplemented(`pulling ${fromImage}: this engine has no registry client yet`);
    await daemon.pull(ctx);
  });

  router.add('POST', '/images/load', async (ctx) => {
    const quiet = queryBool(ctx.query, 'quiet');
    const stream = new JsonStream(ctx.res!);
    try {
      const loaded = await loadArchive(images, daemon.layerSources, ctx.bodyStream(), (progress) => {
        if (!quiet) stream.write(progress);
      }, daemon.scratchDir);
      for (const name of loaded.names) {
        stream.write({ stream: `Loaded image: ${name}\n` });
        daemon.events.publish('image', 'load', name);
      }
      for (const id of loaded.untagged) stream.write({ stream: `Loaded image ID: ${id}\n` });
    } catch (err) {
      if (!stream.started) throw err;
      stream.error(err);
    }
    stream.end();
  });

  router.add('GET', '/images/{name:.+}/json', async (ctx) => {
    const image = await images.resolve(ctx.params['name']!);
    sendJson(ctx.res!, 200, inspectImage(daemon, image));
  });

  router.add('GET', '/images/{name:.+}/history', async (ctx) => {
    const history = await images.history(ctx.params['name']!);
    sendJson(
      ctx.res!,
      200,
      history.map((h) => ({ Id: h.id, Created: h.created, CreatedBy: h.createdBy, Tags: h.tags.length ? h.tags : null, Size: h.size, Comment: h.comment })),
    );
  });

  router.add('POST', '/images/{name:.+}/tag', async (ctx) => {
    const repo = ctx.query.get('repo');
    if (!repo) throw new InvalidArgument('repository name must have at least one component');
    const tag = ctx.query.get('tag');
    let ref = parseReference(repo);
    if (tag) ref = withTag(ref, tag);
    const target = familiarString(ref.tag || ref.digest ? ref : parseTaggedReference(repo));
    const image = await images.resolve(ctx.params['name']!);
    await images.tag(image.id, target);
    daemon.events.publish('image', 'tag', image.id, { name: target });
    ctx.res!.writeHead(201);
    ctx.res!.end();
  });

  router.add('DELETE', '/images/{name:.+}', async (ctx) => {
    const records = await images.remove(ctx.params['name']!, {
      force: queryBool(ctx.query, 'force'),
      prune: !queryBool(ctx.query, 'noprune'),
    });
    for (const r of records) {
      if (r.Untagged) daemon.events.publish('image', 'untag', r.Untagged);
      if (r.Deleted) daemon.events.publish('image', 'delete', r.Deleted);
    }
    sendJson(ctx.res!, 200, records);
  });

  router.add('POST', '/images/prune', async (ctx) => {
    const filters = parseFilters(ctx.query.get('filters'));
    checkFilterNames(filters, ['dangling', 'label', 'until']);
    const dangling = filters.get('dangling')?.[0] ?? 'true';
    const all = dangling === 'false' || dangling === '0';
    const until = filters.get('until')?.[0];
    const untilTime = until ? parseUntil(until) : undefined;
    const result = await images.prune({
      all,
      filter: (image) =>
        labelsMatch(image.config.config?.Labels ?? {}, filters.get('label')) && (untilTime === undefined || created(image) < untilTime),
    });
    sendJson(ctx.res!, 200, { ImagesDeleted: result.deleted.length ? result.deleted : null, SpaceReclaimed: result.reclaimed });
  });
}

async function importRoute(ctx: RequestContext, daemon: Daemon, fromSrc: string): Promise<void> {
  if (fromSrc !== '-') throw new NotImplemented(`importing from "${fromSrc}": only "-" (the request body) is supported`);
  const repo = ctx.query.get('repo') ?? '';
  const tag = ctx.query.get('tag') ?? '';
  let reference: string | undefined;
  if (repo !== '') {
    let ref = parseReference(repo);
    if (tag !== '') ref = withTag(ref, tag);
    if (ref.digest) throw new InvalidArgument('cannot import digest reference');
    reference = familiarString(ref.tag ? ref : parseTaggedReference(repo));
  }
  const platform = ctx.query.get('platform');
  if (platform && !/^linux(\/amd64)?$/.test(platform)) {
    throw new InvalidArgument(`platform "${platform}" is not supported: this engine runs linux/amd64`);
  }
  const stream = new JsonStream(ctx.res!);
  try {
    const id = await importImage(daemon.images, daemon.layerSources, ctx.bodyStream(), {
      ...(reference ? { reference } : {}),
      changes: ctx.query.getAll('changes'),
      message: ctx.query.get('message') ?? '',
      source: fromSrc,
    });
    daemon.events.publish('image', 'import', id, reference ? { name: reference } : {});
    stream.write({ status: id });
  } catch (err) {
    if (!stream.started) throw err;
    stream.error(err);
  }
  stream.end();
}

/** The fields of Docker's container Config that inspect always shows, at their zero values. */
export const CONFIG_DEFAULTS = {
  Hostname: '',
  Domainname: '',
  User: '',
  AttachStdin: false,
  AttachStdout: false,
  AttachStderr: false,
  Tty: false,
  OpenStdin: false,
  StdinOnce: false,
} as const;

export function inspectImage(daemon: Daemon, image: Image): Record<string, unknown> {
  const config = image.config;
  const layers = image.record.layers;
  const dirs = layers.map((c) => daemon.snapshots.upperDir(c)).reverse();
  return {
    Id: image.id,
    RepoTags: image.repoTags.map(familiar),
    RepoDigests: image.repoDigests.map(familiar),
    Parent: image.record.parent ?? '',
    Comment: config.comment ?? config.history?.at(-1)?.comment ?? '',
    Created: config.created ?? '',
    DockerVersion: config.docker_version ?? '',
    Author: config.author ?? '',
    Config: {
      ...CONFIG_DEFAULTS,
      Env: null,
      Cmd: null,
      Image: '',
      Volumes: null,
      WorkingDir: '',
      Entrypoint: null,
      OnBuild: null,
      Labels: null,
      ...(config.config ?? {}),
    },
    Architecture: config.architecture,
    ...(config.variant ? { Variant: config.variant } : {}),
    Os: config.os,
    Size: image.size,
    GraphDriver: {
      Name: 'overlay2',
      Data: dirs.length ? { LowerDir: dirs.slice(1).join(':') || undefined, UpperDir: dirs[0] } : {},
    },
    RootFS: { Type: 'layers', Layers: config.rootfs.diff_ids },
    Metadata: { LastTagTime: '0001-01-01T00:00:00Z' },
  };
}

/** 'docker.io/library/busybox:latest' -> 'busybox:latest'. */
function familiar(full: string): string {
  return familiarString(parseReference(full));
}

/** Docker's reference filter: a path.Match pattern against `name` or `name:tag`. */
export function referenceMatches(pattern: string, familiarRef: string): boolean {
  const ref = parseReference(familiarRef);
  const name = familiarName(ref);
  return globMatch(pattern, familiarRef) || globMatch(pattern, name);
}

/** Go's path.Match: `*` (no '/'), `?`, `[a-z]`, `[^x]`, backslash escapes. */
export function globMatch(pattern: string, text: string): boolean {
  let re = '^';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else if (c === '[') {
      const end = pattern.indexOf(']', i + 1);
      if (end < 0) throw new InvalidArgument(`invalid reference filter pattern: ${pattern}`);
      let set = pattern.slice(i + 1, end);
      if (set.startsWith('^')) set = `^${set.slice(1)}`;
      re += `[${set.replace(/\\/g, '\\\\')}]`;
      i = end;
    } else if (c === '\\' && i + 1 < pattern.length) re += `\\${pattern[++i]}`;
    else re += c.replace(/[.+^${}()|\]\\]/g, '\\$&');
  }
  return new RegExp(`${re}$`).test(text);
}

export function labelsMatch(labels: Record<string, string>, wanted: string[] | undefined): boolean {
  if (!wanted) return true;
  return wanted.every((w) => {
    const eq = w.indexOf('=');
    if (eq < 0) return w in labels;
    return labels[w.slice(0, eq)] === w.slice(eq + 1);
  });
}

function parseUntil(value: string): number {
  if (/^\d+(\.\d+)?$/.test(value)) return Number(value);
  const d = /^(\d+)(s|m|h)$/.exec(value);
  if (d) return Date.now() / 1000 - Number(d[1]) * { s: 1, m: 60, h: 3600 }[d[2] as 's' | 'm' | 'h'];
  const t = Date.parse(value);
  if (Number.isNaN(t)) throw new InvalidArgument(`invalid filter 'until=${value}'`);
  return t / 1000;
}

