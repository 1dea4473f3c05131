/* Evaluation (an_evaluate): top-1, top-5 and the confusion matrix of a trainer's parameters on a
 * dataset, centre crop or ten-crop, through the trainer's infer operation (any trainer: trainer.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/check.h"
#include "train/trainer.h"

/* One loader batch's samples scored from their logits (samples · crops, classes) into out and confusion;
 * prob: (classes) scratch. */
static void score_batch(const an_batch *b, const float *logits, int crops, int classes, double *prob,
                        an_eval_result *out, int64_t *confusion) {
  for (int j = 0; j < b->samples; j++) {
    if (b->index[j] < 0) continue;
    memset(prob, 0, (size_t)classes * sizeof *prob);
    for (int k = 0; k < crops; k++) an_softmax_add(logits + (size_t)(j * crops + k) * classes, classes, prob);
    const int label = b->labels[j * crops];
    int rank = 0, best = 0;
    for (int c = 0; c < classes; c++) {
      if (prob[c] > prob[label] || (prob[c] == prob[label] && c < label)) rank++;
      if (prob[c] > prob[best]) best = c;
    }
    out->samples++;
    out->top1 += rank == 0;
    out->top5 += rank < 5;
    if (confusion) confusion[(size_t)label * classes + best]++;
  }
}

an_status an_trainer_evaluate(an_trainer *t, const an_dataset *ds, const an_augment *aug, const an_data_stats *stats,
                              int threads, an_eval_result *out, int64_t *confusion) {
  const int crops = an_augment_crops(aug, 0), classes = t->classes, batch = t->batch;
  memset(out, 0, sizeof *out);
  if (batch % crops)
    return AN_FAIL(AN_ERR_ARGUMENT, "evaluate: net batch %d is not a multiple of %d crops", batch, crops);
  if (an_dataset_classes(ds) > classes)
    return AN_FAIL(AN_ERR_ARGUMENT, "evaluate: %s has %d classes, the net %d", an_dataset_source(ds),
                   an_dataset_classes(ds), classes);
  if (t->part_first % crops || t->part_count % crops)
    return AN_FAIL(AN_ERR_ARGUMENT, "evaluate: rows %d+%d of the batch are not whole samples of %d crops",
                   t->part_first, t->part_count, crops);
  an_loader_config lc = {.batch = batch / crops,
                         .slice_first = t->part_first / crops,
                         .slice_count = t->part_count == batch ? 0 : t->part_count / crops,
                         .threads = threads > 0 ? threads : 1,
                         .prefetch = 2,
                         .train = 0,
                         .epochs = 1,
                         .aug = *aug,
                         .stats = *stats};
  an_loader *ld = NULL;
  float *logits = malloc((size_t)batch * classes * sizeof *logits); /* (part_count <= batch, classes) */
  double *prob = malloc((size_t)classes * sizeof *prob);            /* (classes) */
  an_status status = AN_OK;
  if (!logits || !prob) {
    status = AN_FAIL(AN_ERR_HOST_ALLOC, "evaluate: out of host memory");
    goto cleanup;
  }
  AN_TRY_GOTO(an_loader_create(ds, &lc, &ld));
  for (;;) {
    const an_batch *b;
    AN_TRY_GOTO(an_loader_next(ld, &b));
    if (!b) break;
    AN_TRY_GOTO(t->ops->infer(t->impl, b->images, b->labels, logits));
    score_batch(b, logits, crops, classes, prob, out, confusion);
  }
  if (t->ops->sum_counts) { /* each rank scored its share of every batch */
    int64_t counts[3] = {out->samples, out->top1, out->top5};
    AN_TRY_GOTO(t->ops->sum_counts(t->impl, counts, 3));
    out->samples = counts[0], out->top1 = counts[1], out->top5 = counts[2];
    if (confusion) AN_TRY_GOTO(t->ops->sum_counts(t->impl, confusion, classes * classes));
  }
cleanup:
  an_loader_destroy(ld);
  free(logits);
  free(prob);
  return status;
}

an_status an_evaluate(an_net *net, const an_dataset *ds, const an_augment *aug, const an_data_stats *stats,
                      int threads, an_eval_result *out, int64_t *confusion) {
  an_trainer t;
  an_trainer_wrap_net(net, &t);
  return an_trainer_evaluate(&t, ds, aug, stats, threads, out, confusion);
}

an_status an_evaluate_split(an_split *s, const an_dataset *ds, const an_augment *aug, const an_data_stats *stats,
                            int threads, an_eval_result *out, int64_t *confusion) {
  an_trainer t;
  an_trainer_wrap_pair(s, &t);
  return an_trainer_evaluate(&t, ds, aug, stats, threads, out, confusion);
}
