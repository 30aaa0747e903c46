/**
 * `--change` / `-c` for import and commit: Dockerfile instructions that change the run
 * config of an image without changing its filesystem.
 */
import { InvalidArgument } from '../errors/errors.js';
import type { RunConfig } from './oci-types.js';

const CHANGE_COMMANDS = new Set([
  'CMD', 'ENTRYPOINT', 'ENV', 'EXPOSE', 'HEALTHCHECK', 'LABEL', 'ONBUILD', 'STOPSIGNAL', 'USER', 'VOLUME', 'WORKDIR',
]);

/**
 * Applies the changes in order to a copy of `config`, as docker's BuildFromConfig does: the
 * changes are the lines of one Dockerfile (a change may hold several lines), every
 * instruction is checked before any is applied, and words are expanded with the config's
 * environment where a Dockerfile would expand them.
 */
export function applyConfigChanges(config: RunConfig, changes: readonly string[]): RunConfig {
  const instructions = splitInstructions(changes);
  for (const { command } of instructions) {
    // Docker names the instruction as it was written: "run is not a valid change command".
    if (!CHANGE_COMMANDS.has(command.toUpperCase())) throw new InvalidArgument(`${command} is not a valid change command`);
  }
  const out: RunConfig = structuredClone(config);
  const state = { cmdSet: false };
  for (const { command, rest } of instructions) applyOne(out, command.toUpperCase(), rest, state);
  return out;
}

/** The instructions of the changes: one a line, `\` continues a line, `#` starts a comment line. */
function splitInstructions(changes: readonly string[]): Array<{ command: string; rest: string }> {
  const out: Array<{ command: string; rest: string }> = [];
  const push = (text: string) => {
    const match = /^(\S+)\s*([\s\S]*)$/.exec(text.trim());
    if (match) out.push({ command: match[1]!, rest: match[2]!.trim() });
  };
  let pending = '';
  for (const raw of changes.join('\n').split('\n')) {
    const line = pending === '' ? raw.trimStart() : raw;
    if (pending === '' && line.startsWith('#')) continue;
    const continued = /\\[ \t]*$/.exec(line);
    if (continued) {
      pending += line.slice(0, continued.index);
      continue;
    }
    push(pending + line);
    pending = '';
  }
  push(pending);
  return out;
}

function applyOne(config: RunConfig, command: string, rest: string, state: { cmdSet: boolean }): void {
  // Expansion sees the environment as it was before this instruction, as in a Dockerfile.
  const env = [...(config.Env ?? [])];
  const word = (text: string) => processWord(text, env);
  switch (command) {
    case 'CMD':
      config.Cmd = commandForm(rest, command, config);
      state.cmdSet = true;
      break;
    case 'ENTRYPOINT':
      config.Entrypoint = commandForm(rest, command, config);
      // Docker: an ENTRYPOINT drops the CMD it inherited, unless these changes set one.
      if (!state.cmdSet) config.Cmd = null;
      break;
    case 'ENV':
      for (const [key, value] of keyValues(rest, command, word)) {
        const entry = `${key}=${value}`;
        const env = config.Env ?? [];
        const at = env.findIndex((e) => e.split('=')[0] === key);
        if (at >= 0) env[at] = entry;
        else env.push(entry);
        config.Env = env;
      }
      break;
    case 'LABEL':
      config.Labels = { ...(config.Labels ?? {}) };
      for (const [key, value] of keyValues(rest, command, word)) config.Labels[key] = value;
      break;
    case 'EXPOSE':
      config.ExposedPorts = { ...(config.ExposedPorts ?? {}) };
      for (const raw of parseWords(rest)) {
        for (const port of expandPort(word(raw))) config.ExposedPorts[port] = {};
      }
      break;
    case 'VOLUME':
      config.Volumes = { ...(config.Volumes ?? {}) };
      for (const raw of jsonArray(rest) ?? parseWords(rest)) {
        const path = word(raw);
        if (path.trim() === '') throw new InvalidArgument('VOLUME specified can not be an empty string');
        config.Volumes[path] = {};
      }
      break;
    case 'WORKDIR': {
      const dir = word(rest);
      if (dir === '') throw new InvalidArgument('WORKDIR requires exactly one argument');
      config.WorkingDir = dir.startsWith('/') ? joinPosix('/', dir) : joinPosix(config.WorkingDir || '/', dir);
      break;
    }
    case 'USER':
    case 'STOPSIGNAL': {
      const words = parseWords(rest);
      if (words.length !== 1) throw new InvalidArgument(`${command} requires exactly one argument`);
      if (command === 'USER') config.User = word(words[0]!);
      else config.StopSignal = word(words[0]!);
      break;
    }
    case 'ONBUILD':
      if (rest === '') throw new InvalidArgument('ONBUILD requires at least one argument');
      config.OnBuild = [...(config.OnBuild ?? []), rest];
      break;
    case 'HEALTHCHECK':
      config.Healthcheck = healthcheck(rest);
      break;
  }
}

/** `["a","b"]` is exec form; anything else is shell form, run by the image's SHELL or `/bin/sh -c`. */
function commandForm(rest: string, command: string, config: RunConfig): string[] {
  const array = jsonArray(rest);
  if (array) return array;
  if (rest === '') throw new InvalidArgument(`${command} requires at least one argument`);
  return [...(config.Shell?.length ? config.Shell : ['/bin/sh', '-c']), rest];
}

/** A JSON array of strings, or undefined when the text is not JSON (then it is shell form). */
function jsonArray(text: string): string[] | undefined {
  if (!text.startsWith('[')) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    // Not JSON: Docker falls back to the shell form.
    return undefined;
  }
  if (!Array.isArray(value)) return undefined;
  if (!value.every((v) => typeof v === 'string')) {
    throw new InvalidArgument('when using JSON array syntax, arrays must be comprised of strings only');
  }
  return value as string[];
}

/**
 * ENV and LABEL: `k=v k2="v 2"`, or the legacy one-pair form `k v w` (the rest of the line is
 * the value). Keys and values are expanded and unquoted as docker does.
 */
function keyValues(rest: string, command: string, word: (text: string) => string): Array<[string, string]> {
  const words = parseWords(rest);
  if (words.length === 0) throw new InvalidArgument(`${command} requires at least one argument`);
  let pairs: Array<[string, string]>;
  if (!words[0]!.includes('=')) {
    const parts = rest.split(/\s+/);
    if (parts.length < 2) throw new InvalidArgument(`${command} must have two arguments`);
    pairs = [[parts[0]!, rest.slice(rest.search(/\s/)).trimStart()]];
  } else {
    pairs = words.map((w) => {
      const eq = w.indexOf('=');
      if (eq < 0) throw new InvalidArgument(`Syntax error - can't find = in "${w}". Must be of the form: name=value`);
      return [w.slice(0, eq), w.slice(eq + 1)];
    });
  }
  return pairs.map(([key, value]) => {
    const k = word(key);
    if (k === '') throw new InvalidArgument(`${command} names can not be blank`);
    return [k, word(value)];
  });
}

/**
 * Splits on white space outside quotes, keeping the quotes and escapes in the words (they
 * are taken out when each word is processed), as docker's parser does.
 */
function parseWords(text: string): string[] {
  const words: string[] = [];
  let word = '';
  let inWord = false;
  let quote: '"' | "'" | undefined;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quote) {
      word += c;
      if (c === quote) quote = undefined;
      else if (c === '\\' && quote === '"' && i + 1 < text.length) word += text[++i];
      continue;
    }
    if (/\s/.test(c)) {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
      continue;
    }
    inWord = true;
    word += c;
    if (c === '"' || c === "'") quote = c;
    else if (c === '\\' && i + 1 < text.length) word += text[++i];
  }
  if (inWord) words.push(word);
  return words;
}

/**
 * One word as docker's shell lexer processes it: quotes and escapes removed, `$VAR`,
 * `${VAR}`, `${VAR:-default}`, `${VAR:+alternative}` (and the forms without `:`) expanded
 * from `env` (nothing in single quotes). White space is kept.
 */
export function processWord(text: string, env: readonly string[]): string {
  const lookup = (name: string): string | undefined => {
    for (let i = env.length - 1; i >= 0; i--) {
      const e = env[i]!;
      const eq = e.indexOf('=');
      if ((eq < 0 ? e : e.slice(0, eq)) === name) return eq < 0 ? '' : e.slice(eq + 1);
    }
    return undefined;
  };
  let out = '';
  let i = 0;
  const dollar = (): string => {
    // text[i] is '$'
    const next = text[i + 1];
    if (next === '{') {
      const close = text.indexOf('}', i + 2);
      if (close < 0) throw new InvalidArgument(`missing '}' in "${text}"`);
      const inner = text.slice(i + 2, close);
      i = close + 1;
      const m = /^([A-Za-z_][A-Za-z0-9_]*)(?:(:?)([-+])([\s\S]*))?$/.exec(inner);
      if (!m) throw new InvalidArgument(`failed to process "${text}": unsupported modifier in "\${${inner}}"`);
      const value = lookup(m[1]!);
      if (m[3] === undefined) return value ?? '';
      const set = m[2] === ':' ? value !== undefined && value !== '' : value !== undefined;
      const alt = processWord(m[4]!, env);
      if (m[3] === '-') return set ? value! : alt;
      return set ? alt : '';
    }
    const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(text.slice(i + 1));
    if (!m) {
      i++;
      return '$';
    }
    i += 1 + m[0].length;
    return lookup(m[0]) ?? '';
  };
  while (i < text.length) {
    const c = text[i]!;
    if (c === "'") {
      const close = text.indexOf("'", i + 1);
      if (close < 0) throw new InvalidArgument(`unexpected end of statement while looking for matching single-quote in "${text}"`);
      out += text.slice(i + 1, close);
      i = close + 1;
    } else if (c === '"') {
      i++;
      for (;;) {
        if (i >= text.length) throw new InvalidArgument(`unexpected end of statement while looking for matching double-quote in "${text}"`);
        const d = text[i]!;
        if (d === '"') {
          i++;
          break;
        }
        if (d === '$') out += dollar();
        else if (d === '\\' && ['"', '$', '\\'].includes(text[i + 1] ?? '')) {
          out += text[i + 1];
          i += 2;
        } else {
          out += d;
          i++;
        }
      }
    } else if (c === '\\') {
      if (i + 1 < text.length) out += text[i + 1];
      i += 2;
    } else if (c === '$') {
      out += dollar();
    } else {
      out += c;
      i++;
    }
  }
  return out;
}

/** Splits on white space, honouring "double" and 'single' quotes and backslash escapes. */
export function splitWords(text: string): string[] {
  const words: string[] = [];
  let word = '';
  let inWord = false;
  let quote: '"' | "'" | undefined;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quote) {
      if (c === quote) quote = undefined;
      else if (c === '\\' && quote === '"' && i + 1 < text.length) word += text[++i];
      else word += c;
      continue;
    }
    if (c === '"' || c === "'") {
      quote = c;
      inWord = true;
    } else if (c === '\\' && i + 1 < text.length) {
      word += text[++i];
      inWord = true;
    } else if (/\s/.test(c)) {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
    } else {
      word += c;
      inWord = true;
    }
  }
  if (quote) throw new InvalidArgument(`unmatched quote ${quote} in "${text}"`);
  if (inWord) words.push(word);
  return words;
}

function expandPort(word: string): string[] {
  const match = /^(\d+)(?:-(\d+))?(?:\/(tcp|udp|sctp))?$/i.exec(word);
  if (!match) throw new InvalidArgument(`invalid containerPort: ${word}`);
  const first = Number(match[1]);
  const last = match[2] ? Number(match[2]) : first;
  const proto = (match[3] ?? 'tcp').toLowerCase();
  if (first < 1 || last > 65535 || last < first) throw new InvalidArgument(`invalid range of ports: ${word}`);
  const out: string[] = [];
  for (let p = first; p <= last; p++) out.push(`${p}/${proto}`);
  return out;
}

function healthcheck(rest: string): NonNullable<RunConfig['Healthcheck']> {
  const words = splitWords(rest);
  if (words.length === 1 && words[0]!.toUpperCase() === 'NONE') return { Test: ['NONE'] };
  const check: NonNullable<RunConfig['Healthcheck']> = {};
  let i = 0;
  for (; i < words.length && words[i]!.startsWith('--'); i++) {
    const [flag, value = ''] = words[i]!.slice(2).split('=', 2) as [string, string?];
    switch (flag) {
      case 'interval': check.Interval = parseDuration(value, flag); break;
      case 'timeout': check.Timeout = parseDuration(value, flag); break;
      case 'start-period': check.StartPeriod = parseDuration(value, flag); break;
      case 'retries': check.Retries = Number.parseInt(value, 10); break;
      default: throw new InvalidArgument(`unknown flag: --${flag}`);
    }
  }
  if (words[i]?.toUpperCase() !== 'CMD') throw new InvalidArgument('HEALTHCHECK requires NONE or CMD');
  const cmdText = rest.slice(rest.toUpperCase().indexOf('CMD') + 3).trim();
  const array = jsonArray(cmdText);
  check.Test = array ? ['CMD', ...array] : ['CMD-SHELL', cmdText];
  return check;
}

/** Go durations as Docker takes them: `30s`, `1m30s`, `500ms`. Returns nanoseconds. */
export function parseDuration(text: string, what = 'duration'): number {
  const units: Record<string, number> = { ns: 1, us: 1e3, µs: 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };
  const re = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/gy;
  let total = 0;
  let consumed = 0;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    total += Number(m[1]) * units[m[2]!]!;
    consumed = re.lastIndex;
  }
  if (text === '' || consumed !== text.length) throw new InvalidArgument(`invalid ${what} "${text}"`);
  return Math.round(total);
}

function joinPosix(base: string, rel: string): string {
  const parts = `${base}/${rel}`.split('/');
  const out: string[] = [];
  for (const p of parts) {
    if (p === '' || p === '.') continue;
    if (p === '..') out.pop();
    else out.push(p);
  }
  return `/${out.join('/')}`;
}
