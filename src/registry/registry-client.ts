/**
 * A client of one registry (OCI Distribution / Docker Registry HTTP API v2), for one set of
 * credentials. It finds the registry's address (docker.io is the Hub's registry host), uses
 * HTTPS except for loopback registries and those the daemon was told are insecure, answers
 * Basic and Bearer challenges (tokens cached per scope) and turns the registry's error
 * bodies into errors with the spec's codes, as docker words them.
 */
import { Readable } from 'node:stream';
import { BerthError, Forbidden, InvalidArgument, Unavailable } from '../errors/errors.js';
import { basicHeader, hasCredentials, parseChallenges, type AuthConfig, type Challenge } from './auth.js';
import { RegistryConfig } from './registry-config.js';

const HUB_DOMAIN = 'docker.io';
const HUB_REGISTRY_HOST = 'registry-1.docker.io';

export interface RegistryClientOptions {
  /** Registries (host or host:port) reached over plain HTTP, as `--insecure-registry`. */
  insecureRegistries?: readonly string[];
  /** The daemon's registry settings (insecure registries and CIDRs, mirrors); made from insecureRegistries when absent. */
  config?: RegistryConfig;
  /** Another address that serves the registry's repositories (a mirror), as 'http://127.0.0.1:5001/'. */
  endpoint?: string;
}

/** One error from a registry's `{"errors":[{code,message,detail}]}` body. */
export interface RegistryErrorItem {
  code: string;
  message: string;
}

/** An answer of a registry that says no; `errors` holds the spec's codes when it sent them. */
export class RegistryError extends BerthError {
  readonly status: number;
  readonly errors: RegistryErrorItem[];
  constructor(code: BerthError['code'], message: string, status: number, errors: RegistryErrorItem[], options?: { cause?: unknown }) {
    super(code, message, options);
    this.status = status;
    this.errors = errors;
  }

  hasCode(code: string): boolean {
    return this.errors.some((e) => e.code === code);
  }
}

/** The host a reference's domain is served from: docker.io is the Hub's registry host. */
export function registryHost(domain: string): string {
  return domain === HUB_DOMAIN ? HUB_REGISTRY_HOST : domain;
}

/** Whether `domain` (host[:port]) is loopback: localhost, 127.0.0.0/8, ::1. */
export function isLoopback(domain: string): boolean {
  const host = hostOf(domain);
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

function hostOf(domain: string): string {
  if (domain.startsWith('[')) return domain.slice(1, domain.indexOf(']'));
  const colon = domain.lastIndexOf(':');
  return colon >= 0 ? domain.slice(0, colon) : domain;
}

/** 'http://127.0.0.1:5000' or 'https://registry.example.com'. */
export function registryBaseUrl(domain: string, opts: RegistryClientOptions = {}): string {
  if (opts.endpoint) return opts.endpoint.replace(/\/+$/, '');
  const host = registryHost(domain);
  const config = opts.config ?? new RegistryConfig({ insecureRegistries: opts.insecureRegistries ?? [] });
  const insecure = isLoopback(domain) || config.isInsecure(domain);
  return `${insecure ? 'http' : 'https'}://${host}`;
}

export interface RequestOptions {
  /** Token scopes the request needs ('repository:library/busybox:pull'). */
  scopes?: string[];
  headers?: Record<string, string>;
  /** A body; a function when it is a stream, so it can be made again after a challenge. */
  body?: Buffer | (() => Readable);
  signal?: AbortSignal;
  /** 'manual' to see a 3xx (blob upload locations), 'follow' by default. */
  redirect?: 'follow' | 'manual';
}

export class RegistryClient {
  readonly domain: string;
  readonly base: string;
  readonly #auth: AuthConfig;
  /** The registry's challenge, learnt from the first 401. */
  #challenge: Challenge | undefined;
  /** Authorization header values by scope key. */
  readonly #tokens = new Map<string, string>();

  constructor(domain: string, auth: AuthConfig = {}, opts: RegistryClientOptions = {}) {
    this.domain = domain;
    this.base = registryBaseUrl(domain, opts);
    this.#auth = auth;
  }

  /** A URL on the registry; `path` is absolute ('/v2/...') or a full URL (upload locations). */
  url(path: string): string {
    return /^https?:\/\//.test(path) ? path : new URL(path, this.base).toString();
  }

  /**
   * Sends a request; answers a 401 challenge once (token or Basic) and sends again.
   * Resolves with any status: callers decide what a 404 means.
   */
  async request(method: string, path: string, opts: RequestOptions = {}): Promise<Response> {
    const scopes = opts.scopes ?? [];
    let authorization = await this.#authorization(scopes);
    let res = await this.#send(method, path, opts, authorization);
    if (res.status !== 401) return res;
    const challenge = pickChallenge(parseChallenges(res.headers.get('www-authenticate')));
    if (!challenge) return res;
    await res.body?.cancel().catch(() => undefined);
    this.#challenge = challenge;
    this.#tokens.delete(scopeKey(scopes));
    authorization = await this.#authorization(scopes);
    if (!authorization) return this.#send(method, path, opts, undefined);
    res = await this.#send(method, path, opts, authorization);
    return res;
  }

  /** `GET /v2/` with credentials: what `docker login` checks. */
  async login(): Promise<void> {
    const res = await this.request('GET', '/v2/');
    await res.body?.cancel().catch(() => undefined);
    if (res.ok) return;
    if (res.status === 401) {
      throw new Forbidden(`login attempt to ${this.url('/v2/')} failed with status: 401 Unauthorized`);
    }
    throw new Unavailable(`login attempt to ${this.url('/v2/')} failed with status: ${statusLine(res)}`);
  }

  async #send(method: string, path: string, opts: RequestOptions, authorization: string | undefined): Promise<Response> {
    const headers: Record<string, string> = { 'User-Agent': 'berth/0.1', ...opts.headers };
    if (authorization) headers['Authorization'] = authorization;
    let body: BodyInit | undefined;
    if (Buffer.isBuffer(opts.body)) body = new Uint8Array(opts.body) as Uint8Array<ArrayBuffer>;
    else if (opts.body) body = Readable.toWeb(opts.body()) as ReadableStream<Uint8Array>;
    const init: RequestInit & { duplex?: 'half' } = { method, headers, redirect: opts.redirect ?? 'follow' };
    if (body !== undefined) {
      init.body = body;
      init.duplex = 'half';
    }
    if (opts.signal) init.signal = opts.signal;
    try {
      return await fetch(this.url(path), init);
    } catch (err) {
      if (opts.signal?.aborted) throw opts.signal.reason ?? err;
      throw connectionError(method, this.url(path), err);
    }
  }

  async #authorization(scopes: string[]): Promise<string | undefined> {
    const challenge = this.#challenge;
    if (!challenge) return undefined;
    if (challenge.scheme === 'basic') return hasCredentials(this.#auth) ? basicHeader(this.#auth) : undefined;
    if (this.#auth.registrytoken) return `Bearer ${this.#auth.registrytoken}`;
    const key = scopeKey(scopes);
    let value = this.#tokens.get(key);
    if (!value) {
      value = `Bearer ${await this.#fetchToken(challenge, scopes)}`;
      this.#tokens.set(key, value);
    }
    return value;
  }

  /** A token from the challenge's realm for `scopes`, with the credentials when there are any. */
  async #fetchToken(challenge: Challenge, scopes: string[]): Promise<string> {
    const realm = challenge.params['realm'];
    if (!realm) throw new Unavailable(`registry ${this.domain}: its Bearer challenge names no realm`);
    const service = challenge.params['service'];
    const allScopes = [...new Set([...scopes, ...(challenge.params['scope'] ? [challenge.params['scope']] : [])])];
    let res: Response;
    try {
      if (this.#auth.identitytoken) {
        const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: this.#auth.identitytoken, client_id: 'berth' });
        if (service) form.set('service', service);
        if (allScopes.length) form.set('scope', allScopes.join(' '));
        res = await fetch(realm, { method: 'POST', body: form, headers: { 'Content-Type': 'application/x-www-form-urlencoded' } });
      } else {
        const url = new URL(realm);
        if (service) url.searchParams.set('service', service);
        for (const s of allScopes) url.searchParams.append('scope', s);
        if (this.#auth.username) url.searchParams.set('account', this.#auth.username);
        const headers: Record<string, string> = {};
        if (hasCredentials(this.#auth)) headers['Authorization'] = basicHeader(this.#auth);
        res = await fetch(url, { headers });
      }
    } catch (err) {
      throw connectionError('GET', realm, err);
    }
    const text = await res.text().catch(() => '');
    if (!res.ok) {
      const detail = errorItems(text).map(formatItem).join(', ') || statusLine(res);
      const message = `Get "${realm}": ${res.status === 401 ? 'unauthorized: ' : ''}${detail}`;
      throw res.status === 401 || res.status === 403 ? new Forbidden(message) : new Unavailable(message);
    }
    let body: { token?: string; access_token?: string };
    try {
      body = JSON.parse(text) as { token?: string; access_token?: string };
    } catch (err) {
      throw new Unavailable(`token server ${realm} answered with something that is not JSON`, { cause: err });
    }
    const token = body.token ?? body.access_token;
    if (!token) throw new Unavailable(`token server ${realm} answered without a token`);
    return token;
  }
}

export function pullScope(repository: string): string {
  return `repository:${repository}:pull`;
}

export function pushScope(repository: string): string {
  return `repository:${repository}:pull,push`;
}

function scopeKey(scopes: string[]): string {
  return [...scopes].sort().join(' ');
}

function pickChallenge(challenges: Challenge[]): Challenge | undefined {
  return challenges.find((c) => c.scheme === 'bearer') ?? challenges.find((c) => c.scheme === 'basic');
}

function statusLine(res: Response): string {
  return `${res.status} ${res.statusText || ''}`.trim();
}

function connectionError(method: string, url: string, err: unknown): Unavailable {
  const cause = err instanceof Error && err.cause instanceof Error ? err.cause : err;
  const why = cause instanceof Error ? cause.message : String(cause);
  return new Unavailable(`${method[0]}${method.slice(1).toLowerCase()} "${url}": ${why}`, { cause: err });
}

function errorItems(text: string): RegistryErrorItem[] {
  try {
    const body = JSON.parse(text) as { errors?: Array<{ code?: unknown; message?: unknown }> };
    if (!Array.isArray(body?.errors)) return [];
    return body.errors.map((e) => ({ code: String(e?.code ?? 'UNKNOWN'), message: String(e?.message ?? '') }));
  } catch {
    return [];
  }
}

/** 'manifest unknown: manifest unknown', as docker's errcode prints an error. */
function formatItem(e: RegistryErrorItem): string {
  const code = e.code.toLowerCase().replace(/_/g, ' ');
  return e.message ? `${code}: ${e.message}` : code;
}

/**
 * The error for a registry's answer that is not what was asked for: the spec's codes as
 * docker prints them, or "received unexpected HTTP status: 500 Internal Server Error".
 */
export async function registryError(res: Response, context?: string): Promise<RegistryError> {
  const text = await res.text().catch(() => '');
  const items = errorItems(text);
  let detail: string;
  if (items.length === 1) detail = formatItem(items[0]!);
  else if (items.length > 1) detail = `errors:\n${items.map(formatItem).join('\n')}`;
  else if (res.status === 401) detail = 'unauthorized: authentication required';
  else detail = `received unexpected HTTP status: ${statusLine(res)}`;
  const message = context ? `${context}: ${detail}` : detail;
  const code: BerthError['code'] =
    res.status === 404 ? 'NOT_FOUND' : res.status === 401 || res.status === 403 ? 'FORBIDDEN' : res.status === 400 ? 'INVALID_ARGUMENT' : 'UNAVAILABLE';
  return new RegistryError(code, message, res.status, items);
}

/**
 * Reads a body of at most `limit` bytes (manifests, configs); more is an error and stops
 * the read, so a registry cannot make the daemon buffer without end.
 */
export async function readLimited(res: Response, limit: number, what: string): Promise<Buffer> {
  const length = Number(res.headers.get('content-length') ?? NaN);
  if (Number.isFinite(length) && length > limit) {
    await res.body?.cancel().catch(() => undefined);
    throw new InvalidArgument(`${what}: the registry sent ${length} bytes, more than the ${limit} expected`);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  if (!res.body) return Buffer.alloc(0);
  const reader = res.body.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.length;
      if (size > limit) {
        await reader.cancel().catch(() => undefined);
        throw new InvalidArgument(`${what}: the registry sent more than the ${limit} bytes expected`);
      }
      chunks.push(Buffer.from(value));
    }
  } catch (err) {
    if (err instanceof BerthError) throw err;
    throw new Unavailable(`${what}: the connection broke while reading: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  return Buffer.concat(chunks);
}

