/**
 * Go's encoding/json output for template data: compact, object keys in the object's own
 * order (Map keys sorted, as Go sorts map keys), strings escaped as Go escapes them.
 *
 * escapeHtml (json.Marshal's default) writes <, > and & as \u003c, \u003e, \u0026. Docker's
 * template `json` function turns it off (its encoder has SetEscapeHTML(false)), so
 * `{{json .Ports}}` prints "0.0.0.0:80->80/tcp" with the arrow intact.
 */
import { InvalidArgument } from '../../errors/errors.js';

/** A value that writes its own JSON, as Go's json.Marshaler: it goes out as it is. */
export interface JsonMarshaler {
  marshalJSON(): string;
}

export interface MarshalOptions {
  escapeHtml?: boolean;
}

export function marshalJson(value: unknown, options: MarshalOptions = {}): string {
  const escapeHtml = options.escapeHtml ?? true;
  const seen = new Set<object>();

  const encodeString = (s: string): string => {
    let out = '"';
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      const ch = s[i] as string;
      if (c === 0x22) out += '\\"';
      else if (c === 0x5c) out += '\\\\';
      else if (c === 0x0a) out += '\\n';
      else if (c === 0x0d) out += '\\r';
      else if (c === 0x09) out += '\\t';
      else if (c === 0x08) out += '\\b';
      else if (c === 0x0c) out += '\\f';
      else if (c < 0x20) out += `\\u00${c.toString(16).padStart(2, '0')}`;
      else if (escapeHtml && (c === 0x3c || c === 0x3e || c === 0x26)) {
        out += `\\u00${c.toString(16)}`;
      } else if (c === 0x2028 || c === 0x2029) out += `\\u${c.toString(16)}`;
      else if (c >= 0xd800 && c <= 0xdbff) {
        const d = s.charCodeAt(i + 1);
        if (d >= 0xdc00 && d <= 0xdfff) {
          out += ch + (s[i + 1] as string);
          i++;
        } else out += '\\ufffd';
      } else if (c >= 0xdc00 && c <= 0xdfff) out += '\\ufffd';
      else out += ch;
    }
    return `${out}"`;
  };

  const encodeNumber = (n: number): string => {
    if (!Number.isFinite(n)) {
      throw new InvalidArgument(`json: unsupported value: ${Number.isNaN(n) ? 'NaN' : n > 0 ? '+Inf' : '-Inf'}`);
    }
    if (Number.isInteger(n) && Math.abs(n) >= 1e21) return BigInt(n).toString();
    // For the rest, JavaScript and Go agree: plain digits, exponent below 1e-6 and from 1e21.
    return String(n);
  };

  const encode = (v: unknown, top: boolean): string | undefined => {
    switch (typeof v) {
      case 'undefined':
        return top ? 'null' : undefined;
      case 'boolean':
        return v ? 'true' : 'false';
      case 'number':
        return encodeNumber(v);
      case 'bigint':
        return v.toString();
      case 'string':
        return encodeString(v);
      case 'function':
      case 'symbol':
        if (top) throw new InvalidArgument(`json: unsupported type: ${typeof v}`);
        return undefined;
      default:
        break;
    }
    if (v === null) return 'null';
    const o = v as object;
    if (o instanceof Date) return encodeString(rfc3339Nano(o));
    const marshaler = (o as Partial<JsonMarshaler>).marshalJSON;
    if (typeof marshaler === 'function') return marshaler.call(o);
    const toJson = (o as { toJSON?: unknown }).toJSON;
    if (typeof toJson === 'function') return encode((toJson as () => unknown).call(o), top);
    if (seen.has(o)) throw new InvalidArgument('json: unsupported value: encountered a cycle');
    seen.add(o);
    try {
      if (Array.isArray(o)) {
        return `[${o.map((e) => encode(e, false) ?? 'null').join(',')}]`;
      }
      if (o instanceof Uint8Array) {
        // Go encodes []byte as base64.
        return encodeString(Buffer.from(o).toString('base64'));
      }
      if (ArrayBuffer.isView(o) && !(o instanceof DataView)) {
        const elems = Array.from(o as unknown as ArrayLike<number | bigint>);
        return `[${elems.map((e) => encode(e, false)).join(',')}]`;
      }
      let entries: [string, unknown][];
      if (o instanceof Map) {
        entries = [...(o as Map<unknown, unknown>).entries()]
          .map(([k, e]): [string, unknown] => [String(k), e])
          .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
      } else {
        entries = Object.entries(o);
      }
      const parts: string[] = [];
      for (const [k, e] of entries) {
        const enc = encode(e, false);
        if (enc !== undefined) parts.push(`${encodeString(k)}:${enc}`);
      }
      return `{${parts.join(',')}}`;
    } finally {
      seen.delete(o);
    }
  };

  return encode(value, true) ?? 'null';
}

/** Go's time.RFC3339Nano in UTC: the fraction without trailing zeros. */
function rfc3339Nano(d: Date): string {
  if (Number.isNaN(d.getTime())) {
    throw new InvalidArgument('json: error calling MarshalJSON for type time.Time: invalid time');
  }
  return d.toISOString().replace(/\.?0+Z$/, 'Z');
}

/**
 * Go's json.Indent of compact JSON (what marshalJson writes), as json.MarshalIndent lays
 * it out: a value a line, members as `"key": value`, empty objects and arrays as {} and [].
 */
export function indentJson(compact: string, indent: string): string {
  let out = '';
  let depth = 0;
  let inString = false;
  const newline = () => `\n${indent.repeat(depth)}`;
  for (let i = 0; i < compact.length; i++) {
    const c = compact[i]!;
    if (inString) {
      out += c;
      if (c === '\\') out += compact[++i] ?? '';
      else if (c === '"') inString = false;
      continue;
    }
    switch (c) {
      case '"':
        inString = true;
        out += c;
        break;
      case '{':
      case '[': {
        const close = c === '{' ? '}' : ']';
        if (compact[i + 1] === close) {
          out += c + close;
          i++;
        } else {
          depth++;
          out += c + newline();
        }
        break;
      }
      case '}':
      case ']':
        depth--;
        out += newline() + c;
        break;
      case ',':
        out += c + newline();
        break;
      case ':':
        out += ': ';
        break;
      default:
        out += c;
    }
  }
  return out;
}
