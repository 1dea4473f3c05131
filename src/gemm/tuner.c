/* The GEMM tuner: CLBlast's Xgemm parameters searched on a model's own GEMM shapes (candidates timed
 * on every shape, checked against the untuned results, each shape's choice confirmed against the
 * fallback), the weight gradient's slice widths chosen from those timings, and plain timings of the
 * shapes for reports. What it finds goes to the tuning database (tuning.c). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <clblast_c.h>

#include "alexnet/tune.h"
#include "gemm/gemm.h"
#include "gemm/tuning.h"
#include "runtime/check.h"
#include "runtime/rng.h"

/* ---- the weight gradient's slice widths ---- */

static const size_t dw_widths[] = {256, 512, 1024, 2048, 4096, 8192, 16384};

static int add_timed_shape(an_gemm_shape *shapes, int n, int max, size_t m, size_t nn, size_t k, size_t ld) {
  for (int i = 0; i < n; i++)
    if (!shapes[i].trans_a && shapes[i].trans_b && shapes[i].m == m && shapes[i].n == nn && shapes[i].k == k)
      return n;
  if (n == max) return n;
  const an_gemm_shape s = {0, 1, m, nn, k, 0, ld};
  shapes[n] = s;
  return n + 1;
}

int an_tune_dw_shapes(const an_dw_reduction *red, int n_red, an_gemm_shape *shapes, int n, int max) {
  for (int r = 0; r < n_red; r++)
    for (size_t w = 0; w < sizeof dw_widths / sizeof dw_widths[0]; w++) {
      const size_t width = dw_widths[w] < red[r].ncols ? dw_widths[w] : red[r].ncols;
      n = add_timed_shape(shapes, n, max, red[r].m, red[r].n, width, red[r].ncols);
      if (red[r].ncols % width)
        n = add_timed_shape(shapes, n, max, red[r].m, red[r].n, red[r].ncols % width, red[r].ncols);
      if (width == red[r].ncols) break;
    }
  return n;
}

/* the best measured seconds of NT m×n×k among the tuned shapes; < 0 when it was not measured */
static double measured(const an_tune_result *r, const an_gemm_shape *shapes, size_t m, size_t n, size_t k) {
  for (int i = 0; i < r->n_shapes; i++)
    if (!shapes[i].trans_a && shapes[i].trans_b && shapes[i].m == m && shapes[i].n == n && shapes[i].k == k)
      return r->shape_seconds[r->n_shapes + i];
  return -1;
}

static double width_cost(const an_tune_result *r, const an_gemm_shape *shapes, const an_dw_reduction *red,
                         size_t width) {
  if (width > red->ncols) width = red->ncols; /* one slice: the whole reduction */
  const double whole = measured(r, shapes, red->m, red->n, width);
  const double rest = red->ncols % width ? measured(r, shapes, red->m, red->n, red->ncols % width) : 0;
  if (whole < 0 || rest < 0) return -1;
  return red->count * ((double)(red->ncols / width) * whole + rest);
}

an_status an_tune_dw_widths(an_tune_result *r, const an_gemm_shape *shapes, const an_dw_reduction *red, int n_red,
                            double *before, double *after) {
  *before = *after = 0;
  free(r->slices);
  r->n_slices = 0;
  if (!(r->slices = calloc((size_t)(n_red ? n_red : 1), sizeof *r->slices)))
    return AN_FAIL(AN_ERR_HOST_ALLOC, "slice widths");
  for (int i = 0; i < n_red; i++) {
    const double now = width_cost(r, shapes, &red[i], red[i].width);
    an_dw_reduction pick = red[i];
    double best = now;
    for (size_t w = 0; w < sizeof dw_widths / sizeof dw_widths[0]; w++) {
      const size_t width = dw_widths[w] < red[i].ncols ? dw_widths[w] : red[i].ncols;
      const double cost = width_cost(r, shapes, &red[i], width);
      if (cost >= 0 && (best < 0 || cost < best)) best = cost, pick.width = width;
      if (width == red[i].ncols) break;
    }
    if (best < 0) best = 0; /* nothing measured for it: its width stays */
    *before += now >= 0 ? now : best;
    *after += best;
    r->slices[r->n_slices++] = pick;
  }
  return AN_OK;
}

/* ---- the search ---- */

typedef struct bench_bufs {
  cl_mem a, b, c;
  float **want; /* (n_shapes) untuned results */
  float *got;
  size_t max_c;
} bench_bufs;

/* The operands' leading dimensions and sizes in floats (row-major, as the net lays them out). */
static size_t shape_lda(const an_gemm_shape *s) { return s->ld ? s->ld : s->trans_a ? s->m : s->k; }
static size_t shape_ldb(const an_gemm_shape *s) { return s->ld ? s->ld : s->trans_b ? s->k : s->n; }
static size_t shape_a_floats(const an_gemm_shape *s) { return (s->trans_a ? s->k : s->m) * shape_lda(s); }
static size_t shape_b_floats(const an_gemm_shape *s) { return (s->trans_b ? s->n : s->k) * shape_ldb(s); }

static CLBlastStatusCode run_gemm(an_runtime *rt, const an_gemm_shape *s, bench_bufs *bb) {
  const size_t lda = shape_lda(s), ldb = shape_ldb(s);
  return an_clblast_sgemm(rt, s->trans_a, s->trans_b, s->m, s->n, s->k, 1.0f, bb->a, 0, lda, bb->b, 0, ldb, 0.0f,
                          bb->c, 0, s->n, NULL);
}

/* How time_each runs the shapes. */
typedef struct time_plan {
  int record;          /* store the results as the reference instead of checking them */
  const double *limit; /* (n) or NULL: each shape's best time so far */
  int may_stop;        /* a candidate far behind the limits stops early */
  int runs;            /* timed runs after the warm-up, at most (0: the warm-up's time stands) */
  double skip_above;   /* > 0: shapes with m·n·k above it are not run (HUGE_VAL) */
} time_plan;

static int skipped(const time_plan *p, const an_gemm_shape *s) {
  return p->skip_above > 0 && (double)s->m * s->n * s->k > p->skip_above;
}

/* Checks the result of shape i in bb->c against the reference (or records it). 0, -1: the read failed,
 * -2: it differs. */
static int check_result(an_runtime *rt, const an_gemm_shape *s, int i, bench_bufs *bb, int record) {
  const size_t count = s->m * s->n;
  float *dst = record ? bb->want[i] : bb->got;
  if (clEnqueueReadBuffer(rt->queue, bb->c, CL_TRUE, 0, count * sizeof(float), dst, 0, NULL, NULL)) return -1;
  if (record) return 0;
  double worst = 0, scale = 0;
  for (size_t j = 0; j < count; j++) {
    const double d = fabs((double)bb->got[j] - bb->want[i][j]);
    if (!(d <= worst)) worst = d; /* NaN counts as worst */
    if (fabs(bb->want[i][j]) > scale) scale = fabs(bb->want[i][j]);
  }
  return worst <= 1e-3 * scale + 1e-5 ? 0 : -2;
}

/* One run of each shape (after a warm-up run that also builds the kernels) into seconds[i]. Returns 0,
 * -1 when a GEMM fails, -2 when a result differs from the untuned one. A shape whose warm-up already
 * took more than 3x limit[i] (when limit is given) is not run again: the warm-up's time stands (a
 * clearly slow candidate costs one run). With may_stop, a candidate whose warm-ups so far took over 4x
 * the limits' sum (+1 s) stops there: returns 1, the shapes left at HUGE_VAL. */
static int time_each(an_runtime *rt, const an_gemm_shape *shapes, int n, bench_bufs *bb, const time_plan *p,
                     double *seconds) {
  /* the first GEMM under a configuration builds its program (seconds on a CPU device): not timed */
  int first = 0;
  while (first < n && skipped(p, &shapes[first])) first++;
  if (first < n && (run_gemm(rt, &shapes[first], bb) != CLBlastSuccess || clFinish(rt->queue) != CL_SUCCESS))
    return -1;
  double spent_all = 0, limit_all = 0;
  for (int i = 0; i < n; i++) {
    const an_gemm_shape *s = &shapes[i];
    if (p->may_stop && p->limit && spent_all > 4 * limit_all + 1.0) { /* far behind the best: not worth finishing */
      for (int j = i; j < n; j++) seconds[j] = HUGE_VAL;
      return 1;
    }
    if (skipped(p, s)) {
      seconds[i] = HUGE_VAL;
      continue;
    }
    double t0 = an_seconds();
    if (run_gemm(rt, s, bb) != CLBlastSuccess || clFinish(rt->queue) != CL_SUCCESS) return -1; /* warm-up */
    seconds[i] = an_seconds() - t0;
    spent_all += seconds[i];
    if (p->limit) limit_all += p->limit[i];
    if (!p->limit || !(seconds[i] > 3 * p->limit[i])) {
      /* the fastest of up to `runs` runs, while they take under 50 ms together (small GEMMs are noisy) */
      double spent = 0;
      for (int run = 0; run < p->runs && (run == 0 || spent < 0.05); run++) {
        t0 = an_seconds();
        if (run_gemm(rt, s, bb) != CLBlastSuccess || clFinish(rt->queue) != CL_SUCCESS) return -1;
        const double t = an_seconds() - t0;
        spent += t;
        if (run == 0 || t < seconds[i]) seconds[i] = t;
      }
    }
    const int rc = check_result(rt, s, i, bb, p->record);
    if (rc) return rc;
  }
  return 0;
}

/* One shape under configuration c, again: a build-and-warm-up run, then the fastest of 3 (seconds in
 * *t; 0, or -1 when a GEMM fails). The search timed each candidate once per shape, between other
 * shapes; a shape's own choice is confirmed against the fallback back to back before it is kept. */
static int retime(an_runtime *rt, const an_gemm_shape *s, bench_bufs *bb, const an_gemm_config *c, double *t) {
  if (an_gemm_config_apply(rt, c) != AN_OK) return -1;
  if (run_gemm(rt, s, bb) != CLBlastSuccess || clFinish(rt->queue) != CL_SUCCESS) return -1;
  for (int run = 0; run < 3; run++) {
    const double t0 = an_seconds();
    if (run_gemm(rt, s, bb) != CLBlastSuccess || clFinish(rt->queue) != CL_SUCCESS) return -1;
    const double dt = an_seconds() - t0;
    if (run == 0 || dt < *t) *t = dt;
  }
  return 0;
}

static double shapes_flop(const an_gemm_shape *shapes, int n) {
  double f = 0;
  for (int i = 0; i < n; i++) f += 2.0 * shapes[i].m * shapes[i].n * shapes[i].k * shapes[i].count;
  return f;
}

static double weighted(const an_gemm_shape *shapes, int n, const double *seconds) {
  double t = 0;
  for (int i = 0; i < n; i++)
    if (shapes[i].count) t += seconds[i] * shapes[i].count; /* count 0: timed, not in the step (inf · 0) */
  return t;
}

/* The values the search draws from, per parameter (MDIMA follows MDIMC, NDIMB follows NDIMC; kernel 1,
 * a quarter of the draws, fixes KWG, KWI, SA, SB, STRM and STRN: see fit_kernel). */
static const size_t opt_wg[] = {8, 16, 32, 64, 128}, opt_kwg[] = {16, 32}, opt_dim[] = {1, 2, 4, 8, 16},
                    opt_kwi[] = {2, 8}, opt_vw[] = {1, 2, 4, 8, 16}, opt_bit[] = {0, 1}, opt_gemmk[] = {0, 0, 0, 1},
                    opt_kreg[] = {1, 2, 4, 8, 16};
#define PICK(opts, s) ((opts)[an_rng_next(s) % (sizeof(opts) / sizeof((opts)[0]))])

static void set_param(an_gemm_config *c, int which, an_rng *s) {
  switch (which) {
    case 0: c->v[AN_XGEMM_MWG] = PICK(opt_wg, s); break;
    case 1: c->v[AN_XGEMM_NWG] = PICK(opt_wg, s); break;
    case 2: c->v[AN_XGEMM_KWG] = PICK(opt_kwg, s); break;
    case 3: c->v[AN_XGEMM_MDIMC] = c->v[AN_XGEMM_MDIMA] = PICK(opt_dim, s); break;
    case 4: c->v[AN_XGEMM_NDIMC] = c->v[AN_XGEMM_NDIMB] = PICK(opt_dim, s); break;
    case 5: c->v[AN_XGEMM_KWI] = PICK(opt_kwi, s); break;
    case 6: c->v[AN_XGEMM_VWM] = PICK(opt_vw, s); break;
    case 7: c->v[AN_XGEMM_VWN] = PICK(opt_vw, s); break;
    case 8: c->v[AN_XGEMM_SA] = PICK(opt_bit, s); break;
    case 9: c->v[AN_XGEMM_SB] = PICK(opt_bit, s); break;
    case 10: c->v[AN_XGEMM_STRM] = PICK(opt_bit, s); break;
    case 11: c->v[AN_XGEMM_STRN] = PICK(opt_bit, s); break;
    case 12: c->v[AN_XGEMM_GEMMK] = PICK(opt_gemmk, s); break;
    default: c->v[AN_XGEMM_KREG] = PICK(opt_kreg, s); break;
  }
}
enum { N_SEARCHED_PARAMS = 14 };

/* The parameters one kernel fixes, set to what it takes (kernel 1: KWG = KWI = 1, no local memory or
 * strides; kernel 0: KREG = 1), so that a draw or a neighbour can cross between the two. */
static void fit_kernel(an_gemm_config *c) {
  size_t *v = c->v;
  if (v[AN_XGEMM_GEMMK] == 1) {
    v[AN_XGEMM_KWG] = v[AN_XGEMM_KWI] = 1;
    v[AN_XGEMM_SA] = v[AN_XGEMM_SB] = v[AN_XGEMM_STRM] = v[AN_XGEMM_STRN] = 0;
    return;
  }
  v[AN_XGEMM_KREG] = 1;
  if (v[AN_XGEMM_KWG] < opt_kwg[0]) v[AN_XGEMM_KWG] = opt_kwg[0], v[AN_XGEMM_KWI] = opt_kwi[0];
}

static int already_tried(const an_gemm_config *tried, int n, const an_gemm_config *c) {
  for (int i = 0; i < n; i++)
    if (!memcmp(tried[i].v, c->v, sizeof c->v)) return 1;
  return 0;
}

static an_gemm_config random_config(an_rng *s, const an_device_info *info, const an_gemm_config *tried,
                                    int n_tried) {
  for (int attempt = 0;; attempt++) {
    an_gemm_config c = {{0, 1}, 0};
    for (int p = 0; p < N_SEARCHED_PARAMS; p++) set_param(&c, p, s);
    fit_kernel(&c);
    if (an_gemm_config_valid(&c, info) && (attempt > 1000 || !already_tried(tried, n_tried, &c))) return c;
  }
}

/* A neighbour of base: one or two parameters redrawn, valid and not tried yet (else a random one). */
static an_gemm_config neighbour(const an_gemm_config *base, an_rng *s, const an_device_info *info,
                                const an_gemm_config *tried, int n_tried) {
  for (int attempt = 0; attempt < 500; attempt++) {
    an_gemm_config c = *base;
    const int changes = 1 + (int)(an_rng_next(s) % 2);
    for (int k = 0; k < changes; k++) set_param(&c, (int)(an_rng_next(s) % N_SEARCHED_PARAMS), s);
    fit_kernel(&c);
    if (an_gemm_config_valid(&c, info) && !already_tried(tried, n_tried, &c)) return c;
  }
  return random_config(s, info, tried, n_tried);
}

/* Does CLBlast send this shape to the direct kernel under threshold t? */
static int goes_direct(const an_gemm_shape *s, size_t t) { return (double)s->m * s->n * s->k < (double)t * t * t; }

/* Built-in first candidates of the indirect kernel, known to suit CPUs and GPUs; the third and fourth are
 * kernel 1 (on PoCL the fully connected forward pass's fastest: it leaves the (OUT, IN) weight in place). */
static const size_t candidate_seeds[][AN_XGEMM_N_PARAMS] = {
    {0, 1, 16, 2, 2, 2, 16, 2, 2, 16, 0, 0, 0, 0, 8, 8},   {0, 1, 16, 2, 4, 4, 32, 4, 4, 32, 0, 0, 0, 0, 8, 8},
    {1, 4, 1, 1, 4, 4, 64, 16, 16, 64, 0, 0, 0, 0, 16, 4}, {1, 2, 1, 1, 8, 8, 64, 8, 8, 64, 0, 0, 0, 0, 8, 2},
    {0, 1, 16, 2, 8, 8, 64, 8, 8, 64, 1, 1, 0, 0, 8, 8},   {0, 1, 32, 2, 16, 16, 64, 16, 16, 64, 1, 1, 1, 1, 2, 2},
    {0, 1, 16, 2, 8, 8, 64, 8, 8, 64, 1, 1, 1, 1, 4, 4},   {0, 1, 32, 2, 8, 8, 128, 8, 8, 128, 1, 1, 0, 0, 4, 4},
    {0, 1, 16, 2, 2, 2, 32, 2, 2, 32, 0, 0, 0, 0, 16, 16}, {0, 1, 16, 2, 1, 1, 16, 2, 2, 32, 0, 0, 0, 0, 16, 16},
};
enum { N_CANDIDATE_SEEDS = (int)(sizeof candidate_seeds / sizeof candidate_seeds[0]) };

/* The direct/indirect thresholds the fallback may come with (1: every GEMM on the indirect kernel). */
static const size_t fallback_thresholds[] = {1, 128, 384, 1536};

/* One search: the shapes, their operands, every timing so far and where the candidates come from. */
typedef struct search {
  an_runtime *rt;
  const an_gemm_shape *shapes;
  int n_shapes;
  size_t ns;          /* n_shapes, for indexing */
  int max_candidates; /* as asked: the progress lines' total */
  an_tune_progress progress;
  void *user;
  an_rng rng; /* the operands' values, then the random candidates */
  bench_bufs bb;
  float *host;  /* (largest operand) staging for the operands' values */
  double flop;  /* one step's, counts applied */
  double *secs; /* (2 + max_candidates, n_shapes) one run: [0] untuned, [1] direct kernel, [2 + c] candidate c */
  double *best; /* (n_shapes) each shape's fastest so far */
  int *ok;      /* (2 + max_candidates) ran correctly, indexed as secs */
  an_gemm_config *cands; /* (max_candidates) in the order tried */
  int n_cands;
  const an_gemm_config *known; /* (n_known) earlier tunings' configurations, tried first */
  int n_known, next_known, next_seed;
  int n_random; /* candidates drawn at random before neighbours of the leader are */
  int leader;   /* the candidate fastest on all shapes so far (-1: none) */
  int quick;    /* fewer runs: one reference run, one timed run per candidate, no re-timing */
  double leader_secs;
} search;

/* Allocates the search's tables, the result's and the operands, with the operands' values drawn from
 * the seed. */
static an_status search_open(search *s, an_tune_result *result) {
  const size_t ns = s->ns, slots = (size_t)s->max_candidates + 2;
  s->cands = calloc((size_t)s->max_candidates, sizeof *s->cands);
  s->secs = calloc(slots * ns, sizeof *s->secs);
  s->best = calloc(ns, sizeof *s->best);
  s->ok = calloc(slots, sizeof *s->ok);
  result->shapes = calloc(ns, sizeof *result->shapes);
  result->shape_seconds = calloc(2 * ns, sizeof *result->shape_seconds);
  s->bb.want = calloc(ns, sizeof *s->bb.want);
  size_t max_a = 0, max_b = 0;
  for (int i = 0; i < s->n_shapes; i++) {
    const an_gemm_shape *sh = &s->shapes[i];
    if (shape_a_floats(sh) > max_a) max_a = shape_a_floats(sh);
    if (shape_b_floats(sh) > max_b) max_b = shape_b_floats(sh);
    if (sh->m * sh->n > s->bb.max_c) s->bb.max_c = sh->m * sh->n;
  }
  s->bb.got = malloc(s->bb.max_c * sizeof(float));
  s->host = malloc((max_a > max_b ? max_a : max_b) * sizeof(float));
  if (!s->cands || !s->secs || !s->best || !s->ok || !result->shapes || !result->shape_seconds || !s->bb.want ||
      !s->bb.got || !s->host)
    return AN_FAIL(AN_ERR_HOST_ALLOC, "tuning buffers");
  for (int i = 0; i < s->n_shapes; i++)
    if (!(s->bb.want[i] = malloc(s->shapes[i].m * s->shapes[i].n * sizeof(float))))
      return AN_FAIL(AN_ERR_HOST_ALLOC, "tuning buffers");
  AN_TRY(an_alloc(s->rt, max_a, &s->bb.a));
  AN_TRY(an_alloc(s->rt, max_b, &s->bb.b));
  AN_TRY(an_alloc(s->rt, s->bb.max_c, &s->bb.c));
  for (size_t i = 0; i < max_a; i++) s->host[i] = (float)((an_rng_next(&s->rng) >> 40) * (2.0 / 16777216.0) - 1.0);
  AN_TRY(an_write(s->rt, an_at(s->bb.a, 0), s->host, max_a));
  for (size_t i = 0; i < max_b; i++) s->host[i] = (float)((an_rng_next(&s->rng) >> 40) * (2.0 / 16777216.0) - 1.0);
  AN_TRY(an_write(s->rt, an_at(s->bb.b, 0), s->host, max_b));
  return AN_OK;
}

static void search_close(search *s) {
  if (s->bb.a) clReleaseMemObject(s->bb.a);
  if (s->bb.b) clReleaseMemObject(s->bb.b);
  if (s->bb.c) clReleaseMemObject(s->bb.c);
  for (int i = 0; s->bb.want && i < s->n_shapes; i++) free(s->bb.want[i]);
  free(s->bb.want), free(s->bb.got), free(s->host), free(s->cands), free(s->secs), free(s->best), free(s->ok);
}

static double gflops(const search *s, const double *seconds) {
  return s->flop / weighted(s->shapes, s->n_shapes, seconds) / 1e9;
}

/* The untuned GEMM (the reference results and the floor), then CLBlast's direct kernel on every shape
 * (its own parameters stay CLBlast's). */
static an_status time_untuned_and_direct(search *s, an_tune_result *result) {
  const size_t ns = s->ns;
  /* quick: one run of the reference (the untuned GEMM is the slowest), no timing runs */
  const time_plan reference = {1, NULL, 0, s->quick ? 0 : 3, 0};
  if (time_each(s->rt, s->shapes, s->n_shapes, &s->bb, &reference, s->secs) != 0)
    return AN_FAIL(AN_ERR_ARGUMENT, "the untuned GEMM failed on the model's shapes");
  s->ok[0] = 1;
  memcpy(s->best, s->secs, ns * sizeof *s->best);
  result->default_gflops = gflops(s, s->secs);
  if (s->progress)
    s->progress(s->user, 0, s->max_candidates, NULL, result->default_gflops, result->default_gflops,
                s->quick ? "untuned default (one run each, kernel builds included)" : "untuned default");
  int rc = -1;
  if (an_gemm_set_min_indirect(s->rt, AN_GEMM_DIRECT) ==
      AN_OK) { /* quick: the direct kernel only where it may win, on shapes up to 256³ */
    const time_plan direct = {0, s->best, 0, s->quick ? 1 : 3, s->quick ? 256.0 * 256 * 256 : 0};
    rc = time_each(s->rt, s->shapes, s->n_shapes, &s->bb, &direct, s->secs + ns);
  }
  s->ok[1] = rc == 0;
  if (s->ok[1])
    for (size_t i = 0; i < ns; i++)
      if (s->secs[ns + i] < s->best[i]) s->best[i] = s->secs[ns + i];
  if (s->progress)
    s->progress(s->user, -1, s->max_candidates, NULL, s->ok[1] ? gflops(s, s->secs + ns) : 0, gflops(s, s->best),
                !s->ok[1]  ? "direct kernel: failed"
                : s->quick ? "direct kernel (on shapes up to 256^3 only)"
                           : "direct kernel");
  return AN_OK;
}

/* Candidate c of the indirect kernel: the configurations known from earlier tunings of this device
 * (other models' and batches'), the seeds, then random valid ones, and for the second half neighbours
 * of the leader (a local search). */
static an_gemm_config next_candidate(search *s, int c) {
  const an_device_info *info = &s->rt->info;
  an_gemm_config next = {{0}, 0};
  int have = 0;
  while (!have && s->next_known < s->n_known) { /* the known ones valid here, each once */
    next = s->known[s->next_known++];
    next.min_indirect_size = 0;
    have = an_gemm_config_valid(&next, info) && !already_tried(s->cands, s->n_cands, &next);
  }
  while (!have && s->next_seed < N_CANDIDATE_SEEDS) { /* the seeds valid on this device */
    memcpy(next.v, candidate_seeds[s->next_seed++], sizeof next.v);
    have = an_gemm_config_valid(&next, info) && !already_tried(s->cands, s->n_cands, &next);
  }
  if (!have)
    next = c >= s->n_random && s->leader >= 0 ? neighbour(&s->cands[s->leader], &s->rng, info, s->cands, s->n_cands)
                                              : random_config(&s->rng, info, s->cands, s->n_cands);
  return next;
}

/* Times candidate c on every shape: a wrong or failed one is rejected, a clearly slow one stopped. */
static void time_candidate(search *s, an_tune_result *result, int c) {
  const an_gemm_config next = next_candidate(s, c);
  const int k = s->n_cands++;
  s->cands[k] = next;
  double *t = s->secs + (size_t)(2 + k) * s->ns;
  result->n_tried++;
  s->cands[k].min_indirect_size = 1;
  int rc = -1;
  if (an_gemm_config_apply(s->rt, &s->cands[k]) == AN_OK) {
    const time_plan plan = {0, s->best, 1, s->quick ? 1 : 3, 0};
    rc = time_each(s->rt, s->shapes, s->n_shapes, &s->bb, &plan, t);
  }
  s->ok[2 + k] = rc >= 0;
  if (!s->ok[2 + k]) {
    result->n_rejected++;
  } else {
    for (size_t i = 0; i < s->ns; i++)
      if (t[i] < s->best[i]) s->best[i] = t[i];
    const double total = weighted(s->shapes, s->n_shapes, t);
    if (s->leader < 0 || total < s->leader_secs) s->leader = k, s->leader_secs = total;
  }
  if (s->progress)
    s->progress(s->user, k + 1, s->max_candidates, &s->cands[k], s->ok[2 + k] ? gflops(s, t) : 0, gflops(s, s->best),
                rc == -2  ? "wrong results: rejected"
                : rc < 0  ? "failed: rejected"
                : rc == 1 ? "far slower than the best: stopped"
                          : "");
}

static void time_candidates(search *s, an_tune_result *result) {
  s->n_random = s->max_candidates / 2 > N_CANDIDATE_SEEDS ? s->max_candidates / 2 : N_CANDIDATE_SEEDS;
  /* candidates run on the indirect kernel: none when it cannot be chosen */
  const int n = an_gemm_set_min_indirect(s->rt, 1) == AN_OK ? s->max_candidates : 0;
  for (int c = 0; c < n; c++) time_candidate(s, result, c);
}

/* The fallback: the candidate and threshold fastest on all shapes together, into result->best; returns
 * the candidate (-1: none ran correctly) and its step's seconds in *fallback_secs. */
static int choose_fallback(const search *s, an_tune_result *result, double *fallback_secs) {
  const size_t ns = s->ns;
  *fallback_secs = -1;
  int fb = -1;
  for (int c = 0; c < s->n_cands; c++) {
    if (!s->ok[2 + c]) continue;
    for (size_t th = 0; th < sizeof fallback_thresholds / sizeof fallback_thresholds[0]; th++) {
      if (th > 0 && !s->ok[1]) break;
      double total = 0;
      for (size_t i = 0; i < ns; i++)
        if (s->shapes[i].count)
          total += s->shapes[i].count * (goes_direct(&s->shapes[i], fallback_thresholds[th])
                                             ? s->secs[ns + i]
                                             : s->secs[(2 + c) * ns + i]);
      if (isfinite(total) && (*fallback_secs < 0 || total < *fallback_secs)) {
        *fallback_secs = total, fb = c;
        result->best = s->cands[c];
        result->best.min_indirect_size = fallback_thresholds[th];
      }
    }
  }
  return fb;
}

/* A shape's own choice, timed again against the fallback back to back: kept (its time the measured
 * ratio applied to the fallback's time from the search, so the per-shape total stays on the fallback's
 * time base and never exceeds it) or dropped for the fallback. Returns the shape's seconds. */
static double confirm_own_choice(search *s, an_tune_result *result, const an_gemm_shape *sh, an_gemm_shape_config *e,
                                 double t, double fb_t) {
  double t_own = 0, t_fb = 0;
  if (retime(s->rt, sh, &s->bb, &e->config, &t_own) != 0 || retime(s->rt, sh, &s->bb, &result->best, &t_fb) != 0)
    return t;
  result->n_retimed++;
  if (t_own < 0.95 * t_fb) return fb_t * (t_own / t_fb);
  e->config = result->best, result->n_retime_dropped++;
  return fb_t;
}

/* Shape i's own configuration into result->shapes[i]: the fastest measured among the direct kernel
 * and the candidates (the untuned default cannot be re-applied once overridden, so it is not a
 * choice); the fallback when that is the fallback's own choice or under 5 % faster (each distinct
 * configuration costs a kernel build in every process that uses it). Returns its seconds. */
static double choose_shape_config(search *s, an_tune_result *result, int i, int fb) {
  const size_t ns = s->ns;
  const an_gemm_shape *sh = &s->shapes[i];
  an_gemm_shape_config *e = &result->shapes[i];
  e->trans_a = sh->trans_a, e->trans_b = sh->trans_b, e->m = sh->m, e->n = sh->n, e->k = sh->k;
  int pick = -1; /* -1: direct */
  double t = s->ok[1] ? s->secs[ns + i] : 0;
  for (int c = 0; c < s->n_cands; c++)
    if (s->ok[2 + c] && (pick == -1 && !s->ok[1] ? 1 : s->secs[(2 + c) * ns + i] < t))
      pick = c, t = s->secs[(2 + c) * ns + i];
  e->config = pick < 0 ? result->best : s->cands[pick];
  e->config.min_indirect_size = pick < 0 ? AN_GEMM_DIRECT : 1;
  const int fb_direct = goes_direct(sh, result->best.min_indirect_size);
  const double fb_t = fb_direct ? s->secs[ns + i] : s->secs[(size_t)(2 + fb) * ns + i];
  /* quick: one timed run each, so a wider margin instead of the confirmation */
  if ((pick < 0 && fb_direct) || (pick == fb && !fb_direct) || !(t < (s->quick ? 0.9 : 0.95) * fb_t)) {
    e->config = result->best;
    return fb_t;
  }
  if (s->quick) return t;
  return confirm_own_choice(s, result, sh, e, t, fb_t);
}

/* The result from the timings: the fallback, each shape's own choice, the totals; left in effect on
 * rt as a later load of the saved file would. */
static an_status choose_result(search *s, an_tune_result *result) {
  double fallback_secs;
  const int fb = choose_fallback(s, result, &fallback_secs);
  if (fb < 0) return AN_FAIL(AN_ERR_ARGUMENT, "no candidate configuration ran correctly");
  result->fallback_gflops = s->flop / fallback_secs / 1e9;
  double total = 0;
  for (int i = 0; i < s->n_shapes; i++) {
    const double t = choose_shape_config(s, result, i, fb);
    result->shape_seconds[i] = s->secs[i];
    result->shape_seconds[s->ns + i] = t;
    if (s->shapes[i].count) total += t * s->shapes[i].count;
  }
  result->n_shapes = s->n_shapes;
  result->best_gflops = s->flop / total / 1e9;
  return an_gemm_tuning_install(s->rt, &result->best, result->shapes, s->n_shapes);
}

an_status an_tune_gemm(an_runtime *rt, const an_gemm_shape *shapes, int n_shapes, int max_candidates,
                       const an_gemm_config *known, int n_known, uint64_t seed, int quick, an_tune_progress progress,
                       void *user, an_tune_result *result) {
  memset(result, 0, sizeof *result);
  if (n_shapes < 1 || max_candidates < 1) return AN_FAIL(AN_ERR_ARGUMENT, "tuning needs shapes and candidates");
  search s = {0};
  s.rt = rt, s.shapes = shapes, s.n_shapes = n_shapes, s.ns = (size_t)n_shapes;
  s.max_candidates = max_candidates, s.progress = progress, s.user = user;
  s.rng.state = seed;
  s.known = known, s.n_known = n_known, s.leader = -1, s.quick = quick;
  s.flop = shapes_flop(shapes, n_shapes);
  an_status status = search_open(&s, result);
  if (status == AN_OK) status = time_untuned_and_direct(&s, result);
  if (status == AN_OK) {
    time_candidates(&s, result);
    status = choose_result(&s, result);
  }
  if (status != AN_OK) an_tune_result_free(result);
  search_close(&s);
  return status;
}

an_status an_gemm_time_shapes(an_runtime *rt, const an_gemm_shape *shapes, int n_shapes, double *seconds) {
  for (int i = 0; i < n_shapes; i++) {
    const an_gemm_shape *s = &shapes[i];
    bench_bufs bb = {0};
    an_status status = AN_OK;
    AN_TRY_GOTO(an_alloc(rt, shape_a_floats(s), &bb.a));
    AN_TRY_GOTO(an_alloc(rt, shape_b_floats(s), &bb.b));
    AN_TRY_GOTO(an_alloc(rt, s->m * s->n, &bb.c));
    AN_TRY_GOTO(an_fill(rt, an_at(bb.a, 0), 0.5f, shape_a_floats(s)));
    AN_TRY_GOTO(an_fill(rt, an_at(bb.b, 0), 0.25f, shape_b_floats(s)));
    for (int rep = 0; rep < 2; rep++) { /* through an_gemm: the engine and configuration a step's call takes */
      const double t0 = an_seconds();
      AN_TRY_GOTO(an_gemm(rt, s->trans_a, s->trans_b, s->m, s->n, s->k, 1.0f, an_at(bb.a, 0), shape_lda(s),
                          an_at(bb.b, 0), shape_ldb(s), 0.0f, an_at(bb.c, 0), s->n));
      AN_CL_GOTO(clFinish(rt->queue));
      seconds[i] = an_seconds() - t0;
    }
  cleanup:
    if (bb.a) clReleaseMemObject(bb.a);
    if (bb.b) clReleaseMemObject(bb.b);
    if (bb.c) clReleaseMemObject(bb.c);
    if (status != AN_OK) return status;
  }
  return AN_OK;
}
