/* Internal error macros: each records the failing call, its symbolic status and file:line, then
 * jumps to the function's one cleanup label (OpenCL-SDK style) or returns. */
#ifndef ALEXNET_CHECK_H
#define ALEXNET_CHECK_H

#include "alexnet/status.h"

/* An error with its message, recorded at the caller's file:line: return AN_FAIL(AN_ERR_ARGUMENT, "...", ...). */
#define AN_FAIL(status, ...) an_error((status), __FILE__, __LINE__, __VA_ARGS__)

/* Sets `status` and jumps to `cleanup` when the expression (an OpenCL/CLBlast call) fails. */
#define AN_CL_GOTO(call)                                          \
  do {                                                            \
    int an_rc_ = (int)(call);                                     \
    if (an_rc_ != 0) {                                            \
      status = an_error(an_rc_, __FILE__, __LINE__, "%s", #call); \
      goto cleanup;                                               \
    }                                                             \
  } while (0)

/* Returns the status from the enclosing function when the call fails. */
#define AN_CL_RETURN(call)                                                     \
  do {                                                                         \
    int an_rc_ = (int)(call);                                                  \
    if (an_rc_ != 0) return an_error(an_rc_, __FILE__, __LINE__, "%s", #call); \
  } while (0)

/* Propagates a status that already carries its message. */
#define AN_TRY(expr)                    \
  do {                                  \
    an_status an_st_ = (expr);          \
    if (an_st_ != AN_OK) return an_st_; \
  } while (0)

#define AN_TRY_GOTO(expr)              \
  do {                                 \
    status = (expr);                   \
    if (status != AN_OK) goto cleanup; \
  } while (0)

#endif
