/* Layers on the device, forward and backward, fp32 NCHW.
 *
 * Every function enqueues work on rt's in-order queue and returns without waiting. Outputs come first,
 * gradients are prefixed d; weight and bias gradients are accumulated (+=), so a step zeroes them once.
 * Input gradients (dinp) are written, not accumulated; pass a NULL mem to skip them (the first layer). */
#ifndef ALEXNET_LAYERS_H
#define ALEXNET_LAYERS_H

#include <stdint.h>

#include "alexnet/runtime.h"
#include "alexnet/tune.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- convolution: batched im2col + one CLBlast GEMM per group per chunk of images; the stride-1 3x3
 * pad-1 and 5x5 pad-2 ones through Winograd F(2x2,3x3) or F(4x4,3x3), and F(4x4,5x5), as rt->winograd
 * says (layers/winograd.c) ---- */
typedef struct an_conv_dims {
  int n, c, h, w;          /* input (N, C, H, W) */
  int oc, kh, kw;          /* weight (OC, C/groups, KH, KW) */
  int stride, pad, groups; /* groups divides C and OC */
  int oh, ow;              /* output (N, OC, OH, OW); an_conv_dims_make computes them */
} an_conv_dims;

an_conv_dims an_conv_dims_make(int n, int c, int h, int w, int oc, int k, int stride, int pad, int groups);

/* Floats of workspace one chunk of `images` images needs (the forward pass, and the backward pass but
 * for Winograd's weight gradient, on either path: im2col, or Winograd's for a convolution it computes,
 * whose filters do not grow with the chunk; im2col's forward pass with a reduction C·KH·KW that is no
 * multiple of 16 holds a zero-padded copy of the weight that does not grow with it either). */
size_t an_conv_work_floats(const an_conv_dims *d, int images);
/* The same for training: Winograd's weight gradient holds one more set of transformed filters (in a
 * workspace too small for it and one image that gradient runs on im2col, the input gradient alone) */
size_t an_conv_train_work_floats(const an_conv_dims *d, int images);
/* The least workspace the convolution runs in: one image per chunk, on im2col (a workspace too small
 * for Winograd's filters and one image runs that path, whatever rt->winograd says). */
size_t an_conv_min_work_floats(const an_conv_dims *d);
/* Images per chunk for a workspace of work_floats (0 when not even one fits): the whole batch when it
 * fits, else a multiple of AN_CONV_CHUNK_ALIGN images when at least that many fit, so the GEMMs' column
 * count (images · OH·OW, OH·OW odd in AlexNet) is a multiple of CLBlast's tiles and it pads nothing. */
#define AN_CONV_CHUNK_ALIGN 32
int an_conv_chunk_images(const an_conv_dims *d, size_t work_floats);
/* 1 when the weight gradient runs on im2col (its NT slices, whose widths a tuning chooses), 0 when on
 * Winograd (rt->winograd) */
int an_conv_weight_grad_im2col(const an_runtime *rt, const an_conv_dims *d, size_t work_floats);

/* out = act(conv(inp, weight) + bias), act = ReLU when relu != 0. work holds work_floats floats; the
 * batch is processed in chunks as large as the workspace allows (at least one image must fit). */
an_status an_conv_forward(an_runtime *rt, const an_conv_dims *d, an_buf out /* (N,OC,OH,OW) */,
                          an_buf inp /* (N,C,H,W) */, an_buf weight /* (OC,C/g,KH,KW) */, an_buf bias /* (OC) */,
                          int relu, an_buf work, size_t work_floats);
/* Fixed weights (inference) transformed once instead of on every call: the floats of the forward pass's
 * prepared filters with this workspace (Winograd's transformed filters, packed as the project's GEMM reads
 * them where it runs; 0 when the forward pass does not take the Winograd path), an_conv_prepare to write
 * them (through the workspace), and the forward pass reading them (prepared.mem NULL: an_conv_forward,
 * which transforms them itself) */
size_t an_conv_prepared_floats(const an_runtime *rt, const an_conv_dims *d, size_t work_floats);
an_status an_conv_prepare(an_runtime *rt, const an_conv_dims *d, an_buf weight /* (OC,C/g,KH,KW) */,
                          an_buf prepared /* (an_conv_prepared_floats) */, an_buf work /* (work_floats) */);
an_status an_conv_forward_prepared(an_runtime *rt, const an_conv_dims *d, an_buf out /* (N,OC,OH,OW) */,
                                   an_buf inp /* (N,C,H,W) */, an_buf weight /* (OC,C/g,KH,KW) */,
                                   an_buf bias /* (OC) */, int relu, an_buf work, size_t work_floats,
                                   an_buf prepared);

/* dout is the gradient of the layer's output (after the ReLU when relu != 0; out is then that output,
 * used as the mask). dweight and dbias are accumulated; dinp written (skipped when dinp.mem is NULL). */
an_status an_conv_backward(an_runtime *rt, const an_conv_dims *d, an_buf dinp /* (N,C,H,W) */,
                           an_buf dweight /* (OC,C/g,KH,KW) */, an_buf dbias /* (OC) */,
                           an_buf dout /* (N,OC,OH,OW) */, an_buf out /* (N,OC,OH,OW) */, an_buf inp /* (N,C,H,W) */,
                           an_buf weight /* (OC,C/g,KH,KW) */, int relu, an_buf work, size_t work_floats);

/* ---- fully connected: out = act(inp · weightᵀ + bias), weight in PyTorch's (OUT, IN) layout ---- */
an_status an_fc_forward(an_runtime *rt, int n, int in, int out_features, an_buf out /* (N,OUT) */,
                        an_buf inp /* (N,IN) */, an_buf weight /* (OUT,IN) */, an_buf bias /* (OUT) */, int relu);

/* Inference's layout: out (N, OUT_pad) = act(inp · weight + bias), weight (IN, OUT_pad), bias (OUT_pad). */
an_status an_fc_forward_in_out(an_runtime *rt, int n, int in, int out_pad, an_buf out /* (N,OUT_pad) */,
                               an_buf inp /* (N,IN) */, an_buf weight /* (IN,OUT_pad) */,
                               an_buf bias /* (OUT_pad) */, int relu);

/* Inference on the project's GEMM (where an_fc_packed_applies: rt->own_gemm, and the batch fills 3/4 of
 * the GEMM's 64-column strips): weight (OUT, IN) packed as its A (an_panel_pack_host, gemm/gemm.h);
 * out (N, OUT_pad) = act(inp · weightᵀ + bias), 0 in the columns past OUT, through work (at least
 * an_fc_packed_work_floats: the input transposed and the product, 64-column padded) */
int an_fc_packed_applies(const an_runtime *rt, int n);
size_t an_fc_packed_work_floats(int n, int in, int out_features);
an_status an_fc_forward_packed(an_runtime *rt, int n, int in, int out_features, int out_pad,
                               an_buf out /* (N,OUT_pad) */, an_buf inp /* (N,IN) */, an_buf weight /* packed */,
                               an_buf bias /* (OUT_pad) */, int relu, an_buf work, size_t work_floats);

/* With relu != 0, dout is overwritten in place by the gradient before the ReLU (masked by out > 0). */
an_status an_fc_backward(an_runtime *rt, int n, int in, int out_features, an_buf dinp /* (N,IN) */,
                         an_buf dweight /* (OUT,IN) */, an_buf dbias /* (OUT) */, an_buf dout /* (N,OUT) */,
                         an_buf out /* (N,OUT) */, an_buf inp /* (N,IN) */, an_buf weight /* (OUT,IN) */, int relu);

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
                          an_buf dinp /* (N,C,H,W) */, an_buf dout /* (N,C,H,W) */, an_buf out /* (N,C,H,W) */,
                          an_buf scale /* (N,C,H,W) */, an_buf inp /* (N,C,H,W) */);

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
an_status an_dropout_forward(an_runtime *rt, size_t count, float p, uint64_t key, uint64_t first, an_buf out,
                             an_buf inp);
an_status an_dropout_backward(an_runtime *rt, size_t count, float p, uint64_t key, uint64_t first, an_buf dinp,
                              an_buf dout);

/* ---- softmax cross-entropy, mean over the batch: loss (1 float) and dlogits = (softmax - onehot)/N.
 *      labels is a device buffer of N ints in [0, classes); per_sample holds N floats of scratch ---- */
an_status an_softmax_xent(an_runtime *rt, int n, int classes, an_buf loss /* (1) */, an_buf dlogits /* (N,K) */,
                          an_buf per_sample /* (N) */, an_buf logits /* (N,K) */, cl_mem labels /* (N) int */);

/* ---- SGD with momentum and weight decay, PyTorch's formulation:
 *      v = momentum·v + g + weight_decay·w;  w -= lr·v ---- */
an_status an_sgd_update(an_runtime *rt, size_t count, float lr, float momentum, float weight_decay, an_buf weight,
                        an_buf grad, an_buf velocity);

/* ---- a layer as a model table describes it (src/model/models.c) ---- */
typedef enum an_layer_kind {
  AN_LAYER_CONV,
  AN_LAYER_LRN,
  AN_LAYER_MAXPOOL,
  AN_LAYER_AVGPOOL,
  AN_LAYER_DROPOUT,
  AN_LAYER_FC,
  /* exchanges of a column model (one device's half of a two-device split; see split.h): */
  AN_LAYER_GATHER, /* output (N, 2C, H, W) = both columns' inputs (N, C, H, W), column 0's channels first */
  AN_LAYER_SUM     /* output (N, K) = column 0's input + column 1's input + bias (the split-K fc8) */
} an_layer_kind;

/* How a column model's tensor maps onto the full model's tensor of the same name. */
typedef enum an_slice_kind {
  AN_SLICE_NONE, /* the whole tensor, the same on both devices */
  AN_SLICE_ROWS, /* column k holds rows [k·R, (k+1)·R) of the first dimension (output channels/neurons) */
  AN_SLICE_COLS  /* column k holds columns [k·C, (k+1)·C) of a 2-D weight (input features) */
} an_slice_kind;

typedef enum an_init_kind {
  AN_INIT_NONE,            /* layers without parameters */
  AN_INIT_NORMAL,          /* weight ~ N(0, weight_std), bias = bias_value (the paper; linear of half) */
  AN_INIT_KAIMING_FAN_OUT, /* weight ~ N(0, sqrt(2 / (OC·KH·KW))), bias = bias_value */
  AN_INIT_TORCH_DEFAULT    /* weight, bias ~ U(±1/sqrt(fan_in)): PyTorch's default, torchvision's */
} an_init_kind;

typedef struct an_layer_desc {
  an_layer_kind kind;
  const char *name; /* state_dict prefix of the parameters ("features.0"), NULL without any */
  int out_channels; /* conv, fc; 0 on the last fc means "the number of classes" */
  int kernel, stride, pad, groups;
  int relu;          /* conv, fc: a ReLU follows (fused into the layer) */
  an_lrn_params lrn; /* lrn */
  float dropout_p;   /* dropout */
  int out_hw;        /* adaptive average pool output side */
  an_init_kind init;
  float weight_std, bias_value;
  an_slice_kind slice; /* column models only */
  int no_bias;         /* fc without a bias (column model's split-K fc8: the SUM layer owns the bias) */
} an_layer_desc;

/* One layer as planned: its shapes, where its output lives, which tensors it owns. */
typedef struct an_layer_plan {
  const an_layer_desc *desc;
  int in_c, in_h, in_w, out_c, out_h, out_w;
  size_t in_off, out_off, aux_off; /* activations buffer, floats; aux = LRN scale, max-pool argmax */
  int weight, bias;                /* tensor indices, -1 when none */
  int key_index;                   /* the layer's index in the single-device model (dropout keys) */
} an_layer_plan;


/* ---- the layer table: each kind of layer is one entry (src/layers/layer.c) that the planner, the
 *      executor, the tuner, bench and inference all read ---- */

enum { AN_PASS_FORWARD = 1, AN_PASS_BACKWARD = 2 };

/* One layer's buffers for one pass. A NULL mem means "none": aux (inference keeps no LRN scale and no
 * max-pool argmax), bias (the split's fc8 partial), dinp (the first layer computes no input gradient). */
typedef struct an_layer_io {
  an_runtime *rt;
  const an_layer_plan *L;
  int n;               /* batch */
  an_buf in, out, aux; /* (N, in_c, in_h, in_w), (N, out_c, out_h, out_w), (N, out_c, ...) */
  an_buf weight, bias; /* the layer's parameters */
  int weight_in_out;   /* fc: weight stored (IN, out_pad) rather than PyTorch's (OUT, IN) */
  int out_pad;         /* fc with weight_in_out: the stored output width (>= out_c) */
  int weight_packed;   /* fc, inference: weight (OUT, IN) packed as the project's GEMM's A (an_fc_forward_packed) */
  an_buf dinp, dout, dweight, dbias;
  an_buf work; /* (work_floats) the im2col workspace */
  size_t work_floats;
  an_buf prepared;        /* conv, inference: the filters an_conv_prepare wrote there, when prepared_floats */
  size_t prepared_floats; /* (an_conv_prepared_floats) 0: none, the forward pass transforms them itself */
  int dropout_active;     /* dropout: draw masks (training) or pass through */
  uint64_t dropout_key, dropout_first;
} an_layer_io;

typedef struct an_layer_ops {
  const char *name;
  /* The shape rule: the output (c, h, w) of an input (c, h, w); 0 when the input is too small. */
  int (*out_shape)(const an_layer_desc *d, int classes, const int in[3], int out[3]);
  /* The parameters' shapes (weight first, then bias; ndim 0 = none); returns how many. */
  int (*param_shapes)(const an_layer_desc *d, const int in[3], const int out[3], int ndim[2], int shape[2][4]);
  /* The GEMMs the layer's passes issue, in order, for io's shapes and offsets (buffers may be NULL:
   * only offsets are read); fills up to max and returns how many there are. NULL: none. */
  int (*gemms)(const an_layer_io *io, int passes, an_gemm_call *out, int max);
  /* NULL for the exchanges (GATHER, SUM), which the two-device split runs itself. */
  an_status (*forward)(const an_layer_io *io);
  an_status (*backward)(const an_layer_io *io);
} an_layer_ops;

const an_layer_ops *an_layer_ops_of(an_layer_kind kind);
/* The dispatch every executor goes through: the kind's forward or backward, or an error naming the
 * layer when the kind has none. */
an_status an_layer_forward(const an_layer_io *io);
an_status an_layer_backward(const an_layer_io *io);
/* FLOPs of the layer's GEMMs in passes (2·m·n·k each, as the layer table lists them; 0 without GEMMs):
 * what `alexnet bench` counts (the other layers move memory) */
double an_layer_gemm_flops(const an_layer_io *io, int passes);
/* The convolution dims of a planned conv layer at batch n. */
an_conv_dims an_layer_conv_dims(const an_layer_plan *L, int n);

#ifdef __cplusplus
}
#endif
#endif
