/* Local response normalisation across channels, forward and backward, and the inference forward that
 * keeps no scale (see cl/lrn.cl for the formula and why alpha is divided by size); each launch takes
 * the runtime's kernel variant (rt->kernels_variant: a plane per work-item, or an element). */
#include <stdio.h>

#include "alexnet/layers.h"
#include "runtime/check.h"
#include "runtime/launch.h"
#include "layers/ops.h"

/* The GPU variants' work-group: LRN_PIX pixels × LRN_CH channels, cl/lrn.cl's defaults */
#define LRN_PIX 32
#define LRN_CH 8

/* The CPU variant over (channel, image), a plane each; the GPU variant (name_gpu) a work-item per
 * element in LRN_PIX × LRN_CH groups, with a local tile of LRN_CH + size - 1 channels appended to args */
static an_status lrn_launch(an_runtime *rt, const char *name, int n, int c, int hw, int size, const an_arg *args,
                            int n_args) {
  if (rt->kernels_variant != AN_KERNELS_GPU) {
    const size_t global[2] = {(size_t)c, (size_t)n}; /* (channel, image): a plane each */
    return an_launch_at(rt, name, 2, global, NULL, args, n_args, __FILE__, __LINE__);
  }
  an_arg all[16];
  if (n_args >= 16) return AN_FAIL(AN_ERR_ARGUMENT, "%s: %d arguments, more than the launch holds", name, n_args);
  for (int i = 0; i < n_args; i++) all[i] = args[i];
  all[n_args] = an_arg_local((size_t)(LRN_CH + size - 1) * LRN_PIX * sizeof(float));
  char gpu_name[64];
  snprintf(gpu_name, sizeof gpu_name, "%s_gpu", name);
  const size_t global[3] = {an_round_up((size_t)hw, LRN_PIX), an_round_up((size_t)c, LRN_CH), (size_t)n};
  const size_t local[3] = {LRN_PIX, LRN_CH, 1};
  return an_launch_at(rt, gpu_name, 3, global, local, all, n_args + 1, __FILE__, __LINE__);
}
#define LRN_LAUNCH(rt, name, n, c, hw, size, args) \
  lrn_launch(rt, name, n, c, hw, size, args, (int)(sizeof(args) / sizeof((args)[0])))

static an_status check(int n, int c, int h, int w, const an_lrn_params *p) {
  if (n < 1 || c < 1 || h < 1 || w < 1 || p->size < 1 || p->k <= 0.0f)
    return AN_FAIL(AN_ERR_ARGUMENT, "LRN on %dx%dx%dx%d, size %d, k %g is not valid", n, c, h, w, p->size,
                   (double)p->k);
  return AN_OK;
}

an_status an_lrn_forward(an_runtime *rt, int n, int c, int h, int w, const an_lrn_params *p, an_buf out,
                         an_buf scale, an_buf inp) {
  AN_TRY(check(n, c, h, w, p));
  const an_arg args[] = {an_arg_mem(inp.mem),    an_arg_ulong(inp.off), an_arg_mem(out.mem),
                         an_arg_ulong(out.off),  an_arg_mem(scale.mem), an_arg_ulong(scale.off),
                         an_arg_int(c),          an_arg_int(h * w),     an_arg_int(p->size),
                         an_arg_float(p->alpha), an_arg_float(p->beta), an_arg_float(p->k)};
  return LRN_LAUNCH(rt, "lrn_forward", n, c, h * w, p->size, args);
}

an_status an_lrn_forward_infer(an_runtime *rt, int n, int c, int h, int w, const an_lrn_params *p, an_buf out,
                               an_buf inp) {
  AN_TRY(check(n, c, h, w, p));
  const an_arg args[] = {an_arg_mem(inp.mem),   an_arg_ulong(inp.off), an_arg_mem(out.mem), an_arg_ulong(out.off),
                         an_arg_int(c),         an_arg_int(h * w),     an_arg_int(p->size), an_arg_float(p->alpha),
                         an_arg_float(p->beta), an_arg_float(p->k)};
  return LRN_LAUNCH(rt, "lrn_forward_infer", n, c, h * w, p->size, args);
}

an_status an_lrn_backward(an_runtime *rt, int n, int c, int h, int w, const an_lrn_params *p, an_buf dinp,
                          an_buf dout, an_buf out, an_buf scale, an_buf inp) {
  AN_TRY(check(n, c, h, w, p));
  const an_arg args[] = {an_arg_mem(dout.mem),  an_arg_ulong(dout.off),  an_arg_mem(out.mem),  an_arg_ulong(out.off),
                         an_arg_mem(scale.mem), an_arg_ulong(scale.off), an_arg_mem(inp.mem),  an_arg_ulong(inp.off),
                         an_arg_mem(dinp.mem),  an_arg_ulong(dinp.off),  an_arg_int(c),        an_arg_int(h * w),
                         an_arg_int(p->size),   an_arg_float(p->alpha),  an_arg_float(p->beta)};
  return LRN_LAUNCH(rt, "lrn_backward", n, c, h * w, p->size, args);
}

/* ---- the layer table's entry: the shape passes through; training keeps the scale in aux ---- */

static int same_shape(const an_layer_desc *d, int classes, const int in[3], int out[3]) {
  (void)d, (void)classes;
  out[0] = in[0], out[1] = in[1], out[2] = in[2];
  return 1;
}

static an_status lrn_forward_io(const an_layer_io *io) {
  const an_layer_plan *L = io->L;
  if (!io->aux.mem)
    return an_lrn_forward_infer(io->rt, io->n, L->in_c, L->in_h, L->in_w, &L->desc->lrn, io->out, io->in);
  return an_lrn_forward(io->rt, io->n, L->in_c, L->in_h, L->in_w, &L->desc->lrn, io->out, io->aux, io->in);
}

static an_status lrn_backward_io(const an_layer_io *io) {
  const an_layer_plan *L = io->L;
  return an_lrn_backward(io->rt, io->n, L->in_c, L->in_h, L->in_w, &L->desc->lrn, io->dinp, io->dout, io->out,
                         io->aux, io->in);
}

const an_layer_ops an_lrn_ops = {"lrn", same_shape, an_no_params, NULL, lrn_forward_io, lrn_backward_io};
