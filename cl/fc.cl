/* Fully connected epilogues around CLBlast's GEMM. Layouts: y and dy (N, OUT) row-major, bias (OUT).
 * One work-item per element written, neighbours on neighbouring addresses: a GPU's shape already, so
 * these serve both kernel variants (the runtime's cpu and gpu; see conv.cl, pool.cl, lrn.cl). */

/* y = act(y + bias) in place; NaN passes the ReLU */
__kernel void bias_act(__global float *y, ulong y_off, __global const float *bias, ulong bias_off,
                       int out_features, int relu) {
  const size_t i = get_global_id(0);
  float v = y[y_off + i] + bias[bias_off + i % out_features];
  if (relu && v < 0.0f) v = 0.0f;
  y[y_off + i] = v;
}

/* dy = dy · [y > 0] in place: the gradient before the ReLU */
__kernel void relu_mask(__global float *dy, ulong dy_off, __global const float *y, ulong y_off) {
  const size_t i = get_global_id(0);
  if (!(y[y_off + i] > 0.0f)) dy[dy_off + i] = 0.0f;
}

/* work-item = one column o: db[o] += Σ_n dy[n, o] */
__kernel void colsum_add(__global const float *dy, ulong dy_off, int n, int out_features,
                         __global float *db, ulong db_off) {
  const int o = (int)get_global_id(0);
  float s = 0.0f;
  for (int r = 0; r < n; r++) s += dy[dy_off + (size_t)r * out_features + o];
  db[db_off + o] += s;
}

/* dst[off + i] = 0 for i < n, one work-item per float: the y of a GEMV with beta 0, which CLBlast reads
 * anyway (gemm/gemm.c). A kernel, not clEnqueueFillBuffer, so that Oclgrind's uninitialized-value check
 * sees the write. */
__kernel void zero_floats(__global float *dst, ulong off) { dst[off + get_global_id(0)] = 0.0f; }

/* Inference with the weight packed as the project's GEMM's A (layers/fc.c): xt (IN, n_pad) = inpᵀ for inp
 * (N, IN), the columns past N zero. work-item = (column j, row k) of xt */
__kernel void fc_transpose_in(__global const float *inp, ulong inp_off, __global float *xt, ulong xt_off, int n,
                              int in, int n_pad) {
  const int j = (int)get_global_id(0), k = (int)get_global_id(1);
  xt[xt_off + (size_t)k * n_pad + j] = j < n ? inp[inp_off + (size_t)j * in + k] : 0.0f;
}

/* out (N, OUT_pad) = act(ctᵀ + bias) for ct (OUT, n_pad) = W · xt, 0 in the padding columns o >= OUT; NaN
 * passes the ReLU. work-item = (o, i) of out */
__kernel void fc_out_transposed(__global const float *ct, ulong ct_off, __global const float *bias, ulong bias_off,
                                __global float *out, ulong out_off, int out_features, int out_pad, int n_pad,
                                int relu) {
  const int o = (int)get_global_id(0), i = (int)get_global_id(1);
  float v = 0.0f;
  if (o < out_features) {
    v = ct[ct_off + (size_t)o * n_pad + i] + bias[bias_off + o];
    if (relu && v < 0.0f) v = 0.0f;
  }
  out[out_off + (size_t)i * out_pad + o] = v;
}
