/* alexnet bench: times training or inference steps of the models on one device or every device,
 * splitting each step into layers and GEMMs with OpenCL profiling markers, and reports images/s,
 * GFLOP/s per layer and overall, the GEMM share, host overhead, device memory, cold and warm start. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alexnet/model.h"
#include "cli.h"

typedef struct layer_time {
  double fwd_ms, bwd_ms, fwd_flop, bwd_flop;
  double fwd_gemm_ms, bwd_gemm_ms; /* the part of fwd_ms / bwd_ms spent in CLBlast */
} layer_time;

typedef struct bench_result {
  char device[320], model[32], tuning[512];
  int batch, train;
  double img_s, step_ms, device_ms, gemm_ms, host_ms, gflops, build_s, first_step_s;
  double loss_ms, zero_ms, sgd_ms;
  size_t device_bytes;
  layer_time layers[32];
  int n_layers;
} bench_result;

/* FLOPs of a layer's forward and backward (GEMM-bearing layers only; the rest move memory). */
static void layer_flops(const an_net *net, int i, double *fwd, double *bwd) {
  const an_layer_plan *L = &net->layers[i];
  const an_layer_desc *d = L->desc;
  *fwd = *bwd = 0;
  if (d->kind == AN_LAYER_CONV) {
    *fwd = 2.0 * net->batch * L->out_c * L->out_h * L->out_w * (double)(L->in_c / d->groups) * d->kernel * d->kernel;
    *bwd = i == 0 ? *fwd : 2 * *fwd; /* the first layer computes no input gradient */
  } else if (d->kind == AN_LAYER_FC) {
    *fwd = 2.0 * net->batch * L->in_c * L->in_h * L->in_w * L->out_c;
    *bwd = 2 * *fwd;
  }
}

/* Splits the recorded marks of the timed steps into per-layer, loss, zeroing, SGD and GEMM time. */
static int collect(an_runtime *rt, bench_result *r, int steps) {
  double prev = 0, gemm_begin = 0, pending_gemm = 0, t;
  for (int i = 0; i < rt->n_marks; i++) {
    if (an_mark_end_ms(rt, i, &t) != AN_OK) return 1;
    const an_mark *m = &rt->marks[i];
    switch (m->kind) {
      case AN_MARK_BEGIN: break;
      case AN_MARK_FORWARD:
        r->layers[m->layer].fwd_ms += (t - prev) / steps;
        r->layers[m->layer].fwd_gemm_ms += pending_gemm / steps;
        break;
      case AN_MARK_LOSS: r->loss_ms += (t - prev) / steps; break;
      case AN_MARK_ZERO_GRADS: r->zero_ms += (t - prev) / steps; break;
      case AN_MARK_BACKWARD:
        r->layers[m->layer].bwd_ms += (t - prev) / steps;
        r->layers[m->layer].bwd_gemm_ms += pending_gemm / steps;
        break;
      case AN_MARK_SGD: r->sgd_ms += (t - prev) / steps; break;
      case AN_MARK_GEMM_BEGIN: gemm_begin = t; continue;
      case AN_MARK_GEMM_END:
        r->gemm_ms += (t - gemm_begin) / steps;
        pending_gemm += t - gemm_begin;
        continue;
    }
    prev = t;
    pending_gemm = 0;
  }
  return 0;
}

static int bench_model(an_runtime *rt, const char *model, int classes, int batch, int size, int train,
                       int warmup, int iterations, bench_result *r) {
  an_net *net = NULL;
  memset(r, 0, sizeof *r);
  snprintf(r->device, sizeof r->device, "%d:%d %s", rt->info.platform_index, rt->info.device_index, rt->info.name);
  snprintf(r->model, sizeof r->model, "%s", model);
  r->batch = batch, r->train = train, r->build_s = rt->build_seconds;
  snprintf(r->tuning, sizeof r->tuning, "%s", rt->gemm_tuned ? rt->gemm_tuning : "");
  if (an_net_create(rt, model, classes, batch, size, &net) != AN_OK || an_net_init(net, 1) != AN_OK) {
    an_net_destroy(net);
    return cli_fail(model);
  }
  r->device_bytes = an_net_device_bytes(net);
  r->n_layers = net->model->n_layers;
  const size_t pixels = (size_t)batch * 3 * size * size;
  float *images = malloc(pixels * sizeof *images), *logits = malloc((size_t)batch * classes * sizeof *logits);
  int *labels = malloc((size_t)batch * sizeof *labels);
  int rc = 1;
  if (!images || !labels || !logits) goto done;
  for (size_t i = 0; i < pixels; i++) images[i] = (float)((i * 2654435761u) % 1000) / 500.0f - 1.0f;
  for (int i = 0; i < batch; i++) labels[i] = i % classes;
  const an_sgd_params sgd = {0.001f, 0.9f, 5e-4f, 0};
  double wall = 0;
  for (int k = 0; k < warmup + iterations; k++) {
    rt->profiling = k >= warmup;
    const double t0 = an_seconds();
    float loss;
    an_status s;
    if (train) {
      s = an_net_train_step(net, images, labels, &sgd, 1, (uint64_t)k, &loss);
    } else {
      s = an_net_set_batch(net, images, labels);
      if (s == AN_OK) s = an_net_forward(net, 0, 1, (uint64_t)k);
      if (s == AN_OK) s = an_net_read_logits(net, logits);
    }
    if (s != AN_OK) {
      rc = cli_fail("benchmark step");
      goto done;
    }
    const double dt = an_seconds() - t0;
    if (k == 0) r->first_step_s = dt;
    if (k >= warmup) wall += dt;
  }
  rt->profiling = 0;
  if (collect(rt, r, iterations)) {
    rc = cli_fail("reading profiling events");
    goto done;
  }
  double flop = 0;
  for (int i = 0; i < r->n_layers; i++) {
    layer_flops(net, i, &r->layers[i].fwd_flop, &r->layers[i].bwd_flop);
    r->device_ms += r->layers[i].fwd_ms + r->layers[i].bwd_ms;
    flop += r->layers[i].fwd_flop + (train ? r->layers[i].bwd_flop : 0);
  }
  r->device_ms += r->loss_ms + r->zero_ms + r->sgd_ms;
  r->step_ms = wall / iterations * 1e3;
  r->host_ms = r->step_ms - r->device_ms;
  r->img_s = batch / (r->step_ms * 1e-3);
  r->gflops = flop / (r->step_ms * 1e-3) / 1e9;
  rc = 0;
done:
  an_marks_clear(rt);
  free(images), free(labels), free(logits);
  an_net_destroy(net);
  return rc;
}


static const char *kind_name(an_layer_kind k) {
  switch (k) {
    case AN_LAYER_CONV: return "conv";
    case AN_LAYER_LRN: return "lrn";
    case AN_LAYER_MAXPOOL: return "maxpool";
    case AN_LAYER_AVGPOOL: return "avgpool";
    case AN_LAYER_DROPOUT: return "dropout";
    case AN_LAYER_FC: return "fc";
    case AN_LAYER_GATHER: return "gather";
    case AN_LAYER_SUM: return "sum";
  }
  return "?";
}

static void print_result(const bench_result *r, const an_model_desc *m) {
  printf("\n%s on %s, batch %d, %s\n", r->model, r->device, r->batch, r->train ? "training" : "inference");
  printf("  %-3s %-8s %-13s %10s %10s %10s %10s %9s %9s\n", "#", "kind", "name", "fwd ms", "bwd ms", "fwd GF/s",
         "bwd GF/s", "fwd GEMM", "bwd GEMM");
  for (int i = 0; i < r->n_layers; i++) {
    const layer_time *L = &r->layers[i];
    const an_layer_desc *d = &m->layers[i];
    printf("  %-3d %-8s %-13s %10.2f %10.2f", i, kind_name(d->kind), d->name ? d->name : "", L->fwd_ms,
           r->train ? L->bwd_ms : 0.0);
    if (L->fwd_flop > 0)
      printf(" %10.1f %10.1f %8.0f%% %8.0f%%", L->fwd_flop / (L->fwd_ms * 1e-3) / 1e9,
             r->train && L->bwd_ms > 0 ? L->bwd_flop / (L->bwd_ms * 1e-3) / 1e9 : 0.0,
             100 * L->fwd_gemm_ms / L->fwd_ms, r->train && L->bwd_ms > 0 ? 100 * L->bwd_gemm_ms / L->bwd_ms : 0.0);
    printf("\n");
  }
  printf("  loss %.2f ms", r->loss_ms);
  if (r->train) printf(", zero gradients %.2f ms, SGD %.2f ms", r->zero_ms, r->sgd_ms);
  printf("\n  step %.1f ms = device %.1f ms (layers, sum of the rows) + host %.1f ms (upload, enqueue, read-back)\n",
         r->step_ms, r->device_ms, r->host_ms);
  printf("  GEMMs %.1f ms = %.0f%% of device time\n", r->gemm_ms, 100 * r->gemm_ms / r->device_ms);
  printf("  %.1f images/s, %.1f GFLOP/s overall, %.0f MiB of device memory\n", r->img_s, r->gflops,
         r->device_bytes / 1048576.0);
  printf("  cold start: program build %.2f s, first step %.2f s (CLBlast builds its kernels)\n", r->build_s,
         r->first_step_s);
  printf("  GEMM tuning: %s\n", r->tuning[0] ? r->tuning : "none (untuned CLBlast defaults; see alexnet tune)");
}

static void print_json(const bench_result *r, const an_model_desc *m, int first) {
  printf("%s{\"device\": \"%s\", \"model\": \"%s\", \"mode\": \"%s\", \"batch\": %d, \"images_per_s\": %.3f, "
         "\"step_ms\": %.3f, \"device_ms\": %.3f, \"host_ms\": %.3f, \"gemm_ms\": %.3f, \"gflops\": %.3f, "
         "\"device_bytes\": %zu, \"build_s\": %.3f, \"first_step_s\": %.3f, \"loss_ms\": %.3f, "
         "\"zero_grads_ms\": %.3f, \"sgd_ms\": %.3f, \"gemm_tuning\": \"%s\", \"layers\": [",
         first ? "" : ",\n", r->device, r->model, r->train ? "train" : "infer", r->batch, r->img_s, r->step_ms,
         r->device_ms, r->host_ms, r->gemm_ms, r->gflops, r->device_bytes, r->build_s, r->first_step_s, r->loss_ms,
         r->zero_ms, r->sgd_ms, r->tuning);
  for (int i = 0; i < r->n_layers; i++)
    printf("%s{\"index\": %d, \"kind\": \"%s\", \"name\": \"%s\", \"forward_ms\": %.4f, \"backward_ms\": %.4f, "
           "\"forward_gemm_ms\": %.4f, \"backward_gemm_ms\": %.4f, \"forward_flop\": %.0f, \"backward_flop\": %.0f}",
           i ? ", " : "", i, kind_name(m->layers[i].kind), m->layers[i].name ? m->layers[i].name : "",
           r->layers[i].fwd_ms, r->train ? r->layers[i].bwd_ms : 0.0, r->layers[i].fwd_gemm_ms,
           r->train ? r->layers[i].bwd_gemm_ms : 0.0, r->layers[i].fwd_flop,
           r->train ? r->layers[i].bwd_flop : 0.0);
  printf("]}");
}

static void help(void) {
  printf("usage: alexnet bench [options]\n\n"
         "Times training (or inference) steps on random data after warm-up steps. Each step is split\n"
         "into layers and GEMMs with OpenCL profiling markers; the layer rows add up to the device time.\n\n"
         "  --device D        all | P:D | name substring, or a comma-separated list (default: the usual choice)\n"
         "  --model M         alexnet | alexnet-half | alexnet-tv | all   (default all)\n"
         "  --batch B         images per step                         (default 64)\n"
         "  --mode M          train | infer                           (default train)\n"
         "  --split N         devices per model; only 1 exists today   (default 1)\n"
         "  --iterations N    timed steps                             (default 3)\n"
         "  --warmup N        untimed steps first                     (default 1)\n"
         "  --classes N       classes                                 (default 1000)\n"
         "  --input-size S    input side                              (default 224)\n"
         "  --json            one JSON array on stdout instead of tables\n");
}

int cmd_bench(int argc, char **argv) {
  static const struct option opts[] = {
      {"device", required_argument, NULL, 'd'},     {"model", required_argument, NULL, 'm'},
      {"batch", required_argument, NULL, 'b'},      {"mode", required_argument, NULL, 'o'},
      {"split", required_argument, NULL, 'p'},      {"iterations", required_argument, NULL, 'n'},
      {"warmup", required_argument, NULL, 'w'},     {"classes", required_argument, NULL, 'c'},
      {"input-size", required_argument, NULL, 's'}, {"json", no_argument, NULL, 'j'},
      {"help", no_argument, NULL, 'h'},             {NULL, 0, NULL, 0}};
  const char *device = NULL, *model = "all", *mode = "train";
  int batch = 64, split = 1, iterations = 3, warmup = 1, classes = 1000, size = 224, json = 0, c;
  while ((c = getopt_long(argc, argv, "d:m:b:o:p:n:w:c:s:jh", opts, NULL)) != -1) {
    switch (c) {
      case 'd': device = optarg; break;
      case 'm': model = optarg; break;
      case 'b': batch = atoi(optarg); break;
      case 'o': mode = optarg; break;
      case 'p': split = atoi(optarg); break;
      case 'n': iterations = atoi(optarg); break;
      case 'w': warmup = atoi(optarg); break;
      case 'c': classes = atoi(optarg); break;
      case 's': size = atoi(optarg); break;
      case 'j': json = 1; break;
      case 'h': help(); return 0;
      default: fprintf(stderr, "see: alexnet bench --help\n"); return 2;
    }
  }
  if (optind < argc || batch < 1 || iterations < 1 || warmup < 0 || classes < 1 || size < 1 ||
      (strcmp(mode, "train") && strcmp(mode, "infer"))) {
    fprintf(stderr, "alexnet bench: invalid arguments (see --help)\n");
    return 2;
  }
  if (split != 1) {
    fprintf(stderr, "alexnet bench: --split %d: the two-device split is not implemented yet\n", split);
    return 2;
  }
  if (strcmp(model, "all") && !an_model_find(model)) {
    fprintf(stderr, "alexnet bench: unknown model '%s' (alexnet, alexnet-half, alexnet-tv, all)\n", model);
    return 2;
  }
  /* the device list: every device, a comma-separated list, or the usual single choice */
  char specs[64][64];
  int n_specs = 0;
  if (device && !strcmp(device, "all")) {
    an_device_info *list;
    int n;
    if (an_list_devices(&list, &n) != AN_OK) return cli_fail("listing devices");
    for (int i = 0; i < n && n_specs < 64; i++)
      snprintf(specs[n_specs++], sizeof specs[0], "%d:%d", list[i].platform_index, list[i].device_index);
    free(list);
  } else if (device) {
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", device);
    for (char *tok = strtok(buf, ","); tok && n_specs < 64; tok = strtok(NULL, ","))
      snprintf(specs[n_specs++], sizeof specs[0], "%s", tok);
  } else {
    specs[n_specs++][0] = '\0';
  }
  bench_result *results = calloc((size_t)n_specs * 3, sizeof *results);
  const an_model_desc **models = calloc((size_t)n_specs * 3, sizeof *models);
  int n_results = 0, rc = 0;
  if (!results || !models) {
    fprintf(stderr, "alexnet: out of host memory\n");
    return 1;
  }
  if (json) printf("[");
  for (int s = 0; s < n_specs && rc == 0; s++) {
    an_runtime *rt;
    if (an_runtime_create(specs[s][0] ? specs[s] : NULL, &rt) != AN_OK) {
      rc = cli_fail("opening the OpenCL device");
      break;
    }
    for (int i = 0; an_model_at(i) && rc == 0; i++) {
      if (strcmp(model, "all") && strcmp(model, an_model_at(i)->name)) continue;
      if (!json) fprintf(stderr, "benchmarking %s on %s ...\n", an_model_at(i)->name, rt->info.name);
      rc = bench_model(rt, an_model_at(i)->name, classes, batch, size, !strcmp(mode, "train"), warmup, iterations,
                       &results[n_results]);
      if (rc) break;
      models[n_results] = an_model_at(i);
      if (json)
        print_json(&results[n_results], models[n_results], n_results == 0);
      else
        print_result(&results[n_results], models[n_results]);
      fflush(stdout);
      n_results++;
    }
    an_runtime_destroy(rt);
  }
  if (json) printf("]\n");
  if (!json && n_results > 1) {
    printf("\n%-40s %-14s %10s %10s %10s\n", "device", "model", "images/s", "step ms", "GFLOP/s");
    for (int i = 0; i < n_results; i++)
      printf("%-40.40s %-14s %10.1f %10.1f %10.1f\n", results[i].device, results[i].model, results[i].img_s,
             results[i].step_ms, results[i].gflops);
  }
  free(results);
  free(models);
  return rc;
}
