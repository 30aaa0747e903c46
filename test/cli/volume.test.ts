// berth volume ls, inspect, create, rm and prune against a private berthd, each compared
// with the real docker CLI against the same daemon: the same stdout, stderr and exit status.
// Commands that change the daemon run twice from the same state, once per CLI; creation
// times are compared only where both CLIs print the same volume, and the random names of
// anonymous volumes are put back to one placeholder.
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { daemonWithBusybox, type RunResult } from '../helpers/berthd.js';

const hasDocker = spawnSync('docker', ['--version'], { timeout: 10_000, killSignal: 'SIGKILL' }).status === 0;

const fixture = daemonWithBusybox();
const docker = fixture.ok;

/** docker's words for itself in its own messages ("Usage:  docker volume"), as berth's; "docs.docker.com" stays. */
function asBerth(text: string): string {
  return text.replace(/(?<![\w.-])docker(?![\w.-])/g, 'berth');
}

/** Each name of `names` in `text` as `<name N>`: what two runs from the same state name alike. */
function placeholders(text: string, names: string[]): string {
  return names.reduce((t, name, i) => t.replaceAll(name, `<name ${i}>`), text);
}

function compare(args: string[], mine: RunResult, theirs: RunResult, names: [string[], string[]] = [[], []]): void {
  const [myNames, theirNames] = names;
  assert.deepEqual(
    { stdout: placeholders(mine.stdout, myNames), stderr: placeholders(mine.stderr, myNames), code: mine.code },
    { stdout: placeholders(asBerth(theirs.stdout), theirNames), stderr: placeholders(asBerth(theirs.stderr), theirNames), code: theirs.code },
    `berth ${args.join(' ')}\n${fixture.daemon.log.slice(-2000)}`,
  );
}

const options = (input?: string) => ({ timeoutMs: 30_000, ...(input === undefined ? {} : { input }) });

/** berth and docker, one after the other on the same state, print the same. */
async function sameAsDocker(args: string[], input?: string): Promise<RunResult> {
  const mine = await fixture.daemon.berth(args, options(input));
  compare(args, mine, await fixture.daemon.docker(args, options(input)));
  return mine;
}

/**
 * For a command that changes the daemon: `setup` brings the daemon to a state (and answers
 * the names it made at random), berth runs the command, `setup` brings the same state back,
 * docker runs it; both print the same, but for those names.
 */
async function sameAsDockerFrom(setup: () => Promise<string[] | void>, args: string[], input?: string): Promise<RunResult> {
  const myNames = (await setup()) ?? [];
  const mine = await fixture.daemon.berth(args, options(input));
  const theirNames = (await setup()) ?? [];
  compare(args, mine, await fixture.daemon.docker(args, options(input)), [myNames, theirNames]);
  return mine;
}

/** Removes volumes, whether they exist or not. */
async function removeVolumes(...names: string[]): Promise<void> {
  await fixture.daemon.docker(['volume', 'rm', '-f', ...names.filter((n) => n !== '')]);
}

/** Makes a named volume holding a file of `bytes` bytes. */
async function filledVolume(name: string, bytes: number, ...flags: string[]): Promise<void> {
  await docker('volume', 'create', ...flags, name);
  await docker('run', '--rm', '-v', `${name}:/d`, 'busybox', 'sh', '-c', `head -c ${bytes} /dev/zero > /d/f`);
}

/** Makes an anonymous volume (a container's `-v /d`, kept after the container) holding `bytes` bytes; answers its name. */
async function anonymousVolume(bytes: number): Promise<string> {
  await fixture.daemon.docker(['rm', '-f', 'filler']);
  await docker('run', '--name', 'filler', '-v', '/d', 'busybox', 'sh', '-c', `head -c ${bytes} /dev/zero > /d/f`);
  const name = (await docker('inspect', '-f', '{{range .Mounts}}{{.Name}}{{end}}', 'filler')).trim();
  await docker('rm', 'filler');
  assert.match(name, /^[0-9a-f]{64}$/);
  return name;
}

// Nested under one suite: node 20 runs a file's top-level before hooks side by side, so the
// containers are made in the suite's, once the fixture's daemon has started.
describe('berth volume', { skip: !hasDocker }, () => {
  before(async () => {
    // Volumes in use: by a running container and by a stopped one.
    await docker('run', '-d', '--name', 'running', '-v', 'used:/data', 'busybox', 'sleep', '600');
    await docker('create', '--name', 'stopped', '-v', 'idle:/data', 'busybox', 'true');
  });

  describe('help and usage errors', () => {
    const cases = [
      ['volume'],
      ['volume', '--help'],
      ['volume', '-h'],
      ...['ls', 'list', 'inspect', 'create', 'rm', 'remove', 'prune'].map((c) => ['volume', c, '--help']),
      ['volume', 'ls', '-h'],
      ['volume', 'rm', '--help', 'x'],
      ['volume', 'foo'],
      ['volume', '--bogus'],
      ['volume', '-x'],
      ['volume', 'ls', 'x'],
      ['volume', 'list', 'x'],
      ['volume', 'ls', '--bogus'],
      ['volume', 'ls', '-x'],
      ['volume', 'ls', '-f'],
      ['volume', 'ls', '-f', 'bad'],
      ['volume', 'ls', '--format'],
      ['volume', 'inspect'],
      ['volume', 'inspect', '-f'],
      ['volume', 'create', 'a', 'b'],
      ['volume', 'create', '-d'],
      ['volume', 'create', '-o'],
      ['volume', 'create', '--name'],
      ['volume', 'create', '--label'],
      ['volume', 'create', '--label', '=x', 'y'],
      ['volume', 'create', '--label', 'a b=c', 'y'],
      ['volume', 'create', '--name', 'aa', 'bb'],
      ['volume', 'rm'],
      ['volume', 'remove'],
      ['volume', 'rm', '--force=maybe', 'x'],
      ['volume', 'prune', 'x'],
      ['volume', 'prune', '--filter', 'x'],
      ['volume', 'prune', '-a', '--filter', 'all=1'],
      ['volume', 'prune', '--all', '--filter', 'all=true', '-f'],
    ];
    for (const args of cases) {
      it(args.join(' '), async () => {
        await sameAsDocker(args);
      });
    }
  });

  describe('ls', () => {
    let anonymous = '';

    before(async () => {
      await docker('volume', 'create', 'vol9');
      await docker('volume', 'create', 'vol10');
      await docker('volume', 'create', '--label', 'tier=db', 'Vol1');
      await docker('volume', 'create', '--label', 'bare', 'plain');
      await docker('volume', 'create', '--label', 'html=<a&b>', 'html');
      anonymous = await anonymousVolume(0);
    });

    after(async () => {
      await removeVolumes('vol9', 'vol10', 'Vol1', 'plain', 'html', anonymous);
    });

    const cases = [
      [],
      ['-q'],
      ['--format', 'json'],
      ['--format', '{{json .}}'],
      ['--format', 'table'],
      ['--format', 'raw'],
      ['-q', '--format', 'raw'],
      ['-q', '--format', 'table'],
      ['-q', '--format', '{{.Driver}} {{.Name}}'],
      ['--format', 'table {{.Name}}\t{{.Scope}}\t{{.Mountpoint}}\t{{.Labels}}\t{{.Links}}\t{{.Size}}\t{{.Group}}\t{{.Availability}}\t{{.Status}}\t{{.Label "tier"}}'],
      ['--format', '{{.Name}}: {{.Driver}}/{{.Scope}} {{.Labels}} {{.Label "html"}}'],
      ['--format', '{{.Nope}}'],
      ['--format', 'table {{.Nope}}'],
      ['--format', '{{'],
      ['-f', 'dangling=true'],
      ['-f', 'dangling=false', '-q'],
      ['-f', 'label=tier=db'],
      ['-f', 'label=bare', '--format', '{{json .}}'],
      ['-f', 'label=html'],
      ['-f', 'name=vol'],
      ['--filter', ' Name = vol1 '],
      ['-f', 'name=vol', '-f', 'dangling=true', '-q'],
      ['-f', 'driver=local', '-q'],
      ['-f', 'driver=other'],
      ['-f', 'nope=1'],
    ];
    for (const flags of cases) {
      it(['ls', ...flags].join(' '), async () => {
        await sameAsDocker(['volume', 'ls', ...flags]);
      });
    }

    it('the alias list; names in natural order', async () => {
      const r = await sameAsDocker(['volume', 'list', '-f', 'name=ol', '--format', '{{.Name}}']);
      assert.equal(r.stdout, 'Vol1\nvol9\nvol10\n');
    });
  });

  describe('inspect', () => {
    before(async () => {
      await docker('volume', 'create', '--label', 'b=2', '--label', 'a=1', 'lone');
      await docker('volume', 'create', '--label', 'x=<a&b>', 'html');
    });

    after(async () => {
      await removeVolumes('lone', 'html');
    });

    const cases = [
      ['lone'],
      ['lone', 'nope', 'idle'],
      ['nope'],
      ['html'],
      ['-f', 'json', 'lone', 'html'],
      ['-f', 'json', 'nope'],
      // Over volume.Volume alone: Labels and Options Go maps, ClusterVolume and UsageData nil pointers.
      ['-f', '{{.Name}} {{.CreatedAt}} {{.Labels}} {{.Options}} {{json .Options}} {{.UsageData}} {{json .UsageData}} {{.ClusterVolume}} {{.Status}} {{json .Status}}', 'lone', 'idle'],
      ['-f', '{{.}}', 'lone', 'html'],
      ['-f', '{{json .}}', 'html', 'idle'],
      ['-f', '{{.Labels.a}} {{.Labels.zz}} {{index .Labels "a"}} {{range $k, $v := .Labels}}{{$k}}={{$v}};{{end}}', 'lone', 'idle'],
      // A field volume.Volume does not have is an error: no raw JSON to fall back on.
      ['-f', '{{.Nope}}', 'lone'],
      ['-f', '{{.Name}} {{.Nope}}', 'lone', 'idle'],
      ['-f', '{{.Name}}', 'nope', 'lone'],
      ['-f', '{{', 'lone'],
    ];
    for (const flags of cases) {
      it(['inspect', ...flags].join(' '), async () => {
        await sameAsDocker(['volume', 'inspect', ...flags]);
      });
    }
  });

  describe('create', () => {
    /**
     * Creates a volume with `args` through berth, then again through docker, and compares
     * what they print (its name) and what the daemon made of them (but the time; and the
     * name where the daemon chose one).
     */
    async function createdAlike(args: string[], name: string | undefined): Promise<void> {
      const made: string[] = [];
      const printed: string[] = [];
      for (const cli of ['berth', 'docker'] as const) {
        if (name) await removeVolumes(name);
        const command = ['volume', 'create', ...args];
        const r = cli === 'berth' ? await fixture.daemon.berth(command, options()) : await fixture.daemon.docker(command, options());
        assert.equal(r.code, 0, `${cli} volume create ${args.join(' ')}: ${r.stderr}`);
        assert.equal(r.stderr, '');
        const created = r.stdout.trim();
        if (name) assert.equal(created, name);
        else assert.match(created, /^[0-9a-f]{64}$/);
        printed.push(name ? r.stdout : '');
        const [v] = JSON.parse(await docker('volume', 'inspect', created)) as Array<Record<string, unknown>>;
        made.push(placeholders(JSON.stringify({ ...v, CreatedAt: '' }), [created]));
        await removeVolumes(created);
      }
      assert.equal(printed[0], printed[1]);
      assert.equal(made[0], made[1]);
    }

    it('prints the name of the new volume; the volume is the one docker makes with the same options', async () => {
      await createdAlike(['made'], 'made');
      await createdAlike(['--name', 'made'], 'made');
      await createdAlike(['-d', 'local', '--label', 'app=web', '--label', 'bare', '--label', 'x=a=b', 'made'], 'made');
      await createdAlike(['--driver=local', '--label', 'anon=yes'], undefined);
    });

    it('an existing volume: its name again', async () => {
      await sameAsDocker(['volume', 'create', 'idle']);
    });

    const failures = [
      // berth's local volumes take no driver options: both CLIs print the daemon's refusal.
      ['-o', 'type=tmpfs', '-o', 'device=tmpfs', 'made'],
      ['--opt', 'o=size=100m', 'made'],
      ['-d', 'nodriver', 'made'],
      ['bad name'],
      ['a'],
      ['--name', '/abs'],
    ];
    for (const flags of failures) {
      it(`refuses: create ${flags.join(' ')}`, async () => {
        const r = await sameAsDocker(['volume', 'create', ...flags]);
        assert.equal(r.code, 1);
        assert.match(r.stderr, /^Error response from daemon: /);
      });
    }
  });

  describe('rm', () => {
    const twoVolumes = async () => {
      await removeVolumes('gone1', 'gone2');
      await docker('volume', 'create', 'gone1');
      await docker('volume', 'create', 'gone2');
    };

    after(async () => {
      await removeVolumes('gone1', 'gone2');
    });

    it('removes each volume it is given, printing its name; reports the others, one a line, and exits 1', async () => {
      const r = await sameAsDockerFrom(twoVolumes, ['volume', 'rm', 'gone1', 'nope', 'gone2', 'used']);
      assert.equal(r.stdout, 'gone1\ngone2\n');
      assert.equal(r.stderr.split('\n').length, 3);
      assert.equal(r.code, 1);
      await sameAsDockerFrom(twoVolumes, ['volume', 'remove', 'gone1', 'gone2']);
    });

    it('-f: a volume that does not exist is no error; one in use still is', async () => {
      await sameAsDockerFrom(twoVolumes, ['volume', 'rm', '-f', 'nope', 'gone1']);
      await sameAsDocker(['volume', 'rm', '-f', 'nope']);
      const r = await sameAsDocker(['volume', 'rm', '--force', 'nope', 'used']);
      assert.match(r.stderr, /volume is in use/);
    });

    it('refuses missing volumes and volumes in use, by running and by stopped containers', async () => {
      await sameAsDocker(['volume', 'rm', 'nope']);
      const r = await sameAsDocker(['volume', 'rm', 'used', 'idle']);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /^Error response from daemon: remove used: volume is in use/);
    });
  });

  describe('prune', () => {
    let anonymous = '';

    /** Unused volumes: two labelled and one not, named, with files in them; and an anonymous one (answered). */
    const unused = async (): Promise<string[]> => {
      await removeVolumes('prune1', 'prune2', 'kept', anonymous);
      await filledVolume('prune1', 5432, '--label', 'prune=yes');
      await filledVolume('prune2', 1000, '--label', 'prune=yes');
      await filledVolume('kept', 10);
      anonymous = await anonymousVolume(3000);
      return [anonymous];
    };

    after(async () => {
      await removeVolumes('prune1', 'prune2', 'kept', anonymous);
    });

    it('asks first; anything but y leaves the volumes', async () => {
      for (const answer of ['n\n', 'yes\n', '\n', '']) {
        const r = await sameAsDockerFrom(unused, ['volume', 'prune'], answer);
        assert.equal(r.stdout, 'WARNING! This will remove anonymous local volumes not used by at least one container.\nAre you sure you want to continue? [y/N] ');
        assert.equal(r.code, 0);
      }
      await sameAsDockerFrom(unused, ['volume', 'prune', '--all'], 'N\n');
      assert.match(await docker('volume', 'ls', '-q'), /prune1/);
    });

    it('removes the anonymous volumes nothing uses, names them, and counts the space', async () => {
      const r = await sameAsDockerFrom(unused, ['volume', 'prune'], 'y\n');
      assert.match(r.stdout, /\[y\/N\] Deleted Volumes:\n[0-9a-f]{64}\n\nTotal reclaimed space: 3kB\n$/);
      await sameAsDockerFrom(unused, ['volume', 'prune', '-f']);
      // Nothing left to prune: only the total.
      const none = await sameAsDocker(['volume', 'prune', '-f']);
      assert.equal(none.stdout, 'Total reclaimed space: 0B\n');
    });

    it('-a: named volumes too, as the filters select them', async () => {
      const r = await sameAsDockerFrom(unused, ['volume', 'prune', '-a', '--filter', 'label=prune=yes'], 'y\n');
      assert.match(r.stdout, /^WARNING! This will remove all local volumes not used by at least one container\.\n.*Deleted Volumes:\nprune1\nprune2\n\nTotal reclaimed space: 6.432kB\n$/s);
      await sameAsDockerFrom(unused, ['volume', 'prune', '-af', '--filter', 'label!=prune']);
      await sameAsDockerFrom(unused, ['volume', 'prune', '-f', '--filter', 'all=true', '--filter', 'label=prune']);
      const all = await sameAsDockerFrom(unused, ['volume', 'prune', '--all', '--force']);
      // Volumes that containers use stay, whether the containers run or not.
      assert.doesNotMatch(all.stdout, /\bused\b|\bidle\b/);
    });

    it('passes on what the daemon refuses', async () => {
      await sameAsDocker(['volume', 'prune', '-f', '--filter', 'nope=1']);
      await sameAsDocker(['volume', 'prune', '-f', '--filter', 'until=1h']);
    });
  });

  describe('system df', () => {
    before(async () => {
      await filledVolume('sized', 123_456, '--label', 'df=yes');
      await filledVolume('tiny', 12);
    });

    after(async () => {
      await removeVolumes('sized', 'tiny');
    });

    it('counts local volumes, their size and what is reclaimable, as docker does', async () => {
      await sameAsDocker(['system', 'df']);
    });

    it('-v: each local volume with its links and size', async () => {
      // The containers' CREATED and STATUS can tick between the two runs: compared without them.
      const args = ['system', 'df', '-v'];
      const times = (text: string) => text.replace(/(Less than a second|About an? \w+|\d+ \w+) ago|Up (Less than a second|About an? \w+|\d+ \w+)/g, '<time>');
      const r = await fixture.daemon.berth(args, options());
      const theirs = await fixture.daemon.docker(args, options());
      assert.deepEqual({ stdout: times(r.stdout), stderr: r.stderr, code: r.code }, { stdout: times(asBerth(theirs.stdout)), stderr: asBerth(theirs.stderr), code: theirs.code });
      assert.match(r.stdout, /\nLocal Volumes space usage:\n\nVOLUME NAME +LINKS +SIZE\n/);
      assert.match(r.stdout, /\nsized +0 +123.5kB\n/);
    });
  });
});
