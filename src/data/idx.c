/* IDX files (LeCun's MNIST format, Fashion-MNIST's too), gzip'd or not: an image file (magic 0x00000803,
 * N x H x W unsigned bytes) and a label file (0x00000801, N bytes), parsed from memory after zlib has
 * inflated them, every declared size checked against the bytes actually there. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "data/data_internal.h"
#include "runtime/grow.h"

#define IDX_MAX_BYTES (1u << 30) /* inflated size limit: 1 GiB (Fashion-MNIST's training set is 47 MB) */
#define IDX_MAX_SIDE 4096

static const char *const fashion_classes[10] = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                                "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};

/* The bytes as they are, or inflated when they start with gzip's magic. *owned is set when *data is
 * a new allocation. */
static an_status maybe_inflate(const uint8_t *bytes, size_t n, const char *name, const uint8_t **data, size_t *size,
                               uint8_t **owned) {
  *owned = NULL;
  if (n < 2 || bytes[0] != 0x1f || bytes[1] != 0x8b) {
    *data = bytes;
    *size = n;
    return AN_OK;
  }
  z_stream z;
  memset(&z, 0, sizeof z);
  if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK) return AN_FAIL(AN_ERR_HOST_ALLOC, "%s: cannot start zlib", name);
  an_status status = AN_OK;
  /* grown by doubling to one byte past the limit, to see a file go past it: a truncated file never gets
   * its claimed size */
  const size_t limit = (size_t)IDX_MAX_BYTES + 1;
  size_t cap = n * 2 + 4096, used = 0;
  uint8_t *buf = NULL;
  const uint8_t *in = bytes;
  size_t in_left = n;
  for (;;) {
    uint8_t *grown = an_grow_bytes(buf, used, &cap, limit);
    if (!grown) {
      status = buf && used == limit
                   ? AN_FAIL(AN_ERR_IO, "%s: inflates to more than %u bytes", name, IDX_MAX_BYTES)
                   : AN_FAIL(AN_ERR_HOST_ALLOC, "%s: out of host memory inflating (%zu bytes)", name, cap);
      break;
    }
    buf = grown;
    /* zlib counts in uInt: feed at most 1 GiB at a time */
    const uInt in_chunk = in_left > (1u << 30) ? (1u << 30) : (uInt)in_left;
    const uInt out_chunk = cap - used > (1u << 30) ? (1u << 30) : (uInt)(cap - used);
    z.next_in = (Bytef *)in;
    z.avail_in = in_chunk;
    z.next_out = buf + used;
    z.avail_out = out_chunk;
    int rc = inflate(&z, Z_NO_FLUSH);
    in += in_chunk - z.avail_in;
    in_left -= in_chunk - z.avail_in;
    used += out_chunk - z.avail_out;
    if (rc == Z_STREAM_END) break; /* the first gzip member is the file */
    if (rc == Z_BUF_ERROR && in_left == 0) {
      status = AN_FAIL(AN_ERR_IO, "%s: gzip data ends early (truncated file)", name);
      break;
    }
    if (rc != Z_OK && rc != Z_BUF_ERROR) {
      status = AN_FAIL(AN_ERR_IO, "%s: corrupt gzip data (%s)", name, z.msg ? z.msg : zError(rc));
      break;
    }
  }
  inflateEnd(&z);
  if (status != AN_OK) {
    free(buf);
    return status;
  }
  *owned = buf;
  *data = buf;
  *size = used;
  return AN_OK;
}

static uint32_t be32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static an_status read_whole(const char *path, uint8_t **bytes, size_t *n) {
  *bytes = NULL;
  *n = 0;
  FILE *f = fopen(path, "rb");
  if (!f) return AN_FAIL(AN_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
  an_status status = AN_OK;
  size_t cap = 1 << 20, used = 0; /* doubled up to the limit; full at the limit: the file is larger */
  uint8_t *buf = NULL;
  for (;;) {
    uint8_t *grown = an_grow_bytes(buf, used, &cap, IDX_MAX_BYTES);
    if (!grown) {
      status = buf && used == IDX_MAX_BYTES
                   ? AN_FAIL(AN_ERR_IO, "%s: larger than %u bytes", path, IDX_MAX_BYTES)
                   : AN_FAIL(AN_ERR_HOST_ALLOC, "%s: out of host memory (%zu bytes)", path, cap);
      break;
    }
    buf = grown;
    size_t got = fread(buf + used, 1, cap - used, f);
    used += got;
    if (got == 0) {
      if (ferror(f)) status = AN_FAIL(AN_ERR_IO, "%s: read failed: %s", path, strerror(errno));
      break;
    }
  }
  fclose(f);
  if (status != AN_OK) {
    free(buf);
    return status;
  }
  *bytes = buf;
  *n = used;
  return AN_OK;
}

an_status an_dataset_open_idx_memory(const void *images, size_t images_bytes, const void *labels,
                                     size_t labels_bytes, const char *name, an_dataset **out) {
  *out = NULL;
  if (!name) name = "idx";
  if (!images || !labels) return AN_FAIL(AN_ERR_ARGUMENT, "%s: no image or label bytes", name);
  const uint8_t *img = NULL, *lab = NULL;
  size_t img_n = 0, lab_n = 0;
  uint8_t *img_owned = NULL, *lab_owned = NULL;
  an_store *s = NULL;
  char what[512];
  snprintf(what, sizeof what, "%s images", name);
  an_status status = maybe_inflate(images, images_bytes, what, &img, &img_n, &img_owned);
  if (status != AN_OK) return status;
  snprintf(what, sizeof what, "%s labels", name);
  if ((status = maybe_inflate(labels, labels_bytes, what, &lab, &lab_n, &lab_owned)) != AN_OK) goto cleanup;

  if (img_n < 16 || be32(img) != 0x00000803) {
    status = AN_FAIL(AN_ERR_IO, "%s images: not an IDX image file (magic %08x, want 00000803: ubyte, 3 dims)", name,
                     img_n >= 4 ? be32(img) : 0);
    goto cleanup;
  }
  if (lab_n < 8 || be32(lab) != 0x00000801) {
    status = AN_FAIL(AN_ERR_IO, "%s labels: not an IDX label file (magic %08x, want 00000801: ubyte, 1 dim)", name,
                     lab_n >= 4 ? be32(lab) : 0);
    goto cleanup;
  }
  const uint32_t count = be32(img + 4), rows = be32(img + 8), cols = be32(img + 12), n_labels = be32(lab + 4);
  if (count == 0 || rows == 0 || cols == 0 || rows > IDX_MAX_SIDE || cols > IDX_MAX_SIDE || count > (1u << 30)) {
    status = AN_FAIL(AN_ERR_IO, "%s images: unusable dimensions %u x %u x %u", name, count, rows, cols);
    goto cleanup;
  }
  const uint64_t image_bytes = (uint64_t)rows * cols, want = 16 + (uint64_t)count * image_bytes;
  if (img_n != want) {
    status = AN_FAIL(AN_ERR_IO, "%s images: %zu bytes, but %u images of %ux%u need %llu (%s)", name, img_n, count,
                     rows, cols, (unsigned long long)want, img_n < want ? "truncated" : "trailing bytes");
    goto cleanup;
  }
  if (n_labels != count || lab_n != 8 + (uint64_t)count) {
    status = AN_FAIL(AN_ERR_IO, "%s labels: %u labels in %zu bytes for %u images", name, n_labels, lab_n, count);
    goto cleanup;
  }
  int max_label = 0;
  for (uint32_t i = 0; i < count; i++)
    if (lab[8 + i] > max_label) max_label = lab[8 + i];

  if (!(s = an_store_new(STORE_MEMORY, name))) {
    status = AN_ERR_HOST_ALLOC;
    goto cleanup;
  }
  s->n = (int)count;
  s->width = (int)cols;
  s->height = (int)rows;
  s->channels = 1;
  s->image_bytes = (size_t)image_bytes;
  s->labels = malloc(sizeof(int) * count);         /* (N) */
  s->pixels = malloc((size_t)image_bytes * count); /* (N, H, W, 1) */
  if (!s->labels || !s->pixels) {
    status = AN_FAIL(AN_ERR_HOST_ALLOC, "%s: out of host memory for %u images", name, count);
    goto cleanup;
  }
  memcpy(s->pixels, img + 16, (size_t)image_bytes * count);
  for (uint32_t i = 0; i < count; i++) s->labels[i] = lab[8 + i];
  {
    char digits[256][4];
    const char *names[256];
    for (int c = 0; c <= max_label; c++) {
      snprintf(digits[c], sizeof digits[c], "%d", c);
      names[c] = digits[c];
    }
    if ((status = an_store_set_classes(s, max_label + 1, names)) != AN_OK) goto cleanup;
  }
  status = an_dataset_from_store(s, NULL, s->n, out);
cleanup:
  an_store_release(s); /* the dataset holds its own reference */
  free(img_owned);
  free(lab_owned);
  return status;
}

an_status an_dataset_open_idx(const char *images_path, const char *labels_path, an_dataset **out) {
  *out = NULL;
  uint8_t *img = NULL, *lab = NULL;
  size_t img_n = 0, lab_n = 0;
  an_status status = read_whole(images_path, &img, &img_n);
  if (status == AN_OK) status = read_whole(labels_path, &lab, &lab_n);
  if (status == AN_OK) status = an_dataset_open_idx_memory(img, img_n, lab, lab_n, images_path, out);
  free(img);
  free(lab);
  return status;
}

/* dir/base.gz, else dir/base; NULL when neither exists. */
static int find_file(const char *dir, const char *base, char *path, size_t size) {
  snprintf(path, size, "%s/%s.gz", dir, base);
  FILE *f = fopen(path, "rb");
  if (!f) {
    snprintf(path, size, "%s/%s", dir, base);
    f = fopen(path, "rb");
  }
  if (!f) return 0;
  fclose(f);
  return 1;
}

an_status an_dataset_open_fashion_mnist(const char *dir, int train, an_dataset **out) {
  *out = NULL;
  if (!dir) dir = getenv("ALEXNET_FASHION_MNIST");
  if (!dir || !*dir) dir = "/usr/share/datasets/fashion-mnist";
  const char *split = train ? "train" : "t10k";
  char images[4096], labels[4096], base[64];
  snprintf(base, sizeof base, "%s-images-idx3-ubyte", split);
  if (!find_file(dir, base, images, sizeof images))
    return AN_FAIL(AN_ERR_IO,
                   "%s/%s(.gz): not found; Fashion-MNIST comes with Debian's dataset-fashion-mnist "
                   "(apt-get install dataset-fashion-mnist) or set ALEXNET_FASHION_MNIST to its directory",
                   dir, base);
  snprintf(base, sizeof base, "%s-labels-idx1-ubyte", split);
  if (!find_file(dir, base, labels, sizeof labels)) return AN_FAIL(AN_ERR_IO, "%s/%s(.gz): not found", dir, base);
  an_dataset *ds = NULL;
  an_status status = an_dataset_open_idx(images, labels, &ds);
  if (status != AN_OK) return status;
  if (ds->store->classes > 10) {
    an_dataset_destroy(ds);
    return AN_FAIL(AN_ERR_IO, "%s: labels up to %d, Fashion-MNIST has 10 classes", labels, ds->store->classes - 1);
  }
  /* Fashion-MNIST's own names, and always 10 classes even if a subset lacks the last ones */
  an_store *s = ds->store;
  for (int c = 0; c < s->classes; c++) free(s->class_names[c]);
  free(s->class_names);
  s->class_names = NULL;
  s->classes = 0;
  free(s->source);
  s->source = an_data_strdup(train ? "fashion-mnist train" : "fashion-mnist test");
  int *counts = realloc(ds->class_counts, sizeof(int) * 10);
  if (counts) {
    ds->class_counts = counts;
    memset(counts, 0, sizeof(int) * 10);
    for (int i = 0; i < ds->n; i++) counts[s->labels[i]]++;
  }
  if (!s->source || !counts || (status = an_store_set_classes(s, 10, fashion_classes)) != AN_OK) {
    an_dataset_destroy(ds);
    return status != AN_OK ? status : AN_FAIL(AN_ERR_HOST_ALLOC, "out of host memory naming Fashion-MNIST");
  }
  *out = ds;
  return AN_OK;
}
