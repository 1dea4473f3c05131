/* Local response normalisation across channels, as torch.nn.LocalResponseNorm(size, alpha, beta, k):
 *   scale_c = k + alpha/size · Σ_{j ∈ [c - size/2, c + (size-1)/2]} x_j²,   out_c = x_c · scale_c^-beta
 * The paper writes alpha without the 1/size; PyTorch and Caffe divide by size, and so do we.
 * Layout (N, C, H, W). A work-item owns one (channel, image) plane: it accumulates the window's sum over
 * the neighbouring channels' planes into its own output plane (unit-stride loops over pixels, the
 * neighbours' planes shared in cache by the neighbouring work-items), then finishes it in place.
 * On PoCL this runs 5-9x faster than a work-item per element. scale is kept for the backward pass. */

/* s^-beta; the paper's beta = 0.75 as s^-1/2 · s^-1/4 (pow is scalar and slow on CPU devices) */
static inline float lrn_pow_neg(float s, float beta) {
  return beta == 0.75f ? rsqrt(s) * rsqrt(sqrt(s)) : pow(s, -beta);
}

__kernel void lrn_forward(__global const float *restrict inp, ulong inp_off, __global float *restrict out,
                          ulong out_off, __global float *restrict scale, ulong scale_off, int c, int hw,
                          int size, float alpha, float beta, float k) {
  const int ch = (int)get_global_id(0);
  const size_t base = get_global_id(1) * (size_t)c * hw, i = base + (size_t)ch * hw;
  __global const float *restrict x = inp + inp_off + base;
  __global float *restrict o = out + out_off + i, *restrict sc = scale + scale_off + i;
  const int lo = max(ch - size / 2, 0), hi = min(ch + (size - 1) / 2, c - 1);
  for (int p = 0; p < hw; p++) sc[p] = 0.0f;
  for (int j = lo; j <= hi; j++) {
    __global const float *restrict xj = x + (size_t)j * hw;
    for (int p = 0; p < hw; p++) sc[p] += xj[p] * xj[p];
  }
  __global const float *restrict xc = x + (size_t)ch * hw;
  for (int p = 0; p < hw; p++) {
    const float s = k + alpha / size * sc[p];
    sc[p] = s;
    o[p] = xc[p] * lrn_pow_neg(s, beta);
  }
}

/* Inference: the same output, the window's sum accumulated in the output plane (no scale kept) */
__kernel void lrn_forward_infer(__global const float *restrict inp, ulong inp_off,
                                __global float *restrict out, ulong out_off, int c, int hw, int size,
                                float alpha, float beta, float k) {
  const int ch = (int)get_global_id(0);
  const size_t base = get_global_id(1) * (size_t)c * hw;
  __global const float *restrict x = inp + inp_off + base;
  __global float *restrict o = out + out_off + base + (size_t)ch * hw;
  const int lo = max(ch - size / 2, 0), hi = min(ch + (size - 1) / 2, c - 1);
  for (int p = 0; p < hw; p++) o[p] = 0.0f;
  for (int j = lo; j <= hi; j++) {
    __global const float *restrict xj = x + (size_t)j * hw;
    for (int p = 0; p < hw; p++) o[p] += xj[p] * xj[p];
  }
  __global const float *restrict xc = x + (size_t)ch * hw;
  for (int p = 0; p < hw; p++) o[p] = xc[p] * lrn_pow_neg(k + alpha / size * o[p], beta);
}

/* dx_i = dy_i·scale_i^-beta − (2·alpha·beta/size)·x_i·Σ_{j : i ∈ window(j)} dy_j·out_j / scale_j;
 * the sum is accumulated in the work-item's dinp plane, then finished in place */
__kernel void lrn_backward(__global const float *restrict dout, ulong dout_off,
                           __global const float *restrict out, ulong out_off,
                           __global const float *restrict scale, ulong scale_off,
                           __global const float *restrict inp, ulong inp_off, __global float *restrict dinp,
                           ulong dinp_off, int c, int hw, int size, float alpha, float beta) {
  const int ch = (int)get_global_id(0);
  const size_t base = get_global_id(1) * (size_t)c * hw, i = base + (size_t)ch * hw;
  const int lo = max(ch - (size - 1) / 2, 0), hi = min(ch + size / 2, c - 1);
  __global float *restrict d = dinp + dinp_off + i;
  for (int p = 0; p < hw; p++) d[p] = 0.0f;
  for (int j = lo; j <= hi; j++) {
    const size_t e = base + (size_t)j * hw;
    __global const float *restrict dyj = dout + dout_off + e, *restrict yj = out + out_off + e,
                                   *restrict sj = scale + scale_off + e;
    for (int p = 0; p < hw; p++) d[p] += dyj[p] * yj[p] / sj[p];
  }
  __global const float *restrict dy = dout + dout_off + i, *restrict s = scale + scale_off + i,
                                 *restrict x = inp + inp_off + i;
  for (int p = 0; p < hw; p++) d[p] = dy[p] * lrn_pow_neg(s[p], beta) - 2.0f * alpha * beta / size * x[p] * d[p];
}

/* ---- GPU variants (the runtime's AN_KERNELS_GPU): a work-item per element, a range (HW rounded up to
 * LRN_PIX, C rounded up to LRN_CH, N) in work-groups of LRN_PIX pixels × LRN_CH channels. The group
 * first stages the LRN_CH + size - 1 channels its windows span (x², or dy·y/scale for the backward)
 * in local memory, one read each, where every work-item reading its window from global memory would
 * read each element size times; channels outside [0, C) stage as 0. Sums run in channel order from
 * 0, as in the CPU kernels. ---- */
#ifndef LRN_PIX
#define LRN_PIX 32
#endif
#ifndef LRN_CH
#define LRN_CH 8
#endif

/* stage[t·LRN_PIX + lp] = f(channel c0 - before + t) at the work-item's pixel, t in [0, LRN_CH + size - 1) */
#define LRN_STAGE(stage, before, expr_of_e)                                     \
  do {                                                                          \
    const int lp_ = (int)get_local_id(0), c0_ = (int)get_group_id(1) * LRN_CH; \
    for (int t_ = (int)get_local_id(1); t_ < LRN_CH + size - 1; t_ += LRN_CH) { \
      const int cj_ = c0_ - (before) + t_;                                      \
      float v_ = 0.0f;                                                          \
      if (p < hw && cj_ >= 0 && cj_ < c) {                                      \
        const size_t e = base + (size_t)cj_ * hw + p;                           \
        v_ = (expr_of_e);                                                       \
      }                                                                         \
      stage[t_ * LRN_PIX + lp_] = v_;                                           \
    }                                                                           \
    barrier(CLK_LOCAL_MEM_FENCE);                                               \
  } while (0)

/* The window sum of work-item (lp, lc): staged rows lc … lc + size - 1 */
static inline float lrn_window_sum(__local const float *stage, int size) {
  const int lp = (int)get_local_id(0), lc = (int)get_local_id(1);
  float s = 0.0f;
  for (int t = 0; t < size; t++) s += stage[(lc + t) * LRN_PIX + lp];
  return s;
}

__kernel __attribute__((reqd_work_group_size(LRN_PIX, LRN_CH, 1)))
void lrn_forward_gpu(__global const float *restrict inp, ulong inp_off, __global float *restrict out,
                     ulong out_off, __global float *restrict scale, ulong scale_off, int c, int hw, int size,
                     float alpha, float beta, float k, __local float *stage) {
  const int p = (int)get_global_id(0), ch = (int)get_global_id(1);
  const size_t base = get_global_id(2) * (size_t)c * hw;
  __global const float *restrict x = inp + inp_off;
  LRN_STAGE(stage, size / 2, x[e] * x[e]);
  if (p >= hw || ch >= c) return;
  const size_t i = base + (size_t)ch * hw + p;
  const float s = k + alpha / size * lrn_window_sum(stage, size);
  scale[scale_off + i] = s;
  out[out_off + i] = x[i] * lrn_pow_neg(s, beta);
}

__kernel __attribute__((reqd_work_group_size(LRN_PIX, LRN_CH, 1)))
void lrn_forward_infer_gpu(__global const float *restrict inp, ulong inp_off, __global float *restrict out,
                           ulong out_off, int c, int hw, int size, float alpha, float beta, float k,
                           __local float *stage) {
  const int p = (int)get_global_id(0), ch = (int)get_global_id(1);
  const size_t base = get_global_id(2) * (size_t)c * hw;
  __global const float *restrict x = inp + inp_off;
  LRN_STAGE(stage, size / 2, x[e] * x[e]);
  if (p >= hw || ch >= c) return;
  const size_t i = base + (size_t)ch * hw + p;
  out[out_off + i] = x[i] * lrn_pow_neg(k + alpha / size * lrn_window_sum(stage, size), beta);
}

/* dx_i = dy_i·scale_i^-beta − (2·alpha·beta/size)·x_i·Σ_{j : i ∈ window(j)} dy_j·out_j / scale_j */
__kernel __attribute__((reqd_work_group_size(LRN_PIX, LRN_CH, 1)))
void lrn_backward_gpu(__global const float *restrict dout, ulong dout_off, __global const float *restrict out,
                      ulong out_off, __global const float *restrict scale, ulong scale_off,
                      __global const float *restrict inp, ulong inp_off, __global float *restrict dinp,
                      ulong dinp_off, int c, int hw, int size, float alpha, float beta, __local float *stage) {
  const int p = (int)get_global_id(0), ch = (int)get_global_id(1);
  const size_t base = get_global_id(2) * (size_t)c * hw;
  LRN_STAGE(stage, (size - 1) / 2, dout[dout_off + e] * out[out_off + e] / scale[scale_off + e]);
  if (p >= hw || ch >= c) return;
  const size_t i = base + (size_t)ch * hw + p;
  dinp[dinp_off + i] = dout[dout_off + i] * lrn_pow_neg(scale[scale_off + i], beta) -
                       2.0f * alpha * beta / size * inp[inp_off + i] * lrn_window_sum(stage, size);
}
