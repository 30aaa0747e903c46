/*
 * The event loop: one epoll set, level-triggered, every registration pointing at a struct
 * watch. It runs until the container process has been reaped.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/wait.h>
#include <unistd.h>

#include "shim.h"

int loop_init(struct shim *s)
{
	s->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	return s->epoll_fd < 0 ? -1 : 0;
}

/* Sets the interest of w; 0 removes it from the set (so not even EPOLLHUP wakes us). */
int watch_set(struct shim *s, struct watch *w, uint32_t events)
{
	if (w->fd < 0 || events == w->events)
		return 0;
	struct epoll_event ev = { .events = events, .data.ptr = w };
	int op = w->events == 0 ? EPOLL_CTL_ADD : events == 0 ? EPOLL_CTL_DEL : EPOLL_CTL_MOD;
	if (epoll_ctl(s->epoll_fd, op, w->fd, &ev) < 0)
		return -1;
	w->events = events;
	return 0;
}

void watch_close(struct shim *s, struct watch *w)
{
	if (w->fd < 0)
		return;
	if (w->events)
		epoll_ctl(s->epoll_fd, EPOLL_CTL_DEL, w->fd, NULL);
	close(w->fd);
	w->fd = -1;
	w->events = 0;
}

/*
 * A client closed while handling one batch of events may still have an event later in the
 * same batch: keep its memory (with fd -1, so the event is skipped) until the batch is done.
 */
void loop_bury(struct shim *s, struct watch *w)
{
	w->buried_next = s->graveyard;
	s->graveyard = w;
}

void loop_free_graveyard(struct shim *s)
{
	while (s->graveyard) {
		struct watch *w = s->graveyard;
		s->graveyard = w->buried_next;
		free(w); /* the watch is the first member of the client it belongs to */
	}
}

static void dispatch(struct shim *s, struct watch *w, uint32_t events)
{
	if (w->fd < 0)
		return;
	switch (w->kind) {
	case WATCH_SIGNAL:
		signals_event(s);
		break;
	case WATCH_OUTPUT:
		output_event(s, (struct output *)w, events);
		break;
	case WATCH_STDIN:
		stdin_event(s, events);
		break;
	case WATCH_ATTACH_LISTEN:
		attach_accept(s);
		break;
	case WATCH_ATTACH_CLIENT:
		attach_client_event(s, (struct attach_client *)w, events);
		break;
	case WATCH_CONTROL_LISTEN:
		control_accept(s);
		break;
	case WATCH_CONTROL_CLIENT:
		control_client_event(s, (struct control_client *)w, events);
		break;
	}
}

void loop_run(struct shim *s)
{
	struct epoll_event events[32];
	/* The process may have ended before the loop began (an exec of `true`). */
	exit_reap(s);
	while (!s->exited) {
		int n = epoll_wait(s->epoll_fd, events, sizeof events / sizeof events[0], -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			/* Cannot wait any more: still record how the container ends. */
			break;
		}
		for (int i = 0; i < n; i++)
			dispatch(s, events[i].data.ptr, events[i].events);
		loop_free_graveyard(s);
	}
	if (!s->exited) {
		int status = 0;
		while (waitpid(s->pid, &status, 0) < 0 && errno == EINTR)
			;
		s->exited = true;
		s->wait_status = status;
		clock_gettime(CLOCK_REALTIME, &s->finished_at);
	}
}
