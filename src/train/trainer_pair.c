/* The two-device trainer: an an_split (split.h) behind the trainer operations (trainer.h), and the
 * split's checkpoint functions of train.h (an_split_save, an_split_load) through it. Its state reads
 * gather and its writes scatter the single-device layout, so its files are one device's. */
#include "runtime/check.h"
#include "train/trainer.h"

static an_status pair_init(void *impl, uint64_t seed) { return an_split_init(impl, seed); }

static an_status pair_step(void *impl, const float *images, const int *labels, const an_sgd_params *sgd,
                           uint64_t seed, uint64_t step, float *loss) {
  return an_split_train_step(impl, images, labels, sgd, seed, step, loss);
}

static an_status pair_infer(void *impl, const float *images, const int *labels, float *logits) {
  an_split *s = impl;
  AN_TRY(an_split_set_batch(s, images, labels));
  AN_TRY(an_split_forward(s, 0, 0, 0));
  return an_split_read_logits(s, logits);
}

static an_status pair_sync(void *impl) {
  an_split *s = impl;
  for (int k = 0; k < 2; k++) AN_TRY(an_finish(s->rt[k]));
  return AN_OK;
}

static an_status pair_read_state(void *impl, float *params, float *momentum) {
  AN_TRY(an_split_read_params(impl, params));
  return momentum ? an_split_read_momentum(impl, momentum) : AN_OK;
}

static an_status pair_write_state(void *impl, const float *params, const float *momentum) {
  an_split *s = impl;
  AN_TRY(an_split_write_params(s, params));
  if (momentum) return an_split_write_momentum(s, momentum);
  for (int k = 0; k < 2; k++) AN_TRY(an_fill(s->rt[k], an_at(s->net[k]->momentum, 0), 0.0f, s->net[k]->n_params));
  return AN_OK;
}

static void pair_destroy(void *impl) { an_split_destroy(impl); }

/* no freeze: a pair trains every layer (the loop refuses --freeze-features on two devices) */
static const an_trainer_ops pair_ops = {pair_init,        pair_step,    pair_infer, pair_sync, pair_read_state,
                                        pair_write_state, pair_destroy, NULL,       NULL,      NULL};

static void fill(an_split *s, int owned, an_trainer *out) {
  *out = (an_trainer){.ops = &pair_ops,
                      .impl = s,
                      .owned = owned,
                      .layout = an_net_param_layout(s->full),
                      .batch = s->batch,
                      .classes = s->classes,
                      .devices = 2,
                      .ranks = 1,
                      .part_count = s->batch};
}

an_status an_trainer_create_pair(an_runtime *rt0, an_runtime *rt1, const char *model, int classes, int batch,
                                 int input_hw, an_trainer *out) {
  an_split *s = NULL;
  *out = (an_trainer){0};
  AN_TRY(an_split_create(rt0, rt1, model, classes, batch, input_hw, &s));
  fill(s, 1, out);
  return AN_OK;
}

void an_trainer_wrap_pair(an_split *split, an_trainer *out) { fill(split, 0, out); }

an_status an_split_save(an_split *s, const char *path, const an_checkpoint_meta *meta) {
  an_trainer t;
  an_trainer_wrap_pair(s, &t);
  return an_trainer_save(&t, path, meta);
}

an_status an_split_load(an_split *s, const char *path, an_checkpoint_meta *out) {
  an_trainer t;
  an_trainer_wrap_pair(s, &t);
  return an_trainer_load(&t, path, out);
}
