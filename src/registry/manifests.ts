/**
 * Fetching manifests and indexes: by tag or by digest, with every document verified before
 * it is used, and the platform chosen from an index.
 */
import { createHash } from 'node:crypto';
import { InvalidArgument, NotFound } from '../errors/errors.js';
import type { Descriptor, Index, Manifest, Platform } from '../images/oci-types.js';
import { MediaTypes } from '../images/oci-types.js';
import { readLimited, registryError, type RegistryClient } from './registry-client.js';

/** Manifests are small; a registry that sends more without a descriptor is refused. */
const MAX_MANIFEST_SIZE = 4 * 1024 * 1024;

export const MANIFEST_ACCEPT = [MediaTypes.ociIndex, MediaTypes.dockerManifestList, MediaTypes.ociManifest, MediaTypes.dockerManifest].join(', ');

export interface FetchedManifest {
  bytes: Buffer;
  digest: string;
  mediaType: string;
}

export interface PlatformSpec {
  os: string;
  architecture: string;
  variant?: string;
}

export function sha256(data: Buffer): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

/**
 * GET a manifest by tag or digest. A document fetched by digest (or through a descriptor)
 * must hash to it and be no larger than the descriptor says; one fetched by tag must match
 * the Docker-Content-Digest the registry sends, when it sends one.
 */
export async function fetchManifest(
  client: RegistryClient,
  repository: string,
  reference: string,
  scopes: string[],
  expected: { digest?: string; size?: number } = {},
): Promise<FetchedManifest> {
  const res = await client.request('GET', `/v2/${repository}/manifests/${reference}`, { scopes, headers: { Accept: MANIFEST_ACCEPT } });
  if (!res.ok) throw await registryError(res);
  const what = `manifest ${expected.digest ?? reference}`;
  const bytes = await readLimited(res, expected.size ?? MAX_MANIFEST_SIZE, what);
  const digest = sha256(bytes);
  if (expected.digest && digest !== expected.digest) {
    throw new InvalidArgument(`${what}: digest mismatch: the registry sent content that hashes to ${digest}`);
  }
  if (expected.size !== undefined && bytes.length !== expected.size) {
    throw new InvalidArgument(`${what}: the registry sent ${bytes.length} bytes, its descriptor says ${expected.size}`);
  }
  const header = res.headers.get('docker-content-digest');
  if (!expected.digest && header && header.startsWith('sha256:') && header !== digest) {
    throw new InvalidArgument(`${what}: the registry says its digest is ${header}, the content hashes to ${digest}`);
  }
  return { bytes, digest, mediaType: mediaTypeOf(bytes, res.headers.get('content-type'), what) };
}

function mediaTypeOf(bytes: Buffer, contentType: string | null, what: string): string {
  let doc: { mediaType?: unknown; schemaVersion?: unknown; manifests?: unknown; config?: unknown };
  try {
    doc = JSON.parse(bytes.toString('utf8')) as typeof doc;
  } catch (err) {
    throw new InvalidArgument(`${what}: not valid JSON`, { cause: err });
  }
  if (typeof doc !== 'object' || doc === null) throw new InvalidArgument(`${what}: not a JSON object`);
  if (doc.schemaVersion === 1) throw new InvalidArgument(`${what}: Docker Image Format v1 and Docker Image manifest version 2, schema 1 are not supported`);
  const type = typeof doc.mediaType === 'string' ? doc.mediaType : (contentType ?? '').split(';')[0]!.trim();
  if (isIndexType(type) || isManifestType(type)) return type;
  if (Array.isArray(doc.manifests)) return MediaTypes.ociIndex;
  if (doc.config) return MediaTypes.ociManifest;
  throw new InvalidArgument(`${what}: unsupported manifest media type "${type}"`);
}

export function isIndexType(type: string): boolean {
  return type === MediaTypes.ociIndex || type === MediaTypes.dockerManifestList;
}

export function isManifestType(type: string): boolean {
  return type === MediaTypes.ociManifest || type === MediaTypes.dockerManifest;
}

/** 'linux/amd64', 'linux/arm64/v8'; empty is the daemon's own platform. */
export function parsePlatform(value: string | null | undefined): PlatformSpec {
  if (!value) return { os: 'linux', architecture: 'amd64' };
  const parts = value.toLowerCase().split('/');
  if (parts.length > 3 || parts.some((p) => p === '')) throw new InvalidArgument(`invalid platform "${value}": want os[/arch[/variant]]`);
  const [os, architecture = 'amd64', variant] = parts as [string, string | undefined, string | undefined];
  const arch = architecture === 'x86_64' ? 'amd64' : architecture === 'aarch64' ? 'arm64' : architecture;
  return variant ? { os, architecture: arch, variant } : { os, architecture: arch };
}

export function platformString(p: PlatformSpec): string {
  return [p.os, p.architecture, p.variant].filter(Boolean).join('/');
}

export function matchesPlatform(p: Platform | undefined, want: PlatformSpec): boolean {
  if (!p) return false;
  if (p.os !== want.os || p.architecture !== want.architecture) return false;
  return !want.variant || p.variant === want.variant || (want.variant === 'v8' && !p.variant);
}

/** The descriptor for `want` in an index, or docker's "no matching manifest" error. */
export function selectFromIndex(bytes: Buffer, want: PlatformSpec): Descriptor {
  const index = parseDocument<Index>(bytes, 'index');
  if (!Array.isArray(index.manifests)) throw new InvalidArgument('index: it lists no manifests');
  const candidates = index.manifests.filter((d) => matchesPlatform(d.platform, want) && (isManifestType(d.mediaType) || isIndexType(d.mediaType)));
  // Without a variant asked for, prefer the entry that names none (or the lowest).
  candidates.sort((a, b) => (a.platform?.variant ?? '').localeCompare(b.platform?.variant ?? ''));
  const chosen = candidates[0];
  if (!chosen) throw new NotFound(`no matching manifest for ${platformString(want)} in the manifest list entries`);
  return chosen;
}

export function parseManifest(bytes: Buffer, digest: string): Manifest {
  const manifest = parseDocument<Manifest>(bytes, `manifest ${digest}`);
  if (!manifest.config?.digest || !Array.isArray(manifest.layers)) throw new InvalidArgument(`manifest ${digest}: it lacks config or layers`);
  for (const d of [manifest.config, ...manifest.layers]) {
    if (typeof d?.digest !== 'string' || !/^sha256:[a-f0-9]{64}$/.test(d.digest)) {
      throw new InvalidArgument(`manifest ${digest}: unsupported or invalid digest "${String(d?.digest)}"`);
    }
    if (typeof d.size !== 'number' || !Number.isSafeInteger(d.size) || d.size < 0) {
      throw new InvalidArgument(`manifest ${digest}: descriptor ${d.digest} has an invalid size`);
    }
  }
  return manifest;
}

function parseDocument<T>(bytes: Buffer, what: string): T {
  try {
    const doc = JSON.parse(bytes.toString('utf8')) as unknown;
    if (typeof doc !== 'object' || doc === null) throw new Error('not an object');
    return doc as T;
  } catch (err) {
    throw new InvalidArgument(`${what}: not a valid JSON document`, { cause: err });
  }
}
