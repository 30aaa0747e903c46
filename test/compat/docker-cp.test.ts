// `docker cp` and `berth cp` against a private berthd: files and directories both ways,
// dir/. and docker's destination rules, -a and owners, stopped containers, `-` for a tar on
// stdin and stdout, docker's messages, a 1 GiB file streamed in bounded memory, and hostile
// containers: symlinks that lead (on the host) to sentinel folders, hostile archives, and a
// directory swapped for such a symlink while copies run. The sentinels, and the host's
// /etc/passwd and /etc/shadow, must be untouched and never read into a copy.
import * as assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chownSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, statSync, symlinkSync, writeFileSync, linkSync, chmodSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';

import { readTar } from '../../src/archive/tar-reader.js';
import { TarWriter, type TarWriterHeader } from '../../src/archive/tar-writer.js';
import { TestDaemon, busyboxLayout, cliMain, projectRoot, sleep, tarOf } from '../helpers/berthd.js';

let daemon: TestDaemon;
let scratch: string;
/** Host folders that hostile containers' symlinks point at. S1 also exists inside the containers, S2 does not. */
let sentinel1: string;
let sentinel2: string;
const hostFiles = ['/etc/passwd', '/etc/shadow'];
let hostBefore: string;

const HOST_SECRET = 'host secret: never in a copy\n';

interface Result {
  code: number;
  stdout: Buffer;
  stderr: string;
}

/** Runs a command with a binary stdin/stdout; SIGKILL at the timeout (the docker CLI ignores SIGTERM while attached). */
function runRaw(cmd: string, args: string[], opts: { input?: Buffer | Readable; timeoutMs?: number; countOnly?: boolean } = {}): Promise<Result & { bytes: number }> {
  return new Promise((resolve, reject) => {
    const env = { ...daemon.env, BERTH_NATIVE: join(projectRoot, 'native', 'build', 'berth_native.node') };
    const child = spawn(cmd, args, { env, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let bytes = 0;
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => {
      bytes += c.length;
      if (!opts.countOnly) out.push(c);
    });
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${cmd} ${args.join(' ')} timed out\nstderr: ${stderr}`));
    }, opts.timeoutMs ?? 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout: Buffer.concat(out), stderr, bytes });
    });
    child.stdin.on('error', () => undefined);
    if (opts.input instanceof Readable) opts.input.pipe(child.stdin);
    else child.stdin.end(opts.input);
  });
}

type Cli = 'docker' | 'berth';
const CLIS: Cli[] = ['docker', 'berth'];

function cli(which: Cli, args: string[], opts: { input?: Buffer | Readable; timeoutMs?: number; countOnly?: boolean } = {}) {
  return which === 'docker' ? runRaw('docker', args, opts) : runRaw(process.execPath, [cliMain, ...args], opts);
}

async function ok(which: Cli, ...args: string[]): Promise<Buffer> {
  const r = await cli(which, args);
  assert.equal(r.code, 0, `${which} ${args.join(' ')} failed (${r.code}): ${r.stderr}\n${daemon.log.slice(-2000)}`);
  return r.stdout;
}

async function fails(which: Cli, args: string[], message: string | RegExp, input?: Buffer): Promise<void> {
  const r = await cli(which, args, input ? { input } : {});
  assert.notEqual(r.code, 0, `${which} ${args.join(' ')} should have failed`);
  // docker's client logs its own noise first ("Can't add file ... closed pipe"): the error is the last line.
  if (typeof message === 'string') assert.equal(r.stderr.trim().split('\n').pop(), message, `${which} ${args.join(' ')}`);
  else assert.match(r.stderr, message, `${which} ${args.join(' ')}`);
}

async function untilLogs(name: string, text: string): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    const r = await cli('docker', ['logs', name]);
    if (r.stdout.toString().includes(text)) return;
    await sleep(50);
  }
  assert.fail(`container ${name} did not print ${text}`);
}

/** Starts a container that runs `setup`, says ready, and sleeps. */
async function startContainer(name: string, setup: string, extra: string[] = []): Promise<void> {
  await ok('docker', 'run', '-d', '--name', name, ...extra, 'busybox', 'sh', '-c', `${setup}\necho ready\nexec sleep 3600`);
  await untilLogs(name, 'ready');
}

interface Entry {
  name: string;
  type: string;
  linkname: string;
  uid: number;
  gid: number;
  mode: number;
  data: Buffer;
}

async function tarEntries(tar: Buffer | Readable): Promise<Entry[]> {
  const out: Entry[] = [];
  for await (const { header, body } of readTar(Buffer.isBuffer(tar) ? Readable.from([tar]) : tar)) {
    const parts: Buffer[] = [];
    for await (const chunk of body) parts.push(chunk as Buffer);
    out.push({ name: header.name, type: header.type, linkname: header.linkname, uid: header.uid, gid: header.gid, mode: header.mode, data: Buffer.concat(parts) });
  }
  return out;
}

/** A container file's content, read through GET archive. */
async function containerFile(container: string, path: string): Promise<string> {
  const entries = await tarEntries(await ok('docker', 'cp', `${container}:${path}`, '-'));
  assert.equal(entries.length, 1, `${path} is one file`);
  return entries[0]!.data.toString();
}

function tarBuffer(list: Array<{ header: TarWriterHeader; body?: string }>): Promise<Buffer> {
  const writer = new TarWriter();
  void (async () => {
    for (const { header, body } of list) await writer.add(header, body === undefined ? undefined : Buffer.from(body));
    await writer.finish();
  })();
  return (async () => {
    const parts: Buffer[] = [];
    for await (const chunk of writer.stream) parts.push(chunk as Buffer);
    return Buffer.concat(parts);
  })();
}

/** Names, types, modes, owners, sizes, link targets and content hashes under a local folder. */
function tree(dir: string): string[] {
  const lines: string[] = [];
  const walk = (path: string, rel: string): void => {
    const st = lstatSync(path);
    const kind = st.isDirectory() ? 'd' : st.isSymbolicLink() ? `l->${readlinkSync(path)}` : st.isFile() ? `f:${createHash('sha256').update(readFileSync(path)).digest('hex').slice(0, 12)}` : 'other';
    lines.push(`${rel} ${kind} ${(st.mode & 0o7777).toString(8)} ${st.uid}:${st.gid}`);
    if (st.isDirectory()) for (const name of readdirSync(path).sort()) walk(join(path, name), rel === '' ? name : `${rel}/${name}`);
  };
  walk(dir, '');
  return lines;
}

function hostState(): string {
  const sentinels = [sentinel1, sentinel2].map((s) => tree(s).join('\n') + readFileSync(join(s, 'secret'), 'utf8'));
  const files = hostFiles.filter((f) => existsSync(f)).map((f) => createHash('sha256').update(readFileSync(f)).digest('hex'));
  return [...sentinels, ...files].join('\n');
}

function assertNoHostSecret(data: Buffer | string, what: string): void {
  assert.ok(!data.toString().includes('host secret'), `${what}: host content leaked into a copy`);
}

function vmHwmKiB(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1] ?? 0);
}

/** HEAD archive straight on the socket: the stat header, decoded. */
function headStat(container: string, path: string): Promise<{ status: number; stat?: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: daemon.socket, method: 'HEAD', path: `/v1.47/containers/${container}/archive?path=${encodeURIComponent(path)}` }, (res) => {
      res.resume();
      const header = res.headers['x-docker-container-path-stat'];
      resolve({ status: res.statusCode ?? 0, ...(typeof header === 'string' ? { stat: JSON.parse(Buffer.from(header, 'base64').toString()) as Record<string, unknown> } : {}) });
    });
    req.on('error', reject);
    req.end();
  });
}

before(async () => {
  daemon = await TestDaemon.start();
  scratch = mkdtempSync(join(tmpdir(), 'berth-cp-'));
  const tar = join(scratch, 'busybox.tar');
  tarOf(busyboxLayout, tar);
  assert.equal((await cli('docker', ['load', '-i', tar])).code, 0);
  await ok('docker', 'tag', 'busybox:1.38.0-musl', 'busybox:latest');
  sentinel1 = mkdtempSync(join(tmpdir(), 'berth-sentinel1-'));
  sentinel2 = mkdtempSync(join(tmpdir(), 'berth-sentinel2-'));
  for (const s of [sentinel1, sentinel2]) {
    writeFileSync(join(s, 'secret'), HOST_SECRET);
    mkdirSync(join(s, 'sub'));
  }
  hostBefore = hostState();
  await startContainer('box', 'mkdir -p /tmp/exist-docker /tmp/exist-berth /tmp/exist2-docker /tmp/exist2-berth /tmp/dash && echo dash > /tmp/dash/f');
});

after(async () => {
  try {
    if (sentinel1) assert.equal(hostState(), hostBefore, 'a sentinel or a host file changed');
  } finally {
    await daemon?.cleanup();
    for (const dir of [scratch, sentinel1, sentinel2]) if (dir) rmSync(dir, { recursive: true, force: true });
  }
});

describe('docker cp and berth cp against berthd', () => {
  it('copies a 5 MB file in and out, and says "Successfully copied 5.24MB" on a terminal as docker does', async () => {
    const file = join(scratch, 'five');
    const data = randomBytes(5 * 1024 * 1024);
    writeFileSync(file, data);
    for (const which of CLIS) {
      await ok(which, 'cp', file, `box:/five-${which}`);
      const back = join(scratch, `five-back-${which}`);
      await ok(which, 'cp', `box:/five-${which}`, back);
      assert.ok(readFileSync(back).equals(data), `${which}: the file came back changed`);
    }
    const messages: Record<Cli, string> = { docker: '', berth: '' };
    for (const which of CLIS) {
      const command = which === 'docker' ? 'docker' : `${process.execPath} ${cliMain}`;
      const script = spawnSync('script', ['-qec', `${command} cp ${file} box:/tty-five; ${command} cp box:/tty-five ${scratch}/tty-five-${which}`, '/dev/null'], {
        env: { ...daemon.env, BERTH_NATIVE: join(projectRoot, 'native', 'build', 'berth_native.node') },
        encoding: 'utf8',
        timeout: 60_000,
      });
      assert.equal(script.status, 0, script.stderr);
      messages[which] = script.stdout.replace(`tty-five-${which}`, 'tty-five-X');
    }
    assert.equal(messages.docker, `Successfully copied 5.24MB to box:/tty-five\r\nSuccessfully copied 5.24MB to ${scratch}/tty-five-X\r\n`);
    assert.equal(messages.berth, messages.docker);
    // Without a terminal, nothing is said.
    const quiet = await cli('berth', ['cp', file, 'box:/quiet']);
    assert.equal(quiet.stderr, '');
  });

  it('copies directories both ways with docker\'s rules for dir, dir/. and existing destinations', async () => {
    const src = join(scratch, 'src');
    mkdirSync(join(src, 'sub', 'empty'), { recursive: true });
    writeFileSync(join(src, 'a.txt'), 'alpha\n');
    chmodSync(join(src, 'a.txt'), 0o640);
    writeFileSync(join(src, 'sub', 'b.txt'), 'beta\n');
    symlinkSync('a.txt', join(src, 'link'));
    linkSync(join(src, 'a.txt'), join(src, 'hard'));
    chmodSync(join(src, 'sub'), 0o750);
    const outs: Record<Cli, string> = { docker: '', berth: '' };
    for (const which of CLIS) {
      await ok(which, 'cp', src, `box:/tmp/new-${which}`);
      await ok(which, 'cp', src, `box:/tmp/exist-${which}`);
      await ok(which, 'cp', `${src}/.`, `box:/tmp/exist2-${which}`);
      const out = join(scratch, `out-${which}`);
      mkdirSync(join(out, 'exist'), { recursive: true });
      await ok(which, 'cp', `box:/tmp/new-${which}`, join(out, 'new'));
      await ok(which, 'cp', `box:/tmp/exist-${which}`, join(out, 'exist'));
      await ok(which, 'cp', `box:/tmp/exist2-${which}/.`, join(out, 'contents'));
      await ok(which, 'cp', `box:/tmp/new-${which}/a.txt`, join(out, 'exist'));
      await ok(which, 'cp', `box:/tmp/new-${which}/sub/b.txt`, join(out, 'renamed.txt'));
      assert.deepEqual(tree(join(out, 'new')), tree(src), `${which}: dir to a missing destination`);
      assert.deepEqual(tree(join(out, 'exist', `exist-${which}`, 'src')), tree(src), `${which}: dir into an existing directory`);
      assert.deepEqual(tree(join(out, 'contents')).slice(1), tree(src).slice(1), `${which}: dir/. copies the content`);
      assert.equal(readFileSync(join(out, 'exist', 'a.txt'), 'utf8'), 'alpha\n');
      assert.equal(readFileSync(join(out, 'renamed.txt'), 'utf8'), 'beta\n');
      assert.equal(statSync(join(out, 'new', 'hard')).ino, statSync(join(out, 'new', 'a.txt')).ino, 'hardlinks stay hardlinks');
      outs[which] = tree(out).join('\n').replaceAll(`-${which}`, '-X');
      // docker's refusals, in its words.
      await fails(which, ['cp', join(src, 'a.txt'), 'box:/tmp/missing/'], 'no such directory');
      await fails(which, ['cp', src, `box:/tmp/new-${which}/a.txt`], 'cannot copy directory');
      await fails(which, ['cp', 'box:/tmp/nope', join(out, 'x')], 'Error response from daemon: Could not find the file /tmp/nope in container box');
      await fails(which, ['cp', 'box:/tmp/new-docker', '/nonexistent-dir/x'], 'invalid output path: directory "/nonexistent-dir" does not exist');
      await fails(which, ['cp', join(scratch, 'nope'), 'box:/tmp/'], `lstat ${scratch}/nope: no such file or directory`);
      await fails(which, ['cp', 'a', 'b'], 'must specify at least one container source');
      await fails(which, ['cp', 'box:/a', 'box:/b'], 'copying between containers is not supported');
      await fails(which, ['cp', join(src, 'a.txt'), 'nosuch:/tmp/x'], 'Error response from daemon: No such container: nosuch');
      await fails(which, ['cp', '-', 'box:/tmp/missing'], 'destination "box:/tmp/missing" must be a directory', Buffer.alloc(0));
    }
    assert.equal(outs.berth, outs.docker, 'berth cp and docker cp made different trees');
  });

  it('streams a tar to stdout and extracts one from stdin with -', async () => {
    const tars: Record<Cli, Buffer> = { docker: Buffer.alloc(0), berth: Buffer.alloc(0) };
    for (const which of CLIS) {
      tars[which] = await ok(which, 'cp', 'box:/tmp/dash', '-');
      const entries = await tarEntries(tars[which]);
      assert.deepEqual(entries.map((e) => `${e.type} ${e.name}`), ['directory dash/', 'file dash/f']);
      assert.equal(entries[1]!.data.toString(), 'dash\n');
    }
    for (const which of CLIS) {
      const input = await tarBuffer([
        { header: { name: 'in/', type: 'directory', mode: 0o700 } },
        { header: { name: 'in/file', type: 'file', mode: 0o600, uid: 42, gid: 43 }, body: `from stdin ${which}\n` },
      ]);
      const r = await cli(which, ['cp', '-', `box:/tmp/dash`], { input });
      assert.equal(r.code, 0, r.stderr);
      const back = await tarEntries(await ok(which, 'cp', 'box:/tmp/dash/in/file', '-'));
      assert.deepEqual([back[0]!.data.toString(), back[0]!.uid, back[0]!.gid, back[0]!.mode], [`from stdin ${which}\n`, 42, 43, 0o600]);
    }
    assert.ok(tars.docker.equals(tars.berth), 'the same archive through both CLIs');
    // A compressed archive is taken too, as docker's daemon takes it.
    const gz = spawnSync('gzip', ['-c'], { input: await tarBuffer([{ header: { name: 'gz.txt', type: 'file' }, body: 'gzipped\n' }]) }).stdout;
    assert.equal((await cli('docker', ['cp', '-', 'box:/tmp'], { input: gz })).code, 0);
    assert.equal(await containerFile('box', '/tmp/gz.txt'), 'gzipped\n');
  });

  it('keeps the archive\'s uid/gid; with -a and a configured user, files go to that user', async () => {
    const owned = join(scratch, 'owned');
    mkdirSync(owned);
    writeFileSync(join(owned, 'f'), 'o');
    chownSync(owned, 1234, 5678);
    chownSync(join(owned, 'f'), 1234, 5678);
    await ok('docker', 'create', '--name', 'as-user', '-u', '1000:1001', 'busybox', 'true');
    for (const which of CLIS) {
      await ok(which, 'cp', '-a', owned, `box:/tmp/owned-a-${which}`);
      await ok(which, 'cp', owned, `box:/tmp/owned-${which}`);
      await ok(which, 'cp', '-a', owned, `as-user:/owned-a-${which}`);
      for (const [container, path, owner] of [
        ['box', `/tmp/owned-a-${which}`, '1234:5678'],
        ['box', `/tmp/owned-${which}`, '1234:5678'],
        ['as-user', `/owned-a-${which}`, '1000:1001'],
      ] as const) {
        const entries = await tarEntries(await ok('docker', 'cp', `${container}:${path}`, '-'));
        assert.deepEqual(entries.map((e) => `${e.uid}:${e.gid}`), [owner, owner], `${which} ${container}:${path}`);
      }
      // Copied out, files belong to whoever copies (root here), as with docker.
      const out = join(scratch, `owned-out-${which}`);
      await ok(which, 'cp', `box:/tmp/owned-a-${which}`, out);
      assert.equal(statSync(join(out, 'f')).uid, 0);
    }
    await ok('docker', 'rm', 'as-user');
  });

  it('copies to and from a stopped container, and leaves nothing mounted', async () => {
    await ok('docker', 'create', '--name', 'stopped', 'busybox', 'sh', '-c', 'cat /docker.txt /berth.txt');
    for (const which of CLIS) {
      const file = join(scratch, `${which}.txt`);
      writeFileSync(file, `${which} was here\n`);
      await ok(which, 'cp', file, 'stopped:/');
      const back = join(scratch, `${which}-back.txt`);
      await ok(which, 'cp', `stopped:/${which}.txt`, back);
      assert.equal(readFileSync(back, 'utf8'), `${which} was here\n`);
      await ok(which, 'cp', 'stopped:/etc/passwd', join(scratch, `passwd-${which}`));
      assert.match(readFileSync(join(scratch, `passwd-${which}`), 'utf8'), /^root:x:0:0:/);
    }
    const started = await cli('docker', ['start', '-a', 'stopped']);
    assert.equal(started.stdout.toString(), 'docker was here\nberth was here\n', started.stderr);
    // The copies' mounts are gone, and it can be removed.
    assert.ok(!readFileSync('/proc/self/mounts', 'utf8').includes(join(daemon.execRoot, 'archive')), 'a copy left its mount behind');
    assert.deepEqual(existsSync(join(daemon.execRoot, 'archive')) ? readdirSync(join(daemon.execRoot, 'archive')) : [], []);
    await ok('docker', 'rm', 'stopped');
  });

  it('refuses a read-only root and reports the stat of a path in docker\'s header', async () => {
    await ok('docker', 'create', '--name', 'ro', '--read-only', 'busybox', 'true');
    await fails('docker', ['cp', join(scratch, 'five'), 'ro:/tmp/'], /^Error response from daemon: container rootfs is marked read-only$/m);
    await ok('docker', 'rm', 'ro');
    const dir = await headStat('box', '/tmp/dash/');
    assert.equal(dir.status, 200);
    assert.equal(dir.stat?.['name'], 'dash');
    assert.equal(dir.stat?.['mode'], 2 ** 31 + 0o755);
    assert.match(String(dir.stat?.['mtime']), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
    assert.equal((await headStat('box', '/nope')).status, 404);
  });
});

describe('docker cp against hostile containers', () => {
  before(async () => {
    // Links that lead to the host's sentinels (and /etc/shadow) if anything followed them on the host.
    await startContainer(
      'hostile',
      [
        'echo "container shadow" > /etc/shadow',
        'ln -s / /tmp/x',
        'rm /etc/passwd && ln -s /../../../etc/shadow /etc/passwd',
        `mkdir -p ${sentinel1} && echo "container secret" > ${sentinel1}/secret`,
        `ln -s ${sentinel1} /sdir1 && ln -s ${sentinel2} /sdir2`,
        `ln -s ${sentinel1}/secret /leak1 && ln -s ${sentinel2}/secret /leak2`,
        `ln -s ../../../../../../../../..${sentinel2}/secret /leak-rel`,
        'mkdir /dst',
      ].join('\n'),
    );
  });

  it('copies out what the container has, never what the host has', async () => {
    for (const which of CLIS) {
      const out = join(scratch, `hostile-out-${which}`);
      mkdirSync(out);
      assert.equal(await containerFile('hostile', '/tmp/x/etc/shadow'), 'container shadow\n');
      await ok(which, 'cp', '-L', 'hostile:/etc/passwd', join(out, 'passwd'));
      assert.equal(readFileSync(join(out, 'passwd'), 'utf8'), 'container shadow\n');
      // Without -L the link itself is copied, and docker's client refuses a link that climbs out of where it lands.
      await fails(which, ['cp', 'hostile:/etc/passwd', join(out, 'passwd-link')], `invalid symlink "${join(out, 'passwd-link')}" -> "/../../../etc/shadow"`);
      await ok(which, 'cp', '-L', 'hostile:/leak1', join(out, 'leak1'));
      assert.equal(readFileSync(join(out, 'leak1'), 'utf8'), 'container secret\n');
      await ok(which, 'cp', 'hostile:/sdir1/secret', join(out, 'via-sdir1'));
      assert.equal(readFileSync(join(out, 'via-sdir1'), 'utf8'), 'container secret\n');
      await fails(which, ['cp', '-L', 'hostile:/leak2', join(out, 'leak2')], `Error response from daemon: Could not find the file ${sentinel2}/secret in container hostile`);
      await fails(which, ['cp', '-L', 'hostile:/leak-rel', join(out, 'leak-rel')], /Could not find the file/);
      await fails(which, ['cp', 'hostile:/sdir2/secret', join(out, 'via-sdir2')], /Could not find the file \/sdir2\/secret/);
      await fails(which, ['cp', 'hostile:/sdir2/', join(out, 'sdir2')], /Could not find the file/);
      for (const name of readdirSync(out)) {
        const st = lstatSync(join(out, name));
        if (st.isFile()) assertNoHostSecret(readFileSync(join(out, name)), `${which} ${name}`);
      }
    }
    // The whole root, links and all: links stay links, nothing of the host is in it.
    const all = await runRaw('docker', ['cp', 'hostile:/', '-'], { timeoutMs: 120_000 });
    assert.equal(all.code, 0, all.stderr);
    const entries = await tarEntries(all.stdout);
    assert.equal(entries[0]!.name, '/');
    for (const e of entries) assertNoHostSecret(e.data, e.name);
    const sdir2 = entries.find((e) => e.name === '/sdir2');
    assert.deepEqual([sdir2?.type, sdir2?.linkname], ['symlink', sentinel2]);
  });

  it('copies in through the container\'s links into the container, never onto the host', async () => {
    const file = join(scratch, 'payload');
    writeFileSync(file, 'payload\n');
    for (const which of CLIS) {
      await ok(which, 'cp', file, 'hostile:/sdir1/');
      assert.equal(await containerFile('hostile', `${sentinel1}/payload`), 'payload\n');
      await fails(which, ['cp', file, 'hostile:/sdir2/'], /no such directory|Could not find the file/);
      await fails(which, ['cp', file, 'hostile:/sdir2/sub/'], /no such directory|Could not find the file/);
      await ok(which, 'cp', file, `hostile:/tmp/x/in-root-${which}`);
      assert.equal(await containerFile('hostile', `/in-root-${which}`), 'payload\n');
    }
    // A file copied onto /etc/passwd (-> /../../../etc/shadow) replaces the container's /etc/shadow.
    await ok('docker', 'cp', file, 'hostile:/etc/passwd');
    assert.equal(await containerFile('hostile', '/etc/shadow'), 'payload\n');
  });

  it('refuses hostile archives, and what it extracts stays in the container', async () => {
    const cases: Array<[string, Array<{ header: TarWriterHeader; body?: string }>, RegExp | undefined]> = [
      ['climbs out', [{ header: { name: '../../../../escape', type: 'file' }, body: 'x' }], /is outside of "\/dst"/],
      ['hardlink out', [{ header: { name: 'h', type: 'hardlink', linkname: '../../etc/shadow' } }], /invalid hardlink/],
      ['symlink out', [{ header: { name: 's', type: 'symlink', linkname: '../../../../..' } }], /invalid symlink "\/dst\/s"/],
      ['through the container\'s link', [{ header: { name: 'pwned', type: 'file' }, body: 'x' }], /must be a directory|Could not find the file/],
      [
        'through its own link',
        [
          { header: { name: 'evil', type: 'symlink', linkname: sentinel2 } },
          { header: { name: 'evil/pwned', type: 'file' }, body: 'x' },
        ],
        /no such file or directory/,
      ],
      [
        'devices are not made, rooted names stay inside',
        [
          { header: { name: 'null', type: 'char', devmajor: 1, devminor: 3 } },
          { header: { name: `/${sentinel2}/rooted`, type: 'file' }, body: 'x' },
        ],
        undefined,
      ],
    ];
    for (const [what, list, error] of cases) {
      const dest = what === 'through the container\'s link' ? 'hostile:/sdir2' : 'hostile:/dst';
      const r = await cli('docker', ['cp', '-', dest], { input: await tarBuffer(list) });
      if (error) {
        assert.notEqual(r.code, 0, what);
        assert.match(r.stderr, error, what);
      } else assert.equal(r.code, 0, `${what}: ${r.stderr}`);
    }
    assert.equal(await containerFile('hostile', `/dst${sentinel2}/rooted`), 'x');
    const dst = await tarEntries(await ok('docker', 'cp', 'hostile:/dst', '-'));
    assert.ok(!dst.some((e) => e.name === 'dst/null'), 'a device node was created');
    assert.equal(hostState(), hostBefore);
  });

  it('stays inside while the container swaps a directory for a symlink to the host during copies', async () => {
    const s2 = sentinel2;
    await startContainer(
      'racer',
      [
        'mkdir -p /w/d.real && echo "container race" > /w/d.real/secret',
        `ln -s ${s2} /w/d.link`,
        'mv /w/d.real /w/d',
        '(while true; do mv /w/d /w/d.real; mv /w/d.link /w/d; mv /w/d /w/d.link; mv /w/d.real /w/d; done) &',
      ].join('\n'),
    );
    const payload = join(scratch, 'race-payload');
    writeFileSync(payload, 'race payload\n');
    // At least 4 s of copies, and on until some got through in each direction (at most 40 s).
    const started = Date.now();
    let outs = 0;
    let ins = 0;
    for (let i = 0; Date.now() - started < 4000 || ((outs < 2 || ins < 2) && Date.now() - started < 40_000); i++) {
      const which = CLIS[i % 2]!;
      const out = await cli(which, ['cp', 'racer:/w/d/secret', '-']);
      if (out.code === 0) {
        outs++;
        const got = await tarEntries(out.stdout);
        for (const e of got) assertNoHostSecret(e.data, `race copy ${i}`);
        assert.equal(got[0]!.data.toString(), 'container race\n');
      }
      const dir = await cli(which, ['cp', 'racer:/w/d', '-']);
      if (dir.code === 0) for (const e of await tarEntries(dir.stdout)) assertNoHostSecret(e.data, `race dir copy ${i}`);
      const put = await cli(which, ['cp', payload, `racer:/w/d/payload-${i}`]);
      if (put.code === 0) ins++;
    }
    assert.ok(outs > 0 && ins > 0, `no copy got through the swapping (${outs} out, ${ins} in)`);
    assert.equal(hostState(), hostBefore, 'a copy reached the host through the swapped symlink');
    await ok('docker', 'rm', '-f', 'racer');
  });
});

describe('docker cp of a 1 GiB file', () => {
  it('streams it out and in without holding it in memory', { timeout: 300_000 }, async () => {
    await startContainer('big', 'dd if=/dev/zero of=/big bs=1M seek=1023 count=1 2>/dev/null');
    const pid = daemon.pid!;
    const before = vmHwmKiB(pid);
    const GiB = 1024 * 1024 * 1024;
    const out = await runRaw('docker', ['cp', 'big:/big', '-'], { countOnly: true, timeoutMs: 240_000 });
    assert.equal(out.code, 0, out.stderr);
    assert.equal(out.bytes, 512 + GiB + 1024, 'one header, the file, the end of the archive');
    // In: a tar of a 1 GiB file made on the fly.
    let sent = 0;
    const writer = new TarWriter();
    const body = new Readable({
      read() {
        if (sent >= GiB) {
          this.push(null);
          return;
        }
        const n = Math.min(1024 * 1024, GiB - sent);
        sent += n;
        this.push(Buffer.alloc(n));
      },
    });
    writer.add({ name: 'zero', type: 'file', size: GiB }, body).then(() => writer.finish()).catch(() => undefined);
    const into = await runRaw('docker', ['cp', '-', 'big:/tmp'], { input: writer.stream, timeoutMs: 240_000 });
    assert.equal(into.code, 0, into.stderr);
    const stat = await headStat('big', '/tmp/zero');
    assert.equal(stat.stat?.['size'], GiB);
    const grown = (vmHwmKiB(pid) - before) / 1024;
    assert.ok(grown < 256, `berthd's peak memory grew by ${grown.toFixed(0)} MiB for 1 GiB each way`);
    await ok('docker', 'rm', '-f', 'big');
  });
});
