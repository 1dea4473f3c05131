/* The project's own GEMM (src/gemm/panel.c, cl/gemm.cl) against a plain-C reference in double: every
 * transpose pair, edges of its 6x64 tiles (and gemm_dot's 3x8), operands at offsets with padded leading dimensions, alpha and
 * beta (beta 0 must not read C: C starts as NaN), a reduction cut into slices and into chunks, batches of
 * GEMMs a step apart (an_gemm_batched: Winograd's positions), and the rule that sends a GEMM to it or to
 * CLBlast. ALEXNET_GEMM=project forces it on any device, so this runs
 * the same cases on whatever device CI has; the same cases through CLBlast are the control. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../src/gemm/gemm.h"
#include "check.h"

typedef struct gemm_case {
  int ta, tb;
  size_t m, n, k;
  float alpha, beta;
} gemm_case;

/* a device buffer holding host's n floats */
static cl_mem upload(an_runtime *rt, const float *host, size_t n) {
  cl_mem d;
  TEST_OK(an_alloc(rt, n, &d));
  TEST_OK(an_write(rt, an_at(d, 0), host, n));
  return d;
}

/* One case on rt: A, B, C at offsets 5, 7, 3 in their buffers with leading dimensions 3 past the
 * minimum; C starts as NaN when beta is 0. Returns check_close's result. */
static int run_case(an_runtime *rt, const gemm_case *g) {
  const size_t ar = g->ta ? g->k : g->m, ac = g->ta ? g->m : g->k; /* A stored (ar, ac) */
  const size_t br = g->tb ? g->n : g->k, bc = g->tb ? g->k : g->n;
  const size_t lda = ac + 3, ldb = bc + 3, ldc = g->n + 3, a_off = 5, b_off = 7, c_off = 3;
  const size_t na = a_off + ar * lda, nb = b_off + br * ldb, nc = c_off + g->m * ldc;
  float *a = test_floats(na), *b = test_floats(nb), *c = test_floats(nc), *got = test_floats(g->m * g->n);
  test_rng rng = test_rng_seeded(g->m * 131 + g->n * 7 + g->k);
  test_fill_uniform(a, na, -1.0f, 1.0f, &rng);
  test_fill_uniform(b, nb, -1.0f, 1.0f, &rng);
  test_fill_uniform(c, nc, -1.0f, 1.0f, &rng);
  if (g->beta == 0.0f)
    for (size_t i = 0; i < nc; i++) c[i] = NAN;
  float *c0 = test_floats(nc);
  memcpy(c0, c, nc * sizeof(float));
  double *want = test_doubles(g->m * g->n);
  for (size_t i = 0; i < g->m; i++)
    for (size_t j = 0; j < g->n; j++) {
      double s = 0;
      for (size_t kk = 0; kk < g->k; kk++)
        s += (double)(g->ta ? a[a_off + kk * lda + i] : a[a_off + i * lda + kk]) *
             (g->tb ? b[b_off + j * ldb + kk] : b[b_off + kk * ldb + j]);
      want[i * g->n + j] = g->alpha * s + (g->beta != 0.0f ? g->beta * (double)c[c_off + i * ldc + j] : 0.0);
    }
  cl_mem da = upload(rt, a, na), db = upload(rt, b, nb), dc = upload(rt, c, nc);
  TEST_OK(an_gemm(rt, g->ta, g->tb, g->m, g->n, g->k, g->alpha, an_at(da, a_off), lda, an_at(db, b_off), ldb,
                  g->beta, an_at(dc, c_off), ldc));
  TEST_OK(an_read(rt, c, an_at(dc, 0), nc));
  for (size_t i = 0; i < g->m; i++) memcpy(got + i * g->n, c + c_off + i * ldc, g->n * sizeof(float));
  char what[128];
  snprintf(what, sizeof what, "%s %c%c %zux%zux%zu alpha %.2g beta %.2g", rt->own_gemm ? "project" : "clblast",
           g->ta ? 'T' : 'N', g->tb ? 'T' : 'N', g->m, g->n, g->k, g->alpha, g->beta);
  /* C's padding between rows and before its offset is left as it was */
  int touched = 0;
  for (size_t i = 0; i < nc; i++) {
    const size_t row = i < c_off ? 0 : (i - c_off) / ldc, col = i < c_off ? ldc : (i - c_off) % ldc;
    if ((i < c_off || col >= g->n || row >= g->m) && memcmp(&c[i], &c0[i], sizeof c[i])) touched++;
  }
  if (touched) printf("  %d floats outside C changed\n", touched);
  const int rc = touched + check_close(what, got, want, g->m * g->n, 1e-5, 1e-5 * sqrt((double)g->k));
  clReleaseMemObject(da);
  clReleaseMemObject(db);
  clReleaseMemObject(dc);
  free(a), free(b), free(c), free(c0), free(got), free(want);
  return rc;
}

static const gemm_case cases[] = {
    {0, 0, 8, 48, 16, 1.0f, 0.0f},    /* one whole tile */
    {0, 0, 13, 50, 17, 0.5f, 0.0f},   /* a partial panel and a partial strip */
    {0, 1, 13, 50, 17, 1.0f, 0.75f},  /* B transposed, beta */
    {1, 0, 21, 97, 33, -1.0f, 0.25f}, /* A transposed */
    {1, 1, 9, 47, 5, 2.0f, 0.0f},     /* both */
    {0, 0, 3, 5, 1, 1.0f, 1.0f},      /* k = 1, fewer than one tile each way */
    {0, 1, 17, 30, 700, 1.0f, 0.0f},  /* NT: gemm_dot, k not a multiple of its 16 */
    {1, 1, 17, 30, 700, 1.0f, 0.0f},  /* 3 slices of 256 summed by gemm_sum_slices */
    {1, 0, 10, 60, 700, 0.5f, 0.5f},  /* slices, beta added once */
    {0, 1, 6, 20, 4500, 1.0f, 0.5f},  /* NT in 5 slices of 1024 (the last 404), beta added once */
    {1, 1, 6, 20, 4500, 1.0f, 0.5f},  /* 3 chunks of the reduction (2048, 2048, 404), each sliced */
    {0, 0, 13, 70, 2100, 1.0f, 0.0f}, /* 2 chunks: the second adds to the first */
    {0, 1, 1, 40, 300, 1.0f, 0.0f},   /* one row of C (fc at batch 1): CLBlast's GEMV, or gemm_dot */
    {0, 0, 1, 70, 33, 1.0f, 0.5f},    /* one row, NN (its input gradient), beta */
    {1, 0, 20, 1, 17, 1.0f, 0.0f},    /* one column */
};

/* an_gemm_batched: count GEMMs (m, n, k) with A (op(A) as ta says) and B one after another with a gap of
 * 5 floats, C the same, each against the reference; per_launch: the GEMMs the scratch holds the packed A
 * of (the project's GEMM then runs the batch in launches of that many, the last one shorter). */
static int run_batched(an_runtime *rt, int ta, size_t m, size_t n, size_t k, int count, float beta, int per_launch) {
  const size_t sa = m * k + 5, sb = k * n + 5, sc = m * n + 5, lda = ta ? m : k;
  const size_t na = sa * count, nb = sb * count, nc = sc * count;
  float *a = test_floats(na), *b = test_floats(nb), *c = test_floats(nc);
  test_rng rng = test_rng_seeded(m * 17 + n + k * 3 + (size_t)count);
  test_fill_uniform(a, na, -1.0f, 1.0f, &rng);
  test_fill_uniform(b, nb, -1.0f, 1.0f, &rng);
  test_fill_uniform(c, nc, -1.0f, 1.0f, &rng);
  float *c0 = test_floats(nc);
  memcpy(c0, c, nc * sizeof(float));
  double *want = test_doubles(nc);
  for (int z = 0; z < count; z++)
    for (size_t i = 0; i < m; i++)
      for (size_t j = 0; j < n; j++) {
        double s = 0;
        for (size_t kk = 0; kk < k; kk++)
          s += (double)a[z * sa + (ta ? kk * lda + i : i * lda + kk)] * b[z * sb + kk * n + j];
        want[z * sc + i * n + j] = s + beta * (double)c[z * sc + i * n + j];
      }
  cl_mem da = upload(rt, a, na), db = upload(rt, b, nb), dc = upload(rt, c, nc);
  if (rt->own_gemm) TEST_OK(an_reserve_gemm_temp(rt, (size_t)per_launch * an_panel_scratch_bytes(ta, 0, m, n, k)));
  TEST_OK(an_gemm_batched(rt, ta, 0, m, n, k, 1.0f, an_at(da, 0), lda, sa, an_at(db, 0), n, sb, beta, an_at(dc, 0),
                          n, sc, count));
  TEST_OK(an_read(rt, c, an_at(dc, 0), nc));
  int failed = 0;
  for (int z = 0; z < count; z++) {
    char what[128];
    snprintf(what, sizeof what, "%s batched %d/%d %c %zux%zux%zu beta %.2g", rt->own_gemm ? "project" : "clblast",
             z + 1, count, ta ? 'T' : 'N', m, n, k, beta);
    failed += check_close(what, c + z * sc, want + z * sc, m * n, 1e-5, 1e-5 * sqrt((double)k));
    for (size_t g = m * n; g < sc; g++) /* the gap after each C: left as it was */
      if (memcmp(&c[z * sc + g], &c0[z * sc + g], sizeof c[0])) failed++;
  }
  clReleaseMemObject(da);
  clReleaseMemObject(db);
  clReleaseMemObject(dc);
  free(a), free(b), free(c), free(c0), free(want);
  return failed;
}

static void test_cases(void **state) {
  (void)state;
  an_runtime *rt = test_runtime();
  int failed = 0;
  /* first, while the scratch is as small as they reserve it (it only grows) */
  failed += run_batched(rt, 1, 8, 65, 30, 5, 0.5f, 2);  /* launches of 2, 2 and 1; A transposed, beta */
  failed += run_batched(rt, 0, 13, 70, 24, 7, 0.0f, 7); /* the whole batch in one launch */
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) failed += run_case(rt, &cases[i]);
  an_runtime_destroy(rt);
  assert_int_equal(failed, 0);
}

/* the same cases on the project's kernel (forced) and on CLBlast's */
static void run_engine(const char *engine, int own) {
  setenv("ALEXNET_GEMM", engine, 1);
  an_runtime *rt = test_runtime();
  assert_int_equal(rt->own_gemm, own);
  an_runtime_destroy(rt);
  test_cases(NULL);
  unsetenv("ALEXNET_GEMM");
}

static void test_project(void **state) {
  (void)state;
  run_engine("project", 1);
}

static void test_clblast(void **state) {
  (void)state;
  run_engine("clblast", 0);
}

/* The rule: a CPU with 16-lane float vectors takes the project's kernel, a CPU with 8 and a GPU keep
 * CLBlast; ALEXNET_GEMM forces either and rejects anything else. Which shapes take it on such a
 * runtime: every non-empty product. */
static void test_rule(void **state) {
  (void)state;
  an_device_info info;
  memset(&info, 0, sizeof info);
  int own = -1;
  unsetenv("ALEXNET_GEMM");
  info.type = CL_DEVICE_TYPE_CPU, info.native_float_width = 16;
  TEST_OK(an_gemm_engine_choose(&info, &own));
  assert_int_equal(own, 1);
  info.native_float_width = 8;
  TEST_OK(an_gemm_engine_choose(&info, &own));
  assert_int_equal(own, 0);
  info.type = CL_DEVICE_TYPE_GPU, info.native_float_width = 16;
  TEST_OK(an_gemm_engine_choose(&info, &own));
  assert_int_equal(own, 0);
  setenv("ALEXNET_GEMM", "project", 1);
  TEST_OK(an_gemm_engine_choose(&info, &own));
  assert_int_equal(own, 1);
  setenv("ALEXNET_GEMM", "clblast", 1);
  info.type = CL_DEVICE_TYPE_CPU;
  TEST_OK(an_gemm_engine_choose(&info, &own));
  assert_int_equal(own, 0);
  setenv("ALEXNET_GEMM", "fast", 1);
  assert_int_equal(an_gemm_engine_choose(&info, &own), AN_ERR_ARGUMENT);
  assert_non_null(strstr(an_last_error(), "fast"));
  unsetenv("ALEXNET_GEMM");

  an_runtime rt;
  memset(&rt, 0, sizeof rt);
  rt.own_gemm = 1;
  assert_true(an_panel_gemm_wanted(&rt, 0, 0, 48, 193600, 384));
  assert_true(an_panel_gemm_wanted(&rt, 0, 1, 128, 48, 12544));
  assert_true(an_panel_gemm_wanted(&rt, 1, 0, 2048, 4608, 64));
  assert_true(an_panel_gemm_wanted(&rt, 0, 1, 64, 2048, 4608));
  assert_false(an_panel_gemm_wanted(&rt, 0, 0, 0, 10, 10));
  rt.own_gemm = 0;
  assert_false(an_panel_gemm_wanted(&rt, 0, 0, 48, 193600, 384));
  /* its scratch: the packed panels (3 of 6 rows) and, for a transposed B, B's chunk */
  assert_int_equal(an_panel_scratch_bytes(0, 0, 13, 50, 17), 320 * sizeof(float));         /* 18 x 17 = 306 -> 320 */
  assert_int_equal(an_panel_scratch_bytes(1, 1, 13, 50, 17), (320 + 864) * sizeof(float)); /* Bᵀ 850 -> 864 */
  /* 3 slices of 256: their partial products too */
  assert_int_equal(an_panel_scratch_bytes(1, 0, 17, 30, 700), (12608 + 3 * 17 * 30) * sizeof(float)); /* 18 x 700 */
  /* NT reads both operands in place: nothing, or its slices' partial products (5 of 1024 for k 4500) */
  assert_int_equal(an_panel_scratch_bytes(0, 1, 13, 50, 17), 0);
  assert_int_equal(an_panel_scratch_bytes(0, 1, 6, 20, 4500), 5 * 6 * 20 * sizeof(float));
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_rule), cmocka_unit_test(test_project),
                                     cmocka_unit_test(test_clblast)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
