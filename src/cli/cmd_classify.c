/* alexnet classify: the top-k classes of image files through the library's classifier (alexnet.h: an
 * inference plan, no gradients, no training buffers), preprocessed exactly as alexnet eval does; text
 * or JSON lines; an unreadable image is an error line and the others go on; --time reports latency,
 * throughput and device memory. */
#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "alexnet/alexnet.h"
#include "alexnet/infer.h"
#include "cli.h"

static void help(void) {
  printf("usage: alexnet classify --weights W [options] IMG|DIR ...\n\n"
         "Classifies images with a trained model: for each image the top-k classes and their\n"
         "probabilities. A directory stands for every .jpg .jpeg .png .bmp .gif under it (sorted).\n"
         "Preprocessing is alexnet eval's: short side to the file's resize (round(S·256/224) when it does\n"
         "not say), centre crop S (or ten crops), the normalisation stored in the file (kind and mean/std;\n"
         "ImageNet's mean/std when it has none). Images are decoded by worker\n"
         "threads while the device runs the previous batch. Inference allocates no gradients and no\n"
         "training buffers; on host-unified devices (integrated GPUs, PoCL) the input and output are host\n"
         "memory used in place. Exit status 1 when any image could not be classified.\n\n"
         "  --weights W       .safetensors weights or checkpoint: this project's, or a PyTorch state_dict\n"
         "                    as safetensors.torch.save_file writes it (model and classes from the\n"
         "                    tensor shapes; input size, resize, normalisation, mean/std, class\n"
         "                    names from its metadata when it has them)\n"
         "  --labels FILE     class names, one per line in class order (overrides the file's names)\n"
         "  --top K           classes per image                                  (default 5)\n"
         "  --crop C          center | ten (4 corners + centre and mirrors, softmax averaged) (center)\n"
         "  --batch B         images per forward pass                            (default 8)\n"
         "  --threads T       decoding threads                                   (default 2)\n"
         "  --json            one JSON object per image and line:\n"
         "                    {\"file\",\"top\":[{\"class\",\"name\",\"prob\"},...]} or {\"file\",\"error\"}\n"
         "  --time            batch-1 latency, batched throughput, peak device memory of both plans\n"
         "  --max-memory M    device memory the plan may use: bytes, or with K/M/G (default: half of the\n"
         "                    device's global memory); the im2col workspace is chunked to fit\n"
         "  --copy            copy input and output even on host-unified devices\n"
         "  --model M         the model the file must hold (default: the one its tensor shapes fit)\n"
         "  --input-size S    input side when the file does not say              (default 224)\n"
         "  --device D        P:D index or name substring (default: ALEXNET_DEVICE, else first GPU)\n");
}

typedef struct file_list {
  char **v;
  int n, cap;
} file_list;

static int push(file_list *l, const char *s) {
  if (l->n == l->cap) {
    const int cap = l->cap ? 2 * l->cap : 64;
    char **g = realloc(l->v, (size_t)cap * sizeof *g);
    if (!g) return 0;
    l->v = g, l->cap = cap;
  }
  return (l->v[l->n] = strdup(s)) ? (l->n++, 1) : 0;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int is_image_name(const char *name) {
  static const char *const exts[] = {"jpg", "jpeg", "png", "bmp", "gif"};
  const char *dot = strrchr(name, '.');
  for (size_t i = 0; dot && i < sizeof exts / sizeof exts[0]; i++)
    if (!strcasecmp(dot + 1, exts[i])) return 1;
  return 0;
}

/* Every image file under dir, sorted by path; hidden entries skipped. 0 when out of memory. */
static int collect(const char *dir, int depth, file_list *out) {
  DIR *d = opendir(dir);
  if (!d || depth > 16) {
    if (d) closedir(d);
    return 1;
  }
  file_list here = {0};
  struct dirent *e;
  char path[4096];
  int ok = 1;
  while (ok && (e = readdir(d))) {
    if (e->d_name[0] == '.') continue;
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    ok = push(&here, path);
  }
  closedir(d);
  if (here.n > 1) qsort(here.v, (size_t)here.n, sizeof *here.v, cmp_str);
  for (int i = 0; ok && i < here.n; i++) {
    struct stat st;
    if (stat(here.v[i], &st) != 0) continue;
    if (S_ISDIR(st.st_mode)) ok = collect(here.v[i], depth + 1, out);
    else if (is_image_name(here.v[i])) ok = push(out, here.v[i]);
  }
  for (int i = 0; i < here.n; i++) free(here.v[i]);
  free(here.v);
  return ok;
}

typedef struct printer {
  int json, failed;
} printer;

static void print_result(void *ctx, int index, const char *file, const an_prediction *r) {
  printer *p = ctx;
  (void)index;
  p->failed += !r->ok;
  if (p->json) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "file", file);
    if (!r->ok) {
      cJSON_AddStringToObject(o, "error", r->error);
    } else {
      cJSON *top = cJSON_AddArrayToObject(o, "top");
      for (int t = 0; t < r->top_k; t++) {
        cJSON *c = cJSON_CreateObject();
        cJSON_AddNumberToObject(c, "class", r->class_index[t]);
        if (r->name[t]) cJSON_AddStringToObject(c, "name", r->name[t]);
        cJSON_AddNumberToObject(c, "prob", r->prob[t]);
        cJSON_AddItemToArray(top, c);
      }
    }
    char *s = cJSON_PrintUnformatted(o);
    if (s) printf("%s\n", s);
    free(s);
    cJSON_Delete(o);
  } else if (!r->ok) {
    printf("%s: error: %s\n", file, r->error);
  } else {
    printf("%s\n", file);
    for (int t = 0; t < r->top_k; t++) {
      if (r->name[t]) printf("  %8.4f%%  %s\n", 100.0 * r->prob[t], r->name[t]);
      else printf("  %8.4f%%  class %d\n", 100.0 * r->prob[t], r->class_index[t]);
    }
  }
  fflush(stdout);
}

static void print_memory(const char *what, const an_infer_memory *m) {
  const double mib = 1048576.0;
  fprintf(stderr,
          "%s: peak device memory %.1f MiB (weights %.1f, activations %.1f, im2col %.1f, input %.2f, output %.2f, "
          "GEMM scratch %.1f)\n",
          what, m->total_bytes / mib, m->params_bytes / mib, m->acts_bytes / mib, m->work_bytes / mib,
          m->input_bytes / mib, m->output_bytes / mib, m->gemm_temp_bytes / mib);
}

static int cmp_double(const void *a, const void *b) {
  const double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* Batch-1 latency: a plan for one image (its crops), weights loaded, median of 10 runs after 2. */
static int time_latency(an_runtime *rt, const char *model, int classes, int size, int crops, const char *weights,
                        const an_infer_options *opts) {
  an_infer *one = NULL;
  if (an_infer_create(rt, model, classes, crops, size, opts, &one) != AN_OK) return cli_fail("batch-1 plan");
  if (an_infer_load(one, weights) != AN_OK) {
    an_infer_destroy(one);
    return cli_fail("loading the weights");
  }
  print_memory("batch 1", &one->mem);
  double t[10];
  const float *logits;
  for (int i = 0; i < 12; i++) {
    const double t0 = an_seconds();
    if (an_infer_run(one, 0, &logits) != AN_OK) {
      an_infer_destroy(one);
      return cli_fail("batch-1 run");
    }
    if (i >= 2) t[i - 2] = an_seconds() - t0;
  }
  qsort(t, 10, sizeof t[0], cmp_double);
  fprintf(stderr, "batch 1: latency %.2f ms (median of 10; min %.2f, max %.2f)\n", 1e3 * (t[4] + t[5]) / 2,
          1e3 * t[0], 1e3 * t[9]);
  an_infer_destroy(one);
  return 0;
}

/* The command line, with its defaults. */
typedef struct classify_args {
  const char *weights, *labels, *model, *device;
  int top, ten, batch, threads, json, timing, size, copy;
  size_t max_memory; /* 0: the plan's default */
  char **inputs;     /* the images and directories */
  int n_inputs;
} classify_args;

static int parse_args(int argc, char **argv, classify_args *a) {
  static const char *const crops[] = {"center", "centre", "ten", NULL};
  static const int crop_ten[] = {0, 0, 1};
  *a = (classify_args){.top = 5, .batch = 8, .threads = 2};
  const cli_option options[] = {
      CLI_OPT_STRING("weights", 'w', &a->weights),
      CLI_OPT_STRING("labels", 0, &a->labels),
      CLI_OPT_INT("top", 0, &a->top, 1, AN_CLASSIFY_MAX_TOP),
      CLI_OPT_CHOICE("crop", 0, &a->ten, crops, crop_ten),
      CLI_OPT_INT("batch", 'b', &a->batch, 1, 65536),
      CLI_OPT_INT("threads", 0, &a->threads, 1, 4096), /* the library uses at most 64 */
      CLI_OPT_FLAG("json", 0, &a->json),
      CLI_OPT_FLAG("time", 0, &a->timing),
      CLI_OPT_SIZE("max-memory", 0, &a->max_memory, 1, 1125899906842624.0), /* up to 1 PiB */
      CLI_OPT_FLAG("copy", 0, &a->copy),
      CLI_OPT_STRING("model", 'm', &a->model),
      CLI_OPT_INT("input-size", 's', &a->size, 0, 4096), /* 0: the file's */
      CLI_OPT_STRING("device", 'd', &a->device),
  };
  const cli_command cmd = {"classify", options, sizeof options / sizeof options[0], help, INT_MAX};
  const int status = cli_parse(&cmd, argc, argv, &a->n_inputs);
  if (status != CLI_CONTINUE) return status;
  a->inputs = argv + 1;
  if (!a->weights || !a->n_inputs)
    return cli_usage_error("classify", "--weights and at least one image or directory are required (see --help)");
  return CLI_CONTINUE;
}

/* The library's findings a user should hear of: names that do not fit, no normalisation. */
static void print_warnings(const classify_args *a, const an_classifier_info *info) {
  if (info->labels_extra)
    fprintf(stderr, "alexnet classify: warning: %s has %d more lines than the %d classes\n", a->labels,
            info->labels_extra, info->classes);
  if (!a->labels && info->file_names && info->file_names != info->classes)
    fprintf(stderr, "alexnet classify: warning: %s names %d classes but has %d: printing class numbers\n",
            a->weights, info->file_names, info->classes);
  if (!info->have_norm)
    fprintf(stderr, "alexnet classify: %s has no normalisation: using ImageNet's mean and std\n", a->weights);
}

/* --time: the batched plan's memory and device throughput, and the end-to-end rate of the run. */
static int time_throughput(an_infer *inf, int batch, int images, double seconds) {
  char what[64];
  snprintf(what, sizeof what, "batch %d", batch);
  print_memory(what, &inf->mem);
  const float *logits;
  double t = 0;
  const int runs = 3;
  if (an_infer_run(inf, 0, &logits) != AN_OK) return cli_fail("timing"); /* warm */
  for (int i = 0; i < runs; i++) {
    const double t0 = an_seconds();
    if (an_infer_run(inf, 0, &logits) != AN_OK) return cli_fail("timing");
    t += an_seconds() - t0;
  }
  fprintf(stderr,
          "batch %d: %.1f images/s on the device (%.1f ms per batch, mean of %d); end to end with "
          "decoding %.1f images/s (%d images in %.2f s)\n",
          batch, batch * runs / t, 1e3 * t / runs, runs, images / seconds, images, seconds);
  return 0;
}

/* Classifies the files through the library's classifier (alexnet.h), printing each result; returns the
 * exit status. */
static int run_classify(const classify_args *a, const file_list *files) {
  const an_classifier_options o = {.device = a->device,
                                   .model = a->model,
                                   .labels = a->labels,
                                   .input_size = a->size,
                                   .batch = a->batch > files->n ? files->n
                                                                : a->batch, /* no plan larger than the work */
                                   .ten_crop = a->ten,
                                   .threads = a->threads,
                                   .max_memory_bytes = a->max_memory,
                                   .copy = a->copy};
  an_classifier *c = NULL;
  if (an_classifier_open(a->weights, &o, &c) != AN_OK) {
    const int rc = cli_fail("opening the model");
    if (a->ten)
      fprintf(stderr, "alexnet classify: with --crop ten a batch holds 10 rows per image: --batch is "
                      "the batch that fits divided by 10\n");
    return rc;
  }
  an_classifier_info info;
  an_classifier_describe(c, &info);
  print_warnings(a, &info);
  int rc = 1;
  if (a->timing) {
    const an_infer_options io = {.zero_copy = a->copy ? 0 : -1, .input_slots = 2, .max_memory_bytes = a->max_memory};
    fprintf(stderr, "%s on %s (%s memory): %s, %d classes, input %d from %d, %s, %s\n", a->weights, info.device,
            info.host_unified ? "host-unified" : "separate", info.model, info.classes, info.input_size, info.resize,
            info.norm, a->ten ? "ten-crop" : "centre crop");
    if (time_latency(an_classifier_runtime(c), info.model, info.classes, info.input_size, a->ten ? 10 : 1,
                     a->weights, &io) != 0)
      goto done;
  }
  printer pr = {a->json, 0};
  const double t0 = an_seconds();
  if (an_classifier_files(c, (const char *const *)files->v, files->n, a->top, NULL, print_result, &pr) != AN_OK) {
    rc = cli_fail("classifying");
    goto done;
  }
  if (a->timing && time_throughput(an_classifier_plan(c), o.batch, files->n, an_seconds() - t0) != 0) goto done;
  if (pr.failed) fprintf(stderr, "alexnet classify: %d of %d images could not be classified\n", pr.failed, files->n);
  rc = pr.failed ? 1 : 0;
done:
  an_classifier_close(c);
  return rc;
}

int cmd_classify(int argc, char **argv) {
  classify_args a;
  int rc = parse_args(argc, argv, &a);
  if (rc != CLI_CONTINUE) return rc;
  rc = 1;
  file_list files = {0};
  for (int i = 0; i < a.n_inputs; i++) {
    const char *in = a.inputs[i];
    struct stat st;
    const int ok = stat(in, &st) == 0 && S_ISDIR(st.st_mode) ? collect(in, 0, &files) : push(&files, in);
    if (!ok) {
      fprintf(stderr, "alexnet classify: out of host memory listing %s\n", in);
      goto done;
    }
  }
  if (files.n == 0) {
    fprintf(stderr, "alexnet classify: no image files in the given directories\n");
    goto done;
  }
  rc = run_classify(&a, &files);
done:
  for (int i = 0; i < files.n; i++) free(files.v[i]);
  free(files.v);
  return rc;
}
