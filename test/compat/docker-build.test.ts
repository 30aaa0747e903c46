// The real docker CLI's classic builder (DOCKER_BUILDKIT=0 docker build) against a private
// berthd: the steps of a Dockerfile, what runs from the image, its history, the cache, a
// failing RUN, and hostile contexts that must not reach outside where they should.
import * as assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { TarWriter } from '../../src/archive/tar-writer.js';
import { daemonWithBusybox, run, until, type RunResult } from '../helpers/berthd.js';
import { BUSYBOX_TAG, TestRegistry } from '../registry/registries.js';

describe('docker build (classic builder)', () => {
  const fixture = daemonWithBusybox();
  let scratch: string;

  before(() => {
    scratch = mkdtempSync(join(tmpdir(), 'berth-build-'));
    APP = appContext();
  });
  after(() => {
    rmSync(scratch, { recursive: true, force: true });
  });

  /** `docker build` with the classic builder; `input` is stdin (a context tar for `-`). */
  function build(args: string[], input?: Buffer): Promise<RunResult> {
    const env = { ...fixture.daemon.env, DOCKER_BUILDKIT: '0' };
    return run('timeout', ['-s', 'KILL', '150', 'docker', 'build', ...args], { env, timeoutMs: 160_000, ...(input ? { input } : {}) });
  }

  async function buildOk(args: string[], input?: Buffer): Promise<string> {
    const r = await build(args, input);
    assert.equal(r.code, 0, `docker build ${args.join(' ')} failed (${r.code}):\n${r.stdout}\n${r.stderr}\n${fixture.daemon.log.slice(-3000)}`);
    return r.stdout;
  }

  function contextDir(name: string, files: Record<string, string>): string {
    const dir = join(scratch, name);
    for (const [path, content] of Object.entries(files)) {
      mkdirSync(join(dir, path, '..'), { recursive: true });
      writeFileSync(join(dir, path), content);
    }
    return dir;
  }

  let APP: string;
  const appContext = () => contextDir('app', {
    Dockerfile: [
      'FROM busybox',
      '# a comment',
      'ENV GREETING=hello \\',
      '    TARGET=world',
      'WORKDIR /app',
      'COPY greeting.txt ./',
      'COPY conf/ conf/',
      'RUN cat greeting.txt conf/a.txt > combined.txt && \\',
      '    echo "$GREETING $TARGET" >> combined.txt && echo built-output',
      'CMD ["cat", "/app/combined.txt", "/app/conf/sub/b.txt"]',
      '',
    ].join('\n'),
    'greeting.txt': 'greeting-file\n',
    'conf/a.txt': 'conf-a\n',
    'conf/sub/b.txt': 'conf-b\n',
  });

  it('builds an image step by step, streaming docker\'s messages', async () => {
    const out = await buildOk(['-t', 'built:1', '-t', 'built:also', APP]);
    assert.match(out, /^Step 1\/7 : FROM busybox$/m);
    assert.match(out, /^Step 2\/7 : ENV GREETING=hello {5}TARGET=world$/m);
    assert.match(out, /^Step 6\/7 : RUN cat greeting.txt/m);
    assert.match(out, /^ ---> Running in [0-9a-f]{12}$/m);
    assert.match(out, /^built-output$/m);
    assert.match(out, /^Successfully built [0-9a-f]{12}$/m);
    assert.match(out, /^Successfully tagged built:1$/m);
    assert.match(out, /^Successfully tagged built:also$/m);
    const run = await fixture.ok('run', '--rm', 'built:1');
    assert.equal(run, 'greeting-file\nconf-a\nhello world\nconf-b\n');
    const inspect = JSON.parse(await fixture.ok('image', 'inspect', 'built:1')) as Array<{ Id: string; Config: { Env: string[]; WorkingDir: string; Cmd: string[] } }>;
    assert.ok(inspect[0]!.Config.Env.includes('GREETING=hello'));
    assert.equal(inspect[0]!.Config.WorkingDir, '/app');
    assert.deepEqual(inspect[0]!.Config.Cmd, ['cat', '/app/combined.txt', '/app/conf/sub/b.txt']);
    // No intermediate container is left.
    assert.equal((await fixture.ok('ps', '-aq')).trim(), '');
  });

  it('records the steps in the history, metadata steps as empty layers', async () => {
    const history = await fixture.ok('history', '--no-trunc', '--format', '{{.CreatedBy}}|{{.Size}}', 'built:1');
    const lines = history.trim().split('\n');
    assert.match(lines[0]!, /^\/bin\/sh -c #\(nop\) {2}CMD \["cat" "\/app\/combined.txt" "\/app\/conf\/sub\/b.txt"\]\|0B$/);
    assert.match(lines[1]!, /^\/bin\/sh -c cat greeting.txt conf\/a.txt > combined.txt/);
    assert.match(lines[2]!, /^\/bin\/sh -c #\(nop\) COPY dir:[0-9a-f]{64} in \/app\/conf /);
    assert.match(lines[3]!, /^\/bin\/sh -c #\(nop\) COPY file:[0-9a-f]{64} in \/app /);
    assert.match(lines[4]!, /^\/bin\/sh -c #\(nop\) {2}WORKDIR \/app\|0B$/);
    assert.match(lines[5]!, /^\/bin\/sh -c #\(nop\) {2}ENV GREETING=hello/);
  });

  it('a second build takes every step from the cache; --no-cache takes none', async () => {
    const first = JSON.parse(await fixture.ok('image', 'inspect', 'built:1')) as Array<{ Id: string }>;
    const out = await buildOk(['-t', 'built:2', APP]);
    assert.equal(out.match(/^ ---> Using cache$/gm)?.length, 6, out);
    assert.doesNotMatch(out, /Running in/);
    const second = JSON.parse(await fixture.ok('image', 'inspect', 'built:2')) as Array<{ Id: string }>;
    assert.equal(second[0]!.Id, first[0]!.Id);

    const fresh = await buildOk(['--no-cache', '-t', 'built:3', APP]);
    assert.doesNotMatch(fresh, /Using cache/);
    assert.match(fresh, /built-output/);
  });

  it('a changed file misses the cache from its COPY on', async () => {
    const dir = contextDir('app-changed', { Dockerfile: 'FROM busybox\nENV A=1\nCOPY f /f\nRUN cat /f\n', f: 'one\n' });
    await buildOk(['-t', 'changed:1', dir]);
    writeFileSync(join(dir, 'f'), 'two\n');
    const out = await buildOk(['-t', 'changed:2', dir]);
    assert.equal(out.match(/^ ---> Using cache$/gm)?.length, 1, out);
    assert.match(out, /^two$/m);
  });

  it('a failing RUN gives docker\'s error; --force-rm leaves no container', async () => {
    const dir = contextDir('failing', { Dockerfile: 'FROM busybox\nRUN echo before && false\n' });
    const before = (await fixture.ok('ps', '-aq')).trim();
    const r = await build(['--force-rm', '-t', 'failing', dir]);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stdout, /^before$/m);
    assert.match(r.stderr, /The command '\/bin\/sh -c echo before && false' returned a non-zero code: 1/);
    assert.equal((await fixture.ok('ps', '-aq')).trim(), before);
    const images = await fixture.docker('image', 'inspect', 'failing');
    assert.notEqual(images.code, 0);

    // Without --force-rm docker keeps the failed step's container, for a look inside.
    const kept = await build(['-t', 'failing', dir]);
    assert.equal(kept.code, 1);
    const left = (await fixture.ok('ps', '-aq', '--no-trunc')).trim().split('\n').filter((id) => id && !before.split('\n').some((b) => b && id.startsWith(b)));
    assert.equal(left.length, 1);
    assert.match(await fixture.ok('inspect', '--format', '{{.State.ExitCode}}', left[0]!), /^1$/m);
    await fixture.ok('rm', left[0]!);
  });

  it('takes build args, labels, ARG defaults and a Dockerfile named with -f', async () => {
    const dir = contextDir('args', {
      'other.Dockerfile': 'FROM busybox\nARG WHO=nobody\nARG UNSET\nARG KEPT=k\nENV KEPT=$KEPT OTHER=${WHO}-env\nLABEL who=$WHO\nRUN echo "who=$WHO unset=${UNSET:-none}" > /who\nCMD ["cat", "/who"]\n',
    });
    const out = await buildOk(['-f', join(dir, 'other.Dockerfile'), '--build-arg', 'WHO=somebody', '--build-arg', 'NOPE=1', '--label', 'extra=yes', '-t', 'args', dir]);
    assert.match(out, /^\[Warning\] One or more build-args \[NOPE\] were not consumed$/m);
    assert.equal(await fixture.ok('run', '--rm', 'args'), 'who=somebody unset=none\n');
    const labels = await fixture.ok('image', 'inspect', '--format', '{{json .Config.Labels}}', 'args');
    assert.deepEqual(JSON.parse(labels), { who: 'somebody', extra: 'yes' });
    const env = JSON.parse(await fixture.ok('image', 'inspect', '--format', '{{json .Config.Env}}', 'args')) as string[];
    assert.ok(!env.some((e) => e.startsWith('WHO=')), env.join(' '));
    assert.ok(env.includes('KEPT=k'), env.join(' '));
    assert.ok(env.includes('OTHER=somebody-env'), env.join(' '));
  });

  it('plain docker build (no DOCKER_BUILDKIT) uses the classic builder berthd announces', async () => {
    const dir = contextDir('plain', { Dockerfile: 'FROM busybox\nRUN echo plain-build\n' });
    const env = { ...fixture.daemon.env };
    delete env['DOCKER_BUILDKIT'];
    const r = await run('timeout', ['-s', 'KILL', '150', 'docker', 'build', '-t', 'plain', dir], { env, timeoutMs: 160_000 });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /^plain-build$/m);
  });

  it('-q prints the image id only', async () => {
    const dir = contextDir('quiet', { Dockerfile: 'FROM busybox\nRUN echo not-shown\n' });
    const iidfile = join(scratch, 'iid');
    const out = await buildOk(['-q', '--no-cache', '--iidfile', iidfile, dir]);
    assert.match(out.trim(), /^sha256:[0-9a-f]{64}$/);
    assert.equal(readFileSync(iidfile, 'utf8').trim(), out.trim());
  });

  it('COPY takes wildcards, ADD unpacks a local tar archive, .dockerignore leaves files out', async () => {
    const dir = contextDir('wild', {
      Dockerfile: 'FROM busybox\nCOPY *.txt /w/\nADD bundle.tar /unpacked\nADD bundle.tgz /gz/\nCOPY . /all/\nCOPY --chown=1000:1001 --chmod=640 a.txt /owned\nCOPY --chown=www-data:mail b.txt /named\nCMD ["sh", "-c", "ls /w /unpacked /gz /all | tr \'\\\\n\' \' \'"]\n',
      'a.txt': 'a',
      'b.txt': 'b',
      'c.md': 'c',
      'secret.key': 'k',
      '.dockerignore': '*.key\n',
      'bundle/inner.txt': 'inner',
    });
    const tar = run('tar', ['-C', join(dir, 'bundle'), '-cf', join(dir, 'bundle.tar'), '.']);
    assert.equal((await tar).code, 0);
    assert.equal((await run('tar', ['-C', join(dir, 'bundle'), '-czf', join(dir, 'bundle.tgz'), '.'])).code, 0);
    rmSync(join(dir, 'bundle'), { recursive: true });
    await buildOk(['-t', 'wild', dir]);
    const listing = await fixture.ok('run', '--rm', 'wild');
    assert.equal(listing.replace(/\s+/g, ' ').trim(), '/all: Dockerfile a.txt b.txt bundle.tar bundle.tgz c.md /gz: inner.txt /unpacked: inner.txt /w: a.txt b.txt');
    assert.equal(await fixture.ok('run', '--rm', 'wild', 'stat', '-c', '%u:%g %a', '/owned', '/w/a.txt'), '1000:1001 640\n0:0 644\n');
    const ids = (await fixture.ok('run', '--rm', 'wild', 'sh', '-c', 'echo "$(id -u www-data):$(grep ^mail: /etc/group | cut -d: -f3)"')).trim();
    assert.equal(await fixture.ok('run', '--rm', 'wild', 'stat', '-c', '%u:%g', '/named'), `${ids}\n`);
  });

  it('the cache survives a restart of berthd, and a deleted image is not taken from it', async () => {
    const dir = contextDir('restart', { Dockerfile: 'FROM busybox\nRUN echo cached-step > /f\n' });
    await buildOk(['-t', 'restart:1', dir]);
    await fixture.daemon.restart();
    const again = await buildOk(['-t', 'restart:2', dir]);
    assert.match(again, /Using cache/);
    await fixture.ok('rmi', 'restart:1', 'restart:2');
    const after = await buildOk(['-t', 'restart:3', dir]);
    assert.doesNotMatch(after, /Using cache/);
    assert.match(after, /Running in/);
  });

  it('builds several stages: FROM an earlier stage, COPY --from by name and index, --target', async () => {
    const dir = contextDir('stages', {
      Dockerfile: [
        'ARG BASE=busybox',
        'FROM $BASE AS builder',
        'WORKDIR /src',
        'COPY input.txt .',
        'RUN mkdir -p /out/sub && tr a-z A-Z < input.txt > /out/sub/result.txt && echo stage-one',
        'FROM builder AS second',
        'RUN echo second > /second.txt',
        'FROM busybox',
        'COPY --from=builder /out/ /final/',
        'COPY --from=1 /second.txt /final/second.txt',
        'COPY --from=busybox /bin/busybox /final/bb',
        'CMD ["sh", "-c", "cat /final/sub/result.txt /final/second.txt; test -x /final/bb && echo bb-ok"]',
        '',
      ].join('\n'),
      'input.txt': 'shout\n',
    });
    const out = await buildOk(['-t', 'stages', dir]);
    assert.match(out, /^Step 11\/11 : CMD/m);
    assert.match(out, /^Step 1\/11 : FROM \$BASE AS builder$/m);
    assert.equal(await fixture.ok('run', '--rm', 'stages'), 'SHOUT\nsecond\nbb-ok\n');
    // Only the final stage's files are in the image.
    const ls = await fixture.ok('run', '--rm', 'stages', 'sh', '-c', 'ls /src /second.txt 2>&1; true');
    assert.match(ls, /No such file/);
    assert.equal((await fixture.ok('ps', '-aq')).trim(), '');

    await buildOk(['--target', 'builder', '-t', 'stages:builder', dir]);
    assert.equal(await fixture.ok('run', '--rm', 'stages:builder', 'cat', '/out/sub/result.txt'), 'SHOUT\n');
    const again = await buildOk(['-t', 'stages:again', dir]);
    assert.doesNotMatch(again, /Running in/);
  });

  it('berth build: a directory less its .dockerignore, -f outside it, build args, -q, stdin', async () => {
    const dir = contextDir('berth-cli', {
      'app.txt': 'app\n',
      'skip.log': 'skip\n',
      'keep/x.log': 'kept\n',
      '.dockerignore': '*.log\n**/*.log\n!keep/x.log\n',
    });
    const dockerfile = join(scratch, 'outside.Dockerfile');
    writeFileSync(dockerfile, 'FROM busybox\nARG V\nCOPY . /ctx/\nRUN echo "v=$V" > /v\nCMD ["sh", "-c", "cat /v; find /ctx -type f | sort"]\n');
    const berth = (args: string[], input?: string) => fixture.daemon.berth(args, { timeoutMs: 120_000, ...(input !== undefined ? { input } : {}) });
    const r = await berth(['build', '-f', dockerfile, '--build-arg', 'V=7', '-t', 'berthcli', dir]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /^Successfully tagged berthcli:latest$/m);
    const listing = await fixture.ok('run', '--rm', 'berthcli');
    assert.match(listing, /^v=7$/m);
    assert.match(listing, /\/ctx\/app.txt/);
    assert.match(listing, /\/ctx\/keep\/x.log/);
    assert.doesNotMatch(listing, /skip.log/);

    const quiet = await berth(['build', '-q', '-f', dockerfile, dir]);
    assert.equal(quiet.code, 0, quiet.stderr);
    assert.match(quiet.stdout.trim(), /^sha256:[0-9a-f]{64}$/);

    const stdin = await berth(['build', '-t', 'fromstdin', '-'], 'FROM busybox\nCMD ["echo", "from-stdin"]\n');
    assert.equal(stdin.code, 0, stdin.stderr);
    assert.equal(await fixture.ok('run', '--rm', 'fromstdin'), 'from-stdin\n');

    const failing = await berth(['build', '--force-rm', '-'], 'FROM busybox\nRUN exit 3\n');
    assert.equal(failing.code, 3, failing.stdout + failing.stderr);
    assert.match(failing.stderr, /The command '\/bin\/sh -c exit 3' returned a non-zero code: 3/);
  });

  it('builds FROM scratch: COPY makes the first layer, RUN then runs what was copied', async () => {
    const dir = contextDir('scratch', {
      Dockerfile: [
        'FROM busybox AS tools',
        'FROM scratch',
        'ENV PATH=/bin',
        'COPY --from=tools /bin/busybox /bin/busybox',
        'COPY greeting.txt /data/',
        'COPY greeting.txt /deep/down/named.txt',
        'RUN ["/bin/busybox", "sh", "-c", "/bin/busybox echo ran > /data/ran"]',
        'CMD ["/bin/busybox", "cat", "/data/greeting.txt", "/data/ran", "/deep/down/named.txt"]',
        '',
      ].join('\n'),
      'greeting.txt': 'from-scratch\n',
    });
    const out = await buildOk(['-t', 'fromscratch', dir]);
    assert.match(out, /^Step 2\/8 : FROM scratch\n ---> \n/m);
    assert.equal(await fixture.ok('run', '--rm', 'fromscratch'), 'from-scratch\nran\nfrom-scratch\n');
    const history = await fixture.ok('history', '-q', 'fromscratch');
    assert.equal(history.trim().split('\n').length, 6);
  });

  it('a client that goes away cancels the build: the running step is killed and removed', async () => {
    const dir = contextDir('cancel', { Dockerfile: 'FROM busybox\nRUN echo started && sleep 600\n' });
    const env = { ...fixture.daemon.env, DOCKER_BUILDKIT: '0' };
    const child = spawn('docker', ['build', dir], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    try {
      await until('the step runs', async () => /^started$/m.test(out), 60_000);
    } finally {
      child.kill('SIGKILL');
    }
    await until('the step container is gone', async () => (await fixture.ok('ps', '-aq')).trim() === '', 30_000);
  });

  it('runs the base image\'s ONBUILD triggers first, and does not pass them on', async () => {
    const base = contextDir('onbuild-base', { Dockerfile: 'FROM busybox\nONBUILD COPY trigger.txt /trig\nONBUILD RUN echo triggered-run\n' });
    await buildOk(['-t', 'onbuild-base', base]);
    const triggers = await fixture.ok('image', 'inspect', '--format', '{{json .Config.OnBuild}}', 'onbuild-base');
    assert.deepEqual(JSON.parse(triggers), ['COPY trigger.txt /trig', 'RUN echo triggered-run']);
    const child = contextDir('onbuild-child', { Dockerfile: 'FROM onbuild-base\nCMD ["cat", "/trig"]\n', 'trigger.txt': 'from-the-child\n' });
    const out = await buildOk(['-t', 'onbuild-child', child]);
    assert.match(out, /^# Executing 2 build triggers$/m);
    assert.match(out, /^triggered-run$/m);
    assert.equal(await fixture.ok('run', '--rm', 'onbuild-child'), 'from-the-child\n');
    const inherited = await fixture.ok('image', 'inspect', '--format', '{{json .Config.OnBuild}}', 'onbuild-child');
    assert.ok(['null', '[]'].includes(inherited.trim()), inherited);
  });

  it('pulls a FROM image that is not here, showing the pull in the build\'s output', async () => {
    const registry = await TestRegistry.start();
    try {
      await registry.pushBusybox('library/pulled', BUSYBOX_TAG);
      const image = `${registry.host}/library/pulled:${BUSYBOX_TAG}`;
      const dir = contextDir('pull', { Dockerfile: `FROM ${image}\nRUN echo pulled-base\n` });
      const out = await buildOk(['-t', 'pulled-build', dir]);
      assert.match(out, /Pull complete|Download complete|Downloaded newer image|Status: /, out);
      assert.match(out, /^pulled-base$/m);
      await fixture.ok('image', 'inspect', image);
      // --pull asks the registry again although the image is here.
      const again = await buildOk(['--pull', '-t', 'pulled-build', dir]);
      assert.match(again, /Status: Image is up to date|Already exists|Digest: /, again);
    } finally {
      await registry.stop();
    }
  });

  it('sets the run config from the metadata instructions, each an empty layer', async () => {
    const dir = contextDir('metadata', {
      Dockerfile: [
        'FROM busybox',
        'LABEL a=1 "b c"="d e"',
        'EXPOSE 80 53/udp',
        'VOLUME ["/data"]',
        'USER 1000:1000',
        'STOPSIGNAL SIGTERM',
        'HEALTHCHECK --interval=5s --retries=2 CMD true',
        'SHELL ["/bin/sh", "-ec"]',
        'RUN echo "shell=$0"',
        'ENTRYPOINT ["echo", "entry"]',
        'CMD ["arg"]',
        'MAINTAINER someone',
        '',
      ].join('\n'),
    });
    const out = await buildOk(['-t', 'metadata', dir]);
    assert.match(out, /^shell=\/bin\/sh$/m);
    const config = JSON.parse(await fixture.ok('image', 'inspect', '--format', '{{json .Config}}', 'metadata')) as Record<string, unknown>;
    assert.deepEqual(config['Labels'], { a: '1', 'b c': 'd e' });
    assert.deepEqual(config['ExposedPorts'], { '80/tcp': {}, '53/udp': {} });
    assert.deepEqual(config['Volumes'], { '/data': {} });
    assert.equal(config['User'], '1000:1000');
    assert.equal(config['StopSignal'], 'SIGTERM');
    assert.deepEqual(config['Healthcheck'], { Test: ['CMD-SHELL', 'true'], Interval: 5_000_000_000, Retries: 2 });
    assert.deepEqual(config['Shell'], ['/bin/sh', '-ec']);
    assert.deepEqual(config['Entrypoint'], ['echo', 'entry']);
    assert.deepEqual(config['Cmd'], ['arg']);
    assert.equal(await fixture.ok('image', 'inspect', '--format', '{{.Author}}', 'metadata'), 'someone\n');
    assert.equal(await fixture.ok('run', '--rm', 'metadata'), 'entry arg\n');
    const sizes = await fixture.ok('history', '--format', '{{.Size}}', 'metadata');
    const own = sizes.trim().split('\n').slice(0, 11);
    assert.deepEqual(own, Array(11).fill('0B'));
  });

  it('a context tar with "../" entries cannot write outside the context', async () => {
    const marker = `berth-build-escape-${process.pid}-${Date.now()}`;
    const tar = await tarOf([
      { name: 'Dockerfile', body: 'FROM busybox\nCOPY . /ctx/\n' },
      { name: `../${marker}`, body: 'escaped\n' },
      { name: `../../../../../../../../tmp/${marker}`, body: 'escaped\n' },
    ]);
    const r = await build(['-t', 'hostile1', '-'], tar);
    assert.notEqual(r.code, 0, r.stdout);
    assert.match(r.stderr, /the build context is refused: "\.\.\/berth-build-escape-[^"]*" is outside of "\/"/);
    assert.equal(existsSync(join('/tmp', marker)), false);
    const found = await run('find', [fixture.daemon.root, '-name', marker]);
    assert.equal(found.stdout.trim(), '');
  });

  it('a symlink in the context cannot make COPY read outside the context', async () => {
    const secret = join(scratch, 'host-secret');
    writeFileSync(secret, 'host-secret-content\n');
    const dir = contextDir('links', { Dockerfile: 'FROM busybox\nCOPY abs /abs\nCOPY rel /rel\nCOPY dirlink/host-secret /viadir\n' });
    symlinkSync(secret, join(dir, 'abs'));
    symlinkSync('../../../../../../../../../../..' + secret, join(dir, 'rel'));
    symlinkSync(scratch, join(dir, 'dirlink'));
    const r = await build(['-t', 'hostile2', dir]);
    assert.notEqual(r.code, 0, r.stdout);
    assert.match(r.stderr, /file not found in build context/);
    assert.doesNotMatch(r.stdout + r.stderr, /host-secret-content/);
    // Each alone: none reads the host's file either.
    for (const line of ['COPY abs /abs', 'COPY rel /rel', 'COPY dirlink/host-secret /viadir']) {
      writeFileSync(join(dir, 'Dockerfile'), `FROM busybox\n${line}\nCMD ["sh", "-c", "cat /abs /rel /viadir 2>/dev/null; true"]\n`);
      const one = await build(['-t', 'hostile3', dir]);
      if (one.code === 0) assert.doesNotMatch(await fixture.ok('run', '--rm', 'hostile3'), /host-secret-content/);
    }
  });

  it('COPY into a symlink of the image stays inside the container', async () => {
    const outside = join(scratch, 'outside-target');
    mkdirSync(outside);
    const dir = contextDir('destlink', { Dockerfile: `FROM busybox\nRUN ln -s ${outside} /escape\nCOPY f /escape/\nCMD ["cat", "${outside}/f"]\n`, f: 'inside\n' });
    await buildOk(['-t', 'destlink', dir]);
    assert.equal(existsSync(join(outside, 'f')), false);
    assert.equal(await fixture.ok('run', '--rm', 'destlink'), 'inside\n');
  });
});

async function tarOf(entries: Array<{ name: string; body: string }>): Promise<Buffer> {
  const writer = new TarWriter();
  const chunks: Buffer[] = [];
  writer.stream.on('data', (c: Buffer) => chunks.push(c));
  const ended = new Promise((resolve) => writer.stream.on('end', resolve));
  for (const e of entries) await writer.add({ name: e.name, type: 'file', mode: 0o644, mtime: new Date() }, Buffer.from(e.body));
  await writer.finish();
  await ended;
  return Buffer.concat(chunks);
}
