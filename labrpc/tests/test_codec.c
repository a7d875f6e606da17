/* codec tests: round trips, and every way a message can be malformed. */
#include <CUnit/CUnit.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "suites.h"

/* A message with one of everything. */
static void encode_sample(codec_enc *e)
{
    codec_put_u32(e, 0xdeadbeefu);
    codec_put_u64(e, 0x0123456789abcdefull);
    codec_put_i32(e, -7);
    codec_put_i64(e, INT64_MIN);
    codec_put_bool(e, true);
    codec_put_bool(e, false);
    codec_put_bytes(e, "hello", 5);
    codec_put_bytes(e, NULL, 0);
    codec_put_list(e, 3);
    for (int i = 0; i < 3; i++) {
        codec_put_i32(e, i * 10);
        codec_put_bytes(e, "ab", 2);
    }
}

/* Decodes the sample; returns the decoder's final status. */
static int decode_sample(const uint8_t *p, size_t n, bool check_values)
{
    codec_dec d;
    codec_dec_init(&d, p, n);
    uint32_t a = codec_get_u32(&d);
    uint64_t b = codec_get_u64(&d);
    int32_t c = codec_get_i32(&d);
    int64_t e = codec_get_i64(&d);
    bool t = codec_get_bool(&d), f = codec_get_bool(&d);
    size_t len, len0;
    const uint8_t *s = codec_get_bytes(&d, 100, &len);
    const uint8_t *s0 = codec_get_bytes(&d, 100, &len0);
    uint32_t cnt = codec_get_list(&d, 10);
    int32_t items[3] = { -1, -1, -1 };
    for (uint32_t i = 0; i < cnt && i < 3; i++) {
        items[i] = codec_get_i32(&d);
        size_t l;
        codec_get_bytes(&d, 2, &l);
    }
    int rc = codec_dec_finish(&d);
    if (check_values) {
        CU_ASSERT_EQUAL(a, 0xdeadbeefu);
        CU_ASSERT_EQUAL(b, 0x0123456789abcdefull);
        CU_ASSERT_EQUAL(c, -7);
        CU_ASSERT_EQUAL(e, INT64_MIN);
        CU_ASSERT(t && !f);
        CU_ASSERT(s && len == 5 && memcmp(s, "hello", 5) == 0);
        CU_ASSERT(s0 != NULL && len0 == 0);
        CU_ASSERT_EQUAL(cnt, 3);
        CU_ASSERT(items[0] == 0 && items[1] == 10 && items[2] == 20);
    }
    return rc;
}

static void test_round_trip(void)
{
    codec_enc e;
    codec_enc_init(&e);
    encode_sample(&e);
    CU_ASSERT_EQUAL(codec_enc_err(&e), CODEC_OK);
    size_t n;
    uint8_t *p = codec_enc_take(&e, &n);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    CU_ASSERT_EQUAL(n, 4 + 8 + 4 + 8 + 1 + 1 + 9 + 4 + 4 + 3 * (4 + 6));
    CU_ASSERT_EQUAL(decode_sample(p, n, true), CODEC_OK);
    /* The layout is fixed little-endian. */
    CU_ASSERT(p[0] == 0xef && p[1] == 0xbe && p[2] == 0xad && p[3] == 0xde);
    free(p);
    CU_ASSERT_PTR_NULL(e.buf);  /* taken: e is empty again */
    codec_enc_free(&e);
}

static void test_every_prefix_truncated(void)
{
    codec_enc e;
    codec_enc_init(&e);
    encode_sample(&e);
    for (size_t n = 0; n < e.len; n++) {
        /* A heap copy of exactly n bytes, so valgrind sees any over-read. */
        uint8_t *p = malloc(n ? n : 1);
        CU_ASSERT_PTR_NOT_NULL_FATAL(p);
        memcpy(p, e.buf, n);
        CU_ASSERT_EQUAL(decode_sample(p, n, false), CODEC_ETRUNC);
        free(p);
    }
    codec_enc_free(&e);
}

static void test_trailing(void)
{
    codec_enc e;
    codec_enc_init(&e);
    encode_sample(&e);
    codec_put_raw(&e, "x", 1);
    CU_ASSERT_EQUAL(decode_sample(e.buf, e.len, false), CODEC_ETRAILING);
    codec_dec d;
    codec_dec_init(&d, e.buf, e.len);
    codec_get_u32(&d);
    CU_ASSERT_EQUAL(codec_dec_remaining(&d), e.len - 4);
    CU_ASSERT_EQUAL(codec_dec_finish(&d), CODEC_ETRAILING);
    char msg[200];
    codec_dec_describe(&d, msg, sizeof msg);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "offset 4"));
    codec_enc_free(&e);
}

static void test_absurd_lengths(void)
{
    codec_enc e;
    codec_enc_init(&e);
    codec_put_u32(&e, 0xffffffffu);     /* as a bytes length or list count */
    codec_put_raw(&e, "abc", 3);
    codec_dec d;
    size_t n;
    codec_dec_init(&d, e.buf, e.len);
    CU_ASSERT_PTR_NULL(codec_get_bytes(&d, 1 << 20, &n));
    CU_ASSERT_EQUAL(n, 0);
    CU_ASSERT_EQUAL(codec_dec_err(&d), CODEC_ETOOBIG);
    /* Within the maximum but past the end: truncated, not an over-read. */
    codec_dec_init(&d, e.buf, e.len);
    CU_ASSERT_PTR_NULL(codec_get_bytes(&d, SIZE_MAX, &n));
    CU_ASSERT_EQUAL(codec_dec_err(&d), CODEC_ETRUNC);
    codec_dec_init(&d, e.buf, e.len);
    CU_ASSERT_EQUAL(codec_get_list(&d, 1000), 0);
    CU_ASSERT_EQUAL(codec_dec_err(&d), CODEC_ETOOBIG);
    /* Sticky: later reads return zero and keep the first error. */
    CU_ASSERT_EQUAL(codec_get_u32(&d), 0);
    CU_ASSERT_EQUAL(codec_dec_finish(&d), CODEC_ETOOBIG);
    char msg[200];
    codec_dec_describe(&d, msg, sizeof msg);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "list count"));
    codec_enc_free(&e);
}

static void test_garbage(void)
{
    uint8_t junk[2] = { 7, 0 };     /* not a bool */
    codec_dec d;
    codec_dec_init(&d, junk, sizeof junk);
    CU_ASSERT_FALSE(codec_get_bool(&d));
    CU_ASSERT_EQUAL(codec_dec_err(&d), CODEC_EINVAL);
    codec_dec_init(&d, NULL, 10);   /* no input at all */
    CU_ASSERT_EQUAL(codec_get_u64(&d), 0);
    CU_ASSERT_EQUAL(codec_dec_err(&d), CODEC_ETRUNC);
    /* Pseudo-random bytes never crash the decoder. */
    unsigned seed = 1;
    for (int round = 0; round < 2000; round++) {
        size_t n = (size_t)(rand_r(&seed) % 64);
        uint8_t *p = malloc(n ? n : 1);
        CU_ASSERT_PTR_NOT_NULL_FATAL(p);
        for (size_t i = 0; i < n; i++)
            p[i] = (uint8_t)(rand_r(&seed) % 4 ? rand_r(&seed) % 3 : rand_r(&seed));
        int rc = decode_sample(p, n, false);
        CU_ASSERT(rc != CODEC_ENOMEM);
        free(p);
    }
}

static void test_dup_and_reuse(void)
{
    codec_enc e;
    codec_enc_init(&e);
    codec_put_bytes(&e, "raft", 4);
    codec_dec d;
    codec_dec_init(&d, e.buf, e.len);
    size_t n;
    uint8_t *s = codec_get_bytes_dup(&d, 16, &n);
    CU_ASSERT(s && n == 4 && strcmp((char *)s, "raft") == 0);
    free(s);
    CU_ASSERT_EQUAL(codec_dec_finish(&d), CODEC_OK);
    /* Reset keeps the buffer; an empty message is still a valid take. */
    codec_enc_reset(&e);
    CU_ASSERT_EQUAL(e.len, 0);
    uint8_t *p = codec_enc_take(&e, &n);
    CU_ASSERT(p != NULL && n == 0);
    free(p);
    codec_enc empty;
    codec_enc_init(&empty);
    p = codec_enc_take(&empty, &n);
    CU_ASSERT(p != NULL && n == 0);
    free(p);
    /* A large message grows the buffer. */
    for (int i = 0; i < 100000; i++)
        codec_put_u64(&e, (uint64_t)i);
    CU_ASSERT_EQUAL(e.len, 800000);
    codec_enc_free(&e);
    CU_ASSERT_STRING_EQUAL(codec_strerror(CODEC_ETRUNC), "truncated message");
}

/* Truncate undoes puts from the end; what follows decodes as if the cut
 * part had never been written. */
static void test_truncate(void)
{
    codec_enc e;
    codec_enc_init(&e);
    codec_put_i32(&e, 1);
    size_t mark = e.len;
    codec_put_bytes(&e, "gone", 4);
    codec_enc_truncate(&e, mark);
    CU_ASSERT_EQUAL(e.len, mark);
    codec_enc_truncate(&e, mark + 100);     /* beyond the end: no-op */
    CU_ASSERT_EQUAL(e.len, mark);
    codec_put_bytes(&e, "kept", 4);
    codec_dec d;
    codec_dec_init(&d, e.buf, e.len);
    CU_ASSERT_EQUAL(codec_get_i32(&d), 1);
    size_t n;
    uint8_t *s = codec_get_bytes_dup(&d, 16, &n);
    CU_ASSERT(s && n == 4 && memcmp(s, "kept", 4) == 0);
    free(s);
    CU_ASSERT_EQUAL(codec_dec_finish(&d), CODEC_OK);
    codec_enc_free(&e);
}

static const suite_test tests[] = {
    { "round_trip", test_round_trip },
    { "truncate", test_truncate },
    { "every_prefix_truncated", test_every_prefix_truncated },
    { "trailing", test_trailing },
    { "absurd_lengths", test_absurd_lengths },
    { "garbage", test_garbage },
    { "dup_and_reuse", test_dup_and_reuse },
    { NULL, NULL },
};

const suite_def codec_suite = { "codec", tests };
