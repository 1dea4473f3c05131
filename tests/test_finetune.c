/* Fine-tuning (alexnet-half, 63 px): a weights file's tensors that fit a layout are loaded bit for bit
 * and the others keep the fresh initialisation, with a report naming each (an_checkpoint_load_matching);
 * a net frozen below its first fully connected layer computes no gradient for the convolutions (their
 * gradients stay exactly zero and none of their GEMMs runs), its classifier gradients equal an unfrozen
 * net's bit for bit, and SGD with momentum and weight decay leaves the frozen tensors bit-unchanged while
 * every other tensor moves; an_train with init and freeze_features ends with the file's convolutions in
 * its checkpoint, refuses init with resume, and a resume that drops the freeze names the option. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alexnet/io.h"
#include "alexnet/train.h"
#include "check.h"

#define MODEL "alexnet-half"
#define INPUT 63
#define CLASSES 4
#define FILE_CLASSES 7 /* the "pretrained" file's: a last layer of another class count */

static char tmpdir[256];

static void temp_path(char *buf, size_t size, const char *name) { snprintf(buf, size, "%s/%s", tmpdir, name); }

/* A plan's host parameters from seed (an_net_init's numbers). */
static float *init_params(const an_net *plan, uint64_t seed) {
  float *p = test_floats(plan->n_params);
  an_net_init_host(plan, seed, p);
  return p;
}

static int tensor_equal(const an_net *a, const float *pa, const an_net *b, const float *pb, const char *name) {
  const int i = an_net_find_tensor(a, name), j = an_net_find_tensor(b, name);
  assert_true(i >= 0 && j >= 0);
  if (a->tensors[i].count != b->tensors[j].count) return 0;
  return !memcmp(pa + a->tensors[i].offset, pb + b->tensors[j].offset, a->tensors[i].count * sizeof(float));
}

static void test_load_matching(void **state) {
  (void)state;
  an_net *src = NULL, *dst = NULL;
  TEST_OK(an_net_plan(MODEL, FILE_CLASSES, 1, INPUT, &src));
  TEST_OK(an_net_plan(MODEL, CLASSES, 1, INPUT, &dst));
  float *file = init_params(src, 11), *params = init_params(dst, 22), *fresh = init_params(dst, 22);
  float *momentum = test_floats(src->n_params);
  for (size_t i = 0; i < src->n_params; i++) momentum[i] = 0.5f;
  char path[300];
  temp_path(path, sizeof path, "pretrained.safetensors");
  const an_param_layout src_layout = an_net_param_layout(src), dst_layout = an_net_param_layout(dst);
  an_checkpoint_meta meta = {.checkpoint = 1}; /* a checkpoint: its momentum is not read, nor counted unused */
  TEST_OK(an_checkpoint_save(&src_layout, file, momentum, path, &meta));

  an_match_report r;
  TEST_OK(an_checkpoint_load_matching(&dst_layout, path, params, &r));
  assert_int_equal(r.n_tensors, dst->n_tensors);
  assert_int_equal(r.n_loaded, dst->n_tensors - 2);
  assert_int_equal(r.n_unused, 0);
  for (int i = 0; i < dst->n_tensors; i++) {
    const an_tensor *t = &dst->tensors[i];
    const an_match_tensor *m = &r.tensor[i];
    assert_string_equal(m->name, t->name);
    const int last = !strncmp(t->name, "classifier.6.", 13);
    printf("  %-22s %s %s %s\n", m->name, m->kind == AN_MATCH_LOADED ? "loaded" : "fresh ", m->have, m->need);
    if (last) { /* the seed's initialisation, untouched */
      assert_int_equal(m->kind, AN_MATCH_SHAPE);
      assert_memory_equal(params + t->offset, fresh + t->offset, t->count * sizeof(float));
    } else { /* the file's numbers, bit for bit */
      assert_int_equal(m->kind, AN_MATCH_LOADED);
      assert_true(tensor_equal(dst, params, src, file, t->name));
      if (!t->is_bias) assert_false(tensor_equal(dst, fresh, src, file, t->name)); /* biases: 0 in both */
    }
  }
  const an_match_tensor *w = &r.tensor[an_net_find_tensor(dst, "classifier.6.weight")];
  assert_string_equal(w->have, "[7,2048]");
  assert_string_equal(w->need, "[4,2048]");

  /* a file of which nothing fits: an error naming it, params untouched */
  const float x[3] = {1, 2, 3};
  const an_st_entry other = {"foo.weight", AN_DTYPE_F32, 1, {3}, x};
  temp_path(path, sizeof path, "other.safetensors");
  TEST_OK(an_st_write(path, &other, 1, NULL, 0));
  memcpy(params, fresh, dst->n_params * sizeof *params);
  const an_status st = an_checkpoint_load_matching(&dst_layout, path, params, &r);
  assert_int_equal(st, AN_ERR_ARGUMENT);
  assert_non_null(strstr(an_last_error(), "not one of its 1 tensors fits model alexnet-half"));
  printf("  ok: %s\n", an_last_error());
  assert_memory_equal(params, fresh, dst->n_params * sizeof *params);
  free(momentum), free(fresh), free(params), free(file);
  an_net_destroy(dst), an_net_destroy(src);
}

/* Every element of the range zero? */
static int all_zero(const float *x, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (x[i] != 0.0f) return 0;
  return 1;
}

static void test_freeze(void **state) {
  (void)state;
  enum { BATCH = 4, STEPS = 3 };
  an_net *frozen = NULL, *full = NULL;
  TEST_OK(an_net_create(test_rt, MODEL, CLASSES, BATCH, INPUT, &frozen));
  TEST_OK(an_net_create(test_rt, MODEL, CLASSES, BATCH, INPUT, &full));
  const int below = an_model_features_end(frozen->model);
  assert_int_equal(frozen->model->layers[below].kind, AN_LAYER_FC);
  assert_string_equal(frozen->model->layers[below].name, "classifier.1");
  TEST_OK(an_net_freeze(frozen, below));
  assert_int_equal(an_net_freeze(frozen, below - 1), AN_ERR_ARGUMENT); /* a dropout layer: refused */
  const size_t n = frozen->n_params, nf = frozen->frozen_floats;
  assert_int_equal(nf, frozen->tensors[an_net_find_tensor(frozen, "classifier.1.weight")].offset);
  TEST_OK(an_net_init(frozen, 3));
  TEST_OK(an_net_init(full, 3));

  float *images = test_floats((size_t)BATCH * 3 * INPUT * INPUT), *p0 = test_floats(n), *p = test_floats(n);
  float *g = test_floats(n), *g_full = test_floats(n), *mom = test_floats(n);
  int labels[BATCH] = {0, 1, 2, 3};
  test_rng rng = test_rng_seeded(5);
  test_fill_uniform(images, (size_t)BATCH * 3 * INPUT * INPUT, -1, 1, &rng);
  TEST_OK(an_net_read_params(frozen, p0));

  /* one forward and backward: the GEMMs that run are the listed ones, the fully connected layers' only
   * (no convolution gradient, no input gradient for the first fully connected layer) */
  an_gemm_call listed[64];
  const int n_listed = an_net_gemm_calls(frozen, AN_PASS_BACKWARD, listed, 64);
  assert_int_equal(n_listed, 5); /* fc8 dW dX, fc7 dW dX, fc6 dW */
  assert_true(an_net_gemm_calls(full, AN_PASS_BACKWARD, NULL, 0) > n_listed);
  TEST_OK(an_net_set_batch(frozen, images, labels));
  TEST_OK(an_net_set_batch(full, images, labels));
  TEST_OK(an_net_forward(frozen, 1, 9, 0));
  an_gemm_log log = {0};
  an_gemm_record(test_rt, &log);
  const an_status st = an_net_backward(frozen, 9, 0);
  an_gemm_record(test_rt, NULL);
  TEST_OK(st);
  assert_int_equal(log.n, n_listed);
  for (int i = 0; i < n_listed; i++)
    assert_true(log.calls[i].m == listed[i].m && log.calls[i].n == listed[i].n && log.calls[i].k == listed[i].k);
  free(log.calls);
  TEST_OK(an_net_forward(full, 1, 9, 0));
  TEST_OK(an_net_backward(full, 9, 0));
  TEST_OK(an_net_read_grads(frozen, g));
  TEST_OK(an_net_read_grads(full, g_full));
  assert_true(all_zero(g, nf));                                   /* never computed */
  assert_false(all_zero(g_full, nf));                             /* they would be */
  assert_memory_equal(g + nf, g_full + nf, (n - nf) * sizeof *g); /* the classifier's: the same */

  /* SGD with momentum and weight decay: the frozen tensors bit-unchanged, every other tensor moved */
  const an_sgd_params sgd = {0.01f, 0.9f, 5e-4f, 0};
  float loss;
  for (int s = 0; s < STEPS; s++) TEST_OK(an_net_train_step(frozen, images, labels, &sgd, 9, (uint64_t)s, &loss));
  TEST_OK(an_net_read_params(frozen, p));
  TEST_OK(an_read(test_rt, mom, an_at(frozen->momentum, 0), n));
  assert_memory_equal(p, p0, nf * sizeof *p);
  assert_true(all_zero(mom, nf));
  for (int t = 0; t < frozen->n_tensors; t++) {
    const an_tensor *T = &frozen->tensors[t];
    if (T->offset < nf) continue;
    assert_true(memcmp(p + T->offset, p0 + T->offset, T->count * sizeof *p) != 0);
  }
  /* the same with weight decay off biases (the per-tensor update) */
  const an_sgd_params sgd_nb = {0.01f, 0.9f, 5e-4f, 1};
  TEST_OK(an_net_train_step(frozen, images, labels, &sgd_nb, 9, STEPS, &loss));
  TEST_OK(an_net_read_params(frozen, p));
  assert_memory_equal(p, p0, nf * sizeof *p);
  free(mom), free(g_full), free(g), free(p), free(p0), free(images);
  an_net_destroy(full), an_net_destroy(frozen);
}

static int inits_seen, inits_loaded;
static void on_event(void *ctx, const an_train_event *ev) {
  (void)ctx;
  if (ev->kind != AN_EVENT_INIT) return;
  inits_seen++;
  inits_loaded = ev->init->n_loaded;
}

static void test_train_init_freeze(void **state) {
  (void)state;
  /* the "pretrained" file: 7 classes, seed 11 */
  an_net *src = NULL;
  TEST_OK(an_net_plan(MODEL, FILE_CLASSES, 1, INPUT, &src));
  float *file = init_params(src, 11);
  char init[300], out[300];
  temp_path(init, sizeof init, "init.safetensors");
  temp_path(out, sizeof out, "run");
  const an_param_layout src_layout = an_net_param_layout(src);
  TEST_OK(an_checkpoint_save(&src_layout, file, NULL, init, NULL));

  an_synthetic_config sc = {.count = 32, .classes = CLASSES, .side = 32, .noise = 0.1f, .seed = 1};
  an_dataset *ds = NULL;
  TEST_OK(an_dataset_synthetic(&sc, &ds));
  an_train_config cfg = {.model = MODEL,
                         .train = ds,
                         .batch = 8,
                         .input = INPUT,
                         .epochs = 1,
                         .max_steps = 3,
                         .sgd = {0.01f, 0.9f, 5e-4f, 0},
                         .seed = 1,
                         .threads = 1,
                         .out_dir = out,
                         .init = init,
                         .freeze_features = 1,
                         .callback = on_event};
  an_train_result res;
  TEST_OK(an_train(test_rt, &cfg, &res));
  assert_int_equal(inits_seen, 1);
  assert_int_equal(inits_loaded, 14);

  an_net *run = NULL;
  TEST_OK(an_net_plan(MODEL, CLASSES, 1, INPUT, &run));
  const an_param_layout layout = an_net_param_layout(run);
  char last[400];
  snprintf(last, sizeof last, "%s/last.safetensors", out);
  float *params, *momentum;
  TEST_OK(an_checkpoint_load(&layout, last, &params, &momentum, NULL));
  for (int t = 0; t < run->n_tensors; t++) {
    const char *name = run->tensors[t].name;
    const int conv = !strncmp(name, "features.", 9), last_layer = !strncmp(name, "classifier.6.", 13);
    printf("  %-22s %s\n", name,
           conv         ? "frozen: the file's"
           : last_layer ? "fresh, trained"
                        : "the file's, trained");
    if (!last_layer) assert_int_equal(tensor_equal(run, params, src, file, name), conv);
  }
  free(params), free(momentum);

  /* init with resume: refused; a resume without the freeze: refused naming the option */
  cfg.resume = 1;
  assert_int_equal(an_train(test_rt, &cfg, &res), AN_ERR_ARGUMENT);
  assert_non_null(strstr(an_last_error(), "give one of them"));
  printf("  ok: %s\n", an_last_error());
  cfg.init = NULL, cfg.freeze_features = 0;
  assert_int_equal(an_train(test_rt, &cfg, &res), AN_ERR_ARGUMENT);
  assert_non_null(strstr(an_last_error(), "--freeze-features is no here"));
  printf("  ok: %s\n", an_last_error());

  an_dataset_destroy(ds);
  an_net_destroy(run), an_net_destroy(src);
  free(file);
}

static int setup(void **state) {
  snprintf(tmpdir, sizeof tmpdir, "%s/alexnet-ft-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
  if (!mkdtemp(tmpdir)) return -1;
  return test_runtime_setup(state);
}

static int teardown(void **state) {
  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
  const int rc = system(cmd);
  return test_runtime_teardown(state) || rc;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_load_matching),
      cmocka_unit_test(test_freeze),
      cmocka_unit_test(test_train_init_freeze),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
