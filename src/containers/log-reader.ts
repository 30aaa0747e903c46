/**
 * Reads a container's log the way `docker logs` does. berth-shim writes it in Docker's
 * json-file format, one JSON object per line,
 *
 *   {"log":"hello\n","stream":"stdout","time":"2026-11-28T09:00:00.123456789Z"}
 *
 * and rotates it: when FILE passes its max size, FILE.(n-1) becomes FILE.n, ..., FILE
 * becomes FILE.1 and a new FILE starts (with one file, FILE is truncated instead). So on
 * disk, oldest to newest:
 *
 *   FILE.N ... FILE.2  FILE.1  FILE
 *
 * Files are identified by device and inode, never by name alone: a name can move under us
 * at any moment, an open handle keeps reading the same bytes.
 */
import { watch, type BigIntStats, type FSWatcher } from 'node:fs';
import { open, readdir, stat, type FileHandle } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { InvalidArgument, errnoCode } from '../errors/errors.js';

export interface LogEntry {
  stream: 'stdout' | 'stderr';
  line: Buffer;
  time: Date;
  /** The time as the file has it (RFC 3339 with up to nine fractional digits). */
  timeNano: string;
}

export interface LogReadOptions {
  stdout: boolean;
  stderr: boolean;
  /**
   * Unix seconds, fractional allowed: entries strictly before are skipped. A string
   * "seconds[.nanoseconds]" (what the docker CLI sends) keeps full nanosecond precision,
   * which a number near 1.7e9 cannot. 0 means no bound.
   */
  since?: number | string;
  /** Unix seconds: entries after are skipped, and the first one seen ends the read. 0 means no bound. */
  until?: number | string;
  /** The last N entries, counted over the selected streams and bounds, across rotated files. */
  tail?: number | 'all';
  /** Keep reading new entries, across rotations, until `stopped` resolves or the signal aborts. */
  follow: boolean;
  timestamps: boolean;
}

/** Bytes read per I/O, forwards and backwards. */
const BLOCK = 64 * 1024;
/**
 * A line longer than this is corrupt and skipped without being buffered (berth-shim writes
 * at most ~100 KB per line: 16 KB of output, escaped).
 */
const MAX_LINE = 1024 * 1024;
/** How often a follow looks for changes when no fs.watch event arrives. */
const POLL_MS = 250;
const MAX_TIMER_MS = 2 ** 31 - 1;
const NEWLINE = 0x0a;

/** A point in time with nanosecond precision. */
interface Instant {
  sec: number;
  nsec: number;
}

function compare(a: Instant, b: Instant): number {
  return a.sec !== b.sec ? a.sec - b.sec : a.nsec - b.nsec;
}

const RFC3339 =
  /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:([Zz])|([+-])(\d{2}):(\d{2}))$/;

function parseTime(text: string): Instant | undefined {
  const m = RFC3339.exec(text);
  if (m === null) return undefined;
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [
    number, number, number, number, number, number,
  ];
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 60) {
    return undefined;
  }
  let sec = Date.UTC(year, month - 1, day, hour, minute, second) / 1000;
  if (m[8] === undefined) {
    const offset = Number(m[10]) * 3600 + Number(m[11]) * 60;
    sec -= m[9] === '+' ? offset : -offset;
  }
  const nsec = m[7] === undefined ? 0 : Number(m[7].padEnd(9, '0'));
  return { sec, nsec };
}

/** A since/until bound as the API passes it; undefined when there is none. */
function parseBound(name: string, value: number | string | undefined): Instant | undefined {
  if (value === undefined) return undefined;
  let bound: Instant;
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new InvalidArgument(`logs: ${name} ${value} is not a unix time`);
    const sec = Math.floor(value);
    bound = { sec, nsec: Math.min(999_999_999, Math.round((value - sec) * 1e9)) };
  } else {
    const m = /^(-?\d+)(?:\.(\d{1,9}))?$/.exec(value.trim());
    if (m === null) {
      throw new InvalidArgument(`logs: ${name} "${value}" is not a unix time (seconds[.nanoseconds])`);
    }
    const sec = Number(m[1]);
    const frac = m[2] === undefined ? 0 : Number(m[2].padEnd(9, '0'));
    // "-1.5" is 1.5 seconds before the epoch.
    bound = m[1]?.startsWith('-') && frac > 0 ? { sec: sec - 1, nsec: 1e9 - frac } : { sec, nsec: frac };
  }
  return bound.sec === 0 && bound.nsec === 0 ? undefined : bound;
}

function parseTail(tail: number | 'all' | undefined): number {
  if (tail === undefined || tail === 'all') return Infinity;
  if (typeof tail !== 'number' || Number.isNaN(tail)) {
    throw new InvalidArgument(`logs: tail ${String(tail)} is neither a number nor "all"`);
  }
  return tail < 0 ? Infinity : Math.floor(tail);
}

interface Decoded {
  entry: LogEntry;
  at: Instant;
}

/** One json-file line, or undefined when it is not one (corrupt lines are skipped, never fatal). */
function decode(line: Buffer): Decoded | undefined {
  let value: unknown;
  try {
    value = JSON.parse(line.toString('utf8'));
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const { log, stream, time } = value as Record<string, unknown>;
  if (typeof log !== 'string' || typeof time !== 'string') return undefined;
  if (stream !== 'stdout' && stream !== 'stderr') return undefined;
  const at = parseTime(time);
  if (at === undefined) return undefined;
  return {
    entry: { stream, line: Buffer.from(log, 'utf8'), time: new Date(at.sec * 1000 + Math.floor(at.nsec / 1e6)), timeNano: time },
    at,
  };
}

/** Which entries a read selects. */
class Selection {
  readonly stdout: boolean;
  readonly stderr: boolean;
  readonly since: Instant | undefined;
  readonly until: Instant | undefined;

  constructor(opts: LogReadOptions) {
    this.stdout = opts.stdout;
    this.stderr = opts.stderr;
    this.since = parseBound('since', opts.since);
    this.until = parseBound('until', opts.until);
  }

  stream(d: Decoded): boolean {
    return d.entry.stream === 'stdout' ? this.stdout : this.stderr;
  }

  beforeSince(d: Decoded): boolean {
    return this.since !== undefined && compare(d.at, this.since) < 0;
  }

  afterUntil(d: Decoded): boolean {
    return this.until !== undefined && compare(d.at, this.until) > 0;
  }
}

/** One open log file, read forwards from `pos` in whole lines. */
class LogFile {
  readonly handle: FileHandle;
  readonly dev: bigint;
  readonly ino: bigint;
  /** The size when opened: where a tail scan starts. */
  readonly size: number;
  /** The next byte to read. */
  pos = 0;
  #rest: Buffer[] = [];
  #restLength = 0;
  /** Inside a line longer than MAX_LINE: drop bytes up to the next newline. */
  #discarding = false;
  #closing: Promise<void> | undefined;

  constructor(handle: FileHandle, st: BigIntStats) {
    this.handle = handle;
    this.dev = st.dev;
    this.ino = st.ino;
    this.size = Number(st.size);
  }

  is(st: { dev: bigint; ino: bigint }): boolean {
    return st.dev === this.dev && st.ino === this.ino;
  }

  /** The complete lines of the next block, or null at the end of the file. */
  async readLines(): Promise<Buffer[] | null> {
    const block = Buffer.allocUnsafe(BLOCK);
    const { bytesRead } = await this.handle.read(block, 0, BLOCK, this.pos);
    if (bytesRead === 0) return null;
    this.pos += bytesRead;
    const data = block.subarray(0, bytesRead);
    const lines: Buffer[] = [];
    let from = 0;
    for (let nl = data.indexOf(NEWLINE); nl !== -1; nl = data.indexOf(NEWLINE, from)) {
      const piece = data.subarray(from, nl);
      from = nl + 1;
      if (this.#discarding) {
        this.#discarding = false;
        continue;
      }
      if (this.#restLength === 0) {
        lines.push(piece);
      } else if (this.#restLength + piece.length <= MAX_LINE) {
        this.#rest.push(piece);
        lines.push(Buffer.concat(this.#rest));
        this.#clearRest();
      } else {
        this.#clearRest();
      }
    }
    if (from < data.length && !this.#discarding) {
      const tail = data.subarray(from);
      if (this.#restLength + tail.length > MAX_LINE) {
        this.#clearRest();
        this.#discarding = true;
      } else {
        // A copy, so the rest of the block can be collected while the line waits.
        this.#rest.push(Buffer.from(tail));
        this.#restLength += tail.length;
      }
    }
    return lines;
  }

  /** The unterminated bytes after the last newline; taking them ends the line. */
  takeRest(): Buffer | undefined {
    const rest = this.#restLength > 0 ? Buffer.concat(this.#rest) : undefined;
    this.#clearRest();
    this.#discarding = false;
    return rest;
  }

  /** Starts over at `pos`, forgetting any partial line. */
  seek(pos: number): void {
    this.pos = pos;
    this.#clearRest();
    this.#discarding = false;
  }

  #clearRest(): void {
    this.#rest = [];
    this.#restLength = 0;
  }

  /** Idempotent; every caller waits for the one close. */
  close(): Promise<void> {
    this.#closing ??= this.handle.close().catch(() => undefined);
    return this.#closing;
  }
}

interface Segment {
  /** Offset of the line's first byte. */
  start: number;
  /** Its bytes without the newline; undefined when longer than MAX_LINE. */
  line: Buffer | undefined;
  length: number;
  /** False for the bytes after the last newline: a line still being written. */
  terminated: boolean;
}

/** The lines of [0, file.size), last first, reading blocks backwards from the end. */
async function* linesBackward(file: LogFile): AsyncGenerator<Segment> {
  let pos = file.size;
  let segEnd = file.size;
  /** Bytes of the current segment read so far (from later blocks), in file order. */
  let carry: Buffer[] = [];
  let carryLength = 0;
  let oversized = false;
  const block = Buffer.allocUnsafe(BLOCK);
  const segment = (start: number, head: Buffer): Segment => {
    const length = segEnd - start;
    const line = oversized || length > MAX_LINE ? undefined : carryLength === 0 ? head : Buffer.concat([head, ...carry]);
    return { start, line, length, terminated: segEnd !== file.size };
  };
  while (pos > 0) {
    const len = Math.min(BLOCK, pos);
    pos -= len;
    const { bytesRead } = await file.handle.read(block, 0, len, pos);
    // The file shrank under us (truncated): what is left here is not the log we scanned.
    if (bytesRead < len) return;
    const data = block.subarray(0, len);
    let end = len;
    for (let nl = data.lastIndexOf(NEWLINE, end - 1); nl !== -1; nl = end > 0 ? data.lastIndexOf(NEWLINE, end - 1) : -1) {
      const start = pos + nl + 1;
      if (start < segEnd || segEnd !== file.size) {
        // Copy: the block is reused for the next read.
        yield segment(start, Buffer.from(data.subarray(nl + 1, end)));
      }
      carry = [];
      carryLength = 0;
      oversized = false;
      segEnd = pos + nl;
      end = nl;
    }
    if (end > 0 && !oversized) {
      if (carryLength + end > MAX_LINE) {
        oversized = true;
        carry = [];
        carryLength = 0;
      } else {
        carry.unshift(Buffer.from(data.subarray(0, end)));
        carryLength += end;
      }
    }
  }
  if (segEnd > 0 || segEnd !== file.size) yield segment(0, Buffer.alloc(0));
}

/** Where forward reading starts: files[index] at byte offset. */
interface Start {
  index: number;
  offset: number;
}

/**
 * Scans backwards for the first of the last `n` selected entries; stops early at an entry
 * before `since` (the log is in time order). With n = Infinity it only seeks `since`.
 */
async function findStart(files: LogFile[], n: number, sel: Selection, signal: AbortSignal): Promise<Start> {
  let count = 0;
  for (let index = files.length - 1; index >= 0; index--) {
    for await (const seg of linesBackward(files[index] as LogFile)) {
      if (signal.aborted) return { index: 0, offset: 0 };
      const after = seg.start + seg.length + (seg.terminated ? 1 : 0);
      const d = seg.line === undefined ? undefined : decode(seg.line);
      // Being written: forward reading picks it up once it is whole.
      if (!seg.terminated && d === undefined) continue;
      if (n === 0) return { index, offset: after };
      if (d === undefined || !sel.stream(d) || sel.afterUntil(d)) continue;
      if (sel.beforeSince(d) || count === n) return { index, offset: after };
      count++;
    }
  }
  return { index: 0, offset: 0 };
}

/** Rotated siblings of FILE that exist now (FILE.1, FILE.2, ...), newest first. */
async function rotatedIndices(logPath: string): Promise<number[]> {
  const prefix = `${basename(logPath)}.`;
  let names: string[];
  try {
    names = await readdir(dirname(logPath));
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return [];
    throw err;
  }
  const indices: number[] = [];
  for (const name of names) {
    if (!name.startsWith(prefix)) continue;
    const suffix = name.slice(prefix.length);
    if (/^[1-9]\d{0,5}$/.test(suffix)) indices.push(Number(suffix));
  }
  return indices.sort((a, b) => a - b);
}

async function openLog(path: string): Promise<LogFile | undefined> {
  let handle: FileHandle;
  try {
    handle = await open(path, 'r');
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return undefined;
    throw err;
  }
  try {
    return new LogFile(handle, await handle.stat({ bigint: true }));
  } catch (err) {
    await handle.close().catch(() => undefined);
    throw err;
  }
}

async function statLog(path: string): Promise<BigIntStats | undefined> {
  try {
    return await stat(path, { bigint: true });
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return undefined;
    throw err;
  }
}

/**
 * Opens the files newer than `after` (all files when it is undefined or rotated away),
 * oldest first. They are opened newest first and told apart by inode: a rotation between
 * two opens then shows the same file twice (dropped) instead of skipping one.
 */
async function openNewer(logPath: string, after: LogFile | undefined, track: (f: LogFile) => void): Promise<LogFile[]> {
  let indices = await rotatedIndices(logPath);
  if (after !== undefined) {
    for (const i of indices) {
      const st = await statLog(`${logPath}.${i}`);
      if (st !== undefined && after.is(st)) {
        indices = indices.filter((j) => j < i);
        break;
      }
    }
  }
  const opened: LogFile[] = [];
  for (const path of [logPath, ...indices.map((i) => `${logPath}.${i}`)]) {
    const file = await openLog(path);
    if (file === undefined) continue;
    track(file);
    if ((after !== undefined && after.is(file)) || opened.some((o) => o.is(file))) {
      await file.close();
      continue;
    }
    opened.push(file);
  }
  return opened.reverse();
}

/** Wakes a waiting follow; a notification while nobody waits is kept for the next wait. */
class Wakeup {
  #pending = false;
  #wake: (() => void) | undefined;

  notify(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    if (wake !== undefined) wake();
    else this.#pending = true;
  }

  wait(ms: number): Promise<void> {
    if (this.#pending) {
      this.#pending = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#wake = undefined;
        resolve();
      }, ms);
      this.#wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }
}

/** Everything a read holds open; released on end, on return() and at once on abort. */
class Resources {
  readonly files = new Set<LogFile>();
  readonly wakeup = new Wakeup();
  watcher: FSWatcher | undefined;
  timer: NodeJS.Timeout | undefined;
  readonly #closing: Array<Promise<void>> = [];

  track = (file: LogFile): void => {
    this.files.add(file);
  };

  async release(file: LogFile): Promise<void> {
    this.files.delete(file);
    await file.close();
  }

  async closeAll(): Promise<void> {
    this.watcher?.close();
    this.watcher = undefined;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    for (const file of this.files) this.#closing.push(file.close());
    this.files.clear();
    this.wakeup.notify();
    // Also waits for closes an abort started earlier.
    await Promise.all(this.#closing);
  }
}

/**
 * Yields the log's entries in order from FILE.N ... FILE.1, FILE; with `follow`, then waits
 * for more until `stopped` resolves (the container exited: what is left is drained) or
 * `until` passes. Aborting ends it at once and closes its files, even while a consumer
 * holds it suspended.
 */
export async function* readLogs(
  logPath: string,
  opts: LogReadOptions,
  signal: AbortSignal,
  stopped?: Promise<void>,
): AsyncGenerator<LogEntry> {
  if (!opts.stdout && !opts.stderr) {
    throw new InvalidArgument('logs: choose at least one stream (stdout or stderr)');
  }
  const sel = new Selection(opts);
  const tail = parseTail(opts.tail);
  if (signal.aborted) return;

  const res = new Resources();
  const onAbort = (): void => void res.closeAll();
  signal.addEventListener('abort', onAbort, { once: true });
  /** Set by an entry after `until`: nothing later can be selected. */
  let ended = false;
  let finishing = false;

  /** Selects among decoded lines; sets `ended` at the first entry after `until`. */
  const select = (line: Buffer): LogEntry | undefined => {
    const d = decode(line);
    if (d === undefined) return undefined;
    if (sel.afterUntil(d)) {
      ended = true;
      return undefined;
    }
    return sel.stream(d) && !sel.beforeSince(d) ? d.entry : undefined;
  };

  /** Reads `file` to its current end; `complete` when it will not grow any more. */
  async function* drain(file: LogFile, complete: boolean): AsyncGenerator<LogEntry> {
    for (;;) {
      const lines = await file.readLines();
      if (lines === null) break;
      for (const line of lines) {
        const entry = select(line);
        if (ended || signal.aborted) return;
        if (entry !== undefined) yield entry;
      }
      if (signal.aborted) return;
    }
    if (complete) {
      const rest = file.takeRest();
      const entry = rest === undefined ? undefined : select(rest);
      if (entry !== undefined && !ended) yield entry;
    }
  }

  try {
    if (opts.follow) {
      // Watch before opening, so a write between the open and the watch still wakes us.
      try {
        res.watcher = watch(dirname(logPath), (_event, name) => {
          const base = basename(logPath);
          if (name === null || name === base || name.startsWith(`${base}.`)) res.wakeup.notify();
        });
        res.watcher.on('error', () => {
          res.watcher?.close();
          res.watcher = undefined;
        });
      } catch {
        // No directory yet, or no inotify: the poll alone will do.
      }
      void stopped?.then(
        () => {
          finishing = true;
          res.wakeup.notify();
        },
        () => {
          finishing = true;
          res.wakeup.notify();
        },
      );
      const untilMs = sel.until === undefined ? undefined : sel.until.sec * 1000 + sel.until.nsec / 1e6;
      const armUntil = (): void => {
        const delay = (untilMs as number) - Date.now();
        if (delay <= 0) {
          res.timer = undefined;
          finishing = true;
          res.wakeup.notify();
        } else {
          res.timer = setTimeout(armUntil, Math.min(delay + 1, MAX_TIMER_MS));
        }
      };
      if (untilMs !== undefined) armUntil();
    }

    let files = await openNewer(logPath, undefined, res.track);
    if (signal.aborted) return;
    if (files.length > 0 && (tail !== Infinity || sel.since !== undefined)) {
      const start = await findStart(files, tail, sel, signal);
      if (signal.aborted) return;
      for (const file of files.slice(0, start.index)) await res.release(file);
      files = files.slice(start.index);
      files[0]?.seek(start.offset);
    }

    if (!opts.follow) {
      for (const file of files) {
        yield* drain(file, true);
        await res.release(file);
        if (ended || signal.aborted) return;
      }
      return;
    }

    // Follow: files[..-1] are complete (rotated), the last one is live (what FILE names).
    for (;;) {
      const last = finishing;
      while (files.length > 1) {
        const file = files[0] as LogFile;
        yield* drain(file, true);
        if (ended || signal.aborted) return;
        await res.release(file);
        files.shift();
      }
      let live = files[0];
      if (live !== undefined) {
        // With a single file the shim truncates instead of rotating.
        const size = Number((await live.handle.stat({ bigint: true })).size);
        if (size < live.pos) live.seek(0);
        yield* drain(live, false);
        if (ended || signal.aborted) return;
      }
      const current = await statLog(logPath);
      if (current !== undefined && (live === undefined || !live.is(current))) {
        // Rotated (or created): the old file gets no more writes once a new FILE exists.
        if (live !== undefined) {
          yield* drain(live, true);
          if (ended || signal.aborted) return;
        }
        files = await openNewer(logPath, live, res.track);
        if (live !== undefined) await res.release(live);
        if (signal.aborted) return;
        continue;
      }
      if (last) {
        if (live !== undefined) {
          const rest = live.takeRest();
          const entry = rest === undefined ? undefined : select(rest);
          if (entry !== undefined && !ended) yield entry;
        }
        return;
      }
      await res.wakeup.wait(POLL_MS);
      if (signal.aborted) return;
    }
  } catch (err) {
    // Reads cut short by an abort (closed handles) are the abort, not an error.
    if (signal.aborted) return;
    throw err;
  } finally {
    signal.removeEventListener('abort', onAbort);
    await res.closeAll();
  }
}

/** Docker's RFC3339NanoFixed: always nine fractional digits, "Z" for UTC. */
function fixedNano(text: string): string {
  const m = /^(.*T\d{2}:\d{2}:\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}:\d{2})$/.exec(text);
  if (m === null) return text;
  const zone = m[3] === 'z' || m[3] === '+00:00' || m[3] === '-00:00' ? 'Z' : (m[3] as string);
  return `${m[1] as string}.${(m[2] ?? '').padEnd(9, '0').slice(0, 9)}${zone}`;
}

/** The bytes `docker logs` prints for one entry: with timestamps, "<RFC3339NanoFixed> " first. */
export function formatLogLine(entry: LogEntry, timestamps: boolean): Buffer {
  if (!timestamps) return entry.line;
  return Buffer.concat([Buffer.from(`${fixedNano(entry.timeNano)} `), entry.line]);
}
