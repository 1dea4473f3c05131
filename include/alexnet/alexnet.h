/* The library for applications: open a trained model from a weights file on an OpenCL device, classify
 * images (files, or RGB8 pixels already in memory; any number per call), read each image's top-k
 * classes with their names and probabilities, ask the device memory it holds, close.
 *
 *   an_classifier *c;
 *   if (an_classifier_open("flowers.safetensors", NULL, &c) != AN_OK) puts(an_last_error());
 *   an_prediction p;
 *   if (an_classifier_files(c, &path, 1, 5, &p, NULL, NULL) == AN_OK && p.ok)
 *     printf("%s %.1f%%\n", p.name[0], 100 * p.prob[0]);
 *   an_classifier_close(c);
 *
 * Preprocessing is `alexnet eval`'s and `alexnet classify`'s: the short side to the file's resize, the
 * centre crop (or ten crops), the normalisation recorded in the file. Inference keeps no gradients and
 * no training buffers; see `alexnet classify --help` for what the options mean in practice.
 *
 * Errors: every function that can fail returns an an_status (alexnet/status.h): AN_OK, or a code
 * whose an_status_name() is its symbol, with a message naming the thing and the cause in
 * an_last_error(). Nothing is printed and nothing exits.
 *
 * Threads: a classifier is not thread-safe; calls on one classifier must not overlap (the caller
 * serialises them). Classifiers are independent of each other (each holds its own OpenCL context,
 * queue and buffers), so different threads may each use their own. an_last_error() is per thread.
 * The file and RGB8 calls decode and preprocess on worker threads of their own (options.threads). */
#ifndef ALEXNET_ALEXNET_H
#define ALEXNET_ALEXNET_H

#include <stddef.h>

#include "alexnet/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct an_classifier an_classifier;

/* Zero (or NULL for the whole struct) is the default of every field. */
typedef struct an_classifier_options {
  /* "P:D" (as `alexnet devices` prints it) or a device name substring; NULL: ALEXNET_DEVICE, else the
   * first GPU, else the first device */
  const char *device;
  /* "alexnet", "alexnet-half", "alexnet-tv": the model the file must hold; NULL: the one its tensor shapes fit */
  const char *model;
  const char *labels;      /* class names, one per line; NULL: the names stored in the weights file */
  int input_size;          /* 0: the one the file records (224 when it does not say) */
  int batch;               /* images per forward pass (0: 8); a call may classify any number */
  int ten_crop;            /* 1: the softmax averaged over ten crops (4 corners, centre, and mirrors) */
  int threads;             /* decoding and preprocessing threads (0: 2) */
  size_t max_memory_bytes; /* device memory the plan may use (0: half of the device's) */
  int copy;                /* 1: copy input and output even on devices that share host memory */
} an_classifier_options;

#define AN_TOP_MAX 32

/* One image's result. */
typedef struct an_prediction {
  int ok;                       /* 0: error says why this image could not be classified */
  char error[512];              /* "" when ok */
  int top_k;                    /* classes below: min(the top_k asked, the model's classes) */
  int class_index[AN_TOP_MAX];  /* most probable first (ties: the lower index) */
  double prob[AN_TOP_MAX];      /* softmax probabilities (averaged over the crops) */
  const char *name[AN_TOP_MAX]; /* class names; NULL when the classifier has none (valid until close) */
} an_prediction;

/* An RGB8 image in memory: height rows of width R,G,B bytes, row r at pixels + r * stride_bytes. */
typedef struct an_rgb8 {
  const unsigned char *pixels;
  int width, height;
  size_t stride_bytes; /* 0: width * 3 */
} an_rgb8;

/* What was opened; the strings are valid until close. */
typedef struct an_classifier_info {
  const char *model, *device; /* the model's name, the device's name */
  int classes;
  int input_size, resize; /* crops of input_size from the short side scaled to resize */
  const char *norm;       /* "mean_std", "mean" or "none" */
  int have_norm;          /* 0: the file records no mean/std and ImageNet's are used */
  int ten_crop, batch;    /* batch: images per forward pass */
  int host_unified;       /* the device shares host memory (input and output used in place) */
  int has_names;          /* class names from the labels file or the weights file */
  int file_names;         /* names the weights file holds (unused when not one per class) */
  int labels_extra;       /* lines of the labels file beyond the classes (ignored) */
} an_classifier_info;

/* Opens the weights (a .safetensors weights file or training checkpoint) on a device and plans
 * inference for opts->batch images. opts may be NULL. On failure *out is NULL. */
AN_API an_status an_classifier_open(const char *weights, const an_classifier_options *opts, an_classifier **out);
/* Releases everything; NULL is a no-op. */
AN_API void an_classifier_close(an_classifier *c);

AN_API void an_classifier_describe(const an_classifier *c, an_classifier_info *out);
/* The name of class_index, or NULL when there are no names or the index is out of range. */
AN_API const char *an_classifier_class_name(const an_classifier *c, int class_index);
/* Device bytes the classifier holds: its plan's buffers and the GEMM scratch (the peak). */
AN_API size_t an_classifier_device_bytes(const an_classifier *c);

/* Called for each image in order as soon as its batch is done (index: its position in the call). */
typedef void (*an_prediction_fn)(void *ctx, int index, const char *file, const an_prediction *p);

/* Classifies n image files (JPEG, PNG, BMP, GIF) into out[0 .. n-1] (NULL: only fn) and/or
 * through fn (NULL: only out). A file that cannot be read or decoded is a prediction with ok = 0 and
 * the others go on; the returned status is for failures that stop everything (the device). */
AN_API an_status an_classifier_files(an_classifier *c, const char *const *files, int n, int top_k,
                                     an_prediction *out, an_prediction_fn fn, void *ctx);

/* The same for n RGB8 images in memory (file is NULL in fn's calls). */
AN_API an_status an_classifier_rgb8(an_classifier *c, const an_rgb8 *images, int n, int top_k, an_prediction *out,
                                    an_prediction_fn fn, void *ctx);

#ifdef __cplusplus
}
#endif
#endif
