/**
 * Volume commands: volume ls, inspect, create, rm and prune, as the docker CLI (v28) has
 * them: the same flags, requests, output and errors. Cluster volumes (swarm) are not
 * berth's: their flags, hidden by docker for a daemon that is no swarm manager, are left out.
 */
import { ApiError } from '../../client/engine-client.js';
import { asStruct, goMap } from '../../util/go-value.js';
import { naturalCompare } from '../../util/sort-order.js';
import { FORMAT_HELP, INSPECT_FORMAT_HELP, MAP_FLAG, filterArgs, parseArgs } from '../args.js';
import type { Command } from '../command.js';
import { ExitError, daemonError } from '../command.js';
import { kvMap, validateLabel } from '../parse-opts.js';
import type { VolumeJson } from './volume-format.js';
import { confirm, inspectEach } from './images.js';


function volumePath(name: string): string {
  return `/volumes/${encodeURIComponent(name)}`;
}

// --- volume ls --------------------------------------------------------------------------

const LS_TABLE = 'table {{.Driver}}\t{{.Name}}';
const LS_RAW = 'name: {{.Name}}\\ndriver: {{.Driver}}\\n';

export const volumeLsCommand: Command = {
  spec: {
    usage: 'volume ls [OPTIONS]',
    description: 'List volumes',
    aliases: ['berth volume ls', 'berth volume list'],
    args: { max: 0 },
    flags: [
      { name: 'filter', short: 'f', type: 'list', placeholder: 'filter', description: 'Provide filter values (e.g. "dangling=true")' },
      { name: 'format', type: 'string', description: FORMAT_HELP },
      { name: 'quiet', short: 'q', type: 'bool', description: 'Only display volume names' },
    ],
  },
  async run(ctx, argv, path) {
    const a = parseArgs(this.spec, argv, path);
    const filters = filterArgs(a.list('filter'), 'filter', 'f');
    const { Volumes: list } = await ctx.client.json<{ Volumes: VolumeJson[] | null }>('GET', '/volumes', {
      query: { filters: Object.keys(filters).length ? JSON.stringify(filters) : undefined },
    });
    const volumes = (list ?? []).sort((x, y) => naturalCompare(x.Name, y.Name));
    const format = a.string('format') ?? '';
    const quiet = a.bool('quiet');
    if (quiet && (format === '' || format === 'table')) {
      // {{.Name}} of every volume: no template needed.
      ctx.out(volumes.map((v) => `${v.Name}\n`).join(''));
      return 0;
    }
    const [{ renderTable, resolveFormat }, { VOLUME_HEADERS, volumeRow }] = await Promise.all([import('../format/table.js'), import('./volume-format.js')]);
    // As docker's NewVolumeFormat: a format of its own wins over -q.
    const chosen = resolveFormat(format, { table: LS_TABLE, quiet: '{{.Name}}', raw: LS_RAW, rawQuiet: 'name: {{.Name}}', quietOverridesCustom: false }, quiet);
    ctx.out(renderTable(chosen, volumes.map(volumeRow), VOLUME_HEADERS));
    return 0;
  },
};

// --- volume inspect ---------------------------------------------------------------------

export const volumeInspectCommand: Command = {
  spec: {
    usage: 'volume inspect [OPTIONS] VOLUME [VOLUME...]',
    description: 'Display detailed information on one or more volumes',
    args: { min: 1 },
    flags: [{ name: 'format', short: 'f', type: 'string', description: INSPECT_FORMAT_HELP }],
  },
  async run(ctx, argv, path) {
    const a = parseArgs(this.spec, argv, path);
    return inspectEach(ctx, a.args, a.string('format'), (name) => ctx.client.json('GET', volumePath(name)), {
      notFound: (_name, err) => daemonError(err),
      // docker keeps no raw JSON of a volume: --format runs over volume.Volume alone.
      view: { typed: (raw) => typedVolume(raw as VolumeJson), raw: false },
    });
  },
};

/**
 * docker's volume.Volume: its fields in Go's order (alphabetical), the maps Go maps (nil
 * where the daemon sent null), no cluster volume, and its JSON as Go marshals the struct
 * (ClusterVolume, an empty CreatedAt and Status, and UsageData left out when empty).
 */
function typedVolume(raw: VolumeJson): object {
  const fields = {
    ClusterVolume: null,
    CreatedAt: raw.CreatedAt ?? '',
    Driver: raw.Driver,
    Labels: goMap(raw.Labels),
    Mountpoint: raw.Mountpoint,
    Name: raw.Name,
    Options: goMap(raw.Options),
    Scope: raw.Scope,
    Status: goMap(raw.Status),
    UsageData: raw.UsageData ? asStruct({ ...raw.UsageData }, 'volume.UsageData') : null,
  };
  const { ClusterVolume, CreatedAt, Status, UsageData, ...rest } = fields;
  const json = () => ({
    ...(CreatedAt ? { CreatedAt } : {}),
    ...rest,
    ...(Status.size ? { Status } : {}),
    ...(UsageData ? { UsageData } : {}),
  });
  return asStruct({ ...fields, toJSON: json }, 'volume.Volume');
}

// --- volume create ----------------------------------------------------------------------

export const volumeCreateCommand: Command = {
  spec: {
    usage: 'volume create [OPTIONS] [VOLUME]',
    description: 'Create a volume',
    args: { max: 1 },
    flags: [
      { name: 'driver', short: 'd', type: 'string', default: 'local', description: 'Specify volume driver name' },
      { name: 'label', type: 'list', set: (v) => [validateLabel(v)], description: 'Set metadata for a volume' },
      { name: 'name', type: 'string', hidden: true, description: 'Specify volume name' },
      { name: 'opt', short: 'o', ...MAP_FLAG, description: 'Set driver specific options' },
    ],
  },
  async run(ctx, argv, path) {
    const a = parseArgs(this.spec, argv, path);
    let name = a.string('name') ?? '';
    if (a.args.length === 1) {
      if (name !== '') throw new ExitError('conflicting options: cannot specify a volume-name through both --name and as a positional arg', 1);
      name = a.args[0]!;
    }
    // The body as docker sends it (volume.CreateOptions, no cluster volume spec).
    const created = await ctx.client.json<VolumeJson>('POST', '/volumes/create', {
      body: { Driver: a.string('driver'), DriverOpts: kvMap(a.list('opt')), Labels: kvMap(a.list('label')), Name: name },
    });
    ctx.out(`${created.Name}\n`);
    return 0;
  },
};

// --- volume rm --------------------------------------------------------------------------

export const volumeRmCommand: Command = {
  spec: {
    usage: 'volume rm [OPTIONS] VOLUME [VOLUME...]',
    description: 'Remove one or more volumes',
    long: 'Remove one or more volumes. You cannot remove a volume that is in use by a container.',
    aliases: ['berth volume rm', 'berth volume remove'],
    args: { min: 1 },
    flags: [{ name: 'force', short: 'f', type: 'bool', description: 'Force the removal of one or more volumes' }],
  },
  async run(ctx, argv, path) {
    const a = parseArgs(this.spec, argv, path);
    const force = a.bool('force') || undefined;
    const errors: string[] = [];
    for (const name of a.args) {
      try {
        await ctx.client.send('DELETE', volumePath(name), { query: { force } });
      } catch (err) {
        if (!(err instanceof ApiError)) throw err;
        errors.push(daemonError(err));
        continue;
      }
      ctx.out(`${name}\n`);
    }
    // docker joins the errors: one a line, after the names it removed.
    if (errors.length) throw new ExitError(errors.join('\n'), 1);
    return 0;
  },
};

// --- volume prune -----------------------------------------------------------------------

export const volumePruneCommand: Command = {
  spec: {
    usage: 'volume prune [OPTIONS]',
    description: 'Remove unused local volumes',
    args: { max: 0 },
    flags: [
      { name: 'all', short: 'a', type: 'bool', description: 'Remove all unused volumes, not just anonymous ones' },
      { name: 'filter', type: 'list', placeholder: 'filter', description: 'Provide filter values (e.g. "label=<label>")' },
      { name: 'force', short: 'f', type: 'bool', description: 'Do not prompt for confirmation' },
    ],
  },
  async run(ctx, argv, path) {
    const a = parseArgs(this.spec, argv, path);
    const filters = filterArgs(a.list('filter'), 'filter');
    let warning = 'WARNING! This will remove anonymous local volumes not used by at least one container.';
    if (a.bool('all')) {
      if (filters['all']) throw new ExitError('conflicting options: cannot specify both --all and --filter all=1', 1);
      filters['all'] = { true: true };
      warning = 'WARNING! This will remove all local volumes not used by at least one container.';
    }
    // A "no" cancels quietly, with status 0, as docker's.
    if (!a.bool('force') && !(await confirm(ctx, warning))) return 0;
    const report = await ctx.client.json<{ VolumesDeleted: string[] | null; SpaceReclaimed: number }>('POST', '/volumes/prune', {
      query: { filters: Object.keys(filters).length ? JSON.stringify(filters) : undefined },
    });
    const { humanSize } = await import('../../util/units.js');
    const deleted = report.VolumesDeleted ?? [];
    // docker counts the space only when it names volumes.
    if (deleted.length) ctx.out(`Deleted Volumes:\n${deleted.map((name) => `${name}\n`).join('')}\n`);
    ctx.out(`Total reclaimed space: ${humanSize(deleted.length ? report.SpaceReclaimed : 0, 4)}\n`);
    return 0;
  },
};
