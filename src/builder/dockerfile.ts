/**
 * The Dockerfile parser of docker's classic builder: a Dockerfile becomes a list of
 * instructions, each with its flags (`--from=…`) and its arguments in shell form (the text
 * as written) or exec form (a JSON array of strings).
 *
 *   - parser directives (`# escape=…`, `# syntax=…`) are read only at the top, before any
 *     instruction, comment or blank line;
 *   - a line ending in the escape character (white space after it allowed) continues on the
 *     next one; comment lines and empty lines inside a continuation are skipped, as docker
 *     skips them;
 *   - words are not expanded here: which instructions expand `$VAR` and with what
 *     environment is the build's business (see `expandWords`); a backtick escape directive
 *     changes line continuations only, words keep the backslash as their escape (docker's
 *     lexer would take the backtick there too, which matters on Windows only).
 */
import { InvalidArgument } from '../errors/errors.js';
import { processWord } from '../images/config-changes.js';

export interface Instruction {
  /** Upper case: FROM, RUN, COPY… */
  command: string;
  /** The instruction as written, continuations joined (docker's "Step n/m : …"). */
  original: string;
  /** `--name=value` flags before the arguments, as written. */
  flags: string[];
  /** The arguments after the flags, as written (shell form), trimmed. */
  rest: string;
  /** The exec form's words, when the arguments are a JSON array of strings. */
  json: string[] | undefined;
  /** 1-based line of the instruction's first line. */
  line: number;
}

export interface Dockerfile {
  /** The escape character: `\` unless a directive says `` ` ``. */
  escape: string;
  instructions: Instruction[];
}

const KNOWN = new Set([
  'ADD', 'ARG', 'CMD', 'COPY', 'ENTRYPOINT', 'ENV', 'EXPOSE', 'FROM', 'HEALTHCHECK', 'LABEL',
  'MAINTAINER', 'ONBUILD', 'RUN', 'SHELL', 'STOPSIGNAL', 'USER', 'VOLUME', 'WORKDIR',
]);

export function parseDockerfile(text: string): Dockerfile {
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  let escape = '\\';
  let at = 0;
  // Directives: `# key=value` lines at the very top, each key at most once.
  const seen = new Set<string>();
  for (; at < lines.length; at++) {
    const m = /^#\s*([A-Za-z][A-Za-z0-9]*)\s*=\s*(.*?)\s*$/.exec(lines[at]!);
    if (!m) break;
    const key = m[1]!.toLowerCase();
    if (key !== 'escape' && key !== 'syntax' && key !== 'check') break;
    if (seen.has(key)) throw new InvalidArgument(`only one ${key} parser directive can be used`);
    seen.add(key);
    if (key === 'escape') {
      if (m[2] !== '\\' && m[2] !== '`') throw new InvalidArgument(`invalid escape token '${m[2]}' does not match ` + '` or \\');
      escape = m[2]!;
    }
  }

  const instructions: Instruction[] = [];
  const continued = new RegExp(`${escape === '\\' ? '\\\\' : '`'}[ \\t]*$`);
  let pending: { text: string; line: number } | undefined;
  for (; at < lines.length; at++) {
    const raw = lines[at]!;
    const trimmed = raw.trim();
    if (pending === undefined) {
      if (trimmed === '' || trimmed.startsWith('#')) continue;
    } else if (trimmed === '' || trimmed.startsWith('#')) {
      continue;
    }
    const body = pending === undefined ? raw.trimStart() : raw;
    const cont = continued.exec(body);
    if (cont) {
      pending = { text: (pending?.text ?? '') + body.slice(0, cont.index), line: pending?.line ?? at + 1 };
      continue;
    }
    const whole = (pending?.text ?? '') + body;
    instructions.push(parseInstruction(whole, pending?.line ?? at + 1));
    pending = undefined;
  }
  if (pending !== undefined && pending.text.trim() !== '') instructions.push(parseInstruction(pending.text, pending.line));
  return { escape, instructions };
}

function parseInstruction(text: string, line: number): Instruction {
  const original = text.trim();
  const m = /^(\S+)\s*([\s\S]*)$/.exec(original)!;
  const command = m[1]!.toUpperCase();
  if (!KNOWN.has(command)) throw new InvalidArgument(`dockerfile parse error on line ${line}: unknown instruction: ${m[1]}`);
  let rest = m[2]!.trim();
  const flags: string[] = [];
  // Docker takes `--flag` words before the arguments of every instruction but RUN's exec
  // form; only those it knows an instruction has are accepted later.
  for (;;) {
    const f = /^--(\S*)\s*/.exec(rest);
    if (!f || f[1] === '') break;
    flags.push(`--${f[1]}`);
    rest = rest.slice(f[0].length);
  }
  return { command, original, flags, rest, json: jsonForm(rest), line };
}

/** The words of a JSON array of strings; undefined for anything else (the shell form). */
function jsonForm(text: string): string[] | undefined {
  if (!text.startsWith('[')) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (!Array.isArray(value) || !value.every((v) => typeof v === 'string')) return undefined;
  return value as string[];
}

/** The value of flag `--name` of `instruction`, or undefined; a flag it does not take is refused. */
export function flagValue(instruction: Instruction, name: string, allowed: readonly string[]): string | undefined {
  let value: string | undefined;
  for (const flag of instruction.flags) {
    const eq = flag.indexOf('=');
    const key = flag.slice(2, eq < 0 ? undefined : eq);
    if (!allowed.includes(key)) throw new InvalidArgument(`Unknown flag: ${key}`);
    if (key === name) value = eq < 0 ? '' : flag.slice(eq + 1);
  }
  return value;
}

/**
 * The words of an instruction whose arguments docker expands (FROM, COPY, ADD, ARG):
 * the JSON array's strings or the white-space separated words, each with quotes removed
 * and `$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR:+alt}` expanded from `env` (KEY=VALUE).
 */
export function expandWords(instruction: Instruction, env: readonly string[]): string[] {
  const words = instruction.json ?? splitShellWords(instruction.rest);
  // JSON words are taken literally except for variables, as docker's ProcessWords does.
  return words.map((w) => (instruction.json ? processWord(w.replace(/["'\\]/g, '\\$&'), env) : processWord(w, env)));
}

/** Splits on white space outside quotes, the quotes kept (processWord takes them out). */
export function splitShellWords(text: string): string[] {
  const words: string[] = [];
  let word = '';
  let quote: string | undefined;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quote) {
      word += c;
      if (c === quote) quote = undefined;
      else if (c === '\\' && quote === '"' && i + 1 < text.length) word += text[++i];
      continue;
    }
    if (/\s/.test(c)) {
      if (word !== '') words.push(word);
      word = '';
      continue;
    }
    word += c;
    if (c === '"' || c === "'") quote = c;
    else if (c === '\\' && i + 1 < text.length) word += text[++i];
  }
  if (word !== '') words.push(word);
  return words;
}

/** `ARG name[=default] …`: the names and their defaults (expanded from `env`), undefined when none. */
export function argDefinitions(instruction: Instruction, env: readonly string[]): Array<[string, string | undefined]> {
  const words = splitShellWords(instruction.rest);
  if (words.length === 0) throw new InvalidArgument('ARG requires at least one argument');
  return words.map((w) => {
    const eq = w.indexOf('=');
    const name = eq < 0 ? w : w.slice(0, eq);
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new InvalidArgument(`ARG names can not be blank or hold "${name}"`);
    return [name, eq < 0 ? undefined : processWord(w.slice(eq + 1), env)];
  });
}
