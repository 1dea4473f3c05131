/* alexnet tune: searches CLBlast's GEMM parameters on the GEMM shapes of a model's training step on
 * the chosen device, and stores the best in the tuning cache that every later run applies. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alexnet/tune.h"
#include "cli.h"

static void progress(void *user, int i, int n, const an_gemm_config *c, double gflops, double best, const char *note) {
  (void)user;
  char text[512] = "";
  if (c) an_gemm_config_format(c, text, sizeof text);
  if (i == 0)
    printf("  untuned default: %.1f GFLOP/s on the step's GEMMs\n", gflops);
  else if (i > 0)
    printf("  [%2d/%d] %-8.1f GFLOP/s (largest GEMM)  %s  %s\n", i, n, gflops, text, strcmp(note, "screen") ? note : "");
  else
    printf("  all shapes: %.1f GFLOP/s (best %.1f)  %s\n", gflops, best, text);
  fflush(stdout);
}

static void help(void) {
  printf("usage: alexnet tune [options]\n\n"
         "Tunes CLBlast's GEMM kernel for the device on the GEMM shapes of a model's training step:\n"
         "candidates are screened on the largest GEMM, the best few timed on every shape, and any whose\n"
         "results differ from the untuned GEMM's are rejected. The best is stored in the tuning file\n"
         "(ALEXNET_TUNING_FILE, else ~/.cache/alexnet/gemm-tuning.txt), keyed by device and driver, and\n"
         "applied by every later run on that device (ALEXNET_NO_TUNING=1 runs untuned).\n\n"
         "  --model M         alexnet | alexnet-half | alexnet-tv          (default alexnet)\n"
         "  --batch B         batch whose shapes are tuned                 (default 16)\n"
         "  --candidates N    configurations to try                        (default 24)\n"
         "  --seed S          seed of the random candidates                (default 1)\n"
         "  --device D        P:D index or name substring\n"
         "  --dry-run         search and report, but do not store\n"
         "  --report          no search: time each GEMM shape of the step with the tuning in effect and\n"
         "                    print one JSON line per shape (tools/gemm_compare.py reads them)\n");
}

int cmd_tune(int argc, char **argv) {
  static const struct option opts[] = {
      {"model", required_argument, NULL, 'm'},      {"batch", required_argument, NULL, 'b'},
      {"candidates", required_argument, NULL, 'n'}, {"seed", required_argument, NULL, 'r'},
      {"device", required_argument, NULL, 'd'},     {"dry-run", no_argument, NULL, 'x'},
      {"report", no_argument, NULL, 'p'},
      {"help", no_argument, NULL, 'h'},             {NULL, 0, NULL, 0}};
  const char *model = "alexnet", *device = NULL;
  int batch = 16, candidates = 24, dry = 0, report = 0, c;
  unsigned long long seed = 1;
  while ((c = getopt_long(argc, argv, "m:b:n:r:d:xph", opts, NULL)) != -1) {
    switch (c) {
      case 'm': model = optarg; break;
      case 'b': batch = atoi(optarg); break;
      case 'n': candidates = atoi(optarg); break;
      case 'r': seed = strtoull(optarg, NULL, 10); break;
      case 'd': device = optarg; break;
      case 'x': dry = 1; break;
      case 'p': report = 1; break;
      case 'h': help(); return 0;
      default: fprintf(stderr, "see: alexnet tune --help\n"); return 2;
    }
  }
  if (optind < argc || batch < 1 || candidates < 1 || !an_model_find(model)) {
    fprintf(stderr, "alexnet tune: invalid arguments (see --help)\n");
    return 2;
  }
  /* the search measures the untuned default first, so no cached tuning may be applied before it */
  if (!report) setenv("ALEXNET_NO_TUNING", "1", 1);
  an_runtime *rt;
  if (an_runtime_create(device, &rt) != AN_OK) return cli_fail("opening the OpenCL device");
  an_net *net;
  if (an_net_create(rt, model, 1000, batch, 224, &net) != AN_OK) {
    an_runtime_destroy(rt);
    return cli_fail(model);
  }
  an_gemm_shape shapes[128];
  const int n = an_net_gemm_shapes(net, shapes, 128);
  an_net_destroy(net);
  if (report) {
    double seconds[128];
    const an_status s = an_gemm_time_shapes(rt, shapes, n, seconds);
    for (int i = 0; s == AN_OK && i < n; i++)
      printf("{\"m\": %zu, \"n\": %zu, \"k\": %zu, \"trans_a\": %d, \"trans_b\": %d, \"count\": %d, "
             "\"seconds\": %.6f, \"gflops\": %.3f, \"tuning\": \"%s\"}\n",
             shapes[i].m, shapes[i].n, shapes[i].k, shapes[i].trans_a, shapes[i].trans_b, shapes[i].count, seconds[i],
             2.0 * shapes[i].m * shapes[i].n * shapes[i].k / seconds[i] / 1e9, rt->gemm_tuned ? rt->gemm_tuning : "untuned");
    an_runtime_destroy(rt);
    return s == AN_OK ? 0 : cli_fail("timing GEMMs");
  }
  printf("tuning GEMMs for %s at batch %d on %s: %d distinct shapes, %d candidates\n", model, batch, rt->info.name, n,
         candidates);
  an_tune_result result;
  if (an_tune_gemm(rt, shapes, n, candidates, seed, progress, NULL, &result) != AN_OK) {
    an_runtime_destroy(rt);
    return cli_fail("tuning");
  }
  char text[512], path[4096];
  an_gemm_config_format(&result.best, text, sizeof text);
  an_tuning_path(path, sizeof path);
  printf("best: %.1f GFLOP/s against %.1f untuned (%.2fx), %d tried, %d rejected\n  %s\n", result.best_gflops,
         result.default_gflops, result.best_gflops / result.default_gflops, result.n_tried, result.n_rejected, text);
  int rc = 0;
  if (result.best_gflops <= result.default_gflops) {
    printf("no candidate beat the untuned default: nothing stored\n");
  } else if (dry) {
    printf("dry run: not stored\n");
  } else if (an_tuning_save(rt, path, &result.best, result.best_gflops) != AN_OK) {
    rc = cli_fail("storing the tuning");
  } else {
    printf("stored in %s; every later run on this device applies it\n", path);
  }
  an_runtime_destroy(rt);
  return rc;
}
