/**
 * Registries for tests, on loopback only: Debian's docker-registry (CNCF distribution) in a
 * temporary folder, stopped by its PID; and helpers to fill it with skopeo and umoci.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { busyboxLayout, run, sleep } from '../helpers/berthd.js';

export const BUSYBOX_TAG = '1.38.0-musl';

/** A free TCP port on 127.0.0.1 (closed again before it is used). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

export class TestRegistry {
  readonly root: string;
  readonly port: number;
  readonly #child: ChildProcess;
  #log = '';

  private constructor(root: string, port: number, child: ChildProcess) {
    this.root = root;
    this.port = port;
    this.#child = child;
    child.stdout!.on('data', (c: Buffer) => (this.#log += c.toString()));
    child.stderr!.on('data', (c: Buffer) => (this.#log += c.toString()));
  }

  /** Starts docker-registry; `auth` adds token auth against a realm of the test's own. */
  static async start(opts: { tokenAuth?: { realm: string; service: string; issuer: string; certPath: string } } = {}): Promise<TestRegistry> {
    const root = mkdtempSync(join(tmpdir(), 'berth-registry-'));
    const port = await freePort();
    const lines = [
      'version: 0.1',
      'log:',
      '  level: warn',
      'storage:',
      '  filesystem:',
      `    rootdirectory: ${join(root, 'data')}`,
      '  delete:',
      '    enabled: true',
      'http:',
      `  addr: 127.0.0.1:${port}`,
    ];
    if (opts.tokenAuth) {
      lines.push(
        'auth:',
        '  token:',
        `    realm: ${opts.tokenAuth.realm}`,
        `    service: ${opts.tokenAuth.service}`,
        `    issuer: ${opts.tokenAuth.issuer}`,
        `    rootcertbundle: ${opts.tokenAuth.certPath}`,
      );
    }
    writeFileSync(join(root, 'config.yml'), `${lines.join('\n')}\n`);
    const child = spawn('/usr/bin/docker-registry', ['serve', join(root, 'config.yml')], { stdio: ['ignore', 'pipe', 'pipe'] });
    const registry = new TestRegistry(root, port, child);
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline) {
      if (child.exitCode !== null) throw new Error(`docker-registry exited with ${child.exitCode}: ${registry.#log}`);
      try {
        const res = await fetch(`http://127.0.0.1:${port}/v2/`);
        await res.body?.cancel();
        if (res.status === 200 || res.status === 401) return registry;
      } catch {
        // Not listening yet.
      }
      await sleep(50);
    }
    await registry.stop();
    throw new Error(`docker-registry did not start: ${registry.#log}`);
  }

  get host(): string {
    return `127.0.0.1:${this.port}`;
  }

  get log(): string {
    return this.#log;
  }

  async stop(): Promise<void> {
    const child = this.#child;
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGKILL');
      await exited;
    }
    rmSync(this.root, { recursive: true, force: true });
  }

  /** Copies the shared busybox layout to `repo:tag` on this registry. */
  async pushBusybox(repo = 'library/busybox', tag = BUSYBOX_TAG, extra: string[] = []): Promise<void> {
    await skopeo(['copy', '--dest-tls-verify=false', ...extra, `oci:${busyboxLayout}:busybox:${BUSYBOX_TAG}`, `docker://${this.host}/${repo}:${tag}`]);
  }

  /**
   * Pushes `library/<name>:v1`: busybox plus one layer holding /hello.txt with `content`,
   * made with umoci in `workDir` (busybox is copied and unpacked there once, for every call).
   */
  async pushOnBusybox(workDir: string, name: string, content: string): Promise<void> {
    const layout = join(workDir, 'layout');
    const bundle = join(workDir, 'bundle');
    if (!existsSync(bundle)) {
      cpSync(busyboxLayout, layout, { recursive: true });
      await umoci(['unpack', '--image', `${layout}:busybox:${BUSYBOX_TAG}`, bundle]);
    }
    writeFileSync(join(bundle, 'rootfs', 'hello.txt'), content);
    await umoci(['repack', '--image', `${layout}:${name}`, bundle]);
    await skopeo(['copy', '--dest-tls-verify=false', `oci:${layout}:${name}`, `docker://${this.host}/library/${name}:v1`]);
  }
}

export async function skopeo(args: string[]): Promise<string> {
  const r = await run('skopeo', args, { timeoutMs: 120_000 });
  if (r.code !== 0) throw new Error(`skopeo ${args.join(' ')} failed (${r.code}): ${r.stderr}`);
  return r.stdout;
}

export async function umoci(args: string[]): Promise<string> {
  const r = await run('umoci', args, { timeoutMs: 120_000 });
  if (r.code !== 0) throw new Error(`umoci ${args.join(' ')} failed (${r.code}): ${r.stderr}`);
  return r.stdout;
}
