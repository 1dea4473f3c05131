/* Internal: setting kernel arguments and enqueueing in one call, so a layer reads as a list of
 * (buffer, offset, size) arguments rather than a page of clSetKernelArg. */
#ifndef ALEXNET_LAUNCH_H
#define ALEXNET_LAUNCH_H

#include "alexnet/runtime.h"

typedef struct an_arg {
  size_t size;
  int local; /* 1: a __local buffer of `size` bytes (no value) */
  union {
    cl_mem mem;
    cl_int i;
    cl_float f;
    cl_ulong ul;
  } v;
} an_arg;

static inline an_arg an_arg_mem(cl_mem m) {
  an_arg a;
  a.local = 0;
  a.size = sizeof(cl_mem);
  a.v.mem = m;
  return a;
}
static inline an_arg an_arg_int(int i) {
  an_arg a;
  a.local = 0;
  a.size = sizeof(cl_int);
  a.v.i = (cl_int)i;
  return a;
}
static inline an_arg an_arg_float(float f) {
  an_arg a;
  a.local = 0;
  a.size = sizeof(cl_float);
  a.v.f = f;
  return a;
}
static inline an_arg an_arg_ulong(cl_ulong u) {
  an_arg a;
  a.local = 0;
  a.size = sizeof(cl_ulong);
  a.v.ul = u;
  return a;
}
static inline an_arg an_arg_local(size_t bytes) {
  an_arg a;
  a.local = 1;
  a.size = bytes;
  a.v.ul = 0;
  return a;
}

/* Sets the arguments and enqueues the kernel named `kernel` (its name in cl/) over `global` work-items (1-3 dims); local may be NULL.
 * Failures name the kernel and the call. */
an_status an_launch_at(an_runtime *rt, const char *kernel, cl_uint dims, const size_t *global, const size_t *local,
                       const an_arg *args, int n_args, const char *file, int line);
#define an_launch(rt, k, dims, global, local, args) \
  an_launch_at(rt, k, dims, global, local, args, (int)(sizeof(args) / sizeof((args)[0])), __FILE__, __LINE__)

/* The work-group along dimension 0 of the GPU kernel variants (AN_KERNELS_GPU) that take a
 * work-item per element: the host rounds that dimension up to it and the kernels return past the end. */
#define AN_GPU_WGS 64

/* Rounds n up to a multiple of m. */
static inline size_t an_round_up(size_t n, size_t m) { return (n + m - 1) / m * m; }

/* Embedded kernel sources, generated at build time from cl/ (see cmake/embed_cl.cmake). */
extern const char *const an_cl_source_names[];
extern const char *const an_cl_sources[];
extern const int an_cl_source_count;

#endif
