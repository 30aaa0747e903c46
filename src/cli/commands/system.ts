/** System commands: version, info, system df, events, and the generic inspect. */
import { ApiError, CLIENT_API_VERSION } from '../../client/engine-client.js';
import { BERTH_VERSION } from '../../daemon/version.js';
import { parseArgs } from '../args.js';
import type { Command } from '../command.js';
import { compileTemplate } from '../format/go-template.js';
import { humanSize } from '../../util/units.js';
import { formatList } from '../output.js';
import { encodeName, filterMap, inspectEach } from './images.js';

interface VersionInfo {
  Version: string;
  ApiVersion: string;
  MinAPIVersion: string;
  GoVersion: string;
  GitCommit: string;
  BuildTime: string;
  Os: string;
  Arch: string;
  KernelVersion: string;
  Experimental?: boolean;
}

export const versionCommand: Command = {
  spec: {
    usage: 'version [OPTIONS]',
    description: 'Show the berth version information',
    args: { max: 0 },
    flags: [{ name: 'format', short: 'f', type: 'string', description: 'Format output using a custom template' }],
  },
  async run(ctx, argv, path) {
    const a = parseArgs(this.spec, argv, path);
    const arch = process.arch === 'x64' ? 'amd64' : process.arch;
    const client = { Version: BERTH_VERSION, ApiVersion: CLIENT_API_VERSION, GoVersion: `node${process.versions.node}`, Os: 'linux', Arch: arch };
    let server: VersionInfo | undefined;
    let serverError: unknown;
    try {
      server = await ctx.client.json<VersionInfo>('GET', '/version');
    } catch (err) {
      serverError = err;
    }
    const format = a.string('format');
    if (format) {
      ctx.out(`${compileTemplate(format === 'json' ? '{{json .}}' : format).execute({ Client: client, Server: server ?? null })}\n`);
    } else {
      const lines = [
        'Client:',
        ` Version:           ${client.Version}`,
        ` API version:       ${client.ApiVersion}`,
        ` Node.js version:   ${process.versions.node}`,
        ` OS/Arch:           linux/${arch}`,
      ];
      if (server) {
        lines.push(
          '',
          'Server: berth',
          ' Engine:',
          `  Version:          ${server.Version}`,
          `  API version:      ${server.ApiVersion} (minimum version ${server.MinAPIVersion})`,
          `  Runtime:          ${server.GoVersion}`,
          `  OS/Arch:          ${server.Os}/${server.Arch}`,
          `  Kernel:           ${server.KernelVersion}`,
          `  Experimental:     ${server.Experimental ?? false}`,
        );
      }
      ctx.out(`${lines.join('\n')}\n`);
    }
    if (serverError) throw serverError;
    return 0;
  },
};

export const infoCommand: Command = {
  spec: {
    usage: 'info [OPTIONS]',
    description: 'Display system-wide information',
    args: { max: 0 },
    flags: [{ name: 'format', short: 'f', type: 'string', description: 'Format output using a custom template' }],
  },
  async run(ctx, argv, path) {
    const a = parseArgs(this.spec, argv, path);
    const info = await ctx.client.json<Record<string, unknown>>('GET', '/info');
    const format = a.string('format');
    if (format) {
      ctx.out(`${compileTemplate(format === 'json' ? '{{json .}}' : format).execute(info)}\n`);
      return 0;
    }
    const v = (k: string) => String(info[k] ?? '');
    ctx.out(
      [
        'Server:',
        ` Containers: ${v('Containers')}`,
        `  Running: ${v('ContainersRunning')}`,
        `  Paused: ${v('ContainersPaused')}`,
        `  Stopped: ${v('ContainersStopped')}`,
        ` Images: ${v('Images')}`,
        ` Server Version: ${v('ServerVersion')}`,
        ` Storage Driver: ${v('Driver')}`,
        ` Logging Driver: ${v('LoggingDriver')}`,
        ` Cgroup Driver: ${v('CgroupDriver')}`,
        ` Cgroup Version: ${v('CgroupVersion')}`,
        ` Default Runtime: ${v('DefaultRuntime')}`,
        ` Security Options: ${((info['SecurityOptions'] as string[] | undefined) ?? []).join(', ')}`,
        ` Kernel Version: ${v('KernelVersion')}`,
        ` Operating System: ${v('OperatingSystem')}`,
        ` OSType: ${v('OSType')}`,
        ` Architecture: ${v('Architecture')}`,
        ` CPUs: ${v('NCPU')}`,
        ` Total Memory: ${humanSize(Number(info['MemTotal'] ?? 0))}`,
        ` Name: ${v('Name')}`,
        ` Berth Root Dir: ${v('DockerRootDir')}`,
        ` Live Restore Enabled: ${v('LiveRestoreEnabled')}`,
        '',
      ].join('\n'),
    );
    return 0;
  },
};

export const dfCommand: Command = {
  spec: {
    usage: 'system df [OPTIONS]',
    description: 'Show berth disk usage',
    args: { max: 0 },
    flags: [
      { name: 'format', type: 'string', description: 'Format output using a custom template' },
      { name: 'verbose', short: 'v', type: 'bool', description: 'Show detailed information on space usage' },
    ],
  },
  async run(ctx, argv, path) {
    const a = parseArgs(this.spec, argv, path);
    const df = await ctx.client.json<{
      LayersSize: number;
      Images: Array<{ Size: number; SharedSize: number; Containers: number }>;
      Containers: Array<{ SizeRw?: number; State: string }>;
      Volumes: Array<{ UsageData?: { Size: number; RefCount: number } }>;
      BuildCache: Array<{ Size: number; InUse: boolean; Shared: boolean }>;
    }>('GET', '/system/df');
    const pct = (part: number, whole: number) => (whole > 0 ? ` (${Math.floor((part * 100) / whole)}%)` : '');
    const activeImages = df.Images.filter((i) => i.Containers > 0);
    const usedByActive = activeImages.reduce((s, i) => s + i.Size - Math.max(0, i.SharedSize), 0);
    const imageReclaim = Math.max(0, df.LayersSize - usedByActive);
    const containerSize = df.Containers.reduce((s, c) => s + (c.SizeRw ?? 0), 0);
    const containerReclaim = df.Containers.filter((c) => c.State !== 'running').reduce((s, c) => s + (c.SizeRw ?? 0), 0);
    const volumeSize = df.Volumes.reduce((s, v) => s + Math.max(0, v.UsageData?.Size ?? 0), 0);
    const volumeReclaim = df.Volumes.filter((v) => (v.UsageData?.RefCount ?? 0) === 0).reduce((s, v) => s + Math.max(0, v.UsageData?.Size ?? 0), 0);
    const cacheSize = df.BuildCache.reduce((s, b) => s + b.Size, 0);
    const rows = [
      { Type: 'Images', TotalCount: String(df.Images.length), Active: String(activeImages.length), Size: humanSize(df.LayersSize), Reclaimable: `${humanSize(imageReclaim)}${pct(imageReclaim, df.LayersSize)}` },
      { Type: 'Containers', TotalCount: String(df.Containers.length), Active: String(df.Containers.filter((c) => c.State === 'running').length), Size: humanSize(containerSize), Reclaimable: `${humanSize(containerReclaim)}${pct(containerReclaim, containerSize)}` },
      { Type: 'Local Volumes', TotalCount: String(df.Volumes.length), Active: String(df.Volumes.filter((v) => (v.UsageData?.RefCount ?? 0) > 0).length), Size: humanSize(volumeSize), Reclaimable: `${humanSize(volumeReclaim)}${pct(volumeReclaim, volumeSize)}` },
      { Type: 'Build Cache', TotalCount: String(df.BuildCache.length), Active: String(df.BuildCache.filter((b) => b.InUse).length), Size: humanSize(cacheSize), Reclaimable: humanSize(cacheSize) },
    ];
    ctx.out(
      formatList(rows, {
        format: a.string('format'),
        defaultFormat: 'table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}',
        headers: { Type: 'TYPE', TotalCount: 'TOTAL', Active: 'ACTIVE', Size: 'SIZE', Reclaimable: 'RECLAIMABLE' },
      }),
    );
    return 0;
  },
};

export const inspectCommand: Command = {
  spec: {
    usage: 'inspect [OPTIONS] NAME|ID [NAME|ID...]',
    description: 'Return low-level information on berth objects',
    args: { min: 1 },
    flags: [
      { name: 'format', short: 'f', type: 'string', description: 'Format output using a custom template' },
      { name: 'size', short: 's', type: 'bool', description: 'Display total file sizes if the type is container' },
      { name: 'type', type: 'string', description: 'Return JSON for specified type' },
    ],
  },
  async run(ctx, argv, path) {
    const a = parseArgs(this.spec, argv, path);
    const type = a.string('type');
    const kinds = type ? [type] : ['container', 'image', 'network', 'volume'];
    for (const k of kinds) {
      if (!['container', 'image', 'network', 'volume'].includes(k)) {
        ctx.err(`"${k}" is not a valid value for --type\n`);
        return 1;
      }
    }
    const paths: Record<string, (name: string) => string> = {
      container: (n) => `/containers/${encodeURIComponent(n)}/json`,
      image: (n) => `/images/${encodeName(n)}/json`,
      network: (n) => `/networks/${encodeURIComponent(n)}`,
      volume: (n) => `/volumes/${encodeURIComponent(n)}`,
    };
    return inspectEach(ctx, a.args, a.string('format'), async (name) => {
      let last: unknown;
      for (const k of kinds) {
        try {
          return await ctx.client.json('GET', paths[k]!(name), k === 'container' ? { query: { size: a.bool('size') } } : {});
        } catch (err) {
          if (!(err instanceof ApiError) || err.status !== 404) throw err;
          last = err;
        }
      }
      throw last;
    });
  },
};

export const eventsCommand: Command = {
  spec: {
    usage: 'events [OPTIONS]',
    description: 'Get real time events from the server',
    args: { max: 0 },
    flags: [
      { name: 'filter', short: 'f', type: 'list', description: 'Filter output based on conditions provided', placeholder: 'filter' },
      { name: 'format', type: 'string', description: 'Format output using a custom template' },
      { name: 'since', type: 'string', description: 'Show all events created since timestamp' },
      { name: 'until', type: 'string', description: 'Stream events until this timestamp' },
    ],
  },
  async run(ctx, argv, path) {
    const a = parseArgs(this.spec, argv, path);
    const filters = filterMap(a.list('filter'));
    const format = a.string('format');
    const template = format ? compileTemplate(format === 'json' ? '{{json .}}' : format) : undefined;
    for await (const e of ctx.client.jsonLines('GET', '/events', {
      query: { since: a.string('since'), until: a.string('until'), filters: Object.keys(filters).length ? JSON.stringify(filters) : undefined },
    })) {
      if (template) {
        ctx.out(`${template.execute(e)}\n`);
        continue;
      }
      const ev = e as { Type: string; Action: string; Actor: { ID: string; Attributes: Record<string, string> }; timeNano: number };
      const attrs = Object.entries(ev.Actor.Attributes ?? {})
        .sort(([x], [y]) => x.localeCompare(y))
        .map(([k, val]) => `${k}=${val}`)
        .join(', ');
      const time = new Date(ev.timeNano / 1e6).toISOString().replace('Z', '000000+00:00');
      ctx.out(`${time} ${ev.Type} ${ev.Action} ${ev.Actor.ID}${attrs ? ` (${attrs})` : ''}\n`);
    }
    return 0;
  },
};
