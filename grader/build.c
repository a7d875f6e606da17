/* build.c: see build.h. */
#include "build.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "policy.h"
#include "sandbox.h"

#define MAX_FILES 64
#define MAX_FILE_BYTES (4 << 20)
#define MAX_ITEMS 128
#define STEP_TIMEOUT_S 120
#define OUTPUT_BYTES (64 << 10)
#define TEXT_BYTES (64 << 20)    /* a preprocessed file, nm or objdump output */

/* What `make harness_info` says: the compiler, the flags for student code,
 * the harness's objects and libraries, the public headers. */
typedef struct info {
    char *words[4 * MAX_ITEMS];
    int nwords;
    const char *cc[8], *cflags[MAX_ITEMS], *link[MAX_ITEMS], *ldflags[MAX_ITEMS],
        *headers[16], *prefixes[16];
    int ncc, ncflags, nlink, nldflags, nheaders, nprefixes;
    const char *absent;   /* the stand-in object for a missing kvraft/ */
} info;

typedef struct ctx {
    const build_spec *spec;
    build_result *res;
    info in;
    char src[1100], inc[1100], obj[1100], log[1100];
    int logfd;
    policy *pol;
    bool has_kvraft;      /* the submission has a kvraft/ folder */
} ctx;

static build_status fail(ctx *c, build_status st, const char *f, ...) __attribute__((format(printf, 3, 4)));
static build_status fail(ctx *c, build_status st, const char *f, ...)
{
    va_list ap;
    va_start(ap, f);
    char *s = NULL;
    if (vasprintf(&s, f, ap) < 0)
        s = NULL;
    va_end(ap);
    free(c->res->output);
    c->res->output = s ? s : strdup("out of memory");
    c->res->status = st;
    return st;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path) == 0 || errno == ENOENT ? 0 : -1;
}

int build_remove_tree(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return errno == ENOENT ? 0 : -1;
    return nftw(path, rm_one, 32, FTW_DEPTH | FTW_PHYS);
}

/* Reads at most max bytes of a regular file (no link followed); malloc'd. */
static char *read_file(const char *path, size_t max, size_t *len)
{
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        if (fd >= 0)
            close(fd);
        errno = fd >= 0 ? EINVAL : errno;
        return NULL;
    }
    size_t n = (size_t)st.st_size < max ? (size_t)st.st_size : max;
    char *buf = malloc(n + 1);
    size_t got = 0;
    while (buf && got < n) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    if (!buf)
        return NULL;
    buf[got] = '\0';
    if (len)
        *len = got;
    return buf;
}

static int write_file(const char *path, const char *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    size_t put = 0;
    while (put < len) {
        ssize_t w = write(fd, data + put, len - put);
        if (w <= 0) {
            close(fd);
            return -1;
        }
        put += (size_t)w;
    }
    return close(fd);
}

/* ---- the kit's part: make harness_info (trusted, not sandboxed) ---------- */

static build_status harness_info(ctx *c)
{
    const build_spec *s = c->spec;
    char san[64] = "SAN=", path[4200];
    snprintf(san + 4, sizeof san - 4, "%s", s->san ? s->san : "");
    const char *argv[] = { "make", "-C", s->kit, "-s", "--no-print-directory", "harness_info",
                           san, s->sim ? "SIM=1" : "SIM=", NULL };
    snprintf(path, sizeof path, "%s/harness.txt", s->dir);
    int out = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (out < 0)
        return fail(c, BUILD_ERROR, "cannot create %s: %s", path, strerror(errno));
    sandbox_spec sp = { .sandboxed = false, .argv = argv, .fd_in = -1, .fd_out = out,
                        .fd_err = c->logfd, .own_group = true };
    char err[256];
    int st = sandbox_run(&sp, 1800, err, sizeof err);
    close(out);
    if (st != 0) {
        size_t n;
        char *log = read_file(c->log, OUTPUT_BYTES, &n);
        build_status r = fail(c, BUILD_ERROR, "could not build the kit's harness (make -C %s "
                              "harness_info %s%s): %s\n%s", s->kit, san, s->sim ? " SIM=1" : "",
                              st < 0 ? err : "make failed", log ? log : "");
        free(log);
        return r;
    }
    char *text = read_file(path, 1 << 20, NULL);
    if (!text)
        return fail(c, BUILD_ERROR, "cannot read %s", path);
    info *in = &c->in;
    for (char *save = NULL, *line = strtok_r(text, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        char *sp2 = strchr(line, ' ');
        if (!sp2 || !sp2[1] || in->nwords == (int)(sizeof in->words / sizeof in->words[0]))
            continue;
        *sp2 = '\0';
        char *w = strdup(sp2 + 1);
        if (!w) {
            free(text);
            return fail(c, BUILD_ERROR, "out of memory");
        }
        in->words[in->nwords++] = w;
#define TAKE(key, arr, n)                                              \
    else if (strcmp(line, key) == 0 && in->n < (int)(sizeof in->arr / sizeof in->arr[0]) - 1) \
        in->arr[in->n++] = w;
        if (0) {
        }
        TAKE("cc", cc, ncc)
        TAKE("cflag", cflags, ncflags)
        TAKE("link", link, nlink)
        TAKE("ldflag", ldflags, nldflags)
        TAKE("header", headers, nheaders)
        TAKE("prefix", prefixes, nprefixes)
        else if (strcmp(line, "absent") == 0)
            in->absent = w;
#undef TAKE
    }
    free(text);
    if (!in->ncc || !in->nlink || !in->nheaders)
        return fail(c, BUILD_ERROR, "make harness_info said nothing usable (see %s)", path);
    return BUILD_OK;
}

/* ---- the scratch folder ---------------------------------------------------- */

static bool good_name(const char *n)
{
    size_t len = strlen(n);
    if (len < 3 || len > 100 || n[0] == '.')
        return false;
    for (const char *p = n; *p; p++)
        if (!(('a' <= *p && *p <= 'z') || ('A' <= *p && *p <= 'Z') || ('0' <= *p && *p <= '9') ||
              *p == '_' || *p == '-' || *p == '.'))
            return false;
    return strcmp(n + len - 2, ".c") == 0 || strcmp(n + len - 2, ".h") == 0;
}

/* Copies the submission's .c and .h files of one lab's folder (raft or
 * kvraft; kvraft/ may be absent: *found says); lists the .c files as
 * "lab/name.c" after the ncfiles already listed. */
static build_status copy_lab(ctx *c, const char *lab, char cfiles[][128], int *ncfiles,
                             bool *found)
{
    char from[2048];
    if (snprintf(from, sizeof from, "%s/%s", c->spec->impl, lab) >= (int)sizeof from)
        return fail(c, BUILD_ERROR, "the path %s is too long", c->spec->impl);
    DIR *d = opendir(from);
    *found = d != NULL;
    if (!d && strcmp(lab, "raft") != 0 && errno == ENOENT)
        return BUILD_OK;
    if (!d)
        return fail(c, BUILD_FAILED, "cannot open %s: %s (IMPL names a folder that holds "
                    "raft/raft.c)", from, strerror(errno));
    int nfiles = 0, first = *ncfiles;
    build_status st = BUILD_OK;
    for (struct dirent *e; st == BUILD_OK && (e = readdir(d));) {
        size_t len = strlen(e->d_name);
        if (len < 2 || (strcmp(e->d_name + len - 2, ".c") && strcmp(e->d_name + len - 2, ".h")))
            continue;
        char in[2400], out[1400];
        snprintf(in, sizeof in, "%s/%s", from, e->d_name);
        snprintf(out, sizeof out, "%s/%s/%s", c->src, lab, e->d_name);
        struct stat sb;
        if (!good_name(e->d_name))
            st = fail(c, BUILD_FAILED, "%s/%s: use file names of letters, digits, '_', '-' "
                      "and '.' only", lab, e->d_name);
        else if (lstat(in, &sb) != 0 || !S_ISREG(sb.st_mode))
            st = fail(c, BUILD_FAILED, "%s/%s is not a regular file (a link?): submit the "
                      "file itself", lab, e->d_name);
        else if (sb.st_size > MAX_FILE_BYTES)
            st = fail(c, BUILD_FAILED, "%s/%s is over %d MiB", lab, e->d_name,
                      MAX_FILE_BYTES >> 20);
        else if (++nfiles > MAX_FILES / 2)
            st = fail(c, BUILD_FAILED, "over %d .c and .h files in %s/", MAX_FILES / 2, lab);
        else {
            size_t n;
            char *data = read_file(in, MAX_FILE_BYTES, &n);
            if (!data || write_file(out, data, n) != 0)
                st = fail(c, BUILD_ERROR, "cannot copy %s/%s: %s", lab, e->d_name,
                          strerror(errno));
            free(data);
            if (st == BUILD_OK && e->d_name[len - 1] == 'c')
                snprintf(cfiles[(*ncfiles)++], 128, "%s/%.100s", lab, e->d_name);
        }
    }
    closedir(d);
    if (st == BUILD_OK && *ncfiles == first)
        st = fail(c, BUILD_FAILED, "%s holds no .c file", from);
    return st;
}

/* raft/ (required) and kvraft/ (stage 4: without it, the kit's stand-in
 * is linked instead, whose stage 4 tests fail saying so). */
static build_status copy_submission(ctx *c, char cfiles[][128], int *ncfiles)
{
    bool found;
    *ncfiles = 0;
    build_status st = copy_lab(c, "raft", cfiles, ncfiles, &found);
    if (st == BUILD_OK)
        st = copy_lab(c, "kvraft", cfiles, ncfiles, &c->has_kvraft);
    if (st == BUILD_OK && !c->has_kvraft && !c->in.absent)
        st = fail(c, BUILD_ERROR, "make harness_info named no stand-in for a missing kvraft/");
    return st;
}

static build_status copy_headers(ctx *c)
{
    for (int k = 0; k < c->in.nheaders; k++) {
        const char *h = c->in.headers[k];
        const char *base = strrchr(h, '/') ? strrchr(h, '/') + 1 : h;
        char out[4400];
        snprintf(out, sizeof out, "%s/%s", c->inc, base);
        size_t n;
        char *data = read_file(h, MAX_FILE_BYTES, &n);
        int r = data ? write_file(out, data, n) : -1;
        free(data);
        if (r != 0)
            return fail(c, BUILD_ERROR, "cannot copy the public header %s: %s", h, strerror(errno));
    }
    return BUILD_OK;
}

static build_status make_dirs(ctx *c)
{
    const char *d = c->spec->dir;
    if (strlen(d) > 1000)
        return fail(c, BUILD_ERROR, "the build folder's path %s is too long", d);
    if (build_remove_tree(d) != 0 && errno != ENOENT)
        return fail(c, BUILD_ERROR, "cannot empty %s: %s", d, strerror(errno));
    snprintf(c->src, sizeof c->src, "%s/src", d);
    snprintf(c->inc, sizeof c->inc, "%s/include", d);
    snprintf(c->obj, sizeof c->obj, "%s/obj", d);
    snprintf(c->log, sizeof c->log, "%s/build.log", d);
    char raft[4200], kvraft[4200];
    snprintf(raft, sizeof raft, "%s/raft", c->src);
    snprintf(kvraft, sizeof kvraft, "%s/kvraft", c->src);
    const char *dirs[] = { d, c->src, raft, kvraft, c->inc, c->obj };
    for (int k = 0; k < 6; k++)
        if (mkdir(dirs[k], 0755) != 0 || chmod(dirs[k], 0755) != 0)
            return fail(c, BUILD_ERROR, "cannot create %s: %s", dirs[k], strerror(errno));
    /* Only obj/ is the sandbox's to write. */
    if (c->spec->sandboxed && sandbox_give(c->obj) != 0)
        return fail(c, BUILD_ERROR, "cannot hand %s to the sandbox: %s", c->obj, strerror(errno));
    c->logfd = open(c->log, O_RDWR | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
    if (c->logfd < 0)
        return fail(c, BUILD_ERROR, "cannot create %s: %s", c->log, strerror(errno));
    return BUILD_OK;
}

/* ---- the steps, in the sandbox --------------------------------------------- */

/* Runs argv in src/ (stdout to out_path if given, else to the log); 0 if it
 * exited 0. */
static int step(ctx *c, const char *const *argv, const char *out_path, char *err, size_t errlen)
{
    int out = c->logfd;
    if (out_path) {
        out = open(out_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (out < 0) {
            snprintf(err, errlen, "cannot create %s: %s", out_path, strerror(errno));
            return -1;
        }
    }
    const char *ro[MAX_ITEMS + 5];
    int nro = 0;
    ro[nro++] = c->src;
    ro[nro++] = c->inc;
    for (int k = 0; k < c->in.nlink; k++)
        if (c->in.link[k][0] == '/')
            ro[nro++] = c->in.link[k];
    if (c->in.absent && c->in.absent[0] == '/')
        ro[nro++] = c->in.absent;
    ro[nro] = NULL;
    const char *rw[] = { c->obj, NULL };
    static const char *const env[] = { "PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8",
                                       "HOME=/tmp", "TMPDIR=/tmp", NULL };
    sandbox_spec sp = { .sandboxed = c->spec->sandboxed, .argv = argv,
                        .envp = c->spec->sandboxed ? env : NULL, .cwd = c->src,
                        .ro_paths = ro, .rw_paths = rw, .fd_in = -1, .fd_out = out,
                        .fd_err = c->logfd, .own_group = true,
                        .limits = { { RLIMIT_CPU, STEP_TIMEOUT_S }, { RLIMIT_FSIZE, TEXT_BYTES },
                                    { RLIMIT_AS, (rlim_t)4 << 30 }, { RLIMIT_CORE, 0 } },
                        .nlimits = 4 };
    int st = sandbox_run(&sp, STEP_TIMEOUT_S, err, errlen);
    if (out_path)
        close(out);
    if (st > 0)
        snprintf(err, errlen, "%s %s %d", argv[0],
                 WIFSIGNALED(st) ? "was killed by signal" : "exited with status",
                 WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
    return st == 0 ? 0 : -1;
}

/* argv: cc words, then cflags, then the rest. */
static int cc_argv(const ctx *c, const char **argv, bool flags, const char *const *rest)
{
    int a = 0;
    for (int k = 0; k < c->in.ncc; k++)
        argv[a++] = c->in.cc[k];
    if (flags)
        for (int k = 0; k < c->in.ncflags; k++)
            argv[a++] = c->in.cflags[k];
    for (int k = 0; rest[k]; k++)
        argv[a++] = rest[k];
    argv[a] = NULL;
    return a;
}

static build_status compiler_failed(ctx *c, const char *err)
{
    char *log = read_file(c->log, OUTPUT_BYTES, NULL);
    build_status st = fail(c, BUILD_FAILED, "%s(%s)", log ? log : "", err);
    free(log);
    return st;
}

/* "kvraft/server.c" -> "kvraft-server": one object folder for both labs. */
static void obj_base(const char *cfile, char *base, size_t size)
{
    snprintf(base, size, "%.*s", (int)strnlen(cfile, 120) - 2, cfile);
    for (char *p = base; *p; p++)
        if (*p == '/')
            *p = '-';
}

static build_status compile(ctx *c, char cfiles[][128], int n)
{
    char err[512], in[200], out_i[4400], out_o[4400];
    for (int k = 0; k < n; k++) {
        snprintf(in, sizeof in, "%.120s", cfiles[k]);
        char base[128];
        obj_base(cfiles[k], base, sizeof base);
        snprintf(out_i, sizeof out_i, "%s/%s.i", c->obj, base);
        snprintf(out_o, sizeof out_o, "%s/%s.o", c->obj, base);
        const char *argv[MAX_ITEMS + 16];
        const char *pre[] = { "-I", c->inc, "-E", in, "-o", out_i, NULL };
        cc_argv(c, argv, true, pre);
        if (step(c, argv, NULL, err, sizeof err) != 0)
            return compiler_failed(c, err);
        char *text = read_file(out_i, TEXT_BYTES, NULL);
        if (!text)
            return fail(c, BUILD_ERROR, "cannot read %s: %s", out_i, strerror(errno));
        policy_scan_source(c->pol, text);
        free(text);
        const char *comp[] = { "-I", c->inc, "-c", in, "-o", out_o, NULL };
        cc_argv(c, argv, true, comp);
        if (step(c, argv, NULL, err, sizeof err) != 0)
            return compiler_failed(c, err);
    }
    return BUILD_OK;
}

/* Merges the objects, makes hidden symbols local, checks the policy. */
static build_status check(ctx *c, char cfiles[][128], int n)
{
    char err[512], merged[4400], objs[MAX_FILES][4400];
    snprintf(merged, sizeof merged, "%s/submission.o", c->obj);
    const char *argv[MAX_ITEMS + MAX_FILES + 16];
    const char *rest[MAX_FILES + 8];
    int r = 0;
    rest[r++] = "-r";
    rest[r++] = "-nostdlib";
    rest[r++] = "-o";
    rest[r++] = merged;
    for (int k = 0; k < n; k++) {
        char base[128];
        obj_base(cfiles[k], base, sizeof base);
        snprintf(objs[k], sizeof objs[k], "%s/%s.o", c->obj, base);
        rest[r++] = objs[k];
    }
    rest[r] = NULL;
    cc_argv(c, argv, false, rest);
    if (step(c, argv, NULL, err, sizeof err) != 0)
        return compiler_failed(c, err);
    const char *localize[] = { "objcopy", "--localize-hidden", merged, NULL };
    if (step(c, localize, NULL, err, sizeof err) != 0)
        return compiler_failed(c, err);
    char nm_out[4400], sec_out[4400], dis_out[4400];
    snprintf(nm_out, sizeof nm_out, "%s/nm.txt", c->spec->dir);
    snprintf(sec_out, sizeof sec_out, "%s/sections.txt", c->spec->dir);
    snprintf(dis_out, sizeof dis_out, "%s/disasm.txt", c->spec->dir);
    const char *nm[] = { "nm", "-P", merged, NULL };
    const char *sec[] = { "objdump", "-h", merged, NULL };
    const char *dis[] = { "objdump", "-d", "--no-show-raw-insn", merged, NULL };
    if (step(c, nm, nm_out, err, sizeof err) != 0 || step(c, sec, sec_out, err, sizeof err) != 0 ||
        step(c, dis, dis_out, err, sizeof err) != 0)
        return fail(c, BUILD_ERROR, "could not read the submission's object: %s", err);
    char *nm_text = read_file(nm_out, TEXT_BYTES, NULL);
    char *sec_text = read_file(sec_out, TEXT_BYTES, NULL);
    char *dis_text = read_file(dis_out, TEXT_BYTES, NULL);
    if (nm_text && sec_text && dis_text) {
        policy_check_symbols(c->pol, nm_text);
        policy_check_code(c->pol, sec_text, dis_text, c->spec->san != NULL);
    }
    free(nm_text);
    free(sec_text);
    free(dis_text);
    if (!nm_text || !sec_text || !dis_text)
        return fail(c, BUILD_ERROR, "cannot read what nm and objdump said: %s", strerror(errno));
    if (policy_count(c->pol) > 0)
        return fail(c, BUILD_REFUSED, "%s", policy_problems(c->pol));
    return BUILD_OK;
}

static build_status link_binary(ctx *c)
{
    char err[512], merged[4400];
    snprintf(merged, sizeof merged, "%s/submission.o", c->obj);
    snprintf(c->res->binary, sizeof c->res->binary, "%s/raft_test", c->obj);
    const char *argv[3 * MAX_ITEMS + 16];
    const char *rest[2 * MAX_ITEMS + 8];
    int r = 0;
    rest[r++] = "-o";
    rest[r++] = c->res->binary;
    rest[r++] = merged;
    if (!c->has_kvraft)
        rest[r++] = c->in.absent;
    for (int k = 0; k < c->in.nlink; k++)
        rest[r++] = c->in.link[k];
    for (int k = 0; k < c->in.nldflags; k++)
        rest[r++] = c->in.ldflags[k];
    rest[r] = NULL;
    cc_argv(c, argv, false, rest);
    if (step(c, argv, NULL, err, sizeof err) != 0)
        return compiler_failed(c, err);
    return BUILD_OK;
}

build_status build_submission(const build_spec *spec, build_result *res)
{
    memset(res, 0, sizeof *res);
    ctx c = { .spec = spec, .res = res, .logfd = -1 };
    char cfiles[MAX_FILES][128];
    int ncfiles = 0;
    build_status st = make_dirs(&c);
    if (st == BUILD_OK)
        st = harness_info(&c);
    if (st == BUILD_OK) {
        char allow[4200], err[512];
        snprintf(allow, sizeof allow, "%s/grader/allowed-calls.txt", spec->kit);
        c.in.prefixes[c.in.nprefixes] = NULL;
        c.in.headers[c.in.nheaders] = NULL;
        c.pol = policy_load(allow, c.in.headers, c.in.prefixes, err, sizeof err);
        if (!c.pol)
            st = fail(&c, BUILD_ERROR, "the policy: %s", err);
    }
    if (st == BUILD_OK)
        st = copy_submission(&c, cfiles, &ncfiles);
    if (st == BUILD_OK)
        st = copy_headers(&c);
    if (st == BUILD_OK)
        st = compile(&c, cfiles, ncfiles);
    if (st == BUILD_OK)
        st = check(&c, cfiles, ncfiles);
    if (st == BUILD_OK)
        st = link_binary(&c);
    if (st == BUILD_OK) {
        size_t n;
        char *log = read_file(c.log, OUTPUT_BYTES, &n);
        res->output = log ? log : strdup("");
        res->status = BUILD_OK;
    }
    policy_free(c.pol);
    for (int k = 0; k < c.in.nwords; k++)
        free(c.in.words[k]);
    if (c.logfd >= 0)
        close(c.logfd);
    return res->status = st;
}

void build_result_free(build_result *r)
{
    free(r->output);
    r->output = NULL;
}
