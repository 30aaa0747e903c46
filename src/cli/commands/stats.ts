/**
 * `stats`: one stats stream per container, a table redrawn in place every half second as
 * docker redraws it (cursor home, each line cleared to its end, the rest of the screen
 * cleared), or printed once with --no-stream. Without names it follows the running
 * containers (all with -a) through the events stream.
 */
import type { IncomingMessage } from 'node:http';
import { ApiError } from '../../client/engine-client.js';
import { parseArgs } from '../args.js';
import type { CliContext, Command } from '../command.js';
import { ExitError } from '../command.js';
import { contextRow, renderTable } from '../format/table.js';
import { bytesSize, humanSize, truncateId } from '../../util/units.js';
import { onOutputClosed, SIGPIPE_STATUS } from '../terminal.js';
import { containerPath, errorText } from './run.js';

/** The parts of a stats object (GET /containers/{id}/stats) that the table shows. */
export interface StatsJson {
  read?: string;
  name?: string;
  id?: string;
  pids_stats?: { current?: number };
  blkio_stats?: { io_service_bytes_recursive?: Array<{ op: string; value: number }> | null };
  cpu_stats?: CpuStats;
  precpu_stats?: CpuStats;
  memory_stats?: { usage?: number; limit?: number; stats?: Record<string, number> };
  networks?: Record<string, { rx_bytes?: number; tx_bytes?: number }>;
}

interface CpuStats {
  cpu_usage?: { total_usage?: number; percpu_usage?: number[] | null };
  system_cpu_usage?: number;
  online_cpus?: number;
}

/** docker's StatsEntry. */
export interface StatsEntry {
  container: string;
  name: string;
  id: string;
  cpuPercentage: number;
  memory: number;
  memoryLimit: number;
  memoryPercentage: number;
  networkRx: number;
  networkTx: number;
  blockRead: number;
  blockWrite: number;
  pidsCurrent: number;
  isInvalid: boolean;
}

/** One stats object as the numbers docker shows (cache excluded from memory, as docker does). */
export function statsEntry(container: string, v: StatsJson): StatsEntry {
  const cpuDelta = (v.cpu_stats?.cpu_usage?.total_usage ?? 0) - (v.precpu_stats?.cpu_usage?.total_usage ?? 0);
  const systemDelta = (v.cpu_stats?.system_cpu_usage ?? 0) - (v.precpu_stats?.system_cpu_usage ?? 0);
  let online = v.cpu_stats?.online_cpus ?? 0;
  if (online === 0) online = v.cpu_stats?.cpu_usage?.percpu_usage?.length ?? 0;
  const cpuPercentage = systemDelta > 0 && cpuDelta > 0 ? (cpuDelta / systemDelta) * online * 100 : 0;
  let blockRead = 0;
  let blockWrite = 0;
  for (const e of v.blkio_stats?.io_service_bytes_recursive ?? []) {
    const op = e.op[0];
    if (op === 'r' || op === 'R') blockRead += e.value;
    else if (op === 'w' || op === 'W') blockWrite += e.value;
  }
  const mem = v.memory_stats ?? {};
  const usage = mem.usage ?? 0;
  let memory = usage;
  const v1 = mem.stats?.['total_inactive_file'];
  const v2 = mem.stats?.['inactive_file'] ?? 0;
  if (v1 !== undefined && v1 < usage) memory = usage - v1;
  else if (v2 < usage) memory = usage - v2;
  const limit = mem.limit ?? 0;
  let rx = 0;
  let tx = 0;
  for (const n of Object.values(v.networks ?? {})) {
    rx += n.rx_bytes ?? 0;
    tx += n.tx_bytes ?? 0;
  }
  return {
    container,
    name: v.name ?? '',
    id: v.id ?? '',
    cpuPercentage,
    memory,
    memoryLimit: limit,
    memoryPercentage: limit !== 0 ? (memory / limit) * 100 : 0,
    networkRx: rx,
    networkTx: tx,
    blockRead,
    blockWrite,
    pidsCurrent: v.pids_stats?.current ?? 0,
    isInvalid: false,
  };
}

/** A row of the stats table: the fields docker's stats --format offers. */
export class StatsRow {
  readonly #s: StatsEntry;
  readonly #trunc: boolean;

  constructor(s: StatsEntry, trunc: boolean) {
    this.#s = s;
    this.#trunc = trunc;
  }

  get Container(): string {
    return this.#s.container;
  }

  get Name(): string {
    return this.#s.name.length > 1 ? this.#s.name.slice(1) : '--';
  }

  get ID(): string {
    return this.#trunc ? truncateId(this.#s.id) : this.#s.id;
  }

  get CPUPerc(): string {
    return this.#s.isInvalid ? '--' : `${this.#s.cpuPercentage.toFixed(2)}%`;
  }

  get MemUsage(): string {
    return this.#s.isInvalid ? '-- / --' : `${bytesSize(this.#s.memory)} / ${bytesSize(this.#s.memoryLimit)}`;
  }

  get MemPerc(): string {
    return this.#s.isInvalid ? '--' : `${this.#s.memoryPercentage.toFixed(2)}%`;
  }

  get NetIO(): string {
    return this.#s.isInvalid ? '--' : `${humanSize(this.#s.networkRx)} / ${humanSize(this.#s.networkTx)}`;
  }

  get BlockIO(): string {
    return this.#s.isInvalid ? '--' : `${humanSize(this.#s.blockRead)} / ${humanSize(this.#s.blockWrite)}`;
  }

  get PIDs(): string {
    return this.#s.isInvalid ? '--' : String(this.#s.pidsCurrent);
  }

  /** The row as templates see docker's *container.statsContext (fields sorted as its JSON). */
  context(): object {
    return contextRow(
      {
        BlockIO: this.BlockIO,
        CPUPerc: this.CPUPerc,
        Container: this.Container,
        ID: this.ID,
        MemPerc: this.MemPerc,
        MemUsage: this.MemUsage,
        Name: this.Name,
        NetIO: this.NetIO,
        PIDs: this.PIDs,
      },
      '*container.statsContext',
    );
  }
}

const DEFAULT_TABLE = 'table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}';
const HEADERS = {
  Container: 'CONTAINER',
  Name: 'NAME',
  ID: 'CONTAINER ID',
  CPUPerc: 'CPU %',
  MemUsage: 'MEM USAGE / LIMIT',
  MemPerc: 'MEM %',
  NetIO: 'NET I/O',
  BlockIO: 'BLOCK I/O',
  PIDs: 'PIDS',
};

/** One container's stats stream, kept up to date in `entry`. */
class Collector {
  entry: StatsEntry;
  error: unknown;
  readonly first: Promise<void>;
  #gotFirst!: () => void;
  #res: IncomingMessage | undefined;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(
    readonly container: string,
    private readonly ctx: CliContext,
    private readonly stream: boolean,
  ) {
    this.entry = { ...statsEntry(container, {}), container };
    this.first = new Promise((resolve) => {
      this.#gotFirst = resolve;
    });
    void this.#run();
  }

  async #run(): Promise<void> {
    this.#arm();
    try {
      const res = await this.ctx.client.call('GET', containerPath(this.container, '/stats'), { query: { stream: this.stream } });
      this.#res = res.body;
      let buffered = '';
      for await (const chunk of res.body) {
        buffered += (chunk as Buffer).toString('utf8');
        for (;;) {
          const { value, rest } = nextJson(buffered);
          if (value === undefined) break;
          buffered = rest;
          this.entry = statsEntry(this.container, value as StatsJson);
          this.error = undefined;
          this.#arm();
          this.#gotFirst();
        }
        if (this.#closed) break;
      }
    } catch (err) {
      if (!this.#closed) {
        this.error = err;
        this.entry.isInvalid = true;
      }
    } finally {
      this.#gotFirst();
      if (this.#timer) clearTimeout(this.#timer);
    }
  }

  /** No update within 2 s: the numbers are shown as unknown, as docker shows them. */
  #arm(): void {
    if (this.#timer) clearTimeout(this.#timer);
    if (this.#closed) return;
    this.#timer = setTimeout(() => {
      this.entry = { ...statsEntry(this.container, {}), name: this.entry.name, id: this.entry.id, isInvalid: true };
      this.error = new Error('timeout waiting for stats');
      this.#gotFirst();
    }, 2000);
  }

  close(): void {
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#res?.destroy();
  }
}

/** The next whole JSON value at the start of `text`, as Go's json.Decoder reads a stream. */
function nextJson(text: string): { value: unknown; rest: string } {
  const start = text.search(/\S/);
  if (start < 0) return { value: undefined, rest: text };
  let depth = 0;
  let inString = false;
  for (let i = start; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (c === '\\') i++;
      else if (c === '"') inString = false;
      continue;
    }
    if (c === '"') inString = true;
    else if (c === '{' || c === '[') depth++;
    else if (c === '}' || c === ']') {
      depth--;
      if (depth === 0) return { value: JSON.parse(text.slice(start, i + 1)), rest: text.slice(i + 1) };
    }
  }
  return { value: undefined, rest: text };
}

export const statsCommand: Command = {
  spec: {
    usage: 'stats [OPTIONS] [CONTAINER...]',
    description: 'Display a live stream of container(s) resource usage statistics',
    aliases: ['berth container stats', 'berth stats'],
    flags: [
      { name: 'all', short: 'a', type: 'bool', description: 'Show all containers (default shows just running)' },
      { name: 'format', type: 'string', description: "Format output using a custom template:\n'table':            Print output in table format with column headers (default)\n'table TEMPLATE':   Print output in table format using the given Go template\n'json':             Print in JSON format\n'TEMPLATE':         Print output using the given Go template" },
      { name: 'no-stream', type: 'bool', description: 'Disable streaming stats and only pull the first result' },
      { name: 'no-trunc', type: 'bool', description: 'Do not truncate output' },
    ],
  },
  async run(ctx, argv, path) {
    const a = parseArgs(this.spec, argv, path);
    const noStream = a.bool('no-stream');
    const collectors: Collector[] = [];
    const add = (container: string) => {
      if (collectors.some((c) => c.container === container)) return undefined;
      const c = new Collector(container, ctx, !noStream);
      collectors.push(c);
      return c;
    };
    const remove = (container: string) => {
      const i = collectors.findIndex((c) => c.container === container);
      if (i >= 0) collectors.splice(i, 1)[0]!.close();
    };
    const showAll = a.args.length === 0;
    const session: Array<() => void> = [];
    let events: IncomingMessage | undefined;
    let eventsError: unknown;
    try {
      if (showAll) {
        // Subscribed before listing, so a container that starts in between is not missed.
        const res = await ctx.client.call('GET', '/events', { query: { filters: JSON.stringify({ type: { container: true } }) } });
        events = res.body;
        void followEvents(res.body, (action, id) => {
          const short = id.slice(0, 12);
          if (action === 'start' || (action === 'create' && a.bool('all'))) add(short);
          else if (action === 'die' && !a.bool('all')) remove(short);
        }).catch((err: unknown) => {
          eventsError = err;
        });
        const list = await ctx.client.json<Array<{ Id: string }>>('GET', '/containers/json', { query: { all: a.bool('all') || undefined } });
        for (const c of list) add(c.Id.slice(0, 12));
        await Promise.all(collectors.map((c) => c.first));
      } else {
        for (const name of a.args) add(name);
        await Promise.all(collectors.map((c) => c.first));
        const errors = collectors.filter((c) => c.error !== undefined).map((c) => errorText(c.error));
        if (errors.length) throw new ExitError(errors.join('\n'), 1);
      }

      let closed = false;
      const unwatch = onOutputClosed(process.stdout, () => (closed = true));
      session.push(() => {
        unwatch();
        process.stdout.on('error', () => undefined);
      });
      const format = a.string('format') || 'table';
      const template = format === 'table' ? DEFAULT_TABLE : format;
      const trunc = !a.bool('no-trunc');
      for (;;) {
        await new Promise((r) => setTimeout(r, 500));
        if (closed) return SIGPIPE_STATUS;
        const table = renderTable(template, collectors.map((c) => new StatsRow(c.entry, trunc).context()), HEADERS);
        if (noStream) {
          ctx.out(table);
          break;
        }
        const text = `\x1b[H${table}`;
        ctx.out(`${text}${text.split('\n').map((line) => `${line} \x1b[K\n`).join('')}\x1b[J`);
        if (collectors.length === 0 && !showAll) break;
        if (eventsError !== undefined) {
          if (eventsError instanceof ApiError) throw eventsError;
          break;
        }
      }
      return 0;
    } finally {
      events?.destroy();
      for (const c of collectors) c.close();
      for (const s of session) s();
    }
  },
};

async function followEvents(body: IncomingMessage, on: (action: string, id: string) => void): Promise<void> {
  let buffered = '';
  for await (const chunk of body) {
    buffered += (chunk as Buffer).toString('utf8');
    let nl: number;
    while ((nl = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, nl).trim();
      buffered = buffered.slice(nl + 1);
      if (!line) continue;
      const e = JSON.parse(line) as { Action?: string; status?: string; Actor?: { ID?: string }; id?: string };
      const id = e.Actor?.ID ?? e.id ?? '';
      if (id) on((e.Action ?? e.status ?? '').split(':')[0]!, id);
    }
  }
}
