/**
 * How a JavaScript value looks through Go's eyes, for the template engine and the fmt
 * printer. Docker's templates run over Go values; ours run over JSON-like data, so each JS
 * value is given the Go kind it would have had:
 *
 *   undefined          invalid (a missing map key: prints "<no value>")
 *   null               nil     (prints "<nil>")
 *   boolean            bool
 *   integral number    int     (and bigint)
 *   other number       float64
 *   string             string
 *   Array, TypedArray  slice
 *   Map, plain object  map     (fields are looked up by key, missing keys are not errors)
 *   Date               time.Time
 *   class instance     struct  (a missing field is an error; methods can be called)
 *   function           func    (a field holding one is called like a Go method)
 */

export type GoKind =
  | 'invalid'
  | 'nil'
  | 'bool'
  | 'int'
  | 'float'
  | 'string'
  | 'slice'
  | 'map'
  | 'struct'
  | 'time'
  | 'func';

/**
 * An object that answers field look-ups itself, like a Go map type with methods (docker's
 * table header context). `lookupField` returns undefined for a missing field.
 */
export abstract class FieldSource {
  abstract lookupField(name: string): unknown;
}

/** Objects made by asStruct, and the Go type names they were given. */
class GoStruct {}
const structTypeNames = new WeakMap<object, string>();

/**
 * A struct-like copy of plain fields: unlike a plain object (a Go map), a missing field is
 * an error, as on docker's typed rows: `asStruct(row, '*formatter.ContainerContext')` makes
 * `{{.Nope}}` fail with "can't evaluate field Nope in type *formatter.ContainerContext".
 * Function-valued fields are its methods (`{{.Label "k"}}`); they are not printed.
 */
export function asStruct<T extends object>(fields: T, typeName = 'struct'): T {
  const s = Object.assign(new GoStruct(), fields);
  structTypeNames.set(s, typeName);
  return s;
}

/** A Go map that is nil: printed as map[], marshalled as null. */
export class NilMap extends Map<string, never> {
  toJSON(): null {
    return null;
  }
}

/** A Go slice that is nil: printed as [], marshalled as null. */
export class NilSlice extends Array<never> {
  toJSON(): null {
    return null;
  }
}

/** A JSON object as the Go map it was decoded from: null (or absent) is a nil map. */
export function goMap<T>(record: Record<string, T> | null | undefined, value: (v: T) => unknown = (v) => v): Map<string, unknown> {
  return record ? new Map(Object.entries(record).map(([k, v]) => [k, value(v)])) : new NilMap();
}

export function isPlainObject(v: object): boolean {
  const proto: unknown = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

export function goKind(v: unknown): GoKind {
  switch (typeof v) {
    case 'undefined':
      return 'invalid';
    case 'boolean':
      return 'bool';
    case 'number':
      return Number.isInteger(v) ? 'int' : 'float';
    case 'bigint':
      return 'int';
    case 'string':
      return 'string';
    case 'function':
      return 'func';
    case 'symbol':
      return 'struct';
    default:
      break;
  }
  if (v === null) return 'nil';
  const o = v as object;
  if (Array.isArray(o) || ArrayBuffer.isView(o)) return 'slice';
  if (o instanceof Map) return 'map';
  if (o instanceof Date) return 'time';
  if (o instanceof FieldSource) return 'struct';
  return isPlainObject(o) ? 'map' : 'struct';
}

/** The elements of a slice value. */
export function sliceElements(v: unknown): unknown[] {
  if (Array.isArray(v)) return v;
  if (ArrayBuffer.isView(v) && !(v instanceof DataView)) {
    return Array.from(v as unknown as ArrayLike<number | bigint>);
  }
  return [];
}

/** Map entries in Go's print and range order: keys sorted (numbers numerically, strings by code point). */
export function sortedEntries(v: unknown): [unknown, unknown][] {
  let entries: [unknown, unknown][];
  if (v instanceof Map) {
    entries = [...(v as Map<unknown, unknown>).entries()];
  } else if (typeof v === 'object' && v !== null) {
    entries = Object.entries(v).filter(([, value]) => value !== undefined);
  } else {
    return [];
  }
  return entries.sort((a, b) => compareKeys(a[0], b[0]));
}

function compareKeys(a: unknown, b: unknown): number {
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  if (typeof a === 'bigint' && typeof b === 'bigint') return a < b ? -1 : a > b ? 1 : 0;
  const sa = String(a);
  const sb = String(b);
  // Go compares string keys bytewise; comparing code points gives the same order as UTF-8 bytes.
  const ca = Array.from(sa);
  const cb = Array.from(sb);
  for (let i = 0; i < Math.min(ca.length, cb.length); i++) {
    const d = (ca[i] as string).codePointAt(0)! - (cb[i] as string).codePointAt(0)!;
    if (d !== 0) return d;
  }
  return ca.length - cb.length;
}

export function mapSize(v: unknown): number {
  if (v instanceof Map) return v.size;
  if (typeof v === 'object' && v !== null) {
    return Object.values(v).filter((x) => x !== undefined).length;
  }
  return 0;
}

/** A map's value for a key, or undefined when the key is absent. */
export function mapGet(v: unknown, key: unknown): unknown {
  if (v instanceof Map) return (v as Map<unknown, unknown>).get(key);
  if (typeof v === 'object' && v !== null && typeof key === 'string') {
    return Object.prototype.hasOwnProperty.call(v, key) ? (v as Record<string, unknown>)[key] : undefined;
  }
  return undefined;
}

/**
 * A struct's field or method: own properties, getters and methods of its class chain; never
 * what every object inherits from Object.prototype.
 */
export function structMember(obj: object, name: string): { found: boolean; value: unknown } {
  if (name === 'constructor' || name === '__proto__') return { found: false, value: undefined };
  for (let p: object | null = obj; p !== null && p !== Object.prototype; p = Object.getPrototypeOf(p) as object | null) {
    if (Object.prototype.hasOwnProperty.call(p, name)) {
      return { found: true, value: Reflect.get(obj, name, obj) };
    }
  }
  return { found: false, value: undefined };
}

/** A struct's field values in declaration order, as Go's %v prints them. */
export function structFields(obj: object): [string, unknown][] {
  return Object.entries(obj).filter(([, v]) => typeof v !== 'function');
}

/** A user-defined String() of a class, as Go's fmt.Stringer: a toString that is not Object's. */
export function stringer(v: unknown): string | undefined {
  if (typeof v !== 'object' || v === null) return undefined;
  if (v instanceof Error) return v.message;
  if (isPlainObject(v) || Array.isArray(v) || v instanceof Map || v instanceof Date) return undefined;
  const fn = (v as { toString?: unknown }).toString;
  if (typeof fn === 'function' && fn !== Object.prototype.toString) {
    return String((fn as () => unknown).call(v));
  }
  return undefined;
}

function homogeneous(values: unknown[], kind: GoKind): boolean {
  return values.length > 0 && values.every((x) => goKind(x) === kind);
}

/** The Go type name a value would have, for messages such as "can't evaluate field X in type T". */
export function goTypeName(v: unknown): string {
  switch (goKind(v)) {
    case 'invalid':
      return '<nil>';
    case 'nil':
      return 'interface {}';
    case 'bool':
      return 'bool';
    case 'int':
      return typeof v === 'bigint' ? 'int64' : 'int';
    case 'float':
      return 'float64';
    case 'string':
      return 'string';
    case 'func':
      return 'func';
    case 'time':
      return 'time.Time';
    case 'slice': {
      if (v instanceof Uint8Array) return '[]uint8';
      const elems = sliceElements(v);
      return homogeneous(elems, 'string') ? '[]string' : '[]interface {}';
    }
    case 'map': {
      const values = sortedEntries(v).map(([, x]) => x);
      return homogeneous(values, 'string') ? 'map[string]string' : 'map[string]interface {}';
    }
    case 'struct': {
      if (v instanceof FieldSource) return 'map[string]string';
      const named = structTypeNames.get(v as object);
      if (named !== undefined) return named;
      const ctor = (v as { constructor?: { name?: unknown } }).constructor;
      const name = typeof ctor?.name === 'string' && ctor.name !== '' ? ctor.name : 'struct';
      return `*${name}`;
    }
  }
}

/**
 * The zero value of a map's element type, as Go's `index` returns for a missing key: guessed
 * from the values present (a map of strings gives "", of numbers 0, of booleans false). An
 * empty map is taken for a map of strings, since labels and options are what people index.
 */
export function mapZeroValue(v: unknown): unknown {
  const values = sortedEntries(v).map(([, x]) => x);
  if (values.length === 0 || homogeneous(values, 'string')) return '';
  if (values.every((x) => typeof x === 'number' || typeof x === 'bigint')) return 0;
  if (homogeneous(values, 'bool')) return false;
  return null;
}

/** Go's truth of a value for if, with, and, or, not. */
export function isTrue(v: unknown): boolean {
  switch (goKind(v)) {
    case 'invalid':
    case 'nil':
      return false;
    case 'bool':
      return v as boolean;
    case 'int':
    case 'float':
      return typeof v === 'bigint' ? v !== 0n : v !== 0;
    case 'string':
      return (v as string).length > 0;
    case 'slice':
      return sliceElements(v).length > 0;
    case 'map':
      return mapSize(v) > 0;
    case 'struct':
    case 'time':
    case 'func':
      return true;
  }
}

/** Length in UTF-8 bytes, as Go's len of a string. */
export function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        n += 4;
        i++;
      } else n += 3;
    } else n += 3;
  }
  return n;
}
