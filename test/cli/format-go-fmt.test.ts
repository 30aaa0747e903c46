import { describe, it } from 'node:test';
import * as assert from 'node:assert/strict';

import { InvalidArgument } from '../../src/errors/errors.js';
import { formatFloat, formatValue, goTimeString, quote, sprint, sprintf, sprintln } from '../../src/util/go-fmt.js';
import { marshalJson } from '../../src/cli/format/go-json.js';

describe('strconv.FormatFloat', () => {
  it('prints the shortest form as Go does', () => {
    assert.equal(formatFloat(3.1415926535, 'E', -1), '3.1415926535E+00');
    assert.equal(formatFloat(1e6, 'g', -1), '1e+06');
    assert.equal(formatFloat(123456, 'g', -1), '123456');
    assert.equal(formatFloat(1234567, 'g', -1), '1.234567e+06');
    assert.equal(formatFloat(0.000012, 'g', -1), '1.2e-05');
    assert.equal(formatFloat(0.0001, 'g', -1), '0.0001');
    assert.equal(formatFloat(0, 'g', -1), '0');
    assert.equal(formatFloat(-0, 'g', -1), '-0');
    assert.equal(formatFloat(1e21, 'f', -1), '1000000000000000000000');
    assert.equal(formatFloat(NaN, 'g', -1), 'NaN');
    assert.equal(formatFloat(Infinity, 'g', -1), '+Inf');
    assert.equal(formatFloat(-Infinity, 'f', 2), '-Inf');
  });

  it('rounds the exact binary value, ties to even', () => {
    assert.equal(formatFloat(1.125, 'g', 3), '1.12');
    assert.equal(formatFloat(1.375, 'g', 3), '1.38');
    assert.equal(formatFloat(2.5, 'f', 0), '2');
    assert.equal(formatFloat(3.5, 'f', 0), '4');
    assert.equal(formatFloat(0.1, 'f', 20), '0.10000000000000000555');
    assert.equal(formatFloat(2.675, 'f', 2), '2.67');
    assert.equal(formatFloat(0.006, 'f', 2), '0.01');
    assert.equal(formatFloat(0.0004, 'f', 2), '0.00');
    assert.equal(formatFloat(0, 'e', 2), '0.00e+00');
    assert.equal(formatFloat(123456.789, 'e', 6), '1.234568e+05');
    assert.equal(formatFloat(1e100, 'g', 3), '1e+100');
    assert.equal(formatFloat(100, 'g', 3), '100');
    assert.equal(formatFloat(1000, 'g', 3), '1e+03');
  });
});

describe('fmt', () => {
  it('prints values with %v', () => {
    assert.equal(formatValue(null), '<nil>');
    assert.equal(formatValue([1, 'a', null, [true]]), '[1 a <nil> [true]]');
    assert.equal(formatValue({ b: 2, a: { c: [] } }), 'map[a:map[c:[]] b:2]');
    assert.equal(formatValue(new Map([[2, 'x'], [1, 'y']])), 'map[1:y 2:x]');
    assert.equal(formatValue(0.5), '0.5');
    assert.equal(formatValue(1.5e-7), '1.5e-07');
    assert.equal(formatValue(12345678.5), '1.23456785e+07');
    assert.equal(formatValue(2 ** 60), '1152921504606846976');
    assert.equal(formatValue(new Date('2024-01-02T03:04:05.120Z')), '2024-01-02 03:04:05.12 +0000 UTC');
    class Point {
      X = 1;
      Y = 'b';
    }
    assert.equal(formatValue(new Point()), '{1 b}');
    class Named {
      toString(): string {
        return 'named!';
      }
    }
    assert.equal(formatValue([new Named()]), '[named!]');
    assert.equal(goTimeString(new Date('2024-01-02T03:04:05Z')), '2024-01-02 03:04:05 +0000 UTC');
  });

  it('formats with Sprintf verbs, flags, width and precision', () => {
    assert.equal(sprintf('%5.2f|%-5d|%05d|%+d|% d', [3.14159, 42, -42, 5, 5]), ' 3.14|42   |-0042|+5| 5');
    assert.equal(sprintf('%x %X %#x %o %b %c %U %q', [255, 255, 255, 8, 5, 65, 0x1f600, 'a"b']), 'ff FF 0xff 10 101 A U+1F600 "a\\"b"');
    assert.equal(sprintf('%s|%10s|%-10s|%.3s|%8.3s|%x|% x', ['hi', 'hi', 'hi', 'abcdef', 'abcdef', 'hi', 'hi']), 'hi|        hi|hi        |abc|     abc|6869|68 69');
    assert.equal(sprintf('%t %v %d', [true, [1, 2], [1, 2]]), 'true [1 2] [1 2]');
    assert.equal(sprintf('%e %E %g %G %.3g', [123456.789, 0.000123, 1e21, 1e-7, 2 / 3]), '1.234568e+05 1.230000E-04 1e+21 1E-07 0.667');
    assert.equal(sprintf('%6.2f%%', [12.3456]), ' 12.35%');
    // A whole number from JSON may stand for a Go float: float verbs format it.
    assert.equal(sprintf('%.2f %g', [3, 1e6]), '3.00 1e+06');
    assert.equal(sprintf('%*d|%-*d|', [5, 1, 4, 2]), '    1|2   |');
    assert.equal(sprintf('%T %T %T %T %T', ['a', 1, 1.5, [1], { a: 'b' }]), 'string int float64 []interface {} map[string]string');
    class Point {
      X = 1;
      Y = 'b';
    }
    assert.equal(sprintf('%v %+v', [new Point(), new Point()]), '{1 b} {X:1 Y:b}');
  });

  it('reports mistakes as Go does', () => {
    assert.equal(sprintf('%d', ['x']), '%!d(string=x)');
    assert.equal(sprintf('%s', [5]), '%!s(int=5)');
    assert.equal(sprintf('%d', [null]), '%!d(<nil>)');
    assert.equal(sprintf('%s %s', ['a']), 'a %!s(MISSING)');
    assert.equal(sprintf('%d', [1, 'x', 2]), '1%!(EXTRA string=x, int=2)');
    assert.equal(sprintf('%', []), '%!(NOVERB)');
    assert.equal(sprintf('%z', [1]), '%!z(int=1)');
  });

  it('joins operands as Sprint and Sprintln', () => {
    assert.equal(sprint([1, 2, 'a', 'b', 3, null]), '1 2ab3 <nil>');
    assert.equal(sprintln([1, 'a', null]), '1 a <nil>\n');
  });

  it('quotes as strconv.Quote', () => {
    assert.equal(quote('héllo\n\t"x"\\'), '"héllo\\n\\t\\"x\\"\\\\"');
    assert.equal(quote('\x00\x7f\u2028\u{1F600}'), '"\\x00\\x7f\\u2028😀"');
    assert.equal(quote('é', true), '"\\u00e9"');
  });
});

describe('encoding/json', () => {
  it('marshals compactly, keys in order, Go escapes', () => {
    assert.equal(marshalJson({ b: 1, a: [true, null, 'x'], c: { d: 1.5 } }), '{"b":1,"a":[true,null,"x"],"c":{"d":1.5}}');
    assert.equal(marshalJson('<a href="x">&</a>'), '"\\u003ca href=\\"x\\"\\u003e\\u0026\\u003c/a\\u003e"');
    assert.equal(marshalJson('<&>', { escapeHtml: false }), '"<&>"');
    assert.equal(marshalJson('a\nb\tc\u0001\b\f\u2028'), '"a\\nb\\tc\\u0001\\b\\f\\u2028"');
    assert.equal(marshalJson(new Map([['b', 1], ['a', 2]])), '{"a":2,"b":1}');
    assert.equal(marshalJson({ skip: undefined, fn: () => 1, keep: 0 }), '{"keep":0}');
    assert.equal(marshalJson(new Date('2024-01-02T03:04:05.500Z')), '"2024-01-02T03:04:05.5Z"');
    assert.equal(marshalJson(new Date('2024-01-02T03:04:05.000Z')), '"2024-01-02T03:04:05Z"');
    assert.equal(marshalJson({ toJSON: () => ({ x: 1 }) }), '{"x":1}');
    assert.equal(marshalJson(1e21), '1000000000000000000000');
    assert.equal(marshalJson(1e-7), '1e-7');
    assert.equal(marshalJson(undefined), 'null');
    assert.equal(marshalJson('\ud800'), '"\\ufffd"');
  });

  it('refuses what Go cannot encode', () => {
    assert.throws(() => marshalJson(NaN), InvalidArgument);
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    assert.throws(() => marshalJson(cyclic), InvalidArgument);
  });
});
