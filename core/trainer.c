#include "core/trainer.h"

#include <math.h>
#include <string.h>

#include "core/err.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/timer.h"

int trainer_init(Trainer *t, Net *net) {
    int rc = 0;
    memset(t, 0, sizeof *t);
    t->net = net;
    int np = net_n_params(net), nl = net_n_layers(net);
    size_t total = 0;
    t->mom_off = mem_calloc((size_t)np + 1, sizeof(size_t));
    t->fwd_ms = mem_calloc((size_t)nl, sizeof(double));
    t->bwd_ms = mem_calloc((size_t)nl, sizeof(double));
    if (!t->mom_off || !t->fwd_ms || !t->bwd_ms) FAIL(ERR_NOMEM, "trainer: cannot allocate its tables");
    for (int i = 0; i < np; i++) {
        t->mom_off[i] = total;
        total += (net_param(net, i).n_stored + 15) / 16 * 16;
    }
    t->momentum = mem_calloc(total ? total : 1, sizeof(float));
    if (!t->momentum) FAIL(ERR_NOMEM, "trainer: cannot allocate %zu MB of momentum", total * 4 >> 20);
    return 0;
fail:
    trainer_deinit(t);
    return rc;
}

void trainer_deinit(Trainer *t) {
    mem_free(t->momentum);
    mem_free(t->mom_off);
    mem_free(t->fwd_ms);
    mem_free(t->bwd_ms);
    memset(t, 0, sizeof *t);
}

void trainer_profile_reset(Trainer *t) {
    int nl = net_n_layers(t->net);
    memset(t->fwd_ms, 0, (size_t)nl * sizeof(double));
    memset(t->bwd_ms, 0, (size_t)nl * sizeof(double));
    t->opt_ms = 0;
}

int trainer_step(Trainer *t, const SgdParams *p) {
    int rc = 0;
    Net *net = t->net;
    if (t->profile) {
        int nl = net_n_layers(net);
        for (int i = 1; i < nl; i++) {
            double t0 = timer_now_ms();
            TRY(layer_forward(net_layer(net, i), true));
            t->fwd_ms[i] += timer_now_ms() - t0;
        }
    } else {
        TRY(net_forward(net, true));
    }
    double loss = net_loss(net);
    if (!isfinite(loss)) FAIL(ERR_NUMERIC, "training step %ld: loss is %g (expected a finite value)", t->step + 1, loss);
    if (t->profile) TRY(net_backward_timed(net, t->bwd_ms));
    else TRY(net_backward(net));
    double t0 = timer_now_ms();
    int np = net_n_params(net);
    for (int i = 0; i < np; i++) {
        LayerParam lp = net_param(net, i);
        optim_sgd_step(lp.w, lp.dw, t->momentum + t->mom_off[i], lp.n_stored, p, lp.decay, t->step == 0);
    }
    if (t->profile) t->opt_ms += timer_now_ms() - t0;
    t->step++;
fail:
    return rc;
}
