/* report.c: results, and the JSON, JUnit and Gradescope files (see report.h). */
#include "report.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const char *const VERDICTS[REPORT_NVERDICTS] = {
    [REPORT_PASSED] = "passed",
    [REPORT_FAILED] = "failed",
    [REPORT_CRASHED] = "crashed",
    [REPORT_TIMEOUT] = "timed out",
    [REPORT_MEMORY] = "memory errors",
    [REPORT_LEAKED] = "leaked",
    [REPORT_RACE] = "data race",
    [REPORT_UNDEFINED] = "undefined behaviour",
    [REPORT_LIMIT] = "resource limit",
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

static void json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"': fputs("\\\"", f); break;
        case '\\': fputs("\\\\", f); break;
        case '\n': fputs("\\n", f); break;
        case '\r': fputs("\\r", f); break;
        case '\t': fputs("\\t", f); break;
        default:
            if (*p < 0x20)
                fprintf(f, "\\u%04x", *p);
            else
                fputc(*p, f);
        }
    }
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

static FILE *open_out(const char *path)
{
    if (strcmp(path, "-") == 0)
        return stdout;
    FILE *f = fopen(path, "w");
    if (!f)
        fprintf(stderr, "grade: cannot write %s: %s\n", path, strerror(errno));
    return f;
}

static int close_out(FILE *f, const char *path)
{
    int bad = ferror(f);
    if (f == stdout)
        bad |= fflush(f) != 0;
    else
        bad |= fclose(f) != 0;
    if (bad) {
        fprintf(stderr, "grade: error writing %s (disk full?)\n", path);
        return -1;
    }
    return 0;
}

static void json_write(const report *r, FILE *f)
{
    totals t = sum(r);
    fprintf(f, "{\n  \"tool\": \"raftlab grade\",\n  \"passed\": %d,\n  \"failed\": %d,\n"
               "  \"points\": %g,\n  \"max_points\": %g,\n  \"seconds\": %.3f,\n  \"tests\": [",
            t.passed, t.failed, t.points, t.max_points, t.seconds);
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
                x->seconds, x->max_seconds, x->cpu_seconds, x->runs, x->failures, x->points,
                x->max_points);
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
    FILE *f = open_out(path);
    if (!f)
        return -1;
    json_write(r, f);
    return close_out(f, path);
}

static void xml_text(FILE *f, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        case '\'': fputs("&apos;", f); break;
        default:
            /* XML 1.0 forbids other control characters, even escaped. */
            if (*p >= 0x20 || *p == '\n' || *p == '\t' || *p == '\r')
                fputc(*p, f);
            else
                fputc('?', f);
        }
    }
}

int report_write_junit(const report *r, const char *path)
{
    FILE *f = open_out(path);
    if (!f)
        return -1;
    totals t = sum(r);
    fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
               "<testsuites name=\"raftlab\" tests=\"%d\" failures=\"%d\" time=\"%.3f\">\n",
            r->n, t.failed, t.seconds);
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
        xml_text(f, r->tests[k].impl);
        fputc(' ', f);
        xml_text(f, r->tests[k].stage);
        fprintf(f, "\" tests=\"%d\" failures=\"%d\" time=\"%.3f\">\n", end - k, failures, secs);
        for (; k < end; k++) {
            const report_test *x = &r->tests[k];
            fputs("    <testcase classname=\"raftlab.", f);
            xml_text(f, x->stage);
            fputs("\" name=\"", f);
            xml_text(f, x->name);
            fprintf(f, "\" time=\"%.3f\"", x->seconds);
            if (x->verdict == REPORT_PASSED) {
                fputs("/>\n", f);
                continue;
            }
            fputs(">\n      <failure type=\"", f);
            xml_text(f, report_verdict_name(x->verdict));
            fputs("\" message=\"", f);
            xml_text(f, x->message);
            fputs("\">", f);
            xml_text(f, x->details);
            if (x->rerun[0]) {
                fputs("\nrerun: ", f);
                xml_text(f, x->rerun);
            }
            fputs("</failure>\n    </testcase>\n", f);
        }
        fputs("  </testsuite>\n", f);
    }
    fputs("</testsuites>\n", f);
    return close_out(f, path);
}

int report_write_gradescope(const report *r, const char *path)
{
    FILE *f = open_out(path);
    if (!f)
        return -1;
    totals t = sum(r);
    char summary[160];
    snprintf(summary, sizeof summary, "%d passed, %d failed; %g of %g points", t.passed,
             t.failed, t.points, t.max_points);
    fprintf(f, "{\n  \"score\": %g,\n  \"execution_time\": %.0f,\n  \"output\": ", t.points,
            t.seconds);
    json_string(f, summary);
    fputs(",\n  \"stdout_visibility\": \"visible\",\n  \"tests\": [", f);
    for (int k = 0; k < r->n; k++) {
        const report_test *x = &r->tests[k];
        fprintf(f, "%s\n    {\"name\": ", k ? "," : "");
        json_string(f, x->name);
        fprintf(f, ", \"score\": %g, \"max_score\": %g, \"status\": \"%s\", \"output\": ",
                x->points, x->max_points, x->verdict == REPORT_PASSED ? "passed" : "failed");
        size_t len = strlen(x->message) + strlen(x->details) + strlen(x->rerun) + 64;
        char *out = malloc(len);
        if (!out) {
            fprintf(stderr, "grade: out of memory\n");
            if (f != stdout)
                fclose(f);
            return -1;
        }
        snprintf(out, len, "%s%s%s%s%s%s", report_verdict_name(x->verdict),
                 x->message[0] ? ": " : "", x->message, x->details[0] ? "\n" : "", x->details,
                 "");
        if (x->rerun[0] && x->verdict != REPORT_PASSED) {
            size_t used = strlen(out);
            snprintf(out + used, len - used, "\nrerun: %s", x->rerun);
        }
        json_string(f, out);
        free(out);
        fputc('}', f);
    }
    fputs("\n  ]\n}\n", f);
    return close_out(f, path);
}

/* ---- reading (for --merge) ---------------------------------------------- */

/* A small JSON reader for the reports json_write produces (any valid JSON
 * is parsed; unknown keys are skipped). */
typedef struct jp {
    const char *s;
    size_t i, n;
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
    while (p->i < p->n && strchr(" \t\r\n", p->s[p->i]))
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

static void put_utf8(char *out, size_t *o, unsigned cp)
{
    if (cp < 0x80) {
        out[(*o)++] = (char)cp;
    } else if (cp < 0x800) {
        out[(*o)++] = (char)(0xc0 | (cp >> 6));
        out[(*o)++] = (char)(0x80 | (cp & 0x3f));
    } else {
        out[(*o)++] = (char)(0xe0 | (cp >> 12));
        out[(*o)++] = (char)(0x80 | ((cp >> 6) & 0x3f));
        out[(*o)++] = (char)(0x80 | (cp & 0x3f));
    }
}

/* A string value (malloc'd), or NULL (error recorded). */
static char *jstring(jp *p)
{
    if (!eat(p, '"')) {
        jp_fail(p, "expected a string");
        return NULL;
    }
    /* The decoded text is never longer than the encoded one. */
    size_t start = p->i, o = 0;
    while (p->i < p->n && p->s[p->i] != '"')
        p->i += p->s[p->i] == '\\' ? 2 : 1;
    if (p->i >= p->n) {
        jp_fail(p, "unterminated string");
        return NULL;
    }
    char *out = malloc(p->i - start + 1);
    if (!out) {
        jp_fail(p, "out of memory");
        return NULL;
    }
    for (size_t k = start; k < p->i; k++) {
        char c = p->s[k];
        if (c != '\\') {
            out[o++] = c;
            continue;
        }
        c = p->s[++k];
        switch (c) {
        case 'n': out[o++] = '\n'; break;
        case 't': out[o++] = '\t'; break;
        case 'r': out[o++] = '\r'; break;
        case 'b': out[o++] = '\b'; break;
        case 'f': out[o++] = '\f'; break;
        case 'u': {
            unsigned cp = 0;
            if (k + 4 < p->i && sscanf(p->s + k + 1, "%4x", &cp) == 1) {
                k += 4;
                put_utf8(out, &o, cp);
            }
            break;
        }
        default: out[o++] = c;
        }
    }
    out[o] = '\0';
    p->i++;
    return out;
}

static double jnumber(jp *p)
{
    ws(p);
    char *end;
    errno = 0;
    double v = strtod(p->s + p->i, &end);
    if (end == p->s + p->i || errno) {
        jp_fail(p, "expected a number");
        return 0;
    }
    p->i = (size_t)(end - p->s);
    return v;
}

static void jskip(jp *p, int depth)
{
    ws(p);
    if (p->err || p->i >= p->n || depth > 64) {
        jp_fail(p, "unexpected end");
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
    } else if (strncmp(p->s + p->i, "true", 4) == 0 || strncmp(p->s + p->i, "null", 4) == 0) {
        p->i += 4;
    } else if (strncmp(p->s + p->i, "false", 5) == 0) {
        p->i += 5;
    } else {
        jnumber(p);
    }
}

static void jtest(jp *p, report_test *t)
{
    if (!eat(p, '{')) {
        jp_fail(p, "expected a test object");
        return;
    }
    if (eat(p, '}'))
        return;
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
            t->runs = (int)jnumber(p);
        } else if (strcmp(key, "failures") == 0) {
            t->failures = (int)jnumber(p);
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
        x->runs += t->runs;
        x->failures += t->failures;
        if (t->max_points > x->max_points)
            x->max_points = t->max_points;
        /* A test earns its points only if every run of it passed. */
        x->points = x->failures == 0 && x->verdict == REPORT_PASSED ? x->max_points : 0;
        return 0;
    }
    return report_add(r, t) ? 0 : -1;
}

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
        if (n < cap)
            break;
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
    while (!p.err && !eat(&p, '}')) {
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
            else if (!eat(&p, ']'))
                do {
                    report_test t = { 0 };
                    jtest(&p, &t);
                    if (!p.err && merge_one(r, &t) != 0)
                        p.err = true;
                    test_free(&t);
                } while (!p.err && eat(&p, ','));
            if (!p.err && !eat(&p, ']'))
                jp_fail(&p, "expected ']'");
        } else {
            jskip(&p, 1);
        }
        free(key);
        eat(&p, ',');
    }
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
