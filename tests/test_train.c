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
  an_train_config c = {.model = MODEL, .train = train, .val = val, .batch = BATCH, .input = INPUT, .epochs = 100,
                       .sgd = {0.01f, 0.9f, 5e-4f, 0}, .schedule = AN_LR_COSINE, .seed = SEED, .threads = 2,
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
  c.val_every = 24; /* one mid-run validation, logged as "val" */
  an_train_result r;
  TEST_OK(an_train(test_rt, &c, &r));
  printf("after %lld steps: loss %.4f, validation top-1 %.3f (chance %.3f)\n", (long long)r.steps_done,
         r.last_loss, r.val_top1, 1.0 / CLASSES);
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
  const an_augment aug = an_augment_default(INPUT);
  an_eval_result e;
  TEST_OK(an_evaluate(net, val, &aug, &r.stats, 1, &e, NULL));
  assert_int_equal(e.samples, 64);
  assert_true(e.top1 >= 0.5 * 64);
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
}

int main(int argc, char **argv) {
  if (argc == 3 && !strcmp(argv[1], "--train-child")) return train_child(argv[2]);
  self_exe = "/proc/self/exe";
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(lr_schedules),
      cmocka_unit_test(resume_is_exact),
      cmocka_unit_test(divergence_keeps_last_good),
      cmocka_unit_test(survives_sigkill),
      cmocka_unit_test(learns),
  };
  return cmocka_run_group_tests(tests, test_runtime_setup, test_runtime_teardown);
}
