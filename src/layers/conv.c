/* Convolution, forward and backward: batched im2col, one CLBlast GEMM per group per chunk of images,
 * and an epilogue that adds the bias, applies the ReLU and moves the result to NCHW.
 *
 * Per chunk of nb images the workspace holds
 *   col  (C·KH·KW, nb·OH·OW)   im2col of the chunk; in the backward pass, then the input gradient's col
 *   ybuf (OC, nb·OH·OW)        the GEMM output (forward) or the output gradient (backward)
 * except that a forward pass whose reduction is no multiple of 16 (conv1: 363) first holds the weight
 * zero-padded to K_pad columns (OC, K_pad), then col with K_pad rows, the last ones zero (k_padded).
 * Forward   ybuf_g  = W_g · col_g
 * Backward  dW_g   += dybuf_g · col_gᵀ,  db += Σ_cols dybuf,  dcol_g = W_gᵀ · dybuf_g,  dinp = col2im(dcol)
 * im2col, col2im, the epilogue and the gradient's prologue take the runtime's kernel variant
 * (rt->kernels_variant: cl/conv.cl's CPU shapes, or the _gpu ones).
 *
 * A 3x3 pad-1 or 5x5 pad-2 stride-1 convolution runs its forward pass, its input gradient and its
 * weight gradient (with the bias gradient then summed from NCHW) through Winograd (F(2x2,3x3) or
 * F(4x4,3x3), F(4x4,5x5): layers/winograd.c) as rt->winograd says, when the workspace holds its transformed filters
 * (the weight gradient: two sets) and one image; with both gradients on it, the input gradient comes
 * from the weight gradient's transformed output gradient, chunk by chunk. The workspace size is the
 * larger of the two paths' (so the plan does not depend on the switch); each path chunks the images its
 * own way, Winograd's workspace holding the transformed filters ((K+1)², OC, C/groups) and then a
 * chunk's tiles.
 *
 * On the project's GEMM (rt->own_gemm) a strided convolution of one group (conv1) runs its forward pass,
 * and its weight and bias gradients when no input gradient is wanted, on phase planes instead of im2col
 * (layers/conv_phase.c), in im2col's chunks: its workspace per image is smaller than im2col's. */
#include <stdio.h>

#include "alexnet/layers.h"
#include "runtime/check.h"
#include "runtime/launch.h"
#include "alexnet/tune.h"
#include "gemm/gemm.h"
#include "layers/conv_phase.h"
#include "layers/ops.h"
#include "layers/winograd.h"

/* the bias sums' work-group: cl/conv.cl's ROWSUM_WGS, which rowsum_add and planes_sum_add require */
#define ROWSUM_WGS 64

an_conv_dims an_conv_dims_make(int n, int c, int h, int w, int oc, int k, int stride, int pad, int groups) {
  an_conv_dims d = {n, c, h, w, oc, k, k, stride, pad, groups, 0, 0};
  d.oh = (h + 2 * pad - k) / stride + 1;
  d.ow = (w + 2 * pad - k) / stride + 1;
  return d;
}

/* The im2col forward GEMM's reduction (C·KH·KW, one group) when it is no multiple of 16 (CLBlast's
 * smallest KWG), rounded up to 32 (its largest): conv1's 3·11·11 = 363 -> 384. CLBlast's indirect GEMM
 * copies an operand whose size is no multiple of its tiles into a padded temporary on every call, here
 * all of col (363 x 193600 floats for alexnet-half at batch 64: 111 against 87 ms for the GEMM,
 * docs/BENCHMARKS.md). col's extra rows are zero, and the weight is read from a zero-padded copy
 * (OC, K_pad) at the workspace's start. Every other convolution of the three models has a multiple of 16
 * (grouped ones keep theirs whatever it is); the backward pass keeps the reduction as it is. */
static size_t k_padded(const an_conv_dims *d) {
  const size_t k = (size_t)d->c * d->kh * d->kw;
  return d->groups == 1 && k % 16 ? an_round_up(k, 32) : k;
}

/* the padded weight's floats at the workspace's start (0 without padding), rounded up to 1024 floats so
 * that col after it starts where a sub-buffer may (gemm/gemm.c: at_zero) */
static size_t k_pad_fixed(const an_conv_dims *d) {
  const size_t kp = k_padded(d);
  return kp == (size_t)d->c * d->kh * d->kw ? 0 : an_round_up((size_t)d->oc * kp, 1024);
}

static size_t im2col_floats(const an_conv_dims *d, int images) { /* col (padded reduction) + ybuf */
  return (k_padded(d) + (size_t)d->oc) * d->oh * d->ow * (size_t)images;
}

/* the larger of im2col's and Winograd's workspace for `images` images; fixed: Winograd's filters and
 * padding (an_wino_fixed_floats, or the backward pass's) */
static size_t work_floats_for(const an_conv_dims *d, int images, size_t fixed) {
  const size_t im2col = k_pad_fixed(d) + im2col_floats(d, images);
  if (!an_wino_applies(d)) return im2col;
  const size_t wino = fixed + an_wino_image_floats(d) * (size_t)images;
  return im2col > wino ? im2col : wino;
}

size_t an_conv_work_floats(const an_conv_dims *d, int images) {
  return work_floats_for(d, images, an_wino_applies(d) ? an_wino_fixed_floats(d) : 0);
}

size_t an_conv_train_work_floats(const an_conv_dims *d, int images) {
  return work_floats_for(d, images, an_wino_applies(d) ? an_wino_backward_fixed_floats(d) : 0);
}

/* the chunk rule of an_conv_chunk_images, for `fit` images' worth of workspace */
static int chunk_of(const an_conv_dims *d, size_t fit) {
  if (fit >= (size_t)d->n) return d->n;
  if (fit >= AN_CONV_CHUNK_ALIGN) fit -= fit % AN_CONV_CHUNK_ALIGN;
  return (int)fit;
}

size_t an_conv_min_work_floats(const an_conv_dims *d) { return k_pad_fixed(d) + im2col_floats(d, 1); }

int an_conv_chunk_images(const an_conv_dims *d, size_t work_floats) {
  const size_t fixed = k_pad_fixed(d);
  return work_floats < fixed ? 0 : chunk_of(d, (work_floats - fixed) / im2col_floats(d, 1));
}

static int winograd(const an_runtime *rt, const an_conv_dims *d, size_t work_floats, int pass);

/* 1 when the forward pass takes the phase path (layers/conv_phase.c) in im2col's chunks: its table and
 * one image's planes fit in one image's im2col */
static int phase(const an_runtime *rt, const an_conv_dims *d) {
  return an_conv_phase_applies(rt, d) &&
         an_conv_phase_fixed_floats(d) + an_conv_phase_image_floats(d) <= im2col_floats(d, 1);
}

/* and the weight gradient, when no input gradient is wanted (conv1's case) */
static int phase_dw(const an_runtime *rt, const an_conv_dims *d, int dinp) {
  return !dinp && an_conv_phase_applies(rt, d) &&
         an_conv_phase_fixed_floats(d) + an_conv_phase_dw_image_floats(d) <= im2col_floats(d, 1);
}

int an_conv_weight_grad_im2col(const an_runtime *rt, const an_conv_dims *d, size_t work_floats) {
  return !winograd(rt, d, work_floats, AN_WINOGRAD_WEIGHT_GRAD);
}

/* the Winograd path's images per chunk when it runs this convolution's pass (AN_WINOGRAD_FORWARD,
 * _INPUT_GRAD or _WEIGHT_GRAD; a gradient's _LARGE counts as the gradient itself for an image of
 * AN_WINOGRAD_LARGE_TILES tiles or more); 0 when it does not (switched off, not a convolution Winograd
 * computes, or no room for the filters and one image) */
static int winograd(const an_runtime *rt, const an_conv_dims *d, size_t work_floats, int pass) {
  const int large_flag = pass == AN_WINOGRAD_INPUT_GRAD    ? AN_WINOGRAD_INPUT_GRAD_LARGE
                         : pass == AN_WINOGRAD_WEIGHT_GRAD ? AN_WINOGRAD_WEIGHT_GRAD_LARGE
                                                           : 0;
  const int large = rt->winograd & large_flag && an_wino_large(d);
  if (!(rt->winograd & pass) && !large) return 0;
  if (!an_wino_applies(d)) return 0;
  const size_t fixed = pass == AN_WINOGRAD_WEIGHT_GRAD ? an_wino_backward_fixed_floats(d) : an_wino_fixed_floats(d);
  if (work_floats < fixed) return 0;
  return chunk_of(d, (work_floats - fixed) / an_wino_image_floats(d));
}

static an_status check_dims(const an_conv_dims *d, size_t work_floats, int *chunk) {
  if (d->n < 1 || d->c < 1 || d->oc < 1 || d->groups < 1 || d->c % d->groups || d->oc % d->groups || d->oh < 1 ||
      d->ow < 1 || d->stride < 1)
    return AN_FAIL(AN_ERR_ARGUMENT,
                   "convolution %dx%dx%dx%d -> %d channels (k %d, stride %d, pad %d, groups %d) is not valid", d->n,
                   d->c, d->h, d->w, d->oc, d->kh, d->stride, d->pad, d->groups);
  const size_t per_image = an_conv_min_work_floats(d);
  *chunk = an_conv_chunk_images(d, work_floats);
  if (*chunk < 1)
    return AN_FAIL(AN_ERR_ARGUMENT, "convolution workspace of %zu floats holds less than one image (%zu)",
                   work_floats, per_image);
  return AN_OK;
}

/* The Winograd path over the batch, wino_chunk images at a time (layers/winograd.c): the forward
 * output, or the input gradient (then src is the output gradient and out the ReLU's mask). The filters
 * transformed into the workspace's start, or those of prepared (the forward pass's, an_conv_prepare);
 * the chunk's region after the filters' room either way (the chunk rule counts it). */
static an_status wino_run(an_runtime *rt, const an_conv_dims *d, an_wino_pass pass, an_buf dst, an_buf src,
                          an_buf out, an_buf weight, an_buf bias, int relu, an_buf work, int wino_chunk,
                          an_buf prepared) {
  const an_buf u = prepared.mem ? prepared : work, region = an_at(work.mem, work.off + an_wino_filter_floats(d));
  const an_buf packed = prepared.mem && an_wino_prepacked(rt, d) ? prepared : an_at(NULL, 0);
  if (!prepared.mem) AN_TRY(an_wino_filters(rt, d, pass, weight, u));
  for (int n0 = 0; n0 < d->n; n0 += wino_chunk)
    AN_TRY(an_wino_chunk(rt, d, pass, dst, src, out, bias, relu, u, packed, region, n0,
                         d->n - n0 < wino_chunk ? d->n - n0 : wino_chunk));
  return AN_OK;
}

/* the Winograd path's GEMMs over the batch, as wino_run issues them (the filters at u_off) */
static int wino_gemms(const an_conv_dims *d, an_wino_pass pass, size_t u_off, size_t work_off, int wino_chunk,
                      an_gemm_call *out, int n, int max) {
  for (int n0 = 0; n0 < d->n; n0 += wino_chunk)
    n = an_wino_gemms(d, pass, u_off, work_off + an_wino_filter_floats(d),
                      d->n - n0 < wino_chunk ? d->n - n0 : wino_chunk, out, n, max);
  return n;
}

/* im2col and col2im take the same arguments; the variants differ in their ranges (cl/conv.cl) */
static an_status im2col(an_runtime *rt, const an_conv_dims *d, an_buf inp, an_buf col, int n0, int nb) {
  const size_t global[3] = {(size_t)d->kh * d->kw, (size_t)nb, (size_t)d->c}; /* (ki·KW + kj, image, ch) */
  const int gpu = rt->kernels_variant == AN_KERNELS_GPU;
  /* GPU: (column, row) of col */
  const size_t global_gpu[2] = {an_round_up((size_t)nb * d->oh * d->ow, AN_GPU_WGS), (size_t)d->c * d->kh * d->kw};
  const size_t local_gpu[2] = {AN_GPU_WGS, 1};
  const an_arg args[] = {an_arg_mem(inp.mem), an_arg_ulong(inp.off), an_arg_mem(col.mem), an_arg_ulong(col.off),
                         an_arg_int(d->c),    an_arg_int(d->h),      an_arg_int(d->w),    an_arg_int(d->kh),
                         an_arg_int(d->kw),   an_arg_int(d->stride), an_arg_int(d->pad),  an_arg_int(d->oh),
                         an_arg_int(d->ow),   an_arg_int(n0),        an_arg_int(nb)};
  if (gpu) return an_launch(rt, "im2col_gpu", 2, global_gpu, local_gpu, args);
  return an_launch(rt, "im2col", 3, global, NULL, args);
}

/* The epilogue and the gradient's prologue: the CPU variant a work-item per (channel, image) plane, the
 * GPU variant (name_gpu) a work-item per element, a range (OH·OW rounded up, OC·nb) */
static an_status plane_launch(an_runtime *rt, const char *name, int oc, int nb, size_t ohw, const an_arg *args,
                              int n_args) {
  if (rt->kernels_variant == AN_KERNELS_GPU) {
    char gpu_name[64];
    snprintf(gpu_name, sizeof gpu_name, "%s_gpu", name);
    const size_t global[2] = {an_round_up(ohw, AN_GPU_WGS), (size_t)oc * nb}, local[2] = {AN_GPU_WGS, 1};
    return an_launch_at(rt, gpu_name, 2, global, local, args, n_args, __FILE__, __LINE__);
  }
  const size_t global[2] = {(size_t)oc, (size_t)nb}; /* (channel, image): a plane each */
  return an_launch_at(rt, name, 2, global, NULL, args, n_args, __FILE__, __LINE__);
}

/* The weight (OC, C·KH·KW) into dst (OC, kp) with zeros in the columns past C·KH·KW (k_padded) */
static an_status pad_weight(an_runtime *rt, const an_conv_dims *d, an_buf weight, an_buf dst, size_t kp) {
  const size_t k = (size_t)d->c * d->kh * d->kw, all = (size_t)d->oc * kp, count = (size_t)d->oc * k;
  const an_arg zero[] = {an_arg_mem(dst.mem), an_arg_ulong(dst.off)};
  AN_TRY(an_launch(rt, "zero_floats", 1, &all, NULL, zero));
  const an_arg args[] = {an_arg_mem(weight.mem), an_arg_ulong(weight.off), an_arg_ulong(k), an_arg_mem(dst.mem),
                         an_arg_ulong(dst.off),  an_arg_ulong(kp),         an_arg_ulong(k)};
  return an_launch(rt, "copy_rows", 1, &count, NULL, args);
}

size_t an_conv_prepared_floats(const an_runtime *rt, const an_conv_dims *d, size_t work_floats) {
  return winograd(rt, d, work_floats, AN_WINOGRAD_FORWARD) ? an_wino_prepared_floats(rt, d) : 0;
}

an_status an_conv_prepare(an_runtime *rt, const an_conv_dims *d, an_buf weight, an_buf prepared, an_buf work) {
  return an_wino_prepare(rt, d, weight, prepared, work);
}

an_status an_conv_forward(an_runtime *rt, const an_conv_dims *d, an_buf out, an_buf inp, an_buf weight, an_buf bias,
                          int relu, an_buf work, size_t work_floats) {
  return an_conv_forward_prepared(rt, d, out, inp, weight, bias, relu, work, work_floats, an_at(NULL, 0));
}

an_status an_conv_forward_prepared(an_runtime *rt, const an_conv_dims *d, an_buf out, an_buf inp, an_buf weight,
                                   an_buf bias, int relu, an_buf work, size_t work_floats, an_buf prepared) {
  int chunk;
  AN_TRY(check_dims(d, work_floats, &chunk));
  const int wino_chunk = winograd(rt, d, work_floats, AN_WINOGRAD_FORWARD);
  if (wino_chunk)
    return wino_run(rt, d, AN_WINO_FORWARD, out, inp, out, weight, bias, relu, work, wino_chunk, prepared);
  if (phase(rt, d)) {
    for (int n0 = 0; n0 < d->n; n0 += chunk)
      AN_TRY(an_conv_phase_forward(rt, d, out, inp, weight, bias, relu, work, n0,
                                   d->n - n0 < chunk ? d->n - n0 : chunk));
    return AN_OK;
  }
  const size_t ohw = (size_t)d->oh * d->ow, ckk_g = (size_t)(d->c / d->groups) * d->kh * d->kw;
  const size_t oc_g = (size_t)(d->oc / d->groups), fixed = k_pad_fixed(d), kp_g = fixed ? k_padded(d) : ckk_g;
  an_buf w = weight; /* (OC, kp_g): the weight, or its zero-padded copy at the workspace's start */
  if (fixed) {
    AN_TRY(pad_weight(rt, d, weight, work, kp_g));
    w = work;
  }
  for (int n0 = 0; n0 < d->n; n0 += chunk) {
    const int nb = d->n - n0 < chunk ? d->n - n0 : chunk;
    const size_t ncols = (size_t)nb * ohw;
    const an_buf col = an_at(work.mem, work.off + fixed);                    /* (kp_g·groups, ncols) */
    const an_buf ybuf = an_at(work.mem, col.off + kp_g * d->groups * ncols); /* (OC, ncols) */
    AN_TRY(im2col(rt, d, inp, col, n0, nb));
    if (fixed) { /* the padding rows of col: zero */
      const size_t count = (kp_g - ckk_g) * ncols;
      const an_arg args[] = {an_arg_mem(col.mem), an_arg_ulong(col.off + ckk_g * ncols)};
      AN_TRY(an_launch(rt, "zero_floats", 1, &count, NULL, args));
    }
    for (int g = 0; g < d->groups; g++)
      AN_TRY(an_gemm(rt, 0, 0, oc_g, ncols, kp_g, 1.0f, an_at(w.mem, w.off + g * oc_g * kp_g), kp_g,
                     an_at(col.mem, col.off + g * kp_g * ncols), ncols, 0.0f,
                     an_at(ybuf.mem, ybuf.off + g * oc_g * ncols), ncols));
    const an_arg args[] = {an_arg_mem(ybuf.mem),   an_arg_ulong(ybuf.off), an_arg_mem(bias.mem),
                           an_arg_ulong(bias.off), an_arg_mem(out.mem),    an_arg_ulong(out.off),
                           an_arg_int(d->oc),      an_arg_int((int)ohw),   an_arg_int(n0),
                           an_arg_int(nb),         an_arg_int(relu != 0)};
    AN_TRY(plane_launch(rt, "conv_epilogue", d->oc, nb, ohw, args, (int)(sizeof args / sizeof args[0])));
  }
  return AN_OK;
}

/* im2col's bias and weight gradients for one chunk: dbias += Σ_cols dybuf; dW_g += dybuf_g · col_gᵀ */
static an_status weight_grad_chunk(an_runtime *rt, const an_conv_dims *d, an_buf dweight, an_buf dbias, an_buf col,
                                   an_buf dybuf, size_t ncols) {
  const size_t ckk_g = (size_t)(d->c / d->groups) * d->kh * d->kw, oc_g = (size_t)(d->oc / d->groups);
  {
    const size_t local = ROWSUM_WGS, global = (size_t)d->oc * local;
    const an_arg args[] = {an_arg_mem(dybuf.mem), an_arg_ulong(dybuf.off), an_arg_int((int)ncols),
                           an_arg_mem(dbias.mem), an_arg_ulong(dbias.off)};
    AN_TRY(an_launch(rt, "rowsum_add", 1, &global, &local, args));
  }
  /* dW's reduction runs over every output pixel of the chunk (K = nb·OH·OW, up to ~10⁵): split into
   * slices accumulated with beta = 1, which keeps each GEMM's panels in cache (3-4x faster on CPUs);
   * the width is the tuning's choice for this reduction (alexnet tune), else AN_CONV_DW_SLICE */
  const size_t width = an_gemm_dw_slice(rt, oc_g, ckk_g, ncols); /* the tuning's, else AN_CONV_DW_SLICE */
  for (int g = 0; g < d->groups; g++)
    for (size_t j0 = 0; j0 < ncols; j0 += width) {
      const size_t kk = ncols - j0 < width ? ncols - j0 : width;
      AN_TRY(an_gemm(rt, 0, 1, oc_g, ckk_g, kk, 1.0f, an_at(dybuf.mem, dybuf.off + g * oc_g * ncols + j0), ncols,
                     an_at(col.mem, col.off + g * ckk_g * ncols + j0), ncols, 1.0f,
                     an_at(dweight.mem, dweight.off + g * oc_g * ckk_g), ckk_g));
    }
  return AN_OK;
}

/* dbias += Σ over the batch and the planes of dout (N, OC, OH, OW), through the ReLU when relu */
static an_status bias_grad_planes(an_runtime *rt, const an_conv_dims *d, an_buf dbias, an_buf dout, an_buf out,
                                  int relu) {
  const size_t local = ROWSUM_WGS, global = (size_t)d->oc * local; /* a work-group per channel */
  const an_arg args[] = {an_arg_mem(dout.mem),  an_arg_ulong(dout.off), an_arg_mem(out.mem),
                         an_arg_ulong(out.off), an_arg_int(d->oc),      an_arg_int(d->oh * d->ow),
                         an_arg_int(0),         an_arg_int(d->n),       an_arg_int(relu != 0),
                         an_arg_mem(dbias.mem), an_arg_ulong(dbias.off)};
  return an_launch(rt, "planes_sum_add", 1, &global, &local, args);
}

/* The weight and bias gradients on the Winograd path over the batch, wino_chunk images at a time:
 * dbias from dout in NCHW (planes_sum_add), du = Σ dM · Vᵀ in the workspace (layers/winograd.c), then
 * dweight += Gᵀ du G. With dinp.mem, the input gradient from the same dM, chunk by chunk (the adjoint's
 * filters ut next to du). Workspace: du, ut (an_wino_filter_floats each), then the chunk's region. */
static an_status wino_weight_grad(an_runtime *rt, const an_conv_dims *d, an_buf dweight, an_buf dbias, an_buf dout,
                                  an_buf out, an_buf inp, an_buf weight, int relu, an_buf work, int wino_chunk,
                                  an_buf dinp) {
  AN_TRY(bias_grad_planes(rt, d, dbias, dout, out, relu));
  const size_t filters = an_wino_filter_floats(d);
  const an_buf du = work, ut = an_at(work.mem, work.off + filters);
  const an_buf region = an_at(work.mem, work.off + 2 * filters);
  if (dinp.mem) AN_TRY(an_wino_filters(rt, d, AN_WINO_ADJOINT, weight, ut));
  for (int n0 = 0; n0 < d->n; n0 += wino_chunk)
    AN_TRY(an_wino_weight_chunk(rt, d, inp, dout, out, relu, du, region, n0,
                                d->n - n0 < wino_chunk ? d->n - n0 : wino_chunk, n0 > 0, dinp, ut));
  return an_wino_filter_grad(rt, d, du, dweight);
}

an_status an_conv_backward(an_runtime *rt, const an_conv_dims *d, an_buf dinp, an_buf dweight, an_buf dbias,
                           an_buf dout, an_buf out, an_buf inp, an_buf weight, int relu, an_buf work,
                           size_t work_floats) {
  int chunk;
  AN_TRY(check_dims(d, work_floats, &chunk));
  const size_t ohw = (size_t)d->oh * d->ow, ckk_g = (size_t)(d->c / d->groups) * d->kh * d->kw;
  const size_t oc_g = (size_t)(d->oc / d->groups);
  const int wino_dw = winograd(rt, d, work_floats, AN_WINOGRAD_WEIGHT_GRAD);
  /* the input gradient through Winograd after the weight gradient, its workspace free again */
  const int wino_chunk = dinp.mem ? winograd(rt, d, work_floats, AN_WINOGRAD_INPUT_GRAD) : 0;
  const int col_dinp = dinp.mem && !wino_chunk; /* the input gradient through im2col's TN and col2im */
  /* both gradients on Winograd: the input gradient from the weight gradient's dM (the adjoint path) */
  if (wino_dw)
    AN_TRY(wino_weight_grad(rt, d, dweight, dbias, dout, out, inp, weight, relu, work, wino_dw,
                            wino_chunk ? dinp : an_at(NULL, 0)));
  if (!wino_dw && phase_dw(rt, d, dinp.mem != NULL)) {
    for (int n0 = 0; n0 < d->n; n0 += chunk)
      AN_TRY(an_conv_phase_weight_grad(rt, d, dweight, dbias, dout, out, inp, relu, work, n0,
                                       d->n - n0 < chunk ? d->n - n0 : chunk));
    return AN_OK;
  }
  for (int n0 = 0; n0 < d->n && (!wino_dw || col_dinp); n0 += chunk) {
    const int nb = d->n - n0 < chunk ? d->n - n0 : chunk;
    const size_t ncols = (size_t)nb * ohw;
    const an_buf col = work;                                                    /* (C·KH·KW, ncols) */
    const an_buf dybuf = an_at(work.mem, work.off + ckk_g * d->groups * ncols); /* (OC, ncols) */
    if (!wino_dw) AN_TRY(im2col(rt, d, inp, col, n0, nb));
    {
      const an_arg args[] = {an_arg_mem(dout.mem),  an_arg_ulong(dout.off), an_arg_mem(out.mem),
                             an_arg_ulong(out.off), an_arg_mem(dybuf.mem),  an_arg_ulong(dybuf.off),
                             an_arg_int(d->oc),     an_arg_int((int)ohw),   an_arg_int(n0),
                             an_arg_int(nb),        an_arg_int(relu != 0)};
      AN_TRY(plane_launch(rt, "conv_grad_prologue", d->oc, nb, ohw, args, (int)(sizeof args / sizeof args[0])));
    }
    if (!wino_dw) AN_TRY(weight_grad_chunk(rt, d, dweight, dbias, col, dybuf, ncols));
    if (!col_dinp) continue;
    for (int g = 0; g < d->groups; g++) /* the col region now receives the input gradient's columns */
      AN_TRY(an_gemm(rt, 1, 0, ckk_g, ncols, oc_g, 1.0f, an_at(weight.mem, weight.off + g * oc_g * ckk_g), ckk_g,
                     an_at(dybuf.mem, dybuf.off + g * oc_g * ncols), ncols, 0.0f,
                     an_at(col.mem, col.off + g * ckk_g * ncols), ncols));
    const size_t global[2] = {(size_t)d->c, (size_t)nb}; /* (channel, image) */
    /* GPU: (pixel, image·C + channel) of dinp */
    const size_t global_gpu[2] = {an_round_up((size_t)d->h * d->w, AN_GPU_WGS), (size_t)nb * d->c};
    const size_t local_gpu[2] = {AN_GPU_WGS, 1};
    const an_arg args[] = {an_arg_mem(col.mem), an_arg_ulong(col.off), an_arg_mem(dinp.mem), an_arg_ulong(dinp.off),
                           an_arg_int(d->c),    an_arg_int(d->h),      an_arg_int(d->w),     an_arg_int(d->kh),
                           an_arg_int(d->kw),   an_arg_int(d->stride), an_arg_int(d->pad),   an_arg_int(d->oh),
                           an_arg_int(d->ow),   an_arg_int(n0),        an_arg_int(nb)};
    if (rt->kernels_variant == AN_KERNELS_GPU) AN_TRY(an_launch(rt, "col2im_gpu", 2, global_gpu, local_gpu, args));
    else AN_TRY(an_launch(rt, "col2im", 2, global, NULL, args));
  }
  if (wino_chunk && !wino_dw) /* the workspace is free again: Winograd's filters and tiles */
    AN_TRY(wino_run(rt, d, AN_WINO_BACKWARD_DATA, dinp, dout, out, weight, dbias, relu, work, wino_chunk,
                    an_at(NULL, 0)));
  return AN_OK;
}

/* ---- the layer table's entry ---- */

an_conv_dims an_layer_conv_dims(const an_layer_plan *L, int n) {
  const an_layer_desc *d = L->desc;
  return an_conv_dims_make(n, L->in_c, L->in_h, L->in_w, d->out_channels, d->kernel, d->stride, d->pad, d->groups);
}

static int conv_out_shape(const an_layer_desc *d, int classes, const int in[3], int out[3]) {
  (void)classes;
  const an_conv_dims cd = an_conv_dims_make(1, in[0], in[1], in[2], d->out_channels, d->kernel, d->stride, d->pad,
                                            d->groups);
  if (in[1] + 2 * d->pad < d->kernel || in[2] + 2 * d->pad < d->kernel || cd.oh < 1 || cd.ow < 1) return 0;
  out[0] = d->out_channels, out[1] = cd.oh, out[2] = cd.ow;
  return 1;
}

static int conv_param_shapes(const an_layer_desc *d, const int in[3], const int out[3], int ndim[2],
                             int shape[2][4]) {
  (void)out;
  ndim[0] = 4, shape[0][0] = d->out_channels, shape[0][1] = in[0] / d->groups;
  shape[0][2] = shape[0][3] = d->kernel;
  ndim[1] = 1, shape[1][0] = d->out_channels;
  return 2;
}

/* The GEMMs of an_conv_forward and an_conv_backward, call for call: per chunk of images, forward one
 * NN per group; backward the weight gradient's NT slices per group, then (with an input gradient) one
 * TN per group. Offsets as those functions compute them. Both passes together list them chunk by
 * chunk (the order the tuner reports shapes in); each pass alone is the order it issues them. On the
 * Winograd path the forward pass is its chunks' (K+1)² NN per group, and the input gradient's follow all of
 * the weight gradient's chunks. */
static int conv_gemms(const an_layer_io *io, int passes, an_gemm_call *out, int max) {
  const an_conv_dims d = an_layer_conv_dims(io->L, io->n);
  const int chunk = an_conv_chunk_images(&d, io->work_floats);
  if (chunk < 1) return 0;
  const size_t ohw = (size_t)d.oh * d.ow, ckk_g = (size_t)(d.c / d.groups) * d.kh * d.kw;
  const size_t oc_g = (size_t)(d.oc / d.groups), w = io->weight.off, col = io->work.off;
  const int wino_fwd = winograd(io->rt, &d, io->work_floats, AN_WINOGRAD_FORWARD);
  const int wino_dinp = io->dinp.mem ? winograd(io->rt, &d, io->work_floats, AN_WINOGRAD_INPUT_GRAD) : 0;
  const int wino_dw = winograd(io->rt, &d, io->work_floats, AN_WINOGRAD_WEIGHT_GRAD);
  int n = 0;
  if (passes & AN_PASS_FORWARD && wino_fwd)
    n = wino_gemms(&d, AN_WINO_FORWARD, io->prepared_floats ? io->prepared.off : col, col, wino_fwd, out, n, max);
  const size_t filters = an_wino_filter_floats(&d);
  if (passes & AN_PASS_BACKWARD && wino_dw)
    for (int n0 = 0; n0 < d.n; n0 += wino_dw)
      n = an_wino_weight_gemms(&d, col, col + 2 * filters, d.n - n0 < wino_dw ? d.n - n0 : wino_dw, wino_dinp != 0,
                               col + filters, out, n, max);
  const size_t fixed = k_pad_fixed(&d), kp_g = fixed ? k_padded(&d) : ckk_g; /* the forward's reduction */
  for (int n0 = 0; n0 < d.n; n0 += chunk) { /* per chunk: forward, then the weight and input gradients */
    const size_t ncols = (size_t)(d.n - n0 < chunk ? d.n - n0 : chunk) * ohw;
    const size_t ybuf = col + ckk_g * d.groups * ncols, col_f = col + fixed,
                 ybuf_f = col_f + kp_g * d.groups * ncols;
    if (passes & AN_PASS_FORWARD && !wino_fwd && phase(io->rt, &d)) {
      const int nb = d.n - n0 < chunk ? d.n - n0 : chunk;
      if (n < max) out[n] = an_conv_phase_call(&d, w, col, io->out.off, n0, nb);
      n++;
    } else if (passes & AN_PASS_FORWARD && !wino_fwd)
      for (int g = 0; g < d.groups; g++)
        n = an_gemm_call_add(out, n, max, 0, 0, oc_g, ncols, kp_g, fixed ? col : w + g * oc_g * ckk_g, kp_g,
                             col_f + g * kp_g * ncols, ncols, ybuf_f + g * oc_g * ncols, ncols);
    if (!(passes & AN_PASS_BACKWARD)) continue;
    if (!wino_dw && phase_dw(io->rt, &d, io->dinp.mem != NULL)) {
      if (n < max) out[n] = an_conv_phase_dw_call(&d, col, io->dweight.off, (int)(ncols / ohw));
      n++;
      continue;
    }
    const size_t width = an_gemm_dw_slice(io->rt, oc_g, ckk_g, ncols);
    for (int g = 0; g < d.groups && !wino_dw; g++)
      for (size_t j0 = 0; j0 < ncols; j0 += width)
        n = an_gemm_call_add(out, n, max, 0, 1, oc_g, ckk_g, ncols - j0 < width ? ncols - j0 : width,
                             ybuf + g * oc_g * ncols + j0, ncols, col + g * ckk_g * ncols + j0, ncols,
                             io->dweight.off + g * oc_g * ckk_g, ckk_g);
    if (!io->dinp.mem || wino_dinp) continue;
    for (int g = 0; g < d.groups; g++)
      n = an_gemm_call_add(out, n, max, 1, 0, ckk_g, ncols, oc_g, w + g * oc_g * ckk_g, ckk_g,
                           ybuf + g * oc_g * ncols, ncols, col + g * ckk_g * ncols, ncols);
  }
  if (passes & AN_PASS_BACKWARD && wino_dinp && !wino_dw)
    n = wino_gemms(&d, AN_WINO_BACKWARD_DATA, col, col, wino_dinp, out, n, max);
  return n;
}

static an_status conv_forward_io(const an_layer_io *io) {
  const an_conv_dims d = an_layer_conv_dims(io->L, io->n);
  return an_conv_forward_prepared(io->rt, &d, io->out, io->in, io->weight, io->bias, io->L->desc->relu, io->work,
                                  io->work_floats, io->prepared_floats ? io->prepared : an_at(NULL, 0));
}

static an_status conv_backward_io(const an_layer_io *io) {
  const an_conv_dims d = an_layer_conv_dims(io->L, io->n);
  return an_conv_backward(io->rt, &d, io->dinp, io->dweight, io->dbias, io->dout, io->out, io->in, io->weight,
                          io->L->desc->relu, io->work, io->work_floats);
}

const an_layer_ops an_conv_ops = {"conv",     conv_out_shape,  conv_param_shapes,
                                  conv_gemms, conv_forward_io, conv_backward_io};
