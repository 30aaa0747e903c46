/*
 * berth-shim: the per-container monitor.
 *
 * One process per container process (the init of a container, or one exec). It starts
 * runc, holds the container's stdio or pty, writes the json-file log, serves attach and
 * control sockets, reaps the process and records its exit status. Everything it knows lives
 * in one struct shim; every file under src/ takes it as its first argument.
 *
 * On disk, in --state-dir:
 *
 *   shim.pid      pid of the monitor (written before the sync line)
 *   init.pid      pid of the container process (runc's --pid-file)
 *   runc.log      runc's own log (json), for diagnostics
 *   attach.sock   unix stream socket: live output out, stdin in
 *   control.sock  unix stream socket: "resize R C", "close-stdin", "signal N"
 *   exit.json     {"exitCode":N,"signal":S,"finishedAt":"..."}, written atomically at the end
 */
#ifndef BERTH_SHIM_H
#define BERTH_SHIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

/* Docker's json-file driver flushes a line without a newline once it holds 16 KiB. */
#define SHIM_LINE_MAX (16 * 1024)
/* Bytes read from the container, or from an attach client, at one time. */
#define SHIM_READ_CHUNK (16 * 1024)
/*
 * Output queued for an attach client that reads slower than the container writes. Past the
 * soft limit a client that has taken no bytes for SHIM_CLIENT_STALL_MS is dropped; past the
 * hard limit any client is. A daemon that pauses for a moment loses nothing; one that is
 * stuck costs at most the hard limit, for a moment. The container never waits for either.
 */
#define SHIM_CLIENT_QUEUE_SOFT (1024 * 1024)
#define SHIM_CLIENT_QUEUE_HARD (64 * 1024 * 1024)
#define SHIM_CLIENT_STALL_MS 1000
/* How long the end waits for clients to take what is queued for them. */
#define SHIM_FINAL_FLUSH_MS 5000
/* Longest control line, "resize 65535 65535" and friends. */
#define SHIM_CONTROL_LINE_MAX 128

enum stream_id { STREAM_STDIN = 0, STREAM_STDOUT = 1, STREAM_STDERR = 2 };

/* What an epoll registration points at; the first member of everything registered. */
enum watch_kind {
	WATCH_SIGNAL,
	WATCH_OUTPUT,
	WATCH_STDIN,
	WATCH_ATTACH_LISTEN,
	WATCH_ATTACH_CLIENT,
	WATCH_CONTROL_LISTEN,
	WATCH_CONTROL_CLIENT,
};

struct watch {
	enum watch_kind kind;
	int fd;            /* -1 once closed; a closed watch's pending events are skipped */
	uint32_t events;   /* the interest registered with epoll, 0 when not registered */
	struct watch *buried_next; /* see loop_bury() */
};

struct options {
	const char *id;
	const char *bundle;
	const char *state_dir;
	const char *runtime;
	const char *runtime_root;  /* NULL: runc's default */
	const char *log_path;
	const char *exec_process;  /* NULL: runc create; else runc exec -d --process */
	long long log_max_size;    /* bytes; 0: never rotate */
	int log_max_files;         /* files kept, the live one included (docker's max-file) */
	bool terminal;
	bool stdin_open;
	bool stdin_once;
	bool wait_attach;          /* read no output until the first attach client (exec) */
};

/* One output stream of the container: a pipe, or the pty master (then always stdout). */
struct output {
	struct watch w;
	enum stream_id stream;
	size_t pending;            /* bytes of a line not yet logged */
	char line[SHIM_LINE_MAX];
};

/* The container's stdin: a pipe's write end, or a dup of the pty master. */
struct stdin_sink {
	struct watch w;
	bool close_requested;      /* close once the queued bytes are written */
	size_t len;                /* queued bytes; while any are queued, clients are not read */
	char buf[SHIM_READ_CHUNK];
};

struct logfile {
	int fd;
	const char *path;
	long long size;
	long long max_size;
	int max_files;
	char *buf;                 /* one formatted line; allocated on first use */
};

struct attach_client {
	struct watch w;            /* first member */
	struct attach_client *next;
	bool eof;                  /* the client shut its write side */
	char *buf;                 /* output not yet accepted by the socket */
	size_t len, cap;
	long long progress_ms;     /* when the socket last took bytes (or the queue was empty) */
};

struct control_client {
	struct watch w;            /* first member */
	struct control_client *next;
	size_t len;
	char line[SHIM_CONTROL_LINE_MAX];
};

struct shim {
	struct options opt;
	int sync_fd;               /* fd 3 from the daemon, -1 once answered */
	int status_fd;             /* tells the launching process how the start went */
	int dir_fd;                /* the state dir */
	int epoll_fd;
	struct watch signals;      /* signalfd */

	pid_t pid;                 /* the container process, 0 until runc has started it */
	bool exited;
	bool output_held;          /* --wait-attach and no client yet: outputs not watched */
	int wait_status;
	struct timespec finished_at;

	int pty_master;            /* -1 without a terminal */
	struct output out[2];      /* [0] stdout (or the pty), [1] stderr */
	struct stdin_sink in;
	struct logfile log;

	struct watch attach_listen;
	struct attach_client *clients;
	bool stdin_once_used;

	struct watch control_listen;
	struct control_client *controls;

	struct watch *graveyard;   /* clients closed during one epoll batch, freed after it */

	char console_path[128];    /* runc's --console-socket, while runc runs */
	char console_dir[64];      /* a temp dir holding it, when the state dir path is too long */

	char rdbuf[SHIM_READ_CHUNK];
};

/* args.c */
int args_parse(struct options *o, int argc, char **argv, char *err, size_t errlen);

/* daemon.c */
int daemon_detach(struct shim *s);
void sync_report_ok(struct shim *s);
void sync_report_error(struct shim *s, const char *msg);

/* signals.c */
int signals_block(void);
int signals_open(struct shim *s);
void signals_event(struct shim *s);
void signals_restore(void);

/* runtime.c */
int runtime_run(struct shim *s, const int child_fds[3], int err_fd, char *err, size_t errlen);

/* console.c */
int console_listen(struct shim *s, char *err, size_t errlen);
int console_receive(struct shim *s, int listen_fd, char *err, size_t errlen);
void console_remove(struct shim *s, int listen_fd);

/* stdio.c */
int stdio_prepare(struct shim *s, int child_fds[3], int *err_fd, char *err, size_t errlen);
int stdio_attach_pty(struct shim *s, int master, char *err, size_t errlen);
int stdio_register(struct shim *s);
void stdio_release(struct shim *s);
void output_event(struct shim *s, struct output *o, uint32_t events);
void output_drain(struct shim *s);
void stdin_push(struct shim *s, const char *data, size_t len);
void stdin_event(struct shim *s, uint32_t events);
void stdin_close(struct shim *s);
bool stdin_accepting(const struct shim *s);

/* log.c */
int log_open(struct logfile *l, const char *path, long long max_size, int max_files);
void log_line(struct logfile *l, enum stream_id stream, const char *data, size_t len,
	      const struct timespec *ts);
void log_close(struct logfile *l);

/* json.c */
size_t json_escape(char *dst, const char *src, size_t len);
size_t json_time(char *dst, size_t cap, const struct timespec *ts);

/* attach.c */
int attach_listen(struct shim *s, char *err, size_t errlen);
void attach_accept(struct shim *s);
void attach_broadcast(struct shim *s, enum stream_id stream, const char *data, size_t len);
void attach_client_event(struct shim *s, struct attach_client *c, uint32_t events);
void attach_update_all(struct shim *s);
void attach_close_all(struct shim *s);

/* control.c */
int control_listen(struct shim *s, char *err, size_t errlen);
void control_accept(struct shim *s);
void control_client_event(struct shim *s, struct control_client *c, uint32_t events);
void control_close_all(struct shim *s);

/* exit.c */
void exit_reap(struct shim *s);
void exit_finish(struct shim *s);

/* loop.c */
int loop_init(struct shim *s);
int watch_set(struct shim *s, struct watch *w, uint32_t events);
void watch_close(struct shim *s, struct watch *w);
void loop_bury(struct shim *s, struct watch *client);
void loop_free_graveyard(struct shim *s);
void loop_run(struct shim *s);

/* util.c */
int write_all(int fd, const void *buf, size_t len);
int set_nonblock(int fd, bool on);
long long monotonic_ms(void);
int unix_listen(struct shim *s, const char *name, int backlog);
int write_file_atomic(int dir_fd, const char *name, const char *data, size_t len, bool durable);
void errorf(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
