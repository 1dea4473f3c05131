/* The two-device split. `alexnet` runs as the paper ran it on two GPUs: each device holds one column
 * (half the channels of every layer) and the columns exchange activations only where the paper's GPUs
 * did (after pool2, after pool5, after fc6, and fc8's partial sums), gradients at the same points on
 * the way back. The single-column models (alexnet-half, alexnet-tv) split the batch instead: each
 * device runs its share of the samples, and the gradients are summed across the devices before the
 * update. Either way each device keeps its own parameters, gradients and momentum, and the results are
 * the single-device model's up to float rounding (same weights, same dropout masks).
 *
 * Devices in one context exchange by buffer copies ordered by events; devices in separate contexts
 * (different platforms, or forced) through host memory, a read on the producer's queue and a write on
 * the consumer's chained by an event callback. Nothing waits on the host inside a step except the loss
 * read at its end. */
#ifndef ALEXNET_SPLIT_H
#define ALEXNET_SPLIT_H

#include "alexnet/model.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum an_split_mode {
  AN_SPLIT_COLUMNS, /* model parallel: alexnet's two columns */
  AN_SPLIT_BATCH    /* data parallel: samples [0, n0) on device 0, [n0, N) on device 1 */
} an_split_mode;

typedef struct an_split {
  an_runtime *rt[2];
  an_net *net[2]; /* device k's column net (columns) or the whole model for its samples (batch) */
  an_net *full;   /* the single-device model's plan: the tensor table of checkpoints and of the
                      full-layout parameter arrays below (no device buffers) */
  an_split_mode mode;
  int batch, classes, input_hw;
  int first[2], count[2]; /* samples of the batch each device runs (the whole batch for columns) */
  int shared_context;     /* 1: copies between buffers; 0: through host memory */
  cl_mem recv[2];         /* (recv_floats) on device k: the other device's data before it is summed */
  size_t recv_floats;
  float **stage; /* host staging of the separate-context path: one per exchange and direction */
  size_t *stage_floats;
  int n_stage;
  int profiling; /* 1: keep the copy events, an_split_exchange_ms sums their durations */
  cl_event *copy_events;
  int n_copy_events, cap_copy_events;
} an_split;

/* Plans and allocates the split of `model` over rt[0] and rt[1] (from an_runtime_create_pair):
 * columns for alexnet, the batch for the others (batch >= 2). Both devices' memory needs are checked
 * before anything is allocated: a device that cannot hold its half is AN_ERR_DEVICE_MEMORY naming the
 * device, what it needs and what it has. */
an_status an_split_create(an_runtime *rt0, an_runtime *rt1, const char *model, int classes, int batch, int input_hw,
                          an_split **out);
void an_split_destroy(an_split *s);

/* The single-device model's initialisation (an_net_init's, same seed, same numbers), then scattered. */
an_status an_split_init(an_split *s, uint64_t seed);

/* Parameters, gradients and momentum in the single-device model's layout (s->full's tensor table, n_params
 * floats): reads gather the columns (device 0's copy of what both hold), writes scatter them. */
an_status an_split_write_params(an_split *s, const float *params);
an_status an_split_read_params(an_split *s, float *params);
an_status an_split_read_grads(an_split *s, float *grads);
an_status an_split_write_momentum(an_split *s, const float *momentum);
an_status an_split_read_momentum(an_split *s, float *momentum);

/* Uploads a batch: images (N, 3, H, W), labels (N). */
an_status an_split_set_batch(an_split *s, const float *images, const int *labels);
an_status an_split_forward(an_split *s, int train, uint64_t seed, uint64_t step);
an_status an_split_backward(an_split *s, uint64_t seed, uint64_t step);
an_status an_split_sgd(an_split *s, const an_sgd_params *p);
/* Upload, forward, backward, SGD, then the loss read (the step's only wait). */
an_status an_split_train_step(an_split *s, const float *images, const int *labels, const an_sgd_params *p,
                              uint64_t seed, uint64_t step, float *loss);
an_status an_split_read_loss(an_split *s, float *loss);
an_status an_split_read_logits(an_split *s, float *logits /* (N, classes) */);

/* After the queues finished: the summed device time of the exchange copies kept since the last clear
 * (profiling on), in milliseconds, and their count. */
an_status an_split_exchange_ms(an_split *s, double *ms, int *n_copies);
void an_split_clear_events(an_split *s);

/* Each device's time over the steps profiled since its marks were last cleared (an_marks_clear on both
 * runtimes; queues finished): busy_ms, its layers, loss, zeroing and update; exchange_ms, its exchanges
 * and the waiting for the other device inside them (the interval of each exchange layer, and of the
 * batch split's gradient sum). busy + exchange is the span of its steps, begin to update; the time
 * between steps counts in neither. copy_ms and n_copies: an_split_exchange_ms's. */
typedef struct an_split_times {
  double busy_ms[2], exchange_ms[2];
  double copy_ms;
  int n_copies;
  int n_steps; /* steps begun in the marks (device 0's) */
} an_split_times;
an_status an_split_times_read(an_split *s, an_split_times *out);

/* Device k's memory: its net (an_net_device_bytes) and its receive buffer. */
size_t an_split_device_bytes(const an_split *s, int k);

#ifdef __cplusplus
}
#endif
#endif
