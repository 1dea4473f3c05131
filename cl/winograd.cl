/* Winograd F(2x2,r x r) for stride-1 "same" convolutions (Lavin and Gray, 2015), r = 3 (pad 1) or
 * r = 5 (pad 2): a = r+1 points per side, a² multiplies per 2x2 output tile and input channel where the
 * direct form takes 4·r² (16 against 36 for 3x3, 36 against 100 for 5x5).
 *   U = G g Gᵀ   (a x a per filter)     V = Bᵀ d B   (a x a per input tile)     Y = Aᵀ M A   (2x2 per tile)
 * and between them M[ξ] = U[ξ] · V[ξ] for each of the P = a² positions ξ = a·row + column: P GEMMs per
 * group, run by the host (layers/winograd.c). r = 3 uses the points 0, ±1, ∞; r = 5 the points 0, ±1,
 * ±2, ∞ (the Bᵀ of F(4x4,3x3)).
 *
 * Layouts (all fp32, offsets in floats), for a convolution of CI input and CO output channels, groups g,
 * over a chunk of nb images (n0 … n0+nb-1) of H x W, tiled in TH = ceil(H/2) x TW = ceil(W/2) tiles:
 *   src  (N, CI, H, W)        the input (forward) or the output gradient (backward data)
 *   u    (P, CO, CI/g)        transformed filters; a group's rows are contiguous
 *   v    (P, CI, T)           transformed input tiles, T = nb·TH·TW, column t = img·TH·TW + ty·TW + tx;
 *                             position ξ's (CI, T) at ξ·stride (stride ≥ CI·T, the host's: layers/winograd.c)
 *   m    (P, CO, T)           the GEMMs' products, position ξ's (CO, T) at ξ·stride
 *   dst  (N, CO, H, W)        the output (forward) or the input gradient (backward data)
 * The input tile (ty, tx) covers rows 2·ty-p … 2·ty-p+a-1 and the same columns from 2·tx-p, p = (r-1)/2
 * (zero outside the image: the padding), the output tile rows 2·ty, 2·ty+1 and columns 2·tx, 2·tx+1
 * (those inside).
 * Work-items: the filter transform one per filter; the input and output transforms in two variants as
 * cl/conv.cl's: CPU, one per (channel, image) plane, its tiles in order, so each of the P rows of v and m
 * is streamed at unit stride; GPU (_gpu), one per (tile, channel), neighbouring work-items on
 * neighbouring t. Both call the same per-tile functions; r is a kernel argument, the same for every
 * work-item of a launch. */

/* r = 5: u[0 … 5] = G g for one column g[0 … 4] (G's rows: 1/4·e0; -1/6·(1,1,1,1,1); -1/6·(1,-1,1,-1,1);
 * (1,2,4,8,16)/24; (1,-2,4,-8,16)/24; e4) */
inline void winograd5_g(const float *g, float *u) {
  const float even = g[0] + g[2] + g[4], odd = g[1] + g[3];
  const float even4 = g[0] + 4.0f * g[2] + 16.0f * g[4], odd4 = 2.0f * g[1] + 8.0f * g[3];
  u[0] = 0.25f * g[0];
  u[1] = -(even + odd) / 6.0f;
  u[2] = -(even - odd) / 6.0f;
  u[3] = (even4 + odd4) / 24.0f;
  u[4] = (even4 - odd4) / 24.0f;
  u[5] = g[4];
}

/* six points: b[0 … 5] = Bᵀ d for one column d[0 … 5] */
inline void winograd6_bt(const float *d, float *b) {
  const float d4_4d2 = d[4] - 4.0f * d[2], d3_4d1 = d[3] - 4.0f * d[1];
  const float d4_d2 = d[4] - d[2], d3_d1 = 2.0f * (d[3] - d[1]);
  b[0] = 4.0f * d[0] - 5.0f * d[2] + d[4];
  b[1] = d4_4d2 + d3_4d1;
  b[2] = d4_4d2 - d3_4d1;
  b[3] = d4_d2 + d3_d1;
  b[4] = d4_d2 - d3_d1;
  b[5] = 4.0f * d[1] - 5.0f * d[3] + d[5];
}

/* six points, two outputs: y[0], y[1] = Aᵀ m for one column m[0 … 5] */
inline void winograd6_at(const float *m, float *y) {
  y[0] = m[0] + m[1] + m[2] + m[3] + m[4];
  y[1] = m[1] - m[2] + 2.0f * (m[3] - m[4]) + m[5];
}

/* r = 3: u (4x4 at dst[ξ·plane]) = G f Gᵀ for the 3x3 filter f (row-major) */
inline void winograd4_filter(const float *f, __global float *restrict dst, size_t plane) {
  float t[4][3]; /* G f */
  for (int j = 0; j < 3; j++) {
    const float a = f[j], b = f[3 + j], c = f[6 + j];
    t[0][j] = a;
    t[1][j] = 0.5f * (a + b + c);
    t[2][j] = 0.5f * (a - b + c);
    t[3][j] = c;
  }
  for (int r = 0; r < 4; r++) { /* (G f) Gᵀ */
    const float a = t[r][0], b = t[r][1], c = t[r][2];
    dst[(4 * r + 0) * plane] = a;
    dst[(4 * r + 1) * plane] = 0.5f * (a + b + c);
    dst[(4 * r + 2) * plane] = 0.5f * (a - b + c);
    dst[(4 * r + 3) * plane] = c;
  }
}

/* r = 5: u (6x6 at dst[ξ·plane]) = G f Gᵀ for the 5x5 filter f (row-major) */
inline void winograd6_filter(const float *f, __global float *restrict dst, size_t plane) {
  float t[6][5]; /* G f, a column at a time */
  for (int j = 0; j < 5; j++) {
    const float col[5] = {f[j], f[5 + j], f[10 + j], f[15 + j], f[20 + j]};
    float u[6];
    winograd5_g(col, u);
    for (int i = 0; i < 6; i++) t[i][j] = u[i];
  }
  for (int i = 0; i < 6; i++) { /* (G f) Gᵀ, a row at a time */
    float u[6];
    winograd5_g(t[i], u);
    for (int j = 0; j < 6; j++) dst[(6 * i + j) * plane] = u[j];
  }
}

/* work-item = (i, o): filter (o, i) of the convolution CO x CI/g, r x r. Forward (flip 0): weight (CO,
 * CI/g, r, r) read as is (c_g = CI/g). Backward data (flip 1): the input gradient convolves the output
 * gradient with the filters turned 180° and their channels swapped: filter (o = input channel, i =
 * output channel within o's group) is weight[g·oc_g + i][o mod c_g] rotated, for weight (g·oc_g, c_g, r,
 * r). Flip 2: the channels swapped, not turned: U[ξ]ᵀ of the forward's U[ξ] per group (the adjoint
 * input gradient, winograd_input_grad). */
__kernel void winograd_filter(__global const float *restrict weight, ulong weight_off, __global float *restrict u,
                              ulong u_off, int n_out, int n_in_g, int c_g, int oc_g, int flip, int r) {
  const int i = (int)get_global_id(0), o = (int)get_global_id(1);
  if (i >= n_in_g || o >= n_out) return;
  const int taps = r * r;
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
  __global float *restrict dst = u + u_off + (size_t)o * n_in_g + i;
  if (r == 5) winograd6_filter(f, dst, plane);
  else winograd4_filter(f, dst, plane);
}

/* value (y, x) of an input plane: zero outside h x w, and zero where the mask is not > 0 when use_mask */
inline float winograd_pixel(__global const float *restrict plane, __global const float *restrict mask_plane,
                            int use_mask, int h, int w, int y, int x) {
  if (y < 0 || y >= h || x < 0 || x >= w) return 0.0f;
  if (use_mask && !(mask_plane[y * w + x] > 0.0f)) return 0.0f;
  return plane[y * w + x];
}

/* r = 3: one input tile d (4x4 from plane's row y0, column x0) to V = Bᵀ d B, V[ξ] at dst[ξ·stride] */
inline void winograd4_input_tile(__global const float *restrict plane, __global const float *restrict mask_plane,
                                 int use_mask, int h, int w, int y0, int x0, __global float *restrict dst,
                                 size_t stride) {
  float d[4][4];
  for (int i = 0; i < 4; i++)
    for (int j = 0; j < 4; j++) d[i][j] = winograd_pixel(plane, mask_plane, use_mask, h, w, y0 + i, x0 + j);
  float b[4][4]; /* Bᵀ d */
  for (int j = 0; j < 4; j++) {
    b[0][j] = d[0][j] - d[2][j];
    b[1][j] = d[1][j] + d[2][j];
    b[2][j] = d[2][j] - d[1][j];
    b[3][j] = d[1][j] - d[3][j];
  }
  for (int i = 0; i < 4; i++) { /* (Bᵀ d) B */
    dst[(4 * i + 0) * stride] = b[i][0] - b[i][2];
    dst[(4 * i + 1) * stride] = b[i][1] + b[i][2];
    dst[(4 * i + 2) * stride] = b[i][2] - b[i][1];
    dst[(4 * i + 3) * stride] = b[i][1] - b[i][3];
  }
}

/* r = 5: one input tile d (6x6 from plane's row y0, column x0) to V = Bᵀ d B, V[ξ] at dst[ξ·stride] */
inline void winograd6_input_tile(__global const float *restrict plane, __global const float *restrict mask_plane,
                                 int use_mask, int h, int w, int y0, int x0, __global float *restrict dst,
                                 size_t stride) {
  float b[6][6]; /* Bᵀ d, a column at a time */
  for (int j = 0; j < 6; j++) {
    float col[6], out[6];
    for (int i = 0; i < 6; i++) col[i] = winograd_pixel(plane, mask_plane, use_mask, h, w, y0 + i, x0 + j);
    winograd6_bt(col, out);
    for (int i = 0; i < 6; i++) b[i][j] = out[i];
  }
  for (int i = 0; i < 6; i++) { /* (Bᵀ d) B, a row at a time */
    float out[6];
    winograd6_bt(b[i], out);
    for (int j = 0; j < 6; j++) dst[(6 * i + j) * stride] = out[j];
  }
}

/* y (2 values) + b, through the ReLU when relu, written at row[x0] and row[x0 + 1] when inside w */
inline void winograd_put2(__global float *restrict row, int w, int x0, const float *y, float b, int relu) {
  float y0v = y[0] + b, y1v = y[1] + b;
  if (relu) y0v = y0v < 0.0f ? 0.0f : y0v, y1v = y1v < 0.0f ? 0.0f : y1v;
  row[x0] = y0v;
  if (x0 + 1 < w) row[x0 + 1] = y1v;
}

/* r = 3: one output tile, M[ξ] at src[ξ·stride], to Y = Aᵀ M A + b, through the ReLU when relu, written
 * at plane's rows y0, y0+1 and columns x0, x0+1 that lie inside h x w */
inline void winograd4_output_tile(__global const float *restrict src, size_t stride, float b, int relu,
                                  __global float *restrict plane, int h, int w, int y0, int x0) {
  float a[2][4]; /* Aᵀ M */
  for (int j = 0; j < 4; j++) {
    const float m0 = src[j * stride], m1 = src[(4 + j) * stride];
    const float m2 = src[(8 + j) * stride], m3 = src[(12 + j) * stride];
    a[0][j] = m0 + m1 + m2;
    a[1][j] = m1 - m2 - m3;
  }
  for (int i = 0; i < 2 && y0 + i < h; i++) { /* (Aᵀ M) A */
    const float y[2] = {a[i][0] + a[i][1] + a[i][2], a[i][1] - a[i][2] - a[i][3]};
    winograd_put2(plane + (y0 + i) * w, w, x0, y, b, relu);
  }
}

/* r = 5: one output tile, M[ξ] (6x6) at src[ξ·stride], as winograd4_output_tile */
inline void winograd6_output_tile(__global const float *restrict src, size_t stride, float b, int relu,
                                  __global float *restrict plane, int h, int w, int y0, int x0) {
  float a[2][6]; /* Aᵀ M, a column at a time */
  for (int j = 0; j < 6; j++) {
    float col[6], y[2];
    for (int i = 0; i < 6; i++) col[i] = src[(6 * i + j) * stride];
    winograd6_at(col, y);
    a[0][j] = y[0], a[1][j] = y[1];
  }
  for (int i = 0; i < 2 && y0 + i < h; i++) { /* (Aᵀ M) A */
    float y[2];
    winograd6_at(a[i], y);
    winograd_put2(plane + (y0 + i) * w, w, x0, y, b, relu);
  }
}

inline void winograd_input_tile(__global const float *restrict plane, __global const float *restrict mask_plane,
                                int use_mask, int h, int w, int ty, int tx, __global float *restrict dst,
                                size_t stride, int r) {
  const int p = (r - 1) / 2;
  if (r == 5) winograd6_input_tile(plane, mask_plane, use_mask, h, w, 2 * ty - p, 2 * tx - p, dst, stride);
  else winograd4_input_tile(plane, mask_plane, use_mask, h, w, 2 * ty - p, 2 * tx - p, dst, stride);
}

inline void winograd_output_tile(__global const float *restrict src, size_t stride, float b, int relu,
                                 __global float *restrict plane, int h, int w, int ty, int tx, int r) {
  if (r == 5) winograd6_output_tile(src, stride, b, relu, plane, h, w, 2 * ty, 2 * tx);
  else winograd4_output_tile(src, stride, b, relu, plane, h, w, 2 * ty, 2 * tx);
}

/* CPU: work-item = (ch, img), one input plane: its tiles row by row, so each of the P rows of v is
 * written at unit stride and the plane's rows are read in order. With use_mask each value is multiplied
 * by [mask > 0] (mask laid out as src): the backward pass's ReLU, applied as the output gradient is read. */
__kernel void winograd_input(__global const float *restrict src, ulong src_off, __global const float *restrict mask,
                             ulong mask_off, int use_mask, __global float *restrict v, ulong v_off, ulong stride,
                             int ci, int h, int w, int th, int tw, int n0, int nb, int r) {
  const int ch = (int)get_global_id(0), img = (int)get_global_id(1);
  const int tiles = th * tw, n_t = nb * tiles;
  const size_t plane = ((size_t)(n0 + img) * ci + ch) * h * w;
  __global float *restrict dst = v + v_off + (size_t)ch * n_t + (size_t)img * tiles;
  for (int ty = 0; ty < th; ty++)
    for (int tx = 0; tx < tw; tx++)
      winograd_input_tile(src + src_off + plane, mask + mask_off + plane, use_mask, h, w, ty, tx, dst + ty * tw + tx,
                          stride, r);
}

/* GPU: work-item = (t, ch), one input tile of one channel: neighbouring work-items on neighbouring t */
__kernel void winograd_input_gpu(__global const float *restrict src, ulong src_off,
                                 __global const float *restrict mask, ulong mask_off, int use_mask,
                                 __global float *restrict v, ulong v_off, ulong stride, int ci, int h, int w, int th,
                                 int tw, int n0, int nb, int r) {
  const int t = (int)get_global_id(0), ch = (int)get_global_id(1);
  const int tiles = th * tw, n_t = nb * tiles;
  if (t >= n_t || ch >= ci) return;
  const int img = t / tiles, rest = t - img * tiles, ty = rest / tw, tx = rest - ty * tw;
  const size_t plane = ((size_t)(n0 + img) * ci + ch) * h * w;
  winograd_input_tile(src + src_off + plane, mask + mask_off + plane, use_mask, h, w, ty, tx,
                      v + v_off + (size_t)ch * n_t + t, stride, r);
}

/* CPU: work-item = (o, img), one output plane, + bias[o] when use_bias, then ReLU when relu; a tile's
 * pixels past the image's last row or column are not written. */
__kernel void winograd_output(__global const float *restrict m, ulong m_off, __global const float *restrict bias,
                              ulong bias_off, int use_bias, __global float *restrict dst, ulong dst_off,
                              ulong stride, int co, int h, int w, int th, int tw, int n0, int nb, int relu, int r) {
  const int o = (int)get_global_id(0), img = (int)get_global_id(1);
  const int tiles = th * tw, n_t = nb * tiles;
  __global const float *restrict src = m + m_off + (size_t)o * n_t + (size_t)img * tiles;
  __global float *restrict plane = dst + dst_off + ((size_t)(n0 + img) * co + o) * h * w;
  const float b = use_bias ? bias[bias_off + o] : 0.0f;
  for (int ty = 0; ty < th; ty++)
    for (int tx = 0; tx < tw; tx++)
      winograd_output_tile(src + ty * tw + tx, stride, b, relu, plane, h, w, ty, tx, r);
}

/* GPU: work-item = (t, o), one output tile of one channel */
__kernel void winograd_output_gpu(__global const float *restrict m, ulong m_off, __global const float *restrict bias,
                                  ulong bias_off, int use_bias, __global float *restrict dst, ulong dst_off,
                                  ulong stride, int co, int h, int w, int th, int tw, int n0, int nb, int relu,
                                  int r) {
  const int t = (int)get_global_id(0), o = (int)get_global_id(1);
  const int tiles = th * tw, n_t = nb * tiles;
  if (t >= n_t || o >= co) return;
  const int img = t / tiles, rest = t - img * tiles, ty = rest / tw, tx = rest - ty * tw;
  winograd_output_tile(m + m_off + (size_t)o * n_t + t, stride, use_bias ? bias[bias_off + o] : 0.0f, relu,
                       dst + dst_off + ((size_t)(n0 + img) * co + o) * h * w, h, w, ty, tx, r);
}

/* ---- the weight gradient: dM = A dY Aᵀ per output tile (the adjoint of the output transform), then
 * after the GEMMs dU[ξ] = Σ_t dM[ξ] · V[ξ]ᵀ the filter gradient dg = Gᵀ dU G (the adjoint of the filter
 * transform). Layouts as above: dY is the output gradient (N, CO, H, W), dM (P, CO, T) as m. ---- */

/* (a, b) = one column of a 2x2 output-gradient tile to its a = r+1 points: A (a, b)ᵀ, A = (Aᵀ)ᵀ */
inline void winograd_a(float a, float b, float *out, int r) {
  out[0] = a, out[1] = a + b, out[2] = a - b;
  if (r == 5) out[3] = a + 2.0f * b, out[4] = a - 2.0f * b, out[5] = b;
  else out[3] = -b;
}

/* one output-gradient tile (rows y0, y0+1, columns x0, x0+1; zero outside h x w, and where the mask is
 * not > 0 when use_mask) to dM = A dY Aᵀ, dM[ξ] at dst[ξ·stride] */
inline void winograd_grad_output_tile(__global const float *restrict plane,
                                      __global const float *restrict mask_plane, int use_mask, int h, int w, int y0,
                                      int x0, __global float *restrict dst, size_t stride, int r) {
  const int a = r + 1;
  float col0[6], col1[6]; /* A applied to the tile's two columns */
  winograd_a(winograd_pixel(plane, mask_plane, use_mask, h, w, y0, x0),
             winograd_pixel(plane, mask_plane, use_mask, h, w, y0 + 1, x0), col0, r);
  winograd_a(winograd_pixel(plane, mask_plane, use_mask, h, w, y0, x0 + 1),
             winograd_pixel(plane, mask_plane, use_mask, h, w, y0 + 1, x0 + 1), col1, r);
  for (int i = 0; i < a; i++) { /* (A dY) Aᵀ, a row at a time */
    float row[6];
    winograd_a(col0[i], col1[i], row, r);
    for (int j = 0; j < a; j++) dst[(a * i + j) * stride] = row[j];
  }
}

/* CPU: work-item = (o, img), one output-gradient plane, its tiles in order (as winograd_input) */
__kernel void winograd_grad_output(__global const float *restrict src, ulong src_off,
                                   __global const float *restrict mask, ulong mask_off, int use_mask,
                                   __global float *restrict m, ulong m_off, ulong stride, int co, int h, int w,
                                   int th, int tw, int n0, int nb, int r) {
  const int o = (int)get_global_id(0), img = (int)get_global_id(1);
  const int tiles = th * tw, n_t = nb * tiles;
  const size_t plane = ((size_t)(n0 + img) * co + o) * h * w;
  __global float *restrict dst = m + m_off + (size_t)o * n_t + (size_t)img * tiles;
  for (int ty = 0; ty < th; ty++)
    for (int tx = 0; tx < tw; tx++)
      winograd_grad_output_tile(src + src_off + plane, mask + mask_off + plane, use_mask, h, w, 2 * ty, 2 * tx,
                                dst + ty * tw + tx, stride, r);
}

/* GPU: work-item = (t, o), one tile of one channel */
__kernel void winograd_grad_output_gpu(__global const float *restrict src, ulong src_off,
                                       __global const float *restrict mask, ulong mask_off, int use_mask,
                                       __global float *restrict m, ulong m_off, ulong stride, int co, int h, int w,
                                       int th, int tw, int n0, int nb, int r) {
  const int t = (int)get_global_id(0), o = (int)get_global_id(1);
  const int tiles = th * tw, n_t = nb * tiles;
  if (t >= n_t || o >= co) return;
  const int img = t / tiles, rest = t - img * tiles, ty = rest / tw, tx = rest - ty * tw;
  const size_t plane = ((size_t)(n0 + img) * co + o) * h * w;
  winograd_grad_output_tile(src + src_off + plane, mask + mask_off + plane, use_mask, h, w, 2 * ty, 2 * tx,
                            m + m_off + (size_t)o * n_t + t, stride, r);
}

/* x (a = r+1 points) to the r taps Gᵀ x */
inline void winograd_gt(const float *x, float *out, int r) {
  if (r == 5) { /* G's rows as winograd5_g: 1/4·e0; -1/6·(1,1,1,1,1); -1/6·(1,-1,1,-1,1); (1,2,4,8,16)/24;
                 * (1,-2,4,-8,16)/24; e4 */
    const float s = -(x[1] + x[2]) / 6.0f, d = (x[2] - x[1]) / 6.0f;
    const float s4 = (x[3] + x[4]) / 24.0f, d4 = (x[3] - x[4]) / 24.0f;
    out[0] = 0.25f * x[0] + s + s4;
    out[1] = d + 2.0f * d4;
    out[2] = s + 4.0f * s4;
    out[3] = d + 8.0f * d4;
    out[4] = s + 16.0f * s4 + x[5];
  } else { /* G's rows: e0; (1,1,1)/2; (1,-1,1)/2; e2 */
    const float s = 0.5f * (x[1] + x[2]);
    out[0] = x[0] + s;
    out[1] = 0.5f * (x[1] - x[2]);
    out[2] = s + x[3];
  }
}

/* work-item = (i, o): filter (o, i) of the weight (CO, CI/g, r, r) += Gᵀ dU G, dU[ξ] (P, CO, CI/g) at
 * du[ξ·CO·CI/g + o·CI/g + i] */
__kernel void winograd_filter_grad(__global const float *restrict du, ulong du_off, __global float *restrict dweight,
                                   ulong dweight_off, int n_out, int n_in_g, int r) {
  const int i = (int)get_global_id(0), o = (int)get_global_id(1);
  if (i >= n_in_g || o >= n_out) return;
  const int a = r + 1;
  const size_t plane = (size_t)n_out * n_in_g;
  __global const float *restrict src = du + du_off + (size_t)o * n_in_g + i;
  float t[5][6]; /* Gᵀ dU, a column at a time */
  for (int j = 0; j < a; j++) {
    float col[6], out[5];
    for (int k = 0; k < a; k++) col[k] = src[(a * k + j) * plane];
    winograd_gt(col, out, r);
    for (int k = 0; k < r; k++) t[k][j] = out[k];
  }
  __global float *restrict dst = dweight + dweight_off + ((size_t)o * n_in_g + i) * r * r;
  for (int k = 0; k < r; k++) { /* (Gᵀ dU) G, a row at a time */
    float out[5];
    winograd_gt(t[k], out, r);
    for (int l = 0; l < r; l++) dst[k * r + l] += out[l];
  }
}

/* ---- the input gradient as the adjoint of the forward pass (when the weight gradient's dM is at hand):
 * dV[ξ] = U[ξ]ᵀ · dM[ξ] (the host's GEMMs, U from winograd_filter with flip 2), then the input's
 * gradient dX = Σ over the tiles covering each pixel of B dV Bᵀ (the input transform's adjoint; the
 * tiles overlap by a-2 rows and columns, and their parts in the padding are dropped). ---- */

/* a = r+1 points to the tile's a values: B x, B = (Bᵀ)ᵀ of winograd_bt */
inline void winograd_b(const float *x, float *out, int r) {
  if (r == 5) {
    out[0] = 4.0f * x[0];
    out[1] = 4.0f * (x[2] - x[1] + x[5]) + 2.0f * (x[4] - x[3]);
    out[2] = -5.0f * x[0] - 4.0f * (x[1] + x[2]) - x[3] - x[4];
    out[3] = x[1] - x[2] + 2.0f * (x[3] - x[4]) - 5.0f * x[5];
    out[4] = x[0] + x[1] + x[2] + x[3] + x[4];
    out[5] = x[5];
  } else {
    out[0] = x[0];
    out[1] = x[1] - x[2] + x[3];
    out[2] = x[1] + x[2] - x[0];
    out[3] = -x[3];
  }
}

/* work-item = (ch, img), one plane of dinp (N, C, H, W): cleared, then each tile's B dV Bᵀ (dV[ξ] at
 * v[ξ·stride], (P, C, T) as winograd_input writes V) added where it lies inside the image. One writer
 * per plane: no atomics; the plane stays in cache. Both kernel variants take this one. */
/* one plane of winograd_input_grad for a filter side r the caller passes as a literal, so that the
 * compiler unrolls the tile loops and keeps b in registers (with r a kernel argument they ran through
 * memory) */
inline void winograd_input_grad_plane(__global const float *restrict src, size_t stride,
                                      __global float *restrict plane, int h, int w, int th, int tw, const int r) {
  const int a = r + 1, p = (r - 1) / 2;
  for (int i = 0; i < h * w; i++) plane[i] = 0.0f;
  for (int ty = 0; ty < th; ty++)
    for (int tx = 0; tx < tw; tx++) {
      __global const float *restrict t = src + ty * tw + tx;
      float b[6][6]; /* B dV, a column at a time */
      for (int j = 0; j < a; j++) {
        float col[6], out[6];
        for (int i = 0; i < a; i++) col[i] = t[(a * i + j) * stride];
        winograd_b(col, out, r);
        for (int i = 0; i < a; i++) b[i][j] = out[i];
      }
      const int y0 = 2 * ty - p, x0 = 2 * tx - p;
      for (int i = 0; i < a; i++) { /* (B dV) Bᵀ, a row at a time, added inside the image */
        if (y0 + i < 0 || y0 + i >= h) continue;
        float out[6];
        winograd_b(b[i], out, r);
        __global float *restrict row = plane + (y0 + i) * w;
        for (int j = 0; j < a; j++)
          if (x0 + j >= 0 && x0 + j < w) row[x0 + j] += out[j];
      }
    }
}

__kernel void winograd_input_grad(__global const float *restrict v, ulong v_off, ulong stride,
                                  __global float *restrict dinp, ulong dinp_off, int ci, int h, int w, int th,
                                  int tw, int n0, int nb, int r) {
  const int ch = (int)get_global_id(0), img = (int)get_global_id(1);
  if (ch >= ci || img >= nb) return;
  const int tiles = th * tw, n_t = nb * tiles;
  __global float *restrict plane = dinp + dinp_off + ((size_t)(n0 + img) * ci + ch) * h * w;
  __global const float *restrict src = v + v_off + (size_t)ch * n_t + (size_t)img * tiles;
  if (r == 5) winograd_input_grad_plane(src, stride, plane, h, w, th, tw, 5);
  else winograd_input_grad_plane(src, stride, plane, h, w, th, tw, 3);
}
