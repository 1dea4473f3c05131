/* Weights on disk: the safetensors format (read, parse from memory, write atomically) and a model's
 * weights or training checkpoint in it, under the PyTorch state_dict names of a parameter layout (a
 * tensor table over one flat float array, an_param_layout). This module knows host arrays only: the
 * trainer (train.h) reads a net's or a split's buffers into them (an_net_save, an_split_save...).
 *
 * safetensors: an 8-byte little-endian header length N, N bytes of JSON
 *   {"__metadata__": {"key": "value", ...},                     (optional, strings only)
 *    "features.0.weight": {"dtype": "F32", "shape": [96, 3, 11, 11], "data_offsets": [begin, end]}, ...}
 * then the data section; offsets are bytes relative to its start. Data are little-endian.
 *
 * Every malformed file is AN_ERR_IO with a message naming the file, the tensor or field and the cause
 * (header length beyond the file, truncated data, JSON that does not parse, a missing or invalid field,
 * an unknown dtype, offsets outside the data, overlapping offsets, an extent that is not shape × dtype
 * size). A well-formed file that does not fit the layout is AN_ERR_ARGUMENT, naming the tensor and both
 * shapes. Nothing in this module prints or exits. */
#ifndef ALEXNET_IO_H
#define ALEXNET_IO_H

#include <stddef.h>
#include <stdint.h>

#include "alexnet/status.h"
#include "alexnet/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- safetensors ---- */

typedef enum an_dtype {
  AN_DTYPE_BOOL,
  AN_DTYPE_U8,
  AN_DTYPE_I8,
  AN_DTYPE_F8_E5M2,
  AN_DTYPE_F8_E4M3,
  AN_DTYPE_I16,
  AN_DTYPE_U16,
  AN_DTYPE_F16,
  AN_DTYPE_BF16,
  AN_DTYPE_I32,
  AN_DTYPE_U32,
  AN_DTYPE_F32,
  AN_DTYPE_F64,
  AN_DTYPE_I64,
  AN_DTYPE_U64,
  AN_DTYPE_COUNT
} an_dtype;

const char *an_dtype_name(an_dtype dtype); /* "F32"; "?" outside the enum */
size_t an_dtype_bytes(an_dtype dtype);     /* bytes per element; 0 outside the enum */

#define AN_ST_MAX_DIMS 8
#define AN_ST_MAX_HEADER_BYTES ((uint64_t)100 << 20) /* larger headers are refused, as upstream does */

/* One tensor of a parsed file. */
typedef struct an_st_tensor {
  const char *name;
  an_dtype dtype;
  int ndim; /* 0 for a scalar */
  int64_t shape[AN_ST_MAX_DIMS];
  uint64_t count;      /* elements: the product of shape */
  uint64_t begin, end; /* data_offsets: bytes in the data section, end - begin = count × size */
} an_st_tensor;

typedef struct an_st_meta {
  const char *key, *value;
} an_st_meta;

/* A parsed file: header validated, data read on demand with an_st_read. Strings point into the
 * parsed header and live until an_st_close. */
typedef struct an_safetensors {
  char source[256];      /* the path (or the name given to an_st_parse), for messages */
  an_st_tensor *tensors; /* (n_tensors) in header order */
  int n_tensors;
  an_st_meta *meta; /* (n_meta) the __metadata__ map */
  int n_meta;
  uint64_t header_bytes; /* N */
  uint64_t data_bytes;   /* bytes after the header */
  /* private */
  void *json_;          /* the parsed header (cJSON) that names and values point into */
  void *file_;          /* FILE * of an_st_open; NULL for an_st_parse */
  const uint8_t *data_; /* an_st_parse: the caller's bytes from the data section on (borrowed) */
} an_safetensors;

/* Parses a whole file held in memory; bytes must outlive the result (they are borrowed, not copied).
 * source names the bytes in messages. */
an_status an_st_parse(const void *bytes, size_t n_bytes, const char *source, an_safetensors **out);

/* Opens a file and validates its header against the file's size; the data stay on disk. */
an_status an_st_open(const char *path, an_safetensors **out);
void an_st_close(an_safetensors *st);

/* Index of the tensor called name, -1 when absent. */
int an_st_find(const an_safetensors *st, const char *name);
/* The metadata value of key, NULL when absent. */
const char *an_st_meta_get(const an_safetensors *st, const char *key);

/* Copies tensor i's raw bytes into dst, which holds dst_bytes = end - begin bytes. A file that has
 * shrunk since an_st_open is a truncated-file error. */
an_status an_st_read(an_safetensors *st, int i, void *dst, size_t dst_bytes);

/* A tensor to write. */
typedef struct an_st_entry {
  const char *name;
  an_dtype dtype;
  int ndim;
  int64_t shape[AN_ST_MAX_DIMS];
  const void *data; /* product(shape) × an_dtype_bytes(dtype) bytes */
} an_st_entry;

/* Writes path atomically: a temporary file in the same directory, fsync, rename over path. Tensors are
 * laid out in the order given; the header is padded with spaces so that the data start 8-aligned.
 * Names must be unique, non-empty and not "__metadata__". */
an_status an_st_write(const char *path, const an_st_entry *tensors, int n_tensors, const an_st_meta *meta,
                      int n_meta);

/* The same file in memory: *out is malloc'd (free() it), *out_bytes its size. */
an_status an_st_serialize(const an_st_entry *tensors, int n_tensors, const an_st_meta *meta, int n_meta,
                          uint8_t **out, size_t *out_bytes);

/* ---- a model's weights and checkpoints ----
 *
 * A weights file holds every tensor of the layout's table under its name, F32, in the table's order. A checkpoint adds the
 * optimizer's momentum as "momentum.<name>". __metadata__ holds strings:
 *   format "alexnet-opencl", format_version "1", kind "weights" | "checkpoint", model, classes,
 *   input_size, and when given: epoch, step, seed, lr, mean, std (the normalisation, "r,g,b"),
 *   class_names (one name per class, in label order, separated by newlines). */
#define AN_CHECKPOINT_FORMAT_VERSION 1
#define AN_META_CLASS_NAMES "class_names"

/* "r,g,b" of three floats to and from an_checkpoint_meta's mean/std strings. */
void an_format_rgb(const float v[3], char *buf, size_t size);
int an_parse_rgb(const char *s, float v[3]); /* 1 when three numbers were read */

typedef struct an_checkpoint_meta {
  int checkpoint; /* save: 1 writes the momentum (a checkpoint), 0 weights only; load: what the file is */
  int64_t epoch, step;
  uint64_t seed;
  double lr;
  char mean[96], std[96]; /* "0.485,0.456,0.406"; "" when none */
  int resize;             /* the base image's side evaluation crops from (an_augment.resize); 0: not said */
  char norm[16];          /* an_norm_name of the normalisation ("mean_std", "mean", "none"); "": not said */
  /* load only (save takes them from the layout); 0 or "" when the file does not say */
  int format_version;
  char model[32];
  int classes, input_hw;
  /* save only: newline-separated, one per class; NULL: none. Load leaves it NULL (an_weights_info_read
   * in infer.h reads the names) */
  const char *class_names;
} an_checkpoint_meta;

/* A model's parameters as its files hold them: the tensor table over one flat float array (a net's,
 * an_net_param_layout in train.h) and the metadata that must agree. */
typedef struct an_param_layout {
  const char *model;        /* metadata "model"; a file naming another model does not load */
  int classes, input_hw;    /* metadata "classes" and "input_size" */
  const an_tensor *tensors; /* (n_tensors) in file order; offsets and counts in floats of the array */
  int n_tensors;
  size_t n_params; /* floats of the array */
} an_param_layout;

/* Writes params (and with meta->checkpoint momentum, n_params floats each, in layout) to path,
 * atomically. meta NULL: weights with the layout's model, classes and input size only. */
an_status an_checkpoint_save(const an_param_layout *layout, const float *params, const float *momentum,
                             const char *path, const an_checkpoint_meta *meta);

/* Reads path in layout: every tensor of the layout must be in the file, F32, with its shape, and the
 * file may hold nothing else (a checkpoint: the momentum of every tensor too). A model named in the
 * metadata must be the layout's. Everything is read and checked before anything is handed out:
 * malloc'd arrays of n_params floats (*momentum NULL for a weights file). out (may be NULL) receives
 * the metadata. Files without metadata (converted from a PyTorch state_dict) load as weights. */
an_status an_checkpoint_load(const an_param_layout *layout, const char *path, float **params, float **momentum,
                             an_checkpoint_meta *out);

/* ---- fine-tuning's start: the tensors of a file that fit ---- */

typedef enum an_match_kind {
  AN_MATCH_LOADED,  /* read from the file */
  AN_MATCH_MISSING, /* the file has no tensor of that name */
  AN_MATCH_SHAPE,   /* the file's has another shape (a last layer of another class count) */
  AN_MATCH_DTYPE    /* the file's is not F32 */
} an_match_kind;

#define AN_MATCH_MAX_TENSORS 64

/* One tensor of the layout: what the file had for it. */
typedef struct an_match_tensor {
  char name[64];
  an_match_kind kind;
  char have[48], need[48]; /* "[1000,4096]" and "[7,4096]"; have: the dtype for AN_MATCH_DTYPE, "" when missing */
} an_match_tensor;

/* What an_checkpoint_load_matching did with each tensor of the layout, in the layout's order. */
typedef struct an_match_report {
  int n_tensors, n_loaded;
  an_match_tensor tensor[AN_MATCH_MAX_TENSORS];
  int n_unused; /* tensors of the file the layout has none of (a checkpoint's momentum.* not counted) */
  char first_unused[64];
} an_match_report;

/* Reads every tensor of path whose name, shape and dtype (F32) fit the layout into params (n_params
 * floats in layout), leaving the others as they are (the caller's fresh initialisation), and fills
 * report. Neither the metadata nor a checkpoint's momentum are read. Everything is read before params
 * changes: a failure leaves it as it was. AN_ERR_ARGUMENT, naming the file, when not one tensor fits. */
an_status an_checkpoint_load_matching(const an_param_layout *layout, const char *path, float *params,
                                      an_match_report *report);

#ifdef __cplusplus
}
#endif
#endif
