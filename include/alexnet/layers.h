/* Layers on the device, forward and backward, fp32 NCHW.
 *
 * Every function enqueues work on rt's in-order queue and returns without waiting. Outputs come first,
 * gradients are prefixed d; weight and bias gradients are accumulated (+=), so a step zeroes them once.
 * Input gradients (dinp) are written, not accumulated; pass a NULL mem to skip them (the first layer). */
#ifndef ALEXNET_LAYERS_H
#define ALEXNET_LAYERS_H

#include <stdint.h>

#include "alexnet/runtime.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- convolution: batched im2col + one CLBlast GEMM per group per chunk of images ---- */
typedef struct an_conv_dims {
  int n, c, h, w;          /* input (N, C, H, W) */
  int oc, kh, kw;          /* weight (OC, C/groups, KH, KW) */
  int stride, pad, groups; /* groups divides C and OC */
  int oh, ow;              /* output (N, OC, OH, OW); an_conv_dims_make computes them */
} an_conv_dims;

an_conv_dims an_conv_dims_make(int n, int c, int h, int w, int oc, int k, int stride, int pad, int groups);

/* Floats of workspace one chunk of `images` images needs (forward and backward alike). */
size_t an_conv_work_floats(const an_conv_dims *d, int images);
/* Images per chunk for a workspace of work_floats (0 when not even one fits): the whole batch when it
 * fits, else a multiple of AN_CONV_CHUNK_ALIGN images when at least that many fit, so the GEMMs' column
 * count (images · OH·OW, OH·OW odd in AlexNet) is a multiple of CLBlast's tiles and it pads nothing. */
#define AN_CONV_CHUNK_ALIGN 32
int an_conv_chunk_images(const an_conv_dims *d, size_t work_floats);
/* Columns per weight-gradient GEMM: the backward pass splits the reduction over a chunk's output pixels
 * into slices this wide, accumulated with beta = 1 (see conv.c), unless the device's tuning chose a
 * width for that reduction (an_gemm_dw_slice). */
#define AN_CONV_DW_SLICE ((size_t)1024)

/* out = act(conv(inp, weight) + bias), act = ReLU when relu != 0. work holds work_floats floats; the
 * batch is processed in chunks as large as the workspace allows (at least one image must fit). */
an_status an_conv_forward(an_runtime *rt, const an_conv_dims *d, an_buf out /* (N,OC,OH,OW) */,
                          an_buf inp /* (N,C,H,W) */, an_buf weight /* (OC,C/g,KH,KW) */,
                          an_buf bias /* (OC) */, int relu, an_buf work, size_t work_floats);

/* dout is the gradient of the layer's output (after the ReLU when relu != 0; out is then that output,
 * used as the mask). dweight and dbias are accumulated; dinp written (skipped when dinp.mem is NULL). */
an_status an_conv_backward(an_runtime *rt, const an_conv_dims *d, an_buf dinp /* (N,C,H,W) */,
                           an_buf dweight /* (OC,C/g,KH,KW) */, an_buf dbias /* (OC) */,
                           an_buf dout /* (N,OC,OH,OW) */, an_buf out /* (N,OC,OH,OW) */,
                           an_buf inp /* (N,C,H,W) */, an_buf weight /* (OC,C/g,KH,KW) */, int relu,
                           an_buf work, size_t work_floats);

/* ---- fully connected: out = act(inp · weightᵀ + bias), weight in PyTorch's (OUT, IN) layout ---- */
an_status an_fc_forward(an_runtime *rt, int n, int in, int out_features, an_buf out /* (N,OUT) */,
                        an_buf inp /* (N,IN) */, an_buf weight /* (OUT,IN) */, an_buf bias /* (OUT) */,
                        int relu);

/* With relu != 0, dout is overwritten in place by the gradient before the ReLU (masked by out > 0). */
an_status an_fc_backward(an_runtime *rt, int n, int in, int out_features, an_buf dinp /* (N,IN) */,
                         an_buf dweight /* (OUT,IN) */, an_buf dbias /* (OUT) */,
                         an_buf dout /* (N,OUT) */, an_buf out /* (N,OUT) */, an_buf inp /* (N,IN) */,
                         an_buf weight /* (OUT,IN) */, int relu);

/* ---- local response normalisation across channels, as torch.nn.LocalResponseNorm:
 *      out = x / (k + alpha/size · Σ x²)^beta over channels [c - size/2, c + (size-1)/2] ---- */
typedef struct an_lrn_params {
  int size;
  float alpha, beta, k;
} an_lrn_params;

an_status an_lrn_forward(an_runtime *rt, int n, int c, int h, int w, const an_lrn_params *p,
                         an_buf out /* (N,C,H,W) */, an_buf scale /* (N,C,H,W) k + alpha/size·Σx² */,
                         an_buf inp /* (N,C,H,W) */);
/* Inference: the same out, no scale kept (nothing runs backward) */
an_status an_lrn_forward_infer(an_runtime *rt, int n, int c, int h, int w, const an_lrn_params *p,
                               an_buf out /* (N,C,H,W) */, an_buf inp /* (N,C,H,W) */);
an_status an_lrn_backward(an_runtime *rt, int n, int c, int h, int w, const an_lrn_params *p,
                          an_buf dinp /* (N,C,H,W) */, an_buf dout /* (N,C,H,W) */,
                          an_buf out /* (N,C,H,W) */, an_buf scale /* (N,C,H,W) */,
                          an_buf inp /* (N,C,H,W) */);

/* ---- max-pool (no padding, floor mode; ties go to the first element in row-major window order, as
 *      PyTorch's CPU kernel) and adaptive average pool (PyTorch's window bounds). The forward pass
 *      records each window's argmax (its index y·W + x in the input plane, as int32 bits in a float
 *      buffer) for the backward pass ---- */
an_status an_maxpool_forward(an_runtime *rt, int n, int c, int h, int w, int k, int stride,
                             an_buf out /* (N,C,OH,OW) */, an_buf argmax /* (N,C,OH,OW) int32 */,
                             an_buf inp /* (N,C,H,W) */);
/* Inference: the same out, no argmax kept */
an_status an_maxpool_forward_infer(an_runtime *rt, int n, int c, int h, int w, int k, int stride,
                                   an_buf out /* (N,C,OH,OW) */, an_buf inp /* (N,C,H,W) */);
an_status an_maxpool_backward(an_runtime *rt, int n, int c, int h, int w, int k, int stride,
                              an_buf dinp /* (N,C,H,W) */, an_buf dout /* (N,C,OH,OW) */,
                              an_buf argmax /* (N,C,OH,OW) int32 */);
static inline int an_pool_out(int size, int k, int stride) { return (size - k) / stride + 1; }

an_status an_avgpool_forward(an_runtime *rt, int n, int c, int h, int w, int oh, int ow,
                             an_buf out /* (N,C,OH,OW) */, an_buf inp /* (N,C,H,W) */);
an_status an_avgpool_backward(an_runtime *rt, int n, int c, int h, int w, int oh, int ow,
                              an_buf dinp /* (N,C,H,W) */, an_buf dout /* (N,C,OH,OW) */);

/* ---- dropout: element i of a step is kept when uniform(key, i) >= p and then scaled by 1/(1-p);
 *      key = an_dropout_key(seed, step, layer), so masks are reproducible and never stored ---- */
uint64_t an_dropout_key(uint64_t seed, uint64_t step, uint32_t layer);
/* The uniform in [0, 1) the kernels draw for element i (the host copy, for references). */
float an_dropout_uniform(uint64_t key, uint64_t i);
/* Element j of the buffers draws uniform(key, first + j): first is the buffer's offset in the step's
 * whole tensor (0 unless the batch is split across devices). */
an_status an_dropout_forward(an_runtime *rt, size_t count, float p, uint64_t key, uint64_t first,
                             an_buf out, an_buf inp);
an_status an_dropout_backward(an_runtime *rt, size_t count, float p, uint64_t key, uint64_t first,
                              an_buf dinp, an_buf dout);

/* ---- softmax cross-entropy, mean over the batch: loss (1 float) and dlogits = (softmax - onehot)/N.
 *      labels is a device buffer of N ints in [0, classes); per_sample holds N floats of scratch ---- */
an_status an_softmax_xent(an_runtime *rt, int n, int classes, an_buf loss /* (1) */,
                          an_buf dlogits /* (N,K) */, an_buf per_sample /* (N) */,
                          an_buf logits /* (N,K) */, cl_mem labels /* (N) int */);

/* ---- SGD with momentum and weight decay, PyTorch's formulation:
 *      v = momentum·v + g + weight_decay·w;  w -= lr·v ---- */
an_status an_sgd_update(an_runtime *rt, size_t count, float lr, float momentum, float weight_decay,
                        an_buf weight, an_buf grad, an_buf velocity);

#ifdef __cplusplus
}
#endif
#endif
