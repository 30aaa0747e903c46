import { describe, it } from 'node:test';
import * as assert from 'node:assert/strict';

import { InvalidArgument } from '../../src/errors/errors.js';
import {
  bytesSize,
  containerStatus,
  humanDuration,
  humanSize,
  parseBytes,
  parseHumanSize,
  timeAgo,
  truncateId,
} from '../../src/util/units.js';

const KB = 1000;
const MB = 1000 * KB;
const GB = 1000 * MB;
const TB = 1000 * GB;
const PB = 1000 * TB;
const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;
const TiB = 1024 * GiB;
const PiB = 1024 * TiB;

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
const WEEK = 7 * DAY;
const MONTH = 30 * DAY;
const YEAR = 365 * DAY;

describe('sizes', () => {
  it('prints decimal sizes with 3 significant digits, as docker images and ps do', () => {
    assert.equal(humanSize(0), '0B');
    assert.equal(humanSize(999), '999B');
    assert.equal(humanSize(1000), '1kB');
    assert.equal(humanSize(1200), '1.2kB');
    assert.equal(humanSize(1024), '1.02kB');
    assert.equal(humanSize(4_260_000), '4.26MB');
    assert.equal(humanSize(77_800_000), '77.8MB');
    assert.equal(humanSize(1_234_567_890), '1.23GB');
    // Go rounds the exact binary value half to even: 1.125 → 1.12.
    assert.equal(humanSize(1125), '1.12kB');
    // And %.3g of 999.999 is 1e+03, which docker prints as it is.
    assert.equal(humanSize(999_999), '1e+03kB');
  });

  it('prints go-units HumanSize with precision 4', () => {
    assert.equal(humanSize(1000, 4), '1kB');
    assert.equal(humanSize(1024, 4), '1.024kB');
    assert.equal(humanSize(1_000_000, 4), '1MB');
    assert.equal(humanSize(1_048_576, 4), '1.049MB');
    assert.equal(humanSize(2 * MB, 4), '2MB');
    assert.equal(humanSize(3.42 * GB, 4), '3.42GB');
    assert.equal(humanSize(5.372 * TB, 4), '5.372TB');
    assert.equal(humanSize(2.22 * PB, 4), '2.22PB');
    assert.equal(humanSize(10_000_000_000_000 * PB, 4), '1e+04YB');
  });

  it('prints binary sizes as go-units BytesSize (docker stats)', () => {
    assert.equal(bytesSize(0), '0B');
    assert.equal(bytesSize(1024), '1KiB');
    assert.equal(bytesSize(1024 * 1024), '1MiB');
    assert.equal(bytesSize(1_048_576), '1MiB');
    assert.equal(bytesSize(1.5 * MiB), '1.5MiB');
    assert.equal(bytesSize(2 * MiB), '2MiB');
    assert.equal(bytesSize(3.42 * GiB), '3.42GiB');
    assert.equal(bytesSize(5.372 * TiB), '5.372TiB');
    assert.equal(bytesSize(2.22 * PiB), '2.22PiB');
    assert.equal(bytesSize(KiB * KiB * KiB * KiB * KiB * PiB), '1.049e+06YiB');
  });

  it('parses memory sizes as RAMInBytes (binary, case-insensitive, optional b)', () => {
    const cases: [string, number][] = [
      ['32', 32], ['32b', 32], ['32B', 32], ['32k', 32 * KiB], ['32K', 32 * KiB], ['32kb', 32 * KiB],
      ['32Kb', 32 * KiB], ['32Kib', 32 * KiB], ['32KIB', 32 * KiB], ['32Mb', 32 * MiB], ['32Gb', 32 * GiB],
      ['32Tb', 32 * TiB], ['32Pb', 32 * PiB], ['32PB', 32 * PiB], ['32P', 32 * PiB], ['32.3', 32],
      ['512m', 536_870_912], ['1.5g', 1_610_612_736], ['32.3 mb', Math.trunc(32.3 * MiB)], ['0.3MB', Math.trunc(0.3 * MiB)],
    ];
    for (const [input, want] of cases) assert.equal(parseBytes(input), want, input);
    for (const input of ['', 'hello', '-32', ' 32 ', '32m b', '32bm']) {
      assert.throws(() => parseBytes(input), InvalidArgument, input);
    }
    assert.throws(() => parseBytes('512x'), { message: "invalid suffix: 'x'" });
    assert.throws(() => parseBytes('hello'), { message: "invalid size: 'hello'" });
    assert.throws(() => parseBytes('-32'), { message: "invalid size: '-32'" });
    assert.throws(() => parseBytes(' 32'), { message: 'strconv.ParseFloat: parsing "": invalid syntax' });
  });

  it('parses decimal sizes as FromHumanSize', () => {
    const cases: [string, number][] = [
      ['0', 0], ['0b', 0], ['0B', 0], ['0 B', 0], ['32', 32], ['32b', 32], ['32k', 32 * KB], ['32K', 32 * KB],
      ['32kb', 32 * KB], ['32Kb', 32 * KB], ['32Mb', 32 * MB], ['32Gb', 32 * GB], ['32Tb', 32 * TB], ['32Pb', 32 * PB],
      ['32.5kB', 32.5 * KB], ['32.5 kB', 32.5 * KB], ['32.5 B', 32], ['0.3 K', 300], ['.3kB', 300], ['0.', 0],
      ['0. ', 0], ['0.b', 0], ['-0', 0], ['-0 B', 0], ['32.', 32], ['32. b', 32], ['0 ', 0],
    ];
    for (const [input, want] of cases) assert.equal(parseHumanSize(input), want, input);
    const bad = [
      ' 0', ' 0b', ' 0 B', '0b ', '0 B ', '', 'hello', '.', '. ', ' ', '  ', ' .', '-32', '-32 b', '32b.',
      '32 b.', '32 bb', '32 b b', '32  b', ' 32 ', '32m b', '32bm',
    ];
    for (const input of bad) assert.throws(() => parseHumanSize(input), InvalidArgument, JSON.stringify(input));
  });
});

describe('durations', () => {
  it('approximates as go-units HumanDuration', () => {
    const cases: [number, string][] = [
      [450, 'Less than a second'], [SECOND, '1 second'], [45 * SECOND, '45 seconds'], [59 * SECOND, '59 seconds'],
      [60 * SECOND, 'About a minute'], [3 * MINUTE, '3 minutes'], [35 * MINUTE + 40 * SECOND, '35 minutes'],
      [59 * MINUTE, '59 minutes'], [HOUR, 'About an hour'], [HOUR + 29 * MINUTE, 'About an hour'],
      [HOUR + 31 * MINUTE, '2 hours'], [3 * HOUR + 29 * MINUTE, '3 hours'], [3 * HOUR + 31 * MINUTE, '4 hours'],
      [24 * HOUR, '24 hours'], [DAY + 12 * HOUR, '36 hours'], [2 * DAY, '2 days'], [7 * DAY, '7 days'],
      [13 * DAY + 5 * HOUR, '13 days'], [2 * WEEK, '2 weeks'], [2 * WEEK + 4 * DAY, '2 weeks'], [3 * WEEK, '3 weeks'],
      [4 * WEEK + 3 * DAY, '4 weeks'], [MONTH, '4 weeks'], [MONTH + 2 * WEEK, '6 weeks'], [2 * MONTH, '2 months'],
      [3 * MONTH + WEEK, '3 months'], [13 * MONTH, '13 months'], [24 * MONTH, '24 months'],
      [24 * MONTH + 2 * WEEK, '2 years'], [3 * YEAR + 2 * MONTH, '3 years'], [-5 * SECOND, 'Less than a second'],
    ];
    for (const [ms, want] of cases) assert.equal(humanDuration(ms), want, `${ms}ms`);
  });

  it('says how long ago, for CREATED columns', () => {
    const now = new Date('2024-05-01T12:00:00Z');
    assert.equal(timeAgo(new Date('2024-05-01T11:57:00Z'), now), '3 minutes ago');
    assert.equal(timeAgo('2024-04-30T12:00:00Z', now), '24 hours ago');
    assert.equal(timeAgo(now.getTime() - 65_000, now), 'About a minute ago');
    assert.throws(() => timeAgo('yesterday', now), InvalidArgument);
  });
});

describe('container status', () => {
  const now = new Date('2024-05-01T12:00:00Z');
  const started = '2024-05-01T11:57:00Z';
  const finished = '2024-05-01T10:00:00Z';

  it('prints the status line docker ps shows', () => {
    assert.equal(containerStatus({ running: true, startedAt: started }, now), 'Up 3 minutes');
    assert.equal(containerStatus({ running: true, paused: true, startedAt: started }, now), 'Up 3 minutes (Paused)');
    assert.equal(
      containerStatus({ running: true, restarting: true, exitCode: 1, startedAt: started, finishedAt: '2024-05-01T11:59:55Z' }, now),
      'Restarting (1) 5 seconds ago',
    );
    assert.equal(containerStatus({ running: true, startedAt: started, health: 'healthy' }, now), 'Up 3 minutes (healthy)');
    assert.equal(containerStatus({ running: true, startedAt: started, health: 'starting' }, now), 'Up 3 minutes (health: starting)');
    assert.equal(containerStatus({ running: false, startedAt: started, finishedAt: finished, exitCode: 0 }, now), 'Exited (0) 2 hours ago');
    assert.equal(containerStatus({ running: false, startedAt: started, finishedAt: finished, exitCode: 137 }, now), 'Exited (137) 2 hours ago');
    assert.equal(containerStatus({ running: false }, now), 'Created');
    assert.equal(containerStatus({ running: false, startedAt: '0001-01-01T00:00:00Z', finishedAt: '0001-01-01T00:00:00Z' }, now), 'Created');
    assert.equal(containerStatus({ running: false, dead: true, startedAt: started }, now), 'Dead');
    assert.equal(containerStatus({ running: false, removalInProgress: true, startedAt: started }, now), 'Removal In Progress');
  });
});

describe('IDs', () => {
  it('shortens IDs to 12 characters without the algorithm', () => {
    const hex = 'dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9c';
    assert.equal(truncateId(`sha256:${hex}`), 'dbcc1c35ac38');
    assert.equal(truncateId(hex), 'dbcc1c35ac38');
    assert.equal(truncateId('abc'), 'abc');
  });
});
