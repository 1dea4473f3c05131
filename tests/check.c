/* Test helpers: see check.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "check.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "alexnet/status.h"

/* ---- deterministic data ---- */

test_rng test_rng_seeded(uint64_t seed) {
  test_rng rng = {seed};
  return rng;
}

uint64_t test_rng_next(test_rng *rng) {
  uint64_t z = (rng->state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

double test_rng_uniform(test_rng *rng) { return (double)(test_rng_next(rng) >> 11) * 0x1.0p-53; }

int test_rng_below(test_rng *rng, int bound) { return (int)(test_rng_uniform(rng) * bound); }

void test_fill_uniform(float *x, size_t n, float lo, float hi, test_rng *rng) {
  for (size_t i = 0; i < n; i++) x[i] = (float)(lo + (hi - lo) * test_rng_uniform(rng));
}

void test_fill_uniform_double(double *x, size_t n, double lo, double hi, test_rng *rng) {
  for (size_t i = 0; i < n; i++) x[i] = lo + (hi - lo) * test_rng_uniform(rng);
}

void test_fill_distinct(float *x, size_t n, test_rng *rng) {
  for (size_t i = 0; i < n; i++) x[i] = (float)(-1.0 + 2.0 * (double)i / (double)n);
  for (size_t i = n; i > 1; i--) { /* Fisher-Yates */
    size_t j = (size_t)(test_rng_uniform(rng) * (double)i);
    float t = x[i - 1];
    x[i - 1] = x[j];
    x[j] = t;
  }
}

/* ---- conversion and allocation ---- */

void test_to_double(double *dst, const float *src, size_t n) {
  for (size_t i = 0; i < n; i++) dst[i] = src[i];
}

void test_to_float(float *dst, const double *src, size_t n) {
  for (size_t i = 0; i < n; i++) dst[i] = (float)src[i];
}

float *test_floats(size_t n) {
  float *p = malloc(sizeof(float) * (n ? n : 1));
  if (!p) fail_msg("out of host memory allocating %zu floats", n);
  return p;
}

double *test_doubles(size_t n) {
  double *p = calloc(n ? n : 1, sizeof(double));
  if (!p) fail_msg("out of host memory allocating %zu doubles", n);
  return p;
}

double *test_dup_double(const float *src, size_t n) {
  double *p = test_doubles(n);
  test_to_double(p, src, n);
  return p;
}

/* ---- comparison ---- */

/* One of got_f, got_d is NULL: the comparison is the same for float and double results. */
static int compare(const char *what, const float *got_f, const double *got_d, const double *want, size_t n,
                   double rtol, double atol) {
  double max_want = 0.0, worst = -1.0;
  size_t worst_i = 0;
  for (size_t i = 0; i < n; i++) {
    double a = fabs(want[i]);
    if (a > max_want) max_want = a;
    double got = got_f ? (double)got_f[i] : got_d[i];
    double err = fabs(got - want[i]);
    if (!isfinite(err)) err = INFINITY; /* NaN or Inf in got (or want) is the worst error there is */
    if (err > worst) worst = err, worst_i = i;
  }
  if (n == 0) worst = 0.0;
  double tol = rtol * max_want + atol;
  int pass = worst <= tol;
  double got_at = n == 0 ? 0.0 : got_f ? (double)got_f[worst_i] : got_d[worst_i];
  double want_at = n == 0 ? 0.0 : want[worst_i];
  printf("  %-30s n=%-9zu max|want|=%-10.4g worst=%-10.3g at [%zu] got %.9g want %.9g  tol=%.3g  %s\n", what, n,
         max_want, worst, worst_i, got_at, want_at, tol, pass ? "PASS" : "FAIL");
  fflush(stdout);
  return pass ? 0 : 1;
}

int check_close(const char *what, const float *got, const double *want, size_t n, double rtol, double atol) {
  return compare(what, got, NULL, want, n, rtol, atol);
}

int check_close_double(const char *what, const double *got, const double *want, size_t n, double rtol, double atol) {
  return compare(what, NULL, got, want, n, rtol, atol);
}

/* ---- device ---- */

an_runtime *test_runtime(void) {
  an_runtime *rt = NULL;
  an_status status = an_runtime_create(NULL, &rt);
  if (status != AN_OK || !rt) {
    fail_msg("no OpenCL runtime, so the device tests cannot run (this is a failure, not a skip): "
             "an_runtime_create returned %s: %s",
             an_status_name(status), an_last_error());
  }
  printf("device: %s (%s), %s\n", rt->info.name, rt->info.platform_name, rt->info.device_version);
  fflush(stdout);
  return rt;
}

void test_ok_(an_status status, const char *expr, const char *file, int line) {
  if (status == AN_OK) return;
  print_error("ERROR: %s returned %s: %s\n", expr, an_status_name(status), an_last_error());
  _fail(file, line);
}

an_runtime *test_rt;

int test_runtime_setup(void **state) {
  (void)state;
  test_rt = test_runtime();
  return test_rt ? 0 : -1;
}

int test_runtime_teardown(void **state) {
  (void)state;
  an_runtime_destroy(test_rt);
  test_rt = NULL;
  return 0;
}
