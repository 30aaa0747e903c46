/**
 * The Engine API's request plumbing: versioned paths, routing, bodies, errors as Docker
 * writes them, newline-delimited JSON streams and the connection hijack of attach and exec.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { PassThrough, type Duplex, type Readable } from 'node:stream';
import { BerthError, InvalidArgument, isBerthError } from '../errors/errors.js';

export const API_VERSION = '1.47';
export const MIN_API_VERSION = '1.24';

export interface RequestContext {
  req: IncomingMessage;
  /** Absent on a hijacked (Upgrade) request until `hijack()` is called. */
  res: ServerResponse | undefined;
  params: Record<string, string>;
  query: URLSearchParams;
  /** The API version the client asked for (the path's /v1.NN), or the current one. */
  version: string;
  /** Reads the whole body (bounded). */
  body(limit?: number): Promise<Buffer>;
  /**
   * The body as a stream that consumers may destroy on bad input without destroying the
   * connection (so the error can still be answered).
   */
  bodyStream(): Readable;
  /** Reads the body as JSON; an empty body is `fallback`. */
  json<T>(fallback: T): Promise<T>;
  /** Takes over the connection (attach, exec): 101 with Docker's raw-stream headers. */
  hijack(contentType: string): Duplex;
  /** Whether the client asked for an upgrade (the docker CLI always does for attach). */
  upgrade: boolean;
}

export type Handler = (ctx: RequestContext) => Promise<void> | void;

interface Route {
  method: string;
  pattern: RegExp;
  names: string[];
  handler: Handler;
}

export class Router {
  readonly #routes: Route[] = [];

  /** `path` like '/containers/{id}/json'; `{name:.*}` takes slashes (image names do). */
  add(method: string, path: string, handler: Handler): this {
    const names: string[] = [];
    const source = path.replace(/\{(\w+)(?::([^}]+))?\}/g, (_m, name: string, re?: string) => {
      names.push(name);
      return `(${re ?? '[^/]+'})`;
    });
    this.#routes.push({ method, pattern: new RegExp(`^${source}$`), names, handler });
    return this;
  }

  match(method: string, path: string): { handler: Handler; params: Record<string, string> } | 'method' | undefined {
    let pathMatched = false;
    for (const route of this.#routes) {
      const m = route.pattern.exec(path);
      if (!m) continue;
      pathMatched = true;
      if (route.method !== method && !(method === 'HEAD' && route.method === 'GET')) continue;
      const params: Record<string, string> = {};
      route.names.forEach((name, i) => {
        params[name] = decodeURIComponent(m[i + 1]!);
      });
      return { handler: route.handler, params };
    }
    return pathMatched ? 'method' : undefined;
  }
}

/** Splits `/v1.45/containers/json` into the version and the path, checking the version. */
export function splitVersion(path: string): { version: string; path: string } {
  const m = /^\/v([0-9]+\.[0-9]+)(\/.*)$/.exec(path);
  if (!m) return { version: API_VERSION, path };
  const version = m[1]!;
  if (compareVersions(version, API_VERSION) > 0) {
    throw new InvalidArgument(`client version ${version} is too new. Maximum supported API version is ${API_VERSION}`);
  }
  if (compareVersions(version, MIN_API_VERSION) < 0) {
    throw new InvalidArgument(
      `client version ${version} is too old. Minimum supported API version is ${MIN_API_VERSION}, please upgrade your client to a newer version`,
    );
  }
  return { version, path: m[2]! };
}

export function compareVersions(a: string, b: string): number {
  const [a1, a2] = a.split('.').map(Number) as [number, number];
  const [b1, b2] = b.split('.').map(Number) as [number, number];
  return a1 !== b1 ? a1 - b1 : a2 - b2;
}

export function statusOf(err: unknown): number {
  if (!isBerthError(err)) return 500;
  switch ((err as BerthError).code) {
    case 'NOT_FOUND': return 404;
    case 'ALREADY_EXISTS':
    case 'CONFLICT': return 409;
    case 'INVALID_ARGUMENT': return 400;
    case 'FORBIDDEN': return 403;
    case 'NOT_MODIFIED': return 304;
    case 'NOT_IMPLEMENTED': return 501;
    case 'UNAVAILABLE': return 503;
    default: return 500;
  }
}

export function messageOf(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}

export function sendJson(res: ServerResponse, status: number, value: unknown): void {
  const body = JSON.stringify(value);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
  res.end(`${body}`);
}

export function sendError(res: ServerResponse, err: unknown): void {
  const status = statusOf(err);
  if (res.headersSent) {
    res.destroy();
    return;
  }
  if (status === 304) {
    res.writeHead(304);
    res.end();
    return;
  }
  sendJson(res, status, { message: messageOf(err) });
}

/**
 * A newline-delimited JSON stream (pull, push, load, import, build). Errors that happen once
 * the 200 is sent go into the stream as Docker's `{"errorDetail":…,"error":…}`.
 */
export class JsonStream {
  readonly #res: ServerResponse;
  #started = false;

  constructor(res: ServerResponse) {
    this.#res = res;
  }

  /** Whether the 200 went out; before that, an error can still be a plain error answer. */
  get started(): boolean {
    return this.#started;
  }

  write(message: object): void {
    if (!this.#started) {
      this.#started = true;
      this.#res.writeHead(200, { 'Content-Type': 'application/json' });
    }
    if (!this.#res.writableEnded) this.#res.write(`${JSON.stringify(message)}\r\n`);
  }

  error(err: unknown): void {
    if (!this.#started) {
      sendError(this.#res, err);
      this.#started = true;
      return;
    }
    const message = messageOf(err);
    this.write({ errorDetail: { message }, error: message });
  }

  end(): void {
    if (!this.#started) this.write({});
    this.#res.end();
  }
}

export function readBody(req: IncomingMessage, limit = 16 * 1024 * 1024): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        reject(new InvalidArgument(`request body is larger than ${limit} bytes`));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/** See RequestContext.bodyStream. */
export function detachedBody(req: IncomingMessage): Readable {
  const body = new PassThrough();
  req.pipe(body);
  body.on('close', () => req.unpipe(body));
  return body;
}

/** Docker's query booleans: 1/true/True are true; absent, 0, false and '' are false. */
export function queryBool(query: URLSearchParams, name: string, fallback = false): boolean {
  const v = query.get(name);
  if (v === null) return fallback;
  return !['', '0', 'false', 'False', 'FALSE', 'no'].includes(v);
}

/** Docker's `filters` parameter: JSON of name -> [values] (or the old name -> {value: true}). */
export function parseFilters(raw: string | null): Map<string, string[]> {
  const filters = new Map<string, string[]>();
  if (!raw) return filters;
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch (err) {
    throw new InvalidArgument(`invalid filter: ${raw}`, { cause: err });
  }
  if (typeof value !== 'object' || value === null) throw new InvalidArgument(`invalid filter: ${raw}`);
  for (const [name, v] of Object.entries(value)) {
    if (Array.isArray(v)) filters.set(name, v.map(String));
    else if (typeof v === 'object' && v !== null) filters.set(name, Object.keys(v).filter((k) => (v as Record<string, unknown>)[k]));
    else throw new InvalidArgument(`invalid filter: ${raw}`);
  }
  return filters;
}

/** Refuses filter names the endpoint does not know, with Docker's message. */
export function checkFilterNames(filters: Map<string, string[]>, allowed: string[]): void {
  for (const name of filters.keys()) {
    if (!allowed.includes(name)) throw new InvalidArgument(`invalid filter '${name}'`);
  }
}
