import * as assert from 'node:assert/strict';
import { createWriteStream } from 'node:fs';
import { lstat, readFile, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { test } from 'node:test';
import { Conflict, InvalidArgument, Unavailable } from '../../src/errors/errors.js';
import { readTar } from '../../src/archive/tar-reader.js';
import { TarWriter, type TarWriterHeader } from '../../src/archive/tar-writer.js';
import { exec, readAll, tempDir } from './helpers.js';

const LONG_NAME = `deep/${'d'.repeat(90)}/${'e'.repeat(90)}/${'f'.repeat(90)}/file.bin`;
const SPLIT_NAME = `${'p'.repeat(120)}/${'n'.repeat(80)}`;

interface Sample {
  header: TarWriterHeader;
  body?: Buffer;
}

const SAMPLES: Sample[] = [
  { header: { name: 'etc', type: 'directory', mode: 0o755, mtime: new Date(1_600_000_000_000) } },
  { header: { name: 'etc/hostname', type: 'file', mode: 0o644, uid: 1234, gid: 5678, uname: 'berth-nobody-a', gname: 'berth-nobody-g' }, body: Buffer.from('berth\n') },
  { header: { name: 'bin/su', type: 'file', mode: 0o4755 }, body: Buffer.alloc(70_000, 0xab) },
  { header: { name: 'tmp', type: 'directory', mode: 0o1777 } },
  { header: { name: 'etc/localtime', type: 'symlink', linkname: '/usr/share/zoneinfo/UTC' } },
  { header: { name: 'bin/sudo', type: 'hardlink', linkname: 'bin/su' } },
  { header: { name: 'dev/null', type: 'char', mode: 0o666, devmajor: 1, devminor: 3 } },
  { header: { name: 'dev/loop0', type: 'block', mode: 0o660, devmajor: 7, devminor: 0 } },
  { header: { name: 'run/fifo', type: 'fifo', mode: 0o600 } },
  { header: { name: LONG_NAME, type: 'file' }, body: Buffer.from('long name\n') },
  { header: { name: SPLIT_NAME, type: 'file' }, body: Buffer.from('split into prefix and name\n') },
  { header: { name: 'long-link', type: 'symlink', linkname: `../${'l'.repeat(150)}` } },
  { header: { name: 'ünïcödé/名前.txt', type: 'file', uname: 'ünï', gname: 'g'.repeat(40) }, body: Buffer.from('utf-8\n') },
  { header: { name: 'big-ids', type: 'file', uid: 3_000_000, gid: 0o7777777 + 1 }, body: Buffer.alloc(0) },
  { header: { name: 'old', type: 'file', mtime: new Date(-86_400_000) } },
  { header: { name: 'future', type: 'file', mtime: new Date(Date.UTC(2300, 0, 1)) } },
  {
    header: {
      name: 'usr/bin/ping',
      type: 'file',
      mode: 0o755,
      xattrs: { 'security.capability': Buffer.from([1, 0, 0, 2, 0, 0x20, 0, 0]), 'user.comment': Buffer.from('a=b\nc') },
    },
    body: Buffer.from('ping'),
  },
  { header: { name: 'exact-block', type: 'file' }, body: Buffer.alloc(512, 1) },
];

async function writeSamples(path?: string): Promise<Buffer> {
  const writer = new TarWriter();
  const parts: Buffer[] = [];
  const done = path === undefined ? collect(writer.stream, parts) : pipeline(writer.stream, createWriteStream(path));
  for (const sample of SAMPLES) await writer.add(sample.header, sample.body);
  await writer.finish();
  await done;
  return Buffer.concat(parts);
}

async function collect(stream: Readable, parts: Buffer[]): Promise<void> {
  for await (const chunk of stream) parts.push(chunk as Buffer);
}

test('what TarWriter writes reads back the same, header by header', async () => {
  const archive = await writeSamples();
  assert.equal(archive.length % 512, 0);
  assert.ok(archive.subarray(-1024).equals(Buffer.alloc(1024)), 'ends with two zero blocks');
  const entries = await readAll(Readable.from([archive]));
  assert.equal(entries.length, SAMPLES.length);
  for (const [i, { header, data }] of entries.entries()) {
    const sample = SAMPLES[i]!;
    const want = sample.header;
    const name = want.type === 'directory' ? `${want.name}/` : want.name;
    assert.equal(header.name, name);
    assert.equal(header.type, want.type, name);
    if (want.mode !== undefined) assert.equal(header.mode, want.mode, name);
    assert.equal(header.uid, want.uid ?? 0, name);
    assert.equal(header.gid, want.gid ?? 0, name);
    assert.equal(header.uname, want.uname ?? '', name);
    assert.equal(header.gname, want.gname ?? '', name);
    assert.equal(header.linkname, want.linkname ?? '', name);
    assert.equal(header.devmajor, want.devmajor ?? 0, name);
    assert.equal(header.devminor, want.devminor ?? 0, name);
    assert.equal(header.mtime.getTime(), Math.floor((want.mtime?.getTime() ?? 0) / 1000) * 1000, name);
    assert.deepEqual(header.xattrs, want.xattrs ?? {}, name);
    assert.deepEqual(data, sample.body ?? Buffer.alloc(0), name);
  }
});

test('GNU tar lists and extracts what TarWriter writes', async (t) => {
  const dir = await tempDir(t, 'tar-writer');
  const archive = join(dir, 'out.tar');
  await writeSamples(archive);
  const listed = (await exec('tar', ['-tf', archive])).stdout.split('\n').filter((l) => l !== '');
  assert.deepEqual(
    listed,
    SAMPLES.map((s) => (s.header.type === 'directory' ? `${s.header.name}/` : s.header.name)),
  );
  const verbose = (await exec('tar', ['-tvf', archive])).stdout;
  assert.match(verbose, /^crw-rw-rw- .* 1,3 .* dev\/null$/m);
  assert.match(verbose, /^-rwsr-xr-x .* bin\/su$/m);
  assert.match(verbose, /^drwxrwxrwt .* tmp\/$/m);
  assert.match(verbose, /^-rw-r--r-- berth-nobody-a\/berth-nobody-g +6 .* etc\/hostname$/m);

  const root = join(dir, 'root');
  await exec('mkdir', [root]);
  await exec('tar', ['--xattrs', '--xattrs-include=*', '--same-owner', '-C', root, '-xpf', archive]);
  assert.equal(await readFile(join(root, 'etc/hostname'), 'utf8'), 'berth\n');
  assert.equal(await readFile(join(root, LONG_NAME), 'utf8'), 'long name\n');
  assert.equal(await readFile(join(root, SPLIT_NAME), 'utf8'), 'split into prefix and name\n');
  assert.equal(await readFile(join(root, 'ünïcödé/名前.txt'), 'utf8'), 'utf-8\n');
  assert.equal(await readlink(join(root, 'etc/localtime')), '/usr/share/zoneinfo/UTC');
  assert.equal(await readlink(join(root, 'long-link')), `../${'l'.repeat(150)}`);
  const su = await lstat(join(root, 'bin/su'));
  assert.equal(su.mode & 0o7777, 0o4755);
  assert.equal(su.size, 70_000);
  assert.equal((await lstat(join(root, 'bin/sudo'))).ino, su.ino);
  const hostname = await lstat(join(root, 'etc/hostname'));
  assert.equal(hostname.uid, 1234);
  assert.equal(hostname.gid, 5678);
  assert.equal((await lstat(join(root, 'big-ids'))).uid, 3_000_000);
  assert.equal((await lstat(join(root, 'run/fifo'))).isFIFO(), true);
  assert.equal((await lstat(join(root, 'old'))).mtimeMs, -86_400_000);
  try {
    const { stdout } = await exec('python3', ['-c', `import os,sys; sys.stdout.write(os.getxattr(${JSON.stringify(join(root, 'usr/bin/ping'))}, 'user.comment').decode())`]);
    assert.equal(stdout, 'a=b\nc');
  } catch (err) {
    if (err instanceof assert.AssertionError) throw err;
    t.diagnostic('python3 with os.getxattr is not available: xattr extraction not checked');
  }
});

test('sizes beyond ustar go into a pax header', async () => {
  const writer = new TarWriter();
  const nineGiB = 9 * 1024 ** 3;
  const zeros = Buffer.alloc(65536);
  let sent = 0;
  const body = new Readable({
    read() {
      sent += zeros.length;
      this.push(zeros);
    },
  });
  const adding = writer.add({ name: 'huge', type: 'file', size: nineGiB }, body);
  for await (const { header } of readTar(writer.stream)) {
    assert.equal(header.size, nineGiB);
    break; // destroys the writer's stream
  }
  await assert.rejects(adding, Unavailable);
  assert.ok(sent < 16 * 1024 * 1024, `the body was not read ahead (${sent} bytes)`);
});

test('add waits for the reader: backpressure bounds what is read from a body', async () => {
  const writer = new TarWriter();
  const total = 8 * 1024 * 1024;
  let pulled = 0;
  const body = new Readable({
    read() {
      if (pulled >= total) {
        this.push(null);
        return;
      }
      pulled += 16384;
      this.push(Buffer.alloc(16384, 5));
    },
  });
  let added = false;
  const adding = writer.add({ name: 'slow', type: 'file', size: total }, body).then(() => (added = true));
  await new Promise((resolve) => setTimeout(resolve, 100));
  assert.equal(added, false);
  assert.ok(pulled < 1024 * 1024, `only a little was read while nobody consumed (${pulled} bytes)`);
  const finishing = adding.then(() => writer.finish());
  const entries = await readAll(writer.stream);
  await finishing;
  assert.equal(entries[0]?.data.length, total);
});

test('adds not awaited one by one keep their order', async () => {
  const writer = new TarWriter();
  const names = Array.from({ length: 50 }, (_, i) => `f${i}`);
  const adds = names.map((name) => writer.add({ name, type: 'file' }, Buffer.from(name)));
  const finishing = writer.finish();
  const entries = await readAll(writer.stream);
  await Promise.all([...adds, finishing]);
  assert.deepEqual(
    entries.map((e) => e.data.toString()),
    names,
  );
});

test('bad entries are refused with what was wrong', async () => {
  const writer = new TarWriter();
  writer.stream.resume();
  await assert.rejects(writer.add({ name: '', type: 'file' }), /an entry needs a name/);
  await assert.rejects(writer.add({ name: 'a\0b', type: 'file' }), /entry "a\\u0000b": name contains a NUL byte/);
  await assert.rejects(writer.add({ name: 'l', type: 'symlink' }), /entry "l": a symlink needs a linkname/);
  await assert.rejects(writer.add({ name: 'd', type: 'directory' }, Buffer.from('x')), /entry "d": a directory has no body/);
  await assert.rejects(writer.add({ name: 'm', type: 'file', mode: 0o10000 }), /entry "m": mode 4096 is out of range/);
  await assert.rejects(writer.add({ name: 'u', type: 'file', uid: -1 }), /entry "u": uid -1 is out of range/);
  await assert.rejects(writer.add({ name: 's', type: 'file', size: 3 }, Buffer.from('four')), /size 3 does not match the body of 4 bytes/);
  await assert.rejects(writer.add({ name: 'r', type: 'file' }, Readable.from([Buffer.from('x')])), /a stream body needs header.size/);
  await assert.rejects(writer.add({ name: 't', type: 'file', mtime: new Date(Number.NaN) }), /mtime is not a valid date/);
  // Refused before anything was written: the writer is still usable.
  await writer.add({ name: 'ok', type: 'file' }, Buffer.from('ok'));
  await writer.finish();
  await assert.rejects(writer.add({ name: 'late', type: 'file' }), Conflict);
});

test('a stream body of the wrong length fails the add and the archive', async () => {
  for (const [declared, actual, pattern] of [
    [10, 4, /the body ended after 4 of its 10 bytes/],
    [2, 4, /the body is longer than its size of 2 bytes/],
  ] as const) {
    const writer = new TarWriter();
    const errored = new Promise<unknown>((resolve) => writer.stream.on('error', resolve));
    writer.stream.resume();
    await assert.rejects(writer.add({ name: 'x', type: 'file', size: declared }, Readable.from([Buffer.alloc(actual)])), (err: unknown) => {
      assert.ok(err instanceof InvalidArgument);
      assert.match((err as Error).message, pattern);
      return true;
    });
    assert.ok((await errored) instanceof InvalidArgument, 'the half-written archive is failed');
  }
});
