/**
 * Docker image references: `[domain/]path[:tag][@digest]`, parsed and normalised the way
 * the docker CLI and daemon do it, so `busybox` means `docker.io/library/busybox` and
 * `localhost:5000/app:1.2` keeps its registry.
 *
 * Grammar (Docker's distribution reference grammar):
 *
 *   reference        := name [ ":" tag ] [ "@" digest ]
 *   name             := [ domain "/" ] path
 *   domain           := host [ ":" port ]
 *   host             := domain-name | "[" ipv6 "]"
 *   domain-name      := domain-component ( "." domain-component )*
 *   domain-component := [a-zA-Z0-9] | [a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]
 *   port             := [0-9]+
 *   path             := path-component ( "/" path-component )*
 *   path-component   := [a-z0-9]+ ( separator [a-z0-9]+ )*
 *   separator        := [._] | "__" | "-"+
 *   tag              := [\w][\w.-]{0,127}
 *   digest           := algorithm ":" [0-9a-fA-F]{32,}
 *   algorithm        := [A-Za-z][A-Za-z0-9]* ( [-_+.] [A-Za-z][A-Za-z0-9]* )*
 *
 * Normalisation: the first path element is a domain only when it contains "." or ":" or
 * is "localhost"; otherwise the domain is docker.io. "index.docker.io" (the legacy Hub
 * name) becomes docker.io, and a one-element Hub path gets the "library/" namespace.
 */
import { InvalidArgument } from '../errors/errors.js';

export interface Reference {
  /** Registry host, with port when given: 'docker.io', 'localhost:5000', '[::1]:5000'. */
  domain: string;
  /** Repository path inside the registry: 'library/busybox', 'a/b'. */
  path: string;
  /** 'latest'; absent when the reference names no tag. */
  tag?: string;
  /** 'sha256:<64 hex>'; absent when the reference names no digest. */
  digest?: string;
}

const DEFAULT_DOMAIN = 'docker.io';
const LEGACY_DEFAULT_DOMAIN = 'index.docker.io';
const OFFICIAL_REPO_PREFIX = 'library/';
const DEFAULT_TAG = 'latest';

/** Docker's limit on the repository path (the domain does not count). */
const PATH_MAX_LENGTH = 255;

// Each piece is written so that a failed match backtracks at most linearly: separators
// and component characters never overlap, so hostile long input cannot stall the parser.
const PATH_COMPONENT = '[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*';
const PATH_PATTERN = `${PATH_COMPONENT}(?:/${PATH_COMPONENT})*`;
const DOMAIN_COMPONENT = '[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?';
const DOMAIN_NAME = `${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*`;
// Compressed or full IPv6 in brackets; zone ids and IPv4-mapped forms are left out.
const IPV6_ADDRESS = '\\[[a-fA-F0-9:]+\\]';
const DOMAIN_PATTERN = `(?:${DOMAIN_NAME}|${IPV6_ADDRESS})(?::[0-9]+)?`;
const TAG_PATTERN = '\\w[\\w.-]{0,127}';
const DIGEST_PATTERN = '[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}';

const anchored = (pattern: string): RegExp => new RegExp(`^(?:${pattern})$`);

const PATH_RE = anchored(PATH_PATTERN);
const DOMAIN_RE = anchored(DOMAIN_PATTERN);
const TAG_RE = anchored(TAG_PATTERN);
const DIGEST_SYNTAX_RE = anchored(DIGEST_PATTERN);
const IDENTIFIER_RE = /^[a-f0-9]{64}$/;
const FULL_ID_RE = /^(?:sha256:)?[a-f0-9]{64}$/;
const ID_PREFIX_RE = /^[a-f0-9]{1,64}$/;

/**
 * The digest algorithms a reference may name, with the length of their lowercase hex
 * encoding. Others pass the grammar but are refused as unsupported, as docker does.
 */
const DIGEST_HEX_LENGTHS: ReadonlyMap<string, number> = new Map([
  ['sha256', 64],
  ['sha384', 96],
  ['sha512', 128],
]);

const INVALID_FORMAT = 'invalid reference format';

/**
 * Parses and normalises a reference as docker does: 'busybox' becomes
 * {domain: 'docker.io', path: 'library/busybox'}. Adds no tag.
 * @throws InvalidArgument with docker's message when the input is not a valid reference.
 */
export function parseReference(input: string): Reference {
  // A bare 64-hex string is an image id, never a repository name; refusing it here
  // keeps `docker run <id>` from silently pulling a repository of that name.
  if (IDENTIFIER_RE.test(input)) {
    throw new InvalidArgument(
      `invalid repository name (${input}), cannot specify 64-byte hexadecimal strings`,
    );
  }

  // Neither a name nor a tag may contain '@', so the first one starts the digest.
  const at = input.indexOf('@');
  const beforeDigest = at === -1 ? input : input.slice(0, at);
  const digest = at === -1 ? undefined : input.slice(at + 1);

  // A ':' after the last '/' starts the tag; one before it belongs to a domain's port.
  const colon = beforeDigest.lastIndexOf(':');
  const hasTag = colon > beforeDigest.lastIndexOf('/');
  const name = hasTag ? beforeDigest.slice(0, colon) : beforeDigest;
  const tag = hasTag ? beforeDigest.slice(colon + 1) : undefined;

  const { domain, path } = splitDomain(name);

  if (path.toLowerCase() !== path) {
    throw new InvalidArgument(`${INVALID_FORMAT}: repository name (${path}) must be lowercase`);
  }
  if (
    !DOMAIN_RE.test(domain) ||
    !PATH_RE.test(path) ||
    (tag !== undefined && !TAG_RE.test(tag)) ||
    (digest !== undefined && !DIGEST_SYNTAX_RE.test(digest))
  ) {
    throw new InvalidArgument(INVALID_FORMAT);
  }
  if (path.length > PATH_MAX_LENGTH) {
    throw new InvalidArgument(`repository name must not be more than ${PATH_MAX_LENGTH} characters`);
  }
  if (digest !== undefined) validateDigest(digest);

  const ref: Reference = { domain, path };
  if (tag !== undefined) ref.tag = tag;
  if (digest !== undefined) ref.digest = digest;
  return ref;
}

/** parseReference, then the tag 'latest' when the input names neither tag nor digest. */
export function parseTaggedReference(input: string): Reference {
  const ref = parseReference(input);
  if (ref.tag === undefined && ref.digest === undefined) ref.tag = DEFAULT_TAG;
  return ref;
}

/**
 * The same repository with `tag`; a digest the reference carries is kept, as docker keeps
 * it for `name:tag@digest`.
 * @throws InvalidArgument when `tag` does not match [\w][\w.-]{0,127}.
 */
export function withTag(ref: Reference, tag: string): Reference {
  if (!isValidTag(tag)) throw new InvalidArgument('invalid tag format');
  const tagged: Reference = { domain: ref.domain, path: ref.path, tag };
  if (ref.digest !== undefined) tagged.digest = ref.digest;
  return tagged;
}

/** 'docker.io/library/busybox': domain and path, without tag or digest. */
export function fullName(ref: Reference): string {
  return `${ref.domain}/${ref.path}`;
}

/**
 * The name as docker shows it: Hub's domain dropped, and 'library/' dropped for official
 * images ('busybox', 'user/app', 'localhost:5000/app').
 */
export function familiarName(ref: Reference): string {
  if (ref.domain !== DEFAULT_DOMAIN) return fullName(ref);
  if (ref.path.startsWith(OFFICIAL_REPO_PREFIX)) {
    const rest = ref.path.slice(OFFICIAL_REPO_PREFIX.length);
    // 'library/a/b' is not an official image, so it keeps its namespace.
    if (!rest.includes('/')) return rest;
  }
  return ref.path;
}

/** 'busybox:latest', 'busybox@sha256:…', 'busybox:1@sha256:…'. */
export function familiarString(ref: Reference): string {
  return familiarName(ref) + suffix(ref);
}

/** 'docker.io/library/busybox:latest': the fully qualified reference. */
export function referenceString(ref: Reference): string {
  return fullName(ref) + suffix(ref);
}

/** Whether `tag` is a valid tag: [\w][\w.-]{0,127}. */
export function isValidTag(tag: string): boolean {
  return TAG_RE.test(tag);
}

/** Whether `s` is a sha256 digest: 'sha256:' and 64 lowercase hex characters. */
export function isDigest(s: string): boolean {
  return s.startsWith('sha256:') && IDENTIFIER_RE.test(s.slice('sha256:'.length));
}

/** A 64-hex image or container id, with or without 'sha256:'. */
export function isFullId(s: string): boolean {
  return FULL_ID_RE.test(s);
}

/** A candidate short id (1 to 64 lowercase hex characters); docker accepts prefixes for lookups. */
export function looksLikeIdPrefix(s: string): boolean {
  return ID_PREFIX_RE.test(s);
}

/** Splits a name (no tag, no digest) into its domain and path, normalising Hub names. */
function splitDomain(name: string): { domain: string; path: string } {
  const slash = name.indexOf('/');
  if (slash === -1) {
    // One element ('ubuntu', even 'localhost' or 'example.com') is an official Hub image.
    return { domain: DEFAULT_DOMAIN, path: OFFICIAL_REPO_PREFIX + name };
  }
  const first = name.slice(0, slash);
  const rest = name.slice(slash + 1);
  let domain: string;
  let path: string;
  if (first === LEGACY_DEFAULT_DOMAIN) {
    domain = DEFAULT_DOMAIN;
    path = rest;
  } else if (first === 'localhost' || first.includes('.') || first.includes(':')) {
    domain = first;
    path = rest;
  } else {
    domain = DEFAULT_DOMAIN;
    path = name;
  }
  if (domain === DEFAULT_DOMAIN && !path.includes('/')) path = OFFICIAL_REPO_PREFIX + path;
  return { domain, path };
}

/**
 * Checks a digest that already passed the grammar against the algorithms docker supports,
 * with docker's messages.
 */
function validateDigest(digest: string): void {
  const colon = digest.indexOf(':');
  const algorithm = digest.slice(0, colon);
  const encoded = digest.slice(colon + 1);
  const length = DIGEST_HEX_LENGTHS.get(algorithm);
  if (length === undefined) {
    // The grammar allows uppercase algorithms; docker calls those malformed rather than unsupported.
    if (!/^[a-z0-9]+(?:[.+_-][a-z0-9]+)*$/.test(algorithm)) {
      throw new InvalidArgument('invalid checksum digest format');
    }
    throw new InvalidArgument('unsupported digest algorithm');
  }
  if (encoded.length !== length || !/^[a-f0-9]+$/.test(encoded)) {
    throw new InvalidArgument('invalid checksum digest format');
  }
}

function suffix(ref: Reference): string {
  let s = '';
  if (ref.tag !== undefined) s += `:${ref.tag}`;
  if (ref.digest !== undefined) s += `@${ref.digest}`;
  return s;
}
