/**
 * Terminal column widths of text, as docker measures table cells (go-runewidth): East
 * Asian wide and fullwidth characters and emoji take two columns, combining marks and
 * zero-width characters none, everything else one.
 */

/** [first, last] code point ranges, sorted. */
const WIDE: ReadonlyArray<readonly [number, number]> = [
  [0x1100, 0x115f], [0x231a, 0x231b], [0x2329, 0x232a], [0x23e9, 0x23ec], [0x23f0, 0x23f0],
  [0x23f3, 0x23f3], [0x25fd, 0x25fe], [0x2614, 0x2615], [0x2648, 0x2653], [0x267f, 0x267f],
  [0x2693, 0x2693], [0x26a1, 0x26a1], [0x26aa, 0x26ab], [0x26bd, 0x26be], [0x26c4, 0x26c5],
  [0x26ce, 0x26ce], [0x26d4, 0x26d4], [0x26ea, 0x26ea], [0x26f2, 0x26f3], [0x26f5, 0x26f5],
  [0x26fa, 0x26fa], [0x26fd, 0x26fd], [0x2705, 0x2705], [0x270a, 0x270b], [0x2728, 0x2728],
  [0x274c, 0x274c], [0x274e, 0x274e], [0x2753, 0x2755], [0x2757, 0x2757], [0x2795, 0x2797],
  [0x27b0, 0x27b0], [0x27bf, 0x27bf], [0x2b1b, 0x2b1c], [0x2b50, 0x2b50], [0x2b55, 0x2b55],
  [0x2e80, 0x303e], [0x3041, 0x33ff], [0x3400, 0x4dbf], [0x4e00, 0x9fff], [0xa000, 0xa4cf],
  [0xa960, 0xa97f], [0xac00, 0xd7a3], [0xf900, 0xfaff], [0xfe10, 0xfe19], [0xfe30, 0xfe6f],
  [0xff00, 0xff60], [0xffe0, 0xffe6], [0x16fe0, 0x16fe4], [0x17000, 0x18cff], [0x1b000, 0x1b2ff],
  [0x1f004, 0x1f004], [0x1f0cf, 0x1f0cf], [0x1f18e, 0x1f18e], [0x1f191, 0x1f19a],
  [0x1f200, 0x1f251], [0x1f300, 0x1f64f], [0x1f680, 0x1f6ff], [0x1f7e0, 0x1f7eb],
  [0x1f90c, 0x1f9ff], [0x1fa70, 0x1faff], [0x20000, 0x2fffd], [0x30000, 0x3fffd],
];

const ZERO: ReadonlyArray<readonly [number, number]> = [
  [0x0300, 0x036f], [0x0483, 0x0489], [0x0591, 0x05bd], [0x0610, 0x061a], [0x064b, 0x065f],
  [0x0e31, 0x0e31], [0x0e34, 0x0e3a], [0x0e47, 0x0e4e], [0x1ab0, 0x1aff], [0x1dc0, 0x1dff],
  [0x200b, 0x200f], [0x2028, 0x202e], [0x2060, 0x2064], [0x20d0, 0x20ff], [0xfe00, 0xfe0f],
  [0xfe20, 0xfe2f], [0xfeff, 0xfeff], [0xe0100, 0xe01ef],
];

function inRanges(r: number, ranges: ReadonlyArray<readonly [number, number]>): boolean {
  let lo = 0;
  let hi = ranges.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const [a, b] = ranges[mid] as readonly [number, number];
    if (r < a) hi = mid - 1;
    else if (r > b) lo = mid + 1;
    else return true;
  }
  return false;
}

/** Columns one code point takes. */
export function charWidth(r: number): number {
  if (r < 0x20 || (r >= 0x7f && r < 0xa0)) return 0;
  if (r < 0x300) return 1;
  if (inRanges(r, ZERO)) return 0;
  return inRanges(r, WIDE) ? 2 : 1;
}

/** Columns a string takes in a terminal. */
export function stringWidth(s: string): number {
  let w = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x7f) {
      if (c >= 0x20) w++;
      continue;
    }
    const r = s.codePointAt(i)!;
    if (r > 0xffff) i++;
    w += charWidth(r);
  }
  return w;
}

/**
 * docker's formatter.Ellipsis: cut a string to fit maxWidth columns, ending in "…" when
 * it was cut. A width of 1 keeps the first character, 0 or less gives "".
 */
export function ellipsis(s: string, maxWidth: number): string {
  if (maxWidth <= 0) return '';
  const runes = Array.from(s);
  if (maxWidth === 1) return runes[0] ?? '';
  const widths = runes.map((ch) => Math.max(charWidth(ch.codePointAt(0)!), 1));
  const total = widths.reduce((a, b) => a + b, 0);
  if (total <= maxWidth) return s;
  let used = 0;
  let keep = 0;
  while (keep < runes.length && used + (widths[keep] as number) <= maxWidth - 1) {
    used += widths[keep] as number;
    keep++;
  }
  // docker leaves the string whole when not even its first character fits before the "…".
  if (keep === 0) return s;
  return `${runes.slice(0, keep).join('')}…`;
}
