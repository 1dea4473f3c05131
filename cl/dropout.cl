/* Dropout with masks from a counter-based generator: element i of a tensor draws
 *   u = top 24 bits of splitmix64(key + (i+1)·φ) / 2^24,  kept when u >= p, then scaled by 1/(1-p),
 * where key = an_dropout_key(seed, step, layer) is mixed on the host. Nothing is stored: the backward
 * pass draws the same u. `first` is the index of the buffer's first element in the whole step's tensor
 * (a device holding samples [n0, n1) of the batch starts at n0·features), so a batch split across
 * devices draws the masks of the unsplit batch. One work-item per element. */

static ulong an_mix64(ulong z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9UL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebUL;
  return z ^ (z >> 31);
}

static float an_uniform(ulong key, ulong i) {
  return (float)(an_mix64(key + (i + 1) * 0x9e3779b97f4a7c15UL) >> 40) * (1.0f / 16777216.0f);
}

__kernel void dropout_forward(__global const float *inp, ulong inp_off, __global float *out,
                              ulong out_off, ulong key, ulong first, float p, float scale) {
  const size_t i = get_global_id(0);
  out[out_off + i] = an_uniform(key, first + i) >= p ? inp[inp_off + i] * scale : 0.0f;
}

__kernel void dropout_backward(__global const float *dout, ulong dout_off, __global float *dinp,
                               ulong dinp_off, ulong key, ulong first, float p, float scale) {
  const size_t i = get_global_id(0);
  dinp[dinp_off + i] = an_uniform(key, first + i) >= p ? dout[dout_off + i] * scale : 0.0f;
}
