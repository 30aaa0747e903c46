import * as assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { readTar } from '../../src/archive/tar-reader.js';
import { TarWriter } from '../../src/archive/tar-writer.js';
import { tempDir } from './helpers.js';

const SIZE = 300 * 1024 * 1024;
/** How much the resident set may grow while 300 MB stream through. */
const RSS_BUDGET = 64 * 1024 * 1024;

/** Samples the resident set size; `growth` is the peak above where it started. */
function rssMeter(): { sample(): void; growth(): number } {
  const start = process.memoryUsage.rss();
  let peak = start;
  return {
    sample() {
      const now = process.memoryUsage.rss();
      if (now > peak) peak = now;
    },
    growth: () => peak - start,
  };
}

/** `size` bytes of a repeating pattern, produced without holding more than one chunk. */
function patternStream(size: number): Readable {
  const chunk = Buffer.alloc(256 * 1024);
  for (let i = 0; i < chunk.length; i++) chunk[i] = (i * 31) & 0xff;
  let sent = 0;
  return new Readable({
    highWaterMark: chunk.length,
    read() {
      if (sent >= size) {
        this.push(null);
        return;
      }
      const n = Math.min(chunk.length, size - sent);
      sent += n;
      this.push(chunk.subarray(0, n));
    },
  });
}

async function patternDigest(size: number): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of patternStream(size)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

test('a 300 MB entry streams from TarWriter through readTar with bounded memory', async (t) => {
  global.gc?.();
  const meter = rssMeter();
  const writer = new TarWriter();
  const writing = (async () => {
    await writer.add({ name: 'before', type: 'file' }, Buffer.from('before'));
    await writer.add({ name: 'big.bin', type: 'file', size: SIZE }, patternStream(SIZE));
    await writer.add({ name: 'after', type: 'file' }, Buffer.from('after'));
    await writer.finish();
  })();
  const seen: Array<[string, number, string]> = [];
  let chunks = 0;
  for await (const { header, body } of readTar(writer.stream)) {
    const hash = createHash('sha256');
    let bytes = 0;
    for await (const chunk of body) {
      hash.update(chunk as Buffer);
      bytes += (chunk as Buffer).length;
      if (++chunks % 64 === 0) meter.sample();
    }
    seen.push([header.name, bytes, hash.digest('hex')]);
  }
  await writing;
  meter.sample();
  assert.deepEqual(
    seen.map(([name, bytes]) => [name, bytes]),
    [
      ['before', 6],
      ['big.bin', SIZE],
      ['after', 5],
    ],
  );
  assert.equal(seen[1]?.[2], await patternDigest(SIZE));
  t.diagnostic(`rss grew by ${Math.round(meter.growth() / 2 ** 20)} MiB`);
  assert.ok(meter.growth() < RSS_BUDGET, `rss grew by ${Math.round(meter.growth() / 2 ** 20)} MiB`);
});

test('a 300 MB file archived by GNU tar streams through readTar with bounded memory', async (t) => {
  const dir = await tempDir(t, 'tar-large');
  // A sparse file: GNU tar (without --sparse) still writes all 300 MB of it.
  const handle = await open(join(dir, 'big.img'), 'w');
  await handle.truncate(SIZE);
  await handle.write(Buffer.from('tail'), 0, 4, SIZE - 4);
  await handle.close();
  const tar = spawn('tar', ['--format=pax', '-C', dir, '-cf', '-', 'big.img'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise<number | null>((resolve) => tar.on('close', resolve));
  t.after(() => {
    if (tar.exitCode === null) tar.kill();
  });
  global.gc?.();
  const meter = rssMeter();
  const zeros = Buffer.alloc(1024 * 1024);
  let total = 0;
  let last: Buffer = Buffer.alloc(0);
  let nonZero = 0;
  let chunks = 0;
  for await (const { header, body } of readTar(tar.stdout)) {
    assert.equal(header.name, 'big.img');
    assert.equal(header.size, SIZE);
    for await (const chunk of body) {
      const buf = chunk as Buffer;
      if (total + buf.length < SIZE - 4 && !buf.equals(zeros.subarray(0, buf.length))) nonZero++;
      total += buf.length;
      last = buf.length >= 4 ? buf.subarray(-4) : Buffer.concat([last, buf]).subarray(-4);
      if (++chunks % 64 === 0) meter.sample();
    }
  }
  meter.sample();
  assert.equal(await exited, 0);
  assert.equal(total, SIZE);
  assert.equal(nonZero, 0);
  assert.equal(last.toString(), 'tail');
  t.diagnostic(`rss grew by ${Math.round(meter.growth() / 2 ** 20)} MiB`);
  assert.ok(meter.growth() < RSS_BUDGET, `rss grew by ${Math.round(meter.growth() / 2 ** 20)} MiB`);
});
