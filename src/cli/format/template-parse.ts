/**
 * The parser of Go's text/template: tokens from the lexer become a tree of nodes, one tree
 * per template name ("" for the top level, others from {{define}} and {{block}}). Node
 * positions and the strings nodes print as follow Go, because execution errors quote them:
 * `template: :1:8: executing "" at <.State.Foo>: ...` names the node at byte 8.
 */
import { quote } from '../../util/go-fmt.js';
import { Lexer, type Token, type TokenType, tokenString } from './template-lex.js';

export interface FieldNode { kind: 'field'; pos: number; ident: string[] }
export interface VariableNode { kind: 'variable'; pos: number; ident: string[] }
export interface DotNode { kind: 'dot'; pos: number }
export interface NilNode { kind: 'nil'; pos: number }
export interface BoolNode { kind: 'bool'; pos: number; value: boolean }
export interface NumberNode {
  kind: 'number';
  pos: number;
  text: string;
  isInt: boolean;
  isFloat: boolean;
  value: number;
}
export interface StringNode { kind: 'string'; pos: number; quoted: string; text: string }
export interface IdentifierNode { kind: 'identifier'; pos: number; name: string }
export interface ChainNode { kind: 'chain'; pos: number; node: ArgNode; fields: string[] }
export interface PipeNode {
  kind: 'pipe';
  pos: number;
  isAssign: boolean;
  decl: VariableNode[];
  cmds: CommandNode[];
}
export interface CommandNode { kind: 'command'; pos: number; args: ArgNode[] }

export type ArgNode =
  | FieldNode
  | VariableNode
  | DotNode
  | NilNode
  | BoolNode
  | NumberNode
  | StringNode
  | IdentifierNode
  | ChainNode
  | PipeNode;

export interface ListNode { kind: 'list'; pos: number; nodes: Node[] }
export interface TextNode { kind: 'text'; pos: number; text: string }
export interface ActionNode { kind: 'action'; pos: number; pipe: PipeNode }
export interface BranchNode {
  kind: 'if' | 'range' | 'with';
  pos: number;
  pipe: PipeNode;
  list: ListNode;
  elseList: ListNode | null;
}
export interface TemplateNode { kind: 'template'; pos: number; name: string; pipe: PipeNode | null }
export interface LoopControlNode { kind: 'break' | 'continue'; pos: number }

export type Node = ListNode | TextNode | ActionNode | BranchNode | TemplateNode | LoopControlNode;

/** {{end}} and {{else}} only exist while parsing. */
interface EndNode { kind: 'end'; pos: number }
interface ElseNode { kind: 'else'; pos: number }
type ParsedNode = Node | EndNode | ElseNode;

export type AnyNode = ParsedNode | ArgNode | CommandNode;

/** A node as Go prints it in error messages. */
export function nodeString(n: AnyNode): string {
  switch (n.kind) {
    case 'field':
      return `.${n.ident.join('.')}`;
    case 'variable':
      return n.ident.join('.');
    case 'dot':
      return '.';
    case 'nil':
      return 'nil';
    case 'bool':
      return String(n.value);
    case 'number':
      return n.text;
    case 'string':
      return n.quoted;
    case 'identifier':
      return n.name;
    case 'chain': {
      const inner = nodeString(n.node);
      return (n.node.kind === 'pipe' ? `(${inner})` : inner) + n.fields.map((f) => `.${f}`).join('');
    }
    case 'pipe': {
      let s = '';
      if (n.decl.length > 0) {
        s = `${n.decl.map((v) => nodeString(v)).join(', ')} ${n.isAssign ? '=' : ':='} `;
      }
      return s + n.cmds.map((c) => nodeString(c)).join(' | ');
    }
    case 'command':
      return n.args.map((a) => (a.kind === 'pipe' ? `(${nodeString(a)})` : nodeString(a))).join(' ');
    case 'list':
      return n.nodes.map((x) => nodeString(x)).join('');
    case 'text':
      return n.text;
    case 'action':
      return `{{${nodeString(n.pipe)}}}`;
    case 'if':
    case 'range':
    case 'with': {
      const els = n.elseList ? `{{else}}${nodeString(n.elseList)}` : '';
      return `{{${n.kind} ${nodeString(n.pipe)}}}${nodeString(n.list)}${els}{{end}}`;
    }
    case 'template':
      return n.pipe ? `{{template ${quote(n.name)} ${nodeString(n.pipe)}}}` : `{{template ${quote(n.name)}}}`;
    case 'break':
      return '{{break}}';
    case 'continue':
      return '{{continue}}';
    case 'end':
      return '{{end}}';
    case 'else':
      return '{{else}}';
  }
}

/** A parse failure, with Go's message ("template: :1: unclosed action"). */
export class TemplateParseError extends Error {}

const MAX_PAREN_DEPTH = 1000;

/** Parse a template; `hasFunction` says which function names exist. */
export function parseTemplate(
  text: string,
  hasFunction: (name: string) => boolean,
): Map<string, ListNode> {
  return new Parser(text, hasFunction).parseAll();
}

class Parser {
  readonly #lexer: Lexer;
  readonly #hasFunction: (name: string) => boolean;
  readonly #trees = new Map<string, ListNode>();
  /** Tokens pushed back, the next one last. */
  readonly #pushed: Token[] = [];
  /** Line of the newest token read from the lexer: the line Go reports. */
  #line = 1;
  #vars: string[] = ['$'];
  #actionLine = 0;
  #rangeDepth = 0;
  #parenDepth = 0;

  constructor(text: string, hasFunction: (name: string) => boolean) {
    this.#hasFunction = hasFunction;
    this.#lexer = new Lexer(text, { breakOk: !hasFunction('break'), continueOk: !hasFunction('continue') });
  }

  // --- tokens ---------------------------------------------------------------------------

  #next(): Token {
    const t = this.#pushed.pop();
    if (t) return t;
    const fresh = this.#lexer.nextToken();
    this.#line = fresh.line;
    return fresh;
  }

  #backup(t: Token): void {
    this.#pushed.push(t);
  }

  #peek(): Token {
    const t = this.#next();
    this.#backup(t);
    return t;
  }

  #nextNonSpace(): Token {
    for (;;) {
      const t = this.#next();
      if (t.type !== 'space') return t;
    }
  }

  #peekNonSpace(): Token {
    const t = this.#nextNonSpace();
    this.#backup(t);
    return t;
  }

  #fail(message: string): never {
    throw new TemplateParseError(`template: :${this.#line}: ${message}`);
  }

  #unexpected(t: Token, context: string): never {
    if (t.type === 'error') {
      let extra = '';
      if (this.#actionLine !== 0 && this.#actionLine !== t.line) {
        extra = ` in action started at :${this.#actionLine}`;
        if (t.val.endsWith(' action')) extra = extra.slice(' in action'.length);
      }
      this.#fail(`${t.val}${extra}`);
    }
    this.#fail(`unexpected ${tokenString(t)} in ${context}`);
  }

  #expect(type: TokenType, context: string): Token {
    const t = this.#nextNonSpace();
    if (t.type !== type) this.#unexpected(t, context);
    return t;
  }

  // --- structure ------------------------------------------------------------------------

  parseAll(): Map<string, ListNode> {
    const root: ListNode = { kind: 'list', pos: this.#peek().pos, nodes: [] };
    while (this.#peek().type !== 'eof') {
      if (this.#peek().type === 'leftDelim') {
        const delim = this.#next();
        const word = this.#nextNonSpace();
        if (word.type === 'define') {
          this.#parseDefinition();
          continue;
        }
        this.#backup(word);
        this.#backup(delim);
      }
      const n = this.#textOrAction();
      if (n.kind === 'end' || n.kind === 'else') this.#fail(`unexpected ${nodeString(n)}`);
      root.nodes.push(n);
    }
    this.#add('', root);
    return this.#trees;
  }

  #add(name: string, list: ListNode): void {
    const existing = this.#trees.get(name);
    if (existing === undefined || isEmptyTree(existing)) {
      this.#trees.set(name, list);
      return;
    }
    if (!isEmptyTree(list)) this.#fail(`template: multiple definition of template ${quote(name)}`);
  }

  /** Run a sub-template's parse with its own variables, as Go parses each tree apart. */
  #subTree<T>(fn: () => T): T {
    const vars = this.#vars;
    const depth = this.#rangeDepth;
    this.#vars = ['$'];
    this.#rangeDepth = 0;
    try {
      return fn();
    } finally {
      this.#vars = vars;
      this.#rangeDepth = depth;
    }
  }

  #parseDefinition(): void {
    const context = 'define clause';
    const nameToken = this.#nextNonSpace();
    if (nameToken.type !== 'string' && nameToken.type !== 'rawString') this.#unexpected(nameToken, context);
    const name = this.#unquote(nameToken.val);
    this.#expect('rightDelim', context);
    this.#subTree(() => {
      const [list, end] = this.#itemList();
      if (end.kind !== 'end') this.#fail(`unexpected ${nodeString(end)} in ${context}`);
      this.#add(name, list);
    });
  }

  #itemList(): [ListNode, EndNode | ElseNode] {
    const list: ListNode = { kind: 'list', pos: this.#peekNonSpace().pos, nodes: [] };
    while (this.#peekNonSpace().type !== 'eof') {
      const n = this.#textOrAction();
      if (n.kind === 'end' || n.kind === 'else') return [list, n];
      list.nodes.push(n);
    }
    this.#fail('unexpected EOF');
  }

  #textOrAction(): ParsedNode {
    const t = this.#nextNonSpace();
    switch (t.type) {
      case 'text':
        return { kind: 'text', pos: t.pos, text: t.val };
      case 'leftDelim':
        this.#actionLine = t.line;
        try {
          return this.#action();
        } finally {
          this.#actionLine = 0;
        }
      default:
        this.#unexpected(t, 'input');
    }
  }

  #action(): ParsedNode {
    const t = this.#nextNonSpace();
    switch (t.type) {
      case 'block':
        return this.#blockControl();
      case 'break':
      case 'continue':
        return this.#loopControl(t);
      case 'else':
        return this.#elseControl();
      case 'end':
        return { kind: 'end', pos: this.#expect('rightDelim', 'end').pos };
      case 'if':
      case 'range':
      case 'with':
        return this.#control(t.type);
      case 'template':
        return this.#templateControl();
      default:
        break;
    }
    this.#backup(t);
    const first = this.#peek();
    return { kind: 'action', pos: first.pos, pipe: this.#pipeline('command', 'rightDelim') };
  }

  #loopControl(t: Token): LoopControlNode {
    const kind = t.type === 'break' ? 'break' : 'continue';
    const next = this.#nextNonSpace();
    if (next.type !== 'rightDelim') this.#unexpected(next, `{{${kind}}}`);
    if (this.#rangeDepth === 0) this.#fail(`{{${kind}}} outside {{range}}`);
    return { kind, pos: t.pos };
  }

  #elseControl(): ElseNode {
    const peek = this.#peekNonSpace();
    // {{else if ...}} and {{else with ...}} read as {{else}}{{if ...}}: the keyword stays pending.
    if (peek.type === 'if' || peek.type === 'with') return { kind: 'else', pos: peek.pos };
    return { kind: 'else', pos: this.#expect('rightDelim', 'else').pos };
  }

  #control(kind: 'if' | 'range' | 'with'): BranchNode {
    const saved = this.#vars.length;
    try {
      const pipe = this.#pipeline(kind, 'rightDelim');
      if (kind === 'range') this.#rangeDepth++;
      let [list, next] = this.#itemList();
      if (kind === 'range') this.#rangeDepth--;
      let elseList: ListNode | null = null;
      if (next.kind === 'else') {
        const chained = this.#peek().type;
        if ((kind === 'if' && chained === 'if') || (kind === 'with' && chained === 'with')) {
          this.#next();
          elseList = { kind: 'list', pos: next.pos, nodes: [this.#control(kind)] };
        } else {
          [elseList, next] = this.#itemList();
          if (next.kind !== 'end') this.#fail(`expected end; found ${nodeString(next)}`);
        }
      }
      return { kind, pos: pipe.pos, pipe, list, elseList };
    } finally {
      this.#vars.length = saved;
    }
  }

  #templateName(t: Token, context: string): string {
    if (t.type !== 'string' && t.type !== 'rawString') this.#unexpected(t, context);
    return this.#unquote(t.val);
  }

  #blockControl(): TemplateNode {
    const context = 'block clause';
    const t = this.#nextNonSpace();
    const name = this.#templateName(t, context);
    const pipe = this.#pipeline(context, 'rightDelim');
    this.#subTree(() => {
      const [list, end] = this.#itemList();
      if (end.kind !== 'end') this.#fail(`unexpected ${nodeString(end)} in ${context}`);
      this.#add(name, list);
    });
    return { kind: 'template', pos: t.pos, name, pipe };
  }

  #templateControl(): TemplateNode {
    const context = 'template clause';
    const t = this.#nextNonSpace();
    const name = this.#templateName(t, context);
    let pipe: PipeNode | null = null;
    const next = this.#nextNonSpace();
    if (next.type !== 'rightDelim') {
      this.#backup(next);
      pipe = this.#pipeline(context, 'rightDelim');
    }
    return { kind: 'template', pos: t.pos, name, pipe };
  }

  // --- pipelines ------------------------------------------------------------------------

  #pipeline(context: string, end: 'rightDelim' | 'rightParen'): PipeNode {
    const first = this.#peekNonSpace();
    const pipe: PipeNode = { kind: 'pipe', pos: first.pos, isAssign: false, decl: [], cmds: [] };
    for (;;) {
      const v = this.#peekNonSpace();
      if (v.type !== 'variable') break;
      this.#next();
      const afterVariable = this.#peek();
      const next = this.#peekNonSpace();
      if (next.type === 'assign' || next.type === 'declare') {
        pipe.isAssign = next.type === 'assign';
        this.#nextNonSpace();
        pipe.decl.push({ kind: 'variable', pos: v.pos, ident: v.val.split('.') });
        this.#vars.push(v.val);
        break;
      }
      if (next.type === 'char' && next.val === ',') {
        this.#nextNonSpace();
        pipe.decl.push({ kind: 'variable', pos: v.pos, ident: v.val.split('.') });
        this.#vars.push(v.val);
        if (context === 'range' && pipe.decl.length < 2) {
          const t = this.#peekNonSpace().type;
          if (t === 'variable' || t === 'rightDelim' || t === 'rightParen') continue;
          this.#fail('range can only initialize variables');
        }
        this.#fail(`too many declarations in ${context}`);
      }
      // Not a declaration: put the variable (and the space after it) back.
      if (afterVariable.type === 'space') this.#backup(afterVariable);
      this.#backup(v);
      break;
    }
    for (;;) {
      const t = this.#nextNonSpace();
      if (t.type === end) {
        this.#checkPipeline(pipe, context);
        return pipe;
      }
      switch (t.type) {
        case 'bool':
        case 'charConstant':
        case 'complex':
        case 'dot':
        case 'field':
        case 'identifier':
        case 'number':
        case 'nil':
        case 'rawString':
        case 'string':
        case 'variable':
        case 'leftParen':
          this.#backup(t);
          pipe.cmds.push(this.#command());
          break;
        default:
          this.#unexpected(t, context);
      }
    }
  }

  #checkPipeline(pipe: PipeNode, context: string): void {
    if (pipe.cmds.length === 0) this.#fail(`missing value for ${context}`);
    pipe.cmds.slice(1).forEach((c, i) => {
      const k = c.args[0]?.kind;
      if (k === 'bool' || k === 'dot' || k === 'nil' || k === 'number' || k === 'string') {
        this.#fail(`non executable command in pipeline stage ${i + 2}`);
      }
    });
  }

  #command(): CommandNode {
    const cmd: CommandNode = { kind: 'command', pos: this.#peekNonSpace().pos, args: [] };
    for (;;) {
      this.#peekNonSpace();
      const operand = this.#operand();
      if (operand) cmd.args.push(operand);
      const t = this.#next();
      if (t.type === 'space') continue;
      if (t.type === 'rightDelim' || t.type === 'rightParen') this.#backup(t);
      else if (t.type !== 'pipe') this.#unexpected(t, 'operand');
      break;
    }
    if (cmd.args.length === 0) this.#fail('empty command');
    return cmd;
  }

  #operand(): ArgNode | null {
    const node = this.#term();
    if (!node) return null;
    if (this.#peek().type !== 'field') return node;
    const pos = this.#peek().pos;
    const fields: string[] = [];
    while (this.#peek().type === 'field') fields.push(this.#next().val.slice(1));
    switch (node.kind) {
      case 'field':
        return { kind: 'field', pos, ident: [...node.ident, ...fields] };
      case 'variable':
        return { kind: 'variable', pos, ident: [...node.ident, ...fields] };
      case 'bool':
      case 'string':
      case 'number':
      case 'nil':
      case 'dot':
        return this.#fail(`unexpected . after term ${quote(nodeString(node))}`);
      default:
        return { kind: 'chain', pos, node, fields };
    }
  }

  #term(): ArgNode | null {
    const t = this.#nextNonSpace();
    switch (t.type) {
      case 'identifier':
        if (!this.#hasFunction(t.val)) this.#fail(`function ${quote(t.val)} not defined`);
        return { kind: 'identifier', pos: t.pos, name: t.val };
      case 'dot':
        return { kind: 'dot', pos: t.pos };
      case 'nil':
        return { kind: 'nil', pos: t.pos };
      case 'variable': {
        const ident = t.val.split('.');
        if (!this.#vars.includes(ident[0] as string)) this.#fail(`undefined variable ${quote(ident[0] as string)}`);
        return { kind: 'variable', pos: t.pos, ident };
      }
      case 'field':
        return { kind: 'field', pos: t.pos, ident: t.val.slice(1).split('.') };
      case 'bool':
        return { kind: 'bool', pos: t.pos, value: t.val === 'true' };
      case 'charConstant':
      case 'complex':
      case 'number':
        return this.#number(t);
      case 'leftParen': {
        if (this.#parenDepth >= MAX_PAREN_DEPTH) this.#fail('max expression depth exceeded');
        this.#parenDepth++;
        try {
          return this.#pipeline('parenthesized pipeline', 'rightParen');
        } finally {
          this.#parenDepth--;
        }
      }
      case 'string':
      case 'rawString':
        return { kind: 'string', pos: t.pos, quoted: t.val, text: this.#unquote(t.val) };
      default:
        this.#backup(t);
        return null;
    }
  }

  #number(t: Token): NumberNode {
    const text = t.val;
    if (t.type === 'charConstant') {
      const r = unquoteChar(text);
      if (r === undefined) this.#fail(`malformed character constant: ${text}`);
      return { kind: 'number', pos: t.pos, text, isInt: true, isFloat: true, value: r };
    }
    if (t.type === 'complex' || text.endsWith('i')) {
      this.#fail(`complex constants are not supported: ${text}`);
    }
    const asInt = parseGoInt(text);
    if (asInt !== undefined) {
      return { kind: 'number', pos: t.pos, text, isInt: true, isFloat: true, value: asInt };
    }
    const asFloat = parseGoFloat(text);
    if (asFloat !== undefined) {
      if (!/[.eEpP]/.test(text)) this.#fail(`integer overflow: ${quote(text)}`);
      return { kind: 'number', pos: t.pos, text, isInt: Number.isInteger(asFloat), isFloat: true, value: asFloat };
    }
    this.#fail(`illegal number syntax: ${quote(text)}`);
  }

  #unquote(quoted: string): string {
    const s = unquoteString(quoted);
    if (s === undefined) this.#fail('invalid syntax');
    return s;
  }
}

function isEmptyTree(list: ListNode): boolean {
  return list.nodes.every((n) => {
    if (n.kind === 'text') return n.text.trim() === '';
    if (n.kind === 'list') return isEmptyTree(n);
    return false;
  });
}

// --- literals ---------------------------------------------------------------------------

/** strconv.ParseInt(s, 0, 64), or undefined. */
function parseGoInt(text: string): number | undefined {
  const m = /^([+-]?)(0[xX][0-9a-fA-F_]+|0[oO][0-7_]+|0[bB][01_]+|0[0-7_]*|[1-9][0-9_]*)$/.exec(text);
  if (!m) return undefined;
  let body = m[2] as string;
  if (body.includes('_')) {
    // Underscores only between digits, or right after a base prefix.
    if (!/^(0[xXoObB]_?|0_?)?[0-9a-fA-F]+(_[0-9a-fA-F]+)*$/.test(body)) return undefined;
    body = body.replace(/_/g, '');
  }
  let value: bigint;
  if (/^0[xXoObB]/.test(body)) value = BigInt(body.toLowerCase());
  else if (body.length > 1 && body.startsWith('0')) value = BigInt(`0o${body.slice(1)}`);
  else value = BigInt(body);
  if (m[1] === '-') value = -value;
  if (value > 0x7fffffffffffffffn || value < -0x8000000000000000n) return undefined;
  return Number(value);
}

/** strconv.ParseFloat(s, 64) for decimal syntax, or undefined. */
function parseGoFloat(text: string): number | undefined {
  if (!/^[+-]?(\d(_?\d)*(\.(\d(_?\d)*)?)?|\.\d(_?\d)*)([eE][+-]?\d(_?\d)*)?$/.test(text)) return undefined;
  return Number(text.replace(/_/g, ''));
}

const SIMPLE_ESCAPES: Record<string, number> = {
  a: 0x07, b: 0x08, f: 0x0c, n: 0x0a, r: 0x0d, t: 0x09, v: 0x0b, '\\': 0x5c,
};

/**
 * Decode the escapes in the body of a Go string or character literal into bytes.
 * Returns undefined on bad syntax.
 */
function decodeEscapes(body: string, quoteChar: string): number[] | undefined {
  const bytes: number[] = [];
  const pushRune = (r: number): void => {
    bytes.push(...Buffer.from(String.fromCodePoint(r), 'utf8'));
  };
  for (let i = 0; i < body.length; ) {
    const cp = body.codePointAt(i)!;
    const ch = String.fromCodePoint(cp);
    if (ch === quoteChar || ch === '\n') return undefined;
    if (ch !== '\\') {
      pushRune(cp);
      i += ch.length;
      continue;
    }
    const e = body[i + 1];
    if (e === undefined) return undefined;
    i += 2;
    if (e in SIMPLE_ESCAPES) {
      bytes.push(SIMPLE_ESCAPES[e] as number);
    } else if (e === quoteChar) {
      bytes.push(e.charCodeAt(0));
    } else if (e === 'x') {
      const h = body.slice(i, i + 2);
      if (!/^[0-9a-fA-F]{2}$/.test(h)) return undefined;
      bytes.push(parseInt(h, 16));
      i += 2;
    } else if (e === 'u' || e === 'U') {
      const n = e === 'u' ? 4 : 8;
      const h = body.slice(i, i + n);
      if (!new RegExp(`^[0-9a-fA-F]{${n}}$`).test(h)) return undefined;
      const r = parseInt(h, 16);
      if (r > 0x10ffff || (r >= 0xd800 && r <= 0xdfff)) return undefined;
      pushRune(r);
      i += n;
    } else if (e >= '0' && e <= '7') {
      const o = body.slice(i - 1, i + 2);
      if (!/^[0-7]{3}$/.test(o)) return undefined;
      const v = parseInt(o, 8);
      if (v > 255) return undefined;
      bytes.push(v);
      i += 2;
    } else {
      return undefined;
    }
  }
  return bytes;
}

/** strconv.Unquote for "..." and `...` literals. */
export function unquoteString(quoted: string): string | undefined {
  if (quoted.length < 2) return undefined;
  const q = quoted[0];
  if (q !== quoted[quoted.length - 1]) return undefined;
  const body = quoted.slice(1, -1);
  if (q === '`') return body.includes('`') ? undefined : body.replace(/\r/g, '');
  if (q !== '"') return undefined;
  const bytes = decodeEscapes(body, '"');
  return bytes === undefined ? undefined : Buffer.from(bytes).toString('utf8');
}

/** The rune of a Go character literal such as 'a', '\n' or '\u00e9'. */
function unquoteChar(text: string): number | undefined {
  if (text.length < 3 || !text.startsWith("'") || !text.endsWith("'")) return undefined;
  const body = text.slice(1, -1);
  const bytes = decodeEscapes(body, "'");
  if (bytes === undefined || bytes.length === 0) return undefined;
  if (body.startsWith('\\') && (body[1] === 'x' || (body[1]! >= '0' && body[1]! <= '7'))) {
    return bytes.length === 1 ? bytes[0] : undefined;
  }
  const s = Buffer.from(bytes).toString('utf8');
  const runes = Array.from(s);
  return runes.length === 1 ? (runes[0] as string).codePointAt(0) : undefined;
}
