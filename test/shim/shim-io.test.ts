// berth-shim's I/O as a black box: attach frames, stdin, a pty with resize, the json-file
// log (escaping, long lines, rotation) and slow attach clients. Real runc and busybox.
import * as assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';

import { AttachClient, control, parseFrames, readLog, ShimEnv, waitExit, waitFor } from './harness.js';

let env: ShimEnv;

before(() => {
  env = new ShimEnv();
});

after(() => {
  env?.cleanup();
});

describe('berth-shim I/O', () => {
  it('attach receives multiplexed frames and sees EOF after exit.json exists', async () => {
    const bundle = env.bundle(['sh', '-c', 'echo hello; sleep 0.05; echo oops >&2; sleep 0.05; printf partial']);
    const s = await env.start({ bundle });
    assert.equal(s.sync.error, undefined, s.sync.error);
    const a = await AttachClient.connect(s.stateDir);
    const b = await AttachClient.connect(s.stateDir);
    env.runcStart(s.id);
    await Promise.all([a.ended, b.ended]);
    assert.equal((await waitExit(s.stateDir, 0)).exitCode, 0, 'exit.json must exist when clients see EOF');
    for (const client of [a, b]) {
      const frames = parseFrames(client.data()).map((f) => [f.stream, f.data.toString()]);
      assert.deepEqual(frames, [[1, 'hello\n'], [2, 'oops\n'], [1, 'partial']]);
    }
    // A line without its newline is logged when the process ends, as it was.
    assert.deepEqual(readLog(s.logPath).map((e) => [e.stream, e.log]), [['stdout', 'hello\n'], ['stderr', 'oops\n'], ['stdout', 'partial']]);
  });

  it('stdin written by a client reaches cat; with --stdin-once its EOF ends cat', async () => {
    const bundle = env.bundle(['cat']);
    const s = await env.start({ bundle, stdin: true, stdinOnce: true });
    assert.equal(s.sync.error, undefined, s.sync.error);
    const a = await AttachClient.connect(s.stateDir);
    env.runcStart(s.id);
    a.socket.write('ping\n');
    await waitFor('the echo of ping', () => a.data().length >= 13 && a.data());
    assert.deepEqual(parseFrames(a.data()).map((f) => [f.stream, f.data.toString()]), [[1, 'ping\n']]);
    // A large write goes through whole, however the pipe splits it.
    const big = Buffer.alloc(300_000, 'x');
    a.socket.write(big);
    await waitFor('the echo of 300 kB', () => parseFrames(a.data()).reduce((n, f) => n + f.data.length, 0) >= 300_005);
    a.socket.end(); // shutdown(SHUT_WR): stdin-once closes the container's stdin
    const exit = await waitExit(s.stateDir);
    assert.equal(exit.exitCode, 0);
    await a.ended;
    const echoed = Buffer.concat(parseFrames(a.data()).map((f) => f.data));
    assert.equal(echoed.length, 300_005);
    assert.equal(echoed.subarray(5).every((c) => c === 0x78), true);
    assert.equal(readLog(s.logPath)[0]!.log, 'ping\n');
  });

  it('close-stdin on the control socket closes stdin without stdin-once', async () => {
    const bundle = env.bundle(['sh', '-c', 'cat; echo done']);
    const s = await env.start({ bundle, stdin: true });
    const a = await AttachClient.connect(s.stateDir);
    env.runcStart(s.id);
    a.socket.write('one\n');
    a.socket.end(); // without stdin-once, a client's EOF leaves stdin open
    await waitFor('the echo of one', () => a.data().includes('one\n'));
    const b = await AttachClient.connect(s.stateDir);
    assert.equal(await control(s.stateDir, 'close-stdin'), 'ok');
    assert.equal((await waitExit(s.stateDir)).exitCode, 0);
    await b.ended;
    assert.deepEqual(parseFrames(b.data()).map((f) => f.data.toString()), ['done\n']);
  });

  it('with --terminal: raw output, resize sets the pty size, input is echoed by the tty', async () => {
    const bundle = env.bundle(['sh', '-c', 'stty size; read line; echo "got $line"'], { terminal: true });
    const s = await env.start({ bundle, terminal: true, stdin: true });
    assert.equal(s.sync.error, undefined, s.sync.error);
    assert.equal(await control(s.stateDir, 'resize 30 100'), 'ok');
    assert.equal(await control(s.stateDir, 'resize 30'), 'error usage: resize <rows> <cols>');
    const a = await AttachClient.connect(s.stateDir);
    env.runcStart(s.id);
    await waitFor('stty size', () => a.text().includes('30 100\r\n'));
    a.socket.write('hi there\n');
    const exit = await waitExit(s.stateDir);
    assert.equal(exit.exitCode, 0);
    await a.ended;
    // Raw bytes, no frame headers: the pty's \r\n and its echo of our input.
    assert.equal(a.text(), '30 100\r\nhi there\r\ngot hi there\r\n');
    const log = readLog(s.logPath);
    assert.ok(log.every((e) => e.stream === 'stdout'));
    assert.equal(log.map((e) => e.log).join(''), '30 100\r\nhi there\r\ngot hi there\r\n');
  });

  it('logs like docker: escapes, invalid UTF-8, 16 KiB partial lines', async () => {
    const script = [
      String.raw`printf 'tab\there <b>&amp; "q" \\ \001 \r\n'`,
      String.raw`printf 'bad \377\376 utf8 \342\202 end\n'`,
      String.raw`printf 'ok \342\202\254 \360\237\230\200\n'`,
      'head -c 40000 /dev/zero | tr "\\0" a',
      'echo',
    ].join('; ');
    const s = await env.start({ bundle: env.bundle(['sh', '-c', script]) });
    env.runcStart(s.id);
    await waitExit(s.stateDir);
    const raw = readFileSync(s.logPath, 'utf8');
    const lines = raw.split('\n').filter((l) => l);
    assert.ok(lines[0]!.startsWith(String.raw`{"log":"tab\u0009here \u003cb\u003e\u0026amp; \"q\" \\ \u0001 \r\n","stream":"stdout","time":"`), lines[0]);
    const log = lines.map((l) => JSON.parse(l) as { log: string });
    assert.equal(log[0]!.log, 'tab\there <b>&amp; "q" \\ \u0001 \r\n');
    assert.equal(log[1]!.log, 'bad \ufffd\ufffd utf8 \ufffd\ufffd end\n');
    assert.equal(log[2]!.log, 'ok \u20ac \u{1f600}\n');
    // 40000 bytes and a newline: 16384 + 16384 + 7232 with the newline on the last.
    assert.deepEqual(log.slice(3).map((e) => e.log.length), [16384, 16384, 7233]);
    assert.equal(log.slice(3).map((e) => e.log).join(''), `${'a'.repeat(40000)}\n`);
  });

  it('rotates the log at --log-max-size, keeping --log-max-files files', async () => {
    const script = 'i=0; while [ $i -lt 300 ]; do echo "line $i of the rotation test, padded to some length"; i=$((i+1)); done';
    const s = await env.start({ bundle: env.bundle(['sh', '-c', script]), logMaxSize: 4000, logMaxFiles: 3 });
    env.runcStart(s.id);
    await waitExit(s.stateDir);
    assert.ok(existsSync(`${s.logPath}.1`) && existsSync(`${s.logPath}.2`));
    assert.equal(existsSync(`${s.logPath}.3`), false);
    const lineSize = Buffer.byteLength(readFileSync(`${s.logPath}.1`, 'utf8').split('\n')[0]!) + 1;
    for (const f of [`${s.logPath}.2`, `${s.logPath}.1`]) {
      const size = statSync(f).size;
      assert.ok(size >= 4000 && size < 4000 + lineSize + 2, `${f}: ${size} bytes`);
    }
    assert.ok(statSync(s.logPath).size < 4000 + lineSize + 2);
    // The newest entries are in FILE, older in FILE.1, older still in FILE.2, in order.
    const numbers = [`${s.logPath}.2`, `${s.logPath}.1`, s.logPath]
      .flatMap((f) => readLog(f))
      .map((e) => Number(/^line (\d+) /.exec(e.log)![1]));
    assert.equal(numbers[numbers.length - 1], 299);
    numbers.forEach((n, i) => assert.equal(n, numbers[0]! + i));
  });

  it('a stalled client is dropped, a briefly paused one loses nothing, the container never waits', async () => {
    // 3 MB over about 1.5 s: longer than a stalled client is given (1 s past 1 MiB queued).
    const script = 'i=0; while [ $i -lt 30 ]; do head -c 100000 /dev/zero | tr "\\0" x; sleep 0.05; i=$((i+1)); done; echo; exit 5';
    const s = await env.start({ bundle: env.bundle(['sh', '-c', script]) });
    const stalled = await AttachClient.connect(s.stateDir);
    stalled.socket.pause();
    const paused = await AttachClient.connect(s.stateDir);
    paused.socket.pause();
    setTimeout(() => paused.socket.resume(), 300);
    const reader = await AttachClient.connect(s.stateDir);
    // Not spawnSync: the readers must go on reading while runc start runs.
    await env.runcStartAsync(s.id);
    const exit = await waitExit(s.stateDir, 30_000);
    assert.equal(exit.exitCode, 5);
    await Promise.all([reader.ended, paused.ended]);
    for (const client of [reader, paused]) {
      const payload = parseFrames(client.data()).reduce((n, f) => n + f.data.length, 0);
      assert.equal(payload, 3_000_001);
    }
    assert.equal(readLog(s.logPath).reduce((n, e) => n + e.log.length, 0), 3_000_001);
    // The stalled one got what its socket buffer held when it was dropped, then EOF.
    stalled.socket.resume();
    await stalled.ended.catch(() => undefined);
    assert.ok(stalled.data().length < 3_000_001, `stalled client got ${stalled.data().length} bytes`);
  });
});
