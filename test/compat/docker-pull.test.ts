// The real docker CLI pulling from and pushing to a real registry (Debian's docker-registry,
// CNCF distribution) on loopback through a private berthd; skopeo reads back what was pushed.
import * as assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { TestDaemon, alpineRootfs } from '../helpers/berthd.js';
import { BUSYBOX_TAG, TestRegistry, skopeo } from '../registry/registries.js';

const BUSYBOX_MANIFEST = 'sha256:a34ce92094b7b100a98fbd21411a92825f6827b1bc5f6918c253516c90556998';
const BUSYBOX_LAYER = '5c3b447848a9';

let daemon: TestDaemon;
let registry: TestRegistry;
let other: TestRegistry;
let scratch: string;

before(async () => {
  scratch = mkdtempSync(join(tmpdir(), 'berth-pull-'));
  [daemon, registry, other] = await Promise.all([TestDaemon.start(), TestRegistry.start(), TestRegistry.start()]);
  await registry.pushBusybox();
  // A second image on the same base: busybox plus one layer, made with umoci.
  await registry.pushOnBusybox(scratch, 'hello', 'hello from the second layer\n');
  // A third, whose top layer only the progress test downloads.
  await registry.pushOnBusybox(scratch, 'progress', 'a layer for the progress test\n');
});

after(async () => {
  await daemon?.cleanup();
  await registry?.stop();
  await other?.stop();
  rmSync(scratch, { recursive: true, force: true });
});

async function ok(...args: string[]): Promise<{ stdout: string; stderr: string }> {
  const r = await daemon.docker(args, { timeoutMs: 120_000 });
  assert.equal(r.code, 0, `docker ${args.join(' ')} failed (${r.code}): ${r.stderr}\n${daemon.log.slice(-2000)}`);
  return r;
}

describe('docker CLI: pull and push with a real registry', () => {
  it('pulls by tag with docker\'s progress and records the repo digest', async () => {
    const name = `${registry.host}/library/busybox:${BUSYBOX_TAG}`;
    const { stdout } = await ok('pull', name);
    assert.equal(
      stdout,
      [
        `${BUSYBOX_TAG}: Pulling from library/busybox`,
        `${BUSYBOX_LAYER}: Pulling fs layer`,
        `${BUSYBOX_LAYER}: Verifying Checksum`,
        `${BUSYBOX_LAYER}: Download complete`,
        `${BUSYBOX_LAYER}: Pull complete`,
        `Digest: ${BUSYBOX_MANIFEST}`,
        `Status: Downloaded newer image for ${name}`,
        name,
        '',
      ].join('\n'),
    );
    const digests = await ok('image', 'inspect', '-f', '{{json .RepoDigests}}', name);
    assert.equal(digests.stdout.trim(), JSON.stringify([`${registry.host}/library/busybox@${BUSYBOX_MANIFEST}`]));
    const again = await ok('pull', name);
    assert.match(again.stdout, new RegExp(`Status: Image is up to date for ${name.replace(/\./g, '\\.')}`));
  });

  it('the API stream has Downloading with progressDetail and a bar, Extracting, and Digest', async () => {
    const r = await fetchStream(`/images/create?fromImage=${registry.host}/library/progress&tag=v1`);
    assert.deepEqual(r[0], { status: 'Pulling from library/progress', id: 'v1' });
    assert.deepEqual(r[1], { status: 'Already exists', progressDetail: {}, id: BUSYBOX_LAYER });
    const downloading = r.find((m) => m['status'] === 'Downloading');
    assert.ok(downloading, JSON.stringify(r));
    assert.match(String(downloading['progress']), /^\[=*>\s*\] +\d+(\.\d+)?[kM]?B\/\d+(\.\d+)?[kM]?B$/);
    const detail = downloading['progressDetail'] as { current: number; total: number };
    assert.ok(detail.total > 0 && detail.current > 0);
    assert.ok(r.some((m) => m['status'] === 'Extracting'));
    assert.ok(r.some((m) => m['status'] === 'Verifying Checksum'));
    assert.ok(r.some((m) => m['status'] === 'Download complete'));
    assert.match(String(r.at(-2)?.['status']), /^Digest: sha256:[a-f0-9]{64}$/);
    assert.match(String(r.at(-1)?.['status']), /^Status: Downloaded newer image for 127\.0\.0\.1:\d+\/library\/progress:v1$/);
  });

  it('pulls by digest', async () => {
    const ref = `${registry.host}/library/busybox@${BUSYBOX_MANIFEST}`;
    const { stdout } = await ok('pull', ref);
    assert.match(stdout, new RegExp(`Status: (Downloaded newer image|Image is up to date) for ${ref.replace(/\./g, '\\.')}`));
    const listed = await ok('images', '--digests', '--format', '{{.Repository}} {{.Digest}}');
    assert.match(listed.stdout, new RegExp(`${registry.host}/library/busybox ${BUSYBOX_MANIFEST}`));
  });

  it('runs an image it does not have: pulls it, sharing the base layer ("Already exists")', async () => {
    const r = await daemon.docker(['run', '--rm', `${registry.host}/library/hello:v1`, 'cat', '/hello.txt'], { timeoutMs: 120_000 });
    assert.equal(r.code, 0, r.stderr + daemon.log.slice(-2000));
    assert.equal(r.stdout, 'hello from the second layer\n');
    assert.match(r.stderr, /Unable to find image/);
    assert.match(r.stderr, new RegExp(`${BUSYBOX_LAYER}: Already exists`));
    assert.match(r.stderr, /: Pull complete/);
  });

  it('a missing tag and a missing repository are refused with docker\'s messages', async () => {
    const tag = await daemon.docker(['pull', `${registry.host}/library/busybox:nope`]);
    assert.equal(tag.code, 1);
    assert.equal(tag.stderr.trim(), `Error response from daemon: manifest for ${registry.host}/library/busybox:nope not found: manifest unknown: manifest unknown`);
    const repo = await daemon.docker(['pull', `${registry.host}/library/nothing`]);
    assert.equal(repo.code, 1);
    // distribution answers MANIFEST_UNKNOWN for a repository it does not have, as for a tag.
    assert.equal(repo.stderr.trim(), `Error response from daemon: manifest for ${registry.host}/library/nothing:latest not found: manifest unknown: manifest unknown`);
  });

  it('pushes: mounts layers the registry has in another repository, then a HEAD hit the second time', async () => {
    const target = `${registry.host}/team/hello:v2`;
    await ok('tag', `${registry.host}/library/hello:v1`, target);
    const first = await ok('push', target);
    assert.match(first.stdout, new RegExp(`^The push refers to repository \\[${registry.host}/team/hello\\]\n`));
    assert.match(first.stdout, /: Mounted from library\/(busybox|hello)\n/);
    const m = /v2: digest: (sha256:[a-f0-9]{64}) size: (\d+)\n$/.exec(first.stdout);
    assert.ok(m, first.stdout);
    const second = await ok('push', target);
    assert.equal((second.stdout.match(/Layer already exists/g) ?? []).length, 2, second.stdout);
    const inspected = JSON.parse(await skopeo(['inspect', '--tls-verify=false', `docker://${target}`])) as { Digest: string; Layers: string[] };
    assert.equal(inspected.Digest, m[1]);
    assert.equal(inspected.Layers.length, 2);
  });

  it('pushes to a registry that has nothing: uploads, and skopeo reads it back; an imported image too', async () => {
    const target = `${other.host}/copy/hello:latest`;
    await ok('tag', `${registry.host}/library/hello:v1`, target);
    const pushed = await ok('push', target);
    assert.equal((pushed.stdout.match(/: Pushed\n/g) ?? []).length, 2, pushed.stdout);
    const inspected = JSON.parse(await skopeo(['inspect', '--tls-verify=false', `docker://${target}`])) as { Digest: string };
    assert.match(pushed.stdout, new RegExp(`latest: digest: ${inspected.Digest} size: \\d+`));

    await ok('import', alpineRootfs, `${other.host}/alpine:3.20`);
    const alpine = await ok('push', `${other.host}/alpine:3.20`);
    assert.match(alpine.stdout, /: Pushed\n/);
    await skopeo(['inspect', '--tls-verify=false', `docker://${other.host}/alpine:3.20`]);
    await ok('rmi', `${other.host}/alpine:3.20`);
    const back = await daemon.docker(['run', '--rm', `${other.host}/alpine:3.20`, 'cat', '/etc/alpine-release'], { timeoutMs: 120_000 });
    assert.equal(back.stdout, '3.20.3\n', back.stderr);
  });

  it('berth pull prints docker\'s progress', async () => {
    await ok('rmi', `${registry.host}/library/hello:v1`, `${registry.host}/team/hello:v2`, `${other.host}/copy/hello:latest`);
    const r = await daemon.berth(['pull', `${registry.host}/library/hello:v1`], { timeoutMs: 120_000 });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^v1: Pulling from library\/hello\n/);
    assert.match(r.stdout, new RegExp(`${BUSYBOX_LAYER}: Already exists\n`));
    assert.match(r.stdout, /Status: Downloaded newer image for 127\.0\.0\.1:\d+\/library\/hello:v1\n127\.0\.0\.1:\d+\/library\/hello:v1\n$/);
  });

  it('pull -a pulls every tag (docker CLI, berth CLI and the API); pull -q prints only the reference', async () => {
    await registry.pushBusybox('library/multi', 'one');
    await skopeo(['copy', '--dest-tls-verify=false', `oci:${join(scratch, 'layout')}:hello`, `docker://${registry.host}/library/multi:two`]);
    const repo = `${registry.host}/library/multi`;
    const all = await ok('pull', '-a', repo);
    assert.match(all.stdout, /^one: Pulling from library\/multi\n/);
    assert.match(all.stdout, /\ntwo: Pulling from library\/multi\n/);
    assert.equal((all.stdout.match(/Status: /g) ?? []).length, 1, all.stdout);
    assert.ok(all.stdout.endsWith(`Status: Downloaded newer image for ${repo}\n${repo}\n`), all.stdout);
    const listed = await ok('images', '--format', '{{.Tag}}', repo);
    assert.deepEqual([...new Set(listed.stdout.trim().split('\n'))].filter((t) => t !== '<none>').sort(), ['one', 'two']);
    const again = await ok('pull', '--all-tags', repo);
    assert.ok(again.stdout.endsWith(`Status: Image is up to date for ${repo}\n${repo}\n`), again.stdout);

    await ok('rmi', `${repo}:one`, `${repo}:two`);
    const quiet = await ok('pull', '-q', `${repo}:two`);
    assert.equal(quiet.stdout, `${repo}:two\n`);

    const berthAll = await daemon.berth(['pull', '-a', '-q', repo], { timeoutMs: 120_000 });
    assert.equal(berthAll.code, 0, berthAll.stderr);
    assert.equal(berthAll.stdout, `${repo}\n`);
    const berthTagged = await daemon.berth(['pull', '-a', `${repo}:one`], { timeoutMs: 120_000 });
    assert.notEqual(berthTagged.code, 0);
    assert.match(berthTagged.stderr, /tag can't be used with --all-tags\/-a/);
    await ok('image', 'inspect', `${repo}:one`);

    await ok('rmi', `${repo}:one`, `${repo}:two`);
    const r = await fetchStream(`/images/create?fromImage=${repo}`);
    assert.deepEqual(r[0], { status: 'Pulling from library/multi', id: 'one' });
    assert.ok(r.some((m) => m['status'] === 'Pulling from library/multi' && m['id'] === 'two'), JSON.stringify(r));
    assert.deepEqual(r.at(-1), { status: `Status: Downloaded newer image for ${repo}` });
    await ok('image', 'inspect', `${repo}:two`);
  });
});

/** The raw JSON messages of an API call over the daemon's socket. */
async function fetchStream(path: string): Promise<Array<Record<string, unknown>>> {
  const { request } = await import('node:http');
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: daemon.socket, method: 'POST', path: `/v1.47${path}`, timeout: 60_000 }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => resolve(text.split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l) as Record<string, unknown>)));
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
    req.end();
  });
}
