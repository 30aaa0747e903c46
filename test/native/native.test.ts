import * as assert from 'node:assert/strict';
import { closeSync, constants as fsc, fstatSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync,
  rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import * as native from '../../src/native/native.js';

let dir: string;
const mounted: string[] = [];

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'berth-native-'));
});

after(() => {
  for (const m of mounted.reverse()) {
    try {
      native.umount2(m, native.MNT_DETACH);
    } catch {
      // already unmounted
    }
  }
  rmSync(dir, { recursive: true, force: true });
});

function mountAndTrack(...args: Parameters<typeof native.mount>): void {
  native.mount(...args);
  mounted.push(args[1]);
}

function isMountPoint(path: string): boolean {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .some((line) => line.split(' ')[4] === path);
}

describe('native addon', () => {
  it('exports the constants the C headers define', () => {
    const c = native.nativeAddon().constants;
    const ours: Record<string, unknown> = { ...native };
    for (const [name, value] of Object.entries(c)) assert.equal(ours[name], value, name);
    assert.equal(Object.keys(c).length > 20, true);
  });

  it('mount and umount2 a tmpfs, with errors naming the path', () => {
    const target = join(dir, 'tmpfs');
    mkdirSync(target);
    mountAndTrack('tmpfs', target, 'tmpfs', native.MS_NOSUID | native.MS_NODEV, 'size=1m,mode=0710');
    assert.equal(isMountPoint(target), true);
    assert.equal(statSync(target).mode & 0o7777, 0o710);
    native.umount2(target);
    mounted.pop();
    assert.equal(isMountPoint(target), false);
    assert.throws(() => native.umount2(target), (err: NodeJS.ErrnoException) => {
      assert.equal(err.code, 'EINVAL');
      assert.equal(err.syscall, 'umount2');
      assert.equal(err.path, target);
      assert.match(err.message, new RegExp(`^umount2 ${target}: `));
      return true;
    });
    assert.throws(() => native.mount(null, join(dir, 'missing'), 'tmpfs', 0, null), { code: 'ENOENT' });
    assert.throws(() => native.nativeAddon().mount(null, 42 as unknown as string, null, 0, null), TypeError);
  });

  it('mounts overlay with lowerdirs relative to a cwd, leaving the process cwd alone', () => {
    const base = join(dir, 'ov');
    for (const d of ['l1', 'l2', 'u', 'w', 'm']) mkdirSync(join(base, d), { recursive: true });
    writeFileSync(join(base, 'l1', 'a'), 'from l1');
    writeFileSync(join(base, 'l2', 'a'), 'from l2');
    writeFileSync(join(base, 'l2', 'b'), 'only l2');
    const cwd = process.cwd();
    mountAndTrack('overlay', join(base, 'm'), 'overlay', 0, 'lowerdir=l1:l2,upperdir=u,workdir=w', base);
    assert.equal(process.cwd(), cwd);
    assert.equal(readFileSync(join(base, 'm', 'a'), 'utf8'), 'from l1');
    assert.equal(readFileSync(join(base, 'm', 'b'), 'utf8'), 'only l2');
    native.umount2(join(base, 'm'));
    mounted.pop();
    assert.throws(
      () => native.mount('overlay', join(base, 'm'), 'overlay', 0, 'lowerdir=l1', join(base, 'nope')),
      (err: NodeJS.ErrnoException) => err.code === 'ENOENT' && err.syscall === 'chdir',
    );
  });

  it('mknod makes fifos and the 0:0 char device overlay uses as a whiteout', () => {
    native.mknod(join(dir, 'fifo'), native.S_IFIFO | 0o640);
    const fifo = lstatSync(join(dir, 'fifo'));
    assert.equal(fifo.isFIFO(), true);
    assert.equal(fifo.mode & 0o777, 0o640 & ~process.umask());
    native.mknod(join(dir, 'wh'), native.S_IFCHR, native.makedev(0, 0));
    const wh = lstatSync(join(dir, 'wh'));
    assert.equal(wh.isCharacterDevice(), true);
    assert.equal(wh.rdev, 0);
    native.mknod(join(dir, 'null'), native.S_IFCHR | 0o600, native.makedev(1, 3));
    assert.equal(lstatSync(join(dir, 'null')).rdev, statSync('/dev/null').rdev);
    // glibc: minor & 0xff | (major & 0xfff) << 8 | (minor & ~0xff) << 12 | (major & ~0xfff) << 32
    assert.equal(native.makedev(259, 300), 0x11032c);
    assert.equal(native.makedev(0x1001, 0), 0x100000000100);
    assert.throws(() => native.mknod(join(dir, 'fifo'), native.S_IFIFO), { code: 'EEXIST' });
  });

  it('sets, gets and lists xattrs without following symlinks', () => {
    const file = join(dir, 'x-file');
    writeFileSync(file, '');
    symlinkSync(file, join(dir, 'x-link'));
    native.lsetxattr(join(dir, 'x-link'), 'trusted.berth', Buffer.from([1, 0, 2]));
    native.lsetxattr(file, 'user.empty', Buffer.alloc(0));
    assert.deepEqual(native.lgetxattr(join(dir, 'x-link'), 'trusted.berth'), Buffer.from([1, 0, 2]));
    assert.equal(native.lgetxattr(file, 'trusted.berth'), null);
    assert.deepEqual(native.lgetxattr(file, 'user.empty'), Buffer.alloc(0));
    assert.deepEqual(native.llistxattr(join(dir, 'x-link')), ['trusted.berth']);
    assert.deepEqual(native.llistxattr(file).sort(), ['user.empty']);
    assert.throws(() => native.lsetxattr(file, 'user.x', Buffer.alloc(1), native.XATTR_REPLACE), { code: 'ENODATA' });
    assert.throws(() => native.llistxattr(join(dir, 'nope')), { code: 'ENOENT' });
    assert.throws(() => native.nativeAddon().lsetxattr(file, 'user.x', 'str' as unknown as Buffer), TypeError);
  });

  it('syncfs flushes on a worker thread and rejects with the path', async () => {
    await native.syncfs(dir);
    await assert.rejects(native.syncfs(join(dir, 'missing')), (err: NodeJS.ErrnoException) => {
      assert.equal(err.code, 'ENOENT');
      assert.equal(err.syscall, 'syncfs');
      assert.match(err.message, /^syncfs .*missing: No such file or directory$/);
      return true;
    });
  });

  it('openInRoot resolves symlinks and .. as if the root were /', () => {
    const root = join(dir, 'root');
    mkdirSync(join(root, 'etc'), { recursive: true });
    writeFileSync(join(root, 'etc', 'passwd'), 'inside');
    symlinkSync('/etc', join(root, 'abs'));
    symlinkSync('../../../../../../etc', join(root, 'rel'));
    for (const path of ['abs/passwd', 'rel/passwd', '../../etc/passwd', '/etc/passwd', 'etc/../../../etc/passwd']) {
      const fd = native.openInRoot(root, path, fsc.O_RDONLY);
      try {
        assert.equal(readFileSync(fd, 'utf8'), 'inside', path);
      } finally {
        closeSync(fd);
      }
    }
    const dirFd = native.openInRoot(root, 'abs', native.O_PATH | fsc.O_DIRECTORY);
    try {
      assert.equal(readlinkSync(`/proc/self/fd/${dirFd}`), join(root, 'etc'));
      assert.equal(fstatSync(dirFd).isDirectory(), true);
    } finally {
      closeSync(dirFd);
    }
    const created = native.openInRoot(root, 'abs/new', fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL, 0o600);
    closeSync(created);
    assert.equal(lstatSync(join(root, 'etc', 'new')).mode & 0o777, 0o600 & ~process.umask());
    // /proc/self/root is a magic link: refused even where it exists
    assert.throws(() => native.openInRoot('/', 'proc/self/root/etc/passwd', fsc.O_RDONLY), { code: 'ELOOP' });
    assert.throws(() => native.openInRoot(root, 'abs/missing', fsc.O_RDONLY), (err: NodeJS.ErrnoException) => {
      assert.equal(err.code, 'ENOENT');
      assert.match(err.message, /^openInRoot abs\/missing \(in root .*\): No such file/);
      return true;
    });
    assert.throws(() => native.openInRoot(root, 'abs', fsc.O_RDONLY | fsc.O_NOFOLLOW), { code: 'ELOOP' });
  });
});
