/* The three AlexNets as const layer tables, and a net: one model planned on a device for a batch size,
 * with parameters, gradients, momentum and activations in a few device buffers addressed by offset. */
#ifndef ALEXNET_MODEL_H
#define ALEXNET_MODEL_H

#include <stdint.h>

#include "alexnet/layers.h"
#include "alexnet/tensor.h" /* an_tensor */

#ifdef __cplusplus
extern "C" {
#endif

typedef enum an_layer_kind {
  AN_LAYER_CONV, AN_LAYER_LRN, AN_LAYER_MAXPOOL, AN_LAYER_AVGPOOL, AN_LAYER_DROPOUT, AN_LAYER_FC,
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
  const char *name;    /* state_dict prefix of the parameters ("features.0"), NULL without any */
  int out_channels;    /* conv, fc; 0 on the last fc means "the number of classes" */
  int kernel, stride, pad, groups;
  int relu;            /* conv, fc: a ReLU follows (fused into the layer) */
  an_lrn_params lrn;   /* lrn */
  float dropout_p;     /* dropout */
  int out_hw;          /* adaptive average pool output side */
  an_init_kind init;
  float weight_std, bias_value;
  an_slice_kind slice; /* column models only */
  int no_bias;         /* fc without a bias (column model's split-K fc8: the SUM layer owns the bias) */
} an_layer_desc;

typedef struct an_model_desc {
  const char *name;
  const char *summary;
  const an_layer_desc *layers;
  int n_layers;
} an_model_desc;

/* "alexnet", "alexnet-half" or "alexnet-tv"; NULL when unknown. */
const an_model_desc *an_model_find(const char *name);
const an_model_desc *an_model_at(int i); /* NULL past the last */
/* The column model of a two-column model (alexnet: one device's half, with GATHER and SUM layers where
 * the paper's GPUs communicate); NULL for single-column models. */
const an_model_desc *an_model_column(const an_model_desc *model);

/* One layer as planned: its shapes, where its output lives, which tensors it owns. */
typedef struct an_layer_plan {
  const an_layer_desc *desc;
  int in_c, in_h, in_w, out_c, out_h, out_w;
  size_t in_off, out_off, aux_off; /* activations buffer, floats; aux = LRN scale, max-pool argmax */
  int weight, bias;                /* tensor indices, -1 when none */
  int key_index;                   /* the layer's index in the single-device model (dropout keys) */
} an_layer_plan;

typedef struct an_net {
  an_runtime *rt;
  const an_model_desc *model;
  int batch, classes, input_hw;
  an_layer_plan *layers; /* model->n_layers */
  an_tensor *tensors;
  int n_tensors;
  size_t n_params;
  cl_mem params, grads, momentum;   /* (n_params) each */
  cl_mem acts;                      /* input, every layer's output, LRN scales */
  cl_mem dacts;                     /* two gradient regions of the largest activation, ping-pong */
  cl_mem work;                      /* im2col workspace */
  cl_mem labels;                    /* (N) int */
  cl_mem loss;                      /* loss (1), per-sample losses (N) */
  size_t act_floats, dact_floats, work_floats, max_act_floats;
  size_t logits_off;                /* (N, classes) in acts */
  int dropout_active;               /* set by the last forward: the backward pass follows it */
  int sample_base;                  /* this net's first sample in the step's batch (a data-parallel split's
                                       second device): dropout draws the unsplit batch's masks */
} an_net;

/* Plans model for a batch and input side (224 for the paper; others use the adaptive pool) and
 * allocates its buffers. AN_ERR_DEVICE_MEMORY, with the bytes needed, when it does not fit. */
an_status an_net_create(an_runtime *rt, const char *model, int classes, int batch, int input_hw,
                        an_net **out);
void an_net_destroy(an_net *net);
/* The plan only (shapes and the tensor table), with no runtime and no device buffers: the full model's
 * layout for a split, checkpoints and tests. Destroy with an_net_destroy. */
an_status an_net_plan(const char *model, int classes, int batch, int input_hw, an_net **out);
/* The same for a given layer table (a column model). */
an_status an_net_plan_desc(const an_model_desc *model, int classes, int batch, int input_hw, an_net **out);
/* an_net_create for a given layer table. */
an_status an_net_create_desc(an_runtime *rt, const an_model_desc *model, int classes, int batch, int input_hw,
                             an_net **out);
/* Index of the tensor named `name`, -1 when none. */
int an_net_find_tensor(const an_net *net, const char *name);

/* Device bytes the net's buffers take, with the GEMM scratch reserved for it on the runtime. */
size_t an_net_device_bytes(const an_net *net);

/* Initialises every parameter with the model's scheme from seed (host RNG, then one upload) and zeroes
 * the momentum. */
an_status an_net_init(an_net *net, uint64_t seed);
/* The same numbers into a host array of n_params floats (a plan without device buffers will do). */
void an_net_init_host(const an_net *net, uint64_t seed, float *host);

/* Uploads a batch: images (N, 3, H, W) float, labels (N) in [0, classes). */
an_status an_net_set_batch(an_net *net, const float *images, const int *labels);

/* Enqueues the forward pass and the loss. train != 0: dropout active, its masks keyed by (seed, step,
 * layer); train == 0: dropout is the identity (evaluation, or checks against PyTorch with dropout off).
 * The backward pass follows the mode of the last forward. */
an_status an_net_forward(an_net *net, int train, uint64_t seed, uint64_t step);
/* Enqueues the backward pass: zeroes the gradients, then every layer from the loss down. */
an_status an_net_backward(an_net *net, uint64_t seed, uint64_t step);

/* The pieces of forward and backward, for a split that interleaves two nets with exchanges between
 * them. Layers [from, to) forward, in order; the exchange layers (GATHER, SUM) are the split's and are
 * refused here. */
an_status an_net_forward_layers(an_net *net, int from, int to, uint64_t seed, uint64_t step);
an_status an_net_loss(an_net *net); /* softmax cross-entropy of the logits; writes dlogits */
an_status an_net_zero_grads(an_net *net);
/* Layers [from, to) backward, from to-1 down to from. */
an_status an_net_backward_layers(an_net *net, int from, int to, uint64_t seed, uint64_t step);
/* The dacts offsets of layer i's output gradient and input gradient during the backward pass. */
size_t an_net_dout_off(const an_net *net, int i);
size_t an_net_dinp_off(const an_net *net, int i);

typedef struct an_sgd_params {
  float lr, momentum, weight_decay;
  int no_bias_decay; /* 1: weight decay on weights only */
} an_sgd_params;

an_status an_net_sgd(an_net *net, const an_sgd_params *p);

/* One training step: upload, forward, backward, SGD, then the only wait: reading the loss back.
 * A NaN or Inf loss is AN_ERR_NOT_FINITE. */
an_status an_net_train_step(an_net *net, const float *images, const int *labels,
                            const an_sgd_params *p, uint64_t seed, uint64_t step, float *loss);

an_status an_net_read_loss(an_net *net, float *loss);
an_status an_net_read_logits(an_net *net, float *logits /* (N, classes) */);
/* Whole parameter / gradient / momentum buffers to and from the host (n_params floats). */
an_status an_net_read_params(an_net *net, float *params);
an_status an_net_write_params(an_net *net, const float *params);
an_status an_net_read_grads(an_net *net, float *grads);

#ifdef __cplusplus
}
#endif
#endif
