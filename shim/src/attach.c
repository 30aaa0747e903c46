/*
 * The attach socket, <state-dir>/attach.sock. Each client gets the output produced while it
 * is connected: raw with a terminal, else in Docker's multiplexed frames
 *
 *   [stream (1 stdout, 2 stderr), 0, 0, 0, length as u32 big-endian] payload
 *
 * and whatever it writes goes to the container's stdin. Output a client's socket does not
 * take at once is queued for it; a client that stalls or falls too far behind is dropped
 * (see SHIM_CLIENT_QUEUE_SOFT in shim.h): the container and the other clients never wait.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "shim.h"

int attach_listen(struct shim *s, char *err, size_t errlen)
{
	int fd = unix_listen(s, "attach.sock", 64);
	if (fd < 0) {
		errorf(err, errlen, "attach socket: %s", strerror(errno));
		return -1;
	}
	s->attach_listen.kind = WATCH_ATTACH_LISTEN;
	s->attach_listen.fd = fd;
	return watch_set(s, &s->attach_listen, EPOLLIN);
}

static void client_drop(struct shim *s, struct attach_client *c)
{
	struct attach_client **pp = &s->clients;
	while (*pp && *pp != c)
		pp = &(*pp)->next;
	if (*pp)
		*pp = c->next;
	watch_close(s, &c->w);
	free(c->buf);
	c->buf = NULL;
	loop_bury(s, &c->w);
}

/*
 * A clean end for a client: EOF on its read side, and its unread input consumed first,
 * because closing a unix socket with unread data makes the peer see ECONNRESET.
 */
static void client_end(struct shim *s, struct attach_client *c)
{
	shutdown(c->w.fd, SHUT_WR);
	while (read(c->w.fd, s->rdbuf, sizeof s->rdbuf) > 0)
		;
	client_drop(s, c);
}

static void client_update(struct shim *s, struct attach_client *c)
{
	uint32_t ev = 0;
	if (!c->eof && stdin_accepting(s))
		ev |= EPOLLIN;
	if (c->len > 0)
		ev |= EPOLLOUT;
	if (watch_set(s, &c->w, ev) < 0)
		client_drop(s, c);
}

/* Stdin became able, or unable, to take more: start or stop reading the clients. */
void attach_update_all(struct shim *s)
{
	struct attach_client *c = s->clients, *next;
	for (; c; c = next) {
		next = c->next;
		client_update(s, c);
	}
}

void attach_accept(struct shim *s)
{
	if (s->attach_listen.fd < 0)
		return;
	for (;;) {
		int fd = accept4(s->attach_listen.fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return; /* EAGAIN, or out of fds/memory: the client waits in the backlog */
		struct attach_client *c = calloc(1, sizeof *c);
		if (!c) {
			close(fd);
			return;
		}
		c->w.kind = WATCH_ATTACH_CLIENT;
		c->w.fd = fd;
		c->progress_ms = monotonic_ms();
		c->next = s->clients;
		s->clients = c;
		client_update(s, c);
		stdio_release(s);
	}
}

static bool client_overflows(const struct attach_client *c, size_t need)
{
	if (need > SHIM_CLIENT_QUEUE_HARD)
		return true;
	return need > SHIM_CLIENT_QUEUE_SOFT && monotonic_ms() - c->progress_ms > SHIM_CLIENT_STALL_MS;
}

/* Queues the unsent tail of iov (skipping `sent` bytes). False: the client must go. */
static bool client_queue(struct attach_client *c, const struct iovec *iov, int iovcnt, size_t sent)
{
	size_t total = 0;
	for (int i = 0; i < iovcnt; i++)
		total += iov[i].iov_len;
	size_t need = c->len + total - sent;
	if (client_overflows(c, need))
		return false;
	if (need > c->cap) {
		size_t cap = c->cap ? c->cap : 16384;
		while (cap < need)
			cap *= 2;
		char *buf = realloc(c->buf, cap);
		if (!buf)
			return false;
		c->buf = buf;
		c->cap = cap;
	}
	for (int i = 0; i < iovcnt; i++) {
		size_t len = iov[i].iov_len;
		const char *base = iov[i].iov_base;
		if (sent >= len) {
			sent -= len;
			continue;
		}
		memcpy(c->buf + c->len, base + sent, len - sent);
		c->len += len - sent;
		sent = 0;
	}
	return true;
}

static ssize_t client_send(struct attach_client *c, const struct iovec *iov, int iovcnt)
{
	struct msghdr msg = { .msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)iovcnt };
	ssize_t n;
	do
		n = sendmsg(c->w.fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (n > 0)
		c->progress_ms = monotonic_ms();
	return n;
}

void attach_broadcast(struct shim *s, enum stream_id stream, const char *data, size_t len)
{
	/* A client that connected before this output was produced must see it, even when its
	 * connection is still in the backlog: accept first. */
	attach_accept(s);
	unsigned char header[8] = { (unsigned char)stream, 0, 0, 0, (unsigned char)(len >> 24),
				    (unsigned char)(len >> 16), (unsigned char)(len >> 8), (unsigned char)len };
	struct iovec iov[2];
	int iovcnt = 0;
	if (!s->opt.terminal)
		iov[iovcnt++] = (struct iovec){ .iov_base = header, .iov_len = sizeof header };
	iov[iovcnt++] = (struct iovec){ .iov_base = (void *)data, .iov_len = len };
	size_t total = len + (s->opt.terminal ? 0 : sizeof header);

	struct attach_client *c = s->clients, *next;
	for (; c; c = next) {
		next = c->next;
		size_t sent = 0;
		if (c->len == 0) {
			c->progress_ms = monotonic_ms(); /* it had taken everything so far */
			ssize_t n = client_send(c, iov, iovcnt);
			if (n < 0 && errno != EAGAIN) {
				client_drop(s, c);
				continue;
			}
			sent = n < 0 ? 0 : (size_t)n;
			if (sent == total)
				continue;
		}
		if (!client_queue(c, iov, iovcnt, sent)) {
			/* Mid-frame, perhaps: a dropped client cannot use what it has anyway. */
			client_drop(s, c);
			continue;
		}
		client_update(s, c);
	}
}

static void client_flush(struct shim *s, struct attach_client *c)
{
	struct iovec iov = { .iov_base = c->buf, .iov_len = c->len };
	ssize_t n = client_send(c, &iov, 1);
	if (n < 0) {
		if (errno != EAGAIN)
			client_drop(s, c);
		return;
	}
	memmove(c->buf, c->buf + n, c->len - (size_t)n);
	c->len -= (size_t)n;
	if (c->len == 0 && c->cap > 65536) {
		/* a burst is over: give the memory back */
		free(c->buf);
		c->buf = NULL;
		c->cap = 0;
	}
	client_update(s, c);
}

static void client_eof(struct shim *s, struct attach_client *c)
{
	c->eof = true;
	if (s->opt.stdin_once && !s->stdin_once_used) {
		s->stdin_once_used = true;
		stdin_close(s);
	}
}

static void client_read(struct shim *s, struct attach_client *c)
{
	if (!stdin_accepting(s))
		return;
	ssize_t n = read(c->w.fd, s->rdbuf, sizeof s->rdbuf);
	if (n > 0) {
		stdin_push(s, s->rdbuf, (size_t)n);
		return;
	}
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	client_eof(s, c);
	if (n < 0)
		client_drop(s, c);
	else
		client_update(s, c);
}

void attach_client_event(struct shim *s, struct attach_client *c, uint32_t events)
{
	if (events & EPOLLOUT)
		client_flush(s, c);
	if (c->w.fd >= 0 && (events & EPOLLIN))
		client_read(s, c);
	/* Hung up both ways, and nothing left to read from it: it is gone. */
	if (c->w.fd >= 0 && (events & (EPOLLHUP | EPOLLERR)) && !((events & EPOLLIN) && !c->eof)) {
		if (!c->eof)
			client_eof(s, c);
		client_drop(s, c);
	}
}

/*
 * At the end (exit.json is written): clients with nothing queued read EOF at once; the
 * others get SHIM_FINAL_FLUSH_MS to take their queue, served together by a last loop over
 * just these sockets and the signalfd.
 */
void attach_close_all(struct shim *s)
{
	attach_accept(s);
	if (s->attach_listen.fd >= 0)
		watch_close(s, &s->attach_listen);
	long long deadline = monotonic_ms() + SHIM_FINAL_FLUSH_MS;
	for (;;) {
		struct attach_client *c = s->clients, *next;
		for (; c; c = next) {
			next = c->next;
			if (c->len == 0)
				client_end(s, c);
		}
		loop_free_graveyard(s);
		long long left = deadline - monotonic_ms();
		if (!s->clients || left <= 0)
			break;
		struct epoll_event ev[32];
		int n = epoll_wait(s->epoll_fd, ev, 32, (int)left);
		if (n < 0 && errno != EINTR)
			break;
		for (int i = 0; i < n; i++) {
			struct watch *w = ev[i].data.ptr;
			if (w->fd < 0)
				continue;
			if (w->kind == WATCH_ATTACH_CLIENT)
				attach_client_event(s, (struct attach_client *)w, ev[i].events);
			else if (w->kind == WATCH_SIGNAL)
				signals_event(s);
		}
	}
	while (s->clients)
		client_drop(s, s->clients);
	loop_free_graveyard(s);
}
