/* html: the picture of a run. The grader (not the process under test)
 * copies the trace block a test printed (trace.h, FORMAT.md) out of the
 * run's log into viewer.html, as one self-contained HTML file.
 *
 * The block comes from a process that ran student code: it is only data.
 * It is inlined as a JavaScript string whose every byte that could end the
 * string or the script (quotes, backslashes, <, >, &, controls, non-ASCII)
 * is escaped, so no block can run code in the page; a forged block only
 * misleads its own picture, never the verdict.
 *
 * Thread safety: none needed (no state). */
#ifndef RAFTLAB_TRACE_HTML_H
#define RAFTLAB_TRACE_HTML_H

#include <stdbool.h>
#include <stddef.h>

/* Largest block copied; beyond it the picture says the trace was cut. */
#define HTML_MAX_TRACE_BYTES ((size_t)16 << 20)

/* Writes out (through a temporary file and a rename: never half-written)
 * from the template at tmpl and the block in log. Returns 0; 1 if log holds
 * no block; -1 with a one-line reason in err (errlen bytes) on an error. */
int html_write(const char *log, const char *tmpl, const char *out, char *err, size_t errlen);

#endif
