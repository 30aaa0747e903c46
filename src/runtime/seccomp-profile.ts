/**
 * Seccomp profiles in Docker's format (the JSON `docker run --security-opt seccomp=<file>`
 * takes) and Docker's default profile, written here as data, plus the step that turns a
 * profile into the OCI spec's `linux.seccomp` for one container.
 *
 * A profile's rules may carry conditions: `includes`/`excludes` on the architecture, on the
 * container's capabilities and on the kernel version. They are decided when the spec is
 * built, so a container with CAP_SYS_ADMIN gets mount(2) and one without gets EPERM.
 *
 * The default profile: everything not allowed fails with EPERM; the allowlist below is
 * what ordinary programs need. Syscalls that reach the kernel's global state (mount,
 * namespaces, modules, clock, keyring, reboot, ...) are allowed only with the capability
 * that guards them. clone(2) may not create namespaces without CAP_SYS_ADMIN, and clone3,
 * whose flags live in memory seccomp cannot read, answers ENOSYS so libcs fall back to clone.
 * A syscall newer than runc's libseccomp knows answers ENOSYS (runc does that), so new
 * libcs fall back rather than fail.
 */
import { release } from 'node:os';

import { InvalidArgument } from '../errors/errors.js';
import type { OciSeccomp, OciSeccompArg, OciSeccompSyscall, SeccompAction, SeccompOperator } from './spec-types.js';

/** A rule's condition: every listed property must hold (includes) or none may (excludes). */
export interface SeccompCondition {
  /** Docker's architecture names: amd64, x86, x32, arm, arm64, ppc64le, s390, s390x, riscv64... */
  arches?: string[];
  caps?: string[];
  /** "major.minor": the running kernel is at least this version. */
  minKernel?: string;
}

export interface SeccompRule {
  name?: string;
  names?: string[];
  action: SeccompAction;
  errnoRet?: number;
  args?: OciSeccompArg[] | null;
  comment?: string;
  includes?: SeccompCondition;
  excludes?: SeccompCondition;
}

export interface SeccompProfile {
  defaultAction: SeccompAction;
  defaultErrnoRet?: number;
  /** Explicit architectures (SCMP_ARCH_*), or... */
  architectures?: string[];
  /** ...per native architecture, the ones it can also run (x86_64 runs x86 and x32 code). */
  archMap?: Array<{ architecture: string; subArchitectures: string[] | null }>;
  flags?: string[];
  listenerPath?: string;
  listenerMetadata?: string;
  syscalls?: SeccompRule[];
}

const EPERM = 1;
const ENOSYS = 38;

/** clone(2) flags that create namespaces: NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET. */
export const CLONE_NAMESPACE_FLAGS = 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000;

const AF_ALG = 38;
const AF_NFC = 39;
const AF_VSOCK = 40;

/**
 * The unconditional allowlist, grouped by what the calls are for. 32-bit variants
 * (chown32, fcntl64, *_time64...) sit beside their 64-bit names: x86_64 hosts also run
 * i386 and x32 binaries, and the filter is per architecture.
 */
const ALLOWED: Readonly<Record<string, readonly string[]>> = {
  paths: [
    'access', 'faccessat', 'faccessat2', 'chdir', 'fchdir', 'getcwd', 'chmod', 'fchmod', 'fchmodat', 'fchmodat2',
    'chown', 'chown32', 'fchown', 'fchown32', 'fchownat', 'lchown', 'lchown32', 'creat', 'open', 'openat',
    'openat2', 'link', 'linkat', 'unlink', 'unlinkat', 'symlink', 'symlinkat', 'readlink', 'readlinkat',
    'rename', 'renameat', 'renameat2', 'mkdir', 'mkdirat', 'rmdir', 'mknod', 'mknodat', 'truncate',
    'truncate64', 'umask', 'utime', 'utimes', 'utimensat', 'utimensat_time64', 'futimesat', 'name_to_handle_at',
  ],
  stat: [
    'stat', 'stat64', 'lstat', 'lstat64', 'fstat', 'fstat64', 'fstatat64', 'newfstatat', 'statx', 'statfs',
    'statfs64', 'fstatfs', 'fstatfs64', 'statmount', 'listmount',
  ],
  xattrs: [
    'getxattr', 'lgetxattr', 'fgetxattr', 'getxattrat', 'setxattr', 'lsetxattr', 'fsetxattr', 'setxattrat',
    'listxattr', 'llistxattr', 'flistxattr', 'listxattrat', 'removexattr', 'lremovexattr', 'fremovexattr',
    'removexattrat',
  ],
  descriptors: [
    'close', 'close_range', 'dup', 'dup2', 'dup3', 'fcntl', 'fcntl64', 'ioctl', 'flock', 'ftruncate',
    'ftruncate64', 'fallocate', 'fadvise64', 'fadvise64_64', 'readahead', 'getdents', 'getdents64', 'pipe',
    'pipe2', 'sync', 'syncfs', 'fsync', 'fdatasync', 'sync_file_range',
  ],
  io: [
    'read', 'readv', 'pread64', 'preadv', 'preadv2', 'write', 'writev', 'pwrite64', 'pwritev', 'pwritev2',
    'lseek', '_llseek', 'sendfile', 'sendfile64', 'splice', 'tee', 'vmsplice', 'copy_file_range', 'cachestat',
    'io_setup', 'io_destroy', 'io_submit', 'io_cancel', 'io_getevents', 'io_pgetevents', 'io_pgetevents_time64',
  ],
  waiting: [
    'select', '_newselect', 'pselect6', 'pselect6_time64', 'poll', 'ppoll', 'ppoll_time64', 'epoll_create',
    'epoll_create1', 'epoll_ctl', 'epoll_ctl_old', 'epoll_wait', 'epoll_wait_old', 'epoll_pwait', 'epoll_pwait2',
    'eventfd', 'eventfd2', 'signalfd', 'signalfd4', 'timerfd_create', 'timerfd_settime', 'timerfd_settime64',
    'timerfd_gettime', 'timerfd_gettime64', 'inotify_init', 'inotify_init1', 'inotify_add_watch',
    'inotify_rm_watch', 'fanotify_mark', 'futex', 'futex_time64', 'futex_wait', 'futex_wake', 'futex_waitv',
    'futex_requeue', 'set_robust_list', 'get_robust_list',
  ],
  memory: [
    'brk', 'mmap', 'mmap2', 'munmap', 'mremap', 'mprotect', 'madvise', 'mincore', 'msync', 'mlock', 'mlock2',
    'mlockall', 'munlock', 'munlockall', 'remap_file_pages', 'membarrier', 'memfd_create', 'memfd_secret',
    'mseal', 'pkey_alloc', 'pkey_free', 'pkey_mprotect', 'map_shadow_stack',
  ],
  processes: [
    'fork', 'vfork', 'execve', 'execveat', 'exit', 'exit_group', 'wait4', 'waitid', 'waitpid', 'getpid',
    'getppid', 'gettid', 'getpgid', 'setpgid', 'getpgrp', 'getsid', 'setsid', 'set_tid_address',
    'set_thread_area', 'get_thread_area', 'prctl', 'pidfd_open', 'pidfd_send_signal', 'process_mrelease',
    'getpriority', 'setpriority', 'ioprio_get', 'ioprio_set', 'rseq', 'restart_syscall', 'seccomp', 'capget',
    'capset', 'getrusage', 'getrlimit', 'setrlimit', 'ugetrlimit', 'prlimit64', 'times', 'uname', 'sysinfo',
    'getcpu', 'getrandom', 'landlock_create_ruleset', 'landlock_add_rule', 'landlock_restrict_self',
    'riscv_hwprobe', 'uretprobe',
  ],
  credentials: [
    'getuid', 'getuid32', 'geteuid', 'geteuid32', 'getgid', 'getgid32', 'getegid', 'getegid32', 'getresuid',
    'getresuid32', 'getresgid', 'getresgid32', 'getgroups', 'getgroups32', 'setuid', 'setuid32', 'setgid',
    'setgid32', 'setreuid', 'setreuid32', 'setregid', 'setregid32', 'setresuid', 'setresuid32', 'setresgid',
    'setresgid32', 'setfsuid', 'setfsuid32', 'setfsgid', 'setfsgid32', 'setgroups', 'setgroups32',
  ],
  scheduling: [
    'sched_yield', 'sched_getaffinity', 'sched_setaffinity', 'sched_getattr', 'sched_setattr',
    'sched_getparam', 'sched_setparam', 'sched_getscheduler', 'sched_setscheduler', 'sched_get_priority_max',
    'sched_get_priority_min', 'sched_rr_get_interval', 'sched_rr_get_interval_time64',
  ],
  signals: [
    'kill', 'tkill', 'tgkill', 'rt_sigaction', 'rt_sigpending', 'rt_sigprocmask', 'rt_sigqueueinfo',
    'rt_sigreturn', 'rt_sigsuspend', 'rt_sigtimedwait', 'rt_sigtimedwait_time64', 'rt_tgsigqueueinfo',
    'sigaltstack', 'sigprocmask', 'sigreturn', 'pause', 'alarm',
  ],
  time: [
    'time', 'gettimeofday', 'clock_gettime', 'clock_gettime64', 'clock_getres', 'clock_getres_time64',
    'clock_nanosleep', 'clock_nanosleep_time64', 'nanosleep', 'adjtimex', 'clock_adjtime', 'clock_adjtime64',
    'getitimer', 'setitimer', 'timer_create', 'timer_delete', 'timer_getoverrun', 'timer_gettime',
    'timer_gettime64', 'timer_settime', 'timer_settime64',
  ],
  sockets: [
    'socketpair', 'socketcall', 'bind', 'connect', 'listen', 'accept', 'accept4', 'getsockname', 'getpeername',
    'getsockopt', 'setsockopt', 'send', 'sendto', 'sendmsg', 'sendmmsg', 'recv', 'recvfrom', 'recvmsg',
    'recvmmsg', 'recvmmsg_time64', 'shutdown',
  ],
  ipc: [
    'ipc', 'msgget', 'msgctl', 'msgsnd', 'msgrcv', 'semget', 'semctl', 'semop', 'semtimedop',
    'semtimedop_time64', 'shmget', 'shmctl', 'shmat', 'shmdt', 'mq_open', 'mq_unlink', 'mq_timedsend',
    'mq_timedsend_time64', 'mq_timedreceive', 'mq_timedreceive_time64', 'mq_notify', 'mq_getsetattr',
  ],
};

/** Syscalls allowed only to a container holding the capability that guards them. */
const BY_CAPABILITY: ReadonlyArray<readonly [string, readonly string[]]> = [
  ['CAP_DAC_READ_SEARCH', ['open_by_handle_at']],
  ['CAP_SYS_ADMIN', [
    'mount', 'umount', 'umount2', 'mount_setattr', 'move_mount', 'open_tree', 'fsopen', 'fsconfig', 'fsmount',
    'fspick', 'unshare', 'setns', 'clone', 'clone3', 'sethostname', 'setdomainname', 'quotactl', 'quotactl_fd',
    'fanotify_init', 'lookup_dcookie', 'bpf', 'perf_event_open', 'syslog', 'lsm_get_self_attr',
    'lsm_set_self_attr', 'lsm_list_modules',
  ]],
  ['CAP_SYS_BOOT', ['reboot']],
  ['CAP_SYS_CHROOT', ['chroot']],
  ['CAP_SYS_MODULE', ['init_module', 'finit_module', 'delete_module']],
  ['CAP_SYS_PACCT', ['acct']],
  ['CAP_SYS_PTRACE', ['ptrace', 'process_vm_readv', 'process_vm_writev', 'kcmp', 'pidfd_getfd', 'process_madvise']],
  ['CAP_SYS_RAWIO', ['iopl', 'ioperm']],
  ['CAP_SYS_TIME', ['settimeofday', 'stime', 'clock_settime', 'clock_settime64']],
  ['CAP_SYS_TTY_CONFIG', ['vhangup']],
  ['CAP_SYS_NICE', ['mbind', 'get_mempolicy', 'set_mempolicy', 'set_mempolicy_home_node']],
  ['CAP_SYSLOG', ['syslog']],
  ['CAP_BPF', ['bpf']],
  ['CAP_PERFMON', ['perf_event_open']],
];

/** Syscalls that exist on some architectures only. */
const BY_ARCHITECTURE: ReadonlyArray<readonly [string[], readonly string[]]> = [
  [['amd64', 'x32'], ['arch_prctl']],
  [['amd64', 'x32', 'x86'], ['modify_ldt']],
  [['arm', 'arm64'], ['arm_fadvise64_64', 'arm_sync_file_range', 'sync_file_range2', 'breakpoint', 'cacheflush', 'set_tls']],
  [['ppc64le'], ['sync_file_range2', 'swapcontext']],
  [['s390', 's390x'], ['s390_pci_mmio_read', 's390_pci_mmio_write', 's390_runtime_instr']],
  [['riscv64'], ['riscv_flush_icache']],
];

/** personality(2) values that change nothing dangerous: linux, linux32, UNAME26 variants, and the query. */
const SAFE_PERSONALITIES = [0x0, 0x8, 0x20000, 0x20008, 0xffffffff];

function allow(names: readonly string[], extra: Omit<SeccompRule, 'names' | 'action'> = {}): SeccompRule {
  return { names: [...names], action: 'SCMP_ACT_ALLOW', ...extra };
}

/** Docker's default seccomp profile, as a fresh object each call. */
export function defaultSeccompProfile(): SeccompProfile {
  const rules: SeccompRule[] = [allow(Object.values(ALLOWED).flat())];
  // Before 4.8 seccomp could be bypassed through ptrace, so it needs CAP_SYS_PTRACE there.
  rules.push(allow(['ptrace', 'process_vm_readv', 'process_vm_writev'], { includes: { minKernel: '4.8' } }));
  // Every socket family except AF_ALG (kernel crypto) and AF_VSOCK (host communication).
  rules.push(allow(['socket'], { args: [{ index: 0, value: AF_ALG, op: 'SCMP_CMP_LT' }] }));
  rules.push(allow(['socket'], { args: [{ index: 0, value: AF_NFC, op: 'SCMP_CMP_EQ' }] }));
  rules.push(allow(['socket'], { args: [{ index: 0, value: AF_VSOCK, op: 'SCMP_CMP_GT' }] }));
  for (const persona of SAFE_PERSONALITIES) {
    rules.push(allow(['personality'], { args: [{ index: 0, value: persona, op: 'SCMP_CMP_EQ' }] }));
  }
  for (const [arches, names] of BY_ARCHITECTURE) rules.push(allow(names, { includes: { arches } }));
  for (const [cap, names] of BY_CAPABILITY) rules.push(allow(names, { includes: { caps: [cap] } }));
  // Without CAP_SYS_ADMIN: clone only without namespace flags (the flags are argument 0,
  // argument 1 on s390), and clone3 answers ENOSYS so callers fall back to clone.
  rules.push(
    allow(['clone'], {
      args: [{ index: 0, value: CLONE_NAMESPACE_FLAGS, valueTwo: 0, op: 'SCMP_CMP_MASKED_EQ' }],
      excludes: { caps: ['CAP_SYS_ADMIN'], arches: ['s390', 's390x'] },
    }),
    allow(['clone'], {
      args: [{ index: 1, value: CLONE_NAMESPACE_FLAGS, valueTwo: 0, op: 'SCMP_CMP_MASKED_EQ' }],
      includes: { arches: ['s390', 's390x'] },
      excludes: { caps: ['CAP_SYS_ADMIN'] },
    }),
    { names: ['clone3'], action: 'SCMP_ACT_ERRNO', errnoRet: ENOSYS, excludes: { caps: ['CAP_SYS_ADMIN'] } },
  );
  return {
    defaultAction: 'SCMP_ACT_ERRNO',
    defaultErrnoRet: EPERM,
    archMap: [
      { architecture: 'SCMP_ARCH_X86_64', subArchitectures: ['SCMP_ARCH_X86', 'SCMP_ARCH_X32'] },
      { architecture: 'SCMP_ARCH_AARCH64', subArchitectures: ['SCMP_ARCH_ARM'] },
      { architecture: 'SCMP_ARCH_S390X', subArchitectures: ['SCMP_ARCH_S390'] },
      { architecture: 'SCMP_ARCH_RISCV64', subArchitectures: null },
      { architecture: 'SCMP_ARCH_PPC64LE', subArchitectures: null },
      { architecture: 'SCMP_ARCH_LOONGARCH64', subArchitectures: null },
    ],
    syscalls: rules,
  };
}

const ACTIONS: readonly SeccompAction[] = [
  'SCMP_ACT_KILL', 'SCMP_ACT_KILL_PROCESS', 'SCMP_ACT_KILL_THREAD', 'SCMP_ACT_TRAP', 'SCMP_ACT_ERRNO',
  'SCMP_ACT_TRACE', 'SCMP_ACT_ALLOW', 'SCMP_ACT_LOG', 'SCMP_ACT_NOTIFY',
];
const OPERATORS: readonly SeccompOperator[] = [
  'SCMP_CMP_NE', 'SCMP_CMP_LT', 'SCMP_CMP_LE', 'SCMP_CMP_EQ', 'SCMP_CMP_GE', 'SCMP_CMP_GT', 'SCMP_CMP_MASKED_EQ',
];

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isStringArray(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((v) => typeof v === 'string');
}

/**
 * Parses and checks a profile in Docker's JSON format (what the docker CLI sends in
 * `seccomp=<json>`). Errors say what is wrong, prefixed as Docker's are.
 */
export function parseSeccompProfile(text: string): SeccompProfile {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    // The parser's message quotes the input; a profile read from a path must not echo it.
    throw new InvalidArgument('Decoding seccomp profile failed: the profile is not valid JSON', { cause: err });
  }
  const fail = (what: string): never => {
    throw new InvalidArgument(`Decoding seccomp profile failed: ${what}`);
  };
  if (!isRecord(value)) return fail('the profile is not a JSON object');
  if (typeof value['defaultAction'] !== 'string' || !ACTIONS.includes(value['defaultAction'] as SeccompAction)) {
    fail(`unknown defaultAction ${JSON.stringify(value['defaultAction'])}`);
  }
  if (value['architectures'] !== undefined && value['architectures'] !== null && !isStringArray(value['architectures'])) {
    fail('architectures must be a list of names');
  }
  if (isStringArray(value['architectures']) && value['architectures'].length > 0 && Array.isArray(value['archMap']) && value['archMap'].length > 0) {
    fail("both 'architectures' and 'archMap' are specified in the seccomp profile, use either 'architectures' or 'archMap'");
  }
  const syscalls = value['syscalls'] ?? [];
  if (!Array.isArray(syscalls)) return fail('syscalls must be a list');
  for (const [i, rule] of syscalls.entries()) {
    if (!isRecord(rule)) return fail(`syscalls[${i}] is not an object`);
    if (rule['name'] !== undefined && rule['names'] !== undefined) {
      fail("both 'name' and 'names' are specified in the seccomp profile, use either 'name' or 'names'");
    }
    if (rule['names'] !== undefined && !isStringArray(rule['names'])) fail(`syscalls[${i}].names must be a list of names`);
    if (rule['name'] !== undefined && typeof rule['name'] !== 'string') fail(`syscalls[${i}].name must be a string`);
    if (typeof rule['action'] !== 'string' || !ACTIONS.includes(rule['action'] as SeccompAction)) {
      fail(`syscalls[${i}]: unknown action ${JSON.stringify(rule['action'])}`);
    }
    const args = rule['args'];
    if (args !== undefined && args !== null) {
      if (!Array.isArray(args)) return fail(`syscalls[${i}].args must be a list`);
      for (const arg of args) {
        if (!isRecord(arg) || typeof arg['index'] !== 'number' || typeof arg['value'] !== 'number' ||
            !OPERATORS.includes(arg['op'] as SeccompOperator)) {
          fail(`syscalls[${i}].args: each needs index, value and a known op`);
        }
      }
    }
  }
  return value as unknown as SeccompProfile;
}

/** Docker's name of an architecture, from Node's. */
export function nativeArchitecture(arch: string = process.arch): string {
  const names: Record<string, string> = {
    x64: 'amd64', ia32: 'x86', arm: 'arm', arm64: 'arm64', ppc64: 'ppc64le', s390: 's390', s390x: 's390x',
    riscv64: 'riscv64', loong64: 'loongarch64', mips: 'mips', mipsel: 'mipsel',
  };
  return names[arch] ?? arch;
}

const SECCOMP_ARCHES: Record<string, string> = {
  amd64: 'SCMP_ARCH_X86_64', x86: 'SCMP_ARCH_X86', arm: 'SCMP_ARCH_ARM', arm64: 'SCMP_ARCH_AARCH64',
  ppc64le: 'SCMP_ARCH_PPC64LE', s390: 'SCMP_ARCH_S390', s390x: 'SCMP_ARCH_S390X', riscv64: 'SCMP_ARCH_RISCV64',
  loongarch64: 'SCMP_ARCH_LOONGARCH64', mipsel: 'SCMP_ARCH_MIPSEL', mips: 'SCMP_ARCH_MIPS',
};

/** [major, minor] of a kernel release string ("6.1.0-18-amd64" → [6, 1]). */
function kernelVersion(text: string): [number, number] {
  const match = /^(\d+)\.(\d+)/.exec(text);
  if (!match) throw new InvalidArgument(`seccomp: cannot read a kernel version from "${text}"`);
  return [Number(match[1]), Number(match[2])];
}

function kernelAtLeast(running: string, wanted: string): boolean {
  const [rMajor, rMinor] = kernelVersion(running);
  const [wMajor, wMinor] = kernelVersion(wanted);
  return rMajor > wMajor || (rMajor === wMajor && rMinor >= wMinor);
}

export interface SeccompContext {
  /** The container's capabilities (its bounding set). */
  capabilities: readonly string[];
  /** Docker's architecture name; the host's by default. */
  arch?: string;
  /** The kernel release; the host's by default. */
  kernelRelease?: string;
}

/**
 * The OCI `linux.seccomp` for one container: the architectures for this host, and the
 * rules whose conditions hold for this container's capabilities, architecture and kernel.
 */
export function compileSeccompProfile(profile: SeccompProfile, context: SeccompContext): OciSeccomp {
  const arch = context.arch ?? nativeArchitecture();
  const kernel = context.kernelRelease ?? release();
  const caps = context.capabilities;
  const out: OciSeccomp = { defaultAction: profile.defaultAction };
  if (profile.defaultErrnoRet !== undefined) out.defaultErrnoRet = profile.defaultErrnoRet;
  if (profile.architectures && profile.architectures.length > 0) {
    out.architectures = [...profile.architectures];
  } else if (profile.archMap) {
    const native = SECCOMP_ARCHES[arch];
    const entry = profile.archMap.find((a) => a.architecture === native);
    if (entry) out.architectures = [entry.architecture, ...(entry.subArchitectures ?? [])];
  }
  if (profile.flags && profile.flags.length > 0) out.flags = [...profile.flags];
  if (profile.listenerPath) out.listenerPath = profile.listenerPath;
  if (profile.listenerMetadata) out.listenerMetadata = profile.listenerMetadata;

  const syscalls: OciSeccompSyscall[] = [];
  for (const rule of profile.syscalls ?? []) {
    const ex = rule.excludes;
    if (ex) {
      if (ex.arches?.includes(arch)) continue;
      if (ex.caps?.some((c) => caps.includes(c))) continue;
      if (ex.minKernel && kernelAtLeast(kernel, ex.minKernel)) continue;
    }
    const inc = rule.includes;
    if (inc) {
      if (inc.arches && inc.arches.length > 0 && !inc.arches.includes(arch)) continue;
      if (inc.caps && !inc.caps.every((c) => caps.includes(c))) continue;
      if (inc.minKernel && !kernelAtLeast(kernel, inc.minKernel)) continue;
    }
    const names = rule.names ?? (rule.name ? [rule.name] : []);
    if (names.length === 0) continue;
    const call: OciSeccompSyscall = { names: [...names], action: rule.action };
    if (rule.errnoRet !== undefined) call.errnoRet = rule.errnoRet;
    if (rule.args && rule.args.length > 0) call.args = rule.args.map((a) => ({ ...a }));
    syscalls.push(call);
  }
  out.syscalls = syscalls;
  return out;
}
