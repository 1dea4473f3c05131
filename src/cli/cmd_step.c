/* alexnet step: forward + backward + SGD steps of a model on random data, printing the loss and the
 * step time; the smoke test of the whole stack until training on real data exists. */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alexnet/split.h"
#include "cli.h"

static void help(void) {
  printf("usage: alexnet step [options]\n\n"
         "Runs training steps (forward, loss, backward, SGD) on random images and labels and prints\n"
         "the loss and the time of each step. At initialisation the loss is near ln(classes).\n"
         "Two devices (--device A,B) split the model: alexnet's two columns as in the paper, the batch\n"
         "for the single-column models; the losses equal one device's up to float rounding.\n\n"
         "  --model M         alexnet | alexnet-half | alexnet-tv | all      (default all)\n"
         "  --classes N       number of classes                            (default 1000)\n"
         "  --batch B         images per step                              (default 16)\n"
         "  --input-size S    input side in pixels                         (default 224)\n"
         "  --steps K         steps per model                              (default 3)\n"
         "  --lr X            learning rate (momentum 0.9, weight decay 5e-4) (default 0.01)\n"
         "  --seed S          seed of weights, data and dropout             (default 1)\n"
         "  --device D        P:D index or name substring; two separated by a comma for the split\n"
         "                    (default: ALEXNET_DEVICE, else first GPU)\n"
         "  --separate-contexts  split: one context per device even on one platform (host-memory exchange)\n"
         "  --profile         split: each step's busy time per device and exchange time, from profiling\n");
}

typedef struct stepper {
  an_net *net;     /* one device */
  an_split *split; /* or two */
} stepper;

/* Per device of a split: the device time of its layers and of its exchanges (waiting for the other
 * device included) from the profiling marks of the last step; then the copies' own device time. */
static void print_profile(an_split *s) {
  an_split_times t;
  if (an_split_times_read(s, &t) != AN_OK) return;
  for (int k = 0; k < 2; k++)
    printf("    device %d (%s): layers %.1f ms, exchanges and waits %.1f ms\n", k, s->rt[k]->info.name, t.busy_ms[k],
           t.exchange_ms[k]);
  printf("    %d exchange copies: %.1f ms of device time%s\n", t.n_copies, t.copy_ms,
         s->mode == AN_SPLIT_BATCH ? " (the gradient sum)" : "");
}

static int run_model(an_runtime *rt, an_runtime *rt1, const char *model, int classes, int batch, int size, int steps,
                     float lr, uint64_t seed, int profile) {
  stepper st = {NULL, NULL};
  if (rt1) {
    if (an_split_create(rt, rt1, model, classes, batch, size, &st.split) != AN_OK) return cli_fail(model);
    if (an_split_init(st.split, seed) != AN_OK) {
      an_split_destroy(st.split);
      return cli_fail("initialising parameters");
    }
    st.split->profiling = profile;
    rt->profiling = rt1->profiling = profile;
    printf("%s: %zu parameters, split over two devices by %s (%s), batch %d, input %dx%d, %d classes\n", model,
           st.split->full->n_params, st.split->mode == AN_SPLIT_COLUMNS ? "columns" : "batch",
           st.split->shared_context ? "one context: buffer copies" : "separate contexts: host memory", batch, size,
           size, classes);
    for (int k = 0; k < 2; k++)
      printf("  device %d: %.0f MiB, samples [%d, %d)\n", k, an_split_device_bytes(st.split, k) / 1048576.0,
             st.split->first[k], st.split->first[k] + st.split->count[k]);
  } else {
    if (an_net_create(rt, model, classes, batch, size, &st.net) != AN_OK) return cli_fail(model);
    if (an_net_init(st.net, seed) != AN_OK) {
      an_net_destroy(st.net);
      return cli_fail("initialising parameters");
    }
    printf("%s: %zu parameters, %.0f MiB on the device, batch %d, input %dx%d, %d classes\n", model,
           st.net->n_params, an_net_device_bytes(st.net) / 1048576.0, batch, size, size, classes);
  }
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
    if (st.split) {
      an_marks_clear(st.split->rt[0]);
      an_marks_clear(st.split->rt[1]);
      an_split_clear_events(st.split);
    }
    const double t0 = an_seconds();
    const an_status status = st.split ? an_split_train_step(st.split, images, labels, &sgd, seed, (uint64_t)k, &loss)
                                      : an_net_train_step(st.net, images, labels, &sgd, seed, (uint64_t)k, &loss);
    if (status != AN_OK) {
      rc = cli_fail("training step");
      goto done;
    }
    const double dt = an_seconds() - t0;
    if (k > 0 || steps == 1) total += dt;
    printf("  step %d  loss %.7f  (ln %d = %.4f)  %.3f s  %.1f img/s%s\n", k, loss, classes, log((double)classes),
           dt, batch / dt, k == 0 ? "  (includes CLBlast's kernel compilation)" : "");
    if (st.split && profile) {
      an_finish(st.split->rt[0]);
      an_finish(st.split->rt[1]);
      print_profile(st.split);
    }
    fflush(stdout);
  }
  const int timed = steps > 1 ? steps - 1 : 1;
  printf("  mean step time %.3f s (%.1f img/s) over %d step%s\n", total / timed, batch * timed / total, timed,
         timed > 1 ? "s" : "");
done:
  free(images);
  free(labels);
  an_split_destroy(st.split);
  an_net_destroy(st.net);
  return rc;
}

int cmd_step(int argc, char **argv) {
  const char *model = "all", *device = NULL;
  int classes = 1000, batch = 16, size = 224, steps = 3, separate = 0, profile = 0;
  float lr = 0.01f;
  unsigned long long seed = 1;
  const cli_option options[] = {
      CLI_OPT_STRING("model", 'm', &model),
      CLI_OPT_INT("classes", 'c', &classes, 1, 1 << 20),
      CLI_OPT_INT("batch", 'b', &batch, 1, 65536),
      CLI_OPT_INT("input-size", 's', &size, 1, 4096),
      CLI_OPT_INT("steps", 'k', &steps, 1, INT_MAX),
      CLI_OPT_FLOAT("lr", 'l', &lr, 0, INFINITY, 1, 0),
      CLI_OPT_UINT64("seed", 'r', &seed),
      CLI_OPT_STRING("device", 'd', &device),
      CLI_OPT_FLAG("separate-contexts", 'x', &separate),
      CLI_OPT_FLAG("profile", 'p', &profile),
  };
  const cli_command cmd = {"step", options, sizeof options / sizeof options[0], help, 0};
  int n_positionals;
  const int status = cli_parse(&cmd, argc, argv, &n_positionals);
  if (status != CLI_CONTINUE) return status;
  if (cli_check_model("step", model, 1) != CLI_CONTINUE) return 2;
  an_runtime *rt = NULL, *rt1 = NULL;
  int rc = cli_open_devices(device, separate, &rt, &rt1);
  if (rc) return rc;
  if (strcmp(model, "all")) /* one model, or a test width (models.c), which "all" leaves out */
    rc = run_model(rt, rt1, model, classes, batch, size, steps, lr, seed, profile);
  for (int i = 0; !strcmp(model, "all") && an_model_at(i) && rc == 0; i++)
    rc = run_model(rt, rt1, an_model_at(i)->name, classes, batch, size, steps, lr, seed, profile);
  an_runtime_destroy(rt1);
  an_runtime_destroy(rt);
  return rc;
}
