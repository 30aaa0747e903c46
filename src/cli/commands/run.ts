/**
 * The commands that hijack a container's stdio: run, create (its first half), start and
 * attach. Their flow is the docker CLI's, request for request: create (pulling on "No such
 * image"), attach with the Upgrade hijack before start, wait registered before start, start,
 * resize a TTY, then stream until the output ends or the user detaches; the exit status is
 * the container's.
 */
import { constants as fsConstants } from 'node:fs';
import { open, rm, stat, writeFile } from 'node:fs/promises';
import type { Socket } from 'node:net';
import { ApiError, readAll, type Response } from '../../client/engine-client.js';
import { familiarString, parseReference, type Reference } from '../../images/reference.js';
import { parseArgs, type ParsedArgs } from '../args.js';
import type { CliContext, Command } from '../command.js';
import { ExitError } from '../command.js';
import {
  CONTAINER_FLAGS,
  CREATE_FLAGS,
  ContainerOptsError,
  RUN_ONLY_FLAGS,
  createRequestBody,
  parseContainerOptions,
  sortedFlags,
  type ParsedContainer,
} from '../parse-opts.js';
import { printJsonMessages } from '../progress.js';
import { HijackedStream, SIGPIPE_STATUS, terminalSize, type HijackEnd } from '../terminal.js';

/** What `GET /containers/{id}/json` gives that these commands read. */
export interface ContainerInspect {
  Id: string;
  Name: string;
  Config: { Tty: boolean; OpenStdin: boolean };
  State: { Running: boolean; Paused: boolean; Restarting: boolean; Status: string };
  HostConfig: { AutoRemove: boolean };
}

/** A container name or id as a path segment. */
export function containerPath(idOrName: string, rest = ''): string {
  return `/containers/${encodeURIComponent(idOrName)}${rest}`;
}

/** An error's text as docker prints it: daemon errors get "Error response from daemon: ". */
export function errorText(err: unknown): string {
  if (err instanceof ApiError) return `Error response from daemon: ${err.message}`;
  return err instanceof Error ? err.message : String(err);
}

/** docker's withHelp: "berth: <message>\n\nRun 'berth run --help' for more information". */
export function withHelp(message: string, command: string, exitCode = 125): ExitError {
  return new ExitError(`berth: ${message}\n\nRun 'berth ${command} --help' for more information`, exitCode);
}

/**
 * docker's toStatusError for run: 127 when the command cannot be found, 126 when it cannot
 * be invoked, 125 for any other failure before the container runs.
 */
export function toStatusError(err: unknown): ExitError {
  const text = errorText(err);
  let code = 125;
  if (/executable file not found|no such file or directory|system cannot find the file specified/.test(text)) code = 127;
  else if (/permission denied|is a directory/.test(text)) code = 126;
  return withHelp(text, 'run', code);
}

export const runCommand: Command = {
  spec: {
    usage: 'run [OPTIONS] IMAGE [COMMAND] [ARG...]',
    description: 'Create and run a new container from an image',
    aliases: ['berth container run', 'berth run'],
    args: { min: 1 },
    interspersed: false,
    flags: sortedFlags(CONTAINER_FLAGS, CREATE_FLAGS, RUN_ONLY_FLAGS),
  },
  daemonErrorExit: 125,
  async run(ctx, argv, path) {
    const a = parseArgs(this.spec, argv, path);
    const parsed = parseForCreate(a, 'run');
    return runContainer(ctx, a, parsed);
  },
};

export const createCommand: Command = {
  spec: {
    usage: 'create [OPTIONS] IMAGE [COMMAND] [ARG...]',
    description: 'Create a new container',
    aliases: ['berth container create', 'berth create'],
    args: { min: 1 },
    interspersed: false,
    flags: sortedFlags(CONTAINER_FLAGS, CREATE_FLAGS),
  },
  async run(ctx, argv, path) {
    const a = parseArgs(this.spec, argv, path);
    const parsed = parseForCreate(a, 'create');
    let id: string;
    try {
      id = await createContainer(ctx, parsed, createOptions(a));
    } catch (err) {
      if (err instanceof ApiError || err instanceof ExitError) throw err;
      throw new ExitError(errorText(err), 1);
    }
    ctx.out(`${id}\n`);
    return 0;
  },
};

function parseForCreate(a: ParsedArgs, command: string): ParsedContainer {
  const pull = a.string('pull') ?? 'missing';
  if (!['always', 'missing', 'never', ''].includes(pull)) {
    throw withHelp(`invalid pull option: '${pull}': must be one of "always", "missing" or "never"`, command);
  }
  try {
    return parseContainerOptions(a);
  } catch (err) {
    if (err instanceof ContainerOptsError) throw withHelp(err.message, command);
    throw err;
  }
}

interface CreateOptions {
  name: string | undefined;
  platform: string | undefined;
  pull: string;
  quiet: boolean;
}

function createOptions(a: ParsedArgs): CreateOptions {
  return { name: a.string('name') || undefined, platform: a.string('platform') || undefined, pull: a.string('pull') ?? 'missing', quiet: a.bool('quiet') };
}

/** docker's createContainer: the cidfile, the pull policy, create, and the retry after a pull. */
async function createContainer(ctx: CliContext, parsed: ParsedContainer, opts: CreateOptions): Promise<string> {
  const cid = await CidFile.create(parsed.hostConfig.ContainerIDFile);
  try {
    const image = parsed.config.Image;
    let named: Reference | undefined;
    if (!/^(sha256:)?[a-f0-9]{64}$/.test(image)) {
      named = parseReference(image);
      if (named.tag === undefined && named.digest === undefined) named.tag = 'latest';
    }
    const platform = opts.platform ? normalizePlatform(opts.platform) : undefined;
    if (opts.pull === 'always' && named) await pullImage(ctx, named, opts.platform, opts.quiet);

    parsed.hostConfig.ConsoleSize = terminalSize();
    const body = createRequestBody(parsed);
    const create = () =>
      ctx.client.json<{ Id: string; Warnings: string[] | null }>('POST', '/containers/create', { query: { name: opts.name, platform }, body });
    let response: { Id: string; Warnings: string[] | null };
    try {
      response = await create();
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 404 && named && opts.pull === 'missing')) throw err;
      if (!opts.quiet) ctx.err(`Unable to find image '${familiarString(named)}' locally\n`);
      await pullImage(ctx, named, opts.platform, opts.quiet);
      response = await create();
    }
    const warnings = [...(response.Warnings ?? [])];
    const localDns = parsed.hostConfig.Dns.find((ip) => /^127\./.test(ip) || ip === '::1');
    if (localDns) warnings.push(`Localhost DNS (${localDns}) may fail in containers.`);
    for (const w of warnings) ctx.err(`WARNING: ${w}\n`);
    await cid.write(response.Id);
    return response.Id;
  } finally {
    await cid.close();
  }
}

/** `--platform linux` or `amd64` as the API wants it: os/arch[/variant]. */
function normalizePlatform(p: string): string {
  const parts = p.toLowerCase().split('/');
  const arch = process.arch === 'x64' ? 'amd64' : process.arch;
  if (parts.length === 1) return ['linux', 'windows', 'darwin', 'freebsd'].includes(parts[0]!) ? `${parts[0]}/${arch}` : `linux/${parts[0]}`;
  return parts.join('/');
}

/** POST /images/create, its progress on stderr (nothing with -q), as `run` and `create` pull. */
async function pullImage(ctx: CliContext, ref: Reference, platform: string | undefined, quiet: boolean): Promise<void> {
  const messages = ctx.client.jsonLines('POST', '/images/create', {
    query: { fromImage: `${ref.domain}/${ref.path}`, tag: ref.digest ?? ref.tag ?? 'latest', platform: platform?.toLowerCase() },
    // What docker sends when no credentials are stored: "{}", base64url.
    headers: { 'X-Registry-Auth': Buffer.from('{}').toString('base64url') + '=' },
  });
  const errCtx: CliContext = {
    get client() {
      return ctx.client;
    },
    out: quiet ? () => undefined : (t) => ctx.err(t),
    err: (t) => ctx.err(t),
  };
  await printJsonMessages(messages, errCtx, Boolean(process.stderr.isTTY) && !quiet);
}

/** --cidfile: refused when it exists, removed again unless an id was written. */
class CidFile {
  readonly #path: string;
  #written = false;

  private constructor(path: string) {
    this.#path = path;
  }

  static async create(path: string): Promise<CidFile> {
    const file = new CidFile(path);
    if (!path) return file;
    if (await stat(path).then(() => true, () => false)) {
      throw new Error(`container ID file found, make sure the other container isn't running or delete ${path}`);
    }
    try {
      await (await open(path, fsConstants.O_CREAT | fsConstants.O_WRONLY | fsConstants.O_TRUNC, 0o666)).close();
    } catch (err) {
      throw new Error(`failed to create the container ID file: ${(err as Error).message}`);
    }
    return file;
  }

  async write(id: string): Promise<void> {
    if (!this.#path) return;
    try {
      await writeFile(this.#path, id);
    } catch (err) {
      throw new Error(`failed to write the container ID to the file: ${(err as Error).message}`);
    }
    this.#written = true;
  }

  async close(): Promise<void> {
    if (!this.#path || this.#written) return;
    await rm(this.#path, { force: true });
  }
}

// --- run ------------------------------------------------------------------------------

async function runContainer(ctx: CliContext, a: ParsedArgs, parsed: ParsedContainer): Promise<number> {
  const config = parsed.config;
  const detach = a.bool('detach');
  if (!detach) {
    if (config.Tty && config.AttachStdin && !process.stdin.isTTY) throw new ExitError('the input device is not a TTY', 1);
  } else {
    if (parsed.attach.length) throw new ExitError('conflicting options: cannot specify both --attach and --detach', 1);
    config.AttachStdin = false;
    config.AttachStdout = false;
    config.AttachStderr = false;
    config.StdinOnce = false;
  }

  let id: string;
  try {
    id = await createContainer(ctx, parsed, createOptions(a));
  } catch (err) {
    throw toStatusError(err);
  }

  const session = new Session();
  try {
    if (a.bool('sig-proxy')) session.add(forwardSignals(ctx, id));
    const attach = config.AttachStdin || config.AttachStdout || config.AttachStderr;
    if (!attach) ctx.out(`${id}\n`);

    let stream: HijackedStream | undefined;
    if (attach) {
      try {
        stream = await attachStream(ctx, session, id, {
          stdin: config.AttachStdin,
          stdout: config.AttachStdout,
          stderr: config.AttachStderr,
          tty: config.Tty,
          detachKeys: a.string('detach-keys') || undefined,
        });
      } catch (err) {
        // Not a failure of the flags or of create: docker reports it plainly, status 1.
        throw new ExitError(errorText(err), 1);
      }
    }

    const waiter = await waitExitOrRemoved(ctx, id, parsed.hostConfig.AutoRemove);
    session.add(waiter.cancel);

    try {
      await ctx.client.send('POST', containerPath(id, '/start'));
    } catch (err) {
      if (stream) {
        stream.cancel();
        await stream.done;
      }
      if (parsed.hostConfig.AutoRemove) await waiter.status;
      throw toStatusError(err);
    }

    if (!stream) return 0;
    if (config.Tty && process.stdout.isTTY) session.add(monitorTtySize(ctx, containerPath(id, '/resize')));

    const first = await Promise.race([
      stream.done.then((end) => ({ kind: 'stream' as const, end })),
      waiter.status.then((status) => ({ kind: 'status' as const, status })),
    ]);
    if (first.kind === 'stream') {
      if (first.end.kind === 'detached') return 0;
      if (first.end.kind === 'closed') return SIGPIPE_STATUS;
      if (first.end.kind === 'error') throw new ExitError(first.end.error.message, 1);
      return await waiter.status;
    }
    // The container exited: keep the output flowing to its end, unless none is attached.
    if (!config.AttachStdout && !config.AttachStderr) stream.cancel();
    if ((await stream.done).kind === 'closed') return SIGPIPE_STATUS;
    return first.status;
  } finally {
    session.close();
  }
}

// --- start ----------------------------------------------------------------------------

export const startCommand: Command = {
  spec: {
    usage: 'start [OPTIONS] CONTAINER [CONTAINER...]',
    description: 'Start one or more stopped containers',
    aliases: ['berth container start', 'berth start'],
    args: { min: 1 },
    flags: [
      { name: 'attach', short: 'a', type: 'bool', description: 'Attach STDOUT/STDERR and forward signals' },
      { name: 'checkpoint', type: 'string', description: 'Restore from this checkpoint' },
      { name: 'checkpoint-dir', type: 'string', description: 'Use a custom checkpoint storage directory' },
      { name: 'detach-keys', type: 'string', description: 'Override the key sequence for detaching a container' },
      { name: 'interactive', short: 'i', type: 'bool', description: "Attach container's STDIN" },
    ],
  },
  async run(ctx, argv, path) {
    const a = parseArgs(this.spec, argv, path);
    if (a.bool('attach') || a.bool('interactive')) {
      if (a.args.length > 1) throw new ExitError('you cannot start and attach multiple containers at once', 1);
      return startAttached(ctx, a.args[0]!, a.bool('interactive'), a.string('detach-keys') || undefined);
    }
    if (a.string('checkpoint')) throw new ExitError('checkpoints are not supported by berth', 1);
    const failed: string[] = [];
    for (const name of a.args) {
      try {
        await ctx.client.send('POST', containerPath(name, '/start'));
        ctx.out(`${name}\n`);
      } catch (err) {
        if (!(err instanceof ApiError)) throw err;
        ctx.err(`${errorText(err)}\n`);
        failed.push(name);
      }
    }
    if (failed.length) throw new ExitError(`Error: failed to start containers: ${failed.join(', ')}`, 1);
    return 0;
  },
};

async function startAttached(ctx: CliContext, name: string, interactive: boolean, detachKeys: string | undefined): Promise<number> {
  const c = await ctx.client.json<ContainerInspect>('GET', containerPath(name, '/json'));
  const session = new Session();
  try {
    if (!c.Config.Tty) session.add(forwardSignals(ctx, c.Id));
    const stream = await attachStream(ctx, session, c.Id, {
      stdin: interactive && c.Config.OpenStdin,
      stdout: true,
      stderr: true,
      tty: c.Config.Tty,
      detachKeys,
    });
    const waiter = await waitExitOrRemoved(ctx, c.Id, c.HostConfig.AutoRemove);
    session.add(waiter.cancel);
    try {
      await ctx.client.send('POST', containerPath(c.Id, '/start'));
    } catch (err) {
      stream.cancel();
      await stream.done;
      if (c.HostConfig.AutoRemove) await waiter.status;
      throw err;
    }
    if (c.Config.Tty && process.stdout.isTTY) session.add(monitorTtySize(ctx, containerPath(c.Id, '/resize')));
    const end = await stream.done;
    if (end.kind === 'detached') return 0;
    if (end.kind === 'closed') return SIGPIPE_STATUS;
    if (end.kind === 'error') throw new ExitError(end.error.message, 1);
    return await waiter.status;
  } finally {
    session.close();
  }
}

// --- attach ---------------------------------------------------------------------------

export const attachCommand: Command = {
  spec: {
    usage: 'attach [OPTIONS] CONTAINER',
    description: 'Attach local standard input, output, and error streams to a running container',
    aliases: ['berth container attach', 'berth attach'],
    args: { min: 1, max: 1 },
    flags: [
      { name: 'detach-keys', type: 'string', description: 'Override the key sequence for detaching a container' },
      { name: 'no-stdin', type: 'bool', description: 'Do not attach STDIN' },
      { name: 'sig-proxy', type: 'bool', default: true, description: 'Proxy all received signals to the process' },
    ],
  },
  async run(ctx, argv, path) {
    const a = parseArgs(this.spec, argv, path);
    const name = a.args[0]!;
    const session = new Session();
    try {
      // Registered first, so an exit between the checks and the attach is not missed.
      let waitError: unknown;
      let waitResponse: Response | undefined;
      try {
        waitResponse = await ctx.client.call('POST', containerPath(name, '/wait'));
        const body = waitResponse.body;
        session.add(() => body.destroy());
      } catch (err) {
        waitError = err;
      }
      const c = await inspectRunning(ctx, name);
      if (!a.bool('no-stdin') && c.Config.Tty && !process.stdin.isTTY) throw new ExitError('the input device is not a TTY', 1);
      if (a.bool('sig-proxy') && !c.Config.Tty) session.add(forwardSignals(ctx, name));
      const stream = await attachStream(ctx, session, name, {
        stdin: !a.bool('no-stdin') && c.Config.OpenStdin,
        stdout: true,
        stderr: true,
        tty: c.Config.Tty,
        detachKeys: a.string('detach-keys') || undefined,
      });
      await inspectRunning(ctx, name);
      if (c.Config.Tty && process.stdout.isTTY) {
        // A size one off first, so a shell redraws its prompt on every attach after the first.
        const [h, w] = terminalSize();
        await ctx.client.send('POST', containerPath(name, '/resize'), { query: { h: h + 1, w: w + 1 } }).catch(() => undefined);
        session.add(monitorTtySize(ctx, containerPath(name, '/resize')));
      }
      const end = await stream.done;
      if (end.kind === 'detached') throw new ExitError('read escape sequence', 1);
      if (end.kind === 'closed') return SIGPIPE_STATUS;
      if (end.kind === 'error') throw new ExitError(end.error.message, 1);
      if (waitError) throw waitError;
      const text = (await readAll(waitResponse!.body)).toString('utf8');
      const result = JSON.parse(text) as { StatusCode: number; Error?: { Message?: string } | null };
      if (result.Error?.Message) throw new ExitError(result.Error.Message, 1);
      return result.StatusCode;
    } finally {
      session.close();
    }
  },
};

async function inspectRunning(ctx: CliContext, name: string): Promise<ContainerInspect> {
  const c = await ctx.client.json<ContainerInspect>('GET', containerPath(name, '/json'));
  if (!c.State.Running) throw new ExitError('You cannot attach to a stopped container, start it first', 1);
  if (c.State.Paused) throw new ExitError('You cannot attach to a paused container, unpause it first', 1);
  if (c.State.Restarting) throw new ExitError('You cannot attach to a restarting container, wait until it is running', 1);
  return c;
}

// --- the pieces -----------------------------------------------------------------------

/** Things to undo when a command ends: listeners, sockets, raw mode. */
export class Session {
  #closers: Array<() => void> = [];
  #stdinUsed = false;

  add(closer: () => void): void {
    this.#closers.push(closer);
  }

  useStdin(): void {
    this.#stdinUsed = true;
  }

  close(): void {
    for (const c of this.#closers.reverse()) {
      try {
        c();
      } catch {
        // Undoing is best effort.
      }
    }
    this.#closers = [];
    // A stdin left open would keep the process alive.
    if (this.#stdinUsed) process.stdin.destroy();
  }
}

interface AttachStreams {
  stdin: boolean;
  stdout: boolean;
  stderr: boolean;
  tty: boolean;
  detachKeys: string | undefined;
}

/** POST /containers/{id}/attach with the Upgrade hijack, and the streaming of it. */
export async function attachStream(ctx: CliContext, session: Session, id: string, s: AttachStreams): Promise<HijackedStream> {
  const { socket, head } = await ctx.client.hijack('POST', containerPath(id, '/attach'), {
    query: {
      stream: true,
      stdin: s.stdin || undefined,
      stdout: s.stdout || undefined,
      stderr: s.stderr || undefined,
      detachKeys: s.detachKeys,
    },
    headers: { 'Content-Type': 'text/plain' },
  });
  session.add(() => (socket as Socket).destroy());
  if (s.stdin) session.useStdin();
  const stream = new HijackedStream({
    socket,
    head,
    stdin: s.stdin ? process.stdin : undefined,
    stdout: s.stdout ? process.stdout : undefined,
    // With a TTY stderr comes through stdout's stream anyway.
    stderr: s.stderr ? (s.tty ? process.stdout : process.stderr) : undefined,
    tty: s.tty,
    detachKeys: s.detachKeys,
    warn: (t) => ctx.err(t),
  });
  session.add(() => stream.cancel());
  return stream;
}

export interface Waiter {
  /** The exit status; 125 when waiting failed. */
  status: Promise<number>;
  cancel(): void;
}

/**
 * POST /containers/{id}/wait?condition=next-exit (removed with --rm), sent before start: the
 * daemon answers the headers at once and the body at exit.
 */
export async function waitExitOrRemoved(ctx: CliContext, id: string, removed: boolean): Promise<Waiter> {
  let canceled = false;
  let res: Response;
  try {
    res = await ctx.client.call('POST', containerPath(id, '/wait'), { query: { condition: removed ? 'removed' : 'next-exit' } });
  } catch (err) {
    ctx.err(`error waiting for container: ${errorText(err)}\n`);
    return { status: Promise.resolve(125), cancel: () => undefined };
  }
  const status = readAll(res.body).then(
    (buf) => {
      try {
        const r = JSON.parse(buf.toString('utf8')) as { StatusCode: number; Error?: { Message?: string } | null };
        if (r.Error?.Message) {
          ctx.err(`Error waiting for container: ${r.Error.Message}\n`);
          return 125;
        }
        return r.StatusCode;
      } catch {
        if (!canceled) ctx.err(`error waiting for container: ${buf.toString('utf8').trim() || 'unexpected end of the response'}\n`);
        return 125;
      }
    },
    (err: unknown) => {
      if (!canceled) ctx.err(`error waiting for container: ${errorText(err)}\n`);
      return 125;
    },
  );
  return {
    status,
    cancel: () => {
      canceled = true;
      res.body.destroy();
    },
  };
}

/** The signals the CLI passes on with --sig-proxy (docker catches all it can). */
const FORWARDED_SIGNALS: NodeJS.Signals[] = [
  'SIGHUP', 'SIGINT', 'SIGQUIT', 'SIGTERM', 'SIGUSR1', 'SIGUSR2', 'SIGALRM', 'SIGTSTP', 'SIGTTIN',
  'SIGTTOU', 'SIGCONT', 'SIGWINCH', 'SIGVTALRM', 'SIGXCPU', 'SIGXFSZ', 'SIGIO', 'SIGPWR',
];

/** --sig-proxy: every signal the CLI gets goes to the container (POST kill), as docker's ForwardAllSignals. */
export function forwardSignals(ctx: CliContext, id: string): () => void {
  const handlers = new Map<NodeJS.Signals, () => void>();
  for (const sig of FORWARDED_SIGNALS) {
    const handler = () => {
      ctx.client.send('POST', containerPath(id, '/kill'), { query: { signal: sig.slice(3) } }).catch(() => undefined);
    };
    try {
      process.on(sig, handler);
      handlers.set(sig, handler);
    } catch {
      // A signal this platform does not have.
    }
  }
  return () => {
    for (const [sig, handler] of handlers) process.off(sig, handler);
  };
}

/**
 * Gives the container's TTY the terminal's size now (retried, as docker does, while the
 * container is still starting) and on every window change. `resizePath` is the container's
 * or exec's resize endpoint.
 */
export function monitorTtySize(ctx: CliContext, resizePath: string): () => void {
  const resize = async (): Promise<void> => {
    const [h, w] = terminalSize();
    if (h === 0 && w === 0) return;
    await ctx.client.send('POST', resizePath, { query: { h, w } });
  };
  let stopped = false;
  resize().catch(async () => {
    for (let retry = 0; retry < 10; retry++) {
      await new Promise((r) => setTimeout(r, (retry + 1) * 10));
      if (stopped) return;
      try {
        await resize();
        return;
      } catch {
        // Tried again below.
      }
    }
    ctx.err('failed to resize tty, using default size\n');
  });
  const onResize = () => {
    resize().catch(() => undefined);
  };
  process.stdout.on('resize', onResize);
  return () => {
    stopped = true;
    process.stdout.off('resize', onResize);
  };
}

export type { HijackEnd };
