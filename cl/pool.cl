/* Pooling. Layouts: inp (N, C, H, W), out and argmax (N, C, OH, OW).
 * Max-pool: k×k windows at stride s, no padding; the first maximum in row-major window order wins (as
 * PyTorch's CPU kernel), NaN propagates. The forward pass stores each window's argmax (y·W + x in its
 * plane, int32 bits in the float activation buffer); the backward pass adds each window's gradient
 * at its argmax, windows in row-major order.
 * Adaptive average pool: output row i averages rows [⌊i·H/OH⌋, ⌈(i+1)·H/OH⌉), as PyTorch.
 * Max-pool work-items own whole rows (forward: an output row; backward: an input plane, cleared and
 * then scattered into, the plane in cache, one writer: no atomics). PoCL runs few long work-items
 * with unit-stride loops much faster than a work-item per pixel (3-15x on AlexNet's shapes). The
 * average pool runs on a 3-D range (x, y, plane = image·C + channel) of the elements it writes. */

/* The maximum of the k x k window of output (oy, ox) in plane x (width w), NaN winning, and in *arg its
 * index in the plane (the first maximum); both variants' forward kernels take it from here. */
static inline float maxpool_window(__global const float *restrict x, int w, int oy, int ox, int k, int stride,
                                   int *arg) {
  float best = -INFINITY;
  *arg = oy * stride * w + ox * stride;
  for (int ki = 0; ki < k; ki++)
    for (int kj = 0; kj < k; kj++) {
      const int at = (oy * stride + ki) * w + ox * stride + kj;
      const float v = x[at];
      if (v > best || isnan(v)) {
        best = v;
        *arg = at;
      }
    }
  return best;
}

/* Eight outputs (oy, ox .. ox+7) of a stride-2 window at once, as maxpool_window computes each (same
 * order, same NaN rule): per window position one 16-wide load whose even lanes are the eight windows'
 * values. The caller keeps ox·2 + k + 14 < w, so every load stays in the row. */
inline float8 maxpool_window8_s2(__global const float *restrict x, int w, int oy, int ox, int k, int8 *arg) {
  float8 best = (float8)(-INFINITY);
  const int8 lane = (int8)(0, 2, 4, 6, 8, 10, 12, 14);
  *arg = (int8)(oy * 2 * w + ox * 2) + lane;
  for (int ki = 0; ki < k; ki++)
    for (int kj = 0; kj < k; kj++) {
      const int at = (oy * 2 + ki) * w + ox * 2 + kj;
      const float8 v = vload16(0, x + at).even;
      const int8 take = isgreater(v, best) | isnan(v);
      best = select(best, v, take);
      *arg = select(*arg, (int8)at + lane, take);
    }
  return best;
}

/* work-item = one output row (oy, plane); stride 2 (AlexNet's 3/2 pools) eight outputs at a time */
__kernel void maxpool_forward(__global const float *restrict inp, ulong inp_off,
                              __global float *restrict out, ulong out_off, __global float *restrict argmax,
                              ulong argmax_off, int h, int w, int oh, int ow, int k, int stride) {
  const int oy = (int)get_global_id(0);
  const size_t plane = get_global_id(1), row = (plane * oh + oy) * ow;
  __global const float *restrict x = inp + inp_off + plane * h * w;
  __global float *restrict o = out + out_off + row;
  __global int *restrict a = (__global int *)argmax + argmax_off + row;
  int ox = 0;
  for (; stride == 2 && ox + 8 <= ow && ox * 2 + k + 14 < w; ox += 8) {
    int8 arg;
    vstore8(maxpool_window8_s2(x, w, oy, ox, k, &arg), 0, o + ox);
    vstore8(arg, 0, a + ox);
  }
  for (; ox < ow; ox++) {
    int arg;
    o[ox] = maxpool_window(x, w, oy, ox, k, stride, &arg);
    a[ox] = arg;
  }
}

/* a where b is not larger, else b; NaN in a stays, NaN in b wins (maxpool_window's rule, lane-wise) */
inline float16 maxpool_max16(float16 a, float16 b) { return select(a, b, isgreater(b, a) | isnan(b)); }
inline float8 maxpool_max8(float8 a, float8 b) { return select(a, b, isgreater(b, a) | isnan(b)); }

/* The maxima of eight (four) stride-2 windows (oy, ox ..): per window position one 16-wide (8-wide) load
 * from column 2·ox + kj - shift, whose lanes shift, shift + 2, ... are the windows' values. shift 1 keeps
 * the load inside the row for the row's last eight (four) outputs: 2·ox + k + 14 <= w (+ 6) holds for
 * ox = ow - 8 (ow - 4). The lanes are taken through private memory, as the even lanes from `shift` on:
 * Oclgrind 21.10's uninitialized-value check loses the values of an odd-lane swizzle (.odd), and reports
 * them as uninitialized; PoCL compiles either to the same shuffle. */
inline float8 maxpool8_s2(__global const float *restrict x, int w, int oy, int ox, int k, int shift) {
  float16 best = (float16)(-INFINITY);
  for (int ki = 0; ki < k; ki++)
    for (int kj = 0; kj < k; kj++)
      best = maxpool_max16(best, vload16(0, x + (oy * 2 + ki) * w + ox * 2 + kj - shift));
  float l[17]; /* (17) the lanes, and one more so that the shifted load stays in the array */
  vstore16(best, 0, l);
  l[16] = 0.0f;
  return vload16(0, l + shift).even;
}
inline float4 maxpool4_s2(__global const float *restrict x, int w, int oy, int ox, int k, int shift) {
  float8 best = (float8)(-INFINITY);
  for (int ki = 0; ki < k; ki++)
    for (int kj = 0; kj < k; kj++)
      best = maxpool_max8(best, vload8(0, x + (oy * 2 + ki) * w + ox * 2 + kj - shift));
  float l[9];
  vstore8(best, 0, l);
  l[8] = 0.0f;
  return vload8(0, l + shift).even;
}

/* Inference: the same maximum (NaN propagates), no argmax kept. work-item = one plane, row by row; at
 * stride 2 eight (or four) outputs at a time, the row's last eight (four) overlapping the previous group
 * from loads shifted by one, so no output of a row of five or more is left to the per-window loop. */
__kernel void maxpool_forward_infer(__global const float *restrict inp, ulong inp_off,
                                    __global float *restrict out, ulong out_off, int h, int w, int oh,
                                    int ow, int k, int stride) {
  const size_t plane = get_global_id(0);
  __global const float *restrict x = inp + inp_off + plane * h * w;
  for (int oy = 0; oy < oh; oy++) {
    __global float *restrict o = out + out_off + (plane * oh + oy) * ow;
    int ox = 0;
    for (; stride == 2 && ox + 8 <= ow && ox * 2 + k + 14 < w; ox += 8)
      vstore8(maxpool8_s2(x, w, oy, ox, k, 0), 0, o + ox);
    if (stride == 2 && ox < ow && ow >= 9) {
      vstore8(maxpool8_s2(x, w, oy, ow - 8, k, 1), 0, o + ow - 8);
      ox = ow;
    }
    for (; stride == 2 && ox + 4 <= ow && ox * 2 + k + 6 < w; ox += 4)
      vstore4(maxpool4_s2(x, w, oy, ox, k, 0), 0, o + ox);
    if (stride == 2 && ox < ow && ow >= 5) {
      vstore4(maxpool4_s2(x, w, oy, ow - 4, k, 1), 0, o + ow - 4);
      ox = ow;
    }
    for (; ox < ow; ox++) {
      float best = -INFINITY;
      for (int ki = 0; ki < k; ki++)
        for (int kj = 0; kj < k; kj++) {
          const float v = x[(oy * stride + ki) * w + ox * stride + kj];
          if (v > best || isnan(v)) best = v;
        }
      o[ox] = best;
    }
  }
}

/* work-item = one input plane: cleared, then each window's gradient added at its argmax */
__kernel void maxpool_backward(__global const float *restrict dout, ulong dout_off,
                               __global const float *restrict argmax, ulong argmax_off,
                               __global float *restrict dinp, ulong dinp_off, int h, int w, int oh, int ow,
                               int k, int stride) {
  const size_t plane = get_global_id(0);
  __global float *restrict d = dinp + dinp_off + plane * h * w;
  __global const int *restrict arg = (__global const int *)argmax + argmax_off + plane * oh * ow;
  __global const float *restrict dy = dout + dout_off + plane * oh * ow;
  for (int i = 0; i < h * w; i++) d[i] = 0.0f;
  for (int i = 0; i < oh * ow; i++) { /* an index outside the plane (never from the forward) writes nothing */
    const uint a = (uint)arg[i];
    if (a < (uint)(h * w)) d[a] += dy[i];
  }
}

__kernel void avgpool_forward(__global const float *inp, ulong inp_off, __global float *out,
                              ulong out_off, int h, int w, int oh, int ow) {
  const int ox = (int)get_global_id(0), oy = (int)get_global_id(1);
  const size_t plane = get_global_id(2), i = (plane * oh + oy) * ow + ox;
  const int y0 = oy * h / oh, y1 = ((oy + 1) * h + oh - 1) / oh;
  const int x0 = ox * w / ow, x1 = ((ox + 1) * w + ow - 1) / ow;
  __global const float *x = inp + inp_off + plane * h * w;
  float s = 0.0f;
  for (int y = y0; y < y1; y++)
    for (int xx = x0; xx < x1; xx++) s += x[y * w + xx];
  out[out_off + i] = s / (float)((y1 - y0) * (x1 - x0));
}

/* The gradient of input element (y, x) of a plane: Σ over the windows that hold it of dy / window area
 * (dy: the plane's (oh, ow) output gradient); both variants' backward kernels sum in this order. */
static inline float avgpool_grad_at(__global const float *dy, int h, int w, int oh, int ow, int y, int x) {
  float g = 0.0f;
  for (int oy = 0; oy < oh; oy++) {
    const int y0 = oy * h / oh, y1 = ((oy + 1) * h + oh - 1) / oh;
    if (y < y0 || y >= y1) continue;
    for (int ox = 0; ox < ow; ox++) {
      const int x0 = ox * w / ow, x1 = ((ox + 1) * w + ow - 1) / ow;
      if (x < x0 || x >= x1) continue;
      g += dy[oy * ow + ox] / (float)((y1 - y0) * (x1 - x0));
    }
  }
  return g;
}

/* work-item = one input element: Σ over the windows that hold it of dout / window area */
__kernel void avgpool_backward(__global const float *dout, ulong dout_off, __global float *dinp,
                               ulong dinp_off, int h, int w, int oh, int ow) {
  const int x = (int)get_global_id(0), y = (int)get_global_id(1);
  const size_t plane = get_global_id(2), i = (plane * h + y) * w + x;
  __global const float *dy = dout + dout_off + plane * oh * ow;
  dinp[dinp_off + i] = avgpool_grad_at(dy, h, w, oh, ow, y, x);
}

/* ---- GPU variants (the runtime's AN_KERNELS_GPU): a work-item per element written, over a 1-D range
 * of the tensor's elements rounded up to the work-group (pool.c); work-items past the end return.
 * Windows overlap by k - s: the neighbours' reads meet in the cache, so no local tile. ---- */

/* work-item = one output element (ox, oy, plane): the maximum and its argmax, as maxpool_forward */
__kernel void maxpool_forward_gpu(__global const float *restrict inp, ulong inp_off,
                                  __global float *restrict out, ulong out_off, __global float *restrict argmax,
                                  ulong argmax_off, int h, int w, int oh, int ow, int k, int stride, int total) {
  const int i = (int)get_global_id(0);
  if (i >= total) return;
  const int plane = i / (oh * ow), pix = i - plane * oh * ow, oy = pix / ow, ox = pix - oy * ow;
  __global const float *restrict x = inp + inp_off + (size_t)plane * h * w;
  int arg;
  out[out_off + i] = maxpool_window(x, w, oy, ox, k, stride, &arg);
  ((__global int *)argmax)[argmax_off + i] = arg;
}

/* Inference: the same maximum, no argmax kept */
__kernel void maxpool_forward_infer_gpu(__global const float *restrict inp, ulong inp_off,
                                        __global float *restrict out, ulong out_off, int h, int w, int oh, int ow,
                                        int k, int stride, int total) {
  const int i = (int)get_global_id(0);
  if (i >= total) return;
  const int plane = i / (oh * ow), pix = i - plane * oh * ow, oy = pix / ow, ox = pix - oy * ow;
  __global const float *restrict x = inp + inp_off + (size_t)plane * h * w;
  float best = -INFINITY;
  for (int ki = 0; ki < k; ki++)
    for (int kj = 0; kj < k; kj++) {
      const float v = x[(oy * stride + ki) * w + ox * stride + kj];
      if (v > best || isnan(v)) best = v;
    }
  out[out_off + i] = best;
}

/* work-item = one input element (x, y, plane): the gradients of the windows that hold it and chose it,
 * in row-major window order (maxpool_backward's order of adding, so both sum alike) */
__kernel void maxpool_backward_gpu(__global const float *restrict dout, ulong dout_off,
                                   __global const float *restrict argmax, ulong argmax_off,
                                   __global float *restrict dinp, ulong dinp_off, int h, int w, int oh, int ow,
                                   int k, int stride, int total) {
  const int i = (int)get_global_id(0);
  if (i >= total) return;
  const int plane = i / (h * w), at = i - plane * h * w, y = at / w, x = at - y * w;
  __global const int *restrict arg = (__global const int *)argmax + argmax_off + (size_t)plane * oh * ow;
  __global const float *restrict dy = dout + dout_off + (size_t)plane * oh * ow;
  /* windows oy with oy·stride <= y < oy·stride + k */
  const int oy0 = y < k ? 0 : (y - k) / stride + 1, oy1 = min(oh - 1, y / stride);
  const int ox0 = x < k ? 0 : (x - k) / stride + 1, ox1 = min(ow - 1, x / stride);
  float g = 0.0f;
  for (int oy = oy0; oy <= oy1; oy++)
    for (int ox = ox0; ox <= ox1; ox++)
      if (arg[oy * ow + ox] == at) g += dy[oy * ow + ox];
  dinp[dinp_off + i] = g;
}

/* work-item = one output element, as avgpool_forward over a 1-D range */
__kernel void avgpool_forward_gpu(__global const float *inp, ulong inp_off, __global float *out, ulong out_off,
                                  int h, int w, int oh, int ow, int total) {
  const int i = (int)get_global_id(0);
  if (i >= total) return;
  const int plane = i / (oh * ow), pix = i - plane * oh * ow, oy = pix / ow, ox = pix - oy * ow;
  const int y0 = oy * h / oh, y1 = ((oy + 1) * h + oh - 1) / oh;
  const int x0 = ox * w / ow, x1 = ((ox + 1) * w + ow - 1) / ow;
  __global const float *x = inp + inp_off + (size_t)plane * h * w;
  float s = 0.0f;
  for (int y = y0; y < y1; y++)
    for (int xx = x0; xx < x1; xx++) s += x[y * w + xx];
  out[out_off + i] = s / (float)((y1 - y0) * (x1 - x0));
}

/* work-item = one input element, as avgpool_backward over a 1-D range */
__kernel void avgpool_backward_gpu(__global const float *dout, ulong dout_off, __global float *dinp,
                                   ulong dinp_off, int h, int w, int oh, int ow, int total) {
  const int i = (int)get_global_id(0);
  if (i >= total) return;
  const int plane = i / (h * w), at = i - plane * h * w, y = at / w, x = at - y * w;
  __global const float *dy = dout + dout_off + (size_t)plane * oh * ow;
  dinp[dinp_off + i] = avgpool_grad_at(dy, h, w, oh, ow, y, x);
}
