/* Internal: Winograd F(2x2,3x3), F(4x4,3x3) and F(4x4,5x5) for the convolutions that are 3x3 or 5x5, stride 1, with
 * "same" padding (layers/winograd.c, cl/winograd.cl): the forward pass; the backward pass's input
 * gradient, which is the same kind of convolution of the output gradient (filters turned 180°, channels
 * swapped); and the weight gradient, the forward GEMMs read backwards (dU = dM · Vᵀ, then Gᵀ dU G).
 * conv.c decides when. */
#ifndef ALEXNET_WINOGRAD_H
#define ALEXNET_WINOGRAD_H

#include "alexnet/layers.h"

/* AN_WINO_ADJOINT: only for an_wino_filters, U[ξ]ᵀ per group (channels swapped, not turned) for the
 * input gradient that an_wino_weight_chunk computes from the weight gradient's dM */
typedef enum an_wino_pass { AN_WINO_FORWARD, AN_WINO_BACKWARD_DATA, AN_WINO_ADJOINT } an_wino_pass;

/* 1 when d is a convolution Winograd computes: 3x3 pad 1 or 5x5 pad 2, stride 1 */
int an_wino_applies(const an_conv_dims *d);
/* 1 when one image has AN_WINOGRAD_LARGE_TILES 2x2 tiles or more (13x13 pixels), whatever tile the layer
 * runs: where the gradients go through Winograd by default, and where 3x3 may take 4x4 tiles */
int an_wino_large(const an_conv_dims *d);
/* output tiles per image: ceil(H/m)·ceil(W/m), m the output tile's side: 4 for 5x5; for 3x3 4 on images
 * of 13x13 or more where 4x4 tiles take fewer products, else 2 (layers/winograd.c) */
int an_wino_tiles(const an_conv_dims *d);
/* Workspace floats: the transformed filters (P, OC, C/groups), P = (m+K-1)² positions, the same count in
 * both passes; and per image the transformed tiles and products, P·tiles·(C + OC) */
size_t an_wino_filter_floats(const an_conv_dims *d);
/* Workspace floats a call needs besides the images': the transformed filters, then the region's padding
 * (its positions' rows are spaced apart: layers/winograd.c); the weight gradient's pass one set of
 * filters more (dU, and the adjoint input gradient's U beside it) */
size_t an_wino_fixed_floats(const an_conv_dims *d);
size_t an_wino_backward_fixed_floats(const an_conv_dims *d);
size_t an_wino_image_floats(const an_conv_dims *d);

/* u (an_wino_filter_floats) = the pass's filters, transformed */
an_status an_wino_filters(an_runtime *rt, const an_conv_dims *d, an_wino_pass pass, an_buf weight, an_buf u);
/* The forward pass's filters prepared once for fixed weights (inference): transformed, and where the
 * project's GEMM runs the position GEMMs (an_wino_prepacked) also packed as its A (per group, the P
 * positions' an_panel_packed_floats apart), through scratch (an_wino_filter_floats); the floats they take */
int an_wino_prepacked(const an_runtime *rt, const an_conv_dims *d);
size_t an_wino_prepared_floats(const an_runtime *rt, const an_conv_dims *d);
an_status an_wino_prepare(an_runtime *rt, const an_conv_dims *d, an_buf weight, an_buf prepared, an_buf scratch);
/* One chunk of nb images from n0, region holding nb·an_wino_image_floats. Forward: dst (N,OC,H,W) =
 * act(conv(src (N,C,H,W)) + bias); backward data: dst (N,C,H,W) = the input gradient of src, the output
 * gradient (N,OC,H,W), through the ReLU when relu (mask: the forward output). The GEMMs read u, or with
 * packed.mem the forward's filters an_wino_prepare packed (u then gives the offsets they are recorded at). */
an_status an_wino_chunk(an_runtime *rt, const an_conv_dims *d, an_wino_pass pass, an_buf dst, an_buf src,
                        an_buf mask, an_buf bias, int relu, an_buf u, an_buf packed, an_buf region, int n0, int nb);
/* The GEMMs an_wino_chunk issues for nb images, appended to out from n (as an_gemm_call_add) */
int an_wino_gemms(const an_conv_dims *d, an_wino_pass pass, size_t u_off, size_t region_off, int nb,
                  an_gemm_call *out, int n, int max);

/* Weight gradient, one chunk of nb images from n0 (region as an_wino_chunk's, forward shape): du (P, OC,
 * C/groups) = (accumulate ? du : 0) + Σ_t dM · Vᵀ, V the input's tiles, dM = A dY Aᵀ of dout (N,OC,H,W),
 * through the ReLU when relu (mask: out, the forward output). With dinp.mem, the chunk's input gradient
 * too, from the same dM: dV = U[ξ]ᵀ · dM (ut: an_wino_filters' AN_WINO_ADJOINT) over V's place, then
 * dinp (N,C,H,W) = the input transform's adjoint of dV. */
an_status an_wino_weight_chunk(an_runtime *rt, const an_conv_dims *d, an_buf inp, an_buf dout, an_buf out, int relu,
                               an_buf du, an_buf region, int n0, int nb, int accumulate, an_buf dinp, an_buf ut);
/* dweight (OC, C/groups, K, K) += Gᵀ dU G, du as an_wino_weight_chunk left it */
an_status an_wino_filter_grad(an_runtime *rt, const an_conv_dims *d, an_buf du, an_buf dweight);
/* The GEMMs an_wino_weight_chunk issues for nb images (with_dinp: and the input gradient's, ut at
 * ut_off), appended to out from n */
int an_wino_weight_gemms(const an_conv_dims *d, size_t du_off, size_t region_off, int nb, int with_dinp,
                         size_t ut_off, an_gemm_call *out, int n, int max);

#endif
