/**
 * Docker's JSON progress messages for pull and push, as moby's stream formatter writes
 * them: `{"status","progressDetail":{current,total},"progress":"[==>   ] 1.2MB/3.4MB","id"}`.
 */
import { humanSize } from '../util/units.js';

export interface ProgressMessage {
  status: string;
  id?: string;
  progressDetail?: { current?: number; total?: number };
  progress?: string;
}

export type ProgressSink = (message: ProgressMessage | { aux: unknown }) => void;

/**
 * The bar as moby's JSONProgress.String() draws it without a terminal (width 200): 50
 * cells, a '>' at the head, then "current/total" in go-units HumanSize (4 digits).
 */
export function progressBar(current: number, total: number): string {
  if (current <= 0 && total <= 0) return '';
  if (total <= 0) return humanSize(current, 4).padStart(8);
  const percentage = Math.min(50, Math.trunc(Math.trunc((current / total) * 100) / 2));
  const bar = `[${'='.repeat(percentage)}>${' '.repeat(Math.max(0, 50 - percentage))}] `;
  const numbers = current > total ? humanSize(current, 4).padStart(8) : `${humanSize(current, 4).padStart(8)}/${humanSize(total, 4)}`;
  return bar + numbers;
}

export function progressMessage(status: string, id: string, current: number, total: number): ProgressMessage {
  return { status, progressDetail: { current, total }, progress: progressBar(current, total), id };
}

/** 12 hex characters of a digest: the id docker gives a layer in progress messages. */
export function shortDigest(digest: string): string {
  return digest.slice(digest.indexOf(':') + 1).slice(0, 12);
}

/** Calls `emit` at most every `ms`, and always for the last value when `flush` is called. */
export class Throttle {
  readonly #ms: number;
  #last = 0;
  constructor(ms = 100) {
    this.#ms = ms;
  }

  ready(): boolean {
    const now = Date.now();
    if (now - this.#last < this.#ms) return false;
    this.#last = now;
    return true;
  }
}
