/** Image commands: images, import, load, tag, rmi, history, image inspect, image prune. */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { ApiError } from '../../client/engine-client.js';
import { InvalidArgument } from '../../errors/errors.js';
import { parseArgs, type FlagSpec } from '../args.js';
import type { CliContext, Command } from '../command.js';
import { ExitError, daemonError } from '../command.js';
import type { InspectView } from '../output.js';

/**
 * The printing code (templates, tables, units: most of the modules these commands would
 * load) comes in only when a command prints through it, so `images -q`, `rmi` or `tag` do
 * not read, compile and run it on every call.
 */
export async function formatting() {
  const [output, units, table, width] = await Promise.all([
    import('../output.js'),
    import('../../util/units.js'),
    import('../format/table.js'),
    import('../format/display-width.js'),
  ]);
  return { ...output, ...units, contextRow: table.contextRow, ellipsis: width.ellipsis };
}

export type Formatting = Awaited<ReturnType<typeof formatting>>;

async function printJsonMessages(messages: AsyncIterable<Record<string, unknown>>, ctx: CliContext): Promise<void> {
  const progress = await import('../progress.js');
  await progress.printJsonMessages(messages, ctx);
}

/** An id as docker shortens it: without the algorithm, 12 characters. */
function shortId(id: string): string {
  return id.slice(id.indexOf(':') + 1).slice(0, 12);
}

/** One element of `GET /images/json` (and of the images of `GET /system/df`). */
export interface ImageSummary {
  Id: string;
  ParentId: string;
  RepoTags: string[] | null;
  RepoDigests: string[] | null;
  Created: number;
  Size: number;
  SharedSize: number;
  Labels: Record<string, string> | null;
  Containers: number;
}

const FORMAT_FLAG: FlagSpec = { name: 'format', type: 'string', description: "Format output using a custom template:\n'table':            Print output in table format with column headers (default)\n'table TEMPLATE':   Print output in table format using the given Go template\n'json':             Print in JSON format\n'TEMPLATE':         Print output using the given Go template" };

export const imagesCommand: Command = {
  spec: {
    usage: 'images [OPTIONS] [REPOSITORY[:TAG]]',
    description: 'List images',
    aliases: ['berth image ls', 'berth image list', 'berth images'],
    args: { max: 1 },
    flags: [
      { name: 'all', short: 'a', type: 'bool', description: 'Show all images (default hides intermediate images)' },
      { name: 'digests', type: 'bool', description: 'Show digests' },
      { name: 'filter', short: 'f', type: 'list', description: 'Filter output based on conditions provided', placeholder: 'filter' },
      { ...FORMAT_FLAG, placeholder: 'string' },
      { name: 'no-trunc', type: 'bool', description: "Don't truncate output" },
      { name: 'quiet', short: 'q', type: 'bool', description: 'Only show image IDs' },
    ],
  },
  async run(ctx, argv, path) {
    const a = parseArgs(this.spec, argv, path);
    const filters = filterMap(a.list('filter'));
    if (a.args[0]) (filters['reference'] ??= []).push(a.args[0]);
    const list = await ctx.client.json<ImageSummary[]>('GET', '/images/json', {
      query: { all: a.bool('all'), filters: Object.keys(filters).length ? JSON.stringify(filters) : undefined },
    });
    const noTrunc = a.bool('no-trunc');
    const digests = a.bool('digests');
    // As docker: -q prints the ids, unless a --format other than plain 'table' says otherwise.
    const format = a.string('format');
    const quiet = a.bool('quiet') && (format === undefined || format === 'table');
    if (quiet) {
      // {{.ID}} of every row: no template needed.
      ctx.out(list.flatMap((image) => imageRows(image, digests).map(() => `${noTrunc ? image.Id : shortId(image.Id)}\n`)).join(''));
      return 0;
    }
    const f = await formatting();
    const now = Date.now();
    const rows = list.flatMap((image) => imageRows(image, digests).map(([repo, tag, digest]) => imageRow(f, image, repo, tag, digest, noTrunc, now)));
    ctx.out(
      f.formatList(rows, {
        format,
        defaultFormat: digests
          ? 'table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}'
          : 'table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}',
        headers: IMAGE_HEADERS,
      }),
    );
    return 0;
  },
};

/** docker's imageContext headers, for `images` and the images of `system df -v`. */
export const IMAGE_HEADERS = {
  Repository: 'REPOSITORY', Tag: 'TAG', Digest: 'DIGEST', ID: 'IMAGE ID', CreatedSince: 'CREATED',
  CreatedAt: 'CREATED AT', Size: 'SIZE', Containers: 'CONTAINERS', SharedSize: 'SHARED SIZE',
  UniqueSize: 'UNIQUE SIZE', VirtualSize: 'SIZE',
};

/**
 * One row of `images`: the fields a --format template can name, as docker's imageContext
 * has them. Fields in alphabetical order: docker's `{{json .}}` marshals them as a Go map.
 * Size has 3 significant digits, the other sizes 4 (units.HumanSize), as in docker.
 */
export function imageRow(f: Formatting, image: ImageSummary, repo: string, tag: string, digest: string, noTrunc: boolean, now: number): Record<string, string> {
  const { contextRow, humanSize, timeAgo } = f;
  const created = new Date(image.Created * 1000);
  return contextRow(
    {
      Containers: image.Containers < 0 ? 'N/A' : String(image.Containers),
      CreatedAt: goTime(created),
      CreatedSince: timeAgo(created, new Date(now)),
      Digest: digest,
      ID: noTrunc ? image.Id : shortId(image.Id),
      Repository: repo,
      SharedSize: image.SharedSize < 0 ? 'N/A' : humanSize(image.SharedSize, 4),
      Size: humanSize(image.Size),
      Tag: tag,
      UniqueSize: image.SharedSize < 0 ? 'N/A' : humanSize(image.Size - image.SharedSize, 4),
      VirtualSize: humanSize(image.Size, 4),
    },
    '*formatter.imageContext',
  );
}

/** Docker's rows for one image: a row per tag (per digest with --digests), <none> when untagged. */
function imageRows(image: ImageSummary, showDigests: boolean): Array<[string, string, string]> {
  const tags = image.RepoTags ?? [];
  const digests = image.RepoDigests ?? [];
  if (tags.length === 0 && digests.length === 0) return [['<none>', '<none>', '<none>']];
  const byRepo = new Map<string, { tags: string[]; digests: string[] }>();
  const group = (repo: string) => {
    let g = byRepo.get(repo);
    if (!g) byRepo.set(repo, (g = { tags: [], digests: [] }));
    return g;
  };
  for (const t of tags) {
    if (t === '<none>:<none>') continue;
    const i = t.lastIndexOf(':');
    group(t.slice(0, i)).tags.push(t.slice(i + 1));
  }
  for (const d of digests) {
    if (d === '<none>@<none>') continue;
    const i = d.indexOf('@');
    group(d.slice(0, i)).digests.push(d.slice(i + 1));
  }
  const rows: Array<[string, string, string]> = [];
  for (const [repo, g] of byRepo) {
    if (g.tags.length === 0) {
      if (showDigests) for (const d of g.digests) rows.push([repo, '<none>', d]);
      else rows.push([repo, '<none>', '']);
      continue;
    }
    for (const tag of g.tags) {
      if (!showDigests || g.digests.length === 0) rows.push([repo, tag, g.digests[0] ?? '<none>']);
      else for (const d of g.digests) rows.push([repo, tag, d]);
    }
  }
  return rows.length ? rows : [['<none>', '<none>', '<none>']];
}

export const importCommand: Command = {
  spec: {
    usage: 'import [OPTIONS] file|URL|- [REPOSITORY[:TAG]]',
    description: 'Import the contents from a tarball to create a filesystem image',
    args: { min: 1, max: 2 },
    flags: [
      { name: 'change', short: 'c', type: 'list', description: 'Apply Dockerfile instruction to the created image' },
      { name: 'message', short: 'm', type: 'string', description: 'Set commit message for imported image' },
      { name: 'platform', type: 'string', description: 'Set platform if server is multi-platform capable' },
    ],
  },
  async run(ctx, argv, path) {
    const a = parseArgs(this.spec, argv, path);
    const [source, ref] = a.args as [string, string | undefined];
    const body = source === '-' ? process.stdin : await openFile(source);
    const messages = ctx.client.jsonLines('POST', '/images/create', {
      query: { fromSrc: '-', repo: ref, message: a.string('message'), changes: a.list('change'), platform: a.string('platform') },
      body,
      headers: { 'Content-Type': 'application/x-tar' },
    });
    await printJsonMessages(messages, ctx);
    return 0;
  },
};

export const loadCommand: Command = {
  spec: {
    usage: 'load [OPTIONS]',
    description: 'Load an image from a tar archive or STDIN',
    args: { max: 0 },
    flags: [
      { name: 'input', short: 'i', type: 'string', description: 'Read from tar archive file, or an OCI image layout directory, instead of STDIN' },
      { name: 'quiet', short: 'q', type: 'bool', description: 'Suppress the load output' },
    ],
  },
  async run(ctx, argv, path) {
    const a = parseArgs(this.spec, argv, path);
    const input = a.string('input');
    let body: Readable;
    if (input) {
      const st = await stat(input).catch(() => undefined);
      if (!st) throw new ExitError(`open ${input}: no such file or directory`, 1);
      body = st.isDirectory() ? (await import('../tar-directory.js')).tarDirectory(input) : createReadStream(input);
    } else {
      if (process.stdin.isTTY) throw new ExitError('requested load from stdin, but stdin is empty', 1);
      body = process.stdin;
    }
    const messages = ctx.client.jsonLines('POST', '/images/load', {
      query: { quiet: a.bool('quiet') || !process.stdout.isTTY },
      body,
      headers: { 'Content-Type': 'application/x-tar' },
    });
    await printJsonMessages(messages, ctx);
    return 0;
  },
};

export const tagCommand: Command = {
  spec: {
    usage: 'tag SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]',
    description: 'Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE',
    args: { min: 2, max: 2 },
    flags: [],
  },
  async run(ctx, argv, path) {
    const a = parseArgs(this.spec, argv, path);
    const [source, target] = a.args as [string, string];
    const { parseReference } = await import('../../images/reference.js');
    let ref;
    try {
      ref = parseReference(target);
    } catch (err) {
      throw new ExitError(`${(err as Error).message}`, 1);
    }
    if (ref.digest) throw new ExitError('refusing to create a tag with a digest reference', 1);
    const repo = target.slice(0, ref.tag ? target.lastIndexOf(':') : target.length);
    await ctx.client.send('POST', `/images/${encodeName(source)}/tag`, { query: { repo, tag: ref.tag } });
    return 0;
  },
};

export const rmiCommand: Command = {
  spec: {
    usage: 'rmi [OPTIONS] IMAGE [IMAGE...]',
    description: 'Remove one or more images',
    aliases: ['berth image rm', 'berth image remove', 'berth rmi'],
    args: { min: 1 },
    flags: [
      { name: 'force', short: 'f', type: 'bool', description: 'Force removal of the image' },
      { name: 'no-prune', type: 'bool', description: 'Do not delete untagged parents' },
    ],
  },
  async run(ctx, argv, path) {
    const a = parseArgs(this.spec, argv, path);
    const force = a.bool('force');
    const errors: string[] = [];
    // As docker: with -f, images that do not exist are reported but do not fail the command.
    let fatal = false;
    for (const name of a.args) {
      try {
        const records = await ctx.client.json<Array<{ Untagged?: string; Deleted?: string }>>('DELETE', `/images/${encodeName(name)}`, {
          query: { force, noprune: a.bool('no-prune') },
        });
        for (const r of records) {
          if (r.Untagged) ctx.out(`Untagged: ${r.Untagged}\n`);
          if (r.Deleted) ctx.out(`Deleted: ${r.Deleted}\n`);
        }
      } catch (err) {
        if (!(err instanceof ApiError)) throw err;
        if (err.status !== 404) fatal = true;
        errors.push(`Error response from daemon: ${err.message}`);
      }
    }
    if (errors.length) ctx.err(`${errors.join('\n')}\n`);
    return errors.length && (!force || fatal) ? 1 : 0;
  },
};

export const historyCommand: Command = {
  spec: {
    usage: 'history [OPTIONS] IMAGE',
    description: 'Show the history of an image',
    aliases: ['berth image history', 'berth history'],
    args: { min: 1, max: 1 },
    flags: [
      { ...FORMAT_FLAG, placeholder: 'string' },
      { name: 'human', short: 'H', type: 'bool', default: true, description: 'Print sizes and dates in human readable format' },
      { name: 'no-trunc', type: 'bool', description: "Don't truncate output" },
      { name: 'quiet', short: 'q', type: 'bool', description: 'Only show image IDs' },
    ],
  },
  async run(ctx, argv, path) {
    const a = parseArgs(this.spec, argv, path);
    const history = await ctx.client.json<Array<{ Id: string; Created: number; CreatedBy: string; Tags: string[] | null; Size: number; Comment: string }>>(
      'GET',
      `/images/${encodeName(a.args[0]!)}/history`,
    );
    const noTrunc = a.bool('no-trunc');
    const human = a.bool('human');
    const { contextRow, ellipsis, formatList, humanSize, timeAgo, truncateId } = await formatting();
    const now = new Date();
    // As docker's historyContext: fields in Go map order for {{json .}}.
    const rows = history.map((h) => {
      const created = new Date(h.Created * 1000);
      const createdBy = h.CreatedBy.replace(/\t/g, ' ');
      return contextRow(
        {
          Comment: h.Comment,
          CreatedAt: rfc3339(created),
          CreatedBy: noTrunc ? createdBy : ellipsis(createdBy, 45),
          CreatedSince: human ? timeAgo(created, now) : rfc3339(created),
          ID: noTrunc ? h.Id : truncateId(h.Id),
          Size: human ? humanSize(h.Size) : String(h.Size),
        },
        '*image.historyContext',
      );
    });
    const format = a.string('format');
    ctx.out(
      formatList(rows, {
        format,
        defaultFormat: human
          ? 'table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}'
          : 'table {{.ID}}\t{{.CreatedAt}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}',
        headers: { ID: 'IMAGE', CreatedSince: 'CREATED', CreatedAt: 'CREATED AT', CreatedBy: 'CREATED BY', Size: 'SIZE', Comment: 'COMMENT' },
        // As docker: a --format other than plain 'table' wins over -q.
        quiet: a.bool('quiet') && (format === undefined || format === 'table'),
      }),
    );
    return 0;
  },
};

export const imageInspectCommand: Command = {
  spec: {
    usage: 'image inspect [OPTIONS] IMAGE [IMAGE...]',
    description: 'Display detailed information on one or more images',
    args: { min: 1 },
    flags: [{ name: 'format', short: 'f', type: 'string', description: 'Format output using a custom template' }],
  },
  async run(ctx, argv, path) {
    const a = parseArgs(this.spec, argv, path);
    return inspectEach(
      ctx,
      a.args,
      a.string('format'),
      (name) => ctx.client.json('GET', `/images/${encodeName(name)}/json`),
      { notFound: (_name, err) => daemonError(err) },
    );
  },
};

/**
 * Inspects each name as docker does: prints what was found (through the format), then the
 * errors in the order of the names, and exits 1 when there was any (64 when the format does
 * not parse). `notFound` words a missing object: `docker inspect` says "Error: No such
 * object: x", the inspect of one kind (`docker image inspect`) passes the daemon's answer
 * on. `view` gives the typed object the format runs over first (see InspectPrinter).
 */
export async function inspectEach(
  ctx: CliContext,
  names: string[],
  format: string | undefined,
  get: (name: string) => Promise<unknown>,
  options: { notFound?: (name: string, err: ApiError) => string; view?: InspectView } = {},
): Promise<number> {
  const { InspectPrinter } = await import('../output.js');
  const notFound = options.notFound ?? ((name) => `Error: No such object: ${name}`);
  let printer;
  try {
    printer = new InspectPrinter(format, options.view);
  } catch (err) {
    if (err instanceof InvalidArgument) throw new ExitError(err.message, 64);
    throw err;
  }
  const errors: string[] = [];
  for (const name of names) {
    let found: unknown;
    try {
      found = await get(name);
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      errors.push(err.status === 404 ? notFound(name, err) : daemonError(err));
      continue;
    }
    const error = printer.add(found);
    if (error) errors.push(error);
  }
  ctx.out(printer.output());
  for (const e of errors) ctx.err(`${e}\n`);
  return errors.length ? 1 : 0;
}

export const imagePruneCommand: Command = {
  spec: {
    usage: 'image prune [OPTIONS]',
    description: 'Remove unused images',
    args: { max: 0 },
    flags: [
      { name: 'all', short: 'a', type: 'bool', description: 'Remove all unused images, not just dangling ones' },
      { name: 'filter', type: 'list', description: 'Provide filter values (e.g. "until=<timestamp>")', placeholder: 'filter' },
      { name: 'force', short: 'f', type: 'bool', description: 'Do not prompt for confirmation' },
    ],
  },
  async run(ctx, argv, path) {
    const a = parseArgs(this.spec, argv, path);
    const all = a.bool('all');
    const warning = all
      ? 'WARNING! This will remove all images without at least one container associated to them.'
      : 'WARNING! This will remove all dangling images.';
    if (!a.bool('force') && !(await confirm(ctx, warning))) return 0;
    const filters = filterMap(a.list('filter'));
    filters['dangling'] = [all ? 'false' : 'true'];
    const report = await ctx.client.json<{ ImagesDeleted: Array<{ Untagged?: string; Deleted?: string }> | null; SpaceReclaimed: number }>(
      'POST',
      '/images/prune',
      { query: { filters: JSON.stringify(filters) } },
    );
    if (report.ImagesDeleted?.length) {
      ctx.out('Deleted Images:\n');
      for (const r of report.ImagesDeleted) {
        if (r.Untagged) ctx.out(`untagged: ${r.Untagged}\n`);
        if (r.Deleted) ctx.out(`deleted: ${r.Deleted}\n`);
      }
      ctx.out('\n');
    }
    const { humanSize } = await import('../../util/units.js');
    ctx.out(`Total reclaimed space: ${humanSize(report.SpaceReclaimed)}\n`);
    return 0;
  },
};

/** Asks "[y/N]" on the terminal, as docker's prune commands do: only "y" or "Y" on the first line is a yes. */
export async function confirm(ctx: CliContext, warning: string): Promise<boolean> {
  ctx.out(`${warning}\nAre you sure you want to continue? [y/N] `);
  const answer = await new Promise<string>((resolve) => {
    let text = '';
    const onData = (chunk: Buffer) => {
      text += chunk.toString('utf8');
      if (text.includes('\n')) done();
    };
    const done = () => {
      process.stdin.off('data', onData);
      process.stdin.pause();
      resolve(text.split('\n')[0]!.trim());
    };
    process.stdin.on('data', onData);
    process.stdin.once('end', done);
  });
  return answer.toLowerCase() === 'y';
}

/** `-f key=value` flags as the API's filters map. */
export function filterMap(values: string[]): Record<string, string[]> {
  const filters: Record<string, string[]> = {};
  for (const v of values) {
    const eq = v.indexOf('=');
    if (eq <= 0) throw new ExitError(`bad format of filter (expected name=value)`, 125);
    (filters[v.slice(0, eq)] ??= []).push(v.slice(eq + 1));
  }
  return filters;
}

/** Image names go into the path as they are: slashes included, as the docker CLI sends them. */
export function encodeName(name: string): string {
  return name.split('/').map(encodeURIComponent).join('/');
}

async function openFile(path: string): Promise<Readable> {
  const st = await stat(path).catch(() => undefined);
  if (!st) throw new ExitError(`open ${path}: no such file or directory`, 1);
  return createReadStream(path);
}

/** Go's time.RFC3339 in the local time zone, as docker prints it: '2024-01-02T15:04:05Z' or '…+02:00'. */
function rfc3339(d: Date): string {
  const offset = -d.getTimezoneOffset();
  const local = new Date(d.getTime() + offset * 60_000).toISOString().replace(/\.\d+Z$/, '');
  if (offset === 0) return `${local}Z`;
  const abs = Math.abs(offset);
  return `${local}${offset > 0 ? '+' : '-'}${String(Math.floor(abs / 60)).padStart(2, '0')}:${String(abs % 60).padStart(2, '0')}`;
}

/** Go's time.Time String(): '2024-01-02 15:04:05 +0000 UTC'. */
function goTime(d: Date): string {
  return `${d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, '')} +0000 UTC`;
}
