/* masks.c: packing a sparse gradient's positions into 48-bit words and back (masks.h). */
#include "accel/masks.h"

#include <math.h>

#include "core/err.h"
#include "core/log.h"

size_t mask_n_words(int n, int p, int q, int k) {
    size_t e = (size_t)n * p * q * k;
    return (e + MASK_BITS_PER_WORD - 1) / MASK_BITS_PER_WORD;
}

void mask_pack(const SparseGrad *s, int64_t *words) {
    size_t nw = mask_n_words(s->n, s->p, s->q, s->k), rows = (size_t)s->n * s->p * s->q;
    for (size_t i = 0; i < nw; i++) words[i] = 0;
    for (size_t r = 0; r < rows; r++)
        for (int32_t j = s->row_ptr[r]; j < s->row_ptr[r + 1]; j++) {
            size_t e = r * (size_t)s->k + s->chan[j];
            words[e / MASK_BITS_PER_WORD] |= (int64_t)1 << (e % MASK_BITS_PER_WORD);
        }
}

/* The word as bits, or -1 when it is not an integer in [0, 2^48). */
static int64_t mask_word(double w) {
    if (!(w >= 0) || w >= (double)((int64_t)1 << MASK_BITS_PER_WORD) || w != floor(w)) return -1;
    return (int64_t)w;
}

long mask_count_bits(const double *words, size_t n_words, size_t count) {
    long n = 0;
    for (size_t i = 0; i < n_words; i++) {
        int64_t b = mask_word(words[i]);
        if (b < 0) return -1;
        size_t first = i * MASK_BITS_PER_WORD;
        if (first + MASK_BITS_PER_WORD > count) { /* the last word: bits beyond the tensor must be 0 */
            size_t valid = count > first ? count - first : 0;
            if (valid < MASK_BITS_PER_WORD && (b >> valid) != 0) return -1;
        }
        n += __builtin_popcountll((unsigned long long)b);
    }
    return n;
}

int mask_unpack(SparseGrad *s, const double *words, size_t n_words) {
    int rc = 0;
    size_t rows = (size_t)s->n * s->p * s->q, count = rows * s->k;
    s->nnz = 0;
    for (size_t r = 0; r <= rows; r++) s->row_ptr[r] = 0;
    if (n_words != mask_n_words(s->n, s->p, s->q, s->k))
        FAIL(ERR_FORMAT, "mask of %zu words: expected %zu for the shape (%d,%d,%d,%d)", n_words,
             mask_n_words(s->n, s->p, s->q, s->k), s->n, s->p, s->q, s->k);
    long nb = mask_count_bits(words, n_words, count);
    if (nb < 0) FAIL(ERR_FORMAT, "mask: a word is not a %d-bit integer, or bits beyond the tensor are set",
                     MASK_BITS_PER_WORD);
    if ((size_t)nb > s->nnz_cap) FAIL(ERR_SHAPE, "mask of %ld nonzeros: capacity %zu", nb, s->nnz_cap);
    size_t nz = 0;
    for (size_t r = 0; r < rows; r++) {
        for (int k = 0; k < s->k; k++) {
            size_t e = r * (size_t)s->k + (size_t)k;
            int64_t b = (int64_t)words[e / MASK_BITS_PER_WORD];
            if ((b >> (e % MASK_BITS_PER_WORD)) & 1) {
                s->chan[nz] = (uint16_t)k;
                s->val[nz] = 1.0f;
                nz++;
            }
        }
        s->row_ptr[r + 1] = (int32_t)nz;
    }
    s->nnz = nz;
fail:
    return rc;
}
