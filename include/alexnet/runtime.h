/* OpenCL runtime: device discovery and selection, one context and in-order queue, the project's
 * program built once from the embedded .cl sources (or from ALEXNET_CL_DIR), and its kernels. */
#ifndef ALEXNET_RUNTIME_H
#define ALEXNET_RUNTIME_H

#ifndef CL_TARGET_OPENCL_VERSION
#define CL_TARGET_OPENCL_VERSION 120
#endif
#include <CL/cl.h>
#include <stddef.h>

#include "alexnet/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct an_device_info {
  int platform_index, device_index; /* "P:D" as `alexnet devices` prints it */
  cl_platform_id platform;
  cl_device_id device;
  char platform_name[128];
  char name[256];
  char vendor[128];
  char driver_version[128];
  char device_version[128];
  char c_version[128];
  cl_device_type type;
  cl_uint compute_units;
  cl_ulong global_mem_bytes, local_mem_bytes, max_alloc_bytes;
  int fp16, fp64, host_unified;
  cl_uint base_align_bytes;   /* CL_DEVICE_MEM_BASE_ADDR_ALIGN in bytes: where a sub-buffer may start */
  cl_uint native_float_width; /* CL_DEVICE_NATIVE_VECTOR_WIDTH_FLOAT: 16 on PoCL's AVX-512 CPUs, 8 on AVX2 */
} an_device_info;

/* Every device of every platform. *devices is malloc'd; free() it. No device at all is AN_ERR_NO_DEVICE. */
an_status an_list_devices(an_device_info **devices, int *n_devices);

/* Picks a device: spec "P:D", or a case-insensitive substring of the device name (or vendor); NULL or ""
 * reads ALEXNET_DEVICE, and if that is unset too, takes the first GPU, else the first device. An unknown
 * spec is AN_ERR_DEVICE_NOT_FOUND with a message listing the devices that exist. */
an_status an_select_device(const char *spec, an_device_info *out);


/* Profiling marks: when rt->profiling is set, the net and the GEMM wrapper enqueue markers whose end
 * times split a step into layers and GEMMs (alexnet bench reads them). */
typedef enum an_mark_kind {
  AN_MARK_BEGIN,      /* start of a forward pass */
  AN_MARK_FORWARD,    /* end of layer `layer`'s forward */
  AN_MARK_LOSS,       /* end of the loss */
  AN_MARK_ZERO_GRADS, /* end of zeroing the gradients */
  AN_MARK_BACKWARD,   /* end of layer `layer`'s backward */
  AN_MARK_SGD,        /* end of the update */
  AN_MARK_GEMM_BEGIN, /* around every CLBlast call */
  AN_MARK_GEMM_END,
  AN_MARK_EXCHANGE /* end of an exchange outside the layers: the batch split's gradient sum */
} an_mark_kind;

typedef struct an_mark {
  an_mark_kind kind;
  int layer;
  cl_event event;
} an_mark;

/* Kernel events: when rt->kernel_profiling is set, every launch of the project's kernels keeps its
 * event and range (alexnet bench --kernels sums them per kernel and range; CLBlast's are not in it). */
typedef struct an_kernel_event {
  const char *kernel; /* its name in cl/ (the runtime's copy) */
  cl_uint dims;
  size_t global[3];
  cl_event event;
} an_kernel_event;

/* Which shape of the layers' kernels a runtime launches (cl/: im2col or im2col_gpu, ...): chosen once
 * when the runtime opens, by the device's type (CPU devices: AN_KERNELS_CPU; every other type, and a
 * device that is a GPU as well as a CPU as Oclgrind says it is: AN_KERNELS_GPU) unless ALEXNET_KERNELS=cpu|gpu forces one. The layers' host code reads it at each
 * launch; bench --kernels sets it to time both on one device. */
typedef enum an_kernel_variant {
  AN_KERNELS_CPU, /* few long work-items with unit-stride loops: a plane or a row each */
  AN_KERNELS_GPU  /* a work-item per element, neighbours on neighbouring addresses, local-memory tiles */
} an_kernel_variant;

/* The variant for a device: ALEXNET_KERNELS when set ("cpu" or "gpu", else AN_ERR_ARGUMENT naming the
 * value), else by the device's type. */
an_status an_kernel_variant_choose(const an_device_info *info, an_kernel_variant *out);
const char *an_kernel_variant_name(an_kernel_variant v); /* "cpu", "gpu" */
/* The variant of the Winograd transforms (cl/winograd.cl: winograd<a>_input, _output and _grad_output,
 * one set per tile): as the other kernels', except on a CPU device whose native float vector holds
 * 16 lanes or more (AVX-512), which takes the GPU shape, a work-item per tile: there the compiler packs
 * 16 neighbouring tiles into one vector, and each of the P positions' stores fills a cache line (measured
 * on PoCL's pthread-skylake-avx512: 93 against 132 ms for alexnet-half's input transforms per step,
 * docs/BENCHMARKS.md; on AVX2 not measured, so it keeps the CPU shape). ALEXNET_KERNELS forces both. */
an_status an_winograd_variant_choose(const an_device_info *info, an_kernel_variant *out);
/* Whether the GEMMs run on the project's own kernel (cl/gemm.cl) instead of CLBlast's, where the shape
 * suits it (src/gemm/panel.c): on a CPU device whose native float vector holds 16 lanes or more
 * (AVX-512), where PoCL builds it into the register-tiled loop OpenBLAS uses and CLBlast's kernels reach
 * a quarter of the host's BLAS (docs/BENCHMARKS.md); elsewhere CLBlast. ALEXNET_GEMM=clblast|project
 * forces it (else AN_ERR_ARGUMENT naming the value). */
an_status an_gemm_engine_choose(const an_device_info *info, int *own);
/* Which passes of the 3x3 and 5x5 stride-1 "same" convolutions run as Winograd, a mask of
 * AN_WINOGRAD_FORWARD, AN_WINOGRAD_INPUT_GRAD, AN_WINOGRAD_WEIGHT_GRAD, and AN_WINOGRAD_INPUT_GRAD_LARGE
 * and AN_WINOGRAD_WEIGHT_GRAD_LARGE: that gradient only where one image has AN_WINOGRAD_LARGE_TILES 2x2
 * tiles or more, counted in 2x2 tiles whatever tile the layer runs (at 224 px every 3x3 and 5x5 layer,
 * at the main job's 63 px none; measured on CPUs, the gradients through Winograd won at the one size and
 * lost at the other, docs/BENCHMARKS.md).
 * ALEXNET_WINOGRAD when set ("0" none, "1" all three passes, "forward", "auto" the default; else
 * AN_ERR_ARGUMENT naming the value), else AN_WINOGRAD_DEFAULT. */
#define AN_WINOGRAD_FORWARD 1
#define AN_WINOGRAD_INPUT_GRAD 2
#define AN_WINOGRAD_INPUT_GRAD_LARGE 4
#define AN_WINOGRAD_WEIGHT_GRAD 8
#define AN_WINOGRAD_WEIGHT_GRAD_LARGE 16
#define AN_WINOGRAD_LARGE_TILES 49 /* 7x7 tiles: a 13x13 image */
#define AN_WINOGRAD_DEFAULT (AN_WINOGRAD_FORWARD | AN_WINOGRAD_INPUT_GRAD_LARGE | AN_WINOGRAD_WEIGHT_GRAD_LARGE)
an_status an_winograd_choose(int *out);

typedef struct an_runtime {
  an_device_info info;
  an_kernel_variant kernels_variant;  /* the layers' kernel shapes (see an_kernel_variant) */
  an_kernel_variant winograd_variant; /* the Winograd transforms' (an_winograd_variant_choose) */
  int winograd; /* the passes of 3x3 and 5x5 stride-1 convolutions run as Winograd (an_winograd_choose) */
  int own_gemm; /* 1: GEMMs that suit it run on the project's kernel, not CLBlast's (an_gemm_engine_choose) */
  cl_context context;
  cl_command_queue queue; /* in-order; profiling enabled */
  cl_program program;
  cl_kernel *kernels;       /* (n_kernels) every kernel of the program */
  char (*kernel_names)[64]; /* (n_kernels) their names in cl/, which an_launch looks up */
  int n_kernels;
  char build_options[256];
  int profiling;  /* 1: record marks */
  an_mark *marks; /* (n_marks) in enqueue order */
  int n_marks, cap_marks;
  int kernel_profiling;     /* 1: keep every kernel launch's event */
  an_kernel_event *kevents; /* (n_kevents) in enqueue order */
  int n_kevents, cap_kevents;
  double build_seconds;   /* the startup build of the project's program (or its load from the cache) */
  int program_from_cache; /* the program came from the compiled-program cache */
  int gemm_tuned;         /* a cached GEMM tuning was applied at startup (alexnet tune) */
  int gemv_off;           /* 1: a GEMM with one row or column of C stays on Xgemm, not GEMV (ALEXNET_NO_GEMV) */
  cl_mem gemm_temp;       /* CLBlast's scratch for padded/transposed copies, reused by every GEMM */
  size_t gemm_temp_bytes;
  char gemm_tuning[512]; /* the fallback configuration, as an_gemm_config_format writes it */
  /* the tuning's per-shape configurations and slice widths, opaque here (gemm/tuning.c owns them);
   * NULL untuned. an_runtime_destroy frees them through gemm_table_free, so the runtime calls nothing
   * in gemm/. */
  struct an_gemm_table *gemm_table;
  void (*gemm_table_free)(struct an_gemm_table *table);
  struct an_gemm_log *gemm_log; /* while set, every GEMM is recorded there (gemm.c, for tests) */
} an_runtime;

/* Enqueues a marker and records it (no-op unless rt->profiling). */
an_status an_mark_add(an_runtime *rt, an_mark_kind kind, int layer);
/* Device time at which mark i completed, in milliseconds (after the queue finished). */
an_status an_mark_end_ms(an_runtime *rt, int i, double *ms);
void an_marks_clear(an_runtime *rt);
/* A kept launch's own device time (start to end), in milliseconds (after the queue finished). */
an_status an_kernel_event_ms(const an_kernel_event *e, double *ms);
void an_kernel_events_clear(an_runtime *rt);

/* What the layer opening a runtime does to it once its program is built (gemm/ applies the device's
 * GEMM tuning); a failure destroys the runtime and is the opening's status. */
typedef an_status (*an_runtime_setup)(an_runtime *rt);

/* Creates the context and queue on the selected device, builds the project's program, then runs setup
 * (NULL: none). A failed build prints the build log and options to stderr and returns AN_ERR_BUILD.
 * (runtime.c) */
an_status an_runtime_open(const char *device_spec, an_runtime_setup setup, an_runtime **out);
/* Two runtimes for the two-device split: spec is two device specs separated by a comma ("0:0,0:1",
 * or two name substrings; NULL reads ALEXNET_DEVICE). Devices of one platform share one context (they
 * exchange by buffer copies) unless separate_contexts is set; devices of different platforms always
 * get a context each (they exchange through host memory). The same device twice is allowed: two
 * queues on it. Each runtime is set up as it is created. (runtime.c) */
an_status an_runtime_open_pair(const char *spec, int separate_contexts, an_runtime_setup setup, an_runtime **rt0,
                               an_runtime **rt1);
void an_runtime_destroy(an_runtime *rt);

/* an_runtime_open and an_runtime_open_pair with the device's GEMM tuning applied (the tuning file of
 * `alexnet tune`, unless ALEXNET_NO_TUNING is set; rt->gemm_tuned and rt->gemm_tuning say which). What
 * applications and the CLI call. Defined by the GEMM layer (gemm/tuning.c), which reads the tuning
 * file: the runtime knows nothing of it. */
an_status an_runtime_create(const char *device_spec, an_runtime **out);
an_status an_runtime_create_pair(const char *spec, int separate_contexts, an_runtime **rt0, an_runtime **rt1);

/* Builds a program from source for rt's device (the startup build uses it; tests use it to check the
 * failure path). On failure the log and options go to stderr and the message names the device. */
an_status an_build_program(an_runtime *rt, const char *source, const char *options, cl_program *out);

/* A device buffer and an offset into it, in floats (CLBlast takes buffer + offset the same way). */
typedef struct an_buf {
  cl_mem mem;
  size_t off;
} an_buf;

static inline an_buf an_at(cl_mem mem, size_t off) {
  an_buf b = {mem, off};
  return b;
}

/* Allocates a device buffer of n floats; AN_ERR_DEVICE_MEMORY with a hint when it cannot. */
an_status an_alloc(an_runtime *rt, size_t n_floats, cl_mem *out);
an_status an_write(an_runtime *rt, an_buf dst, const float *src, size_t n_floats);
an_status an_read(an_runtime *rt, float *dst, an_buf src, size_t n_floats); /* blocking */
an_status an_fill(an_runtime *rt, an_buf dst, float value, size_t n_floats);
an_status an_finish(an_runtime *rt);

/* Makes rt's GEMM scratch at least `bytes` large (a net reserves what its GEMMs need at creation, so a
 * step allocates nothing; a GEMM that needs more than the scratch lets CLBlast allocate its own). */
an_status an_reserve_gemm_temp(an_runtime *rt, size_t bytes);

/* mkdir -p: creates dir and its missing parents; AN_ERR_IO naming the directory when it cannot. */
an_status an_make_dirs(const char *dir);
/* The same for the directory that will hold the file `path`. */
an_status an_make_parent_dirs(const char *path);

/* Seconds on a monotonic clock, for timings. */
double an_seconds(void);

#ifdef __cplusplus
}
#endif
#endif
