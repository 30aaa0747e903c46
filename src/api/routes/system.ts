/** `/_ping`, `/version`, `/info`, `/system/df`, `/events`. */
import { cpus, hostname, release, totalmem } from 'node:os';
import type { Daemon } from '../../daemon/daemon.js';
import { API_VERSION, MIN_API_VERSION, sendJson, type Router } from '../router.js';
import { summary } from './containers.js';
import { BERTH_VERSION } from '../../daemon/version.js';

const PING_HEADERS = {
  'Api-Version': API_VERSION,
  Ostype: 'linux',
  'Docker-Experimental': 'false',
  'Builder-Version': '1',
  Swarm: 'inactive',
  'Cache-Control': 'no-cache, no-store, must-revalidate',
  Pragma: 'no-cache',
  Server: `berth/${BERTH_VERSION} (linux)`,
};

export function systemRoutes(router: Router, daemon: Daemon): void {
  const ping = (method: 'GET' | 'HEAD') => (ctx: Parameters<Parameters<Router['add']>[2]>[0]) => {
    const res = ctx.res!;
    res.writeHead(200, { ...PING_HEADERS, 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': method === 'HEAD' ? 0 : 2 });
    res.end(method === 'HEAD' ? undefined : 'OK');
  };
  router.add('GET', '/_ping', ping('GET'));
  router.add('HEAD', '/_ping', ping('HEAD'));

  router.add('GET', '/version', (ctx) => {
    sendJson(ctx.res!, 200, versionInfo());
  });

  router.add('GET', '/info', async (ctx) => {
    sendJson(ctx.res!, 200, await daemon.info());
  });

  router.add('GET', '/system/df', async (ctx) => {
    const { ContainerSizes: sizes, ...usage } = await daemon.diskUsage();
    // Each container as the list shows it (command, created, status, mounts), with its size.
    const containers = daemon.containers.all().map((c) => ({ ...summary(daemon, c), SizeRw: (sizes as Record<string, number>)[c.id] ?? 0 }));
    sendJson(ctx.res!, 200, { ...usage, Containers: containers });
  });

  router.add('GET', '/events', (ctx) => {
    daemon.events.serve(ctx);
  });
}

export function versionInfo(): Record<string, unknown> {
  const arch = process.arch === 'x64' ? 'amd64' : process.arch;
  const details = {
    ApiVersion: API_VERSION,
    Arch: arch,
    BuildTime: '',
    Experimental: 'false',
    GitCommit: '',
    GoVersion: `node${process.versions.node}`,
    KernelVersion: release(),
    MinAPIVersion: MIN_API_VERSION,
    Os: 'linux',
  };
  return {
    Platform: { Name: 'berth' },
    Components: [{ Name: 'Engine', Version: BERTH_VERSION, Details: details }],
    Version: BERTH_VERSION,
    ...details,
    Experimental: false,
  };
}

export function hostFacts(): { ncpu: number; memTotal: number; hostname: string; kernel: string } {
  return { ncpu: cpus().length, memTotal: totalmem(), hostname: hostname(), kernel: release() };
}
