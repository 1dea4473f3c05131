/* The project's own SGEMM for CPUs with 16-lane float vectors (src/gemm/panel.c says when it runs instead
 * of CLBlast's): C (M, N) = alpha·op(A)·op(B) + beta·C, row-major, the way OpenBLAS's kernels work.
 * NN, TN (and TT): A is packed into panels of GEMM_RM rows (alpha folded in); a work-item keeps a
 * GEMM_RM x 16·GEMM_NV tile of C in float16 registers and, per k, loads GEMM_NV vectors of a row of B and
 * broadcasts GEMM_RM values of the panel: one load per GEMM_RM FMAs, where CLBlast's kernel through PoCL
 * loads more than it multiplies. B is read in place unless transposed (TT: transposed into scratch).
 * NT: gemm_dot reads both operands in place along k (below). A long reduction is cut into slices whose
 * partial products gemm_sum_slices adds. The host runs the tiled kernels with one work-item per work-group,
 * so that PoCL keeps the tile in registers. */

/* *o = x + beta·*o, *o not read when beta is 0 (a new C holds anything, and 0·NaN is NaN): the scalar
 * epilogue of gemm_panel's partial strips, gemm_sum_slices and gemm_dot */
inline void gemm_put(__global float *o, float x, float beta) { *o = beta != 0.0f ? x + beta * *o : x; }

#ifndef GEMM_RM
#define GEMM_RM 6
#endif
#ifndef GEMM_NV
#define GEMM_NV 4
#endif
#define GEMM_NC (16 * GEMM_NV) /* columns of C per work-item */

/* ap (P, K, GEMM_RM), P = ceil(M / GEMM_RM): ap[p, k, r] = alpha·op(A)[p·GEMM_RM + r, k], 0 past row M.
 * op(A) (M, K) is A (M, K) at a_off with row stride lda, or Aᵀ with A (K, M). A batch of such (a range's
 * third dimension z): A at a_off + z·a_step, ap at ap_off + z·ap_step. work-item = (k, p, z) */
__kernel void gemm_pack_a(__global float *ap, ulong ap_off, ulong ap_step, __global const float *a, ulong a_off,
                          ulong a_step, int lda, int trans_a, int m, int k, float alpha) {
  const int kk = (int)get_global_id(0), p = (int)get_global_id(1);
  const size_t z = get_global_id(2);
  a_off += z * a_step;
  __global float *dst = ap + ap_off + z * ap_step + ((size_t)p * k + kk) * GEMM_RM;
  for (int r = 0; r < GEMM_RM; r++) {
    const int i = p * GEMM_RM + r;
    float v = 0.0f;
    if (i < m) v = alpha * (trans_a ? a[a_off + (size_t)kk * lda + i] : a[a_off + (size_t)i * lda + kk]);
    dst[r] = v;
  }
}

/* The panel kernels' tile: acc (GEMM_RM x GEMM_NV float16s) = panel pa (rows p·GEMM_RM.., packed by
 * gemm_pack_a) times B's rows kk in [k0, k1) over the columns j … j + GEMM_NC - 1, where ROW(kk) points
 * at row kk's column j; columns at or past n read as 0 (full: none is) */
#define GEMM_PANEL_TILE(ROW)                                                                          \
  do {                                                                                                \
    _Pragma("unroll") for (int r = 0; r < GEMM_RM; r++)                                               \
      _Pragma("unroll") for (int v = 0; v < GEMM_NV; v++) acc[r][v] = (float16)0.0f;                  \
    for (int kk = k0; kk < k1; kk++) {                                                                \
      const __global float *brow = ROW(kk);                                                           \
      float16 bv[GEMM_NV];                                                                            \
      if (full) {                                                                                     \
        _Pragma("unroll") for (int v = 0; v < GEMM_NV; v++) bv[v] = vload16(v, brow);                 \
      } else {                                                                                        \
        float row[GEMM_NC];                                                                           \
        for (int t = 0; t < GEMM_NC; t++) row[t] = j + t < n ? brow[t] : 0.0f;                        \
        _Pragma("unroll") for (int v = 0; v < GEMM_NV; v++) bv[v] = vload16(v, row);                  \
      }                                                                                               \
      _Pragma("unroll") for (int r = 0; r < GEMM_RM; r++) {                                           \
        const float16 av = (float16)pa[(size_t)kk * GEMM_RM + r];                                     \
        _Pragma("unroll") for (int v = 0; v < GEMM_NV; v++) acc[r][v] = fma(av, bv[v], acc[r][v]);    \
      }                                                                                               \
    }                                                                                                 \
  } while (0)

/* bt (K, N) = Bᵀ for B (N, K) at b_off with row stride ldb, in 16x16 blocks. work-item = block (kb, jb) */
__kernel void gemm_transpose_b(__global float *bt, ulong bt_off, __global const float *b, ulong b_off, int ldb,
                               int n, int k) {
  const int k0 = (int)get_global_id(0) * 16, j0 = (int)get_global_id(1) * 16;
  bt += bt_off;
  if (k0 + 16 <= k && j0 + 16 <= n) {
    float16 row[16];
    for (int t = 0; t < 16; t++) row[t] = vload16(0, b + b_off + (size_t)(j0 + t) * ldb + k0);
    float blk[256];
    for (int t = 0; t < 16; t++) vstore16(row[t], t, blk);
    for (int u = 0; u < 16; u++) {
      float col[16];
      for (int t = 0; t < 16; t++) col[t] = blk[t * 16 + u];
      vstore16(vload16(0, col), 0, bt + (size_t)(k0 + u) * n + j0);
    }
    return;
  }
  for (int u = 0; u < 16 && k0 + u < k; u++)
    for (int t = 0; t < 16 && j0 + t < n; t++)
      bt[(size_t)(k0 + u) * n + j0 + t] = b[b_off + (size_t)(j0 + t) * ldb + k0 + u];
}

/* One GEMM_RM x GEMM_NC tile of C over the k in [s·ks, min(K, s·ks + ks)). ap the packed panels (above);
 * B (K, N) at b_off with row stride ldb. slices == 1: C = acc + beta·C at c_off, row stride ldc (C not
 * read when beta is 0); else the partial product goes to w (slices, M, N) for gemm_sum_slices.
 * work-item = (q, p, z), or (p, q, z) when rows_first: columns q·GEMM_NC.., rows p·GEMM_RM.., slice z
 * (neighbouring work-items share the panel of A, or with rows_first the strip of B, in cache). With one
 * slice, z is a batch's GEMM instead: ap, B and C at their offsets + z times their steps */
__kernel void gemm_panel(__global const float *ap, ulong ap_off, __global const float *b, ulong b_off, int ldb,
                         __global float *c, ulong c_off, int ldc, __global float *w, ulong w_off, int slices, int m,
                         int n, int k, int ks, float beta, int rows_first, ulong ap_step, ulong b_step,
                         ulong c_step) {
  const int q = (int)get_global_id(rows_first ? 1 : 0), p = (int)get_global_id(rows_first ? 0 : 1);
  const int s = slices > 1 ? (int)get_global_id(2) : 0;
  const size_t z = slices > 1 ? 0 : get_global_id(2);
  ap_off += z * ap_step, b_off += z * b_step, c_off += z * c_step;
  const int j = q * GEMM_NC, k0 = s * ks, k1 = min(k, k0 + ks);
  float16 acc[GEMM_RM][GEMM_NV];
  const __global float *pa = ap + ap_off + (size_t)p * k * GEMM_RM;
  const __global float *pb = b + b_off + j;
  const int full = j + GEMM_NC <= n;
#define GEMM_ROW(kk) (pb + (size_t)(kk) * ldb)
  GEMM_PANEL_TILE(GEMM_ROW);
#undef GEMM_ROW
  __global float *out = slices == 1 ? c + c_off : w + w_off + (size_t)s * m * n;
  const int ld = slices == 1 ? ldc : n;
  const float bt = slices == 1 ? beta : 0.0f;
  for (int r = 0; r < GEMM_RM; r++) {
    const int i = p * GEMM_RM + r;
    if (i >= m) break;
    __global float *o = out + (size_t)i * ld + j;
    if (full) {
#pragma unroll
      for (int v = 0; v < GEMM_NV; v++) {
        float16 x = acc[r][v];
        if (bt != 0.0f) x += bt * vload16(v, o);
        vstore16(x, v, o);
      }
    } else {
      float row[GEMM_NC];
#pragma unroll
      for (int v = 0; v < GEMM_NV; v++) vstore16(acc[r][v], v, row);
      for (int t = 0; t < GEMM_NC && j + t < n; t++) gemm_put(o + t, row[t], bt);
    }
  }
}

/* A strided convolution's forward pass as one GEMM with no im2col (layers/conv_phase.c):
 * out (N, M, OH, OW) = act(W · cols + bias) for images n0 + img, where the columns j = oy·WQ + ox
 * (ox < WQ, n = OH·WQ; ox ≥ OW are computed and dropped) are read in place from the image's phase
 * planes ph (C·S·S planes of HQ x WQ at the stride ph_plane, image at img·ph_image): the column block of
 * the reduction's row kk starts at rows[kk] (conv_phase_rows). ap the weight (M, K) packed by
 * gemm_pack_a. work-item = (p, q, img): rows p·GEMM_RM.., columns q·GEMM_NC.. of image img */
__kernel void gemm_conv_phase(__global const float *ap, ulong ap_off, __global const float *ph, ulong ph_off,
                              ulong ph_image, __global const int *rows, ulong rows_off,
                              __global const float *bias, ulong bias_off, __global float *out, ulong out_off,
                              int m, int n, int k, int wq, int ow, int n0, int relu) {
  const int p = (int)get_global_id(0), q = (int)get_global_id(1), img = (int)get_global_id(2);
  const int j = q * GEMM_NC, k0 = 0, k1 = k;
  float16 acc[GEMM_RM][GEMM_NV];
  const __global float *pa = ap + ap_off + (size_t)p * k * GEMM_RM;
  const __global float *pb = ph + ph_off + img * ph_image + j;
  const __global int *rk = rows + rows_off;
  const int full = j + GEMM_NC <= n;
#define GEMM_ROW(kk) (pb + rk[kk])
  GEMM_PANEL_TILE(GEMM_ROW);
#undef GEMM_ROW
  const int ohw = n / wq * ow, oy0 = j / wq, ox0 = j - oy0 * wq;
  __global float *dst = out + out_off + (size_t)(n0 + img) * m * ohw;
  for (int r = 0; r < GEMM_RM; r++) {
    const int i = p * GEMM_RM + r;
    if (i >= m) break;
    float row[GEMM_NC];
#pragma unroll
    for (int v = 0; v < GEMM_NV; v++) vstore16(acc[r][v], v, row);
    __global float *o = dst + (size_t)i * ohw;
    const float b = bias[bias_off + i];
    int oy = oy0, ox = ox0;
    for (int t = 0; t < GEMM_NC && j + t < n; t++) {
      if (ox < ow) {
        const float x = row[t] + b;
        o[oy * ow + ox] = relu && x < 0.0f ? 0.0f : x; /* NaN passes */
      }
      if (++ox == wq) ox = 0, oy++;
    }
  }
}

/* C = Σ_s w[s] + beta·C (C not read when beta is 0): the slices' partial products. work-item = (j, i) */
__kernel void gemm_sum_slices(__global float *c, ulong c_off, int ldc, __global const float *w, ulong w_off,
                              int slices, int m, int n, float beta) {
  const int j = (int)get_global_id(0), i = (int)get_global_id(1);
  float v = 0.0f;
  for (int s = 0; s < slices; s++) v += w[w_off + ((size_t)s * m + i) * n + j];
  __global float *o = c + c_off + (size_t)i * ldc + j;
  gemm_put(o, v, beta);
}

#ifndef GEMM_DM
#define GEMM_DM 3
#endif
#ifndef GEMM_DN
#define GEMM_DN 8
#endif

/* the sum of v's lanes, through memory (once per tile: Oclgrind's uninitialized-value check crashed on the
 * .lo/.hi halving) */
static float sum16(float16 v) {
  float lanes[16];
  vstore16(v, 0, lanes);
  float s = 0.0f;
  for (int i = 0; i < 16; i++) s += lanes[i];
  return s;
}

/* gemm_dot's tile: acc[r][t] (16 lanes) + tail[r][t] = Σ_{q in [k0, k1)} pa[r][q]·pb[t][q] */
#define GEMM_DOT_TILE()                                                                                 \
  do {                                                                                                  \
    _Pragma("unroll") for (int r = 0; r < GEMM_DM; r++)                                                 \
      _Pragma("unroll") for (int t = 0; t < GEMM_DN; t++) acc[r][t] = (float16)0.0f;                    \
    int kk = k0;                                                                                        \
    for (; kk + 16 <= k1; kk += 16) {                                                                   \
      float16 av[GEMM_DM];                                                                              \
      _Pragma("unroll") for (int r = 0; r < GEMM_DM; r++) av[r] = vload16(0, pa[r] + kk);               \
      _Pragma("unroll") for (int t = 0; t < GEMM_DN; t++) {                                             \
        const float16 bv = vload16(0, pb[t] + kk);                                                      \
        _Pragma("unroll") for (int r = 0; r < GEMM_DM; r++) acc[r][t] = fma(av[r], bv, acc[r][t]);      \
      }                                                                                                 \
    }                                                                                                   \
    for (int r = 0; r < GEMM_DM; r++)                                                                   \
      for (int t = 0; t < GEMM_DN; t++) {                                                               \
        float x = 0.0f;                                                                                 \
        for (int q = kk; q < k1; q++) x += pa[r][q] * pb[t][q];                                         \
        tail[r][t] = x;                                                                                 \
      }                                                                                                 \
  } while (0)

/* C = alpha·A·Bᵀ + beta·C for A (M, K) and B (N, K) with rows along K (row strides lda, ldb): both read in
 * place, 16 values of k at a time, a GEMM_DM x GEMM_DN tile of float16 partial sums per work-item, summed
 * across lanes at the end. slices == 1: written to C (beta 0: C not read); else alpha·(slice s's part) to
 * w (slices, M, N) for gemm_sum_slices. work-item = (rows it·GEMM_DM.., columns jt·GEMM_DN.., slice s);
 * the row blocks innermost, so a slice of A stays in cache while B's rows stream past once */
__kernel void gemm_dot(__global const float *a, ulong a_off, int lda, __global const float *b, ulong b_off, int ldb,
                       __global float *c, ulong c_off, int ldc, __global float *w, ulong w_off, int slices, int m,
                       int n, int k, int ks, float alpha, float beta) {
  const int it = (int)get_global_id(0), jt = (int)get_global_id(1), s = (int)get_global_id(2);
  const int k0 = s * ks, k1 = min(k, k0 + ks);
  const __global float *pa[GEMM_DM], *pb[GEMM_DN];
  for (int r = 0; r < GEMM_DM; r++) pa[r] = a + a_off + (size_t)min(it * GEMM_DM + r, m - 1) * lda;
  for (int t = 0; t < GEMM_DN; t++) pb[t] = b + b_off + (size_t)min(jt * GEMM_DN + t, n - 1) * ldb;
  float16 acc[GEMM_DM][GEMM_DN];
  float tail[GEMM_DM][GEMM_DN];
  GEMM_DOT_TILE();
  __global float *out = slices == 1 ? c + c_off : w + w_off + (size_t)s * m * n;
  const int ld = slices == 1 ? ldc : n;
  const float bt = slices == 1 ? beta : 0.0f;
  for (int r = 0; r < GEMM_DM; r++) {
    const int i = it * GEMM_DM + r;
    if (i >= m) break;
    for (int t = 0; t < GEMM_DN; t++) {
      const int j = jt * GEMM_DN + t;
      if (j >= n) break;
      __global float *o = out + (size_t)i * ld + j;
      const float x = alpha * (sum16(acc[r][t]) + tail[r][t]);
      gemm_put(o, x, bt);
    }
  }
}

/* A strided convolution's weight gradient on the phase planes (layers/conv_phase.c), one image a slice:
 * w[img] (M, K) = dy[img] (M, N) · colᵀ, col's row kk being ph[img]'s N values from rows[kk] (the
 * forward's implicit col, gemm_conv_phase); dy (nb, M, N) is the output gradient at the columns j =
 * oy·WQ + ox, 0 at the dropped ones (conv_phase_grad_prologue). gemm_sum_slices adds the images' w into
 * the gradient. work-item = (rows it·GEMM_DM.., reduction rows jt·GEMM_DN.., image img), as gemm_dot */
__kernel void gemm_dot_phase(__global const float *dy, ulong dy_off, __global const float *ph, ulong ph_off,
                             ulong ph_image, __global const int *rows, ulong rows_off, __global float *w,
                             ulong w_off, int m, int n, int k) {
  const int it = (int)get_global_id(0), jt = (int)get_global_id(1), img = (int)get_global_id(2);
  const int k0 = 0, k1 = n;
  const __global float *pa[GEMM_DM], *pb[GEMM_DN];
  for (int r = 0; r < GEMM_DM; r++) pa[r] = dy + dy_off + ((size_t)img * m + min(it * GEMM_DM + r, m - 1)) * n;
  for (int t = 0; t < GEMM_DN; t++)
    pb[t] = ph + ph_off + img * ph_image + rows[rows_off + min(jt * GEMM_DN + t, k - 1)];
  float16 acc[GEMM_DM][GEMM_DN];
  float tail[GEMM_DM][GEMM_DN];
  GEMM_DOT_TILE();
  __global float *out = w + w_off + (size_t)img * m * k;
  for (int r = 0; r < GEMM_DM; r++) {
    const int i = it * GEMM_DM + r;
    if (i >= m) break;
    for (int t = 0; t < GEMM_DN; t++) {
      const int j = jt * GEMM_DN + t;
      if (j >= k) break;
      out[(size_t)i * k + j] = sum16(acc[r][t]) + tail[r][t];
    }
  }
}
