/* The one-device trainer: an an_net (model.h) behind the trainer operations (trainer.h), and the
 * net's checkpoint functions of train.h (an_net_save, an_net_load) through it. */
#include "runtime/check.h"
#include "train/trainer.h"

static an_status net_init(void *impl, uint64_t seed) { return an_net_init(impl, seed); }

static an_status net_step(void *impl, const float *images, const int *labels, const an_sgd_params *sgd,
                          uint64_t seed, uint64_t step, float *loss) {
  return an_net_train_step(impl, images, labels, sgd, seed, step, loss);
}

static an_status net_infer(void *impl, const float *images, const int *labels, float *logits) {
  an_net *net = impl;
  AN_TRY(an_net_set_batch(net, images, labels));
  AN_TRY(an_net_forward(net, 0, 0, 0));
  return an_net_read_logits(net, logits);
}

static an_status net_sync(void *impl) { return an_finish(((an_net *)impl)->rt); }

static an_status net_read_state(void *impl, float *params, float *momentum) {
  an_net *net = impl;
  AN_TRY(an_net_read_params(net, params));
  return momentum ? an_read(net->rt, momentum, an_at(net->momentum, 0), net->n_params) : AN_OK;
}

static an_status net_write_state(void *impl, const float *params, const float *momentum) {
  an_net *net = impl;
  AN_TRY(an_net_write_params(net, params));
  return momentum ? an_write(net->rt, an_at(net->momentum, 0), momentum, net->n_params)
                  : an_fill(net->rt, an_at(net->momentum, 0), 0.0f, net->n_params);
}

static void net_destroy(void *impl) { an_net_destroy(impl); }

static an_status net_freeze(void *impl, int below) { return an_net_freeze(impl, below); }

static const an_trainer_ops net_ops = {net_init,        net_step,    net_infer,  net_sync, net_read_state,
                                       net_write_state, net_destroy, net_freeze, NULL,     NULL};

static void fill(an_net *net, int owned, an_trainer *out) {
  *out = (an_trainer){.ops = &net_ops,
                      .impl = net,
                      .owned = owned,
                      .layout = an_net_param_layout(net),
                      .batch = net->batch,
                      .classes = net->classes,
                      .devices = 1,
                      .ranks = 1,
                      .part_count = net->batch};
}

an_status an_trainer_create_net(an_runtime *rt, const char *model, int classes, int batch, int input_hw,
                                an_trainer *out) {
  an_net *net = NULL;
  *out = (an_trainer){0};
  AN_TRY(an_net_create(rt, model, classes, batch, input_hw, &net));
  fill(net, 1, out);
  return AN_OK;
}

void an_trainer_wrap_net(an_net *net, an_trainer *out) { fill(net, 0, out); }

an_status an_net_save(an_net *net, const char *path, const an_checkpoint_meta *meta) {
  an_trainer t;
  an_trainer_wrap_net(net, &t);
  return an_trainer_save(&t, path, meta);
}

an_status an_net_load(an_net *net, const char *path, an_checkpoint_meta *out) {
  an_trainer t;
  an_trainer_wrap_net(net, &t);
  return an_trainer_load(&t, path, out);
}
