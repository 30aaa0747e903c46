// Blob garbage collection with a real berthd and a real docker-registry: the compressed layer
// blobs a pull keeps go with the last image that uses them (after rmi and at daemon start),
// a layer shared with another image stays, and a blob written in the last minute is spared.
import * as assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { TestDaemon } from '../helpers/berthd.js';
import { BUSYBOX_TAG, TestRegistry } from './registries.js';

let daemon: TestDaemon;
let registry: TestRegistry;
let scratch: string;

before(async () => {
  scratch = mkdtempSync(join(tmpdir(), 'berth-blob-gc-'));
  [daemon, registry] = await Promise.all([TestDaemon.start(), TestRegistry.start()]);
  await registry.pushBusybox();
  // A second image on the same base: busybox plus one layer.
  await registry.pushOnBusybox(scratch, 'hello', 'hello from the second layer\n');
});

after(async () => {
  await daemon?.cleanup();
  await registry?.stop();
  rmSync(scratch, { recursive: true, force: true });
});

async function ok(...args: string[]): Promise<string> {
  const r = await daemon.docker(args, { timeoutMs: 120_000 });
  assert.equal(r.code, 0, `docker ${args.join(' ')} failed (${r.code}): ${r.stderr}\n${daemon.log.slice(-2000)}`);
  return r.stdout;
}

function blobsDir(): string {
  return join(daemon.dataRoot, 'content', 'blobs', 'sha256');
}

function blobs(): string[] {
  return readdirSync(blobsDir()).sort();
}

/** Makes every blob look written two minutes ago, so collection may take it. */
function ageBlobs(): void {
  const then = new Date(Date.now() - 120_000);
  for (const name of blobs()) utimesSync(join(blobsDir(), name), then, then);
}

/** The hex digests of an image's config, manifest and layer blobs, as the registry serves them. */
async function registryBlobs(repo: string, tag: string): Promise<{ config: string; manifest: string; layers: string[] }> {
  const res = await fetch(`http://${registry.host}/v2/${repo}/manifests/${tag}`, {
    headers: { accept: 'application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json' },
  });
  const bytes = Buffer.from(await res.arrayBuffer());
  const manifest = JSON.parse(bytes.toString('utf8')) as { config: { digest: string }; layers: { digest: string }[] };
  return {
    config: manifest.config.digest.slice(7),
    manifest: createHash('sha256').update(bytes).digest('hex'),
    layers: manifest.layers.map((l) => l.digest.slice(7)),
  };
}

describe('blob garbage collection', () => {
  it('rmi takes the blobs only the removed image used; a shared layer and fresh blobs stay', async () => {
    const busybox = `${registry.host}/library/busybox:${BUSYBOX_TAG}`;
    const hello = `${registry.host}/library/hello:v1`;
    await ok('pull', busybox);
    await ok('pull', hello);
    const b = await registryBlobs('library/busybox', BUSYBOX_TAG);
    const h = await registryBlobs('library/hello', 'v1');
    assert.equal(h.layers[0], b.layers[0]);
    for (const hex of [b.config, b.manifest, ...b.layers, h.config, h.manifest, ...h.layers]) assert.ok(blobs().includes(hex), hex);

    ageBlobs();
    // A blob no image uses, written just now: a pull under way may own it.
    const fresh = createHash('sha256').update('fresh').digest('hex');
    writeFileSync(join(blobsDir(), fresh), 'fresh');
    await ok('rmi', hello);
    assert.ok(!existsSync(join(blobsDir(), h.config)));
    assert.ok(!existsSync(join(blobsDir(), h.manifest)));
    assert.ok(!existsSync(join(blobsDir(), h.layers[1]!)), 'the layer only hello had is collected');
    assert.deepEqual(blobs(), [b.config, b.manifest, b.layers[0]!, fresh].sort());

    // Pushes and saves of busybox still have its pulled layer blob byte for byte.
    const saved = await daemon.docker(['save', '-o', join(scratch, 'busybox.tar'), busybox], { timeoutMs: 120_000 });
    assert.equal(saved.code, 0, saved.stderr);

    ageBlobs();
    await ok('rmi', busybox);
    assert.deepEqual(blobs(), []);
  });

  it('collects at daemon start what no image uses', async () => {
    const stray = createHash('sha256').update('stray').digest('hex');
    writeFileSync(join(blobsDir(), stray), 'stray');
    ageBlobs();
    await daemon.restart();
    const deadline = Date.now() + 10_000;
    while (existsSync(join(blobsDir(), stray)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(blobs(), []);
  });
});
