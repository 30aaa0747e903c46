/**
 * Registry endpoints: pull (`POST /images/create?fromImage=`, through `daemon.pull`), push
 * (`POST /images/{name}/push`) and `POST /auth` (docker login's check).
 */
import { once } from 'node:events';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Daemon } from '../../daemon/daemon.js';
import { InvalidArgument } from '../../errors/errors.js';
import { familiarString, isDigest, parseReference, withTag, type Reference } from '../../images/reference.js';
import { decodeAuthHeader, normalizeAuth, type AuthConfig } from '../../registry/auth.js';
import { resolveSaveItems, saveArchive } from '../../images/save.js';
import { collectBlobs } from '../../registry/blob-gc.js';
import { RegistryConfig } from '../../registry/registry-config.js';
import { parsePlatform } from '../../registry/manifests.js';
import { DownloadTracker, pullImage, type RegistryContext } from '../../registry/pull.js';
import { pullAllTags } from '../../registry/pull-all-tags.js';
import { pushImage } from '../../registry/push.js';
import { RegistryClient } from '../../registry/registry-client.js';
import { JsonStream, sendJson, type RequestContext, type Router } from '../router.js';

const contexts = new WeakMap<Daemon, RegistryContext>();

/** The daemon's registry state: its layer sources, downloads under way, insecure registries. */
export function registryContext(daemon: Daemon): RegistryContext {
  let ctx = contexts.get(daemon);
  if (!ctx) {
    const config = registryConfigOf(daemon);
    ctx = {
      images: daemon.images,
      sources: daemon.layerSources,
      clientOptions: { config },
      downloads: new DownloadTracker(),
      onMirrorError: (mirror, err) => daemon.log.info('pull: the mirror cannot serve it, trying the next', { mirror, error: String(err) }),
    };
    contexts.set(daemon, ctx);
  }
  return ctx;
}

/** The daemon's registry settings, from `--insecure-registry` and `--registry-mirror` (checked when berthd starts). */
export function registryConfigOf(daemon: Daemon): RegistryConfig {
  return new RegistryConfig({ insecureRegistries: daemon.options.insecureRegistries ?? [], registryMirrors: daemon.options.registryMirrors ?? [] });
}

/**
 * `POST /images/create?fromImage=&tag=&platform=`: what `daemon.pull` is set to. A fromImage
 * with neither a tag nor a digest, and no tag, pulls every tag (moby's answer to `pull -a`).
 */
export function pullHandler(daemon: Daemon): (ctx: RequestContext) => Promise<void> {
  return async (ctx) => {
    const ref = pullReference(ctx.query.get('fromImage') ?? '', ctx.query.get('tag'));
    if (ref.tag === undefined && ref.digest === undefined) return pullAll(daemon, ctx, ref);
    const platform = parsePlatform(ctx.query.get('platform'));
    const auth = decodeAuthHeader(ctx.req.headers['x-registry-auth']);
    const stream = new JsonStream(ctx.res!);
    try {
      const result = await pullImage(registryContext(daemon), ref, auth, platform, (m) => stream.write(m));
      daemon.events.publish('image', 'pull', familiarString(result.reference), { name: familiarString(result.reference) });
    } catch (err) {
      // Before the first message (a manifest that is not there), a plain error answer.
      if (!stream.started) throw err;
      stream.error(err);
    }
    stream.end();
  };
}

async function pullAll(daemon: Daemon, ctx: RequestContext, repo: Reference): Promise<void> {
  const platform = parsePlatform(ctx.query.get('platform'));
  const auth = decodeAuthHeader(ctx.req.headers['x-registry-auth']);
  const stream = new JsonStream(ctx.res!);
  try {
    const results = await pullAllTags(registryContext(daemon), repo, auth, platform, (m) => stream.write(m));
    for (const r of results) daemon.events.publish('image', 'pull', familiarString(r.reference), { name: familiarString(r.reference) });
  } catch (err) {
    if (!stream.started) throw err;
    stream.error(err);
  }
  stream.end();
}

/** fromImage may carry its tag or digest; `tag` may be a tag or a digest; with neither, all tags. */
export function pullReference(fromImage: string, tag: string | null): Reference {
  if (!fromImage) throw new InvalidArgument('either fromSrc or fromImage must be given');
  let ref = parseReference(fromImage);
  if (tag) {
    if (isDigest(tag)) ref = { domain: ref.domain, path: ref.path, digest: tag };
    else ref = withTag({ domain: ref.domain, path: ref.path }, tag);
  }
  return ref;
}

export function registryRoutes(router: Router, daemon: Daemon): void {
  const registry = registryContext(daemon);
  daemon.images.setBlobCollector(async () => {
    const removed = await collectBlobs(daemon.images, registry.sources, { inFlight: () => registry.downloads.digests() });
    if (removed.length) daemon.log.info('removed unused blobs', { count: removed.length });
  });
  router.add('POST', '/images/{name:.+}/push', async (ctx) => {
    const name = ctx.params['name']!;
    let repo = parseReference(name);
    const tags: string[] = [];
    const tag = ctx.query.get('tag');
    if (tag) tags.push(tag);
    else if (repo.tag) tags.push(repo.tag);
    if (repo.digest) throw new InvalidArgument('cannot push a digest reference');
    repo = { domain: repo.domain, path: repo.path };
    const auth = decodeAuthHeader(ctx.req.headers['x-registry-auth']);
    const stream = new JsonStream(ctx.res!);
    try {
      await pushImage(registryContext(daemon), repo, tags, auth, (m) => stream.write(m));
      daemon.events.publish('image', 'push', familiarString(tags[0] ? withTag(repo, tags[0]) : repo));
    } catch (err) {
      if (!stream.started) throw err;
      stream.error(err);
    }
    stream.end();
  });

  // `docker save`: one image per path, or any number as repeated `names`.
  router.add('GET', '/images/get', (ctx) => saveRoute(ctx, daemon, ctx.query.getAll('names')));
  router.add('GET', '/images/{name:.+}/get', (ctx) => saveRoute(ctx, daemon, [ctx.params['name']!]));

  router.add('POST', '/auth', async (ctx) => {
    const auth = normalizeAuth(await ctx.json<AuthConfig>({}));
    const domain = loginDomain(auth.serveraddress);
    await new RegistryClient(domain, auth, registryContext(daemon).clientOptions).login();
    sendJson(ctx.res!, 200, { Status: 'Login Succeeded', IdentityToken: '' });
  });
}

/**
 * Streams the archive of `names`. The 200 goes out with the archive's first bytes, so an
 * image missing or a layer unreadable while it is prepared is still a plain error answer.
 */
async function saveRoute(ctx: RequestContext, daemon: Daemon, names: string[]): Promise<void> {
  const items = await resolveSaveItems(daemon.images, names);
  const sources = daemon.layerSources;
  const archive = saveArchive(daemon.images, items, {
    scratchRoot: daemon.scratchDir,
    // Only blobs that carry the diff id as it is (not a tar made again for a push).
    keptBlobs: async (diffId) => (await sources.get(diffId)).filter((b) => !b.diffId).map((b) => ({ digest: b.digest, size: b.size })),
  });
  await firstBytes(archive);
  const res = ctx.res!;
  res.writeHead(200, { 'Content-Type': 'application/x-tar' });
  try {
    await pipeline(archive, res);
  } catch (err) {
    // The 200 is out: a failure can only cut the stream short.
    daemon.log.warn('save: the archive was cut short', { names, error: String(err) });
    res.destroy();
  }
  for (const item of items) daemon.events.publish('image', 'save', item.image.id);
}

/** Resolves once `stream` has bytes to read (or has ended); rejects with its error before that. */
async function firstBytes(stream: Readable): Promise<void> {
  if (stream.readableLength > 0 || stream.readableEnded) return;
  await Promise.race([once(stream, 'readable'), once(stream, 'end')]);
}

/** A login's server: 'https://index.docker.io/v1/' and '' are the Hub; URLs lose scheme and path. */
export function loginDomain(server: string | undefined): string {
  if (!server) return 'docker.io';
  const host = server.replace(/^https?:\/\//, '').replace(/\/.*$/, '');
  if (host === 'index.docker.io' || host === 'registry-1.docker.io' || host === 'docker.io') return 'docker.io';
  return host;
}
