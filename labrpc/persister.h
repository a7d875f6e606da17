/* persister: where a Raft peer saves its state and snapshot so that they
 * survive a crash (6.5840's Persister). The harness hands one to each peer;
 * on crash it copies the persister, so the dead instance keeps writing into
 * the old copy and the restarted one reads the new.
 *
 * Raft state and snapshot are saved together, atomically: a reader never
 * sees the state of one save with the snapshot of another.
 * Every read and write copies the bytes: callers keep ownership of what they
 * pass in, and own (and free()) what they get back.
 *
 * Thread safety: every call is safe from any thread, concurrently, except
 * persister_free, which must be the last call on p.
 */
#ifndef RAFTLAB_PERSISTER_H
#define RAFTLAB_PERSISTER_H

#include <stddef.h>
#include <stdint.h>

typedef struct persister persister;

/* An empty persister, or NULL if out of memory. */
persister *persister_new(void);
/* A new persister holding copies of p's state and snapshot, or NULL. */
persister *persister_copy(persister *p);
void persister_free(persister *p);

/* Replaces both state and snapshot with copies of the given bytes. snapshot
 * may be NULL (with snap_len 0) to save an empty snapshot. Returns 0, or -1
 * if out of memory (then nothing changed). */
int persister_save(persister *p, const void *state, size_t state_len,
                   const void *snapshot, size_t snap_len);

/* Copies of the saved bytes, malloc'd for the caller to free(); *len gets
 * the size (0 if nothing was saved, and then the result is a valid empty
 * allocation). NULL only if out of memory. */
uint8_t *persister_read_state(persister *p, size_t *len);
uint8_t *persister_read_snapshot(persister *p, size_t *len);

size_t persister_state_size(persister *p);
size_t persister_snapshot_size(persister *p);

#endif
