/**
 * Pull of a 5-layer image of ~100 MB (5 × 20 MB of random bytes, so gzip cannot shrink it)
 * from a docker-registry on loopback, made with umoci and copied there with skopeo: a cold
 * pull into an engine that has nothing, then a re-pull of the same tag (a manifest request
 * and nothing else to do). The docker CLI drives berthd, and a private dockerd when it is
 * installed (loopback registries are plain HTTP for both by default). Each run starts a
 * fresh engine, so every cold pull downloads and unpacks every layer.
 *
 *   node dist/bench/pull.js [--runs 3] [--layers 5] [--layer-mb 20]
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TestRegistry, skopeo, umoci } from '../test/registry/registries.js';
import { clientEnv, flag, hasDockerd, median, printTimings, startBerthd, startDockerd, type Timing } from './lib.js';

const runs = Number(flag('runs', '3'));
const layers = Number(flag('layers', '5'));
const layerMb = Number(flag('layer-mb', '20'));

/** The image's layout: one layer per file of random bytes, made with umoci. */
async function makeLayout(dir: string): Promise<string> {
  const layout = join(dir, 'layout');
  await umoci(['init', '--layout', layout]);
  await umoci(['new', '--image', `${layout}:bench`]);
  const bundle = join(dir, 'bundle');
  for (let i = 0; i < layers; i++) {
    rmSync(bundle, { recursive: true, force: true });
    await umoci(['unpack', '--rootless', '--image', `${layout}:bench`, bundle]);
    writeFileSync(join(bundle, 'rootfs', `layer-${i}.bin`), randomBytes(layerMb * 1024 * 1024));
    await umoci(['repack', '--image', `${layout}:bench`, bundle]);
  }
  return layout;
}

interface Engine {
  name: string;
  socket: string;
  stop(): Promise<void>;
}

function docker(engine: Engine, ...args: string[]): number {
  const start = process.hrtime.bigint();
  const r = spawnSync('docker', ['-H', `unix://${engine.socket}`, ...args], {
    env: clientEnv({ DOCKER_CONFIG: join(tmpdir(), 'berth-bench-pull-config') }),
    encoding: 'utf8',
    timeout: 600_000,
  });
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  if (r.status !== 0) throw new Error(`${engine.name}: docker ${args.join(' ')} failed: ${r.stderr}`);
  return ms;
}

/** Cold pull and re-pull, each run in a fresh engine. */
async function measure(name: string, start: () => Promise<Engine>, image: string): Promise<{ cold: Timing; again: Timing }> {
  const cold: number[] = [];
  const again: number[] = [];
  for (let i = 0; i < runs; i++) {
    const engine = await start();
    try {
      cold.push(docker(engine, 'pull', '-q', image));
      again.push(docker(engine, 'pull', '-q', image));
    } finally {
      await engine.stop();
    }
  }
  return {
    cold: { name: `${name} cold pull`, times: cold, median: median(cold) },
    again: { name: `${name} re-pull`, times: again, median: median(again) },
  };
}

const scratch = mkdtempSync(join(tmpdir(), 'berth-bench-pull-'));
const registry = await TestRegistry.start();
try {
  const layout = await makeLayout(scratch);
  const image = `${registry.host}/bench/pull:${layers}x${layerMb}mb`;
  await skopeo(['copy', '--dest-tls-verify=false', `oci:${layout}:bench`, `docker://${image}`]);

  const results = [
    await measure('berthd (docker CLI)', async () => {
      const d = await startBerthd();
      return { name: 'berthd', socket: d.socket, stop: () => d.stop() };
    }, image),
  ];
  if (hasDockerd()) {
    results.push(
      await measure('dockerd (docker CLI)', async () => {
        const d = await startDockerd();
        return { name: 'dockerd', socket: d.socket, stop: () => d.stop() };
      }, image),
    );
  } else {
    console.log('dockerd: not installed, not measured');
  }
  console.log(`pull of ${image}: ${layers} layers of ${layerMb} MB of random bytes, ${runs} runs each, a fresh engine per run`);
  printTimings('cold pull (ratio to berthd)', results.map((r) => r.cold));
  printTimings('re-pull, up to date (ratio to berthd)', results.map((r) => r.again));
} finally {
  await registry.stop();
  rmSync(scratch, { recursive: true, force: true });
}
