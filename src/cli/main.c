/* alexnet: dispatches to the subcommands; only the CLI prints usage and exits. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alexnet/status.h"
#include "alexnet/train.h"
#include "cli.h"

static const struct {
  const char *name;
  int (*run)(int, char **);
  const char *summary;
} commands[] = {
    {"devices", cmd_devices, "list every OpenCL platform and device"},
    {"step", cmd_step, "run forward+backward+SGD steps of a model on random data, print loss and time"},
    {"bench", cmd_bench, "time training or inference per layer on one or every device"},
    {"tune", cmd_tune, "tune CLBlast's GEMM for a device on a model's shapes; later runs apply it"},
    {"train", cmd_train, "train a model on a dataset: checkpoints, validation, log.jsonl; --resume continues"},
    {"eval", cmd_eval, "top-1/top-5 (and confusion matrix) of a checkpoint on a dataset"},
    {"classify", cmd_classify, "top-k classes of image files (inference only; --time: latency, memory)"},
    {"filters", cmd_filters, "conv1's kernels as an image grid (the paper's Figure 3)"},
    {"pack", cmd_pack, "pack a folder-per-class image tree into a shard of resized uint8 images"},
};

static void usage(FILE *f) {
  fprintf(f, "usage: alexnet <command> [options]   (alexnet <command> --help for its options)\n\n"
             "AlexNet (Krizhevsky, Sutskever & Hinton, 2012) on OpenCL with CLBlast.\n"
             "Models: alexnet (the paper's two columns), alexnet-half (one column), alexnet-tv (torchvision).\n\n"
             "commands:\n");
  for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
    fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
  fprintf(f, "\nThe device is chosen by --device P:D or a name substring, or ALEXNET_DEVICE; step, train\n"
             "and eval take two separated by a comma (0:0,0:1) and split the model across them.\n"
             "ALEXNET_CL_DIR loads the kernels from that directory instead of the embedded copies.\n");
}

int cli_fail(const char *what) {
  if (!an_world_failure_is_echo()) /* another rank's failure, shared: rank 0 prints it */
    fprintf(stderr, "alexnet: %s: %s\n", what, an_last_error());
  return 1;
}

const char *cli_json(const char *s, char *buf, size_t size) {
  size_t used = 0;
  for (; s && *s; s++) {
    const unsigned char c = (unsigned char)*s;
    char piece[8];
    if (c == '"' || c == '\\') snprintf(piece, sizeof piece, "\\%c", c);
    else if (c < 0x20) snprintf(piece, sizeof piece, "\\u%04x", c);
    else piece[0] = (char)c, piece[1] = '\0';
    const size_t len = strlen(piece);
    if (used + len >= size) break;
    memcpy(buf + used, piece, len);
    used += len;
  }
  if (size) buf[used] = '\0';
  return buf;
}

int cli_open_devices(const char *spec, int separate_contexts, an_runtime **rt0, an_runtime **rt1) {
  *rt0 = *rt1 = NULL;
  if (!spec || !*spec) spec = getenv("ALEXNET_DEVICE");
  if (spec && strchr(spec, ',')) {
    if (an_runtime_create_pair(spec, separate_contexts, rt0, rt1) != AN_OK)
      return cli_fail("opening the two OpenCL devices");
  } else if (an_runtime_create(spec, rt0) != AN_OK) {
    return cli_fail("opening the OpenCL device");
  }
  for (const an_runtime *rt = *rt0; rt; rt = rt == *rt0 ? *rt1 : NULL)
    printf("device %d:%d %s (%s)\n", rt->info.platform_index, rt->info.device_index, rt->info.name,
           rt->info.platform_name);
  return 0;
}

/* This rank's --device entry (a';'-separated list, one per local rank, or one for all), or by default
 * the local rank's index among the machine's GPUs (else its devices). */
static an_status rank_device_spec(const char *given, const an_world *w, char *spec, size_t size) {
  if (!given || !*given) given = getenv("ALEXNET_DEVICE");
  if (given && *given) {
    int entries = 1;
    for (const char *p = given; *p; p++) entries += *p == ';';
    if (entries != 1 && entries != w->local_size)
      return an_error(AN_ERR_ARGUMENT, __FILE__, __LINE__,
                      "--device '%s' has %d entries for the %d ranks on this machine: give one per local rank, "
                      "separated by ';', or one that all share",
                      given, entries, w->local_size);
    const char *p = given;
    for (int k = 0; entries > 1 && k < w->local_rank; k++) p = strchr(p, ';') + 1;
    const size_t len = strcspn(p, ";");
    snprintf(spec, size, "%.*s", (int)len, p);
    return AN_OK;
  }
  an_device_info *devs = NULL;
  int n = 0, gpus = 0, pick = -1;
  const an_status listed = an_list_devices(&devs, &n);
  if (listed != AN_OK) return listed;
  for (int i = 0; i < n; i++) gpus += (devs[i].type & CL_DEVICE_TYPE_GPU) != 0;
  for (int i = 0, k = 0; i < n && pick < 0; i++)
    if ((!gpus || (devs[i].type & CL_DEVICE_TYPE_GPU)) && k++ == w->local_rank) pick = i;
  if (pick >= 0) snprintf(spec, size, "%d:%d", devs[pick].platform_index, devs[pick].device_index);
  free(devs);
  if (pick < 0)
    return an_error(AN_ERR_DEVICE_NOT_FOUND, __FILE__, __LINE__,
                    "local rank %d of %d on this machine, which has %d %s: start at most %d ranks per machine, "
                    "or give --device with one entry per local rank (see alexnet train --help)",
                    w->local_rank, w->local_size, gpus ? gpus : n, gpus ? "GPUs" : "OpenCL devices",
                    gpus ? gpus : n);
  return AN_OK;
}

int cli_open_rank_devices(const char *device, int separate_contexts, an_runtime **rt, an_runtime **rt1) {
  const an_world w = an_world_get();
  if (w.size == 1) return cli_open_devices(device, separate_contexts, rt, rt1);
  char spec[256];
  *rt = *rt1 = NULL;
  an_status st = rank_device_spec(device, &w, spec, sizeof spec);
  if (st == AN_OK)
    st = strchr(spec, ',') ? an_runtime_create_pair(spec, separate_contexts, rt, rt1) : an_runtime_create(spec, rt);
  if (an_world_agree(st) != AN_OK) {
    an_runtime_destroy(*rt1);
    an_runtime_destroy(*rt);
    *rt = *rt1 = NULL;
    return cli_fail("opening the devices of the ranks");
  }
  for (const an_runtime *r = *rt; r; r = r == *rt ? *rt1 : NULL)
    printf("rank %d: device %d:%d %s (%s)\n", w.rank, r->info.platform_index, r->info.device_index, r->info.name,
           r->info.platform_name);
  fflush(stdout);
  return 0;
}

static void usage_stdout(void) { usage(stdout); }

/* A command, as one rank of an MPI job when a launcher (mpirun) started this process: train and bench
 * run across the ranks; the others run in one process. */
static int run_command(size_t i, int argc, char **argv) {
  an_world world;
  if (an_world_init(&argc, &argv, &world) != AN_OK) return cli_fail("mpirun");
  int rc;
  if (world.size > 1 && strcmp(commands[i].name, "train") && strcmp(commands[i].name, "bench")) {
    if (world.rank == 0)
      fprintf(stderr, "alexnet %s: runs in one process (under mpirun only train and bench run across ranks)\n",
              commands[i].name);
    rc = 2;
  } else {
    rc = commands[i].run(argc - 1, argv + 1);
  }
  return an_world_end(rc);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    usage(stderr);
    return 2;
  }
  if (!strcmp(argv[1], "help")) {
    usage(stdout);
    return 0;
  }
  if (argv[1][0] == '-') { /* main's only option is --help; anything else is named and refused */
    static const cli_command top = {.name = NULL, .help = usage_stdout};
    int n_positionals;
    const int status = cli_parse(&top, 2, argv, &n_positionals);
    return status == CLI_CONTINUE ? cli_usage_error(NULL, "no command (see alexnet --help)") : status;
  }
  for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
    if (!strcmp(argv[1], commands[i].name)) return run_command(i, argc, argv);
  fprintf(stderr, "alexnet: unknown command '%s' (", argv[1]);
  for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
    fprintf(stderr, "%s%s", i ? ", " : "", commands[i].name);
  fprintf(stderr, "; see alexnet --help)\n");
  return 2;
}
