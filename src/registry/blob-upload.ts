/**
 * Blob upload (OCI Distribution "pushing blobs"): POST opens an upload; a blob up to one
 * chunk goes in one PUT with its digest; a larger one goes in PATCHes of `chunkSize` bytes,
 * each with its Content-Range, then a PUT with the digest and no body. A chunk that fails
 * (a dropped connection, a 5xx, a 416) is sent again from where the registry says it has
 * the bytes up to: a GET on the upload URL answers that in its Range header.
 */
import type { Readable } from 'node:stream';
import { Unavailable } from '../errors/errors.js';
import { pushScope, registryError, type RegistryClient } from './registry-client.js';

/** Docker pushes in one request; berth in chunks of this size above it, so a failure costs one chunk. */
export const UPLOAD_CHUNK_SIZE = 5 * 1024 * 1024;
/** Attempts of one chunk before the push fails. */
const CHUNK_ATTEMPTS = 4;

export interface UploadOptions {
  chunkSize?: number;
}

/** Makes a stream of the blob's bytes from `start` up to `end` (exclusive). */
export type BlobRange = (start: number, end: number) => Readable;

/** Uploads the blob `digest` of `size` bytes to `repository`. */
export async function uploadBlob(
  client: RegistryClient,
  repository: string,
  digest: string,
  size: number,
  body: BlobRange,
  opts: UploadOptions = {},
): Promise<void> {
  const chunkSize = opts.chunkSize ?? UPLOAD_CHUNK_SIZE;
  const scopes = [pushScope(repository)];
  const start = await client.request('POST', `/v2/${repository}/blobs/uploads/`, { scopes });
  await start.body?.cancel().catch(() => undefined);
  if (start.status !== 202) throw await registryError(start);
  let location = uploadLocation(client, start);
  if (size > chunkSize) location = await uploadChunks(client, scopes, digest, size, location, body, chunkSize);
  const url = new URL(location);
  url.searchParams.set('digest', digest);
  const chunked = size > chunkSize;
  const res = await client.request('PUT', url.toString(), {
    scopes,
    headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': chunked ? '0' : String(size) },
    ...(chunked ? {} : { body: () => body(0, size) }),
  });
  if (res.status !== 201 && res.status !== 204) throw await registryError(res, `uploading blob ${digest}`);
  await res.body?.cancel().catch(() => undefined);
}

/** Sends the whole blob in PATCHes; answers the upload's location for the closing PUT. */
async function uploadChunks(
  client: RegistryClient,
  scopes: string[],
  digest: string,
  size: number,
  location: string,
  body: BlobRange,
  chunkSize: number,
): Promise<string> {
  let offset = 0;
  let failures = 0;
  while (offset < size) {
    const end = Math.min(offset + chunkSize, size);
    let res: Response | undefined;
    let failure: unknown;
    try {
      res = await client.request('PATCH', location, {
        scopes,
        headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': String(end - offset), 'Content-Range': `${offset}-${end - 1}` },
        body: () => body(offset, end),
      });
    } catch (err) {
      // A dropped connection (the client's Unavailable): the registry may have kept some bytes.
      if (!(err instanceof Unavailable)) throw err;
      failure = err;
    }
    if (res) {
      if (res.status === 202) {
        await res.body?.cancel().catch(() => undefined);
        location = uploadLocation(client, res);
        offset = rangeEnd(res.headers.get('range')) ?? end;
        failures = 0;
        continue;
      }
      failure = await registryError(res, `uploading blob ${digest}`);
      // Other 4xx answers (denied, unknown upload) will not change when asked again.
      if (res.status < 500 && res.status !== 416) throw failure;
    }
    if (++failures >= CHUNK_ATTEMPTS) {
      throw new Unavailable(`uploading blob ${digest}: the chunk at ${offset} failed ${failures} times`, { cause: failure });
    }
    ({ location, offset } = await uploadStatus(client, scopes, location, digest));
  }
  return location;
}

/** GET on the upload URL: where the upload goes on, and how many bytes the registry has. */
async function uploadStatus(client: RegistryClient, scopes: string[], location: string, digest: string): Promise<{ location: string; offset: number }> {
  const res = await client.request('GET', location, { scopes });
  await res.body?.cancel().catch(() => undefined);
  if (res.status !== 204 && res.status !== 200) throw await registryError(res, `uploading blob ${digest}: asking the upload's status`);
  return { location: res.headers.get('location') ? uploadLocation(client, res) : location, offset: rangeEnd(res.headers.get('range')) ?? 0 };
}

function uploadLocation(client: RegistryClient, res: Response): string {
  const location = res.headers.get('location');
  if (!location) throw new Unavailable(`registry ${client.domain}: an upload answer without a Location`);
  return new URL(location, client.base).toString();
}

/**
 * The offset after the bytes a `Range: 0-<last>` header says the registry has. Distribution
 * answers "0-0" for an empty upload as for a one-byte one; taken as empty.
 */
function rangeEnd(range: string | null): number | undefined {
  const m = /^(?:bytes=)?0-(\d+)$/.exec(range?.trim() ?? '');
  if (!m) return undefined;
  const last = Number(m[1]);
  return last === 0 ? 0 : last + 1;
}
