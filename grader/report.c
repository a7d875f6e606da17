/* report.c: results, and the JSON, JUnit and Gradescope files (see report.h). */
#include "report.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const VERDICTS[REPORT_NVERDICTS] = {
    [REPORT_PASSED] = "passed",
    [REPORT_UNCHECKED] = "not checked",
    [REPORT_FAILED] = "failed",
    [REPORT_CRASHED] = "crashed",
    [REPORT_TIMEOUT] = "timed out",
    [REPORT_MEMORY] = "memory errors",
    [REPORT_LEAKED] = "leaked",
    [REPORT_RACE] = "data race",
    [REPORT_UNDEFINED] = "undefined behaviour",
    [REPORT_LIMIT] = "resource limit",
    [REPORT_REFUSED] = "build refused",
    [REPORT_ERROR] = "grader error",
};

const char *report_verdict_name(report_verdict v)
{
    return (unsigned)v < REPORT_NVERDICTS ? VERDICTS[v] : "?";
}

int report_verdict_parse(const char *s)
{
    for (int v = 0; v < REPORT_NVERDICTS; v++)
        if (strcmp(s, VERDICTS[v]) == 0)
            return v;
    return -1;
}

static char *dup_or_empty(const char *s)
{
    return strdup(s ? s : "");
}

static void test_free(report_test *t)
{
    free(t->impl);
    free(t->name);
    free(t->stage);
    free(t->message);
    free(t->details);
    free(t->rerun);
}

report_test *report_add(report *r, const report_test *t)
{
    if (r->n == r->cap) {
        int cap = r->cap ? 2 * r->cap : 32;
        report_test *p = realloc(r->tests, (size_t)cap * sizeof *p);
        if (!p) {
            fprintf(stderr, "grade: out of memory\n");
            return NULL;
        }
        r->tests = p;
        r->cap = cap;
    }
    report_test *d = &r->tests[r->n];
    *d = *t;
    d->impl = dup_or_empty(t->impl);
    d->name = dup_or_empty(t->name);
    d->stage = dup_or_empty(t->stage);
    d->message = dup_or_empty(t->message);
    d->details = dup_or_empty(t->details);
    d->rerun = dup_or_empty(t->rerun);
    if (!d->impl || !d->name || !d->stage || !d->message || !d->details || !d->rerun) {
        test_free(d);
        fprintf(stderr, "grade: out of memory\n");
        return NULL;
    }
    r->n++;
    return d;
}

void report_free(report *r)
{
    for (int k = 0; k < r->n; k++)
        test_free(&r->tests[k]);
    free(r->tests);
    r->tests = NULL;
    r->n = r->cap = 0;
}

/* ---- writing ------------------------------------------------------------ */

/* Test output is arbitrary bytes; the files must still parse. Both the JSON
 * and the XML writer walk strings with utf8_next and replace what it
 * rejects, so the two agree on what is valid. */

/* The length (1 to 4) of the valid UTF-8 sequence at s[0..n), its code
 * point in *cp; or 0 when s starts with none: a stray continuation byte, a
 * sequence cut short, an overlong form, a surrogate (ED A0..BF xx), a code
 * point above U+10FFFF, or a byte that never occurs in UTF-8. */
static size_t utf8_next(const unsigned char *s, size_t n, unsigned *cp)
{
    if (n == 0)
        return 0;
    unsigned c = s[0], v, min;
    size_t len;
    if (c < 0x80) {
        *cp = c;
        return 1;
    } else if (c >= 0xc2 && c <= 0xdf) { /* C0 and C1 would only be overlong */
        len = 2, min = 0x80, v = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
        len = 3, min = 0x800, v = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) { /* F5 and up start > U+10FFFF */
        len = 4, min = 0x10000, v = c & 0x07;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t k = 1; k < len; k++) {
        if ((s[k] & 0xc0) != 0x80)
            return 0;
        v = v << 6 | (s[k] & 0x3f);
    }
    if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
        return 0;
    *cp = v;
    return len;
}

/* JSON has no NaN or infinity; a broken time must not break the file. */
static double num(double v)
{
    return isfinite(v) ? v : 0;
}

/* s as the inside of a JSON string: valid UTF-8, controls and DEL escaped,
 * each invalid byte as U+FFFD. */
static void json_chars(FILE *f, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s);
    for (size_t i = 0; i < n;) {
        unsigned cp;
        size_t len = utf8_next(p + i, n - i, &cp);
        if (len == 0) {
            fputs("\\ufffd", f);
            i++;
            continue;
        }
        switch (cp) {
        case '"': fputs("\\\"", f); break;
        case '\\': fputs("\\\\", f); break;
        case '\n': fputs("\\n", f); break;
        case '\r': fputs("\\r", f); break;
        case '\t': fputs("\\t", f); break;
        default:
            if (cp < 0x20 || cp == 0x7f)
                fprintf(f, "\\u%04x", cp);
            else
                fwrite(p + i, 1, len, f);
        }
        i += len;
    }
}

static void json_string(FILE *f, const char *s)
{
    fputc('"', f);
    json_chars(f, s);
    fputc('"', f);
}

/* Totals over a report. */
typedef struct totals {
    int passed, failed;
    double points, max_points, seconds;
} totals;

static totals sum(const report *r)
{
    totals t = { 0 };
    for (int k = 0; k < r->n; k++) {
        const report_test *x = &r->tests[k];
        if (x->verdict == REPORT_PASSED)
            t.passed++;
        else
            t.failed++;
        t.points += x->points;
        t.max_points += x->max_points;
        t.seconds += x->seconds;
    }
    return t;
}

/* A file being written. A regular file is written to tmp, next to it, and
 * renamed over it once complete: readers (CI, Gradescope, a crash midway)
 * never see half a report. "-" is stdout; a device or pipe (/dev/stdout)
 * is written in place, as renaming over it would replace it. */
typedef struct out {
    FILE *f;
    const char *path;   /* as given, for messages */
    char *target;       /* what tmp is renamed to, symlinks resolved */
    char *tmp;          /* NULL when written in place */
} out;

static void out_discard(out *o)
{
    if (o->tmp)
        unlink(o->tmp);
    free(o->tmp);
    free(o->target);
    o->tmp = o->target = NULL;
}

static int open_out(out *o, const char *path)
{
    *o = (out){ .path = path };
    if (strcmp(path, "-") == 0) {
        o->f = stdout;
        return 0;
    }
    struct stat st;
    if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
        o->f = fopen(path, "w");
        if (!o->f) {
            fprintf(stderr, "grade: cannot write %s: %s\n", path, strerror(errno));
            return -1;
        }
        return 0;
    }
    /* Through a symlink: replace the file it names, keep the link. */
    o->target = realpath(path, NULL);
    if (!o->target)
        o->target = strdup(path);
    size_t len = o->target ? strlen(o->target) + 40 : 0;
    o->tmp = o->target ? malloc(len) : NULL;
    if (!o->tmp) {
        out_discard(o);
        fprintf(stderr, "grade: out of memory\n");
        return -1;
    }
    /* O_EXCL: never write through a file someone else put there. */
    int fd = -1;
    for (int k = 0; fd < 0; k++) {
        if (k == 0)
            snprintf(o->tmp, len, "%s.tmp.%ld", o->target, (long)getpid());
        else
            snprintf(o->tmp, len, "%s.tmp.%ld.%d", o->target, (long)getpid(), k);
        fd = open(o->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd < 0 && (errno != EEXIST || k == 100)) {
            fprintf(stderr, "grade: cannot write %s (as %s): %s\n", path, o->tmp,
                    strerror(errno));
            free(o->tmp); /* not ours: not to be removed */
            o->tmp = NULL;
            out_discard(o);
            return -1;
        }
    }
    o->f = fdopen(fd, "w");
    if (!o->f) {
        fprintf(stderr, "grade: cannot write %s (as %s): %s\n", path, o->tmp, strerror(errno));
        close(fd);
        out_discard(o);
        return -1;
    }
    return 0;
}

/* Finishes o: flushed, synced, closed and renamed into place. On any error
 * the target is left as it was and the temporary file removed. */
static int close_out(out *o)
{
    int err = 0;
    bool bad = ferror(o->f) != 0;
    if (fflush(o->f) != 0)
        bad = true, err = errno;
    if (o->f != stdout) {
        /* Data on disk before the rename makes it visible. */
        if (!bad && o->tmp && fsync(fileno(o->f)) != 0)
            bad = true, err = errno;
        if (fclose(o->f) != 0 && !bad)
            bad = true, err = errno;
    }
    o->f = NULL;
    if (!bad && o->tmp && rename(o->tmp, o->target) != 0)
        bad = true, err = errno;
    if (bad) {
        if (err)
            fprintf(stderr, "grade: error writing %s: %s\n", o->path, strerror(err));
        else
            fprintf(stderr, "grade: error writing %s (disk full?)\n", o->path);
        out_discard(o);
        return -1;
    }
    free(o->tmp);
    free(o->target);
    return 0;
}

static void json_write(const report *r, FILE *f)
{
    totals t = sum(r);
    fputs("{\n  \"tool\": \"raftlab grade\",\n", f);
    if (r->sandbox) {
        fputs("  \"sandbox\": ", f);
        json_string(f, r->sandbox);
        fputs(",\n", f);
    }
    fprintf(f, "  \"passed\": %d,\n  \"failed\": %d,\n"
               "  \"points\": %g,\n  \"max_points\": %g,\n  \"seconds\": %.3f,\n  \"tests\": [",
            t.passed, t.failed, num(t.points), num(t.max_points), num(t.seconds));
    for (int k = 0; k < r->n; k++) {
        const report_test *x = &r->tests[k];
        /* One test a line: easy to grep in scripts. */
        fprintf(f, "%s\n    {\"impl\": ", k ? "," : "");
        json_string(f, x->impl);
        fputs(", \"name\": ", f);
        json_string(f, x->name);
        fputs(", \"stage\": ", f);
        json_string(f, x->stage);
        fputs(", \"verdict\": ", f);
        json_string(f, report_verdict_name(x->verdict));
        fputs(", \"message\": ", f);
        json_string(f, x->message);
        fprintf(f, ", \"seconds\": %.3f, \"max_seconds\": %.3f, \"cpu_seconds\": %.3f, "
                   "\"runs\": %d, \"failures\": %d, \"points\": %g, \"max_points\": %g",
                num(x->seconds), num(x->max_seconds), num(x->cpu_seconds), x->runs,
                x->failures, num(x->points), num(x->max_points));
        fputs(", \"rerun\": ", f);
        json_string(f, x->rerun);
        fputs(", \"details\": ", f);
        json_string(f, x->details);
        fputc('}', f);
    }
    fputs("\n  ]\n}\n", f);
}

int report_write_json(const report *r, const char *path)
{
    out o;
    if (open_out(&o, path) != 0)
        return -1;
    json_write(r, o.f);
    return close_out(&o);
}

/* The replacement character, for what XML cannot hold. */
#define U_FFFD "\xef\xbf\xbd"

/* s as XML character data or, with attr, an attribute value (quoted with
 * '"'). Markup characters are escaped, so no CDATA is needed; characters
 * XML 1.0 forbids even as references (most controls, U+FFFE, U+FFFF) and
 * invalid UTF-8 become U+FFFD. */
static void xml_text(FILE *f, const char *s, bool attr)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s);
    for (size_t i = 0; i < n;) {
        unsigned cp;
        size_t len = utf8_next(p + i, n - i, &cp);
        if (len == 0) {
            fputs(U_FFFD, f);
            i++;
            continue;
        }
        switch (cp) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        case '\'': fputs("&apos;", f); break;
        /* Parsers turn a raw CR into LF, and tabs and newlines in an
         * attribute into spaces: references keep them. */
        case '\r': fputs("&#13;", f); break;
        case '\n': fputs(attr ? "&#10;" : "\n", f); break;
        case '\t': fputs(attr ? "&#9;" : "\t", f); break;
        default:
            if (cp < 0x20 || cp == 0xfffe || cp == 0xffff)
                fputs(U_FFFD, f);
            else
                fwrite(p + i, 1, len, f);
        }
        i += len;
    }
}

int report_write_junit(const report *r, const char *path)
{
    out o;
    if (open_out(&o, path) != 0)
        return -1;
    FILE *f = o.f;
    totals t = sum(r);
    fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
               "<testsuites name=\"raftlab\" tests=\"%d\" failures=\"%d\" time=\"%.3f\">\n",
            r->n, t.failed, num(t.seconds));
    /* One <testsuite> per run of consecutive tests of one impl and stage. */
    for (int k = 0; k < r->n;) {
        int end = k, failures = 0;
        double secs = 0;
        while (end < r->n && strcmp(r->tests[end].impl, r->tests[k].impl) == 0 &&
               strcmp(r->tests[end].stage, r->tests[k].stage) == 0) {
            failures += r->tests[end].verdict != REPORT_PASSED;
            secs += r->tests[end].seconds;
            end++;
        }
        fputs("  <testsuite name=\"", f);
        xml_text(f, r->tests[k].impl, true);
        fputc(' ', f);
        xml_text(f, r->tests[k].stage, true);
        fprintf(f, "\" tests=\"%d\" failures=\"%d\" time=\"%.3f\">\n", end - k, failures,
                num(secs));
        if (r->sandbox) {
            fputs("    <properties><property name=\"sandbox\" value=\"", f);
            xml_text(f, r->sandbox, true);
            fputs("\"/></properties>\n", f);
        }
        for (; k < end; k++) {
            const report_test *x = &r->tests[k];
            fputs("    <testcase classname=\"raftlab.", f);
            xml_text(f, x->stage, true);
            fputs("\" name=\"", f);
            xml_text(f, x->name, true);
            fprintf(f, "\" time=\"%.3f\"", num(x->seconds));
            if (x->verdict == REPORT_PASSED) {
                fputs("/>\n", f);
                continue;
            }
            fputs(">\n      <failure type=\"", f);
            xml_text(f, report_verdict_name(x->verdict), true);
            fputs("\" message=\"", f);
            xml_text(f, x->message, true);
            fputs("\">", f);
            xml_text(f, x->details, false);
            if (x->rerun[0]) {
                fputs("\nrerun: ", f);
                xml_text(f, x->rerun, false);
            }
            fputs("</failure>\n    </testcase>\n", f);
        }
        fputs("  </testsuite>\n", f);
    }
    fputs("</testsuites>\n", f);
    return close_out(&o);
}

int report_write_gradescope(const report *r, const char *path)
{
    out o;
    if (open_out(&o, path) != 0)
        return -1;
    FILE *f = o.f;
    totals t = sum(r);
    char summary[512];
    snprintf(summary, sizeof summary, "%d passed, %d failed; %g of %g points%s%.300s", t.passed,
             t.failed, num(t.points), num(t.max_points), r->sandbox ? "; sandbox: " : "",
             r->sandbox ? r->sandbox : "");
    fprintf(f, "{\n  \"score\": %g,\n  \"execution_time\": %.0f,\n  \"output\": ",
            num(t.points), num(t.seconds));
    json_string(f, summary);
    fputs(",\n  \"stdout_visibility\": \"visible\",\n  \"tests\": [", f);
    for (int k = 0; k < r->n; k++) {
        const report_test *x = &r->tests[k];
        fprintf(f, "%s\n    {\"name\": ", k ? "," : "");
        json_string(f, x->name);
        fprintf(f, ", \"score\": %g, \"max_score\": %g, \"status\": \"%s\", \"output\": \"",
                num(x->points), num(x->max_points),
                x->verdict == REPORT_PASSED ? "passed" : "failed");
        /* "verdict: message\ndetails\nrerun: command", written piece by piece
         * (each piece is checked on its own; the separators are ASCII). */
        json_chars(f, report_verdict_name(x->verdict));
        if (x->message[0]) {
            fputs(": ", f);
            json_chars(f, x->message);
        }
        if (x->details[0]) {
            fputs("\\n", f);
            json_chars(f, x->details);
        }
        if (x->rerun[0] && x->verdict != REPORT_PASSED) {
            fputs("\\nrerun: ", f);
            json_chars(f, x->rerun);
        }
        fputs("\"}", f);
    }
    fputs("\n  ]\n}\n", f);
    return close_out(&o);
}

/* ---- reading (for --merge) ---------------------------------------------- */

/* A small JSON reader for the reports json_write produces (any valid JSON
 * is parsed; unknown keys are skipped). Any input, however broken or
 * hostile, is either read or rejected with a message: every access is
 * checked against n, and s[n] is a NUL (slurp) so strtod stops there. */
typedef struct jp {
    const char *s;
    size_t i, n;          /* i <= n always */
    const char *path;
    bool err;
} jp;

static void jp_fail(jp *p, const char *what)
{
    if (!p->err)
        fprintf(stderr, "grade: %s: not a grade JSON report (%s at byte %zu)\n", p->path, what,
                p->i);
    p->err = true;
}

static void ws(jp *p)
{
    /* Not strchr: it would find a NUL byte in " \t\r\n" too. */
    while (p->i < p->n && (p->s[p->i] == ' ' || p->s[p->i] == '\t' || p->s[p->i] == '\r' ||
                           p->s[p->i] == '\n'))
        p->i++;
}

static bool eat(jp *p, char c)
{
    ws(p);
    if (p->i < p->n && p->s[p->i] == c) {
        p->i++;
        return true;
    }
    return false;
}

/* Consumes the literal word w if the text continues with it. */
static bool eat_word(jp *p, const char *w)
{
    size_t len = strlen(w);
    if (p->n - p->i < len || memcmp(p->s + p->i, w, len) != 0)
        return false;
    p->i += len;
    return true;
}

/* cp (valid, not a surrogate) as UTF-8: at most 4 bytes. */
static void put_utf8(char *out, size_t *o, unsigned cp)
{
    if (cp < 0x80) {
        out[(*o)++] = (char)cp;
    } else if (cp < 0x800) {
        out[(*o)++] = (char)(0xc0 | (cp >> 6));
        out[(*o)++] = (char)(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
        out[(*o)++] = (char)(0xe0 | (cp >> 12));
        out[(*o)++] = (char)(0x80 | ((cp >> 6) & 0x3f));
        out[(*o)++] = (char)(0x80 | (cp & 0x3f));
    } else {
        out[(*o)++] = (char)(0xf0 | (cp >> 18));
        out[(*o)++] = (char)(0x80 | ((cp >> 12) & 0x3f));
        out[(*o)++] = (char)(0x80 | ((cp >> 6) & 0x3f));
        out[(*o)++] = (char)(0x80 | (cp & 0x3f));
    }
}

/* The four hex digits at s[i..end) as *v; false if there are not four. */
static bool hex4(const char *s, size_t i, size_t end, unsigned *v)
{
    if (end - i < 4)
        return false;
    *v = 0;
    for (size_t k = i; k < i + 4; k++) {
        char c = s[k];
        unsigned d = c >= '0' && c <= '9'   ? (unsigned)(c - '0')
                     : c >= 'a' && c <= 'f' ? (unsigned)(c - 'a' + 10)
                     : c >= 'A' && c <= 'F' ? (unsigned)(c - 'A' + 10)
                                            : 16;
        if (d == 16)
            return false;
        *v = *v << 4 | d;
    }
    return true;
}

/* A string value (malloc'd), or NULL (error recorded). Raw bytes are kept
 * as they are (the writers check them); escapes are decoded, a surrogate
 * pair to its code point, and a lone surrogate or \u0000 (which would cut
 * the C string short) to U+FFFD. */
static char *jstring(jp *p)
{
    if (!eat(p, '"')) {
        jp_fail(p, "expected a string");
        return NULL;
    }
    /* Find the end first: the decoded text is never longer than the encoded
     * one (6 bytes of \uXXXX give at most 3, 12 of a pair 4). */
    size_t end = p->i;
    while (end < p->n && p->s[end] != '"')
        end += p->s[end] == '\\' && end + 1 < p->n ? 2 : 1;
    if (end >= p->n) {
        jp_fail(p, "unterminated string");
        return NULL;
    }
    char *out = malloc(end - p->i + 1);
    if (!out) {
        jp_fail(p, "out of memory");
        return NULL;
    }
    size_t o = 0;
    while (p->i < end) {
        char c = p->s[p->i++];
        if (c != '\\') {
            out[o++] = c;
            continue;
        }
        /* The scan above paired every backslash with a byte before end. */
        c = p->s[p->i++];
        switch (c) {
        case '"': case '\\': case '/': out[o++] = c; break;
        case 'n': out[o++] = '\n'; break;
        case 't': out[o++] = '\t'; break;
        case 'r': out[o++] = '\r'; break;
        case 'b': out[o++] = '\b'; break;
        case 'f': out[o++] = '\f'; break;
        case 'u': {
            unsigned cp, lo;
            if (!hex4(p->s, p->i, end, &cp)) {
                free(out);
                jp_fail(p, "bad \\u escape");
                return NULL;
            }
            p->i += 4;
            if (cp >= 0xd800 && cp <= 0xdbff && end - p->i >= 6 && p->s[p->i] == '\\' &&
                p->s[p->i + 1] == 'u' && hex4(p->s, p->i + 2, end, &lo) && lo >= 0xdc00 &&
                lo <= 0xdfff) {
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                p->i += 6;
            } else if (cp == 0 || (cp >= 0xd800 && cp <= 0xdfff)) {
                cp = 0xfffd;
            }
            put_utf8(out, &o, cp);
            break;
        }
        default:
            free(out);
            jp_fail(p, "bad escape");
            return NULL;
        }
    }
    out[o] = '\0';
    p->i++; /* the closing quote */
    return out;
}

/* A number, as JSON spells it (no hex, inf or nan; finite). */
static double jnumber(jp *p)
{
    ws(p);
    const char *s = p->s;
    size_t k = p->i, n = p->n;
    bool ok = true;
    if (k < n && s[k] == '-')
        k++;
    ok &= k < n && s[k] >= '0' && s[k] <= '9';
    while (k < n && s[k] >= '0' && s[k] <= '9')
        k++;
    if (k < n && s[k] == '.') {
        k++;
        ok &= k < n && s[k] >= '0' && s[k] <= '9';
        while (k < n && s[k] >= '0' && s[k] <= '9')
            k++;
    }
    if (k < n && (s[k] == 'e' || s[k] == 'E')) {
        k++;
        if (k < n && (s[k] == '+' || s[k] == '-'))
            k++;
        ok &= k < n && s[k] >= '0' && s[k] <= '9';
        while (k < n && s[k] >= '0' && s[k] <= '9')
            k++;
    }
    if (!ok) {
        jp_fail(p, "expected a number");
        return 0;
    }
    char *stop;
    errno = 0;
    double v = strtod(s + p->i, &stop);
    if (stop != s + k || errno || !isfinite(v)) {
        jp_fail(p, "number out of range");
        return 0;
    }
    p->i = k;
    return v;
}

/* A count (runs, failures): a whole number from 0 to INT_MAX. */
static int jcount(jp *p)
{
    double v = jnumber(p);
    if (p->err)
        return 0;
    if (!(v >= 0 && v <= INT_MAX) || v != (double)(int)v) {
        jp_fail(p, "expected a count");
        return 0;
    }
    return (int)v;
}

static void jskip(jp *p, int depth)
{
    ws(p);
    if (p->err || p->i >= p->n) {
        jp_fail(p, "unexpected end");
        return;
    }
    if (depth > 64) {
        jp_fail(p, "nested too deeply");
        return;
    }
    char c = p->s[p->i];
    if (c == '"') {
        free(jstring(p));
    } else if (c == '{' || c == '[') {
        char close = c == '{' ? '}' : ']';
        p->i++;
        if (eat(p, close))
            return;
        do {
            if (c == '{') {
                free(jstring(p));
                if (!eat(p, ':'))
                    jp_fail(p, "expected ':'");
            }
            jskip(p, depth + 1);
        } while (!p->err && eat(p, ','));
        if (!eat(p, close))
            jp_fail(p, "expected a closing bracket");
    } else if (!eat_word(p, "true") && !eat_word(p, "false") && !eat_word(p, "null")) {
        jnumber(p);
    }
}

static void jtest(jp *p, report_test *t)
{
    if (!eat(p, '{')) {
        jp_fail(p, "expected a test object");
        return;
    }
    if (eat(p, '}')) {
        jp_fail(p, "a test without a name");
        return;
    }
    do {
        char *key = jstring(p);
        if (!key || !eat(p, ':')) {
            free(key);
            jp_fail(p, "expected a key");
            return;
        }
        char **str = strcmp(key, "impl") == 0      ? &t->impl
                     : strcmp(key, "name") == 0    ? &t->name
                     : strcmp(key, "stage") == 0   ? &t->stage
                     : strcmp(key, "message") == 0 ? &t->message
                     : strcmp(key, "details") == 0 ? &t->details
                     : strcmp(key, "rerun") == 0   ? &t->rerun
                                                   : NULL;
        double *num = strcmp(key, "seconds") == 0       ? &t->seconds
                      : strcmp(key, "max_seconds") == 0 ? &t->max_seconds
                      : strcmp(key, "cpu_seconds") == 0 ? &t->cpu_seconds
                      : strcmp(key, "points") == 0      ? &t->points
                      : strcmp(key, "max_points") == 0  ? &t->max_points
                                                        : NULL;
        if (str) {
            free(*str);
            *str = jstring(p);
        } else if (num) {
            *num = jnumber(p);
        } else if (strcmp(key, "runs") == 0) {
            t->runs = jcount(p);
        } else if (strcmp(key, "failures") == 0) {
            t->failures = jcount(p);
        } else if (strcmp(key, "verdict") == 0) {
            char *v = jstring(p);
            int verdict = v ? report_verdict_parse(v) : -1;
            free(v);
            if (verdict < 0)
                jp_fail(p, "unknown verdict");
            else
                t->verdict = (report_verdict)verdict;
        } else {
            jskip(p, 1);
        }
        free(key);
    } while (!p->err && eat(p, ','));
    if (!eat(p, '}'))
        jp_fail(p, "expected '}'");
    if (!p->err && !t->name)
        jp_fail(p, "a test without a name");
}

/* a + b for counts, stuck at INT_MAX rather than overflowing. */
static int add_count(int a, int b)
{
    return b > INT_MAX - a ? INT_MAX : a + b;
}

/* Adds t to r, or combines it with r's entry of the same impl and test. */
static int merge_one(report *r, report_test *t)
{
    for (int k = 0; k < r->n; k++) {
        report_test *x = &r->tests[k];
        if (strcmp(x->impl, t->impl ? t->impl : "") != 0 || strcmp(x->name, t->name) != 0)
            continue;
        if (x->verdict == REPORT_PASSED && t->verdict != REPORT_PASSED) {
            char *m = dup_or_empty(t->message), *d = dup_or_empty(t->details),
                 *c = dup_or_empty(t->rerun);
            if (!m || !d || !c) {
                free(m), free(d), free(c);
                fprintf(stderr, "grade: out of memory\n");
                return -1;
            }
            free(x->message), free(x->details), free(x->rerun);
            x->message = m, x->details = d, x->rerun = c;
            x->verdict = t->verdict;
        }
        x->seconds += t->seconds;
        x->cpu_seconds += t->cpu_seconds;
        if (t->max_seconds > x->max_seconds)
            x->max_seconds = t->max_seconds;
        x->runs = add_count(x->runs, t->runs);
        x->failures = add_count(x->failures, t->failures);
        if (t->max_points > x->max_points)
            x->max_points = t->max_points;
        /* A test earns its points only if every run of it passed. */
        x->points = x->failures == 0 && x->verdict == REPORT_PASSED ? x->max_points : 0;
        return 0;
    }
    return report_add(r, t) ? 0 : -1;
}

/* The bytes of path (malloc'd), followed by a NUL not counted in *len. */
static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "grade: cannot read %s: %s\n", path, strerror(errno));
        return NULL;
    }
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        n += fread(buf + n, 1, cap - n, f);
        if (n < cap) {
            buf[n] = '\0'; /* for jnumber's strtod */
            break;
        }
        char *b = realloc(buf, cap * 2);
        if (!b) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = b;
        cap *= 2;
    }
    if (!buf)
        fprintf(stderr, "grade: %s: out of memory\n", path);
    else if (ferror(f)) {
        fprintf(stderr, "grade: error reading %s\n", path);
        free(buf);
        buf = NULL;
    }
    fclose(f);
    *len = n;
    return buf;
}

static int merge_file(report *r, const char *path)
{
    size_t len;
    char *text = slurp(path, &len);
    if (!text)
        return -1;
    jp p = { .s = text, .n = len, .path = path };
    bool seen_tests = false;
    if (!eat(&p, '{'))
        jp_fail(&p, "expected '{'");
    else if (!eat(&p, '}')) {
        do {
            char *key = jstring(&p);
            if (!key || !eat(&p, ':')) {
                free(key);
                jp_fail(&p, "expected a key");
                break;
            }
            if (strcmp(key, "tests") == 0) {
                seen_tests = true;
                if (!eat(&p, '['))
                    jp_fail(&p, "expected '['");
                else if (!eat(&p, ']')) {
                    do {
                        report_test t = { 0 };
                        jtest(&p, &t);
                        if (!p.err && merge_one(r, &t) != 0)
                            p.err = true;
                        test_free(&t);
                    } while (!p.err && eat(&p, ','));
                    if (!p.err && !eat(&p, ']'))
                        jp_fail(&p, "expected ']'");
                }
            } else {
                jskip(&p, 1);
            }
            free(key);
        } while (!p.err && eat(&p, ','));
        if (!p.err && !eat(&p, '}'))
            jp_fail(&p, "expected '}'");
    }
    ws(&p);
    if (!p.err && p.i < p.n)
        jp_fail(&p, "text after the report");
    if (!p.err && !seen_tests)
        jp_fail(&p, "no \"tests\" array");
    free(text);
    return p.err ? -1 : 0;
}

int report_merge(const char *const *paths, int n, FILE *out)
{
    report r = { 0 };
    int rc = 0;
    for (int k = 0; k < n && rc == 0; k++)
        rc = merge_file(&r, paths[k]);
    if (rc == 0) {
        json_write(&r, out);
        if (fflush(out) != 0 || ferror(out)) {
            fprintf(stderr, "grade: error writing the merged report\n");
            rc = -1;
        }
    }
    report_free(&r);
    return rc;
}
