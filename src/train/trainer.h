/* The trainer: what the training loop, evaluation and checkpointing drive, without knowing whether one
 * device, a device pair or (later) MPI ranks hold the model. The loop (train_loop.c) and evaluation
 * (evaluate.c) call only the operations below; which implementation runs is chosen once, where the
 * trainer is created (train_loop.c's create_on_runtimes for an_train / an_train_pair).
 *
 * An implementation is a table of operations over its own opaque state, plus the few facts the loop
 * reads (batch, classes, devices, the checkpoint layout). Implementations today:
 *   trainer_net.c   one device: an an_net (model.h)
 *   trainer_pair.c  two devices: an an_split (split.h), columns or batch
 *   trainer_accum.c one device, each batch as K micro-batches whose gradients are summed (--accumulate)
 *   trainer_mpi.c   one of N MPI ranks, each on one device or a pair: data parallel over the ranks
 * To add one: write trainer_<kind>.c with a static an_trainer_ops table and a create
 * function that fills an an_trainer, then give the loop a create function (an_trainer_create_fn) that
 * makes it and call an_train_with; checkpoints, evaluation and the log come for free.
 *
 * Every operation's parameters are in the single-device model's layout: a trainer that spreads the
 * model gathers on read and scatters on write, so the checkpoint files do not depend on the trainer. */
#ifndef ALEXNET_TRAIN_TRAINER_H
#define ALEXNET_TRAIN_TRAINER_H

#include "alexnet/train.h"

typedef struct an_trainer_ops {
  /* The model's initialisation from seed (an_net_init's numbers) and zero momentum. */
  an_status (*init)(void *impl, uint64_t seed);
  /* One SGD step: upload images (batch, 3, H, W) and labels (batch), forward with dropout keyed by
   * (seed, step), backward, update, then read the loss back (the step's only wait). A NaN or Inf
   * loss is AN_ERR_NOT_FINITE with *loss set. */
  an_status (*step)(void *impl, const float *images, const int *labels, const an_sgd_params *sgd, uint64_t seed,
                    uint64_t step, float *loss);
  /* Logits (batch, classes) of images (batch, 3, H, W), dropout off; labels feed the loss only. */
  an_status (*infer)(void *impl, const float *images, const int *labels, float *logits);
  /* Waits for everything enqueued on every device. */
  an_status (*sync)(void *impl);
  /* The state a checkpoint holds, n_params floats each in the layout: read fills params and, when
   * momentum is not NULL, the momentum; write sets both (momentum NULL: zero, a fresh optimizer) and
   * may leave the writes enqueued (sync follows). */
  an_status (*read_state)(void *impl, float *params, float *momentum);
  an_status (*write_state)(void *impl, const float *params, const float *momentum);
  /* Frees the implementation (an_trainer_destroy calls it only for a trainer that owns its model). */
  void (*destroy)(void *impl);
  /* Fine-tuning: layers [0, below) of the single-device model keep their parameters, with no gradients
   * computed for them (an_net_freeze). NULL: the trainer cannot (the loop refuses --freeze-features). */
  an_status (*freeze)(void *impl, int below);
  /* Several processes (NULL for one): agree returns AN_OK when every rank's own status is AN_OK, else
   * the first failing rank's status with its message, on every rank (a barrier besides); sum_counts
   * sums n counts across the ranks in place. */
  an_status (*agree)(void *impl, an_status own);
  an_status (*sum_counts)(void *impl, int64_t *counts, int n);
} an_trainer_ops;

typedef struct an_trainer {
  const an_trainer_ops *ops;
  void *impl;                 /* the implementation's state (an_net *, an_split *, ...) */
  int owned;                  /* 1: destroy frees impl; 0: borrowed (an_trainer_wrap_*) */
  an_param_layout layout;     /* the single-device model's tensor table: checkpoints, read/write_state */
  int batch, classes;         /* samples per (global) step; logits per sample */
  int devices;                /* devices the steps run on, for the log (all ranks') */
  int rank, ranks;            /* this process among the run's: 0 of 1 but for MPI; rank 0 writes the files */
  int part_first, part_count; /* the positions of each batch this process runs: step and infer take
                                 part_count rows, [part_first, part_first + part_count) of the batch */
} an_trainer;

/* One device. create plans and allocates a net (an_net_create) that destroy frees; wrap borrows one. */
an_status an_trainer_create_net(an_runtime *rt, const char *model, int classes, int batch, int input_hw,
                                an_trainer *out);
void an_trainer_wrap_net(an_net *net, an_trainer *out);

/* A device pair (split.h: alexnet's columns, the batch for the others). */
an_status an_trainer_create_pair(an_runtime *rt0, an_runtime *rt1, const char *model, int classes, int batch,
                                 int input_hw, an_trainer *out);
void an_trainer_wrap_pair(an_split *split, an_trainer *out);

/* One device running each batch as `parts` micro-batches of batch/parts, their gradients summed as
 * `parts` MPI ranks sum theirs (same bits as mpirun -np parts); batch must divide by parts. */
an_status an_trainer_create_accum(an_runtime *rt, const char *model, int classes, int batch, int parts, int input_hw,
                                  an_trainer *out);

/* dst = w·src (first) or dst += w·src, element by element: the one expression with which the MPI
 * exchange sums the ranks' gradients and the accumulating trainer its micro-batches', so that the two
 * give the same bits. */
void an_sum_scaled(float *dst, const float *src, size_t n, float w, int first);

/* Frees what the trainer owns (nothing for a wrapped one); a zeroed trainer is fine. */
void an_trainer_destroy(an_trainer *t);

/* Parameters (and with meta->checkpoint the momentum) to path through host arrays, atomically. */
an_status an_trainer_save(an_trainer *t, const char *path, const an_checkpoint_meta *meta);
/* path into the trainer: everything read and checked first, so a failure leaves the trainer as it was;
 * a weights file zeroes the momentum. out (may be NULL): the metadata. */
an_status an_trainer_load(an_trainer *t, const char *path, an_checkpoint_meta *out);

/* an_evaluate on any trainer: t->batch must be a multiple of the crops. */
an_status an_trainer_evaluate(an_trainer *t, const an_dataset *ds, const an_augment *aug, const an_data_stats *stats,
                              int threads, an_eval_result *out, int64_t *confusion);

/* Makes the run's trainer for the model, the training set's classes, cfg's batch and input size; the
 * loop calls it once, after checking the run's arguments. ctx: the caller's (the runtimes, a
 * communicator). */
typedef an_status (*an_trainer_create_fn)(void *ctx, const char *model, int classes, int batch, int input_hw,
                                          an_trainer *out);
/* an_train on the trainer that create makes; destroys it before returning. */
an_status an_train_with(an_trainer_create_fn create, void *ctx, const an_train_config *cfg, an_train_result *result);

#endif
