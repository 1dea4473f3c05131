/* Dropout, forward and backward, with masks drawn from a counter-based generator keyed by
 * (seed, step, layer, element): reproducible runs, nothing stored between the passes. */
#include "alexnet/layers.h"
#include "runtime/check.h"
#include "runtime/launch.h"
#include "layers/ops.h"
#include "runtime/rng.h"

uint64_t an_dropout_key(uint64_t seed, uint64_t step, uint32_t layer) {
  return an_mix64(an_mix64(an_mix64(seed ^ AN_RNG_GOLDEN) ^ step) ^ (uint64_t)layer);
}

float an_dropout_uniform(uint64_t key, uint64_t i) {
  return (float)(an_mix64(key + (i + 1) * AN_RNG_GOLDEN) >> 40) * (1.0f / 16777216.0f);
}

static an_status run(an_runtime *rt, const char *k, size_t count, float p, uint64_t key, uint64_t first, an_buf dst,
                     an_buf src) {
  if (!(p >= 0.0f && p < 1.0f))
    return AN_FAIL(AN_ERR_ARGUMENT, "dropout probability %g is not in [0, 1)", (double)p);
  const an_arg args[] = {
      an_arg_mem(src.mem), an_arg_ulong(src.off), an_arg_mem(dst.mem), an_arg_ulong(dst.off),
      an_arg_ulong(key),   an_arg_ulong(first),   an_arg_float(p),     an_arg_float(1.0f / (1.0f - p))};
  return an_launch(rt, k, 1, &count, NULL, args);
}

an_status an_dropout_forward(an_runtime *rt, size_t count, float p, uint64_t key, uint64_t first, an_buf out,
                             an_buf inp) {
  return run(rt, "dropout_forward", count, p, key, first, out, inp);
}

an_status an_dropout_backward(an_runtime *rt, size_t count, float p, uint64_t key, uint64_t first, an_buf dinp,
                              an_buf dout) {
  return run(rt, "dropout_backward", count, p, key, first, dinp, dout);
}

/* ---- the layer table's entry: inactive (evaluation), the output is a copy of the input ---- */

static int dropout_out_shape(const an_layer_desc *d, int classes, const int in[3], int out[3]) {
  (void)d, (void)classes;
  out[0] = in[0], out[1] = in[1], out[2] = in[2];
  return 1;
}

static size_t in_count(const an_layer_io *io) { return (size_t)io->n * io->L->in_c * io->L->in_h * io->L->in_w; }

static an_status dropout_forward_io(const an_layer_io *io) {
  const float p = io->L->desc->dropout_p;
  if (io->dropout_active && p > 0.0f)
    return an_dropout_forward(io->rt, in_count(io), p, io->dropout_key, io->dropout_first, io->out, io->in);
  return an_copy_floats(io->rt, io->out, io->in, in_count(io));
}

static an_status dropout_backward_io(const an_layer_io *io) {
  const float p = io->L->desc->dropout_p;
  if (io->dropout_active && p > 0.0f)
    return an_dropout_backward(io->rt, in_count(io), p, io->dropout_key, io->dropout_first, io->dinp, io->dout);
  return an_copy_floats(io->rt, io->dinp, io->dout, in_count(io));
}

const an_layer_ops an_dropout_ops = {"dropout", dropout_out_shape,  an_no_params,
                                     NULL,      dropout_forward_io, dropout_backward_io};
