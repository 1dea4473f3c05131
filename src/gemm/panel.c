/* The project's own SGEMM (cl/gemm.cl) for CPU devices with 16-lane float vectors, where CLBlast's
 * kernels through PoCL reach a quarter of the host BLAS (docs/BENCHMARKS.md, "The project's GEMM on
 * AVX-512"): which GEMMs take it, the scratch it needs, and its launches. */
#include <limits.h>

#include "alexnet/status.h"
#include "runtime/check.h"
#include "runtime/launch.h"
#include "gemm/gemm.h"

#define PANEL_RM 8       /* rows of C per work-item: cl/gemm.cl's GEMM_RM */
#define PANEL_NC 48      /* columns of C per work-item: 16·GEMM_NV */
#define PANEL_CHUNK 2048 /* the reduction runs in chunks of at most this many (B's transposed copy: chunk x N) */
#define PANEL_SLICE 256  /* a chunk longer than 2 slices is cut into slices summed by gemm_sum_slices */
#define PANEL_W_MAX (1u << 22)    /* floats of the slices' partial products at most (else one slice) */
#define PANEL_BT_MAX (1u << 22)   /* a transposed B over this many floats stays on CLBlast (see below) */
#define PANEL_B_CACHED (1u << 21) /* floats of B's chunk beyond which it is taken as out of the caches */

static size_t up16(size_t floats) { return (floats + 15) / 16 * 16; }

int an_panel_gemm_wanted(const an_runtime *rt, int trans_a, int trans_b, size_t m, size_t n, size_t k) {
  if (!rt->own_gemm || !m || !n || !k || m > INT_MAX / 2 || n > INT_MAX / 2 || k > INT_MAX / 2) return 0;
  /* a transposed B of 16 MB or more (the fully connected forward pass's (OUT, IN) weight): CLBlast's
   * kernel 1 reads it in place, where this GEMM would first copy it (alexnet-half's fc6, 64x2048x4608:
   * 46 GFLOP/s here against CLBlast's 53) */
  if (trans_b && n * k >= PANEL_BT_MAX) return 0;
  (void)trans_a;
  return 1;
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
  p.bt = up16((m + PANEL_RM - 1) / PANEL_RM * PANEL_RM * p.chunk);
  p.w = p.bt + (trans_b ? up16(p.chunk * n) : 0);
  p.total = p.w + (p.slices > 1 ? p.slices * m * n : 0);
  return p;
}

size_t an_panel_scratch_bytes(int trans_b, size_t m, size_t n, size_t k) {
  return plan_of(trans_b, m, n, k).total * sizeof(float);
}

an_status an_panel_gemm(an_runtime *rt, int trans_a, int trans_b, size_t m, size_t n, size_t k, float alpha,
                        an_buf a, size_t lda, an_buf b, size_t ldb, float beta, an_buf c, size_t ldc) {
  const panel_plan p = plan_of(trans_b, m, n, k);
  AN_TRY(an_reserve_gemm_temp(rt, p.total * sizeof(float)));
  cl_mem s = rt->gemm_temp;
  const size_t panels = (m + PANEL_RM - 1) / PANEL_RM, strips = (n + PANEL_NC - 1) / PANEL_NC;
  const int mi = (int)m, ni = (int)n;
  for (size_t k0 = 0; k0 < k; k0 += p.chunk) {
    const size_t kn = k - k0 < p.chunk ? k - k0 : p.chunk;
    const int kni = (int)kn;
    const float chunk_beta = k0 ? 1.0f : beta; /* later chunks add to what the first wrote */
    /* ap (panels, kn, RM) = alpha·op(A)[:, k0 : k0 + kn] */
    const size_t g_pack[2] = {kn, panels};
    const an_arg pack[] = {an_arg_mem(s),        an_arg_ulong(p.ap),
                           an_arg_mem(a.mem),    an_arg_ulong(a.off + (trans_a ? k0 * lda : k0)),
                           an_arg_int((int)lda), an_arg_int(trans_a),
                           an_arg_int(mi),       an_arg_int(kni),
                           an_arg_float(alpha)};
    AN_TRY(an_launch(rt, "gemm_pack_a", 2, g_pack, NULL, pack));
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
    const size_t use = p.slices > 1 ? slices : 1, slice = use > 1 ? p.slice : kn;
    /* a private tile per work-item: one work-item per group, so the compiler keeps it in registers. B's
     * rows past the caches (conv1's forward: 384 x 193600) are read once with the panels innermost:
     * 124 against 34 GFLOP/s there; within them the strips innermost share a panel (113-181 against
     * 87-155 on the Winograd shapes) */
    const int rows_first = kn * n > PANEL_B_CACHED;
    const size_t g_panel[3] = {rows_first ? panels : strips, rows_first ? strips : panels, use}, one[3] = {1, 1, 1};
    const an_arg panel[] = {an_arg_mem(s),
                            an_arg_ulong(p.ap),
                            an_arg_mem(rows.mem),
                            an_arg_ulong(rows.off),
                            an_arg_int((int)ld_rows),
                            an_arg_mem(c.mem),
                            an_arg_ulong(c.off),
                            an_arg_int((int)ldc),
                            an_arg_mem(s),
                            an_arg_ulong(p.w),
                            an_arg_int((int)use),
                            an_arg_int(mi),
                            an_arg_int(ni),
                            an_arg_int(kni),
                            an_arg_int((int)slice),
                            an_arg_float(chunk_beta),
                            an_arg_int(rows_first)};
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
