/* The command line: what the daemon asks for. See README.md for the contract. */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "shim.h"

enum {
	OPT_ID = 256,
	OPT_BUNDLE,
	OPT_STATE_DIR,
	OPT_RUNTIME,
	OPT_RUNTIME_ROOT,
	OPT_LOG_PATH,
	OPT_LOG_MAX_SIZE,
	OPT_LOG_MAX_FILES,
	OPT_TERMINAL,
	OPT_STDIN,
	OPT_STDIN_ONCE,
	OPT_EXEC,
	OPT_WAIT_ATTACH,
};

static const struct option long_options[] = {
	{ "id", required_argument, NULL, OPT_ID },
	{ "bundle", required_argument, NULL, OPT_BUNDLE },
	{ "state-dir", required_argument, NULL, OPT_STATE_DIR },
	{ "runtime", required_argument, NULL, OPT_RUNTIME },
	{ "runtime-root", required_argument, NULL, OPT_RUNTIME_ROOT },
	{ "log-path", required_argument, NULL, OPT_LOG_PATH },
	{ "log-max-size", required_argument, NULL, OPT_LOG_MAX_SIZE },
	{ "log-max-files", required_argument, NULL, OPT_LOG_MAX_FILES },
	{ "terminal", no_argument, NULL, OPT_TERMINAL },
	{ "stdin", no_argument, NULL, OPT_STDIN },
	{ "stdin-once", no_argument, NULL, OPT_STDIN_ONCE },
	{ "exec", required_argument, NULL, OPT_EXEC },
	{ "wait-attach", no_argument, NULL, OPT_WAIT_ATTACH },
	{ NULL, 0, NULL, 0 },
};

static int parse_count(const char *text, long long *out)
{
	char *end;
	errno = 0;
	long long v = strtoll(text, &end, 10);
	if (errno || end == text || *end || v < 0)
		return -1;
	*out = v;
	return 0;
}

int args_parse(struct options *o, int argc, char **argv, char *err, size_t errlen)
{
	memset(o, 0, sizeof *o);
	o->log_max_files = 1;
	opterr = 0;
	optind = 1;
	for (;;) {
		int prev = optind;
		int c = getopt_long(argc, argv, "", long_options, NULL);
		if (c == -1)
			break;
		long long n;
		switch (c) {
		case OPT_ID: o->id = optarg; break;
		case OPT_BUNDLE: o->bundle = optarg; break;
		case OPT_STATE_DIR: o->state_dir = optarg; break;
		case OPT_RUNTIME: o->runtime = optarg; break;
		case OPT_RUNTIME_ROOT: o->runtime_root = optarg; break;
		case OPT_LOG_PATH: o->log_path = optarg; break;
		case OPT_TERMINAL: o->terminal = true; break;
		case OPT_STDIN: o->stdin_open = true; break;
		case OPT_STDIN_ONCE: o->stdin_once = true; break;
		case OPT_EXEC: o->exec_process = optarg; break;
		case OPT_WAIT_ATTACH: o->wait_attach = true; break;
		case OPT_LOG_MAX_SIZE:
			if (parse_count(optarg, &n) < 0) {
				errorf(err, errlen, "--log-max-size: not a byte count: %s", optarg);
				return -1;
			}
			o->log_max_size = n;
			break;
		case OPT_LOG_MAX_FILES:
			if (parse_count(optarg, &n) < 0 || n > 1000) {
				errorf(err, errlen, "--log-max-files: not a count from 0 to 1000: %s", optarg);
				return -1;
			}
			/* docker's max-file counts the live file, so 0 and 1 both keep one file */
			o->log_max_files = n < 1 ? 1 : (int)n;
			break;
		default:
			if (optopt && optopt != '?')
				errorf(err, errlen, "option needs a value: %s", argv[prev]);
			else
				errorf(err, errlen, "unknown option: %s", argv[optind - 1]);
			return -1;
		}
	}
	if (optind < argc) {
		errorf(err, errlen, "unexpected argument: %s", argv[optind]);
		return -1;
	}
	const char *missing = !o->id ? "--id"
		: !o->state_dir ? "--state-dir"
		: !o->runtime ? "--runtime"
		: !o->log_path ? "--log-path"
		: !o->bundle && !o->exec_process ? "--bundle"
		: NULL;
	if (missing) {
		errorf(err, errlen, "missing required option %s", missing);
		return -1;
	}
	/* like docker, stdin-once means nothing without an open stdin */
	if (!o->stdin_open)
		o->stdin_once = false;
	return 0;
}
