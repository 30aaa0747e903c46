/** exec: create, start (with the connection hijack), resize, inspect. */
import type { Daemon } from '../../daemon/daemon.js';
import type { ExecConfig } from '../../containers/exec-manager.js';
import { frame, StdStream } from '../../containers/stdcopy.js';
import { compareVersions, sendJson, type Router } from '../router.js';

export function execRoutes(router: Router, daemon: Daemon): void {
  const execs = daemon.execs;

  router.add('POST', '/containers/{id}/exec', async (ctx) => {
    const config = await ctx.json<ExecConfig>({});
    sendJson(ctx.res!, 201, execs.create(ctx.params['id']!, config));
  });

  router.add('POST', '/exec/{id}/start', async (ctx) => {
    const body = await ctx.json<{ Detach?: boolean; Tty?: boolean; ConsoleSize?: [number, number] | null }>({});
    const exec = execs.get(ctx.params['id']!);
    const tty = body.Tty ?? exec.config.Tty ?? false;
    if (body.Detach) {
      await execs.start(exec.id, { detach: true, tty, consoleSize: body.ConsoleSize ?? null });
      ctx.res!.writeHead(200, { 'Content-Type': 'application/json' });
      ctx.res!.end();
      return;
    }
    const multiplexed = !tty && compareVersions(ctx.version, '1.42') >= 0;
    // As Docker: the connection is hijacked first; a failure to start is written into it, and
    // the exit code (126, 127) is the exec's, read by the client from /exec/{id}/json.
    const socket = ctx.hijack(multiplexed ? 'application/vnd.docker.multiplexed-stream' : 'application/vnd.docker.raw-stream');
    try {
      await execs.start(exec.id, { detach: false, tty, consoleSize: body.ConsoleSize ?? null }, () => socket);
    } catch (err) {
      const text = Buffer.from(`${err instanceof Error ? err.message : String(err)}\r\n`);
      socket.end(multiplexed ? frame(StdStream.Stdout, text) : text);
    }
  });

  router.add('POST', '/exec/{id}/resize', async (ctx) => {
    await execs.resize(ctx.params['id']!, Number(ctx.query.get('h') ?? 0), Number(ctx.query.get('w') ?? 0));
    ctx.res!.writeHead(200);
    ctx.res!.end();
  });

  router.add('GET', '/exec/{id}/json', (ctx) => {
    sendJson(ctx.res!, 200, execs.inspect(ctx.params['id']!));
  });
}
