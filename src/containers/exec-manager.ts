/**
 * exec: a process started in a running container, joining its namespaces and cgroup. Each
 * exec runs under a berth-shim of its own (`runc exec -d` under the shim, which holds its
 * stdio or pty and records its exit), as the container's own process does. Exec records live
 * in memory, as Docker keeps them.
 */
import { randomBytes } from 'node:crypto';
import { watch, type FSWatcher } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { Conflict, InvalidArgument, NotFound } from '../errors/errors.js';
import type { EventBus } from '../daemon/events.js';
import { availableCapabilities } from '../runtime/capabilities.js';
import type { OciSpec } from '../runtime/oci-spec.js';
import { connectAttach, controlShim, launchShim, readExit } from '../runtime/shim.js';
import { resolveUser } from '../runtime/user.js';
import { bridge, parseDetachKeys, type AttachOptions } from './attach.js';
import type { ContainerManager } from './container-manager.js';

/** Docker's exec create body. */
export interface ExecConfig {
  AttachStdin?: boolean;
  AttachStdout?: boolean;
  AttachStderr?: boolean;
  Tty?: boolean;
  ConsoleSize?: [number, number] | null;
  Cmd?: string[];
  Env?: string[] | null;
  User?: string;
  WorkingDir?: string;
  Privileged?: boolean;
  DetachKeys?: string;
}

export interface ExecRecord {
  id: string;
  containerId: string;
  config: ExecConfig;
  running: boolean;
  started: boolean;
  exitCode: number | null;
  pid: number;
}

export class ExecManager {
  readonly #containers: ContainerManager;
  readonly #events: EventBus;
  readonly #execRoot: string;
  readonly #shim: string;
  readonly #execs = new Map<string, ExecRecord>();
  readonly #watchers = new Map<string, FSWatcher>();
  /** Resolves when the exec's process has ended. */
  readonly #exits = new Map<string, Promise<void>>();

  constructor(containers: ContainerManager, events: EventBus, execRoot: string, shim: string) {
    this.#containers = containers;
    this.#events = events;
    this.#execRoot = execRoot;
    this.#shim = shim;
  }

  get(id: string): ExecRecord {
    const exec = this.#execs.get(id);
    if (!exec) throw new NotFound(`No such exec instance: ${id}`);
    return exec;
  }

  /** Ids of the execs of a container (inspect's ExecIDs). */
  ofContainer(containerId: string): string[] {
    return [...this.#execs.values()].filter((e) => e.containerId === containerId).map((e) => e.id);
  }

  stateDir(id: string): string {
    return join(this.#execRoot, 'execs', id.slice(0, 24));
  }

  create(idOrName: string, config: ExecConfig): { Id: string } {
    const container = this.#containers.get(idOrName);
    checkRunning(container.id, container.state);
    if (!config.Cmd || config.Cmd.length === 0) throw new InvalidArgument('No exec command specified');
    if (config.DetachKeys) parseDetachKeys(config.DetachKeys);
    const id = randomBytes(32).toString('hex');
    this.#execs.set(id, { id, containerId: container.id, config, running: false, started: false, exitCode: null, pid: 0 });
    this.#events.publish('container', `exec_create: ${config.Cmd.join(' ')}`, container.id, { execID: id });
    return { Id: id };
  }

  /**
   * Starts the exec. With a client connection, joins it to the process's stdio and resolves
   * when the process has ended; detached, resolves once it runs.
   */
  async start(id: string, opts: { detach: boolean; tty?: boolean; consoleSize?: [number, number] | null }, client?: () => Duplex): Promise<void> {
    const exec = this.get(id);
    if (exec.started) throw new Conflict(`Error: Exec command ${id} has already run`);
    const container = this.#containers.get(exec.containerId);
    checkRunning(container.id, container.state);
    exec.started = true;
    const tty = opts.tty ?? exec.config.Tty ?? false;
    const stateDir = this.stateDir(id);
    await rm(stateDir, { recursive: true, force: true });
    await mkdir(stateDir, { recursive: true, mode: 0o700 });
    const processPath = join(stateDir, 'process.json');
    await writeFile(processPath, JSON.stringify(await this.#process(container.id, exec.config, tty, opts.consoleSize ?? exec.config.ConsoleSize)));
    const stdin = exec.config.AttachStdin === true && !opts.detach;
    let launched: { pid: number };
    try {
      launched = await launchShim(this.#shim, {
        id: container.id,
        stateDir,
        runtime: this.#containers.runc.binary,
        runtimeRoot: this.#containers.runc.root,
        logPath: join(stateDir, 'output.log'),
        logMaxSize: 1024 * 1024,
        logMaxFiles: 1,
        terminal: tty,
        stdin,
        stdinOnce: stdin && !tty,
        waitAttach: !opts.detach && client !== undefined,
        execProcess: processPath,
      });
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      exec.exitCode = /executable file not found|no such file or directory/.test(message) ? 127 : 126;
      await rm(stateDir, { recursive: true, force: true });
      throw new Conflict(`OCI runtime exec failed: ${message}: unknown`);
    }
    exec.pid = launched.pid;
    exec.running = true;
    this.#events.publish('container', `exec_start: ${exec.config.Cmd!.join(' ')}`, container.id, { execID: id });
    const exited = this.#watch(exec);
    this.#exits.set(id, exited);
    if (opts.detach || !client) return;
    const shim = await connectAttach(stateDir).catch(() => undefined);
    const socket = client();
    if (!shim) {
      await exited;
      socket.end();
      return;
    }
    const attach: AttachOptions = {
      stdin,
      stdout: exec.config.AttachStdout !== false,
      stderr: exec.config.AttachStderr !== false,
      tty,
      detachKeys: parseDetachKeys(exec.config.DetachKeys),
      keepClientOpen: true,
    };
    const how = await bridge(socket, shim, attach);
    if (how === 'exited') {
      await exited;
      socket.end();
    }
  }

  async resize(id: string, height: number, width: number): Promise<void> {
    const exec = this.get(id);
    if (!exec.running) throw new Conflict(`Exec ${id} is not running`);
    if (height > 0 && width > 0) await controlShim(this.stateDir(id), `resize ${height} ${width}`);
  }

  inspect(id: string): Record<string, unknown> {
    const exec = this.get(id);
    const [entrypoint, ...args] = exec.config.Cmd ?? [];
    return {
      ID: exec.id,
      Running: exec.running,
      ExitCode: exec.exitCode,
      ProcessConfig: { tty: exec.config.Tty ?? false, entrypoint, arguments: args, privileged: exec.config.Privileged ?? false, user: exec.config.User ?? '' },
      OpenStdin: exec.config.AttachStdin ?? false,
      OpenStderr: exec.config.AttachStderr ?? false,
      OpenStdout: exec.config.AttachStdout ?? false,
      CanRemove: false,
      ContainerID: exec.containerId,
      DetachKeys: exec.config.DetachKeys ?? '',
      Pid: exec.pid,
    };
  }

  /** The process to exec: the container's own, with the exec's command, env, user and dir. */
  async #process(containerId: string, config: ExecConfig, tty: boolean, consoleSize: [number, number] | null | undefined): Promise<OciSpec['process']> {
    const spec = JSON.parse(await readFile(join(this.#containers.containerDir(containerId), 'config.json'), 'utf8')) as OciSpec;
    const process = spec.process;
    const record = this.#containers.get(containerId);
    const user = config.User ? await resolveUser(this.#containers.rootfs(containerId), config.User, record.hostConfig.GroupAdd ?? []) : undefined;
    const env = new Map<string, string>();
    for (const e of [...process.env, ...(config.Env ?? [])]) {
      const eq = e.indexOf('=');
      env.set(eq < 0 ? e : e.slice(0, eq), e);
    }
    const out: OciSpec['process'] = {
      ...process,
      terminal: tty,
      args: config.Cmd!,
      env: [...env.values()],
      cwd: config.WorkingDir || process.cwd,
      ...(user ? { user: { uid: user.uid, gid: user.gid, additionalGids: user.additionalGids } } : {}),
    };
    if (tty && consoleSize && consoleSize[0] > 0 && consoleSize[1] > 0) out.consoleSize = { height: consoleSize[0], width: consoleSize[1] };
    if (config.Privileged) {
      const all = [...availableCapabilities()];
      out.capabilities = { bounding: all, effective: all, permitted: all };
    }
    return out;
  }

  /** Resolves when the exec's process has ended and its exit code is known. */
  #watch(exec: ExecRecord): Promise<void> {
    const stateDir = this.stateDir(exec.id);
    return new Promise((resolve) => {
      let done = false;
      const check = async () => {
        if (done) return;
        const exit = await readExit(stateDir).catch(() => undefined);
        if (!exit || done) return;
        done = true;
        this.#watchers.get(exec.id)?.close();
        this.#watchers.delete(exec.id);
        exec.exitCode = exit.exitCode;
        exec.running = false;
        this.#events.publish('container', 'exec_die', exec.containerId, { execID: exec.id, exitCode: String(exit.exitCode) });
        resolve();
        // The shim is done with its state; keep the record (inspect reads the exit code).
        setTimeout(() => void rm(stateDir, { recursive: true, force: true }), 1000).unref();
      };
      try {
        const watcher = watch(stateDir, (_e, file) => {
          if (file === 'exit.json') void check();
        });
        watcher.on('error', () => undefined);
        this.#watchers.set(exec.id, watcher);
      } catch {
        // Fall back to the poll below.
      }
      void check();
      const poll = setInterval(() => {
        if (done) clearInterval(poll);
        else void check();
      }, 1000);
      poll.unref();
    });
  }

  /** Forgets the execs of a removed container. */
  forget(containerId: string): void {
    for (const [id, exec] of this.#execs) {
      if (exec.containerId !== containerId) continue;
      this.#execs.delete(id);
      this.#exits.delete(id);
    }
  }

  /**
   * Runs `cmd` in running container `containerId` to its end, as a health check does: its
   * exit code and output (stdout and stderr, in order, at most `maxOutput` bytes); killed
   * after `timeoutMs`. The exec is forgotten afterwards (inspect does not list it).
   */
  async run(containerId: string, cmd: string[], opts: { timeoutMs: number; maxOutput: number }): Promise<{ exitCode: number; output: string; timedOut: boolean }> {
    const { Id: id } = this.create(containerId, { Cmd: cmd, AttachStdout: true, AttachStderr: true });
    try {
      await this.start(id, { detach: true });
      const exec = this.get(id);
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        try {
          process.kill(exec.pid, 'SIGKILL');
        } catch {
          // Ended meanwhile.
        }
      }, opts.timeoutMs);
      try {
        await this.#exits.get(id);
      } finally {
        clearTimeout(timer);
      }
      const output = await readOutput(join(this.stateDir(id), 'output.log'), opts.maxOutput);
      return { exitCode: exec.exitCode ?? -1, output, timedOut };
    } finally {
      this.#execs.delete(id);
      this.#exits.delete(id);
    }
  }
}

function checkRunning(id: string, state: { Running: boolean; Paused: boolean; Restarting: boolean }): void {
  if (state.Paused) throw new Conflict(`container ${id} is paused, unpause the container before exec`);
  if (!state.Running || state.Restarting) throw new Conflict(`container ${id} is not running`);
}

/** The text of a json-file log (the shim's), stdout and stderr as they came, cut at `max` bytes. */
async function readOutput(path: string, max: number): Promise<string> {
  let text = '';
  try {
    text = await readFile(path, 'utf8');
  } catch {
    return '';
  }
  let out = '';
  for (const line of text.split('\n')) {
    if (!line) continue;
    try {
      out += (JSON.parse(line) as { log?: string }).log ?? '';
    } catch {
      // A line cut short: the rest is not there.
    }
    if (Buffer.byteLength(out) >= max) return Buffer.from(out).subarray(0, max).toString('utf8');
  }
  return out;
}
