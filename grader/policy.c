/* policy.c: see policy.h. */
#include "policy.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct names {
    char **v;
    int n, cap;
} names;

typedef struct seen {      /* where a name is first used in the submission */
    char *name, *where;    /* "raft/raft.c:12" */
} seen;

struct policy {
    names allowed, api, prefixes;
    seen *seen;
    int nseen, capseen;
    char *problems;
    size_t len, cap;
    int count;
};

/* Attributes that run code before main or place code where the checks do
 * not look. */
static const char *const REFUSED_ATTRS[] = { "constructor", "destructor", "section", "ifunc",
                                             "symver", "naked", NULL };
static const char *const CTOR_SECTIONS[] = { ".init_array", ".fini_array", ".preinit_array",
                                             ".ctors", ".dtors", ".init", ".fini", NULL };
/* System-call instructions (x86-64, i386, arm64), as objdump prints them. */
static const char *const SYSCALL_INSNS[] = { "\tsyscall", "\tsysenter", "\tint    $0x80",
                                             "\tsvc\t", "\tsvc ", NULL };

static bool add_name(names *s, const char *name, size_t len)
{
    if (s->n == s->cap) {
        int cap = s->cap ? 2 * s->cap : 64;
        char **v = realloc(s->v, (size_t)cap * sizeof *v);
        if (!v)
            return false;
        s->v = v;
        s->cap = cap;
    }
    char *c = strndup(name, len);
    if (!c)
        return false;
    s->v[s->n++] = c;
    return true;
}

static bool has_name(const names *s, const char *name)
{
    for (int k = 0; k < s->n; k++)
        if (strcmp(s->v[k], name) == 0)
            return true;
    return false;
}

static void free_names(names *s)
{
    for (int k = 0; k < s->n; k++)
        free(s->v[k]);
    free(s->v);
}

static void problem(policy *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void problem(policy *p, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n >= sizeof line)
        n = sizeof line - 1;
    p->count++;
    /* The same line twice (a name used in two objects) says nothing new. */
    if (p->problems && strstr(p->problems, line))
        return;
    if (p->len + (size_t)n + 2 > p->cap) {
        size_t cap = p->cap ? 2 * p->cap : 1024;
        while (cap < p->len + (size_t)n + 2)
            cap *= 2;
        char *b = realloc(p->problems, cap);
        if (!b)
            return; /* the count still says something is wrong */
        p->problems = b;
        p->cap = cap;
    }
    memcpy(p->problems + p->len, line, (size_t)n);
    p->len += (size_t)n;
    p->problems[p->len++] = '\n';
    p->problems[p->len] = '\0';
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    while (buf) {
        size_t n = fread(buf + len, 1, cap - len - 1, f);
        len += n;
        if (len + 1 < cap)
            break;
        char *b = realloc(buf, cap *= 2);
        if (!b)
            free(buf);
        buf = b;
    }
    fclose(f);
    if (buf)
        buf[len] = '\0';
    return buf;
}

static bool ident_start(int c) { return isalpha(c) || c == '_'; }
static bool ident_char(int c) { return isalnum(c) || c == '_'; }

/* The prefixes of the API's functions, in the public headers. */
static const char *const API_PREFIXES[] = { "raft_", "rsm_", "kvserver_", "kvclerk_", NULL };

/* Adds each name of an API prefix that text declares (a name followed by
 * '('). false if out of memory. */
static bool add_api(policy *p, const char *text)
{
    for (int k = 0; API_PREFIXES[k]; k++) {
        for (const char *s = text; (s = strstr(s, API_PREFIXES[k])); s++) {
            if (s > text && ident_char((unsigned char)s[-1]))
                continue;
            size_t n = 0;
            while (ident_char((unsigned char)s[n]))
                n++;
            const char *q = s + n;
            while (*q == ' ')
                q++;
            if (*q == '(') {
                char name[128];
                snprintf(name, sizeof name, "%.*s", (int)n, s);
                if (!has_name(&p->api, name) && !add_name(&p->api, s, n))
                    return false;
            }
        }
    }
    return true;
}

policy *policy_load(const char *allow_file, const char *const *api_headers,
                    const char *const *extra_prefixes, char *err, size_t errlen)
{
    policy *p = calloc(1, sizeof *p);
    char *allow = slurp(allow_file), *api = NULL;
    if (!p || !allow) {
        snprintf(err, errlen, "cannot read %s: %s", allow_file, strerror(errno));
        goto fail;
    }
    for (char *save = NULL, *line = strtok_r(allow, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        line[strcspn(line, "#")] = '\0';
        for (char *w = line; *w;) {
            w += strspn(w, " \t\r");
            size_t n = strcspn(w, " \t\r");
            if (n && !add_name(&p->allowed, w, n))
                goto oom;
            w += n;
        }
    }
    /* The API: each function of ours that the headers declare. */
    for (int k = 0; api_headers[k]; k++) {
        api = slurp(api_headers[k]);
        if (!api) {
            snprintf(err, errlen, "cannot read %s: %s", api_headers[k], strerror(errno));
            goto fail;
        }
        if (!add_api(p, api))
            goto oom;
        free(api);
        api = NULL;
    }
    if (p->api.n == 0 || p->allowed.n == 0) {
        snprintf(err, errlen, "%s or the public headers name nothing", allow_file);
        goto fail;
    }
    for (int k = 0; extra_prefixes && extra_prefixes[k]; k++)
        if (!add_name(&p->prefixes, extra_prefixes[k], strlen(extra_prefixes[k])))
            goto oom;
    free(allow);
    free(api);
    return p;
oom:
    snprintf(err, errlen, "out of memory");
fail:
    free(allow);
    free(api);
    policy_free(p);
    return NULL;
}

void policy_free(policy *p)
{
    if (!p)
        return;
    free_names(&p->allowed);
    free_names(&p->api);
    free_names(&p->prefixes);
    for (int k = 0; k < p->nseen; k++) {
        free(p->seen[k].name);
        free(p->seen[k].where);
    }
    free(p->seen);
    free(p->problems);
    free(p);
}

static void note_seen(policy *p, const char *name, size_t len, const char *file, int line)
{
    for (int k = 0; k < p->nseen; k++)
        if (strlen(p->seen[k].name) == len && memcmp(p->seen[k].name, name, len) == 0)
            return;
    if (p->nseen == p->capseen) {
        int cap = p->capseen ? 2 * p->capseen : 256;
        seen *v = realloc(p->seen, (size_t)cap * sizeof *v);
        if (!v)
            return;
        p->seen = v;
        p->capseen = cap;
    }
    char where[600];
    snprintf(where, sizeof where, "%s:%d", file, line);
    seen *s = &p->seen[p->nseen];
    s->name = strndup(name, len);
    s->where = strdup(where);
    if (!s->name || !s->where) {
        free(s->name);
        free(s->where);
        return;
    }
    p->nseen++;
}

static const char *where_seen(const policy *p, const char *name)
{
    for (int k = 0; k < p->nseen; k++)
        if (strcmp(p->seen[k].name, name) == 0)
            return p->seen[k].where;
    return NULL;
}

/* "__constructor__" and "constructor" are the same attribute. */
static bool refused_attr(const char *s, size_t n)
{
    if (n > 4 && s[0] == '_' && s[1] == '_' && s[n - 1] == '_' && s[n - 2] == '_') {
        s += 2;
        n -= 4;
    }
    for (int k = 0; REFUSED_ATTRS[k]; k++)
        if (strlen(REFUSED_ATTRS[k]) == n && memcmp(REFUSED_ATTRS[k], s, n) == 0)
            return true;
    return false;
}

void policy_scan_source(policy *p, const char *text)
{
    char file[512] = "";
    bool user = false;
    int line = 1;
    int attr_depth = -1;   /* paren depth inside __attribute__, or -1 */
    bool attr_name_next = false;
    const char *s = text;
    bool bol = true;
    while (*s) {
        if (bol) {
            const char *t = s + strspn(s, " \t");
            if (*t == '#') {   /* a line marker: # N "file" flags, or a pragma */
                int n;
                const char *q = t + 1 + strspn(t + 1, " \t");
                if (sscanf(q, "%d", &n) == 1) {
                    const char *a = strchr(q, '"');
                    const char *b = a ? strchr(a + 1, '"') : NULL;
                    const char *nl = strchr(q, '\n');
                    if (a && b && (!nl || b < nl)) {
                        snprintf(file, sizeof file, "%.*s", (int)(b - a - 1), a + 1);
                        user = file[0] != '/' && file[0] != '<' && strncmp(file, "../", 3) != 0;
                        line = n - 1;
                    }
                }
                s = strchr(t, '\n');
                if (!s)
                    break;
                s++;
                line++;
                continue;
            }
            bol = false;
        }
        unsigned char c = (unsigned char)*s;
        if (c == '\n') {
            line++;
            bol = true;
            s++;
        } else if (c == '"' || c == '\'') {
            for (s++; *s && *s != (char)c && *s != '\n'; s++)
                if (*s == '\\' && s[1])
                    s++;
            if (*s == (char)c)
                s++;
        } else if (isdigit(c) || (c == '.' && isdigit((unsigned char)s[1]))) {
            while (ident_char((unsigned char)*s) || *s == '.' ||
                   ((*s == '+' || *s == '-') && strchr("eEpP", s[-1])))
                s++;
        } else if (ident_start(c)) {
            const char *id = s;
            while (ident_char((unsigned char)*s))
                s++;
            size_t n = (size_t)(s - id);
            if (!user)
                continue;
            note_seen(p, id, n, file, line);
            if ((n == 3 && memcmp(id, "asm", 3) == 0) || (n == 5 && memcmp(id, "__asm", 5) == 0) ||
                (n == 7 && memcmp(id, "__asm__", 7) == 0))
                problem(p, "%s:%d: asm: a submission is C only (no inline assembly)", file, line);
            else if ((n == 13 && memcmp(id, "__attribute__", 13) == 0) ||
                     (n == 11 && memcmp(id, "__attribute", 11) == 0)) {
                attr_depth = 0;
            } else if (attr_depth == 2 && attr_name_next && refused_attr(id, n)) {
                problem(p, "%s:%d: __attribute__((%.*s)): not allowed in a submission "
                        "(it runs or places code outside what the grader checks)",
                        file, line, (int)n, id);
            }
            attr_name_next = false;
        } else {
            if (attr_depth >= 0) {
                if (c == '(') {
                    attr_depth++;
                    attr_name_next = attr_depth == 2;
                } else if (c == ')') {
                    attr_depth--;
                    if (attr_depth <= 0)
                        attr_depth = -1;
                } else if (c == ',' && attr_depth == 2) {
                    attr_name_next = true;
                } else if (!isspace(c)) {
                    attr_name_next = false;
                }
            }
            s++;
        }
    }
}

/* A sanitizer's runtime calls, and the globals its instrumentation adds. */
static bool allowed_prefix(const policy *p, const char *name)
{
    for (int k = 0; k < p->prefixes.n; k++)
        if (strncmp(name, p->prefixes.v[k], strlen(p->prefixes.v[k])) == 0)
            return true;
    return false;
}

static bool allowed_call(const policy *p, const char *name)
{
    return has_name(&p->allowed, name) || has_name(&p->api, name) || allowed_prefix(p, name);
}

void policy_check_symbols(policy *p, const char *nm_text)
{
    for (const char *s = nm_text; *s;) {
        size_t len = strcspn(s, "\n");
        char name[256], type[8];
        char line[600];
        snprintf(line, sizeof line, "%.*s", (int)(len < sizeof line ? len : sizeof line - 1), s);
        s += len + (s[len] == '\n');
        /* nm -P: "name type [value size]"; a line naming an object file ends
         * with ':' and has no type. */
        if (sscanf(line, "%255s %7s", name, type) != 2)
            continue;
        char t = type[0];
        const char *where = where_seen(p, name);
        char at[640];
        snprintf(at, sizeof at, "%s%s", where ? where : "the submission", where ? "" : "'s code");
        if (t == 'U' || t == 'w' || t == 'v') {
            if (!allowed_call(p, name))
                problem(p, "%s: uses %s, which a submission may not call (handouts/rules.md "
                        "lists what it may)", at, name);
        } else if (isupper((unsigned char)t) || t == 'u' || t == 'i') {
            if (t == 'i' || t == 'I')
                problem(p, "%s: %s is an indirect function (ifunc): not allowed", at, name);
            else if (!has_name(&p->api, name) && !allowed_prefix(p, name))
                problem(p, "%s: defines the global symbol %s; a submission may define only "
                        "the functions of raft.h, rsm.h and kvraft.h: make %s static (or, if your files share it, "
                        "declare it __attribute__((visibility(\"hidden\"))))",
                        at, name, name);
        }
    }
}

void policy_check_code(policy *p, const char *sections, const char *disasm, bool allow_ctors)
{
    if (!allow_ctors) {
        for (const char *s = sections; *s;) {
            size_t len = strcspn(s, "\n");
            int idx;
            char name[128];
            char line[300];
            snprintf(line, sizeof line, "%.*s", (int)(len < sizeof line ? len : sizeof line - 1), s);
            s += len + (s[len] == '\n');
            if (sscanf(line, " %d %127s", &idx, name) != 2)
                continue;
            for (int k = 0; CTOR_SECTIONS[k]; k++) {
                size_t n = strlen(CTOR_SECTIONS[k]);
                if (strncmp(name, CTOR_SECTIONS[k], n) == 0 && (name[n] == '\0' || name[n] == '.'))
                    problem(p, "the submission's code: section %s: constructors, destructors "
                            "and code that runs before main are not allowed", name);
            }
        }
    }
    char fn[256] = "?";
    for (const char *s = disasm; *s;) {
        size_t len = strcspn(s, "\n");
        const char *lt = memchr(s, '<', len);
        if (len > 2 && s[len - 1] == ':' && s[len - 2] == '>' && lt) /* "0000 <fn>:" */
            snprintf(fn, sizeof fn, "%.*s", (int)(s + len - 2 - lt - 1), lt + 1);
        for (int k = 0; SYSCALL_INSNS[k]; k++) {
            const char *hit = strstr(s, SYSCALL_INSNS[k]);
            if (hit && hit < s + len) {
                problem(p, "the submission's code: a system-call instruction in %s: only the "
                        "allowed library calls may reach the kernel", fn);
                break;
            }
        }
        s += len + (s[len] == '\n');
    }
}

const char *policy_problems(const policy *p) { return p->problems ? p->problems : ""; }
int policy_count(const policy *p) { return p->count; }
