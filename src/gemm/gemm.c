/* The one place the project calls CLBlast's SGEMM, or on wide-vector CPUs the project's own (panel.c). */
#include <clblast_c.h>

#include "alexnet/status.h"
#include "alexnet/tune.h"
#include "runtime/check.h"
#include "runtime/grow.h"
#include "runtime/launch.h"
#include "gemm/gemm.h"
#include "gemm/tuning.h"

/* Which way round CLBlast gets a row-major problem. Its Xgemm kernel 0 reads A as (K, M) and B as (K, N)
 * panels and writes C column-major; everything else it first copies into that form (CLBlast's
 * routines/level3/xgemm.hpp: a/b/c_do_transpose). A row-major call always transposes C through a
 * temporary, so for TN (A = Wᵀ or dYᵀ, B = dY or X) the column-major call with the operands swapped,
 * Cᵀ = Bᵀ·Aᵀ, copies nothing (but padding to its tiles) where the row-major one copies all of C: the
 * fully connected weight gradient (4096x9216 from K = batch 64) ran at 32 GFLOP/s row-major and at 76
 * this way. NN and NT stay row-major: swapped, their tuned configurations ran the convolutions' shapes
 * slower (docs/BENCHMARKS.md, "GEMM orientation").
 * Kernel 1 (GEMMK=1) wants A, B and C all the other way round: row-major, it copies A when trans_a and B
 * when trans_b, never C; swapped, it copies A unless trans_a, B unless trans_b, and always C. It takes
 * the way that copies fewer floats: for the fully connected forward pass (NT, B the (OUT, IN) weight) the
 * swapped call leaves the weight in place, where kernel 0 transposes all of it on every call (fc6 of
 * alexnet-half at batch 64: 25 GFLOP/s with the copy, 63 on kernel 1 without it). */
static int swapped(an_runtime *rt, int trans_a, int trans_b, size_t m, size_t n, size_t k) {
  if (an_gemm_kernel_in_effect(rt) != 1) return trans_a && !trans_b;
  const double a = (double)m * k, b = (double)k * n, c = (double)m * n;
  const double row = (trans_a ? a : 0) + (trans_b ? b : 0), col = (trans_a ? 0 : a) + (trans_b ? 0 : b) + c;
  return col < row;
}

CLBlastStatusCode an_clblast_sgemm(an_runtime *rt, int trans_a, int trans_b, size_t m, size_t n, size_t k,
                                   float alpha, cl_mem a, size_t a_off, size_t lda, cl_mem b, size_t b_off,
                                   size_t ldb, float beta, cl_mem c, size_t c_off, size_t ldc, cl_mem temp) {
  const CLBlastTranspose ta = trans_a ? CLBlastTransposeYes : CLBlastTransposeNo;
  const CLBlastTranspose tb = trans_b ? CLBlastTransposeYes : CLBlastTransposeNo;
  if (swapped(rt, trans_a, trans_b, m, n, k))
    return temp ? CLBlastSgemmWithTempBuffer(CLBlastLayoutColMajor, tb, ta, n, m, k, alpha, b, b_off, ldb, a, a_off,
                                             lda, beta, c, c_off, ldc, &rt->queue, NULL, temp)
                : CLBlastSgemm(CLBlastLayoutColMajor, tb, ta, n, m, k, alpha, b, b_off, ldb, a, a_off, lda, beta, c,
                               c_off, ldc, &rt->queue, NULL);
  return temp ? CLBlastSgemmWithTempBuffer(CLBlastLayoutRowMajor, ta, tb, m, n, k, alpha, a, a_off, lda, b, b_off,
                                           ldb, beta, c, c_off, ldc, &rt->queue, NULL, temp)
              : CLBlastSgemm(CLBlastLayoutRowMajor, ta, tb, m, n, k, alpha, a, a_off, lda, b, b_off, ldb, beta, c,
                             c_off, ldc, &rt->queue, NULL);
}

size_t an_clblast_temp_bytes(an_runtime *rt, int trans_a, int trans_b, size_t m, size_t n, size_t k, size_t a_off,
                             size_t lda, size_t b_off, size_t ldb, size_t c_off, size_t ldc) {
  const CLBlastTranspose ta = trans_a ? CLBlastTransposeYes : CLBlastTransposeNo;
  const CLBlastTranspose tb = trans_b ? CLBlastTransposeYes : CLBlastTransposeNo;
  size_t bytes = 0;
  const CLBlastStatusCode rc = swapped(rt, trans_a, trans_b, m, n, k)
                                   ? CLBlastSGemmTempBufferSize(CLBlastLayoutColMajor, tb, ta, n, m, k, b_off, ldb,
                                                                a_off, lda, c_off, ldc, &rt->queue, &bytes)
                                   : CLBlastSGemmTempBufferSize(CLBlastLayoutRowMajor, ta, tb, m, n, k, a_off, lda,
                                                                b_off, ldb, c_off, ldc, &rt->queue, &bytes);
  return rc == CLBlastSuccess ? bytes : (size_t)-1;
}

size_t an_gemm_temp_bytes(an_runtime *rt, int trans_a, int trans_b, size_t m, size_t n, size_t k, size_t a_off,
                          size_t lda, size_t b_off, size_t ldb, size_t c_off, size_t ldc) {
  if (an_panel_gemm_wanted(rt, trans_a, trans_b, m, n, k)) return an_panel_scratch_bytes(trans_a, trans_b, m, n, k);
  if (an_gemm_select(rt, trans_a, trans_b, m, n, k) != AN_OK) return 0;
  const size_t bytes = an_clblast_temp_bytes(rt, trans_a, trans_b, m, n, k, a_off, lda, b_off, ldb, c_off, ldc);
  return bytes == (size_t)-1 ? 0 : bytes;
}

void an_gemm_record(an_runtime *rt, an_gemm_log *log) { rt->gemm_log = log; }

static void record(an_gemm_log *log, const an_gemm_call *c) {
  an_gemm_call *grown = an_grow(log->calls, log->n, &log->cap, sizeof *grown);
  if (!grown) {
    log->failed = 1;
    return;
  }
  log->calls = grown;
  log->calls[log->n++] = *c;
}

/* A GEMM with one row or one column of C is a matrix-vector product: CLBlast's GEMV on it reads the
 * matrix once, where Xgemm pads the lone row to its tile (alexnet's fc6 at batch 1 ran at 0.1 GFLOP/s).
 * Row-major C (1, n) = op(A)·op(B) is y = op(B)ᵀ·x with x A's row (A (1, k), or Aᵀ a column of stride
 * lda); C (m, 1) is y = op(A)·x with x B's column, y of stride ldc. Returns CLBlast's status. Where the
 * project's GEMM runs (an_panel_gemm_wanted) it takes these too: its NT kernel read fc6's weight 4x faster
 * than CLBlast's GEMV at batch 1 (alexnet-half, 1.85 against 7.5 ms, docs/BENCHMARKS.md). */
static CLBlastStatusCode gemv(an_runtime *rt, int trans_a, int trans_b, size_t m, size_t n, size_t k, float alpha,
                              an_buf a, size_t lda, an_buf b, size_t ldb, float beta, an_buf c, size_t ldc) {
  const CLBlastTranspose no = CLBlastTransposeNo, yes = CLBlastTransposeYes;
  if (m == 1) /* B (k, n) row-major: y = Bᵀx; Bᵀ stored (n, k): y = B x */
    return CLBlastSgemv(CLBlastLayoutRowMajor, trans_b ? no : yes, trans_b ? n : k, trans_b ? k : n, alpha, b.mem,
                        b.off, ldb, a.mem, a.off, trans_a ? lda : 1, beta, c.mem, c.off, 1, &rt->queue, NULL);
  return CLBlastSgemv(CLBlastLayoutRowMajor, trans_a ? yes : no, trans_a ? k : m, trans_a ? m : k, alpha, a.mem,
                      a.off, lda, b.mem, b.off, trans_b ? 1 : ldb, beta, c.mem, c.off, ldc, &rt->queue, NULL);
}

/* CLBlast's indirect GEMM copies an operand into a padded temporary unless it starts at offset 0 with a
 * leading dimension that is its padded size (routines/level3/xgemm.hpp: a/b/c_no_temp): an operand at
 * an offset in a bigger buffer (a group's weights, a Winograd position, an fc layer's weight among the
 * parameters) is copied on every call. Winograd F(2x2,5x5)'s NN 128x6272x48 on kernel 1 ran at 27
 * GFLOP/s at an offset and at 54-78 at 0. So an operand at an offset the device allows a sub-buffer to
 * start at (CL_DEVICE_MEM_BASE_ADDR_ALIGN) is handed to CLBlast as a sub-buffer at offset 0 (*sub, to be
 * released after the call; NULL: x as it was). A buffer that is itself a sub-buffer is cut from its
 * parent. */
static an_buf at_zero(const an_runtime *rt, an_buf x, cl_mem *sub) {
  *sub = NULL;
  const size_t align = rt->info.base_align_bytes, bytes = x.off * sizeof(float);
  if (!x.off || !align || bytes % align) return x;
  cl_mem parent = NULL;
  size_t origin = 0;
  if (clGetMemObjectInfo(x.mem, CL_MEM_ASSOCIATED_MEMOBJECT, sizeof parent, &parent, NULL) != CL_SUCCESS) return x;
  if (parent && clGetMemObjectInfo(x.mem, CL_MEM_OFFSET, sizeof origin, &origin, NULL) != CL_SUCCESS) return x;
  size_t size = 0;
  if (clGetMemObjectInfo(x.mem, CL_MEM_SIZE, sizeof size, &size, NULL) != CL_SUCCESS || size <= bytes) return x;
  if ((origin + bytes) % align) return x;
  const cl_buffer_region region = {origin + bytes, size - bytes};
  cl_int err = CL_SUCCESS;
  cl_mem cut = clCreateSubBuffer(parent ? parent : x.mem, 0, CL_BUFFER_CREATE_TYPE_REGION, &region, &err);
  if (err != CL_SUCCESS || !cut) return x;
  *sub = cut;
  return an_at(cut, 0);
}

/* A batch's GEMM mark, and its count calls in the log, operand i at its offset + i·step */
static an_status begin_batch(an_runtime *rt, int trans_a, int trans_b, size_t m, size_t n, size_t k, size_t a_off,
                             size_t lda, size_t a_step, size_t b_off, size_t ldb, size_t b_step, size_t c_off,
                             size_t ldc, size_t c_step, int count) {
  AN_TRY(an_mark_add(rt, AN_MARK_GEMM_BEGIN, -1));
  for (int i = 0; i < count && rt->gemm_log; i++) {
    const an_gemm_call call = {
        trans_a, trans_b, m, n, k, a_off + i * a_step, lda, b_off + i * b_step, ldb, c_off + i * c_step, ldc};
    record(rt->gemm_log, &call);
  }
  return AN_OK;
}

an_status an_gemm_batched_at(an_runtime *rt, int trans_a, int trans_b, size_t m, size_t n, size_t k, float alpha,
                             an_buf a, size_t lda, size_t a_step, an_buf b, size_t ldb, size_t b_step, float beta,
                             an_buf c, size_t ldc, size_t c_step, int count, const char *file, int line) {
  if (count < 2 || !an_panel_batch_ok(rt, trans_a, trans_b, m, n, k)) {
    for (int i = 0; i < count; i++)
      AN_TRY(an_gemm_at(rt, trans_a, trans_b, m, n, k, alpha, an_at(a.mem, a.off + i * a_step), lda,
                        an_at(b.mem, b.off + i * b_step), ldb, beta, an_at(c.mem, c.off + i * c_step), ldc, file,
                        line));
    return AN_OK;
  }
  AN_TRY(
      begin_batch(rt, trans_a, trans_b, m, n, k, a.off, lda, a_step, b.off, ldb, b_step, c.off, ldc, c_step, count));
  const an_status st = an_panel_gemm_batched(rt, trans_a, trans_b, m, n, k, alpha, a, lda, a_step, b, ldb, b_step,
                                             beta, c, ldc, c_step, (size_t)count);
  if (st != AN_OK)
    return an_error(st, file, line, "the project's GEMM (%d of %c%c, m=%zu n=%zu k=%zu)", count, trans_a ? 'T' : 'N',
                    trans_b ? 'T' : 'N', m, n, k);
  return an_mark_add(rt, AN_MARK_GEMM_END, -1);
}

an_status an_gemm_batched_packed_at(an_runtime *rt, size_t m, size_t n, size_t k, an_buf ap, an_buf a, size_t lda,
                                    size_t a_step, an_buf b, size_t ldb, size_t b_step, float beta, an_buf c,
                                    size_t ldc, size_t c_step, int count, const char *file, int line) {
  AN_TRY(begin_batch(rt, 0, 0, m, n, k, a.off, lda, a_step, b.off, ldb, b_step, c.off, ldc, c_step, count));
  const an_status st = an_panel_gemm_batched_packed(rt, m, n, k, ap, b, ldb, b_step, beta, c, ldc, c_step,
                                                    (size_t)count);
  if (st != AN_OK)
    return an_error(st, file, line, "the project's GEMM (%d of NN on packed A, m=%zu n=%zu k=%zu)", count, m, n, k);
  return an_mark_add(rt, AN_MARK_GEMM_END, -1);
}

an_status an_gemm_own_begin(an_runtime *rt, const an_gemm_call *call) {
  AN_TRY(an_mark_add(rt, AN_MARK_GEMM_BEGIN, -1));
  if (rt->gemm_log) record(rt->gemm_log, call);
  return AN_OK;
}

an_status an_gemm_own_end(an_runtime *rt) { return an_mark_add(rt, AN_MARK_GEMM_END, -1); }

an_status an_gemm_at(an_runtime *rt, int trans_a, int trans_b, size_t m, size_t n, size_t k, float alpha, an_buf a,
                     size_t lda, an_buf b, size_t ldb, float beta, an_buf c, size_t ldc, const char *file,
                     int line) {
  AN_TRY(an_mark_add(rt, AN_MARK_GEMM_BEGIN, -1));
  if (rt->gemm_log) {
    const an_gemm_call call = {trans_a, trans_b, m, n, k, a.off, lda, b.off, ldb, c.off, ldc};
    record(rt->gemm_log, &call);
  }
  /* CLBlast's GEMV reads y even when beta is 0 (0·NaN is NaN, and new buffers hold anything): y is
   * zeroed first, which needs it contiguous (one row of C, or one column with ldc 1) */
  const int zero_y = beta == 0.0f, y_contiguous = m == 1 || ldc == 1;
  if ((m == 1 || n == 1) && k > 1 && !rt->gemv_off && (!zero_y || y_contiguous) &&
      !an_panel_gemm_wanted(rt, trans_a, trans_b, m, n, k)) {
    if (zero_y) {
      const size_t count = m == 1 ? n : m;
      const an_arg args[] = {an_arg_mem(c.mem), an_arg_ulong(c.off)};
      AN_TRY(an_launch(rt, "zero_floats", 1, &count, NULL, args));
    }
    const CLBlastStatusCode rc = gemv(rt, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    if (rc != CLBlastSuccess)
      return an_error((an_status)rc, file, line, "CLBlastSgemv(for GEMM %c%c, m=%zu n=%zu k=%zu)",
                      trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', m, n, k);
    return an_mark_add(rt, AN_MARK_GEMM_END, -1);
  }
  if (an_panel_gemm_wanted(rt, trans_a, trans_b, m, n, k)) {
    const an_status st = an_panel_gemm(rt, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    if (st != AN_OK)
      return an_error(st, file, line, "the project's GEMM (%c%c, m=%zu n=%zu k=%zu)", trans_a ? 'T' : 'N',
                      trans_b ? 'T' : 'N', m, n, k);
    return an_mark_add(rt, AN_MARK_GEMM_END, -1);
  }
  AN_TRY(an_gemm_select(rt, trans_a, trans_b, m, n, k)); /* the tuning's configuration for this shape */
  cl_mem sub[3];
  a = at_zero(rt, a, &sub[0]), b = at_zero(rt, b, &sub[1]), c = at_zero(rt, c, &sub[2]);
  const size_t temp = rt->gemm_temp
                          ? an_clblast_temp_bytes(rt, trans_a, trans_b, m, n, k, a.off, lda, b.off, ldb, c.off, ldc)
                          : 0;
  const CLBlastStatusCode rc = an_clblast_sgemm(rt, trans_a, trans_b, m, n, k, alpha, a.mem, a.off, lda, b.mem,
                                                b.off, ldb, beta, c.mem, c.off, ldc,
                                                rt->gemm_temp && temp <= rt->gemm_temp_bytes ? rt->gemm_temp : NULL);
  for (int i = 0; i < 3; i++) /* the enqueued GEMM keeps what it uses until it has run */
    if (sub[i]) clReleaseMemObject(sub[i]);
  if (rc != CLBlastSuccess) {
    const char *hint = (rc == CLBlastOpenCLOutOfResources || rc == -4)
                           ? "; the device ran out of memory: try a smaller batch"
                           : "";
    return an_error((an_status)rc, file, line, "CLBlastSgemm(%c%c, m=%zu n=%zu k=%zu)%s", trans_a ? 'T' : 'N',
                    trans_b ? 'T' : 'N', m, n, k, hint);
  }
  return an_mark_add(rt, AN_MARK_GEMM_END, -1);
}
