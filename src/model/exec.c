/* The one executor: a model's layers run in order (forward) or in reverse (backward), each through the
 * layer table's entry, with its buffers in the caller's layout: the training net's (model/net.c, every
 * activation kept) or the inference plan's (infer/infer.c, two reused regions). */
#include "alexnet/model.h"
#include "runtime/check.h"

an_status an_exec_forward(int from, int to, const int *skip, an_layer_io_fn io_of, void *ctx, an_runtime *marks) {
  for (int i = from; i < to; i++) {
    if (skip && skip[i]) continue;
    const an_layer_io io = io_of(ctx, i);
    AN_TRY(an_layer_forward(&io));
    if (marks) AN_TRY(an_mark_add(marks, AN_MARK_FORWARD, i));
  }
  return AN_OK;
}

an_status an_exec_backward(int from, int to, an_layer_io_fn io_of, void *ctx, an_runtime *marks) {
  for (int i = to - 1; i >= from; i--) {
    const an_layer_io io = io_of(ctx, i);
    AN_TRY(an_layer_backward(&io));
    if (marks) AN_TRY(an_mark_add(marks, AN_MARK_BACKWARD, i));
  }
  return AN_OK;
}
