/**
 * The lexer of Go's text/template: text between actions, and inside `{{ }}` the tokens of
 * the action language. Trim markers (`{{- ` and ` -}}`) and comments are handled here, so
 * the parser never sees them. Positions are indexes into the source string; lines count
 * from 1. Error tokens carry Go's messages ("unclosed action", "bad character U+0021 '!'").
 */
import { quote } from '../../util/go-fmt.js';

export type TokenType =
  | 'error'
  | 'bool'
  | 'char'
  | 'charConstant'
  | 'complex'
  | 'assign'
  | 'declare'
  | 'eof'
  | 'field'
  | 'identifier'
  | 'leftDelim'
  | 'leftParen'
  | 'number'
  | 'pipe'
  | 'rawString'
  | 'rightDelim'
  | 'rightParen'
  | 'space'
  | 'string'
  | 'text'
  | 'variable'
  // keywords
  | 'block'
  | 'break'
  | 'continue'
  | 'dot'
  | 'define'
  | 'else'
  | 'end'
  | 'if'
  | 'nil'
  | 'range'
  | 'template'
  | 'with';

export interface Token {
  type: TokenType;
  pos: number;
  val: string;
  line: number;
}

const KEYWORDS: ReadonlySet<string> = new Set([
  'block', 'break', 'continue', 'define', 'else', 'end', 'if', 'nil', 'range', 'template', 'with',
]);

export function isKeywordToken(t: Token): boolean {
  return t.type === 'dot' || KEYWORDS.has(t.type);
}

/** A token as Go's parser names it in "unexpected X in Y". */
export function tokenString(t: Token): string {
  if (t.type === 'eof') return 'EOF';
  if (t.type === 'error') return t.val;
  if (isKeywordToken(t)) return `<${t.val}>`;
  const runes = Array.from(t.val);
  if (Buffer.byteLength(t.val) > 10) return `${quote(runes.slice(0, 10).join(''))}...`;
  return quote(t.val);
}

const EOF = -1;
const LEFT = '{{';
const RIGHT = '}}';
const SPACE_CHARS = ' \t\r\n';

function isSpace(r: number): boolean {
  return r === 0x20 || r === 0x09 || r === 0x0d || r === 0x0a;
}

const ALNUM = /^[\p{L}\p{Nd}_]$/u;

function isAlphaNumeric(r: number): boolean {
  return r >= 0 && ALNUM.test(String.fromCodePoint(r));
}

/** Go's %#U: U+0021 '!' */
export function runeDescription(r: number): string {
  if (r < 0) return 'U+FFFFFFFFFFFFFFFF';
  const u = `U+${r.toString(16).toUpperCase().padStart(4, '0')}`;
  const ch = String.fromCodePoint(r);
  return /^[\p{L}\p{M}\p{N}\p{P}\p{S} ]$/u.test(ch) ? `${u} '${ch}'` : u;
}

function hasLeftTrimMarker(s: string, at: number): boolean {
  return s[at] === '-' && at + 1 < s.length && isSpace(s.charCodeAt(at + 1));
}

function hasRightTrimMarker(s: string, at: number): boolean {
  return at + 1 < s.length && isSpace(s.charCodeAt(at)) && s[at + 1] === '-';
}

function countNewlines(s: string): number {
  let n = 0;
  for (let i = s.indexOf('\n'); i >= 0; i = s.indexOf('\n', i + 1)) n++;
  return n;
}

export interface LexOptions {
  /** `break` and `continue` are keywords unless a function of that name exists. */
  breakOk: boolean;
  continueOk: boolean;
}

export class Lexer {
  readonly #input: string;
  readonly #options: LexOptions;
  #pos = 0;
  #start = 0;
  #atEof = false;
  #parenDepth = 0;
  #line = 1;
  #startLine = 1;
  #insideAction = false;
  #finished = false;

  constructor(input: string, options: LexOptions) {
    this.#input = input;
    this.#options = options;
  }

  nextToken(): Token {
    if (this.#finished) return { type: 'eof', pos: this.#pos, val: '', line: this.#startLine };
    return this.#insideAction ? this.#lexInsideAction() : this.#lexText();
  }

  // --- rune reading ---------------------------------------------------------------------

  #next(): number {
    if (this.#pos >= this.#input.length) {
      this.#atEof = true;
      return EOF;
    }
    const r = this.#input.codePointAt(this.#pos)!;
    this.#pos += r > 0xffff ? 2 : 1;
    if (r === 0x0a) this.#line++;
    return r;
  }

  #backup(): void {
    if (this.#atEof) {
      this.#atEof = false;
      return;
    }
    if (this.#pos <= 0) return;
    const lo = this.#input.charCodeAt(this.#pos - 1);
    const step = lo >= 0xdc00 && lo <= 0xdfff && this.#pos >= 2 ? 2 : 1;
    this.#pos -= step;
    if (lo === 0x0a) this.#line--;
  }

  #peek(): number {
    const r = this.#next();
    this.#backup();
    return r;
  }

  #accept(valid: string): boolean {
    const r = this.#next();
    if (r !== EOF && valid.includes(String.fromCodePoint(r))) return true;
    this.#backup();
    return false;
  }

  #acceptRun(valid: string): void {
    for (;;) {
      const r = this.#next();
      if (r === EOF || !valid.includes(String.fromCodePoint(r))) break;
    }
    this.#backup();
  }

  #item(type: TokenType): Token {
    const t: Token = { type, pos: this.#start, val: this.#input.slice(this.#start, this.#pos), line: this.#startLine };
    this.#start = this.#pos;
    this.#startLine = this.#line;
    return t;
  }

  #ignore(): void {
    this.#line += countNewlines(this.#input.slice(this.#start, this.#pos));
    this.#start = this.#pos;
    this.#startLine = this.#line;
  }

  #error(message: string): Token {
    const t: Token = { type: 'error', pos: this.#start, val: message, line: this.#startLine };
    this.#finished = true;
    return t;
  }

  // --- states ---------------------------------------------------------------------------

  #lexText(): Token {
    const input = this.#input;
    const x = input.indexOf(LEFT, this.#pos);
    if (x >= 0) {
      if (x > this.#pos) {
        this.#pos = x;
        let trim = 0;
        if (hasLeftTrimMarker(input, x + LEFT.length)) {
          const text = input.slice(this.#start, this.#pos);
          trim = text.length - trimRight(text).length;
        }
        this.#pos -= trim;
        this.#line += countNewlines(input.slice(this.#start, this.#pos));
        const t = this.#item('text');
        this.#pos += trim;
        this.#ignore();
        if (t.val.length > 0) return t;
      }
      return this.#lexLeftDelim();
    }
    this.#pos = input.length;
    if (this.#pos > this.#start) {
      this.#line += countNewlines(input.slice(this.#start, this.#pos));
      return this.#item('text');
    }
    this.#finished = true;
    return this.#item('eof');
  }

  #atRightDelim(): { delim: boolean; trim: boolean } {
    const input = this.#input;
    if (hasRightTrimMarker(input, this.#pos) && input.startsWith(RIGHT, this.#pos + 2)) {
      return { delim: true, trim: true };
    }
    return { delim: input.startsWith(RIGHT, this.#pos), trim: false };
  }

  #lexLeftDelim(): Token {
    const input = this.#input;
    this.#pos += LEFT.length;
    const trim = hasLeftTrimMarker(input, this.#pos);
    const after = trim ? 2 : 0;
    if (input.startsWith('/*', this.#pos + after)) {
      this.#pos += after;
      this.#ignore();
      return this.#lexComment();
    }
    const t = this.#item('leftDelim');
    this.#insideAction = true;
    this.#pos += after;
    this.#ignore();
    this.#parenDepth = 0;
    return t;
  }

  #lexComment(): Token {
    const input = this.#input;
    this.#pos += 2;
    const x = input.indexOf('*/', this.#pos);
    if (x < 0) return this.#error('unclosed comment');
    this.#pos = x + 2;
    const { delim, trim } = this.#atRightDelim();
    if (!delim) return this.#error('comment ends before closing delimiter');
    this.#line += countNewlines(input.slice(this.#start, this.#pos));
    this.#item('text'); // the comment itself is dropped
    if (trim) this.#pos += 2;
    this.#pos += RIGHT.length;
    if (trim) this.#pos += leftTrimLength(input, this.#pos);
    this.#ignore();
    return this.#lexText();
  }

  #lexRightDelim(): Token {
    const { trim } = this.#atRightDelim();
    if (trim) {
      this.#pos += 2;
      this.#ignore();
    }
    this.#pos += RIGHT.length;
    const t = this.#item('rightDelim');
    if (trim) {
      this.#pos += leftTrimLength(this.#input, this.#pos);
      this.#ignore();
    }
    this.#insideAction = false;
    return t;
  }

  #lexInsideAction(): Token {
    if (this.#atRightDelim().delim) {
      if (this.#parenDepth === 0) return this.#lexRightDelim();
      return this.#error('unclosed left paren');
    }
    const r = this.#next();
    if (r === EOF) return this.#error('unclosed action');
    if (isSpace(r)) {
      this.#backup();
      return this.#lexSpace();
    }
    switch (r) {
      case 0x3d: // =
        return this.#item('assign');
      case 0x3a: // :
        if (this.#next() !== 0x3d) return this.#error('expected :=');
        return this.#item('declare');
      case 0x7c: // |
        return this.#item('pipe');
      case 0x22: // "
        return this.#lexQuote();
      case 0x60: // `
        return this.#lexRawQuote();
      case 0x24: // $
        return this.#lexVariable();
      case 0x27: // '
        return this.#lexChar();
      case 0x28: // (
        this.#parenDepth++;
        return this.#item('leftParen');
      case 0x29: // )
        this.#parenDepth--;
        if (this.#parenDepth < 0) return this.#error('unexpected right paren');
        return this.#item('rightParen');
      case 0x2e: { // .
        const c = this.#input.charCodeAt(this.#pos);
        if (this.#pos < this.#input.length && (c < 0x30 || c > 0x39)) {
          return this.#lexFieldOrVariable('field');
        }
        this.#backup();
        return this.#lexNumber();
      }
      default:
        break;
    }
    if (r === 0x2b || r === 0x2d || (r >= 0x30 && r <= 0x39)) {
      this.#backup();
      return this.#lexNumber();
    }
    if (isAlphaNumeric(r)) {
      this.#backup();
      return this.#lexIdentifier();
    }
    if (r <= 0x7e && r >= 0x20) return this.#item('char');
    return this.#error(`unrecognized character in action: ${runeDescription(r)}`);
  }

  #lexSpace(): Token {
    let spaces = 0;
    while (isSpace(this.#peek())) {
      this.#next();
      spaces++;
    }
    // " -}}" starts with a space: leave it to the right delimiter.
    if (hasRightTrimMarker(this.#input, this.#pos - 1) && this.#input.startsWith(RIGHT, this.#pos + 1)) {
      this.#backup();
      if (spaces === 1) return this.#lexRightDelim();
    }
    return this.#item('space');
  }

  #lexIdentifier(): Token {
    for (;;) {
      const r = this.#next();
      if (isAlphaNumeric(r)) continue;
      this.#backup();
      const word = this.#input.slice(this.#start, this.#pos);
      if (!this.#atTerminator()) return this.#error(`bad character ${runeDescription(r)}`);
      if (KEYWORDS.has(word)) {
        if ((word === 'break' && !this.#options.breakOk) || (word === 'continue' && !this.#options.continueOk)) {
          return this.#item('identifier');
        }
        return this.#item(word as TokenType);
      }
      if (word === 'true' || word === 'false') return this.#item('bool');
      return this.#item('identifier');
    }
  }

  #lexVariable(): Token {
    if (this.#atTerminator()) return this.#item('variable');
    return this.#lexFieldOrVariable('variable');
  }

  #lexFieldOrVariable(type: 'field' | 'variable'): Token {
    if (this.#atTerminator()) return this.#item(type === 'variable' ? 'variable' : 'dot');
    let r: number;
    for (;;) {
      r = this.#next();
      if (!isAlphaNumeric(r)) {
        this.#backup();
        break;
      }
    }
    if (!this.#atTerminator()) return this.#error(`bad character ${runeDescription(r)}`);
    return this.#item(type);
  }

  #atTerminator(): boolean {
    const r = this.#peek();
    if (isSpace(r)) return true;
    switch (r) {
      case EOF:
      case 0x2e: // .
      case 0x2c: // ,
      case 0x7c: // |
      case 0x3a: // :
      case 0x29: // )
      case 0x28: // (
        return true;
      default:
        return this.#input.startsWith(RIGHT, this.#pos);
    }
  }

  #lexChar(): Token {
    for (;;) {
      const r = this.#next();
      if (r === 0x5c) {
        const e = this.#next();
        if (e !== EOF && e !== 0x0a) continue;
        return this.#error('unterminated character constant');
      }
      if (r === EOF || r === 0x0a) return this.#error('unterminated character constant');
      if (r === 0x27) break;
    }
    return this.#item('charConstant');
  }

  #lexNumber(): Token {
    if (!this.#scanNumber()) {
      return this.#error(`bad number syntax: ${quote(this.#input.slice(this.#start, this.#pos))}`);
    }
    const sign = this.#peek();
    if (sign === 0x2b || sign === 0x2d) {
      if (!this.#scanNumber() || this.#input[this.#pos - 1] !== 'i') {
        return this.#error(`bad number syntax: ${quote(this.#input.slice(this.#start, this.#pos))}`);
      }
      return this.#item('complex');
    }
    return this.#item('number');
  }

  #scanNumber(): boolean {
    this.#accept('+-');
    let digits = '0123456789_';
    if (this.#accept('0')) {
      if (this.#accept('xX')) digits = '0123456789abcdefABCDEF_';
      else if (this.#accept('oO')) digits = '01234567_';
      else if (this.#accept('bB')) digits = '01_';
    }
    this.#acceptRun(digits);
    if (this.#accept('.')) this.#acceptRun(digits);
    if (digits.length === 11 && this.#accept('eE')) {
      this.#accept('+-');
      this.#acceptRun('0123456789_');
    }
    if (digits.length === 23 && this.#accept('pP')) {
      this.#accept('+-');
      this.#acceptRun('0123456789_');
    }
    this.#accept('i');
    if (isAlphaNumeric(this.#peek())) {
      this.#next();
      return false;
    }
    return true;
  }

  #lexQuote(): Token {
    for (;;) {
      const r = this.#next();
      if (r === 0x5c) {
        const e = this.#next();
        if (e !== EOF && e !== 0x0a) continue;
        return this.#error('unterminated quoted string');
      }
      if (r === EOF || r === 0x0a) return this.#error('unterminated quoted string');
      if (r === 0x22) break;
    }
    return this.#item('string');
  }

  #lexRawQuote(): Token {
    for (;;) {
      const r = this.#next();
      if (r === EOF) return this.#error('unterminated raw quoted string');
      if (r === 0x60) break;
    }
    return this.#item('rawString');
  }
}

function trimRight(s: string): string {
  let end = s.length;
  while (end > 0 && SPACE_CHARS.includes(s[end - 1] as string)) end--;
  return s.slice(0, end);
}

function leftTrimLength(s: string, from: number): number {
  let i = from;
  while (i < s.length && SPACE_CHARS.includes(s[i] as string)) i++;
  return i - from;
}
