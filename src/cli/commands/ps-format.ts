/**
 * `ps`'s rows as docker prints them: its table, its --format fields and functions. Loaded
 * only when a listing is printed through a template (not for `ps -q`).
 */
import { parseReference, familiarString } from '../../images/reference.js';
import { ExitError } from '../command.js';
import { ellipsis } from '../format/display-width.js';
import { quote } from '../../util/go-fmt.js';
import { compileTemplate } from '../format/go-template.js';
import { contextRow, renderTable } from '../format/table.js';
import { humanSize, timeAgo, truncateId } from '../../util/units.js';
import { joinHostPort } from './containers.js';


export interface PortSummary {
  IP?: string;
  PrivatePort: number;
  PublicPort?: number;
  Type: string;
}

/** One element of `GET /containers/json`. */
export interface ContainerSummary {
  Id: string;
  Names: string[] | null;
  Image: string;
  ImageID: string;
  Command: string;
  Created: number;
  Ports: PortSummary[] | null;
  SizeRw?: number;
  SizeRootFs?: number;
  Labels: Record<string, string> | null;
  State: string;
  Status: string;
  NetworkSettings?: { Networks?: Record<string, unknown> | null } | null;
  Mounts?: Array<{ Name?: string; Source?: string; Driver?: string }> | null;
  ImageManifestDescriptor?: { platform?: { os?: string; architecture?: string; variant?: string } } | null;
}

const DEFAULT_TABLE = 'table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}';

/** docker's ContainerContext headers, for `ps` and the containers of `system df -v`. */
export const CONTAINER_HEADERS: Record<string, string> = {
  ID: 'CONTAINER ID',
  Names: 'NAMES',
  Image: 'IMAGE',
  Command: 'COMMAND',
  CreatedAt: 'CREATED AT',
  RunningFor: 'CREATED',
  Ports: 'PORTS',
  State: 'STATE',
  Status: 'STATUS',
  Size: 'SIZE',
  Labels: 'LABELS',
  Mounts: 'MOUNTS',
  LocalVolumes: 'LOCAL VOLUMES',
  Networks: 'NETWORKS',
  Platform: 'PLATFORM',
};


/** Whether the template parses and runs over an empty row, as docker checks; true when it shows .Size. */
export function checkFormat(format: string): boolean {
  let usesSize = false;
  let template;
  try {
    template = compileTemplate(format);
  } catch (err) {
    throw new ExitError(`failed to parse template: ${(err as Error).message.replace(/^template parsing error: /, '')}`, 1);
  }
  try {
    template.execute(containerContext(new ContainerRow(emptySummary(), true, Date.now(), () => (usesSize = true)), true));
  } catch (err) {
    throw new ExitError(`failed to execute template: ${(err as Error).message.replace(/^template parsing error: /, '')}`, 1);
  }
  return usesSize;
}

/** The listing through docker's format (its table by default). */
export function renderContainers(list: ContainerSummary[], format: string, quiet: boolean, size: boolean, trunc: boolean): string {
  const now = Date.now();
  const rows = list.map((c) => containerContext(new ContainerRow(c, trunc, now)));
  return renderTable(containerFormat(format, quiet, size), rows, CONTAINER_HEADERS);
}

/** docker's NewContainerFormat. */
function containerFormat(source: string, quiet: boolean, size: boolean): string {
  if (source === '' || source === 'table') {
    if (quiet) return '{{.ID}}';
    return size ? `${DEFAULT_TABLE}\t{{.Size}}` : DEFAULT_TABLE;
  }
  if (source === 'raw') {
    if (quiet) return 'container_id: {{.ID}}';
    let raw = 'container_id: {{.ID}}\nimage: {{.Image}}\ncommand: {{.Command}}\ncreated_at: {{.CreatedAt}}\nstate: {{- pad .State 1 0}}\nstatus: {{- pad .Status 1 0}}\nnames: {{.Names}}\nlabels: {{- pad .Labels 1 0}}\nports: {{- pad .Ports 1 0}}\n';
    if (size) raw += 'size: {{.Size}}\\n';
    return raw;
  }
  return quiet ? '{{.ID}}' : source;
}

/** A summary with every field at Go's zero value. */
export function emptySummary(): ContainerSummary {
  return { Id: '', Names: [], Image: '', ImageID: '', Command: '', Created: 0, Ports: [], Labels: {}, State: '', Status: '' };
}

/** A row of `ps`: the fields and methods docker's ContainerContext offers to templates. */
export class ContainerRow {
  readonly #c: ContainerSummary;
  readonly #trunc: boolean;
  readonly #now: number;
  readonly #onSize: (() => void) | undefined;

  constructor(c: ContainerSummary, trunc: boolean, now: number, onSize?: () => void) {
    this.#c = c;
    this.#trunc = trunc;
    this.#now = now;
    this.#onSize = onSize;
  }

  get ID(): string {
    return this.#trunc ? truncateId(this.#c.Id) : this.#c.Id;
  }

  get Names(): string {
    let names = (this.#c.Names ?? []).map((n) => n.slice(1));
    if (this.#trunc) {
      const plain = names.find((n) => !n.includes('/'));
      if (plain !== undefined) names = [plain];
    }
    return names.join(',');
  }

  get Image(): string {
    const c = this.#c;
    if (!c.Image) return '<no image>';
    if (this.#trunc) {
      const short = truncateId(c.ImageID);
      if (short === truncateId(c.Image)) return short;
      try {
        const ref = parseReference(c.Image);
        return familiarString({ domain: ref.domain, path: ref.path, ...(ref.tag !== undefined ? { tag: ref.tag } : {}) });
      } catch {
        // Not a reference: shown as it is.
      }
    }
    return c.Image;
  }

  get Command(): string {
    const command = this.#trunc ? ellipsis(this.#c.Command, 20) : this.#c.Command;
    return quote(command);
  }

  get CreatedAt(): string {
    return localGoTime(new Date(this.#c.Created * 1000));
  }

  get RunningFor(): string {
    return timeAgo(this.#c.Created * 1000, this.#now);
  }

  get Ports(): string {
    return displayablePorts(this.#c.Ports ?? []);
  }

  get State(): string {
    return this.#c.State;
  }

  get Status(): string {
    return this.#c.Status;
  }

  get Size(): string {
    this.#onSize?.();
    const rw = humanSize(this.#c.SizeRw ?? 0);
    const rootFs = this.#c.SizeRootFs ?? 0;
    return rootFs > 0 ? `${rw} (virtual ${humanSize(rootFs)})` : rw;
  }

  get Labels(): string {
    return Object.entries(this.#c.Labels ?? {})
      .map(([k, v]) => `${k}=${v}`)
      .sort()
      .join(',');
  }

  Label(name: string): string {
    return this.#c.Labels?.[name] ?? '';
  }

  get Mounts(): string {
    return (this.#c.Mounts ?? [])
      .map((m) => {
        const name = m.Name || m.Source || '';
        return this.#trunc ? ellipsis(name, 15) : name;
      })
      .join(',');
  }

  get LocalVolumes(): string {
    return String((this.#c.Mounts ?? []).filter((m) => m.Driver === 'local').length);
  }

  get Networks(): string {
    return Object.keys(this.#c.NetworkSettings?.Networks ?? {}).join(',');
  }

  get Platform(): string | null {
    const p = this.#c.ImageManifestDescriptor?.platform;
    if (!p) return null;
    return [p.os ?? 'unknown', p.architecture ?? 'unknown', p.variant].filter(Boolean).join('/');
  }

}

const CONTEXT_FIELDS = ['Command', 'CreatedAt', 'ID', 'Image', 'Labels', 'LocalVolumes', 'Mounts', 'Names', 'Networks', 'Platform', 'Ports', 'RunningFor', 'Size', 'State', 'Status'] as const;

/**
 * A row as templates see docker's *formatter.ContainerContext: its fields (in the sorted
 * order `{{json .}}` prints them), the Label method, and docker's type name in errors.
 * `lazySize`: Size stays a getter, so running a template over it shows whether it uses Size.
 */
export function containerContext(row: ContainerRow, lazySize = false): object {
  const fields: Record<string, unknown> = {};
  for (const k of CONTEXT_FIELDS) if (!(lazySize && k === 'Size')) fields[k] = row[k];
  fields['Label'] = (name: string) => row.Label(name);
  const ctx = contextRow(fields, '*formatter.ContainerContext');
  if (lazySize) Object.defineProperty(ctx, 'Size', { get: () => row.Size, enumerable: true });
  return ctx;
}

/** Go's time.Time.String() in the local zone: "2024-01-02 15:04:05 +0100 CET". */
export function localGoTime(d: Date): string {
  const p = (n: number, w = 2) => String(Math.abs(n)).padStart(w, '0');
  const offset = -d.getTimezoneOffset();
  const zone = offset === 0 && Intl.DateTimeFormat().resolvedOptions().timeZone === 'UTC'
    ? 'UTC'
    : (new Intl.DateTimeFormat('en-US', { timeZoneName: 'short' }).formatToParts(d).find((x) => x.type === 'timeZoneName')?.value ?? '');
  const sign = offset < 0 ? '-' : '+';
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())} ${sign}${p(Math.trunc(offset / 60))}${p(offset % 60)} ${zone}`;
}

/**
 * docker's DisplayablePorts: "0.0.0.0:8080->80/tcp, 9000-9001/udp"; consecutive ports
 * without a host mapping of their own are grouped into ranges.
 */
export function displayablePorts(ports: PortSummary[]): string {
  const sorted = [...ports].sort((i, j) => {
    if (i.PrivatePort !== j.PrivatePort) return i.PrivatePort - j.PrivatePort;
    if ((i.IP ?? '') !== (j.IP ?? '')) return (i.IP ?? '') < (j.IP ?? '') ? -1 : 1;
    if ((i.PublicPort ?? 0) !== (j.PublicPort ?? 0)) return (i.PublicPort ?? 0) - (j.PublicPort ?? 0);
    return i.Type < j.Type ? -1 : i.Type > j.Type ? 1 : 0;
  });
  const groups = new Map<string, { first: number; last: number }>();
  const result: string[] = [];
  const hostMappings: string[] = [];
  const formGroup = (key: string, start: number, last: number): string => {
    const parts = key.split('/');
    let type = parts[0]!;
    let ip = '';
    if (parts.length > 1) {
      ip = parts[0]!;
      type = parts[1]!;
    }
    let group = start === last ? String(start) : `${start}-${last}`;
    if (ip !== '') group = `${joinHostPort(ip, group)}->${group}`;
    return `${group}/${type}`;
  };
  for (const port of sorted) {
    const current = port.PrivatePort;
    let key = port.Type;
    if (port.IP) {
      if ((port.PublicPort ?? 0) !== current) {
        hostMappings.push(`${joinHostPort(port.IP, port.PublicPort ?? 0)}->${port.PrivatePort}/${port.Type}`);
        continue;
      }
      key = `${port.IP}/${port.Type}`;
    }
    const group = groups.get(key);
    if (!group) {
      groups.set(key, { first: current, last: current });
      continue;
    }
    if (current === group.last + 1) {
      group.last = current;
      continue;
    }
    result.push(formGroup(key, group.first, group.last));
    // Go's map keeps the key's first position; only the group restarts.
    group.first = current;
    group.last = current;
  }
  for (const [key, g] of groups) result.push(formGroup(key, g.first, g.last));
  result.push(...hostMappings);
  return result.join(', ');
}
