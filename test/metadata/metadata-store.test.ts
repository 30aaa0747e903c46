// The metadata store: transactions one at a time, a throwing one changes nothing, and a
// kill -9 at any moment of a writer leaves a readable store in one of its committed states.
import * as assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { MetadataStore } from '../../src/metadata/metadata-store.js';
import { emptyMetadata } from '../../src/metadata/schema.js';
import { Unavailable } from '../../src/errors/errors.js';

let scratch: string;

before(() => {
  scratch = mkdtempSync(join(tmpdir(), 'berth-meta-'));
});

after(() => {
  rmSync(scratch, { recursive: true, force: true });
});

let n = 0;
function freshPath(): string {
  const dir = join(scratch, `m-${n++}`);
  rmSync(dir, { recursive: true, force: true });
  return join(dir, 'metadata.json');
}

async function freshDir(): Promise<string> {
  const path = freshPath();
  await import('node:fs/promises').then((fs) => fs.mkdir(join(path, '..'), { recursive: true }));
  return path;
}

interface Counter {
  n: number;
  log: number[];
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('metadata store', () => {
  it('creates the store with its initial state and reopens what was committed', async () => {
    const path = await freshDir();
    const store = await MetadataStore.open(path, emptyMetadata);
    assert.deepEqual(store.read(), emptyMetadata());
    assert.deepEqual(JSON.parse(readFileSync(path, 'utf8')), emptyMetadata());
    await store.update((s) => {
      s.references['docker.io/library/busybox:latest'] = 'sha256:abc';
    });
    const reopened = await MetadataStore.open(path, emptyMetadata);
    assert.equal(reopened.read().references['docker.io/library/busybox:latest'], 'sha256:abc');
  });

  it('runs transactions one at a time, even when they await', async () => {
    const path = await freshDir();
    const store = await MetadataStore.open<Counter>(path, () => ({ n: 0, log: [] }));
    // Each transaction reads n, waits, then writes n + 1: interleaving would lose increments.
    const results = await Promise.all(
      Array.from({ length: 25 }, (_, i) =>
        store.update(async (s) => {
          const seen = s.n;
          await sleep(i % 3);
          s.n = seen + 1;
          s.log.push(i);
          return seen;
        }),
      ),
    );
    assert.equal(store.read().n, 25);
    assert.deepEqual(results, Array.from({ length: 25 }, (_, i) => i), 'transactions ran out of order');
    assert.deepEqual(store.read().log, Array.from({ length: 25 }, (_, i) => i));
    assert.equal((JSON.parse(readFileSync(path, 'utf8')) as Counter).n, 25);
  });

  it('a transaction that throws changes nothing, in memory or on disk, and the next one runs', async () => {
    const path = await freshDir();
    const store = await MetadataStore.open<Counter>(path, () => ({ n: 1, log: [1] }));
    const before = readFileSync(path, 'utf8');
    await assert.rejects(
      store.update((s) => {
        s.n = 99;
        s.log.push(99);
        throw new Error('changed my mind');
      }),
      /changed my mind/,
    );
    await assert.rejects(
      store.update(async (s) => {
        s.log.length = 0;
        await sleep(1);
        throw new Error('async too');
      }),
      /async too/,
    );
    assert.deepEqual(store.read(), { n: 1, log: [1] });
    assert.equal(readFileSync(path, 'utf8'), before);
    assert.equal(await store.update((s) => ++s.n), 2);
    assert.deepEqual(store.read(), { n: 2, log: [1] });
  });

  it('what read() returned before a transaction is not changed by it', async () => {
    const path = await freshDir();
    const store = await MetadataStore.open<Counter>(path, () => ({ n: 0, log: [] }));
    const snapshot = store.read();
    await store.update((s) => {
      s.n = 5;
      s.log.push(5);
    });
    assert.deepEqual(snapshot, { n: 0, log: [] });
    assert.deepEqual(store.read(), { n: 5, log: [5] });
  });

  it('refuses to open a file that is not JSON, rather than starting empty', async () => {
    const path = await freshDir();
    writeFileSync(path, '{"version":1,"images":{');
    await assert.rejects(MetadataStore.open(path, emptyMetadata), (err: unknown) => {
      assert.ok(err instanceof Unavailable);
      assert.match(err.message, /metadata store .*metadata\.json: cannot be read/);
      return true;
    });
  });

  it('survives kill -9 at random moments of a writer: always readable, always a committed state', async () => {
    const path = await freshDir();
    const moduleUrl = pathToFileURL(join(import.meta.dirname, '..', '..', 'src', 'metadata', 'metadata-store.js')).href;
    // The child commits transactions in a loop and prints each committed number. A state is
    // self-checking: n, a log 1..n and a payload whose length depends on n (so the file
    // changes size and the kill can land in the middle of a write).
    const script = `
      const { MetadataStore } = await import(${JSON.stringify(moduleUrl)});
      const store = await MetadataStore.open(${JSON.stringify(path)}, () => ({ n: 0, log: [], payload: '' }));
      process.stdout.write('ready ' + store.read().n + '\\n');
      for (;;) {
        const n = await store.update((s) => {
          s.n += 1;
          s.log.push(s.n);
          s.payload = String(s.n % 10).repeat(1000 + (s.n * 7919) % 60000);
          return s.n;
        });
        process.stdout.write(n + '\\n');
      }
    `;
    let lastAcked = 0;
    const rounds = 30;
    for (let round = 0; round < rounds; round++) {
      const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      child.stdout.on('data', (c: Buffer) => (out += c.toString()));
      child.stderr.on('data', (c: Buffer) => (err += c.toString()));
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      while (!out.includes('ready')) {
        if (child.exitCode !== null) assert.fail(`the writer exited: ${err}`);
        await sleep(2);
      }
      const startN = Number(/ready (\d+)/.exec(out)![1]);
      assert.equal(startN >= lastAcked, true, `round ${round}: reopened at ${startN}, below the acknowledged ${lastAcked}`);
      await sleep(Math.random() * 120);
      child.kill('SIGKILL');
      await exited;
      const acked = out.split('\n').filter((l) => /^\d+$/.test(l)).map(Number);
      if (acked.length) lastAcked = acked.at(-1)!;

      // Reopen as the daemon would: it must parse, and be the last acknowledged state or the
      // one the writer was committing when it died.
      const store = await MetadataStore.open<{ n: number; log: number[]; payload: string }>(path, () => ({ n: 0, log: [], payload: '' }));
      const state = store.read();
      assert.ok(state.n === lastAcked || state.n === lastAcked + 1, `round ${round}: state ${state.n}, last acknowledged ${lastAcked}`);
      assert.deepEqual(state.log, Array.from({ length: state.n }, (_, i) => i + 1), `round ${round}: the log is not 1..${state.n}`);
      if (state.n > 0) assert.equal(state.payload, String(state.n % 10).repeat(1000 + (state.n * 7919) % 60000));
      lastAcked = state.n;
    }
    assert.ok(lastAcked > rounds, `only ${lastAcked} transactions committed in ${rounds} rounds`);
    // The temporary files of interrupted writes do not pile up.
    const leftovers = readdirSync(join(path, '..')).filter((f) => f !== 'metadata.json');
    assert.deepEqual(leftovers, [], 'temporary files of interrupted writes were left behind');
  });
});
