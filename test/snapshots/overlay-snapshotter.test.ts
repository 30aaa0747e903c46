import * as assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, describe, it } from 'node:test';

import { AlreadyExists, Conflict, InvalidArgument, NotFound } from '../../src/errors/errors.js';
import { applyLayer } from '../../src/snapshots/apply-layer.js';
import { OverlaySnapshotter, mountAll, unmountAll, type SnapshotInfo } from '../../src/snapshots/overlay-snapshotter.js';
import { BUSYBOX_LAYER, Scratch, layerStream, tarOf } from './helpers.js';

const scratch = new Scratch();
after(() => scratch.dispose());

function isMountPoint(path: string): boolean {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .some((line) => line.split(' ')[4] === path);
}

async function all(s: OverlaySnapshotter): Promise<SnapshotInfo[]> {
  const out: SnapshotInfo[] = [];
  for await (const info of s.walk()) out.push(info);
  return out;
}

/** prepare, apply, commit: how the image store unpacks a layer. */
async function commitLayer(s: OverlaySnapshotter, name: string, parent: string | undefined, tar: Parameters<typeof applyLayer>[1]): Promise<void> {
  const key = `extract-${name}`;
  await s.prepare(key, parent);
  await applyLayer(s.upperDir(key), tar);
  await s.commit(name, key);
}

describe('OverlaySnapshotter', () => {
  it('prepares, commits, views, walks, measures and removes', async () => {
    const root = scratch.dir();
    const s = new OverlaySnapshotter(root);
    const base = await s.prepare('k1');
    assert.deepEqual(base, [{ type: 'bind', source: s.upperDir('k1'), options: ['rbind', 'rw'] }]);
    assert.equal(s.upperDir('k1'), join(root, 'snapshots', '1', 'fs'));
    await applyLayer(s.upperDir('k1'), await layerStream(BUSYBOX_LAYER));
    await s.commit('layer1', 'k1');
    assert.equal(await s.stat('k1'), undefined);
    const info = await s.stat('layer1');
    assert.equal(info?.kind, 'committed');
    assert.equal(info?.parent, undefined);
    assert.ok(!Number.isNaN(Date.parse(info?.created ?? '')));

    const mounts = await s.prepare('c1', 'layer1');
    assert.equal(mounts.length, 1);
    assert.equal(mounts[0]!.type, 'overlay');
    assert.ok(mounts[0]!.options.includes(`lowerdir=${s.upperDir('layer1')}`));
    assert.ok(mounts[0]!.options.includes(`upperdir=${s.upperDir('c1')}`));
    assert.deepEqual(await s.mounts('c1'), mounts);
    assert.equal((await s.stat('c1'))?.kind, 'active');
    assert.equal((await s.stat('c1'))?.parent, 'layer1');

    const usage = await s.usage('layer1');
    assert.ok(usage.size > 1_000_000 && usage.inodes > 20, JSON.stringify(usage));
    assert.deepEqual(await s.usage('c1'), { size: 0, inodes: 0 });

    // the vocabulary's rules, with errors that say what was wrong
    await assert.rejects(s.prepare('c1', 'layer1'), (e: Error) => e instanceof AlreadyExists && /snapshot c1: already exists/.test(e.message));
    await assert.rejects(s.prepare('c2', 'nope'), (e: Error) => e instanceof NotFound && /parent snapshot nope not found/.test(e.message));
    await assert.rejects(s.prepare('c2', 'c1'), (e: Error) => e instanceof InvalidArgument && /not committed/.test(e.message));
    await assert.rejects(s.commit('x', 'layer1'), Conflict);
    await assert.rejects(s.commit('x', 'missing'), NotFound);
    await assert.rejects(s.mounts('layer1'), Conflict);
    await assert.rejects(s.prepare(''), InvalidArgument);
    await assert.rejects(s.remove('layer1'), (e: Error) => e instanceof Conflict && /parent of c1/.test(e.message));
    assert.throws(() => s.upperDir('missing'), NotFound);

    const view = await s.view('v1', 'layer1');
    assert.deepEqual(view, [{ type: 'bind', source: s.upperDir('layer1'), options: ['rbind', 'ro'] }]);
    assert.equal((await s.stat('v1'))?.readonly, true);
    await assert.rejects(s.commit('x', 'v1'), Conflict);

    assert.deepEqual((await all(s)).map((i) => `${i.key}:${i.kind}`), ['layer1:committed', 'c1:active', 'v1:active']);

    // a second instance on the same root reads the same state
    const again = new OverlaySnapshotter(root);
    assert.deepEqual(await all(again), await all(s));
    assert.equal(again.upperDir('c1'), s.upperDir('c1'));

    await s.remove('c1');
    await s.remove('v1');
    await s.remove('layer1');
    assert.deepEqual(await all(s), []);
    assert.deepEqual(readdirSync(join(root, 'snapshots')), []);
    await assert.rejects(s.remove('layer1'), NotFound);
  });

  it('commits a snapshot prepared without a parent on top of one (a layer unpacked before the one below it)', async () => {
    const s = new OverlaySnapshotter(scratch.dir());
    await s.prepare('top');
    writeFileSync(join(s.upperDir('top'), 'upper'), 'u');
    await assert.rejects(s.commit('L2', 'top', { parent: 'L1' }), (e: Error) => e instanceof NotFound && /parent snapshot L1/.test(e.message));
    await commitLayer(s, 'L1', undefined, await tarOf([[{ name: 'lower', type: 'file' }, 'l']]));
    await s.commit('L2', 'top', { parent: 'L1' });
    assert.equal((await s.stat('L2'))?.parent, 'L1');
    await assert.rejects(s.remove('L1'), (e: Error) => e instanceof Conflict && /parent of L2/.test(e.message));
    const mounts = await s.view('v', 'L2');
    assert.ok(mounts[0]!.options.includes(`lowerdir=${s.upperDir('L2')}:${s.upperDir('L1')}`));
    // The parent sticks across a restart (it is in meta.json).
    assert.equal((await new OverlaySnapshotter(s.root).stat('L2'))?.parent, 'L1');
    // A snapshot that has a parent keeps it.
    await s.prepare('k3', 'L1');
    await assert.rejects(s.commit('L3', 'k3', { parent: 'L2' }), (e: Error) => e instanceof InvalidArgument && /has parent L1 already/.test(e.message));
  });

  it('stacks two layers with a whiteout and an opaque directory through overlay', async () => {
    const root = scratch.dir();
    const s = new OverlaySnapshotter(root);
    await commitLayer(s, 'L1', undefined, await tarOf([
      [{ name: 'etc/', type: 'directory' }],
      [{ name: 'etc/a', type: 'file' }, 'a1'],
      [{ name: 'etc/b', type: 'file' }, 'b1'],
      [{ name: 'gone/', type: 'directory' }],
      [{ name: 'gone/inside', type: 'file' }, 'x'],
      [{ name: 'opq/', type: 'directory' }],
      [{ name: 'opq/x', type: 'file' }, 'x1'],
      [{ name: 'opq/y', type: 'file' }, 'y1'],
    ]));
    await commitLayer(s, 'L2', 'L1', await tarOf([
      [{ name: '.wh.gone', type: 'file' }],
      [{ name: 'etc/', type: 'directory' }],
      [{ name: 'etc/.wh.a', type: 'file' }],
      [{ name: 'etc/c', type: 'file' }, 'c2'],
      [{ name: 'etc/b', type: 'file' }, 'b2'],
      [{ name: 'opq/', type: 'directory' }],
      [{ name: 'opq/.wh..wh..opq', type: 'file' }],
      [{ name: 'opq/z', type: 'file' }, 'z2'],
    ]));
    const mounts = await s.prepare('ctr', 'L2');
    assert.ok(mounts[0]!.options.includes(`lowerdir=${s.upperDir('L2')}:${s.upperDir('L1')}`));
    const target = scratch.mounted(join(scratch.dir(), 'rootfs'));
    mkdirSync(target);
    await mountAll(mounts, target);
    try {
      assert.deepEqual(readdirSync(target).sort(), ['etc', 'opq']);
      assert.deepEqual(readdirSync(join(target, 'etc')).sort(), ['b', 'c']);
      assert.equal(readFileSync(join(target, 'etc', 'b'), 'utf8'), 'b2');
      assert.deepEqual(readdirSync(join(target, 'opq')), ['z']);
      writeFileSync(join(target, 'new'), 'written in the container');
    } finally {
      await unmountAll(target);
    }
    assert.equal(isMountPoint(target), false);
    assert.equal(readFileSync(join(s.upperDir('ctr'), 'new'), 'utf8'), 'written in the container');

    // a read-only view of two layers is an overlay without an upper dir
    const view = await s.view('view', 'L2');
    assert.deepEqual(view[0]!.options.filter((o) => o.startsWith('lowerdir=') || o.startsWith('upperdir=')), [
      `lowerdir=${s.upperDir('L2')}:${s.upperDir('L1')}`,
    ]);
    await mountAll(view, target);
    try {
      assert.deepEqual(readdirSync(join(target, 'etc')).sort(), ['b', 'c']);
      assert.throws(() => writeFileSync(join(target, 'x'), ''), { code: 'EROFS' });
    } finally {
      await unmountAll(target);
    }
    // a single-parent view is a read-only bind
    await s.view('view1', 'L1');
    await mountAll(await s.mounts('view1'), target);
    try {
      assert.deepEqual(readdirSync(join(target, 'etc')).sort(), ['a', 'b']);
      assert.throws(() => writeFileSync(join(target, 'x'), ''), { code: 'EROFS' });
    } finally {
      await unmountAll(target);
    }
  });

  it('mounts 130 stacked layers (lowerdir beyond a page)', async () => {
    const root = scratch.dir('berth-snap-many-layers-with-a-long-root-path-');
    const s = new OverlaySnapshotter(root);
    let parent: string | undefined;
    for (let i = 0; i < 130; i++) {
      const key = `tmp-${i}`;
      await s.prepare(key, parent);
      writeFileSync(join(s.upperDir(key), `layer-${i}`), String(i));
      writeFileSync(join(s.upperDir(key), 'top'), String(i));
      await s.commit(`sha256:${String(i).padStart(64, '0')}`, key);
      parent = `sha256:${String(i).padStart(64, '0')}`;
    }
    const mounts = await s.prepare('ctr', parent);
    const lowerdir = mounts[0]!.options.find((o) => o.startsWith('lowerdir='))!;
    assert.ok(lowerdir.length > 4096, `lowerdir is ${lowerdir.length} bytes`);
    const target = scratch.mounted(join(scratch.dir(), 'rootfs'));
    mkdirSync(target);
    await mountAll(mounts, target);
    try {
      assert.equal(readdirSync(target).length, 131);
      assert.equal(readFileSync(join(target, 'top'), 'utf8'), '129');
      assert.equal(readFileSync(join(target, 'layer-0'), 'utf8'), '0');
    } finally {
      await unmountAll(target);
    }
    assert.equal(isMountPoint(target), false);
  });

  it('lets one of two concurrent unpacks of the same chain id win; the other gets AlreadyExists', async () => {
    const root = scratch.dir();
    const s = new OverlaySnapshotter(root);
    await commitLayer(s, 'base', undefined, await tarOf([[{ name: 'f', type: 'file' }, 'base']]));
    const chainId = 'sha256:' + 'ab'.repeat(32);
    const pull = async (n: number): Promise<void> => {
      const key = `extract-${n}-${chainId}`;
      await s.prepare(key, 'base');
      try {
        await applyLayer(s.upperDir(key), await tarOf([[{ name: 'g', type: 'file' }, `pull ${n}`]]));
        await s.commit(chainId, key);
      } catch (err) {
        await s.remove(key);
        throw err;
      }
    };
    for (let round = 0; round < 5; round++) {
      const results = await Promise.allSettled([pull(1), pull(2), pull(3)]);
      const won = results.filter((r) => r.status === 'fulfilled');
      const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
      assert.equal(won.length, 1, JSON.stringify(results));
      for (const r of lost) {
        assert.ok(r.reason instanceof AlreadyExists, String(r.reason));
        assert.match((r.reason as Error).message, new RegExp(`snapshot ${chainId}: already exists`));
      }
      const infos = await all(s);
      assert.deepEqual(infos.map((i) => i.key).sort(), ['base', chainId].sort());
      assert.equal(readdirSync(join(root, 'snapshots')).length, 2);
      await s.remove(chainId);
    }
  });

  it('leaves a consistent store when killed -9 at any moment (cleanup removes half-made snapshots)', async () => {
    const root = scratch.dir();
    const moduleUrl = new URL('../../src/snapshots/overlay-snapshotter.js', import.meta.url).href;
    // The child unpacks layer after layer on top of the last one, and prepares and removes
    // extra snapshots; it is killed at a random moment, mostly inside prepare or commit.
    const child = `
      import { writeFileSync } from 'node:fs';
      const { OverlaySnapshotter } = await import(${JSON.stringify(moduleUrl)});
      const s = new OverlaySnapshotter(process.env.ROOT);
      await s.cleanup();
      let top = 0;
      for await (const i of s.walk()) {
        if (i.kind === 'committed') top = Math.max(top, Number(i.key.slice(6)));
        else await s.remove(i.key); // what a killed unpack left: an image store collects these
      }
      let parent = top ? 'layer-' + top : undefined;
      process.stdout.write('ready\\n');
      for (let i = top + 1; ; i++) {
        const key = 'tmp-' + i;
        await s.prepare(key, parent);
        writeFileSync(s.upperDir(key) + '/content', 'layer ' + i);
        await s.commit('layer-' + i, key);
        parent = 'layer-' + i;
        await s.prepare('extra-' + i, parent);
        if (i % 2) await s.remove('extra-' + i);
      }
    `;
    let cleaned = 0;
    let committedBefore: string[] = [];
    for (let round = 0; round < 8; round++) {
      const proc = spawn(process.execPath, ['--input-type=module', '-e', child], {
        env: { ...process.env, ROOT: root },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stderr = '';
      proc.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
      const exited = new Promise<NodeJS.Signals | null>((resolve) => proc.once('exit', (_code, signal) => resolve(signal)));
      await Promise.race([new Promise((resolve) => proc.stdout.once('data', resolve)), exited]);
      await sleep(5 + Math.floor(Math.random() * 150));
      proc.kill('SIGKILL');
      assert.equal(await exited, 'SIGKILL', `the child failed before it was killed: ${stderr}`);

      const s = new OverlaySnapshotter(root);
      cleaned += (await s.cleanup()).length;
      const infos = await all(s);
      const byKey = new Map(infos.map((i) => [i.key, i]));
      assert.equal(byKey.size, infos.length, 'keys are unique');
      for (const dir of readdirSync(join(root, 'snapshots'))) {
        assert.deepEqual(readdirSync(join(root, 'snapshots', dir)).filter((n) => n.startsWith('meta')), ['meta.json'], dir);
      }
      for (const key of committedBefore) assert.equal(byKey.get(key)?.kind, 'committed', `${key} was committed before the kill`);
      committedBefore = infos.filter((i) => i.kind === 'committed').map((i) => i.key);
      for (const info of infos) {
        if (info.parent !== undefined) assert.equal(byKey.get(info.parent)?.kind, 'committed', `parent of ${info.key}`);
        assert.ok(existsSync(s.upperDir(info.key)), info.key);
        if (info.kind === 'committed') {
          // committed only after its content was written: a committed layer is whole
          assert.equal(readFileSync(join(s.upperDir(info.key), 'content'), 'utf8'), `layer ${info.key.slice(6)}`);
        } else {
          assert.match(info.key, /^(tmp|extra)-\d+$/);
        }
      }
      // and it is usable: a container on the top layer mounts
      const top = infos.filter((i) => i.kind === 'committed').at(-1);
      if (top) {
        const target = scratch.mounted(join(scratch.dir(), 'rootfs'));
        mkdirSync(target);
        await mountAll(await s.prepare(`check-${round}`, top.key), target);
        try {
          assert.equal(readFileSync(join(target, 'content'), 'utf8'), `layer ${top.key.slice(6)}`);
        } finally {
          await unmountAll(target);
        }
        await s.remove(`check-${round}`);
      }
    }
    const s = new OverlaySnapshotter(root);
    assert.ok((await all(s)).some((i) => i.kind === 'committed'), 'the child made progress');
    // Not asserted (timing), but shown: how many half-made snapshots cleanup() found.
    process.stdout.write(`# kill -9 rounds: cleanup removed ${cleaned} half-made snapshot dirs\n`);
  });

  it('mountAll says what failed and undoes what it had mounted', async () => {
    const target = scratch.mounted(join(scratch.dir(), 'rootfs'));
    mkdirSync(target);
    const missing = join(target, '..', 'no-such-lower');
    await assert.rejects(
      mountAll(
        [
          { type: 'tmpfs', source: 'tmpfs', options: ['size=1m', 'nosuid'] },
          { type: 'overlay', source: 'overlay', options: [`lowerdir=${missing}:${missing}2`] },
        ],
        target,
      ),
      (err: NodeJS.ErrnoException) => {
        assert.equal(err.code, 'ENOENT');
        assert.ok(err.message.startsWith(`mount overlay overlay on ${target} (lowerdir=${missing}`), err.message);
        return true;
      },
    );
    assert.equal(isMountPoint(target), false);
    await assert.rejects(mountAll([{ type: 'tmpfs', source: 'tmpfs', options: ['a,b'] }], target), InvalidArgument);
    await unmountAll(target); // nothing mounted: a no-op
  });

  it('cleanup removes a snapshot directory without meta.json and stray temp files', async () => {
    const root = scratch.dir();
    const s = new OverlaySnapshotter(root);
    await s.prepare('kept');
    mkdirSync(join(root, 'snapshots', '77', 'fs'), { recursive: true });
    writeFileSync(join(root, 'snapshots', '1', 'meta.json.tmp'), '{"half');
    const fresh = new OverlaySnapshotter(root);
    assert.deepEqual(await fresh.cleanup(), [join(root, 'snapshots', '77')]);
    assert.deepEqual(readdirSync(join(root, 'snapshots')), ['1']);
    assert.deepEqual(readdirSync(join(root, 'snapshots', '1')).sort(), ['fs', 'meta.json', 'work']);
    // the next id does not collide with what was there
    await fresh.prepare('next');
    assert.equal(fresh.upperDir('next'), join(root, 'snapshots', '78', 'fs'));
  });
});
