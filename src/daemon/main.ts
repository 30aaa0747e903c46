/**
 * `berthd`: the daemon's entry point. Parses flags, starts the daemon in the foreground,
 * stops it cleanly on SIGTERM or SIGINT.
 */
import { join } from 'node:path';
import { BerthError } from '../errors/errors.js';
import { normalizeMirror, validateInsecureRegistry } from '../registry/registry-config.js';
import { Daemon } from './daemon.js';
import { createLogger, isLogLevel, type LogLevel } from './logger.js';
import { BERTH_VERSION } from './version.js';

const USAGE = `Usage:	berthd [OPTIONS]

A container engine that serves the Docker Engine API.

Options:
      --data-root string      Root directory of persistent state (default "/var/lib/berth")
      --exec-root string      Root directory for execution state files (default "/run/berth")
  -H, --host string           Daemon socket to listen on (default "unix:///run/berth/berth.sock")
  -p, --pidfile string        Path to use for daemon PID file (default "<exec-root>/berthd.pid")
      --insecure-registry list  Enable insecure registry communication (host[:port] or CIDR; repeatable)
      --registry-mirror list    Preferred registry mirror, for any registry (repeatable)
  -b, --bridge string         The default bridge network's device on the host (default "berth0")
  -l, --log-level string      Set the logging level ("debug"|"info"|"warn"|"error") (default "info")
  -v, --version               Print version information and quit
`;

interface Flags {
  dataRoot: string;
  execRoot: string;
  host: string | undefined;
  pidFile: string | undefined;
  logLevel: LogLevel;
  insecureRegistries: string[];
  registryMirrors: string[];
  bridge: string | undefined;
}

function parseFlags(argv: string[]): Flags {
  const flags: Flags = { dataRoot: '/var/lib/berth', execRoot: '/run/berth', host: undefined, pidFile: undefined, logLevel: 'info', insecureRegistries: [], registryMirrors: [], bridge: undefined };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const eq = arg.indexOf('=');
    const name = arg.startsWith('--') && eq > 0 ? arg.slice(0, eq) : arg;
    const value = (): string => {
      if (arg.startsWith('--') && eq > 0) return arg.slice(eq + 1);
      const v = argv[++i];
      if (v === undefined) fail(`flag needs an argument: ${name}`);
      return v;
    };
    switch (name) {
      case '--data-root': case '-g': flags.dataRoot = value(); break;
      case '--exec-root': flags.execRoot = value(); break;
      case '-H': case '--host': flags.host = value(); break;
      case '-p': case '--pidfile': flags.pidFile = value(); break;
      case '--insecure-registry': flags.insecureRegistries.push(checked(validateInsecureRegistry, value())); break;
      case '--registry-mirror': flags.registryMirrors.push(checked(normalizeMirror, value())); break;
      case '-b': case '--bridge': {
        const bridge = value();
        if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,14}$/.test(bridge)) fail(`invalid bridge name ${JSON.stringify(bridge)}: at most 15 of [a-zA-Z0-9_.-]`);
        flags.bridge = bridge;
        break;
      }
      case '-l': case '--log-level': {
        const level = value();
        if (!isLogLevel(level)) fail(`unable to parse logging level: ${level}`);
        flags.logLevel = level;
        break;
      }
      case '-v': case '--version':
        process.stdout.write(`berthd version ${BERTH_VERSION}\n`);
        process.exit(0);
      case '-h': case '--help':
        process.stdout.write(USAGE);
        process.exit(0);
      default:
        fail(`unknown flag: ${arg}\nSee 'berthd --help'.`);
    }
  }
  return flags;
}

/** A flag's value through its check; a bad one ends berthd with the check's message. */
function checked(check: (v: string) => string, v: string): string {
  try {
    return check(v);
  } catch (err) {
    fail(err instanceof Error ? err.message : String(err));
  }
}

function fail(message: string): never {
  process.stderr.write(`berthd: ${message}\n`);
  process.exit(1);
}

function socketPathOf(host: string): string {
  if (host.startsWith('unix://')) return host.slice('unix://'.length);
  if (host.startsWith('/')) return host;
  fail(`unsupported host "${host}": berthd listens on a unix socket (unix:///path)`);
}

async function main(): Promise<void> {
  const flags = parseFlags(process.argv.slice(2));
  const log = createLogger(flags.logLevel);
  const socketPath = socketPathOf(flags.host ?? `unix://${join(flags.execRoot, 'berth.sock')}`);
  let daemon: Daemon;
  try {
    daemon = await Daemon.start(
      { dataRoot: flags.dataRoot, execRoot: flags.execRoot, socketPath, pidFile: flags.pidFile ?? join(flags.execRoot, 'berthd.pid'),
        insecureRegistries: flags.insecureRegistries, registryMirrors: flags.registryMirrors,
        ...(flags.bridge ? { bridgeName: flags.bridge } : {}) },
      log,
    );
  } catch (err) {
    log.error('failed to start daemon', { error: err instanceof Error ? err.message : String(err) });
    if (!(err instanceof BerthError) && err instanceof Error) process.stderr.write(`${err.stack}\n`);
    process.exit(1);
  }
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info('shutting down', { signal });
    daemon.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        log.error('shutdown failed', { error: String(err) });
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGPIPE', () => undefined);
}

void main();
