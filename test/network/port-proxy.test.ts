// berthd's relay for published ports, against servers of the test's own on loopback standing
// in for a container: TCP both ways with half-close, UDP answers back to each client, an
// ephemeral port, a port already taken, and unpublish closing the port.
import * as assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { createConnection, createServer, type Server } from 'node:net';
import { after, describe, it } from 'node:test';
import { InvalidArgument, Unavailable } from '../../src/errors/errors.js';
import { PortProxy, parsePortKey } from '../../src/network/port-proxy.js';

const proxy = new PortProxy();
const servers: Array<{ close(): unknown }> = [];
after(() => {
  proxy.closeAll();
  for (const s of servers) s.close();
});

/** A TCP server that answers what it got, upper-cased, once the client has finished. */
async function shoutServer(): Promise<number> {
  const server: Server = createServer({ allowHalfOpen: true }, (socket) => {
    let got = '';
    socket.on('data', (c) => (got += c.toString()));
    socket.on('end', () => socket.end(got.toUpperCase()));
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as { port: number }).port;
}

function talk(port: number, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = createConnection({ host: '127.0.0.1', port, allowHalfOpen: true });
    let got = '';
    socket.on('data', (c) => (got += c.toString()));
    socket.on('end', () => resolve(got));
    socket.on('error', reject);
    socket.end(text);
  });
}

describe('published ports', () => {
  it('relays TCP to the container\'s address, half-close included; an ephemeral port when none is asked for', async () => {
    const target = await shoutServer();
    const ports = await proxy.publish('c1', '127.0.0.1', { [`${target}/tcp`]: [{ HostIp: '127.0.0.1', HostPort: '' }] });
    const bound = ports[`${target}/tcp`]![0]!;
    assert.equal(bound.HostIp, '127.0.0.1');
    assert.ok(Number(bound.HostPort) > 0);
    assert.equal(await talk(Number(bound.HostPort), 'hello through the relay'), 'HELLO THROUGH THE RELAY');
    await proxy.unpublish('c1');
    await assert.rejects(talk(Number(bound.HostPort), 'x'));
  });

  it('no host address is every IPv4 and IPv6 address, on one port', async () => {
    const target = await shoutServer();
    const ports = await proxy.publish('c4', '127.0.0.1', { [`${target}/tcp`]: [{ HostIp: '', HostPort: '' }] });
    const bound = ports[`${target}/tcp`]!;
    assert.deepEqual(bound.map((b) => b.HostIp), ['0.0.0.0', '::']);
    assert.equal(bound[0]!.HostPort, bound[1]!.HostPort);
    const v6 = await new Promise<string>((resolve, reject) => {
      const socket = createConnection({ host: '::1', port: Number(bound[1]!.HostPort), allowHalfOpen: true });
      let got = '';
      socket.on('data', (c) => (got += c.toString()));
      socket.on('end', () => resolve(got));
      socket.on('error', reject);
      socket.end('over ipv6');
    });
    assert.equal(v6, 'OVER IPV6');
    await proxy.unpublish('c4');
  });

  it('relays UDP, each client\'s answers back to it', async () => {
    const echo = createSocket('udp4');
    servers.push(echo);
    echo.on('message', (msg, rinfo) => echo.send(Buffer.from(`echo:${msg.toString()}`), rinfo.port, rinfo.address));
    await new Promise<void>((resolve) => echo.bind(0, '127.0.0.1', resolve));
    const target = echo.address().port;
    const ports = await proxy.publish('c2', '127.0.0.1', { [`${target}/udp`]: [{ HostIp: '127.0.0.1', HostPort: '0' }] });
    const hostPort = Number(ports[`${target}/udp`]![0]!.HostPort);
    const ask = (text: string) =>
      new Promise<string>((resolve) => {
        const client = createSocket('udp4');
        client.on('message', (msg) => {
          client.close();
          resolve(msg.toString());
        });
        client.send(text, hostPort, '127.0.0.1');
      });
    assert.deepEqual(await Promise.all([ask('a'), ask('b')]), ['echo:a', 'echo:b']);
    await proxy.unpublish('c2');
  });

  it('a port already taken is docker\'s error, and nothing of that container stays bound', async () => {
    const target = await shoutServer();
    const taken = await shoutServer();
    // A port free now: the first binding takes it, the second fails, the first is given back.
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const first = (probe.address() as { port: number }).port;
    await new Promise((resolve) => probe.close(resolve));
    await assert.rejects(
      proxy.publish('c3', '127.0.0.1', {
        [`${target}/tcp`]: [{ HostIp: '127.0.0.1', HostPort: String(first) }],
        '9/tcp': [{ HostIp: '127.0.0.1', HostPort: String(taken) }],
      }),
      (e: Error) => e instanceof Unavailable && e.message === `Bind for 127.0.0.1:${taken} failed: port is already allocated`,
    );
    const again = createServer();
    await new Promise<void>((resolve, reject) => {
      again.once('error', reject);
      again.listen(first, '127.0.0.1', resolve);
    });
    again.close();
    assert.throws(() => parsePortKey('80/xyz'), InvalidArgument);
    assert.throws(() => parsePortKey('70000'), InvalidArgument);
    assert.deepEqual(parsePortKey('53/udp'), { port: 53, proto: 'udp' });
  });
});
