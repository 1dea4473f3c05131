/* alexnet bench: times training or inference steps of the models on one device or every device, or
 * split over two (--split 2), splitting each step into layers and GEMMs with OpenCL profiling markers,
 * and reports images/s, GFLOP/s per layer and overall, the GEMM share, host overhead, device memory,
 * cold and warm start; for a split, each device's rows, busy time and exchange time. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alexnet/infer.h"
#include "alexnet/split.h"
#include "alexnet/train.h"
#include "cli.h"

typedef struct layer_time {
  double fwd_ms, bwd_ms, fwd_flop, bwd_flop;
  double fwd_gemm_ms, bwd_gemm_ms; /* the part of fwd_ms / bwd_ms spent in CLBlast */
} layer_time;

/* One of the project's kernels at one range (--kernels): its launches and own device time per step. */
typedef struct kernel_time {
  const char *kernel; /* its name, as the runtime keeps it */
  cl_uint dims;
  size_t global[3];
  double launches, ms;
} kernel_time;
#define MAX_KERNEL_ROWS 128

/* One device's share of a step, from its profiling marks, averaged over the timed steps. */
typedef struct device_time {
  char device[320], tuning[512];
  int own_gemm;               /* its GEMMs run on the project's kernel (an_gemm_engine_choose), not CLBlast's */
  const an_model_desc *model; /* the layers it runs: the model, or alexnet's column in a split */
  layer_time layers[32];
  int n_layers, first, count;  /* samples [first, first + count) of the batch */
  double device_ms;            /* the sum of its rows: from the step's first mark to its last */
  double busy_ms, exchange_ms; /* split: device_ms = busy + exchanges and waits for the other device */
  double gemm_ms, loss_ms, zero_ms, grad_sum_ms, sgd_ms, flop, build_s;
  size_t device_bytes;
  kernel_time kernels[MAX_KERNEL_ROWS]; /* --kernels: slowest first */
  int n_kernels;
  double kernels_ms;       /* their sum per step */
  double kernels_other_ms; /* the part in ranges beyond MAX_KERNEL_ROWS (in kernels_ms, in no row) */
} device_time;

typedef struct bench_result {
  char device[656], model[32];
  int batch, train, n_devices; /* 1, or 2 for the split */
  int iterations;              /* timed steps */
  int columns, shared_context; /* split: alexnet's columns (else the batch); buffer copies (else host memory) */
  double img_s, step_ms, gflops, build_s, first_step_s;
  double step_min_ms, step_max_ms;    /* the fastest and slowest timed step (step_ms is their mean) */
  double device_ms, gemm_ms, host_ms; /* split: of the device whose rows take longer */
  double copy_ms;                     /* split, per step: the exchange copies' own device time */
  double n_copies;                    /* and their count */
  size_t device_bytes;
  device_time dev[2];
  /* --kernels, one device: the same steps with the kernel variant the runtime did not choose */
  an_kernel_variant variant;          /* the runtime's choice, which dev[0] ran */
  an_kernel_variant winograd_variant; /* the Winograd transforms' (rt->winograd_variant), in dev[0] */
  int winograd;                       /* the runtime's Winograd passes (ALEXNET_WINOGRAD) */
  int has_other;
  device_time other; /* its kernels and times */
  double other_step_ms;
  /* one CPU device: the step's GEMM calls on the host's BLAS (host_blas.c); host_blas[0] 0: not run */
  char host_blas[64];
  int host_threads, host_calls;
  double host_blas_ms, host_flop;
} bench_result;

/* Splits the recorded marks of the timed steps into per-layer, loss, zeroing, gradient sum, SGD and
 * GEMM time. */
static int collect(an_runtime *rt, device_time *r, int steps) {
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
      case AN_MARK_EXCHANGE: r->grad_sum_ms += (t - prev) / steps; break;
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

/* What the timed loop drives: one net on one device, the inference plan on one device (inference), or a
 * split over two. */
typedef struct target {
  an_net *net;
  an_infer *inf; /* one device's inference: the plan classify and the C API run (infer/infer.c) */
  an_split *split;
  an_runtime *rt[2];
  int n_devices;
  int kernels; /* --kernels: keep every kernel launch's event too */
} target;

static void set_profiling(target *t, int on) {
  for (int k = 0; k < t->n_devices; k++) t->rt[k]->profiling = on, t->rt[k]->kernel_profiling = on && t->kernels;
  if (t->split) t->split->profiling = on;
}

/* One step; a split's ends when both devices have finished it (the loss is read from one of them). */
static an_status run_step(target *t, const float *images, const int *labels, float *logits, int train, uint64_t k) {
  const an_sgd_params sgd = {0.001f, 0.9f, 5e-4f, 0};
  float loss;
  an_status s;
  if (t->split) {
    if (train) {
      s = an_split_train_step(t->split, images, labels, &sgd, 1, k, &loss);
    } else {
      s = an_split_set_batch(t->split, images, labels);
      if (s == AN_OK) s = an_split_forward(t->split, 0, 1, k);
      if (s == AN_OK) s = an_split_read_logits(t->split, logits);
    }
    for (int d = 0; d < 2 && s == AN_OK; d++) s = an_finish(t->rt[d]);
    return s;
  }
  if (t->inf) { /* the batch waits in the plan's input slot (time_steps put it there) */
    const float *out;
    return an_infer_run(t->inf, 0, &out);
  }
  if (train) return an_net_train_step(t->net, images, labels, &sgd, 1, k, &loss);
  s = an_net_set_batch(t->net, images, labels);
  if (s == AN_OK) s = an_net_forward(t->net, 0, 1, k);
  if (s == AN_OK) s = an_net_read_logits(t->net, logits);
  return s;
}

static int by_time(const void *a, const void *b) {
  const double x = ((const kernel_time *)a)->ms, y = ((const kernel_time *)b)->ms;
  return x < y ? 1 : x > y ? -1 : 0;
}

/* The kept kernel events of rt, summed per kernel and range, per step, slowest first. */
static int collect_kernels(an_runtime *rt, device_time *d, int steps) {
  d->n_kernels = 0, d->kernels_ms = 0, d->kernels_other_ms = 0;
  for (int i = 0; i < rt->n_kevents; i++) {
    const an_kernel_event *e = &rt->kevents[i];
    double ms;
    if (an_kernel_event_ms(e, &ms) != AN_OK) return 1;
    int j = 0;
    while (j < d->n_kernels && !(d->kernels[j].kernel == e->kernel && d->kernels[j].dims == e->dims &&
                                 !memcmp(d->kernels[j].global, e->global, sizeof e->global)))
      j++;
    d->kernels_ms += ms / steps;
    if (j == MAX_KERNEL_ROWS) { /* more ranges than rows: counted in the total only */
      d->kernels_other_ms += ms / steps;
      continue;
    }
    if (j == d->n_kernels) {
      memset(&d->kernels[j], 0, sizeof d->kernels[j]);
      d->kernels[j].kernel = e->kernel, d->kernels[j].dims = e->dims;
      memcpy(d->kernels[j].global, e->global, sizeof e->global);
      d->n_kernels++;
    }
    d->kernels[j].launches += 1.0 / steps;
    d->kernels[j].ms += ms / steps;
  }
  qsort(d->kernels, (size_t)d->n_kernels, sizeof d->kernels[0], by_time);
  return 0;
}

/* FLOPs of device k's layer i, forward and backward: its GEMMs, as the layer table lists them (the rest
 * move memory). */
static void layer_flops(const target *t, int k, int i, double *fwd, double *bwd) {
  if (t->inf) {
    *bwd = 0;
    *fwd = an_infer_layer_flops(t->inf, i);
    return;
  }
  an_net_layer_flops(t->split ? t->split->net[k] : t->net, i, fwd, bwd);
}

/* Warm-up steps, then the timed ones with profiling on; fills the step time, every device's rows and the
 * totals. */
static int time_steps(target *t, int classes, int size, int warmup, int iterations, bench_result *r) {
  const int batch = r->batch;
  const size_t pixels = (size_t)batch * 3 * size * size;
  float *images = malloc(pixels * sizeof *images), *logits = malloc((size_t)batch * classes * sizeof *logits);
  int *labels = malloc((size_t)batch * sizeof *labels);
  int rc = 1;
  if (!images || !labels || !logits) {
    fprintf(stderr, "alexnet: out of host memory\n");
    goto done;
  }
  for (size_t i = 0; i < pixels; i++) images[i] = (float)((i * 2654435761u) % 1000) / 500.0f - 1.0f;
  for (int i = 0; i < batch; i++) labels[i] = i % classes;
  if (t->inf) memcpy(an_infer_input(t->inf, 0), images, pixels * sizeof *images);
  double wall = 0;
  for (int k = 0; k < warmup + iterations; k++) {
    set_profiling(t, k >= warmup);
    const double t0 = an_seconds();
    if (run_step(t, images, labels, logits, r->train, (uint64_t)k) != AN_OK) {
      rc = cli_fail("benchmark step");
      goto done;
    }
    const double dt = an_seconds() - t0;
    if (k == 0) r->first_step_s = dt;
    if (k >= warmup) {
      wall += dt;
      if (k == warmup || dt * 1e3 < r->step_min_ms) r->step_min_ms = dt * 1e3;
      if (k == warmup || dt * 1e3 > r->step_max_ms) r->step_max_ms = dt * 1e3;
    }
  }
  set_profiling(t, 0);
  r->step_ms = wall / iterations * 1e3;
  r->iterations = iterations;
  double flop = 0;
  for (int k = 0; k < t->n_devices; k++) {
    device_time *d = &r->dev[k];
    if (d->n_layers > (int)(sizeof d->layers / sizeof d->layers[0])) {
      fprintf(stderr, "alexnet bench: %s has %d layers, the bench keeps %d\n", d->model->name, d->n_layers,
              (int)(sizeof d->layers / sizeof d->layers[0]));
      goto done;
    }
    if (collect(t->rt[k], d, iterations) || (t->kernels && collect_kernels(t->rt[k], d, iterations))) {
      rc = cli_fail("reading profiling events");
      goto done;
    }
    for (int i = 0; i < d->n_layers; i++) {
      layer_flops(t, k, i, &d->layers[i].fwd_flop, &d->layers[i].bwd_flop);
      d->device_ms += d->layers[i].fwd_ms + d->layers[i].bwd_ms;
      d->flop += d->layers[i].fwd_flop + (r->train ? d->layers[i].bwd_flop : 0);
    }
    d->device_ms += d->loss_ms + d->zero_ms + d->grad_sum_ms + d->sgd_ms;
    if (d->device_ms > r->device_ms) r->device_ms = d->device_ms, r->gemm_ms = d->gemm_ms;
    if (d->device_bytes > r->device_bytes) r->device_bytes = d->device_bytes;
    flop += d->flop;
  }
  if (t->split) {
    an_split_times times;
    if (an_split_times_read(t->split, &times) != AN_OK) {
      rc = cli_fail("reading the split's profiling events");
      goto done;
    }
    for (int k = 0; k < 2; k++) {
      r->dev[k].busy_ms = times.busy_ms[k] / iterations;
      r->dev[k].exchange_ms = times.exchange_ms[k] / iterations;
    }
    r->copy_ms = times.copy_ms / iterations;
    r->n_copies = (double)times.n_copies / iterations;
  }
  r->host_ms = r->step_ms - r->device_ms;
  r->img_s = batch / (r->step_ms * 1e-3);
  r->gflops = flop / (r->step_ms * 1e-3) / 1e9;
  rc = 0;
done:
  for (int k = 0; k < t->n_devices; k++) an_marks_clear(t->rt[k]), an_kernel_events_clear(t->rt[k]);
  if (t->split) an_split_clear_events(t->split);
  free(images), free(labels), free(logits);
  return rc;
}

static void describe_device(device_time *d, an_runtime *rt, const an_model_desc *m) {
  snprintf(d->device, sizeof d->device, "%d:%d %s", rt->info.platform_index, rt->info.device_index, rt->info.name);
  snprintf(d->tuning, sizeof d->tuning, "%s", rt->gemm_tuned ? rt->gemm_tuning : "");
  d->own_gemm = rt->own_gemm;
  d->build_s = rt->build_seconds;
  d->model = m;
  d->n_layers = m->n_layers;
}

/* --kernels: the same steps again with the other kernel variant (cpu <-> gpu) on the same device, so
 * that both can be compared; the runtime's choice is restored after. */
static int time_other_variant(target *t, int classes, int size, int warmup, int iterations, bench_result *r) {
  an_runtime *rt = t->rt[0];
  bench_result *o = calloc(1, sizeof *o);
  if (!o) {
    fprintf(stderr, "alexnet: out of host memory\n");
    return 1;
  }
  o->batch = r->batch, o->train = r->train, o->n_devices = 1;
  describe_device(&o->dev[0], rt, t->inf ? t->inf->model : t->net->model);
  o->dev[0].count = r->batch;
  rt->kernels_variant = r->variant == AN_KERNELS_GPU ? AN_KERNELS_CPU : AN_KERNELS_GPU;
  rt->winograd_variant = r->winograd_variant == AN_KERNELS_GPU ? AN_KERNELS_CPU : AN_KERNELS_GPU;
  const int rc = time_steps(t, classes, size, warmup, iterations, o);
  rt->kernels_variant = r->variant, rt->winograd_variant = r->winograd_variant;
  if (rc == 0) r->has_other = 1, r->other = o->dev[0], r->other_step_ms = o->step_ms;
  free(o);
  return rc;
}

/* The step's GEMM calls timed on the host's BLAS with the device's cores as threads (best of 3), when the
 * device is the host's CPU and a BLAS is installed: the yardstick for the device's GEMMs. */
static void measure_host_blas(const an_runtime *rt, const target *t, int train, bench_result *r) {
  enum { MAX_CALLS = 8192 };
  if (!(rt->info.type & CL_DEVICE_TYPE_CPU)) return;
  const int threads = (int)rt->info.compute_units;
  const char *name = host_blas_open(threads);
  const int passes = AN_PASS_FORWARD | (train ? AN_PASS_BACKWARD : 0);
  an_gemm_call *calls = name ? malloc(MAX_CALLS * sizeof *calls) : NULL;
  const int n = !calls   ? 0
                : t->inf ? an_infer_gemm_calls(t->inf, calls, MAX_CALLS)
                         : an_net_gemm_calls(t->net, passes, calls, MAX_CALLS);
  double seconds;
  if (n > 0 && n <= MAX_CALLS && host_blas_time(calls, n, 3, &seconds, &r->host_flop) == 0) {
    snprintf(r->host_blas, sizeof r->host_blas, "%s", name);
    r->host_threads = threads, r->host_calls = n, r->host_blas_ms = seconds * 1e3;
  }
  free(calls);
}

static int bench_model(an_runtime *rt, const char *model, int classes, int batch, int size, int train, int warmup,
                       int iterations, int kernels, int host_blas, bench_result *r) {
  target t = {NULL, NULL, NULL, {rt, NULL}, 1, kernels};
  memset(r, 0, sizeof *r);
  snprintf(r->model, sizeof r->model, "%s", model);
  r->batch = batch, r->train = train, r->n_devices = 1, r->build_s = rt->build_seconds;
  if (train ? an_net_create(rt, model, classes, batch, size, &t.net) != AN_OK || an_net_init(t.net, 1) != AN_OK
            : an_infer_create(rt, model, classes, batch, size, NULL, &t.inf) != AN_OK ||
                  an_infer_init(t.inf, 1) != AN_OK) {
    an_net_destroy(t.net);
    an_infer_destroy(t.inf);
    return cli_fail(model);
  }
  describe_device(&r->dev[0], rt, train ? t.net->model : t.inf->model);
  snprintf(r->device, sizeof r->device, "%s", r->dev[0].device);
  r->dev[0].count = batch;
  r->dev[0].device_bytes = train ? an_net_device_bytes(t.net) : an_infer_device_bytes(t.inf);
  r->variant = rt->kernels_variant, r->winograd_variant = rt->winograd_variant;
  r->winograd = rt->winograd;
  int rc = time_steps(&t, classes, size, warmup, iterations, r);
  if (rc == 0 && kernels) rc = time_other_variant(&t, classes, size, warmup, iterations, r);
  if (rc == 0 && host_blas) measure_host_blas(rt, &t, train, r);
  an_net_destroy(t.net);
  an_infer_destroy(t.inf);
  return rc;
}

/* The model split over rt0 and rt1 (an_runtime_create_pair): alexnet's columns, or the batch. */
static int bench_split(an_runtime *rt0, an_runtime *rt1, const char *model, int classes, int batch, int size,
                       int train, int warmup, int iterations, int kernels, bench_result *r) {
  target t = {NULL, NULL, NULL, {rt0, rt1}, 2, kernels};
  memset(r, 0, sizeof *r);
  snprintf(r->model, sizeof r->model, "%s", model);
  r->batch = batch, r->train = train, r->n_devices = 2, r->build_s = rt0->build_seconds + rt1->build_seconds;
  if (an_split_create(rt0, rt1, model, classes, batch, size, &t.split) != AN_OK) return cli_fail(model);
  if (an_split_init(t.split, 1) != AN_OK) {
    an_split_destroy(t.split);
    return cli_fail("initialising parameters");
  }
  r->columns = t.split->mode == AN_SPLIT_COLUMNS, r->shared_context = t.split->shared_context;
  for (int k = 0; k < 2; k++) {
    device_time *d = &r->dev[k];
    describe_device(d, t.rt[k], t.split->net[k]->model);
    d->first = t.split->first[k], d->count = t.split->count[k];
    d->device_bytes = an_split_device_bytes(t.split, k);
  }
  snprintf(r->device, sizeof r->device, "%s + %s", r->dev[0].device, r->dev[1].device);
  const int rc = time_steps(&t, classes, size, warmup, iterations, r);
  an_split_destroy(t.split);
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

/* the spread of the timed steps: on a shared or throttling machine the mean alone hides it */
static void print_spread(const bench_result *r) {
  printf("  %d timed steps: fastest %.1f ms, slowest %.1f ms\n", r->iterations, r->step_min_ms, r->step_max_ms);
}

/* --kernels: the project's kernels per range, slowest first (CLBlast's GEMMs are in the layer rows) */
static void print_kernels(const device_time *d, double device_ms) {
  if (!d->n_kernels) return;
  printf("  the project's kernels, per step (%.1f ms, %.0f%% of device time; the rest is CLBlast's):\n",
         d->kernels_ms, 100 * d->kernels_ms / device_ms);
  printf("    %-24s %-22s %9s %10s %7s\n", "kernel", "range", "launches", "ms", "share");
  for (int i = 0; i < d->n_kernels; i++) {
    const kernel_time *k = &d->kernels[i];
    char range[64];
    if (k->dims == 1) snprintf(range, sizeof range, "%zu", k->global[0]);
    else if (k->dims == 2) snprintf(range, sizeof range, "%zux%zu", k->global[0], k->global[1]);
    else snprintf(range, sizeof range, "%zux%zux%zu", k->global[0], k->global[1], k->global[2]);
    printf("    %-24s %-22s %9.1f %10.2f %6.1f%%\n", k->kernel, range, k->launches, k->ms, 100 * k->ms / device_ms);
  }
  if (d->kernels_other_ms > 0)
    printf("    %-24s %-22s %9s %10.2f %6.1f%%\n", "(more ranges)", "", "", d->kernels_other_ms,
           100 * d->kernels_other_ms / device_ms);
}

/* A kernel's time per step in d under exactly this name, summed over its ranges. */
static double named_ms(const device_time *d, const char *name) {
  double ms = 0;
  for (int i = 0; i < d->n_kernels; i++)
    if (!strcmp(d->kernels[i].kernel, name)) ms += d->kernels[i].ms;
  return ms;
}

/* A kernel's time per step in each variant, from the two runs: a kernel with a GPU shape (base_gpu)
 * ran as base in one run and as base_gpu in the other, whichever run that was (the Winograd
 * transforms' choice can differ from the other kernels'); one without ran in both, by run. */
static void variant_ms(const device_time *cpu_run, const device_time *gpu_run, const char *base, double *cpu,
                       double *gpu) {
  char gpu_name[80];
  snprintf(gpu_name, sizeof gpu_name, "%s_gpu", base);
  *gpu = named_ms(cpu_run, gpu_name) + named_ms(gpu_run, gpu_name);
  if (*gpu > 0) *cpu = named_ms(cpu_run, base) + named_ms(gpu_run, base);
  else *cpu = named_ms(cpu_run, base), *gpu = named_ms(gpu_run, base);
}

/* --kernels, one device: each kernel per step in both variants, the runtime's choice marked */
static void print_variants(const bench_result *r) {
  if (!r->has_other) return;
  const device_time *cpu = r->variant == AN_KERNELS_CPU ? &r->dev[0] : &r->other;
  const device_time *gpu = r->variant == AN_KERNELS_CPU ? &r->other : &r->dev[0];
  printf("  kernel variants on this device, ms per step (the runtime chose %s, for the Winograd transforms %s; "
         "ALEXNET_KERNELS=cpu|gpu forces one):\n",
         an_kernel_variant_name(r->variant), an_kernel_variant_name(r->winograd_variant));
  printf("    %-24s %10s %10s\n", "kernel", "cpu", "gpu");
  static char seen[2 * MAX_KERNEL_ROWS][64]; /* the base names printed */
  int n_seen = 0;
  for (int v = 0; v < 2; v++) {
    const device_time *d = v ? gpu : cpu;
    for (int i = 0; i < d->n_kernels; i++) {
      char base[64];
      snprintf(base, sizeof base, "%s", d->kernels[i].kernel);
      const size_t n = strlen(base);
      if (n > 4 && !strcmp(base + n - 4, "_gpu")) base[n - 4] = '\0';
      int j = 0;
      while (j < n_seen && strcmp(seen[j], base)) j++;
      if (j < n_seen) continue;
      snprintf(seen[n_seen++], sizeof seen[0], "%s", base);
      double cpu_ms, gpu_ms;
      variant_ms(cpu, gpu, base, &cpu_ms, &gpu_ms);
      printf("    %-24s %10.2f %10.2f\n", base, cpu_ms, gpu_ms);
    }
  }
  printf("    %-24s %10.2f %10.2f\n", "all the project's kernels", cpu->kernels_ms, gpu->kernels_ms);
  printf("    %-24s %10.1f %10.1f\n", "step", r->variant == AN_KERNELS_CPU ? r->step_ms : r->other_step_ms,
         r->variant == AN_KERNELS_CPU ? r->other_step_ms : r->step_ms);
  if (r->winograd_variant != r->variant) /* the last two rows are whole runs, named by the other kernels */
    printf("    (those two rows are whole runs: each ran the Winograd transforms in the other column's variant)\n");
}

/* The device's GEMMs and the whole step against the host's BLAS on the same GEMM calls and cores. */
static void print_host_blas(const bench_result *r) {
  if (!r->host_blas[0]) return;
  const double blas = r->host_flop / (r->host_blas_ms * 1e-3) / 1e9;
  const double ours = r->gemm_ms > 0 ? r->host_flop / (r->gemm_ms * 1e-3) / 1e9 : 0;
  printf("  host BLAS (%s, %d threads) on the step's %d GEMM calls: %.1f ms, %.1f GFLOP/s; the device's GEMMs "
         "%.1f GFLOP/s (%.2fx), the whole step %.1f GFLOP/s (%.0f%% of the host BLAS's)\n",
         r->host_blas, r->host_threads, r->host_calls, r->host_blas_ms, blas, ours, blas > 0 ? ours / blas : 0,
         r->gflops, blas > 0 ? 100 * r->gflops / blas : 0);
}

static void print_result(const bench_result *r) {
  const device_time *d = &r->dev[0];
  printf("\n%s on %s, batch %d, %s\n", r->model, r->device, r->batch, r->train ? "training" : "inference");
  printf("  %-3s %-8s %-13s %10s %10s %10s %10s %9s %9s\n", "#", "kind", "name", "fwd ms", "bwd ms", "fwd GF/s",
         "bwd GF/s", "fwd GEMM", "bwd GEMM");
  for (int i = 0; i < d->n_layers; i++) {
    const layer_time *L = &d->layers[i];
    const an_layer_desc *ld = &d->model->layers[i];
    printf("  %-3d %-8s %-13s %10.2f %10.2f", i, kind_name(ld->kind), ld->name ? ld->name : "", L->fwd_ms,
           r->train ? L->bwd_ms : 0.0);
    if (L->fwd_flop > 0)
      printf(" %10.1f %10.1f %8.0f%% %8.0f%%", L->fwd_flop / (L->fwd_ms * 1e-3) / 1e9,
             r->train && L->bwd_ms > 0 ? L->bwd_flop / (L->bwd_ms * 1e-3) / 1e9 : 0.0,
             100 * L->fwd_gemm_ms / L->fwd_ms, r->train && L->bwd_ms > 0 ? 100 * L->bwd_gemm_ms / L->bwd_ms : 0.0);
    printf("\n");
  }
  printf("  loss %.2f ms", d->loss_ms);
  if (r->train) printf(", zero gradients %.2f ms, SGD %.2f ms", d->zero_ms, d->sgd_ms);
  printf("\n  step %.1f ms = device %.1f ms (layers, sum of the rows) + host %.1f ms (upload, enqueue, read-back)\n",
         r->step_ms, r->device_ms, r->host_ms);
  printf("  GEMMs %.1f ms = %.0f%% of device time\n", r->gemm_ms, 100 * r->gemm_ms / r->device_ms);
  print_spread(r);
  printf("  %.1f images/s, %.1f GFLOP/s overall, %.0f MiB of device memory\n", r->img_s, r->gflops,
         r->device_bytes / 1048576.0);
  printf("  cold start: program build %.2f s, first step %.2f s (CLBlast builds its kernels)\n", r->build_s,
         r->first_step_s);
  if (d->own_gemm)
    printf(
        "  GEMMs: the project's kernel (cl/gemm.cl; ALEXNET_GEMM=clblast runs CLBlast's, with the tuning below)\n");
  printf("  GEMM tuning: %s\n", d->tuning[0] ? d->tuning : "none (untuned CLBlast defaults; see alexnet tune)");
  if (r->n_devices == 1)
    printf("  3x3 and 5x5 stride-1 convolutions: %s (ALEXNET_WINOGRAD=0|forward|1|auto)\n",
           r->winograd == (AN_WINOGRAD_FORWARD | AN_WINOGRAD_INPUT_GRAD | AN_WINOGRAD_WEIGHT_GRAD)
               ? "Winograd forward, input and weight gradients"
           : r->winograd == AN_WINOGRAD_FORWARD ? "Winograd forward, im2col backward"
           : r->winograd == AN_WINOGRAD_DEFAULT ? "Winograd forward; input and weight gradients where an image "
                                                  "has 7x7 tiles or more"
                                                : "im2col");
  print_host_blas(r);
  print_kernels(d, r->device_ms);
  print_variants(r);
}

/* The split: both devices' rows side by side (both run the same layer table), then each device's busy
 * and exchange time. */
static void print_split_result(const bench_result *r) {
  const device_time *d = r->dev;
  printf("\n%s split over two devices by %s (%s), batch %d, %s\n", r->model, r->columns ? "columns" : "batch",
         r->shared_context ? "one context: buffer copies" : "separate contexts: host memory", r->batch,
         r->train ? "training" : "inference");
  for (int k = 0; k < 2; k++)
    printf("  device %d: %s, samples [%d, %d)\n", k, d[k].device, d[k].first, d[k].first + d[k].count);
  printf("  %-3s %-8s %-13s %10s %10s %10s %10s\n", "#", "kind", "name", "fwd ms 0", "bwd ms 0", "fwd ms 1",
         "bwd ms 1");
  for (int i = 0; i < d[0].n_layers; i++) {
    const an_layer_desc *ld = &d[0].model->layers[i];
    printf("  %-3d %-8s %-13s", i, kind_name(ld->kind), ld->name ? ld->name : "");
    for (int k = 0; k < 2; k++)
      printf(" %10.2f %10.2f", d[k].layers[i].fwd_ms, r->train ? d[k].layers[i].bwd_ms : 0.0);
    printf("\n");
  }
  printf("  loss %.2f / %.2f ms", d[0].loss_ms, d[1].loss_ms);
  if (r->train) {
    printf(", zero gradients %.2f / %.2f ms", d[0].zero_ms, d[1].zero_ms);
    if (!r->columns) printf(", gradient sum %.2f / %.2f ms", d[0].grad_sum_ms, d[1].grad_sum_ms);
    printf(", SGD %.2f / %.2f ms", d[0].sgd_ms, d[1].sgd_ms);
  }
  printf("\n");
  for (int k = 0; k < 2; k++)
    printf("  device %d: %.1f ms (sum of its rows) = busy %.1f ms + exchanges and waits %.1f ms; GEMMs %.0f%% of "
           "busy; %.1f GFLOP/s; %.0f MiB\n",
           k, d[k].device_ms, d[k].busy_ms, d[k].exchange_ms,
           d[k].busy_ms > 0 ? 100 * d[k].gemm_ms / d[k].busy_ms : 0.0, d[k].flop / (r->step_ms * 1e-3) / 1e9,
           d[k].device_bytes / 1048576.0);
  printf("  exchange copies: %.0f per step, %.2f ms of device time (%s)\n", r->n_copies, r->copy_ms,
         r->columns ? "activations and their gradients" : "the gradient sum");
  printf("  step %.1f ms = the longer device %.1f ms + host %.1f ms (upload, enqueue, read-back)\n", r->step_ms,
         r->device_ms, r->host_ms);
  print_spread(r);
  printf("  %.1f images/s, %.1f GFLOP/s overall\n", r->img_s, r->gflops);
  printf("  cold start: program builds %.2f s + %.2f s, first step %.2f s (CLBlast builds its kernels)\n",
         d[0].build_s, d[1].build_s, r->first_step_s);
  for (int k = 0; k < 2; k++)
    printf("  GEMM tuning, device %d: %s\n", k,
           d[k].tuning[0] ? d[k].tuning : "none (untuned CLBlast defaults; see alexnet tune)");
  for (int k = 0; k < 2; k++)
    if (d[k].n_kernels) {
      printf("  device %d:\n", k);
      print_kernels(&d[k], d[k].device_ms);
    }
}

static void print_json_layers(const device_time *d, int train) {
  printf("\"layers\": [");
  for (int i = 0; i < d->n_layers; i++) {
    const an_layer_desc *ld = &d->model->layers[i];
    printf("%s{\"index\": %d, \"kind\": \"%s\", \"name\": \"%s\", \"forward_ms\": %.4f, \"backward_ms\": %.4f, "
           "\"forward_gemm_ms\": %.4f, \"backward_gemm_ms\": %.4f, \"forward_flop\": %.0f, \"backward_flop\": %.0f}",
           i ? ", " : "", i, kind_name(ld->kind), ld->name ? ld->name : "", d->layers[i].fwd_ms,
           train ? d->layers[i].bwd_ms : 0.0, d->layers[i].fwd_gemm_ms, train ? d->layers[i].bwd_gemm_ms : 0.0,
           d->layers[i].fwd_flop, train ? d->layers[i].bwd_flop : 0.0);
  }
  printf("]");
  if (!d->n_kernels) return;
  printf(", \"kernels_ms\": %.4f, \"kernels_other_ms\": %.4f, \"kernels\": [", d->kernels_ms, d->kernels_other_ms);
  for (int i = 0; i < d->n_kernels; i++) {
    const kernel_time *k = &d->kernels[i];
    printf("%s{\"kernel\": \"%s\", \"global\": [", i ? ", " : "", k->kernel);
    for (cl_uint j = 0; j < k->dims; j++) printf("%s%zu", j ? ", " : "", k->global[j]);
    printf("], \"launches\": %.2f, \"ms\": %.4f}", k->launches, k->ms);
  }
  printf("]");
}

/* One result. A single device keeps its rows at the top level; a split has them per device under
 * "devices", and the top level's device_ms and gemm_ms are the longer device's, device_bytes the larger. */
static void print_json(const bench_result *r, int first) {
  const device_time *d = r->dev;
  char esc[2][1024];
  printf("%s{\"device\": \"%s\", \"model\": \"%s\", \"mode\": \"%s\", \"batch\": %d, \"split\": %d, "
         "\"images_per_s\": %.3f, \"step_ms\": %.3f, \"step_min_ms\": %.3f, \"step_max_ms\": %.3f, "
         "\"iterations\": %d, \"device_ms\": %.3f, \"host_ms\": %.3f, \"gemm_ms\": %.3f, "
         "\"gflops\": %.3f, \"device_bytes\": %zu, \"build_s\": %.3f, \"first_step_s\": %.3f, ",
         first ? "" : ",\n", cli_json(r->device, esc[0], sizeof esc[0]), r->model, r->train ? "train" : "infer",
         r->batch, r->n_devices, r->img_s, r->step_ms, r->step_min_ms, r->step_max_ms, r->iterations, r->device_ms,
         r->host_ms, r->gemm_ms, r->gflops, r->device_bytes, r->build_s, r->first_step_s);
  if (r->n_devices == 1) {
    printf("\"loss_ms\": %.3f, \"zero_grads_ms\": %.3f, \"sgd_ms\": %.3f, \"gemm_tuning\": \"%s\", "
           "\"gemm_engine\": \"%s\", ",
           d->loss_ms, d->zero_ms, d->sgd_ms, cli_json(d->tuning, esc[1], sizeof esc[1]),
           d->own_gemm ? "project" : "clblast");
    if (r->host_blas[0])
      printf("\"host_blas\": \"%s\", \"host_blas_threads\": %d, \"host_blas_ms\": %.3f, \"host_blas_gflops\": "
             "%.3f, ",
             r->host_blas, r->host_threads, r->host_blas_ms, r->host_flop / (r->host_blas_ms * 1e-3) / 1e9);
    print_json_layers(d, r->train);
    printf("}");
    return;
  }
  printf("\"split_mode\": \"%s\", \"exchange_path\": \"%s\", \"exchange_copy_ms\": %.4f, \"exchange_copies\": %.0f, "
         "\"devices\": [",
         r->columns ? "columns" : "batch", r->shared_context ? "buffer copies" : "host memory", r->copy_ms,
         r->n_copies);
  for (int k = 0; k < 2; k++) {
    printf("%s{\"device\": \"%s\", \"first_sample\": %d, \"samples\": %d, \"device_ms\": %.3f, \"busy_ms\": %.3f, "
           "\"exchange_ms\": %.3f, \"gemm_ms\": %.3f, \"gflops\": %.3f, \"loss_ms\": %.3f, \"zero_grads_ms\": %.3f, "
           "\"grad_sum_ms\": %.3f, \"sgd_ms\": %.3f, \"device_bytes\": %zu, \"build_s\": %.3f, \"gemm_tuning\": "
           "\"%s\", \"gemm_engine\": \"%s\", ",
           k ? ", " : "", cli_json(d[k].device, esc[0], sizeof esc[0]), d[k].first, d[k].count, d[k].device_ms,
           d[k].busy_ms, d[k].exchange_ms, d[k].gemm_ms, d[k].flop / (r->step_ms * 1e-3) / 1e9, d[k].loss_ms,
           d[k].zero_ms, d[k].grad_sum_ms, d[k].sgd_ms, d[k].device_bytes, d[k].build_s,
           cli_json(d[k].tuning, esc[1], sizeof esc[1]), d[k].own_gemm ? "project" : "clblast");
    print_json_layers(&d[k], r->train);
    printf("}");
  }
  printf("]}");
}

static void help(void) {
  printf("usage: alexnet bench [options]\n\n"
         "Times training (or inference) steps on random data after warm-up steps. Each step is split\n"
         "into layers and GEMMs with OpenCL profiling markers; the layer rows add up to the device time.\n"
         "Times are means over the timed steps; the fastest and slowest step are printed too (on a shared\n"
         "machine compare runs by the fastest, or as ratios measured in one run).\n"
         "With --split 2 the model runs split over two devices as `alexnet step --device A,B` runs it\n"
         "(alexnet's columns, the batch for the others): each device's rows side by side, its busy time\n"
         "and its time in exchanges (copies and waiting for the other device), and the copies' own time.\n\n"
         "  --device D        all | P:D | name substring, or a comma-separated list (default: the usual choice)\n"
         "  --model M         alexnet | alexnet-half | alexnet-tv | all   (default all)\n"
         "  --batch B         images per step                         (default 64)\n"
         "  --mode M          train | infer                           (default train). infer on one device\n"
         "                    times the inference plan that classify and the C API run (no gradients, no\n"
         "                    argmax, the batch in its input slot; weights: the training net's initialisation)\n"
         "  --split N         devices per model: 1, or 2 for the split (default 1). With 2, --device A,B\n"
         "                    names the pair; --device all benches every device alone and then the first\n"
         "                    two as a pair; without --device, ALEXNET_DEVICE if it names two, else the\n"
         "                    first two devices\n"
         "  --separate-contexts  split: one context per device even on one platform (host-memory exchange)\n"
         "  --iterations N    timed steps                             (default 3)\n"
         "  --warmup N        untimed steps first                     (default 1)\n"
         "  --classes N       classes                                 (default 1000)\n"
         "  --input-size S    input side                              (default 224)\n"
         "  --kernels         also time every launch of the project's own kernels (im2col, pooling, LRN, ...;\n"
         "                    not CLBlast's): a table per kernel and range, per step, slowest first (JSON:\n"
         "                    \"kernels\" beside \"layers\"); on one device the steps run again with the\n"
         "                    other kernel variant (cpu or gpu shapes) and a table gives both per kernel\n"
         "  --no-host-blas    on a CPU device the step's GEMM calls are also timed with the host's BLAS\n"
         "                    (libopenblas.so.0 or libblas.so.3, when installed) on as many threads as the\n"
         "                    device has cores, and the device's GEMMs and the whole step are printed\n"
         "                    against it (JSON: host_blas_*): this skips that\n"
         "  --json            one JSON array on stdout instead of tables; a split's element has \"split\": 2\n"
         "                    and its rows, busy and exchange times under \"devices\"\n"
         "  --bucket-mb X     under mpirun: MB of gradients per allreduce bucket (default 25)\n\n"
         "Under mpirun (mpirun -np N alexnet bench --mode train ...) every rank runs --batch images per step\n"
         "on its device (as alexnet train picks it: --device with one entry per local rank, ';'-separated)\n"
         "and rank 0 prints, per step: the compute time (the step without the gradient exchange), the step\n"
         "with it, the allreduce time (the exchange alone, timed after the steps), its exposed part in the\n"
         "step (from backward's end to the last bucket summed), the share of it hidden behind backward, and\n"
         "the scaling efficiency (compute / step: N ranks' throughput against each rank running alone).\n");
}

/* A spec naming every device in turn, or the first two as a pair. */
static int list_specs(char specs[][64], int max, int *n, char pair[64]) {
  an_device_info *list;
  int count;
  if (an_list_devices(&list, &count) != AN_OK) return cli_fail("listing devices");
  *n = 0;
  for (int i = 0; i < count && *n < max; i++)
    snprintf(specs[(*n)++], 64, "%d:%d", list[i].platform_index, list[i].device_index);
  pair[0] = '\0';
  if (count >= 2)
    snprintf(pair, 64, "%d:%d,%d:%d", list[0].platform_index, list[0].device_index, list[1].platform_index,
             list[1].device_index);
  free(list);
  return 0;
}

/* The command line, with its defaults. */
typedef struct bench_args {
  const char *device, *model;
  int batch, train, split, iterations, warmup, classes, size, json, separate, kernels, no_host_blas;
  double bucket_mb;
} bench_args;

static int parse_args(int argc, char **argv, bench_args *a) {
  static const char *const modes[] = {"train", "infer", NULL};
  static const int mode_train[] = {1, 0};
  *a = (bench_args){.model = "all",
                    .batch = 64,
                    .train = 1,
                    .split = 1,
                    .iterations = 3,
                    .warmup = 1,
                    .classes = 1000,
                    .size = 224,
                    .bucket_mb = 25};
  const cli_option options[] = {
      CLI_OPT_STRING("device", 'd', &a->device),
      CLI_OPT_STRING("model", 'm', &a->model),
      CLI_OPT_INT("batch", 'b', &a->batch, 1, 65536),
      CLI_OPT_CHOICE("mode", 'o', &a->train, modes, mode_train),
      CLI_OPT_INT("split", 'p', &a->split, 1, 2),
      CLI_OPT_INT("iterations", 'n', &a->iterations, 1, INT_MAX),
      CLI_OPT_INT("warmup", 'w', &a->warmup, 0, INT_MAX),
      CLI_OPT_INT("classes", 'c', &a->classes, 1, 1 << 20),
      CLI_OPT_INT("input-size", 's', &a->size, 1, 4096),
      CLI_OPT_FLAG("json", 'j', &a->json),
      CLI_OPT_FLAG("separate-contexts", 'x', &a->separate),
      CLI_OPT_FLAG("kernels", 'k', &a->kernels),
      CLI_OPT_FLAG("no-host-blas", 0, &a->no_host_blas),
      CLI_OPT_DOUBLE("bucket-mb", 0, &a->bucket_mb, 0, 65536, 1, 0),
  };
  const cli_command cmd = {"bench", options, sizeof options / sizeof options[0], help, 0};
  int n_positionals;
  const int status = cli_parse(&cmd, argc, argv, &n_positionals);
  if (status != CLI_CONTINUE) return status;
  return cli_check_model("bench", a->model, 1);
}

/* The devices benched alone (every device, a comma-separated list, or the usual single choice) into
 * specs, and the pair for --split 2 into pair (empty: none). Returns CLI_CONTINUE or the exit status. */
static int choose_devices(const bench_args *a, char specs[64][64], int *n_specs, char pair[64]) {
  const char *device = a->device;
  const int split = a->split;
  *n_specs = 0;
  pair[0] = '\0';
  if (split == 2 && device && strcmp(device, "all")) {
    const char *comma = strchr(device, ',');
    if (!comma || strchr(comma + 1, ','))
      return cli_usage_error("bench", "--split 2 takes two devices (--device A,B) or all, not '%s'", device);
    snprintf(pair, 64, "%s", device);
  } else if (split == 2 && !device && getenv("ALEXNET_DEVICE") && strchr(getenv("ALEXNET_DEVICE"), ',')) {
    snprintf(pair, 64, "%s", getenv("ALEXNET_DEVICE"));
  } else if (split == 2 || !strcmp(device ? device : "", "all")) {
    if (list_specs(specs, 64, n_specs, pair)) return 1;
    if (!device) *n_specs = 0; /* --split 2 alone: only the pair */
    if (split == 2 && !pair[0]) {
      if (!device) {
        fprintf(stderr, "alexnet bench: --split 2 needs two devices and there is one (see alexnet devices)\n");
        return 1;
      }
      fprintf(stderr, "alexnet bench: one device: no pair to split over, each device alone only\n");
    }
    if (split == 1) pair[0] = '\0';
  } else if (device) {
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", device);
    for (char *tok = strtok(buf, ","); tok && *n_specs < 64; tok = strtok(NULL, ","))
      snprintf(specs[(*n_specs)++], 64, "%s", tok);
  } else {
    specs[(*n_specs)++][0] = '\0';
  }
  return CLI_CONTINUE;
}

/* Every model on the devices of one run (specs[s] alone, or the pair when s == n_specs), printing each
 * result as it comes; appends them to results. Returns 0 or the exit status. */
static int bench_run(const bench_args *a, const char *spec, const char *pair, bench_result *results,
                     int *n_results) {
  an_runtime *rt[2] = {NULL, NULL};
  const int is_pair = pair != NULL;
  int rc = 0;
  if (is_pair ? an_runtime_create_pair(pair, a->separate, &rt[0], &rt[1]) != AN_OK
              : an_runtime_create(spec[0] ? spec : NULL, &rt[0]) != AN_OK)
    return cli_fail(is_pair ? "opening the two OpenCL devices" : "opening the OpenCL device");
  const int all = !strcmp(a->model, "all"); /* else one model, or a test width (models.c) */
  for (int i = 0; (all ? an_model_at(i) != NULL : i == 0) && rc == 0; i++) {
    const char *name = all ? an_model_at(i)->name : a->model;
    bench_result *r = &results[*n_results];
    if (!a->json)
      fprintf(stderr, "benchmarking %s on %s%s%s ...\n", name, rt[0]->info.name, is_pair ? " + " : "",
              is_pair ? rt[1]->info.name : "");
    rc = is_pair ? bench_split(rt[0], rt[1], name, a->classes, a->batch, a->size, a->train, a->warmup, a->iterations,
                               a->kernels, r)
                 : bench_model(rt[0], name, a->classes, a->batch, a->size, a->train, a->warmup, a->iterations,
                               a->kernels, !a->no_host_blas, r);
    if (rc) break;
    if (a->json) print_json(r, *n_results == 0);
    else if (is_pair) print_split_result(r);
    else print_result(r);
    fflush(stdout);
    (*n_results)++;
  }
  an_runtime_destroy(rt[1]);
  an_runtime_destroy(rt[0]);
  return rc;
}

/* One line per result, when there are several. */
static void print_summary(const bench_result *results, int n_results) {
  printf("\n%-40s %-14s %-8s %10s %10s %10s\n", "device", "model", "split", "images/s", "step ms", "GFLOP/s");
  for (int i = 0; i < n_results; i++) {
    const bench_result *r = &results[i];
    char label[128];
    if (r->n_devices == 2) /* "P:D + P:D": the names are in the tables above */
      snprintf(label, sizeof label, "%.*s + %.*s", (int)strcspn(r->dev[0].device, " "), r->dev[0].device,
               (int)strcspn(r->dev[1].device, " "), r->dev[1].device);
    printf("%-40.40s %-14s %-8s %10.1f %10.1f %10.1f\n", r->n_devices == 2 ? label : r->device, r->model,
           r->n_devices == 1 ? "-"
           : r->columns      ? "columns"
                             : "batch",
           r->img_s, r->step_ms, r->gflops);
  }
}

/* Under mpirun: the data-parallel training step of each model, timed with and without the exchange. */
static int bench_ranks(const bench_args *a) {
  const an_world w = an_world_get();
  if (!a->train || a->split != 1) {
    if (w.rank == 0) cli_usage_error("bench", "under mpirun only --mode train on one device or pair per rank runs");
    return 2;
  }
  an_runtime *rt[2] = {NULL, NULL};
  int rc = cli_open_rank_devices(a->device, a->separate, &rt[0], &rt[1]);
  const an_mpi_options opt = {a->bucket_mb, 0};
  int printed = 0;
  for (int i = 0; rc == 0 && an_model_at(i); i++) {
    const char *name = an_model_at(i)->name;
    if (strcmp(a->model, "all") && strcmp(a->model, name)) continue;
    an_mpi_bench b;
    if (an_mpi_bench_train(rt[0], rt[1], name, a->classes, a->batch, a->size, &opt, a->warmup, a->iterations, &b) !=
        AN_OK) {
      rc = cli_fail(name);
      break;
    }
    if (w.rank != 0) continue;
    if (a->json) {
      printf("%s{\"model\": \"%s\", \"mode\": \"train\", \"ranks\": %d, \"batch_per_rank\": %d, "
             "\"devices_per_rank\": %d, \"grad_bytes\": %.0f, \"buckets\": %d, \"compute_ms\": %.3f, "
             "\"step_ms\": %.3f, \"allreduce_ms\": %.3f, \"exposed_ms\": %.3f, \"overlap\": %.4f, "
             "\"efficiency\": %.4f, \"busbw_gbs\": %.4f}",
             printed++ ? ",\n" : "[", name, b.ranks, a->batch, rt[1] ? 2 : 1, b.grad_bytes, b.buckets, b.compute_ms,
             b.step_ms, b.allreduce_ms, b.exposed_ms, b.overlap, b.efficiency, b.busbw_gbs);
    } else {
      printf("\n%s, %d ranks x batch %d, input %d, training, %d buckets (--bucket-mb %g, layers whole; %.1f MB "
             "per rank)\n"
             "  compute %.1f ms/step (no exchange)   step %.1f ms   allreduce %.1f ms (%.2f GB/s ring-equivalent)\n"
             "  exposed %.1f ms   overlapped with backward %.0f%%   scaling efficiency %.0f%% (%.1f images/s in "
             "all)\n",
             name, b.ranks, a->batch, a->size, b.buckets, a->bucket_mb, b.grad_bytes / 1e6, b.compute_ms, b.step_ms,
             b.allreduce_ms, b.busbw_gbs, b.exposed_ms, 100 * b.overlap, 100 * b.efficiency,
             b.ranks * a->batch / (b.step_ms * 1e-3));
    }
    fflush(stdout);
  }
  if (a->json && printed) printf("]\n");
  an_runtime_destroy(rt[1]);
  an_runtime_destroy(rt[0]);
  return rc;
}

int cmd_bench(int argc, char **argv) {
  bench_args a;
  char specs[64][64], pair[64];
  int n_specs, rc = parse_args(argc, argv, &a);
  if (rc != CLI_CONTINUE) return rc;
  if (an_world_get().size > 1) return bench_ranks(&a);
  if ((rc = choose_devices(&a, specs, &n_specs, pair)) != CLI_CONTINUE) return rc;
  const int n_runs = n_specs + (pair[0] ? 1 : 0);
  bench_result *results = calloc((size_t)n_runs * 3, sizeof *results);
  int n_results = 0;
  rc = 0;
  if (!results) {
    fprintf(stderr, "alexnet: out of host memory\n");
    return 1;
  }
  if (a.json) printf("[");
  for (int s = 0; s < n_runs && rc == 0; s++)
    rc = bench_run(&a, s < n_specs ? specs[s] : NULL, s == n_specs ? pair : NULL, results, &n_results);
  if (a.json) printf("]\n");
  if (!a.json && n_results > 1) print_summary(results, n_results);
  free(results);
  return rc;
}
