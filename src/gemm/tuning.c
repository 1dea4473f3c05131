/* The GEMM tuning database: CLBlast's Xgemm configurations (applied, formatted, parsed, checked), the
 * tuning file (cached per device and driver: load, save, the configurations it knows), the per-shape
 * table a runtime switches through (an_gemm_select) with the weight gradient's slice widths, and the
 * runtime creation that applies the file at startup. The search that writes the file is tuner.c. */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <clblast_c.h>

#include "alexnet/tune.h"
#include "gemm/tuning.h"
#include "runtime/check.h"
#include "runtime/grow.h"

const char *const an_xgemm_param_names[AN_XGEMM_N_PARAMS] = {"GEMMK", "KREG",  "KWG",   "KWI", "MDIMA", "MDIMC",
                                                             "MWG",   "NDIMB", "NDIMC", "NWG", "SA",    "SB",
                                                             "STRM",  "STRN",  "VWM",   "VWN"};

/* CLBlast keeps one override per cl_device_id for the whole process. What is in effect is recorded per
 * device here (not per runtime), so that two runtimes on one device never skip a switch the other one
 * undid. Every override of this file goes through set_xgemm / set_min_indirect. */
static pthread_mutex_t in_effect_lock = PTHREAD_MUTEX_INITIALIZER;
static struct in_effect {
  cl_device_id device;
  an_gemm_config config;
  int has_v, has_min;
} in_effect[32];

static struct in_effect *in_effect_of(cl_device_id device) { /* under the lock; NULL when full */
  for (size_t i = 0; i < sizeof in_effect / sizeof in_effect[0]; i++) {
    if (in_effect[i].device == device) return &in_effect[i];
    if (!in_effect[i].device) {
      in_effect[i].device = device;
      return &in_effect[i];
    }
  }
  return NULL;
}

/* Overrides CLBlast's Xgemm parameters (only_if_changed: skipped when already in effect). */
static an_status set_xgemm(an_runtime *rt, const size_t *v, int only_if_changed) {
  pthread_mutex_lock(&in_effect_lock);
  struct in_effect *e = in_effect_of(rt->info.device);
  CLBlastStatusCode rc = CLBlastSuccess;
  if (!only_if_changed || !e || !e->has_v || memcmp(e->config.v, v, sizeof e->config.v)) {
    rc = CLBlastOverrideParameters(rt->info.device, "Xgemm", CLBlastPrecisionSingle, AN_XGEMM_N_PARAMS,
                                   (const char **)an_xgemm_param_names, v);
    if (e) e->has_v = rc == CLBlastSuccess, memcpy(e->config.v, v, sizeof e->config.v);
  }
  pthread_mutex_unlock(&in_effect_lock);
  if (rc != CLBlastSuccess) return AN_FAIL((an_status)rc, "CLBlastOverrideParameters(Xgemm)");
  return AN_OK;
}

static an_status set_min_indirect(an_runtime *rt, size_t size, int only_if_changed) {
  pthread_mutex_lock(&in_effect_lock);
  struct in_effect *e = in_effect_of(rt->info.device);
  CLBlastStatusCode rc = CLBlastSuccess;
  if (!only_if_changed || !e || !e->has_min || e->config.min_indirect_size != size) {
    const char *name[] = {"XGEMM_MIN_INDIRECT_SIZE"};
    rc = CLBlastOverrideParameters(rt->info.device, "GemmRoutine", CLBlastPrecisionSingle, 1, name, &size);
    if (e) e->has_min = rc == CLBlastSuccess, e->config.min_indirect_size = size;
  }
  pthread_mutex_unlock(&in_effect_lock);
  if (rc != CLBlastSuccess) return AN_FAIL((an_status)rc, "CLBlastOverrideParameters(GemmRoutine)");
  return AN_OK;
}

an_status an_gemm_set_min_indirect(an_runtime *rt, size_t size) { return set_min_indirect(rt, size, 0); }

int an_gemm_kernel_in_effect(const an_runtime *rt) {
  pthread_mutex_lock(&in_effect_lock);
  const struct in_effect *e = in_effect_of(rt->info.device);
  const int kernel = e && e->has_v ? (int)e->config.v[AN_XGEMM_GEMMK] : 0;
  pthread_mutex_unlock(&in_effect_lock);
  return kernel;
}

an_status an_gemm_config_apply(an_runtime *rt, const an_gemm_config *c) {
  AN_TRY(set_xgemm(rt, c->v, 0));
  if (c->min_indirect_size) AN_TRY(set_min_indirect(rt, c->min_indirect_size, 0));
  return AN_OK;
}

void an_gemm_config_format(const an_gemm_config *c, char *buf, size_t size) {
  size_t used = 0;
  for (int i = 0; i < AN_XGEMM_N_PARAMS && used < size; i++)
    used += (size_t)snprintf(buf + used, size - used, "%s%s=%zu", i ? " " : "", an_xgemm_param_names[i], c->v[i]);
  if (used < size) snprintf(buf + used, size - used, " MIN_INDIRECT=%zu", c->min_indirect_size);
}

/* Kernel 1 (GEMMK=1, CLBlast's tuner variations 11 and 12): registers only, no local memory, K unrolled
 * by KREG; its tiles follow the same MWG/NWG rules as kernel 0's, and must be square: CLBlast 1.5.3's
 * routine computed wrong products (or crashed) with MWG 64 and NWG 32, or 128 and 16, on PoCL, where
 * every square tile tried was right (test_tune's test_kernel1 checks the rule). */
static int kernel1_valid(const size_t *v) {
  const size_t mwg = v[AN_XGEMM_MWG], nwg = v[AN_XGEMM_NWG], mdimc = v[AN_XGEMM_MDIMC], ndimc = v[AN_XGEMM_NDIMC],
               vwm = v[AN_XGEMM_VWM], vwn = v[AN_XGEMM_VWN], kreg = v[AN_XGEMM_KREG];
  if (v[AN_XGEMM_KWG] != 1 || v[AN_XGEMM_KWI] != 1 || v[AN_XGEMM_SA] || v[AN_XGEMM_SB]) return 0;
  if (v[AN_XGEMM_STRM] || v[AN_XGEMM_STRN]) return 0;
  if (v[AN_XGEMM_MDIMA] != mdimc || v[AN_XGEMM_NDIMB] != ndimc) return 0;
  if (!mdimc || !ndimc || !vwm || !vwn || !kreg || kreg % vwn) return 0;
  if (mwg != nwg || mwg % (mdimc * vwm) || nwg % (ndimc * vwn)) return 0;
  return mdimc * ndimc <= 1024;
}

int an_gemm_config_valid(const an_gemm_config *c, const an_device_info *info) {
  const size_t *v = c->v;
  if (v[AN_XGEMM_GEMMK] == 1) return kernel1_valid(v);
  if (v[AN_XGEMM_GEMMK] != 0 || v[AN_XGEMM_KREG] != 1) return 0;
  const size_t kwg = v[AN_XGEMM_KWG], kwi = v[AN_XGEMM_KWI], mwg = v[AN_XGEMM_MWG], nwg = v[AN_XGEMM_NWG];
  const size_t mdima = v[AN_XGEMM_MDIMA], mdimc = v[AN_XGEMM_MDIMC], ndimb = v[AN_XGEMM_NDIMB],
               ndimc = v[AN_XGEMM_NDIMC], vwm = v[AN_XGEMM_VWM], vwn = v[AN_XGEMM_VWN];
  if (!mdimc || !ndimc || !mdima || !ndimb || !vwm || !vwn || !kwi) return 0;
  if (mwg % (mdimc * vwm) || nwg % (ndimc * vwn)) return 0;
  if (mwg % (mdima * vwm) || nwg % (ndimb * vwn)) return 0;
  const size_t threads = mdimc * ndimc;
  if (threads % mdima || threads % ndimb) return 0;
  if (kwg % kwi || kwg % (threads / mdima) || kwg % (threads / ndimb)) return 0;
  if (threads > 1024) return 0;
  const size_t local = (v[AN_XGEMM_SA] ? kwg * mwg : 0) + (v[AN_XGEMM_SB] ? kwg * nwg : 0);
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
    if (*end || value > (!strcmp(tok, "MIN_INDIRECT") ? AN_GEMM_DIRECT : 4096)) return 0;
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
  if (file && *file) snprintf(buf, size, "%s", file);
  else if (xdg && *xdg) snprintf(buf, size, "%s/alexnet/gemm-tuning.txt", xdg);
  else snprintf(buf, size, "%s/.cache/alexnet/gemm-tuning.txt", home && *home ? home : ".");
}

/* The key of a device: its name and driver version (a driver update retunes). */
static void device_key(const an_device_info *info, char *buf, size_t size) {
  snprintf(buf, size, "%s\t%s", info->name, info->driver_version);
  for (char *p = buf; *p; p++)
    if (*p == '\n') *p = ' ';
}

/* ---- the per-shape table a runtime switches through ---- */

struct an_gemm_table {
  int has_fallback;        /* 0: only slice widths (an_gemm_set_dw_slice on an untuned runtime) */
  int nearest;             /* the shipped database's entry: an unlisted shape takes its nearest listed one's */
  an_gemm_config fallback; /* shapes without an entry */
  int n, cap;
  an_gemm_shape_config *entries; /* (n) */
  int n_slices, cap_slices;
  an_dw_reduction *slices; /* (n_slices) weight-gradient slice widths */
};

static void table_free(struct an_gemm_table *t) {
  if (!t) return;
  free(t->entries);
  free(t->slices);
  free(t);
}

/* Hands t to rt, which frees it at destroy through the pointer it keeps (the runtime calls nothing in
 * gemm/); rt's earlier table is freed now. */
static void table_install(an_runtime *rt, struct an_gemm_table *t) {
  if (rt->gemm_table_free) rt->gemm_table_free(rt->gemm_table);
  rt->gemm_table = t;
  rt->gemm_table_free = table_free;
}

static int same_shape(const an_gemm_shape_config *e, int trans_a, int trans_b, size_t m, size_t n, size_t k) {
  return e->m == m && e->n == n && e->k == k && e->trans_a == !!trans_a && e->trans_b == !!trans_b;
}

static int same_reduction(const an_dw_reduction *r, size_t m, size_t n, size_t ncols) {
  return r->m == m && r->n == n && r->ncols == ncols;
}

/* |ln(a/b)|: how far apart two sizes are, as a ratio */
static double size_distance(size_t a, size_t b) { return fabs(log((double)a / (double)b)); }

/* The width t gives a reduction: its own line; with t->nearest, else the width of the listed reduction
 * of the same layer (m, n) with the nearest column count (capped at ncols); else AN_CONV_DW_SLICE. */
static size_t table_dw_slice(const struct an_gemm_table *t, size_t m, size_t n, size_t ncols) {
  const an_dw_reduction *near = NULL;
  for (int i = 0; t && i < t->n_slices; i++) {
    const an_dw_reduction *r = &t->slices[i];
    if (same_reduction(r, m, n, ncols)) return r->width;
    if (t->nearest && r->m == m && r->n == n &&
        (!near || size_distance(r->ncols, ncols) < size_distance(near->ncols, ncols)))
      near = r;
  }
  if (near) return near->width < ncols ? near->width : ncols;
  return AN_CONV_DW_SLICE;
}

size_t an_gemm_dw_slice(const an_runtime *rt, size_t m, size_t n, size_t ncols) {
  if (rt->own_gemm) return ncols; /* the project's gemm_dot slices the reduction itself (gemm/panel.c) */
  return table_dw_slice(rt->gemm_table, m, n, ncols);
}

static int slices_add(struct an_gemm_table *t, const an_dw_reduction *r) {
  for (int i = 0; i < t->n_slices; i++)
    if (same_reduction(&t->slices[i], r->m, r->n, r->ncols)) {
      t->slices[i].width = r->width;
      return 1;
    }
  an_dw_reduction *slices = an_grow(t->slices, t->n_slices, &t->cap_slices, sizeof *t->slices);
  if (!slices) return 0;
  t->slices = slices;
  t->slices[t->n_slices++] = *r;
  return 1;
}

an_status an_gemm_set_dw_slice(an_runtime *rt, size_t m, size_t n, size_t ncols, size_t width) {
  if (!m || !n || !width || width > ncols)
    return AN_FAIL(AN_ERR_ARGUMENT, "slice width %zu for a reduction over %zu columns", width, ncols);
  if (!rt->gemm_table) {
    struct an_gemm_table *t = calloc(1, sizeof *t);
    if (!t) return AN_FAIL(AN_ERR_HOST_ALLOC, "tuning table");
    table_install(rt, t);
  }
  const an_dw_reduction r = {m, n, ncols, 0, width};
  if (!slices_add(rt->gemm_table, &r)) return AN_FAIL(AN_ERR_HOST_ALLOC, "tuning table");
  return AN_OK;
}

/* "dwslice=48,363,96800" and "width=4096" */
static int parse_slice(const char *key, const char *value, an_dw_reduction *r) {
  unsigned long long m, n, ncols, width;
  int used = 0, used2 = 0;
  if (sscanf(key, "dwslice=%llu,%llu,%llu%n", &m, &n, &ncols, &used) != 3 || key[used]) return 0;
  if (sscanf(value, "width=%llu%n", &width, &used2) != 1 || value[used2]) return 0;
  if (!m || !n || !ncols || !width || width > ncols) return 0;
  r->m = (size_t)m, r->n = (size_t)n, r->ncols = (size_t)ncols, r->width = (size_t)width, r->count = 0;
  return 1;
}

int an_gemm_tuned_shapes(const an_runtime *rt) { return rt->gemm_table ? rt->gemm_table->n : 0; }

/* How far a listed shape may be from an unlisted one that takes its configuration (the shipped
 * database): the sum of |ln| of the three size ratios at most ln 16, e.g. 4x in one size and 2x in two. */
#define AN_NEAREST_SHAPE_MAX 2.7726

/* The configuration t gives a shape: its own entry; with t->nearest, else the nearest listed shape of
 * the same transposes within AN_NEAREST_SHAPE_MAX (the first of equals); else the fallback. */
static const an_gemm_config *table_config(const struct an_gemm_table *t, int trans_a, int trans_b, size_t m,
                                          size_t n, size_t k) {
  const an_gemm_shape_config *near = NULL;
  double near_d = AN_NEAREST_SHAPE_MAX;
  for (int i = 0; i < t->n; i++) {
    const an_gemm_shape_config *e = &t->entries[i];
    if (same_shape(e, trans_a, trans_b, m, n, k)) return &e->config;
    if (!t->nearest || e->trans_a != !!trans_a || e->trans_b != !!trans_b) continue;
    const double d = size_distance(e->m, m) + size_distance(e->n, n) + size_distance(e->k, k);
    if (d <= near_d && (!near || d < near_d)) near = e, near_d = d;
  }
  return near ? &near->config : &t->fallback;
}

an_status an_gemm_select(an_runtime *rt, int trans_a, int trans_b, size_t m, size_t n, size_t k) {
  struct an_gemm_table *t = rt->gemm_table;
  if (!t || !t->has_fallback) return AN_OK;
  const an_gemm_config *want = table_config(t, trans_a, trans_b, m, n, k);
  AN_TRY(set_xgemm(rt, want->v, 1));
  if (want->min_indirect_size) AN_TRY(set_min_indirect(rt, want->min_indirect_size, 1));
  return AN_OK;
}

static int table_add(struct an_gemm_table *t, const an_gemm_shape_config *e) {
  for (int i = 0; i < t->n; i++) /* a later line for the same shape replaces the earlier one */
    if (same_shape(&t->entries[i], e->trans_a, e->trans_b, e->m, e->n, e->k)) {
      t->entries[i] = *e;
      return 1;
    }
  an_gemm_shape_config *entries = an_grow(t->entries, t->n, &t->cap, sizeof *t->entries);
  if (!entries) return 0;
  t->entries = entries;
  t->entries[t->n++] = *e;
  return 1;
}

/* "shape=NT,64,2048,4608" */
static int parse_shape(const char *text, an_gemm_shape_config *e) {
  char ta, tb;
  unsigned long long m, n, k;
  int used = 0;
  if (sscanf(text, "shape=%c%c,%llu,%llu,%llu%n", &ta, &tb, &m, &n, &k, &used) != 5 || text[used]) return 0;
  if ((ta != 'N' && ta != 'T') || (tb != 'N' && tb != 'T') || !m || !n || !k) return 0;
  e->trans_a = ta == 'T', e->trans_b = tb == 'T', e->m = (size_t)m, e->n = (size_t)n, e->k = (size_t)k;
  return 1;
}

/* A line of the tuning file split in place into its fields: NULL when it is another device's (or not
 * a device line); else its first field after the key (shape=.., dwslice=.., or the fallback's
 * parameters), with *value the second (a shape's parameters, a slice's width, the fallback's note;
 * NULL when absent). */
static char *device_fields(char *line, const char *key, size_t key_len, char **value) {
  line[strcspn(line, "\r\n")] = '\0';
  *value = NULL;
  if (strncmp(line, key, key_len) || line[key_len] != '\t') return NULL;
  char *first = line + key_len + 1, *tab = strchr(first, '\t');
  if (tab) {
    *tab = '\0', *value = tab + 1;
    char *tab2 = strchr(*value, '\t');
    if (tab2) *tab2 = '\0';
  }
  return first;
}

/* Reads the lines of one entry (key: its first two fields) from f into a new table, not applied:
 * *found says whether a valid fallback line was there (without one, the table is freed and *out NULL).
 * Lines that do not parse, or whose values are invalid on this device, are skipped. */
static an_status table_read(FILE *f, const char *key, const an_device_info *info, struct an_gemm_table **out) {
  *out = NULL;
  char line[2048];
  const size_t key_len = strlen(key);
  struct an_gemm_table *t = calloc(1, sizeof *t);
  if (!t) return AN_FAIL(AN_ERR_HOST_ALLOC, "tuning table");
  int ok = 1;
  while (ok && fgets(line, sizeof line, f)) {
    char *value, *params = device_fields(line, key, key_len, &value);
    if (!params) continue;
    if (!strncmp(params, "dwslice=", 8)) { /* KEY \t dwslice=M,N,NCOLS \t width=W */
      an_dw_reduction r;
      if (value && parse_slice(params, value, &r)) ok = slices_add(t, &r);
      continue;
    }
    if (!strncmp(params, "shape=", 6)) { /* KEY \t shape=.. \t PARAMS [\t note] */
      an_gemm_shape_config e;
      if (value && parse_shape(params, &e) && parse_config(value, &e.config) &&
          an_gemm_config_valid(&e.config, info) && e.config.min_indirect_size)
        ok = table_add(t, &e);
      continue;
    }
    an_gemm_config parsed; /* a bad line must not spoil a good one read before it */
    if (parse_config(params, &parsed) && an_gemm_config_valid(&parsed, info))
      t->fallback = parsed, t->has_fallback = 1;
  }
  if (!ok || !t->has_fallback) { /* per-shape lines without their fallback are not used either */
    table_free(t);
    return ok ? AN_OK : AN_FAIL(AN_ERR_HOST_ALLOC, "tuning table");
  }
  if (!t->fallback.min_indirect_size)
    t->n = 0; /* a fallback that leaves CLBlast's threshold cannot be switched back to */
  *out = t;
  return AN_OK;
}

/* Applies a table read by table_read (NULL: nothing to apply) to rt and hands it over. */
static an_status table_apply(an_runtime *rt, struct an_gemm_table *t, int *applied, an_gemm_config *config) {
  *applied = 0;
  if (!t) return AN_OK;
  const an_status status = an_gemm_config_apply(rt, &t->fallback);
  if (status != AN_OK) {
    table_free(t);
    return status;
  }
  if (config) *config = t->fallback;
  table_install(rt, t);
  *applied = 1;
  return AN_OK;
}

an_status an_tuning_load(an_runtime *rt, const char *path, int *applied, an_gemm_config *config) {
  *applied = 0;
  FILE *f = fopen(path, "r");
  if (!f) return AN_OK; /* no cache yet: the untuned default */
  char key[512];
  device_key(&rt->info, key, sizeof key);
  struct an_gemm_table *t;
  const an_status status = table_read(f, key, &rt->info, &t);
  fclose(f);
  if (status != AN_OK) return status;
  return table_apply(rt, t, applied, config);
}

static void format_shape(const an_gemm_shape_config *e, char *buf, size_t size) {
  snprintf(buf, size, "shape=%c%c,%zu,%zu,%zu", e->trans_a ? 'T' : 'N', e->trans_b ? 'T' : 'N', e->m, e->n, e->k);
}

/* Is this device line one of r's shapes or reductions (then r's value replaces it)? */
static int line_in_result(const char *rest, const an_tune_result *r) {
  char buf[2048];
  snprintf(buf, sizeof buf, "%s", rest);
  char *tab = strchr(buf, '\t');
  if (tab) *tab = '\0';
  an_gemm_shape_config e;
  if (parse_shape(buf, &e)) {
    for (int i = 0; i < r->n_shapes; i++)
      if (same_shape(&r->shapes[i], e.trans_a, e.trans_b, e.m, e.n, e.k)) return 1;
    return 0;
  }
  unsigned long long m, n, ncols;
  if (sscanf(buf, "dwslice=%llu,%llu,%llu", &m, &n, &ncols) == 3) {
    for (int i = 0; i < r->n_slices; i++)
      if (same_reduction(&r->slices[i], (size_t)m, (size_t)n, (size_t)ncols)) return 1;
    return 0;
  }
  return 1; /* the fallback line, or one that does not parse: replaced */
}

an_status an_tuning_save(const an_runtime *rt, const char *path, const an_tune_result *r, int merge) {
  char key[512], tmp[4200], params[1024], shape[128], line[2048];
  device_key(&rt->info, key, sizeof key);
  const size_t key_len = strlen(key);
  AN_TRY(an_make_parent_dirs(path));
  snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
  FILE *out = fopen(tmp, "w");
  if (!out) return AN_FAIL(AN_ERR_IO, "cannot write %s: %s", tmp, strerror(errno));
  FILE *in = fopen(path, "r");
  if (in) { /* the other devices' lines stay; with merge, so do this device's for shapes r lacks */
    while (fgets(line, sizeof line, in)) {
      line[strcspn(line, "\r\n")] = '\0';
      const int mine = !strncmp(line, key, key_len) && line[key_len] == '\t';
      if (!mine || (merge && !line_in_result(line + key_len + 1, r))) fprintf(out, "%s\n", line);
    }
    fclose(in);
  }
  for (int i = 0; i < r->n_shapes; i++) {
    format_shape(&r->shapes[i], shape, sizeof shape);
    an_gemm_config_format(&r->shapes[i].config, params, sizeof params);
    fprintf(out, "%s\t%s\t%s\n", key, shape, params);
  }
  for (int i = 0; i < r->n_slices; i++)
    fprintf(out, "%s\tdwslice=%zu,%zu,%zu\twidth=%zu\n", key, r->slices[i].m, r->slices[i].n, r->slices[i].ncols,
            r->slices[i].width);
  /* the fallback last: a loader older than the per-shape lines keeps the last line it could parse */
  an_gemm_config_format(&r->best, params, sizeof params);
  fprintf(out, "%s\t%s\t%.2f GFLOP/s (fallback %.2f)\n", key, params, r->best_gflops, r->fallback_gflops);
  const int bad = fflush(out) != 0 || fsync(fileno(out)) != 0;
  if (fclose(out) != 0 || bad || rename(tmp, path) != 0) {
    remove(tmp);
    return AN_FAIL(AN_ERR_IO, "cannot write %s: %s", path, strerror(errno));
  }
  return AN_OK;
}

struct known_config {
  an_gemm_config c;
  int uses, first; /* shapes using it (the fallback counts above all), its first line */
};

static int by_use(const void *a, const void *b) {
  const struct known_config *x = a, *y = b;
  return x->uses != y->uses ? (x->uses < y->uses ? 1 : -1) : x->first - y->first;
}

/* The distinct indirect-kernel configurations of the entry key in f, the fallback first, then by use. */
static int entry_configs(FILE *f, const char *key, const an_device_info *info, an_gemm_config *out, int max) {
  enum { CAP = 64 };
  struct known_config seen[CAP];
  int n = 0, line_no = 0;
  char line[2048];
  const size_t key_len = strlen(key);
  while (fgets(line, sizeof line, f)) {
    line_no++;
    char *value, *params = device_fields(line, key, key_len, &value);
    if (!params || !strncmp(params, "dwslice=", 8)) continue;
    const int fallback = strncmp(params, "shape=", 6) != 0;
    const char *cfg = fallback ? params : value;
    an_gemm_config c;
    if (!cfg || !parse_config(cfg, &c) || !an_gemm_config_valid(&c, info) || c.min_indirect_size == AN_GEMM_DIRECT)
      continue;
    c.min_indirect_size = 0;
    int i = 0;
    while (i < n && memcmp(seen[i].c.v, c.v, sizeof c.v)) i++;
    if (i == n) {
      if (n == CAP) continue;
      seen[n].c = c, seen[n].uses = 0, seen[n++].first = line_no;
    }
    seen[i].uses += fallback ? 1 << 20 : 1;
  }
  qsort(seen, (size_t)n, sizeof seen[0], by_use);
  const int k = n < max ? n : max;
  for (int i = 0; i < k; i++) out[i] = seen[i].c;
  return k;
}

int an_tuning_known_configs(const an_runtime *rt, const char *path, an_gemm_config *out, int max) {
  FILE *f = path && max > 0 ? fopen(path, "r") : NULL;
  if (!f) return 0;
  char key[512];
  device_key(&rt->info, key, sizeof key);
  const int n = entry_configs(f, key, &rt->info, out, max);
  fclose(f);
  return n;
}

/* ---- the shipped database (tuning/database.txt) ---- */

extern const char an_tuning_database_text[]; /* generated from tuning/database.txt at build time */

/* The database's text: the file ALEXNET_TUNING_DATABASE names (into *owned, freed by the caller), else
 * the embedded copy. */
static an_status database_text(const char **text, char **owned) {
  *owned = NULL;
  *text = an_tuning_database_text;
  const char *path = getenv("ALEXNET_TUNING_DATABASE");
  if (!path || !*path) return AN_OK;
  FILE *f = fopen(path, "rb");
  if (!f) return AN_FAIL(AN_ERR_IO, "ALEXNET_TUNING_DATABASE=%s: %s", path, strerror(errno));
  size_t n = 0, cap = 0;
  char *buf = NULL;
  for (;;) {
    if (n + 4096 + 1 > cap) {
      char *grown = realloc(buf, cap = 2 * cap + 4096 + 1);
      if (!grown) {
        free(buf), fclose(f);
        return AN_FAIL(AN_ERR_HOST_ALLOC, "the tuning database");
      }
      buf = grown;
    }
    const size_t got = fread(buf + n, 1, 4096, f);
    n += got;
    if (got < 4096) break;
  }
  const int bad = ferror(f);
  fclose(f);
  if (bad) {
    free(buf);
    return AN_FAIL(AN_ERR_IO, "ALEXNET_TUNING_DATABASE=%s: read error", path);
  }
  buf[n] = '\0';
  *text = *owned = buf;
  return AN_OK;
}

/* Does an entry's family (a device-name prefix ending where the name has a '-' or ' ', or ends) and
 * driver ("*", or a prefix of the driver version) match this device? */
static int entry_matches(const char *family, const char *driver, const an_device_info *info) {
  const size_t len = strlen(family);
  const char after = info->name[len < sizeof info->name ? len : 0];
  if (!len || strncmp(info->name, family, len) || (after && after != '-' && after != ' ')) return 0;
  return !strcmp(driver, "*") || !strncmp(info->driver_version, driver, strlen(driver));
}

static FILE *text_open(const char *text) { return *text ? fmemopen((void *)text, strlen(text), "r") : NULL; }

/* The entry of text for this device: the longest matching family (the first of equals), followed
 * through its "use=NAME" line to the entry NAME of the same driver field. Its key ("FAMILY\tDRIVER")
 * into key, its name for reports into name ("pthread -> pthread-haswell" for an alias); 0: none. */
static int database_find(const char *text, const an_device_info *info, char *key, size_t key_size, char *name,
                         size_t name_size) {
  FILE *f = text_open(text);
  if (!f) return 0;
  char line[2048], family[256] = "", driver[256] = "", use[256] = "";
  while (fgets(line, sizeof line, f)) {
    line[strcspn(line, "\r\n")] = '\0';
    char *tab = strchr(line, '\t'), *tab2 = tab ? strchr(tab + 1, '\t') : NULL;
    if (line[0] == '#' || !tab || !tab2) continue;
    *tab = *tab2 = '\0';
    if (entry_matches(line, tab + 1, info) && strlen(line) > strlen(family) && strlen(line) < sizeof family &&
        strlen(tab + 1) < sizeof driver)
      strcpy(family, line), strcpy(driver, tab + 1), use[0] = '\0';
    if (!strcmp(line, family) && !strcmp(tab + 1, driver) && !strncmp(tab2 + 1, "use=", 4))
      snprintf(use, sizeof use, "%s", tab2 + 5);
  }
  fclose(f);
  if (!family[0]) return 0;
  snprintf(key, key_size, "%s\t%s", use[0] ? use : family, driver);
  if (use[0]) snprintf(name, name_size, "%s -> %s", family, use);
  else snprintf(name, name_size, "%s", family);
  return 1;
}

/* The database's entry for this device as a table, not applied (*t NULL: none); name as database_find. */
static an_status database_table(const an_device_info *info, struct an_gemm_table **t, char *name, size_t name_size) {
  *t = NULL;
  const char *text;
  char *owned, key[600];
  AN_TRY(database_text(&text, &owned));
  an_status status = AN_OK;
  FILE *f = database_find(text, info, key, sizeof key, name, name_size) ? text_open(text) : NULL;
  if (f) {
    status = table_read(f, key, info, t);
    fclose(f);
    if (*t) (*t)->nearest = 1;
  }
  free(owned);
  return status;
}

an_status an_tuning_database_load(an_runtime *rt, int *applied, an_gemm_config *config, char *entry,
                                  size_t entry_size) {
  *applied = 0;
  struct an_gemm_table *t;
  AN_TRY(database_table(&rt->info, &t, entry, entry_size));
  return table_apply(rt, t, applied, config);
}

int an_tuning_database_configs(const an_runtime *rt, an_gemm_config *out, int max) {
  const char *text;
  char *owned, key[600], name[600];
  if (max <= 0 || database_text(&text, &owned) != AN_OK) return 0;
  int n = 0;
  FILE *f = database_find(text, &rt->info, key, sizeof key, name, sizeof name) ? text_open(text) : NULL;
  if (f) {
    n = entry_configs(f, key, &rt->info, out, max);
    fclose(f);
  }
  free(owned);
  return n;
}

void an_tuning_database_dw_widths(const an_runtime *rt, an_dw_reduction *red, int n_red) {
  struct an_gemm_table *t;
  char name[600];
  if (database_table(&rt->info, &t, name, sizeof name) != AN_OK || !t) return;
  for (int i = 0; i < n_red; i++)
    if (t->n_slices) red[i].width = table_dw_slice(t, red[i].m, red[i].n, red[i].ncols);
  table_free(t);
}

void an_tune_result_free(an_tune_result *r) {
  free(r->shapes);
  free(r->shape_seconds);
  free(r->slices);
  r->shapes = NULL, r->shape_seconds = NULL, r->slices = NULL, r->n_shapes = r->n_slices = 0;
}

an_status an_gemm_tuning_install(an_runtime *rt, const an_gemm_config *fallback, const an_gemm_shape_config *shapes,
                                 int n_shapes) {
  struct an_gemm_table *table = calloc(1, sizeof *table);
  if (!table) return AN_FAIL(AN_ERR_HOST_ALLOC, "tuning table");
  for (int i = 0; i < n_shapes; i++)
    if (!table_add(table, &shapes[i])) {
      table_free(table);
      return AN_FAIL(AN_ERR_HOST_ALLOC, "tuning table");
    }
  const an_status status = an_gemm_config_apply(rt, fallback);
  if (status != AN_OK) {
    table_free(table);
    return status;
  }
  table->fallback = *fallback, table->has_fallback = 1;
  table_install(rt, table);
  return AN_OK;
}

void an_tuning_describe(const an_device_info *info, char *buf, size_t size) {
  char path[4096], key[512], entry[256];
  struct an_gemm_table *t = NULL;
  if (getenv("ALEXNET_NO_TUNING")) {
    snprintf(buf, size, "none (ALEXNET_NO_TUNING is set)");
    return;
  }
  an_tuning_path(path, sizeof path);
  FILE *f = fopen(path, "r");
  if (f) {
    device_key(info, key, sizeof key);
    if (table_read(f, key, info, &t) != AN_OK) t = NULL;
    fclose(f);
  }
  if (t) snprintf(buf, size, "tuning file %s (%d shapes)", path, t->n);
  else if (database_table(info, &t, entry, sizeof entry) == AN_OK && t)
    snprintf(buf, size, "database entry %s (%d shapes)", entry, t->n);
  else snprintf(buf, size, "none (untuned CLBlast defaults; see alexnet tune)");
  table_free(t);
}

/* ---- runtime creation: the OpenCL runtime with the device's tuning applied ---- */

/* The device's GEMM tuning from `alexnet tune` (the tuning file), else the shipped database's entry
 * for its family, unless ALEXNET_NO_TUNING is set; rt->gemm_tuning describes it for reports. */
static an_status apply_startup_tuning(an_runtime *rt) {
  if (getenv("ALEXNET_NO_TUNING")) return AN_OK;
  char path[4096], entry[128] = "", text[256];
  an_gemm_config config;
  an_tuning_path(path, sizeof path);
  AN_TRY(an_tuning_load(rt, path, &rt->gemm_tuned, &config));
  if (!rt->gemm_tuned) AN_TRY(an_tuning_database_load(rt, &rt->gemm_tuned, &config, entry, sizeof entry));
  if (!rt->gemm_tuned) return AN_OK;
  an_gemm_config_format(&config, text, sizeof text);
  if (entry[0]) /* "database entry pthread-haswell (84 shapes; nearest listed shape for others), fallback ..." */
    snprintf(rt->gemm_tuning, sizeof rt->gemm_tuning,
             "database entry %s (%d shapes; nearest listed shape for others), fallback %s", entry,
             an_gemm_tuned_shapes(rt), text);
  else if (an_gemm_tuned_shapes(rt))
    snprintf(rt->gemm_tuning, sizeof rt->gemm_tuning, "%s; %d shapes with their own", text,
             an_gemm_tuned_shapes(rt));
  else snprintf(rt->gemm_tuning, sizeof rt->gemm_tuning, "%s", text);
  return AN_OK;
}

an_status an_runtime_create(const char *device_spec, an_runtime **out) {
  return an_runtime_open(device_spec, apply_startup_tuning, out);
}

an_status an_runtime_create_pair(const char *spec, int separate_contexts, an_runtime **rt0, an_runtime **rt1) {
  return an_runtime_open_pair(spec, separate_contexts, apply_startup_tuning, rt0, rt1);
}
