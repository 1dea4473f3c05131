/* Internal: each layer family's entry of the layer table (layer.c gathers them by kind). */
#ifndef ALEXNET_LAYER_OPS_H
#define ALEXNET_LAYER_OPS_H

#include "alexnet/layers.h"

extern const an_layer_ops an_conv_ops, an_fc_ops, an_lrn_ops, an_maxpool_ops, an_avgpool_ops, an_dropout_ops;

/* Appends a call to out when there is room; returns the new count (calls beyond max are counted). */
static inline int an_gemm_call_add(an_gemm_call *out, int n, int max, int ta, int tb, size_t m, size_t nn, size_t k,
                                   size_t a_off, size_t lda, size_t b_off, size_t ldb, size_t c_off, size_t ldc) {
  if (n < max) {
    const an_gemm_call c = {ta, tb, m, nn, k, a_off, lda, b_off, ldb, c_off, ldc};
    out[n] = c;
  }
  return n + 1;
}

/* dst (count) = src (count), regions that do not overlap (layer.c) */
an_status an_copy_floats(an_runtime *rt, an_buf dst, an_buf src, size_t count);

/* Parameter shapes of a layer without any. */
static inline int an_no_params(const an_layer_desc *d, const int in[3], const int out[3], int ndim[2],
                               int shape[2][4]) {
  (void)d, (void)in, (void)out, (void)ndim, (void)shape;
  return 0;
}

#endif
