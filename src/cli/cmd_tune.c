/* alexnet tune: searches CLBlast's GEMM parameters on the GEMM shapes of a model's training step on
 * the chosen device, and stores the best in the tuning cache that every later run applies. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alexnet/model.h"
#include "alexnet/tune.h"
#include "cli.h"

static void progress(void *user, int i, int n, const an_gemm_config *c, double gflops, double best,
                     const char *note) {
  (void)user;
  char text[512] = "";
  if (c) an_gemm_config_format(c, text, sizeof text);
  if (i == 0) printf("  %s: %.1f GFLOP/s on the step's GEMMs\n", note, gflops);
  else if (i > 0)
    printf("  [%2d/%d] %6.1f GFLOP/s on all shapes; each shape's best so far: %.1f  %s  %s\n", i, n, gflops, best,
           text, note);
  else printf("  %s: %.1f GFLOP/s on all shapes; each shape's best so far: %.1f\n", note, gflops, best);
  fflush(stdout);
}

static void help(void) {
  printf("usage: alexnet tune [options]\n\n"
         "Tunes CLBlast's GEMM for the device on the GEMM shapes of a model's training step: CLBlast's\n"
         "direct kernel and each candidate configuration of its indirect kernel are timed on every shape,\n"
         "and any candidate whose results differ from the untuned GEMM's is rejected. Each shape keeps its\n"
         "fastest; the configuration fastest on all shapes together is the fallback for other shapes\n"
         "(other batch sizes). Stored in the tuning file (ALEXNET_TUNING_FILE, else\n"
         "~/.cache/alexnet/gemm-tuning.txt), keyed by device and driver, and applied by every later run on\n"
         "that device, switching per shape (ALEXNET_NO_TUNING=1 runs untuned); a device without an entry\n"
         "there runs the shipped database's entry for its family (tuning/database.txt). The convolutions'\n"
         "weight gradients are summed in slices of output pixels: each slice width is timed too, and every\n"
         "layer gets the fastest. Each candidate costs a\n"
         "kernel build (seconds to tens of seconds on a CPU device) and two runs of the step's GEMMs.\n\n"
         "  --model M         alexnet | alexnet-half | alexnet-tv          (default alexnet)\n"
         "  --batch B         batch whose shapes are tuned                 (default 16)\n"
         "  --input-size S    input side whose shapes are tuned            (default 224)\n"
         "  --classes N       classes of the last layer                    (default 1000)\n"
         "  --quick           under a minute on a CPU: the shipped database's configurations for this\n"
         "                    device first, 6 candidates (unless --candidates), one timed run each, the\n"
         "                    slice widths the database gives; stored like a full tuning\n"
         "  --candidates N    configurations to try                        (default 24, --quick 6)\n"
         "  --seed S          seed of the random candidates                (default 1)\n"
         "  --device D        P:D index or name substring\n"
         "  --dry-run         search and report, but do not store\n"
         "  --fresh           drop the device's earlier per-shape entries (default: keep those of shapes\n"
         "                    this run did not tune, so tunings of several models and batches add up, and\n"
         "                    try their configurations first, up to half of the candidates)\n"
         "  --report          no search: time each GEMM shape of the step with the tuning in effect and\n"
         "                    print one JSON line per shape (tools/gemm_compare.py reads them)\n");
}

/* --report: each shape of the step timed with the tuning in effect, one JSON line each. */
static int report_shapes(an_runtime *rt, const an_gemm_shape *shapes, int n) {
  double seconds[128];
  const an_status s = an_gemm_time_shapes(rt, shapes, n, seconds);
  char esc[1024];
  cli_json(rt->own_gemm     ? "the project's GEMM kernel (cl/gemm.cl)"
           : rt->gemm_tuned ? rt->gemm_tuning
                            : "untuned",
           esc, sizeof esc);
  for (int i = 0; s == AN_OK && i < n; i++)
    printf("{\"m\": %zu, \"n\": %zu, \"k\": %zu, \"trans_a\": %d, \"trans_b\": %d, \"count\": %d, "
           "\"seconds\": %.6f, \"gflops\": %.3f, \"tuning\": \"%s\"}\n",
           shapes[i].m, shapes[i].n, shapes[i].k, shapes[i].trans_a, shapes[i].trans_b, shapes[i].count, seconds[i],
           2.0 * shapes[i].m * shapes[i].n * shapes[i].k / seconds[i] / 1e9, esc);
  return s == AN_OK ? 0 : cli_fail("timing GEMMs");
}

/* The configurations tried first: with quick, the shipped database's entry for this device; then,
 * unless fresh, the tuning file's earlier ones (other models, batches); up to half of the candidates
 * (all of them with quick). */
static int known_candidates(const an_runtime *rt, const char *path, int quick, int fresh, int candidates,
                            an_gemm_config *known, int max) {
  const int limit = quick ? candidates : candidates / 2;
  int n = quick ? an_tuning_database_configs(rt, known, limit < max ? limit : max) : 0;
  if (n) printf("%d of them from the shipped tuning database\n", n);
  const int room = (limit < max ? limit : max) - n;
  const int n_file = fresh || room <= 0 ? 0 : an_tuning_known_configs(rt, path, known + n, room);
  if (n_file) printf("%d of them known from earlier tunings of this device\n", n_file);
  return n + n_file;
}

static void print_result(const an_tune_result *result, const an_gemm_shape *shapes, int n_step) {
  char text[512];
  an_gemm_config_format(&result->best, text, sizeof text);
  printf("%-24s %8s %10s %10s  %s\n", "shape (op m x n x k)", "count", "untuned", "tuned", "configuration");
  for (int i = 0; i < n_step; i++) {
    const an_gemm_shape_config *e = &result->shapes[i];
    const double f = 2.0 * e->m * e->n * e->k / 1e9;
    char shape[64], cfg[512];
    snprintf(shape, sizeof shape, "%c%c %zux%zux%zu", e->trans_a ? 'T' : 'N', e->trans_b ? 'T' : 'N', e->m, e->n,
             e->k);
    if (e->config.min_indirect_size == AN_GEMM_DIRECT) snprintf(cfg, sizeof cfg, "direct kernel");
    else if (!memcmp(&e->config, &result->best, sizeof e->config)) snprintf(cfg, sizeof cfg, "fallback");
    else an_gemm_config_format(&e->config, cfg, sizeof cfg);
    printf("%-24s %8d %10.1f %10.1f  %s\n", shape, shapes[i].count, f / result->shape_seconds[i],
           f / result->shape_seconds[result->n_shapes + i], cfg);
  }
  printf("best: %.1f GFLOP/s against %.1f untuned (%.2fx) with each shape's own configuration; the fallback\n"
         "alone %.1f GFLOP/s; %d candidates tried, %d rejected; %d shapes' own choices timed again against\n"
         "the fallback, back to back: %d of them kept the fallback\n  fallback: %s\n",
         result->best_gflops, result->default_gflops, result->best_gflops / result->default_gflops,
         result->fallback_gflops, result->n_tried, result->n_rejected, result->n_retimed, result->n_retime_dropped,
         text);
}

/* Chooses the slice widths from the search's timings, prints them, and stores the result (unless dry). */
static int finish(an_runtime *rt, an_tune_result *result, const an_gemm_shape *shapes, const an_dw_reduction *red,
                  int n_red, const char *path, int dry, int fresh) {
  double dw_before = 0, dw_after = 0;
  if (an_tune_dw_widths(result, shapes, red, n_red, &dw_before, &dw_after) != AN_OK)
    return cli_fail("choosing the weight-gradient slice widths");
  for (int i = 0; i < result->n_slices; i++)
    printf("  weight gradient %zux%zu over %zu columns (x%d): slices of %zu (was %zu)\n", result->slices[i].m,
           result->slices[i].n, result->slices[i].ncols, result->slices[i].count, result->slices[i].width,
           red[i].width);
  if (result->n_slices)
    printf("  the step's weight-gradient GEMMs, tuned: %.1f ms at the widths before, %.1f ms at these\n",
           dw_before * 1e3, dw_after * 1e3);
  if (result->best_gflops <= result->default_gflops)
    printf("no candidate beat the untuned default: nothing stored\n");
  else if (dry) printf("dry run: not stored\n");
  else if (an_tuning_save(rt, path, result, !fresh) != AN_OK) return cli_fail("storing the tuning");
  else printf("stored in %s; every later run on this device applies it\n", path);
  return 0;
}

/* The step's GEMM shapes into shapes (n_step: the step's own; returns all, with the weight gradient's
 * slices at the other widths the search times) and its reductions into red. With quick, the database's
 * slice widths are set on rt first and no other widths are timed. */
static int step_shapes(an_runtime *rt, an_net *net, int quick, int report, an_gemm_shape *shapes, int max,
                       an_dw_reduction *red, int *n_red, int *n_step) {
  *n_red = an_net_dw_reductions(net, red, 64);
  if (quick) {
    an_tuning_database_dw_widths(rt, red, *n_red);
    for (int i = 0; i < *n_red; i++) {
      if (red[i].width > red[i].ncols) red[i].width = red[i].ncols; /* one slice */
      if (an_gemm_set_dw_slice(rt, red[i].m, red[i].n, red[i].ncols, red[i].width) != AN_OK) return -1;
    }
  }
  *n_step = an_net_gemm_shapes(net, shapes, 128);
  return report || quick ? *n_step : an_tune_dw_shapes(red, *n_red, shapes, *n_step, max);
}

int cmd_tune(int argc, char **argv) {
  const char *model = "alexnet", *device = NULL;
  int batch = 16, size = 224, classes = 1000, candidates = 0, dry = 0, report = 0, fresh = 0, quick = 0;
  unsigned long long seed = 1;
  const cli_option options[] = {
      CLI_OPT_STRING("model", 'm', &model),
      CLI_OPT_INT("batch", 'b', &batch, 1, 65536),
      CLI_OPT_INT("input-size", 's', &size, 1, 4096),
      CLI_OPT_INT("classes", 'c', &classes, 1, 1 << 20),
      CLI_OPT_FLAG("quick", 'q', &quick),
      CLI_OPT_INT("candidates", 'n', &candidates, 1, INT_MAX),
      CLI_OPT_UINT64("seed", 'r', &seed),
      CLI_OPT_STRING("device", 'd', &device),
      CLI_OPT_FLAG("dry-run", 'x', &dry),
      CLI_OPT_FLAG("report", 'p', &report),
      CLI_OPT_FLAG("fresh", 'f', &fresh),
  };
  const cli_command cmd = {"tune", options, sizeof options / sizeof options[0], help, 0};
  int n_positionals;
  const int status = cli_parse(&cmd, argc, argv, &n_positionals);
  if (status != CLI_CONTINUE) return status;
  if (cli_check_model("tune", model, 0) != CLI_CONTINUE) return 2;
  if (!candidates) candidates = quick ? 6 : 24;
  /* the search measures the untuned default first, so no cached tuning may be applied before it */
  if (!report) setenv("ALEXNET_NO_TUNING", "1", 1);
  an_runtime *rt;
  if (an_runtime_create(device, &rt) != AN_OK) return cli_fail("opening the OpenCL device");
  an_net *net;
  if (an_net_create(rt, model, classes, batch, size, &net) != AN_OK) {
    an_runtime_destroy(rt);
    return cli_fail(model);
  }
  if (rt->own_gemm && !report) { /* the search is CLBlast's: its shapes as CLBlast would run them */
    printf("note: this device's GEMMs run on the project's kernel (cl/gemm.cl); this tunes CLBlast's, which\n"
           "runs with ALEXNET_GEMM=clblast\n");
    rt->own_gemm = 0;
  }
  an_gemm_shape shapes[512];
  an_dw_reduction red[64];
  int n_red, n_step;
  const int n = step_shapes(rt, net, quick, report, shapes, 512, red, &n_red, &n_step);
  an_net_destroy(net);
  if (n < 0 || report) {
    const int rc = n < 0 ? cli_fail("setting the database's slice widths") : report_shapes(rt, shapes, n);
    an_runtime_destroy(rt);
    return rc;
  }
  printf("tuning GEMMs for %s at batch %d, input %d on %s%s: %d distinct shapes (and %d weight-gradient\n"
         "slices of other widths), %d candidates\n",
         model, batch, size, rt->info.name, quick ? ", quick" : "", n_step, n - n_step, candidates);
  char path[4096];
  an_tuning_path(path, sizeof path);
  an_gemm_config known[32];
  const int n_known = known_candidates(rt, path, quick, fresh, candidates, known, 32);
  an_tune_result result;
  if (an_tune_gemm(rt, shapes, n, candidates, known, n_known, seed, quick, progress, NULL, &result) != AN_OK) {
    an_runtime_destroy(rt);
    return cli_fail("tuning");
  }
  print_result(&result, shapes, n_step);
  const int rc = finish(rt, &result, shapes, red, n_red, path, dry, fresh);
  an_tune_result_free(&result);
  an_runtime_destroy(rt);
  return rc;
}
