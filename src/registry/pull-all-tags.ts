/**
 * `docker pull --all-tags`: the repository's tags from the registry (`GET /v2/<name>/tags/list`,
 * following its `Link: <…>; rel="next"` pages), then a pull of each, in one progress stream
 * that ends, as moby's does, with one status line for the repository.
 */
import { NotFound } from '../errors/errors.js';
import { familiarString, withTag, type Reference } from '../images/reference.js';
import type { AuthConfig } from './auth.js';
import type { PlatformSpec } from './manifests.js';
import type { ProgressSink } from './progress.js';
import { pullImage, type PullResult, type RegistryContext } from './pull.js';
import { RegistryClient, pullScope, readLimited, registryError } from './registry-client.js';

/** A tags page is a small document. */
const MAX_TAGS_PAGE = 4 * 1024 * 1024;

/** The tags of `repo` (domain and path) on its registry, in the registry's order. */
export async function listTags(ctx: RegistryContext, repo: Reference, auth: AuthConfig): Promise<string[]> {
  const client = new RegistryClient(repo.domain, auth, ctx.clientOptions);
  const tags: string[] = [];
  let next: string | undefined = `/v2/${repo.path}/tags/list`;
  while (next) {
    const res = await client.request('GET', next, { scopes: [pullScope(repo.path)] });
    if (!res.ok) throw await registryError(res, `listing the tags of ${familiarString(repo)}`);
    const page = JSON.parse((await readLimited(res, MAX_TAGS_PAGE, 'tags list')).toString('utf8')) as { tags?: string[] | null };
    tags.push(...(page.tags ?? []));
    const link = /<([^>]+)>\s*;\s*rel="?next"?/.exec(res.headers.get('link') ?? '');
    next = link ? new URL(link[1]!, client.url(next)).toString() : undefined;
  }
  return tags;
}

/** Pulls every tag of `repo`; answers what each pull stored. */
export async function pullAllTags(
  ctx: RegistryContext,
  repo: Reference,
  auth: AuthConfig,
  platform: PlatformSpec,
  progress: ProgressSink,
): Promise<PullResult[]> {
  const name: Reference = { domain: repo.domain, path: repo.path };
  const tags = await listTags(ctx, name, auth);
  if (tags.length === 0) throw new NotFound(`${familiarString(name)}: the repository has no tags`);
  let downloaded = false;
  const results: PullResult[] = [];
  for (const tag of tags) {
    results.push(
      await pullImage(ctx, withTag(name, tag), auth, platform, (message) => {
        // One status for the repository at the end, not one per tag.
        const status = 'status' in message && typeof message.status === 'string' ? message.status : '';
        if (status.startsWith('Status: ')) {
          if (status.startsWith('Status: Downloaded newer image')) downloaded = true;
          return;
        }
        progress(message);
      }),
    );
  }
  progress({ status: `Status: ${downloaded ? 'Downloaded newer image' : 'Image is up to date'} for ${familiarString(name)}` });
  return results;
}
