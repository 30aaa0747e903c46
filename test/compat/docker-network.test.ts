// Networks through the real docker CLI: the default bridge (an address, a gateway, container to
// container), published ports (-p, -P, docker port, ps), user-defined networks (create, ls,
// inspect, rm, names in /etc/hosts), none and host, a daemon killed with containers on a
// network, and the host left as it was (ip_forward untouched, nothing routed beyond it).
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { before, describe, it } from 'node:test';
import { daemonWithBusybox, until } from '../helpers/berthd.js';

let forwardBefore: string;
before(() => {
  forwardBefore = readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8');
});
const fixture = daemonWithBusybox();
const { docker, ok } = fixture;

/** A TCP port nothing listens on now. */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** GET through a published port (busybox httpd serving /etc). */
async function get(port: number, path: string): Promise<string> {
  let last: unknown;
  for (let i = 0; i < 50; i++) {
    try {
      const res = await fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(2000) });
      return await res.text();
    } catch (err) {
      last = err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw new Error(`nothing answered on port ${port}: ${String(last)}`);
}

describe('docker CLI against berthd: networks', () => {
  it('the default bridge gives a container an address in its subnet, a gateway, and lo', async () => {
    const subnet = (await ok('network', 'inspect', '-f', '{{range .IPAM.Config}}{{.Subnet}} {{.Gateway}}{{end}}', 'bridge')).trim();
    const [cidr, gateway] = subnet.split(' ');
    assert.match(cidr!, /^\d+\.\d+\.0\.0\/\d+$/);
    const out = await ok('run', '--rm', 'busybox', 'sh', '-c', 'ip -4 -o addr show; ip route');
    const prefix = cidr!.split('.').slice(0, 2).join('.');
    assert.match(out, /lo\s+inet 127\.0\.0\.1\/8/);
    assert.match(out, new RegExp(`eth0\\s+inet ${prefix.replace('.', '\\.')}\\.\\d+\\.\\d+/16`));
    assert.match(out, new RegExp(`default via ${gateway!.replace(/\./g, '\\.')} dev eth0`));
    const ls = await ok('network', 'ls', '--format', '{{.Name}} {{.Driver}} {{.Scope}}');
    assert.deepEqual(ls.trim().split('\n').sort(), ['bridge bridge local', 'host host local', 'none null local']);
  });

  it('containers on the bridge reach each other by address; inspect shows the address', async () => {
    await ok('run', '-d', '--name', 'server', 'busybox', 'httpd', '-f', '-p', '80', '-h', '/etc');
    try {
      const ip = (await ok('inspect', '-f', '{{.NetworkSettings.IPAddress}}', 'server')).trim();
      const viaNetworks = (await ok('inspect', '-f', '{{.NetworkSettings.Networks.bridge.IPAddress}}', 'server')).trim();
      assert.equal(viaNetworks, ip);
      assert.match(ip, /^\d+\.\d+\.\d+\.\d+$/);
      const out = await ok('run', '--rm', 'busybox', 'wget', '-q', '-O', '-', `http://${ip}/hostname`);
      const hostname = (await ok('inspect', '-f', '{{.Config.Hostname}}', 'server')).trim();
      assert.equal(out.trim(), hostname);
      // Its own /etc/hosts names it by its address.
      assert.match(await ok('exec', 'server', 'cat', '/etc/hosts'), new RegExp(`^${ip.replace(/\./g, '\\.')}\\t${hostname}$`, 'm'));
    } finally {
      await docker('rm', '-f', 'server');
    }
  });

  it('publishes ports: -p host:container, -P on ephemeral ports; docker port and ps show them', async () => {
    const port = await freePort();
    await ok('run', '-d', '--name', 'web', '-p', `127.0.0.1:${port}:80`, '--expose', '8080', '-P', 'busybox', 'httpd', '-f', '-p', '80', '-h', '/etc');
    try {
      const hostname = (await ok('inspect', '-f', '{{.Config.Hostname}}', 'web')).trim();
      assert.equal((await get(port, '/hostname')).trim(), hostname);
      const ports = (await ok('port', 'web')).trim().split('\n').sort();
      assert.equal(ports.length, 3, ports.join('\n'));
      assert.equal(ports[0], `80/tcp -> 127.0.0.1:${port}`);
      // -P's port on every IPv4 and IPv6 address, as docker 27+ publishes it.
      const ephemeral = /^8080\/tcp -> 0\.0\.0\.0:(\d+)$/.exec(ports[1]!);
      assert.ok(ephemeral, ports.join('\n'));
      assert.equal(ports[2], `8080/tcp -> [::]:${ephemeral[1]}`);
      assert.match(await ok('ps', '--format', '{{.Ports}}', '-f', 'name=web'), new RegExp(`127\\.0\\.0\\.1:${port}->80/tcp`));
      // ps filters on ports and networks.
      assert.equal((await ok('ps', '--format', '{{.Names}}', '-f', `publish=${port}`)).trim(), 'web');
      assert.equal((await ok('ps', '--format', '{{.Names}}', '-f', 'expose=8080/tcp')).trim(), 'web');
      assert.equal((await ok('ps', '--format', '{{.Names}}', '-f', 'expose=8080/udp')).trim(), '');
      assert.equal((await ok('ps', '--format', '{{.Names}}', '-f', 'network=bridge')).trim(), 'web');
      assert.equal((await ok('ps', '--format', '{{.Names}}', '-f', 'network=none')).trim(), '');
      // The port is taken while web runs.
      const clash = await docker('run', '-d', '--name', 'clash', '-p', `127.0.0.1:${port}:80`, 'busybox', 'sleep', '30');
      assert.notEqual(clash.code, 0);
      assert.match(clash.stderr, new RegExp(`Bind for 127\\.0\\.0\\.1:${port} failed: port is already allocated`));
      await docker('rm', '-f', 'clash');
      // Stopped: the port is given back and inspect shows no address.
      await ok('stop', '-t', '1', 'web');
      assert.equal((await ok('inspect', '-f', '{{.NetworkSettings.IPAddress}}|{{json .NetworkSettings.Ports}}', 'web')).trim(), '|{}');
      await assert.rejects(fetch(`http://127.0.0.1:${port}/hostname`, { signal: AbortSignal.timeout(2000) }));
    } finally {
      await docker('rm', '-f', 'web');
    }
  });

  it('user-defined networks: create, ls, inspect, containers find each other by name and alias, rm', async () => {
    const id = (await ok('network', 'create', '--label', 'team=a', 'backend')).trim();
    assert.match(id, /^[0-9a-f]{64}$/);
    try {
      assert.match(await ok('network', 'ls', '--filter', 'label=team=a', '--format', '{{.Name}}'), /^backend$/m);
      const [subnet] = (await ok('network', 'inspect', '-f', '{{range .IPAM.Config}}{{.Subnet}}{{end}}', 'backend')).trim().split(' ');
      const bridgeSubnet = (await ok('network', 'inspect', '-f', '{{range .IPAM.Config}}{{.Subnet}}{{end}}', 'bridge')).trim();
      assert.notEqual(subnet, bridgeSubnet);
      await ok('run', '-d', '--name', 'db', '--network', 'backend', '--network-alias', 'database', 'busybox', 'httpd', '-f', '-p', '80', '-h', '/etc');
      const out = await ok('run', '--rm', '--network', 'backend', 'busybox', 'sh', '-c', 'wget -q -O - http://db/hostname && wget -q -O - http://database/hostname');
      const hostname = (await ok('inspect', '-f', '{{.Config.Hostname}}', 'db')).trim();
      assert.deepEqual(out.trim().split('\n'), [hostname, hostname]);
      const members = await ok('network', 'inspect', '-f', '{{range .Containers}}{{.Name}} {{end}}', 'backend');
      assert.equal(members.trim(), 'db');
      const busy = await docker('network', 'rm', 'backend');
      assert.notEqual(busy.code, 0);
      assert.match(busy.stderr, /has active endpoints/);
      await ok('rm', '-f', 'db');
      const dup = await docker('network', 'create', 'backend');
      assert.match(dup.stderr, /network with name backend already exists/);
    } finally {
      await docker('rm', '-f', 'db');
      await docker('network', 'rm', 'backend');
    }
    const gone = await docker('network', 'inspect', 'backend');
    assert.notEqual(gone.code, 0);
    assert.match(gone.stderr, /network backend not found/);
    const builtin = await docker('network', 'rm', 'bridge');
    assert.match(builtin.stderr, /bridge is a pre-defined network and cannot be removed/);
  });

  it('network prune takes unused networks of the user\'s, minding until and label filters; a stopped container shows its aliases', async () => {
    await ok('network', 'create', 'fresh');
    await ok('network', 'create', '--label', 'keep=1', 'labelled');
    // Younger than an hour: kept.
    await ok('network', 'prune', '-f', '--filter', 'until=1h');
    assert.match(await ok('network', 'ls', '--format', '{{.Name}}'), /^fresh$/m);
    await ok('create', '--name', 'aliased', '--network', 'fresh', '--network-alias', 'nick', 'busybox', 'true');
    assert.equal((await ok('inspect', '-f', '{{json .NetworkSettings.Networks.fresh.Aliases}}', 'aliased')).trim(), '["nick"]');
    // A network a container names is kept; label! spares the labelled one.
    await ok('network', 'prune', '-f', '--filter', 'label!=keep=1');
    const names = (await ok('network', 'ls', '--format', '{{.Name}}')).trim().split('\n');
    assert.ok(names.includes('fresh') && names.includes('labelled'), names.join(' '));
    await ok('rm', 'aliased');
    const pruned = await ok('network', 'prune', '-f');
    assert.match(pruned, /fresh/);
    assert.match(pruned, /labelled/);
    assert.deepEqual((await ok('network', 'ls', '--format', '{{.Name}}')).trim().split('\n').sort(), ['bridge', 'host', 'none']);
  });

  it('a container on two networks: connect and disconnect while it runs, and before it starts', async () => {
    await ok('network', 'create', 'front');
    await ok('network', 'create', 'back');
    try {
      await ok('run', '-d', '--name', 'app', '--network', 'front', 'busybox', 'httpd', '-f', '-p', '80', '-h', '/etc');
      await ok('network', 'connect', '--alias', 'api', 'back', 'app');
      const links = await ok('exec', 'app', 'sh', '-c', 'ip -4 -o addr show | grep eth; ip route | grep default');
      const backSubnet = (await ok('network', 'inspect', '-f', '{{range .IPAM.Config}}{{.Subnet}}{{end}}', 'back')).trim();
      const backPrefix = backSubnet.split('.').slice(0, 2).join('\\.');
      assert.match(links, /eth0\s+inet /);
      assert.match(links, new RegExp(`eth1\\s+inet ${backPrefix}\\.`));
      assert.equal(links.match(/^default/gm)?.length, 1, 'one default route, through the first network');
      const hostname = (await ok('inspect', '-f', '{{.Config.Hostname}}', 'app')).trim();
      assert.equal((await ok('run', '--rm', '--network', 'back', 'busybox', 'wget', '-q', '-O', '-', 'http://api/hostname')).trim(), hostname);
      const nets = (await ok('inspect', '-f', '{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}', 'app')).trim().split(' ').sort();
      assert.deepEqual(nets, ['back', 'front']);
      assert.equal((await ok('network', 'inspect', '-f', '{{range .Containers}}{{.Name}}{{end}}', 'back')).trim(), 'app');

      await ok('network', 'disconnect', 'back', 'app');
      assert.doesNotMatch(await ok('exec', 'app', 'ip', '-o', 'link'), /eth1/);
      const gone = await docker('run', '--rm', '--network', 'back', 'busybox', 'wget', '-q', '-T', '2', '-O', '-', 'http://api/hostname');
      assert.notEqual(gone.code, 0, 'app is no longer found on back');
      const notOn = await docker('network', 'disconnect', 'back', 'app');
      assert.match(notOn.stderr, /is not connected to network back/);

      // Before it starts: on both from its first start.
      await ok('create', '--name', 'later', '--network', 'front', 'busybox', 'sh', '-c', 'ip -o link | grep -c eth');
      await ok('network', 'connect', 'back', 'later');
      const dup = await docker('network', 'connect', 'back', 'later');
      assert.match(dup.stderr, /endpoint with name later already exists in network back/);
      await ok('start', '-a', 'later');
      assert.equal((await ok('logs', 'later')).trim(), '2');
    } finally {
      await docker('rm', '-f', 'app', 'later');
      await docker('network', 'rm', 'front', 'back');
    }
  });

  it('--ip gives a container the address it asks for on a network of the user\'s; a taken or foreign one is refused', async () => {
    await ok('network', 'create', '--subnet', '10.123.45.0/24', 'fixed');
    try {
      await ok('run', '-d', '--name', 'pinned', '--network', 'fixed', '--ip', '10.123.45.50', 'busybox', 'sleep', '300');
      assert.match(await ok('exec', 'pinned', 'ip', '-4', '-o', 'addr', 'show', 'eth0'), /inet 10\.123\.45\.50\/24/);
      assert.equal((await ok('inspect', '-f', '{{.NetworkSettings.Networks.fixed.IPAddress}}', 'pinned')).trim(), '10.123.45.50');
      const taken = await docker('run', '--rm', '--network', 'fixed', '--ip', '10.123.45.50', 'busybox', 'true');
      assert.notEqual(taken.code, 0);
      assert.match(taken.stderr, /10\.123\.45\.50/);
      const outside = await docker('run', '--rm', '--network', 'fixed', '--ip', '10.9.9.9', 'busybox', 'true');
      assert.match(outside.stderr, /invalid IPv4 address 10\.9\.9\.9: no configured subnet contains it/);
      const onBridge = await docker('run', '--rm', '--ip', '172.17.0.99', 'busybox', 'true');
      assert.match(onBridge.stderr, /user specified IP address is supported on user defined networks only/);
    } finally {
      await docker('rm', '-f', 'pinned');
      await docker('container', 'prune', '-f');
      await docker('network', 'rm', 'fixed');
    }
  });

  it('--network none has only lo; --network host has the host\'s interfaces; a missing network is refused', async () => {
    const none = await ok('run', '--rm', '--network', 'none', 'busybox', 'ip', '-o', 'link');
    assert.deepEqual(none.trim().split('\n').map((l) => l.split(':')[1]!.trim()), ['lo']);
    const host = await ok('run', '--rm', '--network', 'host', 'busybox', 'ip', '-o', 'link');
    assert.match(host, new RegExp(`: ${fixture.daemon.bridge}:`), 'the host network shows the daemon\'s bridge');
    // As docker: ports published with the host's network are a warning, not an error.
    const discarded = await docker('run', '--rm', '--network', 'host', '-p', '8080:80', 'busybox', 'true');
    assert.equal(discarded.code, 0, discarded.stderr);
    assert.match(discarded.stderr, /WARNING: Published ports are discarded when using host network mode/);
    const noneAndPorts = await docker('create', '--network', 'none', '-p', '8080:80', 'busybox', 'true');
    assert.match(noneAndPorts.stderr, /conflicting options: port publishing and the none network mode/);
    // As docker: the container is made, its start fails.
    const missing = await docker('run', '--name', 'lost', '--network', 'nowhere', 'busybox', 'true');
    assert.notEqual(missing.code, 0);
    assert.match(missing.stderr, /network nowhere not found/);
    assert.equal((await ok('inspect', '-f', '{{.State.Status}}', 'lost')).trim(), 'created');
    await ok('rm', 'lost');
  });

  it('a daemon killed with a container on the network: it keeps its address and its published port', async () => {
    const port = await freePort();
    await ok('run', '-d', '--name', 'survivor', '-p', `127.0.0.1:${port}:80`, 'busybox', 'httpd', '-f', '-p', '80', '-h', '/etc');
    try {
      const ip = (await ok('inspect', '-f', '{{.NetworkSettings.IPAddress}}', 'survivor')).trim();
      await fixture.daemon.restart('SIGKILL');
      assert.equal((await ok('inspect', '-f', '{{.State.Running}} {{.NetworkSettings.IPAddress}}', 'survivor')).trim(), `true ${ip}`);
      const hostname = (await ok('inspect', '-f', '{{.Config.Hostname}}', 'survivor')).trim();
      assert.equal((await get(port, '/hostname')).trim(), hostname);
      // A new container does not get the survivor's address.
      const other = await ok('run', '--rm', 'busybox', 'sh', '-c', 'ip -4 -o addr show eth0');
      assert.doesNotMatch(other, new RegExp(`inet ${ip.replace(/\./g, '\\.')}/`));
    } finally {
      await docker('rm', '-f', 'survivor');
    }
    await until('the namespaces are gone', async () => {
      const r = await docker('ps', '-aq');
      return r.stdout.trim() === '';
    });
  });

  it('a start cut short by a crash: its namespace and address are given back at the next start', async () => {
    const stale = 'f'.repeat(64);
    const netns = join(fixture.daemon.execRoot, 'netns', stale);
    writeFileSync(netns, '');
    assert.equal(spawnSync('unshare', [`--net=${netns}`, 'true']).status, 0);
    const bridgeId = (await ok('network', 'inspect', '-f', '{{.Id}}', 'bridge')).trim();
    const leases = join(fixture.daemon.dataRoot, 'network', 'ipam', bridgeId);
    mkdirSync(leases, { recursive: true });
    const lease = join(leases, '172.31.255.250');
    writeFileSync(lease, `${stale}\r\neth0`);
    await fixture.daemon.restart('SIGKILL');
    assert.ok(!existsSync(netns), 'the namespace is removed');
    assert.ok(!readFileSync('/proc/self/mountinfo', 'utf8').includes(netns), 'and unmounted');
    assert.ok(!existsSync(lease), 'the address is given back');
  });

  it('leaves the host as it was: ip_forward untouched', () => {
    assert.equal(readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8'), forwardBefore);
  });
});
