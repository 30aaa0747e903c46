/** Registry commands: pull, push, login, logout, and save. Credentials live in docker's config.json. */
import { mkdir, readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { parseArgs } from '../args.js';
import { writeArchive } from '../archive-output.js';
import type { CliContext, Command } from '../command.js';
import { ExitError } from '../command.js';

const HUB_SERVER = 'https://index.docker.io/v1/';

interface DockerConfigFile {
  auths?: Record<string, { auth?: string; identitytoken?: string }>;
  [key: string]: unknown;
}

function configPath(): string {
  return join(process.env['DOCKER_CONFIG'] ?? join(homedir(), '.docker'), 'config.json');
}

async function readConfig(): Promise<DockerConfigFile> {
  try {
    const parsed = JSON.parse(await readFile(configPath(), 'utf8')) as unknown;
    return typeof parsed === 'object' && parsed !== null ? (parsed as DockerConfigFile) : {};
  } catch {
    return {};
  }
}

async function writeConfig(config: DockerConfigFile): Promise<void> {
  const path = configPath();
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const { writeFileAtomic } = await import('../../util/atomic-file.js');
  await writeFileAtomic(path, `${JSON.stringify(config, null, '\t')}\n`, 0o600);
}

/** The registry a reference names, as config.json keys it ('https://index.docker.io/v1/' for the Hub). */
function serverOf(name: string): string {
  const first = name.split('/')[0]!;
  const isDomain = name.includes('/') && (first === 'localhost' || first.includes('.') || first.includes(':'));
  if (!isDomain || first === 'docker.io' || first === 'index.docker.io') return HUB_SERVER;
  return first;
}

/** Normalises what the user typed after login/logout to the key docker uses. */
function normalizeServer(server: string | undefined): string {
  if (!server) return HUB_SERVER;
  const host = server.replace(/^https?:\/\//, '').replace(/\/.*$/, '');
  if (host === 'docker.io' || host === 'index.docker.io' || host === 'registry-1.docker.io') return HUB_SERVER;
  return host;
}

/** X-Registry-Auth for `server`: base64url JSON of the stored credentials, or of {} when none. */
async function registryAuthHeader(server: string): Promise<string> {
  const entry = (await readConfig()).auths?.[server];
  const auth: Record<string, string> = { serveraddress: server };
  if (entry?.auth) {
    const plain = Buffer.from(entry.auth, 'base64').toString('utf8');
    const colon = plain.indexOf(':');
    if (colon > 0) {
      auth['username'] = plain.slice(0, colon);
      auth['password'] = plain.slice(colon + 1);
    }
  }
  if (entry?.identitytoken) auth['identitytoken'] = entry.identitytoken;
  return Buffer.from(JSON.stringify(auth)).toString('base64url');
}

/** 'name', 'name:tag', 'name@sha256:…' -> the name and what follows it. */
function splitReference(input: string): { name: string; tag?: string; digest?: string } {
  const at = input.indexOf('@');
  const beforeDigest = at >= 0 ? input.slice(0, at) : input;
  const digest = at >= 0 ? input.slice(at + 1) : undefined;
  const colon = beforeDigest.lastIndexOf(':');
  const hasTag = colon > beforeDigest.lastIndexOf('/');
  const name = hasTag ? beforeDigest.slice(0, colon) : beforeDigest;
  const out: { name: string; tag?: string; digest?: string } = { name };
  if (hasTag) out.tag = beforeDigest.slice(colon + 1);
  if (digest) out.digest = digest;
  return out;
}

async function printProgress(messages: AsyncIterable<Record<string, unknown>>, ctx: CliContext, quiet: boolean): Promise<void> {
  const progress = await import('../progress.js');
  if (quiet) {
    // Only errors matter; printJsonMessages throws on them.
    const sink: CliContext = { client: ctx.client, out: () => undefined, err: ctx.err };
    await progress.printJsonMessages(messages, sink);
    return;
  }
  await progress.printJsonMessages(messages, ctx);
}

/** 'busybox' -> 'docker.io/library/busybox', as docker prints the pulled reference. */
function qualified(name: string): string {
  if (serverOf(name) !== HUB_SERVER) return name;
  const path = name.replace(/^(docker\.io|index\.docker\.io)\//, '');
  return `docker.io/${path.includes('/') ? path : `library/${path}`}`;
}

export const pullCommand: Command = {
  spec: {
    usage: 'pull [OPTIONS] NAME[:TAG|@DIGEST]',
    description: 'Download an image from a registry',
    aliases: ['berth image pull', 'berth pull'],
    args: { min: 1, max: 1 },
    flags: [
      { name: 'all-tags', short: 'a', type: 'bool', description: 'Download all tagged images in the repository' },
      { name: 'disable-content-trust', type: 'bool', description: 'Skip image verification (default true)' },
      { name: 'platform', type: 'string', description: 'Set platform if server is multi-platform capable' },
      { name: 'quiet', short: 'q', type: 'bool', description: 'Suppress verbose output' },
    ],
  },
  async run(ctx, argv, path) {
    const a = parseArgs(this.spec, argv, path);
    const input = a.args[0]!;
    const { name, tag, digest } = splitReference(input);
    const all = a.bool('all-tags');
    if (all && (tag || digest)) throw new ExitError('tag can\'t be used with --all-tags/-a', 1);
    const ref = all ? undefined : (digest ?? tag ?? 'latest');
    const messages = ctx.client.jsonLines('POST', '/images/create', {
      query: { fromImage: name, tag: ref, platform: a.string('platform') },
      headers: { 'X-Registry-Auth': await registryAuthHeader(serverOf(name)) },
    });
    await printProgress(messages, ctx, a.bool('quiet'));
    ctx.out(`${qualified(name)}${all ? '' : digest ? `@${digest}` : `:${ref}`}\n`);
    return 0;
  },
};

export const pushCommand: Command = {
  spec: {
    usage: 'push [OPTIONS] NAME[:TAG]',
    description: 'Upload an image to a registry',
    aliases: ['berth image push', 'berth push'],
    args: { min: 1, max: 1 },
    flags: [
      { name: 'all-tags', short: 'a', type: 'bool', description: 'Push all tags of an image to the repository' },
      { name: 'disable-content-trust', type: 'bool', description: 'Skip image signing (default true)' },
      { name: 'quiet', short: 'q', type: 'bool', description: 'Suppress verbose output' },
    ],
  },
  async run(ctx, argv, path) {
    const a = parseArgs(this.spec, argv, path);
    const { name, tag, digest } = splitReference(a.args[0]!);
    if (digest) throw new ExitError('cannot push a digest reference', 1);
    if (a.bool('all-tags') && tag) throw new ExitError('tag can\'t be used with --all-tags/-a', 1);
    const messages = ctx.client.jsonLines('POST', `/images/${name}/push`, {
      query: { tag: a.bool('all-tags') ? undefined : (tag ?? 'latest') },
      headers: { 'X-Registry-Auth': await registryAuthHeader(serverOf(name)) },
    });
    await printProgress(messages, ctx, a.bool('quiet'));
    if (a.bool('quiet')) ctx.out(`${a.args[0]}\n`);
    return 0;
  },
};

export const loginCommand: Command = {
  spec: {
    usage: 'login [OPTIONS] [SERVER]',
    description: 'Authenticate to a registry.\nDefaults to Docker Hub if no server is specified.',
    args: { max: 1 },
    flags: [
      { name: 'password', short: 'p', type: 'string', description: 'Password or Personal Access Token (PAT)' },
      { name: 'password-stdin', type: 'bool', description: 'Take the Password or Personal Access Token (PAT) from stdin' },
      { name: 'username', short: 'u', type: 'string', description: 'Username' },
    ],
  },
  async run(ctx, argv, path) {
    const a = parseArgs(this.spec, argv, path);
    const server = normalizeServer(a.args[0]);
    const username = a.string('username');
    let password = a.string('password');
    if (a.bool('password-stdin')) {
      if (password !== undefined) throw new ExitError('--password and --password-stdin are mutually exclusive', 1);
      if (!username) throw new ExitError('Must provide --username with --password-stdin', 1);
      const chunks: Buffer[] = [];
      for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
      password = Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
    } else if (password !== undefined) {
      ctx.err('WARNING! Using --password via the CLI is insecure. Use --password-stdin.\n');
    }
    if (!username || password === undefined) throw new ExitError('Error: Cannot perform an interactive login from a non TTY device', 1);
    const answer = await ctx.client.json<{ Status?: string; IdentityToken?: string }>('POST', '/auth', {
      body: { username, password, serveraddress: server },
    });
    const config = await readConfig();
    config.auths ??= {};
    config.auths[server] = answer?.IdentityToken
      ? { auth: Buffer.from(`${username}:`).toString('base64'), identitytoken: answer.IdentityToken }
      : { auth: Buffer.from(`${username}:${password}`).toString('base64') };
    await writeConfig(config);
    ctx.err(`WARNING! Your credentials are stored unencrypted in '${configPath()}'.\nConfigure a credential helper to remove this warning. See\nhttps://docs.docker.com/go/credential-store/\n\n`);
    ctx.out(`${answer?.Status ?? 'Login Succeeded'}\n`);
    return 0;
  },
};

export const logoutCommand: Command = {
  spec: {
    usage: 'logout [SERVER]',
    description: 'Log out from a registry.\nIf no server is specified, the default is defined by the daemon.',
    args: { max: 1 },
    flags: [],
  },
  async run(ctx, argv, path) {
    const a = parseArgs(this.spec, argv, path);
    const server = normalizeServer(a.args[0]);
    const config = await readConfig();
    if (!config.auths?.[server]) {
      ctx.out(`Not logged in to ${server}\n`);
      return 0;
    }
    ctx.out(`Removing login credentials for ${server}\n`);
    delete config.auths[server];
    await writeConfig(config);
    return 0;
  },
};

export const saveCommand: Command = {
  spec: {
    usage: 'save [OPTIONS] IMAGE [IMAGE...]',
    description: 'Save one or more images to a tar archive (streamed to STDOUT by default)',
    aliases: ['berth image save', 'berth save'],
    args: { min: 1 },
    flags: [{ name: 'output', short: 'o', type: 'string', description: 'Write to a file, instead of STDOUT' }],
  },
  async run(ctx, argv, path) {
    const a = parseArgs(this.spec, argv, path);
    await writeArchive(a.string('output') ?? '', 'failed to save image', async () => (await ctx.client.call('GET', '/images/get', { query: { names: a.args } })).body);
    return 0;
  },
};
