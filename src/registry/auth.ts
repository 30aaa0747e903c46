/**
 * Registry credentials and the challenges registries answer with.
 *
 * Clients send credentials in `X-Registry-Auth`: base64url of a JSON AuthConfig, either
 * username and password (or `auth`, base64 of "user:pass") or an identity token (an OAuth
 * refresh token). A registry that wants credentials answers 401 with `WWW-Authenticate`:
 * `Basic realm="..."`, or `Bearer realm="...",service="...",scope="..."`, in which case a
 * token is fetched from the realm for the scopes the request needs.
 */
import { InvalidArgument } from '../errors/errors.js';

export interface AuthConfig {
  username?: string;
  password?: string;
  /** base64 of "username:password", as docker's config.json keeps it. */
  auth?: string;
  serveraddress?: string;
  identitytoken?: string;
  registrytoken?: string;
  email?: string;
}

export interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

/** Decodes an X-Registry-Auth header; an absent or empty one is anonymous access. */
export function decodeAuthHeader(header: string | string[] | undefined): AuthConfig {
  const value = Array.isArray(header) ? header[0] : header;
  if (!value || value.trim() === '' || value.trim() === 'e30=' || value.trim() === 'e30') return {};
  let parsed: unknown;
  try {
    // Node's base64 decoder takes both alphabets (docker sends URL-safe, older clients standard).
    parsed = JSON.parse(Buffer.from(value.trim(), 'base64').toString('utf8'));
  } catch (err) {
    throw new InvalidArgument('invalid X-Registry-Auth header: not base64-encoded JSON', { cause: err });
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new InvalidArgument('invalid X-Registry-Auth header: not a JSON object');
  }
  return normalizeAuth(parsed as AuthConfig);
}

/** Encodes credentials for X-Registry-Auth (base64url JSON, as the docker CLI sends it). */
export function encodeAuthHeader(auth: AuthConfig): string {
  return Buffer.from(JSON.stringify(auth)).toString('base64url');
}

/** Splits `auth` ("user:pass" in base64) into username and password when they are not given. */
export function normalizeAuth(auth: AuthConfig): AuthConfig {
  const out: AuthConfig = { ...auth };
  if (out.auth && !out.username && !out.password) {
    const plain = Buffer.from(out.auth, 'base64').toString('utf8');
    const colon = plain.indexOf(':');
    if (colon > 0) {
      out.username = plain.slice(0, colon);
      out.password = plain.slice(colon + 1);
    }
  }
  return out;
}

export function hasCredentials(auth: AuthConfig): boolean {
  return Boolean((auth.username && auth.password) || auth.identitytoken || auth.registrytoken);
}

export function basicHeader(auth: AuthConfig): string {
  return `Basic ${Buffer.from(`${auth.username ?? ''}:${auth.password ?? ''}`).toString('base64')}`;
}

/**
 * Parses a WWW-Authenticate header into its challenges. Parameters are `key=value` or
 * `key="quoted, with commas"`; a scope may hold commas inside its quotes.
 */
export function parseChallenges(header: string | null): Challenge[] {
  if (!header) return [];
  const challenges: Challenge[] = [];
  const re = /\s*([A-Za-z][A-Za-z0-9_-]*)(?:\s+|$)/y;
  const paramRe = /\s*,?\s*([A-Za-z][A-Za-z0-9_-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))/y;
  let pos = 0;
  while (pos < header.length) {
    re.lastIndex = pos;
    const m = re.exec(header);
    if (!m) break;
    pos = re.lastIndex;
    const challenge: Challenge = { scheme: m[1]!.toLowerCase(), params: {} };
    for (;;) {
      paramRe.lastIndex = pos;
      const p = paramRe.exec(header);
      if (!p) break;
      // A bare word followed by a space is the next challenge's scheme, not a parameter.
      challenge.params[p[1]!.toLowerCase()] = p[2] !== undefined ? p[2].replace(/\\(.)/g, '$1') : p[3]!;
      pos = paramRe.lastIndex;
    }
    challenges.push(challenge);
    const comma = /\s*,\s*/y;
    comma.lastIndex = pos;
    if (comma.exec(header)) pos = comma.lastIndex;
  }
  return challenges;
}
