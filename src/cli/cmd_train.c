/* alexnet train: trains a model on a dataset with the threaded loader, validating each epoch, keeping the
 * last and the best checkpoint and a JSON-lines log in --out; --resume continues the exact run. On one
 * device, or split over two (--device A,B). */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alexnet/data.h"
#include "alexnet/io.h"
#include "alexnet/train.h"
#include "cli.h"

static void help(void) {
  printf("usage: alexnet train [options]\n\n"
         "Trains a model with SGD on a dataset; worker threads decode and augment the next batches while\n"
         "the device computes. The normalisation (mean/std) is computed on the training set and saved in\n"
         "the checkpoints. Validation top-1/top-5 after every epoch. In --out: last.safetensors (every\n"
         "--checkpoint-every steps, each epoch's end and the end), best.safetensors (best validation\n"
         "top-1), log.jsonl (the run's recipe, every step and epoch), classes.txt. Plot the log with\n"
         "tools/plot.py. Before training, the loader alone is timed for ~1.5 s (images/s with the device\n"
         "idle): when the training steps run at about that speed, the loader, not the device, is the limit.\n\n"
         "  --model M           alexnet | alexnet-half | alexnet-tv (default: --init's, else alexnet-half)\n"
         "  --data D            fashion-mnist | a class-per-folder dir | a pack shard (default fashion-mnist)\n"
         "  --val D             validation set (fashion-mnist:test, a dir, a shard)\n"
         "  --val-fraction F    hold out F of the training set instead (default 0.1 without --val; 0: none)\n"
         "  --epochs E          epochs                                          (default 10)\n"
         "  --max-steps N       stop after N steps in all; the schedule spans them (default: epochs)\n"
         "  --batch B           images per step                                 (default 32)\n"
         "  --lr X              base learning rate                              (default 0.01)\n"
         "  --momentum X        SGD momentum                                    (default 0.9)\n"
         "  --weight-decay X    L2 weight decay                                 (default 5e-4)\n"
         "  --lr-schedule S     step (x0.1 at 1/3 and 2/3) | cosine | plateau | none (default cosine)\n"
         "                      plateau: lr x0.1 once validation top-1 has not improved (strictly) for\n"
         "                      --patience validations in a row (epoch ends, and --val-every steps)\n"
         "  --patience N        plateau's validations without improvement        (default 3)\n"
         "  --input-size S      input side in pixels (63 suits 28 px images)    (default 224)\n"
         "  --augment P         preprocessing preset; the options below change single settings:\n"
         "                        default: resize round(S·256/224), random crop, flip, PCA 0.1, mean/std\n"
         "                        paper:   the same with mean subtraction only (S 224: the paper's 256/224)\n"
         "                        none:    resize S, centre crop, no flip, no lighting, no normalisation\n"
         "  --resize N          short side to N, centre N x N: the base image crops come from (>= S)\n"
         "  --crop C            training crop: random | centre\n"
         "  --no-flip           no horizontal mirroring in training\n"
         "  --pca-std X         PCA lighting strength (std of the alphas; 0: off)\n"
         "  --norm N            mean_std | mean | none (statistics from the training set)\n"
         "                      Evaluation always takes the centre crop of the same base image; the\n"
         "                      checkpoints record resize and normalisation for eval and classify\n"
         "  --seed S            seed of weights, split, shuffling, augmentation, dropout (default 1)\n"
         "  --threads T         loader worker threads                           (default 2)\n"
         "  --checkpoint-every N  steps between last.safetensors writes         (default 200)\n"
         "  --log-every N       steps between progress lines when not a terminal (default 50)\n"
         "  --val-every N       also validate every N steps (curves of short runs) (default 0: epochs)\n"
         "  --out DIR           output directory                                (default runs/train)\n"
         "  --resume            continue the run in --out from last.safetensors; refused, naming the\n"
         "                      option, unless the options are the run's (log.jsonl's first line)\n"
         "  --init W            fine-tune: start from the weights file W (this project's, or a PyTorch\n"
         "                      state_dict as safetensors.torch.save_file writes it); every tensor whose\n"
         "                      name and shape fit is loaded, the others (a last layer of another class\n"
         "                      count) start fresh from --seed; the start lists both. The model is the\n"
         "                      one W's shapes fit (--model must be it; a W that fits no model loads\n"
         "                      into --model's tensors that fit). Not with --resume\n"
         "  --freeze-features   keep the convolutions fixed (no gradients computed for them, no update):\n"
         "                      train the fully connected layers only. One device\n"
         "  --device D          P:D index or name substring (default: ALEXNET_DEVICE, else first GPU);\n"
         "                      two separated by a comma (0:0,0:1) train on both: alexnet's two columns\n"
         "                      one per device, the batch halved for alexnet-half and alexnet-tv. Same\n"
         "                      checkpoints: a run may resume, and be evaluated, on one device or two\n"
         "  --separate-contexts two devices: one context each even on one platform (host-memory exchange)\n"
         "  --accumulate K      run each batch as K micro-batches of batch/K on one device, their\n"
         "                      gradients summed before the update: a batch larger than the device\n"
         "                      holds, and the very bits of mpirun -np K (default 1)\n\n"
         "Under mpirun (mpirun -np N alexnet train ...) the N ranks train one model, data parallel:\n"
         "--batch is the global batch (a multiple of N), each rank takes its share of every batch, the\n"
         "gradients are summed across the ranks (deterministically: every rank holds the same weights),\n"
         "and rank 0 writes the log and the checkpoints (the one-process files: --resume works with\n"
         "another N). Each rank takes the device of its local rank index on its machine (the GPUs, else\n"
         "every device), or --device with one entry per local rank separated by ';' (a pair is A,B):\n"
         "--device '0:0;0:1' for two ranks, '0:0,0:1;0:2,0:3' for two ranks on a pair each; one entry is\n"
         "shared by every rank.\n"
         "  --bucket-mb X       MB of gradients per allreduce bucket, started as backward produces it\n"
         "                      (default 25)\n"
         "  --check-sync K      every K steps compare a hash of the weights across the ranks; stop\n"
         "                      on a difference (default 0: never)\n");
}

typedef struct progress {
  int tty, log_every, threads, patience;
  double t_last;
} progress;

static void fmt_time(double s, char *buf, size_t n) {
  if (!isfinite(s) || s < 0) s = 0;
  const long t = (long)(s + 0.5);
  if (t >= 3600) snprintf(buf, n, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
  else snprintf(buf, n, "%ld:%02ld", t / 60, t % 60);
}

/* Which tensors --init gave and which start fresh. */
static void print_init(const an_match_report *r) {
  printf("init: %d of %d tensors loaded:", r->n_loaded, r->n_tensors);
  for (int i = 0; i < r->n_tensors; i++)
    if (r->tensor[i].kind == AN_MATCH_LOADED) printf(" %s", r->tensor[i].name);
  printf("\n");
  for (int i = 0; i < r->n_tensors; i++) {
    const an_match_tensor *t = &r->tensor[i];
    if (t->kind == AN_MATCH_SHAPE)
      printf("init: %s not loaded, initialised fresh: the file's is %s, the model's %s\n", t->name, t->have,
             t->need);
    else if (t->kind == AN_MATCH_DTYPE)
      printf("init: %s not loaded, initialised fresh: the file's is %s, the model takes F32\n", t->name, t->have);
    else if (t->kind == AN_MATCH_MISSING)
      printf("init: %s not loaded, initialised fresh: the file has none\n", t->name);
  }
  if (r->n_unused)
    printf("init: %d tensor%s of the file not used (%s%s)\n", r->n_unused, r->n_unused > 1 ? "s" : "",
           r->first_unused, r->n_unused > 1 ? ", ..." : "");
  fflush(stdout);
}

static void on_event(void *ctx, const an_train_event *ev) {
  progress *p = ctx;
  char eta[32];
  fmt_time(ev->eta_s, eta, sizeof eta);
  if (ev->kind == AN_EVENT_STEP) {
    if (p->tty) {
      const int width = 24, filled = (int)((double)(ev->step + 1) / ev->steps_per_epoch * width);
      char bar[32];
      for (int i = 0; i < width; i++) bar[i] = i < filled ? '#' : '.';
      bar[width] = 0;
      fprintf(stderr, "\repoch %d/%d [%s] %d/%d  step %lld/%lld  loss %.4f  lr %.3g  %.1f img/s  ETA %s   ",
              ev->epoch + 1, ev->epochs, bar, ev->step + 1, ev->steps_per_epoch, (long long)ev->global_step,
              (long long)ev->total_steps, ev->loss, ev->lr, ev->images_per_s, eta);
      fflush(stderr);
    } else if (ev->global_step % p->log_every == 0 || ev->global_step == ev->total_steps) {
      printf("epoch %d/%d  step %lld/%lld  loss %.4f  lr %.3g  %.1f img/s  ETA %s\n", ev->epoch + 1, ev->epochs,
             (long long)ev->global_step, (long long)ev->total_steps, ev->loss, ev->lr, ev->images_per_s, eta);
      fflush(stdout);
    }
    return;
  }
  if (ev->kind == AN_EVENT_INIT) {
    print_init(ev->init);
    return;
  }
  if (ev->kind == AN_EVENT_LOADER) {
    printf("loader alone: %.0f images/s with the device idle (%d threads); the steps' img/s below is the whole "
           "step's\n",
           ev->images_per_s, p->threads);
    fflush(stdout);
    return;
  }
  if (p->tty) fprintf(stderr, "\n");
  if (ev->lr_reduced) printf("plateau: no improvement for %d validations, lr x0.1\n", p->patience);
  if (ev->kind == AN_EVENT_VAL) {
    printf("step %lld: val top-1 %.2f%%  top-5 %.2f%%\n", (long long)ev->global_step, 100 * ev->val_top1,
           100 * ev->val_top5);
    fflush(stdout);
    return;
  }
  if (ev->val_top1 >= 0)
    printf("epoch %d done: step %lld  mean loss %.4f  val top-1 %.2f%%  top-5 %.2f%%%s\n", ev->epoch + 1,
           (long long)ev->global_step, ev->loss, 100 * ev->val_top1, 100 * ev->val_top5,
           ev->best ? "  (best so far: saved)" : "");
  else
    printf("epoch %d done: step %lld  mean loss %.4f  (no validation set)\n", ev->epoch + 1,
           (long long)ev->global_step, ev->loss);
  fflush(stdout);
}

/* The command line, with its defaults. */
typedef struct train_args {
  const char *model, *data, *val, *out, *device, *norm, *init;
  int epochs, batch, size, threads, ckpt_every, log_every, val_every, patience, schedule;
  int preset, crop, resize, no_flip, resume, separate, freeze, check_sync, accumulate;
  double bucket_mb;
  double pca_std, val_fraction; /* -1: not given */
  long long max_steps;
  an_sgd_params sgd;
  unsigned long long seed;
} train_args;

enum { PRESET_DEFAULT, PRESET_PAPER, PRESET_NONE };

static int parse_args(int argc, char **argv, train_args *a) {
  static const char *const presets[] = {"default", "paper", "none", NULL};
  static const char *const crops[] = {"random", "centre", "center", NULL};
  static const int crop_random[] = {1, 0, 0};
  *a = (train_args){.data = "fashion-mnist",
                    .out = "runs/train",
                    .epochs = 10,
                    .batch = 32,
                    .size = 224,
                    .threads = 2,
                    .ckpt_every = 200,
                    .log_every = 50,
                    .patience = 3,
                    .schedule = AN_LR_COSINE,
                    .preset = PRESET_DEFAULT,
                    .crop = -1,
                    .pca_std = -1,
                    .val_fraction = -1,
                    .sgd = {0.01f, 0.9f, 5e-4f, 0},
                    .bucket_mb = 25,
                    .accumulate = 1,
                    .seed = 1};
  const cli_option options[] = {
      CLI_OPT_STRING("model", 'm', &a->model),
      CLI_OPT_STRING("data", 'D', &a->data),
      CLI_OPT_STRING("val", 'V', &a->val),
      CLI_OPT_DOUBLE("val-fraction", 0, &a->val_fraction, 0, 1, 0, 1),
      CLI_OPT_INT("epochs", 'e', &a->epochs, 1, INT_MAX),
      CLI_OPT_INT64("max-steps", 0, &a->max_steps, 0, LLONG_MAX),
      CLI_OPT_INT("batch", 'b', &a->batch, 1, 65536),
      CLI_OPT_FLOAT("lr", 'l', &a->sgd.lr, 0, INFINITY, 1, 0),
      CLI_OPT_FLOAT("momentum", 0, &a->sgd.momentum, 0, 1, 0, 1),
      CLI_OPT_FLOAT("weight-decay", 0, &a->sgd.weight_decay, 0, INFINITY, 0, 0),
      CLI_OPT_CHOICE("lr-schedule", 0, &a->schedule, an_lr_schedule_names, NULL),
      CLI_OPT_INT("patience", 0, &a->patience, 1, INT_MAX),
      CLI_OPT_INT("input-size", 's', &a->size, 1, 4096),
      CLI_OPT_CHOICE("augment", 0, &a->preset, presets, NULL),
      CLI_OPT_INT("resize", 0, &a->resize, 1, 4096),
      CLI_OPT_CHOICE("crop", 0, &a->crop, crops, crop_random),
      CLI_OPT_FLAG("no-flip", 0, &a->no_flip),
      CLI_OPT_DOUBLE("pca-std", 0, &a->pca_std, 0, 10, 0, 1),
      CLI_OPT_STRING("norm", 0, &a->norm),
      CLI_OPT_UINT64("seed", 'r', &a->seed),
      CLI_OPT_INT("threads", 0, &a->threads, 1, 256), /* the loader's most */
      CLI_OPT_INT("checkpoint-every", 0, &a->ckpt_every, 0, INT_MAX),
      CLI_OPT_INT("log-every", 0, &a->log_every, 1, INT_MAX),
      CLI_OPT_INT("val-every", 0, &a->val_every, 0, INT_MAX),
      CLI_OPT_STRING("out", 'o', &a->out),
      CLI_OPT_FLAG("resume", 0, &a->resume),
      CLI_OPT_STRING("init", 0, &a->init),
      CLI_OPT_FLAG("freeze-features", 0, &a->freeze),
      CLI_OPT_STRING("device", 'd', &a->device),
      CLI_OPT_FLAG("separate-contexts", 0, &a->separate),
      CLI_OPT_INT("accumulate", 0, &a->accumulate, 1, 65536),
      CLI_OPT_DOUBLE("bucket-mb", 0, &a->bucket_mb, 0, 65536, 1, 0),
      CLI_OPT_INT("check-sync", 0, &a->check_sync, 0, INT_MAX),
  };
  const cli_command cmd = {"train", options, sizeof options / sizeof options[0], help, 0};
  int n_positionals;
  const int status = cli_parse(&cmd, argc, argv, &n_positionals);
  if (status != CLI_CONTINUE) return status;
  if (a->model && cli_check_model("train", a->model, 0) != CLI_CONTINUE) return 2;
  if (a->init && a->resume)
    return cli_usage_error("train",
                           "--init starts a new run, --resume continues the one in --out: give one of them");
  if (a->batch % a->accumulate)
    return cli_usage_error("train",
                           "--batch %d does not divide into --accumulate %d equal micro-batches (give a multiple "
                           "of %d)",
                           a->batch, a->accumulate, a->accumulate);
  if (a->val && a->val_fraction > 0) return cli_usage_error("train", "give --val or --val-fraction, not both");
  if (!a->val && a->val_fraction < 0) a->val_fraction = 0.1;
  return CLI_CONTINUE;
}

/* The model: --init's (its shapes; a --model given must be it), --model's, or alexnet-half. A file that
 * fits no model fine-tunes --model's tensors that fit. Returns 0 or the exit status. */
static int choose_model(train_args *a) {
  const an_model_desc *m;
  int classes;
  if (!a->init) {
    if (!a->model) a->model = "alexnet-half";
    return 0;
  }
  if (an_model_identify_file(a->init, NULL, &m, &classes) != AN_OK) {
    if (!a->model) {
      cli_fail("reading --init");
      fprintf(stderr, "alexnet train: give --model to load the tensors of %s that fit it\n", a->init);
      return 1;
    }
    fprintf(stderr, "alexnet train: %s is no whole model (%s): loading the tensors that fit %s\n", a->init,
            an_last_error(), a->model);
    an_clear_error();
    return 0;
  }
  if (a->model && strcmp(a->model, m->name)) /* the message names the tensor and both shapes */
    return an_model_identify_file(a->init, a->model, &m, &classes) != AN_OK ? cli_fail("reading --init") : 1;
  a->model = m->name;
  printf("%s: %s weights, %d classes\n", a->init, m->name, classes);
  return 0;
}

/* The preset, then the single settings the command line changes. */
static int make_augment(const train_args *a, an_augment *aug) {
  *aug = a->preset == PRESET_NONE ? an_augment_none(a->size) : an_augment_default(a->size);
  if (a->preset == PRESET_PAPER) aug->norm = AN_NORM_MEAN;
  if (a->resize) aug->resize = a->resize;
  if (a->crop >= 0) aug->random_crop = a->crop;
  if (a->no_flip) aug->flip = 0;
  if (a->pca_std != -1) aug->pca_std = (float)a->pca_std;
  if (a->norm && an_norm_parse(a->norm, &aug->norm) != AN_OK)
    return cli_usage_error("train", "--norm: '%s' is not one of mean_std, mean, none", a->norm);
  if (aug->resize < a->size)
    return cli_usage_error("train", "--resize %d is smaller than --input-size %d (the crops come from it)",
                           aug->resize, a->size);
  return CLI_CONTINUE;
}

/* The training set and the validation set: --val, a held-out fraction, or none. Returns 0 or the exit
 * status, with nothing left open. */
static int open_datasets(const train_args *a, an_dataset **train, an_dataset **val) {
  an_dataset *all = NULL;
  *train = *val = NULL;
  if (an_dataset_open(a->data, &all) != AN_OK) return cli_fail("opening the training set");
  if (a->val) {
    if (an_dataset_open(a->val, val) != AN_OK) {
      an_dataset_destroy(all);
      return cli_fail("opening the validation set");
    }
  } else if (a->val_fraction > 0) {
    const an_status st = an_dataset_split(all, a->val_fraction, a->seed, train, val);
    an_dataset_destroy(all);
    return st == AN_OK ? 0 : cli_fail("splitting off the validation set");
  }
  *train = all;
  return 0;
}

/* The loop's configuration from the command line; prog NULL: no progress output (ranks other than 0). */
static an_train_config train_config(const train_args *a, const an_augment *aug, const an_dataset *train,
                                    const an_dataset *valset, progress *prog) {
  an_train_config cfg = {.model = a->model,
                         .train = train,
                         .val = valset,
                         .batch = a->batch,
                         .input = a->size,
                         .epochs = a->epochs,
                         .max_steps = a->max_steps,
                         .sgd = a->sgd,
                         .schedule = (an_lr_schedule)a->schedule,
                         .patience = a->patience,
                         .seed = a->seed,
                         .aug = aug,
                         .threads = a->threads,
                         .stats_images = 10000,
                         .checkpoint_every = a->ckpt_every,
                         .val_every = a->val_every,
                         .out_dir = a->out,
                         .resume = a->resume,
                         .init = a->init,
                         .freeze_features = a->freeze,
                         .accumulate = a->accumulate,
                         .measure_loader = 1,
                         .callback = prog ? on_event : NULL,
                         .callback_ctx = prog};
  return cfg;
}

/* Trains on the open devices and datasets and prints the outcome; returns the exit status. */
static int run_training(const train_args *a, const an_augment *aug, an_runtime *rt, an_runtime *rt1,
                        const an_dataset *train, const an_dataset *valset) {
  const an_world world = an_world_get();
  if (world.rank != 0) { /* rank 0 speaks for the job */
    an_train_config cfg = train_config(a, aug, train, valset, NULL);
    an_train_result res;
    return an_train_mpi(rt, rt1, &(an_mpi_options){a->bucket_mb, a->check_sync}, &cfg, &res) == AN_OK
               ? 0
               : cli_fail("training");
  }
  if (world.size > 1)
    printf("%d ranks, data parallel: %d images of each batch per rank, gradients summed in %g MB buckets\n",
           world.size, a->batch / world.size, a->bucket_mb);
  if (rt1)
    printf("split over the two devices: %s\n", an_model_column(an_model_find(a->model))
                                                   ? "alexnet's two columns, one per device"
                                                   : "the batch, half on each device");
  char aug_text[160];
  an_augment_describe(aug, aug_text, sizeof aug_text);
  printf("%s on %s: %d training images, %s%d validation images, %d classes; batch %d, input %d (%s), %s\n", a->model,
         an_dataset_source(train), an_dataset_count(train), a->val ? "" : "held-out ",
         valset ? an_dataset_count(valset) : 0, an_dataset_classes(train), a->batch, a->size, aug_text,
         a->resume ? "resuming"
         : a->init ? "from --init"
                   : "from scratch");
  if (a->accumulate > 1)
    printf("accumulating: each batch as %d micro-batches of %d, gradients summed\n", a->accumulate,
           a->batch / a->accumulate);
  if (a->freeze) printf("features frozen: the convolutions keep their weights; the classifier trains\n");
  fflush(stdout);
  progress prog = {
      .tty = isatty(STDERR_FILENO), .log_every = a->log_every, .threads = a->threads, .patience = a->patience};
  an_train_config cfg = train_config(a, aug, train, valset, &prog);
  an_train_result res;
  const double t0 = an_seconds();
  const an_status st = an_train_mpi(rt, rt1, &(an_mpi_options){a->bucket_mb, a->check_sync}, &cfg, &res);
  if (prog.tty) fprintf(stderr, "\n");
  if (st != AN_OK) return cli_fail(st == AN_ERR_NOT_FINITE ? "training diverged" : "training");
  printf("reached step %lld (this run started at step %lld) in %.1f s; final loss %.4f\n", (long long)res.steps_done,
         (long long)res.start_step, an_seconds() - t0, res.last_loss);
  if (res.val_top1 >= 0)
    printf("validation: top-1 %.2f%%  top-5 %.2f%%  (best top-1 %.2f%%)\n", 100 * res.val_top1, 100 * res.val_top5,
           100 * res.best_top1);
  const char *out = a->out;
  printf("checkpoints: %s/last.safetensors, %s/best.safetensors; log: %s/log.jsonl "
         "(plot: /usr/bin/python3 tools/plot.py %s/log.jsonl)\n",
         out, out, out, out);
  return 0;
}

int cmd_train(int argc, char **argv) {
  train_args a;
  an_augment aug;
  int rc = parse_args(argc, argv, &a);
  if (rc != CLI_CONTINUE) return rc;
  if ((rc = make_augment(&a, &aug)) != CLI_CONTINUE) return rc;
  if ((rc = choose_model(&a)) != 0) return rc;
  const an_world world = an_world_get();
  if (a.batch % world.size) { /* every rank knows it: they all stop, rank 0 says why */
    if (world.rank == 0)
      cli_usage_error("train",
                      "--batch %d does not divide by %d ranks: each rank takes an equal share of the "
                      "global batch (give a multiple of %d)",
                      a.batch, world.size, world.size);
    return 2;
  }
  if (world.size > 1 && a.accumulate > 1) { /* the ranks are the micro-batches */
    if (world.rank == 0)
      cli_usage_error("train",
                      "--accumulate %d runs one process's batch as micro-batches, as that many ranks would: "
                      "under mpirun the ranks are the micro-batches (leave it out)",
                      a.accumulate);
    return 2;
  }
  an_dataset *train = NULL, *valset = NULL;
  an_runtime *rt = NULL, *rt1 = NULL;
  if ((rc = open_datasets(&a, &train, &valset)) != 0) return rc;
  if ((rc = cli_open_rank_devices(a.device, a.separate, &rt, &rt1)) == 0)
    rc = run_training(&a, &aug, rt, rt1, train, valset);
  an_runtime_destroy(rt1);
  an_runtime_destroy(rt);
  an_dataset_destroy(valset);
  an_dataset_destroy(train);
  return rc;
}
