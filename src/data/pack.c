/* Pack shards: a dataset's images resized once to side x side RGB and stored as raw uint8 with their
 * labels and class names, so training reads bytes instead of decoding JPEG every epoch. The layout is
 * in data.h; every header field is checked against the file's size before it is trusted. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data/data_internal.h"

#define PACK_MAX_SIDE 4096
#define PACK_MAX_CLASSES 100000
#define PACK_MAX_NAMES_BYTES (16u << 20)
#define PACK_BLOCK 64 /* images decoded in parallel before they are written in order */

static void put32(uint8_t *p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static void put64(uint8_t *p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static uint32_t get32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t get64(const uint8_t *p) { return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32; }

static an_status read_exact(int fd, void *buf, size_t n, uint64_t at, const char *path, const char *what) {
  size_t done = 0;
  while (done < n) {
    ssize_t got = pread(fd, (uint8_t *)buf + done, n - done, (off_t)(at + done));
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0)
      return AN_FAIL(AN_ERR_IO, "%s: cannot read the %s: %s", path, what,
                     got < 0 ? strerror(errno) : "file ends early");
    done += (size_t)got;
  }
  return AN_OK;
}

an_status an_dataset_open_pack(const char *path, an_dataset **out) {
  *out = NULL;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return AN_FAIL(AN_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
  an_status status = AN_OK;
  an_store *s = NULL;
  char *names = NULL;
  uint8_t *raw_labels = NULL;
  const char **name_at = NULL;
  struct stat st;
  uint8_t h[PACK_HEADER_BYTES];
  if (fstat(fd, &st) != 0) {
    status = AN_FAIL(AN_ERR_IO, "%s: cannot stat: %s", path, strerror(errno));
    goto cleanup;
  }
  const uint64_t file_bytes = (uint64_t)st.st_size;
  if (file_bytes < PACK_HEADER_BYTES) {
    status = AN_FAIL(AN_ERR_IO, "%s: %llu bytes, too short for a pack header", path, (unsigned long long)file_bytes);
    goto cleanup;
  }
  if ((status = read_exact(fd, h, sizeof h, 0, path, "header")) != AN_OK) goto cleanup;
  if (memcmp(h, PACK_MAGIC, 8) != 0) {
    status = AN_FAIL(AN_ERR_IO, "%s: not a pack file (no %s magic) nor a directory", path, PACK_MAGIC);
    goto cleanup;
  }
  const uint32_t version = get32(h + 8), count = get32(h + 12), width = get32(h + 16), height = get32(h + 20),
                 channels = get32(h + 24), classes = get32(h + 28), names_bytes = get32(h + 32);
  const uint64_t images_offset = get64(h + 40), labels_offset = get64(h + 48);
  if (version != PACK_VERSION) {
    status = AN_FAIL(AN_ERR_IO, "%s: pack version %u, this build reads %u", path, version, PACK_VERSION);
    goto cleanup;
  }
  if (count == 0 || count > (1u << 30) || width == 0 || height == 0 || width > PACK_MAX_SIDE ||
      height > PACK_MAX_SIDE || (channels != 1 && channels != 3) || classes == 0 || classes > PACK_MAX_CLASSES ||
      names_bytes > PACK_MAX_NAMES_BYTES) {
    status = AN_FAIL(AN_ERR_IO, "%s: invalid header (%u images of %ux%ux%u, %u classes, %u name bytes)", path, count,
                     width, height, channels, classes, names_bytes);
    goto cleanup;
  }
  const uint64_t image_bytes = (uint64_t)width * height * channels;
  if (images_offset < PACK_HEADER_BYTES + (uint64_t)names_bytes || images_offset > file_bytes ||
      (file_bytes - images_offset) / image_bytes < count || labels_offset != images_offset + count * image_bytes ||
      file_bytes != labels_offset + 4ull * count) {
    status = AN_FAIL(AN_ERR_IO,
                     "%s: %llu bytes do not match the header (%u images of %llu bytes at %llu, labels at "
                     "%llu): truncated or not written by alexnet pack",
                     path, (unsigned long long)file_bytes, count, (unsigned long long)image_bytes,
                     (unsigned long long)images_offset, (unsigned long long)labels_offset);
    goto cleanup;
  }
  names = malloc((size_t)names_bytes + 1);
  name_at = malloc(sizeof *name_at * classes);
  raw_labels = malloc(4ull * count); /* (N) u32 */
  if (!names || !name_at || !raw_labels) {
    status = AN_FAIL(AN_ERR_HOST_ALLOC, "%s: out of host memory for %u labels", path, count);
    goto cleanup;
  }
  if ((status = read_exact(fd, names, names_bytes, PACK_HEADER_BYTES, path, "class names")) != AN_OK) goto cleanup;
  names[names_bytes] = '\0';
  {
    uint32_t at = 0;
    for (uint32_t c = 0; c < classes; c++) {
      const char *nul = at < names_bytes ? memchr(names + at, '\0', names_bytes - at) : NULL;
      if (!nul || nul == names + at) {
        status = AN_FAIL(AN_ERR_IO, "%s: class name %u is missing or empty", path, c);
        goto cleanup;
      }
      name_at[c] = names + at;
      at = (uint32_t)(nul - names) + 1;
    }
  }
  if ((status = read_exact(fd, raw_labels, 4ull * count, labels_offset, path, "labels")) != AN_OK) goto cleanup;
  if (!(s = an_store_new(STORE_PACK, path))) {
    status = AN_ERR_HOST_ALLOC;
    goto cleanup;
  }
  s->labels = malloc(sizeof(int) * count);
  if (!s->labels) {
    status = AN_FAIL(AN_ERR_HOST_ALLOC, "%s: out of host memory for %u labels", path, count);
    goto cleanup;
  }
  for (uint32_t i = 0; i < count; i++) {
    const uint32_t l = get32(raw_labels + 4ull * i);
    if (l >= classes) {
      status = AN_FAIL(AN_ERR_IO, "%s: label %u of image %u is not below the %u classes", path, l, i, classes);
      goto cleanup;
    }
    s->labels[i] = (int)l;
  }
  if ((status = an_store_set_classes(s, (int)classes, name_at)) != AN_OK) goto cleanup;
  s->n = (int)count;
  s->width = (int)width;
  s->height = (int)height;
  s->channels = (int)channels;
  s->image_bytes = (size_t)image_bytes;
  s->images_offset = images_offset;
  s->fd = fd;
  fd = -1;
  status = an_dataset_from_store(s, NULL, s->n, out);
cleanup:
  an_store_release(s);
  if (fd >= 0) close(fd);
  free(names);
  free(name_at);
  free(raw_labels);
  return status;
}

/* ---- writing ---- */

typedef struct pack_job {
  const an_dataset *ds;
  int side, first, n;   /* this block: samples [first, first + n) */
  uint8_t *pixels;      /* (PACK_BLOCK, side, side, 3) */
  an_status *status;    /* (PACK_BLOCK) */
  char (*message)[512]; /* (PACK_BLOCK) why a sample failed */
  resize_cache *cache;  /* (threads) one per worker */
} pack_job;

static void pack_one(void *ctx, int task, int worker) {
  pack_job *job = ctx;
  an_image img, dst = {0};
  an_status st = an_dataset_read(job->ds, job->first + task, &img);
  if (st == AN_OK) {
    dst.pixels = job->pixels + (size_t)task * job->side * job->side * 3;
    st = an_resize_square_cached(&img, job->side, &dst, &job->cache[worker]);
    an_image_free(&img);
  }
  job->status[task] = st;
  if (st != AN_OK) snprintf(job->message[task], sizeof job->message[task], "%s", an_last_error());
}

/* Decodes and resizes the dataset in blocks on the workers and appends each readable image's pixels to
 * f; labels (written) receives their labels. An unreadable image is a warning and skipped. */
static an_status pack_images(pack_job *job, int threads, FILE *f, const char *tmp, uint32_t *labels, an_warn_fn warn,
                             void *warn_ctx, int *written, int *skipped) {
  const an_dataset *ds = job->ds;
  const size_t image_bytes = (size_t)job->side * job->side * 3;
  *written = *skipped = 0;
  for (int first = 0; first < ds->n; first += PACK_BLOCK) {
    job->first = first;
    job->n = ds->n - first < PACK_BLOCK ? ds->n - first : PACK_BLOCK;
    AN_TRY(an_data_parallel_for(job->n, threads, pack_one, job));
    for (int j = 0; j < job->n; j++) {
      if (job->status[j] == AN_ERR_HOST_ALLOC) return AN_FAIL(AN_ERR_HOST_ALLOC, "%s", job->message[j]);
      if (job->status[j] != AN_OK) {
        an_data_warn(warn, warn_ctx, "skipped: %s", job->message[j]);
        (*skipped)++;
        continue;
      }
      if (fwrite(job->pixels + (size_t)j * image_bytes, 1, image_bytes, f) != image_bytes)
        return AN_FAIL(AN_ERR_IO, "%s: write failed: %s", tmp, strerror(errno));
      labels[(*written)++] = (uint32_t)an_dataset_label(ds, first + j);
    }
  }
  return AN_OK;
}

/* The labels after the images, then the header (now that the count is known) over the placeholder. */
static an_status pack_finish(FILE *f, const char *tmp, const uint32_t *labels /* (written) */, int written, int side,
                             int classes, size_t names_bytes, uint64_t images_offset) {
  const size_t image_bytes = (size_t)side * side * 3;
  for (int i = 0; i < written; i++) {
    uint8_t le[4];
    put32(le, labels[i]);
    if (fwrite(le, 1, 4, f) != 4) return AN_FAIL(AN_ERR_IO, "%s: write failed: %s", tmp, strerror(errno));
  }
  uint8_t header[PACK_HEADER_BYTES] = {0};
  memcpy(header, PACK_MAGIC, 8);
  put32(header + 8, PACK_VERSION);
  put32(header + 12, (uint32_t)written);
  put32(header + 16, (uint32_t)side);
  put32(header + 20, (uint32_t)side);
  put32(header + 24, 3);
  put32(header + 28, (uint32_t)classes);
  put32(header + 32, (uint32_t)names_bytes);
  put64(header + 40, images_offset);
  put64(header + 48, images_offset + (uint64_t)written * image_bytes);
  if (fseek(f, 0, SEEK_SET) != 0 || fwrite(header, 1, sizeof header, f) != sizeof header || fflush(f) != 0 ||
      fsync(fileno(f)) != 0)
    return AN_FAIL(AN_ERR_IO, "%s: write failed: %s", tmp, strerror(errno));
  return AN_OK;
}

an_status an_pack_write(const an_dataset *ds, const char *path, int side, int threads, an_warn_fn warn,
                        void *warn_ctx, an_pack_report *report) {
  if (report) report->written = report->skipped = 0;
  if (!ds || !path || side < 1 || side > PACK_MAX_SIDE)
    return AN_FAIL(AN_ERR_ARGUMENT, "pack: invalid dataset, path or side %d (1 … %d)", side, PACK_MAX_SIDE);
  const size_t image_bytes = (size_t)side * side * 3;
  char tmp[4096];
  if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp", path) >= sizeof tmp)
    return AN_FAIL(AN_ERR_ARGUMENT, "%s: path too long", path);
  FILE *f = NULL;
  an_status status = AN_OK;
  uint8_t *names = NULL;
  uint32_t *labels = malloc(sizeof(uint32_t) * (size_t)(ds->n ? ds->n : 1)); /* (written) */
  pack_job job = {.ds = ds, .side = side};
  job.pixels = malloc(image_bytes * PACK_BLOCK);
  job.status = malloc(sizeof *job.status * PACK_BLOCK);
  job.message = malloc(sizeof *job.message * PACK_BLOCK);
  if (threads < 1) threads = 1;
  if (threads > 256) threads = 256;
  job.cache = calloc((size_t)threads, sizeof *job.cache);
  if (!labels || !job.pixels || !job.status || !job.message || !job.cache) {
    status = AN_FAIL(AN_ERR_HOST_ALLOC, "pack: out of host memory");
    goto cleanup;
  }
  const int classes = an_dataset_classes(ds);
  size_t names_bytes = 0;
  for (int c = 0; c < classes; c++) names_bytes += strlen(an_dataset_class_name(ds, c)) + 1;
  if (names_bytes > PACK_MAX_NAMES_BYTES) {
    status = AN_FAIL(AN_ERR_ARGUMENT, "pack: class names take %zu bytes, over %u", names_bytes,
                     PACK_MAX_NAMES_BYTES);
    goto cleanup;
  }
  const uint64_t images_offset = (PACK_HEADER_BYTES + names_bytes + 63) / 64 * 64;
  names = calloc(1, (size_t)(images_offset - PACK_HEADER_BYTES)); /* names, then zero padding */
  if (!names) {
    status = AN_FAIL(AN_ERR_HOST_ALLOC, "pack: out of host memory");
    goto cleanup;
  }
  for (size_t c = 0, at = 0; c < (size_t)classes; c++) {
    const char *nm = an_dataset_class_name(ds, (int)c);
    memcpy(names + at, nm, strlen(nm) + 1);
    at += strlen(nm) + 1;
  }
  if (!(f = fopen(tmp, "wb"))) {
    status = AN_FAIL(AN_ERR_IO, "%s: cannot create: %s", tmp, strerror(errno));
    goto cleanup;
  }
  uint8_t header[PACK_HEADER_BYTES] = {0}; /* written again at the end, when the count is known */
  if (fwrite(header, 1, sizeof header, f) != sizeof header ||
      fwrite(names, 1, (size_t)(images_offset - PACK_HEADER_BYTES), f) != images_offset - PACK_HEADER_BYTES) {
    status = AN_FAIL(AN_ERR_IO, "%s: write failed: %s", tmp, strerror(errno));
    goto cleanup;
  }
  int written = 0, skipped = 0;
  AN_TRY_GOTO(pack_images(&job, threads, f, tmp, labels, warn, warn_ctx, &written, &skipped));
  if (report) {
    report->written = written;
    report->skipped = skipped;
  }
  if (written == 0) {
    status = AN_FAIL(AN_ERR_IO, "%s: no readable image among %d", an_dataset_source(ds), ds->n);
    goto cleanup;
  }
  AN_TRY_GOTO(pack_finish(f, tmp, labels, written, side, classes, names_bytes, images_offset));
  if (fclose(f) != 0) {
    f = NULL;
    status = AN_FAIL(AN_ERR_IO, "%s: write failed: %s", tmp, strerror(errno));
    goto cleanup;
  }
  f = NULL;
  if (rename(tmp, path) != 0) status = AN_FAIL(AN_ERR_IO, "%s: cannot rename to %s: %s", tmp, path, strerror(errno));
cleanup:
  if (f) fclose(f);
  if (status != AN_OK) remove(tmp);
  free(labels);
  free(names);
  free(job.pixels);
  free(job.status);
  free(job.message);
  if (job.cache)
    for (int t = 0; t < threads; t++) an_resize_cache_free(&job.cache[t]);
  free(job.cache);
  return status;
}
