/*
 * The control socket, <state-dir>/control.sock: one command per line, one reply per line
 * ("ok" or "error <why>").
 *
 *   resize <rows> <cols>   set the pty's window size (the container gets SIGWINCH)
 *   close-stdin            close the container's stdin once queued input is written
 *   signal <n>             send signal n to the container process
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <termios.h>
#include <unistd.h>

#include "shim.h"

int control_listen(struct shim *s, char *err, size_t errlen)
{
	int fd = unix_listen(s, "control.sock", 16);
	if (fd < 0) {
		errorf(err, errlen, "control socket: %s", strerror(errno));
		return -1;
	}
	s->control_listen.kind = WATCH_CONTROL_LISTEN;
	s->control_listen.fd = fd;
	return watch_set(s, &s->control_listen, EPOLLIN);
}

void control_accept(struct shim *s)
{
	for (;;) {
		int fd = accept4(s->control_listen.fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return;
		struct control_client *c = calloc(1, sizeof *c);
		if (!c) {
			close(fd);
			return;
		}
		c->w.kind = WATCH_CONTROL_CLIENT;
		c->w.fd = fd;
		c->next = s->controls;
		s->controls = c;
		if (watch_set(s, &c->w, EPOLLIN) < 0)
			control_client_event(s, c, EPOLLERR);
	}
}

static void control_drop(struct shim *s, struct control_client *c)
{
	struct control_client **pp = &s->controls;
	while (*pp && *pp != c)
		pp = &(*pp)->next;
	if (*pp)
		*pp = c->next;
	watch_close(s, &c->w);
	loop_bury(s, &c->w);
}

/* Parses up to max unsigned decimals separated by spaces; returns how many, or -1. */
static int parse_numbers(const char *p, unsigned long *out, int max)
{
	int count = 0;
	for (;;) {
		while (*p == ' ')
			p++;
		if (!*p)
			return count;
		if (count == max || *p < '0' || *p > '9')
			return -1;
		char *end;
		errno = 0;
		out[count++] = strtoul(p, &end, 10);
		if (errno)
			return -1;
		p = end;
	}
}

static const char *control_command(struct shim *s, char *line)
{
	unsigned long v[2];
	if (strncmp(line, "resize ", 7) == 0) {
		if (parse_numbers(line + 7, v, 2) != 2 || v[0] > 65535 || v[1] > 65535)
			return "error usage: resize <rows> <cols>";
		if (s->pty_master < 0)
			return "error no terminal";
		struct winsize ws = { .ws_row = (unsigned short)v[0], .ws_col = (unsigned short)v[1] };
		if (ioctl(s->pty_master, TIOCSWINSZ, &ws) < 0)
			return "error resize failed";
		return "ok";
	}
	if (strcmp(line, "close-stdin") == 0) {
		stdin_close(s);
		return "ok";
	}
	if (strncmp(line, "signal ", 7) == 0) {
		if (parse_numbers(line + 7, v, 1) != 1 || v[0] < 1 || v[0] > 64)
			return "error usage: signal <1-64>";
		if (s->pid <= 0 || s->exited)
			return "error process has exited";
		if (kill(s->pid, (int)v[0]) < 0)
			return "error kill failed";
		return "ok";
	}
	return "error unknown command";
}

static void control_reply(struct control_client *c, const char *reply)
{
	char out[SHIM_CONTROL_LINE_MAX + 8];
	int n = snprintf(out, sizeof out, "%s\n", reply);
	/* A client that does not read its replies only fills its own socket buffer. */
	if (send(c->w.fd, out, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) < 0) {
		/* nobody listening for the answer */
	}
}

static void control_lines(struct shim *s, struct control_client *c)
{
	size_t start = 0;
	for (size_t i = 0; i < c->len; i++) {
		if (c->line[i] != '\n')
			continue;
		c->line[i] = '\0';
		if (i > start && c->line[i - 1] == '\r')
			c->line[i - 1] = '\0';
		if (c->line[start])
			control_reply(c, control_command(s, c->line + start));
		start = i + 1;
	}
	memmove(c->line, c->line + start, c->len - start);
	c->len -= start;
}

void control_client_event(struct shim *s, struct control_client *c, uint32_t events)
{
	if (events & EPOLLIN) {
		if (c->len == sizeof c->line - 1) {
			control_reply(c, "error line too long");
			control_drop(s, c);
			return;
		}
		ssize_t n = read(c->w.fd, c->line + c->len, sizeof c->line - 1 - c->len);
		if (n > 0) {
			c->len += (size_t)n;
			control_lines(s, c);
			return;
		}
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n == 0 && c->len > 0) {
			/* a last command without its newline */
			c->line[c->len++] = '\n';
			control_lines(s, c);
		}
		control_drop(s, c);
		return;
	}
	if (events & (EPOLLHUP | EPOLLERR))
		control_drop(s, c);
}

void control_close_all(struct shim *s)
{
	while (s->controls) {
		struct control_client *c = s->controls;
		while (read(c->w.fd, s->rdbuf, sizeof s->rdbuf) > 0)
			;
		control_drop(s, c);
	}
	if (s->control_listen.fd >= 0)
		watch_close(s, &s->control_listen);
}
