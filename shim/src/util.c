/* Small helpers over file descriptors. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "shim.h"

int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int set_nonblock(int fd, bool on)
{
	int flags = fcntl(fd, F_GETFL);
	if (flags < 0)
		return -1;
	flags = on ? flags | O_NONBLOCK : flags & ~O_NONBLOCK;
	return fcntl(fd, F_SETFL, flags);
}

long long monotonic_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * A listening unix socket named `name` in the state dir. A sockaddr_un holds 107 bytes of
 * path; a longer state dir is reached through /proc/self/fd/<dir fd>/ instead.
 */
int unix_listen(struct shim *s, const char *name, int backlog)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int n = snprintf(addr.sun_path, sizeof addr.sun_path, "%s/%s", s->opt.state_dir, name);
	if (n < 0 || (size_t)n >= sizeof addr.sun_path)
		snprintf(addr.sun_path, sizeof addr.sun_path, "/proc/self/fd/%d/%s", s->dir_fd, name);
	if (unlinkat(s->dir_fd, name, 0) < 0 && errno != ENOENT)
		return -1;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(fd, backlog) < 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

/* Writes name in dir_fd through a temp file and a rename, so readers see all or nothing.
 * durable: fsync the file before the rename and the directory after it. */
int write_file_atomic(int dir_fd, const char *name, const char *data, size_t len, bool durable)
{
	char tmp[256];
	snprintf(tmp, sizeof tmp, ".%s.tmp", name);
	int fd = openat(dir_fd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -1;
	if (write_all(fd, data, len) < 0 || (durable && fsync(fd) < 0)) {
		close(fd);
		unlinkat(dir_fd, tmp, 0);
		return -1;
	}
	close(fd);
	if (renameat(dir_fd, tmp, dir_fd, name) < 0) {
		unlinkat(dir_fd, tmp, 0);
		return -1;
	}
	if (durable)
		fsync(dir_fd);
	return 0;
}

void errorf(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}
