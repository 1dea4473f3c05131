/* alexnet.h, the library for applications: a classifier is a runtime (one device), an inference plan
 * with the weights loaded, and the weights file's preprocessing and class names; it classifies files
 * and RGB8 buffers through an_classify_files / an_classify_images (classify.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alexnet/alexnet.h"
#include "alexnet/infer.h"
#include "alexnet/model.h"
#include "runtime/check.h"

struct an_classifier {
  an_runtime *rt;
  an_infer *inf;
  an_weights_info info; /* the file's metadata; owns class_names */
  char model[32];
  char **labels; /* (classes) from the labels file, or NULL */
  char **names;  /* (classes) labels, info.class_names or NULL */
  int labels_extra, batch, threads;
  an_augment aug;
  an_data_stats stats;
};

/* Where the file's class names come from: the labels file, else the file when it names every class. */
static an_status read_names(an_classifier *c, const char *labels) {
  const int classes = c->info.classes;
  if (labels) {
    AN_TRY(an_labels_read(labels, classes, &c->labels, &c->labels_extra));
    c->names = c->labels;
  } else if (c->info.n_class_names == classes) {
    c->names = c->info.class_names;
  }
  return AN_OK;
}

/* The model, classes, names and preprocessing from the weights file and the options. */
static an_status read_weights(an_classifier *c, const char *weights, const an_classifier_options *o) {
  AN_TRY(an_weights_info_read(weights, &c->info));
  const an_model_desc *m; /* from the tensor shapes (a PyTorch file has no metadata); o->model is a check */
  AN_TRY(an_model_identify_file(weights, o->model, &m, &c->info.classes));
  snprintf(c->model, sizeof c->model, "%s", m->name);
  AN_TRY(read_names(c, o->labels));
  const int size = o->input_size ? o->input_size : c->info.input_hw ? c->info.input_hw : 224;
  AN_TRY(an_augment_from_meta(size, c->info.input_hw, c->info.resize, c->info.norm, &c->aug));
  c->aug.ten_crop = o->ten_crop != 0;
  c->stats = an_data_stats_imagenet();
  memcpy(c->stats.mean, c->info.mean, sizeof c->stats.mean);
  memcpy(c->stats.std, c->info.std, sizeof c->stats.std);
  return AN_OK;
}

an_status an_classifier_open(const char *weights, const an_classifier_options *opts, an_classifier **out) {
  if (!out) return AN_FAIL(AN_ERR_ARGUMENT, "an_classifier_open: out is NULL");
  *out = NULL;
  const an_classifier_options o = opts ? *opts : (an_classifier_options){0};
  if (!weights) return AN_FAIL(AN_ERR_ARGUMENT, "an_classifier_open: no weights file");
  if (o.batch < 0 || o.batch > 65536 || o.threads < 0 || o.input_size < 0 || o.input_size > 4096)
    return AN_FAIL(AN_ERR_ARGUMENT,
                   "an_classifier_open: batch %d (0-65536), threads %d (>= 0), input size %d (0-4096)", o.batch,
                   o.threads, o.input_size);
  an_classifier *c = calloc(1, sizeof *c);
  if (!c) return AN_FAIL(AN_ERR_HOST_ALLOC, "an_classifier_open: out of host memory");
  c->batch = o.batch ? o.batch : 8;
  c->threads = o.threads ? o.threads : 2;
  an_status status = AN_OK;
  AN_TRY_GOTO(read_weights(c, weights, &o));
  AN_TRY_GOTO(an_runtime_create(o.device, &c->rt));
  const an_infer_options io = {
      .zero_copy = o.copy ? 0 : -1, .input_slots = 2, .max_memory_bytes = o.max_memory_bytes};
  AN_TRY_GOTO(an_infer_create(c->rt, c->model, c->info.classes, c->batch * an_augment_crops(&c->aug, 0),
                              c->aug.input, &io, &c->inf));
  AN_TRY_GOTO(an_infer_load(c->inf, weights));
  *out = c;
  return AN_OK;
cleanup:
  an_classifier_close(c);
  return status;
}

void an_classifier_close(an_classifier *c) {
  if (!c) return;
  an_infer_destroy(c->inf);
  an_runtime_destroy(c->rt);
  if (c->labels) an_class_names_free(c->labels, c->info.classes);
  an_weights_info_free(&c->info);
  free(c);
}

void an_classifier_describe(const an_classifier *c, an_classifier_info *out) {
  *out = (an_classifier_info){
      .model = c->model,
      .device = c->rt->info.name,
      .classes = c->info.classes,
      .input_size = c->aug.input,
      .resize = c->aug.resize,
      .norm = an_norm_name(c->aug.norm),
      .have_norm = c->info.have_norm,
      .ten_crop = c->aug.ten_crop,
      .batch = c->batch,
      .host_unified = c->rt->info.host_unified,
      .has_names = c->names != NULL,
      .file_names = c->info.n_class_names,
      .labels_extra = c->labels_extra,
  };
}

const char *an_classifier_class_name(const an_classifier *c, int class_index) {
  return c->names && class_index >= 0 && class_index < c->info.classes ? c->names[class_index] : NULL;
}

size_t an_classifier_device_bytes(const an_classifier *c) { return an_infer_device_bytes(c->inf); }

an_runtime *an_classifier_runtime(const an_classifier *c) { return c->rt; }
an_infer *an_classifier_plan(const an_classifier *c) { return c->inf; }

/* an_classify_result to the caller's an_prediction: into out[index] and through fn. */
typedef struct relay {
  const an_classifier *c;
  an_prediction *out;
  an_prediction_fn fn;
  void *ctx;
} relay;

static void relay_result(void *ctx, const an_classify_result *r) {
  const relay *rl = ctx;
  an_prediction p = {.ok = r->ok, .top_k = r->ok ? r->top_k : 0};
  snprintf(p.error, sizeof p.error, "%s", r->ok ? "" : r->error);
  for (int t = 0; t < p.top_k; t++) {
    p.class_index[t] = r->top[t];
    p.prob[t] = r->prob[t];
    p.name[t] = an_classifier_class_name(rl->c, r->top[t]);
  }
  if (rl->out) rl->out[r->index] = p;
  if (rl->fn) rl->fn(rl->ctx, r->index, r->file, &p);
}

static an_status check_call(const an_classifier *c, const void *items, int n, int top_k, const char *what) {
  if (!c) return AN_FAIL(AN_ERR_ARGUMENT, "%s: the classifier is NULL", what);
  if (n < 0 || (n > 0 && !items)) return AN_FAIL(AN_ERR_ARGUMENT, "%s: %d items at %p", what, n, items);
  if (top_k < 1 || top_k > AN_TOP_MAX)
    return AN_FAIL(AN_ERR_ARGUMENT, "%s: top_k %d is not in [1, %d]", what, top_k, AN_TOP_MAX);
  return AN_OK;
}

an_status an_classifier_files(an_classifier *c, const char *const *files, int n, int top_k, an_prediction *out,
                              an_prediction_fn fn, void *ctx) {
  AN_TRY(check_call(c, files, n, top_k, "an_classifier_files"));
  relay rl = {c, out, fn, ctx};
  an_classify_stats stats;
  return an_classify_files(c->inf, files, n, &c->aug, &c->stats, c->threads, top_k, relay_result, &rl, &stats);
}

an_status an_classifier_rgb8(an_classifier *c, const an_rgb8 *images, int n, int top_k, an_prediction *out,
                             an_prediction_fn fn, void *ctx) {
  AN_TRY(check_call(c, images, n, top_k, "an_classifier_rgb8"));
  an_image *img = calloc(n ? (size_t)n : 1, sizeof *img); /* (n) views of the caller's pixels, or packed copies */
  uint8_t **packed = calloc(n ? (size_t)n : 1, sizeof *packed);
  an_status status = AN_OK;
  if (!img || !packed) {
    status = AN_FAIL(AN_ERR_HOST_ALLOC, "an_classifier_rgb8: out of host memory for %d images", n);
    goto cleanup;
  }
  for (int i = 0; i < n; i++) {
    const an_rgb8 *s = &images[i];
    const size_t row = (size_t)s->width * 3, stride = s->stride_bytes ? s->stride_bytes : row;
    if (!s->pixels || s->width < 1 || s->height < 1 || stride < row) {
      status = AN_FAIL(AN_ERR_ARGUMENT, "an_classifier_rgb8: image %d is %dx%d with stride %zu at %p", i, s->width,
                       s->height, stride, (const void *)s->pixels);
      goto cleanup;
    }
    img[i] = (an_image){.width = s->width, .height = s->height, .channels = 3, .pixels = (uint8_t *)s->pixels};
    if (stride != row) { /* an_image rows are packed */
      if (!(packed[i] = malloc(row * (size_t)s->height))) {
        status = AN_FAIL(AN_ERR_HOST_ALLOC, "an_classifier_rgb8: out of host memory for image %d", i);
        goto cleanup;
      }
      for (int y = 0; y < s->height; y++) memcpy(packed[i] + y * row, s->pixels + y * stride, row);
      img[i].pixels = packed[i];
    }
  }
  relay rl = {c, out, fn, ctx};
  an_classify_stats stats;
  status = an_classify_images(c->inf, img, n, &c->aug, &c->stats, c->threads, top_k, relay_result, &rl, &stats);
cleanup:
  for (int i = 0; packed && i < n; i++) free(packed[i]);
  free(packed);
  free(img);
  return status;
}
