/* codec: explicit encoding of RPC messages and persisted state (labgob's
 * counterpart). Values are written in a fixed little-endian layout:
 *   u32/i32: 4 bytes; u64/i64: 8 bytes; bool: 1 byte (0 or 1);
 *   bytes: u32 length then the bytes; list: u32 count then the items.
 *
 * Errors are sticky: after the first error every put/get is a no-op (gets
 * return 0 / NULL) and codec_enc_err / codec_dec_err report that first error,
 * so a caller may encode or decode a whole message and check once at the end.
 * A truncated or malformed input is an error, never a crash or a read out of
 * bounds.
 *
 * Thread safety: an encoder or decoder belongs to one thread at a time; the
 * functions keep no global state.
 */
#ifndef RAFTLAB_CODEC_H
#define RAFTLAB_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
    CODEC_OK = 0,
    CODEC_ENOMEM = 1,   /* encoder could not grow its buffer */
    CODEC_ETRUNC = 2,   /* input ended inside a value */
    CODEC_ETOOBIG = 3,  /* a length or count over the caller's maximum */
    CODEC_ETRAILING = 4,/* codec_dec_finish: bytes left after the message */
    CODEC_EINVAL = 5,   /* a value that cannot be valid (a bool other than 0/1) */
};

/* A growable output buffer. Zero-initialised (or codec_enc_init) is empty
 * and valid. The encoder owns buf until codec_enc_take hands it over. */
typedef struct codec_enc {
    uint8_t *buf;
    size_t len;
    size_t cap;
    int err;
} codec_enc;

void codec_enc_init(codec_enc *e);
/* Frees the buffer (unless taken) and resets e to empty. */
void codec_enc_free(codec_enc *e);
/* Empties e, keeping its buffer for reuse, and clears its error. */
void codec_enc_reset(codec_enc *e);
/* Cuts e back to its first len bytes (no-op if len >= e->len), so that an
 * encoding can be undone from its end. */
void codec_enc_truncate(codec_enc *e, size_t len);

void codec_put_u32(codec_enc *e, uint32_t v);
void codec_put_u64(codec_enc *e, uint64_t v);
void codec_put_i32(codec_enc *e, int32_t v);
void codec_put_i64(codec_enc *e, int64_t v);
void codec_put_bool(codec_enc *e, bool v);
/* Length-prefixed byte string; p may be NULL when n == 0. */
void codec_put_bytes(codec_enc *e, const void *p, size_t n);
/* Starts a list of count items; the caller then puts each item. */
void codec_put_list(codec_enc *e, uint32_t count);
/* Appends n raw bytes without a length prefix. */
void codec_put_raw(codec_enc *e, const void *p, size_t n);

/* CODEC_OK or the first error. */
int codec_enc_err(const codec_enc *e);
/* Hands the encoded bytes to the caller, who must free() them; *len gets the
 * size. Returns NULL (and frees nothing the caller owns) if the encoder has
 * an error; for an empty message it returns a valid 1-byte allocation with
 * *len = 0. e is left empty. */
uint8_t *codec_enc_take(codec_enc *e, size_t *len);

/* A bounded reader over bytes the caller owns and keeps alive while the
 * decoder is in use. */
typedef struct codec_dec {
    const uint8_t *p;
    size_t len;
    size_t off;
    int err;
    size_t err_off;     /* where the first error happened */
    const char *err_what; /* what was being read then ("u32", "bytes" ...) */
} codec_dec;

void codec_dec_init(codec_dec *d, const void *p, size_t len);

uint32_t codec_get_u32(codec_dec *d);
uint64_t codec_get_u64(codec_dec *d);
int32_t codec_get_i32(codec_dec *d);
int64_t codec_get_i64(codec_dec *d);
bool codec_get_bool(codec_dec *d);
/* A byte string of at most max bytes. Returns a pointer into the decoder's
 * input (borrowed: valid while the input is) and its size in *n; NULL with
 * *n = 0 on error. An empty string returns a non-NULL pointer. */
const uint8_t *codec_get_bytes(codec_dec *d, size_t max, size_t *n);
/* The same, copied into a fresh malloc'd buffer the caller must free()
 * (NUL-terminated one byte past *n, for convenience with strings). */
uint8_t *codec_get_bytes_dup(codec_dec *d, size_t max, size_t *n);
/* A list count of at most max items. */
uint32_t codec_get_list(codec_dec *d, uint32_t max);

/* Bytes not yet read. */
size_t codec_dec_remaining(const codec_dec *d);
/* CODEC_OK or the first error. */
int codec_dec_err(const codec_dec *d);
/* Ends decoding: returns the first error, or CODEC_ETRAILING if input is
 * left over, or CODEC_OK. */
int codec_dec_finish(codec_dec *d);
/* Writes a one-line description of d's error, e.g.
 * "truncated message: needed 4 bytes for u32 at offset 12 of 14". */
void codec_dec_describe(const codec_dec *d, char *buf, size_t bufsize);

/* A short name for an error code. */
const char *codec_strerror(int err);

#endif
