/**
 * A registry of the test's own on loopback, for what a real registry will not do: bytes that
 * do not match their digest, sizes that lie, connections that drop, errors and token auth.
 * It serves the shared busybox layout; the repository's name picks the misbehaviour.
 */
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
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

/**
 * An image of its own for the 'hold' repository: one gzipped layer with 4 MiB of random
 * bytes in `big.bin` (so half the blob is a file half written), then `tail.txt`.
 */
export function heldImage(): Layout {
  const dir = mkdtempSync(join(tmpdir(), 'fake-registry-'));
  try {
    writeFileSync(join(dir, 'big.bin'), randomBytes(4 * 1024 * 1024));
    writeFileSync(join(dir, 'tail.txt'), 'tail\n');
    const tar = spawnSync('tar', ['-C', dir, '-cf', '-', 'big.bin', 'tail.txt'], { maxBuffer: 64 * 1024 * 1024 });
    if (tar.status !== 0) throw new Error(`tar failed: ${tar.stderr}`);
    const layer = gzipSync(tar.stdout);
    const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: [sha256(tar.stdout)] } }));
    const manifest = Buffer.from(JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(config), size: config.length },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: sha256(layer), size: layer.length }],
    }));
    return { manifest, manifestDigest: sha256(manifest), config, configDigest: sha256(config), layer, layerDigest: sha256(layer) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export function sha256(data: Buffer): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

export class FakeRegistry {
  readonly #server: Server;
  readonly layout = busyboxBlobs();
  /** What the 'hold' repository serves: a new image for each test that calls renewHeld(). */
  held = heldImage();
  /** Every request, as "METHOD path [range]". */
  readonly requests: string[] = [];
  /** How many layer GETs of the 'drop' repository were cut short. */
  drops = 0;
  /** Ends the held layer downloads of the 'hold' repository (they send half, then wait). */
  readonly #held: Array<() => void> = [];

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

  /** Makes the 'hold' repository serve a new image, whose layer no earlier pull has stored. */
  renewHeld(): void {
    this.held = heldImage();
  }

  /** Sends the rest of every held layer download. */
  release(): void {
    for (const send of this.#held.splice(0)) send();
  }

  async stop(): Promise<void> {
    this.release();
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
    const body = repo === 'hold' ? this.held.manifest : this.manifestFor(repo);
    res.writeHead(200, { 'Content-Type': 'application/vnd.oci.image.manifest.v1+json', 'Docker-Content-Digest': sha256(body), 'Content-Length': body.length });
    res.end(body);
  }

  #blob(repo: string, digest: string, req: IncomingMessage, res: ServerResponse): void {
    let body: Buffer;
    if (repo === 'hold') return this.#heldBlob(digest, req, res);
    if (digest === this.layout.configDigest) body = this.layout.config;
    else if (digest === this.layout.layerDigest) body = this.layout.layer;
    else return void res.writeHead(404).end();
    if (repo === 'notgzip' && digest === this.layout.layerDigest) {
      // The right length and a digest that cannot match: bytes that are no layer at all.
      body = Buffer.alloc(body.length, 0x41);
    }
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

  /** The held image's blobs: the layer's first half at once, the rest when the test says so (or at once for a Range request). */
  #heldBlob(digest: string, req: IncomingMessage, res: ServerResponse): void {
    if (digest === this.held.configDigest) return void res.writeHead(200, { 'Content-Length': this.held.config.length }).end(this.held.config);
    if (digest !== this.held.layerDigest) return void res.writeHead(404).end();
    const body = this.held.layer;
    const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    if (range) {
      // A resumed download is not held.
      const start = Number(range[1]);
      res.writeHead(206, { 'Content-Length': body.length - start, 'Content-Range': `bytes ${start}-${body.length - 1}/${body.length}` });
      return void res.end(body.subarray(start));
    }
    const half = body.length >> 1;
    res.writeHead(200, { 'Content-Length': body.length, 'Content-Type': 'application/octet-stream' });
    res.write(body.subarray(0, half));
    this.#held.push(() => res.end(body.subarray(half)));
  }
}
