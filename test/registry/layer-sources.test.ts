// The layer sources file: blobs held by no repository (kept from a load or an import) are
// recorded and never trimmed; writes from concurrent first calls all land; a new instance
// reads what an earlier one wrote.
import * as assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { LayerSources } from '../../src/registry/layer-sources.js';

let scratch: string;

before(() => {
  scratch = mkdtempSync(join(tmpdir(), 'layer-sources-'));
});

after(() => {
  rmSync(scratch, { recursive: true, force: true });
});

const digest = (n: number) => `sha256:${n.toString(16).padStart(64, '0')}`;
const blob = (n: number) => ({ digest: digest(n), mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', size: n });

describe('layer sources', () => {
  it('records a blob with no repository, and a repository for it later', async () => {
    const root = join(scratch, 'one');
    const sources = new LayerSources(root);
    await sources.add(digest(100), blob(1));
    assert.deepEqual(await sources.get(digest(100)), [{ ...blob(1), repositories: [] }]);
    await sources.add(digest(100), blob(1), 'localhost:5000/app');
    assert.deepEqual(await new LayerSources(root).get(digest(100)), [{ ...blob(1), repositories: ['localhost:5000/app'] }]);
  });

  it('concurrent first calls on a new instance all land', async () => {
    const root = join(scratch, 'two');
    const sources = new LayerSources(root);
    await Promise.all(Array.from({ length: 10 }, (_, i) => sources.add(digest(200 + i), blob(i + 1))));
    const again = new LayerSources(root);
    for (let i = 0; i < 10; i++) assert.deepEqual(await again.get(digest(200 + i)), [{ ...blob(i + 1), repositories: [] }], `diff id ${i}`);
  });

  it('keeps the 8 blobs last seen on registries, and every blob kept here', async () => {
    const sources = new LayerSources(join(scratch, 'three'));
    await sources.add(digest(300), blob(1));
    for (let i = 2; i <= 12; i++) await sources.add(digest(300), blob(i), 'registry.example/app');
    const list = await sources.get(digest(300));
    assert.deepEqual(list.map((b) => b.size), [12, 11, 10, 9, 8, 7, 6, 5, 1]);
  });
});
