/**
 * Docker-style command lines (cobra and pflag): `-aq`, `-f x`, `-fx`, `--format x`,
 * `--format=x`, `--all=false`, repeated list flags, `--` to end the flags, and flags after
 * arguments unless the command stops at its first argument (run, exec).
 */

export type FlagType = 'bool' | 'string' | 'list' | 'int';

export interface FlagSpec {
  name: string;
  short?: string;
  type: FlagType;
  description: string;
  /** Shown in help as `--name <placeholder>`. */
  placeholder?: string;
  default?: string | number | boolean;
}

export interface CommandSpec {
  /** 'images [OPTIONS] [REPOSITORY[:TAG]]' */
  usage: string;
  description: string;
  flags: FlagSpec[];
  args?: { min?: number; max?: number };
  /** false: flags end at the first argument (run, exec, create). */
  interspersed?: boolean;
  aliases?: string[];
}

/** A command line that does not fit its command: docker exits 125 with the usage hint. */
export class UsageError extends Error {
  readonly showUsage: boolean;
  constructor(message: string, showUsage = false) {
    super(message);
    this.showUsage = showUsage;
  }
}

export class ParsedArgs {
  readonly args: string[];
  readonly #values: Map<string, unknown>;
  readonly #set: Set<string>;

  constructor(args: string[], values: Map<string, unknown>, set: Set<string>) {
    this.args = args;
    this.#values = values;
    this.#set = set;
  }

  bool(name: string): boolean {
    return this.#values.get(name) === true;
  }

  string(name: string): string | undefined {
    const v = this.#values.get(name);
    return typeof v === 'string' ? v : undefined;
  }

  list(name: string): string[] {
    const v = this.#values.get(name);
    return Array.isArray(v) ? (v as string[]) : [];
  }

  int(name: string): number | undefined {
    const v = this.#values.get(name);
    return typeof v === 'number' ? v : undefined;
  }

  /** Whether the flag was given on the command line (not just defaulted). */
  has(name: string): boolean {
    return this.#set.has(name);
  }
}

export function parseArgs(spec: CommandSpec, argv: string[], command = spec.usage.split(' ')[0]!): ParsedArgs {
  const byName = new Map(spec.flags.map((f) => [f.name, f]));
  const byShort = new Map(spec.flags.filter((f) => f.short).map((f) => [f.short!, f]));
  const values = new Map<string, unknown>();
  const set = new Set<string>();
  for (const f of spec.flags) {
    if (f.type === 'list') values.set(f.name, []);
    else if (f.default !== undefined) values.set(f.name, f.default);
    else if (f.type === 'bool') values.set(f.name, false);
  }
  const args: string[] = [];
  const assign = (flag: FlagSpec, raw: string | undefined, shown: string) => {
    set.add(flag.name);
    switch (flag.type) {
      case 'bool': {
        if (raw === undefined || raw === 'true' || raw === '1') values.set(flag.name, true);
        else if (raw === 'false' || raw === '0') values.set(flag.name, false);
        else throw new UsageError(`invalid argument "${raw}" for "${shown}" flag: strconv.ParseBool: parsing "${raw}": invalid syntax`);
        break;
      }
      case 'int': {
        if (raw === undefined || !/^-?\d+$/.test(raw)) {
          throw new UsageError(`invalid argument "${raw ?? ''}" for "${shown}" flag: strconv.ParseInt: parsing "${raw ?? ''}": invalid syntax`);
        }
        values.set(flag.name, Number.parseInt(raw, 10));
        break;
      }
      case 'list':
        (values.get(flag.name) as string[]).push(raw ?? '');
        break;
      default:
        values.set(flag.name, raw ?? '');
    }
  };
  let i = 0;
  for (; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      args.push(...argv.slice(i + 1));
      break;
    }
    if (arg.startsWith('--')) {
      const eq = arg.indexOf('=');
      const name = eq > 0 ? arg.slice(2, eq) : arg.slice(2);
      const flag = byName.get(name);
      if (!flag) throw new UsageError(`unknown flag: --${name}`);
      let raw: string | undefined = eq > 0 ? arg.slice(eq + 1) : undefined;
      if (raw === undefined && flag.type !== 'bool') {
        if (i + 1 >= argv.length) throw new UsageError(`flag needs an argument: --${name}`);
        raw = argv[++i];
      }
      assign(flag, raw, `--${name}`);
      continue;
    }
    if (arg.startsWith('-') && arg !== '-') {
      // A cluster of short flags: -aq, -it, -fvalue, -f value, -p=8080 is not pflag's but tolerated.
      for (let j = 1; j < arg.length; j++) {
        const c = arg[j]!;
        const flag = byShort.get(c);
        if (!flag) throw new UsageError(`unknown shorthand flag: '${c}' in ${arg}`);
        if (flag.type === 'bool') {
          if (arg[j + 1] === '=') {
            assign(flag, arg.slice(j + 2), `-${c}, --${flag.name}`);
            break;
          }
          assign(flag, undefined, `-${c}, --${flag.name}`);
          continue;
        }
        let raw = arg.slice(j + 1);
        if (raw.startsWith('=')) raw = raw.slice(1);
        if (raw === '') {
          if (i + 1 >= argv.length) throw new UsageError(`flag needs an argument: '${c}' in -${c}`);
          raw = argv[++i]!;
        }
        assign(flag, raw, `-${c}, --${flag.name}`);
        break;
      }
      continue;
    }
    args.push(arg);
    if (spec.interspersed === false) {
      args.push(...argv.slice(i + 1));
      break;
    }
  }
  const { min, max } = spec.args ?? {};
  if (min !== undefined && args.length < min) throw new UsageError(argCountMessage(command, min, max), true);
  if (max !== undefined && args.length > max) throw new UsageError(argCountMessage(command, min, max), true);
  return new ParsedArgs(args, values, set);
}

function argCountMessage(command: string, min: number | undefined, max: number | undefined): string {
  const name = `"berth ${command}"`;
  const n = (k: number) => `${k} argument${k === 1 ? '' : 's'}`;
  if (min !== undefined && min === max) return `${name} requires exactly ${n(min)}.`;
  if (min !== undefined && min > 0 && max !== undefined) return `${name} requires at least ${min} and at most ${n(max)}.`;
  if (min !== undefined && min > 0) return `${name} requires at least ${n(min)}.`;
  return `${name} accepts at most ${n(max ?? 0)}.`;
}

/** The `--help` text, laid out as docker's. */
export function helpText(spec: CommandSpec): string {
  const lines = [`\nUsage:  berth ${spec.usage}\n`, spec.description, ''];
  if (spec.aliases?.length) lines.push('Aliases:', `  ${spec.aliases.join(', ')}`, '');
  if (spec.flags.length) {
    lines.push('Options:');
    const rows = spec.flags.map((f) => {
      const left = `${f.short ? `-${f.short}, ` : '    '}--${f.name}${f.type === 'bool' ? '' : ` ${f.placeholder ?? (f.type === 'int' ? 'int' : f.type === 'list' ? 'list' : 'string')}`}`;
      const def = f.default !== undefined && f.default !== false && f.default !== '' ? ` (default ${typeof f.default === 'string' ? `"${f.default}"` : f.default})` : '';
      return [left, `${f.description}${def}`] as const;
    });
    const width = Math.max(...rows.map(([l]) => l.length));
    for (const [l, r] of rows) lines.push(`  ${l.padEnd(width)}   ${r}`);
  }
  return `${lines.join('\n')}\n`;
}

/**
 * --filter values as docker's filters.Args JSON ({"status":{"running":true}}): names lower
 * case, names and values trimmed; a value without "=" is refused as pflag refuses it.
 */
export function filterArgs(values: string[], flagName: string, short?: string): Record<string, Record<string, boolean>> {
  const filters: Record<string, Record<string, boolean>> = {};
  for (const v of values) {
    if (v === '') continue;
    const eq = v.indexOf('=');
    if (eq < 0) {
      throw new UsageError(`invalid argument "${v}" for "${short ? `-${short}, ` : ''}--${flagName}" flag: bad format of filter (expected name=value)`);
    }
    const name = v.slice(0, eq).trim().toLowerCase();
    (filters[name] ??= {})[v.slice(eq + 1).trim()] = true;
  }
  return filters;
}
