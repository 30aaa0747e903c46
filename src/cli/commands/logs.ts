/**
 * `logs`: inspect first (a TTY container's log is raw, any other is multiplexed), then
 * stream GET /containers/{id}/logs to stdout and stderr, following with -f.
 */
import type { Writable } from 'node:stream';
import { Demultiplexer } from '../../containers/stdcopy.js';
import { parseArgs } from '../args.js';
import type { Command } from '../command.js';
import { ExitError } from '../command.js';
import { quote } from '../../util/go-fmt.js';
import { parseGoDuration } from '../parse-opts.js';
import { onOutputClosed, SIGPIPE_STATUS } from '../terminal.js';
import { containerPath, type ContainerInspect } from './run.js';

export const logsCommand: Command = {
  spec: {
    usage: 'logs [OPTIONS] CONTAINER',
    description: 'Fetch the logs of a container',
    aliases: ['berth container logs', 'berth logs'],
    args: { min: 1, max: 1 },
    flags: [
      { name: 'details', type: 'bool', description: 'Show extra details provided to logs' },
      { name: 'follow', short: 'f', type: 'bool', description: 'Follow log output' },
      { name: 'since', type: 'string', description: 'Show logs since timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)' },
      { name: 'tail', short: 'n', type: 'string', default: 'all', description: 'Number of lines to show from the end of the logs' },
      { name: 'timestamps', short: 't', type: 'bool', description: 'Show timestamps' },
      { name: 'until', type: 'string', description: 'Show logs before a timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)' },
    ],
  },
  async run(ctx, argv, path) {
    const a = parseArgs(this.spec, argv, path);
    const c = await ctx.client.json<ContainerInspect>('GET', containerPath(a.args[0]!, '/json'));
    const now = new Date();
    const since = a.string('since') ? timestampOption('since', a.string('since')!, now) : undefined;
    const until = a.string('until') ? timestampOption('until', a.string('until')!, now) : undefined;
    const res = await ctx.client.call('GET', containerPath(c.Id, '/logs'), {
      query: {
        stdout: true,
        stderr: true,
        since,
        until,
        timestamps: a.bool('timestamps') || undefined,
        details: a.bool('details') || undefined,
        follow: a.bool('follow') || undefined,
        tail: a.string('tail') ?? 'all',
      },
    });
    let closed = false;
    const unwatch = [process.stdout, process.stderr].map((out) =>
      onOutputClosed(out, () => {
        closed = true;
        res.body.destroy();
      }),
    );
    try {
      await copyOutput(res.body, c.Config.Tty, process.stdout, process.stderr);
    } catch (err) {
      if (!closed) throw err;
    } finally {
      for (const u of unwatch) u();
      for (const out of [process.stdout, process.stderr]) out.on('error', () => undefined);
    }
    return closed ? SIGPIPE_STATUS : 0;
  },
};

function timestampOption(name: string, value: string, now: Date): string {
  try {
    return getTimestamp(value, now);
  } catch (err) {
    throw new ExitError(`invalid value for ${quote(name)}: ${(err as Error).message}`, 1);
  }
}

/** Copies a log or attach body: raw with a TTY, otherwise demultiplexed (docker's StdCopy). */
export async function copyOutput(body: AsyncIterable<unknown>, tty: boolean, stdout: Writable, stderr: Writable): Promise<void> {
  const demux = tty ? undefined : new Demultiplexer();
  const write = async (target: Writable, data: Buffer) => {
    if (data.length === 0 || target.destroyed) return;
    if (!target.write(data)) {
      await new Promise<void>((resolve) => {
        target.once('drain', resolve);
        target.once('close', resolve);
      });
    }
  };
  for await (const raw of body) {
    const chunk = raw as Buffer;
    if (!demux) {
      await write(stdout, chunk);
      continue;
    }
    for (const f of demux.push(chunk)) {
      if (f.stream === 1) await write(stdout, f.payload);
      else if (f.stream === 2) await write(stderr, f.payload);
      else if (f.stream === 3) throw new ExitError(`error from daemon in stream: ${f.payload.toString('utf8')}`, 1);
    }
  }
}

// --- docker's GetTimestamp (api/types/time) -------------------------------------------

/**
 * A --since/--until value as the API's timestamp: a Go duration ("42m") counts back from
 * `reference` (whole seconds), a date or RFC 3339 time becomes "seconds.nanoseconds", and a
 * Unix timestamp passes through. Dates without a zone are local time.
 */
export function getTimestamp(value: string, reference: Date): string {
  if (value !== '0') {
    try {
      const ns = parseGoDuration(value);
      return String(Math.floor((reference.getTime() - ns / 1e6) / 1000));
    } catch {
      // Not a duration: a time, below.
    }
  }
  const parseInLocation = !/[zZ+]/.test(value) && (value.match(/-/g) ?? []).length !== 3;
  let layout: string;
  if (value.includes('.')) layout = parseInLocation ? '2006-01-02T15:04:05.999999999' : '2006-01-02T15:04:05.999999999Z07:00';
  else if (value.includes('T')) {
    let colons = (value.match(/:/g) ?? []).length;
    if (!parseInLocation && !/[zZ]/.test(value) && colons > 0) colons--;
    const base = colons === 0 ? '2006-01-02T15' : colons === 1 ? '2006-01-02T15:04' : '2006-01-02T15:04:05';
    layout = parseInLocation ? base : `${base}Z07:00`;
  } else layout = parseInLocation ? '2006-01-02' : '2006-01-02Z07:00';

  const parsed = parseLayout(value, layout);
  if (parsed === undefined) {
    if (value.includes('-')) throw new Error(`parsing time ${quote(value)} as ${quote(layout)}: cannot parse ${quote(value)} as ${quote(layout)}`);
    if (!/^[+-]?\d+(\.\d+)?$/.test(value)) throw new Error(`failed to parse value as time or duration: ${quote(value)}`);
    return value;
  }
  return `${parsed.seconds}.${String(parsed.nanos).padStart(9, '0')}`;
}

function parseLayout(value: string, layout: string): { seconds: number; nanos: number } | undefined {
  const hasFraction = layout.includes('.999999999');
  const hasZone = layout.endsWith('Z07:00');
  const fields = layout.startsWith('2006-01-02T15:04:05') ? 3 : layout.startsWith('2006-01-02T15:04') ? 2 : layout.startsWith('2006-01-02T15') ? 1 : 0;
  let pattern = '^(\\d{4})-(\\d{2})-(\\d{2})';
  if (fields >= 1) pattern += 'T(\\d{2})';
  if (fields >= 2) pattern += ':(\\d{2})';
  if (fields >= 3) pattern += ':(\\d{2})';
  if (hasFraction) pattern += '(?:\\.(\\d{1,9}))?';
  if (hasZone) pattern += '(Z|[+-]\\d{2}:\\d{2})';
  const m = new RegExp(`${pattern}$`).exec(value);
  if (!m) return undefined;
  let i = 1;
  const year = Number(m[i++]);
  const month = Number(m[i++]);
  const day = Number(m[i++]);
  const hour = fields >= 1 ? Number(m[i++]) : 0;
  const minute = fields >= 2 ? Number(m[i++]) : 0;
  const second = fields >= 3 ? Number(m[i++]) : 0;
  const fraction = hasFraction ? (m[i++] ?? '') : '';
  const zone = hasZone ? m[i++]! : undefined;
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 59) return undefined;
  let ms: number;
  if (zone === undefined) {
    ms = new Date(year, month - 1, day, hour, minute, second).getTime();
  } else {
    ms = Date.UTC(year, month - 1, day, hour, minute, second);
    if (zone !== 'Z') {
      const sign = zone[0] === '-' ? -1 : 1;
      ms -= sign * (Number(zone.slice(1, 3)) * 60 + Number(zone.slice(4, 6))) * 60_000;
    }
  }
  return { seconds: Math.floor(ms / 1000), nanos: fraction === '' ? 0 : Number(fraction.padEnd(9, '0')) };
}
