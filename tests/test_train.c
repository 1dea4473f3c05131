/* The training loop end to end on the synthetic set (alexnet-half, 63 px): it learns well above chance;
 * a run stopped halfway and resumed has the same losses, bit for bit, as one uninterrupted run; and a
 * training process killed with SIGKILL at random moments always leaves a checkpoint that loads and
 * resumes. Kept short: a few dozen steps in all on a CPU device.
 *
 * The killed process is this executable re-run with --train-child DIR (exec, not a bare fork: an
 * OpenCL runtime does not survive fork). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "alexnet/io.h"
#include "alexnet/train.h"
#include "check.h"

#define MODEL "alexnet-half"
#define INPUT 63
#define BATCH 16
#define CLASSES 4
#define SEED 7u
#define MAX_LOG_STEPS 256

static an_dataset *make_set(int count, uint64_t seed) {
  an_synthetic_config sc = {.count = count, .classes = CLASSES, .side = 32, .noise = 0.1f, .seed = seed};
  an_dataset *ds = NULL;
  TEST_OK(an_dataset_synthetic(&sc, &ds));
  return ds;
}

static void temp_dir(char *buf, size_t size, const char *what) {
  snprintf(buf, size, "/tmp/alexnet_test_train_%s_XXXXXX", what);
  assert_non_null(mkdtemp(buf));
}

/* Removes every file in dir (checkpoints, log, temporaries of killed writers), then dir. */
static void remove_dir(const char *dir) {
  DIR *d = opendir(dir);
  assert_non_null(d);
  const struct dirent *e;
  char path[1100];
  while ((e = readdir(d))) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    unlink(path);
  }
  closedir(d);
  assert_int_equal(rmdir(dir), 0);
}

/* Losses by global step, recorded by the callback. */
typedef struct loss_log {
  float loss[MAX_LOG_STEPS + 1];
  int seen[MAX_LOG_STEPS + 1];
} loss_log;

static void record(void *ctx, const an_train_event *ev) {
  loss_log *l = ctx;
  if (ev->kind == AN_EVENT_STEP && ev->global_step <= MAX_LOG_STEPS) {
    l->loss[ev->global_step] = ev->loss;
    l->seen[ev->global_step] = 1;
  }
}

static an_train_config base_config(const an_dataset *train, const an_dataset *val, const char *dir) {
  an_train_config c = {.model = MODEL,
                       .train = train,
                       .val = val,
                       .batch = BATCH,
                       .input = INPUT,
                       .epochs = 100,
                       .sgd = {0.01f, 0.9f, 5e-4f, 0},
                       .schedule = AN_LR_COSINE,
                       .seed = SEED,
                       .threads = 2,
                       .out_dir = dir};
  return c;
}

static void learns(void **state) {
  (void)state;
  an_dataset *train = make_set(256, 11), *val = make_set(64, 12);
  char dir[128];
  temp_dir(dir, sizeof dir, "learn");
  an_train_config c = base_config(train, val, dir);
  c.max_steps = 48;
  c.val_every = 24;                           /* one mid-run validation, logged as "val" */
  an_augment aug = an_augment_default(INPUT); /* base 66 instead of 72, no lighting */
  aug.resize = 66, aug.pca_std = 0;
  c.aug = &aug;
  an_train_result r;
  TEST_OK(an_train(test_rt, &c, &r));
  printf("after %lld steps: loss %.4f, validation top-1 %.3f (chance %.3f)\n", (long long)r.steps_done, r.last_loss,
         r.val_top1, 1.0 / CLASSES);
  assert_int_equal(r.steps_done, 48);
  assert_true(r.val_top1 >= 0.5); /* chance is 0.25; this seed reaches about 0.67 */
  /* the best checkpoint evaluates to the figure the run reported */
  an_net *net = NULL;
  TEST_OK(an_net_create(test_rt, MODEL, CLASSES, BATCH, INPUT, &net));
  char path[256];
  snprintf(path, sizeof path, "%s/best.safetensors", dir);
  an_checkpoint_meta m;
  TEST_OK(an_net_load(net, path, &m));
  assert_int_equal(m.step, 48);
  an_data_stats stats = an_data_stats_imagenet();
  assert_true(an_parse_rgb(m.mean, stats.mean) && an_parse_rgb(m.std, stats.std));
  /* evaluated with the preprocessing its metadata give: the run's own validation figure (on this easy
   * synthetic set the default preprocessing happens to predict alike: printed, not asserted) */
  an_augment back, dflt = an_augment_default(INPUT);
  char resize[16];
  snprintf(resize, sizeof resize, "%d", m.resize);
  TEST_OK(an_augment_from_meta(INPUT, INPUT, resize, m.norm, &back));
  assert_int_equal(back.resize, 66);
  an_eval_result e, d;
  int64_t conf_back[CLASSES * CLASSES] = {0}, conf_default[CLASSES * CLASSES] = {0};
  TEST_OK(an_evaluate(net, val, &back, &r.stats, 1, &e, conf_back));
  assert_int_equal(e.samples, 64);
  assert_true(e.top1 >= 0.5 * 64);
  TEST_OK(an_evaluate(net, val, &dflt, &r.stats, 1, &d, conf_default));
  printf("best checkpoint: top-1 %lld/64 with its preprocessing (run's best %.4f), %lld/64 with the default\n",
         (long long)e.top1, r.best_top1, (long long)d.top1);
  assert_true(fabs((double)e.top1 / e.samples - r.best_top1) < 1e-12);
  printf("confusion matrices %s\n", memcmp(conf_back, conf_default, sizeof conf_back) ? "differ" : "agree");
  an_net_destroy(net);
  an_dataset_destroy(train);
  an_dataset_destroy(val);
  remove_dir(dir);
}

static void resume_is_exact(void **state) {
  (void)state;
  enum { N = 8 };
  an_dataset *train = make_set(64, 21); /* 4 batches per epoch: the run crosses an epoch end */
  char dir_a[128], dir_b[128];
  temp_dir(dir_a, sizeof dir_a, "whole");
  temp_dir(dir_b, sizeof dir_b, "halves");
  static loss_log whole, halves;
  memset(&whole, 0, sizeof whole);
  memset(&halves, 0, sizeof halves);
  an_train_result r;

  an_train_config c = base_config(train, NULL, dir_a);
  c.max_steps = N;
  c.callback = record;
  c.callback_ctx = &whole;
  TEST_OK(an_train(test_rt, &c, &r));
  assert_int_equal(r.steps_done, N);

  c.out_dir = dir_b;
  c.callback_ctx = &halves;
  c.stop_at_step = N / 2 + 1; /* mid-epoch */
  TEST_OK(an_train(test_rt, &c, &r));
  assert_int_equal(r.steps_done, N / 2 + 1);
  c.stop_at_step = 0;
  c.resume = 1;
  TEST_OK(an_train(test_rt, &c, &r));
  assert_int_equal(r.start_step, N / 2 + 1);
  assert_int_equal(r.steps_done, N);

  int differ = 0;
  for (int s = 1; s <= N; s++) {
    assert_true(whole.seen[s] && halves.seen[s]);
    printf("step %d: %.7f %.7f%s\n", s, whole.loss[s], halves.loss[s],
           memcmp(&whole.loss[s], &halves.loss[s], sizeof(float)) ? "  DIFFER" : "");
    differ += memcmp(&whole.loss[s], &halves.loss[s], sizeof(float)) != 0;
  }
  assert_int_equal(differ, 0);
  an_dataset_destroy(train);
  remove_dir(dir_a);
  remove_dir(dir_b);
}

/* The killed process: trains (resuming when a checkpoint exists), a checkpoint after every step. */
static int train_child(const char *dir) {
  an_runtime *rt = NULL;
  if (an_runtime_create(NULL, &rt) != AN_OK) return 3;
  an_dataset *train = make_set(64, 31);
  char path[256];
  snprintf(path, sizeof path, "%s/last.safetensors", dir);
  an_train_config c = base_config(train, NULL, dir);
  c.max_steps = 10000;
  c.checkpoint_every = 1;
  c.resume = access(path, F_OK) == 0;
  an_train_result r;
  const an_status st = an_train(rt, &c, &r);
  if (st != AN_OK) fprintf(stderr, "child: %s\n", an_last_error());
  an_dataset_destroy(train);
  an_runtime_destroy(rt);
  return st == AN_OK ? 0 : 4;
}

static const char *self_exe;

static void survives_sigkill(void **state) {
  (void)state;
  enum { KILLS = 3 };
  char dir[128], path[256];
  temp_dir(dir, sizeof dir, "kill");
  snprintf(path, sizeof path, "%s/last.safetensors", dir);
  test_rng rng = test_rng_seeded((uint64_t)time(NULL));
  an_net *net = NULL;
  TEST_OK(an_net_create(test_rt, MODEL, CLASSES, BATCH, INPUT, &net));
  int64_t last_step = 0;
  for (int k = 0; k < KILLS; k++) {
    const pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
      execl(self_exe, self_exe, "--train-child", dir, (char *)NULL);
      _exit(5);
    }
    /* wait for a checkpoint newer than the last one seen, then kill at a random moment */
    const double t0 = an_seconds();
    for (;;) {
      an_checkpoint_meta m;
      struct stat sb;
      if (stat(path, &sb) == 0 && an_net_load(net, path, &m) == AN_OK && m.step > last_step) break;
      int status;
      assert_int_equal(waitpid(pid, &status, WNOHANG), 0); /* the child must still be training */
      assert_true(an_seconds() - t0 < 60);
      usleep(50000);
    }
    usleep((useconds_t)(test_rng_uniform(&rng) * 1.5e6));
    kill(pid, SIGKILL);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    an_checkpoint_meta m;
    TEST_OK(an_net_load(net, path, &m)); /* whatever the moment, the checkpoint on disk is whole */
    assert_true(m.checkpoint && m.step > last_step);
    printf("kill %d: checkpoint at step %lld loads\n", k + 1, (long long)m.step);
    last_step = m.step;
  }
  /* and the run resumes from it */
  an_dataset *train = make_set(64, 31);
  an_train_config c = base_config(train, NULL, dir);
  c.max_steps = 10000;
  c.resume = 1;
  c.stop_at_step = last_step + 2;
  an_train_result r;
  TEST_OK(an_train(test_rt, &c, &r));
  assert_int_equal(r.start_step, last_step);
  assert_int_equal(r.steps_done, last_step + 2);
  an_dataset_destroy(train);
  an_net_destroy(net);
  remove_dir(dir);
}

/* A learning rate that blows the loss up: the run stops with AN_ERR_NOT_FINITE and the checkpoint on
 * disk is the last good one (finite parameters, a step before the failure). */
static void divergence_keeps_last_good(void **state) {
  (void)state;
  an_dataset *train = make_set(64, 41);
  char dir[128], path[256];
  temp_dir(dir, sizeof dir, "nan");
  an_train_config c = base_config(train, NULL, dir);
  c.sgd.lr = 1e6f;
  c.schedule = AN_LR_NONE;
  c.max_steps = 12;
  c.checkpoint_every = 1;
  an_train_result r;
  assert_int_equal(an_train(test_rt, &c, &r), AN_ERR_NOT_FINITE);
  printf("diverged after %lld good steps: %s\n", (long long)r.steps_done, an_last_error());
  assert_non_null(strstr(an_last_error(), "last.safetensors"));
  if (r.steps_done > 0) {
    an_net *net = NULL;
    TEST_OK(an_net_create(test_rt, MODEL, CLASSES, BATCH, INPUT, &net));
    snprintf(path, sizeof path, "%s/last.safetensors", dir);
    an_checkpoint_meta m;
    TEST_OK(an_net_load(net, path, &m));
    assert_int_equal(m.step, r.steps_done);
    float *p = test_floats(net->n_params);
    TEST_OK(an_net_read_params(net, p));
    for (size_t i = 0; i < net->n_params; i++) assert_true(isfinite(p[i]));
    free(p);
    an_net_destroy(net);
  }
  an_dataset_destroy(train);
  remove_dir(dir);
}

static void lr_schedules(void **state) {
  (void)state;
  assert_true(an_lr_at(AN_LR_NONE, 0.1, 50, 100) == 0.1);
  assert_true(an_lr_at(AN_LR_STEP, 0.1, 0, 90) == 0.1);
  assert_true(fabs(an_lr_at(AN_LR_STEP, 0.1, 30, 90) - 0.01) < 1e-12);
  assert_true(fabs(an_lr_at(AN_LR_STEP, 0.1, 60, 90) - 0.001) < 1e-12);
  assert_true(fabs(an_lr_at(AN_LR_COSINE, 0.1, 50, 100) - 0.05) < 1e-12);
  assert_true(an_lr_at(AN_LR_COSINE, 0.1, 100, 100) < 1e-12);
  float v[3];
  char buf[96];
  const float want[3] = {0.2860402f, 0.35302424f, 1.0f / 3};
  an_format_rgb(want, buf, sizeof buf);
  assert_true(an_parse_rgb(buf, v));
  assert_memory_equal(v, want, sizeof want);
  assert_false(an_parse_rgb("1,2", v));
  /* plateau: strict improvement resets the count; `patience` bad validations in a row cut lr x0.1 */
  an_plateau p = an_plateau_start(2);
  const double top1[] = {0.5, 0.4, 0.5, 0.6, 0.6, 0.6, 0.7, -1};
  const int cut[] = {0, 0, 1, 0, 0, 1, 0, 0};
  for (int i = 0; i < 8; i++) assert_int_equal(an_plateau_step(&p, top1[i]), cut[i]);
  assert_true(fabs(p.factor - 0.01) < 1e-15 && p.best == 0.7);
  assert_int_equal(an_plateau_start(0).patience, 3);
  assert_true(an_lr_at(AN_LR_PLATEAU, 0.1, 50, 100) == 0.1);
}

/* lr by global step and validations, recorded by the callback. */
typedef struct lr_log {
  double lr[MAX_LOG_STEPS + 1];
  int vals, reductions;
} lr_log;

static void record_lr(void *ctx, const an_train_event *ev) {
  lr_log *l = ctx;
  if (ev->kind == AN_EVENT_STEP && ev->global_step <= MAX_LOG_STEPS) l->lr[ev->global_step] = ev->lr;
  if (ev->kind == AN_EVENT_VAL || ev->kind == AN_EVENT_EPOCH) l->vals++, l->reductions += ev->lr_reduced;
}

/* Plateau on a run that cannot improve (lr 1e-7 leaves the validation top-1 where it is): with
 * patience 2 and a validation after every step, lr x0.1 after validations 3, 5, 7, …; a run stopped
 * and resumed replays the logged validations and continues with the same learning rates. */
static void plateau_lowers_lr(void **state) {
  (void)state;
  enum { N = 8 };
  an_dataset *train = make_set(64, 51), *val = make_set(16, 52);
  char dir_a[128], dir_b[128];
  temp_dir(dir_a, sizeof dir_a, "plateau");
  temp_dir(dir_b, sizeof dir_b, "plateau_halves");
  static lr_log whole, halves;
  memset(&whole, 0, sizeof whole);
  memset(&halves, 0, sizeof halves);
  an_train_config c = base_config(train, val, dir_a);
  c.sgd.lr = 1e-7f;
  c.schedule = AN_LR_PLATEAU;
  c.patience = 2;
  c.max_steps = N;
  c.val_every = 1;
  c.callback = record_lr;
  c.callback_ctx = &whole;
  an_train_result r;
  TEST_OK(an_train(test_rt, &c, &r));
  /* validation k (after step k) is the k-th; reductions after validations 3, 5, 7 */
  double want = 1e-7;
  for (int s = 1; s <= N; s++) {
    if (s == 4 || s == 6 || s == 8) want *= 0.1;
    printf("step %d: lr %.4g (want %.4g)\n", s, whole.lr[s], want);
    assert_true(fabs(whole.lr[s] - want) <= 1e-6 * want);
  }
  assert_int_equal(whole.reductions, 3); /* the 8th validation is the run's end: 1 since the last cut */

  c.out_dir = dir_b;
  c.callback_ctx = &halves;
  c.stop_at_step = 5; /* mid-epoch, between two reductions, one bad validation counted */
  TEST_OK(an_train(test_rt, &c, &r));
  c.stop_at_step = 0;
  c.resume = 1;
  TEST_OK(an_train(test_rt, &c, &r));
  assert_int_equal(r.start_step, 5);
  for (int s = 1; s <= N; s++) assert_true(halves.lr[s] == whole.lr[s]);
  an_dataset_destroy(train);
  an_dataset_destroy(val);
  remove_dir(dir_a);
  remove_dir(dir_b);
}

/* A run's augmentation other than the default: the checkpoints record its resize and normalisation,
 * an_augment_from_meta turns them back into the validation's preprocessing, and evaluating the last
 * checkpoint with it gives the run's own last validation figures, sample for sample. */
static void augmentation_recorded(void **state) {
  (void)state;
  an_dataset *train = make_set(64, 81), *val = make_set(32, 82);
  char dir[128];
  temp_dir(dir, sizeof dir, "augment");
  an_augment aug = an_augment_default(INPUT); /* resize 72 by default */
  aug.resize = 66, aug.random_crop = 0, aug.flip = 0, aug.pca_std = 0, aug.norm = AN_NORM_MEAN;
  an_train_config c = base_config(train, val, dir);
  c.max_steps = 4;
  c.aug = &aug;
  an_train_result r;
  TEST_OK(an_train(test_rt, &c, &r));
  char path[256];
  snprintf(path, sizeof path, "%s/last.safetensors", dir);
  an_net *net = NULL;
  TEST_OK(an_net_create(test_rt, MODEL, CLASSES, BATCH, INPUT, &net));
  an_checkpoint_meta m;
  TEST_OK(an_net_load(net, path, &m));
  assert_int_equal(m.resize, 66);
  assert_string_equal(m.norm, "mean");
  an_augment back;
  TEST_OK(an_augment_from_meta(INPUT, INPUT, "66", m.norm, &back));
  assert_int_equal(back.resize, 66);
  assert_int_equal(back.norm, AN_NORM_MEAN);
  an_eval_result e;
  TEST_OK(an_evaluate(net, val, &back, &r.stats, 1, &e, NULL));
  assert_int_equal(e.samples, 32);
  assert_true(fabs((double)e.top1 / e.samples - r.val_top1) < 1e-12); /* (`learns` ties them on a net */
  assert_true(fabs((double)e.top5 / e.samples - r.val_top5) < 1e-12); /*  that has learnt) */
  /* the log's recipe names it */
  char log_path[256], line[4096];
  snprintf(log_path, sizeof log_path, "%s/log.jsonl", dir);
  FILE *f = fopen(log_path, "r");
  assert_non_null(f);
  assert_non_null(fgets(line, sizeof line, f));
  fclose(f);
  assert_non_null(strstr(line, "\"augment\":\"resize 66, crop centre, flip 0, pca 0, norm mean\""));
  /* metadata that do not say: the default; bad ones: an error */
  TEST_OK(an_augment_from_meta(INPUT, INPUT, NULL, "", &back));
  assert_int_equal(back.resize, an_augment_default(INPUT).resize);
  assert_int_equal(back.norm, AN_NORM_MEAN_STD);
  assert_int_equal(an_augment_from_meta(INPUT, INPUT, "62", NULL, &back), AN_ERR_ARGUMENT);
  assert_int_equal(an_augment_from_meta(INPUT, INPUT, "66x", NULL, &back), AN_ERR_ARGUMENT);
  assert_int_equal(an_augment_from_meta(INPUT, INPUT, NULL, "std", &back), AN_ERR_ARGUMENT);
  /* at another input size the file's resize does not apply: the default's for that size */
  TEST_OK(an_augment_from_meta(INPUT + 8, INPUT, "66", "mean", &back));
  assert_int_equal(back.resize, an_augment_default(INPUT + 8).resize);
  assert_int_equal(back.norm, AN_NORM_MEAN);
  /* a file that does not record its input size: its resize is taken as meant for this input */
  TEST_OK(an_augment_from_meta(INPUT, 0, "66", "mean", &back));
  assert_int_equal(back.resize, 66);
  /* an augmentation cropping another size than the net's input is refused */
  aug.input = INPUT + 1;
  assert_int_equal(an_train(test_rt, &c, &r), AN_ERR_ARGUMENT);
  an_net_destroy(net);
  an_dataset_destroy(train);
  an_dataset_destroy(val);
  remove_dir(dir);
}

/* --resume of a run with a different recipe is refused before anything changes, the message naming
 * the option and both values; the same recipe still resumes. */
static void resume_refuses_other_recipe(void **state) {
  (void)state;
  an_dataset *train = make_set(64, 61), *other = make_set(48, 61), *val = make_set(16, 62);
  char dir[128];
  temp_dir(dir, sizeof dir, "recipe");
  an_train_config c = base_config(train, val, dir);
  c.max_steps = 6;
  c.stop_at_step = 2;
  c.measure_loader = 1;
  an_train_result r;
  TEST_OK(an_train(test_rt, &c, &r));
  assert_true(r.loader_images_per_s > 0);
  c.stop_at_step = 0;
  c.measure_loader = 0;
  c.resume = 1;
  struct {
    const char *option, *here, *logged;
    an_train_config cfg;
  } cases[10];
  for (int i = 0; i < 10; i++) cases[i].cfg = c;
  cases[0].option = "--batch", cases[0].here = "8", cases[0].logged = "16", cases[0].cfg.batch = 8;
  cases[1].option = "--lr", cases[1].here = "0.02", cases[1].logged = "0.01", cases[1].cfg.sgd.lr = 0.02f;
  cases[2].option = "--momentum", cases[2].here = "0.8", cases[2].logged = "0.9", cases[2].cfg.sgd.momentum = 0.8f;
  cases[3].option = "--weight-decay", cases[3].here = "0", cases[3].logged = "0.0005";
  cases[3].cfg.sgd.weight_decay = 0;
  cases[4].option = "--lr-schedule", cases[4].here = "step", cases[4].logged = "cosine";
  cases[4].cfg.schedule = AN_LR_STEP;
  cases[5].option = "--epochs", cases[5].here = "50", cases[5].logged = "100", cases[5].cfg.epochs = 50;
  cases[6].option = "--max-steps", cases[6].here = "7", cases[6].logged = "6", cases[6].cfg.max_steps = 7;
  cases[7].option = "--data", cases[7].here = "(48 images)", cases[7].logged = "(64 images)";
  cases[7].cfg.train = other;
  cases[8].option = "--model", cases[8].here = "alexnet-tv", cases[8].logged = "alexnet-half";
  cases[8].cfg.model = "alexnet-tv";
  an_augment no_light = an_augment_default(INPUT);
  no_light.pca_std = 0;
  cases[9].option = "--pca-std", cases[9].here = "pca 0,", cases[9].logged = "pca 0.1,",
  cases[9].cfg.aug = &no_light;
  for (int i = 0; i < 10; i++) {
    assert_int_equal(an_train(test_rt, &cases[i].cfg, &r), AN_ERR_ARGUMENT);
    const char *msg = an_last_error();
    printf("%s: %s\n", cases[i].option, msg);
    assert_non_null(strstr(msg, cases[i].option));
    assert_non_null(strstr(msg, cases[i].here));
    assert_non_null(strstr(msg, cases[i].logged));
  }
  /* a log written before the augmentation was logged: its run had the default augmentation */
  char log_path[256], text[8192];
  snprintf(log_path, sizeof log_path, "%s/log.jsonl", dir);
  FILE *f = fopen(log_path, "r");
  assert_non_null(f);
  const size_t len = fread(text, 1, sizeof text - 1, f);
  fclose(f);
  text[len] = '\0';
  char *key = strstr(text, ",\"augment\":\""), *end = key ? strchr(key + 12, '"') : NULL;
  assert_non_null(end);
  memmove(key, end + 1, strlen(end + 1) + 1);
  assert_null(strstr(text, "augment"));
  f = fopen(log_path, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
  assert_int_equal(an_train(test_rt, &cases[9].cfg, &r), AN_ERR_ARGUMENT);
  assert_non_null(strstr(an_last_error(), "pca 0.1,"));
  TEST_OK(an_train(test_rt, &c, &r)); /* nothing was changed by the refusals */
  assert_int_equal(r.start_step, 2);
  assert_int_equal(r.steps_done, 6);
  an_dataset_destroy(train);
  an_dataset_destroy(other);
  an_dataset_destroy(val);
  remove_dir(dir);
}

/* Ten-crop evaluation against the crops taken one by one here: the base image from
 * an_image_resize_square, each crop's corner written out (torchvision's TenCrop order), the mirror by
 * hand, x = (p/255 - mean)/std, the softmax averaged over the 10 crops in double. 13 samples of 10
 * classes, 2 per batch: the last batch is padded. Top-1, top-5 and the confusion matrix must agree. */
static void ten_crop_matches_crops(void **state) {
  (void)state;
  enum { K = 10, SAMPLES = 13, PER_BATCH = 2, ROWS = PER_BATCH * 10 };
  an_synthetic_config sc = {.count = SAMPLES, .classes = K, .side = 32, .noise = 0.2f, .seed = 71};
  an_dataset *ds = NULL;
  TEST_OK(an_dataset_synthetic(&sc, &ds));
  an_net *net = NULL;
  TEST_OK(an_net_create(test_rt, MODEL, K, ROWS, INPUT, &net));
  TEST_OK(an_net_init(net, 72));
  const an_data_stats stats = an_data_stats_imagenet();
  an_augment aug = an_augment_default(INPUT);
  aug.ten_crop = 1;
  an_eval_result got;
  int64_t got_conf[K * K] = {0}, want_conf[K * K] = {0};
  TEST_OK(an_evaluate(net, ds, &aug, &stats, 2, &got, got_conf));

  const int S = aug.resize, I = INPUT, far = S - I, mid = (S - I) / 2;
  const int corner[5][2] = {{0, 0}, {far, 0}, {0, far}, {far, far}, {mid, mid}}; /* (x, y) */
  float *images = test_floats((size_t)ROWS * 3 * I * I), *logits = test_floats((size_t)ROWS * K);
  int labels[ROWS] = {0};
  uint8_t *base = malloc((size_t)S * S * 3);
  assert_non_null(base);
  int64_t want_top1 = 0, want_top5 = 0;
  for (int first = 0; first < SAMPLES; first += PER_BATCH) {
    memset(images, 0, sizeof(float) * (size_t)ROWS * 3 * I * I);
    for (int j = 0; j < PER_BATCH && first + j < SAMPLES; j++) {
      an_image img, b = {.pixels = base};
      TEST_OK(an_dataset_read(ds, first + j, &img));
      TEST_OK(an_image_resize_square(&img, S, &b));
      an_image_free(&img);
      for (int k = 0; k < 10; k++) {
        float *out = images + (size_t)(j * 10 + k) * 3 * I * I; /* (3, I, I) */
        for (int ch = 0; ch < 3; ch++) {
          const float gain = 1.0f / (255.0f * stats.std[ch]), offset = -stats.mean[ch] / stats.std[ch];
          for (int y = 0; y < I; y++)
            for (int x = 0; x < I; x++) {
              const int sx = corner[k % 5][0] + (k >= 5 ? I - 1 - x : x), sy = corner[k % 5][1] + y;
              out[((size_t)ch * I + y) * I + x] = base[((size_t)sy * S + sx) * 3 + ch] * gain + offset;
            }
        }
      }
    }
    TEST_OK(an_net_set_batch(net, images, labels));
    TEST_OK(an_net_forward(net, 0, 0, 0));
    TEST_OK(an_net_read_logits(net, logits));
    for (int j = 0; j < PER_BATCH && first + j < SAMPLES; j++) {
      double prob[K] = {0};
      for (int k = 0; k < 10; k++) {
        const float *row = logits + (size_t)(j * 10 + k) * K;
        double m = row[0], sum = 0;
        for (int c = 1; c < K; c++) m = row[c] > m ? row[c] : m;
        for (int c = 0; c < K; c++) sum += exp(row[c] - m);
        for (int c = 0; c < K; c++) prob[c] += exp(row[c] - m) / sum / 10;
      }
      const int label = an_dataset_label(ds, first + j);
      int best = 0, above = 0;
      for (int c = 0; c < K; c++) {
        if (prob[c] > prob[best]) best = c;
        above += prob[c] > prob[label];
      }
      want_top1 += above == 0;
      want_top5 += above < 5;
      want_conf[label * K + best]++;
    }
  }
  printf("ten-crop: top-1 %lld/%lld top-5 %lld/%lld; by hand: top-1 %lld top-5 %lld\n", (long long)got.top1,
         (long long)got.samples, (long long)got.top5, (long long)got.samples, (long long)want_top1,
         (long long)want_top5);
  assert_int_equal(got.samples, SAMPLES);
  assert_int_equal(got.top1, want_top1);
  assert_int_equal(got.top5, want_top5);
  assert_memory_equal(got_conf, want_conf, sizeof want_conf);
  free(base);
  free(images);
  free(logits);
  an_net_destroy(net);
  an_dataset_destroy(ds);
}

int main(int argc, char **argv) {
  if (argc == 3 && !strcmp(argv[1], "--train-child")) return train_child(argv[2]);
  self_exe = "/proc/self/exe";
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(lr_schedules),
      cmocka_unit_test(resume_is_exact),
      cmocka_unit_test(resume_refuses_other_recipe),
      cmocka_unit_test(augmentation_recorded),
      cmocka_unit_test(plateau_lowers_lr),
      cmocka_unit_test(ten_crop_matches_crops),
      cmocka_unit_test(divergence_keeps_last_good),
      cmocka_unit_test(survives_sigkill),
      cmocka_unit_test(learns),
  };
  return cmocka_run_group_tests(tests, test_runtime_setup, test_runtime_teardown);
}
