// `berth exec`: the same flows as `docker exec`, through berth's own CLI.
import * as assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { TestDaemon, cliMain, runInPty, sleep } from '../helpers/berthd.js';

let daemon: TestDaemon;

before(async () => {
  daemon = await TestDaemon.start();
  await daemon.loadBusybox();
  const r = await daemon.berth(['run', '-d', '--name', 'box', 'busybox', 'sleep', '300']);
  assert.equal(r.code, 0, r.stderr);
});

after(async () => {
  await daemon?.cleanup();
});

async function berth(args: string[], input?: string) {
  return daemon.berth(args, { timeoutMs: 30_000, ...(input !== undefined ? { input } : {}) });
}

describe('berth exec', () => {
  it('prints the output streams apart and ends with the command\'s exit code', async () => {
    const r = await berth(['exec', 'box', 'sh', '-c', 'echo out; echo err >&2; exit 3']);
    assert.equal(r.code, 3);
    assert.equal(r.stdout, 'out\n');
    assert.equal(r.stderr, 'err\n');
  });

  it('-e, -u, -w, -i and -d', async () => {
    const r = await berth(['exec', '-e', 'X=1', '-u', 'nobody', '-w', '/tmp', 'box', 'sh', '-c', 'echo $X $(id -u) $(pwd)']);
    assert.equal(r.stdout, '1 65534 /tmp\n');
    const i = await berth(['exec', '-i', 'box', 'cat'], 'piped\n');
    assert.equal(i.stdout, 'piped\n');
    const d = await berth(['exec', '-d', 'box', 'sh', '-c', 'echo bg > /tmp/d']);
    assert.equal(d.code, 0, d.stderr);
    await sleep(300);
    assert.equal((await berth(['exec', 'box', 'cat', '/tmp/d'])).stdout, 'bg\n');
  });

  it('-it runs in a real terminal', async () => {
    const r = await runInPty(`stty rows 19 cols 81; ${process.execPath} ${cliMain} exec -it box sh -c 'tty; stty size; exit 2'`, daemon.env);
    assert.equal(r.status, 2, r.stdout);
    assert.match(r.stdout, /\/dev\/pts\/\d+/);
    assert.match(r.stdout, /19 81/);
  });

  it('--env-file reaches berth, not node (Node 20 reads that flag anywhere on its command line)', async () => {
    const file = join(daemon.root, 'env.list');
    writeFileSync(file, 'FROM_FILE=yes\n');
    const r = await berth(['exec', '--env-file', file, 'box', 'sh', '-c', 'echo $FROM_FILE']);
    assert.equal(r.stdout, 'yes\n', r.stderr);
    const missing = await berth(['exec', '--env-file', join(daemon.root, 'no-such.list'), 'box', 'true']);
    assert.match(missing.stderr, /^open .*no-such\.list: no such file or directory/m, 'node, not berth, read the flag');
  });

  it('a missing command is 127; a stopped container is refused', async () => {
    const missing = await berth(['exec', 'box', 'no-such-command']);
    assert.equal(missing.code, 127);
    assert.equal((await berth(['stop', '-t', '0', 'box'])).code, 0);
    const stopped = await berth(['exec', 'box', 'true']);
    assert.notEqual(stopped.code, 0);
    assert.match(stopped.stderr, /is not running/);
  });
});
