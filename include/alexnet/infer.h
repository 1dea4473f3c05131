/* Inference: a model planned for the forward pass only, small enough for integrated graphics, and the
 * classification of image files through it.
 *
 * An inference plan (an_infer) is made from the same const model tables as the training net but holds
 * no gradients, no momentum and nothing kept for a backward pass (no LRN scale, no max-pool argmax):
 *   params  (n_params)            conv weights and all biases, loaded from a safetensors file
 *   prepared (prepared_floats)    the convolutions' Winograd filters, transformed once when the weights
 *                                 are loaded instead of on every run (counted with the weights)
 *   fc_weight[i] (IN, OUT_pad)    each fully connected weight, transposed, in a buffer of its own: so
 *                                 CLBlast's GEMM reads it in place instead of copying the whole matrix
 *                                 to its scratch on every call (see infer.c)
 *   acts    (act_floats)          every layer's output, ping-pong inside one buffer: a layer reads one end
 *                                 and writes the other, so it is as large as the largest pair of
 *                                 consecutive activations, not the sum of all of them
 *   work    (work_floats)         the im2col workspace, chunked (whole images) to fit the memory limit
 *   input   (slots, N, 3, H, W)   the batch; on host-unified devices host memory used in place
 *   output  (N, classes_pad)      the logits; host memory too on such devices
 * plus CLBlast's GEMM scratch, reserved on the runtime for the plan's own GEMMs. Dropout is the identity
 * and an adaptive pool to the size it already has is skipped: neither costs a buffer or a kernel.
 *
 * The figure an_infer_plan computes is what an_infer_create allocates (the test compares it with the
 * CL_MEM_SIZE of every buffer created). */
#ifndef ALEXNET_INFER_H
#define ALEXNET_INFER_H

#include "alexnet/alexnet.h"
#include "alexnet/data.h"
#include "alexnet/model.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The share of the device's global memory a plan may use when no limit is given (integrated GPUs
 * share that memory with the host). */
#define AN_INFER_DEFAULT_MEMORY_FRACTION 0.5

typedef struct an_infer_options {
  size_t max_memory_bytes; /* 0: AN_INFER_DEFAULT_MEMORY_FRACTION of the device's global memory */
  int zero_copy;           /* -1: on host-unified devices; 0: always copy; 1: always host memory */
  int input_slots;         /* 1, or 2 to fill one batch while the device runs the other (0 means 1) */
} an_infer_options;

/* Device bytes of a plan, by buffer; total is their sum. params_bytes: the weights as the plan keeps them,
 * with the convolutions' prepared (transformed, packed) filters. */
typedef struct an_infer_memory {
  size_t params_bytes, acts_bytes, work_bytes, input_bytes, output_bytes, gemm_temp_bytes, total_bytes;
  size_t limit_bytes; /* the limit the plan was fitted to */
  int chunk_images;   /* images per im2col chunk of the convolution with the largest workspace */
} an_infer_memory;

typedef struct an_infer {
  an_runtime *rt;
  const an_model_desc *model;
  int batch, classes, input_hw, input_slots;
  an_layer_plan *layers;            /* (model->n_layers); in_off/out_off are offsets in acts (or input/output) */
  int *reads_input, *writes_output; /* (model->n_layers) 1 where a layer reads input / writes output */
  int *skip;                        /* (model->n_layers) 1: identity at inference (dropout, same-size pool) */
  int *out_pad;                     /* (model->n_layers) fc: output width as stored (the last one padded) */
  int classes_pad;                  /* the last layer's padded width: the output's row length */
  an_tensor *tensors;
  int n_tensors;
  size_t n_params;
  size_t act_floats, work_floats, input_floats /* one slot */, output_floats;
  int zero_copy; /* input and output are host memory (CL_MEM_USE_HOST_PTR) */
  an_infer_memory mem;
  cl_mem params;     /* (n_params) conv weights, biases; tensors[].offset points here */
  cl_mem *fc_weight; /* (model->n_layers) fc: (IN, OUT_pad) transposed weight; NULL elsewhere */
  cl_mem prepared;   /* (prepared_floats) conv: the filters an_conv_prepare transformed once (Winograd's), layer
                        * after layer; NULL when no layer has any */
  size_t prepared_floats;
  cl_mem acts;         /* (act_floats) */
  cl_mem work;         /* (work_floats) */
  cl_mem input;        /* (input_slots, N, 3, H, W) */
  cl_mem output;       /* (N, classes_pad) */
  float *logits;       /* (N, classes) the output without padding, when classes_pad > classes */
  float *host_input;   /* (input_slots, N, 3, H, W) page-aligned (zero copy) or staging memory */
  float *host_output;  /* (N, classes) */
  float *input_map[2]; /* where the caller writes each slot (mapped while the host owns it) */
  float *output_map;   /* mapped logits after a run; NULL while the device owns them */
} an_infer;

/* Plans model for a batch and input side without allocating anything: the buffers' sizes under opts'
 * memory limit, the im2col workspace chunked to fit. AN_ERR_DEVICE_MEMORY when even one image per chunk
 * does not fit, with a message that gives the bytes needed and the largest batch that would fit; *out
 * then holds that smallest plan. */
an_status an_infer_plan(an_runtime *rt, const char *model, int classes, int batch, int input_hw,
                        const an_infer_options *opts, an_infer_memory *out);

/* Plans and allocates (see above). opts may be NULL (defaults). */
an_status an_infer_create(an_runtime *rt, const char *model, int classes, int batch, int input_hw,
                          const an_infer_options *opts, an_infer **out);
void an_infer_destroy(an_infer *inf);

/* Device bytes of the plan's buffers, with the runtime's GEMM scratch (which the plan reserved). */
size_t an_infer_device_bytes(const an_infer *inf);

/* Loads weights (or a training checkpoint, whose momentum is ignored) from a safetensors file straight
 * into the mapped parameter buffer: every tensor of the model must be there, F32, in the model's shape;
 * a model named in the metadata must be this one. */
an_status an_infer_load(an_infer *inf, const char *path);
/* Fills the weights with the model's initialisation from seed instead: the numbers an_net_init(seed)
 * gives the training net (benchmarks and tests: `alexnet bench --mode infer` times the plan this way). */
an_status an_infer_init(an_infer *inf, uint64_t seed);

/* Host memory the caller fills with slot's batch, (N, 3, H, W) floats, before an_infer_run(inf, slot). */
float *an_infer_input(an_infer *inf, int slot);

/* Runs the forward pass on slot's batch and waits: *logits points to (N, classes) floats, valid until
 * the next run. */
an_status an_infer_run(an_infer *inf, int slot, const float **logits);

/* Every GEMM call a run of slot 0 issues, in order, from the layer table; fills up to max, returns how
 * many there are. */
int an_infer_gemm_calls(const an_infer *inf, an_gemm_call *out, int max);
/* FLOPs of layer i in a run: its GEMMs' 2·m·n·k (0 for a layer the plan skips or without GEMMs). */
double an_infer_layer_flops(const an_infer *inf, int i);

/* ---- what a weights file says about itself ---- */
typedef struct an_weights_info {
  char model[32];        /* "" when the file does not say */
  int classes, input_hw; /* 0 when the file does not say */
  float mean[3], std[3]; /* the normalisation; ImageNet's when the file has none (have_norm 0) */
  int have_norm;
  char resize[16], norm[16]; /* the metadata's "resize" and "normalization"; "" when not said */
  char **class_names;        /* (n_class_names) from the metadata, NULL when none */
  int n_class_names;
} an_weights_info;

/* Reads the metadata of a weights or checkpoint file (model, classes, input size, mean/std, resize and
 * normalisation, class names); model and classes come from the tensor shapes (an_model_identify) when
 * the metadata do not say (a file PyTorch wrote), and stay "" and 0 when the shapes fit no model. */
an_status an_weights_info_read(const char *path, an_weights_info *out);
void an_weights_info_free(an_weights_info *info);

/* Class names from a labels file, one per line (blank lines end nothing: they are names too, except a
 * last empty line). Fewer lines than classes is AN_ERR_ARGUMENT naming both counts; more are ignored
 * with the count in *extra (may be NULL). *names is malloc'd: free with an_class_names_free. */
an_status an_labels_read(const char *path, int classes, char ***names, int *extra);
void an_class_names_free(char **names, int n);

/* ---- classification of files ---- */
#define AN_CLASSIFY_MAX_TOP AN_TOP_MAX /* alexnet.h's */

typedef struct an_classify_result {
  int index;        /* the file's position in the list */
  const char *file; /* NULL for images in memory */
  int ok;           /* 0: error holds why the file could not be classified */
  char error[512];
  int top_k;                        /* classes in top[] (min(requested, classes)) */
  int top[AN_CLASSIFY_MAX_TOP];     /* class indices, most probable first */
  double prob[AN_CLASSIFY_MAX_TOP]; /* their probabilities (softmax, averaged over crops) */
} an_classify_result;

typedef void (*an_classify_fn)(void *ctx, const an_classify_result *r);

typedef struct an_classify_stats {
  int images, failed;
  double device_seconds; /* time inside an_infer_run */
  double seconds;        /* the whole call */
} an_classify_stats;

/* Classifies files in order through inf (batch = inf->batch / crops samples per run, crops from aug:
 * 1 or 10), decoding and preprocessing exactly as evaluation does (an_preprocess with train = 0) on
 * `threads` worker threads, the next batch while the device runs the current one (when inf has two
 * input slots). fn receives every file's result in order; a file that cannot be read or decoded is a
 * result with ok = 0, and the others go on. Returns a status only for failures that stop everything. */
an_status an_classify_files(an_infer *inf, const char *const *files, int n_files, const an_augment *aug,
                            const an_data_stats *stats, int threads, int top_k, an_classify_fn fn, void *ctx,
                            an_classify_stats *out);

/* The same for decoded images in memory (r->file is NULL). */
an_status an_classify_images(an_infer *inf, const an_image *images, int n_images, const an_augment *aug,
                             const an_data_stats *stats, int threads, int top_k, an_classify_fn fn, void *ctx,
                             an_classify_stats *out);

/* alexnet.h's classifier seen from inside the project: its runtime and its plan (alexnet classify
 * --time times them). Not exported by the shared library. */
an_runtime *an_classifier_runtime(const an_classifier *c);
an_infer *an_classifier_plan(const an_classifier *c);

/* ---- conv1's kernels as an image ---- */
typedef struct an_filters_layout {
  int kernels, columns;     /* conv1's output channels; 2 for alexnet (the paper's two columns), else 1 */
  int grid_cols, grid_rows; /* kernels per row and rows in each column's grid */
  int kernel, scale, pad;   /* kernel side, enlargement, pixels between kernels (and around) */
  int width, height;        /* the image */
} an_filters_layout;

/* Reads conv1's weight (OC, 3, K, K) from a weights file of `model` (NULL: the file's metadata) and
 * draws every kernel, contrast-normalised on its own to [0, 255] and enlarged scale times (nearest),
 * into a grid on a grey background; for alexnet the two columns' kernels (0-47, 48-95) are two grids
 * side by side, as Figure 3 of the paper. img->pixels is malloc'd (an_image_free). Each grid has
 * grid_cols = ceil(sqrt(kernels per column · 4/3)) columns; width = columns · (grid_cols · (K·scale +
 * pad) + pad) + (columns - 1) · 4·pad, height = grid_rows · (K·scale + pad) + pad. */
an_status an_filters_render(const char *path, const char *model, int scale, int pad, an_image *img,
                            an_filters_layout *layout);

#ifdef __cplusplus
}
#endif
#endif
