/** What commit and build share when they make an image's config from another's. */
import type { HistoryEntry, ImageConfig, RunConfig } from './oci-types.js';

/** The run config without its empty fields (as Go's omitempty writes an image config). */
export function withoutEmpty(config: RunConfig): RunConfig {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(config)) {
    if (value === undefined || value === null || value === '' || value === false) continue;
    if (Array.isArray(value) && value.length === 0) continue;
    if (typeof value === 'object' && !Array.isArray(value) && Object.keys(value).length === 0) continue;
    out[key] = value;
  }
  return out as RunConfig;
}

/**
 * The image's history with one entry per layer at least: an image loaded without history
 * (or with too little) gets plain entries in front, so a new entry lines up with its layer.
 */
export function alignedHistory(config: ImageConfig, layerCount: number): HistoryEntry[] {
  const history = config.history ?? [];
  const missing = layerCount - history.filter((h) => !h.empty_layer).length;
  if (missing <= 0) return history;
  const filler: HistoryEntry = config.created ? { created: config.created } : {};
  return [...Array.from({ length: missing }, () => ({ ...filler })), ...history];
}
