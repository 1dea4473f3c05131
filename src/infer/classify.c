/* Classifying image files (or decoded images) through an inference plan: worker threads decode and
 * preprocess one batch (exactly as evaluation does) into an input slot while the device runs the batch
 * in the other slot; every image gets a result in order, an unreadable one an error instead of classes. */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alexnet/infer.h"
#include "runtime/check.h"

#define MAX_THREADS 64

/* One batch being decoded into one input slot. */
typedef struct decode_job {
  const char *const *files; /* or NULL: images */
  const an_image *images;
  int first, count; /* files [first, first + count) */
  float *dst;       /* (count · crops, 3, S, S) the slot's host memory */
  int crops;
  size_t row_floats; /* 3 · S · S */
  const an_augment *aug;
  const an_data_stats *stats;
  int *ok;            /* (count) */
  char (*error)[512]; /* (count) */
  atomic_int next;
  pthread_t threads[MAX_THREADS];
  int n_threads;
} decode_job;

static void *decode_worker(void *arg) {
  decode_job *job = arg;
  for (;;) {
    const int j = atomic_fetch_add(&job->next, 1);
    if (j >= job->count) break;
    float *rows = job->dst + (size_t)j * job->crops * job->row_floats;
    an_status st;
    if (job->images) {
      st = an_preprocess(&job->images[job->first + j], job->aug, job->stats, 0, 0, rows);
    } else {
      an_image img;
      st = an_image_load(job->files[job->first + j], &img);
      if (st == AN_OK) {
        st = an_preprocess(&img, job->aug, job->stats, 0, 0, rows);
        an_image_free(&img);
      }
    }
    job->ok[j] = st == AN_OK;
    if (st != AN_OK) { /* the message is this thread's */
      snprintf(job->error[j], sizeof job->error[j], "%s", an_last_error());
      memset(rows, 0, (size_t)job->crops * job->row_floats * sizeof(float));
    }
  }
  return NULL;
}

static an_status decode_start(decode_job *job, int threads) {
  atomic_store(&job->next, 0);
  job->n_threads = 0;
  const int want = threads < job->count ? threads : job->count;
  for (int t = 0; t < want; t++) {
    if (pthread_create(&job->threads[t], NULL, decode_worker, job) != 0) break;
    job->n_threads++;
  }
  if (job->n_threads == 0 && job->count > 0) decode_worker(job); /* no thread: decode here */
  return AN_OK;
}

static void decode_join(decode_job *job) {
  for (int t = 0; t < job->n_threads; t++) pthread_join(job->threads[t], NULL);
  job->n_threads = 0;
}

/* an_classify_files and an_classify_images: files or images (the other NULL), n_files of them. */
static an_status classify(an_infer *inf, const char *const *files, const an_image *images, int n_files,
                          const an_augment *aug, const an_data_stats *stats, int threads, int top_k,
                          an_classify_fn fn, void *ctx, an_classify_stats *out) {
  const double t0 = an_seconds();
  memset(out, 0, sizeof *out);
  AN_TRY(an_augment_check(aug));
  const int crops = an_augment_crops(aug, 0), classes = inf->classes;
  if (aug->input != inf->input_hw)
    return AN_FAIL(AN_ERR_ARGUMENT, "classify: crops of %d pixels, the plan takes %d", aug->input, inf->input_hw);
  if (inf->batch % crops)
    return AN_FAIL(AN_ERR_ARGUMENT, "classify: plan batch %d is not a multiple of %d crops", inf->batch, crops);
  if (top_k < 1) return AN_FAIL(AN_ERR_ARGUMENT, "classify: top-k %d", top_k);
  if (top_k > classes) top_k = classes;
  if (top_k > AN_CLASSIFY_MAX_TOP) top_k = AN_CLASSIFY_MAX_TOP;
  if (threads < 1) threads = 1;
  if (threads > MAX_THREADS) threads = MAX_THREADS;
  const int per_batch = inf->batch / crops, slots = inf->input_slots;
  const size_t row_floats = (size_t)3 * inf->input_hw * inf->input_hw;
  decode_job jobs[2];
  memset(jobs, 0, sizeof jobs);
  double *prob = malloc((size_t)classes * sizeof *prob); /* (classes) */
  an_classify_result *r = malloc(sizeof *r);
  an_status status = AN_OK;
  for (int s = 0; s < slots; s++) {
    jobs[s].ok = calloc((size_t)per_batch, sizeof *jobs[s].ok);
    jobs[s].error = calloc((size_t)per_batch, sizeof *jobs[s].error);
  }
  if (!prob || !r || !jobs[0].ok || !jobs[0].error || (slots > 1 && (!jobs[1].ok || !jobs[1].error))) {
    status = AN_FAIL(AN_ERR_HOST_ALLOC, "classify: out of host memory");
    goto cleanup;
  }
  const int n_batches = (n_files + per_batch - 1) / per_batch;
  /* batch b decodes into slot b % slots; with two slots batch b+1 decodes while b runs */
#define START(b)                                                                                \
  do {                                                                                          \
    decode_job *j_ = &jobs[(b) % slots];                                                        \
    j_->files = files, j_->images = images, j_->first = (b)*per_batch;                          \
    j_->count = n_files - j_->first < per_batch ? n_files - j_->first : per_batch;              \
    j_->dst = an_infer_input(inf, (b) % slots), j_->crops = crops, j_->row_floats = row_floats; \
    j_->aug = aug, j_->stats = stats;                                                           \
    decode_start(j_, threads);                                                                  \
  } while (0)
  if (n_batches > 0) START(0);
  for (int b = 0; b < n_batches; b++) {
    decode_job *job = &jobs[b % slots];
    decode_join(job);
    const size_t used = (size_t)job->count * crops * row_floats;
    memset(job->dst + used, 0, ((size_t)inf->batch * row_floats - used) * sizeof(float)); /* padding rows */
    if (slots > 1 && b + 1 < n_batches) START(b + 1);
    const float *logits;
    const double d0 = an_seconds();
    status = an_infer_run(inf, b % slots, &logits);
    out->device_seconds += an_seconds() - d0;
    if (status != AN_OK) goto cleanup;
    for (int j = 0; j < job->count; j++) {
      memset(r, 0, sizeof *r);
      r->index = job->first + j;
      r->file = files ? files[r->index] : NULL;
      r->ok = job->ok[j];
      out->images++;
      if (!r->ok) {
        snprintf(r->error, sizeof r->error, "%s", job->error[j]);
        out->failed++;
      } else {
        memset(prob, 0, (size_t)classes * sizeof *prob);
        for (int k = 0; k < crops; k++) an_softmax_add(logits + (size_t)(j * crops + k) * classes, classes, prob);
        for (int c = 0; c < classes; c++) prob[c] /= crops;
        r->top_k = top_k;
        for (int t = 0; t < top_k; t++) { /* the most probable not yet taken; ties to the lower index */
          int best = -1;
          for (int c = 0; c < classes; c++) {
            int taken = 0;
            for (int u = 0; u < t && !taken; u++) taken = r->top[u] == c;
            if (!taken && (best < 0 || prob[c] > prob[best])) best = c;
          }
          r->top[t] = best;
          r->prob[t] = prob[best];
        }
      }
      if (fn) fn(ctx, r);
    }
    if (slots == 1 && b + 1 < n_batches) START(b + 1);
  }
#undef START
cleanup:
  for (int s = 0; s < 2; s++) {
    decode_join(&jobs[s]);
    free(jobs[s].ok);
    free(jobs[s].error);
  }
  free(r);
  free(prob);
  out->seconds = an_seconds() - t0;
  return status;
}

an_status an_classify_files(an_infer *inf, const char *const *files, int n_files, const an_augment *aug,
                            const an_data_stats *stats, int threads, int top_k, an_classify_fn fn, void *ctx,
                            an_classify_stats *out) {
  return classify(inf, files, NULL, n_files, aug, stats, threads, top_k, fn, ctx, out);
}

an_status an_classify_images(an_infer *inf, const an_image *images, int n_images, const an_augment *aug,
                             const an_data_stats *stats, int threads, int top_k, an_classify_fn fn, void *ctx,
                             an_classify_stats *out) {
  return classify(inf, NULL, images, n_images, aug, stats, threads, top_k, fn, ctx, out);
}
