// The Dockerfile parser: continuations, comments, directives, exec and shell forms, flags,
// and the expansion of words where docker expands them.
import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { argDefinitions, expandWords, flagValue, parseDockerfile } from '../../src/builder/dockerfile.js';
import { InvalidArgument } from '../../src/errors/errors.js';

describe('parseDockerfile', () => {
  it('reads instructions, skipping comments and blank lines, upper-casing commands', () => {
    const df = parseDockerfile('# a comment\n\nfrom busybox\n  run echo hi   \n# another\nCMD ["sh", "-c", "echo"]\n');
    assert.deepEqual(
      df.instructions.map((i) => [i.command, i.rest, i.line]),
      [['FROM', 'busybox', 3], ['RUN', 'echo hi', 4], ['CMD', '["sh", "-c", "echo"]', 6]],
    );
    assert.deepEqual(df.instructions[2]!.json, ['sh', '-c', 'echo']);
    assert.equal(df.instructions[1]!.json, undefined);
    assert.equal(df.instructions[1]!.original, 'run echo hi');
  });

  it('joins continuation lines, skipping comments and empty lines inside them', () => {
    const df = parseDockerfile('FROM busybox\nRUN echo a \\\n  && echo b \\  \n# inside\n\n  && echo c\nENV A=1\n');
    assert.equal(df.instructions.length, 3);
    assert.equal(df.instructions[1]!.rest, 'echo a   && echo b   && echo c');
    assert.equal(df.instructions[1]!.line, 2);
    assert.equal(df.instructions[2]!.line, 7);
  });

  it('honours the escape directive at the top only', () => {
    const df = parseDockerfile('# escape=`\nFROM busybox\nRUN echo a `\n  b\nRUN echo c\\\n');
    assert.equal(df.escape, '`');
    assert.equal(df.instructions[1]!.rest, 'echo a   b');
    assert.equal(df.instructions[2]!.rest, 'echo c\\');
    const late = parseDockerfile('FROM busybox\n# escape=`\nRUN echo a `\n');
    assert.equal(late.escape, '\\');
    assert.equal(late.instructions[1]!.rest, 'echo a `');
    assert.throws(() => parseDockerfile('# escape=x\nFROM busybox\n'), InvalidArgument);
  });

  it('separates flags from arguments and checks them', () => {
    const df = parseDockerfile('COPY --from=build --chown=1:1 a b/\n');
    const copy = df.instructions[0]!;
    assert.deepEqual(copy.flags, ['--from=build', '--chown=1:1']);
    assert.equal(copy.rest, 'a b/');
    assert.equal(flagValue(copy, 'from', ['from', 'chown']), 'build');
    assert.throws(() => flagValue(copy, 'from', ['from']), /Unknown flag: chown/);
  });

  it('refuses an unknown instruction with its line', () => {
    assert.throws(() => parseDockerfile('FROM busybox\nFOO bar\n'), /line 2: unknown instruction: FOO/);
  });

  it('an invalid JSON array is the shell form', () => {
    const df = parseDockerfile('CMD [echo, hi]\n');
    assert.equal(df.instructions[0]!.json, undefined);
    assert.equal(df.instructions[0]!.rest, '[echo, hi]');
  });
});

describe('expandWords', () => {
  const env = ['A=one', 'EMPTY=', 'SP=x y'];
  const words = (text: string) => expandWords(parseDockerfile(text).instructions[0]!, env);

  it('expands $VAR, ${VAR}, ${VAR:-default} and ${VAR:+alt}', () => {
    assert.deepEqual(words('COPY $A ${A}/b ${NOPE:-def} ${EMPTY:-dflt} ${EMPTY-kept} ${A:+alt} /dst/\n'), [
      'one', 'one/b', 'def', 'dflt', '', 'alt', '/dst/',
    ]);
  });

  it('keeps single-quoted text and escaped dollars literal', () => {
    assert.deepEqual(words("COPY '$A' \\$A \"$A\" /d\n"), ['$A', '$A', 'one', '/d']);
  });

  it('expands variables inside the exec form, keeping quotes literal', () => {
    assert.deepEqual(words('COPY ["$A", "it\'s", "/d"]\n'), ['one', "it's", '/d']);
  });

  it('splits on white space outside quotes only', () => {
    assert.deepEqual(words('COPY "a b" $SP /d\n'), ['a b', 'x y', '/d']);
  });
});

describe('argDefinitions', () => {
  it('reads names and expanded defaults', () => {
    const arg = parseDockerfile('ARG A B=${X:-two} C="x y"\n').instructions[0]!;
    assert.deepEqual(argDefinitions(arg, []), [['A', undefined], ['B', 'two'], ['C', 'x y']]);
  });
});
