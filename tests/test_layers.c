/* Every device layer of layers.h against the plain-C reference (ref.c, itself checked against finite
 * differences by test_reference.c): the forward, then every gradient of the backward (dinp, dweight,
 * dbias), on AlexNet's own shapes and on small odd ones.
 *
 * How the data are laid out, and why:
 * - weight and bias gradients start from nonzero values, so a backward that assigns instead of
 *   accumulating fails; input gradients start from garbage, so one that accumulates fails;
 * - most cases put all their tensors in one device buffer at odd offsets, with gaps filled with a
 *   sentinel that is checked afterwards: a kernel that ignores an offset, or writes past its tensor,
 *   fails; the others give each tensor a buffer of its own (offset 0);
 * - with a fused ReLU the reference backward takes the device's forward output as its mask, so that an
 *   output rounded to the other side of 0 does not count as a mismatch in the gradients.
 * A missing OpenCL device fails the whole suite (group setup), it never skips. */
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
#include "alexnet/tune.h"
#include "check.h"
#include "ref.h"
#include "../src/gemm/gemm.h" /* an_panel_pack_host: the packed fully connected weight's layout */

/* Forward: float accumulation of at most a few thousand products, against max|want|. */
#define FWD_RTOL 1e-4
#define FWD_ATOL 1e-5
/* Gradients: reductions over up to 6050 terms (conv1's dweight, N·OH·OW) or 4096 (fc6's dinp); the
 * worst seen on PoCL is 2e-6 of max|want|, so 1e-4 leaves a margin for other devices' GEMMs. */
#define GRAD_RTOL 1e-4
#define GRAD_ATOL 1e-5
/* Elementwise layers (dropout, SGD, max-pool routing): only float rounding of one or two operations. */
#define EXACT_RTOL 1e-6
#define EXACT_ATOL 1e-7

#define SENTINEL 12345.25f
#define GAP 13         /* floats of sentinel before every tensor in a shared buffer: offsets are odd */
#define MAX_TENSORS 16 /* per arena */
/* What an input gradient holds before the backward writes it, and what a tensor or workspace of its own
 * buffer holds before a kernel writes it: NaN, so that a kernel that reads it (0·y in a GEMV with beta 0)
 * shows. Written from the host, not left as the device gives it: PoCL does not zero new buffers, and
 * Oclgrind 21.10's uninitialized-value check reported a fresh buffer's values, read only after the
 * kernels wrote them, as uninitialized when the test before had released buffers of another size (the
 * 5x5 Winograd case after the 3x3 one; either alone ran clean). */
#define GARBAGE NAN

/* ---- device tensors ---- */

/* Tensors of one test. shared: one buffer, each tensor GAP floats after the previous one, the rest
 * sentinel; otherwise a buffer per tensor at offset 0. */
typedef struct arena {
  an_runtime *rt;
  int shared;
  cl_mem mem;  /* shared */
  float *host; /* shared: the buffer's host copy, written whole at every put (Oclgrind 21.10's
                * uninitialized-value check forgets the rest of a buffer on a write at an offset) */
  size_t cap, used;
  size_t off[MAX_TENSORS], count[MAX_TENSORS];
  cl_mem own[MAX_TENSORS]; /* not shared */
  int n;
} arena;

static void arena_open(arena *a, an_runtime *rt, int shared, size_t floats, int tensors) {
  memset(a, 0, sizeof(*a));
  a->rt = rt;
  a->shared = shared;
  if (shared) {
    a->cap = floats + (size_t)(tensors + 1) * GAP;
    TEST_OK(an_alloc(rt, a->cap, &a->mem));
    a->host = test_floats(a->cap);
    for (size_t i = 0; i < a->cap; i++) a->host[i] = SENTINEL;
    TEST_OK(an_write(rt, an_at(a->mem, 0), a->host, a->cap));
  }
}

static an_buf arena_take(arena *a, size_t count) {
  assert_true(a->n < MAX_TENSORS);
  if (!a->shared) {
    TEST_OK(an_alloc(a->rt, count ? count : 1, &a->own[a->n]));
    a->off[a->n] = 0, a->count[a->n] = count;
    float *garbage = test_floats(count ? count : 1); /* written whole: see GARBAGE */
    for (size_t i = 0; i < (count ? count : 1); i++) garbage[i] = GARBAGE;
    TEST_OK(an_write(a->rt, an_at(a->own[a->n], 0), garbage, count ? count : 1));
    free(garbage);
    return an_at(a->own[a->n++], 0);
  }
  a->used += GAP;
  if (a->used + count > a->cap) fail_msg("arena of %zu floats is too small (test bug)", a->cap);
  a->off[a->n] = a->used, a->count[a->n++] = count;
  an_buf b = an_at(a->mem, a->used);
  a->used += count;
  return b;
}

static an_buf arena_put(arena *a, const float *host, size_t count) {
  an_buf b = arena_take(a, count);
  if (!a->shared) {
    TEST_OK(an_write(a->rt, b, host, count));
    return b;
  }
  memcpy(a->host + b.off, host, count * sizeof *host);
  TEST_OK(an_write(a->rt, an_at(a->mem, 0), a->host, a->cap));
  return b;
}

/* written from the host, not with an_fill: Oclgrind's uninitialized-value check does not see fills */
static an_buf arena_filled(arena *a, float value, size_t count) {
  float *values = test_floats(count ? count : 1);
  for (size_t i = 0; i < count; i++) values[i] = value;
  an_buf b = arena_put(a, values, count);
  free(values);
  return b;
}

static float *download(an_runtime *rt, an_buf b, size_t count) {
  float *host = test_floats(count);
  TEST_OK(an_read(rt, host, b, count));
  return host;
}

/* Every float of a shared buffer outside the tensors must still be the sentinel. */
static int arena_check_gaps(arena *a) {
  if (!a->shared) return 0;
  float *all = download(a->rt, an_at(a->mem, 0), a->cap);
  size_t bad = 0, first = 0;
  size_t pos = 0;
  for (int t = 0; t <= a->n; t++) {
    size_t end = t < a->n ? a->off[t] : a->cap;
    for (size_t i = pos; i < end; i++)
      if (all[i] != SENTINEL && bad++ == 0) first = i;
    if (t < a->n) pos = a->off[t] + a->count[t];
  }
  if (bad)
    printf("  gaps between tensors: %zu floats overwritten, first at buffer offset %zu (%g)  FAIL\n", bad, first,
           (double)all[first]);
  else printf("  gaps between tensors: untouched  PASS\n");
  free(all);
  return bad ? 1 : 0;
}

static void arena_close(arena *a) {
  if (a->mem) clReleaseMemObject(a->mem);
  free(a->host);
  for (int t = 0; t < a->n; t++)
    if (a->own[t]) clReleaseMemObject(a->own[t]);
  memset(a, 0, sizeof(*a));
}

static void fill_weights(float *w, size_t count, int fan_in, test_rng *rng) {
  float bound = (float)sqrt(3.0 / fan_in); /* variance 1/fan_in: outputs of order 1 */
  test_fill_uniform(w, count, -bound, bound, rng);
}

/* ---- convolution ---- */

typedef struct conv_case {
  int n, c, h, w, oc, k, stride, pad, groups, relu;
  int work_images; /* images per workspace chunk; 0: the whole batch */
  int skip_dinp;   /* backward with a NULL dinp, as for the first layer */
  int shared;
  uint64_t seed;
  int path; /* 0: the runtime's choice (ALEXNET_WINOGRAD); PATH_IM2COL or PATH_WINOGRAD forces one */
} conv_case;
/* PATH_AUTO: ALEXNET_WINOGRAD=auto; PATH_WEIGHT, PATH_INPUT: that gradient alone through Winograd */
enum { PATH_IM2COL = 1, PATH_WINOGRAD = 2, PATH_AUTO = 3, PATH_WEIGHT = 4, PATH_INPUT = 5 };

/* Winograd's output tile side for an r x r convolution of h x w images, as the layer's rule states it: 4
 * for 5x5 (F(4x4,5x5)); for 3x3 F(4x4,3x3) on images of 13x13 pixels or more where its tiles take fewer
 * products than F(2x2,3x3)'s */
static int wino_side(int r, int h, int w) {
  if (r == 5) return 4;
  const int tiles2 = ((h + 1) / 2) * ((w + 1) / 2);
  return tiles2 >= AN_WINOGRAD_LARGE_TILES && ((h + 3) / 4) * ((w + 3) / 4) * 36 < tiles2 * 16 ? 4 : 2;
}

/* The GEMMs a pass issued are the path's: Winograd's P NN per group (P positions: (m+r-1)², m the tile
 * side) of k = the input channels per group (C/g forward, OC/g for the input gradient), or im2col's of k
 * = C/g·KH·KW (forward; padded, below) */
static void assert_path_gemms(const char *pass, const an_gemm_log *log, int from, int path, size_t m, size_t k,
                              int groups, int p) {
  const int n = log->n - from;
  printf("  %s: %d GEMMs of %s's shape (m=%zu k=%zu)\n", pass, n, path == PATH_WINOGRAD ? "Winograd" : "im2col", m,
         k);
  assert_true(n > 0);
  if (path == PATH_WINOGRAD) assert_int_equal(n % (p * groups), 0);
  for (int i = from; i < log->n; i++) {
    assert_int_equal(log->calls[i].m, m);
    assert_int_equal(log->calls[i].k, k);
  }
}

static void run_conv(an_runtime *rt, const char *name, const conv_case *cc) {
  an_conv_dims d = an_conv_dims_make(cc->n, cc->c, cc->h, cc->w, cc->oc, cc->k, cc->stride, cc->pad, cc->groups);
  ref_conv_dims rd = ref_conv_dims_make(cc->n, cc->c, cc->h, cc->w, cc->oc, cc->k, cc->stride, cc->pad, cc->groups);
  assert_int_equal(d.oh, rd.oh);
  assert_int_equal(d.ow, rd.ow);
  int chunk = cc->work_images > 0 ? cc->work_images : cc->n;
  size_t work_floats = an_conv_train_work_floats(&d, chunk);
  printf("%s: (%d,%d,%d,%d) -> (%d,%d,%d,%d), k=%d stride=%d pad=%d groups=%d relu=%d, workspace %zu "
         "floats (%d of %d images a chunk)%s%s\n",
         name, cc->n, cc->c, cc->h, cc->w, cc->n, cc->oc, d.oh, d.ow, cc->k, cc->stride, cc->pad, cc->groups,
         cc->relu, work_floats, chunk, cc->n, cc->skip_dinp ? ", no dinp" : "",
         cc->shared ? ", shared buffer at odd offsets" : "");
  fflush(stdout);
  const int saved_winograd = rt->winograd;
  if (cc->path)
    rt->winograd = cc->path == PATH_WINOGRAD ? AN_WINOGRAD_FORWARD | AN_WINOGRAD_INPUT_GRAD | AN_WINOGRAD_WEIGHT_GRAD
                   : cc->path == PATH_AUTO   ? AN_WINOGRAD_DEFAULT
                   : cc->path == PATH_WEIGHT ? AN_WINOGRAD_WEIGHT_GRAD
                   : cc->path == PATH_INPUT  ? AN_WINOGRAD_INPUT_GRAD
                                             : 0;
  /* which path each pass takes on PATH_AUTO: the forward pass Winograd's, the input and weight gradients
   * Winograd's from 7x7 tiles per image (AN_WINOGRAD_LARGE_TILES) */
  const int large = ((cc->h + 1) / 2) * ((cc->w + 1) / 2) >= AN_WINOGRAD_LARGE_TILES;
  const int wino_fwd = cc->path == PATH_WINOGRAD || cc->path == PATH_AUTO;
  const int wino_dinp = cc->path == PATH_WINOGRAD || cc->path == PATH_INPUT || (cc->path == PATH_AUTO && large);
  const int wino_dw = (wino_dinp && cc->path != PATH_INPUT) || cc->path == PATH_WEIGHT;
  const int side = wino_side(cc->k, cc->h, cc->w), p = (side + cc->k - 1) * (side + cc->k - 1);
  if (wino_fwd || wino_dinp || wino_dw)
    printf("  Winograd F(%dx%d,%dx%d): %d positions\n", side, side, cc->k, cc->k, p);
  an_gemm_log log = {0};
  an_gemm_record(rt, &log);

  size_t n_inp = (size_t)cc->n * cc->c * cc->h * cc->w;
  size_t n_w = (size_t)cc->oc * (cc->c / cc->groups) * cc->k * cc->k;
  size_t n_out = (size_t)cc->n * cc->oc * d.oh * d.ow;
  size_t n_b = (size_t)cc->oc;
  test_rng rng = test_rng_seeded(cc->seed);
  float *inp = test_floats(n_inp), *weight = test_floats(n_w), *bias = test_floats(n_b);
  float *dout = test_floats(n_out), *dweight0 = test_floats(n_w), *dbias0 = test_floats(n_b);
  test_fill_uniform(inp, n_inp, -1.0f, 1.0f, &rng);
  fill_weights(weight, n_w, (cc->c / cc->groups) * cc->k * cc->k, &rng);
  test_fill_uniform(bias, n_b, -0.1f, 0.1f, &rng);
  test_fill_uniform(dout, n_out, -1.0f, 1.0f, &rng);
  test_fill_uniform(dweight0, n_w, -1.0f, 1.0f, &rng);
  test_fill_uniform(dbias0, n_b, -1.0f, 1.0f, &rng);

  arena a;
  arena_open(&a, rt, cc->shared, 2 * (n_inp + n_w + n_b + n_out) + work_floats, 9);
  an_buf d_inp = arena_put(&a, inp, n_inp), d_weight = arena_put(&a, weight, n_w);
  an_buf d_bias = arena_put(&a, bias, n_b), d_out = arena_take(&a, n_out);
  an_buf d_work = arena_take(&a, work_floats), d_dout = arena_put(&a, dout, n_out);
  an_buf d_dweight = arena_put(&a, dweight0, n_w), d_dbias = arena_put(&a, dbias0, n_b);
  an_buf d_dinp = cc->skip_dinp ? an_at(NULL, 0) : arena_filled(&a, GARBAGE, n_inp);

  /* forward */
  TEST_OK(an_conv_forward(rt, &d, d_out, d_inp, d_weight, d_bias, cc->relu, d_work, work_floats));
  float *out = download(rt, d_out, n_out);
  double *inp_d = test_dup_double(inp, n_inp), *weight_d = test_dup_double(weight, n_w);
  double *bias_d = test_dup_double(bias, n_b), *want_out = test_doubles(n_out);
  ref_conv_forward(want_out, inp_d, weight_d, bias_d, &rd, cc->relu);
  /* Winograd: within 1e-4 of max|want|, no absolute margin */
  const double fwd_atol = wino_fwd ? 0.0 : FWD_ATOL;
  const double grad_atol = wino_dinp ? 0.0 : GRAD_ATOL;
  int fails = check_close("conv out", out, want_out, n_out, FWD_RTOL, fwd_atol);
  const int cg = cc->c / cc->groups, ocg = cc->oc / cc->groups;
  if (wino_fwd) assert_path_gemms("forward", &log, 0, PATH_WINOGRAD, (size_t)ocg, (size_t)cg, cc->groups, p);
  /* im2col's forward reduction: C/g·K², rounded up to 32 with one group when no multiple of 16 (the
   * zero-padded col and weight that spare CLBlast its copy of col: conv1's 363 runs as 384); on the
   * project's GEMM a strided convolution of one group and a kernel at least the stride wide runs on the
   * phase planes instead (layers/conv_phase.c), one call per chunk of C·K² unpadded */
  const int phase_fwd = rt->own_gemm && cc->stride > 1 && cc->groups == 1 && cc->k >= cc->stride;
  const size_t ckk = (size_t)cg * cc->k * cc->k;
  const size_t k_fwd = !phase_fwd && cc->groups == 1 && ckk % 16 ? (ckk + 31) / 32 * 32 : ckk;
  if (phase_fwd) {
    printf("  forward: the phase planes' GEMM\n");
    assert_int_equal(log.n, (cc->n + chunk - 1) / chunk);
  }
  if (cc->path == PATH_IM2COL || (!cc->path && cc->k != 3 && cc->k != 5)) /* 11x11 and 1x1: no Winograd */
    assert_path_gemms("forward", &log, 0, PATH_IM2COL, (size_t)ocg, k_fwd, cc->groups, 0);
  const int forward_gemms = log.n;

  /* backward */
  TEST_OK(an_conv_backward(rt, &d, d_dinp, d_dweight, d_dbias, d_dout, d_out, d_inp, d_weight, cc->relu, d_work,
                           work_floats));
  an_gemm_record(rt, NULL);
  rt->winograd = saved_winograd;
  /* The backward pass's GEMMs, chunk by chunk: the weight gradient's NT (Winograd's or im2col's), the
   * input gradient's NN (Winograd's: after the chunk's NT when both run on it, the adjoint path; else
   * after all of them) or TN (im2col's) */
  int nt = 0, nn = 0, tn = 0;
  size_t sum_k = 0;
  const int want_n = wino_dw ? cg : cg * cc->k * cc->k;
  for (int i = forward_gemms; i < log.n && cc->path; i++) { /* path 0: ALEXNET_WINOGRAD's, not asserted */
    const an_gemm_call *c = &log.calls[i];
    if (c->trans_b) { /* Winograd's dU (OC/g, C/g), k the chunk's tiles; im2col's n = C/g·K² */
      nt++, sum_k += c->k;
      assert_int_equal(c->m, ocg);
      assert_int_equal(c->n, want_n);
    } else if (c->trans_a) {
      tn++;
    } else { /* Winograd's dV (C/g, T) from k = OC/g */
      nn++;
      assert_int_equal(c->m, cg);
      assert_int_equal(c->k, ocg);
    }
  }
  if (cc->path != PATH_IM2COL && cc->path) {
    /* Σk over the NT calls: every tile (output pixel) of every image once per position (1 for im2col)
     * and group */
    const size_t want_k = (size_t)(wino_dw ? p : 1) * cc->groups * cc->n *
                          (wino_dw ? (size_t)((cc->h + side - 1) / side) * ((cc->w + side - 1) / side)
                                   : (size_t)d.oh * d.ow);
    printf("  weight gradient: %d NT GEMMs of %s's shape (m=%d n=%d, k summing to %zu)\n", nt,
           wino_dw ? "Winograd" : "im2col", ocg, want_n, sum_k);
    assert_true(nt > 0 && nt % cc->groups == 0);
    if (wino_dw) assert_int_equal(nt % (p * cc->groups), 0);
    assert_int_equal(sum_k, want_k);
  }
  if (wino_dinp && !cc->skip_dinp) {
    printf("  input gradient: %d NN GEMMs of Winograd's shape (m=%d k=%d)%s\n", nn, cg, ocg,
           wino_dw ? ", from the weight gradient's dM" : "");
    assert_true(nn > 0 && nn % (p * cc->groups) == 0);
    assert_int_equal(tn, 0);
  }
  if (!cc->skip_dinp && cc->path && cc->path != PATH_IM2COL && !wino_dinp) { /* im2col's TN, one per group and
                                                                              * chunk */
    printf("  input gradient: %d TN GEMMs of im2col\n", tn);
    assert_true(tn > 0 && tn % cc->groups == 0);
    assert_int_equal(nn, 0);
  }
  if (cc->skip_dinp && cc->path) assert_int_equal(nn + tn, 0);
  free(log.calls);
  float *dweight = download(rt, d_dweight, n_w), *dbias = download(rt, d_dbias, n_b);
  double *out_d = test_dup_double(out, n_out), *dout_d = test_dup_double(dout, n_out);
  double *want_dweight = test_dup_double(dweight0, n_w), *want_dbias = test_dup_double(dbias0, n_b);
  double *want_dinp = cc->skip_dinp ? NULL : test_doubles(n_inp);
  ref_conv_backward(want_dinp, want_dweight, want_dbias, dout_d, out_d, inp_d, weight_d, &rd, cc->relu);
  if (!cc->skip_dinp) {
    float *dinp = download(rt, d_dinp, n_inp);
    fails += check_close("conv dinp", dinp, want_dinp, n_inp, GRAD_RTOL, grad_atol);
    free(dinp);
  }
  fails += check_close("conv dweight (accumulated)", dweight, want_dweight, n_w, GRAD_RTOL, GRAD_ATOL);
  fails += check_close("conv dbias (accumulated)", dbias, want_dbias, n_b, GRAD_RTOL, GRAD_ATOL);
  fails += arena_check_gaps(&a);

  arena_close(&a);
  free(inp), free(weight), free(bias), free(dout), free(dweight0), free(dbias0);
  free(out), free(dweight), free(dbias);
  free(inp_d), free(weight_d), free(bias_d), free(want_out), free(out_d), free(dout_d);
  free(want_dweight), free(want_dbias), free(want_dinp);
  assert_int_equal(fails, 0);
}

#define CONV_TEST(fn, ...)                    \
  static void fn(void **state) {              \
    const conv_case cc = {__VA_ARGS__, 0};    \
    run_conv((an_runtime *)*state, #fn, &cc); \
  }
/* on one path, whatever ALEXNET_WINOGRAD says */
#define CONV_TEST_ON(path, fn, ...)           \
  static void fn(void **state) {              \
    const conv_case cc = {__VA_ARGS__, path}; \
    run_conv((an_runtime *)*state, #fn, &cc); \
  }

/* a slice width set for the weight gradient's reduction (as a tuning would): 6 slices of 10 columns and
 * a remainder of 3, per group and image */
static void test_conv_tuned_slice_width(void **state) {
  an_runtime *rt = *state;
  const conv_case cc = {3, 4, 9, 7, 6, 3, 1, 1, 2, 1, 1, 0, 1, 107, PATH_IM2COL};
  const int own_gemm = rt->own_gemm; /* slice widths are CLBlast's: the project's GEMM slices itself */
  rt->own_gemm = 0;
  TEST_OK(an_gemm_set_dw_slice(rt, 3, 18, 63, 10));
  assert_int_equal(an_gemm_dw_slice(rt, 3, 18, 63), 10);
  an_marks_clear(rt);
  rt->profiling = 1; /* count the GEMMs: forward 2 groups x 3 chunks, input gradient as many, and the
                      * weight gradient 2 x 3 x 7 slices */
  run_conv(rt, "test_conv_tuned_slice_width", &cc);
  rt->profiling = 0;
  int gemms = 0;
  for (int i = 0; i < rt->n_marks; i++) gemms += rt->marks[i].kind == AN_MARK_GEMM_BEGIN;
  an_marks_clear(rt);
  assert_int_equal(gemms, 6 + 6 + 42);
  TEST_OK(an_gemm_set_dw_slice(rt, 3, 18, 63, 63)); /* back to one slice (the default's effect here) */
  assert_int_equal(an_gemm_set_dw_slice(rt, 3, 18, 63, 64), AN_ERR_ARGUMENT);
  rt->own_gemm = 1; /* on the project's GEMM a tuned width is not used: one GEMM over the columns */
  TEST_OK(an_gemm_set_dw_slice(rt, 3, 18, 63, 10));
  assert_int_equal(an_gemm_dw_slice(rt, 3, 18, 63), 63);
  TEST_OK(an_gemm_set_dw_slice(rt, 3, 18, 63, 63));
  rt->own_gemm = own_gemm;
}

/*        name                              n   c   h    w   oc   k  s  p  g relu work noDinp shared seed */
CONV_TEST(test_conv_small_batch1, 1, 3, 7, 9, 4, 3, 1, 0, 1, 0, 0, 0, 1, 101)
CONV_TEST(test_conv_small_groups2_chunk1, 3, 4, 9, 7, 6, 3, 1, 1, 2, 1, 1, 0, 1, 102)
CONV_TEST(test_conv_small_groups2_chunk2, 3, 4, 9, 7, 6, 3, 1, 1, 2, 1, 2, 0, 1, 102)
CONV_TEST(test_conv_small_groups2_whole, 3, 4, 9, 7, 6, 3, 1, 1, 2, 1, 0, 0, 1, 102)
CONV_TEST(test_conv_small_k11_stride4, 2, 3, 23, 27, 5, 11, 4, 2, 1, 1, 1, 0, 1, 103)
CONV_TEST(test_conv_small_stride4_gaps_g2, 3, 4, 10, 9, 2, 3, 4, 0, 2, 0, 1, 0, 1, 104)
CONV_TEST(test_conv_small_k5_pad2_g2, 1, 6, 8, 11, 4, 5, 1, 2, 2, 1, 0, 0, 0, 105)
CONV_TEST(test_conv_small_1x1, 2, 5, 4, 6, 7, 1, 1, 0, 1, 0, 0, 0, 1, 106)
/* windows past the input's edge: kernel columns that see no input pixel (kj - pad >= w), and a pad
 * wider than the kernel, so whole output rows and columns read only padding */
CONV_TEST(test_conv_small_window_past_edge, 2, 3, 5, 2, 4, 4, 2, 1, 1, 0, 0, 0, 1, 108)
CONV_TEST(test_conv_small_pad3_stride2, 2, 2, 4, 5, 3, 3, 2, 3, 1, 1, 1, 0, 1, 109)
CONV_TEST(test_conv_small_no_dinp, 3, 3, 11, 10, 4, 5, 2, 1, 1, 1, 1, 1, 1, 107)
/* the models' settings (k/stride/pad/groups) at a few channels, batch 2: what the Oclgrind run covers */
CONV_TEST(test_conv_small_k5_pad2_g1, 2, 4, 7, 7, 6, 5, 1, 2, 1, 1, 0, 0, 1, 121)
CONV_TEST(test_conv_small_k5_pad2_g2_batch2, 2, 6, 7, 7, 8, 5, 1, 2, 2, 1, 0, 0, 1, 122)
CONV_TEST(test_conv_small_k3_pad1_g1, 2, 4, 5, 5, 6, 3, 1, 1, 1, 1, 0, 0, 1, 123)
CONV_TEST(test_conv_small_k3_pad1_g2_relu0, 2, 4, 3, 3, 4, 3, 1, 1, 2, 0, 0, 0, 1, 124)
CONV_TEST(test_conv_alexnet_conv1, 2, 3, 224, 224, 96, 11, 4, 2, 1, 1, 0, 0, 1, 111)
CONV_TEST(test_conv_alexnet_conv1_chunk1, 2, 3, 224, 224, 96, 11, 4, 2, 1, 1, 1, 1, 0, 112)
CONV_TEST(test_conv_alexnet_conv2, 1, 96, 27, 27, 256, 5, 1, 2, 2, 1, 0, 0, 1, 113)
CONV_TEST(test_conv_alexnet_conv3, 1, 256, 13, 13, 384, 3, 1, 1, 1, 1, 0, 0, 0, 114)
CONV_TEST(test_conv_alexnet_conv4, 1, 384, 13, 13, 384, 3, 1, 1, 2, 1, 0, 0, 1, 115)
CONV_TEST(test_conv_alexnet_conv5_chunk1, 2, 384, 13, 13, 256, 3, 1, 1, 2, 1, 1, 0, 1, 116)
/* 3x3 stride-1 pad-1 on each path whatever ALEXNET_WINOGRAD says: Winograd for the forward pass and the
 * input gradient, F(4x4,3x3) from 13x13 (a last row and column of tiles partly outside; a chunk per
 * image; groups 2 without the ReLU) and F(2x2,3x3) below (odd sizes; groups 2; a 1x1 image; 2x10; no
 * input gradient), and im2col. Few GEMMs each (36 or 16 per group per chunk and pass): Oclgrind runs
 * them too. */
CONV_TEST_ON(PATH_WINOGRAD, test_conv_small_winograd_13x13_chunk1, 2, 3, 13, 13, 4, 3, 1, 1, 1, 1, 1, 0, 1, 131)
CONV_TEST_ON(PATH_WINOGRAD, test_conv_small_winograd_g2_relu0, 2, 6, 7, 9, 4, 3, 1, 1, 2, 0, 0, 0, 0, 133)
CONV_TEST_ON(PATH_WINOGRAD, test_conv_small_winograd_1x1_image, 3, 3, 1, 1, 5, 3, 1, 1, 1, 1, 0, 0, 1, 134)
/* 2x10 images (F(2x2,3x3): five tiles, 80 products, against F(4x4,3x3)'s three, 108), groups 2, a chunk
 * per image; 13x14 (F(4x4,3x3): 576 against 784) */
CONV_TEST_ON(PATH_WINOGRAD, test_conv_small_winograd_2x10_image, 3, 4, 2, 10, 6, 3, 1, 1, 2, 1, 1, 0, 1, 137)
CONV_TEST_ON(PATH_WINOGRAD, test_conv_small_winograd_13x14_g2_relu0, 2, 4, 13, 14, 6, 3, 1, 1, 2, 0, 0, 0, 0, 138)
CONV_TEST_ON(PATH_WINOGRAD, test_conv_small_winograd_no_dinp, 2, 3, 5, 4, 4, 3, 1, 1, 1, 1, 0, 1, 1, 135)
CONV_TEST_ON(PATH_IM2COL, test_conv_small_im2col_k3_pad1_g2, 2, 4, 5, 7, 4, 3, 1, 1, 2, 1, 0, 0, 1, 132)
CONV_TEST_ON(PATH_WINOGRAD, test_conv_alexnet_conv4_winograd, 2, 384, 13, 13, 384, 3, 1, 1, 2, 1, 0, 0, 1, 136)
/* 5x5 stride-1 pad-2 through Winograd F(4x4,5x5) (64 GEMMs per group per chunk and pass): the same
 * cases, and AlexNet's conv2 (groups 2, 27x27: a last row and column of tiles half outside) */
CONV_TEST_ON(PATH_WINOGRAD, test_conv_small_winograd5_13x13_chunk1, 2, 3, 13, 13, 4, 5, 1, 2, 1, 1, 1, 0, 1, 141)
CONV_TEST_ON(PATH_WINOGRAD, test_conv_small_winograd5_g2_relu0, 2, 6, 7, 9, 4, 5, 1, 2, 2, 0, 0, 0, 0, 143)
CONV_TEST_ON(PATH_WINOGRAD, test_conv_small_winograd5_1x1_image, 3, 3, 1, 1, 5, 5, 1, 2, 1, 1, 0, 0, 1, 144)
CONV_TEST_ON(PATH_WINOGRAD, test_conv_small_winograd5_2x3_image, 2, 4, 2, 3, 3, 5, 1, 2, 1, 1, 0, 0, 1, 146)
CONV_TEST_ON(PATH_WINOGRAD, test_conv_small_winograd5_no_dinp, 2, 3, 5, 4, 4, 5, 1, 2, 1, 1, 0, 1, 1, 145)
CONV_TEST_ON(PATH_IM2COL, test_conv_small_im2col_k5_pad2_g2, 2, 4, 5, 7, 4, 5, 1, 2, 2, 1, 0, 0, 1, 142)
CONV_TEST_ON(PATH_WINOGRAD, test_conv_alexnet_conv2_winograd, 2, 96, 27, 27, 256, 5, 1, 2, 2, 1, 0, 0, 1, 147)
/* ALEXNET_WINOGRAD=auto, the default: the input and weight gradients through Winograd at 13x13 (7x7
 * tiles), both through im2col at 11x11 (6x6) */
CONV_TEST_ON(PATH_AUTO, test_conv_small_winograd_auto_13x13, 1, 2, 13, 13, 2, 3, 1, 1, 1, 1, 0, 0, 1, 148)
CONV_TEST_ON(PATH_AUTO, test_conv_small_winograd_auto_11x11, 1, 2, 11, 11, 2, 3, 1, 1, 1, 1, 0, 0, 1, 149)
/* the weight gradient alone through Winograd, the forward pass and the input gradient on im2col (which
 * then skips im2col and its row sums: the bias gradient from NCHW); a chunk per image, groups 2, 5x5 */
CONV_TEST_ON(PATH_WEIGHT, test_conv_small_winograd_weight_only_g2, 3, 4, 9, 7, 6, 3, 1, 1, 2, 1, 1, 0, 1, 151)
CONV_TEST_ON(PATH_WEIGHT, test_conv_small_winograd5_weight_only, 2, 3, 7, 8, 4, 5, 1, 2, 1, 0, 0, 0, 1, 152)
/* the input gradient alone through Winograd (the output gradient convolved with the turned filters),
 * the weight gradient on im2col: 3x3 chunked with groups, 5x5 */
CONV_TEST_ON(PATH_INPUT, test_conv_small_winograd_input_only_g2, 3, 4, 9, 7, 6, 3, 1, 1, 2, 1, 1, 0, 1, 153)
CONV_TEST_ON(PATH_INPUT, test_conv_small_winograd5_input_only, 2, 3, 7, 8, 4, 5, 1, 2, 1, 1, 0, 0, 1, 154)

/* A workspace that cannot hold one image is an error with a message, not a crash or a silent no-op. */
static void test_conv_workspace_too_small(void **state) {
  an_runtime *rt = *state;
  an_conv_dims d = an_conv_dims_make(2, 3, 9, 9, 4, 3, 1, 1, 1);
  const size_t n_inp = 2 * 3 * 9 * 9, n_w = 4 * 3 * 3 * 3, n_b = 4, n_out = 2 * 4 * 9 * 9;
  size_t need = an_conv_min_work_floats(&d);
  cl_mem buf = NULL;
  TEST_OK(an_alloc(rt, 2 * n_inp + n_w + n_b + 2 * n_out + need, &buf));
  an_buf inp = an_at(buf, 0), dinp = an_at(buf, n_inp), weight = an_at(buf, 2 * n_inp);
  an_buf bias = an_at(buf, 2 * n_inp + n_w), out = an_at(buf, 2 * n_inp + n_w + n_b);
  an_buf dout = an_at(buf, 2 * n_inp + n_w + n_b + n_out);
  an_buf work = an_at(buf, 2 * n_inp + n_w + n_b + 2 * n_out);
  an_status st = an_conv_forward(rt, &d, out, inp, weight, bias, 0, work, need - 1);
  printf("  forward with %zu of %zu workspace floats: %s: %s\n", need - 1, need, an_status_name(st),
         an_last_error());
  assert_int_not_equal(st, AN_OK);
  st = an_conv_backward(rt, &d, dinp, weight, bias, dout, out, inp, weight, 0, work, need - 1);
  printf("  backward with %zu of %zu workspace floats: %s: %s\n", need - 1, need, an_status_name(st),
         an_last_error());
  assert_int_not_equal(st, AN_OK);
  TEST_OK(an_finish(rt));
  clReleaseMemObject(buf);
}

/* Chunks: the whole batch when it fits; else a multiple of 32 images when 32 fit (alexnet-tv's conv2
 * at batch 64 in a workspace of 51 images runs 32 + 32: 23328 columns, a multiple of the tiles, where 51
 * images make 37179); fewer than 32 as many as fit. */
static void test_conv_chunk_images(void **state) {
  (void)state;
  const an_conv_dims d = an_conv_dims_make(64, 64, 27, 27, 192, 5, 1, 2, 1);
  const size_t one = an_conv_min_work_floats(&d); /* one image on im2col (Winograd's filters not counted) */
  const int cases[][2] = {{64, 64}, {100, 64}, {63, 32}, {51, 32}, {32, 32}, {31, 31}, {5, 5}, {1, 1}, {0, 0}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const int got = an_conv_chunk_images(&d, (size_t)cases[i][0] * one + one / 2);
    printf("  workspace for %d.5 images: chunks of %d (want %d)\n", cases[i][0], got, cases[i][1]);
    assert_int_equal(got, cases[i][1]);
  }
}

/* ---- fully connected ---- */

static void run_fc(an_runtime *rt, const char *name, int n, int in, int out_features, int relu, int shared,
                   uint64_t seed) {
  printf("%s: (%d,%d) -> (%d,%d) relu=%d%s\n", name, n, in, n, out_features, relu,
         shared ? ", shared buffer at odd offsets" : "");
  fflush(stdout);
  size_t n_inp = (size_t)n * in, n_w = (size_t)out_features * in, n_out = (size_t)n * out_features;
  size_t n_b = (size_t)out_features;
  test_rng rng = test_rng_seeded(seed);
  float *inp = test_floats(n_inp), *weight = test_floats(n_w), *bias = test_floats(n_b);
  float *dout = test_floats(n_out), *dweight0 = test_floats(n_w), *dbias0 = test_floats(n_b);
  test_fill_uniform(inp, n_inp, -1.0f, 1.0f, &rng);
  fill_weights(weight, n_w, in, &rng);
  test_fill_uniform(bias, n_b, -0.1f, 0.1f, &rng);
  test_fill_uniform(dout, n_out, -1.0f, 1.0f, &rng);
  test_fill_uniform(dweight0, n_w, -1.0f, 1.0f, &rng);
  test_fill_uniform(dbias0, n_b, -1.0f, 1.0f, &rng);

  arena a;
  arena_open(&a, rt, shared, 2 * (n_inp + n_w + n_b + n_out), 8);
  an_buf d_inp = arena_put(&a, inp, n_inp), d_weight = arena_put(&a, weight, n_w);
  an_buf d_bias = arena_put(&a, bias, n_b), d_out = arena_take(&a, n_out);
  an_buf d_dout = arena_put(&a, dout, n_out), d_dweight = arena_put(&a, dweight0, n_w);
  an_buf d_dbias = arena_put(&a, dbias0, n_b), d_dinp = arena_filled(&a, GARBAGE, n_inp);

  TEST_OK(an_fc_forward(rt, n, in, out_features, d_out, d_inp, d_weight, d_bias, relu));
  float *out = download(rt, d_out, n_out);
  double *inp_d = test_dup_double(inp, n_inp), *weight_d = test_dup_double(weight, n_w);
  double *bias_d = test_dup_double(bias, n_b), *want_out = test_doubles(n_out);
  ref_fc_forward(want_out, inp_d, weight_d, bias_d, n, in, out_features, relu);
  int fails = check_close("fc out", out, want_out, n_out, FWD_RTOL, FWD_ATOL);

  TEST_OK(an_fc_backward(rt, n, in, out_features, d_dinp, d_dweight, d_dbias, d_dout, d_out, d_inp, d_weight, relu));
  float *dinp = download(rt, d_dinp, n_inp), *dweight = download(rt, d_dweight, n_w);
  float *dbias = download(rt, d_dbias, n_b);
  double *out_d = test_dup_double(out, n_out), *dout_d = test_dup_double(dout, n_out);
  double *want_dinp = test_doubles(n_inp);
  double *want_dweight = test_dup_double(dweight0, n_w), *want_dbias = test_dup_double(dbias0, n_b);
  ref_fc_backward(want_dinp, want_dweight, want_dbias, dout_d, out_d, inp_d, weight_d, n, in, out_features, relu);
  fails += check_close("fc dinp", dinp, want_dinp, n_inp, GRAD_RTOL, GRAD_ATOL);
  fails += check_close("fc dweight (accumulated)", dweight, want_dweight, n_w, GRAD_RTOL, GRAD_ATOL);
  fails += check_close("fc dbias (accumulated)", dbias, want_dbias, n_b, GRAD_RTOL, GRAD_ATOL);
  if (relu) { /* documented: dout now holds the gradient before the ReLU */
    float *dout_after = download(rt, d_dout, n_out);
    for (size_t i = 0; i < n_out; i++) dout_d[i] = out[i] > 0.0f ? dout_d[i] : 0.0;
    fails += check_close("fc dout masked in place", dout_after, dout_d, n_out, 0.0, 0.0);
    free(dout_after);
  }
  fails += arena_check_gaps(&a);

  arena_close(&a);
  free(inp), free(weight), free(bias), free(dout), free(dweight0), free(dbias0);
  free(out), free(dinp), free(dweight), free(dbias);
  free(inp_d), free(weight_d), free(bias_d), free(want_out), free(out_d), free(dout_d);
  free(want_dinp), free(want_dweight), free(want_dbias);
  assert_int_equal(fails, 0);
}

/* Inference's packed fully connected layer (an_fc_forward_packed, the project's GEMM): the weight packed
 * on the host, out (N, OUT_pad) against the reference, 0 in the padding columns; needs rt->own_gemm
 * (an AVX-512 CPU, or ALEXNET_GEMM=project), else it checks that the path says it does not apply. */
static void run_fc_packed(an_runtime *rt, const char *name, int n, int in, int out_features, int out_pad, int relu,
                          uint64_t seed) {
  printf("%s: (%d,%d) -> (%d,%d of %d) relu=%d, weight packed\n", name, n, in, n, out_features, out_pad, relu);
  fflush(stdout);
  if (!an_fc_packed_applies(rt, n)) {
    printf("  not on this runtime (own GEMM %d)\n", rt->own_gemm);
    assert_false(rt->own_gemm && (size_t)n * 4 >= ((size_t)n + 63) / 64 * 64 * 3);
    return;
  }
  const size_t n_inp = (size_t)n * in, n_w = (size_t)out_features * in, n_out = (size_t)n * out_pad;
  test_rng rng = test_rng_seeded(seed);
  float *inp = test_floats(n_inp), *weight = test_floats(n_w), *bias = test_floats((size_t)out_pad);
  test_fill_uniform(inp, n_inp, -1.0f, 1.0f, &rng);
  fill_weights(weight, n_w, in, &rng);
  test_fill_uniform(bias, (size_t)out_pad, -0.1f, 0.1f, &rng);
  for (int o = out_features; o < out_pad; o++) bias[o] = 0.0f; /* the plan's padded bias */
  float *packed = test_floats(an_panel_packed_floats((size_t)out_features, (size_t)in));
  an_panel_pack_host(weight, (size_t)out_features, (size_t)in, packed);
  const size_t work_floats = an_fc_packed_work_floats(n, in, out_features);
  arena a;
  arena_open(&a, rt, 1,
             n_inp + an_panel_packed_floats((size_t)out_features, (size_t)in) + out_pad + n_out + work_floats, 5);
  an_buf d_inp = arena_put(&a, inp, n_inp);
  an_buf d_weight = arena_put(&a, packed, an_panel_packed_floats((size_t)out_features, (size_t)in));
  an_buf d_bias = arena_put(&a, bias, (size_t)out_pad), d_out = arena_filled(&a, GARBAGE, n_out);
  an_buf d_work = arena_filled(&a, GARBAGE, work_floats);
  TEST_OK(an_fc_forward_packed(rt, n, in, out_features, out_pad, d_out, d_inp, d_weight, d_bias, relu, d_work,
                               work_floats));
  float *out = download(rt, d_out, n_out);
  double *inp_d = test_dup_double(inp, n_inp), *weight_d = test_dup_double(weight, n_w);
  double *bias_d = test_dup_double(bias, (size_t)out_pad), *want = test_doubles((size_t)n * out_features);
  double *want_pad = test_doubles(n_out);
  ref_fc_forward(want, inp_d, weight_d, bias_d, n, in, out_features, relu);
  for (int i = 0; i < n; i++)
    for (int o = 0; o < out_pad; o++)
      want_pad[(size_t)i * out_pad + o] = o < out_features ? want[(size_t)i * out_features + o] : 0.0;
  int fails = check_close("fc out (packed weight)", out, want_pad, n_out, FWD_RTOL, FWD_ATOL);
  fails += arena_check_gaps(&a);
  arena_close(&a);
  free(inp), free(weight), free(bias), free(packed), free(out);
  free(inp_d), free(weight_d), free(bias_d), free(want), free(want_pad);
  assert_int_equal(fails, 0);
}

#define FC_PACKED_TEST(fn, ...) \
  static void fn(void **state) { run_fc_packed((an_runtime *)*state, #fn, __VA_ARGS__); }
/* a reduction in two of the GEMM's chunks (2048), classes padded; a full strip with rows past a panel */
FC_PACKED_TEST(test_fc_packed_small_chunks, 48, 2100, 13, 16, 0, 221)
FC_PACKED_TEST(test_fc_packed_small_relu, 64, 300, 20, 20, 1, 222)
FC_PACKED_TEST(test_fc_packed_alexnet_fc6, 64, 9216, 4096, 4096, 1, 223)

#define FC_TEST(fn, ...) \
  static void fn(void **state) { run_fc((an_runtime *)*state, #fn, __VA_ARGS__); }

/*      name                          n   in    out  relu shared seed */
FC_TEST(test_fc_small, 3, 37, 19, 0, 1, 201)
FC_TEST(test_fc_small_relu, 5, 100, 33, 1, 1, 202)
FC_TEST(test_fc_small_batch1_relu, 1, 7, 3, 1, 0, 203)
FC_TEST(test_fc_batch1_gemv, 1, 300, 65, 1, 1, 204)   /* one row of C: CLBlast's GEMV, at odd offsets */
FC_TEST(test_fc_one_output_gemv, 4, 50, 1, 0, 1, 205) /* one column of C (and dW's one row): GEMV */
FC_TEST(test_fc_alexnet_fc6, 2, 9216, 4096, 1, 0, 211)
FC_TEST(test_fc_alexnet_fc7, 2, 4096, 4096, 1, 1, 212)
FC_TEST(test_fc_alexnet_fc8, 2, 4096, 1000, 0, 1, 213)

/* ---- local response normalisation ---- */

static void run_lrn(an_runtime *rt, const char *name, int n, int c, int h, int w, an_lrn_params p, float range,
                    int shared, uint64_t seed) {
  printf("%s: (%d,%d,%d,%d) size=%d alpha=%g beta=%g k=%g, inputs in ±%g%s\n", name, n, c, h, w, p.size,
         (double)p.alpha, (double)p.beta, (double)p.k, (double)range,
         shared ? ", shared buffer at odd offsets" : "");
  fflush(stdout);
  size_t count = (size_t)n * c * h * w;
  test_rng rng = test_rng_seeded(seed);
  float *inp = test_floats(count), *dout = test_floats(count);
  test_fill_uniform(inp, count, -range, range, &rng);
  test_fill_uniform(dout, count, -1.0f, 1.0f, &rng);

  arena a;
  arena_open(&a, rt, shared, 5 * count, 5);
  an_buf d_inp = arena_put(&a, inp, count), d_out = arena_take(&a, count);
  an_buf d_scale = arena_take(&a, count), d_dout = arena_put(&a, dout, count);
  an_buf d_dinp = arena_filled(&a, GARBAGE, count);

  TEST_OK(an_lrn_forward(rt, n, c, h, w, &p, d_out, d_scale, d_inp));
  float *out = download(rt, d_out, count), *scale = download(rt, d_scale, count);
  double *inp_d = test_dup_double(inp, count), *dout_d = test_dup_double(dout, count);
  double *want_out = test_doubles(count), *want_scale = test_doubles(count);
  ref_lrn_forward(want_out, want_scale, inp_d, n, c, h, w, p.size, p.alpha, p.beta, p.k);
  int fails = check_close("lrn out", out, want_out, count, FWD_RTOL, FWD_ATOL);
  fails += check_close("lrn scale", scale, want_scale, count, FWD_RTOL, FWD_ATOL);

  TEST_OK(an_lrn_backward(rt, n, c, h, w, &p, d_dinp, d_dout, d_out, d_scale, d_inp));
  float *dinp = download(rt, d_dinp, count);
  double *want_dinp = test_doubles(count);
  ref_lrn_backward(want_dinp, dout_d, inp_d, n, c, h, w, p.size, p.alpha, p.beta, p.k);
  fails += check_close("lrn dinp", dinp, want_dinp, count, GRAD_RTOL, GRAD_ATOL);
  fails += arena_check_gaps(&a);

  arena_close(&a);
  free(inp), free(dout), free(out), free(scale), free(dinp);
  free(inp_d), free(dout_d), free(want_out), free(want_scale), free(want_dinp);
  assert_int_equal(fails, 0);
}

static const an_lrn_params alexnet_lrn = {5, 1e-4f, 0.75f, 2.0f};
/* A large alpha, so that the cross-channel term of the gradient is as large as the direct one. */
static const an_lrn_params strong_lrn5 = {5, 0.8f, 0.75f, 2.0f};
static const an_lrn_params strong_lrn4 = {4, 0.8f, 0.75f, 2.0f};
/* beta other than the paper's 0.75: the kernel's general pow path (0.75 has a fast path of its own) */
static const an_lrn_params other_beta_lrn = {3, 0.5f, 0.6f, 1.0f};

static void test_lrn_alexnet_lrn1(void **state) {
  run_lrn(*state, "lrn1", 2, 96, 55, 55, alexnet_lrn, 30.0f, 1, 301);
}
static void test_lrn_alexnet_lrn2(void **state) {
  run_lrn(*state, "lrn2", 2, 256, 27, 27, alexnet_lrn, 30.0f, 0, 302);
}
static void test_lrn_small_size5(void **state) {
  run_lrn(*state, "lrn size 5", 3, 7, 5, 6, strong_lrn5, 2.0f, 1, 303);
}
static void test_lrn_small_size4_even(void **state) {
  run_lrn(*state, "lrn size 4", 1, 6, 3, 7, strong_lrn4, 2.0f, 1, 304);
}
static void test_lrn_small_window_wider_than_channels(void **state) {
  run_lrn(*state, "lrn size 5 on 3 channels", 2, 3, 4, 3, strong_lrn5, 2.0f, 1, 305);
}
static void test_lrn_small_alexnet_params(void **state) {
  run_lrn(*state, "lrn paper's parameters, 10 channels", 2, 10, 7, 7, alexnet_lrn, 30.0f, 1, 307);
}
static void test_lrn_other_beta(void **state) {
  run_lrn(*state, "lrn beta 0.6", 2, 9, 5, 7, other_beta_lrn, 2.0f, 1, 306);
}

/* ---- max-pool ---- */

enum { POOL_DISTINCT, POOL_NEGATIVE, POOL_TIES };

static void run_maxpool(an_runtime *rt, const char *name, int n, int c, int h, int w, int k, int stride, int data,
                        int shared, uint64_t seed) {
  int oh = an_pool_out(h, k, stride), ow = an_pool_out(w, k, stride);
  assert_int_equal(oh, (h - k) / stride + 1);
  static const char *data_names[] = {"distinct values", "distinct negative values", "many ties"};
  printf("%s: (%d,%d,%d,%d) k=%d stride=%d -> %dx%d, %s%s\n", name, n, c, h, w, k, stride, oh, ow, data_names[data],
         shared ? ", shared buffer at odd offsets" : "");
  fflush(stdout);
  size_t count = (size_t)n * c * h * w, n_out = (size_t)n * c * oh * ow;
  test_rng rng = test_rng_seeded(seed);
  float *inp = test_floats(count), *dout = test_floats(n_out);
  test_fill_distinct(inp, count, &rng);
  if (data == POOL_NEGATIVE) /* a kernel that starts its maximum at 0 gets these wrong */
    for (size_t i = 0; i < count; i++) inp[i] = inp[i] - 2.0f;
  if (data == POOL_TIES)
    for (size_t i = 0; i < count; i++) inp[i] = (float)test_rng_below(&rng, 3) - 2.0f; /* -2, -1, 0 */
  test_fill_uniform(dout, n_out, -1.0f, 1.0f, &rng);

  arena a;
  arena_open(&a, rt, shared, 2 * count + 4 * n_out, 6);
  an_buf d_inp = arena_put(&a, inp, count), d_out = arena_take(&a, n_out), d_arg = arena_take(&a, n_out);
  an_buf d_dout = arena_put(&a, dout, n_out), d_dinp = arena_filled(&a, GARBAGE, count);
  an_buf d_infer = arena_filled(&a, GARBAGE, n_out);

  TEST_OK(an_maxpool_forward(rt, n, c, h, w, k, stride, d_out, d_arg, d_inp));
  float *out = download(rt, d_out, n_out);
  double *inp_d = test_dup_double(inp, count), *dout_d = test_dup_double(dout, n_out);
  double *want_out = test_doubles(n_out), *want_dinp = test_doubles(count);
  ref_maxpool_forward(want_out, inp_d, n, c, h, w, k, stride);
  int fails = check_close("maxpool out", out, want_out, n_out, 0.0, 0.0); /* a copy: exact */
  /* the inference kernel (no argmax; stride 2 in chunks of 16 outputs): the same maxima */
  TEST_OK(an_maxpool_forward_infer(rt, n, c, h, w, k, stride, d_infer, d_inp));
  float *infer = download(rt, d_infer, n_out);
  fails += check_close("maxpool out (inference)", infer, want_out, n_out, 0.0, 0.0);
  free(infer);

  TEST_OK(an_maxpool_backward(rt, n, c, h, w, k, stride, d_dinp, d_dout, d_arg));
  float *dinp = download(rt, d_dinp, count);
  ref_maxpool_backward(want_dinp, dout_d, inp_d, n, c, h, w, k, stride);
  fails += check_close("maxpool dinp", dinp, want_dinp, count, EXACT_RTOL, EXACT_ATOL);
  fails += arena_check_gaps(&a);

  arena_close(&a);
  free(inp), free(dout), free(out), free(dinp);
  free(inp_d), free(dout_d), free(want_out), free(want_dinp);
  assert_int_equal(fails, 0);
}

#define MAXPOOL_TEST(fn, ...) \
  static void fn(void **state) { run_maxpool((an_runtime *)*state, #fn, __VA_ARGS__); }

/*           name                          n    c   h   w  k  s  data           shared seed */
MAXPOOL_TEST(test_maxpool_alexnet_pool1, 2, 96, 55, 55, 3, 2, POOL_DISTINCT, 1, 401)
MAXPOOL_TEST(test_maxpool_alexnet_pool2, 2, 256, 27, 27, 3, 2, POOL_DISTINCT, 0, 402)
MAXPOOL_TEST(test_maxpool_alexnet_pool5, 2, 256, 13, 13, 3, 2, POOL_NEGATIVE, 1, 403)
MAXPOOL_TEST(test_maxpool_small_floor, 3, 2, 8, 10, 3, 2, POOL_DISTINCT, 1, 404)
MAXPOOL_TEST(test_maxpool_small_2x2, 1, 3, 7, 9, 2, 2, POOL_NEGATIVE, 1, 405)
MAXPOOL_TEST(test_maxpool_small_ties, 2, 3, 9, 11, 3, 2, POOL_TIES, 1, 406)
MAXPOOL_TEST(test_maxpool_small_ties_s1, 1, 2, 6, 5, 3, 1, POOL_TIES, 1, 407)
MAXPOOL_TEST(test_maxpool_ties_wide, 2, 3, 9, 37, 3, 2, POOL_TIES, 1, 408) /* the 8-wide stride-2 path */
/* inference's chunks of 16 outputs: two whole chunks and a partial one (w 100); k 4; k 5 (per window) */
MAXPOOL_TEST(test_maxpool_wide_chunks, 1, 3, 7, 100, 3, 2, POOL_NEGATIVE, 1, 409)
MAXPOOL_TEST(test_maxpool_k4_s2, 2, 2, 9, 70, 4, 2, POOL_DISTINCT, 0, 410)
MAXPOOL_TEST(test_maxpool_k5_s2, 1, 2, 9, 21, 5, 2, POOL_DISTINCT, 1, 411)

/* NaN propagates through both forward kernels: an output is NaN exactly where its window holds one (a
 * NaN in rows, columns and chunks of every kind: first in a window, last, both), else the plain maximum. */
static void test_maxpool_nan(void **state) {
  an_runtime *rt = (an_runtime *)*state;
  const int n = 1, c = 2, h = 9, w = 70, k = 3, s = 2, oh = an_pool_out(h, k, s), ow = an_pool_out(w, k, s);
  const size_t count = (size_t)n * c * h * w, n_out = (size_t)n * c * oh * ow;
  test_rng rng = test_rng_seeded(412);
  float *inp = test_floats(count);
  test_fill_distinct(inp, count, &rng);
  for (size_t i = 0; i < count; i += 1 + (size_t)test_rng_below(&rng, 40)) inp[i] = NAN;
  arena a;
  arena_open(&a, rt, 1, count + 3 * n_out, 4);
  an_buf d_inp = arena_put(&a, inp, count), d_out = arena_take(&a, n_out), d_arg = arena_take(&a, n_out);
  an_buf d_infer = arena_filled(&a, GARBAGE, n_out);
  TEST_OK(an_maxpool_forward(rt, n, c, h, w, k, s, d_out, d_arg, d_inp));
  TEST_OK(an_maxpool_forward_infer(rt, n, c, h, w, k, s, d_infer, d_inp));
  float *got[2] = {download(rt, d_out, n_out), download(rt, d_infer, n_out)};
  int bad = 0, nans = 0;
  for (size_t p = 0; p < (size_t)n * c; p++)
    for (int oy = 0; oy < oh; oy++)
      for (int ox = 0; ox < ow; ox++) {
        float want = -INFINITY;
        int nan = 0;
        for (int ki = 0; ki < k; ki++)
          for (int kj = 0; kj < k; kj++) {
            const float v = inp[(p * h + oy * s + ki) * w + ox * s + kj];
            nan |= isnan(v);
            if (v > want) want = v;
          }
        nans += nan;
        for (int j = 0; j < 2; j++) {
          const float g = got[j][(p * oh + oy) * ow + ox];
          if (nan ? !isnan(g) : g != want) bad++;
        }
      }
  printf("maxpool with NaNs: %d of %zu windows hold one; %d outputs of both kernels wrong\n", nans, n_out, bad);
  bad += arena_check_gaps(&a);
  arena_close(&a);
  free(inp), free(got[0]), free(got[1]);
  assert_true(nans > 0 && nans < (int)n_out);
  assert_int_equal(bad, 0);
}

/* ---- adaptive average pool ---- */

static void run_avgpool(an_runtime *rt, const char *name, int n, int c, int h, int w, int oh, int ow, int shared,
                        uint64_t seed) {
  printf("%s: (%d,%d,%d,%d) -> %dx%d%s\n", name, n, c, h, w, oh, ow, shared ? ", shared buffer at odd offsets" : "");
  fflush(stdout);
  size_t count = (size_t)n * c * h * w, n_out = (size_t)n * c * oh * ow;
  test_rng rng = test_rng_seeded(seed);
  float *inp = test_floats(count), *dout = test_floats(n_out);
  test_fill_uniform(inp, count, -1.0f, 1.0f, &rng);
  test_fill_uniform(dout, n_out, -1.0f, 1.0f, &rng);

  arena a;
  arena_open(&a, rt, shared, 2 * count + 2 * n_out, 4);
  an_buf d_inp = arena_put(&a, inp, count), d_out = arena_take(&a, n_out);
  an_buf d_dout = arena_put(&a, dout, n_out), d_dinp = arena_filled(&a, GARBAGE, count);

  TEST_OK(an_avgpool_forward(rt, n, c, h, w, oh, ow, d_out, d_inp));
  float *out = download(rt, d_out, n_out);
  double *inp_d = test_dup_double(inp, count), *dout_d = test_dup_double(dout, n_out);
  double *want_out = test_doubles(n_out), *want_dinp = test_doubles(count);
  ref_avgpool_forward(want_out, inp_d, n, c, h, w, oh, ow);
  int fails = check_close("avgpool out", out, want_out, n_out, FWD_RTOL, FWD_ATOL);

  TEST_OK(an_avgpool_backward(rt, n, c, h, w, oh, ow, d_dinp, d_dout));
  float *dinp = download(rt, d_dinp, count);
  ref_avgpool_backward(want_dinp, dout_d, n, c, h, w, oh, ow);
  fails += check_close("avgpool dinp", dinp, want_dinp, count, FWD_RTOL, FWD_ATOL);
  fails += arena_check_gaps(&a);

  arena_close(&a);
  free(inp), free(dout), free(out), free(dinp);
  free(inp_d), free(dout_d), free(want_out), free(want_dinp);
  assert_int_equal(fails, 0);
}

#define AVGPOOL_TEST(fn, ...) \
  static void fn(void **state) { run_avgpool((an_runtime *)*state, #fn, __VA_ARGS__); }

/*           name                             n    c   h   w  oh ow shared seed */
AVGPOOL_TEST(test_avgpool_alexnet_6_to_6, 2, 256, 6, 6, 6, 6, 1, 501)
AVGPOOL_TEST(test_avgpool_alexnet_13_to_6, 2, 256, 13, 13, 6, 6, 0, 502)
AVGPOOL_TEST(test_avgpool_alexnet_4_to_6, 2, 256, 4, 4, 6, 6, 1, 503)
AVGPOOL_TEST(test_avgpool_small_1_to_6, 2, 3, 1, 1, 6, 6, 1, 507)
AVGPOOL_TEST(test_avgpool_small_3_to_6, 2, 2, 3, 3, 6, 6, 1, 508)
AVGPOOL_TEST(test_avgpool_small_5_to_3, 3, 2, 5, 5, 3, 3, 1, 504)
AVGPOOL_TEST(test_avgpool_small_nonsquare, 1, 3, 7, 5, 3, 2, 1, 505)
AVGPOOL_TEST(test_avgpool_small_up_nonsquare, 2, 1, 3, 4, 5, 7, 1, 506)

/* ---- dropout ---- */

static void run_dropout(an_runtime *rt, const char *name, size_t count, float p, uint64_t key, uint64_t first,
                        int shared, uint64_t seed) {
  printf("%s: %zu elements from %llu, p=%g, key %016llx%s\n", name, count, (unsigned long long)first, (double)p,
         (unsigned long long)key, shared ? ", shared buffer at odd offsets" : "");
  fflush(stdout);
  test_rng rng = test_rng_seeded(seed);
  float *inp = test_floats(count), *dout = test_floats(count);
  test_fill_uniform(inp, count, 0.5f, 1.5f, &rng); /* never 0, so a zero output means dropped */
  for (size_t i = 0; i < count; i += 2) inp[i] = -inp[i];
  test_fill_uniform(dout, count, 0.5f, 1.5f, &rng);

  arena a;
  arena_open(&a, rt, shared, 4 * count, 4);
  an_buf d_inp = arena_put(&a, inp, count), d_out = arena_filled(&a, GARBAGE, count);
  an_buf d_dout = arena_put(&a, dout, count), d_dinp = arena_filled(&a, GARBAGE, count);

  TEST_OK(an_dropout_forward(rt, count, p, key, first, d_out, d_inp));
  TEST_OK(an_dropout_backward(rt, count, p, key, first, d_dinp, d_dout));
  float *out = download(rt, d_out, count), *dinp = download(rt, d_dinp, count);
  double *inp_d = test_dup_double(inp, count), *dout_d = test_dup_double(dout, count);
  double *want_out = test_doubles(count), *want_dinp = test_doubles(count);
  size_t want_kept = ref_dropout_forward(want_out, inp_d, count, p, key, first);
  ref_dropout_backward(want_dinp, dout_d, count, p, key, first);

  size_t kept = 0, mask_mismatch = 0, first_mismatch = 0;
  for (size_t i = 0; i < count; i++) {
    int device_kept = out[i] != 0.0f, ref_kept = want_out[i] != 0.0;
    kept += (size_t)device_kept;
    if (device_kept != ref_kept || (dinp[i] != 0.0f) != ref_kept)
      if (mask_mismatch++ == 0) first_mismatch = i;
  }
  double frac = (double)kept / (double)count;
  double sd = sqrt((double)p * (1.0 - p) / (double)count);
  int fails = 0;
  printf("  kept %zu of %zu (%.4f, expected %.4f ± %.4f); reference kept %zu; mask mismatches %zu", kept, count,
         frac, 1.0 - p, 5 * sd, want_kept, mask_mismatch);
  if (mask_mismatch)
    printf(", first at [%zu]: uniform %.9g, out %g, dinp %g", first_mismatch,
           (double)an_dropout_uniform(key, first + first_mismatch), (double)out[first_mismatch],
           (double)dinp[first_mismatch]);
  printf("  %s\n", mask_mismatch == 0 && fabs(frac - (1.0 - p)) <= 5 * sd ? "PASS" : "FAIL");
  fails += mask_mismatch != 0;
  fails += fabs(frac - (1.0 - p)) > 5 * sd;
  fails += check_close("dropout out", out, want_out, count, EXACT_RTOL, EXACT_ATOL);
  fails += check_close("dropout dinp", dinp, want_dinp, count, EXACT_RTOL, EXACT_ATOL);
  fails += arena_check_gaps(&a);

  arena_close(&a);
  free(inp), free(dout), free(out), free(dinp);
  free(inp_d), free(dout_d), free(want_out), free(want_dinp);
  assert_int_equal(fails, 0);
}

static void test_dropout_alexnet(void **state) {
  run_dropout(*state, "dropout 2x4096", 2 * 4096, 0.5f, an_dropout_key(1234, 7, 0), 0, 0, 601);
}
static void test_dropout_odd_count_offsets(void **state) { /* and a first index: a device's half of a batch */
  run_dropout(*state, "dropout odd count", 1001, 0.1f, an_dropout_key(1234, 7, 1), 4096 * 3, 1, 602);
}
static void test_dropout_large_count(void **state) { /* indices past 2^20: a generator keyed per element */
  run_dropout(*state, "dropout 2^21+3", (1u << 21) + 3, 0.5f, an_dropout_key(99, 123456, 2), 0, 1, 603);
}

/* Masks depend on the key: another step or layer draws a different one, the same key the same one. */
static void test_dropout_keys(void **state) {
  (void)state;
  uint64_t k1 = an_dropout_key(1, 1, 0), k2 = an_dropout_key(1, 2, 0), k3 = an_dropout_key(1, 1, 1);
  assert_true(k1 == an_dropout_key(1, 1, 0));
  size_t differ12 = 0, differ13 = 0, n = 4096;
  for (size_t i = 0; i < n; i++) {
    differ12 += (an_dropout_uniform(k1, i) >= 0.5f) != (an_dropout_uniform(k2, i) >= 0.5f);
    differ13 += (an_dropout_uniform(k1, i) >= 0.5f) != (an_dropout_uniform(k3, i) >= 0.5f);
  }
  printf("  masks of p=0.5 differ in %zu (other step) and %zu (other layer) of %zu elements\n", differ12, differ13,
         n);
  assert_true(differ12 > n / 2 - 200 && differ12 < n / 2 + 200);
  assert_true(differ13 > n / 2 - 200 && differ13 < n / 2 + 200);
}

/* ---- softmax cross-entropy ---- */

static void run_xent(an_runtime *rt, const char *name, int n, int classes, float range, uint64_t seed) {
  printf("%s: N=%d K=%d, logits in ±%g\n", name, n, classes, (double)range);
  fflush(stdout);
  size_t count = (size_t)n * classes;
  test_rng rng = test_rng_seeded(seed);
  float *logits = test_floats(count);
  int *labels = malloc(sizeof(int) * (size_t)n);
  assert_non_null(labels);
  test_fill_uniform(logits, count, -range, range, &rng);
  for (int b = 0; b < n; b++) labels[b] = test_rng_below(&rng, classes);

  arena a;
  arena_open(&a, rt, 1, 2 * count + 1 + (size_t)n, 4);
  an_buf d_logits = arena_put(&a, logits, count), d_dlogits = arena_filled(&a, GARBAGE, count);
  an_buf d_loss = arena_filled(&a, GARBAGE, 1), d_per_sample = arena_take(&a, (size_t)n);
  cl_mem d_labels = NULL;
  TEST_OK(an_alloc(rt, (size_t)n, &d_labels)); /* n floats hold n ints */
  cl_int err = clEnqueueWriteBuffer(rt->queue, d_labels, CL_TRUE, 0, sizeof(int) * (size_t)n, labels, 0, NULL, NULL);
  if (err != CL_SUCCESS) fail_msg("clEnqueueWriteBuffer(labels): %s", an_status_name(err));

  TEST_OK(an_softmax_xent(rt, n, classes, d_loss, d_dlogits, d_per_sample, d_logits, d_labels));
  float loss, *dlogits = download(rt, d_dlogits, count);
  TEST_OK(an_read(rt, &loss, d_loss, 1));
  double *logits_d = test_dup_double(logits, count), *want_dlogits = test_doubles(count);
  double want_loss = ref_softmax_xent(want_dlogits, NULL, logits_d, labels, n, classes);
  int fails = check_close("xent loss", &loss, &want_loss, 1, 1e-5, 1e-6);
  fails += check_close("xent dlogits", dlogits, want_dlogits, count, FWD_RTOL, FWD_ATOL);
  fails += arena_check_gaps(&a);

  clReleaseMemObject(d_labels);
  arena_close(&a);
  free(logits), free(labels), free(dlogits), free(logits_d), free(want_dlogits);
  assert_int_equal(fails, 0);
}

static void test_xent_alexnet(void **state) { run_xent(*state, "xent 4x1000", 4, 1000, 5.0f, 701); }
static void test_xent_small(void **state) { run_xent(*state, "xent 3x10", 3, 10, 2.0f, 702); }
static void test_xent_batch1(void **state) { run_xent(*state, "xent 1x7", 1, 7, 2.0f, 703); }
static void test_xent_large_logits(void **state) { /* exp overflows without subtracting the max */
  run_xent(*state, "xent large logits", 2, 9, 500.0f, 704);
}

/* ---- SGD ---- */

static void test_sgd(void **state) {
  an_runtime *rt = *state;
  const size_t count = 10007;
  const float lr = 0.01f, momentum = 0.9f, weight_decay = 5e-4f;
  printf("sgd: %zu elements, lr=%g momentum=%g weight_decay=%g, two steps, shared buffer at odd offsets\n", count,
         (double)lr, (double)momentum, (double)weight_decay);
  test_rng rng = test_rng_seeded(801);
  float *weight = test_floats(count), *grad = test_floats(count), *velocity = test_floats(count);
  test_fill_uniform(weight, count, -1.0f, 1.0f, &rng);
  test_fill_uniform(grad, count, -1.0f, 1.0f, &rng);
  test_fill_uniform(velocity, count, -0.1f, 0.1f, &rng);

  arena a;
  arena_open(&a, rt, 1, 3 * count, 3);
  an_buf d_weight = arena_put(&a, weight, count), d_grad = arena_put(&a, grad, count);
  an_buf d_velocity = arena_put(&a, velocity, count);
  double *want_w = test_dup_double(weight, count), *want_v = test_dup_double(velocity, count);
  double *grad_d = test_dup_double(grad, count);

  TEST_OK(an_sgd_update(rt, count, lr, momentum, weight_decay, d_weight, d_grad, d_velocity));
  ref_sgd_update(want_w, grad_d, want_v, count, lr, momentum, weight_decay);
  float *got_w = download(rt, d_weight, count), *got_v = download(rt, d_velocity, count);
  int fails = check_close("sgd weight, step 1", got_w, want_w, count, EXACT_RTOL, EXACT_ATOL);
  fails += check_close("sgd velocity, step 1", got_v, want_v, count, EXACT_RTOL, EXACT_ATOL);
  free(got_w), free(got_v);

  /* a second step without weight decay (biases under no_bias_decay) carries the velocity over */
  TEST_OK(an_sgd_update(rt, count, lr, momentum, 0.0f, d_weight, d_grad, d_velocity));
  ref_sgd_update(want_w, grad_d, want_v, count, lr, momentum, 0.0);
  got_w = download(rt, d_weight, count), got_v = download(rt, d_velocity, count);
  fails += check_close("sgd weight, step 2", got_w, want_w, count, EXACT_RTOL, EXACT_ATOL);
  fails += check_close("sgd velocity, step 2", got_v, want_v, count, EXACT_RTOL, EXACT_ATOL);
  float *got_g = download(rt, d_grad, count);
  fails += check_close("sgd grad unchanged", got_g, grad_d, count, 0.0, 0.0);
  fails += arena_check_gaps(&a);

  arena_close(&a);
  free(weight), free(grad), free(velocity), free(got_w), free(got_v), free(got_g);
  free(want_w), free(want_v), free(grad_d);
  assert_int_equal(fails, 0);
}

/* ---- the kernel variant ---- */

/* The runtime launches the variant ALEXNET_KERNELS names (ctest runs this suite once per variant),
 * else the device type's; a bad value is refused by name. */
/* ALEXNET_WINOGRAD: 0, 1 or forward, unset the default, anything else an error naming the value */
static void test_winograd_choice(void **state) {
  (void)state;
  const char *was = getenv("ALEXNET_WINOGRAD");
  char saved[16] = "";
  if (was) snprintf(saved, sizeof saved, "%s", was);
  int got = -1;
  unsetenv("ALEXNET_WINOGRAD");
  TEST_OK(an_winograd_choose(&got));
  assert_int_equal(got, AN_WINOGRAD_DEFAULT);
  setenv("ALEXNET_WINOGRAD", "0", 1);
  TEST_OK(an_winograd_choose(&got));
  assert_int_equal(got, 0);
  setenv("ALEXNET_WINOGRAD", "1", 1);
  TEST_OK(an_winograd_choose(&got));
  assert_int_equal(got, AN_WINOGRAD_FORWARD | AN_WINOGRAD_INPUT_GRAD | AN_WINOGRAD_WEIGHT_GRAD);
  setenv("ALEXNET_WINOGRAD", "forward", 1);
  TEST_OK(an_winograd_choose(&got));
  assert_int_equal(got, AN_WINOGRAD_FORWARD);
  setenv("ALEXNET_WINOGRAD", "auto", 1);
  TEST_OK(an_winograd_choose(&got));
  assert_int_equal(got, AN_WINOGRAD_FORWARD | AN_WINOGRAD_INPUT_GRAD_LARGE | AN_WINOGRAD_WEIGHT_GRAD_LARGE);
  setenv("ALEXNET_WINOGRAD", "yes", 1);
  const an_status st = an_winograd_choose(&got);
  printf("  ALEXNET_WINOGRAD=yes: %s: %s\n", an_status_name(st), an_last_error());
  assert_int_equal(st, AN_ERR_ARGUMENT);
  assert_non_null(strstr(an_last_error(), "'yes'"));
  if (was) setenv("ALEXNET_WINOGRAD", saved, 1);
  else unsetenv("ALEXNET_WINOGRAD");
}

static void test_kernel_variant(void **state) {
  an_runtime *rt = *state;
  const char *forced = getenv("ALEXNET_KERNELS");
  const int cpu_only = (rt->info.type & CL_DEVICE_TYPE_CPU) && !(rt->info.type & CL_DEVICE_TYPE_GPU);
  const an_kernel_variant want = forced && !strcmp(forced, "gpu")   ? AN_KERNELS_GPU
                                 : forced && !strcmp(forced, "cpu") ? AN_KERNELS_CPU
                                 : cpu_only                         ? AN_KERNELS_CPU
                                                                    : AN_KERNELS_GPU;
  printf("  kernel variant: %s (ALEXNET_KERNELS %s, device type 0x%llx)\n",
         an_kernel_variant_name(rt->kernels_variant), forced ? forced : "unset", (unsigned long long)rt->info.type);
  assert_int_equal(rt->kernels_variant, want);
  an_device_info info = rt->info;
  an_kernel_variant got;
  info.type = CL_DEVICE_TYPE_GPU;
  TEST_OK(an_kernel_variant_choose(&info, &got));
  assert_int_equal(got, forced && *forced ? want : AN_KERNELS_GPU);
  info.type = CL_DEVICE_TYPE_CPU;
  TEST_OK(an_kernel_variant_choose(&info, &got));
  assert_int_equal(got, forced && *forced ? want : AN_KERNELS_CPU);
  info.type = CL_DEVICE_TYPE_CPU | CL_DEVICE_TYPE_GPU | CL_DEVICE_TYPE_ACCELERATOR; /* as Oclgrind */
  TEST_OK(an_kernel_variant_choose(&info, &got));
  assert_int_equal(got, forced && *forced ? want : AN_KERNELS_GPU);
  char saved[16] = "";
  if (forced) snprintf(saved, sizeof saved, "%s", forced);
  setenv("ALEXNET_KERNELS", "fast", 1);
  const an_status st = an_kernel_variant_choose(&info, &got);
  printf("  ALEXNET_KERNELS=fast: %s: %s\n", an_status_name(st), an_last_error());
  assert_int_equal(st, AN_ERR_ARGUMENT);
  assert_non_null(strstr(an_last_error(), "ALEXNET_KERNELS is 'fast'"));
  if (forced) setenv("ALEXNET_KERNELS", saved, 1);
  else unsetenv("ALEXNET_KERNELS");
  /* the Winograd transforms: the same, but a CPU with 16-lane float vectors takes the GPU shape */
  const int forced_any = forced && *forced;
  printf("  Winograd transforms' variant: %s (native float width %u)\n",
         an_kernel_variant_name(rt->winograd_variant), rt->info.native_float_width);
  assert_int_equal(rt->winograd_variant, forced_any || rt->info.native_float_width < 16 ? want : AN_KERNELS_GPU);
  info.type = CL_DEVICE_TYPE_CPU, info.native_float_width = 8; /* AVX2 */
  TEST_OK(an_winograd_variant_choose(&info, &got));
  assert_int_equal(got, forced_any ? want : AN_KERNELS_CPU);
  info.native_float_width = 16; /* AVX-512 */
  TEST_OK(an_winograd_variant_choose(&info, &got));
  assert_int_equal(got, forced_any ? want : AN_KERNELS_GPU);
  info.type = CL_DEVICE_TYPE_GPU, info.native_float_width = 1;
  TEST_OK(an_winograd_variant_choose(&info, &got));
  assert_int_equal(got, forced_any ? want : AN_KERNELS_GPU);
}

/* ---- the suite ---- */

static int setup_runtime(void **state) {
  *state = test_runtime(); /* fails the group, loudly, without a device */
  return *state ? 0 : -1;
}

static int teardown_runtime(void **state) {
  an_runtime_destroy(*state);
  return 0;
}

/* ALEXNET_LAYERS_SMALL=1 runs the small cases only (no AlexNet-size tensors), what an interpreting OpenCL
 * such as Oclgrind gets through in minutes (tests/test_oclgrind.sh); ALEXNET_LAYERS_ONLY=A,B only those
 * whose name holds A or B. */
static int full_size(const char *name) { return strstr(name, "alexnet") || strstr(name, "large"); }

/* name holds one of the comma-separated parts of list */
static int named_in(const char *name, const char *list) {
  char part[64];
  for (const char *p = list; *p;) {
    const size_t n = strcspn(p, ",");
    snprintf(part, sizeof part, "%.*s", (int)n, p);
    if (n && strstr(name, part)) return 1;
    p += n + (p[n] == ',');
  }
  return 0;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_kernel_variant),
      cmocka_unit_test(test_winograd_choice),
      cmocka_unit_test(test_conv_small_batch1),
      cmocka_unit_test(test_conv_small_groups2_chunk1),
      cmocka_unit_test(test_conv_tuned_slice_width),
      cmocka_unit_test(test_conv_small_groups2_chunk2),
      cmocka_unit_test(test_conv_small_groups2_whole),
      cmocka_unit_test(test_conv_small_k11_stride4),
      cmocka_unit_test(test_conv_small_stride4_gaps_g2),
      cmocka_unit_test(test_conv_small_k5_pad2_g2),
      cmocka_unit_test(test_conv_small_1x1),
      cmocka_unit_test(test_conv_small_window_past_edge),
      cmocka_unit_test(test_conv_small_pad3_stride2),
      cmocka_unit_test(test_conv_small_no_dinp),
      cmocka_unit_test(test_conv_workspace_too_small),
      cmocka_unit_test(test_conv_chunk_images),
      cmocka_unit_test(test_conv_small_k5_pad2_g1),
      cmocka_unit_test(test_conv_small_k5_pad2_g2_batch2),
      cmocka_unit_test(test_conv_small_k3_pad1_g1),
      cmocka_unit_test(test_conv_small_k3_pad1_g2_relu0),
      cmocka_unit_test(test_conv_alexnet_conv1),
      cmocka_unit_test(test_conv_alexnet_conv1_chunk1),
      cmocka_unit_test(test_conv_alexnet_conv2),
      cmocka_unit_test(test_conv_alexnet_conv3),
      cmocka_unit_test(test_conv_alexnet_conv4),
      cmocka_unit_test(test_conv_alexnet_conv5_chunk1),
      cmocka_unit_test(test_conv_small_winograd_13x13_chunk1),
      cmocka_unit_test(test_conv_small_winograd_g2_relu0),
      cmocka_unit_test(test_conv_small_winograd_1x1_image),
      cmocka_unit_test(test_conv_small_winograd_2x10_image),
      cmocka_unit_test(test_conv_small_winograd_13x14_g2_relu0),
      cmocka_unit_test(test_conv_small_winograd_no_dinp),
      cmocka_unit_test(test_conv_small_im2col_k3_pad1_g2),
      cmocka_unit_test(test_conv_alexnet_conv4_winograd),
      cmocka_unit_test(test_conv_small_winograd5_13x13_chunk1),
      cmocka_unit_test(test_conv_small_winograd5_g2_relu0),
      cmocka_unit_test(test_conv_small_winograd5_1x1_image),
      cmocka_unit_test(test_conv_small_winograd5_2x3_image),
      cmocka_unit_test(test_conv_small_winograd5_no_dinp),
      cmocka_unit_test(test_conv_small_im2col_k5_pad2_g2),
      cmocka_unit_test(test_conv_alexnet_conv2_winograd),
      cmocka_unit_test(test_conv_small_winograd_auto_13x13),
      cmocka_unit_test(test_conv_small_winograd_auto_11x11),
      cmocka_unit_test(test_conv_small_winograd_weight_only_g2),
      cmocka_unit_test(test_conv_small_winograd5_weight_only),
      cmocka_unit_test(test_conv_small_winograd_input_only_g2),
      cmocka_unit_test(test_conv_small_winograd5_input_only),
      cmocka_unit_test(test_fc_small),
      cmocka_unit_test(test_fc_small_relu),
      cmocka_unit_test(test_fc_small_batch1_relu),
      cmocka_unit_test(test_fc_batch1_gemv),
      cmocka_unit_test(test_fc_one_output_gemv),
      cmocka_unit_test(test_fc_alexnet_fc6),
      cmocka_unit_test(test_fc_alexnet_fc7),
      cmocka_unit_test(test_fc_alexnet_fc8),
      cmocka_unit_test(test_fc_packed_small_chunks),
      cmocka_unit_test(test_fc_packed_small_relu),
      cmocka_unit_test(test_fc_packed_alexnet_fc6),
      cmocka_unit_test(test_lrn_alexnet_lrn1),
      cmocka_unit_test(test_lrn_alexnet_lrn2),
      cmocka_unit_test(test_lrn_small_size5),
      cmocka_unit_test(test_lrn_small_size4_even),
      cmocka_unit_test(test_lrn_small_window_wider_than_channels),
      cmocka_unit_test(test_lrn_small_alexnet_params),
      cmocka_unit_test(test_lrn_other_beta),
      cmocka_unit_test(test_maxpool_alexnet_pool1),
      cmocka_unit_test(test_maxpool_alexnet_pool2),
      cmocka_unit_test(test_maxpool_alexnet_pool5),
      cmocka_unit_test(test_maxpool_small_floor),
      cmocka_unit_test(test_maxpool_small_2x2),
      cmocka_unit_test(test_maxpool_small_ties),
      cmocka_unit_test(test_maxpool_small_ties_s1),
      cmocka_unit_test(test_maxpool_ties_wide),
      cmocka_unit_test(test_maxpool_wide_chunks),
      cmocka_unit_test(test_maxpool_k4_s2),
      cmocka_unit_test(test_maxpool_k5_s2),
      cmocka_unit_test(test_maxpool_nan),
      cmocka_unit_test(test_avgpool_alexnet_6_to_6),
      cmocka_unit_test(test_avgpool_alexnet_13_to_6),
      cmocka_unit_test(test_avgpool_alexnet_4_to_6),
      cmocka_unit_test(test_avgpool_small_1_to_6),
      cmocka_unit_test(test_avgpool_small_3_to_6),
      cmocka_unit_test(test_avgpool_small_5_to_3),
      cmocka_unit_test(test_avgpool_small_nonsquare),
      cmocka_unit_test(test_avgpool_small_up_nonsquare),
      cmocka_unit_test(test_dropout_alexnet),
      cmocka_unit_test(test_dropout_odd_count_offsets),
      cmocka_unit_test(test_dropout_large_count),
      cmocka_unit_test(test_dropout_keys),
      cmocka_unit_test(test_xent_alexnet),
      cmocka_unit_test(test_xent_small),
      cmocka_unit_test(test_xent_batch1),
      cmocka_unit_test(test_xent_large_logits),
      cmocka_unit_test(test_sgd),
  };
  struct CMUnitTest chosen[sizeof tests / sizeof tests[0]];
  const char *small = getenv("ALEXNET_LAYERS_SMALL"), *only = getenv("ALEXNET_LAYERS_ONLY");
  size_t n = 0;
  for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++)
    if (!(small && *small == '1' && full_size(tests[i].name)) && !(only && !named_in(tests[i].name, only)))
      chosen[n++] = tests[i];
  return _cmocka_run_group_tests("test_layers", chosen, n, setup_runtime, teardown_runtime);
}
