/* Winograd F(m x m,r x r) for stride-1 "same" convolutions (Lavin and Gray, 2015): F(2x2,3x3) and
 * F(4x4,3x3) for r = 3 (pad 1), F(4x4,5x5) for r = 5 (pad 2); the host picks m per layer
 * (layers/winograd.c). a = m+r-1 points per side, a² multiplies per m x m output tile and input channel
 * where the direct form takes m²·r² (16 against 36 and 36 against 144 for 3x3, 64 against 400 for 5x5).
 *   U = G g Gᵀ   (a x a per filter)     V = Bᵀ d B   (a x a per input tile)     Y = Aᵀ M A   (m x m per tile)
 * and between them M[ξ] = U[ξ] · V[ξ] for each of the P = a² positions ξ = a·row + column: P GEMMs per
 * group, run by the host. The points: 0, ±1, ∞ (a = 4); 0, ±1, ±2, ∞ (a = 6); 0, ±1, ±2, ±1/2, ∞ (a =
 * 8: the matrices of Lavin's wincnn for 8 points). In float32 the 8-point transforms stay within 1e-5 of
 * the direct form's largest output and weight gradient at conv2's sizes (4e-6 and 2e-5 for F(2x2,5x5),
 * the 6-point form used before), the 6-point ones for 3x3 within 5e-6 (3e-7 and 1e-6 for F(2x2,3x3)).
 *
 * Layouts (all fp32, offsets in floats), for a convolution of CI input and CO output channels, groups g,
 * over a chunk of nb images (n0 … n0+nb-1) of H x W, tiled in TH = ceil(H/m) x TW = ceil(W/m) tiles:
 *   src  (N, CI, H, W)        the input (forward) or the output gradient (backward data)
 *   u    (P, CO, CI/g)        transformed filters; a group's rows are contiguous
 *   v    (P, CI, T)           transformed input tiles, T = nb·TH·TW, column t = img·TH·TW + ty·TW + tx;
 *                             position ξ's (CI, T) at ξ·stride (stride ≥ CI·T, the host's: layers/winograd.c)
 *   m    (P, CO, T)           the GEMMs' products, position ξ's (CO, T) at ξ·stride
 *   dst  (N, CO, H, W)        the output (forward) or the input gradient (backward data)
 * The input tile (ty, tx) covers rows m·ty-p … m·ty-p+a-1 and the same columns from m·tx-p, p = (r-1)/2
 * (zero outside the image: the padding), the output tile rows m·ty … m·ty+m-1 and the same columns from
 * m·tx (those inside).
 * Work-items: the filter transform one per filter; the input and output transforms in two variants as
 * cl/conv.cl's: CPU, one per (channel, image) plane, its tiles in order, so each of the P rows of v and m
 * is streamed at unit stride; GPU (_gpu), one per (tile, channel), neighbouring work-items on
 * neighbouring t. Both call the same per-tile functions, which take the point count a as a literal from
 * the kernel (one set of kernels per a, at the end).
 * How the code is written is measured (PoCL, AVX-512, bench --kernels): one set of kernels per a (a
 * kernel choosing its tile at run time vectorized 3x slower); the per-tile functions always inlined
 * (else the F(4x4,5x5) output transform took twice as long); the one-dimensional transforms as macros
 * over element accessors (X(i): an array element or a place in global memory), not functions over
 * float arrays (through such functions the F(2x2,3x3) input transform ran 3x slower than written out);
 * and the tile loops unrolled by pragma in every transform but the input's, which ran faster when the
 * compiler chose (the output-gradient transform 2x slower without). The per-tile functions take no
 * restrict pointers: inlined, those become llvm.experimental.noalias.scope.decl calls, which Oclgrind
 * 21.10 cannot run; and Oclgrind, building without optimization, cannot unroll: its warnings about the
 * pragmas are silenced below. */
#ifdef __clang__
#pragma clang diagnostic ignored "-Wpass-failed"
#endif

/* the filter side r and the output tile side m of a points per side */
#define WINOGRAD_R(a) ((a) == 8 ? 5 : 3)
#define WINOGRAD_M(a) ((a) == 4 ? 2 : 4)
#define WINOGRAD_INLINE inline __attribute__((always_inline))

/* ---- the one-dimensional transforms, for a literal point count a; each reads X(0 …) and writes Y(0 …),
 * accessors the caller defines (macros) ---- */

/* Y[0 … a-1] = G X for one column X[0 … r-1]. G's rows: a = 8: e0; -2/9·(1,1,1,1,1); -2/9·(1,-1,1,-1,1);
 * (1,2,4,8,16)/90; (1,-2,4,-8,16)/90; (16,8,4,2,1)·2/45; (16,-8,4,-2,1)·2/45; e4. a = 6: 1/4·e0;
 * -1/6·(1,1,1); -1/6·(1,-1,1); (1,2,4)/24; (1,-2,4)/24; e2. a = 4: e0; (1,1,1)/2; (1,-1,1)/2; e2 */
#define WINOGRAD_G(a, X, Y)                                                                                        \
  do {                                                                                                             \
    if ((a) == 8) {                                                                                                \
      const float e_ = X(0) + X(2) + X(4), o_ = X(1) + X(3);                                                       \
      const float e4_ = X(0) + 4.0f * X(2) + 16.0f * X(4), o4_ = 2.0f * X(1) + 8.0f * X(3);                        \
      const float eh_ = 16.0f * X(0) + 4.0f * X(2) + X(4), oh_ = 8.0f * X(1) + 2.0f * X(3);                        \
      Y(0) = X(0), Y(1) = (-2.0f / 9.0f) * (e_ + o_), Y(2) = (-2.0f / 9.0f) * (e_ - o_);                           \
      Y(3) = (e4_ + o4_) / 90.0f, Y(4) = (e4_ - o4_) / 90.0f;                                                      \
      Y(5) = (2.0f / 45.0f) * (eh_ + oh_), Y(6) = (2.0f / 45.0f) * (eh_ - oh_), Y(7) = X(4);                       \
    } else if ((a) == 6) {                                                                                         \
      const float e_ = X(0) + X(2), e4_ = X(0) + 4.0f * X(2);                                                      \
      Y(0) = 0.25f * X(0), Y(1) = -(e_ + X(1)) / 6.0f, Y(2) = -(e_ - X(1)) / 6.0f;                                 \
      Y(3) = (e4_ + 2.0f * X(1)) / 24.0f, Y(4) = (e4_ - 2.0f * X(1)) / 24.0f, Y(5) = X(2);                         \
    } else {                                                                                                       \
      Y(0) = X(0), Y(1) = 0.5f * (X(0) + X(1) + X(2)), Y(2) = 0.5f * (X(0) - X(1) + X(2)), Y(3) = X(2);            \
    }                                                                                                              \
  } while (0)

/* Y[0 … r-1] = Gᵀ X for X[0 … a-1]: the adjoint of WINOGRAD_G */
#define WINOGRAD_GT(a, X, Y)                                                                                       \
  do {                                                                                                             \
    if ((a) == 8) {                                                                                                \
      const float s_ = (-2.0f / 9.0f) * (X(1) + X(2)), d_ = (-2.0f / 9.0f) * (X(1) - X(2));                        \
      const float s4_ = (X(3) + X(4)) / 90.0f, d4_ = (X(3) - X(4)) / 90.0f;                                        \
      const float sh_ = (2.0f / 45.0f) * (X(5) + X(6)), dh_ = (2.0f / 45.0f) * (X(5) - X(6));                      \
      Y(0) = X(0) + s_ + s4_ + 16.0f * sh_, Y(1) = d_ + 2.0f * d4_ + 8.0f * dh_;                                   \
      Y(2) = s_ + 4.0f * s4_ + 4.0f * sh_, Y(3) = d_ + 8.0f * d4_ + 2.0f * dh_;                                    \
      Y(4) = s_ + 16.0f * s4_ + sh_ + X(7);                                                                        \
    } else if ((a) == 6) {                                                                                         \
      const float s_ = -(X(1) + X(2)) / 6.0f, d_ = (X(2) - X(1)) / 6.0f;                                           \
      const float s4_ = (X(3) + X(4)) / 24.0f, d4_ = (X(3) - X(4)) / 24.0f;                                        \
      Y(0) = 0.25f * X(0) + s_ + s4_, Y(1) = d_ + 2.0f * d4_, Y(2) = s_ + 4.0f * s4_ + X(5);                       \
    } else {                                                                                                       \
      const float s_ = 0.5f * (X(1) + X(2));                                                                       \
      Y(0) = X(0) + s_, Y(1) = 0.5f * (X(1) - X(2)), Y(2) = s_ + X(3);                                             \
    }                                                                                                              \
  } while (0)

/* Y[0 … a-1] = Bᵀ X for one column X[0 … a-1] */
#define WINOGRAD_BT(a, X, Y)                                                                                       \
  do {                                                                                                             \
    if ((a) == 8) {                                                                                                \
      const float s1_ = X(2) - 4.25f * X(4) + X(6), t1_ = X(1) - 4.25f * X(3) + X(5);                              \
      const float s2_ = 0.25f * X(2) - 1.25f * X(4) + X(6), t2_ = 0.5f * X(1) - 2.5f * X(3) + 2.0f * X(5);         \
      const float s3_ = 4.0f * X(2) - 5.0f * X(4) + X(6), t3_ = 2.0f * X(1) - 2.5f * X(3) + 0.5f * X(5);           \
      Y(0) = X(0) - X(6) + 5.25f * (X(4) - X(2)), Y(1) = s1_ + t1_, Y(2) = s1_ - t1_, Y(3) = s2_ + t2_;            \
      Y(4) = s2_ - t2_, Y(5) = s3_ + t3_, Y(6) = s3_ - t3_, Y(7) = X(7) - X(1) + 5.25f * (X(3) - X(5));             \
    } else if ((a) == 6) {                                                                                         \
      const float p_ = X(4) - 4.0f * X(2), q_ = X(3) - 4.0f * X(1);                                                \
      const float r_ = X(4) - X(2), s_ = 2.0f * (X(3) - X(1));                                                     \
      Y(0) = 4.0f * X(0) - 5.0f * X(2) + X(4), Y(1) = p_ + q_, Y(2) = p_ - q_, Y(3) = r_ + s_, Y(4) = r_ - s_;     \
      Y(5) = 4.0f * X(1) - 5.0f * X(3) + X(5);                                                                     \
    } else {                                                                                                       \
      Y(0) = X(0) - X(2), Y(1) = X(1) + X(2), Y(2) = X(2) - X(1), Y(3) = X(1) - X(3);                              \
    }                                                                                                              \
  } while (0)

/* Y[0 … a-1] = B X: the adjoint of WINOGRAD_BT */
#define WINOGRAD_B(a, X, Y)                                                                                        \
  do {                                                                                                             \
    if ((a) == 8) {                                                                                                \
      const float s1_ = X(1) + X(2), d1_ = X(1) - X(2), s2_ = X(3) + X(4), d2_ = X(3) - X(4);                      \
      const float s3_ = X(5) + X(6), d3_ = X(5) - X(6);                                                            \
      Y(0) = X(0), Y(1) = d1_ + 0.5f * d2_ + 2.0f * d3_ - X(7);                                                    \
      Y(2) = s1_ + 0.25f * s2_ + 4.0f * s3_ - 5.25f * X(0), Y(3) = 5.25f * X(7) - 4.25f * d1_ - 2.5f * (d2_ + d3_); \
      Y(4) = 5.25f * X(0) - 4.25f * s1_ - 1.25f * s2_ - 5.0f * s3_;                                                \
      Y(5) = d1_ + 2.0f * d2_ + 0.5f * d3_ - 5.25f * X(7), Y(6) = s1_ + s2_ + s3_ - X(0), Y(7) = X(7);             \
    } else if ((a) == 6) {                                                                                         \
      Y(0) = 4.0f * X(0), Y(1) = 4.0f * (X(2) - X(1) + X(5)) + 2.0f * (X(4) - X(3));                               \
      Y(2) = -5.0f * X(0) - 4.0f * (X(1) + X(2)) - X(3) - X(4);                                                    \
      Y(3) = X(1) - X(2) + 2.0f * (X(3) - X(4)) - 5.0f * X(5), Y(4) = X(0) + X(1) + X(2) + X(3) + X(4);            \
      Y(5) = X(5);                                                                                                 \
    } else {                                                                                                       \
      Y(0) = X(0), Y(1) = X(1) - X(2) + X(3), Y(2) = X(1) + X(2) - X(0), Y(3) = -X(3);                             \
    }                                                                                                              \
  } while (0)

/* Y[0 … m-1] = Aᵀ X for one column X[0 … a-1]. Aᵀ's rows: a = 8: (1,1,1,1,1,1,1,0); (0,1,-1,2,-2,1/2,-1/2,0);
 * (0,1,1,4,4,1/4,1/4,0); (0,1,-1,8,-8,1/8,-1/8,1). a = 6: (1,1,1,1,1,0); (0,1,-1,2,-2,0); (0,1,1,4,4,0);
 * (0,1,-1,8,-8,1). a = 4: (1,1,1,0); (0,1,-1,-1) */
#define WINOGRAD_AT(a, X, Y)                                                                                       \
  do {                                                                                                             \
    if ((a) == 4) {                                                                                                \
      Y(0) = X(0) + X(1) + X(2), Y(1) = X(1) - X(2) - X(3);                                                        \
    } else {                                                                                                       \
      const float s1_ = X(1) + X(2), d1_ = X(1) - X(2), s2_ = X(3) + X(4), d2_ = X(3) - X(4);                      \
      if ((a) == 8) {                                                                                              \
        const float s3_ = X(5) + X(6), d3_ = X(5) - X(6);                                                          \
        Y(0) = X(0) + s1_ + s2_ + s3_, Y(1) = d1_ + 2.0f * d2_ + 0.5f * d3_;                                       \
        Y(2) = s1_ + 4.0f * s2_ + 0.25f * s3_, Y(3) = d1_ + 8.0f * d2_ + 0.125f * d3_ + X(7);                      \
      } else {                                                                                                     \
        Y(0) = X(0) + s1_ + s2_, Y(1) = d1_ + 2.0f * d2_, Y(2) = s1_ + 4.0f * s2_, Y(3) = d1_ + 8.0f * d2_ + X(5); \
      }                                                                                                            \
    }                                                                                                              \
  } while (0)

/* Y[0 … a-1] = A X for X[0 … m-1] (one column of an output-gradient tile): the adjoint of WINOGRAD_AT */
#define WINOGRAD_A(a, X, Y)                                                                                        \
  do {                                                                                                             \
    if ((a) == 4) {                                                                                                \
      Y(0) = X(0), Y(1) = X(0) + X(1), Y(2) = X(0) - X(1), Y(3) = -X(1);                                           \
    } else {                                                                                                       \
      const float e_ = X(0) + X(2), o_ = X(1) + X(3), e2_ = X(0) + 4.0f * X(2), o2_ = 2.0f * X(1) + 8.0f * X(3);   \
      Y(0) = X(0), Y(1) = e_ + o_, Y(2) = e_ - o_, Y(3) = e2_ + o2_, Y(4) = e2_ - o2_;                             \
      if ((a) == 8) {                                                                                              \
        const float eh_ = X(0) + 0.25f * X(2), oh_ = 0.5f * X(1) + 0.125f * X(3);                                  \
        Y(5) = eh_ + oh_, Y(6) = eh_ - oh_, Y(7) = X(3);                                                           \
      } else {                                                                                                     \
        Y(5) = X(3);                                                                                               \
      }                                                                                                            \
    }                                                                                                              \
  } while (0)

/* value (y, x) of an input plane: zero outside h x w, and zero where the mask is not > 0 when use_mask */
WINOGRAD_INLINE float winograd_pixel(__global const float *plane, __global const float *mask_plane,
                                     int use_mask, int h, int w, int y, int x) {
  if (y < 0 || y >= h || x < 0 || x >= w) return 0.0f;
  if (use_mask && !(mask_plane[y * w + x] > 0.0f)) return 0.0f;
  return plane[y * w + x];
}

/* Filter (o, i) of the convolution CO x CI/g, r x r, to u (a x a at dst[ξ·plane]) = G f Gᵀ. Forward (flip
 * 0): weight (CO, CI/g, r, r) read as is (c_g = CI/g). Backward data (flip 1): the input gradient
 * convolves the output gradient with the filters turned 180° and their channels swapped: filter (o =
 * input channel, i = output channel within o's group) is weight[g·oc_g + i][o mod c_g] rotated, for
 * weight (g·oc_g, c_g, r, r). Flip 2: the channels swapped, not turned: U[ξ]ᵀ of the forward's U[ξ] per
 * group (the adjoint input gradient, winograd_input_grad). */
WINOGRAD_INLINE void winograd_filter_one(__global const float *weight, ulong weight_off,
                                         __global float *u, ulong u_off, int n_out, int n_in_g, int c_g,
                                         int oc_g, int flip, int i, int o, const int a) {
  const int r = WINOGRAD_R(a), taps = r * r;
  size_t base;
  if (flip) {
    const int g = o / c_g;
    base = weight_off + ((size_t)(g * oc_g + i) * c_g + (o - g * c_g)) * taps;
  } else {
    base = weight_off + ((size_t)o * n_in_g + i) * taps;
  }
  float f[25];
  for (int k = 0; k < taps; k++) f[k] = weight[base + (flip == 1 ? taps - 1 - k : k)];
  const size_t plane = (size_t)n_out * n_in_g;
  __global float *dst = u + u_off + (size_t)o * n_in_g + i;
  float t[8][5]; /* G f, a column at a time */
#define F_COL(k) f[(k) * r + j]
#define T_COL(k) t[k][j]
#pragma unroll
  for (int j = 0; j < r; j++) WINOGRAD_G(a, F_COL, T_COL);
#define T_ROW(j) t[k][j]
#define U_OUT(j) dst[(a * k + (j)) * plane]
#pragma unroll
  for (int k = 0; k < a; k++) WINOGRAD_G(a, T_ROW, U_OUT); /* (G f) Gᵀ, a row at a time */
#undef F_COL
#undef T_COL
#undef T_ROW
#undef U_OUT
}

/* input tile (ty, tx) of a plane (a x a from row m·ty-p, column m·tx-p) to V = Bᵀ d B, V[ξ] at
 * dst[ξ·stride] */
WINOGRAD_INLINE void winograd_input_tile(__global const float *plane,
                                         __global const float *mask_plane, int use_mask, int h, int w,
                                         int ty, int tx, __global float *dst, size_t stride, const int a) {
  const int p = (WINOGRAD_R(a) - 1) / 2, y0 = WINOGRAD_M(a) * ty - p, x0 = WINOGRAD_M(a) * tx - p;
  float d[8][8]; /* the tile, read row by row */
  for (int i = 0; i < a; i++)
    for (int j = 0; j < a; j++) d[i][j] = winograd_pixel(plane, mask_plane, use_mask, h, w, y0 + i, x0 + j);
  float b[8][8]; /* Bᵀ d, a column at a time */
#define D_COL(i) d[i][j]
#define B_COL(i) b[i][j]
  for (int j = 0; j < a; j++) WINOGRAD_BT(a, D_COL, B_COL);
#define B_ROW(j) b[i][j]
#define V_OUT(j) dst[(a * i + (j)) * stride]
  for (int i = 0; i < a; i++) WINOGRAD_BT(a, B_ROW, V_OUT); /* (Bᵀ d) B, a row at a time */
#undef D_COL
#undef B_COL
#undef B_ROW
#undef V_OUT
}

/* output tile (ty, tx), M[ξ] at src[ξ·stride], to Y = Aᵀ M A + b, through the ReLU when relu, written at
 * plane's rows m·ty … m·ty+m-1 and the same columns from m·tx that lie inside h x w */
WINOGRAD_INLINE void winograd_output_tile(__global const float *src, size_t stride, float b, int relu,
                                          __global float *plane, int h, int w, int ty, int tx,
                                          const int a) {
  const int m = WINOGRAD_M(a), y0 = m * ty, x0 = m * tx;
  float t[4][8]; /* Aᵀ M, a column at a time */
#define M_COL(i) src[(a * (i) + j) * stride]
#define T_COL(i) t[i][j]
#pragma unroll
  for (int j = 0; j < a; j++) WINOGRAD_AT(a, M_COL, T_COL);
#define T_ROW(j) t[i][j]
#define Y_OUT(j) y[j]
#pragma unroll
  for (int i = 0; i < m; i++) { /* (Aᵀ M) A, a row at a time */
    if (y0 + i >= h) break;
    float y[4];
    WINOGRAD_AT(a, T_ROW, Y_OUT);
    __global float *row = plane + (y0 + i) * w;
#pragma unroll
    for (int j = 0; j < m; j++) {
      const float v = y[j] + b;
      if (x0 + j < w) row[x0 + j] = relu && v < 0.0f ? 0.0f : v;
    }
  }
#undef M_COL
#undef T_COL
#undef T_ROW
#undef Y_OUT
}

/* ---- the weight gradient: dM = A dY Aᵀ per output tile (the adjoint of the output transform), then
 * after the GEMMs dU[ξ] = Σ_t dM[ξ] · V[ξ]ᵀ the filter gradient dg = Gᵀ dU G (the adjoint of the filter
 * transform). Layouts as above: dY is the output gradient (N, CO, H, W), dM (P, CO, T) as m. ---- */

/* output-gradient tile (ty, tx) (m x m from row m·ty, column m·tx; zero outside h x w, and where the mask
 * is not > 0 when use_mask) to dM = A dY Aᵀ, dM[ξ] at dst[ξ·stride] */
WINOGRAD_INLINE void winograd_grad_output_tile(__global const float *plane,
                                               __global const float *mask_plane, int use_mask, int h, int w,
                                               int ty, int tx, __global float *dst, size_t stride,
                                               const int a) {
  const int m = WINOGRAD_M(a), y0 = m * ty, x0 = m * tx;
  float d[4][4]; /* the tile, read row by row */
#pragma unroll
  for (int i = 0; i < m; i++)
#pragma unroll
    for (int j = 0; j < m; j++) d[i][j] = winograd_pixel(plane, mask_plane, use_mask, h, w, y0 + i, x0 + j);
  float c[8][4]; /* A dY, a column at a time */
#define D_COL(i) d[i][j]
#define C_COL(i) c[i][j]
#pragma unroll
  for (int j = 0; j < m; j++) WINOGRAD_A(a, D_COL, C_COL);
#define C_ROW(j) c[i][j]
#define M_OUT(j) dst[(a * i + (j)) * stride]
#pragma unroll
  for (int i = 0; i < a; i++) WINOGRAD_A(a, C_ROW, M_OUT); /* (A dY) Aᵀ, a row at a time */
#undef D_COL
#undef C_COL
#undef C_ROW
#undef M_OUT
}

/* filter (o, i) of dweight += Gᵀ dU G, dU[ξ] at src[ξ·plane] */
WINOGRAD_INLINE void winograd_filter_grad_one(__global const float *src, size_t plane,
                                              __global float *dst, const int a) {
  const int r = WINOGRAD_R(a);
  float t[5][8], g[5]; /* Gᵀ dU, a column at a time; a row of the result */
#define U_COL(k) src[(a * (k) + j) * plane]
#define T_COL(k) t[k][j]
#pragma unroll
  for (int j = 0; j < a; j++) WINOGRAD_GT(a, U_COL, T_COL);
#define T_ROW(l) t[k][l]
#define G_OUT(l) g[l]
#pragma unroll
  for (int k = 0; k < r; k++) { /* (Gᵀ dU) G, a row at a time */
    WINOGRAD_GT(a, T_ROW, G_OUT);
#pragma unroll
    for (int l = 0; l < r; l++) dst[k * r + l] += g[l];
  }
#undef U_COL
#undef T_COL
#undef T_ROW
#undef G_OUT
}

/* ---- the input gradient as the adjoint of the forward pass (when the weight gradient's dM is at hand):
 * dV[ξ] = U[ξ]ᵀ · dM[ξ] (the host's GEMMs, U from winograd_filter with flip 2), then the input's
 * gradient dX = Σ over the tiles covering each pixel of B dV Bᵀ (the input transform's adjoint; the
 * tiles overlap by a-m rows and columns, and their parts in the padding are dropped). ---- */

/* one plane of dinp: cleared, then each tile's B dV Bᵀ (dV[ξ] at src[ξ·stride]) added where it lies
 * inside the image */
WINOGRAD_INLINE void winograd_input_grad_plane(__global const float *src, size_t stride,
                                               __global float *plane, int h, int w, int th, int tw,
                                               const int a) {
  const int m = WINOGRAD_M(a), p = (WINOGRAD_R(a) - 1) / 2;
  for (int i = 0; i < h * w; i++) plane[i] = 0.0f;
  for (int ty = 0; ty < th; ty++)
    for (int tx = 0; tx < tw; tx++) {
      __global const float *t = src + ty * tw + tx;
      float b[8][8], out[8]; /* B dV, a column at a time; a row of the tile */
#define V_COL(i) t[(a * (i) + j) * stride]
#define B_COL(i) b[i][j]
#pragma unroll
      for (int j = 0; j < a; j++) WINOGRAD_B(a, V_COL, B_COL);
      const int y0 = m * ty - p, x0 = m * tx - p;
#define B_ROW(j) b[i][j]
#define X_OUT(j) out[j]
#pragma unroll
      for (int i = 0; i < a; i++) { /* (B dV) Bᵀ, a row at a time, added inside the image */
        if (y0 + i < 0 || y0 + i >= h) continue;
        WINOGRAD_B(a, B_ROW, X_OUT);
        __global float *row = plane + (y0 + i) * w;
#pragma unroll
        for (int j = 0; j < a; j++)
          if (x0 + j >= 0 && x0 + j < w) row[x0 + j] += out[j];
      }
#undef V_COL
#undef B_COL
#undef B_ROW
#undef X_OUT
    }
}

/* ---- the kernels, one set per point count A (WINOGRAD_KERNELS(4), (6), (8): winograd4_input,
 * winograd4_input_gpu, …), so that each is compiled for its tile alone, without branches on the tile
 * (see above). Parameters: ----
 * winogradA_filter (weight, u, …, flip): work-item = (i, o), winograd_filter_one
 * winogradA_input, winogradA_grad_output (src, mask, use_mask, dst, stride, channels, …): V = Bᵀ d B of
 *   the input tiles, or dM = A dY Aᵀ of the output gradient's; with use_mask each value of src is
 *   multiplied by [mask > 0] (mask laid out as src: the backward pass's ReLU, applied as src is read).
 *   CPU: work-item = (ch, img), one plane, its tiles row by row, so each of the P rows of dst is written
 *   at unit stride and the plane's rows are read in order; _gpu: work-item = (t, ch), one tile,
 *   neighbouring work-items on neighbouring t
 * winogradA_output (m, bias, use_bias, dst, stride, co, …, relu): Y = Aᵀ M A + bias[o] when use_bias,
 *   then the ReLU when relu; a tile's pixels past the image's last row or column are not written. CPU:
 *   work-item = (o, img); _gpu: (t, o)
 * winogradA_filter_grad (du, dweight, …): work-item = (i, o): filter (o, i) of the weight (CO, CI/g, r,
 *   r) += Gᵀ dU G, dU[ξ] (P, CO, CI/g) at du[ξ·CO·CI/g + o·CI/g + i]
 * winogradA_input_grad (v, stride, dinp, …): work-item = (ch, img), one plane of dinp (N, C, H, W), dV
 *   (P, C, T) as winogradA_input writes V; one writer per plane: no atomics, the plane stays in cache;
 *   both kernel variants take this one */
#define WINOGRAD_TILES_PARAMS                                                                                      \
  __global const float *restrict src, ulong src_off, __global const float *restrict mask, ulong mask_off,          \
      int use_mask, __global float *restrict dst, ulong dst_off, ulong stride, int ch_n, int h, int w, int th,    \
      int tw, int n0, int nb
#define WINOGRAD_OUTPUT_PARAMS                                                                                     \
  __global const float *restrict m, ulong m_off, __global const float *restrict bias, ulong bias_off,              \
      int use_bias, __global float *restrict dst, ulong dst_off, ulong stride, int co, int h, int w, int th,       \
      int tw, int n0, int nb, int relu

/* CPU tiles kernel body: tile(in, in_mask, use_mask, h, w, ty, tx, out, stride, A) over one plane */
#define WINOGRAD_TILES_CPU(tile, A)                                                                                \
  const int ch = (int)get_global_id(0), img = (int)get_global_id(1);                                              \
  const int tiles = th * tw, n_t = nb * tiles;                                                                     \
  const size_t plane = ((size_t)(n0 + img) * ch_n + ch) * h * w;                                                   \
  __global const float *restrict in = src + src_off + plane, *restrict in_mask = mask + mask_off + plane;         \
  __global float *restrict out = dst + dst_off + (size_t)ch * n_t + (size_t)img * tiles;                           \
  for (int ty = 0; ty < th; ty++)                                                                                  \
    for (int tx = 0; tx < tw; tx++) tile(in, in_mask, use_mask, h, w, ty, tx, out + ty * tw + tx, stride, A);

/* GPU tiles kernel body: one tile of one channel */
#define WINOGRAD_TILES_GPU(tile, A)                                                                                \
  const int t = (int)get_global_id(0), ch = (int)get_global_id(1);                                                \
  const int tiles = th * tw, n_t = nb * tiles;                                                                     \
  if (t >= n_t || ch >= ch_n) return;                                                                              \
  const int img = t / tiles, rest = t - img * tiles, ty = rest / tw, tx = rest - ty * tw;                          \
  const size_t plane = ((size_t)(n0 + img) * ch_n + ch) * h * w;                                                   \
  tile(src + src_off + plane, mask + mask_off + plane, use_mask, h, w, ty, tx,                                     \
       dst + dst_off + (size_t)ch * n_t + t, stride, A);

#define WINOGRAD_KERNELS(A)                                                                                        \
  __kernel void winograd##A##_filter(__global const float *restrict weight, ulong weight_off,                     \
                                     __global float *restrict u, ulong u_off, int n_out, int n_in_g, int c_g,     \
                                     int oc_g, int flip) {                                                         \
    const int i = (int)get_global_id(0), o = (int)get_global_id(1);                                               \
    if (i < n_in_g && o < n_out)                                                                                   \
      winograd_filter_one(weight, weight_off, u, u_off, n_out, n_in_g, c_g, oc_g, flip, i, o, A);                  \
  }                                                                                                                \
  __kernel void winograd##A##_input(WINOGRAD_TILES_PARAMS) { WINOGRAD_TILES_CPU(winograd_input_tile, A) }         \
  __kernel void winograd##A##_input_gpu(WINOGRAD_TILES_PARAMS) { WINOGRAD_TILES_GPU(winograd_input_tile, A) }     \
  __kernel void winograd##A##_grad_output(WINOGRAD_TILES_PARAMS) {                                                \
    WINOGRAD_TILES_CPU(winograd_grad_output_tile, A)                                                               \
  }                                                                                                                \
  __kernel void winograd##A##_grad_output_gpu(WINOGRAD_TILES_PARAMS) {                                            \
    WINOGRAD_TILES_GPU(winograd_grad_output_tile, A)                                                               \
  }                                                                                                                \
  __kernel void winograd##A##_output(WINOGRAD_OUTPUT_PARAMS) {                                                    \
    const int o = (int)get_global_id(0), img = (int)get_global_id(1);                                             \
    const int tiles = th * tw, n_t = nb * tiles;                                                                   \
    __global const float *restrict src = m + m_off + (size_t)o * n_t + (size_t)img * tiles;                       \
    __global float *restrict plane = dst + dst_off + ((size_t)(n0 + img) * co + o) * h * w;                       \
    const float b = use_bias ? bias[bias_off + o] : 0.0f;                                                          \
    for (int ty = 0; ty < th; ty++)                                                                                \
      for (int tx = 0; tx < tw; tx++)                                                                              \
        winograd_output_tile(src + ty * tw + tx, stride, b, relu, plane, h, w, ty, tx, A);                         \
  }                                                                                                                \
  __kernel void winograd##A##_output_gpu(WINOGRAD_OUTPUT_PARAMS) {                                                \
    const int t = (int)get_global_id(0), o = (int)get_global_id(1);                                               \
    const int tiles = th * tw, n_t = nb * tiles;                                                                   \
    if (t >= n_t || o >= co) return;                                                                               \
    const int img = t / tiles, rest = t - img * tiles, ty = rest / tw, tx = rest - ty * tw;                        \
    winograd_output_tile(m + m_off + (size_t)o * n_t + t, stride, use_bias ? bias[bias_off + o] : 0.0f, relu,      \
                         dst + dst_off + ((size_t)(n0 + img) * co + o) * h * w, h, w, ty, tx, A);                  \
  }                                                                                                                \
  __kernel void winograd##A##_filter_grad(__global const float *restrict du, ulong du_off,                        \
                                          __global float *restrict dweight, ulong dweight_off, int n_out,          \
                                          int n_in_g) {                                                            \
    const int i = (int)get_global_id(0), o = (int)get_global_id(1), r = WINOGRAD_R(A);                            \
    if (i >= n_in_g || o >= n_out) return;                                                                         \
    winograd_filter_grad_one(du + du_off + (size_t)o * n_in_g + i, (size_t)n_out * n_in_g,                         \
                             dweight + dweight_off + ((size_t)o * n_in_g + i) * r * r, A);                         \
  }                                                                                                                \
  __kernel void winograd##A##_input_grad(__global const float *restrict v, ulong v_off, ulong stride,             \
                                         __global float *restrict dinp, ulong dinp_off, int ci, int h, int w,     \
                                         int th, int tw, int n0, int nb) {                                         \
    const int ch = (int)get_global_id(0), img = (int)get_global_id(1);                                            \
    if (ch >= ci || img >= nb) return;                                                                             \
    const int n_t = nb * th * tw;                                                                                  \
    winograd_input_grad_plane(v + v_off + (size_t)ch * n_t + (size_t)img * th * tw, stride,                        \
                              dinp + dinp_off + ((size_t)(n0 + img) * ci + ch) * h * w, h, w, th, tw, A);          \
  }

WINOGRAD_KERNELS(4)
WINOGRAD_KERNELS(6)
WINOGRAD_KERNELS(8)
