/* The training loop (an_train, an_train_pair, an_train_with): see include/alexnet/train.h. The loop
 * drives an an_trainer (trainer.h) and does not know which: one device, a pair, or another kind; the
 * choice is made once, in create_on_runtimes. Its pieces run in this order: check the arguments,
 * prepare the output directory, compute the statistics, create the trainer, start (initialise or
 * resume), open the loader, open the log, run the steps (each followed by its epoch end, validation or
 * checkpoint), then close a run stopped inside an epoch. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/check.h"
#include "train/run_log.h"
#include "train/trainer.h"

/* A process killed while saving leaves its temporary file (an_st_write's PATH.tmp.XXXXXX) behind: a
 * checkpoint's size each. The next run in the directory removes them. */
static void remove_stale_temporaries(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) return;
  const struct dirent *e;
  char path[1024];
  while ((e = readdir(d))) {
    if (strncmp(e->d_name, "last.safetensors.tmp.", 21) && strncmp(e->d_name, "best.safetensors.tmp.", 21)) continue;
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    unlink(path);
  }
  closedir(d);
}

/* The loader alone for about 1.5 s: one batch (startup included) sizes the real measurement. */
static an_status measure_loader(const an_dataset *ds, const an_loader_config *lc, double *images_per_s) {
  double first;
  an_status st = an_loader_measure(ds, lc, 1, &first);
  if (st != AN_OK) return st;
  int batches = (int)(1.5 * first / lc->batch);
  batches = batches < 2 ? 2 : batches > 400 ? 400 : batches;
  return an_loader_measure(ds, lc, batches, images_per_s);
}

typedef struct run_state {
  const an_train_config *cfg;
  an_train_result *result;
  an_augment aug; /* cfg->aug or the default, ten_crop off */
  an_trainer trainer;
  an_data_stats stats;
  char last_path[1024], best_path[1024], log_path[1024];
  FILE *log;
  an_loader *loader;
  an_loader_config lc;
  int bpe;       /* batches per epoch */
  int64_t total; /* the run's steps (the schedule's length) */
  int64_t step;  /* global steps done */
  double best;   /* best validation top-1 so far; -1: none */
  an_plateau plateau;
  double lr;         /* the last step's learning rate */
  double epoch_loss; /* sum over the epoch's steps run here */
  int epoch_n;
  double t_start; /* when the first step began (the ETA's origin) */
} run_state;

/* The training set's class names, one per line (a newline inside a name becomes a space); malloc'd. */
static char *class_names_text(const an_dataset *ds) {
  size_t len = 1;
  for (int c = 0; c < an_dataset_classes(ds); c++) len += strlen(an_dataset_class_name(ds, c)) + 1;
  char *text = malloc(len), *p = text;
  if (!text) return NULL;
  for (int c = 0; c < an_dataset_classes(ds); c++) {
    for (const char *q = an_dataset_class_name(ds, c); *q; q++) *p++ = *q == '\n' || *q == '\r' ? ' ' : *q;
    if (c + 1 < an_dataset_classes(ds)) *p++ = '\n';
  }
  *p = '\0';
  return text;
}

/* A line of log.jsonl; only the process that writes the files (rank 0) has the log open. */
static void log_line(run_state *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void log_line(run_state *r, const char *fmt, ...) {
  if (!r->log) return;
  va_list ap;
  va_start(ap, fmt);
  vfprintf(r->log, fmt, ap);
  va_end(ap);
}

static void log_flush(run_state *r) {
  if (r->log) fflush(r->log);
}

/* With several ranks (trainer.h's agree): every rank's status, the first failure on all of them. */
static an_status agree(run_state *r, an_status own) {
  return r->trainer.ops->agree ? r->trainer.ops->agree(r->trainer.impl, own) : own;
}

static an_status save_here(run_state *r, const char *path, int64_t step, double lr) {
  an_checkpoint_meta m = {.checkpoint = 1, .epoch = step / r->bpe, .step = step, .seed = r->cfg->seed, .lr = lr};
  an_format_rgb(r->stats.mean, m.mean, sizeof m.mean);
  an_format_rgb(r->stats.std, m.std, sizeof m.std);
  m.resize = r->aug.resize; /* so eval and classify crop the same base image */
  snprintf(m.norm, sizeof m.norm, "%s", an_norm_name(r->aug.norm));
  char *names = class_names_text(r->cfg->train); /* in the metadata, so classify names the classes */
  if (!names) return AN_FAIL(AN_ERR_HOST_ALLOC, "%s: class names", path);
  m.class_names = names;
  const an_status st = an_trainer_save(&r->trainer, path, &m);
  free(names);
  return st;
}

/* Rank 0 writes once every rank has finished the step (all hold the same weights); every rank learns
 * whether the write worked. */
static an_status save(run_state *r, const char *path, int64_t step, double lr) {
  if (r->trainer.ranks == 1) return save_here(r, path, step, lr);
  AN_TRY(agree(r, AN_OK));
  return agree(r, r->trainer.rank == 0 ? save_here(r, path, step, lr) : AN_OK);
}

static an_status write_classes(const an_train_config *cfg) {
  char path[1024], tmp[1040];
  snprintf(path, sizeof path, "%s/classes.txt", cfg->out_dir);
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  FILE *f = fopen(tmp, "w");
  if (!f) return AN_FAIL(AN_ERR_IO, "%s: cannot write: %s", tmp, strerror(errno));
  for (int c = 0; c < an_dataset_classes(cfg->train); c++) fprintf(f, "%s\n", an_dataset_class_name(cfg->train, c));
  if (fclose(f) != 0 || rename(tmp, path) != 0)
    return AN_FAIL(AN_ERR_IO, "%s: cannot write: %s", path, strerror(errno));
  return AN_OK;
}

static an_status validate(run_state *r, double *top1, double *top5) {
  *top1 = *top5 = -1;
  if (!r->cfg->val) return AN_OK;
  an_eval_result e; /* r->aug has no ten-crop (check_config) */
  AN_TRY(an_trainer_evaluate(&r->trainer, r->cfg->val, &r->aug, &r->stats, r->cfg->threads, &e, NULL));
  if (e.samples > 0) {
    *top1 = (double)e.top1 / e.samples;
    *top5 = (double)e.top5 / e.samples;
  }
  r->result->val_top1 = *top1;
  r->result->val_top5 = *top5;
  return AN_OK;
}

/* ---- the run's pieces, in the order an_train_with calls them ---- */

/* The arguments, before anything is created; *aug: the run's training preprocessing. */
static an_status check_config(const an_train_config *cfg, an_augment *aug) {
  if (!cfg->train || !cfg->out_dir || cfg->batch < 1 || cfg->epochs < 1 || cfg->input < 1)
    return AN_FAIL(AN_ERR_ARGUMENT, "train: a training set, an output directory, batch, epochs and input "
                                    "size are required");
  *aug = train_run_augment(cfg);
  aug->ten_crop = 0;
  if (aug->input != cfg->input)
    return AN_FAIL(AN_ERR_ARGUMENT, "train: the augmentation crops %d px, the input size is %d", aug->input,
                   cfg->input);
  AN_TRY(an_augment_check(aug));
  if (aug->scale != 1.0f) /* neither logged nor recorded: eval and classify would not know it */
    return AN_FAIL(AN_ERR_ARGUMENT, "train: augmentation scale %g: training takes scale 1 only", aug->scale);
  if (cfg->val) AN_TRY(an_dataset_check_classes(cfg->train, cfg->val));
  if (cfg->accumulate < 0 || (cfg->accumulate > 1 && cfg->batch % cfg->accumulate))
    return AN_FAIL(AN_ERR_ARGUMENT,
                   "train: --accumulate %d: the batch of %d does not divide into %d equal micro-batches (give "
                   "a batch that is a multiple of %d)",
                   cfg->accumulate, cfg->batch, cfg->accumulate, cfg->accumulate);
  if (cfg->init && cfg->resume)
    return AN_FAIL(AN_ERR_ARGUMENT,
                   "train: --init starts a new run from %s, --resume continues the one in %s: "
                   "give one of them",
                   cfg->init, cfg->out_dir);
  return AN_OK;
}

static an_status prepare_output(run_state *r) {
  const an_train_config *cfg = r->cfg;
  AN_TRY(an_make_dirs(cfg->out_dir));
  snprintf(r->last_path, sizeof r->last_path, "%s/last.safetensors", cfg->out_dir);
  snprintf(r->best_path, sizeof r->best_path, "%s/best.safetensors", cfg->out_dir);
  snprintf(r->log_path, sizeof r->log_path, "%s/log.jsonl", cfg->out_dir);
  return AN_OK;
}

/* Fine-tuning's start: the seed's initialisation, then every tensor of cfg->init that fits over it;
 * the INIT event reports which. */
static an_status init_from_file(run_state *r) {
  const an_train_config *cfg = r->cfg;
  an_trainer *t = &r->trainer;
  an_match_report *report = malloc(sizeof *report);
  float *params = malloc(t->layout.n_params * sizeof *params); /* (n_params) */
  an_status status = AN_OK;
  if (!report || !params) {
    status = AN_FAIL(AN_ERR_HOST_ALLOC, "%s: host copies of %zu parameters", cfg->init, t->layout.n_params);
    goto cleanup;
  }
  AN_TRY_GOTO(t->ops->read_state(t->impl, params, NULL));
  AN_TRY_GOTO(an_checkpoint_load_matching(&t->layout, cfg->init, params, report));
  AN_TRY_GOTO(t->ops->write_state(t->impl, params, NULL));
  AN_TRY_GOTO(t->ops->sync(t->impl));
  if (cfg->callback) {
    const an_train_event ev = {
        .kind = AN_EVENT_INIT, .epochs = cfg->epochs, .val_top1 = -1, .val_top5 = -1, .init = report};
    cfg->callback(cfg->callback_ctx, &ev);
  }
cleanup:
  free(params);
  free(report);
  return status;
}

/* --freeze-features: the trainer keeps the convolutions fixed. */
static an_status freeze_features(run_state *r) {
  const an_model_desc *m = NULL;
  AN_TRY(an_model_lookup(r->cfg->model, &m));
  if (!r->trainer.ops->freeze)
    return AN_FAIL(AN_ERR_ARGUMENT, "train: --freeze-features runs on one device; this run has %d",
                   r->trainer.devices);
  return r->trainer.ops->freeze(r->trainer.impl, an_model_features_end(m));
}

/* A fresh run initialises the trainer (from cfg->init's tensors where they fit); a resumed one loads
 * last.safetensors and the best top-1 logged. */
static an_status start(run_state *r) {
  const an_train_config *cfg = r->cfg;
  r->step = 0;
  r->best = -1;
  if (cfg->freeze_features) AN_TRY(freeze_features(r));
  if (cfg->resume) {
    an_checkpoint_meta m; /* the recipe first: a different --model would fail the load less clearly */
    AN_TRY(train_log_check_recipe(r->log_path, cfg));
    AN_TRY(an_trainer_load(&r->trainer, r->last_path, &m));
    if (!m.checkpoint || (m.input_hw && m.input_hw != cfg->input) || m.seed != cfg->seed)
      return AN_FAIL(AN_ERR_ARGUMENT,
                     "%s: not a checkpoint of this run (kind %s, input %d, seed %llu; the run "
                     "has input %d, seed %llu)",
                     r->last_path, m.checkpoint ? "checkpoint" : "weights", m.input_hw, (unsigned long long)m.seed,
                     cfg->input, (unsigned long long)cfg->seed);
    r->step = m.step;
    r->best = train_log_best_top1(r->log_path);
  } else {
    AN_TRY(r->trainer.ops->init(r->trainer.impl, cfg->seed));
    if (cfg->init) AN_TRY(init_from_file(r));
  }
  r->result->start_step = r->result->steps_done = r->step;
  r->result->best_top1 = r->best;
  if (r->trainer.rank != 0) return AN_OK;
  remove_stale_temporaries(cfg->out_dir);
  return write_classes(cfg);
}

/* The training loader at the run's first batch (a resumed run's checkpoint batch), the run's length,
 * and the loader's own speed when asked. */
static an_status open_loader(run_state *r, int threads) {
  const an_train_config *cfg = r->cfg;
  r->lc = (an_loader_config){.batch = cfg->batch,
                             .threads = threads,
                             .prefetch = 2,
                             .train = 1,
                             .epochs = 0,
                             .seed = cfg->seed,
                             .aug = r->aug,
                             .stats = r->stats,
                             .slice_first = r->trainer.part_first, /* this rank's share of each batch */
                             .slice_count = r->trainer.part_count == cfg->batch ? 0 : r->trainer.part_count};
  r->lc.start_epoch = 0; /* set below, once batches per epoch are known */
  AN_TRY(an_loader_create(cfg->train, &r->lc, &r->loader));
  r->bpe = an_loader_batches_per_epoch(r->loader);
  const int64_t epoch_steps = (int64_t)cfg->epochs * r->bpe;
  r->total = cfg->max_steps > 0 && cfg->max_steps < epoch_steps ? cfg->max_steps : epoch_steps;
  if (r->step > 0) { /* restart the loader at the checkpoint's batch */
    an_loader_destroy(r->loader);
    r->loader = NULL;
    r->lc.start_epoch = (int)(r->step / r->bpe);
    r->lc.start_step = (int)(r->step % r->bpe);
    AN_TRY(an_loader_create(cfg->train, &r->lc, &r->loader));
  }
  if (cfg->measure_loader) {
    r->lc.start_epoch = r->lc.start_step = 0;
    AN_TRY(measure_loader(cfg->train, &r->lc, &r->result->loader_images_per_s));
  }
  return AN_OK;
}

/* log.jsonl: a fresh run's recipe line, or a resumed run's resume line; the loader's event; the plateau
 * state a resumed run replays from the log. */
static an_status open_log(run_state *r) {
  const an_train_config *cfg = r->cfg;
  const double loader_img_s = r->result->loader_images_per_s;
  if (r->trainer.rank == 0) {
    r->log = fopen(r->log_path, cfg->resume ? "a" : "w");
    if (!r->log) return AN_FAIL(AN_ERR_IO, "%s: cannot open: %s", r->log_path, strerror(errno));
  }
  if (!cfg->resume) {
    if (r->log) AN_TRY(train_log_write_recipe(r->log, cfg, r->trainer.devices, loader_img_s));
  } else {
    log_line(r, "{\"type\":\"resume\",\"step\":%lld,\"devices\":%d,\"accumulate\":%d,\"loader_img_s\":%.2f}\n",
             (long long)r->step, r->trainer.devices, cfg->accumulate > 1 ? cfg->accumulate : 1, loader_img_s);
    log_flush(r);
  }
  if (cfg->measure_loader && cfg->callback) {
    an_train_event ev = {.kind = AN_EVENT_LOADER,
                         .epochs = cfg->epochs,
                         .steps_per_epoch = r->bpe,
                         .global_step = r->step,
                         .total_steps = r->total,
                         .lr = cfg->sgd.lr,
                         .images_per_s = loader_img_s,
                         .val_top1 = -1,
                         .val_top5 = -1};
    cfg->callback(cfg->callback_ctx, &ev);
  }
  r->plateau = an_plateau_start(cfg->patience);
  if (cfg->schedule == AN_LR_PLATEAU && r->step > 0)
    r->plateau = train_log_plateau(r->log_path, cfg->patience, r->step);
  return AN_OK;
}

/* One SGD step on batch b (t0: when fetching it began), logged; *ev: its STEP event, sent. */
static an_status train_step(run_state *r, const an_batch *b, double t0, an_train_event *ev) {
  const an_train_config *cfg = r->cfg;
  an_sgd_params sgd = cfg->sgd;
  r->lr = an_lr_at(cfg->schedule, cfg->sgd.lr, r->step, r->total) * r->plateau.factor;
  sgd.lr = (float)r->lr;
  float loss;
  const an_status st = r->trainer.ops->step(r->trainer.impl, b->images, b->labels, &sgd, cfg->seed,
                                            (uint64_t)r->step, &loss);
  if (st == AN_ERR_NOT_FINITE)
    return AN_FAIL(st,
                   "the loss is %s at epoch %d, step %d (global step %lld, lr %g): stopped; %s holds the last "
                   "good state (try a lower --lr)",
                   isnan(loss) ? "NaN" : "Inf", b->epoch, b->step, (long long)r->step, r->lr, r->last_path);
  if (st != AN_OK) return st;
  r->step++;
  const double dt = an_seconds() - t0;
  r->epoch_loss += loss;
  r->epoch_n++;
  r->result->last_loss = loss;
  r->result->steps_done = r->step;
  *ev = (an_train_event){.kind = AN_EVENT_STEP,
                         .epoch = b->epoch,
                         .epochs = cfg->epochs,
                         .step = b->step,
                         .steps_per_epoch = r->bpe,
                         .global_step = r->step,
                         .total_steps = r->total,
                         .loss = loss,
                         .lr = r->lr,
                         .images_per_s = cfg->batch / dt,
                         .val_top1 = -1,
                         .val_top5 = -1};
  const int64_t done_here = r->step - r->result->start_step;
  ev->eta_s = (an_seconds() - r->t_start) / (double)done_here * (double)(r->total - r->step);
  log_line(r, "{\"type\":\"step\",\"epoch\":%d,\"step\":%lld,\"loss\":%.9g,\"lr\":%.7g,\"img_s\":%.2f}\n", b->epoch,
           (long long)r->step, loss, r->lr, ev->images_per_s);
  if (cfg->callback) cfg->callback(cfg->callback_ctx, ev);
  return AN_OK;
}

/* An epoch's last step done: validate, save last (and best), log and send the EPOCH event. */
static an_status end_epoch(run_state *r, const an_batch *b, an_train_event *ev) {
  const an_train_config *cfg = r->cfg;
  double top1, top5;
  AN_TRY(validate(r, &top1, &top5));
  AN_TRY(save(r, r->last_path, r->step, r->lr));
  if (cfg->schedule == AN_LR_PLATEAU) ev->lr_reduced = an_plateau_step(&r->plateau, top1);
  ev->kind = AN_EVENT_EPOCH;
  ev->loss = (float)(r->epoch_loss / r->epoch_n);
  ev->val_top1 = top1;
  ev->val_top5 = top5;
  ev->best = top1 > r->best || (top1 < 0 && r->step >= r->total);
  if (ev->best) {
    AN_TRY(save(r, r->best_path, r->step, r->lr));
    r->best = top1 > r->best ? top1 : r->best;
    r->result->best_top1 = r->best;
  }
  log_line(r,
           "{\"type\":\"epoch\",\"epoch\":%d,\"step\":%lld,\"loss\":%.7g,\"lr\":%.7g,"
           "\"val_top1\":%.6f,\"val_top5\":%.6f,\"best\":%s}\n",
           b->epoch, (long long)r->step, ev->loss, r->lr, top1, top5, ev->best ? "true" : "false");
  log_flush(r);
  if (cfg->callback) cfg->callback(cfg->callback_ctx, ev);
  r->epoch_loss = 0;
  r->epoch_n = 0;
  return AN_OK;
}

/* A step inside an epoch: the extra validation every val_every steps, last.safetensors every
 * checkpoint_every. */
static an_status within_epoch(run_state *r, const an_batch *b, an_train_event *ev) {
  const an_train_config *cfg = r->cfg;
  if (cfg->val_every > 0 && r->step % cfg->val_every == 0 && r->step < r->total) {
    double top1, top5;
    AN_TRY(validate(r, &top1, &top5));
    log_line(r,
             "{\"type\":\"val\",\"epoch\":%d,\"step\":%lld,\"lr\":%.7g,\"val_top1\":%.6f,"
             "\"val_top5\":%.6f}\n",
             b->epoch, (long long)r->step, r->lr, top1, top5);
    if (cfg->schedule == AN_LR_PLATEAU) ev->lr_reduced = an_plateau_step(&r->plateau, top1);
    ev->kind = AN_EVENT_VAL;
    ev->val_top1 = top1;
    ev->val_top5 = top5;
    if (cfg->callback) cfg->callback(cfg->callback_ctx, ev);
  }
  if (cfg->checkpoint_every > 0 && r->step % cfg->checkpoint_every == 0) {
    log_flush(r);
    AN_TRY(save(r, r->last_path, r->step, r->lr));
  }
  return AN_OK;
}

static an_status run_steps(run_state *r) {
  const an_train_config *cfg = r->cfg;
  r->t_start = an_seconds();
  r->epoch_loss = 0;
  r->epoch_n = 0;
  r->lr = an_lr_at(cfg->schedule, cfg->sgd.lr, r->step, r->total) * r->plateau.factor;
  while (r->step < r->total && !(cfg->stop_at_step > 0 && r->step >= cfg->stop_at_step)) {
    const double t0 = an_seconds();
    const an_batch *b;
    AN_TRY(an_loader_next(r->loader, &b));
    if (!b) break;
    an_train_event ev;
    AN_TRY(train_step(r, b, t0, &ev));
    AN_TRY(r->step % r->bpe == 0 ? end_epoch(r, b, &ev) : within_epoch(r, b, &ev));
  }
  return AN_OK;
}

/* Stopped inside an epoch (max steps or stop_at_step): keep the state, and validate at the run's end. */
static an_status finish_partial_epoch(run_state *r) {
  const an_train_config *cfg = r->cfg;
  const int64_t step = r->step;
  if (step % r->bpe == 0 || step <= r->result->start_step) return AN_OK;
  AN_TRY(save(r, r->last_path, step, r->lr));
  if (step < r->total) return AN_OK;
  double top1, top5;
  AN_TRY(validate(r, &top1, &top5));
  const int is_best = top1 > r->best || top1 < 0;
  if (is_best) AN_TRY(save(r, r->best_path, step, r->lr));
  if (top1 > r->best) r->result->best_top1 = r->best = top1;
  const double epoch_loss = r->epoch_n ? r->epoch_loss / r->epoch_n : 0.0;
  log_line(r,
           "{\"type\":\"epoch\",\"epoch\":%d,\"step\":%lld,\"loss\":%.7g,\"lr\":%.7g,"
           "\"val_top1\":%.6f,\"val_top5\":%.6f,\"best\":%s,\"partial\":true}\n",
           (int)(step / r->bpe), (long long)step, epoch_loss, r->lr, top1, top5, is_best ? "true" : "false");
  an_train_event ev = {.kind = AN_EVENT_EPOCH,
                       .epoch = (int)(step / r->bpe),
                       .epochs = cfg->epochs,
                       .step = (int)(step % r->bpe),
                       .steps_per_epoch = r->bpe,
                       .global_step = step,
                       .total_steps = r->total,
                       .loss = (float)epoch_loss,
                       .lr = r->lr,
                       .val_top1 = top1,
                       .val_top5 = top5,
                       .best = is_best};
  if (cfg->callback) cfg->callback(cfg->callback_ctx, &ev);
  return AN_OK;
}

/* Everything after the trainer exists; the caller closes what r holds. */
static an_status run(run_state *r, int threads) {
  AN_TRY(agree(r, start(r))); /* a rank that cannot resume stops all of them */
  AN_TRY(agree(r, open_loader(r, threads)));
  AN_TRY(agree(r, open_log(r)));
  AN_TRY(run_steps(r));
  return finish_partial_epoch(r);
}

an_status an_train_with(an_trainer_create_fn create, void *ctx, const an_train_config *cfg,
                        an_train_result *result) {
  run_state r = {.cfg = cfg, .result = result};
  memset(result, 0, sizeof *result);
  result->val_top1 = result->val_top5 = result->best_top1 = -1;
  AN_TRY(check_config(cfg, &r.aug));
  AN_TRY(prepare_output(&r));
  const int classes = an_dataset_classes(cfg->train), threads = cfg->threads > 0 ? cfg->threads : 1;
  AN_TRY(an_data_stats_compute(cfg->train, cfg->stats_images, cfg->seed, threads, NULL, NULL, &r.stats));
  result->stats = r.stats;
  AN_TRY(create(ctx, cfg->model, classes, cfg->batch, cfg->input, &r.trainer));
  const an_status status = run(&r, threads);
  if (r.log) fclose(r.log);
  an_loader_destroy(r.loader);
  an_trainer_destroy(&r.trainer);
  return status;
}

typedef struct runtimes_ctx {
  an_runtime *rt[2];
  int accumulate;
} runtimes_ctx;

/* The one place that decides what trains: one device (in micro-batches with accumulate > 1), or a pair
 * when rt[1] is given. */
static an_status create_on_runtimes(void *ctx, const char *model, int classes, int batch, int input_hw,
                                    an_trainer *out) {
  const runtimes_ctx *c = ctx;
  if (c->accumulate > 1 && c->rt[1])
    return AN_FAIL(AN_ERR_ARGUMENT, "--accumulate runs on one device: give one --device, not a pair");
  if (c->accumulate > 1)
    return an_trainer_create_accum(c->rt[0], model, classes, batch, c->accumulate, input_hw, out);
  return c->rt[1] ? an_trainer_create_pair(c->rt[0], c->rt[1], model, classes, batch, input_hw, out)
                  : an_trainer_create_net(c->rt[0], model, classes, batch, input_hw, out);
}

an_status an_train(an_runtime *rt, const an_train_config *cfg, an_train_result *result) {
  return an_train_pair(rt, NULL, cfg, result);
}

an_status an_train_pair(an_runtime *rt0, an_runtime *rt1, const an_train_config *cfg, an_train_result *result) {
  runtimes_ctx c = {{rt0, rt1}, cfg->accumulate};
  return an_train_with(create_on_runtimes, &c, cfg, result);
}
