import * as assert from 'node:assert/strict';
import { PassThrough, Readable } from 'node:stream';
import { test } from 'node:test';
import { BerthError, InvalidArgument, NotImplemented } from '../../src/errors/errors.js';
import { readTar } from '../../src/archive/tar-reader.js';
import { TarWriter } from '../../src/archive/tar-writer.js';
import { END, chunked, octal, padded, paxRecordText, rawHeader, readAll } from './helpers.js';

function rejectsWith(input: Buffer | Readable, pattern: RegExp, kind: abstract new (message: string) => BerthError = InvalidArgument): Promise<void> {
  const stream = Buffer.isBuffer(input) ? Readable.from([input]) : input;
  return assert.rejects(readAll(stream), (err: unknown) => {
    assert.ok(err instanceof kind, `expected ${kind.name}, got ${String(err)}`);
    assert.match((err as Error).message, pattern);
    return true;
  });
}

function paxArchive(records: string, declared = Buffer.byteLength(records)): Buffer {
  return Buffer.concat([
    rawHeader({ name: 'pax', typeflag: 'x', size: octal(declared, 11) }),
    padded(records),
    rawHeader({ name: 'file' }),
    END,
  ]);
}

test('a header with a wrong checksum is refused', async () => {
  const block = rawHeader({ name: 'file' });
  block[0] = 0x67; // 'g' instead of 'f', after the checksum was computed
  await rejectsWith(Buffer.concat([block, END]), /archive\/tar: invalid tar header at offset 0: checksum mismatch/);
});

test('a checksum field that is not a number is refused', async () => {
  await rejectsWith(Buffer.concat([rawHeader({ chksum: 'zzzzzz\0 ' }), END]), /checksum field is not a number/);
});

test('an input cut inside a header is refused', async () => {
  const archive = Buffer.concat([rawHeader({ name: 'a' }), rawHeader({ name: 'b' })]).subarray(0, 800);
  await rejectsWith(archive, /unexpected EOF: the archive ends in a header \(288 of 512 bytes\)/);
});

test('an input cut inside a body is refused even when nobody reads the body', async () => {
  const archive = Buffer.concat([rawHeader({ name: 'big', size: octal(100_000, 11) }), Buffer.alloc(50_000)]);
  const names: string[] = [];
  await assert.rejects(
    (async () => {
      for await (const { header } of readTar(chunked(archive, 8192))) names.push(header.name);
    })(),
    /unexpected EOF: the archive ends in the body of "big" after 49152 of 100000 bytes|unexpected EOF.*"big"/,
  );
  assert.deepEqual(names, ['big']);
});

test('an input cut after an extended header, before its entry, is refused', async () => {
  const records = paxRecordText('path', 'x');
  const archive = Buffer.concat([rawHeader({ name: 'pax', typeflag: 'x', size: octal(records.length, 11) }), padded(records)]);
  await rejectsWith(archive, /after an extended header, before its entry/);
});

test('a size field that is not a number is refused', async () => {
  await rejectsWith(Buffer.concat([rawHeader({ size: '0000000012z' }), END]), /size field "0000000012z" is not a number/);
  await rejectsWith(Buffer.concat([rawHeader({ size: '12 34' }), END]), /size field "12 34" is not a number/);
});

test('a negative base-256 size is refused', async () => {
  await rejectsWith(Buffer.concat([rawHeader({ size: Buffer.alloc(12, 0xff) }), END]), /negative size -1/);
});

test('pax records whose length lies are refused', async () => {
  await rejectsWith(paxArchive('99 path=foo\n'), /record at offset 0: length 99 does not fit/);
  await rejectsWith(paxArchive('5 path=foo\n'), /length 5 does not fit|does not end at a newline/);
  await rejectsWith(paxArchive('13 path=foo\n'), /length 13 does not fit/);
  await rejectsWith(paxArchive('14 path=foo\nxx'), /length 14 does not end at a newline/);
  await rejectsWith(paxArchive('1 a=b\n'), /length 1 does not fit/);
  await rejectsWith(paxArchive('x1 path=foo\n'), /length "x1" is not a number/);
  await rejectsWith(paxArchive('11 pathfoo\n'), /no "=" between key and value/);
  await rejectsWith(paxArchive('path=foo\n'), /no length before the first space|is not a number/);
});

test('pax values of the wrong shape are refused', async () => {
  await rejectsWith(paxArchive(paxRecordText('uid', 'abc')), /uid="abc" is not a number/);
  await rejectsWith(paxArchive(paxRecordText('size', '-5')), /size="-5" is not a number/);
  await rejectsWith(paxArchive(paxRecordText('mtime', '12.3.4')), /mtime="12.3.4" is not a time/);
  await rejectsWith(paxArchive(paxRecordText('GNU.sparse.major', '1')), /sparse files are not supported/, NotImplemented);
});

test('oversized pax headers and long names are refused before they are read', async () => {
  for (const typeflag of ['x', 'L', 'K']) {
    // The input never ends: a reader that tried to buffer the declared size would hang.
    const input = new PassThrough();
    input.write(rawHeader({ name: 'huge', typeflag, size: octal(0o77777777777, 11) }));
    await rejectsWith(input, /of 8589934591 bytes is larger than the limit of 1048576 bytes/);
    assert.equal(input.destroyed, true);
  }
  const justOver = paxArchive('', (1 << 20) + 1);
  await rejectsWith(justOver, /larger than the limit/);
});

test('a chain of extended headers before one entry is capped as a whole', async () => {
  const record = paxRecordText('SCHILY.xattr.user.big', 'v'.repeat(900 * 1024));
  const one = Buffer.concat([rawHeader({ name: 'pax', typeflag: 'x', size: octal(record.length, 11) }), padded(record)]);
  await rejectsWith(Buffer.concat([one, one, one, rawHeader({ name: 'file' }), END]), /extended headers before one entry total more than 2097152 bytes/);
  // Two are fine, and the xattr arrives once.
  const [entry] = await readAll(Readable.from([Buffer.concat([one, one, rawHeader({ name: 'file' }), END])]));
  assert.equal(entry?.header.xattrs['user.big']?.length, 900 * 1024);
});

test('a zero block followed by a non-zero block is refused', async () => {
  await rejectsWith(Buffer.concat([Buffer.alloc(512), rawHeader({ name: 'after' })]), /a zero block followed by a non-zero block/);
});

test('unknown and unsupported entry types are refused with their name', async () => {
  await rejectsWith(Buffer.concat([rawHeader({ name: 'odd', typeflag: 'Z' }), END]), /entry "odd" has unknown type flag "Z"/);
  await rejectsWith(
    Buffer.concat([rawHeader({ name: 'sparse', typeflag: 'S', magic: 'gnu' }), END]),
    /entry "sparse": GNU sparse files are not supported/,
    NotImplemented,
  );
});

test('text and object chunks are refused as input', async () => {
  await rejectsWith(Readable.from(['not bytes'], { objectMode: true }), /archive\/tar: the input is not a byte stream: it gave a chunk of type string/);
});

/** A small deterministic generator, so that a failure can be replayed. */
function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state * 1664525 + 1013904223) >>> 0;
    return state / 0x100000000;
  };
}

test('corrupted and truncated archives end in a clear error or a clean read, never a hang', async () => {
  const writer = new TarWriter();
  const parts: Buffer[] = [];
  writer.stream.on('data', (c: Buffer) => parts.push(c));
  const ended = new Promise((resolve) => writer.stream.on('end', resolve));
  await writer.add({ name: 'dir', type: 'directory' });
  await writer.add({ name: `dir/${'long'.repeat(40)}`, type: 'file', xattrs: { 'user.a': Buffer.from('b') } }, Buffer.alloc(1500, 1));
  await writer.add({ name: 'dir/link', type: 'symlink', linkname: 'x'.repeat(150) });
  await writer.add({ name: 'dir/small', type: 'file' }, Buffer.from('small'));
  await writer.finish();
  await ended;
  const archive = Buffer.concat(parts);
  const random = prng(42);
  let clean = 0;
  let refused = 0;
  for (let round = 0; round < 400; round++) {
    const copy = Buffer.from(archive);
    let input: Buffer;
    if (round % 4 === 0) {
      input = copy.subarray(0, Math.floor(random() * copy.length));
    } else {
      for (let flips = 1 + Math.floor(random() * 3); flips > 0; flips--) {
        copy[Math.floor(random() * copy.length)] = Math.floor(random() * 256);
      }
      input = copy;
    }
    try {
      await readAll(chunked(input, 1 + Math.floor(random() * 2000)));
      clean++;
    } catch (err) {
      assert.ok(err instanceof InvalidArgument || err instanceof NotImplemented, `round ${round}: ${String(err)}`);
      refused++;
    }
  }
  assert.ok(refused > 100, `most damaged archives are refused (${refused} refused, ${clean} read)`);
});
