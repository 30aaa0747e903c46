/**
 * `berth build`: the context (a directory, tarred without what its .dockerignore leaves
 * out, or a tar or a lone Dockerfile on stdin with `-`) sent to the daemon's classic
 * builder, and its progress printed as docker's legacy builder prints it.
 */
import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, readFile, readdir, readlink, stat } from 'node:fs/promises';
import { join, relative, resolve, sep } from 'node:path';
import type { Readable } from 'node:stream';
import { TarWriter } from '../../archive/tar-writer.js';
import { dockerignorePatterns, isExcluded, type IgnorePattern } from '../../builder/dockerignore.js';
import { readAll } from '../../client/engine-client.js';
import { parseArgs } from '../args.js';
import { ExitError, type Command } from '../command.js';

export const buildCommand: Command = {
  spec: {
    usage: 'build [OPTIONS] PATH | -',
    description: 'Build an image from a Dockerfile',
    aliases: ['berth image build', 'berth build'],
    args: { min: 1, max: 1 },
    flags: [
      { name: 'build-arg', type: 'list', description: 'Set build-time variables' },
      { name: 'file', short: 'f', type: 'string', description: "Name of the Dockerfile (Default is 'PATH/Dockerfile')" },
      { name: 'force-rm', type: 'bool', description: 'Always remove intermediate containers' },
      { name: 'label', type: 'list', description: 'Set metadata for an image' },
      { name: 'no-cache', type: 'bool', description: 'Do not use cache when building the image' },
      { name: 'pull', type: 'bool', description: 'Always attempt to pull a newer version of the image' },
      { name: 'quiet', short: 'q', type: 'bool', description: 'Suppress the build output and print image ID on success' },
      { name: 'rm', type: 'bool', default: true, description: 'Remove intermediate containers after a successful build' },
      { name: 'tag', short: 't', type: 'list', description: 'Name and optionally a tag in the "name:tag" format' },
      { name: 'target', type: 'string', description: 'Set the target build stage to build.' },
    ],
  },
  async run(ctx, argv, path) {
    const a = parseArgs(this.spec, argv, path);
    const where = a.args[0]!;
    const file = a.string('file');
    const { body, dockerfile } = where === '-' ? await stdinContext(file) : await directoryContext(where, file);
    const buildArgs: Record<string, string | null> = {};
    for (const arg of a.list('build-arg')) {
      const eq = arg.indexOf('=');
      // As docker: `--build-arg NAME` takes the value from the client's environment, if set.
      if (eq >= 0) buildArgs[arg.slice(0, eq)] = arg.slice(eq + 1);
      else buildArgs[arg] = process.env[arg] ?? null;
    }
    const labels: Record<string, string> = {};
    for (const label of a.list('label')) {
      const eq = label.indexOf('=');
      labels[eq < 0 ? label : label.slice(0, eq)] = eq < 0 ? '' : label.slice(eq + 1);
    }
    const messages = ctx.client.jsonLines('POST', '/build', {
      query: {
        t: a.list('tag'),
        dockerfile,
        buildargs: JSON.stringify(buildArgs),
        labels: JSON.stringify(labels),
        nocache: a.bool('no-cache') || undefined,
        q: a.bool('quiet') || undefined,
        rm: a.bool('rm') ? '1' : '0',
        forcerm: a.bool('force-rm') || undefined,
        target: a.string('target') || undefined,
        pull: a.bool('pull') || undefined,
      },
      body,
      headers: { 'Content-Type': 'application/x-tar' },
    });
    for await (const raw of messages) {
      const m = raw as { stream?: string; status?: string; id?: string; progress?: string; error?: string; errorDetail?: { message?: string; code?: number } };
      if (m.error !== undefined || m.errorDetail !== undefined) {
        // As docker: the step's exit code (a failing RUN's) is the CLI's, else 1.
        throw new ExitError(m.errorDetail?.message ?? m.error ?? 'unknown error', m.errorDetail?.code || 1);
      }
      if (m.stream !== undefined) ctx.out(m.stream);
      else if (m.status !== undefined && !m.progress) ctx.out(`${m.id ? `${m.id}: ` : ''}${m.status}\n`);
    }
    return 0;
  },
};

interface Context {
  body: Readable | Buffer;
  /** The Dockerfile's name in the context, for the daemon. */
  dockerfile: string | undefined;
}

/** `-`: a tar (compressed or not) is the context; anything else is a Dockerfile with no context. */
async function stdinContext(file: string | undefined): Promise<Context> {
  if (file === '-') throw new ExitError('invalid argument: can\'t use stdin for both build context and dockerfile', 1);
  if (process.stdin.isTTY) throw new ExitError('requested build context from stdin, but stdin is a terminal', 1);
  const input = await readAll(process.stdin);
  const compressed = input[0] === 0x1f && input[1] === 0x8b;
  const tar = input.length >= 262 && input.subarray(257, 262).toString('latin1') === 'ustar';
  if (compressed || tar) return { body: input, dockerfile: file };
  const writer = new TarWriter();
  void writer.add({ name: 'Dockerfile', type: 'file', mode: 0o644, mtime: new Date() }, input).then(() => writer.finish());
  return { body: writer.stream, dockerfile: 'Dockerfile' };
}

/** A directory: its files, less those .dockerignore leaves out; a Dockerfile outside it is added. */
async function directoryContext(dir: string, file: string | undefined): Promise<Context> {
  const root = resolve(dir);
  const st = await stat(root).catch(() => undefined);
  if (!st?.isDirectory()) throw new ExitError(`unable to prepare context: path "${dir}" not found`, 1);
  const dockerfilePath = file === '-' ? undefined : resolve(file ? file : join(root, 'Dockerfile'));
  let dockerfile: string;
  let extra: { name: string; content: Buffer } | undefined;
  if (file === '-') {
    if (process.stdin.isTTY) throw new ExitError('requested the Dockerfile from stdin, but stdin is a terminal', 1);
    extra = { name: `.dockerfile.${randomBytes(10).toString('hex')}`, content: await readAll(process.stdin) };
    dockerfile = extra.name;
  } else {
    const rel = relative(root, dockerfilePath!);
    if (rel.startsWith(`..${sep}`) || rel === '..' || rel.startsWith(sep)) {
      // Outside the context: sent along under a name of its own, as docker does.
      const content = await readFile(dockerfilePath!).catch(() => {
        throw new ExitError(`unable to prepare context: unable to evaluate symlinks in Dockerfile path: lstat ${dockerfilePath}: no such file or directory`, 1);
      });
      extra = { name: `.dockerfile.${randomBytes(10).toString('hex')}`, content };
      dockerfile = extra.name;
    } else {
      dockerfile = rel.split(sep).join('/');
      const exists = await stat(dockerfilePath!).catch(() => undefined);
      if (!exists) throw new ExitError(`unable to prepare context: unable to evaluate symlinks in Dockerfile path: lstat ${dockerfilePath}: no such file or directory`, 1);
    }
  }
  const ignore = dockerignorePatterns(await readFile(join(root, '.dockerignore'), 'utf8').catch(() => undefined));
  // The Dockerfile and .dockerignore go to the daemon even when excluded: it reads them.
  const keep = new Set([dockerfile, '.dockerignore']);
  return { body: tarContext(root, ignore, keep, extra), dockerfile };
}

function tarContext(root: string, ignore: readonly IgnorePattern[], keep: ReadonlySet<string>, extra: { name: string; content: Buffer } | undefined): Readable {
  const writer = new TarWriter();
  const walk = async (dir: string, prefix: string): Promise<void> => {
    for (const name of (await readdir(dir)).sort()) {
      const rel = prefix ? `${prefix}/${name}` : name;
      if (isExcluded(rel, ignore) && !keep.has(rel)) {
        // A folder is walked still when a `!` pattern may take back something below it.
        if (!ignore.some((p) => p.negated)) continue;
      }
      const path = join(dir, name);
      const st = await lstat(path);
      const common = { mode: st.mode & 0o7777, uid: 0, gid: 0, mtime: st.mtime };
      const excluded = isExcluded(rel, ignore) && !keep.has(rel);
      if (st.isDirectory()) {
        if (!excluded) await writer.add({ name: `${rel}/`, type: 'directory', ...common });
        await walk(path, rel);
      } else if (excluded) {
        continue;
      } else if (st.isSymbolicLink()) {
        await writer.add({ name: rel, type: 'symlink', linkname: await readlink(path), ...common });
      } else if (st.isFile()) {
        await writer.add({ name: rel, type: 'file', size: st.size, ...common }, createReadStream(path));
      }
    }
  };
  walk(root, '')
    .then(async () => {
      if (extra) await writer.add({ name: extra.name, type: 'file', mode: 0o600, uid: 0, gid: 0, mtime: new Date() }, extra.content);
      await writer.finish();
    })
    .catch((err: unknown) => writer.stream.destroy(err instanceof Error ? err : new Error(String(err))));
  return writer.stream;
}
