/* Fully connected, forward and backward, on CLBlast's GEMM; weight in PyTorch's (OUT, IN) layout.
 * Forward   out = act(inp · Wᵀ + b)
 * Backward  dout ⊙= [out > 0] (relu),  dW += doutᵀ · inp,  db += Σ_n dout,  dinp = dout · W
 * A NULL bias mem is an fc without bias (no ReLU then): a split's partial fc8.
 * Inference stores the weight transposed, (IN, OUT_pad), in a buffer of its own (see infer.c): then
 * Forward   out (N, OUT_pad) = act(inp · W + b), one NN GEMM that reads W in place.
 * Or, where the project's GEMM runs and the batch fills most of its 64 columns, W (OUT, IN) packed as
 * that GEMM's A (an_fc_packed_applies): ct (OUT, n_pad) = W · inpᵀ, then out = act(ctᵀ + b). The weight
 * then streams through the GEMM once, in order, and the batch's columns stay in cache, where the
 * (N, IN) · (IN, OUT) product reads the weight's rows at a 4-16 KiB stride. */
#include "alexnet/layers.h"
#include "runtime/check.h"
#include "runtime/launch.h"
#include "gemm/gemm.h"
#include "layers/ops.h"

an_status an_fc_forward(an_runtime *rt, int n, int in, int out_features, an_buf out, an_buf inp, an_buf weight,
                        an_buf bias, int relu) {
  if (n < 1 || in < 1 || out_features < 1)
    return AN_FAIL(AN_ERR_ARGUMENT, "fc %d x %d -> %d is not valid", n, in, out_features);
  if (!bias.mem && relu) return AN_FAIL(AN_ERR_ARGUMENT, "fc without a bias takes no ReLU");
  AN_TRY(an_gemm(rt, 0, 1, (size_t)n, (size_t)out_features, (size_t)in, 1.0f, inp, (size_t)in, weight, (size_t)in,
                 0.0f, out, (size_t)out_features));
  if (!bias.mem) return AN_OK;
  const size_t global = (size_t)n * out_features;
  const an_arg args[] = {an_arg_mem(out.mem),    an_arg_ulong(out.off),    an_arg_mem(bias.mem),
                         an_arg_ulong(bias.off), an_arg_int(out_features), an_arg_int(relu != 0)};
  return an_launch(rt, "bias_act", 1, &global, NULL, args);
}

an_status an_fc_backward(an_runtime *rt, int n, int in, int out_features, an_buf dinp, an_buf dweight, an_buf dbias,
                         an_buf dout, an_buf out, an_buf inp, an_buf weight, int relu) {
  if (n < 1 || in < 1 || out_features < 1)
    return AN_FAIL(AN_ERR_ARGUMENT, "fc %d x %d -> %d is not valid", n, in, out_features);
  if (relu) {
    const size_t global = (size_t)n * out_features;
    const an_arg args[] = {an_arg_mem(dout.mem), an_arg_ulong(dout.off), an_arg_mem(out.mem), an_arg_ulong(out.off)};
    AN_TRY(an_launch(rt, "relu_mask", 1, &global, NULL, args));
  }
  if (dbias.mem) {
    const size_t global = (size_t)out_features;
    const an_arg args[] = {an_arg_mem(dout.mem),     an_arg_ulong(dout.off), an_arg_int(n),
                           an_arg_int(out_features), an_arg_mem(dbias.mem),  an_arg_ulong(dbias.off)};
    AN_TRY(an_launch(rt, "colsum_add", 1, &global, NULL, args));
  }
  AN_TRY(an_gemm(rt, 1, 0, (size_t)out_features, (size_t)in, (size_t)n, 1.0f, dout, (size_t)out_features, inp,
                 (size_t)in, 1.0f, dweight, (size_t)in));
  if (dinp.mem)
    AN_TRY(an_gemm(rt, 0, 0, (size_t)n, (size_t)in, (size_t)out_features, 1.0f, dout, (size_t)out_features, weight,
                   (size_t)in, 0.0f, dinp, (size_t)in));
  return AN_OK;
}

/* out (N, OUT_pad) = act(inp (N, IN) · weight (IN, OUT_pad) + bias (OUT_pad)): inference's layout. */
an_status an_fc_forward_in_out(an_runtime *rt, int n, int in, int out_pad, an_buf out, an_buf inp, an_buf weight,
                               an_buf bias, int relu) {
  if (n < 1 || in < 1 || out_pad < 1)
    return AN_FAIL(AN_ERR_ARGUMENT, "fc %d x %d -> %d is not valid", n, in, out_pad);
  const size_t k = (size_t)in, o = (size_t)out_pad;
  AN_TRY(an_gemm(rt, 0, 0, (size_t)n, o, k, 1.0f, inp, k, weight, o, 0.0f, out, o));
  const size_t global = (size_t)n * o;
  const an_arg args[] = {an_arg_mem(out.mem),    an_arg_ulong(out.off), an_arg_mem(bias.mem),
                         an_arg_ulong(bias.off), an_arg_int(out_pad),   an_arg_int(relu != 0)};
  return an_launch(rt, "bias_act", 1, &global, NULL, args);
}

static size_t round64(size_t n) { return (n + 63) / 64 * 64; }

int an_fc_packed_applies(const an_runtime *rt, int n) {
  return rt->own_gemm && n >= 1 && (size_t)n * 4 >= round64((size_t)n) * 3; /* 3/4 of the columns used */
}

size_t an_fc_packed_work_floats(int n, int in, int out_features) {
  return round64((size_t)n) * ((size_t)in + (size_t)out_features);
}

/* The packed path's buffers in work: xt (IN, n_pad), then ct (OUT, n_pad) */
static void packed_layout(int n, int in, an_buf work, an_buf *xt, an_buf *ct) {
  *xt = work, *ct = an_at(work.mem, work.off + (size_t)in * round64((size_t)n));
}

an_status an_fc_forward_packed(an_runtime *rt, int n, int in, int out_features, int out_pad, an_buf out, an_buf inp,
                               an_buf weight, an_buf bias, int relu, an_buf work, size_t work_floats) {
  if (n < 1 || in < 1 || out_features < 1 || out_pad < out_features)
    return AN_FAIL(AN_ERR_ARGUMENT, "fc %d x %d -> %d (%d stored) is not valid", n, in, out_features, out_pad);
  if (work_floats < an_fc_packed_work_floats(n, in, out_features))
    return AN_FAIL(AN_ERR_ARGUMENT, "fc workspace of %zu floats, the packed path needs %zu", work_floats,
                   an_fc_packed_work_floats(n, in, out_features));
  const size_t n_pad = round64((size_t)n);
  an_buf xt, ct;
  packed_layout(n, in, work, &xt, &ct);
  const size_t g_t[2] = {n_pad, (size_t)in};
  const an_arg t_args[] = {an_arg_mem(inp.mem), an_arg_ulong(inp.off), an_arg_mem(xt.mem),    an_arg_ulong(xt.off),
                           an_arg_int(n),       an_arg_int(in),        an_arg_int((int)n_pad)};
  AN_TRY(an_launch(rt, "fc_transpose_in", 2, g_t, NULL, t_args));
  AN_TRY(an_gemm_packed(rt, (size_t)out_features, n_pad, (size_t)in, weight, weight, (size_t)in, xt, n_pad, 0.0f, ct,
                        n_pad));
  const size_t g_o[2] = {(size_t)out_pad, (size_t)n};
  const an_arg o_args[] = {an_arg_mem(ct.mem),       an_arg_ulong(ct.off), an_arg_mem(bias.mem),
                           an_arg_ulong(bias.off),   an_arg_mem(out.mem),  an_arg_ulong(out.off),
                           an_arg_int(out_features), an_arg_int(out_pad),  an_arg_int((int)n_pad),
                           an_arg_int(relu != 0)};
  return an_launch(rt, "fc_out_transposed", 2, g_o, NULL, o_args);
}

/* ---- the layer table's entry ---- */

static int fc_out_shape(const an_layer_desc *d, int classes, const int in[3], int out[3]) {
  (void)in;
  out[0] = d->out_channels ? d->out_channels : classes, out[1] = out[2] = 1;
  return 1;
}

static int fc_param_shapes(const an_layer_desc *d, const int in[3], const int out[3], int ndim[2], int shape[2][4]) {
  ndim[0] = 2, shape[0][0] = out[0], shape[0][1] = in[0] * in[1] * in[2];
  if (d->no_bias) return 1;
  ndim[1] = 1, shape[1][0] = out[0];
  return 2;
}

static int fc_in(const an_layer_plan *L) { return L->in_c * L->in_h * L->in_w; }

/* The GEMMs of the forward and backward functions above, call for call. */
static int fc_gemms(const an_layer_io *io, int passes, an_gemm_call *out, int max) {
  const size_t b = (size_t)io->n, in = (size_t)fc_in(io->L), o = (size_t)io->L->out_c;
  int n = 0;
  if ((passes & AN_PASS_FORWARD) && io->weight_packed) {
    an_buf xt, ct;
    packed_layout(io->n, (int)in, io->work, &xt, &ct);
    const size_t n_pad = round64(b);
    n = an_gemm_call_add(out, n, max, 0, 0, o, n_pad, in, io->weight.off, in, xt.off, n_pad, ct.off, n_pad);
  } else if ((passes & AN_PASS_FORWARD) && io->weight_in_out) {
    const size_t pad = (size_t)io->out_pad;
    n = an_gemm_call_add(out, n, max, 0, 0, b, pad, in, io->in.off, in, io->weight.off, pad, io->out.off, pad);
  } else if (passes & AN_PASS_FORWARD) {
    n = an_gemm_call_add(out, n, max, 0, 1, b, o, in, io->in.off, in, io->weight.off, in, io->out.off, o);
  }
  if (!(passes & AN_PASS_BACKWARD)) return n;
  n = an_gemm_call_add(out, n, max, 1, 0, o, in, b, io->dout.off, o, io->in.off, in, io->dweight.off, in);
  if (io->dinp.mem)
    n = an_gemm_call_add(out, n, max, 0, 0, b, in, o, io->dout.off, o, io->weight.off, in, io->dinp.off, in);
  return n;
}

static an_status fc_forward_io(const an_layer_io *io) {
  if (io->weight_packed)
    return an_fc_forward_packed(io->rt, io->n, fc_in(io->L), io->L->out_c, io->out_pad, io->out, io->in, io->weight,
                                io->bias, io->L->desc->relu, io->work, io->work_floats);
  if (io->weight_in_out)
    return an_fc_forward_in_out(io->rt, io->n, fc_in(io->L), io->out_pad, io->out, io->in, io->weight, io->bias,
                                io->L->desc->relu);
  return an_fc_forward(io->rt, io->n, fc_in(io->L), io->L->out_c, io->out, io->in, io->weight, io->bias,
                       io->L->desc->relu);
}

static an_status fc_backward_io(const an_layer_io *io) {
  return an_fc_backward(io->rt, io->n, fc_in(io->L), io->L->out_c, io->dinp, io->dweight, io->dbias, io->dout,
                        io->out, io->in, io->weight, io->L->desc->relu);
}

const an_layer_ops an_fc_ops = {"fc", fc_out_shape, fc_param_shapes, fc_gemms, fc_forward_io, fc_backward_io};
