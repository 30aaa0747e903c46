/**
 * runc, the OCI runtime: the calls the daemon makes itself. Creating a container or an exec
 * goes through berth-shim (src/runtime/shim.ts), which holds its stdio.
 */
import { execFile } from 'node:child_process';
import { constants as fsConstants, existsSync, openSync, unlinkSync } from 'node:fs';
import { Socket } from 'node:net';
import { join } from 'node:path';
import { NotFound, Unavailable } from '../errors/errors.js';

export interface RuncState {
  id: string;
  pid: number;
  status: 'creating' | 'created' | 'running' | 'paused' | 'stopped';
  bundle: string;
}

/** The runc binary: $BERTH_RUNC, or the first of the usual places. */
export function findRunc(): string {
  const fromEnv = process.env['BERTH_RUNC'];
  if (fromEnv) return fromEnv;
  for (const p of ['/usr/bin/runc', '/usr/sbin/runc', '/usr/local/bin/runc', '/usr/local/sbin/runc']) {
    if (existsSync(p)) return p;
  }
  return 'runc';
}

export class Runc {
  readonly binary: string;
  /** runc's state directory (--root), private to this daemon. */
  readonly root: string;

  constructor(root: string, binary = findRunc()) {
    this.root = root;
    this.binary = binary;
  }

  /**
   * What `runc start` does, without starting another process (a Go binary's start is ~10 ms,
   * on the path of every `run`): open the container's exec fifo, on whose other end runc's
   * init waits, read its byte, remove the fifo. Falls back to `runc start` when the fifo is
   * not where runc 1.x keeps it.
   */
  async start(id: string): Promise<void> {
    const fifo = join(this.root, id, 'exec.fifo');
    if (!existsSync(fifo)) {
      await this.#run(['start', id]);
      return;
    }
    // The init opens its end just after `runc create` returns: until it has, a non-blocking
    // read sees no writer and ends at once, so try again for a while.
    for (let attempt = 0; attempt < 2000; attempt++) {
      const data = await readFifoOnce(fifo);
      if (data.length > 0) {
        unlinkSync(fifo);
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    throw new Unavailable(`runc start ${id}: the container's init did not answer`);
  }

  async kill(id: string, signal: number | string, all = false): Promise<void> {
    await this.#run(['kill', ...(all ? ['--all'] : []), id, String(signal)]);
  }

  async delete(id: string, force = false): Promise<void> {
    try {
      await this.#run(['delete', ...(force ? ['--force'] : []), id]);
    } catch (err) {
      if (err instanceof NotFound) return;
      throw err;
    }
  }

  async state(id: string): Promise<RuncState | undefined> {
    try {
      return JSON.parse(await this.#run(['state', id])) as RuncState;
    } catch (err) {
      if (err instanceof NotFound) return undefined;
      throw err;
    }
  }

  async pause(id: string): Promise<void> {
    await this.#run(['pause', id]);
  }

  async resume(id: string): Promise<void> {
    await this.#run(['resume', id]);
  }

  /** The host pids of every process in the container. */
  async pids(id: string): Promise<number[]> {
    return JSON.parse(await this.#run(['ps', '--format', 'json', id])) as number[];
  }

  /** Changes resources of a running container (runc update with a linux.resources JSON). */
  async update(id: string, resources: object): Promise<void> {
    await this.#run(['update', '--resources', '-', id], JSON.stringify(resources));
  }

  #run(args: string[], input?: string): Promise<string> {
    return new Promise((resolve, reject) => {
      const child = execFile(this.binary, ['--root', this.root, ...args], { maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
        if (!err) {
          resolve(stdout);
          return;
        }
        const message = runcMessage(stderr) || err.message;
        if (/does not exist|not found|no such file/i.test(message) && /container/i.test(message)) {
          reject(new NotFound(`runc ${args[0]}: ${message}`));
        } else reject(new Unavailable(`runc ${args[0]}: ${message}`, { cause: err }));
      });
      if (input !== undefined) child.stdin?.end(input);
    });
  }
}

/**
 * Opens a fifo without blocking (an init that died must not leave an open waiting for ever)
 * and reads what its writer sends until it closes: empty when no writer was there.
 */
function readFifoOnce(path: string): Promise<Buffer> {
  let fd: number;
  try {
    fd = openSync(path, fsConstants.O_RDONLY | fsConstants.O_NONBLOCK);
  } catch (err) {
    return Promise.reject(new Unavailable(`opening ${path}: ${(err as Error).message}`, { cause: err }));
  }
  return new Promise((resolve, reject) => {
    const pipe = new Socket({ fd, readable: true, writable: false });
    const chunks: Buffer[] = [];
    pipe.on('data', (c: Buffer) => chunks.push(c));
    pipe.on('error', (err) => reject(new Unavailable(`reading ${path}: ${err.message}`, { cause: err })));
    pipe.on('end', () => {
      pipe.destroy();
      resolve(Buffer.concat(chunks));
    });
  });
}

/** runc logs errors as `time="…" level=error msg="…"`: keep just the message. */
export function runcMessage(stderr: string): string {
  const lines = stderr.trim().split('\n').filter(Boolean);
  const msgs = lines.map((l) => /msg="((?:[^"\\]|\\.)*)"/.exec(l)?.[1]?.replace(/\\"/g, '"') ?? l);
  return msgs.at(-1) ?? '';
}
