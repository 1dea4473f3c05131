/* The layer table: each kind of layer is one entry (its shape rule, its parameters, the GEMMs it issues
 * as data, forward, backward), defined beside its kernels' host code in this folder. The planner, the
 * executors (training and inference), the tuner, bench and the GEMM-list test all read these entries. */
#include <stdlib.h>

#include "alexnet/layers.h"
#include "layers/ops.h"
#include "runtime/check.h"

an_status an_copy_floats(an_runtime *rt, an_buf dst, an_buf src, size_t count) {
  AN_CL_RETURN(clEnqueueCopyBuffer(rt->queue, src.mem, dst.mem, src.off * sizeof(float), dst.off * sizeof(float),
                                   count * sizeof(float), 0, NULL, NULL));
  return AN_OK;
}

/* The exchanges of a column model: their shapes and the SUM's bias, no passes (the split runs them). */
static int gather_out_shape(const an_layer_desc *d, int classes, const int in[3], int out[3]) {
  (void)d, (void)classes;
  out[0] = 2 * in[0], out[1] = in[1], out[2] = in[2];
  return 1;
}

static int sum_out_shape(const an_layer_desc *d, int classes, const int in[3], int out[3]) {
  (void)d, (void)classes;
  out[0] = in[0], out[1] = in[1], out[2] = in[2];
  return 1;
}

static int sum_param_shapes(const an_layer_desc *d, const int in[3], const int out[3], int ndim[2],
                            int shape[2][4]) {
  (void)d, (void)in;
  ndim[0] = 0, ndim[1] = 1, shape[1][0] = out[0]; /* a bias alone */
  return 2;
}

static const an_layer_ops gather_ops = {"gather", gather_out_shape, an_no_params, NULL, NULL, NULL};
static const an_layer_ops sum_ops = {"sum", sum_out_shape, sum_param_shapes, NULL, NULL, NULL};

const an_layer_ops *an_layer_ops_of(an_layer_kind kind) {
  switch (kind) {
    case AN_LAYER_CONV: return &an_conv_ops;
    case AN_LAYER_LRN: return &an_lrn_ops;
    case AN_LAYER_MAXPOOL: return &an_maxpool_ops;
    case AN_LAYER_AVGPOOL: return &an_avgpool_ops;
    case AN_LAYER_DROPOUT: return &an_dropout_ops;
    case AN_LAYER_FC: return &an_fc_ops;
    case AN_LAYER_GATHER: return &gather_ops;
    case AN_LAYER_SUM: return &sum_ops;
  }
  return NULL;
}

an_status an_layer_forward(const an_layer_io *io) {
  const an_layer_ops *ops = an_layer_ops_of(io->L->desc->kind);
  if (!ops || !ops->forward)
    return AN_FAIL(AN_ERR_ARGUMENT, "layer %s exchanges between devices: a split runs it", ops ? ops->name : "?");
  return ops->forward(io);
}

an_status an_layer_backward(const an_layer_io *io) {
  const an_layer_ops *ops = an_layer_ops_of(io->L->desc->kind);
  if (!ops || !ops->backward)
    return AN_FAIL(AN_ERR_ARGUMENT, "layer %s exchanges between devices: a split runs it", ops ? ops->name : "?");
  return ops->backward(io);
}

double an_layer_gemm_flops(const an_layer_io *io, int passes) {
  const an_layer_ops *ops = an_layer_ops_of(io->L->desc->kind);
  if (!ops || !ops->gemms) return 0;
  const int total = ops->gemms(io, passes, NULL, 0);
  an_gemm_call *calls = malloc((size_t)(total ? total : 1) * sizeof *calls); /* (total) */
  double flop = 0;
  if (!calls) return 0;
  ops->gemms(io, passes, calls, total);
  for (int j = 0; j < total; j++) flop += 2.0 * calls[j].m * calls[j].n * calls[j].k;
  free(calls);
  return flop;
}
