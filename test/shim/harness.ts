// Test harness for berth-shim: real runc, a real busybox rootfs, the real binary. Each test
// file makes one ShimEnv (a temp dir with the rootfs, runc's state root and bundles) and
// calls cleanup() in after(), which deletes every container it created and removes the dir.
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

/** The directory holding package.json and shim/, found from this module (dist/ or /tmp) or the cwd. */
export function projectRoot(): string {
  for (const start of [dirname(fileURLToPath(import.meta.url)), process.cwd()]) {
    let dir = start;
    for (;;) {
      if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'shim', 'Makefile'))) return dir;
      const up = dirname(dir);
      if (up === dir) break;
      dir = up;
    }
  }
  throw new Error('cannot find the project root (package.json next to shim/)');
}

/** Builds the shim when its sources are newer (make is a no-op otherwise) and returns its path. */
export function shimBinary(): string {
  const shimDir = join(projectRoot(), 'shim');
  const r = spawnSync('make', ['-s', '-C', shimDir], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`make -C shim failed: ${r.stderr}`);
  return join(shimDir, 'berth-shim');
}

export function runcBinary(): string {
  if (existsSync('/usr/sbin/runc')) return '/usr/sbin/runc';
  for (const dir of (process.env.PATH ?? '').split(':')) {
    if (dir && existsSync(join(dir, 'runc'))) return join(dir, 'runc');
  }
  throw new Error('runc not found in /usr/sbin or on PATH');
}

interface OciManifest { layers: { digest: string; mediaType: string }[] }
interface OciIndex { manifests: { digest: string }[] }

/** Unpacks the official busybox image's single layer into dir. */
function extractBusybox(dir: string): void {
  const image = join(projectRoot(), '..', 'shared', 'images', 'busybox-1.38.0-musl');
  const layout = existsSync(image) ? image : '/work/shared/images/busybox-1.38.0-musl';
  const blob = (digest: string): string => join(layout, 'blobs', ...digest.split(':'));
  const index = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8')) as OciIndex;
  const manifest = JSON.parse(readFileSync(blob(index.manifests[0]!.digest), 'utf8')) as OciManifest;
  mkdirSync(dir, { recursive: true });
  for (const layer of manifest.layers) {
    const r = spawnSync('tar', ['-xzf', blob(layer.digest), '-C', dir], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`tar: ${r.stderr}`);
  }
}

export interface SyncMessage { pid?: number; shimPid?: number; error?: string }

export interface ExitFile { exitCode: number; signal: number; finishedAt: string }

export interface LogEntry { log: string; stream: 'stdout' | 'stderr'; time: string }

export interface ShimOptions {
  id?: string;
  bundle?: string;
  terminal?: boolean;
  stdin?: boolean;
  stdinOnce?: boolean;
  exec?: object;
  logMaxSize?: number;
  logMaxFiles?: number;
}

export interface StartedShim {
  id: string;
  stateDir: string;
  logPath: string;
  sync: SyncMessage;
  /** Exit code of the process the test spawned (not the monitor, which outlives it). */
  launcherCode: number | null;
  /** Milliseconds from spawn to the sync line. */
  syncMs: number;
  stderr: string;
}

type Spec = {
  process: { args: string[]; terminal: boolean; env: string[]; cwd: string; user: object };
  root: { path: string; readonly: boolean };
  hostname?: string;
  linux: { namespaces: { type: string }[] };
};

export class ShimEnv {
  readonly dir: string;
  readonly rootfs: string;
  readonly runcRoot: string;
  readonly shim: string;
  readonly runc: string;
  readonly #template: Spec;
  readonly #containers = new Set<string>();
  readonly #shimPids = new Set<number>();
  #counter = 0;

  constructor() {
    this.shim = shimBinary();
    this.runc = runcBinary();
    this.dir = mkdtempSync(join(tmpdir(), 'berth-shim-test-'));
    try {
      this.rootfs = join(this.dir, 'rootfs');
      extractBusybox(this.rootfs);
      this.runcRoot = join(this.dir, 'runc-root');
      mkdirSync(this.runcRoot);
      const specDir = join(this.dir, 'spec');
      mkdirSync(specDir);
      const r = spawnSync(this.runc, ['spec'], { cwd: specDir, encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`runc spec: ${r.stderr}`);
      this.#template = JSON.parse(readFileSync(join(specDir, 'config.json'), 'utf8')) as Spec;
    } catch (err) {
      rmSync(this.dir, { recursive: true, force: true });
      throw err;
    }
  }

  newId(): string {
    return `shimtest-${process.pid}-${++this.#counter}`;
  }

  /** A bundle running args; pidNamespace false makes the process killable by SIGTERM (no ns init). */
  bundle(args: string[], opts: { terminal?: boolean; pidNamespace?: boolean } = {}): string {
    const dir = join(this.dir, 'bundles', String(++this.#counter));
    mkdirSync(dir, { recursive: true });
    const spec = structuredClone(this.#template);
    spec.process.args = args;
    spec.process.terminal = opts.terminal ?? false;
    spec.root = { path: this.rootfs, readonly: true };
    if (opts.pidNamespace === false) {
      spec.linux.namespaces = spec.linux.namespaces.filter((ns) => ns.type !== 'pid');
    }
    writeFileSync(join(dir, 'config.json'), JSON.stringify(spec));
    return dir;
  }

  /** An exec process description, as `runc exec --process` takes it. */
  process(args: string[], terminal = false): object {
    return { ...structuredClone(this.#template.process), args, terminal };
  }

  shimArgs(opts: ShimOptions): { id: string; stateDir: string; logPath: string; args: string[] } {
    const id = opts.id ?? this.newId();
    const stateDir = join(this.dir, 'state', `${id}-${++this.#counter}`);
    mkdirSync(stateDir, { recursive: true });
    const logPath = join(stateDir, 'container.log');
    const args = ['--id', id, '--state-dir', stateDir, '--runtime', this.runc, '--runtime-root', this.runcRoot,
      '--log-path', logPath];
    if (opts.bundle) args.push('--bundle', opts.bundle);
    if (opts.terminal) args.push('--terminal');
    if (opts.stdin) args.push('--stdin');
    if (opts.stdinOnce) args.push('--stdin-once');
    if (opts.logMaxSize !== undefined) args.push('--log-max-size', String(opts.logMaxSize));
    if (opts.logMaxFiles !== undefined) args.push('--log-max-files', String(opts.logMaxFiles));
    if (opts.exec) {
      const processFile = join(stateDir, 'process.json');
      writeFileSync(processFile, JSON.stringify(opts.exec));
      args.push('--exec', processFile);
    }
    if (!opts.exec) this.#containers.add(id);
    return { id, stateDir, logPath, args };
  }

  /** Runs the shim as the daemon will: sync pipe on fd 3, read to its end. */
  async start(opts: ShimOptions): Promise<StartedShim> {
    const { id, stateDir, logPath, args } = this.shimArgs(opts);
    const started = performance.now();
    const child = spawn(this.shim, args, { stdio: ['ignore', 'ignore', 'pipe', 'pipe'] });
    const syncStream = child.stdio[3] as Readable;
    let syncText = '';
    let syncMs = 0;
    syncStream.setEncoding('utf8');
    syncStream.on('data', (chunk: string) => {
      if (!syncText) syncMs = performance.now() - started;
      syncText += chunk;
    });
    let stderr = '';
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk; });
    const [code] = (await once(child, 'close')) as [number | null];
    const sync = syncText ? (JSON.parse(syncText) as SyncMessage) : {};
    if (sync.shimPid) this.#shimPids.add(sync.shimPid);
    return { id, stateDir, logPath, sync, launcherCode: code, syncMs, stderr };
  }

  trackShim(pid: number): void {
    this.#shimPids.add(pid);
  }

  runcCommand(args: string[]): { status: number | null; stdout: string; stderr: string } {
    const r = spawnSync(this.runc, ['--root', this.runcRoot, ...args], { encoding: 'utf8' });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  }

  runcStart(id: string): void {
    const r = this.runcCommand(['start', id]);
    if (r.status !== 0) throw new Error(`runc start ${id}: ${r.stderr}`);
  }

  /** runc start without blocking the event loop, for tests whose clients must keep reading. */
  async runcStartAsync(id: string): Promise<void> {
    const child = spawn(this.runc, ['--root', this.runcRoot, 'start', id], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk; });
    const [code] = (await once(child, 'close')) as [number | null];
    if (code !== 0) throw new Error(`runc start ${id}: ${stderr}`);
  }

  cleanup(): void {
    for (const id of this.#containers) this.runcCommand(['delete', '-f', id]);
    for (const pid of this.#shimPids) {
      if (isShim(pid)) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone already
        }
      }
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** True when pid is a live berth-shim (so a recycled pid is never signalled). */
export function isShim(pid: number): boolean {
  try {
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    const state = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.[0];
    return cmdline.includes('berth-shim') && state !== 'Z';
  } catch {
    return false;
  }
}

export async function waitFor<T>(what: string, probe: () => T | undefined | false, timeoutMs = 15000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = probe();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

export function readExit(stateDir: string): ExitFile | undefined {
  try {
    return JSON.parse(readFileSync(join(stateDir, 'exit.json'), 'utf8')) as ExitFile;
  } catch {
    return undefined;
  }
}

export function waitExit(stateDir: string, timeoutMs = 15000): Promise<ExitFile> {
  return waitFor(`exit.json in ${stateDir}`, () => readExit(stateDir), timeoutMs);
}

export function readLog(path: string): LogEntry[] {
  if (!existsSync(path)) return [];
  return readFileSync(path, 'utf8').split('\n').filter((l) => l).map((l) => JSON.parse(l) as LogEntry);
}

export interface Frame { stream: number; data: Buffer }

/** Splits Docker's multiplexed stream; throws on a truncated frame. */
export function parseFrames(buf: Buffer): Frame[] {
  const frames: Frame[] = [];
  let off = 0;
  while (off < buf.length) {
    if (buf.length - off < 8) throw new Error(`truncated frame header at ${off}`);
    const stream = buf[off]!;
    const len = buf.readUInt32BE(off + 4);
    if (buf.length - off - 8 < len) throw new Error(`truncated frame payload at ${off}`);
    frames.push({ stream, data: buf.subarray(off + 8, off + 8 + len) });
    off += 8 + len;
  }
  return frames;
}

/** A connection to attach.sock that records everything it receives. */
export class AttachClient {
  readonly socket: Socket;
  readonly #chunks: Buffer[] = [];
  readonly ended: Promise<void>;

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => this.#chunks.push(chunk));
    this.ended = new Promise((resolve, reject) => {
      socket.on('end', () => resolve());
      socket.on('error', reject);
    });
    this.ended.catch(() => undefined);
  }

  static async connect(stateDir: string): Promise<AttachClient> {
    const socket = connect(join(stateDir, 'attach.sock'));
    await once(socket, 'connect');
    return new AttachClient(socket);
  }

  data(): Buffer {
    return Buffer.concat(this.#chunks);
  }

  text(): string {
    return this.data().toString('utf8');
  }

  close(): void {
    this.socket.destroy();
  }
}

/** Sends one line to control.sock and returns the reply line. */
export async function control(stateDir: string, line: string): Promise<string> {
  const socket = connect(join(stateDir, 'control.sock'));
  try {
    await once(socket, 'connect');
    socket.setEncoding('utf8');
    let reply = '';
    const done = new Promise<string>((resolve, reject) => {
      socket.on('data', (chunk: string) => {
        reply += chunk;
        if (reply.includes('\n')) resolve(reply.slice(0, reply.indexOf('\n')));
      });
      socket.on('error', reject);
      socket.on('end', () => resolve(reply));
    });
    socket.write(`${line}\n`);
    return await done;
  } finally {
    socket.destroy();
  }
}

/** VmRSS of a process in KiB. */
export function rssKiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = /^VmRSS:\s+(\d+) kB/m.exec(status);
  if (!m) throw new Error(`no VmRSS for ${pid}`);
  return Number(m[1]);
}
