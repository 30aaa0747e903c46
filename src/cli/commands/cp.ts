/**
 * `berth cp`: files between a container and the local filesystem, as docker/cli's cp does
 * it over the archive API: HEAD for the stat of the container side, GET for a tar of a
 * container path, PUT to extract a tar into a container directory; `-` for a tar on stdin
 * or stdout. "Successfully copied 5.24MB to ..." (the bytes of the archive) goes to stderr
 * unless -q, or unless stdout is not a terminal. docker 28 means to draw progress on a
 * terminal stderr too, but its check never sees one, so it never does; neither does berth.
 */
import { statSync } from 'node:fs';
import { resolve } from 'node:path';
import { PassThrough, Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

import { ApiError, readAll, type EngineClient } from '../../client/engine-client.js';
import {
  CopyError,
  copyInfoDestinationPath,
  copyInfoSourcePath,
  goPathError,
  prepareArchiveCopy,
  rebaseArchiveEntries,
  tarResource,
  type CopyInfo,
} from '../../containers/archive-copy.js';
import { extractInRoot } from '../../containers/archive-extract.js';
import {
  GO_MODE,
  PATH_STAT_HEADER,
  cleanPath,
  decodePathStat,
  dirName,
  hasModeBit,
  joinPath,
  preserveTrailingDotOrSeparator,
  rebaseName,
  splitPathDirEntry,
  type PathStat,
} from '../../containers/archive-path.js';
import { errnoCode, isBerthError } from '../../errors/errors.js';
import { parseArgs } from '../args.js';
import type { CliContext, Command } from '../command.js';
import { ExitError } from '../command.js';
import { humanSize } from '../../util/units.js';
import { containerPath } from './run.js';

interface CopyConfig {
  followLink: boolean;
  copyUIDGID: boolean;
  quiet: boolean;
  sourcePath: string;
  destPath: string;
  container: string;
}

export const cpCommand: Command = {
  spec: {
    usage: 'cp [OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-\n\tberth cp [OPTIONS] SRC_PATH|- CONTAINER:DEST_PATH',
    description:
      "Copy files/folders between a container and the local filesystem\n\nUse '-' as the source to read a tar archive from stdin\n" +
      "and extract it to a directory destination in a container.\nUse '-' as the destination to stream a tar archive of a\ncontainer source to stdout.",
    aliases: ['berth container cp', 'berth cp'],
    args: { min: 2, max: 2 },
    flags: [
      { name: 'archive', short: 'a', type: 'bool', description: 'Archive mode (copy all uid/gid information)' },
      { name: 'follow-link', short: 'L', type: 'bool', description: 'Always follow symbol link in SRC_PATH' },
      {
        name: 'quiet',
        short: 'q',
        type: 'bool',
        description: 'Suppress progress output during copy. Progress output is automatically suppressed if no terminal is attached',
      },
    ],
  },
  async run(ctx, argv, path) {
    const a = parseArgs(this.spec, argv, path);
    const [source, destination] = a.args as [string, string];
    if (source === '') throw new ExitError('source can not be empty', 1);
    if (destination === '') throw new ExitError('destination can not be empty', 1);
    // Unless told, quiet when nobody watches stdout.
    const quiet = a.has('quiet') ? a.bool('quiet') : !process.stdout.isTTY;
    const src = splitCpArg(source);
    const dst = splitCpArg(destination);
    const config: CopyConfig = {
      followLink: a.bool('follow-link'),
      copyUIDGID: a.bool('archive'),
      quiet,
      sourcePath: src.path,
      destPath: dst.path,
      container: src.container || dst.container,
    };
    try {
      if (src.container && dst.container) throw new CopyError('copying between containers is not supported');
      if (src.container) await copyFromContainer(ctx, config);
      else if (dst.container) await copyToContainer(ctx, config);
      else throw new CopyError('must specify at least one container source');
    } catch (err) {
      if (err instanceof ApiError) throw err;
      throw new ExitError(localErrorText(err), 1);
    }
    return 0;
  },
};

/**
 * `CONTAINER:PATH` or a local path. A local path with a colon must say so: absolute, or
 * starting with "." (`./file:name`), as with scp.
 */
export function splitCpArg(arg: string): { container: string; path: string } {
  if (arg.startsWith('/')) return { container: '', path: arg };
  const colon = arg.indexOf(':');
  if (colon < 0 || arg.startsWith('.')) return { container: '', path: arg };
  return { container: arg.slice(0, colon), path: arg.slice(colon + 1) };
}

/** An absolute local path that keeps the user's trailing "/" or "/.". */
function resolveLocalPath(path: string): string {
  return preserveTrailingDotOrSeparator(resolve(path), path);
}

async function statPath(client: EngineClient, container: string, path: string): Promise<PathStat> {
  const res = await client.request('HEAD', containerPath(container, '/archive'), { query: { path } });
  res.body.resume();
  if (res.status >= 400) throw new ApiError(res.status, `${res.status} ${res.body.statusMessage ?? ''}`.trim());
  return decodePathStat(res.headers[PATH_STAT_HEADER.toLowerCase()]);
}

async function copyFromContainer(ctx: CliContext, config: CopyConfig): Promise<void> {
  let dstPath = config.destPath;
  let srcPath = config.sourcePath;
  if (dstPath !== '-') dstPath = resolveLocalPath(dstPath);
  validateOutputPath(dstPath);

  // With -L, a symlink is replaced by what it leads to, archived under the link's name.
  let rebase = '';
  if (config.followLink) {
    const stat = await statPath(ctx.client, config.container, srcPath).catch(() => undefined);
    if (stat && hasModeBit(stat.mode, GO_MODE.symlink)) {
      const linkTarget = stat.linkTarget.startsWith('/') ? stat.linkTarget : joinPath(splitPathDirEntry(srcPath)[0], stat.linkTarget);
      [srcPath, rebase] = rebaseName(srcPath, linkTarget);
    }
  }

  const res = await ctx.client.call('GET', containerPath(config.container, '/archive'), { query: { path: srcPath } });
  if (dstPath === '-') {
    await pipeline(res.body, process.stdout);
    return;
  }
  const stat = decodePathStat(res.headers[PATH_STAT_HEADER.toLowerCase()]);
  const srcInfo: CopyInfo = { path: srcPath, exists: true, isDir: hasModeBit(stat.mode, GO_MODE.dir), rebaseName: rebase };

  const counted = counting(res.body);
  let content: Readable = counted.stream;
  if (rebase !== '') content = rebaseArchiveEntries(content, splitPathDirEntry(srcPath)[1], rebase);

  let failure: unknown;
  try {
    await copyTo(content, srcInfo, dstPath);
  } catch (err) {
    failure = err;
    res.body.destroy();
  }
  // Printed even after a failure, as docker prints it.
  if (!config.quiet) process.stderr.write(`Successfully copied ${humanSize(counted.total())} to ${dstPath}\n`);
  if (failure !== undefined) throw failure;
}

/** Extracts `content` (an archive of `src`) so that it becomes `dstPath` (moby's CopyTo). */
async function copyTo(content: Readable, src: CopyInfo, dstPath: string): Promise<void> {
  const dst = copyInfoDestinationPath(dstPath);
  const prepared = prepareArchiveCopy(content, src, dst);
  try {
    await extractInRoot(prepared.dstDir, '/', prepared.content, { noOverwriteDirNonDir: true, owner: 'none', shownRoot: prepared.dstDir });
  } finally {
    prepared.content.destroy();
  }
}

async function copyToContainer(ctx: CliContext, config: CopyConfig): Promise<void> {
  let srcPath = config.sourcePath;
  const dstPath = config.destPath;
  if (srcPath !== '-') srcPath = resolveLocalPath(srcPath);

  // What the destination is decides how the archive is named; a missing one is fine.
  const dstInfo: CopyInfo = { path: dstPath, exists: false, isDir: false, rebaseName: '' };
  let dstStat = await statPath(ctx.client, config.container, dstPath).catch(ignoreApiError);
  if (dstStat && hasModeBit(dstStat.mode, GO_MODE.symlink)) {
    const linkTarget = dstStat.linkTarget.startsWith('/') ? dstStat.linkTarget : joinPath(splitPathDirEntry(dstPath)[0], dstStat.linkTarget);
    dstInfo.path = linkTarget;
    dstStat = await statPath(ctx.client, config.container, linkTarget).catch(ignoreApiError);
  }
  if (dstStat) {
    const bad = outputFileModeError(dstStat.mode);
    if (bad) throw new CopyError(`destination "${config.container}:${dstPath}" must be a directory or a regular file: ${bad}`);
    dstInfo.exists = true;
    dstInfo.isDir = hasModeBit(dstStat.mode, GO_MODE.dir);
  }

  let content: Readable;
  let resolvedDstPath: string;
  let total = (): number => 0;
  if (srcPath === '-') {
    if (!dstInfo.isDir) throw new CopyError(`destination "${config.container}:${dstPath}" must be a directory`);
    content = process.stdin;
    resolvedDstPath = dstInfo.path;
  } else {
    const srcInfo = copyInfoSourcePath(srcPath, config.followLink);
    let archive: Readable;
    try {
      archive = tarResource(srcInfo);
    } catch (err) {
      throw goPathError('lstat', srcInfo.path, err);
    }
    const prepared = prepareArchiveCopy(archive, srcInfo, dstInfo);
    resolvedDstPath = prepared.dstDir;
    const counted = counting(prepared.content);
    content = counted.stream;
    total = counted.total;
  }

  const put = () =>
    ctx.client.call('PUT', containerPath(config.container, '/archive'), {
      query: { path: resolvedDstPath, noOverwriteDirNonDir: 'true', ...(config.copyUIDGID ? { copyUIDGID: 'true' } : {}) },
      body: content,
      headers: { 'Content-Type': 'application/x-tar' },
    }).then((res) => readAll(res.body));
  if (config.quiet) {
    await put();
    return;
  }
  let failure: unknown;
  try {
    await put();
  } catch (err) {
    failure = err;
  }
  process.stderr.write(`Successfully copied ${humanSize(total())} to ${config.container}:${dstInfo.path}\n`);
  if (failure !== undefined) throw failure;
}

function ignoreApiError(err: unknown): undefined {
  if (err instanceof ApiError) return undefined;
  throw err;
}

/** docker's ValidateOutputPath: the parent must exist; an existing path must be a directory or a regular file. */
function validateOutputPath(path: string): void {
  const dir = dirName(cleanPath(path));
  if (dir !== '' && dir !== '.') {
    try {
      statSync(dir);
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') throw new CopyError(`invalid output path: directory "${dir}" does not exist`);
    }
  }
  let st;
  try {
    st = statSync(path);
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return;
    throw goPathError('stat', path, err);
  }
  if (st.isDirectory() || st.isFile()) return;
  const bad = st.isBlockDevice() || st.isCharacterDevice() ? 'got a device' : 'got an irregular file';
  throw new CopyError(`invalid output path: "${path}" must be a directory or a regular file: ${bad}`);
}

function outputFileModeError(mode: number): string | undefined {
  if (hasModeBit(mode, GO_MODE.device)) return 'got a device';
  if (hasModeBit(mode, GO_MODE.irregular)) return 'got an irregular file';
  return undefined;
}

/** A pass-through that counts the bytes that went through it. */
function counting(input: Readable): { stream: Readable; total: () => number } {
  let total = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      total += chunk.length;
      done(null, chunk);
    },
  });
  input.on('error', (err) => counter.destroy(err));
  input.pipe(counter);
  const out = new PassThrough();
  counter.on('error', (err) => out.destroy(err));
  counter.pipe(out);
  return { stream: out, total: () => total };
}

function localErrorText(err: unknown): string {
  if (err instanceof CopyError || isBerthError(err)) return err.message;
  const code = errnoCode(err);
  const path = (err as { path?: unknown }).path;
  if (code && typeof path === 'string') return goPathError(String((err as { syscall?: unknown }).syscall ?? 'open'), path, err).message;
  return err instanceof Error ? err.message : String(err);
}
