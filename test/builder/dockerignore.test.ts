// .dockerignore patterns and COPY wildcards: what each matches, as docker's matcher does.
import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { dockerignorePatterns, globRegExp, isExcluded } from '../../src/builder/dockerignore.js';

describe('globRegExp', () => {
  it('keeps * and ? within one path element', () => {
    assert.ok(globRegExp('*.txt').test('a.txt'));
    assert.ok(!globRegExp('*.txt').test('dir/a.txt'));
    assert.ok(globRegExp('dir/?.txt').test('dir/a.txt'));
    assert.ok(!globRegExp('dir/?.txt').test('dir/ab.txt'));
    assert.ok(globRegExp('[ab].md').test('b.md'));
    assert.ok(!globRegExp('[!ab].md').test('b.md'));
    assert.ok(globRegExp('a.b').test('a.b') && !globRegExp('a.b').test('axb'));
  });

  it('takes ** for any number of elements', () => {
    const re = globRegExp('**/*.log');
    assert.ok(re.test('x.log'));
    assert.ok(re.test('a/b/x.log'));
    assert.ok(!re.test('a/b/xlog'));
    assert.ok(!globRegExp('**/foo').test('xfoo'));
  });
});

describe('isExcluded', () => {
  const patterns = dockerignorePatterns('# comment\n\n*.key\n/build\nlogs/**\n!logs/keep.log\n./tmp/../cache\n');

  it('excludes what a pattern matches and everything below it', () => {
    assert.ok(isExcluded('secret.key', patterns));
    assert.ok(!isExcluded('dir/secret.key', patterns));
    assert.ok(isExcluded('build', patterns));
    assert.ok(isExcluded('build/out/a.o', patterns));
    assert.ok(isExcluded('cache/x', patterns));
    assert.ok(!isExcluded('src/main.c', patterns));
  });

  it('lets a later ! pattern take a path back', () => {
    assert.ok(isExcluded('logs/a.log', patterns));
    assert.ok(!isExcluded('logs/keep.log', patterns));
  });
});
