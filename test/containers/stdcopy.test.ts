import * as assert from 'node:assert/strict';
import { test } from 'node:test';
import { Demultiplexer, StdStream, frame } from '../../src/containers/stdcopy.js';
import { isBerthError } from '../../src/errors/errors.js';

test('frame: 8-byte header [stream,0,0,0,length u32 BE] then the payload', () => {
  const out = frame(StdStream.Stderr, Buffer.from('oops\n'));
  assert.deepEqual([...out.subarray(0, 8)], [2, 0, 0, 0, 0, 0, 0, 5]);
  assert.equal(out.subarray(8).toString(), 'oops\n');

  // 0x010203 bytes: the length is big-endian.
  const big = frame(StdStream.Stdout, Buffer.alloc(0x010203, 7));
  assert.deepEqual([...big.subarray(0, 8)], [1, 0, 0, 0, 0, 1, 2, 3]);
  assert.equal(big.length, 8 + 0x010203);

  assert.deepEqual([...frame(StdStream.Stdin, Buffer.alloc(0))], [0, 0, 0, 0, 0, 0, 0, 0]);
});

test('Demultiplexer: frames pushed one byte at a time come out whole and in order', () => {
  const frames = [
    { stream: StdStream.Stdout, payload: Buffer.from('hello\n') },
    { stream: StdStream.Stderr, payload: Buffer.from('warning: ünïcödé\n') },
    { stream: StdStream.Stdout, payload: Buffer.alloc(0) },
    { stream: StdStream.Stdout, payload: Buffer.alloc(70_000, 0x61) },
    { stream: StdStream.Stderr, payload: Buffer.from([0, 1, 2, 255]) },
  ];
  const wire = Buffer.concat(frames.map((f) => frame(f.stream, f.payload)));
  const demux = new Demultiplexer();
  const got: Array<{ stream: StdStream; payload: Buffer }> = [];
  for (let i = 0; i < wire.length; i++) {
    got.push(...demux.push(wire.subarray(i, i + 1)));
    // Nothing may come out before the last byte of its frame arrived.
    assert.ok(got.length <= frames.length);
  }
  assert.equal(demux.buffered, 0);
  demux.finish();
  assert.deepEqual(
    got.map((f) => ({ stream: f.stream, payload: f.payload.toString('hex') })),
    frames.map((f) => ({ stream: f.stream, payload: f.payload.toString('hex') })),
  );
});

test('Demultiplexer: arbitrary chunk boundaries, several frames per chunk', () => {
  const payloads = Array.from({ length: 200 }, (_, i) => Buffer.from(`line ${i} `.repeat(i % 13)));
  const wire = Buffer.concat(payloads.map((p, i) => frame(i % 2 === 0 ? StdStream.Stdout : StdStream.Stderr, p)));
  for (const size of [3, 7, 8, 9, 64, 1000, wire.length]) {
    const demux = new Demultiplexer();
    const got: Buffer[] = [];
    const streams: StdStream[] = [];
    for (let i = 0; i < wire.length; i += size) {
      for (const f of demux.push(wire.subarray(i, i + size))) {
        got.push(f.payload);
        streams.push(f.stream);
      }
    }
    assert.equal(got.length, payloads.length, `chunk size ${size}`);
    got.forEach((p, i) => assert.ok(p.equals(payloads[i] as Buffer), `chunk size ${size}, frame ${i}`));
    streams.forEach((s, i) => assert.equal(s, i % 2 === 0 ? StdStream.Stdout : StdStream.Stderr));
  }
});

test('Demultiplexer: a stream cut inside a frame, an unknown stream byte, an absurd length', () => {
  const demux = new Demultiplexer();
  const wire = frame(StdStream.Stdout, Buffer.from('abcdef'));
  assert.deepEqual(demux.push(wire.subarray(0, 10)), []);
  assert.equal(demux.buffered, 10);
  assert.throws(() => demux.finish(), (err) => isBerthError(err) && err.code === 'INVALID_ARGUMENT');

  const bad = Buffer.from([9, 0, 0, 0, 0, 0, 0, 1, 0x41]);
  assert.throws(() => new Demultiplexer().push(bad), (err) => isBerthError(err) && /stream 9/.test(err.message));

  const huge = Buffer.from([1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]);
  assert.throws(() => new Demultiplexer({ maxFrame: 1024 }).push(huge), /exceeds/);
});
