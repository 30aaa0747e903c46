import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { linkSync, mkdirSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, describe, it } from 'node:test';

import { readTar } from '../../src/archive/tar-reader.js';
import { S_IFIFO, lgetxattr, lsetxattr, mknod } from '../../src/native/native.js';
import { applyLayer } from '../../src/snapshots/apply-layer.js';
import { diffLayer } from '../../src/snapshots/diff-layer.js';
import { OverlaySnapshotter, mountAll, unmountAll } from '../../src/snapshots/overlay-snapshotter.js';
import { ALPINE_ROOTFS, BUSYBOX_LAYER, Scratch, layerStream, listTree, tarOf } from './helpers.js';

const scratch = new Scratch();
after(() => scratch.dispose());

async function bytesOf(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

describe('diffLayer', () => {
  for (const [name, layer] of [['busybox', BUSYBOX_LAYER], ['alpine', ALPINE_ROOTFS]] as const) {
    it(`round-trips the ${name} layer through applyLayer`, async () => {
      const base = scratch.dir();
      mkdirSync(join(base, 'a'));
      mkdirSync(join(base, 'b'));
      await applyLayer(join(base, 'a'), await layerStream(layer));
      const tar = await bytesOf(diffLayer(join(base, 'a')));
      await applyLayer(join(base, 'b'), Readable.from([tar]));
      assert.deepEqual(listTree(join(base, 'b')), listTree(join(base, 'a')));
      // GNU tar reads it too, with the same names, hardlinks as hardlinks
      writeFileSync(join(base, 'layer.tar'), tar);
      const listed = execFileSync('tar', ['-tvf', join(base, 'layer.tar')], { encoding: 'utf8', maxBuffer: 1 << 24 }).trim().split('\n');
      assert.equal(listed.length, listTree(join(base, 'a')).length);
      if (name === 'busybox') assert.ok(listed.some((l) => / link to bin\/\[$/.test(l)), 'hardlinks kept');
    });
  }

  it('turns an overlay upper dir into an OCI layer that reproduces the container view', async () => {
    const root = scratch.dir();
    const s = new OverlaySnapshotter(root);
    await s.prepare('k1');
    await applyLayer(s.upperDir('k1'), await tarOf([
      [{ name: 'etc/', type: 'directory' }],
      [{ name: 'etc/hostname', type: 'file' }, 'old'],
      [{ name: 'etc/motd', type: 'file' }, 'hello'],
      [{ name: 'var/', type: 'directory' }],
      [{ name: 'var/cache/', type: 'directory' }],
      [{ name: 'var/cache/a', type: 'file' }, 'a'],
      [{ name: 'var/cache/b', type: 'file' }, 'b'],
      [{ name: 'keep', type: 'file' }, 'keep'],
    ]));
    await s.commit('L1', 'k1');

    // a container changes things through the overlay mount
    const target = scratch.mounted(join(scratch.dir(), 'rootfs'));
    mkdirSync(target);
    await mountAll(await s.prepare('ctr', 'L1'), target);
    let containerView: string[];
    try {
      unlinkSync(join(target, 'etc', 'motd')); // whiteout
      writeFileSync(join(target, 'etc', 'hostname'), 'new'); // copy-up
      rmSync(join(target, 'var', 'cache'), { recursive: true }); // removed, then made again: opaque
      mkdirSync(join(target, 'var', 'cache'));
      writeFileSync(join(target, 'var', 'cache', 'c'), 'c');
      writeFileSync(join(target, 'bin'), 'binary');
      linkSync(join(target, 'bin'), join(target, 'bin2'));
      symlinkSync('/etc/hostname', join(target, 'link'));
      mknod(join(target, 'fifo'), S_IFIFO | 0o600);
      lsetxattr(join(target, 'bin'), 'user.note', Buffer.from('kept'));
      containerView = listTree(target);
    } finally {
      await unmountAll(target);
    }
    // overlay marked the recreated directory opaque in the upper dir
    assert.deepEqual(lgetxattr(join(s.upperDir('ctr'), 'var', 'cache'), 'trusted.overlay.opaque'), Buffer.from('y'));

    const tar = await bytesOf(diffLayer(s.upperDir('ctr')));
    const entries: { name: string; type: string; linkname: string; xattrs: string[] }[] = [];
    for await (const { header } of readTar(Readable.from([tar]))) {
      entries.push({ name: header.name, type: header.type, linkname: header.linkname, xattrs: Object.keys(header.xattrs) });
    }
    const names = entries.map((e) => e.name);
    assert.ok(names.includes('etc/.wh.motd'), names.join(' '));
    assert.ok(names.includes('var/cache/.wh..wh..opq'), names.join(' '));
    assert.ok(names.indexOf('var/cache/') < names.indexOf('var/cache/.wh..wh..opq'));
    assert.ok(!names.includes('keep'), 'unchanged files are not in the diff');
    assert.deepEqual(entries.find((e) => e.name === 'bin2'), { name: 'bin2', type: 'hardlink', linkname: 'bin', xattrs: ['user.note'] });
    assert.equal(entries.find((e) => e.name === 'fifo')?.type, 'fifo');
    for (const e of entries) assert.ok(!e.xattrs.some((x) => x.startsWith('trusted.overlay.')), `${e.name}: ${e.xattrs.join(',')}`);

    // applied as a layer on the same parent, it gives the container's view back
    await s.prepare('k2', 'L1');
    await applyLayer(s.upperDir('k2'), Readable.from([tar]));
    await s.commit('L2', 'k2');
    await s.view('check', 'L2');
    await mountAll(await s.mounts('check'), target);
    try {
      assert.deepEqual(listTree(target), containerView);
    } finally {
      await unmountAll(target);
    }
  });

  it('a layer with a whiteout, made again from its unpacked files, is the same bytes (whiteouts keep the entry\'s owner and time)', async () => {
    const dir = scratch.dir();
    const past = new Date('2020-02-02T02:02:02Z');
    const first = await bytesOf(
      await tarOf([
        [{ name: 'etc/', type: 'directory', mtime: past }],
        [{ name: 'etc/.wh.motd', type: 'file', mtime: past, uid: 0, gid: 0 }],
        [{ name: 'etc/kept', type: 'file', mtime: past }, 'k'],
      ]),
    );
    await applyLayer(dir, Readable.from([first]));
    const again = await bytesOf(diffLayer(dir));
    const whiteouts = [];
    for await (const entry of readTar(Readable.from([again]))) {
      if (entry.header.name.includes('.wh.')) whiteouts.push(entry.header);
      for await (const _ of entry.body) void _;
    }
    assert.equal(whiteouts.length, 1);
    assert.equal(whiteouts[0]!.mtime.getTime(), past.getTime());
    // Made again once more from a second unpack: byte for byte the same.
    const second = scratch.dir();
    await applyLayer(second, Readable.from([again]));
    assert.ok((await bytesOf(diffLayer(second))).equals(again));
  });

  it('fails the stream with a clear error when the directory is missing', async () => {
    const stream = diffLayer(join(scratch.dir(), 'missing'));
    await assert.rejects(bytesOf(stream), { code: 'ENOENT' });
  });
});
