// berth-shim as a black box: start through runc, exit status, signals, exec, life without
// the process that launched it, resident memory. Real runc, the official busybox rootfs.
import * as assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';

import { control, isShim, readExit, readLog, rssKiB, ShimEnv, type SyncMessage, waitExit, waitFor } from './harness.js';

let env: ShimEnv;

before(() => {
  env = new ShimEnv();
});

after(() => {
  env?.cleanup();
});

describe('berth-shim lifecycle', () => {
  it('creates through runc, reports on fd 3, and records the exit code and both streams', async (t) => {
    const bundle = env.bundle(['sh', '-c', 'echo out; echo err >&2; exit 3']);
    const s = await env.start({ bundle });
    t.diagnostic(`spawn to sync line: ${s.syncMs.toFixed(1)} ms`);
    assert.equal(s.sync.error, undefined, s.sync.error);
    assert.equal(s.launcherCode, 0);
    assert.ok(s.sync.pid! > 0 && s.sync.shimPid! > 0);
    assert.equal(readFileSync(join(s.stateDir, 'shim.pid'), 'utf8').trim(), String(s.sync.shimPid));
    assert.equal(readFileSync(join(s.stateDir, 'init.pid'), 'utf8').trim(), String(s.sync.pid));
    // The sockets exist before runc start, so the daemon can attach first.
    assert.ok(statSync(join(s.stateDir, 'attach.sock')).isSocket());
    assert.ok(statSync(join(s.stateDir, 'control.sock')).isSocket());
    const state = JSON.parse(env.runcCommand(['state', s.id]).stdout) as { status: string; pid: number };
    assert.equal(state.status, 'created');
    assert.equal(state.pid, s.sync.pid);
    assert.equal(readExit(s.stateDir), undefined);

    const t0 = performance.now();
    env.runcStart(s.id);
    const exit = await waitExit(s.stateDir);
    t.diagnostic(`runc start to exit.json: ${(performance.now() - t0).toFixed(1)} ms`);
    assert.equal(exit.exitCode, 3);
    assert.equal(exit.signal, 0);
    assert.match(exit.finishedAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/);
    assert.ok(Math.abs(Date.parse(exit.finishedAt) - Date.now()) < 60_000);

    const log = readLog(s.logPath);
    assert.deepEqual(log.map(({ log: l, stream }) => ({ log: l, stream })).sort((a, b) => a.stream.localeCompare(b.stream)), [
      { log: 'err\n', stream: 'stderr' },
      { log: 'out\n', stream: 'stdout' },
    ]);
    for (const e of log) assert.match(e.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/);

    // The monitor goes away by itself, and takes its sockets with it; runc delete is ours.
    await waitFor('the shim to exit', () => !isShim(s.sync.shimPid!));
    assert.equal(existsSync(join(s.stateDir, 'attach.sock')), false);
    assert.equal(existsSync(join(s.stateDir, 'control.sock')), false);
    assert.equal(JSON.parse(env.runcCommand(['state', s.id]).stdout).status, 'stopped');
    assert.equal(env.runcCommand(['delete', s.id]).status, 0);
  });

  it('reports runc\'s error on fd 3 and exits non-zero when create fails', async () => {
    const bundle = env.bundle(['/no/such/binary']);
    const s = await env.start({ bundle });
    assert.equal(s.launcherCode, 1);
    assert.equal(s.sync.pid, undefined);
    assert.match(s.sync.error ?? '', /no\/such\/binary/);
    assert.doesNotMatch(s.sync.error ?? '', /^\s|\s$/);
    assert.equal(existsSync(join(s.stateDir, 'attach.sock')), false);
    assert.equal(existsSync(join(s.stateDir, 'control.sock')), false);
  });

  it('refuses a bad command line with an error line on fd 3', async () => {
    const bundle = env.bundle(['true']);
    const s = await env.start({ bundle, logMaxSize: -1 });
    assert.equal(s.launcherCode, 2);
    assert.match(s.sync.error ?? '', /--log-max-size/);
  });

  it('control "signal 15" ends sleep with exit code 143', async () => {
    // Without a pid namespace sleep is not an init, which the kernel shields from signals
    // it has no handler for (as `docker stop` meets with a bare `sleep` as pid 1).
    const bundle = env.bundle(['sleep', '100'], { pidNamespace: false });
    const s = await env.start({ bundle });
    assert.equal(s.sync.error, undefined, s.sync.error);
    env.runcStart(s.id);
    assert.equal(await control(s.stateDir, 'bogus'), 'error unknown command');
    assert.equal(await control(s.stateDir, 'signal 0'), 'error usage: signal <1-64>');
    assert.equal(await control(s.stateDir, 'resize 10 10'), 'error no terminal');
    assert.equal(await control(s.stateDir, 'signal 15'), 'ok');
    const exit = await waitExit(s.stateDir);
    assert.deepEqual({ exitCode: exit.exitCode, signal: exit.signal }, { exitCode: 143, signal: 15 });
  });

  it('forwards a signal the shim receives to the container process', async () => {
    const bundle = env.bundle(['sleep', '100'], { pidNamespace: false });
    const s = await env.start({ bundle });
    env.runcStart(s.id);
    process.kill(s.sync.shimPid!, 'SIGUSR1');
    const exit = await waitExit(s.stateDir);
    assert.deepEqual({ exitCode: exit.exitCode, signal: exit.signal }, { exitCode: 128 + 10, signal: 10 });
  });

  it('runs an exec process and records its exit code; RSS stays small', async (t) => {
    const bundle = env.bundle(['sleep', '100']);
    const main = await env.start({ bundle });
    assert.equal(main.sync.error, undefined, main.sync.error);
    env.runcStart(main.id);

    const rss = rssKiB(main.sync.shimPid!);
    t.diagnostic(`shim VmRSS with a running container: ${rss} KiB`);
    assert.ok(rss < 1024, `shim RSS ${rss} KiB, target < 1 MiB`);

    const exec = await env.start({ id: main.id, exec: env.process(['sh', '-c', 'echo in exec; echo oops >&2; exit 7']) });
    assert.equal(exec.sync.error, undefined, exec.sync.error);
    assert.equal(exec.launcherCode, 0);
    assert.notEqual(exec.sync.pid, main.sync.pid);
    const exit = await waitExit(exec.stateDir);
    assert.equal(exit.exitCode, 7);
    assert.deepEqual(readLog(exec.logPath).map((e) => [e.stream, e.log]).sort(), [['stderr', 'oops\n'], ['stdout', 'in exec\n']]);
    // The container itself is untouched by its exec ending.
    assert.equal(readExit(main.stateDir), undefined);
    assert.equal(JSON.parse(env.runcCommand(['state', main.id]).stdout).status, 'running');

    assert.equal(await control(main.stateDir, 'signal 9'), 'ok');
    assert.equal((await waitExit(main.stateDir)).exitCode, 137);
  });

  it('runs an exec with a terminal; the process JSON carries the initial console size', async () => {
    const bundle = env.bundle(['sleep', '100']);
    const main = await env.start({ bundle });
    env.runcStart(main.id);
    const processSpec = { ...env.process(['sh', '-c', 'tty; stty size; exit 4'], true), consoleSize: { height: 40, width: 120 } };
    const exec = await env.start({ id: main.id, exec: processSpec, terminal: true });
    assert.equal(exec.sync.error, undefined, exec.sync.error);
    assert.equal((await waitExit(exec.stateDir)).exitCode, 4);
    const text = readLog(exec.logPath).map((e) => e.log).join('');
    assert.match(text, /^\/dev\/pts\/\d+\r\n40 120\r\n$/);
    await control(main.stateDir, 'signal 9');
    await waitExit(main.stateDir);
  });

  it('reports an exec that cannot start', async () => {
    const bundle = env.bundle(['sleep', '100']);
    const main = await env.start({ bundle });
    env.runcStart(main.id);
    const exec = await env.start({ id: main.id, exec: env.process(['/no/such/tool']) });
    assert.equal(exec.launcherCode, 1);
    assert.match(exec.sync.error ?? '', /no\/such\/tool/);
    await control(main.stateDir, 'signal 9');
    await waitExit(main.stateDir);
  });

  it('works with a state dir too long for a unix socket path (terminal, so the console socket too)', async () => {
    const bundle = env.bundle(['sh', '-c', 'echo long path'], { terminal: true });
    const { id, stateDir, logPath, args } = env.shimArgs({ bundle, terminal: true });
    const longDir = join(stateDir, 'x'.repeat(120));
    const i = args.indexOf('--state-dir');
    args[i + 1] = longDir;
    const child = spawn(env.shim, args, { stdio: ['ignore', 'ignore', 'ignore', 'pipe'] });
    let text = '';
    (child.stdio[3] as Readable).setEncoding('utf8').on('data', (c: string) => { text += c; });
    const [code] = (await once(child, 'close')) as [number];
    const sync = JSON.parse(text) as SyncMessage;
    assert.equal(sync.error, undefined, sync.error);
    assert.equal(code, 0);
    env.trackShim(sync.shimPid!);
    assert.ok(statSync(join(longDir, 'attach.sock')).isSocket());
    env.runcStart(id);
    assert.equal((await waitExit(longDir)).exitCode, 0);
    assert.deepEqual(readLog(logPath).map((e) => e.log), ['long path\r\n']);
  });

  it('keeps the container running and logging when its launcher is SIGKILLed', async () => {
    const bundle = env.bundle(['sh', '-c', 'i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.02; done']);
    const { id, stateDir, logPath, args } = env.shimArgs({ bundle });
    // The launcher plays the daemon: it starts the shim with fd 3 on its own stdout, and
    // stays around (in its own process group) until we kill the whole group.
    const launcher = spawn('sh', ['-c', '"$0" "$@" 3>&1 >/dev/null 2>&1; exec sleep 1000', env.shim, ...args], {
      stdio: ['ignore', 'pipe', 'ignore'],
      detached: true,
    });
    try {
      const out = launcher.stdout as Readable;
      out.setEncoding('utf8');
      let text = '';
      while (!text.includes('\n')) {
        const [chunk] = (await once(out, 'data')) as [string];
        text += chunk;
      }
      const sync = JSON.parse(text) as SyncMessage;
      assert.equal(sync.error, undefined, sync.error);
      env.trackShim(sync.shimPid!);
      env.runcStart(id);
      await waitFor('the first ticks', () => readLog(logPath).length >= 2);

      process.kill(-launcher.pid!, 'SIGKILL');
      await once(launcher, 'exit');
      const before = readLog(logPath).length;
      await sleep(300);
      assert.ok(isShim(sync.shimPid!), 'the shim died with its launcher');
      const later = readLog(logPath);
      assert.ok(later.length > before + 3, `log stopped growing: ${before} -> ${later.length}`);
      assert.equal(later[later.length - 1]!.stream, 'stdout');
      assert.match(later[later.length - 1]!.log, /^tick \d+\n$/);
      assert.equal(JSON.parse(env.runcCommand(['state', id]).stdout).status, 'running');

      assert.equal(await control(stateDir, 'signal 9'), 'ok');
      assert.equal((await waitExit(stateDir)).exitCode, 137);
    } finally {
      try {
        process.kill(-launcher.pid!, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  });
});
