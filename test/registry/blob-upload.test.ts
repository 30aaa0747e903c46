// Blob upload in chunks: against a registry of the test's own that drops one PATCH after
// keeping half its bytes (the upload resumes from the Range a GET reports), and against a
// real docker-registry on loopback.
import * as assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { uploadBlob } from '../../src/registry/blob-upload.js';
import { RegistryClient } from '../../src/registry/registry-client.js';
import { TestRegistry } from './registries.js';

const MiB = 1024 * 1024;

function sha256(data: Buffer): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

function ranges(data: Buffer): (start: number, end: number) => Readable {
  return (start, end) => Readable.from([data.subarray(start, end)]);
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** One upload at a time; `failPatch` names the PATCH (1-based) that keeps half its bytes and drops the connection. */
class UploadServer {
  readonly requests: string[] = [];
  stored = Buffer.alloc(0);
  committed: string | undefined;
  failPatch = 0;
  /** Every PATCH answers 500. */
  failAll = false;
  #patches = 0;
  #state = 0;
  readonly #server: Server;

  constructor() {
    this.#server = createServer((req, res) => {
      void (async () => {
        const url = new URL(req.url ?? '/', 'http://x');
        const body = await readBody(req);
        const range = req.headers['content-range'];
        this.requests.push(`${req.method} ${range ?? ''}`.trim());
        const location = () => `/v2/r/blobs/uploads/u1?_state=${++this.#state}`;
        const has = () => (this.stored.length > 0 ? `0-${this.stored.length - 1}` : '0-0');
        if (req.method === 'POST') {
          res.writeHead(202, { location: location(), range: '0-0', 'content-length': '0' }).end();
        } else if (req.method === 'PATCH') {
          const start = Number(String(range).split('-')[0]);
          if (start !== this.stored.length) {
            res.writeHead(416, { 'content-type': 'application/json' }).end(JSON.stringify({ errors: [{ code: 'BLOB_UPLOAD_INVALID', message: 'range' }] }));
            return;
          }
          if (this.failAll) {
            res.writeHead(500, { 'content-type': 'application/json' }).end(JSON.stringify({ errors: [{ code: 'UNKNOWN', message: 'broken' }] }));
            return;
          }
          if (++this.#patches === this.failPatch) {
            this.stored = Buffer.concat([this.stored, body.subarray(0, body.length / 2)]);
            req.socket.destroy();
            return;
          }
          this.stored = Buffer.concat([this.stored, body]);
          res.writeHead(202, { location: location(), range: has(), 'content-length': '0' }).end();
        } else if (req.method === 'GET') {
          res.writeHead(204, { location: location(), range: has() }).end();
        } else if (req.method === 'PUT') {
          this.stored = Buffer.concat([this.stored, body]);
          const digest = url.searchParams.get('digest') ?? '';
          if (digest !== sha256(this.stored)) {
            res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ errors: [{ code: 'DIGEST_INVALID', message: 'digest' }] }));
            return;
          }
          this.committed = digest;
          res.writeHead(201, { location: `/v2/r/blobs/${digest}`, 'content-length': '0' }).end();
        } else {
          res.writeHead(405).end();
        }
      })();
    });
  }

  async start(): Promise<string> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve));
    return `127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise((resolve) => this.#server.close(resolve));
  }
}

let registry: TestRegistry;

before(async () => {
  registry = await TestRegistry.start();
});

after(async () => {
  await registry?.stop();
});

describe('blob upload', () => {
  it('sends a large blob in chunks and resumes a failed chunk from the Range the registry reports', async () => {
    const server = new UploadServer();
    const host = await server.start();
    try {
      server.failPatch = 2;
      const data = randomBytes(2.5 * MiB);
      await uploadBlob(new RegistryClient(host), 'r', sha256(data), data.length, ranges(data), { chunkSize: MiB });
      assert.equal(server.committed, sha256(data));
      assert.deepEqual(server.stored, data);
      assert.deepEqual(server.requests, [
        'POST',
        `PATCH 0-${MiB - 1}`,
        `PATCH ${MiB}-${2 * MiB - 1}`,
        'GET',
        `PATCH ${1.5 * MiB}-${2.5 * MiB - 1}`,
        'PUT',
      ]);
    } finally {
      await server.stop();
    }
  });

  it('sends a blob up to one chunk in one PUT', async () => {
    const server = new UploadServer();
    const host = await server.start();
    try {
      const data = randomBytes(1000);
      await uploadBlob(new RegistryClient(host), 'r', sha256(data), data.length, ranges(data), { chunkSize: MiB });
      assert.deepEqual(server.requests, ['POST', 'PUT']);
      assert.deepEqual(server.stored, data);
    } finally {
      await server.stop();
    }
  });

  it('gives up when a chunk keeps failing', async () => {
    const server = new UploadServer();
    const host = await server.start();
    try {
      server.failAll = true;
      const data = randomBytes(2 * MiB + 10);
      await assert.rejects(uploadBlob(new RegistryClient(host), 'r', sha256(data), data.length, ranges(data), { chunkSize: MiB }), /the chunk at 0 failed 4 times/);
      assert.equal(server.requests.filter((r) => r.startsWith('PATCH')).length, 4);
    } finally {
      await server.stop();
    }
  });

  it('uploads in chunks to a real docker-registry', async () => {
    const data = randomBytes(3 * MiB + 123);
    const digest = sha256(data);
    await uploadBlob(new RegistryClient(registry.host), 'chunked/blob', digest, data.length, ranges(data), { chunkSize: MiB });
    const res = await fetch(`http://${registry.host}/v2/chunked/blob/blobs/${digest}`);
    assert.equal(res.status, 200);
    assert.deepEqual(Buffer.from(await res.arrayBuffer()), data);
  });
});
