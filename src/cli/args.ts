/**
 * Docker-style command lines (cobra and pflag): `-aq`, `-f x`, `-fx`, `--format x`,
 * `--format=x`, `--all=false`, repeated list flags, `--` to end the flags, and flags after
 * arguments unless the command stops at its first argument (run, exec).
 */
import { quote } from '../util/go-fmt.js';

export type FlagType = 'bool' | 'string' | 'list' | 'int';

export interface FlagSpec {
  name: string;
  short?: string;
  type: FlagType;
  description: string;
  /** Shown in help as `--name <placeholder>`. */
  placeholder?: string;
  /** Shown in help as "(default ...)"; a list flag starts empty whatever it shows. */
  default?: string | number | boolean;
  /**
   * A list flag's pflag Value.Set: checks one value and gives what it adds to the list (a
   * StringSlice adds each comma-separated field); throws with the reason it refuses it.
   */
  set?: (value: string) => string[];
  /** Left out of the help, as pflag's hidden flags (volume create's --name). */
  hidden?: boolean;
}

export interface CommandSpec {
  /** 'images [OPTIONS] [REPOSITORY[:TAG]]' */
  usage: string;
  /** One line: what a group's help lists the command with (cobra's Short). */
  description: string;
  /** The help's text where it says more than the description (cobra's Long). */
  long?: string;
  flags: FlagSpec[];
  args?: { min?: number; max?: number };
  /** false: flags end at the first argument (run, exec, create). */
  interspersed?: boolean;
  aliases?: string[];
}

/**
 * A command line that does not fit its command. A flag that does not parse exits 125, the
 * wrong number of arguments 1; both are printed with the usage and a hint to --help.
 */
export class UsageError extends Error {
  /**
   * Set for the wrong number of arguments: the hint's first word, as docker 28 words it after
   * each check: "See" after too few, "SRun" (sic) after too many, "Run" otherwise.
   */
  readonly argumentsHint: 'Run' | 'See' | 'SRun' | undefined;
  constructor(message: string, argumentsHint?: 'Run' | 'See' | 'SRun') {
    super(message);
    this.argumentsHint = argumentsHint;
  }

  get exitStatus(): number {
    return this.argumentsHint ? 1 : 125;
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
      case 'list': {
        let added = [raw ?? ''];
        if (flag.set) {
          try {
            added = flag.set(raw ?? '');
          } catch (err) {
            throw new UsageError(`invalid argument ${quote(raw ?? '')} for "${shown}" flag: ${(err as Error).message}`);
          }
        }
        (values.get(flag.name) as string[]).push(...added);
        break;
      }
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
      // pflag names a flag with its shorthand in errors, however it was given.
      assign(flag, raw, `${flag.short ? `-${flag.short}, ` : ''}--${name}`);
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
  checkArgCount(spec, args.length, command);
  return new ParsedArgs(args, values, set);
}

/**
 * docker's argument checks (cli/required.go), each with its own words: NoArgs, ExactArgs,
 * RequiresMinArgs, RequiresMaxArgs and RequiresRangeArgs.
 */
function checkArgCount(spec: CommandSpec, count: number, command: string): void {
  const { min, max } = spec.args ?? {};
  if ((min === undefined || count >= min) && (max === undefined || count <= max)) return;
  const name = `berth: 'berth ${command}'`;
  const n = (k: number) => `${k} argument${k === 1 ? '' : 's'}`;
  if (max === 0) throw new UsageError(`${name} accepts no arguments`, 'Run');
  if (min !== undefined && min === max) throw new UsageError(`${name} requires ${n(min)}`, 'Run');
  if (min !== undefined && min > 0 && max !== undefined) throw new UsageError(`${name} requires at least ${min} and at most ${n(max)}`, 'Run');
  if (min !== undefined && min > 0) throw new UsageError(`${name} requires at least ${n(min)}`, 'See');
  throw new UsageError(`${name} requires at most ${n(max ?? 0)}`, 'SRun');
}

/**
 * The `--help` text, laid out as docker's: usage, description, aliases, and the flags as
 * pflag's FlagUsagesWrapped prints them for a terminal `columns` wide (docker asks the
 * terminal on stdin, 80 when there is none).
 */
export function helpText(spec: CommandSpec, columns = 80): string {
  const sections = [`Usage:  berth ${spec.usage}`, spec.long ?? spec.description];
  if (spec.aliases?.length) sections.push(`Aliases:\n  ${spec.aliases.join(', ')}`);
  const flags = spec.flags.filter((f) => !f.hidden);
  if (flags.length) sections.push(`Options:\n${flagUsages(flags, columns - 1)}`);
  return `${sections.join('\n\n')}\n`;
}

/** pflag's FlagUsagesWrapped: names, then usage and default aligned and wrapped to `cols`. */
function flagUsages(flags: FlagSpec[], cols: number): string {
  const rows = flags.map((f) => {
    let name = f.short ? `  -${f.short}, --${f.name}` : `      --${f.name}`;
    if (f.type !== 'bool') name += ` ${f.placeholder ?? (f.type === 'int' ? 'int' : f.type === 'list' ? 'list' : 'string')}`;
    // pflag shows a default that is not its type's zero value, quoted for a string flag.
    const zero = f.default === undefined || f.default === false || f.default === '' || f.default === 0;
    const usage = zero ? f.description : `${f.description} (default ${f.type === 'string' ? `"${f.default}"` : f.default})`;
    return { name, usage };
  });
  const width = Math.max(...rows.map((r) => r.name.length)) + 1;
  return rows.map((r) => `${r.name} ${' '.repeat(width - r.name.length)} ${wrap(width + 2, cols, r.usage)}`).join('\n').trimEnd();
}

/**
 * pflag's wrap: `s` in lines of at most `w` columns, all but the first indented by `i`; a
 * last word may run 5 columns over rather than be left alone on a line.
 */
function wrap(i: number, w: number, s: string): string {
  let out = '';
  let room = w - i;
  if (room < 24) {
    // Too narrow beside the names: the text goes below them, as a block.
    i = 16;
    room = w - i;
    out = `\n${' '.repeat(i)}`;
  }
  if (room < 24) return s.replaceAll('\n', out);
  const slop = 5;
  room -= slop;
  const indent = (t: string) => t.replaceAll('\n', `\n${' '.repeat(i)}`);
  let [line, rest] = wrapN(room, slop, s);
  out += indent(line);
  while (rest !== '') {
    [line, rest] = wrapN(room, slop, rest);
    out += `\n${' '.repeat(i)}${indent(line)}`;
  }
  return out;
}

/** pflag's wrapN: the first line of `s`, up to `i` long (or `i + slop` for the whole of it), and the rest. */
function wrapN(i: number, slop: number, s: string): [string, string] {
  if (i + slop > s.length) return [s, ''];
  const head = s.slice(0, i);
  const space = Math.max(head.lastIndexOf(' '), head.lastIndexOf('\t'), head.lastIndexOf('\n'));
  if (space <= 0) return [s, ''];
  const newline = head.lastIndexOf('\n');
  if (newline > 0 && newline < space) return [s.slice(0, newline), s.slice(newline + 1)];
  return [s.slice(0, space), s.slice(space + 1)];
}

/** The type, placeholder and default of a flag that is docker's MapOpts (KEY=VALUE values; see kvMap). */
export const MAP_FLAG = { type: 'list', placeholder: 'map', default: 'map[]' } as const;

/** docker's help for a listing's --format (its flagsHelper.FormatHelp). */
export const FORMAT_HELP = `Format output using a custom template:
'table':            Print output in table format with column headers (default)
'table TEMPLATE':   Print output in table format using the given Go template
'json':             Print in JSON format
'TEMPLATE':         Print output using the given Go template.
Refer to https://docs.docker.com/go/formatting/ for more information about formatting output with templates`;

/** docker's help for an inspect's --format (its flagsHelper.InspectFormatHelp). */
export const INSPECT_FORMAT_HELP = `Format output using a custom template:
'json':             Print in JSON format
'TEMPLATE':         Print output using the given Go template.
Refer to https://docs.docker.com/go/formatting/ for more information about formatting output with templates`;

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
