/*
 * Signals, through a signalfd in the event loop. SIGCHLD means "reap"; the signals a user
 * or a supervisor sends to the monitor are forwarded to the container process.
 */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "shim.h"

static const int forwarded[] = { SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2 };

static void handled_set(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGCHLD);
	for (size_t i = 0; i < sizeof forwarded / sizeof forwarded[0]; i++)
		sigaddset(set, forwarded[i]);
}

/* Called before the first fork, so no signal can arrive with its default action on. */
int signals_block(void)
{
	sigset_t set;
	handled_set(&set);
	/* A client that hangs up must give EPIPE, not kill the monitor. */
	signal(SIGPIPE, SIG_IGN);
	return sigprocmask(SIG_BLOCK, &set, NULL);
}

int signals_open(struct shim *s)
{
	sigset_t set;
	handled_set(&set);
	int fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (fd < 0)
		return -1;
	s->signals.kind = WATCH_SIGNAL;
	s->signals.fd = fd;
	return watch_set(s, &s->signals, EPOLLIN);
}

/* Undoes signals_block(): in a child before exec (the mask and ignored dispositions would
 * survive exec), and in the launching process. */
void signals_restore(void)
{
	sigset_t none;
	sigemptyset(&none);
	signal(SIGPIPE, SIG_DFL);
	sigprocmask(SIG_SETMASK, &none, NULL);
}

void signals_event(struct shim *s)
{
	struct signalfd_siginfo si;
	for (;;) {
		ssize_t n = read(s->signals.fd, &si, sizeof si);
		if (n != (ssize_t)sizeof si)
			break;
		if (si.ssi_signo == SIGCHLD)
			exit_reap(s);
		else if (s->pid > 0 && !s->exited)
			kill(s->pid, (int)si.ssi_signo);
	}
}
