/*
 * runc's console socket. With a terminal, runc creates the pty inside the container and
 * sends its master to the unix socket named by --console-socket, as one SCM_RIGHTS message.
 * The socket lives only while runc runs: at <state-dir>/console.sock, or in a private temp
 * dir when that path does not fit in a sockaddr_un.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "shim.h"

int console_listen(struct shim *s, char *err, size_t errlen)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int n = snprintf(s->console_path, sizeof s->console_path, "%s/console.sock", s->opt.state_dir);
	if (n < 0 || (size_t)n >= sizeof addr.sun_path) {
		strcpy(s->console_dir, "/tmp/berth-shim-XXXXXX");
		if (!mkdtemp(s->console_dir)) {
			errorf(err, errlen, "console socket dir: %s", strerror(errno));
			s->console_dir[0] = '\0';
			return -1;
		}
		snprintf(s->console_path, sizeof s->console_path, "%s/console.sock", s->console_dir);
	}
	unlink(s->console_path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		errorf(err, errlen, "console socket: %s", strerror(errno));
		return -1;
	}
	strcpy(addr.sun_path, s->console_path);
	if (bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(fd, 4) < 0) {
		errorf(err, errlen, "console socket %s: %s", s->console_path, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

/*
 * Called after runc has exited successfully, so its connection and message are queued on
 * the listening socket already (a unix stream connection carries data before accept).
 */
int console_receive(struct shim *s, int listen_fd, char *err, size_t errlen)
{
	(void)s;
	int conn = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (conn < 0) {
		errorf(err, errlen, "runtime sent no console: %s", strerror(errno));
		return -1;
	}
	char name[256];
	struct iovec iov = { .iov_base = name, .iov_len = sizeof name };
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int))];
	} control;
	struct msghdr msg = {
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = control.buf,
		.msg_controllen = sizeof control.buf,
	};
	ssize_t n;
	do
		n = recvmsg(conn, &msg, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	close(conn);
	struct cmsghdr *cmsg = n >= 0 ? CMSG_FIRSTHDR(&msg) : NULL;
	if (!cmsg || cmsg->cmsg_level != SOL_SOCKET || cmsg->cmsg_type != SCM_RIGHTS ||
	    cmsg->cmsg_len != CMSG_LEN(sizeof(int))) {
		errorf(err, errlen, "runtime sent no pty master on the console socket");
		return -1;
	}
	int master;
	memcpy(&master, CMSG_DATA(cmsg), sizeof master);
	return master;
}

void console_remove(struct shim *s, int listen_fd)
{
	if (listen_fd >= 0)
		close(listen_fd);
	if (s->console_path[0]) {
		unlink(s->console_path);
		s->console_path[0] = '\0';
	}
	if (s->console_dir[0]) {
		rmdir(s->console_dir);
		s->console_dir[0] = '\0';
	}
}
