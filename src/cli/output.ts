/**
 * Lists as docker prints them: a table by default, `--format` with a Go template (with
 * `table` for a header row, `json` for one JSON object per line), `-q` for ids only.
 */
import { InvalidArgument } from '../errors/errors.js';
import { compileTemplate, type Template } from './format/go-template.js';
import { indentJson, marshalJson } from './format/go-json.js';
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

/** How docker's inspect sees an object: the typed view its --format runs over first. */
export interface InspectView {
  /** Makes the typed object (docker's Go struct) of what the daemon answered. */
  typed: (object: unknown) => unknown;
  /**
   * false where docker keeps no raw JSON of the object (volume inspect): the template runs
   * over the typed object alone, a failure there is the error, and the JSON printed is the
   * typed object's.
   */
  raw?: boolean;
}

/**
 * docker's inspect printer: an indented JSON array by default, a compact one for `json`, or
 * each object through the --format template. docker runs the template over its typed object
 * first and, when that fails, over the raw JSON with missingkey=error (`{{.Nope}}` is an
 * error, not "<no value>"); given a view, which makes the typed object, so does this
 * printer (or over the typed object alone, where the view has no raw JSON), else it runs
 * over the raw JSON only. An object the template fails on gives an error and no output;
 * the others still print.
 */
export class InspectPrinter {
  readonly #format: string | undefined;
  readonly #template: Template | undefined;
  readonly #typedTemplate: Template | undefined;
  readonly #view: InspectView | undefined;
  readonly #objects: unknown[] = [];
  #text = '';

  /** Throws InvalidArgument ("template parsing error: ...") when the template does not parse. */
  constructor(format: string | undefined, view?: InspectView) {
    this.#format = format;
    if (format && format !== 'json') {
      if (view?.raw !== false) this.#template = compileTemplate(format, undefined, { missingKey: 'error' });
      if (view) this.#typedTemplate = compileTemplate(format);
    }
    this.#view = view;
  }

  /** Adds one object; returns the error message when the template fails on it. */
  add(object: unknown): string | undefined {
    const view = this.#view;
    if (!this.#template && !this.#typedTemplate) {
      this.#objects.push(view?.raw === false ? view.typed(object) : object);
      return undefined;
    }
    if (this.#typedTemplate && view) {
      const typed = this.#typedTemplate.executePartial(view.typed(object));
      if (!typed.error) {
        this.#text += `${typed.output}\n`;
        return undefined;
      }
      // No raw JSON to fall back on: the typed object's failure is the error.
      if (!this.#template) return typed.error.message;
    }
    try {
      this.#text += `${this.#template!.execute(object)}\n`;
      return undefined;
    } catch (err) {
      if (err instanceof InvalidArgument) return err.message;
      throw err;
    }
  }

  /**
   * What to print: with a template and nothing printed, docker still prints an empty line.
   * Typed objects print as Go marshals them (json.Marshal escapes <, > and &).
   */
  output(): string {
    if (this.#format && this.#format !== 'json') return this.#text === '' ? '\n' : this.#text;
    if (this.#view?.raw === false) {
      const json = marshalJson(this.#objects);
      return `${this.#format === 'json' ? json : indentJson(json, '    ')}\n`;
    }
    if (this.#format === 'json') return `${JSON.stringify(this.#objects)}\n`;
    return `${JSON.stringify(this.#objects, null, 4)}\n`;
  }
}

/** `inspect` of objects that were all found; throws the template's errors, one a line. */
export function formatInspect(objects: unknown[], format: string | undefined): string {
  const printer = new InspectPrinter(format);
  const errors = objects.map((o) => printer.add(o)).filter((e): e is string => e !== undefined);
  if (errors.length) throw new InvalidArgument(errors.join('\n'));
  return printer.output();
}
