/* The MPI trainer (trainer.h): one rank of a data-parallel job. Each rank wraps its own one-device or
 * pair trainer at its share of the global batch, and the gradients are summed across the ranks between
 * backward and the update.
 *
 * The exchange, per step: the gradient buffer is cut into buckets (~25 MB, from the top layer down, so
 * the first bucket is complete first). The net calls grads_ready after each layer's backward is
 * enqueued (model.h); once a bucket's lowest layer is enqueued, a non-blocking read stages the bucket
 * in mapped host memory. The host then drives, per bucket and in one fixed order on every rank:
 *   1. MPI_Ialltoallv: rank r receives chunk r of every rank's bucket (chunk r: floats [r·n/N, (r+1)·n/N));
 *   2. rank r sums its chunk's N copies in rank order, each scaled by its share of the batch;
 *   3. MPI_Iallgatherv (in place): every rank receives every summed chunk;
 *   4. a non-blocking write puts the bucket back into the device's gradients.
 * Alltoalls and allgathers run on two duplicated communicators, so bucket b+1's alltoall need not wait
 * for bucket b's allgather. The bytes each rank sends are 2(N-1)/N of the gradient, as a ring allreduce;
 * unlike MPI_SUM in a library collective, whose order may change with the algorithm, the order of every
 * sum is fixed, so the same N gives the same bits run after run, and all ranks receive the same sum.
 * MPI's nonblocking collectives progress inside MPI calls: the host polls them while backward still
 * computes on the device, which is where the overlap comes from.
 *
 * Built without MPI (no ALEXNET_HAVE_MPI), the world is one process and an_train_mpi says so. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "runtime/check.h"
#include "runtime/rng.h"
#include "train/trainer.h"

int an_world_launched_size(void) {
  static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMIX_SIZE", "PMI_SIZE", "MPI_LOCALNRANKS"};
  for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
    const char *v = getenv(vars[i]);
    if (v && atoi(v) > 0) return atoi(v);
  }
  return 0;
}

static an_world g_world = {0, 1, 0, 1, 0};
static int g_echo; /* the last failure is another rank's, shared by an agreement */

an_world an_world_get(void) { return g_world; }
int an_world_failure_is_echo(void) { return g_echo && g_world.rank != 0; }

#ifndef ALEXNET_HAVE_MPI

an_status an_world_init(int *argc, char ***argv, an_world *out) {
  (void)argc, (void)argv;
  *out = g_world;
  const int launched = an_world_launched_size();
  if (launched > 1)
    return AN_FAIL(AN_ERR_ARGUMENT,
                   "started as one of %d MPI ranks, but this alexnet was built without MPI: "
                   "install Open MPI (libopenmpi-dev openmpi-bin) and rebuild",
                   launched);
  return AN_OK;
}

an_status an_world_agree(an_status own) { return own; }
int an_world_end(int rc) { return rc; }

an_status an_train_mpi(an_runtime *rt0, an_runtime *rt1, const an_mpi_options *opt, const an_train_config *cfg,
                       an_train_result *result) {
  (void)opt;
  return an_train_pair(rt0, rt1, cfg, result); /* the world is this process (an_world_init refused more) */
}

an_status an_mpi_bench_train(an_runtime *rt0, an_runtime *rt1, const char *model, int classes, int batch_per_rank,
                             int input_hw, const an_mpi_options *opt, int warmup, int iterations,
                             an_mpi_bench *out) {
  (void)rt0, (void)rt1, (void)model, (void)classes, (void)batch_per_rank, (void)input_hw, (void)opt, (void)warmup;
  (void)iterations, (void)out;
  return AN_FAIL(AN_ERR_ARGUMENT, "bench across ranks needs MPI: this alexnet was built without it");
}

#else

#include <mpi.h>

/* ---- the world ---- */

an_status an_world_init(int *argc, char ***argv, an_world *out) {
  *out = g_world;
  if (an_world_launched_size() == 0) return AN_OK; /* started alone: no MPI, as before */
  int provided;
  if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
    return AN_FAIL(AN_ERR_ARGUMENT, "MPI_Init failed");
  MPI_Comm local;
  MPI_Comm_rank(MPI_COMM_WORLD, &g_world.rank);
  MPI_Comm_size(MPI_COMM_WORLD, &g_world.size);
  MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, g_world.rank, MPI_INFO_NULL, &local);
  MPI_Comm_rank(local, &g_world.local_rank);
  MPI_Comm_size(local, &g_world.local_size);
  MPI_Comm_free(&local);
  g_world.mpi = 1;
  *out = g_world;
  return AN_OK;
}

/* The first failing rank's status and message on every rank of comm (a barrier besides). */
static an_status agree_on(MPI_Comm comm, an_status own) {
  int rank, size, first;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &size);
  int mine = own != AN_OK ? rank : size;
  MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, comm);
  if (first == size) return AN_OK;
  char message[1024];
  int status = own;
  snprintf(message, sizeof message, "%s", an_last_error());
  MPI_Bcast(message, sizeof message, MPI_CHAR, first, comm);
  MPI_Bcast(&status, 1, MPI_INT, first, comm);
  g_echo = 1;
  if (rank == first) return own;
  return AN_FAIL(status, "rank %d: %s", first, message);
}

an_status an_world_agree(an_status own) { return g_world.mpi ? agree_on(MPI_COMM_WORLD, own) : own; }

int an_world_end(int rc) {
  if (!g_world.mpi) return rc;
  if (rc == 0 || rc == 2 || g_echo) MPI_Finalize(); /* every rank ends alike */
  else MPI_Abort(MPI_COMM_WORLD, rc);               /* a failure of this rank alone: stop the others */
  return rc;
}

/* ---- the trainer's state ---- */

typedef struct bucket {
  int seg;             /* the gradient buffer it belongs to (mpi_trainer.seg) */
  size_t off, count;   /* its floats in that buffer */
  int low_layer;       /* its lowest layer: complete once backward has passed it */
  float *host;         /* (count) in the segment's mapped staging: the local gradient, then the sum */
  float *recv;         /* (N, chunk) every rank's copy of this rank's chunk */
  int *cnt, *dsp;      /* (N) each: chunk r's floats and offset in the bucket */
  int *rcnt, *rdsp;    /* (N) each: what each rank sends this one, and where it lands in recv */
  cl_event read;       /* the staging read of this step; NULL until enqueued */
  MPI_Request request; /* the collective in flight */
  int state;           /* 0 idle, 1 reading, 2 alltoall, 3 allgather, 4 done */
} bucket;

typedef struct mpi_trainer {
  an_trainer inner;           /* the rank's own trainer, at its share of the batch */
  MPI_Comm comm, comm_gather; /* duplicates of the world: agreements and alltoalls; allgathers */
  int rank, ranks, batch;     /* batch: the global one */
  an_net *seg[2];             /* gradient buffers summed: one device, or each column of a pair */
  an_net *mirror;             /* a batch-split pair's second replica: receives seg[0]'s sums */
  int n_seg, next[2];         /* per segment: the next bucket to stage (buckets are top-down) */
  cl_mem stage[2];            /* (n_params of seg) host-mapped staging per segment */
  float *stage_host[2];
  bucket *buckets;
  int n_buckets;
  int *order, n_ordered; /* buckets in the order this step staged them: the collectives' order */
  int exchange;          /* 0: steps without the exchange (the bench's compute-only steps) */
  int check_sync;
  double t_first, t_last_ready, t_end; /* this step's exchange: first and last bucket staged, last summed */
} mpi_trainer;

static an_net *inner_net(const mpi_trainer *m) { return m->inner.devices == 1 ? m->inner.impl : NULL; }
static an_split *inner_pair(const mpi_trainer *m) { return m->inner.devices == 2 ? m->inner.impl : NULL; }

/* ---- buckets ---- */

/* Layer i's first parameter (-1: none). */
static int64_t layer_first_param(const an_net *net, int i) {
  const an_layer_plan *L = &net->layers[i];
  const int t = L->weight >= 0 ? L->weight : L->bias;
  return t >= 0 ? (int64_t)net->tensors[t].offset : -1;
}

/* Segment s's buckets, top layer first: a bucket closes at the layer where it reaches bucket_floats,
 * and the last one at layer 0; each covers its layers' parameters, contiguous in the buffer. */
static an_status plan_buckets(mpi_trainer *m, int s, size_t bucket_floats) {
  const an_net *net = m->seg[s];
  size_t end = net->n_params;
  for (int i = net->model->n_layers - 1; i >= 0 && end > 0; i--) {
    const int64_t first = layer_first_param(net, i);
    if (i > 0 && (first < 0 || end - (size_t)first < bucket_floats)) continue;
    const size_t start = i == 0 ? 0 : (size_t)first;
    bucket *grown = realloc(m->buckets, (size_t)(m->n_buckets + 1) * sizeof *grown);
    if (!grown) return AN_FAIL(AN_ERR_HOST_ALLOC, "gradient buckets");
    m->buckets = grown;
    m->buckets[m->n_buckets++] = (bucket){.seg = s, .off = start, .count = end - start, .low_layer = i};
    end = start;
  }
  return AN_OK;
}

static an_status alloc_bucket(mpi_trainer *m, bucket *b) {
  const int N = m->ranks;
  b->host = m->stage_host[b->seg] + b->off;
  b->cnt = calloc((size_t)N * 4, sizeof *b->cnt);
  if (!b->cnt) return AN_FAIL(AN_ERR_HOST_ALLOC, "bucket tables");
  b->dsp = b->cnt + N, b->rcnt = b->cnt + 2 * N, b->rdsp = b->cnt + 3 * N;
  for (int r = 0; r < N; r++) {
    const size_t lo = b->count * (size_t)r / N, hi = b->count * (size_t)(r + 1) / N;
    b->cnt[r] = (int)(hi - lo), b->dsp[r] = (int)lo;
  }
  for (int r = 0; r < N; r++) b->rcnt[r] = b->cnt[m->rank], b->rdsp[r] = r * b->cnt[m->rank];
  b->recv = malloc(((size_t)N * b->cnt[m->rank] + 1) * sizeof *b->recv);
  if (!b->recv) return AN_FAIL(AN_ERR_HOST_ALLOC, "bucket receive buffer of %zu floats", b->count);
  return AN_OK;
}

static an_status make_staging(mpi_trainer *m, int s) {
  an_net *net = m->seg[s];
  cl_int rc;
  m->stage[s] = clCreateBuffer(net->rt->context, CL_MEM_ALLOC_HOST_PTR | CL_MEM_READ_WRITE,
                               net->n_params * sizeof(float), NULL, &rc);
  AN_CL_RETURN(rc);
  m->stage_host[s] = clEnqueueMapBuffer(net->rt->queue, m->stage[s], CL_TRUE, CL_MAP_READ | CL_MAP_WRITE, 0,
                                        net->n_params * sizeof(float), 0, NULL, NULL, &rc);
  AN_CL_RETURN(rc);
  return AN_OK;
}

/* ---- one step's exchange ---- */

static an_status stage_bucket(mpi_trainer *m, int index) {
  bucket *b = &m->buckets[index];
  an_net *net = m->seg[b->seg];
  AN_CL_RETURN(clEnqueueReadBuffer(net->rt->queue, net->grads, CL_FALSE, b->off * sizeof(float),
                                   b->count * sizeof(float), b->host, 0, NULL, &b->read));
  AN_CL_RETURN(clFlush(net->rt->queue));
  b->state = 1;
  m->order[m->n_ordered++] = index;
  return AN_OK;
}

/* Stages segment s's buckets whose layers are all enqueued (down to layer `layer`; -1: all). */
static an_status stage_ready(mpi_trainer *m, int s, int layer) {
  while (m->next[s] < m->n_buckets) {
    const int index = m->next[s];
    if (m->buckets[index].seg != s) {
      m->next[s]++;
      continue;
    }
    if (layer >= 0 && m->buckets[index].low_layer < layer) break;
    AN_TRY(stage_bucket(m, index));
    m->next[s]++;
  }
  return AN_OK;
}

static an_status on_grads_ready(void *ctx, an_net *net, int layer) {
  mpi_trainer *m = ctx;
  for (int s = 0; s < m->n_seg; s++)
    if (m->seg[s] == net) return stage_ready(m, s, layer);
  return AN_OK;
}

/* Rank `rank`'s chunk summed over the ranks in rank order, each copy scaled by w (its share of the
 * batch), into the bucket's host copy. */
static void sum_chunk(const mpi_trainer *m, bucket *b, float w) {
  const size_t c = (size_t)b->cnt[m->rank];
  float *dst = b->host + b->dsp[m->rank];
  for (int r = 0; r < m->ranks; r++) an_sum_scaled(dst, b->recv + (size_t)r * c, c, w, r == 0);
}

/* Has the staging read ended (*st: CL_COMPLETE, or its error; a failed query counts as ended, with it)? */
static int read_done(cl_event e, cl_int *st) {
  *st = CL_QUEUED;
  const cl_int q = clGetEventInfo(e, CL_EVENT_COMMAND_EXECUTION_STATUS, sizeof *st, st, NULL);
  if (q != CL_SUCCESS) *st = q;
  return *st == CL_COMPLETE || *st < 0;
}

static an_status write_back(mpi_trainer *m, bucket *b) {
  an_net *nets[2] = {m->seg[b->seg], b->seg == 0 ? m->mirror : NULL};
  for (int k = 0; k < 2 && nets[k]; k++)
    AN_CL_RETURN(clEnqueueWriteBuffer(nets[k]->rt->queue, nets[k]->grads, CL_FALSE, b->off * sizeof(float),
                                      b->count * sizeof(float), b->host, 0, NULL, NULL));
  b->state = 4;
  return AN_OK;
}

/* Drives every staged bucket through alltoall, sum, allgather and write-back, polling. */
static an_status run_exchange(mpi_trainer *m) {
  const float w = 1.0f / (float)m->ranks; /* every rank's share of the batch */
  int next_a = 0, next_g = 0, done = 0;
  m->t_first = m->t_last_ready = m->t_end = 0;
  while (done < m->n_ordered) {
    int progressed = 0;
    if (next_a < m->n_ordered) {
      bucket *b = &m->buckets[m->order[next_a]];
      cl_int st;
      if (read_done(b->read, &st)) {
        clReleaseEvent(b->read);
        b->read = NULL;
        if (st < 0) return AN_FAIL(st, "staging a gradient bucket to the host");
        m->t_last_ready = an_seconds();
        if (next_a == 0) m->t_first = m->t_last_ready;
        MPI_Ialltoallv(b->host, b->cnt, b->dsp, MPI_FLOAT, b->recv, b->rcnt, b->rdsp, MPI_FLOAT, m->comm,
                       &b->request);
        b->state = 2, next_a++, progressed = 1;
      }
    }
    if (next_g < next_a) {
      bucket *b = &m->buckets[m->order[next_g]];
      int flag = 0;
      MPI_Test(&b->request, &flag, MPI_STATUS_IGNORE);
      if (flag) {
        sum_chunk(m, b, w);
        MPI_Iallgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, b->host, b->cnt, b->dsp, MPI_FLOAT, m->comm_gather,
                        &b->request);
        b->state = 3, next_g++, progressed = 1;
      }
    }
    for (int i = done; i < next_g; i++) {
      bucket *b = &m->buckets[m->order[i]];
      int flag = 0;
      if (b->state != 3) continue;
      MPI_Test(&b->request, &flag, MPI_STATUS_IGNORE);
      if (!flag) break; /* in order: the writes follow the staging order */
      AN_TRY(write_back(m, b));
      done++, progressed = 1;
    }
    if (!progressed) {
      if (next_a == next_g && done == next_g && next_a < m->n_ordered) {
        cl_event e = m->buckets[m->order[next_a]].read; /* nothing in flight: sleep in the driver */
        clWaitForEvents(1, &e);
      } else {
        const struct timespec pause = {0, 50000};
        nanosleep(&pause, NULL);
      }
    }
  }
  m->t_end = an_seconds();
  return AN_OK;
}

/* ---- the trainer operations ---- */

static an_status mpi_init(void *impl, uint64_t seed) {
  mpi_trainer *m = impl;
  return m->inner.ops->init(m->inner.impl, seed); /* the same numbers on every rank */
}

/* Forward and backward on the rank's device(s), the exchange, the update. */
static an_status local_step(mpi_trainer *m, const float *images, const int *labels, const an_sgd_params *sgd,
                            uint64_t seed, uint64_t step) {
  an_net *net = inner_net(m);
  an_split *pair = inner_pair(m);
  m->n_ordered = 0;
  m->next[0] = m->next[1] = 0;
  for (int s = 0; s < m->n_seg; s++) m->seg[s]->grads_ready = m->exchange && !m->mirror ? on_grads_ready : NULL;
  if (net) {
    AN_TRY(an_net_set_batch(net, images, labels));
    AN_TRY(an_net_forward(net, 1, seed, step));
    AN_TRY(an_net_backward(net, seed, step));
  } else {
    AN_TRY(an_split_set_batch(pair, images, labels));
    AN_TRY(an_split_forward(pair, 1, seed, step));
    AN_TRY(an_split_backward(pair, seed, step));
  }
  if (m->exchange) {
    for (int s = 0; s < m->n_seg; s++) AN_TRY(stage_ready(m, s, -1));
    AN_TRY(run_exchange(m));
  }
  return net ? an_net_sgd(net, sgd) : an_split_sgd(pair, sgd);
}

static uint64_t fnv1a(const void *data, size_t bytes) {
  const unsigned char *p = data;
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < bytes; i++) h = (h ^ p[i]) * 1099511628211ull;
  return h;
}

/* Every rank's weights hashed and compared; a difference stops every rank. */
static an_status check_sync(mpi_trainer *m, uint64_t step) {
  const size_t n = m->inner.layout.n_params;
  float *params = malloc(n * sizeof *params); /* (n_params) */
  an_status st = params ? m->inner.ops->read_state(m->inner.impl, params, NULL)
                        : AN_FAIL(AN_ERR_HOST_ALLOC, "--check-sync: %zu parameters", n);
  const uint64_t mine = st == AN_OK ? fnv1a(params, n * sizeof *params) : 0;
  free(params);
  AN_TRY(agree_on(m->comm, st));
  uint64_t *all = malloc((size_t)m->ranks * sizeof *all);
  if (!all) return AN_FAIL(AN_ERR_HOST_ALLOC, "--check-sync: hashes");
  MPI_Allgather(&mine, 1, MPI_UINT64_T, all, 1, MPI_UINT64_T, m->comm);
  int differs = -1;
  for (int r = 1; r < m->ranks && differs < 0; r++)
    if (all[r] != all[0]) differs = r;
  g_echo |= differs >= 0; /* every rank compared the same hashes */
  st = differs < 0 ? AN_OK
                   : AN_FAIL(AN_ERR_ARGUMENT,
                             "--check-sync: after step %" PRIu64 " the weights of rank %d (hash %016" PRIx64
                             ") differ from rank 0's (%016" PRIx64 "): the ranks are out of step",
                             step + 1, differs, all[differs], all[0]);
  free(all);
  return st;
}

static an_status mpi_step(void *impl, const float *images, const int *labels, const an_sgd_params *sgd,
                          uint64_t seed, uint64_t step, float *loss) {
  mpi_trainer *m = impl;
  AN_TRY(local_step(m, images, labels, sgd, seed, step));
  float own = 0;
  const an_status st = inner_net(m) ? an_net_read_loss(inner_net(m), &own) : an_split_read_loss(inner_pair(m), &own);
  if (st != AN_OK && st != AN_ERR_NOT_FINITE) return st;
  float *all = malloc((size_t)m->ranks * sizeof *all);
  if (!all) return AN_FAIL(AN_ERR_HOST_ALLOC, "losses of %d ranks", m->ranks);
  MPI_Allgather(&own, 1, MPI_FLOAT, all, 1, MPI_FLOAT, m->comm);
  double sum = 0; /* the global batch's mean: equal shares, summed in rank order */
  for (int r = 0; r < m->ranks; r++) sum += all[r];
  free(all);
  *loss = (float)(sum / m->ranks);
  if (!isfinite(*loss)) { /* every rank sees the same sum: a failure they share */
    g_echo = 1;
    return AN_FAIL(AN_ERR_NOT_FINITE, "the loss is %f: training diverged", (double)*loss);
  }
  if (m->check_sync > 0 && (step + 1) % (uint64_t)m->check_sync == 0) AN_TRY(check_sync(m, step));
  return AN_OK;
}

static an_status mpi_infer(void *impl, const float *images, const int *labels, float *logits) {
  mpi_trainer *m = impl;
  return m->inner.ops->infer(m->inner.impl, images, labels, logits);
}

static an_status mpi_sync(void *impl) {
  mpi_trainer *m = impl;
  return m->inner.ops->sync(m->inner.impl);
}

static an_status mpi_read_state(void *impl, float *params, float *momentum) {
  mpi_trainer *m = impl;
  return m->inner.ops->read_state(m->inner.impl, params, momentum);
}

static an_status mpi_write_state(void *impl, const float *params, const float *momentum) {
  mpi_trainer *m = impl;
  return m->inner.ops->write_state(m->inner.impl, params, momentum);
}

static void mpi_destroy(void *impl) {
  mpi_trainer *m = impl;
  if (!m) return;
  for (int s = 0; s < m->n_seg; s++) {
    if (m->seg[s]) m->seg[s]->grads_ready = NULL;
    if (m->stage_host[s])
      clEnqueueUnmapMemObject(m->seg[s]->rt->queue, m->stage[s], m->stage_host[s], 0, NULL, NULL);
    if (m->seg[s] && m->seg[s]->rt->queue) clFinish(m->seg[s]->rt->queue);
    if (m->stage[s]) clReleaseMemObject(m->stage[s]);
  }
  for (int i = 0; i < m->n_buckets; i++) {
    if (m->buckets[i].read) clReleaseEvent(m->buckets[i].read);
    free(m->buckets[i].cnt);
    free(m->buckets[i].recv);
  }
  free(m->buckets);
  free(m->order);
  an_trainer_destroy(&m->inner);
  if (m->comm_gather != MPI_COMM_NULL) MPI_Comm_free(&m->comm_gather);
  if (m->comm != MPI_COMM_NULL) MPI_Comm_free(&m->comm);
  free(m);
}

static an_status mpi_agree(void *impl, an_status own) { return agree_on(((mpi_trainer *)impl)->comm, own); }

static an_status mpi_sum_counts(void *impl, int64_t *counts, int n) {
  mpi_trainer *m = impl;
  if (n > 0) MPI_Allreduce(MPI_IN_PLACE, counts, n, MPI_INT64_T, MPI_SUM, m->comm);
  return AN_OK;
}

/* no freeze: a frozen backward produces no gradients below the classifier, whose buckets would never be
 * started (the loop refuses --freeze-features under MPI) */
static const an_trainer_ops mpi_ops = {.init = mpi_init,
                                       .step = mpi_step,
                                       .infer = mpi_infer,
                                       .sync = mpi_sync,
                                       .read_state = mpi_read_state,
                                       .write_state = mpi_write_state,
                                       .destroy = mpi_destroy,
                                       .freeze = NULL,
                                       .agree = mpi_agree,
                                       .sum_counts = mpi_sum_counts};

/* ---- creation ---- */

typedef struct mpi_ctx {
  an_runtime *rt[2];
  an_mpi_options opt;
} mpi_ctx;

/* The rank's inner trainer, its segments and buckets; no collective inside (the caller agrees). */
static an_status build(mpi_trainer *m, const mpi_ctx *c, const char *model, int classes, int input_hw) {
  const int part = m->batch / m->ranks, first = m->rank * part;
  if (c->rt[1]) {
    AN_TRY(an_trainer_create_pair(c->rt[0], c->rt[1], model, classes, part, input_hw, &m->inner));
    an_split *s = m->inner.impl;
    for (int k = 0; k < 2; k++) s->net[k]->sample_base = first + s->first[k]; /* global dropout keys */
    m->seg[0] = s->net[0];
    if (s->mode == AN_SPLIT_COLUMNS) m->seg[1] = s->net[1], m->n_seg = 2;
    else m->mirror = s->net[1], m->n_seg = 1; /* the pair sums its halves first; then both hold it */
  } else {
    AN_TRY(an_trainer_create_net(c->rt[0], model, classes, part, input_hw, &m->inner));
    m->seg[0] = m->inner.impl, m->n_seg = 1;
    m->seg[0]->sample_base = first;
  }
  const double mb = c->opt.bucket_mb > 0 ? c->opt.bucket_mb : 25.0;
  const size_t bucket_floats = (size_t)(mb * 1e6 / sizeof(float)) > 0 ? (size_t)(mb * 1e6 / sizeof(float)) : 1;
  for (int s = 0; s < m->n_seg; s++) {
    m->seg[s]->grads_ready_ctx = m;
    AN_TRY(make_staging(m, s));
    AN_TRY(plan_buckets(m, s, bucket_floats));
  }
  m->order = malloc((size_t)m->n_buckets * sizeof *m->order);
  if (!m->order) return AN_FAIL(AN_ERR_HOST_ALLOC, "bucket order");
  for (int i = 0; i < m->n_buckets; i++) AN_TRY(alloc_bucket(m, &m->buckets[i]));
  return AN_OK;
}

static an_status create_mpi(void *ctx, const char *model, int classes, int batch, int input_hw, an_trainer *out) {
  const mpi_ctx *c = ctx;
  *out = (an_trainer){0};
  mpi_trainer *m = calloc(1, sizeof *m);
  if (!m) return an_world_agree(AN_FAIL(AN_ERR_HOST_ALLOC, "MPI trainer"));
  m->comm = m->comm_gather = MPI_COMM_NULL;
  MPI_Comm_dup(MPI_COMM_WORLD, &m->comm);
  MPI_Comm_dup(MPI_COMM_WORLD, &m->comm_gather);
  MPI_Comm_rank(m->comm, &m->rank);
  MPI_Comm_size(m->comm, &m->ranks);
  m->batch = batch, m->exchange = 1, m->check_sync = c->opt.check_sync;
  an_status st = batch % m->ranks ? AN_FAIL(AN_ERR_ARGUMENT,
                                            "--batch %d does not divide by %d ranks: each rank takes an equal "
                                            "share of the global batch (give a multiple of %d)",
                                            batch, m->ranks, m->ranks)
                                  : build(m, c, model, classes, input_hw);
  st = agree_on(m->comm, st);
  if (st != AN_OK) {
    mpi_destroy(m);
    return st;
  }
  *out = (an_trainer){.ops = &mpi_ops,
                      .impl = m,
                      .owned = 1,
                      .layout = m->inner.layout,
                      .batch = batch,
                      .classes = m->inner.classes,
                      .devices = m->inner.devices * m->ranks,
                      .rank = m->rank,
                      .ranks = m->ranks,
                      .part_first = m->rank * (batch / m->ranks),
                      .part_count = batch / m->ranks};
  return AN_OK;
}

an_status an_train_mpi(an_runtime *rt0, an_runtime *rt1, const an_mpi_options *opt, const an_train_config *cfg,
                       an_train_result *result) {
  if (!g_world.mpi) return an_train_pair(rt0, rt1, cfg, result); /* a process started alone */
  if (cfg->accumulate > 1) /* every rank has the same cfg: all stop, rank 0 says why */
    return AN_FAIL(AN_ERR_ARGUMENT,
                   "--accumulate %d runs one process's batch as micro-batches, as that many "
                   "ranks would: under mpirun the ranks are the micro-batches (leave it out)",
                   cfg->accumulate);
  mpi_ctx c = {{rt0, rt1}, opt ? *opt : (an_mpi_options){0}};
  return an_train_with(create_mpi, &c, cfg, result);
}

/* ---- the bench ---- */

/* warmup then iterations pairs of steps, one without the exchange and one with it, alternating so that
 * both see the same machine; then the exchange alone. t: with, exchange alone, exposed, without (s). */
static an_status timed_steps(mpi_trainer *m, const float *images, const int *labels, int warmup, int iterations,
                             double t[4]) {
  const an_sgd_params sgd = {0.001f, 0.9f, 0.0f, 0};
  for (int k = 0; k < 2 * (warmup + iterations); k++) {
    m->exchange = k & 1;
    MPI_Barrier(m->comm);
    const double t0 = an_seconds();
    float loss;
    AN_TRY(local_step(m, images, labels, &sgd, 1, (uint64_t)k));
    const an_status st = inner_net(m) ? an_net_read_loss(inner_net(m), &loss)
                                      : an_split_read_loss(inner_pair(m), &loss);
    if (st != AN_OK && st != AN_ERR_NOT_FINITE) return st;
    if (k < 2 * warmup) continue;
    t[m->exchange ? 0 : 3] += an_seconds() - t0;
    if (!m->exchange) continue;
    /* the rank whose backward ended last waited for nobody: its tail is the exchange's own */
    double tail = m->t_end - m->t_last_ready, least;
    MPI_Allreduce(&tail, &least, 1, MPI_DOUBLE, MPI_MIN, m->comm);
    t[2] += least;
  }
  for (int k = 0; m->exchange && k < iterations; k++) { /* the exchange alone: every bucket staged first */
    m->n_ordered = 0;
    m->next[0] = m->next[1] = 0;
    for (int s = 0; s < m->n_seg; s++) AN_TRY(stage_ready(m, s, -1));
    for (int s = 0; s < m->n_seg; s++) AN_TRY(an_finish(m->seg[s]->rt));
    MPI_Barrier(m->comm);
    const double t0 = an_seconds();
    AN_TRY(run_exchange(m));
    for (int s = 0; s < m->n_seg; s++) AN_TRY(an_finish(m->seg[s]->rt));
    if (m->mirror) AN_TRY(an_finish(m->mirror->rt));
    t[1] += an_seconds() - t0;
  }
  return AN_OK;
}

an_status an_mpi_bench_train(an_runtime *rt0, an_runtime *rt1, const char *model, int classes, int batch_per_rank,
                             int input_hw, const an_mpi_options *opt, int warmup, int iterations,
                             an_mpi_bench *out) {
  memset(out, 0, sizeof *out);
  mpi_ctx c = {{rt0, rt1}, opt ? *opt : (an_mpi_options){0}};
  an_trainer t;
  AN_TRY(create_mpi(&c, model, classes, batch_per_rank * g_world.size, input_hw, &t));
  mpi_trainer *m = t.impl;
  const size_t pixels = (size_t)batch_per_rank * 3 * input_hw * input_hw;
  float *images = malloc(pixels * sizeof *images);               /* (batch_per_rank, 3, H, W) */
  int *labels = malloc((size_t)batch_per_rank * sizeof *labels); /* (batch_per_rank) */
  an_status st = images && labels ? t.ops->init(t.impl, 1) : AN_FAIL(AN_ERR_HOST_ALLOC, "bench batch");
  if (st == AN_OK) {
    an_rng r = {(uint64_t)m->rank + 1};
    for (size_t i = 0; i < pixels; i++) images[i] = (float)an_rng_uniform_open(&r) - 0.5f;
    for (int i = 0; i < batch_per_rank; i++) labels[i] = (int)(an_rng_uniform_open(&r) * classes) % classes;
  }
  double own[4] = {0, 0, 0, 0};
  st = agree_on(m->comm, st == AN_OK ? timed_steps(m, images, labels, warmup, iterations, own) : st);
  if (st == AN_OK) {
    double worst[4];
    MPI_Allreduce(own, worst, 4, MPI_DOUBLE, MPI_MAX, m->comm);
    const double n = iterations;
    out->ranks = m->ranks, out->buckets = m->n_buckets;
    out->grad_bytes = 0;
    for (int s = 0; s < m->n_seg; s++) out->grad_bytes += (double)m->seg[s]->n_params * sizeof(float);
    out->step_ms = worst[0] / n * 1e3, out->allreduce_ms = worst[1] / n * 1e3, out->exposed_ms = worst[2] / n * 1e3;
    out->compute_ms = worst[3] / n * 1e3;
    out->overlap = out->allreduce_ms > out->exposed_ms ? 1.0 - out->exposed_ms / out->allreduce_ms : 0;
    out->efficiency = out->step_ms > 0 ? out->compute_ms / out->step_ms : 0;
    out->busbw_gbs = out->allreduce_ms > 0
                         ? 2.0 * (m->ranks - 1) / m->ranks * out->grad_bytes / (out->allreduce_ms * 1e-3) / 1e9
                         : 0;
  }
  free(images);
  free(labels);
  an_trainer_destroy(&t);
  return st;
}

#endif
