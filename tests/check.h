/* Helpers shared by the tests: a seeded RNG of our own (so data do not depend on the C library),
 * float <-> double conversion, tensor comparison that prints what it found, and the runtime a device
 * test needs. Failures inside these helpers fail the running cmocka test. */
#ifndef ALEXNET_TESTS_CHECK_H
#define ALEXNET_TESTS_CHECK_H

#include <stddef.h>
#include <stdint.h>

#include "alexnet/runtime.h"

/* ---- deterministic data (splitmix64) ---- */
typedef struct test_rng {
  uint64_t state;
} test_rng;

test_rng test_rng_seeded(uint64_t seed);
uint64_t test_rng_next(test_rng *rng);
double test_rng_uniform(test_rng *rng);       /* [0, 1) */
int test_rng_below(test_rng *rng, int bound); /* [0, bound) */

void test_fill_uniform(float *x /* (n) */, size_t n, float lo, float hi, test_rng *rng);
void test_fill_uniform_double(double *x /* (n) */, size_t n, double lo, double hi, test_rng *rng);
/* A random permutation of n evenly spaced values in [-1, 1): no ties, gaps of 2/n (exact in float for
 * n up to 2^24), for max-pool whose gradient is undefined at ties. */
void test_fill_distinct(float *x /* (n) */, size_t n, test_rng *rng);

/* ---- conversion and allocation (an allocation failure fails the test) ---- */
void test_to_double(double *dst /* (n) */, const float *src /* (n) */, size_t n);
void test_to_float(float *dst /* (n) */, const double *src /* (n) */, size_t n);
float *test_floats(size_t n);   /* malloc'd, uninitialised */
double *test_doubles(size_t n); /* calloc'd: zeros */
double *test_dup_double(const float *src /* (n) */, size_t n);

/* ---- comparison ----
 * Worst |got - want| over the whole tensor against tol = rtol · max|want| + atol. Prints one line
 * (name, n, max|want|, worst error and its index, got and want there, PASS or FAIL) and returns 0 when
 * it passes, 1 when not; a NaN or Inf in got fails. The caller asserts: assert_int_equal(check_close(…), 0). */
int check_close(const char *what, const float *got /* (n) */, const double *want /* (n) */, size_t n, double rtol,
                double atol);
int check_close_double(const char *what, const double *got /* (n) */, const double *want /* (n) */, size_t n,
                       double rtol, double atol);

/* ---- device ---- */
/* an_runtime_create(NULL, …): the device from ALEXNET_DEVICE or the first one. Without one the test
 * fails with an_last_error() — a suite that finds no OpenCL device fails, it never skips. Prints the
 * device it got. */
an_runtime *test_runtime(void);

/* cmocka group setup/teardown around test_runtime(): the runtime is test_rt. */
extern an_runtime *test_rt;
int test_runtime_setup(void **state);
int test_runtime_teardown(void **state);

/* Fails the test, printing the expression, an_last_error() and the status name, unless status is AN_OK. */
#define TEST_OK(expr) test_ok_((expr), #expr, __FILE__, __LINE__)
void test_ok_(an_status status, const char *expr, const char *file, int line);

#endif
