/**
 * Lists as docker prints them: a table by default, `--format` with a Go template (with
 * `table` for a header row, `json` for one JSON object per line), `-q` for ids only.
 */
import { compileTemplate } from './format/go-template.js';
import { renderTable } from './format/table.js';

export interface ListOptions {
  /** The user's --format, if any. */
  format: string | undefined;
  /** The command's own table, used when there is no --format. */
  defaultFormat: string;
  /** Field name -> header, e.g. ID -> 'IMAGE ID'. */
  headers: Record<string, string>;
  quiet?: boolean;
  /** The template used for -q, '{{.ID}}' by default. */
  quietFormat?: string;
}

export function formatList(rows: object[], opts: ListOptions): string {
  let format = opts.format ?? opts.defaultFormat;
  if (opts.quiet) format = opts.quietFormat ?? '{{.ID}}';
  if (format === 'json') format = '{{json .}}';
  if (format.startsWith('table')) return renderTable(format, rows, opts.headers);
  const template = compileTemplate(format);
  return rows.map((row) => `${template.execute(row)}\n`).join('');
}

/** `inspect`: an indented JSON array by default, or each object through --format. */
export function formatInspect(objects: unknown[], format: string | undefined): string {
  if (!format) return `${JSON.stringify(objects, null, 4)}\n`;
  const template = compileTemplate(format === 'json' ? '{{json .}}' : format);
  return objects.map((o) => `${template.execute(o)}\n`).join('');
}
