/*
 * The container's stdio. Without a terminal: three pipes (stdin only with --stdin, else
 * /dev/null), whose far ends runc hands to the container process as they are. With one:
 * the pty master runc sends back, read for output and written (through a dup) for input.
 *
 * Output goes live to the attach clients, then line by line into the log.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include "shim.h"

static int open_null(void)
{
	return open("/dev/null", O_RDWR | O_CLOEXEC);
}

/*
 * child_fds: what runc gets as 0, 1, 2. err_fd: where runc's fatal message can be read
 * back. Without a terminal that is the stderr pipe itself: the container has not run yet
 * when runc fails, so whatever is there came from runc.
 */
int stdio_prepare(struct shim *s, int child_fds[3], int *err_fd, char *err, size_t errlen)
{
	int p[2];
	child_fds[0] = child_fds[1] = child_fds[2] = -1;
	*err_fd = -1;
	if (s->opt.terminal) {
		child_fds[0] = open_null();
		child_fds[1] = open_null();
		if (pipe2(p, O_CLOEXEC) < 0)
			goto fail;
		child_fds[2] = p[1];
		*err_fd = p[0];
		if (child_fds[0] < 0 || child_fds[1] < 0)
			goto fail;
		return 0;
	}
	if (s->opt.stdin_open) {
		if (pipe2(p, O_CLOEXEC) < 0)
			goto fail;
		child_fds[0] = p[0];
		s->in.w.fd = p[1];
	} else {
		child_fds[0] = open_null();
		if (child_fds[0] < 0)
			goto fail;
	}
	for (int i = 0; i < 2; i++) {
		if (pipe2(p, O_CLOEXEC) < 0)
			goto fail;
		child_fds[i + 1] = p[1];
		s->out[i].w.fd = p[0];
	}
	*err_fd = s->out[1].w.fd;
	return 0;
fail:
	errorf(err, errlen, "stdio: %s", strerror(errno));
	return -1;
}

int stdio_attach_pty(struct shim *s, int master, char *err, size_t errlen)
{
	s->pty_master = master;
	s->out[0].w.fd = master;
	if (s->opt.stdin_open) {
		s->in.w.fd = fcntl(master, F_DUPFD_CLOEXEC, 3);
		if (s->in.w.fd < 0) {
			errorf(err, errlen, "dup pty: %s", strerror(errno));
			return -1;
		}
	}
	return 0;
}

int stdio_register(struct shim *s)
{
	/*
	 * An exec runs as soon as runc exec returns, before the daemon can attach: with
	 * --wait-attach its output waits in the pipe (or pty) until the first client comes.
	 */
	s->output_held = s->opt.wait_attach;
	for (int i = 0; i < 2; i++) {
		struct output *o = &s->out[i];
		if (o->w.fd < 0)
			continue;
		if (set_nonblock(o->w.fd, true) < 0 || (!s->output_held && watch_set(s, &o->w, EPOLLIN) < 0))
			return -1;
	}
	if (s->in.w.fd >= 0 && set_nonblock(s->in.w.fd, true) < 0)
		return -1;
	return 0;
}

static void log_pending(struct shim *s, struct output *o, const struct timespec *ts)
{
	if (o->pending == 0)
		return;
	log_line(&s->log, o->stream, o->line, o->pending, ts);
	o->pending = 0;
}

/* Docker's split: one log entry per newline, and one per 16 KiB of a line without one. */
static void log_output(struct shim *s, struct output *o, const char *data, size_t len)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	while (len > 0) {
		const char *nl = memchr(data, '\n', len);
		size_t take = nl ? (size_t)(nl - data) + 1 : len;
		size_t room = SHIM_LINE_MAX - o->pending;
		bool complete = nl != NULL;
		if (take > room) {
			take = room;
			complete = false;
		}
		memcpy(o->line + o->pending, data, take);
		o->pending += take;
		data += take;
		len -= take;
		if (complete || o->pending == SHIM_LINE_MAX)
			log_pending(s, o, &ts);
	}
}

static void output_closed(struct shim *s, struct output *o)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	log_pending(s, o, &ts);
	if (o->w.fd == s->pty_master) {
		/* The pty's other side is gone: nothing can be typed into it any more. */
		s->pty_master = -1;
		if (s->in.w.fd >= 0) {
			s->in.len = 0;
			watch_close(s, &s->in.w);
			attach_update_all(s);
		}
	}
	watch_close(s, &o->w);
}

/* Reads once; returns false when the stream has nothing more for now (or ever). */
static bool output_read(struct shim *s, struct output *o)
{
	ssize_t n = read(o->w.fd, s->rdbuf, sizeof s->rdbuf);
	if (n > 0) {
		attach_broadcast(s, o->stream, s->rdbuf, (size_t)n);
		log_output(s, o, s->rdbuf, (size_t)n);
		return true;
	}
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return false;
	/* EOF on a pipe; EIO on a pty master whose slave is closed everywhere. */
	output_closed(s, o);
	return false;
}

void output_event(struct shim *s, struct output *o, uint32_t events)
{
	(void)events;
	output_read(s, o);
}

/* The first attach client came: start reading the held outputs. */
void stdio_release(struct shim *s)
{
	if (!s->output_held)
		return;
	s->output_held = false;
	for (int i = 0; i < 2; i++) {
		struct output *o = &s->out[i];
		if (o->w.fd >= 0)
			watch_set(s, &o->w, EPOLLIN);
	}
}

/*
 * After the container process exited: take what it left in the pipes or the pty. Everything
 * it wrote is there already; a process it left behind may keep writing, which we do not
 * wait for (bounded, so such a process cannot keep the monitor alive).
 */
void output_drain(struct shim *s)
{
	for (int i = 0; i < 2; i++) {
		struct output *o = &s->out[i];
		for (int rounds = 0; o->w.fd >= 0 && rounds < 4096; rounds++)
			if (!output_read(s, o))
				break;
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		log_pending(s, o, &ts);
	}
}

bool stdin_accepting(const struct shim *s)
{
	return s->in.len == 0;
}

static void stdin_shut(struct shim *s)
{
	struct stdin_sink *in = &s->in;
	in->close_requested = false;
	in->len = 0;
	if (in->w.fd < 0)
		return;
	if (s->opt.terminal) {
		/* A pty has no half-close: type the EOF character, as a user pressing ^D would. */
		struct termios t;
		char eof = 4;
		if (s->pty_master >= 0 && tcgetattr(s->pty_master, &t) == 0 && t.c_cc[VEOF])
			eof = (char)t.c_cc[VEOF];
		if (write(in->w.fd, &eof, 1) < 0) {
			/* the terminal is gone already; nothing to tell */
		}
	}
	watch_close(s, &in->w);
}

static void stdin_flush(struct shim *s)
{
	struct stdin_sink *in = &s->in;
	while (in->len > 0) {
		ssize_t n = write(in->w.fd, in->buf, in->len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				break;
			/* EPIPE: the reader is gone; drop what was queued. */
			in->len = 0;
			in->close_requested = false;
			watch_close(s, &in->w);
			break;
		}
		memmove(in->buf, in->buf + n, in->len - (size_t)n);
		in->len -= (size_t)n;
	}
	if (in->w.fd >= 0)
		watch_set(s, &in->w, in->len > 0 ? EPOLLOUT : 0);
	if (in->len == 0) {
		if (in->close_requested)
			stdin_shut(s);
		attach_update_all(s);
	}
}

/* Bytes from an attach client. Only called while stdin_accepting(). */
void stdin_push(struct shim *s, const char *data, size_t len)
{
	struct stdin_sink *in = &s->in;
	if (in->w.fd < 0 || in->close_requested || len == 0)
		return;
	if (len > sizeof in->buf)
		len = sizeof in->buf;
	memcpy(in->buf, data, len);
	in->len = len;
	stdin_flush(s);
}

void stdin_event(struct shim *s, uint32_t events)
{
	(void)events;
	stdin_flush(s);
}

void stdin_close(struct shim *s)
{
	if (s->in.len > 0)
		s->in.close_requested = true;
	else
		stdin_shut(s);
}
