// berth ps, logs, stop, kill, rm, wait, pause, rename, top, port, container inspect, prune
// and stats against a private berthd; where the output does not depend on the clock, it
// is compared with the real docker CLI's output against the same daemon.
import * as assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { TestDaemon, busyboxLayout, cliMain, sleep, type RunResult } from '../helpers/berthd.js';

let daemon: TestDaemon;
const hasDocker = spawnSync('docker', ['--version']).status === 0;

before(async () => {
  daemon = await TestDaemon.start();
  await ok('load', '-i', busyboxLayout);
  await ok('tag', 'busybox:1.38.0-musl', 'busybox:latest');
});

after(async () => {
  await daemon?.cleanup();
});

function berth(...args: string[]): Promise<RunResult> {
  return daemon.berth(args);
}

async function ok(...args: string[]): Promise<string> {
  const r = await berth(...args);
  assert.equal(r.code, 0, `berth ${args.join(' ')} failed (${r.code}): ${r.stderr}\n${daemon.log.slice(-2000)}`);
  return r.stdout;
}

/** berth and docker give the same output, errors and status (docker's name swapped for berth's). */
async function sameAsDocker(...args: string[]): Promise<RunResult> {
  const b = await berth(...args);
  if (!hasDocker) return b;
  const d = await daemon.docker(args);
  const swap = (s: string) => s.replace(/\bdocker\b/g, 'berth');
  assert.deepEqual({ code: b.code, stdout: b.stdout, stderr: b.stderr }, { code: d.code, stdout: swap(d.stdout), stderr: swap(d.stderr) }, `berth ${args.join(' ')}`);
  return b;
}

async function waitFor(check: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    if (await check()) return;
    await sleep(50);
  }
  assert.fail(`timed out waiting for ${what}`);
}

describe('berth ps', () => {
  before(async () => {
    assert.equal((await berth('run', '--name', 'exited3', '-l', 'app=web', '-l', 'tier=front', 'busybox', 'sh', '-c', 'exit 3')).code, 3);
    await ok('create', '--name', 'created', 'busybox', 'true');
    await ok('run', '-d', '--name', 'up', '-l', 'app=db', 'busybox', 'sleep', '600');
  });

  it('shows running containers by default, all with -a, ids with -q', async () => {
    assert.equal(await ok('ps', '--format', '{{.Names}}'), 'up\n');
    assert.deepEqual((await ok('ps', '-a', '--format', '{{.Names}}')).split('\n').filter(Boolean).sort(), ['created', 'exited3', 'up']);
    const ids = (await ok('ps', '-aq')).split('\n').filter(Boolean);
    assert.equal(ids.length, 3);
    for (const id of ids) assert.match(id, /^[0-9a-f]{12}$/);
    assert.match(await ok('ps', '-q', '--no-trunc'), /^[0-9a-f]{64}\n$/);
  });

  it('-l and -n: the latest created, in all states', async () => {
    assert.equal(await ok('ps', '-l', '--format', '{{.Names}}'), 'up\n');
    assert.equal(await ok('ps', '-n', '2', '--format', '{{.Names}}'), 'up\ncreated\n');
  });

  it('filters: status, name, exited, label, ancestor, id', async () => {
    assert.equal(await ok('ps', '-a', '--filter', 'status=exited', '--format', '{{.Names}}'), 'exited3\n');
    assert.equal(await ok('ps', '-a', '-f', 'status=created', '--format', '{{.Names}}'), 'created\n');
    assert.equal(await ok('ps', '-a', '-f', 'exited=3', '--format', '{{.Names}}'), 'exited3\n');
    assert.equal(await ok('ps', '-a', '-f', 'name=exit', '--format', '{{.Names}}'), 'exited3\n');
    assert.equal(await ok('ps', '-a', '-f', 'label=app=db', '--format', '{{.Names}}'), 'up\n');
    assert.equal((await ok('ps', '-a', '-f', 'ancestor=busybox', '-q')).split('\n').filter(Boolean).length, 3);
    const id = (await ok('ps', '-q', '-f', 'name=up')).trim();
    assert.equal(await ok('ps', '-f', `id=${id.slice(0, 6)}`, '--format', '{{.Names}}'), 'up\n');
    const bad = await berth('ps', '-f', 'foo');
    assert.equal(bad.code, 125);
    assert.match(bad.stderr, /^invalid argument "foo" for "-f, --filter" flag: bad format of filter \(expected name=value\)/);
  });

  it('--format fields, functions and json', async () => {
    const line = await ok('ps', '-a', '-f', 'name=exited3', '--format', '{{.Image}}|{{.Command}}|{{.State}}|{{.Labels}}|{{.Label "tier"}}|{{.Networks}}|{{.Mounts}}|{{upper .Names}}');
    assert.equal(line, 'busybox|"sh -c exit 3"|exited|app=web,tier=front|front|bridge||EXITED3\n');
    const json = JSON.parse(await ok('ps', '-f', 'name=up', '--format', 'json')) as Record<string, string>;
    assert.equal(json['Names'], 'up');
    assert.equal(json['State'], 'running');
    assert.match(json['Status']!, /^Up /);
    assert.match(json['CreatedAt']!, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4} \S+$/);
  });

  it('the same table and formats as the docker CLI', async () => {
    await sameAsDocker('ps', '-a', '--format', 'table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.State}}\t{{.Names}}\t{{.Labels}}');
    await sameAsDocker('ps', '-a', '--no-trunc', '--format', 'table {{.ID}}\t{{.Command}}\t{{.Names}}');
    await sameAsDocker('ps', '-aq');
    await sameAsDocker('ps', '-a', '-s', '--format', '{{.Names}} {{.Size}}');
    await sameAsDocker('ps', '-a', '--format', '{{json .Labels}} {{.LocalVolumes}}');
    await sameAsDocker('ps', '--format', '{{.Nope}}');
  });

  after(async () => {
    await berth('rm', '-f', 'exited3', 'created', 'up');
  });
});

describe('berth logs', () => {
  before(async () => {
    await ok('run', '--name', 'talker', 'busybox', 'sh', '-c', 'for i in 1 2 3; do echo out $i; echo err $i >&2; done');
    await ok('run', '-t', '--name', 'ttytalker', 'busybox', 'sh', '-c', 'echo tty line');
  });

  it('stdout to stdout, stderr to stderr', async () => {
    const r = await sameAsDocker('logs', 'talker');
    assert.equal(r.stdout, 'out 1\nout 2\nout 3\n');
    assert.equal(r.stderr, 'err 1\nerr 2\nerr 3\n');
  });

  it('--tail, -n, -t, --since, --until', async () => {
    // The tail counts lines of the whole log, both streams together, as docker's json-file does.
    // The last lines of the whole log, both streams together (how they interleave is up to
    // the kernel's scheduling of two pipes).
    const tail = await sameAsDocker('logs', '--tail', '2', 'talker');
    assert.equal(`${tail.stdout}${tail.stderr}`.split('\n').filter(Boolean).length, 2);
    await sameAsDocker('logs', '-n', '0', 'talker');
    const stamped = await sameAsDocker('logs', '-t', '--tail', '1', 'talker');
    assert.match(`${stamped.stdout}${stamped.stderr}`, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z (out|err) 3\n$/);
    assert.equal((await berth('logs', '--since', '10m', 'talker')).stdout, 'out 1\nout 2\nout 3\n');
    assert.equal((await berth('logs', '--until', '2000-01-01', 'talker')).stdout, '');
    const bad = await berth('logs', '--since', 'someday', 'talker');
    assert.equal(bad.code, 1);
    assert.equal(bad.stderr, 'invalid value for "since": failed to parse value as time or duration: "someday"\n');
  });

  it('a TTY container\'s log is raw', async () => {
    const r = await sameAsDocker('logs', 'ttytalker');
    assert.equal(r.stdout, 'tty line\r\n');
  });

  it('-f follows until the container ends', async () => {
    await ok('run', '-d', '--name', 'slow', 'busybox', 'sh', '-c', 'echo a; sleep 1; echo b');
    const r = await berth('logs', '-f', 'slow');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'a\nb\n');
  });

  it('an unknown container', async () => {
    const r = await sameAsDocker('logs', 'nope');
    assert.equal(r.code, 1);
  });

  after(async () => {
    await berth('rm', '-f', 'talker', 'ttytalker', 'slow');
  });
});

describe('stop, kill, rm, wait, restart: many at once', () => {
  it('berth stop $(berth ps -q): every running container stops; unknown names fail at the end', async () => {
    for (const n of ['m1', 'm2', 'm3']) await ok('run', '-d', '--name', n, 'busybox', 'sleep', '600');
    const ids = (await ok('ps', '-q')).split('\n').filter(Boolean);
    assert.equal(ids.length, 3);
    const r = await berth('stop', '-t', '1', ...ids, 'nope');
    assert.equal(r.code, 1);
    assert.deepEqual(r.stdout.split('\n').filter(Boolean), ids);
    assert.equal(r.stderr, 'Error response from daemon: No such container: nope\n');
    assert.equal(await ok('ps', '-q'), '');
    assert.equal(await ok('ps', '-a', '--filter', 'exited=137', '-q'), `${ids.join('\n')}\n`);
  });

  it('kill -s, wait prints exit codes', async () => {
    await ok('run', '-d', '--name', 'k1', 'busybox', 'sh', '-c', 'trap "exit 12" USR1; while true; do sleep 0.1; done');
    await sleep(300);
    assert.equal(await ok('kill', '-s', 'USR1', 'k1'), 'k1\n');
    assert.equal(await ok('wait', 'k1', 'm1'), '12\n137\n');
    const r = await sameAsDocker('wait', 'nope');
    assert.equal(r.code, 1);
    const notRunning = await berth('kill', 'k1');
    assert.equal(notRunning.code, 1);
    assert.match(notRunning.stderr, /^Error response from daemon: .*is not running\n$/);
  });

  it('restart runs the container again', async () => {
    await ok('run', '-d', '--name', 'r1', 'busybox', 'sleep', '600');
    const before = (await ok('container', 'inspect', '-f', '{{.State.StartedAt}}', 'r1')).trim();
    assert.equal(await ok('restart', '-t', '0', 'r1'), 'r1\n');
    assert.equal((await ok('container', 'inspect', '-f', '{{.State.Status}}', 'r1')).trim(), 'running');
    assert.notEqual((await ok('container', 'inspect', '-f', '{{.State.StartedAt}}', 'r1')).trim(), before);
  });

  it('rm: a running container needs -f; -f reports unknown names without failing', async () => {
    const running = await berth('rm', 'r1');
    assert.equal(running.code, 1);
    assert.match(running.stderr, /^Error response from daemon: .*(stop the container|force)/i);
    const r = await berth('rm', '-f', 'r1', 'nope');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'r1\n');
    assert.equal(r.stderr, 'Error response from daemon: No such container: nope\n');
    const all = (await ok('ps', '-aq')).split('\n').filter(Boolean);
    assert.equal(await ok('rm', ...all), all.map((id) => `${id}\n`).join(''));
    assert.equal(await ok('ps', '-aq'), '');
  });
});

describe('pause, rename, top, port, container inspect', () => {
  before(async () => {
    await ok('run', '-d', '--name', 'p1', '-p', '127.0.0.1:18080:80', 'busybox', 'sleep', '600');
  });

  it('pause and unpause', async () => {
    assert.equal(await ok('pause', 'p1'), 'p1\n');
    assert.match(await ok('ps', '--format', '{{.Status}}'), /^Up .* \(Paused\)\n$/);
    assert.equal((await ok('ps', '--format', '{{.State}}')).trim(), 'paused');
    assert.equal(await ok('unpause', 'p1'), 'p1\n');
    assert.equal((await ok('ps', '--format', '{{.State}}')).trim(), 'running');
  });

  it('rename', async () => {
    assert.equal(await ok('rename', 'p1', 'p2'), '');
    assert.equal((await ok('ps', '--format', '{{.Names}}')).trim(), 'p2');
    const r = await sameAsDocker('rename', 'nope', 'x');
    assert.equal(r.stderr, 'Error response from daemon: No such container: nope\nError: failed to rename container named nope\n');
    await ok('rename', 'p2', 'p1');
  });

  it('top shows the processes, with ps options', async () => {
    const top = await sameAsDocker('top', 'p1', '-o', 'pid,comm');
    const lines = top.stdout.trimEnd().split('\n');
    assert.match(lines[0]!, /^PID\s+COMMAND$/);
    assert.match(lines[1]!, /^\d+\s+sleep$/);
  });

  it('port: as the docker CLI shows it', async () => {
    await sameAsDocker('port', 'p1');
    await sameAsDocker('port', 'p1', '80');
    const none = await sameAsDocker('port', 'p1', '81/udp');
    assert.equal(none.stderr, "Error: No public port '81/udp' published for p1\n");
    const bad = await sameAsDocker('port', 'p1', 'http');
    assert.equal(bad.code, 1);
  });

  it('port lists the published ports', async () => {
    assert.equal(await ok('port', 'p1'), '80/tcp -> 127.0.0.1:18080\n');
    assert.equal(await ok('port', 'p1', '80'), '127.0.0.1:18080\n');
  });

  it('container inspect: JSON, -f, -s, and errors after what was found', async () => {
    const [c] = JSON.parse(await ok('container', 'inspect', 'p1')) as Array<{ Name: string; State: { Running: boolean } }>;
    assert.equal(c!.Name, '/p1');
    assert.equal(c!.State.Running, true);
    await sameAsDocker('container', 'inspect', '-f', '{{.Name}} {{.Config.Image}} {{.HostConfig.RestartPolicy.Name}}', 'p1');
    assert.match(await ok('container', 'inspect', '-s', '-f', '{{.SizeRw}}', 'p1'), /^\d+\n$/);
    const r = await sameAsDocker('container', 'inspect', '-f', '{{.Name}}', 'p1', 'nope');
    assert.deepEqual([r.code, r.stdout, r.stderr], [1, '/p1\n', 'Error response from daemon: No such container: nope\n']);
    await sameAsDocker('container', 'inspect', 'nope');
  });

  after(async () => {
    await berth('rm', '-f', 'p1', 'p2');
  });
});

describe('stats and prune', () => {
  it('stats --no-stream: docker\'s table once', async () => {
    await ok('run', '-d', '--name', 'st', 'busybox', 'sleep', '600');
    const r = await berth('stats', '--no-stream');
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trimEnd().split('\n');
    assert.match(lines[0]!, /^CONTAINER ID\s+NAME\s+CPU %\s+MEM USAGE \/ LIMIT\s+MEM %\s+NET I\/O\s+BLOCK I\/O\s+PIDS$/);
    assert.match(lines[1]!, /^[0-9a-f]{12}\s+st\s+\d+\.\d\d%\s+\S+ \/ \S+\s+\d+\.\d\d%\s+\S+ \/ \S+\s+\S+ \/ \S+\s+1$/);
    assert.equal(await ok('stats', '--no-stream', '--format', '{{.Name}} {{.PIDs}}', 'st'), 'st 1\n');
    const bad = await berth('stats', '--no-stream', 'nope');
    assert.deepEqual([bad.code, bad.stderr], [1, 'Error response from daemon: No such container: nope\n']);
  });

  it('stats without --no-stream redraws in place, as docker: home, lines cleared to their end, the rest cleared', async () => {
    const child = spawn(process.execPath, ['--', cliMain, 'stats', 'st'], { env: daemon.env });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    await waitFor(async () => (out.match(/\x1b\[J/g) ?? []).length >= 2, 'two frames');
    child.kill('SIGTERM');
    await new Promise((resolve) => child.on('close', resolve));
    const frame = out.slice(0, out.indexOf('\x1b[J') + 3);
    assert.match(frame, /^\x1b\[HCONTAINER ID/);
    assert.match(frame, /\x1b\[HCONTAINER ID .* \x1b\[K\n[0-9a-f]{12} .* \x1b\[K\n \x1b\[K\n\x1b\[J$/s);
  });

  it('container prune -f removes stopped containers and reports them', async () => {
    await ok('run', '--name', 'done1', 'busybox', 'true');
    const id = (await ok('container', 'inspect', '-f', '{{.Id}}', 'done1')).trim();
    const r = await berth('container', 'prune', '-f');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`^Deleted Containers:\\n${id}\\n\\nTotal reclaimed space: \\S+\\n$`));
    assert.equal(await ok('ps', '-a', '--format', '{{.Names}}'), 'st\n');
    assert.equal(await ok('container', 'prune', '-f'), 'Total reclaimed space: 0B\n');
  });

  after(async () => {
    await berth('rm', '-f', 'st');
  });
});
