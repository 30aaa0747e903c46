/*
 * The end. As child subreaper the monitor inherits every orphan of runc and of the
 * container, and reaps them all; the container process's status is the one that counts.
 * When it has exited: take the remaining output, write exit.json atomically, remove the
 * sockets, and close the attach clients so they read EOF. `runc delete` is the daemon's.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "shim.h"

void exit_reap(struct shim *s)
{
	for (;;) {
		int status;
		pid_t p = waitpid(-1, &status, WNOHANG);
		if (p <= 0) {
			if (p < 0 && errno == EINTR)
				continue;
			return;
		}
		if (p == s->pid && s->pid > 0 && !s->exited) {
			s->exited = true;
			s->wait_status = status;
			clock_gettime(CLOCK_REALTIME, &s->finished_at);
		}
	}
}

static void write_exit_file(struct shim *s)
{
	int code = 0, sig = 0;
	if (WIFSIGNALED(s->wait_status)) {
		sig = WTERMSIG(s->wait_status);
		code = 128 + sig;
	} else if (WIFEXITED(s->wait_status)) {
		code = WEXITSTATUS(s->wait_status);
	}
	char when[48];
	json_time(when, sizeof when, &s->finished_at);
	char json[128];
	int n = snprintf(json, sizeof json, "{\"exitCode\":%d,\"signal\":%d,\"finishedAt\":\"%s\"}\n",
			 code, sig, when);
	write_file_atomic(s->dir_fd, "exit.json", json, (size_t)n, true);
}

/* Time an exec that ended before anyone attached waits for its client (--wait-attach). */
#define WAIT_ATTACH_MS 5000

void exit_finish(struct shim *s)
{
	if (s->output_held && s->attach_listen.fd >= 0) {
		/* The process ended before its client came: its output waits for the client. */
		struct pollfd p = { .fd = s->attach_listen.fd, .events = POLLIN };
		while (poll(&p, 1, WAIT_ATTACH_MS) < 0 && errno == EINTR)
			;
		attach_accept(s);
		s->output_held = false;
	}
	output_drain(s);
	for (int i = 0; i < 2; i++)
		watch_close(s, &s->out[i].w);
	watch_close(s, &s->in.w);
	log_close(&s->log);
	write_exit_file(s);
	unlinkat(s->dir_fd, "attach.sock", 0);
	unlinkat(s->dir_fd, "control.sock", 0);
	control_close_all(s);
	attach_close_all(s);
	/* Orphans of an exec or of a container without a pid namespace are not ours to wait
	 * for: reap what has ended, leave the rest to init. */
	exit_reap(s);
}
