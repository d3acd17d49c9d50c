/* timer.h: monotonic wall-clock time in milliseconds. */
#ifndef RESPROP_TIMER_H
#define RESPROP_TIMER_H

#include <time.h>

static inline double timer_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

#endif
