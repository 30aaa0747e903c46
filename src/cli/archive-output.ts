/**
 * Where `export` and `save` write their tar, as docker's CLI does: to stdout, never to a
 * terminal; or to a file, written beside it and renamed over it once whole (docker's
 * CopyToFile), after docker's ValidateOutputPath checks.
 */
import { createWriteStream } from 'node:fs';
import { rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join, normalize } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { ExitError } from './command.js';

/**
 * `output` is -o's value ('' for stdout); `failure` names the operation in docker's messages
 * ('failed to export container'); `fetch` asks the daemon for the archive once the checks pass.
 */
export async function writeArchive(output: string, failure: string, fetch: () => Promise<NodeJS.ReadableStream>): Promise<void> {
  if (output === '' && process.stdout.isTTY) {
    throw new ExitError('cowardly refusing to save to a terminal. Use the -o flag or redirect', 1);
  }
  if (output !== '') await checkOutputPath(output, failure);
  const body = await fetch();
  if (output === '') {
    try {
      await pipeline(body, process.stdout);
    } catch (err) {
      // A reader that stopped early (`| head`) is not an error of ours.
      if ((err as NodeJS.ErrnoException).code !== 'EPIPE') throw err;
    }
    return;
  }
  const temp = join(dirname(output), `.${basename(output)}.${process.pid}.tmp`);
  try {
    await pipeline(body, createWriteStream(temp, { mode: 0o644 }));
    await rename(temp, output);
  } catch (err) {
    await rm(temp, { force: true });
    throw err;
  }
}

/** The directory must exist; the path, if there, be a file or a directory. */
async function checkOutputPath(output: string, failure: string): Promise<void> {
  const dir = dirname(normalize(output));
  if (dir !== '.' && !(await stat(dir).catch(() => undefined))) {
    throw new ExitError(`${failure}: invalid output path: directory "${dir}" does not exist`, 1);
  }
  const st = await stat(output).catch(() => undefined);
  if (st && !st.isFile() && !st.isDirectory()) {
    throw new ExitError(`${failure}: invalid output path: "${output}" must be a directory or a regular file`, 1);
  }
}
