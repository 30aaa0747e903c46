/**
 * docker's table and `--format` output (docker/cli cli/command/formatter):
 *
 * - A format starting with "table" prints a header row, then one row per item, aligned by
 *   Go's tabwriter with docker's settings: minimum cell width 10, padding 3, filled with
 *   spaces; the last cell of a line is not padded.
 * - Any other format prints the template once per item, each followed by a newline.
 * - "json" means `{{json .}}`; `\t` and `\n` written literally in a format become a tab
 *   and a newline; spaces around the format are dropped.
 * - The header row runs the same template over the field→header map, with docker's
 *   header functions, so `table {{.ID}}\t{{upper .Names}}` heads its columns
 *   "CONTAINER ID" and "NAMES".
 */
import { compileTemplate, type TemplateFunc, type TemplateOptions } from './go-template.js';
import { stringWidth } from './display-width.js';
import { FieldSource, asStruct } from '../../util/go-value.js';
import { marshalJson, type JsonMarshaler } from './go-json.js';

export const TABLE_FORMAT_KEY = 'table';
export const RAW_FORMAT_KEY = 'raw';
export const JSON_FORMAT_KEY = 'json';
export const JSON_FORMAT = '{{json .}}';
export const DEFAULT_QUIET_FORMAT = '{{.ID}}';

/** docker's tabwriter.NewWriter(out, 10, 1, 3, ' ', 0). */
const MIN_WIDTH = 10;
const PADDING = 3;

/** True for "table" and "table {{...}}" formats. */
export function isTableFormat(format: string): boolean {
  return format.startsWith(TABLE_FORMAT_KEY);
}

/** The template a format stands for (docker's Format.templateString). */
export function templateString(format: string): string {
  if (format === TABLE_FORMAT_KEY) return '';
  if (format === JSON_FORMAT_KEY) return JSON_FORMAT;
  let out = isTableFormat(format) ? format.slice(TABLE_FORMAT_KEY.length) : format;
  out = out.replace(/^ +| +$/g, '');
  return out.replace(/\\t|\\n/g, (m) => (m === '\\t' ? '\t' : '\n'));
}

export interface FormatDefaults {
  /** The table format for no --format and for "table", e.g. "table {{.ID}}\t{{.Image}}". */
  table: string;
  /** What --quiet prints; "{{.ID}}" unless given. */
  quiet?: string;
  /** The "raw" format, for commands that have one, and its --quiet form. */
  raw?: string;
  rawQuiet?: string;
  /**
   * Whether --quiet wins over a custom --format (docker ps: yes; docker images, network ls
   * and volume ls: no, the custom format is used). Default true.
   */
  quietOverridesCustom?: boolean;
}

/** The format to render, from the --format value and --quiet, as docker's New*Format do. */
export function resolveFormat(source: string | undefined, defaults: FormatDefaults, quiet = false): string {
  const quietFormat = defaults.quiet ?? DEFAULT_QUIET_FORMAT;
  const src = source ?? '';
  if (src === '' || src === TABLE_FORMAT_KEY) return quiet ? quietFormat : defaults.table;
  if (src === RAW_FORMAT_KEY && defaults.raw !== undefined) {
    return quiet ? (defaults.rawQuiet ?? defaults.raw) : defaults.raw;
  }
  if (quiet && (defaults.quietOverridesCustom ?? true)) return quietFormat;
  return src;
}

// --- tabwriter --------------------------------------------------------------------------

interface Cell {
  text: string;
  width: number;
}

/**
 * Go's text/tabwriter over text, with docker's settings: cells end at \t (or \v), lines
 * at \n (or \f). A column is a run of consecutive lines that have a tab-terminated cell at
 * that index; its width is the widest cell plus 3, at least 10. The last cell of each
 * line is printed as is.
 */
export function tabwriteText(text: string): string {
  const lines: Cell[][] = [];
  let line: Cell[] = [];
  let start = 0;
  const endCell = (i: number): void => {
    const t = text.slice(start, i);
    line.push({ text: t, width: stringWidth(t) });
    start = i + 1;
  };
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x09 || c === 0x0b) {
      endCell(i);
    } else if (c === 0x0a || c === 0x0c) {
      endCell(i);
      lines.push(line);
      line = [];
    }
  }
  if (start < text.length) endCell(text.length);
  lines.push(line);

  const widths: number[] = [];
  let out = '';
  const writeLines = (line0: number, line1: number): void => {
    for (let i = line0; i < line1; i++) {
      const cells = lines[i] as Cell[];
      cells.forEach((cell, j) => {
        out += cell.text;
        if (j < widths.length) out += ' '.repeat((widths[j] as number) - cell.width);
      });
      if (i + 1 < lines.length) out += '\n';
    }
  };
  const format = (line0: number, line1: number): void => {
    const column = widths.length;
    for (let t = line0; t < line1; t++) {
      if (column >= (lines[t] as Cell[]).length - 1) continue;
      // A block of lines with a cell in this column starts here.
      writeLines(line0, t);
      line0 = t;
      let width = MIN_WIDTH;
      for (; t < line1; t++) {
        const cells = lines[t] as Cell[];
        if (column >= cells.length - 1) break;
        width = Math.max(width, (cells[column] as Cell).width + PADDING);
      }
      widths.push(width);
      format(line0, t);
      widths.pop();
      line0 = t;
    }
    writeLines(line0, line1);
  };
  format(0, lines.length);
  return out;
}

/**
 * Align rows of cells as docker's tables are aligned. Every line ends with a newline;
 * each line's last cell is not padded. Cells should not contain tabs or newlines.
 */
export function tabwriter(lines: string[][]): string {
  return tabwriteText(lines.map((cells) => `${cells.join('\t')}\n`).join(''));
}

/**
 * A row of a listing as templates see one of docker's formatter contexts (named `typeName`
 * in errors, as *formatter.volumeContext): its fields, and its function fields as methods
 * (`{{.Label "k"}}`). Its JSON is docker's formatter.MarshalJSON: the fields as a map, keys
 * sorted, through json.Marshal, so `{{json .}}` writes <, > and & as \u003c, \u003e, \u0026.
 */
export function contextRow<T extends object>(fields: T, typeName: string): T {
  const marshaler: JsonMarshaler = {
    marshalJSON(this: object): string {
      // The fields as they are when marshalled: a getter (ps's lazy Size) runs then.
      return marshalJson(new Map(Object.entries(this).filter(([, v]) => typeof v !== 'function')));
    },
  };
  return asStruct({ ...fields, ...marshaler }, typeName);
}

// --- rendering --------------------------------------------------------------------------

/** docker's SubHeaderContext: the field→header map, with its Label method. */
class HeaderContext extends FieldSource {
  readonly #headers: Record<string, string>;

  constructor(headers: Record<string, string>) {
    super();
    this.#headers = headers;
  }

  lookupField(name: string): unknown {
    if (name === 'Label') {
      // `{{.Label "com.example.vendor"}}` is headed "vendor".
      return (label: string): string => String(label).split('.').pop()!.replace(/[-_]/g, ' ');
    }
    const h = this.#headers[name] ?? this.#headers[`.${name}`];
    // A field without a header is headed by its name in capitals.
    return h ?? name.toUpperCase();
  }
}

export interface RenderOptions extends TemplateOptions {
  /** Extra template functions. */
  funcs?: Record<string, TemplateFunc>;
}

/**
 * Render rows with a --format string, as docker prints lists. `headers` maps a field to its
 * column header ({ ID: 'CONTAINER ID', Image: 'IMAGE' }; a leading dot is allowed).
 * Throws InvalidArgument ("template parsing error: ...") for a bad format or a bad field.
 */
export function renderTable(
  format: string,
  rows: readonly object[],
  headers: Record<string, string>,
  options: RenderOptions = {},
): string {
  const tmpl = compileTemplate(templateString(format), options.funcs, options);
  let body = '';
  for (const row of rows) body += `${tmpl.execute(row)}\n`;
  if (!isTableFormat(format)) return body;
  // docker ignores a failure of the header row and keeps what it printed so far.
  const header = tmpl.forHeader().executePartial(new HeaderContext(headers)).output;
  return tabwriteText(`${header}\n${body}`);
}
