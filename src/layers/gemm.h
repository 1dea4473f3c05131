/* Internal: CLBlast's row-major SGEMM on (buffer, offset) operands, with its status checked and the
 * shape named in the error. C = alpha·op(A)·op(B) + beta·C. */
#ifndef ALEXNET_GEMM_H
#define ALEXNET_GEMM_H

#include "alexnet/runtime.h"

an_status an_gemm_at(an_runtime *rt, int trans_a, int trans_b, size_t m, size_t n, size_t k,
                     float alpha, an_buf a, size_t lda, an_buf b, size_t ldb, float beta, an_buf c,
                     size_t ldc, const char *file, int line);
/* The scratch bytes CLBlast wants for this GEMM under the configuration the tuning gives its shape
 * (0 on its direct kernel, or when CLBlast cannot say). */
size_t an_gemm_temp_bytes(an_runtime *rt, int trans_a, int trans_b, size_t m, size_t n, size_t k, size_t a_off,
                          size_t lda, size_t b_off, size_t ldb, size_t c_off, size_t ldc);
#define an_gemm(rt, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc) \
  an_gemm_at(rt, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, __FILE__, __LINE__)

#endif
