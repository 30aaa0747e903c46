/*
 * berth-shim: detach from the daemon, start the container process through runc, answer on
 * the sync pipe (fd 3), then serve logs, attach and control until the process exits.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shim.h"

#define SYNC_FD 3

static void shim_init(struct shim *s)
{
	s->sync_fd = -1;
	s->status_fd = -1;
	s->dir_fd = -1;
	s->epoll_fd = -1;
	s->signals.fd = -1;
	s->pty_master = -1;
	s->log.fd = -1;
	for (int i = 0; i < 2; i++) {
		s->out[i].w.kind = WATCH_OUTPUT;
		s->out[i].w.fd = -1;
		s->out[i].stream = i == 0 ? STREAM_STDOUT : STREAM_STDERR;
	}
	s->in.w.kind = WATCH_STDIN;
	s->in.w.fd = -1;
	s->attach_listen.fd = -1;
	s->control_listen.fd = -1;
}

static void close_child_fds(int child_fds[3])
{
	for (int i = 0; i < 3; i++) {
		if (child_fds[i] < 0)
			continue;
		for (int j = i + 1; j < 3; j++)
			if (child_fds[j] == child_fds[i])
				child_fds[j] = -1;
		close(child_fds[i]);
		child_fds[i] = -1;
	}
}

static int shim_start(struct shim *s, char *err, size_t errlen)
{
	const struct options *o = &s->opt;
	if (mkdir(o->state_dir, 0700) < 0 && errno != EEXIST) {
		errorf(err, errlen, "state dir %s: %s", o->state_dir, strerror(errno));
		return -1;
	}
	s->dir_fd = open(o->state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (s->dir_fd < 0) {
		errorf(err, errlen, "state dir %s: %s", o->state_dir, strerror(errno));
		return -1;
	}
	/* A restarted container reuses its state dir: an old end must not look like this one's. */
	unlinkat(s->dir_fd, "exit.json", 0);
	if (loop_init(s) < 0 || signals_open(s) < 0) {
		errorf(err, errlen, "event loop: %s", strerror(errno));
		return -1;
	}
	if (log_open(&s->log, o->log_path, o->log_max_size, o->log_max_files) < 0) {
		errorf(err, errlen, "log file %s: %s", o->log_path, strerror(errno));
		return -1;
	}
	/* Both sockets exist before the sync line, so the daemon can attach before runc start. */
	if (attach_listen(s, err, errlen) < 0 || control_listen(s, err, errlen) < 0)
		return -1;

	int child_fds[3], err_fd;
	if (stdio_prepare(s, child_fds, &err_fd, err, errlen) < 0) {
		close_child_fds(child_fds);
		return -1;
	}
	int console_fd = -1;
	if (o->terminal) {
		console_fd = console_listen(s, err, errlen);
		if (console_fd < 0) {
			close_child_fds(child_fds);
			return -1;
		}
	}
	int rc = runtime_run(s, child_fds, err_fd, err, errlen);
	close_child_fds(child_fds);
	if (o->terminal && err_fd >= 0)
		close(err_fd);
	if (rc == 0 && o->terminal) {
		int master = console_receive(s, console_fd, err, errlen);
		rc = master < 0 ? -1 : stdio_attach_pty(s, master, err, errlen);
	}
	console_remove(s, console_fd);
	if (rc < 0)
		return -1;
	if (stdio_register(s) < 0) {
		errorf(err, errlen, "stdio: %s", strerror(errno));
		return -1;
	}
	char pid[24];
	int n = snprintf(pid, sizeof pid, "%d", (int)getpid());
	if (write_file_atomic(s->dir_fd, "shim.pid", pid, (size_t)n, false) < 0) {
		errorf(err, errlen, "shim.pid: %s", strerror(errno));
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct shim *s = calloc(1, sizeof *s);
	if (!s)
		return 1;
	shim_init(s);
	if (fcntl(SYNC_FD, F_SETFD, FD_CLOEXEC) == 0)
		s->sync_fd = SYNC_FD;

	char err[4096];
	if (args_parse(&s->opt, argc, argv, err, sizeof err) < 0) {
		dprintf(2, "berth-shim: %s\n", err);
		sync_report_error(s, err);
		return 2;
	}
	umask(022);
	if (signals_block() < 0 || daemon_detach(s) < 0) {
		errorf(err, sizeof err, "detach: %s", strerror(errno));
		sync_report_error(s, err);
		return 1;
	}
	/* From here on: the monitor, orphaned, in its own session. */
	if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0) {
		errorf(err, sizeof err, "child subreaper: %s", strerror(errno));
		sync_report_error(s, err);
		return 1;
	}
	if (shim_start(s, err, sizeof err) < 0) {
		if (s->dir_fd >= 0) {
			unlinkat(s->dir_fd, "attach.sock", 0);
			unlinkat(s->dir_fd, "control.sock", 0);
		}
		sync_report_error(s, err);
		return 1;
	}
	sync_report_ok(s);
	loop_run(s);
	exit_finish(s);
	return 0;
}
