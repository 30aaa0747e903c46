/** System commands: version, info, system df, events, and the generic inspect. */
import { ApiError, CLIENT_API_VERSION } from '../../client/engine-client.js';
import { BERTH_VERSION } from '../../daemon/version.js';
import { parseArgs } from '../args.js';
import type { Command } from '../command.js';
import { compileTemplate } from '../format/go-template.js';
import { humanSize } from '../../util/units.js';
import { contextRow } from '../format/table.js';
import { formatList } from '../output.js';
import { encodeName, filterMap, inspectEach, type ImageSummary } from './images.js';
import type { ContainerSummary } from './ps-format.js';
import type { VolumeJson } from './volume-format.js';

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

/** `GET /system/df`. berthd has no builder: its build cache is always empty. */
interface DiskUsage {
  LayersSize: number;
  Images: ImageSummary[];
  Containers: ContainerSummary[];
  Volumes: VolumeJson[];
  BuildCache: Array<{ Size: number; InUse: boolean; Shared: boolean }>;
}

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
    const df = await ctx.client.json<DiskUsage>('GET', '/system/df');
    const format = a.string('format') ?? '';
    if (a.bool('verbose')) {
      ctx.out(await verboseDiskUsage(df, format));
      return 0;
    }
    // As docker's diskUsage*Context: sizes with go-units' HumanSize (4 significant digits).
    const size = (bytes: number) => humanSize(bytes, 4);
    const reclaimable = (part: number, whole: number) => (whole > 0 ? `${size(part)} (${Math.trunc((part * 100) / whole)}%)` : size(part));
    const activeImages = df.Images.filter((i) => i.Containers > 0);
    const usedByActive = activeImages.filter((i) => i.Size !== -1 && i.SharedSize !== -1).reduce((s, i) => s + i.Size - i.SharedSize, 0);
    // Running, paused and restarting containers are active.
    const active = (c: ContainerSummary) => ['running', 'paused', 'restarting'].includes(c.State);
    const containerSize = df.Containers.reduce((s, c) => s + (c.SizeRw ?? 0), 0);
    const containerReclaim = df.Containers.filter((c) => !active(c)).reduce((s, c) => s + (c.SizeRw ?? 0), 0);
    // A volume whose size the daemon could not tell (-1) counts for nothing.
    const sized = df.Volumes.filter((v) => v.UsageData && v.UsageData.Size !== -1);
    const volumeSize = sized.reduce((s, v) => s + v.UsageData!.Size, 0);
    const volumeReclaim = sized.filter((v) => v.UsageData!.RefCount === 0).reduce((s, v) => s + v.UsageData!.Size, 0);
    const cacheSize = df.BuildCache.filter((b) => !b.Shared).reduce((s, b) => s + b.Size, 0);
    const cacheInUse = df.BuildCache.filter((b) => b.InUse && !b.Shared).reduce((s, b) => s + b.Size, 0);
    const row = (context: string, Type: string, count: number, activeCount: number, Size: string, Reclaimable: string) =>
      contextRow({ Active: String(activeCount), Reclaimable, Size, TotalCount: String(count), Type }, `*formatter.${context}`);
    const rows = [
      row('diskUsageImagesContext', 'Images', df.Images.length, activeImages.length, size(df.LayersSize), reclaimable(df.LayersSize - usedByActive, df.LayersSize)),
      row('diskUsageContainersContext', 'Containers', df.Containers.length, df.Containers.filter(active).length, size(containerSize), reclaimable(containerReclaim, containerSize)),
      row('diskUsageVolumesContext', 'Local Volumes', df.Volumes.length, df.Volumes.filter((v) => (v.UsageData?.RefCount ?? 0) > 0).length, size(volumeSize), reclaimable(volumeReclaim, volumeSize)),
      row('diskUsageBuilderContext', 'Build Cache', df.BuildCache.length, df.BuildCache.filter((b) => b.InUse).length, size(cacheSize), size(cacheSize - cacheInUse)),
    ];
    ctx.out(
      formatList(rows, {
        format: format || undefined,
        defaultFormat: 'table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}',
        headers: { Type: 'TYPE', TotalCount: 'TOTAL', Active: 'ACTIVE', Size: 'SIZE', Reclaimable: 'RECLAIMABLE' },
      }),
    );
    return 0;
  },
};

/**
 * `system df -v` as docker's verboseWrite: each image (by its first tag), container and
 * volume, and the build cache, in tables of their own under a title each; a --format other
 * than table runs once over {Images, Containers, Volumes, BuildCache}.
 */
async function verboseDiskUsage(df: DiskUsage, format: string): Promise<string> {
  const [{ IMAGE_HEADERS, formatting, imageRow }, { CONTAINER_HEADERS, ContainerRow, containerContext, emptySummary }, { VOLUME_HEADERS, volumeRow }, { renderTable }, reference] =
    await Promise.all([import('./images.js'), import('./ps-format.js'), import('./volume-format.js'), import('../format/table.js'), import('../../images/reference.js')]);
  const f = await formatting();
  const now = Date.now();
  const table = format === '' || format === 'table';
  const images = df.Images.map((i) => {
    const [repo, tag] = firstTag(i, reference);
    return imageRow(f, i, repo, tag, '', !table, now);
  });
  // The virtual size is not shown.
  const containers = df.Containers.map((c) => containerContext(new ContainerRow({ ...emptySummary(), ...c, SizeRootFs: 0 }, table, now)));
  const volumes = df.Volumes.map(volumeRow);
  if (!table) return compileTemplate(format).execute({ Images: images, Containers: containers, Volumes: volumes, BuildCache: [] });
  const cacheSize = df.BuildCache.filter((b) => !b.Shared).reduce((s, b) => s + b.Size, 0);
  return [
    'Images space usage:\n\n',
    renderTable('table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}\t{{.SharedSize}}\t{{.UniqueSize}}\t{{.Containers}}', images, IMAGE_HEADERS),
    '\nContainers space usage:\n\n',
    renderTable('table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.LocalVolumes}}\t{{.Size}}\t{{.RunningFor}}\t{{.Status}}\t{{.Names}}', containers, CONTAINER_HEADERS),
    '\nLocal Volumes space usage:\n\n',
    renderTable('table {{.Name}}\t{{.Links}}\t{{.Size}}', volumes, VOLUME_HEADERS),
    `\nBuild cache usage: ${humanSize(cacheSize, 4)}\n\n`,
    renderTable('table {{.ID}}\t{{.CacheType}}\t{{.Size}}\t{{.CreatedSince}}\t{{.LastUsedSince}}\t{{.UsageCount}}\t{{.Shared}}', [], {
      ID: 'CACHE ID', CacheType: 'CACHE TYPE', Size: 'SIZE', CreatedSince: 'CREATED', LastUsedSince: 'LAST USED', UsageCount: 'USAGE', Shared: 'SHARED',
    }),
  ].join('');
}

/** An image's repository and tag as `system df -v` shows them: its first tag's, or <none>. */
function firstTag(image: ImageSummary, { familiarName, parseReference }: typeof import('../../images/reference.js')): [string, string] {
  const first = image.RepoTags?.[0];
  if (first === undefined || first === '<none>:<none>') return ['<none>', '<none>'];
  try {
    const ref = parseReference(first);
    if (ref.tag !== undefined) return [familiarName(ref), ref.tag];
  } catch {
    // docker leaves out an image whose tag does not parse; berth's always do.
  }
  return ['<none>', '<none>'];
}

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
