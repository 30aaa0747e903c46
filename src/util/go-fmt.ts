/**
 * The parts of Go's fmt and strconv that docker output goes through: %v printing of values
 * (`[a b]`, `map[k:v]`, `<nil>`), Sprint, Sprintln, Sprintf, strconv.FormatFloat (with Go's
 * round-half-to-even on the exact binary value, so "%.3g" of 1.125 is "1.12" as in Go) and
 * strconv.Quote.
 */
import {
  goKind,
  goTypeName,
  sliceElements,
  sortedEntries,
  stringer,
  structFields,
} from './go-value.js';

// ---------------------------------------------------------------------------------------
// Floats

interface Digits {
  /** Significant decimal digits without trailing zeros; "" for zero. */
  d: string;
  /** Position of the decimal point: value = 0.d × 10^dp. */
  dp: number;
}

/** The exact decimal expansion of a positive finite double. */
function exactDigits(x: number): Digits {
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, x);
  const hi = view.getUint32(0);
  const lo = view.getUint32(4);
  const expBits = (hi >>> 20) & 0x7ff;
  let mant = (BigInt(hi & 0xfffff) << 32n) | BigInt(lo);
  let exp: number;
  if (expBits === 0) {
    exp = -1074;
  } else {
    mant |= 1n << 52n;
    exp = expBits - 1075;
  }
  let s: string;
  let dp: number;
  if (exp >= 0) {
    s = (mant << BigInt(exp)).toString();
    dp = s.length;
  } else {
    // mant × 2^exp = mant × 5^-exp / 10^-exp
    s = (mant * 5n ** BigInt(-exp)).toString();
    dp = s.length + exp;
  }
  return trimDigits({ d: s, dp });
}

/** The shortest digits that read back as x (what both Go and JavaScript print by default). */
function shortestDigits(x: number): Digits {
  const [mantissa, e] = x.toExponential().split('e') as [string, string];
  return trimDigits({ d: mantissa.replace('.', ''), dp: Number(e) + 1 });
}

function trimDigits(v: Digits): Digits {
  const d = v.d.replace(/0+$/, '');
  return d === '' ? { d: '', dp: 0 } : { d, dp: v.dp };
}

/** Round to nd significant digits, ties to even, as Go's decimal.Round. */
function roundDigits(v: Digits, nd: number): Digits {
  if (nd < 0 || nd >= v.d.length) return v;
  const c = v.d.charCodeAt(nd);
  let up: boolean;
  if (c === 0x35 /* '5' */ && nd + 1 === v.d.length) {
    up = nd > 0 && (v.d.charCodeAt(nd - 1) - 0x30) % 2 === 1;
  } else {
    up = c >= 0x35;
  }
  if (!up) return trimDigits({ d: v.d.slice(0, nd), dp: v.dp });
  let i = nd - 1;
  while (i >= 0 && v.d[i] === '9') i--;
  if (i < 0) return { d: '1', dp: v.dp + 1 };
  return { d: v.d.slice(0, i) + String.fromCharCode(v.d.charCodeAt(i) + 1), dp: v.dp };
}

function fmtE(v: Digits, prec: number, e: string): string {
  let out = v.d.length === 0 ? '0' : (v.d[0] as string);
  if (prec > 0) {
    out += '.';
    let frac = v.d.slice(1, Math.min(v.d.length, prec + 1));
    frac += '0'.repeat(prec - frac.length);
    out += frac;
  }
  const exp = v.d.length === 0 ? 0 : v.dp - 1;
  const abs = Math.abs(exp);
  return `${out}${e}${exp < 0 ? '-' : '+'}${abs < 10 ? '0' : ''}${abs}`;
}

function fmtF(v: Digits, prec: number): string {
  let out: string;
  if (v.dp > 0) {
    out = v.d.slice(0, Math.min(v.d.length, v.dp));
    out += '0'.repeat(v.dp - out.length);
  } else {
    out = '0';
  }
  if (prec > 0) {
    out += '.';
    for (let i = 1; i <= prec; i++) {
      const j = v.dp + i - 1;
      out += j >= 0 && j < v.d.length ? v.d[j] : '0';
    }
  }
  return out;
}

/**
 * Go's strconv.FormatFloat(x, fmt, prec, 64) for fmt e, E, f, g, G. prec < 0 means the
 * shortest representation that reads back exactly.
 */
export function formatFloat(x: number, fmt: 'e' | 'E' | 'f' | 'g' | 'G', prec: number): string {
  if (Number.isNaN(x)) return 'NaN';
  if (x === Infinity) return '+Inf';
  if (x === -Infinity) return '-Inf';
  const neg = x < 0 || Object.is(x, -0);
  const abs = Math.abs(x);
  const shortest = prec < 0;
  let digs: Digits;
  if (abs === 0) {
    digs = { d: '', dp: 0 };
  } else if (shortest) {
    digs = shortestDigits(abs);
  } else {
    digs = exactDigits(abs);
    if (fmt === 'f') digs = roundDigits(digs, digs.dp + prec);
    else if (fmt === 'e' || fmt === 'E') digs = roundDigits(digs, prec + 1);
    else {
      if (prec === 0) prec = 1;
      digs = roundDigits(digs, prec);
    }
  }
  if (shortest) {
    if (fmt === 'e' || fmt === 'E') prec = Math.max(digs.d.length - 1, 0);
    else if (fmt === 'f') prec = Math.max(digs.d.length - digs.dp, 0);
    else prec = digs.d.length;
  }
  let body: string;
  if (fmt === 'e' || fmt === 'E') {
    body = fmtE(digs, prec, fmt);
  } else if (fmt === 'f') {
    body = fmtF(digs, prec);
  } else {
    let eprec = prec;
    if (eprec > digs.d.length && digs.d.length >= digs.dp) eprec = digs.d.length;
    if (shortest) eprec = 6;
    const exp = digs.dp - 1;
    if (exp < -4 || exp >= eprec) {
      if (prec > digs.d.length) prec = digs.d.length;
      body = fmtE(digs, prec - 1, fmt === 'g' ? 'e' : 'E');
    } else {
      if (prec > digs.dp) prec = digs.d.length;
      body = fmtF(digs, Math.max(prec - digs.dp, 0));
    }
  }
  return neg ? `-${body}` : body;
}

// ---------------------------------------------------------------------------------------
// Strings

const PRINTABLE = /^[\p{L}\p{M}\p{N}\p{P}\p{S} ]$/u;

/** Go's strconv.Quote (asciiOnly: QuoteToASCII). */
export function quote(s: string, asciiOnly = false): string {
  let out = '"';
  for (const ch of s) {
    const r = ch.codePointAt(0)!;
    if (r >= 0xd800 && r <= 0xdfff) {
      out += '\\ufffd';
      continue;
    }
    if (ch === '"' || ch === '\\') {
      out += `\\${ch}`;
      continue;
    }
    if (asciiOnly ? r < 0x7f && r >= 0x20 : PRINTABLE.test(ch)) {
      out += ch;
      continue;
    }
    switch (ch) {
      case '\x07': out += '\\a'; continue;
      case '\b': out += '\\b'; continue;
      case '\f': out += '\\f'; continue;
      case '\n': out += '\\n'; continue;
      case '\r': out += '\\r'; continue;
      case '\t': out += '\\t'; continue;
      case '\v': out += '\\v'; continue;
      default: break;
    }
    if (r < 0x20 || r === 0x7f) out += `\\x${hex(r, 2)}`;
    else if (r < 0x10000) out += `\\u${hex(r, 4)}`;
    else out += `\\U${hex(r, 8)}`;
  }
  return `${out}"`;
}

function hex(n: number, width: number): string {
  return n.toString(16).padStart(width, '0');
}

function quoteRune(r: number): string {
  if (r === 0x27) return "'\\''";
  const q = quote(String.fromCodePoint(r));
  const inner = q.slice(1, -1).replace(/^\\"$/, '"');
  return `'${inner}'`;
}

function runeCount(s: string): number {
  let n = 0;
  for (const _ of s) n++;
  return n;
}

// ---------------------------------------------------------------------------------------
// Time

/** Go's time.Time.String() for a Date, in UTC: "2024-01-02 03:04:05.5 +0000 UTC". */
export function goTimeString(d: Date): string {
  if (Number.isNaN(d.getTime())) return '<invalid time>';
  const p = (n: number, w = 2): string => String(n).padStart(w, '0');
  let s = `${p(d.getUTCFullYear(), 4)}-${p(d.getUTCMonth() + 1)}-${p(d.getUTCDate())} ` +
    `${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())}`;
  const ms = d.getUTCMilliseconds();
  if (ms !== 0) s += `.${p(ms, 3).replace(/0+$/, '')}`;
  return `${s} +0000 UTC`;
}

// ---------------------------------------------------------------------------------------
// Printing values

interface Spec {
  minus: boolean;
  plus: boolean;
  sharp: boolean;
  space: boolean;
  zero: boolean;
  width: number | undefined;
  prec: number | undefined;
  /** %+v: print struct field names. */
  plusV: boolean;
}

const PLAIN: Spec = {
  minus: false,
  plus: false,
  sharp: false,
  space: false,
  zero: false,
  width: undefined,
  prec: undefined,
  plusV: false,
};

/** A value as Go's fmt prints it with %v. */
export function formatValue(v: unknown): string {
  return printArg(v, 'v', PLAIN, 0);
}

function pad(s: string, spec: Spec, zeroOk = false): string {
  if (spec.width === undefined) return s;
  const n = spec.width - runeCount(s);
  if (n <= 0) return s;
  if (spec.minus) return s + ' '.repeat(n);
  if (spec.zero && zeroOk) {
    const sign = /^[+\- ]/.test(s) ? (s[0] as string) : '';
    return sign + '0'.repeat(n) + s.slice(sign.length);
  }
  return ' '.repeat(n) + s;
}

function badVerb(v: unknown, verb: string, depth: number): string {
  if (v === null || v === undefined) return `%!${verb}(<nil>)`;
  return `%!${verb}(${goTypeName(v)}=${printArg(v, 'v', PLAIN, depth)})`;
}

function fmtInteger(n: bigint, verb: string, spec: Spec): string | undefined {
  const neg = n < 0n;
  const abs = neg ? -n : n;
  let digits: string;
  let prefix = '';
  switch (verb) {
    case 'v':
    case 'd':
      digits = abs.toString(10);
      break;
    case 'b':
      digits = abs.toString(2);
      if (spec.sharp) prefix = '0b';
      break;
    case 'o':
    case 'O':
      digits = abs.toString(8);
      if (verb === 'O') prefix = '0o';
      else if (spec.sharp && digits !== '0') prefix = '0';
      break;
    case 'x':
      digits = abs.toString(16);
      if (spec.sharp) prefix = '0x';
      break;
    case 'X':
      digits = abs.toString(16).toUpperCase();
      if (spec.sharp) prefix = '0X';
      break;
    case 'c':
      return pad(String.fromCodePoint(Number(abs)), spec);
    case 'q':
      return pad(quoteRune(Number(abs)), spec);
    case 'U': {
      const u = `U+${abs.toString(16).toUpperCase().padStart(4, '0')}`;
      return pad(spec.sharp ? `${u} '${String.fromCodePoint(Number(abs))}'` : u, spec);
    }
    default:
      return undefined;
  }
  if (spec.prec !== undefined) {
    digits = spec.prec === 0 && abs === 0n ? '' : digits.padStart(spec.prec, '0');
  }
  const sign = neg ? '-' : spec.plus ? '+' : spec.space ? ' ' : '';
  return pad(sign + prefix + digits, spec, spec.prec === undefined);
}

function fmtFloatVerb(x: number, verb: string, spec: Spec): string | undefined {
  let s: string;
  switch (verb) {
    case 'v':
    case 'g':
    case 'G':
      s = formatFloat(x, verb === 'G' ? 'G' : 'g', spec.prec ?? -1);
      break;
    case 'e':
    case 'E':
      s = formatFloat(x, verb, spec.prec ?? 6);
      break;
    case 'f':
    case 'F':
      s = formatFloat(x, 'f', spec.prec ?? 6);
      break;
    default:
      return undefined;
  }
  if (spec.plus && !s.startsWith('-') && !s.startsWith('+')) s = `+${s}`;
  else if (spec.space && !s.startsWith('-') && !s.startsWith('+')) s = ` ${s}`;
  return pad(s, spec, Number.isFinite(x));
}

function fmtString(s: string, verb: string, spec: Spec): string | undefined {
  if (spec.prec !== undefined && (verb === 's' || verb === 'v' || verb === 'q')) {
    s = Array.from(s).slice(0, spec.prec).join('');
  }
  switch (verb) {
    case 'v':
    case 's':
      return pad(s, spec);
    case 'q':
      if (spec.sharp && !/[`\p{Cc}]/u.test(s)) return pad(`\`${s}\``, spec);
      return pad(quote(s, spec.plus), spec);
    case 'x':
    case 'X': {
      let bytes = Array.from(Buffer.from(s, 'utf8'));
      if (spec.prec !== undefined) bytes = bytes.slice(0, spec.prec);
      const parts = bytes.map((b) => {
        const h = hex(b, 2);
        return verb === 'X' ? h.toUpperCase() : h;
      });
      const prefix = spec.sharp ? (verb === 'X' ? '0X' : '0x') : '';
      const out = spec.space
        ? parts.map((h) => prefix + h).join(' ')
        : prefix + parts.join('');
      return pad(out, spec);
    }
    default:
      return undefined;
  }
}

function printArg(v: unknown, verb: string, spec: Spec, depth: number): string {
  if (verb === 'T') return pad(v === null || v === undefined ? '<nil>' : goTypeName(v), spec);
  if (v === null || v === undefined) {
    return verb === 'v' ? pad('<nil>', spec) : badVerb(v, verb, depth);
  }
  const str = stringer(v);
  if (str !== undefined && 'vsxXq'.includes(verb)) {
    return fmtString(str, verb, spec) ?? badVerb(v, verb, depth);
  }
  switch (goKind(v)) {
    case 'bool':
      return verb === 'v' || verb === 't' ? pad(String(v), spec) : badVerb(v, verb, depth);
    case 'int':
      // JSON does not tell 3 from 3.0: a float verb on a whole number formats it as a float.
      if (typeof v === 'number' && 'eEfFgG'.includes(verb)) return fmtFloatVerb(v, verb, spec) as string;
      return fmtInteger(BigInt(v as number | bigint), verb, spec) ?? badVerb(v, verb, depth);
    case 'float':
      return fmtFloatVerb(v as number, verb, spec) ?? badVerb(v, verb, depth);
    case 'string':
      return fmtString(v as string, verb, spec) ?? badVerb(v, verb, depth);
    case 'time':
      return fmtString(goTimeString(v as Date), verb === 'v' ? 's' : verb, spec) ?? badVerb(v, verb, depth);
    case 'func':
      return pad('func', spec);
    case 'slice': {
      if (v instanceof Uint8Array && 'sxXq'.includes(verb)) {
        return fmtString(Buffer.from(v).toString('utf8'), verb, spec) ?? badVerb(v, verb, depth);
      }
      const parts = sliceElements(v).map((e) => printArg(e, verb, spec, depth + 1));
      return `[${parts.join(' ')}]`;
    }
    case 'map': {
      const parts = sortedEntries(v).map(
        ([k, e]) => `${printArg(k, verb, spec, depth + 1)}:${printArg(e, verb, spec, depth + 1)}`,
      );
      return `map[${parts.join(' ')}]`;
    }
    case 'struct': {
      const parts = structFields(v as object).map(([k, e]) => {
        const value = printArg(e, verb, spec, depth + 1);
        return spec.plusV ? `${k}:${value}` : value;
      });
      return `{${parts.join(' ')}}`;
    }
    case 'nil':
    case 'invalid':
      return '<nil>';
  }
}

/** Go's fmt.Sprint: spaces between operands when neither is a string. */
export function sprint(args: unknown[]): string {
  let out = '';
  let prevString = false;
  args.forEach((a, i) => {
    const isString = typeof a === 'string';
    if (i > 0 && !isString && !prevString) out += ' ';
    out += formatValue(a);
    prevString = isString;
  });
  return out;
}

/** Go's fmt.Sprintln: spaces between all operands and a newline at the end. */
export function sprintln(args: unknown[]): string {
  return `${args.map((a) => formatValue(a)).join(' ')}\n`;
}

/** Go's fmt.Sprintf. Mistakes print as Go prints them: %!d(string=x), %!s(MISSING), %!(EXTRA ...). */
export function sprintf(format: string, args: unknown[]): string {
  let out = '';
  let argNum = 0;
  let i = 0;
  const n = format.length;
  while (i < n) {
    const pct = format.indexOf('%', i);
    if (pct < 0) {
      out += format.slice(i);
      break;
    }
    out += format.slice(i, pct);
    i = pct + 1;
    const spec: Spec = { ...PLAIN };
    flags: for (; i < n; i++) {
      switch (format[i]) {
        case '#': spec.sharp = true; break;
        case '0': spec.zero = true; break;
        case '+': spec.plus = true; break;
        case '-': spec.minus = true; break;
        case ' ': spec.space = true; break;
        default: break flags;
      }
    }
    if (format[i] === '*') {
      i++;
      const w = args[argNum++];
      if (typeof w === 'number' && Number.isInteger(w)) {
        spec.width = Math.abs(w);
        if (w < 0) spec.minus = true;
      } else {
        out += '%!(BADWIDTH)';
      }
    } else {
      const m = /^\d+/.exec(format.slice(i));
      if (m) {
        spec.width = Number(m[0]);
        i += m[0].length;
      }
    }
    if (format[i] === '.') {
      i++;
      if (format[i] === '*') {
        i++;
        const p = args[argNum++];
        if (typeof p === 'number' && Number.isInteger(p) && p >= 0) spec.prec = p;
        else out += '%!(BADPREC)';
      } else {
        const m = /^\d+/.exec(format.slice(i));
        spec.prec = m ? Number(m[0]) : 0;
        if (m) i += m[0].length;
      }
    }
    if (i >= n) {
      out += '%!(NOVERB)';
      break;
    }
    const verb = String.fromCodePoint(format.codePointAt(i)!);
    i += verb.length;
    if (verb === '%') {
      out += '%';
      continue;
    }
    if (argNum >= args.length) {
      out += `%!${verb}(MISSING)`;
      continue;
    }
    if (verb === 'v' && spec.plus) {
      spec.plus = false;
      spec.plusV = true;
    }
    out += printArg(args[argNum++], verb, spec, 0);
  }
  if (argNum < args.length) {
    const extra = args
      .slice(argNum)
      .map((a) => (a === null || a === undefined ? '<nil>' : `${goTypeName(a)}=${formatValue(a)}`));
    out += `%!(EXTRA ${extra.join(', ')})`;
  }
  return out;
}
