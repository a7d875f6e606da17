/* codec: see codec.h. Fixed little-endian layout, sticky errors. */
#include "codec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void codec_enc_init(codec_enc *e) { memset(e, 0, sizeof *e); }

void codec_enc_free(codec_enc *e)
{
    free(e->buf);
    memset(e, 0, sizeof *e);
}

void codec_enc_reset(codec_enc *e)
{
    e->len = 0;
    e->err = CODEC_OK;
}

void codec_enc_truncate(codec_enc *e, size_t len)
{
    if (len < e->len)
        e->len = len;
}

/* Room for n more bytes, growing geometrically; false sets ENOMEM. */
static bool reserve(codec_enc *e, size_t n)
{
    if (e->err)
        return false;
    if (n <= e->cap - e->len)
        return true;
    if (n > SIZE_MAX / 2 - e->len) {
        e->err = CODEC_ENOMEM;
        return false;
    }
    size_t cap = e->cap ? e->cap : 64;
    while (cap - e->len < n)
        cap *= 2;
    uint8_t *p = realloc(e->buf, cap);
    if (!p) {
        e->err = CODEC_ENOMEM;
        return false;
    }
    e->buf = p;
    e->cap = cap;
    return true;
}

void codec_put_raw(codec_enc *e, const void *p, size_t n)
{
    if (n == 0 || !reserve(e, n))
        return;
    memcpy(e->buf + e->len, p, n);
    e->len += n;
}

static void put_le(codec_enc *e, uint64_t v, size_t width)
{
    if (!reserve(e, width))
        return;
    for (size_t i = 0; i < width; i++)
        e->buf[e->len + i] = (uint8_t)(v >> (8 * i));
    e->len += width;
}

void codec_put_u32(codec_enc *e, uint32_t v) { put_le(e, v, 4); }
void codec_put_u64(codec_enc *e, uint64_t v) { put_le(e, v, 8); }
void codec_put_i32(codec_enc *e, int32_t v) { put_le(e, (uint32_t)v, 4); }
void codec_put_i64(codec_enc *e, int64_t v) { put_le(e, (uint64_t)v, 8); }
void codec_put_bool(codec_enc *e, bool v) { put_le(e, v ? 1 : 0, 1); }
void codec_put_list(codec_enc *e, uint32_t count) { put_le(e, count, 4); }

void codec_put_bytes(codec_enc *e, const void *p, size_t n)
{
    if (n > UINT32_MAX) {
        if (!e->err)
            e->err = CODEC_ETOOBIG;
        return;
    }
    put_le(e, n, 4);
    codec_put_raw(e, p, n);
}

int codec_enc_err(const codec_enc *e) { return e->err; }

uint8_t *codec_enc_take(codec_enc *e, size_t *len)
{
    *len = 0;
    if (e->err) {
        codec_enc_free(e);
        return NULL;
    }
    uint8_t *p = e->buf;
    size_t n = e->len;
    if (!p && !(p = malloc(1)))
        return NULL;
    memset(e, 0, sizeof *e);
    *len = n;
    return p;
}

void codec_dec_init(codec_dec *d, const void *p, size_t len)
{
    memset(d, 0, sizeof *d);
    d->p = p;
    d->len = p ? len : 0;
}

static void fail(codec_dec *d, int err, const char *what)
{
    if (d->err)
        return;
    d->err = err;
    d->err_off = d->off;
    d->err_what = what;
}

/* The next n bytes, or NULL (and ETRUNC) if fewer remain. */
static const uint8_t *take(codec_dec *d, size_t n, const char *what)
{
    if (d->err)
        return NULL;
    if (n > d->len - d->off) {
        fail(d, CODEC_ETRUNC, what);
        return NULL;
    }
    const uint8_t *p = d->p + d->off;
    d->off += n;
    return p;
}

static uint64_t get_le(codec_dec *d, size_t width, const char *what)
{
    const uint8_t *p = take(d, width, what);
    uint64_t v = 0;
    if (!p)
        return 0;
    for (size_t i = 0; i < width; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

uint32_t codec_get_u32(codec_dec *d) { return (uint32_t)get_le(d, 4, "u32"); }
uint64_t codec_get_u64(codec_dec *d) { return get_le(d, 8, "u64"); }
int32_t codec_get_i32(codec_dec *d) { return (int32_t)(uint32_t)get_le(d, 4, "i32"); }
int64_t codec_get_i64(codec_dec *d) { return (int64_t)get_le(d, 8, "i64"); }

bool codec_get_bool(codec_dec *d)
{
    size_t at = d->off;
    uint64_t v = get_le(d, 1, "bool");
    if (v > 1) {
        d->off = at;
        fail(d, CODEC_EINVAL, "bool");
        return false;
    }
    return v == 1;
}

uint32_t codec_get_list(codec_dec *d, uint32_t max)
{
    size_t at = d->off;
    uint32_t n = (uint32_t)get_le(d, 4, "list count");
    if (!d->err && n > max) {
        d->off = at;
        fail(d, CODEC_ETOOBIG, "list count");
        return 0;
    }
    return d->err ? 0 : n;
}

const uint8_t *codec_get_bytes(codec_dec *d, size_t max, size_t *n)
{
    *n = 0;
    size_t at = d->off;
    uint32_t len = (uint32_t)get_le(d, 4, "bytes length");
    if (d->err)
        return NULL;
    if (len > max) {
        d->off = at;
        fail(d, CODEC_ETOOBIG, "bytes length");
        return NULL;
    }
    const uint8_t *p = take(d, len, "bytes");
    if (!p)
        return NULL;
    *n = len;
    return p;
}

uint8_t *codec_get_bytes_dup(codec_dec *d, size_t max, size_t *n)
{
    size_t len;
    const uint8_t *p = codec_get_bytes(d, max, &len);
    *n = 0;
    if (!p)
        return NULL;
    uint8_t *copy = malloc(len + 1);
    if (!copy) {
        fail(d, CODEC_ENOMEM, "bytes");
        return NULL;
    }
    memcpy(copy, p, len);
    copy[len] = 0;
    *n = len;
    return copy;
}

size_t codec_dec_remaining(const codec_dec *d) { return d->len - d->off; }

int codec_dec_err(const codec_dec *d) { return d->err; }

int codec_dec_finish(codec_dec *d)
{
    if (!d->err && d->off != d->len)
        fail(d, CODEC_ETRAILING, "end of message");
    return d->err;
}

void codec_dec_describe(const codec_dec *d, char *buf, size_t bufsize)
{
    if (!bufsize)
        return;
    if (!d->err) {
        snprintf(buf, bufsize, "no error");
        return;
    }
    snprintf(buf, bufsize, "%s: reading %s at offset %zu of a %zu-byte message",
             codec_strerror(d->err), d->err_what ? d->err_what : "?",
             d->err_off, d->len);
}

const char *codec_strerror(int err)
{
    switch (err) {
    case CODEC_OK: return "no error";
    case CODEC_ENOMEM: return "out of memory";
    case CODEC_ETRUNC: return "truncated message";
    case CODEC_ETOOBIG: return "length over the allowed maximum";
    case CODEC_ETRAILING: return "unexpected bytes after the message";
    case CODEC_EINVAL: return "invalid value";
    }
    return "unknown codec error";
}
