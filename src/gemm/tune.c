/* GEMM tuning: CLBlast's Xgemm parameters searched on a model's own GEMM shapes, checked against the
 * untuned results, cached per device and driver, applied at startup. */
#include <errno.h>
#include <pthread.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <clblast_c.h>

#include "alexnet/tune.h"
#include "gemm/gemm.h"
#include "runtime/check.h"
#include "runtime/launch.h"

const char *const an_xgemm_param_names[AN_XGEMM_N_PARAMS] = {
    "GEMMK", "KREG", "KWG", "KWI", "MDIMA", "MDIMC", "MWG", "NDIMB",
    "NDIMC", "NWG",  "SA",  "SB",  "STRM",  "STRN",  "VWM", "VWN"};
enum { GEMMK, KREG, KWG, KWI, MDIMA, MDIMC, MWG, NDIMB, NDIMC, NWG, SA, SB, STRM, STRN, VWM, VWN };

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
  if (rc != CLBlastSuccess) return an_error((an_status)rc, __FILE__, __LINE__, "CLBlastOverrideParameters(Xgemm)");
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
  if (rc != CLBlastSuccess) return an_error((an_status)rc, __FILE__, __LINE__, "CLBlastOverrideParameters(GemmRoutine)");
  return AN_OK;
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

/* ---- the per-shape table a runtime switches through ---- */

struct an_gemm_table {
  int has_fallback;              /* 0: only slice widths (an_gemm_set_dw_slice on an untuned runtime) */
  an_gemm_config fallback;       /* shapes without an entry */
  int n, cap;
  an_gemm_shape_config *entries; /* (n) */
  int n_slices, cap_slices;
  an_dw_reduction *slices;       /* (n_slices) weight-gradient slice widths */
};

void an_gemm_table_free(struct an_gemm_table *t) {
  if (!t) return;
  free(t->entries);
  free(t->slices);
  free(t);
}

static int same_shape(const an_gemm_shape_config *e, int trans_a, int trans_b, size_t m, size_t n, size_t k) {
  return e->m == m && e->n == n && e->k == k && e->trans_a == !!trans_a && e->trans_b == !!trans_b;
}

static int same_reduction(const an_dw_reduction *r, size_t m, size_t n, size_t ncols) {
  return r->m == m && r->n == n && r->ncols == ncols;
}

size_t an_gemm_dw_slice(const an_runtime *rt, size_t m, size_t n, size_t ncols) {
  const struct an_gemm_table *t = rt->gemm_table;
  for (int i = 0; t && i < t->n_slices; i++)
    if (same_reduction(&t->slices[i], m, n, ncols)) return t->slices[i].width;
  return AN_CONV_DW_SLICE;
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
    return an_error(AN_ERR_ARGUMENT, __FILE__, __LINE__, "slice width %zu for a reduction over %zu columns", width,
                    ncols);
  if (!rt->gemm_table && !(rt->gemm_table = calloc(1, sizeof *rt->gemm_table)))
    return an_error(AN_ERR_HOST_ALLOC, __FILE__, __LINE__, "tuning table");
  const an_dw_reduction r = {m, n, ncols, 0, width};
  if (!slices_add(rt->gemm_table, &r)) return an_error(AN_ERR_HOST_ALLOC, __FILE__, __LINE__, "tuning table");
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

an_status an_gemm_select(an_runtime *rt, int trans_a, int trans_b, size_t m, size_t n, size_t k) {
  struct an_gemm_table *t = rt->gemm_table;
  if (!t || !t->has_fallback) return AN_OK;
  const an_gemm_config *want = &t->fallback;
  for (int i = 0; i < t->n; i++) {
    if (same_shape(&t->entries[i], trans_a, trans_b, m, n, k)) {
      want = &t->entries[i].config;
      break;
    }
  }
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

an_status an_tuning_load(an_runtime *rt, const char *path, int *applied, an_gemm_config *config) {
  *applied = 0;
  FILE *f = fopen(path, "r");
  if (!f) return AN_OK; /* no cache yet: the untuned default */
  char key[512], line[2048];
  device_key(&rt->info, key, sizeof key);
  const size_t key_len = strlen(key);
  struct an_gemm_table *t = calloc(1, sizeof *t);
  if (!t) {
    fclose(f);
    return an_error(AN_ERR_HOST_ALLOC, __FILE__, __LINE__, "tuning table");
  }
  an_gemm_config c;
  int found = 0;
  while (fgets(line, sizeof line, f)) {
    char *value, *params = device_fields(line, key, key_len, &value);
    if (!params) continue;
    if (!strncmp(params, "dwslice=", 8)) { /* KEY \t dwslice=M,N,NCOLS \t width=W */
      an_dw_reduction r;
      if (value && parse_slice(params, value, &r) && !slices_add(t, &r)) {
        fclose(f);
        an_gemm_table_free(t);
        return an_error(AN_ERR_HOST_ALLOC, __FILE__, __LINE__, "tuning table");
      }
      continue;
    }
    if (!strncmp(params, "shape=", 6)) { /* KEY \t shape=.. \t PARAMS [\t note] */
      an_gemm_shape_config e;
      if (value && parse_shape(params, &e) && parse_config(value, &e.config) && config_valid(&e.config, &rt->info) &&
          e.config.min_indirect_size && !table_add(t, &e)) {
        fclose(f);
        an_gemm_table_free(t);
        return an_error(AN_ERR_HOST_ALLOC, __FILE__, __LINE__, "tuning table");
      }
      continue;
    }
    an_gemm_config parsed; /* a bad line must not spoil a good one read before it */
    if (parse_config(params, &parsed) && config_valid(&parsed, &rt->info)) c = parsed, found = 1;
  }
  fclose(f);
  if (!found) { /* per-shape lines without their fallback are not used either */
    an_gemm_table_free(t);
    return AN_OK;
  }
  const an_status status = an_gemm_config_apply(rt, &c);
  if (status != AN_OK) {
    an_gemm_table_free(t);
    return status;
  }
  t->fallback = c, t->has_fallback = 1;
  if (!c.min_indirect_size) t->n = 0; /* a fallback that leaves CLBlast's threshold cannot be switched back to */
  an_gemm_table_free(rt->gemm_table);
  rt->gemm_table = t;
  if (config) *config = c;
  *applied = 1;
  return AN_OK;
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
  if (!out) return an_error(AN_ERR_IO, __FILE__, __LINE__, "cannot write %s: %s", tmp, strerror(errno));
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
    return an_error(AN_ERR_IO, __FILE__, __LINE__, "cannot write %s: %s", path, strerror(errno));
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

int an_tuning_known_configs(const an_runtime *rt, const char *path, an_gemm_config *out, int max) {
  FILE *f = path && max > 0 ? fopen(path, "r") : NULL;
  if (!f) return 0;
  enum { CAP = 64 };
  struct known_config seen[CAP];
  int n = 0, line_no = 0;
  char key[512], line[2048];
  device_key(&rt->info, key, sizeof key);
  const size_t key_len = strlen(key);
  while (fgets(line, sizeof line, f)) {
    line_no++;
    char *value, *params = device_fields(line, key, key_len, &value);
    if (!params || !strncmp(params, "dwslice=", 8)) continue;
    const int fallback = strncmp(params, "shape=", 6) != 0;
    const char *cfg = fallback ? params : value;
    an_gemm_config c;
    if (!cfg || !parse_config(cfg, &c) || !config_valid(&c, &rt->info) || c.min_indirect_size == AN_GEMM_DIRECT) continue;
    c.min_indirect_size = 0;
    int i = 0;
    while (i < n && memcmp(seen[i].c.v, c.v, sizeof c.v)) i++;
    if (i == n) {
      if (n == CAP) continue;
      seen[n].c = c, seen[n].uses = 0, seen[n++].first = line_no;
    }
    seen[i].uses += fallback ? 1 << 20 : 1;
  }
  fclose(f);
  qsort(seen, (size_t)n, sizeof seen[0], by_use);
  const int k = n < max ? n : max;
  for (int i = 0; i < k; i++) out[i] = seen[i].c;
  return k;
}

/* ---- the weight gradient's slice widths ---- */

static const size_t dw_widths[] = {256, 512, 1024, 2048, 4096, 8192, 16384};

static int add_timed_shape(an_gemm_shape *shapes, int n, int max, size_t m, size_t nn, size_t k, size_t ld) {
  for (int i = 0; i < n; i++)
    if (!shapes[i].trans_a && shapes[i].trans_b && shapes[i].m == m && shapes[i].n == nn && shapes[i].k == k) return n;
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
    return an_error(AN_ERR_HOST_ALLOC, __FILE__, __LINE__, "slice widths");
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

void an_tune_result_free(an_tune_result *r) {
  free(r->shapes);
  free(r->shape_seconds);
  free(r->slices);
  r->shapes = NULL, r->shape_seconds = NULL, r->slices = NULL, r->n_shapes = r->n_slices = 0;
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

/* One run of each shape (after a warm-up run that also builds the kernels) into seconds[i]. Returns 0,
 * -1 when a GEMM fails, -2 when a result differs from the untuned one. With record, stores the results
 * as the reference instead. A shape whose warm-up already took more than 3x limit[i] (when limit is
 * given) is not run again: the warm-up's time stands (a clearly slow candidate costs one run). With
 * may_stop, a candidate whose warm-ups so far took over 4x the limits' sum (+1 s) stops there: returns
 * 1, the shapes left at HUGE_VAL. */
static int time_each(an_runtime *rt, const an_gemm_shape *shapes, int n, bench_bufs *bb, int record,
                     const double *limit, int may_stop, double *seconds) {
  /* the first GEMM under a configuration builds its program (seconds on a CPU device): not timed */
  if (n > 0 && (run_gemm(rt, &shapes[0], bb) != CLBlastSuccess || clFinish(rt->queue) != CL_SUCCESS)) return -1;
  double spent_all = 0, limit_all = 0;
  for (int i = 0; i < n; i++) {
    const an_gemm_shape *s = &shapes[i];
    if (may_stop && limit && spent_all > 4 * limit_all + 1.0) { /* far behind the best: not worth finishing */
      for (int j = i; j < n; j++) seconds[j] = HUGE_VAL;
      return 1;
    }
    double t0 = an_seconds();
    if (run_gemm(rt, s, bb) != CLBlastSuccess || clFinish(rt->queue) != CL_SUCCESS) return -1; /* warm-up */
    seconds[i] = an_seconds() - t0;
    spent_all += seconds[i];
    if (limit) limit_all += limit[i];
    if (!limit || !(seconds[i] > 3 * limit[i])) {
      /* the fastest of up to 3 runs, while they take under 50 ms together (small GEMMs are noisy) */
      double spent = 0;
      for (int run = 0; run < 3 && (run == 0 || spent < 0.05); run++) {
        t0 = an_seconds();
        if (run_gemm(rt, s, bb) != CLBlastSuccess || clFinish(rt->queue) != CL_SUCCESS) return -1;
        const double t = an_seconds() - t0;
        spent += t;
        if (run == 0 || t < seconds[i]) seconds[i] = t;
      }
    }
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

static uint64_t next_rand(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

/* The values the search draws from, per parameter (MDIMA follows MDIMC, NDIMB follows NDIMC). */
static const size_t opt_wg[] = {8, 16, 32, 64, 128}, opt_kwg[] = {16, 32}, opt_dim[] = {1, 2, 4, 8, 16},
                    opt_kwi[] = {2, 8}, opt_vw[] = {1, 2, 4, 8, 16}, opt_bit[] = {0, 1};
#define PICK(opts, s) ((opts)[next_rand(s) % (sizeof(opts) / sizeof((opts)[0]))])

static void set_param(an_gemm_config *c, int which, uint64_t *s) {
  switch (which) {
    case 0: c->v[MWG] = PICK(opt_wg, s); break;
    case 1: c->v[NWG] = PICK(opt_wg, s); break;
    case 2: c->v[KWG] = PICK(opt_kwg, s); break;
    case 3: c->v[MDIMC] = c->v[MDIMA] = PICK(opt_dim, s); break;
    case 4: c->v[NDIMC] = c->v[NDIMB] = PICK(opt_dim, s); break;
    case 5: c->v[KWI] = PICK(opt_kwi, s); break;
    case 6: c->v[VWM] = PICK(opt_vw, s); break;
    case 7: c->v[VWN] = PICK(opt_vw, s); break;
    case 8: c->v[SA] = PICK(opt_bit, s); break;
    case 9: c->v[SB] = PICK(opt_bit, s); break;
    case 10: c->v[STRM] = PICK(opt_bit, s); break;
    default: c->v[STRN] = PICK(opt_bit, s); break;
  }
}
enum { N_SEARCHED_PARAMS = 12 };

static int already_tried(const an_gemm_config *tried, int n, const an_gemm_config *c) {
  for (int i = 0; i < n; i++)
    if (!memcmp(tried[i].v, c->v, sizeof c->v)) return 1;
  return 0;
}

static an_gemm_config random_config(uint64_t *s, const an_device_info *info, const an_gemm_config *tried,
                                    int n_tried) {
  for (int attempt = 0;; attempt++) {
    an_gemm_config c = {{0, 1}, 0};
    for (int p = 0; p < N_SEARCHED_PARAMS; p++) set_param(&c, p, s);
    if (config_valid(&c, info) && (attempt > 1000 || !already_tried(tried, n_tried, &c))) return c;
  }
}

/* A neighbour of base: one or two parameters redrawn, valid and not tried yet (else a random one). */
static an_gemm_config neighbour(const an_gemm_config *base, uint64_t *s, const an_device_info *info,
                                const an_gemm_config *tried, int n_tried) {
  for (int attempt = 0; attempt < 500; attempt++) {
    an_gemm_config c = *base;
    const int changes = 1 + (int)(next_rand(s) % 2);
    for (int k = 0; k < changes; k++) set_param(&c, (int)(next_rand(s) % N_SEARCHED_PARAMS), s);
    if (config_valid(&c, info) && !already_tried(tried, n_tried, &c)) return c;
  }
  return random_config(s, info, tried, n_tried);
}

/* Does CLBlast send this shape to the direct kernel under threshold t? */
static int goes_direct(const an_gemm_shape *s, size_t t) {
  return (double)s->m * s->n * s->k < (double)t * t * t;
}

an_status an_tune_gemm(an_runtime *rt, const an_gemm_shape *shapes, int n_shapes, int max_candidates,
                       const an_gemm_config *known, int n_known, uint64_t seed, an_tune_progress progress,
                       void *user, an_tune_result *result) {
  memset(result, 0, sizeof *result);
  if (n_shapes < 1 || max_candidates < 1)
    return an_error(AN_ERR_ARGUMENT, __FILE__, __LINE__, "tuning needs shapes and candidates");
  an_status status = AN_OK;
  bench_bufs bb = {0};
  const size_t ns = (size_t)n_shapes;
  an_gemm_config *cands = calloc((size_t)max_candidates, sizeof *cands);
  /* seconds of one run: [0] untuned, [1] direct kernel, [2 + c] candidate c */
  double *secs = calloc((size_t)(max_candidates + 2) * ns, sizeof *secs);
  double *best = calloc(ns, sizeof *best);
  int *ok = calloc((size_t)max_candidates + 2, sizeof *ok);
  result->shapes = calloc(ns, sizeof *result->shapes);
  result->shape_seconds = calloc(2 * ns, sizeof *result->shape_seconds);
  bb.want = calloc(ns, sizeof *bb.want);
  size_t max_a = 0, max_b = 0;
  for (int i = 0; i < n_shapes; i++) {
    const an_gemm_shape *s = &shapes[i];
    if (shape_a_floats(s) > max_a) max_a = shape_a_floats(s);
    if (shape_b_floats(s) > max_b) max_b = shape_b_floats(s);
    if (s->m * s->n > bb.max_c) bb.max_c = s->m * s->n;
  }
  bb.got = malloc(bb.max_c * sizeof(float));
  float *host = malloc((max_a > max_b ? max_a : max_b) * sizeof(float));
  if (!cands || !secs || !best || !ok || !result->shapes || !result->shape_seconds || !bb.want || !bb.got || !host) {
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
  if (time_each(rt, shapes, n_shapes, &bb, 1, NULL, 0, secs) != 0) { /* untuned: the reference and the floor */
    status = an_error(AN_ERR_ARGUMENT, __FILE__, __LINE__, "the untuned GEMM failed on the model's shapes");
    goto cleanup;
  }
  ok[0] = 1;
  memcpy(best, secs, ns * sizeof *best);
  result->default_gflops = flop / weighted(shapes, n_shapes, secs) / 1e9;
  if (progress) progress(user, 0, max_candidates, NULL, result->default_gflops, result->default_gflops, "untuned default");

  /* CLBlast's direct kernel on every shape (its own parameters stay CLBlast's) */
  int rc = -1;
  if (set_min_indirect(rt, AN_GEMM_DIRECT, 0) == AN_OK) rc = time_each(rt, shapes, n_shapes, &bb, 0, best, 0, secs + ns);
  ok[1] = rc == 0;
  if (ok[1])
    for (size_t i = 0; i < ns; i++)
      if (secs[ns + i] < best[i]) best[i] = secs[ns + i];
  if (progress)
    progress(user, -1, max_candidates, NULL, ok[1] ? flop / weighted(shapes, n_shapes, secs + ns) / 1e9 : 0,
             flop / weighted(shapes, n_shapes, best) / 1e9, ok[1] ? "direct kernel" : "direct kernel: failed");

  /* candidates of the indirect kernel: the configurations known from earlier tunings of this device
   * (other models' and batches'), a few known to suit CPUs and GPUs, then random valid ones, and for
   * the second half neighbours of the candidate fastest on all shapes so far (a local search) */
  static const size_t seeds[][AN_XGEMM_N_PARAMS] = {
      {0, 1, 16, 2, 2, 2, 16, 2, 2, 16, 0, 0, 0, 0, 8, 8},  {0, 1, 16, 2, 4, 4, 32, 4, 4, 32, 0, 0, 0, 0, 8, 8},
      {0, 1, 16, 2, 8, 8, 64, 8, 8, 64, 1, 1, 0, 0, 8, 8},  {0, 1, 32, 2, 16, 16, 64, 16, 16, 64, 1, 1, 1, 1, 2, 2},
      {0, 1, 16, 2, 8, 8, 64, 8, 8, 64, 1, 1, 1, 1, 4, 4},  {0, 1, 32, 2, 8, 8, 128, 8, 8, 128, 1, 1, 0, 0, 4, 4},
      {0, 1, 16, 2, 2, 2, 32, 2, 2, 32, 0, 0, 0, 0, 16, 16}, {0, 1, 16, 2, 1, 1, 16, 2, 2, 32, 0, 0, 0, 0, 16, 16},
  };
  const int n_seeds = (int)(sizeof seeds / sizeof seeds[0]);
  const int n_random = max_candidates / 2 > n_seeds ? max_candidates / 2 : n_seeds;
  int n_cands = 0, leader = -1, next_seed = 0, next_known = 0;
  double leader_secs = 0;
  if (set_min_indirect(rt, 1, 0) != AN_OK) max_candidates = 0; /* candidates run on the indirect kernel */
  for (int c = 0; c < max_candidates; c++) {
    an_gemm_config next = {{0}, 0};
    int have = 0;
    while (!have && next_known < n_known) { /* the known ones valid here, each once */
      next = known[next_known++];
      next.min_indirect_size = 0;
      have = config_valid(&next, &rt->info) && !already_tried(cands, n_cands, &next);
    }
    while (!have && next_seed < n_seeds) { /* the seeds valid on this device */
      memcpy(next.v, seeds[next_seed++], sizeof next.v);
      have = config_valid(&next, &rt->info) && !already_tried(cands, n_cands, &next);
    }
    if (!have)
      next = c >= n_random && leader >= 0 ? neighbour(&cands[leader], &s, &rt->info, cands, n_cands)
                                          : random_config(&s, &rt->info, cands, n_cands);
    cands[n_cands] = next;
    const int k = n_cands++;
    double *t = secs + (size_t)(2 + k) * ns;
    result->n_tried++;
    cands[k].min_indirect_size = 1;
    rc = -1;
    if (an_gemm_config_apply(rt, &cands[k]) == AN_OK) rc = time_each(rt, shapes, n_shapes, &bb, 0, best, 1, t);
    ok[2 + k] = rc >= 0;
    if (!ok[2 + k]) {
      result->n_rejected++;
    } else {
      for (size_t i = 0; i < ns; i++)
        if (t[i] < best[i]) best[i] = t[i];
      const double total = weighted(shapes, n_shapes, t);
      if (leader < 0 || total < leader_secs) leader = k, leader_secs = total;
    }
    if (progress)
      progress(user, k + 1, max_candidates, &cands[k], ok[2 + k] ? flop / weighted(shapes, n_shapes, t) / 1e9 : 0,
               flop / weighted(shapes, n_shapes, best) / 1e9,
               rc == -2 ? "wrong results: rejected" : rc < 0 ? "failed: rejected"
                                                             : rc == 1 ? "far slower than the best: stopped" : "");
  }
  /* the fallback: the candidate and threshold fastest on all shapes together */
  static const size_t thresholds[] = {1, 128, 384, 1536};
  double fallback_secs = -1;
  int fb = -1;
  for (int c = 0; c < n_cands; c++) {
    if (!ok[2 + c]) continue;
    for (size_t th = 0; th < sizeof thresholds / sizeof thresholds[0]; th++) {
      if (th > 0 && !ok[1]) break;
      double total = 0;
      for (size_t i = 0; i < ns; i++)
        if (shapes[i].count) total += shapes[i].count * (goes_direct(&shapes[i], thresholds[th]) ? secs[ns + i] : secs[(2 + c) * ns + i]);
      if (isfinite(total) && (fallback_secs < 0 || total < fallback_secs)) {
        fallback_secs = total, fb = c;
        result->best = cands[c];
        result->best.min_indirect_size = thresholds[th];
      }
    }
  }
  if (fb < 0) {
    status = an_error(AN_ERR_ARGUMENT, __FILE__, __LINE__, "no candidate configuration ran correctly");
    goto cleanup;
  }
  result->fallback_gflops = flop / fallback_secs / 1e9;
  /* each shape's own: the fastest measured among the direct kernel and the candidates (the untuned
   * default cannot be re-applied once overridden, so it is not a choice) */
  double total = 0;
  for (int i = 0; i < n_shapes; i++) {
    const an_gemm_shape *sh = &shapes[i];
    an_gemm_shape_config *e = &result->shapes[i];
    e->trans_a = sh->trans_a, e->trans_b = sh->trans_b, e->m = sh->m, e->n = sh->n, e->k = sh->k;
    int pick = -1; /* -1: direct */
    double t = ok[1] ? secs[ns + i] : 0;
    for (int c = 0; c < n_cands; c++)
      if (ok[2 + c] && (pick == -1 && !ok[1] ? 1 : secs[(2 + c) * ns + i] < t)) pick = c, t = secs[(2 + c) * ns + i];
    e->config = pick < 0 ? result->best : cands[pick];
    e->config.min_indirect_size = pick < 0 ? AN_GEMM_DIRECT : 1;
    /* the same choice as the fallback's, or one under 5 % faster: the fallback (each distinct
     * configuration costs a kernel build in every process that uses it) */
    const int fb_direct = goes_direct(sh, result->best.min_indirect_size);
    const double fb_t = fb_direct ? secs[ns + i] : secs[(size_t)(2 + fb) * ns + i];
    if ((pick < 0 && fb_direct) || (pick == fb && !fb_direct) || !(t < 0.95 * fb_t)) {
      e->config = result->best, t = fb_t;
    } else { /* confirmed back to back, or the fallback after all */
      double t_own = 0, t_fb = 0;
      if (retime(rt, sh, &bb, &e->config, &t_own) == 0 && retime(rt, sh, &bb, &result->best, &t_fb) == 0) {
        /* the ratio measured back to back, applied to the fallback's time from the search: the
         * per-shape total stays on the fallback's time base, so it never exceeds the fallback's */
        result->n_retimed++;
        if (t_own < 0.95 * t_fb) t = fb_t * (t_own / t_fb);
        else e->config = result->best, t = fb_t, result->n_retime_dropped++;
      }
    }
    result->shape_seconds[i] = secs[i];
    result->shape_seconds[ns + i] = t;
    if (sh->count) total += t * sh->count;
  }
  result->n_shapes = n_shapes;
  result->best_gflops = flop / total / 1e9;
  /* leave the result in effect on rt, as a later load of the saved file would */
  struct an_gemm_table *table = calloc(1, sizeof *table);
  if (!table) {
    status = an_error(AN_ERR_HOST_ALLOC, __FILE__, __LINE__, "tuning table");
    goto cleanup;
  }
  for (int i = 0; i < n_shapes; i++)
    if (!table_add(table, &result->shapes[i])) {
      an_gemm_table_free(table);
      status = an_error(AN_ERR_HOST_ALLOC, __FILE__, __LINE__, "tuning table");
      goto cleanup;
    }
  status = an_gemm_config_apply(rt, &result->best);
  if (status != AN_OK) {
    an_gemm_table_free(table);
    goto cleanup;
  }
  table->fallback = result->best, table->has_fallback = 1;
  an_gemm_table_free(rt->gemm_table);
  rt->gemm_table = table;
cleanup:
  if (status != AN_OK) an_tune_result_free(result);
  if (bb.a) clReleaseMemObject(bb.a);
  if (bb.b) clReleaseMemObject(bb.b);
  if (bb.c) clReleaseMemObject(bb.c);
  for (int i = 0; bb.want && i < n_shapes; i++) free(bb.want[i]);
  free(bb.want), free(bb.got), free(host), free(cands), free(secs), free(best), free(ok);
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
    AN_TRY_GOTO(an_gemm_select(rt, s->trans_a, s->trans_b, s->m, s->n, s->k));
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
