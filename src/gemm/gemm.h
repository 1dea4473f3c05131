/* Internal: CLBlast's SGEMM on row-major (buffer, offset) operands, with its status checked and the
 * shape named in the error. C = alpha·op(A)·op(B) + beta·C. */
#ifndef ALEXNET_GEMM_H
#define ALEXNET_GEMM_H

#include <clblast_c.h>

#include "alexnet/runtime.h"
#include "alexnet/tune.h"

an_status an_gemm_at(an_runtime *rt, int trans_a, int trans_b, size_t m, size_t n, size_t k, float alpha, an_buf a,
                     size_t lda, an_buf b, size_t ldb, float beta, an_buf c, size_t ldc, const char *file, int line);
/* The scratch bytes this GEMM wants in rt->gemm_temp: the project's GEMM's (panel.c) where it runs
 * it, else CLBlast's under the configuration the tuning gives its shape (0 on its direct kernel, or
 * when CLBlast cannot say). */
size_t an_gemm_temp_bytes(an_runtime *rt, int trans_a, int trans_b, size_t m, size_t n, size_t k, size_t a_off,
                          size_t lda, size_t b_off, size_t ldb, size_t c_off, size_t ldc);
/* CLBlast's SGEMM for a row-major problem, in the orientation this project calls it in (temp: a scratch
 * buffer of at least an_clblast_temp_bytes, or NULL for CLBlast's own). */
CLBlastStatusCode an_clblast_sgemm(an_runtime *rt, int trans_a, int trans_b, size_t m, size_t n, size_t k,
                                   float alpha, cl_mem a, size_t a_off, size_t lda, cl_mem b, size_t b_off,
                                   size_t ldb, float beta, cl_mem c, size_t c_off, size_t ldc, cl_mem temp);
/* The scratch bytes that call wants under the configuration in effect ((size_t)-1: CLBlast cannot say). */
size_t an_clblast_temp_bytes(an_runtime *rt, int trans_a, int trans_b, size_t m, size_t n, size_t k, size_t a_off,
                             size_t lda, size_t b_off, size_t ldb, size_t c_off, size_t ldc);
/* The project's GEMM's tiles of C per work-item: cl/gemm.cl's GEMM_RM x 16·GEMM_NV (gemm_panel) and
 * GEMM_DM x GEMM_DN (gemm_dot) */
#define AN_PANEL_RM 6
#define AN_PANEL_NC 64
#define AN_DOT_DM 3
#define AN_DOT_DN 8
/* The project's own GEMM (panel.c, cl/gemm.cl), on runtimes with rt->own_gemm: whether a GEMM takes it
 * (else CLBlast), its scratch in rt->gemm_temp, and the call (which grows that scratch when short). */
int an_panel_gemm_wanted(const an_runtime *rt, int trans_a, int trans_b, size_t m, size_t n, size_t k);
size_t an_panel_scratch_bytes(int trans_a, int trans_b, size_t m, size_t n, size_t k);
an_status an_panel_gemm(an_runtime *rt, int trans_a, int trans_b, size_t m, size_t n, size_t k, float alpha,
                        an_buf a, size_t lda, an_buf b, size_t ldb, float beta, an_buf c, size_t ldc);
/* count GEMMs of one shape, the i-th's operands at a.off + i·a_step, b.off + i·b_step, c.off + i·c_step
 * (Winograd's positions): on the project's GEMM one launch for the batch where an_panel_batch_ok (B not
 * transposed, one reduction slice), else one an_gemm each. Recorded and timed as count GEMMs. */
an_status an_gemm_batched_at(an_runtime *rt, int trans_a, int trans_b, size_t m, size_t n, size_t k, float alpha,
                             an_buf a, size_t lda, size_t a_step, an_buf b, size_t ldb, size_t b_step, float beta,
                             an_buf c, size_t ldc, size_t c_step, int count, const char *file, int line);
#define an_gemm_batched(rt, ta, tb, m, n, k, alpha, a, lda, sa, b, ldb, sb, beta, c, ldc, sc, count) \
  an_gemm_batched_at(rt, ta, tb, m, n, k, alpha, a, lda, sa, b, ldb, sb, beta, c, ldc, sc, count, __FILE__, __LINE__)
/* A (m, k) with row stride lda packed at rt->gemm_temp's start as gemm_panel reads its A (panels of
 * AN_PANEL_RM rows; the scratch grown when short), for a layer's own kernel on the panels (conv_phase.c) */
an_status an_panel_pack_a(an_runtime *rt, an_buf a, size_t lda, size_t m, size_t k);
int an_panel_batch_ok(const an_runtime *rt, int trans_a, int trans_b, size_t m, size_t n, size_t k);
/* Fixed operands packed once (the inference plan's Winograd filters): count A (m, k) at a + i·a_step,
 * row stride lda, packed into dst + i·an_panel_packed_floats(m, k) as gemm_panel reads them; and the
 * batched GEMM on them (an_panel_batch_ok's shapes, alpha 1: one launch, no packing, no scratch) */
size_t an_panel_packed_floats(size_t m, size_t k);
/* A (m, k) row-major packed on the host into dst (an_panel_packed_floats), the reduction's chunks one after
 * another as the GEMM runs them (the inference plan's fully connected weights) */
void an_panel_pack_host(const float *a, size_t m, size_t k, float *dst);
an_status an_panel_pack_batched(an_runtime *rt, an_buf a, size_t lda, size_t a_step, size_t m, size_t k,
                                size_t count, an_buf dst);
an_status an_panel_gemm_batched_packed(an_runtime *rt, size_t m, size_t n, size_t k, an_buf ap, an_buf b, size_t ldb,
                                       size_t b_step, float beta, an_buf c, size_t ldc, size_t c_step, size_t count);
/* an_gemm_batched on A packed by an_panel_pack_batched at ap: recorded and timed as the count GEMMs on
 * the unpacked A that a, lda and a_step describe (offsets only). A batch of one takes any k (no slices, no
 * scratch): C (m, n) = A·B + beta·C on A that an_panel_pack_host packed (an_gemm_packed) */
an_status an_gemm_batched_packed_at(an_runtime *rt, size_t m, size_t n, size_t k, an_buf ap, an_buf a, size_t lda,
                                    size_t a_step, an_buf b, size_t ldb, size_t b_step, float beta, an_buf c,
                                    size_t ldc, size_t c_step, int count, const char *file, int line);
#define an_gemm_batched_packed(rt, m, n, k, ap, a, lda, sa, b, ldb, sb, beta, c, ldc, sc, count) \
  an_gemm_batched_packed_at(rt, m, n, k, ap, a, lda, sa, b, ldb, sb, beta, c, ldc, sc, count, __FILE__, __LINE__)
an_status an_panel_gemm_batched(an_runtime *rt, int trans_a, int trans_b, size_t m, size_t n, size_t k, float alpha,
                                an_buf a, size_t lda, size_t a_step, an_buf b, size_t ldb, size_t b_step, float beta,
                                an_buf c, size_t ldc, size_t c_step, size_t count);
/* A GEMM that a layer runs on a kernel of its own (layers/conv_phase.c): recorded in rt's log as `call`
 * and timed as a GEMM from an_gemm_own_begin to an_gemm_own_end */
an_status an_gemm_own_begin(an_runtime *rt, const an_gemm_call *call);
an_status an_gemm_own_end(an_runtime *rt);
#define an_gemm(rt, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc) \
  an_gemm_at(rt, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, __FILE__, __LINE__)

#define an_gemm_packed(rt, m, n, k, ap, a, lda, b, ldb, beta, c, ldc) \
  an_gemm_batched_packed_at(rt, m, n, k, ap, a, lda, 0, b, ldb, 0, beta, c, ldc, 0, 1, __FILE__, __LINE__)

#endif
