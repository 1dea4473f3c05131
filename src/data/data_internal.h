/* Inside src/data: a dataset's shared storage, the seeded RNG every random choice comes from, a small
 * parallel-for, warnings, and the preprocessing entry the loader calls with its own scratch memory. */
#ifndef ALEXNET_DATA_INTERNAL_H
#define ALEXNET_DATA_INTERNAL_H

#include <stdatomic.h>
#include <stdint.h>

#include "alexnet/data.h"
#include "runtime/check.h"
#include "runtime/rng.h"

typedef enum store_kind {
  STORE_MEMORY, /* decoded pixels in memory: IDX, synthetic */
  STORE_FILES,  /* one image file per sample: folder-per-class */
  STORE_PACK    /* fixed-size uint8 images in a pack file, read with pread */
} store_kind;

/* What datasets point into; split views share it, the last one frees it. */
typedef struct an_store {
  atomic_int refs;
  store_kind kind;
  int n;                       /* samples */
  int width, height, channels; /* memory, pack: every sample's size */
  size_t image_bytes;          /* memory, pack: H·W·C */
  uint8_t *pixels;             /* memory: (n, H, W, C) */
  char **paths;                /* files: (n) */
  int fd;                      /* pack: -1 when closed */
  uint64_t images_offset;      /* pack: first image's byte offset */
  int *labels;                 /* (n) in [0, classes) */
  int classes;
  char **class_names; /* (classes) */
  char *source;       /* for messages: a path, "fashion-mnist train", … */
} an_store;

struct an_dataset {
  an_store *store;
  int n;
  int *map;          /* (n) store index of each sample; NULL: the identity */
  int *class_counts; /* (classes) */
};

/* An empty store with one reference and fd -1; NULL when out of memory (error recorded). */
an_store *an_store_new(store_kind kind, const char *source);
void an_store_release(an_store *s);
/* Sets store->classes and class_names from names (copied). */
an_status an_store_set_classes(an_store *s, int classes, const char *const *names);
/* A dataset over s (map: n indices, taken over; NULL and n = s->n: all of it). Adds a reference to s;
 * frees map on failure. */
an_status an_dataset_from_store(an_store *s, int *map, int n, an_dataset **out);

static inline int an_dataset_store_index(const an_dataset *ds, int i) { return ds->map ? ds->map[i] : i; }

char *an_data_strdup(const char *s); /* NULL when out of memory, error recorded */

/* ---- RNG: runtime/rng.h's splitmix64 ---- */
/* A generator for one stream of data's random choices, its state spread from the seed. */
static inline an_rng an_data_rng(uint64_t seed) {
  an_rng r = {an_mix64(seed ^ 0x243F6A8885A308D3ull)};
  return r;
}
void an_data_shuffle(int *v /* (n) */, int n, an_rng *r); /* Fisher-Yates */

/* ---- threads ---- */
/* Runs fn(ctx, task, worker) for every task in [0, n_tasks) on `threads` threads (the caller's among
 * them), tasks handed out in order. AN_ERR_HOST_ALLOC if no thread could be started. */
an_status an_data_parallel_for(int n_tasks, int threads, void (*fn)(void *ctx, int task, int worker), void *ctx);

/* ---- warnings ---- */
/* Formats one line and hands it to warn (NULL: stderr as "alexnet: warning: …"). Not serialised. */
void an_data_warn(an_warn_fn warn, void *ctx, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* ---- resizing and preprocessing with caller-owned scratch ---- */
/* Resampling weights of one axis for one geometry. */
typedef struct axis_weights {
  int in, out, offset;
  double scale;
  int *first;    /* (out) first source index */
  int *taps;     /* (out) source pixels with a weight */
  float *weight; /* (out, max_taps) normalised */
  int max_taps;
} axis_weights;

/* What one thread keeps between images: the last geometry's weights and the row buffer. */
typedef struct resize_cache {
  axis_weights x, y;
  float *rows; /* (rows_floats) */
  size_t rows_floats;
} resize_cache;

an_status an_resize_square_cached(const an_image *src, int side, an_image *dst, resize_cache *cache);
void an_resize_cache_free(resize_cache *cache);

typedef struct data_scratch {
  uint8_t *base; /* (resize, resize, 3) */
  resize_cache resize;
} data_scratch;

an_status an_preprocess_into(const an_image *img, const an_augment *aug, const an_data_stats *stats, int train,
                             uint64_t key, float *out /* (crops, 3, input, input) */, data_scratch *scratch);

/* ---- pack ---- */
#define PACK_MAGIC "ANPACK01"
#define PACK_HEADER_BYTES 64
#define PACK_VERSION 1u

#endif
