/* Status codes of the library and the last error's message.
 *
 * One integer space, as CLBlast does: 0 is success, OpenCL's own codes (-1 … -70) and CLBlast's
 * (-1024 …, -2039 … -2050) keep their values, and the project's codes live at -3000 and below. So one
 * an_status_name() names every code the library can return. */
#ifndef ALEXNET_STATUS_H
#define ALEXNET_STATUS_H

#ifdef __cplusplus
extern "C" {
#endif

typedef int an_status;

/* The functions the shared library exports: those of alexnet.h and this header. The library is built
 * with hidden visibility, so everything else stays internal to it (the static library and the
 * project's own command and tests still reach every function). */
#if defined(__GNUC__)
#define AN_API __attribute__((visibility("default")))
#else
#define AN_API
#endif

enum {
  AN_OK = 0,
  AN_ERR_HOST_ALLOC = -3001,       /* malloc/calloc failed */
  AN_ERR_ARGUMENT = -3002,         /* a caller passed an invalid value */
  AN_ERR_NO_DEVICE = -3003,        /* no OpenCL platform or device at all */
  AN_ERR_DEVICE_NOT_FOUND = -3004, /* --device / ALEXNET_DEVICE names no device */
  AN_ERR_BUILD = -3005,            /* the project's kernels failed to build */
  AN_ERR_IO = -3006,               /* a file could not be read or written */
  AN_ERR_NOT_FINITE = -3007,       /* the loss is NaN or Inf */
  AN_ERR_DEVICE_MEMORY = -3008,    /* the plan does not fit the device */
  AN_ERR_UNKNOWN_MODEL = -3009     /* a model name that is not one of the three */
};

/* The symbolic name of any status: "CL_MEM_OBJECT_ALLOCATION_FAILURE", "CLBlastInvalidLocalMemUsage",
 * "AN_ERR_ARGUMENT", … ; "UNKNOWN_STATUS" for codes nobody defines. */
AN_API const char *an_status_name(an_status status);

/* The message of the last failure on this thread: what failed, the symbolic status and file:line. */
AN_API const char *an_last_error(void);

/* Records a failure (used by the library; the printf-style message says what and why). Returns status. */
an_status an_error(an_status status, const char *file, int line, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

AN_API void an_clear_error(void);

#ifdef __cplusplus
}
#endif
#endif
