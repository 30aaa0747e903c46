/** commit, diff and export: a container's filesystem as an image, a change list, a tar. */
import { parseArgs } from '../args.js';
import { writeArchive } from '../archive-output.js';
import type { Command } from '../command.js';
import { ExitError } from '../command.js';
import { containerPath } from './run.js';

export const commitCommand: Command = {
  spec: {
    usage: 'commit [OPTIONS] CONTAINER [REPOSITORY[:TAG]]',
    description: "Create a new image from a container's changes",
    aliases: ['berth container commit', 'berth commit'],
    args: { min: 1, max: 2 },
    interspersed: false,
    flags: [
      { name: 'author', short: 'a', type: 'string', description: 'Author (e.g., "John Hannibal Smith <hannibal@a-team.com>")' },
      { name: 'change', short: 'c', type: 'list', description: 'Apply Dockerfile instruction to the created image' },
      { name: 'message', short: 'm', type: 'string', description: 'Commit message' },
      { name: 'pause', short: 'p', type: 'bool', default: true, description: 'Pause container during commit' },
      { name: 'squash', type: 'bool', description: "Squash the image's layers and the container's changes into one layer" },
    ],
  },
  async run(ctx, argv, path) {
    const a = parseArgs(this.spec, argv, path);
    const [container, reference] = a.args as [string, string | undefined];
    // As the docker client: the name is normalised here, the daemon gets repo and tag apart.
    let repo: string | undefined;
    let tag: string | undefined;
    if (reference) {
      const { familiarName, parseReference } = await import('../../images/reference.js');
      const ref = parseReference(reference);
      if (ref.digest) throw new ExitError('refusing to create a tag with a digest reference', 1);
      repo = familiarName(ref);
      tag = ref.tag ?? 'latest';
    }
    const res = await ctx.client.json<{ Id: string }>('POST', '/commit', {
      query: {
        container,
        repo,
        tag,
        comment: a.string('message'),
        author: a.string('author'),
        changes: a.list('change'),
        pause: a.bool('pause') ? undefined : '0',
        squash: a.bool('squash') || undefined,
      },
    });
    ctx.out(`${res.Id}\n`);
    return 0;
  },
};

interface FilesystemChange {
  Path: string;
  Kind: number;
}

const KINDS = ['C', 'A', 'D'];

export const diffCommand: Command = {
  spec: {
    usage: 'diff CONTAINER',
    description: "Inspect changes to files or directories on a container's filesystem",
    aliases: ['berth container diff', 'berth diff'],
    args: { min: 1, max: 1 },
    flags: [],
  },
  async run(ctx, argv, path) {
    const a = parseArgs(this.spec, argv, path);
    const changes = await ctx.client.json<FilesystemChange[] | null>('GET', containerPath(a.args[0]!, '/changes'));
    ctx.out((changes ?? []).map((c) => `${KINDS[c.Kind] ?? ''} ${c.Path}\n`).join(''));
    return 0;
  },
};

export const exportCommand: Command = {
  spec: {
    usage: 'export [OPTIONS] CONTAINER',
    description: "Export a container's filesystem as a tar archive",
    aliases: ['berth container export', 'berth export'],
    args: { min: 1, max: 1 },
    flags: [{ name: 'output', short: 'o', type: 'string', description: 'Write to a file, instead of STDOUT' }],
  },
  async run(ctx, argv, path) {
    const a = parseArgs(this.spec, argv, path);
    const id = a.args[0]!;
    await writeArchive(a.string('output') ?? '', 'failed to export container', async () => (await ctx.client.call('GET', containerPath(id, '/export'))).body);
    return 0;
  },
};
