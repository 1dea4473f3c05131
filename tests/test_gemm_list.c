/* The layer table's GEMM lists against the GEMMs the layers really issue: a training step (forward and
 * backward) and an inference pass of each model run with GEMM recording on, and the recorded calls
 * must be exactly the listed ones, in order: shapes, transposes, offsets, leading dimensions, count.
 * The tuner, bench and the inference plan's scratch all read those lists, so a layer whose code and
 * list disagree fails here. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "alexnet/infer.h"
#include "alexnet/model.h"
#include "check.h"

enum { BATCH = 2, INPUT = 63, CLASSES = 5 };

static void print_call(const char *what, int i, const an_gemm_call *c) {
  printf("  %s %d: %c%c m=%zu n=%zu k=%zu a=%zu/%zu b=%zu/%zu c=%zu/%zu\n", what, i, c->trans_a ? 'T' : 'N',
         c->trans_b ? 'T' : 'N', c->m, c->n, c->k, c->a_off, c->lda, c->b_off, c->ldb, c->c_off, c->ldc);
}

/* Recorded against listed, call by call; prints the first difference. Returns the number of calls. */
static int assert_same_calls(const char *what, const an_gemm_log *log, const an_gemm_call *listed, int n_listed) {
  assert_false(log->failed);
  int first_diff = -1;
  for (int i = 0; i < log->n && i < n_listed && first_diff < 0; i++)
    if (memcmp(&log->calls[i], &listed[i], sizeof listed[i]) != 0) first_diff = i;
  if (first_diff >= 0 || log->n != n_listed) {
    printf("%s: %d GEMMs issued, %d listed\n", what, log->n, n_listed);
    if (first_diff >= 0) {
      print_call("issued", first_diff, &log->calls[first_diff]);
      print_call("listed", first_diff, &listed[first_diff]);
    }
  }
  assert_int_equal(log->n, n_listed);
  assert_int_equal(first_diff, -1);
  printf("%s: %d GEMMs issued = listed\n", what, n_listed);
  return n_listed;
}

/* chunked: the workspace narrowed to one image of conv1, so its GEMMs run image by image (the buffer
 * stays as large as planned); winograd: the runtime's Winograd passes for this step (-1: as they are) */
static void run_training_step(const char *model, int chunked, int winograd) {
  const int saved_winograd = test_rt->winograd;
  if (winograd >= 0) test_rt->winograd = winograd;
  an_net *net = NULL;
  TEST_OK(an_net_create(test_rt, model, CLASSES, BATCH, INPUT, &net));
  if (chunked) {
    const an_conv_dims conv1 = an_layer_conv_dims(&net->layers[0], BATCH);
    net->work_floats = an_conv_work_floats(&conv1, 1);
    assert_int_equal(an_conv_chunk_images(&conv1, net->work_floats), 1);
  }
  TEST_OK(an_net_init(net, 1));
  float *images = test_floats((size_t)BATCH * 3 * INPUT * INPUT);
  test_rng rng = test_rng_seeded(2);
  test_fill_uniform(images, (size_t)BATCH * 3 * INPUT * INPUT, -1.0f, 1.0f, &rng);
  const int labels[BATCH] = {0, 3};
  TEST_OK(an_net_set_batch(net, images, labels));
  an_gemm_log log = {0};
  an_gemm_record(test_rt, &log);
  TEST_OK(an_net_forward(net, 1, 7, 0));
  TEST_OK(an_net_backward(net, 7, 0));
  an_gemm_record(test_rt, NULL);
  TEST_OK(an_finish(test_rt));

  const int passes = AN_PASS_FORWARD | AN_PASS_BACKWARD;
  const int n = an_net_gemm_calls(net, passes, NULL, 0);
  an_gemm_call *listed = calloc((size_t)n + 1, sizeof *listed);
  assert_non_null(listed);
  assert_int_equal(an_net_gemm_calls(net, passes, listed, n), n);
  char what[128];
  snprintf(what, sizeof what, "%s training step%s, ALEXNET_WINOGRAD passes %d", model,
           chunked ? ", conv1 image by image" : "", test_rt->winograd);
  assert_same_calls(what, &log, listed, n);
  assert_true(n > 0);

  /* the tuner's distinct shapes count every call once */
  an_gemm_shape shapes[256];
  const int n_shapes = an_net_gemm_shapes(net, shapes, 256);
  int counted = 0;
  for (int i = 0; i < n_shapes; i++) counted += shapes[i].count;
  assert_int_equal(counted, n);
  free(listed);
  free(log.calls);
  free(images);
  an_net_destroy(net);
  test_rt->winograd = saved_winograd;
}

/* max_memory_bytes 0: the default limit (whole-batch workspace); else a limit that chunks the batch */
static void run_inference(const char *model, int batch, size_t max_memory_bytes, int want_chunked) {
  an_infer_options opts = {max_memory_bytes, -1, 1};
  an_infer *inf = NULL;
  TEST_OK(an_infer_create(test_rt, model, CLASSES, batch, INPUT, &opts, &inf));
  if (want_chunked) assert_true(inf->mem.chunk_images < batch);
  float *input = an_infer_input(inf, 0);
  test_rng rng = test_rng_seeded(3);
  test_fill_uniform(input, inf->input_floats, -1.0f, 1.0f, &rng);
  an_gemm_log log = {0};
  an_gemm_record(test_rt, &log);
  const float *logits = NULL;
  TEST_OK(an_infer_run(inf, 0, &logits));
  an_gemm_record(test_rt, NULL);

  const int n = an_infer_gemm_calls(inf, NULL, 0);
  an_gemm_call *listed = calloc((size_t)n + 1, sizeof *listed);
  assert_non_null(listed);
  assert_int_equal(an_infer_gemm_calls(inf, listed, n), n);
  char what[96];
  snprintf(what, sizeof what, "%s inference, batch %d, %d image(s) per chunk", model, batch, inf->mem.chunk_images);
  assert_same_calls(what, &log, listed, n);
  assert_true(n > 0);
  free(listed);
  free(log.calls);
  an_infer_destroy(inf);
}

/* A limit just under the whole-batch plan: the workspace must shrink, so the convolutions run in chunks. */
static size_t chunking_limit(const char *model, int batch) {
  an_infer_memory mem;
  TEST_OK(an_infer_plan(test_rt, model, CLASSES, batch, INPUT, NULL, &mem));
  return mem.total_bytes - mem.work_bytes / 2;
}

static void test_alexnet(void **state) {
  (void)state;
  run_training_step("alexnet", 0, -1);
  /* every pass of the 3x3 and 5x5 layers on Winograd (at 63 px the default runs their gradients on
   * im2col); and the weight gradient alone, the input gradient then on im2col */
  run_training_step("alexnet", 0, AN_WINOGRAD_FORWARD | AN_WINOGRAD_INPUT_GRAD | AN_WINOGRAD_WEIGHT_GRAD);
  run_training_step("alexnet", 0, AN_WINOGRAD_WEIGHT_GRAD);
  run_inference("alexnet", BATCH, 0, 0);
}

static void test_alexnet_half(void **state) {
  (void)state;
  run_training_step("alexnet-half", 0, -1);
  run_training_step("alexnet-half", 1, -1);
  run_training_step("alexnet-half", 0, AN_WINOGRAD_FORWARD | AN_WINOGRAD_INPUT_GRAD | AN_WINOGRAD_WEIGHT_GRAD);
  run_inference("alexnet-half", BATCH, 0, 0);
  /* batch 16: conv1's im2col the largest workspace (at 4 images F(4x4,5x5)'s transformed filters for conv2
   * were, and half of the workspace still held conv1's whole batch) */
  run_inference("alexnet-half", 16, chunking_limit("alexnet-half", 16), 1);
}

static void test_alexnet_tv(void **state) {
  (void)state;
  run_training_step("alexnet-tv", 0, -1);
  run_training_step("alexnet-tv", 0, AN_WINOGRAD_FORWARD | AN_WINOGRAD_INPUT_GRAD); /* the input gradient alone */
  run_inference("alexnet-tv", BATCH, 0, 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_alexnet),
      cmocka_unit_test(test_alexnet_half),
      cmocka_unit_test(test_alexnet_tv),
  };
  return cmocka_run_group_tests(tests, test_runtime_setup, test_runtime_teardown);
}
