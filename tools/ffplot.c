/* ffplot: charts of an ffprofile results file, as standalone SVG: peak
 * memory against depth (one series per mode, the memory model dashed,
 * OOM-killed runs marked, the memory limit as a horizontal line), wall time
 * per run, and test accuracy, so a reader sees whether the networks learned.
 * The PyTorch reference's modes (torch-*) are drawn dash-dotted in the
 * colour of their ffstream counterpart. The input is read strictly and
 * every value checked: a non-finite or absurd number is skipped, and every
 * loop over ticks and points is bounded, so no input makes an endless
 * chart. --png converts with rsvg-convert when the machine has it.
 *
 * Given one fftrain result (a "per_layer" array) instead, it draws the run
 * layer by layer: the sampled peaks of the resident set and of the cgroup
 * against the plan and the budget, the seconds, and the bytes read and
 * written, with the network's state against the machine's memory above.
 * A run with tiled layers (a "tiles" object) is drawn stream by stream
 * instead: each stream over the tiles with its seconds and the part spent
 * waiting for I/O, its bytes read and written, and its compute rate. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ffstream/fileio.h"
#include "ffstream/json.h"

#define MAX_POINTS 512
#define MAX_SERIES 8
/* The largest results file read (ffprofile's are a few MiB). */
#define RESULTS_MAX_BYTES ((size_t)256 << 20)
/* The largest PNG taken from rsvg-convert. */
#define PNG_MAX_BYTES ((size_t)64 << 20)
/* Bounds of the values drawn: beyond them a value is a damaged file. */
#define MAX_LAYERS_DRAWN 1e6
#define MAX_MIB_DRAWN 1e12
#define MAX_SECONDS_DRAWN 1e9
/* Ticks per axis at most, whatever the range. */
#define MAX_TICKS 40

typedef struct {
    double x, y;
    int status; /* 0 ok, 1 oom-killed, 2 failed */
} point_t;

typedef struct {
    char mode[32];
    const char *color;
    int torch; /* the PyTorch reference: dash-dotted, square markers */
    point_t mem[MAX_POINTS], time[MAX_POINTS], acc[MAX_POINTS], model[MAX_POINTS];
    int n_mem, n_time, n_acc, n_model;
} series_t;

/* torch-ff takes ff-mem's colour (the in-memory FF trainer it mirrors),
 * torch-bp bp's. */
static const struct {
    const char *mode, *color;
} palette[] = {{"ff-stream", "#1b9e77"}, {"ff-mem", "#d95f02"}, {"bp", "#7570b3"},
               {"ff-recurrent", "#e7298a"}, {"torch-ff", "#d95f02"}, {"torch-bp", "#7570b3"}};

static const char *color_of(const char *mode, int index) {
    for (size_t i = 0; i < sizeof palette / sizeof palette[0]; i++)
        if (strcmp(palette[i].mode, mode) == 0) return palette[i].color;
    static const char *const extra[] = {"#66a61e", "#e6ab02", "#a6761d", "#666666"};
    return extra[index % 4];
}

/* Writes s with XML's special characters escaped. */
static void xml_text(FILE *f, const char *s) {
    for (; *s; s++) {
        switch (*s) {
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '&': fputs("&amp;", f); break;
        case '"': fputs("&quot;", f); break;
        default: fputc(*s, f);
        }
    }
}

/* A "nice" step (1, 2 or 5 times a power of ten) for about `ticks` ticks
 * over [0, range]; range is finite and positive by construction, and 1 is
 * returned otherwise. */
static double nice_step(double range, int ticks) {
    if (!isfinite(range) || !(range > 0)) return 1;
    double raw = range / ticks, p = pow(10, floor(log10(raw))), m = raw / p;
    double step = (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * p;
    return isfinite(step) && step > 0 ? step : 1;
}

typedef struct {
    double x0, y0, w, h;       /* plot area in pixels */
    double xmin, xmax, ymax;   /* data ranges (ymin = 0) */
} panel_t;

static double px(const panel_t *p, double x) {
    return p->x0 + (p->xmax > p->xmin ? (x - p->xmin) / (p->xmax - p->xmin) : 0.5) * p->w;
}
static double py(const panel_t *p, double y) { return p->y0 + p->h - y / p->ymax * p->h; }

static void draw_axes(FILE *f, const panel_t *p, const char *title, const char *xlabel,
                      const char *ylabel, const double *xticks, int nx) {
    fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"#fcfcfc\" "
               "stroke=\"#999\"/>\n", p->x0, p->y0, p->w, p->h);
    double step = nice_step(p->ymax, 6);
    /* i x step, not a running sum: no drift, and at most MAX_TICKS lines. */
    for (int i = 0; i <= MAX_TICKS; i++) {
        double y = i * step;
        if (y > p->ymax * 1.0001) break;
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e3e3e3\"/>\n",
                p->x0, py(p, y), p->x0 + p->w, py(p, y));
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\" font-size=\"11\">%g</text>\n",
                p->x0 - 6, py(p, y) + 4, y);
    }
    for (int i = 0; i < nx; i++) {
        double x = px(p, xticks[i]);
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#999\"/>\n", x,
                p->y0 + p->h, x, p->y0 + p->h + 4);
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"11\">%g</text>\n",
                x, p->y0 + p->h + 17, xticks[i]);
    }
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"14\" "
               "font-weight=\"bold\">", p->x0 + p->w / 2, p->y0 - 10);
    xml_text(f, title);
    fprintf(f, "</text>\n<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"12\">",
            p->x0 + p->w / 2, p->y0 + p->h + 36);
    xml_text(f, xlabel);
    fprintf(f, "</text>\n<text transform=\"translate(%.1f,%.1f) rotate(-90)\" "
               "text-anchor=\"middle\" font-size=\"12\">", p->x0 - 44, p->y0 + p->h / 2);
    xml_text(f, ylabel);
    fputs("</text>\n", f);
}

typedef enum { STYLE_MEASURED, STYLE_MODEL, STYLE_TORCH } style_t;

/* The dash pattern of a style's line ("" for solid). */
static const char *dash_of(style_t style) {
    return style == STYLE_MODEL ? " stroke-dasharray=\"6,4\" opacity=\"0.8\""
           : style == STYLE_TORCH ? " stroke-dasharray=\"9,3,2,3\""
                                  : "";
}

/* A point's marker: a dot, or a hollow square for the PyTorch reference. */
static void marker(FILE *f, double x, double y, const char *color, style_t style) {
    if (style == STYLE_TORCH)
        fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"7\" height=\"7\" fill=\"white\" "
                   "stroke=\"%s\" stroke-width=\"1.8\"/>\n", x - 3.5, y - 3.5, color);
    else
        fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3.5\" fill=\"%s\"/>\n", x, y, color);
}

static void draw_series(FILE *f, const panel_t *p, const point_t *pts, int n, const char *color,
                        style_t style) {
    if (n == 0) return;
    fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"%s\"%s points=\"", color,
            style == STYLE_MODEL ? "1.5" : "2.2", dash_of(style));
    for (int i = 0; i < n; i++)
        if (pts[i].status == 0) fprintf(f, "%.1f,%.1f ", px(p, pts[i].x), py(p, pts[i].y));
    fputs("\"/>\n", f);
    if (style == STYLE_MODEL) return;
    for (int i = 0; i < n; i++) {
        double x = px(p, pts[i].x), y = py(p, pts[i].y);
        if (pts[i].status == 0) {
            marker(f, x, y, color, style);
        } else {
            /* A cross in the series' color on a red ring: killed or failed. */
            fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"7\" fill=\"white\" stroke=\"#d62728\" "
                       "stroke-width=\"1.5\"/>\n", x, y);
            fprintf(f, "<path d=\"M%.1f %.1fL%.1f %.1fM%.1f %.1fL%.1f %.1f\" stroke=\"%s\" "
                       "stroke-width=\"2.2\"/>\n", x - 4, y - 4, x + 4, y + 4, x - 4, y + 4, x + 4,
                    y - 4, color);
            /* Near the right edge the label goes to the left of the mark. */
            int left = x > p->x0 + p->w - 40;
            fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"10\" fill=\"#d62728\"%s>%s</text>\n",
                    left ? x - 9 : x + 9, y - 6, left ? " text-anchor=\"end\"" : "",
                    pts[i].status == 1 ? "OOM" : "failed");
        }
    }
}

/* A member's number when it is one, finite and within [lo, hi]; else NAN.
 * 1e999 in a file parses as infinity: it is skipped like a missing value. */
static double number_in(const cJSON *o, const char *name, double lo, double hi) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble < lo ||
        v->valuedouble > hi)
        return NAN;
    return v->valuedouble;
}

/* number_in over the whole finite line, with a fallback for the subtitle. */
static double number_or(const cJSON *o, const char *name, double fallback) {
    double v = number_in(o, name, -1e300, 1e300);
    return isfinite(v) ? v : fallback;
}

static const char *string_of(const cJSON *o, const char *name, const char *fallback) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(v) ? v->valuestring : fallback;
}

static series_t *find_series(series_t *s, int *count, const char *mode) {
    if (strlen(mode) >= sizeof s[0].mode) return NULL; /* no mode is that long */
    for (int i = 0; i < *count; i++)
        if (strcmp(s[i].mode, mode) == 0) return &s[i];
    if (*count >= MAX_SERIES) return NULL;
    series_t *n = &s[(*count)++];
    memset(n, 0, sizeof *n);
    snprintf(n->mode, sizeof n->mode, "%s", mode);
    n->color = color_of(mode, *count);
    n->torch = strncmp(mode, "torch-", 6) == 0;
    return n;
}

static int by_x(const void *a, const void *b) {
    double d = ((const point_t *)a)->x - ((const point_t *)b)->x;
    return (d > 0) - (d < 0);
}

static int by_double(const void *a, const void *b) {
    double d = *(const double *)a - *(const double *)b;
    return (d > 0) - (d < 0);
}

static void usage(FILE *out) {
    fprintf(out, "usage: ffplot RESULTS.json -o CHART.svg [--png CHART.png] [--title TEXT]\n"
                 "Draws peak memory (MiB), wall time (s) and test accuracy (%%) against the\n"
                 "number of layers from an ffprofile results file; from one fftrain result\n"
                 "(--json), memory, seconds and I/O layer by layer. --png converts with\n"
                 "rsvg-convert when it is installed (Debian: librsvg2-bin) and says so when\n"
                 "it is not.\n");
}

/* The chart's data, gathered from the results document. */
typedef struct {
    series_t series[MAX_SERIES];
    int ns;
    double xs[MAX_POINTS];
    int nx;
    double limit, mem_max, time_max, xmin, xmax;
} chart_t;

static void add_x(chart_t *c, double x) {
    for (int i = 0; i < c->nx; i++)
        if (c->xs[i] == x) return;
    if (c->nx < MAX_POINTS) c->xs[c->nx++] = x;
    if (x < c->xmin) c->xmin = x;
    if (x > c->xmax) c->xmax = x;
}

static void gather(chart_t *c, const cJSON *doc) {
    const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(doc, "config");
    double limit = number_in(cfg, "mem_limit_bytes", 1, MAX_MIB_DRAWN * 1048576.0);
    c->limit = isfinite(limit) ? limit / 1048576.0 : 0;
    c->mem_max = c->limit;
    c->xmin = MAX_LAYERS_DRAWN;
    c->xmax = 0;
    const cJSON *r;
    cJSON_ArrayForEach(r, cJSON_GetObjectItemCaseSensitive(doc, "runs")) {
        const cJSON *mode = cJSON_GetObjectItemCaseSensitive(r, "mode");
        const cJSON *status = cJSON_GetObjectItemCaseSensitive(r, "status");
        double x = number_in(r, "layers", 1, MAX_LAYERS_DRAWN);
        if (!cJSON_IsString(mode) || !cJSON_IsString(status) || isnan(x)) continue;
        series_t *s = find_series(c->series, &c->ns, mode->valuestring);
        if (s == NULL) continue;
        int st = strcmp(status->valuestring, "ok") == 0 ? 0
                 : strcmp(status->valuestring, "oom-killed") == 0 ? 1 : 2;
        /* Under a cgroup limit the group's peak (page cache included) is the
         * figure the limit applies to; otherwise the process's peak RSS. */
        double mem = number_in(r, "cgroup_peak_bytes", 0, MAX_MIB_DRAWN * 1048576.0);
        if (isnan(mem)) mem = number_in(r, "peak_rss_bytes", 0, MAX_MIB_DRAWN * 1048576.0);
        double t = number_in(r, "wall_seconds", 0, MAX_SECONDS_DRAWN);
        double acc = number_in(r, "test_accuracy", 0, 1);
        int used = 0;
        if (!isnan(mem) && s->n_mem < MAX_POINTS) {
            s->mem[s->n_mem++] = (point_t){x, mem / 1048576.0, st};
            if (mem / 1048576.0 > c->mem_max) c->mem_max = mem / 1048576.0;
            used = 1;
        }
        if (!isnan(t) && s->n_time < MAX_POINTS) {
            s->time[s->n_time++] = (point_t){x, t, st};
            if (t > c->time_max) c->time_max = t;
            used = 1;
        }
        if (!isnan(acc) && st == 0 && s->n_acc < MAX_POINTS) {
            s->acc[s->n_acc++] = (point_t){x, 100 * acc, 0};
            used = 1;
        }
        if (used) add_x(c, x);
    }
    cJSON_ArrayForEach(r, cJSON_GetObjectItemCaseSensitive(doc, "model")) {
        const cJSON *mode = cJSON_GetObjectItemCaseSensitive(r, "mode");
        double x = number_in(r, "layers", 1, MAX_LAYERS_DRAWN);
        double y = number_in(r, "bytes", 0, MAX_MIB_DRAWN * 1048576.0) / 1048576.0;
        if (!cJSON_IsString(mode) || isnan(x) || isnan(y)) continue;
        series_t *s = find_series(c->series, &c->ns, mode->valuestring);
        if (s == NULL || s->n_model >= MAX_POINTS) continue;
        s->model[s->n_model++] = (point_t){x, y, 0};
        if (y > c->mem_max) c->mem_max = y;
    }
    for (int i = 0; i < c->ns; i++) {
        series_t *s = &c->series[i];
        qsort(s->mem, (size_t)s->n_mem, sizeof(point_t), by_x);
        qsort(s->time, (size_t)s->n_time, sizeof(point_t), by_x);
        qsort(s->acc, (size_t)s->n_acc, sizeof(point_t), by_x);
        qsort(s->model, (size_t)s->n_model, sizeof(point_t), by_x);
    }
    qsort(c->xs, (size_t)c->nx, sizeof(double), by_double);
}

/* The chart as SVG into f. */
static void draw(FILE *f, const chart_t *c, const cJSON *doc, const char *title_arg) {
    const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(doc, "config");
    const cJSON *machine = cJSON_GetObjectItemCaseSensitive(doc, "machine");
    const double W = 1240, H = 560;
    fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
               "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
               "viewBox=\"0 0 %.0f %.0f\" font-family=\"DejaVu Sans, Arial, sans-serif\">\n"
               "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n", W, H, W, H);
    char title[512];
    if (title_arg != NULL) {
        snprintf(title, sizeof title, "%s", title_arg);
    } else {
        snprintf(title, sizeof title,
                 "ffstream memory profile: hidden %.0f, batch %.0f, %.0f epoch(s), %.0f training "
                 "images",
                 number_or(cfg, "hidden", 0), number_or(cfg, "batch", 0),
                 number_or(cfg, "epochs", 0), number_or(doc, "train_samples", 0));
    }
    fprintf(f, "<text x=\"%.0f\" y=\"28\" text-anchor=\"middle\" font-size=\"17\" "
               "font-weight=\"bold\">", W / 2);
    xml_text(f, title);
    fputs("</text>\n", f);
    /* Which code and when: the commit (12 digits, "-dirty" kept) and the
     * date the sweep's latest sitting started. */
    const char *commit = string_of(machine, "commit", "unknown");
    const char *started = string_of(machine, "started", "");
    const char *dirty = strstr(commit, "-dirty") != NULL ? "-dirty" : "";
    char when[16], sub[768];
    if (started[0] != '\0') snprintf(when, sizeof when, "%.10s", started); /* the day */
    else snprintf(when, sizeof when, "date unknown");
    snprintf(sub, sizeof sub, "%.200s, %.0f cores, %.0f GiB; commit %.12s%s, %s%s",
             string_of(machine, "cpu", "?"), number_or(machine, "cores", 0),
             number_or(machine, "memory_bytes", 0) / 1073741824.0, commit, dirty, when,
             c->limit > 0 ? "; every run in a cgroup with the memory limit shown" : "");
    fprintf(f, "<text x=\"%.0f\" y=\"48\" text-anchor=\"middle\" font-size=\"12\" fill=\"#555\">",
            W / 2);
    xml_text(f, sub);
    fputs("</text>\n", f);

    panel_t pm = {80, 90, 470, 340, c->xmin, c->xmax, c->mem_max * 1.12 + 1};
    panel_t pt = {640, 90, 250, 340, c->xmin, c->xmax, c->time_max * 1.12 + 0.1};
    panel_t pa = {960, 90, 250, 340, c->xmin, c->xmax, 100};
    if (c->xmax == c->xmin) {
        pm.xmin = pt.xmin = pa.xmin = c->xmin - 1;
        pm.xmax = pt.xmax = pa.xmax = c->xmax + 1;
    }
    draw_axes(f, &pm, c->limit > 0 ? "Peak memory (cgroup)" : "Peak memory (RSS)",
              "hidden layers", "MiB", c->xs, c->nx);
    draw_axes(f, &pt, "Wall time per run", "hidden layers", "seconds", c->xs, c->nx);
    draw_axes(f, &pa, "Test accuracy", "hidden layers", "% correct", c->xs, c->nx);
    /* Chance: one of the 10 classes. */
    fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#888\" "
               "stroke-dasharray=\"3,3\"/><text x=\"%.1f\" y=\"%.1f\" font-size=\"10\" "
               "fill=\"#666\" text-anchor=\"end\">chance</text>\n",
            pa.x0, py(&pa, 10), pa.x0 + pa.w, py(&pa, 10), pa.x0 + pa.w - 4, py(&pa, 10) - 4);
    if (c->limit > 0) {
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#d62728\" "
                   "stroke-width=\"1.5\" stroke-dasharray=\"10,5\"/>\n", pm.x0, py(&pm, c->limit),
                pm.x0 + pm.w, py(&pm, c->limit));
        /* Left-aligned in the middle: OOM labels sit at the panel's ends. */
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"11\" "
                   "fill=\"#d62728\">memory limit %.0f MiB</text>\n", pm.x0 + pm.w * 0.4,
                py(&pm, c->limit) - 5, c->limit);
    }
    for (int i = 0; i < c->ns; i++) {
        const series_t *s = &c->series[i];
        style_t style = s->torch ? STYLE_TORCH : STYLE_MEASURED;
        draw_series(f, &pm, s->model, s->n_model, s->color, STYLE_MODEL);
        draw_series(f, &pm, s->mem, s->n_mem, s->color, style);
        draw_series(f, &pt, s->time, s->n_time, s->color, style);
        draw_series(f, &pa, s->acc, s->n_acc, s->color, style);
    }
    /* Legend under the panels, wrapped onto a second row when full. */
    double lx = 80, ly = 495;
    for (int i = 0; i < c->ns; i++) {
        const series_t *s = &c->series[i];
        style_t style = s->torch ? STYLE_TORCH : STYLE_MEASURED;
        if (lx > W - 150) lx = 80, ly += 24;
        fprintf(f, "<g class=\"legend\"><line x1=\"%.0f\" y1=\"%.0f\" x2=\"%.0f\" y2=\"%.0f\" "
                   "stroke=\"%s\" stroke-width=\"2.2\"%s/>", lx, ly, lx + 26, ly, s->color,
                dash_of(style));
        marker(f, lx + 13, ly, s->color, style);
        fprintf(f, "<text x=\"%.0f\" y=\"%.0f\" font-size=\"12\">", lx + 32, ly + 4);
        xml_text(f, s->mode);
        fputs("</text></g>\n", f);
        lx += 130;
    }
    if (lx > W - 150) lx = 80, ly += 24;
    fprintf(f, "<line x1=\"%.0f\" y1=\"%.0f\" x2=\"%.0f\" y2=\"%.0f\" stroke=\"#555\" "
               "stroke-dasharray=\"6,4\"/><text x=\"%.0f\" y=\"%.0f\" font-size=\"12\">memory "
               "model</text>\n", lx, ly, lx + 26, ly, lx + 32, ly + 4);
    lx += 140;
    if (lx > W - 200) lx = 80, ly += 24;
    fprintf(f, "<circle cx=\"%.0f\" cy=\"%.0f\" r=\"7\" fill=\"white\" stroke=\"#d62728\"/>"
               "<text x=\"%.0f\" y=\"%.0f\" font-size=\"12\">OOM-killed or failed</text>\n",
            lx + 7, ly, lx + 20, ly + 4);
    fputs("</svg>\n", f);
}

/* The SVG's start: its size, a white page, the title and the subtitle. */
static void chart_head(FILE *f, double W, double H, const char *title, const char *sub) {
    fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
               "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
               "viewBox=\"0 0 %.0f %.0f\" font-family=\"DejaVu Sans, Arial, sans-serif\">\n"
               "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n", W, H, W, H);
    fprintf(f, "<text x=\"%.0f\" y=\"28\" text-anchor=\"middle\" font-size=\"17\" "
               "font-weight=\"bold\">", W / 2);
    xml_text(f, title);
    fputs("</text>\n", f);
    fprintf(f, "<text x=\"%.0f\" y=\"48\" text-anchor=\"middle\" font-size=\"12\" fill=\"#555\">",
            W / 2);
    xml_text(f, sub);
    fputs("</text>\n", f);
}

/* ---- one fftrain run, layer by layer ---------------------------------------- */

typedef struct {
    point_t rss[MAX_POINTS], cgroup[MAX_POINTS], secs[MAX_POINTS], rd[MAX_POINTS], wr[MAX_POINTS];
    int n_rss, n_cgroup, n_secs, n_rd, n_wr;
    double xs[MAX_POINTS];
    int nx;
    double mem_max, sec_max, io_max, plan_mib, budget_mib, xmin, xmax;
} layers_chart_t;

static void gather_layers(layers_chart_t *c, const cJSON *doc) {
    const double MiB = 1048576.0;
    const cJSON *plan = cJSON_GetObjectItemCaseSensitive(doc, "plan");
    double plan_b = number_in(plan, "memory_peak_bytes", 1, MAX_MIB_DRAWN * MiB);
    double budget_b = number_in(plan, "budget_bytes", 1, MAX_MIB_DRAWN * MiB);
    c->plan_mib = isnan(plan_b) ? 0 : plan_b / MiB;
    c->budget_mib = isnan(budget_b) ? 0 : budget_b / MiB;
    c->mem_max = c->plan_mib > c->budget_mib ? c->plan_mib : c->budget_mib;
    c->xmin = MAX_LAYERS_DRAWN;
    const cJSON *l;
    cJSON_ArrayForEach(l, cJSON_GetObjectItemCaseSensitive(doc, "per_layer")) {
        double index = number_in(l, "index", 0, MAX_LAYERS_DRAWN);
        if (isnan(index) || c->n_secs >= MAX_POINTS) continue;
        double x = index + 1;
        double rss = number_in(l, "peak_rss_bytes", 0, MAX_MIB_DRAWN * MiB) / MiB;
        double cg = number_in(l, "cgroup_peak_bytes", 0, MAX_MIB_DRAWN * MiB) / MiB;
        double t = number_in(l, "seconds", 0, MAX_SECONDS_DRAWN);
        double rd = number_in(l, "bytes_read", 0, MAX_MIB_DRAWN * MiB) / MiB;
        double wr = number_in(l, "bytes_written", 0, MAX_MIB_DRAWN * MiB) / MiB;
        int used = 0;
        if (!isnan(rss)) c->rss[c->n_rss++] = (point_t){x, rss, 0}, used = 1;
        if (!isnan(cg)) c->cgroup[c->n_cgroup++] = (point_t){x, cg, 0}, used = 1;
        if (!isnan(t) && t > 0) c->secs[c->n_secs++] = (point_t){x, t, 0}, used = 1;
        if (!isnan(rd)) c->rd[c->n_rd++] = (point_t){x, rd, 0}, used = 1;
        if (!isnan(wr)) c->wr[c->n_wr++] = (point_t){x, wr, 0}, used = 1;
        if (!used) continue;
        if (rss > c->mem_max) c->mem_max = rss;
        if (cg > c->mem_max) c->mem_max = cg;
        if (t > c->sec_max) c->sec_max = t;
        if (rd > c->io_max) c->io_max = rd;
        if (wr > c->io_max) c->io_max = wr;
        if (x < c->xmin) c->xmin = x;
        if (x > c->xmax) c->xmax = x;
    }
    /* About eight depth ticks, whatever the depth. */
    double step = nice_step(c->xmax - c->xmin + 1, 8);
    if (step < 1) step = 1; /* layers are whole */
    for (int i = 0; i <= MAX_TICKS && c->nx < MAX_POINTS; i++) {
        double x = i == 0 ? c->xmin : floor(c->xmin / step) * step + i * step;
        if (x > c->xmax) break;
        if (x >= c->xmin) c->xs[c->nx++] = x;
    }
    qsort(c->rss, (size_t)c->n_rss, sizeof(point_t), by_x);
    qsort(c->cgroup, (size_t)c->n_cgroup, sizeof(point_t), by_x);
    qsort(c->secs, (size_t)c->n_secs, sizeof(point_t), by_x);
    qsort(c->rd, (size_t)c->n_rd, sizeof(point_t), by_x);
    qsort(c->wr, (size_t)c->n_wr, sizeof(point_t), by_x);
}

/* A horizontal reference line across panel p at y, labelled. */
static void hline(FILE *f, const panel_t *p, double y, const char *color, const char *label) {
    fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" "
               "stroke-width=\"1.5\" stroke-dasharray=\"10,5\"/>\n<text x=\"%.1f\" y=\"%.1f\" "
               "font-size=\"11\" fill=\"%s\">", p->x0, py(p, y), p->x0 + p->w, py(p, y), color,
            p->x0 + 6, py(p, y) - 5, color);
    xml_text(f, label);
    fputs("</text>\n", f);
}

static void legend_item(FILE *f, double x, double y, const char *color, const char *text) {
    fprintf(f, "<line x1=\"%.0f\" y1=\"%.0f\" x2=\"%.0f\" y2=\"%.0f\" stroke=\"%s\" "
               "stroke-width=\"2.2\"/><text x=\"%.0f\" y=\"%.0f\" font-size=\"12\">", x, y, x + 26,
            y, color, x + 32, y + 4);
    xml_text(f, text);
    fputs("</text>\n", f);
}

static void draw_layers(FILE *f, const layers_chart_t *c, const cJSON *doc, const char *title_arg) {
    const double W = 1240, H = 540, GiB = 1073741824.0;
    const cJSON *state = cJSON_GetObjectItemCaseSensitive(doc, "state");
    const cJSON *info = cJSON_GetObjectItemCaseSensitive(doc, "run_info");
    char title[512], sub[768];
    if (title_arg != NULL)
        snprintf(title, sizeof title, "%s", title_arg);
    else
        snprintf(title, sizeof title, "%s: %.0f layers x %.0f units, %.0f training images, %.0f epoch(s)",
                 string_of(doc, "mode", "fftrain"), number_or(doc, "layers", 0),
                 number_or(doc, "hidden", 0), number_or(doc, "train_samples", 0),
                 number_or(doc, "epochs", 0));
    const char *commit = string_of(info, "commit", "unknown");
    char budget[64] = "";
    if (isfinite(number_in(state, "to_budget", 0, 1e12)))
        snprintf(budget, sizeof budget, ", %.0fx the budget", number_or(state, "to_budget", 0));
    snprintf(sub, sizeof sub,
             "weights + Adam state %.2f GiB = %.2fx the machine's %.1f GiB of RAM%s; test "
             "accuracy %.2f%%; commit %.12s%s, %.10s",
             number_or(state, "bytes", 0) / GiB, number_or(state, "to_ram", 0),
             number_or(state, "machine_ram_bytes", 0) / GiB, budget,
             100 * number_or(doc, "test_accuracy", 0), commit,
             strstr(commit, "-dirty") != NULL ? "-dirty" : "", string_of(info, "started", "date unknown"));
    chart_head(f, W, H, title, sub);
    panel_t pm = {80, 90, 470, 340, c->xmin, c->xmax, c->mem_max * 1.12 + 1};
    panel_t pt = {640, 90, 250, 340, c->xmin, c->xmax, c->sec_max * 1.12 + 0.1};
    panel_t pi = {960, 90, 250, 340, c->xmin, c->xmax, c->io_max * 1.12 + 1};
    if (c->xmax == c->xmin) {
        pm.xmin = pt.xmin = pi.xmin = c->xmin - 1;
        pm.xmax = pt.xmax = pi.xmax = c->xmax + 1;
    }
    draw_axes(f, &pm, "Memory per layer (sampled peaks)", "layer", "MiB", c->xs, c->nx);
    draw_axes(f, &pt, "Seconds per layer", "layer", "seconds", c->xs, c->nx);
    draw_axes(f, &pi, "Disk I/O per layer", "layer", "MiB", c->xs, c->nx);
    char label[128];
    if (c->budget_mib > 0) {
        snprintf(label, sizeof label, "budget %.0f MiB", c->budget_mib);
        hline(f, &pm, c->budget_mib, "#d62728", label);
    }
    if (c->plan_mib > 0) {
        snprintf(label, sizeof label, "plan %.0f MiB (the model's peak)", c->plan_mib);
        hline(f, &pm, c->plan_mib, "#555", label);
    }
    draw_series(f, &pm, c->cgroup, c->n_cgroup, "#7570b3", STYLE_MEASURED);
    draw_series(f, &pm, c->rss, c->n_rss, "#1b9e77", STYLE_MEASURED);
    draw_series(f, &pt, c->secs, c->n_secs, "#1b9e77", STYLE_MEASURED);
    draw_series(f, &pi, c->rd, c->n_rd, "#1b9e77", STYLE_MEASURED);
    draw_series(f, &pi, c->wr, c->n_wr, "#d95f02", STYLE_MEASURED);
    double ly = 495;
    legend_item(f, 80, ly, "#1b9e77", "resident set (RSS)");
    legend_item(f, 260, ly, "#7570b3", "cgroup (page cache included)");
    legend_item(f, 960, ly, "#1b9e77", "read");
    legend_item(f, 1060, ly, "#d95f02", "written");
    fputs("</svg>\n", f);
}

/* ---- one fftrain run with tiled layers, stream by stream ---------------------- */

typedef struct {
    point_t secs[MAX_POINTS], wait[MAX_POINTS], rd[MAX_POINTS], wr[MAX_POINTS], rate[MAX_POINTS];
    int n;
    double xs[MAX_POINTS];
    int nx;
    double sec_max, io_max, rate_max;
    char kinds[256];
} tiles_chart_t;

static void gather_tiles(tiles_chart_t *c, const cJSON *doc) {
    const double GiB = 1073741824.0;
    const cJSON *tiles = cJSON_GetObjectItemCaseSensitive(doc, "tiles");
    const cJSON *p;
    int i = 0;
    cJSON_ArrayForEach(p, cJSON_GetObjectItemCaseSensitive(tiles, "passes")) {
        if (c->n >= MAX_POINTS) break;
        double t = number_in(p, "seconds", 0, MAX_SECONDS_DRAWN);
        double w = number_in(p, "io_wait_seconds", 0, MAX_SECONDS_DRAWN);
        double rd = number_in(p, "bytes_read", 0, MAX_MIB_DRAWN * 1048576.0) / GiB;
        double wr = number_in(p, "bytes_written", 0, MAX_MIB_DRAWN * 1048576.0) / GiB;
        double gf = number_in(p, "gflop", 0, 1e12);
        i++;
        if (isnan(t) || isnan(w) || isnan(rd) || isnan(wr)) continue;
        const char *kind = string_of(p, "kind", "?");
        if (strstr(c->kinds, kind) == NULL && strlen(c->kinds) + strlen(kind) + 3 < sizeof c->kinds) {
            if (c->kinds[0] != '\0') strcat(c->kinds, ", ");
            strncat(c->kinds, kind, 15);
        }
        double x = i, r = !isnan(gf) && t > 0 ? gf / t : 0;
        c->secs[c->n] = (point_t){x, t, 0};
        c->wait[c->n] = (point_t){x, w, 0};
        c->rd[c->n] = (point_t){x, rd, 0};
        c->wr[c->n] = (point_t){x, wr, 0};
        c->rate[c->n] = (point_t){x, r, 0};
        c->n++;
        if (t > c->sec_max) c->sec_max = t;
        if (rd > c->io_max) c->io_max = rd;
        if (wr > c->io_max) c->io_max = wr;
        if (r > c->rate_max) c->rate_max = r;
    }
    double step = nice_step(i > 1 ? i : 2, 8);
    if (step < 1) step = 1;
    for (int k = 0; k <= MAX_TICKS && c->nx < MAX_POINTS; k++) {
        double x = 1 + k * step;
        if (x > i) break;
        c->xs[c->nx++] = x;
    }
}

static void draw_tiles(FILE *f, const tiles_chart_t *c, const cJSON *doc, const char *title_arg) {
    const double W = 1240, H = 540;
    const cJSON *info = cJSON_GetObjectItemCaseSensitive(doc, "run_info");
    const cJSON *tiles = cJSON_GetObjectItemCaseSensitive(doc, "tiles");
    char title[512], sub[768];
    if (title_arg != NULL)
        snprintf(title, sizeof title, "%s", title_arg);
    else
        snprintf(title, sizeof title, "%s: %.0f layers x %.0f units in tiles of %.0f, streamed "
                 "from disk", string_of(doc, "mode", "fftrain"), number_or(doc, "layers", 0),
                 number_or(doc, "hidden", 0), number_or(tiles, "units", 0));
    snprintf(sub, sizeof sub, "each point one stream over the tiles (%s); tile I/O %s; test "
             "accuracy %.2f%%; commit %.12s, %.10s", c->kinds, string_of(tiles, "io", "?"),
             100 * number_or(doc, "test_accuracy", 0), string_of(info, "commit", "unknown"),
             string_of(info, "started", "date unknown"));
    chart_head(f, W, H, title, sub);
    double xmin = 1, xmax = c->n > 0 ? c->secs[c->n - 1].x : 2;
    if (xmax <= xmin) xmax = xmin + 1;
    panel_t pt = {80, 90, 330, 340, xmin, xmax, c->sec_max * 1.12 + 0.1};
    panel_t pi = {490, 90, 330, 340, xmin, xmax, c->io_max * 1.12 + 0.01};
    panel_t pr = {900, 90, 310, 340, xmin, xmax, c->rate_max * 1.12 + 1};
    draw_axes(f, &pt, "Seconds per stream", "stream", "seconds", c->xs, c->nx);
    draw_axes(f, &pi, "Disk I/O per stream", "stream", "GiB", c->xs, c->nx);
    draw_axes(f, &pr, "Products per stream", "stream", "GFLOP/s", c->xs, c->nx);
    draw_series(f, &pt, c->secs, c->n, "#1b9e77", STYLE_MEASURED);
    draw_series(f, &pt, c->wait, c->n, "#d62728", STYLE_MEASURED);
    draw_series(f, &pi, c->rd, c->n, "#1b9e77", STYLE_MEASURED);
    draw_series(f, &pi, c->wr, c->n, "#d95f02", STYLE_MEASURED);
    draw_series(f, &pr, c->rate, c->n, "#7570b3", STYLE_MEASURED);
    double ly = 495;
    legend_item(f, 80, ly, "#1b9e77", "wall time");
    legend_item(f, 220, ly, "#d62728", "waiting for I/O");
    legend_item(f, 490, ly, "#1b9e77", "read");
    legend_item(f, 590, ly, "#d95f02", "written");
    legend_item(f, 900, ly, "#7570b3", "matrix products");
    fputs("</svg>\n", f);
}

/* Runs rsvg-convert on svg and returns the PNG it writes to its standard
 * output (at most PNG_MAX_BYTES), or NULL with why. */
static char *render_png(const char *svg, size_t *size, char *why, size_t cap) {
    int fds[2];
    *size = 0;
    if (pipe(fds) != 0) {
        snprintf(why, cap, "pipe: %s", strerror(errno));
        return NULL;
    }
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fds[1], STDOUT_FILENO);
        close(fds[0]);
        close(fds[1]);
        execlp("rsvg-convert", "rsvg-convert", "-f", "png", svg, (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    char *buf = NULL;
    size_t cap_buf = 0;
    int too_big = 0;
    while (pid > 0) {
        if (*size == cap_buf) {
            if (cap_buf >= PNG_MAX_BYTES) {
                too_big = 1;
                break;
            }
            size_t next = cap_buf ? cap_buf * 2 : 65536;
            char *grown = realloc(buf, next);
            if (grown == NULL) break;
            buf = grown;
            cap_buf = next;
        }
        ssize_t n = read(fds[0], buf + *size, cap_buf - *size);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        *size += (size_t)n;
    }
    close(fds[0]);
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) ||
        WEXITSTATUS(status) != 0 || too_big || *size == 0) {
        snprintf(why, cap, "%s", too_big ? "its output is over 64 MiB"
                                 : pid > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 127
                                     ? "rsvg-convert is not installed (Debian: apt-get install "
                                       "librsvg2-bin)"
                                     : "rsvg-convert failed");
        free(buf);
        return NULL;
    }
    return buf;
}

int main(int argc, char **argv) {
    const char *in = NULL, *out = NULL, *png = NULL, *title_arg = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else if ((strcmp(argv[i], "-o") == 0 || strcmp(argv[i], "--out") == 0) && i + 1 < argc) {
            out = argv[++i];
        } else if (strcmp(argv[i], "--png") == 0 && i + 1 < argc) {
            png = argv[++i];
        } else if (strcmp(argv[i], "--title") == 0 && i + 1 < argc) {
            title_arg = argv[++i];
        } else if (argv[i][0] == '-') {
            fprintf(stderr, "ffplot: unknown or incomplete flag '%s' (see --help)\n", argv[i]);
            return 2;
        } else if (in == NULL) {
            in = argv[i];
        } else {
            fprintf(stderr, "ffplot: unexpected argument '%s'\n", argv[i]);
            return 2;
        }
    }
    if (in == NULL || out == NULL) {
        usage(stderr);
        return 2;
    }
    int rc = 1;
    char *text = NULL, *svg = NULL;
    size_t size = 0, svg_size = 0;
    cJSON *doc = NULL;
    FILE *f = NULL;
    static chart_t chart;
    static layers_chart_t layers;
    static tiles_chart_t tile_chart;
    ff_error_t err;
    /* read_small refuses a directory, a FIFO or a device (without blocking
     * on the FIFO) and checks the size before allocating. */
    if (ff_fileio_read_small(in, RESULTS_MAX_BYTES, &text, &size, &err) != 0 ||
        ff_json_parse(in, text, size, &doc, &err) != 0) {
        fprintf(stderr, "ffplot: %s\n", err.msg);
        goto cleanup;
    }
    const int per_layer = !cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(doc, "runs")) &&
                          cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(doc, "per_layer"));
    if (!per_layer && !cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(doc, "runs"))) {
        fprintf(stderr, "ffplot: %s: neither an ffprofile results file (a \"runs\" array) nor "
                        "an fftrain result (a \"per_layer\" array)\n", in);
        goto cleanup;
    }
    const int tiled = per_layer && cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(doc, "tiles"));
    if (tiled) {
        gather_tiles(&tile_chart, doc);
        if (tile_chart.n == 0) {
            fprintf(stderr, "ffplot: %s: no stream over the tiles to plot\n", in);
            goto cleanup;
        }
    } else if (per_layer) {
        gather_layers(&layers, doc);
        if (layers.n_secs == 0) {
            fprintf(stderr, "ffplot: %s: no layer to plot (no layer with a finite index and "
                            "time)\n", in);
            goto cleanup;
        }
    } else {
        gather(&chart, doc);
        if (chart.ns == 0 || chart.nx == 0) {
            fprintf(stderr,
                    "ffplot: %s: no runs to plot (no run with a finite depth and measure)\n", in);
            goto cleanup;
        }
    }
    f = open_memstream(&svg, &svg_size);
    if (f == NULL) {
        fprintf(stderr, "ffplot: out of memory for the chart\n");
        goto cleanup;
    }
    if (tiled) draw_tiles(f, &tile_chart, doc, title_arg);
    else if (per_layer) draw_layers(f, &layers, doc, title_arg);
    else draw(f, &chart, doc, title_arg);
    int bad = ferror(f);
    if (fclose(f) != 0 || bad) {
        f = NULL;
        fprintf(stderr, "ffplot: out of memory for the chart\n");
        goto cleanup;
    }
    f = NULL;
    if (ff_fileio_write_atomic(out, svg, svg_size, &err) != 0) {
        fprintf(stderr, "ffplot: %s\n", err.msg);
        goto cleanup;
    }
    rc = 0;
    if (png != NULL) {
        char why[256];
        size_t png_size;
        char *bytes = render_png(out, &png_size, why, sizeof why);
        if (bytes == NULL)
            fprintf(stderr, "ffplot: no PNG written: %s\n", why);
        else if (ff_fileio_write_atomic(png, bytes, png_size, &err) != 0)
            fprintf(stderr, "ffplot: no PNG written: %s\n", err.msg);
        free(bytes);
    }
cleanup:
    if (f != NULL) fclose(f);
    free(svg);
    cJSON_Delete(doc);
    free(text);
    return rc;
}
