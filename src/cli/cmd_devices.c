/* alexnet devices: every OpenCL platform and device, with the index --device takes. */
#include <stdio.h>
#include <stdlib.h>

#include "alexnet/runtime.h"
#include "alexnet/tune.h"
#include "cli.h"

static const char *type_name(cl_device_type t) {
  if (t & CL_DEVICE_TYPE_GPU) return "GPU";
  if (t & CL_DEVICE_TYPE_CPU) return "CPU";
  if (t & CL_DEVICE_TYPE_ACCELERATOR) return "accelerator";
  return "other";
}

static void help(void) {
  printf("usage: alexnet devices\n\nLists every OpenCL platform and device: the P:D index that --device\n"
         "and ALEXNET_DEVICE take, name, vendor, type, compute units, memory, OpenCL C version,\n"
         "fp16/fp64 support, whether memory is shared with the host, and the GEMM tuning a run on it\n"
         "applies (the tuning file's entry, else the shipped database's entry for its family).\n");
}

int cmd_devices(int argc, char **argv) {
  const cli_command cmd = {"devices", NULL, 0, help, 0};
  int n_positionals;
  const int status = cli_parse(&cmd, argc, argv, &n_positionals);
  if (status != CLI_CONTINUE) return status;
  an_device_info *list;
  int n;
  if (an_list_devices(&list, &n) != AN_OK) return cli_fail("listing OpenCL devices");
  an_device_info chosen;
  const int have_default = an_select_device(NULL, &chosen) == AN_OK;
  for (int i = 0; i < n; i++) {
    const an_device_info *d = &list[i];
    const int is_default = have_default && d->device == chosen.device;
    printf("%d:%d  %s%s\n", d->platform_index, d->device_index, d->name, is_default ? "  (default)" : "");
    printf("      platform        %s\n", d->platform_name);
    printf("      vendor          %s\n", d->vendor);
    printf("      type            %s\n", type_name(d->type));
    printf("      compute units   %u\n", d->compute_units);
    printf("      global memory   %.0f MiB\n", d->global_mem_bytes / 1048576.0);
    printf("      local memory    %.0f KiB\n", d->local_mem_bytes / 1024.0);
    printf("      max allocation  %.0f MiB\n", d->max_alloc_bytes / 1048576.0);
    printf("      OpenCL C        %s\n", d->c_version);
    printf("      driver          %s (%s)\n", d->driver_version, d->device_version);
    printf("      fp16 %s, fp64 %s, host-unified memory %s\n", d->fp16 ? "yes" : "no", d->fp64 ? "yes" : "no",
           d->host_unified ? "yes" : "no");
    char tuning[4400];
    an_tuning_describe(d, tuning, sizeof tuning);
    int own = 0;
    if (an_gemm_engine_choose(d, &own) != AN_OK) own = -1;
    printf("      GEMMs           %s\n",
           own < 0 ? "(ALEXNET_GEMM is not clblast or project)"
           : own   ? "the project's kernel (AVX-512 CPU; ALEXNET_GEMM=clblast for CLBlast's)"
                   : "CLBlast's");
    printf("      GEMM tuning     %s\n", tuning);
  }
  free(list);
  return 0;
}
