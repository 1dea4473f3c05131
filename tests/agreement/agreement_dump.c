/* agreement_dump: this project's side of the PyTorch agreement test (tools/agreement.py runs it).
 *
 * For one model it creates a net, initialises it from a seed with the model's scheme (or loads
 * --weights), and writes to --out:
 *   weights.safetensors  the parameters it starts from (an_net_save)
 *   batch.safetensors    images F32 (N, 3, S, S) uniform with standard deviation --input-std (1: as
 *                        normalised pixels), labels I32 (N)
 *   grads.safetensors    logits F32 (N, K), loss F32 (), grad.<name> for every tensor: one forward with
 *                        dropout off (train = 0) and the backward pass that follows it
 *   acts.<k>.safetensors act.<i>: the output of every layer i in step k's forward, (N, C, H, W) or
 *                        (N, C) after a fully connected layer. PyTorch replays the backward on these
 *                        values, so both sides take the same max-pool and ReLU decisions: values within
 *                        float rounding of a decision otherwise send a gradient elsewhere in one of them
 *                        (PyTorch fp32 and fp64 differ by 2e-2 on conv1's weight gradient that way).
 *   after.safetensors    every parameter after --steps SGD steps (each: forward with dropout off,
 *                        backward, an_net_sgd with lr 0.01, momentum 0.9, weight decay 5e-4), and
 *                        losses F32 (steps): the loss each step saw before its update
 * Step 0's forward and backward are those of grads.safetensors. Exit status 0 on success; a failure
 * prints the library's message and exits 1. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alexnet/io.h"
#include "alexnet/model.h"
#include "alexnet/train.h"         /* an_net_save, an_net_load */
#include "../../src/runtime/rng.h" /* the one splitmix64 */

_Static_assert(sizeof(int) == 4, "labels are written as I32");

typedef struct options {
  const char *model, *out, *weights, *device;
  int classes, batch, input_hw, steps;
  uint64_t seed;
  double input_std;
} options;

static void usage(void) {
  fprintf(stderr,
          "usage: agreement_dump --model M --classes K --out DIR [--batch 4] [--input-size 224] [--steps 5]\n"
          "                      [--seed S] [--input-std X] [--weights FILE] [--device D]\n");
}

static int parse(int argc, char **argv, options *o) {
  *o = (options){.batch = 4, .input_hw = 224, .steps = 5, .seed = 1, .input_std = 1.0};
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!v) return 0;
    if (!strcmp(a, "--model")) o->model = v;
    else if (!strcmp(a, "--out")) o->out = v;
    else if (!strcmp(a, "--weights")) o->weights = v;
    else if (!strcmp(a, "--device")) o->device = v;
    else if (!strcmp(a, "--classes")) o->classes = atoi(v);
    else if (!strcmp(a, "--batch")) o->batch = atoi(v);
    else if (!strcmp(a, "--input-size")) o->input_hw = atoi(v);
    else if (!strcmp(a, "--steps")) o->steps = atoi(v);
    else if (!strcmp(a, "--seed")) o->seed = strtoull(v, NULL, 10);
    else if (!strcmp(a, "--input-std")) o->input_std = atof(v);
    else return 0;
    i++;
  }
  return o->model && o->out && o->classes > 0 && o->batch > 0 && o->input_hw > 0 && o->steps >= 0 &&
         o->input_std > 0;
}

static int fail(const char *what) {
  fprintf(stderr, "agreement_dump: %s: %s\n", what, an_last_error());
  return 1;
}

static void path_in(char *buf, size_t size, const char *dir, const char *name) {
  snprintf(buf, size, "%s/%s", dir, name);
}

/* Parameters or gradients as entries named prefix + tensor name, into entries[0 .. n_tensors). */
static void tensor_entries(const an_net *net, const float *values /* (n_params) */, const char *prefix,
                           char (*names)[96], an_st_entry *entries) {
  for (int i = 0; i < net->n_tensors; i++) {
    const an_tensor *t = &net->tensors[i];
    snprintf(names[i], sizeof names[i], "%s%s", prefix, t->name);
    entries[i] = (an_st_entry){names[i], AN_DTYPE_F32, t->ndim, {0}, values + t->offset};
    for (int d = 0; d < t->ndim; d++) entries[i].shape[d] = t->shape[d];
  }
}

/* Every layer's output of the last forward into <dir>/acts.<step>.safetensors. */
static an_status dump_acts(an_net *net, const char *dir, int step, float *acts /* (act_floats) */,
                           an_st_entry *entries /* (n_layers) */, char (*names)[96] /* (n_layers) */) {
  const an_status status = an_read(net->rt, acts, an_at(net->acts, 0), net->act_floats);
  if (status != AN_OK) return status;
  for (int i = 0; i < net->model->n_layers; i++) {
    const an_layer_plan *L = &net->layers[i];
    snprintf(names[i], sizeof names[i], "act.%d", i);
    entries[i] = L->desc->kind == AN_LAYER_FC
                     ? (an_st_entry){names[i], AN_DTYPE_F32, 2, {net->batch, L->out_c}, acts + L->out_off}
                     : (an_st_entry){
                           names[i], AN_DTYPE_F32, 4, {net->batch, L->out_c, L->out_h, L->out_w}, acts + L->out_off};
  }
  char path[4096], name[32];
  snprintf(name, sizeof name, "acts.%d.safetensors", step);
  path_in(path, sizeof path, dir, name);
  return an_st_write(path, entries, net->model->n_layers, NULL, 0);
}

int main(int argc, char **argv) {
  options o;
  if (!parse(argc, argv, &o)) {
    usage();
    return 2;
  }
  an_runtime *rt = NULL;
  an_net *net = NULL;
  int rc = 1;
  const size_t pixels = (size_t)o.batch * 3 * o.input_hw * o.input_hw;
  float *images = malloc(pixels * sizeof *images);                          /* (N, 3, S, S) */
  int *labels = malloc((size_t)o.batch * sizeof *labels);                   /* (N), written as I32 */
  float *logits = malloc((size_t)o.batch * o.classes * sizeof *logits);     /* (N, K) */
  float *losses = malloc((o.steps ? (size_t)o.steps : 1) * sizeof *losses); /* (steps) */
  float *values = NULL;                                                     /* (n_params) grads, then params */
  float *acts = NULL;                                                       /* (act_floats) */
  an_st_entry *entries = NULL;                                              /* (n_entries) */
  char(*names)[96] = NULL;                                                  /* (n_entries) */
  char path[4096];
  if (!images || !labels || !logits || !losses) {
    fprintf(stderr, "agreement_dump: out of host memory\n");
    goto done;
  }
  if (an_runtime_create(o.device, &rt) != AN_OK) {
    rc = fail("opening the OpenCL device");
    goto done;
  }
  printf("device: %s (%s)\n", rt->info.name, rt->info.platform_name);
  if (an_net_create(rt, o.model, o.classes, o.batch, o.input_hw, &net) != AN_OK) {
    rc = fail(o.model);
    goto done;
  }
  if (o.weights ? an_net_load(net, o.weights, NULL) != AN_OK : an_net_init(net, o.seed) != AN_OK) {
    rc = fail(o.weights ? o.weights : "initialising the parameters");
    goto done;
  }
  const int n_entries = (net->n_tensors + 2 > net->model->n_layers ? net->n_tensors + 2 : net->model->n_layers);
  values = malloc(net->n_params * sizeof *values);
  acts = malloc(net->act_floats * sizeof *acts);
  entries = calloc((size_t)n_entries, sizeof *entries);
  names = calloc((size_t)n_entries, sizeof *names);
  if (!values || !acts || !entries || !names) {
    fprintf(stderr, "agreement_dump: out of host memory\n");
    goto done;
  }
  path_in(path, sizeof path, o.out, "weights.safetensors");
  if (an_net_save(net, path, NULL) != AN_OK) {
    rc = fail("saving the weights");
    goto done;
  }

  an_rng s = {o.seed ^ 0x5eed0fba7c4ULL}; /* the batch depends only on the seed */
  for (size_t i = 0; i < pixels; i++)     /* uniform with standard deviation input_std */
    images[i] = (float)(o.input_std *
                        (((an_rng_next(&s) >> 40) * (1.0 / 16777216.0)) * 3.4641016151377544 - 1.7320508075688772));
  for (int i = 0; i < o.batch; i++) labels[i] = (int)(an_rng_next(&s) % (uint64_t)o.classes);
  {
    const an_st_entry batch[2] = {
        {"images", AN_DTYPE_F32, 4, {o.batch, 3, o.input_hw, o.input_hw}, images},
        {"labels", AN_DTYPE_I32, 1, {o.batch}, labels},
    };
    path_in(path, sizeof path, o.out, "batch.safetensors");
    if (an_st_write(path, batch, 2, NULL, 0) != AN_OK) {
      rc = fail("writing the batch");
      goto done;
    }
  }

  float loss;
  if (an_net_set_batch(net, images, labels) != AN_OK || an_net_forward(net, 0, o.seed, 0) != AN_OK ||
      an_net_backward(net, o.seed, 0) != AN_OK || an_net_read_loss(net, &loss) != AN_OK ||
      an_net_read_logits(net, logits) != AN_OK || an_net_read_grads(net, values) != AN_OK) {
    rc = fail("forward and backward");
    goto done;
  }
  if (dump_acts(net, o.out, 0, acts, entries, names) != AN_OK) {
    rc = fail("writing the activations");
    goto done;
  }
  printf("%s, %d classes: loss %.6f\n", o.model, o.classes, loss);
  tensor_entries(net, values, "grad.", names, entries);
  entries[net->n_tensors] = (an_st_entry){"logits", AN_DTYPE_F32, 2, {o.batch, o.classes}, logits};
  entries[net->n_tensors + 1] = (an_st_entry){"loss", AN_DTYPE_F32, 0, {0}, &loss};
  path_in(path, sizeof path, o.out, "grads.safetensors");
  if (an_st_write(path, entries, net->n_tensors + 2, NULL, 0) != AN_OK) {
    rc = fail("writing the gradients");
    goto done;
  }

  const an_sgd_params sgd = {0.01f, 0.9f, 5e-4f, 0};
  for (int k = 0; k < o.steps; k++) {
    if (k > 0 && (an_net_forward(net, 0, o.seed, (uint64_t)k) != AN_OK ||
                  an_net_backward(net, o.seed, (uint64_t)k) != AN_OK || an_net_read_loss(net, &loss) != AN_OK ||
                  dump_acts(net, o.out, k, acts, entries, names) != AN_OK)) {
      rc = fail("training step");
      goto done;
    }
    losses[k] = loss;
    if (an_net_sgd(net, &sgd) != AN_OK) {
      rc = fail("SGD");
      goto done;
    }
    printf("  step %d: loss %.6f\n", k, loss);
  }
  if (an_net_read_params(net, values) != AN_OK) {
    rc = fail("reading the parameters");
    goto done;
  }
  tensor_entries(net, values, "", names, entries);
  entries[net->n_tensors] = (an_st_entry){"losses", AN_DTYPE_F32, 1, {o.steps}, losses};
  path_in(path, sizeof path, o.out, "after.safetensors");
  if (an_st_write(path, entries, net->n_tensors + 1, NULL, 0) != AN_OK) {
    rc = fail("writing the parameters after SGD");
    goto done;
  }
  rc = 0;
done:
  free(names);
  free(entries);
  free(acts);
  free(values);
  free(losses);
  free(logits);
  free(labels);
  free(images);
  an_net_destroy(net);
  an_runtime_destroy(rt);
  return rc;
}
