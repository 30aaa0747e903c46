/**
 * Containers: create, start, stop, kill, remove, wait, attach, pause, and what happens when
 * one exits (restart policies, --rm).
 *
 *   <data-root>/containers/<id>/
 *     config.json                the OCI bundle's spec, written at each start
 *     rootfs/                    the overlay mount of the image's layers and the container's upper dir
 *     hostname, hosts, resolv.conf
 *     <id>-json.log              the log, in Docker's json-file format (written by the shim)
 *   <exec-root>/shims/<id[:24]>/ the shim's state: attach.sock, control.sock, shim.pid, exit.json
 *
 * A running container is held by its berth-shim, not by the daemon: the daemon can die and come
 * back; `reconcile()` then finds each container's shim, or the exit status it left.
 */
import { watch, type FSWatcher } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { Conflict, Forbidden, InvalidArgument, NotFound, NotModified, Unavailable, isBerthError } from '../errors/errors.js';
import type { EventBus } from '../daemon/events.js';
import type { Logger } from '../daemon/logger.js';
import type { ImageStore } from '../images/image-store.js';
import type { MetadataStore } from '../metadata/metadata-store.js';
import type { MetadataV1 } from '../metadata/schema.js';
import type { NetworkManager, NetworkRecord } from '../network/network-manager.js';
import type { PortProxy } from '../network/port-proxy.js';
import type { VolumeStore } from '../volumes/volume-store.js';
import { buildSpec, processArgs, specJson, validateHostConfig, type ContainerConfig, type HostConfig } from '../runtime/oci-spec.js';
import { Runc } from '../runtime/runc.js';
import { connectAttach, controlShim, launchShim, readExit, readShimPid } from '../runtime/shim.js';
import { mountAll, unmountAll } from '../snapshots/overlay-snapshotter.js';
import { bridge, type AttachOptions } from './attach.js';
import type { HealthState } from './container.js';
import { ContainerNetwork, endpointsConfig, networkName, type Connection, type EndpointConfig } from './container-network.js';
import { resolveMounts, volumeBinds, type VolumeMount } from './container-volumes.js';
import { hostsFile, writeContainerFiles } from './container-files.js';
import { isAlive } from '../util/process.js';
import {
  checkName,
  checkRestartPolicy,
  generateName,
  mergeImageConfig,
  newContainerId,
  newState,
  parseSignal,
  shouldRestart,
  ZERO_TIME,
  type ContainerRecord,
} from './container.js';

export type WaitCondition = 'not-running' | 'next-exit' | 'removed';

export interface WaitResult {
  StatusCode: number;
  Error: { Message: string } | null;
}

export interface CreateRequest extends ContainerConfig {
  HostConfig?: HostConfig;
  NetworkingConfig?: unknown;
}

export interface ContainerPaths {
  dataRoot: string;
  execRoot: string;
  shim: string;
  /** A static init for --init (tini), if the host has one. */
  init?: string;
  networks: NetworkManager;
  ports: PortProxy;
  volumes: VolumeStore;
}

/** Logs rotate by default, unlike Docker's json-file: 10 MiB, 3 files. */
const LOG_DEFAULTS = { 'max-size': '10m', 'max-file': '3' };

/** The log config a container gets: json-file with rotation unless told otherwise. */
function logConfig(requested: HostConfig['LogConfig']): NonNullable<HostConfig['LogConfig']> {
  const type = requested?.Type || 'json-file';
  if (type !== 'json-file' && type !== 'none') throw new InvalidArgument(`logger: no log driver named '${type}' is registered`);
  const config: Record<string, string> = type === 'json-file' ? { ...LOG_DEFAULTS, ...(requested?.Config ?? {}) } : { ...(requested?.Config ?? {}) };
  for (const key of Object.keys(config)) {
    if (!['max-size', 'max-file', 'compress', 'labels', 'env', 'tag'].includes(key)) throw new InvalidArgument(`unknown log opt '${key}' for ${type} log driver`);
  }
  if (type === 'json-file') logLimits({ LogConfig: { Type: type, Config: config } });
  return { Type: type, Config: config };
}

/** max-size (docker's units: 10m, 1g, -1 unbounded) and max-file as the shim takes them. */
function logLimits(hostConfig: HostConfig): { logMaxSize: number; logMaxFiles: number } {
  const config = hostConfig.LogConfig?.Config ?? LOG_DEFAULTS;
  const size = config['max-size'] ?? '-1';
  const m = /^(\d+(?:\.\d+)?)([kmg]?)b?$/i.exec(size);
  if (size !== '-1' && !m) throw new InvalidArgument(`invalid value for max-size: ${size}`);
  const bytes = m ? Math.floor(Number(m[1]) * { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[m[2]!.toLowerCase() as '' | 'k' | 'm' | 'g']) : 0;
  const files = Number(config['max-file'] ?? '1');
  if (!Number.isInteger(files) || files < 1) throw new InvalidArgument(`invalid value for max-file: ${config['max-file']}`);
  return { logMaxSize: bytes, logMaxFiles: bytes > 0 ? files : 1 };
}

interface Waiter {
  condition: WaitCondition;
  resolve: (r: WaitResult) => void;
}

interface PendingAttach {
  client: Duplex;
  opts: AttachOptions;
  done: (how: string) => void;
}

export class ContainerManager {
  readonly #meta: MetadataStore<MetadataV1>;
  readonly #images: ImageStore;
  readonly #events: EventBus;
  readonly #log: Logger;
  readonly #paths: ContainerPaths;
  readonly runc: Runc;
  readonly #waiters = new Map<string, Waiter[]>();
  readonly #pendingAttach = new Map<string, PendingAttach[]>();
  readonly #watchers = new Map<string, FSWatcher>();
  readonly #locks = new Map<string, Promise<unknown>>();
  readonly #exiting = new Set<string>();
  /** Containers being started: their exit, if it comes that fast, is handled when start is done. */
  readonly #starting = new Set<string>();
  readonly #restartTimers = new Map<string, NodeJS.Timeout>();
  #livenessTimer: NodeJS.Timeout | undefined;
  readonly network: ContainerNetwork;

  constructor(meta: MetadataStore<MetadataV1>, images: ImageStore, events: EventBus, log: Logger, paths: ContainerPaths) {
    this.#meta = meta;
    this.#images = images;
    this.#events = events;
    this.#log = log;
    this.#paths = paths;
    this.runc = new Runc(join(paths.execRoot, 'runc'));
    this.network = new ContainerNetwork(paths.networks, paths.ports, (idOrName) => this.get(idOrName));
  }

  // ---- lookups ----

  all(): ContainerRecord[] {
    return Object.values(this.#meta.read().containers as Record<string, ContainerRecord>);
  }

  /** By full id, name (with or without '/'), or unique id prefix; Docker's 404 otherwise. */
  get(idOrName: string): ContainerRecord {
    const containers = this.#meta.read().containers as Record<string, ContainerRecord>;
    const exact = containers[idOrName];
    if (exact) return exact;
    const name = idOrName.startsWith('/') ? idOrName : `/${idOrName}`;
    const byName = Object.values(containers).find((c) => c.name === name);
    if (byName) return byName;
    if (/^[a-f0-9]+$/.test(idOrName)) {
      const matches = Object.keys(containers).filter((id) => id.startsWith(idOrName));
      if (matches.length === 1) return containers[matches[0]!]!;
      if (matches.length > 1) throw new InvalidArgument(`multiple IDs found with provided prefix: ${idOrName}`);
    }
    throw new NotFound(`No such container: ${idOrName}`);
  }

  containerDir(id: string): string {
    return join(this.#paths.dataRoot, 'containers', id);
  }

  /** Short, because a unix socket's path must fit in 108 bytes: a prefix of the id suffices. */
  stateDir(id: string): string {
    return join(this.#paths.execRoot, 'shims', id.slice(0, 24));
  }

  rootfs(id: string): string {
    return join(this.containerDir(id), 'rootfs');
  }

  logPath(id: string): string {
    return join(this.containerDir(id), `${id}-json.log`);
  }

  filePaths(id: string): { hostname: string; hosts: string; resolvConf: string } {
    const dir = this.containerDir(id);
    return { hostname: join(dir, 'hostname'), hosts: join(dir, 'hosts'), resolvConf: join(dir, 'resolv.conf') };
  }

  // ---- create ----

  async create(request: CreateRequest, name: string | undefined): Promise<{ Id: string; Warnings: string[] }> {
    if (!request.Image) throw new InvalidArgument('config cannot be empty in order to create a container');
    const hostConfig: HostConfig = { ...(request.HostConfig ?? {}) };
    hostConfig.LogConfig = logConfig(hostConfig.LogConfig);
    checkRestartPolicy(hostConfig);
    validateHostConfig(hostConfig);
    const warnings = this.network.check(hostConfig);
    const image = await this.#images.resolve(request.Image);
    const { HostConfig: _h, NetworkingConfig: networkingConfig, ...requestConfig } = request;
    const config = mergeImageConfig(requestConfig, image.config.config);
    processArgs(config);
    const id = newContainerId();
    config.Hostname ||= id.slice(0, 12);
    config.Image = request.Image;
    const wanted = name ? checkName(name) : undefined;
    const topLayer = image.record.layers.at(-1);
    const mounts = await resolveMounts(this.#paths.volumes, config, hostConfig);
    await mkdir(this.containerDir(id), { recursive: true, mode: 0o710 });
    await this.#images.snapshots.prepare(id, topLayer);
    try {
      await this.#meta.update((state) => {
        const containers = state.containers as Record<string, ContainerRecord>;
        const taken = (n: string) => Object.values(containers).some((c) => c.name === n);
        if (wanted && taken(wanted)) {
          const holder = Object.values(containers).find((c) => c.name === wanted)!;
          throw new Conflict(
            `Conflict. The container name "${wanted}" is already in use by container "${holder.id}". You have to remove (or rename) that container to be able to reuse that name.`,
          );
        }
        const record: ContainerRecord = {
          id,
          name: wanted ?? generateName(taken),
          created: new Date().toISOString(),
          image: request.Image!,
          imageId: image.id,
          config,
          hostConfig,
          ...(networkingConfig ? { networkingConfig } : {}),
          mounts,
          state: newState(),
          restartCount: 0,
          manuallyStopped: false,
        };
        containers[id] = record;
      });
    } catch (err) {
      await this.#images.snapshots.remove(id).catch(() => undefined);
      await rm(this.containerDir(id), { recursive: true, force: true });
      await this.#removeAnonymousVolumes(mounts.volumes, id);
      throw err;
    }
    const record = this.get(id);
    this.#events.publish('container', 'create', id, { image: record.image, name: record.name.slice(1) });
    return { Id: id, Warnings: warnings };
  }

  // ---- start ----

  start(idOrName: string): Promise<void> {
    const record = this.get(idOrName);
    return this.#locked(record.id, () => this.#start(record.id, false));
  }

  async #start(id: string, fromRestartPolicy: boolean): Promise<void> {
    const record = this.get(id);
    if (record.state.Running) {
      if (record.state.Paused) throw new Conflict(`cannot start a paused container, try unpause instead`);
      throw new NotModified(`container ${id} is already running`);
    }
    if (record.state.Status === 'removing' || record.state.Dead) throw new Conflict(`container is marked for removal and cannot be started`);
    const rootfs = this.rootfs(id);
    const stateDir = this.stateDir(id);
    this.#starting.add(id);
    let connection: Connection | undefined;
    try {
      await Promise.all([mkdir(rootfs, { recursive: true }), rm(stateDir, { recursive: true, force: true })]);
      await mkdir(stateDir, { recursive: true, mode: 0o700 });
      await unmountAll(rootfs).catch(() => undefined);
      await mountAll(await this.#images.snapshots.mounts(id), rootfs);
      connection = await this.network.connect(record);
      const files = this.filePaths(id);
      const hostname = record.config.Hostname ?? id.slice(0, 12);
      await writeContainerFiles(files, hostname, record.hostConfig);
      const mounts = record.mounts;
      for (const v of mounts?.volumes ?? []) if (!v.NoCopy) await this.#paths.volumes.copyUp(v.Name, rootfs, v.Destination);
      const spec = await buildSpec({
        id,
        rootfs,
        config: record.config,
        // Volumes go to the runtime as binds of their folders; --mount as binds and tmpfs.
        hostConfig: mounts
          ? { ...record.hostConfig, Binds: [...mounts.binds, ...volumeBinds(this.#paths.volumes, mounts.volumes)], Tmpfs: mounts.tmpfs, Mounts: null }
          : record.hostConfig,
        hostsPath: files.hosts,
        hostnamePath: files.hostname,
        resolvConfPath: files.resolvConf,
        netns: connection.netns,
        cgroupsPath: `/berth/${id}`,
        ...(this.#paths.init ? { initPath: this.#paths.init } : {}),
      });
      const [height, width] = record.hostConfig.ConsoleSize ?? [0, 0];
      if (record.config.Tty && height > 0 && width > 0) spec.process.consoleSize = { height, width };
      await writeFile(join(this.containerDir(id), 'config.json'), specJson(spec));
      const { pid, shimPid } = await launchShim(this.#paths.shim, {
        id,
        bundle: this.containerDir(id),
        stateDir,
        runtime: this.runc.binary,
        runtimeRoot: this.runc.root,
        logPath: record.hostConfig.LogConfig?.Type === 'none' ? '/dev/null' : this.logPath(id),
        ...logLimits(record.hostConfig),
        terminal: record.config.Tty === true,
        stdin: record.config.OpenStdin === true,
        // As Docker: a client's end of input closes the container's stdin only without a TTY;
        // with one, a client that detaches leaves the shell running.
        stdinOnce: record.config.StdinOnce === true && record.config.Tty !== true,
      });
      this.#watchExit(id);
      // The container is created; its interfaces were set up meanwhile. Its /etc/hosts
      // (bind-mounted: written in place) gets its address and peers before it runs.
      const attached = await connection.attached;
      if (attached.endpoints?.length) {
        const peers = this.network.peerLines({ ...this.get(id), endpoints: attached.endpoints }, this.all());
        await writeFile(files.hosts, hostsFile(hostname, record.hostConfig.ExtraHosts ?? [], attached.endpoints[0]!.ipAddress, peers));
      }
      // Attach requests made before start (docker run) join now, before the process runs.
      await this.#connectPendingAttaches(id);
      await this.runc.start(id);
      await this.#update(id, (c) => {
        c.state = {
          ...c.state,
          Status: 'running',
          Running: true,
          Paused: false,
          Restarting: false,
          OOMKilled: false,
          Dead: false,
          Pid: pid,
          ExitCode: 0,
          Error: '',
          StartedAt: new Date().toISOString(),
          FinishedAt: fromRestartPolicy ? c.state.FinishedAt : ZERO_TIME,
        };
        c.shimPid = shimPid;
        if (!fromRestartPolicy) c.manuallyStopped = false;
        // In the same transaction: where it is on its networks, and its published ports.
        if (attached.endpoints?.length) c.endpoints = attached.endpoints;
        if (attached.ports) c.ports = attached.ports;
      });
      this.#events.publish('container', 'start', id, { image: record.image, name: record.name.slice(1) });
      // Its own file was written before it ran: the peers learn of it.
      await this.#refreshPeers((this.get(id).endpoints ?? []).map((e) => e.networkId), { skip: id });
    } catch (err) {
      this.#starting.delete(id);
      // Interfaces set up meanwhile are recorded, so that the cleanup takes them down too.
      const attached = await connection?.attached.catch(() => undefined);
      if (attached?.endpoints?.length && !this.get(id).endpoints) {
        await this.#update(id, (c) => {
          c.endpoints = attached.endpoints!;
          if (attached.ports) c.ports = attached.ports;
        }).catch(() => undefined);
      }
      await this.#cleanupFailedStart(id, err);
      throw startError(err);
    }
    this.#starting.delete(id);
    // A process that ended while start was finishing (`true`) is handled now.
    void this.#onExit(id);
  }

  async #cleanupFailedStart(id: string, err: unknown): Promise<void> {
    this.#unwatch(id);
    await this.runc.delete(id, true).catch(() => undefined);
    await this.#disconnect(id);
    await unmountAll(this.rootfs(id)).catch(() => undefined);
    const message = startError(err).message;
    const code = /executable file not found|no such file or directory/.test(message) ? 127 : /permission denied/.test(message) ? 126 : 128;
    await this.#update(id, (c) => {
      c.state = { ...c.state, Status: c.state.StartedAt === ZERO_TIME ? 'created' : 'exited', Running: false, Pid: 0, ExitCode: code, Error: message };
    }).catch(() => undefined);
    for (const pending of this.#pendingAttach.get(id) ?? []) {
      pending.client.end();
      pending.done('failed');
    }
    this.#pendingAttach.delete(id);
    // The start request carries the error; waiters just see the code (as the docker CLI expects).
    this.#resolveWaiters(id, ['next-exit', 'not-running'], { StatusCode: code, Error: null });
    // Docker removes an --rm container whose start failed; the CLI waits for that.
    if (this.get(id).hostConfig.AutoRemove) setImmediate(() => this.#autoRemove(id));
  }

  /** Takes the container off its networks (ports, addresses, namespace); the record forgets them. */
  async #disconnect(id: string): Promise<void> {
    const record = this.get(id);
    await this.network.disconnect(record).catch((err: unknown) => this.#log.warn('network disconnect failed', { id, error: String(err) }));
    if (record.endpoints || record.ports) {
      await this.#update(id, (c) => {
        delete c.endpoints;
        delete c.ports;
      }).catch(() => undefined);
      await this.#refreshPeers((record.endpoints ?? []).map((e) => e.networkId));
    }
  }

  /**
   * Rewrites the /etc/hosts of the running containers on networks `networkIds`, and of
   * `also`, but `skip`'s (in place: the file is bind-mounted), so each names its current peers.
   */
  async #refreshPeers(networkIds: string[], opts: { also?: string; skip?: string } = {}): Promise<void> {
    const all = this.all();
    const ids = new Set(networkIds);
    for (const c of all) {
      const mine = c.endpoints ?? [];
      if (!c.state.Running || c.id === opts.skip) continue;
      if (c.id !== opts.also && !mine.some((e) => ids.has(e.networkId) && e.networkName !== 'bridge')) continue;
      const hosts = hostsFile(c.config.Hostname ?? c.id.slice(0, 12), c.hostConfig.ExtraHosts ?? [], mine[0]?.ipAddress, this.network.peerLines(c, all));
      await writeFile(this.filePaths(c.id).hosts, hosts).catch((err: unknown) => this.#log.warn('hosts file not updated', { id: c.id, error: String(err) }));
    }
  }

  /** --rm: remove after the exit; a client waiting for the removal hears of a failure too. */
  #autoRemove(id: string): void {
    // As docker: --rm takes the container's anonymous volumes with it.
    this.remove(id, { force: true, volumes: true }).catch((err: unknown) => {
      this.#log.warn('auto-remove failed', { id, error: String(err) });
      const exitCode = this.all().find((c) => c.id === id)?.state.ExitCode ?? 0;
      this.#resolveWaiters(id, ['removed'], { StatusCode: exitCode, Error: { Message: `removing the container: ${String(err)}` } });
    });
  }

  // ---- exit ----

  #watchExit(id: string): void {
    this.#unwatch(id);
    try {
      const watcher = watch(this.stateDir(id), (_event, file) => {
        if (file === 'exit.json') void this.#onExit(id);
      });
      watcher.on('error', () => undefined);
      this.#watchers.set(id, watcher);
    } catch (err) {
      this.#log.warn('cannot watch container state', { id, error: String(err) });
    }
  }

  #unwatch(id: string): void {
    this.#watchers.get(id)?.close();
    this.#watchers.delete(id);
  }

  /**
   * Handles the exit the shim recorded, once. Takes no lock: stop and remove hold theirs while
   * they wait for this.
   */
  async #onExit(id: string): Promise<void> {
    if (this.#starting.has(id) || this.#exiting.has(id)) return;
    this.#exiting.add(id);
    try {
      const exit = await readExit(this.stateDir(id)).catch(() => undefined);
      if (exit) await this.#handleExit(id, exit.exitCode, exit.finishedAt);
    } finally {
      this.#exiting.delete(id);
    }
  }

  async #handleExit(id: string, exitCode: number, finishedAt: string, error = ''): Promise<void> {
    let record: ContainerRecord;
    try {
      record = this.get(id);
    } catch {
      return;
    }
    if (!record.state.Running) return;
    this.#unwatch(id);
    const oomKilled = await this.#oomKilled(id);
    await this.runc.delete(id, true).catch((err: unknown) => this.#log.warn('runc delete failed', { id, error: String(err) }));
    await this.#disconnect(id);
    await unmountAll(this.rootfs(id)).catch((err: unknown) => this.#log.warn('unmount failed', { id, error: String(err) }));
    const restart = shouldRestart(record, exitCode);
    await this.#update(id, (c) => {
      c.state = {
        ...c.state,
        Status: restart ? 'restarting' : 'exited',
        Running: false,
        Paused: false,
        Restarting: restart,
        Pid: 0,
        ExitCode: exitCode,
        OOMKilled: oomKilled,
        Error: error,
        FinishedAt: finishedAt || new Date().toISOString(),
      };
      delete c.shimPid;
      if (restart) c.restartCount++;
    });
    this.#events.publish('container', 'die', id, { exitCode: String(exitCode), image: record.image, name: record.name.slice(1) });
    if (oomKilled) this.#events.publish('container', 'oom', id, { image: record.image, name: record.name.slice(1) });
    this.#resolveWaiters(id, ['next-exit', 'not-running'], { StatusCode: exitCode, Error: error ? { Message: error } : null });
    if (record.hostConfig.AutoRemove) {
      setImmediate(() => this.#autoRemove(id));
    } else if (restart) {
      const delay = Math.min(100 * 2 ** Math.min(record.restartCount, 10), 60_000);
      this.#restartTimers.set(
        id,
        setTimeout(() => {
          this.#restartTimers.delete(id);
          this.#locked(id, async () => {
            const current = this.get(id);
            if (current.state.Status !== 'restarting') return;
            await this.#start(id, true);
          }).catch((err: unknown) => this.#log.warn('restart failed', { id, error: String(err) }));
        }, delay),
      );
    }
  }

  /** Whether the kernel's OOM killer ended the container (read before runc deletes the cgroup). */
  async #oomKilled(id: string): Promise<boolean> {
    for (const [path, re] of [
      [`/sys/fs/cgroup/memory/berth/${id}/memory.oom_control`, /oom_kill (\d+)/],
      [`/sys/fs/cgroup/berth/${id}/memory.events`, /oom_kill (\d+)/],
    ] as const) {
      try {
        const m = re.exec(await readFile(path, 'utf8'));
        if (m) return Number(m[1]) > 0;
      } catch {
        // Not this cgroup version.
      }
    }
    return false;
  }

  // ---- stop, kill, restart ----

  stop(idOrName: string, timeoutSeconds?: number, signal?: string): Promise<void> {
    const record = this.get(idOrName);
    return this.#locked(record.id, () => this.#stop(record.id, timeoutSeconds, signal));
  }

  async #stop(id: string, timeoutSeconds?: number, signal?: string): Promise<void> {
    this.#cancelRestart(id);
    const record = this.get(id);
    if (record.state.Status === 'restarting') {
      await this.#update(id, (c) => {
        c.state = { ...c.state, Status: 'exited', Restarting: false };
        c.manuallyStopped = true;
      });
      return;
    }
    if (!record.state.Running) throw new NotModified(`container ${id} is not running`);
    await this.#update(id, (c) => {
      c.manuallyStopped = true;
    });
    const sig = parseSignal(signal || record.config.StopSignal || 'SIGTERM');
    const timeout = timeoutSeconds ?? record.config.StopTimeout ?? 10;
    const exited = this.#exitPromise(id);
    if (record.state.Paused) await this.runc.resume(id).catch(() => undefined);
    await this.runc.kill(id, sig).catch((err: unknown) => this.#log.debug('stop signal failed', { id, error: String(err) }));
    if (timeout < 0 || (await withTimeout(exited, timeout * 1000))) return;
    await this.runc.kill(id, 9, true).catch(() => undefined);
    if (!(await withTimeout(exited, 30_000))) throw new Unavailable(`container ${id} did not exit after SIGKILL`);
  }

  /** Resolves when the container's current run has been handled as exited. */
  #exitPromise(id: string): Promise<void> {
    return new Promise((resolve) => {
      this.#addWaiter(id, { condition: 'next-exit', resolve: () => resolve() });
      // The exit may have been written before the watcher saw it.
      void this.#onExit(id);
    });
  }

  async kill(idOrName: string, signal = 'SIGKILL'): Promise<void> {
    const record = this.get(idOrName);
    const sig = parseSignal(signal);
    if (!record.state.Running) {
      throw new Conflict(`Cannot kill container: ${idOrName}: Container ${record.id} is not running`);
    }
    if (sig === 9 || sig === 15) {
      await this.#update(record.id, (c) => {
        c.manuallyStopped = true;
      });
    }
    const exited = sig === 9 ? this.#exitPromise(record.id) : undefined;
    await this.runc.kill(record.id, sig, sig === 9);
    // As Docker: a SIGKILL returns once the container is down.
    if (exited) await withTimeout(exited, 10_000);
  }

  restart(idOrName: string, timeoutSeconds?: number, signal?: string): Promise<void> {
    const record = this.get(idOrName);
    return this.#locked(record.id, async () => {
      try {
        await this.#stop(record.id, timeoutSeconds, signal);
      } catch (err) {
        if (!(err instanceof NotModified)) throw err;
      }
      await this.#start(record.id, false);
      this.#events.publish('container', 'restart', record.id, { name: record.name.slice(1) });
    });
  }

  #cancelRestart(id: string): void {
    const timer = this.#restartTimers.get(id);
    if (timer) clearTimeout(timer);
    this.#restartTimers.delete(id);
  }

  // ---- remove ----

  /** `volumes` (rm -v): its anonymous volumes go too, unless another container uses them. */
  remove(idOrName: string, opts: { force?: boolean; volumes?: boolean } = {}): Promise<void> {
    const record = this.get(idOrName);
    return this.#locked(record.id, () => this.#remove(record.id, opts.force ?? false, opts.volumes ?? false));
  }

  async #remove(id: string, force: boolean, volumes = false): Promise<void> {
    let record: ContainerRecord;
    try {
      record = this.get(id);
    } catch {
      return;
    }
    this.#cancelRestart(id);
    if (record.state.Running) {
      if (!force) {
        const what = record.state.Paused ? 'container is paused and must be unpaused first' : 'container is running: stop the container before removing or force remove';
        throw new Conflict(`cannot remove container "${record.name}": ${what}`);
      }
      const exited = this.#exitPromise(id);
      if (record.state.Paused) await this.runc.resume(id).catch(() => undefined);
      await this.runc.kill(id, 9, true).catch(() => undefined);
      if (!(await withTimeout(exited, 30_000))) throw new Unavailable(`container ${id} did not exit after SIGKILL`);
    }
    if (this.get(id).state.Status === 'removing' && !force) return;
    await this.#update(id, (c) => {
      c.state = { ...c.state, Status: 'removing' };
    });
    this.#unwatch(id);
    // After a handled exit runc has deleted the container already; the unmount there may have
    // found the root still busy, so it is tried again here.
    if (record.state.Running || record.state.Status === 'removing') await this.runc.delete(id, true).catch(() => undefined);
    await this.#disconnect(id);
    await unmountAll(this.rootfs(id)).catch(() => undefined);
    await this.#images.snapshots.remove(id).catch((err: unknown) => {
      if (!(err instanceof NotFound)) throw err;
    });
    await rm(this.containerDir(id), { recursive: true, force: true });
    await rm(this.stateDir(id), { recursive: true, force: true });
    await this.#meta.update((state) => {
      delete (state.containers as Record<string, ContainerRecord>)[id];
    });
    this.#events.publish('container', 'destroy', id, { image: record.image, name: record.name.slice(1) });
    if (volumes) await this.#removeAnonymousVolumes(record.mounts?.volumes ?? [], id);
    this.#resolveWaiters(id, ['removed', 'next-exit', 'not-running'], { StatusCode: record.state.ExitCode, Error: null });
    // The container may have held the last use of a deleted image's layers.
    if (!this.#images.record(record.imageId)) await this.#images.collectLayers().catch(() => undefined);
  }

  // ---- health ----

  /** Records a running container's health (State.Health); false when it no longer runs. */
  async setHealth(id: string, health: HealthState): Promise<boolean> {
    let running = false;
    await this.#update(id, (c) => {
      running = c.state.Running;
      if (running) c.state.Health = health;
    });
    return running;
  }

  // ---- volumes ----

  /** The containers that mount volume `name`. */
  volumeUsers(name: string): string[] {
    return this.all()
      .filter((c) => c.mounts?.volumes.some((v) => v.Name === name))
      .map((c) => c.id);
  }

  async #removeAnonymousVolumes(volumes: readonly VolumeMount[], removed: string): Promise<void> {
    for (const v of volumes) {
      if (!v.Anonymous) continue;
      const users = this.volumeUsers(v.Name).filter((id) => id !== removed);
      await this.#paths.volumes.remove(v.Name, users).catch((err: unknown) => this.#log.warn('anonymous volume not removed', { volume: v.Name, error: String(err) }));
    }
  }

  // ---- networks ----

  /**
   * `docker network connect`: a running container gets an interface on `network` now (the
   * next ethN); a stopped one is on it from its next start. `endpoint` holds its settings
   * there (aliases). A container on `none` moves to `network`.
   */
  connectNetwork(idOrName: string, network: NetworkRecord, endpoint: EndpointConfig = {}): Promise<void> {
    const record = this.get(idOrName);
    return this.#locked(record.id, async () => {
      const c = this.get(record.id);
      if (network.driver === 'host' || network.driver === 'null') throw new Forbidden(`container cannot be connected to the ${network.name} network`);
      const already = c.state.Running ? (c.endpoints ?? []).some((e) => e.networkId === network.id) : this.#wantedNetworks(c).some((n) => n.id === network.id);
      if (already) throw new Forbidden(`endpoint with name ${c.name.slice(1)} already exists in network ${network.name}`);
      if (c.state.Running) {
        const attached = await this.network.attachRunning(c, network, [...new Set(endpoint.Aliases ?? [])], endpoint.IPAMConfig?.IPv4Address || undefined);
        await this.#update(c.id, (rec) => {
          rec.endpoints = [...(rec.endpoints ?? []), attached];
          rec.networkingConfig = { EndpointsConfig: { ...endpointsConfig(rec), [network.name]: endpoint } };
        });
        await this.#refreshPeers([network.id], { also: c.id });
      } else {
        await this.#update(c.id, (rec) => {
          const onNone = this.network.networks.find(networkName(rec.hostConfig.NetworkMode))?.driver === 'null';
          if (onNone) {
            rec.hostConfig.NetworkMode = network.name;
            rec.networkingConfig = { EndpointsConfig: { [network.name]: endpoint } };
          } else {
            rec.networkingConfig = { EndpointsConfig: { ...endpointsConfig(rec), [network.name]: endpoint } };
          }
        });
      }
      this.#events.publish('network', 'connect', network.id, { container: c.id, name: network.name, type: network.driver });
    });
  }

  /**
   * `docker network disconnect`: a running container loses its interface on `network` now; a
   * stopped one is not on it at its next start. Off the network its NetworkMode named, it is
   * left on `none` (and on the others it was connected to).
   */
  disconnectNetwork(idOrName: string, network: NetworkRecord): Promise<void> {
    const record = this.get(idOrName);
    return this.#locked(record.id, async () => {
      const c = this.get(record.id);
      const mode = c.hostConfig.NetworkMode;
      if (mode === 'host' || mode?.startsWith('container:')) {
        throw new Forbidden('container sharing network namespace with another container or host cannot be disconnected from any network');
      }
      const endpoint = c.state.Running ? (c.endpoints ?? []).find((e) => e.networkId === network.id) : undefined;
      const connected = c.state.Running ? endpoint !== undefined : this.#wantedNetworks(c).some((n) => n.id === network.id);
      if (!connected) throw new Forbidden(`container ${c.id} is not connected to network ${network.name}`);
      if (endpoint) {
        if (endpoint === c.endpoints![0] && c.ports) await this.#paths.ports.unpublish(c.id);
        await this.network.networks.detach(c.id, endpoint);
      }
      await this.#update(c.id, (rec) => {
        if (endpoint) rec.endpoints = (rec.endpoints ?? []).filter((e) => e.networkId !== network.id);
        if (endpoint === c.endpoints?.[0]) delete rec.ports;
        const config = { ...endpointsConfig(rec) };
        delete config[network.name];
        delete config[network.id];
        rec.networkingConfig = { EndpointsConfig: config };
        if (this.network.networks.find(networkName(rec.hostConfig.NetworkMode))?.id === network.id) rec.hostConfig.NetworkMode = 'none';
      });
      if (endpoint) await this.#refreshPeers([network.id], { also: c.id });
      this.#events.publish('network', 'disconnect', network.id, { container: c.id, name: network.name, type: network.driver });
    });
  }

  /** The networks a container is on from its next start; [] when its NetworkMode's network is gone. */
  #wantedNetworks(c: ContainerRecord): NetworkRecord[] {
    try {
      return this.network.wanted(c);
    } catch {
      return [];
    }
  }

  // ---- wait ----

  /** Registers a waiter now (the docker CLI waits before it starts); resolves on the condition. */
  wait(idOrName: string, condition: WaitCondition): Promise<WaitResult> {
    const record = this.get(idOrName);
    if (condition === 'not-running' && !record.state.Running && record.state.Status !== 'restarting') {
      return Promise.resolve({ StatusCode: record.state.ExitCode, Error: null });
    }
    return new Promise((resolve) => this.#addWaiter(record.id, { condition, resolve }));
  }

  #addWaiter(id: string, waiter: Waiter): void {
    const list = this.#waiters.get(id) ?? [];
    list.push(waiter);
    this.#waiters.set(id, list);
  }

  #resolveWaiters(id: string, conditions: WaitCondition[], result: WaitResult): void {
    const list = this.#waiters.get(id) ?? [];
    const remaining = list.filter((w) => !conditions.includes(w.condition));
    for (const w of list) if (conditions.includes(w.condition)) w.resolve(result);
    if (remaining.length) this.#waiters.set(id, remaining);
    else this.#waiters.delete(id);
  }

  // ---- attach, resize ----

  /**
   * Joins a hijacked client to the container's stdio. Before start, the client waits and joins
   * when the container starts; once it runs, at once. Resolves when the attach ends.
   */
  attach(idOrName: string, client: Duplex, opts: AttachOptions): Promise<string> {
    const record = this.get(idOrName);
    if (record.state.Running) {
      return connectAttach(this.stateDir(record.id)).then(
        (shim) => bridge(client, shim, opts),
        () => {
          client.end();
          return 'exited';
        },
      );
    }
    return new Promise((resolve) => {
      const list = this.#pendingAttach.get(record.id) ?? [];
      const pending: PendingAttach = { client, opts, done: resolve };
      list.push(pending);
      this.#pendingAttach.set(record.id, list);
      client.on('close', () => {
        const current = this.#pendingAttach.get(record.id);
        if (current?.includes(pending)) {
          this.#pendingAttach.set(record.id, current.filter((p) => p !== pending));
          resolve('client-gone');
        }
      });
    });
  }

  async #connectPendingAttaches(id: string): Promise<void> {
    const pending = this.#pendingAttach.get(id) ?? [];
    this.#pendingAttach.delete(id);
    await Promise.all(
      pending.map(async (p) => {
        const shim = await connectAttach(this.stateDir(id));
        void bridge(p.client, shim, p.opts).then(p.done);
      }),
    );
  }

  async resize(idOrName: string, height: number, width: number): Promise<void> {
    const record = this.get(idOrName);
    if (!record.state.Running) throw new Conflict(`Container ${record.id} is not running`);
    if (!(height > 0 && width > 0)) return;
    await controlShim(this.stateDir(record.id), `resize ${height} ${width}`);
  }

  // ---- pause, rename ----

  async pause(idOrName: string): Promise<void> {
    const record = this.get(idOrName);
    if (!record.state.Running) throw new Conflict(`Container ${record.id} is not running`);
    if (record.state.Paused) throw new Conflict(`Container ${record.id} is already paused`);
    await this.runc.pause(record.id);
    await this.#update(record.id, (c) => {
      c.state = { ...c.state, Status: 'paused', Paused: true };
    });
    this.#events.publish('container', 'pause', record.id, { name: record.name.slice(1) });
  }

  async unpause(idOrName: string): Promise<void> {
    const record = this.get(idOrName);
    if (!record.state.Paused) throw new Conflict(`Container ${record.id} is not paused`);
    await this.runc.resume(record.id);
    await this.#update(record.id, (c) => {
      c.state = { ...c.state, Status: 'running', Paused: false };
    });
    this.#events.publish('container', 'unpause', record.id, { name: record.name.slice(1) });
  }

  async rename(idOrName: string, newName: string): Promise<void> {
    const record = this.get(idOrName);
    const name = checkName(newName);
    if (name === record.name) throw new InvalidArgument(`Renaming a container with the same name as its current name`);
    await this.#meta.update((state) => {
      const containers = state.containers as Record<string, ContainerRecord>;
      const holder = Object.values(containers).find((c) => c.name === name);
      if (holder) {
        throw new Conflict(
          `Conflict. The container name "${name}" is already in use by container "${holder.id}". You have to remove (or rename) that container to be able to reuse that name.`,
        );
      }
      containers[record.id]!.name = name;
    });
    this.#events.publish('container', 'rename', record.id, { name: newName, oldName: record.name });
  }

  // ---- daemon start and stop ----

  /**
   * After a daemon start: each container the records call running is checked against what its
   * shim left: still running (watch it again), exited meanwhile (handle the exit), or gone.
   * Containers whose restart policy says so are started.
   */
  async reconcile(): Promise<void> {
    // First, before any container starts again: what a start cut short left on the network.
    const running = new Set(this.all().filter((c) => c.state.Running).map((c) => c.id));
    const released = await this.network.networks.releaseStale(running).catch((err: unknown) => {
      this.#log.warn('reconcile: stale network namespaces not released', { error: String(err) });
      return [];
    });
    if (released.length) this.#log.info('released the network namespaces of containers not running', { count: released.length });
    for (const record of this.all()) {
      const id = record.id;
      if (record.state.Running || record.state.Status === 'restarting') {
        if (await readExit(this.stateDir(id))) {
          await this.#onExit(id).catch((err: unknown) => this.#log.warn('reconcile: exit handling failed', { id, error: String(err) }));
          continue;
        }
        const shimPid = (await readShimPid(this.stateDir(id))) ?? record.shimPid;
        if (shimPid && isAlive(shimPid) && record.state.Running) {
          await this.network.restore(record).catch((err: unknown) => this.#log.warn('reconcile: published ports not bound again', { id, error: String(err) }));
          this.#watchExit(id);
          // The exit may have landed between the read above and the watch.
          void this.#onExit(id);
          continue;
        }
        await this.#locked(id, () =>
          this.#handleExit(id, 255, new Date().toISOString(), 'the container\'s shim is gone; the container was lost'),
        ).catch(() => undefined);
        await this.runc.kill(id, 9, true).catch(() => undefined);
        continue;
      }
      if (record.state.Status === 'removing') {
        await this.remove(id, { force: true }).catch(() => undefined);
        continue;
      }
      const policy = record.hostConfig.RestartPolicy?.Name;
      if (policy === 'always' || (policy === 'unless-stopped' && !record.manuallyStopped)) {
        this.start(id).catch((err: unknown) => this.#log.warn('restart at daemon start failed', { id, error: String(err) }));
      }
    }
    // A shim killed outright leaves no exit.json: look for those now and then.
    this.#livenessTimer = setInterval(() => void this.#checkLiveness(), 5000);
    this.#livenessTimer.unref();
  }

  async #checkLiveness(): Promise<void> {
    for (const record of this.all()) {
      if (!record.state.Running || !record.shimPid || isAlive(record.shimPid)) continue;
      await this.#onExit(record.id);
      if (this.get(record.id).state.Running) {
        await this.#locked(record.id, () => this.#handleExit(record.id, 255, new Date().toISOString(), "the container's shim is gone")).catch(() => undefined);
      }
    }
  }

  /** The daemon is stopping: containers keep running under their shims. */
  close(): void {
    if (this.#livenessTimer) clearInterval(this.#livenessTimer);
    for (const id of [...this.#watchers.keys()]) this.#unwatch(id);
    for (const timer of this.#restartTimers.values()) clearTimeout(timer);
  }

  // ---- internals ----

  async #update(id: string, change: (c: ContainerRecord) => void): Promise<void> {
    await this.#meta.update((state) => {
      const c = (state.containers as Record<string, ContainerRecord>)[id];
      if (!c) throw new NotFound(`No such container: ${id}`);
      change(c);
    });
  }

  /** Runs operations on one container one at a time. */
  #locked<T>(id: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.#locks.get(id) ?? Promise.resolve();
    const next = previous.then(fn, fn);
    const tail = next.catch(() => undefined);
    this.#locks.set(id, tail);
    void tail.then(() => {
      if (this.#locks.get(id) === tail) this.#locks.delete(id);
    });
    return next;
  }
}

/** A start failure as Docker words it; the CLI reads 127/126 from these words. */
function startError(err: unknown): Error {
  if (isBerthError(err) && !(err instanceof Unavailable)) return err;
  const message = err instanceof Error ? err.message : String(err);
  if (/OCI runtime create failed/.test(message)) return new Unavailable(message);
  return new Unavailable(`failed to create task for container: OCI runtime create failed: ${message}: unknown`);
}


function withTimeout(promise: Promise<void>, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    void promise.then(() => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}
