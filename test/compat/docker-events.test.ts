// `docker events` against berthd: a container filter keeps only that container's events.
import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { daemonWithBusybox } from '../helpers/berthd.js';

const fixture = daemonWithBusybox();
describe('docker events against berthd', () => {
  it('reports container and image events; filters by container and type', async () => {
    const since = String(Math.floor(Date.now() / 1000) - 1);
    assert.equal((await fixture.daemon.docker(['run', '--name', 'evt', 'busybox:1.38.0-musl', 'true'])).code, 0);
    assert.equal((await fixture.daemon.docker(['tag', 'busybox:1.38.0-musl', 'evt-tag:1'])).code, 0);
    const until = String(Math.ceil(Date.now() / 1000) + 1);
    const all = await fixture.daemon.docker(['events', '--since', since, '--until', until], { timeoutMs: 20_000 });
    assert.match(all.stdout, / container create [a-f0-9]{64} /);
    assert.match(all.stdout, / container start /);
    assert.match(all.stdout, / container die .*exitCode=0/);
    assert.match(all.stdout, / image tag /);
    const one = await fixture.daemon.docker(['events', '--since', since, '--until', until, '--filter', 'container=evt'], { timeoutMs: 20_000 });
    const lines = one.stdout.trim().split('\n');
    assert.ok(lines.length >= 3, one.stdout);
    assert.ok(lines.every((l) => / container /.test(l)), `an event of another kind passed the container filter:\n${one.stdout}`);
    const images = await fixture.daemon.docker(['events', '--since', since, '--until', until, '--filter', 'type=image'], { timeoutMs: 20_000 });
    assert.ok(images.stdout.trim().split('\n').every((l) => / image /.test(l)), images.stdout);
  });
});
