/**
 * `POST /build`: docker's classic builder (what `DOCKER_BUILDKIT=0 docker build` and a
 * daemon answering `Builder-Version: 1` get). The body is the context as a tar; the query
 * says what to build (t, dockerfile, buildargs, labels, nocache, rm, forcerm, q, target,
 * pull; remote contexts and BuildKit's version=2 are refused); `X-Registry-Config` holds the
 * credentials a FROM's pull may need. The answer is a JSON stream of `{"stream": …}` lines,
 * a pull's messages, `{"aux": {"ID": …}}` per stage and, on failure, `{"errorDetail": …,
 * "error": …}` (with a failing RUN's exit code). A client that goes away cancels the build.
 */
import { join } from 'node:path';
import type { Daemon } from '../../daemon/daemon.js';
import { InvalidArgument, NotImplemented } from '../../errors/errors.js';
import type { BuildCache } from '../../builder/build-cache.js';
import type { BuildDeps, BuildOptions } from '../../builder/build.js';
import { ContainerArchive } from '../../containers/container-archive.js';
import { familiarString, parseReference, parseTaggedReference, withTag, type Reference } from '../../images/reference.js';
import { normalizeAuth, type AuthConfig } from '../../registry/auth.js';
import { parsePlatform } from '../../registry/manifests.js';
import { pullImage } from '../../registry/pull.js';
import { registryContext } from './registry.js';
import { JsonStream, queryBool, type RequestContext, type Router } from '../router.js';

export function buildRoutes(router: Router, daemon: Daemon): void {
  const archive = new ContainerArchive({
    containers: daemon.containers,
    snapshots: daemon.snapshots,
    events: daemon.events,
    execRoot: join(daemon.options.execRoot, 'builder'),
    volumeMountpoint: (name) => daemon.volumes.mountpoint(name),
    warn: (message, fields) => daemon.log.warn(message, fields),
  });
  // The builder loads on the first build, not at berthd's start.
  const builder = () => import('../../builder/build.js');
  let cache: Promise<BuildCache> | undefined;
  const openCache = async () => (await import('../../builder/build-cache.js')).BuildCache.open(daemon.options.dataRoot, daemon.images);
  const deps = async (auths: Record<string, AuthConfig>): Promise<BuildDeps> => ({
    containers: daemon.containers,
    images: daemon.images,
    snapshots: daemon.snapshots,
    archive,
    events: daemon.events,
    log: daemon.log,
    cache: await (cache ??= openCache()),
    scratchDir: join(daemon.options.dataRoot, 'tmp'),
    pull: async (name, progress) => {
      const ref = parseReference(name);
      const tagged = ref.tag || ref.digest ? ref : withTag(ref, 'latest');
      const result = await pullImage(registryContext(daemon), tagged, authFor(auths, tagged), parsePlatform(null), progress);
      daemon.events.publish('image', 'pull', familiarString(result.reference), { name: familiarString(result.reference) });
    },
  });

  router.add('POST', '/build', async (ctx) => {
    const cancelled = new AbortController();
    const res = ctx.res!;
    // The connection closing before the answer is done: the client gave up (Ctrl-C).
    res.once('close', () => {
      if (!res.writableFinished) cancelled.abort();
    });
    const opts = { ...buildOptions(ctx), signal: cancelled.signal };
    const quiet = queryBool(ctx.query, 'q');
    const stream = new JsonStream(res);
    const { BuildStepError, buildImage } = await builder();
    try {
      const auths = registryAuths(ctx.req.headers['x-registry-config']);
      const id = await buildImage(await deps(auths), ctx.bodyStream(), opts, {
        stream: (text) => {
          if (!quiet) stream.write({ stream: text });
        },
        aux: (value) => stream.write({ aux: value }),
        message: (value) => {
          if (!quiet) stream.write(value);
        },
      });
      // As docker: with q, the output is just the image's id (the CLI prints what it gets).
      if (quiet) stream.write({ stream: `${id}\n` });
    } catch (err) {
      if (err instanceof BuildStepError && stream.started) {
        const message = err.message;
        stream.write({ errorDetail: { code: err.exitCode, message }, error: message });
      } else {
        stream.error(err);
      }
    }
    stream.end();
  });
}

function buildOptions(ctx: RequestContext): BuildOptions {
  const q = ctx.query;
  if (q.get('remote')) throw new NotImplemented('berth builds from an uploaded context only (no remote URL or git context)');
  if (q.get('version') === '2') throw new NotImplemented('BuildKit (builder version 2) is not supported by berth: use the classic builder (DOCKER_BUILDKIT=0)');
  const tags: Reference[] = q.getAll('t').filter((t) => t !== '').map((t) => {
    const ref = parseTaggedReference(t);
    if (ref.digest) throw new InvalidArgument(`invalid reference format: ${t} (a build cannot be tagged with a digest)`);
    return ref;
  });
  return {
    dockerfile: q.get('dockerfile') || 'Dockerfile',
    tags,
    buildArgs: jsonObject<string | null>(q.get('buildargs'), 'buildargs'),
    labels: jsonObject<string>(q.get('labels'), 'labels'),
    noCache: queryBool(q, 'nocache'),
    rm: queryBool(q, 'rm', true),
    forceRm: queryBool(q, 'forcerm'),
    pull: queryBool(q, 'pull'),
    ...(q.get('target') ? { target: q.get('target')! } : {}),
  };
}

function jsonObject<T>(raw: string | null, name: string): Record<string, T> {
  if (raw === null || raw === '') return {};
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch (err) {
    throw new InvalidArgument(`${name}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  if (value === null) return {};
  if (typeof value !== 'object' || Array.isArray(value)) throw new InvalidArgument(`${name} must be a JSON object`);
  return value as Record<string, T>;
}

/** `X-Registry-Config`: the client's credentials for each registry (base64 JSON), none when absent or unreadable. */
function registryAuths(header: string | string[] | undefined): Record<string, AuthConfig> {
  const value = Array.isArray(header) ? header[0] : header;
  if (!value) return {};
  try {
    const parsed = JSON.parse(Buffer.from(value, 'base64').toString('utf8')) as unknown;
    return typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed) ? (parsed as Record<string, AuthConfig>) : {};
  } catch {
    // Credentials that cannot be read are no credentials: an anonymous pull may still work.
    return {};
  }
}

/** The credentials for the reference's registry; Docker Hub's are kept under its index address. */
function authFor(auths: Record<string, AuthConfig>, ref: Reference): AuthConfig {
  const keys = ref.domain === 'docker.io' ? ['https://index.docker.io/v1/', 'docker.io', 'index.docker.io'] : [ref.domain, `https://${ref.domain}`, `http://${ref.domain}`];
  for (const key of keys) {
    const auth = auths[key];
    if (auth) return normalizeAuth(auth);
  }
  return {};
}
