// docker cp's path rules: Go's filepath semantics, moby's trailing "/" and "/." handling,
// rebase names, entry names that climb out, Go FileModes and the stat header.
import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import {
  GO_MODE,
  archiveEntryPath,
  assertsDirectory,
  baseName,
  cleanPath,
  containerAbsPath,
  decodePathStat,
  dirName,
  encodePathStat,
  goFileMode,
  hasModeBit,
  joinPath,
  preserveTrailingDotOrSeparator,
  rebaseName,
  rfc3339Nano,
  splitPathDirEntry,
} from '../../src/containers/archive-path.js';

describe('archive paths: Go filepath semantics', () => {
  it('cleans as filepath.Clean', () => {
    const cases: Array<[string, string]> = [
      ['', '.'],
      ['/', '/'],
      ['//a//b/', '/a/b'],
      ['a/./b/.', 'a/b'],
      ['/../..', '/'],
      ['/a/../../b', '/b'],
      ['a/../..', '..'],
      ['../a/../../b', '../../b'],
      ['./', '.'],
    ];
    for (const [input, want] of cases) assert.equal(cleanPath(input), want, input);
  });

  it('takes Base, Dir and Join as Go does', () => {
    assert.equal(baseName('/'), '/');
    assert.equal(baseName('/a/b/'), 'b');
    assert.equal(baseName('a/.'), '.');
    assert.equal(baseName(''), '.');
    assert.equal(dirName('/a/b'), '/a');
    assert.equal(dirName('a'), '.');
    assert.equal(dirName('/a'), '/');
    assert.equal(joinPath('/x', '/etc/passwd'), '/x/etc/passwd');
    assert.equal(joinPath('/x/y', '../../../z'), '/z');
    assert.equal(joinPath('', ''), '');
  });

  it('keeps a trailing "/" or "/." through cleaning', () => {
    assert.equal(preserveTrailingDotOrSeparator('/a/b', 'a/b/'), '/a/b/');
    assert.equal(preserveTrailingDotOrSeparator('/a/b', 'a/b/.'), '/a/b/.');
    assert.equal(preserveTrailingDotOrSeparator('/', '/.'), '/.');
    assert.equal(containerAbsPath('etc//x/./'), '/etc/x/./');
    assert.equal(containerAbsPath('etc//x//'), '/etc/x/');
    assert.equal(containerAbsPath('../../etc/passwd'), '/etc/passwd');
    assert.equal(containerAbsPath('dir/.'), '/dir/.');
    assert.equal(containerAbsPath('/'), '/');
    assert.throws(() => containerAbsPath('a\0b'), /NUL/);
    assert.ok(assertsDirectory('x/'));
    assert.ok(assertsDirectory('x/.'));
    assert.ok(!assertsDirectory('x'));
  });

  it('splits a path into its directory and entry, keeping "."', () => {
    assert.deepEqual(splitPathDirEntry('/a/b'), ['/a', 'b']);
    assert.deepEqual(splitPathDirEntry('/a/b/'), ['/a', 'b']);
    assert.deepEqual(splitPathDirEntry('/a/b/.'), ['/a/b', '.']);
    assert.deepEqual(splitPathDirEntry('/'), ['/', '/']);
    assert.deepEqual(splitPathDirEntry('b'), ['.', 'b']);
  });

  it('rebases a followed symlink to the name asked for', () => {
    assert.deepEqual(rebaseName('/link', '/target/file'), ['/target/file', 'link']);
    assert.deepEqual(rebaseName('/link/', '/target'), ['/target/', 'link']);
    assert.deepEqual(rebaseName('/link/.', '/target'), ['/target/.', '']);
    assert.deepEqual(rebaseName('/same', '/x/same'), ['/x/same', '']);
  });

  it('names archive entries inside the extraction directory, refusing climbs', () => {
    assert.equal(archiveEntryPath('./', '/d'), '');
    assert.equal(archiveEntryPath('/', '/d'), '');
    assert.equal(archiveEntryPath('a/b/', '/d'), 'a/b');
    assert.equal(archiveEntryPath('/etc/passwd', '/d'), 'etc/passwd');
    assert.equal(archiveEntryPath('/../../etc/shadow', '/d'), 'etc/shadow');
    assert.equal(archiveEntryPath('a/../b', '/d'), 'b');
    assert.throws(() => archiveEntryPath('../x', '/d'), { message: '"../x" is outside of "/d"' });
    assert.throws(() => archiveEntryPath('a/../../x', '/d'), /is outside of/);
    assert.throws(() => archiveEntryPath('..', '/d'), /is outside of/);
  });
});

describe('archive paths: the stat header', () => {
  it('turns st_mode into a Go os.FileMode', () => {
    assert.equal(goFileMode(0o100644), 0o644);
    assert.equal(goFileMode(0o040755), GO_MODE.dir + 0o755);
    assert.equal(goFileMode(0o120777), GO_MODE.symlink + 0o777);
    assert.equal(goFileMode(0o020666), GO_MODE.device + GO_MODE.charDevice + 0o666);
    assert.equal(goFileMode(0o060660), GO_MODE.device + 0o660);
    assert.equal(goFileMode(0o010644), GO_MODE.namedPipe + 0o644);
    assert.equal(goFileMode(0o140755), GO_MODE.socket + 0o755);
    assert.equal(goFileMode(0o104755), GO_MODE.setuid + 0o755);
    assert.equal(goFileMode(0o042775), GO_MODE.dir + GO_MODE.setgid + 0o775);
    assert.equal(goFileMode(0o041777), GO_MODE.dir + GO_MODE.sticky + 0o777);
    assert.equal(goFileMode(0o040755), 2147484141);
    assert.ok(hasModeBit(2147484141, GO_MODE.dir));
    assert.ok(!hasModeBit(2147484141, GO_MODE.symlink));
    assert.ok(hasModeBit(134218239, GO_MODE.symlink));
  });

  it('writes times as Go marshals them (RFC 3339, nanoseconds, no trailing zeros)', () => {
    assert.equal(rfc3339Nano(0n), '1970-01-01T00:00:00Z');
    assert.equal(rfc3339Nano(1_700_000_000_123_456_789n), '2023-11-14T22:13:20.123456789Z');
    assert.equal(rfc3339Nano(1_700_000_000_500_000_000n), '2023-11-14T22:13:20.5Z');
    assert.equal(rfc3339Nano(-1n), '1969-12-31T23:59:59.999999999Z');
  });

  it('round-trips the header, base64 of the JSON in moby field order', () => {
    const stat = { name: 'x', size: 3, mode: GO_MODE.symlink + 0o777, mtime: '2023-11-14T22:13:20Z', linkTarget: '/etc' };
    const header = encodePathStat(stat);
    assert.equal(Buffer.from(header, 'base64').toString(), '{"name":"x","size":3,"mode":134218239,"mtime":"2023-11-14T22:13:20Z","linkTarget":"/etc"}');
    assert.deepEqual(decodePathStat(header), stat);
    assert.throws(() => decodePathStat(undefined), /no container path stat/);
    assert.throws(() => decodePathStat('%%%'), /unable to decode/);
  });
});
