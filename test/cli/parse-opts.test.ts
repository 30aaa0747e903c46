// run/create flags into Config/HostConfig/NetworkingConfig: docker's values, docker's
// messages, and (where the docker CLI is installed) the very body docker sends.
import * as assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseArgs, UsageError, type CommandSpec } from '../../src/cli/args.js';
import { ExitError, type CliContext } from '../../src/cli/command.js';
import { createCommand } from '../../src/cli/commands/run.js';
import {
  CONTAINER_FLAGS,
  CREATE_FLAGS,
  ContainerOptsError,
  createRequestBody,
  parseContainerOptions,
  parseCpus,
  parseGoDuration,
  parseKeyValueFile,
  parsePortSpecs,
  parseUlimit,
  parseVolume,
  sortedFlags,
  type OptsEnvironment,
  type ParsedContainer,
} from '../../src/cli/parse-opts.js';
import { EngineClient } from '../../src/client/engine-client.js';

const spec: CommandSpec = { usage: 'create [OPTIONS] IMAGE [COMMAND] [ARG...]', description: '', interspersed: false, flags: sortedFlags(CONTAINER_FLAGS, CREATE_FLAGS) };

const files: Record<string, string> = {
  '/env.list': 'A=1\n# comment\n  B\nUNSET\n',
  '/labels': 'l1=x\nl2\n',
  '/bad.env': 'has space=1\n',
  '/seccomp.json': '{\n  "defaultAction": "SCMP_ACT_ALLOW"\n}\n',
};

const env: OptsEnvironment = {
  lookupEnv: (name) => ({ B: 'bee', HOME: '/root' })[name],
  cwd: () => '/work/dir',
  readFile: (path) => {
    const text = files[path];
    if (text === undefined) throw Object.assign(new Error(`ENOENT: ${path}`), { code: 'ENOENT' });
    return Buffer.from(text);
  },
  consoleSize: () => [0, 0],
};

function parse(...argv: string[]): ParsedContainer {
  return parseContainerOptions(parseArgs(spec, argv, 'create'), env);
}

function failure(argv: string[]): Error {
  try {
    parse(...argv);
  } catch (err) {
    return err as Error;
  }
  assert.fail(`create ${argv.join(' ')} was accepted`);
}

describe('parse-opts: defaults', () => {
  it('a bare image attaches stdout and stderr and sends docker zero values', () => {
    const p = parse('busybox');
    const body = createRequestBody(p) as unknown as Record<string, unknown>;
    assert.equal(body['Image'], 'busybox');
    assert.equal(body['Cmd'], null);
    assert.equal(body['Env'], null);
    assert.equal(body['Entrypoint'], null);
    assert.deepEqual(body['Labels'], {});
    assert.deepEqual(body['Volumes'], {});
    assert.equal(p.config.AttachStdin, false);
    assert.equal(p.config.AttachStdout, true);
    assert.equal(p.config.AttachStderr, true);
    assert.equal('ExposedPorts' in body, false);
    assert.equal('StopTimeout' in body, false);
    assert.deepEqual(p.hostConfig.RestartPolicy, { Name: 'no', MaximumRetryCount: 0 });
    assert.equal(p.hostConfig.NetworkMode, 'default');
    assert.equal(p.hostConfig.MemorySwappiness, -1);
    assert.equal('Init' in p.hostConfig, false);
    assert.deepEqual(p.hostConfig.Dns, []);
    assert.deepEqual(Object.keys(p.networkingConfig.EndpointsConfig), ['default']);
  });

  it('the command follows the image, flags stop at the image', () => {
    const p = parse('-e', 'X=1', 'busybox', 'sh', '-c', 'echo -e hi');
    assert.deepEqual(p.config.Cmd, ['sh', '-c', 'echo -e hi']);
    assert.deepEqual(p.config.Env, ['X=1']);
  });
});

describe('parse-opts: flags into the config', () => {
  it('-i -t: stdin attached, open, closed after the first client', () => {
    const p = parse('-it', 'busybox');
    assert.equal(p.config.Tty, true);
    assert.equal(p.config.OpenStdin, true);
    assert.equal(p.config.AttachStdin, true);
    assert.equal(p.config.StdinOnce, true);
  });

  it('-a picks the streams, case-insensitively', () => {
    const p = parse('-a', 'STDERR', 'busybox');
    assert.deepEqual([p.config.AttachStdin, p.config.AttachStdout, p.config.AttachStderr], [false, false, true]);
    assert.deepEqual(p.attach, ['stderr']);
  });

  it('env: files first, then -e; NAME alone takes the value from the environment', () => {
    const p = parse('--env-file', '/env.list', '-e', 'B', '-e', 'C', '-e', 'X=1', 'busybox');
    assert.deepEqual(p.config.Env, ['A=1', 'B=bee', 'B=bee', 'C', 'X=1']);
  });

  it('labels from -l and --label-file', () => {
    // A label-file line without "=" is dropped (no lookup, unlike env files).
    assert.deepEqual(parse('-l', 'a=b', '-l', 'c', '--label-file', '/labels', 'busybox').config.Labels, { l1: 'x', a: 'b', c: '' });
  });

  it('--entrypoint= resets the entrypoint to [""]', () => {
    assert.deepEqual(parse('--entrypoint=', 'busybox').config.Entrypoint, ['']);
    assert.deepEqual(parse('--entrypoint', '/bin/sh', 'busybox').config.Entrypoint, ['/bin/sh']);
  });

  it('restart policies, stop signal and timeout, init only when given', () => {
    const p = parse('--restart', 'on-failure:3', '--stop-signal', 'SIGUSR1', '--stop-timeout', '0', '--init=false', 'busybox');
    assert.deepEqual(p.hostConfig.RestartPolicy, { Name: 'on-failure', MaximumRetryCount: 3 });
    assert.equal(p.config.StopSignal, 'SIGUSR1');
    assert.equal(p.config.StopTimeout, 0);
    assert.equal(p.hostConfig.Init, false);
  });

  it('resources: sizes in binary units, CPUs in nano-CPUs, ulimits sorted', () => {
    const p = parse('-m', '512m', '--memory-swap', '-1', '--memory-reservation', '1.5g', '--shm-size', '64MiB', '--cpus', '1.5', '-c', '512',
      '--pids-limit', '-1', '--ulimit', 'nproc=10', '--ulimit', 'nofile=1024:2048', '--oom-kill-disable', 'busybox');
    assert.equal(p.hostConfig.Memory, 536870912);
    assert.equal(p.hostConfig.MemorySwap, -1);
    assert.equal(p.hostConfig.MemoryReservation, 1610612736);
    assert.equal(p.hostConfig.ShmSize, 67108864);
    assert.equal(p.hostConfig.NanoCpus, 1_500_000_000);
    assert.equal(p.hostConfig.CpuShares, 512);
    assert.equal(p.hostConfig.PidsLimit, -1);
    assert.equal(p.hostConfig.OomKillDisable, true);
    assert.deepEqual(p.hostConfig.Ulimits, [{ Name: 'nofile', Hard: 2048, Soft: 1024 }, { Name: 'nproc', Hard: 10, Soft: 10 }]);
  });

  it('capabilities are normalised, sorted and unique; security options pass through, seccomp files are read', () => {
    const p = parse('--cap-add', 'net_admin', '--cap-add', 'CAP_NET_ADMIN', '--cap-add', 'sys_time', '--cap-drop', 'all',
      '--security-opt', 'no-new-privileges', '--security-opt', 'seccomp=/seccomp.json', 'busybox');
    assert.deepEqual(p.hostConfig.CapAdd, ['CAP_NET_ADMIN', 'CAP_SYS_TIME']);
    assert.deepEqual(p.hostConfig.CapDrop, ['ALL']);
    assert.deepEqual(p.hostConfig.SecurityOpt, ['no-new-privileges', 'seccomp={"defaultAction":"SCMP_ACT_ALLOW"}']);
    const unconfined = parse('--security-opt', 'systempaths=unconfined', 'busybox').hostConfig;
    assert.deepEqual([unconfined.SecurityOpt, unconfined.MaskedPaths, unconfined.ReadonlyPaths], [null, [], []]);
  });

  it('volumes: bind sources (relative ones made absolute) into Binds, the rest into Volumes', () => {
    const p = parse('-v', '/tmp:/data:ro', '-v', './rel:/rel', '-v', '/anon', '-v', 'named:/named', 'busybox');
    assert.deepEqual(p.hostConfig.Binds, ['/tmp:/data:ro', '/work/dir/rel:/rel', 'named:/named']);
    assert.deepEqual(p.config.Volumes, { '/anon': {} });
  });

  it('--mount and --tmpfs', () => {
    const p = parse('--mount', 'type=bind,src=./x,dst=/m,readonly,bind-propagation=rslave', '--mount', 'type=tmpfs,dst=/t,tmpfs-size=1m,tmpfs-mode=1770',
      '--tmpfs', '/run:size=1m', '--tmpfs', '/x', 'busybox');
    assert.deepEqual(p.hostConfig.Mounts, [
      { Type: 'bind', Source: '/work/dir/x', Target: '/m', ReadOnly: true, BindOptions: { Propagation: 'rslave' } },
      { Type: 'tmpfs', Target: '/t', TmpfsOptions: { SizeBytes: 1048576, Mode: 0o1770 } },
    ]);
    assert.deepEqual(p.hostConfig.Tmpfs, { '/run': 'size=1m', '/x': '' });
  });

  it('ports: -p bindings and exposed ports, --expose ranges, -P', () => {
    const p = parse('-p', '8080:80', '-p', '127.0.0.1:9000-9001:90-91/udp', '-p', '[::1]:53:53/udp', '-p', '3000', '--expose', '7000-7001', '-P', 'busybox');
    assert.deepEqual(p.hostConfig.PortBindings, {
      '80/tcp': [{ HostIp: '', HostPort: '8080' }],
      '90/udp': [{ HostIp: '127.0.0.1', HostPort: '9000' }],
      '91/udp': [{ HostIp: '127.0.0.1', HostPort: '9001' }],
      '53/udp': [{ HostIp: '::1', HostPort: '53' }],
      '3000/tcp': [{ HostIp: '', HostPort: '' }],
    });
    assert.deepEqual(Object.keys(p.config.ExposedPorts!).sort(), ['3000/tcp', '53/udp', '7000/tcp', '7001/tcp', '80/tcp', '90/udp', '91/udp']);
    assert.equal(p.hostConfig.PublishAllPorts, true);
    assert.deepEqual(parsePortSpecs(['8000-8010:80']).bindings, { '80/tcp': [{ HostIp: '', HostPort: '8000-8010' }] });
  });

  it('networks: a plain network has no endpoint config; options make one', () => {
    assert.deepEqual(parse('--network', 'host', 'busybox').networkingConfig.EndpointsConfig, {});
    assert.equal(parse('--net', 'none', 'busybox').hostConfig.NetworkMode, 'none');
    const p = parse('--network', 'name=mynet,alias=web,ip=10.0.0.5', 'busybox');
    assert.equal(p.hostConfig.NetworkMode, 'mynet');
    const ep = p.networkingConfig.EndpointsConfig['mynet']!;
    assert.deepEqual([ep.Aliases, ep.IPAMConfig], [['web'], { IPv4Address: '10.0.0.5' }]);
  });

  it('hosts, DNS, devices, sysctls, namespaces', () => {
    const p = parse('--add-host', 'h=[::1]', '--add-host', 'g:host-gateway', '--dns', '8.8.8.8', '--dns-search', 'example.com', '--dns-option', 'ndots:2',
      '--device', '/dev/null:/dev/mynull:r', '--device', '/dev/zero', '--sysctl', 'net.ipv4.ip_forward=1', '--ipc', 'host', '--pid', 'container:x', '--uts', 'host', 'busybox');
    assert.deepEqual(p.hostConfig.ExtraHosts, ['h:::1', 'g:host-gateway']);
    assert.deepEqual([p.hostConfig.Dns, p.hostConfig.DnsSearch, p.hostConfig.DnsOptions], [['8.8.8.8'], ['example.com'], ['ndots:2']]);
    assert.deepEqual(p.hostConfig.Devices, [
      { PathOnHost: '/dev/null', PathInContainer: '/dev/mynull', CgroupPermissions: 'r' },
      { PathOnHost: '/dev/zero', PathInContainer: '/dev/zero', CgroupPermissions: 'rwm' },
    ]);
    assert.deepEqual(p.hostConfig.Sysctls, { 'net.ipv4.ip_forward': '1' });
    assert.deepEqual([p.hostConfig.IpcMode, p.hostConfig.PidMode, p.hostConfig.UTSMode], ['host', 'container:x', 'host']);
  });

  it('health checks: durations in nanoseconds, --no-healthcheck', () => {
    const h = parse('--health-cmd', 'true', '--health-interval', '1m30s', '--health-retries', '3', 'busybox').config.Healthcheck;
    assert.deepEqual(h, { Test: ['CMD-SHELL', 'true'], Interval: 90e9, Retries: 3 });
    assert.deepEqual(parse('--no-healthcheck', 'busybox').config.Healthcheck, { Test: ['NONE'] });
  });
});

describe('parse-opts: docker messages', () => {
  const flagCases: Array<[string[], string]> = [
    [['-m', 'x'], `invalid argument "x" for "-m, --memory" flag: invalid size: 'x'`],
    [['--memory-swap', '1q'], `invalid argument "1q" for "--memory-swap" flag: invalid suffix: 'q'`],
    [['--cpus', 'abc'], 'invalid argument "abc" for "--cpus" flag: failed to parse abc as a rational number'],
    [['--cpus', '0.0000000001'], 'invalid argument "0.0000000001" for "--cpus" flag: value is too precise'],
    [['--ulimit', 'foo'], 'invalid argument "foo" for "--ulimit" flag: invalid ulimit argument: foo'],
    [['--ulimit', 'bar=1'], 'invalid argument "bar=1" for "--ulimit" flag: invalid ulimit type: bar'],
    [['--ulimit', 'nofile=2:1'], 'invalid argument "nofile=2:1" for "--ulimit" flag: ulimit soft limit must be less than or equal to hard limit: 2 > 1'],
    [['-a', 'foo'], 'invalid argument "foo" for "-a, --attach" flag: valid streams are STDIN, STDOUT and STDERR'],
    [['-e', '=a'], 'invalid argument "=a" for "-e, --env" flag: invalid environment variable: =a'],
    [['-l', '=x'], `invalid argument "=x" for "-l, --label" flag: invalid label '=x': empty name`],
    [['--add-host', 'foo'], 'invalid argument "foo" for "--add-host" flag: bad format for add-host: "foo"'],
    [['--add-host', 'a:b'], 'invalid argument "a:b" for "--add-host" flag: invalid IP address in add-host: "b"'],
    [['--dns', 'foo'], 'invalid argument "foo" for "--dns" flag: IP address is not correctly formatted: foo'],
    [['--sysctl', 'kernel.foo=1'], `invalid argument "kernel.foo=1" for "--sysctl" flag: sysctl 'kernel.foo=1' is not allowed`],
    [['--mount', 'type=bind'], 'invalid argument "type=bind" for "--mount" flag: target is required'],
    [['--health-interval', 'x'], 'invalid argument "x" for "--health-interval" flag: time: invalid duration "x"'],
    [['--blkio-weight', '70000'], 'invalid argument "70000" for "--blkio-weight" flag: strconv.ParseUint: parsing "70000": value out of range'],
  ];
  for (const [argv, message] of flagCases) {
    it(`${argv.join(' ')}: a flag error (exit 125)`, () => {
      const err = failure([...argv, 'busybox']);
      assert.ok(err instanceof UsageError, String(err));
      assert.equal(err.message, message);
    });
  }

  const optsCases: Array<[string[], string]> = [
    [['--rm', '--restart', 'always'], 'conflicting options: cannot specify both --restart and --rm'],
    [['--restart', 'on-failure:x'], 'invalid restart policy format: maximum retry count must be an integer'],
    [['--restart', ':3'], 'invalid restart policy format: no policy provided before colon'],
    [['-p', 'abc'], 'invalid containerPort: abc'],
    [['-p', '1.2.3:80:80'], 'invalid IP address: 1.2.3'],
    [['-p', '80-81:90-93'], 'invalid ranges specified for container and host Ports: 90-93 and 80-81'],
    [['-p', '80/xyz'], 'invalid proto: xyz'],
    [['--expose', '1:2'], 'invalid port format for --expose: 1:2'],
    [['--expose', 'abc'], 'invalid range format for --expose: abc, error: strconv.ParseUint: parsing "abc": invalid syntax'],
    [['--env-file', '/nonexist'], 'open /nonexist: no such file or directory'],
    [['--env-file', '/bad.env'], "invalid env file (/bad.env): variable 'has space' contains whitespaces"],
    [['--pid', 'foo'], '--pid: invalid PID mode'],
    [['--uts', 'foo'], '--uts: invalid UTS mode'],
    [['--security-opt', 'foo'], 'Invalid --security-opt: "foo"'],
    [['--device', 'relative'], 'relative is not an absolute path'],
    [['--device', '/a:/b:xyz'], 'bad mode specified: xyz'],
    [['--memory-swappiness', '200'], 'invalid value: 200. Valid memory swappiness range is 0-100'],
    [['--network', 'a', '--network', 'host'], 'conflicting options: cannot attach both user-defined and non-user-defined network-modes'],
    [['--network-alias', 'x'], 'network-scoped aliases are only supported for user-defined networks'],
    [['--mac-address', 'zz'], 'zz is not a valid mac address'],
    [['-v', ':::'], 'invalid spec: :::: empty section between colons'],
    [['--log-driver', 'none', '--log-opt', 'a=b'], 'invalid logging opts for driver none'],
    [['--no-healthcheck', '--health-cmd', 'x'], '--no-healthcheck conflicts with --health-* options'],
  ];
  for (const [argv, message] of optsCases) {
    it(`${argv.join(' ')}: ${message}`, () => {
      const err = failure([...argv, 'busybox']);
      assert.ok(err instanceof ContainerOptsError, String(err));
      assert.equal(err.message, message);
    });
  }
});

describe('parse-opts: docker value parsers', () => {
  it('parseCpus takes decimals, fractions and exponents', () => {
    assert.equal(parseCpus('2'), 2e9);
    assert.equal(parseCpus('0.5'), 5e8);
    assert.equal(parseCpus('3/2'), 1.5e9);
    assert.equal(parseCpus('1e-3'), 1e6);
  });

  it('parseGoDuration as time.ParseDuration', () => {
    assert.equal(parseGoDuration('1h30m'), 5400e9);
    assert.equal(parseGoDuration('1.5s'), 1.5e9);
    assert.equal(parseGoDuration('-2ms'), -2e6);
    assert.equal(parseGoDuration('0'), 0);
    assert.throws(() => parseGoDuration('10'), /missing unit in duration "10"/);
    assert.throws(() => parseGoDuration('3x'), /unknown unit "x" in duration "3x"/);
  });

  it('parseUlimit: soft defaults the hard limit, -1 is unlimited', () => {
    assert.deepEqual(parseUlimit('nofile=5'), { Name: 'nofile', Hard: 5, Soft: 5 });
    assert.deepEqual(parseUlimit('core=-1:-1'), { Name: 'core', Hard: -1, Soft: -1 });
    assert.throws(() => parseUlimit('core=-1:5'), /soft: -1 \(unlimited\), hard: 5/);
  });

  it('parseVolume reads docker specs, drive letters included', () => {
    assert.deepEqual(parseVolume('/a:/b:ro'), { source: '/a', target: '/b', type: 'bind' });
    assert.deepEqual(parseVolume('vol:/b'), { source: 'vol', target: '/b', type: 'volume' });
    assert.deepEqual(parseVolume('/only'), { source: '', target: '/only', type: 'volume' });
    assert.throws(() => parseVolume('/a:/b:ro:x'), /too many colons/);
  });

  it('env files: comments, blank lines, BOM, names looked up', () => {
    const out = parseKeyValueFile(Buffer.from('\ufeffA=1\n\n# x\n  B\nC\nD= spaced \n'), env);
    assert.deepEqual(out, ['A=1', 'B=bee', 'D= spaced ']);
    assert.throws(() => parseKeyValueFile(Buffer.from('=x\n')), /no variable name on line '=x'/);
  });
});

// --- the body docker sends, compared field by field with berth's ------------------------

const hasDocker = spawnSync('docker', ['--version']).status === 0;

describe('parse-opts: the same create request as the docker CLI', { skip: !hasDocker && 'the docker CLI is not installed' }, () => {
  let dir: string;
  let server: Server;
  let socket: string;
  const bodies: Array<{ url: string; body: unknown }> = [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'berth-opts-'));
    socket = join(dir, 'd.sock');
    writeFileSync(join(dir, 'env.list'), 'A=1\n# c\nB\n');
    writeFileSync(join(dir, 'labels'), 'l1=x\n');
    server = createServer((req, res) => {
      let text = '';
      req.on('data', (c: Buffer) => (text += c.toString()));
      req.on('end', () => {
        res.setHeader('Api-Version', '1.47');
        res.setHeader('Ostype', 'linux');
        if (req.url?.includes('/containers/create')) {
          bodies.push({ url: req.url.replace(/^\/v[\d.]+/, ''), body: JSON.parse(text) as unknown });
          res.writeHead(201, { 'Content-Type': 'application/json' }).end(JSON.stringify({ Id: 'f'.repeat(64), Warnings: [] }));
          return;
        }
        res.end(req.url?.endsWith('/_ping') ? 'OK' : '{}');
      });
    });
    await new Promise<void>((resolve) => server.listen(socket, resolve));
  });

  after(() => {
    server?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Go's maps have no order: Binds come out shuffled, so compare them sorted. */
  const normalise = (b: unknown): unknown => {
    const copy = JSON.parse(JSON.stringify(b)) as { HostConfig?: { Binds?: string[] | null } };
    if (copy.HostConfig?.Binds) copy.HostConfig.Binds.sort();
    return copy;
  };

  const cases: string[][] = [
    ['busybox', 'echo', 'hi'],
    ['--name', 'web', '-it', '--rm', '-w', '/tmp', '-u', '1000:1000', '-h', 'host1', 'alpine:3.20', 'sh'],
    ['-e', 'X=1', '-e', 'BERTH_TEST_B', '--env-file', 'env.list', '-l', 'a=b', '--label-file', 'labels', '-a', 'stdout', 'busybox'],
    ['--restart', 'on-failure:3', '--stop-signal', 'SIGUSR1', '--stop-timeout', '5', '--read-only', '--init', '--privileged', 'busybox'],
    ['--cap-add', 'NET_ADMIN', '--cap-drop', 'ALL', '--security-opt', 'no-new-privileges', '--security-opt', 'systempaths=unconfined', 'busybox'],
    ['-m', '512m', '--memory-swap', '1g', '--memory-reservation', '256m', '--cpus', '1.5', '--cpu-shares', '512', '--cpu-period', '100000',
      '--cpu-quota', '50000', '--cpuset-cpus', '0-1', '--pids-limit', '100', '--ulimit', 'nofile=1024:2048', '--ulimit', 'nproc=10',
      '--shm-size', '64m', '--oom-kill-disable', 'busybox'],
    ['--network', 'host', '--add-host', 'h:1.2.3.4', '--dns', '8.8.8.8', '--dns-search', 'example.com', '--dns-option', 'ndots:2', 'busybox'],
    ['--tmpfs', '/run:size=1m', '-v', '/tmp:/data:ro', '-v', './rel:/rel', '-v', '/anon', '-v', 'named:/named',
      '--mount', 'type=bind,src=/tmp,dst=/m,readonly', 'busybox'],
    ['-p', '8080:80', '-p', '127.0.0.1:9000-9001:90-91/udp', '-P', '--expose', '7000-7001', 'busybox'],
    ['--group-add', 'audio', '--sysctl', 'net.ipv4.ip_forward=1', '--device', '/dev/null:/dev/mynull:r', '--ipc', 'host', '--pid', 'host',
      '--uts', 'host', '--platform', 'linux/amd64', 'busybox'],
    ['--entrypoint=', '--health-cmd', 'true', '--health-interval', '5s', '--network', 'name=mynet,alias=a1', 'busybox'],
  ];

  for (const argv of cases) {
    it(argv.join(' '), async () => {
      bodies.length = 0;
      // Asynchronously: the recording daemon runs in this process.
      const r = await new Promise<{ status: number | null; stderr: string }>((resolve, reject) => {
        const child = spawn('docker', ['create', ...argv], { cwd: dir, env: { ...process.env, DOCKER_HOST: `unix://${socket}`, DOCKER_CONFIG: dir, BERTH_TEST_B: 'bee' } });
        let stderr = '';
        child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
        child.on('error', reject);
        child.on('close', (status) => resolve({ status, stderr }));
      });
      assert.equal(r.status, 0, r.stderr);
      const docker = bodies.pop();
      assert.ok(docker, 'docker sent no create request');

      const cwd = process.cwd();
      process.env['BERTH_TEST_B'] = 'bee';
      process.chdir(dir);
      let out = '';
      const ctx: CliContext = { client: new EngineClient(`unix://${socket}`), out: (t) => (out += t), err: () => undefined };
      try {
        assert.equal(await createCommand.run(ctx, argv, 'create'), 0);
      } finally {
        process.chdir(cwd);
        delete process.env['BERTH_TEST_B'];
      }
      assert.equal(out, `${'f'.repeat(64)}\n`);
      const berth = bodies.pop();
      assert.ok(berth, 'berth sent no create request');
      assert.equal(berth.url, docker.url);
      assert.deepEqual(normalise(berth.body), normalise(docker.body));
    });
  }

  it('a bad pull option is refused before anything is sent', async () => {
    const ctx: CliContext = { client: new EngineClient(`unix://${socket}`), out: () => undefined, err: () => undefined };
    await assert.rejects(createCommand.run(ctx, ['--pull', 'sometimes', 'busybox'], 'create'), (err: Error) => {
      assert.ok(err instanceof ExitError);
      assert.equal(err.exitCode, 125);
      assert.equal(err.message, `berth: invalid pull option: 'sometimes': must be one of "always", "missing" or "never"\n\nRun 'berth create --help' for more information`);
      return true;
    });
  });
});
