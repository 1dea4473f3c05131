/* CLBlast's AXPY and SCAL for the split's sums (see vector.h). */
#include <clblast_c.h>

#include "gemm/vector.h"
#include "runtime/check.h"

an_status an_axpy(an_runtime *rt, size_t n, float alpha, an_buf x, an_buf y) {
  const CLBlastStatusCode rc = CLBlastSaxpy(n, alpha, x.mem, x.off, 1, y.mem, y.off, 1, &rt->queue, NULL);
  if (rc != CLBlastSuccess) return AN_FAIL((an_status)rc, "CLBlastSaxpy(n=%zu)", n);
  return AN_OK;
}

an_status an_scal(an_runtime *rt, size_t n, float alpha, an_buf x) {
  const CLBlastStatusCode rc = CLBlastSscal(n, alpha, x.mem, x.off, 1, &rt->queue, NULL);
  if (rc != CLBlastSuccess) return AN_FAIL((an_status)rc, "CLBlastSscal(n=%zu)", n);
  return AN_OK;
}
