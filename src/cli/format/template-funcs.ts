/**
 * Template functions: Go's builtins (and, or, not, len, index, slice, print, printf,
 * println, eq, ne, lt, le, gt, ge, html, js, urlquery, call), docker's own (json, split,
 * join, title, lower, upper, pad, truncate) and docker's header stand-ins, which leave a
 * table's header names as they are.
 *
 * Each function declares its Go parameter types, so arguments are checked as Go checks
 * them ("wrong number of args for join: want 2 got 1", "expected integer; found \"x\"").
 */
import { formatValue, sprint, sprintf, sprintln } from '../../util/go-fmt.js';
import { marshalJson } from './go-json.js';
import {
  goKind,
  goTypeName,
  isTrue,
  mapGet,
  mapSize,
  mapZeroValue,
  sliceElements,
  sortedEntries,
  utf8Length,
} from '../../util/go-value.js';

/**
 * Go parameter types. `value` is reflect.Value (a missing value passes as undefined),
 * `any` is interface{} (a missing value passes as null).
 */
export type ParamType = 'value' | 'any' | 'string' | 'int' | 'bool';

export interface FuncSpec {
  params: ParamType[];
  /** The type of the trailing variadic arguments, if any. */
  variadic?: ParamType;
  /** At least this many arguments (JavaScript functions: their declared length). */
  minArgs?: number;
  /** and/or evaluate their arguments lazily. */
  special?: 'and' | 'or';
  call(args: unknown[]): unknown;
}

/** A function given by the caller: any JavaScript function; its arguments arrive as Go values. */
export type TemplateFunc = (...args: never[]) => unknown;

export function userFunc(fn: TemplateFunc): FuncSpec {
  const call = fn as unknown as (...args: unknown[]) => unknown;
  return { params: [], variadic: 'any', minArgs: fn.length, call: (args) => call(...args) };
}

export function paramTypeName(t: ParamType): string {
  switch (t) {
    case 'value':
      return 'reflect.Value';
    case 'any':
      return 'interface {}';
    default:
      return t;
  }
}

// --- comparisons --------------------------------------------------------------------------

type BasicKind = 'bool' | 'number' | 'string' | 'invalid' | 'other';

function basicKind(v: unknown): BasicKind {
  switch (goKind(v)) {
    case 'bool':
      return 'bool';
    case 'int':
    case 'float':
      return 'number';
    case 'string':
      return 'string';
    case 'invalid':
    case 'nil':
      return 'invalid';
    default:
      return 'other';
  }
}

function isNilish(v: unknown): boolean {
  return v === undefined || v === null;
}

function num(v: unknown): number {
  return typeof v === 'bigint' ? Number(v) : (v as number);
}

function eq(arg1: unknown, rest: unknown[]): boolean {
  if (rest.length === 0) throw new Error('missing argument for comparison');
  const k1 = basicKind(arg1);
  for (const arg of rest) {
    const k2 = basicKind(arg);
    let truth = false;
    if (k1 !== k2) {
      if (!isNilish(arg1) && !isNilish(arg)) {
        throw new Error(`incompatible types for comparison: ${goTypeName(arg1)} and ${goTypeName(arg)}`);
      }
    } else if (k1 === 'number') {
      truth = num(arg1) === num(arg);
    } else if (k1 === 'bool' || k1 === 'string') {
      truth = arg1 === arg;
    } else if (isNilish(arg1) || isNilish(arg)) {
      truth = isNilish(arg1) === isNilish(arg);
    } else {
      const kind = goKind(arg);
      if (kind === 'slice' || kind === 'map' || kind === 'func') {
        throw new Error(`non-comparable type ${formatValue(arg)}: ${goTypeName(arg)}`);
      }
      truth = arg instanceof Date && arg1 instanceof Date ? arg.getTime() === arg1.getTime() : arg1 === arg;
    }
    if (truth) return true;
  }
  return false;
}

function compareBytes(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

function lt(a: unknown, b: unknown): boolean {
  const k1 = basicKind(a);
  const k2 = basicKind(b);
  if (k1 !== 'number' && k1 !== 'string') throw new Error('invalid type for comparison');
  if (k2 !== 'number' && k2 !== 'string') throw new Error('invalid type for comparison');
  if (k1 !== k2) throw new Error('incompatible types for comparison');
  return k1 === 'number' ? num(a) < num(b) : compareBytes(a as string, b as string) < 0;
}

function le(a: unknown, b: unknown): boolean {
  return lt(a, b) || eq(a, [b]);
}

// --- indexing -----------------------------------------------------------------------------

function indexArg(index: unknown, cap: number): number {
  if (isNilish(index)) throw new Error('cannot index slice/array with nil');
  if (goKind(index) !== 'int') throw new Error(`cannot index slice/array with type ${goTypeName(index)}`);
  const x = num(index);
  if (x < 0 || x > cap) throw new Error(`index out of range: ${x}`);
  return x;
}

function index(item: unknown, indexes: unknown[]): unknown {
  if (isNilish(item)) throw new Error('index of untyped nil');
  for (const idx of indexes) {
    if (isNilish(item)) throw new Error('index of nil pointer');
    const kind = goKind(item);
    if (kind === 'string') {
      const bytes = Buffer.from(item as string, 'utf8');
      const x = indexArg(idx, bytes.length);
      if (x === bytes.length) throw new Error('reflect: string index out of range');
      item = bytes[x];
    } else if (kind === 'slice') {
      const elems = sliceElements(item);
      const x = indexArg(idx, elems.length);
      if (x === elems.length) throw new Error('reflect: slice index out of range');
      item = elems[x] ?? null;
    } else if (kind === 'map') {
      if (!(item instanceof Map)) {
        if (idx === undefined) throw new Error('value is nil; should be of type string');
        if (typeof idx !== 'string') throw new Error(`value has type ${goTypeName(idx)}; should be string`);
      }
      const v = mapGet(item, idx);
      if (v !== undefined) {
        item = v;
      } else {
        const zero = mapZeroValue(item);
        item = zero === null ? undefined : zero;
      }
    } else {
      throw new Error(`can't index item of type ${goTypeName(item)}`);
    }
  }
  return item;
}

function slice(item: unknown, indexes: unknown[]): unknown {
  if (isNilish(item)) throw new Error('slice of untyped nil');
  if (indexes.length > 3) throw new Error(`too many slice indexes: ${indexes.length}`);
  const kind = goKind(item);
  let length: number;
  if (kind === 'string') {
    if (indexes.length === 3) throw new Error('cannot 3-index slice a string');
    length = utf8Length(item as string);
  } else if (kind === 'slice') {
    length = sliceElements(item).length;
  } else {
    throw new Error(`can't slice item of type ${goTypeName(item)}`);
  }
  const idx = [0, length, length];
  indexes.forEach((x, i) => {
    idx[i] = indexArg(x, length);
  });
  const [i, j, k] = idx as [number, number, number];
  if (i > j) throw new Error(`invalid slice index: ${i} > ${j}`);
  if (indexes.length === 3 && j > k) throw new Error(`invalid slice index: ${j} > ${k}`);
  if (kind === 'string') return Buffer.from(item as string, 'utf8').subarray(i, j).toString('utf8');
  return sliceElements(item).slice(i, j);
}

function length(item: unknown): number {
  if (item === undefined) throw new Error('len of untyped nil');
  if (item === null) throw new Error('len of nil pointer');
  switch (goKind(item)) {
    case 'string':
      return utf8Length(item as string);
    case 'slice':
      return sliceElements(item).length;
    case 'map':
      return mapSize(item);
    default:
      throw new Error(`len of type ${goTypeName(item)}`);
  }
}

// --- escapers -----------------------------------------------------------------------------

/** Go's evalArgs for the escapers: a lone string as is, else Sprint of the arguments. */
function escaperInput(args: unknown[]): string {
  if (args.length === 1 && typeof args[0] === 'string') return args[0];
  return sprint(args);
}

function htmlEscape(s: string): string {
  return s.replace(/["'&<>\0]/g, (c) => {
    switch (c) {
      case '"': return '&#34;';
      case "'": return '&#39;';
      case '&': return '&amp;';
      case '<': return '&lt;';
      case '>': return '&gt;';
      default: return '\uFFFD';
    }
  });
}

function jsEscape(s: string): string {
  let out = '';
  for (const ch of s) {
    const r = ch.codePointAt(0)!;
    switch (ch) {
      case '\\': out += '\\\\'; continue;
      case "'": out += "\\'"; continue;
      case '"': out += '\\"'; continue;
      case '<': out += '\\u003C'; continue;
      case '>': out += '\\u003E'; continue;
      case '&': out += '\\u0026'; continue;
      case '=': out += '\\u003D'; continue;
      default: break;
    }
    if (r < 0x20 || (r >= 0x7f && !/^[\p{L}\p{M}\p{N}\p{P}\p{S} ]$/u.test(ch))) {
      out += `\\u${r.toString(16).toUpperCase().padStart(4, '0')}`;
    } else {
      out += ch;
    }
  }
  return out;
}

function queryEscape(s: string): string {
  let out = '';
  for (const b of Buffer.from(s, 'utf8')) {
    const c = String.fromCharCode(b);
    if (/[A-Za-z0-9\-_.~]/.test(c)) out += c;
    else if (c === ' ') out += '+';
    else out += `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

// --- docker's functions -------------------------------------------------------------------

/** strings.Split: an empty separator splits into runes. */
function split(s: string, sep: string): string[] {
  return sep === '' ? Array.from(s) : s.split(sep);
}

/** docker's joinElements: slices of anything, and maps by their sorted values. */
function join(elems: unknown, sep: string): string {
  if (elems === null || elems === undefined) return '';
  const kind = goKind(elems);
  if (kind === 'slice') return sliceElements(elems).map((e) => sprint([e])).join(sep);
  if (kind === 'map') {
    return sortedEntries(elems)
      .map(([, v]) => sprint([v]))
      .sort(compareBytes)
      .join(sep);
  }
  throw new Error(`expected slice, got ${goTypeName(elems)}`);
}

const TITLE_WORD = /^[\p{L}\p{Nd}]$/u;

/** strings.Title: upper-case the first letter of each word. */
function title(s: string): string {
  let prev = ' ';
  let out = '';
  for (const ch of s) {
    const upper = ch.toUpperCase();
    out += isSeparator(prev) && Array.from(upper).length === 1 ? upper : ch;
    prev = ch;
  }
  return out;
}

function isSeparator(ch: string): boolean {
  const r = ch.codePointAt(0)!;
  if (r <= 0x7f) return !/[A-Za-z0-9_]/.test(ch);
  if (TITLE_WORD.test(ch)) return false;
  return /^\s$/u.test(ch);
}

function pad(s: string, prefix: number, suffix: number): string {
  if (s === '') return s;
  if (prefix < 0 || suffix < 0) throw new Error('strings: negative Repeat count');
  return ' '.repeat(prefix) + s + ' '.repeat(suffix);
}

function truncate(s: string, n: number): string {
  const bytes = Buffer.from(s, 'utf8');
  if (bytes.length < n) return s;
  if (n < 0) throw new Error(`runtime error: slice bounds out of range [:${n}]`);
  return bytes.subarray(0, n).toString('utf8');
}

// --- tables -------------------------------------------------------------------------------

let builtins: Map<string, FuncSpec> | undefined;

/** Go's builtin template functions. */
export function goBuiltins(): Map<string, FuncSpec> {
  builtins ??= new Map<string, FuncSpec>([
    ['and', { params: ['value'], variadic: 'value', special: 'and', call: () => undefined }],
    ['or', { params: ['value'], variadic: 'value', special: 'or', call: () => undefined }],
    ['not', { params: ['value'], call: ([a]) => !isTrue(a) }],
    ['len', { params: ['value'], call: ([a]) => length(a) }],
    ['index', { params: ['value'], variadic: 'value', call: ([a, ...rest]) => index(a, rest) }],
    ['slice', { params: ['value'], variadic: 'value', call: ([a, ...rest]) => slice(a, rest) }],
    ['print', { params: [], variadic: 'any', call: (args) => sprint(args) }],
    ['printf', { params: ['string'], variadic: 'any', call: ([f, ...rest]) => sprintf(f as string, rest) }],
    ['println', { params: [], variadic: 'any', call: (args) => sprintln(args) }],
    ['eq', { params: ['value'], variadic: 'value', call: ([a, ...rest]) => eq(a, rest) }],
    ['ne', { params: ['value', 'value'], call: ([a, b]) => !eq(a, [b]) }],
    ['lt', { params: ['value', 'value'], call: ([a, b]) => lt(a, b) }],
    ['le', { params: ['value', 'value'], call: ([a, b]) => le(a, b) }],
    ['gt', { params: ['value', 'value'], call: ([a, b]) => !le(a, b) }],
    ['ge', { params: ['value', 'value'], call: ([a, b]) => !lt(a, b) }],
    ['html', { params: [], variadic: 'any', call: (args) => htmlEscape(escaperInput(args)) }],
    ['js', { params: [], variadic: 'any', call: (args) => jsEscape(escaperInput(args)) }],
    ['urlquery', { params: [], variadic: 'any', call: (args) => queryEscape(escaperInput(args)) }],
    [
      'call',
      {
        params: ['value'],
        variadic: 'value',
        call: ([fn, ...rest]) => {
          if (isNilish(fn)) throw new Error('call of nil');
          if (typeof fn !== 'function') throw new Error(`non-function of type ${goTypeName(fn)}`);
          return (fn as (...a: unknown[]) => unknown)(...rest);
        },
      },
    ],
  ]);
  return builtins;
}

let docker: Map<string, FuncSpec> | undefined;

/** docker's template functions (docker/cli templates.basicFunctions). */
export function dockerFuncs(): Map<string, FuncSpec> {
  docker ??= new Map<string, FuncSpec>([
    ['json', { params: ['any'], call: ([v]) => marshalJson(v, { escapeHtml: false }) }],
    ['split', { params: ['string', 'string'], call: ([s, sep]) => split(s as string, sep as string) }],
    ['join', { params: ['any', 'string'], call: ([e, sep]) => join(e, sep as string) }],
    ['title', { params: ['string'], call: ([s]) => title(s as string) }],
    ['lower', { params: ['string'], call: ([s]) => (s as string).toLowerCase() }],
    ['upper', { params: ['string'], call: ([s]) => (s as string).toUpperCase() }],
    ['pad', { params: ['string', 'int', 'int'], call: ([s, p, q]) => pad(s as string, p as number, q as number) }],
    ['truncate', { params: ['string', 'int'], call: ([s, n]) => truncate(s as string, n as number) }],
  ]);
  return docker;
}

let header: Map<string, FuncSpec> | undefined;

/** docker's HeaderFunctions: in a table header these return the column name unchanged. */
export function headerFuncs(): Map<string, FuncSpec> {
  const same = ([s]: unknown[]): unknown => s;
  header ??= new Map<string, FuncSpec>([
    ['json', { params: ['string'], call: same }],
    ['split', { params: ['string', 'string'], call: same }],
    ['join', { params: ['string', 'string'], call: same }],
    ['title', { params: ['string'], call: same }],
    ['lower', { params: ['string'], call: same }],
    ['upper', { params: ['string'], call: same }],
    ['truncate', { params: ['string', 'int'], call: same }],
  ]);
  return header;
}
