/**
 * Go's text/template, as docker's `--format` runs it: `{{.Field}}`, `{{.A.B}}`, `{{.}}`,
 * map keys as fields, `{{index .Labels "k"}}`, variables, pipelines, if/else if/else,
 * range (slices, maps in key order, `$k, $v :=`), with, define/template/block, break and
 * continue, comments and `{{- -}}` trimming, Go's builtins and docker's functions (json,
 * join, split, lower, upper, title, truncate, pad).
 *
 *   const t = compileTemplate('{{.Name}}\t{{join .Names ","}}');
 *   t.execute(row); // the text; throws InvalidArgument on a bad field, as docker does
 *
 * Errors read as docker prints them: "template parsing error: template: :1: unclosed
 * action", "template parsing error: template: :1:2: executing \"\" at <.Foo>: can't
 * evaluate field Foo in type *Row". How JavaScript values map to Go values (what is a map,
 * what is a struct) is described in go-value.ts.
 */
import { InvalidArgument } from '../../errors/errors.js';
import { formatValue, quote } from '../../util/go-fmt.js';
import {
  FieldSource,
  goKind,
  goTypeName,
  isTrue,
  mapGet,
  mapZeroValue,
  sliceElements,
  sortedEntries,
  structMember,
  utf8Length,
} from '../../util/go-value.js';
import {
  type FuncSpec,
  type ParamType,
  type TemplateFunc,
  dockerFuncs,
  goBuiltins,
  headerFuncs,
  paramTypeName,
  userFunc,
} from './template-funcs.js';
import {
  type AnyNode,
  type ArgNode,
  type BranchNode,
  type ChainNode,
  type CommandNode,
  type FieldNode,
  type IdentifierNode,
  type ListNode,
  type Node,
  type NumberNode,
  type PipeNode,
  type TemplateNode,
  type VariableNode,
  TemplateParseError,
  nodeString,
  parseTemplate,
} from './template-parse.js';

export type { TemplateFunc } from './template-funcs.js';
export { asStruct } from '../../util/go-value.js';

export interface TemplateOptions {
  /**
   * Go's missingkey option for `{{.key}}` on a map without that key: 'default' prints
   * "<no value>", 'zero' gives the zero value, 'error' stops with "map has no entry for
   * key". docker inspect runs over raw JSON with 'error'.
   */
  missingKey?: 'default' | 'zero' | 'error';
}

const PREFIX = 'template parsing error: ';

/** Parse a template; throws InvalidArgument with docker's message when it does not parse. */
export function compileTemplate(
  src: string,
  funcs?: Record<string, TemplateFunc>,
  options: TemplateOptions = {},
): Template {
  const table = new Map<string, FuncSpec>(goBuiltins());
  for (const [name, spec] of dockerFuncs()) table.set(name, spec);
  for (const [name, fn] of Object.entries(funcs ?? {})) {
    if (!/^[\p{L}_][\p{L}\p{Nd}_]*$/u.test(name)) {
      throw new InvalidArgument(`template function name ${quote(name)} is not a valid identifier`);
    }
    table.set(name, userFunc(fn));
  }
  let trees: Map<string, ListNode>;
  try {
    trees = parseTemplate(src, (name) => table.has(name));
  } catch (err) {
    if (err instanceof TemplateParseError) throw new InvalidArgument(PREFIX + err.message, { cause: err });
    throw err;
  }
  return new Template(src, trees, table, options.missingKey ?? 'default');
}

export interface PartialResult {
  output: string;
  error?: InvalidArgument;
}

export class Template {
  readonly source: string;
  readonly #trees: Map<string, ListNode>;
  readonly #funcs: Map<string, FuncSpec>;
  readonly #missingKey: 'default' | 'zero' | 'error';

  /** Use compileTemplate. */
  constructor(
    source: string,
    trees: Map<string, ListNode>,
    funcs: Map<string, FuncSpec>,
    missingKey: 'default' | 'zero' | 'error',
  ) {
    this.source = source;
    this.#trees = trees;
    this.#funcs = funcs;
    this.#missingKey = missingKey;
  }

  /** Apply the template to data; throws InvalidArgument with docker's message on failure. */
  execute(data: unknown): string {
    const r = this.executePartial(data);
    if (r.error) throw r.error;
    return r.output;
  }

  /** Apply the template, keeping what was written before an error, as Go's Execute does. */
  executePartial(data: unknown): PartialResult {
    const out: string[] = [];
    const root = this.#trees.get('') as ListNode;
    const state = new ExecState(this.source, this.#trees, this.#funcs, this.#missingKey, out, '', data, 0);
    try {
      state.walk(data, root);
    } catch (err) {
      if (err instanceof ExecError) {
        return { output: out.join(''), error: new InvalidArgument(PREFIX + err.message, { cause: err }) };
      }
      if (err instanceof RangeError) {
        const e = new InvalidArgument(`${PREFIX}template: : exceeded maximum template depth`, { cause: err });
        return { output: out.join(''), error: e };
      }
      throw err;
    }
    return { output: out.join('') };
  }

  /** The same template with functions replaced, as Go's Template.Funcs after parsing. */
  withFuncs(funcs: Record<string, TemplateFunc>): Template {
    const table = new Map(this.#funcs);
    for (const [name, fn] of Object.entries(funcs)) table.set(name, userFunc(fn));
    return new Template(this.source, this.#trees, table, this.#missingKey);
  }

  /** The template with docker's header functions, for rendering a table's header row. */
  forHeader(): Template {
    const table = new Map(this.#funcs);
    for (const [name, spec] of headerFuncs()) table.set(name, spec);
    return new Template(this.source, this.#trees, table, this.#missingKey);
  }
}

/** An execution failure with Go's message; becomes InvalidArgument at the edge. */
class ExecError extends Error {}

/** Signals for {{break}} and {{continue}}. */
const BREAK = Symbol('break');
const CONTINUE = Symbol('continue');

/** "No final argument": the first command of a pipeline has nothing piped into it. */
const MISSING = Symbol('missing');
type Final = unknown;

const MAX_TEMPLATE_DEPTH = 1000;

interface Variable {
  name: string;
  value: unknown;
}

class ExecState {
  readonly #source: string;
  readonly #trees: Map<string, ListNode>;
  readonly #funcs: Map<string, FuncSpec>;
  readonly #missingKey: 'default' | 'zero' | 'error';
  readonly #out: string[];
  readonly #name: string;
  readonly #depth: number;
  #vars: Variable[];
  #node: AnyNode | null = null;

  constructor(
    source: string,
    trees: Map<string, ListNode>,
    funcs: Map<string, FuncSpec>,
    missingKey: 'default' | 'zero' | 'error',
    out: string[],
    name: string,
    dot: unknown,
    depth: number,
  ) {
    this.#source = source;
    this.#trees = trees;
    this.#funcs = funcs;
    this.#missingKey = missingKey;
    this.#out = out;
    this.#name = name;
    this.#depth = depth;
    this.#vars = [{ name: '$', value: dot }];
  }

  #at(node: AnyNode): void {
    this.#node = node;
  }

  #fail(message: string): never {
    const name = quote(this.#name);
    if (this.#node === null) throw new ExecError(`template: ${this.#name}: ${message}`);
    const before = this.#source.slice(0, this.#node.pos);
    const nl = before.lastIndexOf('\n');
    const col = utf8Length(nl < 0 ? before : before.slice(nl + 1));
    const line = before.split('\n').length;
    throw new ExecError(`template: :${line}:${col}: executing ${name} at <${nodeString(this.#node)}>: ${message}`);
  }

  // --- variables ------------------------------------------------------------------------

  #mark(): number {
    return this.#vars.length;
  }

  #pop(mark: number): void {
    this.#vars.length = mark;
  }

  #setVar(name: string, value: unknown): void {
    for (let i = this.#vars.length - 1; i >= 0; i--) {
      const v = this.#vars[i] as Variable;
      if (v.name === name) {
        v.value = value;
        return;
      }
    }
    this.#fail(`undefined variable: ${name}`);
  }

  #setTopVar(n: number, value: unknown): void {
    (this.#vars[this.#vars.length - n] as Variable).value = value;
  }

  #varValue(name: string): unknown {
    for (let i = this.#vars.length - 1; i >= 0; i--) {
      const v = this.#vars[i] as Variable;
      if (v.name === name) return v.value;
    }
    return this.#fail(`undefined variable: ${name}`);
  }

  // --- walking --------------------------------------------------------------------------

  walk(dot: unknown, node: Node): void {
    this.#at(node);
    switch (node.kind) {
      case 'action': {
        const value = this.#evalPipeline(dot, node.pipe);
        if (node.pipe.decl.length === 0) this.#printValue(node, value);
        return;
      }
      case 'break':
        throw BREAK;
      case 'continue':
        throw CONTINUE;
      case 'if':
      case 'with':
        return this.#walkIfOrWith(dot, node);
      case 'list':
        for (const n of node.nodes) this.walk(dot, n);
        return;
      case 'range':
        return this.#walkRange(dot, node);
      case 'template':
        return this.#walkTemplate(dot, node);
      case 'text':
        this.#out.push(node.text);
        return;
    }
  }

  #walkIfOrWith(dot: unknown, node: BranchNode): void {
    const mark = this.#mark();
    try {
      const value = this.#evalPipeline(dot, node.pipe);
      if (isTrue(value)) this.walk(node.kind === 'with' ? value : dot, node.list);
      else if (node.elseList) this.walk(dot, node.elseList);
    } finally {
      this.#pop(mark);
    }
  }

  #walkRange(dot: unknown, node: BranchNode): void {
    this.#at(node);
    const outer = this.#mark();
    try {
      const value = this.#evalPipeline(dot, node.pipe);
      const mark = this.#mark();
      const decl = node.pipe.decl;
      const one = (key: unknown, elem: unknown): void => {
        if (decl.length > 0) {
          if (node.pipe.isAssign) {
            this.#setVar((decl[0] as VariableNode).ident[0] as string, decl.length > 1 ? key : elem);
          } else {
            this.#setTopVar(1, elem);
          }
        }
        if (decl.length > 1) {
          if (node.pipe.isAssign) this.#setVar((decl[1] as VariableNode).ident[0] as string, elem);
          else this.#setTopVar(2, key);
        }
        try {
          this.walk(elem, node.list);
        } catch (err) {
          if (err !== CONTINUE) throw err;
        } finally {
          this.#pop(mark);
        }
      };
      let ran = false;
      try {
        switch (goKind(value)) {
          case 'slice':
            sliceElements(value).forEach((e, i) => {
              ran = true;
              one(i, e);
            });
            break;
          case 'map':
            for (const [k, e] of sortedEntries(value)) {
              ran = true;
              one(k, e);
            }
            break;
          case 'int': {
            if (decl.length > 1) this.#fail(`can't use ${formatValue(value)} to iterate over more than one variable`);
            const n = Number(value);
            for (let i = 0; i < n; i++) {
              ran = true;
              one(i, i);
            }
            break;
          }
          case 'invalid':
          case 'nil':
            break;
          default:
            this.#fail(`range can't iterate over ${formatValue(value)}`);
        }
      } catch (err) {
        if (err !== BREAK) throw err;
        ran = true;
      }
      if (!ran && node.elseList) this.walk(dot, node.elseList);
    } finally {
      this.#pop(outer);
    }
  }

  #walkTemplate(dot: unknown, node: TemplateNode): void {
    this.#at(node);
    const tree = this.#trees.get(node.name);
    if (tree === undefined) this.#fail(`template ${quote(node.name)} not defined`);
    if (this.#depth >= MAX_TEMPLATE_DEPTH) this.#fail(`exceeded maximum template depth (${MAX_TEMPLATE_DEPTH})`);
    const newDot = this.#evalPipeline(dot, node.pipe);
    const inner = new ExecState(
      this.#source, this.#trees, this.#funcs, this.#missingKey, this.#out, node.name, newDot, this.#depth + 1,
    );
    inner.walk(newDot, tree);
  }

  #printValue(node: Node, value: unknown): void {
    this.#at(node);
    if (value === undefined) {
      this.#out.push('<no value>');
      return;
    }
    if (typeof value === 'function') this.#fail(`can't print ${nodeString(node)} of type func`);
    this.#out.push(formatValue(value));
  }

  // --- evaluation -----------------------------------------------------------------------

  #evalPipeline(dot: unknown, pipe: PipeNode | null): unknown {
    if (pipe === null) return undefined;
    this.#at(pipe);
    let value: Final = MISSING;
    for (const cmd of pipe.cmds) value = this.#evalCommand(dot, cmd, value);
    for (const v of pipe.decl) {
      const name = v.ident[0] as string;
      if (pipe.isAssign) this.#setVar(name, value);
      else this.#vars.push({ name, value });
    }
    return value;
  }

  #notAFunction(args: ArgNode[] | null, final: Final): void {
    if ((args !== null && args.length > 1) || final !== MISSING) {
      this.#fail(`can't give argument to non-function ${nodeString((args as ArgNode[])[0] as ArgNode)}`);
    }
  }

  #evalCommand(dot: unknown, cmd: CommandNode, final: Final): unknown {
    const first = cmd.args[0] as ArgNode;
    switch (first.kind) {
      case 'field':
        return this.#evalFieldNode(dot, first, cmd.args, final);
      case 'chain':
        return this.#evalChainNode(dot, first, cmd.args, final);
      case 'identifier':
        return this.#evalFunction(dot, first, cmd, cmd.args, final);
      case 'pipe':
        this.#notAFunction(cmd.args, final);
        return this.#evalPipeline(dot, first);
      case 'variable':
        return this.#evalVariableNode(dot, first, cmd.args, final);
      default:
        break;
    }
    this.#at(first);
    this.#notAFunction(cmd.args, final);
    switch (first.kind) {
      case 'bool':
        return first.value;
      case 'dot':
        return dot;
      case 'nil':
        return this.#fail('nil is not a command');
      case 'number':
        return this.#idealConstant(first);
      case 'string':
        return first.text;
    }
  }

  #idealConstant(n: NumberNode): unknown {
    this.#at(n);
    if (!n.isInt && !n.isFloat) this.#fail(`${n.text} overflows int`);
    return n.value;
  }

  #evalFieldNode(dot: unknown, field: FieldNode, args: ArgNode[] | null, final: Final): unknown {
    this.#at(field);
    return this.#evalFieldChain(dot, dot, field, field.ident, args, final);
  }

  #evalChainNode(dot: unknown, chain: ChainNode, args: ArgNode[] | null, final: Final): unknown {
    this.#at(chain);
    if (chain.node.kind === 'nil') this.#fail(`indirection through explicit nil in ${nodeString(chain)}`);
    const receiver = this.#evalArg(dot, null, chain.node);
    return this.#evalFieldChain(dot, receiver, chain, chain.fields, args, final);
  }

  #evalVariableNode(dot: unknown, v: VariableNode, args: ArgNode[] | null, final: Final): unknown {
    this.#at(v);
    const value = this.#varValue(v.ident[0] as string);
    if (v.ident.length === 1) {
      this.#notAFunction(args, final);
      return value;
    }
    return this.#evalFieldChain(dot, value, v, v.ident.slice(1), args, final);
  }

  #evalFieldChain(
    dot: unknown,
    receiver: unknown,
    node: AnyNode,
    ident: string[],
    args: ArgNode[] | null,
    final: Final,
  ): unknown {
    const n = ident.length;
    for (let i = 0; i < n - 1; i++) receiver = this.#evalField(dot, ident[i] as string, node, null, MISSING, receiver);
    return this.#evalField(dot, ident[n - 1] as string, node, args, final, receiver);
  }

  #evalField(
    dot: unknown,
    name: string,
    node: AnyNode,
    args: ArgNode[] | null,
    final: Final,
    receiver: unknown,
  ): unknown {
    if (receiver === undefined) {
      if (this.#missingKey === 'error') this.#fail(`nil data; no entry for key ${quote(name)}`);
      return undefined;
    }
    if (receiver === null) this.#fail(`nil pointer evaluating interface {}.${name}`);
    const hasArgs = (args !== null && args.length > 1) || final !== MISSING;
    const method = (fn: unknown): unknown =>
      this.#evalCall(dot, userFunc((fn as TemplateFunc).bind(receiver)), node, name, args, final);

    if (receiver instanceof FieldSource) {
      const value = receiver.lookupField(name);
      if (typeof value === 'function') return method(value);
      if (hasArgs) this.#fail(`${name} is not a method but has arguments`);
      return value;
    }
    const kind = goKind(receiver);
    if (kind === 'struct') {
      const m = structMember(receiver as object, name);
      if (m.found) {
        if (typeof m.value === 'function') return method(m.value);
        if (hasArgs) this.#fail(`${name} has arguments but cannot be invoked as function`);
        return m.value === undefined ? null : m.value;
      }
    } else if (kind === 'map') {
      const value = mapGet(receiver, name);
      if (typeof value === 'function') return method(value);
      if (hasArgs) this.#fail(`${name} is not a method but has arguments`);
      if (value !== undefined) return value;
      switch (this.#missingKey) {
        case 'error':
          return this.#fail(`map has no entry for key ${quote(name)}`);
        case 'zero': {
          const zero = mapZeroValue(receiver);
          return zero === null ? undefined : zero;
        }
        default:
          return undefined;
      }
    }
    return this.#fail(`can't evaluate field ${name} in type ${goTypeName(receiver)}`);
  }

  #evalFunction(dot: unknown, node: IdentifierNode, cmd: AnyNode, args: ArgNode[] | null, final: Final): unknown {
    this.#at(node);
    const spec = this.#funcs.get(node.name);
    if (spec === undefined) this.#fail(`${quote(node.name)} is not a defined function`);
    return this.#evalCall(dot, spec, cmd, node.name, args, final);
  }

  #evalCall(
    dot: unknown,
    spec: FuncSpec,
    node: AnyNode,
    name: string,
    argNodes: ArgNode[] | null,
    final: Final,
  ): unknown {
    const args = argNodes === null ? [] : argNodes.slice(1);
    const numIn = args.length + (final !== MISSING ? 1 : 0);
    const fixed = spec.params.length;
    if (spec.variadic !== undefined) {
      const least = Math.max(fixed, spec.minArgs ?? 0);
      if (numIn < least) this.#fail(`wrong number of args for ${name}: want at least ${least} got ${args.length}`);
    } else if (numIn !== fixed) {
      this.#fail(`wrong number of args for ${name}: want ${fixed} got ${numIn}`);
    }

    if (spec.special !== undefined) {
      // and/or stop at the first argument that decides the answer.
      let v: unknown;
      for (const arg of args) {
        v = this.#evalArg(dot, 'value', arg);
        if (isTrue(v) === (spec.special === 'or')) return v;
      }
      return final !== MISSING ? final : v;
    }

    const argv: unknown[] = [];
    args.forEach((arg, i) => {
      const type = i < fixed ? (spec.params[i] as ParamType) : (spec.variadic as ParamType);
      argv.push(this.#evalArg(dot, type, arg));
    });
    if (final !== MISSING) {
      const i = numIn - 1;
      const type = i < fixed ? (spec.params[i] as ParamType) : (spec.variadic as ParamType);
      argv.push(this.#validateType(final, type));
    }
    try {
      return spec.call(argv);
    } catch (err) {
      if (err instanceof ExecError || err === BREAK || err === CONTINUE) throw err;
      this.#at(node);
      return this.#fail(`error calling ${name}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  /** Evaluate an argument for a parameter of the given type (null: untyped, as a chain's receiver). */
  #evalArg(dot: unknown, type: ParamType | null, n: ArgNode): unknown {
    this.#at(n);
    switch (n.kind) {
      case 'dot':
        return this.#validateType(dot, type);
      case 'nil':
        if (type === null || type === 'any' || type === 'value') return null;
        return this.#fail(`cannot assign nil to ${paramTypeName(type)}`);
      case 'field':
        return this.#validateType(this.#evalFieldNode(dot, n, [n], MISSING), type);
      case 'variable':
        return this.#validateType(this.#evalVariableNode(dot, n, null, MISSING), type);
      case 'pipe':
        return this.#validateType(this.#evalPipeline(dot, n), type);
      case 'identifier':
        return this.#validateType(this.#evalFunction(dot, n, n, null, MISSING), type);
      case 'chain':
        return this.#validateType(this.#evalChainNode(dot, n, null, MISSING), type);
      default:
        break;
    }
    switch (type) {
      case 'bool':
        if (n.kind === 'bool') return n.value;
        return this.#fail(`expected bool; found ${nodeString(n)}`);
      case 'string':
        if (n.kind === 'string') return n.text;
        return this.#fail(`expected string; found ${nodeString(n)}`);
      case 'int':
        if (n.kind === 'number' && n.isInt) return n.value;
        return this.#fail(`expected integer; found ${nodeString(n)}`);
      default:
        // interface{} and reflect.Value: the literal's own type.
        if (n.kind === 'bool') return n.value;
        if (n.kind === 'number') return this.#idealConstant(n);
        return n.text;
    }
  }

  #validateType(value: unknown, type: ParamType | null): unknown {
    if (value === undefined) {
      if (type === null || type === 'value') return undefined;
      if (type === 'any') return null;
      return this.#fail(`invalid value; expected ${paramTypeName(type)}`);
    }
    switch (type) {
      case 'string':
        if (typeof value === 'string') return value;
        break;
      case 'int':
        if (goKind(value) === 'int') return Number(value);
        break;
      case 'bool':
        if (typeof value === 'boolean') return value;
        break;
      default:
        return value;
    }
    return this.#fail(`wrong type for value; expected ${paramTypeName(type)}; got ${goTypeName(value)}`);
  }
}
