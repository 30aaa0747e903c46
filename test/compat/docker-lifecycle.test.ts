// More of the container lifecycle through the real docker CLI: --init, limits and the OOM
// killer, kill -s, pause/unpause, rename, top, stats, logs options, attach, restart policies
// across a daemon restart, and the default log rotation.
import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { daemonWithBusybox, run, sleep, until } from '../helpers/berthd.js';

const fixture = daemonWithBusybox();
const { docker, ok } = fixture;


describe('docker CLI against berthd: the container lifecycle', () => {
  it('--init runs an init as pid 1 that reaps and forwards signals', async () => {
    const out = await ok('run', '--rm', '--init', 'busybox', 'ps', '-o', 'pid,comm');
    assert.match(out, /^\s*1 (docker-init|tini)/m);
  });

  it('a memory limit is enforced: the OOM killer ends a hog and inspect says so', async () => {
    const r = await docker('run', '--name', 'hog', '--memory', '16m', '--memory-swap', '16m', 'busybox', 'sh', '-c', 'x=a; while true; do x="$x$x"; done');
    assert.equal(r.code, 137, r.stderr);
    assert.equal((await ok('inspect', '-f', '{{.State.OOMKilled}} {{.State.ExitCode}}', 'hog')).trim(), 'true 137');
    assert.equal((await ok('inspect', '-f', '{{.HostConfig.Memory}}', 'hog')).trim(), String(16 * 1024 * 1024));
    await ok('rm', 'hog');
  });

  it('kill -s sends the signal; pause freezes and unpause thaws', async () => {
    await ok('run', '-d', '--name', 'sig', 'busybox', 'sh', '-c', 'trap "echo got-usr1" USR1; while true; do sleep 0.1; done');
    await sleep(300);
    await ok('kill', '-s', 'USR1', 'sig');
    await until('the trap', async () => (await ok('logs', 'sig')).includes('got-usr1'));
    await ok('pause', 'sig');
    assert.equal((await ok('inspect', '-f', '{{.State.Status}} {{.State.Paused}}', 'sig')).trim(), 'paused true');
    assert.match(await ok('ps', '--format', '{{.Status}}', '--filter', 'name=sig'), /\(Paused\)/);
    await ok('unpause', 'sig');
    assert.equal((await ok('inspect', '-f', '{{.State.Status}}', 'sig')).trim(), 'running');
    await ok('kill', 'sig');
    assert.equal((await ok('inspect', '-f', '{{.State.ExitCode}}', 'sig')).trim(), '137');
    const again = await docker('kill', 'sig');
    assert.equal(again.code, 1);
    assert.match(again.stderr, /is not running/);
    await ok('rm', 'sig');
  });

  it('rename, top and stats', async () => {
    await ok('run', '-d', '--name', 'before', 'busybox', 'sleep', '300');
    await ok('rename', 'before', 'after');
    assert.match(await ok('ps', '--format', '{{.Names}}'), /^after$/m);
    const top = await ok('top', 'after');
    assert.match(top, /^UID\s+PID\s+PPID/m);
    assert.match(top, /sleep 300/);
    const stats = await ok('stats', '--no-stream', '--format', '{{.Name}} {{.MemUsage}} {{.PIDs}}', 'after');
    assert.match(stats.trim(), /^after \S+\s?[KMG]?i?B \/ \S+ 1$/);
    // Network I/O counts what crosses its eth0: 100 kB sent to it from a second container.
    const ip = (await ok('inspect', '-f', '{{.NetworkSettings.IPAddress}}', 'after')).trim();
    await ok('exec', '-d', 'after', 'sh', '-c', 'nc -l -p 9000 > /dev/null');
    await sleep(300);
    await ok('run', '--rm', 'busybox', 'sh', '-c', `head -c 100000 /dev/zero | nc -w 1 ${ip} 9000`);
    const netIO = (await ok('stats', '--no-stream', '--format', '{{.NetIO}}', 'after')).trim();
    const [received] = netIO.split(' / ');
    assert.match(received!, /^\d+(\.\d+)?kB$/, netIO);
    assert.ok(Number.parseFloat(received!) >= 100, netIO);
    await ok('rm', '-f', 'after');
  });

  it('logs: --tail, -t, --since and --until; stdout and stderr kept apart', async () => {
    await ok('run', '--name', 'talker', 'busybox', 'sh', '-c', 'for i in 1 2 3 4 5; do echo out $i; done; echo oops >&2');
    const r = await docker('logs', '--tail', '2', 'talker');
    assert.equal(r.stdout, 'out 5\n');
    assert.equal(r.stderr, 'oops\n');
    const stamped = await ok('logs', '-t', 'talker');
    assert.match(stamped, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z out 1$/m);
    assert.equal((await ok('logs', '--until', '2000-01-01T00:00:00Z', 'talker')), '');
    assert.match(await ok('logs', '--since', '1h', 'talker'), /out 1/);
    assert.match(await ok('inspect', '-f', '{{.HostConfig.LogConfig.Type}} {{index .HostConfig.LogConfig.Config "max-size"}}', 'talker'), /json-file 10m/);
    await ok('rm', 'talker');
  });

  it('attach follows a running container\'s output', async () => {
    await ok('run', '-d', '--name', 'chatty', 'busybox', 'sh', '-c', 'sleep 0.5; echo one; sleep 0.2; echo two; exit 2');
    const r = await run('docker', ['attach', 'chatty'], { env: fixture.daemon.env, timeoutMs: 20_000 });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stdout, /one\ntwo\n/);
    await ok('rm', 'chatty');
  });

  it('restart policy always brings a container back after a daemon restart; unless-stopped respects a stop', async () => {
    await ok('run', '-d', '--name', 'keeper', '--restart', 'always', 'busybox', 'sleep', '300');
    await ok('run', '-d', '--name', 'stopper', '--restart', 'unless-stopped', 'busybox', 'sleep', '300');
    await ok('stop', '-t', '0', 'keeper');
    await ok('stop', '-t', '0', 'stopper');
    await fixture.daemon.restart('SIGTERM');
    await until('keeper to run again', async () => (await ok('inspect', '-f', '{{.State.Running}}', 'keeper')).trim() === 'true');
    assert.equal((await ok('inspect', '-f', '{{.State.Running}}', 'stopper')).trim(), 'false');
    await ok('rm', '-f', 'keeper', 'stopper');
  });

  it('container prune removes stopped containers only', async () => {
    await ok('create', '--name', 'idle', 'busybox', 'true');
    await ok('run', '-d', '--name', 'alive', 'busybox', 'sleep', '300');
    const out = await ok('container', 'prune', '-f');
    assert.match(out, /Total reclaimed space/);
    assert.equal((await ok('ps', '-a', '--format', '{{.Names}}')).trim(), 'alive');
    await ok('rm', '-f', 'alive');
  });
});

describe('docker CLI against berthd: health checks', () => {
  it('a check runs in the container: starting, unhealthy after its retries, healthy once it passes; events and ps say so', async () => {
    const since = String(Math.floor(Date.now() / 1000) - 1);
    await ok('run', '-d', '--name', 'checked', '--health-cmd', 'test -f /tmp/ok', '--health-interval', '200ms', '--health-retries', '2', 'busybox', 'sh', '-c', 'sleep 2; touch /tmp/ok; sleep 300');
    try {
      const status = async () => (await ok('inspect', '-f', '{{.State.Health.Status}}', 'checked')).trim();
      assert.match(await ok('ps', '--format', '{{.Status}}', '-f', 'name=checked'), /\(health: starting\)|\(unhealthy\)/);
      await until('unhealthy', async () => (await status()) === 'unhealthy', 10_000);
      await until('healthy', async () => (await status()) === 'healthy', 15_000);
      assert.match(await ok('ps', '--format', '{{.Status}}', '-f', 'name=checked'), /^Up .* \(healthy\)$/m);
      const log = JSON.parse(await ok('inspect', '-f', '{{json .State.Health.Log}}', 'checked')) as Array<{ ExitCode: number }>;
      assert.equal(log.at(-1)?.ExitCode, 0);
      assert.ok(log.length <= 5);
      const until_ = String(Math.ceil(Date.now() / 1000) + 1);
      const events = await fixture.daemon.docker(['events', '--since', since, '--until', until_, '--filter', 'container=checked', '--format', '{{.Action}}'], { timeoutMs: 20_000 });
      const health = events.stdout.split('\n').filter((l) => l.startsWith('health_status'));
      assert.deepEqual(health.slice(0, 2), ['health_status: unhealthy', 'health_status: healthy']);
      assert.equal((await ok('ps', '-q', '-f', 'health=healthy', '-f', 'name=checked')).trim().length > 0, true);
    } finally {
      await docker('rm', '-f', 'checked');
    }
  });

  it('checks go on after berthd is killed and started again', async () => {
    await ok('run', '-d', '--name', 'survives', '--health-cmd', 'true', '--health-interval', '200ms', 'busybox', 'sleep', '300');
    try {
      const ends = async () => (JSON.parse(await ok('inspect', '-f', '{{json .State.Health.Log}}', 'survives')) as Array<{ End: string }>).map((l) => l.End);
      await until('a first check', async () => (await ends()).length > 0, 10_000);
      await fixture.daemon.restart('SIGKILL');
      const restartedAt = Date.now();
      await until('a check after the restart', async () => (await ends()).some((e) => Date.parse(e) > restartedAt), 10_000);
      assert.equal((await ok('inspect', '-f', '{{.State.Health.Status}}', 'survives')).trim(), 'healthy');
    } finally {
      await docker('rm', '-f', 'survives');
    }
  });

  it('a check that outlives its timeout fails with docker\'s message; --no-healthcheck turns an image\'s check off', async () => {
    await ok('run', '-d', '--name', 'slow', '--health-cmd', 'sleep 5', '--health-timeout', '300ms', '--health-interval', '300ms', '--health-retries', '1', 'busybox', 'sleep', '300');
    try {
      await until('unhealthy', async () => (await ok('inspect', '-f', '{{.State.Health.Status}}', 'slow')).trim() === 'unhealthy', 15_000);
      assert.match(await ok('inspect', '-f', '{{range .State.Health.Log}}{{.Output}}{{end}}', 'slow'), /Health check exceeded timeout \(0\.3s\)/);
      await ok('commit', 'slow', 'busybox:checked');
      await ok('run', '-d', '--name', 'unchecked', '--no-healthcheck', 'busybox:checked', 'sleep', '300');
      await sleep(800);
      assert.equal((await ok('inspect', '-f', '{{.State.Health}}', 'unchecked')).trim(), '<nil>');
    } finally {
      await docker('rm', '-f', 'slow', 'unchecked');
    }
  });
});
