/* The inference plan and what is built on it, against independent references:
 *   - the forward-only max-pool and LRN kernels against the reference and the training kernels;
 *   - logits of every model against the plain-C reference (double) composed from the model's table,
 *     and against the training net's forward with dropout off, on the same weights (saved by the net,
 *     loaded by the plan); zero-copy and copying I/O, one and two input slots, a chunked workspace;
 *   - the plan's memory figure against the CL_MEM_SIZE of every buffer it created, the "does not fit"
 *     error and the batch it names, and alexnet's inference memory at batch 1 against the training
 *     net's (the bound: at most 40 %);
 *   - classification of a batch of good and bad files (truncated, empty, not an image, missing): an
 *     error for each bad one, the good ones classified as when alone;
 *   - classify against evaluation on a briefly trained checkpoint: the same top-1 for every image,
 *     centre crop and ten-crop, and the class names carried in the checkpoint's metadata;
 *   - a labels file shorter than the classes is a clear error;
 *   - the filters image: the expected size, read back by stb_image, kernels where the layout says. */
#define _GNU_SOURCE /* nftw, mkdtemp */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alexnet/infer.h"
#include "alexnet/io.h"
#include "alexnet/train.h"
#include "check.h"
#include "ref.h"
#include "test_data_fixture.h" /* a 16x16 JPEG: stb's JPEG encoder is undefined behaviour under UBSan */

#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#pragma GCC diagnostic ignored "-Wunused-function"
#endif
#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
#include <stb_image.h>
#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb_image_write.h>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#pragma GCC diagnostic ignored "-Wunused-function" /* stb declares static functions it never defines */
#endif

#define rt test_rt
#define SEED 6061u

static char tmp_dir[64];

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb, (void)flag, (void)ftw;
  return remove(path);
}

static int setup(void **state) {
  snprintf(tmp_dir, sizeof tmp_dir, "/tmp/test_infer.XXXXXX");
  if (!mkdtemp(tmp_dir)) return -1;
  return test_runtime_setup(state);
}

static int teardown(void **state) {
  nftw(tmp_dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
  return test_runtime_teardown(state);
}

static void path_in(char *buf, size_t size, const char *name) { snprintf(buf, size, "%s/%s", tmp_dir, name); }

/* ---- the plain-C reference forward, from the model's table and the net's tensor table ---- */

static const an_tensor *tensor(const an_net *net, const char *layer, const char *suffix) {
  char name[96];
  snprintf(name, sizeof name, "%s.%s", layer, suffix);
  for (int t = 0; t < net->n_tensors; t++)
    if (!strcmp(net->tensors[t].name, name)) return &net->tensors[t];
  fail_msg("tensor %s is missing from the net", name);
  return NULL;
}

/* logits (n, classes) of the model with the net's parameters P, dropout the identity */
static double *ref_forward(const an_net *net, const double *P, const double *x, int n, int input_hw) {
  const an_model_desc *m = net->model;
  int c = 3, h = input_hw, w = input_hw;
  double *cur = test_doubles((size_t)n * c * h * w);
  memcpy(cur, x, (size_t)n * c * h * w * sizeof *cur);
  for (int i = 0; i < m->n_layers; i++) {
    const an_layer_desc *d = &m->layers[i];
    double *out = NULL;
    switch (d->kind) {
      case AN_LAYER_CONV: {
        const ref_conv_dims cd = ref_conv_dims_make(n, c, h, w, d->out_channels, d->kernel, d->stride, d->pad,
                                                    d->groups);
        out = test_doubles((size_t)n * d->out_channels * cd.oh * cd.ow);
        ref_conv_forward(out, cur, P + tensor(net, d->name, "weight")->offset,
                         P + tensor(net, d->name, "bias")->offset, &cd, d->relu);
        c = d->out_channels, h = cd.oh, w = cd.ow;
        break;
      }
      case AN_LAYER_LRN:
        out = test_doubles((size_t)n * c * h * w);
        ref_lrn_forward(out, NULL, cur, n, c, h, w, d->lrn.size, d->lrn.alpha, d->lrn.beta, d->lrn.k);
        break;
      case AN_LAYER_MAXPOOL: {
        const int oh = (h - d->kernel) / d->stride + 1, ow = (w - d->kernel) / d->stride + 1;
        out = test_doubles((size_t)n * c * oh * ow);
        ref_maxpool_forward(out, cur, n, c, h, w, d->kernel, d->stride);
        h = oh, w = ow;
        break;
      }
      case AN_LAYER_AVGPOOL:
        out = test_doubles((size_t)n * c * d->out_hw * d->out_hw);
        ref_avgpool_forward(out, cur, n, c, h, w, d->out_hw, d->out_hw);
        h = w = d->out_hw;
        break;
      case AN_LAYER_DROPOUT: continue;
      case AN_LAYER_FC: {
        const int outf = d->out_channels ? d->out_channels : net->classes;
        out = test_doubles((size_t)n * outf);
        ref_fc_forward(out, cur, P + tensor(net, d->name, "weight")->offset,
                       P + tensor(net, d->name, "bias")->offset, n, c * h * w, outf, d->relu);
        c = outf, h = w = 1;
        break;
      }
      case AN_LAYER_GATHER: /* only in the split's column models */
      case AN_LAYER_SUM: fail_msg("%s: layer %d is an exchange", m->name, i);
    }
    free(cur);
    cur = out;
  }
  return cur;
}

/* A net of model with its own initialisation, its weights saved to name; *params its host copy. */
static an_net *saved_net(const char *model, int classes, int batch, int input_hw, const char *name, float **params) {
  an_net *net;
  TEST_OK(an_net_create(rt, model, classes, batch, input_hw, &net));
  TEST_OK(an_net_init(net, SEED));
  char path[128];
  path_in(path, sizeof path, name);
  TEST_OK(an_net_save(net, path, NULL));
  *params = test_floats(net->n_params);
  TEST_OK(an_net_read_params(net, *params));
  return net;
}

static float *random_images(int n, int input_hw, uint64_t seed, float scale) {
  const size_t count = (size_t)n * 3 * input_hw * input_hw;
  float *x = test_floats(count);
  test_rng r = test_rng_seeded(seed);
  test_fill_uniform(x, count, -scale, scale, &r);
  return x;
}

/* The plan's logits with weights from the file, or with NULL an_infer_init's. */
static float *infer_logits(const char *model, int classes, int batch, int input_hw, const char *weights,
                           const an_infer_options *o, const float *images, int slot) {
  an_infer *inf;
  TEST_OK(an_infer_create(rt, model, classes, batch, input_hw, o, &inf));
  char path[128];
  path_in(path, sizeof path, weights ? weights : "");
  if (weights) TEST_OK(an_infer_load(inf, path));
  else /* the model's initialisation from SEED: the training net's numbers (an_net_init) */
    TEST_OK(an_infer_init(inf, SEED));
  memcpy(an_infer_input(inf, slot), images, (size_t)batch * 3 * input_hw * input_hw * sizeof(float));
  const float *logits;
  TEST_OK(an_infer_run(inf, slot, &logits));
  if (inf->zero_copy) { /* the device used the host's memory: maps of USE_HOST_PTR buffers derive from it */
    assert_ptr_equal(an_infer_input(inf, slot), inf->host_input + (size_t)slot * inf->input_floats);
    assert_ptr_equal(inf->output_map, inf->host_output);
  }
  float *copy = test_floats((size_t)batch * classes);
  memcpy(copy, logits, (size_t)batch * classes * sizeof *copy);
  an_infer_destroy(inf);
  return copy;
}

static void check_model(const char *model, int classes, int batch, int input_hw, float input_scale) {
  printf("%s, %d classes, batch %d, input %d\n", model, classes, batch, input_hw);
  float *params;
  an_net *net = saved_net(model, classes, batch, input_hw, "model.safetensors", &params);
  float *x = random_images(batch, input_hw, SEED + (uint64_t)input_hw, input_scale);
  const size_t n_logits = (size_t)batch * classes;

  /* the training net's forward, dropout off */
  int *labels = calloc((size_t)batch, sizeof *labels);
  TEST_OK(an_net_set_batch(net, x, labels));
  TEST_OK(an_net_forward(net, 0, 0, 0));
  float *net_logits = test_floats(n_logits);
  TEST_OK(an_net_read_logits(net, net_logits));

  /* the plain-C reference */
  double *P = test_dup_double(params, net->n_params);
  double *X = test_dup_double(x, (size_t)batch * 3 * input_hw * input_hw);
  double *want = ref_forward(net, P, X, batch, input_hw);

  const an_infer_options zero_copy = {.zero_copy = 1, .input_slots = 2}, copying = {.zero_copy = 0};
  float *a = infer_logits(model, classes, batch, input_hw, "model.safetensors", &zero_copy, x, 1);
  float *b = infer_logits(model, classes, batch, input_hw, "model.safetensors", &copying, x, 0);
  assert_int_equal(check_close("inference vs reference", a, want, n_logits, 1e-4, 1e-5), 0);
  double *net_d = test_dup_double(net_logits, n_logits);
  assert_int_equal(check_close("inference vs training net", a, net_d, n_logits, 1e-4, 1e-6), 0);
  /* the same computation whichever way the batch travels */
  assert_memory_equal(a, b, n_logits * sizeof *a);
  /* an_infer_init draws the weights the net was initialised (and saved) with: the same logits, bit for bit */
  float *init = infer_logits(model, classes, batch, input_hw, NULL, &copying, x, 0);
  assert_memory_equal(init, b, n_logits * sizeof *b);
  free(init);

  if (batch > 1) { /* a workspace of one image per chunk: the limit leaves no room for more */
    an_infer_memory whole;
    TEST_OK(an_infer_plan(rt, model, classes, batch, input_hw, NULL, &whole));
    assert_true(whole.chunk_images == batch);
    /* half of im2col's whole-batch workspace: Winograd's (the 3x3 convolutions' transformed filters, which
     * do not shrink with the chunk, at most of it) does not fit then, and im2col chunks */
    size_t im2col_all = 0;
    for (int i = 0; i < net->model->n_layers; i++)
      if (net->layers[i].desc->kind == AN_LAYER_CONV) {
        const an_conv_dims d = an_layer_conv_dims(&net->layers[i], batch);
        if (an_conv_min_work_floats(&d) * (size_t)batch > im2col_all)
          im2col_all = an_conv_min_work_floats(&d) * batch;
      }
    const size_t work_limit = im2col_all * sizeof(float) / 2;
    const an_infer_options tight = {.max_memory_bytes = whole.total_bytes - whole.work_bytes + work_limit,
                                    .zero_copy = -1};
    an_infer_memory chunked;
    TEST_OK(an_infer_plan(rt, model, classes, batch, input_hw, &tight, &chunked));
    printf("  workspace %zu -> %zu bytes under a %zu-byte limit: %d image(s) per chunk\n", whole.work_bytes,
           chunked.work_bytes, tight.max_memory_bytes, chunked.chunk_images);
    assert_true(chunked.chunk_images < batch);
    assert_true(chunked.total_bytes <= tight.max_memory_bytes);
    float *c = infer_logits(model, classes, batch, input_hw, "model.safetensors", &tight, x, 0);
    assert_int_equal(check_close("chunked inference vs reference", c, want, n_logits, 1e-4, 1e-5), 0);
    free(c);
  }
  free(net_d);
  free(a);
  free(b);
  free(want);
  free(X);
  free(P);
  free(net_logits);
  free(labels);
  free(x);
  free(params);
  an_net_destroy(net);
}

/* LRN only acts at the paper's pixel scale (see tools/agreement.py): inputs of spread 60 for alexnet */
static void test_alexnet_small(void **state) {
  (void)state;
  check_model("alexnet", 10, 2, 67, 100.0f);
}
static void test_alexnet_half(void **state) {
  (void)state;
  check_model("alexnet-half", 7, 3, 99, 1.7f);
}
/* a batch that fills the project GEMM's strips: there (AVX-512 CPUs) the fully connected weights are
 * packed as its A (an_fc_forward_packed); on other devices the same check of the transposed layout */
static void test_alexnet_half_batch64(void **state) {
  (void)state;
  assert_int_equal(an_fc_packed_applies(rt, 64), rt->own_gemm);
  printf("fully connected weights %s\n", rt->own_gemm ? "packed as the project's GEMM's A" : "transposed (IN, OUT)");
  check_model("alexnet-half", 10, 64, 67, 1.7f);
}
static void test_alexnet_tv_batch1(void **state) {
  (void)state;
  check_model("alexnet-tv", 1000, 1, 224, 1.7f);
}

/* ---- the forward-only kernels against the reference and the training kernels ---- */

static void test_forward_only_layers(void **state) {
  (void)state;
  const int n = 2, c = 7, h = 13, w = 37, k = 3, stride = 2, oh = 6, ow = 18; /* w: the 8-wide path too */
  const size_t in_count = (size_t)n * c * h * w, out_count = (size_t)n * c * oh * ow;
  float *x = test_floats(in_count); /* (N, C, H, W) */
  test_rng r = test_rng_seeded(SEED);
  test_fill_uniform(x, in_count, -60.0f, 60.0f, &r); /* LRN's normalisation only shows at pixel scale */
  x[5] = NAN;                                        /* NaN wins its max-pool windows, as PyTorch */
  cl_mem inp, out, out_train, aux;
  TEST_OK(an_alloc(rt, in_count, &inp));
  TEST_OK(an_alloc(rt, in_count, &out));
  TEST_OK(an_alloc(rt, in_count, &out_train));
  TEST_OK(an_alloc(rt, in_count, &aux));
  TEST_OK(an_write(rt, an_at(inp, 0), x, in_count));
  float *got = test_floats(in_count), *train = test_floats(in_count);
  double *X = test_dup_double(x, in_count), *want = test_doubles(in_count);

  TEST_OK(an_maxpool_forward_infer(rt, n, c, h, w, k, stride, an_at(out, 0), an_at(inp, 0)));
  TEST_OK(an_maxpool_forward(rt, n, c, h, w, k, stride, an_at(out_train, 0), an_at(aux, 0), an_at(inp, 0)));
  TEST_OK(an_read(rt, got, an_at(out, 0), out_count));
  TEST_OK(an_read(rt, train, an_at(out_train, 0), out_count));
  ref_maxpool_forward(want, X, n, c, h, w, k, stride);
  /* x[5] = (0, 0, 0, 5) lies in one window, rows 0-2 and columns 4-6: output 2, NaN in both kernels
   * (the reference does not model NaN: that output is left out of its comparison) */
  for (size_t i = 0; i < out_count; i++) assert_int_equal(isnan(got[i]) != 0, i == 2);
  assert_true(isnan(train[2]));
  got[2] = train[2] = (float)want[2];
  assert_int_equal(check_close("max-pool inference vs reference", got, want, out_count, 0, 0), 0);
  assert_memory_equal(got, train, out_count * sizeof *got);

  const an_lrn_params p = {5, 1e-4f, 0.75f, 2.0f};
  x[5] = 1.0f;
  X[5] = 1.0;
  TEST_OK(an_write(rt, an_at(inp, 0), x, in_count));
  TEST_OK(an_lrn_forward_infer(rt, n, c, h, w, &p, an_at(out, 0), an_at(inp, 0)));
  TEST_OK(an_lrn_forward(rt, n, c, h, w, &p, an_at(out_train, 0), an_at(aux, 0), an_at(inp, 0)));
  TEST_OK(an_read(rt, got, an_at(out, 0), in_count));
  TEST_OK(an_read(rt, train, an_at(out_train, 0), in_count));
  ref_lrn_forward(want, NULL, X, n, c, h, w, p.size, p.alpha, p.beta, p.k);
  assert_int_equal(check_close("LRN inference vs reference", got, want, in_count, 1e-5, 1e-6), 0);
  assert_memory_equal(got, train, in_count * sizeof *got);

  clReleaseMemObject(aux);
  clReleaseMemObject(out_train);
  clReleaseMemObject(out);
  clReleaseMemObject(inp);
  free(want);
  free(X);
  free(train);
  free(got);
  free(x);
}

/* ---- memory ---- */

static size_t mem_size(cl_mem m) {
  size_t bytes = 0;
  assert_int_equal(clGetMemObjectInfo(m, CL_MEM_SIZE, sizeof bytes, &bytes, NULL), CL_SUCCESS);
  return bytes;
}

/* The planned figure is what was created: every buffer of the plan, by CL_MEM_SIZE, and the runtime's
 * GEMM scratch. The runtime is fresh, so the scratch is the plan's own. */
static void test_memory_plan_and_training_ratio(void **state) {
  (void)state;
  an_runtime *fresh;
  TEST_OK(an_runtime_create(NULL, &fresh));
  an_infer_memory planned;
  TEST_OK(an_infer_plan(fresh, "alexnet", 1000, 1, 224, NULL, &planned));
  an_infer *inf;
  TEST_OK(an_infer_create(fresh, "alexnet", 1000, 1, 224, NULL, &inf));
  size_t created = mem_size(inf->params) + mem_size(inf->acts) + mem_size(inf->work) + mem_size(inf->input) +
                   mem_size(inf->output);
  size_t fc = 0;
  int n_fc = 0;
  for (int i = 0; i < inf->model->n_layers; i++)
    if (inf->fc_weight[i]) fc += mem_size(inf->fc_weight[i]), n_fc++;
  assert_int_equal(n_fc, 3);
  /* activations: the largest consecutive pair, conv1's output and LRN1's, (96, 55, 55) each; nothing
   * kept for a backward pass */
  assert_int_equal(inf->act_floats, 2 * 96 * 55 * 55);
  created += fc;
  /* the Winograd convolutions' filters, transformed once (conv2's F(4x4,5x5), conv3-conv5's F(4x4,3x3)) */
  const size_t prepared = inf->prepared ? mem_size(inf->prepared) : 0;
  assert_int_equal(prepared, inf->prepared_floats * sizeof(float));
  /* per group (CO/g, CI/g) at every position (64 and 36), the rows rounded up to the project GEMM's panels
   * of 6 where it runs (the filters packed as its A) */
  const size_t panel = fresh->own_gemm ? 6 : 1;
#define ROWS(co) (((size_t)(co) + panel - 1) / panel * panel)
  assert_int_equal(inf->prepared_floats,
                   64 * 2 * ROWS(128) * 48 + 36 * (ROWS(384) * 256 + 2 * ROWS(192) * 192 + 2 * ROWS(128) * 192));
#undef ROWS
  created += prepared;
  /* no scratch at all when every GEMM of the plan runs CLBlast's direct kernel (untuned defaults) */
  const size_t temp = fresh->gemm_temp ? mem_size(fresh->gemm_temp) : 0;
  assert_int_equal(temp, fresh->gemm_temp_bytes);
  printf("alexnet batch 1 inference: planned %zu bytes; created %zu in buffers + %zu GEMM scratch\n",
         planned.total_bytes, created, temp);
  assert_int_equal(planned.total_bytes, created + temp);
  assert_int_equal(an_infer_device_bytes(inf), created + temp);
  assert_int_equal(inf->mem.params_bytes, mem_size(inf->params) + fc + prepared);
  /* weights: exactly the model's parameters (plus the last bias's padding), and the prepared filters */
  assert_true(inf->mem.params_bytes - prepared >= (size_t)60965224 * 4);
  assert_true(inf->mem.params_bytes - prepared <= (size_t)60965224 * 4 + (size_t)(4096 + 1) * 256 * 4);
  an_infer_destroy(inf);

  an_net *net;
  TEST_OK(an_net_create(fresh, "alexnet", 1000, 1, 224, &net));
  const size_t training = an_net_device_bytes(net);
  printf("alexnet batch 1: inference %.1f MiB, training %.1f MiB: %.1f %%\n", planned.total_bytes / 1048576.0,
         training / 1048576.0, 100.0 * planned.total_bytes / training);
  assert_true((double)planned.total_bytes <= 0.40 * (double)training);
  an_net_destroy(net);
  an_runtime_destroy(fresh);
}

static void test_memory_does_not_fit(void **state) {
  (void)state;
  an_infer_memory m;
  /* 32 MiB: not even alexnet-half's 56 MiB of weights */
  an_infer_options o = {.max_memory_bytes = (size_t)32 << 20, .zero_copy = -1};
  assert_int_equal(an_infer_plan(rt, "alexnet-half", 10, 4, 224, &o, &m), AN_ERR_DEVICE_MEMORY);
  printf("%s\n", an_last_error());
  assert_non_null(strstr(an_last_error(), "not even batch 1 fits"));
  /* a limit between the smallest plans (one image per im2col chunk) of batch 1 and batch 64: the error
   * names the largest batch that fits, and it does */
  an_infer_memory one, many;
  o.max_memory_bytes = 1;
  assert_int_equal(an_infer_plan(rt, "alexnet-half", 10, 1, 224, &o, &one), AN_ERR_DEVICE_MEMORY);
  assert_int_equal(an_infer_plan(rt, "alexnet-half", 10, 64, 224, &o, &many), AN_ERR_DEVICE_MEMORY);
  assert_int_equal(one.chunk_images, 1);
  assert_int_equal(many.chunk_images, 1);
  o.max_memory_bytes = (one.total_bytes + many.total_bytes) / 2;
  assert_int_equal(an_infer_plan(rt, "alexnet-half", 10, 64, 224, &o, &m), AN_ERR_DEVICE_MEMORY);
  printf("%s\n", an_last_error());
  const char *p = strstr(an_last_error(), ": batch ");
  assert_non_null(p);
  const int fits = atoi(p + 8);
  assert_true(fits >= 1 && fits < 64);
  TEST_OK(an_infer_plan(rt, "alexnet-half", 10, fits, 224, &o, &m));
  assert_true(m.total_bytes <= o.max_memory_bytes);
  assert_int_equal(an_infer_plan(rt, "alexnet-half", 10, fits + 1, 224, &o, &m), AN_ERR_DEVICE_MEMORY);
}

/* ---- files ---- */

static void write_file(const char *path, const void *bytes, size_t n) {
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(bytes, 1, n, f), n);
  assert_int_equal(fclose(f), 0);
}

/* A w x h RGB picture of stripes, different for each seed. */
static unsigned char *picture(int w, int h, int seed) {
  unsigned char *p = malloc((size_t)w * h * 3);
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++)
      for (int c = 0; c < 3; c++)
        p[((size_t)y * w + x) * 3 + c] = (unsigned char)(127 +
                                                         120 * sin(0.05 * (seed + 1) * (x + 2 * y) + c * seed));
  return p;
}

typedef struct collected {
  an_classify_result r[16];
  int n;
} collected;

static void collect(void *ctx, const an_classify_result *r) {
  collected *c = ctx;
  assert_true(c->n < 16);
  c->r[c->n++] = *r;
}

static void test_classify_mixed_files(void **state) {
  (void)state;
  const int input = 67, classes = 10;
  float *params;
  an_net *net = saved_net("alexnet-half", classes, 1, input, "mixed.safetensors", &params);
  free(params);
  char good_png[128], good_jpg[128], truncated[128], empty[128], text[128], missing[128], weights[128];
  path_in(good_png, sizeof good_png, "good.png");
  path_in(good_jpg, sizeof good_jpg, "good.jpg");
  path_in(truncated, sizeof truncated, "truncated.png");
  path_in(empty, sizeof empty, "empty.png");
  path_in(text, sizeof text, "text.jpg");
  path_in(missing, sizeof missing, "missing.png");
  path_in(weights, sizeof weights, "mixed.safetensors");
  unsigned char *a = picture(90, 70, 1);
  assert_true(stbi_write_png(good_png, 90, 70, 3, a, 90 * 3));
  write_file(good_jpg, test_jpeg_16, sizeof test_jpeg_16);
  int png_bytes = 0;
  unsigned char *png = stbi_write_png_to_mem(a, 90 * 3, 90, 70, 3, &png_bytes);
  assert_non_null(png);
  write_file(truncated, png, (size_t)png_bytes / 2);
  write_file(empty, "", 0);
  write_file(text, "this is not a picture\n", 22);
  STBIW_FREE(png);
  free(a);
  const char *files[] = {truncated, good_png, empty, text, good_jpg, missing};
  const int ok[] = {0, 1, 0, 0, 1, 0};

  an_augment aug = an_augment_default(input);
  an_data_stats stats = an_data_stats_imagenet();
  /* alone, one at a time */
  double alone[2][16];
  int top_alone[2][16];
  for (int g = 0; g < 2; g++) {
    an_infer *inf;
    TEST_OK(an_infer_create(rt, "alexnet-half", classes, 1, input, NULL, &inf));
    TEST_OK(an_infer_load(inf, weights));
    collected c = {.n = 0};
    an_classify_stats cs;
    TEST_OK(an_classify_files(inf, (const char *const[]){g ? good_jpg : good_png}, 1, &aug, &stats, 1, classes,
                              collect, &c, &cs));
    assert_int_equal(c.n, 1);
    assert_true(c.r[0].ok);
    for (int t = 0; t < classes; t++) alone[g][t] = c.r[0].prob[t], top_alone[g][t] = c.r[0].top[t];
    an_infer_destroy(inf);
  }
  /* mixed, batches of 4 (2 batches, the second padded), two slots, two decoding threads */
  an_infer *inf;
  const an_infer_options o = {.zero_copy = -1, .input_slots = 2};
  TEST_OK(an_infer_create(rt, "alexnet-half", classes, 4, input, &o, &inf));
  TEST_OK(an_infer_load(inf, weights));
  collected c = {.n = 0};
  an_classify_stats cs;
  TEST_OK(an_classify_files(inf, files, 6, &aug, &stats, 2, classes, collect, &c, &cs));
  an_infer_destroy(inf);
  assert_int_equal(c.n, 6);
  assert_int_equal(cs.images, 6);
  assert_int_equal(cs.failed, 4);
  int g = 0;
  for (int i = 0; i < 6; i++) {
    printf("  %-50s %s%s\n", c.r[i].file, c.r[i].ok ? "ok" : "error: ", c.r[i].error);
    assert_int_equal(c.r[i].index, i);
    assert_string_equal(c.r[i].file, files[i]);
    assert_int_equal(c.r[i].ok, ok[i]);
    if (!ok[i]) {
      assert_non_null(strstr(c.r[i].error, files[i])); /* the message names the file */
      continue;
    }
    assert_int_equal(c.r[i].top_k, classes);
    double sum = 0;
    for (int t = 0; t < classes; t++) {
      sum += c.r[i].prob[t];
      assert_int_equal(c.r[i].top[t], top_alone[g][t]);
      assert_true(fabs(c.r[i].prob[t] - alone[g][t]) <= 1e-6);
      if (t) assert_true(c.r[i].prob[t] <= c.r[i].prob[t - 1]);
    }
    assert_true(fabs(sum - 1.0) < 1e-9);
    g++;
  }
  an_net_destroy(net);
}

/* ---- classify against eval on a trained checkpoint ---- */

static void test_classify_agrees_with_eval(void **state) {
  (void)state;
  const int classes = 6, input = 63;
  an_synthetic_config tc = {.count = 96, .classes = classes, .side = 72, .noise = 0.1f, .seed = 11};
  an_dataset *train;
  TEST_OK(an_dataset_synthetic(&tc, &train));
  char out_dir[128], images[128];
  path_in(out_dir, sizeof out_dir, "run");
  path_in(images, sizeof images, "images");
  an_train_config cfg = {.model = "alexnet-half",
                         .train = train,
                         .batch = 8,
                         .input = input,
                         .epochs = 3,
                         .max_steps = 36,
                         .sgd = {0.02f, 0.9f, 5e-4f, 0},
                         .seed = 5,
                         .threads = 2,
                         .out_dir = out_dir};
  an_train_result tr;
  const double t0 = an_seconds();
  TEST_OK(an_train(rt, &cfg, &tr));
  printf("trained %lld steps in %.1f s, last loss %.4f\n", (long long)tr.steps_done, an_seconds() - t0,
         (double)tr.last_loss);
  char ckpt[192];
  snprintf(ckpt, sizeof ckpt, "%s/last.safetensors", out_dir);

  /* the checkpoint names its classes and its normalisation */
  an_weights_info info;
  TEST_OK(an_weights_info_read(ckpt, &info));
  assert_string_equal(info.model, "alexnet-half");
  assert_int_equal(info.classes, classes);
  assert_int_equal(info.input_hw, input);
  assert_true(info.have_norm);
  assert_int_equal(info.n_class_names, classes);
  for (int k = 0; k < classes; k++) assert_string_equal(info.class_names[k], an_dataset_class_name(train, k));
  for (int k = 0; k < 3; k++) {
    assert_true(fabsf(info.mean[k] - tr.stats.mean[k]) < 1e-6f);
    assert_true(fabsf(info.std[k] - tr.stats.std[k]) < 1e-6f);
  }

  /* one image per class, as files: eval's confusion matrix then gives each image's top-1 */
  an_synthetic_config vc = {.count = classes, .classes = classes, .side = 80, .noise = 0.2f, .seed = 99};
  an_dataset *val, *folder;
  TEST_OK(an_dataset_synthetic(&vc, &val));
  TEST_OK(an_dataset_export_folder(val, images, "png"));
  TEST_OK(an_dataset_open_folder(images, &folder));
  assert_int_equal(an_dataset_count(folder), classes);
  const char *files[16];
  char names[16][256];
  for (int i = 0; i < classes; i++) {
    an_dataset_sample_name(folder, i, names[i], sizeof names[i]);
    files[i] = names[i];
  }
  an_data_stats stats = an_data_stats_imagenet();
  memcpy(stats.mean, info.mean, sizeof stats.mean);
  memcpy(stats.std, info.std, sizeof stats.std);
  int distinct = 0, seen[16] = {0};
  for (int ten = 0; ten < 2; ten++) {
    an_augment aug = an_augment_default(input);
    aug.ten_crop = ten;
    const int crops = an_augment_crops(&aug, 0);
    an_net *net;
    TEST_OK(an_net_create(rt, "alexnet-half", classes, 4 * crops, input, &net));
    TEST_OK(an_net_load(net, ckpt, NULL));
    int64_t confusion[16 * 16] = {0};
    an_eval_result e;
    TEST_OK(an_evaluate(net, folder, &aug, &stats, 2, &e, confusion));
    an_net_destroy(net);
    assert_int_equal(e.samples, classes);

    an_infer *inf;
    TEST_OK(an_infer_create(rt, "alexnet-half", classes, 3 * crops, input, NULL, &inf));
    TEST_OK(an_infer_load(inf, ckpt));
    collected c = {.n = 0};
    an_classify_stats cs;
    TEST_OK(an_classify_files(inf, files, classes, &aug, &stats, 2, 5, collect, &c, &cs));
    an_infer_destroy(inf);
    assert_int_equal(c.n, classes);
    for (int i = 0; i < classes; i++) {
      const int label = an_dataset_label(folder, i);
      int eval_top1 = -1;
      for (int k = 0; k < classes; k++)
        if (confusion[label * classes + k]) eval_top1 = k;
      printf("  %s %s: eval top-1 %d, classify top-1 %d (%.4f)\n", ten ? "ten-crop" : "centre", files[i], eval_top1,
             c.r[i].top[0], c.r[i].prob[0]);
      assert_true(c.r[i].ok);
      assert_int_equal(c.r[i].top[0], eval_top1);
      if (!seen[eval_top1]++) distinct++;
    }
  }
  printf("  %d distinct predicted classes\n", distinct);
  assert_true(distinct >= 2); /* a model that says one class for everything would prove little */
  an_weights_info_free(&info);
  an_dataset_destroy(folder);
  an_dataset_destroy(val);
  an_dataset_destroy(train);
}

/* ---- labels ---- */

static void test_labels_file(void **state) {
  (void)state;
  char path[128];
  path_in(path, sizeof path, "labels.txt");
  write_file(path, "cat\r\ndog\nbird\n", 14);
  char **names = NULL;
  int extra = -1;
  assert_int_equal(an_labels_read(path, 10, &names, &extra), AN_ERR_ARGUMENT);
  printf("%s\n", an_last_error());
  assert_null(names);
  assert_non_null(strstr(an_last_error(), "has 3 lines"));
  assert_non_null(strstr(an_last_error(), "10 classes"));
  TEST_OK(an_labels_read(path, 3, &names, &extra));
  assert_int_equal(extra, 0);
  assert_string_equal(names[0], "cat");
  assert_string_equal(names[1], "dog");
  assert_string_equal(names[2], "bird");
  an_class_names_free(names, 3);
  TEST_OK(an_labels_read(path, 2, &names, &extra));
  assert_int_equal(extra, 1);
  an_class_names_free(names, 2);
  path_in(path, sizeof path, "no-such-labels.txt");
  assert_int_equal(an_labels_read(path, 2, &names, &extra), AN_ERR_IO);
}

/* ---- filters ---- */

/* A weights file holding only conv1's weight (OC, 3, 11, 11): kernel o is zero but for +1 in channel
 * o % 3 at row o % 11, column (o / 3) % 11, and, when o is even, -1 in channel (o + 2) % 3 there. */
static void write_conv1(const char *path, const char *model, int oc) {
  float *w = calloc((size_t)oc * 363, sizeof *w);
  for (int o = 0; o < oc; o++) {
    const size_t at = (size_t)(o % 11) * 11 + (o / 3) % 11;
    w[(size_t)o * 363 + (o % 3) * 121 + at] = 1.0f;
    if (o % 2 == 0) w[(size_t)o * 363 + ((o + 2) % 3) * 121 + at] = -1.0f;
  }
  const an_st_entry e = {"features.0.weight", AN_DTYPE_F32, 4, {oc, 3, 11, 11}, w};
  const an_st_meta m = {"model", model};
  TEST_OK(an_st_write(path, &e, 1, &m, 1));
  free(w);
}

static void check_filters(const char *model, int oc, int scale, int pad, int want_w, int want_h, int columns) {
  char weights[128], png[128];
  path_in(weights, sizeof weights, "conv1.safetensors");
  path_in(png, sizeof png, "conv1.png");
  write_conv1(weights, model, oc);
  an_image img;
  an_filters_layout L;
  TEST_OK(an_filters_render(weights, NULL, scale, pad, &img, &L));
  TEST_OK(an_image_write(png, &img));
  an_image_free(&img);
  int w = 0, h = 0, ch = 0;
  unsigned char *p = stbi_load(png, &w, &h, &ch, 3); /* (H, W, 3) */
  assert_non_null(p);
  printf("%s: %dx%d (%d columns of %dx%d kernels)\n", model, w, h, L.columns, L.grid_cols, L.grid_rows);
  assert_int_equal(w, want_w);
  assert_int_equal(h, want_h);
  assert_int_equal(L.columns, columns);
  const int per_column = oc / columns, cell = 11 * scale + pad, grid_w = L.grid_cols * cell + pad;
  assert_int_equal(p[0], 128); /* the border is background */
  for (int o = 0; o < oc; o++) {
    const int col = o / per_column, idx = o % per_column;
    const int x0 = col * (grid_w + 4 * pad) + pad + (idx % L.grid_cols) * cell,
              y0 = pad + (idx / L.grid_cols) * cell;
    /* the centre of the enlarged weight: +1 white, -1 black, 0 black (odd o: the minimum) or mid-grey
     * (even o: 127.5 rounded to even) */
    const int y = y0 + (o % 11) * scale + scale / 2, x = x0 + ((o / 3) % 11) * scale + scale / 2;
    const unsigned char *px = p + ((size_t)y * w + x) * 3;
    assert_int_equal(px[o % 3], 255);
    assert_int_equal(px[(o + 2) % 3], 0);
    assert_int_equal(px[(o + 1) % 3], o % 2 == 0 ? 128 : 0);
  }
  if (columns == 2) /* the gap between the two columns' grids is background */
    assert_int_equal(p[((size_t)(h / 2) * w + grid_w + 2 * pad) * 3], 128);
  stbi_image_free(p);
}

static void test_filters_png(void **state) {
  (void)state;
  /* alexnet: two grids of 8 x 6 kernels; cell 11·3 + 2 = 35; grid 8·35 + 2 = 282; 2·282 + 4·2 = 572 */
  check_filters("alexnet", 96, 3, 2, 572, 212, 2);
  /* alexnet-half: one grid of 8 x 6; scale 4, pad 1: cell 45, 8·45 + 1 = 361, 6·45 + 1 = 271 */
  check_filters("alexnet-half", 48, 4, 1, 361, 271, 1);
}

int main(void) {
  if (getenv("TEST_INFER_FILTER"))
    cmocka_set_test_filter(getenv("TEST_INFER_FILTER")); /* one test while iterating */
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_labels_file),
      cmocka_unit_test(test_filters_png),
      cmocka_unit_test(test_forward_only_layers),
      cmocka_unit_test(test_alexnet_half),
      cmocka_unit_test(test_alexnet_small),
      cmocka_unit_test(test_alexnet_half_batch64),
      cmocka_unit_test(test_alexnet_tv_batch1),
      cmocka_unit_test(test_memory_does_not_fit),
      cmocka_unit_test(test_classify_mixed_files),
      cmocka_unit_test(test_classify_agrees_with_eval),
      cmocka_unit_test(test_memory_plan_and_training_ratio),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
