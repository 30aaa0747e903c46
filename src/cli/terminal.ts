/**
 * The terminal side of attach, run and start -a, as the docker CLI's hijackedIOStreamer
 * does it: raw mode on a TTY, the detach keys (ctrl-p ctrl-q unless told otherwise), stdin
 * copied into the hijacked connection and half-closed at its end, and the connection's
 * output copied to stdout, demultiplexed into stdout and stderr when there is no TTY.
 */
import { spawnSync } from 'node:child_process';
import type { Socket } from 'node:net';
import type { Readable, Writable } from 'node:stream';
import { Demultiplexer } from '../containers/stdcopy.js';

/** ctrl-p, ctrl-q. */
export const DEFAULT_DETACH_KEYS = Buffer.from([16, 17]);

const CTRL_NAMES = ['@', ...'abcdefghijklmnopqrstuvwxyz', '[', '\\', ']', '^', '_'];

/**
 * Docker's detach key notation (moby/term ToBytes): comma-separated keys, each a single
 * character, `ctrl-<a-z @ [ \ ] ^ _>` or `DEL`. "ctrl-p,ctrl-q" is [16, 17].
 */
export function parseDetachKeys(keys: string): Buffer {
  const codes: number[] = [];
  for (const key of keys.split(',')) {
    if (key.length === 1) {
      codes.push(key.charCodeAt(0) & 0xff);
      continue;
    }
    const ctrl = key.startsWith('ctrl-') && key.length === 6 ? CTRL_NAMES.indexOf(key[5]!) : -1;
    if (ctrl >= 0) codes.push(ctrl);
    else if (key === 'DEL') codes.push(127);
    else throw new Error(`Unknown character: '${key}'`);
  }
  return Buffer.from(codes);
}

/**
 * Watches keyboard input for the detach sequence (moby/term's escape proxy). Bytes that may
 * start the sequence are held back until the sequence completes (detach) or breaks (they
 * are passed on). As in docker, the byte that breaks a partial match is not itself taken
 * as the start of a new match.
 */
export class EscapeProxy {
  readonly #keys: Buffer;
  #pos = 0;

  constructor(keys: Buffer) {
    this.#keys = keys;
  }

  /** The bytes to forward, and whether the sequence is complete (forward nothing after). */
  push(chunk: Buffer): { data: Buffer; detached: boolean } {
    if (this.#keys.length === 0) return { data: chunk, detached: false };
    const out: number[] = [];
    for (const b of chunk) {
      if (b === this.#keys[this.#pos]) {
        this.#pos++;
        if (this.#pos === this.#keys.length) return { data: Buffer.from(out), detached: true };
        continue;
      }
      if (this.#pos > 0) {
        for (let i = 0; i < this.#pos; i++) out.push(this.#keys[i]!);
        this.#pos = 0;
      }
      out.push(b);
    }
    return { data: Buffer.from(out), detached: false };
  }
}

/** The size to give a container's TTY: [height, width], [0, 0] when stdout is no terminal. */
export function terminalSize(out: NodeJS.WriteStream = process.stdout): [number, number] {
  return out.isTTY ? [out.rows ?? 0, out.columns ?? 0] : [0, 0];
}

/** A terminal that can go raw: process.stdin when it is a TTY. */
export interface RawCapable {
  isTTY?: boolean;
  setRawMode?(mode: boolean): unknown;
}

/**
 * Raw mode on `input` when it is a terminal; the returned function restores it (once).
 * libuv's raw mode keeps output processing (a "\n" from the container would be written as
 * "\r\r\n"), so `stty raw -echo` then makes it the raw mode docker sets (cfmakeraw);
 * leaving raw mode restores the settings libuv saved on entry.
 */
export function makeRaw(input: RawCapable, stty: (args: string[]) => void = runStty): () => void {
  if (!input.isTTY || typeof input.setRawMode !== 'function') return () => undefined;
  input.setRawMode(true);
  if (input === process.stdin) stty(['raw', '-echo']);
  let restored = false;
  return () => {
    if (restored) return;
    restored = true;
    input.setRawMode?.(false);
  };
}

/** stty on the terminal that is this process's stdin. */
function runStty(args: string[]): void {
  spawnSync('stty', args, { stdio: ['inherit', 'ignore', 'ignore'] });
}

export interface HijackOptions {
  socket: Socket;
  /** Bytes the upgrade read past the response headers. */
  head?: Buffer;
  /** Local input to send; undefined when stdin is not attached. */
  stdin?: Readable & RawCapable;
  stdout?: Writable;
  stderr?: Writable;
  /** The container has a TTY: output is raw, stdin goes raw and is watched for detach keys. */
  tty: boolean;
  /** --detach-keys; the default sequence when unset or invalid. */
  detachKeys?: string;
  /** Where a warning about bad detach keys goes. */
  warn?: (text: string) => void;
}

/** How a hijacked stream ended; 'closed': our own stdout or stderr went away (a closed pipe). */
export type HijackEnd = { kind: 'done' } | { kind: 'detached' } | { kind: 'closed' } | { kind: 'error'; error: Error };

/** The exit status of a process killed by SIGPIPE, as a Go CLI writing to a closed pipe ends. */
export const SIGPIPE_STATUS = 141;

/**
 * Calls `onClosed` when writing to `out` fails (EPIPE: the reader of the pipe is gone), so a
 * streaming command can stop quietly, as docker dies of SIGPIPE. Returns the unsubscribe.
 */
export function onOutputClosed(out: Writable, onClosed: () => void): () => void {
  const handler = () => onClosed();
  out.on('error', handler);
  return () => out.off('error', handler);
}

/**
 * Streams a hijacked attach connection until its output ends (or, with no output attached,
 * until stdin ends), or until the user types the detach keys. Stdin's end half-closes the
 * connection; output keeps flowing after that.
 */
export class HijackedStream {
  readonly done: Promise<HijackEnd>;
  readonly #opts: HijackOptions;
  #restoreInput: () => void = () => undefined;
  #finished = false;
  #resolve!: (end: HijackEnd) => void;
  #cleanups: Array<() => void> = [];
  #inputDone = false;
  #outputDone = false;

  constructor(opts: HijackOptions) {
    this.#opts = opts;
    this.done = new Promise((resolve) => {
      this.#resolve = resolve;
    });
    this.#start();
  }

  /** Stops streaming (as docker cancels the attach context) and restores the terminal. */
  cancel(): void {
    this.#finish({ kind: 'done' });
  }

  #start(): void {
    const { socket, stdin, stdout, stderr, tty } = this.#opts;
    const hasOutput = Boolean(stdout || stderr);

    // Input set-up: raw mode and the detach keys, only for a TTY.
    let escape: EscapeProxy | undefined;
    if (stdin && tty) {
      this.#restoreInput = makeRaw(stdin);
      let keys: Buffer = DEFAULT_DETACH_KEYS;
      if (this.#opts.detachKeys) {
        try {
          keys = parseDetachKeys(this.#opts.detachKeys);
        } catch (err) {
          this.#opts.warn?.(`invalid detach escape keys, using default: ${(err as Error).message}\n`);
        }
      }
      escape = new EscapeProxy(keys);
    }

    // Output.
    if (hasOutput) {
      const demux = tty ? undefined : new Demultiplexer();
      const rawOut = stdout ?? stderr!;
      const write = (target: Writable | undefined, data: Buffer) => {
        if (!target || data.length === 0) return;
        if (!target.write(data)) {
          socket.pause();
          target.once('drain', () => socket.resume());
        }
      };
      const onData = (chunk: Buffer) => {
        if (this.#finished) return;
        if (!demux) {
          write(rawOut, chunk);
          return;
        }
        let frames;
        try {
          frames = demux.push(chunk);
        } catch (err) {
          this.#finish({ kind: 'error', error: err as Error });
          return;
        }
        for (const f of frames) {
          if (f.stream === 1) write(stdout, f.payload);
          else if (f.stream === 2) write(stderr, f.payload);
          else if (f.stream === 3) {
            this.#finish({ kind: 'error', error: new Error(`error from daemon in stream: ${f.payload.toString('utf8')}`) });
            return;
          }
        }
      };
      const onEnd = () => {
        if (tty) this.#restoreInput();
        this.#outputDone = true;
        this.#finish({ kind: 'done' });
      };
      socket.on('data', onData);
      socket.once('end', onEnd);
      socket.once('close', onEnd);
      const closed = () => this.#finish({ kind: 'closed' });
      const unwatch = [stdout, stderr].filter((o): o is Writable => o !== undefined).map((o) => onOutputClosed(o, closed));
      this.#cleanups.push(() => {
        socket.off('data', onData);
        socket.off('end', onEnd);
        socket.off('close', onEnd);
        // Late write errors after the end are of no interest, but must not crash the process.
        for (const u of unwatch) u();
        for (const o of [stdout, stderr]) if (o && o.listenerCount('error') === 0) o.on('error', () => undefined);
      });
      if (this.#opts.head?.length) onData(this.#opts.head);
    } else {
      // Nobody reads the output: let it drain so the connection does not stall.
      socket.resume();
    }
    socket.on('error', (err) => {
      if (!this.#finished) this.#finish(hasOutput ? { kind: 'error', error: err } : { kind: 'done' });
    });

    // Input.
    const inputEnded = () => {
      if (this.#inputDone) return;
      this.#inputDone = true;
      this.#restoreInput();
      if (!socket.destroyed) socket.end();
      // With output attached, wait for it to end; otherwise this is the end.
      if (!hasOutput) this.#finish({ kind: 'done' });
    };
    if (!stdin) {
      inputEnded();
      return;
    }
    const onInput = (chunk: Buffer | string) => {
      if (this.#finished || this.#inputDone) return;
      let data = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      if (escape) {
        const r = escape.push(data);
        data = r.data;
        if (data.length && !socket.destroyed) socket.write(data);
        if (r.detached) {
          this.#restoreInput();
          this.#finish({ kind: 'detached' });
        }
        return;
      }
      if (!socket.destroyed && !socket.write(data)) {
        stdin.pause();
        socket.once('drain', () => stdin.resume());
      }
    };
    const onInputEnd = () => inputEnded();
    stdin.on('data', onInput);
    stdin.once('end', onInputEnd);
    stdin.once('error', onInputEnd);
    this.#cleanups.push(() => {
      stdin.off('data', onInput);
      stdin.off('end', onInputEnd);
      stdin.off('error', onInputEnd);
      stdin.pause();
    });
    stdin.resume();
  }

  #finish(end: HijackEnd): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#restoreInput();
    for (const c of this.#cleanups) c();
    this.#resolve(end);
  }

  get outputEnded(): boolean {
    return this.#outputDone;
  }
}
