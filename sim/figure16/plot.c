/* plot.c (figure16_plot): the table and the CDF plot of Figure 16 from the
 * files figure16 wrote.
 *
 *   figure16_plot --svg OUT.svg FILE...
 *
 * Prints, per file (one range of election timeouts): trials, median, mean,
 * 90th percentile and maximum downtime, capped trials, and what the paper
 * reports for that range where it gives a number. Writes OUT.svg in the
 * paper's layout: top, the ranges starting at 150 ms on a log scale of
 * 100-10000 ms; bottom, the ranges whose maximum is twice the minimum, on
 * 0-600 ms (150-300 is in both). Plain C, no sim.
 */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct curve {
    int lo, hi;
    double *ms; /* sorted */
    int n, capped;
} curve;

/* What §9.3 and Figure 16 of the paper say in numbers. */
typedef struct paper_fact {
    int lo, hi;
    const char *what; /* median, mean, max, min */
    double ms;
} paper_fact;

static const paper_fact facts[] = {
    { 150, 150, "min", 10000 }, /* "consistently took longer than 10 seconds" */
    { 150, 155, "median", 287 },
    { 150, 200, "max", 513 },
    { 12, 24, "mean", 35 },
    { 12, 24, "max", 152 },
};

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static bool read_curve(const char *path, curve *cv)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "figure16_plot: cannot read %s: %s\n", path, strerror(errno));
        return false;
    }
    memset(cv, 0, sizeof *cv);
    int trials = 0;
    char line[256];
    if (!fgets(line, sizeof line, f) ||
        sscanf(line, "# figure16 range %d %d trials %d", &cv->lo, &cv->hi, &trials) != 3 || trials < 1) {
        fprintf(stderr, "figure16_plot: %s: not a figure16 file (first line: '# figure16 range ...')\n", path);
        fclose(f);
        return false;
    }
    cv->ms = malloc((size_t)trials * sizeof *cv->ms);
    if (!cv->ms) {
        fprintf(stderr, "figure16_plot: out of memory\n");
        fclose(f);
        return false;
    }
    while (cv->n < trials && fgets(line, sizeof line, f)) {
        bool capped = line[0] == '>';
        char *end;
        double v = strtod(line + capped, &end);
        if (end == line + capped || v < 0) {
            fprintf(stderr, "figure16_plot: %s: line %d is not a downtime: %s", path, cv->n + 2, line);
            fclose(f);
            free(cv->ms);
            return false;
        }
        cv->ms[cv->n++] = v;
        cv->capped += capped;
    }
    fclose(f);
    if (cv->n < trials)
        fprintf(stderr, "figure16_plot: %s: %d of %d trials (the run was cut short)\n", path, cv->n, trials);
    if (cv->n == 0) {
        free(cv->ms);
        return false;
    }
    qsort(cv->ms, (size_t)cv->n, sizeof *cv->ms, cmp_double);
    return true;
}

static double quantile(const curve *cv, double q)
{
    int i = (int)ceil(q * cv->n) - 1;
    return cv->ms[i < 0 ? 0 : i];
}

static double mean(const curve *cv)
{
    double s = 0;
    for (int i = 0; i < cv->n; i++)
        s += cv->ms[i];
    return s / cv->n;
}

static void print_table(const curve *cvs, int n)
{
    printf("%-12s %7s %9s %9s %9s %9s %7s   %s\n", "timeouts", "trials", "median", "mean", "p90",
           "max", "capped", "the paper");
    for (int k = 0; k < n; k++) {
        const curve *cv = &cvs[k];
        char name[32];
        snprintf(name, sizeof name, "%d-%dms", cv->lo, cv->hi);
        printf("%-12s %7d %9.1f %9.1f %9.1f %9.1f %7d  ", name, cv->n, quantile(cv, 0.5), mean(cv),
               quantile(cv, 0.9), cv->ms[cv->n - 1], cv->capped);
        for (size_t f = 0; f < sizeof facts / sizeof facts[0]; f++) {
            const paper_fact *p = &facts[f];
            if (p->lo != cv->lo || p->hi != cv->hi)
                continue;
            double ours = !strcmp(p->what, "median") ? quantile(cv, 0.5)
                          : !strcmp(p->what, "mean") ? mean(cv)
                          : !strcmp(p->what, "max")  ? cv->ms[cv->n - 1]
                                                     : cv->ms[0];
            if (!strcmp(p->what, "min"))
                printf(" every trial > %.0f ms (ours: min %.0f)", p->ms, ours);
            else
                printf(" %s %.0f (ours %+.0f%%)", p->what, p->ms, 100 * (ours - p->ms) / p->ms);
        }
        printf("\n");
    }
}

/* ---- SVG ------------------------------------------------------------------ */

#define W 720
#define PANEL_H 300
#define ML 70 /* margins */
#define MR 170
#define MT 30
#define MB 50

static const char *colours[] = { "#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#666666" };

typedef struct axis {
    bool log;
    double lo, hi;
} axis;

static double x_of(const axis *ax, double ms)
{
    double v = ms;
    if (v < ax->lo)
        v = ax->lo;
    if (v > ax->hi)
        v = ax->hi;
    double f = ax->log ? (log10(v) - log10(ax->lo)) / (log10(ax->hi) - log10(ax->lo))
                       : (v - ax->lo) / (ax->hi - ax->lo);
    return ML + f * (W - ML - MR);
}

static void panel(FILE *f, int y0, const axis *ax, const curve *cvs, int n, bool top, const char *title)
{
    int h = PANEL_H - MT - MB;
    fprintf(f, "<text x=\"%d\" y=\"%d\" font-size=\"14\">%s</text>\n", ML, y0 + 18, title);
    fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" stroke=\"#000\"/>\n",
            ML, y0 + MT, W - ML - MR, h);
    for (int p = 0; p <= 100; p += 20) {
        double y = y0 + MT + h - h * p / 100.0;
        fprintf(f, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#ddd\"/>\n", ML, y, W - MR, y);
        fprintf(f, "<text x=\"%d\" y=\"%.1f\" font-size=\"11\" text-anchor=\"end\">%d%%</text>\n", ML - 6, y + 4, p);
    }
    double ticks_log[] = { 100, 200, 500, 1000, 2000, 5000, 10000 };
    double ticks_lin[] = { 0, 100, 200, 300, 400, 500, 600 };
    for (int i = 0; i < 7; i++) {
        double v = ax->log ? ticks_log[i] : ticks_lin[i];
        double x = x_of(ax, v);
        fprintf(f, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#ddd\"/>\n", x, y0 + MT, x, y0 + MT + h);
        fprintf(f, "<text x=\"%.1f\" y=\"%d\" font-size=\"11\" text-anchor=\"middle\">%g</text>\n", x, y0 + MT + h + 15, v);
    }
    fprintf(f, "<text x=\"%d\" y=\"%d\" font-size=\"12\" text-anchor=\"middle\">time without leader (ms)%s</text>\n",
            (ML + W - MR) / 2, y0 + MT + h + 34, ax->log ? ", log scale" : "");
    fprintf(f, "<text x=\"16\" y=\"%d\" font-size=\"12\" transform=\"rotate(-90 16 %d)\" text-anchor=\"middle\">cumulative percent</text>\n",
            y0 + MT + h / 2, y0 + MT + h / 2);
    int shown = 0;
    for (int k = 0; k < n; k++) {
        const curve *cv = &cvs[k];
        bool in_top = cv->lo == 150, in_bottom = cv->hi == 2 * cv->lo || cv->lo != 150;
        if (top ? !in_top : !in_bottom)
            continue;
        const char *col = colours[shown % (sizeof colours / sizeof colours[0])];
        fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\" points=\"", col);
        double prev_y = y0 + MT + h;
        fprintf(f, "%.1f,%.1f", x_of(ax, cv->ms[0]), prev_y);
        for (int i = 0; i < cv->n; i++) {
            double x = x_of(ax, cv->ms[i]);
            double y = y0 + MT + h - h * (double)(i + 1) / cv->n;
            fprintf(f, " %.1f,%.1f %.1f,%.1f", x, prev_y, x, y);
            prev_y = y;
        }
        fprintf(f, "\"/>\n");
        int ly = y0 + MT + 14 + 18 * shown;
        fprintf(f, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"%s\" stroke-width=\"2\"/>\n",
                W - MR + 12, ly - 4, W - MR + 36, ly - 4, col);
        fprintf(f, "<text x=\"%d\" y=\"%d\" font-size=\"12\">%d-%dms%s</text>\n", W - MR + 42, ly,
                cv->lo, cv->hi, cv->capped ? " (capped)" : "");
        shown++;
    }
}

static bool write_svg(const char *path, const curve *cvs, int n)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "figure16_plot: cannot write %s: %s\n", path, strerror(errno));
        return false;
    }
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" font-family=\"sans-serif\">\n",
            W, 2 * PANEL_H);
    fprintf(f, "<rect width=\"100%%\" height=\"100%%\" fill=\"#fff\"/>\n");
    axis top = { true, 100, 10000 }, bottom = { false, 0, 600 };
    panel(f, 0, &top, cvs, n, true, "Figure 16 (top): randomness in election timeouts");
    panel(f, PANEL_H, &bottom, cvs, n, false, "Figure 16 (bottom): scaling the minimum timeout");
    fprintf(f, "</svg>\n");
    return fclose(f) == 0;
}

int main(int argc, char **argv)
{
    if (argc < 4 || strcmp(argv[1], "--svg") != 0) {
        fprintf(stderr, "usage: figure16_plot --svg OUT.svg FILE...  (files written by figure16)\n");
        return 2;
    }
    int n = argc - 3;
    curve *cvs = calloc((size_t)n, sizeof *cvs);
    if (!cvs) {
        fprintf(stderr, "figure16_plot: out of memory\n");
        return 1;
    }
    int got = 0;
    for (int i = 0; i < n; i++)
        if (read_curve(argv[3 + i], &cvs[got]))
            got++;
    int rc = got == n ? 0 : 1;
    if (got > 0) {
        print_table(cvs, got);
        if (write_svg(argv[2], cvs, got))
            printf("wrote %s\n", argv[2]);
        else
            rc = 1;
    }
    for (int i = 0; i < got; i++)
        free(cvs[i].ms);
    free(cvs);
    return rc;
}
