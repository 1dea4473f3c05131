/* A plain-C reference of every layer: straight loops over double arrays, double accumulation, written
 * from PyTorch's definitions and not from the device code, so that a test comparing the two checks
 * something. Forward and backward side by side, llm.c style: outputs first, gradients prefixed d,
 * weight and bias gradients accumulated (+=), input gradients written (dinp may be NULL to skip them).
 * test_reference.c checks every backward here against finite differences of its forward. */
#ifndef ALEXNET_TESTS_REF_H
#define ALEXNET_TESTS_REF_H

#include <stddef.h>
#include <stdint.h>

/* The reference's own convolution shape, so that the library's output-size arithmetic is checked too. */
typedef struct ref_conv_dims {
  int n, c, h, w;          /* input (N, C, H, W) */
  int oc, kh, kw;          /* weight (OC, C/groups, KH, KW) */
  int stride, pad, groups; /* groups divides C and OC */
  int oh, ow;              /* output (N, OC, OH, OW): (H + 2·pad - KH) / stride + 1, likewise W */
} ref_conv_dims;

ref_conv_dims ref_conv_dims_make(int n, int c, int h, int w, int oc, int k, int stride, int pad, int groups);

/* ---- convolution (zero padding, groups), out = act(conv(inp, weight) + bias), act = ReLU if relu ---- */
void ref_conv_forward(double *out /* (N,OC,OH,OW) */, const double *inp /* (N,C,H,W) */,
                      const double *weight /* (OC,C/g,KH,KW) */, const double *bias /* (OC) */,
                      const ref_conv_dims *d, int relu);
/* With relu, dout is the gradient after the ReLU and out the forward output: the gradient passes where
 * out > 0 (PyTorch's threshold_backward). out may be NULL without relu. */
void ref_conv_backward(double *dinp /* (N,C,H,W) or NULL */, double *dweight /* (OC,C/g,KH,KW) */,
                       double *dbias /* (OC) */, const double *dout /* (N,OC,OH,OW) */,
                       const double *out /* (N,OC,OH,OW) */, const double *inp /* (N,C,H,W) */,
                       const double *weight /* (OC,C/g,KH,KW) */, const ref_conv_dims *d, int relu);

/* ---- fully connected, out = act(inp · weightᵀ + bias), weight (OUT, IN) as torch.nn.Linear ---- */
void ref_fc_forward(double *out /* (N,OUT) */, const double *inp /* (N,IN) */, const double *weight /* (OUT,IN) */,
                    const double *bias /* (OUT) */, int n, int in, int out_features, int relu);
/* dout is left unchanged (the device overwrites it in place with relu; the reference does not). */
void ref_fc_backward(double *dinp /* (N,IN) or NULL */, double *dweight /* (OUT,IN) */, double *dbias /* (OUT) */,
                     const double *dout /* (N,OUT) */, const double *out /* (N,OUT) */,
                     const double *inp /* (N,IN) */, const double *weight /* (OUT,IN) */, int n, int in,
                     int out_features, int relu);

/* ---- local response normalisation, torch.nn.LocalResponseNorm(size, alpha, beta, k):
 *      scale_c = k + alpha/size · Σ_{j ∈ [c - size/2, c + (size-1)/2] ∩ [0, C)} x_j²,
 *      out_c = x_c · scale_c^-beta ---- */
void ref_lrn_forward(double *out /* (N,C,H,W) */, double *scale /* (N,C,H,W) or NULL */,
                     const double *inp /* (N,C,H,W) */, int n, int c, int h, int w, int size, double alpha,
                     double beta, double k);
void ref_lrn_backward(double *dinp /* (N,C,H,W) */, const double *dout /* (N,C,H,W) */,
                      const double *inp /* (N,C,H,W) */, int n, int c, int h, int w, int size, double alpha,
                      double beta, double k);

/* ---- max-pool, no padding, floor mode: OH = (H - k) / stride + 1. The gradient of a window goes to its
 *      first maximum in row-major order (strict > while scanning), as PyTorch's CPU kernel ---- */
void ref_maxpool_forward(double *out /* (N,C,OH,OW) */, const double *inp /* (N,C,H,W) */, int n, int c, int h,
                         int w, int k, int stride);
void ref_maxpool_backward(double *dinp /* (N,C,H,W) */, const double *dout /* (N,C,OH,OW) */,
                          const double *inp /* (N,C,H,W) */, int n, int c, int h, int w, int k, int stride);

/* ---- adaptive average pool to (OH, OW): rows [floor(i·H/OH), ceil((i+1)·H/OH)), columns alike ---- */
void ref_avgpool_forward(double *out /* (N,C,OH,OW) */, const double *inp /* (N,C,H,W) */, int n, int c, int h,
                         int w, int oh, int ow);
void ref_avgpool_backward(double *dinp /* (N,C,H,W) */, const double *dout /* (N,C,OH,OW) */, int n, int c, int h,
                          int w, int oh, int ow);

/* ---- dropout: element i is kept when an_dropout_uniform(key, first + i) >= p (the library's host copy
 *      of the kernels' generator) and scaled by 1/(1-p). Returns how many elements were kept ---- */
size_t ref_dropout_forward(double *out /* (count) */, const double *inp /* (count) */, size_t count, float p,
                           uint64_t key, uint64_t first);
void ref_dropout_backward(double *dinp /* (count) */, const double *dout /* (count) */, size_t count, float p,
                          uint64_t key, uint64_t first);

/* ---- softmax cross-entropy, mean over the batch. Returns the loss; dlogits = (softmax - onehot) / N
 *      (skipped when NULL); per_sample, when not NULL, gets each sample's -log softmax[label] ---- */
double ref_softmax_xent(double *dlogits /* (N,K) or NULL */, double *per_sample /* (N) or NULL */,
                        const double *logits /* (N,K) */, const int *labels /* (N) */, int n, int classes);

/* ---- SGD, PyTorch's formulation: v = momentum·v + g + weight_decay·w;  w -= lr·v ---- */
void ref_sgd_update(double *weight /* (count) */, const double *grad /* (count) */, double *velocity /* (count) */,
                    size_t count, double lr, double momentum, double weight_decay);

#endif
