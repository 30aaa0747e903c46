/*
 * Leaving the daemon behind, and telling it how the start went.
 *
 * The launching process forks; the child calls setsid() and forks again, and the grandchild
 * is the monitor: not a session leader (so it can never gain a controlling terminal), in no
 * process group of the daemon's (so a signal to the daemon's group misses it), and an orphan
 * (so the daemon's death changes nothing). The launching process waits for one status byte
 * from the monitor and exits 0 when the container was created, 1 when not, so a daemon can
 * either read the sync pipe to its end or just wait for the process it spawned.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "shim.h"

static void redirect_stdio_to_null(void)
{
	int fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return;
	for (int i = 0; i < 3; i++)
		if (fd != i)
			dup2(fd, i);
	if (fd > 2)
		close(fd);
}

int daemon_detach(struct shim *s)
{
	int status[2];
	if (pipe2(status, O_CLOEXEC) < 0)
		return -1;
	pid_t first = fork();
	if (first < 0)
		return -1;
	if (first > 0) {
		/* The launching process: only the monitor may answer on the sync pipe, and a
		 * daemon that gives up on the start may still kill this one as it likes. */
		signals_restore();
		close(status[1]);
		if (s->sync_fd >= 0)
			close(s->sync_fd);
		int ws;
		while (waitpid(first, &ws, 0) < 0 && errno == EINTR)
			;
		char ok = 1;
		ssize_t n;
		do
			n = read(status[0], &ok, 1);
		while (n < 0 && errno == EINTR);
		_exit(n == 1 && ok == 0 ? 0 : 1);
	}
	close(status[0]);
	if (setsid() < 0)
		_exit(1);
	pid_t second = fork();
	if (second < 0) {
		sync_report_error(s, "fork: cannot start the monitor");
		_exit(1);
	}
	if (second > 0)
		_exit(0);
	s->status_fd = status[1];
	redirect_stdio_to_null();
	/* The working directory stays: relative paths on the command line keep working. */
	return 0;
}

static void sync_write(struct shim *s, const char *line, size_t len, bool ok)
{
	if (s->sync_fd >= 0) {
		/* A daemon that went away makes this EPIPE; the container goes on regardless. */
		write_all(s->sync_fd, line, len);
		close(s->sync_fd);
		s->sync_fd = -1;
	}
	if (s->status_fd >= 0) {
		char b = ok ? 0 : 1;
		write_all(s->status_fd, &b, 1);
		close(s->status_fd);
		s->status_fd = -1;
	}
}

void sync_report_ok(struct shim *s)
{
	char line[96];
	int n = snprintf(line, sizeof line, "{\"pid\":%d,\"shimPid\":%d}\n", (int)s->pid, (int)getpid());
	sync_write(s, line, (size_t)n, true);
}

void sync_report_error(struct shim *s, const char *msg)
{
	size_t len = strlen(msg);
	if (len > 4000)
		len = 4000;
	char line[4000 * 6 + 32];
	size_t n = 0;
	memcpy(line, "{\"error\":\"", 10);
	n = 10;
	n += json_escape(line + n, msg, len);
	memcpy(line + n, "\"}\n", 3);
	n += 3;
	sync_write(s, line, n, false);
}
