/**
 * berthd: wires the stores together and serves the Engine API.
 *
 *   <data-root>/
 *     metadata.json        the transactional metadata store (images, references, layers, containers)
 *     content/             the content store (configs, manifests, the layer blobs kept)
 *     snapshots/           the overlay snapshotter (layers, containers' writable layers)
 *     registry/            layer-sources.json: the blobs kept or seen on registries for each layer
 *     network/             networks.json and the address leases (src/network)
 *     volumes/             one folder per volume (src/volumes)
 *     tmp/                 scratch space for loads and imports, emptied at start
 *   <exec-root>/
 *     berthd.pid           the running daemon's pid
 *     berth.sock           the API socket (by default)
 */
import { existsSync } from 'node:fs';
import { mkdir, open, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { containerRoutes } from '../api/routes/containers.js';
import { archiveRoutes } from '../api/routes/archive.js';
import { commitRoutes } from '../api/routes/commit.js';
import { buildRoutes } from '../api/routes/build.js';
import { execRoutes } from '../api/routes/exec.js';
import { pullHandler, registryRoutes } from '../api/routes/registry.js';
import { imageRoutes } from '../api/routes/images.js';
import { networkRoutes } from '../api/routes/networks.js';
import { volumeRoutes } from '../api/routes/volumes.js';
import { hostFacts, systemRoutes } from '../api/routes/system.js';
import { Router, type RequestContext } from '../api/router.js';
import { listenUnix, type ApiServer } from '../api/server.js';
import { LocalContentStore } from '../content/content-store.js';
import { Unavailable, errnoCode } from '../errors/errors.js';
import { isAlive } from '../util/process.js';
import { ContainerManager } from '../containers/container-manager.js';
import { NetworkManager } from '../network/network-manager.js';
import { PortProxy } from '../network/port-proxy.js';
import { VolumeStore } from '../volumes/volume-store.js';
import { ExecManager } from '../containers/exec-manager.js';
import { HealthMonitor } from '../containers/health.js';
import { ImageStore, type ContainerUsage } from '../images/image-store.js';
import { LayerSources } from '../registry/layer-sources.js';
import { RegistryConfig } from '../registry/registry-config.js';
import { findShim } from '../runtime/shim.js';
import { MetadataStore } from '../metadata/metadata-store.js';
import { emptyMetadata, type MetadataV1 } from '../metadata/schema.js';
import { OverlaySnapshotter } from '../snapshots/overlay-snapshotter.js';
import { EventBus } from './events.js';
import type { Logger } from './logger.js';
import { BERTH_VERSION } from './version.js';

/** Debian's static tini, the init for --init when the host has it. */
const TINI = '/usr/bin/tini-static';

export interface DaemonOptions {
  dataRoot: string;
  execRoot: string;
  /** The API socket's path. */
  socketPath: string;
  pidFile: string;
  /** `--insecure-registry`: host, host:port or CIDR reached over plain HTTP (loopback always is). */
  insecureRegistries?: string[];
  /** `--registry-mirror`: URLs a pull tries, in order, before the registry itself. */
  registryMirrors?: string[];
  /** `--bridge`: the default bridge network's device on the host (berth0 unless set). */
  bridgeName?: string;
}

export class Daemon {
  readonly options: DaemonOptions;
  readonly log: Logger;
  readonly content: LocalContentStore;
  readonly snapshots: OverlaySnapshotter;
  readonly meta: MetadataStore<MetadataV1>;
  readonly images: ImageStore;
  /** Which blobs carry each layer: those pulls, loads and imports keep, and those registries hold. */
  readonly layerSources: LayerSources;
  readonly containers: ContainerManager;
  readonly execs: ExecManager;
  readonly health: HealthMonitor;
  readonly events = new EventBus();
  readonly volumes: VolumeStore;
  /** berthd's relays for published ports. */
  readonly ports = new PortProxy();
  readonly scratchDir: string;
  readonly startedAt = new Date();
  /** Set by the registry client when it is wired in. */
  pull: ((ctx: RequestContext) => Promise<void>) | undefined;
  #api: ApiServer | undefined;

  private constructor(
    options: DaemonOptions,
    log: Logger,
    content: LocalContentStore,
    snapshots: OverlaySnapshotter,
    meta: MetadataStore<MetadataV1>,
    networks: NetworkManager,
    volumes: VolumeStore,
  ) {
    this.options = options;
    this.log = log;
    this.content = content;
    this.snapshots = snapshots;
    this.meta = meta;
    this.images = new ImageStore(content, snapshots, meta);
    this.images.setContainerUsage(() => this.containerUsage());
    this.layerSources = new LayerSources(join(options.dataRoot, 'registry'));
    this.scratchDir = join(options.dataRoot, 'tmp');
    this.containers = new ContainerManager(meta, this.images, this.events, log, {
      dataRoot: options.dataRoot,
      execRoot: options.execRoot,
      shim: findShim(),
      ...(existsSync(TINI) ? { init: TINI } : {}),
      networks,
      ports: this.ports,
      volumes,
    });
    this.volumes = volumes;
    this.execs = new ExecManager(this.containers, this.events, options.execRoot, findShim());
    this.health = new HealthMonitor(this.containers, this.execs, this.events, log);
  }

  static async start(options: DaemonOptions, log: Logger): Promise<Daemon> {
    await mkdir(options.dataRoot, { recursive: true, mode: 0o711 });
    await mkdir(options.execRoot, { recursive: true, mode: 0o700 });
    await claimPidFile(options.pidFile);
    const scratch = join(options.dataRoot, 'tmp');
    await rm(scratch, { recursive: true, force: true });
    await mkdir(scratch, { recursive: true, mode: 0o700 });
    const [content, meta] = await Promise.all([
      LocalContentStore.open(join(options.dataRoot, 'content')),
      MetadataStore.open(join(options.dataRoot, 'metadata.json'), emptyMetadata),
    ]);
    // A pull's partial download is resumed by the next pull; every other write a crash cut
    // short (load, import, push, a blob being written) is dropped.
    await content.removeIngests((ref) => ref.startsWith('pull-'));
    const snapshots = new OverlaySnapshotter(join(options.dataRoot, 'snapshots'));
    // Removes what a crash left half-made, and loads the snapshot records.
    await snapshots.cleanup();
    const networks = await NetworkManager.open({ dataRoot: options.dataRoot, execRoot: options.execRoot, ...(options.bridgeName ? { bridgeName: options.bridgeName } : {}) });
    const volumes = await VolumeStore.open(options.dataRoot);
    const daemon = new Daemon(options, log, content, snapshots, meta, networks, volumes);
    const router = new Router();
    systemRoutes(router, daemon);
    imageRoutes(router, daemon);
    containerRoutes(router, daemon);
    execRoutes(router, daemon);
    archiveRoutes(router, daemon);
    commitRoutes(router, daemon);
    buildRoutes(router, daemon);
    registryRoutes(router, daemon);
    networkRoutes(router, daemon);
    volumeRoutes(router, daemon);
    daemon.pull = pullHandler(daemon);
    // Containers that ran on while the daemon was down are found again before the API answers.
    await daemon.containers.reconcile();
    daemon.health.resume();
    await daemon.#removeOrphanSnapshots();
    daemon.#api = await listenUnix(router, options.socketPath, log);
    log.info('berthd started', { version: BERTH_VERSION, dataRoot: options.dataRoot, socket: options.socketPath, pid: process.pid });
    // What a crash left half-made is collected once the API answers, off the start-up path.
    setImmediate(() => {
      void daemon.#collectGarbage();
    });
    return daemon;
  }

  /**
   * Active snapshots that a crash left: layer unpacks cut short, containers whose create never
   * committed. Run before the API answers, while nothing can be using them.
   */
  async #removeOrphanSnapshots(): Promise<void> {
    const containers = new Set(this.containers.all().map((c) => c.id));
    const orphans: string[] = [];
    for await (const info of this.snapshots.walk()) {
      if (info.kind !== 'active') continue;
      if (info.key.startsWith('extract-') || (/^[a-f0-9]{64}$/.test(info.key) && !containers.has(info.key))) orphans.push(info.key);
    }
    for (const key of orphans) {
      await this.snapshots.remove(key).catch((err: unknown) => this.log.warn('orphan snapshot not removed', { key, error: String(err) }));
    }
  }

  async #collectGarbage(): Promise<void> {
    try {
      const removed = await this.images.collectLayers();
      if (removed.length) this.log.info('removed unused layers', { count: removed.length });
      await this.images.collectBlobs();
    } catch (err) {
      this.log.warn('garbage collection failed', { error: err instanceof Error ? err.message : String(err) });
    }
  }

  /** Which containers use which image; containers register here when they land. */
  containerUsage(): ContainerUsage[] {
    return this.containers.all().map((c) => ({ id: c.id, imageId: c.imageId, running: c.state.Running }));
  }

  async info(): Promise<Record<string, unknown>> {
    const host = hostFacts();
    const state = this.meta.read();
    const all = this.containers.all();
    const running = all.filter((c) => c.state.Running && !c.state.Paused).length;
    const paused = all.filter((c) => c.state.Paused).length;
    return {
      ID: 'berth',
      Containers: all.length,
      ContainersRunning: running,
      ContainersPaused: paused,
      ContainersStopped: all.length - running - paused,
      Images: Object.keys(state.images).length,
      Driver: 'overlay2',
      DriverStatus: [['Backing Filesystem', 'extfs']],
      Plugins: { Volume: ['local'], Network: ['bridge', 'host', 'null'], Authorization: null, Log: ['json-file'] },
      MemoryLimit: true,
      SwapLimit: true,
      CpuCfsPeriod: true,
      CpuCfsQuota: true,
      CPUShares: true,
      CPUSet: true,
      PidsLimit: true,
      IPv4Forwarding: true,
      Debug: false,
      NFd: 0,
      OomKillDisable: true,
      NGoroutines: 0,
      SystemTime: new Date().toISOString(),
      LoggingDriver: 'json-file',
      CgroupDriver: 'cgroupfs',
      CgroupVersion: await cgroupVersion(),
      NEventsListener: 0,
      KernelVersion: host.kernel,
      OperatingSystem: await operatingSystem(),
      OSVersion: '',
      OSType: 'linux',
      Architecture: process.arch === 'x64' ? 'x86_64' : process.arch,
      IndexServerAddress: 'https://index.docker.io/v1/',
      RegistryConfig: new RegistryConfig({ insecureRegistries: this.options.insecureRegistries ?? [], registryMirrors: this.options.registryMirrors ?? [] }).info(),
      NCPU: host.ncpu,
      MemTotal: host.memTotal,
      DockerRootDir: this.options.dataRoot,
      Name: host.hostname,
      Labels: [],
      ExperimentalBuild: false,
      ServerVersion: BERTH_VERSION,
      Runtimes: { runc: { path: 'runc' } },
      DefaultRuntime: 'runc',
      Swarm: { NodeID: '', NodeAddr: '', LocalNodeState: 'inactive', ControlAvailable: false, Error: '', RemoteManagers: null },
      LiveRestoreEnabled: true,
      Isolation: '',
      InitBinary: 'berth-init',
      SecurityOptions: ['name=seccomp,profile=builtin', 'name=no-new-privileges'],
      Warnings: [],
    };
  }

  async diskUsage(): Promise<Record<string, unknown>> {
    const images = await this.images.list();
    const users = this.images.layerUsers();
    const state = this.meta.read();
    const layersSize = Object.values(state.layers).reduce((s, l) => s + l.size, 0);
    const usage = this.containerUsage();
    return {
      LayersSize: layersSize,
      Images: images.map((image) => {
        const shared = image.record.layers.filter((c) => (users.get(c) ?? 0) > 1).reduce((s, c) => s + (state.layers[c]?.size ?? 0), 0);
        return {
          Id: image.id,
          ParentId: image.record.parent ?? '',
          RepoTags: image.repoTags.map(familiarOf),
          RepoDigests: image.repoDigests.map(familiarOf),
          Created: image.config.created ? Math.floor(Date.parse(image.config.created) / 1000) : 0,
          Size: image.size,
          SharedSize: shared,
          Labels: image.config.config?.Labels ?? {},
          Containers: usage.filter((c) => c.imageId === image.id).length,
        };
      }),
      // Each container's writable layer, by id (the API's route lists them as the container list does).
      ContainerSizes: Object.fromEntries(
        await Promise.all(this.containers.all().map(async (c) => [c.id, await this.snapshots.usage(c.id).then((u) => u.size, () => 0)] as const)),
      ),
      Volumes: await Promise.all(
        this.volumes.list().map(async (v) => ({
          Name: v.name,
          Driver: 'local',
          Mountpoint: this.volumes.mountpoint(v.name),
          CreatedAt: v.created.replace(/\.\d+Z$/, 'Z'),
          Labels: Object.keys(v.labels).length ? v.labels : null,
          Scope: 'local',
          Options: null,
          UsageData: { Size: await this.volumes.size(v.name).catch(() => -1), RefCount: this.containers.volumeUsers(v.name).length },
        })),
      ),
      BuildCache: [],
    };
  }

  async stop(): Promise<void> {
    this.containers.close();
    this.health.close();
    this.ports.closeAll();
    await this.#api?.close();
    await rm(this.options.pidFile, { force: true });
    this.log.info('berthd stopped');
  }
}

function familiarOf(full: string): string {
  return full.replace(/^docker\.io\/library\//, '').replace(/^docker\.io\//, '');
}

/** Refuses to start while another live berthd holds the pid file; takes it otherwise. */
async function claimPidFile(path: string): Promise<void> {
  let pid: number | undefined;
  try {
    pid = Number.parseInt(await readFile(path, 'utf8'), 10);
  } catch (err) {
    if (errnoCode(err) !== 'ENOENT') throw err;
  }
  if (pid && pid > 0 && pid !== process.pid && isAlive(pid)) {
    throw new Unavailable(`pid file found, ensure berthd is not running or delete ${path} (pid ${pid} is alive)`);
  }
  const handle = await open(path, 'w', 0o644);
  await handle.writeFile(`${process.pid}\n`);
  await handle.close();
}


async function cgroupVersion(): Promise<string> {
  try {
    await readFile('/sys/fs/cgroup/cgroup.controllers');
    return '2';
  } catch {
    return '1';
  }
}

async function operatingSystem(): Promise<string> {
  try {
    const text = await readFile('/etc/os-release', 'utf8');
    return /^PRETTY_NAME="?([^"\n]*)"?/m.exec(text)?.[1] ?? 'Linux';
  } catch {
    return 'Linux';
  }
}
