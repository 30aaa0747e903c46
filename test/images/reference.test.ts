import { describe, it } from 'node:test';
import * as assert from 'node:assert/strict';

import { InvalidArgument } from '../../src/errors/errors.js';
import {
  familiarName,
  familiarString,
  fullName,
  isDigest,
  isFullId,
  isValidTag,
  looksLikeIdPrefix,
  parseReference,
  parseTaggedReference,
  referenceString,
  withTag,
  type Reference,
} from '../../src/images/reference.js';

const HEX64 = 'dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9c';
const DIGEST = `sha256:${HEX64}`;

/** Asserts that parsing `input` throws InvalidArgument with exactly `message`. */
function assertRejected(input: string, message: string): void {
  assert.throws(
    () => parseReference(input),
    (err: unknown) => {
      assert.ok(err instanceof InvalidArgument, `${input}: expected InvalidArgument, got ${String(err)}`);
      assert.equal(err.message, message, `message for ${JSON.stringify(input)}`);
      assert.equal(err.code, 'INVALID_ARGUMENT');
      return true;
    },
  );
}

describe('parseReference: normalisation', () => {
  const cases: Array<[string, Reference]> = [
    ['busybox', { domain: 'docker.io', path: 'library/busybox' }],
    ['busybox:1.36', { domain: 'docker.io', path: 'library/busybox', tag: '1.36' }],
    ['docker.io/busybox', { domain: 'docker.io', path: 'library/busybox' }],
    ['docker.io/library/busybox', { domain: 'docker.io', path: 'library/busybox' }],
    ['index.docker.io/busybox', { domain: 'docker.io', path: 'library/busybox' }],
    ['index.docker.io/library/busybox', { domain: 'docker.io', path: 'library/busybox' }],
    ['index.docker.io/user/app:v1', { domain: 'docker.io', path: 'user/app', tag: 'v1' }],
    ['user/app', { domain: 'docker.io', path: 'user/app' }],
    ['foo/bar', { domain: 'docker.io', path: 'foo/bar' }],
    ['a/b/c', { domain: 'docker.io', path: 'a/b/c' }],
    ['library/foo/bar', { domain: 'docker.io', path: 'library/foo/bar' }],
    ['test_com/foo', { domain: 'docker.io', path: 'test_com/foo' }],
    ['localhost/app', { domain: 'localhost', path: 'app' }],
    ['localhost:5000/app', { domain: 'localhost:5000', path: 'app' }],
    ['localhost:5000/a/b:2', { domain: 'localhost:5000', path: 'a/b', tag: '2' }],
    ['registry.example.com/a/b', { domain: 'registry.example.com', path: 'a/b' }],
    ['Registry.Example.com/app', { domain: 'Registry.Example.com', path: 'app' }],
    ['test-com:8080/foo', { domain: 'test-com:8080', path: 'foo' }],
    ['xn--n3h.com:18080/foo', { domain: 'xn--n3h.com:18080', path: 'foo' }],
    ['127.0.0.1:5000/library/debian', { domain: '127.0.0.1:5000', path: 'library/debian' }],
    ['[::1]:5000/app', { domain: '[::1]:5000', path: 'app' }],
    ['[::1]/app:tag', { domain: '[::1]', path: 'app', tag: 'tag' }],
    ['[fc00:1:2:3:4:5:6:7]:5000/library/debian', { domain: '[fc00:1:2:3:4:5:6:7]:5000', path: 'library/debian' }],
    // One element is always a Hub image, even when it looks like a host.
    ['localhost', { domain: 'docker.io', path: 'library/localhost' }],
    ['localhost:5000', { domain: 'docker.io', path: 'library/localhost', tag: '5000' }],
    ['example.com', { domain: 'docker.io', path: 'library/example.com' }],
    ['192.168.0.1:80', { domain: 'docker.io', path: 'library/192.168.0.1', tag: '80' }],
    // 64 hex characters are a name once a domain or namespace removes the ambiguity.
    [`docker.io/${HEX64}`, { domain: 'docker.io', path: `library/${HEX64}` }],
    [HEX64.slice(0, 63), { domain: 'docker.io', path: `library/${HEX64.slice(0, 63)}` }],
    [`busybox@${DIGEST}`, { domain: 'docker.io', path: 'library/busybox', digest: DIGEST }],
    [`busybox:1@${DIGEST}`, { domain: 'docker.io', path: 'library/busybox', tag: '1', digest: DIGEST }],
    [`localhost:5000/app:v2@${DIGEST}`, { domain: 'localhost:5000', path: 'app', tag: 'v2', digest: DIGEST }],
  ];
  for (const [input, expected] of cases) {
    it(input, () => {
      assert.deepEqual(parseReference(input), expected);
    });
  }

  it('adds no tag', () => {
    assert.equal(parseReference('busybox').tag, undefined);
    assert.equal('tag' in parseReference('busybox'), false);
    assert.equal('digest' in parseReference('busybox:1'), false);
  });
});

describe('parseReference: separators', () => {
  const valid = [
    'a.b', 'a_b', 'a__b', 'a-b', 'a--b', 'a---b', 'docker---rules/docker', 'dock__er/docker',
    'ubuntu-12.04-base', 'a1/b2.c3_d4__e5-f6', 'd/docker', 'jess/t', '0', '9/9',
  ];
  for (const input of valid) {
    it(`accepts ${input}`, () => {
      assert.doesNotThrow(() => parseReference(input));
    });
  }
  const invalid = [
    'a..b', 'a___b', 'a._b', 'a_.b', 'a-.b', 'a.-b', 'a-_b', '-docker', 'docker-', '_docker',
    'docker_', '.docker', 'docker.', '-docker/docker', 'docker-/docker', '-docker-/docker',
    '____/____', '_docker/_docker', 'dock..er/docker', 'dock_.er/docker', 'dock-.er/docker',
    'docker/', 'docker///docker', 'docker.io/docker///docker', '/busybox', 'a b', 'a+b',
  ];
  for (const input of invalid) {
    it(`rejects ${JSON.stringify(input)}`, () => {
      assertRejected(input, 'invalid reference format');
    });
  }
});

describe('parseReference: domains', () => {
  const invalid = [
    '-docker.io/docker/docker', // a domain component may not start with '-'
    'docker-.io/app',
    'foo_bar.com/app', // no underscore in host names
    'example.com:/app', // empty port
    'example.com:50a/app',
    'https://github.com/docker/docker',
    '[fc00::1]', // a bracketed address with no path is not a name
    '[fc00::1]:5000',
    'fc00::1:5000/debian', // IPv6 needs brackets
    '[fe80::1%eth0]:5000/debian', // zone ids are excluded
    '[2001:db8:3:4::192.0.2.33]:5000/debian', // IPv4-mapped forms are excluded
    '[]:5000/app',
    'localhost:5000//app',
  ];
  for (const input of invalid) {
    it(`rejects ${input}`, () => {
      assertRejected(input, 'invalid reference format');
    });
  }

  it('treats the first element as a domain only with ".", ":" or "localhost"', () => {
    assert.equal(parseReference('localhost/app').domain, 'localhost');
    assert.equal(parseReference('localhost:5000/app').domain, 'localhost:5000');
    assert.equal(parseReference('my.registry/app').domain, 'my.registry');
    assert.equal(parseReference('myhost:80/app').domain, 'myhost:80');
    assert.equal(parseReference('foo/bar').domain, 'docker.io');
    assert.equal(parseReference('localhostx/app').domain, 'docker.io');
    assert.equal(parseReference('localhostx/app').path, 'localhostx/app');
  });
});

describe('parseReference: docker messages', () => {
  it('lowercase: single-component Hub name shows the library/ path', () => {
    assertRejected('Busybox', 'invalid reference format: repository name (library/Busybox) must be lowercase');
    assertRejected('Busybox:latest', 'invalid reference format: repository name (library/Busybox) must be lowercase');
  });
  it('lowercase: other paths as given', () => {
    assertRejected('docker/Docker', 'invalid reference format: repository name (docker/Docker) must be lowercase');
    assertRejected('docker.io/docker/Docker', 'invalid reference format: repository name (docker/Docker) must be lowercase');
    assertRejected('Docker/docker', 'invalid reference format: repository name (Docker/docker) must be lowercase');
    assertRejected('localhost:5000/App:1', 'invalid reference format: repository name (App) must be lowercase');
    assertRejected(`Busybox@${DIGEST}`, 'invalid reference format: repository name (library/Busybox) must be lowercase');
  });
  it('uppercase is fine in domains and tags', () => {
    assert.equal(parseReference('busybox:Latest_1').tag, 'Latest_1');
    assert.equal(parseReference('MyHost.com/app').domain, 'MyHost.com');
  });
  it('64 hex characters alone are an id, not a name', () => {
    assertRejected(HEX64, `invalid repository name (${HEX64}), cannot specify 64-byte hexadecimal strings`);
  });
  it('empty and malformed input', () => {
    for (const input of ['', ':', '@', 'busybox:', 'busybox@', ':latest', 'busybox::1', 'busybox:a:b',
      'busybox@@sha256:' + HEX64, 'busybox:tag/x', ' busybox', 'busybox ', 'busy\nbox']) {
      assertRejected(input, 'invalid reference format');
    }
  });
});

describe('parseReference: tags', () => {
  it('accepts [\\w][\\w.-]{0,127}', () => {
    for (const tag of ['latest', 'Latest', '1', '_', '1.2.3', 'v1-rc.1', 'a_b', 'x'.repeat(128), '_x.y-z']) {
      assert.equal(parseReference(`busybox:${tag}`).tag, tag);
    }
  });
  it('rejects longer or malformed tags', () => {
    for (const tag of ['x'.repeat(129), '.a', '-a', 'a+b', 'a b', 'é']) {
      assertRejected(`busybox:${tag}`, 'invalid reference format');
    }
  });
});

describe('parseReference: digests', () => {
  it('accepts sha256, sha384 and sha512 of the right length', () => {
    for (const digest of [DIGEST, `sha384:${'a'.repeat(96)}`, `sha512:${'0'.repeat(128)}`]) {
      assert.equal(parseReference(`busybox@${digest}`).digest, digest);
    }
  });
  it('rejects digests that miss the grammar', () => {
    for (const digest of ['sha256:abc', `sha256:${'a'.repeat(31)}`, `sha256:${'g'.repeat(64)}`,
      `:${HEX64}`, HEX64, `1sha:${HEX64}`, `sha256-:${HEX64}`, `sha256:${HEX64}/x`]) {
      assertRejected(`busybox@${digest}`, 'invalid reference format');
    }
  });
  it('rejects wrong lengths and uppercase hex as a bad checksum', () => {
    for (const digest of [`sha256:${'a'.repeat(63)}`, `sha256:${'a'.repeat(65)}`, `sha256:${HEX64.toUpperCase()}`,
      `sha512:${HEX64}`, `sha384:${'a'.repeat(128)}`, `SHA256:${HEX64}`]) {
      assertRejected(`busybox@${digest}`, 'invalid checksum digest format');
    }
  });
  it('rejects algorithms docker does not support', () => {
    assertRejected(`busybox@md5:${'a'.repeat(32)}`, 'unsupported digest algorithm');
    assertRejected(`busybox@sha256+b64:${HEX64}`, 'unsupported digest algorithm');
    assertRejected(`busybox@blake3:${HEX64}`, 'unsupported digest algorithm');
  });
});

describe('parseReference: length', () => {
  it('allows a path of 255 characters, the domain not counted', () => {
    const path = 'a'.repeat(255);
    assert.equal(parseReference(`example.com/${path}`).path, path);
    assert.equal(parseReference(`${'b'.repeat(100)}/${'c'.repeat(154)}`).path.length, 255);
  });
  it('refuses a path of 256 characters', () => {
    const message = 'repository name must not be more than 255 characters';
    assertRejected(`example.com/${'a'.repeat(256)}`, message);
    assertRejected(`${'b'.repeat(100)}/${'c'.repeat(155)}`, message);
    // The library/ prefix counts: 248 characters become 256.
    assertRejected('a'.repeat(248), message);
    assert.equal(parseReference('a'.repeat(247)).path.length, 255);
  });
  it('answers hostile long input quickly', () => {
    const hostile = [
      'a-'.repeat(50_000) + '!',
      'a.'.repeat(50_000) + '_/x',
      `${'a-'.repeat(50_000)}a.com!/x`,
      'a__'.repeat(50_000) + '_',
      `busybox@sha256:${'a'.repeat(100_000)}!`,
      `[${':'.repeat(100_000)}/x`,
    ];
    const started = process.hrtime.bigint();
    for (const input of hostile) assert.throws(() => parseReference(input), InvalidArgument);
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    assert.ok(ms < 500, `took ${ms} ms`);
  });
});

describe('parseTaggedReference', () => {
  it('adds latest only when there is neither tag nor digest', () => {
    assert.equal(parseTaggedReference('busybox').tag, 'latest');
    assert.equal(parseTaggedReference('busybox:1').tag, '1');
    const digested = parseTaggedReference(`busybox@${DIGEST}`);
    assert.equal(digested.tag, undefined);
    assert.equal(digested.digest, DIGEST);
    assert.deepEqual(parseTaggedReference(`busybox:1@${DIGEST}`), {
      domain: 'docker.io', path: 'library/busybox', tag: '1', digest: DIGEST,
    });
  });
});

describe('names and strings', () => {
  const cases: Array<{ input: string; full: string; familiar: string; str: string; fam: string }> = [
    { input: 'busybox', full: 'docker.io/library/busybox', familiar: 'busybox',
      str: 'docker.io/library/busybox:latest', fam: 'busybox:latest' },
    { input: 'docker.io/library/busybox:1', full: 'docker.io/library/busybox', familiar: 'busybox',
      str: 'docker.io/library/busybox:1', fam: 'busybox:1' },
    { input: 'user/app', full: 'docker.io/user/app', familiar: 'user/app',
      str: 'docker.io/user/app:latest', fam: 'user/app:latest' },
    { input: 'library/foo/bar', full: 'docker.io/library/foo/bar', familiar: 'library/foo/bar',
      str: 'docker.io/library/foo/bar:latest', fam: 'library/foo/bar:latest' },
    { input: 'localhost:5000/app', full: 'localhost:5000/app', familiar: 'localhost:5000/app',
      str: 'localhost:5000/app:latest', fam: 'localhost:5000/app:latest' },
    { input: 'localhost/library/app', full: 'localhost/library/app', familiar: 'localhost/library/app',
      str: 'localhost/library/app:latest', fam: 'localhost/library/app:latest' },
    { input: `busybox@${DIGEST}`, full: 'docker.io/library/busybox', familiar: 'busybox',
      str: `docker.io/library/busybox@${DIGEST}`, fam: `busybox@${DIGEST}` },
    { input: `busybox:1@${DIGEST}`, full: 'docker.io/library/busybox', familiar: 'busybox',
      str: `docker.io/library/busybox:1@${DIGEST}`, fam: `busybox:1@${DIGEST}` },
    { input: '[::1]:5000/a/b:c', full: '[::1]:5000/a/b', familiar: '[::1]:5000/a/b',
      str: '[::1]:5000/a/b:c', fam: '[::1]:5000/a/b:c' },
  ];
  for (const c of cases) {
    it(c.input, () => {
      const ref = parseTaggedReference(c.input);
      assert.equal(fullName(ref), c.full);
      assert.equal(familiarName(ref), c.familiar);
      assert.equal(referenceString(ref), c.str);
      assert.equal(familiarString(ref), c.fam);
    });
  }
});

describe('round trips', () => {
  const inputs = [
    'busybox', 'busybox:latest', 'busybox:1.36.1', 'ubuntu-12.04-base', 'user/app', 'user/app:v1',
    'a/b/c:d', 'library/foo/bar', 'localhost/app', 'localhost:5000/app:1', 'registry.example.com/a/b:c',
    '127.0.0.1:5000/debian', '[::1]:5000/app', '[fc00::1]/x/y', 'docker.io/busybox', 'index.docker.io/user/app',
    'docker.io/library/busybox:1', `busybox@${DIGEST}`, `busybox:1@${DIGEST}`, `user/app@sha512:${'f'.repeat(128)}`,
    `localhost:5000/app:v2@${DIGEST}`, 'dock__er/dock---er.x_y:T_1', 'localhost', 'example.com',
  ];
  for (const input of inputs) {
    it(input, () => {
      const ref = parseTaggedReference(input);
      const familiar = familiarString(ref);
      // The familiar form parses back to the same reference, and prints the same again.
      assert.deepEqual(parseTaggedReference(familiar), ref);
      assert.equal(familiarString(parseTaggedReference(familiar)), familiar);
      // So does the fully qualified form.
      assert.deepEqual(parseTaggedReference(referenceString(ref)), ref);
    });
  }
  it('normalises the familiar forms docker users type', () => {
    assert.equal(familiarString(parseTaggedReference('docker.io/library/busybox')), 'busybox:latest');
    assert.equal(familiarString(parseTaggedReference('index.docker.io/library/busybox:1')), 'busybox:1');
    assert.equal(familiarString(parseTaggedReference('docker.io/user/app')), 'user/app:latest');
  });
});

describe('withTag', () => {
  it('sets the tag and keeps the digest', () => {
    const ref = parseReference(`busybox:1@${DIGEST}`);
    assert.deepEqual(withTag(ref, '2'), { domain: 'docker.io', path: 'library/busybox', tag: '2', digest: DIGEST });
    assert.deepEqual(withTag(parseReference('busybox'), 'x'), { domain: 'docker.io', path: 'library/busybox', tag: 'x' });
    assert.equal(ref.tag, '1', 'the input is not changed');
  });
  it('rejects an invalid tag', () => {
    for (const tag of ['', '-foo', '.x', 'a:b', 'a/b', 'x'.repeat(129)]) {
      assert.throws(() => withTag(parseReference('busybox'), tag), (err: unknown) =>
        err instanceof InvalidArgument && err.message === 'invalid tag format');
    }
  });
});

describe('predicates', () => {
  it('isValidTag', () => {
    assert.equal(isValidTag('latest'), true);
    assert.equal(isValidTag('_1.a-B'), true);
    assert.equal(isValidTag('x'.repeat(128)), true);
    assert.equal(isValidTag('x'.repeat(129)), false);
    assert.equal(isValidTag(''), false);
    assert.equal(isValidTag('-a'), false);
    assert.equal(isValidTag('a@b'), false);
  });
  it('isDigest', () => {
    assert.equal(isDigest(DIGEST), true);
    assert.equal(isDigest(HEX64), false);
    assert.equal(isDigest(`sha256:${HEX64.toUpperCase()}`), false);
    assert.equal(isDigest(`sha256:${HEX64}0`), false);
    assert.equal(isDigest(`sha256:${HEX64.slice(1)}`), false);
    assert.equal(isDigest(`sha512:${'a'.repeat(128)}`), false);
    assert.equal(isDigest(` ${DIGEST}`), false);
  });
  it('isFullId', () => {
    assert.equal(isFullId(HEX64), true);
    assert.equal(isFullId(DIGEST), true);
    assert.equal(isFullId(HEX64.slice(0, 12)), false);
    assert.equal(isFullId(HEX64.toUpperCase()), false);
    assert.equal(isFullId(`sha512:${HEX64}`), false);
    assert.equal(isFullId(`${HEX64}\n`), false);
  });
  it('looksLikeIdPrefix', () => {
    assert.equal(looksLikeIdPrefix('a'), true);
    assert.equal(looksLikeIdPrefix(HEX64.slice(0, 12)), true);
    assert.equal(looksLikeIdPrefix(HEX64), true);
    assert.equal(looksLikeIdPrefix(`${HEX64}a`), false);
    assert.equal(looksLikeIdPrefix(''), false);
    assert.equal(looksLikeIdPrefix('busybox'), false);
    assert.equal(looksLikeIdPrefix('ABC'), false);
    assert.equal(looksLikeIdPrefix(DIGEST), false);
  });
});
