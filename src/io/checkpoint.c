/* A model's weights and training checkpoints as safetensors, under the names of a parameter layout's
 * tensor table (io.h), from and into host arrays; no device here (the trainer moves the arrays).
 *
 * Saving writes one file atomically. Loading opens the file, checks its metadata and every tensor's
 * presence, dtype and shape against the layout, and reads all data into host memory before handing
 * it out: a file that does not fit hands out nothing, so the caller's model stays untouched. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alexnet/io.h"
#include "runtime/check.h"

/* The checkpoint metadata's "mean" and "std" (and eval's and classify's reading of them). */
void an_format_rgb(const float v[3], char *buf, size_t size) {
  snprintf(buf, size, "%.9g,%.9g,%.9g", v[0], v[1], v[2]);
}

int an_parse_rgb(const char *s, float v[3]) { return s && sscanf(s, "%f,%f,%f", &v[0], &v[1], &v[2]) == 3; }

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors data are little-endian; this code copies F32 bytes as they are"
#endif

#define ERR_FORMAT AN_ERR_IO         /* a malformed file (as safetensors.c) */
#define ERR_MISMATCH AN_ERR_ARGUMENT /* a well-formed file that does not fit the layout */

#define MOMENTUM_PREFIX "momentum."
#define FORMAT_NAME "alexnet-opencl"

static const char *model_shape_str(char *buf, size_t size, const an_tensor *t) {
  size_t used = (size_t)snprintf(buf, size, "[");
  for (int i = 0; i < t->ndim && used < size; i++)
    used += (size_t)snprintf(buf + used, size - used, "%s%d", i ? "," : "", t->shape[i]);
  if (used < size) snprintf(buf + used, size - used, "]");
  return buf;
}

static const char *file_shape_str(char *buf, size_t size, const an_st_tensor *t) {
  size_t used = (size_t)snprintf(buf, size, "[");
  for (int i = 0; i < t->ndim && used < size; i++)
    used += (size_t)snprintf(buf + used, size - used, "%s%lld", i ? "," : "", (long long)t->shape[i]);
  if (used < size) snprintf(buf + used, size - used, "]");
  return buf;
}

an_status an_checkpoint_save(const an_param_layout *layout, const float *params, const float *momentum,
                             const char *path, const an_checkpoint_meta *meta) {
  const int ckpt = meta && meta->checkpoint, n = layout->n_tensors, n_entries = ckpt ? 2 * n : n;
  an_status status = AN_OK;
  an_st_entry *entries = calloc((size_t)n_entries, sizeof *entries); /* (n_entries) */
  char(*names)[sizeof MOMENTUM_PREFIX + sizeof layout->tensors[0].name] = ckpt ? malloc((size_t)n * sizeof *names)
                                                                               : NULL; /* (n) momentum.<name> */
  if ((ckpt && (!momentum || !names)) || !entries) {
    status = AN_FAIL(ckpt && !momentum ? AN_ERR_ARGUMENT : AN_ERR_HOST_ALLOC, "%s: %s", path,
                     ckpt && !momentum ? "a checkpoint needs the momentum" : "tensor tables");
    goto cleanup;
  }
  for (int i = 0; i < n; i++) {
    const an_tensor *t = &layout->tensors[i];
    an_st_entry *e = &entries[i];
    e->name = t->name, e->dtype = AN_DTYPE_F32, e->ndim = t->ndim, e->data = params + t->offset;
    for (int d = 0; d < t->ndim; d++) e->shape[d] = t->shape[d];
    if (!ckpt) continue;
    snprintf(names[i], sizeof names[i], MOMENTUM_PREFIX "%s", t->name);
    entries[n + i] = *e;
    entries[n + i].name = names[i];
    entries[n + i].data = momentum + t->offset;
  }

  char classes[16], input[16], epoch[24], step[24], seed[24], lr[32], resize[16];
  snprintf(classes, sizeof classes, "%d", layout->classes);
  snprintf(input, sizeof input, "%d", layout->input_hw);
  an_st_meta m[16] = {
      {"format", FORMAT_NAME},  {"format_version", "1"}, {"kind", ckpt ? "checkpoint" : "weights"},
      {"model", layout->model}, {"classes", classes},    {"input_size", input},
  };
  int n_meta = 6;
  if (meta) {
    snprintf(epoch, sizeof epoch, "%lld", (long long)meta->epoch);
    snprintf(step, sizeof step, "%lld", (long long)meta->step);
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)meta->seed);
    snprintf(lr, sizeof lr, "%.9g", meta->lr);
    m[n_meta++] = (an_st_meta){"epoch", epoch};
    m[n_meta++] = (an_st_meta){"step", step};
    m[n_meta++] = (an_st_meta){"seed", seed};
    m[n_meta++] = (an_st_meta){"lr", lr};
    if (meta->mean[0]) m[n_meta++] = (an_st_meta){"mean", meta->mean};
    if (meta->std[0]) m[n_meta++] = (an_st_meta){"std", meta->std};
    if (meta->resize > 0) {
      snprintf(resize, sizeof resize, "%d", meta->resize);
      m[n_meta++] = (an_st_meta){"resize", resize};
    }
    if (meta->norm[0]) m[n_meta++] = (an_st_meta){"normalization", meta->norm};
    if (meta->class_names) m[n_meta++] = (an_st_meta){AN_META_CLASS_NAMES, meta->class_names};
  }
  status = an_st_write(path, entries, n_entries, m, n_meta);
cleanup:
  free(names);
  free(entries);
  return status;
}

/* ---- loading ---- */

static an_status meta_int(const an_safetensors *st, const char *key, long long lo, long long hi, long long *out) {
  const char *v = an_st_meta_get(st, key);
  if (!v) return AN_OK;
  char *end;
  const long long x = strtoll(v, &end, 10);
  if (!v[0] || *end || x < lo || x > hi)
    return AN_FAIL(ERR_FORMAT, "%s: __metadata__ %s is '%.40s', not an integer in [%lld, %lld]", st->source, key, v,
                   lo, hi);
  *out = x;
  return AN_OK;
}

/* Reads the metadata into m and checks what must agree with the layout. */
static an_status read_meta(const an_safetensors *st, const an_param_layout *layout, an_checkpoint_meta *m) {
  const char *src = st->source, *v;
  long long x;
  memset(m, 0, sizeof *m);
  an_status s;
  x = 0;
  if ((s = meta_int(st, "format_version", 0, 1000000, &x)) != AN_OK) return s;
  if (x > AN_CHECKPOINT_FORMAT_VERSION)
    return AN_FAIL(ERR_FORMAT, "%s: format_version %lld is newer than this build reads (%d)", src, x,
                   AN_CHECKPOINT_FORMAT_VERSION);
  m->format_version = (int)x;
  if ((v = an_st_meta_get(st, "kind"))) {
    if (!strcmp(v, "checkpoint")) m->checkpoint = 1;
    else if (strcmp(v, "weights"))
      return AN_FAIL(ERR_FORMAT, "%s: __metadata__ kind is '%.40s', neither weights nor checkpoint", src, v);
  }
  if ((v = an_st_meta_get(st, "model"))) {
    if (strcmp(v, layout->model))
      return AN_FAIL(ERR_MISMATCH, "%s: holds weights of model %.40s, the net is %s", src, v, layout->model);
    snprintf(m->model, sizeof m->model, "%s", v);
  }
  x = 0;
  if ((s = meta_int(st, "classes", 1, 1 << 30, &x)) != AN_OK) return s;
  m->classes = (int)x;
  x = 0;
  if ((s = meta_int(st, "input_size", 1, 1 << 30, &x)) != AN_OK) return s;
  m->input_hw = (int)x;
  x = 0;
  if ((s = meta_int(st, "epoch", INT64_MIN, INT64_MAX, &x)) != AN_OK) return s;
  m->epoch = x;
  x = 0;
  if ((s = meta_int(st, "step", INT64_MIN, INT64_MAX, &x)) != AN_OK) return s;
  m->step = x;
  if ((v = an_st_meta_get(st, "seed"))) {
    char *end;
    const unsigned long long u = strtoull(v, &end, 10);
    if (!v[0] || *end || v[0] == '-')
      return AN_FAIL(ERR_FORMAT, "%s: __metadata__ seed is '%.40s', not an unsigned integer", src, v);
    m->seed = u;
  }
  if ((v = an_st_meta_get(st, "lr"))) {
    char *end;
    m->lr = strtod(v, &end);
    if (!v[0] || *end) return AN_FAIL(ERR_FORMAT, "%s: __metadata__ lr is '%.40s', not a number", src, v);
  }
  if ((v = an_st_meta_get(st, "mean"))) snprintf(m->mean, sizeof m->mean, "%s", v);
  if ((v = an_st_meta_get(st, "std"))) snprintf(m->std, sizeof m->std, "%s", v);
  x = 0;
  if ((s = meta_int(st, "resize", 1, 4096, &x)) != AN_OK) return s;
  m->resize = (int)x;
  if ((v = an_st_meta_get(st, "normalization"))) snprintf(m->norm, sizeof m->norm, "%s", v);
  return AN_OK;
}

/* The file's tensor called name, checked against t; its index in *index. */
static an_status match_tensor(const an_safetensors *st, const char *name, const an_tensor *t, int *index) {
  char have[160], need[160];
  const int i = an_st_find(st, name);
  if (i < 0)
    return AN_FAIL(ERR_MISMATCH, "%s: tensor %s is missing (the model needs %s)", st->source, name,
                   model_shape_str(need, sizeof need, t));
  const an_st_tensor *f = &st->tensors[i];
  int same = f->ndim == t->ndim;
  for (int d = 0; same && d < t->ndim; d++) same = f->shape[d] == t->shape[d];
  if (!same)
    return AN_FAIL(ERR_MISMATCH, "%s: tensor %s has shape %s, the model needs %s", st->source, name,
                   file_shape_str(have, sizeof have, f), model_shape_str(need, sizeof need, t));
  if (f->dtype != AN_DTYPE_F32)
    return AN_FAIL(ERR_MISMATCH, "%s: tensor %s has dtype %s, the model needs F32", st->source, name,
                   an_dtype_name(f->dtype));
  *index = i;
  return AN_OK;
}

an_status an_checkpoint_load(const an_param_layout *layout, const char *path, float **params_out,
                             float **momentum_out, an_checkpoint_meta *out) {
  *params_out = *momentum_out = NULL;
  an_safetensors *st = NULL;
  an_status status = an_st_open(path, &st);
  if (status != AN_OK) return status;
  const int n = layout->n_tensors;
  int *where = NULL;      /* (2n) file index of each tensor, then of each momentum */
  char *used = NULL;      /* (st->n_tensors) */
  float *params = NULL;   /* (n_params) */
  float *momentum = NULL; /* (n_params) */
  an_checkpoint_meta m;
  if ((status = read_meta(st, layout, &m)) != AN_OK) goto cleanup;
  where = malloc(2 * (size_t)n * sizeof *where);
  used = calloc(st->n_tensors ? (size_t)st->n_tensors : 1, 1);
  if (!where || !used) {
    status = AN_FAIL(AN_ERR_HOST_ALLOC, "%s: tensor tables", path);
    goto cleanup;
  }
  char name[sizeof MOMENTUM_PREFIX + sizeof layout->tensors[0].name];
  for (int k = 0; k < (m.checkpoint ? 2 : 1); k++)
    for (int i = 0; i < n; i++) {
      snprintf(name, sizeof name, "%s%s", k ? MOMENTUM_PREFIX : "", layout->tensors[i].name);
      if ((status = match_tensor(st, name, &layout->tensors[i], &where[k * n + i])) != AN_OK) goto cleanup;
      used[where[k * n + i]] = 1;
    }
  int extra = 0, first = -1;
  for (int j = 0; j < st->n_tensors; j++)
    if (!used[j] && extra++ == 0) first = j;
  if (extra) {
    const char *nm = st->tensors[first].name;
    status = AN_FAIL(
        ERR_MISMATCH, "%s: tensor %s is not part of model %s%s (%d tensor%s in the file %s not)", path, nm,
        layout->model,
        !strncmp(nm, MOMENTUM_PREFIX, strlen(MOMENTUM_PREFIX)) ? ", and the metadata do not say checkpoint" : "",
        extra, extra > 1 ? "s" : "", extra > 1 ? "are" : "is");
    goto cleanup;
  }

  params = malloc(layout->n_params * sizeof *params);
  momentum = m.checkpoint ? malloc(layout->n_params * sizeof *momentum) : NULL;
  if (!params || (m.checkpoint && !momentum)) {
    status = AN_FAIL(AN_ERR_HOST_ALLOC, "%s: host copies of %zu parameters", path, layout->n_params);
    goto cleanup;
  }
  for (int k = 0; k < (m.checkpoint ? 2 : 1); k++)
    for (int i = 0; i < n; i++) {
      const an_tensor *t = &layout->tensors[i];
      float *dst = (k ? momentum : params) + t->offset;
      if ((status = an_st_read(st, where[k * n + i], dst, t->count * sizeof *dst)) != AN_OK) goto cleanup;
    }

  *params_out = params, *momentum_out = momentum;
  params = momentum = NULL;
  if (out) *out = m;
cleanup:
  free(momentum);
  free(params);
  free(used);
  free(where);
  an_st_close(st);
  return status;
}

/* ---- fine-tuning: the tensors that fit ---- */

an_status an_checkpoint_load_matching(const an_param_layout *layout, const char *path, float *params,
                                      an_match_report *report) {
  memset(report, 0, sizeof *report);
  const int n = layout->n_tensors;
  if (n > AN_MATCH_MAX_TENSORS)
    return AN_FAIL(AN_ERR_ARGUMENT, "%s: a layout of %d tensors, more than %d", path, n, AN_MATCH_MAX_TENSORS);
  an_safetensors *st = NULL;
  AN_TRY(an_st_open(path, &st));
  an_status status = AN_OK;
  float *staged = malloc((layout->n_params ? layout->n_params : 1) * sizeof *staged); /* (n_params) */
  char *used = calloc(st->n_tensors ? (size_t)st->n_tensors : 1, 1);                  /* (file tensors) */
  if (!staged || !used) {
    status = AN_FAIL(AN_ERR_HOST_ALLOC, "%s: host copies of %zu parameters", path, layout->n_params);
    goto cleanup;
  }
  report->n_tensors = n;
  for (int i = 0; i < n; i++) {
    const an_tensor *t = &layout->tensors[i];
    an_match_tensor *r = &report->tensor[i];
    snprintf(r->name, sizeof r->name, "%s", t->name);
    model_shape_str(r->need, sizeof r->need, t);
    const int j = an_st_find(st, t->name);
    if (j < 0) {
      r->kind = AN_MATCH_MISSING;
      continue;
    }
    used[j] = 1;
    const an_st_tensor *f = &st->tensors[j];
    int same = f->ndim == t->ndim;
    for (int d = 0; same && d < t->ndim; d++) same = f->shape[d] == t->shape[d];
    file_shape_str(r->have, sizeof r->have, f);
    if (!same) {
      r->kind = AN_MATCH_SHAPE;
    } else if (f->dtype != AN_DTYPE_F32) {
      r->kind = AN_MATCH_DTYPE;
      snprintf(r->have, sizeof r->have, "%s", an_dtype_name(f->dtype));
    } else {
      AN_TRY_GOTO(an_st_read(st, j, staged + t->offset, t->count * sizeof *staged));
      r->kind = AN_MATCH_LOADED;
      report->n_loaded++;
    }
  }
  for (int j = 0; j < st->n_tensors; j++) {
    const char *nm = st->tensors[j].name;
    if (used[j] || !strncmp(nm, MOMENTUM_PREFIX, strlen(MOMENTUM_PREFIX))) continue;
    if (report->n_unused++ == 0) snprintf(report->first_unused, sizeof report->first_unused, "%s", nm);
  }
  if (!report->n_loaded) {
    status = AN_FAIL(AN_ERR_ARGUMENT, "%s: not one of its %d tensors fits model %s (name, shape and F32)", path,
                     st->n_tensors, layout->model);
    goto cleanup;
  }
  for (int i = 0; i < n; i++) /* everything is read: only now does params change */
    if (report->tensor[i].kind == AN_MATCH_LOADED) {
      const an_tensor *t = &layout->tensors[i];
      memcpy(params + t->offset, staged + t->offset, t->count * sizeof *params);
    }
cleanup:
  free(used);
  free(staged);
  an_st_close(st);
  return status;
}
