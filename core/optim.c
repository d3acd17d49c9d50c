#include "core/optim.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/log.h"

/* Tensors above this many elements are updated by all OpenMP threads; smaller ones stay on the
 * calling thread (a parallel region costs more than the update). */
#define OPTIM_PAR_MIN_N ((size_t)1 << 15)

/* `parallel for simd`, with the thread team only when `par` is true (the simd part always applies). */
#ifdef _OPENMP
#define OPTIM_FOR_SIMD _Pragma("omp parallel for simd schedule(static) if (parallel: par)")
#else
#define OPTIM_FOR_SIMD
#endif

void optim_sgd_step(float *restrict w, const float *restrict dw, float *restrict v, size_t n,
                    const SgdParams *p, bool decay, bool first) {
    ASSERT(p != NULL);
    ASSERT(n == 0 || (w != NULL && dw != NULL));
    const float lr = (float)p->lr;
    const float wd = decay ? (float)p->weight_decay : 0.0f;
    const float m = (float)p->momentum;
    const bool nesterov = p->nesterov;
    const bool par = n > OPTIM_PAR_MIN_N;
    (void)par; /* only read by the OpenMP pragma */

    if (m == 0.0f) {
        /* d = g */
        OPTIM_FOR_SIMD
        for (size_t i = 0; i < n; i++) w[i] -= lr * (dw[i] + wd * w[i]);
        return;
    }
    ASSERT(n == 0 || v != NULL);
    if (first) {
        /* v = g (v's old contents are ignored: it may be uninitialised) */
        OPTIM_FOR_SIMD
        for (size_t i = 0; i < n; i++) {
            float g = dw[i] + wd * w[i];
            v[i] = g;
            w[i] -= lr * (nesterov ? g + m * g : g);
        }
    } else {
        OPTIM_FOR_SIMD
        for (size_t i = 0; i < n; i++) {
            float g = dw[i] + wd * w[i];
            float vi = m * v[i] + g;
            v[i] = vi;
            w[i] -= lr * (nesterov ? g + m * vi : vi);
        }
    }
}

/* Cosine interpolation from `start` (frac 0) to `end` (frac 1), PyTorch's _annealing_cos. */
static double sched_anneal_cos(double start, double end, double frac) {
    return end + (start - end) * 0.5 * (1.0 + cos(M_PI * frac));
}

static double sched_clamp01(double x) { return x < 0.0 ? 0.0 : (x > 1.0 ? 1.0 : x); }

double sched_lr(const Schedule *s, double epoch, double total_epochs) {
    ASSERT(s != NULL);
    double lr = s->lr;
    switch (s->kind) {
    case SCHED_CONSTANT: break;
    case SCHED_STEP:
        for (int i = 0; i < s->n_milestones; i++)
            if (epoch >= s->milestones[i]) lr *= s->gamma;
        break;
    case SCHED_COSINE: {
        /* The cosine spans [warmup_epochs, total_epochs]; during warm-up its value is lr. */
        double span = total_epochs - s->warmup_epochs;
        double t = epoch - s->warmup_epochs;
        double frac = span > 0.0 ? sched_clamp01(t / span) : (t > 0.0 ? 1.0 : 0.0);
        lr = sched_anneal_cos(s->lr, s->lr_min, frac);
        break;
    }
    case SCHED_ONECYCLE: {
        ASSERT(s->div_factor > 0.0 && s->final_div > 0.0);
        double lr0 = s->lr / s->div_factor;
        double lr_end = lr0 / s->final_div;
        double t = total_epochs > 0.0 ? sched_clamp01(epoch / total_epochs) : 1.0;
        double pct = s->pct_start;
        if (t < pct) lr = sched_anneal_cos(lr0, s->lr, t / pct);
        else if (pct >= 1.0) lr = s->lr;
        else lr = sched_anneal_cos(s->lr, lr_end, (t - pct) / (1.0 - pct));
        return lr; /* no warm-up: the rise is the warm-up */
    }
    default: ASSERT(!"unknown SchedKind");
    }
    if (s->warmup_epochs > 0.0 && epoch < s->warmup_epochs)
        lr *= epoch > 0.0 ? epoch / s->warmup_epochs : 0.0;
    return lr;
}

/* One milestone token [tok, tok+len): a plain decimal number (digits, '.', exponent). */
static bool sched_token_ok(const char *tok, size_t len) {
    if (len == 0) return false;
    for (size_t i = 0; i < len; i++)
        if (!strchr("0123456789.eE+-", tok[i])) return false; /* strcspn stopped before NUL */
    return true;
}

int sched_parse(Schedule *s, const char *text) {
    int rc = 0;
    ASSERT(s != NULL);
    if (!text) FAIL(ERR_CONFIG, "schedule: missing text (expected constant, step:E1,E2,..., cosine "
                                "or onecycle)");
    SchedKind kind;
    int n_ms = 0;
    double ms[SCHED_MAX_MILESTONES] = {0};
    if (strcmp(text, "constant") == 0) kind = SCHED_CONSTANT;
    else if (strcmp(text, "cosine") == 0) kind = SCHED_COSINE;
    else if (strcmp(text, "onecycle") == 0) kind = SCHED_ONECYCLE;
    else if (strcmp(text, "step") == 0)
        FAIL(ERR_CONFIG, "schedule \"%s\": step needs its milestones in epochs, e.g. step:30,60",
             text);
    else if (strncmp(text, "step:", 5) == 0) {
        kind = SCHED_STEP;
        const char *tok = text + 5;
        for (;;) {
            size_t len = strcspn(tok, ",");
            if (!sched_token_ok(tok, len))
                FAIL(ERR_CONFIG, "schedule \"%s\": bad milestone \"%.*s\" (expected epochs as "
                                 "numbers, e.g. step:30,60)", text, (int)len, tok);
            char *end = NULL;
            double x = strtod(tok, &end);
            if (end != tok + len || !isfinite(x))
                FAIL(ERR_CONFIG, "schedule \"%s\": bad milestone \"%.*s\" (expected a number of "
                                 "epochs)", text, (int)len, tok);
            if (x < 0.0)
                FAIL(ERR_CONFIG, "schedule \"%s\": negative milestone \"%.*s\"", text, (int)len,
                     tok);
            if (n_ms > 0 && !(x > ms[n_ms - 1]))
                FAIL(ERR_CONFIG, "schedule \"%s\": milestone \"%.*s\" is not above the previous "
                                 "one (milestones must be strictly ascending)", text, (int)len, tok);
            if (n_ms == SCHED_MAX_MILESTONES)
                FAIL(ERR_CONFIG, "schedule \"%s\": more than %d milestones", text,
                     SCHED_MAX_MILESTONES);
            ms[n_ms++] = x;
            if (tok[len] == '\0') break;
            tok += len + 1; /* past the comma; an empty token after it is rejected above */
        }
    } else {
        FAIL(ERR_CONFIG, "schedule \"%s\": unknown (expected constant, step:E1,E2,..., cosine or "
                         "onecycle)", text);
    }
    s->kind = kind;
    s->n_milestones = n_ms;
    memcpy(s->milestones, ms, sizeof ms);
fail:
    return rc;
}
