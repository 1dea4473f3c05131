/* Convolution around CLBlast's GEMM, a chunk of nb images at a time (images n0 … n0+nb-1).
 *
 * Layouts (all fp32):
 *   inp  (N, C, H, W)
 *   col  (C·KH·KW, nb·OH·OW)  row = (c·KH + ki)·KW + kj, column = img·OH·OW + oy·OW + ox
 *   ybuf (OC, nb·OH·OW)       the GEMM's output, channel-major across the chunk
 *   out  (N, OC, OH, OW)
 * Rows of one group are contiguous in col and ybuf, so group g is one GEMM on a row block.
 * Every kernel maps one work-item to one element it writes; col2im gathers (no atomics, writes, not
 * adds, so its target needs no zeroing). Offsets are in floats. */

/* work-item = one output row (img, oy) of one col row (ch, ki, kj): OW consecutive columns, so the
 * index arithmetic is done once per row and the writes are contiguous */
__kernel void im2col(__global const float *inp, ulong inp_off, __global float *col, ulong col_off,
                     int c, int h, int w, int kh, int kw, int stride, int pad, int oh, int ow,
                     int n0, int nb) {
  const int img_oy = (int)get_global_id(0);
  const int row = (int)get_global_id(1);
  const int img = img_oy / oh, oy = img_oy - img * oh;
  const int kj = row % kw, ki = (row / kw) % kh, ch = row / (kw * kh);
  const int y = oy * stride - pad + ki;
  __global float *dst = col + col_off + (size_t)row * ((size_t)nb * oh * ow) + ((size_t)img * oh + oy) * ow;
  if (y < 0 || y >= h) {
    for (int ox = 0; ox < ow; ox++) dst[ox] = 0.0f;
    return;
  }
  __global const float *src = inp + inp_off + (((size_t)(n0 + img) * c + ch) * h + y) * w;
  for (int ox = 0, x = kj - pad; ox < ow; ox++, x += stride) dst[ox] = (x >= 0 && x < w) ? src[x] : 0.0f;
}

/* work-item = one input element (x, y, img·C + ch) of the chunk, a 3-D range (no 64-bit index
 * divisions; neighbouring work-items are neighbouring pixels); sums every col entry that reads it */
__kernel void col2im(__global const float *col, ulong col_off, __global float *inp, ulong inp_off,
                     int c, int h, int w, int kh, int kw, int stride, int pad, int oh, int ow,
                     int n0, int nb) {
  const int x = (int)get_global_id(0), y = (int)get_global_id(1), z = (int)get_global_id(2);
  const int img = z / c, ch = z - img * c;
  const int ohw = oh * ow;
  const size_t ncols = (size_t)nb * ohw;
  float s = 0.0f;
  for (int ki = (y + pad) % stride; ki < kh && ki <= y + pad; ki += stride) {
    const int oy = (y + pad - ki) / stride;
    if (oy >= oh) continue;
    for (int kj = (x + pad) % stride; kj < kw && kj <= x + pad; kj += stride) {
      const int ox = (x + pad - kj) / stride;
      if (ox >= ow) continue;
      s += col[col_off + ((size_t)(ch * kh + ki) * kw + kj) * ncols + (size_t)img * ohw + oy * ow + ox];
    }
  }
  inp[inp_off + (((size_t)(n0 + img) * c + ch) * h + y) * w + x] = s;
}

/* work-item = one output element (p, o, img), a 3-D range: out = act(ybuf + bias); NaN passes the
 * ReLU */
__kernel void conv_epilogue(__global const float *ybuf, ulong ybuf_off, __global const float *bias,
                            ulong bias_off, __global float *out, ulong out_off, int oc, int ohw,
                            int n0, int nb, int relu) {
  const int p = (int)get_global_id(0), o = (int)get_global_id(1), img = (int)get_global_id(2);
  float v = ybuf[ybuf_off + ((size_t)o * nb + img) * ohw + p] + bias[bias_off + o];
  if (relu && v < 0.0f) v = 0.0f;
  out[out_off + ((size_t)(n0 + img) * oc + o) * ohw + p] = v;
}

/* work-item = one element (p, img, o) of dybuf, a 3-D range: dybuf = dout · [out > 0 when relu] */
__kernel void conv_grad_prologue(__global const float *dout, ulong dout_off, __global const float *out,
                                 ulong out_off, __global float *dybuf, ulong dybuf_off, int oc,
                                 int ohw, int n0, int nb, int relu) {
  const int p = (int)get_global_id(0), img = (int)get_global_id(1), o = (int)get_global_id(2);
  const size_t i = ((size_t)o * nb + img) * ohw + p;
  const size_t src = ((size_t)(n0 + img) * oc + o) * ohw + p;
  float g = dout[dout_off + src];
  if (relu && !(out[out_off + src] > 0.0f)) g = 0.0f;
  dybuf[dybuf_off + i] = g;
}

#ifndef ROWSUM_WGS
#define ROWSUM_WGS 64
#endif
/* one work-group per row of m (rows, cols): sum[row] += Σ_j m[row, j] (the bias gradient) */
__kernel __attribute__((reqd_work_group_size(ROWSUM_WGS, 1, 1)))
void rowsum_add(__global const float *m, ulong m_off, int cols, __global float *sum, ulong sum_off) {
  __local float part[ROWSUM_WGS];
  const int row = (int)get_group_id(0), l = (int)get_local_id(0);
  float s = 0.0f;
  for (int j = l; j < cols; j += ROWSUM_WGS) s += m[m_off + (size_t)row * cols + j];
  part[l] = s;
  barrier(CLK_LOCAL_MEM_FENCE);
  for (int span = ROWSUM_WGS / 2; span > 0; span /= 2) {
    if (l < span) part[l] += part[l + span];
    barrier(CLK_LOCAL_MEM_FENCE);
  }
  if (l == 0) sum[sum_off + row] += part[0];
}
