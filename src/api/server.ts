/**
 * The Engine API server: HTTP/1.1 on a unix socket, the daemon's only interface.
 */
import { chmod, rm } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { Duplex } from 'node:stream';
import { InvalidArgument, NotFound } from '../errors/errors.js';
import type { Logger } from '../daemon/logger.js';
import { Router, detachedBody, messageOf, readBody, sendError, splitVersion, statusOf, type RequestContext } from './router.js';

export interface ApiServer {
  server: Server;
  close(): Promise<void>;
}

export async function listenUnix(router: Router, socketPath: string, log: Logger): Promise<ApiServer> {
  const server = createServer({ keepAliveTimeout: 30_000 });
  // Long streams (logs -f, events, wait) must not be cut by Node's defaults.
  server.requestTimeout = 0;
  server.headersTimeout = 0;
  server.timeout = 0;
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    void dispatch(router, req, res, undefined, log);
  });
  // Hijacked connections leave the HTTP server's books: keep them here to close them at stop.
  const hijacked = new Set<Duplex>();
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    hijacked.add(socket);
    socket.on('close', () => hijacked.delete(socket));
    if (head.length > 0) socket.unshift(head);
    // Node leaves an upgrade request's body on the socket: take it off before the hijack.
    readUpgradeBody(req, socket).then(
      (body) => dispatch(router, req, undefined, socket, log, body),
      () => socket.destroy(),
    );
  });
  server.on('clientError', (_err, socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\n\r\n');
  });
  await rm(socketPath, { force: true });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, () => {
      server.off('error', reject);
      resolve();
    });
  });
  await chmod(socketPath, 0o660);
  return {
    server,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
        for (const socket of hijacked) socket.destroy();
        // Streams a handler still writes to (logs -f, events) must not hold the stop up.
        setTimeout(resolve, 2000).unref();
      }),
  };
}

async function dispatch(
  router: Router,
  req: IncomingMessage,
  res: ServerResponse | undefined,
  socket: Duplex | undefined,
  log: Logger,
  upgradeBody?: Buffer,
): Promise<void> {
  const started = Date.now();
  const url = new URL(req.url ?? '/', 'http://berth');
  let ctx: RequestContext | undefined;
  let hijacked = false;
  try {
    const { version, path } = splitVersion(url.pathname);
    const match = router.match(req.method ?? 'GET', path);
    if (match === undefined || match === 'method') throw new NotFound('page not found');
    ctx = {
      req,
      res,
      params: match.params,
      query: url.searchParams,
      version,
      upgrade: socket !== undefined,
      body: (limit?: number) => (upgradeBody ? Promise.resolve(upgradeBody) : readBody(req, limit)),
      bodyStream: () => detachedBody(req),
      json: async <T>(fallback: T): Promise<T> => {
        const body = upgradeBody ?? (await readBody(req));
        if (body.length === 0) return fallback;
        try {
          return JSON.parse(body.toString('utf8')) as T;
        } catch (err) {
          throw new InvalidArgument(`invalid JSON in the request body: ${messageOf(err)}`, { cause: err });
        }
      },
      hijack: (contentType: string) => {
        if (!socket) {
          // No upgrade asked: stream the raw bytes as the body of a 200, as Docker does.
          if (!res) throw new Error('no response to hijack');
          res.writeHead(200, { 'Content-Type': contentType });
          res.flushHeaders();
          hijacked = true;
          return responseDuplex(req, res);
        }
        hijacked = true;
        socket.write(
          `HTTP/1.1 101 UPGRADED\r\nContent-Type: ${contentType}\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n`,
        );
        return socket;
      },
    };
    await match.handler(ctx);
  } catch (err) {
    const status = statusOf(err);
    if (status >= 500) log.error('request failed', { method: req.method, path: url.pathname, error: messageOf(err), stack: err instanceof Error ? err.stack : undefined });
    if (res) {
      // A client still sending its body (an import of garbage) would see the connection
      // drop instead of the error: read the rest of the body first.
      if (!req.complete && !res.headersSent) await drainRequest(req);
      sendError(res, err);
    }
    else if (socket && !hijacked) {
      const body = JSON.stringify({ message: messageOf(err) });
      socket.end(
        `HTTP/1.1 ${status} ${status === 404 ? 'Not Found' : status === 409 ? 'Conflict' : 'Error'}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
      );
    } else socket?.destroy();
  } finally {
    log.debug('request', { method: req.method, path: url.pathname, ms: Date.now() - started });
  }
}

/** Reads Content-Length bytes of body from an upgraded socket, leaving the rest on it. */
function readUpgradeBody(req: IncomingMessage, socket: Duplex): Promise<Buffer> {
  const length = Number(req.headers['content-length'] ?? 0);
  if (!(length > 0)) return Promise.resolve(Buffer.alloc(0));
  if (length > 1024 * 1024) return Promise.reject(new Error('upgrade request body too large'));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let have = 0;
    const onData = (chunk: Buffer) => {
      chunks.push(chunk);
      have += chunk.length;
      if (have < length) return;
      socket.off('data', onData);
      socket.off('error', reject);
      socket.pause();
      const all = Buffer.concat(chunks);
      if (all.length > length) socket.unshift(all.subarray(length));
      resolve(all.subarray(0, length));
    };
    socket.on('data', onData);
    socket.on('error', reject);
  });
}

function drainRequest(req: IncomingMessage): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, 30_000);
    const done = () => {
      clearTimeout(timer);
      resolve();
    };
    req.once('end', done);
    req.once('close', done);
    req.once('error', done);
    req.resume();
  });
}

/** A duplex over a plain request/response pair, for attach without an upgrade. */
function responseDuplex(req: IncomingMessage, res: ServerResponse): Duplex {
  const duplex = new Duplex({
    read() {
      req.resume();
    },
    write(chunk: Buffer, _enc, done) {
      res.write(chunk, () => done());
    },
    final(done) {
      res.end(() => done());
    },
  });
  req.on('data', (chunk: Buffer) => {
    if (!duplex.push(chunk)) req.pause();
  });
  req.on('end', () => duplex.push(null));
  res.on('close', () => duplex.destroy());
  return duplex;
}
