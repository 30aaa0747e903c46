// The real docker CLI (and berth's) against a private berthd: commit (-c, -m, -a, -p, of a
// running, stopped or never started container, berth's --squash), diff, export, and the
// history of committed images; what runs from a committed image is what was committed.
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { lgetxattr } from '../../src/native/native.js';
import { TestDaemon, cliMain, sleep } from '../helpers/berthd.js';

let daemon: TestDaemon;
let scratch: string;

before(async () => {
  daemon = await TestDaemon.start();
  scratch = mkdtempSync(join(tmpdir(), 'berth-commit-'));
  await daemon.loadBusybox();
});

after(async () => {
  await daemon?.cleanup();
  rmSync(scratch, { recursive: true, force: true });
});

async function docker(...args: string[]) {
  return daemon.docker(args, { timeoutMs: 60_000 });
}

async function ok(...args: string[]): Promise<string> {
  const r = await docker(...args);
  assert.equal(r.code, 0, `docker ${args.join(' ')} failed (${r.code}): ${r.stderr}\n${daemon.log.slice(-3000)}`);
  return r.stdout;
}

async function berthOk(...args: string[]): Promise<string> {
  const r = await daemon.berth(args, { timeoutMs: 60_000 });
  assert.equal(r.code, 0, `berth ${args.join(' ')} failed (${r.code}): ${r.stderr}\n${daemon.log.slice(-3000)}`);
  return r.stdout;
}

/** A shell pipeline with the daemon's environment (docker output is binary: no JS strings). */
function shell(script: string): { code: number; stdout: string; stderr: string } {
  const r = spawnSync('bash', ['-o', 'pipefail', '-c', script], { env: daemon.env, encoding: 'utf8', timeout: 60_000, killSignal: 'SIGKILL' });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** GET on the daemon's socket, parsed: fast enough to watch a state while a commit runs. */
function apiGet<T>(path: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: daemon.socket, path, method: 'GET', timeout: 5000 }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => {
        try {
          resolve(JSON.parse(body) as T);
        } catch (err) {
          reject(err);
        }
      });
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${path} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

async function until(what: string, test: () => Promise<boolean>, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await test()) return;
    await sleep(50);
  }
  assert.fail(`timed out waiting for ${what}`);
}

describe('docker CLI against berthd: commit, diff, export, history', () => {
  it('commit -c -m -a: the image runs the new CMD, has the file, and shows author and message', async () => {
    await ok('run', '--name', 'maker', 'busybox', 'sh', '-c', 'echo hello from a commit > /hello');
    const id = (await ok('commit', '-c', 'CMD ["cat","/hello"]', '-m', 'added hello', '-a', 'Ada <ada@example.com>', 'maker', 'committed:v1')).trim();
    assert.match(id, /^sha256:[a-f0-9]{64}$/);
    assert.equal(await ok('run', '--rm', 'committed:v1'), 'hello from a commit\n');
    assert.equal(await ok('run', '--rm', 'committed:v1', 'ls', '/hello'), '/hello\n');
    const info = JSON.parse(await ok('image', 'inspect', '-f', '{{json .}}', 'committed:v1')) as {
      Id: string; Author: string; Comment: string; Parent: string; RepoTags: string[];
      Config: { Cmd: string[]; Env: string[] }; RootFS: { Layers: string[] };
    };
    assert.equal(info.Id, id);
    assert.equal(info.Author, 'Ada <ada@example.com>');
    assert.equal(info.Comment, 'added hello');
    assert.deepEqual(info.RepoTags, ['committed:v1']);
    assert.deepEqual(info.Config.Cmd, ['cat', '/hello']);
    assert.ok(info.Config.Env.some((e) => e.startsWith('PATH=')), 'the image\'s Env was lost');
    const base = (await ok('image', 'inspect', '-f', '{{.Id}}', 'busybox')).trim();
    assert.equal(info.Parent, base);
    assert.equal(info.RootFS.Layers.length, 2);
    await ok('rm', 'maker');
  });

  it('docker history shows the new layer on top with its size, command and comment', async () => {
    await ok('run', '--name', 'sized', 'busybox', 'sh', '-c', 'head -c 5000 /dev/zero > /blob');
    await ok('commit', '-m', 'five thousand zeros', 'sized', 'sized:v1');
    const rows = (await ok('history', '--no-trunc', '--format', '{{.ID}}|{{.Size}}|{{.CreatedBy}}|{{.Comment}}', 'sized:v1')).trim().split('\n');
    const base = (await ok('history', '--format', '{{.ID}}', 'busybox')).trim().split('\n');
    assert.equal(rows.length, base.length + 1);
    const [top] = rows;
    const [topId, size, createdBy, comment] = top!.split('|');
    assert.equal(topId, (await ok('image', 'inspect', '-f', '{{.Id}}', 'sized:v1')).trim());
    assert.equal(size, '5kB');
    assert.equal(createdBy, 'sh -c head -c 5000 /dev/zero > /blob');
    assert.equal(comment, 'five thousand zeros');
    // The layers below are the image's.
    assert.equal(rows[1]!.split('|')[0], (await ok('image', 'inspect', '-f', '{{.Id}}', 'busybox')).trim());
    await ok('rm', 'sized');
  });

  it('a file deleted from a lower layer stays deleted; a replaced directory is opaque', async () => {
    await ok('run', '--name', 'deleter', 'busybox', 'sh', '-c', 'rm /bin/vi && rm -rf /etc/network && mkdir /etc/network && echo mine > /etc/network/only');
    await ok('commit', 'deleter', 'deleted:v1');
    const vi = await docker('run', '--rm', 'deleted:v1', 'ls', '/bin/vi');
    assert.notEqual(vi.code, 0, 'the deleted file came back');
    assert.match(vi.stderr + vi.stdout, /No such file or directory/);
    assert.equal(await ok('run', '--rm', 'deleted:v1', 'ls', '-A', '/etc/network'), 'only\n');
    // Other applets of the same layer are still there.
    assert.equal(await ok('run', '--rm', 'deleted:v1', 'ls', '/bin/ls'), '/bin/ls\n');
    // On disk: the new layer holds a whiteout for vi and an opaque /etc/network.
    const upper = (await ok('image', 'inspect', '-f', '{{.GraphDriver.Data.UpperDir}}', 'deleted:v1')).trim();
    assert.equal(lgetxattr(join(upper, 'etc', 'network'), 'trusted.overlay.opaque')?.toString(), 'y');
    const vist = spawnSync('stat', ['-c', '%F %t:%T', join(upper, 'bin', 'vi')], { encoding: 'utf8' });
    assert.equal(vist.stdout.trim(), 'character special file 0:0');
    await ok('rm', 'deleter');
  });

  it('docker diff lists A, C and D as docker does, without the runtime\'s mount points', async () => {
    await ok('run', '--name', 'differ', 'busybox', 'sh', '-c', 'touch /x /etc/newfile && rm /bin/rm');
    assert.equal(await ok('diff', 'differ'), ['C /bin', 'D /bin/rm', 'C /etc', 'A /etc/newfile', 'A /x', ''].join('\n'));
    assert.equal(await berthOk('diff', 'differ'), await ok('container', 'diff', 'differ'));
    // A fresh container has no changes (its /etc/hosts, /proc... are mount points).
    await ok('run', '--name', 'clean', 'busybox', 'true');
    assert.equal(await ok('diff', 'clean'), '');
    // A replaced directory: what it held in the image is deleted, its new content added.
    await ok('run', '--name', 'replacer', 'busybox', 'sh', '-c', 'rm -rf /etc/network && mkdir /etc/network && touch /etc/network/only');
    const replaced = (await ok('diff', 'replacer')).trim().split('\n');
    assert.deepEqual(replaced.filter((l) => l.includes('/etc/network')), [
      'C /etc/network',
      'D /etc/network/if-down.d',
      'D /etc/network/if-post-down.d',
      'D /etc/network/if-pre-up.d',
      'D /etc/network/if-up.d',
      'A /etc/network/only',
    ]);
    const missing = await docker('diff', 'no-such-container');
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /No such container: no-such-container/);
    await ok('rm', 'differ', 'clean', 'replacer');
  });

  it('docker export | tar -t lists the whole filesystem, as it is in the container', async () => {
    await ok('run', '--name', 'exported', 'busybox', 'sh', '-c', 'echo exported > /exported.txt && rm /bin/vi');
    const listed = shell('docker export exported | tar -t');
    assert.equal(listed.code, 0, listed.stderr);
    const names = new Set(listed.stdout.split('\n'));
    for (const name of ['bin/', 'bin/busybox', 'bin/ls', 'etc/passwd', 'exported.txt']) assert.ok(names.has(name), `${name} is not in the export`);
    assert.ok(!names.has('bin/vi'), 'a deleted file was exported');
    assert.ok(![...names].some((n) => n.startsWith('/') || n.startsWith('./') || n.includes('.wh.')), 'names are relative, without whiteouts');
    const out = join(scratch, 'exported.tar');
    await ok('export', '-o', out, 'exported');
    const content = shell(`tar -xOf ${out} exported.txt`);
    assert.equal(content.stdout, 'exported\n');
    // berth's export and its container alias give the same files.
    const viaBerth = join(scratch, 'berth-exported.tar');
    await berthOk('container', 'export', '-o', viaBerth, 'exported');
    assert.equal(shell(`tar -tf ${viaBerth} | sort`).stdout, shell(`tar -tf ${out} | sort`).stdout);
    // Refused to a terminal, as docker refuses.
    const tty = spawnSync('script', ['-qec', `${process.execPath} ${cliMain} export exported`, '/dev/null'], {
      env: daemon.env, encoding: 'utf8', timeout: 30_000, killSignal: 'SIGKILL',
    });
    assert.equal(tty.status, 1, tty.stdout);
    assert.match(tty.stdout, /cowardly refusing to save to a terminal\. Use the -o flag or redirect/);
    const badDir = await daemon.berth(['export', '-o', join(scratch, 'no', 'such', 'x.tar'), 'exported']);
    assert.equal(badDir.code, 1);
    assert.match(badDir.stderr, /failed to export container: invalid output path: directory ".*no\/such" does not exist/);
    await ok('rm', 'exported');
  });

  it('exports a running container without stopping it', async () => {
    await ok('run', '-d', '--name', 'live', 'busybox', 'sh', '-c', 'echo live > /live.txt; echo ready; sleep 300');
    await until('the file', async () => (await ok('logs', 'live')).includes('ready'));
    const listed = shell('docker export live | tar -t');
    assert.equal(listed.code, 0, listed.stderr);
    assert.ok(listed.stdout.split('\n').includes('live.txt'));
    assert.equal((await ok('inspect', '-f', '{{.State.Status}}', 'live')).trim(), 'running');
    await ok('rm', '-f', 'live');
  });

  it('commits a stopped container, and one never started (no new layer, as docker)', async () => {
    await ok('run', '--name', 'stopped', 'busybox', 'sh', '-c', 'echo still here > /kept');
    assert.match((await ok('inspect', '-f', '{{.State.Status}}', 'stopped')).trim(), /exited/);
    await ok('commit', 'stopped', 'stopped:v1');
    assert.equal(await ok('run', '--rm', 'stopped:v1', 'cat', '/kept'), 'still here\n');
    await ok('create', '--name', 'fresh', 'busybox', 'true');
    await ok('commit', '-m', 'nothing', 'fresh', 'fresh:v1');
    const layers = (await ok('image', 'inspect', '-f', '{{len .RootFS.Layers}}', 'fresh:v1')).trim();
    assert.equal(layers, (await ok('image', 'inspect', '-f', '{{len .RootFS.Layers}}', 'busybox')).trim());
    const top = (await ok('history', '--format', '{{.Size}}|{{.Comment}}', 'fresh:v1')).split('\n')[0];
    assert.equal(top, '0B|nothing');
    await ok('rm', 'stopped', 'fresh');
  });

  it('-c applies ENV, EXPOSE, LABEL, USER, WORKDIR, VOLUME and ENTRYPOINT; a bad change is refused', async () => {
    await ok('create', '--name', 'configured', '-e', 'KEEP=1', 'busybox', 'sleep', '1');
    await ok('commit', '-c', 'ENV A=1 B=2', '-c', 'EXPOSE 8080/tcp', '-c', 'LABEL team=berth', '-c', 'USER nobody', '-c', 'WORKDIR /srv', '-c', 'VOLUME /data', '-c', 'ENTRYPOINT ["/bin/echo"]', 'configured', 'configured:v1');
    const config = JSON.parse(await ok('image', 'inspect', '-f', '{{json .Config}}', 'configured:v1')) as {
      Env: string[]; ExposedPorts: Record<string, object>; Labels: Record<string, string>; User: string;
      WorkingDir: string; Volumes: Record<string, object>; Entrypoint: string[]; Cmd: string[] | null;
    };
    assert.ok(config.Env.includes('KEEP=1') && config.Env.includes('A=1') && config.Env.includes('B=2'), config.Env.join(','));
    assert.deepEqual(Object.keys(config.ExposedPorts), ['8080/tcp']);
    assert.equal(config.Labels['team'], 'berth');
    assert.equal(config.User, 'nobody');
    assert.equal(config.WorkingDir, '/srv');
    assert.deepEqual(Object.keys(config.Volumes), ['/data']);
    assert.deepEqual(config.Entrypoint, ['/bin/echo']);
    // Docker: an ENTRYPOINT change drops the container's CMD.
    assert.ok(!config.Cmd, `Cmd: ${JSON.stringify(config.Cmd)}`);
    const bad = await docker('commit', '-c', 'RUN echo nope', 'configured');
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /Error response from daemon: RUN is not a valid change command/);
    const none = await docker('commit', 'no-such-container');
    assert.equal(none.code, 1);
    assert.match(none.stderr, /No such container: no-such-container/);
    await ok('rm', 'configured');
  });

  it('a commit of a running container pauses it meanwhile; -p=false does not', async () => {
    await ok('run', '-d', '--name', 'runner', 'busybox', 'sh', '-c', 'head -c 150000000 /dev/urandom > /big; echo ready; sleep 300');
    await until('the big file', async () => (await ok('logs', 'runner')).includes('ready'), 60_000);
    const since = Math.floor(Date.now() / 1000) - 1;
    const seen = new Set<string>();
    let committing = true;
    const watcher = (async () => {
      while (committing) {
        const info = await apiGet<{ State: { Status: string } }>('/containers/runner/json');
        seen.add(info.State.Status);
        await sleep(5);
      }
    })();
    const committed = await docker('commit', 'runner', 'runner:v1');
    committing = false;
    await watcher;
    assert.equal(committed.code, 0, committed.stderr);
    assert.ok(seen.has('paused'), `the container was never seen paused (seen: ${[...seen].join(', ')})`);
    assert.equal((await ok('inspect', '-f', '{{.State.Status}} {{.State.Paused}}', 'runner')).trim(), 'running false');
    const untilTime = Math.ceil(Date.now() / 1000) + 1;
    const actions = (await ok('events', '--since', String(since), '--until', String(untilTime), '--filter', 'type=container', '--filter', 'container=runner', '--format', '{{.Action}}'))
      .trim().split('\n');
    // Unpaused as soon as the layer is read (docker stays paused until the image exists).
    assert.deepEqual(actions.filter((a) => ['pause', 'commit', 'unpause'].includes(a)), ['pause', 'unpause', 'commit']);
    assert.equal(await ok('run', '--rm', 'runner:v1', 'sh', '-c', 'wc -c < /big'), '150000000\n');

    const since2 = Math.floor(Date.now() / 1000);
    await sleep(1100);
    await ok('commit', '-p=false', 'runner', 'runner:v2');
    const until2 = Math.ceil(Date.now() / 1000) + 1;
    const actions2 = (await ok('events', '--since', String(since2), '--until', String(until2), '--filter', 'type=container', '--filter', 'container=runner', '--format', '{{.Action}}'))
      .trim().split('\n');
    assert.deepEqual(actions2, ['commit']);
    await ok('rm', '-f', 'runner');
    await ok('rmi', 'runner:v1', 'runner:v2');
  });

  it('berth commit --squash: one layer, the same files, the history kept', async () => {
    await ok('run', '--name', 'squashee', 'busybox', 'sh', '-c', 'echo squashed > /hello && rm /bin/vi && rm -rf /etc/network && mkdir /etc/network && touch /etc/network/only');
    const plainId = (await berthOk('commit', '-m', 'plain', 'squashee', 'plain:v1')).trim();
    const squashedId = (await berthOk('container', 'commit', '--squash', '-m', 'squashed', 'squashee', 'squashed:v1')).trim();
    assert.match(squashedId, /^sha256:[a-f0-9]{64}$/);
    assert.notEqual(squashedId, plainId);
    assert.equal((await ok('image', 'inspect', '-f', '{{len .RootFS.Layers}}', 'squashed:v1')).trim(), '1');
    const listing = 'find / -xdev | grep -v "^/proc\\|^/sys\\|^/dev" | sort; cat /hello; ls -A /etc/network';
    const plainFiles = await ok('run', '--rm', 'plain:v1', 'sh', '-c', listing);
    assert.equal(await ok('run', '--rm', 'squashed:v1', 'sh', '-c', listing), plainFiles);
    assert.match(plainFiles, /^squashed\nonly\n$/m);
    assert.doesNotMatch(plainFiles, /^\/bin\/vi$/m);
    const history = (await ok('history', '--format', '{{.Size}}|{{.Comment}}', 'squashed:v1')).trim().split('\n');
    const plainHistory = (await ok('history', '--format', '{{.ID}}', 'plain:v1')).trim().split('\n');
    assert.equal(history.length, plainHistory.length);
    assert.match(history[0]!, /^1\.\d+MB\|squashed$/);
    assert.ok(history.slice(1).every((row) => row.startsWith('0B|')), history.join('\n'));
    await ok('rm', 'squashee');
    // A running container: its upper dir, in use by its own mount, is read through the view too.
    await ok('run', '-d', '--name', 'running-squashee', 'busybox', 'sh', '-c', 'echo running > /state; echo ready; sleep 300');
    await until('the container to write', async () => (await ok('logs', 'running-squashee')).includes('ready'));
    await berthOk('commit', '--squash', 'running-squashee', 'squashed:v2');
    assert.equal(await ok('run', '--rm', 'squashed:v2', 'cat', '/state'), 'running\n');
    assert.equal((await ok('inspect', '-f', '{{.State.Status}}', 'running-squashee')).trim(), 'running');
    await ok('rm', '-f', 'running-squashee');
  });
});
