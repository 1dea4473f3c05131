/* Preprocessing and augmentation of one sample (resize + centre crop to the base image, crops, flip,
 * PCA lighting, normalisation, HWC uint8 -> CHW float), the training set's statistics they use, and the
 * 3x3 symmetric eigen-decomposition behind the PCA lighting. */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/data_internal.h"

/* ---- eigen-decomposition: cyclic Jacobi ---- */

void an_eigen_sym3(const double a_in[3][3], double eigval[3], double eigvec[3][3]) {
  double a[3][3], v[3][3] = {{1, 0, 0}, {0, 1, 0}, {0, 0, 1}}; /* v's columns become the eigenvectors */
  for (int i = 0; i < 3; i++)
    for (int j = 0; j < 3; j++) a[i][j] = 0.5 * (a_in[i][j] + a_in[j][i]);
  for (int sweep = 0; sweep < 64; sweep++) {
    const double off = a[0][1] * a[0][1] + a[0][2] * a[0][2] + a[1][2] * a[1][2];
    const double diag = a[0][0] * a[0][0] + a[1][1] * a[1][1] + a[2][2] * a[2][2];
    if (off <= 1e-30 * diag || off == 0) break;
    for (int p = 0; p < 2; p++)
      for (int q = p + 1; q < 3; q++) {
        if (a[p][q] == 0) continue;
        /* the rotation that zeroes a[p][q] (Numerical Recipes' stable form) */
        const double theta = (a[q][q] - a[p][p]) / (2 * a[p][q]);
        const double t = (theta >= 0 ? 1 : -1) / (fabs(theta) + sqrt(theta * theta + 1));
        const double c = 1 / sqrt(t * t + 1), s = t * c;
        for (int k = 0; k < 3; k++) { /* A <- A·J */
          const double akp = a[k][p], akq = a[k][q];
          a[k][p] = c * akp - s * akq;
          a[k][q] = s * akp + c * akq;
        }
        for (int k = 0; k < 3; k++) { /* A <- Jᵀ·A */
          const double apk = a[p][k], aqk = a[q][k];
          a[p][k] = c * apk - s * aqk;
          a[q][k] = s * apk + c * aqk;
        }
        for (int k = 0; k < 3; k++) { /* V <- V·J */
          const double vkp = v[k][p], vkq = v[k][q];
          v[k][p] = c * vkp - s * vkq;
          v[k][q] = s * vkp + c * vkq;
        }
      }
  }
  int order[3] = {0, 1, 2};
  for (int i = 0; i < 3; i++) /* descending eigenvalues */
    for (int j = i + 1; j < 3; j++)
      if (a[order[j]][order[j]] > a[order[i]][order[i]]) {
        int t = order[i];
        order[i] = order[j];
        order[j] = t;
      }
  for (int k = 0; k < 3; k++) {
    const int col = order[k];
    eigval[k] = a[col][col];
    double norm = 0;
    int big = 0;
    for (int i = 0; i < 3; i++) {
      norm += v[i][col] * v[i][col];
      if (fabs(v[i][col]) > fabs(v[big][col])) big = i;
    }
    const double sign = v[big][col] < 0 ? -1.0 : 1.0;
    norm = sqrt(norm);
    for (int i = 0; i < 3; i++) eigvec[k][i] = sign * v[i][col] / norm;
  }
}

/* ---- statistics ---- */

typedef struct stats_job {
  const an_dataset *ds;
  const int *pick; /* (n_pick) sample indices */
  int n_pick;
  pthread_mutex_t mu;
  /* exact integer sums, so the result does not depend on the order threads add them in */
  uint64_t pixels, sum[3], prod[3][3];
  int images, skipped;
  an_status fatal;
  char fatal_message[512];
  an_warn_fn warn;
  void *warn_ctx;
} stats_job;

#define STATS_CHUNK 16

static int cmp_int(const void *a, const void *b) {
  const int x = *(const int *)a, y = *(const int *)b;
  return (x > y) - (x < y);
}

static void stats_chunk(void *ctx, int task, int worker) {
  (void)worker;
  stats_job *job = ctx;
  for (int j = task * STATS_CHUNK; j < job->n_pick && j < (task + 1) * STATS_CHUNK; j++) {
    an_image img;
    an_status st = an_dataset_read(job->ds, job->pick[j], &img);
    if (st != AN_OK) {
      pthread_mutex_lock(&job->mu);
      if (st == AN_ERR_HOST_ALLOC) {
        job->fatal = st;
        snprintf(job->fatal_message, sizeof job->fatal_message, "%s", an_last_error());
      } else {
        job->skipped++;
        an_data_warn(job->warn, job->warn_ctx, "skipped: %s", an_last_error());
      }
      pthread_mutex_unlock(&job->mu);
      continue;
    }
    uint64_t sum[3] = {0}, prod[3][3] = {{0}};
    const size_t n = (size_t)img.width * img.height;
    for (size_t i = 0; i < n; i++) {
      unsigned p[3];
      for (int c = 0; c < 3; c++) p[c] = img.pixels[i * img.channels + (img.channels == 3 ? c : 0)];
      for (int c = 0; c < 3; c++) {
        sum[c] += p[c];
        for (int d = c; d < 3; d++) prod[c][d] += p[c] * p[d];
      }
    }
    an_image_free(&img);
    pthread_mutex_lock(&job->mu);
    job->pixels += n;
    job->images++;
    for (int c = 0; c < 3; c++) {
      job->sum[c] += sum[c];
      for (int d = c; d < 3; d++) job->prod[c][d] += prod[c][d];
    }
    pthread_mutex_unlock(&job->mu);
  }
}

an_status an_data_stats_compute(const an_dataset *ds, int max_images, uint64_t seed, int threads, an_warn_fn warn,
                                void *warn_ctx, an_data_stats *out) {
  memset(out, 0, sizeof *out);
  if (!ds || ds->n == 0) return AN_FAIL(AN_ERR_ARGUMENT, "statistics of an empty dataset");
  int *pick = malloc(sizeof(int) * (size_t)ds->n); /* (n) */
  if (!pick) return AN_FAIL(AN_ERR_HOST_ALLOC, "out of host memory for %d indices", ds->n);
  for (int i = 0; i < ds->n; i++) pick[i] = i;
  int n_pick = ds->n;
  if (max_images > 0 && max_images < ds->n) { /* a seeded subset, then in dataset order for locality */
    an_rng rng = an_data_rng(seed ^ 0x57A75u);
    an_data_shuffle(pick, ds->n, &rng);
    n_pick = max_images;
    qsort(pick, (size_t)n_pick, sizeof(int), cmp_int);
  }
  stats_job job = {.ds = ds, .pick = pick, .n_pick = n_pick, .warn = warn, .warn_ctx = warn_ctx};
  if (pthread_mutex_init(&job.mu, NULL) != 0) {
    free(pick);
    return AN_FAIL(AN_ERR_HOST_ALLOC, "cannot create a mutex");
  }
  an_status status = an_data_parallel_for((n_pick + STATS_CHUNK - 1) / STATS_CHUNK, threads, stats_chunk, &job);
  pthread_mutex_destroy(&job.mu);
  free(pick);
  if (status != AN_OK) return status;
  if (job.fatal != AN_OK) return AN_FAIL(job.fatal, "%s", job.fatal_message);
  if (job.images == 0)
    return AN_FAIL(AN_ERR_IO, "%s: none of %d images could be read for the statistics", an_dataset_source(ds),
                   n_pick);
  const double n = (double)job.pixels;
  double mean[3], cov[3][3], eigval[3], eigvec[3][3];
  for (int c = 0; c < 3; c++) mean[c] = job.sum[c] / n / 255.0;
  for (int c = 0; c < 3; c++)
    for (int d = c; d < 3; d++) {
      cov[c][d] = cov[d][c] = job.prod[c][d] / n / (255.0 * 255.0) - mean[c] * mean[d];
    }
  an_eigen_sym3((const double(*)[3])cov, eigval, eigvec);
  for (int c = 0; c < 3; c++) {
    out->mean[c] = (float)mean[c];
    out->std[c] = (float)sqrt(cov[c][c] > 0 ? cov[c][c] : 0);
    out->eigval[c] = (float)(eigval[c] > 0 ? eigval[c] : 0);
    for (int d = 0; d < 3; d++) out->eigvec[c][d] = (float)eigvec[c][d];
  }
  out->images = job.images;
  return AN_OK;
}

an_data_stats an_data_stats_imagenet(void) {
  an_data_stats s = {
      .mean = {0.485f, 0.456f, 0.406f},
      .std = {0.229f, 0.224f, 0.225f},
      .eigval = {0.2175f, 0.0188f, 0.0045f},
      .eigvec = {{0.5675f, 0.5808f, 0.5836f}, {0.7192f, -0.0045f, -0.6948f}, {-0.4009f, 0.8140f, -0.4203f}},
      .images = 0};
  return s;
}

/* ---- configuration ---- */

an_augment an_augment_default(int input) {
  an_augment a = {.resize = (int)lround(input * 256.0 / 224.0),
                  .input = input,
                  .random_crop = 1,
                  .flip = 1,
                  .pca_std = 0.1f,
                  .ten_crop = 0,
                  .norm = AN_NORM_MEAN_STD,
                  .scale = 1.0f};
  return a;
}

an_augment an_augment_paper(void) {
  an_augment a = {.resize = 256,
                  .input = 224,
                  .random_crop = 1,
                  .flip = 1,
                  .pca_std = 0.1f,
                  .ten_crop = 0,
                  .norm = AN_NORM_MEAN,
                  .scale = 1.0f};
  return a;
}

an_augment an_augment_none(int input) {
  an_augment a = {.resize = input, .input = input, .norm = AN_NORM_NONE, .scale = 1.0f};
  return a;
}

an_status an_augment_check(const an_augment *a) {
  if (!a) return AN_FAIL(AN_ERR_ARGUMENT, "no augmentation settings");
  if (a->input < 1 || a->resize < a->input || a->resize > 4096)
    return AN_FAIL(AN_ERR_ARGUMENT, "resize %d and input %d: need 1 <= input <= resize <= 4096", a->resize,
                   a->input);
  if (!(a->pca_std >= 0 && a->pca_std < 10))
    return AN_FAIL(AN_ERR_ARGUMENT, "PCA lighting std %g is not in [0, 10)", a->pca_std);
  if (!(isfinite(a->scale) && a->scale != 0)) return AN_FAIL(AN_ERR_ARGUMENT, "scale %g is not usable", a->scale);
  if (a->norm != AN_NORM_NONE && a->norm != AN_NORM_MEAN && a->norm != AN_NORM_MEAN_STD)
    return AN_FAIL(AN_ERR_ARGUMENT, "unknown normalisation %d", (int)a->norm);
  return AN_OK;
}

const char *an_norm_name(an_norm norm) {
  return norm == AN_NORM_MEAN_STD ? "mean_std" : norm == AN_NORM_MEAN ? "mean" : "none";
}

an_status an_norm_parse(const char *name, an_norm *out) {
  if (name && (!strcmp(name, "mean_std") || !strcmp(name, "mean-std"))) *out = AN_NORM_MEAN_STD;
  else if (name && !strcmp(name, "mean")) *out = AN_NORM_MEAN;
  else if (name && !strcmp(name, "none")) *out = AN_NORM_NONE;
  else return AN_FAIL(AN_ERR_ARGUMENT, "normalisation '%.40s': not mean_std, mean or none", name ? name : "");
  return AN_OK;
}

void an_augment_describe(const an_augment *a, char *buf, size_t n) {
  snprintf(buf, n, "resize %d, crop %s, flip %d, pca %.7g, norm %s", a->resize, a->random_crop ? "random" : "centre",
           a->flip ? 1 : 0, a->pca_std, an_norm_name(a->norm));
}

an_status an_augment_from_meta(int input, int file_input, const char *resize, const char *norm, an_augment *out) {
  an_augment a = an_augment_default(input);
  if (resize && resize[0] && (file_input == input || file_input < 1)) {
    char *end;
    const long r = strtol(resize, &end, 10);
    if (*end || r < input || r > 4096)
      return AN_FAIL(AN_ERR_ARGUMENT, "resize '%.40s': not a side from the input size %d to 4096", resize, input);
    a.resize = (int)r;
  }
  if (norm && norm[0] && an_norm_parse(norm, &a.norm) != AN_OK) return AN_ERR_ARGUMENT;
  *out = a;
  return AN_OK;
}

int an_augment_crops(const an_augment *aug, int train) { return !train && aug->ten_crop ? 10 : 1; }

void an_ten_crop_origin(int base, int input, int k, int *x, int *y) {
  const int far = base - input, mid = (base - input) / 2;
  switch (k % 5) {
    case 0: *x = 0, *y = 0; break;
    case 1: *x = far, *y = 0; break;
    case 2: *x = 0, *y = far; break;
    case 3: *x = far, *y = far; break;
    default: *x = mid, *y = mid; break;
  }
}

/* ---- one sample ---- */

/* out (3, I, I) = (base[y0 + y][x0 + x'] / 255 + light - mean) / std · scale, x' mirrored when flip.
 * One pass over the base pixels, writing the three planes. */
static void write_crop(const uint8_t *base /* (S, S, 3) */, int S, int I, int x0, int y0, int flip,
                       const float gain[3], const float offset[3], float *out /* (3, I, I) */) {
  const float g0 = gain[0], g1 = gain[1], g2 = gain[2], o0 = offset[0], o1 = offset[1], o2 = offset[2];
  const size_t plane = (size_t)I * I;
  for (int y = 0; y < I; y++) {
    const uint8_t *row = base + ((size_t)(y0 + y) * S + x0) * 3;
    float *restrict d0 = out + (size_t)y * I, *restrict d1 = d0 + plane, *restrict d2 = d1 + plane;
    if (flip)
      for (int x = 0; x < I; x++) {
        const uint8_t *p = row + (size_t)(I - 1 - x) * 3;
        d0[x] = p[0] * g0 + o0, d1[x] = p[1] * g1 + o1, d2[x] = p[2] * g2 + o2;
      }
    else
      for (int x = 0; x < I; x++) {
        const uint8_t *p = row + (size_t)x * 3;
        d0[x] = p[0] * g0 + o0, d1[x] = p[1] * g1 + o1, d2[x] = p[2] * g2 + o2;
      }
  }
}

an_status an_preprocess_into(const an_image *img, const an_augment *aug, const an_data_stats *stats, int train,
                             uint64_t key, float *out, data_scratch *scratch) {
  const int S = aug->resize, I = aug->input;
  uint8_t *base = scratch->base;
  an_image b = {.pixels = base};
  an_status status = an_resize_square_cached(img, S, &b, &scratch->resize);
  if (status != AN_OK) return status;
  const int lighting = train && aug->pca_std > 0;
  if ((aug->norm != AN_NORM_NONE || lighting) && !stats)
    return AN_FAIL(AN_ERR_ARGUMENT, "normalisation or PCA lighting needs the training set's statistics");
  an_rng rng = an_data_rng(key);
  int x0 = (S - I) / 2, y0 = (S - I) / 2, flip = 0;
  float light[3] = {0, 0, 0};
  if (train) { /* draws in a fixed order: crop, flip, lighting */
    if (aug->random_crop) {
      x0 = an_rng_below(&rng, S - I + 1);
      y0 = an_rng_below(&rng, S - I + 1);
    }
    if (aug->flip) flip = an_rng_uniform(&rng) < 0.5;
    if (lighting)
      for (int k = 0; k < 3; k++) {
        const double alpha = aug->pca_std * an_rng_normal(&rng);
        for (int c = 0; c < 3; c++) light[c] += (float)(stats->eigvec[k][c] * alpha * stats->eigval[k]);
      }
  }
  float gain[3], offset[3];
  for (int c = 0; c < 3; c++) {
    const float mean = aug->norm == AN_NORM_NONE ? 0.0f : stats->mean[c];
    float std = aug->norm == AN_NORM_MEAN_STD ? stats->std[c] : 1.0f;
    if (!(std > 1e-6f)) std = 1.0f; /* a constant channel: subtract the mean only */
    gain[c] = aug->scale / (255.0f * std);
    offset[c] = aug->scale * (light[c] - mean) / std;
  }
  const size_t plane = (size_t)3 * I * I;
  if (an_augment_crops(aug, train) == 10) {
    for (int k = 0; k < 10; k++) {
      int x, y;
      an_ten_crop_origin(S, I, k, &x, &y);
      write_crop(base, S, I, x, y, k >= 5, gain, offset, out + k * plane);
    }
  } else {
    write_crop(base, S, I, x0, y0, flip, gain, offset, out);
  }
  return AN_OK;
}

an_status an_preprocess(const an_image *img, const an_augment *aug, const an_data_stats *stats, int train,
                        uint64_t key, float *out) {
  an_status status = an_augment_check(aug);
  if (status != AN_OK) return status;
  data_scratch scratch = {0};
  scratch.base = malloc((size_t)aug->resize * aug->resize * 3); /* (S, S, 3) */
  if (!scratch.base)
    return AN_FAIL(AN_ERR_HOST_ALLOC, "out of host memory for a %dx%d image", aug->resize, aug->resize);
  status = an_preprocess_into(img, aug, stats, train, key, out, &scratch);
  free(scratch.base);
  an_resize_cache_free(&scratch.resize);
  return status;
}
