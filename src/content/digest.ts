import { createHash } from 'node:crypto';
import { InvalidArgument } from '../errors/errors.js';

const SHA256 = /^sha256:[a-f0-9]{64}$/;

/** The sha256 digest of bytes, as `sha256:<hex>`. */
export function sha256Digest(data: Buffer | string): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

export function isSha256Digest(digest: string): boolean {
  return SHA256.test(digest);
}

/** Throws unless `digest` is a sha256 digest; the only algorithm berth stores. */
export function checkDigest(digest: string): string {
  if (!isSha256Digest(digest)) {
    throw new InvalidArgument(`invalid digest "${digest}": expected sha256 followed by 64 lowercase hex characters`);
  }
  return digest;
}

/** The hex part of a digest: `sha256:abc…` → `abc…`. */
export function digestHex(digest: string): string {
  return checkDigest(digest).slice('sha256:'.length);
}
