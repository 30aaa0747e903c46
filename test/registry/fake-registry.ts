/**
 * A registry of the test's own on loopback, for what a real registry will not do: bytes that
 * do not match their digest, sizes that lie, connections that drop, errors and token auth.
 * It serves the shared busybox layout; the repository's name picks the misbehaviour.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { busyboxLayout } from '../helpers/berthd.js';

export const USER = 'alice';
export const PASSWORD = 's3cret';
const TOKEN = 'token-for-alice';

interface Layout {
  manifest: Buffer;
  manifestDigest: string;
  config: Buffer;
  configDigest: string;
  layer: Buffer;
  layerDigest: string;
}

function blob(digest: string): Buffer {
  return readFileSync(join(busyboxLayout, 'blobs', 'sha256', digest.slice('sha256:'.length)));
}

export function busyboxBlobs(): Layout {
  const index = JSON.parse(readFileSync(join(busyboxLayout, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string }> };
  const manifestDigest = index.manifests[0]!.digest;
  const manifest = blob(manifestDigest);
  const parsed = JSON.parse(manifest.toString()) as { config: { digest: string }; layers: Array<{ digest: string }> };
  return {
    manifest,
    manifestDigest,
    config: blob(parsed.config.digest),
    configDigest: parsed.config.digest,
    layer: blob(parsed.layers[0]!.digest),
    layerDigest: parsed.layers[0]!.digest,
  };
}

export function sha256(data: Buffer): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

export class FakeRegistry {
  readonly #server: Server;
  readonly layout = busyboxBlobs();
  /** Every request, as "METHOD path [range]". */
  readonly requests: string[] = [];
  /** How many layer GETs of the 'drop' repository were cut short. */
  drops = 0;

  private constructor(server: Server) {
    this.#server = server;
  }

  static async start(): Promise<FakeRegistry> {
    const server = createServer();
    const registry = new FakeRegistry(server);
    server.on('request', (req, res) => registry.#handle(req, res));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return registry;
  }

  get host(): string {
    return `127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise((resolve) => this.#server.close(resolve));
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://x');
    this.requests.push(`${req.method} ${url.pathname}${req.headers.range ? ` ${req.headers.range}` : ''}`);
    if (url.pathname === '/token') return this.#token(req, res);
    if (url.pathname === '/v2/' || url.pathname === '/v2') {
      // Login checks here: only a token from the realm passes.
      if (req.headers.authorization === `Bearer ${TOKEN}`) return void res.writeHead(200).end('{}');
      res.writeHead(401, { 'WWW-Authenticate': `Bearer realm="http://${this.host}/token",service="fake-registry"` });
      return void res.end();
    }
    const m = /^\/v2\/(.+)\/(manifests|blobs)\/([^/]+)$/.exec(url.pathname);
    if (!m) return void res.writeHead(404).end();
    const [, repo, kind, ref] = m as unknown as [string, string, string, string];
    if (repo.startsWith('private') && req.headers.authorization !== `Bearer ${TOKEN}`) {
      res.writeHead(401, {
        'WWW-Authenticate': `Bearer realm="http://${this.host}/token",service="fake-registry",scope="repository:${repo}:pull"`,
        'Content-Type': 'application/json',
      });
      return void res.end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'authentication required' }] }));
    }
    if (repo === 'err500') return void res.writeHead(500).end('boom');
    if (repo === 'denied') {
      res.writeHead(401, { 'Content-Type': 'application/json' });
      return void res.end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'authentication required' }] }));
    }
    if (kind === 'manifests') return this.#manifest(repo, ref, res);
    return this.#blob(repo, ref, req, res);
  }

  #token(req: IncomingMessage, res: ServerResponse): void {
    const expected = `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}`;
    if (req.headers.authorization !== expected) {
      res.writeHead(401, { 'Content-Type': 'application/json' });
      return void res.end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'incorrect username or password' }] }));
    }
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ token: TOKEN }));
  }

  /** The manifest each repository serves. */
  manifestFor(repo: string): Buffer {
    const doc = JSON.parse(this.layout.manifest.toString()) as { layers: Array<{ size: number }> };
    // 'liesize': the layer's descriptor says fewer bytes than the blob has.
    if (repo === 'liesize') doc.layers[0]!.size -= 100;
    return repo === 'liesize' ? Buffer.from(JSON.stringify(doc)) : this.layout.manifest;
  }

  #manifest(repo: string, ref: string, res: ServerResponse): void {
    if (repo === 'bigmanifest' && !ref.startsWith('sha256:')) {
      // An index whose descriptor says the manifest is smaller than it is.
      const index = {
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.index.v1+json',
        manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: this.layout.manifestDigest, size: this.layout.manifest.length - 10, platform: { os: 'linux', architecture: 'amd64' } }],
      };
      res.writeHead(200, { 'Content-Type': index.mediaType });
      return void res.end(JSON.stringify(index));
    }
    if (ref === 'missing') {
      res.writeHead(404, { 'Content-Type': 'application/json' });
      return void res.end(JSON.stringify({ errors: [{ code: 'MANIFEST_UNKNOWN', message: 'manifest unknown' }] }));
    }
    const body = this.manifestFor(repo);
    res.writeHead(200, { 'Content-Type': 'application/vnd.oci.image.manifest.v1+json', 'Docker-Content-Digest': sha256(body), 'Content-Length': body.length });
    res.end(body);
  }

  #blob(repo: string, digest: string, req: IncomingMessage, res: ServerResponse): void {
    let body: Buffer;
    if (digest === this.layout.configDigest) body = this.layout.config;
    else if (digest === this.layout.layerDigest) body = this.layout.layer;
    else return void res.writeHead(404).end();
    if (repo === 'baddigest' && digest === this.layout.layerDigest) {
      // Same length, one byte changed in the middle.
      body = Buffer.from(body);
      body[body.length >> 1] ^= 0xff;
    }
    const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    if (range) {
      const start = Number(range[1]);
      res.writeHead(206, { 'Content-Length': body.length - start, 'Content-Range': `bytes ${start}-${body.length - 1}/${body.length}` });
      return void res.end(body.subarray(start));
    }
    res.writeHead(200, { 'Content-Length': body.length, 'Content-Type': 'application/octet-stream' });
    if (repo === 'drop' && digest === this.layout.layerDigest && this.drops === 0) {
      // Half the bytes, then the connection goes away.
      this.drops++;
      res.write(body.subarray(0, body.length >> 1), () => setTimeout(() => res.socket?.destroy(), 50));
      return;
    }
    res.end(body);
  }
}
