/* Fully connected, forward and backward, on CLBlast's GEMM; weight in PyTorch's (OUT, IN) layout.
 * Forward   out = act(inp · Wᵀ + b)
 * Backward  dout ⊙= [out > 0] (relu),  dW += doutᵀ · inp,  db += Σ_n dout,  dinp = dout · W
 * A NULL bias mem is an fc without bias (no ReLU then): a split's partial fc8. */
#include "alexnet/layers.h"
#include "runtime/check.h"
#include "runtime/launch.h"
#include "gemm/gemm.h"

an_status an_fc_forward(an_runtime *rt, int n, int in, int out_features, an_buf out, an_buf inp,
                        an_buf weight, an_buf bias, int relu) {
  if (n < 1 || in < 1 || out_features < 1)
    return an_error(AN_ERR_ARGUMENT, __FILE__, __LINE__, "fc %d x %d -> %d is not valid", n, in, out_features);
  if (!bias.mem && relu)
    return an_error(AN_ERR_ARGUMENT, __FILE__, __LINE__, "fc without a bias takes no ReLU");
  AN_TRY(an_gemm(rt, 0, 1, (size_t)n, (size_t)out_features, (size_t)in, 1.0f, inp, (size_t)in, weight,
                 (size_t)in, 0.0f, out, (size_t)out_features));
  if (!bias.mem) return AN_OK;
  const size_t global = (size_t)n * out_features;
  const an_arg args[] = {an_arg_mem(out.mem), an_arg_ulong(out.off), an_arg_mem(bias.mem),
                         an_arg_ulong(bias.off), an_arg_int(out_features), an_arg_int(relu != 0)};
  return an_launch(rt, AN_K_BIAS_ACT, 1, &global, NULL, args);
}

an_status an_fc_backward(an_runtime *rt, int n, int in, int out_features, an_buf dinp, an_buf dweight,
                         an_buf dbias, an_buf dout, an_buf out, an_buf inp, an_buf weight, int relu) {
  if (n < 1 || in < 1 || out_features < 1)
    return an_error(AN_ERR_ARGUMENT, __FILE__, __LINE__, "fc %d x %d -> %d is not valid", n, in, out_features);
  if (relu) {
    const size_t global = (size_t)n * out_features;
    const an_arg args[] = {an_arg_mem(dout.mem), an_arg_ulong(dout.off), an_arg_mem(out.mem),
                           an_arg_ulong(out.off)};
    AN_TRY(an_launch(rt, AN_K_RELU_MASK, 1, &global, NULL, args));
  }
  if (dbias.mem) {
    const size_t global = (size_t)out_features;
    const an_arg args[] = {an_arg_mem(dout.mem), an_arg_ulong(dout.off), an_arg_int(n),
                           an_arg_int(out_features), an_arg_mem(dbias.mem), an_arg_ulong(dbias.off)};
    AN_TRY(an_launch(rt, AN_K_COLSUM_ADD, 1, &global, NULL, args));
  }
  AN_TRY(an_gemm(rt, 1, 0, (size_t)out_features, (size_t)in, (size_t)n, 1.0f, dout, (size_t)out_features,
                 inp, (size_t)in, 1.0f, dweight, (size_t)in));
  if (dinp.mem)
    AN_TRY(an_gemm(rt, 0, 0, (size_t)n, (size_t)in, (size_t)out_features, 1.0f, dout,
                   (size_t)out_features, weight, (size_t)in, 0.0f, dinp, (size_t)in));
  return AN_OK;
}
