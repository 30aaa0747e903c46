/**
 * The daemon's event stream (`docker events`): what happened to containers, images, networks
 * and volumes, as Docker's Message objects. Recent events are kept for `--since`.
 */
import type { RequestContext } from '../api/router.js';
import { parseFilters } from '../api/router.js';

export interface EngineEvent {
  Type: string;
  Action: string;
  Actor: { ID: string; Attributes: Record<string, string> };
  scope: 'local';
  time: number;
  timeNano: number;
  /** The old fields the docker CLI still reads for containers and images. */
  status?: string;
  id?: string;
  from?: string;
}

type Listener = (event: EngineEvent) => void;

const KEEP = 1024;

export class EventBus {
  readonly #recent: EngineEvent[] = [];
  readonly #listeners = new Set<Listener>();

  publish(type: string, action: string, id: string, attributes: Record<string, string> = {}): void {
    const nowNs = BigInt(Date.now()) * 1_000_000n;
    const event: EngineEvent = {
      Type: type,
      Action: action,
      Actor: { ID: id, Attributes: attributes },
      scope: 'local',
      time: Number(nowNs / 1_000_000_000n),
      timeNano: Number(nowNs),
    };
    if (type === 'container' || type === 'image') {
      event.status = action;
      event.id = id;
      if (attributes['image']) event.from = attributes['image'];
    }
    this.#recent.push(event);
    if (this.#recent.length > KEEP) this.#recent.shift();
    for (const listener of this.#listeners) listener(event);
  }

  subscribe(listener: Listener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** GET /events?since=&until=&filters= : streams JSON events until `until` or the client leaves. */
  serve(ctx: RequestContext): void {
    const res = ctx.res!;
    const filters = parseFilters(ctx.query.get('filters'));
    const since = parseTime(ctx.query.get('since'));
    const until = parseTime(ctx.query.get('until'));
    const matches = (e: EngineEvent) => {
      const want = (name: string, values: string[]) => {
        const wanted = filters.get(name);
        return !wanted || wanted.some((w) => values.includes(w));
      };
      // A container filter keeps only that container's events; an image filter keeps the
      // image's own events and those of containers made from it, as Docker's do.
      const actor = [e.Actor.ID, e.Actor.Attributes['name'] ?? ''];
      return (
        want('type', [e.Type]) &&
        want('event', [e.Action, e.Action.split(':')[0]!]) &&
        (!filters.has('container') || (e.Type === 'container' && want('container', actor))) &&
        (!filters.has('image') ||
          (e.Type === 'image' && want('image', actor)) ||
          (e.Type === 'container' && want('image', [e.Actor.Attributes['image'] ?? ''])))
      );
    };
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.flushHeaders();
    const send = (e: EngineEvent) => {
      if (until !== undefined && e.time > until) return;
      if (matches(e)) res.write(`${JSON.stringify(e)}\n`);
    };
    if (since !== undefined) for (const e of this.#recent) if (e.time >= since) send(e);
    if (until !== undefined && until <= Date.now() / 1000) {
      res.end();
      return;
    }
    const unsubscribe = this.subscribe(send);
    let timer: NodeJS.Timeout | undefined;
    if (until !== undefined) timer = setTimeout(() => res.end(), until * 1000 - Date.now());
    res.on('close', () => {
      unsubscribe();
      if (timer) clearTimeout(timer);
    });
  }
}

/** Docker's times: unix seconds (with fractions) or RFC 3339. */
function parseTime(value: string | null): number | undefined {
  if (value === null || value === '') return undefined;
  if (/^\d+(\.\d+)?$/.test(value)) return Number(value);
  const t = Date.parse(value);
  return Number.isNaN(t) ? undefined : t / 1000;
}
