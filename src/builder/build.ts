/**
 * `docker build` as docker's classic builder does it: each instruction makes the next
 * image from the current one.
 *
 *   FROM        the base image, which must be here (no pull), an earlier stage, or scratch;
 *               its ONBUILD triggers run first; `AS name` names the stage for COPY --from
 *   RUN         a container of the current image runs the command to its end; its changes
 *               are the new image's layer (none when it changed nothing)
 *   COPY, ADD   files of the context (or, with --from, of a stage or an image) are extracted
 *               into a fresh container's root, whose changes become the layer; ADD unpacks
 *               a local tar archive
 *   the rest    change the run config only: an image with no new layer ("#(nop)" history)
 *
 * Every image made is kept, untagged, with the one before it as its parent, so that the
 * next build finds it in the cache (see build-cache.ts). The final stage's image is the
 * result (or --target's).
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { readTar } from '../archive/tar-reader.js';
import { TarWriter } from '../archive/tar-writer.js';
import { extractInRoot } from '../containers/archive-extract.js';
import type { ContainerArchive } from '../containers/container-archive.js';
import { ContainerFilesystem } from '../containers/container-changes.js';
import { EMPTY_LAYER_DIFF_ID, withoutPaths } from '../containers/container-commit.js';
import type { ContainerManager } from '../containers/container-manager.js';
import { GO_MODE, cleanPath } from '../containers/archive-path.js';
import { readLogs } from '../containers/log-reader.js';
import type { EventBus } from '../daemon/events.js';
import type { Logger } from '../daemon/logger.js';
import { BerthError, InvalidArgument, NotFound, NotImplemented, isBerthError } from '../errors/errors.js';
import { applyConfigChanges, processWord } from '../images/config-changes.js';
import type { Image, ImageStore } from '../images/image-store.js';
import { alignedHistory, withoutEmpty } from '../images/image-config.js';
import type { HistoryEntry, ImageConfig, RunConfig } from '../images/oci-types.js';
import { familiarString, referenceString, type Reference } from '../images/reference.js';
import type { LayerRecord } from '../metadata/schema.js';
import { resolveUser } from '../runtime/user.js';
import { diffLayer } from '../snapshots/diff-layer.js';
import type { Snapshotter } from '../snapshots/overlay-snapshotter.js';
import { BuildCache } from './build-cache.js';
import { BuildContext, hashTar, ownedHeader, type ContextSource, type CopyOwner, type CopyPlan } from './build-context.js';
import { argDefinitions, expandWords, flagValue, parseDockerfile, splitShellWords, type Instruction } from './dockerfile.js';

export interface BuildDeps {
  containers: ContainerManager;
  images: ImageStore;
  snapshots: Snapshotter;
  archive: ContainerArchive;
  events: EventBus;
  log: Logger;
  cache: BuildCache;
  /** Where contexts are unpacked. */
  scratchDir: string;
  /**
   * Pulls `name` (a reference) into the image store, telling its progress as docker's pull
   * messages; absent, FROM takes local images only.
   */
  pull?: (name: string, progress: (message: object) => void) => Promise<void>;
}

export interface BuildOptions {
  /** The Dockerfile's path in the context. */
  dockerfile: string;
  tags: Reference[];
  /** `--build-arg`: null for one given without a value that the client's environment lacked (the ARG's default applies). */
  buildArgs: Record<string, string | null>;
  labels: Record<string, string>;
  noCache: boolean;
  /** Remove intermediate containers after a successful step (docker's default). */
  rm: boolean;
  /** Remove them even when the build fails. */
  forceRm: boolean;
  /** `--target`: the stage to stop after (its name). */
  target?: string;
  /** Aborted when the client went away: the build stops, its running step is killed. */
  signal?: AbortSignal;
  /** `--pull`: pull FROM's image even when it is here (a newer one may be on the registry). */
  pull?: boolean;
}

/** Where the build's progress goes: docker's `{"stream": …}` and `{"aux": …}` messages. */
export interface BuildOutput {
  stream(text: string): void;
  aux(value: object): void;
  /** A message of a pull (status, progress), passed on as it is. */
  message(value: object): void;
}

/** A RUN that exited non-zero: docker's message and the command's exit code. */
export class BuildStepError extends BerthError {
  readonly exitCode: number;
  constructor(message: string, exitCode: number) {
    super('INVALID_ARGUMENT', message);
    this.exitCode = exitCode;
  }
}

/** The client went away before the build was done. */
export class BuildCancelled extends BerthError {
  constructor(message: string) {
    super('UNAVAILABLE', message);
  }
}

/** Instructions that change the run config only, through applyConfigChanges. */
const CONFIG_COMMANDS = new Set(['CMD', 'ENTRYPOINT', 'ENV', 'EXPOSE', 'HEALTHCHECK', 'LABEL', 'ONBUILD', 'STOPSIGNAL', 'USER', 'VOLUME', 'WORKDIR']);

interface StageState {
  image: Image;
  /** Build args declared in this stage (ARG), with their values. */
  args: Map<string, string>;
  /** `FROM … AS name`, lower case; undefined when unnamed. */
  name: string | undefined;
  /** The image the stage started from: its ONBUILD triggers ran, and are not inherited. */
  baseId: string;
}

/** Runs the build of `context`; resolves with the final image's id, after tagging it. */
export async function buildImage(deps: BuildDeps, context: Readable, opts: BuildOptions, out: BuildOutput): Promise<string> {
  const ctx = await BuildContext.unpack(deps.scratchDir, context);
  try {
    return await new Build(deps, ctx, opts, out).run();
  } finally {
    await ctx.remove().catch((err: unknown) => deps.log.warn('build: cannot remove the context', { error: String(err) }));
  }
}

class Build {
  readonly #deps: BuildDeps;
  readonly #ctx: BuildContext;
  readonly #opts: BuildOptions;
  readonly #out: BuildOutput;
  /** Intermediate containers not removed yet. */
  readonly #containers = new Set<string>();
  /** Build args used by some instruction; docker warns about the others. */
  readonly #usedArgs = new Set<string>();
  /** The ARGs before the first FROM: for FROM lines, and the defaults of a stage's ARG. */
  readonly #metaArgs = new Map<string, string>();
  /** The stages built so far, in order (COPY --from and FROM name them). */
  readonly #stages: StageState[] = [];
  /** Containers that COPY --from reads images through, by image id. */
  readonly #sources = new Map<string, string>();

  constructor(deps: BuildDeps, ctx: BuildContext, opts: BuildOptions, out: BuildOutput) {
    this.#deps = deps;
    this.#ctx = ctx;
    this.#opts = opts;
    this.#out = out;
  }

  async run(): Promise<string> {
    const dockerfile = parseDockerfile(this.#ctx.dockerfile(this.#opts.dockerfile));
    const instructions = [...dockerfile.instructions];
    if (Object.keys(this.#opts.labels).length > 0) {
      // Docker appends the --label options as one LABEL instruction.
      const text = Object.entries(this.#opts.labels).map(([k, v]) => `${JSON.stringify(k)}=${JSON.stringify(v)}`).join(' ');
      instructions.push({ command: 'LABEL', original: `LABEL ${text}`, flags: [], rest: text, json: undefined, line: 0 });
    }
    if (instructions.length === 0) throw new InvalidArgument('the Dockerfile (Dockerfile) cannot be empty');
    const target = this.#opts.target?.toLowerCase();
    if (target && !instructions.some((i) => i.command === 'FROM' && stageNameOf(i) === target)) {
      throw new InvalidArgument(`failed to reach build target ${this.#opts.target} in Dockerfile`);
    }

    // The ARGs before the first FROM are no steps: docker neither counts nor shows them.
    const firstFrom = instructions.findIndex((i) => i.command === 'FROM');
    const steps = instructions.length - Math.max(firstFrom, 0);
    let state: StageState | undefined;
    let step = 0;
    try {
      for (const instruction of instructions) {
        this.#checkCancelled();
        if (!state && instruction.command === 'ARG') {
          for (const [name, value] of argDefinitions(instruction, envOf(this.#metaArgs))) {
            const v = this.#buildArg(name) ?? value;
            if (v !== undefined) this.#metaArgs.set(name, v);
          }
          continue;
        }
        if (instruction.command === 'FROM') {
          if (state) {
            // The end of a stage: docker tells its image, and stops at the target's.
            this.#out.aux({ ID: state.image.id });
            if (state.name !== undefined && state.name === target) break;
          }
          this.#out.stream(`Step ${++step}/${steps} : ${instruction.original}\n`);
          state = await this.#from(instruction);
          this.#stages.push(state);
          await this.#onBuild(state);
        } else {
          if (!state) throw new InvalidArgument('Please provide a source image with `from` prior to commit');
          this.#out.stream(`Step ${++step}/${steps} : ${instruction.original}\n`);
          state.image = await this.#step(state, instruction);
        }
        // As docker: the step's container goes once its image is made, then the id is told.
        if (this.#opts.rm) await this.#removeContainers();
        this.#out.stream(` ---> ${short(state.image.id)}\n`);
      }
    } catch (err) {
      if (this.#opts.forceRm || err instanceof BuildCancelled) await this.#removeContainers();
      throw err;
    } finally {
      await this.#removeSourceContainers();
    }
    if (!state || state.image.id === '') throw new InvalidArgument('No image was generated. Is your Dockerfile empty?');
    const unused = Object.keys(this.#opts.buildArgs).filter((a) => !this.#usedArgs.has(a) && !this.#metaArgs.has(a) && !PREDEFINED_ARGS.has(a));
    if (unused.length) this.#out.stream(`[Warning] One or more build-args [${unused.join(' ')}] were not consumed\n`);

    const id = state.image.id;
    this.#out.aux({ ID: id });
    this.#out.stream(`Successfully built ${short(id)}\n`);
    for (const ref of this.#opts.tags) {
      await this.#deps.images.tag(id, referenceString(ref));
      this.#deps.events.publish('image', 'tag', id, { name: familiarString(ref) });
      this.#out.stream(`Successfully tagged ${familiarString(ref)}\n`);
    }
    return id;
  }

  #checkCancelled(): void {
    // Docker's words, and the intermediate containers go as with --force-rm.
    if (this.#opts.signal?.aborted) throw new BuildCancelled('build cancelled');
  }

  #buildArg(name: string): string | undefined {
    const v = this.#opts.buildArgs[name];
    return v === null ? undefined : v;
  }

  async #from(instruction: Instruction): Promise<StageState> {
    flagValue(instruction, 'platform', ['platform']);
    const words = expandWords(instruction, envOf(this.#metaArgs));
    if (words.length === 2 || words.length > 3 || (words.length === 3 && words[1]!.toUpperCase() !== 'AS') || words.length === 0) {
      throw new InvalidArgument('FROM requires either one or three arguments');
    }
    const name = words[0]!;
    const stageName = words[2]?.toLowerCase();
    if (stageName !== undefined) {
      if (!/^[a-z][a-z0-9-_.]*$/.test(stageName)) throw new InvalidArgument(`invalid name for build stage: "${words[2]}", name can't start with a number or contain symbols`);
      if (this.#stages.some((st) => st.name === stageName)) throw new InvalidArgument(`duplicate name ${words[2]}`);
    }
    const earlier = this.#stages.find((st) => st.name !== undefined && st.name === name.toLowerCase());
    if (earlier) return { image: earlier.image, args: new Map(), name: stageName, baseId: earlier.image.id };
    if (name.toLowerCase() === 'scratch') return { image: scratchImage(), args: new Map(), name: stageName, baseId: '' };
    const image = await this.#localImage(name, this.#opts.pull ?? false);
    return { image, args: new Map(), name: stageName, baseId: image.id };
  }

  /** The image `name` names, pulled when it is not here (or always, with --pull) as docker does. */
  async #localImage(name: string, pull = false): Promise<Image> {
    const { pull: puller } = this.#deps;
    if (pull && puller) await puller(name, (m) => this.#out.message(m));
    try {
      return await this.#deps.images.resolve(name);
    } catch (err) {
      if (!(err instanceof NotFound) || pull) throw err;
      if (!puller) throw new NotFound(`pull access denied for ${name}: berth's builder uses local images only; pull ${name} first`, { cause: err });
    }
    await puller(name, (m) => this.#out.message(m));
    return this.#deps.images.resolve(name);
  }

  async #step(state: StageState, instruction: Instruction): Promise<Image> {
    switch (instruction.command) {
      case 'RUN':
        return this.#run(state, instruction);
      case 'COPY':
      case 'ADD':
        return this.#copy(state, instruction);
      case 'ARG':
        return this.#arg(state, instruction);
      default:
        return this.#configStep(state, instruction);
    }
  }

  /** The run config a step starts from: the current image's, less the base's ONBUILD triggers. */
  #runConfig(state: StageState): RunConfig {
    const config = state.image.config.config ?? {};
    if (state.image.id !== state.baseId || !config.OnBuild) return config;
    const { OnBuild: _triggers, ...rest } = config;
    return rest;
  }

  /** The base image's ONBUILD triggers, run as the stage's first steps (docker's order). */
  async #onBuild(state: StageState): Promise<void> {
    const triggers = state.image.config.config?.OnBuild ?? [];
    if (triggers.length === 0) return;
    this.#out.stream(`# Executing ${triggers.length} build trigger${triggers.length === 1 ? '' : 's'}\n`);
    for (const trigger of triggers) {
      const [instruction] = parseDockerfile(trigger).instructions;
      if (!instruction) continue;
      if (['ONBUILD', 'FROM', 'MAINTAINER'].includes(instruction.command)) {
        throw new InvalidArgument(`${instruction.command} isn't allowed as an ONBUILD trigger`);
      }
      state.image = await this.#step(state, instruction);
    }
  }

  /** The environment words are expanded with: the stage's args, then the image's env over them. */
  #expansionEnv(state: StageState): string[] {
    return [...envOf(state.args), ...(this.#runConfig(state).Env ?? [])];
  }

  async #arg(state: StageState, instruction: Instruction): Promise<Image> {
    const defs = argDefinitions(instruction, this.#expansionEnv(state));
    const shown: string[] = [];
    for (const [name, value] of defs) {
      const given = this.#buildArg(name);
      if (given !== undefined) this.#usedArgs.add(name);
      // An ARG without a default in a stage takes the global one of the same name.
      const v = given ?? value ?? this.#metaArgs.get(name);
      if (v !== undefined) state.args.set(name, v);
      shown.push(value === undefined ? name : `${name}=${value}`);
    }
    const runConfig = this.#runConfig(state);
    return this.#metadataImage(state, `ARG ${shown.join(' ')}`, runConfig);
  }

  /** ENV, LABEL, CMD…: applied by applyConfigChanges, SHELL and MAINTAINER here. */
  async #configStep(state: StageState, instruction: Instruction): Promise<Image> {
    const current = this.#runConfig(state);
    const { command } = instruction;
    if (command === 'SHELL') {
      if (!instruction.json || instruction.json.length === 0) throw new InvalidArgument('SHELL requires the arguments to be in JSON form');
      return this.#metadataImage(state, `SHELL ${goList(instruction.json)}`, { ...current, Shell: instruction.json });
    }
    if (command === 'MAINTAINER') {
      if (instruction.rest === '') throw new InvalidArgument('MAINTAINER requires exactly one argument');
      return this.#metadataImage(state, `MAINTAINER ${instruction.rest}`, current, instruction.rest);
    }
    if (!CONFIG_COMMANDS.has(command)) throw new NotImplemented(`${command} is not supported by berth's builder`);
    if (instruction.flags.length && command !== 'HEALTHCHECK') throw new InvalidArgument(`Unknown flag: ${instruction.flags[0]!.slice(2).split('=')[0]}`);
    const argsText = instruction.flags.length ? `${instruction.flags.join(' ')} ${instruction.rest}` : instruction.rest;
    // The stage's args take part in the expansion (under the env), but stay out of the image.
    const argEnv = envOf(state.args).filter((e) => !(current.Env ?? []).some((c) => envKey(c) === envKey(e)));
    const next = applyConfigChanges({ ...current, Env: [...argEnv, ...(current.Env ?? [])] }, [`${command} ${argsText}`]);
    const setByEnv = command === 'ENV' ? envKeysOf(instruction.rest, [...argEnv, ...(current.Env ?? [])]) : new Set<string>();
    next.Env = withoutArgs(next.Env ?? [], argEnv, setByEnv);
    if (next.Env.length === 0) delete next.Env;
    return this.#metadataImage(state, historyText(command, instruction, next), next);
  }

  /** An image with the parent's layers and `runConfig`: a "#(nop)" history entry, no layer. */
  async #metadataImage(state: StageState, comment: string, runConfig: RunConfig, author?: string): Promise<Image> {
    const shell = shellOf(this.#runConfig(state));
    const createdBy = `${shell.join(' ')} #(nop)  ${comment}`;
    return this.#cached(state, [createdBy, runConfig], async () => {
      return this.#addImage(state.image, runConfig, { created_by: createdBy, empty_layer: true }, undefined, author);
    });
  }

  /** The step's image from the cache, or made by `make` and remembered. */
  async #cached(state: StageState, description: readonly unknown[], make: () => Promise<string>): Promise<Image> {
    const key = BuildCache.key(state.image.id, description);
    if (!this.#opts.noCache) {
      const hit = this.#deps.cache.lookup(key, state.image.id);
      if (hit) {
        this.#out.stream(' ---> Using cache\n');
        return this.#deps.images.resolve(hit);
      }
    }
    const id = await make();
    await this.#deps.cache.store(key, id);
    return this.#deps.images.resolve(id);
  }

  async #run(state: StageState, instruction: Instruction): Promise<Image> {
    if (instruction.flags.length) throw new NotImplemented(`RUN ${instruction.flags[0]} is not supported by berth's builder`);
    const current = this.#runConfig(state);
    if (state.image.id === '') throw new InvalidArgument('RUN needs an image with files to run in: FROM scratch has none until a COPY or ADD adds some');
    const cmd = instruction.json ?? [...shellOf(current), instruction.rest];
    if (cmd.length === 0 || (instruction.json === undefined && instruction.rest === '')) throw new InvalidArgument('RUN requires at least one argument');
    // Docker: the build args in effect are in the RUN's environment and in its history
    // line ("|2 A=1 B=2 /bin/sh -c …"), but not in the image's config.
    const imageEnv = current.Env ?? [];
    const args = [...state.args].filter(([name]) => !imageEnv.some((e) => envKey(e) === name)).sort(([a], [b]) => a.localeCompare(b));
    for (const [name] of args) this.#usedArgs.add(name);
    const prefix = args.length ? [`|${args.length}`, ...args.map(([k, v]) => `${k}=${v}`)] : [];
    const createdBy = [...prefix, ...cmd].join(' ');
    return this.#cached(state, [createdBy, current], async () => {
      const id = await this.#createContainer(state.image, cmd, args.map(([k, v]) => `${k}=${v}`));
      const exited = this.#deps.containers.wait(id, 'next-exit');
      await this.#deps.containers.start(id);
      // A client that goes away cancels the build: the step's process is killed, as docker does.
      const cancel = () => {
        this.#deps.containers.kill(id).catch((err: unknown) => this.#deps.log.warn('build: cannot kill a cancelled step', { id, error: String(err) }));
      };
      this.#opts.signal?.addEventListener('abort', cancel, { once: true });
      let result;
      try {
        if (this.#opts.signal?.aborted) cancel();
        await this.#streamOutput(id, exited.then(() => undefined));
        result = await exited;
      } finally {
        this.#opts.signal?.removeEventListener('abort', cancel);
      }
      this.#checkCancelled();
      if (result.StatusCode !== 0) {
        throw new BuildStepError(`The command '${cmd.join(' ')}' returned a non-zero code: ${result.StatusCode}`, result.StatusCode);
      }
      return this.#commit(id, state.image, current, { created_by: createdBy });
    });
  }

  /** A container of `image` that runs `cmd` (not started), counted as intermediate. */
  async #createContainer(image: Image, cmd: string[], env: string[]): Promise<string> {
    const { Id } = await this.#deps.containers.create(
      {
        Image: image.id,
        // The command as the entrypoint: it runs as it is, whatever entrypoint the image has
        // (the image's config is made from the step, not from this container's).
        Entrypoint: cmd,
        Cmd: [],
        Env: env,
        AttachStdout: true,
        AttachStderr: true,
        // The image's health check is for what runs from the image, not for its build.
        Healthcheck: { Test: ['NONE'] },
        Labels: {},
        HostConfig: {},
      },
      undefined,
    );
    this.#containers.add(Id);
    this.#out.stream(` ---> Running in ${short(Id)}\n`);
    return Id;
  }

  /** The container's output, as it comes, into the stream. */
  async #streamOutput(id: string, stopped: Promise<void>): Promise<void> {
    const abort = new AbortController();
    try {
      const logs = readLogs(this.#deps.containers.logPath(id), { stdout: true, stderr: true, follow: true, timestamps: false }, abort.signal, stopped);
      for await (const entry of logs) this.#out.stream(entry.line.toString('utf8'));
    } catch (err) {
      this.#deps.log.warn('build: cannot read the output of a step', { id, error: String(err) });
    } finally {
      abort.abort();
    }
  }

  /** The container's changes as a layer on `parent`, and the image with `runConfig`. */
  async #commit(containerId: string, parent: Image, runConfig: RunConfig, entry: HistoryEntry): Promise<string> {
    const fs = await ContainerFilesystem.open(this.#deps.snapshots, containerId, this.#deps.containers.containerDir(containerId));
    const leftovers = new Set((await fs.runtimeLeftovers()).map((l) => l.path));
    const layer = await this.#deps.images.unpackLayer(withoutPaths(diffLayer(fs.upper), leftovers), parent.record.layers.at(-1));
    const empty = layer.diffId === EMPTY_LAYER_DIFF_ID;
    return this.#addImage(parent, runConfig, empty ? { ...entry, empty_layer: true } : entry, empty ? undefined : layer);
  }

  async #addImage(parent: Image, runConfig: RunConfig, entry: HistoryEntry, layer: LayerRecord | undefined, author?: string): Promise<string> {
    const now = new Date().toISOString();
    const parentLayers = parent.record.layers.map((chainId) => {
      const known = this.#deps.images.layer(chainId);
      if (!known) throw new NotFound(`layer ${chainId} of image ${parent.id}: no such layer`);
      return known;
    });
    const layers = layer ? [...parentLayers, layer] : parentLayers;
    const base = parent.config;
    const config: ImageConfig = {
      created: now,
      ...(author ?? base.author ? { author: author ?? base.author } : {}),
      architecture: base.architecture,
      os: base.os,
      ...(base.variant ? { variant: base.variant } : {}),
      config: withoutEmpty(runConfig),
      rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
      history: [...alignedHistory(base, parentLayers.length), { created: now, ...entry }],
    };
    return this.#deps.images.addImage({ config, layers, ...(parent.id ? { parent: parent.id } : {}) });
  }

  async #copy(state: StageState, instruction: Instruction): Promise<Image> {
    const command = instruction.command;
    const allowed = command === 'COPY' ? ['chown', 'from', 'chmod', 'link'] : ['chown', 'chmod', 'link', 'checksum'];
    const chown = flagValue(instruction, 'chown', allowed);
    const from = flagValue(instruction, 'from', allowed);
    const owner = await this.#owner(state, chown, flagValue(instruction, 'chmod', allowed));
    const current = this.#runConfig(state);
    const words = expandWords(instruction, this.#expansionEnv(state));
    if (words.length < 2) throw new InvalidArgument(`${command} requires at least two arguments, but only one was provided. Destination could not be determined.`);
    const names = words.slice(0, -1);
    const destWord = words.at(-1)!;
    if (command === 'ADD' && names.some((n) => /^[a-z][a-z0-9+.-]*:\/\//i.test(n))) {
      throw new NotImplemented('ADD from a URL is not supported by berth\'s builder: download the file into the context and COPY it');
    }
    const workdir = current.WorkingDir || '/';
    const destDirForm = /\/$/.test(destWord) || destWord === '.' || /\/\.$/.test(destWord);
    const dest = cleanPath(destWord.startsWith('/') ? destWord : `${workdir}/${destWord}`);
    if (from !== undefined) return this.#copyFrom(state, from, names, dest, destDirForm, owner);
    const sources = this.#ctx.sources(names, command);
    if ((sources.length > 1 || names.length > 1) && !destDirForm) {
      throw new InvalidArgument(`When using ${command} with more than one source file, the destination must be a directory and end with a /`);
    }
    const archives = command === 'ADD' ? sources.filter((s) => !s.isDir && this.#isArchive(s)) : [];

    // The content's hash first: with it the step may come from the cache without a container.
    const hash = await hashTar(this.#ctx.copyTar(this.#plans(sources, dest, destDirForm), owner));
    const kind = sources.length > 1 ? 'multi' : sources[0]!.isDir ? 'dir' : 'file';
    const shell = shellOf(current);
    const createdBy = `${shell.join(' ')} #(nop) ${command} ${kind}:${hash} in ${destWord.startsWith('/') ? destWord : dest} `;
    return this.#cached(state, [createdBy, current, archives.map((a) => a.path)], async () => {
      if (state.image.record.layers.length === 0) {
        if (archives.length) throw new NotImplemented(`${command} of an archive onto an image with no files (FROM scratch) is not supported by berth's builder`);
        return this.#firstLayer(state.image, this.#ctx.copyTar(this.#plans(sources, dest, destDirForm), owner), current, createdBy);
      }
      const id = await this.#createContainer(state.image, [...shell, `#(nop) ${command} ${kind}:${hash} in ${dest} `], []);
      // Where dest leads in the container: a symlink there is followed inside its root.
      const target = await this.#resolveInContainer(id, dest);
      const destIsDir = destDirForm || target.isDir;
      const plain = sources.filter((s) => !archives.includes(s));
      if (plain.length) {
        const tar = this.#ctx.copyTar(this.#plans(plain, target.path, destIsDir), owner);
        await this.#deps.archive.extract(id, '/', tar, { noOverwriteDirNonDir: false, copyUIDGID: false });
      }
      for (const archive of archives) {
        // ADD: a local tar archive is unpacked into the destination directory.
        if (target.path !== '/') await this.#deps.archive.extract(id, '/', folderTar(target.path.slice(1), owner), { noOverwriteDirNonDir: false, copyUIDGID: false });
        await this.#deps.archive.extract(id, target.path, this.#ctx.fileStream(archive.path), { noOverwriteDirNonDir: false, copyUIDGID: false });
      }
      return this.#commit(id, state.image, current, { created_by: createdBy });
    });
  }

  /**
   * COPY --from: the sources are paths in a stage's image (by name or index) or in a local
   * image, read through a container of it that is never started.
   */
  async #copyFrom(state: StageState, from: string, names: string[], dest: string, destDirForm: boolean, owner: CopyOwner): Promise<Image> {
    const image = await this.#fromImage(from, state);
    const source = await this.#sourceContainer(image);
    const sources: ContextSource[] = [];
    for (const name of names) {
      if (/[*?[]/.test(name)) throw new NotImplemented(`COPY --from=${from} ${name}: wildcards in COPY --from are not supported by berth's builder`);
      const found = await this.#resolveInContainer(source, cleanPath(`/${name}`));
      if (!found.exists) throw new NotFound(`COPY failed: stat ${cleanPath(`/${name}`)}: file does not exist`);
      sources.push({ path: found.path, shown: name, isDir: found.isDir });
    }
    if (sources.length > 1 && !destDirForm) {
      throw new InvalidArgument('When using COPY with more than one source file, the destination must be a directory and end with a /');
    }
    const current = this.#runConfig(state);
    const hash = await hashTar(this.#imageCopyTar(source, this.#plans(sources, dest, destDirForm), owner));
    const kind = sources.length > 1 ? 'multi' : sources[0]!.isDir ? 'dir' : 'file';
    const shell = shellOf(current);
    const createdBy = `${shell.join(' ')} #(nop) COPY ${kind}:${hash} in ${dest} `;
    return this.#cached(state, [createdBy, current], async () => {
      if (state.image.record.layers.length === 0) {
        return this.#firstLayer(state.image, this.#imageCopyTar(source, this.#plans(sources, dest, destDirForm), owner), current, createdBy);
      }
      const id = await this.#createContainer(state.image, [...shell, `#(nop) COPY ${kind}:${hash} in ${dest} `], []);
      const target = await this.#resolveInContainer(id, dest);
      const tar = this.#imageCopyTar(source, this.#plans(sources, target.path, destDirForm || target.isDir), owner);
      await this.#deps.archive.extract(id, '/', tar, { noOverwriteDirNonDir: false, copyUIDGID: false });
      return this.#commit(id, state.image, current, { created_by: createdBy });
    });
  }

  /**
   * A copy onto an image with no layers (FROM scratch): nothing is there to resolve or run
   * in, so the copy itself is the layer, each entry preceded by the folders that lead to it
   * (root's, 0755) unless the copy has them.
   */
  async #firstLayer(parent: Image, copy: Readable, runConfig: RunConfig, createdBy: string): Promise<string> {
    const writer = new TarWriter();
    const output = writer.stream;
    (async () => {
      const folders = new Set<string>();
      for await (const { header, body } of readTar(copy)) {
        const name = header.name.replace(/^(\.\/)+|\/+$/g, '');
        const parts = name.split('/');
        for (let i = 1; i < parts.length; i++) {
          const folder = parts.slice(0, i).join('/');
          if (folders.has(folder)) continue;
          folders.add(folder);
          await writer.add({ name: `${folder}/`, type: 'directory', mode: 0o755, uid: 0, gid: 0, mtime: new Date() });
        }
        if (header.type === 'directory') folders.add(name);
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
    const layer = await this.#deps.images.unpackLayer(output, undefined);
    return this.#addImage(parent, runConfig, { created_by: createdBy }, layer);
  }

  /**
   * `--chown` and `--chmod`: ids as they are; names looked up in the current image's
   * /etc/passwd and /etc/group (copied out of it into the scratch folder, then read there).
   */
  async #owner(state: StageState, chown: string | undefined, chmod: string | undefined): Promise<CopyOwner> {
    if (chown === undefined || chown === '' || /^\d+(:\d+)?$/.test(chown)) return ownerOf(chown, chmod);
    const numeric = ownerOf(undefined, chmod);
    const files = await this.#ctx.scratchFolder('users');
    await mkdir(join(files, 'etc'), { mode: 0o755 });
    if (state.image.record.layers.length > 0) {
      const source = await this.#sourceContainer(state.image);
      for (const name of ['/etc/passwd', '/etc/group']) {
        let archived;
        try {
          archived = await this.#deps.archive.archive(source, name);
        } catch (err) {
          if (err instanceof NotFound) continue;
          throw err;
        }
        await extractInRoot(files, '/etc', archived.stream, { noOverwriteDirNonDir: false, owner: 'none' });
        await archived.done;
      }
    }
    const user = await resolveUser(files, chown);
    return { ...numeric, uid: user.uid, gid: user.gid };
  }

  /** The image `COPY --from` names: an earlier stage (name or index), else a local image. */
  async #fromImage(from: string, state: StageState): Promise<Image> {
    const byName = this.#stages.find((st) => st.name !== undefined && st.name === from.toLowerCase());
    if (byName && byName !== state) return byName.image;
    if (/^\d+$/.test(from)) {
      const index = Number(from);
      const stage = this.#stages[index];
      if (!stage || stage === state) throw new InvalidArgument(`invalid from flag value ${from}: refers to current build stage`);
      return stage.image;
    }
    if (byName === state) throw new InvalidArgument(`invalid from flag value ${from}: refers to current build stage`);
    return this.#localImage(from);
  }

  /** A container of `image` to read files from (created once per build, never started). */
  async #sourceContainer(image: Image): Promise<string> {
    const known = this.#sources.get(image.id);
    if (known) return known;
    const { Id } = await this.#deps.containers.create(
      { Image: image.id, Entrypoint: ['#(nop) COPY --from source'], Cmd: [], Healthcheck: { Test: ['NONE'] }, HostConfig: {} },
      undefined,
    );
    this.#sources.set(image.id, Id);
    return Id;
  }

  async #removeSourceContainers(): Promise<void> {
    for (const [image, id] of this.#sources) {
      await this.#deps.containers.remove(id, { force: true, volumes: true }).catch((err: unknown) => {
        this.#deps.log.warn('build: cannot remove a COPY --from container', { id, error: String(err) });
      });
      this.#sources.delete(image);
    }
  }

  /** The plans' sources from container `source`'s root as one tar, renamed to their targets. */
  #imageCopyTar(source: string, plans: readonly CopyPlan[], owner: CopyOwner): Readable {
    const writer = new TarWriter();
    const output = writer.stream;
    (async () => {
      for (const plan of plans) {
        const archived = await this.#deps.archive.archive(source, plan.source.path);
        // The archive's entries are named after the path's base name ("/" for the root).
        const top = archived.stat.name.replace(/^\/+/, '');
        for await (const { header, body } of readTar(archived.stream)) {
          const name = header.name.replace(/^\/+|\/+$/g, '');
          const below = name === top ? '' : top === '' ? name : name.startsWith(`${top}/`) ? name.slice(top.length + 1) : undefined;
          if (below === undefined) throw new InvalidArgument(`COPY --from: unexpected entry ${header.name} in the archive of ${plan.source.path}`);
          const renamed = ownedHeader({ ...header, name: below === '' ? plan.target : plan.target === '.' ? below : `${plan.target}/${below}` }, owner);
          if (header.type === 'hardlink') {
            const link = header.linkname.replace(/^\/+/, '');
            const linkBelow = link === top ? '' : top === '' ? link : link.slice(top.length + 1);
            renamed.linkname = linkBelow === '' ? plan.target : plan.target === '.' ? linkBelow : `${plan.target}/${linkBelow}`;
          }
          if (header.type === 'file') {
            await writer.add(renamed, body);
          } else {
            body.resume();
            await writer.add(renamed);
          }
        }
        await archived.done;
      }
      await writer.finish();
    })().catch((err: unknown) => {
      if (!output.destroyed) output.destroy(err instanceof Error ? err : new Error(String(err)));
    });
    return output;
  }

  /** Where each source lands: a directory's content into dest, a file into it or as it. */
  #plans(sources: readonly ContextSource[], dest: string, destIsDir: boolean): CopyPlan[] {
    const rel = dest.slice(1);
    return sources.map((source) => {
      if (source.isDir) return { source, target: rel === '' ? '.' : rel };
      if (!destIsDir) return { source, target: rel };
      const base = source.path.slice(source.path.lastIndexOf('/') + 1);
      return { source, target: rel === '' ? base : `${rel}/${base}` };
    });
  }

  #isArchive(source: ContextSource): boolean {
    return this.#ctx.looksLikeArchive(source.path);
  }

  /**
   * `path` in the container with its symlinks followed inside the container's root (what
   * is missing kept as written), and whether a directory is there.
   */
  async #resolveInContainer(containerId: string, path: string): Promise<{ path: string; isDir: boolean; exists: boolean }> {
    for (let links = 0; links < 40; links++) {
      let stat;
      try {
        stat = await this.#deps.archive.stat(containerId, path);
      } catch (err) {
        if (isBerthError(err) && err instanceof NotFound) return { path, isDir: false, exists: false };
        throw err;
      }
      if ((stat.mode & GO_MODE.symlink) === 0) return { path, isDir: (stat.mode & GO_MODE.dir) !== 0, exists: true };
      path = cleanPath(stat.linkTarget);
    }
    throw new InvalidArgument(`too many levels of symbolic links at ${path}`);
  }

  async #removeContainers(): Promise<void> {
    for (const id of [...this.#containers]) {
      try {
        await this.#deps.containers.remove(id, { force: true, volumes: true });
        this.#containers.delete(id);
        this.#out.stream(` ---> Removed intermediate container ${short(id)}\n`);
      } catch (err) {
        this.#out.stream(`Error removing intermediate container ${short(id)}: ${err instanceof Error ? err.message : String(err)}\n`);
        return;
      }
    }
  }
}

/** Args docker passes without an ARG (proxies); they never trigger the unused warning. */
const PREDEFINED_ARGS = new Set(['HTTP_PROXY', 'http_proxy', 'HTTPS_PROXY', 'https_proxy', 'FTP_PROXY', 'ftp_proxy', 'NO_PROXY', 'no_proxy', 'ALL_PROXY', 'all_proxy']);

/** `FROM scratch`: no layers, no config; the first step's image has no parent. */
function scratchImage(): Image {
  const config: ImageConfig = {
    architecture: process.arch === 'x64' ? 'amd64' : process.arch === 'arm64' ? 'arm64' : process.arch,
    os: 'linux',
    config: {},
    rootfs: { type: 'layers', diff_ids: [] },
    history: [],
  };
  return { id: '', record: { id: '', layers: [], manifests: [], loaded: '' }, config, repoTags: [], repoDigests: [], size: 0 };
}

/** The lower-cased name of a `FROM image AS name` line, as written (no expansion). */
function stageNameOf(instruction: Instruction): string | undefined {
  const words = instruction.rest.split(/\s+/);
  return words.length === 3 && words[1]!.toUpperCase() === 'AS' ? words[2]!.toLowerCase() : undefined;
}

function short(id: string): string {
  return id.replace(/^sha256:/, '').slice(0, 12);
}

function envOf(args: Map<string, string>): string[] {
  return [...args].map(([k, v]) => `${k}=${v}`);
}

function envKey(entry: string): string {
  const eq = entry.indexOf('=');
  return eq < 0 ? entry : entry.slice(0, eq);
}

/** The keys an `ENV` sets: `k=v …` (each word's name), or the legacy `k v` (the first word). */
function envKeysOf(rest: string, env: readonly string[]): Set<string> {
  const words = splitShellWords(rest);
  if (words.length === 0) return new Set();
  if (!words[0]!.includes('=')) return new Set([processWord(words[0]!, env)]);
  return new Set(words.map((w) => processWord(w.slice(0, w.includes('=') ? w.indexOf('=') : undefined), env)));
}

/** `env` without the arg entries prepended for expansion (those an ENV set are kept). */
function withoutArgs(env: readonly string[], argEnv: readonly string[], keep: ReadonlySet<string>): string[] {
  return env.filter((e, i) => i >= argEnv.length || keep.has(envKey(e)));
}

function shellOf(config: RunConfig): string[] {
  return config.Shell?.length ? config.Shell : ['/bin/sh', '-c'];
}

/** Go's %q of a []string, as docker's history lines show commands: ["a" "b"]. */
function goList(words: readonly string[]): string {
  return `[${words.map((w) => JSON.stringify(w)).join(' ')}]`;
}

/** The history comment of a config instruction, close to docker's. */
function historyText(command: string, instruction: Instruction, next: RunConfig): string {
  if (command === 'CMD') return `CMD ${goList(next.Cmd ?? [])}`;
  if (command === 'ENTRYPOINT') return `ENTRYPOINT ${goList(next.Entrypoint ?? [])}`;
  if (command === 'WORKDIR') return `WORKDIR ${next.WorkingDir ?? ''}`;
  const flags = instruction.flags.length ? `${instruction.flags.join(' ')} ` : '';
  return `${command} ${flags}${instruction.rest}`;
}

/** `--chown=uid[:gid]` as ids, and `--chmod=octal`. */
function ownerOf(chown: string | undefined, chmod: string | undefined): CopyOwner {
  let owner: CopyOwner = { uid: 0, gid: 0 };
  if (chown !== undefined && chown !== '') {
    const m = /^(\d+)(?::(\d+))?$/.exec(chown);
    if (!m) throw new InvalidArgument(`--chown=${chown}: names are resolved by the build, ids expected here`);
    const uid = Number(m[1]);
    owner = { uid, gid: m[2] === undefined ? uid : Number(m[2]) };
  }
  if (chmod !== undefined) {
    // As docker's classic builder: an octal mode for every file and folder copied.
    if (!/^[0-7]{3,4}$/.test(chmod)) throw new InvalidArgument(`invalid chmod parameter: ${chmod}: only octal modes are supported`);
    owner.mode = Number.parseInt(chmod, 8);
  }
  return owner;
}



/** A tar of one directory entry: the folder `rel` (relative to the root), made if missing. */
function folderTar(rel: string, owner: CopyOwner): Readable {
  const writer = new TarWriter();
  void (async () => {
    await writer.add({ name: `${rel}/`, type: 'directory', mode: 0o755, uid: owner.uid, gid: owner.gid, mtime: new Date() });
    await writer.finish();
  })().catch((err: unknown) => writer.stream.destroy(err instanceof Error ? err : new Error(String(err))));
  return writer.stream;
}
