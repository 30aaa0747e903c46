// Pulls from a misbehaving registry of the test's own: wrong bytes, lying sizes, a dropped
// connection (resumed with Range), 401/500 answers and token auth. Each failure is a clear
// error and leaves no image and no corrupt blob behind.
import * as assert from 'node:assert/strict';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { TestDaemon, until } from '../helpers/berthd.js';
import { FakeRegistry, PASSWORD, USER } from './fake-registry.js';

let daemon: TestDaemon;
let registry: FakeRegistry;

before(async () => {
  daemon = await TestDaemon.start();
  registry = await FakeRegistry.start();
});

after(async () => {
  await daemon?.cleanup();
  await registry?.stop();
});

function blobs(): string[] {
  const dir = join(daemon.dataRoot, 'content', 'blobs', 'sha256');
  return existsSync(dir) ? readdirSync(dir) : [];
}

function ingests(): string[] {
  const dir = join(daemon.dataRoot, 'content', 'ingest');
  return existsSync(dir) ? readdirSync(dir) : [];
}

/** `name` in the snapshot directories of the daemon, unpacked or being unpacked. */
function snapshotFiles(name: string): string[] {
  const dir = join(daemon.dataRoot, 'snapshots', 'snapshots');
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .map((id) => join(dir, id, 'fs', name))
    .filter((path) => existsSync(path));
}

async function images(): Promise<string> {
  const r = await daemon.docker(['images', '-q']);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout.trim();
}

async function pullFails(repo: string, pattern: RegExp): Promise<void> {
  const r = await daemon.docker(['pull', `${registry.host}/${repo}`]);
  assert.notEqual(r.code, 0, `pull of ${repo} should fail:\n${r.stdout}`);
  assert.match(r.stderr, pattern);
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
}

describe('pull from a misbehaving registry', () => {
  it('a layer whose bytes do not match its digest: a clear error, nothing stored', async () => {
    await pullFails('baddigest', /digest mismatch/);
    assert.equal(await images(), '');
    assert.ok(!blobs().includes(registry.layout.layerDigest.slice(7)), 'the bad layer is not a blob');
    assert.deepEqual(ingests(), [], 'the bad bytes are not kept for a resume');
  });

  it('a layer larger than its descriptor says: refused, nothing stored', async () => {
    await pullFails('liesize', /more data than the expected|bytes/);
    assert.equal(await images(), '');
    assert.deepEqual(ingests(), []);
  });

  it('a manifest larger than its descriptor in the index: refused', async () => {
    await pullFails('bigmanifest', /manifest sha256:[a-f0-9]{64}: the registry sent (more than the \d+ bytes expected|\d+ bytes)/);
    assert.equal(await images(), '');
  });

  it('a missing tag is docker\'s "manifest unknown"', async () => {
    const r = await daemon.docker(['pull', `${registry.host}/good:missing`]);
    assert.equal(r.code, 1);
    assert.equal(r.stderr.trim(), `Error response from daemon: manifest for ${registry.host}/good:missing not found: manifest unknown: manifest unknown`);
  });

  it('bytes that are no layer: the unpack refuses them before the download ends; nothing kept', async () => {
    await pullFails('notgzip', new RegExp(`layer ${registry.layout.layerDigest}: .*invalid tar header`));
    assert.equal(await images(), '');
    assert.deepEqual(ingests(), []);
    assert.deepEqual(snapshotFiles('bin'), [], 'no unpacked files are left');
  });

  it('unpacks a layer while it downloads, and stacks it only once its digest is checked', async () => {
    registry.renewHeld();
    const pull = daemon.docker(['pull', `${registry.host}/hold`], { timeoutMs: 60_000 });
    try {
      // Half the layer is here, the rest held back: its first file is being written already.
      await until('the layer unpacks before its download ends', async () => snapshotFiles('big.bin').some((f) => statSync(f).size > 0), 30_000);
      assert.equal(await images(), '', 'no image before the download is verified');
      assert.deepEqual(snapshotFiles('tail.txt'), []);
    } finally {
      registry.release();
    }
    const r = await pull;
    assert.equal(r.code, 0, r.stderr + daemon.log.slice(-2000));
    assert.match(r.stdout, /Pull complete/);
    assert.deepEqual(snapshotFiles('big.bin').map((f) => statSync(f).size), [4 * 1024 * 1024]);
    assert.deepEqual(ingests(), []);
    const removed = await daemon.docker(['rmi', `${registry.host}/hold`]);
    assert.equal(removed.code, 0, removed.stderr);
  });

  it('a daemon killed mid-pull: no half-unpacked layer after the restart, and the pull resumes from the kept bytes', async () => {
    registry.renewHeld();
    const pull = daemon.docker(['pull', `${registry.host}/hold`], { timeoutMs: 60_000 });
    try {
      await until('the layer unpacks', async () => snapshotFiles('big.bin').some((f) => statSync(f).size > 0), 30_000);
      await daemon.restart('SIGKILL');
    } finally {
      registry.release();
    }
    assert.notEqual((await pull).code, 0);
    assert.deepEqual(snapshotFiles('big.bin'), [], 'the half-unpacked layer is gone');
    assert.equal(ingests().length, 1, 'the downloaded bytes are kept');
    const r = await daemon.docker(['pull', `${registry.host}/hold`], { timeoutMs: 60_000 });
    assert.equal(r.code, 0, r.stderr + daemon.log.slice(-2000));
    const ranged = registry.requests.filter((q) => q.startsWith(`GET /v2/hold/blobs/${registry.held.layerDigest} bytes=`));
    assert.equal(ranged.length, 1, registry.requests.join('\n'));
    assert.deepEqual(snapshotFiles('big.bin').map((f) => statSync(f).size), [4 * 1024 * 1024]);
    assert.deepEqual(ingests(), []);
    const removed = await daemon.docker(['rmi', `${registry.host}/hold`]);
    assert.equal(removed.code, 0, removed.stderr);
  });

  it('500 and 401 answers are errors that say so', async () => {
    await pullFails('err500', /received unexpected HTTP status: 500 Internal Server Error/);
    await pullFails('denied', /pull access denied for .*denied, repository does not exist or may require 'docker login'/);
  });

  it('a connection dropped midway keeps the partial layer; the next pull resumes it with Range', async () => {
    await pullFails('drop', /connection broke|terminated|other side closed/);
    assert.equal(await images(), '');
    assert.equal(ingests().length, 1, 'the partial download is kept');
    assert.ok(!blobs().includes(registry.layout.layerDigest.slice(7)));
    const r = await daemon.docker(['pull', `${registry.host}/drop`]);
    assert.equal(r.code, 0, r.stderr + daemon.log.slice(-2000));
    assert.match(r.stdout, /Pull complete/);
    const ranged = registry.requests.filter((q) => q.startsWith(`GET /v2/drop/blobs/${registry.layout.layerDigest} bytes=`));
    assert.equal(ranged.length, 1, registry.requests.join('\n'));
    assert.match(ranged[0]!, new RegExp(`bytes=${registry.layout.layer.length >> 1}-$`));
    assert.deepEqual(ingests(), []);
    const run = await daemon.docker(['run', '--rm', `${registry.host}/drop`, 'echo', 'resumed'], { timeoutMs: 60_000 });
    assert.equal(run.stdout, 'resumed\n', run.stderr);
  });

  it('token auth: anonymous pulls are refused, login then pull works', async () => {
    await pullFails('private', /pull access denied|unauthorized/);
    const bad = await daemon.docker(['login', '-u', USER, '--password-stdin', registry.host], { input: 'wrong\n' });
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /unauthorized: incorrect username or password/);
    const login = await daemon.docker(['login', '-u', USER, '--password-stdin', registry.host], { input: `${PASSWORD}\n` });
    assert.equal(login.code, 0, login.stderr);
    assert.match(login.stdout, /Login Succeeded/);
    const r = await daemon.docker(['pull', `${registry.host}/private`]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /Status: Downloaded newer image for 127\.0\.0\.1:\d+\/private:latest/);
    assert.ok(registry.requests.some((q) => q.startsWith('GET /token')));
  });

  it('berth login/pull/logout use the same credentials', async () => {
    const login = await daemon.berth(['login', '-u', USER, '--password-stdin', registry.host], { input: `${PASSWORD}\n` });
    assert.equal(login.code, 0, login.stderr);
    const pull = await daemon.berth(['pull', `${registry.host}/private:latest`]);
    assert.equal(pull.code, 0, pull.stderr);
    assert.match(pull.stdout, /Image is up to date for 127\.0\.0\.1:\d+\/private:latest/);
    const logout = await daemon.berth(['logout', registry.host]);
    assert.equal(logout.stdout, `Removing login credentials for ${registry.host}\n`);
    const again = await daemon.berth(['logout', registry.host]);
    assert.equal(again.stdout, `Not logged in to ${registry.host}\n`);
  });
});
