/* Fully connected, forward and backward, on CLBlast's GEMM; weight in PyTorch's (OUT, IN) layout.
 * Forward   out = act(inp · Wᵀ + b)
 * Backward  dout ⊙= [out > 0] (relu),  dW += doutᵀ · inp,  db += Σ_n dout,  dinp = dout · W
 * A NULL bias mem is an fc without bias (no ReLU then): a split's partial fc8.
 * Inference stores the weight transposed, (IN, OUT_pad), in a buffer of its own (see infer.c): then
 * Forward   out (N, OUT_pad) = act(inp · W + b), one NN GEMM that reads W in place. */
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
  if ((passes & AN_PASS_FORWARD) && io->weight_in_out) {
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
