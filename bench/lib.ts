/**
 * What the benchmarks share: where the build is, a private berthd in a temporary folder
 * (its own data root, exec root and socket; stopped by PID, folder removed), timing loops
 * (hyperfine when it is installed, a node loop otherwise), medians and the RSS of a process.
 *
 * Benchmarks are scripts, not tests: run them from the project root after a build, e.g.
 * `npm run build && node dist/bench/cli-list.js`.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { removeBridges } from '../test/helpers/berthd.js';

/** The build these scripts belong to: <out>/bench/lib.js -> <out>. */
export const distRoot = join(dirname(fileURLToPath(import.meta.url)), '..');
export const cliMain = join(distRoot, 'src', 'cli', 'main.js');
export const daemonMain = join(distRoot, 'src', 'daemon', 'main.js');

/** The project: the folder above the build that holds package.json, else the cwd. */
export const projectRoot = (() => {
  for (let dir = distRoot; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    if (dirname(dir) === dir) return process.cwd();
  }
})();
export const sharedImages = join(projectRoot, '..', 'shared', 'images');
export const alpineRootfs = join(sharedImages, 'alpine-minirootfs-3.20.3-x86_64.tar.gz');
export const busyboxLayout = join(sharedImages, 'busybox-1.38.0-musl');

/** The environment of a client: no extra CA bundle (bin/berth drops it too; it costs ~60 ms). */
export function clientEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...extra };
  delete env['NODE_EXTRA_CA_CERTS'];
  return env;
}

/** `berth` as bin/berth runs it, for a given socket. */
export function berthCommand(socket: string, ...args: string[]): string[] {
  return [process.execPath, '--no-warnings', '--', cliMain, '-H', `unix://${socket}`, ...args];
}

export interface Berthd {
  readonly pid: number;
  readonly root: string;
  readonly dataRoot: string;
  readonly socket: string;
  /** Stops the daemon by its PID (SIGTERM, then SIGKILL) and removes its folder. */
  stop(): Promise<void>;
}

/**
 * Starts berthd in a new temporary folder and resolves once /_ping answers, with the time
 * that took (ms, from spawn). The log level is berthd's default, as a user runs it. Node
 * flags for the daemon (to try e.g. --max-semi-space-size) come from `nodeFlags` or
 * $BERTHD_NODE_FLAGS.
 */
export async function startBerthd(opts: { timeoutMs?: number; nodeFlags?: string[] } = {}): Promise<Berthd & { startMs: number }> {
  const root = mkdtempSync(join(tmpdir(), 'berth-bench-'));
  const dataRoot = join(root, 'data');
  const socket = join(root, 'run', 'berth.sock');
  const started = process.hrtime.bigint();
  const nodeFlags = opts.nodeFlags ?? (process.env['BERTHD_NODE_FLAGS'] ?? '').split(' ').filter(Boolean);
  // A bridge of its own, removed at stop.
  const bridge = `bb${process.pid}`.slice(0, 15);
  const child = spawn(process.execPath, [...nodeFlags, daemonMain, '--data-root', dataRoot, '--exec-root', join(root, 'run'), '--bridge', bridge], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: clientEnv(),
  });
  let log = '';
  child.stderr!.on('data', (c: Buffer) => (log += c.toString()));
  const deadline = Date.now() + (opts.timeoutMs ?? 10_000);
  for (;;) {
    if (child.exitCode !== null) throw new Error(`berthd exited with ${child.exitCode}: ${log}`);
    if (Date.now() > deadline) {
      await stopChild(child);
      throw new Error(`berthd did not answer /_ping within ${opts.timeoutMs ?? 10_000} ms: ${log}`);
    }
    if ((await ping(socket)) === 200) break;
    await sleep(1);
  }
  const startMs = Number(process.hrtime.bigint() - started) / 1e6;
  return {
    pid: child.pid!,
    root,
    dataRoot,
    socket,
    startMs,
    stop: async () => {
      await stopChild(child);
      unmountUnder(root);
      removeBridges(dataRoot);
      rmSync(root, { recursive: true, force: true });
    },
  };
}

/** The private dockerd's bridge address: a small subnet, used on this host only. */
const DOCKERD_BIP = '172.31.254.1/24';

/** Whether dockerd is installed here. */
export function hasDockerd(): boolean {
  return probe(['dockerd', '--version']).status === 0;
}

/**
 * A private dockerd for comparisons: its own data root, exec root and socket in a temporary
 * folder; its containers get a veth on docker0 (removed at stop, unless it was there before)
 * but no iptables rules, NAT or forwarding, as berthd's. `pids` are dockerd and the
 * containerd it starts.
 */
export async function startDockerd(): Promise<{ pid: number; socket: string; startMs: number; pids(): number[]; stop(): Promise<void> }> {
  const root = mkdtempSync(join(tmpdir(), 'dockerd-bench-'));
  const socket = join(root, 'docker.sock');
  const started = process.hrtime.bigint();
  const child = spawn(
    'dockerd',
    [
      // docker0 with an address and no NAT, forwarding or firewall rules: containers get a
      // veth and an address, as on berthd, and nothing is routed beyond the host.
      '--iptables=false', '--ip-masq=false', '--ip-forward=false', '--bip', DOCKERD_BIP,
      '--data-root', join(root, 'data'), '--exec-root', join(root, 'exec'), '--pidfile', join(root, 'docker.pid'),
      '-H', `unix://${socket}`,
    ],
    { stdio: 'ignore' },
  );
  const hadDocker0 = existsSync('/sys/class/net/docker0');
  const stop = async () => {
    await stopChild(child);
    unmountUnder(root);
    if (!hadDocker0) spawnSync('ip', ['link', 'del', 'docker0'], { stdio: 'ignore' });
    rmSync(root, { recursive: true, force: true });
  };
  const deadline = Date.now() + 30_000;
  while ((await ping(socket)) !== 200) {
    if (child.exitCode !== null || Date.now() > deadline) {
      await stop();
      throw new Error(`dockerd did not answer /_ping (exit ${child.exitCode})`);
    }
    await sleep(1);
  }
  const startMs = Number(process.hrtime.bigint() - started) / 1e6;
  const pids = () => {
    const children = probe(['pgrep', '-P', String(child.pid)]).stdout.trim().split('\n').filter(Boolean).map(Number);
    return [child.pid!, ...children];
  };
  return { pid: child.pid!, socket, startMs, pids, stop };
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}

function unmountUnder(root: string): void {
  const mounts = readFileSync('/proc/self/mounts', 'utf8')
    .split('\n')
    .map((line) => line.split(' ')[1])
    .filter((p): p is string => !!p && (p === root || p.startsWith(`${root}/`)))
    .sort((a, b) => b.length - a.length);
  for (const m of mounts) spawnSync('umount', ['-l', m]);
}

/** GET /_ping on a unix socket: the status, or 0 when nothing answers (yet). */
export function ping(socket: string): Promise<number> {
  return new Promise((resolve) => {
    const req = request({ socketPath: socket, path: '/_ping', method: 'GET' }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', () => resolve(0));
    req.end();
  });
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Resident set size of a process, in MiB (VmRSS from /proc). */
export function rssMiB(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]) / 1024;
}

export function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

export function percentile(values: number[], p: number): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}

export interface Timing {
  name: string;
  /** Wall times in ms, one a run. */
  times: number[];
  median: number;
  /** Mean user + system CPU time in ms (hyperfine only): steadier than wall time on a busy host. */
  cpu?: number;
}

export function hasHyperfine(): boolean {
  return spawnSync('hyperfine', ['--version']).status === 0;
}

/**
 * Times commands (argv arrays, run without a shell). With hyperfine: `hyperfine -N` with
 * warm-up runs, its per-run times taken from its JSON export. Without: a node loop of
 * spawnSync calls. Every command must succeed.
 */
export function timeCommands(
  commands: Array<{ name: string; argv: string[]; env?: NodeJS.ProcessEnv }>,
  opts: { runs?: number; warmup?: number; useHyperfine?: boolean } = {},
): Timing[] {
  const runs = opts.runs ?? 30;
  const warmup = opts.warmup ?? 3;
  const useHyperfine = opts.useHyperfine ?? hasHyperfine();
  return commands.map(({ name, argv, env }) => {
    if (useHyperfine) {
      const out = join(mkdtempSync(join(tmpdir(), 'berth-hyperfine-')), 'result.json');
      const r = spawnSync(
        'hyperfine',
        ['-N', '--style', 'none', '--warmup', String(warmup), '--runs', String(runs), '--export-json', out, argv.map(shellQuote).join(' ')],
        { env: env ?? clientEnv(), encoding: 'utf8' },
      );
      if (r.status !== 0) throw new Error(`hyperfine failed for ${name}: ${r.stderr}`);
      const result = JSON.parse(readFileSync(out, 'utf8')) as { results: Array<{ times: number[]; user: number; system: number }> };
      rmSync(dirname(out), { recursive: true, force: true });
      const first = result.results[0]!;
      const times = first.times.map((t) => t * 1000);
      return { name, times, median: median(times), cpu: (first.user + first.system) * 1000 };
    }
    const times: number[] = [];
    for (let i = 0; i < warmup + runs; i++) {
      const start = process.hrtime.bigint();
      const r = spawnSync(argv[0]!, argv.slice(1), { env: env ?? clientEnv(), stdio: ['ignore', 'ignore', 'pipe'] });
      const ms = Number(process.hrtime.bigint() - start) / 1e6;
      if (r.status !== 0) throw new Error(`${name} failed (${r.status}): ${r.stderr}`);
      if (i >= warmup) times.push(ms);
    }
    return { name, times, median: median(times) };
  });
}

/** For hyperfine's command line (it splits it itself with -N): quote what needs it. */
function shellQuote(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}

/** A table of timings with each one's ratio to the first. */
export function printTimings(title: string, timings: Timing[]): void {
  const base = timings[0]!.median;
  console.log(`\n${title}`);
  const width = Math.max(...timings.map((t) => t.name.length));
  const cpu = timings.every((t) => t.cpu !== undefined);
  console.log(`  ${'command'.padEnd(width)}   median     p90   ratio${cpu ? '   cpu (user+sys)' : ''}`);
  for (const t of timings) {
    console.log(
      `  ${t.name.padEnd(width)}  ${t.median.toFixed(1).padStart(6)} ms ${percentile(t.times, 90).toFixed(1).padStart(6)}  ${(t.median / base).toFixed(2).padStart(5)}x` +
        (cpu ? `   ${t.cpu!.toFixed(1).padStart(6)} ms` : ''),
    );
  }
}

/** Runs a command once and returns its exit status and output (for feature probes). */
export function probe(argv: string[], env?: NodeJS.ProcessEnv): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(argv[0]!, argv.slice(1), { env: env ?? clientEnv(), encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** A flag's value from argv (`--runs 20` or `--runs=20`). */
export function flag(name: string, fallback?: string): string | undefined {
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === `--${name}`) return argv[i + 1];
    if (argv[i]!.startsWith(`--${name}=`)) return argv[i]!.slice(name.length + 3);
  }
  return fallback;
}
