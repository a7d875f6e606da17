/* trace: the events of one test run, recorded by the kit (labrpc through
 * cfg, the harness) and by the student's raft_note, printed at the end of a
 * failing run (or of every run with RAFTLAB_TRACE=1) in the format of
 * FORMAT.md, for the grader to turn into a picture (html.c).
 *
 * Two rings of slots, each keeping the latest events: one for the harness's
 * own events (connect, crash, state, check, failure...), one for the bulk
 * (RPCs, applies, notes), so that a long run's RPCs never push out who was
 * cut off when. A full ring drops its oldest events and says how many.
 *
 * Cost and the sim schedule: recording formats a line into a slot. In real
 * time it takes one plain mutex (a leaf: callers may hold their own locks)
 * and reads CLOCK_MONOTONIC. In sim mode it takes no lock and reads the
 * virtual clock without a scheduling point (sim_now_ns), since only one
 * thread runs at a time there: recording never changes the schedule.
 *
 * One trace a process (one test a process): trace_start makes it,
 * trace_finish prints and frees it. Thread safety: trace_event, trace_note
 * and trace_enabled from any thread between the two; trace_start,
 * trace_meta and trace_finish from the test's own thread.
 */
#ifndef RAFTLAB_TRACE_H
#define RAFTLAB_TRACE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* Slots per ring; a slot holds a line of at most TRACE_LINE - 1 bytes. */
#define TRACE_HARNESS_EVENTS 20000
#define TRACE_BULK_EVENTS 50000
#define TRACE_LINE 120

typedef enum trace_ring { TRACE_HARNESS, TRACE_BULK } trace_ring;

/* Starts recording (time 0 is now), unless RAFTLAB_TRACE=0. Returns 0, or
 * -1 if out of memory (then nothing is recorded). */
int trace_start(void);
bool trace_enabled(void);
/* A header line: meta <key> "<value>". At most 16. */
void trace_meta(const char *key, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* One event: the line after the time and step, e.g. "crash s2". */
void trace_event(trace_ring ring, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void trace_eventv(trace_ring ring, const char *fmt, va_list ap);
/* Writes s (n bytes) quoted with C escapes into dst (size >= 6), cut to fit
 * (ending in ...). Returns dst. */
char *trace_quote(char *dst, size_t size, const char *s, size_t n);
/* Prints the block to f if print, then frees everything. */
void trace_finish(FILE *f, bool print);

#endif
