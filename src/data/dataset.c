/* The dataset object: shared storage (pixels in memory, one file per sample, or a pack file), views
 * over it (splits), reading one sample on any thread, the spec-string opener, and export to a
 * folder-per-class tree. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "data/data_internal.h"

char *an_data_strdup(const char *s) {
  size_t n = strlen(s) + 1;
  char *d = malloc(n);
  if (!d) {
    AN_FAIL(AN_ERR_HOST_ALLOC, "out of host memory for a %zu-byte string", n);
    return NULL;
  }
  memcpy(d, s, n);
  return d;
}

an_store *an_store_new(store_kind kind, const char *source) {
  an_store *s = calloc(1, sizeof *s);
  if (!s) {
    AN_FAIL(AN_ERR_HOST_ALLOC, "out of host memory for a dataset");
    return NULL;
  }
  atomic_init(&s->refs, 1);
  s->kind = kind;
  s->fd = -1;
  s->source = an_data_strdup(source);
  if (!s->source) {
    free(s);
    return NULL;
  }
  return s;
}

void an_store_release(an_store *s) {
  if (!s || atomic_fetch_sub(&s->refs, 1) != 1) return;
  free(s->pixels);
  if (s->paths)
    for (int i = 0; i < s->n; i++) free(s->paths[i]);
  free(s->paths);
  if (s->fd >= 0) close(s->fd);
  free(s->labels);
  if (s->class_names)
    for (int c = 0; c < s->classes; c++) free(s->class_names[c]);
  free(s->class_names);
  free(s->source);
  free(s);
}

an_status an_store_set_classes(an_store *s, int classes, const char *const *names) {
  s->class_names = calloc((size_t)classes, sizeof *s->class_names);
  if (!s->class_names) return AN_FAIL(AN_ERR_HOST_ALLOC, "out of host memory for %d class names", classes);
  s->classes = classes;
  for (int c = 0; c < classes; c++)
    if (!(s->class_names[c] = an_data_strdup(names[c]))) return AN_ERR_HOST_ALLOC;
  return AN_OK;
}

an_status an_dataset_from_store(an_store *s, int *map, int n, an_dataset **out) {
  *out = NULL;
  an_dataset *ds = calloc(1, sizeof *ds);
  int *counts = calloc((size_t)(s->classes > 0 ? s->classes : 1), sizeof *counts);
  if (!ds || !counts) {
    free(ds);
    free(counts);
    free(map);
    return AN_FAIL(AN_ERR_HOST_ALLOC, "out of host memory for a dataset view");
  }
  ds->store = s;
  ds->n = map ? n : s->n;
  ds->map = map;
  ds->class_counts = counts;
  for (int i = 0; i < ds->n; i++) counts[s->labels[an_dataset_store_index(ds, i)]]++;
  atomic_fetch_add(&s->refs, 1);
  *out = ds;
  return AN_OK;
}

void an_dataset_destroy(an_dataset *ds) {
  if (!ds) return;
  an_store_release(ds->store);
  free(ds->map);
  free(ds->class_counts);
  free(ds);
}

int an_dataset_count(const an_dataset *ds) { return ds ? ds->n : 0; }
int an_dataset_classes(const an_dataset *ds) { return ds ? ds->store->classes : 0; }

const char *an_dataset_class_name(const an_dataset *ds, int c) {
  return ds && c >= 0 && c < ds->store->classes ? ds->store->class_names[c] : NULL;
}

int an_dataset_label(const an_dataset *ds, int i) {
  return ds && i >= 0 && i < ds->n ? ds->store->labels[an_dataset_store_index(ds, i)] : -1;
}

int an_dataset_class_count(const an_dataset *ds, int c) {
  return ds && c >= 0 && c < ds->store->classes ? ds->class_counts[c] : 0;
}

const char *an_dataset_source(const an_dataset *ds) { return ds ? ds->store->source : ""; }

int an_dataset_fixed_size(const an_dataset *ds, int *width, int *height, int *channels) {
  if (!ds || ds->store->kind == STORE_FILES) return 0;
  *width = ds->store->width;
  *height = ds->store->height;
  *channels = ds->store->channels;
  return 1;
}

void an_dataset_sample_name(const an_dataset *ds, int i, char *buf, size_t size) {
  if (!ds || i < 0 || i >= ds->n) {
    snprintf(buf, size, "sample %d (out of range)", i);
    return;
  }
  const int k = an_dataset_store_index(ds, i);
  if (ds->store->kind == STORE_FILES) snprintf(buf, size, "%s", ds->store->paths[k]);
  else snprintf(buf, size, "%s #%d", ds->store->source, k);
}

an_status an_dataset_read(const an_dataset *ds, int i, an_image *out) {
  memset(out, 0, sizeof *out);
  if (!ds || i < 0 || i >= ds->n)
    return AN_FAIL(AN_ERR_ARGUMENT, "sample %d is outside the dataset (%d samples)", i, ds ? ds->n : 0);
  const an_store *s = ds->store;
  const int k = an_dataset_store_index(ds, i);
  if (s->kind == STORE_FILES) return an_image_load(s->paths[k], out);
  uint8_t *pixels = malloc(s->image_bytes); /* (H, W, C) */
  if (!pixels) return AN_FAIL(AN_ERR_HOST_ALLOC, "out of host memory for a %zu-byte image", s->image_bytes);
  if (s->kind == STORE_MEMORY) {
    memcpy(pixels, s->pixels + (size_t)k * s->image_bytes, s->image_bytes);
  } else { /* pread: no shared file position, so any number of threads read at once */
    size_t done = 0;
    const off_t at = (off_t)(s->images_offset + (uint64_t)k * s->image_bytes);
    while (done < s->image_bytes) {
      ssize_t got = pread(s->fd, pixels + done, s->image_bytes - done, at + (off_t)done);
      if (got < 0 && errno == EINTR) continue;
      if (got <= 0) {
        free(pixels);
        return AN_FAIL(AN_ERR_IO, "%s #%d: cannot read the image: %s", s->source, k,
                       got < 0 ? strerror(errno) : "file ends early");
      }
      done += (size_t)got;
    }
  }
  out->width = s->width;
  out->height = s->height;
  out->channels = s->channels;
  out->pixels = pixels;
  return AN_OK;
}

an_status an_dataset_split(const an_dataset *ds, double val_fraction, uint64_t seed, an_dataset **train,
                           an_dataset **val) {
  *train = *val = NULL;
  if (!ds || !(val_fraction > 0.0 && val_fraction < 1.0))
    return AN_FAIL(AN_ERR_ARGUMENT, "validation fraction %g is not in (0, 1)", val_fraction);
  const int n = ds->n, classes = ds->store->classes;
  int *train_map = malloc(sizeof(int) * (size_t)(n ? n : 1)), *val_map = malloc(sizeof(int) * (size_t)(n ? n : 1));
  int *members = malloc(sizeof(int) * (size_t)(n ? n : 1)); /* (n) one class's samples at a time */
  uint8_t *to_val = calloc((size_t)(n ? n : 1), 1);         /* (n) */
  if (!train_map || !val_map || !members || !to_val) {
    free(train_map);
    free(val_map);
    free(members);
    free(to_val);
    return AN_FAIL(AN_ERR_HOST_ALLOC, "out of host memory splitting %d samples", n);
  }
  for (int c = 0; c < classes; c++) {
    int m = 0;
    for (int i = 0; i < n; i++)
      if (ds->store->labels[an_dataset_store_index(ds, i)] == c) members[m++] = i;
    an_rng rng = an_data_rng(seed ^ an_mix64((uint64_t)c + 1));
    an_data_shuffle(members, m, &rng);
    int take = (int)(val_fraction * m + 0.5);
    if (m >= 2 && take < 1) take = 1;
    if (take > m - 1) take = m > 0 ? m - 1 : 0; /* training keeps at least one image of every class */
    for (int j = 0; j < take; j++) to_val[members[j]] = 1;
  }
  int n_train = 0, n_val = 0; /* each part in dataset order: a split selects, the loader shuffles */
  for (int i = 0; i < n; i++) {
    if (to_val[i]) val_map[n_val++] = an_dataset_store_index(ds, i);
    else train_map[n_train++] = an_dataset_store_index(ds, i);
  }
  free(members);
  free(to_val);
  an_status status = an_dataset_from_store(ds->store, train_map, n_train, train);
  if (status != AN_OK) {
    free(val_map);
    return status;
  }
  status = an_dataset_from_store(ds->store, val_map, n_val, val);
  if (status != AN_OK) {
    an_dataset_destroy(*train);
    *train = NULL;
  }
  return status;
}

an_status an_dataset_check_classes(const an_dataset *train, const an_dataset *val) {
  const int a = an_dataset_classes(train), b = an_dataset_classes(val);
  for (int c = 0; c < a && c < b; c++)
    if (strcmp(train->store->class_names[c], val->store->class_names[c]))
      return AN_FAIL(AN_ERR_ARGUMENT, "%s: class %d is '%s', but in %s it is '%s'", val->store->source, c,
                     val->store->class_names[c], train->store->source, train->store->class_names[c]);
  if (a != b)
    return AN_FAIL(AN_ERR_ARGUMENT, "%s has %d classes, %s has %d: they must be the same folders",
                   train->store->source, a, val->store->source, b);
  return AN_OK;
}

static an_status make_dir(const char *path) {
  if (mkdir(path, 0777) == 0 || errno == EEXIST) return AN_OK;
  return AN_FAIL(AN_ERR_IO, "%s: cannot create the directory: %s", path, strerror(errno));
}

an_status an_dataset_export_folder(const an_dataset *ds, const char *root, const char *ext) {
  if (!ds || !root || !ext) return AN_FAIL(AN_ERR_ARGUMENT, "export: no dataset, root or extension");
  an_status status = make_dir(root);
  if (status != AN_OK) return status;
  const int classes = ds->store->classes;
  char path[4096];
  for (int c = 0; c < classes; c++) {
    char name[256];
    snprintf(name, sizeof name, "%s", ds->store->class_names[c]);
    for (char *p = name; *p; p++)
      if (*p == '/') *p = '_';
    snprintf(path, sizeof path, "%s/%s", root, name);
    if ((status = make_dir(path)) != AN_OK) return status;
  }
  for (int i = 0; i < ds->n; i++) {
    char name[256];
    snprintf(name, sizeof name, "%s", ds->store->class_names[an_dataset_label(ds, i)]);
    for (char *p = name; *p; p++)
      if (*p == '/') *p = '_';
    snprintf(path, sizeof path, "%s/%s/%06d.%s", root, name, i, ext);
    an_image img;
    if ((status = an_dataset_read(ds, i, &img)) != AN_OK) return status;
    status = an_image_write(path, &img);
    an_image_free(&img);
    if (status != AN_OK) return status;
  }
  return AN_OK;
}

an_status an_dataset_open(const char *spec, an_dataset **out) {
  *out = NULL;
  if (!spec || !*spec) return AN_FAIL(AN_ERR_ARGUMENT, "no dataset given");
  if (!strcmp(spec, "fashion-mnist") || !strcmp(spec, "fashion-mnist:train"))
    return an_dataset_open_fashion_mnist(NULL, 1, out);
  if (!strcmp(spec, "fashion-mnist:test")) return an_dataset_open_fashion_mnist(NULL, 0, out);
  struct stat st;
  if (stat(spec, &st) != 0)
    return AN_FAIL(AN_ERR_IO,
                   "%s: %s (a dataset is a folder-per-class directory, a pack file, "
                   "fashion-mnist or fashion-mnist:test)",
                   spec, strerror(errno));
  if (S_ISDIR(st.st_mode)) return an_dataset_open_folder(spec, out);
  return an_dataset_open_pack(spec, out);
}
