/* The one place the project calls CLBlast's SGEMM. */
#include <clblast_c.h>

#include "alexnet/status.h"
#include "alexnet/tune.h"
#include "../runtime/check.h"
#include "gemm.h"

size_t an_gemm_temp_bytes(an_runtime *rt, int trans_a, int trans_b, size_t m, size_t n, size_t k, size_t a_off,
                          size_t lda, size_t b_off, size_t ldb, size_t c_off, size_t ldc) {
  size_t bytes = 0;
  if (an_gemm_select(rt, trans_a, trans_b, m, n, k) != AN_OK ||
      CLBlastSGemmTempBufferSize(CLBlastLayoutRowMajor, trans_a ? CLBlastTransposeYes : CLBlastTransposeNo,
                                 trans_b ? CLBlastTransposeYes : CLBlastTransposeNo, m, n, k, a_off, lda, b_off, ldb,
                                 c_off, ldc, &rt->queue, &bytes) != CLBlastSuccess)
    return 0;
  return bytes;
}

an_status an_gemm_at(an_runtime *rt, int trans_a, int trans_b, size_t m, size_t n, size_t k,
                     float alpha, an_buf a, size_t lda, an_buf b, size_t ldb, float beta, an_buf c,
                     size_t ldc, const char *file, int line) {
  AN_TRY(an_mark_add(rt, AN_MARK_GEMM_BEGIN, -1));
  AN_TRY(an_gemm_select(rt, trans_a, trans_b, m, n, k)); /* the tuning's configuration for this shape */
  const CLBlastTranspose ta = trans_a ? CLBlastTransposeYes : CLBlastTransposeNo;
  const CLBlastTranspose tb = trans_b ? CLBlastTransposeYes : CLBlastTransposeNo;
  size_t temp = 0;
  CLBlastStatusCode rc;
  if (rt->gemm_temp &&
      CLBlastSGemmTempBufferSize(CLBlastLayoutRowMajor, ta, tb, m, n, k, a.off, lda, b.off, ldb, c.off, ldc,
                                 &rt->queue, &temp) == CLBlastSuccess &&
      temp <= rt->gemm_temp_bytes)
    rc = CLBlastSgemmWithTempBuffer(CLBlastLayoutRowMajor, ta, tb, m, n, k, alpha, a.mem, a.off, lda, b.mem, b.off,
                                    ldb, beta, c.mem, c.off, ldc, &rt->queue, NULL, rt->gemm_temp);
  else
    rc = CLBlastSgemm(CLBlastLayoutRowMajor, ta, tb, m, n, k, alpha, a.mem, a.off, lda, b.mem, b.off, ldb, beta,
                      c.mem, c.off, ldc, &rt->queue, NULL);
  if (rc != CLBlastSuccess) {
    const char *hint = (rc == CLBlastOpenCLOutOfResources || rc == -4)
                           ? "; the device ran out of memory: try a smaller batch"
                           : "";
    return an_error((an_status)rc, file, line, "CLBlastSgemm(%c%c, m=%zu n=%zu k=%zu)%s",
                    trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', m, n, k, hint);
  }
  return an_mark_add(rt, AN_MARK_GEMM_END, -1);
}
