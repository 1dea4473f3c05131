/* GEMM tuning: CLBlast's Xgemm parameters searched on a model's own GEMM shapes, checked against the
 * untuned results, cached per device and driver, applied at startup. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <clblast_c.h>

#include "alexnet/tune.h"
#include "check.h"

const char *const an_xgemm_param_names[AN_XGEMM_N_PARAMS] = {
    "GEMMK", "KREG", "KWG", "KWI", "MDIMA", "MDIMC", "MWG", "NDIMB",
    "NDIMC", "NWG",  "SA",  "SB",  "STRM",  "STRN",  "VWM", "VWN"};
enum { GEMMK, KREG, KWG, KWI, MDIMA, MDIMC, MWG, NDIMB, NDIMC, NWG, SA, SB, STRM, STRN, VWM, VWN };

an_status an_gemm_config_apply(an_runtime *rt, const an_gemm_config *c) {
  CLBlastStatusCode rc = CLBlastOverrideParameters(rt->info.device, "Xgemm", CLBlastPrecisionSingle,
                                                   AN_XGEMM_N_PARAMS, (const char **)an_xgemm_param_names, c->v);
  if (rc != CLBlastSuccess) return an_error((an_status)rc, __FILE__, __LINE__, "CLBlastOverrideParameters(Xgemm)");
  if (c->min_indirect_size) {
    const char *name[] = {"XGEMM_MIN_INDIRECT_SIZE"};
    rc = CLBlastOverrideParameters(rt->info.device, "GemmRoutine", CLBlastPrecisionSingle, 1, name,
                                   &c->min_indirect_size);
    if (rc != CLBlastSuccess)
      return an_error((an_status)rc, __FILE__, __LINE__, "CLBlastOverrideParameters(GemmRoutine)");
  }
  return AN_OK;
}

void an_gemm_config_format(const an_gemm_config *c, char *buf, size_t size) {
  size_t used = 0;
  for (int i = 0; i < AN_XGEMM_N_PARAMS && used < size; i++)
    used += (size_t)snprintf(buf + used, size - used, "%s%s=%zu", i ? " " : "", an_xgemm_param_names[i], c->v[i]);
  if (used < size) snprintf(buf + used, size - used, " MIN_INDIRECT=%zu", c->min_indirect_size);
}

/* The constraints CLBlast's Xgemm kernel 0 places on its parameters (a violation can build and still
 * compute wrong results, so the search never proposes one). */
static int config_valid(const an_gemm_config *c, const an_device_info *info) {
  const size_t *v = c->v;
  if (v[GEMMK] != 0 || v[KREG] != 1) return 0;
  if (!v[MDIMC] || !v[NDIMC] || !v[MDIMA] || !v[NDIMB] || !v[VWM] || !v[VWN] || !v[KWI]) return 0;
  if (v[MWG] % (v[MDIMC] * v[VWM]) || v[NWG] % (v[NDIMC] * v[VWN])) return 0;
  if (v[MWG] % (v[MDIMA] * v[VWM]) || v[NWG] % (v[NDIMB] * v[VWN])) return 0;
  const size_t threads = v[MDIMC] * v[NDIMC];
  if (threads % v[MDIMA] || threads % v[NDIMB]) return 0;
  if (v[KWG] % v[KWI] || v[KWG] % (threads / v[MDIMA]) || v[KWG] % (threads / v[NDIMB])) return 0;
  if (threads > 1024) return 0;
  const size_t local = (v[SA] ? v[KWG] * v[MWG] : 0) + (v[SB] ? v[KWG] * v[NWG] : 0);
  if (local * sizeof(float) > info->local_mem_bytes) return 0;
  return 1;
}

static int parse_config(const char *text, an_gemm_config *c) {
  memset(c, 0, sizeof *c);
  int seen = 0;
  char buf[1024];
  snprintf(buf, sizeof buf, "%s", text);
  for (char *save = NULL, *tok = strtok_r(buf, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
    char *eq = strchr(tok, '=');
    if (!eq) return 0;
    *eq = '\0';
    char *end;
    const unsigned long long value = strtoull(eq + 1, &end, 10);
    if (*end || value > 4096) return 0;
    if (!strcmp(tok, "MIN_INDIRECT")) {
      c->min_indirect_size = (size_t)value;
      continue;
    }
    for (int i = 0; i < AN_XGEMM_N_PARAMS; i++)
      if (!strcmp(tok, an_xgemm_param_names[i])) c->v[i] = (size_t)value, seen |= 1 << i;
  }
  return seen == (1 << AN_XGEMM_N_PARAMS) - 1;
}

void an_tuning_path(char *buf, size_t size) {
  const char *file = getenv("ALEXNET_TUNING_FILE"), *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
  if (file && *file)
    snprintf(buf, size, "%s", file);
  else if (xdg && *xdg)
    snprintf(buf, size, "%s/alexnet/gemm-tuning.txt", xdg);
  else
    snprintf(buf, size, "%s/.cache/alexnet/gemm-tuning.txt", home && *home ? home : ".");
}

/* The key of a device: its name and driver version (a driver update retunes). */
static void device_key(const an_device_info *info, char *buf, size_t size) {
  snprintf(buf, size, "%s\t%s", info->name, info->driver_version);
  for (char *p = buf; *p; p++)
    if (*p == '\n') *p = ' ';
}

an_status an_tuning_load(an_runtime *rt, const char *path, int *applied, an_gemm_config *config) {
  *applied = 0;
  FILE *f = fopen(path, "r");
  if (!f) return AN_OK; /* no cache yet: the untuned default */
  char key[512], line[2048];
  device_key(&rt->info, key, sizeof key);
  const size_t key_len = strlen(key);
  an_gemm_config c;
  int found = 0;
  while (fgets(line, sizeof line, f)) {
    line[strcspn(line, "\r\n")] = '\0';
    if (strncmp(line, key, key_len) || line[key_len] != '\t') continue;
    char *params = line + key_len + 1, *tab = strchr(params, '\t');
    if (tab) *tab = '\0';
    if (parse_config(params, &c) && config_valid(&c, &rt->info)) found = 1;
  }
  fclose(f);
  if (!found) return AN_OK;
  AN_TRY(an_gemm_config_apply(rt, &c));
  if (config) *config = c;
  *applied = 1;
  return AN_OK;
}

an_status an_tuning_save(const an_runtime *rt, const char *path, const an_gemm_config *c, double gflops) {
  char key[512], tmp[4200], params[1024], line[2048];
  device_key(&rt->info, key, sizeof key);
  an_gemm_config_format(c, params, sizeof params);
  AN_TRY(an_make_parent_dirs(path));
  snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
  FILE *out = fopen(tmp, "w");
  if (!out) return an_error(AN_ERR_IO, __FILE__, __LINE__, "cannot write %s: %s", tmp, strerror(errno));
  FILE *in = fopen(path, "r");
  if (in) { /* keep the other devices' entries */
    while (fgets(line, sizeof line, in))
      if (strncmp(line, key, strlen(key)) || line[strlen(key)] != '\t') fputs(line, out);
    fclose(in);
  }
  fprintf(out, "%s\t%s\t%.2f GFLOP/s\n", key, params, gflops);
  const int bad = fflush(out) != 0 || fsync(fileno(out)) != 0;
  if (fclose(out) != 0 || bad || rename(tmp, path) != 0) {
    remove(tmp);
    return an_error(AN_ERR_IO, __FILE__, __LINE__, "cannot write %s: %s", path, strerror(errno));
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

static CLBlastStatusCode run_gemm(an_runtime *rt, const an_gemm_shape *s, bench_bufs *bb) {
  const size_t lda = s->trans_a ? s->m : s->k, ldb = s->trans_b ? s->k : s->n;
  return CLBlastSgemm(CLBlastLayoutRowMajor, s->trans_a ? CLBlastTransposeYes : CLBlastTransposeNo,
                      s->trans_b ? CLBlastTransposeYes : CLBlastTransposeNo, s->m, s->n, s->k, 1.0f, bb->a, 0, lda,
                      bb->b, 0, ldb, 0.0f, bb->c, 0, s->n, &rt->queue, NULL);
}

/* Seconds for the shapes (each weighted by its count), or a negative value when a GEMM fails or its
 * result differs from the untuned one. With record, stores the results as the reference instead. */
static double time_shapes(an_runtime *rt, const an_gemm_shape *shapes, int first, int n, bench_bufs *bb,
                          int record) {
  double total = 0;
  for (int i = first; i < first + n; i++) {
    const an_gemm_shape *s = &shapes[i];
    if (run_gemm(rt, s, bb) != CLBlastSuccess || clFinish(rt->queue) != CL_SUCCESS) return -1; /* warm-up */
    const double t0 = an_seconds();
    if (run_gemm(rt, s, bb) != CLBlastSuccess || clFinish(rt->queue) != CL_SUCCESS) return -1;
    total += (an_seconds() - t0) * s->count;
    const size_t count = s->m * s->n;
    float *dst = record ? bb->want[i] : bb->got;
    if (clEnqueueReadBuffer(rt->queue, bb->c, CL_TRUE, 0, count * sizeof(float), dst, 0, NULL, NULL)) return -1;
    if (record) continue;
    double worst = 0, scale = 0;
    for (size_t j = 0; j < count; j++) {
      const double d = fabs((double)bb->got[j] - bb->want[i][j]);
      if (!(d <= worst)) worst = d; /* NaN counts as worst */
      if (fabs(bb->want[i][j]) > scale) scale = fabs(bb->want[i][j]);
    }
    if (!(worst <= 1e-3 * scale + 1e-5)) return -2;
  }
  return total;
}

static double shapes_flop(const an_gemm_shape *shapes, int n) {
  double f = 0;
  for (int i = 0; i < n; i++) f += 2.0 * shapes[i].m * shapes[i].n * shapes[i].k * shapes[i].count;
  return f;
}

static uint64_t next_rand(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

static an_gemm_config random_config(uint64_t *s, const an_device_info *info) {
  static const size_t mwg[] = {16, 32, 64, 128}, kwg[] = {16, 32}, dim[] = {2, 4, 8, 16}, kwi[] = {2, 8},
                      vw[] = {1, 2, 4, 8};
  for (;;) {
    an_gemm_config c = {{0, 1}, 0};
    c.v[MWG] = mwg[next_rand(s) % 4], c.v[NWG] = mwg[next_rand(s) % 4], c.v[KWG] = kwg[next_rand(s) % 2];
    c.v[MDIMC] = dim[next_rand(s) % 4], c.v[NDIMC] = dim[next_rand(s) % 4];
    c.v[MDIMA] = c.v[MDIMC], c.v[NDIMB] = c.v[NDIMC];
    c.v[KWI] = kwi[next_rand(s) % 2], c.v[VWM] = vw[next_rand(s) % 4], c.v[VWN] = vw[next_rand(s) % 4];
    c.v[SA] = next_rand(s) % 2, c.v[SB] = next_rand(s) % 2, c.v[STRM] = next_rand(s) % 2, c.v[STRN] = next_rand(s) % 2;
    if (config_valid(&c, info)) return c;
  }
}

an_status an_tune_gemm(an_runtime *rt, const an_gemm_shape *shapes, int n_shapes, int max_candidates,
                       uint64_t seed, an_tune_progress progress, void *user, an_tune_result *result) {
  memset(result, 0, sizeof *result);
  if (n_shapes < 1 || max_candidates < 1)
    return an_error(AN_ERR_ARGUMENT, __FILE__, __LINE__, "tuning needs shapes and candidates");
  an_status status = AN_OK;
  bench_bufs bb = {0};
  an_gemm_config *cands = calloc((size_t)max_candidates, sizeof *cands);
  double *screen = calloc((size_t)max_candidates, sizeof *screen);
  bb.want = calloc((size_t)n_shapes, sizeof *bb.want);
  size_t max_a = 0, max_b = 0;
  int biggest = 0;
  for (int i = 0; i < n_shapes; i++) {
    const an_gemm_shape *s = &shapes[i];
    if (s->m * s->k > max_a) max_a = s->m * s->k;
    if (s->k * s->n > max_b) max_b = s->k * s->n;
    if (s->m * s->n > bb.max_c) bb.max_c = s->m * s->n;
    if ((double)s->m * s->n * s->k * s->count >
        (double)shapes[biggest].m * shapes[biggest].n * shapes[biggest].k * shapes[biggest].count)
      biggest = i;
  }
  bb.got = malloc(bb.max_c * sizeof(float));
  float *host = malloc((max_a > max_b ? max_a : max_b) * sizeof(float));
  if (!cands || !screen || !bb.want || !bb.got || !host) {
    status = an_error(AN_ERR_HOST_ALLOC, __FILE__, __LINE__, "tuning buffers");
    goto cleanup;
  }
  for (int i = 0; i < n_shapes; i++)
    if (!(bb.want[i] = malloc(shapes[i].m * shapes[i].n * sizeof(float)))) {
      status = an_error(AN_ERR_HOST_ALLOC, __FILE__, __LINE__, "tuning buffers");
      goto cleanup;
    }
  AN_TRY_GOTO(an_alloc(rt, max_a, &bb.a));
  AN_TRY_GOTO(an_alloc(rt, max_b, &bb.b));
  AN_TRY_GOTO(an_alloc(rt, bb.max_c, &bb.c));
  uint64_t s = seed;
  for (size_t i = 0; i < max_a; i++) host[i] = (float)((next_rand(&s) >> 40) * (2.0 / 16777216.0) - 1.0);
  AN_TRY_GOTO(an_write(rt, an_at(bb.a, 0), host, max_a));
  for (size_t i = 0; i < max_b; i++) host[i] = (float)((next_rand(&s) >> 40) * (2.0 / 16777216.0) - 1.0);
  AN_TRY_GOTO(an_write(rt, an_at(bb.b, 0), host, max_b));

  const double flop = shapes_flop(shapes, n_shapes);
  const double base = time_shapes(rt, shapes, 0, n_shapes, &bb, 1); /* untuned: the reference and the floor */
  if (base < 0) {
    status = an_error(AN_ERR_ARGUMENT, __FILE__, __LINE__, "the untuned GEMM failed on the model's shapes");
    goto cleanup;
  }
  result->default_gflops = flop / base / 1e9;
  result->best_gflops = 0;
  if (progress) progress(user, 0, max_candidates, NULL, result->default_gflops, result->default_gflops, "untuned default");

  /* candidates: a few shapes known to suit CPUs and GPUs, then random valid ones */
  static const size_t seeds[][AN_XGEMM_N_PARAMS] = {
      {0, 1, 16, 2, 2, 2, 16, 2, 2, 16, 0, 0, 0, 0, 8, 8},  {0, 1, 16, 2, 4, 4, 32, 4, 4, 32, 0, 0, 0, 0, 8, 8},
      {0, 1, 16, 2, 8, 8, 64, 8, 8, 64, 1, 1, 0, 0, 8, 8},  {0, 1, 32, 2, 16, 16, 64, 16, 16, 64, 1, 1, 1, 1, 2, 2},
      {0, 1, 16, 2, 8, 8, 64, 8, 8, 64, 1, 1, 1, 1, 4, 4},  {0, 1, 32, 2, 8, 8, 128, 8, 8, 128, 1, 1, 0, 0, 4, 4},
  };
  int n_cands = 0;
  for (size_t i = 0; i < sizeof seeds / sizeof seeds[0] && n_cands < max_candidates; i++) {
    an_gemm_config c = {{0}, 0};
    memcpy(c.v, seeds[i], sizeof c.v);
    if (config_valid(&c, &rt->info)) cands[n_cands++] = c;
  }
  while (n_cands < max_candidates) cands[n_cands++] = random_config(&s, &rt->info);

  /* screen every candidate on the step's largest GEMM */
  for (int i = 0; i < n_cands; i++) {
    result->n_tried++;
    screen[i] = -1;
    if (an_gemm_config_apply(rt, &cands[i]) == AN_OK) screen[i] = time_shapes(rt, shapes, biggest, 1, &bb, 0);
    if (screen[i] < 0) result->n_rejected++;
    const double g = screen[i] > 0 ? 2.0 * shapes[biggest].m * shapes[biggest].n * shapes[biggest].k *
                                         shapes[biggest].count / screen[i] / 1e9
                                   : 0;
    if (progress) progress(user, i + 1, n_cands, &cands[i], g, 0, screen[i] == -2 ? "wrong results: rejected"
                                                             : screen[i] < 0 ? "failed: rejected" : "screen");
  }
  /* the best few, then the small-GEMM threshold, on every shape */
  /* always explicit: an override cannot be undone, so "CLBlast's own threshold" is not a candidate */
  const size_t thresholds[] = {1536, 384, 128};
  for (int round = 0; round < 4; round++) {
    int pick = -1;
    for (int i = 0; i < n_cands; i++)
      if (screen[i] > 0 && (pick < 0 || screen[i] < screen[pick])) pick = i;
    if (pick < 0) break;
    screen[pick] = -3; /* taken */
    for (size_t t = 0; t < sizeof thresholds / sizeof thresholds[0]; t++) {
      an_gemm_config c = cands[pick];
      c.min_indirect_size = thresholds[t];
      if (an_gemm_config_apply(rt, &c) != AN_OK) continue;
      const double secs = time_shapes(rt, shapes, 0, n_shapes, &bb, 0);
      const double g = secs > 0 ? flop / secs / 1e9 : 0;
      if (g > result->best_gflops) result->best_gflops = g, result->best = c;
      if (progress) progress(user, -1, n_cands, &c, g, result->best_gflops, "all shapes");
    }
  }
  if (result->best_gflops <= 0) {
    status = an_error(AN_ERR_ARGUMENT, __FILE__, __LINE__, "no candidate configuration ran correctly");
    goto cleanup;
  }
  status = an_gemm_config_apply(rt, &result->best);
cleanup:
  if (bb.a) clReleaseMemObject(bb.a);
  if (bb.b) clReleaseMemObject(bb.b);
  if (bb.c) clReleaseMemObject(bb.c);
  for (int i = 0; bb.want && i < n_shapes; i++) free(bb.want[i]);
  free(bb.want), free(bb.got), free(host), free(cands), free(screen);
  return status;
}

an_status an_gemm_time_shapes(an_runtime *rt, const an_gemm_shape *shapes, int n_shapes, double *seconds) {
  for (int i = 0; i < n_shapes; i++) {
    const an_gemm_shape *s = &shapes[i];
    bench_bufs bb = {0};
    an_status status = AN_OK;
    AN_TRY_GOTO(an_alloc(rt, s->m * s->k, &bb.a));
    AN_TRY_GOTO(an_alloc(rt, s->k * s->n, &bb.b));
    AN_TRY_GOTO(an_alloc(rt, s->m * s->n, &bb.c));
    AN_TRY_GOTO(an_fill(rt, an_at(bb.a, 0), 0.5f, s->m * s->k));
    AN_TRY_GOTO(an_fill(rt, an_at(bb.b, 0), 0.25f, s->k * s->n));
    for (int rep = 0; rep < 2; rep++) {
      const double t0 = an_seconds();
      const CLBlastStatusCode rc = run_gemm(rt, s, &bb);
      if (rc != CLBlastSuccess) {
        status = an_error((an_status)rc, __FILE__, __LINE__, "CLBlastSgemm(m=%zu n=%zu k=%zu)", s->m, s->n, s->k);
        goto cleanup;
      }
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
