/**
 * Specs from buildSpec run by the real runc on the real busybox image: what a container
 * sees of its capabilities, seccomp filter, hostname, user, root, limits and cgroups.
 */
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import { availableCapabilities, capabilityMask, DEFAULT_CAPABILITIES } from '../../src/runtime/capabilities.js';
import { buildSpec, type ContainerConfig, type HostConfig, type SpecInput } from '../../src/runtime/oci-spec.js';
import type { OciSpec } from '../../src/runtime/spec-types.js';
import { cgroupFile, extractBusybox, runner, specInput, type RunResult, type Runner } from './helpers.js';

const haveRunc = spawnSync('runc', ['--version']).status === 0 && process.getuid?.() === 0;

let dir: string;
let rootfs: string;
let runc: Runner;

before(() => {
  if (!haveRunc) return;
  dir = mkdtempSync(join(tmpdir(), 'berth-runc-'));
  rootfs = join(dir, 'rootfs');
  extractBusybox(rootfs);
  runc = runner(dir);
});

after(() => {
  if (!haveRunc) return;
  try {
    runc.cleanup();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

async function specFor(script: string, hostConfig: HostConfig = {}, config: ContainerConfig = {}, more: Partial<SpecInput> = {}): Promise<OciSpec> {
  return buildSpec(specInput(dir, rootfs, { config: { Cmd: ['sh', '-c', script], ...config }, hostConfig, ...more }));
}

/** Runs `script` and returns its `key=value` lines as a record. */
async function run(script: string, hostConfig: HostConfig = {}, config: ContainerConfig = {}, more: Partial<SpecInput> = {}): Promise<Record<string, string> & { _result: string }> {
  const result: RunResult = await runc.run(await specFor(script, hostConfig, config, more));
  assert.equal(result.status, 0, `container failed: ${JSON.stringify(result)}`);
  const out: Record<string, string> = {};
  for (const line of result.stdout.split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) out[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return Object.assign(out, { _result: JSON.stringify(result) });
}

const PROBE = [
  'echo capeff=$(grep CapEff /proc/self/status | cut -f2)',
  'echo nnp=$(grep NoNewPrivs /proc/self/status | cut -f2)',
  'echo seccomp=$(grep "^Seccomp:" /proc/self/status | cut -f2)',
  'unshare -U true 2>/dev/null; echo unshare=$?',
  'mkdir -p /tmp/m; mount -t tmpfs x /tmp/m 2>/dev/null; echo mount=$?',
].join('; ');

function hex(mask: bigint): string {
  return mask.toString(16).padStart(16, '0');
}

describe('runc runs the spec', { skip: haveRunc ? false : 'needs root and runc' }, () => {
  it('default: Docker\'s capabilities, a seccomp filter that refuses unshare and mount, the short id as hostname', async () => {
    const inp = specInput(dir, rootfs, {
      config: { Cmd: ['sh', '-c', `${PROBE}; echo host=$(hostname); echo keys=$(stat -c %t:%T /proc/keys); echo firmware=$(ls /sys/firmware | wc -l); echo sysrq=$(echo h > /proc/sysrq-trigger 2>&1 && echo w || echo ro); echo id=$(id -u):$(id -g)`] },
    });
    const result = await runc.run(await buildSpec(inp));
    assert.equal(result.status, 0, JSON.stringify(result));
    const out = Object.fromEntries(result.stdout.trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
    assert.equal(out['capeff'], hex(capabilityMask(DEFAULT_CAPABILITIES)));
    assert.equal(out['capeff'], '00000000a80425fb');
    assert.equal(out['nnp'], '0');
    assert.equal(out['seccomp'], '2');
    assert.notEqual(out['unshare'], '0');
    assert.notEqual(out['mount'], '0');
    assert.equal(out['host'], inp.id.slice(0, 12));
    assert.equal(out['keys'], '1:3', '/proc/keys is masked with /dev/null');
    assert.equal(out['firmware'], '0', '/sys/firmware is masked with an empty directory');
    assert.equal(out['sysrq'], 'ro');
    assert.equal(out['id'], '0:0');
  });

  it('--privileged: every capability this process holds, no seccomp, unshare and mount work', async () => {
    const out = await run(PROBE, { Privileged: true });
    assert.equal(out['capeff'], hex(capabilityMask(availableCapabilities())), out._result);
    assert.equal(out['seccomp'], '0');
    assert.equal(out['unshare'], '0', out._result);
    assert.equal(out['mount'], '0', out._result);
  });

  it('--cap-add SYS_ADMIN lifts the seccomp rules on mount; --cap-drop ALL leaves nothing', async () => {
    const admin = await run(PROBE, { CapAdd: ['sys_admin'] });
    assert.equal(admin['mount'], '0', admin._result);
    assert.equal(admin['seccomp'], '2');
    const none = await run(`${PROBE}; chown 1 /tmp 2>/dev/null; echo chown=$?`, { CapDrop: ['ALL'] });
    assert.equal(none['capeff'], '0000000000000000');
    assert.notEqual(none['chown'], '0');
  });

  it('seccomp=unconfined drops the filter but keeps the capabilities', async () => {
    const out = await run(PROBE, { SecurityOpt: ['seccomp=unconfined'] });
    assert.equal(out['seccomp'], '0');
    assert.equal(out['capeff'], '00000000a80425fb');
    assert.notEqual(out['mount'], '0', 'mount still needs CAP_SYS_ADMIN');
  });

  it('no-new-privileges shows NoNewPrivs: 1; --ulimit shows in the limits', async () => {
    const out = await run('echo nnp=$(grep NoNewPrivs /proc/self/status | cut -f2); echo nofile=$(ulimit -n):$(ulimit -Hn)', {
      SecurityOpt: ['no-new-privileges:true'],
      Ulimits: [{ Name: 'nofile', Soft: 512, Hard: 1024 }],
    });
    assert.equal(out['nnp'], '1');
    assert.equal(out['nofile'], '512:1024');
  });

  it('--read-only refuses writes to the root; a --tmpfs stays writable', async () => {
    const out = await run('touch /newfile 2>/dev/null; echo root=$?; touch /scratch/f; echo tmpfs=$?', { ReadonlyRootfs: true, Tmpfs: { '/scratch': 'size=1m' } });
    assert.notEqual(out['root'], '0', out._result);
    assert.equal(out['tmpfs'], '0', out._result);
  });

  it('-u nobody runs as 65534; -u with a group and --group-add', async () => {
    const nobody = await run('echo id=$(id -u):$(id -g); echo groups=$(id -G)', {}, { User: 'nobody' });
    assert.equal(nobody['id'], '65534:65534');
    const grouped = await run('echo id=$(id -u):$(id -g); echo groups=$(id -G)', { GroupAdd: ['wheel'] }, { User: '1234:staff' });
    assert.equal(grouped['id'], '1234:50');
    assert.equal(grouped['groups'], '50 10');
  });

  it('Hostname, Env, WorkingDir and Entrypoint reach the process', async () => {
    const result = await runc.run(await buildSpec(specInput(dir, rootfs, {
      config: { Hostname: 'box', Entrypoint: ['sh', '-c'], Cmd: ['echo "$(hostname) $FOO $(pwd) $HOSTNAME"'], Env: ['FOO=bar'], WorkingDir: '/etc' },
    })));
    assert.equal(result.stdout.trim(), 'box bar /etc box', JSON.stringify(result));
  });

  it('memory, pids and cpu limits land in the cgroup while it runs', async () => {
    const ready = join(dir, 'ready-limits');
    mkdirSync(ready);
    const spec = await specFor('touch /ready/up; sleep 30', {
      Memory: 64 * 1024 * 1024,
      PidsLimit: 42,
      NanoCpus: 500_000_000,
      Binds: [`${ready}:/ready`],
    });
    const cgroupsPath = spec.linux.cgroupsPath ?? '';
    const values = await runc.runWhile(spec, join(ready, 'up'), () => ({
      memory: readFileSync(cgroupFile(cgroupsPath, { controller: 'memory', file: 'memory.limit_in_bytes' }, 'memory.max'), 'utf8').trim(),
      pids: readFileSync(cgroupFile(cgroupsPath, { controller: 'pids', file: 'pids.max' }, 'pids.max'), 'utf8').trim(),
      cpu: existsSync('/sys/fs/cgroup/cgroup.controllers')
        ? readFileSync(join('/sys/fs/cgroup', cgroupsPath, 'cpu.max'), 'utf8').trim()
        : readFileSync(cgroupFile(cgroupsPath, { controller: 'cpu', file: 'cpu.cfs_quota_us' }, ''), 'utf8').trim(),
    }));
    assert.equal(values.memory, String(64 * 1024 * 1024));
    assert.equal(values.pids, '42');
    assert.ok(values.cpu === '50000' || values.cpu === '50000 100000', values.cpu);
  });

  it('the pids limit stops a fork bomb', async () => {
    const script = 'for i in 1 2 3 4 5 6 7 8 9 10; do sleep 2 & done; echo survived';
    const limited = await runc.run(await specFor(script, { PidsLimit: 5 }));
    assert.notEqual(limited.status, 0, JSON.stringify(limited));
    assert.match(limited.stderr, /can't fork|Resource temporarily unavailable/);
    const free = await runc.run(await specFor(script, { PidsLimit: 50 }));
    assert.equal(free.stdout.trim(), 'survived', JSON.stringify(free));
  });

  it('a read-only bind shows the host directory and refuses writes', async () => {
    const src = join(dir, 'bind-ro');
    mkdirSync(src);
    writeFileSync(join(src, 'hello'), 'from host\n');
    const out = await run('echo content=$(cat /data/hello); touch /data/new 2>/dev/null; echo write=$?', { Binds: [`${src}:/data:ro`] });
    assert.equal(out['content'], 'from host');
    assert.notEqual(out['write'], '0');
    assert.equal(existsSync(join(src, 'new')), false);
  });

  it('--device maps a host device under a new name', async () => {
    const out = await run('echo hi > /dev/mynull; echo write=$?; echo type=$(stat -c %t:%T /dev/mynull)', {
      Devices: [{ PathOnHost: '/dev/null', PathInContainer: '/dev/mynull', CgroupPermissions: 'rwm' }],
    });
    assert.equal(out['write'], '0', out._result);
    assert.equal(out['type'], '1:3');
  });

  it('--init runs tini as pid 1', { skip: existsSync('/usr/bin/tini-static') ? false : 'tini-static is not installed (apt package tini)' }, async () => {
    const out = await run('echo pid1=$(cat /proc/1/cmdline | tr "\\0" " ")', { Init: true }, {}, { initPath: '/usr/bin/tini-static' });
    assert.match(out['pid1'] ?? '', /^\/sbin\/docker-init -- sh -c/);
  });

  it("Alpine's apk runs under the default profile", async () => {
    const alpine = ['../shared/images', '/work/shared/images'].map((d) => join(d, 'alpine-minirootfs-3.20.3-x86_64.tar.gz')).find((p) => existsSync(p));
    if (!alpine || process.arch !== 'x64') return;
    const alpineRoot = join(dir, 'alpine');
    mkdirSync(alpineRoot);
    assert.equal(spawnSync('tar', ['-xzf', alpine, '-C', alpineRoot]).status, 0);
    const spec = await buildSpec(specInput(dir, alpineRoot, { config: { Cmd: ['sh', '-c', 'apk info | grep -c . ; apk --version'] } }));
    const result = await runc.run(spec);
    assert.equal(result.status, 0, JSON.stringify(result));
    assert.match(result.stdout, /apk-tools 2\./);
  });
});
