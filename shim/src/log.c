/*
 * The container log, in Docker's json-file format: one JSON object per line,
 *
 *   {"log":"hello\n","stream":"stdout","time":"2026-11-28T09:00:00.123456789Z"}
 *
 * Rotation as docker does it: before a write, a file that has reached max_size becomes
 * FILE.1 (FILE.1 becomes FILE.2, ...; the oldest beyond max_files is overwritten) and a new
 * FILE starts. With max_files 1 the file is truncated instead. max_size 0 never rotates.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shim.h"

#define LOG_LINE_CAP (SHIM_LINE_MAX * 6 + 128)

static int log_reopen(struct logfile *l)
{
	int fd = open(l->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
	if (fd < 0)
		return -1;
	struct stat st;
	l->size = fstat(fd, &st) == 0 ? (long long)st.st_size : 0;
	if (l->fd >= 0)
		close(l->fd);
	l->fd = fd;
	return 0;
}

int log_open(struct logfile *l, const char *path, long long max_size, int max_files)
{
	l->fd = -1;
	l->path = path;
	l->max_size = max_size;
	l->max_files = max_files < 1 ? 1 : max_files;
	return log_reopen(l);
}

static void log_rotate(struct logfile *l)
{
	if (l->max_files < 2) {
		if (ftruncate(l->fd, 0) == 0)
			l->size = 0;
		return;
	}
	char from[PATH_MAX], to[PATH_MAX];
	for (int i = l->max_files - 1; i > 1; i--) {
		snprintf(from, sizeof from, "%s.%d", l->path, i - 1);
		snprintf(to, sizeof to, "%s.%d", l->path, i);
		if (rename(from, to) < 0 && errno != ENOENT)
			return;
	}
	snprintf(to, sizeof to, "%s.1", l->path);
	if (rename(l->path, to) < 0)
		return;
	log_reopen(l);
}

static const char *const stream_names[] = { "stdin", "stdout", "stderr" };

void log_line(struct logfile *l, enum stream_id stream, const char *data, size_t len,
	      const struct timespec *ts)
{
	if (l->fd < 0 || len == 0)
		return;
	if (len > SHIM_LINE_MAX)
		len = SHIM_LINE_MAX;
	if (!l->buf) {
		l->buf = malloc(LOG_LINE_CAP);
		if (!l->buf)
			return;
	}
	if (l->max_size > 0 && l->size >= l->max_size)
		log_rotate(l);

	char *p = l->buf;
	memcpy(p, "{\"log\":\"", 8);
	p += 8;
	p += json_escape(p, data, len);
	p += sprintf(p, "\",\"stream\":\"%s\",\"time\":\"", stream_names[stream]);
	p += json_time(p, 40, ts);
	memcpy(p, "\"}\n", 3);
	p += 3;
	size_t total = (size_t)(p - l->buf);
	/* Sole writer, O_APPEND: a short write only happens on a full disk, where losing the
	 * line is all that can be done. */
	if (write_all(l->fd, l->buf, total) == 0)
		l->size += (long long)total;
}

void log_close(struct logfile *l)
{
	if (l->fd >= 0)
		close(l->fd);
	l->fd = -1;
	free(l->buf);
	l->buf = NULL;
}
