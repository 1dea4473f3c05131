/* The plain-C reference: see ref.h. Loops are written for the reader first; they keep the innermost
 * index contiguous only so that AlexNet's own shapes run in seconds. */
#include "ref.h"

#include <math.h>
#include <string.h>

#include "alexnet/layers.h" /* an_dropout_uniform */

ref_conv_dims ref_conv_dims_make(int n, int c, int h, int w, int oc, int k, int stride, int pad, int groups) {
  ref_conv_dims d;
  d.n = n, d.c = c, d.h = h, d.w = w;
  d.oc = oc, d.kh = k, d.kw = k;
  d.stride = stride, d.pad = pad, d.groups = groups;
  d.oh = (h + 2 * pad - k) / stride + 1;
  d.ow = (w + 2 * pad - k) / stride + 1;
  return d;
}

/* ---- convolution ---- */

void ref_conv_forward(double *out, const double *inp, const double *weight, const double *bias,
                      const ref_conv_dims *d, int relu) {
  int cpg = d->c / d->groups;   /* input channels per group */
  int ocpg = d->oc / d->groups; /* output channels per group */
  for (int b = 0; b < d->n; b++) {
    for (int o = 0; o < d->oc; o++) {
      int g = o / ocpg;
      for (int oy = 0; oy < d->oh; oy++) {
        for (int ox = 0; ox < d->ow; ox++) {
          double acc = bias[o];
          for (int ic = 0; ic < cpg; ic++) {
            const double *x = inp + ((size_t)b * d->c + (size_t)g * cpg + ic) * d->h * d->w;
            const double *wk = weight + ((size_t)o * cpg + ic) * d->kh * d->kw;
            for (int ky = 0; ky < d->kh; ky++) {
              int iy = oy * d->stride - d->pad + ky;
              if (iy < 0 || iy >= d->h) continue;
              for (int kx = 0; kx < d->kw; kx++) {
                int ix = ox * d->stride - d->pad + kx;
                if (ix < 0 || ix >= d->w) continue;
                acc += wk[ky * d->kw + kx] * x[(size_t)iy * d->w + ix];
              }
            }
          }
          if (relu && acc < 0.0) acc = 0.0;
          out[(((size_t)b * d->oc + o) * d->oh + oy) * d->ow + ox] = acc;
        }
      }
    }
  }
}

void ref_conv_backward(double *dinp, double *dweight, double *dbias, const double *dout, const double *out,
                       const double *inp, const double *weight, const ref_conv_dims *d, int relu) {
  int cpg = d->c / d->groups;
  int ocpg = d->oc / d->groups;
  if (dinp) memset(dinp, 0, sizeof(double) * (size_t)d->n * d->c * d->h * d->w);
  for (int b = 0; b < d->n; b++) {
    for (int o = 0; o < d->oc; o++) {
      int g = o / ocpg;
      for (int oy = 0; oy < d->oh; oy++) {
        for (int ox = 0; ox < d->ow; ox++) {
          size_t oi = (((size_t)b * d->oc + o) * d->oh + oy) * d->ow + ox;
          double grad = dout[oi];
          if (relu && !(out[oi] > 0.0)) grad = 0.0;
          dbias[o] += grad;
          for (int ic = 0; ic < cpg; ic++) {
            size_t plane = ((size_t)b * d->c + (size_t)g * cpg + ic) * d->h * d->w;
            size_t wplane = ((size_t)o * cpg + ic) * d->kh * d->kw;
            for (int ky = 0; ky < d->kh; ky++) {
              int iy = oy * d->stride - d->pad + ky;
              if (iy < 0 || iy >= d->h) continue;
              for (int kx = 0; kx < d->kw; kx++) {
                int ix = ox * d->stride - d->pad + kx;
                if (ix < 0 || ix >= d->w) continue;
                size_t ii = plane + (size_t)iy * d->w + ix;
                size_t wi = wplane + (size_t)ky * d->kw + kx;
                dweight[wi] += grad * inp[ii];
                if (dinp) dinp[ii] += grad * weight[wi];
              }
            }
          }
        }
      }
    }
  }
}

/* ---- fully connected ---- */

void ref_fc_forward(double *out, const double *inp, const double *weight, const double *bias, int n, int in,
                    int out_features, int relu) {
  for (int b = 0; b < n; b++) {
    const double *x = inp + (size_t)b * in;
    for (int o = 0; o < out_features; o++) {
      const double *wrow = weight + (size_t)o * in;
      double acc = bias[o];
      for (int i = 0; i < in; i++) acc += x[i] * wrow[i];
      if (relu && acc < 0.0) acc = 0.0;
      out[(size_t)b * out_features + o] = acc;
    }
  }
}

void ref_fc_backward(double *dinp, double *dweight, double *dbias, const double *dout, const double *out,
                     const double *inp, const double *weight, int n, int in, int out_features, int relu) {
  if (dinp) memset(dinp, 0, sizeof(double) * (size_t)n * in);
  for (int b = 0; b < n; b++) {
    const double *x = inp + (size_t)b * in;
    for (int o = 0; o < out_features; o++) {
      size_t oi = (size_t)b * out_features + o;
      double grad = dout[oi];
      if (relu && !(out[oi] > 0.0)) grad = 0.0;
      dbias[o] += grad;
      double *dwrow = dweight + (size_t)o * in;
      const double *wrow = weight + (size_t)o * in;
      for (int i = 0; i < in; i++) dwrow[i] += grad * x[i];
      if (dinp) {
        double *dx = dinp + (size_t)b * in;
        for (int i = 0; i < in; i++) dx[i] += grad * wrow[i];
      }
    }
  }
}

/* ---- local response normalisation ---- */

/* The channels [lo, hi] whose squares enter channel ch's sum, clipped to [0, C). */
static void lrn_window(int ch, int c, int size, int *lo, int *hi) {
  *lo = ch - size / 2;
  *hi = ch + (size - 1) / 2;
  if (*lo < 0) *lo = 0;
  if (*hi > c - 1) *hi = c - 1;
}

static double lrn_scale_at(const double *x /* channel 0 of one pixel */, size_t cstride, int ch, int c, int size,
                           double alpha, double k) {
  int lo, hi;
  lrn_window(ch, c, size, &lo, &hi);
  double sum = 0.0;
  for (int j = lo; j <= hi; j++) sum += x[j * cstride] * x[j * cstride];
  return k + alpha / size * sum;
}

void ref_lrn_forward(double *out, double *scale, const double *inp, int n, int c, int h, int w, int size,
                     double alpha, double beta, double k) {
  size_t hw = (size_t)h * w;
  for (int b = 0; b < n; b++) {
    for (size_t p = 0; p < hw; p++) {
      const double *x = inp + (size_t)b * c * hw + p;
      for (int ch = 0; ch < c; ch++) {
        size_t i = ((size_t)b * c + ch) * hw + p;
        double s = lrn_scale_at(x, hw, ch, c, size, alpha, k);
        out[i] = inp[i] * pow(s, -beta);
        if (scale) scale[i] = s;
      }
    }
  }
}

/* d out_c / d x_j = [c == j] s_c^-beta - 2·alpha·beta/size · x_c · x_j · s_c^(-beta-1) for j in c's
 * window, so dinp_j = dout_j s_j^-beta - 2·alpha·beta/size · x_j · Σ_{c : j ∈ window(c)} dout_c x_c
 * s_c^(-beta-1); the loop over c scatters each c's term to its window. */
void ref_lrn_backward(double *dinp, const double *dout, const double *inp, int n, int c, int h, int w, int size,
                      double alpha, double beta, double k) {
  size_t hw = (size_t)h * w;
  double coef = 2.0 * alpha * beta / size;
  for (int b = 0; b < n; b++) {
    for (size_t p = 0; p < hw; p++) {
      size_t base = (size_t)b * c * hw + p;
      const double *x = inp + base;
      for (int ch = 0; ch < c; ch++) dinp[base + ch * hw] = 0.0;
      for (int ch = 0; ch < c; ch++) {
        size_t i = base + ch * hw;
        double s = lrn_scale_at(x, hw, ch, c, size, alpha, k);
        dinp[i] += dout[i] * pow(s, -beta);
        double t = coef * dout[i] * inp[i] * pow(s, -beta - 1.0);
        int lo, hi;
        lrn_window(ch, c, size, &lo, &hi);
        for (int j = lo; j <= hi; j++) dinp[base + j * hw] -= t * x[j * hw];
      }
    }
  }
}

/* ---- max-pool ---- */

/* Index in the plane of the first maximum of the window at (oy, ox). */
static size_t maxpool_argmax(const double *plane, int w, int k, int stride, int oy, int ox) {
  size_t best = (size_t)oy * stride * w + (size_t)ox * stride;
  for (int ky = 0; ky < k; ky++) {
    for (int kx = 0; kx < k; kx++) {
      size_t i = (size_t)(oy * stride + ky) * w + (size_t)(ox * stride + kx);
      if (plane[i] > plane[best]) best = i;
    }
  }
  return best;
}

void ref_maxpool_forward(double *out, const double *inp, int n, int c, int h, int w, int k, int stride) {
  int oh = (h - k) / stride + 1, ow = (w - k) / stride + 1;
  for (size_t p = 0; p < (size_t)n * c; p++) {
    const double *plane = inp + p * h * w;
    for (int oy = 0; oy < oh; oy++)
      for (int ox = 0; ox < ow; ox++)
        out[(p * oh + oy) * ow + ox] = plane[maxpool_argmax(plane, w, k, stride, oy, ox)];
  }
}

void ref_maxpool_backward(double *dinp, const double *dout, const double *inp, int n, int c, int h, int w, int k,
                          int stride) {
  int oh = (h - k) / stride + 1, ow = (w - k) / stride + 1;
  memset(dinp, 0, sizeof(double) * (size_t)n * c * h * w);
  for (size_t p = 0; p < (size_t)n * c; p++) {
    const double *plane = inp + p * h * w;
    for (int oy = 0; oy < oh; oy++)
      for (int ox = 0; ox < ow; ox++)
        dinp[p * h * w + maxpool_argmax(plane, w, k, stride, oy, ox)] += dout[(p * oh + oy) * ow + ox];
  }
}

/* ---- adaptive average pool ---- */

static int adaptive_start(int i, int in, int out) { return (int)(((long long)i * in) / out); }
static int adaptive_end(int i, int in, int out) { return (int)(((long long)(i + 1) * in + out - 1) / out); }

void ref_avgpool_forward(double *out, const double *inp, int n, int c, int h, int w, int oh, int ow) {
  for (size_t p = 0; p < (size_t)n * c; p++) {
    const double *plane = inp + p * h * w;
    for (int oy = 0; oy < oh; oy++) {
      int y0 = adaptive_start(oy, h, oh), y1 = adaptive_end(oy, h, oh);
      for (int ox = 0; ox < ow; ox++) {
        int x0 = adaptive_start(ox, w, ow), x1 = adaptive_end(ox, w, ow);
        double sum = 0.0;
        for (int y = y0; y < y1; y++)
          for (int x = x0; x < x1; x++) sum += plane[(size_t)y * w + x];
        out[(p * oh + oy) * ow + ox] = sum / ((double)(y1 - y0) * (x1 - x0));
      }
    }
  }
}

void ref_avgpool_backward(double *dinp, const double *dout, int n, int c, int h, int w, int oh, int ow) {
  memset(dinp, 0, sizeof(double) * (size_t)n * c * h * w);
  for (size_t p = 0; p < (size_t)n * c; p++) {
    double *plane = dinp + p * h * w;
    for (int oy = 0; oy < oh; oy++) {
      int y0 = adaptive_start(oy, h, oh), y1 = adaptive_end(oy, h, oh);
      for (int ox = 0; ox < ow; ox++) {
        int x0 = adaptive_start(ox, w, ow), x1 = adaptive_end(ox, w, ow);
        double share = dout[(p * oh + oy) * ow + ox] / ((double)(y1 - y0) * (x1 - x0));
        for (int y = y0; y < y1; y++)
          for (int x = x0; x < x1; x++) plane[(size_t)y * w + x] += share;
      }
    }
  }
}

/* ---- dropout ---- */

size_t ref_dropout_forward(double *out, const double *inp, size_t count, float p, uint64_t key, uint64_t first) {
  double keep_scale = 1.0 / (1.0 - (double)p);
  size_t kept = 0;
  for (size_t i = 0; i < count; i++) {
    int keep = an_dropout_uniform(key, first + i) >= p;
    out[i] = keep ? inp[i] * keep_scale : 0.0;
    kept += (size_t)keep;
  }
  return kept;
}

void ref_dropout_backward(double *dinp, const double *dout, size_t count, float p, uint64_t key, uint64_t first) {
  double keep_scale = 1.0 / (1.0 - (double)p);
  for (size_t i = 0; i < count; i++) dinp[i] = an_dropout_uniform(key, first + i) >= p ? dout[i] * keep_scale : 0.0;
}

/* ---- softmax cross-entropy ---- */

double ref_softmax_xent(double *dlogits, double *per_sample, const double *logits, const int *labels, int n,
                        int classes) {
  double total = 0.0;
  for (int b = 0; b < n; b++) {
    const double *z = logits + (size_t)b * classes;
    double zmax = z[0];
    for (int j = 1; j < classes; j++)
      if (z[j] > zmax) zmax = z[j];
    double sum = 0.0;
    for (int j = 0; j < classes; j++) sum += exp(z[j] - zmax);
    double log_sum = zmax + log(sum); /* log Σ exp z */
    double loss = log_sum - z[labels[b]];
    total += loss;
    if (per_sample) per_sample[b] = loss;
    if (dlogits) {
      for (int j = 0; j < classes; j++) {
        double softmax = exp(z[j] - log_sum);
        dlogits[(size_t)b * classes + j] = (softmax - (j == labels[b] ? 1.0 : 0.0)) / n;
      }
    }
  }
  return total / n;
}

/* ---- SGD ---- */

void ref_sgd_update(double *weight, const double *grad, double *velocity, size_t count, double lr, double momentum,
                    double weight_decay) {
  for (size_t i = 0; i < count; i++) {
    velocity[i] = momentum * velocity[i] + grad[i] + weight_decay * weight[i];
    weight[i] -= lr * velocity[i];
  }
}
