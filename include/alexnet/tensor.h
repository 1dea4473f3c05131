/* A named parameter tensor inside one flat float array: the one description of where a tensor lives,
 * shared by the models (model.h: the parameter, gradient and momentum buffers) and the checkpoint
 * files (io.h: which bytes of the host array a file tensor is). Nothing here knows a device. */
#ifndef ALEXNET_TENSOR_H
#define ALEXNET_TENSOR_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A parameter tensor inside the parameter buffer (and, at the same offset, in grads and momentum). */
typedef struct an_tensor {
  char name[64]; /* state_dict name: "features.0.weight" */
  int ndim;
  int shape[4];
  size_t offset, count; /* in floats */
  int is_bias;
} an_tensor;

#ifdef __cplusplus
}
#endif
#endif
