/**
 * berthd cold start: from spawn, with an empty data root, to the first answer of /_ping
 * (target: under 300 ms). With --with-dockerd, dockerd (when installed) is timed the same way,
 * in a private data root with no networking set up (--iptables=false --bridge=none).
 *
 *   node dist/bench/daemon-start.js [--runs 15] [--with-dockerd]
 */
import { flag, median, percentile, probe, startBerthd, startDockerd } from './lib.js';

const runs = Number(flag('runs', '15'));
const TARGET_MS = 300;

const berthd: number[] = [];
for (let i = 0; i < runs + 1; i++) {
  const daemon = await startBerthd();
  // The first start warms the page cache for node and the build; it is not counted.
  if (i > 0) berthd.push(daemon.startMs);
  await daemon.stop();
}

console.log(`berthd cold start to /_ping, empty data root, ${runs} runs`);
console.log(`  median ${median(berthd).toFixed(1)} ms, p90 ${percentile(berthd, 90).toFixed(1)} ms, min ${Math.min(...berthd).toFixed(1)} ms`);
console.log(`  target < ${TARGET_MS} ms: ${median(berthd) < TARGET_MS ? 'met' : 'NOT met'} (median is ${(median(berthd) / TARGET_MS).toFixed(2)}x the target)`);

if (process.argv.includes('--with-dockerd')) {
  if (probe(['dockerd', '--version']).status !== 0) {
    console.log('\ndockerd: not installed, not measured');
  } else {
    const times: number[] = [];
    for (let i = 0; i < Math.min(runs, 5) + 1; i++) {
      const ms = await dockerdStart();
      if (i > 0) times.push(ms);
    }
    console.log(`\ndockerd cold start to /_ping, empty data root, ${times.length} runs`);
    console.log(`  median ${median(times).toFixed(1)} ms, p90 ${percentile(times, 90).toFixed(1)} ms; berthd/dockerd ratio ${(median(berthd) / median(times)).toFixed(2)}`);
  }
}

async function dockerdStart(): Promise<number> {
  const dockerd = await startDockerd();
  await dockerd.stop();
  return dockerd.startMs;
}
