/* SGD with momentum and weight decay over a flat parameter range, PyTorch's formulation:
 *   v = momentum·v + (g + weight_decay·w);  w -= lr·v
 * One work-item per parameter; w, g, v share one offset space (the net's three parameter buffers). */

__kernel void sgd_update(__global float *w, ulong w_off, __global const float *g, ulong g_off,
                         __global float *v, ulong v_off, float lr, float momentum,
                         float weight_decay) {
  const size_t i = get_global_id(0);
  const float wi = w[w_off + i];
  const float vi = momentum * v[v_off + i] + g[g_off + i] + weight_decay * wi;
  v[v_off + i] = vi;
  w[w_off + i] = wi - lr * vi;
}
