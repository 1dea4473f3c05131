/* The threaded batch loader. Batches are numbered globally (epoch · batches_per_epoch + step) and live
 * in a ring of prefetch + 1 slots: while the caller holds batch g, workers fill g+1 … g+prefetch. Each
 * worker takes a few sample positions of the oldest unfinished batch at a time, decodes and augments
 * them straight into the slot, and the last one to finish a batch marks it ready.
 *
 * Reproducibility: a batch's sample indices come from the epoch's permutation (seeded by seed and
 * epoch) and each sample's augmentation from an_sample_key(seed, epoch, index); a replacement for an
 * unreadable image is the next readable one in dataset order. Nothing depends on which thread did
 * the work, so batches are identical for any thread count. */
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "data/data_internal.h"

#define LOADER_CHUNK 4 /* sample positions a worker takes at a time */
#define LOADER_MAX_THREADS 256

typedef struct slot {
  an_batch batch;
  long long global; /* batch held or being filled; -1: none yet */
  int remaining;    /* samples still being prepared */
  int ready;
} slot;

typedef struct worker_arg {
  an_loader *ld;
  data_scratch scratch;
} worker_arg;

struct an_loader {
  const an_dataset *ds;
  an_loader_config cfg;
  int per_epoch, crops, n_slots;
  size_t sample_floats; /* crops · 3 · input · input */
  long long end;        /* global index past the last batch */
  long long released;   /* the next batch an_loader_next returns */
  int holding;          /* the caller holds batch `released` */
  long long dist_batch; /* the batch workers are taking positions from */
  int dist_pos;         /* its next position */
  int *perm;            /* (n) training order of perm_epoch */
  long long perm_epoch;
  slot *slots;  /* (n_slots) */
  uint8_t *bad; /* (n) known unreadable */
  int skipped;
  pthread_mutex_t mu;
  pthread_cond_t work, ready;
  int stop;
  an_status fatal;
  char fatal_message[1024];
  int n_threads;      /* started */
  pthread_t *threads; /* (cfg.threads) */
  worker_arg *args;   /* (cfg.threads) */
};

/* Under mu: assigns batch g to its slot (sample indices, padding). */
static void open_batch(an_loader *ld, long long g) {
  slot *sl = &ld->slots[g % ld->n_slots];
  an_batch *b = &sl->batch;
  const int B = ld->cfg.batch, n = ld->ds->n, P = b->rows / ld->crops, s0 = ld->cfg.slice_first;
  const long long epoch = g / ld->per_epoch;
  const int step = (int)(g % ld->per_epoch);
  if (ld->cfg.train && ld->perm_epoch != epoch) {
    for (int i = 0; i < n; i++) ld->perm[i] = i;
    an_rng rng = an_data_rng(an_mix64(ld->cfg.seed ^ 0x5EED5u) ^ (uint64_t)epoch);
    an_data_shuffle(ld->perm, n, &rng);
    ld->perm_epoch = epoch;
  }
  const long long first = (long long)step * B + s0; /* the slice's first position (s0 0: the batch's) */
  const int whole = (long long)step * B + B <= n ? B : (int)(n - (long long)step * B);
  b->epoch = (int)epoch;
  b->step = step;
  b->samples = whole - s0 < 0 ? 0 : whole - s0 < P ? whole - s0 : P;
  for (int j = 0; j < P; j++)
    b->index[j] = j < b->samples ? (ld->cfg.train ? ld->perm[first + j] : (int)(first + j)) : -1;
  if (b->samples < P) { /* evaluation's last batch: zero padding */
    memset(b->images + (size_t)b->samples * ld->sample_floats, 0,
           sizeof(float) * (size_t)(P - b->samples) * ld->sample_floats);
    for (int r = b->samples * ld->crops; r < b->rows; r++) b->labels[r] = 0;
  }
  sl->global = g;
  sl->ready = 0;
  sl->remaining = b->samples;
}

static void set_fatal(an_loader *ld, an_status status, const char *message) { /* under mu */
  if (ld->fatal == AN_OK) {
    ld->fatal = status;
    snprintf(ld->fatal_message, sizeof ld->fatal_message, "%s", message);
  }
  pthread_cond_broadcast(&ld->ready);
  pthread_cond_broadcast(&ld->work);
}

/* Prepares position j of batch b (an unreadable image replaced or blanked); 0 on a fatal failure. */
static int prepare_sample(an_loader *ld, an_batch *b, int j, data_scratch *scratch) {
  const int n = ld->ds->n, crops = ld->crops;
  float *rows = b->images + (size_t)j * ld->sample_floats; /* (crops, 3, I, I) */
  int idx = b->index[j];
  for (int tries = 0;; tries++) {
    an_image img;
    an_status st = an_dataset_read(ld->ds, idx, &img);
    if (st == AN_OK) {
      st = an_preprocess_into(&img, &ld->cfg.aug, &ld->cfg.stats, ld->cfg.train,
                              an_sample_key(ld->cfg.seed, (uint64_t)b->epoch, (uint64_t)idx), rows, scratch);
      an_image_free(&img);
    }
    if (st == AN_OK) break;
    pthread_mutex_lock(&ld->mu);
    if (st == AN_ERR_HOST_ALLOC || st == AN_ERR_ARGUMENT) { /* the machine or the settings, not the file */
      set_fatal(ld, st, an_last_error());
      pthread_mutex_unlock(&ld->mu);
      return 0;
    }
    if (!ld->bad[idx]) {
      ld->bad[idx] = 1;
      ld->skipped++;
      an_data_warn(ld->cfg.warn, ld->cfg.warn_ctx, "skipped: %s", an_last_error());
    }
    if (!ld->cfg.train) { /* evaluation: blank rows, index -1, the caller leaves them out */
      pthread_mutex_unlock(&ld->mu);
      memset(rows, 0, sizeof(float) * ld->sample_floats);
      b->index[j] = -1;
      for (int r = 0; r < crops; r++) b->labels[j * crops + r] = 0;
      return 1;
    }
    int next = -1; /* training: the next image in dataset order not yet known to be unreadable */
    for (int k = 1; k < n && next < 0; k++)
      if (!ld->bad[(idx + k) % n]) next = (idx + k) % n;
    if (next < 0 || tries >= n) {
      char message[512];
      snprintf(message, sizeof message, "%s: none of its %d images can be read", an_dataset_source(ld->ds), n);
      set_fatal(ld, AN_ERR_IO, message);
      pthread_mutex_unlock(&ld->mu);
      return 0;
    }
    pthread_mutex_unlock(&ld->mu);
    idx = next;
  }
  b->index[j] = idx;
  const int label = an_dataset_label(ld->ds, idx);
  for (int r = 0; r < crops; r++) b->labels[j * crops + r] = label;
  return 1;
}

static void *worker_main(void *arg) {
  worker_arg *w = arg;
  an_loader *ld = w->ld;
  pthread_mutex_lock(&ld->mu);
  for (;;) {
    while (!ld->stop && ld->fatal == AN_OK &&
           !(ld->dist_batch < ld->end && ld->dist_batch < ld->released + ld->n_slots))
      pthread_cond_wait(&ld->work, &ld->mu);
    if (ld->stop || ld->fatal != AN_OK) break;
    const long long g = ld->dist_batch;
    slot *sl = &ld->slots[g % ld->n_slots];
    if (ld->dist_pos == 0) open_batch(ld, g);
    const int first = ld->dist_pos;
    const int count = sl->batch.samples - first < LOADER_CHUNK ? sl->batch.samples - first : LOADER_CHUNK;
    ld->dist_pos += count;
    if (ld->dist_pos >= sl->batch.samples) {
      ld->dist_batch++;
      ld->dist_pos = 0;
    }
    pthread_mutex_unlock(&ld->mu);
    int ok = 1;
    for (int j = first; j < first + count && ok; j++) ok = prepare_sample(ld, &sl->batch, j, &w->scratch);
    pthread_mutex_lock(&ld->mu);
    if (!ok) break;
    sl->remaining -= count;
    if (sl->remaining == 0) {
      sl->ready = 1;
      pthread_cond_broadcast(&ld->ready);
    }
  }
  pthread_mutex_unlock(&ld->mu);
  return NULL;
}

static an_status check_config(const an_dataset *ds, const an_loader_config *c) {
  if (!ds || !c) return AN_FAIL(AN_ERR_ARGUMENT, "loader: no dataset or configuration");
  if (ds->n == 0) return AN_FAIL(AN_ERR_ARGUMENT, "%s: the dataset is empty", an_dataset_source(ds));
  if (c->batch < 1 || c->threads < 1 || c->threads > LOADER_MAX_THREADS || c->prefetch < 1 || c->prefetch > 64 ||
      c->epochs < 0 || c->start_epoch < 0 || c->start_step < 0 || c->slice_first < 0 || c->slice_count < 0 ||
      c->slice_first + c->slice_count > c->batch)
    return AN_FAIL(AN_ERR_ARGUMENT,
                   "loader: batch %d, threads %d (1…%d), prefetch %d (1…64), epochs %d, start %d:%d, slice %d+%d",
                   c->batch, c->threads, LOADER_MAX_THREADS, c->prefetch, c->epochs, c->start_epoch, c->start_step,
                   c->slice_first, c->slice_count);
  an_status status = an_augment_check(&c->aug);
  if (status != AN_OK) return status;
  if (c->train && ds->n < c->batch)
    return AN_FAIL(AN_ERR_ARGUMENT, "%s: %d images, fewer than one training batch of %d", an_dataset_source(ds),
                   ds->n, c->batch);
  const an_data_stats *s = &c->stats;
  const int needs_stats = c->aug.norm != AN_NORM_NONE || (c->train && c->aug.pca_std > 0);
  if (needs_stats && s->mean[0] == 0 && s->mean[1] == 0 && s->mean[2] == 0 && s->std[0] == 0 && s->std[1] == 0 &&
      s->std[2] == 0 && s->eigval[0] == 0)
    return AN_FAIL(AN_ERR_ARGUMENT, "loader: normalisation or PCA lighting is on but the statistics are empty "
                                    "(an_data_stats_compute on the training set, or an_data_stats_imagenet)");
  return AN_OK;
}

void an_loader_destroy(an_loader *ld) {
  if (!ld) return;
  pthread_mutex_lock(&ld->mu);
  ld->stop = 1;
  pthread_cond_broadcast(&ld->work);
  pthread_mutex_unlock(&ld->mu);
  for (int t = 0; t < ld->n_threads; t++) pthread_join(ld->threads[t], NULL);
  if (ld->args)
    for (int t = 0; t < ld->cfg.threads; t++) {
      free(ld->args[t].scratch.base);
      an_resize_cache_free(&ld->args[t].scratch.resize);
    }
  if (ld->slots)
    for (int s = 0; s < ld->n_slots; s++) {
      free(ld->slots[s].batch.images);
      free(ld->slots[s].batch.labels);
      free(ld->slots[s].batch.index);
    }
  pthread_cond_destroy(&ld->work);
  pthread_cond_destroy(&ld->ready);
  pthread_mutex_destroy(&ld->mu);
  free(ld->slots);
  free(ld->perm);
  free(ld->bad);
  free(ld->threads);
  free(ld->args);
  free(ld);
}

an_status an_loader_create(const an_dataset *ds, const an_loader_config *cfg, an_loader **out) {
  *out = NULL;
  an_status status = check_config(ds, cfg);
  if (status != AN_OK) return status;
  an_loader *ld = calloc(1, sizeof *ld);
  if (!ld) return AN_FAIL(AN_ERR_HOST_ALLOC, "out of host memory for a loader");
  if (pthread_mutex_init(&ld->mu, NULL) != 0) {
    free(ld);
    return AN_FAIL(AN_ERR_HOST_ALLOC, "loader: cannot create a mutex");
  }
  pthread_cond_init(&ld->work, NULL);
  pthread_cond_init(&ld->ready, NULL);
  ld->ds = ds;
  ld->cfg = *cfg;
  const int B = cfg->batch, n = ds->n, I = cfg->aug.input, S = cfg->aug.resize;
  const int P = cfg->slice_count ? cfg->slice_count : B; /* samples an an_batch holds */
  ld->crops = an_augment_crops(&cfg->aug, cfg->train);
  ld->per_epoch = cfg->train ? n / B : (n + B - 1) / B;
  ld->n_slots = cfg->prefetch + 1;
  ld->sample_floats = (size_t)ld->crops * 3 * I * I;
  const long long start = (long long)cfg->start_epoch * ld->per_epoch + cfg->start_step;
  ld->end = cfg->epochs ? (long long)cfg->epochs * ld->per_epoch : LLONG_MAX;
  ld->released = ld->dist_batch = start;
  ld->perm_epoch = -1;
  ld->perm = malloc(sizeof(int) * (size_t)n);
  ld->bad = calloc((size_t)n, 1);
  ld->slots = calloc((size_t)ld->n_slots, sizeof *ld->slots);
  ld->threads = calloc((size_t)cfg->threads, sizeof *ld->threads);
  ld->args = calloc((size_t)cfg->threads, sizeof *ld->args);
  if (!ld->perm || !ld->bad || !ld->slots || !ld->threads || !ld->args) {
    status = AN_FAIL(AN_ERR_HOST_ALLOC, "out of host memory for a loader over %d images", n);
    goto cleanup;
  }
  for (int s = 0; s < ld->n_slots; s++) {
    an_batch *b = &ld->slots[s].batch;
    ld->slots[s].global = -1;
    b->crops = ld->crops;
    b->rows = P * ld->crops;
    b->input = I;
    b->images = malloc(sizeof(float) * ld->sample_floats * (size_t)P); /* (rows, 3, I, I) */
    b->labels = calloc((size_t)b->rows, sizeof(int));                  /* (rows) */
    b->index = malloc(sizeof(int) * (size_t)P);                        /* (P) */
    if (!b->images || !b->labels || !b->index) {
      status = AN_FAIL(AN_ERR_HOST_ALLOC, "out of host memory for a batch of %d x 3 x %d x %d floats", b->rows, I,
                       I);
      goto cleanup;
    }
  }
  for (int t = 0; t < cfg->threads; t++) {
    ld->args[t].ld = ld;
    ld->args[t].scratch.base = malloc((size_t)S * S * 3); /* (S, S, 3) */
    if (!ld->args[t].scratch.base) {
      status = AN_FAIL(AN_ERR_HOST_ALLOC, "out of host memory for a %dx%d image", S, S);
      goto cleanup;
    }
  }
  for (int t = 0; t < cfg->threads; t++) {
    if (pthread_create(&ld->threads[t], NULL, worker_main, &ld->args[t]) != 0) {
      status = AN_FAIL(AN_ERR_HOST_ALLOC, "loader: cannot start worker thread %d of %d", t + 1, cfg->threads);
      goto cleanup;
    }
    ld->n_threads++;
  }
  *out = ld;
  return AN_OK;
cleanup:
  an_loader_destroy(ld);
  return status;
}

an_status an_loader_next(an_loader *ld, const an_batch **out) {
  *out = NULL;
  if (!ld) return AN_FAIL(AN_ERR_ARGUMENT, "no loader");
  pthread_mutex_lock(&ld->mu);
  if (ld->holding) { /* the caller is done with the previous batch: its slot can be refilled */
    ld->released++;
    ld->holding = 0;
    pthread_cond_broadcast(&ld->work);
  }
  if (ld->released >= ld->end) {
    pthread_mutex_unlock(&ld->mu);
    return AN_OK;
  }
  slot *sl = &ld->slots[ld->released % ld->n_slots];
  while (ld->fatal == AN_OK && !(sl->global == ld->released && sl->ready)) pthread_cond_wait(&ld->ready, &ld->mu);
  if (ld->fatal != AN_OK) {
    char message[sizeof ld->fatal_message];
    memcpy(message, ld->fatal_message, sizeof message);
    const an_status st = ld->fatal;
    pthread_mutex_unlock(&ld->mu);
    return AN_FAIL(st, "loader: %s", message);
  }
  ld->holding = 1;
  *out = &sl->batch;
  pthread_mutex_unlock(&ld->mu);
  return AN_OK;
}

int an_loader_batches_per_epoch(const an_loader *ld) { return ld ? ld->per_epoch : 0; }

int an_loader_skipped(const an_loader *ld) {
  if (!ld) return 0;
  an_loader *mut = (an_loader *)ld; /* the mutex, not the loader's state, changes */
  pthread_mutex_lock(&mut->mu);
  const int n = ld->skipped;
  pthread_mutex_unlock(&mut->mu);
  return n;
}

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

an_status an_loader_measure(const an_dataset *ds, const an_loader_config *cfg, int batches, double *images_per_s) {
  *images_per_s = 0;
  if (batches < 1) return AN_FAIL(AN_ERR_ARGUMENT, "measure: %d batches", batches);
  an_loader_config c = *cfg;
  c.epochs = 0;
  const double t0 = now_s();
  an_loader *ld = NULL;
  an_status status = an_loader_create(ds, &c, &ld);
  if (status != AN_OK) return status;
  long long images = 0;
  for (int k = 0; k < batches; k++) {
    const an_batch *b;
    if ((status = an_loader_next(ld, &b)) != AN_OK) break;
    images += b->samples;
  }
  const double dt = now_s() - t0;
  an_loader_destroy(ld);
  if (status == AN_OK) *images_per_s = images / (dt > 0 ? dt : 1e-9);
  return status;
}
