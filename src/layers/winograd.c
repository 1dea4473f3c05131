/* Winograd F(m x m,r x r) convolutions (r x r, stride 1, "same" padding): F(2x2,3x3) or F(4x4,3x3), and
 * F(4x4,5x5); the filter, input and output transforms of cl/winograd.cl around P = (m+r-1)² GEMMs per
 * group, M[ξ] (CO/g, T) = U[ξ] (CO/g, CI/g) · V[ξ] (CI/g, T): P multiplies per m x m output tile and
 * input channel where im2col's GEMM takes m²·r² (16 against 36 and 36 against 144 for 3x3, 64 against
 * 400 for 5x5).
 *
 * The forward pass convolves the input (CI = C, CO = OC); the backward pass's input gradient convolves
 * the output gradient (CI = OC, CO = C) with the filters turned 180° and their channels swapped, so both
 * run the same code with the filter transform reading the weight the pass's way. The weight gradient
 * reads the forward GEMMs backwards: dU[ξ] (CO/g, CI/g) = dM[ξ] · V[ξ]ᵀ, one NT per position and group
 * with K = T, dM = A dY Aᵀ from the output gradient (winograd<a>_grad_output, written where m lies) and
 * V the input's tiles as the forward pass makes them; then dW += Gᵀ dU G (winograd<a>_filter_grad). With
 * both gradients on Winograd the input gradient comes from the same dM: dV[ξ] (CI/g, T) = U[ξ]ᵀ · dM[ξ]
 * (NN, over V's place), then the input transform's adjoint (winograd<a>_input_grad) adds each tile's
 * B dV Bᵀ into the input gradient: one transform of the output gradient per chunk where the input
 * gradient on its own (AN_WINO_BACKWARD_DATA) takes another.
 * Per chunk of nb images the region holds (T = nb·ceil(H/m)·ceil(W/m) tiles)
 *   v (P, CI, T)   the transformed tiles, position ξ's (CI, T) at ξ·sv
 *   m (P, CO, T)   the GEMMs' products, position ξ's (CO, T) at ξ·sm
 * Each transform work-item reads or writes its tiles' P positions as P streams; with the positions
 * packed (sv = CI·T) those streams lay a multiple of 4 KiB apart at AlexNet's sizes, all in the same
 * cache sets, and the transforms ran at a few GB/s. sv and sm are rounded up to 4 KiB plus one cache
 * line, so that the P streams fall in P different sets (pos_stride), when one image's rows of the
 * smaller side fill 4 KiB (spread); a smaller convolution keeps them packed.
 * and u (P, CO, CI/g), the transformed filters, lies apart (the caller's, once per call). */
#include "layers/winograd.h"

#include <stdio.h>

#include "gemm/gemm.h"
#include "layers/ops.h"
#include "runtime/check.h"
#include "runtime/launch.h"

typedef struct wino_shape {
  int ci, co, groups;
  int th, tw; /* tiles per image */
  int r, m;   /* the filter's side, the output tile's (tile_side) */
  int p;      /* positions P = (m+r-1)² */
  int spread; /* positions spaced apart (pos_stride) */
} wino_shape;

static int spread(const an_conv_dims *d);

/* products per image and channel pair with output tiles of side m: tiles · (m+r-1)² */
static size_t products(const an_conv_dims *d, int m) {
  return (size_t)((d->h + m - 1) / m) * ((d->w + m - 1) / m) * (m + d->kh - 1) * (m + d->kh - 1);
}

/* The output tile's side m: 4 for 5x5 (F(4x4,5x5): conv2's 27x27 in 7x7 tiles, 64 products per 16
 * outputs where F(2x2,5x5) took 36 per 4; faster at 6x6 too). For 3x3, 4 on images of
 * AN_WINOGRAD_LARGE_TILES 2x2 tiles or more (13x13) where 4x4 tiles take fewer products (576 against 784
 * per image and channel pair at 13x13, the padding's share counted), else 2 (F(2x2,3x3), the more
 * exact): at the main job's 3x3 images F(4x4,3x3) takes 36 products against 64 and still ran conv3-conv5
 * 1.6-1.9x slower, its fixed costs (2.25x the filter transform, 36 GEMM launches against 16) over
 * products of 32 tiles a position */
static int tile_side(const an_conv_dims *d) {
  if (d->kh == 5) return 4;
  return an_wino_large(d) && products(d, 4) < products(d, 2) ? 4 : 2;
}

static int positions(const an_conv_dims *d) {
  const int a = tile_side(d) + d->kh - 1;
  return a * a;
}

static wino_shape shape_of(const an_conv_dims *d, an_wino_pass pass) {
  const wino_shape s = {pass == AN_WINO_FORWARD ? d->c : d->oc,
                        pass == AN_WINO_FORWARD ? d->oc : d->c,
                        d->groups,
                        (d->h + tile_side(d) - 1) / tile_side(d),
                        (d->w + tile_side(d) - 1) / tile_side(d),
                        d->kh,
                        tile_side(d),
                        positions(d),
                        spread(d)};
  return s;
}

int an_wino_applies(const an_conv_dims *d) {
  return (d->kh == 3 || d->kh == 5) && d->kw == d->kh && d->stride == 1 && d->pad == (d->kh - 1) / 2 &&
         d->oh == d->h && d->ow == d->w;
}

int an_wino_large(const an_conv_dims *d) { return ((d->h + 1) / 2) * ((d->w + 1) / 2) >= AN_WINOGRAD_LARGE_TILES; }

int an_wino_tiles(const an_conv_dims *d) {
  return ((d->h + tile_side(d) - 1) / tile_side(d)) * ((d->w + tile_side(d) - 1) / tile_side(d));
}

/* cl/winograd.cl's kernel `what` for this shape's tile: winograd<a>_<what>[_gpu], a = m+r-1 points */
typedef struct kernel_name {
  char s[48];
} kernel_name;

static kernel_name name_of(const wino_shape *s, const char *what, int gpu) {
  kernel_name k;
  snprintf(k.s, sizeof k.s, "winograd%d_%s%s", s->m + s->r - 1, what, gpu ? "_gpu" : "");
  return k;
}

/* 1 when one image's tiles of the smaller side hold 1024 floats or more: positions then spaced */
static int spread(const an_conv_dims *d) {
  return (size_t)an_wino_tiles(d) * (size_t)(d->c < d->oc ? d->c : d->oc) >= 1024;
}

/* A position's stride for a (rows, T) block of rows_floats: rounded up to 1024 floats, plus 16, when
 * spread */
static size_t pos_stride(const wino_shape *s, size_t rows_floats) {
  return s->spread ? an_round_up(rows_floats, 1024) + 16 : rows_floats;
}

size_t an_wino_filter_floats(const an_conv_dims *d) { return (size_t)positions(d) * d->oc * (d->c / d->groups); }

/* the positions' padding (pos_stride) is at most 1040 floats per position in each of v and m */
size_t an_wino_fixed_floats(const an_conv_dims *d) {
  return an_wino_filter_floats(d) + (spread(d) ? (size_t)positions(d) * 2 * 1040 : 0);
}

size_t an_wino_backward_fixed_floats(const an_conv_dims *d) {
  return an_wino_fixed_floats(d) + an_wino_filter_floats(d);
}

size_t an_wino_image_floats(const an_conv_dims *d) {
  return (size_t)positions(d) * an_wino_tiles(d) * ((size_t)d->c + d->oc);
}

an_status an_wino_filters(an_runtime *rt, const an_conv_dims *d, an_wino_pass pass, an_buf weight, an_buf u) {
  const wino_shape s = shape_of(d, pass);
  const int in_g = s.ci / s.groups;
  /* (input channel in the group, output channel), whole work-groups of 64 (the kernel skips the rest) */
  const size_t global[2] = {an_round_up((size_t)in_g, AN_GPU_WGS), (size_t)s.co}, local[2] = {AN_GPU_WGS, 1};
  const an_arg args[] = {an_arg_mem(weight.mem),
                         an_arg_ulong(weight.off),
                         an_arg_mem(u.mem),
                         an_arg_ulong(u.off),
                         an_arg_int(s.co),
                         an_arg_int(in_g),
                         an_arg_int(d->c / d->groups),
                         an_arg_int(d->oc / d->groups),
                         an_arg_int(pass == AN_WINO_FORWARD         ? 0
                                    : pass == AN_WINO_BACKWARD_DATA ? 1
                                                                    : 2)};
  return an_launch(rt, name_of(&s, "filter", 0).s, 2, global, local, args);
}

int an_wino_prepacked(const an_runtime *rt, const an_conv_dims *d) {
  return an_panel_batch_ok(rt, 0, 0, (size_t)(d->oc / d->groups), 1, (size_t)(d->c / d->groups));
}

size_t an_wino_prepared_floats(const an_runtime *rt, const an_conv_dims *d) {
  if (!an_wino_prepacked(rt, d)) return an_wino_filter_floats(d);
  return (size_t)positions(d) * d->groups *
         an_panel_packed_floats((size_t)(d->oc / d->groups), (size_t)(d->c / d->groups));
}

an_status an_wino_prepare(an_runtime *rt, const an_conv_dims *d, an_buf weight, an_buf prepared, an_buf scratch) {
  if (!an_wino_prepacked(rt, d)) return an_wino_filters(rt, d, AN_WINO_FORWARD, weight, prepared);
  AN_TRY(an_wino_filters(rt, d, AN_WINO_FORWARD, weight, scratch)); /* U (P, CO, CI/g) */
  const size_t co_g = (size_t)(d->oc / d->groups), ci_g = (size_t)(d->c / d->groups), p = (size_t)positions(d);
  for (int g = 0; g < d->groups; g++) /* group g's P filters (CO/g, CI/g), packed one after another */
    AN_TRY(an_panel_pack_batched(rt, an_at(scratch.mem, scratch.off + g * co_g * ci_g), ci_g, (size_t)d->oc * ci_g,
                                 co_g, ci_g, p,
                                 an_at(prepared.mem, prepared.off + g * p * an_panel_packed_floats(co_g, ci_g))));
  return AN_OK;
}

/* group g's GEMM at position xi (0 … P-1) over t tiles; offsets from u's and the region's */
static an_gemm_call gemm_of(const wino_shape *s, size_t u_off, size_t region_off, size_t t, int g, int xi) {
  const size_t ci_g = (size_t)(s->ci / s->groups), co_g = (size_t)(s->co / s->groups);
  const size_t sv = pos_stride(s, (size_t)s->ci * t), sm = pos_stride(s, (size_t)s->co * t);
  const size_t v = region_off, m = region_off + (size_t)s->p * sv;
  const an_gemm_call c = {0,    0,
                          co_g, t,
                          ci_g, u_off + (size_t)xi * s->co * ci_g + g * co_g * ci_g,
                          ci_g, v + (size_t)xi * sv + g * ci_g * t,
                          t,    m + (size_t)xi * sm + g * co_g * t,
                          t};
  return c;
}

int an_wino_gemms(const an_conv_dims *d, an_wino_pass pass, size_t u_off, size_t region_off, int nb,
                  an_gemm_call *out, int n, int max) {
  const wino_shape s = shape_of(d, pass);
  const size_t t = (size_t)nb * s.th * s.tw;
  for (int g = 0; g < s.groups; g++)
    for (int xi = 0; xi < s.p; xi++) {
      const an_gemm_call c = gemm_of(&s, u_off, region_off, t, g, xi);
      n = an_gemm_call_add(out, n, max, 0, 0, c.m, c.n, c.k, c.a_off, c.lda, c.b_off, c.ldb, c.c_off, c.ldc);
    }
  return n;
}

/* Tiles in, positions out: what = "input" (V = Bᵀ d B) or "grad_output" (dM = A dY Aᵀ), the kernel's
 * CPU or GPU variant (rt->winograd_variant), over `channels` planes of src (N, channels, H, W), written
 * at dst (P, channels, T) with positions `stride` apart; use_mask: src through the ReLU (mask > 0) */
static an_status transform_tiles(an_runtime *rt, const char *what, const an_conv_dims *d, const wino_shape *s,
                                 int channels, an_buf src, an_buf mask, int use_mask, an_buf dst, size_t stride,
                                 int n0, int nb) {
  const size_t t_round = an_round_up((size_t)nb * s->th * s->tw, AN_GPU_WGS);
  const size_t global[2] = {(size_t)channels, (size_t)nb}, global_gpu[2] = {t_round, (size_t)channels}; /* cl/ */
  const size_t local_gpu[2] = {AN_GPU_WGS, 1};
  const an_arg args[] = {an_arg_mem(src.mem),
                         an_arg_ulong(src.off),
                         an_arg_mem(use_mask ? mask.mem : src.mem),
                         an_arg_ulong(use_mask ? mask.off : src.off),
                         an_arg_int(use_mask),
                         an_arg_mem(dst.mem),
                         an_arg_ulong(dst.off),
                         an_arg_ulong(stride),
                         an_arg_int(channels),
                         an_arg_int(d->h),
                         an_arg_int(d->w),
                         an_arg_int(s->th),
                         an_arg_int(s->tw),
                         an_arg_int(n0),
                         an_arg_int(nb)};
  if (rt->winograd_variant != AN_KERNELS_GPU) return an_launch(rt, name_of(s, what, 0).s, 2, global, NULL, args);
  return an_launch(rt, name_of(s, what, 1).s, 2, global_gpu, local_gpu, args);
}

an_status an_wino_chunk(an_runtime *rt, const an_conv_dims *d, an_wino_pass pass, an_buf dst, an_buf src,
                        an_buf mask, an_buf bias, int relu, an_buf u, an_buf packed, an_buf region, int n0, int nb) {
  const wino_shape s = shape_of(d, pass);
  const size_t t = (size_t)nb * s.th * s.tw, t_round = an_round_up(t, AN_GPU_WGS);
  const size_t sv = pos_stride(&s, (size_t)s.ci * t), sm = pos_stride(&s, (size_t)s.co * t);
  const an_buf v = region;                                           /* (P, CI, T), positions sv apart */
  const an_buf m = an_at(region.mem, region.off + (size_t)s.p * sv); /* (P, CO, T), positions sm apart */
  const int use_mask = pass != AN_WINO_FORWARD && relu;
  const int gpu = rt->winograd_variant == AN_KERNELS_GPU;
  const size_t local_gpu[2] = {AN_GPU_WGS, 1};
  AN_TRY(transform_tiles(rt, "input", d, &s, s.ci, src, mask, use_mask, v, sv, n0, nb));
  /* P GEMMs per group, their operands a step apart: on the project's GEMM one launch for the P
   * (an_gemm_batched), on CLBlast one an_gemm each: its strided-batched GEMM (one call per group)
   * computed wrong products once the tuning had switched Xgemm's parameters between shapes
   * (test_models), and was no faster here (docs/BENCHMARKS.md) */
  for (int g = 0; g < s.groups; g++) {
    const an_gemm_call c = gemm_of(&s, u.off, region.off, t, g, 0), c1 = gemm_of(&s, u.off, region.off, t, g, 1);
    if (packed.mem) {
      const an_buf ap = an_at(packed.mem, packed.off + g * (size_t)s.p * an_panel_packed_floats(c.m, c.k));
      AN_TRY(an_gemm_batched_packed(rt, c.m, c.n, c.k, ap, an_at(u.mem, c.a_off), c.lda, c1.a_off - c.a_off,
                                    an_at(v.mem, c.b_off), c.ldb, c1.b_off - c.b_off, 0.0f, an_at(m.mem, c.c_off),
                                    c.ldc, c1.c_off - c.c_off, s.p));
      continue;
    }
    AN_TRY(an_gemm_batched(rt, 0, 0, c.m, c.n, c.k, 1.0f, an_at(u.mem, c.a_off), c.lda, c1.a_off - c.a_off,
                           an_at(v.mem, c.b_off), c.ldb, c1.b_off - c.b_off, 0.0f, an_at(m.mem, c.c_off), c.ldc,
                           c1.c_off - c.c_off, s.p));
  }
  const int use_bias = pass == AN_WINO_FORWARD;
  const size_t global[2] = {(size_t)s.co, (size_t)nb}, global_gpu[2] = {t_round, (size_t)s.co}; /* see cl/ */
  const an_arg args[] = {an_arg_mem(m.mem),
                         an_arg_ulong(m.off),
                         an_arg_mem(use_bias ? bias.mem : m.mem),
                         an_arg_ulong(use_bias ? bias.off : m.off),
                         an_arg_int(use_bias),
                         an_arg_mem(dst.mem),
                         an_arg_ulong(dst.off),
                         an_arg_ulong(sm),
                         an_arg_int(s.co),
                         an_arg_int(d->h),
                         an_arg_int(d->w),
                         an_arg_int(s.th),
                         an_arg_int(s.tw),
                         an_arg_int(n0),
                         an_arg_int(nb),
                         an_arg_int(use_bias && relu)};
  if (gpu) return an_launch(rt, name_of(&s, "output", 1).s, 2, global_gpu, local_gpu, args);
  return an_launch(rt, name_of(&s, "output", 0).s, 2, global, NULL, args);
}

/* Weight gradient: the forward pass's GEMM M[ξ] = U[ξ] · V[ξ] read backwards, dU[ξ] (CO/g, CI/g) =
 * dM[ξ] (CO/g, T) · V[ξ]ᵀ with dM = A dY Aᵀ: one NT per position and group, K = the chunk's tiles,
 * accumulating over the chunks (beta 1 after the first). Operands as gemm_of's, their roles swapped. */
static an_gemm_call weight_gemm_of(const wino_shape *s, size_t du_off, size_t region_off, size_t t, int g, int xi) {
  const an_gemm_call f = gemm_of(s, du_off, region_off, t, g, xi);
  const an_gemm_call c = {0, 1, f.m, f.k, f.n, f.c_off, f.ldc, f.b_off, f.ldb, f.a_off, f.lda};
  return c;
}

/* The adjoint input gradient: dV[ξ] (CI/g, T) = Uᵀ[ξ] (CI/g, CO/g) · dM[ξ] (CO/g, T), written over V:
 * gemm_of's operands (Uᵀ's offsets are U's, CO·CI/g per position) with B and C swapped */
static an_gemm_call adjoint_gemm_of(const wino_shape *s, size_t ut_off, size_t region_off, size_t t, int g, int xi) {
  const an_gemm_call f = gemm_of(s, ut_off, region_off, t, g, xi);
  const an_gemm_call c = {0, 0, f.k, f.n, f.m, f.a_off, f.m, f.c_off, f.ldc, f.b_off, f.ldb};
  return c;
}

int an_wino_weight_gemms(const an_conv_dims *d, size_t du_off, size_t region_off, int nb, int with_dinp,
                         size_t ut_off, an_gemm_call *out, int n, int max) {
  const wino_shape s = shape_of(d, AN_WINO_FORWARD);
  const size_t t = (size_t)nb * s.th * s.tw;
  for (int pass = 0; pass < 1 + !!with_dinp; pass++)
    for (int g = 0; g < s.groups; g++)
      for (int xi = 0; xi < s.p; xi++) {
        const an_gemm_call c = pass ? adjoint_gemm_of(&s, ut_off, region_off, t, g, xi)
                                    : weight_gemm_of(&s, du_off, region_off, t, g, xi);
        n = an_gemm_call_add(out, n, max, c.trans_a, c.trans_b, c.m, c.n, c.k, c.a_off, c.lda, c.b_off, c.ldb,
                             c.c_off, c.ldc);
      }
  return n;
}

an_status an_wino_weight_chunk(an_runtime *rt, const an_conv_dims *d, an_buf inp, an_buf dout, an_buf out, int relu,
                               an_buf du, an_buf region, int n0, int nb, int accumulate, an_buf dinp, an_buf ut) {
  const wino_shape s = shape_of(d, AN_WINO_FORWARD);
  const size_t t = (size_t)nb * s.th * s.tw;
  const size_t sv = pos_stride(&s, (size_t)s.ci * t), sm = pos_stride(&s, (size_t)s.co * t);
  const an_buf v = region;                                           /* (P, C, T), positions sv apart */
  const an_buf m = an_at(region.mem, region.off + (size_t)s.p * sv); /* (P, OC, T) dM, positions sm apart */
  AN_TRY(transform_tiles(rt, "input", d, &s, s.ci, inp, inp, 0, v, sv, n0, nb));
  AN_TRY(transform_tiles(rt, "grad_output", d, &s, s.co, dout, out, relu, m, sm, n0, nb));
  for (int g = 0; g < s.groups; g++)
    for (int xi = 0; xi < s.p; xi++) {
      const an_gemm_call c = weight_gemm_of(&s, du.off, region.off, t, g, xi);
      AN_TRY(an_gemm(rt, 0, 1, c.m, c.n, c.k, 1.0f, an_at(m.mem, c.a_off), c.lda, an_at(v.mem, c.b_off), c.ldb,
                     accumulate ? 1.0f : 0.0f, an_at(du.mem, c.c_off), c.ldc));
    }
  if (!dinp.mem) return AN_OK;
  for (int g = 0; g < s.groups; g++) { /* dV over V, which the weight gradient no longer needs; a batch of P */
    const an_gemm_call c = adjoint_gemm_of(&s, ut.off, region.off, t, g, 0);
    const an_gemm_call c1 = adjoint_gemm_of(&s, ut.off, region.off, t, g, 1);
    AN_TRY(an_gemm_batched(rt, 0, 0, c.m, c.n, c.k, 1.0f, an_at(ut.mem, c.a_off), c.lda, c1.a_off - c.a_off,
                           an_at(m.mem, c.b_off), c.ldb, c1.b_off - c.b_off, 0.0f, an_at(v.mem, c.c_off), c.ldc,
                           c1.c_off - c.c_off, s.p));
  }
  const size_t global[2] = {(size_t)s.ci, (size_t)nb}; /* (channel, image): a plane each, both variants */
  const an_arg args[] = {an_arg_mem(v.mem),      an_arg_ulong(v.off), an_arg_ulong(sv), an_arg_mem(dinp.mem),
                         an_arg_ulong(dinp.off), an_arg_int(s.ci),    an_arg_int(d->h), an_arg_int(d->w),
                         an_arg_int(s.th),       an_arg_int(s.tw),    an_arg_int(n0),   an_arg_int(nb)};
  return an_launch(rt, name_of(&s, "input_grad", 0).s, 2, global, NULL, args);
}

an_status an_wino_filter_grad(an_runtime *rt, const an_conv_dims *d, an_buf du, an_buf dweight) {
  const int in_g = d->c / d->groups;
  /* (input channel in the group, output channel), whole work-groups of 64 (the kernel skips the rest) */
  const size_t global[2] = {an_round_up((size_t)in_g, AN_GPU_WGS), (size_t)d->oc}, local[2] = {AN_GPU_WGS, 1};
  const an_arg args[] = {an_arg_mem(du.mem),        an_arg_ulong(du.off), an_arg_mem(dweight.mem),
                         an_arg_ulong(dweight.off), an_arg_int(d->oc),    an_arg_int(in_g)};
  const wino_shape s = shape_of(d, AN_WINO_FORWARD);
  return an_launch(rt, name_of(&s, "filter_grad", 0).s, 2, global, local, args);
}
