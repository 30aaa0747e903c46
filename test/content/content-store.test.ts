// The content store on a real filesystem: digests and sizes verified, nothing half-written
// visible, interrupted ingests resumed (also after a kill -9), concurrent writers of a blob.
import * as assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { LocalContentStore } from '../../src/content/content-store.js';
import { InvalidArgument, NotFound } from '../../src/errors/errors.js';

let scratch: string;

before(() => {
  scratch = mkdtempSync(join(tmpdir(), 'berth-content-'));
});

after(() => {
  rmSync(scratch, { recursive: true, force: true });
});

let n = 0;
async function freshStore(): Promise<LocalContentStore> {
  return LocalContentStore.open(join(scratch, `store-${n++}`));
}

function digestOf(data: Buffer): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

/** Every file under the store's blobs and ingest folders (what a reader or a resume could see). */
function visible(store: LocalContentStore): { blobs: string[]; ingests: string[] } {
  return {
    blobs: readdirSync(join(store.root, 'blobs', 'sha256')),
    ingests: readdirSync(join(store.root, 'ingest')),
  };
}

describe('content store', () => {
  it('writes a blob under its digest and reads it back', async () => {
    const store = await freshStore();
    const data = randomBytes(100_000);
    const info = await store.writeBlob(data, { digest: digestOf(data), size: data.length });
    assert.deepEqual(info, { digest: digestOf(data), size: data.length });
    assert.deepEqual(await store.readBlob(info.digest), data);
    assert.deepEqual(await store.info(info.digest), info);
    assert.deepEqual(visible(store), { blobs: [info.digest.slice(7)], ingests: [] });
    assert.deepEqual(await store.list(), [info]);
    // A second write of the same bytes is a no-op that answers the same.
    assert.deepEqual(await store.writeBlob(data), info);
  });

  it('refuses bytes that do not hash to the expected digest, leaving nothing visible', async () => {
    const store = await freshStore();
    const data = Buffer.from('the real bytes');
    const other = digestOf(Buffer.from('other bytes'));
    await assert.rejects(store.writeBlob(data, { digest: other }), (err: unknown) => {
      assert.ok(err instanceof InvalidArgument);
      assert.match(err.message, /digest mismatch/);
      assert.ok(err.message.includes(digestOf(data)), err.message);
      return true;
    });
    assert.equal(await store.info(other), undefined);
    assert.equal(await store.info(digestOf(data)), undefined);
    assert.deepEqual(visible(store), { blobs: [], ingests: [] });
  });

  it('refuses a size that does not match, before or at commit', async () => {
    const store = await freshStore();
    const data = Buffer.from('twelve bytes');
    await assert.rejects(store.writeBlob(data, { size: 13 }), /size 12 does not match the expected 13/);
    // Through an ingest: too few bytes fail at commit, too many at the write that overflows.
    const short = await store.ingest('short', { digest: digestOf(data), size: data.length });
    await short.write(data.subarray(0, 5));
    await assert.rejects(short.commit(), InvalidArgument);
    const long = await store.ingest('long', { digest: digestOf(data), size: data.length });
    await long.write(data);
    await assert.rejects(long.write(Buffer.from('x')), /more data than the expected 12 bytes/);
    await long.abort();
    assert.deepEqual(visible(store), { blobs: [], ingests: [] });
  });

  it('a mismatched ingest leaves nothing visible and a later good write succeeds', async () => {
    const store = await freshStore();
    const good = randomBytes(4096);
    const w = await store.ingest('layer-1', { digest: digestOf(good) });
    await w.write(randomBytes(4096));
    await assert.rejects(w.commit(), /digest mismatch/);
    assert.deepEqual(visible(store), { blobs: [], ingests: [] });
    await assert.rejects(store.readBlob(digestOf(good)), NotFound);
    const again = await store.ingest('layer-1', { digest: digestOf(good) });
    assert.equal(again.offset, 0, 'the bad bytes were kept for a resume');
    await again.write(good);
    assert.deepEqual(await again.commit(), { digest: digestOf(good), size: good.length });
  });

  it('removeIngests drops the writes a crash left that cannot resume, and keeps the others', async () => {
    const store = await freshStore();
    for (const ref of ['pull-sha256:aa', 'import-1', 'push-2']) {
      const w = await store.ingest(ref);
      await w.write(Buffer.from('partial'));
      await w.close();
    }
    const removed = await store.removeIngests((ref) => ref.startsWith('pull-'));
    assert.deepEqual(removed.sort(), ['import-1', 'push-2']);
    assert.equal(visible(store).ingests.length, 1);
    const resumed = await store.ingest('pull-sha256:aa');
    assert.equal(resumed.offset, 'partial'.length);
    await resumed.abort();
  });

  it('refuses malformed digests', async () => {
    const store = await freshStore();
    await assert.rejects(store.ingest('x', { digest: 'sha256:XYZ' }), /invalid digest "sha256:XYZ"/);
    await assert.rejects(store.readBlob('md5:abc'), InvalidArgument);
    assert.throws(() => store.blobPath('sha256:../../etc/passwd'), InvalidArgument);
  });

  it('resumes an ingest that was closed halfway: the offset counts the kept bytes', async () => {
    const store = await freshStore();
    const data = randomBytes(300_000);
    const expected = { digest: digestOf(data), size: data.length };
    const first = await store.ingest('pull-layer', expected);
    assert.equal(first.offset, 0);
    await first.write(data.subarray(0, 123_456));
    await first.close();
    assert.equal(await store.info(expected.digest), undefined, 'a blob became visible before commit');
    const second = await store.ingest('pull-layer', expected);
    assert.equal(second.offset, 123_456);
    await second.write(data.subarray(second.offset));
    assert.deepEqual(await second.commit(), expected);
    assert.deepEqual(await store.readBlob(expected.digest), data);
    assert.deepEqual(visible(store).ingests, []);
  });

  it('starts over when the kept bytes are more than the expected size', async () => {
    const store = await freshStore();
    const data = randomBytes(1000);
    const first = await store.ingest('ref', {});
    await first.write(randomBytes(2000));
    await first.close();
    const second = await store.ingest('ref', { digest: digestOf(data), size: data.length });
    assert.equal(second.offset, 0);
    await second.write(data);
    assert.equal((await second.commit()).digest, digestOf(data));
  });

  it('resumes an ingest whose writer was killed with SIGKILL', async () => {
    const store = await freshStore();
    const data = randomBytes(2 * 1024 * 1024);
    const expected = { digest: digestOf(data), size: data.length };
    const dataFile = join(scratch, 'kill-source.bin');
    await import('node:fs/promises').then((fs) => fs.writeFile(dataFile, data));
    const moduleUrl = pathToFileURL(join(import.meta.dirname, '..', '..', 'src', 'content', 'content-store.js')).href;
    // The child writes the first half in small chunks, says so, and then hangs until killed.
    const script = `
      import { readFileSync } from 'node:fs';
      const { LocalContentStore } = await import(${JSON.stringify(moduleUrl)});
      const data = readFileSync(${JSON.stringify(dataFile)});
      const store = await LocalContentStore.open(${JSON.stringify(store.root)});
      const w = await store.ingest('killed', ${JSON.stringify(expected)});
      for (let i = 0; i < data.length / 2; i += 4096) await w.write(data.subarray(i, i + 4096));
      process.stdout.write('half\\n');
      setInterval(() => {}, 1000);
    `;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (c: Buffer) => {
        if (c.toString().includes('half')) resolve();
      });
      child.on('exit', (code) => reject(new Error(`the writer exited early with ${code}`)));
    });
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
    assert.equal(await store.info(expected.digest), undefined);
    const resumed = await store.ingest('killed', expected);
    assert.equal(resumed.offset, data.length / 2);
    await resumed.write(data.subarray(resumed.offset));
    assert.deepEqual(await resumed.commit(), expected);
    assert.deepEqual(readFileSync(store.blobPath(expected.digest)), data);
  });

  it('concurrent writers of the same blob all succeed and the blob is whole', async () => {
    const store = await freshStore();
    const data = randomBytes(1024 * 1024);
    const results = await Promise.all(Array.from({ length: 8 }, () => store.writeBlob(data, { digest: digestOf(data) })));
    for (const r of results) assert.deepEqual(r, { digest: digestOf(data), size: data.length });
    const stored = await store.readBlob(digestOf(data));
    assert.equal(stored.length, data.length, 'the stored blob has the wrong length');
    assert.equal(digestOf(stored), digestOf(data), 'the stored blob does not hash to its name');
    assert.deepEqual(visible(store), { blobs: [digestOf(data).slice(7)], ingests: [] });
  });

  it('concurrent ingests of one blob under different refs both commit', async () => {
    const store = await freshStore();
    const data = randomBytes(512 * 1024);
    const expected = { digest: digestOf(data), size: data.length };
    const [a, b] = await Promise.all([store.ingest('pull-a', expected), store.ingest('pull-b', expected)]);
    for (let i = 0; i < data.length; i += 65536) {
      await Promise.all([a.write(data.subarray(i, i + 65536)), b.write(data.subarray(i, i + 65536))]);
    }
    const [ra, rb] = await Promise.all([a.commit(), b.commit()]);
    assert.deepEqual(ra, expected);
    assert.deepEqual(rb, expected);
    assert.equal(digestOf(await store.readBlob(expected.digest)), expected.digest);
    assert.deepEqual(visible(store).ingests, []);
  });

  it('refuses a second writer of a ref that is being written', async () => {
    const store = await freshStore();
    const data = randomBytes(1000);
    const first = await store.ingest('same-ref', { digest: digestOf(data) });
    await assert.rejects(store.ingest('same-ref', { digest: digestOf(data) }), /ref same-ref is locked/);
    await first.write(data);
    await first.commit();
    // Once the first one is done, the ref is free again.
    const again = await store.ingest('same-ref', {});
    // A late abort of the finished writer does not free the lock the new one holds.
    await first.abort();
    await assert.rejects(store.ingest('same-ref', {}), /is locked/);
    await again.abort();
  });

  it('deletes blobs and says when there is none', async () => {
    const store = await freshStore();
    const { digest } = await store.writeBlob(Buffer.from('bye'));
    await store.delete(digest);
    assert.equal(existsSync(store.blobPath(digest)), false);
    await assert.rejects(store.delete(digest), NotFound);
    await assert.rejects(store.readBlob(digest), /not found/);
  });

  it('collects the blobs not in use and older than the minimum age', async () => {
    const store = await freshStore();
    const used = await store.writeBlob(Buffer.from('used'));
    const unused = await store.writeBlob(Buffer.from('unused'));
    const fresh = await store.writeBlob(Buffer.from('fresh'));
    const then = new Date(Date.now() - 120_000);
    for (const b of [used, unused]) utimesSync(store.blobPath(b.digest), then, then);
    const removed = await store.collect(new Set([used.digest]));
    assert.deepEqual(removed, [unused]);
    assert.deepEqual((await store.list()).map((b) => b.digest).sort(), [used.digest, fresh.digest].sort());
    // With no minimum age, a fresh unused blob goes too.
    assert.deepEqual(await store.collect(new Set([used.digest]), { minAgeMs: 0 }), [fresh]);
  });
});
