/**
 * The daemon's side of berth-shim (see shim/README.md): launching one, talking to its control
 * and attach sockets, and reading the exit status it leaves.
 */
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { existsSync } from 'node:fs';
import { Unavailable, errnoCode } from '../errors/errors.js';

export interface ShimOptions {
  id: string;
  /** The bundle (config.json) for a container; absent for an exec. */
  bundle?: string;
  /** Where the shim keeps its sockets, pid and exit.json. */
  stateDir: string;
  runtime: string;
  runtimeRoot: string;
  logPath: string;
  logMaxSize?: number;
  logMaxFiles?: number;
  terminal: boolean;
  stdin: boolean;
  stdinOnce: boolean;
  /** Hold the output until the first attach client (an exec that a client will attach to). */
  waitAttach?: boolean;
  /** A process.json to `runc exec`, instead of creating the container. */
  execProcess?: string;
}

export interface ExitStatus {
  exitCode: number;
  signal: number;
  finishedAt: string;
}

/** The shim binary: $BERTH_SHIM, or shim/berth-shim of this project. */
export function findShim(): string {
  const fromEnv = process.env['BERTH_SHIM'];
  if (fromEnv) return fromEnv;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const candidate = join(dir, 'shim', 'berth-shim');
    if (existsSync(candidate)) return candidate;
    dir = dirname(dir);
  }
  return 'berth-shim';
}

/**
 * Starts a shim and waits until runc create (or exec) is done. Resolves with the container
 * process's pid; rejects with runc's own message when it failed.
 */
export function launchShim(shimPath: string, opts: ShimOptions): Promise<{ pid: number; shimPid: number }> {
  const args = ['--id', opts.id, '--state-dir', opts.stateDir, '--runtime', opts.runtime, '--runtime-root', opts.runtimeRoot, '--log-path', opts.logPath];
  if (opts.bundle) args.push('--bundle', opts.bundle);
  if (opts.logMaxSize !== undefined) args.push('--log-max-size', String(opts.logMaxSize));
  if (opts.logMaxFiles !== undefined) args.push('--log-max-files', String(opts.logMaxFiles));
  if (opts.terminal) args.push('--terminal');
  if (opts.stdin) args.push('--stdin');
  if (opts.stdinOnce) args.push('--stdin-once');
  if (opts.waitAttach) args.push('--wait-attach');
  if (opts.execProcess) args.push('--exec', opts.execProcess);
  return new Promise((resolve, reject) => {
    const child = spawn(shimPath, args, { stdio: ['ignore', 'ignore', 'pipe', 'pipe'], detached: true });
    let sync = '';
    let stderr = '';
    child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
    child.stderr!.on('error', () => undefined);
    const pipe = child.stdio[3] as NodeJS.ReadableStream;
    let settled = false;
    // The answer is one line: act on it at once, without waiting for the pipe to close.
    const settle = () => {
      if (settled) return;
      const nl = sync.indexOf('\n');
      if (nl < 0) return;
      settled = true;
      child.unref();
      (pipe as unknown as { destroy(): void }).destroy();
      const line = sync.slice(0, nl).trim();
      try {
        const msg = JSON.parse(line) as { pid?: number; shimPid?: number; error?: string };
        if (msg.error !== undefined || !msg.pid) reject(new Unavailable(msg.error ?? `berth-shim: ${line}`));
        else resolve({ pid: msg.pid, shimPid: msg.shimPid ?? 0 });
      } catch {
        reject(new Unavailable(`berth-shim: unreadable sync message: ${line}`));
      }
    };
    pipe.on('data', (c: Buffer) => {
      sync += c.toString();
      settle();
    });
    child.on('error', (err) => reject(new Unavailable(`starting berth-shim (${shimPath}): ${err.message}`, { cause: err })));
    pipe.on('end', () => {
      if (settled) return;
      sync += '\n';
      if (sync.trim() === '') {
        settled = true;
        reject(new Unavailable(`berth-shim exited without a word${stderr ? `: ${stderr.trim()}` : ''}`));
        return;
      }
      settle();
    });
  });
}

/** Sends one line to the shim's control socket: `resize R C`, `close-stdin`, `signal N`. */
export function controlShim(stateDir: string, line: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = connect(join(stateDir, 'control.sock'));
    socket.on('error', (err) => reject(new Unavailable(`berth-shim control: ${err.message}`, { cause: err })));
    socket.on('connect', () => {
      socket.end(`${line}\n`);
    });
    socket.on('close', () => resolve());
  });
}

/** Connects to the shim's attach socket: output comes out (framed without a TTY), stdin goes in. */
export function connectAttach(stateDir: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(join(stateDir, 'attach.sock'));
    socket.once('error', (err) => reject(new Unavailable(`berth-shim attach: ${err.message}`, { cause: err })));
    socket.once('connect', () => {
      socket.removeAllListeners('error');
      resolve(socket);
    });
  });
}

export async function readExit(stateDir: string): Promise<ExitStatus | undefined> {
  try {
    return JSON.parse(await readFile(join(stateDir, 'exit.json'), 'utf8')) as ExitStatus;
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return undefined;
    throw err;
  }
}

export async function readShimPid(stateDir: string): Promise<number | undefined> {
  try {
    const pid = Number.parseInt(await readFile(join(stateDir, 'shim.pid'), 'utf8'), 10);
    return pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}
