// Unit tests of the registry client's pure logic: challenges, X-Registry-Auth, addresses,
// docker's progress bar, platforms and pull references.
import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loginDomain, pullReference } from '../../src/api/routes/registry.js';
import { decodeAuthHeader, encodeAuthHeader, parseChallenges } from '../../src/registry/auth.js';
import { parsePlatform, selectFromIndex } from '../../src/registry/manifests.js';
import { progressBar } from '../../src/registry/progress.js';
import { registryBaseUrl } from '../../src/registry/registry-client.js';

describe('registry client units', () => {
  it('parses Bearer and Basic challenges, with commas inside quotes', () => {
    assert.deepEqual(parseChallenges('Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push"'), [
      { scheme: 'bearer', params: { realm: 'https://auth.example/token', service: 'registry.example', scope: 'repository:a/b:pull,push' } },
    ]);
    assert.deepEqual(parseChallenges('Basic realm="Registry Realm"'), [{ scheme: 'basic', params: { realm: 'Registry Realm' } }]);
    assert.deepEqual(parseChallenges(null), []);
  });

  it('decodes X-Registry-Auth in both base64 alphabets; empty is anonymous; garbage is a 400', () => {
    const header = encodeAuthHeader({ username: 'u', password: 'p?>~', serveraddress: 'r' });
    assert.deepEqual(decodeAuthHeader(header), { username: 'u', password: 'p?>~', serveraddress: 'r' });
    assert.deepEqual(decodeAuthHeader(Buffer.from(JSON.stringify({ identitytoken: 't' })).toString('base64')), { identitytoken: 't' });
    assert.deepEqual(decodeAuthHeader(Buffer.from(JSON.stringify({ auth: Buffer.from('a:b').toString('base64') })).toString('base64url')).username, 'a');
    assert.deepEqual(decodeAuthHeader(undefined), {});
    assert.deepEqual(decodeAuthHeader('e30='), {});
    assert.throws(() => decodeAuthHeader('!!!notjson'), /X-Registry-Auth/);
  });

  it('plain HTTP only for loopback and insecure registries; docker.io is the Hub registry host', () => {
    assert.equal(registryBaseUrl('127.0.0.1:5000'), 'http://127.0.0.1:5000');
    assert.equal(registryBaseUrl('127.8.9.10'), 'http://127.8.9.10');
    assert.equal(registryBaseUrl('localhost:5000'), 'http://localhost:5000');
    assert.equal(registryBaseUrl('[::1]:5000'), 'http://[::1]:5000');
    assert.equal(registryBaseUrl('registry.example:5000'), 'https://registry.example:5000');
    assert.equal(registryBaseUrl('registry.example:5000', { insecureRegistries: ['registry.example:5000'] }), 'http://registry.example:5000');
    assert.equal(registryBaseUrl('docker.io'), 'https://registry-1.docker.io');
    assert.equal(loginDomain('https://index.docker.io/v1/'), 'docker.io');
    assert.equal(loginDomain('127.0.0.1:5000'), '127.0.0.1:5000');
  });

  it('draws the progress bar as moby does without a terminal', () => {
    assert.equal(progressBar(0, 886160), `[>${' '.repeat(50)}]       0B/886.2kB`);
    assert.equal(progressBar(443080, 886160), `[${'='.repeat(25)}>${' '.repeat(25)}]  443.1kB/886.2kB`);
    assert.equal(progressBar(886160, 886160), `[${'='.repeat(50)}>]  886.2kB/886.2kB`);
    assert.equal(progressBar(1500, 0), '   1.5kB');
  });

  it('selects linux/amd64 (or the asked platform) from an index', () => {
    const d = (arch: string, variant?: string) => ({
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      digest: `sha256:${arch.padEnd(64, '0').replace(/[^a-f0-9]/g, 'a')}`,
      size: 1,
      platform: { os: 'linux', architecture: arch, ...(variant ? { variant } : {}) },
    });
    const index = Buffer.from(JSON.stringify({ schemaVersion: 2, manifests: [d('arm64', 'v8'), d('amd64')] }));
    assert.equal(selectFromIndex(index, parsePlatform('')).platform?.architecture, 'amd64');
    assert.equal(selectFromIndex(index, parsePlatform('linux/arm64/v8')).platform?.architecture, 'arm64');
    assert.throws(() => selectFromIndex(index, parsePlatform('linux/s390x')), /no matching manifest for linux\/s390x/);
  });

  it('makes the pull reference from fromImage and tag', () => {
    assert.deepEqual(pullReference('busybox', 'latest'), { domain: 'docker.io', path: 'library/busybox', tag: 'latest' });
    // Neither a tag nor a digest: every tag (pull -a).
    assert.deepEqual(pullReference('127.0.0.1:5000/a/b', null), { domain: '127.0.0.1:5000', path: 'a/b' });
    assert.deepEqual(pullReference('127.0.0.1:5000/a/b', ''), { domain: '127.0.0.1:5000', path: 'a/b' });
    const digest = `sha256:${'a'.repeat(64)}`;
    assert.deepEqual(pullReference('x.io/a', digest), { domain: 'x.io', path: 'a', digest });
    assert.deepEqual(pullReference(`x.io/a@${digest}`, null), { domain: 'x.io', path: 'a', digest });
  });
});
