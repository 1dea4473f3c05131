/* The models on a second OpenCL implementation: Oclgrind (an OpenCL 1.2 simulator that says it is a GPU,
 * has no host-unified memory and 32 KiB of local memory) beside PoCL in one process. For each model's
 * test width (alexnet-narrow, alexnet-half-narrow, alexnet-tv-narrow: every layer of the model at 1/16
 * of its channels) one training step and one inference pass on Oclgrind against the same on PoCL; then
 * the column split of alexnet-narrow with one column on each platform (two contexts, the host path)
 * against PoCL alone. tests/test_oclgrind.sh registers both platforms (OCL_ICD_VENDORS), turns on
 * Oclgrind's checks (API misuse, data races, invalid accesses; not uninitialized values, see there) and
 * fails on any report; this file checks the numbers. Without both platforms the suite fails, it never skips. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "alexnet/infer.h"
#include "alexnet/split.h"
#include "alexnet/train.h"
#include "check.h"

/* test_split.c's margins: the two implementations' GEMMs (CLBlast's kernels, tuned per device) sum in
 * other orders, as the split's devices do. Each tensor within NORM_RTOL in norm and each element within
 * ELEM_RTOL of the tensor's largest magnitude; the loss within NORM_RTOL. */
#define NORM_RTOL 1e-5
#define ELEM_RTOL 3e-5

#define BATCH 2
#define HW 63
#define CLASSES 10
#define SEED 7

static char pocl_spec[16], oclgrind_spec[16];
/* one runtime on each for the whole suite: each new context would build the project's program and
 * CLBlast's kernels again, which Oclgrind does slowly */
static an_runtime *pocl, *og;

static int find_platforms(void **state) {
  (void)state;
  an_device_info *list;
  int n;
  if (an_list_devices(&list, &n) != AN_OK) {
    fprintf(stderr, "no OpenCL device: %s\n", an_last_error());
    return -1;
  }
  for (int i = 0; i < n; i++) {
    char *spec = strstr(list[i].platform_name, "Oclgrind") ? oclgrind_spec : pocl_spec;
    if (!spec[0]) snprintf(spec, sizeof pocl_spec, "%d:%d", list[i].platform_index, list[i].device_index);
  }
  free(list);
  if (!pocl_spec[0] || !oclgrind_spec[0]) {
    fprintf(stderr, "these tests need Oclgrind and a second platform (PoCL) in one process: run them through "
                    "tests/test_oclgrind.sh, which registers both with OCL_ICD_VENDORS\n");
    return -1;
  }
  printf("PoCL %s, Oclgrind %s\n", pocl_spec, oclgrind_spec);
  if (an_runtime_create(pocl_spec, &pocl) != AN_OK || an_runtime_create(oclgrind_spec, &og) != AN_OK) {
    fprintf(stderr, "opening the runtimes: %s\n", an_last_error());
    return -1;
  }
  printf("kernel variants: %s on %s, %s on %s\n", an_kernel_variant_name(pocl->kernels_variant), pocl->info.name,
         an_kernel_variant_name(og->kernels_variant), og->info.name);
  return 0;
}

static int close_runtimes(void **state) {
  (void)state;
  an_runtime_destroy(og);
  an_runtime_destroy(pocl);
  return 0;
}

static void make_batch(float *images, int *labels, int batch, uint64_t seed) {
  test_rng rng = test_rng_seeded(seed);
  test_fill_uniform(images, (size_t)batch * 3 * HW * HW, -1.7f, 1.7f, &rng);
  for (int i = 0; i < batch; i++) labels[i] = test_rng_below(&rng, CLASSES);
}

/* got against want, tensor by tensor of net's layout */
static int compare_tensors(const char *what, const an_net *net, const float *got, const float *want) {
  int bad = 0;
  for (int t = 0; t < net->n_tensors; t++) {
    const an_tensor *T = &net->tensors[t];
    double *w = test_dup_double(want + T->offset, T->count);
    double diff2 = 0, want2 = 0;
    for (size_t i = 0; i < T->count; i++) {
      const double e = (double)got[T->offset + i] - w[i];
      diff2 += e * e, want2 += w[i] * w[i];
    }
    const double norm = want2 > 0 ? sqrt(diff2 / want2) : sqrt(diff2);
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

static int compare_loss(const char *what, float got, float want) {
  const double rel = fabs((double)got - want) / fabs((double)want);
  printf("  %s: loss %.7f (PoCL) %.7f, relative difference %.2e%s\n", what, (double)want, (double)got, rel,
         rel <= NORM_RTOL ? "" : "  FAIL");
  return !(rel <= NORM_RTOL);
}

/* One training step of model on a net: its loss, logits and gradients; *net_out keeps the net. */
static void train_step(an_runtime *rt, const char *model, float *loss, float *logits, float **grads,
                       an_net **net_out) {
  an_net *net;
  TEST_OK(an_net_create(rt, model, CLASSES, BATCH, HW, &net));
  TEST_OK(an_net_init(net, SEED));
  float *images = test_floats((size_t)BATCH * 3 * HW * HW);
  int labels[BATCH];
  make_batch(images, labels, BATCH, 1000);
  TEST_OK(an_net_set_batch(net, images, labels));
  TEST_OK(an_net_forward(net, 1, SEED, 0));
  TEST_OK(an_net_backward(net, SEED, 0));
  const an_sgd_params sgd = {0.01f, 0.9f, 5e-4f, 0};
  TEST_OK(an_net_sgd(net, &sgd));
  TEST_OK(an_net_read_loss(net, loss));
  TEST_OK(an_net_read_logits(net, logits));
  *grads = test_floats(net->n_params);
  TEST_OK(an_net_read_grads(net, *grads));
  free(images);
  *net_out = net;
}

/* An inference pass of model with the weights in path: (BATCH, CLASSES) logits, malloc'd. */
static float *infer(an_runtime *rt, const char *model, const char *path, const float *images) {
  an_infer *inf;
  TEST_OK(an_infer_create(rt, model, CLASSES, BATCH, HW, NULL, &inf));
  TEST_OK(an_infer_load(inf, path));
  memcpy(an_infer_input(inf, 0), images, (size_t)BATCH * 3 * HW * HW * sizeof(float));
  const float *logits;
  TEST_OK(an_infer_run(inf, 0, &logits));
  float *copy = test_floats((size_t)BATCH * CLASSES);
  memcpy(copy, logits, (size_t)BATCH * CLASSES * sizeof *copy);
  an_infer_destroy(inf);
  return copy;
}

/* A training step (forward, loss, backward, SGD) and an inference pass of model on Oclgrind, against
 * PoCL: loss, logits, every gradient, the parameters after the step, the inference logits. */
static void run_model(const char *model) {
  const double t0 = an_seconds();
  printf("%s: batch %d, input %d, %d classes\n", model, BATCH, HW, CLASSES);
  assert_int_equal(og->kernels_variant, AN_KERNELS_GPU); /* Oclgrind is a GPU among other things */
  float loss[2], logits[2][BATCH * CLASSES], *grads[2];
  an_net *net[2];
  train_step(pocl, model, &loss[0], logits[0], &grads[0], &net[0]);
  train_step(og, model, &loss[1], logits[1], &grads[1], &net[1]);
  int bad = compare_loss("training step", loss[1], loss[0]);
  double *want = test_dup_double(logits[0], BATCH * CLASSES);
  bad |= check_close("  training logits", logits[1], want, BATCH * CLASSES, ELEM_RTOL, 1e-30);
  free(want);
  bad |= compare_tensors("  gradient", net[0], grads[1], grads[0]);
  float *params[2] = {test_floats(net[0]->n_params), test_floats(net[0]->n_params)};
  TEST_OK(an_net_read_params(net[0], params[0]));
  TEST_OK(an_net_read_params(net[1], params[1]));
  bad |= compare_tensors("  parameters after SGD", net[0], params[1], params[0]);

  char path[128];
  snprintf(path, sizeof path, "test_oclgrind_%s.safetensors", model);
  TEST_OK(an_net_save(net[0], path, NULL));
  float *images = test_floats((size_t)BATCH * 3 * HW * HW);
  int labels[BATCH];
  make_batch(images, labels, BATCH, 2000);
  float *inferred[2] = {infer(pocl, model, path, images), infer(og, model, path, images)};
  want = test_dup_double(inferred[0], BATCH * CLASSES);
  bad |= check_close("  inference logits", inferred[1], want, BATCH * CLASSES, ELEM_RTOL, 1e-30);
  free(want);
  remove(path);
  printf("  %s: %.1f s\n", model, an_seconds() - t0);
  for (int i = 0; i < 2; i++) {
    free(grads[i]), free(params[i]), free(inferred[i]);
    an_net_destroy(net[i]);
  }
  free(images);
  assert_int_equal(bad, 0);
}

static void test_alexnet_narrow(void **state) {
  (void)state;
  run_model("alexnet-narrow");
}
static void test_alexnet_half_narrow(void **state) {
  (void)state;
  run_model("alexnet-half-narrow");
}
static void test_alexnet_tv_narrow(void **state) {
  (void)state;
  run_model("alexnet-tv-narrow");
}

/* The column split of alexnet-narrow, column 0 on PoCL and column 1 on Oclgrind (two platforms: two
 * contexts, exchanges through host memory), against PoCL alone: a training step's loss, logits and
 * gradients, and the parameters after its SGD update. */
static void test_mixed_platform_split(void **state) {
  (void)state;
  const double t0 = an_seconds();
  const int batch = BATCH, steps = 1;
  an_runtime *rt0 = pocl, *rt1 = og; /* two platforms: a context each, as an_runtime_create_pair makes */
  printf("alexnet-narrow split over %s (%s) and %s (%s), batch %d\n", rt0->info.name, rt0->info.platform_name,
         rt1->info.name, rt1->info.platform_name, batch);
  an_net *one = NULL;
  an_split *two = NULL;
  TEST_OK(an_net_create(rt0, "alexnet-narrow", CLASSES, batch, HW, &one));
  TEST_OK(an_net_init(one, SEED));
  TEST_OK(an_split_create(rt0, rt1, "alexnet-narrow", CLASSES, batch, HW, &two));
  TEST_OK(an_split_init(two, SEED));
  assert_int_equal(two->mode, AN_SPLIT_COLUMNS);
  assert_int_equal(two->shared_context, 0);
  const size_t np = one->n_params;
  float *a = test_floats(np), *b = test_floats(np), *images = test_floats((size_t)batch * 3 * HW * HW);
  float la[BATCH * CLASSES], lb[BATCH * CLASSES];
  int labels[BATCH];
  const an_sgd_params sgd = {0.001f, 0.9f, 5e-4f, 0};
  int bad = 0;
  for (int s = 0; s < steps; s++) {
    make_batch(images, labels, batch, 3000 + (uint64_t)s);
    float loss_one, loss_two;
    TEST_OK(an_net_set_batch(one, images, labels));
    TEST_OK(an_net_forward(one, 1, SEED, (uint64_t)s));
    TEST_OK(an_net_backward(one, SEED, (uint64_t)s));
    TEST_OK(an_split_set_batch(two, images, labels));
    TEST_OK(an_split_forward(two, 1, SEED, (uint64_t)s));
    TEST_OK(an_split_backward(two, SEED, (uint64_t)s));
    TEST_OK(an_net_read_loss(one, &loss_one));
    TEST_OK(an_split_read_loss(two, &loss_two));
    bad |= compare_loss("split step", loss_two, loss_one);
    if (s == 0) {
      TEST_OK(an_net_read_logits(one, la));
      TEST_OK(an_split_read_logits(two, lb));
      double *want = test_dup_double(la, (size_t)batch * CLASSES);
      bad |= check_close("  split logits", lb, want, (size_t)batch * CLASSES, ELEM_RTOL, 1e-30);
      free(want);
      TEST_OK(an_net_read_grads(one, a));
      TEST_OK(an_split_read_grads(two, b));
      bad |= compare_tensors("  split step 0 gradient", two->full, b, a);
    }
    TEST_OK(an_net_sgd(one, &sgd));
    TEST_OK(an_split_sgd(two, &sgd));
  }
  TEST_OK(an_net_read_params(one, a));
  TEST_OK(an_split_read_params(two, b));
  bad |= compare_tensors("  split parameters after the steps", two->full, b, a);
  printf("  mixed-platform split: %.1f s\n", an_seconds() - t0);
  free(a), free(b), free(images);
  an_split_destroy(two);
  an_net_destroy(one);
  assert_int_equal(bad, 0);
}

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0); /* a line at a time: the steps take minutes under Oclgrind's checks */
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_alexnet_narrow),
      cmocka_unit_test(test_alexnet_half_narrow),
      cmocka_unit_test(test_alexnet_tv_narrow),
      cmocka_unit_test(test_mixed_platform_split),
  };
  return cmocka_run_group_tests(tests, find_platforms, close_runtimes);
}
