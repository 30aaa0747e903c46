/**
 * `berth`: the CLI's entry point. Global flags, then a command loaded on demand, so a call
 * loads only the code of the one command it runs. The only place that exits the process.
 */
import type { CliContext, Command } from './command.js';
import { UsageError, helpText } from './args.js';

type Loader = () => Promise<Record<string, unknown>>;

const images: Loader = () => import('./commands/images.js');
const system: Loader = () => import('./commands/system.js');
const run: Loader = () => import('./commands/run.js');
const containers: Loader = () => import('./commands/containers.js');
const ps: Loader = () => import('./commands/ps.js');
const logs: Loader = () => import('./commands/logs.js');
const stats: Loader = () => import('./commands/stats.js');
const exec: Loader = () => import('./commands/exec.js');
const commit: Loader = () => import('./commands/commit.js');
const cp: Loader = () => import('./commands/cp.js');
const registry: Loader = () => import('./commands/registry.js');
const network: Loader = () => import('./commands/network.js');
const volume: Loader = () => import('./commands/volume.js');
const build: Loader = () => import('./commands/build.js');

/** `name` and `container name` both, as docker has them. */
function containerCommand(name: string, loader: Loader, exportName: string): Array<[string, [Loader, string]]> {
  return [
    [name, [loader, exportName]],
    [`container ${name}`, [loader, exportName]],
  ];
}

/** Command path -> where it lives and its export name. */
const COMMANDS: Record<string, [Loader, string]> = {
  build: [build, 'buildCommand'],
  'image build': [build, 'buildCommand'],
  images: [images, 'imagesCommand'],
  'image ls': [images, 'imagesCommand'],
  'image list': [images, 'imagesCommand'],
  import: [images, 'importCommand'],
  'image import': [images, 'importCommand'],
  tag: [images, 'tagCommand'],
  'image tag': [images, 'tagCommand'],
  rmi: [images, 'rmiCommand'],
  'image rm': [images, 'rmiCommand'],
  'image remove': [images, 'rmiCommand'],
  history: [images, 'historyCommand'],
  'image history': [images, 'historyCommand'],
  'image inspect': [images, 'imageInspectCommand'],
  'image prune': [images, 'imagePruneCommand'],
  load: [images, 'loadCommand'],
  'image load': [images, 'loadCommand'],
  inspect: [system, 'inspectCommand'],
  version: [system, 'versionCommand'],
  info: [system, 'infoCommand'],
  'system info': [system, 'infoCommand'],
  'system df': [system, 'dfCommand'],
  events: [system, 'eventsCommand'],
  'system events': [system, 'eventsCommand'],
  ...Object.fromEntries([
    ...containerCommand('run', run, 'runCommand'),
    ...containerCommand('create', run, 'createCommand'),
    ...containerCommand('start', run, 'startCommand'),
    ...containerCommand('attach', run, 'attachCommand'),
    ...containerCommand('stop', containers, 'stopCommand'),
    ...containerCommand('restart', containers, 'restartCommand'),
    ...containerCommand('kill', containers, 'killCommand'),
    ...containerCommand('rm', containers, 'rmCommand'),
    ...containerCommand('wait', containers, 'waitCommand'),
    ...containerCommand('pause', containers, 'pauseCommand'),
    ...containerCommand('unpause', containers, 'unpauseCommand'),
    ...containerCommand('rename', containers, 'renameCommand'),
    ...containerCommand('top', containers, 'topCommand'),
    ...containerCommand('port', containers, 'portCommand'),
    ...containerCommand('logs', logs, 'logsCommand'),
    ...containerCommand('stats', stats, 'statsCommand'),
    ...containerCommand('exec', exec, 'execCommand'),
    ...containerCommand('commit', commit, 'commitCommand'),
    ...containerCommand('cp', cp, 'cpCommand'),
    ...containerCommand('diff', commit, 'diffCommand'),
    ...containerCommand('export', commit, 'exportCommand'),
    ['pull', [registry, 'pullCommand']],
    ['image pull', [registry, 'pullCommand']],
    ['push', [registry, 'pushCommand']],
    ['image push', [registry, 'pushCommand']],
    ['login', [registry, 'loginCommand']],
    ['logout', [registry, 'logoutCommand']],
    ['save', [registry, 'saveCommand']],
    ['image save', [registry, 'saveCommand']],
    ['ps', [ps, 'psCommand']],
    ['container ls', [ps, 'psCommand']],
    ['container list', [ps, 'psCommand']],
    ['container ps', [ps, 'psCommand']],
    ['container inspect', [containers, 'containerInspectCommand']],
    ['container prune', [containers, 'containerPruneCommand']],
    ['container remove', [containers, 'rmCommand']],
    ['network ls', [network, 'networkLsCommand']],
    ['network list', [network, 'networkLsCommand']],
    ['network inspect', [network, 'networkInspectCommand']],
    ['network create', [network, 'networkCreateCommand']],
    ['network rm', [network, 'networkRmCommand']],
    ['network remove', [network, 'networkRmCommand']],
    ['network prune', [network, 'networkPruneCommand']],
    ['network connect', [network, 'networkConnectCommand']],
    ['network disconnect', [network, 'networkDisconnectCommand']],
    ['volume ls', [volume, 'volumeLsCommand']],
    ['volume list', [volume, 'volumeLsCommand']],
    ['volume inspect', [volume, 'volumeInspectCommand']],
    ['volume create', [volume, 'volumeCreateCommand']],
    ['volume rm', [volume, 'volumeRmCommand']],
    ['volume remove', [volume, 'volumeRmCommand']],
    ['volume prune', [volume, 'volumePruneCommand']],
  ]),
};

const GROUPS = new Set(['image', 'system', 'container', 'network', 'volume']);

/** A group's usage line where it is more than its name (cobra's Use: docker's volume has "volume COMMAND"). */
const GROUP_USAGE: Record<string, string> = { volume: 'volume COMMAND' };

const MAIN_HELP = `
Usage:  berth [OPTIONS] COMMAND

A container engine that speaks Docker's language

Common Commands:
  run         Create and run a new container from an image
  ps          List containers
  build       Build an image from a Dockerfile
  images      List images
  import      Import the contents of a tarball to create a filesystem image
  load        Load an image from a tar archive or STDIN
  tag         Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
  rmi         Remove one or more images
  history     Show the history of an image
  inspect     Return low-level information on Docker objects
  info        Display system-wide information
  version     Show the berth version information

Management Commands:
  container   Manage containers
  image       Manage images
  network     Manage networks
  system      Manage berth
  volume      Manage volumes

Global Options:
  -H, --host string      Daemon socket to connect to (default: $BERTH_HOST, $DOCKER_HOST, unix:///run/berth/berth.sock)
  -v, --version          Print version information and quit

Run 'berth COMMAND --help' for more information on a command.
`;

async function main(argv: string[]): Promise<number> {
  let host: string | undefined;
  let i = 0;
  for (; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '-H' || arg === '--host') host = argv[++i];
    else if (arg.startsWith('--host=')) host = arg.slice(7);
    else if (arg.startsWith('-H') && arg.length > 2) host = arg.slice(2);
    else if (arg === '-D' || arg === '--debug') continue;
    else if (arg === '-l' || arg === '--log-level') i++;
    else if (arg === '-v' || arg === '--version') {
      const { BERTH_VERSION } = await import('../daemon/version.js');
      process.stdout.write(`berth version ${BERTH_VERSION}\n`);
      return 0;
    } else if (arg === '-h' || arg === '--help') {
      process.stdout.write(MAIN_HELP);
      return 0;
    } else if (arg.startsWith('-')) {
      process.stderr.write(`unknown flag: ${arg}\nSee 'berth --help'.\n`);
      return 125;
    } else break;
  }
  const rest = argv.slice(i);
  if (rest.length === 0) {
    process.stdout.write(MAIN_HELP);
    return 0;
  }
  let path = rest[0]!;
  let args = rest.slice(1);
  if (GROUPS.has(path)) {
    const group = path;
    const sub = args[0];
    if (sub === undefined) {
      // As docker: a group run without a command shows its help on stderr.
      process.stderr.write(await groupHelp(group));
      return 0;
    }
    if (sub === '--help' || sub === '-h') {
      if (sub === '-h') process.stdout.write(SHORT_HELP_DEPRECATED);
      process.stdout.write(await groupHelp(group));
      return 0;
    }
    path = `${group} ${sub}`;
    args = args.slice(1);
    if (!COMMANDS[path]) {
      // As cobra: the group takes no flag but --help, and no argument but a command.
      const hint = `\n\nUsage:  berth ${GROUP_USAGE[group] ?? group}\n\nRun 'berth ${group} --help' for more information\n`;
      if (sub.startsWith('-')) {
        process.stderr.write(`${sub.startsWith('--') ? `unknown flag: ${sub.replace(/=.*/, '')}` : `unknown shorthand flag: '${sub[1]}' in ${sub}`}${hint}`);
        return 125;
      }
      process.stderr.write(`berth: unknown command: berth ${path}${hint}`);
      return 1;
    }
  }
  const entry = COMMANDS[path];
  if (!entry) {
    process.stderr.write(`berth: unknown command: berth ${path}\n\nRun 'berth --help' for more information\n`);
    return 1;
  }
  const command = (await entry[0]())[entry[1]] as Command;
  const usage = usageFor(command, path);
  // -h is help where the command has no -h of its own (run's -h is --hostname).
  const shortHelp = args.includes('-h') && !command.spec.flags.some((f) => f.short === 'h');
  if (args.includes('--help') || shortHelp) {
    if (shortHelp && !args.includes('--help')) process.stdout.write(SHORT_HELP_DEPRECATED);
    process.stdout.write(helpText({ ...command.spec, usage }, helpColumns()));
    return 0;
  }
  const ctx = await makeContext(host);
  const name = commandName(usage);
  try {
    return await command.run(ctx, args, name);
  } catch (err) {
    return reportError(err, name, usage, command);
  }
}

const SHORT_HELP_DEPRECATED = 'Flag shorthand -h has been deprecated, use --help\n';

/** The width help wraps to: docker asks the terminal on stdin, and takes 80 without one. */
function helpColumns(): number {
  return process.stdin.isTTY ? (process.stdout.columns ?? process.stderr.columns ?? 80) : 80;
}

async function makeContext(host: string | undefined): Promise<CliContext> {
  const { EngineClient, resolveHost } = await import('../client/engine-client.js');
  let client: InstanceType<typeof EngineClient> | undefined;
  return {
    get client() {
      client ??= new EngineClient(resolveHost(host));
      return client;
    },
    out: (text: string) => {
      process.stdout.write(text);
    },
    err: (text: string) => {
      process.stderr.write(text);
    },
  };
}

function reportError(err: unknown, name: string, usage: string, command: Command): number {
  if (err instanceof UsageError) {
    process.stderr.write(`${err.message}\n\nUsage:  berth ${usage}\n\n${err.argumentsHint ?? 'Run'} 'berth ${name} --help' for more information\n`);
    return err.exitStatus;
  }
  const e = err as Error & { status?: number; exitCode?: number };
  if (e.constructor?.name === 'ApiError') {
    process.stderr.write(`Error response from daemon: ${e.message}\n`);
    return command.daemonErrorExit ?? 1;
  }
  if (typeof e.exitCode === 'number') {
    if (e.message) process.stderr.write(`${e.message}\n`);
    return e.exitCode;
  }
  if (e.constructor?.name === 'ConnectError' || e.constructor?.name === 'InvalidArgument') {
    process.stderr.write(`${e.message}\n`);
    return 1;
  }
  process.stderr.write(`berth: ${e?.message ?? String(err)}\n`);
  if (process.env['BERTH_DEBUG']) process.stderr.write(`${e?.stack}\n`);
  return 1;
}

/**
 * The usage line as the user named the command: `image ls` for `images [OPTIONS]`. A usage
 * that names its group already (`network ls [OPTIONS]`) stays as it is, under an alias too.
 */
function usageFor(command: Command, path: string): string {
  const usage = command.spec.usage;
  if (usage.startsWith(`${path} `) || usage === path) return usage;
  const group = path.split(' ')[0]!;
  if (path.includes(' ') && usage.startsWith(`${group} `)) return usage;
  return usage.replace(/^\S+/, path);
}

/** The command as its messages name it: the usage line's command words (`network ls`, never the alias `network list`). */
function commandName(usage: string): string {
  return /^[a-z][a-z0-9-]*(?: [a-z][a-z0-9-]*)*/.exec(usage)?.[0] ?? usage;
}

/** A group's help, as cobra lists its commands: each once, by its own name, with the first line of its description. */
async function groupHelp(group: string): Promise<string> {
  const listed = new Map<Command, string>();
  for (const [path, [loader, exportName]] of Object.entries(COMMANDS)) {
    if (!path.startsWith(`${group} `)) continue;
    const command = (await loader())[exportName] as Command;
    if (!listed.has(command)) listed.set(command, path.slice(group.length + 1));
  }
  const rows = [...listed]
    .map(([command, name]) => [name, command.spec.description.split('\n')[0]!] as const)
    .sort(([a], [b]) => (a < b ? -1 : 1));
  const width = Math.max(11, ...rows.map(([name]) => name.length));
  const title = group === 'system' ? 'Manage berth' : `Manage ${group}s`;
  return (
    `Usage:  berth ${group} COMMAND\n\n${title}\n\nCommands:\n${rows.map(([name, text]) => `  ${name.padEnd(width)} ${text}`).join('\n')}\n\n` +
    `Run 'berth ${group} COMMAND --help' for more information on a command.\n`
  );
}

// A reader that goes away (`berth logs x | head`) ends the command quietly, as docker's 141.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(141);
  throw err;
});

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`berth: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
