/* The two-device split (see split.h): two nets, one per device, driven layer range by layer range with
 * the exchanges between them.
 *
 * Columns (alexnet), at the column model's exchange layers (models.c):
 *   GATHER forward   out_k (N, 2C, H, W) ← in_0 into channels [0, C), in_1 into [C, 2C)
 *   GATHER backward  dinp_k (N, C, H, W) = dout_k[:, kC:(k+1)C] + dout_{1-k}[:, kC:(k+1)C]
 *   SUM forward      out (N, K) = in_0 + in_1 + bias, in that order on both devices
 *   SUM backward     dbias += Σ_n dout,  dinp = dout (both devices hold the same dout: no traffic)
 * Batch (alexnet-half, alexnet-tv): after the backward pass, grads_k = w_0·g_0 + w_1·g_1 on both
 * devices (w_k = device k's share of the batch), the same float operations on both, so the replicas
 * stay equal.
 *
 * A remote copy (device `from`'s buffer into device `to`'s) in one context: a marker on from's queue,
 * the copy on to's queue waiting on it, and a barrier on from's queue waiting on the copy (from may not
 * overwrite what is being read: the backward pass reuses its gradient regions). In separate contexts:
 * a read on from's queue into host staging, and a write on to's queue that waits on a user event which
 * the read's completion callback sets. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alexnet/split.h"

#include "gemm/vector.h"
#include "runtime/check.h"
#include "runtime/grow.h"
#include "runtime/launch.h"

static int is_exchange(const an_net *net, int i) {
  const an_layer_kind k = net->model->layers[i].kind;
  return k == AN_LAYER_GATHER || k == AN_LAYER_SUM;
}

static an_status keep_event(an_split *s, cl_event e) {
  if (!s->profiling) return AN_OK;
  cl_event *grown = an_grow(s->copy_events, s->n_copy_events, &s->cap_copy_events, sizeof *grown);
  if (!grown) return AN_FAIL(AN_ERR_HOST_ALLOC, "copy events");
  s->copy_events = grown;
  AN_CL_RETURN(clRetainEvent(e));
  s->copy_events[s->n_copy_events++] = e;
  return AN_OK;
}

void an_split_clear_events(an_split *s) {
  for (int i = 0; i < s->n_copy_events; i++) clReleaseEvent(s->copy_events[i]);
  s->n_copy_events = 0;
}

an_status an_split_exchange_ms(an_split *s, double *ms, int *n_copies) {
  double total = 0;
  for (int i = 0; i < s->n_copy_events; i++) {
    cl_ulong t0 = 0, t1 = 0;
    AN_CL_RETURN(clGetEventProfilingInfo(s->copy_events[i], CL_PROFILING_COMMAND_START, sizeof t0, &t0, NULL));
    AN_CL_RETURN(clGetEventProfilingInfo(s->copy_events[i], CL_PROFILING_COMMAND_END, sizeof t1, &t1, NULL));
    total += (double)(t1 - t0) * 1e-6;
  }
  *ms = total;
  if (n_copies) *n_copies = s->n_copy_events;
  return AN_OK;
}

/* rows × width floats: src at src_off with rows src_pitch apart, into dst likewise. */
typedef struct xfer {
  cl_mem src;
  size_t src_off, src_pitch;
  cl_mem dst;
  size_t dst_off, dst_pitch;
  size_t rows, width;
} xfer;

static void CL_CALLBACK release_user_event(cl_event done, cl_int status, void *user) {
  (void)done;
  clSetUserEventStatus((cl_event)user, status < 0 ? status : CL_COMPLETE);
  clReleaseEvent((cl_event)user);
}

static an_status stage_buffer(an_split *s, int slot, size_t floats, float **out) {
  if (slot >= s->n_stage) return AN_FAIL(AN_ERR_ARGUMENT, "staging slot %d of %d", slot, s->n_stage);
  if (s->stage_floats[slot] < floats) {
    free(s->stage[slot]);
    s->stage[slot] = NULL;
    void *p = NULL;
    if (posix_memalign(&p, 4096, floats * sizeof(float)) != 0)
      return AN_FAIL(AN_ERR_HOST_ALLOC, "host staging of %zu floats", floats);
    s->stage[slot] = p, s->stage_floats[slot] = floats;
  }
  *out = s->stage[slot];
  return AN_OK;
}

/* Device `from`'s data into device `to`'s buffer, ordered after everything enqueued on from so far and
 * before anything enqueued on either queue later. slot: the host staging buffer to use. */
static an_status remote_copy(an_split *s, int to, const xfer *x, int slot) {
  const int from = 1 - to;
  cl_command_queue qf = s->rt[from]->queue, qt = s->rt[to]->queue;
  const size_t region[3] = {x->width * sizeof(float), x->rows, 1};
  an_status status = AN_OK;
  cl_event ready = NULL, copied = NULL, read = NULL, user = NULL;
  if (s->shared_context) {
    const size_t src_origin[3] = {x->src_off * sizeof(float), 0, 0},
                 dst_origin[3] = {x->dst_off * sizeof(float), 0, 0};
    AN_CL_GOTO(clEnqueueMarkerWithWaitList(qf, 0, NULL, &ready));
    AN_CL_GOTO(clEnqueueCopyBufferRect(qt, x->src, x->dst, src_origin, dst_origin, region,
                                       x->src_pitch * sizeof(float), 0, x->dst_pitch * sizeof(float), 0, 1, &ready,
                                       &copied));
    AN_CL_GOTO(clEnqueueBarrierWithWaitList(qf, 1, &copied, NULL));
    AN_TRY_GOTO(keep_event(s, copied));
  } else {
    float *host = NULL;
    const size_t zero[3] = {0, 0, 0}, src_origin[3] = {x->src_off * sizeof(float), 0, 0},
                 dst_origin[3] = {x->dst_off * sizeof(float), 0, 0};
    cl_int rc;
    AN_TRY_GOTO(stage_buffer(s, slot, x->rows * x->width, &host));
    AN_CL_GOTO(clEnqueueReadBufferRect(qf, x->src, CL_FALSE, src_origin, zero, region, x->src_pitch * sizeof(float),
                                       0, x->width * sizeof(float), 0, host, 0, NULL, &read));
    user = clCreateUserEvent(s->rt[to]->context, &rc);
    AN_CL_GOTO(rc);
    AN_CL_GOTO(clRetainEvent(user)); /* the callback's reference */
    rc = clSetEventCallback(read, CL_COMPLETE, release_user_event, user);
    if (rc != CL_SUCCESS) {
      clReleaseEvent(user);
      AN_CL_GOTO(rc);
    }
    AN_CL_GOTO(clFlush(qf));
    AN_CL_GOTO(clEnqueueWriteBufferRect(qt, x->dst, CL_FALSE, dst_origin, zero, region, x->dst_pitch * sizeof(float),
                                        0, x->width * sizeof(float), 0, host, 1, &user, &copied));
    AN_TRY_GOTO(keep_event(s, read));
    AN_TRY_GOTO(keep_event(s, copied));
  }
cleanup:
  if (ready) clReleaseEvent(ready);
  if (copied) clReleaseEvent(copied);
  if (read) clReleaseEvent(read);
  if (user) clReleaseEvent(user);
  return status;
}

/* A copy within one device's buffers (rows × width floats, pitched), by a kernel: a rect copy may not
 * change the pitch within one buffer. */
static an_status local_copy(an_split *s, int k, const xfer *x) {
  const size_t global = x->rows * x->width;
  const an_arg args[] = {an_arg_mem(x->src),    an_arg_ulong(x->src_off), an_arg_ulong(x->src_pitch),
                         an_arg_mem(x->dst),    an_arg_ulong(x->dst_off), an_arg_ulong(x->dst_pitch),
                         an_arg_ulong(x->width)};
  return an_launch(s->rt[k], "copy_rows", 1, &global, NULL, args);
}

/* ---- exchanges of the column split ---- */

static an_status gather_forward(an_split *s, int j) {
  const an_layer_plan *L = &s->net[0]->layers[j]; /* both columns share the plan */
  const size_t chw = (size_t)L->in_c * L->in_h * L->in_w, n = (size_t)s->batch;
  for (int k = 0; k < 2; k++) {
    const xfer remote = {
        s->net[1 - k]->acts, L->in_off, chw, s->net[k]->acts, L->out_off + (size_t)(1 - k) * chw, 2 * chw, n, chw};
    AN_TRY(remote_copy(s, k, &remote, 4 * j + k));
  }
  for (int k = 0; k < 2; k++) {
    const xfer own = {s->net[k]->acts, L->in_off, chw, s->net[k]->acts, L->out_off + (size_t)k * chw,
                      2 * chw,         n,         chw};
    AN_TRY(local_copy(s, k, &own));
  }
  return AN_OK;
}

static an_status gather_backward(an_split *s, int j) {
  const an_net *net = s->net[0];
  const an_layer_plan *L = &net->layers[j];
  const size_t chw = (size_t)L->in_c * L->in_h * L->in_w, n = (size_t)s->batch;
  const size_t dout_off = an_net_dout_off(net, j), dinp_off = an_net_dinp_off(net, j);
  for (int k = 0; k < 2; k++) { /* the other column's gradient for my channels */
    const xfer remote = {s->net[1 - k]->dacts, dout_off + (size_t)k * chw, 2 * chw, s->recv[k], 0, chw, n, chw};
    AN_TRY(remote_copy(s, k, &remote, 4 * j + 2 + k));
  }
  for (int k = 0; k < 2; k++) {
    const xfer own = {
        s->net[k]->dacts, dout_off + (size_t)k * chw, 2 * chw, s->net[k]->dacts, dinp_off, chw, n, chw};
    AN_TRY(local_copy(s, k, &own));
    AN_TRY(an_axpy(s->rt[k], n * chw, 1.0f, an_at(s->recv[k], 0), an_at(s->net[k]->dacts, dinp_off)));
  }
  return AN_OK;
}

static an_status sum_forward(an_split *s, int j) {
  const an_layer_plan *L = &s->net[0]->layers[j];
  const size_t nk = (size_t)s->batch * L->in_c;
  for (int k = 0; k < 2; k++) {
    const xfer remote = {s->net[1 - k]->acts, L->in_off, nk, s->recv[k], 0, nk, 1, nk};
    AN_TRY(remote_copy(s, k, &remote, 4 * j + k));
  }
  for (int k = 0; k < 2; k++) {
    an_net *net = s->net[k];
    an_runtime *rt = s->rt[k];
    const an_buf mine = an_at(net->acts, L->in_off), theirs = an_at(s->recv[k], 0);
    const an_buf first = k == 0 ? mine : theirs, second = k == 0 ? theirs : mine; /* column 0's first, on both */
    AN_CL_RETURN(clEnqueueCopyBuffer(rt->queue, first.mem, net->acts, first.off * sizeof(float),
                                     L->out_off * sizeof(float), nk * sizeof(float), 0, NULL, NULL));
    AN_TRY(an_axpy(rt, nk, 1.0f, second, an_at(net->acts, L->out_off)));
    const size_t global = nk;
    const an_arg args[] = {an_arg_mem(net->acts),   an_arg_ulong(L->out_off),
                           an_arg_mem(net->params), an_arg_ulong(net->tensors[L->bias].offset),
                           an_arg_int(L->in_c),     an_arg_int(0)};
    AN_TRY(an_launch(rt, "bias_act", 1, &global, NULL, args));
  }
  return AN_OK;
}

static an_status sum_backward(an_split *s, int j) {
  for (int k = 0; k < 2; k++) {
    an_net *net = s->net[k];
    const an_layer_plan *L = &net->layers[j];
    const size_t dout_off = an_net_dout_off(net, j), dinp_off = an_net_dinp_off(net, j);
    const size_t global = (size_t)L->in_c;
    const an_arg args[] = {an_arg_mem(net->dacts), an_arg_ulong(dout_off),
                           an_arg_int(s->batch),   an_arg_int(L->in_c),
                           an_arg_mem(net->grads), an_arg_ulong(net->tensors[L->bias].offset)};
    AN_TRY(an_launch(s->rt[k], "colsum_add", 1, &global, NULL, args));
    AN_CL_RETURN(clEnqueueCopyBuffer(s->rt[k]->queue, net->dacts, net->dacts, dout_off * sizeof(float),
                                     dinp_off * sizeof(float), (size_t)s->batch * L->in_c * sizeof(float), 0, NULL,
                                     NULL));
  }
  return AN_OK;
}

/* ---- the batch split's gradient sum ---- */
static an_status sum_gradients(an_split *s) {
  const size_t np = s->net[0]->n_params;
  for (int k = 0; k < 2; k++) {
    const xfer remote = {s->net[1 - k]->grads, 0, np, s->recv[k], 0, np, 1, np};
    AN_TRY(remote_copy(s, k, &remote, k));
  }
  for (int k = 0; k < 2; k++) {
    an_runtime *rt = s->rt[k];
    const float w_own = (float)s->count[k] / (float)s->batch, w_other = (float)s->count[1 - k] / (float)s->batch;
    /* fl(w0·g0) + fl(w1·g1) on both devices: products rounded alike, and the sum commutes */
    AN_TRY(an_scal(rt, np, w_own, an_at(s->net[k]->grads, 0)));
    AN_TRY(an_scal(rt, np, w_other, an_at(s->recv[k], 0)));
    AN_TRY(an_axpy(rt, np, 1.0f, an_at(s->recv[k], 0), an_at(s->net[k]->grads, 0)));
  }
  return AN_OK;
}

/* ---- creation ---- */

an_status an_split_create(an_runtime *rt0, an_runtime *rt1, const char *model, int classes, int batch, int input_hw,
                          an_split **out) {
  *out = NULL;
  an_status status = AN_OK;
  an_net *plans[2] = {NULL, NULL};
  an_split *s = calloc(1, sizeof *s);
  if (!s) return AN_FAIL(AN_ERR_HOST_ALLOC, "split");
  s->rt[0] = rt0, s->rt[1] = rt1;
  s->batch = batch, s->classes = classes, s->input_hw = input_hw;
  s->shared_context = rt0->context == rt1->context;
  AN_TRY_GOTO(an_net_plan(model, classes, batch, input_hw, &s->full));
  const an_model_desc *column = an_model_column(s->full->model);
  s->mode = column ? AN_SPLIT_COLUMNS : AN_SPLIT_BATCH;
  if (s->mode == AN_SPLIT_BATCH && batch < 2) {
    status = AN_FAIL(AN_ERR_ARGUMENT, "%s splits the batch across two devices: batch %d is too small", model, batch);
    goto cleanup;
  }
  for (int k = 0; k < 2; k++) {
    if (s->mode == AN_SPLIT_COLUMNS) {
      s->first[k] = 0, s->count[k] = batch;
      AN_TRY_GOTO(an_net_plan_desc(column, classes, batch, input_hw, &plans[k]));
    } else {
      s->first[k] = k == 0 ? 0 : (batch + 1) / 2;
      s->count[k] = k == 0 ? (batch + 1) / 2 : batch - (batch + 1) / 2;
      AN_TRY_GOTO(an_net_plan(model, classes, s->count[k], input_hw, &plans[k]));
    }
  }
  /* the receive buffer: the largest exchange, or the whole gradient */
  if (s->mode == AN_SPLIT_COLUMNS) {
    for (int j = 0; j < plans[0]->model->n_layers; j++)
      if (is_exchange(plans[0], j)) {
        const an_layer_plan *L = &plans[0]->layers[j];
        const size_t f = (size_t)batch * L->in_c * L->in_h * L->in_w;
        if (f > s->recv_floats) s->recv_floats = f;
      }
    s->n_stage = 4 * plans[0]->model->n_layers;
  } else {
    s->recv_floats = plans[0]->n_params;
    s->n_stage = 2;
  }
  /* both devices' needs before anything is allocated on either */
  for (int k = 0; k < 2; k++) {
    const size_t need = an_net_device_bytes(plans[k]) + s->recv_floats * sizeof(float);
    if (need > s->rt[k]->info.global_mem_bytes) {
      status = AN_FAIL(AN_ERR_DEVICE_MEMORY,
                       "%s split over two devices: device %d (%s) needs %.0f MiB for its %s at batch %d and has "
                       "%.0f MiB: try a smaller batch",
                       model, k, s->rt[k]->info.name, need / 1048576.0,
                       s->mode == AN_SPLIT_COLUMNS ? "column" : "half of the batch", batch,
                       s->rt[k]->info.global_mem_bytes / 1048576.0);
      goto cleanup;
    }
  }
  for (int k = 0; k < 2; k++) {
    AN_TRY_GOTO(an_net_create_desc(s->rt[k], plans[k]->model, classes, s->count[k], input_hw, &s->net[k]));
    s->net[k]->sample_base = s->first[k];
    AN_TRY_GOTO(an_alloc(s->rt[k], s->recv_floats, &s->recv[k]));
  }
  s->stage = calloc((size_t)s->n_stage, sizeof *s->stage);
  s->stage_floats = calloc((size_t)s->n_stage, sizeof *s->stage_floats);
  if (!s->stage || !s->stage_floats) {
    status = AN_FAIL(AN_ERR_HOST_ALLOC, "staging table");
    goto cleanup;
  }
  an_net_destroy(plans[0]);
  an_net_destroy(plans[1]);
  *out = s;
  return AN_OK;
cleanup:
  an_net_destroy(plans[0]);
  an_net_destroy(plans[1]);
  an_split_destroy(s);
  return status;
}

void an_split_destroy(an_split *s) {
  if (!s) return;
  for (int k = 0; k < 2; k++)
    if (s->rt[k] && s->rt[k]->queue) clFinish(s->rt[k]->queue);
  an_split_clear_events(s);
  free(s->copy_events);
  for (int i = 0; s->stage && i < s->n_stage; i++) free(s->stage[i]);
  free(s->stage);
  free(s->stage_floats);
  for (int k = 0; k < 2; k++) {
    if (s->recv[k]) clReleaseMemObject(s->recv[k]);
    an_net_destroy(s->net[k]);
  }
  an_net_destroy(s->full);
  free(s);
}

/* ---- parameters in the full layout ---- */

/* Copies between device k's host image (its net's layout) and the full layout, either way. */
static an_status map_tensors(const an_split *s, int k, float *local, float *full, int to_full) {
  const an_net *net = s->net[k];
  for (int i = 0; i < net->model->n_layers; i++) {
    const an_layer_plan *L = &net->layers[i];
    const int owned[2] = {L->weight, L->bias};
    for (int o = 0; o < 2; o++) {
      if (owned[o] < 0) continue;
      const an_tensor *t = &net->tensors[owned[o]];
      const int f = an_net_find_tensor(s->full, t->name);
      if (f < 0) return AN_FAIL(AN_ERR_ARGUMENT, "split: %s has no tensor in %s", t->name, s->full->model->name);
      const an_tensor *ft = &s->full->tensors[f];
      const an_slice_kind slice = s->mode == AN_SPLIT_COLUMNS ? L->desc->slice : AN_SLICE_NONE;
      /* a bias of a column-sliced fc (1-D) is sliced like its rows */
      if (slice == AN_SLICE_COLS && t->ndim == 2) {
        const size_t rows = (size_t)t->shape[0], cols = (size_t)t->shape[1], full_cols = (size_t)ft->shape[1];
        for (size_t r = 0; r < rows; r++) {
          float *a = local + t->offset + r * cols, *b = full + ft->offset + r * full_cols + (size_t)k * cols;
          memcpy(to_full ? b : a, to_full ? a : b, cols * sizeof(float));
        }
      } else {
        const size_t start = slice == AN_SLICE_ROWS ? (size_t)k * t->count : 0;
        if (start + t->count > ft->count)
          return AN_FAIL(AN_ERR_ARGUMENT, "split: %s of column %d does not fit %s", t->name, k, ft->name);
        float *a = local + t->offset, *b = full + ft->offset + start;
        memcpy(to_full ? b : a, to_full ? a : b, t->count * sizeof(float));
      }
    }
  }
  return AN_OK;
}

typedef enum which { PARAMS, GRADS, MOMENTUM } which;

static cl_mem which_mem(const an_net *net, which w) {
  return w == PARAMS ? net->params : w == GRADS ? net->grads : net->momentum;
}

static an_status write_full(an_split *s, which w, const float *full) {
  an_status status = AN_OK;
  float *local = NULL;
  for (int k = 0; k < 2; k++) {
    free(local);
    local = malloc(s->net[k]->n_params * sizeof *local);
    if (!local) return AN_FAIL(AN_ERR_HOST_ALLOC, "parameters of device %d", k);
    AN_TRY_GOTO(map_tensors(s, k, local, (float *)full, 0));
    AN_TRY_GOTO(an_write(s->rt[k], an_at(which_mem(s->net[k], w), 0), local, s->net[k]->n_params));
  }
cleanup:
  free(local);
  return status;
}

static an_status read_full(an_split *s, which w, float *full) {
  an_status status = AN_OK;
  float *local = NULL;
  const int devices = s->mode == AN_SPLIT_COLUMNS ? 2 : 1; /* the batch split's replicas are equal */
  for (int k = devices - 1; k >= 0; k--) { /* device 0 last: its copy of the shared fc8 bias is kept */
    free(local);
    local = malloc(s->net[k]->n_params * sizeof *local);
    if (!local) return AN_FAIL(AN_ERR_HOST_ALLOC, "parameters of device %d", k);
    AN_TRY_GOTO(an_read(s->rt[k], local, an_at(which_mem(s->net[k], w), 0), s->net[k]->n_params));
    AN_TRY_GOTO(map_tensors(s, k, local, full, 1));
  }
cleanup:
  free(local);
  return status;
}

an_status an_split_write_params(an_split *s, const float *params) { return write_full(s, PARAMS, params); }
an_status an_split_read_params(an_split *s, float *params) { return read_full(s, PARAMS, params); }
an_status an_split_read_grads(an_split *s, float *grads) { return read_full(s, GRADS, grads); }
an_status an_split_write_momentum(an_split *s, const float *m) { return write_full(s, MOMENTUM, m); }
an_status an_split_read_momentum(an_split *s, float *m) { return read_full(s, MOMENTUM, m); }

an_status an_split_init(an_split *s, uint64_t seed) {
  float *host = malloc(s->full->n_params * sizeof *host);
  if (!host) return AN_FAIL(AN_ERR_HOST_ALLOC, "parameters (%zu floats)", s->full->n_params);
  an_net_init_host(s->full, seed, host);
  an_status status = an_split_write_params(s, host);
  free(host);
  AN_TRY(status);
  for (int k = 0; k < 2; k++) AN_TRY(an_fill(s->rt[k], an_at(s->net[k]->momentum, 0), 0.0f, s->net[k]->n_params));
  return AN_OK;
}

/* ---- the step ---- */

an_status an_split_set_batch(an_split *s, const float *images, const int *labels) {
  const size_t pixels = (size_t)3 * s->input_hw * s->input_hw;
  for (int k = 0; k < 2; k++)
    AN_TRY(an_net_set_batch(s->net[k], images + (size_t)s->first[k] * pixels, labels + s->first[k]));
  return AN_OK;
}

an_status an_split_forward(an_split *s, int train, uint64_t seed, uint64_t step) {
  for (int k = 0; k < 2; k++) {
    s->net[k]->dropout_active = train != 0;
    AN_TRY(an_mark_add(s->rt[k], AN_MARK_BEGIN, -1));
  }
  const int n = s->net[0]->model->n_layers;
  for (int i = 0; i < n;) {
    int j = i;
    while (j < n && !is_exchange(s->net[0], j)) j++;
    for (int k = 0; k < 2; k++) AN_TRY(an_net_forward_layers(s->net[k], i, j, seed, step));
    if (j < n) {
      AN_TRY(s->net[0]->model->layers[j].kind == AN_LAYER_GATHER ? gather_forward(s, j) : sum_forward(s, j));
      for (int k = 0; k < 2; k++) AN_TRY(an_mark_add(s->rt[k], AN_MARK_FORWARD, j));
    }
    i = j + 1;
  }
  for (int k = 0; k < 2; k++) {
    AN_TRY(an_net_loss(s->net[k]));
    AN_CL_RETURN(clFlush(s->rt[k]->queue)); /* both devices start while the other is being enqueued */
  }
  return AN_OK;
}

an_status an_split_backward(an_split *s, uint64_t seed, uint64_t step) {
  for (int k = 0; k < 2; k++) AN_TRY(an_net_zero_grads(s->net[k]));
  const int n = s->net[0]->model->n_layers;
  for (int i = n - 1; i >= 0;) {
    int j = i;
    while (j >= 0 && !is_exchange(s->net[0], j)) j--;
    for (int k = 0; k < 2; k++) AN_TRY(an_net_backward_layers(s->net[k], j + 1, i + 1, seed, step));
    if (j >= 0) {
      AN_TRY(s->net[0]->model->layers[j].kind == AN_LAYER_GATHER ? gather_backward(s, j) : sum_backward(s, j));
      for (int k = 0; k < 2; k++) AN_TRY(an_mark_add(s->rt[k], AN_MARK_BACKWARD, j));
    }
    i = j - 1;
  }
  if (s->mode == AN_SPLIT_BATCH) {
    AN_TRY(sum_gradients(s));
    for (int k = 0; k < 2; k++) AN_TRY(an_mark_add(s->rt[k], AN_MARK_EXCHANGE, -1));
  }
  for (int k = 0; k < 2; k++) AN_CL_RETURN(clFlush(s->rt[k]->queue));
  return AN_OK;
}

an_status an_split_sgd(an_split *s, const an_sgd_params *p) {
  for (int k = 0; k < 2; k++) AN_TRY(an_net_sgd(s->net[k], p));
  return AN_OK;
}

an_status an_split_read_loss(an_split *s, float *loss) {
  if (s->mode == AN_SPLIT_COLUMNS) return an_net_read_loss(s->net[0], loss);
  float l[2] = {0, 0};
  an_status st[2];
  for (int k = 0; k < 2; k++) st[k] = an_net_read_loss(s->net[k], &l[k]);
  /* a NaN or Inf share still sets *loss (the training loop names which), then reports its status */
  *loss = (float)(((double)l[0] * s->count[0] + (double)l[1] * s->count[1]) / s->batch);
  return st[0] != AN_OK ? st[0] : st[1];
}

an_status an_split_train_step(an_split *s, const float *images, const int *labels, const an_sgd_params *p,
                              uint64_t seed, uint64_t step, float *loss) {
  AN_TRY(an_split_set_batch(s, images, labels));
  AN_TRY(an_split_forward(s, 1, seed, step));
  AN_TRY(an_split_backward(s, seed, step));
  AN_TRY(an_split_sgd(s, p));
  return an_split_read_loss(s, loss);
}

an_status an_split_read_logits(an_split *s, float *logits) {
  if (s->mode == AN_SPLIT_COLUMNS) return an_net_read_logits(s->net[0], logits);
  for (int k = 0; k < 2; k++) AN_TRY(an_net_read_logits(s->net[k], logits + (size_t)s->first[k] * s->classes));
  return AN_OK;
}

/* ---- profiling: each device's time, busy and in exchanges ---- */

an_status an_split_times_read(an_split *s, an_split_times *out) {
  memset(out, 0, sizeof *out);
  for (int k = 0; k < 2; k++) {
    an_runtime *rt = s->rt[k];
    double prev = 0, t;
    for (int i = 0; i < rt->n_marks; i++) {
      AN_TRY(an_mark_end_ms(rt, i, &t));
      const an_mark *m = &rt->marks[i];
      if (m->kind == AN_MARK_BEGIN) {
        if (k == 0) out->n_steps++;
      } else if (i > 0) { /* GEMM marks split a layer's interval: they count with their layer */
        const int exchange = m->kind == AN_MARK_EXCHANGE ||
                             ((m->kind == AN_MARK_FORWARD || m->kind == AN_MARK_BACKWARD) && m->layer >= 0 &&
                              is_exchange(s->net[k], m->layer));
        if (exchange) out->exchange_ms[k] += t - prev;
        else out->busy_ms[k] += t - prev;
      }
      prev = t;
    }
  }
  return an_split_exchange_ms(s, &out->copy_ms, &out->n_copies);
}

size_t an_split_device_bytes(const an_split *s, int k) {
  return an_net_device_bytes(s->net[k]) + s->recv_floats * sizeof(float);
}
