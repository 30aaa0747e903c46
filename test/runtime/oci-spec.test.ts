import * as assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import { BerthError } from '../../src/errors/errors.js';
import { availableCapabilities, capabilityMask, DEFAULT_CAPABILITIES, tweakCapabilities } from '../../src/runtime/capabilities.js';
import { buildSpec, mergeEnv, specJson, type SpecInput } from '../../src/runtime/oci-spec.js';
import { buildRlimits, processLimits } from '../../src/runtime/rlimits.js';
import type { OciSpec } from '../../src/runtime/spec-types.js';
import { specInput } from './helpers.js';

let dir: string;
let rootfs: string;
const cgroups = { v2: false, swap: true, cpuCount: cpus().length };

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'berth-spec-'));
  rootfs = join(dir, 'rootfs');
  mkdirSync(join(rootfs, 'etc'), { recursive: true });
  writeFileSync(join(rootfs, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\napp:x:1000:1000::/home/app:/bin/sh\n');
  writeFileSync(join(rootfs, 'etc/group'), 'root:x:0:\nwheel:x:10:root\nstaff:x:50:app\napp:x:1000:\nnogroup:x:65534:\n');
});

after(() => rmSync(dir, { recursive: true, force: true }));

function input(overrides: Partial<SpecInput> = {}): SpecInput {
  return { ...specInput(dir, rootfs), cgroups, ...overrides };
}

async function spec(config: SpecInput['config'] = { Cmd: ['sh'] }, hostConfig: SpecInput['hostConfig'] = {}, more: Partial<SpecInput> = {}): Promise<OciSpec> {
  return buildSpec(input({ config, hostConfig, ...more }));
}

async function rejects(promise: Promise<unknown>, code: string, message: RegExp | string): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof BerthError, `expected a BerthError, got ${String(err)}`);
    assert.equal(err.code, code);
    if (typeof message === 'string') assert.equal(err.message, message);
    else assert.match(err.message, message);
    return true;
  });
}

function mount(s: OciSpec, destination: string) {
  return s.mounts.find((m) => m.destination === destination);
}

const DOCKER_MASKED = [
  '/proc/acpi', '/proc/asound', '/proc/interrupts', '/proc/kcore', '/proc/keys', '/proc/latency_stats',
  '/proc/sched_debug', '/proc/scsi', '/proc/timer_list', '/proc/timer_stats', '/sys/devices/virtual/powercap',
  '/sys/firmware',
];

describe('buildSpec: defaults', () => {
  it('namespaces, process, hostname and environment as Docker sets them', async () => {
    const inp = input({ config: { Cmd: ['sh', '-c', 'echo hi'] } });
    const s = await buildSpec(inp);
    assert.deepEqual(s.linux.namespaces.map((n) => n.type), ['mount', 'network', 'uts', 'pid', 'ipc']);
    assert.ok(s.linux.namespaces.every((n) => n.path === undefined));
    assert.deepEqual(s.process.args, ['sh', '-c', 'echo hi']);
    assert.equal(s.process.cwd, '/');
    assert.equal(s.process.terminal, false);
    assert.equal(s.hostname, inp.id.slice(0, 12));
    assert.deepEqual(s.process.env, ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', `HOSTNAME=${inp.id.slice(0, 12)}`]);
    assert.deepEqual(s.process.user, { uid: 0, gid: 0, additionalGids: [0, 10] });
    assert.equal(s.process.rlimits, undefined, 'no default rlimits');
    assert.equal(s.process.noNewPrivileges, undefined);
    assert.deepEqual(s.root, { path: rootfs, readonly: false });
    assert.equal(s.linux.cgroupsPath, inp.cgroupsPath);
  });

  it('the default capability set, in every set but inheritable and ambient', async () => {
    const s = await spec();
    const caps = s.process.capabilities;
    assert.ok(caps);
    assert.deepEqual([...caps.bounding].sort(), [...DEFAULT_CAPABILITIES].sort());
    assert.deepEqual(caps.effective, caps.bounding);
    assert.deepEqual(caps.permitted, caps.bounding);
    assert.equal(caps.inheritable, undefined);
    assert.equal(caps.ambient, undefined);
    assert.equal(capabilityMask(caps.bounding), 0xa80425fbn);
  });

  it("Docker's mounts, masked and read-only paths, and /etc files", async () => {
    const inp = input();
    const s = await buildSpec(inp);
    assert.deepEqual(s.mounts.slice(0, 7).map((m) => [m.destination, m.type, m.source]), [
      ['/proc', 'proc', 'proc'], ['/dev', 'tmpfs', 'tmpfs'], ['/dev/pts', 'devpts', 'devpts'], ['/sys', 'sysfs', 'sysfs'],
      ['/sys/fs/cgroup', 'cgroup', 'cgroup'], ['/dev/mqueue', 'mqueue', 'mqueue'], ['/dev/shm', 'tmpfs', 'shm'],
    ]);
    assert.deepEqual(mount(s, '/dev/shm')?.options, ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=67108864']);
    assert.deepEqual(mount(s, '/sys')?.options, ['nosuid', 'noexec', 'nodev', 'ro']);
    assert.deepEqual(mount(s, '/dev/pts')?.options, ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5']);
    assert.deepEqual(mount(s, '/etc/hosts'), { destination: '/etc/hosts', type: 'bind', source: inp.hostsPath, options: ['rbind', 'rprivate'] });
    assert.equal(mount(s, '/etc/hostname')?.source, inp.hostnamePath);
    assert.equal(mount(s, '/etc/resolv.conf')?.source, inp.resolvConfPath);
    assert.deepEqual(s.linux.maskedPaths?.slice(0, DOCKER_MASKED.length), DOCKER_MASKED);
    assert.ok(s.linux.maskedPaths?.slice(DOCKER_MASKED.length).every((p) => /^\/sys\/devices\/system\/cpu\/cpu\d+\/thermal_throttle$/.test(p)));
    assert.deepEqual(s.linux.readonlyPaths, ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger']);
  });

  it("the device cgroup allowlist, Docker's sysctls and the default seccomp profile", async () => {
    const s = await spec();
    assert.deepEqual(s.linux.devices, []);
    assert.deepEqual(s.linux.resources.devices, [
      { allow: false, access: 'rwm' },
      { allow: true, type: 'c', major: 1, minor: 5, access: 'rwm' },
      { allow: true, type: 'c', major: 1, minor: 3, access: 'rwm' },
      { allow: true, type: 'c', major: 1, minor: 9, access: 'rwm' },
      { allow: true, type: 'c', major: 1, minor: 8, access: 'rwm' },
      { allow: true, type: 'c', major: 5, minor: 0, access: 'rwm' },
      { allow: true, type: 'c', major: 5, minor: 1, access: 'rwm' },
      { allow: false, type: 'c', major: 10, minor: 229, access: 'rwm' },
    ]);
    assert.equal(s.linux.sysctl?.['net.ipv4.ping_group_range'], '0 2147483647');
    assert.equal(s.linux.sysctl?.['net.ipv4.ip_unprivileged_port_start'], '0');
    assert.equal(s.linux.seccomp?.defaultAction, 'SCMP_ACT_ERRNO');
    assert.equal(s.linux.seccomp?.defaultErrnoRet, 1);
    if (process.arch === 'x64') assert.deepEqual(s.linux.seccomp?.architectures, ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32']);
    assert.equal(s.linux.resources.memory, undefined);
    assert.equal(s.linux.resources.cpu, undefined);
    assert.equal(s.linux.resources.pids, undefined);
  });

  it('a cgroup namespace on cgroup v2, as Docker', async () => {
    const s = await spec({ Cmd: ['sh'] }, {}, { cgroups: { ...cgroups, v2: true } });
    assert.deepEqual(s.linux.namespaces.map((n) => n.type), ['mount', 'network', 'uts', 'pid', 'ipc', 'cgroup']);
  });
});

describe('buildSpec: process', () => {
  it('refuses an empty command with Docker\'s message', async () => {
    await rejects(spec({}), 'INVALID_ARGUMENT', 'no command specified');
    await rejects(spec({ Entrypoint: null, Cmd: [] }), 'INVALID_ARGUMENT', 'no command specified');
  });

  it('entrypoint then cmd; WorkingDir; TTY adds TERM; Env overrides and unsets', async () => {
    const s = await spec({ Entrypoint: ['/bin/entry', '-x'], Cmd: ['a', 'b'], WorkingDir: '/srv', Tty: true, Env: ['PATH=/opt/bin', 'FOO=bar', 'HOSTNAME'] });
    assert.deepEqual(s.process.args, ['/bin/entry', '-x', 'a', 'b']);
    assert.equal(s.process.cwd, '/srv');
    assert.equal(s.process.terminal, true);
    assert.deepEqual(s.process.env, ['PATH=/opt/bin', 'TERM=xterm', 'FOO=bar']);
    await rejects(spec({ Cmd: ['sh'], WorkingDir: 'rel' }), 'INVALID_ARGUMENT', /working directory 'rel' is invalid/);
  });

  it('mergeEnv: later duplicates replace earlier ones', () => {
    assert.deepEqual(mergeEnv(['A=1'], ['B=2', 'B=3', 'A=4']), ['A=4', 'B=3']);
  });

  it('Hostname and Domainname from the config', async () => {
    const s = await spec({ Cmd: ['sh'], Hostname: 'web', Domainname: 'example.test' });
    assert.equal(s.hostname, 'web');
    assert.equal(s.domainname, 'example.test');
    assert.ok(s.process.env.includes('HOSTNAME=web'));
    await rejects(spec({ Cmd: ['sh'], Hostname: 'h'.repeat(65) }), 'INVALID_ARGUMENT', /Hostname exceeds 64 bytes/);
  });

  it('User and GroupAdd resolve against the container files', async () => {
    const s = await spec({ Cmd: ['sh'], User: 'app' }, { GroupAdd: ['wheel', '4242'] });
    assert.deepEqual(s.process.user, { uid: 1000, gid: 1000, additionalGids: [1000, 50, 10, 4242] });
    await rejects(spec({ Cmd: ['sh'], User: 'ghost' }), 'INVALID_ARGUMENT', 'unable to find user ghost: no matching entries in passwd file');
  });

  it('--init runs docker-init as pid 1 with the command after --', async () => {
    const s = await spec({ Cmd: ['sleep', '1'] }, { Init: true }, { initPath: '/usr/bin/tini-static' });
    assert.deepEqual(s.process.args, ['/sbin/docker-init', '--', 'sleep', '1']);
    assert.deepEqual(mount(s, '/sbin/docker-init'), { destination: '/sbin/docker-init', type: 'bind', source: '/usr/bin/tini-static', options: ['bind', 'ro'] });
    await rejects(spec({ Cmd: ['sleep'] }, { Init: true }), 'UNAVAILABLE', /docker-init/);
    const hostPid = await spec({ Cmd: ['sleep'] }, { Init: true, PidMode: 'host' }, { initPath: '/usr/bin/tini-static' });
    assert.deepEqual(hostPid.process.args, ['sleep']);
  });
});

describe('buildSpec: namespaces', () => {
  it('joins a given network namespace; none for the host network', async () => {
    const joined = await spec({ Cmd: ['sh'] }, {}, { netns: '/run/netns/x' });
    assert.deepEqual(joined.linux.namespaces.find((n) => n.type === 'network'), { type: 'network', path: '/run/netns/x' });
    const host = await spec({ Cmd: ['sh'] }, { NetworkMode: 'host' }, { netns: 'host' });
    assert.equal(host.linux.namespaces.some((n) => n.type === 'network'), false);
    assert.equal(host.hostname, hostname());
    assert.equal(host.linux.sysctl, undefined);
    const shared = await spec({ Cmd: ['sh'] }, { NetworkMode: 'container:abc' }, { netns: '/proc/1/ns/net' });
    assert.equal(shared.linux.sysctl, undefined);
  });

  it('IpcMode, PidMode and UTSMode host, none and container', async () => {
    const ipcHost = await spec({ Cmd: ['sh'] }, { IpcMode: 'host' });
    assert.equal(ipcHost.linux.namespaces.some((n) => n.type === 'ipc'), false);
    assert.deepEqual(mount(ipcHost, '/dev/shm'), { destination: '/dev/shm', type: 'bind', source: '/dev/shm', options: ['rbind', 'rprivate'] });
    const ipcNone = await spec({ Cmd: ['sh'] }, { IpcMode: 'none' });
    assert.equal(mount(ipcNone, '/dev/shm'), undefined);
    assert.ok(ipcNone.linux.namespaces.some((n) => n.type === 'ipc'));
    const pidHost = await spec({ Cmd: ['sh'] }, { PidMode: 'host' });
    assert.equal(pidHost.linux.namespaces.some((n) => n.type === 'pid'), false);
    const utsHost = await spec({ Cmd: ['sh'] }, { UTSMode: 'host' });
    assert.equal(utsHost.linux.namespaces.some((n) => n.type === 'uts'), false);
    assert.equal(utsHost.hostname, undefined);
    const joined = await spec({ Cmd: ['sh'] }, { PidMode: 'container:abc', IpcMode: 'container:abc' }, {
      joinPid: { nsPath: '/proc/42/ns/pid' },
      joinIpc: { nsPath: '/proc/42/ns/ipc', shmPath: '/var/lib/berth/containers/abc/shm' },
    });
    assert.deepEqual(joined.linux.namespaces.filter((n) => n.path), [{ type: 'pid', path: '/proc/42/ns/pid' }, { type: 'ipc', path: '/proc/42/ns/ipc' }]);
    assert.equal(mount(joined, '/dev/shm')?.source, '/var/lib/berth/containers/abc/shm');
    await rejects(spec({ Cmd: ['sh'] }, { PidMode: 'container:abc' }), 'NOT_IMPLEMENTED', /joinPid/);
    await rejects(spec({ Cmd: ['sh'] }, { IpcMode: 'bogus' }), 'INVALID_ARGUMENT', 'invalid IPC mode: bogus');
    await rejects(spec({ Cmd: ['sh'] }, { PidMode: 'bogus' }), 'INVALID_ARGUMENT', 'invalid PID mode: bogus');
  });

  it('sysctls: namespaced ones pass, others are refused as runc would', async () => {
    const s = await spec({ Cmd: ['sh'] }, { Sysctls: { 'net.core.somaxconn': '1024', 'kernel.shmmax': '1000000' } });
    assert.equal(s.linux.sysctl?.['net.core.somaxconn'], '1024');
    assert.equal(s.linux.sysctl?.['kernel.shmmax'], '1000000');
    await rejects(spec({ Cmd: ['sh'] }, { NetworkMode: 'host', Sysctls: { 'net.core.somaxconn': '1' } }, { netns: 'host' }), 'INVALID_ARGUMENT', /hosts network namespace/);
    await rejects(spec({ Cmd: ['sh'] }, { Sysctls: { 'vm.swappiness': '1' } }), 'INVALID_ARGUMENT', /not in a separate kernel namespace/);
  });
});

describe('buildSpec: capabilities and privileges', () => {
  it('--cap-add/--cap-drop with or without CAP_, any case, and ALL', async () => {
    const added = await spec({ Cmd: ['sh'] }, { CapAdd: ['sys_admin', 'CAP_NET_ADMIN'], CapDrop: ['Chown', 'cap_kill'] });
    const caps = added.process.capabilities?.bounding ?? [];
    assert.ok(caps.includes('CAP_SYS_ADMIN') && caps.includes('CAP_NET_ADMIN'));
    assert.ok(!caps.includes('CAP_CHOWN') && !caps.includes('CAP_KILL'));
    assert.deepEqual(tweakCapabilities({ capDrop: ['ALL'], capAdd: ['chown'] }), ['CAP_CHOWN']);
    const all = tweakCapabilities({ capAdd: ['ALL'], capDrop: ['NET_RAW'] });
    assert.deepEqual(all, availableCapabilities().filter((c) => c !== 'CAP_NET_RAW'));
    await rejects(spec({ Cmd: ['sh'] }, { CapAdd: ['FOO'] }), 'INVALID_ARGUMENT', 'unknown capability: "CAP_FOO"');
    await rejects(spec({ Cmd: ['sh'] }, { CapDrop: ['cap_bogus'] }), 'INVALID_ARGUMENT', 'unknown capability: "CAP_BOGUS"');
  });

  it('a capability this process lacks is refused rather than left to runc', async (t) => {
    const missing = ['CAP_SYS_RESOURCE', 'CAP_SYS_MODULE', 'CAP_MAC_ADMIN'].find((c) => !availableCapabilities().includes(c));
    if (!missing) return t.skip('this process holds every capability');
    await rejects(spec({ Cmd: ['sh'] }, { CapAdd: [missing] }), 'INVALID_ARGUMENT', /not supported by your kernel or not available/);
  });

  it('CAP_SYS_ADMIN lifts the namespace and mount rules of the seccomp profile', async () => {
    const plain = (await spec()).linux.seccomp?.syscalls ?? [];
    const admin = (await spec({ Cmd: ['sh'] }, { CapAdd: ['SYS_ADMIN'] })).linux.seccomp?.syscalls ?? [];
    const allowed = (rules: typeof plain, name: string): boolean => rules.some((r) => r.action === 'SCMP_ACT_ALLOW' && !r.args && r.names.includes(name));
    for (const name of ['mount', 'unshare', 'setns', 'clone', 'umount2']) {
      assert.equal(allowed(plain, name), false, name);
      assert.equal(allowed(admin, name), true, name);
    }
    const cloneRule = plain.find((r) => r.names.includes('clone'));
    assert.deepEqual(cloneRule?.args, [{ index: 0, value: 0x7e020000, valueTwo: 0, op: 'SCMP_CMP_MASKED_EQ' }]);
    assert.deepEqual(plain.find((r) => r.names.includes('clone3')), { names: ['clone3'], action: 'SCMP_ACT_ERRNO', errnoRet: 38 });
    assert.equal(admin.some((r) => r.names.includes('clone3') && r.action === 'SCMP_ACT_ERRNO'), false);
  });

  it('--privileged: every capability, no seccomp, no masked or read-only paths, all devices', async () => {
    const s = await spec({ Cmd: ['sh'] }, { Privileged: true, CapDrop: ['ALL'] });
    assert.deepEqual(s.process.capabilities?.bounding, [...availableCapabilities()]);
    assert.equal(s.linux.seccomp, undefined);
    assert.equal(s.linux.maskedPaths, undefined);
    assert.equal(s.linux.readonlyPaths, undefined);
    assert.deepEqual(mount(s, '/sys')?.options, ['nosuid', 'noexec', 'nodev']);
    assert.deepEqual(mount(s, '/sys/fs/cgroup')?.options, ['nosuid', 'noexec', 'nodev']);
    assert.deepEqual(s.linux.resources.devices, [{ allow: true, access: 'rwm' }]);
    const devNull = s.linux.devices.find((d) => d.path === '/dev/null');
    assert.deepEqual({ type: devNull?.type, major: devNull?.major, minor: devNull?.minor }, { type: 'c', major: 1, minor: 3 });
    assert.equal(s.linux.devices.some((d) => d.path === '/dev/console' || d.path.startsWith('/dev/pts/')), false);
  });

  it('--security-opt no-new-privileges, seccomp=unconfined, a profile file or JSON; unknown ones refused', async () => {
    for (const opt of ['no-new-privileges', 'no-new-privileges:true', 'no-new-privileges=true']) {
      assert.equal((await spec({ Cmd: ['sh'] }, { SecurityOpt: [opt] })).process.noNewPrivileges, true, opt);
    }
    assert.equal((await spec({ Cmd: ['sh'] }, { SecurityOpt: ['no-new-privileges=false'] })).process.noNewPrivileges, undefined);
    assert.equal((await spec({ Cmd: ['sh'] }, { SecurityOpt: ['seccomp=unconfined'] })).linux.seccomp, undefined);
    const profile = { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['chmod'], action: 'SCMP_ACT_ERRNO', errnoRet: 13 }] };
    const file = join(dir, 'profile.json');
    writeFileSync(file, JSON.stringify(profile));
    for (const opt of [`seccomp=${file}`, `seccomp=${JSON.stringify(profile)}`]) {
      const s = await spec({ Cmd: ['sh'] }, { SecurityOpt: [opt] });
      assert.deepEqual(s.linux.seccomp, { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['chmod'], action: 'SCMP_ACT_ERRNO', errnoRet: 13 }] });
    }
    const privilegedCustom = await spec({ Cmd: ['sh'] }, { Privileged: true, SecurityOpt: [`seccomp=${file}`] });
    assert.equal(privilegedCustom.linux.seccomp?.defaultAction, 'SCMP_ACT_ALLOW');
    await rejects(spec({ Cmd: ['sh'] }, { SecurityOpt: ['foo=bar'] }), 'INVALID_ARGUMENT', 'invalid --security-opt 2: "foo=bar"');
    await rejects(spec({ Cmd: ['sh'] }, { SecurityOpt: ['foo'] }), 'INVALID_ARGUMENT', 'invalid --security-opt 1: "foo"');
    await rejects(spec({ Cmd: ['sh'] }, { SecurityOpt: ['no-new-privileges=maybe'] }), 'INVALID_ARGUMENT', 'invalid --security-opt 2: "no-new-privileges=maybe"');
    await rejects(spec({ Cmd: ['sh'] }, { SecurityOpt: ['seccomp={"defaultAction":"SCMP_ACT_NOPE"}'] }), 'INVALID_ARGUMENT', /^Decoding seccomp profile failed/);
    writeFileSync(join(dir, 'secret'), 'root:$6$hash:19000:0:99999:7:::\n');
    await assert.rejects(spec({ Cmd: ['sh'] }, { SecurityOpt: [`seccomp=${join(dir, 'secret')}`] }), (err: Error) => !err.message.includes('hash'));
  });

  it('MaskedPaths and ReadonlyPaths overrides (systempaths=unconfined)', async () => {
    const s = await spec({ Cmd: ['sh'] }, { MaskedPaths: [], ReadonlyPaths: [] });
    assert.deepEqual(s.linux.maskedPaths, []);
    assert.deepEqual(s.linux.readonlyPaths, []);
  });
});

describe('buildSpec: mounts', () => {
  it('--read-only makes the root and the /sys mounts read-only, and the /etc files', async () => {
    const s = await spec({ Cmd: ['sh'] }, { ReadonlyRootfs: true });
    assert.equal(s.root.readonly, true);
    assert.ok(mount(s, '/sys/fs/cgroup')?.options?.includes('ro'));
    assert.equal(mount(s, '/dev/shm')?.options?.includes('ro'), false);
    assert.equal(mount(s, '/proc')?.options?.includes('ro'), false);
    assert.ok(['ro', 'rro'].some((o) => mount(s, '/etc/hosts')?.options?.includes(o)));
  });

  it('ShmSize sizes /dev/shm', async () => {
    const s = await spec({ Cmd: ['sh'] }, { ShmSize: 1048576 });
    assert.ok(mount(s, '/dev/shm')?.options?.includes('size=1048576'));
  });

  it('Binds: /host:/ctr[:ro], checked, sorted parents first; volumes are not ours', async () => {
    const src = join(dir, 'bind-src');
    mkdirSync(src, { recursive: true });
    const s = await spec({ Cmd: ['sh'] }, { Binds: [`${src}:/data/inner:ro`, `${src}:/data`, `${src}:/shared:rshared`] });
    const binds = s.mounts.filter((m) => m.type === 'bind' && m.source === src);
    assert.deepEqual(binds.map((m) => m.destination), ['/data', '/shared', '/data/inner']);
    assert.deepEqual(mount(s, '/data')?.options, ['rbind', 'rprivate']);
    assert.equal(mount(s, '/data/inner')?.options?.[0], 'rbind');
    assert.ok(['ro', 'rro'].includes(mount(s, '/data/inner')?.options?.[1] ?? ''));
    assert.deepEqual(mount(s, '/shared')?.options, ['rbind', 'rshared']);
    assert.equal(s.linux.rootfsPropagation, 'shared');
    await rejects(spec({ Cmd: ['sh'] }, { Binds: ['/no/such/path-berth:/x'] }), 'INVALID_ARGUMENT', /bind source path does not exist: \/no\/such\/path-berth/);
    await rejects(spec({ Cmd: ['sh'] }, { Binds: ['myvolume:/x'] }), 'NOT_IMPLEMENTED', /named volume 'myvolume'/);
    await rejects(spec({ Cmd: ['sh'] }, { Binds: [`${src}:rel`] }), 'INVALID_ARGUMENT', /mount path must be absolute/);
    await rejects(spec({ Cmd: ['sh'] }, { Binds: [`${src}:/`] }), 'INVALID_ARGUMENT', /destination can't be '\/'/);
    await rejects(spec({ Cmd: ['sh'] }, { Binds: [`${src}:/x:bogus`] }), 'INVALID_ARGUMENT', 'invalid mode: bogus');
    await rejects(spec({ Cmd: ['sh'] }, { Binds: [`${src}:/x`, `${src}:/x`] }), 'INVALID_ARGUMENT', 'Duplicate mount point: /x');
  });

  it('a user mount replaces the default at its destination', async () => {
    const src = join(dir, 'bind-src');
    mkdirSync(src, { recursive: true });
    const s = await spec({ Cmd: ['sh'] }, { Binds: [`${src}:/etc/hosts`], Tmpfs: { '/dev/shm': 'size=1m' } });
    assert.equal(s.mounts.filter((m) => m.destination === '/etc/hosts').length, 1);
    assert.equal(mount(s, '/etc/hosts')?.source, src);
    assert.deepEqual(s.mounts.filter((m) => m.destination === '/dev/shm').map((m) => m.source), ['tmpfs']);
  });

  it('Tmpfs: Docker\'s defaults merged with the options given', async () => {
    const s = await spec({ Cmd: ['sh'] }, { Tmpfs: { '/run': '', '/cache': 'exec,size=64m,mode=1777' } });
    assert.deepEqual(mount(s, '/run'), { destination: '/run', type: 'tmpfs', source: 'tmpfs', options: ['noexec', 'nosuid', 'nodev', 'rprivate'] });
    assert.deepEqual(mount(s, '/cache')?.options, ['nosuid', 'nodev', 'rprivate', 'exec', 'size=64m', 'mode=1777']);
    await rejects(spec({ Cmd: ['sh'] }, { Tmpfs: { '/x': 'bogus=1' } }), 'INVALID_ARGUMENT', 'invalid tmpfs option "bogus"');
    await rejects(spec({ Cmd: ['sh'] }, { Tmpfs: { x: '' } }), 'INVALID_ARGUMENT', /must be absolute/);
  });
});

describe('buildSpec: devices and resources', () => {
  it('--device adds the node and its cgroup rule', async () => {
    const s = await spec({ Cmd: ['sh'] }, { Devices: [{ PathOnHost: '/dev/null', PathInContainer: '/dev/mynull', CgroupPermissions: 'rw' }] });
    assert.deepEqual(s.linux.devices.map((d) => [d.type, d.path, d.major, d.minor]), [['c', '/dev/mynull', 1, 3]]);
    assert.deepEqual(s.linux.resources.devices.at(-1), { allow: true, type: 'c', major: 1, minor: 3, access: 'rw' });
    await rejects(spec({ Cmd: ['sh'] }, { Devices: [{ PathOnHost: dir, PathInContainer: '/dev/x', CgroupPermissions: 'rwm' }] }), 'INVALID_ARGUMENT', /not a device node/);
    await rejects(spec({ Cmd: ['sh'] }, { Devices: [{ PathOnHost: '/dev/null', PathInContainer: '/dev/x', CgroupPermissions: 'rx' }] }), 'INVALID_ARGUMENT', /invalid device cgroup permissions/);
  });

  it('memory, swap, reservation, cpus, shares, cpuset, pids and OOM killer', async () => {
    const mib = 1024 * 1024;
    const s = await spec({ Cmd: ['sh'] }, {
      Memory: 64 * mib, MemoryReservation: 32 * mib, NanoCpus: 500_000_000, CpuShares: 512, CpusetCpus: '0', PidsLimit: 50, OomKillDisable: true,
    });
    assert.deepEqual(s.linux.resources.memory, { limit: 64 * mib, reservation: 32 * mib, swap: 128 * mib, disableOOMKiller: true });
    assert.deepEqual(s.linux.resources.cpu, { shares: 512, cpus: '0', period: 100000, quota: 50000 });
    assert.deepEqual(s.linux.resources.pids, { limit: 50 });
    const unlimited = await spec({ Cmd: ['sh'] }, { Memory: 64 * mib, MemorySwap: -1, PidsLimit: 0, CpuPeriod: 50000, CpuQuota: 25000 });
    assert.equal(unlimited.linux.resources.memory?.swap, -1);
    assert.deepEqual(unlimited.linux.resources.pids, { limit: -1 });
    assert.deepEqual(unlimited.linux.resources.cpu, { period: 50000, quota: 25000 });
    const noSwap = await spec({ Cmd: ['sh'] }, { Memory: 64 * mib }, { cgroups: { ...cgroups, swap: false } });
    assert.deepEqual(noSwap.linux.resources.memory, { limit: 64 * mib });
  });

  it("refuses resources as Docker's daemon does", async () => {
    const mib = 1024 * 1024;
    await rejects(spec({ Cmd: ['sh'] }, { Memory: mib }), 'INVALID_ARGUMENT', 'Minimum memory limit allowed is 6MB');
    await rejects(spec({ Cmd: ['sh'] }, { Memory: 64 * mib, MemorySwap: 32 * mib }), 'INVALID_ARGUMENT', /memoryswap limit should be larger/);
    await rejects(spec({ Cmd: ['sh'] }, { NanoCpus: 1e9, CpuQuota: 5000 }), 'INVALID_ARGUMENT', 'Conflicting options: Nano CPUs and CPU Quota cannot both be set');
    await rejects(spec({ Cmd: ['sh'] }, { NanoCpus: (cgroups.cpuCount + 1) * 1e9 }), 'INVALID_ARGUMENT', /range of CPUs is from 0.01/);
    await rejects(spec({ Cmd: ['sh'] }, { CpuPeriod: 10 }), 'INVALID_ARGUMENT', /CPU cfs period/);
    await rejects(spec({ Cmd: ['sh'] }, { CpusetCpus: `${cgroups.cpuCount}` }), 'INVALID_ARGUMENT', /Requested CPUs are not available/);
  });

  it('--ulimit within the daemon\'s hard limits; above them refused; no defaults', async () => {
    const own = processLimits();
    const nofileHard = own['nofile']?.hard ?? 1024;
    const s = await spec({ Cmd: ['sh'] }, { Ulimits: [{ Name: 'nofile', Soft: 100, Hard: Math.min(200, nofileHard) }] });
    assert.deepEqual(s.process.rlimits, [{ type: 'RLIMIT_NOFILE', soft: 100, hard: Math.min(200, nofileHard) }]);
    if (nofileHard !== Infinity) {
      await rejects(spec({ Cmd: ['sh'] }, { Ulimits: [{ Name: 'nofile', Soft: 10, Hard: nofileHard + 1 }] }), 'INVALID_ARGUMENT', /above the daemon's own hard limit/);
    }
    await rejects(spec({ Cmd: ['sh'] }, { Ulimits: [{ Name: 'bogus', Soft: 1, Hard: 1 }] }), 'INVALID_ARGUMENT', 'invalid ulimit type: bogus');
    await rejects(spec({ Cmd: ['sh'] }, { Ulimits: [{ Name: 'nofile', Soft: 20, Hard: 10 }] }), 'INVALID_ARGUMENT', 'ulimit soft limit must be less than or equal to hard limit: 20 > 10');
  });

  it('buildRlimits checks against given limits; specJson writes RLIM_INFINITY exactly', () => {
    const limits = { core: { soft: 0, hard: Infinity }, nofile: { soft: 1024, hard: 4096 } };
    const rl = buildRlimits([{ Name: 'core', Soft: -1, Hard: -1 }, { Name: 'NOFILE', Soft: 10, Hard: 4096 }], limits);
    assert.deepEqual(rl, [{ type: 'RLIMIT_CORE', soft: Infinity, hard: Infinity }, { type: 'RLIMIT_NOFILE', soft: 10, hard: 4096 }]);
    assert.throws(() => buildRlimits([{ Name: 'nofile', Soft: -1, Hard: -1 }], limits), /hard limit unlimited is above the daemon's own hard limit 4096/);
    const json = specJson({ process: { rlimits: rl } } as unknown as OciSpec);
    assert.equal(json, '{"process":{"rlimits":[{"type":"RLIMIT_CORE","hard":18446744073709551615,"soft":18446744073709551615},{"type":"RLIMIT_NOFILE","hard":4096,"soft":10}]}}');
  });

  it('a spec is plain JSON', async () => {
    const s = await spec({ Cmd: ['sh'] }, { Memory: 64 * 1024 * 1024, CapAdd: ['NET_ADMIN'] });
    assert.deepEqual(JSON.parse(specJson(s)), JSON.parse(JSON.stringify(s)));
  });
});
