/* alexnet.h, the library for applications, on weights saved by the training net:
 *   - image files of odd sizes classified in one call on a batch-2 classifier (three passes, the last
 *     padded), with a missing file among them, equal each image classified alone on a batch-1 one;
 *   - the same pixels as RGB8 buffers, packed and with padded rows, equal the files' results;
 *   - top-k: classes most probable first, probabilities summing to 1 over all classes, names from
 *     the labels file; the results through the callback equal those in the array;
 *   - two threads, each with a classifier of its own, at the same time: the results of one alone;
 *   - what describe reports, and bad arguments: a named AN_ERR_ARGUMENT, an unknown device, a missing
 *     weights file (and *out NULL). */
#define _GNU_SOURCE /* mkdtemp */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alexnet/alexnet.h"
#include "alexnet/data.h"
#include "alexnet/train.h"
#include "check.h"

#define N_IMAGES 5
#define CLASSES 6
#define INPUT 67

static char tmp_dir[64], weights[128], labels[128], files[N_IMAGES + 1][128];
static unsigned char *pixels[N_IMAGES]; /* (h, w, 3) */
static const int width[N_IMAGES] = {90, 67, 120, 71, 80}, height[N_IMAGES] = {70, 67, 75, 99, 80};

static unsigned char *picture(int w, int h, int seed) {
  unsigned char *p = malloc((size_t)w * h * 3);
  assert_non_null(p);
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++)
      for (int c = 0; c < 3; c++)
        p[((size_t)y * w + x) * 3 + c] = (unsigned char)(127 +
                                                         120 * sin(0.07 * (seed + 1) * (x + 2 * y) + c * seed));
  return p;
}

/* Weights of alexnet-half (saved by the training net), a labels file, PNGs and their pixels. */
static int setup(void **state) {
  snprintf(tmp_dir, sizeof tmp_dir, "/tmp/test_api.XXXXXX");
  if (!mkdtemp(tmp_dir) || test_runtime_setup(state) != 0) return -1;
  snprintf(weights, sizeof weights, "%s/w.safetensors", tmp_dir);
  snprintf(labels, sizeof labels, "%s/labels.txt", tmp_dir);
  an_net *net;
  if (an_net_create(test_rt, "alexnet-half", CLASSES, 1, INPUT, &net) != AN_OK) return -1;
  const an_status st = an_net_init(net, 4242) == AN_OK ? an_net_save(net, weights, NULL) : AN_ERR_IO;
  an_net_destroy(net);
  FILE *f = fopen(labels, "w");
  if (st != AN_OK || !f) return -1;
  for (int c = 0; c < CLASSES; c++) fprintf(f, "class %c\n", 'A' + c);
  fclose(f);
  for (int i = 0; i < N_IMAGES; i++) {
    pixels[i] = picture(width[i], height[i], i + 1);
    snprintf(files[i], sizeof files[i], "%s/%d.png", tmp_dir, i);
    const an_image img = {width[i], height[i], 3, pixels[i]};
    if (an_image_write(files[i], &img) != AN_OK) return -1;
  }
  snprintf(files[N_IMAGES], sizeof files[N_IMAGES], "%s/missing.png", tmp_dir);
  return 0;
}

static int teardown(void **state) {
  for (int i = 0; i < N_IMAGES; i++) {
    remove(files[i]);
    free(pixels[i]);
  }
  remove(weights);
  remove(labels);
  rmdir(tmp_dir);
  return test_runtime_teardown(state);
}

static an_classifier *open_classifier(int batch) {
  const an_classifier_options o = {
      .model = "alexnet-half", .labels = labels, .input_size = INPUT, .batch = batch, .threads = 3};
  an_classifier *c = NULL;
  TEST_OK(an_classifier_open(weights, &o, &c));
  assert_non_null(c);
  return c;
}

static void assert_same(const char *what, const an_prediction *got, const an_prediction *want) {
  assert_true(got->ok);
  assert_int_equal(got->top_k, want->top_k);
  for (int t = 0; t < want->top_k; t++) {
    if (got->class_index[t] != want->class_index[t] || fabs(got->prob[t] - want->prob[t]) > 1e-6)
      fail_msg("%s: rank %d: class %d p %.9f, alone class %d p %.9f", what, t, got->class_index[t], got->prob[t],
               want->class_index[t], want->prob[t]);
    assert_string_equal(got->name[t], want->name[t]);
  }
}

typedef struct seen {
  const char *const *list; /* the files of the call */
  an_prediction p[N_IMAGES + 1];
  int calls, last_index;
} seen;

static void record(void *ctx, int index, const char *file, const an_prediction *p) {
  seen *s = ctx;
  assert_int_equal(index, s->last_index + 1); /* in order */
  s->last_index = index;
  assert_string_equal(file, s->list[index]);
  s->p[index] = *p;
  s->calls++;
}

static void test_files_and_pixels_in_batches(void **state) {
  (void)state;
  an_prediction alone[N_IMAGES];
  an_classifier *one = open_classifier(1);
  for (int i = 0; i < N_IMAGES; i++) {
    const char *file = files[i];
    TEST_OK(an_classifier_files(one, &file, 1, CLASSES, &alone[i], NULL, NULL));
    assert_true(alone[i].ok);
    assert_int_equal(alone[i].top_k, CLASSES);
    double sum = 0;
    for (int t = 0; t < CLASSES; t++) {
      char name[16];
      snprintf(name, sizeof name, "class %c", 'A' + alone[i].class_index[t]);
      assert_string_equal(alone[i].name[t], name);
      if (t) assert_true(alone[i].prob[t] <= alone[i].prob[t - 1]);
      sum += alone[i].prob[t];
    }
    assert_true(fabs(sum - 1) < 1e-6);
  }

  an_classifier *c = open_classifier(2);
  an_classifier_info info;
  an_classifier_describe(c, &info);
  assert_string_equal(info.model, "alexnet-half");
  assert_int_equal(info.classes, CLASSES);
  assert_int_equal(info.input_size, INPUT);
  assert_int_equal(info.batch, 2);
  assert_true(info.has_names && info.resize >= INPUT);
  assert_true(an_classifier_device_bytes(c) > 0);
  assert_string_equal(an_classifier_class_name(c, 2), "class C");
  assert_null(an_classifier_class_name(c, CLASSES));

  /* files: all in one call, a missing one in the middle of the list */
  const char *list[N_IMAGES + 1] = {files[0], files[1], files[N_IMAGES], files[2], files[3], files[4]};
  an_prediction out[N_IMAGES + 1];
  seen s = {.list = list, .last_index = -1};
  TEST_OK(an_classifier_files(c, list, N_IMAGES + 1, CLASSES, out, record, &s));
  assert_int_equal(s.calls, N_IMAGES + 1);
  assert_false(out[2].ok);
  assert_non_null(strstr(out[2].error, "missing.png"));
  for (int i = 0, k = 0; i < N_IMAGES + 1; i++) {
    if (i == 2) continue;
    assert_same("file in a batch", &out[i], &alone[k]);
    assert_same("callback", &s.p[i], &out[i]);
    k++;
  }

  /* the same pixels in memory; images 1 and 3 with padded rows whose padding is noise */
  an_rgb8 img[N_IMAGES];
  unsigned char *padded[N_IMAGES] = {0};
  for (int i = 0; i < N_IMAGES; i++) {
    img[i] = (an_rgb8){pixels[i], width[i], height[i], 0};
    if (i % 2) {
      const size_t row = (size_t)width[i] * 3, stride = row + 7;
      padded[i] = malloc(stride * height[i]);
      assert_non_null(padded[i]);
      memset(padded[i], 0xA5, stride * height[i]);
      for (int y = 0; y < height[i]; y++) memcpy(padded[i] + y * stride, pixels[i] + y * row, row);
      img[i] = (an_rgb8){padded[i], width[i], height[i], stride};
    }
  }
  an_prediction mem[N_IMAGES];
  TEST_OK(an_classifier_rgb8(c, img, N_IMAGES, CLASSES, mem, NULL, NULL));
  for (int i = 0; i < N_IMAGES; i++) assert_same("RGB8 buffer", &mem[i], &alone[i]);

  /* top 3 of the same */
  TEST_OK(an_classifier_rgb8(c, img, 1, 3, mem, NULL, NULL));
  assert_int_equal(mem[0].top_k, 3);
  assert_int_equal(mem[0].class_index[2], alone[0].class_index[2]);
  for (int i = 0; i < N_IMAGES; i++) free(padded[i]);
  an_classifier_close(c);
  an_classifier_close(one); /* alone[]'s names are its */
}

/* One thread's classifier, opened and used in that thread: every image twice. */
typedef struct worker {
  pthread_t thread;
  an_status status;
  char error[512];
  an_prediction p[2 * N_IMAGES];
} worker;

static void *work(void *arg) {
  worker *w = arg;
  const an_classifier_options o = {.model = "alexnet-half", .input_size = INPUT, .batch = 3};
  an_classifier *c = NULL;
  const char *list[2 * N_IMAGES];
  for (int i = 0; i < 2 * N_IMAGES; i++) list[i] = files[i % N_IMAGES];
  w->status = an_classifier_open(weights, &o, &c);
  if (w->status == AN_OK) w->status = an_classifier_files(c, list, 2 * N_IMAGES, CLASSES, w->p, NULL, NULL);
  snprintf(w->error, sizeof w->error, "%s", w->status == AN_OK ? "" : an_last_error());
  an_classifier_close(c);
  return NULL;
}

static void test_two_threads(void **state) {
  (void)state;
  worker w[3];
  memset(w, 0, sizeof w);
  work(&w[0]); /* alone */
  for (int k = 1; k < 3; k++) assert_int_equal(pthread_create(&w[k].thread, NULL, work, &w[k]), 0);
  for (int k = 1; k < 3; k++) assert_int_equal(pthread_join(w[k].thread, NULL), 0);
  for (int k = 0; k < 3; k++) {
    if (w[k].status != AN_OK) fail_msg("thread %d: %s", k, w[k].error);
    for (int i = 0; i < 2 * N_IMAGES; i++) {
      assert_true(w[k].p[i].ok);
      for (int t = 0; t < CLASSES; t++) { /* the same batches: the same numbers */
        assert_int_equal(w[k].p[i].class_index[t], w[0].p[i].class_index[t]);
        assert_true(w[k].p[i].prob[t] == w[0].p[i].prob[t]);
      }
    }
  }
}

static void test_bad_arguments(void **state) {
  (void)state;
  an_classifier *c = open_classifier(2);
  an_prediction p;
  const char *file = files[0];
  assert_int_equal(an_classifier_files(c, &file, 1, 0, &p, NULL, NULL), AN_ERR_ARGUMENT);
  assert_non_null(strstr(an_last_error(), "top_k 0"));
  assert_int_equal(an_classifier_files(c, &file, 1, AN_TOP_MAX + 1, &p, NULL, NULL), AN_ERR_ARGUMENT);
  const an_rgb8 empty = {pixels[0], 0, 10, 0}, narrow = {pixels[0], 10, 10, 29};
  assert_int_equal(an_classifier_rgb8(c, &empty, 1, 5, &p, NULL, NULL), AN_ERR_ARGUMENT);
  assert_non_null(strstr(an_last_error(), "image 0 is 0x10"));
  assert_int_equal(an_classifier_rgb8(c, &narrow, 1, 5, &p, NULL, NULL), AN_ERR_ARGUMENT);
  an_classifier_close(c);

  an_classifier *none = (an_classifier *)&p;
  const an_classifier_options unknown = {.device = "no-such-device-anywhere", .model = "alexnet-half"};
  assert_int_equal(an_classifier_open(weights, &unknown, &none), AN_ERR_DEVICE_NOT_FOUND);
  assert_null(none);
  char missing[160];
  snprintf(missing, sizeof missing, "%s/none.safetensors", tmp_dir);
  none = (an_classifier *)&p;
  assert_int_not_equal(an_classifier_open(missing, NULL, &none), AN_OK);
  assert_null(none);
  assert_non_null(strstr(an_last_error(), "none.safetensors"));
  an_classifier_close(NULL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_files_and_pixels_in_batches),
      cmocka_unit_test(test_two_threads),
      cmocka_unit_test(test_bad_arguments),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
