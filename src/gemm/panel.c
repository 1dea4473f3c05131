/* The project's own SGEMM (cl/gemm.cl) for CPU devices with 16-lane float vectors, where CLBlast's
 * kernels through PoCL reach a quarter of the host BLAS (docs/BENCHMARKS.md, "The project's GEMM on
 * AVX-512"): which GEMMs take it, the scratch it needs, and its launches. */
#include <limits.h>

#include "alexnet/status.h"
#include "runtime/check.h"
#include "runtime/launch.h"
#include "gemm/gemm.h"

#define PANEL_CHUNK 2048 /* the reduction runs in chunks of at most this many (B's transposed copy: chunk x N) */
#define PANEL_SLICE 256  /* a chunk longer than 2 slices is cut into slices summed by gemm_sum_slices */
#define PANEL_W_MAX (1u << 22)   /* floats of the slices' partial products at most (else one slice) */
#define PANEL_ROWS_FIRST_MAX 512 /* the panels innermost up to this many rows of C (see an_panel_gemm) */

#define DOT_SLICE 1024       /* gemm_dot's slices of the reduction */
#define DOT_W_MAX (1u << 23) /* floats of their partial products at most (else one slice) */

static size_t up16(size_t floats) { return (floats + 15) / 16 * 16; }

int an_panel_gemm_wanted(const an_runtime *rt, int trans_a, int trans_b, size_t m, size_t n, size_t k) {
  (void)trans_a, (void)trans_b;
  return rt->own_gemm && m && n && k && m <= INT_MAX / 2 && n <= INT_MAX / 2 && k <= INT_MAX / 2;
}

/* NT, C = A·Bᵀ with both operands' rows along k, runs on gemm_dot (no copies): slices of DOT_SLICE
 * summed by gemm_sum_slices when k is longer and their partial products fit DOT_W_MAX floats */
static size_t dot_slices(size_t m, size_t n, size_t k) {
  const size_t slices = (k + DOT_SLICE - 1) / DOT_SLICE;
  return slices > 1 && slices * m * n <= DOT_W_MAX ? slices : 1;
}

static an_status dot_gemm(an_runtime *rt, size_t m, size_t n, size_t k, float alpha, an_buf a, size_t lda, an_buf b,
                          size_t ldb, float beta, an_buf c, size_t ldc) {
  const size_t slices = dot_slices(m, n, k);
  if (slices > 1) AN_TRY(an_reserve_gemm_temp(rt, slices * m * n * sizeof(float)));
  cl_mem w = slices > 1 ? rt->gemm_temp : c.mem;
  const size_t g[3] = {(m + AN_DOT_DM - 1) / AN_DOT_DM, (n + AN_DOT_DN - 1) / AN_DOT_DN, slices}, one[3] = {1, 1, 1};
  const an_arg args[] = {
      an_arg_mem(a.mem),    an_arg_ulong(a.off),  an_arg_int((int)lda), an_arg_mem(b.mem),
      an_arg_ulong(b.off),  an_arg_int((int)ldb), an_arg_mem(c.mem),    an_arg_ulong(c.off),
      an_arg_int((int)ldc), an_arg_mem(w),        an_arg_ulong(0),      an_arg_int((int)slices),
      an_arg_int((int)m),   an_arg_int((int)n),   an_arg_int((int)k),   an_arg_int(slices > 1 ? DOT_SLICE : (int)k),
      an_arg_float(alpha),  an_arg_float(beta)};
  AN_TRY(an_launch(rt, "gemm_dot", 3, g, one, args));
  if (slices == 1) return AN_OK;
  const size_t g_sum[2] = {n, m};
  const an_arg sum[] = {an_arg_mem(c.mem),  an_arg_ulong(c.off), an_arg_int((int)ldc),
                        an_arg_mem(w),      an_arg_ulong(0),     an_arg_int((int)slices),
                        an_arg_int((int)m), an_arg_int((int)n),  an_arg_float(beta)};
  return an_launch(rt, "gemm_sum_slices", 2, g_sum, NULL, sum);
}

typedef struct panel_plan {
  size_t chunk, slices, slice; /* the reduction's chunk; a chunk's slices of `slice` (1: none) */
  size_t ap, bt, w, total;     /* scratch offsets in floats: packed A, transposed B, partial products */
} panel_plan;

static panel_plan plan_of(int trans_b, size_t m, size_t n, size_t k) {
  panel_plan p;
  p.chunk = k < PANEL_CHUNK ? k : PANEL_CHUNK;
  p.slices = 1, p.slice = p.chunk;
  const size_t slices = (p.chunk + PANEL_SLICE - 1) / PANEL_SLICE;
  if (slices > 2 && slices * m * n <= PANEL_W_MAX) p.slices = slices, p.slice = PANEL_SLICE;
  p.ap = 0;
  p.bt = up16(an_panel_packed_floats(m, p.chunk));
  p.w = p.bt + (trans_b ? up16(p.chunk * n) : 0);
  p.total = p.w + (p.slices > 1 ? p.slices * m * n : 0);
  return p;
}

size_t an_panel_scratch_bytes(int trans_a, int trans_b, size_t m, size_t n, size_t k) {
  if (!trans_a && trans_b) return dot_slices(m, n, k) > 1 ? dot_slices(m, n, k) * m * n * sizeof(float) : 0;
  return plan_of(trans_b, m, n, k).total * sizeof(float);
}

/* ap (panels, k, RM) at dst + ap_off (+ z·ap_step for the z-th of count) = alpha·op(A) (m, k), A
 * (+ z·a_step) with row stride lda: gemm_panel's operand */
static an_status pack_into(an_runtime *rt, cl_mem dst, size_t ap_off, size_t ap_step, an_buf a, size_t a_step,
                           size_t lda, int trans_a, size_t m, size_t k, float alpha, size_t count) {
  const size_t global[3] = {k, (m + AN_PANEL_RM - 1) / AN_PANEL_RM, count};
  const an_arg args[] = {an_arg_mem(dst),     an_arg_ulong(ap_off), an_arg_ulong(ap_step), an_arg_mem(a.mem),
                         an_arg_ulong(a.off), an_arg_ulong(a_step), an_arg_int((int)lda),  an_arg_int(trans_a),
                         an_arg_int((int)m),  an_arg_int((int)k),   an_arg_float(alpha)};
  return an_launch(rt, "gemm_pack_a", 3, global, NULL, args);
}
static an_status pack_a(an_runtime *rt, size_t ap_off, size_t ap_step, an_buf a, size_t a_step, size_t lda,
                        int trans_a, size_t m, size_t k, float alpha, size_t count) {
  return pack_into(rt, rt->gemm_temp, ap_off, ap_step, a, a_step, lda, trans_a, m, k, alpha, count);
}

size_t an_panel_packed_floats(size_t m, size_t k) { return (m + AN_PANEL_RM - 1) / AN_PANEL_RM * AN_PANEL_RM * k; }

void an_panel_pack_host(const float *a, size_t m, size_t k, float *dst) {
  const size_t panels = (m + AN_PANEL_RM - 1) / AN_PANEL_RM;
  for (size_t k0 = 0; k0 < k; k0 += PANEL_CHUNK) { /* panel_run's chunks, one after another */
    const size_t kn = k - k0 < PANEL_CHUNK ? k - k0 : PANEL_CHUNK;
    float *chunk = dst + k0 * panels * AN_PANEL_RM; /* (panels, kn, RM) */
    for (size_t p = 0; p < panels; p++)
      for (size_t r = 0; r < AN_PANEL_RM; r++) {
        const size_t i = p * AN_PANEL_RM + r;
        float *to = chunk + p * kn * AN_PANEL_RM + r;
        for (size_t kk = 0; kk < kn; kk++) to[kk * AN_PANEL_RM] = i < m ? a[i * k + k0 + kk] : 0.0f;
      }
  }
}

an_status an_panel_pack_batched(an_runtime *rt, an_buf a, size_t lda, size_t a_step, size_t m, size_t k,
                                size_t count, an_buf dst) {
  if (k > PANEL_CHUNK) return AN_FAIL(AN_ERR_ARGUMENT, "a batch's packed A of k %zu > %d", k, PANEL_CHUNK);
  return pack_into(rt, dst.mem, dst.off, an_panel_packed_floats(m, k), a, a_step, lda, 0, m, k, 1.0f, count);
}

an_status an_panel_pack_a(an_runtime *rt, an_buf a, size_t lda, size_t m, size_t k) {
  AN_TRY(an_reserve_gemm_temp(rt, an_panel_packed_floats(m, k) * sizeof(float)));
  return pack_a(rt, 0, 0, a, 0, lda, 0, m, k, 1.0f, 1);
}

/* The GEMM over the reduction's chunks (one launch of the packing and one of the product per chunk), or
 * with count > 1 a batch of `count` GEMMs in one launch of each, operand i at its offset + i·step (one
 * chunk, one slice, B not transposed: an_panel_batch_ok); ap_step: floats between the batch's packed A */
static an_status panel_run(an_runtime *rt, int trans_a, int trans_b, size_t m, size_t n, size_t k, float alpha,
                           an_buf a, size_t lda, size_t a_step, an_buf b, size_t ldb, size_t b_step, float beta,
                           an_buf c, size_t ldc, size_t c_step, size_t count, size_t ap_step, an_buf packed) {
  const panel_plan p = plan_of(trans_b, m, n, k);
  cl_mem s = rt->gemm_temp;
  /* A packed already (packed.mem: an_panel_pack_host's or an_panel_pack_batched's layout, the chunks one
   * after another), or packed here per chunk */
  const cl_mem ap = packed.mem ? packed.mem : s;
  const size_t panels = (m + AN_PANEL_RM - 1) / AN_PANEL_RM, strips = (n + AN_PANEL_NC - 1) / AN_PANEL_NC;
  const int mi = (int)m, ni = (int)n;
  for (size_t k0 = 0; k0 < k; k0 += p.chunk) {
    const size_t kn = k - k0 < p.chunk ? k - k0 : p.chunk;
    const int kni = (int)kn;
    const size_t ap_off = packed.mem ? packed.off + k0 * panels * AN_PANEL_RM : p.ap;
    const float chunk_beta = k0 ? 1.0f : beta; /* later chunks add to what the first wrote */
    /* ap (panels, kn, RM) = alpha·op(A)[:, k0 : k0 + kn], per GEMM of the batch */
    if (!packed.mem)
      AN_TRY(pack_a(rt, p.ap, ap_step, an_at(a.mem, a.off + (trans_a ? k0 * lda : k0)), a_step, lda, trans_a, m, kn,
                    alpha, count));
    /* B's rows k0 : k0 + kn as (kn, n): in place, or transposed into scratch */
    an_buf rows = an_at(b.mem, b.off + k0 * ldb);
    size_t ld_rows = ldb;
    if (trans_b) {
      const size_t g_t[2] = {(kn + 15) / 16, (n + 15) / 16}, one[2] = {1, 1};
      const an_arg tr[] = {an_arg_mem(s),        an_arg_ulong(p.bt), an_arg_mem(b.mem), an_arg_ulong(b.off + k0),
                           an_arg_int((int)ldb), an_arg_int(ni),     an_arg_int(kni)};
      AN_TRY(an_launch(rt, "gemm_transpose_b", 2, g_t, one, tr));
      rows = an_at(s, p.bt), ld_rows = n;
    }
    const size_t slices = kn > 2 * PANEL_SLICE ? (kn + p.slice - 1) / p.slice : 1;
    /* packed A (the inference plan's): rows enough to spread without slices, and no scratch at all */
    const size_t use = p.slices > 1 && !packed.mem ? slices : 1, slice = use > 1 ? p.slice : kn;
    /* a private tile per work-item: one work-item per group, so the compiler keeps it in registers. With
     * few rows of A (the convolutions' weights) the panels run innermost: B's strip is read from memory
     * once and the panels stay in cache (alexnet-half's step, the Winograd GEMMs and conv1's forward: 70.4
     * against 54.7 images/s with the strips innermost, conv1's forward 58 against 214 ms); a tall A (the
     * fully connected weight gradients, m 1000-4096) keeps its panel in cache across the strips instead
     * (6.1 against 9.4 ms for 2048x4608x64) */
    const int rows_first = m <= PANEL_ROWS_FIRST_MAX;
    const size_t g_panel[3] = {rows_first ? panels : strips, rows_first ? strips : panels, use > 1 ? use : count};
    const size_t one[3] = {1, 1, 1}; /* (the slices' buffer, unread with one slice: C, as scratch may not exist) */
    const an_arg panel[] = {an_arg_mem(ap),           an_arg_ulong(ap_off),     an_arg_mem(rows.mem),
                            an_arg_ulong(rows.off),   an_arg_int((int)ld_rows), an_arg_mem(c.mem),
                            an_arg_ulong(c.off),      an_arg_int((int)ldc),     an_arg_mem(use > 1 ? s : c.mem),
                            an_arg_ulong(p.w),        an_arg_int((int)use),     an_arg_int(mi),
                            an_arg_int(ni),           an_arg_int(kni),          an_arg_int((int)slice),
                            an_arg_float(chunk_beta), an_arg_int(rows_first),   an_arg_ulong(ap_step),
                            an_arg_ulong(b_step),     an_arg_ulong(c_step)};
    AN_TRY(an_launch(rt, "gemm_panel", 3, g_panel, one, panel));
    if (use > 1) {
      const size_t g_sum[2] = {n, m};
      const an_arg sum[] = {an_arg_mem(c.mem), an_arg_ulong(c.off), an_arg_int((int)ldc),
                            an_arg_mem(s),     an_arg_ulong(p.w),   an_arg_int((int)use),
                            an_arg_int(mi),    an_arg_int(ni),      an_arg_float(chunk_beta)};
      AN_TRY(an_launch(rt, "gemm_sum_slices", 2, g_sum, NULL, sum));
    }
  }
  return AN_OK;
}

an_status an_panel_gemm(an_runtime *rt, int trans_a, int trans_b, size_t m, size_t n, size_t k, float alpha,
                        an_buf a, size_t lda, an_buf b, size_t ldb, float beta, an_buf c, size_t ldc) {
  if (!trans_a && trans_b) return dot_gemm(rt, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  AN_TRY(an_reserve_gemm_temp(rt, plan_of(trans_b, m, n, k).total * sizeof(float)));
  return panel_run(rt, trans_a, trans_b, m, n, k, alpha, a, lda, 0, b, ldb, 0, beta, c, ldc, 0, 1, 0,
                   an_at(NULL, 0));
}

int an_panel_batch_ok(const an_runtime *rt, int trans_a, int trans_b, size_t m, size_t n, size_t k) {
  return an_panel_gemm_wanted(rt, trans_a, trans_b, m, n, k) && !trans_b && k <= 2 * PANEL_SLICE;
}

an_status an_panel_gemm_batched(an_runtime *rt, int trans_a, int trans_b, size_t m, size_t n, size_t k, float alpha,
                                an_buf a, size_t lda, size_t a_step, an_buf b, size_t ldb, size_t b_step, float beta,
                                an_buf c, size_t ldc, size_t c_step, size_t count) {
  const size_t one = plan_of(trans_b, m, n, k).total; /* packed A only (no slices, B in place) */
  /* as many GEMMs a launch as the scratch holds packed A's (the net reserved it for its largest GEMM) */
  size_t per = rt->gemm_temp_bytes / (one * sizeof(float));
  if (per < 1) {
    AN_TRY(an_reserve_gemm_temp(rt, one * sizeof(float)));
    per = 1;
  }
  for (size_t i = 0; i < count; i += per) {
    const size_t now = count - i < per ? count - i : per;
    AN_TRY(panel_run(rt, trans_a, trans_b, m, n, k, alpha, an_at(a.mem, a.off + i * a_step), lda, a_step,
                     an_at(b.mem, b.off + i * b_step), ldb, b_step, beta, an_at(c.mem, c.off + i * c_step), ldc,
                     c_step, now, one, an_at(NULL, 0)));
  }
  return AN_OK;
}

an_status an_panel_gemm_batched_packed(an_runtime *rt, size_t m, size_t n, size_t k, an_buf ap, an_buf b, size_t ldb,
                                       size_t b_step, float beta, an_buf c, size_t ldc, size_t c_step,
                                       size_t count) {
  return panel_run(rt, 0, 0, m, n, k, 1.0f, an_at(NULL, 0), k, 0, b, ldb, b_step, beta, c, ldc, c_step, count,
                   an_panel_packed_floats(m, k), ap);
}
