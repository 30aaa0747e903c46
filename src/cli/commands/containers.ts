/**
 * Container commands that act on one or more named containers: stop, restart, kill, rm,
 * wait, pause, unpause, rename, top, port, container inspect and container prune. Commands
 * that take many containers act on each, print each one that worked, and report the
 * failures together at the end with exit status 1, as docker does (`berth stop $(berth ps -q)`).
 */
import { ApiError, ConnectError, readAll } from '../../client/engine-client.js';
import { filterArgs, parseArgs } from '../args.js';
import type { CliContext, Command } from '../command.js';
import { ExitError } from '../command.js';
import { compileTemplate } from '../format/go-template.js';
import { stringWidth } from '../format/display-width.js';
import { humanSize } from '../../util/units.js';
import { naturalCompare } from '../../util/sort-order.js';
import { formatInspect } from '../output.js';
import { confirm } from './images.js';
import { containerPath, errorText } from './run.js';

/**
 * Runs `op` on every container, up to 50 at a time, then reports in the order given: each
 * that worked on stdout (as `print` says), the errors together on stderr at the end.
 */
export async function eachContainer(
  ctx: CliContext,
  names: string[],
  op: (name: string) => Promise<void>,
  print: (name: string) => string | undefined = (name) => name,
  tolerate?: (err: unknown) => boolean,
): Promise<number> {
  const results: Array<Promise<unknown>> = [];
  let running = 0;
  const queue: Array<() => void> = [];
  const limit = async <T>(fn: () => Promise<T>): Promise<T> => {
    if (running >= 50) await new Promise<void>((r) => queue.push(r));
    running++;
    try {
      return await fn();
    } finally {
      running--;
      queue.shift()?.();
    }
  };
  for (const name of names) results.push(limit(() => op(name)).then(() => undefined, (err: unknown) => err ?? new Error('failed')));
  const errors: string[] = [];
  for (let i = 0; i < names.length; i++) {
    const err = await results[i];
    if (err === undefined) {
      const line = print(names[i]!);
      if (line !== undefined) ctx.out(`${line}\n`);
      continue;
    }
    if (err instanceof ConnectError) throw err;
    if (tolerate?.(err)) {
      ctx.err(`${errorText(err)}\n`);
      continue;
    }
    errors.push(errorText(err));
  }
  if (errors.length) throw new ExitError(errors.join('\n'), 1);
  return 0;
}

/** -t/--time: the stop timeout, only when given (the container's own applies otherwise). */
function stopTimeout(a: ReturnType<typeof parseArgs>): number | undefined {
  if (a.has('time') && a.has('timeout')) throw new ExitError('conflicting options: cannot specify both --timeout and --time', 1);
  if (a.has('timeout')) return a.int('timeout');
  if (a.has('time')) return a.int('time');
  return undefined;
}

const STOP_FLAGS = [
  { name: 'signal', short: 's', type: 'string' as const, description: 'Signal to send to the container' },
  { name: 'time', type: 'int' as const, description: 'Seconds to wait before killing the container (deprecated: use --timeout)' },
  { name: 'timeout', short: 't', type: 'int' as const, description: 'Seconds to wait before killing the container' },
];

export const stopCommand: Command = {
  spec: {
    usage: 'stop [OPTIONS] CONTAINER [CONTAINER...]',
    description: 'Stop one or more running containers',
    aliases: ['berth container stop', 'berth stop'],
    args: { min: 1 },
    flags: STOP_FLAGS,
  },
  async run(ctx, argv, path) {
    const a = parseArgs(this.spec, argv, path);
    const t = stopTimeout(a);
    return eachContainer(ctx, a.args, (name) =>
      ctx.client.send('POST', containerPath(name, '/stop'), { query: { t, signal: a.string('signal') || undefined } }).then(() => undefined),
    );
  },
};

export const restartCommand: Command = {
  spec: {
    usage: 'restart [OPTIONS] CONTAINER [CONTAINER...]',
    description: 'Restart one or more containers',
    aliases: ['berth container restart', 'berth restart'],
    args: { min: 1 },
    flags: STOP_FLAGS,
  },
  async run(ctx, argv, path) {
    const a = parseArgs(this.spec, argv, path);
    const t = stopTimeout(a);
    // One after the other, as docker restarts them.
    const errors: string[] = [];
    for (const name of a.args) {
      try {
        await ctx.client.send('POST', containerPath(name, '/restart'), { query: { t, signal: a.string('signal') || undefined } });
        ctx.out(`${name}\n`);
      } catch (err) {
        if (!(err instanceof ApiError)) throw err;
        errors.push(errorText(err));
      }
    }
    if (errors.length) throw new ExitError(errors.join('\n'), 1);
    return 0;
  },
};

export const killCommand: Command = {
  spec: {
    usage: 'kill [OPTIONS] CONTAINER [CONTAINER...]',
    description: 'Kill one or more running containers',
    aliases: ['berth container kill', 'berth kill'],
    args: { min: 1 },
    flags: [{ name: 'signal', short: 's', type: 'string', description: 'Signal to send to the container' }],
  },
  async run(ctx, argv, path) {
    const a = parseArgs(this.spec, argv, path);
    return eachContainer(ctx, a.args, (name) =>
      ctx.client.send('POST', containerPath(name, '/kill'), { query: { signal: a.string('signal') || undefined } }).then(() => undefined),
    );
  },
};

export const rmCommand: Command = {
  spec: {
    usage: 'rm [OPTIONS] CONTAINER [CONTAINER...]',
    description: 'Remove one or more containers',
    aliases: ['berth container rm', 'berth container remove', 'berth rm'],
    args: { min: 1 },
    flags: [
      { name: 'force', short: 'f', type: 'bool', description: 'Force the removal of a running container (uses SIGKILL)' },
      { name: 'link', short: 'l', type: 'bool', description: 'Remove the specified link' },
      { name: 'volumes', short: 'v', type: 'bool', description: 'Remove anonymous volumes associated with the container' },
    ],
  },
  async run(ctx, argv, path) {
    const a = parseArgs(this.spec, argv, path);
    const force = a.bool('force');
    return eachContainer(
      ctx,
      a.args,
      async (name) => {
        const id = name.replace(/^\/+|\/+$/g, '');
        if (id === '') throw new ExitError('container name cannot be empty', 1);
        await ctx.client.send('DELETE', containerPath(id), {
          query: { v: a.bool('volumes') || undefined, link: a.bool('link') || undefined, force: force || undefined },
        });
      },
      (name) => name,
      // -f: a container that is already gone is reported, not an error.
      (err) => force && err instanceof ApiError && err.status === 404,
    );
  },
};

export const waitCommand: Command = {
  spec: {
    usage: 'wait CONTAINER [CONTAINER...]',
    description: 'Block until one or more containers stop, then print their exit codes',
    aliases: ['berth container wait', 'berth wait'],
    args: { min: 1 },
    flags: [],
  },
  async run(ctx, argv, path) {
    const a = parseArgs(this.spec, argv, path);
    const errors: string[] = [];
    for (const name of a.args) {
      try {
        const res = await ctx.client.call('POST', containerPath(name, '/wait'));
        const text = (await readAll(res.body)).toString('utf8');
        const result = JSON.parse(text) as { StatusCode: number };
        ctx.out(`${result.StatusCode}\n`);
      } catch (err) {
        if (!(err instanceof ApiError) && !(err instanceof SyntaxError)) throw err;
        errors.push(errorText(err));
      }
    }
    if (errors.length) throw new ExitError(errors.join('\n'), 1);
    return 0;
  },
};

export const pauseCommand: Command = {
  spec: {
    usage: 'pause CONTAINER [CONTAINER...]',
    description: 'Pause all processes within one or more containers',
    aliases: ['berth container pause', 'berth pause'],
    args: { min: 1 },
    flags: [],
  },
  async run(ctx, argv, path) {
    const a = parseArgs(this.spec, argv, path);
    return eachContainer(ctx, a.args, (name) => ctx.client.send('POST', containerPath(name, '/pause')).then(() => undefined));
  },
};

export const unpauseCommand: Command = {
  spec: {
    usage: 'unpause CONTAINER [CONTAINER...]',
    description: 'Unpause all processes within one or more containers',
    aliases: ['berth container unpause', 'berth unpause'],
    args: { min: 1 },
    flags: [],
  },
  async run(ctx, argv, path) {
    const a = parseArgs(this.spec, argv, path);
    return eachContainer(ctx, a.args, (name) => ctx.client.send('POST', containerPath(name, '/unpause')).then(() => undefined));
  },
};

export const renameCommand: Command = {
  spec: {
    usage: 'rename CONTAINER NEW_NAME',
    description: 'Rename a container',
    aliases: ['berth container rename', 'berth rename'],
    args: { min: 2, max: 2 },
    flags: [],
  },
  async run(ctx, argv, path) {
    const a = parseArgs(this.spec, argv, path);
    const oldName = a.args[0]!.trim();
    const newName = a.args[1]!.trim();
    if (oldName === '' || newName === '') throw new ExitError('Error: Neither old nor new names may be empty', 1);
    try {
      await ctx.client.send('POST', containerPath(oldName, '/rename'), { query: { name: newName } });
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      ctx.err(`${errorText(err)}\n`);
      throw new ExitError(`Error: failed to rename container named ${oldName}`, 1);
    }
    return 0;
  },
};

export const topCommand: Command = {
  spec: {
    usage: 'top CONTAINER [ps OPTIONS]',
    description: 'Display the running processes of a container',
    aliases: ['berth container top', 'berth top'],
    args: { min: 1 },
    interspersed: false,
    flags: [],
  },
  async run(ctx, argv, path) {
    const a = parseArgs(this.spec, argv, path);
    const [name, ...psArgs] = a.args as [string, ...string[]];
    const top = await ctx.client.json<{ Titles: string[]; Processes: string[][] | null }>('GET', containerPath(name, '/top'), {
      query: { ps_args: psArgs.length ? psArgs.join(' ') : undefined },
    });
    ctx.out(alignColumns([top.Titles, ...(top.Processes ?? [])], 20, 3));
    return 0;
  },
};

/**
 * Go's tabwriter with every line holding the same columns: each column as wide as its widest
 * cell plus `padding`, at least `minWidth`; the last cell of a line unpadded.
 */
export function alignColumns(lines: string[][], minWidth: number, padding: number): string {
  const widths: number[] = [];
  for (const cells of lines) {
    cells.slice(0, -1).forEach((cell, i) => {
      widths[i] = Math.max(widths[i] ?? minWidth, stringWidth(cell) + padding);
    });
  }
  return lines
    .map((cells) => cells.map((cell, i) => (i < cells.length - 1 ? cell + ' '.repeat(Math.max(0, widths[i]! - stringWidth(cell))) : cell)).join('') + '\n')
    .join('');
}

export const portCommand: Command = {
  spec: {
    usage: 'port CONTAINER [PRIVATE_PORT[/PROTO]]',
    description: 'List port mappings or a specific mapping for the container',
    aliases: ['berth container port', 'berth port'],
    args: { min: 1, max: 2 },
    flags: [],
  },
  async run(ctx, argv, path) {
    const a = parseArgs(this.spec, argv, path);
    const [name, want] = a.args as [string, string | undefined];
    const c = await ctx.client.json<{ NetworkSettings?: { Ports?: Record<string, Array<{ HostIp: string; HostPort: string }> | null> | null } }>(
      'GET',
      containerPath(name, '/json'),
    );
    const ports = c.NetworkSettings?.Ports ?? {};
    const out: string[] = [];
    if (want !== undefined) {
      const slash = want.indexOf('/');
      const port = slash < 0 ? want : want.slice(0, slash);
      const proto = slash < 0 || want.slice(slash + 1) === '' ? 'tcp' : want.slice(slash + 1);
      if (!/^\d+$/.test(port) || Number(port) > 65535) {
        const why = /^\d+$/.test(port) ? 'value out of range' : 'invalid syntax';
        throw new ExitError(`Error: invalid port (${port}): strconv.ParseUint: parsing "${port}": ${why}`, 1);
      }
      const frontends = ports[`${port}/${proto}`];
      if (!frontends || frontends.length === 0) throw new ExitError(`Error: No public port '${want}' published for ${name}`, 1);
      for (const f of frontends) out.push(joinHostPort(f.HostIp, f.HostPort));
    } else {
      for (const [from, frontends] of Object.entries(ports)) {
        for (const f of frontends ?? []) out.push(`${from} -> ${joinHostPort(f.HostIp, f.HostPort)}`);
      }
    }
    if (out.length) ctx.out(`${out.sort(naturalCompare).join('\n')}\n`);
    return 0;
  },
};

/** Go's net.JoinHostPort: IPv6 hosts in brackets. */
export function joinHostPort(host: string, port: string | number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

export const containerInspectCommand: Command = {
  spec: {
    usage: 'inspect [OPTIONS] CONTAINER [CONTAINER...]',
    description: 'Display detailed information on one or more containers',
    args: { min: 1 },
    flags: [
      { name: 'format', short: 'f', type: 'string', description: 'Format output using a custom template' },
      { name: 'size', short: 's', type: 'bool', description: 'Display total file sizes' },
    ],
  },
  async run(ctx, argv, path) {
    const a = parseArgs(this.spec, argv, path);
    const format = a.string('format');
    if (format) {
      try {
        compileTemplate(format === 'json' ? '{{json .}}' : format);
      } catch (err) {
        throw new ExitError((err as Error).message, 64);
      }
    }
    const found: unknown[] = [];
    const errors: string[] = [];
    for (const name of a.args) {
      try {
        found.push(await ctx.client.json('GET', containerPath(name, '/json'), { query: { size: a.bool('size') || undefined } }));
      } catch (err) {
        if (!(err instanceof ApiError)) throw err;
        errors.push(errorText(err));
      }
    }
    if (found.length || !format) ctx.out(formatInspect(found, format));
    if (errors.length) throw new ExitError(errors.join('\n'), 1);
    return 0;
  },
};

export const containerPruneCommand: Command = {
  spec: {
    usage: 'prune [OPTIONS]',
    description: 'Remove all stopped containers',
    args: { max: 0 },
    flags: [
      { name: 'filter', type: 'list', placeholder: 'filter', description: 'Provide filter values (e.g. "until=<timestamp>")' },
      { name: 'force', short: 'f', type: 'bool', description: 'Do not prompt for confirmation' },
    ],
  },
  async run(ctx, argv, path) {
    const a = parseArgs(this.spec, argv, path);
    const filters = filterArgs(a.list('filter'), 'filter');
    if (!a.bool('force') && !(await confirm(ctx, 'WARNING! This will remove all stopped containers.'))) return 0;
    const report = await ctx.client.json<{ ContainersDeleted: string[] | null; SpaceReclaimed: number }>('POST', '/containers/prune', {
      query: { filters: Object.keys(filters).length ? JSON.stringify(filters) : undefined },
    });
    let reclaimed = 0;
    if (report.ContainersDeleted?.length) {
      ctx.out(`Deleted Containers:\n${report.ContainersDeleted.map((id) => `${id}\n`).join('')}\n`);
      reclaimed = report.SpaceReclaimed;
    }
    ctx.out(`Total reclaimed space: ${humanSize(reclaimed, 4)}\n`);
    return 0;
  },
};

