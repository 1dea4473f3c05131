/* GEMM tuning per device: CLBlast's Xgemm kernel parameters searched on the exact GEMM shapes of a
 * model's training step, verified against the untuned result, stored in a cache file keyed by device
 * and driver, and applied at every later startup (CLBlastOverrideParameters). */
#ifndef ALEXNET_TUNE_H
#define ALEXNET_TUNE_H

#include "alexnet/model.h"

#ifdef __cplusplus
extern "C" {
#endif

enum { AN_XGEMM_N_PARAMS = 16 };
/* The Xgemm parameters in the order an_gemm_config.v holds them. */
extern const char *const an_xgemm_param_names[AN_XGEMM_N_PARAMS];

typedef struct an_gemm_config {
  size_t v[AN_XGEMM_N_PARAMS];  /* GEMMK KREG KWG KWI MDIMA MDIMC MWG NDIMB NDIMC NWG SA SB STRM STRN VWM VWN */
  size_t min_indirect_size;     /* CLBlast's XGEMM_MIN_INDIRECT_SIZE; 0 keeps CLBlast's own */
} an_gemm_config;

typedef struct an_gemm_shape {
  int trans_a, trans_b;
  size_t m, n, k;
  int count; /* how many times a step runs it */
} an_gemm_shape;

/* The distinct GEMMs of one training step of net (forward, weight and input gradients), with counts. */
int an_net_gemm_shapes(const an_net *net, an_gemm_shape *shapes, int max_shapes);

/* Applies a configuration to rt's device (every later CLBlast GEMM on it uses it). */
an_status an_gemm_config_apply(an_runtime *rt, const an_gemm_config *c);
/* "GEMMK=0 KREG=1 … VWN=8 MIN_INDIRECT=128" */
void an_gemm_config_format(const an_gemm_config *c, char *buf, size_t size);

/* The cache file: $ALEXNET_TUNING_FILE, else $XDG_CACHE_HOME/alexnet/gemm-tuning.txt, else
 * $HOME/.cache/alexnet/gemm-tuning.txt. */
void an_tuning_path(char *buf, size_t size);
/* Applies the cache's entry for rt's device and driver, if there is one (*applied says). Lines that do
 * not parse, or whose values are out of range, are ignored: the untuned default stays. */
an_status an_tuning_load(an_runtime *rt, const char *path, int *applied, an_gemm_config *config);
/* Replaces (or adds) rt's device's entry, atomically (temporary file, rename). */
an_status an_tuning_save(const an_runtime *rt, const char *path, const an_gemm_config *c, double gflops);

typedef void (*an_tune_progress)(void *user, int candidate, int n_candidates, const an_gemm_config *c,
                                 double gflops, double best_gflops, const char *note);

typedef struct an_tune_result {
  an_gemm_config best;
  double default_gflops, best_gflops; /* on the shapes, weighted by their counts */
  int n_tried, n_rejected;            /* rejected: wrong results or failed to build/run */
} an_tune_result;

/* Searches up to max_candidates configurations: each is screened on the step's largest GEMM, the best
 * few are then timed on every shape. A candidate whose results differ from the untuned GEMM's is
 * rejected. Must run before any other override on this process's device (it measures the default
 * first). Leaves the best configuration applied. */
an_status an_tune_gemm(an_runtime *rt, const an_gemm_shape *shapes, int n_shapes, int max_candidates,
                       uint64_t seed, an_tune_progress progress, void *user, an_tune_result *result);

/* Times each shape once after a warm-up run with whatever configuration is applied: seconds[i] is one
 * run of shapes[i] (its count not applied). For reports and comparisons with other BLAS libraries. */
an_status an_gemm_time_shapes(an_runtime *rt, const an_gemm_shape *shapes, int n_shapes, double *seconds);

#ifdef __cplusplus
}
#endif
#endif
