// The real docker CLI running containers on a private berthd: run --rm and its exit codes,
// isolation, -d with logs, stop/start, `stop $(docker ps -q)`, -it in a real pty, a daemon
// killed while containers run, and an image in use refused by rmi.
import * as assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { TestDaemon, run, runInPty, sleep, until } from '../helpers/berthd.js';

let daemon: TestDaemon;
let scratch: string;

before(async () => {
  daemon = await TestDaemon.start();
  scratch = mkdtempSync(join(tmpdir(), 'berth-run-'));
  await daemon.loadBusybox();
});

after(async () => {
  await daemon?.cleanup();
  rmSync(scratch, { recursive: true, force: true });
});

async function docker(...args: string[]) {
  return daemon.docker(args, { timeoutMs: 30_000 });
}

function ok(...args: string[]): Promise<string> {
  return daemon.dockerOk(...args);
}


describe('docker CLI against berthd: containers', () => {
  it('run --rm prints the output and passes the exit code through', async () => {
    const r = await docker('run', '--rm', 'busybox', 'echo', 'hello from berth');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'hello from berth\n');
    const three = await docker('run', '--rm', 'busybox', 'sh', '-c', 'echo out; echo err >&2; exit 3');
    assert.equal(three.code, 3);
    assert.equal(three.stdout, 'out\n');
    assert.equal(three.stderr, 'err\n');
    assert.equal((await ok('ps', '-aq')).trim(), '', '--rm left a container behind');
  });

  it('gives 127 for a missing command, 126 for one that cannot run, 125 for a daemon error', async () => {
    const missing = await docker('run', '--rm', 'busybox', 'no-such-command');
    assert.equal(missing.code, 127, missing.stderr);
    assert.match(missing.stderr, /executable file not found/);
    const noexec = await docker('run', '--rm', 'busybox', '/etc/passwd');
    assert.equal(noexec.code, 126, noexec.stderr);
    const noImage = await docker('run', '--rm', '--pull', 'never', 'no-such-image');
    assert.equal(noImage.code, 125);
    assert.match(noImage.stderr, /No such image/);
    const badName = await docker('run', '--name', 'bad name!', 'busybox', 'true');
    assert.equal(badName.code, 125);
    assert.match(badName.stderr, /Invalid container name/);
  });

  it('stdin reaches the container with -i', async () => {
    const r = await daemon.docker(['run', '--rm', '-i', 'busybox', 'sh', '-c', 'tr a-z A-Z'], { input: 'shout this\n' });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'SHOUT THIS\n');
  });

  it('isolates: own pid namespace, hostname, mounts and network; no view of the host', async () => {
    const ps = await ok('run', '--rm', 'busybox', 'ps', '-o', 'pid,comm');
    assert.deepEqual(ps.trim().split('\n').slice(1).map((l) => l.trim()), ['1 ps']);
    const host = await ok('run', '--rm', '--hostname', 'inside', 'busybox', 'hostname');
    assert.equal(host.trim(), 'inside');
    // Its own network namespace: its end of a veth pair and lo, none of the host's devices.
    const net = await ok('run', '--rm', 'busybox', 'ls', '/sys/class/net');
    assert.deepEqual(net.trim().split(/\s+/), ['eth0', 'lo']);
    const marker = join(scratch, `host-marker-${process.pid}`);
    writeFileSync(marker, 'x');
    const find = await docker('run', '--rm', 'busybox', 'ls', marker);
    assert.notEqual(find.code, 0, 'the host file was visible in the container');
    const mounts = await ok('run', '--rm', 'busybox', 'cat', '/proc/self/mounts');
    assert.doesNotMatch(mounts, new RegExp(daemon.root.replace(/[/.]/g, '\\$&') + '.*ext4'), 'a host path leaked into the mounts');
  });

  it('refuses what Docker\'s seccomp profile refuses, and --privileged allows it', async () => {
    const unshare = await docker('run', '--rm', 'busybox', 'unshare', '-U', 'true');
    assert.notEqual(unshare.code, 0);
    const mount = await docker('run', '--rm', 'busybox', 'mount', '-t', 'tmpfs', 'x', '/tmp');
    assert.notEqual(mount.code, 0);
    const keyctl = await docker('run', '--rm', 'busybox', 'sh', '-c', 'cat /proc/self/status | grep Seccomp:');
    assert.match(keyctl.stdout, /Seccomp:\s+2/);
    const privileged = await docker('run', '--rm', '--privileged', 'busybox', 'mount', '-t', 'tmpfs', 'x', '/tmp');
    assert.equal(privileged.code, 0, privileged.stderr);
  });

  it('a container does not see another container\'s files', async () => {
    await ok('run', '-d', '--name', 'writer', 'busybox', 'sh', '-c', 'echo secret > /secret; echo ready; sleep 60');
    await until('the writer to write', async () => (await ok('logs', 'writer')).includes('ready'));
    const reader = await docker('run', '--rm', 'busybox', 'cat', '/secret');
    assert.notEqual(reader.code, 0);
    await ok('rm', '-f', 'writer');
  });

  it('runs detached, logs, stops and starts with the writable layer kept', async () => {
    const id = (await ok('run', '-d', '--name', 'web', 'busybox', 'sh', '-c', 'echo started >> /log; cat /log; trap "exit 0" TERM; while true; do sleep 0.1; done')).trim();
    assert.match(id, /^[a-f0-9]{64}$/);
    await until('the first log line', async () => (await ok('logs', 'web')).includes('started'));
    assert.match(await ok('ps', '--format', '{{.Names}} {{.Status}}'), /^web Up /m);
    await ok('stop', '-t', '5', 'web');
    assert.equal((await ok('inspect', '-f', '{{.State.Status}} {{.State.ExitCode}}', 'web')).trim(), 'exited 0');
    await ok('start', 'web');
    await until('the second run\'s log', async () => (await ok('logs', 'web')).split('started').length - 1 >= 3);
    await ok('stop', '-t', '1', 'web');
    await ok('rm', 'web');
  });

  it('stop $(docker ps -q) stops every running container; SIGKILL after the timeout gives 137', async () => {
    for (const name of ['a1', 'a2', 'a3']) await ok('run', '-d', '--name', name, 'busybox', 'sleep', '300');
    const ids = (await ok('ps', '-q')).trim().split('\n');
    assert.equal(ids.length, 3);
    const stopped = await docker('stop', '-t', '1', ...ids);
    assert.equal(stopped.code, 0, stopped.stderr);
    assert.equal((await ok('ps', '-q')).trim(), '');
    // `sleep` as pid 1 ignores SIGTERM: the stop ends with SIGKILL.
    assert.equal((await ok('inspect', '-f', '{{.State.ExitCode}}', 'a1')).trim(), '137');
    await ok('rm', 'a1', 'a2', 'a3');
  });

  it('refuses to remove a running container without -f, and an image in use', async () => {
    await ok('run', '-d', '--name', 'busy', 'busybox', 'sleep', '300');
    const rm = await docker('rm', 'busy');
    assert.equal(rm.code, 1);
    assert.match(rm.stderr, /container is running: stop the container before removing or force remove/);
    const rmi = await docker('rmi', 'busybox:1.38.0-musl');
    // Another tag (latest) still names it: that is an untag; by id it is refused.
    assert.equal(rmi.code, 0, rmi.stderr);
    const id = (await ok('image', 'inspect', '-f', '{{.Id}}', 'busybox')).trim();
    const byId = await docker('rmi', '-f', id.slice(7, 19));
    assert.equal(byId.code, 1);
    assert.match(byId.stderr, /image is being used by running container/);
    const name = await docker('rmi', 'busybox');
    assert.equal(name.code, 1);
    assert.match(name.stderr, /container [a-f0-9]{12} is using its referenced image/);
    await ok('rm', '-f', 'busy');
    await ok('tag', 'busybox', 'busybox:1.38.0-musl');
  });

  it('a name already taken is a 409 conflict', async () => {
    await ok('create', '--name', 'taken', 'busybox', 'true');
    const r = await docker('run', '--name', 'taken', 'busybox', 'true');
    assert.equal(r.code, 125);
    assert.match(r.stderr, /Conflict\. The container name "\/taken" is already in use by container/);
    await ok('rm', 'taken');
  });

  it('-it is a real terminal: tty, window size, and the exit code', async () => {
    const r = await runInPty(`stty rows 33 cols 101; docker run -it --rm busybox sh -c 'tty; stty size; exit 5'`, daemon.env);
    assert.equal(r.status, 5, r.stdout);
    assert.match(r.stdout, /\/dev\/pts\/\d+/);
    assert.match(r.stdout, /33 101/);
  });

  it('keeps containers running and logging through a daemon kill -9, then manages them', async () => {
    await ok('run', '-d', '--name', 'survivor', 'busybox', 'sh', '-c', 'i=0; while true; do i=$((i+1)); echo tick $i; sleep 0.2; done');
    await until('a tick', async () => (await ok('logs', 'survivor')).includes('tick 1'));
    await daemon.stop('SIGKILL');
    const beforeRestart = Date.now();
    await sleep(600);
    await daemon.startProcess();
    assert.match(await ok('ps', '--format', '{{.Names}} {{.Status}}'), /^survivor Up /m);
    const logs = await ok('logs', 'survivor');
    const ticks = logs.trim().split('\n').length;
    assert.ok(ticks >= (Date.now() - beforeRestart) / 400, `the container stopped logging while the daemon was down (${ticks} ticks)`);
    // logs -f on a container found again after the restart ends when it stops.
    const follow = run('docker', ['logs', '-f', '--tail', '1', 'survivor'], { env: daemon.env, timeoutMs: 30_000 });
    await sleep(500);
    await ok('stop', '-t', '1', 'survivor');
    const followed = await follow;
    assert.equal(followed.code, 0, followed.stderr);
    assert.match(followed.stdout, /tick \d+/);
    assert.match((await ok('inspect', '-f', '{{.State.Status}}', 'survivor')).trim(), /exited/);
    await ok('rm', 'survivor');
  });

  it('restart policies: on-failure restarts a failing container up to its limit', async () => {
    await ok('run', '-d', '--name', 'flaky', '--restart', 'on-failure:2', 'busybox', 'sh', '-c', 'exit 1');
    await until('two restarts', async () => (await ok('inspect', '-f', '{{.RestartCount}} {{.State.Status}}', 'flaky')).trim() === '2 exited', 15_000);
    await ok('rm', 'flaky');
  });
});
