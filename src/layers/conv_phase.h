/* Internal: a strided convolution's forward pass without im2col, on the project's GEMM (CPUs with 16-lane
 * vectors, rt->own_gemm): the input rearranged into stride² phase planes per channel, in which every tap
 * reads a contiguous run per output row, and one GEMM kernel that reads its columns in place from them
 * and writes act(· + bias) in NCHW (layers/conv_phase.c, cl/conv.cl's conv_phase, cl/gemm.cl's
 * gemm_conv_phase). conv1 of every model (11x11, stride 4): im2col wrote 363 x OH·OW floats per image
 * (1.1 MB) that the GEMM read back; the phase planes are 48 x 57² (0.6 MB). conv.c decides when. */
#ifndef ALEXNET_CONV_PHASE_H
#define ALEXNET_CONV_PHASE_H

#include "alexnet/layers.h"

/* 1 when the phase path computes d's forward pass on rt: the project's GEMM, stride 2 or more, one
 * group, a kernel at least as wide as the stride */
int an_conv_phase_applies(const an_runtime *rt, const an_conv_dims *d);
/* workspace floats: the reduction's row table (fixed), then per image its phase planes */
size_t an_conv_phase_fixed_floats(const an_conv_dims *d);
size_t an_conv_phase_image_floats(const an_conv_dims *d);
/* out (N, OC, OH, OW) = act(conv(inp) + bias) for images n0 … n0+nb-1, work holding the fixed part and nb
 * images' planes; the weight is packed into rt->gemm_temp (an_panel_scratch_bytes of an_conv_phase_call) */
an_status an_conv_phase_forward(an_runtime *rt, const an_conv_dims *d, an_buf out, an_buf inp, an_buf weight,
                                an_buf bias, int relu, an_buf work, int n0, int nb);
/* The weight and bias gradients for images n0 … n0+nb-1: dweight (OC, C·K·K) += Σ dY·colᵀ, dbias (OC) +=
 * Σ dY (dY = dout through the ReLU when relu, out the forward output), col the forward's implicit one;
 * work holding the fixed part and nb·an_conv_phase_dw_image_floats. */
size_t an_conv_phase_dw_image_floats(const an_conv_dims *d);
an_status an_conv_phase_weight_grad(an_runtime *rt, const an_conv_dims *d, an_buf dweight, an_buf dbias, an_buf dout,
                                    an_buf out, an_buf inp, int relu, an_buf work, int n0, int nb);
/* The weight gradient's GEMM for a chunk of nb images, as the im2col NT it replaces (OC x C·K·K x nb·OH·OW) */
an_gemm_call an_conv_phase_dw_call(const an_conv_dims *d, size_t work_off, size_t dweight_off, int nb);
/* The GEMM a chunk of nb images from n0 counts as (recorded and listed as the im2col GEMM it replaces:
 * OC x nb·OH·OW x C·KH·KW, offsets of the weight, the workspace and the chunk's output) */
an_gemm_call an_conv_phase_call(const an_conv_dims *d, size_t weight_off, size_t work_off, size_t out_off, int n0,
                                int nb);

#endif
