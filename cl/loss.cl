/* Softmax cross-entropy, averaged over the batch. logits and dlogits (N, K) row-major, labels (N) int.
 * xent_forward_backward: one work-item per sample writes its loss and its row of
 *   dlogits = (softmax(logits) − onehot(label)) / N.
 * sum_loss: one work-item sums the N per-sample losses into loss[0] / N (N is a batch: small). */

__kernel void xent_forward_backward(__global const float *logits, ulong logits_off,
                                    __global const int *labels, __global float *dlogits,
                                    ulong dlogits_off, __global float *per_sample, ulong per_off,
                                    int n, int classes) {
  const int r = (int)get_global_id(0);
  __global const float *z = logits + logits_off + (size_t)r * classes;
  __global float *dz = dlogits + dlogits_off + (size_t)r * classes;
  float m = z[0];
  for (int j = 1; j < classes; j++) m = fmax(m, z[j]);
  float sum = 0.0f;
  for (int j = 0; j < classes; j++) sum += exp(z[j] - m);
  const int label = labels[r];
  per_sample[per_off + r] = log(sum) + m - z[label];
  const float inv_n = 1.0f / n;
  for (int j = 0; j < classes; j++)
    dz[j] = (exp(z[j] - m) / sum - (j == label ? 1.0f : 0.0f)) * inv_n;
}

__kernel void sum_loss(__global const float *per_sample, ulong per_off, __global float *loss,
                       ulong loss_off, int n) {
  float s = 0.0f;
  for (int r = 0; r < n; r++) s += per_sample[per_off + r];
  loss[loss_off] = s / n;
}
