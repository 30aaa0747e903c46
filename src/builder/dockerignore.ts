/**
 * `.dockerignore`: which paths of a context are left out, as docker's patternmatcher says.
 * A pattern excludes what it matches and everything below it; a `!` pattern takes back
 * what it matches; the last matching pattern decides. Shared by the CLI (which leaves the
 * files out of the context it sends) and the builder (which leaves them out of COPY).
 */
import { InvalidArgument } from '../errors/errors.js';

/** A compiled pattern; `negated` for a `!` line. */
export interface IgnorePattern {
  regexp: RegExp;
  negated: boolean;
}

/** A glob as docker's filepath.Match takes it: `*` and `?` stay within one path element. */
export function globRegExp(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*') {
      if (glob[i + 1] === '*') {
        // "**" (.dockerignore): any number of elements; "**/" none or more whole ones.
        i++;
        if (glob[i + 1] === '/') {
          re += '(?:.*/)?';
          i++;
        } else {
          re += '.*';
        }
      } else {
        re += '[^/]*';
      }
    } else if (c === '?') re += '[^/]';
    else if (c === '[') {
      const close = glob.indexOf(']', i + 1);
      if (close < 0) throw new InvalidArgument(`syntax error in pattern ${glob}`);
      re += `[${glob.slice(i + 1, close).replace(/^!/, '^').replace(/\\/g, '\\\\')}]`;
      i = close;
    } else if (c === '\\' && i + 1 < glob.length) re += `\\${glob[++i]}`;
    else re += c.replace(/[.+^${}()|\]\\/]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

/** The patterns of a .dockerignore's text (none for undefined). */
export function dockerignorePatterns(text: string | undefined): IgnorePattern[] {
  if (text === undefined) return [];
  const out: IgnorePattern[] = [];
  for (const raw of text.split(/\r?\n/)) {
    let line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const negated = line.startsWith('!');
    if (negated) line = line.slice(1).trim();
    const cleaned = cleanRel(line);
    if (cleaned === '') continue;
    out.push({ regexp: globRegExp(cleaned), negated });
  }
  return out;
}

/** Whether `rel` (relative, cleaned) is left out by `patterns`. */
export function isExcluded(rel: string, patterns: readonly IgnorePattern[]): boolean {
  let excluded = false;
  for (const pattern of patterns) {
    for (let p = rel; p !== ''; p = p.includes('/') ? p.slice(0, p.lastIndexOf('/')) : '') {
      if (pattern.regexp.test(p)) {
        excluded = !pattern.negated;
        break;
      }
    }
  }
  return excluded;
}

/** A path cleaned as Go's path.Clean, without a leading slash ("" for the top). */
function cleanRel(path: string): string {
  const out: string[] = [];
  for (const part of path.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') out.pop();
    else out.push(part);
  }
  return out.join('/');
}
