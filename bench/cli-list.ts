/**
 * `berth images -q` (and `berth ps -q` once berth has it) against `docker images -q`: the real
 * docker CLI pointed at the same berthd, and, with --with-dockerd, at a private dockerd that
 * holds as many image rows. A bare `node` start is printed as the floor a Node.js CLI cannot
 * go under.
 *
 *   node dist/bench/cli-list.js [--runs 30] [--warmup 3] [--with-dockerd]
 */
import { join } from 'node:path';
import { berthCommand, clientEnv, flag, hasDockerd, printTimings, probe, startBerthd, startDockerd, timeCommands, alpineRootfs, busyboxLayout, hasHyperfine } from './lib.js';

const runs = Number(flag('runs', '30'));
const warmup = Number(flag('warmup', '3'));

const daemon = await startBerthd();
const dockerd = process.argv.includes('--with-dockerd') && hasDockerd() ? await startDockerd() : undefined;
const dockerdHost = dockerd ? `unix://${dockerd.socket}` : undefined;
try {
  const berth = (...args: string[]) => berthCommand(daemon.socket, ...args);
  const must = (argv: string[]) => {
    const r = probe(argv);
    if (r.status !== 0) throw new Error(`${argv.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };
  // Something to list: busybox (OCI layout) and alpine under three tags.
  must(berth('load', '-q', '-i', busyboxLayout));
  must(berth('import', alpineRootfs, 'alpine:3.20.3'));
  must(berth('tag', 'alpine:3.20.3', 'alpine:latest'));
  must(berth('tag', 'alpine:3.20.3', 'localhost:5000/alpine:3'));
  const listed = must(berth('images', '-q')).trim().split('\n').length;
  if (dockerdHost) {
    // The same rows in dockerd (it cannot load an OCI layout: busybox's layer is imported).
    const d = (...args: string[]) => ['docker', '-H', dockerdHost, ...args];
    must(d('import', join(busyboxLayout, 'blobs', 'sha256', '5c3b447848a98e48dce106cb3e6acbd4fb6f9b26ee778798137349ce01f4d3c1'), 'busybox:1.38.0-musl'));
    must(d('import', alpineRootfs, 'alpine:3.20.3'));
    must(d('tag', 'alpine:3.20.3', 'alpine:latest'));
    must(d('tag', 'alpine:3.20.3', 'localhost:5000/alpine:3'));
  }

  const docker = (host: string, ...args: string[]) => ({ argv: ['docker', '-H', host, ...args], env: clientEnv({ DOCKER_CONFIG: `${daemon.root}/docker-config` }) });
  const commands = [
    { name: 'berth images -q', argv: berth('images', '-q') },
    { name: 'docker images -q (-> berthd)', ...docker(`unix://${daemon.socket}`, 'images', '-q') },
  ];
  if (dockerdHost) commands.push({ name: `docker images -q (-> dockerd)`, ...docker(dockerdHost, 'images', '-q') });

  // ps: measured once berth serves it; until then the probe says why not.
  const ps = probe(berth('ps', '-q'));
  if (ps.status === 0) {
    commands.push({ name: 'berth ps -q', argv: berth('ps', '-q') });
    commands.push({ name: 'docker ps -q (-> berthd)', ...docker(`unix://${daemon.socket}`, 'ps', '-q') });
    if (dockerdHost) commands.push({ name: 'docker ps -q (-> dockerd)', ...docker(dockerdHost, 'ps', '-q') });
  }
  commands.push({ name: 'node -e 0 (floor)', argv: [process.execPath, '-e', '0'] });

  const timings = timeCommands(commands, { runs, warmup });
  console.log(`${hasHyperfine() ? 'hyperfine -N' : 'node timing loop'}, ${runs} runs after ${warmup} warm-up, ${listed} image rows listed by berth`);
  printTimings('list commands (ratio to berth images -q)', timings);
  if (ps.status !== 0) console.log(`\n  berth ps -q: not measured, berth ps fails today (exit ${ps.status}): ${ps.stderr.trim().split('\n')[0]}`);
  if (process.argv.includes('--with-dockerd') && !dockerd) console.log('\n  dockerd: not installed, not measured');
} finally {
  await daemon.stop();
  await dockerd?.stop();
}
