/* ffplot: charts of an ffprofile results file, as standalone SVG: peak
 * memory against depth (one series per mode, the memory model dashed,
 * OOM-killed runs marked, the memory limit as a horizontal line) and wall
 * time per run. --png converts with rsvg-convert when the machine has it. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_POINTS 512

typedef struct {
    double x, y;
    int status; /* 0 ok, 1 oom-killed, 2 failed */
} point_t;

typedef struct {
    char mode[16];
    const char *color;
    point_t mem[MAX_POINTS], time[MAX_POINTS], model[MAX_POINTS];
    int n_mem, n_time, n_model;
} series_t;

static const struct {
    const char *mode, *color;
} palette[] = {{"ff-stream", "#1b9e77"}, {"ff-mem", "#d95f02"}, {"bp", "#7570b3"},
               {"ff-recurrent", "#e7298a"}};

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

/* A "nice" step (1, 2 or 5 times a power of ten) for about `ticks` ticks. */
static double nice_step(double range, int ticks) {
    double raw = range / ticks, p = pow(10, floor(log10(raw))), m = raw / p;
    return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * p;
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
    for (double y = 0; y <= p->ymax * 1.0001; y += step) {
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
               "text-anchor=\"middle\" font-size=\"12\">", p->x0 - 48, p->y0 + p->h / 2);
    xml_text(f, ylabel);
    fputs("</text>\n", f);
}

static void draw_series(FILE *f, const panel_t *p, const point_t *pts, int n, const char *color,
                        int dashed) {
    if (n == 0) return;
    fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"%s\"%s points=\"", color,
            dashed ? "1.5" : "2.2", dashed ? " stroke-dasharray=\"6,4\" opacity=\"0.8\"" : "");
    for (int i = 0; i < n; i++)
        if (pts[i].status == 0) fprintf(f, "%.1f,%.1f ", px(p, pts[i].x), py(p, pts[i].y));
    fputs("\"/>\n", f);
    if (dashed) return;
    for (int i = 0; i < n; i++) {
        double x = px(p, pts[i].x), y = py(p, pts[i].y);
        if (pts[i].status == 0) {
            fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3.5\" fill=\"%s\"/>\n", x, y, color);
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

static double number(const cJSON *o, const char *name, double fallback) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsNumber(v) ? v->valuedouble : fallback;
}

static series_t *find_series(series_t *s, int *count, const char *mode) {
    for (int i = 0; i < *count; i++)
        if (strcmp(s[i].mode, mode) == 0) return &s[i];
    if (*count >= 8) return NULL;
    series_t *n = &s[(*count)++];
    memset(n, 0, sizeof *n);
    snprintf(n->mode, sizeof n->mode, "%s", mode);
    n->color = color_of(mode, *count);
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

static char *read_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (f == NULL) return NULL;
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *t = size >= 0 ? malloc((size_t)size + 1) : NULL;
    if (t != NULL && fread(t, 1, (size_t)size, f) == (size_t)size) t[size] = '\0';
    else {
        free(t);
        t = NULL;
    }
    fclose(f);
    return t;
}

static void usage(FILE *out) {
    fprintf(out, "usage: ffplot RESULTS.json -o CHART.svg [--png CHART.png] [--title TEXT]\n"
                 "Draws peak memory (MiB) and wall time (s) against the number of layers\n"
                 "from an ffprofile results file. --png converts with rsvg-convert when it\n"
                 "is installed (Debian: librsvg2-bin) and says so when it is not.\n");
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
    char *text = read_file(in);
    if (text == NULL) {
        fprintf(stderr, "ffplot: %s: cannot read: %s\n", in, strerror(errno));
        return 1;
    }
    cJSON *doc = cJSON_Parse(text);
    free(text);
    const cJSON *runs = doc ? cJSON_GetObjectItemCaseSensitive(doc, "runs") : NULL;
    if (!cJSON_IsArray(runs)) {
        fprintf(stderr, "ffplot: %s: not an ffprofile results file (no \"runs\" array)\n", in);
        cJSON_Delete(doc);
        return 1;
    }
    const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(doc, "config");
    const cJSON *machine = cJSON_GetObjectItemCaseSensitive(doc, "machine");
    double limit = number(cfg, "mem_limit_bytes", 0) / 1048576.0;

    static series_t series[8];
    int ns = 0;
    double xs[MAX_POINTS];
    int nx = 0;
    double mem_max = limit, time_max = 0, xmin = 1e9, xmax = -1e9;
    const cJSON *r;
    cJSON_ArrayForEach(r, runs) {
        const cJSON *mode = cJSON_GetObjectItemCaseSensitive(r, "mode");
        const cJSON *status = cJSON_GetObjectItemCaseSensitive(r, "status");
        if (!cJSON_IsString(mode) || !cJSON_IsString(status)) continue;
        series_t *s = find_series(series, &ns, mode->valuestring);
        if (s == NULL || s->n_mem >= MAX_POINTS) continue;
        double x = number(r, "layers", 0);
        int st = strcmp(status->valuestring, "ok") == 0 ? 0
                 : strcmp(status->valuestring, "oom-killed") == 0 ? 1 : 2;
        /* Under a cgroup limit the group's peak (page cache included) is the
         * figure the limit applies to; otherwise the process's peak RSS. */
        double mem = number(r, "cgroup_peak_bytes", number(r, "peak_rss_bytes", 0)) / 1048576.0;
        double t = number(r, "wall_seconds", 0);
        s->mem[s->n_mem++] = (point_t){x, mem, st};
        s->time[s->n_time++] = (point_t){x, t, st};
        if (mem > mem_max) mem_max = mem;
        if (t > time_max) time_max = t;
        if (x < xmin) xmin = x;
        if (x > xmax) xmax = x;
        int seen = 0;
        for (int i = 0; i < nx; i++) seen |= xs[i] == x;
        if (!seen && nx < MAX_POINTS) xs[nx++] = x;
    }
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(doc, "model");
    cJSON_ArrayForEach(r, model) {
        const cJSON *mode = cJSON_GetObjectItemCaseSensitive(r, "mode");
        if (!cJSON_IsString(mode)) continue;
        series_t *s = find_series(series, &ns, mode->valuestring);
        if (s == NULL || s->n_model >= MAX_POINTS) continue;
        double x = number(r, "layers", 0), y = number(r, "bytes", 0) / 1048576.0;
        s->model[s->n_model++] = (point_t){x, y, 0};
        if (y > mem_max) mem_max = y;
    }
    if (ns == 0 || nx == 0) {
        fprintf(stderr, "ffplot: %s: no runs to plot\n", in);
        cJSON_Delete(doc);
        return 1;
    }
    for (int i = 0; i < ns; i++) {
        qsort(series[i].mem, (size_t)series[i].n_mem, sizeof(point_t), by_x);
        qsort(series[i].time, (size_t)series[i].n_time, sizeof(point_t), by_x);
        qsort(series[i].model, (size_t)series[i].n_model, sizeof(point_t), by_x);
    }
    qsort(xs, (size_t)nx, sizeof(double), by_double);
    FILE *f = fopen(out, "w");
    if (f == NULL) {
        fprintf(stderr, "ffplot: %s: cannot create: %s\n", out, strerror(errno));
        cJSON_Delete(doc);
        return 1;
    }
    const double W = 1100, H = 520;
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
                 number(cfg, "hidden", 0), number(cfg, "batch", 0), number(cfg, "epochs", 0),
                 number(doc, "train_samples", 0));
    }
    fprintf(f, "<text x=\"%.0f\" y=\"28\" text-anchor=\"middle\" font-size=\"17\" "
               "font-weight=\"bold\">", W / 2);
    xml_text(f, title);
    fputs("</text>\n", f);
    const cJSON *cpu = cJSON_GetObjectItemCaseSensitive(machine, "cpu");
    char sub[512];
    snprintf(sub, sizeof sub, "%s, %.0f cores, %.0f GiB%s", cJSON_IsString(cpu) ? cpu->valuestring : "?",
             number(machine, "cores", 0), number(machine, "memory_bytes", 0) / 1073741824.0,
             limit > 0 ? "; every run in a cgroup with the memory limit shown" : "");
    fprintf(f, "<text x=\"%.0f\" y=\"48\" text-anchor=\"middle\" font-size=\"12\" fill=\"#555\">",
            W / 2);
    xml_text(f, sub);
    fputs("</text>\n", f);

    panel_t pm = {80, 90, 560, 340, xmin, xmax, mem_max * 1.12 + 1};
    panel_t pt = {730, 90, 340, 340, xmin, xmax, time_max * 1.12 + 0.1};
    if (xmax == xmin) pm.xmin = pt.xmin = xmin - 1, pm.xmax = pt.xmax = xmax + 1;
    draw_axes(f, &pm, limit > 0 ? "Peak memory (cgroup)" : "Peak memory (RSS)", "hidden layers",
              "MiB", xs, nx);
    draw_axes(f, &pt, "Wall time per run", "hidden layers", "seconds", xs, nx);
    if (limit > 0) {
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#d62728\" "
                   "stroke-width=\"1.5\" stroke-dasharray=\"10,5\"/>\n", pm.x0, py(&pm, limit),
                pm.x0 + pm.w, py(&pm, limit));
        /* Left-aligned in the middle: OOM labels sit at the panel's ends. */
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"11\" "
                   "fill=\"#d62728\">memory limit %.0f MiB</text>\n", pm.x0 + pm.w * 0.4,
                py(&pm, limit) - 5, limit);
    }
    for (int i = 0; i < ns; i++) {
        draw_series(f, &pm, series[i].model, series[i].n_model, series[i].color, 1);
        draw_series(f, &pm, series[i].mem, series[i].n_mem, series[i].color, 0);
        draw_series(f, &pt, series[i].time, series[i].n_time, series[i].color, 0);
    }
    /* Legend under the panels. */
    double lx = 80, ly = 485;
    for (int i = 0; i < ns; i++) {
        fprintf(f, "<g class=\"legend\"><line x1=\"%.0f\" y1=\"%.0f\" x2=\"%.0f\" y2=\"%.0f\" "
                   "stroke=\"%s\" stroke-width=\"2.2\"/><circle cx=\"%.0f\" cy=\"%.0f\" r=\"3.5\" "
                   "fill=\"%s\"/><text x=\"%.0f\" y=\"%.0f\" font-size=\"12\">",
                lx, ly, lx + 26, ly, series[i].color, lx + 13, ly, series[i].color, lx + 32,
                ly + 4);
        xml_text(f, series[i].mode);
        fputs("</text></g>\n", f);
        lx += 130;
    }
    fprintf(f, "<line x1=\"%.0f\" y1=\"%.0f\" x2=\"%.0f\" y2=\"%.0f\" stroke=\"#555\" "
               "stroke-dasharray=\"6,4\"/><text x=\"%.0f\" y=\"%.0f\" font-size=\"12\">memory "
               "model</text>\n", lx, ly, lx + 26, ly, lx + 32, ly + 4);
    lx += 140;
    fprintf(f, "<circle cx=\"%.0f\" cy=\"%.0f\" r=\"7\" fill=\"white\" stroke=\"#d62728\"/>"
               "<text x=\"%.0f\" y=\"%.0f\" font-size=\"12\">OOM-killed or failed</text>\n",
            lx + 7, ly, lx + 20, ly + 4);
    fputs("</svg>\n", f);
    int bad = ferror(f);
    if (fclose(f) != 0 || bad) {
        fprintf(stderr, "ffplot: %s: write failed\n", out);
        cJSON_Delete(doc);
        return 1;
    }
    cJSON_Delete(doc);
    if (png != NULL) {
        pid_t pid = fork();
        if (pid == 0) {
            execlp("rsvg-convert", "rsvg-convert", "-o", png, out, (char *)NULL);
            _exit(127);
        }
        int status = 0;
        if (pid < 0 || waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) ||
            WEXITSTATUS(status) != 0) {
            fprintf(stderr, "ffplot: no PNG written: rsvg-convert %s (Debian: apt-get install "
                            "librsvg2-bin)\n",
                    WIFEXITED(status) && WEXITSTATUS(status) == 127 ? "is not installed"
                                                                    : "failed");
        }
    }
    return 0;
}
