/* safetensors: parse (from memory or a file), validate, read tensor data, and write atomically.
 *
 * Layout: 8-byte little-endian N | N bytes of JSON header (cJSON) | data section. The header is checked
 * completely before any tensor is read: field types, dtype names, shapes, offsets inside the data,
 * no two tensors sharing bytes, each extent equal to shape × dtype size. Every failure is an AN_FAIL
 * naming the file, the tensor and the cause. */
#define _POSIX_C_SOURCE 200809L /* fileno, fsync, mkstemp, fseeko, fchmod */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "alexnet/io.h"
#include "runtime/check.h"

/* A malformed file. */
#define ERR_FORMAT AN_ERR_IO

static const struct {
  const char *name;
  size_t bytes;
} dtypes[AN_DTYPE_COUNT] = {
    [AN_DTYPE_BOOL] = {"BOOL", 1},       [AN_DTYPE_U8] = {"U8", 1},           [AN_DTYPE_I8] = {"I8", 1},
    [AN_DTYPE_F8_E5M2] = {"F8_E5M2", 1}, [AN_DTYPE_F8_E4M3] = {"F8_E4M3", 1}, [AN_DTYPE_I16] = {"I16", 2},
    [AN_DTYPE_U16] = {"U16", 2},         [AN_DTYPE_F16] = {"F16", 2},         [AN_DTYPE_BF16] = {"BF16", 2},
    [AN_DTYPE_I32] = {"I32", 4},         [AN_DTYPE_U32] = {"U32", 4},         [AN_DTYPE_F32] = {"F32", 4},
    [AN_DTYPE_F64] = {"F64", 8},         [AN_DTYPE_I64] = {"I64", 8},         [AN_DTYPE_U64] = {"U64", 8},
};

const char *an_dtype_name(an_dtype dtype) { return (unsigned)dtype < AN_DTYPE_COUNT ? dtypes[dtype].name : "?"; }

size_t an_dtype_bytes(an_dtype dtype) { return (unsigned)dtype < AN_DTYPE_COUNT ? dtypes[dtype].bytes : 0; }

static int dtype_from_name(const char *name, an_dtype *out) {
  for (int i = 0; i < AN_DTYPE_COUNT; i++)
    if (!strcmp(dtypes[i].name, name)) {
      *out = (an_dtype)i;
      return 1;
    }
  return 0;
}

/* "[96,3,11,11]" into buf. */
static const char *shape_str(char *buf, size_t size, int ndim, const int64_t *shape) {
  size_t used = (size_t)snprintf(buf, size, "[");
  for (int i = 0; i < ndim && used < size; i++)
    used += (size_t)snprintf(buf + used, size - used, "%s%lld", i ? "," : "", (long long)shape[i]);
  if (used < size) snprintf(buf + used, size - used, "]");
  return buf;
}

static uint64_t load_le64(const uint8_t *p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
  return v;
}

static void store_le64(uint8_t *p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

/* ---- parsing ---- */

/* A JSON number that is an integer in [0, 2^53] (exact in a double). */
static int json_uint(const cJSON *item, uint64_t *out) {
  if (!cJSON_IsNumber(item)) return 0;
  const double v = item->valuedouble;
  if (!isfinite(v) || v < 0 || v > 9007199254740992.0 || floor(v) != v) return 0;
  *out = (uint64_t)v;
  return 1;
}

static int by_name(const void *a, const void *b) {
  return strcmp((*(const an_st_tensor *const *)a)->name, (*(const an_st_tensor *const *)b)->name);
}

static int by_begin(const void *a, const void *b) {
  const an_st_tensor *x = *(const an_st_tensor *const *)a, *y = *(const an_st_tensor *const *)b;
  if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
  return x->end < y->end ? -1 : x->end > y->end;
}

static an_status parse_tensor(const char *src, const cJSON *entry, uint64_t data_bytes, an_st_tensor *t) {
  const char *name = entry->string;
  char buf[160];
  t->name = name;
  if (!name[0]) return AN_FAIL(ERR_FORMAT, "%s: a tensor has an empty name", src);
  if (!cJSON_IsObject(entry))
    return AN_FAIL(ERR_FORMAT, "%s: tensor %s is not a JSON object with dtype, shape and data_offsets", src, name);

  const cJSON *dtype = cJSON_GetObjectItemCaseSensitive(entry, "dtype");
  if (!dtype) return AN_FAIL(ERR_FORMAT, "%s: tensor %s has no dtype", src, name);
  if (!cJSON_IsString(dtype)) return AN_FAIL(ERR_FORMAT, "%s: tensor %s: dtype is not a string", src, name);
  if (!dtype_from_name(dtype->valuestring, &t->dtype))
    return AN_FAIL(ERR_FORMAT, "%s: tensor %s has unknown dtype '%.32s'", src, name, dtype->valuestring);

  const cJSON *shape = cJSON_GetObjectItemCaseSensitive(entry, "shape");
  if (!shape) return AN_FAIL(ERR_FORMAT, "%s: tensor %s has no shape", src, name);
  if (!cJSON_IsArray(shape)) return AN_FAIL(ERR_FORMAT, "%s: tensor %s: shape is not an array", src, name);
  const int ndim = cJSON_GetArraySize(shape);
  if (ndim > AN_ST_MAX_DIMS)
    return AN_FAIL(ERR_FORMAT, "%s: tensor %s has %d dimensions, more than %d", src, name, ndim, AN_ST_MAX_DIMS);
  t->ndim = ndim;
  t->count = 1;
  const uint64_t max_count = UINT64_MAX / an_dtype_bytes(t->dtype);
  int overflow = 0, d = 0;
  for (const cJSON *dim = shape->child; dim; dim = dim->next, d++) {
    uint64_t v;
    if (!json_uint(dim, &v))
      return AN_FAIL(ERR_FORMAT, "%s: tensor %s: shape element %d is not a non-negative integer", src, name, d);
    t->shape[d] = (int64_t)v;
    if (v && t->count > max_count / v) overflow = 1;
    else t->count *= v;
  }
  if (overflow)
    return AN_FAIL(ERR_FORMAT, "%s: tensor %s: shape %s has more elements than a file can hold", src, name,
                   shape_str(buf, sizeof buf, ndim, t->shape));

  const cJSON *offsets = cJSON_GetObjectItemCaseSensitive(entry, "data_offsets");
  if (!offsets) return AN_FAIL(ERR_FORMAT, "%s: tensor %s has no data_offsets", src, name);
  if (!cJSON_IsArray(offsets) || cJSON_GetArraySize(offsets) != 2 || !json_uint(offsets->child, &t->begin) ||
      !json_uint(offsets->child->next, &t->end))
    return AN_FAIL(ERR_FORMAT, "%s: tensor %s: data_offsets is not a pair of non-negative integers", src, name);
  if (t->begin > t->end)
    return AN_FAIL(ERR_FORMAT, "%s: tensor %s: data_offsets [%llu, %llu) end before they begin", src, name,
                   (unsigned long long)t->begin, (unsigned long long)t->end);
  if (t->end > data_bytes)
    return AN_FAIL(ERR_FORMAT,
                   "%s: tensor %s: data_offsets [%llu, %llu) lie outside the data section of %llu bytes "
                   "(offsets outside the data, or a truncated file)",
                   src, name, (unsigned long long)t->begin, (unsigned long long)t->end,
                   (unsigned long long)data_bytes);
  const uint64_t need = t->count * an_dtype_bytes(t->dtype);
  if (t->end - t->begin != need)
    return AN_FAIL(ERR_FORMAT, "%s: tensor %s: data_offsets span %llu bytes, but shape %s of %s needs %llu", src,
                   name, (unsigned long long)(t->end - t->begin), shape_str(buf, sizeof buf, ndim, t->shape),
                   an_dtype_name(t->dtype), (unsigned long long)need);
  return AN_OK;
}

/* Parses and validates the n header bytes (text[n] is a terminating NUL) into st (tensors, meta, json_). */
static an_status parse_header(an_safetensors *st, const char *text, size_t n, uint64_t data_bytes) {
  const char *src = st->source;
  const char *end = NULL;
  cJSON *root = cJSON_ParseWithLengthOpts(text, n, &end, 0);
  if (!root) {
    const size_t at = end && end >= text && end <= text + n ? (size_t)(end - text) : 0;
    return AN_FAIL(ERR_FORMAT, "%s: the header is not valid JSON (parsing stops at byte %zu of %zu)", src, at, n);
  }
  st->json_ = root;
  for (const char *p = end; p < text + n; p++)
    if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r')
      return AN_FAIL(ERR_FORMAT, "%s: the header has bytes after its JSON object (at byte %zu of %zu)", src,
                     (size_t)(p - text), n);
  if (!cJSON_IsObject(root)) return AN_FAIL(ERR_FORMAT, "%s: the header is not a JSON object", src);

  int n_tensors = 0, n_meta = 0;
  const cJSON *meta = NULL;
  for (const cJSON *e = root->child; e; e = e->next) {
    if (strcmp(e->string, "__metadata__")) {
      n_tensors++;
      continue;
    }
    if (meta) return AN_FAIL(ERR_FORMAT, "%s: the header has __metadata__ twice", src);
    if (!cJSON_IsObject(e)) return AN_FAIL(ERR_FORMAT, "%s: __metadata__ is not a JSON object", src);
    meta = e;
    for (const cJSON *kv = e->child; kv; kv = kv->next, n_meta++)
      if (!cJSON_IsString(kv))
        return AN_FAIL(ERR_FORMAT, "%s: __metadata__ value of '%.64s' is not a string", src, kv->string);
  }
  st->tensors = calloc(n_tensors ? (size_t)n_tensors : 1, sizeof *st->tensors);
  st->meta = calloc(n_meta ? (size_t)n_meta : 1, sizeof *st->meta);
  an_st_tensor **order = malloc((n_tensors ? (size_t)n_tensors : 1) * sizeof *order);
  an_status status = AN_OK;
  if (!st->tensors || !st->meta || !order) {
    status = AN_FAIL(AN_ERR_HOST_ALLOC, "%s: header tables for %d tensors", src, n_tensors);
    goto cleanup;
  }
  if (meta)
    for (const cJSON *kv = meta->child; kv; kv = kv->next, st->n_meta++) {
      st->meta[st->n_meta].key = kv->string;
      st->meta[st->n_meta].value = kv->valuestring;
    }
  for (const cJSON *e = root->child; e; e = e->next) {
    if (e == meta) continue;
    an_st_tensor *t = &st->tensors[st->n_tensors];
    if ((status = parse_tensor(src, e, data_bytes, t)) != AN_OK) goto cleanup;
    order[st->n_tensors++] = t;
  }
  if (meta) /* duplicate metadata keys: few, so pairwise */
    for (int i = 0; i < st->n_meta; i++)
      for (int j = i + 1; j < st->n_meta; j++)
        if (!strcmp(st->meta[i].key, st->meta[j].key)) {
          status = AN_FAIL(ERR_FORMAT, "%s: __metadata__ has key '%.64s' twice", src, st->meta[i].key);
          goto cleanup;
        }
  qsort(order, (size_t)st->n_tensors, sizeof *order, by_name);
  for (int i = 1; i < st->n_tensors; i++)
    if (!strcmp(order[i - 1]->name, order[i]->name)) {
      status = AN_FAIL(ERR_FORMAT, "%s: tensor %s appears twice in the header", src, order[i]->name);
      goto cleanup;
    }
  /* overlap: in begin order, every non-empty range starts at or after the furthest end so far */
  qsort(order, (size_t)st->n_tensors, sizeof *order, by_begin);
  const an_st_tensor *furthest = NULL;
  for (int i = 0; i < st->n_tensors; i++) {
    const an_st_tensor *t = order[i];
    if (t->begin == t->end) continue;
    if (furthest && t->begin < furthest->end) {
      status = AN_FAIL(ERR_FORMAT, "%s: tensors %s [%llu, %llu) and %s [%llu, %llu) have overlapping data_offsets",
                       src, furthest->name, (unsigned long long)furthest->begin, (unsigned long long)furthest->end,
                       t->name, (unsigned long long)t->begin, (unsigned long long)t->end);
      goto cleanup;
    }
    if (!furthest || t->end > furthest->end) furthest = t;
  }
cleanup:
  free(order);
  return status;
}

static an_safetensors *st_new(const char *source) {
  an_safetensors *st = calloc(1, sizeof *st);
  if (st) snprintf(st->source, sizeof st->source, "%s", source ? source : "(memory)");
  return st;
}

/* The checks on the 8-byte length that precede the JSON. */
static an_status check_length(const char *src, uint64_t file_bytes, uint64_t n) {
  if (n > file_bytes - 8)
    return AN_FAIL(ERR_FORMAT,
                   "%s: the header length %llu runs past the end of the file (%llu bytes follow the length field)",
                   src, (unsigned long long)n, (unsigned long long)(file_bytes - 8));
  if (n > AN_ST_MAX_HEADER_BYTES)
    return AN_FAIL(ERR_FORMAT, "%s: the header length %llu exceeds the limit of %llu bytes", src,
                   (unsigned long long)n, (unsigned long long)AN_ST_MAX_HEADER_BYTES);
  return AN_OK;
}

an_status an_st_parse(const void *bytes, size_t n_bytes, const char *source, an_safetensors **out) {
  *out = NULL;
  an_safetensors *st = st_new(source);
  char *text = NULL;
  if (!st) return AN_FAIL(AN_ERR_HOST_ALLOC, "safetensors");
  an_status status;
  if (n_bytes < 8) {
    status = AN_FAIL(ERR_FORMAT, "%s: truncated file: %zu bytes, fewer than the 8-byte header length", st->source,
                     n_bytes);
    goto cleanup;
  }
  const uint8_t *b = bytes;
  const uint64_t n = load_le64(b);
  if ((status = check_length(st->source, n_bytes, n)) != AN_OK) goto cleanup;
  st->header_bytes = n;
  st->data_bytes = n_bytes - 8 - n;
  /* cJSON gets a terminated copy: it is never asked to stop at a length alone */
  text = malloc((size_t)n + 1);
  if (!text) {
    status = AN_FAIL(AN_ERR_HOST_ALLOC, "%s: header of %llu bytes", st->source, (unsigned long long)n);
    goto cleanup;
  }
  memcpy(text, b + 8, (size_t)n);
  text[n] = '\0';
  if ((status = parse_header(st, text, (size_t)n, st->data_bytes)) != AN_OK) goto cleanup;
  free(text);
  st->data_ = b + 8 + n;
  *out = st;
  return AN_OK;
cleanup:
  free(text);
  an_st_close(st);
  return status;
}

an_status an_st_open(const char *path, an_safetensors **out) {
  *out = NULL;
  an_safetensors *st = st_new(path);
  char *text = NULL;
  if (!st) return AN_FAIL(AN_ERR_HOST_ALLOC, "safetensors");
  an_status status = AN_OK;
  FILE *f = fopen(path, "rb");
  if (!f) {
    status = AN_FAIL(AN_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    goto cleanup;
  }
  st->file_ = f;
  struct stat sb;
  if (fstat(fileno(f), &sb) != 0) {
    status = AN_FAIL(AN_ERR_IO, "%s: cannot stat: %s", path, strerror(errno));
    goto cleanup;
  }
  if (!S_ISREG(sb.st_mode)) {
    status = AN_FAIL(AN_ERR_IO, "%s: not a regular file", path);
    goto cleanup;
  }
  const uint64_t file_bytes = (uint64_t)sb.st_size;
  uint8_t len[8];
  if (file_bytes < 8) {
    status = AN_FAIL(ERR_FORMAT, "%s: truncated file: %llu bytes, fewer than the 8-byte header length", path,
                     (unsigned long long)file_bytes);
    goto cleanup;
  }
  if (fread(len, 1, 8, f) != 8) {
    status = AN_FAIL(AN_ERR_IO, "%s: cannot read the header length: %s", path,
                     ferror(f) ? strerror(errno) : "end of file");
    goto cleanup;
  }
  const uint64_t n = load_le64(len);
  if ((status = check_length(path, file_bytes, n)) != AN_OK) goto cleanup;
  text = malloc((size_t)n + 1);
  if (!text) {
    status = AN_FAIL(AN_ERR_HOST_ALLOC, "%s: header of %llu bytes", path, (unsigned long long)n);
    goto cleanup;
  }
  if (fread(text, 1, (size_t)n, f) != (size_t)n) {
    status = AN_FAIL(AN_ERR_IO, "%s: cannot read the %llu-byte header: %s", path, (unsigned long long)n,
                     ferror(f) ? strerror(errno) : "the file ended early");
    goto cleanup;
  }
  text[n] = '\0';
  st->header_bytes = n;
  st->data_bytes = file_bytes - 8 - n;
  if ((status = parse_header(st, text, (size_t)n, st->data_bytes)) != AN_OK) goto cleanup;
  free(text);
  *out = st;
  return AN_OK;
cleanup:
  free(text);
  an_st_close(st);
  return status;
}

void an_st_close(an_safetensors *st) {
  if (!st) return;
  if (st->file_) fclose(st->file_);
  cJSON_Delete(st->json_);
  free(st->meta);
  free(st->tensors);
  free(st);
}

int an_st_find(const an_safetensors *st, const char *name) {
  for (int i = 0; i < st->n_tensors; i++)
    if (!strcmp(st->tensors[i].name, name)) return i;
  return -1;
}

const char *an_st_meta_get(const an_safetensors *st, const char *key) {
  for (int i = 0; i < st->n_meta; i++)
    if (!strcmp(st->meta[i].key, key)) return st->meta[i].value;
  return NULL;
}

an_status an_st_read(an_safetensors *st, int i, void *dst, size_t dst_bytes) {
  if (i < 0 || i >= st->n_tensors)
    return AN_FAIL(AN_ERR_ARGUMENT, "%s: tensor index %d outside [0, %d)", st->source, i, st->n_tensors);
  const an_st_tensor *t = &st->tensors[i];
  if (dst_bytes != t->end - t->begin)
    return AN_FAIL(AN_ERR_ARGUMENT, "%s: tensor %s holds %llu bytes, the destination %zu", st->source, t->name,
                   (unsigned long long)(t->end - t->begin), dst_bytes);
  if (!st->file_) {
    if (dst_bytes) memcpy(dst, st->data_ + t->begin, dst_bytes);
    return AN_OK;
  }
  FILE *f = st->file_;
  const uint64_t at = 8 + st->header_bytes + t->begin;
  if (at > (uint64_t)INT64_MAX || fseeko(f, (off_t)at, SEEK_SET) != 0)
    return AN_FAIL(AN_ERR_IO, "%s: cannot seek to tensor %s at byte %llu: %s", st->source, t->name,
                   (unsigned long long)at, strerror(errno));
  if (fread(dst, 1, dst_bytes, f) != dst_bytes) {
    if (ferror(f)) return AN_FAIL(AN_ERR_IO, "%s: reading tensor %s: %s", st->source, t->name, strerror(errno));
    return AN_FAIL(ERR_FORMAT, "%s: truncated file: tensor %s ends at byte %llu, past the end of the file",
                   st->source, t->name, (unsigned long long)(at + dst_bytes));
  }
  return AN_OK;
}

/* ---- writing ---- */

static int by_entry_name(const void *a, const void *b) {
  return strcmp((*(const an_st_entry *const *)a)->name, (*(const an_st_entry *const *)b)->name);
}

static cJSON *json_uint_raw(uint64_t v) {
  char buf[24];
  snprintf(buf, sizeof buf, "%llu", (unsigned long long)v);
  return cJSON_CreateRaw(buf); /* exact integers at any size (cJSON prints doubles with %g) */
}

/* obj[key] = [v...] as exact integers; 0 when out of memory. */
static int add_uint_array(cJSON *obj, const char *key, const uint64_t *v, int n) {
  cJSON *arr = cJSON_CreateArray();
  if (!arr) return 0;
  for (int i = 0; i < n; i++) {
    cJSON *x = json_uint_raw(v[i]);
    if (!x || !cJSON_AddItemToArray(arr, x)) {
      cJSON_Delete(x);
      cJSON_Delete(arr);
      return 0;
    }
  }
  if (!cJSON_AddItemToObject(obj, key, arr)) {
    cJSON_Delete(arr);
    return 0;
  }
  return 1;
}

/* The header, padded with spaces so 8 + *header_bytes is a multiple of 8, and each tensor's size. */
static an_status build_header(const an_st_entry *tensors, int n_tensors, const an_st_meta *meta, int n_meta,
                              char **header, size_t *header_bytes, uint64_t *sizes /* (n_tensors) */,
                              uint64_t *data_bytes) {
  *header = NULL;
  an_status status = AN_OK;
  cJSON *root = cJSON_CreateObject();
  const an_st_entry **order = malloc((n_tensors > 0 ? (size_t)n_tensors : 1) * sizeof *order);
  char *text = NULL;
  if (!root || !order) {
    status = AN_FAIL(AN_ERR_HOST_ALLOC, "safetensors header");
    goto cleanup;
  }
  if (n_tensors < 0 || n_meta < 0 || (n_meta > 0 && !meta) || (n_tensors > 0 && !tensors)) {
    status = AN_FAIL(AN_ERR_ARGUMENT, "safetensors: %d tensors, %d metadata entries", n_tensors, n_meta);
    goto cleanup;
  }
  if (n_meta > 0) {
    cJSON *m = cJSON_CreateObject();
    if (!m || !cJSON_AddItemToObject(root, "__metadata__", m)) {
      cJSON_Delete(m);
      status = AN_FAIL(AN_ERR_HOST_ALLOC, "safetensors metadata");
      goto cleanup;
    }
    for (int i = 0; i < n_meta; i++) {
      if (!meta[i].key || !meta[i].value) {
        status = AN_FAIL(AN_ERR_ARGUMENT, "safetensors: metadata entry %d has no key or value", i);
        goto cleanup;
      }
      if (cJSON_GetObjectItemCaseSensitive(m, meta[i].key)) {
        status = AN_FAIL(AN_ERR_ARGUMENT, "safetensors: metadata key '%s' given twice", meta[i].key);
        goto cleanup;
      }
      if (!cJSON_AddStringToObject(m, meta[i].key, meta[i].value)) {
        status = AN_FAIL(AN_ERR_HOST_ALLOC, "safetensors metadata");
        goto cleanup;
      }
    }
  }
  uint64_t offset = 0;
  for (int i = 0; i < n_tensors; i++) {
    const an_st_entry *e = &tensors[i];
    order[i] = e;
    if (!e->name || !e->name[0] || !strcmp(e->name, "__metadata__") || an_dtype_bytes(e->dtype) == 0 ||
        e->ndim < 0 || e->ndim > AN_ST_MAX_DIMS) {
      status = AN_FAIL(AN_ERR_ARGUMENT, "safetensors: tensor %d ('%s') has an invalid name, dtype or ndim", i,
                       e->name ? e->name : "(null)");
      goto cleanup;
    }
    uint64_t count = 1;
    for (int d = 0; d < e->ndim; d++) {
      const uint64_t dim = (uint64_t)e->shape[d];
      if (e->shape[d] < 0 || (dim && count > (UINT64_MAX >> 4) / dim)) {
        status = AN_FAIL(AN_ERR_ARGUMENT, "safetensors: tensor %s has a negative or oversized dimension", e->name);
        goto cleanup;
      }
      count *= dim;
    }
    sizes[i] = count * an_dtype_bytes(e->dtype);
    if (sizes[i] && !e->data) {
      status = AN_FAIL(AN_ERR_ARGUMENT, "safetensors: tensor %s has no data", e->name);
      goto cleanup;
    }
    uint64_t dims[AN_ST_MAX_DIMS];
    for (int d = 0; d < e->ndim; d++) dims[d] = (uint64_t)e->shape[d];
    const uint64_t range[2] = {offset, offset + sizes[i]};
    cJSON *t = cJSON_CreateObject();
    int ok = t && cJSON_AddItemToObject(root, e->name, t);
    if (!ok) cJSON_Delete(t);
    ok = ok && cJSON_AddStringToObject(t, "dtype", an_dtype_name(e->dtype)) &&
         add_uint_array(t, "shape", dims, e->ndim) && add_uint_array(t, "data_offsets", range, 2);
    if (!ok) {
      status = AN_FAIL(AN_ERR_HOST_ALLOC, "safetensors header entry %s", e->name);
      goto cleanup;
    }
    offset += sizes[i];
  }
  qsort(order, (size_t)n_tensors, sizeof *order, by_entry_name);
  for (int i = 1; i < n_tensors; i++)
    if (!strcmp(order[i - 1]->name, order[i]->name)) {
      status = AN_FAIL(AN_ERR_ARGUMENT, "safetensors: tensor %s given twice", order[i]->name);
      goto cleanup;
    }
  text = cJSON_PrintUnformatted(root);
  if (!text) {
    status = AN_FAIL(AN_ERR_HOST_ALLOC, "safetensors header text");
    goto cleanup;
  }
  const size_t len = strlen(text), padded = (len + 7) / 8 * 8; /* 8 + padded is 8-aligned too */
  char *out = malloc(padded + 1);
  if (!out) {
    status = AN_FAIL(AN_ERR_HOST_ALLOC, "safetensors header text");
    goto cleanup;
  }
  memcpy(out, text, len);
  memset(out + len, ' ', padded - len);
  out[padded] = '\0';
  *header = out, *header_bytes = padded, *data_bytes = offset;
cleanup:
  free(text);
  free(order);
  cJSON_Delete(root);
  return status;
}

an_status an_st_serialize(const an_st_entry *tensors, int n_tensors, const an_st_meta *meta, int n_meta,
                          uint8_t **out, size_t *out_bytes) {
  *out = NULL, *out_bytes = 0;
  uint64_t *sizes = malloc((n_tensors > 0 ? (size_t)n_tensors : 1) * sizeof *sizes);
  if (!sizes) return AN_FAIL(AN_ERR_HOST_ALLOC, "safetensors sizes");
  char *header = NULL;
  size_t header_bytes = 0;
  uint64_t data_bytes = 0;
  an_status status = build_header(tensors, n_tensors, meta, n_meta, &header, &header_bytes, sizes, &data_bytes);
  if (status == AN_OK) {
    const size_t total = 8 + header_bytes + (size_t)data_bytes;
    uint8_t *buf = malloc(total);
    if (!buf) {
      status = AN_FAIL(AN_ERR_HOST_ALLOC, "safetensors file of %zu bytes", total);
    } else {
      store_le64(buf, header_bytes);
      memcpy(buf + 8, header, header_bytes);
      size_t at = 8 + header_bytes;
      for (int i = 0; i < n_tensors; i++) {
        if (sizes[i]) memcpy(buf + at, tensors[i].data, (size_t)sizes[i]);
        at += (size_t)sizes[i];
      }
      *out = buf, *out_bytes = total;
    }
  }
  free(header);
  free(sizes);
  return status;
}

/* fsync of the directory holding path, so the rename itself survives a crash. */
static an_status sync_dir(const char *path) {
  char dir[4096];
  const char *slash = strrchr(path, '/');
  if (!slash) snprintf(dir, sizeof dir, ".");
  else if (slash == path) snprintf(dir, sizeof dir, "/");
  else snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
  const int fd = open(dir, O_RDONLY);
  if (fd < 0) return AN_FAIL(AN_ERR_IO, "%s: cannot open its directory %s: %s", path, dir, strerror(errno));
  const int rc = fsync(fd), err = errno;
  close(fd);
  if (rc != 0 && err != EINVAL && err != EBADF) /* some filesystems cannot sync a directory */
    return AN_FAIL(AN_ERR_IO, "%s: fsync of directory %s: %s", path, dir, strerror(err));
  return AN_OK;
}

an_status an_st_write(const char *path, const an_st_entry *tensors, int n_tensors, const an_st_meta *meta,
                      int n_meta) {
  uint64_t *sizes = malloc((n_tensors > 0 ? (size_t)n_tensors : 1) * sizeof *sizes);
  char *header = NULL, tmp[4096] = "";
  FILE *f = NULL;
  int fd = -1, created = 0;
  if (!sizes) return AN_FAIL(AN_ERR_HOST_ALLOC, "safetensors sizes");
  size_t header_bytes = 0;
  uint64_t data_bytes = 0;
  an_status status = build_header(tensors, n_tensors, meta, n_meta, &header, &header_bytes, sizes, &data_bytes);
  if (status != AN_OK) goto cleanup;
  if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp.XXXXXX", path) >= sizeof tmp) {
    status = AN_FAIL(AN_ERR_ARGUMENT, "%s: path too long", path);
    goto cleanup;
  }
  fd = mkstemp(tmp);
  if (fd < 0) {
    status = AN_FAIL(AN_ERR_IO, "%s: cannot create a temporary file %s: %s", path, tmp, strerror(errno));
    goto cleanup;
  }
  created = 1;
  if (fchmod(fd, 0644) != 0) {
    status = AN_FAIL(AN_ERR_IO, "%s: chmod: %s", tmp, strerror(errno));
    goto cleanup;
  }
  f = fdopen(fd, "wb");
  if (!f) {
    status = AN_FAIL(AN_ERR_IO, "%s: fdopen: %s", tmp, strerror(errno));
    goto cleanup;
  }
  fd = -1; /* owned by f */
  uint8_t len[8];
  store_le64(len, header_bytes);
  int ok = fwrite(len, 1, 8, f) == 8 && fwrite(header, 1, header_bytes, f) == header_bytes;
  for (int i = 0; ok && i < n_tensors; i++)
    ok = !sizes[i] || fwrite(tensors[i].data, 1, (size_t)sizes[i], f) == (size_t)sizes[i];
  if (!ok || fflush(f) != 0 || fsync(fileno(f)) != 0) {
    status = AN_FAIL(AN_ERR_IO, "%s: writing %llu bytes: %s", tmp,
                     (unsigned long long)(8 + header_bytes + data_bytes), strerror(errno));
    goto cleanup;
  }
  const int rc = fclose(f);
  f = NULL;
  if (rc != 0) {
    status = AN_FAIL(AN_ERR_IO, "%s: close: %s", tmp, strerror(errno));
    goto cleanup;
  }
  if (rename(tmp, path) != 0) {
    status = AN_FAIL(AN_ERR_IO, "%s: cannot rename %s over it: %s", path, tmp, strerror(errno));
    goto cleanup;
  }
  created = 0; /* renamed: nothing to remove */
  status = sync_dir(path);
cleanup:
  if (f) fclose(f);
  if (fd >= 0) close(fd);
  if (created) unlink(tmp); /* a failed write never replaces path */
  free(header);
  free(sizes);
  return status;
}
