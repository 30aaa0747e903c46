/**
 * Containers: `run --rm busybox true` and `run -d` through berth's CLI and the docker CLI on
 * berthd (and on a private dockerd with --with-dockerd), raw `runc run` as the floor; 50
 * concurrent `run -d`; the memory each running container costs (its berth-shim's PSS); and
 * where the time of one run goes, request by request.
 *
 *   node dist/bench/container-run.js [--runs 20] [--warmup 3] [--concurrent 50] [--with-dockerd]
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { berthCommand, busyboxLayout, clientEnv, flag, hasDockerd, hasHyperfine, printTimings, probe, startBerthd, startDockerd, timeCommands } from './lib.js';

const runs = Number(flag('runs', '20'));
const warmup = Number(flag('warmup', '3'));
const concurrent = Number(flag('concurrent', '50'));
const busyboxLayer = join(busyboxLayout, 'blobs', 'sha256', '5c3b447848a98e48dce106cb3e6acbd4fb6f9b26ee778798137349ce01f4d3c1');

const daemon = await startBerthd();
const dockerd = process.argv.includes('--with-dockerd') && hasDockerd() ? await startDockerd().catch(() => undefined) : undefined;
const bundle = join(tmpdir(), `berth-bench-runc-${process.pid}`);
try {
  const berth = (...args: string[]) => berthCommand(daemon.socket, ...args);
  const must = (argv: string[], env?: NodeJS.ProcessEnv) => {
    const r = probe(argv, env);
    if (r.status !== 0) throw new Error(`${argv.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };
  must(berth('load', '-q', '-i', busyboxLayout));
  must(berth('tag', 'busybox:1.38.0-musl', 'busybox:latest'));
  const dockerEnv = clientEnv({ DOCKER_CONFIG: join(daemon.root, 'docker-config') });
  const docker = (host: string, ...args: string[]) => ({ argv: ['docker', '-H', host, ...args], env: dockerEnv });
  const berthHost = `unix://${daemon.socket}`;
  const dockerdHost = dockerd ? `unix://${dockerd.socket}` : undefined;
  if (dockerdHost) must(['docker', '-H', dockerdHost, 'import', '-c', 'CMD ["sh"]', busyboxLayer, 'busybox:latest'], dockerEnv);

  // The floor: runc run of the same rootfs with runc's default spec.
  mkdirSync(join(bundle, 'rootfs'), { recursive: true });
  spawnSync('tar', ['-xzf', busyboxLayer, '-C', join(bundle, 'rootfs')]);
  spawnSync('runc', ['spec'], { cwd: bundle });
  const spec = JSON.parse(readFileSync(join(bundle, 'config.json'), 'utf8')) as { process: { args: string[]; terminal: boolean } };
  spec.process.args = ['true'];
  spec.process.terminal = false;
  writeFileSync(join(bundle, 'config.json'), JSON.stringify(spec));
  let n = 0;
  const runcRun = { name: 'runc run (floor)', argv: ['sh', '-c', `runc --root ${bundle}/state run -b ${bundle} bench-$$-${n++} >/dev/null`] };

  console.log(`${hasHyperfine() ? 'hyperfine -N' : 'node timing loop'}, ${runs} runs after ${warmup} warm-up`);
  const runRm = [
    { name: 'berth run --rm busybox true', argv: berth('run', '--rm', 'busybox', 'true') },
    { name: 'docker run --rm (-> berthd)', ...docker(berthHost, 'run', '--rm', 'busybox', 'true') },
    ...(dockerdHost ? [{ name: 'docker run --rm (-> dockerd)', ...docker(dockerdHost, 'run', '--rm', 'busybox', 'true') }] : []),
    runcRun,
  ];
  printTimings('run --rm busybox true (ratio to berth)', timeCommands(runRm, { runs, warmup }));

  const runD = [
    { name: 'berth run -d busybox sleep 600', argv: berth('run', '-d', 'busybox', 'sleep', '600') },
    { name: 'docker run -d (-> berthd)', ...docker(berthHost, 'run', '-d', 'busybox', 'sleep', '600') },
    ...(dockerdHost ? [{ name: 'docker run -d (-> dockerd)', ...docker(dockerdHost, 'run', '-d', 'busybox', 'sleep', '600') }] : []),
  ];
  printTimings('run -d (ratio to berth)', timeCommands(runD, { runs, warmup }));
  removeAll(berthHost);
  if (dockerdHost) removeAll(dockerdHost);

  // Many at once.
  const burst = async (argvOf: (i: number) => string[], env?: NodeJS.ProcessEnv) => {
    const start = process.hrtime.bigint();
    await Promise.all(
      Array.from({ length: concurrent }, (_, i) => {
        const argv = argvOf(i);
        return new Promise<void>((resolve, reject) => {
          const child = spawn(argv[0]!, argv.slice(1), { env: env ?? clientEnv(), stdio: ['ignore', 'ignore', 'pipe'] });
          let err = '';
          child.stderr.on('data', (c: Buffer) => (err += c.toString()));
          child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${argv.join(' ')}: ${err}`))));
        });
      }),
    );
    return Number(process.hrtime.bigint() - start) / 1e6;
  };
  console.log(`\n${concurrent} concurrent run -d busybox sleep 600`);
  const berthBurst = await burst(() => berth('run', '-d', 'busybox', 'sleep', '600'));
  console.log(`  berth CLI -> berthd         ${(berthBurst / 1000).toFixed(2)} s`);

  // Memory: each running container's shim (PSS, so shared pages are split fairly).
  const shims = shimPids(join(daemon.root, 'run', 'shims'));
  const pss = shims.map(pssKiB);
  const avg = pss.reduce((a, b) => a + b, 0) / Math.max(1, pss.length);
  console.log(`\nper running container: berth-shim PSS ${(avg / 1024).toFixed(2)} MiB (mean of ${pss.length}), RSS ${(shims.map(rssKiB).reduce((a, b) => a + b, 0) / Math.max(1, shims.length) / 1024).toFixed(2)} MiB`);
  console.log(`berthd RSS with ${shims.length} containers: ${(rssKiB(daemon.pid) / 1024).toFixed(1)} MiB`);
  removeAll(berthHost);
  if (dockerdHost) {
    const dockerBurst = await burst(() => ['docker', '-H', dockerdHost, 'run', '-d', 'busybox', 'sleep', '600'], dockerEnv);
    console.log(`  docker CLI -> dockerd       ${(dockerBurst / 1000).toFixed(2)} s (${(dockerBurst / berthBurst).toFixed(2)}x berth)`);
    removeAll(dockerdHost);
  }

  // Where one run's time goes: the API calls of `docker run --rm`, in order, timed here.
  console.log('\nwhere the time of one `run --rm busybox true` goes (API calls, ms)');
  for (let i = 0; i < 3; i++) {
    const t0 = performance.now();
    const { Id } = JSON.parse(await api(daemon.socket, 'POST', '/containers/create', { Image: 'busybox', Cmd: ['true'], HostConfig: { AutoRemove: true } })) as { Id: string };
    const t1 = performance.now();
    const removed = api(daemon.socket, 'POST', `/containers/${Id}/wait?condition=removed`);
    await api(daemon.socket, 'POST', `/containers/${Id}/start`);
    const t2 = performance.now();
    await removed;
    const t3 = performance.now();
    console.log(`  create ${(t1 - t0).toFixed(1)}  start (mount, spec, shim + runc create, runc start) ${(t2 - t1).toFixed(1)}  exit to removed ${(t3 - t2).toFixed(1)}  total ${(t3 - t0).toFixed(1)}`);
  }
} finally {
  removeAllQuiet(`unix://${daemon.socket}`);
  await daemon.stop();
  if (dockerd) {
    removeAllQuiet(`unix://${dockerd.socket}`);
    await dockerd.stop();
  }
  rmSync(bundle, { recursive: true, force: true });
}

function removeAll(host: string): void {
  const ids = spawnSync('docker', ['-H', host, 'ps', '-aq'], { env: clientEnv(), encoding: 'utf8' }).stdout.trim().split('\n').filter(Boolean);
  if (ids.length) spawnSync('docker', ['-H', host, 'rm', '-f', ...ids], { env: clientEnv(), stdio: 'ignore' });
}

function removeAllQuiet(host: string): void {
  try {
    removeAll(host);
  } catch {
    // The daemon may be gone already.
  }
}

function shimPids(dir: string): number[] {
  const pids: number[] = [];
  for (const name of (() => {
    try {
      return readdirSync(dir);
    } catch {
      return [];
    }
  })()) {
    try {
      pids.push(Number.parseInt(readFileSync(join(dir, name, 'shim.pid'), 'utf8'), 10));
    } catch {
      // An exec's or a finished container's state: no shim.
    }
  }
  return pids.filter((p) => p > 0);
}

function pssKiB(pid: number): number {
  const m = /^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'));
  return m ? Number(m[1]) : 0;
}

function rssKiB(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : 0;
}

function api(socket: string, method: string, path: string, body?: object): Promise<string> {
  return new Promise((resolve, reject) => {
    const payload = body ? JSON.stringify(body) : undefined;
    const req = request({ socketPath: socket, method, path: `/v1.47${path}`, headers: payload ? { 'Content-Type': 'application/json' } : {} }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => ((res.statusCode ?? 500) < 300 ? resolve(text) : reject(new Error(`${method} ${path}: ${res.statusCode} ${text}`))));
    });
    req.on('error', reject);
    req.end(payload);
  });
}
