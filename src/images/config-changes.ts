/**
 * `--change` / `-c` for import and commit: Dockerfile instructions that change the run
 * config of an image without changing its filesystem.
 */
import { InvalidArgument } from '../errors/errors.js';
import type { RunConfig } from './oci-types.js';

const CHANGE_COMMANDS = new Set([
  'CMD', 'ENTRYPOINT', 'ENV', 'EXPOSE', 'HEALTHCHECK', 'LABEL', 'ONBUILD', 'STOPSIGNAL', 'USER', 'VOLUME', 'WORKDIR',
]);

/** Applies each change in order to a copy of `config`. */
export function applyConfigChanges(config: RunConfig, changes: readonly string[]): RunConfig {
  const out: RunConfig = structuredClone(config);
  for (const change of changes) {
    const trimmed = change.trim();
    if (trimmed === '') continue;
    const match = /^(\S+)\s*([\s\S]*)$/.exec(trimmed);
    if (!match) continue;
    const command = match[1]!.toUpperCase();
    const rest = match[2]!.trim();
    if (!CHANGE_COMMANDS.has(command)) {
      throw new InvalidArgument(`${command} is not a valid change command`);
    }
    applyOne(out, command, rest);
  }
  return out;
}

function applyOne(config: RunConfig, command: string, rest: string): void {
  switch (command) {
    case 'CMD':
      config.Cmd = commandForm(rest, command);
      break;
    case 'ENTRYPOINT':
      config.Entrypoint = commandForm(rest, command);
      // Docker: setting an ENTRYPOINT clears a CMD inherited from the base.
      break;
    case 'ENV':
      for (const [key, value] of keyValues(rest, command, true)) {
        const env = (config.Env ?? []).filter((e) => e.split('=')[0] !== key);
        env.push(`${key}=${value}`);
        config.Env = env;
      }
      break;
    case 'LABEL':
      config.Labels = { ...(config.Labels ?? {}) };
      for (const [key, value] of keyValues(rest, command, false)) config.Labels[key] = value;
      break;
    case 'EXPOSE':
      config.ExposedPorts = { ...(config.ExposedPorts ?? {}) };
      for (const word of splitWords(rest)) {
        for (const port of expandPort(word)) config.ExposedPorts[port] = {};
      }
      break;
    case 'VOLUME':
      config.Volumes = { ...(config.Volumes ?? {}) };
      for (const path of jsonArray(rest) ?? splitWords(rest)) {
        if (path.trim() === '') throw new InvalidArgument('VOLUME specified can not be an empty string');
        config.Volumes[path] = {};
      }
      break;
    case 'WORKDIR': {
      const dir = splitWords(rest).join(' ');
      if (dir === '') throw new InvalidArgument('WORKDIR requires exactly one argument');
      config.WorkingDir = dir.startsWith('/') ? dir : joinPosix(config.WorkingDir || '/', dir);
      break;
    }
    case 'USER':
    case 'STOPSIGNAL': {
      const words = splitWords(rest);
      if (words.length !== 1) throw new InvalidArgument(`${command} requires exactly one argument`);
      if (command === 'USER') config.User = words[0]!;
      else config.StopSignal = words[0]!;
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

/** `["a","b"]` is exec form; anything else is shell form, run by `/bin/sh -c`. */
function commandForm(rest: string, command: string): string[] {
  const array = jsonArray(rest);
  if (array) return array;
  if (rest === '') throw new InvalidArgument(`${command} requires at least one argument`);
  return ['/bin/sh', '-c', rest];
}

function jsonArray(text: string): string[] | undefined {
  if (!text.startsWith('[')) return undefined;
  try {
    const value: unknown = JSON.parse(text);
    if (Array.isArray(value) && value.every((v) => typeof v === 'string')) return value as string[];
  } catch {
    // Not JSON: Docker falls back to the shell form.
  }
  return undefined;
}

/** `k=v k2="v 2"`, or the legacy one-pair form `k v w` (ENV only). */
function keyValues(rest: string, command: string, legacyAllowed: boolean): Array<[string, string]> {
  const words = splitWords(rest);
  if (words.length === 0) throw new InvalidArgument(`${command} requires at least one argument`);
  if (!words[0]!.includes('=')) {
    if (!legacyAllowed || words.length < 2) {
      throw new InvalidArgument(`${command} names can not be blank and must be of the form key=value`);
    }
    const key = words[0]!;
    const value = rest.slice(rest.indexOf(key) + key.length).trim();
    return [[key, unquote(value)]];
  }
  return words.map((word) => {
    const eq = word.indexOf('=');
    if (eq <= 0) throw new InvalidArgument(`${command} names can not be blank and must be of the form key=value: "${word}"`);
    return [word.slice(0, eq), word.slice(eq + 1)];
  });
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

function unquote(value: string): string {
  const words = splitWords(value);
  return words.join(' ');
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
