/* history: reading and writing history files (format in history.h). */
#include "history.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

typedef struct reader {
    FILE *f;
    const char *name;
    size_t lineno;
    char *line;             /* the current line, without its newline */
    size_t len, cap;
    char *buf;              /* a decoded string */
    size_t blen, bcap;
    char *err;
    size_t errlen;
} reader;

static int fail(reader *r, int code, const char *fmt, ...)
{
    if (r->errlen == 0)
        return code;
    int n = r->lineno ? snprintf(r->err, r->errlen, "%s:%zu: ", r->name, r->lineno)
                      : snprintf(r->err, r->errlen, "%s: ", r->name);
    if (n >= 0 && (size_t)n < r->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(r->err + n, r->errlen - n, fmt, ap);
        va_end(ap);
    }
    return code;
}

static int push(char **buf, size_t *len, size_t *cap, char c)
{
    if (*len + 1 >= *cap) {
        size_t n = *cap ? *cap * 2 : 256;
        char *p = realloc(*buf, n);
        if (!p)
            return -1;
        *buf = p;
        *cap = n;
    }
    (*buf)[(*len)++] = c;
    return 0;
}

/* Reads the next line: 1 read, 0 end of file, or an error code. */
static int read_line(reader *r)
{
    r->len = 0;
    int c = getc(r->f);
    if (c == EOF)
        return ferror(r->f) ? fail(r, LINCHECK_EIO, "read error: %s", strerror(errno)) : 0;
    r->lineno++;
    bool nul = false;
    for (; c != EOF && c != '\n'; c = getc(r->f)) {
        if (r->len >= LINCHECK_MAX_LINE)
            return fail(r, LINCHECK_EFORMAT, "line longer than %u bytes", LINCHECK_MAX_LINE);
        nul |= c == '\0';
        if (push(&r->line, &r->len, &r->cap, (char)c))
            return fail(r, LINCHECK_ENOMEM, "out of memory");
    }
    if (c == EOF && ferror(r->f))
        return fail(r, LINCHECK_EIO, "read error: %s", strerror(errno));
    if (nul)
        return fail(r, LINCHECK_EFORMAT, "NUL byte in the line (is this a text file?)");
    if (r->len && r->line[r->len - 1] == '\r')
        r->len--;
    if (push(&r->line, &r->len, &r->cap, '\0'))
        return fail(r, LINCHECK_ENOMEM, "out of memory");
    r->len--;
    return 1;
}

static bool blank(char c)
{
    return c == ' ' || c == '\t';
}

static const char *skip_blanks(const char *p)
{
    while (blank(*p))
        p++;
    return p;
}

/* The token at p for a message, printable and short: "'k1'". */
static const char *token(const char *p, char *out, size_t outlen)
{
    if (*p == '\0')
        return "the end of the line";
    size_t n = 0;
    out[n++] = '\'';
    for (; *p && !blank(*p) && n + 8 < outlen; p++) {
        unsigned char c = (unsigned char)*p;
        if (c < 0x20 || c >= 0x7f)
            n += snprintf(out + n, outlen - n, "\\x%02x", c);
        else
            out[n++] = (char)c;
    }
    if (*p && !blank(*p))
        n += snprintf(out + n, outlen - n, "...");
    out[n++] = '\'';
    out[n] = '\0';
    return out;
}

/* An unsigned decimal at *pp (advanced): 1 ok, 0 not a number, -1 overflow. */
static int parse_u64(const char **pp, uint64_t *v)
{
    const char *p = *pp;
    if (*p < '0' || *p > '9')
        return 0;
    uint64_t x = 0;
    int over = 0;
    for (; *p >= '0' && *p <= '9'; p++) {
        unsigned d = (unsigned)(*p - '0');
        if (x > (UINT64_MAX - d) / 10)
            over = 1;
        else
            x = x * 10 + d;
    }
    if (*p && !blank(*p))
        return 0;
    *pp = p;
    *v = x;
    return over ? -1 : 1;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* A quoted string at *pp into r->buf/r->blen; what names it in messages. */
static int parse_quoted(reader *r, const char **pp, const char *what)
{
    char tok[64];
    const char *p = *pp;
    if (*p != '"')
        return fail(r, LINCHECK_EFORMAT, "expected a quoted %s, found %s", what, token(p, tok, sizeof tok));
    p++;
    r->blen = 0;
    for (;;) {
        char c = *p++;
        if (c == '\0')
            return fail(r, LINCHECK_EFORMAT, "the quoted %s has no closing '\"'", what);
        if (c == '"')
            break;
        if (c == '\\') {
            char e = *p++;
            switch (e) {
            case '"': case '\\': c = e; break;
            case 'n': c = '\n'; break;
            case 't': c = '\t'; break;
            case 'x': {
                int hi = hexval(p[0]), lo = hi < 0 ? -1 : hexval(p[1]);
                if (lo < 0)
                    return fail(r, LINCHECK_EFORMAT, "in the %s: \\x needs two hex digits", what);
                c = (char)(hi * 16 + lo);
                p += 2;
                break;
            }
            case '\0':
                return fail(r, LINCHECK_EFORMAT, "the quoted %s has no closing '\"'", what);
            default:
                return fail(r, LINCHECK_EFORMAT, "in the %s: unknown escape '\\%c' "
                            "(use \\\" \\\\ \\n \\t or \\xHH)", what,
                            (unsigned char)e >= 0x20 && (unsigned char)e < 0x7f ? e : '?');
            }
        }
        if (push(&r->buf, &r->blen, &r->bcap, c))
            return fail(r, LINCHECK_ENOMEM, "out of memory");
    }
    if (*p && !blank(*p))
        return fail(r, LINCHECK_EFORMAT, "expected a space after the quoted %s", what);
    *pp = p;
    return 0;
}

static int parse_header(reader *r)
{
    char tok[64];
    const char *p = skip_blanks(r->line);
    static const char magic[] = "lincheck-history";
    if (strncmp(p, magic, sizeof magic - 1) != 0 || (p[sizeof magic - 1] && !blank(p[sizeof magic - 1])))
        return fail(r, LINCHECK_EFORMAT, "not a lincheck history: expected 'lincheck-history 1' "
                    "as the first line, found %s", token(p, tok, sizeof tok));
    p = skip_blanks(p + sizeof magic - 1);
    const char *vs = p;
    uint64_t v;
    int rc = parse_u64(&p, &v);
    if (rc == 0 || *skip_blanks(p))
        return fail(r, LINCHECK_EFORMAT, "expected a format version (1) after 'lincheck-history', found %s",
                    token(vs, tok, sizeof tok));
    if (rc < 0 || v != 1)
        return fail(r, LINCHECK_EFORMAT, "format version %s is not supported (this lincheck reads version 1)",
                    token(vs, tok, sizeof tok));
    return 0;
}

static int parse_time(reader *r, const char **pp, const char *what, uint64_t *t)
{
    char tok[64];
    const char *start = *pp;
    int rc = parse_u64(pp, t);
    if (rc == 0)
        return fail(r, LINCHECK_EFORMAT, "expected the %s in ns (a non-negative integer%s), found %s",
                    what, strcmp(what, "return time") == 0 ? " or '-'" : "", token(start, tok, sizeof tok));
    if (rc < 0 || *t == LINCHECK_NEVER)
        return fail(r, LINCHECK_EFORMAT, "the %s %s is too large (at most 18446744073709551614)",
                    what, token(start, tok, sizeof tok));
    return 0;
}

static int parse_op(reader *r, lincheck_history *h)
{
    char tok[64];
    const char *p = skip_blanks(r->line);
    lincheck_op op = { 0 };
    uint64_t v;
    const char *start = p;
    int rc = parse_u64(&p, &v);
    if (rc == 0)
        return fail(r, LINCHECK_EFORMAT, "expected a client number, found %s", token(start, tok, sizeof tok));
    if (rc < 0 || v > UINT32_MAX)
        return fail(r, LINCHECK_EFORMAT, "client number %s is too large (at most 4294967295)",
                    token(start, tok, sizeof tok));
    op.client = (uint32_t)v;
    p = skip_blanks(p);
    size_t n = 0;
    while (p[n] && !blank(p[n]))
        n++;
    if (n == 3 && strncmp(p, "get", 3) == 0)
        op.kind = LINCHECK_GET;
    else if (n == 3 && strncmp(p, "put", 3) == 0)
        op.kind = LINCHECK_PUT;
    else if (n == 6 && strncmp(p, "append", 6) == 0)
        op.kind = LINCHECK_APPEND;
    else
        return fail(r, LINCHECK_EFORMAT, "expected get, put or append, found %s", token(p, tok, sizeof tok));
    p = skip_blanks(p + n);
    if ((rc = parse_quoted(r, &p, "key")))
        return rc;
    /* The key moves out of r->buf before the value is decoded there. */
    char *key = malloc(r->blen + 1);
    if (!key)
        return fail(r, LINCHECK_ENOMEM, "out of memory");
    if (r->blen)
        memcpy(key, r->buf, r->blen);
    op.key = key;
    op.key_len = r->blen;
    p = skip_blanks(p);
    if ((rc = parse_quoted(r, &p, "value")))
        goto out;
    op.value = r->buf;
    op.value_len = r->blen;
    p = skip_blanks(p);
    if ((rc = parse_time(r, &p, "call time", &op.call_ns)))
        goto out;
    p = skip_blanks(p);
    if (*p == '-' && (p[1] == '\0' || blank(p[1]))) {
        op.return_ns = LINCHECK_NEVER;
        p++;
    } else if ((rc = parse_time(r, &p, "return time", &op.return_ns))) {
        goto out;
    } else if (op.return_ns < op.call_ns) {
        rc = fail(r, LINCHECK_EFORMAT, "the return time %llu is before the call time %llu",
                  (unsigned long long)op.return_ns, (unsigned long long)op.call_ns);
        goto out;
    }
    p = skip_blanks(p);
    if (*p) {
        rc = fail(r, LINCHECK_EFORMAT, "unexpected %s after the return time", token(p, tok, sizeof tok));
        goto out;
    }
    rc = lincheck_add(h, &op);
    if (rc)
        rc = fail(r, rc, "%s", lincheck_strerror(rc));
out:
    free(key);
    return rc;
}

int lincheck_history_read(FILE *f, const char *name, lincheck_history **out,
                          char *err, size_t errlen)
{
    reader r = { .f = f, .name = name ? name : "history", .err = err, .errlen = errlen };
    if (errlen)
        err[0] = '\0';
    if (out)
        *out = NULL;
    if (!f || !out)
        return LINCHECK_EINVAL;
    lincheck_history *h = lincheck_history_new();
    if (!h)
        return fail(&r, LINCHECK_ENOMEM, "out of memory");
    int rc = read_line(&r);
    if (rc == 0)
        rc = fail(&r, LINCHECK_EFORMAT, "empty file: expected 'lincheck-history 1' as the first line");
    else if (rc == 1)
        rc = parse_header(&r);
    while (rc == 0 && (rc = read_line(&r)) == 1) {
        const char *p = skip_blanks(r.line);
        rc = *p == '\0' || *p == '#' ? 0 : parse_op(&r, h);
    }
    free(r.line);
    free(r.buf);
    if (rc) {
        lincheck_history_free(h);
        return rc;
    }
    *out = h;
    return 0;
}

int lincheck_history_read_file(const char *path, lincheck_history **out,
                               char *err, size_t errlen)
{
    if (out)
        *out = NULL;
    if (!path || !out)
        return LINCHECK_EINVAL;
    if (strcmp(path, "-") == 0)
        return lincheck_history_read(stdin, "<stdin>", out, err, errlen);
    FILE *f = fopen(path, "r");
    if (!f) {
        if (errlen)
            snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return LINCHECK_EIO;
    }
    int rc = lincheck_history_read(f, path, out, err, errlen);
    fclose(f);
    return rc;
}

void lincheck_write_quoted(FILE *f, const char *s, size_t n)
{
    putc('"', f);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            putc('\\', f);
            putc(c, f);
        } else if (c == '\n') {
            fputs("\\n", f);
        } else if (c == '\t') {
            fputs("\\t", f);
        } else if (c < 0x20 || c >= 0x7f) {
            fprintf(f, "\\x%02x", c);
        } else {
            putc(c, f);
        }
    }
    putc('"', f);
}

int lincheck_history_write(const lincheck_history *h, FILE *f)
{
    if (!h || !f)
        return LINCHECK_EINVAL;
    fputs("lincheck-history 1\n# client op key value call_ns return_ns\n", f);
    size_t n = lincheck_history_len(h);
    for (size_t i = 0; i < n; i++) {
        const lincheck_op *o = lincheck_history_op(h, i);
        fprintf(f, "%u %s ", o->client, lincheck_kind_name(o->kind));
        lincheck_write_quoted(f, o->key, o->key_len);
        putc(' ', f);
        lincheck_write_quoted(f, o->value, o->value_len);
        if (o->return_ns == LINCHECK_NEVER)
            fprintf(f, " %llu -\n", (unsigned long long)o->call_ns);
        else
            fprintf(f, " %llu %llu\n", (unsigned long long)o->call_ns, (unsigned long long)o->return_ns);
        if (ferror(f))
            return LINCHECK_EIO;
    }
    return fflush(f) == 0 && !ferror(f) ? 0 : LINCHECK_EIO;
}

int lincheck_history_write_file(const lincheck_history *h, const char *path)
{
    if (!h || !path)
        return LINCHECK_EINVAL;
    if (strcmp(path, "-") == 0)
        return lincheck_history_write(h, stdout);
    FILE *f = fopen(path, "w");
    if (!f)
        return LINCHECK_EIO;
    int rc = lincheck_history_write(h, f);
    if (fclose(f) != 0 && rc == 0)
        rc = LINCHECK_EIO;
    return rc;
}
