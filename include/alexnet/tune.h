/* GEMM tuning per device: CLBlast's Xgemm kernel parameters searched on the exact GEMM shapes of a
 * model's training step, verified against the untuned result, stored in a cache file keyed by device
 * and driver, and applied at every later startup (CLBlastOverrideParameters).
 *
 * The declarations are grouped by the file that implements them; each file of src/gemm/ uses only
 * those listed before it:
 *   gemm/tuning.c  the tuning database: configurations, the tuning file, the shipped database of tuned
 *                  device families (tuning/database.txt), the per-shape table a runtime switches
 *                  through, the weight gradient's slice widths (and an_runtime_create, in
 *                  alexnet/runtime.h, which applies the file, else the shipped entry, at startup)
 *   gemm/gemm.c    the CLBlast calls (internal: gemm/gemm.h); each GEMM selects its shape's
 *                  configuration first
 *   gemm/tuner.c   the search and the plain timings
 * A net's GEMM shapes and weight-gradient reductions, which the tuner searches on, come from the layer
 * table (alexnet/model.h: an_net_gemm_shapes, an_net_dw_reductions). */
#ifndef ALEXNET_TUNE_H
#define ALEXNET_TUNE_H

#include "alexnet/runtime.h"

#ifdef __cplusplus
extern "C" {
#endif

enum { AN_XGEMM_N_PARAMS = 16 };
/* The Xgemm parameters in the order an_gemm_config.v holds them. */
extern const char *const an_xgemm_param_names[AN_XGEMM_N_PARAMS];

/* Columns per weight-gradient GEMM: a convolution's backward pass splits the reduction over a chunk's
 * output pixels into slices this wide, accumulated with beta = 1 (see layers/conv.c), unless the
 * device's tuning chose a width for that reduction (an_gemm_dw_slice). */
#define AN_CONV_DW_SLICE ((size_t)1024)

/* One GEMM call as a layer issues it: C (m × n) = op(A) · op(B) (+ C), row-major, operands at these
 * offsets of their buffers with these leading dimensions. */
typedef struct an_gemm_call {
  int trans_a, trans_b;
  size_t m, n, k;
  size_t a_off, lda, b_off, ldb, c_off, ldc;
} an_gemm_call;

/* GEMM recording, for tests that check what the layers issue: while a log is set on rt, every GEMM the
 * project runs on it is appended (shape, transposes, offsets, leading dimensions). NULL stops. The log
 * is the caller's; free(log->calls) when done. (gemm/gemm.c) */
typedef struct an_gemm_log {
  an_gemm_call *calls; /* (n) */
  int n, cap;
  int failed; /* an append ran out of memory */
} an_gemm_log;
void an_gemm_record(an_runtime *rt, an_gemm_log *log);

typedef struct an_gemm_config {
  size_t v[AN_XGEMM_N_PARAMS]; /* GEMMK KREG KWG KWI MDIMA MDIMC MWG NDIMB NDIMC NWG SA SB STRM STRN VWM VWN */
  size_t min_indirect_size;    /* CLBlast's XGEMM_MIN_INDIRECT_SIZE; 0 keeps CLBlast's own */
} an_gemm_config;

/* CLBlast runs a GEMM on its direct kernel when m·n·k < XGEMM_MIN_INDIRECT_SIZE³: this threshold sends
 * every GEMM there, 1 sends every GEMM to the indirect (Xgemm) kernel. */
#define AN_GEMM_DIRECT ((size_t)1 << 20)

typedef struct an_gemm_shape {
  int trans_a, trans_b;
  size_t m, n, k;
  int count; /* how many times a step runs it */
  size_t ld; /* both operands' leading dimension when not packed (the weight gradient's slices read
              * rows of the whole chunk: ld = its columns); 0: packed */
} an_gemm_shape;

/* One shape's own configuration (the tuning's per-shape entries). */
typedef struct an_gemm_shape_config {
  int trans_a, trans_b;
  size_t m, n, k;
  an_gemm_config config;
} an_gemm_shape_config;

/* A convolution's weight-gradient reduction: dW (m × n) += dY (m × ncols) · col (n × ncols)ᵀ, run as
 * GEMMs over slices of `width` columns accumulated with beta = 1 (count: how many a step runs: groups ×
 * chunks). The slice width trades cache reuse against per-call overhead; the tuning chooses it. */
typedef struct an_dw_reduction {
  size_t m, n, ncols;
  int count;
  size_t width;
} an_dw_reduction;

/* A tuning's outcome: what an_tune_gemm finds and an_tuning_save stores. */
typedef struct an_tune_result {
  an_gemm_config best;             /* the fallback: any shape without its own entry (other batch sizes) */
  double default_gflops;           /* untuned, on the shapes weighted by their counts */
  double fallback_gflops;          /* the fallback alone on every shape */
  double best_gflops;              /* each shape on its own choice (a re-timed one as its ratio to the fallback,
                             measured back to back, applied to the fallback's time): >= fallback_gflops */
  int n_tried, n_rejected;         /* rejected: wrong results or failed to build/run */
  int n_retimed, n_retime_dropped; /* shapes whose own choice was timed again against the fallback, and
                                       those of them that then kept the fallback */
  int n_shapes;
  an_gemm_shape_config *shapes; /* (n_shapes) each shape's best; an_tune_result_free releases it */
  double *shape_seconds;        /* (n_shapes) one run of each shape: [0..n) untuned, [n..2n) best */
  int n_slices;
  an_dw_reduction *slices; /* (n_slices) the widths chosen by an_tune_dw_widths */
} an_tune_result;

/* ---- gemm/tuning.c: the tuning database ---- */

/* Applies a configuration to rt's device (every later CLBlast GEMM on it uses it). */
an_status an_gemm_config_apply(an_runtime *rt, const an_gemm_config *c);
/* "GEMMK=0 KREG=1 … VWN=8 MIN_INDIRECT=128" */
void an_gemm_config_format(const an_gemm_config *c, char *buf, size_t size);

/* The cache file: $ALEXNET_TUNING_FILE, else $XDG_CACHE_HOME/alexnet/gemm-tuning.txt, else
 * $HOME/.cache/alexnet/gemm-tuning.txt. */
void an_tuning_path(char *buf, size_t size);
/* Applies the cache's entry for rt's device and driver, if there is one (*applied says): the fallback
 * configuration, and each listed shape's own, which an_gemm_select switches to before that shape's
 * GEMMs. Lines that do not parse, or whose values are out of range, are ignored: without a valid
 * fallback line the untuned default stays. *config receives the fallback. an_runtime_create calls it. */
an_status an_tuning_load(an_runtime *rt, const char *path, int *applied, an_gemm_config *config);
/* Writes rt's device's entries (the fallback, the per-shape and slice-width lines), atomically
 * (temporary file, fsync, rename); other devices' lines are kept. With merge, so are this device's
 * lines for shapes and reductions r does not have (earlier tunings of other models or batches);
 * without, they are dropped. The fallback is always r's. */
an_status an_tuning_save(const an_runtime *rt, const char *path, const an_tune_result *r, int merge);
/* The distinct indirect-kernel configurations the tuning file at path holds for rt's device, the
 * fallback first, then by the number of shapes that use them; at most max into out. 0 without a file.
 * So a tuning of one model starts from what the tunings of the others found: each search tries a few
 * dozen of the thousands of valid configurations, and each shape stays pinned to its own search's. */
int an_tuning_known_configs(const an_runtime *rt, const char *path, an_gemm_config *out, int max);
void an_tune_result_free(an_tune_result *r);

/* The shipped database (tuning/database.txt, embedded at build time; ALEXNET_TUNING_DATABASE names a
 * file to read instead): entries of the tuning file's format keyed by device family and driver
 * ("pthread-haswell\tPoCL"): the family is a prefix of the device name ending where the name has a '-'
 * or ' ' or ends, the driver "*" or a prefix of the driver version; the longest matching family wins, and
 * an entry whose line reads "use=NAME" takes the entry NAME (of the same driver field) whole. Unlike a
 * tuning file, a shape the entry does not list takes the configuration of its nearest listed shape
 * (same transposes, sum of |ln| of the m, n, k ratios at most ln 16; else the fallback), and a
 * weight-gradient reduction it does not list the width of the same layer's nearest listed one.
 * an_runtime_create applies it when the tuning file has no entry for the device. */
/* Applies the device's entry (*applied says; its name, "pthread-haswell" or "pthread -> pthread-haswell",
 * into entry); an unreadable ALEXNET_TUNING_DATABASE is an error. */
an_status an_tuning_database_load(an_runtime *rt, int *applied, an_gemm_config *config, char *entry,
                                  size_t entry_size);
/* The distinct indirect-kernel configurations of the device's entry, as an_tuning_known_configs. */
int an_tuning_database_configs(const an_runtime *rt, an_gemm_config *out, int max);
/* Sets each reduction's width to the one the device's entry gives it (unchanged without an entry). */
void an_tuning_database_dw_widths(const an_runtime *rt, an_dw_reduction *red, int n_red);
/* What a runtime on this device would apply, without opening one: "tuning file PATH (N shapes)",
 * "database entry pthread-haswell (N shapes)" or "none (...)" (alexnet devices prints it). */
void an_tuning_describe(const an_device_info *info, char *buf, size_t size);

/* Makes CLBlast's next GEMM on rt's device use the tuning's configuration for this shape (its own
 * entry, else the fallback); a no-op when rt is untuned or the configuration is already in effect.
 * CLBlast keeps one override per device: two runtimes on one cl_device_id share it (results stay
 * right, only the speed may not be the tuned one). */
an_status an_gemm_select(an_runtime *rt, int trans_a, int trans_b, size_t m, size_t n, size_t k);
/* How many per-shape entries rt's tuning has (0 untuned or fallback only). */
int an_gemm_tuned_shapes(const an_runtime *rt);

/* The slice width rt's tuning gives this reduction (AN_CONV_DW_SLICE without one); the whole of ncols
 * on a runtime whose GEMMs run on the project's kernel (rt->own_gemm), which slices it itself. */
size_t an_gemm_dw_slice(const an_runtime *rt, size_t m, size_t n, size_t ncols);
/* Sets that width on rt (1 ≤ width ≤ ncols), as a tuning file's line would. */
an_status an_gemm_set_dw_slice(an_runtime *rt, size_t m, size_t n, size_t ncols, size_t width);

/* ---- gemm/tuner.c: the search ---- */

typedef void (*an_tune_progress)(void *user, int candidate, int n_candidates, const an_gemm_config *c, double gflops,
                                 double best_gflops, const char *note);

/* Searches up to max_candidates configurations of the indirect kernel, plus CLBlast's direct kernel:
 * each is timed on every shape, and every shape keeps the fastest; the fallback is the configuration
 * (with the direct/indirect threshold) fastest on all shapes together. The n_known configurations of
 * `known` (an_tuning_known_configs: earlier tunings of this device) are the first candidates, then
 * built-in seeds, then random ones and neighbours of the leader. A candidate whose results differ
 * from the untuned GEMM's on any shape is rejected. Must run before any other override on this
 * process's device (it measures the default first). Leaves the result in effect on rt. quick (alexnet
 * tune --quick) spends less time per candidate: the untuned reference run once and not timed again,
 * the direct kernel timed only on shapes up to 256³, one timed run per candidate, and a shape keeps
 * its own choice when that run is 10 % under the fallback's, without the back-to-back confirmation. */
an_status an_tune_gemm(an_runtime *rt, const an_gemm_shape *shapes, int n_shapes, int max_candidates,
                       const an_gemm_config *known, int n_known, uint64_t seed, int quick, an_tune_progress progress,
                       void *user, an_tune_result *result);

/* Appends to shapes (n of max used) the weight-gradient slices of every width the tuning considers
 * for these reductions, with count 0 (timed, but not part of the step's totals); returns the new n. */
int an_tune_dw_shapes(const an_dw_reduction *red, int n_red, an_gemm_shape *shapes, int n, int max);
/* After an_tune_gemm on shapes that include an_tune_dw_shapes: each reduction's fastest width by the
 * measured per-shape times (whole slices plus the remainder), into r->slices. before/after: the
 * step's estimated weight-gradient seconds at the widths given and at the chosen ones. */
an_status an_tune_dw_widths(an_tune_result *r, const an_gemm_shape *shapes, const an_dw_reduction *red, int n_red,
                            double *before, double *after);

/* Times each shape once after a warm-up run with whatever configuration is applied: seconds[i] is one
 * run of shapes[i] (its count not applied). For reports and comparisons with other BLAS libraries. */
an_status an_gemm_time_shapes(an_runtime *rt, const an_gemm_shape *shapes, int n_shapes, double *seconds);

#ifdef __cplusplus
}
#endif
#endif
