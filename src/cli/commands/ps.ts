/**
 * `ps` (container ls): docker's table, its --format fields and functions, -q, -a, -l, -n,
 * -s and --filter, with the size asked of the daemon only when shown. `ps -q` loads none of
 * the printing code.
 */
import { FORMAT_HELP, filterArgs, parseArgs } from '../args.js';
import type { Command } from '../command.js';
import type { ContainerSummary } from './ps-format.js';

export const psCommand: Command = {
  spec: {
    usage: 'ps [OPTIONS]',
    description: 'List containers',
    aliases: ['berth container ls', 'berth container list', 'berth container ps', 'berth ps'],
    args: { max: 0 },
    flags: [
      { name: 'all', short: 'a', type: 'bool', description: 'Show all containers (default shows just running)' },
      { name: 'filter', short: 'f', type: 'list', placeholder: 'filter', description: 'Filter output based on conditions provided' },
      { name: 'format', type: 'string', description: FORMAT_HELP },
      { name: 'last', short: 'n', type: 'int', default: -1, description: 'Show n last created containers (includes all states)' },
      { name: 'latest', short: 'l', type: 'bool', description: 'Show the latest created container (includes all states)' },
      { name: 'no-trunc', type: 'bool', description: "Don't truncate output" },
      { name: 'quiet', short: 'q', type: 'bool', description: 'Only display container IDs' },
      { name: 'size', short: 's', type: 'bool', description: 'Display total file sizes' },
    ],
  },
  async run(ctx, argv, path) {
    const a = parseArgs(this.spec, argv, path);
    const filters = filterArgs(a.list('filter'), 'filter', 'f');
    const quiet = a.bool('quiet');
    const format = a.string('format') ?? '';
    if (format !== '' && quiet) ctx.err('WARNING: Ignoring custom format, because both --format and --quiet are set.\n');
    let limit = a.int('last') ?? -1;
    if (a.bool('latest') && limit === -1) limit = 1;
    let size = a.bool('size');
    const printing = quiet && format === '' ? undefined : await import('./ps-format.js');
    // As docker: the template must parse and run over an empty row; .Size in it asks for sizes.
    if (printing && format !== '' && printing.checkFormat(format) && !quiet && !a.has('size')) size = true;
    const list = await ctx.client.json<ContainerSummary[]>('GET', '/containers/json', {
      query: {
        all: a.bool('all') || undefined,
        limit: limit > 0 ? limit : undefined,
        size: (size && !(quiet && format === '')) || undefined,
        filters: Object.keys(filters).length ? JSON.stringify(filters) : undefined,
      },
    });
    const trunc = !a.bool('no-trunc');
    if (!printing) {
      ctx.out(list.map((c) => `${trunc ? c.Id.slice(0, 12) : c.Id}\n`).join(''));
      return 0;
    }
    ctx.out(printing.renderContainers(list, format, quiet, size, trunc));
    return 0;
  },
};
