/**
 * A private berthd for integration tests: its own data root, exec root and socket in a
 * temporary folder, never /var/lib/berth. Cleanup kills only the daemon it started (by PID),
 * unmounts whatever is mounted under its folder and removes the folder, even after a failure.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before } from 'node:test';
import { fileURLToPath } from 'node:url';

/** The project's root: the folder above this file that holds package.json (else the cwd). */
export const projectRoot = (() => {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) return process.cwd();
    dir = up;
  }
  return dir;
})();

/** Compiled sources sit beside compiled tests: <out>/test/helpers -> <out>/src. */
const distRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const daemonMain = join(distRoot, 'src', 'daemon', 'main.js');
export const cliMain = join(distRoot, 'src', 'cli', 'main.js');
export const sharedImages = join(projectRoot, '..', 'shared', 'images');
export const busyboxLayout = join(sharedImages, 'busybox-1.38.0-musl');
export const alpineRootfs = join(sharedImages, 'alpine-minirootfs-3.20.3-x86_64.tar.gz');

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Deletes the host bridges of a daemon's networks (as its networks.json lists them). */
export function removeBridges(dataRoot: string): void {
  let networks: Array<{ bridge?: string }> = [];
  try {
    networks = JSON.parse(readFileSync(join(dataRoot, 'network', 'networks.json'), 'utf8')) as Array<{ bridge?: string }>;
  } catch {
    return;
  }
  for (const n of networks) if (n.bridge) spawnSync('ip', ['link', 'del', n.bridge], { stdio: 'ignore' });
}

export class TestDaemon {
  readonly root: string;
  readonly dataRoot: string;
  readonly execRoot: string;
  readonly socket: string;
  /** The default bridge's device: one per test daemon, removed by cleanup(). */
  readonly bridge = `bt-${randomBytes(4).toString('hex')}`;
  #child: ChildProcess | undefined;
  #log = '';

  private constructor(root: string) {
    this.root = root;
    this.dataRoot = join(root, 'data');
    this.execRoot = join(root, 'run');
    this.socket = join(root, 'run', 'berth.sock');
  }

  static async start(): Promise<TestDaemon> {
    const daemon = new TestDaemon(mkdtempSync(join(tmpdir(), 'berth-test-')));
    await daemon.startProcess();
    return daemon;
  }

  get host(): string {
    return `unix://${this.socket}`;
  }

  get pid(): number | undefined {
    return this.#child?.pid;
  }

  /** The daemon's own log, for failure messages. */
  get log(): string {
    return this.#log;
  }

  /** The environment for a client of this daemon: the docker CLI with a private config. */
  get env(): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = { ...process.env, DOCKER_HOST: this.host, BERTH_HOST: this.host, DOCKER_CONFIG: join(this.root, 'docker-config') };
    delete env['NODE_EXTRA_CA_CERTS'];
    return env;
  }

  async startProcess(): Promise<void> {
    this.#log = '';
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      BERTH_SHIM: process.env['BERTH_SHIM'] ?? join(projectRoot, 'shim', 'berth-shim'),
      BERTH_NATIVE: process.env['BERTH_NATIVE'] ?? join(projectRoot, 'native', 'build', 'berth_native.node'),
    };
    delete env['NODE_EXTRA_CA_CERTS'];
    const child = spawn(process.execPath, [daemonMain, '--data-root', this.dataRoot, '--exec-root', this.execRoot, '--bridge', this.bridge, '--log-level', 'debug'], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env,
    });
    this.#child = child;
    child.stdout!.on('data', (c: Buffer) => (this.#log += c.toString()));
    child.stderr!.on('data', (c: Buffer) => (this.#log += c.toString()));
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      if (child.exitCode !== null) throw new Error(`berthd exited with ${child.exitCode}:\n${this.#log}`);
      if (this.#log.includes('"berthd started"')) return;
      await sleep(10);
    }
    throw new Error(`berthd did not start within 10 s:\n${this.#log}`);
  }

  /** Stops the daemon with a signal and waits for it to exit. */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
    const child = this.#child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return child?.exitCode ?? null;
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    child.kill(signal);
    return exited;
  }

  async restart(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    await this.stop(signal);
    await this.startProcess();
  }

  /**
   * Stops the daemon, then what it started that outlives it (containers keep running without
   * their daemon, by design): each runc container under its runc root, each shim by the pid
   * it wrote. Then unmounts everything under its folder and removes the folder.
   */
  async cleanup(): Promise<void> {
    await this.stop('SIGKILL').catch(() => undefined);
    const runcRoot = join(this.execRoot, 'runc');
    for (const id of listDir(runcRoot)) {
      spawnSync('runc', ['--root', runcRoot, 'kill', '--all', id, 'KILL']);
      spawnSync('runc', ['--root', runcRoot, 'delete', '--force', id]);
    }
    for (const id of listDir(join(this.execRoot, 'shims'))) {
      const pid = Number.parseInt(readIfExists(join(this.execRoot, 'shims', id, 'shim.pid')), 10);
      if (pid > 0) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // Already gone.
        }
      }
    }
    unmountUnder(this.root);
    removeBridges(this.dataRoot);
    rmSync(this.root, { recursive: true, force: true });
  }

  /**
   * Loads the official busybox image (busybox:1.38.0-musl) through the docker CLI, as the
   * tests that run containers need it, and tags it busybox:latest.
   */
  async loadBusybox(): Promise<void> {
    const tar = join(this.root, 'busybox-layout.tar');
    tarOf(busyboxLayout, tar);
    for (const args of [['load', '-i', tar], ['tag', 'busybox:1.38.0-musl', 'busybox:latest']]) {
      const r = await this.docker(args);
      if (r.code !== 0) throw new Error(`docker ${args.join(' ')} failed: ${r.stderr}`);
    }
  }

  /** Runs the docker CLI and fails (with the daemon's recent log) unless it exits 0; its stdout. */
  async dockerOk(...args: string[]): Promise<string> {
    const r = await this.docker(args, { timeoutMs: 30_000 });
    if (r.code !== 0) throw new Error(`docker ${args.join(' ')} failed (${r.code}): ${r.stderr}\n${this.#log.slice(-3000)}`);
    return r.stdout;
  }

  berth(args: string[], opts: { input?: string | Buffer; timeoutMs?: number } = {}): Promise<RunResult> {
    return run(process.execPath, ['--', cliMain, ...args], { env: this.env, ...opts });
  }

  docker(args: string[], opts: { input?: string | Buffer; timeoutMs?: number } = {}): Promise<RunResult> {
    return run('docker', args, { env: this.env, ...opts });
  }
}

function listDir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

function readIfExists(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

/** Unmounts every mount point below `root`, deepest first. */
export function unmountUnder(root: string): void {
  const mounts = readFileSync('/proc/self/mounts', 'utf8')
    .split('\n')
    .map((line) => line.split(' ')[1])
    .filter((p): p is string => !!p && (p === root || p.startsWith(`${root}/`)))
    .map((p) => p.replace(/\\040/g, ' '))
    .sort((a, b) => b.length - a.length);
  for (const m of mounts) spawnSync('umount', ['-l', m]);
}

export function run(
  cmd: string,
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; input?: string | Buffer; timeoutMs?: number } = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: opts.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${cmd} ${args.join(' ')} timed out\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, opts.timeoutMs ?? 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr });
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end(opts.input);
  });
}

/**
 * Runs a shell command line in a pseudo-terminal (util-linux `script`), for `-it` tests.
 * Its stdin stays open until the command ends: `script` ends the session early when its
 * stdin reaches EOF, which would race the command.
 */
export function runInPty(commandLine: string, env: NodeJS.ProcessEnv, timeoutMs = 30_000): Promise<{ status: number | null; stdout: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('script', ['-qec', commandLine, '/dev/null'], { env, stdio: ['pipe', 'pipe', 'inherit'] });
    let stdout = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${commandLine} timed out in its pty; output so far: ${stdout}`));
    }, timeoutMs);
    child.on('error', reject);
    child.on('close', (status) => {
      clearTimeout(timer);
      child.stdin.destroy();
      resolve({ status, stdout });
    });
  });
}

/** Polls `test` until it holds, failing after `ms`. */
export async function until(what: string, test: () => Promise<boolean>, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await test()) return;
    await sleep(50);
  }
  throw new Error(`timed out waiting for ${what}`);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Tars a directory with GNU tar (for `load` of an OCI layout). */
export function tarOf(dir: string, out: string): void {
  const r = spawnSync('tar', ['-C', dir, '-cf', out, '.']);
  if (r.status !== 0) throw new Error(`tar failed: ${r.stderr}`);
}

/**
 * The private berthd of one test file, with busybox loaded: started before its tests, cleaned
 * up after them (it registers node:test's before and after hooks). `docker` runs the docker
 * CLI against it; `ok` fails unless that exits 0, and answers its stdout.
 */
export function daemonWithBusybox(): { readonly daemon: TestDaemon; docker(...args: string[]): Promise<RunResult>; ok(...args: string[]): Promise<string> } {
  let daemon: TestDaemon | undefined;
  before(async () => {
    daemon = await TestDaemon.start();
    await daemon.loadBusybox();
  });
  after(async () => {
    await daemon?.cleanup();
  });
  const started = (): TestDaemon => {
    if (!daemon) throw new Error('the test daemon has not started');
    return daemon;
  };
  return {
    get daemon() {
      return started();
    },
    docker: (...args) => started().docker(args, { timeoutMs: 30_000 }),
    ok: (...args) => started().dockerOk(...args),
  };
}
