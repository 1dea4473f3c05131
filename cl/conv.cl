/* Convolution around CLBlast's GEMM, a chunk of nb images at a time (images n0 … n0+nb-1).
 *
 * Layouts (all fp32):
 *   inp  (N, C, H, W)
 *   col  (C·KH·KW, nb·OH·OW)  row = (c·KH + ki)·KW + kj, column = img·OH·OW + oy·OW + ox
 *   ybuf (OC, nb·OH·OW)       the GEMM's output, channel-major across the chunk
 *   out  (N, OC, OH, OW)
 * Rows of one group are contiguous in col and ybuf, so group g is one GEMM on a row block.
 * Every element written has one writer (no atomics): im2col writes a span of a col row, col2im owns
 * an input plane (it clears it, then sums into it, so its target needs no zeroing), the
 * epilogue and the gradient's prologue an output plane. Offsets are in floats. */

/* work-item = one image's span of one col row (ch, ki, kj): OH·OW consecutive columns, so the index
 * arithmetic is done once per span and the writes stream. A 3-D range (ki·KW + kj, image, ch): the
 * work-items of one work-group read the same input plane while it is in cache (conv1's planes are
 * 200 KB). Each output row splits into the columns left of the image, those inside and those right of
 * it, so no inner loop tests bounds */
__kernel void im2col(__global const float *restrict inp, ulong inp_off, __global float *restrict col,
                     ulong col_off, int c, int h, int w, int kh, int kw, int stride, int pad, int oh,
                     int ow, int n0, int nb) {
  const int kk = (int)get_global_id(0), img = (int)get_global_id(1), ch = (int)get_global_id(2);
  const int ki = kk / kw, kj = kk - ki * kw, row = ch * kh * kw + kk;
  __global float *restrict dst = col + col_off + (size_t)row * ((size_t)nb * oh * ow) + (size_t)img * oh * ow;
  __global const float *restrict plane = inp + inp_off + ((size_t)(n0 + img) * c + ch) * h * w;
  /* x = ox·stride + kj - pad lies in [0, w) for ox in [lo, hi) */
  const int x0 = kj - pad;
  const int lo = x0 >= 0 ? 0 : min((-x0 + stride - 1) / stride, ow);
  const int hi = max(lo, min(ow, x0 >= w ? 0 : (w - 1 - x0) / stride + 1));
  for (int oy = 0; oy < oh; oy++, dst += ow) {
    const int y = oy * stride - pad + ki;
    if (y < 0 || y >= h) {
      for (int ox = 0; ox < ow; ox++) dst[ox] = 0.0f;
      continue;
    }
    __global const float *restrict src = plane + y * w;
    for (int ox = 0; ox < lo; ox++) dst[ox] = 0.0f;
    if (stride == 1)
      for (int ox = lo; ox < hi; ox++) dst[ox] = src[ox + x0];
    else
      for (int ox = lo; ox < hi; ox++) dst[ox] = src[ox * stride + x0];
    for (int ox = hi; ox < ow; ox++) dst[ox] = 0.0f;
  }
}

/* work-item = one input plane (ch, image) of the chunk: the plane is cleared, then each col row
 * (ch, ki, kj) that reads it is added in as one contiguous read of the image's OH·OW columns, each
 * output row a run of input columns (unit stride when stride = 1). Each plane has one writer: no
 * atomics; the plane stays in cache while its KH·KW col rows stream past */
__kernel void col2im(__global const float *restrict col, ulong col_off, __global float *restrict inp,
                     ulong inp_off, int c, int h, int w, int kh, int kw, int stride, int pad, int oh,
                     int ow, int n0, int nb) {
  const int ch = (int)get_global_id(0), img = (int)get_global_id(1);
  const int ohw = oh * ow;
  const size_t ncols = (size_t)nb * ohw;
  __global float *restrict dst = inp + inp_off + ((size_t)(n0 + img) * c + ch) * h * w;
  for (int i = 0; i < h * w; i++) dst[i] = 0.0f;
  __global const float *restrict base = col + col_off + (size_t)ch * kh * kw * ncols + (size_t)img * ohw;
  for (int ki = 0; ki < kh; ki++)
    for (int kj = 0; kj < kw; kj++) {
      __global const float *restrict src = base + (size_t)(ki * kw + kj) * ncols;
      /* x = ox·stride + kj - pad lies in [0, w) for ox in [lo, hi) */
      const int x0 = kj - pad;
      const int lo = x0 >= 0 ? 0 : min((-x0 + stride - 1) / stride, ow);
      const int hi = max(lo, min(ow, x0 >= w ? 0 : (w - 1 - x0) / stride + 1));
      for (int oy = 0; oy < oh; oy++) {
        const int y = oy * stride - pad + ki;
        if (y < 0 || y >= h) continue;
        __global float *restrict d = dst + y * w;
        __global const float *restrict s = src + oy * ow;
        if (stride == 1)
          for (int ox = lo; ox < hi; ox++) d[ox + x0] += s[ox];
        else
          for (int ox = lo; ox < hi; ox++) d[ox * stride + x0] += s[ox];
      }
    }
}

/* work-item = one output plane (channel o, image): out = act(ybuf + bias), a contiguous row of ybuf
 * to a contiguous plane of out; NaN passes the ReLU */
__kernel void conv_epilogue(__global const float *restrict ybuf, ulong ybuf_off,
                            __global const float *restrict bias, ulong bias_off, __global float *restrict out,
                            ulong out_off, int oc, int ohw, int n0, int nb, int relu) {
  const int o = (int)get_global_id(0), img = (int)get_global_id(1);
  __global const float *restrict y = ybuf + ybuf_off + ((size_t)o * nb + img) * ohw;
  __global float *restrict dst = out + out_off + ((size_t)(n0 + img) * oc + o) * ohw;
  const float b = bias[bias_off + o];
  if (relu)
    for (int p = 0; p < ohw; p++) {
      const float v = y[p] + b;
      dst[p] = v < 0.0f ? 0.0f : v;
    }
  else
    for (int p = 0; p < ohw; p++) dst[p] = y[p] + b;
}

/* work-item = one output plane (channel o, image): dybuf = dout · [out > 0 when relu] */
__kernel void conv_grad_prologue(__global const float *restrict dout, ulong dout_off,
                                 __global const float *restrict out, ulong out_off,
                                 __global float *restrict dybuf, ulong dybuf_off, int oc, int ohw, int n0,
                                 int nb, int relu) {
  const int o = (int)get_global_id(0), img = (int)get_global_id(1);
  const size_t src = ((size_t)(n0 + img) * oc + o) * ohw;
  __global const float *restrict g = dout + dout_off + src, *restrict y = out + out_off + src;
  __global float *restrict dst = dybuf + dybuf_off + ((size_t)o * nb + img) * ohw;
  if (relu)
    for (int p = 0; p < ohw; p++) dst[p] = y[p] > 0.0f ? g[p] : 0.0f;
  else
    for (int p = 0; p < ohw; p++) dst[p] = g[p];
}

#ifndef ROWSUM_WGS
#define ROWSUM_WGS 64
#endif
/* the work-group's partial sums s (part: ROWSUM_WGS floats of local memory) added into *sum by
 * work-item 0 */
inline void workgroup_sum_add(__local float *part, float s, __global float *sum) {
  const int l = (int)get_local_id(0);
  part[l] = s;
  barrier(CLK_LOCAL_MEM_FENCE);
  for (int span = ROWSUM_WGS / 2; span > 0; span /= 2) {
    if (l < span) part[l] += part[l + span];
    barrier(CLK_LOCAL_MEM_FENCE);
  }
  if (l == 0) *sum += part[0];
}

/* one work-group per row of m (rows, cols): sum[row] += Σ_j m[row, j] (the bias gradient) */
__kernel __attribute__((reqd_work_group_size(ROWSUM_WGS, 1, 1)))
void rowsum_add(__global const float *m, ulong m_off, int cols, __global float *sum, ulong sum_off) {
  __local float part[ROWSUM_WGS];
  const int row = (int)get_group_id(0), l = (int)get_local_id(0);
  float s = 0.0f;
  for (int j = l; j < cols; j += ROWSUM_WGS) s += m[m_off + (size_t)row * cols + j];
  workgroup_sum_add(part, s, sum + sum_off + row);
}

/* one work-group per channel o of dout (N, OC, OHW): sum[o] += Σ over the images n0 … n0+nb-1 and the
 * plane of dout, through the ReLU when relu (out > 0): the bias gradient read straight from NCHW */
__kernel __attribute__((reqd_work_group_size(ROWSUM_WGS, 1, 1)))
void planes_sum_add(__global const float *dout, ulong dout_off, __global const float *out, ulong out_off, int oc,
                    int ohw, int n0, int nb, int relu, __global float *sum, ulong sum_off) {
  __local float part[ROWSUM_WGS];
  const int o = (int)get_group_id(0), l = (int)get_local_id(0);
  float s = 0.0f;
  for (int img = 0; img < nb; img++) {
    const size_t base = ((size_t)(n0 + img) * oc + o) * ohw;
    for (int p = l; p < ohw; p += ROWSUM_WGS)
      s += !relu || out[out_off + base + p] > 0.0f ? dout[dout_off + base + p] : 0.0f;
  }
  workgroup_sum_add(part, s, sum + sum_off + o);
}

/* ---- GPU variants (the runtime's AN_KERNELS_GPU): a work-item per element written, consecutive
 * work-items on consecutive addresses of what they write; the host rounds dimension 0 up to the
 * work-group (CONV_GPU_WGS, conv.c) and the work-items past the end return. ---- */

/* work-item = one col element (column j, row (ch, ki, kj)): a range (nb·OH·OW rounded up, C·KH·KW) */
__kernel void im2col_gpu(__global const float *restrict inp, ulong inp_off, __global float *restrict col,
                         ulong col_off, int c, int h, int w, int kh, int kw, int stride, int pad, int oh, int ow,
                         int n0, int nb) {
  const int j = (int)get_global_id(0), row = (int)get_global_id(1), ohw = oh * ow;
  if (j >= nb * ohw) return;
  const int img = j / ohw, pix = j - img * ohw, oy = pix / ow, ox = pix - oy * ow;
  const int ch = row / (kh * kw), kk = row - ch * kh * kw, ki = kk / kw, kj = kk - ki * kw;
  const int y = oy * stride - pad + ki, x = ox * stride - pad + kj;
  float v = 0.0f;
  if (y >= 0 && y < h && x >= 0 && x < w) v = inp[inp_off + (((size_t)(n0 + img) * c + ch) * h + y) * w + x];
  col[col_off + (size_t)row * ((size_t)nb * ohw) + j] = v;
}

/* work-item = one input element (x, y) of plane (image, ch), a range (H·W rounded up, nb·C): it gathers
 * the col entries that read it, in the order col2im adds them (ki, then kj), so both sum alike */
__kernel void col2im_gpu(__global const float *restrict col, ulong col_off, __global float *restrict inp,
                         ulong inp_off, int c, int h, int w, int kh, int kw, int stride, int pad, int oh, int ow,
                         int n0, int nb) {
  const int p = (int)get_global_id(0), plane = (int)get_global_id(1);
  if (p >= h * w) return;
  const int img = plane / c, ch = plane - img * c, y = p / w, x = p - y * w, ohw = oh * ow;
  const size_t ncols = (size_t)nb * ohw;
  __global const float *restrict base = col + col_off + (size_t)ch * kh * kw * ncols + (size_t)img * ohw;
  float s = 0.0f;
  /* y = oy·stride - pad + ki: ki ≡ y + pad (mod stride), oy = (y + pad - ki) / stride in [0, oh) */
  for (int ki = (y + pad) % stride; ki < kh; ki += stride) {
    const int oy = (y + pad - ki) / stride;
    if (oy < 0) break;
    if (oy >= oh) continue;
    for (int kj = (x + pad) % stride; kj < kw; kj += stride) {
      const int ox = (x + pad - kj) / stride;
      if (ox < 0) break;
      if (ox >= ow) continue;
      s += base[(size_t)(ki * kw + kj) * ncols + oy * ow + ox];
    }
  }
  inp[inp_off + ((size_t)(n0 + img) * c + ch) * h * w + p] = s;
}

/* work-item = one output element (pixel p of plane (channel o, image)), a range (OH·OW rounded up,
 * OC·nb): out = act(ybuf + bias); NaN passes the ReLU */
__kernel void conv_epilogue_gpu(__global const float *restrict ybuf, ulong ybuf_off,
                                __global const float *restrict bias, ulong bias_off,
                                __global float *restrict out, ulong out_off, int oc, int ohw, int n0, int nb,
                                int relu) {
  const int p = (int)get_global_id(0), plane = (int)get_global_id(1);
  if (p >= ohw) return;
  const int o = plane / nb, img = plane - o * nb;
  const float v = ybuf[ybuf_off + (size_t)plane * ohw + p] + bias[bias_off + o];
  out[out_off + ((size_t)(n0 + img) * oc + o) * ohw + p] = relu && v < 0.0f ? 0.0f : v;
}

/* work-item = one element, the range of conv_epilogue_gpu: dybuf = dout · [out > 0 when relu] */
__kernel void conv_grad_prologue_gpu(__global const float *restrict dout, ulong dout_off,
                                     __global const float *restrict out, ulong out_off,
                                     __global float *restrict dybuf, ulong dybuf_off, int oc, int ohw, int n0,
                                     int nb, int relu) {
  const int p = (int)get_global_id(0), plane = (int)get_global_id(1);
  if (p >= ohw) return;
  const int o = plane / nb, img = plane - o * nb;
  const size_t src = ((size_t)(n0 + img) * oc + o) * ohw + p;
  const float g = dout[dout_off + src];
  dybuf[dybuf_off + (size_t)plane * ohw + p] = !relu || out[out_off + src] > 0.0f ? g : 0.0f;
}

/* A strided convolution's input as phase planes, for gemm_conv_phase (layers/conv_phase.c): plane
 * (ch·S + ry)·S + rx of image img holds the zero-padded input's pixels (S·a + ry, S·b + rx) at (a, b) in
 * HQ x WQ (a row stride of WQ), then zeros up to the plane stride. A tap (ki, kj) of output (oy, ox)
 * reads input pixel (S·oy + ki, S·ox + kj), which is plane (ki mod S, kj mod S)'s (oy + ki / S, ox +
 * kj / S): each tap's reads over a row of outputs are contiguous. work-item = (plane, image) */
__kernel void conv_phase(__global const float *restrict inp, ulong inp_off, __global float *restrict ph,
                         ulong ph_off, int c, int h, int w, int s, int pad, int hq, int wq, int plane, int n0) {
  const int pc = (int)get_global_id(0), img = (int)get_global_id(1);
  int ch = 0, ry = 0, rx = pc; /* pc = (ch·S + ry)·S + rx, without / and % (Oclgrind cannot run the freeze
                                  they become) */
  while (rx >= s * s) rx -= s * s, ch++;
  while (rx >= s) rx -= s, ry++;
  __global const float *restrict src = inp + inp_off + ((size_t)(n0 + img) * c + ch) * h * w;
  __global float *restrict dst = ph + ph_off + ((size_t)img * c * s * s + pc) * plane;
  /* x = s·b + x0 lies in [0, w) for b in [lo, hi) (as im2col's) */
  const int x0 = rx - pad;
  const int lo = x0 >= 0 ? 0 : min((-x0 + s - 1) / s, wq);
  const int hi = max(lo, min(wq, x0 >= w ? 0 : (w - 1 - x0) / s + 1));
  for (int a = 0; a < hq; a++, dst += wq) {
    const int y = s * a + ry - pad;
    if (y < 0 || y >= h) {
      for (int b = 0; b < wq; b++) dst[b] = 0.0f;
      continue;
    }
    __global const float *restrict row = src + y * w + x0;
    for (int b = 0; b < lo; b++) dst[b] = 0.0f;
    for (int b = lo; b < hi; b++) dst[b] = row[s * b];
    for (int b = hi; b < wq; b++) dst[b] = 0.0f;
  }
  for (int t = hq * wq; t < plane; t++, dst++) *dst = 0.0f; /* dst is at hq·wq */
}

/* rows[kk] for gemm_conv_phase: where the reduction's row kk = (ch·K + ki)·K + kj starts in an image's
 * phase planes (conv_phase). work-item = (kj, ki, ch) */
__kernel void conv_phase_rows(__global int *rows, ulong rows_off, int k, int s, int wq, int plane) {
  const int kj = (int)get_global_id(0), ki = (int)get_global_id(1), ch = (int)get_global_id(2);
  int qi = 0, ri = ki, qj = 0, rj = kj; /* ki = qi·S + ri, kj = qj·S + rj, without / and % (Oclgrind cannot
                                           run the freeze they become) */
  while (ri >= s) ri -= s, qi++;
  while (rj >= s) rj -= s, qj++;
  rows[rows_off + (ch * k + ki) * k + kj] = ((ch * s + ri) * s + rj) * plane + qi * wq + qj;
}

/* work-item = (channel o, image): dy (nb, OC, OH·WQ) = dout · [out > 0 when relu] at the columns
 * j = oy·WQ + ox with ox < OW, 0 at the others (the columns gemm_conv_phase drops), for gemm_dot_phase;
 * db (nb, OC) its sums over the plane, the image's part of the bias gradient */
__kernel void conv_phase_grad_prologue(__global const float *restrict dout, ulong dout_off,
                                       __global const float *restrict out, ulong out_off,
                                       __global float *restrict dy, ulong dy_off, __global float *restrict db,
                                       ulong db_off, int oc, int oh, int ow, int wq, int n0, int relu) {
  const int o = (int)get_global_id(0), img = (int)get_global_id(1);
  const size_t src = ((size_t)(n0 + img) * oc + o) * oh * ow;
  __global const float *restrict g = dout + dout_off + src, *restrict y = out + out_off + src;
  __global float *restrict dst = dy + dy_off + ((size_t)img * oc + o) * oh * wq;
  float4 sum = (float4)0.0f; /* four chains: one sum's chain of adds ran the kernel 2x longer */
  for (int oy = 0; oy < oh; oy++, g += ow, y += ow, dst += wq) {
    int ox = 0;
    for (; ox + 4 <= ow; ox += 4) {
      const float4 gv = vload4(0, g + ox), yv = vload4(0, y + ox);
      const float4 v = relu ? select((float4)0.0f, gv, yv > 0.0f) : gv;
      vstore4(v, 0, dst + ox);
      sum += v;
    }
    for (; ox < ow; ox++) {
      const float v = !relu || y[ox] > 0.0f ? g[ox] : 0.0f;
      dst[ox] = v;
      sum += (float4)(v, 0.0f, 0.0f, 0.0f);
    }
    for (; ox < wq; ox++) dst[ox] = 0.0f;
  }
  float lanes[4]; /* through memory: Oclgrind's uninitialized-value check crashed on the lanes' extraction */
  vstore4(sum, 0, lanes);
  db[db_off + (size_t)img * oc + o] = (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
}
