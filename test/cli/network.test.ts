// berth network ls, inspect, create, rm, prune, connect and disconnect against a private
// berthd, each compared with the real docker CLI against the same daemon: the same stdout,
// stderr and exit status. Commands that change the daemon run twice from the same state,
// once per CLI; ids and creation times are compared only where both CLIs print the same
// object.
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { daemonWithBusybox, type RunResult } from '../helpers/berthd.js';

const hasDocker = spawnSync('docker', ['--version'], { timeout: 10_000, killSignal: 'SIGKILL' }).status === 0;

const fixture = daemonWithBusybox();
const docker = fixture.ok;

/** docker's words for itself in its own messages ("Usage:  docker network"), as berth's; "com.docker.network..." stays. */
function asBerth(text: string): string {
  return text.replace(/(?<![\w.-])docker(?![\w.-])/g, 'berth');
}

function compare(args: string[], mine: RunResult, theirs: RunResult): void {
  assert.deepEqual(
    { stdout: mine.stdout, stderr: mine.stderr, code: mine.code },
    { stdout: asBerth(theirs.stdout), stderr: asBerth(theirs.stderr), code: theirs.code },
    `berth ${args.join(' ')}\n${fixture.daemon.log.slice(-2000)}`,
  );
}

/** berth and docker, one after the other on the same state, print the same. */
async function sameAsDocker(args: string[], input?: string): Promise<RunResult> {
  const opts = { timeoutMs: 30_000, ...(input === undefined ? {} : { input }) };
  const mine = await fixture.daemon.berth(args, opts);
  compare(args, mine, await fixture.daemon.docker(args, opts));
  return mine;
}

/**
 * For a command that changes the daemon: `setup` brings the daemon to a state, berth runs
 * the command, `setup` brings the same state back, docker runs it; both print the same.
 */
async function sameAsDockerFrom(setup: () => Promise<void>, args: string[], input?: string): Promise<RunResult> {
  const opts = { timeoutMs: 30_000, ...(input === undefined ? {} : { input }) };
  await setup();
  const mine = await fixture.daemon.berth(args, opts);
  await setup();
  compare(args, mine, await fixture.daemon.docker(args, opts));
  return mine;
}

/** Removes networks, whether they exist or not. */
async function removeNetworks(...names: string[]): Promise<void> {
  await fixture.daemon.docker(['network', 'rm', '-f', ...names]);
}

// Nested under one suite: node 20 runs a file's top-level before hooks side by side, so the
// containers are made in the suite's, once the fixture's daemon has started.
describe('berth network', { skip: !hasDocker }, () => {
  before(async () => {
    await docker('create', '--name', 'stopped', 'busybox', 'true');
    await docker('network', 'create', 'busy');
    await docker('run', '-d', '--name', 'running', '--network', 'busy', 'busybox', 'sleep', '600');
  });

  describe('help and usage errors', () => {
    const cases = [
      ['network'],
      ['network', '--help'],
      ['network', '-h'],
      ...['ls', 'list', 'inspect', 'create', 'rm', 'remove', 'prune', 'connect', 'disconnect'].map((c) => ['network', c, '--help']),
      ['network', 'ls', '-h'],
      ['network', 'rm', '--help', 'x'],
      ['network', 'foo'],
      ['network', '--bogus'],
      ['network', '-x'],
      ['network', 'ls', 'x'],
      ['network', 'list', 'x'],
      ['network', 'ls', '--bogus'],
      ['network', 'ls', '-x'],
      ['network', 'ls', '-f'],
      ['network', 'ls', '-f', 'bad'],
      ['network', 'ls', '--format'],
      ['network', 'inspect'],
      ['network', 'create'],
      ['network', 'create', 'a', 'b'],
      ['network', 'create', '-d'],
      ['network', 'create', '--label'],
      ['network', 'create', '--label', '=x', 'y'],
      ['network', 'create', '--label', 'a b=c', 'y'],
      ['network', 'create', '--subnet', 'a"b', 'y'],
      ['network', 'rm'],
      ['network', 'remove'],
      ['network', 'rm', '--force=maybe', 'x'],
      ['network', 'prune', 'x'],
      ['network', 'prune', '--filter', 'x'],
      ['network', 'connect', 'x'],
      ['network', 'connect', '--gw-priority', 'x', 'n', 'c'],
      ['network', 'connect', '--link', 'a:b:c', 'n', 'c'],
      ['network', 'disconnect'],
      ['network', 'disconnect', 'a', 'b', 'c'],
    ];
    for (const args of cases) {
      it(args.join(' '), async () => {
        await sameAsDocker(args);
      });
    }
  });

  describe('ls', () => {
    before(async () => {
      await docker('network', 'create', 'net9');
      await docker('network', 'create', '--label', 'tier=db', '--internal', '--subnet', '10.123.0.0/24', '--gateway', '10.123.0.1', 'net10');
      await docker('network', 'create', '--label', 'only', 'Net1');
    });

    after(async () => {
      await removeNetworks('net9', 'net10', 'Net1');
    });

    const cases = [
      [],
      ['-q'],
      ['--no-trunc'],
      ['-q', '--no-trunc'],
      ['--format', 'json'],
      ['--format', '{{json .}}'],
      ['--format', 'table'],
      ['--format', 'raw'],
      ['-q', '--format', 'raw'],
      ['-q', '--format', 'table'],
      ['-q', '--format', '{{.Name}}'],
      ['--format', 'table {{.ID}}\t{{.Name}}\t{{.CreatedAt}}\t{{.IPv4}}\t{{.IPv6}}\t{{.Internal}}\t{{.Labels}}\t{{.Label "tier"}}'],
      ['--format', '{{.Name}}: {{.Driver}}/{{.Scope}} {{.Labels}}'],
      ['--format', '{{.Nope}}'],
      ['--format', 'table {{.Nope}}'],
      ['--format', '{{'],
      ['-f', 'name=net', '-f', 'driver=bridge'],
      ['--filter', ' Name = net1 '],
      ['-f', 'type=custom', '--format', '{{.Name}}'],
      ['-f', 'type=builtin'],
      ['-f', 'dangling=true', '-q'],
      ['-f', 'label=tier=db'],
      ['-f', 'label=only'],
      ['-f', 'driver=null'],
      ['-f', 'nope=1'],
    ];
    for (const flags of cases) {
      it(['ls', ...flags].join(' '), async () => {
        await sameAsDocker(['network', 'ls', ...flags]);
      });
    }

    it("{{json .}} escapes <, > and & as docker's MarshalJSON does", async () => {
      await docker('network', 'create', '--label', 'html=<a&b>', 'htmlnet');
      try {
        const r = await sameAsDocker(['network', 'ls', '-f', 'name=htmlnet', '--format', 'json']);
        assert.match(r.stdout, /"Labels":"html=\\u003ca\\u0026b\\u003e"/);
      } finally {
        await removeNetworks('htmlnet');
      }
    });

    it('the alias list, and an id prefix filter', async () => {
      await sameAsDocker(['network', 'list']);
      const id = (await docker('network', 'inspect', '-f', '{{.Id}}', 'net9')).trim();
      assert.equal((await sameAsDocker(['network', 'ls', '-f', `id=${id.slice(0, 6)}`, '--format', '{{.Name}}'])).stdout, 'net9\n');
    });
  });

  describe('inspect', () => {
    before(async () => {
      await docker('network', 'create', '--label', 'b=2', '--label', 'a=1', '-o', 'com.docker.network.driver.mtu=1400', '--subnet', '10.124.0.0/24', '--attachable', 'insp');
    });

    after(async () => {
      await removeNetworks('insp');
    });

    const cases = [
      ['insp'],
      ['bridge', 'busy', 'host', 'none'],
      ['insp', 'nope', 'bridge'],
      ['nope'],
      ['-v', 'busy'],
      ['-f', 'json', 'insp', 'busy'],
      // The typed object first: Created a time, IPAM.Config structs, Labels a map of strings.
      ['-f', '{{.Name}} {{.ID}} {{.Created}} {{.IPAM.Config}} {{.Labels}} {{.Labels.nope}} {{json .Options}}', 'insp', 'nope', 'busy'],
      ['-f', '{{json .}}', 'bridge', 'busy', 'insp'],
      ['-f', '{{.}}', 'host', 'insp'],
      ['-f', '{{.IPAM.Options}}|{{json .IPAM.Options}}|{{.ConfigFrom}}|{{.Peers}}|{{json .Peers}}|{{.Services}}|{{json .Services}}|{{json .Created}}|{{json .IPAM}}', 'bridge', 'insp'],
      ['-f', '{{range $id, $e := .Containers}}{{$e.Name}} {{$e}}{{end}}|{{json .Containers}}|{{.Containers}}', 'busy'],
      ['-f', '{{index .Labels "a"}} {{range $k, $v := .Labels}}{{$k}}={{$v}};{{end}}', 'insp'],
      // Then the raw JSON, with missingkey=error.
      ['-f', '{{.Id}} {{.Created}} {{.IPAM.Config}}', 'insp'],
      ['-f', '{{.Nope}}', 'insp'],
      ['-f', '{{.Id}} {{.Nope}}', 'insp', 'bridge'],
      ['-f', '{{', 'insp'],
    ];
    for (const flags of cases) {
      it(['inspect', ...flags].join(' '), async () => {
        await sameAsDocker(['network', 'inspect', ...flags]);
      });
    }
  });

  describe('create', () => {
    /**
     * Creates `name` with `flags` through berth, then again through docker, and compares what
     * they print (an id each) and what the daemon made of them (but the id and time).
     */
    async function createdAlike(flags: string[]): Promise<void> {
      const made: string[] = [];
      for (const cli of ['berth', 'docker'] as const) {
        await removeNetworks('made');
        const args = ['network', 'create', ...flags, 'made'];
        const r = cli === 'berth' ? await fixture.daemon.berth(args, { timeoutMs: 30_000 }) : await fixture.daemon.docker(args, { timeoutMs: 30_000 });
        assert.equal(r.code, 0, `${cli} network create ${flags.join(' ')}: ${r.stderr}`);
        assert.match(r.stdout, /^[0-9a-f]{64}\n$/);
        assert.equal(r.stderr, '');
        assert.equal(await docker('network', 'inspect', '-f', '{{.Id}}', 'made'), r.stdout);
        const [n] = JSON.parse(await docker('network', 'inspect', 'made')) as Array<Record<string, unknown>>;
        made.push(JSON.stringify({ ...n, Id: '', Created: '' }));
      }
      assert.equal(made[0], made[1]);
      await removeNetworks('made');
    }

    it('prints the new network id; the network is the one docker makes with the same options', async () => {
      await createdAlike([]);
      await createdAlike(['-d', 'bridge', '--internal', '--attachable', '--label', 'app=web', '--label', 'bare', '-o', 'com.docker.network.driver.mtu=1400', '--subnet', '10.125.0.0/24', '--gateway', '10.125.0.254']);
      await createdAlike(['--ipv4=false', '--ipv6', '--subnet', '10.127.0.0/24', '--ip-range', '10.127.0.128/25', '--aux-address', 'host1=10.127.0.5', '--ipam-opt', 'a=b', '--scope', 'local']);
    });

    const failures = [
      ['busy'],
      ['-d', 'nodriver', 'x'],
      ['-d', 'host', 'x'],
      ['bad@name'],
      ['--subnet', '10.0.0.0/99', 'x'],
      ['--gateway', '10.0.0.1', 'x'],
      ['--ip-range', '10.0.0.0/25', 'x'],
      ['--subnet', '10.56.0.0/24', '--gateway', '10.57.0.1', 'x'],
      ['--subnet', '10.56.0.0/24,10.56.0.0/25', 'x'],
      ['--subnet', '10.56.0.0/24', '--subnet', 'bad', 'x'],
      ['--subnet', 'bad', '--subnet', '10.56.0.0/24', 'x'],
      ['--subnet', '10.56.0.0/24', '--gateway', 'bad/x', 'x'],
      ['--subnet', '10.56.0.0/24', '--ip-range', '10.57.0.0/25', 'x'],
      ['--subnet', '10.56.0.0/24', '--ip-range', '10.56.0.0/25', '--ip-range', '10.56.0.128/25', 'x'],
      ['--subnet', '10.56.0.0/24', '--gateway', '10.56.0.1', '--gateway', '10.56.0.2', 'x'],
      ['--subnet', '10.56.0.0/24', '--aux-address', 'a=10.57.0.1', 'x'],
    ];
    for (const flags of failures) {
      it(`refuses: create ${flags.join(' ')}`, async () => {
        const r = await sameAsDocker(['network', 'create', ...flags]);
        assert.notEqual(r.code, 0);
      });
    }
  });

  describe('rm', () => {
    const twoNetworks = async () => {
      await removeNetworks('gone1', 'gone2');
      await docker('network', 'create', 'gone1');
      await docker('network', 'create', 'gone2');
    };

    after(async () => {
      await removeNetworks('gone1', 'gone2');
    });

    it('removes each network it is given, printing its name; reports the others and exits 1', async () => {
      const r = await sameAsDockerFrom(twoNetworks, ['network', 'rm', 'gone1', 'nope', 'gone2', 'bridge']);
      assert.equal(r.stdout, 'gone1\ngone2\n');
      assert.equal(r.code, 1);
      await sameAsDockerFrom(twoNetworks, ['network', 'remove', 'gone1', 'gone2']);
    });

    it('-f: a network that does not exist is no error', async () => {
      await sameAsDockerFrom(twoNetworks, ['network', 'rm', '-f', 'nope', 'gone1']);
      await sameAsDocker(['network', 'rm', '-f', 'nope']);
      await sameAsDocker(['network', 'rm', '--force', 'nope', 'host']);
    });

    it('refuses missing, predefined and in-use networks', async () => {
      await sameAsDocker(['network', 'rm', 'nope']);
      await sameAsDocker(['network', 'rm', 'bridge', 'host', 'none']);
      const r = await sameAsDocker(['network', 'rm', 'busy']);
      assert.match(r.stderr, /has active endpoints/);
    });
  });

  describe('prune', () => {
    const unused = async () => {
      await removeNetworks('unused1', 'unused2', 'kept');
      await docker('network', 'create', '--label', 'prune=yes', 'unused1');
      await docker('network', 'create', '--label', 'prune=yes', 'unused2');
      await docker('network', 'create', 'kept');
    };

    after(async () => {
      await removeNetworks('unused1', 'unused2', 'kept');
    });

    it('asks first; anything but y leaves the networks', async () => {
      for (const answer of ['n\n', 'yes\n', '\n', '']) {
        const r = await sameAsDockerFrom(unused, ['network', 'prune', '--filter', 'label=prune=yes'], answer);
        assert.equal(r.stdout, 'WARNING! This will remove all custom networks not used by at least one container.\nAre you sure you want to continue? [y/N] ');
      }
      assert.match(await docker('network', 'ls', '--format', '{{.Name}}'), /unused1/);
    });

    it('removes the unused networks it matches and names them', async () => {
      const r = await sameAsDockerFrom(unused, ['network', 'prune', '--filter', 'label=prune=yes'], 'y\n');
      assert.match(r.stdout, /\[y\/N\] Deleted Networks:\nunused1\nunused2\n\n$/);
      await sameAsDockerFrom(unused, ['network', 'prune', '-f', '--filter', 'label!=prune']);
      // Nothing left to prune: no output at all.
      await sameAsDocker(['network', 'prune', '-f', '--filter', 'label=prune=never']);
      await sameAsDocker(['network', 'prune', '-f', '--filter', 'nope=1']);
    });
  });

  describe('connect and disconnect', () => {
    before(async () => {
      await docker('network', 'create', 'side');
    });

    after(async () => {
      await fixture.daemon.docker(['network', 'disconnect', '-f', 'side', 'stopped']);
      await removeNetworks('side');
    });

    const networksOf = async (container: string) => docker('inspect', '-f', '{{range $name, $e := .NetworkSettings.Networks}}{{$name}} {{end}}', container);
    const disconnected = async () => {
      await fixture.daemon.docker(['network', 'disconnect', 'side', 'stopped']);
    };
    const connected = async () => {
      await disconnected();
      await docker('network', 'connect', 'side', 'stopped');
    };

    it('connects a stopped container, with aliases, and prints nothing', async () => {
      const r = await sameAsDockerFrom(disconnected, ['network', 'connect', '--alias', 'one', '--alias', 'two,three', 'side', 'stopped']);
      assert.deepEqual(r, { code: 0, stdout: '', stderr: '' });
      assert.match(await networksOf('stopped'), /\bside\b/);
    });

    it('disconnects a stopped container, with or without -f', async () => {
      const r = await sameAsDockerFrom(connected, ['network', 'disconnect', 'side', 'stopped']);
      assert.deepEqual(r, { code: 0, stdout: '', stderr: '' });
      assert.doesNotMatch(await networksOf('stopped'), /\bside\b/);
      await sameAsDockerFrom(connected, ['network', 'disconnect', '-f', 'side', 'stopped']);
    });

    it('passes on what the daemon refuses', async () => {
      await disconnected();
      await sameAsDocker(['network', 'disconnect', 'side', 'stopped']);
      await sameAsDocker(['network', 'connect', 'nope', 'stopped']);
      await sameAsDocker(['network', 'connect', 'side', 'nope']);
      await sameAsDocker(['network', 'disconnect', '-f', 'nope', 'stopped']);
      await sameAsDocker(['network', 'connect', '--driver-opt', 'bad', 'side', 'stopped']);
    });

    it('connects and disconnects a running container', async () => {
      const off = async () => {
        await fixture.daemon.docker(['network', 'disconnect', 'side', 'running']);
      };
      const on = async () => {
        await off();
        await docker('network', 'connect', 'side', 'running');
      };
      assert.deepEqual(await sameAsDockerFrom(off, ['network', 'connect', 'side', 'running']), { code: 0, stdout: '', stderr: '' });
      assert.match(await networksOf('running'), /\bside\b/);
      const again = await sameAsDocker(['network', 'connect', 'side', 'running']);
      assert.match(again.stderr, /endpoint with name running already exists in network side/);
      assert.deepEqual(await sameAsDockerFrom(on, ['network', 'disconnect', 'side', 'running']), { code: 0, stdout: '', stderr: '' });
      assert.doesNotMatch(await networksOf('running'), /\bside\b/);
      // Off the network it started on, and back.
      const onBusy = async () => {
        await fixture.daemon.docker(['network', 'connect', 'busy', 'running']);
      };
      assert.deepEqual(await sameAsDockerFrom(onBusy, ['network', 'disconnect', 'busy', 'running']), { code: 0, stdout: '', stderr: '' });
      await onBusy();
      assert.match(await networksOf('running'), /\bbusy\b/);
    });
  });
});
