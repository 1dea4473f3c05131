/* alexnet classify: the top-k classes of image files through an inference plan (no gradients, no
 * training buffers), preprocessed exactly as alexnet eval does; text or JSON lines; an unreadable image
 * is an error line and the others go on; --time reports latency, throughput and device memory. */
#include <dirent.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

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
         "  --weights W       .safetensors weights or checkpoint (model, classes, input size, resize,\n"
         "                    normalisation, mean/std, class names from its metadata)\n"
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
         "  --model M         model when the file does not name one\n"
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

static int parse_bytes(const char *s, size_t *out) {
  char *end;
  const double v = strtod(s, &end);
  double mult = 1;
  if (*end == 'K' || *end == 'k') mult = 1024.0, end++;
  else if (*end == 'M' || *end == 'm') mult = 1048576.0, end++;
  else if (*end == 'G' || *end == 'g') mult = 1073741824.0, end++;
  if (*end == 'i' || *end == 'B') end += *end == 'i' ? (end[1] == 'B' ? 2 : 1) : 1;
  if (end == s || *end || !(v > 0)) return 0;
  *out = (size_t)(v * mult);
  return 1;
}

typedef struct printer {
  int json;
  char **names; /* (classes) or NULL */
} printer;

static void print_result(void *ctx, const an_classify_result *r) {
  const printer *p = ctx;
  if (p->json) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "file", r->file);
    if (!r->ok) {
      cJSON_AddStringToObject(o, "error", r->error);
    } else {
      cJSON *top = cJSON_AddArrayToObject(o, "top");
      for (int t = 0; t < r->top_k; t++) {
        cJSON *c = cJSON_CreateObject();
        cJSON_AddNumberToObject(c, "class", r->top[t]);
        if (p->names) cJSON_AddStringToObject(c, "name", p->names[r->top[t]]);
        cJSON_AddNumberToObject(c, "prob", r->prob[t]);
        cJSON_AddItemToArray(top, c);
      }
    }
    char *s = cJSON_PrintUnformatted(o);
    if (s) printf("%s\n", s);
    free(s);
    cJSON_Delete(o);
  } else if (!r->ok) {
    printf("%s: error: %s\n", r->file, r->error);
  } else {
    printf("%s\n", r->file);
    for (int t = 0; t < r->top_k; t++) {
      if (p->names) printf("  %8.4f%%  %s\n", 100.0 * r->prob[t], p->names[r->top[t]]);
      else printf("  %8.4f%%  class %d\n", 100.0 * r->prob[t], r->top[t]);
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

int cmd_classify(int argc, char **argv) {
  enum { O_LABELS = 256, O_TOP, O_CROP, O_JSON, O_TIME, O_MAXMEM, O_COPY, O_THREADS };
  static const struct option opts[] = {
      {"weights", required_argument, NULL, 'w'},     {"labels", required_argument, NULL, O_LABELS},
      {"top", required_argument, NULL, O_TOP},       {"crop", required_argument, NULL, O_CROP},
      {"batch", required_argument, NULL, 'b'},       {"threads", required_argument, NULL, O_THREADS},
      {"json", no_argument, NULL, O_JSON},           {"time", no_argument, NULL, O_TIME},
      {"max-memory", required_argument, NULL, O_MAXMEM}, {"copy", no_argument, NULL, O_COPY},
      {"model", required_argument, NULL, 'm'},       {"input-size", required_argument, NULL, 's'},
      {"device", required_argument, NULL, 'd'},      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0}};
  const char *weights = NULL, *labels = NULL, *model = NULL, *device = NULL;
  int top = 5, ten = 0, batch = 8, threads = 2, json = 0, timing = 0, size = 0, c;
  an_infer_options io = {.zero_copy = -1, .input_slots = 2};
  while ((c = getopt_long(argc, argv, "w:b:m:s:d:h", opts, NULL)) != -1) {
    switch (c) {
      case 'w': weights = optarg; break;
      case O_LABELS: labels = optarg; break;
      case O_TOP: top = atoi(optarg); break;
      case O_CROP:
        if (!strcmp(optarg, "ten")) ten = 1;
        else if (!strcmp(optarg, "center") || !strcmp(optarg, "centre")) ten = 0;
        else {
          fprintf(stderr, "alexnet classify: --crop is center or ten, not '%s'\n", optarg);
          return 2;
        }
        break;
      case 'b': batch = atoi(optarg); break;
      case O_THREADS: threads = atoi(optarg); break;
      case O_JSON: json = 1; break;
      case O_TIME: timing = 1; break;
      case O_MAXMEM:
        if (!parse_bytes(optarg, &io.max_memory_bytes)) {
          fprintf(stderr, "alexnet classify: --max-memory '%s' is not a size (512M, 2G, bytes)\n", optarg);
          return 2;
        }
        break;
      case O_COPY: io.zero_copy = 0; break;
      case 'm': model = optarg; break;
      case 's': size = atoi(optarg); break;
      case 'd': device = optarg; break;
      case 'h': help(); return 0;
      default: fprintf(stderr, "see: alexnet classify --help\n"); return 2;
    }
  }
  if (!weights || optind >= argc || batch < 1 || threads < 1 || top < 1 || top > AN_CLASSIFY_MAX_TOP || size < 0) {
    fprintf(stderr, "alexnet classify: --weights and at least one image or directory are required; batch and "
                    "threads must be positive, --top in 1..%d (see --help)\n", AN_CLASSIFY_MAX_TOP);
    return 2;
  }
  int rc = 1;
  file_list files = {0};
  an_weights_info info = {0};
  char **names = NULL;
  int n_names = 0;
  an_runtime *rt = NULL;
  an_infer *inf = NULL;
  for (int i = optind; i < argc; i++) {
    struct stat st;
    const int ok = stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode) ? collect(argv[i], 0, &files) : push(&files, argv[i]);
    if (!ok) {
      fprintf(stderr, "alexnet classify: out of host memory listing %s\n", argv[i]);
      goto done;
    }
  }
  if (files.n == 0) {
    fprintf(stderr, "alexnet classify: no image files in the given directories\n");
    goto done;
  }
  if (an_weights_info_read(weights, &info) != AN_OK) {
    rc = cli_fail("reading the weights");
    goto done;
  }
  if (!model) model = info.model[0] ? info.model : NULL;
  if (!model) {
    fprintf(stderr, "alexnet classify: %s does not name its model: pass --model\n", weights);
    goto done;
  }
  if (!size) size = info.input_hw ? info.input_hw : 224;
  const int classes = info.classes;
  if (classes < 1) {
    fprintf(stderr, "alexnet classify: %s does not say how many classes it has\n", weights);
    goto done;
  }
  if (labels) {
    int extra = 0;
    if (an_labels_read(labels, classes, &names, &extra) != AN_OK) {
      rc = cli_fail("reading the labels");
      goto done;
    }
    n_names = classes;
    if (extra) fprintf(stderr, "alexnet classify: warning: %s has %d more lines than the %d classes\n", labels, extra, classes);
  } else if (info.n_class_names == classes) {
    names = info.class_names, n_names = 0; /* owned by info */
  } else if (info.n_class_names) {
    fprintf(stderr, "alexnet classify: warning: %s names %d classes but has %d: printing class numbers\n", weights,
            info.n_class_names, classes);
  }
  an_augment aug;
  if (an_augment_from_meta(size, info.input_hw, info.resize, info.norm, &aug) != AN_OK) {
    rc = cli_fail("reading the weights' preprocessing");
    goto done;
  }
  aug.ten_crop = ten;
  const int crops = an_augment_crops(&aug, 0);
  an_data_stats stats = an_data_stats_imagenet();
  memcpy(stats.mean, info.mean, sizeof stats.mean);
  memcpy(stats.std, info.std, sizeof stats.std);
  if (!info.have_norm)
    fprintf(stderr, "alexnet classify: %s has no normalisation: using ImageNet's mean and std\n", weights);
  if (an_runtime_create(device, &rt) != AN_OK) {
    rc = cli_fail("opening the OpenCL device");
    goto done;
  }
  if (timing) {
    fprintf(stderr, "%s on %s (%s memory): %s, %d classes, input %d from %d, %s, %s\n", weights, rt->info.name,
            rt->info.host_unified ? "host-unified" : "separate", model, classes, size, aug.resize,
            an_norm_name(aug.norm), ten ? "ten-crop" : "centre crop");
    if (time_latency(rt, model, classes, size, crops, weights, &io) != 0) goto done;
  }
  if (batch > files.n) batch = files.n; /* no plan larger than the work */
  if (an_infer_create(rt, model, classes, batch * crops, size, &io, &inf) != AN_OK) {
    rc = cli_fail("planning inference");
    if (crops > 1) fprintf(stderr, "alexnet classify: with --crop ten a batch holds 10 rows per image: --batch is "
                                   "the batch that fits divided by 10\n");
    goto done;
  }
  if (an_infer_load(inf, weights) != AN_OK) {
    rc = cli_fail("loading the weights");
    goto done;
  }
  printer pr = {json, names};
  an_classify_stats cs;
  if (an_classify_files(inf, (const char *const *)files.v, files.n, &aug, &stats, threads, top, print_result, &pr,
                        &cs) != AN_OK) {
    rc = cli_fail("classifying");
    goto done;
  }
  if (timing) {
    char what[64];
    snprintf(what, sizeof what, "batch %d", batch);
    print_memory(what, &inf->mem);
    const float *logits;
    double t = 0;
    const int runs = 3;
    if (an_infer_run(inf, 0, &logits) != AN_OK) { /* warm */
      rc = cli_fail("timing");
      goto done;
    }
    for (int i = 0; i < runs; i++) {
      const double t0 = an_seconds();
      if (an_infer_run(inf, 0, &logits) != AN_OK) {
        rc = cli_fail("timing");
        goto done;
      }
      t += an_seconds() - t0;
    }
    fprintf(stderr, "batch %d: %.1f images/s on the device (%.1f ms per batch, mean of %d); end to end with "
            "decoding %.1f images/s (%d images in %.2f s)\n", batch, batch * runs / t, 1e3 * t / runs, runs,
            cs.images / cs.seconds, cs.images, cs.seconds);
  }
  if (cs.failed) fprintf(stderr, "alexnet classify: %d of %d images could not be classified\n", cs.failed, cs.images);
  rc = cs.failed ? 1 : 0;
done:
  an_infer_destroy(inf);
  an_runtime_destroy(rt);
  if (n_names) an_class_names_free(names, n_names);
  an_weights_info_free(&info);
  for (int i = 0; i < files.n; i++) free(files.v[i]);
  free(files.v);
  return rc;
}
