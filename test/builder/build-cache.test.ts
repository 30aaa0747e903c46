// The classic builder's cache file: entries survive a reopen, name images without keeping
// them, and an entry whose image went (or changed parent) is a miss and is dropped.
import * as assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { BuildCache } from '../../src/builder/build-cache.js';

describe('BuildCache', () => {
  const root = mkdtempSync(join(tmpdir(), 'berth-build-cache-'));
  after(() => rmSync(root, { recursive: true, force: true }));
  const images = new Map<string, { parent?: string }>();
  const records = { record: (id: string) => images.get(id) };

  it('keys a step by its parent and its description', () => {
    const a = BuildCache.key('sha256:p', ['RUN x', { Env: ['A=1'] }]);
    assert.equal(a, BuildCache.key('sha256:p', ['RUN x', { Env: ['A=1'] }]));
    assert.notEqual(a, BuildCache.key('sha256:q', ['RUN x', { Env: ['A=1'] }]));
    assert.notEqual(a, BuildCache.key('sha256:p', ['RUN x', { Env: ['A=2'] }]));
  });

  it('finds what it stored after a reopen, while the image is there with that parent', async () => {
    images.set('sha256:child', { parent: 'sha256:p' });
    images.set('sha256:first', {});
    const cache = await BuildCache.open(root, records);
    await cache.store('k1', 'sha256:child');
    await cache.store('k2', 'sha256:first');
    const reopened = await BuildCache.open(root, records);
    assert.equal(reopened.lookup('k1', 'sha256:p'), 'sha256:child');
    assert.equal(reopened.lookup('k1', 'sha256:other'), undefined);
    // A first step from scratch: no parent, '' in the key.
    assert.equal(reopened.lookup('k2', ''), 'sha256:first');
    assert.equal(reopened.lookup('nope', 'sha256:p'), undefined);
  });

  it('misses and forgets an entry whose image was deleted', async () => {
    const cache = await BuildCache.open(root, records);
    images.delete('sha256:child');
    assert.equal(cache.lookup('k1', 'sha256:p'), undefined);
    images.set('sha256:new', {});
    await cache.store('k3', 'sha256:new');
    const file = JSON.parse(readFileSync(join(root, 'builder', 'cache.json'), 'utf8')) as { entries: Record<string, string> };
    assert.deepEqual(Object.keys(file.entries).sort(), ['k2', 'k3']);
  });

  it('starts empty from a file that is not JSON', async () => {
    writeFileSync(join(root, 'builder', 'cache.json'), '{not json');
    const cache = await BuildCache.open(root, records);
    assert.equal(cache.lookup('k2', ''), undefined);
  });
});
