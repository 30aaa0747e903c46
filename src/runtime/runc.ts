/**
 * runc, the OCI runtime: the calls the daemon makes itself. Creating a container or an exec
 * goes through berth-shim (src/runtime/shim.ts), which holds its stdio.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
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

  start(id: string): Promise<string> {
    return this.#run(['start', id]);
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

/** runc logs errors as `time="…" level=error msg="…"`: keep just the message. */
export function runcMessage(stderr: string): string {
  const lines = stderr.trim().split('\n').filter(Boolean);
  const msgs = lines.map((l) => /msg="((?:[^"\\]|\\.)*)"/.exec(l)?.[1]?.replace(/\\"/g, '"') ?? l);
  return msgs.at(-1) ?? '';
}
