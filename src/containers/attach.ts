/**
 * Attach: joins a client's hijacked connection to the shim's attach socket. Output flows out
 * as the shim frames it (raw with a TTY, Docker's 8-byte multiplexing without); stdin flows
 * in, watched for the detach keys.
 */
import type { Duplex } from 'node:stream';
import type { Socket } from 'node:net';
import { InvalidArgument } from '../errors/errors.js';

export interface AttachOptions {
  stdin: boolean;
  stdout: boolean;
  stderr: boolean;
  tty: boolean;
  /** The key sequence that detaches (ctrl-p ctrl-q by default); empty disables it. */
  detachKeys: Buffer;
  /**
   * Leave the client open when the output ends: the caller ends it once the exit is recorded
   * (an exec's client asks for the exit code as soon as it sees the end).
   */
  keepClientOpen?: boolean;
}

/** Docker's --detach-keys: `ctrl-p,ctrl-q`, `a`, `ctrl-@`, `ctrl-[` ... */
export function parseDetachKeys(spec: string | null | undefined): Buffer {
  if (spec === null || spec === undefined || spec === '') return Buffer.from([16, 17]);
  const bytes: number[] = [];
  for (const key of spec.split(',')) {
    const k = key.trim();
    if (k.length === 1) {
      bytes.push(k.charCodeAt(0));
      continue;
    }
    const m = /^ctrl-(.)$/i.exec(k);
    if (!m) throw new InvalidArgument(`Invalid detach keys (${spec}) provided`);
    const c = m[1]!.toLowerCase();
    if (c >= 'a' && c <= 'z') bytes.push(c.charCodeAt(0) - 96);
    else if (c === '@') bytes.push(0);
    else if (c === '[') bytes.push(27);
    else if (c === '\\') bytes.push(28);
    else if (c === ']') bytes.push(29);
    else if (c === '^') bytes.push(30);
    else if (c === '_') bytes.push(31);
    else throw new InvalidArgument(`Invalid detach keys (${spec}) provided`);
  }
  return Buffer.from(bytes);
}

/**
 * Pipes `client` and `shim` together until the shim ends (the container exited), the client
 * leaves, or the client types the detach keys. Resolves with how it ended.
 */
export function bridge(client: Duplex, shim: Socket, opts: AttachOptions): Promise<'exited' | 'detached' | 'client-gone'> {
  return new Promise((resolve) => {
    let done = false;
    const finish = (how: 'exited' | 'detached' | 'client-gone') => {
      if (done) return;
      done = true;
      resolve(how);
    };
    // Output: the shim's bytes, filtered to the streams the client asked for.
    const filter = opts.tty || (opts.stdout && opts.stderr) ? undefined : new FrameFilter(opts.stdout, opts.stderr);
    shim.on('data', (chunk: Buffer) => {
      const out = opts.tty ? (opts.stdout ? chunk : undefined) : filter ? filter.push(chunk) : chunk;
      if (out && out.length && !client.destroyed && !client.write(out)) {
        shim.pause();
        client.once('drain', () => shim.resume());
      }
    });
    shim.on('end', () => {
      if (!opts.keepClientOpen) client.end();
      finish('exited');
    });
    shim.on('error', () => {
      client.destroy();
      finish('exited');
    });
    // Input: stdin, unless the client did not ask for it.
    let matched = 0;
    client.on('data', (chunk: Buffer) => {
      if (!opts.stdin) return;
      if (opts.detachKeys.length > 0) {
        const pass: number[] = [];
        for (const byte of chunk) {
          if (byte === opts.detachKeys[matched]) {
            matched++;
            if (matched === opts.detachKeys.length) {
              shim.destroy();
              client.end();
              finish('detached');
              return;
            }
            continue;
          }
          if (matched > 0) pass.push(...opts.detachKeys.subarray(0, matched));
          matched = 0;
          pass.push(byte);
        }
        if (pass.length) shim.write(Buffer.from(pass));
        return;
      }
      shim.write(chunk);
    });
    client.on('end', () => {
      // The client's stdin ended: half-close towards the shim (stdin-once closes the
      // container's stdin), and keep sending output until the container ends.
      if (opts.stdin) shim.end();
    });
    client.on('close', () => {
      if (!done) {
        shim.destroy();
        finish('client-gone');
      }
    });
    client.on('error', () => undefined);
    // A socket paused while its request body was read stays paused until told.
    client.resume();
  });
}

/** Keeps only the frames of the wanted streams from Docker's multiplexed output. */
class FrameFilter {
  readonly #stdout: boolean;
  readonly #stderr: boolean;
  #pending: Buffer = Buffer.alloc(0);

  constructor(stdout: boolean, stderr: boolean) {
    this.#stdout = stdout;
    this.#stderr = stderr;
  }

  push(chunk: Buffer): Buffer {
    this.#pending = this.#pending.length ? Buffer.concat([this.#pending, chunk]) : chunk;
    const out: Buffer[] = [];
    while (this.#pending.length >= 8) {
      const size = this.#pending.readUInt32BE(4);
      if (this.#pending.length < 8 + size) break;
      const stream = this.#pending[0];
      if ((stream === 1 && this.#stdout) || (stream === 2 && this.#stderr)) out.push(this.#pending.subarray(0, 8 + size));
      this.#pending = this.#pending.subarray(8 + size);
    }
    return Buffer.concat(out);
  }
}
