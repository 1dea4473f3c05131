/* alexnet step: forward + backward + SGD steps of a model on random data, printing the loss and the
 * step time; the smoke test of the whole stack until training on real data exists. */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alexnet/model.h"
#include "cli.h"

static void help(void) {
  printf("usage: alexnet step [options]\n\n"
         "Runs training steps (forward, loss, backward, SGD) on random images and labels and prints\n"
         "the loss and the time of each step. At initialisation the loss is near ln(classes).\n\n"
         "  --model M         alexnet | alexnet-half | alexnet-tv | all      (default all)\n"
         "  --classes N       number of classes                            (default 1000)\n"
         "  --batch B         images per step                              (default 16)\n"
         "  --input-size S    input side in pixels                         (default 224)\n"
         "  --steps K         steps per model                              (default 3)\n"
         "  --lr X            learning rate (momentum 0.9, weight decay 5e-4) (default 0.01)\n"
         "  --seed S          seed of weights, data and dropout             (default 1)\n"
         "  --device D        P:D index or name substring (default: ALEXNET_DEVICE, else first GPU)\n");
}

static int run_model(an_runtime *rt, const char *model, int classes, int batch, int size, int steps,
                     float lr, uint64_t seed) {
  an_net *net = NULL;
  if (an_net_create(rt, model, classes, batch, size, &net) != AN_OK) return cli_fail(model);
  if (an_net_init(net, seed) != AN_OK) {
    an_net_destroy(net);
    return cli_fail("initialising parameters");
  }
  printf("%s: %zu parameters, %.0f MiB on the device, batch %d, input %dx%d, %d classes\n", model,
         net->n_params, an_net_device_bytes(net) / 1048576.0, batch, size, size, classes);
  const size_t pixels = (size_t)batch * 3 * size * size;
  float *images = malloc(pixels * sizeof *images);
  int *labels = malloc((size_t)batch * sizeof *labels);
  int rc = 0;
  if (!images || !labels) {
    fprintf(stderr, "alexnet: out of host memory\n");
    rc = 1;
    goto done;
  }
  uint64_t s = seed * 2654435761u + 1;
  for (size_t i = 0; i < pixels; i++) { /* roughly normalised pixels: uniform with unit variance */
    s = s * 6364136223846793005ULL + 1442695040888963407ULL;
    images[i] = (float)(((s >> 40) * (1.0 / 16777216.0)) * 3.4641016 - 1.7320508);
  }
  for (int i = 0; i < batch; i++) labels[i] = (int)((seed * 7919u + (unsigned)i * 104729u) % (unsigned)classes);
  const an_sgd_params sgd = {lr, 0.9f, 5e-4f, 0};
  double total = 0;
  for (int k = 0; k < steps; k++) {
    float loss;
    const double t0 = an_seconds();
    if (an_net_train_step(net, images, labels, &sgd, seed, (uint64_t)k, &loss) != AN_OK) {
      rc = cli_fail("training step");
      goto done;
    }
    const double dt = an_seconds() - t0;
    if (k > 0 || steps == 1) total += dt;
    printf("  step %d  loss %.4f  (ln %d = %.4f)  %.3f s  %.1f img/s%s\n", k, loss, classes, log((double)classes),
           dt, batch / dt, k == 0 ? "  (includes CLBlast's kernel compilation)" : "");
    fflush(stdout);
  }
  const int timed = steps > 1 ? steps - 1 : 1;
  printf("  mean step time %.3f s (%.1f img/s) over %d step%s\n", total / timed, batch * timed / total, timed,
         timed > 1 ? "s" : "");
done:
  free(images);
  free(labels);
  an_net_destroy(net);
  return rc;
}

int cmd_step(int argc, char **argv) {
  static const struct option opts[] = {
      {"model", required_argument, NULL, 'm'}, {"classes", required_argument, NULL, 'c'},
      {"batch", required_argument, NULL, 'b'}, {"input-size", required_argument, NULL, 's'},
      {"steps", required_argument, NULL, 'k'}, {"lr", required_argument, NULL, 'l'},
      {"seed", required_argument, NULL, 'r'},  {"device", required_argument, NULL, 'd'},
      {"help", no_argument, NULL, 'h'},        {NULL, 0, NULL, 0}};
  const char *model = "all", *device = NULL;
  int classes = 1000, batch = 16, size = 224, steps = 3;
  float lr = 0.01f;
  unsigned long long seed = 1;
  int c;
  while ((c = getopt_long(argc, argv, "m:c:b:s:k:l:r:d:h", opts, NULL)) != -1) {
    switch (c) {
      case 'm': model = optarg; break;
      case 'c': classes = atoi(optarg); break;
      case 'b': batch = atoi(optarg); break;
      case 's': size = atoi(optarg); break;
      case 'k': steps = atoi(optarg); break;
      case 'l': lr = strtof(optarg, NULL); break;
      case 'r': seed = strtoull(optarg, NULL, 10); break;
      case 'd': device = optarg; break;
      case 'h': help(); return 0;
      default: fprintf(stderr, "see: alexnet step --help\n"); return 2;
    }
  }
  if (optind < argc || classes < 1 || batch < 1 || size < 1 || steps < 1) {
    fprintf(stderr, "alexnet step: invalid arguments (classes, batch, input-size and steps must be positive)\n");
    return 2;
  }
  if (strcmp(model, "all") && !an_model_find(model)) {
    fprintf(stderr, "alexnet step: unknown model '%s' (alexnet, alexnet-half, alexnet-tv, all)\n", model);
    return 2;
  }
  an_runtime *rt;
  if (an_runtime_create(device, &rt) != AN_OK) return cli_fail("opening the OpenCL device");
  printf("device %d:%d %s (%s)\n", rt->info.platform_index, rt->info.device_index, rt->info.name,
         rt->info.platform_name);
  int rc = 0;
  for (int i = 0; an_model_at(i) && rc == 0; i++)
    if (!strcmp(model, "all") || !strcmp(model, an_model_at(i)->name))
      rc = run_model(rt, an_model_at(i)->name, classes, batch, size, steps, lr, seed);
  an_runtime_destroy(rt);
  return rc;
}
