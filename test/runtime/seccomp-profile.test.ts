import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { DEFAULT_CAPABILITIES } from '../../src/runtime/capabilities.js';
import {
  compileSeccompProfile,
  defaultSeccompProfile,
  parseSeccompProfile,
  type SeccompProfile,
} from '../../src/runtime/seccomp-profile.js';
import type { OciSeccomp } from '../../src/runtime/spec-types.js';

function compiled(context: { capabilities?: readonly string[]; arch?: string; kernelRelease?: string } = {}): OciSeccomp {
  return compileSeccompProfile(defaultSeccompProfile(), {
    capabilities: context.capabilities ?? DEFAULT_CAPABILITIES,
    arch: context.arch ?? 'amd64',
    kernelRelease: context.kernelRelease ?? '6.1.0',
  });
}

/** Whether the compiled filter lets `name` through unconditionally. */
function allows(s: OciSeccomp, name: string): boolean {
  return (s.syscalls ?? []).some((r) => r.action === 'SCMP_ACT_ALLOW' && !r.args && r.names.includes(name));
}

describe('default seccomp profile', () => {
  it('denies with EPERM by default, for x86_64, x86 and x32', () => {
    const s = compiled();
    assert.equal(s.defaultAction, 'SCMP_ACT_ERRNO');
    assert.equal(s.defaultErrnoRet, 1);
    assert.deepEqual(s.architectures, ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32']);
    assert.deepEqual(compiled({ arch: 'arm64' }).architectures, ['SCMP_ARCH_AARCH64', 'SCMP_ARCH_ARM']);
  });

  it('allows what ordinary programs need', () => {
    const s = compiled();
    for (const name of ['read', 'write', 'openat', 'execve', 'fork', 'vfork', 'wait4', 'mmap', 'brk', 'futex', 'epoll_wait',
      'getdents64', 'statx', 'setuid', 'setgroups', 'socketpair', 'connect', 'chown', 'mknod', 'rt_sigaction', 'arch_prctl',
      'clock_gettime', 'pidfd_open', 'capset', 'prctl', 'seccomp']) {
      assert.equal(allows(s, name), true, name);
    }
  });

  it("refuses what Docker's refuses without the capability", () => {
    const s = compiled();
    for (const name of ['mount', 'umount2', 'unshare', 'setns', 'keyctl', 'add_key', 'request_key', 'kexec_load', 'init_module',
      'finit_module', 'reboot', 'swapon', 'pivot_root', 'bpf', 'perf_event_open', 'open_by_handle_at', 'clock_settime',
      'settimeofday', 'acct', 'iopl', 'userfaultfd', 'io_uring_setup', 'personality', 'socket', 'clone', 'clone3']) {
      assert.equal(allows(s, name), false, name);
    }
    // chroot comes with CAP_SYS_CHROOT, which the default set has
    assert.equal(allows(s, 'chroot'), true);
    assert.equal(allows(compiled({ capabilities: ['CAP_CHOWN'] }), 'chroot'), false);
  });

  it('clone without namespace flags; clone3 answers ENOSYS; socket without AF_ALG and AF_VSOCK', () => {
    const rules = compiled().syscalls ?? [];
    assert.deepEqual(rules.filter((r) => r.names.includes('clone')), [
      { names: ['clone'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 0x7e020000, valueTwo: 0, op: 'SCMP_CMP_MASKED_EQ' }] },
    ]);
    assert.deepEqual(rules.filter((r) => r.names.includes('clone3')), [{ names: ['clone3'], action: 'SCMP_ACT_ERRNO', errnoRet: 38 }]);
    assert.deepEqual(rules.filter((r) => r.names.includes('socket')).map((r) => r.args), [
      [{ index: 0, value: 38, op: 'SCMP_CMP_LT' }],
      [{ index: 0, value: 39, op: 'SCMP_CMP_EQ' }],
      [{ index: 0, value: 40, op: 'SCMP_CMP_GT' }],
    ]);
    const s390 = compiled({ arch: 's390x' }).syscalls ?? [];
    assert.equal(s390.find((r) => r.names.includes('clone'))?.args?.[0]?.index, 1);
  });

  it('capability-conditional groups follow the container\'s capabilities', () => {
    const admin = compiled({ capabilities: [...DEFAULT_CAPABILITIES, 'CAP_SYS_ADMIN'] });
    for (const name of ['mount', 'unshare', 'setns', 'clone', 'clone3', 'sethostname']) assert.equal(allows(admin, name), true, name);
    assert.equal((admin.syscalls ?? []).some((r) => r.action === 'SCMP_ACT_ERRNO'), false);
    const ptrace = compiled({ capabilities: ['CAP_SYS_PTRACE'], kernelRelease: '4.4.0' });
    assert.equal(allows(ptrace, 'kcmp'), true);
    assert.equal(allows(compiled({ capabilities: ['CAP_SYS_TIME'] }), 'clock_settime'), true);
    assert.equal(allows(compiled({ capabilities: ['CAP_SYS_MODULE'] }), 'finit_module'), true);
  });

  it('ptrace only from kernel 4.8 on (seccomp could be bypassed with it before)', () => {
    assert.equal(allows(compiled({ kernelRelease: '4.4.0-210-generic' }), 'ptrace'), false);
    assert.equal(allows(compiled({ kernelRelease: '4.8.0' }), 'ptrace'), true);
    assert.equal(allows(compiled({ kernelRelease: '6.18.44-fc' }), 'ptrace'), true);
  });

  it('architecture-only syscalls', () => {
    assert.equal(allows(compiled({ arch: 'amd64' }), 'arch_prctl'), true);
    assert.equal(allows(compiled({ arch: 'arm64' }), 'arch_prctl'), false);
    assert.equal(allows(compiled({ arch: 'arm64' }), 'set_tls'), true);
    assert.equal(allows(compiled({ arch: 'x86' }), 'modify_ldt'), true);
  });

  it('each call returns a fresh profile', () => {
    const a = defaultSeccompProfile();
    a.syscalls?.splice(0);
    assert.ok((defaultSeccompProfile().syscalls ?? []).length > 10);
  });
});

describe('parseSeccompProfile', () => {
  it("accepts Docker's format, names or name, architectures or archMap", () => {
    const p: SeccompProfile = parseSeccompProfile(JSON.stringify({
      defaultAction: 'SCMP_ACT_ERRNO',
      architectures: ['SCMP_ARCH_X86_64'],
      syscalls: [{ name: 'read', action: 'SCMP_ACT_ALLOW' }, { names: ['write'], action: 'SCMP_ACT_ALLOW', args: null }],
    }));
    const s = compileSeccompProfile(p, { capabilities: [], arch: 'amd64', kernelRelease: '6.1' });
    assert.deepEqual(s, {
      defaultAction: 'SCMP_ACT_ERRNO',
      architectures: ['SCMP_ARCH_X86_64'],
      syscalls: [{ names: ['read'], action: 'SCMP_ACT_ALLOW' }, { names: ['write'], action: 'SCMP_ACT_ALLOW' }],
    });
  });

  it('refuses malformed profiles with a clear message', () => {
    const bad = (text: string, message: RegExp): void => assert.throws(() => parseSeccompProfile(text), message);
    bad('{', /Decoding seccomp profile failed: the profile is not valid JSON$/);
    bad('[]', /not a JSON object/);
    bad('{"defaultAction":"SCMP_ACT_MAYBE"}', /unknown defaultAction/);
    bad('{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64"],"archMap":[{"architecture":"SCMP_ARCH_X86_64"}]}', /both 'architectures' and 'archMap'/);
    bad('{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"name":"a","names":["b"],"action":"SCMP_ACT_ALLOW"}]}', /both 'name' and 'names'/);
    bad('{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["a"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":1,"op":"EQ"}]}]}', /known op/);
  });
});
