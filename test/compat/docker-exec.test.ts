// `docker exec` against a private berthd: the exec joins the container's namespaces, its output
// and exit code come back, -d runs it in the background, -i feeds stdin, -t is a real pty, and a
// stopped or paused container refuses it with Docker's 409.
import * as assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { TestDaemon, runInPty, sleep } from '../helpers/berthd.js';

let daemon: TestDaemon;

before(async () => {
  daemon = await TestDaemon.start();
  await daemon.loadBusybox();
  const r = await daemon.docker(['run', '-d', '--name', 'box', 'busybox:1.38.0-musl', 'sleep', '300']);
  assert.equal(r.code, 0, r.stderr);
});

after(async () => {
  await daemon?.cleanup();
});

async function docker(args: string[], input?: string) {
  return daemon.docker(args, { timeoutMs: 30_000, ...(input !== undefined ? { input } : {}) });
}

describe('docker exec against berthd', () => {
  it('runs in the container\'s pid namespace; output and exit code come back', async () => {
    const r = await docker(['exec', 'box', 'sh', '-c', 'ps -o pid,comm | grep -c sleep; echo err >&2; exit 4']);
    assert.equal(r.code, 4);
    assert.equal(r.stdout.trim(), '1');
    assert.equal(r.stderr, 'err\n');
  });

  it('a quick exec loses none of its output', async () => {
    for (let i = 0; i < 5; i++) {
      const r = await docker(['exec', 'box', 'echo', `quick ${i}`]);
      assert.equal(r.stdout, `quick ${i}\n`);
    }
  });

  it('honours -u, -w and -e, and -d runs in the background', async () => {
    const d = await docker(['exec', '-d', 'box', 'sh', '-c', 'sleep 0.2; echo done > /tmp/bg']);
    assert.equal(d.code, 0, d.stderr);
    assert.equal(d.stdout, '');
    const r = await docker(['exec', '-u', 'nobody', '-w', '/tmp', '-e', 'GREETING=hi', 'box', 'sh', '-c', 'id -u; pwd; echo $GREETING']);
    assert.equal(r.stdout, '65534\n/tmp\nhi\n');
    await sleep(400);
    assert.equal((await docker(['exec', 'box', 'cat', '/tmp/bg'])).stdout, 'done\n');
  });

  it('feeds stdin with -i', async () => {
    const r = await docker(['exec', '-i', 'box', 'sh', '-c', 'tr a-z A-Z'], 'quiet please\n');
    assert.equal(r.stdout, 'QUIET PLEASE\n');
  });

  it('gives 127 for a command not found', async () => {
    const r = await docker(['exec', 'box', 'no-such-command']);
    assert.equal(r.code, 127);
    assert.match(r.stdout + r.stderr, /executable file not found/);
  });

  it('-it gets a real terminal', async () => {
    const r = await runInPty(`stty rows 21 cols 77; docker exec -it box sh -c 'tty; stty size; exit 6'`, daemon.env);
    assert.equal(r.status, 6, `${r.stdout}\n${daemon.log.slice(-3000)}`);
    assert.match(r.stdout, /\/dev\/pts\/\d+/);
    assert.match(r.stdout, /21 77/);
  });

  it('refuses a paused or stopped container with 409', async () => {
    assert.equal((await docker(['pause', 'box'])).code, 0);
    const paused = await docker(['exec', 'box', 'true']);
    assert.notEqual(paused.code, 0);
    assert.match(paused.stderr, /is paused, unpause the container before exec/);
    assert.equal((await docker(['unpause', 'box'])).code, 0);
    assert.equal((await docker(['stop', '-t', '0', 'box'])).code, 0);
    const stopped = await docker(['exec', 'box', 'true']);
    assert.notEqual(stopped.code, 0);
    assert.match(stopped.stderr, /is not running/);
  });
});
