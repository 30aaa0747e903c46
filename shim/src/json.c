/*
 * JSON strings as Docker's json-file driver writes them: \" \\ \n \r escaped by name, other
 * control characters and < > & as \u00XX, U+2028 and U+2029 as \u2028 \u2029, and every
 * byte that does not start a valid UTF-8 sequence as \ufffd, so any output makes valid JSON.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "shim.h"

static const char hex[] = "0123456789abcdef";

/* Length of the valid UTF-8 sequence at s (at most n bytes), or 0 (Go's utf8.DecodeRune). */
static size_t utf8_valid(const unsigned char *s, size_t n, unsigned *cp)
{
	unsigned c = s[0];
	size_t need;
	unsigned lo = 0x80, hi = 0xbf, v;
	if (c >= 0xc2 && c <= 0xdf) {
		need = 2;
		v = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		need = 3;
		v = c & 0x0f;
		if (c == 0xe0)
			lo = 0xa0;
		else if (c == 0xed)
			hi = 0x9f; /* no surrogates */
	} else if (c >= 0xf0 && c <= 0xf4) {
		need = 4;
		v = c & 0x07;
		if (c == 0xf0)
			lo = 0x90;
		else if (c == 0xf4)
			hi = 0x8f;
	} else {
		return 0;
	}
	if (n < need)
		return 0;
	for (size_t i = 1; i < need; i++) {
		unsigned b = s[i];
		if (b < lo || b > hi)
			return 0;
		lo = 0x80;
		hi = 0xbf;
		v = (v << 6) | (b & 0x3f);
	}
	*cp = v;
	return need;
}

/* dst needs room for 6 bytes per input byte. Returns the bytes written, no quotes. */
size_t json_escape(char *dst, const char *src, size_t len)
{
	const unsigned char *s = (const unsigned char *)src;
	char *d = dst;
	size_t i = 0;
	while (i < len) {
		unsigned char b = s[i];
		if (b < 0x80) {
			if (b >= 0x20 && b != '\\' && b != '"' && b != '<' && b != '>' && b != '&') {
				*d++ = (char)b;
			} else if (b == '\\' || b == '"') {
				*d++ = '\\';
				*d++ = (char)b;
			} else if (b == '\n') {
				*d++ = '\\';
				*d++ = 'n';
			} else if (b == '\r') {
				*d++ = '\\';
				*d++ = 'r';
			} else {
				memcpy(d, "\\u00", 4);
				d[4] = hex[b >> 4];
				d[5] = hex[b & 0xf];
				d += 6;
			}
			i++;
			continue;
		}
		unsigned cp;
		size_t n = utf8_valid(s + i, len - i, &cp);
		if (n == 0) {
			memcpy(d, "\\ufffd", 6);
			d += 6;
			i++;
		} else if (cp == 0x2028 || cp == 0x2029) {
			memcpy(d, cp == 0x2028 ? "\\u2028" : "\\u2029", 6);
			d += 6;
			i += n;
		} else {
			memcpy(d, s + i, n);
			d += n;
			i += n;
		}
	}
	return (size_t)(d - dst);
}

/* RFC 3339 in UTC with nanoseconds, always nine digits: 2026-11-28T09:00:00.123456789Z */
size_t json_time(char *dst, size_t cap, const struct timespec *ts)
{
	struct tm tm;
	time_t sec = ts->tv_sec;
	gmtime_r(&sec, &tm);
	int n = snprintf(dst, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%09ldZ", tm.tm_year + 1900,
			 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (long)ts->tv_nsec);
	return n < 0 ? 0 : (size_t)n < cap ? (size_t)n : cap - 1;
}
