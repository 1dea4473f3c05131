/* The training loop (an_train) and evaluation (an_evaluate): see include/alexnet/train.h.
 * Lives in src/data/ because that directory is globbed into alexnet_core; it is the model's loop.
 * One loop for one device and for the two-device split: it drives a `trainable`, a net or a split,
 * through the handful of operations the two share. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "alexnet/io.h"
#include "alexnet/split.h"
#include "alexnet/train.h"

#define TRAIN_ERR(status, ...) an_error((status), __FILE__, __LINE__, __VA_ARGS__)

/* ---- what the loop trains: a net on one device or a split over two ---- */

typedef struct trainable {
  an_net *net;     /* one device */
  an_split *split; /* or two; exactly one of the two is set */
} trainable;

static an_status tr_create(an_runtime *rt0, an_runtime *rt1, const char *model, int classes, int batch, int input,
                           trainable *t) {
  t->net = NULL, t->split = NULL;
  return rt1 ? an_split_create(rt0, rt1, model, classes, batch, input, &t->split)
             : an_net_create(rt0, model, classes, batch, input, &t->net);
}
static void tr_destroy(trainable *t) {
  an_split_destroy(t->split);
  an_net_destroy(t->net);
}
static int tr_batch(const trainable *t) { return t->net ? t->net->batch : t->split->batch; }
static int tr_classes(const trainable *t) { return t->net ? t->net->classes : t->split->classes; }
static an_status tr_init(trainable *t, uint64_t seed) {
  return t->net ? an_net_init(t->net, seed) : an_split_init(t->split, seed);
}
static an_status tr_load(trainable *t, const char *path, an_checkpoint_meta *m) {
  return t->net ? an_net_load(t->net, path, m) : an_split_load(t->split, path, m);
}
static an_status tr_save(trainable *t, const char *path, const an_checkpoint_meta *m) {
  return t->net ? an_net_save(t->net, path, m) : an_split_save(t->split, path, m);
}
static an_status tr_train_step(trainable *t, const float *images, const int *labels, const an_sgd_params *p,
                               uint64_t seed, uint64_t step, float *loss) {
  return t->net ? an_net_train_step(t->net, images, labels, p, seed, step, loss)
                : an_split_train_step(t->split, images, labels, p, seed, step, loss);
}
/* Inference on a batch: images (N, 3, H, W) in, logits (N, classes) out, dropout off. */
static an_status tr_infer(trainable *t, const float *images, const int *labels, float *logits) {
  an_status st;
  if (t->net) {
    if ((st = an_net_set_batch(t->net, images, labels)) != AN_OK) return st;
    if ((st = an_net_forward(t->net, 0, 0, 0)) != AN_OK) return st;
    return an_net_read_logits(t->net, logits);
  }
  if ((st = an_split_set_batch(t->split, images, labels)) != AN_OK) return st;
  if ((st = an_split_forward(t->split, 0, 0, 0)) != AN_OK) return st;
  return an_split_read_logits(t->split, logits);
}

double an_lr_at(an_lr_schedule schedule, double base_lr, int64_t step, int64_t total) {
  const double t = total > 0 ? (double)step / (double)total : 0.0;
  switch (schedule) {
    case AN_LR_STEP: return base_lr * (t >= 2.0 / 3 ? 0.01 : t >= 1.0 / 3 ? 0.1 : 1.0);
    case AN_LR_COSINE: return base_lr * 0.5 * (1.0 + cos(M_PI * (t > 1 ? 1 : t)));
    default: return base_lr; /* none, and plateau before its factor */
  }
}

an_plateau an_plateau_start(int patience) {
  an_plateau p = {.patience = patience > 0 ? patience : 3, .best = -1, .bad = 0, .factor = 1.0};
  return p;
}

int an_plateau_step(an_plateau *p, double top1) {
  if (top1 < 0) return 0; /* no validation set: nothing to judge by */
  if (top1 > p->best) {
    p->best = top1;
    p->bad = 0;
    return 0;
  }
  if (++p->bad < p->patience) return 0;
  p->bad = 0;
  p->factor *= 0.1;
  return 1;
}

void an_format_rgb(const float v[3], char *buf, size_t size) {
  snprintf(buf, size, "%.9g,%.9g,%.9g", v[0], v[1], v[2]);
}

int an_parse_rgb(const char *s, float v[3]) {
  return s && sscanf(s, "%f,%f,%f", &v[0], &v[1], &v[2]) == 3;
}

/* Softmax of row (classes) added into acc (classes). */
static void add_softmax(const float *row, int classes, double *acc) {
  float m = row[0];
  for (int c = 1; c < classes; c++) m = row[c] > m ? row[c] : m;
  double sum = 0;
  for (int c = 0; c < classes; c++) sum += exp((double)row[c] - m);
  for (int c = 0; c < classes; c++) acc[c] += exp((double)row[c] - m) / sum;
}

static an_status evaluate(trainable *t, const an_dataset *ds, const an_augment *aug, const an_data_stats *stats,
                          int threads, an_eval_result *out, int64_t *confusion) {
  const int crops = an_augment_crops(aug, 0), classes = tr_classes(t), batch = tr_batch(t);
  memset(out, 0, sizeof *out);
  if (batch % crops)
    return TRAIN_ERR(AN_ERR_ARGUMENT, "evaluate: net batch %d is not a multiple of %d crops", batch, crops);
  if (an_dataset_classes(ds) > classes)
    return TRAIN_ERR(AN_ERR_ARGUMENT, "evaluate: %s has %d classes, the net %d", an_dataset_source(ds),
                     an_dataset_classes(ds), classes);
  an_loader_config lc = {.batch = batch / crops, .threads = threads > 0 ? threads : 1, .prefetch = 2,
                         .train = 0, .epochs = 1, .aug = *aug, .stats = *stats};
  an_loader *ld = NULL;
  float *logits = malloc((size_t)batch * classes * sizeof *logits); /* (batch, classes) */
  double *prob = malloc((size_t)classes * sizeof *prob);
  an_status st = AN_OK;
  if (!logits || !prob) {
    st = TRAIN_ERR(AN_ERR_HOST_ALLOC, "evaluate: out of host memory");
    goto done;
  }
  if ((st = an_loader_create(ds, &lc, &ld)) != AN_OK) goto done;
  for (;;) {
    const an_batch *b;
    if ((st = an_loader_next(ld, &b)) != AN_OK) goto done;
    if (!b) break;
    if ((st = tr_infer(t, b->images, b->labels, logits)) != AN_OK) goto done;
    for (int j = 0; j < b->samples; j++) {
      if (b->index[j] < 0) continue;
      memset(prob, 0, (size_t)classes * sizeof *prob);
      for (int k = 0; k < crops; k++) add_softmax(logits + (size_t)(j * crops + k) * classes, classes, prob);
      const int label = b->labels[j * crops];
      int rank = 0, best = 0;
      for (int c = 0; c < classes; c++) {
        if (prob[c] > prob[label] || (prob[c] == prob[label] && c < label)) rank++;
        if (prob[c] > prob[best]) best = c;
      }
      out->samples++;
      out->top1 += rank == 0;
      out->top5 += rank < 5;
      if (confusion) confusion[(size_t)label * classes + best]++;
    }
  }
done:
  an_loader_destroy(ld);
  free(logits);
  free(prob);
  return st;
}

an_status an_evaluate(an_net *net, const an_dataset *ds, const an_augment *aug, const an_data_stats *stats,
                      int threads, an_eval_result *out, int64_t *confusion) {
  trainable t = {.net = net};
  return evaluate(&t, ds, aug, stats, threads, out, confusion);
}

an_status an_evaluate_split(an_split *s, const an_dataset *ds, const an_augment *aug, const an_data_stats *stats,
                            int threads, an_eval_result *out, int64_t *confusion) {
  trainable t = {.split = s};
  return evaluate(&t, ds, aug, stats, threads, out, confusion);
}

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

/* The best validation top-1 logged so far in log.jsonl (a resumed run keeps its best checkpoint). */
static double best_from_log(const char *path) {
  FILE *f = fopen(path, "r");
  double best = -1;
  char line[1024];
  if (!f) return best;
  while (fgets(line, sizeof line, f)) {
    const char *p = strstr(line, "\"val_top1\":");
    if (p && strstr(line, "\"best\":true")) {
      const double v = strtod(p + 11, NULL);
      if (v > best) best = v;
    }
  }
  fclose(f);
  return best;
}

/* ---- the run's recipe: written as log.jsonl's first line, checked when resuming ---- */

typedef struct recipe_field {
  const char *key, *option;
  char value[300];
} recipe_field;

enum { N_RECIPE = 13 };

static const char *schedule_name(an_lr_schedule s) {
  switch (s) {
    case AN_LR_STEP: return "step";
    case AN_LR_COSINE: return "cosine";
    case AN_LR_PLATEAU: return "plateau";
    default: return "none";
  }
}

/* The run's training preprocessing: cfg->aug, or the default at its input size. */
static an_augment run_augment(const an_train_config *cfg) {
  return cfg->aug ? *cfg->aug : an_augment_default(cfg->input);
}

static void recipe_of(const an_train_config *cfg, recipe_field f[N_RECIPE]) {
  static const char *const keys[N_RECIPE][2] = {
      {"model", "--model"}, {"data", "--data"}, {"val", "--val/--val-fraction"}, {"batch", "--batch"},
      {"input_size", "--input-size"}, {"epochs", "--epochs"}, {"max_steps", "--max-steps"}, {"lr", "--lr"},
      {"momentum", "--momentum"}, {"weight_decay", "--weight-decay"}, {"lr_schedule", "--lr-schedule"},
      {"patience", "--patience"}, {"augment", "the augmentation (--augment, --resize, --crop, --no-flip, --pca-std, --norm)"}};
  for (int i = 0; i < N_RECIPE; i++) f[i].key = keys[i][0], f[i].option = keys[i][1];
  const size_t n = sizeof f[0].value;
  snprintf(f[0].value, n, "%s", cfg->model);
  snprintf(f[1].value, n, "%s (%d images)", an_dataset_source(cfg->train), an_dataset_count(cfg->train));
  if (cfg->val) snprintf(f[2].value, n, "%s (%d images)", an_dataset_source(cfg->val), an_dataset_count(cfg->val));
  else snprintf(f[2].value, n, "none");
  snprintf(f[3].value, n, "%d", cfg->batch);
  snprintf(f[4].value, n, "%d", cfg->input);
  snprintf(f[5].value, n, "%d", cfg->epochs);
  snprintf(f[6].value, n, "%lld", (long long)cfg->max_steps);
  snprintf(f[7].value, n, "%.7g", cfg->sgd.lr); /* 7 digits: a float as it was typed */
  snprintf(f[8].value, n, "%.7g", cfg->sgd.momentum);
  snprintf(f[9].value, n, "%.7g%s", cfg->sgd.weight_decay, cfg->sgd.no_bias_decay ? " (not on biases)" : "");
  snprintf(f[10].value, n, "%s", schedule_name(cfg->schedule));
  if (cfg->schedule == AN_LR_PLATEAU) snprintf(f[11].value, n, "%d", an_plateau_start(cfg->patience).patience);
  else snprintf(f[11].value, n, "-");
  const an_augment aug = run_augment(cfg);
  an_augment_describe(&aug, f[12].value, n);
}

/* {"type":"run", recipe…, "seed":"…", "devices":…, "loader_img_s":…}; the device count is not part of the
 * recipe: a run may resume on one device or two. */
static an_status write_recipe(FILE *log, const an_train_config *cfg, int devices, double loader_img_s) {
  recipe_field f[N_RECIPE];
  recipe_of(cfg, f);
  cJSON *o = cJSON_CreateObject();
  char seed[32];
  snprintf(seed, sizeof seed, "%llu", (unsigned long long)cfg->seed);
  int ok = o && cJSON_AddStringToObject(o, "type", "run");
  for (int i = 0; ok && i < N_RECIPE; i++) ok = cJSON_AddStringToObject(o, f[i].key, f[i].value) != NULL;
  ok = ok && cJSON_AddStringToObject(o, "seed", seed) && cJSON_AddNumberToObject(o, "devices", devices) &&
       cJSON_AddNumberToObject(o, "loader_img_s", loader_img_s);
  char *text = ok ? cJSON_PrintUnformatted(o) : NULL;
  cJSON_Delete(o);
  if (!text) return TRAIN_ERR(AN_ERR_HOST_ALLOC, "out of host memory for the run's log line");
  fprintf(log, "%s\n", text);
  cJSON_free(text);
  fflush(log);
  return AN_OK;
}

/* A resumed run must be the logged one: the first differing option is an error naming both values. */
static an_status check_recipe(const char *log_path, const an_train_config *cfg) {
  FILE *lf = fopen(log_path, "r");
  if (!lf)
    return TRAIN_ERR(AN_ERR_ARGUMENT, "%s: cannot open (%s), so the run to resume is unknown: --resume needs the "
                     "run's log", log_path, strerror(errno));
  char line[4096];
  cJSON *run = NULL;
  while (!run && fgets(line, sizeof line, lf))
    if (strstr(line, "\"type\":\"run\"")) run = cJSON_Parse(line);
  fclose(lf);
  if (!run)
    return TRAIN_ERR(AN_ERR_ARGUMENT, "%s: no \"run\" line, so the recipe of the run to resume is unknown "
                     "(--resume needs a log written by this version)", log_path);
  recipe_field f[N_RECIPE];
  recipe_of(cfg, f);
  an_status st = AN_OK;
  for (int i = 0; i < N_RECIPE && st == AN_OK; i++) {
    const char *logged = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(run, f[i].key));
    char fixed[300];
    if (!logged && i == N_RECIPE - 1) { /* logs from before the augmentation was an option: the default */
      const an_augment d = an_augment_default(cfg->input);
      an_augment_describe(&d, fixed, sizeof fixed);
      logged = fixed;
    }
    if (!logged || strcmp(logged, f[i].value))
      st = TRAIN_ERR(AN_ERR_ARGUMENT, "--resume: %s is %s here, the run being resumed (%s) has %s; give the run's "
                     "options, or another --out for a new run", f[i].option, f[i].value, log_path,
                     logged ? logged : "(not logged)");
  }
  cJSON_Delete(run);
  return st;
}

/* The plateau state at checkpoint step `upto`, replayed from the validations logged up to it. Lines a
 * killed attempt logged past its last checkpoint are followed by the resumed attempt's: a validation at
 * a step not after the previous one discards the previous ones from that step on. */
static an_plateau plateau_from_log(const char *path, int patience, int64_t upto) {
  enum { MAX_VALS = 4096 };
  static double top1s[MAX_VALS];
  static int64_t steps[MAX_VALS];
  int n = 0;
  FILE *f = fopen(path, "r");
  char line[1024];
  while (f && fgets(line, sizeof line, f)) {
    const char *v = strstr(line, "\"val_top1\":"), *s = strstr(line, "\"step\":");
    if (!v || !s) continue;
    const int64_t step = strtoll(s + 7, NULL, 10);
    if (step > upto) continue;
    while (n > 0 && steps[n - 1] >= step) n--;
    if (n == MAX_VALS) continue;
    steps[n] = step;
    top1s[n++] = strtod(v + 11, NULL);
  }
  if (f) fclose(f);
  an_plateau p = an_plateau_start(patience);
  for (int i = 0; i < n; i++) an_plateau_step(&p, top1s[i]);
  return p;
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
  an_augment aug; /* cfg->aug or the default */
  trainable model;
  an_data_stats stats;
  char last_path[1024], best_path[1024], log_path[1024];
  FILE *log;
  int bpe;
  int64_t total;
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

static an_status save(run_state *r, const char *path, int64_t step, double lr) {
  an_checkpoint_meta m = {.checkpoint = 1, .epoch = step / r->bpe, .step = step, .seed = r->cfg->seed, .lr = lr};
  an_format_rgb(r->stats.mean, m.mean, sizeof m.mean);
  an_format_rgb(r->stats.std, m.std, sizeof m.std);
  m.resize = r->aug.resize; /* so eval and classify crop the same base image */
  snprintf(m.norm, sizeof m.norm, "%s", an_norm_name(r->aug.norm));
  char *names = class_names_text(r->cfg->train); /* in the metadata, so classify names the classes */
  if (!names) return TRAIN_ERR(AN_ERR_HOST_ALLOC, "%s: class names", path);
  m.class_names = names;
  const an_status st = tr_save(&r->model, path, &m);
  free(names);
  return st;
}

static an_status write_classes(const an_train_config *cfg) {
  char path[1024], tmp[1040];
  snprintf(path, sizeof path, "%s/classes.txt", cfg->out_dir);
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  FILE *f = fopen(tmp, "w");
  if (!f) return TRAIN_ERR(AN_ERR_IO, "%s: cannot write: %s", tmp, strerror(errno));
  for (int c = 0; c < an_dataset_classes(cfg->train); c++) fprintf(f, "%s\n", an_dataset_class_name(cfg->train, c));
  if (fclose(f) != 0 || rename(tmp, path) != 0)
    return TRAIN_ERR(AN_ERR_IO, "%s: cannot write: %s", path, strerror(errno));
  return AN_OK;
}

static an_status validate(run_state *r, double *top1, double *top5) {
  *top1 = *top5 = -1;
  if (!r->cfg->val) return AN_OK;
  an_augment aug = r->aug;
  aug.ten_crop = 0;
  an_eval_result e;
  an_status st = evaluate(&r->model, r->cfg->val, &aug, &r->stats, r->cfg->threads, &e, NULL);
  if (st != AN_OK) return st;
  if (e.samples > 0) {
    *top1 = (double)e.top1 / e.samples;
    *top5 = (double)e.top5 / e.samples;
  }
  return AN_OK;
}

an_status an_train(an_runtime *rt, const an_train_config *cfg, an_train_result *result) {
  return an_train_pair(rt, NULL, cfg, result);
}

an_status an_train_pair(an_runtime *rt0, an_runtime *rt1, const an_train_config *cfg, an_train_result *result) {
  run_state r = {.cfg = cfg};
  an_loader *ld = NULL;
  an_status st;
  memset(result, 0, sizeof *result);
  result->val_top1 = result->val_top5 = result->best_top1 = -1;
  if (!cfg->train || !cfg->out_dir || cfg->batch < 1 || cfg->epochs < 1 || cfg->input < 1)
    return TRAIN_ERR(AN_ERR_ARGUMENT, "train: a training set, an output directory, batch, epochs and input "
                                      "size are required");
  r.aug = run_augment(cfg);
  r.aug.ten_crop = 0;
  if (r.aug.input != cfg->input)
    return TRAIN_ERR(AN_ERR_ARGUMENT, "train: the augmentation crops %d px, the input size is %d", r.aug.input,
                     cfg->input);
  if ((st = an_augment_check(&r.aug)) != AN_OK) return st;
  if (r.aug.scale != 1.0f) /* neither logged nor recorded: eval and classify would not know it */
    return TRAIN_ERR(AN_ERR_ARGUMENT, "train: augmentation scale %g: training takes scale 1 only", r.aug.scale);
  if (cfg->val && (st = an_dataset_check_classes(cfg->train, cfg->val)) != AN_OK) return st;
  if ((st = an_make_dirs(cfg->out_dir)) != AN_OK) return st;
  remove_stale_temporaries(cfg->out_dir);
  snprintf(r.last_path, sizeof r.last_path, "%s/last.safetensors", cfg->out_dir);
  snprintf(r.best_path, sizeof r.best_path, "%s/best.safetensors", cfg->out_dir);
  snprintf(r.log_path, sizeof r.log_path, "%s/log.jsonl", cfg->out_dir);

  const int classes = an_dataset_classes(cfg->train), threads = cfg->threads > 0 ? cfg->threads : 1;
  const int devices = rt1 ? 2 : 1;
  if ((st = an_data_stats_compute(cfg->train, cfg->stats_images, cfg->seed, threads, NULL, NULL, &r.stats)) != AN_OK)
    return st;
  result->stats = r.stats;
  if ((st = tr_create(rt0, rt1, cfg->model, classes, cfg->batch, cfg->input, &r.model)) != AN_OK) return st;

  int64_t step = 0;
  double best = -1;
  if (cfg->resume) {
    an_checkpoint_meta m; /* the recipe first: a different --model would fail the load less clearly */
    if ((st = check_recipe(r.log_path, cfg)) != AN_OK) goto done;
    if ((st = tr_load(&r.model, r.last_path, &m)) != AN_OK) goto done;
    if (!m.checkpoint || (m.input_hw && m.input_hw != cfg->input) || m.seed != cfg->seed) {
      st = TRAIN_ERR(AN_ERR_ARGUMENT, "%s: not a checkpoint of this run (kind %s, input %d, seed %llu; the run "
                     "has input %d, seed %llu)", r.last_path, m.checkpoint ? "checkpoint" : "weights", m.input_hw,
                     (unsigned long long)m.seed, cfg->input, (unsigned long long)cfg->seed);
      goto done;
    }
    step = m.step;
    best = best_from_log(r.log_path);
  } else if ((st = tr_init(&r.model, cfg->seed)) != AN_OK) {
    goto done;
  }
  result->start_step = result->steps_done = step;
  result->best_top1 = best;
  if ((st = write_classes(cfg)) != AN_OK) goto done;

  an_loader_config lc = {.batch = cfg->batch, .threads = threads, .prefetch = 2, .train = 1, .epochs = 0,
                         .seed = cfg->seed, .aug = r.aug, .stats = r.stats};
  lc.start_epoch = 0; /* set below, once batches per epoch are known */
  if ((st = an_loader_create(cfg->train, &lc, &ld)) != AN_OK) goto done;
  r.bpe = an_loader_batches_per_epoch(ld);
  const int64_t epoch_steps = (int64_t)cfg->epochs * r.bpe;
  r.total = cfg->max_steps > 0 && cfg->max_steps < epoch_steps ? cfg->max_steps : epoch_steps;
  if (step > 0) { /* restart the loader at the checkpoint's batch */
    an_loader_destroy(ld);
    ld = NULL;
    lc.start_epoch = (int)(step / r.bpe);
    lc.start_step = (int)(step % r.bpe);
    if ((st = an_loader_create(cfg->train, &lc, &ld)) != AN_OK) goto done;
  }
  if (cfg->measure_loader) {
    lc.start_epoch = lc.start_step = 0;
    st = measure_loader(cfg->train, &lc, &result->loader_images_per_s);
    lc.start_epoch = (int)(step / r.bpe);
    lc.start_step = (int)(step % r.bpe);
    if (st != AN_OK) goto done;
  }
  r.log = fopen(r.log_path, cfg->resume ? "a" : "w");
  if (!r.log) {
    st = TRAIN_ERR(AN_ERR_IO, "%s: cannot open: %s", r.log_path, strerror(errno));
    goto done;
  }
  if (!cfg->resume) {
    if ((st = write_recipe(r.log, cfg, devices, result->loader_images_per_s)) != AN_OK) goto done;
  } else {
    fprintf(r.log, "{\"type\":\"resume\",\"step\":%lld,\"devices\":%d,\"loader_img_s\":%.2f}\n", (long long)step,
            devices, result->loader_images_per_s);
    fflush(r.log);
  }
  if (cfg->measure_loader && cfg->callback) {
    an_train_event ev = {.kind = AN_EVENT_LOADER, .epochs = cfg->epochs, .steps_per_epoch = r.bpe,
                         .global_step = step, .total_steps = r.total, .lr = cfg->sgd.lr,
                         .images_per_s = result->loader_images_per_s, .val_top1 = -1, .val_top5 = -1};
    cfg->callback(cfg->callback_ctx, &ev);
  }
  an_plateau plateau = an_plateau_start(cfg->patience);
  if (cfg->schedule == AN_LR_PLATEAU && step > 0) plateau = plateau_from_log(r.log_path, cfg->patience, step);

  const double t_start = an_seconds();
  double epoch_loss = 0;
  int epoch_n = 0;
  double lr = an_lr_at(cfg->schedule, cfg->sgd.lr, step, r.total) * plateau.factor;
  while (step < r.total && !(cfg->stop_at_step > 0 && step >= cfg->stop_at_step)) {
    const double t0 = an_seconds();
    const an_batch *b;
    if ((st = an_loader_next(ld, &b)) != AN_OK) goto done;
    if (!b) break;
    an_sgd_params sgd = cfg->sgd;
    lr = an_lr_at(cfg->schedule, cfg->sgd.lr, step, r.total) * plateau.factor;
    sgd.lr = (float)lr;
    float loss;
    st = tr_train_step(&r.model, b->images, b->labels, &sgd, cfg->seed, (uint64_t)step, &loss);
    if (st == AN_ERR_NOT_FINITE) {
      TRAIN_ERR(st, "the loss is %s at epoch %d, step %d (global step %lld, lr %g): stopped; %s holds the last "
                "good state (try a lower --lr)", isnan(loss) ? "NaN" : "Inf", b->epoch, b->step, (long long)step,
                lr, r.last_path);
      goto done;
    }
    if (st != AN_OK) goto done;
    step++;
    const double dt = an_seconds() - t0;
    epoch_loss += loss;
    epoch_n++;
    result->last_loss = loss;
    result->steps_done = step;
    an_train_event ev = {.kind = AN_EVENT_STEP, .epoch = b->epoch, .epochs = cfg->epochs, .step = b->step,
                         .steps_per_epoch = r.bpe, .global_step = step, .total_steps = r.total, .loss = loss,
                         .lr = lr, .images_per_s = cfg->batch / dt, .val_top1 = -1, .val_top5 = -1};
    const int64_t done_here = step - result->start_step;
    ev.eta_s = (an_seconds() - t_start) / (double)done_here * (double)(r.total - step);
    fprintf(r.log, "{\"type\":\"step\",\"epoch\":%d,\"step\":%lld,\"loss\":%.9g,\"lr\":%.7g,\"img_s\":%.2f}\n",
            b->epoch, (long long)step, loss, lr, ev.images_per_s);
    if (cfg->callback) cfg->callback(cfg->callback_ctx, &ev);

    const int epoch_end = step % r.bpe == 0;
    if (epoch_end) {
      double top1, top5;
      if ((st = validate(&r, &top1, &top5)) != AN_OK) goto done;
      result->val_top1 = top1;
      result->val_top5 = top5;
      if ((st = save(&r, r.last_path, step, lr)) != AN_OK) goto done;
      if (cfg->schedule == AN_LR_PLATEAU) ev.lr_reduced = an_plateau_step(&plateau, top1);
      ev.kind = AN_EVENT_EPOCH;
      ev.loss = (float)(epoch_loss / epoch_n);
      ev.val_top1 = top1;
      ev.val_top5 = top5;
      ev.best = top1 > best || (top1 < 0 && step >= r.total);
      if (ev.best) {
        if ((st = save(&r, r.best_path, step, lr)) != AN_OK) goto done;
        best = top1 > best ? top1 : best;
        result->best_top1 = best;
      }
      fprintf(r.log, "{\"type\":\"epoch\",\"epoch\":%d,\"step\":%lld,\"loss\":%.7g,\"lr\":%.7g,"
              "\"val_top1\":%.6f,\"val_top5\":%.6f,\"best\":%s}\n", b->epoch, (long long)step, ev.loss, lr, top1,
              top5, ev.best ? "true" : "false");
      fflush(r.log);
      if (cfg->callback) cfg->callback(cfg->callback_ctx, &ev);
      epoch_loss = 0;
      epoch_n = 0;
    } else {
      if (cfg->val_every > 0 && step % cfg->val_every == 0 && step < r.total) {
        double top1, top5;
        if ((st = validate(&r, &top1, &top5)) != AN_OK) goto done;
        result->val_top1 = top1;
        result->val_top5 = top5;
        fprintf(r.log, "{\"type\":\"val\",\"epoch\":%d,\"step\":%lld,\"lr\":%.7g,\"val_top1\":%.6f,"
                "\"val_top5\":%.6f}\n", b->epoch, (long long)step, lr, top1, top5);
        if (cfg->schedule == AN_LR_PLATEAU) ev.lr_reduced = an_plateau_step(&plateau, top1);
        ev.kind = AN_EVENT_VAL;
        ev.val_top1 = top1;
        ev.val_top5 = top5;
        if (cfg->callback) cfg->callback(cfg->callback_ctx, &ev);
      }
      if (cfg->checkpoint_every > 0 && step % cfg->checkpoint_every == 0) {
        fflush(r.log);
        if ((st = save(&r, r.last_path, step, lr)) != AN_OK) goto done;
      }
    }
  }
  /* stopped inside an epoch (max steps or stop_at_step): keep the state, and validate at the run's end */
  if (step % r.bpe != 0 && step > result->start_step) {
    if ((st = save(&r, r.last_path, step, lr)) != AN_OK) goto done;
    if (step >= r.total) {
      double top1, top5;
      if ((st = validate(&r, &top1, &top5)) != AN_OK) goto done;
      result->val_top1 = top1;
      result->val_top5 = top5;
      const int is_best = top1 > best || top1 < 0;
      if (is_best && (st = save(&r, r.best_path, step, lr)) != AN_OK) goto done;
      if (top1 > best) result->best_top1 = best = top1;
      fprintf(r.log, "{\"type\":\"epoch\",\"epoch\":%d,\"step\":%lld,\"loss\":%.7g,\"lr\":%.7g,"
              "\"val_top1\":%.6f,\"val_top5\":%.6f,\"best\":%s,\"partial\":true}\n", (int)(step / r.bpe),
              (long long)step, epoch_n ? epoch_loss / epoch_n : 0.0, lr, top1, top5, is_best ? "true" : "false");
      an_train_event ev = {.kind = AN_EVENT_EPOCH, .epoch = (int)(step / r.bpe), .epochs = cfg->epochs,
                           .step = (int)(step % r.bpe), .steps_per_epoch = r.bpe, .global_step = step,
                           .total_steps = r.total, .loss = (float)(epoch_n ? epoch_loss / epoch_n : 0), .lr = lr,
                           .val_top1 = top1, .val_top5 = top5, .best = is_best};
      if (cfg->callback) cfg->callback(cfg->callback_ctx, &ev);
    }
  }
done:
  if (r.log) fclose(r.log);
  an_loader_destroy(ld);
  tr_destroy(&r.model);
  return st;
}
