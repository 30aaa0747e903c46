// The archive operations of docker cp against a hostile root, without a daemon: a folder
// that plays a container's filesystem, full of symlinks that lead (on the host) to a
// sentinel folder. Nothing may be read from or written to the sentinel; what the
// operations find is the root's own content. Also the archive's naming (dir, dir/., /),
// hardlinks, FIFOs, conflicts and the CLI's rebasing of entries.
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, statSync, symlinkSync, writeFileSync, linkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';

import { readTar } from '../../src/archive/tar-reader.js';
import { TarWriter, type TarWriterHeader } from '../../src/archive/tar-writer.js';
import { prepareArchiveCopy, rebaseArchiveEntries } from '../../src/containers/archive-copy.js';
import { extractInRoot } from '../../src/containers/archive-extract.js';
import { GO_MODE, hasModeBit } from '../../src/containers/archive-path.js';
import { archiveInRoot, statInRoot } from '../../src/containers/archive-tar.js';

let scratch: string;
let root: string;
let sentinel: string;
let sentinelBefore: string;

/** Everything under a folder: names, types, modes, sizes, link targets and contents. */
function snapshot(dir: string): string {
  const lines: string[] = [];
  const walk = (path: string, rel: string): void => {
    const st = lstatSync(path);
    let extra = '';
    if (st.isSymbolicLink()) extra = `-> ${readlinkSync(path)}`;
    else if (st.isFile()) extra = readFileSync(path).toString('base64');
    lines.push(`${rel} ${st.mode.toString(8)} ${st.uid}:${st.gid} ${st.size} ${st.mtimeMs} ${extra}`);
    if (st.isDirectory()) for (const name of readdirSync(path).sort()) walk(join(path, name), `${rel}/${name}`);
  };
  walk(dir, '.');
  return lines.join('\n');
}

async function entries(stream: Readable): Promise<Array<{ name: string; type: string; linkname: string; data: string }>> {
  const out = [];
  for await (const { header, body } of readTar(stream)) {
    const parts: Buffer[] = [];
    for await (const chunk of body) parts.push(chunk as Buffer);
    out.push({ name: header.name, type: header.type, linkname: header.linkname, data: Buffer.concat(parts).toString() });
  }
  return out;
}

function tarOf(list: Array<{ header: TarWriterHeader; body?: string }>): Readable {
  const writer = new TarWriter();
  void (async () => {
    for (const { header, body } of list) await writer.add(header, body === undefined ? undefined : Buffer.from(body));
    await writer.finish();
  })();
  return writer.stream;
}

before(() => {
  scratch = mkdtempSync(join(tmpdir(), 'berth-archive-'));
  sentinel = join(scratch, 'sentinel');
  mkdirSync(sentinel);
  writeFileSync(join(sentinel, 'secret'), 'host secret\n');
  mkdirSync(join(sentinel, 'sub'));
  root = join(scratch, 'root');
  for (const dir of ['etc', 'tmp', 'data/sub', 'empty', 'dst']) mkdirSync(join(root, dir), { recursive: true });
  writeFileSync(join(root, 'etc', 'shadow'), 'container shadow\n');
  writeFileSync(join(root, 'data', 'a'), 'alpha\n');
  writeFileSync(join(root, 'data', 'sub', 'b'), 'beta\n');
  linkSync(join(root, 'data', 'a'), join(root, 'data', 'a-hardlink'));
  symlinkSync('a', join(root, 'data', 'a-link'));
  execFileSync('mkfifo', [join(root, 'data', 'fifo')]);
  // The hostile links: each leads to the sentinel if followed on the host.
  symlinkSync('/', join(root, 'tmp', 'x'));
  symlinkSync('/../../../../../../../../etc/shadow', join(root, 'etc', 'passwd'));
  symlinkSync(sentinel, join(root, 'sdir'));
  symlinkSync(join(sentinel, 'secret'), join(root, 'leak'));
  symlinkSync(`../../../../../../../../../..${sentinel}/secret`, join(root, 'leak-relative'));
  symlinkSync(`../../../../../../../../../..${sentinel}`, join(root, 'dst', 'up'));
  sentinelBefore = snapshot(sentinel);
});

after(() => {
  assert.equal(snapshot(sentinel), sentinelBefore, 'the sentinel outside the root changed');
  rmSync(scratch, { recursive: true, force: true });
});

describe('archive of a hostile root: stat (HEAD)', () => {
  it('stats a symlink itself and resolves its target inside the root', () => {
    const leak = statInRoot(root, '/leak');
    assert.ok(hasModeBit(leak.mode, GO_MODE.symlink));
    assert.equal(leak.name, 'leak');
    assert.equal(leak.linkTarget, `${sentinel}/secret`, 'a broken link names its target as a path in the root');
    const passwd = statInRoot(root, '/etc/passwd');
    assert.equal(passwd.linkTarget, '/etc/shadow');
    assert.equal(statInRoot(root, '/tmp/x').linkTarget, '/');
    assert.equal(statInRoot(root, '/leak-relative').linkTarget, `${sentinel}/secret`);
  });

  it('follows symlinked parents inside the root, and a trailing slash follows the last one', () => {
    const viaRoot = statInRoot(root, '/tmp/x/etc/shadow');
    assert.equal(viaRoot.size, 'container shadow\n'.length);
    const dir = statInRoot(root, '/tmp/x/');
    assert.ok(hasModeBit(dir.mode, GO_MODE.dir));
    assert.equal(dir.name, 'x');
    assert.throws(() => statInRoot(root, '/sdir/secret'), { code: 'ENOENT' });
    assert.throws(() => statInRoot(root, '/leak-relative/'), (err: NodeJS.ErrnoException) => err.code === 'ENOENT' || err.code === 'ENOTDIR');
  });
});

describe('archive of a hostile root: GET', () => {
  it('archives a directory under its name, symlinks as symlinks, a second link as a hardlink', async () => {
    const { stream, done } = archiveInRoot(root, '/data', 'data');
    const list = await entries(stream);
    await done;
    assert.deepEqual(
      list.map((e) => `${e.type} ${e.name}${e.linkname ? ` -> ${e.linkname}` : ''}`),
      ['directory data/', 'file data/a', 'hardlink data/a-hardlink -> data/a', 'symlink data/a-link -> a', 'fifo data/fifo', 'directory data/sub/', 'file data/sub/b'],
    );
    assert.equal(list[1]!.data, 'alpha\n');
  });

  it('names the content of dir/. with "./" and the root with "/"', async () => {
    const dot = archiveInRoot(root, '/data/sub/.', '.');
    assert.deepEqual((await entries(dot.stream)).map((e) => e.name), ['./', './b']);
    const top = archiveInRoot(root, '/', '/');
    const names = (await entries(top.stream)).map((e) => e.name);
    assert.equal(names[0], '/');
    assert.ok(names.includes('/etc/shadow'));
    assert.ok(names.includes('/leak'));
    await Promise.all([dot.done, top.done]);
  });

  it('reads the container\'s files through its own links, never the host\'s', async () => {
    assert.throws(() => archiveInRoot(root, '/tmp/x/etc/passwd/', 'passwd'), { code: 'ENOTDIR' });
    const followed = archiveInRoot(root, '/etc/shadow', 'passwd');
    assert.deepEqual(await entries(followed.stream), [{ name: 'passwd', type: 'file', linkname: '', data: 'container shadow\n' }]);
    const link = archiveInRoot(root, '/leak', 'leak');
    assert.deepEqual(await entries(link.stream), [{ name: 'leak', type: 'symlink', linkname: `${sentinel}/secret`, data: '' }]);
    assert.throws(() => archiveInRoot(root, '/sdir/secret', 'secret'), { code: 'ENOENT' });
    assert.throws(() => archiveInRoot(root, '/leak-relative/', 'x'));
    await Promise.all([followed.done, link.done]);
  });
});

describe('archive of a hostile root: PUT', () => {
  const put = (dest: string, list: Array<{ header: TarWriterHeader; body?: string }>, noOverwriteDirNonDir = true) =>
    extractInRoot(root, dest, tarOf(list), { noOverwriteDirNonDir, owner: 'archive' });

  it('extracts files, directories, symlinks, hardlinks and FIFOs with owners, modes and times', async () => {
    const mtime = new Date('2020-01-02T03:04:05Z');
    const result = await put('/dst', [
      { header: { name: 'tree/', type: 'directory', mode: 0o750, uid: 1234, gid: 5678, mtime } },
      { header: { name: 'tree/f', type: 'file', mode: 0o640, uid: 1234, gid: 5678, mtime }, body: 'content' },
      { header: { name: 'tree/l', type: 'symlink', linkname: 'f', uid: 7, gid: 8, mtime } },
      { header: { name: 'tree/h', type: 'hardlink', linkname: 'tree/f' } },
      { header: { name: 'tree/p', type: 'fifo', mode: 0o600, mtime } },
      { header: { name: 'deep/er/file', type: 'file' }, body: 'x' },
    ]);
    assert.equal(result.entries, 6);
    const tree = join(root, 'dst', 'tree');
    const dirSt = statSync(tree);
    assert.equal(dirSt.mode & 0o7777, 0o750);
    assert.deepEqual([dirSt.uid, dirSt.gid, dirSt.mtime.getTime()], [1234, 5678, mtime.getTime()]);
    const fileSt = statSync(join(tree, 'f'));
    assert.deepEqual([fileSt.mode & 0o7777, fileSt.uid, fileSt.nlink, fileSt.mtime.getTime()], [0o640, 1234, 2, mtime.getTime()]);
    assert.equal(readlinkSync(join(tree, 'l')), 'f');
    assert.equal(lstatSync(join(tree, 'l')).uid, 7);
    assert.ok(lstatSync(join(tree, 'p')).isFIFO());
    assert.equal(readFileSync(join(root, 'dst', 'deep', 'er', 'file'), 'utf8'), 'x');
    assert.equal(statSync(join(root, 'dst', 'deep')).mode & 0o777, 0o755);
  });

  it('refuses names and links that climb out, and creates no device nodes', async () => {
    await assert.rejects(put('/dst', [{ header: { name: '../../escape', type: 'file' }, body: 'x' }]), { message: '"../../escape" is outside of "/dst"' });
    await assert.rejects(put('/dst', [{ header: { name: 'h', type: 'hardlink', linkname: '../etc/shadow' } }]), /invalid hardlink/);
    await assert.rejects(put('/dst', [{ header: { name: 'a/s', type: 'symlink', linkname: '../../..' } }]), { message: 'invalid symlink "/dst/a/s" -> "../../.."' });
    const devices = await put('/dst', [
      { header: { name: 'null', type: 'char', devmajor: 1, devminor: 3 } },
      { header: { name: 'sda', type: 'block', devmajor: 8, devminor: 0 } },
      { header: { name: '/rooted', type: 'file' }, body: 'inside' },
    ]);
    assert.deepEqual(devices.skippedDevices, ['/dst/null', '/dst/sda']);
    assert.throws(() => lstatSync(join(root, 'dst', 'null')), { code: 'ENOENT' });
    assert.equal(readFileSync(join(root, 'dst', 'rooted'), 'utf8'), 'inside');
  });

  it('resolves symlinked parents inside the root: writes land in the root or fail', async () => {
    // /sdir -> <sentinel> does not exist inside the root.
    await assert.rejects(extractInRoot(root, '/sdir', tarOf([{ header: { name: 'pwned', type: 'file' }, body: 'x' }]), { noOverwriteDirNonDir: true, owner: 'archive' }), {
      code: 'ENOENT',
    });
    await assert.rejects(put('/', [{ header: { name: 'sdir/pwned', type: 'file' }, body: 'x' }]), /no such file or directory/);
    await assert.rejects(put('/dst', [{ header: { name: 'up/pwned', type: 'file' }, body: 'x' }]), /no such file or directory/);
    // A symlink the archive itself makes, then an entry through it.
    await assert.rejects(
      put('/dst', [
        { header: { name: 'evil', type: 'symlink', linkname: sentinel } },
        { header: { name: 'evil/pwned', type: 'file' }, body: 'x' },
      ]),
      /no such file or directory/,
    );
    // /tmp/x -> / leads to the root: the file lands in the root's /etc.
    await put('/tmp/x/etc', [{ header: { name: 'via-x', type: 'file' }, body: 'root' }]);
    assert.equal(readFileSync(join(root, 'etc', 'via-x'), 'utf8'), 'root');
    // A symlink in the way of a file is replaced, not written through.
    await put('/', [{ header: { name: 'leak', type: 'file' }, body: 'replaced' }], false);
    assert.ok(lstatSync(join(root, 'leak')).isFile());
    symlinkSync(join(sentinel, 'secret'), join(root, 'leak2'));
    await put('/', [{ header: { name: 'leak2', type: 'file' }, body: 'replaced' }]);
    assert.equal(readFileSync(join(root, 'leak2'), 'utf8'), 'replaced');
  });

  it('keeps directories and non-directories from replacing each other with noOverwriteDirNonDir', async () => {
    mkdirSync(join(root, 'dst', 'cdir'));
    writeFileSync(join(root, 'dst', 'cfile'), 'f');
    await assert.rejects(put('/dst', [{ header: { name: 'cdir', type: 'file' }, body: 'x' }]), {
      message: 'cannot overwrite directory "/dst/cdir" with non-directory "/dst"',
    });
    await assert.rejects(put('/dst', [{ header: { name: 'cfile/', type: 'directory' } }]), {
      message: 'cannot overwrite non-directory "/dst/cfile" with directory "/dst"',
    });
    await put('/dst', [{ header: { name: 'cdir', type: 'file' }, body: 'now a file' }], false);
    assert.equal(readFileSync(join(root, 'dst', 'cdir'), 'utf8'), 'now a file');
  });

  it('the CLI side: rebased entries extract under the destination name, owners left alone', async () => {
    const out = join(scratch, 'out');
    mkdirSync(out);
    const { stream, stat, done } = archiveInRoot(root, '/data', 'data');
    const prepared = prepareArchiveCopy(stream, { path: '/data', exists: true, isDir: hasModeBit(stat.mode, GO_MODE.dir), rebaseName: '' }, { path: join(out, 'copy'), exists: false, isDir: false, rebaseName: '' });
    assert.equal(prepared.dstDir, out);
    await extractInRoot(out, '/', prepared.content, { noOverwriteDirNonDir: true, owner: 'none', shownRoot: out });
    await done;
    assert.equal(readFileSync(join(out, 'copy', 'sub', 'b'), 'utf8'), 'beta\n');
    assert.equal(statSync(join(out, 'copy', 'a')).ino, statSync(join(out, 'copy', 'a-hardlink')).ino);
    assert.throws(() => prepareArchiveCopy(Readable.from([]), { path: '/f', exists: true, isDir: false, rebaseName: '' }, { path: '/x/', exists: false, isDir: false, rebaseName: '' }), {
      message: 'no such directory',
    });
    assert.throws(() => prepareArchiveCopy(Readable.from([]), { path: '/d', exists: true, isDir: true, rebaseName: '' }, { path: '/f', exists: true, isDir: false, rebaseName: '' }), {
      message: 'cannot copy directory',
    });
    const rebased = await entries(rebaseArchiveEntries(archiveInRoot(root, '/', '/').stream, '/', 'rootcopy'));
    assert.equal(rebased[0]!.name, 'rootcopy/');
    assert.ok(rebased.some((e) => e.name === 'rootcopy/data/a-hardlink' && e.linkname === 'rootcopy/data/a'));
  });
});
