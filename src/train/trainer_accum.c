/* The accumulating trainer (trainer.h): one device runs each step's batch as K micro-batches of
 * batch/K, one after another, and sums their gradients before the update, exactly as K MPI ranks sum
 * theirs (trainer_mpi.c): each micro-batch's gradients are those of its own mean loss, and the sum is
 * Σ_k (1/K)·g_k in micro-batch order through an_sum_scaled, the expression the ranks sum with. So a
 * run with --accumulate K computes the bits of `mpirun -np K` on the same devices, and the device
 * holds the activations of batch/K only (a large batch on a small device).
 *
 * Per step, with n_params floats:
 *   net->grads   (n_params)  device: micro-batch k's gradients, then the sum written back
 *   part         (n_params)  host: micro-batch k's gradients read back
 *   sum          (n_params)  host: Σ_{j<=k} (1/K)·g_j
 * Frozen layers' tensors (an_net_freeze) come first and are neither read nor summed. */
#include <math.h>
#include <stdlib.h>

#include "runtime/check.h"
#include "train/trainer.h"

typedef struct accum_trainer {
  an_net *net;         /* planned at batch / parts */
  an_trainer one;      /* the net's one-device trainer (borrowed): init, state and freeze are its */
  int parts, batch;    /* micro-batches per step; the step's batch */
  float *part, *sum;   /* (n_params) each, host */
  size_t image_floats; /* 3·H·W of one sample */
} accum_trainer;

void an_sum_scaled(float *dst, const float *src, size_t n, float w, int first) {
  if (first)
    for (size_t i = 0; i < n; i++) dst[i] = w * src[i];
  else
    for (size_t i = 0; i < n; i++) dst[i] += w * src[i];
}

static an_status accum_init(void *impl, uint64_t seed) {
  const an_trainer *one = &((accum_trainer *)impl)->one;
  return one->ops->init(one->impl, seed);
}

/* Micro-batch k of the step's images and labels into the net, keyed by its samples' global index. */
static an_status set_part(accum_trainer *a, const float *images, const int *labels, int k) {
  const int part = a->net->batch;
  a->net->sample_base = k * part;
  return an_net_set_batch(a->net, images + (size_t)k * part * a->image_floats,
                          labels ? labels + (size_t)k * part : NULL);
}

static an_status accum_step(void *impl, const float *images, const int *labels, const an_sgd_params *sgd,
                            uint64_t seed, uint64_t step, float *loss) {
  accum_trainer *a = impl;
  an_net *net = a->net;
  const size_t from = net->frozen_floats, n = net->n_params - from;
  const float w = 1.0f / (float)a->parts; /* every micro-batch's share of the batch */
  double total = 0;                       /* the batch's mean: equal shares, summed in order */
  for (int k = 0; k < a->parts; k++) {
    AN_TRY(set_part(a, images, labels, k));
    AN_TRY(an_net_forward(net, 1, seed, step));
    AN_TRY(an_net_backward(net, seed, step));
    float own = 0;
    const an_status st = an_net_read_loss(net, &own); /* waits for backward */
    if (st != AN_OK && st != AN_ERR_NOT_FINITE) return st;
    total += own;
    AN_TRY(an_read(net->rt, a->part + from, an_at(net->grads, from), n));
    an_sum_scaled(a->sum + from, a->part + from, n, w, k == 0);
  }
  AN_TRY(an_write(net->rt, an_at(net->grads, from), a->sum + from, n));
  AN_TRY(an_net_sgd(net, sgd));
  *loss = (float)(total / a->parts);
  if (!isfinite(*loss)) return AN_FAIL(AN_ERR_NOT_FINITE, "the loss is %f: training diverged", (double)*loss);
  return AN_OK;
}

static an_status accum_infer(void *impl, const float *images, const int *labels, float *logits) {
  accum_trainer *a = impl;
  for (int k = 0; k < a->parts; k++) {
    AN_TRY(set_part(a, images, labels, k));
    AN_TRY(an_net_forward(a->net, 0, 0, 0));
    AN_TRY(an_net_read_logits(a->net, logits + (size_t)k * a->net->batch * a->net->classes));
  }
  return AN_OK;
}

static an_status accum_sync(void *impl) { return an_finish(((accum_trainer *)impl)->net->rt); }

static an_status accum_read_state(void *impl, float *params, float *momentum) {
  const an_trainer *one = &((accum_trainer *)impl)->one;
  return one->ops->read_state(one->impl, params, momentum);
}

static an_status accum_write_state(void *impl, const float *params, const float *momentum) {
  const an_trainer *one = &((accum_trainer *)impl)->one;
  return one->ops->write_state(one->impl, params, momentum);
}

static void accum_destroy(void *impl) {
  accum_trainer *a = impl;
  if (!a) return;
  an_net_destroy(a->net);
  free(a->part);
  free(a->sum);
  free(a);
}

static an_status accum_freeze(void *impl, int below) {
  const an_trainer *one = &((accum_trainer *)impl)->one;
  return one->ops->freeze(one->impl, below);
}

static const an_trainer_ops accum_ops = {
    accum_init,        accum_step,    accum_infer,  accum_sync, accum_read_state,
    accum_write_state, accum_destroy, accum_freeze, NULL,       NULL};

an_status an_trainer_create_accum(an_runtime *rt, const char *model, int classes, int batch, int parts, int input_hw,
                                  an_trainer *out) {
  *out = (an_trainer){0};
  if (parts < 1 || batch % parts)
    return AN_FAIL(AN_ERR_ARGUMENT,
                   "--accumulate %d: the batch of %d does not divide into %d equal micro-batches (give a "
                   "batch that is a multiple of %d)",
                   parts, batch, parts, parts);
  accum_trainer *a = calloc(1, sizeof *a);
  if (!a) return AN_FAIL(AN_ERR_HOST_ALLOC, "accumulating trainer");
  a->parts = parts, a->batch = batch;
  an_status status = an_net_create(rt, model, classes, batch / parts, input_hw, &a->net);
  if (status == AN_OK) {
    an_trainer_wrap_net(a->net, &a->one);
    const size_t n = a->net->n_params;
    a->image_floats = (size_t)3 * a->net->input_hw * a->net->input_hw;
    a->part = malloc(n * sizeof *a->part);
    a->sum = malloc(n * sizeof *a->sum);
    if (!a->part || !a->sum)
      status = AN_FAIL(AN_ERR_HOST_ALLOC, "--accumulate: two host copies of %zu gradients", n);
  }
  if (status != AN_OK) {
    accum_destroy(a);
    return status;
  }
  *out = (an_trainer){.ops = &accum_ops,
                      .impl = a,
                      .owned = 1,
                      .layout = an_net_param_layout(a->net),
                      .batch = batch,
                      .classes = a->net->classes,
                      .devices = 1,
                      .ranks = 1,
                      .part_count = batch};
  return AN_OK;
}
