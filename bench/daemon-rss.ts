/**
 * berthd's resident memory (target: under 60 MiB): idle after start, after importing the
 * alpine rootfs, and after 50 image listings. Each figure is the median of several daemons.
 * With --with-dockerd, dockerd plus the containerd it starts are measured the same way.
 *
 *   node dist/bench/daemon-rss.js [--runs 5] [--with-dockerd]
 */
import { spawnSync } from 'node:child_process';
import { alpineRootfs, berthCommand, clientEnv, flag, hasDockerd, median, probe, rssMiB, sleep, startBerthd, startDockerd } from './lib.js';

const runs = Number(flag('runs', '5'));
const TARGET_MIB = 60;
const SETTLE_MS = 1000;

interface Sample {
  idle: number;
  imported: number;
  listed: number;
}

function must(argv: string[], env?: NodeJS.ProcessEnv): void {
  const r = probe(argv, env);
  if (r.status !== 0) throw new Error(`${argv.join(' ')}: ${r.stderr}`);
}

const berthd: Sample[] = [];
for (let i = 0; i < runs; i++) {
  const daemon = await startBerthd();
  try {
    await sleep(SETTLE_MS);
    const idle = rssMiB(daemon.pid);
    must(berthCommand(daemon.socket, 'import', alpineRootfs, 'alpine:bench'));
    await sleep(SETTLE_MS);
    const imported = rssMiB(daemon.pid);
    for (let j = 0; j < 50; j++) must(berthCommand(daemon.socket, 'images', '-q'));
    await sleep(SETTLE_MS);
    berthd.push({ idle, imported, listed: rssMiB(daemon.pid) });
  } finally {
    await daemon.stop();
  }
}

const report = (name: string, samples: Sample[]) => {
  const m = (k: keyof Sample) => median(samples.map((s) => s[k]));
  console.log(`${name}: RSS, median of ${samples.length} daemons`);
  console.log(`  idle after start        ${m('idle').toFixed(1).padStart(6)} MiB`);
  console.log(`  after importing alpine  ${m('imported').toFixed(1).padStart(6)} MiB`);
  console.log(`  after 50 image lists    ${m('listed').toFixed(1).padStart(6)} MiB`);
  return m;
};
const b = report('berthd', berthd);
const worst = Math.max(b('idle'), b('imported'), b('listed'));
console.log(`  target < ${TARGET_MIB} MiB: ${worst < TARGET_MIB ? 'met' : 'NOT met'} (highest median ${worst.toFixed(1)} MiB)`);

if (process.argv.includes('--with-dockerd')) {
  if (!hasDockerd()) {
    console.log('\ndockerd: not installed, not measured');
  } else {
    const samples: Sample[] = [];
    for (let i = 0; i < Math.min(runs, 3); i++) {
      const dockerd = await startDockerd();
      try {
        const total = () => dockerd.pids().reduce((sum, pid) => sum + rssMiB(pid), 0);
        const env = clientEnv({ DOCKER_HOST: `unix://${dockerd.socket}`, DOCKER_CONFIG: `${dockerd.socket}.config` });
        await sleep(SETTLE_MS);
        const idle = total();
        must(['docker', 'import', alpineRootfs, 'alpine:bench'], env);
        await sleep(SETTLE_MS);
        const imported = total();
        for (let j = 0; j < 50; j++) spawnSync('docker', ['images', '-q'], { env });
        await sleep(SETTLE_MS);
        samples.push({ idle, imported, listed: total() });
      } finally {
        await dockerd.stop();
      }
    }
    console.log('');
    report('dockerd + its containerd', samples);
  }
}
