/* masks.h: a sparse gradient's mask (the positions of its nonzeros, not their values) packed into bits,
 * the form `resprop train --save-masks N` stores in a run record and `resprop sim --masks` reads back.
 * GSCN-sim's cycles depend on the positions only, so a packed mask reproduces them exactly.
 *
 * Layout: entry e = row * K + k of the (N,P,Q,K) NHWC gradient (row = (n*P + p)*Q + q, as in
 * core/sparse.h) is bit (e mod 48) of word e / 48; a word holds 48 bits so that it is exact as an
 * int64 and as a double (the record reader returns doubles), the unused high bits are 0.
 * Nothing here allocates. */
#ifndef RESPROP_MASKS_H
#define RESPROP_MASKS_H

#include <stddef.h>
#include <stdint.h>

#include "core/sparse.h"

#define MASK_BITS_PER_WORD 48

/* Words of a mask of shape (n,p,q,k): ceil(n*p*q*k / 48). */
size_t mask_n_words(int n, int p, int q, int k);
/* Packs the positions of s into words[mask_n_words(shape of s)] (overwritten). */
void mask_pack(const SparseGrad *s, int64_t *words);
/* Bits set in a packed mask given as doubles (as read from a record); -1 when a word is not an integer
 * in [0, 2^48) or a bit beyond the last entry (total entries `count`) is set. */
long mask_count_bits(const double *words, size_t n_words, size_t count);
/* Unpacks into s (initialised with the mask's shape; CSR overwritten, values 1). Returns 0, ERR_FORMAT
 * when n_words does not fit the shape or a word is bad (see mask_count_bits), ERR_SHAPE when s->nnz_cap
 * is too small (s is then empty). */
int mask_unpack(SparseGrad *s, const double *words, size_t n_words);

#endif
