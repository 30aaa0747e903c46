// Health-check rules as docker's: what a config's check is, and what a result makes of the health before it.
import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { healthCheckOf, nextHealth, type HealthCheck } from '../../src/containers/health.js';
import type { HealthState } from '../../src/containers/container.js';

const check: HealthCheck = { command: ['true'], interval: 30_000, timeout: 30_000, startPeriod: 10_000, startInterval: 5_000, retries: 2 };
const at = new Date('2026-01-01T00:00:00Z');
const result = (exitCode: number) => ({ start: at, end: at, exitCode, output: `exit ${exitCode}` });
const starting: HealthState = { Status: 'starting', FailingStreak: 0, Log: [] };

describe('health checks', () => {
  it('reads CMD, CMD-SHELL and NONE; durations from nanoseconds, docker\'s defaults for the rest', () => {
    assert.deepEqual(healthCheckOf({ Healthcheck: { Test: ['CMD', 'curl', '-f', 'x'] } })?.command, ['curl', '-f', 'x']);
    const shell = healthCheckOf({ Healthcheck: { Test: ['CMD-SHELL', 'test -f /ok'], Interval: 2e9, Retries: 5 } })!;
    assert.deepEqual(shell, { command: ['/bin/sh', '-c', 'test -f /ok'], interval: 2000, timeout: 30_000, startPeriod: 0, startInterval: 5000, retries: 5 });
    assert.equal(healthCheckOf({ Healthcheck: { Test: ['NONE'] } }), undefined);
    assert.equal(healthCheckOf({}), undefined);
    assert.equal(healthCheckOf({ Healthcheck: { Test: ['CMD'] } }), undefined);
  });

  it('healthy after a success; unhealthy after `retries` failures in a row; a success resets the streak', () => {
    const one = nextHealth(starting, result(1), check, false);
    assert.deepEqual([one.Status, one.FailingStreak], ['starting', 1]);
    const two = nextHealth(one, result(1), check, false);
    assert.deepEqual([two.Status, two.FailingStreak], ['unhealthy', 2]);
    const ok = nextHealth(two, result(0), check, false);
    assert.deepEqual([ok.Status, ok.FailingStreak], ['healthy', 0]);
    assert.deepEqual(ok.Log.map((l) => l.ExitCode), [1, 1, 0]);
  });

  it('failures in the start period do not count until the container has been healthy', () => {
    const early = nextHealth(starting, result(1), check, true);
    assert.deepEqual([early.Status, early.FailingStreak, early.Log.length], ['starting', 0, 1]);
    const healthy = nextHealth(early, result(0), check, true);
    const after = nextHealth(healthy, result(1), check, true);
    assert.deepEqual([after.Status, after.FailingStreak], ['healthy', 1]);
  });

  it('keeps the last five results', () => {
    let h = starting;
    for (let i = 0; i < 7; i++) h = nextHealth(h, result(i % 2), check, false);
    assert.deepEqual(h.Log.map((l) => l.Output), ['exit 0', 'exit 1', 'exit 0', 'exit 1', 'exit 0']);
  });
});
