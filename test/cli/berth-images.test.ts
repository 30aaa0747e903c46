// The `berth` CLI (not docker) against a private berthd: images and its flags, import, load,
// tag, rmi, history, inspect, prune, system df, version, and the errors with docker's texts
// and exit codes. Where docker's output is the reference, the real docker CLI, pointed at
// the same daemon, prints it and berth must print the same bytes.
import * as assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { TarWriter } from '../../src/archive/tar-writer.js';
import { TestDaemon, alpineRootfs, busyboxLayout, cliMain, projectRoot, run, type RunResult } from '../helpers/berthd.js';

const BUSYBOX_ID = 'sha256:654fc8fd836e35f4a64586bddf8f59b9029b48cf80f520834c6c98ca8ab5def9';

let daemon: TestDaemon;
let scratch: string;

before(async () => {
  daemon = await TestDaemon.start();
  scratch = mkdtempSync(join(tmpdir(), 'cli-images-'));
});

after(async () => {
  await daemon?.cleanup();
  rmSync(scratch, { recursive: true, force: true });
});

function berth(args: string[], input?: string | Buffer): Promise<RunResult> {
  return daemon.berth(args, input === undefined ? {} : { input });
}

async function ok(...args: string[]): Promise<string> {
  const r = await berth(args);
  assert.equal(r.code, 0, `berth ${args.join(' ')} failed (${r.code}): ${r.stderr}\n${daemon.log.slice(-2000)}`);
  return r.stdout;
}

/**
 * berth and docker print the same (stdout, stderr, exit status) for a command that changes
 * nothing; retried a few times, as "31 seconds ago" may become "32" between the two.
 */
async function sameAsDocker(...args: string[]): Promise<RunResult> {
  let mine = await berth(args);
  let theirs = await daemon.docker(args);
  // Retried: docker orders an image's rows by Go map iteration (random per run) and clock
  // ticks can fall between the two calls; 15 tries make a chance mismatch of orders negligible.
  for (let i = 0; i < 15 && JSON.stringify({ ...mine, stderr: mine.stderr.replaceAll('berth', 'docker') }) !== JSON.stringify(theirs); i++) {
    mine = await berth(args);
    theirs = await daemon.docker(args);
  }
  assert.equal(mine.stdout, theirs.stdout, `stdout of: ${args.join(' ')}`);
  assert.equal(mine.stderr.replaceAll('berth', 'docker'), theirs.stderr, `stderr of: ${args.join(' ')}`);
  assert.equal(mine.code, theirs.code, `exit status of: ${args.join(' ')}`);
  return mine;
}

/** Chain ids of the committed snapshots under the data root: the layers on disk. */
function layersOnDisk(): string[] {
  const dir = join(daemon.dataRoot, 'snapshots', 'snapshots');
  const keys: string[] = [];
  for (const id of readdirSync(dir)) {
    try {
      const meta = JSON.parse(readFileSync(join(dir, id, 'meta.json'), 'utf8')) as { key: string; kind: string };
      if (meta.kind === 'committed') keys.push(meta.key);
    } catch {
      // not a snapshot (yet)
    }
  }
  return keys.sort();
}

const sha256 = (data: Buffer | string) => `sha256:${createHash('sha256').update(data).digest('hex')}`;

async function tarOf(entries: Array<{ name: string; body: Buffer | string }>): Promise<Buffer> {
  const writer = new TarWriter();
  const chunks: Buffer[] = [];
  writer.stream.on('data', (c: Buffer) => chunks.push(c));
  const ended = new Promise((resolve) => writer.stream.on('end', resolve));
  for (const e of entries) {
    const body = Buffer.from(e.body);
    await writer.add({ name: e.name, type: 'file', mode: 0o644, size: body.length, mtime: new Date(0) }, body);
  }
  await writer.finish();
  await ended;
  return Buffer.concat(chunks);
}

/**
 * A `docker save` archive of two images that share their bottom layer:
 * shared/base:1 = [base], shared/app:1 = [base, app], app labelled tier=app.
 */
async function sharedLayerArchive(): Promise<{ path: string; base: string; app: string }> {
  const baseLayer = await tarOf([{ name: 'base.txt', body: 'the bottom layer\n' }]);
  const appLayer = await tarOf([{ name: 'app.txt', body: 'the top layer\n' }]);
  const [baseDiff, appDiff] = [sha256(baseLayer), sha256(appLayer)];
  const config = (diffIds: string[], labels: Record<string, string>, created: string) =>
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      created,
      config: { Cmd: ['/app'], Labels: labels },
      rootfs: { type: 'layers', diff_ids: diffIds },
      history: diffIds.map((_, i) => ({ created, created_by: `step ${i + 1}` })),
    });
  const baseConfig = config([baseDiff], { tier: 'base' }, '2024-01-01T00:00:00Z');
  const appConfig = config([baseDiff, appDiff], { tier: 'app' }, '2024-02-01T00:00:00Z');
  const manifest = JSON.stringify([
    { Config: 'base.json', RepoTags: ['shared/base:1'], Layers: ['l1/layer.tar'] },
    { Config: 'app.json', RepoTags: ['shared/app:1'], Layers: ['l1/layer.tar', 'l2/layer.tar'] },
  ]);
  const archive = await tarOf([
    { name: 'manifest.json', body: manifest },
    { name: 'base.json', body: baseConfig },
    { name: 'app.json', body: appConfig },
    { name: 'l1/layer.tar', body: baseLayer },
    { name: 'l2/layer.tar', body: appLayer },
  ]);
  const path = join(scratch, 'shared.tar');
  writeFileSync(path, archive);
  return { path, base: baseDiff, app: sha256(`${baseDiff} ${appDiff}`) };
}

describe('berth CLI: images', () => {
  it('version prints the client and the server, and -v only the client', async () => {
    const out = await ok('version');
    assert.match(out, /^Client:\n Version: +\d+\.\d+\.\d+\n API version: +1\.47\n/);
    assert.match(out, /\nServer: berth\n Engine:\n  Version: +\d+\.\d+\.\d+\n  API version: +1\.47 \(minimum version 1\.24\)\n/);
    assert.equal((await ok('version', '--format', '{{.Server.ApiVersion}}/{{.Client.ApiVersion}}')).trim(), '1.47/1.47');
    assert.match(await ok('-v'), /^berth version \d+\.\d+\.\d+\n$/);
  });

  it('starts with no images: a header and nothing else', async () => {
    assert.equal(await ok('images'), 'REPOSITORY   TAG       IMAGE ID   CREATED   SIZE\n');
    assert.equal(await ok('images', '-q'), '');
  });

  it('loads the busybox OCI layout from its directory', async () => {
    const out = await ok('load', '-i', busyboxLayout);
    assert.equal(out, 'Loaded image: busybox:1.38.0-musl\n');
    assert.equal((await ok('image', 'inspect', '-f', '{{.Id}} {{.Os}}/{{.Architecture}}', 'busybox:1.38.0-musl')).trim(), `${BUSYBOX_ID} linux/amd64`);
  });

  it('imports a file with -c and -m', async () => {
    const out = await ok('import', '-c', 'CMD ["/bin/sh"]', '-c', 'ENV A=1 B="two words"', '-c', 'LABEL stage=file', '-m', 'from a file', alpineRootfs, 'alpine:file');
    assert.match(out, /^sha256:[a-f0-9]{64}\n$/);
    const cfg = await ok('image', 'inspect', '-f', '{{json .Config.Cmd}} {{json .Config.Env}} {{.Config.Labels.stage}} {{.Comment}}', 'alpine:file');
    assert.equal(cfg, '["/bin/sh"] ["A=1","B=two words"] file from a file\n');
    assert.match(await ok('history', 'alpine:file'), /^[a-f0-9]{12}\s+.*ago\s+7\.79MB\s+from a file$/m);
  });

  it('imports from stdin with changes, and says which change is not valid', async () => {
    const tar = readFileSync(alpineRootfs);
    const r = await berth(['import', '--change', 'ENTRYPOINT ["/bin/echo"]', '-c', 'WORKDIR /srv', '-', 'alpine:stdin'], tar);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(
      await ok('image', 'inspect', '-f', '{{json .Config.Entrypoint}} {{.Config.WorkingDir}} {{.Comment}}', 'alpine:stdin'),
      '["/bin/echo"] /srv Imported from -\n',
    );
    const bad = await berth(['import', '-c', 'RUN make', '-', 'alpine:bad'], tar);
    assert.equal(bad.code, 1);
    assert.equal(bad.stderr, 'Error response from daemon: RUN is not a valid change command\n');
    assert.equal((await berth(['image', 'inspect', 'alpine:bad'])).code, 1, 'an image was made despite the error');
  });

  it('tags, and lists a row per tag', async () => {
    await ok('tag', 'busybox:1.38.0-musl', 'busybox');
    await ok('tag', 'busybox:1.38.0-musl', 'localhost:5000/team/bb:v1');
    const rows = await ok('images', '--format', '{{.Repository}}:{{.Tag}} {{.ID}}');
    assert.equal(
      rows.split('\n').filter((l) => l.endsWith('654fc8fd836e')).sort().join('\n'),
      ['busybox:1.38.0-musl 654fc8fd836e', 'busybox:latest 654fc8fd836e', 'localhost:5000/team/bb:v1 654fc8fd836e'].join('\n'),
    );
  });

  it('images -q, -a, --digests, --no-trunc, the table and the json format print as docker prints them', async () => {
    await sameAsDocker('images');
    await sameAsDocker('images', '-q');
    await sameAsDocker('images', '-a');
    await sameAsDocker('images', '--digests');
    await sameAsDocker('images', '--no-trunc');
    await sameAsDocker('images', '-q', '--no-trunc');
    // A --format other than plain 'table' wins over -q.
    await sameAsDocker('images', '-q', '--format', '{{.Repository}}:{{.Tag}}');
    await sameAsDocker('images', '-q', '--format', 'table {{.Repository}}');
    await sameAsDocker('images', '-q', '--format', 'table');
    await sameAsDocker('history', '-q', '--format', '{{.CreatedBy}}', 'busybox');
    await sameAsDocker('images', '--format', 'table {{.Repository}}\t{{.Tag}}\t{{.Size}}');
    await sameAsDocker('images', '--format', '{{.ID}}: {{.Repository}} {{.CreatedAt}} {{.Containers}}');
    await sameAsDocker('images', 'busybox');
    await sameAsDocker('images', 'localhost:5000/team/*');
    const json = (await ok('images', '--format', 'json')).trim().split('\n').map((l) => JSON.parse(l) as Record<string, string>);
    const docker = (await daemon.docker(['images', '--format', 'json'])).stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, string>);
    // Same fields, same order (docker's rows marshal as Go maps: sorted keys), same values.
    // The order of one image's rows is docker's Go map order, which changes from run to run:
    // rows are compared in a fixed order.
    const rows = (list: Array<Record<string, string>>) =>
      list.map(({ CreatedSince: _c, ...rest }) => Object.entries(rest)).sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));
    assert.deepEqual(rows(json), rows(docker));
  });

  it('filters by reference, dangling and label', async () => {
    const ids = async (...args: string[]) => (await ok('images', '--format', '{{.Repository}}:{{.Tag}}', ...args)).trim().split('\n').filter(Boolean).sort();
    assert.deepEqual(await ids('--filter', 'reference=busybox'), ['busybox:1.38.0-musl', 'busybox:latest']);
    assert.deepEqual(await ids('--filter', 'reference=busybox:latest'), ['busybox:latest']);
    assert.deepEqual(await ids('-f', 'reference=*/*/bb:*'), ['localhost:5000/team/bb:v1']);
    assert.deepEqual(await ids('--filter', 'label=stage=file'), ['alpine:file']);
    assert.deepEqual(await ids('--filter', 'label=stage'), ['alpine:file']);
    assert.deepEqual(await ids('--filter', 'dangling=true'), []);
    const dangling = (await ok('import', alpineRootfs)).trim();
    assert.deepEqual(await ids('--filter', 'dangling=true'), ['<none>:<none>']);
    assert.equal((await ok('images', '-q', '--no-trunc', '--filter', 'dangling=true')).trim(), dangling);
    assert.ok(!(await ids('--filter', 'dangling=false')).includes('<none>:<none>'));
    await sameAsDocker('images', '--filter', 'dangling=maybe');
    await sameAsDocker('images', '--filter', 'colour=red');
  });

  it('history and image inspect -f print as docker prints them', async () => {
    await sameAsDocker('history', 'busybox:1.38.0-musl');
    await sameAsDocker('history', '--no-trunc', '-H=false', 'alpine:file');
    await sameAsDocker('history', '--format', 'json', 'busybox');
    await sameAsDocker('history', '--format', '{{.Nope}}', 'busybox');
    await sameAsDocker('history', '-q', 'alpine:file');
    await sameAsDocker('history', '--format', '{{.ID}} {{.CreatedBy}} {{.Size}}', 'busybox');
    await sameAsDocker('image', 'inspect', 'busybox', 'alpine:file');
    await sameAsDocker('image', 'inspect', '-f', '{{.Os}} {{json .RootFS.Layers}}', 'busybox', 'alpine:file');
    await sameAsDocker('image', 'inspect', '-f', 'json', 'busybox', 'alpine:file');
  });

  it('image inspect and inspect report what is missing as docker does, after what was found', async () => {
    const r = await sameAsDocker('image', 'inspect', '-f', '{{.Os}}', 'busybox', 'nosuch', 'alpine:file');
    assert.equal(r.stdout, 'linux\nlinux\n');
    assert.equal(r.stderr, 'Error response from daemon: No such image: nosuch:latest\n');
    assert.equal(r.code, 1);
    const generic = await sameAsDocker('inspect', '-f', '{{.Id}}', 'nosuch');
    assert.equal(generic.stderr, 'Error: No such object: nosuch\n');
    await sameAsDocker('inspect', 'nosuch');
    await sameAsDocker('inspect', '--format', '{{.Comment}}', 'alpine:file');
    await sameAsDocker('image', 'inspect', '-f', 'json', 'nosuch');
  });

  it('a template that names a field the object lacks is an error, as in docker', async () => {
    const r = await sameAsDocker('image', 'inspect', '-f', '{{.Os}} {{.Nope}}', 'busybox', 'alpine:file');
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^template parsing error: template: :1:10: executing "" at <\.Nope>: map has no entry for key "Nope"\n/);
    await sameAsDocker('images', '--format', '{{.Nope}}');
  });

  it('rmi untags while other references remain, then deletes the image', async () => {
    await ok('tag', 'alpine:file', 'alpine:second');
    assert.equal(await ok('rmi', 'alpine:second'), 'Untagged: alpine:second\n');
    assert.equal((await ok('image', 'inspect', '-f', '{{json .RepoTags}}', 'alpine:file')).trim(), '["alpine:file"]');
    const id = (await ok('image', 'inspect', '-f', '{{.Id}}', 'alpine:file')).trim();
    assert.equal(await ok('rmi', 'alpine:file'), `Untagged: alpine:file\nDeleted: ${id}\n`);
    assert.equal((await berth(['image', 'inspect', id])).code, 1);
  });

  it('rmi by id refuses an image with several references unless -f', async () => {
    const r = await berth(['rmi', '654fc8fd836e']);
    assert.equal(r.code, 1);
    assert.equal(r.stderr, 'Error response from daemon: conflict: unable to delete 654fc8fd836e (must be forced) - image is referenced in multiple repositories\n');
    await ok('tag', 'busybox', 'doomed:1');
    await ok('tag', 'busybox', 'doomed:2');
    const out = await ok('rmi', '-f', 'doomed:1');
    assert.equal(out, 'Untagged: doomed:1\n', '-f on a reference only untags it');
    await ok('rmi', 'doomed:2');
  });

  it('rmi -f reports images that do not exist without failing, as docker does; without -f it fails', async () => {
    await ok('tag', 'busybox', 'gone:1');
    await ok('tag', 'busybox', 'gone:2');
    const forced = await berth(['rmi', '-f', 'nosuch:1', 'gone:1']);
    const docker = await daemon.docker(['rmi', '-f', 'nosuch:1', 'gone:2']);
    assert.deepEqual(forced, { code: 0, stdout: 'Untagged: gone:1\n', stderr: 'Error response from daemon: No such image: nosuch:1\n' });
    assert.deepEqual(docker, { ...forced, stdout: 'Untagged: gone:2\n' });
    const plain = await sameAsDocker('rmi', 'nosuch:1', 'nosuch:2');
    assert.equal(plain.code, 1);
    assert.equal(plain.stderr, 'Error response from daemon: No such image: nosuch:1\nError response from daemon: No such image: nosuch:2\n');
  });

  it('rmi removes the layers of a deleted image from the data root, and keeps a layer another image shares', async () => {
    const { path, base, app } = await sharedLayerArchive();
    assert.equal(await ok('load', '-i', path), 'Loaded image: shared/base:1\nLoaded image: shared/app:1\n');
    assert.ok(layersOnDisk().includes(base));
    assert.ok(layersOnDisk().includes(app));
    // The label filter sees the app image only.
    assert.equal((await ok('images', '--filter', 'label=tier=app', '--format', '{{.Repository}}')).trim(), 'shared/app');
    const out = await ok('rmi', 'shared/app:1');
    assert.match(out, /^Untagged: shared\/app:1\nDeleted: sha256:[a-f0-9]{64}\n$/);
    assert.ok(!layersOnDisk().includes(app), 'the top layer of the deleted image is still on disk');
    assert.ok(layersOnDisk().includes(base), 'the shared layer was removed while shared/base:1 uses it');
    assert.equal((await ok('image', 'inspect', '-f', '{{len .RootFS.Layers}}', 'shared/base:1')).trim(), '1');
    await ok('rmi', 'shared/base:1');
    assert.ok(!layersOnDisk().includes(base), 'the last user is gone but the layer stayed');
  });

  it('image prune -f deletes dangling images only, and says how much it reclaimed', async () => {
    const dangling = (await ok('images', '-q', '--no-trunc', '--filter', 'dangling=true')).trim();
    assert.match(dangling, /^sha256:/);
    const out = await ok('image', 'prune', '-f');
    assert.equal(out, `Deleted Images:\ndeleted: ${dangling}\n\nTotal reclaimed space: 0B\n`);
    assert.equal(await ok('image', 'prune', '-f'), 'Total reclaimed space: 0B\n');
    assert.match(await ok('images', '--format', '{{.Repository}}'), /busybox/);
  });

  it('system df counts the images and their size as docker prints it', async () => {
    const out = await ok('system', 'df');
    assert.match(out, /^TYPE\s+TOTAL\s+ACTIVE\s+SIZE\s+RECLAIMABLE\n/);
    const images = (await ok('images', '-q', '--no-trunc')).trim().split('\n');
    assert.match(out, new RegExp(`^Images\\s+${new Set(images).size}\\s+0\\s+\\S+B\\s+\\S+B \\(100%\\)$`, 'm'));
    assert.match(out, /^Containers\s+0\s+0\s+0B\s+0B$/m);
    assert.equal((await ok('system', 'df', '--format', '{{.Type}}:{{.TotalCount}}')).split('\n')[0], `Images:${new Set(images).size}`);
  });
});

describe('berth CLI: start-up', () => {
  /** The berth modules a CLI call loads, recorded by a module loader hook. */
  async function modulesLoadedBy(args: string[]): Promise<string[]> {
    const dir = mkdtempSync(join(scratch, 'hook-'));
    const log = join(dir, 'loaded.txt');
    writeFileSync(log, '');
    writeFileSync(
      join(dir, 'hook.mjs'),
      `import { appendFileSync } from 'node:fs';\nexport async function load(url, context, next) {\n  if (url.startsWith('file:')) appendFileSync(${JSON.stringify(log)}, url + '\\n');\n  return next(url, context);\n}\n`,
    );
    writeFileSync(join(dir, 'register.mjs'), `import { register } from 'node:module';\nregister(${JSON.stringify(`file://${join(dir, 'hook.mjs')}`)});\n`);
    const r = await run(process.execPath, ['--import', join(dir, 'register.mjs'), cliMain, ...args], { env: daemon.env });
    assert.equal(r.code, 0, r.stderr);
    return readFileSync(log, 'utf8').split('\n').filter(Boolean).map((u) => u.slice(u.indexOf('/src/') + 1));
  }

  it('images -q, rmi and tag load neither the template engine nor the tar writer', async () => {
    const table = await modulesLoadedBy(['images']);
    assert.ok(table.includes('src/cli/format/go-template.js'), `the hook saw: ${table.join(' ')}`);
    for (const args of [['images', '-q'], ['tag', 'busybox', 'startup:1'], ['rmi', 'startup:1']]) {
      const loaded = await modulesLoadedBy(args);
      const heavy = loaded.filter((m) => m.startsWith('src/cli/format/') || m.startsWith('src/archive/') || m === 'src/cli/output.js');
      assert.deepEqual(heavy, [], `berth ${args.join(' ')} loaded ${heavy.join(', ')}`);
    }
  });
});

describe('berth CLI: errors', () => {
  it('an unknown flag exits 125 and points at the help', async () => {
    const r = await berth(['images', '--nope']);
    assert.equal(r.code, 125);
    assert.match(r.stderr, /^unknown flag: --nope\n/);
    assert.match(r.stderr, /'berth images --help'/);
    const short = await berth(['rmi', '-z', 'x']);
    assert.equal(short.code, 125);
    assert.match(short.stderr, /^unknown shorthand flag: 'z' in -z\n/);
    assert.equal((await berth(['--bogus', 'images'])).code, 125);
  });

  it('a wrong number of arguments exits 1 with the usage', async () => {
    const r = await berth(['tag', 'onlyone']);
    assert.equal(r.code, 1);
    assert.equal(r.stderr, "berth: 'berth tag' requires 2 arguments\n\nUsage:  berth tag SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]\n\nRun 'berth tag --help' for more information\n");
    assert.equal((await berth(['history'])).code, 1);
    assert.match((await berth(['images', 'a', 'b'])).stderr, /^berth: 'berth images' requires at most 1 argument\n/);
    assert.equal((await berth(['load', 'extra'])).code, 1);
  });

  it('errors from the daemon are "Error response from daemon: ..." and exit 1', async () => {
    for (const args of [['rmi', 'nosuch'], ['tag', 'nosuch', 'x:1'], ['history', 'nosuch:v2']]) {
      const r = await sameAsDocker(...args);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /^Error response from daemon: No such image: nosuch:(latest|v2)\n$/);
    }
    const badRef = await berth(['import', alpineRootfs, 'UPPER:case']);
    assert.equal(badRef.code, 1);
    assert.match(badRef.stderr, /^Error response from daemon: invalid reference format: repository name \(library\/UPPER\) must be lowercase\n$/);
    const missing = await sameAsDocker('import', join(scratch, 'no-such.tar'));
    assert.equal(missing.stderr, `open ${join(scratch, 'no-such.tar')}: no such file or directory\n`);
  });

  it('says so when the daemon is not running', async () => {
    const socket = join(scratch, 'nobody-here.sock');
    const r = await run(process.execPath, [cliMain, '-H', `unix://${socket}`, 'images'], { env: { ...process.env, DOCKER_HOST: '', BERTH_HOST: '' } });
    assert.equal(r.code, 1);
    assert.equal(r.stderr, `Cannot connect to the berth daemon at unix://${socket}. Is the berth daemon running?\n`);
    assert.equal(r.stdout, '');
    // The variable works as the flag does.
    const env = await run(process.execPath, [cliMain, 'version'], { env: { ...process.env, BERTH_HOST: `unix://${socket}` } });
    assert.equal(env.code, 1);
    assert.match(env.stdout, /^Client:/, 'version prints the client part first');
    assert.match(env.stderr, /Cannot connect to the berth daemon at unix:\/\//);
  });
});

describe('scripts/busybox-image.sh', () => {
  it('makes busybox:latest from the host\'s busybox: CMD ["sh"] and a layer with /bin/sh', { skip: !existsSync('/bin/busybox') && 'no busybox on this host' }, async () => {
    // The script as it is in the repository, with bin/berth running the build under test.
    const here = join(scratch, 'project');
    mkdirSync(join(here, 'scripts'), { recursive: true });
    mkdirSync(join(here, 'bin'), { recursive: true });
    copyFileSync(join(projectRoot, 'scripts', 'busybox-image.sh'), join(here, 'scripts', 'busybox-image.sh'));
    writeFileSync(join(here, 'bin', 'berth'), `#!/bin/sh\nexec ${JSON.stringify(process.execPath)} --no-warnings ${JSON.stringify(cliMain)} "$@"\n`);
    chmodSync(join(here, 'bin', 'berth'), 0o755);
    await ok('rmi', 'busybox:latest');
    const r = await run('bash', [join(here, 'scripts', 'busybox-image.sh'), '-H', daemon.host], { env: { ...process.env, DOCKER_HOST: '', BERTH_HOST: '' }, timeoutMs: 120_000 });
    assert.equal(r.code, 0, `the script exited ${r.code}${r.code === 141 ? ' (SIGPIPE under pipefail)' : ''}: ${r.stderr}`);
    assert.match(r.stdout, /^sha256:[a-f0-9]{64}\n$/);
    const inspect = JSON.parse(await ok('image', 'inspect', 'busybox')) as Array<{
      Config: { Cmd: string[] };
      RepoTags: string[];
      RootFS: { Layers: string[] };
      GraphDriver: { Data: { UpperDir: string } };
      Comment: string;
    }>;
    const image = inspect[0]!;
    assert.deepEqual(image.Config.Cmd, ['sh']);
    assert.deepEqual(image.RepoTags, ['busybox:latest']);
    assert.equal(image.RootFS.Layers.length, 1);
    assert.match(image.Comment, /^BusyBox v?\d+\.\d+\.\d+.* from the host's static busybox$/);
    const layer = image.GraphDriver.Data.UpperDir;
    assert.ok(existsSync(join(layer, 'bin', 'sh')), `no /bin/sh in the layer at ${layer}`);
    assert.ok(existsSync(join(layer, 'bin', 'busybox')));
    assert.match(readFileSync(join(layer, 'etc', 'passwd'), 'utf8'), /^root:x:0:0:root:\/root:\/bin\/sh$/m);
  });
});
