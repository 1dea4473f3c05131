/* The inference plan: a model's forward pass with the fewest device bytes (see include/alexnet/infer.h).
 *
 * Buffers (floats):
 *   params  (n_params)                  conv weights and every bias (the last layer's bias padded)
 *   prepared (prepared_floats)          each convolution's filters as its forward pass reads them when that
 *                                       is Winograd's (an_conv_prepare: transformed once per load, not
 *                                       per run), layer after layer
 *   fc_weight[i] (IN, OUT_pad)          each fully connected weight transposed, in its own buffer at
 *                                       offset 0: CLBlast's indirect GEMM then uses it in place. In
 *                                       PyTorch's (OUT, IN) layout, or at an offset, it copies the whole
 *                                       matrix to its scratch on every call (146 MiB for alexnet's fc6,
 *                                       more than half the weights again). OUT_pad: the last layer's
 *                                       classes rounded up to the GEMM's tile (1000 -> 1024) for the same
 *                                       reason; the padding is zeros and never read back.
 *                                       On the project's GEMM, at batches that fill its 64-column strips,
 *                                       the weight (OUT, IN) packed as that GEMM's A instead (layers/fc.c)
 *   acts    (act_floats)                layer outputs, ping-pong: side 0 starts at 0, side 1 ends at
 *                                       act_floats; a layer reads one side and writes the other, so
 *                                       act_floats = max over layers of (input + output) floats
 *   work    (work_floats)               im2col + GEMM output of a chunk of images, or Winograd's
 *                                       filters and tiles (conv.c)
 *   input   (slots, N, 3, H, W)         the batch (host memory on host-unified devices)
 *   output  (N, classes)                the logits (host memory on host-unified devices)
 * and the runtime's GEMM scratch, reserved for exactly the GEMM calls the forward pass makes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alexnet/infer.h"
#include "alexnet/io.h"

#include <clblast_c.h>
#include "gemm/gemm.h"
#include "runtime/check.h"
#include "runtime/launch.h"

#define PAGE_BYTES ((size_t)4096)

static size_t round_up(size_t n, size_t m) { return (n + m - 1) / m * m; }
/* What an_alloc creates for n floats (it allocates one float for an empty buffer). */
static size_t alloc_bytes(size_t n_floats) { return (n_floats ? n_floats : 1) * sizeof(float); }
/* A buffer over host memory: whole pages, so the host allocation is page-aligned and page-sized. */
static size_t host_bytes(size_t n_floats) { return round_up(alloc_bytes(n_floats), PAGE_BYTES); }

/* ---- shapes and the ping-pong layout ---- */

static size_t layer_in_floats(const an_infer *inf, const an_layer_plan *L) {
  return (size_t)inf->batch * L->in_c * L->in_h * L->in_w;
}
static size_t layer_out_floats(const an_infer *inf, const an_layer_plan *L) {
  return (size_t)inf->batch * L->out_c * L->out_h * L->out_w;
}

static size_t temp_bytes(an_runtime *rt, int ta, int tb, size_t m, size_t n, size_t k, size_t a_off, size_t lda,
                         size_t b_off, size_t ldb, size_t c_off, size_t ldc);

/* The last layer's width rounded up to what the GEMM's tiles want: the padding that costs least in
 * weight bytes plus CLBlast scratch (each candidate asked of CLBlast itself). */
static int pad_classes(const an_infer *inf, const an_layer_plan *L) {
  const size_t in = (size_t)L->in_c * L->in_h * L->in_w;
  static const int multiples[] = {1, 16, 32, 64, 128, 256};
  int best = inf->classes;
  size_t best_cost = (size_t)-1;
  for (size_t j = 0; j < sizeof multiples / sizeof multiples[0]; j++) {
    const int out = (inf->classes + multiples[j] - 1) / multiples[j] * multiples[j];
    const size_t cost = temp_bytes(inf->rt, 0, 0, (size_t)inf->batch, (size_t)out, in, 0, in, 0, (size_t)out, 0,
                                   (size_t)out) +
                        (size_t)(out - inf->classes) * in * sizeof(float);
    if (cost < best_cost) best_cost = cost, best = out;
  }
  return best;
}

/* Shapes, tensors, which layers are identities, and where each output lives. */
static an_status plan_shapes(an_infer *inf) {
  const an_model_desc *m = inf->model;
  int i, last = -1;
  for (i = 0; i < m->n_layers; i++)
    if (m->layers[i].kind == AN_LAYER_GATHER || m->layers[i].kind == AN_LAYER_SUM) /* the split's, not ours */
      return AN_FAIL(AN_ERR_ARGUMENT, "%s: layer %d exchanges between devices: inference runs whole models", m->name,
                     i);
  AN_TRY(
      an_plan_layers(m, inf->classes, inf->input_hw, 1, inf->layers, inf->tensors, &inf->n_tensors, &inf->n_params));
  for (i = 0; i < m->n_layers; i++) {
    const an_layer_plan *L = &inf->layers[i];
    if (L->desc->kind == AN_LAYER_AVGPOOL) /* PyTorch's adaptive pool is then the identity */
      inf->skip[i] = L->in_h == L->out_h && L->in_w == L->out_w;
    inf->skip[i] |= L->desc->kind == AN_LAYER_DROPOUT;
    if (L->desc->kind == AN_LAYER_FC) inf->out_pad[i] = L->out_c;
    if (!inf->skip[i]) last = i;
  }
  if (last < 0 || inf->layers[last].out_c * inf->layers[last].out_h * inf->layers[last].out_w != inf->classes)
    return AN_FAIL(AN_ERR_ARGUMENT, "%s: the last layer does not give %d classes", m->name, inf->classes);
  if (inf->layers[last].desc->kind == AN_LAYER_FC) { /* its bias is the last tensor: pad it in place */
    inf->out_pad[last] = pad_classes(inf, &inf->layers[last]);
    inf->n_params += (size_t)(inf->out_pad[last] - inf->classes);
  }
  inf->classes_pad = inf->layers[last].desc->kind == AN_LAYER_FC ? inf->out_pad[last] : inf->classes;
  inf->input_floats = (size_t)inf->batch * 3 * inf->input_hw * inf->input_hw;
  inf->output_floats = (size_t)inf->batch * inf->classes_pad;
  /* sides: -1 the input buffer, 0 the start of acts, 1 its end, 2 the output buffer */
  int *sides = malloc(2 * (size_t)m->n_layers * sizeof *sides); /* (n_layers, 2) each layer's in, out side */
  if (!sides) return AN_FAIL(AN_ERR_HOST_ALLOC, "inference plan of %s", m->name);
  int side = -1;
  size_t need = 0;
  for (i = 0; i < m->n_layers; i++) {
    const an_layer_plan *L = &inf->layers[i];
    inf->reads_input[i] = side == -1;
    sides[2 * i] = side;
    if (!inf->skip[i]) { /* a skipped layer's output is its input, where it is */
      const int out_side = i == last ? 2 : (side == 0 ? 1 : 0);
      inf->writes_output[i] = out_side == 2;
      if (out_side != 2) {
        const size_t pair = (side >= 0 ? layer_in_floats(inf, L) : 0) + layer_out_floats(inf, L);
        if (pair > need) need = pair;
      }
      side = out_side;
    }
    sides[2 * i + 1] = side;
  }
  inf->act_floats = need;
  /* side 0 starts at 0, side 1 ends flush with acts' end; input and output start at 0 of their own */
  for (i = 0; i < m->n_layers; i++) {
    an_layer_plan *L = &inf->layers[i];
    L->in_off = sides[2 * i] == 1 ? need - layer_in_floats(inf, L) : 0;
    L->out_off = sides[2 * i + 1] == 1 ? need - layer_out_floats(inf, L) : 0;
    L->aux_off = 0;
  }
  free(sides);
  return AN_OK;
}

/* ---- CLBlast's scratch for exactly the forward pass's GEMM calls (offsets matter: an operand at an
 *      offset is copied to the scratch) ---- */

static size_t temp_bytes(an_runtime *rt, int ta, int tb, size_t m, size_t n, size_t k, size_t a_off, size_t lda,
                         size_t b_off, size_t ldb, size_t c_off, size_t ldc) {
  return an_gemm_temp_bytes(rt, ta, tb, m, n, k, a_off, lda, b_off, ldb, c_off, ldc);
}

/* 1 when fully connected layer i keeps its weight packed as the project's GEMM's A (an_fc_forward_packed) */
static int fc_packed(const an_infer *inf, int i) {
  return inf->layers[i].desc->kind == AN_LAYER_FC && an_fc_packed_applies(inf->rt, inf->batch);
}

/* Layer i's prepared filters with work_floats of workspace: their floats (0: none), and in *off where they
 * start in the prepared buffer (the layers before it, in order); the total after the last layer with i =
 * n_layers. */
static size_t prepared_of(const an_infer *inf, int i, size_t work_floats, size_t *off) {
  size_t at = 0, floats = 0;
  for (int j = 0; j <= i && j < inf->model->n_layers; j++) {
    at += floats, floats = 0;
    const an_layer_plan *L = &inf->layers[j];
    if (L->desc->kind != AN_LAYER_CONV || inf->skip[j]) continue;
    const an_conv_dims d = an_layer_conv_dims(L, inf->batch);
    floats = an_conv_prepared_floats(inf->rt, &d, work_floats);
  }
  if (i >= inf->model->n_layers) at += floats, floats = 0;
  *off = at;
  return floats;
}

/* Layer i's buffers in the inference layout, reading slot's batch (buffers NULL before allocation: the
 * GEMM list reads offsets only). */
static an_layer_io infer_io(const an_infer *inf, int i, int slot, size_t work_floats) {
  const an_layer_plan *L = &inf->layers[i];
  an_layer_io io = {0};
  io.rt = inf->rt, io.L = L, io.n = inf->batch;
  io.in = inf->reads_input[i] ? an_at(inf->input, (size_t)slot * inf->input_floats + L->in_off)
                              : an_at(inf->acts, L->in_off);
  io.out = inf->writes_output[i] ? an_at(inf->output, 0) : an_at(inf->acts, L->out_off);
  io.aux = an_at(NULL, 0); /* nothing kept for a backward pass */
  if (L->weight >= 0)
    io.weight = L->desc->kind == AN_LAYER_FC ? an_at(inf->fc_weight ? inf->fc_weight[i] : NULL, 0)
                                             : an_at(inf->params, inf->tensors[L->weight].offset);
  if (L->bias >= 0) io.bias = an_at(inf->params, inf->tensors[L->bias].offset);
  io.weight_in_out = L->desc->kind == AN_LAYER_FC;
  io.weight_packed = fc_packed(inf, i);
  io.out_pad = inf->out_pad[i];
  io.work = an_at(inf->work, 0), io.work_floats = work_floats;
  size_t at;
  io.prepared_floats = prepared_of(inf, i, work_floats, &at);
  io.prepared = an_at(inf->prepared, at);
  return io;
}

/* The largest scratch any GEMM of the forward pass asks for, with work_floats of im2col workspace: the
 * layer table's list of the forward pass's calls, each asked of CLBlast. */
static size_t gemm_temp_need(const an_infer *inf, size_t work_floats) {
  size_t most = 0;
  for (int i = 0; i < inf->model->n_layers; i++) {
    const an_layer_ops *ops = an_layer_ops_of(inf->layers[i].desc->kind);
    if (inf->skip[i] || !ops->gemms) continue;
    const an_layer_io io = infer_io(inf, i, 0, work_floats);
    if (io.weight_packed) continue; /* the product on the packed weight takes no scratch */
    const int total = ops->gemms(&io, AN_PASS_FORWARD, NULL, 0);
    an_gemm_call *calls = malloc((size_t)(total ? total : 1) * sizeof *calls); /* (total) */
    if (!calls) return (size_t)-1;
    ops->gemms(&io, AN_PASS_FORWARD, calls, total);
    for (int j = 0; j < total; j++) {
      const an_gemm_call *c = &calls[j];
      const size_t t = temp_bytes(inf->rt, c->trans_a, c->trans_b, c->m, c->n, c->k, c->a_off, c->lda, c->b_off,
                                  c->ldb, c->c_off, c->ldc);
      if (t > most) most = t;
    }
    free(calls);
  }
  return most;
}

/* ---- memory ---- */

static size_t fc_weight_floats(const an_infer *inf, int i) {
  const an_layer_plan *L = &inf->layers[i];
  const size_t in = (size_t)L->in_c * L->in_h * L->in_w;
  return fc_packed(inf, i) ? an_panel_packed_floats((size_t)L->out_c, in) : in * inf->out_pad[i];
}

static void memory_of(const an_infer *inf, size_t work_floats, size_t temp, an_infer_memory *mem) {
  mem->params_bytes = alloc_bytes(inf->n_params);
  size_t prepared;
  prepared_of(inf, inf->model->n_layers, work_floats, &prepared);
  if (prepared) mem->params_bytes += alloc_bytes(prepared);
  for (int i = 0; i < inf->model->n_layers; i++)
    if (inf->layers[i].desc->kind == AN_LAYER_FC) mem->params_bytes += alloc_bytes(fc_weight_floats(inf, i));
  mem->acts_bytes = alloc_bytes(inf->act_floats);
  mem->work_bytes = alloc_bytes(work_floats);
  const size_t in = (size_t)inf->input_slots * inf->input_floats;
  mem->input_bytes = inf->zero_copy ? host_bytes(in) : alloc_bytes(in);
  mem->output_bytes = inf->zero_copy ? host_bytes(inf->output_floats) : alloc_bytes(inf->output_floats);
  mem->gemm_temp_bytes = temp > inf->rt->gemm_temp_bytes ? temp : inf->rt->gemm_temp_bytes;
  mem->total_bytes = mem->params_bytes + mem->acts_bytes + mem->work_bytes + mem->input_bytes + mem->output_bytes +
                     mem->gemm_temp_bytes;
  mem->chunk_images = 0;
  size_t biggest = 0;
  for (int i = 0; i < inf->model->n_layers; i++) {
    const an_layer_plan *L = &inf->layers[i];
    if (L->desc->kind != AN_LAYER_CONV) continue;
    const an_conv_dims d = an_layer_conv_dims(L, inf->batch);
    if (an_conv_min_work_floats(&d) > biggest) {
      biggest = an_conv_min_work_floats(&d);
      mem->chunk_images = an_conv_chunk_images(&d, work_floats);
    }
  }
}

static size_t memory_limit(const an_runtime *rt, const an_infer_options *o) {
  const size_t global = (size_t)rt->info.global_mem_bytes;
  if (o && o->max_memory_bytes) return o->max_memory_bytes;
  return (size_t)((double)global * AN_INFER_DEFAULT_MEMORY_FRACTION);
}

/* Fits the workspace: the whole batch in one chunk when it fits, else the largest workspace (whole
 * images of the convolution that needs most) under the limit. Returns 1 and sets inf->work_floats and
 * inf->mem when the plan fits, 0 when not even one image per chunk does (inf->mem then holds that
 * smallest plan). */
static int fit(an_infer *inf, size_t limit) {
  const size_t max_alloc = (size_t)inf->rt->info.max_alloc_bytes;
  size_t all = 0, one = 0;
  for (int i = 0; i < inf->model->n_layers; i++) {
    const an_layer_plan *L = &inf->layers[i];
    if (L->desc->kind != AN_LAYER_CONV) continue;
    const an_conv_dims d = an_layer_conv_dims(L, inf->batch);
    if (an_conv_work_floats(&d, inf->batch) > all) all = an_conv_work_floats(&d, inf->batch);
    if (an_conv_min_work_floats(&d) > one) one = an_conv_min_work_floats(&d);
  }
  for (int i = 0; i < inf->model->n_layers; i++) { /* the packed fully connected layers' transposes */
    const an_layer_plan *L = &inf->layers[i];
    if (!fc_packed(inf, i)) continue;
    const size_t need = an_fc_packed_work_floats(inf->batch, L->in_c * L->in_h * L->in_w, L->out_c);
    if (need > all) all = need;
    if (need > one) one = need;
  }
  size_t work = all;
  if (work * sizeof(float) > max_alloc) work = max_alloc / sizeof(float);
  if (work < one) work = one;
  for (int iter = 0; iter < 64; iter++) {
    memory_of(inf, work, gemm_temp_need(inf, work), &inf->mem);
    inf->mem.limit_bytes = limit;
    int buffers_ok = alloc_bytes(inf->n_params) <= max_alloc && inf->mem.acts_bytes <= max_alloc &&
                     inf->mem.work_bytes <= max_alloc && inf->mem.input_bytes <= max_alloc &&
                     inf->mem.gemm_temp_bytes <= max_alloc;
    for (int i = 0; i < inf->model->n_layers; i++)
      if (inf->layers[i].desc->kind == AN_LAYER_FC && alloc_bytes(fc_weight_floats(inf, i)) > max_alloc)
        buffers_ok = 0;
    if (inf->mem.total_bytes <= limit && buffers_ok) {
      inf->work_floats = work;
      prepared_of(inf, inf->model->n_layers, work, &inf->prepared_floats);
      return 1;
    }
    if (work == one || !buffers_ok) break;
    const size_t over = (inf->mem.total_bytes - limit + sizeof(float) - 1) / sizeof(float);
    work = work > one + over ? work - over : one; /* the scratch shrinks with the chunk: iterate */
  }
  inf->work_floats = work;
  return 0;
}

static void plan_free(an_infer *inf) {
  free(inf->layers);
  free(inf->tensors);
  free(inf->skip);
  free(inf->reads_input);
  free(inf->writes_output);
  free(inf->out_pad);
  free(inf->fc_weight);
  inf->fc_weight = NULL;
  inf->layers = NULL, inf->tensors = NULL, inf->skip = inf->reads_input = inf->writes_output = inf->out_pad = NULL;
}

/* Shapes and memory of model at batch, without an error message when it does not fit (*fits = 0). */
static an_status plan_into(an_infer *inf, an_runtime *rt, const char *model, int classes, int batch, int input_hw,
                           const an_infer_options *opts, int *fits) {
  const an_model_desc *m = NULL;
  AN_TRY(an_model_lookup(model, &m));
  if (classes < 1 || batch < 1 || input_hw < 1)
    return AN_FAIL(AN_ERR_ARGUMENT, "classes %d, batch %d, input %d must be positive", classes, batch, input_hw);
  const int slots = opts && opts->input_slots ? opts->input_slots : 1;
  if (slots < 1 || slots > 2) return AN_FAIL(AN_ERR_ARGUMENT, "input slots %d: 1 or 2", slots);
  inf->rt = rt, inf->model = m, inf->classes = classes, inf->batch = batch, inf->input_hw = input_hw;
  inf->input_slots = slots;
  inf->zero_copy = !opts || opts->zero_copy < 0 ? rt->info.host_unified : opts->zero_copy != 0;
  const size_t nl = (size_t)m->n_layers;
  inf->layers = calloc(nl, sizeof *inf->layers);
  inf->tensors = calloc(2 * nl, sizeof *inf->tensors);
  inf->skip = calloc(nl, sizeof *inf->skip);
  inf->reads_input = calloc(nl, sizeof *inf->reads_input);
  inf->writes_output = calloc(nl, sizeof *inf->writes_output);
  inf->out_pad = calloc(nl, sizeof *inf->out_pad);
  inf->fc_weight = calloc(nl, sizeof *inf->fc_weight);
  if (!inf->layers || !inf->tensors || !inf->skip || !inf->reads_input || !inf->writes_output || !inf->out_pad ||
      !inf->fc_weight)
    return AN_FAIL(AN_ERR_HOST_ALLOC, "inference plan of %s", m->name);
  AN_TRY(plan_shapes(inf));
  *fits = fit(inf, memory_limit(rt, opts));
  return AN_OK;
}

static an_status no_fit_error(an_runtime *rt, const char *model, int classes, int batch, int input_hw,
                              const an_infer_options *opts, const an_infer_memory *mem) {
  /* the largest batch that fits: plans are cheap (no allocation), and fitting is monotone in the batch */
  int lo = 0, hi = batch - 1;
  while (lo < hi) {
    const int mid = (lo + hi + 1) / 2;
    an_infer probe = {0};
    int fits = 0;
    const an_status s = plan_into(&probe, rt, model, classes, mid, input_hw, opts, &fits);
    plan_free(&probe);
    if (s != AN_OK) return s;
    if (fits) lo = mid;
    else hi = mid - 1;
  }
  char what[160];
  if (lo > 0) snprintf(what, sizeof what, "batch %d fits", lo);
  else snprintf(what, sizeof what, "not even batch 1 fits: raise --max-memory or take a smaller model");
  const double mib = 1048576.0;
  return AN_FAIL(AN_ERR_DEVICE_MEMORY,
                 "%s at batch %d needs %.1f MiB of device memory (weights %.1f, activations %.1f, im2col %.1f for "
                 "%d image%s per chunk, input %.1f, output %.1f, GEMM scratch %.1f MiB); the limit is %.1f MiB of "
                 "%s's %.0f MiB (largest buffer %.0f MiB): %s",
                 model, batch, mem->total_bytes / mib, mem->params_bytes / mib, mem->acts_bytes / mib,
                 mem->work_bytes / mib, mem->chunk_images, mem->chunk_images == 1 ? "" : "s", mem->input_bytes / mib,
                 mem->output_bytes / mib, mem->gemm_temp_bytes / mib, mem->limit_bytes / mib, rt->info.name,
                 rt->info.global_mem_bytes / mib, rt->info.max_alloc_bytes / mib, what);
}

an_status an_infer_plan(an_runtime *rt, const char *model, int classes, int batch, int input_hw,
                        const an_infer_options *opts, an_infer_memory *out) {
  an_infer inf = {0};
  int fits = 0;
  an_status s = plan_into(&inf, rt, model, classes, batch, input_hw, opts, &fits);
  if (s == AN_OK) *out = inf.mem;
  plan_free(&inf);
  if (s == AN_OK && !fits) s = no_fit_error(rt, model, classes, batch, input_hw, opts, out);
  return s;
}

/* ---- buffers ---- */

static an_status host_buffer(an_runtime *rt, size_t bytes, cl_mem_flags flags, float **host, cl_mem *mem) {
  void *p = NULL;
  if (posix_memalign(&p, PAGE_BYTES, bytes) != 0)
    return AN_FAIL(AN_ERR_HOST_ALLOC, "%zu bytes of page-aligned host memory", bytes);
  memset(p, 0, bytes);
  *host = p;
  cl_int rc;
  *mem = clCreateBuffer(rt->context, flags | CL_MEM_USE_HOST_PTR, bytes, p, &rc);
  if (rc != CL_SUCCESS)
    return AN_FAIL(rc, "clCreateBuffer(CL_MEM_USE_HOST_PTR, %zu bytes) on %s", bytes, rt->info.name);
  return AN_OK;
}

static an_status map_input(an_infer *inf, int slot) {
  if (!inf->zero_copy) {
    inf->input_map[slot] = inf->host_input + (size_t)slot * inf->input_floats;
    return AN_OK;
  }
  cl_int rc;
  inf->input_map[slot] = clEnqueueMapBuffer(inf->rt->queue, inf->input, CL_TRUE, CL_MAP_WRITE_INVALIDATE_REGION,
                                            (size_t)slot * inf->input_floats * sizeof(float),
                                            inf->input_floats * sizeof(float), 0, NULL, NULL, &rc);
  if (rc != CL_SUCCESS) {
    inf->input_map[slot] = NULL;
    return AN_FAIL(rc, "clEnqueueMapBuffer(input slot %d)", slot);
  }
  return AN_OK;
}

an_status an_infer_create(an_runtime *rt, const char *model, int classes, int batch, int input_hw,
                          const an_infer_options *opts, an_infer **out) {
  *out = NULL;
  an_infer *inf = calloc(1, sizeof *inf);
  if (!inf) return AN_FAIL(AN_ERR_HOST_ALLOC, "inference plan");
  int fits = 0;
  an_status status = plan_into(inf, rt, model, classes, batch, input_hw, opts, &fits);
  if (status != AN_OK) goto cleanup;
  if (!fits) {
    status = no_fit_error(rt, model, classes, batch, input_hw, opts, &inf->mem);
    goto cleanup;
  }
  AN_TRY_GOTO(an_alloc(rt, inf->n_params, &inf->params));
  if (inf->prepared_floats) AN_TRY_GOTO(an_alloc(rt, inf->prepared_floats, &inf->prepared));
  for (int i = 0; i < inf->model->n_layers; i++)
    if (inf->layers[i].desc->kind == AN_LAYER_FC)
      AN_TRY_GOTO(an_alloc(rt, fc_weight_floats(inf, i), &inf->fc_weight[i]));
  if (inf->classes_pad != inf->classes && !(inf->logits = malloc(inf->output_floats * sizeof(float)))) {
    status = AN_FAIL(AN_ERR_HOST_ALLOC, "logits (%zu floats)", inf->output_floats);
    goto cleanup;
  }
  AN_TRY_GOTO(an_alloc(rt, inf->act_floats, &inf->acts));
  AN_TRY_GOTO(an_alloc(rt, inf->work_floats, &inf->work));
  const size_t in = (size_t)inf->input_slots * inf->input_floats;
  if (inf->zero_copy) {
    AN_TRY_GOTO(host_buffer(rt, host_bytes(in), CL_MEM_READ_ONLY, &inf->host_input, &inf->input));
    AN_TRY_GOTO(host_buffer(rt, host_bytes(inf->output_floats), CL_MEM_READ_WRITE, &inf->host_output, &inf->output));
  } else {
    AN_TRY_GOTO(an_alloc(rt, in, &inf->input));
    AN_TRY_GOTO(an_alloc(rt, inf->output_floats, &inf->output));
    inf->host_input = calloc(in, sizeof(float));
    inf->host_output = calloc(inf->output_floats, sizeof(float));
    if (!inf->host_input || !inf->host_output) {
      status = AN_FAIL(AN_ERR_HOST_ALLOC, "host staging for %zu input floats", in);
      goto cleanup;
    }
  }
  AN_TRY_GOTO(an_reserve_gemm_temp(rt, inf->mem.gemm_temp_bytes));
  for (int s = 0; s < inf->input_slots; s++) AN_TRY_GOTO(map_input(inf, s));
  *out = inf;
  return AN_OK;
cleanup:
  an_infer_destroy(inf);
  return status;
}

void an_infer_destroy(an_infer *inf) {
  if (!inf) return;
  if (inf->zero_copy && inf->rt) { /* hand mapped regions back before the buffers go */
    for (int s = 0; s < 2; s++)
      if (inf->input_map[s]) clEnqueueUnmapMemObject(inf->rt->queue, inf->input, inf->input_map[s], 0, NULL, NULL);
    if (inf->output_map) clEnqueueUnmapMemObject(inf->rt->queue, inf->output, inf->output_map, 0, NULL, NULL);
    clFinish(inf->rt->queue);
  }
  cl_mem mems[] = {inf->output, inf->input, inf->work, inf->acts, inf->prepared, inf->params};
  for (size_t i = 0; i < sizeof mems / sizeof mems[0]; i++)
    if (mems[i]) clReleaseMemObject(mems[i]);
  for (int i = 0; inf->fc_weight && inf->model && i < inf->model->n_layers; i++)
    if (inf->fc_weight[i]) clReleaseMemObject(inf->fc_weight[i]);
  free(inf->logits);
  free(inf->host_output); /* USE_HOST_PTR memory outlives its buffer: freed after the release */
  free(inf->host_input);
  plan_free(inf);
  free(inf);
}

size_t an_infer_device_bytes(const an_infer *inf) {
  return inf->mem.total_bytes - inf->mem.gemm_temp_bytes + inf->rt->gemm_temp_bytes;
}

/* ---- weights ---- */

/* A fully connected weight w (OUT, IN) into its buffer: packed as the project's GEMM's A (fc_packed),
 * else transposed, (IN, OUT_pad) with zero columns of padding. */
static an_status store_fc_weight(an_infer *inf, int layer, const float *w /* (OUT, IN) */) {
  const an_layer_plan *L = &inf->layers[layer];
  const size_t in = (size_t)L->in_c * L->in_h * L->in_w, out = (size_t)L->out_c, pad = (size_t)inf->out_pad[layer];
  cl_int rc;
  float *wt = clEnqueueMapBuffer(inf->rt->queue, inf->fc_weight[layer], CL_TRUE, CL_MAP_WRITE_INVALIDATE_REGION, 0,
                                 fc_weight_floats(inf, layer) * sizeof(float), 0, NULL, NULL, &rc);
  if (rc != CL_SUCCESS) return AN_FAIL(rc, "clEnqueueMapBuffer(%s)", inf->tensors[L->weight].name);
  if (fc_packed(inf, layer)) {
    an_panel_pack_host(w, out, in, wt);
  } else {              /* (IN, OUT_pad) */
    enum { TILE = 32 }; /* blocked, so that both sides stream through the cache */
    for (size_t i0 = 0; i0 < in; i0 += TILE)
      for (size_t o0 = 0; o0 < out; o0 += TILE)
        for (size_t i = i0; i < i0 + TILE && i < in; i++)
          for (size_t o = o0; o < o0 + TILE && o < out; o++) wt[i * pad + o] = w[o * in + i];
    for (size_t i = 0; i < in && pad > out; i++) memset(wt + i * pad + out, 0, (pad - out) * sizeof(float));
  }
  rc = clEnqueueUnmapMemObject(inf->rt->queue, inf->fc_weight[layer], wt, 0, NULL, NULL);
  return rc == CL_SUCCESS ? AN_OK : AN_FAIL(rc, "clEnqueueUnmapMemObject(%s)", inf->tensors[L->weight].name);
}

/* A fully connected weight from the file into its buffer (store_fc_weight). The file's layout passes
 * through host memory once, while loading. */
static an_status load_fc_weight(an_infer *inf, an_safetensors *st, int index, int layer) {
  const an_layer_plan *L = &inf->layers[layer];
  const size_t count = inf->tensors[L->weight].count;
  float *w = malloc(count * sizeof *w); /* (OUT, IN) */
  if (!w)
    return AN_FAIL(AN_ERR_HOST_ALLOC, "%s: host copy of %s (%zu floats)", st->source, inf->tensors[L->weight].name,
                   count);
  an_status status = an_st_read(st, index, w, count * sizeof *w);
  if (status == AN_OK) status = store_fc_weight(inf, layer, w);
  free(w);
  return status;
}

/* The parameter buffer mapped for writing, zeroed (the last bias's padding). */
static an_status map_params(an_infer *inf, float **params) {
  cl_int rc;
  *params = clEnqueueMapBuffer(inf->rt->queue, inf->params, CL_TRUE, CL_MAP_WRITE_INVALIDATE_REGION, 0,
                               alloc_bytes(inf->n_params), 0, NULL, NULL, &rc);
  if (rc != CL_SUCCESS) {
    *params = NULL;
    return AN_FAIL(rc, "clEnqueueMapBuffer(parameters, %zu bytes)", alloc_bytes(inf->n_params));
  }
  memset(*params, 0, alloc_bytes(inf->n_params));
  return AN_OK;
}

/* Unmaps params (when mapped) and, when all went well, waits for the device. */
static an_status unmap_params(an_infer *inf, float *params, an_status status) {
  if (!params) return status;
  const cl_int rc = clEnqueueUnmapMemObject(inf->rt->queue, inf->params, params, 0, NULL, NULL);
  if (rc != CL_SUCCESS && status == AN_OK) status = AN_FAIL(rc, "clEnqueueUnmapMemObject(parameters)");
  if (status == AN_OK) status = an_finish(inf->rt);
  return status;
}

/* Every convolution's prepared filters from the weights now in params (after each load). */
static an_status prepare(an_infer *inf) {
  for (int i = 0; i < inf->model->n_layers; i++) {
    const an_layer_io io = infer_io(inf, i, 0, inf->work_floats);
    if (!io.prepared_floats) continue;
    const an_conv_dims d = an_layer_conv_dims(&inf->layers[i], inf->batch);
    AN_TRY(an_conv_prepare(inf->rt, &d, io.weight, io.prepared, io.work));
  }
  return an_finish(inf->rt);
}

an_status an_infer_init(an_infer *inf, uint64_t seed) {
  float *params = NULL, *w = NULL;
  uint64_t state = seed;
  an_status status = map_params(inf, &params);
  for (int i = 0; i < inf->model->n_layers && status == AN_OK; i++) {
    const an_layer_plan *L = &inf->layers[i];
    if (L->weight < 0) continue;
    const an_tensor *wt = &inf->tensors[L->weight], *b = L->bias >= 0 ? &inf->tensors[L->bias] : NULL;
    if (L->desc->kind != AN_LAYER_FC) {
      an_layer_init_host(L, wt, b, &state, params + wt->offset, b ? params + b->offset : NULL);
      continue;
    }
    w = malloc(wt->count * sizeof *w); /* (OUT, IN) */
    if (!w) {
      status = AN_FAIL(AN_ERR_HOST_ALLOC, "host copy of %s (%zu floats)", wt->name, wt->count);
      break;
    }
    an_layer_init_host(L, wt, b, &state, w, b ? params + b->offset : NULL);
    status = store_fc_weight(inf, i, w);
    free(w);
  }
  status = unmap_params(inf, params, status);
  return status == AN_OK ? prepare(inf) : status;
}

an_status an_infer_load(an_infer *inf, const char *path) {
  an_safetensors *st = NULL;
  AN_TRY(an_st_open(path, &st));
  an_status status = AN_OK;
  float *params = NULL;
  int *where = malloc((size_t)inf->n_tensors * sizeof *where);       /* (n_tensors) file index of each tensor */
  char *used = calloc(st->n_tensors ? (size_t)st->n_tensors : 1, 1); /* (file tensors) */
  if (!where || !used) {
    status = AN_FAIL(AN_ERR_HOST_ALLOC, "%s: tensor tables", path);
    goto cleanup;
  }
  const char *v = an_st_meta_get(st, "model");
  if (v && strcmp(v, inf->model->name)) {
    status = AN_FAIL(AN_ERR_ARGUMENT, "%s: holds weights of model %.40s, the plan is %s", path, v, inf->model->name);
    goto cleanup;
  }
  for (int i = 0; i < inf->n_tensors; i++) {
    const an_tensor *t = &inf->tensors[i];
    const int j = an_st_find(st, t->name);
    char need[96] = "[", have[96] = "[";
    for (int d = 0; d < t->ndim; d++)
      snprintf(need + strlen(need), sizeof need - strlen(need), "%s%d", d ? "," : "", t->shape[d]);
    strcat(need, "]");
    if (j < 0) {
      status = AN_FAIL(AN_ERR_ARGUMENT, "%s: tensor %s is missing (the model needs %s)", path, t->name, need);
      goto cleanup;
    }
    const an_st_tensor *f = &st->tensors[j];
    int same = f->ndim == t->ndim;
    for (int d = 0; d < f->ndim && d < 8; d++) {
      snprintf(have + strlen(have), sizeof have - strlen(have), "%s%lld", d ? "," : "", (long long)f->shape[d]);
      if (same && f->shape[d] != t->shape[d]) same = 0;
    }
    strcat(have, "]");
    if (!same) {
      status = AN_FAIL(AN_ERR_ARGUMENT, "%s: tensor %s has shape %s, the model needs %s", path, t->name, have, need);
      goto cleanup;
    }
    if (f->dtype != AN_DTYPE_F32) {
      status = AN_FAIL(AN_ERR_ARGUMENT, "%s: tensor %s has dtype %s, the model needs F32", path, t->name,
                       an_dtype_name(f->dtype));
      goto cleanup;
    }
    where[i] = j;
    used[j] = 1;
  }
  for (int j = 0; j < st->n_tensors; j++)
    if (!used[j] && strncmp(st->tensors[j].name, "momentum.", 9)) { /* a checkpoint's momentum is not needed */
      status = AN_FAIL(AN_ERR_ARGUMENT, "%s: tensor %s is not part of model %s", path, st->tensors[j].name,
                       inf->model->name);
      goto cleanup;
    }
  /* straight from the file into the mapped buffer: no host copy of the weights on unified memory */
  status = map_params(inf, &params);
  for (int i = 0; i < inf->model->n_layers && status == AN_OK; i++) {
    const an_layer_plan *L = &inf->layers[i];
    if (L->weight < 0) continue;
    const an_tensor *b = &inf->tensors[L->bias], *w = &inf->tensors[L->weight];
    status = an_st_read(st, where[L->bias], params + b->offset, b->count * sizeof(float));
    if (status == AN_OK && L->desc->kind == AN_LAYER_CONV)
      status = an_st_read(st, where[L->weight], params + w->offset, w->count * sizeof(float));
    if (status == AN_OK && L->desc->kind == AN_LAYER_FC) status = load_fc_weight(inf, st, where[L->weight], i);
  }
cleanup:
  status = unmap_params(inf, params, status);
  if (status == AN_OK) status = prepare(inf);
  free(used);
  free(where);
  an_st_close(st);
  return status;
}

/* ---- running ---- */

float *an_infer_input(an_infer *inf, int slot) {
  return slot >= 0 && slot < inf->input_slots ? inf->input_map[slot] : NULL;
}

int an_infer_gemm_calls(const an_infer *inf, an_gemm_call *out, int max) {
  int n = 0;
  for (int i = 0; i < inf->model->n_layers; i++) {
    const an_layer_ops *ops = an_layer_ops_of(inf->layers[i].desc->kind);
    if (inf->skip[i] || !ops->gemms) continue;
    const an_layer_io io = infer_io(inf, i, 0, inf->work_floats);
    n += ops->gemms(&io, AN_PASS_FORWARD, n < max ? out + n : NULL, n < max ? max - n : 0);
  }
  return n;
}

double an_infer_layer_flops(const an_infer *inf, int i) {
  if (inf->skip[i]) return 0;
  const an_layer_io io = infer_io(inf, i, 0, inf->work_floats);
  return an_layer_gemm_flops(&io, AN_PASS_FORWARD);
}

/* The executor's view of a run: the plan and the slot it reads. */
typedef struct run_ctx {
  const an_infer *inf;
  int slot;
} run_ctx;

static an_layer_io run_io(void *ctx, int i) {
  const run_ctx *c = ctx;
  return infer_io(c->inf, i, c->slot, c->inf->work_floats);
}

/* The forward pass through the one executor; dropout and same-size pools are skipped. With the runtime's
 * profiling on, a mark before the first layer and after each. */
static an_status forward(an_infer *inf, int slot) {
  run_ctx c = {inf, slot};
  AN_TRY(an_mark_add(inf->rt, AN_MARK_BEGIN, -1)); /* the marks only while rt->profiling (bench) */
  return an_exec_forward(0, inf->model->n_layers, inf->skip, run_io, &c, inf->rt);
}

/* (N, classes) logits: the output itself, or its rows without the padding columns. */
static const float *compact(an_infer *inf, const float *out /* (N, classes_pad) */) {
  if (inf->classes_pad == inf->classes) return out;
  for (int r = 0; r < inf->batch; r++)
    memcpy(inf->logits + (size_t)r * inf->classes, out + (size_t)r * inf->classes_pad,
           (size_t)inf->classes * sizeof(float));
  return inf->logits;
}

an_status an_infer_run(an_infer *inf, int slot, const float **logits) {
  *logits = NULL;
  if (slot < 0 || slot >= inf->input_slots)
    return AN_FAIL(AN_ERR_ARGUMENT, "input slot %d of %d", slot, inf->input_slots);
  an_runtime *rt = inf->rt;
  const size_t in_bytes = inf->input_floats * sizeof(float);
  if (inf->zero_copy) {
    if (inf->output_map) {
      AN_CL_RETURN(clEnqueueUnmapMemObject(rt->queue, inf->output, inf->output_map, 0, NULL, NULL));
      inf->output_map = NULL;
    }
    AN_CL_RETURN(clEnqueueUnmapMemObject(rt->queue, inf->input, inf->input_map[slot], 0, NULL, NULL));
    inf->input_map[slot] = NULL;
  } else {
    AN_CL_RETURN(clEnqueueWriteBuffer(rt->queue, inf->input, CL_FALSE, (size_t)slot * in_bytes, in_bytes,
                                      inf->input_map[slot], 0, NULL, NULL));
  }
  an_status status = forward(inf, slot);
  if (inf->zero_copy) { /* the slot goes back to the host even when the forward pass failed */
    const an_status s2 = map_input(inf, slot);
    if (status == AN_OK) status = s2;
    if (status != AN_OK) return status;
    cl_int rc;
    inf->output_map = clEnqueueMapBuffer(rt->queue, inf->output, CL_TRUE, CL_MAP_READ, 0,
                                         inf->output_floats * sizeof(float), 0, NULL, NULL, &rc);
    if (rc != CL_SUCCESS) {
      inf->output_map = NULL;
      return AN_FAIL(rc, "clEnqueueMapBuffer(logits)");
    }
    *logits = compact(inf, inf->output_map);
    return AN_OK;
  }
  AN_TRY(status);
  AN_TRY(an_read(rt, inf->host_output, an_at(inf->output, 0), inf->output_floats));
  *logits = compact(inf, inf->host_output);
  return AN_OK;
}

/* ---- metadata and labels ---- */

void an_class_names_free(char **names, int n) {
  if (!names) return;
  for (int i = 0; i < n; i++) free(names[i]);
  free(names);
}

void an_weights_info_free(an_weights_info *info) {
  an_class_names_free(info->class_names, info->n_class_names);
  info->class_names = NULL;
  info->n_class_names = 0;
}

/* Splits text into lines ('\n', a '\r' before it dropped; no line after a final '\n'). */
static an_status split_lines(const char *text, const char *source, char ***out, int *n_out) {
  *out = NULL;
  *n_out = 0;
  int n = 0, cap = 0;
  char **v = NULL;
  const char *p = text;
  while (*p) {
    const char *e = strchr(p, '\n');
    size_t len = e ? (size_t)(e - p) : strlen(p);
    const size_t skip = e ? len + 1 : len;
    if (len && p[len - 1] == '\r') len--;
    if (n == cap) {
      cap = cap ? 2 * cap : 64;
      char **grown = realloc(v, (size_t)cap * sizeof *v);
      if (!grown) {
        an_class_names_free(v, n);
        return AN_FAIL(AN_ERR_HOST_ALLOC, "%s: %d class names", source, n);
      }
      v = grown;
    }
    if (!(v[n] = malloc(len + 1))) {
      an_class_names_free(v, n);
      return AN_FAIL(AN_ERR_HOST_ALLOC, "%s: class name %d", source, n);
    }
    memcpy(v[n], p, len);
    v[n++][len] = '\0';
    p += skip;
  }
  *out = v;
  *n_out = n;
  return AN_OK;
}

an_status an_weights_info_read(const char *path, an_weights_info *out) {
  memset(out, 0, sizeof *out);
  an_data_stats imagenet = an_data_stats_imagenet();
  memcpy(out->mean, imagenet.mean, sizeof out->mean);
  memcpy(out->std, imagenet.std, sizeof out->std);
  an_safetensors *st = NULL;
  AN_TRY(an_st_open(path, &st));
  an_status status = AN_OK;
  const char *v;
  if ((v = an_st_meta_get(st, "model"))) snprintf(out->model, sizeof out->model, "%s", v);
  if ((v = an_st_meta_get(st, "classes"))) out->classes = atoi(v);
  if ((v = an_st_meta_get(st, "input_size"))) out->input_hw = atoi(v);
  if ((v = an_st_meta_get(st, "resize"))) snprintf(out->resize, sizeof out->resize, "%s", v);
  if ((v = an_st_meta_get(st, "normalization"))) snprintf(out->norm, sizeof out->norm, "%s", v);
  float mean[3], std[3];
  if (an_parse_rgb(an_st_meta_get(st, "mean"), mean) && an_parse_rgb(an_st_meta_get(st, "std"), std)) {
    memcpy(out->mean, mean, sizeof mean);
    memcpy(out->std, std, sizeof std);
    out->have_norm = 1;
  }
  const an_model_desc *m;
  int classes;
  if ((!out->model[0] || !out->classes) && an_model_identify(st, NULL, &m, &classes) == AN_OK) {
    snprintf(out->model, sizeof out->model, "%s", m->name); /* a PyTorch file: the shapes say */
    out->classes = classes;
  }
  if ((v = an_st_meta_get(st, AN_META_CLASS_NAMES)))
    status = split_lines(v, path, &out->class_names, &out->n_class_names);
  an_st_close(st);
  return status;
}

an_status an_labels_read(const char *path, int classes, char ***names, int *extra) {
  *names = NULL;
  if (extra) *extra = 0;
  FILE *f = fopen(path, "rb");
  if (!f) return AN_FAIL(AN_ERR_IO, "%s: cannot open the labels file", path);
  char *text = NULL;
  size_t len = 0, cap = 0;
  for (;;) {
    if (len + 4096 + 1 > cap) {
      cap = cap ? 2 * cap : 65536;
      char *grown = cap > (64u << 20) ? NULL : realloc(text, cap);
      if (!grown) {
        free(text);
        fclose(f);
        return AN_FAIL(AN_ERR_IO, "%s: a labels file over 64 MiB, or out of memory", path);
      }
      text = grown;
    }
    const size_t got = fread(text + len, 1, 4096, f);
    len += got;
    if (got < 4096) break;
  }
  const int bad = ferror(f);
  fclose(f);
  if (bad) {
    free(text);
    return AN_FAIL(AN_ERR_IO, "%s: read failed", path);
  }
  text[len] = '\0';
  char **v;
  int n;
  an_status status = split_lines(text, path, &v, &n);
  free(text);
  AN_TRY(status);
  if (n < classes) {
    an_class_names_free(v, n);
    return AN_FAIL(AN_ERR_ARGUMENT,
                   "%s has %d line%s, but the model has %d classes: the labels file needs one class "
                   "name per line, in the order of the classes",
                   path, n, n == 1 ? "" : "s", classes);
  }
  for (int i = classes; i < n; i++) free(v[i]);
  if (extra) *extra = n - classes;
  *names = v;
  return AN_OK;
}
