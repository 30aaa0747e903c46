/*
 * berth-native: the few Linux syscalls Node.js does not expose, as a small N-API addon.
 *
 * Every function but syncfs is synchronous (each is one cheap syscall) and throws an Error whose
 * `code` is the errno name ("ENOENT"), `errno` the negated number (as Node's own errors),
 * `syscall` the call and `path` the path it was about; the message puts that context
 * first: "mount /a/b: No such file or directory".
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <node_api.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#define MAX_ARGS 6

/* Returns NULL from the enclosing function when a napi call failed (an exception is pending). */
#define NAPI_OK(call)                                                                              \
  do {                                                                                             \
    if ((call) != napi_ok) return NULL;                                                            \
  } while (0)

/* An Error for errno `err` (NULL when even that failed); `shown` (when not NULL) replaces
 * `path` in the message. */
static napi_value errno_error(napi_env env, int err, const char *syscall_name, const char *path,
                              const char *dest, const char *shown) {
  const char *name = strerrorname_np(err);
  char code_buf[32];
  if (name == NULL) {
    snprintf(code_buf, sizeof code_buf, "E%d", err);
    name = code_buf;
  }
  const char *in_message = shown ? shown : path;
  size_t len = strlen(syscall_name) + (in_message ? strlen(in_message) : 0) + (dest ? strlen(dest) : 0) + 256;
  char *msg = malloc(len);
  if (msg == NULL) {
    napi_throw_error(env, "ENOMEM", "berth-native: out of memory");
    return NULL;
  }
  if (in_message && dest)
    snprintf(msg, len, "%s %s -> %s: %s", syscall_name, in_message, dest, strerror(err));
  else if (in_message)
    snprintf(msg, len, "%s %s: %s", syscall_name, in_message, strerror(err));
  else
    snprintf(msg, len, "%s: %s", syscall_name, strerror(err));

  napi_value code, message, error, value;
  if (napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &code) != napi_ok ||
      napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &message) != napi_ok ||
      napi_create_error(env, code, message, &error) != napi_ok) {
    free(msg);
    return NULL;
  }
  free(msg);
  napi_set_named_property(env, error, "code", code);
  if (napi_create_int32(env, -err, &value) == napi_ok) napi_set_named_property(env, error, "errno", value);
  if (napi_create_string_utf8(env, syscall_name, NAPI_AUTO_LENGTH, &value) == napi_ok)
    napi_set_named_property(env, error, "syscall", value);
  if (path && napi_create_string_utf8(env, path, NAPI_AUTO_LENGTH, &value) == napi_ok)
    napi_set_named_property(env, error, "path", value);
  if (dest && napi_create_string_utf8(env, dest, NAPI_AUTO_LENGTH, &value) == napi_ok)
    napi_set_named_property(env, error, "dest", value);
  return error;
}

/* Throws an errno_error; returns NULL for the caller to return. */
static napi_value throw_errno_shown(napi_env env, int err, const char *syscall_name, const char *path,
                                    const char *dest, const char *shown) {
  napi_value error = errno_error(env, err, syscall_name, path, dest, shown);
  if (error != NULL) napi_throw(env, error);
  return NULL;
}

static napi_value throw_errno(napi_env env, int err, const char *syscall_name, const char *path,
                              const char *dest) {
  return throw_errno_shown(env, err, syscall_name, path, dest, NULL);
}

static void throw_type(napi_env env, const char *fn, const char *what) {
  char msg[256];
  snprintf(msg, sizeof msg, "%s: %s", fn, what);
  napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
}

static int get_args(napi_env env, napi_callback_info info, size_t want, napi_value *argv, const char *fn) {
  size_t argc = MAX_ARGS;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return -1;
  if (argc < want) {
    char msg[128];
    snprintf(msg, sizeof msg, "expects %zu arguments, got %zu", want, argc);
    throw_type(env, fn, msg);
    return -1;
  }
  for (size_t i = argc; i < MAX_ARGS; i++) napi_get_undefined(env, &argv[i]);
  return 0;
}

/* A malloc'd UTF-8 copy of a string argument; *out = NULL for null/undefined when nullable. */
static int get_string(napi_env env, napi_value v, int nullable, char **out, const char *fn, const char *what) {
  napi_valuetype t;
  *out = NULL;
  if (napi_typeof(env, v, &t) != napi_ok) return -1;
  if ((t == napi_null || t == napi_undefined) && nullable) return 0;
  if (t != napi_string) {
    char msg[128];
    snprintf(msg, sizeof msg, "%s must be a string%s", what, nullable ? " or null" : "");
    throw_type(env, fn, msg);
    return -1;
  }
  size_t len;
  if (napi_get_value_string_utf8(env, v, NULL, 0, &len) != napi_ok) return -1;
  char *s = malloc(len + 1);
  if (s == NULL) {
    napi_throw_error(env, "ENOMEM", "berth-native: out of memory");
    return -1;
  }
  if (napi_get_value_string_utf8(env, v, s, len + 1, &len) != napi_ok) {
    free(s);
    return -1;
  }
  if (strlen(s) != len) {
    free(s);
    char msg[128];
    snprintf(msg, sizeof msg, "%s must not contain NUL bytes", what);
    throw_type(env, fn, msg);
    return -1;
  }
  *out = s;
  return 0;
}

/* A non-negative integral number argument (up to 2^53); undefined gives `dflt` when dflt >= 0. */
static int get_uint(napi_env env, napi_value v, int64_t dflt, uint64_t *out, const char *fn, const char *what) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok) return -1;
  if (t == napi_undefined && dflt >= 0) {
    *out = (uint64_t)dflt;
    return 0;
  }
  double d;
  if (t != napi_number || napi_get_value_double(env, v, &d) != napi_ok || d < 0 || d != (double)(uint64_t)d ||
      d > 9007199254740992.0) {
    char msg[128];
    snprintf(msg, sizeof msg, "%s must be a non-negative integer", what);
    throw_type(env, fn, msg);
    return -1;
  }
  *out = (uint64_t)d;
  return 0;
}

/* mount(2) in a thread of its own fs context, so relative paths in `data` resolve from `cwd`
 * without changing the whole process's working directory (overlay lowerdir lists of 100+
 * layers only fit in one page as relative paths). */
struct mount_job {
  const char *cwd, *source, *target, *fstype, *data;
  unsigned long flags;
  int err;
  const char *failed;
};

static void *mount_in_cwd(void *p) {
  struct mount_job *job = p;
  if (unshare(CLONE_FS) != 0) {
    job->err = errno;
    job->failed = "unshare";
    return NULL;
  }
  if (chdir(job->cwd) != 0) {
    job->err = errno;
    job->failed = "chdir";
    return NULL;
  }
  if (mount(job->source, job->target, job->fstype, job->flags, job->data) != 0) {
    job->err = errno;
    job->failed = "mount";
  }
  return NULL;
}

/* mount(source: string|null, target, fstype: string|null, flags: number, data: string|null, cwd?: string) */
static napi_value js_mount(napi_env env, napi_callback_info info) {
  napi_value argv[MAX_ARGS];
  char *source = NULL, *target = NULL, *fstype = NULL, *data = NULL, *cwd = NULL;
  uint64_t flags;
  napi_value result = NULL;
  if (get_args(env, info, 4, argv, "mount") != 0) return NULL;
  if (get_string(env, argv[0], 1, &source, "mount", "source") != 0 ||
      get_string(env, argv[1], 0, &target, "mount", "target") != 0 ||
      get_string(env, argv[2], 1, &fstype, "mount", "fstype") != 0 ||
      get_uint(env, argv[3], -1, &flags, "mount", "flags") != 0 ||
      get_string(env, argv[4], 1, &data, "mount", "data") != 0 ||
      get_string(env, argv[5], 1, &cwd, "mount", "cwd") != 0)
    goto out;
  if (cwd == NULL) {
    if (mount(source, target, fstype, (unsigned long)flags, data) != 0) {
      throw_errno(env, errno, "mount", target, NULL);
      goto out;
    }
  } else {
    struct mount_job job = {cwd, source, target, fstype, data, (unsigned long)flags, 0, NULL};
    pthread_t thread;
    int rc = pthread_create(&thread, NULL, mount_in_cwd, &job);
    if (rc != 0) {
      throw_errno(env, rc, "pthread_create", target, NULL);
      goto out;
    }
    pthread_join(thread, NULL);
    if (job.err != 0) {
      throw_errno(env, job.err, job.failed, job.failed[0] == 'c' ? cwd : target, NULL);
      goto out;
    }
  }
  napi_get_undefined(env, &result);
out:
  free(source);
  free(target);
  free(fstype);
  free(data);
  free(cwd);
  return result;
}

/* umount2(target, flags) */
static napi_value js_umount2(napi_env env, napi_callback_info info) {
  napi_value argv[MAX_ARGS], result = NULL;
  char *target = NULL;
  uint64_t flags;
  if (get_args(env, info, 1, argv, "umount2") != 0) return NULL;
  if (get_string(env, argv[0], 0, &target, "umount2", "target") != 0 ||
      get_uint(env, argv[1], 0, &flags, "umount2", "flags") != 0)
    goto out;
  if (umount2(target, (int)flags) != 0) {
    throw_errno(env, errno, "umount2", target, NULL);
    goto out;
  }
  napi_get_undefined(env, &result);
out:
  free(target);
  return result;
}

/* mknod(path, mode, dev) */
static napi_value js_mknod(napi_env env, napi_callback_info info) {
  napi_value argv[MAX_ARGS], result = NULL;
  char *path = NULL;
  uint64_t mode, dev;
  if (get_args(env, info, 3, argv, "mknod") != 0) return NULL;
  if (get_string(env, argv[0], 0, &path, "mknod", "path") != 0 ||
      get_uint(env, argv[1], -1, &mode, "mknod", "mode") != 0 ||
      get_uint(env, argv[2], -1, &dev, "mknod", "dev") != 0)
    goto out;
  if (mknod(path, (mode_t)mode, (dev_t)dev) != 0) {
    throw_errno(env, errno, "mknod", path, NULL);
    goto out;
  }
  napi_get_undefined(env, &result);
out:
  free(path);
  return result;
}

/* lsetxattr(path, name, value: Buffer, flags = 0) */
static napi_value js_lsetxattr(napi_env env, napi_callback_info info) {
  napi_value argv[MAX_ARGS], result = NULL;
  char *path = NULL, *name = NULL;
  uint64_t flags;
  void *data;
  size_t len;
  bool is_buffer;
  if (get_args(env, info, 3, argv, "lsetxattr") != 0) return NULL;
  if (get_string(env, argv[0], 0, &path, "lsetxattr", "path") != 0 ||
      get_string(env, argv[1], 0, &name, "lsetxattr", "name") != 0 ||
      get_uint(env, argv[3], 0, &flags, "lsetxattr", "flags") != 0)
    goto out;
  if (napi_is_buffer(env, argv[2], &is_buffer) != napi_ok) goto out;
  if (!is_buffer) {
    throw_type(env, "lsetxattr", "value must be a Buffer");
    goto out;
  }
  if (napi_get_buffer_info(env, argv[2], &data, &len) != napi_ok) goto out;
  if (lsetxattr(path, name, data, len, (int)flags) != 0) {
    throw_errno(env, errno, "lsetxattr", path, name);
    goto out;
  }
  napi_get_undefined(env, &result);
out:
  free(path);
  free(name);
  return result;
}

/* lgetxattr(path, name) -> Buffer | null (null when the attribute is absent) */
static napi_value js_lgetxattr(napi_env env, napi_callback_info info) {
  napi_value argv[MAX_ARGS], result = NULL;
  char *path = NULL, *name = NULL, *buf = NULL;
  if (get_args(env, info, 2, argv, "lgetxattr") != 0) return NULL;
  if (get_string(env, argv[0], 0, &path, "lgetxattr", "path") != 0 ||
      get_string(env, argv[1], 0, &name, "lgetxattr", "name") != 0)
    goto out;
  for (;;) {
    ssize_t size = lgetxattr(path, name, NULL, 0);
    if (size < 0) {
      if (errno == ENODATA) {
        napi_get_null(env, &result);
      } else {
        throw_errno(env, errno, "lgetxattr", path, name);
      }
      goto out;
    }
    buf = malloc(size > 0 ? (size_t)size : 1);
    if (buf == NULL) {
      napi_throw_error(env, "ENOMEM", "berth-native: out of memory");
      goto out;
    }
    ssize_t got = lgetxattr(path, name, buf, (size_t)size);
    if (got < 0 && errno == ERANGE) { /* grew between the two calls */
      free(buf);
      buf = NULL;
      continue;
    }
    if (got < 0) {
      if (errno == ENODATA)
        napi_get_null(env, &result);
      else
        throw_errno(env, errno, "lgetxattr", path, name);
      goto out;
    }
    napi_create_buffer_copy(env, (size_t)got, buf, NULL, &result);
    goto out;
  }
out:
  free(path);
  free(name);
  free(buf);
  return result;
}

/* llistxattr(path) -> string[] */
static napi_value js_llistxattr(napi_env env, napi_callback_info info) {
  napi_value argv[MAX_ARGS], result = NULL;
  char *path = NULL, *buf = NULL;
  if (get_args(env, info, 1, argv, "llistxattr") != 0) return NULL;
  if (get_string(env, argv[0], 0, &path, "llistxattr", "path") != 0) goto out;
  ssize_t got;
  for (;;) {
    ssize_t size = llistxattr(path, NULL, 0);
    if (size < 0) {
      throw_errno(env, errno, "llistxattr", path, NULL);
      goto out;
    }
    buf = malloc(size > 0 ? (size_t)size : 1);
    if (buf == NULL) {
      napi_throw_error(env, "ENOMEM", "berth-native: out of memory");
      goto out;
    }
    got = llistxattr(path, buf, (size_t)size);
    if (got < 0 && errno == ERANGE) {
      free(buf);
      buf = NULL;
      continue;
    }
    if (got < 0) {
      throw_errno(env, errno, "llistxattr", path, NULL);
      goto out;
    }
    break;
  }
  napi_value list;
  if (napi_create_array(env, &list) != napi_ok) goto out;
  uint32_t n = 0;
  for (ssize_t i = 0; i < got;) {
    size_t len = strnlen(buf + i, (size_t)(got - i));
    if (len > 0) {
      napi_value s;
      if (napi_create_string_utf8(env, buf + i, len, &s) != napi_ok || napi_set_element(env, list, n++, s) != napi_ok)
        goto out;
    }
    i += (ssize_t)len + 1;
  }
  result = list;
out:
  free(path);
  free(buf);
  return result;
}

/* openInRoot(rootPath, relPath, flags, mode) -> fd
 * Resolves relPath as if rootPath were "/" (symlinks and ".." cannot leave it) and refuses
 * /proc magic links: the kernel does the resolution, so no race can move it outside. */
static napi_value js_open_in_root(napi_env env, napi_callback_info info) {
  napi_value argv[MAX_ARGS], result = NULL;
  char *root = NULL, *rel = NULL;
  uint64_t flags, mode;
  int rootfd = -1;
  if (get_args(env, info, 3, argv, "openInRoot") != 0) return NULL;
  if (get_string(env, argv[0], 0, &root, "openInRoot", "rootPath") != 0 ||
      get_string(env, argv[1], 0, &rel, "openInRoot", "relPath") != 0 ||
      get_uint(env, argv[2], -1, &flags, "openInRoot", "flags") != 0 ||
      get_uint(env, argv[3], 0, &mode, "openInRoot", "mode") != 0)
    goto out;
  rootfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (rootfd < 0) {
    throw_errno(env, errno, "openInRoot", root, NULL);
    goto out;
  }
  struct open_how how;
  memset(&how, 0, sizeof how);
  how.flags = flags | O_CLOEXEC;
  /* the kernel rejects a mode without O_CREAT/O_TMPFILE */
  how.mode = (flags & (O_CREAT | __O_TMPFILE)) ? mode : 0;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  long fd;
  int tries = 0;
  do { /* EAGAIN: a concurrent rename raced the resolution; the kernel asks us to retry */
    fd = syscall(SYS_openat2, rootfd, rel, &how, sizeof how);
  } while (fd < 0 && errno == EAGAIN && ++tries < 64);
  if (fd < 0) {
    int err = errno;
    size_t len = strlen(root) + strlen(rel) + 16;
    char *shown = malloc(len);
    if (shown) snprintf(shown, len, "%s (in root %s)", rel, root);
    throw_errno_shown(env, err, "openInRoot", rel, NULL, shown);
    free(shown);
    goto out;
  }
  napi_create_int32(env, (int32_t)fd, &result);
out:
  if (rootfd >= 0) close(rootfd);
  free(root);
  free(rel);
  return result;
}

/* syncfs(path) -> Promise<void>: flushes the whole filesystem holding `path`, on a libuv
 * worker thread (it can take seconds; the event loop must not wait for it). */
struct syncfs_job {
  napi_async_work work;
  napi_deferred deferred;
  char *path;
  int err;
  const char *failed;
};

static void syncfs_execute(napi_env env, void *data) {
  (void)env;
  struct syncfs_job *job = data;
  int fd = open(job->path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) {
    job->err = errno;
    job->failed = "syncfs";
    return;
  }
  if (syncfs(fd) != 0) {
    job->err = errno;
    job->failed = "syncfs";
  }
  close(fd);
}

static void syncfs_complete(napi_env env, napi_status status, void *data) {
  struct syncfs_job *job = data;
  napi_value value = NULL;
  if (status != napi_ok) {
    napi_create_string_utf8(env, "syncfs: cancelled", NAPI_AUTO_LENGTH, &value);
    napi_value msg = value;
    napi_create_error(env, NULL, msg, &value);
    napi_reject_deferred(env, job->deferred, value);
  } else if (job->err != 0) {
    value = errno_error(env, job->err, job->failed, job->path, NULL, NULL);
    if (value == NULL) napi_get_undefined(env, &value);
    napi_reject_deferred(env, job->deferred, value);
  } else {
    napi_get_undefined(env, &value);
    napi_resolve_deferred(env, job->deferred, value);
  }
  napi_delete_async_work(env, job->work);
  free(job->path);
  free(job);
}

static napi_value js_syncfs(napi_env env, napi_callback_info info) {
  napi_value argv[MAX_ARGS], promise, name;
  if (get_args(env, info, 1, argv, "syncfs") != 0) return NULL;
  struct syncfs_job *job = calloc(1, sizeof *job);
  if (job == NULL) {
    napi_throw_error(env, "ENOMEM", "berth-native: out of memory");
    return NULL;
  }
  if (get_string(env, argv[0], 0, &job->path, "syncfs", "path") != 0) {
    free(job);
    return NULL;
  }
  if (napi_create_promise(env, &job->deferred, &promise) != napi_ok ||
      napi_create_string_utf8(env, "berth-syncfs", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_create_async_work(env, NULL, name, syncfs_execute, syncfs_complete, job, &job->work) != napi_ok ||
      napi_queue_async_work(env, job->work) != napi_ok) {
    free(job->path);
    free(job);
    return NULL;
  }
  return promise;
}

static int set_constant(napi_env env, napi_value obj, const char *name, double value) {
  napi_value v;
  if (napi_create_double(env, value, &v) != napi_ok) return -1;
  return napi_set_named_property(env, obj, name, v) == napi_ok ? 0 : -1;
}

NAPI_MODULE_INIT(/* napi_env env, napi_value exports */) {
  napi_property_descriptor fns[] = {
      {"mount", NULL, js_mount, NULL, NULL, NULL, napi_enumerable, NULL},
      {"umount2", NULL, js_umount2, NULL, NULL, NULL, napi_enumerable, NULL},
      {"mknod", NULL, js_mknod, NULL, NULL, NULL, napi_enumerable, NULL},
      {"lsetxattr", NULL, js_lsetxattr, NULL, NULL, NULL, napi_enumerable, NULL},
      {"lgetxattr", NULL, js_lgetxattr, NULL, NULL, NULL, napi_enumerable, NULL},
      {"llistxattr", NULL, js_llistxattr, NULL, NULL, NULL, napi_enumerable, NULL},
      {"openInRoot", NULL, js_open_in_root, NULL, NULL, NULL, napi_enumerable, NULL},
      {"syncfs", NULL, js_syncfs, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  NAPI_OK(napi_define_properties(env, exports, sizeof fns / sizeof fns[0], fns));

  /* The values the TypeScript wrapper hardcodes, so a test can check them against the C headers. */
  napi_value c;
  NAPI_OK(napi_create_object(env, &c));
  struct {
    const char *name;
    double value;
  } consts[] = {
      {"MS_RDONLY", MS_RDONLY},   {"MS_NOSUID", MS_NOSUID},   {"MS_NODEV", MS_NODEV},
      {"MS_NOEXEC", MS_NOEXEC},   {"MS_REMOUNT", MS_REMOUNT}, {"MS_BIND", MS_BIND},
      {"MS_MOVE", MS_MOVE},       {"MS_REC", MS_REC},         {"MS_PRIVATE", MS_PRIVATE},
      {"MS_SLAVE", MS_SLAVE},     {"MS_SHARED", MS_SHARED},   {"MS_NOATIME", MS_NOATIME},
      {"MS_RELATIME", MS_RELATIME}, {"MS_STRICTATIME", MS_STRICTATIME},
      {"MS_NODIRATIME", MS_NODIRATIME}, {"MS_UNBINDABLE", MS_UNBINDABLE},
      {"MNT_FORCE", MNT_FORCE},   {"MNT_DETACH", MNT_DETACH}, {"UMOUNT_NOFOLLOW", UMOUNT_NOFOLLOW},
      {"O_PATH", O_PATH},         {"S_IFCHR", S_IFCHR},       {"S_IFBLK", S_IFBLK},
      {"S_IFIFO", S_IFIFO},       {"XATTR_CREATE", XATTR_CREATE}, {"XATTR_REPLACE", XATTR_REPLACE},
  };
  for (size_t i = 0; i < sizeof consts / sizeof consts[0]; i++)
    if (set_constant(env, c, consts[i].name, consts[i].value) != 0) return NULL;
  NAPI_OK(napi_set_named_property(env, exports, "constants", c));
  return exports;
}
