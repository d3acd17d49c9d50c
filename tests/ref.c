/* ref.c: double-precision reference layers and network interpreter (see ref.h). Plain loops, no
 * cleverness: the point is to be obviously right. */
#include "tests/ref.h"

#include <math.h>
#include <string.h>

#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"

/* NHWC and KCRS element offsets. */
static inline size_t nhwc(Dims4 d, int n, int h, int w, int c) {
    return (((size_t)n * d.h + h) * d.w + w) * d.c + c;
}
static inline size_t kcrs(int C, int R, int S, int k, int c, int r, int s) {
    return (((size_t)k * C + c) * R + r) * S + s;
}

/* Output dims of a window op (conv/pool) on `in`. */
static Dims4 window_out(const LayerSpec *s, Dims4 in, int c_out) {
    Dims4 o = {in.n, c_out, shape_out(in.h, s->kh, s->stride, s->pad),
               shape_out(in.w, s->kw, s->stride, s->pad)};
    return o;
}

static int window_fits(const LayerSpec *s, Dims4 in) {
    return s->kh >= 1 && s->kw >= 1 && s->stride >= 1 && s->pad >= 0 && in.h + 2 * s->pad >= s->kh &&
           in.w + 2 * s->pad >= s->kw;
}

int ref_out_dims(const LayerSpec *s, const Dims4 *in, Dims4 *out) {
    Dims4 i0 = in[0];
    bool ok = i0.n > 0 && i0.c > 0 && i0.h > 0 && i0.w > 0;
    Dims4 o = i0;
    switch (s->kind) {
    case LAYER_INPUT:
    case LAYER_BN:
    case LAYER_RELU: break;
    case LAYER_CONV:
        ok = ok && s->out_c > 0 && window_fits(s, i0);
        o = window_out(s, i0, s->out_c);
        break;
    case LAYER_MAXPOOL:
    case LAYER_AVGPOOL:
        /* PyTorch's rule: padding at most half the kernel, so no window lies wholly in padding. */
        ok = ok && window_fits(s, i0) && 2 * s->pad <= s->kh && 2 * s->pad <= s->kw;
        o = window_out(s, i0, i0.c);
        break;
    case LAYER_GAP: o.h = o.w = 1; break;
    case LAYER_FC:
        ok = ok && s->out_c > 0;
        o = (Dims4){i0.n, s->out_c, 1, 1};
        break;
    case LAYER_ADD:
        ok = ok && in[1].n == i0.n && in[1].c == i0.c && in[1].h == i0.h && in[1].w == i0.w;
        break;
    case LAYER_LOSS: ok = ok && i0.h == 1 && i0.w == 1; break;
    default: ok = false; break;
    }
    if (!ok) {
        log_msg(LOG_ERROR, "ref: layer '%s' (kind %d) does not fit input n=%d c=%d h=%d w=%d", s->name,
                (int)s->kind, i0.n, i0.c, i0.h, i0.w);
        return ERR_SHAPE;
    }
    *out = o;
    return 0;
}

/* ---- convolution ---------------------------------------------------------------------------- */

void ref_conv_fwd(const LayerSpec *s, Dims4 in, const double *x, const double *w, const double *b,
                  double *y) {
    Dims4 o = window_out(s, in, s->out_c);
    int C = in.c, R = s->kh, S = s->kw;
    for (int n = 0; n < in.n; n++)
        for (int p = 0; p < o.h; p++)
            for (int q = 0; q < o.w; q++)
                for (int k = 0; k < o.c; k++) {
                    double acc = b ? b[k] : 0.0;
                    for (int r = 0; r < R; r++) {
                        int ih = p * s->stride - s->pad + r;
                        if (ih < 0 || ih >= in.h) continue;
                        for (int ss = 0; ss < S; ss++) {
                            int iw = q * s->stride - s->pad + ss;
                            if (iw < 0 || iw >= in.w) continue;
                            for (int c = 0; c < C; c++)
                                acc += x[nhwc(in, n, ih, iw, c)] * w[kcrs(C, R, S, k, c, r, ss)];
                        }
                    }
                    y[nhwc(o, n, p, q, k)] = acc;
                }
}

void ref_conv_bwd_data(const LayerSpec *s, Dims4 in, const double *w, const double *dy, double *dx) {
    Dims4 o = window_out(s, in, s->out_c);
    int C = in.c, R = s->kh, S = s->kw;
    memset(dx, 0, dims_count(in) * sizeof *dx);
    for (int n = 0; n < in.n; n++)
        for (int p = 0; p < o.h; p++)
            for (int q = 0; q < o.w; q++)
                for (int k = 0; k < o.c; k++) {
                    double g = dy[nhwc(o, n, p, q, k)];
                    for (int r = 0; r < R; r++) {
                        int ih = p * s->stride - s->pad + r;
                        if (ih < 0 || ih >= in.h) continue;
                        for (int ss = 0; ss < S; ss++) {
                            int iw = q * s->stride - s->pad + ss;
                            if (iw < 0 || iw >= in.w) continue;
                            for (int c = 0; c < C; c++)
                                dx[nhwc(in, n, ih, iw, c)] += g * w[kcrs(C, R, S, k, c, r, ss)];
                        }
                    }
                }
}

void ref_conv_bwd_weights(const LayerSpec *s, Dims4 in, const double *x, const double *dy, double *dw,
                          double *db) {
    Dims4 o = window_out(s, in, s->out_c);
    int C = in.c, R = s->kh, S = s->kw;
    memset(dw, 0, (size_t)o.c * C * R * S * sizeof *dw);
    if (db) memset(db, 0, (size_t)o.c * sizeof *db);
    for (int n = 0; n < in.n; n++)
        for (int p = 0; p < o.h; p++)
            for (int q = 0; q < o.w; q++)
                for (int k = 0; k < o.c; k++) {
                    double g = dy[nhwc(o, n, p, q, k)];
                    if (db) db[k] += g;
                    for (int r = 0; r < R; r++) {
                        int ih = p * s->stride - s->pad + r;
                        if (ih < 0 || ih >= in.h) continue;
                        for (int ss = 0; ss < S; ss++) {
                            int iw = q * s->stride - s->pad + ss;
                            if (iw < 0 || iw >= in.w) continue;
                            for (int c = 0; c < C; c++)
                                dw[kcrs(C, R, S, k, c, r, ss)] += g * x[nhwc(in, n, ih, iw, c)];
                        }
                    }
                }
}

/* ---- batch norm ----------------------------------------------------------------------------- */

/* Batch mean and biased variance per channel (two-pass). */
static void bn_stats(Dims4 d, const double *x, double *mean, double *var) {
    size_t m = (size_t)d.n * d.h * d.w;
    int C = d.c;
    for (int c = 0; c < C; c++) mean[c] = var[c] = 0.0;
    for (size_t i = 0; i < m; i++)
        for (int c = 0; c < C; c++) mean[c] += x[i * C + c];
    for (int c = 0; c < C; c++) mean[c] /= (double)m;
    for (size_t i = 0; i < m; i++)
        for (int c = 0; c < C; c++) {
            double t = x[i * C + c] - mean[c];
            var[c] += t * t;
        }
    for (int c = 0; c < C; c++) var[c] /= (double)m;
}

void ref_bn_fwd_infer(Dims4 d, const double *x, const double *gamma, const double *beta,
                      const double *mean, const double *var, bool relu, double *y) {
    size_t m = (size_t)d.n * d.h * d.w;
    int C = d.c;
    for (size_t i = 0; i < m; i++)
        for (int c = 0; c < C; c++) {
            double v = gamma[c] * (x[i * C + c] - mean[c]) / sqrt(var[c] + REF_BN_EPS) + beta[c];
            y[i * C + c] = relu && v < 0 ? 0.0 : v;
        }
}

void ref_bn_fwd_train(Dims4 d, const double *x, const double *gamma, const double *beta, bool relu,
                      double *y, double *mean, double *var) {
    bn_stats(d, x, mean, var);
    ref_bn_fwd_infer(d, x, gamma, beta, mean, var, relu, y);
}

void ref_bn_bwd(Dims4 d, const double *x, const double *gamma, const double *beta, bool relu,
                const double *dy, double *dx, double *dgamma, double *dbeta) {
    size_t m = (size_t)d.n * d.h * d.w;
    int C = d.c;
    for (int c = 0; c < C; c++) {
        double mean = 0, var = 0;
        for (size_t i = 0; i < m; i++) mean += x[i * C + c];
        mean /= (double)m;
        for (size_t i = 0; i < m; i++) var += (x[i * C + c] - mean) * (x[i * C + c] - mean);
        var /= (double)m;
        double inv = 1.0 / sqrt(var + REF_BN_EPS);
        double sg = 0, sgx = 0; /* sum of (masked) dy and of dy * xhat */
        for (size_t i = 0; i < m; i++) {
            double xh = (x[i * C + c] - mean) * inv;
            double g = dy[i * C + c];
            if (relu && gamma[c] * xh + beta[c] <= 0) g = 0;
            sg += g;
            sgx += g * xh;
        }
        dgamma[c] = sgx;
        dbeta[c] = sg;
        for (size_t i = 0; i < m; i++) {
            double xh = (x[i * C + c] - mean) * inv;
            double g = dy[i * C + c];
            if (relu && gamma[c] * xh + beta[c] <= 0) g = 0;
            dx[i * C + c] = gamma[c] * inv * (g - sg / (double)m - xh * sgx / (double)m);
        }
    }
}

void ref_bn_update_running(int c, size_t m, const double *mean, const double *var, double *run_mean,
                           double *run_var) {
    double mom = REF_BN_MOMENTUM;
    for (int i = 0; i < c; i++) {
        run_mean[i] = (1 - mom) * run_mean[i] + mom * mean[i];
        run_var[i] = (1 - mom) * run_var[i] + mom * var[i] * (double)m / (double)(m - 1);
    }
}

/* ---- relu, pooling -------------------------------------------------------------------------- */

void ref_relu_fwd(size_t n, const double *x, double *y) {
    for (size_t i = 0; i < n; i++) y[i] = x[i] > 0 ? x[i] : 0.0;
}

void ref_relu_bwd(size_t n, const double *x, const double *dy, double *dx) {
    for (size_t i = 0; i < n; i++) dx[i] = x[i] > 0 ? dy[i] : 0.0;
}

/* Index (into x) of the first maximum of the in-bounds window at output (n, p, q, c). */
static size_t maxpool_arg(const LayerSpec *s, Dims4 in, const double *x, int n, int p, int q, int c) {
    size_t best = (size_t)-1;
    for (int r = 0; r < s->kh; r++) {
        int ih = p * s->stride - s->pad + r;
        if (ih < 0 || ih >= in.h) continue;
        for (int ss = 0; ss < s->kw; ss++) {
            int iw = q * s->stride - s->pad + ss;
            if (iw < 0 || iw >= in.w) continue;
            size_t i = nhwc(in, n, ih, iw, c);
            if (best == (size_t)-1 || x[i] > x[best]) best = i;
        }
    }
    return best;
}

void ref_maxpool_fwd(const LayerSpec *s, Dims4 in, const double *x, double *y) {
    Dims4 o = window_out(s, in, in.c);
    for (int n = 0; n < in.n; n++)
        for (int p = 0; p < o.h; p++)
            for (int q = 0; q < o.w; q++)
                for (int c = 0; c < in.c; c++) {
                    size_t a = maxpool_arg(s, in, x, n, p, q, c);
                    y[nhwc(o, n, p, q, c)] = a == (size_t)-1 ? 0.0 : x[a];
                }
}

void ref_maxpool_bwd(const LayerSpec *s, Dims4 in, const double *x, const double *dy, double *dx) {
    Dims4 o = window_out(s, in, in.c);
    memset(dx, 0, dims_count(in) * sizeof *dx);
    for (int n = 0; n < in.n; n++)
        for (int p = 0; p < o.h; p++)
            for (int q = 0; q < o.w; q++)
                for (int c = 0; c < in.c; c++) {
                    size_t a = maxpool_arg(s, in, x, n, p, q, c);
                    if (a != (size_t)-1) dx[a] += dy[nhwc(o, n, p, q, c)];
                }
}

void ref_avgpool_fwd(const LayerSpec *s, Dims4 in, const double *x, double *y) {
    Dims4 o = window_out(s, in, in.c);
    double div = (double)s->kh * s->kw;
    for (int n = 0; n < in.n; n++)
        for (int p = 0; p < o.h; p++)
            for (int q = 0; q < o.w; q++)
                for (int c = 0; c < in.c; c++) {
                    double acc = 0;
                    for (int r = 0; r < s->kh; r++) {
                        int ih = p * s->stride - s->pad + r;
                        if (ih < 0 || ih >= in.h) continue;
                        for (int ss = 0; ss < s->kw; ss++) {
                            int iw = q * s->stride - s->pad + ss;
                            if (iw >= 0 && iw < in.w) acc += x[nhwc(in, n, ih, iw, c)];
                        }
                    }
                    y[nhwc(o, n, p, q, c)] = acc / div;
                }
}

void ref_avgpool_bwd(const LayerSpec *s, Dims4 in, const double *dy, double *dx) {
    Dims4 o = window_out(s, in, in.c);
    double div = (double)s->kh * s->kw;
    memset(dx, 0, dims_count(in) * sizeof *dx);
    for (int n = 0; n < in.n; n++)
        for (int p = 0; p < o.h; p++)
            for (int q = 0; q < o.w; q++)
                for (int c = 0; c < in.c; c++) {
                    double g = dy[nhwc(o, n, p, q, c)] / div;
                    for (int r = 0; r < s->kh; r++) {
                        int ih = p * s->stride - s->pad + r;
                        if (ih < 0 || ih >= in.h) continue;
                        for (int ss = 0; ss < s->kw; ss++) {
                            int iw = q * s->stride - s->pad + ss;
                            if (iw >= 0 && iw < in.w) dx[nhwc(in, n, ih, iw, c)] += g;
                        }
                    }
                }
}

void ref_gap_fwd(Dims4 in, const double *x, double *y) {
    size_t hw = (size_t)in.h * in.w;
    for (int n = 0; n < in.n; n++)
        for (int c = 0; c < in.c; c++) {
            double acc = 0;
            for (size_t i = 0; i < hw; i++) acc += x[((size_t)n * hw + i) * in.c + c];
            y[(size_t)n * in.c + c] = acc / (double)hw;
        }
}

void ref_gap_bwd(Dims4 in, const double *dy, double *dx) {
    size_t hw = (size_t)in.h * in.w;
    for (int n = 0; n < in.n; n++)
        for (size_t i = 0; i < hw; i++)
            for (int c = 0; c < in.c; c++)
                dx[((size_t)n * hw + i) * in.c + c] = dy[(size_t)n * in.c + c] / (double)hw;
}

/* ---- fc, add, loss -------------------------------------------------------------------------- */

void ref_fc_fwd(Dims4 in, int k, const double *x, const double *w, const double *b, double *y) {
    size_t f = dims_sample(in);
    for (int n = 0; n < in.n; n++)
        for (int o = 0; o < k; o++) {
            double acc = b ? b[o] : 0.0;
            for (size_t i = 0; i < f; i++) acc += w[(size_t)o * f + i] * x[(size_t)n * f + i];
            y[(size_t)n * k + o] = acc;
        }
}

void ref_fc_bwd(Dims4 in, int k, const double *x, const double *w, const double *dy, double *dx,
                double *dw, double *db) {
    size_t f = dims_sample(in);
    if (dx) {
        for (int n = 0; n < in.n; n++)
            for (size_t i = 0; i < f; i++) {
                double acc = 0;
                for (int o = 0; o < k; o++) acc += dy[(size_t)n * k + o] * w[(size_t)o * f + i];
                dx[(size_t)n * f + i] = acc;
            }
    }
    for (int o = 0; o < k; o++) {
        if (db) {
            double acc = 0;
            for (int n = 0; n < in.n; n++) acc += dy[(size_t)n * k + o];
            db[o] = acc;
        }
        for (size_t i = 0; i < f; i++) {
            double acc = 0;
            for (int n = 0; n < in.n; n++) acc += dy[(size_t)n * k + o] * x[(size_t)n * f + i];
            dw[(size_t)o * f + i] = acc;
        }
    }
}

void ref_add_fwd(size_t n, const double *x0, const double *x1, bool relu, double *y) {
    for (size_t i = 0; i < n; i++) {
        double v = x0[i] + x1[i];
        y[i] = relu && v < 0 ? 0.0 : v;
    }
}

void ref_add_bwd(size_t n, const double *y, bool relu, const double *dy, double *dx0, double *dx1) {
    for (size_t i = 0; i < n; i++) {
        double g = relu && !(y[i] > 0) ? 0.0 : dy[i];
        if (dx0) dx0[i] = g;
        if (dx1) dx1[i] = g;
    }
}

double ref_softmax_ce_fwd(int n, int classes, const double *x, const int32_t *labels, double *p) {
    double loss = 0;
    for (int i = 0; i < n; i++) {
        const double *xi = x + (size_t)i * classes;
        double *pi = p + (size_t)i * classes;
        double mx = xi[0];
        for (int j = 1; j < classes; j++)
            if (xi[j] > mx) mx = xi[j];
        double sum = 0;
        for (int j = 0; j < classes; j++) sum += exp(xi[j] - mx);
        for (int j = 0; j < classes; j++) pi[j] = exp(xi[j] - mx) / sum;
        loss += -(xi[labels[i]] - mx - log(sum));
    }
    return loss / n;
}

void ref_softmax_ce_bwd(int n, int classes, const double *p, const int32_t *labels, double *dx) {
    for (int i = 0; i < n; i++)
        for (int j = 0; j < classes; j++) {
            size_t a = (size_t)i * classes + j;
            dx[a] = (p[a] - (j == labels[i] ? 1.0 : 0.0)) / n;
        }
}

/* ---- parameters ----------------------------------------------------------------------------- */

int ref_n_params(const LayerSpec *s) {
    switch (s->kind) {
    case LAYER_CONV:
    case LAYER_FC: return s->bias ? 2 : 1;
    case LAYER_BN: return 2;
    default: return 0;
    }
}

size_t ref_param_count(const LayerSpec *s, Dims4 in, int i) {
    if (i < 0 || i >= ref_n_params(s)) return 0;
    switch (s->kind) {
    case LAYER_CONV: return i == 0 ? (size_t)s->out_c * in.c * s->kh * s->kw : (size_t)s->out_c;
    case LAYER_FC: return i == 0 ? (size_t)s->out_c * dims_sample(in) : (size_t)s->out_c;
    case LAYER_BN: return (size_t)in.c;
    default: return 0;
    }
}

/* ---- interpreter ---------------------------------------------------------------------------- */

/* One row of the interpreter's dispatch table: forward and backward of layer i. Backward writes
 * the input gradients into dx[0..inputs-1] (scratch buffers the caller sums into the producers). */
typedef struct {
    void (*fwd)(RefNet *r, int i, bool train);
    void (*bwd)(RefNet *r, int i, double *const dx[2]);
} RefOps;

static const LayerSpec *ref_spec(const RefNet *r, int i) { return &r->m->layers[i]; }
static RefLayer *ref_in(RefNet *r, int i, int j) { return &r->layers[ref_spec(r, i)->in[j]]; }

static void op_none_fwd(RefNet *r, int i, bool train) {}
static void op_none_bwd(RefNet *r, int i, double *const dx[2]) {}

static void op_conv_fwd(RefNet *r, int i, bool train) {
    RefLayer *l = &r->layers[i], *x = ref_in(r, i, 0);
    ref_conv_fwd(ref_spec(r, i), x->out, x->y, l->param[0], l->param[1], l->y);
}
static void op_conv_bwd(RefNet *r, int i, double *const dx[2]) {
    RefLayer *l = &r->layers[i], *x = ref_in(r, i, 0);
    ref_conv_bwd_data(ref_spec(r, i), x->out, l->param[0], l->dy, dx[0]);
    ref_conv_bwd_weights(ref_spec(r, i), x->out, x->y, l->dy, l->grad[0], l->grad[1]);
}

static void op_bn_fwd(RefNet *r, int i, bool train) {
    RefLayer *l = &r->layers[i], *x = ref_in(r, i, 0);
    bool relu = ref_spec(r, i)->relu;
    if (train) {
        ref_bn_fwd_train(x->out, x->y, l->param[0], l->param[1], relu, l->y, l->batch_mean,
                         l->batch_var);
        ref_bn_update_running(x->out.c, (size_t)x->out.n * x->out.h * x->out.w, l->batch_mean,
                              l->batch_var, l->run_mean, l->run_var);
    } else {
        ref_bn_fwd_infer(x->out, x->y, l->param[0], l->param[1], l->run_mean, l->run_var, relu, l->y);
    }
}
static void op_bn_bwd(RefNet *r, int i, double *const dx[2]) {
    RefLayer *l = &r->layers[i], *x = ref_in(r, i, 0);
    ref_bn_bwd(x->out, x->y, l->param[0], l->param[1], ref_spec(r, i)->relu, l->dy, dx[0], l->grad[0],
               l->grad[1]);
}

static void op_relu_fwd(RefNet *r, int i, bool train) {
    RefLayer *x = ref_in(r, i, 0);
    ref_relu_fwd(dims_count(x->out), x->y, r->layers[i].y);
}
static void op_relu_bwd(RefNet *r, int i, double *const dx[2]) {
    RefLayer *x = ref_in(r, i, 0);
    ref_relu_bwd(dims_count(x->out), x->y, r->layers[i].dy, dx[0]);
}

static void op_maxpool_fwd(RefNet *r, int i, bool train) {
    RefLayer *x = ref_in(r, i, 0);
    ref_maxpool_fwd(ref_spec(r, i), x->out, x->y, r->layers[i].y);
}
static void op_maxpool_bwd(RefNet *r, int i, double *const dx[2]) {
    RefLayer *x = ref_in(r, i, 0);
    ref_maxpool_bwd(ref_spec(r, i), x->out, x->y, r->layers[i].dy, dx[0]);
}

static void op_avgpool_fwd(RefNet *r, int i, bool train) {
    RefLayer *x = ref_in(r, i, 0);
    ref_avgpool_fwd(ref_spec(r, i), x->out, x->y, r->layers[i].y);
}
static void op_avgpool_bwd(RefNet *r, int i, double *const dx[2]) {
    ref_avgpool_bwd(ref_spec(r, i), ref_in(r, i, 0)->out, r->layers[i].dy, dx[0]);
}

static void op_gap_fwd(RefNet *r, int i, bool train) {
    RefLayer *x = ref_in(r, i, 0);
    ref_gap_fwd(x->out, x->y, r->layers[i].y);
}
static void op_gap_bwd(RefNet *r, int i, double *const dx[2]) {
    ref_gap_bwd(ref_in(r, i, 0)->out, r->layers[i].dy, dx[0]);
}

static void op_fc_fwd(RefNet *r, int i, bool train) {
    RefLayer *l = &r->layers[i], *x = ref_in(r, i, 0);
    ref_fc_fwd(x->out, ref_spec(r, i)->out_c, x->y, l->param[0], l->param[1], l->y);
}
static void op_fc_bwd(RefNet *r, int i, double *const dx[2]) {
    RefLayer *l = &r->layers[i], *x = ref_in(r, i, 0);
    ref_fc_bwd(x->out, ref_spec(r, i)->out_c, x->y, l->param[0], l->dy, dx[0], l->grad[0], l->grad[1]);
}

static void op_add_fwd(RefNet *r, int i, bool train) {
    RefLayer *l = &r->layers[i];
    ref_add_fwd(dims_count(l->out), ref_in(r, i, 0)->y, ref_in(r, i, 1)->y, ref_spec(r, i)->relu, l->y);
}
static void op_add_bwd(RefNet *r, int i, double *const dx[2]) {
    RefLayer *l = &r->layers[i];
    ref_add_bwd(dims_count(l->out), l->y, ref_spec(r, i)->relu, l->dy, dx[0], dx[1]);
}

static void op_loss_fwd(RefNet *r, int i, bool train) {
    RefLayer *l = &r->layers[i];
    r->loss = ref_softmax_ce_fwd(l->out.n, l->out.c, ref_in(r, i, 0)->y, r->labels, l->y);
}
static void op_loss_bwd(RefNet *r, int i, double *const dx[2]) {
    RefLayer *l = &r->layers[i];
    ref_softmax_ce_bwd(l->out.n, l->out.c, l->y, r->labels, dx[0]);
}

static const RefOps ref_ops[LAYER_N_KINDS] = {
    [LAYER_INPUT] = {op_none_fwd, op_none_bwd},     [LAYER_CONV] = {op_conv_fwd, op_conv_bwd},
    [LAYER_BN] = {op_bn_fwd, op_bn_bwd},             [LAYER_RELU] = {op_relu_fwd, op_relu_bwd},
    [LAYER_MAXPOOL] = {op_maxpool_fwd, op_maxpool_bwd}, [LAYER_AVGPOOL] = {op_avgpool_fwd, op_avgpool_bwd},
    [LAYER_GAP] = {op_gap_fwd, op_gap_bwd},          [LAYER_FC] = {op_fc_fwd, op_fc_bwd},
    [LAYER_ADD] = {op_add_fwd, op_add_bwd},          [LAYER_LOSS] = {op_loss_fwd, op_loss_bwd},
};

static int n_inputs(LayerKind k) {
    return k == LAYER_INPUT ? 0 : k == LAYER_ADD ? 2 : 1;
}

void ref_net_deinit(RefNet *r) {
    if (r->layers) {
        for (int i = 0; i < r->m->n_layers; i++) {
            RefLayer *l = &r->layers[i];
            mem_free(l->y);
            mem_free(l->dy);
            for (int j = 0; j < 2; j++) {
                mem_free(l->param[j]);
                mem_free(l->grad[j]);
            }
            mem_free(l->run_mean);
            mem_free(l->run_var);
            mem_free(l->batch_mean);
            mem_free(l->batch_var);
        }
    }
    mem_free(r->layers);
    mem_free(r->labels);
    mem_free(r->scratch[0]);
    mem_free(r->scratch[1]);
    memset(r, 0, sizeof *r);
}

int ref_net_init(RefNet *r, const ModelSpec *m, int batch) {
    int rc = 0;
    memset(r, 0, sizeof *r);
    r->m = m;
    r->batch = batch;
    if (m->n_layers < 2 || m->layers[0].kind != LAYER_INPUT || m->layers[m->n_layers - 1].kind != LAYER_LOSS)
        FAIL(ERR_SHAPE, "ref: model '%s' must start with input and end with loss", m->name);
    r->layers = mem_calloc((size_t)m->n_layers, sizeof *r->layers);
    r->labels = mem_calloc((size_t)batch, sizeof *r->labels);
    if (!r->layers || !r->labels) FAIL(ERR_NOMEM, "ref: out of memory");
    size_t max_n = 0;
    for (int i = 0; i < m->n_layers; i++) {
        const LayerSpec *s = &m->layers[i];
        RefLayer *l = &r->layers[i];
        Dims4 in[2] = {{batch, m->input.c, m->input.h, m->input.w}, {0, 0, 0, 0}};
        if ((int)s->kind < 0 || (int)s->kind >= (int)LAYER_N_KINDS) FAIL(ERR_SHAPE, "ref: layer %d: bad kind", i);
        for (int j = 0; j < n_inputs(s->kind); j++) {
            if (s->in[j] < 0 || s->in[j] >= i)
                FAIL(ERR_SHAPE, "ref: layer %d '%s': input %d = %d is not an earlier layer", i, s->name,
                     j, s->in[j]);
            in[j] = r->layers[s->in[j]].out;
        }
        TRY(ref_out_dims(s, in, &l->out));
        size_t cnt = dims_count(l->out);
        if (cnt > max_n) max_n = cnt;
        l->y = mem_calloc(cnt, sizeof(double));
        l->dy = mem_calloc(cnt, sizeof(double));
        if (!l->y || !l->dy) FAIL(ERR_NOMEM, "ref: out of memory");
        l->n_params = ref_n_params(s);
        for (int j = 0; j < l->n_params; j++) {
            l->param_n[j] = ref_param_count(s, in[0], j);
            l->param[j] = mem_calloc(l->param_n[j], sizeof(double));
            l->grad[j] = mem_calloc(l->param_n[j], sizeof(double));
            if (!l->param[j] || !l->grad[j]) FAIL(ERR_NOMEM, "ref: out of memory");
        }
        if (s->kind == LAYER_BN) {
            size_t c = (size_t)l->out.c;
            l->run_mean = mem_calloc(c, sizeof(double));
            l->run_var = mem_calloc(c, sizeof(double));
            l->batch_mean = mem_calloc(c, sizeof(double));
            l->batch_var = mem_calloc(c, sizeof(double));
            if (!l->run_mean || !l->run_var || !l->batch_mean || !l->batch_var)
                FAIL(ERR_NOMEM, "ref: out of memory");
            for (size_t c2 = 0; c2 < c; c2++) l->param[0][c2] = l->run_var[c2] = 1.0;
        }
    }
    for (int j = 0; j < 2; j++) {
        r->scratch[j] = mem_calloc(max_n, sizeof(double));
        if (!r->scratch[j]) FAIL(ERR_NOMEM, "ref: out of memory");
    }
    return 0;
fail:
    ref_net_deinit(r);
    return rc;
}

double *ref_net_input(RefNet *r) { return r->layers[0].y; }

double ref_net_forward(RefNet *r, bool train) {
    for (int i = 1; i < r->m->n_layers; i++) ref_ops[r->m->layers[i].kind].fwd(r, i, train);
    return r->loss;
}

void ref_net_backward(RefNet *r) {
    for (int i = 0; i < r->m->n_layers; i++)
        memset(r->layers[i].dy, 0, dims_count(r->layers[i].out) * sizeof(double));
    for (int i = r->m->n_layers - 1; i >= 1; i--) {
        const LayerSpec *s = &r->m->layers[i];
        ref_ops[s->kind].bwd(r, i, r->scratch);
        for (int j = 0; j < n_inputs(s->kind); j++) {
            RefLayer *p = &r->layers[s->in[j]];
            size_t cnt = dims_count(p->out);
            for (size_t e = 0; e < cnt; e++) p->dy[e] += r->scratch[j][e];
        }
    }
}

void ref_zero_unread(ConvGeom g, float *a, double *b) {
    for (int h = 0; h < g.h; h++)
        for (int w = 0; w < g.w; w++) {
            bool row = false, col = false;
            for (int p = 0; p < g.p; p++)
                for (int t = 0; t < g.r; t++) row = row || p * g.stride - g.pad + t == h;
            for (int q = 0; q < g.q; q++)
                for (int t = 0; t < g.s; t++) col = col || q * g.stride - g.pad + t == w;
            if (row && col) continue;
            for (int c = 0; c < g.c; c++) {
                size_t e = ((size_t)h * g.w + w) * g.c + c;
                if (a) a[e] = 0.0f;
                if (b) b[e] = 0.0;
            }
        }
}
