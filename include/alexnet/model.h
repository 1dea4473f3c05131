/* The three AlexNets as const layer tables, and a net: one model planned on a device for a batch size,
 * with parameters, gradients, momentum and activations in a few device buffers addressed by offset. */
#ifndef ALEXNET_MODEL_H
#define ALEXNET_MODEL_H

#include <stdint.h>

#include "alexnet/layers.h"
#include "alexnet/tune.h"
#include "alexnet/tensor.h" /* an_tensor */

#ifdef __cplusplus
extern "C" {
#endif

typedef struct an_model_desc {
  const char *name;
  const char *summary;
  const an_layer_desc *layers;
  int n_layers;
} an_model_desc;

/* "alexnet", "alexnet-half" or "alexnet-tv"; NULL when unknown. */
const an_model_desc *an_model_find(const char *name);
const an_model_desc *an_model_at(int i); /* NULL past the last */
/* The models' names, "alexnet, alexnet-half, alexnet-tv", for messages. */
void an_model_names(char *buf, size_t size);
/* an_model_find, or AN_ERR_UNKNOWN_MODEL naming the models there are. */
an_status an_model_lookup(const char *name, const an_model_desc **out);
/* The column model of a two-column model (alexnet: one device's half, with GATHER and SUM layers where
 * the paper's GPUs communicate); NULL for single-column models. */
const an_model_desc *an_model_column(const an_model_desc *model);

/* Which model and how many classes a weights file holds, from its tensor shapes (weights.c): a file
 * PyTorch wrote (safetensors.torch.save_file of a state_dict) has no metadata. The classes are the rows
 * of the last layer's weight; a model fits when every tensor of its table for those classes is in the
 * file, F32, in the table's shape; tensors it does not have (a checkpoint's momentum) are not looked
 * at. want (NULL: any) is the model the caller names: a file of another model is AN_ERR_ARGUMENT naming
 * want's first tensor that differs, both shapes and the model the file holds. A file that fits no model
 * is AN_ERR_ARGUMENT naming, for each model, its first tensor that does not fit. Metadata "model" and
 * "classes", when present, must agree. */
struct an_safetensors;
an_status an_model_identify(const struct an_safetensors *st, const char *want, const an_model_desc **model,
                            int *classes);
/* The same on a file. */
an_status an_model_identify_file(const char *path, const char *want, const an_model_desc **model, int *classes);

/* The one planner (plan.c): each layer's shapes (from the layer table's shape rule), its tensors (weight
 * then bias, as the parameter rule gives them) and its dropout key index; tensors hold at least 2 per
 * layer. Offsets pack the tensors in order into one parameter buffer, except fully connected weights
 * when fc_weights_apart (inference keeps each in a buffer of its own: offset 0, no room reserved).
 * AN_ERR_ARGUMENT, naming the layer, when the input is too small for it. */
an_status an_plan_layers(const an_model_desc *m, int classes, int input_hw, int fc_weights_apart,
                         an_layer_plan *layers, an_tensor *tensors, int *n_tensors, size_t *n_params);

/* The one executor (exec.c): layers [from, to) forward in order (those with skip[i] set left out; skip
 * may be NULL), or backward from to-1 down, each through an_layer_forward / an_layer_backward with the
 * buffers io_of(ctx, i) gives in the caller's layout. With marks, a profiling mark after each layer. */
typedef an_layer_io (*an_layer_io_fn)(void *ctx, int i);
an_status an_exec_forward(int from, int to, const int *skip, an_layer_io_fn io_of, void *ctx, an_runtime *marks);
an_status an_exec_backward(int from, int to, an_layer_io_fn io_of, void *ctx, an_runtime *marks);

typedef struct an_net {
  an_runtime *rt;
  const an_model_desc *model;
  int batch, classes, input_hw;
  an_layer_plan *layers; /* model->n_layers */
  an_tensor *tensors;
  int n_tensors;
  size_t n_params;
  cl_mem params, grads, momentum; /* (n_params) each */
  cl_mem acts;                    /* input, every layer's output, LRN scales */
  cl_mem dacts;                   /* two gradient regions of the largest activation, ping-pong */
  cl_mem work;                    /* im2col workspace */
  cl_mem labels;                  /* (N) int */
  cl_mem loss;                    /* loss (1), per-sample losses (N) */
  size_t act_floats, dact_floats, work_floats, max_act_floats;
  size_t logits_off;    /* (N, classes) in acts */
  int dropout_active;   /* set by the last forward: the backward pass follows it */
  int sample_base;      /* this net's first sample in the step's batch (a data-parallel split's
                                       second device): dropout draws the unsplit batch's masks */
  int frozen_below;     /* an_net_freeze: layers [0, frozen_below) fixed; 0: none */
  size_t frozen_floats; /* their parameters: the first frozen_floats of params */
  /* When set, called after each layer's backward is enqueued (top layer first): the gradients of
   * that layer and of every layer above it are then complete once the queue gets there (MPI starts
   * exchanging them while the layers below still compute). NULL: nothing is called. */
  an_status (*grads_ready)(void *ctx, struct an_net *net, int layer);
  void *grads_ready_ctx;
} an_net;

/* Plans model for a batch and input side (224 for the paper; others use the adaptive pool) and
 * allocates its buffers. AN_ERR_DEVICE_MEMORY, with the bytes needed, when it does not fit. */
an_status an_net_create(an_runtime *rt, const char *model, int classes, int batch, int input_hw, an_net **out);
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
/* One layer's share of those numbers: its weight (the tensor's shape, PyTorch's layout) into weight and
 * its bias into bias (b may be NULL), drawn from the splitmix64 *state, which it advances. Layers in
 * order from *state = seed give an_net_init_host's numbers (the inference plan's an_infer_init). */
void an_layer_init_host(const an_layer_plan *L, const an_tensor *w, const an_tensor *b, uint64_t *state,
                        float *weight, float *bias);

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

/* Fine-tuning: layers [0, below) keep their parameters. The backward pass stops at layer `below`, which
 * computes no input gradient, so the frozen layers' gradients are never computed (they stay zero), and
 * SGD (weight decay and momentum included) leaves their tensors alone. 0 trains every layer again.
 * Layer `below` must be a convolution or a fully connected layer (AN_ERR_ARGUMENT otherwise). */
an_status an_net_freeze(an_net *net, int below);
/* The first fully connected layer after the last convolution: freezing below it keeps the features
 * (every convolution) fixed and trains the classifier. */
int an_model_features_end(const an_model_desc *m);

/* One training step: upload, forward, backward, SGD, then the only wait: reading the loss back.
 * A NaN or Inf loss is AN_ERR_NOT_FINITE. */
an_status an_net_train_step(an_net *net, const float *images, const int *labels, const an_sgd_params *p,
                            uint64_t seed, uint64_t step, float *loss);

an_status an_net_read_loss(an_net *net, float *loss);
an_status an_net_read_logits(an_net *net, float *logits /* (N, classes) */);
/* The softmax of one row of logits (classes) added into acc (classes): the crops' average of
 * evaluation and classification. */
void an_softmax_add(const float *row, int classes, double *acc);
/* Whole parameter / gradient / momentum buffers to and from the host (n_params floats). */
an_status an_net_read_params(an_net *net, float *params);
an_status an_net_write_params(an_net *net, const float *params);
an_status an_net_read_grads(an_net *net, float *grads);

/* ---- the GEMMs of a step, read from the layer table (the tuner and bench time these) ---- */
/* Every GEMM call one training step (passes AN_PASS_FORWARD | AN_PASS_BACKWARD) of net issues, in
 * order; fills up to max, returns how many there are. */
int an_net_gemm_calls(const an_net *net, int passes, an_gemm_call *out, int max);
/* The distinct GEMMs of one training step of net (forward, weight and input gradients), with counts. */
int an_net_gemm_shapes(const an_net *net, an_gemm_shape *shapes, int max_shapes);
/* Multiply-adds ×2 of layer i's forward and backward GEMMs (0 for layers without any). */
void an_net_layer_flops(const an_net *net, int i, double *fwd, double *bwd);
/* The weight-gradient reductions of one training step of net, with the widths in effect. */
int an_net_dw_reductions(const an_net *net, an_dw_reduction *out, int max);

#ifdef __cplusplus
}
#endif
#endif
