/*
 * Running the OCI runtime once: `runc create` (the container's init waits for `runc start`,
 * which the daemon runs) or `runc exec -d` (the process runs at once). The runtime's own log
 * goes to <state-dir>/runc.log, so its stderr carries only the fatal message, which becomes
 * the sync pipe's error. The container process it leaves behind is reparented to us, the
 * child subreaper.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "shim.h"

/* Put fd at target in a child about to exec; dup2 onto itself would keep FD_CLOEXEC. */
static void place_fd(int fd, int target)
{
	if (fd == target)
		fcntl(fd, F_SETFD, 0);
	else
		dup2(fd, target);
}

static void read_error(int err_fd, int status, char *err, size_t errlen)
{
	size_t len = 0;
	if (err_fd >= 0) {
		set_nonblock(err_fd, true);
		while (len + 1 < errlen) {
			ssize_t n = read(err_fd, err + len, errlen - 1 - len);
			if (n <= 0)
				break;
			len += (size_t)n;
		}
	}
	err[len] = '\0';
	size_t start = 0;
	while (start < len && (err[start] == ' ' || err[start] == '\n' || err[start] == '\r' || err[start] == '\t'))
		start++;
	while (len > start && (err[len - 1] == ' ' || err[len - 1] == '\n' || err[len - 1] == '\r' || err[len - 1] == '\t'))
		len--;
	if (len > start) {
		memmove(err, err + start, len - start);
		err[len - start] = '\0';
	} else if (WIFSIGNALED(status)) {
		errorf(err, errlen, "runtime killed by signal %d", WTERMSIG(status));
	} else {
		errorf(err, errlen, "runtime exited with status %d", WEXITSTATUS(status));
	}
}

static int read_pid(struct shim *s, char *err, size_t errlen)
{
	int fd = openat(s->dir_fd, "init.pid", O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		errorf(err, errlen, "runtime wrote no pid file: %s", strerror(errno));
		return -1;
	}
	char buf[32];
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0) {
		errorf(err, errlen, "runtime wrote an empty pid file");
		return -1;
	}
	buf[n] = '\0';
	char *end;
	long pid = strtol(buf, &end, 10);
	if (pid <= 0 || (*end && *end != '\n')) {
		errorf(err, errlen, "runtime wrote a bad pid file: %s", buf);
		return -1;
	}
	s->pid = (pid_t)pid;
	return 0;
}

int runtime_run(struct shim *s, const int child_fds[3], int err_fd, char *err, size_t errlen)
{
	const struct options *o = &s->opt;
	char pid_file[PATH_MAX], log_file[PATH_MAX];
	if (snprintf(pid_file, sizeof pid_file, "%s/init.pid", o->state_dir) >= (int)sizeof pid_file ||
	    snprintf(log_file, sizeof log_file, "%s/runc.log", o->state_dir) >= (int)sizeof log_file) {
		errorf(err, errlen, "state dir path too long");
		return -1;
	}
	unlinkat(s->dir_fd, "init.pid", 0);

	const char *argv[32];
	int n = 0;
	argv[n++] = o->runtime;
	if (o->runtime_root) {
		argv[n++] = "--root";
		argv[n++] = o->runtime_root;
	}
	argv[n++] = "--log";
	argv[n++] = log_file;
	argv[n++] = "--log-format";
	argv[n++] = "json";
	if (o->exec_process) {
		argv[n++] = "exec";
		argv[n++] = "-d";
		argv[n++] = "--pid-file";
		argv[n++] = pid_file;
		argv[n++] = "--process";
		argv[n++] = o->exec_process;
	} else {
		argv[n++] = "create";
		argv[n++] = "--bundle";
		argv[n++] = o->bundle;
		argv[n++] = "--pid-file";
		argv[n++] = pid_file;
	}
	if (o->terminal) {
		argv[n++] = "--console-socket";
		argv[n++] = s->console_path;
	}
	argv[n++] = o->id;
	argv[n] = NULL;

	pid_t child = fork();
	if (child < 0) {
		errorf(err, errlen, "fork: %s", strerror(errno));
		return -1;
	}
	if (child == 0) {
		signals_restore();
		for (int i = 0; i < 3; i++)
			place_fd(child_fds[i], i);
		execvp(o->runtime, (char *const *)argv);
		dprintf(2, "exec %s: %s", o->runtime, strerror(errno));
		_exit(127);
	}
	int status;
	while (waitpid(child, &status, 0) < 0) {
		if (errno != EINTR) {
			errorf(err, errlen, "waitpid: %s", strerror(errno));
			return -1;
		}
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		read_error(err_fd, status, err, errlen);
		return -1;
	}
	return read_pid(s, err, errlen);
}
