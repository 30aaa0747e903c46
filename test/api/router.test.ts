// The Engine API's plumbing on a real HTTP server over a unix socket: versioned and
// unversioned paths, docker's version errors, 404 JSON for unknown paths, error mapping,
// path parameters with slashes, bodies, and the filters and boolean query parameters.
import * as assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { API_VERSION, MIN_API_VERSION, Router, checkFilterNames, compareVersions, parseFilters, queryBool, sendJson, splitVersion } from '../../src/api/router.js';
import { listenUnix, type ApiServer } from '../../src/api/server.js';
import { createLogger } from '../../src/daemon/logger.js';
import { Conflict, InvalidArgument, NotFound } from '../../src/errors/errors.js';

let dir: string;
let socket: string;
let api: ApiServer;
const logged: string[] = [];

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  json: unknown;
}

function call(method: string, path: string, body?: string, headers: Record<string, string> = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: socket, method, path, headers, agent: false }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => {
        let json: unknown;
        try {
          json = text ? JSON.parse(text) : undefined;
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'berth-api-'));
  socket = join(dir, 'api.sock');
  const router = new Router();
  router.add('GET', '/things/{id}/json', (ctx) => sendJson(ctx.res!, 200, { id: ctx.params['id'], version: ctx.version }));
  router.add('GET', '/images/{name:.+}/json', (ctx) => sendJson(ctx.res!, 200, { name: ctx.params['name'] }));
  router.add('GET', '/images/json', (ctx) => {
    const filters = parseFilters(ctx.query.get('filters'));
    checkFilterNames(filters, ['dangling', 'reference', 'label']);
    sendJson(ctx.res!, 200, { filters: Object.fromEntries(filters), all: queryBool(ctx.query, 'all') });
  });
  router.add('POST', '/echo', async (ctx) => sendJson(ctx.res!, 200, await ctx.json<unknown>({ empty: true })));
  router.add('GET', '/fail/{kind}', (ctx) => {
    switch (ctx.params['kind']) {
      case 'notfound': throw new NotFound('No such container: nope');
      case 'conflict': throw new Conflict('conflict: the name is in use');
      case 'invalid': throw new InvalidArgument('bad parameter');
      default: throw new Error('something broke inside');
    }
  });
  api = await listenUnix(router, socket, createLogger('debug', (line) => logged.push(line)));
});

after(async () => {
  await api?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('API router over a unix socket', () => {
  it('serves a route with and without the version prefix, and tells the handler the version', async () => {
    const plain = await call('GET', '/things/abc/json');
    assert.equal(plain.status, 200);
    assert.deepEqual(plain.json, { id: 'abc', version: API_VERSION });
    const versioned = await call('GET', `/v${API_VERSION}/things/abc/json`);
    assert.deepEqual(versioned.json, { id: 'abc', version: API_VERSION });
    const older = await call('GET', '/v1.30/things/abc/json');
    assert.deepEqual(older.json, { id: 'abc', version: '1.30' });
    assert.match(String(plain.headers['content-type']), /^application\/json/);
  });

  it('refuses a client version above the maximum with docker\'s message and 400', async () => {
    const r = await call('GET', '/v1.99/things/abc/json');
    assert.equal(r.status, 400);
    assert.deepEqual(r.json, { message: `client version 1.99 is too new. Maximum supported API version is ${API_VERSION}` });
    // 1.100 is above 1.47 as a version, though not as a decimal number.
    assert.equal((await call('GET', '/v1.100/things/abc/json')).status, 400);
  });

  it('refuses a client version below the minimum with docker\'s message and 400', async () => {
    const r = await call('GET', '/v1.12/things/abc/json');
    assert.equal(r.status, 400);
    assert.deepEqual(r.json, {
      message: `client version 1.12 is too old. Minimum supported API version is ${MIN_API_VERSION}, please upgrade your client to a newer version`,
    });
    assert.equal((await call('GET', `/v${MIN_API_VERSION}/things/x/json`)).status, 200);
  });

  it('answers unknown paths and wrong methods with 404 JSON, as moby does', async () => {
    for (const [method, path] of [['GET', '/nope'], ['GET', '/v1.47/things'], ['DELETE', '/things/abc/json'], ['GET', '/v1.47/'], ['POST', '/images/json']]) {
      const r = await call(method!, path!);
      assert.equal(r.status, 404, `${method} ${path}`);
      assert.match(String(r.headers['content-type']), /^application\/json/);
      assert.deepEqual(r.json, { message: 'page not found' }, `${method} ${path}`);
    }
  });

  it('answers HEAD with the GET route', async () => {
    const r = await call('HEAD', '/things/abc/json');
    assert.equal(r.status, 200);
    assert.equal(r.text, '');
  });

  it('passes path parameters decoded, slashes and ports included', async () => {
    const r = await call('GET', '/v1.47/images/localhost:5000/team/app:1.2/json');
    assert.deepEqual(r.json, { name: 'localhost:5000/team/app:1.2' });
    const encoded = await call('GET', '/images/sha256%3Aabc/json');
    assert.deepEqual(encoded.json, { name: 'sha256:abc' });
  });

  it('maps error kinds to docker\'s status codes with a JSON message and no stack', async () => {
    const expect: Array<[string, number, string]> = [
      ['notfound', 404, 'No such container: nope'],
      ['conflict', 409, 'conflict: the name is in use'],
      ['invalid', 400, 'bad parameter'],
      ['other', 500, 'something broke inside'],
    ];
    for (const [kind, status, message] of expect) {
      const r = await call('GET', `/fail/${kind}`);
      assert.equal(r.status, status, kind);
      assert.deepEqual(r.json, { message }, kind);
    }
    assert.ok(logged.some((l) => l.includes('"level":"error"') && l.includes('something broke inside')), 'a 500 is logged');
  });

  it('reads JSON bodies, and refuses bodies that are not JSON with 400', async () => {
    assert.deepEqual((await call('POST', '/echo', '{"Image":"busybox"}', { 'Content-Type': 'application/json' })).json, { Image: 'busybox' });
    assert.deepEqual((await call('POST', '/echo')).json, { empty: true });
    const bad = await call('POST', '/echo', '{"Image":', { 'Content-Type': 'application/json' });
    assert.equal(bad.status, 400);
    assert.match((bad.json as { message: string }).message, /^invalid JSON in the request body/);
  });

  it('parses filters in the current and the old format, and refuses unknown names', async () => {
    const q = (filters: unknown) => `/images/json?filters=${encodeURIComponent(JSON.stringify(filters))}`;
    assert.deepEqual((await call('GET', q({ dangling: ['true'], label: ['a=b', 'c'] }))).json, {
      filters: { dangling: ['true'], label: ['a=b', 'c'] },
      all: false,
    });
    // Before API 1.22 (and still from some clients): name -> {value: true}.
    assert.deepEqual((await call('GET', q({ reference: { 'busybox:*': true, 'off': false } }))).json, {
      filters: { reference: ['busybox:*'] },
      all: false,
    });
    const unknown = await call('GET', q({ colour: ['red'] }));
    assert.equal(unknown.status, 400);
    assert.deepEqual(unknown.json, { message: "invalid filter 'colour'" });
    for (const raw of ['{not json', '"a string"', '{"dangling":"true"}']) {
      const r = await call('GET', `/images/json?filters=${encodeURIComponent(raw)}`);
      assert.equal(r.status, 400, raw);
      assert.match((r.json as { message: string }).message, /^invalid filter/, raw);
    }
  });

  it('reads query booleans as docker does', async () => {
    for (const [value, expected] of [['1', true], ['true', true], ['True', true], ['yes', true], ['0', false], ['false', false], ['', false]] as const) {
      assert.equal(((await call('GET', `/images/json?all=${value}`)).json as { all: boolean }).all, expected, `all=${value}`);
    }
    assert.equal(((await call('GET', '/images/json')).json as { all: boolean }).all, false);
  });
});

describe('API versions and filters, as functions', () => {
  it('compares versions numerically', () => {
    assert.ok(compareVersions('1.100', '1.47') > 0);
    assert.ok(compareVersions('1.9', '1.24') < 0);
    assert.equal(compareVersions('1.47', '1.47'), 0);
    assert.ok(compareVersions('2.0', '1.99') > 0);
  });

  it('splits the version off a path only when it is a version', () => {
    assert.deepEqual(splitVersion('/v1.41/containers/json'), { version: '1.41', path: '/containers/json' });
    assert.deepEqual(splitVersion('/containers/json'), { version: API_VERSION, path: '/containers/json' });
    assert.deepEqual(splitVersion('/volumes/v1.41/x'), { version: API_VERSION, path: '/volumes/v1.41/x' });
    assert.throws(() => splitVersion('/v9.0/info'), InvalidArgument);
  });

  it('an absent or empty filters parameter is no filter', () => {
    assert.equal(parseFilters(null).size, 0);
    assert.equal(parseFilters('').size, 0);
    assert.equal(parseFilters('{}').size, 0);
  });
});
