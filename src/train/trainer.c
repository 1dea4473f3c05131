/* What every trainer shares: checkpoints through host arrays in the single-device layout (io's
 * an_checkpoint_save/load on one side, the trainer's read/write_state on the other), and destroy. */
#include <stdlib.h>

#include "runtime/check.h"
#include "train/trainer.h"

an_param_layout an_net_param_layout(const an_net *net) {
  const an_param_layout layout = {.model = net->model->name,
                                  .classes = net->classes,
                                  .input_hw = net->input_hw,
                                  .tensors = net->tensors,
                                  .n_tensors = net->n_tensors,
                                  .n_params = net->n_params};
  return layout;
}

void an_trainer_destroy(an_trainer *t) {
  if (t->ops && t->owned) t->ops->destroy(t->impl);
  t->ops = NULL, t->impl = NULL;
}

an_status an_trainer_save(an_trainer *t, const char *path, const an_checkpoint_meta *meta) {
  const int ckpt = meta && meta->checkpoint;
  const size_t n_params = t->layout.n_params;
  an_status status = AN_OK;
  float *params = malloc(n_params * sizeof *params);                   /* (n_params) */
  float *momentum = ckpt ? malloc(n_params * sizeof *momentum) : NULL; /* (n_params) */
  if (!params || (ckpt && !momentum)) {
    status = AN_FAIL(AN_ERR_HOST_ALLOC, "%s: host copies of %zu parameters", path, n_params);
    goto cleanup;
  }
  AN_TRY_GOTO(t->ops->read_state(t->impl, params, momentum));
  status = an_checkpoint_save(&t->layout, params, momentum, path, meta);
cleanup:
  free(momentum);
  free(params);
  return status;
}

an_status an_trainer_load(an_trainer *t, const char *path, an_checkpoint_meta *out) {
  float *params, *momentum; /* (n_params) each; momentum NULL for a weights file */
  an_checkpoint_meta m;
  an_status status = an_checkpoint_load(&t->layout, path, &params, &momentum, &m);
  if (status != AN_OK) return status;
  /* everything is read and checked: only now does the device change */
  status = t->ops->write_state(t->impl, params, momentum);
  if (status == AN_OK) status = t->ops->sync(t->impl);
  if (status == AN_OK && out) *out = m;
  free(momentum);
  free(params);
  return status;
}
