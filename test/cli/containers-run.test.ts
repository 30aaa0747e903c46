// berth run, create, start and attach against a private berthd with real runc and busybox:
// output and exit statuses, stdin, --rm, -d, TTYs (through a real pty), detach keys,
// signal forwarding, and docker's messages and exit codes for what goes wrong.
import * as assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { TestDaemon, busyboxLayout, cliMain, sleep, type RunResult } from '../helpers/berthd.js';

let daemon: TestDaemon;

before(async () => {
  daemon = await TestDaemon.start();
  await ok('load', '-i', busyboxLayout);
  await ok('tag', 'busybox:1.38.0-musl', 'busybox:latest');
});

after(async () => {
  await daemon?.cleanup();
});

function berth(args: string[], input?: string): Promise<RunResult> {
  return daemon.berth(args, input === undefined ? {} : { input });
}

async function ok(...args: string[]): Promise<string> {
  const r = await berth(args);
  assert.equal(r.code, 0, `berth ${args.join(' ')} failed (${r.code}): ${r.stderr}\n${daemon.log.slice(-2000)}`);
  return r.stdout;
}

/** The berth CLI as a shell command line for `script` (which gives it a real terminal). */
function shellCommand(args: string[]): string {
  const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  return [process.execPath, '--', cliMain, ...args].map(q).join(' ');
}

/**
 * Runs berth inside a pty (util-linux `script`), typing `keys` (each after its delay).
 * Resolves with everything the terminal showed and berth's exit status.
 */
function inTerminal(args: string[], keys: Array<[number, string | Buffer]>, timeoutMs = 30_000): Promise<{ code: number; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('script', ['-qfec', shellCommand(args), '/dev/null'], { env: daemon.env, stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (c: Buffer) => (output += c.toString('latin1')));
    child.stderr.on('data', (c: Buffer) => (output += c.toString('latin1')));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`berth ${args.join(' ')} in a terminal timed out; output: ${JSON.stringify(output)}`));
    }, timeoutMs);
    void (async () => {
      for (const [delay, data] of keys) {
        await sleep(delay);
        if (child.exitCode !== null) break;
        child.stdin.write(data);
      }
    })();
    child.on('close', (code) => {
      clearTimeout(timer);
      child.stdin.destroy();
      resolve({ code: code ?? -1, output });
    });
  });
}

async function state(name: string): Promise<string> {
  const r = await berth(['container', 'inspect', '-f', '{{.State.Status}}', name]);
  return r.code === 0 ? r.stdout.trim() : `gone: ${r.stderr.trim()}`;
}

describe('berth run', () => {
  it('prints the output and ends with the container exit status', async () => {
    const r = await berth(['run', '--rm', 'busybox', 'sh', '-c', 'echo to-stdout; echo to-stderr >&2; exit 3']);
    assert.equal(r.code, 3);
    assert.equal(r.stdout, 'to-stdout\n');
    assert.equal(r.stderr, 'to-stderr\n');
  });

  it('exit 0, and the flags reach the container (env, workdir, user, entrypoint, hostname)', async () => {
    const r = await berth(['run', '--rm', '-e', 'A=1', '-w', '/tmp', '-u', '65534', '-h', 'box', '--entrypoint', 'sh', 'busybox', '-c', 'echo $A $(pwd) $(id -u) $(hostname)']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, '1 /tmp 65534 box\n');
  });

  it('-i copies stdin to the container and closes it at the end', async () => {
    const r = await berth(['run', '--rm', '-i', 'busybox', 'sh', '-c', 'while read l; do echo "got $l"; done; echo eof'], 'one\ntwo\n');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'got one\ngot two\neof\n');
  });

  it('without -i stdin is not read', async () => {
    const r = await berth(['run', '--rm', 'busybox', 'sh', '-c', 'cat; echo done'], 'ignored\n');
    assert.equal(r.stdout, 'done\n');
  });

  it('-a stderr attaches only stderr', async () => {
    const r = await berth(['run', '--rm', '-a', 'stderr', 'busybox', 'sh', '-c', 'echo out; echo err >&2']);
    assert.equal(r.code, 0);
    assert.equal(r.stdout, '');
    assert.equal(r.stderr, 'err\n');
  });

  it('-d prints the full id and leaves the container running; --rm removes it at exit', async () => {
    const id = (await ok('run', '-d', '--name', 'bg', 'busybox', 'sleep', '60')).trim();
    assert.match(id, /^[0-9a-f]{64}$/);
    assert.equal(await state('bg'), 'running');
    await ok('rm', '-f', 'bg');
    await ok('run', '--rm', '--name', 'gone', 'busybox', 'true');
    assert.match(await state('gone'), /^gone: .*No such container: gone/);
  });

  it('-t: the output is the raw terminal stream (CRLF), stdout only', async () => {
    const r = await berth(['run', '--rm', '-t', 'busybox', 'sh', '-c', 'echo tty; echo err >&2']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'tty\r\nerr\r\n');
  });

  it('-it with stdin not a terminal is refused', async () => {
    const r = await berth(['run', '-it', 'busybox', 'true'], '');
    assert.equal(r.code, 1);
    assert.equal(r.stderr, 'the input device is not a TTY\n');
  });

  it('127 when the command is not found, 126 when it cannot be run', async () => {
    const notFound = await berth(['run', '--rm', 'busybox', 'no-such-command']);
    assert.equal(notFound.code, 127, notFound.stderr);
    assert.match(notFound.stderr, /^berth: Error response from daemon: .*executable file not found.*\n\nRun 'berth run --help' for more information\n$/s);
    const denied = await berth(['run', '--rm', 'busybox', '/etc/passwd']);
    assert.equal(denied.code, 126, denied.stderr);
    assert.match(denied.stderr, /permission denied/);
  });

  it('125 for flag errors and option conflicts, before anything runs', async () => {
    const flag = await berth(['run', '-m', 'x', 'busybox']);
    assert.equal(flag.code, 125);
    assert.match(flag.stderr, /^invalid argument "x" for "-m, --memory" flag: invalid size: 'x'\n/);
    const conflict = await berth(['run', '--rm', '--restart', 'always', 'busybox']);
    assert.equal(conflict.code, 125);
    assert.equal(conflict.stderr, "berth: conflicting options: cannot specify both --restart and --rm\n\nRun 'berth run --help' for more information\n");
  });

  it('a missing image: "Unable to find image", then the daemon\'s error, exit 125', async () => {
    const r = await berth(['run', '--rm', 'no-such-image']);
    assert.equal(r.code, 125);
    assert.match(r.stderr, /^Unable to find image 'no-such-image:latest' locally\nberth: .+\n\nRun 'berth run --help' for more information\n$/);
    const never = await berth(['run', '--rm', '--pull', 'never', 'no-such-image']);
    assert.equal(never.code, 125);
    assert.doesNotMatch(never.stderr, /Unable to find image/);
    assert.match(never.stderr, /^berth: Error response from daemon: .*no-such-image/);
  });

  it('a taken name: the daemon\'s conflict, exit 125', async () => {
    await ok('create', '--name', 'taken', 'busybox');
    const r = await berth(['run', '--name', 'taken', 'busybox', 'true']);
    assert.equal(r.code, 125);
    assert.match(r.stderr, /^berth: Error response from daemon: Conflict\. The container name "\/taken" is already in use/);
    await ok('rm', 'taken');
  });

  it('--sig-proxy (the default) forwards the signals berth gets to the container', async () => {
    const child = spawn(process.execPath, ['--', cliMain, 'run', '--rm', 'busybox', 'sh', '-c', 'trap "echo got-TERM; exit 7" TERM; echo ready; while true; do sleep 0.1; done'], { env: daemon.env });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    const deadline = Date.now() + 20_000;
    while (!out.includes('ready') && Date.now() < deadline) await sleep(20);
    child.kill('SIGTERM');
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    assert.equal(code, 7);
    assert.equal(out, 'ready\ngot-TERM\n');
  });
});

describe('berth run with a terminal', () => {
  it('-it: raw mode both ways, the exit status of the shell', async () => {
    const r = await inTerminal(['run', '--rm', '-it', 'busybox', 'sh'], [[800, 'echo in-$((6*7))\r'], [500, 'exit 5\r']]);
    assert.equal(r.code, 5, r.output);
    assert.match(r.output, /in-42\r\n/);
    assert.doesNotMatch(r.output, /\r\r\n/, 'output went through the terminal with output processing left on');
  });

  it('ctrl-p ctrl-q detaches: berth ends with 0 and prints nothing more', async () => {
    const r = await inTerminal(['run', '-it', '--name', 'detached', 'busybox', 'sh'], [[800, 'echo before\r'], [500, Buffer.from([16, 17])]]);
    assert.equal(r.code, 0, r.output);
    assert.match(r.output, /before\r\n/);
    await ok('rm', '-f', 'detached');
  });

  it('the container keeps running after a detach', async () => {
    await inTerminal(['run', '-it', '--name', 'stays', 'busybox', 'sh'], [[800, Buffer.from([16, 17])]]);
    try {
      assert.equal(await state('stays'), 'running');
    } finally {
      await berth(['rm', '-f', 'stays']);
    }
  });

  it('--detach-keys takes other keys', async () => {
    const r = await inTerminal(['run', '-it', '--name', 'custom-keys', '--detach-keys', 'ctrl-x,x', 'busybox', 'sh'], [[800, Buffer.from([24, 0x78])]]);
    assert.equal(r.code, 0, r.output);
    await ok('rm', '-f', 'custom-keys');
  });
});

describe('berth create, start, attach', () => {
  it('create prints the id; start -a streams and ends with the exit status', async () => {
    const id = (await ok('create', '--name', 'c1', 'busybox', 'sh', '-c', 'echo started; echo e >&2; exit 9')).trim();
    assert.match(id, /^[0-9a-f]{64}$/);
    const r = await berth(['start', '-a', 'c1']);
    assert.equal(r.code, 9);
    assert.equal(r.stdout, 'started\n');
    assert.equal(r.stderr, 'e\n');
    await ok('rm', 'c1');
  });

  it('start -ai feeds stdin to a container created with -i', async () => {
    await ok('create', '-i', '--name', 'c2', 'busybox', 'cat');
    const r = await berth(['start', '-ai', 'c2'], 'hello stdin\n');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'hello stdin\n');
    await ok('rm', 'c2');
  });

  it('start of several: each name that started, then the failures, exit 1', async () => {
    await ok('create', '--name', 's1', 'busybox', 'true');
    const r = await berth(['start', 's1', 'nope']);
    assert.equal(r.code, 1);
    assert.equal(r.stdout, 's1\n');
    assert.equal(r.stderr, 'Error response from daemon: No such container: nope\nError: failed to start containers: nope\n');
    const attachMany = await berth(['start', '-a', 's1', 'nope']);
    assert.equal(attachMany.stderr, 'you cannot start and attach multiple containers at once\n');
    await ok('rm', '-f', 's1');
  });

  it('attach follows a running container to its end and takes its status', async () => {
    await ok('run', '-d', '--name', 'a1', 'busybox', 'sh', '-c', 'sleep 1; echo from-a1; exit 2');
    const r = await berth(['attach', 'a1']);
    assert.equal(r.code, 2, r.stderr);
    assert.equal(r.stdout, 'from-a1\n');
    const stopped = await berth(['attach', 'a1']);
    assert.equal(stopped.code, 1);
    assert.equal(stopped.stderr, 'You cannot attach to a stopped container, start it first\n');
    await ok('rm', 'a1');
  });
});
