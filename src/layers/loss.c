/* Softmax cross-entropy over the batch: per-sample losses and dlogits in one kernel, then the mean. */
#include "alexnet/layers.h"
#include "runtime/check.h"
#include "runtime/launch.h"

an_status an_softmax_xent(an_runtime *rt, int n, int classes, an_buf loss, an_buf dlogits, an_buf per_sample,
                          an_buf logits, cl_mem labels) {
  if (n < 1 || classes < 1) return AN_FAIL(AN_ERR_ARGUMENT, "loss over %d x %d is not valid", n, classes);
  {
    const size_t global = (size_t)n;
    const an_arg args[] = {
        an_arg_mem(logits.mem),    an_arg_ulong(logits.off),   an_arg_mem(labels),           an_arg_mem(dlogits.mem),
        an_arg_ulong(dlogits.off), an_arg_mem(per_sample.mem), an_arg_ulong(per_sample.off), an_arg_int(n),
        an_arg_int(classes)};
    AN_TRY(an_launch(rt, "xent_forward_backward", 1, &global, NULL, args));
  }
  const size_t one = 1;
  const an_arg args[] = {an_arg_mem(per_sample.mem), an_arg_ulong(per_sample.off), an_arg_mem(loss.mem),
                         an_arg_ulong(loss.off), an_arg_int(n)};
  return an_launch(rt, "sum_loss", 1, &one, NULL, args);
}
