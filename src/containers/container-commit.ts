/**
 * `docker commit`: a container's changes become an image. The container's upper dir is read
 * as one OCI layer (paused meanwhile, unless asked not to), unpacked on top of its image's
 * layers, and the new image's config is the container's run config with the request's
 * config merged over it and the `changes` (Dockerfile instructions) applied; its history is
 * the image's plus one entry for the commit; its parent is the container's image.
 *
 * `squash` (berth's own; docker has no such flag): the image's layers and the container's
 * changes flattened into a single layer, read through a read-only overlay of them all; the
 * history is kept, every older entry marked as an empty layer.
 */
import type { Readable } from 'node:stream';
import { readTar } from '../archive/tar-reader.js';
import { TarWriter } from '../archive/tar-writer.js';
import type { EventBus } from '../daemon/events.js';
import type { Logger } from '../daemon/logger.js';
import { Conflict, NotFound } from '../errors/errors.js';
import { applyConfigChanges } from '../images/config-changes.js';
import type { ImageStore } from '../images/image-store.js';
import { alignedHistory, withoutEmpty } from '../images/image-config.js';
import type { HistoryEntry, ImageConfig, RunConfig } from '../images/oci-types.js';
import { familiarString, type Reference } from '../images/reference.js';
import type { LayerRecord } from '../metadata/schema.js';
import type { ContainerConfig } from '../runtime/oci-spec.js';
import { diffLayer } from '../snapshots/diff-layer.js';
import type { Snapshotter } from '../snapshots/overlay-snapshotter.js';
import { ContainerFilesystem, mountView } from './container-changes.js';
import type { ContainerRecord } from './container.js';
import type { ContainerManager } from './container-manager.js';

/** The diff id of a layer with no entries (two zero blocks): docker calls it an empty layer. */
export const EMPTY_LAYER_DIFF_ID = 'sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef';

/** What a commit works with; the daemon has each of these. */
export interface CommitDeps {
  containers: ContainerManager;
  images: ImageStore;
  snapshots: Snapshotter;
  events: EventBus;
  log: Logger;
  /** Where read-only views of layers are mounted (for squash). */
  viewsDir: string;
}

export interface CommitOptions {
  /** The name to tag the image with. */
  reference?: Reference;
  author?: string;
  /** The commit message: the new history entry's comment. */
  comment?: string;
  /** Dockerfile instructions (CMD, ENV, …) applied to the config. */
  changes?: readonly string[];
  /** The request's Config: its set fields win over the container's. */
  config?: ContainerConfig;
  /** Pause a running container while its layer is read (docker's default: true). */
  pause?: boolean;
  squash?: boolean;
}

/** Commits the container `idOrName`; resolves with the new image's id. */
export async function commitContainer(deps: CommitDeps, idOrName: string, opts: CommitOptions = {}): Promise<string> {
  const record = deps.containers.get(idOrName);
  checkCommittable(record, 'commit');
  const image = await deps.images.resolve(record.imageId);
  // The config first: a bad change is refused before anything is paused or written.
  const runConfig = commitRunConfig(record.config, opts.config, opts.changes ?? []);
  const fs = await ContainerFilesystem.open(deps.snapshots, record.id, deps.containers.containerDir(record.id));

  const pause = opts.pause !== false && record.state.Running && !record.state.Paused;
  if (pause) {
    try {
      await deps.containers.pause(record.id);
    } catch (err) {
      // As docker: a container that cannot be paused (it just exited) is committed as it is.
      deps.log.warn('commit: cannot pause the container', { id: record.id, error: String(err) });
    }
  }
  let layer: LayerRecord;
  try {
    layer = opts.squash ? await squashedLayer(deps, fs) : await containerLayer(deps, fs, image.record.layers.at(-1));
  } finally {
    if (pause) await unpauseAfterCommit(deps, record.id);
  }

  const parentLayers = image.record.layers.map((chainId) => {
    const known = deps.images.layer(chainId);
    if (!known) throw new NotFound(`layer ${chainId} of image ${image.id}: no such layer`);
    return known;
  });
  const { config, layers } = committedImage(image.config, parentLayers, layer, runConfig, record.config.Cmd ?? [], opts);
  const id = await deps.images.addImage({
    config,
    layers,
    ...(opts.reference ? { references: [opts.reference] } : {}),
    // A squashed image holds all of its files itself: it depends on no other image.
    ...(opts.squash ? {} : { parent: image.id }),
  });
  const imageRef = opts.reference ? familiarString(opts.reference) : '';
  deps.events.publish('container', 'commit', record.id, {
    comment: opts.comment ?? '',
    imageID: id,
    imageRef,
    image: record.image,
    name: record.name.slice(1),
  });
  if (imageRef) deps.events.publish('image', 'tag', id, { name: imageRef });
  return id;
}

async function unpauseAfterCommit(deps: CommitDeps, id: string): Promise<void> {
  try {
    if (deps.containers.get(id).state.Paused) await deps.containers.unpause(id);
  } catch (err) {
    // Gone or exited meanwhile: nothing is left paused.
    deps.log.warn('commit: cannot unpause the container', { id, error: String(err) });
  }
}

/**
 * The new image's config and layers. The history entry's created_by is the container's Cmd
 * joined by spaces, as docker writes it. A layer with nothing in it is not added, as docker
 * does: the entry is then marked as an empty layer.
 */
function committedImage(
  base: ImageConfig,
  parentLayers: LayerRecord[],
  layer: LayerRecord,
  runConfig: RunConfig,
  cmd: readonly string[],
  opts: CommitOptions,
): { config: ImageConfig; layers: LayerRecord[] } {
  const now = new Date().toISOString();
  const entry: HistoryEntry = { created: now, created_by: cmd.join(' ') };
  if (opts.author) entry.author = opts.author;
  if (opts.comment) entry.comment = opts.comment;
  const baseHistory = alignedHistory(base, parentLayers.length);
  let layers: LayerRecord[];
  let history: HistoryEntry[];
  if (opts.squash) {
    layers = [layer];
    history = [...baseHistory.map((h) => ({ ...h, empty_layer: true })), entry];
  } else if (layer.diffId === EMPTY_LAYER_DIFF_ID) {
    layers = parentLayers;
    history = [...baseHistory, { ...entry, empty_layer: true }];
  } else {
    layers = [...parentLayers, layer];
    history = [...baseHistory, entry];
  }
  const config: ImageConfig = {
    created: now,
    ...(opts.author ? { author: opts.author } : {}),
    architecture: base.architecture,
    os: base.os,
    ...(base.variant ? { variant: base.variant } : {}),
    config: runConfig,
    rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
    history,
  };
  return { config, layers };
}

/** Docker's refusals for a container whose filesystem is going away. */
export function checkCommittable(record: ContainerRecord, what: 'commit' | 'export'): void {
  if (record.state.Dead || record.state.Status === 'dead') {
    throw new Conflict(`You cannot ${what} container ${record.id} which is Dead`);
  }
  if (record.state.Status === 'removing') {
    throw new Conflict(`You cannot ${what} container ${record.id} which is being removed`);
  }
}

/**
 * The committed image's run config: the container's, the request's set fields merged over
 * it as docker merges a user's config over an image's, then the changes applied. Only what
 * an image config holds is kept (no Hostname, Image, Tty…), empty fields left out.
 */
export function commitRunConfig(container: ContainerConfig, request: ContainerConfig | undefined, changes: readonly string[]): RunConfig {
  const own = runConfigOf(container);
  const merged = request ? mergeRunConfig(runConfigOf(request), own) : own;
  return withoutEmpty(applyConfigChanges(merged, changes));
}

/** The image-config fields of a container config (which, as JSON from a client, may hold more than its type says). */
function runConfigOf(config: ContainerConfig): RunConfig {
  const c = config as ContainerConfig & Omit<RunConfig, keyof ContainerConfig>;
  const out: RunConfig = {};
  if (c.User) out.User = c.User;
  if (c.ExposedPorts) out.ExposedPorts = { ...c.ExposedPorts };
  if (c.Env) out.Env = [...c.Env];
  if (c.Entrypoint !== undefined) out.Entrypoint = c.Entrypoint === null ? null : [...c.Entrypoint];
  if (c.Cmd !== undefined) out.Cmd = c.Cmd === null ? null : [...c.Cmd];
  if (c.Volumes) out.Volumes = { ...c.Volumes };
  if (c.WorkingDir) out.WorkingDir = c.WorkingDir;
  if (c.Labels) out.Labels = { ...c.Labels };
  if (c.StopSignal) out.StopSignal = c.StopSignal;
  if (c.OnBuild) out.OnBuild = [...c.OnBuild];
  if (c.Healthcheck) out.Healthcheck = structuredClone(c.Healthcheck);
  if (c.Shell) out.Shell = [...c.Shell];
  if (c.ArgsEscaped) out.ArgsEscaped = c.ArgsEscaped;
  return out;
}

/** Docker's merge(userConf, imageConf): what the user left unset comes from the image. */
function mergeRunConfig(user: RunConfig, image: RunConfig): RunConfig {
  const out: RunConfig = { ...user };
  out.User = user.User || image.User || '';
  out.ExposedPorts = { ...(image.ExposedPorts ?? {}), ...(user.ExposedPorts ?? {}) };
  const env = [...(user.Env ?? [])];
  const keys = new Set(env.map(envKey));
  for (const e of image.Env ?? []) if (!keys.has(envKey(e))) env.push(e);
  out.Env = env;
  out.Labels = { ...(image.Labels ?? {}), ...(user.Labels ?? {}) };
  // An empty (not absent) Entrypoint in the request says "none", and keeps the Cmd it has.
  if (!user.Entrypoint?.length) {
    if (!user.Cmd?.length) out.Cmd = image.Cmd ?? null;
    if (user.Entrypoint === undefined || user.Entrypoint === null) out.Entrypoint = image.Entrypoint ?? null;
  }
  if (!user.Healthcheck && image.Healthcheck) out.Healthcheck = image.Healthcheck;
  out.WorkingDir = user.WorkingDir || image.WorkingDir || '';
  out.Volumes = { ...(image.Volumes ?? {}), ...(user.Volumes ?? {}) };
  out.StopSignal = user.StopSignal || image.StopSignal || '';
  return out;
}

function envKey(entry: string): string {
  const eq = entry.indexOf('=');
  return eq < 0 ? entry : entry.slice(0, eq);
}



/** The container's upper dir as a layer on top of `parent`, without the runtime's mount points. */
async function containerLayer(deps: CommitDeps, fs: ContainerFilesystem, parent: string | undefined): Promise<LayerRecord> {
  const leftovers = new Set((await fs.runtimeLeftovers()).map((l) => l.path));
  return deps.images.unpackLayer(withoutPaths(diffLayer(fs.upper), leftovers), parent);
}

/** Every layer of the container, flattened into one that stands alone. */
async function squashedLayer(deps: CommitDeps, fs: ContainerFilesystem): Promise<LayerRecord> {
  // A mount point the image has is part of the image: only those it lacks are left out.
  const leftovers = new Set((await fs.runtimeLeftovers()).filter((l) => !l.inLower).map((l) => l.path));
  const view = await mountView(fs.layers, deps.viewsDir);
  try {
    return await deps.images.unpackLayer(withoutPaths(diffLayer(view.path), leftovers), undefined);
  } finally {
    await view.release().catch((err: unknown) => deps.log.warn('commit: cannot unmount the squash view', { path: view.path, error: String(err) }));
  }
}

/** The tar `input` without the entries named in `drop` (relative paths, no trailing slash). */
export function withoutPaths(input: Readable, drop: ReadonlySet<string>): Readable {
  if (drop.size === 0) return input;
  const writer = new TarWriter();
  const output = writer.stream;
  output.once('close', () => input.destroy());
  (async () => {
    for await (const { header, body } of readTar(input)) {
      if (drop.has(header.name.replace(/^\.?\/+|\/+$/g, ''))) {
        body.resume();
        continue;
      }
      if (header.type === 'file') {
        await writer.add(header, body);
      } else {
        body.resume();
        await writer.add(header);
      }
    }
    await writer.finish();
  })().catch((err: unknown) => {
    if (!output.destroyed) output.destroy(err instanceof Error ? err : new Error(String(err)));
  });
  return output;
}
