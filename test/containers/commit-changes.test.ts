// ContainerFilesystem over real directories laid out as overlay layers (whiteouts as char
// devices 0:0, opaque directories by xattr): the image's merged view, docker's diff rules,
// and the runtime's mount points left out.
import * as assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ChangeKind, ContainerFilesystem, type FilesystemChange } from '../../src/containers/container-changes.js';
import { S_IFCHR, lsetxattr, mknod } from '../../src/native/native.js';

let root: string;

before(() => {
  root = mkdtempSync(join(tmpdir(), 'berth-changes-'));
});

after(() => {
  rmSync(root, { recursive: true, force: true });
});

const T0 = new Date('2024-01-02T03:04:05Z');

let counter = 0;

/** Three fresh layer directories: bottom, middle (both image) and upper (the container's). */
function layers(): { bottom: string; middle: string; upper: string } {
  const base = join(root, String(counter++));
  const out = { bottom: join(base, 'bottom'), middle: join(base, 'middle'), upper: join(base, 'upper') };
  for (const dir of Object.values(out)) mkdirSync(dir, { recursive: true });
  return out;
}

function file(path: string, content = 'x'): void {
  mkdirSync(join(path, '..'), { recursive: true });
  writeFileSync(path, content);
}

function dir(path: string, time = T0): void {
  mkdirSync(path, { recursive: true });
  utimesSync(path, time, time);
}

function whiteout(path: string): void {
  mkdirSync(join(path, '..'), { recursive: true });
  mknod(path, S_IFCHR | 0o000, 0);
}

function opaque(path: string): void {
  lsetxattr(path, 'trusted.overlay.opaque', Buffer.from('y'));
}

function lines(changes: FilesystemChange[]): string[] {
  return changes.map((c) => `${'CAD'[c.Kind]} ${c.Path}`);
}

describe('ContainerFilesystem: the image as overlayfs merges it', () => {
  it('finds an entry in the topmost layer that has it, unless a whiteout or opaque dir hides it', async () => {
    const { bottom, middle, upper } = layers();
    file(join(bottom, 'a/kept'));
    file(join(bottom, 'a/gone'));
    whiteout(join(middle, 'a/gone'));
    file(join(bottom, 'b/old'));
    dir(join(middle, 'b'));
    opaque(join(middle, 'b'));
    file(join(middle, 'b/new'));
    file(join(bottom, 'c/under'));
    file(join(middle, 'c'), 'now a file');
    const fs = new ContainerFilesystem(upper, [middle, bottom]);
    assert.ok(await fs.lowerStat('a/kept'));
    assert.equal(await fs.lowerStat('a/gone'), undefined);
    assert.equal(await fs.lowerStat('b/old'), undefined, 'an opaque directory hides what lies below');
    assert.ok(await fs.lowerStat('b/new'));
    assert.equal(await fs.lowerStat('c/under'), undefined, 'a file over a directory hides its content');
    assert.ok((await fs.lowerStat('c'))?.isFile());
    assert.equal(await fs.lowerStat('nowhere/at/all'), undefined);
    assert.deepEqual((await fs.lowerNames('a')).sort(), ['kept']);
    assert.deepEqual((await fs.lowerNames('b')).sort(), ['new']);
    assert.deepEqual(await fs.lowerNames('c'), []);
    assert.deepEqual((await fs.lowerNames('')).sort(), ['a', 'b', 'c']);
  });

  it('opens a container snapshot: the upper dir and its parents, top first', async () => {
    const { OverlaySnapshotter } = await import('../../src/snapshots/overlay-snapshotter.js');
    const snapshots = new OverlaySnapshotter(join(root, `snapshotter-${counter++}`));
    await snapshots.prepare('l1');
    await snapshots.commit('sha256:l1', 'l1');
    await snapshots.prepare('l2', 'sha256:l1');
    await snapshots.commit('sha256:l2', 'l2');
    await snapshots.prepare('box', 'sha256:l2');
    const fs = await ContainerFilesystem.open(snapshots, 'box');
    assert.equal(fs.upper, snapshots.upperDir('box'));
    assert.deepEqual(fs.lowers, [snapshots.upperDir('sha256:l2'), snapshots.upperDir('sha256:l1')]);
    assert.deepEqual(fs.layers, [fs.upper, ...fs.lowers]);
  });
});

describe('ContainerFilesystem.changes: docker diff', () => {
  it('added, modified and deleted paths, with the directory above each added or deleted one', async () => {
    const { bottom, middle, upper } = layers();
    dir(join(bottom, 'etc'));
    file(join(bottom, 'etc/passwd'));
    dir(join(bottom, 'bin'));
    file(join(bottom, 'bin/rm'));
    file(join(bottom, 'bin/ls'));
    utimesSync(join(bottom, 'etc'), T0, T0);
    utimesSync(join(bottom, 'bin'), T0, T0);
    // The upper dir: copied-up directories keep the image's times unless their content changed.
    file(join(upper, 'etc/passwd'), 'changed');
    utimesSync(join(upper, 'etc'), T0, T0);
    whiteout(join(upper, 'bin/rm'));
    utimesSync(join(upper, 'bin'), T0, T0);
    file(join(upper, 'x'));
    file(join(upper, 'new/dir/file'));
    const fs = new ContainerFilesystem(upper, [middle, bottom]);
    assert.deepEqual(lines(await fs.changes()), [
      'C /bin',
      'D /bin/rm',
      'C /etc/passwd',
      'A /new',
      'A /new/dir',
      'A /new/dir/file',
      'A /x',
    ]);
  });

  it('a directory whose mtime changed is changed itself; one whose mode changed too', async () => {
    const { bottom, upper } = layers();
    dir(join(bottom, 'tmp'));
    dir(join(bottom, 'srv'));
    dir(join(upper, 'tmp'), new Date('2025-01-01T00:00:00Z'));
    dir(join(upper, 'srv'));
    const { chmodSync } = await import('node:fs');
    chmodSync(join(bottom, 'srv'), 0o755);
    chmodSync(join(upper, 'srv'), 0o700);
    utimesSync(join(upper, 'srv'), T0, T0);
    const fs = new ContainerFilesystem(upper, [bottom]);
    assert.deepEqual(lines(await fs.changes()), ['C /srv', 'C /tmp']);
  });

  it('a name the image deleted in one layer and the container adds back is added, not changed', async () => {
    const { bottom, middle, upper } = layers();
    file(join(bottom, 'again'));
    whiteout(join(middle, 'again'));
    file(join(upper, 'again'));
    const fs = new ContainerFilesystem(upper, [middle, bottom]);
    assert.deepEqual(lines(await fs.changes()), ['A /again']);
  });

  it('an opaque directory: what it hid of the image is deleted, its content added or changed', async () => {
    const { bottom, upper } = layers();
    dir(join(bottom, 'etc'));
    file(join(bottom, 'etc/network/if-up.d/script'));
    file(join(bottom, 'etc/network/interfaces'));
    file(join(bottom, 'etc/network/keep'));
    utimesSync(join(bottom, 'etc'), T0, T0);
    dir(join(upper, 'etc'));
    file(join(upper, 'etc/network/keep'), 'new content');
    file(join(upper, 'etc/network/only'));
    opaque(join(upper, 'etc/network'));
    utimesSync(join(upper, 'etc'), T0, T0);
    const fs = new ContainerFilesystem(upper, [bottom]);
    assert.deepEqual(lines(await fs.changes()), [
      'C /etc/network',
      'D /etc/network/if-up.d',
      'D /etc/network/interfaces',
      'C /etc/network/keep',
      'A /etc/network/only',
    ]);
    // What lies under a directory in an opaque one was hidden as well.
    const nested = layers();
    file(join(nested.bottom, 'a/b/old'));
    file(join(nested.bottom, 'a/b/kept'));
    file(join(nested.upper, 'a/b/kept'));
    opaque(join(nested.upper, 'a'));
    const deep = new ContainerFilesystem(nested.upper, [nested.bottom]);
    assert.ok(lines(await deep.changes()).includes('D /a/b/old'));
  });

  it('the kinds are docker\'s numbers', () => {
    assert.deepEqual(ChangeKind, { Modified: 0, Added: 1, Deleted: 2 });
  });
});

describe('ContainerFilesystem.runtimeLeftovers: mount points the runtime made', () => {
  it('empty files and directories at mount destinations the image lacks, and directories holding only those', async () => {
    const { bottom, upper } = layers();
    dir(join(bottom, 'etc'));
    file(join(bottom, 'etc/passwd'));
    file(join(bottom, 'etc/resolv.conf'), 'nameserver 1.1.1.1\n');
    dir(join(bottom, 'dev'));
    // What runc leaves in the upper dir.
    file(join(upper, 'etc/hosts'), '');
    file(join(upper, 'etc/hostname'), '');
    file(join(upper, 'etc/resolv.conf'), '');
    dir(join(upper, 'proc'));
    dir(join(upper, 'sys'));
    dir(join(upper, 'run/secrets'));
    const mountPoints = ['proc', 'dev', 'sys', 'etc/hosts', 'etc/hostname', 'etc/resolv.conf', 'run/secrets', 'data'];
    const fs = new ContainerFilesystem(upper, [bottom], mountPoints);
    const leftovers = (await fs.runtimeLeftovers()).map((l) => `${l.path}:${l.inLower}`).sort();
    // etc/resolv.conf is the image's own file (copied up empty): a change, not a mount point.
    assert.deepEqual(leftovers, ['etc/hostname:false', 'etc/hosts:false', 'proc:false', 'run/secrets:false', 'run:false', 'sys:false']);
    // /etc's mtime is the runtime's doing (its mount points): only the file is a change.
    assert.deepEqual(lines(await fs.changes()), ['C /etc/resolv.conf']);
  });

  it('a directory holding only mount points, the image\'s own with the same mode, is left out whole', async () => {
    const { bottom, upper } = layers();
    dir(join(bottom, 'etc'));
    file(join(bottom, 'etc/passwd'));
    file(join(upper, 'etc/hosts'), '');
    utimesSync(join(upper, 'etc'), new Date(), new Date());
    const fs = new ContainerFilesystem(upper, [bottom], ['etc/hosts']);
    assert.deepEqual((await fs.runtimeLeftovers()).map((l) => `${l.path}:${l.inLower}`).sort(), ['etc/hosts:false', 'etc:true']);
    assert.deepEqual(await fs.changes(), []);
    // Another change in it: the directory is listed, the mount point still is not; its mtime,
    // which the runtime changed, makes no change on its own.
    file(join(upper, 'etc/added'));
    utimesSync(join(upper, 'etc'), new Date(), new Date());
    assert.deepEqual(lines(await fs.changes()), ['C /etc', 'A /etc/added']);
    rmSync(join(upper, 'etc/added'));
    file(join(upper, 'etc/passwd'), 'changed');
    utimesSync(join(upper, 'etc'), new Date(), new Date());
    assert.deepEqual(lines(await fs.changes()), ['C /etc/passwd']);
  });

  it('a mount point with content is a change like any other', async () => {
    const { bottom, upper } = layers();
    file(join(upper, 'data/written'));
    const fs = new ContainerFilesystem(upper, [bottom], ['data']);
    assert.deepEqual(await fs.runtimeLeftovers(), []);
    assert.deepEqual(lines(await fs.changes()), ['A /data', 'A /data/written']);
  });
});
