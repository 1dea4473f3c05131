/* Internal: what the search (tuner.c) needs of the tuning database (tuning.c) beyond the public
 * alexnet/tune.h: the Xgemm parameters by name, the kernel's constraints, the direct/indirect switch,
 * and leaving a result in effect on a runtime. */
#ifndef ALEXNET_GEMM_TUNING_H
#define ALEXNET_GEMM_TUNING_H

#include "alexnet/tune.h"

/* Indices into an_gemm_config.v, in an_xgemm_param_names' order. */
enum {
  AN_XGEMM_GEMMK,
  AN_XGEMM_KREG,
  AN_XGEMM_KWG,
  AN_XGEMM_KWI,
  AN_XGEMM_MDIMA,
  AN_XGEMM_MDIMC,
  AN_XGEMM_MWG,
  AN_XGEMM_NDIMB,
  AN_XGEMM_NDIMC,
  AN_XGEMM_NWG,
  AN_XGEMM_SA,
  AN_XGEMM_SB,
  AN_XGEMM_STRM,
  AN_XGEMM_STRN,
  AN_XGEMM_VWM,
  AN_XGEMM_VWN
};

/* The Xgemm kernel (CLBlast's GEMMK: 0 or 1) of the configuration this file last applied to rt's device;
 * 0 when it applied none (CLBlast's own database then). */
int an_gemm_kernel_in_effect(const an_runtime *rt);

/* The constraints CLBlast's Xgemm kernels (0 and 1) place on its parameters on this device (a violation can
 * build and still compute wrong results, so the search never proposes one and the loader drops it). */
int an_gemm_config_valid(const an_gemm_config *c, const an_device_info *info);

/* Sets CLBlast's XGEMM_MIN_INDIRECT_SIZE on rt's device (AN_GEMM_DIRECT: every GEMM on the direct
 * kernel; 1: every GEMM on the indirect one). */
an_status an_gemm_set_min_indirect(an_runtime *rt, size_t size);

/* Leaves a tuning in effect on rt as a later load of its saved file would: the fallback applied, and
 * each of the shapes' own configurations selected before that shape's GEMMs. */
an_status an_gemm_tuning_install(an_runtime *rt, const an_gemm_config *fallback, const an_gemm_shape_config *shapes,
                                 int n_shapes);

#endif
