/**
 * Where `berth images -q` spends its start-up: runs it under `node --cpu-prof` (100 µs
 * sampling) against a private berthd, merges the profiles of several runs, and prints self
 * time by category and by file, the hottest functions, and the static import graph of the
 * command (modules and bytes that every run loads and compiles).
 *
 *   node dist/bench/profile-cli.js [--runs 5] [--command "images -q"]
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { alpineRootfs, berthCommand, busyboxLayout, cliMain, clientEnv, distRoot, flag, probe, startBerthd } from './lib.js';

const runs = Number(flag('runs', '5'));
const command = (flag('command', 'images -q') ?? 'images -q').split(' ').filter(Boolean);

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

function category(url: string, fn: string): string {
  if (url === '') {
    if (fn === '(garbage collector)') return 'garbage collection';
    if (fn === '(program)' || fn === '(idle)') return 'V8/native outside JS (program, idle)';
    return 'native calls (fs, compile, …)';
  }
  if (url.startsWith('node:internal/modules') || url.startsWith('node:internal/bootstrap') || url.includes('pre_execution')) return 'node: module loading and bootstrap';
  if (/^node:(internal\/)?(net|_http|http|dns|stream|internal\/streams|events|internal\/url|url)/.test(url)) return 'node: http, net, streams, url';
  if (url.startsWith('node:')) return 'node: other';
  if (url.includes('/src/cli/format/')) return 'berth: cli/format (templates, tables, units)';
  if (url.includes('/src/')) return `berth: ${url.slice(url.indexOf('/src/') + 5).split('/')[0]}`;
  return 'other';
}

const daemon = await startBerthd();
const profDir = mkdtempSync(join(tmpdir(), 'berth-cpuprof-'));
const wall: number[] = [];
try {
  for (const args of [['load', '-q', '-i', busyboxLayout], ['import', alpineRootfs, 'alpine:1']]) {
    const r = probe(berthCommand(daemon.socket, ...args));
    if (r.status !== 0) throw new Error(`${args.join(' ')}: ${r.stderr}`);
  }
  for (let i = 0; i < runs; i++) {
    const start = process.hrtime.bigint();
    const r = spawnSync(process.execPath, ['--no-warnings', '--cpu-prof', '--cpu-prof-interval', '100', '--cpu-prof-dir', profDir, cliMain, '-H', `unix://${daemon.socket}`, ...command], {
      env: clientEnv(),
      encoding: 'utf8',
    });
    wall.push(Number(process.hrtime.bigint() - start) / 1e6);
    if (r.status !== 0) throw new Error(`berth ${command.join(' ')}: ${r.stderr}`);
  }

  const byCategory = new Map<string, number>();
  const byFile = new Map<string, number>();
  const byFunction = new Map<string, number>();
  let total = 0;
  for (const name of readdirSync(profDir)) {
    const p = JSON.parse(readFileSync(join(profDir, name), 'utf8')) as Profile;
    const nodes = new Map(p.nodes.map((n) => [n.id, n]));
    p.samples.forEach((id, i) => {
      const us = p.timeDeltas[i] ?? 0;
      const { url, functionName, lineNumber } = nodes.get(id)!.callFrame;
      total += us;
      const add = (m: Map<string, number>, k: string) => m.set(k, (m.get(k) ?? 0) + us);
      add(byCategory, category(url, functionName));
      add(byFile, url === '' ? `(${functionName})` : url.replace(`file://${distRoot}/`, ''));
      add(byFunction, `${functionName || '(anonymous)'}  ${url.replace(`file://${distRoot}/`, '').split('/').slice(-2).join('/')}:${lineNumber + 1}`);
    });
  }
  const perRun = (us: number) => `${(us / 1000 / runs).toFixed(1).padStart(6)} ms ${((us / total) * 100).toFixed(0).padStart(3)}%`;
  const top = (m: Map<string, number>, n: number) => [...m].sort((a, b) => b[1] - a[1]).slice(0, n);

  const sortedWall = [...wall].sort((a, b) => a - b);
  console.log(`berth ${command.join(' ')}: ${runs} profiled runs, wall median ${sortedWall[Math.floor(runs / 2)]!.toFixed(1)} ms (profiling adds a little), sampled ${(total / 1000 / runs).toFixed(1)} ms a run`);
  console.log('\nself time by category, per run');
  for (const [k, us] of top(byCategory, 20)) console.log(`  ${perRun(us)}  ${k}`);
  console.log('\nself time by file, per run (top 15)');
  for (const [k, us] of top(byFile, 15)) console.log(`  ${perRun(us)}  ${k}`);
  console.log('\nhottest functions, per run (top 12)');
  for (const [k, us] of top(byFunction, 12)) console.log(`  ${perRun(us)}  ${k}`);

  // The static import graph: every module here is read, compiled and run on every call.
  const graph = new Map<string, number>();
  const walk = (file: string) => {
    if (graph.has(file)) return;
    const text = readFileSync(file, 'utf8');
    graph.set(file, text.length);
    for (const m of text.matchAll(/^\s*(?:import|export)\s(?:[^'";]*?\sfrom\s)?['"](\.{1,2}\/[^'"]+)['"]/gm)) walk(resolve(dirname(file), m[1]!));
  };
  walk(cliMain);
  const main = new Map(graph);
  const commandModule = join(distRoot, 'src', 'cli', 'commands', `${command[0] === 'images' || command[0] === 'image' ? 'images' : command[0]}.js`);
  try {
    walk(commandModule);
    walk(join(distRoot, 'src', 'client', 'engine-client.js'));
  } catch {
    // a command that lives elsewhere: the graph below is main's only
  }
  const sum = (m: Map<string, number>) => [...m.values()].reduce((a, b) => a + b, 0);
  console.log(`\nstatic import graph: main ${main.size} modules (${(sum(main) / 1024).toFixed(0)} KiB); with the command and the client ${graph.size} modules (${(sum(graph) / 1024).toFixed(0)} KiB)`);
  for (const [file, bytes] of [...graph].sort((a, b) => b[1] - a[1])) console.log(`  ${(bytes / 1024).toFixed(1).padStart(6)} KiB  ${relative(distRoot, file)}`);
} finally {
  rmSync(profDir, { recursive: true, force: true });
  await daemon.stop();
}
