// docker-compose (Debian's 1.29, a real Engine API client no one here wrote) against berthd: a
// project network, a published port, one service reaching another by its name, a project
// volume, and `down -v` taking it all away again.
import * as assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { TestDaemon, run } from '../helpers/berthd.js';

let daemon: TestDaemon;
let project: string;

before(async () => {
  daemon = await TestDaemon.start();
  await daemon.loadBusybox();
  project = join(daemon.root, 'project');
  mkdirSync(project);
  writeFileSync(
    join(project, 'docker-compose.yml'),
    [
      'version: "3.8"',
      'services:',
      '  web:',
      '    image: busybox',
      '    command: httpd -f -p 80 -h /etc',
      '    ports:',
      '      - "127.0.0.1::80"',
      '  client:',
      '    image: busybox',
      '    command: sh -c "until wget -q -O - http://web/hostname; do sleep 0.2; done; echo saved > /data/note"',
      '    depends_on: [web]',
      '    volumes:',
      '      - notes:/data',
      'volumes:',
      '  notes: {}',
      '',
    ].join('\n'),
  );
});

after(async () => {
  await daemon?.cleanup();
});

function compose(...args: string[]) {
  return run('docker-compose', ['-f', join(project, 'docker-compose.yml'), '-p', 'demo', ...args], { env: daemon.env, timeoutMs: 120_000 });
}

describe('docker-compose against berthd', () => {
  it('up: a project network, a published port, and a service that finds another by name', async () => {
    const up = await compose('up', '-d');
    assert.equal(up.code, 0, `${up.stderr}\n${daemon.log.slice(-3000)}`);
    assert.match(up.stderr, /Creating network "demo_default" with the default driver/);
    assert.match(await daemon.dockerOk('network', 'ls', '--format', '{{.Name}}'), /^demo_default$/m);

    const port = (await daemon.dockerOk('port', 'demo_web_1', '80')).trim();
    assert.match(port, /^127\.0\.0\.1:\d+$/);
    const hostname = (await daemon.dockerOk('inspect', '-f', '{{.Config.Hostname}}', 'demo_web_1')).trim();
    const res = await fetch(`http://${port}/hostname`, { signal: AbortSignal.timeout(5000) });
    assert.equal((await res.text()).trim(), hostname);

    const waited = await daemon.docker(['wait', 'demo_client_1'], { timeoutMs: 30_000 });
    assert.equal(waited.stdout.trim(), '0', waited.stderr);
    const logs = await compose('logs', '--no-color', 'client');
    assert.match(logs.stdout, new RegExp(`client_1\\s+\\| ${hostname}`));
    // The project's volume holds what the client wrote.
    assert.equal(await daemon.dockerOk('run', '--rm', '-v', 'demo_notes:/n', 'busybox', 'cat', '/n/note'), 'saved\n');
  });

  it('down -v removes the containers, the network and the volume', async () => {
    const down = await compose('down', '-v');
    assert.equal(down.code, 0, down.stderr);
    assert.equal((await daemon.dockerOk('ps', '-aq')).trim(), '');
    assert.doesNotMatch(await daemon.dockerOk('network', 'ls', '--format', '{{.Name}}'), /demo_default/);
    assert.doesNotMatch(await daemon.dockerOk('volume', 'ls', '-q'), /demo_notes/);
  });
});
