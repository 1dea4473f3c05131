/* The two-device split against one device: same weights, seed and dropout masks, so logits, loss,
 * every gradient, and every parameter and momentum after several SGD steps must agree up to float
 * rounding; and the training loop on two devices against one (losses, validation, checkpoints).
 * alexnet splits into columns (model parallel), alexnet-half and alexnet-tv split the batch.
 * Devices: the first two the runtime lists (CTest runs this with POCL_DEVICES="pthread pthread", two
 * one-core PoCL devices); fewer than two is a failure, not a skip. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "alexnet/io.h"
#include "alexnet/split.h"
#include "alexnet/train.h"
#include "check.h"

/* Margins. The batch split sums the same gradients in another order; the column split also sums fc6's,
 * fc7's and conv3's input gradients as two halves over K (the devices' partial products, as the paper's
 * GPUs did) where one device runs one GEMM over the whole K, and the early layers' gradients inherit
 * that rounding. Each tensor must be within NORM_RTOL in norm (‖got − want‖ / ‖want‖) and each element
 * within ELEM_RTOL of the tensor's largest magnitude; the loss within NORM_RTOL. */
#define NORM_RTOL 1e-5
#define ELEM_RTOL 3e-5

static char pair_spec[64];

static int pair_setup(void **state) {
  (void)state;
  an_device_info *list;
  int n;
  if (an_list_devices(&list, &n) != AN_OK) {
    fprintf(stderr, "no OpenCL device: %s\n", an_last_error());
    return -1;
  }
  if (n < 2) {
    fprintf(stderr,
            "the split tests need two OpenCL devices and found %d; with PoCL: "
            "POCL_DEVICES=\"pthread pthread\" POCL_MAX_PTHREAD_COUNT=1\n",
            n);
    free(list);
    return -1;
  }
  snprintf(pair_spec, sizeof pair_spec, "%d:%d,%d:%d", list[0].platform_index, list[0].device_index,
           list[1].platform_index, list[1].device_index);
  printf("split tests on %s: %s + %s\n", pair_spec, list[0].name, list[1].name);
  free(list);
  return 0;
}

typedef struct pair {
  an_runtime *rt[2];
} pair;

static pair open_pair(int separate) {
  pair p;
  TEST_OK(an_runtime_create_pair(pair_spec, separate, &p.rt[0], &p.rt[1]));
  return p;
}
static void close_pair(pair *p) {
  an_runtime_destroy(p->rt[1]);
  an_runtime_destroy(p->rt[0]);
}

static void make_batch(float *images, int *labels, int batch, int hw, int classes, uint64_t seed) {
  test_rng rng = test_rng_seeded(seed);
  test_fill_uniform(images, (size_t)batch * 3 * hw * hw, -1.7f, 1.7f, &rng);
  for (int i = 0; i < batch; i++) labels[i] = test_rng_below(&rng, classes);
}

/* Compares a full-layout array tensor by tensor; returns the worst error relative to each tensor's
 * largest magnitude through *worst. */
static int compare_tensors(const char *what, const an_net *full, const float *got, const float *want,
                           double *worst_elem, double *worst_norm) {
  int bad = 0;
  for (int t = 0; t < full->n_tensors; t++) {
    const an_tensor *T = &full->tensors[t];
    double *w = test_dup_double(want + T->offset, T->count);
    double big = 0, err = 0, diff2 = 0, want2 = 0;
    for (size_t i = 0; i < T->count; i++) {
      if (fabs(w[i]) > big) big = fabs(w[i]);
      const double e = fabs((double)got[T->offset + i] - w[i]);
      if (e > err || e != e) err = e;
      diff2 += e * e, want2 += w[i] * w[i];
    }
    const double rel = big > 0 ? err / big : err, norm = want2 > 0 ? sqrt(diff2 / want2) : sqrt(diff2);
    if (rel > *worst_elem) *worst_elem = rel;
    if (norm > *worst_norm) *worst_norm = norm;
    char name[160];
    snprintf(name, sizeof name, "%s %s (norm-wise %.2e)", what, T->name, norm);
    bad |= check_close(name, got + T->offset, w, T->count, ELEM_RTOL, 1e-30);
    if (!(norm <= NORM_RTOL)) {
      printf("    %s: norm-wise relative difference %.2e > %.0e FAIL\n", name, norm, NORM_RTOL);
      bad = 1;
    }
    free(w);
  }
  return bad;
}

/* Trains `steps` steps of model on one device and on the split, checking step 0's logits and gradients,
 * every step's loss, and the parameters and momentum at the end. */
static void run_against_one(const char *model, int batch, int hw, int classes, int steps, float lr, int separate) {
  const double t0 = an_seconds();
  printf("%s: batch %d, input %d, %d classes, %d steps, %s\n", model, batch, hw, classes, steps,
         separate ? "separate contexts (host path)" : "one context");
  fflush(stdout);
  pair p = open_pair(separate);
  an_net *one = NULL;
  an_split *two = NULL;
  TEST_OK(an_net_create(p.rt[0], model, classes, batch, hw, &one));
  TEST_OK(an_net_init(one, 7));
  TEST_OK(an_split_create(p.rt[0], p.rt[1], model, classes, batch, hw, &two));
  TEST_OK(an_split_init(two, 7));
  assert_int_equal(two->full->n_params, one->n_params);
  printf("  mode %s, devices run samples [%d, %d) and [%d, %d)\n",
         two->mode == AN_SPLIT_COLUMNS ? "columns" : "batch", two->first[0], two->first[0] + two->count[0],
         two->first[1], two->first[1] + two->count[1]);

  const size_t np = one->n_params, pixels = (size_t)batch * 3 * hw * hw;
  float *a = test_floats(np), *b = test_floats(np);
  float *images = test_floats(pixels);
  float *la = test_floats((size_t)batch * classes), *lb = test_floats((size_t)batch * classes);
  int *labels = malloc((size_t)batch * sizeof *labels);
  assert_non_null(labels);
  int bad = 0;
  double worst = 0, worst_norm = 0;

  /* the same initial weights: the split scatters the single-device initialisation */
  TEST_OK(an_net_read_params(one, a));
  TEST_OK(an_split_read_params(two, b));
  bad |= memcmp(a, b, np * sizeof *a) != 0;
  printf("  initial parameters %s\n", memcmp(a, b, np * sizeof *a) == 0 ? "identical" : "DIFFER");

  const an_sgd_params sgd = {lr, 0.9f, 5e-4f, 0};
  double worst_loss = 0;
  for (int s = 0; s < steps; s++) {
    make_batch(images, labels, batch, hw, classes, 1000 + (uint64_t)s);
    float loss_one, loss_two;
    TEST_OK(an_net_set_batch(one, images, labels));
    TEST_OK(an_net_forward(one, 1, 7, (uint64_t)s));
    TEST_OK(an_net_backward(one, 7, (uint64_t)s));
    TEST_OK(an_split_set_batch(two, images, labels));
    TEST_OK(an_split_forward(two, 1, 7, (uint64_t)s));
    TEST_OK(an_split_backward(two, 7, (uint64_t)s));
    TEST_OK(an_net_read_loss(one, &loss_one));
    TEST_OK(an_split_read_loss(two, &loss_two));
    const double rel = fabs((double)loss_two - loss_one) / fabs((double)loss_one);
    if (rel > worst_loss) worst_loss = rel;
    printf("  step %d: loss %.7f (one device) %.7f (two), relative difference %.2e\n", s, (double)loss_one,
           (double)loss_two, rel);
    bad |= !(rel <= NORM_RTOL);
    if (s == 0) {
      TEST_OK(an_net_read_logits(one, la));
      TEST_OK(an_split_read_logits(two, lb));
      double *want = test_dup_double(la, (size_t)batch * classes);
      bad |= check_close("  logits", lb, want, (size_t)batch * classes, ELEM_RTOL, 1e-30);
      free(want);
      TEST_OK(an_net_read_grads(one, a));
      TEST_OK(an_split_read_grads(two, b));
      bad |= compare_tensors("  step 0 gradient", two->full, b, a, &worst, &worst_norm);
    }
    TEST_OK(an_net_sgd(one, &sgd));
    TEST_OK(an_split_sgd(two, &sgd));
  }
  TEST_OK(an_net_read_params(one, a));
  TEST_OK(an_split_read_params(two, b));
  bad |= compare_tensors("  parameters after the steps", two->full, b, a, &worst, &worst_norm);
  TEST_OK(an_read(one->rt, a, an_at(one->momentum, 0), np));
  TEST_OK(an_split_read_momentum(two, b));
  bad |= compare_tensors("  momentum after the steps", two->full, b, a, &worst, &worst_norm);
  if (two->mode == AN_SPLIT_BATCH) { /* the replicas must not drift apart */
    TEST_OK(an_net_read_params(two->net[0], a));
    TEST_OK(an_net_read_params(two->net[1], b));
    printf("  the two replicas' parameters are %s\n", memcmp(a, b, np * sizeof *a) == 0 ? "identical" : "DIFFERENT");
    bad |= memcmp(a, b, np * sizeof *a) != 0;
  }
  printf("  %s: worst relative difference %.2e element-wise (margin %.0e), %.2e norm-wise (margin %.0e), %.2e in "
         "the loss; %.1f s\n",
         model, worst, ELEM_RTOL, worst_norm, NORM_RTOL, worst_loss, an_seconds() - t0);
  free(a), free(b), free(images), free(la), free(lb), free(labels);
  an_split_destroy(two);
  an_net_destroy(one);
  close_pair(&p);
  assert_int_equal(bad, 0);
}

static void test_alexnet_columns(void **state) {
  (void)state;
  run_against_one("alexnet", 4, 63, 10, 10, 0.0003f, 0);
}
static void test_half_batch(void **state) { /* an odd batch: shares of 3 and 2 */
  (void)state;
  run_against_one("alexnet-half", 5, 63, 10, 10, 0.01f, 0);
}
static void test_tv_batch(void **state) {
  (void)state;
  /* one sample per device; 4 steps: the largest model's cost (its 10 steps took 46 s of the suite) */
  run_against_one("alexnet-tv", 2, 63, 10, 4, 0.01f, 0);
}
static void test_alexnet_host_path(void **state) {
  (void)state;
  run_against_one("alexnet", 4, 63, 10, 3, 0.001f, 1);
}
static void test_half_host_path(void **state) {
  (void)state;
  run_against_one("alexnet-half", 4, 63, 10, 3, 0.01f, 1);
}

/* One context and two contexts run the same operations on the same devices: the same bits. */
static void test_contexts_agree(void **state) {
  (void)state;
  const int batch = 4, hw = 63, classes = 10;
  float *params[2];
  float losses[2][3];
  for (int separate = 0; separate < 2; separate++) {
    pair p = open_pair(separate);
    an_split *s = NULL;
    TEST_OK(an_split_create(p.rt[0], p.rt[1], "alexnet", classes, batch, hw, &s));
    printf("%s: %s\n", separate ? "separate contexts" : "one context",
           s->shared_context ? "buffer copies" : "host staging");
    assert_int_equal(s->shared_context, !separate);
    TEST_OK(an_split_init(s, 3));
    float *images = test_floats((size_t)batch * 3 * hw * hw);
    int labels[4];
    const an_sgd_params sgd = {0.01f, 0.9f, 5e-4f, 0};
    for (int k = 0; k < 3; k++) {
      make_batch(images, labels, batch, hw, classes, 50 + (uint64_t)k);
      TEST_OK(an_split_train_step(s, images, labels, &sgd, 3, (uint64_t)k, &losses[separate][k]));
    }
    params[separate] = test_floats(s->full->n_params);
    TEST_OK(an_split_read_params(s, params[separate]));
    const size_t np = s->full->n_params;
    free(images);
    an_split_destroy(s);
    close_pair(&p);
    if (separate) {
      const int same = memcmp(params[0], params[1], np * sizeof(float)) == 0 &&
                       memcmp(losses[0], losses[1], sizeof losses[0]) == 0;
      printf("  losses %.7f %.7f %.7f vs %.7f %.7f %.7f; parameters after 3 steps %s\n", (double)losses[0][0],
             (double)losses[0][1], (double)losses[0][2], (double)losses[1][0], (double)losses[1][1],
             (double)losses[1][2], same ? "identical" : "DIFFERENT");
      assert_true(same);
    }
  }
  free(params[0]), free(params[1]);
}

static unsigned char *slurp(const char *path, size_t *size) {
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  fseek(f, 0, SEEK_END);
  *size = (size_t)ftell(f);
  fseek(f, 0, SEEK_SET);
  unsigned char *b = malloc(*size ? *size : 1);
  assert_non_null(b);
  assert_int_equal(fread(b, 1, *size, f), *size);
  fclose(f);
  return b;
}

/* A checkpoint of the column split is the single-device file: the split's file loads into one device,
 * which writes the same bytes back, and that file loads into a split with the same parameters and
 * momentum. */
static void test_checkpoint_either_way(void **state) {
  (void)state;
  const int batch = 2, hw = 63, classes = 10;
  pair p = open_pair(0);
  an_split *s = NULL, *s2 = NULL;
  an_net *one = NULL;
  TEST_OK(an_split_create(p.rt[0], p.rt[1], "alexnet", classes, batch, hw, &s));
  TEST_OK(an_split_init(s, 11));
  float *images = test_floats((size_t)batch * 3 * hw * hw), loss;
  int labels[2];
  const an_sgd_params sgd = {0.001f, 0.9f, 5e-4f, 0};
  for (int k = 0; k < 2; k++) { /* some momentum to save */
    make_batch(images, labels, batch, hw, classes, 70 + (uint64_t)k);
    TEST_OK(an_split_train_step(s, images, labels, &sgd, 11, (uint64_t)k, &loss));
  }
  char dir[] = "/tmp/alexnet-split-XXXXXX", a[64], b[64];
  assert_non_null(mkdtemp(dir));
  snprintf(a, sizeof a, "%s/split.safetensors", dir);
  snprintf(b, sizeof b, "%s/one.safetensors", dir);
  an_checkpoint_meta meta;
  memset(&meta, 0, sizeof meta);
  meta.checkpoint = 1, meta.step = 2, meta.seed = 11, meta.lr = 0.001;
  TEST_OK(an_split_save(s, a, &meta));
  TEST_OK(an_net_create(p.rt[0], "alexnet", classes, batch, hw, &one));
  TEST_OK(an_net_load(one, a, NULL));
  TEST_OK(an_net_save(one, b, &meta));
  size_t na, nb;
  unsigned char *fa = slurp(a, &na), *fb = slurp(b, &nb);
  printf("split checkpoint %zu bytes, the one-device net's %zu bytes: %s\n", na, nb,
         na == nb && memcmp(fa, fb, na) == 0 ? "identical" : "DIFFERENT");
  assert_true(na == nb && memcmp(fa, fb, na) == 0);
  TEST_OK(an_split_create(p.rt[0], p.rt[1], "alexnet", classes, batch, hw, &s2));
  TEST_OK(an_split_load(s2, b, NULL));
  const size_t np = s->full->n_params;
  float *x = test_floats(np), *y = test_floats(np);
  TEST_OK(an_split_read_params(s, x));
  TEST_OK(an_split_read_params(s2, y));
  assert_memory_equal(x, y, np * sizeof *x);
  TEST_OK(an_split_read_momentum(s, x));
  TEST_OK(an_split_read_momentum(s2, y));
  assert_memory_equal(x, y, np * sizeof *x);
  printf("loaded back into a split: parameters and momentum identical\n");
  remove(a), remove(b), rmdir(dir);
  free(fa), free(fb), free(x), free(y), free(images);
  an_split_destroy(s2);
  an_split_destroy(s);
  an_net_destroy(one);
  close_pair(&p);
}

/* ---- the training loop on two devices ---- */

/* Per-step losses of an_train_pair against an_train: a few steps, so rounding has no time to grow. */
#define TRAIN_LOSS_RTOL 1e-5
enum { TRAIN_STEPS = 4, TRAIN_CLASSES = 4 };

typedef struct step_losses {
  float loss[TRAIN_STEPS + 1]; /* by global step */
  int seen[TRAIN_STEPS + 1];
} step_losses;

static void record_loss(void *ctx, const an_train_event *ev) {
  step_losses *l = ctx;
  if (ev->kind == AN_EVENT_STEP && ev->global_step <= TRAIN_STEPS) {
    l->loss[ev->global_step] = ev->loss;
    l->seen[ev->global_step] = 1;
  }
}

static void remove_run(const char *dir) {
  static const char *const files[] = {"last.safetensors", "best.safetensors", "log.jsonl", "classes.txt"};
  char path[128];
  for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
    snprintf(path, sizeof path, "%s/%s", dir, files[i]);
    remove(path);
  }
  assert_int_equal(rmdir(dir), 0);
}

/* A run's last checkpoint loaded into a one-device net and into a split: its parameters and momentum
 * through the net ((n_params) each, malloc'd), and whether the two give the same logits with dropout
 * off, the forward pass that evaluation runs (within ELEM_RTOL of the largest logit). */
static int load_both_ways(pair *p, const char *model, int batch, int hw, const char *dir, float **params,
                          float **momentum, an_checkpoint_meta *meta) {
  char path[128];
  snprintf(path, sizeof path, "%s/last.safetensors", dir);
  an_net *net = NULL;
  an_split *split = NULL;
  TEST_OK(an_net_create(p->rt[0], model, TRAIN_CLASSES, batch, hw, &net));
  TEST_OK(an_net_load(net, path, meta));
  *params = test_floats(net->n_params);
  *momentum = test_floats(net->n_params);
  TEST_OK(an_net_read_params(net, *params));
  TEST_OK(an_read(p->rt[0], *momentum, an_at(net->momentum, 0), net->n_params));
  TEST_OK(an_split_create(p->rt[0], p->rt[1], model, TRAIN_CLASSES, batch, hw, &split));
  TEST_OK(an_split_load(split, path, NULL));
  const size_t n_logits = (size_t)batch * TRAIN_CLASSES;
  float *images = test_floats((size_t)batch * 3 * hw * hw), *la = test_floats(n_logits), *lb = test_floats(n_logits);
  int *labels = malloc((size_t)batch * sizeof *labels);
  assert_non_null(labels);
  make_batch(images, labels, batch, hw, TRAIN_CLASSES, 90);
  TEST_OK(an_net_set_batch(net, images, labels));
  TEST_OK(an_net_forward(net, 0, 0, 0));
  TEST_OK(an_net_read_logits(net, la));
  TEST_OK(an_split_set_batch(split, images, labels));
  TEST_OK(an_split_forward(split, 0, 0, 0));
  TEST_OK(an_split_read_logits(split, lb));
  double *want = test_dup_double(la, n_logits);
  const int bad = check_close("  inference logits, the checkpoint on two devices vs one", lb, want, n_logits,
                              ELEM_RTOL, 1e-30);
  free(want), free(images), free(la), free(lb), free(labels);
  an_split_destroy(split);
  an_net_destroy(net);
  return bad;
}

/* alexnet train's loop (an_train_pair) on two devices against one, the same recipe on the synthetic set:
 * the per-step losses within TRAIN_LOSS_RTOL, the same validation top-1, and the two-device run's
 * checkpoint loads into a one-device net with the one-device run's parameters and momentum (within the
 * margins above) and gives the split's logits with dropout off. The validation at the end runs on the
 * split. With resume_halfway the two-device run
 * stops halfway and resumes, so the split's checkpoint load is in its path too. One epoch and few
 * checkpoints: alexnet's is ~0.5 GB to write. */
static void train_against_one(const char *model, int batch, float lr, int resume_halfway) {
  const double t0 = an_seconds();
  const int hw = 63;
  printf("%s: an_train on one device and an_train_pair on two, batch %d, input %d, %d steps, lr %g%s\n", model,
         batch, hw, TRAIN_STEPS, (double)lr, resume_halfway ? ", the two-device run resumed halfway" : "");
  fflush(stdout);
  an_synthetic_config tc = {
      .count = TRAIN_STEPS * batch, .classes = TRAIN_CLASSES, .side = 32, .noise = 0.1f, .seed = 31};
  an_synthetic_config vc = {.count = 8, .classes = TRAIN_CLASSES, .side = 32, .noise = 0.1f, .seed = 32};
  an_dataset *train = NULL, *val = NULL;
  TEST_OK(an_dataset_synthetic(&tc, &train));
  TEST_OK(an_dataset_synthetic(&vc, &val));
  char dir[2][64];
  for (int d = 0; d < 2; d++) {
    snprintf(dir[d], sizeof dir[d], "/tmp/alexnet-split-train-XXXXXX");
    assert_non_null(mkdtemp(dir[d]));
  }
  pair p = open_pair(0);
  static step_losses losses[2];
  memset(losses, 0, sizeof losses);
  an_train_config c = {.model = model,
                       .train = train,
                       .val = val,
                       .batch = batch,
                       .input = hw,
                       .epochs = 1,
                       .sgd = {lr, 0.9f, 5e-4f, 0},
                       .schedule = AN_LR_COSINE,
                       .seed = 5,
                       .threads = 1,
                       .callback = record_loss};
  an_train_result r[2];
  c.out_dir = dir[0];
  c.callback_ctx = &losses[0];
  TEST_OK(an_train(p.rt[0], &c, &r[0]));
  c.out_dir = dir[1];
  c.callback_ctx = &losses[1];
  if (resume_halfway) {
    c.stop_at_step = TRAIN_STEPS / 2;
    TEST_OK(an_train_pair(p.rt[0], p.rt[1], &c, &r[1]));
    assert_int_equal(r[1].steps_done, TRAIN_STEPS / 2);
    c.stop_at_step = 0;
    c.resume = 1;
  }
  TEST_OK(an_train_pair(p.rt[0], p.rt[1], &c, &r[1]));
  assert_int_equal(r[0].steps_done, TRAIN_STEPS);
  assert_int_equal(r[1].steps_done, TRAIN_STEPS);

  int bad = 0;
  double worst_loss = 0;
  for (int s = 1; s <= TRAIN_STEPS; s++) {
    assert_true(losses[0].seen[s] && losses[1].seen[s]);
    const double one = losses[0].loss[s], two = losses[1].loss[s], rel = fabs(two - one) / fabs(one);
    if (rel > worst_loss) worst_loss = rel;
    printf("  step %d: loss %.7f (one device) %.7f (two), relative difference %.2e\n", s, one, two, rel);
    bad |= !(rel <= TRAIN_LOSS_RTOL);
  }
  printf("  validation top-1 %.3f (one device) %.3f (two)\n", r[0].val_top1, r[1].val_top1);
  bad |= r[0].val_top1 < 0 || r[0].val_top1 != r[1].val_top1 || r[0].best_top1 != r[1].best_top1;

  /* the one-device run's checkpoint through host arrays, the two-device run's through a one-device net */
  float *pa, *ma, *pb, *mb;
  an_checkpoint_meta meta_a, meta_b;
  an_net *layout = NULL;
  TEST_OK(an_net_plan(model, TRAIN_CLASSES, batch, hw, &layout));
  char path[128];
  snprintf(path, sizeof path, "%s/last.safetensors", dir[0]);
  const an_param_layout file_layout = an_net_param_layout(layout);
  TEST_OK(an_checkpoint_load(&file_layout, path, &pa, &ma, &meta_a));
  assert_non_null(ma);
  bad |= load_both_ways(&p, model, batch, hw, dir[1], &pb, &mb, &meta_b);
  printf("  the two-device checkpoint loads into one device: step %lld, mean %s\n", (long long)meta_b.step,
         meta_b.mean);
  assert_int_equal(meta_b.step, TRAIN_STEPS);
  assert_string_equal(meta_a.mean, meta_b.mean);
  assert_string_equal(meta_a.std, meta_b.std);
  double worst = 0, worst_norm = 0;
  bad |= compare_tensors("  parameters after the run", layout, pb, pa, &worst, &worst_norm);
  bad |= compare_tensors("  momentum after the run", layout, mb, ma, &worst, &worst_norm);
  printf("  %s: worst relative difference %.2e element-wise, %.2e norm-wise, %.2e in the losses (margin %.0e); "
         "%.1f s\n",
         model, worst, worst_norm, worst_loss, TRAIN_LOSS_RTOL, an_seconds() - t0);
  an_net_destroy(layout);
  free(pa), free(ma), free(pb), free(mb);
  close_pair(&p);
  remove_run(dir[0]);
  remove_run(dir[1]);
  an_dataset_destroy(train);
  an_dataset_destroy(val);
  assert_int_equal(bad, 0);
}

static void test_train_half_batch(void **state) {
  (void)state;
  train_against_one("alexnet-half", 4, 0.01f, 1);
}
static void test_train_alexnet_columns(void **state) {
  (void)state;
  train_against_one("alexnet", 4, 0.001f, 0);
}

/* A device that cannot hold its half is refused before anything is allocated, naming the device. */
static void test_too_little_memory(void **state) {
  (void)state;
  pair p = open_pair(0);
  const cl_ulong real = p.rt[1]->info.global_mem_bytes;
  p.rt[1]->info.global_mem_bytes = 64u << 20; /* as if device 1 had 64 MiB */
  an_split *s = NULL;
  an_status st = an_split_create(p.rt[0], p.rt[1], "alexnet", 1000, 32, 224, &s);
  printf("alexnet at batch 32 with device 1 at 64 MiB: %s: %s\n", an_status_name(st), an_last_error());
  assert_int_equal(st, AN_ERR_DEVICE_MEMORY);
  assert_null(s);
  assert_non_null(strstr(an_last_error(), "device 1"));
  assert_non_null(strstr(an_last_error(), "needs"));
  assert_int_equal(p.rt[1]->gemm_temp_bytes, 0); /* nothing was reserved on it either */
  p.rt[1]->info.global_mem_bytes = real;
  p.rt[0]->info.global_mem_bytes = 64u << 20;
  st = an_split_create(p.rt[0], p.rt[1], "alexnet-tv", 1000, 32, 224, &s);
  printf("alexnet-tv at batch 32 with device 0 at 64 MiB: %s: %s\n", an_status_name(st), an_last_error());
  assert_int_equal(st, AN_ERR_DEVICE_MEMORY);
  assert_non_null(strstr(an_last_error(), "device 0"));
  close_pair(&p);
}

/* Pair specs: a missing comma is a clear error. */
static void test_pair_spec(void **state) {
  (void)state;
  an_runtime *a = NULL, *b = NULL;
  assert_int_equal(an_runtime_create_pair("0:0", 0, &a, &b), AN_ERR_ARGUMENT);
  printf("'0:0': %s\n", an_last_error());
  assert_null(a);
  assert_null(b);
}

int main(void) {
  /* ALEXNET_SPLIT_QUICK: the host path and the error paths only (the sanitizer pass; the full suite runs
   * everything) */
  const struct CMUnitTest quick[] = {
      cmocka_unit_test(test_pair_spec),
      cmocka_unit_test(test_too_little_memory),
      cmocka_unit_test(test_half_host_path),
  };
  if (getenv("ALEXNET_SPLIT_QUICK")) return cmocka_run_group_tests(quick, pair_setup, NULL);
  if (getenv("ALEXNET_TEST_FILTER")) cmocka_set_test_filter(getenv("ALEXNET_TEST_FILTER")); /* by hand */
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_pair_spec),
      cmocka_unit_test(test_too_little_memory),
      cmocka_unit_test(test_alexnet_columns),
      cmocka_unit_test(test_half_batch),
      cmocka_unit_test(test_tv_batch),
      cmocka_unit_test(test_alexnet_host_path),
      cmocka_unit_test(test_half_host_path),
      cmocka_unit_test(test_contexts_agree),
      cmocka_unit_test(test_checkpoint_either_way),
      cmocka_unit_test(test_train_half_batch),
      cmocka_unit_test(test_train_alexnet_columns),
  };
  return cmocka_run_group_tests(tests, pair_setup, NULL);
}
