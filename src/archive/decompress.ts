/**
 * Turns a possibly compressed tar stream into a plain one, by its first bytes (as Docker
 * does, whatever the media type claims): gzip in process, zstd, xz and bzip2 through their
 * command-line tools, plain tar passed through. Anything else is refused up front.
 */
import { spawn } from 'node:child_process';
import { access, constants } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { InvalidArgument, NotImplemented } from '../errors/errors.js';
import { ByteSource } from './byte-source.js';
import { BLOCK_SIZE, hasValidChecksum, isZeroBlock } from './tar-format.js';

export type Compression = 'gzip' | 'zstd' | 'xz' | 'bzip2' | 'none';

const CHUNK_SIZE = 64 * 1024;

/** Which compression the first bytes of a stream announce ('none' when no magic matches). */
export function detectCompression(head: Buffer): Compression {
  if (startsWith(head, [0x1f, 0x8b, 0x08])) return 'gzip';
  if (startsWith(head, [0x28, 0xb5, 0x2f, 0xfd])) return 'zstd';
  // A zstd skippable frame (magic 0x184D2A5?, little endian) may precede the data.
  if (head.length >= 4 && (head[0]! & 0xf0) === 0x50 && head[1] === 0x2a && head[2] === 0x4d && head[3] === 0x18) {
    return 'zstd';
  }
  if (startsWith(head, [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00])) return 'xz';
  if (startsWith(head, [0x42, 0x5a, 0x68])) return 'bzip2';
  return 'none';
}

function startsWith(head: Buffer, magic: number[]): boolean {
  return head.length >= magic.length && magic.every((b, i) => head[i] === b);
}

/**
 * Sniffs the first bytes: gzip -> gunzip, zstd/xz/bzip2 -> their CLI (`zstd -dc` ...), or
 * NotImplemented when it is not installed; plain tar passes through; an empty input is an
 * empty archive; anything else -> InvalidArgument ("archive/tar: invalid tar header").
 * Errors while decompressing fail the returned stream with InvalidArgument.
 */
export async function decompressStream(input: Readable): Promise<Readable> {
  const src = new ByteSource(input);
  let head: Buffer;
  try {
    head = await src.peek(BLOCK_SIZE);
  } catch (err) {
    src.close();
    throw err;
  }
  const compression = detectCompression(head);
  if (compression === 'none' && head.length > 0 && !looksLikeTar(head)) {
    src.close();
    const why = head.length < BLOCK_SIZE ? `only ${head.length} bytes, not a tar header` : 'not a known compression and not a tar header';
    throw new InvalidArgument(`archive/tar: invalid tar header: the input is ${why}`);
  }
  const whole = streamOf(src);
  switch (compression) {
    case 'none':
      return whole;
    case 'gzip':
      return gunzip(whole);
    case 'zstd':
      return await filterThrough(whole, 'zstd', ['-dc'], 'zstd');
    case 'xz':
      return await filterThrough(whole, 'xz', ['-dc'], 'xz-utils');
    case 'bzip2':
      return await filterThrough(whole, 'bzip2', ['-dc'], 'bzip2');
  }
}

function looksLikeTar(head: Buffer): boolean {
  if (head.length < BLOCK_SIZE) return false;
  const block = head.subarray(0, BLOCK_SIZE);
  return isZeroBlock(block) || hasValidChecksum(block);
}

/** The source's bytes, the peeked ones included, as a byte stream of the same chunks. */
function streamOf(src: ByteSource): Readable {
  return new Readable({
    highWaterMark: CHUNK_SIZE,
    read() {
      const ready = src.takeBuffered(Number.MAX_SAFE_INTEGER);
      if (ready !== null) {
        this.push(ready);
        return;
      }
      src.chunk(Number.MAX_SAFE_INTEGER).then(
        (chunk) => this.push(chunk),
        (err: unknown) => this.destroy(err instanceof Error ? err : new Error(String(err))),
      );
    },
    destroy(err, callback) {
      src.close();
      callback(err);
    },
  });
}

function gunzip(compressed: Readable): Readable {
  const out = new PassThrough({ highWaterMark: CHUNK_SIZE });
  const inflate = createGunzip({ chunkSize: CHUNK_SIZE });
  // Wired by hand rather than with pipeline(): `out` must fail with our error, not zlib's,
  // and the error listeners must outlive the end of the compressed input.
  const fail = (err: Error): void => {
    if (!out.destroyed) out.destroy(decompressError('gzip', err));
  };
  compressed.on('error', fail);
  inflate.on('error', fail);
  compressed.pipe(inflate).pipe(out);
  out.once('close', () => {
    if (!inflate.destroyed) inflate.destroy();
    if (!compressed.destroyed) compressed.destroy();
  });
  return out;
}

function decompressError(format: string, err: Error): Error {
  if (err instanceof InvalidArgument || err instanceof NotImplemented) return err;
  const code = (err as { code?: unknown }).code;
  if (code === 'Z_BUF_ERROR' || code === 'ERR_STREAM_PREMATURE_CLOSE') {
    return new InvalidArgument(`${format}: unexpected EOF: the compressed stream is truncated`, { cause: err });
  }
  if (typeof code === 'string' && code.startsWith('Z_')) {
    return new InvalidArgument(`${format}: invalid compressed data: ${err.message}`, { cause: err });
  }
  return err;
}

const found = new Map<string, string | null>();

/** The full path of `command` on PATH, or null. */
async function which(command: string): Promise<string | null> {
  const searchPath = process.env['PATH'] ?? '/usr/local/bin:/usr/bin:/bin';
  const key = `${command}\0${searchPath}`;
  const known = found.get(key);
  if (known !== undefined) return known;
  let hit: string | null = null;
  for (const dir of searchPath.split(delimiter)) {
    if (dir === '') continue;
    const candidate = join(dir, command);
    try {
      await access(candidate, constants.X_OK);
      hit = candidate;
      break;
    } catch {
      // not here
    }
  }
  found.set(key, hit);
  return hit;
}

/**
 * Runs `command args` with `input` on its stdin; its stdout is the result. The result ends
 * only once the process exited 0, so a failure cannot pass for a short but complete stream.
 */
async function filterThrough(input: Readable, command: string, args: string[], debianPackage: string): Promise<Readable> {
  const path = await which(command);
  if (path === null) {
    input.destroy();
    throw new NotImplemented(
      `decompressing a ${command} stream: the ${command} command is not installed (install the ${debianPackage} package)`,
    );
  }
  const child = spawn(path, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  const out = new PassThrough({ highWaterMark: CHUNK_SIZE });
  let stderr = '';
  let finished = false;
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (text: string) => {
    if (stderr.length < 4096) stderr += text;
  });
  // The child may exit (bad data) before it read all its input: that is reported by its
  // exit status, not by the broken pipe.
  child.stdin.on('error', () => {});
  input.on('error', (err) => {
    if (!out.destroyed) out.destroy(decompressError(command, err));
  });
  input.pipe(child.stdin);
  child.stdout.pipe(out, { end: false });
  child.on('error', (err) => {
    finished = true;
    if (!out.destroyed) out.destroy(new InvalidArgument(`${command}: cannot run ${path}: ${err.message}`, { cause: err }));
  });
  child.on('close', (code, signal) => {
    finished = true;
    if (out.destroyed) return;
    if (code === 0) {
      out.end();
      return;
    }
    const why = stderr.trim().split('\n').pop() ?? '';
    out.destroy(
      new InvalidArgument(
        `${command}: decompression failed (${signal !== null ? `killed by ${signal}` : `exit status ${code}`})${why ? `: ${why}` : ''}`,
      ),
    );
  });
  out.on('close', () => {
    // The consumer gave up: stop the process we started and the input feeding it.
    if (!finished) child.kill('SIGTERM');
    if (!input.destroyed && !input.readableEnded) input.destroy();
  });
  return out;
}
