/**
 * Import of the alpine minirootfs (3.4 MB gzipped, 7.8 MB unpacked): `berth import` and
 * `docker import` against berthd, and with --with-dockerd against a private dockerd. Each run
 * imports into an engine that does not have the layer (the image is removed between runs),
 * so every run unpacks and commits the whole layer.
 *
 *   node dist/bench/import.js [--runs 10] [--with-dockerd]
 */
import { spawnSync } from 'node:child_process';
import { alpineRootfs, berthCommand, clientEnv, flag, hasDockerd, median, percentile, printTimings, startBerthd, startDockerd, type Timing } from './lib.js';

const runs = Number(flag('runs', '10'));

/** Times `importArgv` runs, removing the image (with `removeArgv`) after each, untimed. */
function timeImports(name: string, importArgv: string[], removeArgv: string[], env: NodeJS.ProcessEnv): Timing {
  const times: number[] = [];
  for (let i = 0; i < runs + 1; i++) {
    const start = process.hrtime.bigint();
    const r = spawnSync(importArgv[0]!, importArgv.slice(1), { env, encoding: 'utf8' });
    const ms = Number(process.hrtime.bigint() - start) / 1e6;
    if (r.status !== 0) throw new Error(`${name} failed: ${r.stderr}`);
    const rm = spawnSync(removeArgv[0]!, removeArgv.slice(1), { env, encoding: 'utf8' });
    if (rm.status !== 0) throw new Error(`${removeArgv.join(' ')} failed: ${rm.stderr}`);
    // The first run warms the page cache; it is not counted.
    if (i > 0) times.push(ms);
  }
  return { name, times, median: median(times) };
}

const timings: Timing[] = [];
const daemon = await startBerthd();
try {
  const env = clientEnv({ DOCKER_CONFIG: `${daemon.root}/docker-config` });
  timings.push(timeImports('berth import (-> berthd)', berthCommand(daemon.socket, 'import', alpineRootfs, 'bench:1'), berthCommand(daemon.socket, 'rmi', 'bench:1'), env));
  const docker = (...args: string[]) => ['docker', '-H', `unix://${daemon.socket}`, ...args];
  timings.push(timeImports('docker import (-> berthd)', docker('import', alpineRootfs, 'bench:1'), docker('rmi', 'bench:1'), env));
} finally {
  await daemon.stop();
}

if (process.argv.includes('--with-dockerd')) {
  if (!hasDockerd()) {
    console.log('dockerd: not installed, not measured');
  } else {
    const dockerd = await startDockerd();
    try {
      const env = clientEnv({ DOCKER_CONFIG: `${dockerd.socket}.config` });
      const docker = (...args: string[]) => ['docker', '-H', `unix://${dockerd.socket}`, ...args];
      timings.push(timeImports('docker import (-> dockerd)', docker('import', alpineRootfs, 'bench:1'), docker('rmi', 'bench:1'), env));
    } finally {
      await dockerd.stop();
    }
  }
}

console.log(`import of ${alpineRootfs.split('/').pop()}, ${runs} runs each after one warm-up`);
printTimings('import (ratio to berth import)', timings);
console.log(`\n  p90/median spread: ${timings.map((t) => `${t.name.split(' ')[0]} ${(percentile(t.times, 90) / t.median).toFixed(2)}`).join(', ')}`);
