/* The training loop and evaluation: a dataset in, checkpoints, a JSON-lines log and accuracy out.
 *
 * an_train runs SGD steps with batches from the threaded loader (its workers prepare the next batches
 * while the device computes), validates at the end of every epoch, and keeps two checkpoints in
 * out_dir: last.safetensors (every checkpoint_every steps, at each epoch's end and when the run stops)
 * and best.safetensors (the best validation top-1). Both are written atomically (an_checkpoint_save).
 * Resuming reads last.safetensors and continues at its global step: the loader starts at that batch and
 * dropout is keyed by (seed, global step), so the losses equal those of an uninterrupted run.
 *
 * On two devices (an_train_pair) the loop is the same and drives the split of split.h: alexnet's
 * columns, or the batch for the single-column models. Its checkpoints are the single-device files, so
 * a run may resume, and its checkpoints be evaluated, on one device or two. The losses equal one
 * device's up to float rounding, which training amplifies like any rounding (docs/BENCHMARKS.md).
 *
 * The loop drives a trainer (src/train/trainer.h: one device, a pair, another kind to come) through a
 * handful of operations; an_train and an_train_pair choose which, once, when they create it. */
#ifndef ALEXNET_TRAIN_H
#define ALEXNET_TRAIN_H

#include <stdint.h>

#include "alexnet/data.h"
#include "alexnet/io.h"
#include "alexnet/model.h"
#include "alexnet/runtime.h"
#include "alexnet/split.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum an_lr_schedule {
  AN_LR_NONE,   /* constant */
  AN_LR_STEP,   /* x0.1 at 1/3 and again at 2/3 of the run's steps */
  AN_LR_COSINE, /* lr · (1 + cos(pi · t)) / 2, t = step / total steps */
  AN_LR_PLATEAU /* x0.1 each time validation top-1 has not improved for `patience` validations */
} an_lr_schedule;

/* The schedules' names, one table for the log's recipe and the command line: "none", "step", "cosine",
 * "plateau". an_lr_schedule_name gives "none" outside the enum; an_lr_schedule_parse returns 1 and sets
 * *out when name is one of them, 0 otherwise (*out untouched). an_lr_schedule_names lists them
 * (the command line's choices). */
extern const char *const an_lr_schedule_names[]; /* indexed by an_lr_schedule, NULL-terminated */
const char *an_lr_schedule_name(an_lr_schedule schedule);
int an_lr_schedule_parse(const char *name, an_lr_schedule *out);

/* The learning rate at global step `step` of a run of `total` steps; PLATEAU's is base_lr here, its
 * factor comes from the validations (an_plateau). */
double an_lr_at(an_lr_schedule schedule, double base_lr, int64_t step, int64_t total);

/* The plateau schedule's state. A validation improves when its top-1 is strictly above the best so
 * far; after `patience` validations in a row without improvement the factor is multiplied by 0.1 and
 * the count starts again. Validations are those at epoch ends and every val_every steps. */
typedef struct an_plateau {
  int patience;  /* >= 1 */
  double best;   /* best top-1 so far; -1 before the first validation */
  int bad;       /* validations since the last improvement or reduction */
  double factor; /* lr = base lr · factor; starts at 1 */
} an_plateau;
an_plateau an_plateau_start(int patience);
/* Takes one validation's top-1; returns 1 when it reduced the factor. */
int an_plateau_step(an_plateau *p, double top1);

/* STEP after every step; EPOCH at each epoch's end (and at the run's end inside an epoch); VAL after a
 * validation every val_every steps (no checkpoint decision); LOADER once before the first step when
 * measure_loader is set (images_per_s: the loader's own speed, the device idle); INIT once at the start
 * of a run from cfg->init (init: which tensors the file gave, which were initialised fresh). */
typedef enum an_train_event_kind {
  AN_EVENT_STEP,
  AN_EVENT_EPOCH,
  AN_EVENT_VAL,
  AN_EVENT_LOADER,
  AN_EVENT_INIT
} an_train_event_kind;

typedef struct an_train_event {
  an_train_event_kind kind;
  int epoch, epochs;                /* epoch counted from 0 */
  int step, steps_per_epoch;        /* step within the epoch */
  int64_t global_step, total_steps; /* global_step: steps done including this one */
  float loss;                       /* step: this step's loss; epoch: mean over the epoch's steps run here */
  double lr, images_per_s, eta_s;
  double val_top1, val_top5;   /* epoch: validation accuracy in [0, 1]; -1 without a validation set */
  int best;                    /* epoch: best.safetensors was written */
  int lr_reduced;              /* epoch, val: the plateau schedule multiplied lr by 0.1 after it */
  const an_match_report *init; /* init: the report of an_checkpoint_load_matching; NULL otherwise */
} an_train_event;

typedef void (*an_train_callback)(void *ctx, const an_train_event *ev);

typedef struct an_train_config {
  const char *model;
  const an_dataset *train, *val; /* val may be NULL */
  int batch, input, epochs;
  int64_t max_steps;    /* 0: epochs · batches per epoch; else the run's length (schedule included) */
  int64_t stop_at_step; /* 0: none; else stop (with a checkpoint) once this global step is done */
  an_sgd_params sgd;    /* sgd.lr is the base learning rate */
  an_lr_schedule schedule;
  int patience; /* AN_LR_PLATEAU: validations without improvement before lr x0.1 (0: 3) */
  uint64_t seed;
  const an_augment *aug; /* training preprocessing (its input must be `input`, its scale 1; ten_crop
                                is ignored);
                                NULL: an_augment_default(input). Validation uses its resize and
                                normalisation with the centre crop; the checkpoints record both */
  int threads;           /* loader workers */
  int stats_images;      /* images for the normalisation statistics (0: all) */
  int checkpoint_every;  /* steps between last.safetensors writes; 0: epoch ends and the end only */
  int val_every;         /* steps between extra validations (logged as "val"); 0: epoch ends only */
  const char *out_dir;   /* created when missing; holds last/best.safetensors, log.jsonl, classes.txt */
  int resume;            /* continue from out_dir/last.safetensors; refused unless the recipe is the
                                logged run's (log.jsonl's "run" line: model, data, batch, input, epochs,
                                max steps, lr, momentum, weight decay, schedule, patience, freeze
                                features, augmentation, seed) */
  int measure_loader;    /* time the loader alone (~1-2 s) before training: logged and reported */
  const char *init;      /* fine-tuning: a weights file (this project's or a PyTorch state_dict) whose
                                tensors that fit the model (name, shape, F32) replace the seed's initial
                                ones (a last layer of another class count stays fresh; an INIT event
                                says which); momentum starts at zero. Not with resume */
  int freeze_features;   /* the convolutions keep their parameters: no gradients computed for them and
                                no SGD update (an_net_freeze at an_model_features_end); one device only */
  int accumulate;        /* 0 or 1: each step's batch at once; K > 1: one device runs it as K micro-batches
                                of batch/K and sums their gradients in order, as K MPI ranks do (the bits of
                                mpirun -np K; the device holds batch/K's activations). Not with two devices
                                or under mpirun; a run may resume with another K */
  an_train_callback callback;
  void *callback_ctx;
} an_train_config;

typedef struct an_train_result {
  int64_t steps_done; /* global step reached */
  int64_t start_step; /* where this run started (0, or the resumed checkpoint's) */
  float last_loss;
  double val_top1, val_top5; /* last validation; -1 when none ran */
  double best_top1;
  double loader_images_per_s; /* measure_loader's figure; 0 when not measured */
  an_data_stats stats;
} an_train_result;

/* AN_ERR_NOT_FINITE when the loss turns NaN or Inf: nothing is saved after it, so last.safetensors is
 * the last good state. */
an_status an_train(an_runtime *rt, const an_train_config *cfg, an_train_result *result);
/* The same on two devices, rt0 and rt1 from an_runtime_create_pair (rt1 NULL: an_train on rt0). The
 * batch split needs cfg->batch >= 2. log.jsonl's run and resume lines say how many devices ran. */
an_status an_train_pair(an_runtime *rt0, an_runtime *rt1, const an_train_config *cfg, an_train_result *result);

/* Accuracy of net's parameters on ds: a dataset-order pass, centre crop or ten-crop (softmax averaged
 * over the crops). net->batch must be a multiple of an_augment_crops(aug, 0); padding and unreadable
 * samples are not counted. confusion (may be NULL): (classes, classes) counts, row = true label. */
typedef struct an_eval_result {
  int64_t samples, top1, top5; /* counts */
} an_eval_result;
an_status an_evaluate(an_net *net, const an_dataset *ds, const an_augment *aug, const an_data_stats *stats,
                      int threads, an_eval_result *out, int64_t *confusion);
/* The same on a two-device split (s->batch in place of net->batch). */
an_status an_evaluate_split(an_split *s, const an_dataset *ds, const an_augment *aug, const an_data_stats *stats,
                            int threads, an_eval_result *out, int64_t *confusion);

/* ---- parameters and momentum on disk (io.h's checkpoint files, from and to the devices) ---- */

/* A net's tensor table as the checkpoint files' layout (pointers into net, which must outlive it). */
an_param_layout an_net_param_layout(const an_net *net);

/* Writes the net's parameters (and with meta->checkpoint its momentum) to path, atomically. meta NULL:
 * weights with the net's model, classes and input size only. */
an_status an_net_save(an_net *net, const char *path, const an_checkpoint_meta *meta);

/* Loads path into the net (an_checkpoint_load's checks against the net's tensor table). All of it is
 * read and checked before anything reaches the device, so a failure leaves the net as it was. A
 * checkpoint restores the momentum; a weights file zeroes it (a fresh optimizer). out (may be NULL)
 * receives the metadata. */
an_status an_net_load(an_net *net, const char *path, an_checkpoint_meta *out);

/* A two-device split's weights and checkpoints: the single-device model's file (s->full's layout), so
 * either loads into either (see split.h). */
an_status an_split_save(an_split *s, const char *path, const an_checkpoint_meta *meta);
an_status an_split_load(an_split *s, const char *path, an_checkpoint_meta *out);

/* ---- several processes: data-parallel training over MPI ranks (train/trainer_mpi.c) ----
 * Built when CMake finds MPI (ALEXNET_HAVE_MPI); without it these exist, an_world_init refuses a
 * launch of more than one rank, saying what is missing, and an_train_mpi is an_train_pair. */

typedef struct an_world {
  int rank, size;             /* in the job; 0 of 1 for a process started alone */
  int local_rank, local_size; /* among the job's ranks on this machine */
  int mpi;                    /* 1: MPI was initialised here (an_world_end finishes it) */
} an_world;

/* The rank count the launcher's environment announces (Open MPI's OMPI_COMM_WORLD_SIZE, PMI_SIZE,
 * PMIX's), 0 when none: a process started alone. */
int an_world_launched_size(void);
/* Joins the job when a launcher started this process (MPI_Init), else a world of one. Built without
 * MPI, a launch of more than one rank is AN_ERR_ARGUMENT naming what to install. */
an_status an_world_init(int *argc, char ***argv, an_world *out);
/* The world an_world_init made (0 of 1 before it). */
an_world an_world_get(void);
/* Every rank's own status; the first failing rank's (status and message) on all of them. A world of
 * one returns own. */
an_status an_world_agree(an_status own);
/* Ends the process's part in the job with exit status rc: MPI_Finalize when every rank ends alike (rc 0,
 * a usage error (2), or a failure an agreement shared), else MPI_Abort so that no rank waits for this
 * one. Returns rc. */
int an_world_end(int rc);
/* 1 when the last failure came from another rank through an agreement and this rank is not rank 0:
 * rank 0 prints it, the others stay quiet. */
int an_world_failure_is_echo(void);

typedef struct an_mpi_options {
  double bucket_mb; /* gradient bytes per allreduce bucket, in MB (10^6 bytes); 0: 25 */
  int check_sync;   /* compare a hash of the weights across the ranks every check_sync steps; 0: never */
} an_mpi_options;

/* an_train as one rank of the job: rt0 (and rt1 for a pair) is this rank's device. cfg->batch is the
 * global batch (a multiple of the ranks); each rank takes its share of every batch in the order one
 * process would use, dropout and augmentation keyed by the global sample index; the gradients are
 * summed in buckets as backward produces them (deterministically: every rank ends each step with the
 * same bits); validation is sharded and its counts summed; only rank 0 writes log.jsonl and the
 * checkpoints, which are the one-process files (a run may resume with another rank count). */
an_status an_train_mpi(an_runtime *rt0, an_runtime *rt1, const an_mpi_options *opt, const an_train_config *cfg,
                       an_train_result *result);

/* The data-parallel step timed (alexnet bench under mpirun): each rank runs batch_per_rank samples,
 * first without the gradient exchange (compute), then with it. Times are the slowest rank's means. */
typedef struct an_mpi_bench {
  int ranks, buckets;
  double grad_bytes;   /* bytes each rank contributes to the allreduce per step */
  double compute_ms;   /* the step without the exchange */
  double step_ms;      /* the step with it */
  double allreduce_ms; /* the exchange alone (staged buckets to sums on the device), nothing else running */
  double exposed_ms;   /* in the step: from the last bucket staged (backward's end) to the last sum, on the
                          rank whose backward ended last (the others' tails include waiting for it) */
  double overlap;      /* 1 - exposed / allreduce (at least 0): the share hidden behind backward */
  double efficiency;   /* compute_ms / step_ms: throughput against the ranks running alone */
  double busbw_gbs;    /* ring-equivalent bandwidth: 2(N-1)/N x grad_bytes / allreduce time, GB/s */
} an_mpi_bench;
an_status an_mpi_bench_train(an_runtime *rt0, an_runtime *rt1, const char *model, int classes, int batch_per_rank,
                             int input_hw, const an_mpi_options *opt, int warmup, int iterations, an_mpi_bench *out);


#ifdef __cplusplus
}
#endif
#endif
