/* Winograd F(2x2,3x3) for 3x3, stride-1, pad-1 convolutions (Lavin and Gray, 2015): 16 multiplies
 * per 2x2 output tile and input channel where the direct form takes 36.
 *   U = G g Gᵀ   (4x4 per filter)       V = Bᵀ d B   (4x4 per input tile)       Y = Aᵀ M A   (2x2 per tile)
 * and between them M[ξ] = U[ξ] · V[ξ] for each of the 16 positions ξ = 4·row + column: 16 GEMMs per
 * group, run by the host (layers/winograd.c).
 *
 * Layouts (all fp32, offsets in floats), for a convolution of CI input and CO output channels, groups g,
 * over a chunk of nb images (n0 … n0+nb-1) of H x W, tiled in TH = ceil(H/2) x TW = ceil(W/2) tiles:
 *   src  (N, CI, H, W)        the input (forward) or the output gradient (backward data)
 *   u    (16, CO, CI/g)       transformed filters; a group's rows are contiguous
 *   v    (16, CI, T)          transformed input tiles, T = nb·TH·TW, column t = img·TH·TW + ty·TW + tx
 *   m    (16, CO, T)          the GEMMs' products
 *   dst  (N, CO, H, W)        the output (forward) or the input gradient (backward data)
 * The input tile (ty, tx) covers rows 2·ty-1 … 2·ty+2 and columns 2·tx-1 … 2·tx+2 (zero outside the
 * image: the padding), the output tile rows 2·ty, 2·ty+1 and columns 2·tx, 2·tx+1 (those inside).
 * Work-items: the filter transform one per filter; the input and output transforms in two variants as
 * cl/conv.cl's: CPU, one per (channel, image) plane, its tiles in order, so each of the 16 rows of v and m
 * is streamed at unit stride; GPU (_gpu), one per (tile, channel), neighbouring work-items on
 * neighbouring t. Both call the same per-tile function. */

/* work-item = (i, o): filter (o, i) of the convolution CO x CI/g. Forward: weight (CO, CI/g, 3, 3) read
 * as is (c_g = CI/g). Backward data (flip): the input gradient convolves the output gradient with the
 * filters turned 180° and their channels swapped: filter (o = input channel, i = output channel within
 * o's group) is weight[g·oc_g + i][o mod c_g] rotated, for weight (g·oc_g, c_g, 3, 3). */
__kernel void winograd_filter(__global const float *restrict weight, ulong weight_off, __global float *restrict u,
                              ulong u_off, int n_out, int n_in_g, int c_g, int oc_g, int flip) {
  const int i = (int)get_global_id(0), o = (int)get_global_id(1);
  if (i >= n_in_g || o >= n_out) return;
  size_t base;
  if (flip) {
    const int g = o / c_g;
    base = weight_off + ((size_t)(g * oc_g + i) * c_g + (o - g * c_g)) * 9;
  } else {
    base = weight_off + ((size_t)o * n_in_g + i) * 9;
  }
  float f[9];
  for (int k = 0; k < 9; k++) f[k] = weight[base + (flip ? 8 - k : k)];
  float t[4][3]; /* G g */
  for (int j = 0; j < 3; j++) {
    const float a = f[j], b = f[3 + j], c = f[6 + j];
    t[0][j] = a;
    t[1][j] = 0.5f * (a + b + c);
    t[2][j] = 0.5f * (a - b + c);
    t[3][j] = c;
  }
  const size_t plane = (size_t)n_out * n_in_g;
  __global float *restrict dst = u + u_off + (size_t)o * n_in_g + i;
  for (int r = 0; r < 4; r++) { /* (G g) Gᵀ */
    const float a = t[r][0], b = t[r][1], c = t[r][2];
    dst[(4 * r + 0) * plane] = a;
    dst[(4 * r + 1) * plane] = 0.5f * (a + b + c);
    dst[(4 * r + 2) * plane] = 0.5f * (a - b + c);
    dst[(4 * r + 3) * plane] = c;
  }
}

/* One input tile: d (4x4 at plane's rows y0 … y0+3, columns x0 … x0+3, zero outside h x w, times
 * [mask > 0] when use_mask) to V = Bᵀ d B, V[ξ] written at dst[ξ·stride] */
inline void winograd_input_tile(__global const float *restrict plane, __global const float *restrict mask_plane,
                                int use_mask, int h, int w, int y0, int x0, __global float *restrict dst,
                                size_t stride) {
  float d[4][4];
  for (int i = 0; i < 4; i++) {
    const int y = y0 + i;
    for (int j = 0; j < 4; j++) {
      const int x = x0 + j;
      float val = 0.0f;
      if (y >= 0 && y < h && x >= 0 && x < w) {
        val = plane[y * w + x];
        if (use_mask && !(mask_plane[y * w + x] > 0.0f)) val = 0.0f;
      }
      d[i][j] = val;
    }
  }
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

/* One output tile: M[ξ] at src[ξ·stride] to Y = Aᵀ M A + b, through the ReLU when relu, written at
 * plane's rows y0, y0+1 and columns x0, x0+1 that lie inside h x w */
inline void winograd_output_tile(__global const float *restrict src, size_t stride, float b, int relu,
                                 __global float *restrict plane, int h, int w, int y0, int x0) {
  float a[2][4]; /* Aᵀ M */
  for (int j = 0; j < 4; j++) {
    const float m0 = src[j * stride], m1 = src[(4 + j) * stride];
    const float m2 = src[(8 + j) * stride], m3 = src[(12 + j) * stride];
    a[0][j] = m0 + m1 + m2;
    a[1][j] = m1 - m2 - m3;
  }
  for (int i = 0; i < 2; i++) { /* (Aᵀ M) A */
    const int y = y0 + i;
    if (y >= h) break;
    float y0v = a[i][0] + a[i][1] + a[i][2] + b, y1v = a[i][1] - a[i][2] - a[i][3] + b;
    if (relu) y0v = y0v < 0.0f ? 0.0f : y0v, y1v = y1v < 0.0f ? 0.0f : y1v;
    plane[y * w + x0] = y0v;
    if (x0 + 1 < w) plane[y * w + x0 + 1] = y1v;
  }
}

/* CPU: work-item = (ch, img), one input plane: its tiles row by row, so each of the 16 rows of v is
 * written at unit stride and the plane's rows are read in order. With use_mask each value is multiplied
 * by [mask > 0] (mask laid out as src): the backward pass's ReLU, applied as the output gradient is read. */
__kernel void winograd_input(__global const float *restrict src, ulong src_off, __global const float *restrict mask,
                             ulong mask_off, int use_mask, __global float *restrict v, ulong v_off, int ci, int h,
                             int w, int th, int tw, int n0, int nb) {
  const int ch = (int)get_global_id(0), img = (int)get_global_id(1);
  const int tiles = th * tw, n_t = nb * tiles;
  const size_t plane = ((size_t)(n0 + img) * ci + ch) * h * w, stride = (size_t)ci * n_t;
  __global float *restrict dst = v + v_off + (size_t)ch * n_t + (size_t)img * tiles;
  for (int ty = 0; ty < th; ty++)
    for (int tx = 0; tx < tw; tx++)
      winograd_input_tile(src + src_off + plane, mask + mask_off + plane, use_mask, h, w, 2 * ty - 1, 2 * tx - 1,
                          dst + ty * tw + tx, stride);
}

/* GPU: work-item = (t, ch), one input tile of one channel: neighbouring work-items on neighbouring t */
__kernel void winograd_input_gpu(__global const float *restrict src, ulong src_off,
                                 __global const float *restrict mask, ulong mask_off, int use_mask,
                                 __global float *restrict v, ulong v_off, int ci, int h, int w, int th, int tw,
                                 int n0, int nb) {
  const int t = (int)get_global_id(0), ch = (int)get_global_id(1);
  const int tiles = th * tw, n_t = nb * tiles;
  if (t >= n_t || ch >= ci) return;
  const int img = t / tiles, r = t - img * tiles, ty = r / tw, tx = r - ty * tw;
  const size_t plane = ((size_t)(n0 + img) * ci + ch) * h * w;
  winograd_input_tile(src + src_off + plane, mask + mask_off + plane, use_mask, h, w, 2 * ty - 1, 2 * tx - 1,
                      v + v_off + (size_t)ch * n_t + t, (size_t)ci * n_t);
}

/* CPU: work-item = (o, img), one output plane, + bias[o] when use_bias, then ReLU when relu; a tile's
 * pixels past the image's last row or column are not written. */
__kernel void winograd_output(__global const float *restrict m, ulong m_off, __global const float *restrict bias,
                              ulong bias_off, int use_bias, __global float *restrict dst, ulong dst_off, int co,
                              int h, int w, int th, int tw, int n0, int nb, int relu) {
  const int o = (int)get_global_id(0), img = (int)get_global_id(1);
  const int tiles = th * tw, n_t = nb * tiles;
  const size_t stride = (size_t)co * n_t;
  __global const float *restrict src = m + m_off + (size_t)o * n_t + (size_t)img * tiles;
  __global float *restrict plane = dst + dst_off + ((size_t)(n0 + img) * co + o) * h * w;
  const float b = use_bias ? bias[bias_off + o] : 0.0f;
  for (int ty = 0; ty < th; ty++)
    for (int tx = 0; tx < tw; tx++)
      winograd_output_tile(src + ty * tw + tx, stride, b, relu, plane, h, w, 2 * ty, 2 * tx);
}

/* GPU: work-item = (t, o), one output tile of one channel */
__kernel void winograd_output_gpu(__global const float *restrict m, ulong m_off, __global const float *restrict bias,
                                  ulong bias_off, int use_bias, __global float *restrict dst, ulong dst_off, int co,
                                  int h, int w, int th, int tw, int n0, int nb, int relu) {
  const int t = (int)get_global_id(0), o = (int)get_global_id(1);
  const int tiles = th * tw, n_t = nb * tiles;
  if (t >= n_t || o >= co) return;
  const int img = t / tiles, r = t - img * tiles, ty = r / tw, tx = r - ty * tw;
  winograd_output_tile(m + m_off + (size_t)o * n_t + t, (size_t)co * n_t, use_bias ? bias[bias_off + o] : 0.0f, relu,
                       dst + dst_off + ((size_t)(n0 + img) * co + o) * h * w, h, w, 2 * ty, 2 * tx);
}
