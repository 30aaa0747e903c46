import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, readFileSync, readlinkSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';

import { InvalidArgument } from '../../src/errors/errors.js';
import { lgetxattr } from '../../src/native/native.js';
import { applyLayer, cleanLayerPath } from '../../src/snapshots/apply-layer.js';
import { ALPINE_ROOTFS, BUSYBOX_LAYER, Scratch, gnuTarExtract, layerStream, listTree, tarOf } from './helpers.js';

const scratch = new Scratch();
after(() => scratch.dispose());

const T1 = new Date('2020-01-02T03:04:05Z');
const T2 = new Date('2021-06-07T08:09:10Z');

describe('applyLayer: real layers', () => {
  it('unpacks the busybox layer exactly as GNU tar does, and it runs', async () => {
    const base = scratch.dir();
    const ours = join(base, 'ours');
    mkdirSync(ours);
    gnuTarExtract(BUSYBOX_LAYER, join(base, 'gnu'));
    const result = await applyLayer(ours, await layerStream(BUSYBOX_LAYER));
    assert.deepEqual(listTree(ours), listTree(join(base, 'gnu')));
    assert.deepEqual(result.skippedDevices, []);
    assert.ok(result.size > 1_000_000, `size ${result.size}`);
    // ~400 names share the busybox binary: the hardlinks were kept
    assert.ok(statSync(join(ours, 'bin', 'busybox')).nlink > 300);
    assert.equal(execFileSync(join(ours, 'bin', 'busybox'), ['echo', 'hello from the layer'], { encoding: 'utf8' }), 'hello from the layer\n');
  });

  it('unpacks the alpine minirootfs exactly as GNU tar does', async () => {
    const base = scratch.dir();
    const ours = join(base, 'ours');
    mkdirSync(ours);
    gnuTarExtract(ALPINE_ROOTFS, join(base, 'gnu'));
    const started = Date.now();
    const result = await applyLayer(ours, await layerStream(ALPINE_ROOTFS));
    const took = Date.now() - started;
    assert.deepEqual(listTree(ours, { withRoot: true }), listTree(join(base, 'gnu'), { withRoot: true }));
    assert.equal(readlinkSync(join(ours, 'bin', 'sh')), '/bin/busybox');
    assert.ok(result.size > 5_000_000);
    assert.ok(took < 5000, `took ${took} ms`);
  });
});

describe('applyLayer: entries', () => {
  it('sets owners, modes (setuid after chown), times, xattrs; directories last', async () => {
    const root = scratch.dir();
    await applyLayer(
      root,
      await tarOf([
        [{ name: 'd/', type: 'directory', mode: 0o750, uid: 1000, gid: 1001, mtime: T1 }],
        [{ name: 'd/su', type: 'file', mode: 0o4755, uid: 1000, gid: 1001, mtime: T2, xattrs: { 'user.note': Buffer.from('hi') } }, 'binary'],
        [{ name: 'd/ln', type: 'symlink', linkname: 'su', uid: 7, gid: 8, mtime: T2 }],
        [{ name: 'd/pipe', type: 'fifo', mode: 0o640, uid: 5, gid: 6, mtime: T2 }],
        [{ name: 'd/hard', type: 'hardlink', linkname: 'd/su' }],
        // a layer cannot forge overlay's own metadata
        [{ name: 'e/', type: 'directory', mtime: T1, xattrs: { 'trusted.overlay.opaque': Buffer.from('y'), 'trusted.overlay.redirect': Buffer.from('/x') } }],
      ]),
    );
    const d = statSync(join(root, 'd'));
    assert.equal(d.mode & 0o7777, 0o750);
    assert.equal(`${d.uid}:${d.gid}`, '1000:1001');
    assert.equal(d.mtime.getTime(), T1.getTime(), 'directory mtime set after its content was written');
    const su = statSync(join(root, 'd', 'su'));
    assert.equal(su.mode & 0o7777, 0o4755);
    assert.equal(`${su.uid}:${su.gid}`, '1000:1001');
    assert.equal(su.mtime.getTime(), T2.getTime());
    assert.equal(su.nlink, 2);
    assert.equal(readFileSync(join(root, 'd', 'hard'), 'utf8'), 'binary');
    assert.deepEqual(lgetxattr(join(root, 'd', 'su'), 'user.note'), Buffer.from('hi'));
    const ln = lstatSync(join(root, 'd', 'ln'));
    assert.equal(ln.isSymbolicLink(), true);
    assert.equal(`${ln.uid}:${ln.gid}`, '7:8');
    assert.equal(ln.mtime.getTime(), T2.getTime());
    const pipe = lstatSync(join(root, 'd', 'pipe'));
    assert.equal(pipe.isFIFO(), true);
    assert.equal(pipe.mode & 0o7777, 0o640);
    assert.equal(`${pipe.uid}:${pipe.gid}`, '5:6');
    assert.equal(lgetxattr(join(root, 'e'), 'trusted.overlay.opaque'), null);
    assert.equal(lgetxattr(join(root, 'e'), 'trusted.overlay.redirect'), null);
  });

  it('turns OCI whiteouts into overlay whiteouts and opaque directories', async () => {
    const root = scratch.dir();
    await applyLayer(
      root,
      await tarOf([
        [{ name: 'gone/', type: 'directory' }],
        [{ name: 'gone/file', type: 'file' }, 'x'],
        [{ name: '.wh.gone', type: 'file' }],
        [{ name: 'etc/.wh.passwd', type: 'file' }],
        [{ name: 'opq/', type: 'directory' }],
        [{ name: 'opq/.wh..wh..opq', type: 'file' }],
        [{ name: 'opq/kept', type: 'file' }, 'k'],
        [{ name: '.wh..wh.plnk/', type: 'directory' }],
      ]),
    );
    for (const path of ['gone', 'etc/passwd']) {
      const st = lstatSync(join(root, path));
      assert.equal(st.isCharacterDevice(), true, path);
      assert.equal(st.rdev, 0, path);
    }
    assert.deepEqual(lgetxattr(join(root, 'opq'), 'trusted.overlay.opaque'), Buffer.from('y'));
    assert.equal(readFileSync(join(root, 'opq', 'kept'), 'utf8'), 'k');
    assert.equal(existsSync(join(root, '.wh..wh.plnk')), false);
    assert.equal(existsSync(join(root, 'opq', '.wh..wh..opq')), false);
  });

  it('replaces an entry of another type, as docker does; merges directories', async () => {
    const root = scratch.dir();
    await applyLayer(
      root,
      await tarOf([
        [{ name: 'a', type: 'file' }, 'file a'],
        [{ name: 'a/', type: 'directory', mode: 0o700 }],
        [{ name: 'a/inner', type: 'file' }, 'in a'],
        [{ name: 'b/', type: 'directory' }],
        [{ name: 'b/deep/', type: 'directory' }],
        [{ name: 'b/deep/f', type: 'file' }, 'deep'],
        [{ name: 'b', type: 'file' }, 'file b'],
        [{ name: 'c', type: 'file' }, 'first'],
        [{ name: 'c', type: 'symlink', linkname: 'a/inner' }],
        [{ name: 'm/', type: 'directory', mode: 0o755 }],
        [{ name: 'm/one', type: 'file' }, '1'],
        [{ name: 'm/', type: 'directory', mode: 0o711 }],
        [{ name: 'f', type: 'file' }, 'old'],
        [{ name: 'f', type: 'file' }, 'new!'],
      ]),
    );
    assert.equal(statSync(join(root, 'a')).isDirectory(), true);
    assert.equal(readFileSync(join(root, 'a', 'inner'), 'utf8'), 'in a');
    assert.equal(readFileSync(join(root, 'b'), 'utf8'), 'file b');
    assert.equal(readlinkSync(join(root, 'c')), 'a/inner');
    assert.equal(readFileSync(join(root, 'm', 'one'), 'utf8'), '1');
    assert.equal(statSync(join(root, 'm')).mode & 0o7777, 0o711);
    assert.equal(readFileSync(join(root, 'f'), 'utf8'), 'new!');
  });

  it('creates missing parents and cleans names', async () => {
    const root = scratch.dir();
    await applyLayer(
      root,
      await tarOf([
        [{ name: './x/y/z/file', type: 'file' }, 'deep'],
        [{ name: '/abs/file', type: 'file' }, 'abs'],
        [{ name: 'q/../r/./s', type: 'file' }, 's'],
        [{ name: './', type: 'directory', mode: 0o751, mtime: T1 }],
      ]),
    );
    assert.equal(readFileSync(join(root, 'x/y/z/file'), 'utf8'), 'deep');
    assert.equal(statSync(join(root, 'x/y')).mode & 0o777, 0o755);
    assert.equal(readFileSync(join(root, 'abs/file'), 'utf8'), 'abs');
    assert.equal(readFileSync(join(root, 'r/s'), 'utf8'), 's');
    assert.equal(existsSync(join(root, 'q')), false);
    assert.equal(statSync(root).mode & 0o7777, 0o751);
    assert.equal(statSync(root).mtime.getTime(), T1.getTime());
    assert.equal(cleanLayerPath('/a//b/./c/'), 'a/b/c');
    assert.equal(cleanLayerPath('a/b/../../c'), 'c');
    assert.throws(() => cleanLayerPath('a/../../c'), InvalidArgument);
  });

  it('skips device nodes and reports them', async () => {
    const root = scratch.dir();
    const result = await applyLayer(
      root,
      await tarOf([
        [{ name: 'dev/', type: 'directory' }],
        [{ name: 'dev/null', type: 'char', devmajor: 1, devminor: 3 }],
        [{ name: 'dev/sda', type: 'block', devmajor: 8, devminor: 0 }],
        [{ name: 'dev/mem', type: 'char', devmajor: 1, devminor: 1 }],
      ]),
    );
    assert.deepEqual(result.skippedDevices, ['dev/null', 'dev/sda', 'dev/mem']);
    assert.deepEqual(listTree(join(root, 'dev')), []);
  });
});

describe('applyLayer: hostile layers touch nothing outside the root', () => {
  const base = scratch.dir('berth-hostile-');
  const sentinel = join(base, 'sentinel');
  mkdirSync(join(sentinel, 'sub'), { recursive: true });
  writeFileSync(join(sentinel, 'keep'), 'precious');
  writeFileSync(join(sentinel, 'sub', 'keep2'), 'precious too');
  const sentinelBefore = listTree(sentinel, { withRoot: true });
  const passwdBefore = statSync('/etc/passwd');
  const passwdContent = readFileSync('/etc/passwd');
  let n = 0;

  /** A fresh root beside the sentinel: base/root-N, so '../sentinel' is one step out. */
  function freshRoot(): string {
    const root = join(base, `root-${n++}`);
    mkdirSync(root);
    return root;
  }

  after(() => {
    assert.deepEqual(listTree(sentinel, { withRoot: true }), sentinelBefore);
    const passwd = statSync('/etc/passwd');
    assert.equal(passwd.nlink, passwdBefore.nlink);
    assert.equal(passwd.mtimeMs, passwdBefore.mtimeMs);
    assert.deepEqual(readFileSync('/etc/passwd'), passwdContent);
  });

  function assertSentinelUntouched(): void {
    assert.deepEqual(listTree(sentinel, { withRoot: true }), sentinelBefore);
    assert.equal(statSync('/etc/passwd').nlink, passwdBefore.nlink);
  }

  it('refuses names that climb out with ..', async () => {
    for (const name of ['../sentinel/evil', '../../evil', 'a/../../sentinel/evil', '/../sentinel/evil']) {
      const root = freshRoot();
      await assert.rejects(applyLayer(root, await tarOf([[{ name, type: 'file' }, 'evil']])), (err: Error) => {
        assert.ok(err instanceof InvalidArgument, String(err));
        assert.match(err.message, /climbs above the root/);
        assert.ok(err.message.includes(JSON.stringify(name)), err.message);
        return true;
      });
      assertSentinelUntouched();
    }
  });

  it('puts absolute names inside the root', async () => {
    const root = freshRoot();
    await applyLayer(root, await tarOf([[{ name: `${sentinel}/evil`, type: 'file' }, 'evil']]));
    assert.equal(readFileSync(join(root, sentinel, 'evil'), 'utf8'), 'evil');
    assertSentinelUntouched();
  });

  it('resolves a symlinked parent inside the root, never through it', async () => {
    // absolute and relative symlinks to the sentinel, then writes through them
    for (const linkname of [sentinel, '../sentinel', '../../../../../../..' + sentinel]) {
      const root = freshRoot();
      await assert.rejects(
        applyLayer(
          root,
          await tarOf([
            [{ name: 'esc', type: 'symlink', linkname }],
            [{ name: 'esc/evil', type: 'file' }, 'evil'],
          ]),
        ),
        (err: Error) => err instanceof InvalidArgument && /symlink that leads to no directory inside the layer/.test(err.message),
      );
      assertSentinelUntouched();
      assert.equal(existsSync(join(sentinel, 'evil')), false);
    }
    // where the target exists inside the root, the write lands there, as in a chroot
    const root = freshRoot();
    await applyLayer(
      root,
      await tarOf([
        [{ name: 'etc/', type: 'directory' }],
        [{ name: 'a', type: 'symlink', linkname: '/etc' }],
        [{ name: 'a/passwd', type: 'file' }, 'root::0:0::/:/bin/sh\n'],
        [{ name: 'up', type: 'symlink', linkname: '../../../etc' }],
        [{ name: 'up/group', type: 'file' }, 'g'],
        [{ name: 'up/new/deeper', type: 'file' }, 'deeper'],
      ]),
    );
    assert.equal(readFileSync(join(root, 'etc', 'passwd'), 'utf8'), 'root::0:0::/:/bin/sh\n');
    assert.equal(readFileSync(join(root, 'etc', 'group'), 'utf8'), 'g');
    assert.equal(readFileSync(join(root, 'etc', 'new', 'deeper'), 'utf8'), 'deeper');
    assert.equal(lstatSync(join(root, 'a')).isSymbolicLink(), true);
    assertSentinelUntouched();
  });

  it('does not reuse a cached directory that a later entry replaced with a symlink', async () => {
    const root = freshRoot();
    await assert.rejects(
      applyLayer(
        root,
        await tarOf([
          [{ name: 'd/', type: 'directory' }],
          [{ name: 'd/first', type: 'file' }, '1'],
          [{ name: 'd', type: 'symlink', linkname: sentinel }],
          [{ name: 'd/evil', type: 'file' }, 'evil'],
        ]),
      ),
      InvalidArgument,
    );
    assertSentinelUntouched();
    const root2 = freshRoot();
    await applyLayer(
      root2,
      await tarOf([
        [{ name: 'd/', type: 'directory' }],
        [{ name: 'd/first', type: 'file' }, '1'],
        [{ name: 'other/', type: 'directory' }],
        [{ name: 'd', type: 'symlink', linkname: '/other' }],
        [{ name: 'd/second', type: 'file' }, '2'],
      ]),
    );
    assert.equal(readFileSync(join(root2, 'other', 'second'), 'utf8'), '2');
    assertSentinelUntouched();
  });

  it('refuses hardlinks to anything outside the root', async () => {
    for (const linkname of ['/etc/passwd', '../../../../../etc/passwd', `${sentinel}/keep`, '../sentinel/keep']) {
      const root = freshRoot();
      await assert.rejects(applyLayer(root, await tarOf([[{ name: 'h', type: 'hardlink', linkname }]])), InvalidArgument);
      assertSentinelUntouched();
    }
    // through a symlinked parent
    const root = freshRoot();
    await assert.rejects(
      applyLayer(
        root,
        await tarOf([
          [{ name: 'e', type: 'symlink', linkname: '/etc' }],
          [{ name: 'h', type: 'hardlink', linkname: 'e/passwd' }],
        ]),
      ),
      InvalidArgument,
    );
    // to a symlink that points out: the link shares the symlink's inode, not its target's
    const root2 = freshRoot();
    await applyLayer(
      root2,
      await tarOf([
        [{ name: 's', type: 'symlink', linkname: '/etc/passwd' }],
        [{ name: 'h', type: 'hardlink', linkname: 's' }],
      ]),
    );
    assert.equal(lstatSync(join(root2, 'h')).isSymbolicLink(), true);
    assert.equal(lstatSync(join(root2, 'h')).ino, lstatSync(join(root2, 's')).ino);
    assertSentinelUntouched();
  });

  it('refuses whiteouts of . and .., and writes under a file', async () => {
    for (const name of ['.wh..', '.wh...', 'sub/.wh...']) {
      const root = freshRoot();
      mkdirSync(join(root, 'sub'));
      await assert.rejects(applyLayer(root, await tarOf([[{ name, type: 'file' }]])), InvalidArgument);
      assert.equal(existsSync(root), true);
      assert.equal(existsSync(join(root, 'sub')), true);
    }
    const root = freshRoot();
    await assert.rejects(
      applyLayer(root, await tarOf([[{ name: 'f', type: 'file' }, 'x'], [{ name: 'f/g', type: 'file' }, 'y']])),
      (err: Error) => err instanceof InvalidArgument && /parent "f" is not a directory/.test(err.message),
    );
    assertSentinelUntouched();
  });

  it('refuses a truncated body with a clear error', async () => {
    const root = freshRoot();
    const full = await tarOf([[{ name: 'big', type: 'file' }, Buffer.alloc(10000, 1)]]);
    const bytes: Buffer[] = [];
    for await (const c of full) bytes.push(c as Buffer);
    const cut = Buffer.concat(bytes).subarray(0, 3000);
    const { Readable } = await import('node:stream');
    await assert.rejects(applyLayer(root, Readable.from([cut])), InvalidArgument);
  });
});
