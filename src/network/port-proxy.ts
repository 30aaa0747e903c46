/**
 * Published ports (`-p 8080:80`, `-P`): berthd listens on the host's port and relays each
 * connection (TCP) or each client's datagrams (UDP) to the container's address, as docker's
 * userland proxy does. Nothing is written to the host's firewall, and the host never routes
 * a container's packets anywhere: what reaches a container comes through this relay.
 *
 * The relays live in berthd: after a restart, berthd binds the same host ports again for the
 * containers that kept running.
 */
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { createConnection, createServer, type Server } from 'node:net';
import { InvalidArgument, Unavailable, errnoCode } from '../errors/errors.js';

export interface PortBinding {
  HostIp: string;
  HostPort: string;
}

/** docker's PortMap: '80/tcp' -> the host bindings (null: exposed, not published). */
export type PortMap = Record<string, PortBinding[] | null>;

/** How long a UDP client's relay socket lives without traffic. */
const UDP_IDLE_MS = 30_000;

interface Relay {
  close(): void;
}

export function parsePortKey(key: string): { port: number; proto: 'tcp' | 'udp' | 'sctp' } {
  const m = /^(\d{1,5})(?:\/(tcp|udp|sctp))?$/.exec(key);
  const port = m ? Number(m[1]) : NaN;
  if (!m || port < 1 || port > 65535) throw new InvalidArgument(`invalid port specification: ${JSON.stringify(key)}`);
  return { port, proto: (m[2] ?? 'tcp') as 'tcp' | 'udp' | 'sctp' };
}

/** The host ports to try for a binding: one, a range ('8000-8010'), or any (0). */
function hostPorts(text: string): number[] {
  if (text === '' || text === '0') return [0];
  const m = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(text);
  const start = m ? Number(m[1]) : NaN;
  const end = m?.[2] ? Number(m[2]) : start;
  if (!m || start < 1 || end > 65535 || end < start) throw new InvalidArgument(`invalid host port ${JSON.stringify(text)}`);
  return Array.from({ length: end - start + 1 }, (_, i) => start + i);
}

export class PortProxy {
  readonly #relays = new Map<string, Relay[]>();

  /**
   * Binds every published port of container `id` and relays it to `address`. Answers the
   * bindings as they are (an ephemeral port chosen). All or nothing: a port already taken
   * unbinds those bound before it.
   */
  async publish(id: string, address: string, bindings: PortMap): Promise<PortMap> {
    await this.unpublish(id);
    const relays: Relay[] = [];
    const out: PortMap = {};
    try {
      for (const [key, list] of Object.entries(bindings)) {
        const { port, proto } = parsePortKey(key);
        const normalized = `${port}/${proto}`;
        if (!list || list.length === 0) {
          out[normalized] ??= null;
          continue;
        }
        if (proto === 'sctp') throw new InvalidArgument(`publishing sctp port ${port}: not supported`);
        const bound: PortBinding[] = [];
        for (const binding of list) {
          const hostIp = binding.HostIp || '0.0.0.0';
          const { relay, hostPort } = await bindFirst(hostIp, hostPorts(binding.HostPort ?? ''), proto, address, port);
          relays.push(relay);
          bound.push({ HostIp: hostIp, HostPort: String(hostPort) });
          // As docker 27+: no address given is IPv6's too, on the same port, where the host has it.
          if (!binding.HostIp) {
            const v6 = await (proto === 'tcp' ? tcpRelay('::', hostPort, address, port) : udpRelay('::', hostPort, address, port)).catch(() => undefined);
            if (v6) {
              relays.push(v6.relay);
              bound.push({ HostIp: '::', HostPort: String(hostPort) });
            }
          }
        }
        out[normalized] = [...(out[normalized] ?? []), ...bound];
      }
    } catch (err) {
      for (const relay of relays) relay.close();
      throw err;
    }
    this.#relays.set(id, relays);
    return out;
  }

  /** Unbinds container `id`'s ports; open connections are cut. */
  async unpublish(id: string): Promise<void> {
    for (const relay of this.#relays.get(id) ?? []) relay.close();
    this.#relays.delete(id);
  }

  closeAll(): void {
    for (const id of [...this.#relays.keys()]) void this.unpublish(id);
  }
}

async function bindFirst(hostIp: string, ports: number[], proto: 'tcp' | 'udp', address: string, port: number): Promise<{ relay: Relay; hostPort: number }> {
  let last: unknown;
  for (const hostPort of ports) {
    try {
      return proto === 'tcp' ? await tcpRelay(hostIp, hostPort, address, port) : await udpRelay(hostIp, hostPort, address, port);
    } catch (err) {
      last = err;
      if (errnoCode(err) !== 'EADDRINUSE') break;
    }
  }
  const shown = ports.length > 1 ? `${ports[0]}-${ports[ports.length - 1]}` : String(ports[0]);
  if (errnoCode(last) === 'EADDRINUSE') throw new Unavailable(`Bind for ${hostIp}:${shown} failed: port is already allocated`);
  if (errnoCode(last) === 'EADDRNOTAVAIL') throw new InvalidArgument(`Bind for ${hostIp}:${shown} failed: the host has no such address`);
  throw new Unavailable(`Bind for ${hostIp}:${shown} failed: ${last instanceof Error ? last.message : String(last)}`);
}

function tcpRelay(hostIp: string, hostPort: number, address: string, port: number): Promise<{ relay: Relay; hostPort: number }> {
  const server: Server = createServer({ allowHalfOpen: true }, (client) => {
    const upstream = createConnection({ host: address, port, allowHalfOpen: true });
    const cut = (): void => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', cut);
    upstream.on('error', cut);
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
    client.pipe(upstream);
    upstream.pipe(client);
  });
  const sockets = new Set<import('node:net').Socket>();
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: hostIp, port: hostPort, exclusive: true, ipv6Only: hostIp.includes(':') }, () => {
      server.off('error', reject);
      server.on('error', () => undefined);
      const bound = server.address();
      resolve({
        hostPort: typeof bound === 'object' && bound ? bound.port : hostPort,
        relay: {
          close: () => {
            server.close();
            for (const s of sockets) s.destroy();
          },
        },
      });
    });
  });
}

function udpRelay(hostIp: string, hostPort: number, address: string, port: number): Promise<{ relay: Relay; hostPort: number }> {
  const front = hostIp.includes(':') ? createSocket({ type: 'udp6', ipv6Only: true }) : createSocket('udp4');
  // One socket towards the container per client, so its answers find their way back.
  const clients = new Map<string, { socket: UdpSocket; timer: NodeJS.Timeout }>();
  const forget = (key: string): void => {
    const c = clients.get(key);
    if (!c) return;
    clearTimeout(c.timer);
    c.socket.close();
    clients.delete(key);
  };
  front.on('message', (msg, rinfo) => {
    const key = `${rinfo.address}:${rinfo.port}`;
    let c = clients.get(key);
    if (!c) {
      const socket = createSocket('udp4');
      socket.on('message', (reply) => front.send(reply, rinfo.port, rinfo.address));
      socket.on('error', () => forget(key));
      c = { socket, timer: setTimeout(() => forget(key), UDP_IDLE_MS) };
      clients.set(key, c);
    }
    c.timer.refresh();
    c.socket.send(msg, port, address);
  });
  return new Promise((resolve, reject) => {
    front.once('error', reject);
    front.bind({ address: hostIp, port: hostPort, exclusive: true }, () => {
      front.off('error', reject);
      front.on('error', () => undefined);
      resolve({
        hostPort: front.address().port,
        relay: {
          close: () => {
            for (const key of [...clients.keys()]) forget(key);
            front.close();
          },
        },
      });
    });
  });
}
