/**
 * Shared pieces of the runtime tests: a busybox root filesystem from the real image in
 * shared/images, spec inputs, and running a spec with runc under a private --root.
 */
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

import type { SpecInput } from '../../src/runtime/oci-spec.js';
import { specJson } from '../../src/runtime/oci-spec.js';
import type { OciSpec } from '../../src/runtime/spec-types.js';

/** shared/images/busybox-1.38.0-musl, found from the working directory (the repo). */
export function busyboxLayout(): string {
  for (const candidate of [
    process.env['BERTH_SHARED_IMAGES'] ? join(process.env['BERTH_SHARED_IMAGES'], 'busybox-1.38.0-musl') : '',
    resolve('../shared/images/busybox-1.38.0-musl'),
    '/work/shared/images/busybox-1.38.0-musl',
  ]) {
    if (candidate && existsSync(join(candidate, 'index.json'))) return candidate;
  }
  throw new Error('busybox image layout not found (shared/images/busybox-1.38.0-musl)');
}

interface Descriptor {
  digest: string;
}

/** Extracts the busybox image's one layer into `dir` (made if missing). */
export function extractBusybox(dir: string): void {
  const layout = busyboxLayout();
  const blob = (d: Descriptor): string => join(layout, 'blobs', ...d.digest.split(':'));
  const index = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8')) as { manifests: Descriptor[] };
  const manifestDesc = index.manifests[0];
  if (!manifestDesc) throw new Error('busybox index has no manifest');
  const manifest = JSON.parse(readFileSync(blob(manifestDesc), 'utf8')) as { layers: Descriptor[] };
  mkdirSync(dir, { recursive: true });
  for (const layer of manifest.layers) {
    const r = spawnSync('tar', ['-xzf', blob(layer), '-C', dir], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`tar -xzf failed: ${r.stderr}`);
  }
}

export function randomId(): string {
  return randomBytes(32).toString('hex');
}

/** A SpecInput with the daemon's files made under `dir`. */
export function specInput(dir: string, rootfs: string, overrides: Partial<SpecInput> = {}): SpecInput {
  const id = overrides.id ?? randomId();
  const files = join(dir, `files-${id.slice(0, 12)}`);
  mkdirSync(files, { recursive: true });
  writeFileSync(join(files, 'hosts'), '127.0.0.1\tlocalhost\n');
  writeFileSync(join(files, 'hostname'), `${id.slice(0, 12)}\n`);
  writeFileSync(join(files, 'resolv.conf'), 'nameserver 127.0.0.1\n');
  return {
    id,
    rootfs,
    config: { Cmd: ['true'] },
    hostConfig: {},
    hostsPath: join(files, 'hosts'),
    hostnamePath: join(files, 'hostname'),
    resolvConfPath: join(files, 'resolv.conf'),
    cgroupsPath: `/berth-test-${process.pid}/${id}`,
    ...overrides,
  };
}

export interface RunResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

export interface Runner {
  /** `runc run` the spec to completion (killed after `timeoutMs`). */
  run(spec: OciSpec, timeoutMs?: number): Promise<RunResult>;
  /**
   * Starts the spec, calls `whileRunning` once `readyFile` (a host path) exists, then kills
   * the container.
   */
  runWhile<T>(spec: OciSpec, readyFile: string, whileRunning: () => T | Promise<T>): Promise<T>;
  /** Deletes every container this runner made and their cgroup parents. */
  cleanup(): void;
}

/** A runner with its own `runc --root` and bundle directories under `dir`. */
export function runner(dir: string): Runner {
  const root = join(dir, 'runc-root');
  mkdirSync(root, { recursive: true });
  const ids: string[] = [];
  const cgroupParents = new Set<string>();

  const bundleFor = (spec: OciSpec): { id: string; bundle: string } => {
    const id = (spec.linux.cgroupsPath ?? randomId()).split('/').pop() ?? randomId();
    const parent = spec.linux.cgroupsPath?.split('/').slice(0, -1).join('/');
    if (parent) cgroupParents.add(parent);
    const bundle = join(dir, `bundle-${id.slice(0, 12)}`);
    mkdirSync(bundle, { recursive: true });
    writeFileSync(join(bundle, 'config.json'), specJson(spec, 2));
    ids.push(id);
    return { id, bundle };
  };

  const start = (spec: OciSpec, timeoutMs: number): { id: string; done: Promise<RunResult> } => {
    const { id, bundle } = bundleFor(spec);
    const child = spawn('runc', ['--root', root, 'run', '--bundle', bundle, id], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => spawnSync('runc', ['--root', root, 'kill', id, 'KILL']), timeoutMs);
    const done = new Promise<RunResult>((resolveRun, reject) => {
      child.on('error', reject);
      child.on('close', (status) => {
        clearTimeout(timer);
        resolveRun({ status, stdout, stderr });
      });
    });
    return { id, done };
  };

  return {
    async run(spec, timeoutMs = 15000) {
      const { id, done } = start(spec, timeoutMs);
      try {
        return await done;
      } finally {
        spawnSync('runc', ['--root', root, 'delete', '-f', id]);
      }
    },
    async runWhile(spec, readyFile, whileRunning) {
      const { id, done } = start(spec, 20000);
      try {
        const deadline = Date.now() + 10000;
        let exited = false;
        void done.then(() => (exited = true));
        while (!existsSync(readyFile)) {
          if (exited) throw new Error(`container exited before ${readyFile} appeared: ${JSON.stringify(await done)}`);
          if (Date.now() > deadline) throw new Error(`${readyFile} did not appear`);
          await new Promise((r) => setTimeout(r, 20));
        }
        return await whileRunning();
      } finally {
        spawnSync('runc', ['--root', root, 'kill', id, 'KILL']);
        await done.catch(() => undefined);
        spawnSync('runc', ['--root', root, 'delete', '-f', id]);
      }
    },
    cleanup() {
      for (const id of ids) spawnSync('runc', ['--root', root, 'delete', '-f', id]);
      for (const parent of cgroupParents) {
        for (const controller of safeReaddir('/sys/fs/cgroup')) {
          const path = join('/sys/fs/cgroup', controller, parent);
          for (const child of safeReaddir(path).filter((n) => /^[0-9a-f]{64}$/.test(n))) tryRmdir(join(path, child));
          tryRmdir(path);
        }
        tryRmdir(join('/sys/fs/cgroup', parent));
      }
    },
  };
}

function safeReaddir(path: string): string[] {
  try {
    return readdirSync(path);
  } catch {
    return [];
  }
}

function tryRmdir(path: string): void {
  try {
    rmdirSync(path);
  } catch {
    // not there, or still busy
  }
}

/** The cgroup file of a controller for a container's cgroupsPath (v1 or v2 layout). */
export function cgroupFile(cgroupsPath: string, v1: { controller: string; file: string }, v2File: string): string {
  if (existsSync('/sys/fs/cgroup/cgroup.controllers')) return join('/sys/fs/cgroup', cgroupsPath, v2File);
  return join('/sys/fs/cgroup', v1.controller, cgroupsPath, v1.file);
}
