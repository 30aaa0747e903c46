/**
 * Network namespaces that outlive their processes: each is kept by a bind mount of its nsfs
 * file on a file of its own (`<exec root>/netns/<container id>`), as `ip netns` keeps them
 * under /run/netns. The container joins it by path, CNI configures it by path, and it stays
 * while berthd restarts; removing it is an unmount and an unlink.
 */
import { spawn } from 'node:child_process';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { errnoCode, Unavailable } from '../errors/errors.js';
import { MNT_DETACH, umount2 } from '../native/native.js';

/** Makes a new network namespace kept at `path` (which must not be one already). */
export async function createNetns(path: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  await writeFile(path, '', { mode: 0o600 });
  // util-linux's unshare makes the namespace and binds it on the file in one step.
  const { code, stderr } = await new Promise<{ code: number | null; stderr: string }>((resolve, reject) => {
    const child = spawn('unshare', [`--net=${path}`, 'true'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    child.on('error', reject);
    child.on('close', (status) => resolve({ code: status, stderr: err }));
  });
  if (code !== 0) {
    await rm(path, { force: true });
    throw new Unavailable(`network: cannot make a network namespace at ${path}: ${stderr.trim() || `unshare exited with ${code}`}`);
  }
}

/** Unmounts and removes a namespace kept at `path`; nothing to do when it is not there. */
export async function removeNetns(path: string): Promise<void> {
  try {
    umount2(path, MNT_DETACH);
  } catch (err) {
    const code = errnoCode(err);
    if (code !== 'EINVAL' && code !== 'ENOENT') throw err;
  }
  await rm(path, { force: true });
}
