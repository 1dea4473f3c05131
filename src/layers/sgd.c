/* SGD with momentum and weight decay over a flat parameter range (formula in cl/sgd.cl). */
#include "alexnet/layers.h"
#include "runtime/check.h"
#include "runtime/launch.h"

an_status an_sgd_update(an_runtime *rt, size_t count, float lr, float momentum, float weight_decay, an_buf weight,
                        an_buf grad, an_buf velocity) {
  const an_arg args[] = {an_arg_mem(weight.mem), an_arg_ulong(weight.off), an_arg_mem(grad.mem),
                         an_arg_ulong(grad.off), an_arg_mem(velocity.mem), an_arg_ulong(velocity.off),
                         an_arg_float(lr),       an_arg_float(momentum),   an_arg_float(weight_decay)};
  return an_launch(rt, "sgd_update", 1, &count, NULL, args);
}
