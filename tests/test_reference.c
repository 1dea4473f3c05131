/* The plain-C reference checked on its own: every backward in ref.c against central finite differences
 * of its forward (double, small shapes, every element of every gradient), and a few forwards against
 * values worked out by hand from PyTorch's definitions. Needs no OpenCL device: the device tests trust
 * this reference, and this file is what earns it that trust.
 *
 * The scalar objective is L = Σ out ⊙ R with a fixed random R (the loss itself for softmax
 * cross-entropy), so dL/dout = R. Weight and bias gradients start from nonzero values to check they
 * accumulate; input gradients start from garbage to check they are written. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alexnet/layers.h"
#include "check.h"
#include "ref.h"

#define FD_EPS 1e-6
/* Central differences err by ~eps²·f''' (1e-12) plus rounding ~1e-16·Σ|terms|/eps (1e-8 here). */
#define FD_RTOL 1e-6
#define FD_ATOL 1e-7
/* A ReLU input closer than this to 0 could cross the kink under an eps perturbation. */
#define RELU_MARGIN 1e-4

typedef double (*objective_fn)(void *ctx);

/* Compares analytic (the reference backward) with central differences of f over every element of x. */
static int check_fd(const char *what, double *x /* (n) */, size_t n, const double *analytic /* (n) */,
                    objective_fn f, void *ctx) {
  double *numeric = test_doubles(n);
  for (size_t i = 0; i < n; i++) {
    double saved = x[i];
    x[i] = saved + FD_EPS;
    double up = f(ctx);
    x[i] = saved - FD_EPS;
    double down = f(ctx);
    x[i] = saved;
    numeric[i] = (up - down) / (2.0 * FD_EPS);
  }
  int fails = check_close_double(what, analytic, numeric, n, FD_RTOL, FD_ATOL);
  free(numeric);
  return fails;
}

static double dot(const double *a, const double *b, size_t n) {
  double s = 0.0;
  for (size_t i = 0; i < n; i++) s += a[i] * b[i];
  return s;
}

/* Nonzero starting values for an accumulated gradient; subtracted again after the backward. */
static double *prefilled(size_t n, test_rng *rng) {
  double *g = test_doubles(n);
  test_fill_uniform_double(g, n, -3.0, 3.0, rng);
  return g;
}

static void subtract(double *a, const double *b, size_t n) {
  for (size_t i = 0; i < n; i++) a[i] -= b[i];
}

static void fill_garbage(double *a, size_t n) {
  for (size_t i = 0; i < n; i++) a[i] = 1e30;
}

/* The ReLU test is only meaningful when outputs of both signs exist and none sits at the kink. */
static void assert_away_from_kink(const double *pre, size_t n) {
  size_t pos = 0, neg = 0;
  double closest = INFINITY;
  for (size_t i = 0; i < n; i++) {
    pos += pre[i] > 0.0, neg += pre[i] < 0.0;
    if (fabs(pre[i]) < closest) closest = fabs(pre[i]);
  }
  if (closest < RELU_MARGIN || pos == 0 || neg == 0)
    fail_msg("test data unsuitable for finite differences through a ReLU: closest pre-activation "
             "%.3g from 0 (margin %.3g), %zu positive, %zu negative; change the seed",
             closest, RELU_MARGIN, pos, neg);
}

/* ---- convolution ---- */

typedef struct conv_case {
  ref_conv_dims d;
  int relu;
  double *inp, *weight, *bias, *out, *r;
} conv_case;

static size_t conv_inp_n(const ref_conv_dims *d) { return (size_t)d->n * d->c * d->h * d->w; }
static size_t conv_weight_n(const ref_conv_dims *d) { return (size_t)d->oc * (d->c / d->groups) * d->kh * d->kw; }
static size_t conv_out_n(const ref_conv_dims *d) { return (size_t)d->n * d->oc * d->oh * d->ow; }

static double conv_objective(void *ctx) {
  conv_case *cc = ctx;
  ref_conv_forward(cc->out, cc->inp, cc->weight, cc->bias, &cc->d, cc->relu);
  return dot(cc->out, cc->r, conv_out_n(&cc->d));
}

static void run_conv_fd(int n, int c, int h, int w, int oc, int k, int stride, int pad, int groups, int relu,
                        uint64_t seed) {
  conv_case cc = {ref_conv_dims_make(n, c, h, w, oc, k, stride, pad, groups), relu, 0, 0, 0, 0, 0};
  const ref_conv_dims *d = &cc.d;
  printf("conv N=%d C=%d %dx%d -> OC=%d %dx%d, k=%d stride=%d pad=%d groups=%d relu=%d\n", n, c, h, w, oc, d->oh,
         d->ow, k, stride, pad, groups, relu);
  size_t n_inp = conv_inp_n(d), n_w = conv_weight_n(d), n_out = conv_out_n(d);
  test_rng rng = test_rng_seeded(seed);
  cc.inp = test_doubles(n_inp), cc.weight = test_doubles(n_w), cc.bias = test_doubles(oc);
  cc.out = test_doubles(n_out), cc.r = test_doubles(n_out);
  test_fill_uniform_double(cc.inp, n_inp, -1.0, 1.0, &rng);
  test_fill_uniform_double(cc.weight, n_w, -0.5, 0.5, &rng);
  test_fill_uniform_double(cc.bias, oc, -0.2, 0.2, &rng);
  test_fill_uniform_double(cc.r, n_out, -1.0, 1.0, &rng);
  if (relu) {
    ref_conv_forward(cc.out, cc.inp, cc.weight, cc.bias, d, 0);
    assert_away_from_kink(cc.out, n_out);
  }
  ref_conv_forward(cc.out, cc.inp, cc.weight, cc.bias, d, relu);

  double *dinp = test_doubles(n_inp);
  double *dweight = prefilled(n_w, &rng), *dweight0 = test_doubles(n_w);
  double *dbias = prefilled(oc, &rng), *dbias0 = test_doubles(oc);
  memcpy(dweight0, dweight, sizeof(double) * n_w);
  memcpy(dbias0, dbias, sizeof(double) * oc);
  fill_garbage(dinp, n_inp);
  ref_conv_backward(dinp, dweight, dbias, cc.r, cc.out, cc.inp, cc.weight, d, relu);
  subtract(dweight, dweight0, n_w);
  subtract(dbias, dbias0, oc);

  int fails = 0;
  fails += check_fd("conv dinp", cc.inp, n_inp, dinp, conv_objective, &cc);
  fails += check_fd("conv dweight", cc.weight, n_w, dweight, conv_objective, &cc);
  fails += check_fd("conv dbias", cc.bias, oc, dbias, conv_objective, &cc);

  /* dinp NULL skips the input gradient and leaves the others the same */
  double *dweight2 = test_doubles(n_w), *dbias2 = test_doubles(oc);
  ref_conv_backward(NULL, dweight2, dbias2, cc.r, cc.out, cc.inp, cc.weight, d, relu);
  fails += check_close_double("conv dweight, dinp NULL", dweight2, dweight, n_w, 1e-12, 1e-12);
  fails += check_close_double("conv dbias, dinp NULL", dbias2, dbias, oc, 1e-12, 1e-12);

  free(dweight2), free(dbias2);
  free(dinp), free(dweight), free(dweight0), free(dbias), free(dbias0);
  free(cc.inp), free(cc.weight), free(cc.bias), free(cc.out), free(cc.r);
  assert_int_equal(fails, 0);
}

static void test_conv_fd_plain(void **state) {
  (void)state;
  run_conv_fd(1, 3, 7, 9, 4, 3, 1, 0, 1, 0, 11);
}
static void test_conv_fd_pad1_batch2(void **state) {
  (void)state;
  run_conv_fd(2, 3, 6, 5, 2, 3, 1, 1, 1, 0, 12);
}
static void test_conv_fd_groups2_pad2_relu(void **state) {
  (void)state;
  run_conv_fd(2, 4, 8, 7, 6, 3, 1, 2, 2, 1, 18);
}
static void test_conv_fd_stride4_pad2(void **state) {
  (void)state;
  run_conv_fd(2, 2, 11, 13, 4, 5, 4, 2, 1, 0, 14);
}
static void test_conv_fd_stride4_gaps_groups2_relu(void **state) {
  (void)state; /* k=3 < stride=4: some inputs reach no output, their gradient is 0 */
  run_conv_fd(1, 4, 9, 10, 2, 3, 4, 0, 2, 1, 15);
}
static void test_conv_fd_1x1_relu(void **state) {
  (void)state;
  run_conv_fd(2, 3, 5, 6, 3, 1, 1, 0, 1, 1, 16);
}
static void test_conv_fd_alexnet_like_11x11(void **state) {
  (void)state; /* conv1's kernel, stride and pad on a small image */
  run_conv_fd(1, 3, 19, 17, 2, 11, 4, 2, 1, 1, 17);
}

/* Forward values by hand: a 2x2 box filter, and groups=2 keeping channels apart. */
static void test_conv_forward_by_hand(void **state) {
  (void)state;
  ref_conv_dims d = ref_conv_dims_make(1, 1, 3, 3, 1, 2, 1, 0, 1);
  assert_int_equal(d.oh, 2);
  assert_int_equal(d.ow, 2);
  double x[9] = {0, 1, 2, 3, 4, 5, 6, 7, 8}, wt[4] = {1, 1, 1, 1}, b[1] = {0.5}, out[4];
  ref_conv_forward(out, x, wt, b, &d, 0);
  double want[4] = {8.5, 12.5, 20.5, 24.5};
  assert_int_equal(check_close_double("box filter", out, want, 4, 0, 0), 0);

  /* pad 1, stride 2 on 3x3: corners see 2x2 of the input */
  d = ref_conv_dims_make(1, 1, 3, 3, 1, 3, 2, 1, 1);
  assert_int_equal(d.oh, 2);
  double w9[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1}, b0[1] = {0};
  ref_conv_forward(out, x, w9, b0, &d, 0);
  double want_pad[4] = {0 + 1 + 3 + 4, 1 + 2 + 4 + 5, 3 + 4 + 6 + 7, 4 + 5 + 7 + 8};
  assert_int_equal(check_close_double("pad 1 stride 2", out, want_pad, 4, 0, 0), 0);

  /* groups 2, 1x1: output channel g sees input channel g only */
  d = ref_conv_dims_make(1, 2, 1, 2, 2, 1, 1, 0, 2);
  double x2[4] = {1, 2, 10, 20}, w2[2] = {2, 3}, b2[2] = {0, -1}, out2[4];
  ref_conv_forward(out2, x2, w2, b2, &d, 0);
  double want_g[4] = {2, 4, 29, 59};
  assert_int_equal(check_close_double("groups 2", out2, want_g, 4, 0, 0), 0);
  ref_conv_forward(out2, x2, w2, b2, &d, 1); /* ReLU keeps the positive values unchanged */
  assert_int_equal(check_close_double("groups 2 relu", out2, want_g, 4, 0, 0), 0);
}

/* ---- fully connected ---- */

typedef struct fc_case {
  int n, in, out_features, relu;
  double *inp, *weight, *bias, *out, *r;
} fc_case;

static double fc_objective(void *ctx) {
  fc_case *fc = ctx;
  ref_fc_forward(fc->out, fc->inp, fc->weight, fc->bias, fc->n, fc->in, fc->out_features, fc->relu);
  return dot(fc->out, fc->r, (size_t)fc->n * fc->out_features);
}

static void run_fc_fd(int n, int in, int out_features, int relu, uint64_t seed) {
  printf("fc N=%d IN=%d OUT=%d relu=%d\n", n, in, out_features, relu);
  fc_case fc = {n, in, out_features, relu, 0, 0, 0, 0, 0};
  size_t n_inp = (size_t)n * in, n_w = (size_t)out_features * in, n_out = (size_t)n * out_features;
  test_rng rng = test_rng_seeded(seed);
  fc.inp = test_doubles(n_inp), fc.weight = test_doubles(n_w), fc.bias = test_doubles(out_features);
  fc.out = test_doubles(n_out), fc.r = test_doubles(n_out);
  test_fill_uniform_double(fc.inp, n_inp, -1.0, 1.0, &rng);
  test_fill_uniform_double(fc.weight, n_w, -0.5, 0.5, &rng);
  test_fill_uniform_double(fc.bias, out_features, -0.2, 0.2, &rng);
  test_fill_uniform_double(fc.r, n_out, -1.0, 1.0, &rng);
  if (relu) {
    ref_fc_forward(fc.out, fc.inp, fc.weight, fc.bias, n, in, out_features, 0);
    assert_away_from_kink(fc.out, n_out);
  }
  ref_fc_forward(fc.out, fc.inp, fc.weight, fc.bias, n, in, out_features, relu);

  double *dinp = test_doubles(n_inp);
  double *dweight = prefilled(n_w, &rng), *dweight0 = test_doubles(n_w);
  double *dbias = prefilled(out_features, &rng), *dbias0 = test_doubles(out_features);
  memcpy(dweight0, dweight, sizeof(double) * n_w);
  memcpy(dbias0, dbias, sizeof(double) * out_features);
  fill_garbage(dinp, n_inp);
  ref_fc_backward(dinp, dweight, dbias, fc.r, fc.out, fc.inp, fc.weight, n, in, out_features, relu);
  subtract(dweight, dweight0, n_w);
  subtract(dbias, dbias0, out_features);

  int fails = 0;
  fails += check_fd("fc dinp", fc.inp, n_inp, dinp, fc_objective, &fc);
  fails += check_fd("fc dweight", fc.weight, n_w, dweight, fc_objective, &fc);
  fails += check_fd("fc dbias", fc.bias, out_features, dbias, fc_objective, &fc);
  free(dinp), free(dweight), free(dweight0), free(dbias), free(dbias0);
  free(fc.inp), free(fc.weight), free(fc.bias), free(fc.out), free(fc.r);
  assert_int_equal(fails, 0);
}

static void test_fc_fd(void **state) {
  (void)state;
  run_fc_fd(3, 7, 5, 0, 21);
}
static void test_fc_fd_relu(void **state) {
  (void)state;
  run_fc_fd(4, 9, 6, 1, 22);
}
static void test_fc_fd_batch1_relu(void **state) {
  (void)state;
  run_fc_fd(1, 13, 4, 1, 23);
}

/* ---- local response normalisation ---- */

typedef struct lrn_case {
  int n, c, h, w, size;
  double alpha, beta, k;
  double *inp, *out, *r;
} lrn_case;

static double lrn_objective(void *ctx) {
  lrn_case *lc = ctx;
  ref_lrn_forward(lc->out, NULL, lc->inp, lc->n, lc->c, lc->h, lc->w, lc->size, lc->alpha, lc->beta, lc->k);
  return dot(lc->out, lc->r, (size_t)lc->n * lc->c * lc->h * lc->w);
}

static void run_lrn_fd(int n, int c, int h, int w, int size, double alpha, double beta, double k, double range,
                       uint64_t seed) {
  printf("lrn (%d,%d,%d,%d) size=%d alpha=%g beta=%g k=%g, inputs in ±%g\n", n, c, h, w, size, alpha, beta, k,
         range);
  lrn_case lc = {n, c, h, w, size, alpha, beta, k, 0, 0, 0};
  size_t count = (size_t)n * c * h * w;
  test_rng rng = test_rng_seeded(seed);
  lc.inp = test_doubles(count), lc.out = test_doubles(count), lc.r = test_doubles(count);
  test_fill_uniform_double(lc.inp, count, -range, range, &rng);
  test_fill_uniform_double(lc.r, count, -1.0, 1.0, &rng);
  double *dinp = test_doubles(count);
  fill_garbage(dinp, count);
  ref_lrn_backward(dinp, lc.r, lc.inp, n, c, h, w, size, alpha, beta, k);
  int fails = check_fd("lrn dinp", lc.inp, count, dinp, lrn_objective, &lc);

  /* the scale output is what the forward divided by */
  double *scale = test_doubles(count);
  ref_lrn_forward(lc.out, scale, lc.inp, n, c, h, w, size, alpha, beta, k);
  double *recon = test_doubles(count);
  for (size_t i = 0; i < count; i++) recon[i] = lc.inp[i] * pow(scale[i], -beta);
  fails += check_close_double("lrn out = x·scale^-beta", lc.out, recon, count, 1e-15, 0);
  free(scale), free(recon), free(dinp), free(lc.inp), free(lc.out), free(lc.r);
  assert_int_equal(fails, 0);
}

static void test_lrn_fd_size5(void **state) {
  (void)state; /* a large alpha, so that the cross-channel term is as large as the direct one */
  run_lrn_fd(2, 7, 3, 4, 5, 0.8, 0.75, 2.0, 2.0, 31);
}
static void test_lrn_fd_size4_even(void **state) {
  (void)state;
  run_lrn_fd(1, 6, 2, 3, 4, 0.8, 0.75, 2.0, 2.0, 32);
}
static void test_lrn_fd_window_wider_than_channels(void **state) {
  (void)state;
  run_lrn_fd(2, 3, 2, 2, 5, 1.5, 0.6, 1.0, 1.5, 33);
}
static void test_lrn_fd_size1(void **state) {
  (void)state;
  run_lrn_fd(1, 4, 3, 2, 1, 0.5, 0.75, 1.0, 2.0, 34);
}
static void test_lrn_fd_alexnet_params(void **state) {
  (void)state; /* the paper's constants on activations of ReLU size */
  run_lrn_fd(1, 9, 3, 3, 5, 1e-4, 0.75, 2.0, 20.0, 35);
}

/* size 2 on channels [1,2,3], alpha = beta = k = 1: PyTorch pads one channel in front, none behind,
 * so channel c sums channels c-1 and c, and divides by size = 2 even at the edge. */
static void test_lrn_forward_by_hand(void **state) {
  (void)state;
  double x[3] = {1, 2, 3}, out[3], scale[3];
  ref_lrn_forward(out, scale, x, 1, 3, 1, 1, 2, 1.0, 1.0, 1.0);
  double want_scale[3] = {1 + 1.0 / 2, 1 + 5.0 / 2, 1 + 13.0 / 2};
  double want[3] = {1 / 1.5, 2 / 3.5, 3 / 7.5};
  assert_int_equal(check_close_double("lrn scale by hand", scale, want_scale, 3, 1e-15, 0), 0);
  assert_int_equal(check_close_double("lrn out by hand", out, want, 3, 1e-15, 0), 0);
}

/* ---- max-pool ---- */

typedef struct maxpool_case {
  int n, c, h, w, k, stride, oh, ow;
  double *inp, *out, *r;
} maxpool_case;

static double maxpool_objective(void *ctx) {
  maxpool_case *mc = ctx;
  ref_maxpool_forward(mc->out, mc->inp, mc->n, mc->c, mc->h, mc->w, mc->k, mc->stride);
  return dot(mc->out, mc->r, (size_t)mc->n * mc->c * mc->oh * mc->ow);
}

static void run_maxpool_fd(int n, int c, int h, int w, int k, int stride, uint64_t seed) {
  maxpool_case mc = {n, c, h, w, k, stride, (h - k) / stride + 1, (w - k) / stride + 1, 0, 0, 0};
  printf("maxpool (%d,%d,%d,%d) k=%d stride=%d -> %dx%d\n", n, c, h, w, k, stride, mc.oh, mc.ow);
  size_t count = (size_t)n * c * h * w, n_out = (size_t)n * c * mc.oh * mc.ow;
  test_rng rng = test_rng_seeded(seed);
  float *distinct = test_floats(count);
  test_fill_distinct(distinct, count, &rng); /* gaps of 2/count ≫ eps: no window changes its max */
  mc.inp = test_dup_double(distinct, count);
  mc.out = test_doubles(n_out), mc.r = test_doubles(n_out);
  test_fill_uniform_double(mc.r, n_out, -1.0, 1.0, &rng);
  double *dinp = test_doubles(count);
  fill_garbage(dinp, count);
  ref_maxpool_backward(dinp, mc.r, mc.inp, n, c, h, w, k, stride);
  int fails = check_fd("maxpool dinp", mc.inp, count, dinp, maxpool_objective, &mc);
  free(distinct), free(dinp), free(mc.inp), free(mc.out), free(mc.r);
  assert_int_equal(fails, 0);
}

static void test_maxpool_fd_3_2(void **state) {
  (void)state;
  run_maxpool_fd(2, 3, 7, 9, 3, 2, 41);
}
static void test_maxpool_fd_floor_mode(void **state) {
  (void)state; /* 8 = 2·3 + 2: the last row and column belong to no window */
  run_maxpool_fd(2, 2, 8, 8, 3, 2, 42);
}
static void test_maxpool_fd_2_2(void **state) {
  (void)state;
  run_maxpool_fd(1, 2, 6, 7, 2, 2, 43);
}
static void test_maxpool_fd_overlap_stride1(void **state) {
  (void)state;
  run_maxpool_fd(1, 2, 5, 5, 3, 1, 44);
}

/* Ties: all-equal 2x2 windows, stride 1 on 3x3; each window's gradient goes to its top-left. */
static void test_maxpool_ties_by_hand(void **state) {
  (void)state;
  double x[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1}, dout[4] = {1, 10, 100, 1000}, dinp[9], out[4];
  ref_maxpool_forward(out, x, 1, 1, 3, 3, 2, 1);
  double want_out[4] = {1, 1, 1, 1};
  assert_int_equal(check_close_double("maxpool ties out", out, want_out, 4, 0, 0), 0);
  ref_maxpool_backward(dinp, dout, x, 1, 1, 3, 3, 2, 1);
  double want[9] = {1, 10, 0, 100, 1000, 0, 0, 0, 0};
  assert_int_equal(check_close_double("maxpool ties dinp", dinp, want, 9, 0, 0), 0);
  /* a later equal value does not take over, a strictly larger one does */
  double d1[1] = {1};
  double y2[4] = {5, 3, 5, 5}, dy2[4];
  ref_maxpool_backward(dy2, d1, y2, 1, 1, 2, 2, 2, 1);
  double want2[4] = {1, 0, 0, 0};
  assert_int_equal(check_close_double("maxpool first of equal maxima", dy2, want2, 4, 0, 0), 0);
  double y3[4] = {5, 3, 5, 6}, dy3[4];
  ref_maxpool_backward(dy3, d1, y3, 1, 1, 2, 2, 2, 1);
  double want3[4] = {0, 0, 0, 1};
  assert_int_equal(check_close_double("maxpool strictly larger", dy3, want3, 4, 0, 0), 0);
}

/* ---- adaptive average pool ---- */

typedef struct avgpool_case {
  int n, c, h, w, oh, ow;
  double *inp, *out, *r;
} avgpool_case;

static double avgpool_objective(void *ctx) {
  avgpool_case *ac = ctx;
  ref_avgpool_forward(ac->out, ac->inp, ac->n, ac->c, ac->h, ac->w, ac->oh, ac->ow);
  return dot(ac->out, ac->r, (size_t)ac->n * ac->c * ac->oh * ac->ow);
}

static void run_avgpool_fd(int n, int c, int h, int w, int oh, int ow, uint64_t seed) {
  printf("avgpool (%d,%d,%d,%d) -> %dx%d\n", n, c, h, w, oh, ow);
  avgpool_case ac = {n, c, h, w, oh, ow, 0, 0, 0};
  size_t count = (size_t)n * c * h * w, n_out = (size_t)n * c * oh * ow;
  test_rng rng = test_rng_seeded(seed);
  ac.inp = test_doubles(count), ac.out = test_doubles(n_out), ac.r = test_doubles(n_out);
  test_fill_uniform_double(ac.inp, count, -1.0, 1.0, &rng);
  test_fill_uniform_double(ac.r, n_out, -1.0, 1.0, &rng);
  double *dinp = test_doubles(count);
  fill_garbage(dinp, count);
  ref_avgpool_backward(dinp, ac.r, n, c, h, w, oh, ow);
  int fails = check_fd("avgpool dinp", ac.inp, count, dinp, avgpool_objective, &ac);
  free(dinp), free(ac.inp), free(ac.out), free(ac.r);
  assert_int_equal(fails, 0);
}

static void test_avgpool_fd_5_to_3(void **state) {
  (void)state;
  run_avgpool_fd(2, 3, 5, 5, 3, 3, 51);
}
static void test_avgpool_fd_4_to_6(void **state) {
  (void)state; /* upsampling: windows of one element, some shared */
  run_avgpool_fd(1, 2, 4, 4, 6, 6, 52);
}
static void test_avgpool_fd_nonsquare(void **state) {
  (void)state;
  run_avgpool_fd(1, 2, 7, 5, 3, 2, 53);
}
static void test_avgpool_fd_13_to_6(void **state) {
  (void)state;
  run_avgpool_fd(1, 1, 13, 13, 6, 6, 54);
}

/* PyTorch's adaptive_avg_pool1d: [0..4] → 3 is [0.5, 2, 3.5]; [0..3] → 6 is [0, .5, 1, 2, 2.5, 3]. */
static void test_avgpool_bounds_by_hand(void **state) {
  (void)state;
  double x5[5] = {0, 1, 2, 3, 4}, out3[3], want3[3] = {0.5, 2.0, 3.5};
  ref_avgpool_forward(out3, x5, 1, 1, 1, 5, 1, 3);
  assert_int_equal(check_close_double("avgpool 5->3", out3, want3, 3, 1e-15, 0), 0);
  double x4[4] = {0, 1, 2, 3}, out6[6], want6[6] = {0, 0.5, 1, 2, 2.5, 3};
  ref_avgpool_forward(out6, x4, 1, 1, 1, 4, 1, 6);
  assert_int_equal(check_close_double("avgpool 4->6", out6, want6, 6, 1e-15, 0), 0);
  double x6[6] = {1, 2, 3, 4, 5, 6}, same[6]; /* 6 -> 6 is the identity */
  ref_avgpool_forward(same, x6, 1, 1, 2, 3, 2, 3);
  assert_int_equal(check_close_double("avgpool identity", same, x6, 6, 0, 0), 0);
}

/* ---- dropout ---- */

typedef struct dropout_case {
  size_t count;
  float p;
  uint64_t key;
  double *inp, *out, *r;
} dropout_case;

static double dropout_objective(void *ctx) {
  dropout_case *dc = ctx;
  ref_dropout_forward(dc->out, dc->inp, dc->count, dc->p, dc->key, 0);
  return dot(dc->out, dc->r, dc->count);
}

static void test_dropout_fd_and_keep_fraction(void **state) {
  (void)state;
  dropout_case dc = {1000, 0.3f, an_dropout_key(7, 3, 1), 0, 0, 0};
  test_rng rng = test_rng_seeded(61);
  dc.inp = test_doubles(dc.count), dc.out = test_doubles(dc.count), dc.r = test_doubles(dc.count);
  test_fill_uniform_double(dc.inp, dc.count, -1.0, 1.0, &rng);
  test_fill_uniform_double(dc.r, dc.count, -1.0, 1.0, &rng);
  double *dinp = test_doubles(dc.count);
  ref_dropout_backward(dinp, dc.r, dc.count, dc.p, dc.key, 0);
  int fails = check_fd("dropout dinp", dc.inp, dc.count, dinp, dropout_objective, &dc);
  size_t kept = ref_dropout_forward(dc.out, dc.inp, dc.count, dc.p, dc.key, 0);
  double frac = (double)kept / (double)dc.count; /* 1 - p = 0.7, sd 0.0145 */
  printf("  dropout p=%.2f kept %zu of %zu (%.3f)\n", dc.p, kept, dc.count, frac);
  assert_true(fabs(frac - 0.7) < 0.07);
  for (size_t i = 0; i < dc.count; i++) {
    float u = an_dropout_uniform(dc.key, i);
    if (!(u >= 0.0f && u < 1.0f)) fail_msg("an_dropout_uniform(key, %zu) = %g, not in [0, 1)", i, u);
  }
  free(dinp), free(dc.inp), free(dc.out), free(dc.r);
  assert_int_equal(fails, 0);
}

/* ---- softmax cross-entropy ---- */

typedef struct xent_case {
  int n, classes;
  const int *labels;
  double *logits;
} xent_case;

static double xent_objective(void *ctx) {
  xent_case *xc = ctx;
  return ref_softmax_xent(NULL, NULL, xc->logits, xc->labels, xc->n, xc->classes);
}

static void run_xent_fd(int n, int classes, double range, uint64_t seed) {
  printf("softmax xent N=%d K=%d logits in ±%g\n", n, classes, range);
  test_rng rng = test_rng_seeded(seed);
  size_t count = (size_t)n * classes;
  int *labels = malloc(sizeof(int) * (size_t)n);
  assert_non_null(labels);
  for (int b = 0; b < n; b++) labels[b] = test_rng_below(&rng, classes);
  xent_case xc = {n, classes, labels, test_doubles(count)};
  test_fill_uniform_double(xc.logits, count, -range, range, &rng);
  double *dlogits = test_doubles(count), *per_sample = test_doubles((size_t)n);
  fill_garbage(dlogits, count);
  double loss = ref_softmax_xent(dlogits, per_sample, xc.logits, labels, n, classes);
  int fails = check_fd("xent dlogits", xc.logits, count, dlogits, xent_objective, &xc);
  double mean = 0.0;
  for (int b = 0; b < n; b++) mean += per_sample[b] / n;
  fails += check_close_double("xent loss = mean per_sample", &loss, &mean, 1, 1e-15, 0);
  free(dlogits), free(per_sample), free(xc.logits), free(labels);
  assert_int_equal(fails, 0);
}

static void test_xent_fd(void **state) {
  (void)state;
  run_xent_fd(3, 7, 3.0, 71);
}
static void test_xent_fd_batch1(void **state) {
  (void)state;
  run_xent_fd(1, 4, 1.0, 72);
}
static void test_xent_fd_large_logits(void **state) {
  (void)state; /* exp would overflow without subtracting the max */
  run_xent_fd(2, 5, 800.0, 73);
}

static void test_xent_by_hand(void **state) {
  (void)state;
  double logits[2] = {0.0, 0.0}, dlogits[2];
  int label = 0;
  double loss = ref_softmax_xent(dlogits, NULL, logits, &label, 1, 2);
  double want_loss = log(2.0), want_d[2] = {-0.5, 0.5};
  assert_int_equal(check_close_double("xent loss by hand", &loss, &want_loss, 1, 1e-15, 0), 0);
  assert_int_equal(check_close_double("xent dlogits by hand", dlogits, want_d, 2, 1e-15, 0), 0);
}

/* ---- SGD ---- */

/* PyTorch: d_p = g + wd·w; buf = momentum·buf + d_p (buf = d_p on the first step, the same from 0);
 * w -= lr·buf. */
static void test_sgd_by_hand(void **state) {
  (void)state;
  double w[2] = {1.0, -2.0}, g[2] = {0.5, 0.25}, v[2] = {0.2, 0.0};
  ref_sgd_update(w, g, v, 2, 0.01, 0.9, 0.1);
  double want_v[2] = {0.9 * 0.2 + 0.5 + 0.1 * 1.0, 0.25 + 0.1 * -2.0};
  double want_w[2] = {1.0 - 0.01 * want_v[0], -2.0 - 0.01 * want_v[1]};
  assert_int_equal(check_close_double("sgd velocity by hand", v, want_v, 2, 1e-15, 0), 0);
  assert_int_equal(check_close_double("sgd weight by hand", w, want_w, 2, 1e-15, 0), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_conv_forward_by_hand),
      cmocka_unit_test(test_conv_fd_plain),
      cmocka_unit_test(test_conv_fd_pad1_batch2),
      cmocka_unit_test(test_conv_fd_groups2_pad2_relu),
      cmocka_unit_test(test_conv_fd_stride4_pad2),
      cmocka_unit_test(test_conv_fd_stride4_gaps_groups2_relu),
      cmocka_unit_test(test_conv_fd_1x1_relu),
      cmocka_unit_test(test_conv_fd_alexnet_like_11x11),
      cmocka_unit_test(test_fc_fd),
      cmocka_unit_test(test_fc_fd_relu),
      cmocka_unit_test(test_fc_fd_batch1_relu),
      cmocka_unit_test(test_lrn_forward_by_hand),
      cmocka_unit_test(test_lrn_fd_size5),
      cmocka_unit_test(test_lrn_fd_size4_even),
      cmocka_unit_test(test_lrn_fd_window_wider_than_channels),
      cmocka_unit_test(test_lrn_fd_size1),
      cmocka_unit_test(test_lrn_fd_alexnet_params),
      cmocka_unit_test(test_maxpool_ties_by_hand),
      cmocka_unit_test(test_maxpool_fd_3_2),
      cmocka_unit_test(test_maxpool_fd_floor_mode),
      cmocka_unit_test(test_maxpool_fd_2_2),
      cmocka_unit_test(test_maxpool_fd_overlap_stride1),
      cmocka_unit_test(test_avgpool_bounds_by_hand),
      cmocka_unit_test(test_avgpool_fd_5_to_3),
      cmocka_unit_test(test_avgpool_fd_4_to_6),
      cmocka_unit_test(test_avgpool_fd_nonsquare),
      cmocka_unit_test(test_avgpool_fd_13_to_6),
      cmocka_unit_test(test_dropout_fd_and_keep_fraction),
      cmocka_unit_test(test_xent_by_hand),
      cmocka_unit_test(test_xent_fd),
      cmocka_unit_test(test_xent_fd_batch1),
      cmocka_unit_test(test_xent_fd_large_logits),
      cmocka_unit_test(test_sgd_by_hand),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
