/* history: the history file format, read and written.
 *
 * A history file is text, one operation per line:
 *
 *   lincheck-history 1
 *   # client op key value call_ns return_ns
 *   0 append "k0" "x 0 0 y" 1000 2500
 *   1 get "k0" "x 0 0 y" 2600 3100
 *   2 put "k1" "a\tb" 3000 -
 *
 * - The first line is exactly `lincheck-history 1` (the format version), so
 *   that any other file is refused at once.
 * - A line starting with `#` (after blanks) is a comment; blank lines are
 *   ignored. Fields are separated by spaces or tabs; a CR before the end of
 *   a line is ignored.
 * - client: a decimal integer, 0 to 4294967295.
 * - op: get, put or append.
 * - key, value: double-quoted strings with C escapes \" \\ \n \t \xHH
 *   (exactly two hex digits; any byte, NUL included). Other bytes stand
 *   for themselves. value is the input of a put or append and the output
 *   of a get (of a get that never returned it is ignored).
 * - call_ns, return_ns: decimal nanoseconds, 0 to 18446744073709551614,
 *   return_ns >= call_ns; return_ns is `-` for an op that never returned.
 *
 * Times are those of lincheck.h: closed intervals (an op that returned
 * at t overlaps one called at t). Ops may be listed in any order; their indices (as the
 * checker reports them) are their order in the file, from 0.
 *
 * Errors name the file, the line and what was expected:
 *   history.txt:12: expected a quoted key, found 'k1'
 * Thread safety: none needed; the calls keep no state. Ownership: as
 * lincheck.h; the caller frees a history read with lincheck_history_free.
 */
#ifndef RAFTLAB_LINCHECK_HISTORY_H
#define RAFTLAB_LINCHECK_HISTORY_H

#include <stdio.h>

#include "lincheck.h"

/* Lines longer than this are refused (a value of 16 MiB escapes to 64). */
#define LINCHECK_MAX_LINE (64u << 20)

/* Reads a history from f; name is used in messages. Returns 0 and sets
 * *out; or LINCHECK_EFORMAT (malformed), LINCHECK_EIO (read error) or
 * LINCHECK_ENOMEM, with a one-line message in err (errlen bytes, may be 0)
 * and *out NULL. */
int lincheck_history_read(FILE *f, const char *name, lincheck_history **out,
                          char *err, size_t errlen);
/* The same for a file path ("-" reads stdin). */
int lincheck_history_read_file(const char *path, lincheck_history **out,
                               char *err, size_t errlen);

/* Writes h to f in the format above; reading it back gives the same ops in
 * the same order. Returns 0 or LINCHECK_EIO. */
int lincheck_history_write(const lincheck_history *h, FILE *f);
/* The same to a file path (created or truncated; "-" is stdout). */
int lincheck_history_write_file(const lincheck_history *h, const char *path);

/* Writes n bytes of s as a quoted string with the escapes above. */
void lincheck_write_quoted(FILE *f, const char *s, size_t n);

#endif
