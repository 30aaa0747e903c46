// What a crash leaves half-made is cleaned at the next start, and nothing committed is lost:
// a layer unpack cut short, a container whose create never reached the metadata store, a
// half-written metadata temp file.
import * as assert from 'node:assert/strict';
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { OverlaySnapshotter } from '../../src/snapshots/overlay-snapshotter.js';
import { TestDaemon, alpineRootfs } from '../helpers/berthd.js';

let daemon: TestDaemon;

before(async () => {
  daemon = await TestDaemon.start();
});

after(async () => {
  await daemon?.cleanup();
});

describe('daemon start after a crash', () => {
  it('removes orphaned active snapshots and keeps committed images', async () => {
    const imported = await daemon.docker(['import', alpineRootfs, 'kept:1']);
    assert.equal(imported.code, 0, imported.stderr);
    await daemon.stop('SIGKILL');
    // What a crash mid-unpack and mid-create leaves behind.
    const snapshots = new OverlaySnapshotter(join(daemon.dataRoot, 'snapshots'));
    const orphanContainer = 'a'.repeat(64);
    await snapshots.prepare('extract-left-by-a-crash');
    await snapshots.prepare(orphanContainer);
    writeFileSync(join(daemon.dataRoot, '.metadata.json.1.2.tmp'), '{"half":');
    await daemon.startProcess();
    const keys: string[] = [];
    for await (const info of new OverlaySnapshotter(join(daemon.dataRoot, 'snapshots')).walk()) keys.push(info.key);
    assert.ok(!keys.includes('extract-left-by-a-crash'), keys.join(','));
    assert.ok(!keys.includes(orphanContainer), keys.join(','));
    const inspect = await daemon.docker(['image', 'inspect', '-f', '{{.Id}}', 'kept:1']);
    assert.equal(inspect.code, 0, inspect.stderr);
    assert.ok(readdirSync(daemon.dataRoot).includes('metadata.json'));
    assert.ok(!readdirSync(daemon.dataRoot).some((n) => n.endsWith('.tmp')), 'a stale temp file was left');
  });
});
