/* Max-pool and adaptive average pool, forward and backward, and max-pool's inference forward (no argmax)
 * (window rules in cl/pool.cl); each launch takes the runtime's kernel variant (rt->kernels_variant). */
#include <limits.h>

#include "alexnet/layers.h"
#include "runtime/check.h"
#include "runtime/launch.h"
#include "layers/ops.h"

/* The GPU variants (cl/pool.cl, name_gpu): the CPU variant's arguments and the element count `total`,
 * a work-item per element over a 1-D range rounded up to the work-group */
static an_status launch_gpu(an_runtime *rt, const char *name, size_t total, const an_arg *args, int n_args,
                            const char *file, int line) {
  an_arg all[16];
  if (n_args >= 16) return AN_FAIL(AN_ERR_ARGUMENT, "%s: %d arguments, more than the launch holds", name, n_args);
  if (total > INT_MAX)
    return AN_FAIL(AN_ERR_ARGUMENT, "%s: %zu elements, more than its int index takes", name, total);
  for (int i = 0; i < n_args; i++) all[i] = args[i];
  all[n_args] = an_arg_int((int)total);
  const size_t global = an_round_up(total, AN_GPU_WGS), local = AN_GPU_WGS;
  return an_launch_at(rt, name, 1, &global, &local, all, n_args + 1, file, line);
}
#define AN_LAUNCH_GPU(rt, name, total, args) \
  launch_gpu(rt, name, total, args, (int)(sizeof(args) / sizeof((args)[0])), __FILE__, __LINE__)
#define GPU(rt) ((rt)->kernels_variant == AN_KERNELS_GPU)

an_status an_maxpool_forward(an_runtime *rt, int n, int c, int h, int w, int k, int stride, an_buf out,
                             an_buf argmax, an_buf inp) {
  const int oh = an_pool_out(h, k, stride), ow = an_pool_out(w, k, stride);
  if (n < 1 || c < 1 || k < 1 || stride < 1 || h < k || w < k)
    return AN_FAIL(AN_ERR_ARGUMENT, "max-pool %d/%d on %dx%d is not valid", k, stride, h, w);
  const size_t global[2] = {(size_t)oh, (size_t)n * c}; /* (row, plane) of out */
  const an_arg args[] = {an_arg_mem(inp.mem),   an_arg_ulong(inp.off),  an_arg_mem(out.mem),
                         an_arg_ulong(out.off), an_arg_mem(argmax.mem), an_arg_ulong(argmax.off),
                         an_arg_int(h),         an_arg_int(w),          an_arg_int(oh),
                         an_arg_int(ow),        an_arg_int(k),          an_arg_int(stride)};
  if (GPU(rt)) return AN_LAUNCH_GPU(rt, "maxpool_forward_gpu", (size_t)n * c * oh * ow, args);
  return an_launch(rt, "maxpool_forward", 2, global, NULL, args);
}

an_status an_maxpool_forward_infer(an_runtime *rt, int n, int c, int h, int w, int k, int stride, an_buf out,
                                   an_buf inp) {
  const int oh = an_pool_out(h, k, stride), ow = an_pool_out(w, k, stride);
  if (n < 1 || c < 1 || k < 1 || stride < 1 || h < k || w < k)
    return AN_FAIL(AN_ERR_ARGUMENT, "max-pool %d/%d on %dx%d is not valid", k, stride, h, w);
  const size_t global[1] = {(size_t)n * c}; /* planes of out */
  const an_arg args[] = {an_arg_mem(inp.mem), an_arg_ulong(inp.off), an_arg_mem(out.mem), an_arg_ulong(out.off),
                         an_arg_int(h),       an_arg_int(w),         an_arg_int(oh),      an_arg_int(ow),
                         an_arg_int(k),       an_arg_int(stride)};
  if (GPU(rt)) return AN_LAUNCH_GPU(rt, "maxpool_forward_infer_gpu", (size_t)n * c * oh * ow, args);
  return an_launch(rt, "maxpool_forward_infer", 1, global, NULL, args);
}

an_status an_maxpool_backward(an_runtime *rt, int n, int c, int h, int w, int k, int stride, an_buf dinp,
                              an_buf dout, an_buf argmax) {
  const int oh = an_pool_out(h, k, stride), ow = an_pool_out(w, k, stride);
  if (n < 1 || c < 1 || k < 1 || stride < 1 || h < k || w < k)
    return AN_FAIL(AN_ERR_ARGUMENT, "max-pool %d/%d on %dx%d is not valid", k, stride, h, w);
  const size_t global[1] = {(size_t)n * c}; /* planes of dinp */
  const an_arg args[] = {
      an_arg_mem(dout.mem), an_arg_ulong(dout.off), an_arg_mem(argmax.mem), an_arg_ulong(argmax.off),
      an_arg_mem(dinp.mem), an_arg_ulong(dinp.off), an_arg_int(h),          an_arg_int(w),
      an_arg_int(oh),       an_arg_int(ow),         an_arg_int(k),          an_arg_int(stride)};
  if (GPU(rt)) return AN_LAUNCH_GPU(rt, "maxpool_backward_gpu", (size_t)n * c * h * w, args);
  return an_launch(rt, "maxpool_backward", 1, global, NULL, args);
}

an_status an_avgpool_forward(an_runtime *rt, int n, int c, int h, int w, int oh, int ow, an_buf out, an_buf inp) {
  if (n < 1 || c < 1 || h < 1 || w < 1 || oh < 1 || ow < 1)
    return AN_FAIL(AN_ERR_ARGUMENT, "adaptive pool %dx%d -> %dx%d is not valid", h, w, oh, ow);
  /* same size (alexnet-half's and alexnet-tv's 6x6 at 224): the output is the input */
  if (h == oh && w == ow) return an_copy_floats(rt, out, inp, (size_t)n * c * h * w);
  const size_t global[3] = {(size_t)ow, (size_t)oh, (size_t)n * c}; /* (x, y, plane) of out */
  const an_arg args[] = {an_arg_mem(inp.mem), an_arg_ulong(inp.off), an_arg_mem(out.mem), an_arg_ulong(out.off),
                         an_arg_int(h),       an_arg_int(w),         an_arg_int(oh),      an_arg_int(ow)};
  if (GPU(rt)) return AN_LAUNCH_GPU(rt, "avgpool_forward_gpu", (size_t)n * c * oh * ow, args);
  return an_launch(rt, "avgpool_forward", 3, global, NULL, args);
}

an_status an_avgpool_backward(an_runtime *rt, int n, int c, int h, int w, int oh, int ow, an_buf dinp, an_buf dout) {
  if (n < 1 || c < 1 || h < 1 || w < 1 || oh < 1 || ow < 1)
    return AN_FAIL(AN_ERR_ARGUMENT, "adaptive pool %dx%d -> %dx%d is not valid", h, w, oh, ow);
  /* same size: the input gradient is the output gradient (15.7 ms through the kernel, alexnet-half) */
  if (h == oh && w == ow) return an_copy_floats(rt, dinp, dout, (size_t)n * c * h * w);
  const size_t global[3] = {(size_t)w, (size_t)h, (size_t)n * c}; /* (x, y, plane) of dinp */
  const an_arg args[] = {an_arg_mem(dout.mem), an_arg_ulong(dout.off), an_arg_mem(dinp.mem), an_arg_ulong(dinp.off),
                         an_arg_int(h),        an_arg_int(w),          an_arg_int(oh),       an_arg_int(ow)};
  if (GPU(rt)) return AN_LAUNCH_GPU(rt, "avgpool_backward_gpu", (size_t)n * c * h * w, args);
  return an_launch(rt, "avgpool_backward", 3, global, NULL, args);
}

/* ---- the layer table's entries: max-pool keeps its argmax in aux when training ---- */

static int maxpool_out_shape(const an_layer_desc *d, int classes, const int in[3], int out[3]) {
  (void)classes;
  if (in[1] < d->kernel || in[2] < d->kernel) return 0;
  out[0] = in[0], out[1] = an_pool_out(in[1], d->kernel, d->stride),
  out[2] = an_pool_out(in[2], d->kernel, d->stride);
  return 1;
}

static an_status maxpool_forward_io(const an_layer_io *io) {
  const an_layer_plan *L = io->L;
  const an_layer_desc *d = L->desc;
  if (!io->aux.mem)
    return an_maxpool_forward_infer(io->rt, io->n, L->in_c, L->in_h, L->in_w, d->kernel, d->stride, io->out, io->in);
  return an_maxpool_forward(io->rt, io->n, L->in_c, L->in_h, L->in_w, d->kernel, d->stride, io->out, io->aux,
                            io->in);
}

static an_status maxpool_backward_io(const an_layer_io *io) {
  const an_layer_plan *L = io->L;
  return an_maxpool_backward(io->rt, io->n, L->in_c, L->in_h, L->in_w, L->desc->kernel, L->desc->stride, io->dinp,
                             io->dout, io->aux);
}

const an_layer_ops an_maxpool_ops = {"maxpool", maxpool_out_shape,  an_no_params,
                                     NULL,      maxpool_forward_io, maxpool_backward_io};

static int avgpool_out_shape(const an_layer_desc *d, int classes, const int in[3], int out[3]) {
  (void)classes;
  out[0] = in[0], out[1] = out[2] = d->out_hw;
  return 1;
}

static an_status avgpool_forward_io(const an_layer_io *io) {
  const an_layer_plan *L = io->L;
  return an_avgpool_forward(io->rt, io->n, L->in_c, L->in_h, L->in_w, L->out_h, L->out_w, io->out, io->in);
}

static an_status avgpool_backward_io(const an_layer_io *io) {
  const an_layer_plan *L = io->L;
  return an_avgpool_backward(io->rt, io->n, L->in_c, L->in_h, L->in_w, L->out_h, L->out_w, io->dinp, io->dout);
}

const an_layer_ops an_avgpool_ops = {"avgpool", avgpool_out_shape,  an_no_params,
                                     NULL,      avgpool_forward_io, avgpool_backward_io};
