import * as assert from 'node:assert/strict';
import { appendFileSync, closeSync, openSync, readdirSync, readlinkSync, renameSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { formatLogLine, readLogs, type LogEntry, type LogReadOptions } from '../../src/containers/log-reader.js';
import { isBerthError } from '../../src/errors/errors.js';

/** 2026-11-28T09:00:00Z in unix seconds. */
const T0 = Date.UTC(2026, 10, 28, 9, 0, 0) / 1000;

/** RFC 3339 with nine fractional digits for T0 + sec seconds + nsec nanoseconds. */
function stamp(sec: number, nsec = 0): string {
  const whole = new Date((T0 + sec) * 1000).toISOString().slice(0, 19);
  return `${whole}.${String(nsec).padStart(9, '0')}Z`;
}

/** One json-file line as berth-shim (and Docker) write it. */
function jline(log: string, sec: number, stream: 'stdout' | 'stderr' = 'stdout', nsec = 0): string {
  return `${JSON.stringify({ log, stream, time: stamp(sec, nsec) })}\n`;
}

function opts(more: Partial<LogReadOptions> = {}): LogReadOptions {
  return { stdout: true, stderr: true, follow: false, timestamps: false, ...more };
}

async function tempDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'berth-logs-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function collect(path: string, o: LogReadOptions, signal = new AbortController().signal): Promise<LogEntry[]> {
  const out: LogEntry[] = [];
  for await (const entry of readLogs(path, o, signal)) out.push(entry);
  return out;
}

const text = (entries: LogEntry[]): string[] => entries.map((e) => e.line.toString());

/** Lines "l<from>\n" ... "l<to-1>\n" at seconds from ... to-1. */
function lines(from: number, to: number, stream: 'stdout' | 'stderr' = 'stdout'): string {
  let s = '';
  for (let i = from; i < to; i++) s += jline(`l${i}\n`, i, stream);
  return s;
}

const range = (from: number, to: number): string[] => Array.from({ length: to - from }, (_, i) => `l${from + i}\n`);

/** Resolves once cond() holds, polling; rejects after `ms`. */
async function until(cond: () => boolean, ms = 3000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** How many of this process's descriptors point at files under dir. */
function openUnder(dir: string): number {
  let n = 0;
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      if (readlinkSync(`/proc/self/fd/${fd}`).startsWith(dir)) n++;
    } catch {
      // closed meanwhile
    }
  }
  return n;
}

/** Runs a follow in the background, gathering line texts. */
function follow(path: string, o: Partial<LogReadOptions>, stopped?: Promise<void>) {
  const ac = new AbortController();
  const got: string[] = [];
  let ended = false;
  const done = (async () => {
    for await (const e of readLogs(path, opts({ follow: true, ...o }), ac.signal, stopped)) got.push(e.line.toString());
    ended = true;
  })();
  return { got, done, ac, ended: () => ended };
}

test('rotated files are read oldest first; tail spans FILE.2, FILE.1 and FILE', async (t) => {
  const dir = await tempDir(t);
  const log = join(dir, 'c-json.log');
  writeFileSync(`${log}.2`, lines(0, 4));
  writeFileSync(`${log}.1`, lines(4, 8));
  writeFileSync(log, lines(8, 10));
  // Not ours: other containers' logs and non-numeric suffixes.
  writeFileSync(join(dir, 'other-json.log.3'), lines(100, 101));
  writeFileSync(`${log}.bak`, lines(200, 201));

  assert.deepEqual(text(await collect(log, opts())), range(0, 10));
  assert.deepEqual(text(await collect(log, opts({ tail: 'all' }))), range(0, 10));
  assert.deepEqual(text(await collect(log, opts({ tail: 7 }))), range(3, 10));
  assert.deepEqual(text(await collect(log, opts({ tail: 2 }))), range(8, 10));
  assert.deepEqual(text(await collect(log, opts({ tail: 6 }))), range(4, 10));
  assert.deepEqual(text(await collect(log, opts({ tail: 100 }))), range(0, 10));
  assert.deepEqual(text(await collect(log, opts({ tail: -1 }))), range(0, 10));
  assert.deepEqual(await collect(log, opts({ tail: 0 })), []);

  const entries = await collect(log, opts({ tail: 1 }));
  assert.equal(entries[0]?.stream, 'stdout');
  assert.equal(entries[0]?.timeNano, stamp(9));
  assert.equal(entries[0]?.time.getTime(), (T0 + 9) * 1000);
});

test('a missing log reads as empty; no stream selected is an InvalidArgument', async (t) => {
  const dir = await tempDir(t);
  assert.deepEqual(await collect(join(dir, 'none.log'), opts({ tail: 3 })), []);
  await assert.rejects(
    collect(join(dir, 'none.log'), opts({ stdout: false, stderr: false })),
    (err) => isBerthError(err) && err.code === 'INVALID_ARGUMENT',
  );
});

test('since and until: inclusive bounds, nanosecond strings, fractional numbers, with tail', async (t) => {
  const dir = await tempDir(t);
  const log = join(dir, 'c-json.log');
  writeFileSync(`${log}.1`, lines(0, 5));
  writeFileSync(log, lines(5, 10) + jline('late-half\n', 9, 'stdout', 500_000_000));

  assert.deepEqual(text(await collect(log, opts({ since: T0 + 3 }))), [...range(3, 10), 'late-half\n']);
  assert.deepEqual(text(await collect(log, opts({ since: T0 + 2.5, until: T0 + 6 }))), range(3, 7));
  assert.deepEqual(text(await collect(log, opts({ until: T0 + 1 }))), range(0, 2));
  // "seconds.nanoseconds" keeps precision a double near 1.7e9 cannot.
  assert.deepEqual(text(await collect(log, opts({ since: `${T0 + 9}.500000000` }))), ['late-half\n']);
  assert.deepEqual(text(await collect(log, opts({ since: `${T0 + 9}.500000001` }))), []);
  assert.deepEqual(text(await collect(log, opts({ until: `${T0 + 9}.499999999` }))), range(0, 10));
  // 0 is no bound, as in the Engine API.
  assert.equal((await collect(log, opts({ since: 0, until: 0 }))).length, 11);
  // tail counts only what the bounds select.
  assert.deepEqual(text(await collect(log, opts({ until: T0 + 6, tail: 3 }))), range(4, 7));
  assert.deepEqual(text(await collect(log, opts({ since: T0 + 8, tail: 5 }))), [...range(8, 10), 'late-half\n']);
  await assert.rejects(collect(log, opts({ since: 'yesterday' })), (err) => isBerthError(err));
});

test('stdout only, stderr only; tail counts the selected stream only', async (t) => {
  const dir = await tempDir(t);
  const log = join(dir, 'c-json.log');
  const entry = (i: number): string => jline(`${i % 3 === 0 ? 'err' : 'out'}${i}\n`, i, i % 3 === 0 ? 'stderr' : 'stdout');
  const all = Array.from({ length: 20 }, (_, i) => `${i % 3 === 0 ? 'err' : 'out'}${i}\n`);
  writeFileSync(`${log}.1`, Array.from({ length: 10 }, (_, i) => entry(i)).join(''));
  writeFileSync(log, Array.from({ length: 10 }, (_, i) => entry(i + 10)).join(''));
  const present = all;

  const out = await collect(log, opts({ stderr: false }));
  assert.ok(out.every((e) => e.stream === 'stdout'));
  assert.deepEqual(text(out), present.filter((l) => l.startsWith('out')));
  assert.deepEqual(text(await collect(log, opts({ stdout: false }))), present.filter((l) => l.startsWith('err')));
  assert.deepEqual(text(await collect(log, opts({ stdout: false, tail: 4 }))), ['err9\n', 'err12\n', 'err15\n', 'err18\n']);
  assert.deepEqual(text(await collect(log, opts({ stderr: false, tail: 3 }))), ['out16\n', 'out17\n', 'out19\n']);
});

test('corrupt lines are skipped; a truncated last line is left out, or completed under follow', async (t) => {
  const dir = await tempDir(t);
  const log = join(dir, 'c-json.log');
  writeFileSync(
    log,
    jline('a\n', 0) +
      'not json at all\n' +
      '{"log":"no stream","time":"2026-11-28T09:00:01Z"}\n' +
      '{"log":"bad time\\n","stream":"stdout","time":"yesterday"}\n' +
      '\n' +
      '[1,2,3]\n' +
      `{"log":"${'x'.repeat(1_200_000)}","stream":"stdout","time":"${stamp(2)}"}\n` +
      jline('b\n', 3, 'stderr') +
      // Escapes as the shim writes them: < > & as \u00XX, invalid UTF-8 as U+FFFD.
      '{"log":"\\u003cok\\u0026\\u003e \\ufffd\\u0001\\r\\n","stream":"stdout","time":"2026-11-28T09:00:04.5Z"}\n' +
      '{"log":"partial no newline","stream":"stdout","ti',
  );
  const got = await collect(log, opts());
  assert.deepEqual(text(got), ['a\n', 'b\n', '<ok&> \ufffd\u0001\r\n']);
  assert.equal(got[2]?.time.getTime(), (T0 + 4.5) * 1000);
  assert.deepEqual(text(await collect(log, opts({ tail: 2 }))), ['b\n', '<ok&> \ufffd\u0001\r\n']);

  // Under follow the line being written is retried when the rest arrives.
  const f = follow(log, { tail: 1 });
  await until(() => f.got.length === 1);
  appendFileSync(log, 'me":"2026-11-28T09:00:05Z"}\n');
  await until(() => f.got.length === 2);
  assert.equal(f.got[1], 'partial no newline');
  appendFileSync(log, jline('after\n', 6));
  await until(() => f.got.length === 3);
  f.ac.abort();
  await f.done;
  assert.deepEqual(f.got, ['<ok&> \ufffd\u0001\r\n', 'partial no newline', 'after\n']);

  // tail 0 starts after the last whole line: a line completed later is new, so it shows.
  appendFileSync(log, '{"log":"second partial","stream":"stdout"');
  const g = follow(log, { tail: 0 });
  await new Promise((r) => setTimeout(r, 100));
  appendFileSync(log, ',"time":"2026-11-28T09:00:07Z"}\n');
  await until(() => g.got.length === 1);
  g.ac.abort();
  await g.done;
  assert.deepEqual(g.got, ['second partial']);
});

test('follow sees appended lines and lines after rotations, no loss or repeat; ends when stopped resolves', async (t) => {
  const dir = await tempDir(t);
  const log = join(dir, 'c-json.log');
  writeFileSync(`${log}.1`, lines(0, 2));
  writeFileSync(log, lines(2, 4));
  let stop!: () => void;
  const stopped = new Promise<void>((r) => (stop = r));
  const f = follow(log, { tail: 3 }, stopped);
  await until(() => f.got.length === 3);
  assert.deepEqual(f.got, range(1, 4));

  appendFileSync(log, lines(4, 6));
  await until(() => f.got.length === 5);

  // Rotate as the shim does: one last line into FILE, FILE -> FILE.1, a new FILE.
  appendFileSync(log, lines(6, 7));
  renameSync(`${log}.1`, `${log}.2`);
  renameSync(log, `${log}.1`);
  writeFileSync(log, lines(7, 9));
  await until(() => f.got.length === 8);

  // Two rotations before the reader can look: it must find both newer files.
  renameSync(`${log}.2`, `${log}.3`);
  renameSync(`${log}.1`, `${log}.2`);
  renameSync(log, `${log}.1`);
  writeFileSync(log, lines(9, 11));
  renameSync(`${log}.2`, `${log}.3`);
  renameSync(`${log}.1`, `${log}.2`);
  renameSync(log, `${log}.1`);
  writeFileSync(log, lines(11, 12));
  await until(() => f.got.length === 11);

  // Written right before the container exits: drained, then the follow ends by itself.
  appendFileSync(log, lines(12, 14));
  stop();
  await f.done;
  assert.ok(f.ended());
  assert.deepEqual(f.got, range(1, 14));
  assert.equal(openUnder(dir), 0, 'every log file was closed');
});

test('follow of a log that does not exist yet, and of a single file truncated in place', async (t) => {
  const dir = await tempDir(t);
  const log = join(dir, 'c-json.log');
  const f = follow(log, {});
  await new Promise((r) => setTimeout(r, 100));
  writeFileSync(log, lines(0, 2));
  await until(() => f.got.length === 2);
  // max-file 1: the shim truncates FILE instead of rotating.
  truncateSync(log, 0);
  await new Promise((r) => setTimeout(r, 400));
  appendFileSync(log, lines(2, 3));
  await until(() => f.got.length === 3);
  f.ac.abort();
  await f.done;
  assert.deepEqual(f.got, range(0, 3));
});

test('follow with until ends at an entry after until, or when until passes', async (t) => {
  const dir = await tempDir(t);
  const log = join(dir, 'c-json.log');
  // Times around now: until is in the future while the follow runs.
  const now = Date.now() / 1000 - T0;
  writeFileSync(log, jline('past\n', now - 2) + jline('recent\n', now - 1));
  const f = follow(log, { until: T0 + now + 2 });
  await until(() => f.got.length === 2);
  assert.equal(f.ended(), false);
  appendFileSync(log, jline('in time\n', now + 1) + jline('too late\n', now + 3) + jline('later still\n', now + 1));
  await f.done;
  assert.deepEqual(f.got, ['past\n', 'recent\n', 'in time\n']);

  const g = follow(log, { until: Date.now() / 1000 + 0.3, tail: 0 });
  const started = Date.now();
  await g.done;
  const took = Date.now() - started;
  assert.ok(took >= 250 && took < 1500, `ended after ${took} ms`);
  assert.deepEqual(g.got, []);

  // An until already past: what is there, then the end.
  const h = follow(log, { until: T0 + now - 1 });
  await h.done;
  assert.deepEqual(h.got, ['past\n', 'recent\n']);
});

test('abort ends a follow at once and closes its files, even while the consumer holds it', async (t) => {
  const dir = await tempDir(t);
  const log = join(dir, 'c-json.log');
  writeFileSync(`${log}.1`, lines(0, 2));
  writeFileSync(log, lines(2, 4));

  // Consumer waiting in next(): the wait ends.
  const f = follow(log, {});
  await until(() => f.got.length === 4);
  const t0 = Date.now();
  f.ac.abort();
  await f.done;
  assert.ok(Date.now() - t0 < 100, `abort took ${Date.now() - t0} ms`);
  assert.equal(openUnder(dir), 0);

  // Consumer suspended between entries: the files close without it pulling.
  const ac = new AbortController();
  const it = readLogs(log, opts({ follow: true }), ac.signal);
  assert.equal((await it.next()).value?.line.toString(), 'l0\n');
  assert.ok(openUnder(dir) > 0);
  ac.abort();
  await until(() => openUnder(dir) === 0, 1000);
  assert.equal((await it.next()).done, true);

  // Already aborted: nothing at all.
  assert.deepEqual(await collect(log, opts(), AbortSignal.abort()), []);
});

test('a 200 MB log with tail 5 reads backwards: fast and small', async (t) => {
  const dir = await tempDir(t);
  const log = join(dir, 'big-json.log');
  let chunk = '';
  for (let i = 0; chunk.length < 4 * 1024 * 1024; i++) chunk += jline(`filler line ${i} ${'.'.repeat(i % 40)}\n`, 0, i % 2 ? 'stdout' : 'stderr');
  const block = Buffer.from(chunk);
  const fd = openSync(log, 'w');
  for (let written = 0; written < 200 * 1024 * 1024; written += block.length) writeSync(fd, block);
  writeSync(fd, lines(1, 8));
  closeSync(fd);

  const rssBefore = process.memoryUsage.rss();
  const started = performance.now();
  const got = await collect(log, opts({ tail: 5 }));
  const took = performance.now() - started;
  const growth = process.memoryUsage.rss() - rssBefore;
  assert.deepEqual(text(got), range(3, 8));
  assert.ok(took < 200, `tail 5 of 200 MB took ${took.toFixed(1)} ms`);
  t.diagnostic(`tail 5 of 200 MB: ${took.toFixed(1)} ms, resident set +${(growth / 1048576).toFixed(1)} MB`);
  assert.ok(growth < 16 * 1024 * 1024, `resident set grew by ${(growth / 1048576).toFixed(1)} MB`);
});

test('formatLogLine: Docker bytes; timestamps keep the file\'s nanoseconds, fixed nine digits', async (t) => {
  const dir = await tempDir(t);
  const log = join(dir, 'c-json.log');
  writeFileSync(
    log,
    '{"log":"hello\\n","stream":"stdout","time":"2026-11-28T09:00:00.123456789Z"}\n' +
      '{"log":"short\\n","stream":"stderr","time":"2026-11-28T09:00:01.5Z"}\n' +
      '{"log":"whole","stream":"stdout","time":"2026-11-28T09:00:02Z"}\n' +
      '{"log":"zone\\n","stream":"stdout","time":"2026-11-28T10:00:03.000000007+01:00"}\n',
  );
  const got = await collect(log, opts());
  assert.deepEqual(
    got.map((e) => formatLogLine(e, true).toString()),
    [
      '2026-11-28T09:00:00.123456789Z hello\n',
      '2026-11-28T09:00:01.500000000Z short\n',
      '2026-11-28T09:00:02.000000000Z whole',
      '2026-11-28T10:00:03.000000007+01:00 zone\n',
    ],
  );
  assert.equal(formatLogLine(got[0] as LogEntry, false).toString(), 'hello\n');
  assert.equal(got[3]?.time.getTime(), (T0 + 3) * 1000);
  assert.equal(got[0]?.timeNano, '2026-11-28T09:00:00.123456789Z');
});
