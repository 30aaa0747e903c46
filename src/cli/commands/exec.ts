/** `berth exec`: run a command in a running container, as `docker exec` does. */
import type { Socket } from 'node:net';
import { readFile } from 'node:fs/promises';
import { parseArgs } from '../args.js';
import { ExitError, type Command } from '../command.js';
import { HijackedStream, terminalSize } from '../terminal.js';
import { Session, containerPath, monitorTtySize } from './run.js';
import { ApiError } from '../../client/engine-client.js';

export const execCommand: Command = {
  spec: {
    usage: 'exec [OPTIONS] CONTAINER COMMAND [ARG...]',
    description: 'Execute a command in a running container',
    aliases: ['berth container exec', 'berth exec'],
    args: { min: 2 },
    interspersed: false,
    flags: [
      { name: 'detach', short: 'd', type: 'bool', description: 'Detached mode: run command in the background' },
      { name: 'detach-keys', type: 'string', description: 'Override the key sequence for detaching a container' },
      { name: 'env', short: 'e', type: 'list', description: 'Set environment variables' },
      { name: 'env-file', type: 'list', description: 'Read in a file of environment variables' },
      { name: 'interactive', short: 'i', type: 'bool', description: 'Keep STDIN open even if not attached' },
      { name: 'privileged', type: 'bool', description: 'Give extended privileges to the command' },
      { name: 'tty', short: 't', type: 'bool', description: 'Allocate a pseudo-TTY' },
      { name: 'user', short: 'u', type: 'string', description: 'Username or UID (format: "<name|uid>[:<group|gid>]")' },
      { name: 'workdir', short: 'w', type: 'string', description: 'Working directory inside the container' },
    ],
  },
  async run(ctx, argv, path) {
    const a = parseArgs(this.spec, argv, path);
    const [container, ...cmd] = a.args as [string, ...string[]];
    const detach = a.bool('detach');
    const tty = a.bool('tty');
    const interactive = a.bool('interactive');
    const env = [...(await envFiles(a.list('env-file'))), ...a.list('env').map(expandEnv)];
    const consoleSize = tty ? terminalSize() : undefined;
    let created: { Id: string };
    try {
      created = await ctx.client.json<{ Id: string }>('POST', containerPath(container, '/exec'), {
        body: {
          User: a.string('user') ?? '',
          Privileged: a.bool('privileged'),
          Tty: tty,
          ConsoleSize: consoleSize && consoleSize[0] > 0 ? consoleSize : null,
          AttachStdin: interactive && !detach,
          AttachStdout: !detach,
          AttachStderr: !detach,
          DetachKeys: a.string('detach-keys') ?? '',
          Env: env,
          WorkingDir: a.string('workdir') ?? '',
          Cmd: cmd,
        },
      });
    } catch (err) {
      if (err instanceof ApiError) throw new ExitError(`Error response from daemon: ${err.message}`, err.status === 404 ? 1 : 126);
      throw err;
    }
    const execPath = `/exec/${created.Id}`;
    if (detach) {
      await ctx.client.send('POST', `${execPath}/start`, { body: { Detach: true, Tty: tty, ConsoleSize: consoleSize ?? null } });
      return 0;
    }
    const session = new Session();
    try {
      const { socket, head } = await ctx.client.hijack('POST', `${execPath}/start`, {
        body: { Detach: false, Tty: tty, ConsoleSize: consoleSize ?? null },
      });
      session.add(() => (socket as Socket).destroy());
      if (interactive) session.useStdin();
      const stream = new HijackedStream({
        socket,
        head,
        stdin: interactive ? process.stdin : undefined,
        stdout: process.stdout,
        stderr: tty ? process.stdout : process.stderr,
        tty,
        ...(a.string('detach-keys') ? { detachKeys: a.string('detach-keys')! } : {}),
        warn: (t) => ctx.err(t),
      });
      session.add(() => stream.cancel());
      if (tty && process.stdout.isTTY) session.add(monitorTtySize(ctx, `${execPath}/resize`));
      const end = await stream.done;
      if (end.kind === 'detached') return 0;
      if (end.kind === 'error') throw end.error;
      const inspect = await ctx.client.json<{ ExitCode: number | null; Running: boolean }>('GET', `${execPath}/json`);
      return inspect.ExitCode ?? 0;
    } finally {
      session.close();
    }
  },
};

/** `-e NAME` takes NAME's value from this environment, as docker does. */
function expandEnv(entry: string): string {
  if (entry.includes('=')) return entry;
  const value = process.env[entry];
  return value === undefined ? entry : `${entry}=${value}`;
}

async function envFiles(paths: string[]): Promise<string[]> {
  const out: string[] = [];
  for (const path of paths) {
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch {
      throw new ExitError(`open ${path}: no such file or directory`, 125);
    }
    for (const line of text.split('\n')) {
      const t = line.trim();
      if (t && !t.startsWith('#')) out.push(expandEnv(t));
    }
  }
  return out;
}
