import * as assert from 'node:assert/strict';
import { chmod, chown, link, lstat, mkdir, readFile, readlink, symlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { test, type TestContext } from 'node:test';
import { InvalidArgument } from '../../src/errors/errors.js';
import { readTar } from '../../src/archive/tar-reader.js';
import type { TarEntryType } from '../../src/archive/tar-reader.js';
import { END, chunked, exec, octal, padded, paxRecordText, rawHeader, readAll, tempDir } from './helpers.js';

const LONG_DIR = `dir/${'a'.repeat(120)}/${'b'.repeat(110)}`;
const LONG_FILE = `${LONG_DIR}/${'c'.repeat(60)}.txt`;
const LONG_TARGET = `../${'t'.repeat(200)}`;

async function hasPython(): Promise<boolean> {
  try {
    await exec('python3', ['-c', 'import os; os.setxattr']);
    return true;
  } catch {
    return false;
  }
}

/** A tree with every kind of entry GNU tar archives; `long` adds names beyond ustar's limits. */
async function makeTree(t: TestContext, long: boolean): Promise<{ root: string; xattrs: boolean }> {
  const root = await tempDir(t, 'tar-tree');
  const dir = join(root, 'dir');
  await mkdir(dir);
  await writeFile(join(dir, 'hello.txt'), 'hello, world\n');
  await writeFile(join(dir, 'empty'), '');
  await writeFile(join(dir, 'block-512'), Buffer.alloc(512, 7));
  await writeFile(join(dir, 'block-513'), Buffer.alloc(513, 9));
  await writeFile(join(dir, 'ünïcödé.txt'), 'unicode\n');
  await writeFile(join(dir, 'setuid'), '#!/bin/sh\n');
  await chmod(join(dir, 'setuid'), 0o4755);
  await mkdir(join(dir, 'sticky'));
  await chmod(join(dir, 'sticky'), 0o1777);
  await writeFile(join(dir, 'owned'), 'owned\n');
  await chown(join(dir, 'owned'), 1234, 5678);
  await utimes(join(dir, 'owned'), 1_000_000_000, 1_000_000_000);
  await symlink('hello.txt', join(dir, 'sym'));
  await link(join(dir, 'hello.txt'), join(dir, 'hard'));
  await exec('mkfifo', [join(dir, 'fifo')]);
  if (long) {
    await mkdir(join(root, LONG_DIR), { recursive: true });
    await writeFile(join(root, LONG_FILE), 'long\n');
    await symlink(LONG_TARGET, join(dir, 'longsym'));
    // Beyond the octal fields: GNU writes base-256 numbers, pax writes records.
    await writeFile(join(dir, 'big-owner'), 'big\n');
    await chown(join(dir, 'big-owner'), 3_000_000, 4_000_000);
    await writeFile(join(dir, 'far-future'), '');
    await utimes(join(dir, 'far-future'), 9_999_999_999, 9_999_999_999);
    await writeFile(join(dir, 'before-1970'), '');
    await exec('touch', ['-h', '-d', '@-315619200', join(dir, 'before-1970')]);
  }
  let xattrs = false;
  if (await hasPython()) {
    await exec('python3', ['-c', `import os; os.setxattr(${JSON.stringify(join(dir, 'hello.txt'))}, 'user.berth', b'\\x00\\xffbin')`]);
    xattrs = true;
  }
  return { root, xattrs };
}

function kindOf(st: Awaited<ReturnType<typeof lstat>>): TarEntryType {
  if (st.isDirectory()) return 'directory';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isFIFO()) return 'fifo';
  if (st.isCharacterDevice()) return 'char';
  if (st.isBlockDevice()) return 'block';
  return 'file';
}

for (const format of ['gnu', 'pax', 'ustar', 'v7'] as const) {
  test(`reads what GNU tar --format=${format} writes, matching the tree`, async (t) => {
    const long = format === 'gnu' || format === 'pax';
    const { root, xattrs } = await makeTree(t, long);
    const archive = join(root, 'out.tar');
    const args = [`--format=${format}`, '-C', root, '-cf', archive];
    if (format === 'pax') args.push('--xattrs', '--xattrs-include=*');
    const names = format === 'v7' ? ['dir/hello.txt', 'dir/hard', 'dir/sym', 'dir/block-513', 'dir/sticky'] : ['dir'];
    await exec('tar', [...args, ...names]);
    const listed = (await exec('tar', ['-tf', archive])).stdout.split('\n').filter((l) => l !== '');

    // Small chunks so that headers and bodies straddle chunk boundaries.
    const entries = await readAll(chunked(await readFile(archive), 1000));
    assert.equal(entries.length, listed.length);
    assert.deepEqual(
      entries.map((e) => e.header.name),
      listed,
    );
    const seenKinds = new Set<TarEntryType>();
    for (const { header, data } of entries) {
      const path = join(root, header.name);
      const st = await lstat(path);
      seenKinds.add(header.type);
      if (header.type === 'hardlink') {
        const target = await lstat(join(root, header.linkname));
        assert.equal(target.ino, st.ino, `${header.name} links to ${header.linkname}`);
        assert.equal(header.size, 0);
        continue;
      }
      assert.equal(header.type, kindOf(st), `type of ${header.name}`);
      assert.equal(header.mode, st.mode & 0o7777, `mode of ${header.name}`);
      assert.equal(header.uid, st.uid, `uid of ${header.name}`);
      assert.equal(header.gid, st.gid, `gid of ${header.name}`);
      assert.equal(Math.floor(header.mtime.getTime() / 1000), Math.floor(st.mtimeMs / 1000), `mtime of ${header.name}`);
      if (header.type === 'file') {
        assert.equal(header.size, st.size);
        assert.deepEqual(data, await readFile(path), `content of ${header.name}`);
      } else {
        assert.equal(header.size, 0);
        assert.equal(data.length, 0);
      }
      if (header.type === 'symlink') assert.equal(header.linkname, await readlink(path));
      if (header.type === 'directory' && format !== 'v7') assert.ok(header.name.endsWith('/'));
      if (format !== 'v7') assert.equal(header.uname, header.uid === 0 ? 'root' : header.uname);
    }
    assert.ok(seenKinds.has('hardlink') && seenKinds.has('symlink') && seenKinds.has('directory'));
    if (format !== 'v7') assert.ok(seenKinds.has('fifo'));
    if (long) {
      assert.equal(entries.find((e) => e.header.name === 'dir/big-owner')?.header.uid, 3_000_000);
      assert.equal(entries.find((e) => e.header.name === 'dir/far-future')?.header.mtime.getTime(), 9_999_999_999_000);
      assert.equal(entries.find((e) => e.header.name === 'dir/before-1970')?.header.mtime.getTime(), -315_619_200_000);
      assert.ok(entries.some((e) => e.header.name === LONG_FILE));
      assert.ok(entries.some((e) => e.header.linkname === LONG_TARGET));
    }
    const hello = entries.find((e) => e.header.name === 'dir/hello.txt' || e.header.linkname === 'dir/hello.txt');
    assert.ok(hello);
    if (format === 'pax' && xattrs) {
      const withXattr = entries.find((e) => e.header.xattrs['user.berth'] !== undefined);
      assert.ok(withXattr, 'the pax archive carries the xattr');
      assert.deepEqual(withXattr?.header.xattrs['user.berth'], Buffer.from([0, 0xff, 0x62, 0x69, 0x6e]));
    }
  });
}

test('reads device nodes with their numbers', async (t) => {
  const root = await tempDir(t, 'tar-dev');
  try {
    await exec('mknod', [join(root, 'null'), 'c', '1', '3']);
    await exec('mknod', [join(root, 'loop'), 'b', '7', '200']);
  } catch {
    t.skip('mknod is not permitted here');
    return;
  }
  const { stdout } = await exec('tar', ['--format=gnu', '-C', root, '-cf', '-', 'null', 'loop'], { encoding: 'buffer' });
  const entries = await readAll(Readable.from([stdout]));
  assert.deepEqual(
    entries.map((e) => [e.header.name, e.header.type, e.header.devmajor, e.header.devminor]),
    [
      ['null', 'char', 1, 3],
      ['loop', 'block', 7, 200],
    ],
  );
});

test('pax headers override name, link, ids, names, size and sub-second mtime', async () => {
  const records =
    paxRecordText('path', 'pax/überlong/name') +
    paxRecordText('linkpath', 'target') +
    paxRecordText('uid', '3000000') +
    paxRecordText('gid', '4000000') +
    paxRecordText('uname', 'someone') +
    paxRecordText('gname', 'others') +
    paxRecordText('mtime', '1700000000.123456789') +
    paxRecordText('atime', '1.5') +
    paxRecordText('SCHILY.xattr.security.capability', 'cap') +
    paxRecordText('LIBARCHIVE.xattr.user.a%3Db', Buffer.from('hi').toString('base64'));
  const archive = Buffer.concat([
    rawHeader({ name: 'PaxHeaders/x', typeflag: 'x', size: octal(Buffer.byteLength(records), 11) }),
    padded(records),
    rawHeader({ name: 'ignored', typeflag: '2', linkname: 'ignored-too', uid: '0000001', uname: 'root' }),
    rawHeader({ name: 'next', size: octal(3, 11) }),
    padded('abc'),
    END,
  ]);
  const [first, second] = await readAll(chunked(archive, 100));
  assert.ok(first && second);
  assert.equal(first.header.name, 'pax/überlong/name');
  assert.equal(first.header.type, 'symlink');
  assert.equal(first.header.linkname, 'target');
  assert.equal(first.header.uid, 3000000);
  assert.equal(first.header.gid, 4000000);
  assert.equal(first.header.uname, 'someone');
  assert.equal(first.header.gname, 'others');
  assert.equal(first.header.mtime.getTime(), 1700000000123);
  assert.deepEqual(first.header.xattrs, { 'security.capability': Buffer.from('cap'), 'user.a=b': Buffer.from('hi') });
  // The extended header applies to one entry only.
  assert.equal(second.header.name, 'next');
  assert.deepEqual(second.header.xattrs, {});
  assert.equal(second.data.toString(), 'abc');
});

test('pax size overrides the header size; global headers are skipped', async () => {
  const globalRecords = paxRecordText('comment', 'x'.repeat(700));
  const records = paxRecordText('size', '5');
  const archive = Buffer.concat([
    rawHeader({ name: 'global', typeflag: 'g', size: octal(globalRecords.length, 11) }),
    padded(globalRecords),
    rawHeader({ name: 'pax', typeflag: 'x', size: octal(records.length, 11) }),
    padded(records),
    rawHeader({ name: 'five', size: '00000000000' }),
    padded('12345'),
    END,
  ]);
  const entries = await readAll(Readable.from([archive]));
  assert.deepEqual(
    entries.map((e) => [e.header.name, e.data.toString()]),
    [['five', '12345']],
  );
});

test('GNU long name and long link name entries', async () => {
  const name = `${'n'.repeat(300)}/file`;
  const target = `${'l'.repeat(250)}`;
  const archive = Buffer.concat([
    rawHeader({ name: '././@LongLink', typeflag: 'L', size: octal(name.length + 1, 11), magic: 'gnu' }),
    padded(`${name}\0`),
    rawHeader({ name: '././@LongLink', typeflag: 'K', size: octal(target.length + 1, 11), magic: 'gnu' }),
    padded(`${target}\0`),
    rawHeader({ name: name.slice(0, 100), typeflag: '1', linkname: target.slice(0, 100), magic: 'gnu' }),
    END,
  ]);
  const [entry] = await readAll(Readable.from([archive]));
  assert.equal(entry?.header.name, name);
  assert.equal(entry?.header.linkname, target);
  assert.equal(entry?.header.type, 'hardlink');
});

test('ustar prefix joins the name; GNU headers ignore the prefix area', async () => {
  const archive = Buffer.concat([
    rawHeader({ name: 'leaf', prefix: 'some/prefix' }),
    rawHeader({ name: 'gnu-leaf', prefix: 'not-a-prefix', magic: 'gnu' }),
    END,
  ]);
  const entries = await readAll(Readable.from([archive]));
  assert.deepEqual(
    entries.map((e) => e.header.name),
    ['some/prefix/leaf', 'gnu-leaf'],
  );
});

test('old-GNU/v7: type NUL is a file, or a directory when the name ends in a slash', async () => {
  const archive = Buffer.concat([
    rawHeader({ name: 'olddir/', typeflag: '\0', magic: 'v7', mode: '0000755' }),
    rawHeader({ name: 'olddir/file', typeflag: '\0', magic: 'v7', size: octal(2, 11), uname: 'garbage' }),
    padded('hi'),
    rawHeader({ name: 'contiguous', typeflag: '7', magic: 'gnu' }),
    END,
  ]);
  const entries = await readAll(Readable.from([archive]));
  assert.deepEqual(
    entries.map((e) => [e.header.name, e.header.type, e.header.uname, e.data.toString()]),
    [
      ['olddir/', 'directory', '', ''],
      ['olddir/file', 'file', '', 'hi'],
      ['contiguous', 'file', '', ''],
    ],
  );
});

test('base-256 numeric fields and octal fields padded with spaces', async () => {
  const bigUid = Buffer.alloc(8);
  bigUid[0] = 0x80;
  bigUid.writeUInt32BE(0xfffffff0, 4);
  const negativeTime = Buffer.alloc(12, 0xff); // -1
  const size = Buffer.alloc(12);
  size[0] = 0x80;
  size[11] = 4;
  const archive = Buffer.concat([
    rawHeader({ name: 'big', uid: bigUid, mtime: negativeTime, size, gid: ' 1750 \0' }),
    padded('data'),
    END,
  ]);
  const [entry] = await readAll(Readable.from([archive]));
  assert.equal(entry?.header.uid, 0xfffffff0);
  assert.equal(entry?.header.gid, 0o1750);
  assert.equal(entry?.header.mtime.getTime(), -1000);
  assert.equal(entry?.header.size, 4);
  assert.equal(entry?.data.toString(), 'data');
});

test('a checksum summed over signed bytes is accepted', async () => {
  const archive = Buffer.concat([rawHeader({ name: 'ÿÿÿ-high-bytes', signedChecksum: true }), END]);
  const [entry] = await readAll(Readable.from([archive]));
  assert.equal(entry?.header.name, 'ÿÿÿ-high-bytes');
});

test('an empty input is an empty archive, as for docker', async () => {
  assert.deepEqual(await readAll(Readable.from([])), []);
  assert.deepEqual(await readAll(Readable.from([END])), []);
});

test('EOF after complete entries, without the zero blocks, is accepted', async () => {
  const full = Buffer.concat([rawHeader({ name: 'a', size: octal(3, 11) }), padded('abc')]);
  assert.deepEqual(
    (await readAll(Readable.from([full]))).map((e) => e.data.toString()),
    ['abc'],
  );
  // Even without the padding of the last body.
  const unpadded = full.subarray(0, 512 + 3);
  assert.deepEqual(
    (await readAll(Readable.from([unpadded]))).map((e) => e.data.toString()),
    ['abc'],
  );
  // One zero block, then the end.
  assert.equal((await readAll(Readable.from([full, Buffer.alloc(512)]))).length, 1);
});

test('the whole input is read after the end-of-archive blocks', async () => {
  const input = new PassThrough();
  const archive = Buffer.concat([rawHeader({ name: 'a' }), END, Buffer.alloc(10240 - 1536)]);
  input.end(archive);
  await readAll(input);
  assert.equal(input.readableEnded, true);
});

test('bodies left unread are skipped; a body destroyed halfway is skipped too', async () => {
  const big = Buffer.alloc(200_000, 1);
  const archive = Buffer.concat([
    rawHeader({ name: 'ignored', size: octal(big.length, 11) }),
    padded(big),
    rawHeader({ name: 'half', size: octal(big.length, 11) }),
    padded(big),
    rawHeader({ name: 'last', size: octal(4, 11) }),
    padded('last'),
    END,
  ]);
  const seen: string[] = [];
  for await (const { header, body } of readTar(chunked(archive, 4096))) {
    seen.push(header.name);
    if (header.name === 'half') {
      for await (const chunk of body) {
        assert.ok((chunk as Buffer).length > 0);
        break; // destroys the body
      }
    } else if (header.name === 'last') {
      const parts: Buffer[] = [];
      for await (const chunk of body) parts.push(chunk as Buffer);
      assert.equal(Buffer.concat(parts).toString(), 'last');
    }
  }
  assert.deepEqual(seen, ['ignored', 'half', 'last']);
});

test('a body still being piped is waited for, not cut', async () => {
  const big = Buffer.alloc(300_000, 3);
  const archive = Buffer.concat([rawHeader({ name: 'piped', size: octal(big.length, 11) }), padded(big), rawHeader({ name: 'next' }), END]);
  let total = 0;
  const names: string[] = [];
  for await (const { header, body } of readTar(chunked(archive, 16384))) {
    names.push(header.name);
    const sink = new PassThrough();
    sink.on('data', (c: Buffer) => (total += c.length));
    body.pipe(sink); // not awaited: the reader must wait for it
  }
  assert.deepEqual(names, ['piped', 'next']);
  assert.equal(total, big.length);
});

test('stopping early destroys the input', async () => {
  const input = new PassThrough();
  input.write(Buffer.concat([rawHeader({ name: 'a', size: octal(1000, 11) }), Buffer.alloc(100)]));
  for await (const entry of readTar(input)) {
    assert.equal(entry.header.name, 'a');
    break;
  }
  assert.equal(input.destroyed, true);
});

test('a body cut short fails both the body and the iteration with InvalidArgument', async () => {
  const archive = Buffer.concat([rawHeader({ name: 'short', size: octal(10_000, 11) }), Buffer.alloc(3000)]);
  const iterator = readTar(Readable.from([archive]));
  const first = await iterator.next();
  assert.equal(first.done, false);
  const body = first.value!.body;
  const bodyError = new Promise<unknown>((resolve) => body.on('error', resolve));
  body.resume();
  const err = await bodyError;
  assert.ok(err instanceof InvalidArgument);
  assert.match((err as InvalidArgument).message, /unexpected EOF.*"short" after 3000 of 10000 bytes/);
  await assert.rejects(iterator.next(), InvalidArgument);
});
