/**
 * Health checks (HEALTHCHECK, --health-cmd): while a container with one runs, its check runs
 * in it every interval (as an exec), and State.Health says what the checks found, as docker's:
 * `starting` until the first success, `healthy` after one, `unhealthy` after `retries` failures
 * in a row (failures in the start period do not count). A change is a `health_status` event.
 */
import type { EventBus } from '../daemon/events.js';
import type { Logger } from '../daemon/logger.js';
import type { ContainerConfig } from '../runtime/oci-spec.js';
import type { ContainerRecord, HealthState } from './container.js';
import type { ContainerManager } from './container-manager.js';
import type { ExecManager } from './exec-manager.js';

/** docker's defaults, in milliseconds. */
const DEFAULT_INTERVAL = 30_000;
const DEFAULT_TIMEOUT = 30_000;
const DEFAULT_START_INTERVAL = 5_000;
const DEFAULT_RETRIES = 3;
/** Results kept in State.Health.Log, and bytes of output kept per result. */
const KEEP_RESULTS = 5;
const MAX_OUTPUT = 4096;

export interface HealthCheck {
  command: string[];
  interval: number;
  timeout: number;
  startPeriod: number;
  startInterval: number;
  retries: number;
}

/** A config's check, or undefined for none (no Healthcheck, or Test ["NONE"]). Durations from nanoseconds. */
export function healthCheckOf(config: ContainerConfig): HealthCheck | undefined {
  const hc = config.Healthcheck;
  const test = hc?.Test ?? [];
  let command: string[];
  if (test[0] === 'CMD' && test.length > 1) command = test.slice(1);
  else if (test[0] === 'CMD-SHELL' && test.length > 1) command = ['/bin/sh', '-c', test.slice(1).join(' ')];
  else return undefined;
  const ms = (ns: number | undefined, fallback: number) => (ns && ns > 0 ? Math.max(1, Math.round(ns / 1e6)) : fallback);
  return {
    command,
    interval: ms(hc!.Interval, DEFAULT_INTERVAL),
    timeout: ms(hc!.Timeout, DEFAULT_TIMEOUT),
    startPeriod: ms(hc!.StartPeriod, 0),
    startInterval: ms(hc!.StartInterval, DEFAULT_START_INTERVAL),
    retries: hc!.Retries && hc!.Retries > 0 ? hc!.Retries : DEFAULT_RETRIES,
  };
}

/** What one check's result makes of the health before it. */
export function nextHealth(
  before: HealthState,
  result: { start: Date; end: Date; exitCode: number; output: string },
  check: HealthCheck,
  inStartPeriod: boolean,
): HealthState {
  const Log = [...before.Log, { Start: result.start.toISOString(), End: result.end.toISOString(), ExitCode: result.exitCode, Output: result.output }].slice(-KEEP_RESULTS);
  if (result.exitCode === 0) return { Status: 'healthy', FailingStreak: 0, Log };
  // A failure in the start period counts only once the container has been healthy.
  if (inStartPeriod && before.Status === 'starting') return { ...before, Log };
  const FailingStreak = before.FailingStreak + 1;
  return { Status: FailingStreak >= check.retries ? 'unhealthy' : before.Status, FailingStreak, Log };
}

export class HealthMonitor {
  readonly #containers: ContainerManager;
  readonly #execs: ExecManager;
  readonly #events: EventBus;
  readonly #log: Logger;
  readonly #timers = new Map<string, NodeJS.Timeout>();

  constructor(containers: ContainerManager, execs: ExecManager, events: EventBus, log: Logger) {
    this.#containers = containers;
    this.#execs = execs;
    this.#events = events;
    this.#log = log;
    events.subscribe((e) => {
      if (e.Type !== 'container') return;
      if (e.Action === 'start') void this.#begin(e.Actor.ID, true);
      else if (e.Action === 'die' || e.Action === 'destroy') this.#stop(e.Actor.ID);
    });
  }

  /** At daemon start: the checks of the containers that kept running go on. */
  resume(): void {
    for (const c of this.#containers.all()) if (c.state.Running) void this.#begin(c.id, false);
  }

  close(): void {
    for (const id of [...this.#timers.keys()]) this.#stop(id);
  }

  async #begin(id: string, fresh: boolean): Promise<void> {
    let record: ContainerRecord;
    try {
      record = this.#containers.get(id);
    } catch {
      return;
    }
    const check = healthCheckOf(record.config);
    if (!check) return;
    if (fresh || !record.state.Health) {
      await this.#containers.setHealth(id, { Status: 'starting', FailingStreak: 0, Log: [] }).catch(() => false);
    }
    this.#schedule(id, check, record);
  }

  #schedule(id: string, check: HealthCheck, record: ContainerRecord): void {
    this.#stop(id);
    const inStartPeriod = Date.now() - Date.parse(record.state.StartedAt) < check.startPeriod;
    const delay = inStartPeriod && record.state.Health?.Status !== 'healthy' ? check.startInterval : check.interval;
    const timer = setTimeout(() => void this.#run(id, check), delay);
    timer.unref();
    this.#timers.set(id, timer);
  }

  #stop(id: string): void {
    clearTimeout(this.#timers.get(id));
    this.#timers.delete(id);
  }

  async #run(id: string, check: HealthCheck): Promise<void> {
    this.#timers.delete(id);
    let record: ContainerRecord;
    try {
      record = this.#containers.get(id);
    } catch {
      return;
    }
    if (!record.state.Running) return;
    if (record.state.Paused) return this.#schedule(id, check, record);
    const start = new Date();
    const result = await this.#execs.run(id, check.command, { timeoutMs: check.timeout, maxOutput: MAX_OUTPUT }).then(
      (r) => (r.timedOut ? { exitCode: -1, output: `Health check exceeded timeout (${check.timeout / 1000}s)` } : r),
      (err: unknown) => ({ exitCode: -1, output: err instanceof Error ? err.message : String(err) }),
    );
    let current: ContainerRecord;
    try {
      current = this.#containers.get(id);
    } catch {
      return;
    }
    // The container stopped (or started again) while the check ran: this result is stale.
    if (!current.state.Running || current.state.StartedAt !== record.state.StartedAt) return;
    const before = current.state.Health ?? { Status: 'starting', FailingStreak: 0, Log: [] };
    const inStartPeriod = start.getTime() - Date.parse(current.state.StartedAt) < check.startPeriod;
    const after = nextHealth(before, { start, end: new Date(), exitCode: result.exitCode, output: result.output }, check, inStartPeriod);
    if (!(await this.#containers.setHealth(id, after).catch(() => false))) return;
    if (after.Status !== before.Status) {
      this.#events.publish('container', `health_status: ${after.Status}`, id, { image: current.image, name: current.name.slice(1) });
      this.#log.info('health status changed', { id, status: after.Status });
    }
    this.#schedule(id, check, this.#containers.get(id));
  }
}
