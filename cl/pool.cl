/* Pooling. Layouts: inp (N, C, H, W), out and argmax (N, C, OH, OW).
 * Max-pool: k×k windows at stride s, no padding; the first maximum in row-major window order wins (as
 * PyTorch's CPU kernel), NaN propagates. The forward pass stores each window's argmax (y·W + x in its
 * plane, int32 bits in the float activation buffer); the backward pass gathers: each input element
 * sums the gradients of the (at most ⌈k/s⌉²) windows whose argmax it is — no atomics.
 * Adaptive average pool: output row i averages rows [⌊i·H/OH⌋, ⌈(i+1)·H/OH⌉), as PyTorch.
 * Every kernel runs on a 3-D range (x, y, plane = image·C + channel) of the elements it writes: no
 * work-item divides a 64-bit index, and neighbouring work-items are neighbouring pixels. */

__kernel void maxpool_forward(__global const float *inp, ulong inp_off, __global float *out,
                              ulong out_off, __global float *argmax, ulong argmax_off, int h, int w,
                              int oh, int ow, int k, int stride) {
  const int ox = (int)get_global_id(0), oy = (int)get_global_id(1);
  const size_t plane = get_global_id(2), i = (plane * oh + oy) * ow + ox;
  __global const float *x = inp + inp_off + plane * h * w;
  float best = -INFINITY;
  int arg = oy * stride * w + ox * stride;
  for (int ki = 0; ki < k; ki++)
    for (int kj = 0; kj < k; kj++) {
      const int at = (oy * stride + ki) * w + ox * stride + kj;
      const float v = x[at];
      if (v > best || isnan(v)) {
        best = v;
        arg = at;
      }
    }
  out[out_off + i] = best;
  ((__global int *)argmax)[argmax_off + i] = arg;
}

/* Inference: the same maximum (first in row-major window order, NaN propagates), no argmax kept */
__kernel void maxpool_forward_infer(__global const float *inp, ulong inp_off, __global float *out,
                                    ulong out_off, int h, int w, int oh, int ow, int k, int stride) {
  const int ox = (int)get_global_id(0), oy = (int)get_global_id(1);
  const size_t plane = get_global_id(2), i = (plane * oh + oy) * ow + ox;
  __global const float *x = inp + inp_off + plane * h * w;
  float best = -INFINITY;
  for (int ki = 0; ki < k; ki++)
    for (int kj = 0; kj < k; kj++) {
      const float v = x[(oy * stride + ki) * w + ox * stride + kj];
      if (v > best || isnan(v)) best = v;
    }
  out[out_off + i] = best;
}

/* work-item = one input element (x, y, plane) */
__kernel void maxpool_backward(__global const float *dout, ulong dout_off, __global const float *argmax,
                               ulong argmax_off, __global float *dinp, ulong dinp_off, int h, int w,
                               int oh, int ow, int k, int stride) {
  const int x = (int)get_global_id(0), y = (int)get_global_id(1);
  const size_t plane = get_global_id(2), i = (plane * h + y) * w + x;
  __global const int *arg = (__global const int *)argmax + argmax_off + plane * oh * ow;
  __global const float *dy = dout + dout_off + plane * oh * ow;
  const int oy_lo = y < k ? 0 : (y - k) / stride + 1, oy_hi = min(y / stride, oh - 1);
  const int ox_lo = x < k ? 0 : (x - k) / stride + 1, ox_hi = min(x / stride, ow - 1);
  const int me = y * w + x;
  float g = 0.0f;
  for (int oy = oy_lo; oy <= oy_hi; oy++)
    for (int ox = ox_lo; ox <= ox_hi; ox++)
      if (arg[oy * ow + ox] == me) g += dy[oy * ow + ox];
  dinp[dinp_off + i] = g;
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

/* work-item = one input element: Σ over the windows that hold it of dout / window area */
__kernel void avgpool_backward(__global const float *dout, ulong dout_off, __global float *dinp,
                               ulong dinp_off, int h, int w, int oh, int ow) {
  const int x = (int)get_global_id(0), y = (int)get_global_id(1);
  const size_t plane = get_global_id(2), i = (plane * h + y) * w + x;
  __global const float *dy = dout + dout_off + plane * oh * ow;
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
  dinp[dinp_off + i] = g;
}
