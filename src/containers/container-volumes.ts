/**
 * A container's volumes, decided when it is created: `-v name:/path` and `--mount
 * type=volume` (a named volume, made on first use), `-v /path`, `--mount type=volume` without
 * a source and the image's VOLUMEs (anonymous volumes), and `--mount type=bind|tmpfs` turned
 * into what the runtime spec takes (Binds, Tmpfs). Host paths in `-v /host:/path` stay
 * Binds, checked by the runtime spec.
 */
import { posix } from 'node:path';
import { InvalidArgument } from '../errors/errors.js';
import type { ContainerConfig, HostConfig, MountRequest } from '../runtime/oci-spec.js';
import type { VolumeStore } from '../volumes/volume-store.js';

/** A volume mounted into a container, as inspect's Mounts shows it. */
export interface VolumeMount {
  Name: string;
  Destination: string;
  RW: boolean;
  /** Made for this container: `rm -v` removes it with it. */
  Anonymous?: boolean;
  /** --mount's volume-nocopy: the image's files are not copied into a new volume. */
  NoCopy?: boolean;
}

export interface ResolvedMounts {
  volumes: VolumeMount[];
  /** The host paths bound (from -v /host:/path and --mount type=bind), as Binds. */
  binds: string[];
  tmpfs: Record<string, string>;
}

/** Splits a create request's mounts into volumes (made now, when missing), binds and tmpfs. */
export async function resolveMounts(store: VolumeStore, config: ContainerConfig, hostConfig: HostConfig): Promise<ResolvedMounts> {
  const out: ResolvedMounts = { volumes: [], binds: [], tmpfs: { ...(hostConfig.Tmpfs ?? {}) } };
  const taken = new Set<string>();
  const claim = (destination: string): string => {
    const target = posix.normalize(destination);
    if (!posix.isAbsolute(target)) throw new InvalidArgument(`invalid mount config: mount path must be absolute: ${destination}`);
    if (target === '/') throw new InvalidArgument('invalid mount config: destination can\'t be \'/\'');
    if (taken.has(target)) throw new InvalidArgument(`Duplicate mount point: ${target}`);
    taken.add(target);
    return target;
  };
  const volume = async (name: string, destination: string, rw: boolean, noCopy = false) => {
    const record = await store.create({ Name: name }, name ? {} : { anonymous: true });
    out.volumes.push({ Name: record.name, Destination: claim(destination), RW: rw, ...(name ? {} : { Anonymous: true }), ...(noCopy ? { NoCopy: true } : {}) });
  };

  for (const raw of hostConfig.Binds ?? []) {
    const parts = raw.split(':');
    if (parts.length >= 2 && parts[0] !== '' && !posix.isAbsolute(parts[0]!)) {
      const [name, destination, mode = ''] = parts as [string, string, string?];
      const modes = mode.split(',').filter(Boolean);
      for (const m of modes) if (!['ro', 'rw', 'nocopy', 'z', 'Z'].includes(m)) throw new InvalidArgument(`invalid mode: ${mode}`);
      await volume(name, destination, !modes.includes('ro'), modes.includes('nocopy'));
    } else if (parts.length === 1) {
      await volume('', raw, true);
    } else {
      claim(parts[1] ?? '');
      out.binds.push(raw);
    }
  }
  for (const m of hostConfig.Mounts ?? []) await addMount(m, out, claim, volume);
  for (const destination of Object.keys(out.tmpfs)) claim(destination);
  // The image's VOLUMEs (and `-v /path`, which the docker CLI sends as a Volume), where nothing else is mounted.
  for (const destination of Object.keys(config.Volumes ?? {})) {
    if (!taken.has(posix.normalize(destination))) await volume('', destination, true);
  }
  return out;
}

async function addMount(
  m: MountRequest,
  out: ResolvedMounts,
  claim: (destination: string) => string,
  volume: (name: string, destination: string, rw: boolean, noCopy?: boolean) => Promise<void>,
): Promise<void> {
  const target = m.Target ?? '';
  if (!target) throw new InvalidArgument('invalid mount config: Target must not be empty');
  switch (m.Type) {
    case 'volume':
      if (m.VolumeOptions?.DriverConfig?.Name && m.VolumeOptions.DriverConfig.Name !== 'local') {
        throw new InvalidArgument(`invalid mount config: volume driver ${m.VolumeOptions.DriverConfig.Name} is not supported`);
      }
      await volume(m.Source ?? '', target, m.ReadOnly !== true, m.VolumeOptions?.NoCopy === true);
      return;
    case 'bind': {
      if (!m.Source || !posix.isAbsolute(m.Source)) throw new InvalidArgument(`invalid mount config for type "bind": invalid mount path: '${m.Source ?? ''}' mount path must be absolute`);
      claim(target);
      const modes = [m.ReadOnly ? 'ro' : '', m.BindOptions?.Propagation ?? ''].filter(Boolean);
      out.binds.push(`${m.Source}:${target}${modes.length ? `:${modes.join(',')}` : ''}`);
      return;
    }
    case 'tmpfs': {
      if (m.Source) throw new InvalidArgument('invalid mount config for type "tmpfs": Source must not be specified');
      const opts: string[] = [];
      if (m.ReadOnly) opts.push('ro');
      if (m.TmpfsOptions?.SizeBytes) opts.push(`size=${m.TmpfsOptions.SizeBytes}`);
      if (m.TmpfsOptions?.Mode) opts.push(`mode=${m.TmpfsOptions.Mode.toString(8)}`);
      out.tmpfs[target] = opts.join(',');
      return;
    }
    default:
      throw new InvalidArgument(`invalid mount config: mount type unknown: "${m.Type ?? ''}"`);
  }
}

/** The volumes as `-v mountpoint:destination[:ro]` binds, for the runtime spec. */
export function volumeBinds(store: VolumeStore, volumes: readonly VolumeMount[]): string[] {
  return volumes.map((v) => `${store.mountpoint(v.Name)}:${v.Destination}${v.RW ? '' : ':ro'}`);
}
