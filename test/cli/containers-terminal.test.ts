// The terminal side of attach: detach keys, the escape proxy, and a hijacked stream over a
// real unix socket (demultiplexing, half-close at stdin's end, detach, closed output).
import * as assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import { after, afterEach, before, describe, it } from 'node:test';
import { frame, StdStream } from '../../src/containers/stdcopy.js';
import { EscapeProxy, HijackedStream, makeRaw, parseDetachKeys } from '../../src/cli/terminal.js';

describe('detach keys (moby/term ToBytes)', () => {
  it('reads ctrl- names, single characters and DEL', () => {
    assert.deepEqual([...parseDetachKeys('ctrl-p,ctrl-q')], [16, 17]);
    assert.deepEqual([...parseDetachKeys('ctrl-@,ctrl-[,ctrl-\\,ctrl-],ctrl-^,ctrl-_')], [0, 27, 28, 29, 30, 31]);
    assert.deepEqual([...parseDetachKeys('a,ctrl-a,DEL')], [97, 1, 127]);
  });

  it("refuses what it does not know with docker's message", () => {
    assert.throws(() => parseDetachKeys('ctrl-1'), { message: "Unknown character: 'ctrl-1'" });
    assert.throws(() => parseDetachKeys('ab'), { message: "Unknown character: 'ab'" });
  });
});

describe('escape proxy', () => {
  const keys = Buffer.from([16, 17]);

  it('passes ordinary input through', () => {
    assert.deepEqual(new EscapeProxy(keys).push(Buffer.from('ls\r')), { data: Buffer.from('ls\r'), detached: false });
  });

  it('detaches on the sequence, forwarding what came before it', () => {
    const r = new EscapeProxy(keys).push(Buffer.from([0x61, 16, 17, 0x62]));
    assert.deepEqual(r, { data: Buffer.from('a'), detached: true });
  });

  it('holds a partial sequence across reads, and gives it back when it breaks', () => {
    const p = new EscapeProxy(keys);
    assert.deepEqual(p.push(Buffer.from([0x61, 16])), { data: Buffer.from('a'), detached: false });
    assert.deepEqual(p.push(Buffer.from([0x62])), { data: Buffer.from([16, 0x62]), detached: false });
    assert.deepEqual(p.push(Buffer.from([16])), { data: Buffer.alloc(0), detached: false });
    assert.equal(p.push(Buffer.from([17])).detached, true);
  });

  it("as docker, the byte that breaks a match does not start a new one (ctrl-p ctrl-p ctrl-q)", () => {
    const r = new EscapeProxy(keys).push(Buffer.from([16, 16, 17]));
    assert.deepEqual(r, { data: Buffer.from([16, 16, 17]), detached: false });
  });

  it('an empty sequence never detaches', () => {
    assert.deepEqual(new EscapeProxy(Buffer.alloc(0)).push(Buffer.from([16, 17])), { data: Buffer.from([16, 17]), detached: false });
  });
});

describe('raw mode', () => {
  it('only for a terminal; restored once', () => {
    const calls: boolean[] = [];
    const tty = { isTTY: true, setRawMode: (m: boolean) => calls.push(m) };
    const stty: string[][] = [];
    const restore = makeRaw(tty, (args) => stty.push(args));
    restore();
    restore();
    assert.deepEqual(calls, [true, false]);
    assert.deepEqual(stty, [], 'stty runs only on process.stdin');
    makeRaw({ isTTY: false, setRawMode: (m: boolean) => calls.push(m) })();
    assert.deepEqual(calls, [true, false]);
  });
});

/** A collecting writable. */
function sink(): Writable & { text(): string } {
  const chunks: Buffer[] = [];
  const w = new Writable({
    write(chunk: Buffer, _enc, cb) {
      chunks.push(chunk);
      cb();
    },
  });
  return Object.assign(w, { text: () => Buffer.concat(chunks).toString('utf8') });
}

describe('hijacked stream over a unix socket', () => {
  let dir: string;
  let server: Server;
  let path: string;
  let onConnection: (s: Socket) => void = () => undefined;
  // Both ends of every connection, destroyed after each test so nothing keeps the process alive.
  const sockets: Socket[] = [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'berth-hijack-'));
    path = join(dir, 's.sock');
    server = createServer({ allowHalfOpen: true }, (s) => {
      sockets.push(s);
      onConnection(s);
    });
    await new Promise<void>((resolve) => server.listen(path, resolve));
  });

  afterEach(() => {
    for (const s of sockets.splice(0)) s.destroy();
  });

  after(() => {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const connected = () =>
    new Promise<Socket>((resolve) => {
      const s = connect(path, () => resolve(s));
      sockets.push(s);
    });

  it('demultiplexes stdout and stderr, including frames cut across reads', async () => {
    onConnection = (s) => {
      const bytes = Buffer.concat([frame(StdStream.Stdout, Buffer.from('out 1\n')), frame(StdStream.Stderr, Buffer.from('err 1\n')), frame(StdStream.Stdout, Buffer.from('out 2\n'))]);
      s.write(bytes.subarray(0, 3));
      setTimeout(() => s.end(bytes.subarray(3)), 20);
    };
    const stdout = sink();
    const stderr = sink();
    const stream = new HijackedStream({ socket: await connected(), tty: false, stdout, stderr });
    assert.deepEqual(await stream.done, { kind: 'done' });
    assert.equal(stdout.text(), 'out 1\nout 2\n');
    assert.equal(stderr.text(), 'err 1\n');
  });

  it('bytes read with the upgrade response come first', async () => {
    onConnection = (s) => s.end(frame(StdStream.Stdout, Buffer.from('second')));
    const stdout = sink();
    const stream = new HijackedStream({ socket: await connected(), head: frame(StdStream.Stdout, Buffer.from('first ')), tty: false, stdout, stderr: sink() });
    await stream.done;
    assert.equal(stdout.text(), 'first second');
  });

  it('copies stdin and half-closes at its end, then still takes the output', async () => {
    onConnection = (s) => {
      let got = '';
      s.on('data', (c: Buffer) => (got += c.toString()));
      s.on('end', () => setTimeout(() => s.end(frame(StdStream.Stdout, Buffer.from(`echo: ${got}`))), 20));
    };
    const stdin = new PassThrough();
    const stdout = sink();
    const stream = new HijackedStream({ socket: await connected(), tty: false, stdin, stdout, stderr: sink() });
    stdin.end('hello\n');
    assert.deepEqual(await stream.done, { kind: 'done' });
    assert.equal(stdout.text(), 'echo: hello\n');
  });

  it('without stdin attached the connection is half-closed at once, as docker does', async () => {
    let ended = false;
    onConnection = (s) => {
      s.on('end', () => {
        ended = true;
        s.end('raw tty output');
      });
      s.resume();
    };
    const stdout = sink();
    const stream = new HijackedStream({ socket: await connected(), tty: true, stdout });
    await stream.done;
    assert.equal(ended, true);
    assert.equal(stdout.text(), 'raw tty output');
  });

  it('with a TTY the detach keys end the stream; keys are not sent, what came before is', async () => {
    let got = Buffer.alloc(0);
    const received = new Promise<void>((resolve) => {
      onConnection = (s) => {
        s.on('data', (c: Buffer) => {
          got = Buffer.concat([got, c]);
          resolve();
        });
      };
    });
    const stdin = new PassThrough();
    const stream = new HijackedStream({ socket: await connected(), tty: true, stdin, stdout: sink(), detachKeys: 'ctrl-x' });
    stdin.write(Buffer.from([0x6c, 0x73, 24, 0x6e]));
    assert.deepEqual(await stream.done, { kind: 'detached' });
    await received;
    assert.deepEqual([...got], [0x6c, 0x73]);
  });

  it('bad detach keys warn and fall back to ctrl-p ctrl-q', async () => {
    onConnection = (s) => s.resume();
    const warnings: string[] = [];
    const stdin = new PassThrough();
    const stream = new HijackedStream({ socket: await connected(), tty: true, stdin, stdout: sink(), detachKeys: 'bogus', warn: (t) => warnings.push(t) });
    stdin.write(Buffer.from([16, 17]));
    assert.deepEqual(await stream.done, { kind: 'detached' });
    assert.deepEqual(warnings, ["invalid detach escape keys, using default: Unknown character: 'bogus'\n"]);
  });

  it("a daemon error frame (stream 3) ends the stream with docker's message", async () => {
    onConnection = (s) => s.end(frame(StdStream.Systemerr, Buffer.from('boom')));
    const stream = new HijackedStream({ socket: await connected(), tty: false, stdout: sink(), stderr: sink() });
    const end = await stream.done;
    assert.equal(end.kind, 'error');
    assert.equal(end.kind === 'error' && end.error.message, 'error from daemon in stream: boom');
  });

  it('a closed local output ends the stream as "closed"', async () => {
    onConnection = (s) => s.write(frame(StdStream.Stdout, Buffer.from('x')));
    const broken = new Writable({
      write(_c, _e, cb) {
        cb(Object.assign(new Error('write EPIPE'), { code: 'EPIPE' }));
      },
    });
    const stream = new HijackedStream({ socket: await connected(), tty: false, stdout: broken, stderr: sink() });
    assert.deepEqual(await stream.done, { kind: 'closed' });
  });
});
