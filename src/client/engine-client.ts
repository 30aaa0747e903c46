/**
 * A client of the Engine API over a unix socket: what `berth` uses, and nothing the real
 * docker CLI could not use too.
 */
import { request, type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import type { Readable } from 'node:stream';
import { connect, type Socket } from 'node:net';

export const CLIENT_API_VERSION = '1.47';

/** An error the daemon answered with: its status and Docker's `{"message"}`. */
export class ApiError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

/** The daemon could not be reached at all. */
export class ConnectError extends Error {}

export interface RequestOptions {
  query?: Record<string, string | number | boolean | string[] | undefined>;
  /** A Buffer, a stream, or a value sent as JSON. */
  body?: Buffer | Readable | object;
  headers?: Record<string, string>;
}

export interface Response {
  status: number;
  headers: IncomingHttpHeaders;
  body: IncomingMessage;
}

/** Where the daemon is: `-H`, then BERTH_HOST, then DOCKER_HOST, then the default socket. */
export function resolveHost(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  return flag || env['BERTH_HOST'] || env['DOCKER_HOST'] || 'unix:///run/berth/berth.sock';
}

export function socketPathOf(host: string): string {
  if (host.startsWith('unix://')) return host.slice('unix://'.length);
  if (host.startsWith('/')) return host;
  throw new ConnectError(`unsupported host "${host}": berth connects to a unix socket (unix:///path)`);
}

export class EngineClient {
  readonly socketPath: string;
  readonly version: string;

  constructor(host: string, version = CLIENT_API_VERSION) {
    this.socketPath = socketPathOf(host);
    this.version = version;
  }

  path(path: string, query?: RequestOptions['query']): string {
    const params = new URLSearchParams();
    for (const [key, value] of Object.entries(query ?? {})) {
      if (value === undefined) continue;
      if (Array.isArray(value)) for (const v of value) params.append(key, v);
      else params.set(key, typeof value === 'boolean' ? (value ? '1' : '0') : String(value));
    }
    const qs = params.toString();
    return `/v${this.version}${path}${qs ? `?${qs}` : ''}`;
  }

  /** Sends a request; resolves with the response as it starts (status and headers). */
  request(method: string, path: string, opts: RequestOptions = {}): Promise<Response> {
    return new Promise((resolve, reject) => {
      const headers: Record<string, string> = { ...opts.headers };
      let payload: Buffer | Readable | undefined;
      if (Buffer.isBuffer(opts.body)) payload = opts.body;
      else if (isReadable(opts.body)) payload = opts.body;
      else if (opts.body !== undefined) {
        payload = Buffer.from(JSON.stringify(opts.body));
        headers['Content-Type'] ??= 'application/json';
      }
      if (Buffer.isBuffer(payload)) headers['Content-Length'] = String(payload.length);
      // No agent: a CLI makes a call or two, and an agent's set-up costs start-up time.
      const req = request({ createConnection: () => connect(this.socketPath), method, path: this.path(path, opts.query), headers });
      req.on('error', (err) => reject(connectError(err, this.socketPath)));
      req.on('response', (res) => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: res }));
      if (isReadable(payload)) {
        payload.on('error', (err) => req.destroy(err));
        payload.pipe(req);
      } else req.end(payload);
    });
  }

  /** Sends a request and throws ApiError for an answer of 400 or more. */
  async call(method: string, path: string, opts: RequestOptions = {}): Promise<Response> {
    const res = await this.request(method, path, opts);
    if (res.status >= 400) throw await errorOf(res);
    return res;
  }

  async json<T>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
    const res = await this.call(method, path, opts);
    const text = (await readAll(res.body)).toString('utf8');
    return (text === '' ? undefined : JSON.parse(text)) as T;
  }

  /** Sends a request whose answer carries no body worth reading. */
  async send(method: string, path: string, opts: RequestOptions = {}): Promise<number> {
    const res = await this.call(method, path, opts);
    res.body.resume();
    return res.status;
  }

  /** Newline-delimited JSON messages (pull, push, load, build, events). */
  async *jsonLines(method: string, path: string, opts: RequestOptions = {}): AsyncGenerator<Record<string, unknown>> {
    const res = await this.call(method, path, opts);
    let buffered = '';
    for await (const chunk of res.body) {
      buffered += (chunk as Buffer).toString('utf8');
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl).trim();
        buffered = buffered.slice(nl + 1);
        if (line) yield JSON.parse(line) as Record<string, unknown>;
      }
    }
    if (buffered.trim()) yield JSON.parse(buffered) as Record<string, unknown>;
  }

  /** The connection hijack of attach and exec start: resolves with the raw socket. */
  hijack(method: string, path: string, opts: RequestOptions = {}): Promise<{ socket: Socket; contentType: string; head: Buffer }> {
    return new Promise((resolve, reject) => {
      const body = opts.body === undefined ? undefined : Buffer.from(JSON.stringify(opts.body));
      const req = request({
        createConnection: () => connect(this.socketPath),
        method,
        path: this.path(path, opts.query),
        headers: {
          Connection: 'Upgrade',
          Upgrade: 'tcp',
          ...(body ? { 'Content-Type': 'application/json', 'Content-Length': String(body.length) } : {}),
          ...opts.headers,
        },
      });
      req.on('error', (err) => reject(connectError(err, this.socketPath)));
      req.on('upgrade', (res, socket, head) => {
        resolve({ socket, contentType: String(res.headers['content-type'] ?? ''), head });
      });
      req.on('response', (res) => {
        if (res.statusCode && res.statusCode >= 400) {
          errorOf({ status: res.statusCode, headers: res.headers, body: res }).then(reject, reject);
          return;
        }
        // A daemon that does not upgrade streams the output as the body.
        resolve({ socket: res.socket as Socket, contentType: String(res.headers['content-type'] ?? ''), head: Buffer.alloc(0) });
      });
      req.end(body);
    });
  }
}

function isReadable(value: unknown): value is Readable {
  return typeof value === 'object' && value !== null && typeof (value as Readable).pipe === 'function';
}

export async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

async function errorOf(res: Response): Promise<ApiError> {
  const text = (await readAll(res.body)).toString('utf8');
  let message = text.trim();
  try {
    const parsed = JSON.parse(text) as { message?: string };
    if (typeof parsed.message === 'string') message = parsed.message;
  } catch {
    // Not JSON: the text itself is the message.
  }
  if (message === '') message = `${res.status} ${res.body.statusMessage ?? ''}`.trim();
  return new ApiError(res.status, message);
}

function connectError(err: Error & { code?: string }, socketPath: string): Error {
  if (err.code === 'ENOENT' || err.code === 'ECONNREFUSED') {
    return new ConnectError(`Cannot connect to the berth daemon at unix://${socketPath}. Is the berth daemon running?`);
  }
  if (err.code === 'EACCES') {
    return new ConnectError(`permission denied while trying to connect to the berth daemon socket at unix://${socketPath}`);
  }
  return err;
}
