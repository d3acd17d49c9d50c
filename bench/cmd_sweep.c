/* `resprop sweep`: a grid of training runs from a sweep file (core/sweep.h), one run record per point,
 * each point a child process `resprop train --config POINT.ini` of this same binary, -j N at a time.
 * Complete records are skipped, interrupted points resume from their checkpoint, a failed point is
 * logged and the sweep goes on. --estimate prints each point's wall-clock from a measured step time. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <hdf5.h>
#include <hdf5_hl.h>

#include "bench/cli.h"
#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/runconfig.h"
#include "core/sweep.h"
#include "core/sysinfo.h"
#include "core/timer.h"

#define SW_DIR_MAX 512    /* <runs dir>/<sweep name> */
#define SW_PATH_MAX 1024  /* <dir>/<point name> (SWEEP_NAME_MAX) */
#define SW_TEXT_MAX 65536 /* a point's config as INI text */
#define SW_LOG_TAIL 6     /* lines of a failed point's log printed */

typedef struct {
    const char *file;
    long jobs, threads; /* threads: T, 0 = online CPUs */
    bool dry_run, estimate;
    const char *runs_dir;
    int n_over;
    const char **over; /* "KEY=VALUE" */
} SweepArgs;

/* PT_STALE: a record or checkpoint exists but was made with another configuration (its POINT.ini
 * differs from the point's, threads and data-dir aside): the point is neither skipped nor resumed. */
typedef enum { PT_NEW, PT_RESUME, PT_DONE, PT_STALE } PointState;
static const char *const state_name[] = {"new", "resume", "done", "stale"};

static void sweep_usage(FILE *f) {
    fprintf(f,
"usage: resprop sweep FILE.ini [-j N] [--threads T] [--runs-dir DIR] [--dry-run] [--estimate] [--KEY=VALUE ...]\n"
"  Runs every point of a sweep file: one `resprop train` child process per point, N at a time, each with\n"
"  max(1, T / N) threads (T = --threads, default the number of online CPUs) unless the file sets\n"
"  `threads`. Records: DIR/NAME/POINT.h5 (DIR = --runs-dir, default results/runs; NAME from [sweep]),\n"
"  with POINT.log (the run's output) and POINT.ini (its full configuration) next to it.\n"
"  A point whose record POINT.h5 exists is skipped; one with a checkpoint POINT.ckpt.h5 (an interrupted\n"
"  run) is resumed (`train --resume`); a failed point is reported with the end of its log and the sweep\n"
"  goes on. A point whose record or checkpoint was made with another configuration (its POINT.ini\n"
"  differs, threads and data-dir aside) is reported as stale and counted as failed, not skipped.\n"
"  At the end: a summary; exit 1 if any point failed, 2 for a bad sweep file or option.\n"
"  --KEY=VALUE    a run key (resprop train --help) or scheme.KEY set for every point, after the file\n"
"  --dry-run      list the points (name, status, keys that differ from the defaults) and exit\n"
"  --estimate     estimate each point's wall-clock from a measured training step (resprop bench step\n"
"                 --steps 3, once per model/input/batch/scheme/reuse/backend) and exit: steps x step\n"
"                 time + a test pass counted as a third of a training step per test batch\n"
"  -j, --jobs N   points run in parallel (default 1)\n"
"  --threads T    CPU threads shared by the running points (default: the online CPUs)\n"
"  --runs-dir DIR where the sweep's directory goes (default results/runs)\n"
"\n"
"Sweep file (INI; ';' or '#' comments):\n"
"  [sweep]\n"
"  name = smoke              ; required: records go to DIR/smoke/\n"
"  [base]                    ; run keys for every point: any `resprop train` key, and scheme.KEY\n"
"  dataset = fmnist\n"
"  model = resnet20\n"
"  scheme.warmup = fraction:0.25\n"
"  [grid dense]              ; one or more [grid] / [grid NAME]: the cross product of the\n"
"  scheme = dense            ; comma-separated lists (last key fastest), over [base]\n"
"  seed = 1, 2\n"
"  [grid schemes]\n"
"  scheme = resprop, meprop\n"
"  reuse = 0.5, 0.9\n"
"  seed = 1, 2\n"
"  Points: the grids' cross products in file order; a point equal to an earlier one is dropped. A list\n"
"  item with a comma is quoted: schedule = \"step:30,60\", cosine. A scheme.KEY applies to the points\n"
"  whose scheme has option KEY (dropped for the others; an error if no point's scheme has it). The keys\n"
"  out and resume are the sweep's. Everything is validated before anything runs.\n"
"  Point names: the keys that vary across the points and that the point's grid sets, in run-key order\n"
"  (dataset, model, scheme bare; others KEY-VALUE; joined by '_'), e.g. resprop_reuse-0.9_seed-1.\n");
}

/* ---- small helpers ----------------------------------------------------------------------------- */

static bool sw_exists(const char *p) { return access(p, F_OK) == 0; }

static int sw_mkdirs(const char *dir) {
    char tmp[SW_DIR_MAX + 2];
    snprintf(tmp, sizeof tmp, "%.*s/", SW_DIR_MAX, dir);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(tmp, 0777) != 0 && errno != EEXIST) {
            log_msg(LOG_ERROR, "sweep: cannot create directory %s: %s", tmp, strerror(errno));
            return ERR_IO;
        }
        *p = '/';
    }
    return 0;
}

static void sw_fmt_time(double s, char *buf, size_t cap) {
    if (!(s >= 0) || !isfinite(s)) {
        snprintf(buf, cap, "?");
        return;
    }
    if (s < 10) {
        snprintf(buf, cap, "%.1fs", s);
        return;
    }
    long t = lround(s);
    if (t >= 86400) snprintf(buf, cap, "%ldd%02ldh%02ldm", t / 86400, t % 86400 / 3600, t % 3600 / 60);
    else if (t >= 3600) snprintf(buf, cap, "%ldh%02ldm", t / 3600, t % 3600 / 60);
    else if (t >= 60) snprintf(buf, cap, "%ldm%02lds", t / 60, t % 60);
    else snprintf(buf, cap, "%lds", t);
}

static void sw_point_base(const char *dir, const char *point, char *buf, size_t cap) {
    snprintf(buf, cap, "%.*s/%.*s", SW_DIR_MAX, dir, SWEEP_NAME_MAX, point);
}

/* text without its "threads =" and "data-dir =" lines into out (cap bytes): the thread count may change
 * with -j, and a dataset may move between invocations. */
static void sw_strip_volatile(const char *text, char *out, size_t cap) {
    size_t n = 0;
    for (const char *line = text; *line && n + 1 < cap;) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) + 1 : strlen(line);
        if (strncmp(line, "threads =", 9) != 0 && strncmp(line, "data-dir =", 10) != 0) {
            if (n + len >= cap) len = cap - n - 1;
            memcpy(out + n, line, len);
            n += len;
        }
        line += len;
    }
    out[n] = '\0';
}

/* Whether the stored POINT.ini (if any) holds the configuration `text`; on a difference, *line gets
 * the first stored line that differs. */
static bool sw_same_config(const char *base, const char *text, char *line, size_t cap) {
    char ini[SW_PATH_MAX + 16];
    snprintf(ini, sizeof ini, "%s.ini", base);
    FILE *f = fopen(ini, "r");
    if (!f) return true; /* a record made without the sweep: nothing to compare */
    char *old = mem_alloc(SW_TEXT_MAX), *a = mem_alloc(SW_TEXT_MAX), *b = mem_alloc(SW_TEXT_MAX);
    bool same = true;
    if (old && a && b) {
        size_t n = fread(old, 1, SW_TEXT_MAX - 1, f);
        old[n] = '\0';
        sw_strip_volatile(old, a, SW_TEXT_MAX);
        sw_strip_volatile(text, b, SW_TEXT_MAX);
        same = strcmp(a, b) == 0;
        if (!same) {
            const char *p = a, *q = b;
            while (*p && *p == *q) p++, q++;
            while (p > a && p[-1] != '\n') p--;
            size_t l = strcspn(p, "\n");
            snprintf(line, cap, "%.*s", (int)(l < 200 ? l : 200), p);
        }
    }
    fclose(f);
    mem_free(old);
    mem_free(a);
    mem_free(b);
    return same;
}

/* The state of a point from its files; text (its configuration as INI) detects a stale record. */
static PointState sw_state(const char *base, const char *text, char *why, size_t cap) {
    char p[SW_PATH_MAX + 16];
    snprintf(p, sizeof p, "%s.h5", base);
    PointState st = PT_NEW;
    if (sw_exists(p)) st = PT_DONE;
    else {
        snprintf(p, sizeof p, "%s.ckpt.h5", base);
        if (sw_exists(p)) st = PT_RESUME;
    }
    if (st != PT_NEW && !sw_same_config(base, text, why, cap)) st = PT_STALE;
    return st;
}

/* The point's configuration with the sweep's threads and record path. */
static int sw_point_cfg(const Sweep *s, int i, int threads, const char *base, RunConfig *cfg, CfgExtra *extra) {
    int rc = 0;
    TRY(sweep_point_config(s, i, cfg, extra));
    if (!s->threads_set) cfg->threads = threads;
    char rec[SW_PATH_MAX + 8];
    snprintf(rec, sizeof rec, "%s.h5", base);
    TRY(config_set(&runconfig_table, cfg, extra, "out", rec, "sweep"));
fail:
    return rc;
}

/* The point's configuration (as sw_point_cfg) as INI text in text (SW_TEXT_MAX bytes). */
static int sw_point_text(const Sweep *s, int i, int threads, const char *base, RunConfig *cfg, CfgExtra *extra,
                         char *text) {
    int rc = 0;
    TRY(sw_point_cfg(s, i, threads, base, cfg, extra));
    if (config_to_text(&runconfig_table, cfg, extra, text, SW_TEXT_MAX) < 0)
        FAIL(ERR_NOMEM, "sweep: the configuration of %s does not fit in %d bytes", s->points[i].name, SW_TEXT_MAX);
fail:
    return rc;
}

/* Writes text to path through path.tmp and a rename. */
static int sw_write_file(const char *path, const char *text) {
    int rc = 0;
    char tmp[SW_PATH_MAX + 32];
    snprintf(tmp, sizeof tmp, "%.*s.tmp", SW_PATH_MAX + 16, path);
    FILE *f = fopen(tmp, "w");
    if (!f) FAIL(ERR_IO, "sweep: cannot write %s: %s", tmp, strerror(errno));
    bool ok = fputs(text, f) >= 0;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) {
        unlink(tmp);
        FAIL(ERR_IO, "sweep: cannot write %s", path);
    }
fail:
    return rc;
}

/* Prints the last n lines of a file, indented. */
static void sw_print_tail(const char *path, int n) {
    FILE *f = fopen(path, "r");
    if (!f) return;
    char lines[SW_LOG_TAIL][512];
    int count = 0;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        size_t l = strlen(line);
        if (l && line[l - 1] == '\n') line[l - 1] = '\0';
        else { /* a longer line: skip the rest */
            int ch;
            while ((ch = getc(f)) != EOF && ch != '\n') {}
        }
        snprintf(lines[count % SW_LOG_TAIL], sizeof lines[0], "%s", line);
        count++;
    }
    fclose(f);
    if (n > SW_LOG_TAIL) n = SW_LOG_TAIL;
    int first = count > n ? count - n : 0;
    for (int i = first; i < count; i++) fprintf(stderr, "    | %s\n", lines[i % SW_LOG_TAIL]);
}

/* Runs argv (argv[0] ignored: this binary) as a child with stdout and stderr going to log_path
 * (appended when append is set). Returns its pid, or -1. */
static pid_t sw_spawn(char *const *argv, const char *log_path, bool append) {
    int fd = open(log_path, O_WRONLY | O_CREAT | O_CLOEXEC | (append ? O_APPEND : O_TRUNC), 0666);
    if (fd < 0) {
        log_msg(LOG_ERROR, "sweep: cannot open %s: %s", log_path, strerror(errno));
        return -1;
    }
    fflush(NULL);
    pid_t parent = getpid(), pid = fork();
    if (pid < 0) {
        log_msg(LOG_ERROR, "sweep: fork failed: %s", strerror(errno));
        close(fd);
        return -1;
    }
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM); /* a killed sweep takes its runs with it (they resume later) */
        if (getppid() != parent) _exit(127); /* the sweep died before prctl */
        if (dup2(fd, 1) < 0 || dup2(fd, 2) < 0) _exit(127);
        execv("/proc/self/exe", argv);
        static const char msg[] = "sweep: cannot execute /proc/self/exe\n";
        ssize_t w = write(2, msg, sizeof msg - 1);
        (void)w;
        _exit(127);
    }
    close(fd);
    return pid;
}

/* ---- arguments --------------------------------------------------------------------------------- */

static const CfgKey *sw_table_key(const char *name) {
    for (int i = 0; i < runconfig_table.n_keys; i++)
        if (strcmp(runconfig_table.keys[i].name, name) == 0) return &runconfig_table.keys[i];
    return NULL;
}

/* Returns 0, 1 for --help, or -1 after a message. over[] entries point into argv or into store. */
static int sw_parse_args(int argc, char **argv, SweepArgs *a, char (*store)[CFG_STR_MAX + 160]) {
    a->jobs = 1;
    a->runs_dir = "results/runs";
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) return 1;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        const char *val = NULL;
        if (strcmp(arg, "-j") == 0 || strcmp(arg, "--jobs") == 0 || strcmp(arg, "--threads") == 0 ||
            strcmp(arg, "--runs-dir") == 0) {
            if (i + 1 >= argc) {
                log_msg(LOG_ERROR, "sweep: %s needs a value", arg);
                return -1;
            }
            val = argv[++i];
        } else if (strncmp(arg, "-j", 2) == 0 && arg[2] != '\0') {
            val = arg + 2;
            arg = "-j";
        } else if (strncmp(arg, "--jobs=", 7) == 0 || strncmp(arg, "--threads=", 10) == 0 ||
                   strncmp(arg, "--runs-dir=", 11) == 0) {
            val = strchr(arg, '=') + 1;
        }
        if (val) {
            if (strncmp(arg, "-j", 2) == 0 || strncmp(arg, "--jobs", 6) == 0) {
                if (cli_parse_int("-j", val, 1, 1024, &a->jobs)) return -1;
            } else if (strncmp(arg, "--threads", 9) == 0) {
                if (cli_parse_int("--threads", val, 1, 1024, &a->threads)) return -1;
            } else {
                a->runs_dir = val;
            }
            continue;
        }
        if (strcmp(arg, "--dry-run") == 0) {
            a->dry_run = true;
        } else if (strcmp(arg, "--estimate") == 0) {
            a->estimate = true;
        } else if (strncmp(arg, "--", 2) == 0 && arg[2]) {
            /* a run key for every point: --KEY=VALUE, --KEY VALUE, bare --BOOLKEY, --no-BOOLKEY */
            const char *body = arg + 2;
            if (strchr(body, '=')) {
                a->over[a->n_over++] = body;
                continue;
            }
            const CfgKey *k = sw_table_key(body);
            const CfgKey *neg = strncmp(body, "no-", 3) == 0 ? sw_table_key(body + 3) : NULL;
            char *slot = store[a->n_over];
            if (k && k->type == CFG_BOOL) {
                snprintf(slot, sizeof store[0], "%s=true", body);
            } else if (!k && neg && neg->type == CFG_BOOL) {
                snprintf(slot, sizeof store[0], "%s=false", body + 3);
            } else if ((k || strncmp(body, "scheme.", 7) == 0) && i + 1 < argc && strncmp(argv[i + 1], "--", 2) != 0) {
                snprintf(slot, sizeof store[0], "%.150s=%.1023s", body, argv[++i]);
            } else if (k || strncmp(body, "scheme.", 7) == 0) {
                log_msg(LOG_ERROR, "sweep: %s needs a value (--%s=VALUE)", arg, body);
                return -1;
            } else {
                log_msg(LOG_ERROR, "sweep: unknown option '%s' (resprop sweep --help; run keys: resprop train --help)",
                        arg);
                return -1;
            }
            a->over[a->n_over++] = slot;
        } else if (arg[0] != '-' && !a->file) {
            a->file = arg;
        } else {
            log_msg(LOG_ERROR, "sweep: unexpected argument '%s' (resprop sweep --help)", arg);
            return -1;
        }
    }
    if (!a->file) {
        log_msg(LOG_ERROR, "sweep: a sweep file is required (resprop sweep --help)");
        return -1;
    }
    if (a->threads == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        a->threads = n > 0 ? n : 1;
    }
    return 0;
}

/* ---- dry run ------------------------------------------------------------------------------------ */

static int sw_dry_run(const Sweep *s, const char *dir, int threads) {
    int rc = 0;
    RunConfig *cfg = mem_calloc(1, sizeof *cfg), *def = mem_calloc(1, sizeof *def);
    CfgExtra *extra = mem_calloc(1, sizeof *extra);
    char *text = mem_alloc(SW_TEXT_MAX);
    if (!cfg || !def || !extra || !text) FAIL(ERR_NOMEM, "sweep: out of memory");
    TRY(config_defaults(&runconfig_table, def));
    printf("sweep %s: %d points, records in %s/\n", s->name, s->n_points, dir);
    if (s->n_duplicates) printf("(%d duplicate points dropped)\n", s->n_duplicates);
    int n_stale = 0;
    for (int i = 0; i < s->n_points; i++) {
        char base[SW_PATH_MAX], why[256];
        sw_point_base(dir, s->points[i].name, base, sizeof base);
        TRY(sw_point_text(s, i, threads, base, cfg, extra, text));
        PointState st = sw_state(base, text, why, sizeof why);
        n_stale += st == PT_STALE;
        printf("%3d %-40s %-6s", i + 1, s->points[i].name, state_name[st]);
        for (int k = 0; k < runconfig_table.n_keys; k++) {
            const char *key = runconfig_table.keys[k].name;
            if (strcmp(key, "out") == 0) continue;
            char v[CFG_STR_MAX], d[CFG_STR_MAX];
            TRY(config_get_text(&runconfig_table, cfg, key, v, sizeof v));
            TRY(config_get_text(&runconfig_table, def, key, d, sizeof d));
            if (strcmp(v, d) != 0) printf(" %s=%s", key, v);
        }
        for (int e = 0; e < extra->n; e++) printf(" %s=%s", extra->key[e], extra->value[e]);
        printf("\n");
    }
    printf("(keys not shown have their defaults: resprop train --help)\n");
    if (n_stale)
        printf("(stale: a record or checkpoint made with another configuration than the point's now; the sweep "
               "reports these points as failed until their files are moved away)\n");
fail:
    mem_free(cfg);
    mem_free(def);
    mem_free(extra);
    mem_free(text);
    return rc;
}

/* ---- estimate ---------------------------------------------------------------------------------- */

/* Training and test set sizes (images) and image shape of the datasets: the standard splits
 * (Fashion-MNIST/MNIST 60000 + 10000 28x28 grey; CIFAR-10/100 50000 + 10000 32x32 RGB; ILSVRC-2012
 * 1281167 + 50000 RGB at the converted size). */
typedef struct {
    long n_train, n_test;
    int c, h, w, classes;
    bool assumed_size; /* imagenet: the shard size could not be read, 224 assumed */
} SwData;

static void sw_data_of(const RunConfig *cfg, SwData *d) {
    memset(d, 0, sizeof *d);
    const char *ds = cfg->dataset;
    if (strcmp(ds, "fmnist") == 0 || strcmp(ds, "mnist") == 0) {
        *d = (SwData){60000, 10000, 1, 28, 28, 10, false};
    } else if (strcmp(ds, "cifar10") == 0 || strcmp(ds, "cifar100") == 0) {
        int classes = strcmp(ds, "cifar10") == 0 ? 10 : strcmp(cfg->labels, "coarse") == 0 ? 20 : 100;
        *d = (SwData){50000, 10000, 3, 32, 32, classes, false};
    } else if (strcmp(ds, "imagenet") == 0) {
        *d = (SwData){1281167, 50000, 3, 224, 224, 1000, true};
        char shard[CFG_STR_MAX + 32];
        snprintf(shard, sizeof shard, "%s/train-00000.h5", cfg->data_dir);
        if (cfg->data_dir[0] && sw_exists(shard)) {
            hid_t f = H5Fopen(shard, H5F_ACC_RDONLY, H5P_DEFAULT);
            int size = 0;
            if (f >= 0 && H5LTget_attribute_int(f, "/", "image_size", &size) >= 0 && size > 0) {
                d->h = d->w = size;
                d->assumed_size = false;
            }
            if (f >= 0) H5Fclose(f);
        }
    } else { /* synthetic */
        int c = 3, h = 8, w = 8;
        if (sscanf(cfg->synthetic_shape, "%dx%dx%d", &c, &h, &w) != 3) c = 3, h = 8, w = 8;
        *d = (SwData){cfg->synthetic_train, cfg->synthetic_test, c, h, w, cfg->synthetic_classes, false};
    }
    if (cfg->limit_train > 0 && cfg->limit_train < d->n_train) d->n_train = cfg->limit_train;
    if (cfg->limit_test > 0 && cfg->limit_test < d->n_test) d->n_test = cfg->limit_test;
}

typedef struct {
    char model[64], input[64], scheme[64], backend[16];
    int batch, threads, classes;
    double reuse;
    double dense_ms, scheme_ms; /* measured medians (NAN: not measured) */
    bool done, failed;
} SwMeasure;

/* Runs `resprop bench step` for m and reads its record. */
static int sw_measure(SwMeasure *m, const char *tmpdir, int idx) {
    int rc = 0;
    char out[SW_PATH_MAX], logp[SW_PATH_MAX], batch[32], threads[32], classes[32], reuse[64];
    snprintf(out, sizeof out, "%s/step-%d.h5", tmpdir, idx);
    snprintf(logp, sizeof logp, "%s/step-%d.log", tmpdir, idx);
    snprintf(batch, sizeof batch, "%d", m->batch);
    snprintf(threads, sizeof threads, "%d", m->threads);
    snprintf(classes, sizeof classes, "%d", m->classes);
    for (int prec = 15; prec <= 17; prec++) { /* the shortest text that reads back as the same number */
        snprintf(reuse, sizeof reuse, "%.*g", prec, m->reuse);
        if (strtod(reuse, NULL) == m->reuse) break;
    }
    bool dense = strcmp(m->scheme, "dense") == 0;
    /* the sparse backend's time depends on the density, which its controller reaches after a few steps */
    const char *warmup = !dense && strcmp(m->backend, "sparse") == 0 ? "10" : "2";
    char *argv[32];
    int n = 0;
    argv[n++] = "resprop";
    argv[n++] = "bench";
    argv[n++] = "step";
    argv[n++] = "--model";
    argv[n++] = m->model;
    argv[n++] = "--input";
    argv[n++] = m->input;
    argv[n++] = "--batch";
    argv[n++] = batch;
    argv[n++] = "--classes";
    argv[n++] = classes;
    argv[n++] = "--threads";
    argv[n++] = threads;
    argv[n++] = "--steps";
    argv[n++] = "3";
    argv[n++] = "--warmup";
    argv[n++] = (char *)warmup;
    argv[n++] = "--out";
    argv[n++] = out;
    if (!dense) {
        argv[n++] = "--scheme";
        argv[n++] = m->scheme;
        argv[n++] = "--reuse";
        argv[n++] = reuse;
        argv[n++] = "--backend";
        argv[n++] = m->backend;
    }
    argv[n] = NULL;
    fprintf(stderr, "estimate: measuring a training step of %s %s batch %d, %s%s%s%s, %d threads...\n", m->model,
            m->input, m->batch, m->scheme, dense ? "" : " reuse ", dense ? "" : reuse, dense ? "" : m->backend[0] == 's' ? " sparse" : " dnnl",
            m->threads);
    pid_t pid = sw_spawn(argv, logp, false);
    if (pid < 0) FAIL(ERR_IO, "estimate: cannot start resprop bench step");
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        log_msg(LOG_ERROR, "estimate: resprop bench step failed for %s %s batch %d (%s); its output:", m->model, m->input,
                m->batch, m->scheme);
        sw_print_tail(logp, SW_LOG_TAIL);
        FAIL(ERR_IO, "estimate: no step time for %s", m->model);
    }
    hid_t f = H5Fopen(out, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) FAIL(ERR_IO, "estimate: cannot read %s", out);
    double d = NAN, s = NAN;
    bool ok = H5LTget_attribute_double(f, "/", "median_dense_ms", &d) >= 0;
    if (!dense) ok = ok && H5LTget_attribute_double(f, "/", "median_scheme_ms", &s) >= 0;
    H5Fclose(f);
    if (!ok) FAIL(ERR_FORMAT, "estimate: %s lacks median_dense_ms / median_scheme_ms", out);
    m->dense_ms = d;
    m->scheme_ms = s;
    m->done = true;
fail:
    unlink(out);
    unlink(logp);
    if (rc) m->failed = true;
    return rc;
}

static int sw_estimate(const Sweep *s, const char *dir, int threads, int jobs) {
    int rc = 0;
    RunConfig *cfg = mem_calloc(1, sizeof *cfg);
    CfgExtra *extra = mem_calloc(1, sizeof *extra);
    char *text = mem_alloc(SW_TEXT_MAX);
    SwMeasure *ms = mem_calloc((size_t)s->n_points + 1, sizeof *ms);
    int *which = mem_calloc((size_t)s->n_points + 1, sizeof *which);
    char tmpdir[] = "/tmp/resprop-estimate-XXXXXX";
    bool have_tmp = false;
    int n_ms = 0;
    if (!cfg || !extra || !text || !ms || !which) FAIL(ERR_NOMEM, "sweep: out of memory");
    if (!mkdtemp(tmpdir)) FAIL(ERR_IO, "estimate: cannot create a temporary directory: %s", strerror(errno));
    have_tmp = true;
    /* the distinct measurements: scheme points first so dense points can share their dense time */
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < s->n_points; i++) {
            char base[SW_PATH_MAX];
            sw_point_base(dir, s->points[i].name, base, sizeof base);
            TRY(sw_point_cfg(s, i, threads, base, cfg, extra));
            bool dense = strcmp(cfg->scheme, "dense") == 0;
            if (dense != (pass == 1)) continue;
            SwData d;
            sw_data_of(cfg, &d);
            SwMeasure m = {.batch = cfg->batch, .threads = cfg->threads, .classes = d.classes,
                           .reuse = dense ? 0 : cfg->reuse, .dense_ms = NAN, .scheme_ms = NAN};
            snprintf(m.model, sizeof m.model, "%.63s", cfg->model);
            snprintf(m.input, sizeof m.input, "%dx%dx%d", d.c, d.h, d.w);
            snprintf(m.scheme, sizeof m.scheme, "%.63s", cfg->scheme);
            snprintf(m.backend, sizeof m.backend, "%.15s", dense ? "dnnl" : cfg->backend);
            int j = 0;
            for (; j < n_ms; j++) {
                const SwMeasure *o = &ms[j];
                bool same_net = strcmp(o->model, m.model) == 0 && strcmp(o->input, m.input) == 0 &&
                                o->batch == m.batch && o->threads == m.threads && o->classes == m.classes;
                if (same_net && (dense || (strcmp(o->scheme, m.scheme) == 0 && o->reuse == m.reuse &&
                                           strcmp(o->backend, m.backend) == 0)))
                    break;
            }
            if (j == n_ms) ms[n_ms++] = m;
            which[i] = j;
        }
    }
    for (int j = 0; j < n_ms; j++) TRY(sw_measure(&ms[j], tmpdir, j));

    char cpu[256];
    sysinfo_cpu_model(cpu, sizeof cpu);
    printf("ESTIMATE (not a measurement of the runs) for sweep %s: %d points, %d at a time\n", s->name, s->n_points,
           jobs);
    printf("machine: %s, %d threads per point%s; step times: median of resprop bench step --steps 3\n", cpu,
           threads, s->threads_set ? " (or the file's threads key)" : "");
    printf("%-40s %-6s %-10s %9s %7s %10s %10s\n", "point", "status", "model", "input", "batch", "step_ms", "estimate");
    double total = 0, remaining = 0;
    bool assumed = false;
    for (int i = 0; i < s->n_points; i++) {
        char base[SW_PATH_MAX], why[256];
        sw_point_base(dir, s->points[i].name, base, sizeof base);
        TRY(sw_point_text(s, i, threads, base, cfg, extra, text));
        SwData d;
        sw_data_of(cfg, &d);
        assumed |= d.assumed_size;
        const SwMeasure *m = &ms[which[i]];
        double step_ms = strcmp(cfg->scheme, "dense") == 0 ? m->dense_ms : m->scheme_ms;
        long spe = d.n_train / cfg->batch, test_batches = (d.n_test + cfg->batch - 1) / cfg->batch;
        /* a test batch is a forward pass: about a third of a training step (forward + backward x 2) */
        double sec = cfg->epochs * (spe * step_ms + test_batches * step_ms / 3) / 1000;
        PointState stt = sw_state(base, text, why, sizeof why);
        total += sec;
        if (stt != PT_DONE) remaining += sec;
        char t[32];
        sw_fmt_time(sec, t, sizeof t);
        printf("%-40s %-6s %-10s %9s %7d %10.1f %10s\n", s->points[i].name, state_name[stt], m->model, m->input,
               cfg->batch, step_ms, t);
    }
    char t1[32], t2[32], t3[32];
    sw_fmt_time(total, t1, sizeof t1);
    sw_fmt_time(remaining, t2, sizeof t2);
    sw_fmt_time(remaining / jobs, t3, sizeof t3);
    printf("estimated total: %s of run time (%s for the points without a complete record); with -j %d about %s "
           "wall-clock\n", t1, t2, jobs, t3);
    printf("(per point: epochs x (steps/epoch x step time + test batches x step time / 3); data loading and "
           "evaluation beyond that, and contention between parallel points, are not included)\n");
    if (assumed) printf("(ImageNet shard size not readable from --data-dir: 224 px assumed)\n");
fail:
    if (have_tmp) rmdir(tmpdir);
    mem_free(cfg);
    mem_free(extra);
    mem_free(ms);
    mem_free(which);
    mem_free(text);
    return rc;
}

/* ---- running ----------------------------------------------------------------------------------- */

typedef struct {
    pid_t pid;
    int point;
    double t0_ms;
} SwSlot;

typedef struct {
    int total, done, skipped, failed, running;
    double t0_ms, sum_s; /* sum_s: durations of the points completed in this invocation */
    int n_timed;
} SwProgress;

static void sw_progress(const SwProgress *p, const SwSlot *slots, int jobs, const char *name) {
    double now = timer_now_ms(), el = (now - p->t0_ms) / 1000;
    char e[32], eta[32] = "?";
    sw_fmt_time(el, e, sizeof e);
    if (p->n_timed > 0) {
        double mean = p->sum_s / p->n_timed, left = 0;
        int queued = p->total - p->done - p->skipped - p->failed - p->running;
        for (int j = 0; j < jobs; j++)
            if (slots[j].pid > 0) {
                double r = mean - (now - slots[j].t0_ms) / 1000;
                left += r > 0 ? r : 0;
            }
        left += queued * mean;
        int par = p->running + queued < jobs ? p->running + queued : jobs;
        sw_fmt_time(par > 0 ? left / par : 0, eta, sizeof eta);
    }
    fprintf(stderr, "sweep %s: %d/%d done (%d skipped), %d running, %d failed, elapsed %s, ETA %s\n", name,
            p->done + p->skipped, p->total, p->skipped, p->running, p->failed, e, eta);
}

static int sw_run(const Sweep *s, const char *dir, int threads, int jobs) {
    int rc = 0;
    RunConfig *cfg = mem_calloc(1, sizeof *cfg);
    CfgExtra *extra = mem_calloc(1, sizeof *extra);
    char *text = mem_alloc(SW_TEXT_MAX);
    SwSlot *slots = mem_calloc((size_t)jobs, sizeof *slots);
    char *failed = mem_calloc((size_t)s->n_points + 1, 1);
    int *codes = mem_calloc((size_t)s->n_points + 1, sizeof *codes);
    if (!cfg || !extra || !text || !slots || !failed || !codes) FAIL(ERR_NOMEM, "sweep: out of memory");
    TRY(sw_mkdirs(dir));
    SwProgress p = {.total = s->n_points, .t0_ms = timer_now_ms()};
    fprintf(stderr, "sweep %s: %d points, %d at a time, %d threads each%s, records in %s/\n", s->name, s->n_points,
            jobs, threads, s->threads_set ? " (unless the file sets threads)" : "", dir);
    int next = 0;
    while (next < s->n_points || p.running > 0) {
        while (next < s->n_points && p.running < jobs) {
            int i = next++;
            char base[SW_PATH_MAX], path[SW_PATH_MAX + 16], logp[SW_PATH_MAX + 16], ini[SW_PATH_MAX + 16], why[256];
            sw_point_base(dir, s->points[i].name, base, sizeof base);
            TRY(sw_point_text(s, i, threads, base, cfg, extra, text));
            PointState st = sw_state(base, text, why, sizeof why);
            if (st == PT_STALE) {
                p.failed++;
                failed[i] = 1;
                codes[i] = -2;
                fprintf(stderr, "sweep: FAILED %s: its record or checkpoint was made with another configuration "
                        "(%s.ini has '%s'); move %s.* away to run it again\n", s->points[i].name, base, why, base);
                continue;
            }
            if (st == PT_DONE) {
                p.skipped++;
                fprintf(stderr, "sweep: skip %s (complete record %s.h5)\n", s->points[i].name, base);
                continue;
            }
            snprintf(logp, sizeof logp, "%s.log", base);
            snprintf(ini, sizeof ini, "%s.ini", base);
            char *argv[8];
            int n = 0;
            argv[n++] = "resprop";
            argv[n++] = "train";
            if (st == PT_RESUME) {
                snprintf(path, sizeof path, "%s.h5", base);
                argv[n++] = "--resume";
                argv[n++] = path;
            } else {
                TRY(sw_write_file(ini, text));
                snprintf(path, sizeof path, "%s.h5.part", base);
                unlink(path); /* a run killed before its first checkpoint starts over */
                argv[n++] = "--config";
                argv[n++] = ini;
            }
            argv[n] = NULL;
            if (st == PT_RESUME) {
                FILE *lf = fopen(logp, "a");
                if (lf) {
                    fprintf(lf, "==== resprop sweep: resuming from the checkpoint ====\n");
                    fclose(lf);
                }
            }
            pid_t pid = sw_spawn(argv, logp, st == PT_RESUME);
            if (pid < 0) {
                failed[i] = 1;
                codes[i] = -1;
                p.failed++;
                continue;
            }
            int j = 0;
            while (slots[j].pid > 0) j++;
            slots[j] = (SwSlot){pid, i, timer_now_ms()};
            p.running++;
            fprintf(stderr, "sweep: %s %s (log %s)\n", st == PT_RESUME ? "resume" : "start", s->points[i].name, logp);
            sw_progress(&p, slots, jobs, s->name);
        }
        if (p.running == 0) break;
        int status = 0;
        pid_t pid = waitpid(-1, &status, 0);
        if (pid < 0) {
            if (errno == EINTR) continue;
            FAIL(ERR_IO, "sweep: waitpid failed: %s", strerror(errno));
        }
        int j = 0;
        while (j < jobs && slots[j].pid != pid) j++;
        if (j == jobs) continue; /* not one of ours */
        int i = slots[j].point;
        double dur = (timer_now_ms() - slots[j].t0_ms) / 1000;
        slots[j].pid = 0;
        p.running--;
        char base[SW_PATH_MAX], rec[SW_PATH_MAX + 16], logp[SW_PATH_MAX + 16], t[32];
        sw_point_base(dir, s->points[i].name, base, sizeof base);
        snprintf(rec, sizeof rec, "%s.h5", base);
        snprintf(logp, sizeof logp, "%s.log", base);
        sw_fmt_time(dur, t, sizeof t);
        bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0 && sw_exists(rec);
        if (ok) {
            p.done++;
            p.sum_s += dur;
            p.n_timed++;
            fprintf(stderr, "sweep: done %s in %s\n", s->points[i].name, t);
        } else {
            p.failed++;
            failed[i] = 1;
            if (WIFEXITED(status)) {
                codes[i] = WEXITSTATUS(status);
                fprintf(stderr, "sweep: FAILED %s after %s: exit %d%s; end of %s:\n", s->points[i].name, t, codes[i],
                        codes[i] == 0 ? " but no complete record" : "", logp);
            } else {
                codes[i] = 128 + WTERMSIG(status);
                fprintf(stderr, "sweep: FAILED %s after %s: killed by signal %d; end of %s:\n", s->points[i].name, t,
                        WTERMSIG(status), logp);
            }
            sw_print_tail(logp, SW_LOG_TAIL);
        }
        sw_progress(&p, slots, jobs, s->name);
    }
    char t[32];
    sw_fmt_time((timer_now_ms() - p.t0_ms) / 1000, t, sizeof t);
    printf("sweep %s: %d points in %s: %d done, %d skipped (complete records), %d failed\n", s->name, s->n_points, t,
           p.done, p.skipped, p.failed);
    for (int i = 0; i < s->n_points; i++)
        if (failed[i] && codes[i] == -2)
            printf("  failed: %s (stale: its files were made with another configuration)\n", s->points[i].name);
        else if (failed[i] && codes[i] == -1)
            printf("  failed: %s (could not be started)\n", s->points[i].name);
        else if (failed[i])
            printf("  failed: %s (exit %d, log %s/%s.log)\n", s->points[i].name, codes[i], dir, s->points[i].name);
    printf("records: %s/\n", dir);
    if (p.failed) rc = ERR_NUMERIC; /* reported as "run failed" */
fail:
    /* on an error of the sweep itself, the runs still going are waited for (they keep their records) */
    for (int j = 0; slots && j < jobs; j++)
        if (slots[j].pid > 0) {
            int st;
            while (waitpid(slots[j].pid, &st, 0) < 0 && errno == EINTR) {}
        }
    mem_free(cfg);
    mem_free(extra);
    mem_free(text);
    mem_free(slots);
    mem_free(failed);
    mem_free(codes);
    return rc;
}

int cmd_sweep(int argc, char **argv) {
    SweepArgs a = {0};
    Sweep s = {0};
    int code = 0;
    const char **over = mem_calloc((size_t)argc + 1, sizeof *over);
    char (*store)[CFG_STR_MAX + 160] = mem_calloc((size_t)argc + 1, sizeof *store);
    if (!over || !store) {
        log_msg(LOG_ERROR, "sweep: out of memory");
        code = EXIT_RUN_FAILED;
        goto done;
    }
    a.over = over;
    int prc = sw_parse_args(argc, argv, &a, store);
    if (prc == 1) {
        sweep_usage(stdout);
        goto done;
    }
    if (prc < 0) {
        code = EXIT_BAD_INPUT;
        goto done;
    }
    int rc = sweep_load(&s, a.file, a.n_over, a.over);
    if (rc) {
        log_msg(LOG_ERROR, "sweep: %s: not run (%s)", a.file, rc == ERR_NOMEM ? "out of memory" : "bad sweep file or option");
        code = rc == ERR_NOMEM ? EXIT_RUN_FAILED : EXIT_BAD_INPUT;
        goto done;
    }
    char dir[SW_DIR_MAX];
    if (snprintf(dir, sizeof dir, "%s/%s", a.runs_dir, s.name) >= (int)sizeof dir) {
        log_msg(LOG_ERROR, "sweep: --runs-dir '%s' is too long", a.runs_dir);
        code = EXIT_BAD_INPUT;
        goto done;
    }
    int jobs = (int)a.jobs;
    if (jobs > s.n_points) jobs = s.n_points > 0 ? s.n_points : 1;
    int threads = (int)(a.threads / a.jobs) > 1 ? (int)(a.threads / a.jobs) : 1;
    if (a.dry_run) rc = sw_dry_run(&s, dir, threads);
    else if (a.estimate) rc = sw_estimate(&s, dir, threads, (int)a.jobs);
    else rc = sw_run(&s, dir, threads, jobs);
    code = rc == 0 ? 0 : rc == ERR_CONFIG ? EXIT_BAD_INPUT : EXIT_RUN_FAILED;
done:
    sweep_deinit(&s);
    mem_free(over);
    mem_free(store);
    return code;
}
