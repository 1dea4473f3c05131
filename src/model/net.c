/* A model planned on a device: shapes, the parameter table, buffer offsets, and the training step
 * (forward, loss, backward, SGD) enqueued without a host round-trip; the loss is the only read-back.
 *
 * Buffers (floats):
 *   params, grads, momentum  (n_params)  every tensor at the same offset in all three
 *   acts      input (N,3,H,W), then each layer's output (N,C,H,W); after its output, an LRN's scale
 *             and a max-pool's argmax (int32 bits)
 *   dacts     2 × largest activation: the output gradient and input gradient of a layer, ping-pong
 *   work      im2col workspace for the largest convolution's chunk
 *   loss      loss (1), per-sample losses (N)
 *   labels    (N) int */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alexnet/model.h"
#include "alexnet/tune.h"

#include <clblast_c.h>
#include "gemm/gemm.h"
#include "runtime/check.h"
#include "runtime/rng.h"

#define WORKSPACE_BUDGET_FLOATS ((size_t)128 << 20) /* 512 MiB of im2col: chunks of the batch beyond it */

/* Shapes and tensors from the planner, then activation offsets: every output kept for the backward
 * pass, with an LRN's scale and a max-pool's argmax after its output. */
static an_status plan(an_net *net) {
  const an_model_desc *m = net->model;
  AN_TRY(
      an_plan_layers(m, net->classes, net->input_hw, 0, net->layers, net->tensors, &net->n_tensors, &net->n_params));
  size_t off = (size_t)net->batch * 3 * net->input_hw * net->input_hw;
  net->max_act_floats = off;
  for (int i = 0; i < m->n_layers; i++) {
    an_layer_plan *L = &net->layers[i];
    const size_t count = (size_t)net->batch * L->out_c * L->out_h * L->out_w;
    L->in_off = i == 0 ? 0 : net->layers[i - 1].out_off;
    L->out_off = off;
    off += count;
    if (L->desc->kind == AN_LAYER_LRN || L->desc->kind == AN_LAYER_MAXPOOL) { /* LRN's scale, max-pool's argmax */
      L->aux_off = off;
      off += count;
    }
    if (count > net->max_act_floats) net->max_act_floats = count;
  }
  net->act_floats = off;
  net->logits_off = net->layers[m->n_layers - 1].out_off;
  return AN_OK;
}

static size_t workspace_floats(const an_net *net) {
  size_t need = 0;
  for (int i = 0; i < net->model->n_layers; i++) {
    const an_layer_plan *L = &net->layers[i];
    if (L->desc->kind != AN_LAYER_CONV) continue;
    const an_conv_dims d = an_layer_conv_dims(L, net->batch);
    const size_t one = an_conv_min_work_floats(&d), all = an_conv_train_work_floats(&d, net->batch);
    size_t want = all < WORKSPACE_BUDGET_FLOATS ? all : WORKSPACE_BUDGET_FLOATS;
    if (want < one) want = one;
    if (want < all) want = want / one * one; /* whole images of im2col (all: the whole batch on either path) */
    if (want > need) need = want;
  }
  return need;
}

size_t an_net_device_bytes(const an_net *net) {
  return (3 * net->n_params + net->act_floats + net->dact_floats + net->work_floats + 1 + net->batch) *
             sizeof(float) +
         (size_t)net->batch * sizeof(cl_int) + (net->rt ? net->rt->gemm_temp_bytes : 0);
}

static const an_model_desc *find_model(const char *model) {
  const an_model_desc *m = NULL;
  an_model_lookup(model, &m);
  return m;
}

an_status an_net_plan_desc(const an_model_desc *m, int classes, int batch, int input_hw, an_net **out) {
  *out = NULL;
  if (classes < 1 || batch < 1 || input_hw < 1)
    return AN_FAIL(AN_ERR_ARGUMENT, "classes %d, batch %d, input %d must be positive", classes, batch, input_hw);
  an_status status = AN_OK;
  an_net *net = calloc(1, sizeof *net);
  if (!net) return AN_FAIL(AN_ERR_HOST_ALLOC, "net");
  net->model = m, net->classes = classes, net->batch = batch, net->input_hw = input_hw;
  net->layers = calloc((size_t)m->n_layers, sizeof *net->layers);
  net->tensors = calloc((size_t)2 * m->n_layers, sizeof *net->tensors);
  if (!net->layers || !net->tensors) {
    status = AN_FAIL(AN_ERR_HOST_ALLOC, "net plan");
    goto cleanup;
  }
  AN_TRY_GOTO(plan(net));
  net->dact_floats = 2 * net->max_act_floats;
  net->work_floats = workspace_floats(net);
  *out = net;
  return AN_OK;
cleanup:
  an_net_destroy(net);
  return status;
}

an_status an_net_plan(const char *model, int classes, int batch, int input_hw, an_net **out) {
  *out = NULL;
  const an_model_desc *m = find_model(model);
  if (!m) return AN_ERR_UNKNOWN_MODEL;
  return an_net_plan_desc(m, classes, batch, input_hw, out);
}

an_status an_net_create(an_runtime *rt, const char *model, int classes, int batch, int input_hw, an_net **out) {
  *out = NULL;
  const an_model_desc *m = find_model(model);
  if (!m) return AN_ERR_UNKNOWN_MODEL;
  return an_net_create_desc(rt, m, classes, batch, input_hw, out);
}

int an_net_find_tensor(const an_net *net, const char *name) {
  for (int t = 0; t < net->n_tensors; t++)
    if (strcmp(net->tensors[t].name, name) == 0) return t;
  return -1;
}

an_status an_net_create_desc(an_runtime *rt, const an_model_desc *m, int classes, int batch, int input_hw,
                             an_net **out) {
  an_status status = AN_OK;
  cl_int rc;
  an_net *net = NULL;
  AN_TRY(an_net_plan_desc(m, classes, batch, input_hw, &net));
  net->rt = rt;
  const size_t bytes = an_net_device_bytes(net);
  if (bytes > rt->info.global_mem_bytes) {
    status = AN_FAIL(AN_ERR_DEVICE_MEMORY,
                     "%s at batch %d needs %.0f MiB of device memory; %s has %.0f MiB: try a smaller batch", m->name,
                     batch, bytes / 1048576.0, rt->info.name, rt->info.global_mem_bytes / 1048576.0);
    goto cleanup;
  }
  AN_TRY_GOTO(an_alloc(rt, net->n_params, &net->params));
  AN_TRY_GOTO(an_alloc(rt, net->n_params, &net->grads));
  AN_TRY_GOTO(an_alloc(rt, net->n_params, &net->momentum));
  AN_TRY_GOTO(an_alloc(rt, net->act_floats, &net->acts));
  AN_TRY_GOTO(an_alloc(rt, net->dact_floats, &net->dacts));
  AN_TRY_GOTO(an_alloc(rt, net->work_floats, &net->work));
  AN_TRY_GOTO(an_alloc(rt, 1 + (size_t)batch, &net->loss));
  net->labels = clCreateBuffer(rt->context, CL_MEM_READ_ONLY, (size_t)batch * sizeof(cl_int), NULL, &rc);
  AN_CL_GOTO(rc);
  {
    /* CLBlast's scratch for this net's GEMMs, reserved now so that a step allocates nothing */
    an_gemm_shape shapes[128];
    const int n_shapes = an_net_gemm_shapes(net, shapes, 128);
    size_t most = 0;
    for (int i = 0; i < n_shapes; i++) {
      const an_gemm_shape *g = &shapes[i];
      const size_t lda = g->trans_a ? g->m : g->k, ldb = g->trans_b ? g->k : g->n;
      const size_t bytes = an_gemm_temp_bytes(rt, g->trans_a, g->trans_b, g->m, g->n, g->k, 0, lda, 0, ldb, 0, g->n);
      if (bytes > most) most = bytes;
    }
    if (most) AN_TRY_GOTO(an_reserve_gemm_temp(rt, most + most / 16 + 4096)); /* slack for offsets */
  }
  /* PoCL (and others) hand out uninitialised memory: start from defined gradients and momentum. */
  AN_TRY_GOTO(an_fill(rt, an_at(net->grads, 0), 0.0f, net->n_params));
  AN_TRY_GOTO(an_fill(rt, an_at(net->momentum, 0), 0.0f, net->n_params));
  AN_TRY_GOTO(an_finish(rt));
  *out = net;
  return AN_OK;
cleanup:
  an_net_destroy(net);
  return status;
}

void an_net_destroy(an_net *net) {
  if (!net) return;
  cl_mem mems[] = {net->labels, net->loss, net->work, net->dacts, net->acts, net->momentum, net->grads, net->params};
  for (size_t i = 0; i < sizeof mems / sizeof mems[0]; i++)
    if (mems[i]) clReleaseMemObject(mems[i]);
  free(net->tensors);
  free(net->layers);
  free(net);
}

/* ---- initialisation: the splitmix64 stream of runtime/rng.h, Box-Muller normals, on the host, then
 *      one upload ---- */
void an_layer_init_host(const an_layer_plan *L, const an_tensor *w, const an_tensor *b, uint64_t *state,
                        float *weight, float *bias) {
  an_rng r = {*state};
  const an_layer_desc *d = L->desc;
  const size_t fan_in = w->count / (size_t)w->shape[0];
  const double kaiming_std = sqrt(2.0 / ((double)w->shape[0] * (w->ndim == 4 ? w->shape[2] * w->shape[3] : 1)));
  const double bound = 1.0 / sqrt((double)fan_in);
  for (size_t j = 0; j < w->count; j++) {
    double v = 0;
    switch (d->init) {
      case AN_INIT_NORMAL: v = d->weight_std * an_rng_normal_open(&r); break;
      case AN_INIT_KAIMING_FAN_OUT: v = kaiming_std * an_rng_normal_open(&r); break;
      case AN_INIT_TORCH_DEFAULT: v = bound * (2.0 * an_rng_uniform_open(&r) - 1.0); break;
      case AN_INIT_NONE: break;
    }
    weight[j] = (float)v;
  }
  for (size_t j = 0; b && j < b->count; j++)
    bias[j] = d->init == AN_INIT_TORCH_DEFAULT ? (float)(bound * (2.0 * an_rng_uniform_open(&r) - 1.0))
                                               : d->bias_value;
  *state = r.state;
}

void an_net_init_host(const an_net *net, uint64_t seed, float *host) {
  uint64_t state = seed;
  for (int i = 0; i < net->model->n_layers; i++) {
    const an_layer_plan *L = &net->layers[i];
    if (L->weight < 0) continue;
    const an_tensor *w = &net->tensors[L->weight], *b = L->bias >= 0 ? &net->tensors[L->bias] : NULL;
    an_layer_init_host(L, w, b, &state, host + w->offset, b ? host + b->offset : NULL);
  }
}

an_status an_net_init(an_net *net, uint64_t seed) {
  float *host = malloc(net->n_params * sizeof *host);
  if (!host) return AN_FAIL(AN_ERR_HOST_ALLOC, "parameters (%zu floats)", net->n_params);
  an_net_init_host(net, seed, host);
  an_status status = an_write(net->rt, an_at(net->params, 0), host, net->n_params);
  free(host);
  AN_TRY(status);
  return an_fill(net->rt, an_at(net->momentum, 0), 0.0f, net->n_params);
}

an_status an_net_set_batch(an_net *net, const float *images, const int *labels) {
  for (int i = 0; i < net->batch; i++)
    if (labels[i] < 0 || labels[i] >= net->classes)
      return AN_FAIL(AN_ERR_ARGUMENT, "label %d of sample %d is outside [0, %d)", labels[i], i, net->classes);
  AN_TRY(an_write(net->rt, an_at(net->acts, 0), images, (size_t)net->batch * 3 * net->input_hw * net->input_hw));
  AN_CL_RETURN(clEnqueueWriteBuffer(net->rt->queue, net->labels, CL_TRUE, 0, (size_t)net->batch * sizeof(cl_int),
                                    labels, 0, NULL, NULL));
  return AN_OK;
}

static an_buf param(const an_net *net, cl_mem mem, int tensor) {
  return tensor >= 0 ? an_at(mem, net->tensors[tensor].offset) : an_at(NULL, 0);
}

/* Layer i's buffers in the training layout (for the GEMM list, without a runtime, the offsets alone). */
static an_layer_io layer_io(const an_net *net, int i, uint64_t seed, uint64_t step) {
  const an_layer_plan *L = &net->layers[i];
  const size_t per_sample = (size_t)L->in_c * L->in_h * L->in_w;
  an_layer_io io = {0};
  io.rt = net->rt, io.L = L, io.n = net->batch;
  io.in = an_at(net->acts, L->in_off), io.out = an_at(net->acts, L->out_off);
  io.aux = an_at(net->acts, L->aux_off);
  io.weight = param(net, net->params, L->weight), io.bias = param(net, net->params, L->bias);
  io.dweight = param(net, net->grads, L->weight), io.dbias = param(net, net->grads, L->bias);
  io.dout = an_at(net->dacts, an_net_dout_off(net, i));
  io.dinp = an_at(i == 0 || i == net->frozen_below ? NULL : net->dacts, an_net_dinp_off(net, i)); /* none below */
  io.work = an_at(net->work, 0), io.work_floats = net->work_floats;
  io.dropout_active = net->dropout_active;
  io.dropout_key = an_dropout_key(seed, step, (uint32_t)L->key_index);
  io.dropout_first = (uint64_t)net->sample_base * per_sample;
  return io;
}

/* The executor's view of a step: the net and the step's dropout keys. */
typedef struct step_ctx {
  const an_net *net;
  uint64_t seed, step;
} step_ctx;

static an_layer_io step_io(void *ctx, int i) {
  const step_ctx *c = ctx;
  return layer_io(c->net, i, c->seed, c->step);
}

an_status an_net_forward_layers(an_net *net, int from, int to, uint64_t seed, uint64_t step) {
  step_ctx c = {net, seed, step};
  return an_exec_forward(from, to, NULL, step_io, &c, net->rt);
}

an_status an_net_loss(an_net *net) {
  /* the loss kernel writes dlogits too: into the gradient region the backward pass starts from */
  AN_TRY(an_softmax_xent(net->rt, net->batch, net->classes, an_at(net->loss, 0),
                         an_at(net->dacts, an_net_dout_off(net, net->model->n_layers - 1)), an_at(net->loss, 1),
                         an_at(net->acts, net->logits_off), net->labels));
  return an_mark_add(net->rt, AN_MARK_LOSS, -1);
}

an_status an_net_forward(an_net *net, int train, uint64_t seed, uint64_t step) {
  net->dropout_active = train != 0;
  AN_TRY(an_mark_add(net->rt, AN_MARK_BEGIN, -1));
  AN_TRY(an_net_forward_layers(net, 0, net->model->n_layers, seed, step));
  return an_net_loss(net);
}

/* Layer i's output gradient sits in region (n_layers - 1 - i) mod 2 of dacts, its input gradient in the
 * other: the regions alternate from the loss down. */
size_t an_net_dout_off(const an_net *net, int i) {
  return (size_t)((net->model->n_layers - 1 - i) & 1) * net->max_act_floats;
}
size_t an_net_dinp_off(const an_net *net, int i) {
  return (size_t)(1 - ((net->model->n_layers - 1 - i) & 1)) * net->max_act_floats;
}

an_status an_net_zero_grads(an_net *net) {
  AN_TRY(an_fill(net->rt, an_at(net->grads, 0), 0.0f, net->n_params));
  return an_mark_add(net->rt, AN_MARK_ZERO_GRADS, -1);
}

an_status an_net_backward_layers(an_net *net, int from, int to, uint64_t seed, uint64_t step) {
  step_ctx c = {net, seed, step};
  if (!net->grads_ready) return an_exec_backward(from, to, step_io, &c, net->rt);
  for (int i = to - 1; i >= from; i--) { /* the same layers enqueued, one at a time */
    AN_TRY(an_exec_backward(i, i + 1, step_io, &c, net->rt));
    AN_TRY(net->grads_ready(net->grads_ready_ctx, net, i));
  }
  return AN_OK;
}

an_status an_net_backward(an_net *net, uint64_t seed, uint64_t step) {
  AN_TRY(an_net_zero_grads(net));
  return an_net_backward_layers(net, net->frozen_below, net->model->n_layers, seed, step);
}

int an_model_features_end(const an_model_desc *m) {
  int last_conv = -1;
  for (int i = 0; i < m->n_layers; i++)
    if (m->layers[i].kind == AN_LAYER_CONV) last_conv = i;
  for (int i = last_conv + 1; i < m->n_layers; i++)
    if (m->layers[i].kind == AN_LAYER_FC) return i;
  return 0;
}

an_status an_net_freeze(an_net *net, int below) {
  const an_layer_kind kind = below >= 0 && below < net->model->n_layers ? net->model->layers[below].kind
                                                                        : AN_LAYER_SUM;
  if (below != 0 && kind != AN_LAYER_CONV && kind != AN_LAYER_FC)
    return AN_FAIL(AN_ERR_ARGUMENT,
                   "%s: freezing the layers below layer %d: the backward pass must stop at a convolution or a "
                   "fully connected layer of [0, %d)",
                   net->model->name, below, net->model->n_layers);
  size_t floats = 0; /* tensors are laid out in layer order: the frozen ones come first */
  for (int i = 0; i < below; i++) {
    const an_layer_plan *L = &net->layers[i];
    if (L->weight >= 0) floats = net->tensors[L->weight].offset + net->tensors[L->weight].count;
    if (L->bias >= 0) floats = net->tensors[L->bias].offset + net->tensors[L->bias].count;
  }
  net->frozen_below = below, net->frozen_floats = floats;
  return AN_OK;
}

an_status an_net_sgd(an_net *net, const an_sgd_params *p) {
  const size_t from = net->frozen_floats; /* the frozen layers' tensors are not touched */
  if (!p->no_bias_decay) {
    AN_TRY(an_sgd_update(net->rt, net->n_params - from, p->lr, p->momentum, p->weight_decay,
                         an_at(net->params, from), an_at(net->grads, from), an_at(net->momentum, from)));
  } else {
    for (int t = 0; t < net->n_tensors; t++) {
      const an_tensor *T = &net->tensors[t];
      if (T->offset < from) continue;
      AN_TRY(an_sgd_update(net->rt, T->count, p->lr, p->momentum, T->is_bias ? 0.0f : p->weight_decay,
                           an_at(net->params, T->offset), an_at(net->grads, T->offset),
                           an_at(net->momentum, T->offset)));
    }
  }
  return an_mark_add(net->rt, AN_MARK_SGD, -1);
}

an_status an_net_read_loss(an_net *net, float *loss) {
  AN_TRY(an_read(net->rt, loss, an_at(net->loss, 0), 1));
  if (!isfinite(*loss))
    return AN_FAIL(AN_ERR_NOT_FINITE, "the loss is %f: training diverged (lower the learning rate)", (double)*loss);
  return AN_OK;
}

an_status an_net_train_step(an_net *net, const float *images, const int *labels, const an_sgd_params *p,
                            uint64_t seed, uint64_t step, float *loss) {
  AN_TRY(an_net_set_batch(net, images, labels));
  AN_TRY(an_net_forward(net, 1, seed, step));
  AN_TRY(an_net_backward(net, seed, step));
  AN_TRY(an_net_sgd(net, p));
  return an_net_read_loss(net, loss);
}

void an_softmax_add(const float *row, int classes, double *acc) {
  float m = row[0];
  for (int c = 1; c < classes; c++) m = row[c] > m ? row[c] : m;
  double sum = 0;
  for (int c = 0; c < classes; c++) sum += exp((double)row[c] - m);
  for (int c = 0; c < classes; c++) acc[c] += exp((double)row[c] - m) / sum;
}

an_status an_net_read_logits(an_net *net, float *logits) {
  return an_read(net->rt, logits, an_at(net->acts, net->logits_off), (size_t)net->batch * net->classes);
}
an_status an_net_read_params(an_net *net, float *params) {
  return an_read(net->rt, params, an_at(net->params, 0), net->n_params);
}
an_status an_net_write_params(an_net *net, const float *params) {
  return an_write(net->rt, an_at(net->params, 0), params, net->n_params);
}
an_status an_net_read_grads(an_net *net, float *grads) {
  return an_read(net->rt, grads, an_at(net->grads, 0), net->n_params);
}

/* ---- the GEMMs a step runs, read from the layer table: for the tuner, bench and the GEMM-list test ---- */

int an_net_gemm_calls(const an_net *net, int passes, an_gemm_call *out, int max) {
  int n = 0;
  for (int pass = AN_PASS_FORWARD; pass <= AN_PASS_BACKWARD; pass <<= 1) {
    if (!(passes & pass)) continue;
    for (int j = 0; j < net->model->n_layers; j++) {
      const int i = pass == AN_PASS_FORWARD ? j : net->model->n_layers - 1 - j; /* backward runs top down */
      const an_layer_ops *ops = an_layer_ops_of(net->layers[i].desc->kind);
      if (!ops->gemms || (pass == AN_PASS_BACKWARD && i < net->frozen_below)) continue;
      const an_layer_io io = layer_io(net, i, 0, 0);
      n += ops->gemms(&io, pass, n < max ? out + n : NULL, n < max ? max - n : 0);
    }
  }
  return n;
}

static int add_shape(an_gemm_shape *shapes, int n, int max, const an_gemm_call *c) {
  /* the weight gradient's slices read rows of the whole chunk: their operands are not packed */
  const size_t ld = c->trans_b && !c->trans_a && c->lda != c->k ? c->lda : 0;
  for (int i = 0; i < n; i++)
    if (shapes[i].trans_a == c->trans_a && shapes[i].trans_b == c->trans_b && shapes[i].m == c->m &&
        shapes[i].n == c->n && shapes[i].k == c->k) {
      shapes[i].count++;
      return n;
    }
  if (n == max) return n;
  const an_gemm_shape s = {c->trans_a, c->trans_b, c->m, c->n, c->k, 1, ld};
  shapes[n] = s;
  return n + 1;
}

void an_net_layer_flops(const an_net *net, int i, double *fwd, double *bwd) {
  const an_layer_io io = layer_io(net, i, 0, 0);
  *fwd = an_layer_gemm_flops(&io, AN_PASS_FORWARD);
  *bwd = an_layer_gemm_flops(&io, AN_PASS_BACKWARD);
}

/* Per layer in forward order, its forward then its backward calls: the order the tuner reports. */
int an_net_gemm_shapes(const an_net *net, an_gemm_shape *shapes, int max_shapes) {
  int n = 0;
  for (int i = 0; i < net->model->n_layers; i++) {
    const an_layer_ops *ops = an_layer_ops_of(net->layers[i].desc->kind);
    if (!ops->gemms) continue;
    const an_layer_io io = layer_io(net, i, 0, 0);
    const int total = ops->gemms(&io, AN_PASS_FORWARD | AN_PASS_BACKWARD, NULL, 0);
    an_gemm_call *calls = malloc((size_t)(total ? total : 1) * sizeof *calls); /* (total) */
    if (!calls) return n;
    ops->gemms(&io, AN_PASS_FORWARD | AN_PASS_BACKWARD, calls, total);
    for (int j = 0; j < total; j++) n = add_shape(shapes, n, max_shapes, &calls[j]);
    free(calls);
  }
  return n;
}

int an_net_dw_reductions(const an_net *net, an_dw_reduction *out, int max) {
  int n = 0;
  for (int i = 0; i < net->model->n_layers; i++) {
    const an_layer_plan *L = &net->layers[i];
    if (L->desc->kind != AN_LAYER_CONV) continue;
    const an_conv_dims d = an_layer_conv_dims(L, net->batch);
    if (!an_conv_weight_grad_im2col(net->rt, &d, net->work_floats)) continue; /* no slices on Winograd */
    const int chunk = an_conv_chunk_images(&d, net->work_floats);
    const size_t ocg = (size_t)d.oc / d.groups, ckkg = (size_t)(d.c / d.groups) * d.kh * d.kw;
    for (int n0 = 0; n0 < d.n; n0 += chunk) {
      const size_t ncols = (size_t)(d.n - n0 < chunk ? d.n - n0 : chunk) * d.oh * d.ow;
      int j = 0;
      while (j < n && !(out[j].m == ocg && out[j].n == ckkg && out[j].ncols == ncols)) j++;
      if (j < n) {
        out[j].count += d.groups;
      } else if (n < max) {
        const an_dw_reduction r = {ocg, ckkg, ncols, d.groups, an_gemm_dw_slice(net->rt, ocg, ckkg, ncols)};
        out[n++] = r;
      }
    }
  }
  return n;
}
