/* html.c: see html.h. */
#include "html.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TOKEN "\"__RAFTLAB_TRACE__\""

/* Writes the bytes of s as the inside of a JS double-quoted string. */
static int put_js(FILE *f, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '\n') {
            fputs("\\n", f);
        } else if (ch == '"' || ch == '\\') {
            fputc('\\', f);
            fputc(ch, f);
        } else if (ch < 0x20 || ch >= 0x7f || ch == '<' || ch == '>' || ch == '&' ||
                   ch == '\'') {
            char u[7] = { '\\', 'u', '0', '0', hex[ch >> 4], hex[ch & 15], 0 };
            fputs(u, f);
        } else {
            fputc(ch, f);
        }
    }
    return ferror(f) ? -1 : 0;
}

/* The block inside a log: from "raftlab-trace 1" to "# end of trace". */
static bool find_block(FILE *in, FILE *out_tmp, size_t *bytes, bool *cut)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    bool in_block = false, done = false;
    *bytes = 0;
    *cut = false;
    while (!done && (got = getline(&line, &cap, in)) > 0) {
        if (!in_block) {
            in_block = strcmp(line, "raftlab-trace 1\n") == 0;
            if (!in_block)
                continue;
        }
        done = strcmp(line, "# end of trace\n") == 0;
        if (*bytes + (size_t)got > HTML_MAX_TRACE_BYTES) {
            *cut = true;
            break;
        }
        fwrite(line, 1, (size_t)got, out_tmp);
        *bytes += (size_t)got;
    }
    free(line);
    return in_block;
}

int html_write(const char *log, const char *tmpl, const char *out, char *err, size_t errlen)
{
    FILE *in = fopen(log, "r");
    FILE *block = in ? tmpfile() : NULL;
    if (!in || !block) {
        snprintf(err, errlen, "cannot read %s: %s", log, strerror(errno));
        if (in)
            fclose(in);
        return -1;
    }
    size_t bytes;
    bool cut;
    bool found = find_block(in, block, &bytes, &cut);
    fclose(in);
    char *data = found ? malloc(bytes + 1) : NULL;
    rewind(block);
    bool read_ok = data && fread(data, 1, bytes, block) == bytes;
    fclose(block);
    if (!found)
        return 1;
    if (!read_ok) {
        snprintf(err, errlen, "out of memory or read error copying the trace of %s", log);
        free(data);
        return -1;
    }

    FILE *t = fopen(tmpl, "r");
    if (!t) {
        snprintf(err, errlen, "cannot read the viewer %s: %s", tmpl, strerror(errno));
        free(data);
        return -1;
    }
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", out);
    FILE *f = fopen(tmp, "w");
    int rc = f ? 0 : -1;
    bool inlined = false;
    char *line = NULL;
    size_t cap = 0;
    /* the template line by line, the token's line with the block inlined */
    while (f && getline(&line, &cap, t) > 0) {
        char *at = inlined ? NULL : strstr(line, TOKEN);
        if (!at) {
            fputs(line, f);
            continue;
        }
        fwrite(line, 1, (size_t)(at - line), f);
        fputc('"', f);
        if (put_js(f, data, bytes) != 0)
            rc = -1;
        if (cut)
            put_js(f, "meta cut \"1\"\n", 13);
        fputc('"', f);
        fputs(at + strlen(TOKEN), f);
        inlined = true;
    }
    free(line);
    fclose(t);
    free(data);
    if (f && fclose(f) != 0)
        rc = -1;
    if (rc == 0 && !inlined) {
        snprintf(err, errlen, "the viewer %s has no %s", tmpl, TOKEN);
        unlink(tmp);
        return -1;
    }
    if (rc == 0 && rename(tmp, out) != 0)
        rc = -1;
    if (rc != 0) {
        snprintf(err, errlen, "cannot write %s: %s", out, strerror(errno));
        unlink(tmp);
    }
    return rc;
}
