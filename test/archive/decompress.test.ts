import * as assert from 'node:assert/strict';
import { createReadStream } from 'node:fs';
import { readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { test } from 'node:test';
import { InvalidArgument, NotImplemented } from '../../src/errors/errors.js';
import { decompressStream, detectCompression } from '../../src/archive/decompress.js';
import { readTar } from '../../src/archive/tar-reader.js';
import { chunked, exec, readAll, tempDir } from './helpers.js';

const IMAGES = '/work/shared/images';
const ALPINE = join(IMAGES, 'alpine-minirootfs-3.20.3-x86_64.tar.gz');
const BUSYBOX = join(IMAGES, 'busybox-1.38.0-musl');

/** The busybox image's layer: the one blob that starts with the gzip magic. */
async function busyboxLayer(): Promise<string> {
  const dir = join(BUSYBOX, 'blobs', 'sha256');
  for (const name of await readdir(dir)) {
    const head = (await readFile(join(dir, name))).subarray(0, 2);
    if (head[0] === 0x1f && head[1] === 0x8b) return join(dir, name);
  }
  throw new Error('no gzip layer in the busybox image');
}

/** Reads a whole (compressed) archive with decompressStream and readTar, as a pull does. */
async function scan(path: string): Promise<{ names: string[]; bytes: number }> {
  const names: string[] = [];
  let bytes = 0;
  for await (const { header, body } of readTar(await decompressStream(createReadStream(path)))) {
    names.push(header.name);
    for await (const chunk of body) bytes += (chunk as Buffer).length;
    assert.equal(header.type === 'file' || bytes >= 0, true);
  }
  return { names, bytes };
}

async function gnuList(path: string, flag = '-tzf'): Promise<string[]> {
  const { stdout } = await exec('tar', [flag, path], { maxBuffer: 64 * 1024 * 1024 });
  return stdout.split('\n').filter((l) => l !== '');
}

/** Sum of the sizes GNU tar lists for regular files (`-tvzf`). */
async function gnuFileBytes(path: string): Promise<number> {
  const { stdout } = await exec('tar', ['-tvzf', path], { maxBuffer: 64 * 1024 * 1024 });
  let total = 0;
  for (const line of stdout.split('\n')) {
    if (line.startsWith('-')) total += Number(line.split(/\s+/)[2]);
  }
  return total;
}

test('the busybox image layer reads fully, entry for entry as GNU tar lists it', async () => {
  const layer = await busyboxLayer();
  const { names, bytes } = await scan(layer);
  const listed = await gnuList(layer);
  assert.equal(names.length, listed.length);
  assert.deepEqual(names, listed);
  assert.equal(bytes, await gnuFileBytes(layer));
});

test('the alpine minirootfs reads fully, entry for entry as GNU tar lists it', async () => {
  const { names, bytes } = await scan(ALPINE);
  const listed = await gnuList(ALPINE);
  assert.equal(names.length, listed.length);
  assert.deepEqual(names, listed);
  assert.equal(bytes, await gnuFileBytes(ALPINE));
});

for (const [tool, magic] of [
  ['zstd', 'zstd'],
  ['xz', 'xz'],
  ['bzip2', 'bzip2'],
] as const) {
  test(`${tool} streams are decompressed through the ${tool} command`, async (t) => {
    const dir = await tempDir(t, `tar-${tool}`);
    const plain = join(dir, 'busybox.tar');
    await exec('sh', ['-c', `gzip -dc "$1" > "$2"`, 'sh', await busyboxLayer(), plain]);
    const packed = join(dir, `busybox.tar.${tool}`);
    await exec('sh', ['-c', `${tool} -c "$1" > "$2"`, 'sh', plain, packed]);
    assert.equal(detectCompression(await readFile(packed)), magic);
    const { names } = await scan(packed);
    assert.deepEqual(names, await gnuList(plain, '-tf'));
  });
}

test('a plain tar passes through unchanged, however it is chunked', async () => {
  const { stdout } = await exec('sh', ['-c', `gzip -dc "$1"`, 'sh', ALPINE], { encoding: 'buffer', maxBuffer: 64 * 1024 * 1024 });
  const out = await decompressStream(chunked(stdout, 100));
  const parts: Buffer[] = [];
  for await (const chunk of out) parts.push(chunk as Buffer);
  assert.ok(Buffer.concat(parts).equals(stdout));
});

test('an empty input is an empty archive', async () => {
  const out = await decompressStream(Readable.from([]));
  assert.deepEqual(await readAll(out), []);
});

test('input that is neither compressed nor tar is refused as docker does', async () => {
  await assert.rejects(decompressStream(Readable.from([Buffer.from('{"not": "a tar"}')])), (err: unknown) => {
    assert.ok(err instanceof InvalidArgument);
    assert.match((err as Error).message, /^archive\/tar: invalid tar header: the input is only 16 bytes/);
    return true;
  });
  const input = Readable.from([Buffer.alloc(4096, 0x41)]);
  await assert.rejects(decompressStream(input), /^InvalidArgument: archive\/tar: invalid tar header: the input is not a known compression/);
});

test('a truncated gzip stream fails with InvalidArgument', async () => {
  const whole = await readFile(ALPINE);
  const cut = whole.subarray(0, Math.floor(whole.length / 2));
  await assert.rejects(readAll(await decompressStream(chunked(cut, 65536))), (err: unknown) => {
    assert.ok(err instanceof InvalidArgument, String(err));
    assert.match((err as Error).message, /gzip: unexpected EOF|unexpected EOF/);
    return true;
  });
});

test('a corrupted gzip stream fails with InvalidArgument', async () => {
  const whole = Buffer.from(await readFile(ALPINE));
  for (let i = 0; i < 64; i++) whole[100_000 + i * 997] ^= 0x55;
  await assert.rejects(readAll(await decompressStream(Readable.from([whole]))), (err: unknown) => {
    assert.ok(err instanceof InvalidArgument, String(err));
    return true;
  });
});

test('a truncated zstd stream fails with the exit status of zstd', async (t) => {
  const dir = await tempDir(t, 'tar-zstd-cut');
  const packed = join(dir, 'a.tar.zst');
  await exec('sh', ['-c', `gzip -dc "$1" | zstd -c > "$2"`, 'sh', ALPINE, packed]);
  const whole = await readFile(packed);
  await writeFile(packed, whole.subarray(0, Math.floor(whole.length / 2)));
  await assert.rejects(readAll(await decompressStream(createReadStream(packed))), (err: unknown) => {
    assert.ok(err instanceof InvalidArgument, String(err));
    assert.match((err as Error).message, /zstd|unexpected EOF/);
    return true;
  });
});

test('a missing decompressor is NotImplemented with the package to install', async (t) => {
  const empty = await tempDir(t, 'tar-nopath');
  const saved = process.env['PATH'];
  process.env['PATH'] = empty;
  try {
    const zstdMagic = Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0, 0, 0, 0]);
    const input = Readable.from([zstdMagic]);
    await assert.rejects(decompressStream(input), (err: unknown) => {
      assert.ok(err instanceof NotImplemented);
      assert.match((err as Error).message, /the zstd command is not installed \(install the zstd package\)/);
      return true;
    });
    assert.equal(input.destroyed, true);
  } finally {
    process.env['PATH'] = saved;
  }
});

test('giving up on a decompressed stream stops the decompressor and the input', async (t) => {
  const dir = await tempDir(t, 'tar-zstd-stop');
  const packed = join(dir, 'a.tar.zst');
  await exec('sh', ['-c', `gzip -dc "$1" | zstd -c > "$2"`, 'sh', ALPINE, packed]);
  const input = createReadStream(packed, { highWaterMark: 1024 });
  const out = await decompressStream(input);
  for await (const entry of readTar(out)) {
    assert.ok(entry.header.name.length > 0);
    break;
  }
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.equal(out.destroyed, true);
  assert.equal(input.destroyed, true);
});

test('an input that fails while being sniffed passes its error on', async () => {
  const input = new PassThrough();
  const failure = new Error('disk on fire');
  setImmediate(() => input.destroy(failure));
  await assert.rejects(decompressStream(input), /disk on fire/);
});

test('an input that failed or closed before it was handed over is refused at once, not waited on', async () => {
  const failed = new PassThrough();
  failed.on('error', () => undefined);
  failed.destroy(new Error('the download broke'));
  await assert.rejects(decompressStream(failed), /the download broke/);
  const closed = new PassThrough();
  closed.destroy();
  await assert.rejects(decompressStream(closed), /was closed before its end/);
});
