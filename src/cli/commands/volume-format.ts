/**
 * Volumes as docker's listings print them (`volume ls`, the volumes of `system df -v`): the
 * fields and headers of its volumeContext. Loaded only when a listing is printed through a
 * template (not for `volume ls -q`).
 */
import { contextRow } from '../format/table.js';
import { humanSize } from '../../util/units.js';

/** One volume as `GET /volumes`, `GET /volumes/{name}` and `GET /system/df` give it. */
export interface VolumeJson {
  Name: string;
  Driver: string;
  Mountpoint: string;
  CreatedAt?: string;
  Labels: Record<string, string> | null;
  Options: Record<string, string> | null;
  Scope: string;
  Status?: Record<string, unknown> | null;
  /** Only in `GET /system/df`. */
  UsageData?: { Size: number; RefCount: number } | null;
}

export const VOLUME_HEADERS = {
  ID: 'ID',
  Name: 'VOLUME NAME',
  Group: 'GROUP',
  Driver: 'DRIVER',
  Scope: 'SCOPE',
  Availability: 'AVAILABILITY',
  Mountpoint: 'MOUNTPOINT',
  Labels: 'LABELS',
  Links: 'LINKS',
  Size: 'SIZE',
  Status: 'STATUS',
};

/**
 * A volume as templates see docker's volumeContext: its fields in alphabetical order, as its
 * {{json .}} has them; the cluster volume's fields N/A, and Links and Size N/A unless the
 * daemon gave the volume's usage (system df does). Labels in the daemon's order, where
 * docker's come in Go's random map order.
 */
export function volumeRow(v: VolumeJson): object {
  const labels = v.Labels ?? {};
  const usage = v.UsageData;
  return contextRow(
    {
      Availability: 'N/A',
      Driver: v.Driver,
      Group: 'N/A',
      Label: (name: string) => labels[name] ?? '',
      Labels: Object.entries(labels).map(([k, value]) => `${k}=${value}`).join(','),
      Links: usage ? String(usage.RefCount) : 'N/A',
      Mountpoint: v.Mountpoint,
      Name: v.Name,
      Scope: v.Scope,
      // go-units' HumanSize: 4 significant digits.
      Size: usage ? humanSize(usage.Size, 4) : 'N/A',
      Status: 'N/A',
    },
    '*formatter.volumeContext',
  );
}
