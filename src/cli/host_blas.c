/* The host's BLAS as a yardstick for `alexnet bench`: the GEMM calls of a step, timed with the sgemm of
 * the machine's BLAS on the host's cores, so that the bench can print how far the device's GEMMs are
 * from what the same cores reach with a hand-tuned library. The BLAS is looked up at run time
 * (libopenblas.so.0, then the libblas.so.3 alternative; Debian's libopenblas0 or libblas3): not a
 * dependency of the project, and nothing is printed of it when there is none.
 *
 * Buffers, sized for the largest call:
 *   a (m·k), b (k·n), c (m·n)   of each call's row-major operands, tightly packed */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

typedef void (*sgemm_fn)(const char *ta, const char *tb, const int *m, const int *n, const int *k,
                         const float *alpha, const float *a, const int *lda, const float *b, const int *ldb,
                         const float *beta, float *c, const int *ldc);
typedef void (*set_threads_fn)(int);

static void *g_lib;
static sgemm_fn g_sgemm;
static char g_name[64];

const char *host_blas_open(int threads) {
  static const char *const names[] = {"libopenblas.so.0", "libblas.so.3"};
  if (!g_lib)
    for (size_t i = 0; i < sizeof names / sizeof names[0] && !g_lib; i++) {
      void *lib = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
      sgemm_fn f = lib ? (sgemm_fn)dlsym(lib, "sgemm_") : NULL;
      if (f) g_lib = lib, g_sgemm = f, snprintf(g_name, sizeof g_name, "%s", names[i]);
      else if (lib) dlclose(lib);
    }
  if (!g_lib) return NULL;
  set_threads_fn set = (set_threads_fn)dlsym(g_lib, "openblas_set_num_threads");
  if (set && threads > 0) set(threads);
  return g_name;
}

/* One pass over the calls: the row-major C = op(A)·op(B) is the column-major Cᵀ = op(B)ᵀ·op(A)ᵀ. */
static void run_calls(const an_gemm_call *calls, int n, const float *a, const float *b, float *c) {
  const float alpha = 1.0f, beta = 0.0f;
  for (int i = 0; i < n; i++) {
    const an_gemm_call *g = &calls[i];
    const int m = (int)g->m, nn = (int)g->n, k = (int)g->k;
    const int lda = g->trans_a ? m : k, ldb = g->trans_b ? k : nn, ldc = nn;
    g_sgemm(g->trans_b ? "T" : "N", g->trans_a ? "T" : "N", &nn, &m, &k, &alpha, b, &ldb, a, &lda, &beta, c, &ldc);
  }
}

int host_blas_time(const an_gemm_call *calls, int n, int rounds, double *seconds, double *flop) {
  size_t na = 1, nb = 1, nc = 1;
  *flop = 0;
  for (int i = 0; i < n; i++) {
    const size_t m = calls[i].m, nn = calls[i].n, k = calls[i].k;
    if (m * k > na) na = m * k;
    if (k * nn > nb) nb = k * nn;
    if (m * nn > nc) nc = m * nn;
    *flop += 2.0 * (double)m * (double)nn * (double)k;
  }
  float *a = malloc(na * sizeof *a), *b = malloc(nb * sizeof *b), *c = malloc(nc * sizeof *c);
  if (!g_sgemm || !a || !b || !c) {
    free(a), free(b), free(c);
    return 1;
  }
  for (size_t i = 0; i < na; i++) a[i] = (float)(i % 7) * 0.25f - 0.75f;
  for (size_t i = 0; i < nb; i++) b[i] = (float)(i % 5) * 0.25f - 0.5f;
  run_calls(calls, n, a, b, c); /* warm-up: the library's threads and the pages */
  *seconds = 0;
  for (int r = 0; r < rounds; r++) {
    const double t0 = an_seconds();
    run_calls(calls, n, a, b, c);
    const double dt = an_seconds() - t0;
    if (r == 0 || dt < *seconds) *seconds = dt;
  }
  free(a), free(b), free(c);
  return 0;
}
