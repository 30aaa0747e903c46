/** The container endpoints: create, list, inspect, start, stop, kill, wait, attach, logs, ... */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { cpus } from 'node:os';
import { promisify } from 'node:util';
import type { Daemon } from '../../daemon/daemon.js';
import { containerStatus } from '../../util/units.js';
import { InvalidArgument, NotModified } from '../../errors/errors.js';
import { parseDetachKeys } from '../../containers/attach.js';
import type { ContainerRecord } from '../../containers/container.js';
import { endpointsConfig, networkName } from '../../containers/container-network.js';
import type { Endpoint } from '../../network/network-manager.js';
import type { CreateRequest, WaitCondition } from '../../containers/container-manager.js';
import { formatLogLine, readLogs } from '../../containers/log-reader.js';
import { frame, StdStream } from '../../containers/stdcopy.js';
import { processArgs } from '../../runtime/oci-spec.js';
import { CONFIG_DEFAULTS, labelsMatch } from './images.js';
import { checkFilterNames, compareVersions, parseFilters, queryBool, sendJson, type RequestContext, type Router } from '../router.js';

const run = promisify(execFile);

export function containerRoutes(router: Router, daemon: Daemon): void {
  const containers = daemon.containers;
  const noContent = (ctx: RequestContext, status = 204) => {
    ctx.res!.writeHead(status);
    ctx.res!.end();
  };

  router.add('POST', '/containers/create', async (ctx) => {
    const body = await ctx.json<CreateRequest>({} as CreateRequest);
    const platform = ctx.query.get('platform');
    if (platform && !/^linux(\/amd64)?$/.test(platform)) {
      throw new InvalidArgument(`image with reference ${body.Image} was found but does not match the specified platform: wanted ${platform}, actual: linux/amd64`);
    }
    const created = await containers.create(body, ctx.query.get('name') || undefined);
    sendJson(ctx.res!, 201, created);
  });

  router.add('GET', '/containers/json', async (ctx) => {
    const filters = parseFilters(ctx.query.get('filters'));
    checkFilterNames(filters, ['id', 'name', 'label', 'status', 'ancestor', 'exited', 'before', 'since', 'health', 'isolation', 'network', 'volume', 'publish', 'expose', 'is-task']);
    const all = queryBool(ctx.query, 'all');
    const limit = Number(ctx.query.get('limit') ?? '-1');
    const size = queryBool(ctx.query, 'size');
    let list = containers.all().sort((a, b) => b.created.localeCompare(a.created));
    const ancestors = await resolveAncestors(daemon, filters.get('ancestor'));
    list = list.filter((c) => matchesFilters(c, filters, ancestors));
    if (!all && limit <= 0 && !filters.has('status') && !filters.has('exited')) list = list.filter((c) => c.state.Running);
    if (limit > 0) list = list.slice(0, limit);
    const out = [];
    for (const c of list) out.push({ ...summary(daemon, c), ...(size ? await sizes(daemon, c) : {}) });
    sendJson(ctx.res!, 200, out);
  });

  router.add('GET', '/containers/{id}/json', async (ctx) => {
    const c = containers.get(ctx.params['id']!);
    sendJson(ctx.res!, 200, { ...inspect(daemon, c), ...(queryBool(ctx.query, 'size') ? await sizes(daemon, c) : {}) });
  });

  router.add('POST', '/containers/{id}/start', async (ctx) => {
    try {
      await containers.start(ctx.params['id']!);
    } catch (err) {
      if (err instanceof NotModified) return noContent(ctx, 304);
      throw err;
    }
    noContent(ctx);
  });

  router.add('POST', '/containers/{id}/stop', async (ctx) => {
    const t = ctx.query.get('t');
    try {
      await containers.stop(ctx.params['id']!, t === null || t === '' ? undefined : Number(t), ctx.query.get('signal') ?? undefined);
    } catch (err) {
      if (err instanceof NotModified) return noContent(ctx, 304);
      throw err;
    }
    noContent(ctx);
  });

  router.add('POST', '/containers/{id}/restart', async (ctx) => {
    const t = ctx.query.get('t');
    await containers.restart(ctx.params['id']!, t === null || t === '' ? undefined : Number(t), ctx.query.get('signal') ?? undefined);
    noContent(ctx);
  });

  router.add('POST', '/containers/{id}/kill', async (ctx) => {
    await containers.kill(ctx.params['id']!, ctx.query.get('signal') || 'SIGKILL');
    noContent(ctx);
  });

  router.add('DELETE', '/containers/{id}', async (ctx) => {
    await containers.remove(ctx.params['id']!, { force: queryBool(ctx.query, 'force'), volumes: queryBool(ctx.query, 'v') });
    noContent(ctx);
  });

  router.add('POST', '/containers/{id}/wait', async (ctx) => {
    const condition = (ctx.query.get('condition') || 'not-running') as WaitCondition;
    if (!['not-running', 'next-exit', 'removed'].includes(condition)) throw new InvalidArgument(`invalid condition: "${condition}"`);
    const waiting = containers.wait(ctx.params['id']!, condition);
    // The docker CLI waits before it starts the container: answer the headers now.
    const res = ctx.res!;
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.flushHeaders();
    const result = await waiting;
    res.end(`${JSON.stringify(result)}\n`);
  });

  router.add('POST', '/containers/{id}/attach', async (ctx) => {
    const c = containers.get(ctx.params['id']!);
    const q = ctx.query;
    const opts = {
      stdin: queryBool(q, 'stdin'),
      stdout: queryBool(q, 'stdout'),
      stderr: queryBool(q, 'stderr'),
      tty: c.config.Tty === true,
      detachKeys: parseDetachKeys(q.get('detachKeys')),
    };
    const contentType = opts.tty || compareVersions(ctx.version, '1.42') < 0 ? 'application/vnd.docker.raw-stream' : 'application/vnd.docker.multiplexed-stream';
    const socket = ctx.hijack(contentType);
    if (queryBool(q, 'logs')) await replayLogs(daemon, c, socket, opts);
    if (!queryBool(q, 'stream')) {
      socket.end();
      return;
    }
    const how = await containers.attach(c.id, socket, opts);
    if (how === 'detached') daemon.events.publish('container', 'detach', c.id, { name: c.name.slice(1) });
  });

  router.add('POST', '/containers/{id}/resize', async (ctx) => {
    await containers.resize(ctx.params['id']!, Number(ctx.query.get('h') ?? 0), Number(ctx.query.get('w') ?? 0));
    ctx.res!.writeHead(200);
    ctx.res!.end();
  });

  router.add('GET', '/containers/{id}/logs', async (ctx) => {
    const c = containers.get(ctx.params['id']!);
    const q = ctx.query;
    const stdout = queryBool(q, 'stdout');
    const stderr = queryBool(q, 'stderr');
    if (!stdout && !stderr) throw new InvalidArgument('Bad parameters: you must choose at least one stream');
    const tail = q.get('tail');
    const follow = queryBool(q, 'follow');
    const timestamps = queryBool(q, 'timestamps');
    const res = ctx.res!;
    const tty = c.config.Tty === true;
    res.writeHead(200, { 'Content-Type': tty ? 'application/vnd.docker.raw-stream' : 'application/vnd.docker.multiplexed-stream' });
    res.flushHeaders();
    const abort = new AbortController();
    res.on('close', () => abort.abort());
    const stopped = follow && c.state.Running ? containers.wait(c.id, 'next-exit').then(() => undefined) : Promise.resolve();
    for await (const entry of readLogs(
      containers.logPath(c.id),
      {
        stdout,
        stderr,
        follow: follow && c.state.Running,
        timestamps,
        tail: tail === null || tail === '' || tail === 'all' ? 'all' : Math.max(0, Number.parseInt(tail, 10) || 0),
        ...(q.get('since') ? { since: parseTimestamp(q.get('since')!) } : {}),
        ...(q.get('until') ? { until: parseTimestamp(q.get('until')!) } : {}),
      },
      abort.signal,
      stopped,
    )) {
      const line = formatLogLine(entry, timestamps);
      if (!res.write(tty ? line : frame(entry.stream === 'stderr' ? StdStream.Stderr : StdStream.Stdout, line))) {
        await new Promise((resolve) => res.once('drain', resolve));
      }
    }
    res.end();
  });

  router.add('POST', '/containers/{id}/pause', async (ctx) => {
    await containers.pause(ctx.params['id']!);
    noContent(ctx);
  });

  router.add('POST', '/containers/{id}/unpause', async (ctx) => {
    await containers.unpause(ctx.params['id']!);
    noContent(ctx);
  });

  router.add('POST', '/containers/{id}/rename', async (ctx) => {
    const name = ctx.query.get('name');
    if (!name) throw new InvalidArgument('Neither old nor new names may be empty');
    await containers.rename(ctx.params['id']!, name);
    noContent(ctx);
  });

  router.add('GET', '/containers/{id}/top', async (ctx) => {
    const c = containers.get(ctx.params['id']!);
    if (!c.state.Running) throw new InvalidArgument(`Container ${c.id} is not running`);
    const pids = new Set((await containers.runc.pids(c.id)).map(String));
    const args = (ctx.query.get('ps_args') || '-ef').split(/\s+/).filter(Boolean);
    const { stdout } = await run('ps', args, { maxBuffer: 16 * 1024 * 1024 });
    const lines = stdout.trimEnd().split('\n');
    const titles = lines[0]!.trim().split(/\s+/);
    const pidIndex = titles.indexOf('PID');
    if (pidIndex < 0) throw new InvalidArgument(`Couldn't find PID field in ps output`);
    const processes = lines.slice(1).flatMap((line) => {
      const fields = line.trim().split(/\s+/);
      if (!pids.has(fields[pidIndex]!)) return [];
      return [[...fields.slice(0, titles.length - 1), fields.slice(titles.length - 1).join(' ')]];
    });
    sendJson(ctx.res!, 200, { Titles: titles, Processes: processes });
  });

  router.add('GET', '/containers/{id}/stats', async (ctx) => {
    const c = containers.get(ctx.params['id']!);
    const stream = queryBool(ctx.query, 'stream', true) && !queryBool(ctx.query, 'one-shot');
    const res = ctx.res!;
    res.writeHead(200, { 'Content-Type': 'application/json' });
    let previous = await readStats(c);
    if (!stream) {
      if (!queryBool(ctx.query, 'one-shot')) {
        await new Promise((resolve) => setTimeout(resolve, 1000));
        const now = await readStats(containers.get(c.id));
        res.end(`${JSON.stringify(statsJson(c, now, previous))}\n`);
        return;
      }
      res.end(`${JSON.stringify(statsJson(c, previous, undefined))}\n`);
      return;
    }
    let open = true;
    res.on('close', () => (open = false));
    res.write(`${JSON.stringify(statsJson(c, previous, undefined))}\n`);
    while (open) {
      await new Promise((resolve) => setTimeout(resolve, 1000));
      if (!open) break;
      let current: ContainerRecord;
      try {
        current = containers.get(c.id);
      } catch {
        break;
      }
      const now = await readStats(current);
      res.write(`${JSON.stringify(statsJson(current, now, previous))}\n`);
      previous = now;
    }
    res.end();
  });

  router.add('POST', '/containers/prune', async (ctx) => {
    const filters = parseFilters(ctx.query.get('filters'));
    checkFilterNames(filters, ['label', 'label!', 'until']);
    const deleted: string[] = [];
    let reclaimed = 0;
    const until = filters.get('until')?.[0];
    for (const c of containers.all()) {
      if (c.state.Running || c.state.Restarting) continue;
      if (!labelsMatch(c.config.Labels ?? {}, filters.get('label'))) continue;
      if (filters.get('label!')?.some((l) => labelsMatch(c.config.Labels ?? {}, [l]))) continue;
      if (until && Date.parse(c.created) >= parseTimestamp(until) * 1000) continue;
      reclaimed += (await sizes(daemon, c)).SizeRw;
      await containers.remove(c.id);
      deleted.push(c.id);
    }
    sendJson(ctx.res!, 200, { ContainersDeleted: deleted.length ? deleted : null, SpaceReclaimed: reclaimed });
  });
}

function command(c: ContainerRecord): { path: string; args: string[] } {
  let args: string[] = [];
  try {
    args = processArgs(c.config);
  } catch {
    args = [];
  }
  if (c.hostConfig.Init) args = ['/sbin/docker-init', '--', ...args];
  return { path: args[0] ?? '', args: args.slice(1) };
}

/** A container as GET /containers/json lists it. */
export function summary(daemon: Daemon, c: ContainerRecord): Record<string, unknown> {
  const { path, args } = command(c);
  return {
    Id: c.id,
    Names: [c.name],
    Image: c.image,
    ImageID: c.imageId,
    Command: [path, ...args].join(' '),
    Created: Math.floor(Date.parse(c.created) / 1000),
    Ports: portRows(c),
    Labels: c.config.Labels ?? {},
    State: c.state.Status,
    Status: containerStatus({
      running: c.state.Running || c.state.Restarting,
      paused: c.state.Paused,
      restarting: c.state.Restarting,
      dead: c.state.Dead,
      removalInProgress: c.state.Status === 'removing',
      exitCode: c.state.ExitCode,
      startedAt: c.state.StartedAt,
      finishedAt: c.state.FinishedAt,
      ...(c.state.Health ? { health: c.state.Health.Status } : {}),
    }),
    HostConfig: { NetworkMode: c.hostConfig.NetworkMode || 'bridge' },
    NetworkSettings: { Networks: networks(daemon, c) },
    Mounts: mountsJson(daemon, c),
  };
}

/**
 * docker's NetworkSettings.Networks: an entry per network the container is on (running) or
 * will be on (stopped: its NetworkMode's network and those NetworkingConfig adds).
 */
function networks(daemon: Daemon, c: ContainerRecord): Record<string, unknown> {
  const manager = daemon.containers.network.networks;
  const configs = endpointsConfig(c);
  const out: Record<string, unknown> = {};
  const entry = (name: string, networkId: string, e: Endpoint | undefined) => {
    // Not running: the aliases it was given (create's NetworkingConfig, or network connect).
    const aliases = e ? e.aliases : (configs[name]?.Aliases ?? configs[networkId]?.Aliases ?? undefined);
    out[name] = {
      IPAMConfig: null,
      Links: null,
      Aliases: aliases?.length ? aliases : null,
      MacAddress: e?.macAddress ?? '',
      NetworkID: networkId,
      EndpointID: e?.endpointId ?? '',
      Gateway: e?.gateway ?? '',
      IPAddress: e?.ipAddress ?? '',
      IPPrefixLen: e?.prefixLen ?? 0,
      IPv6Gateway: '',
      GlobalIPv6Address: '',
      GlobalIPv6PrefixLen: 0,
      DriverOpts: null,
      DNSNames: e && name !== 'bridge' ? [c.name.slice(1), c.id.slice(0, 12), ...(e.aliases ?? [])] : null,
    };
  };
  if (c.state.Running && c.endpoints?.length) {
    for (const e of c.endpoints) entry(e.networkName, e.networkId, e);
    return out;
  }
  const mode = networkName(c.hostConfig.NetworkMode);
  const primary = mode.startsWith('container:') ? undefined : manager.find(mode);
  if (!primary || primary.driver !== 'null' || Object.keys(configs).length === 0) entry(primary?.name ?? mode, primary?.id ?? '', undefined);
  for (const key of Object.keys(configs)) {
    const n = manager.find(key);
    if (n && n.id !== primary?.id && !(n.name in out)) entry(n.name, n.id, undefined);
  }
  return out;
}

/** docker's Mounts: the container's volumes and host binds. */
function mountsJson(daemon: Daemon, c: ContainerRecord): Array<Record<string, unknown>> {
  const out: Array<Record<string, unknown>> = [];
  for (const v of c.mounts?.volumes ?? []) {
    out.push({ Type: 'volume', Name: v.Name, Source: daemon.volumes.mountpoint(v.Name), Destination: v.Destination, Driver: 'local', Mode: '', RW: v.RW, Propagation: '' });
  }
  for (const raw of c.mounts?.binds ?? c.hostConfig.Binds ?? []) {
    const [source = '', destination = '', mode = ''] = raw.split(':');
    const modes = mode.split(',').filter(Boolean);
    const propagation = modes.find((m) => /^r?(private|shared|slave)$/.test(m)) ?? 'rprivate';
    out.push({ Type: 'bind', Source: source, Destination: destination, Mode: mode, RW: !modes.includes('ro'), Propagation: propagation });
  }
  return out;
}

/** docker's NetworkSettings.Ports: published ports with their bindings, exposed ones with null. */
function portMap(c: ContainerRecord): Record<string, Array<{ HostIp: string; HostPort: string }> | null> {
  const out: Record<string, Array<{ HostIp: string; HostPort: string }> | null> = {};
  if (!c.state.Running) return out;
  for (const key of Object.keys(c.config.ExposedPorts ?? {})) out[key.includes('/') ? key : `${key}/tcp`] = null;
  for (const [key, list] of Object.entries(c.ports ?? {})) out[key] = list;
  return out;
}

/** The list's Ports: one row per binding (and per exposed port not published). */
function portRows(c: ContainerRecord): Array<{ IP?: string; PrivatePort: number; PublicPort?: number; Type: string }> {
  const rows: Array<{ IP?: string; PrivatePort: number; PublicPort?: number; Type: string }> = [];
  for (const [key, list] of Object.entries(portMap(c))) {
    const [port, type] = key.split('/');
    if (!list) rows.push({ PrivatePort: Number(port), Type: type ?? 'tcp' });
    else for (const b of list) rows.push({ IP: b.HostIp, PrivatePort: Number(port), PublicPort: Number(b.HostPort), Type: type ?? 'tcp' });
  }
  return rows;
}

export function inspect(daemon: Daemon, c: ContainerRecord): Record<string, unknown> {
  const { path, args } = command(c);
  const onBridge = c.endpoints?.find((e) => e.networkName === 'bridge');
  const containers = daemon.containers;
  const files = containers.filePaths(c.id);
  let upper = '';
  try {
    upper = daemon.snapshots.upperDir(c.id);
  } catch {
    upper = '';
  }
  return {
    Id: c.id,
    Created: c.created,
    Path: path,
    Args: args,
    State: c.state,
    Image: c.imageId,
    ResolvConfPath: files.resolvConf,
    HostnamePath: files.hostname,
    HostsPath: files.hosts,
    LogPath: containers.logPath(c.id),
    Name: c.name,
    RestartCount: c.restartCount,
    Driver: 'overlay2',
    Platform: 'linux',
    MountLabel: '',
    ProcessLabel: '',
    AppArmorProfile: '',
    ExecIDs: null,
    HostConfig: {
      NetworkMode: 'bridge',
      RestartPolicy: { Name: 'no', MaximumRetryCount: 0 },
      AutoRemove: false,
      Privileged: false,
      ReadonlyRootfs: false,
      LogConfig: { Type: 'json-file', Config: { 'max-size': '10m', 'max-file': '3' } },
      ...c.hostConfig,
    },
    GraphDriver: { Name: 'overlay2', Data: { MergedDir: containers.rootfs(c.id), UpperDir: upper } },
    Mounts: mountsJson(daemon, c),
    Config: { ...CONFIG_DEFAULTS, ...c.config },
    NetworkSettings: {
      Bridge: '',
      SandboxID: c.endpoints?.[0]?.endpointId ?? '',
      SandboxKey: c.state.Running && c.endpoints ? containers.network.networks.netnsPath(c.id) : '',
      Ports: portMap(c),
      // As docker: these (deprecated) fields tell of the default bridge only.
      Gateway: onBridge?.gateway ?? '',
      IPAddress: onBridge?.ipAddress ?? '',
      IPPrefixLen: onBridge?.prefixLen ?? 0,
      MacAddress: onBridge?.macAddress ?? '',
      Networks: networks(daemon, c),
    },
  };
}

async function sizes(daemon: Daemon, c: ContainerRecord): Promise<{ SizeRw: number; SizeRootFs: number }> {
  let rw = 0;
  try {
    rw = (await daemon.snapshots.usage(c.id)).size;
  } catch {
    rw = 0;
  }
  const image = daemon.images.record(c.imageId);
  const base = image ? image.layers.reduce((s, l) => s + (daemon.images.layer(l)?.size ?? 0), 0) : 0;
  return { SizeRw: rw, SizeRootFs: rw + base };
}

async function resolveAncestors(daemon: Daemon, wanted: string[] | undefined): Promise<Set<string> | undefined> {
  if (!wanted) return undefined;
  const ids = new Set<string>();
  for (const w of wanted) {
    try {
      ids.add((await daemon.images.resolve(w)).id);
    } catch {
      // An unknown ancestor matches nothing.
    }
  }
  return ids;
}

function matchesFilters(c: ContainerRecord, filters: Map<string, string[]>, ancestors: Set<string> | undefined): boolean {
  const any = (name: string, test: (v: string) => boolean) => {
    const values = filters.get(name);
    return !values || values.some(test);
  };
  return (
    any('id', (v) => c.id.startsWith(v)) &&
    any('name', (v) => new RegExp(v.replace(/^\//, '')).test(c.name.slice(1))) &&
    any('status', (v) => v === c.state.Status) &&
    any('exited', (v) => !c.state.Running && c.state.StartedAt !== '0001-01-01T00:00:00Z' && Number(v) === c.state.ExitCode) &&
    labelsMatch(c.config.Labels ?? {}, filters.get('label')) &&
    (!ancestors || ancestors.has(c.imageId)) &&
    any('health', (v) => (c.state.Running && c.state.Health ? c.state.Health.Status : 'none') === v) &&
    any('network', (v) => networkNames(c).includes(v)) &&
    any('volume', (v) => (c.mounts?.volumes ?? []).some((m) => m.Name === v || m.Destination === v) || (c.mounts?.binds ?? []).some((b) => b.split(':')[0] === v || b.split(':')[1] === v)) &&
    any('publish', (v) => portRows(c).some((p) => p.PublicPort !== undefined && portMatches(v, p.PublicPort, p.Type))) &&
    any('expose', (v) => portRows(c).some((p) => portMatches(v, p.PrivatePort, p.Type)))
  );
}

/** The names and id a container's network answers to in a `network` filter. */
function networkNames(c: ContainerRecord): string[] {
  if (c.endpoints?.length) return c.endpoints.flatMap((e) => [e.networkName, e.networkId]);
  return [networkName(c.hostConfig.NetworkMode)];
}

/** docker's `<port>[/<proto>]` or `<start>-<end>[/<proto>]` against one port. */
function portMatches(filter: string, port: number, type: string): boolean {
  const m = /^(\d+)(?:-(\d+))?(?:\/(\w+))?$/.exec(filter);
  if (!m) throw new InvalidArgument(`invalid port filter ${JSON.stringify(filter)}: want <port>[/<proto>] or <start>-<end>[/<proto>]`);
  const start = Number(m[1]);
  const end = m[2] ? Number(m[2]) : start;
  return port >= start && port <= end && (m[3] ?? 'tcp') === type;
}

/** Docker's since/until: unix seconds (fractional), RFC 3339, or a duration back from now. */
export function parseTimestamp(value: string): number {
  if (/^\d+(\.\d+)?$/.test(value)) return Number(value);
  const d = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(value);
  if (d) return Date.now() / 1000 - Number(d[1]) * { ms: 0.001, s: 1, m: 60, h: 3600 }[d[2] as 'ms' | 's' | 'm' | 'h'];
  const t = Date.parse(value);
  if (Number.isNaN(t)) throw new InvalidArgument(`invalid value for "since": failed to parse value as time or duration: "${value}"`);
  return t / 1000;
}

async function replayLogs(daemon: Daemon, c: ContainerRecord, socket: NodeJS.WritableStream, opts: { stdout: boolean; stderr: boolean; tty: boolean }): Promise<void> {
  const abort = new AbortController();
  for await (const entry of readLogs(daemon.containers.logPath(c.id), { stdout: opts.stdout, stderr: opts.stderr, follow: false, timestamps: false, tail: 'all' }, abort.signal)) {
    socket.write(opts.tty ? entry.line : frame(entry.stream === 'stderr' ? StdStream.Stderr : StdStream.Stdout, entry.line));
  }
}

interface StatsSample {
  read: string;
  cpuTotal: number;
  cpuUser: number;
  cpuKernel: number;
  percpu: number[];
  system: number;
  memUsage: number;
  memLimit: number;
  memStats: Record<string, number>;
  pids: number;
  pidsLimit: number;
  /** Per interface of its network namespace (lo left out), as /proc/<pid>/net/dev counts. */
  networks: Record<string, Record<string, number>>;
}

/** /proc/<pid>/net/dev of a container's process: its interfaces' counters, docker's names. */
async function readNetDev(pid: number): Promise<Record<string, Record<string, number>>> {
  const out: Record<string, Record<string, number>> = {};
  const text = pid > 0 ? await readCgroup(`/proc/${pid}/net/dev`) : undefined;
  for (const line of (text ?? '').split('\n').slice(2)) {
    const m = /^\s*([^:]+):\s*(.*)$/.exec(line);
    if (!m || m[1] === 'lo') continue;
    const f = m[2]!.trim().split(/\s+/).map(Number);
    out[m[1]!] = {
      rx_bytes: f[0] ?? 0, rx_packets: f[1] ?? 0, rx_errors: f[2] ?? 0, rx_dropped: f[3] ?? 0,
      tx_bytes: f[8] ?? 0, tx_packets: f[9] ?? 0, tx_errors: f[10] ?? 0, tx_dropped: f[11] ?? 0,
    };
  }
  return out;
}

async function readCgroup(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch {
    return undefined;
  }
}

/** A sample of the container's cgroup counters (cgroup v1 here, v2 elsewhere). */
async function readStats(c: ContainerRecord): Promise<StatsSample> {
  const base = `/berth/${c.id}`;
  const v1 = (ctrl: string, file: string) => readCgroup(`/sys/fs/cgroup/${ctrl}${base}/${file}`);
  const v2 = (file: string) => readCgroup(`/sys/fs/cgroup${base}/${file}`);
  const num = (s: string | undefined) => (s === undefined || s.trim() === 'max' ? 0 : Number(s.trim()));
  const stat = await readFile('/proc/stat', 'utf8');
  const cpuLine = stat.split('\n')[0]!.split(/\s+/).slice(1, 8).map(Number);
  const system = cpuLine.reduce((a, b) => a + b, 0) * 1e7;
  const sample: StatsSample = { read: new Date().toISOString(), cpuTotal: 0, cpuUser: 0, cpuKernel: 0, percpu: [], system, memUsage: 0, memLimit: 0, memStats: {}, pids: 0, pidsLimit: 0, networks: {} };
  if (!c.state.Running) return sample;
  sample.networks = await readNetDev(c.state.Pid);
  const cpuacct = await v1('cpuacct', 'cpuacct.usage');
  if (cpuacct !== undefined) {
    sample.cpuTotal = num(cpuacct);
    sample.percpu = ((await v1('cpuacct', 'cpuacct.usage_percpu')) ?? '').trim().split(/\s+/).filter(Boolean).map(Number);
    const st = (await v1('cpuacct', 'cpuacct.stat')) ?? '';
    sample.cpuUser = Number(/user (\d+)/.exec(st)?.[1] ?? 0) * 1e7;
    sample.cpuKernel = Number(/system (\d+)/.exec(st)?.[1] ?? 0) * 1e7;
    sample.memUsage = num(await v1('memory', 'memory.usage_in_bytes'));
    sample.memLimit = num(await v1('memory', 'memory.limit_in_bytes'));
    for (const line of ((await v1('memory', 'memory.stat')) ?? '').split('\n')) {
      const [k, v] = line.split(' ');
      if (k && v) sample.memStats[k] = Number(v);
    }
    sample.pids = num(await v1('pids', 'pids.current'));
    sample.pidsLimit = num(await v1('pids', 'pids.max'));
  } else {
    const st = (await v2('cpu.stat')) ?? '';
    sample.cpuTotal = Number(/usage_usec (\d+)/.exec(st)?.[1] ?? 0) * 1000;
    sample.cpuUser = Number(/user_usec (\d+)/.exec(st)?.[1] ?? 0) * 1000;
    sample.cpuKernel = Number(/system_usec (\d+)/.exec(st)?.[1] ?? 0) * 1000;
    sample.memUsage = num(await v2('memory.current'));
    sample.memLimit = num(await v2('memory.max'));
    for (const line of ((await v2('memory.stat')) ?? '').split('\n')) {
      const [k, v] = line.split(' ');
      if (k && v) sample.memStats[k] = Number(v);
    }
    sample.pids = num(await v2('pids.current'));
    sample.pidsLimit = num(await v2('pids.max'));
  }
  if (sample.memLimit === 0 || sample.memLimit > 2 ** 62) sample.memLimit = (await import('node:os')).totalmem();
  return sample;
}

function statsJson(c: ContainerRecord, now: StatsSample, previous: StatsSample | undefined): Record<string, unknown> {
  const cpu = (s: StatsSample | undefined) =>
    s
      ? {
          cpu_usage: { total_usage: s.cpuTotal, percpu_usage: s.percpu, usage_in_kernelmode: s.cpuKernel, usage_in_usermode: s.cpuUser },
          system_cpu_usage: s.system,
          online_cpus: cpus().length,
          throttling_data: { periods: 0, throttled_periods: 0, throttled_time: 0 },
        }
      : { cpu_usage: { total_usage: 0, usage_in_kernelmode: 0, usage_in_usermode: 0 }, throttling_data: { periods: 0, throttled_periods: 0, throttled_time: 0 } };
  return {
    read: now.read,
    preread: previous?.read ?? '0001-01-01T00:00:00Z',
    pids_stats: { current: now.pids, ...(now.pidsLimit ? { limit: now.pidsLimit } : {}) },
    blkio_stats: { io_service_bytes_recursive: null, io_serviced_recursive: null, io_queue_recursive: null, io_service_time_recursive: null, io_wait_time_recursive: null, io_merged_recursive: null, io_time_recursive: null, sectors_recursive: null },
    num_procs: 0,
    storage_stats: {},
    cpu_stats: cpu(now),
    precpu_stats: cpu(previous),
    memory_stats: c.state.Running ? { usage: now.memUsage, stats: now.memStats, limit: now.memLimit } : {},
    ...(Object.keys(now.networks).length ? { networks: now.networks } : {}),
    name: c.name,
    id: c.id,
  };
}
