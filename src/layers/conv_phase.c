/* A strided convolution's forward pass as phase planes and one in-place GEMM (see conv_phase.h).
 *
 * With S the stride, K the kernel, Q = ceil(K/S) - 1: output (oy, ox)'s tap (ki, kj) reads the padded
 * input's pixel (S·oy + ki, S·ox + kj) = phase plane (ch, ki mod S, kj mod S)'s pixel (oy + ki/S,
 * ox + kj/S). Per image and chunk the workspace holds
 *   rows (C·K·K ints, first)        where row kk = (ch·K + ki)·K + kj of the implicit col starts in the
 *                                   planes: plane·P + (ki/S)·WQ + kj/S (conv_phase_rows)
 *   ph   (nb, C·S·S, P)             the planes, HQ x WQ = (OH + Q) x (OW + Q), zero past, P = plane stride
 * and the implicit col's row kk, column j = oy·WQ + ox (OH·WQ columns per image) is ph[rows[kk] + j]:
 * columns ox ≥ OW are computed and dropped, 3.6 % more multiplies for conv1 (57 against 55).
 * The weight gradient's workspace holds, after rows and ph,
 *   dy   (nb, OC, OH·WQ)            the output gradient through the ReLU, 0 at the dropped columns
 *   w    (nb, OC, C·K·K)            each image's part of the gradient, summed into dweight
 *   db   (nb, OC)                   each image's part of the bias gradient, summed into dbias */
#include "alexnet/layers.h"
#include "runtime/check.h"
#include "runtime/launch.h"
#include "gemm/gemm.h"
#include "layers/conv_phase.h"

typedef struct phase_geom {
  int q, hq, wq; /* Q, the planes' rows and columns */
  size_t plane;  /* P: HQ·WQ + Q (the last tap's reads past a plane's end, on dropped columns), rounded to 16 */
  size_t k;      /* the reduction, C·K·K */
} phase_geom;

static phase_geom geom_of(const an_conv_dims *d) {
  phase_geom g;
  g.q = (d->kh + d->stride - 1) / d->stride - 1;
  g.hq = d->oh + g.q, g.wq = d->ow + g.q;
  g.plane = an_round_up((size_t)g.hq * g.wq + g.q, 16);
  g.k = (size_t)d->c * d->kh * d->kw;
  return g;
}

int an_conv_phase_applies(const an_runtime *rt, const an_conv_dims *d) {
  if (!rt->own_gemm || d->stride < 2 || d->groups != 1 || d->kh != d->kw || d->kh < d->stride) return 0;
  const phase_geom g = geom_of(d); /* int offsets in the kernels: one image's planes */
  return an_conv_phase_image_floats(d) < (1u << 30) && (size_t)d->oh * g.wq < (1u << 30);
}

size_t an_conv_phase_fixed_floats(const an_conv_dims *d) { return an_round_up(geom_of(d).k, 16); }

size_t an_conv_phase_image_floats(const an_conv_dims *d) {
  return (size_t)d->c * d->stride * d->stride * geom_of(d).plane;
}

an_gemm_call an_conv_phase_call(const an_conv_dims *d, size_t weight_off, size_t work_off, size_t out_off, int n0,
                                int nb) {
  const size_t ohw = (size_t)d->oh * d->ow, k = geom_of(d).k;
  const an_gemm_call c = {0,          0, (size_t)d->oc, (size_t)nb * ohw, k,
                          weight_off, k, work_off,      (size_t)nb * ohw, out_off + (size_t)n0 * d->oc * ohw,
                          ohw};
  return c;
}

/* rows and ph (the workspace's start) for images n0 … n0+nb-1 */
static an_status planes(an_runtime *rt, const an_conv_dims *d, an_buf inp, an_buf rows, an_buf ph, int n0, int nb) {
  const phase_geom g = geom_of(d);
  const int s = d->stride;
  {
    const size_t global[3] = {(size_t)d->kw, (size_t)d->kh, (size_t)d->c}; /* (kj, ki, ch) */
    const an_arg args[] = {an_arg_mem(rows.mem), an_arg_ulong(rows.off), an_arg_int(d->kh),
                           an_arg_int(s),        an_arg_int(g.wq),       an_arg_int((int)g.plane)};
    AN_TRY(an_launch(rt, "conv_phase_rows", 3, global, NULL, args));
  }
  {
    const size_t global[2] = {(size_t)d->c * s * s, (size_t)nb}; /* (plane, image) */
    const an_arg args[] = {an_arg_mem(inp.mem), an_arg_ulong(inp.off), an_arg_mem(ph.mem), an_arg_ulong(ph.off),
                           an_arg_int(d->c),    an_arg_int(d->h),      an_arg_int(d->w),   an_arg_int(s),
                           an_arg_int(d->pad),  an_arg_int(g.hq),      an_arg_int(g.wq),   an_arg_int((int)g.plane),
                           an_arg_int(n0)};
    return an_launch(rt, "conv_phase", 2, global, NULL, args);
  }
}

an_status an_conv_phase_forward(an_runtime *rt, const an_conv_dims *d, an_buf out, an_buf inp, an_buf weight,
                                an_buf bias, int relu, an_buf work, int n0, int nb) {
  const phase_geom g = geom_of(d);
  const int kk = (int)g.k, m = d->oc, n = d->oh * g.wq;
  const an_buf rows = work, ph = an_at(work.mem, work.off + an_conv_phase_fixed_floats(d));
  AN_TRY(planes(rt, d, inp, rows, ph, n0, nb));
  const an_gemm_call call = an_conv_phase_call(d, weight.off, work.off, out.off, n0, nb);
  AN_TRY(an_gemm_own_begin(rt, &call)); /* the packing and the product count as the GEMM, as in panel.c */
  const size_t panels = ((size_t)m + AN_PANEL_RM - 1) / AN_PANEL_RM;
  AN_TRY(an_panel_pack_a(rt, weight, g.k, (size_t)m, g.k)); /* the weight (OC, K) as gemm_panel's A */
  /* one work-item per group, the panels innermost (as an_panel_gemm's rows_first) */
  const size_t global[3] = {panels, ((size_t)n + AN_PANEL_NC - 1) / AN_PANEL_NC, (size_t)nb}, one[3] = {1, 1, 1};
  const an_arg args[] = {an_arg_mem(rt->gemm_temp),
                         an_arg_ulong(0),
                         an_arg_mem(ph.mem),
                         an_arg_ulong(ph.off),
                         an_arg_ulong(an_conv_phase_image_floats(d)),
                         an_arg_mem(rows.mem),
                         an_arg_ulong(rows.off),
                         an_arg_mem(bias.mem),
                         an_arg_ulong(bias.off),
                         an_arg_mem(out.mem),
                         an_arg_ulong(out.off),
                         an_arg_int(m),
                         an_arg_int(n),
                         an_arg_int(kk),
                         an_arg_int(g.wq),
                         an_arg_int(d->ow),
                         an_arg_int(n0),
                         an_arg_int(relu != 0)};
  AN_TRY(an_launch(rt, "gemm_conv_phase", 3, global, one, args));
  return an_gemm_own_end(rt);
}

size_t an_conv_phase_dw_image_floats(const an_conv_dims *d) {
  const phase_geom g = geom_of(d);
  return an_conv_phase_image_floats(d) + (size_t)d->oc * (d->oh * (size_t)g.wq + g.k + 1);
}

an_gemm_call an_conv_phase_dw_call(const an_conv_dims *d, size_t work_off, size_t dweight_off, int nb) {
  const size_t ohw = (size_t)d->oh * d->ow, k = geom_of(d).k, cols = (size_t)nb * ohw;
  const an_gemm_call c = {0, 1, (size_t)d->oc, k, cols, work_off, cols, work_off, cols, dweight_off, k};
  return c;
}

an_status an_conv_phase_weight_grad(an_runtime *rt, const an_conv_dims *d, an_buf dweight, an_buf dbias, an_buf dout,
                                    an_buf out, an_buf inp, int relu, an_buf work, int n0, int nb) {
  const phase_geom g = geom_of(d);
  const int m = d->oc, n = d->oh * g.wq, kk = (int)g.k;
  const size_t ph_image = an_conv_phase_image_floats(d);
  const an_buf rows = work, ph = an_at(work.mem, work.off + an_conv_phase_fixed_floats(d));
  const an_buf dy = an_at(ph.mem, ph.off + (size_t)nb * ph_image);
  const an_buf w = an_at(dy.mem, dy.off + (size_t)nb * m * n), db = an_at(w.mem, w.off + (size_t)nb * m * kk);
  AN_TRY(planes(rt, d, inp, rows, ph, n0, nb));
  {
    const size_t global[2] = {(size_t)m, (size_t)nb}; /* (channel, image) */
    const an_arg args[] = {an_arg_mem(dout.mem), an_arg_ulong(dout.off), an_arg_mem(out.mem), an_arg_ulong(out.off),
                           an_arg_mem(dy.mem),   an_arg_ulong(dy.off),   an_arg_mem(db.mem),  an_arg_ulong(db.off),
                           an_arg_int(m),        an_arg_int(d->oh),      an_arg_int(d->ow),   an_arg_int(g.wq),
                           an_arg_int(n0),       an_arg_int(relu != 0)};
    AN_TRY(an_launch(rt, "conv_phase_grad_prologue", 2, global, NULL, args));
  }
  {
    const size_t global[2] = {(size_t)m, 1}; /* dbias += Σ_img db[img] */
    const an_arg args[] = {an_arg_mem(dbias.mem), an_arg_ulong(dbias.off), an_arg_int(m),
                           an_arg_mem(db.mem),    an_arg_ulong(db.off),    an_arg_int(nb),
                           an_arg_int(1),         an_arg_int(m),           an_arg_float(1.0f)};
    AN_TRY(an_launch(rt, "gemm_sum_slices", 2, global, NULL, args));
  }
  const an_gemm_call call = an_conv_phase_dw_call(d, work.off, dweight.off, nb);
  AN_TRY(an_gemm_own_begin(rt, &call));
  {
    const size_t global[3] = {((size_t)m + AN_DOT_DM - 1) / AN_DOT_DM, (g.k + AN_DOT_DN - 1) / AN_DOT_DN,
                              (size_t)nb};
    const size_t one[3] = {1, 1, 1};
    const an_arg args[] = {an_arg_mem(dy.mem),     an_arg_ulong(dy.off),   an_arg_mem(ph.mem),
                           an_arg_ulong(ph.off),   an_arg_ulong(ph_image), an_arg_mem(rows.mem),
                           an_arg_ulong(rows.off), an_arg_mem(w.mem),      an_arg_ulong(w.off),
                           an_arg_int(m),          an_arg_int(n),          an_arg_int(kk)};
    AN_TRY(an_launch(rt, "gemm_dot_phase", 3, global, one, args));
  }
  {
    const size_t global[2] = {g.k, (size_t)m}; /* dweight += Σ_img w[img] */
    const an_arg args[] = {an_arg_mem(dweight.mem), an_arg_ulong(dweight.off),
                           an_arg_int(kk),          an_arg_mem(w.mem),
                           an_arg_ulong(w.off),     an_arg_int(nb),
                           an_arg_int(m),           an_arg_int(kk),
                           an_arg_float(1.0f)};
    AN_TRY(an_launch(rt, "gemm_sum_slices", 2, global, NULL, args));
  }
  return an_gemm_own_end(rt);
}
