/* GEMM tuning: the tuning file (fallback and per-shape lines, other devices' lines kept, bad lines
 * ignored), the per-shape switch at every GEMM (checked through CLBlast's own scratch size, which is 0
 * on its direct kernel), GEMM results against a plain-C reference while switching, and the search
 * itself on small shapes; CLBlast's kernel 1 (GEMMK=1): its constraints and both orientations. */
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
#include <unistd.h>

#include "alexnet/tune.h"
#include "../src/gemm/gemm.h"
#include "../src/gemm/tuning.h"
#include "check.h"

/* two valid configurations of CLBlast's Xgemm kernel (the first two the search itself tries) */
static const an_gemm_config config_a = {{0, 1, 16, 2, 2, 2, 16, 2, 2, 16, 0, 0, 0, 0, 8, 8}, 128};
static const an_gemm_config config_b = {{0, 1, 16, 2, 4, 4, 32, 4, 4, 32, 0, 0, 0, 0, 8, 8}, 1};

static char dir[64];

static void path_in_dir(char *buf, size_t size, const char *name) { snprintf(buf, size, "%s/%s", dir, name); }

static char *slurp(const char *path) {
  FILE *f = fopen(path, "r");
  assert_non_null(f);
  static char text[1 << 16];
  const size_t n = fread(text, 1, sizeof text - 1, f);
  text[n] = '\0';
  fclose(f);
  return text;
}

static an_gemm_shape_config shape_config(int ta, int tb, size_t m, size_t n, size_t k, an_gemm_config c) {
  an_gemm_shape_config e = {ta, tb, m, n, k, c};
  return e;
}

/* C = A·B + 0.5·C (row-major, op per flag, every leading dimension wider than its rows) in double,
 * against the device's an_gemm on buffers at offsets: whichever way round an_gemm hands the problem to
 * CLBlast, offsets, strides and beta must mean what they mean row-major */
static void check_gemm(an_runtime *rt, int ta, int tb, size_t m, size_t n, size_t k, uint64_t seed) {
  test_rng rng = test_rng_seeded(seed);
  const size_t off = 7, lda = (ta ? m : k) + 3, ldb = (tb ? k : n) + 5, ldc = n + 2;
  const size_t na = (ta ? k : m) * lda, nb = (tb ? n : k) * ldb, nc = m * ldc;
  float *a = test_floats(na), *b = test_floats(nb), *c = test_floats(nc), *c0 = test_floats(nc);
  test_fill_uniform(a, na, -1, 1, &rng);
  test_fill_uniform(b, nb, -1, 1, &rng);
  test_fill_uniform(c0, nc, -1, 1, &rng);
  double *want = test_doubles(m * n);
  float *got = test_floats(m * n);
  for (size_t i = 0; i < m; i++)
    for (size_t j = 0; j < n; j++) {
      double sum = 0.5 * c0[i * ldc + j];
      for (size_t p = 0; p < k; p++)
        sum += (double)(ta ? a[p * lda + i] : a[i * lda + p]) * (tb ? b[j * ldb + p] : b[p * ldb + j]);
      want[i * n + j] = sum;
    }
  cl_mem da, db, dc;
  TEST_OK(an_alloc(rt, off + na, &da));
  TEST_OK(an_alloc(rt, off + nb, &db));
  TEST_OK(an_alloc(rt, off + nc, &dc));
  TEST_OK(an_write(rt, an_at(da, off), a, na));
  TEST_OK(an_write(rt, an_at(db, off), b, nb));
  TEST_OK(an_write(rt, an_at(dc, off), c0, nc));
  TEST_OK(an_gemm(rt, ta, tb, m, n, k, 1.0f, an_at(da, off), lda, an_at(db, off), ldb, 0.5f, an_at(dc, off), ldc));
  TEST_OK(an_read(rt, c, an_at(dc, off), nc));
  for (size_t i = 0; i < m; i++) {
    memcpy(got + i * n, c + i * ldc, n * sizeof *got);
    for (size_t j = n; j < ldc; j++) assert_true(c[i * ldc + j] == c0[i * ldc + j]); /* the gaps untouched */
  }
  char what[96];
  snprintf(what, sizeof what, "gemm %c%c %zux%zux%zu", ta ? 'T' : 'N', tb ? 'T' : 'N', m, n, k);
  assert_int_equal(check_close(what, got, want, m * n, 1e-5, 1e-5), 0);
  clReleaseMemObject(da), clReleaseMemObject(db), clReleaseMemObject(dc);
  free(a), free(b), free(c), free(c0), free(got), free(want);
}

static size_t scratch(an_runtime *rt, int ta, int tb, size_t m, size_t n, size_t k) {
  return an_gemm_temp_bytes(rt, ta, tb, m, n, k, 0, ta ? m : k, 0, tb ? k : n, 0, n);
}

/* save → load: the fallback and the shapes that differ from it come back; the other device's line and
 * the lines that do not parse stay in the file untouched and unused; then every GEMM runs the
 * configuration of its shape, and the results are right while it switches back and forth */
static void test_file_and_switching(void **state) {
  (void)state;
  char path[128];
  path_in_dir(path, sizeof path, "gemm-tuning.txt");
  an_runtime *probe = test_runtime(); /* only for its device key */
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fprintf(f,
          "Some Other GPU\t9.9\tGEMMK=0 KREG=1 KWG=32 KWI=2 MDIMA=8 MDIMC=8 MWG=64 NDIMB=8 NDIMC=8 NWG=64 SA=1 SB=1 "
          "STRM=0 STRN=0 VWM=4 VWN=4 MIN_INDIRECT=384\t1.00 GFLOP/s\n");
  fprintf(f, "%s\t%s\tshape=QQ,1,2,3\tGEMMK=0\n", probe->info.name, probe->info.driver_version);
  char text_a[512], text_b[512];
  an_gemm_config_format(&config_a, text_a, sizeof text_a);
  an_gemm_config_format(&config_b, text_b, sizeof text_b);
  /* an earlier tuning's shapes: one this tuning does not have (kept), one it has (replaced) */
  fprintf(f, "%s\t%s\tshape=NN,7,8,9\t%s\n", probe->info.name, probe->info.driver_version, text_b);
  fprintf(f, "%s\t%s\tshape=NN,40,50,300\t%s\n", probe->info.name, probe->info.driver_version, text_a);
  fclose(f);

  an_tune_result r = {0};
  r.best = config_a;
  an_gemm_shape_config shapes[4];
  an_gemm_config direct = config_a;
  direct.min_indirect_size = AN_GEMM_DIRECT;
  an_gemm_config big = config_b; /* an invalid value for this kernel: MWG not a multiple of MDIMC·VWM */
  shapes[0] = shape_config(0, 0, 40, 50, 300, config_b); /* indirect, 32x32 tiles: padded, needs scratch */
  shapes[1] = shape_config(0, 1, 200, 180, 120, direct); /* large enough for the indirect kernel, sent direct */
  shapes[2] = shape_config(1, 0, 33, 17, 65, config_a);  /* the fallback's own */
  shapes[3] = shape_config(0, 0, 9, 9, 9, big);
  shapes[3].config.v[6] = 24;
  r.shapes = shapes, r.n_shapes = 4, r.best_gflops = 2, r.fallback_gflops = 1;
  TEST_OK(an_tuning_save(probe, path, &r, 1));
  an_runtime_destroy(probe);
  const char *text = slurp(path);
  printf("%s", text);
  assert_non_null(strstr(text, "Some Other GPU\t9.9\t"));
  assert_non_null(strstr(text, "shape=NN,40,50,300\t"));
  assert_non_null(strstr(text, "shape=NT,200,180,120\t"));
  assert_non_null(strstr(text, "shape=TN,33,17,65\t"));
  assert_non_null(strstr(text, "shape=NN,7,8,9\t")); /* merged */
  assert_null(strstr(text, "shape=QQ"));             /* a line that does not parse is dropped */
  {
    /* the fallback is the file's last line: a loader older than the per-shape lines keeps the last
     * line it can parse */
    const char *last = text + strlen(text) - 1;
    while (last > text && last[-1] != '\n') last--;
    assert_non_null(strstr(last, "MIN_INDIRECT=128\t2.00 GFLOP/s"));
  }
  {
    char want[700];
    snprintf(want, sizeof want, "shape=NN,40,50,300\t%s", text_b); /* the new configuration, once */
    const char *at = strstr(text, "shape=NN,40,50,300");
    assert_non_null(at);
    assert_int_equal(strncmp(at, want, strlen(want)), 0);
    assert_null(strstr(at + 1, "shape=NN,40,50,300"));
  }

  /* a line for this device that does not parse is ignored on load */
  f = fopen(path, "a");
  assert_non_null(f);
  an_runtime *rt = test_runtime();
  fprintf(f, "%s\t%s\tshape=NN,5,5\tGEMMK=0 KREG=1\n", rt->info.name, rt->info.driver_version);
  fprintf(f, "%s\t%s\tdwslice=48,363,6050\twidth=512\n", rt->info.name, rt->info.driver_version);
  fprintf(f, "%s\t%s\tdwslice=48,363,100\twidth=512\n", rt->info.name, rt->info.driver_version); /* > ncols */
  fclose(f);
  an_runtime_destroy(rt);

  setenv("ALEXNET_TUNING_FILE", path, 1);
  unsetenv("ALEXNET_NO_TUNING");
  rt = test_runtime();
  unsetenv("ALEXNET_TUNING_FILE");
  assert_true(rt->gemm_tuned);
  assert_int_equal(an_gemm_tuned_shapes(rt), 4); /* 40x50x300, 200x180x120, 33x17x65, 7x8x9; 9x9x9 is invalid */
  printf("tuning: %s\n", rt->gemm_tuning);
  assert_non_null(strstr(rt->gemm_tuning, "MWG=16"));
  assert_non_null(strstr(rt->gemm_tuning, "4 shapes with their own"));

  assert_int_equal(an_gemm_dw_slice(rt, 48, 363, 6050), 512);
  assert_int_equal(an_gemm_dw_slice(rt, 48, 363, 100), AN_CONV_DW_SLICE);
  assert_int_equal(an_gemm_dw_slice(rt, 48, 363, 6051), AN_CONV_DW_SLICE);

  /* the switch is real: CLBlast's scratch follows each shape's kernel (0 on the direct kernel) */
  for (int round = 0; round < 2; round++) {
    assert_true(scratch(rt, 0, 0, 40, 50, 300) > 0);
    assert_int_equal(scratch(rt, 0, 1, 200, 180, 120), 0);
    assert_int_equal(scratch(rt, 1, 0, 33, 17, 65), 0); /* fallback, under its threshold 128: direct */
    assert_true(scratch(rt, 0, 1, 256, 256, 256) > 0);  /* fallback, above it: indirect */
  }
  check_gemm(rt, 0, 0, 40, 50, 300, 1);
  check_gemm(rt, 0, 1, 200, 180, 120, 2);
  check_gemm(rt, 1, 0, 33, 17, 65, 3);
  check_gemm(rt, 0, 0, 40, 50, 300, 4);
  check_gemm(rt, 1, 1, 130, 140, 150, 5);
  check_gemm(rt, 1, 0, 130, 140, 150, 9); /* TN above the threshold: CLBlast's column-major path, indirect */
  check_gemm(rt, 1, 0, 256, 64, 64, 10);  /* the weight gradient's form: K small, C the largest */
  /* saved without merging, the earlier tuning's shape goes; other devices stay */
  r.n_shapes = 3;
  TEST_OK(an_tuning_save(rt, path, &r, 0));
  text = slurp(path);
  assert_null(strstr(text, "shape=NN,7,8,9"));
  assert_non_null(strstr(text, "shape=NN,40,50,300\t"));
  assert_non_null(strstr(text, "Some Other GPU\t9.9\t"));
  an_runtime_destroy(rt);
  unlink(path);
}

/* the search on two small shapes with two candidates: every shape gets a valid configuration, each
 * shape's best is at least as fast as the fallback's, and the result is in effect and correct */
static void test_search(void **state) {
  (void)state;
  setenv("ALEXNET_NO_TUNING", "1", 1);
  an_runtime *rt = test_runtime();
  unsetenv("ALEXNET_NO_TUNING");
  /* the second reads rows of wider matrices, as the weight gradient's slices do */
  const an_gemm_shape shapes[] = {{0, 0, 64, 96, 160, 2, 0}, {0, 1, 24, 40, 300, 1, 512}};
  an_tune_result r;
  TEST_OK(an_tune_gemm(rt, shapes, 2, 2, NULL, 0, 1, 0, NULL, NULL, &r));
  printf("untuned %.2f, fallback %.2f, per shape %.2f GFLOP/s; %d tried, %d rejected\n", r.default_gflops,
         r.fallback_gflops, r.best_gflops, r.n_tried, r.n_rejected);
  assert_int_equal(r.n_shapes, 2);
  assert_int_equal(r.n_tried, 2);
  assert_true(r.default_gflops > 0);
  assert_true(r.best_gflops >= r.fallback_gflops * (1 - 1e-9));
  assert_true(r.best.min_indirect_size >= 1);
  for (int i = 0; i < 2; i++) {
    assert_true(r.shapes[i].m == shapes[i].m && r.shapes[i].n == shapes[i].n && r.shapes[i].k == shapes[i].k);
    assert_true(r.shapes[i].config.min_indirect_size >= 1);
    assert_true(r.shape_seconds[2 + i] > 0 && r.shape_seconds[i] > 0);
  }
  assert_int_equal(an_gemm_tuned_shapes(rt), 2);
  check_gemm(rt, 0, 0, 64, 96, 160, 6);
  check_gemm(rt, 0, 1, 24, 40, 300, 7);
  /* saved and loaded again, the same configurations come back */
  char path[128];
  path_in_dir(path, sizeof path, "searched.txt");
  TEST_OK(an_tuning_save(rt, path, &r, 0));
  an_gemm_config fallback;
  int applied = 0;
  TEST_OK(an_tuning_load(rt, path, &applied, &fallback));
  assert_true(applied);
  assert_memory_equal(&fallback, &r.best, sizeof fallback);
  check_gemm(rt, 0, 0, 64, 96, 160, 8);
  an_tune_result_free(&r);
  an_runtime_destroy(rt);
  unlink(path);
}

/* earlier tunings' configurations: read from the file for this device only (the fallback first, then
 * by use; invalid, direct-kernel and other devices' lines skipped, each configuration once), and tried
 * first by the search, in that order */
struct seen_candidates {
  int n;
  an_gemm_config c[8];
};
static void record_candidate(void *user, int candidate, int n_candidates, const an_gemm_config *c, double gflops,
                             double best_gflops, const char *note) {
  (void)n_candidates, (void)gflops, (void)best_gflops, (void)note;
  struct seen_candidates *seen = user;
  if (candidate > 0 && c && seen->n < 8) seen->c[seen->n++] = *c;
}

static void test_known_configs(void **state) {
  (void)state;
  setenv("ALEXNET_NO_TUNING", "1", 1);
  an_runtime *rt = test_runtime();
  unsetenv("ALEXNET_NO_TUNING");
  const char *x = "GEMMK=0 KREG=1 KWG=16 KWI=2 MDIMA=2 MDIMC=2 MWG=16 NDIMB=2 NDIMC=2 NWG=16 SA=0 SB=0 STRM=0 "
                  "STRN=0 VWM=4 VWN=4 MIN_INDIRECT=1";
  const char *y = "GEMMK=0 KREG=1 KWG=16 KWI=2 MDIMA=4 MDIMC=4 MWG=32 NDIMB=4 NDIMC=4 NWG=32 SA=0 SB=0 STRM=0 "
                  "STRN=0 VWM=2 VWN=2 MIN_INDIRECT=1";
  const char *fb = "GEMMK=0 KREG=1 KWG=16 KWI=2 MDIMA=4 MDIMC=4 MWG=16 NDIMB=2 NDIMC=2 NWG=32 SA=0 SB=0 STRM=0 "
                   "STRN=0 VWM=4 VWN=4 MIN_INDIRECT=64";
  const char *bad = "GEMMK=0 KREG=1 KWG=16 KWI=2 MDIMA=2 MDIMC=2 MWG=20 NDIMB=2 NDIMC=2 NWG=16 SA=0 SB=0 STRM=0 "
                    "STRN=0 VWM=4 VWN=4 MIN_INDIRECT=1"; /* MWG not a multiple of MDIMC·VWM */
  char path[128];
  path_in_dir(path, sizeof path, "known.txt");
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  const char *name = rt->info.name, *drv = rt->info.driver_version;
  fprintf(f, "Some Other GPU\t9.9\tshape=NN,1,2,3\t%s\n", y); /* another device's: not counted */
  fprintf(f, "Some Other GPU\t9.9\tshape=NN,1,2,4\t%s\n", y);
  fprintf(f, "%s\t%s\tshape=NN,1,2,3\t%s\n", name, drv, y);
  fprintf(f, "%s\t%s\tshape=NN,1,2,4\t%s\n", name, drv, x);
  fprintf(f, "%s\t%s\tshape=NN,1,2,5\t%s\n", name, drv, x);
  fprintf(f, "%s\t%s\tshape=NN,1,2,6\t%s\n", name, drv, bad);
  fprintf(f,
          "%s\t%s\tshape=NN,1,2,7\tGEMMK=0 KREG=1 KWG=16 KWI=2 MDIMA=2 MDIMC=2 MWG=16 NDIMB=2 NDIMC=2 NWG=16 "
          "SA=0 SB=0 STRM=0 STRN=0 VWM=8 VWN=8 MIN_INDIRECT=%zu\n",
          name, drv, (size_t)AN_GEMM_DIRECT);
  fprintf(f, "%s\t%s\tdwslice=48,363,6050\twidth=512\n", name, drv);
  fprintf(f, "%s\t%s\t%s\t1.00 GFLOP/s (fallback 1.00)\n", name, drv, fb);
  fclose(f);
  an_gemm_config got[8];
  const int n = an_tuning_known_configs(rt, path, got, 8);
  char text[3][512];
  for (int i = 0; i < n && i < 3; i++) an_gemm_config_format(&got[i], text[i], sizeof text[i]);
  for (int i = 0; i < n && i < 3; i++) printf("  known %d: %s\n", i, text[i]);
  assert_int_equal(n, 3);
  assert_int_equal(strncmp(text[0], fb, strlen("GEMMK=0 KREG=1 KWG=16 KWI=2 MDIMA=4 MDIMC=4 MWG=16 NDIMB=2")), 0);
  assert_int_equal(strncmp(text[1], x, strlen(x) - strlen(" MIN_INDIRECT=1")), 0);
  assert_int_equal(strncmp(text[2], y, strlen(y) - strlen(" MIN_INDIRECT=1")), 0);
  assert_int_equal(an_tuning_known_configs(rt, path, got, 1), 1);
  char missing[128];
  path_in_dir(missing, sizeof missing, "no-such-file.txt");
  assert_int_equal(an_tuning_known_configs(rt, missing, got, 8), 0);

  /* the search tries them first, in order, and then its own */
  const an_gemm_config known[2] = {got[1], got[2]};
  const an_gemm_shape shapes[] = {{0, 0, 64, 96, 160, 1, 0}};
  struct seen_candidates seen = {0};
  an_tune_result r;
  TEST_OK(an_tune_gemm(rt, shapes, 1, 3, known, 2, 1, 0, record_candidate, &seen, &r));
  assert_int_equal(seen.n, 3);
  assert_memory_equal(seen.c[0].v, known[0].v, sizeof known[0].v);
  assert_memory_equal(seen.c[1].v, known[1].v, sizeof known[1].v);
  assert_memory_not_equal(seen.c[2].v, known[0].v, sizeof known[0].v);
  assert_memory_not_equal(seen.c[2].v, known[1].v, sizeof known[1].v);
  an_tune_result_free(&r);
  an_runtime_destroy(rt);
  unlink(path);
}

/* the slice widths from measured times (host only): the shapes the tuner adds for each width, and the
 * width with the least estimated time, whole slices plus the remainder, counted per reduction */
static void test_slice_widths(void **state) {
  (void)state;
  const an_dw_reduction red[] = {{48, 363, 3000, 2, 1024}, {64, 100, 700, 1, 1024}};
  an_gemm_shape shapes[64] = {{0, 0, 8, 8, 8, 1, 0}};
  const int n = an_tune_dw_shapes(red, 2, shapes, 1, 64);
  /* 3000: widths 256..2048 and their remainders (184, 440, 952; 2048 leaves 952 too), then 3000
   * itself: 8 shapes; 700: 256, 512 (remainders 188, 188: one shape) and 700: 4 */
  int found_3000 = 0, found_952 = 0, found_700 = 0, zero_counts = 1;
  for (int i = 1; i < n; i++) {
    found_3000 += shapes[i].m == 48 && shapes[i].k == 3000;
    found_952 += shapes[i].m == 48 && shapes[i].k == 952;
    found_700 += shapes[i].m == 64 && shapes[i].k == 700;
    zero_counts &= shapes[i].count == 0 && !shapes[i].trans_a && shapes[i].trans_b &&
                   shapes[i].ld == (shapes[i].m == 48 ? 3000u : 700u); /* rows of the whole reduction */
  }
  assert_int_equal(n, 1 + 8 + 4);
  assert_true(found_3000 == 1 && found_952 == 1 && found_700 == 1 && zero_counts);
  /* times: t(k) = 1 ms + k µs for the first reduction (per-call overhead: fewer, wider slices win);
   * for the second, 1 µs per column up to 256 and 10 µs beyond (cache: narrow wins) */
  an_tune_result r = {0};
  r.n_shapes = n;
  r.shape_seconds = calloc(2 * (size_t)n, sizeof(double));
  assert_non_null(r.shape_seconds);
  for (int i = 0; i < n; i++) {
    const double k = (double)shapes[i].k;
    r.shape_seconds[n + i] = shapes[i].m == 48 ? 1e-3 + k * 1e-6 : k <= 256 ? k * 1e-6 : k * 1e-5;
  }
  double before, after;
  TEST_OK(an_tune_dw_widths(&r, shapes, red, 2, &before, &after));
  assert_int_equal(r.n_slices, 2);
  assert_int_equal(r.slices[0].width, 3000);
  assert_int_equal(r.slices[1].width, 256);
  /* before: 2 x (2 x (1 ms + 1.024 ms) + (1 ms + 0.952 ms)) + (700 x 10 µs); after: 2 x 4 ms + 700 µs */
  const double want_before = 2 * (2 * 2.024e-3 + 1.952e-3) + 7e-3, want_after = 2 * 4e-3 + 7e-4;
  printf("estimated weight-gradient time: %.9f s before, %.9f s after\n", before, after);
  assert_true(fabs(before - want_before) < 1e-12 && fabs(after - want_after) < 1e-12);
  an_tune_result_free(&r);
}

/* the quick search (alexnet tune --quick) on two small shapes, starting from the shipped database's
 * configurations for this device: they are the first candidates, in order; every shape gets a
 * configuration, the results are right, and the reported speeds are consistent */
static void test_quick_search(void **state) {
  (void)state;
  setenv("ALEXNET_NO_TUNING", "1", 1);
  an_runtime *rt = test_runtime();
  unsetenv("ALEXNET_NO_TUNING");
  an_gemm_config known[2];
  const int n_known = an_tuning_database_configs(rt, known, 2);
  assert_int_equal(n_known, !strncmp(rt->info.name, "pthread-", 8) ? 2 : n_known); /* PoCL: the entry has 2+ */
  const an_gemm_shape shapes[] = {{0, 0, 96, 64, 200, 1, 0}, {1, 0, 40, 300, 24, 2, 0}};
  struct seen_candidates seen = {0};
  an_tune_result r;
  TEST_OK(an_tune_gemm(rt, shapes, 2, 3, known, n_known, 1, 1, record_candidate, &seen, &r));
  assert_int_equal(r.n_tried, 3);
  assert_int_equal(seen.n, 3);
  for (int i = 0; i < n_known; i++) assert_memory_equal(seen.c[i].v, known[i].v, sizeof known[i].v);
  assert_true(r.best_gflops >= r.fallback_gflops * (1 - 1e-9) && r.default_gflops > 0);
  for (int i = 0; i < 2; i++) assert_true(r.shapes[i].config.min_indirect_size >= 1);
  check_gemm(rt, 0, 0, 96, 64, 200, 12);
  check_gemm(rt, 1, 0, 40, 300, 24, 13);
  an_tune_result_free(&r);
  an_runtime_destroy(rt);
}

/* the shipped database's rules, on a database written here (ALEXNET_TUNING_DATABASE): the longest
 * matching family wins over a shorter one and over one of another driver, a use= line takes another
 * entry whole; a shape the entry does not list runs its nearest listed shape's configuration (within
 * ln 16), else the fallback; slice widths of unlisted reductions come from the same layer's nearest;
 * the tuning file's own entry, when there is one, wins and switches by exact shape only */
static void test_database_rules(void **state) {
  (void)state;
  char db[128], user[128], text_a[512], text_b[512], family[256], name[256];
  path_in_dir(db, sizeof db, "database.txt");
  path_in_dir(user, sizeof user, "user-tuning.txt");
  an_gemm_config direct = config_a, indirect = config_b;
  direct.min_indirect_size = AN_GEMM_DIRECT; /* the fallback: every GEMM on the direct kernel */
  indirect.min_indirect_size = 1;
  an_gemm_config_format(&direct, text_a, sizeof text_a);
  an_gemm_config_format(&indirect, text_b, sizeof text_b);
  setenv("ALEXNET_NO_TUNING", "1", 1);
  an_runtime *rt = test_runtime();
  unsetenv("ALEXNET_NO_TUNING");
  snprintf(name, sizeof name, "%s", rt->info.name);
  snprintf(family, sizeof family, "%.*s", (int)strcspn(name, "- "), name); /* "pthread" of "pthread-haswell-..." */
  FILE *f = fopen(db, "w");
  assert_non_null(f);
  fprintf(f, "# a comment\n%s\t*\tshape=NN,200,180,120\t%s\n%s\t*\t%s\n", family, text_a, family, text_b);
  fprintf(f, "%s\tno-such-driver\t%s\n", name, text_b);
  fprintf(f, "%s\t*\tuse=Target\n", name);
  fprintf(f, "Target\t*\tshape=NN,200,180,120\t%s\nTarget\t*\tdwslice=48,363,6050\twidth=512\n", text_b);
  fprintf(f, "Target\t*\t%s\t1.00 GFLOP/s\n", text_a);
  fclose(f);
  f = fopen(user, "w"); /* an empty tuning file */
  assert_non_null(f);
  fclose(f);
  an_runtime_destroy(rt);
  setenv("ALEXNET_TUNING_FILE", user, 1);
  setenv("ALEXNET_TUNING_DATABASE", db, 1);
  rt = test_runtime();
  printf("tuning: %s\n", rt->gemm_tuning);
  char want[600];
  snprintf(want, sizeof want, "database entry %s -> Target (1 shapes;", name);
  assert_true(rt->gemm_tuned);
  assert_int_equal(strncmp(rt->gemm_tuning, want, strlen(want)), 0);
  assert_true(scratch(rt, 0, 0, 200, 180, 120) > 0);        /* listed: indirect, padded */
  assert_true(scratch(rt, 0, 0, 220, 160, 130) > 0);        /* nearest: the listed one's */
  assert_int_equal(scratch(rt, 0, 0, 2000, 1800, 1200), 0); /* 1000x: too far, the fallback (direct) */
  assert_int_equal(scratch(rt, 0, 1, 200, 180, 120), 0);    /* other transposes: the fallback */
  assert_int_equal(an_gemm_dw_slice(rt, 48, 363, 6050), 512);
  assert_int_equal(an_gemm_dw_slice(rt, 48, 363, 12100), 512);
  assert_int_equal(an_gemm_dw_slice(rt, 48, 363, 300), 300);
  assert_int_equal(an_gemm_dw_slice(rt, 48, 364, 6050), AN_CONV_DW_SLICE);
  check_gemm(rt, 0, 0, 220, 160, 130, 11);
  an_runtime_destroy(rt);

  /* the device's own entry in the tuning file wins, with exact shapes only */
  an_runtime *probe;
  setenv("ALEXNET_NO_TUNING", "1", 1);
  probe = test_runtime();
  unsetenv("ALEXNET_NO_TUNING");
  f = fopen(user, "w");
  assert_non_null(f);
  fprintf(f, "%s\t%s\tshape=NN,200,180,120\t%s\n", probe->info.name, probe->info.driver_version, text_b);
  fprintf(f, "%s\t%s\t%s\t1.00 GFLOP/s\n", probe->info.name, probe->info.driver_version, text_a);
  fclose(f);
  an_runtime_destroy(probe);
  rt = test_runtime();
  printf("tuning: %s\n", rt->gemm_tuning);
  assert_null(strstr(rt->gemm_tuning, "database"));
  assert_true(scratch(rt, 0, 0, 200, 180, 120) > 0);
  assert_int_equal(scratch(rt, 0, 0, 220, 160, 130), 0); /* not listed: the fallback (direct) */
  an_runtime_destroy(rt);

  /* a database that cannot be read is an error naming it */
  char missing[160];
  path_in_dir(missing, sizeof missing, "no-such-database.txt");
  unlink(user);
  setenv("ALEXNET_TUNING_DATABASE", missing, 1);
  rt = NULL;
  assert_int_not_equal(an_runtime_create(NULL, &rt), AN_OK);
  assert_null(rt);
  assert_non_null(strstr(an_last_error(), "no-such-database.txt"));
  unsetenv("ALEXNET_TUNING_DATABASE");
  unsetenv("ALEXNET_TUNING_FILE");
  unlink(db);
}

/* the embedded database: with an empty tuning file, a PoCL CPU device (pthread-<cpu>) runs its entry
 * (pthread-haswell's or pthread-skylake-avx512's own, or the pthread family's fallback to pthread-haswell)
 * and says so; and every configuration of that entry, forced onto CLBlast's indirect kernel, computes
 * GEMMs of every transpose with offsets and padding as the plain-C reference does */
static void test_database_entry(void **state) {
  (void)state;
  char user[128];
  path_in_dir(user, sizeof user, "empty-tuning.txt");
  FILE *f = fopen(user, "w");
  assert_non_null(f);
  fclose(f);
  setenv("ALEXNET_TUNING_FILE", user, 1);
  unsetenv("ALEXNET_TUNING_DATABASE");
  an_runtime *rt = test_runtime();
  unsetenv("ALEXNET_TUNING_FILE");
  unlink(user);
  printf("device %s: tuning: %s\n", rt->info.name, rt->gemm_tuned ? rt->gemm_tuning : "none");
  const int pocl_cpu = !strncmp(rt->info.name, "pthread-", 8);
  assert_int_equal(rt->gemm_tuned, pocl_cpu);
  if (pocl_cpu) {
    static const char *const measured[] = {"pthread-haswell", "pthread-skylake-avx512"}; /* the entries */
    const char *entry = "pthread -> pthread-haswell";
    for (size_t i = 0; i < sizeof measured / sizeof *measured; i++) {
      const size_t len = strlen(measured[i]);
      if (!strncmp(rt->info.name, measured[i], len) && rt->info.name[len] == '-') entry = measured[i];
    }
    char want[128];
    snprintf(want, sizeof want, "database entry %s (%d shapes;", entry, an_gemm_tuned_shapes(rt));
    assert_int_equal(strncmp(rt->gemm_tuning, want, strlen(want)), 0);
    assert_true(an_gemm_tuned_shapes(rt) >= 20);
  }
  an_gemm_config configs[64];
  const int n = an_tuning_database_configs(rt, configs, 64);
  assert_true(n >= pocl_cpu);
  an_runtime_destroy(rt);
  setenv("ALEXNET_NO_TUNING", "1", 1); /* no table: the configuration applied below is the one that runs */
  rt = test_runtime();
  unsetenv("ALEXNET_NO_TUNING");
  for (int i = 0; i < n; i++) {
    char text[512];
    an_gemm_config c = configs[i];
    c.min_indirect_size = 1;
    an_gemm_config_format(&c, text, sizeof text);
    printf("  database configuration %d: %s\n", i, text);
    TEST_OK(an_gemm_config_apply(rt, &c));
    check_gemm(rt, 0, 0, 67, 45, 33, 20 + (uint64_t)i);
    check_gemm(rt, 0, 1, 45, 70, 129, 40 + (uint64_t)i);
    check_gemm(rt, 1, 0, 130, 17, 65, 60 + (uint64_t)i);
    check_gemm(rt, 1, 1, 33, 66, 31, 80 + (uint64_t)i);
  }
  an_runtime_destroy(rt);
}

/* CLBlast's Xgemm kernel 1 (GEMMK=1): its constraints, and every transpose pair in both of the ways
 * an_gemm may hand a problem to it (row-major, or swapped column-major when that copies fewer floats:
 * each pair below is checked once with its large operand in each place), against the plain-C reference */
static void test_kernel1(void **state) {
  (void)state;
  setenv("ALEXNET_NO_TUNING", "1", 1); /* no table: the configuration applied below is the one that runs */
  an_runtime *rt = test_runtime();
  unsetenv("ALEXNET_NO_TUNING");
  const an_gemm_config good[] = {{{1, 4, 1, 1, 4, 4, 64, 16, 16, 64, 0, 0, 0, 0, 16, 4}, 1},
                                 {{1, 2, 1, 1, 8, 8, 64, 8, 8, 64, 0, 0, 0, 0, 8, 2}, 1},
                                 {{1, 2, 1, 1, 2, 2, 16, 4, 4, 16, 0, 0, 0, 0, 2, 2}, 1}};
  const an_gemm_config bad[] = {
      {{1, 2, 1, 1, 8, 8, 64, 8, 8, 64, 0, 0, 0, 0, 8, 4}, 1},  /* KREG not a multiple of VWN */
      {{1, 4, 1, 1, 8, 8, 64, 8, 8, 64, 1, 0, 0, 0, 8, 4}, 1},  /* local memory */
      {{1, 4, 2, 1, 8, 8, 64, 8, 8, 64, 0, 0, 0, 0, 8, 4}, 1},  /* KWG other than 1 */
      {{1, 4, 1, 1, 4, 8, 64, 8, 8, 64, 0, 0, 0, 0, 8, 4}, 1},  /* MDIMA other than MDIMC */
      {{1, 4, 1, 1, 8, 8, 60, 8, 8, 60, 0, 0, 0, 0, 8, 4}, 1},  /* MWG not a multiple of MDIMC·VWM */
      {{1, 4, 1, 1, 8, 8, 64, 8, 8, 32, 0, 0, 0, 0, 8, 4}, 1},  /* MWG other than NWG: wrong products */
      {{2, 4, 1, 1, 8, 8, 64, 8, 8, 64, 0, 0, 0, 0, 8, 4}, 1}}; /* no kernel 2 */
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) assert_false(an_gemm_config_valid(&bad[i], &rt->info));
  for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
    assert_true(an_gemm_config_valid(&good[i], &rt->info));
    TEST_OK(an_gemm_config_apply(rt, &good[i]));
    assert_int_equal(an_gemm_kernel_in_effect(rt), 1);
    const uint64_t seed = 100 + 10 * (uint64_t)i;
    check_gemm(rt, 0, 0, 67, 45, 33, seed);      /* row-major: nothing copied */
    check_gemm(rt, 0, 1, 5, 70, 129, seed + 1);  /* swapped: B (the fc weight's place) left in place */
    check_gemm(rt, 0, 1, 70, 5, 129, seed + 2);  /* row-major */
    check_gemm(rt, 1, 0, 130, 17, 65, seed + 3); /* swapped */
    check_gemm(rt, 1, 0, 5, 130, 65, seed + 4);  /* row-major */
    check_gemm(rt, 1, 1, 3, 2, 100, seed + 5);   /* swapped */
    check_gemm(rt, 1, 1, 40, 40, 3, seed + 6);   /* row-major */
  }
  TEST_OK(an_gemm_config_apply(rt, &config_b));
  assert_int_equal(an_gemm_kernel_in_effect(rt), 0);
  an_runtime_destroy(rt);
}

int main(void) {
  snprintf(dir, sizeof dir, "/tmp/an_tune_XXXXXX");
  if (!mkdtemp(dir)) return 1;
  /* CLBlast's tuning throughout: on a CPU whose GEMMs would run on the project's kernel (AVX-512) the
   * per-shape switch and the slice widths are still CLBlast's to check (test_gemm covers that kernel) */
  setenv("ALEXNET_GEMM", "clblast", 1);
  /* the search first: it measures CLBlast's untuned default, before any override in this process */
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_search),         cmocka_unit_test(test_known_configs),
      cmocka_unit_test(test_slice_widths),   cmocka_unit_test(test_file_and_switching),
      cmocka_unit_test(test_quick_search),   cmocka_unit_test(test_database_rules),
      cmocka_unit_test(test_database_entry), cmocka_unit_test(test_kernel1)};
  const int failed = cmocka_run_group_tests(tests, NULL, NULL);
  rmdir(dir);
  return failed;
}
