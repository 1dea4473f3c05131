/* Local response normalisation across channels, as torch.nn.LocalResponseNorm(size, alpha, beta, k):
 *   scale_c = k + alpha/size · Σ_{j ∈ [c - size/2, c + (size-1)/2]} x_j²,   out_c = x_c · scale_c^-beta
 * The paper writes alpha without the 1/size; PyTorch and Caffe divide by size, and so do we.
 * Layout (N, C, H, W); a 3-D range (pixel p, channel, image), so no work-item divides an index and
 * neighbouring work-items read neighbouring pixels (PoCL vectorises along dimension 0); scale is kept
 * for the backward pass. */

/* s^-beta; the paper's beta = 0.75 as s^-1/2 · s^-1/4 (pow is scalar and slow on CPU devices) */
static inline float lrn_pow_neg(float s, float beta) {
  return beta == 0.75f ? rsqrt(s) * rsqrt(sqrt(s)) : pow(s, -beta);
}

__kernel void lrn_forward(__global const float *inp, ulong inp_off, __global float *out, ulong out_off,
                          __global float *scale, ulong scale_off, int c, int hw, int size,
                          float alpha, float beta, float k) {
  const int p = (int)get_global_id(0), ch = (int)get_global_id(1);
  const size_t base = get_global_id(2) * (size_t)c * hw + p; /* pixel p of channel 0 of this image */
  const size_t i = base + (size_t)ch * hw;
  const int lo = max(ch - size / 2, 0), hi = min(ch + (size - 1) / 2, c - 1);
  float sum = 0.0f;
  for (int j = lo; j <= hi; j++) {
    const float v = inp[inp_off + base + (size_t)j * hw];
    sum += v * v;
  }
  const float s = k + alpha / size * sum;
  scale[scale_off + i] = s;
  out[out_off + i] = inp[inp_off + i] * lrn_pow_neg(s, beta);
}

/* Inference: the same output, the scale not kept (nothing runs backward) */
__kernel void lrn_forward_infer(__global const float *inp, ulong inp_off, __global float *out,
                                ulong out_off, int c, int hw, int size, float alpha, float beta,
                                float k) {
  const int p = (int)get_global_id(0), ch = (int)get_global_id(1);
  const size_t base = get_global_id(2) * (size_t)c * hw + p;
  const size_t i = base + (size_t)ch * hw;
  const int lo = max(ch - size / 2, 0), hi = min(ch + (size - 1) / 2, c - 1);
  float sum = 0.0f;
  for (int j = lo; j <= hi; j++) {
    const float v = inp[inp_off + base + (size_t)j * hw];
    sum += v * v;
  }
  out[out_off + i] = inp[inp_off + i] * lrn_pow_neg(k + alpha / size * sum, beta);
}

/* dx_i = dy_i·scale_i^-beta − (2·alpha·beta/size)·x_i·Σ_{j : i ∈ window(j)} dy_j·out_j / scale_j */
__kernel void lrn_backward(__global const float *dout, ulong dout_off, __global const float *out,
                           ulong out_off, __global const float *scale, ulong scale_off,
                           __global const float *inp, ulong inp_off, __global float *dinp,
                           ulong dinp_off, int c, int hw, int size, float alpha, float beta) {
  const int p = (int)get_global_id(0), ch = (int)get_global_id(1);
  const size_t base = get_global_id(2) * (size_t)c * hw + p;
  const size_t i = base + (size_t)ch * hw;
  const int lo = max(ch - (size - 1) / 2, 0), hi = min(ch + size / 2, c - 1);
  float acc = 0.0f;
  for (int j = lo; j <= hi; j++) {
    const size_t e = base + (size_t)j * hw;
    acc += dout[dout_off + e] * out[out_off + e] / scale[scale_off + e];
  }
  dinp[dinp_off + i] = dout[dout_off + i] * lrn_pow_neg(scale[scale_off + i], beta) -
                       2.0f * alpha * beta / size * inp[inp_off + i] * acc;
}
