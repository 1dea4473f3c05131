/* Internal: CLBlast's level-1 routines the two-device split sums gradients and partial products with,
 * checked and named in errors like the GEMM (all CLBlast calls live in gemm/). */
#ifndef ALEXNET_GEMM_VECTOR_H
#define ALEXNET_GEMM_VECTOR_H

#include "alexnet/runtime.h"

/* y += alpha · x over n floats (in-order on rt's queue). */
an_status an_axpy(an_runtime *rt, size_t n, float alpha, an_buf x /* (n) */, an_buf y /* (n) */);
/* x *= alpha over n floats. */
an_status an_scal(an_runtime *rt, size_t n, float alpha, an_buf x /* (n) */);

#endif
