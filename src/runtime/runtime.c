/* OpenCL runtime: platforms and devices, selection by P:D / name / ALEXNET_DEVICE, the context and
 * in-order queue, the startup build of the project's kernels, buffers, and kernel launches. */
#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "alexnet/runtime.h"
#include "runtime/check.h"

#ifndef CL_PLATFORM_NOT_FOUND_KHR /* what the ICD loader returns when no platform is installed */
#define CL_PLATFORM_NOT_FOUND_KHR -1001
#endif
#include "runtime/grow.h"
#include "runtime/launch.h"


static void info_string(cl_device_id d, cl_device_info what, char *buf, size_t size) {
  if (clGetDeviceInfo(d, what, size, buf, NULL) != CL_SUCCESS) snprintf(buf, size, "?");
  buf[size - 1] = '\0';
}

static void fill_info(an_device_info *di, cl_platform_id p, cl_device_id d, int pi, int dj) {
  memset(di, 0, sizeof *di);
  di->platform_index = pi;
  di->device_index = dj;
  di->platform = p;
  di->device = d;
  if (clGetPlatformInfo(p, CL_PLATFORM_NAME, sizeof di->platform_name, di->platform_name, NULL))
    snprintf(di->platform_name, sizeof di->platform_name, "?");
  info_string(d, CL_DEVICE_NAME, di->name, sizeof di->name);
  info_string(d, CL_DEVICE_VENDOR, di->vendor, sizeof di->vendor);
  info_string(d, CL_DRIVER_VERSION, di->driver_version, sizeof di->driver_version);
  info_string(d, CL_DEVICE_VERSION, di->device_version, sizeof di->device_version);
  info_string(d, CL_DEVICE_OPENCL_C_VERSION, di->c_version, sizeof di->c_version);
  clGetDeviceInfo(d, CL_DEVICE_TYPE, sizeof di->type, &di->type, NULL);
  clGetDeviceInfo(d, CL_DEVICE_MAX_COMPUTE_UNITS, sizeof di->compute_units, &di->compute_units, NULL);
  clGetDeviceInfo(d, CL_DEVICE_GLOBAL_MEM_SIZE, sizeof di->global_mem_bytes, &di->global_mem_bytes, NULL);
  clGetDeviceInfo(d, CL_DEVICE_LOCAL_MEM_SIZE, sizeof di->local_mem_bytes, &di->local_mem_bytes, NULL);
  clGetDeviceInfo(d, CL_DEVICE_MAX_MEM_ALLOC_SIZE, sizeof di->max_alloc_bytes, &di->max_alloc_bytes, NULL);
  cl_uint align_bits = 0;
  clGetDeviceInfo(d, CL_DEVICE_MEM_BASE_ADDR_ALIGN, sizeof align_bits, &align_bits, NULL);
  di->base_align_bytes = align_bits / 8;
  clGetDeviceInfo(d, CL_DEVICE_NATIVE_VECTOR_WIDTH_FLOAT, sizeof di->native_float_width, &di->native_float_width,
                  NULL);
  /* fp16 from the extension string only: CL_DEVICE_HALF_FP_CONFIG is cl_khr_fp16's own query, an invalid
   * param_name on a device without it (Oclgrind's API check reports it) */
  char ext[8192] = {0};
  info_string(d, CL_DEVICE_EXTENSIONS, ext, sizeof ext);
  if (strstr(ext, "cl_khr_fp16")) di->fp16 = 1;
  cl_device_fp_config fp = 0;
  if (clGetDeviceInfo(d, CL_DEVICE_DOUBLE_FP_CONFIG, sizeof fp, &fp, NULL) == CL_SUCCESS) di->fp64 = fp != 0;
  cl_bool unified = CL_FALSE;
  clGetDeviceInfo(d, CL_DEVICE_HOST_UNIFIED_MEMORY, sizeof unified, &unified, NULL);
  di->host_unified = unified == CL_TRUE;
}

an_status an_list_devices(an_device_info **devices, int *n_devices) {
  *devices = NULL;
  *n_devices = 0;
  cl_uint n_platforms = 0;
  cl_int rc = clGetPlatformIDs(0, NULL, &n_platforms);
  if (rc == CL_PLATFORM_NOT_FOUND_KHR || n_platforms == 0)
    return AN_FAIL(AN_ERR_NO_DEVICE, "no OpenCL platform found (is an ICD such as pocl-opencl-icd installed?)");
  AN_CL_RETURN(rc);
  cl_platform_id platforms[32];
  if (n_platforms > 32) n_platforms = 32;
  AN_CL_RETURN(clGetPlatformIDs(n_platforms, platforms, NULL));
  int total = 0, capacity = 0;
  an_device_info *list = NULL;
  for (cl_uint p = 0; p < n_platforms; p++) {
    cl_uint n = 0;
    if (clGetDeviceIDs(platforms[p], CL_DEVICE_TYPE_ALL, 0, NULL, &n) != CL_SUCCESS || n == 0) continue;
    cl_device_id ids[64];
    if (n > 64) n = 64;
    if (clGetDeviceIDs(platforms[p], CL_DEVICE_TYPE_ALL, n, ids, NULL) != CL_SUCCESS) continue;
    for (cl_uint d = 0; d < n; d++) {
      an_device_info *grown = an_grow(list, total, &capacity, sizeof *list);
      if (!grown) {
        free(list);
        return AN_FAIL(AN_ERR_HOST_ALLOC, "device list");
      }
      list = grown;
      fill_info(&list[total++], platforms[p], ids[d], (int)p, (int)d);
    }
  }
  if (total == 0) {
    free(list);
    return AN_FAIL(AN_ERR_NO_DEVICE, "OpenCL platforms exist but expose no device");
  }
  *devices = list;
  *n_devices = total;
  return AN_OK;
}

an_status an_kernel_variant_choose(const an_device_info *info, an_kernel_variant *out) {
  const char *forced = getenv("ALEXNET_KERNELS");
  /* a device that says it is a GPU is one, whatever else it says (Oclgrind: CPU | GPU | accelerator) */
  *out = info->type & CL_DEVICE_TYPE_CPU && !(info->type & CL_DEVICE_TYPE_GPU) ? AN_KERNELS_CPU : AN_KERNELS_GPU;
  if (!forced || !*forced) return AN_OK;
  if (!strcmp(forced, "cpu")) *out = AN_KERNELS_CPU;
  else if (!strcmp(forced, "gpu")) *out = AN_KERNELS_GPU;
  else
    return AN_FAIL(AN_ERR_ARGUMENT, "ALEXNET_KERNELS is '%s'; it takes cpu or gpu (unset: by the device's type)",
                   forced);
  return AN_OK;
}

an_status an_winograd_variant_choose(const an_device_info *info, an_kernel_variant *out) {
  AN_TRY(an_kernel_variant_choose(info, out));
  const char *forced = getenv("ALEXNET_KERNELS");
  if (forced && *forced) return AN_OK;
  if (info->native_float_width >= 16) *out = AN_KERNELS_GPU;
  return AN_OK;
}

an_status an_gemm_engine_choose(const an_device_info *info, int *own) {
  const char *forced = getenv("ALEXNET_GEMM");
  *own = info->type & CL_DEVICE_TYPE_CPU && !(info->type & CL_DEVICE_TYPE_GPU) && info->native_float_width >= 16;
  if (!forced || !*forced) return AN_OK;
  if (!strcmp(forced, "clblast")) *own = 0;
  else if (!strcmp(forced, "project")) *own = 1;
  else
    return AN_FAIL(AN_ERR_ARGUMENT, "ALEXNET_GEMM is '%s'; it takes clblast or project (unset: by the device)",
                   forced);
  return AN_OK;
}

an_status an_winograd_choose(int *out) {
  const char *forced = getenv("ALEXNET_WINOGRAD");
  *out = AN_WINOGRAD_DEFAULT;
  if (!forced || !*forced) return AN_OK;
  if (!strcmp(forced, "0")) *out = 0;
  else if (!strcmp(forced, "1")) *out = AN_WINOGRAD_FORWARD | AN_WINOGRAD_INPUT_GRAD | AN_WINOGRAD_WEIGHT_GRAD;
  else if (!strcmp(forced, "forward")) *out = AN_WINOGRAD_FORWARD;
  else if (!strcmp(forced, "auto")) *out = AN_WINOGRAD_DEFAULT;
  else
    return AN_FAIL(AN_ERR_ARGUMENT,
                   "ALEXNET_WINOGRAD is '%s'; it takes 0 (im2col), 1 (Winograd for the 3x3 and 5x5 stride-1 "
                   "convolutions' forward pass, input gradient and weight gradient), forward (their forward pass "
                   "only) or auto (the default: their forward pass, their input and weight gradients where an "
                   "image has 7x7 tiles or more)",
                   forced);
  return AN_OK;
}

const char *an_kernel_variant_name(an_kernel_variant v) { return v == AN_KERNELS_GPU ? "gpu" : "cpu"; }

static int contains_nocase(const char *hay, const char *needle) {
  size_t n = strlen(needle);
  for (; *hay; hay++) {
    size_t i = 0;
    while (i < n && hay[i] && tolower((unsigned char)hay[i]) == tolower((unsigned char)needle[i])) i++;
    if (i == n) return 1;
  }
  return 0;
}

an_status an_select_device(const char *spec, an_device_info *out) {
  if (!spec || !*spec) spec = getenv("ALEXNET_DEVICE");
  if (spec && strchr(spec, ','))
    return AN_FAIL(AN_ERR_DEVICE_NOT_FOUND,
                   "'%s' names two devices, and this runs on one: give one of them (e.g. --device %.*s); "
                   "train, eval, step and bench run on two",
                   spec, (int)(strchr(spec, ',') - spec), spec);
  an_device_info *list;
  int n;
  AN_TRY(an_list_devices(&list, &n));
  int found = -1;
  if (!spec || !*spec) {
    for (int i = 0; i < n && found < 0; i++)
      if (list[i].type & CL_DEVICE_TYPE_GPU) found = i;
    if (found < 0) found = 0;
  } else {
    int p, d;
    char tail;
    if (sscanf(spec, "%d:%d%c", &p, &d, &tail) == 2) {
      for (int i = 0; i < n; i++)
        if (list[i].platform_index == p && list[i].device_index == d) found = i;
    } else {
      for (int i = 0; i < n && found < 0; i++)
        if (contains_nocase(list[i].name, spec) || contains_nocase(list[i].vendor, spec)) found = i;
    }
  }
  if (found < 0) {
    char names[3000] = "";
    size_t used = 0;
    for (int i = 0; i < n && used < sizeof names - 1; i++)
      used += (size_t)snprintf(names + used, sizeof names - used, "\n  %d:%d  %s (%s)", list[i].platform_index,
                               list[i].device_index, list[i].name, list[i].platform_name);
    free(list);
    return AN_FAIL(AN_ERR_DEVICE_NOT_FOUND, "no OpenCL device matches '%s'; the devices are:%s", spec, names);
  }
  *out = list[found];
  free(list);
  return AN_OK;
}

an_status an_build_program(an_runtime *rt, const char *source, const char *options, cl_program *out) {
  cl_int rc;
  *out = NULL;
  cl_program prog = clCreateProgramWithSource(rt->context, 1, &source, NULL, &rc);
  AN_CL_RETURN(rc);
  rc = clBuildProgram(prog, 1, &rt->info.device, options, NULL, NULL);
  if (rc != CL_SUCCESS) {
    size_t log_size = 0;
    clGetProgramBuildInfo(prog, rt->info.device, CL_PROGRAM_BUILD_LOG, 0, NULL, &log_size);
    char *log = malloc(log_size + 1);
    if (log) {
      log[0] = '\0';
      clGetProgramBuildInfo(prog, rt->info.device, CL_PROGRAM_BUILD_LOG, log_size, log, NULL);
      log[log_size] = '\0';
    }
    fprintf(stderr, "alexnet: building the kernels for %s failed (%s)\nbuild options: %s\nbuild log:\n%s\n",
            rt->info.name, an_status_name(rc), options ? options : "", log ? log : "(no log)");
    free(log);
    clReleaseProgram(prog);
    return AN_FAIL(AN_ERR_BUILD, "clBuildProgram for %s failed with %s (options '%s'; the build log is above)",
                   rt->info.name, an_status_name(rc), options ? options : "");
  }
  *out = prog;
  return AN_OK;
}

/* The kernel sources: embedded at build time, or read from ALEXNET_CL_DIR for kernel work. */
static an_status load_sources(char **out) {
  const char *dir = getenv("ALEXNET_CL_DIR");
  size_t total = 1;
  char **parts = calloc((size_t)an_cl_source_count, sizeof *parts);
  if (!parts) return AN_FAIL(AN_ERR_HOST_ALLOC, "kernel sources");
  an_status status = AN_OK;
  for (int i = 0; i < an_cl_source_count; i++) {
    if (dir && *dir) {
      char path[4096];
      snprintf(path, sizeof path, "%s/%s", dir, an_cl_source_names[i]);
      FILE *f = fopen(path, "rb");
      if (!f) {
        status = AN_FAIL(AN_ERR_IO, "ALEXNET_CL_DIR: cannot open %s", path);
        goto cleanup;
      }
      fseek(f, 0, SEEK_END);
      long size = ftell(f);
      fseek(f, 0, SEEK_SET);
      parts[i] = malloc((size_t)size + 1);
      size_t got = parts[i] ? fread(parts[i], 1, (size_t)size, f) : 0;
      fclose(f);
      if (!parts[i] || got != (size_t)size) {
        status = AN_FAIL(AN_ERR_IO, "ALEXNET_CL_DIR: cannot read %s", path);
        goto cleanup;
      }
      parts[i][size] = '\0';
    } else {
      parts[i] = strdup(an_cl_sources[i]);
      if (!parts[i]) {
        status = AN_FAIL(AN_ERR_HOST_ALLOC, "kernel sources");
        goto cleanup;
      }
    }
    total += strlen(parts[i]) + 64;
  }
  char *all = malloc(total);
  if (!all) {
    status = AN_FAIL(AN_ERR_HOST_ALLOC, "kernel sources");
    goto cleanup;
  }
  size_t used = 0;
  for (int i = 0; i < an_cl_source_count; i++) {
    used += (size_t)sprintf(all + used, "\n#line 1 \"%s\"\n", an_cl_source_names[i]);
    strcpy(all + used, parts[i]);
    used += strlen(parts[i]);
  }
  *out = all;
cleanup:
  for (int i = 0; i < an_cl_source_count; i++) free(parts[i]);
  free(parts);
  return status;
}


/* ---- compiled program cache: one file per (device, driver, options, source), checked before use ----
 * File: "ANPROG1\0", key hash (8 bytes), payload size (8), payload hash (8), payload (the binary).
 * Anything that does not match (other key, short file, wrong hash, a binary the driver refuses) is
 * removed and the program rebuilt from source; a stale or corrupt entry is never trusted. */
static uint64_t fnv1a(uint64_t h, const void *data, size_t n) {
  const unsigned char *p = data;
  for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ULL;
  return h;
}

static uint64_t program_key(const an_runtime *rt, const char *source) {
  uint64_t h = 0xcbf29ce484222325ULL;
  const char *parts[] = {rt->info.name,           rt->info.vendor,   rt->info.driver_version,
                         rt->info.device_version, rt->build_options, source};
  for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) h = fnv1a(h, parts[i], strlen(parts[i]) + 1);
  return h;
}

static void program_cache_path(const an_runtime *rt, const char *source, char *buf, size_t size) {
  const char *dir = getenv("ALEXNET_CACHE_DIR"), *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
  const unsigned long long key = (unsigned long long)program_key(rt, source);
  if (dir && *dir) snprintf(buf, size, "%s/program-%016llx.bin", dir, key);
  else if (xdg && *xdg) snprintf(buf, size, "%s/alexnet/program-%016llx.bin", xdg, key);
  else if (home && *home) snprintf(buf, size, "%s/.cache/alexnet/program-%016llx.bin", home, key);
  else buf[0] = '\0';
}

static const char program_magic[8] = {'A', 'N', 'P', 'R', 'O', 'G', '1', '\0'};

static int program_cache_load(an_runtime *rt, const char *path, cl_program *out) {
  FILE *f = fopen(path, "rb");
  if (!f) return 0;
  char magic[8];
  uint64_t header[3]; /* key, size, payload hash */
  unsigned char *payload = NULL;
  int ok = fread(magic, 1, 8, f) == 8 && !memcmp(magic, program_magic, 8) && fread(header, 8, 3, f) == 3 &&
           header[1] > 0 && header[1] < ((uint64_t)1 << 31);
  const char *name = strrchr(path, '/');
  unsigned long long key_in_name = 0;
  if (ok && name && sscanf(name, "/program-%16llx.bin", &key_in_name) == 1) ok = header[0] == key_in_name;
  if (ok)
    ok = (payload = malloc((size_t)header[1])) != NULL && fread(payload, 1, (size_t)header[1], f) == header[1] &&
         fgetc(f) == EOF && fnv1a(0xcbf29ce484222325ULL, payload, (size_t)header[1]) == header[2];
  fclose(f);
  cl_program prog = NULL;
  if (ok) {
    const size_t size = (size_t)header[1];
    const unsigned char *bin = payload;
    cl_int binary_status = CL_SUCCESS, rc;
    prog = clCreateProgramWithBinary(rt->context, 1, &rt->info.device, &size, &bin, &binary_status, &rc);
    ok = rc == CL_SUCCESS && binary_status == CL_SUCCESS &&
         clBuildProgram(prog, 1, &rt->info.device, rt->build_options, NULL, NULL) == CL_SUCCESS;
    cl_uint n_kernels = 0; /* a program with no kernels is no program of ours */
    ok = ok && clCreateKernelsInProgram(prog, 0, NULL, &n_kernels) == CL_SUCCESS && n_kernels > 0;
  }
  free(payload);
  if (!ok) {
    if (prog) clReleaseProgram(prog);
    remove(path);
    return 0;
  }
  *out = prog;
  return 1;
}

/* Every kernel of the program, by the name it has in cl/: layers launch them by that name, so a new
 * kernel needs no registration here. */
static an_status create_kernels(an_runtime *rt) {
  cl_uint n = 0;
  AN_CL_RETURN(clCreateKernelsInProgram(rt->program, 0, NULL, &n));
  rt->kernels = calloc(n ? n : 1, sizeof *rt->kernels);
  rt->kernel_names = calloc(n ? n : 1, sizeof *rt->kernel_names);
  if (!rt->kernels || !rt->kernel_names) return AN_FAIL(AN_ERR_HOST_ALLOC, "%u kernels", n);
  AN_CL_RETURN(clCreateKernelsInProgram(rt->program, n, rt->kernels, NULL));
  rt->n_kernels = (int)n;
  for (int k = 0; k < rt->n_kernels; k++)
    AN_CL_RETURN(clGetKernelInfo(rt->kernels[k], CL_KERNEL_FUNCTION_NAME, sizeof rt->kernel_names[k],
                                 rt->kernel_names[k], NULL));
  return AN_OK;
}

static int kernel_index(const an_runtime *rt, const char *name) {
  for (int k = 0; k < rt->n_kernels; k++)
    if (strcmp(rt->kernel_names[k], name) == 0) return k;
  return -1;
}

static void program_cache_store(an_runtime *rt, const char *path) {
  size_t size = 0;
  if (clGetProgramInfo(rt->program, CL_PROGRAM_BINARY_SIZES, sizeof size, &size, NULL) != CL_SUCCESS || !size)
    return;
  unsigned char *bin = malloc(size);
  if (!bin) return;
  if (clGetProgramInfo(rt->program, CL_PROGRAM_BINARIES, sizeof bin, &bin, NULL) == CL_SUCCESS) {
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    FILE *f = an_make_parent_dirs(path) == AN_OK ? fopen(tmp, "wb") : NULL;
    if (f) {
      const char *name = strrchr(path, '/');
      unsigned long long key = 0;
      if (name) sscanf(name, "/program-%16llx.bin", &key);
      const uint64_t header[3] = {key, size, fnv1a(0xcbf29ce484222325ULL, bin, size)};
      const int ok = fwrite(program_magic, 1, 8, f) == 8 && fwrite(header, 8, 3, f) == 3 &&
                     fwrite(bin, 1, size, f) == size && fflush(f) == 0 && fsync(fileno(f)) == 0;
      if (fclose(f) == 0 && ok && rename(tmp, path) == 0) {
        free(bin);
        return;
      }
      remove(tmp);
    }
  }
  free(bin);
}

/* A runtime on one device; in `shared` when given (a context holding that device), else in a context
 * of its own; then the caller's setup, if any. */
static an_status runtime_create(const an_device_info *info, cl_context shared, an_runtime_setup setup,
                                an_runtime **out) {
  *out = NULL;
  an_status status = AN_OK;
  char *source = NULL;
  cl_int rc;
  an_runtime *rt = calloc(1, sizeof *rt);
  if (!rt) return AN_FAIL(AN_ERR_HOST_ALLOC, "runtime");
  rt->info = *info;
  AN_TRY_GOTO(an_kernel_variant_choose(info, &rt->kernels_variant));
  AN_TRY_GOTO(an_winograd_variant_choose(info, &rt->winograd_variant));
  AN_TRY_GOTO(an_gemm_engine_choose(info, &rt->own_gemm));
  rt->gemv_off = getenv("ALEXNET_NO_GEMV") && *getenv("ALEXNET_NO_GEMV"); /* comparisons: Xgemm for every GEMM */
  AN_TRY_GOTO(an_winograd_choose(&rt->winograd));
  if (shared) {
    AN_CL_GOTO(clRetainContext(shared));
    rt->context = shared;
  } else {
    cl_context_properties props[] = {CL_CONTEXT_PLATFORM, (cl_context_properties)rt->info.platform, 0};
    rt->context = clCreateContext(props, 1, &rt->info.device, NULL, NULL, &rc);
    AN_CL_GOTO(rc);
  }
  rt->queue = clCreateCommandQueue(rt->context, rt->info.device, CL_QUEUE_PROFILING_ENABLE, &rc);
  AN_CL_GOTO(rc);
  AN_TRY_GOTO(load_sources(&source));
  snprintf(rt->build_options, sizeof rt->build_options, "-cl-std=CL1.2");
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  char cache_path[4096] = "";
  if (!getenv("ALEXNET_NO_PROGRAM_CACHE")) program_cache_path(rt, source, cache_path, sizeof cache_path);
  if (cache_path[0] && program_cache_load(rt, cache_path, &rt->program)) {
    rt->program_from_cache = 1;
  } else {
    AN_TRY_GOTO(an_build_program(rt, source, rt->build_options, &rt->program));
    if (cache_path[0])
      program_cache_store(rt, cache_path); /* best effort: a cache that cannot be written is no error */
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  rt->build_seconds = (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) * 1e-9;
  AN_TRY_GOTO(create_kernels(rt));
  free(source);
  source = NULL;
  if (setup) AN_TRY_GOTO(setup(rt));
  *out = rt;
  return AN_OK;
cleanup:
  free(source);
  an_runtime_destroy(rt);
  return status;
}

an_status an_runtime_open(const char *device_spec, an_runtime_setup setup, an_runtime **out) {
  *out = NULL;
  an_device_info info;
  AN_TRY(an_select_device(device_spec, &info));
  return runtime_create(&info, NULL, setup, out);
}

an_status an_runtime_open_pair(const char *spec, int separate_contexts, an_runtime_setup setup, an_runtime **rt0,
                               an_runtime **rt1) {
  *rt0 = *rt1 = NULL;
  if (!spec || !*spec) spec = getenv("ALEXNET_DEVICE");
  const char *comma = spec ? strchr(spec, ',') : NULL;
  if (!comma || strchr(comma + 1, ','))
    return AN_FAIL(AN_ERR_ARGUMENT,
                   "two devices are named by two specs separated by a comma (\"0:0,0:1\"), not '%s'",
                   spec ? spec : "");
  char first[256];
  snprintf(first, sizeof first, "%.*s", (int)(comma - spec), spec);
  an_device_info a, b;
  AN_TRY(an_select_device(first, &a));
  AN_TRY(an_select_device(comma + 1, &b));
  an_status status = AN_OK;
  cl_context shared = NULL;
  cl_int rc;
  if (!separate_contexts && a.platform == b.platform) {
    /* one context: the devices exchange by buffer copies, ordered by events */
    cl_device_id ids[2] = {a.device, b.device};
    cl_context_properties props[] = {CL_CONTEXT_PLATFORM, (cl_context_properties)a.platform, 0};
    shared = clCreateContext(props, a.device == b.device ? 1 : 2, ids, NULL, NULL, &rc);
    AN_CL_GOTO(rc);
  }
  AN_TRY_GOTO(runtime_create(&a, shared, setup, rt0));
  AN_TRY_GOTO(runtime_create(&b, shared, setup, rt1));
  if (shared) clReleaseContext(shared);
  return AN_OK;
cleanup:
  an_runtime_destroy(*rt0);
  an_runtime_destroy(*rt1);
  *rt0 = *rt1 = NULL;
  if (shared) clReleaseContext(shared);
  return status;
}

void an_runtime_destroy(an_runtime *rt) {
  if (!rt) return;
  if (rt->queue) clFinish(rt->queue);
  an_marks_clear(rt);
  free(rt->marks);
  an_kernel_events_clear(rt);
  free(rt->kevents);
  if (rt->gemm_temp) clReleaseMemObject(rt->gemm_temp);
  if (rt->gemm_table_free) rt->gemm_table_free(rt->gemm_table);
  for (int k = rt->n_kernels - 1; k >= 0; k--)
    if (rt->kernels[k]) clReleaseKernel(rt->kernels[k]);
  free(rt->kernels);
  free(rt->kernel_names);
  if (rt->program) clReleaseProgram(rt->program);
  if (rt->queue) clReleaseCommandQueue(rt->queue);
  if (rt->context) clReleaseContext(rt->context);
  free(rt);
}

an_status an_alloc(an_runtime *rt, size_t n_floats, cl_mem *out) {
  cl_int rc;
  size_t bytes = (n_floats ? n_floats : 1) * sizeof(float);
  *out = NULL;
  if (bytes > rt->info.max_alloc_bytes)
    return AN_FAIL(AN_ERR_DEVICE_MEMORY,
                   "a buffer of %.1f MiB exceeds %s's largest allocation (%.1f MiB); try a smaller batch",
                   bytes / 1048576.0, rt->info.name, rt->info.max_alloc_bytes / 1048576.0);
  *out = clCreateBuffer(rt->context, CL_MEM_READ_WRITE, bytes, NULL, &rc);
  if (rc == CL_MEM_OBJECT_ALLOCATION_FAILURE || rc == CL_OUT_OF_RESOURCES || rc == CL_OUT_OF_HOST_MEMORY)
    return AN_FAIL(rc, "out of device memory allocating %.1f MiB on %s; try a smaller batch", bytes / 1048576.0,
                   rt->info.name);
  AN_CL_RETURN(rc);
  return AN_OK;
}

an_status an_write(an_runtime *rt, an_buf dst, const float *src, size_t n) {
  AN_CL_RETURN(clEnqueueWriteBuffer(rt->queue, dst.mem, CL_TRUE, dst.off * sizeof(float), n * sizeof(float), src, 0,
                                    NULL, NULL));
  return AN_OK;
}

an_status an_read(an_runtime *rt, float *dst, an_buf src, size_t n) {
  AN_CL_RETURN(clEnqueueReadBuffer(rt->queue, src.mem, CL_TRUE, src.off * sizeof(float), n * sizeof(float), dst, 0,
                                   NULL, NULL));
  return AN_OK;
}

an_status an_fill(an_runtime *rt, an_buf dst, float value, size_t n) {
  if (n == 0) return AN_OK;
  AN_CL_RETURN(clEnqueueFillBuffer(rt->queue, dst.mem, &value, sizeof value, dst.off * sizeof(float),
                                   n * sizeof(float), 0, NULL, NULL));
  return AN_OK;
}

an_status an_finish(an_runtime *rt) {
  AN_CL_RETURN(clFinish(rt->queue));
  return AN_OK;
}

an_status an_launch_at(an_runtime *rt, const char *kernel, cl_uint dims, const size_t *global, const size_t *local,
                       const an_arg *args, int n_args, const char *file, int line) {
  const int k = kernel_index(rt, kernel);
  if (k < 0) return an_error(AN_ERR_ARGUMENT, file, line, "no kernel named %s in the project's program", kernel);
  for (int i = 0; i < n_args; i++) {
    cl_int rc = clSetKernelArg(rt->kernels[k], (cl_uint)i, args[i].size, args[i].local ? NULL : &args[i].v);
    if (rc != CL_SUCCESS) return an_error(rc, file, line, "clSetKernelArg(%s, %d)", rt->kernel_names[k], i);
  }
  for (cl_uint d = 0; d < dims; d++)
    if (global[d] == 0) return AN_OK;
  an_kernel_event *kept = NULL;
  if (rt->kernel_profiling) {
    an_kernel_event *grown = an_grow(rt->kevents, rt->n_kevents, &rt->cap_kevents, sizeof *grown);
    if (!grown) return an_error(AN_ERR_HOST_ALLOC, file, line, "kernel events");
    rt->kevents = grown;
    kept = &rt->kevents[rt->n_kevents];
    memset(kept, 0, sizeof *kept);
    kept->kernel = rt->kernel_names[k], kept->dims = dims;
    for (cl_uint d = 0; d < dims && d < 3; d++) kept->global[d] = global[d];
  }
  cl_int rc = clEnqueueNDRangeKernel(rt->queue, rt->kernels[k], dims, NULL, global, local, 0, NULL,
                                     kept ? &kept->event : NULL);
  if (kept && rc == CL_SUCCESS) rt->n_kevents++;
  if (rc != CL_SUCCESS) {
    if (rc == CL_MEM_OBJECT_ALLOCATION_FAILURE || rc == CL_OUT_OF_RESOURCES)
      return an_error(rc, file, line,
                      "clEnqueueNDRangeKernel(%s): the device ran out of memory; try a smaller batch",
                      rt->kernel_names[k]);
    return an_error(rc, file, line, "clEnqueueNDRangeKernel(%s)", rt->kernel_names[k]);
  }
  return AN_OK;
}

an_status an_mark_add(an_runtime *rt, an_mark_kind kind, int layer) {
  if (!rt->profiling) return AN_OK;
  an_mark *grown = an_grow(rt->marks, rt->n_marks, &rt->cap_marks, sizeof *grown);
  if (!grown) return AN_FAIL(AN_ERR_HOST_ALLOC, "profiling marks");
  rt->marks = grown;
  an_mark *m = &rt->marks[rt->n_marks];
  m->kind = kind, m->layer = layer;
  AN_CL_RETURN(clEnqueueMarkerWithWaitList(rt->queue, 0, NULL, &m->event));
  rt->n_marks++;
  return AN_OK;
}

an_status an_mark_end_ms(an_runtime *rt, int i, double *ms) {
  cl_ulong end = 0;
  AN_CL_RETURN(clGetEventProfilingInfo(rt->marks[i].event, CL_PROFILING_COMMAND_END, sizeof end, &end, NULL));
  *ms = (double)end * 1e-6;
  return AN_OK;
}


an_status an_kernel_event_ms(const an_kernel_event *e, double *ms) {
  cl_ulong start = 0, end = 0;
  AN_CL_RETURN(clGetEventProfilingInfo(e->event, CL_PROFILING_COMMAND_START, sizeof start, &start, NULL));
  AN_CL_RETURN(clGetEventProfilingInfo(e->event, CL_PROFILING_COMMAND_END, sizeof end, &end, NULL));
  *ms = (double)(end - start) * 1e-6;
  return AN_OK;
}

void an_kernel_events_clear(an_runtime *rt) {
  for (int i = 0; i < rt->n_kevents; i++) clReleaseEvent(rt->kevents[i].event);
  rt->n_kevents = 0;
}

void an_marks_clear(an_runtime *rt) {
  for (int i = 0; i < rt->n_marks; i++) clReleaseEvent(rt->marks[i].event);
  rt->n_marks = 0;
}

double an_seconds(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + t.tv_nsec * 1e-9;
}

an_status an_reserve_gemm_temp(an_runtime *rt, size_t bytes) {
  if (bytes <= rt->gemm_temp_bytes) return AN_OK;
  cl_mem grown;
  AN_TRY(an_alloc(rt, (bytes + sizeof(float) - 1) / sizeof(float), &grown));
  if (rt->gemm_temp) {
    AN_CL_RETURN(clFinish(rt->queue)); /* the old scratch may still be in use by enqueued GEMMs */
    clReleaseMemObject(rt->gemm_temp);
  }
  rt->gemm_temp = grown;
  rt->gemm_temp_bytes = bytes;
  return AN_OK;
}

an_status an_make_dirs(const char *dir) {
  char path[4096];
  if (snprintf(path, sizeof path, "%s", dir) >= (int)sizeof path)
    return AN_FAIL(AN_ERR_ARGUMENT, "%s: path too long", dir);
  for (char *p = path + 1; *p; p++) {
    if (*p != '/') continue;
    *p = '\0';
    if (mkdir(path, 0777) != 0 && errno != EEXIST)
      return AN_FAIL(AN_ERR_IO, "%s: cannot create the directory: %s", path, strerror(errno));
    *p = '/';
  }
  if (mkdir(path, 0777) == 0 || errno == EEXIST) return AN_OK;
  return AN_FAIL(AN_ERR_IO, "%s: cannot create the directory: %s", dir, strerror(errno));
}

an_status an_make_parent_dirs(const char *path) {
  char dir[4096];
  if (snprintf(dir, sizeof dir, "%s", path) >= (int)sizeof dir)
    return AN_FAIL(AN_ERR_ARGUMENT, "%s: path too long", path);
  char *slash = strrchr(dir, '/');
  if (!slash || slash == dir) return AN_OK;
  *slash = '\0';
  return an_make_dirs(dir);
}
