/* shape.h: the dimension names used everywhere.
 * Activations: N (batch), C (channels), H, W; stored NHWC.
 * Weights: K (output channels), C (input channels), R, S (kernel height, width); plain layout KCRS.
 * Conv outputs: P (height), Q (width). */
#ifndef RESPROP_SHAPE_H
#define RESPROP_SHAPE_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    int n, c, h, w;
} Dims4;

static inline size_t dims_count(Dims4 d) { return (size_t)d.n * d.c * d.h * d.w; }
/* Per-sample element count C*H*W. */
static inline size_t dims_sample(Dims4 d) { return (size_t)d.c * d.h * d.w; }

/* Output extent of a window op: floor((in + 2*pad - k) / stride) + 1 (ceil_mode off). */
static inline int shape_out(int in, int k, int stride, int pad) { return (in + 2 * pad - k) / stride + 1; }

#endif
