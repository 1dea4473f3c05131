/* alexnet pack: turns a dataset (usually a folder-per-class tree of JPEGs) into a pack shard of resized
 * uint8 images, so training reads raw bytes instead of decoding every image every epoch. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "alexnet/data.h"
#include "alexnet/runtime.h"
#include "cli.h"

static void help(void) {
  printf("usage: alexnet pack [options] SOURCE OUT.pack\n\n"
         "Decodes every image of SOURCE, scales its short side to --size, keeps the centre square and\n"
         "writes the uint8 RGB pixels, labels and class names to OUT.pack (through OUT.pack.tmp and a\n"
         "rename). Training and evaluation read a pack wherever they read a folder. Unreadable images\n"
         "are skipped with a warning naming the file and counted.\n\n"
         "SOURCE is a folder-per-class tree (SOURCE/<class>/<image>.jpg; class names and their order\n"
         "come from the sorted folder names), another pack, fashion-mnist or fashion-mnist:test.\n\n"
         "  --size S          side of the stored square images          (default 256)\n"
         "  --threads N       decoding threads                          (default: the CPU count)\n"
         "  --val-fraction F  hold out F of every class (0 < F < 1) into --val-out\n"
         "  --val-out PATH    the held-out pack (needs --val-fraction)\n"
         "  --seed S          seed of the held-out selection             (default 1)\n\n"
         "The training side's augmentation crops --input-size squares out of these (random in\n"
         "training, centre or ten crops in evaluation), so --size is normally the train --resize.\n");
}

static int pack_one(const an_dataset *ds, const char *path, int side, int threads) {
  const double t0 = an_seconds();
  an_pack_report report;
  if (an_pack_write(ds, path, side, threads, NULL, NULL, &report) != AN_OK) return cli_fail("pack");
  struct stat st;
  const double mib = stat(path, &st) == 0 ? st.st_size / 1048576.0 : 0.0;
  const double dt = an_seconds() - t0;
  printf("%s: %d images, %d classes, %dx%d RGB, %.1f MiB; %d skipped; %.1f s (%.0f images/s)\n", path,
         report.written, an_dataset_classes(ds), side, side, mib, report.skipped, dt,
         (report.written + report.skipped) / (dt > 0 ? dt : 1e-9));
  return 0;
}

int cmd_pack(int argc, char **argv) {
  const long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  int side = 256, threads = cpus > 0 ? (int)cpus : 1;
  double val_fraction = 0;
  const char *val_out = NULL;
  unsigned long long seed = 1;
  const cli_option options[] = {
      CLI_OPT_INT("size", 0, &side, 1, 4096),                       /* a pack's largest side */
      CLI_OPT_INT("threads", 0, &threads, 1, 4096),                 /* the library uses at most 256 */
      CLI_OPT_DOUBLE("val-fraction", 0, &val_fraction, 0, 1, 0, 1), /* 0: none */
      CLI_OPT_STRING("val-out", 0, &val_out),
      CLI_OPT_UINT64("seed", 0, &seed),
  };
  const cli_command cmd = {"pack", options, sizeof options / sizeof options[0], help, 2};
  int n_positionals;
  const int status = cli_parse(&cmd, argc, argv, &n_positionals);
  if (status != CLI_CONTINUE) return status;
  if (n_positionals != 2) return cli_usage_error("pack", "need SOURCE and OUT.pack (alexnet pack --help)");
  if ((!val_out) != (val_fraction == 0)) return cli_usage_error("pack", "--val-fraction and --val-out go together");
  const char *source = argv[1], *out = argv[2];
  an_dataset *ds = NULL, *train = NULL, *val = NULL;
  if (an_dataset_open(source, &ds) != AN_OK) return cli_fail("pack");
  printf("%s: %d images in %d classes\n", an_dataset_source(ds), an_dataset_count(ds), an_dataset_classes(ds));
  int rc = 0;
  if (val_out) {
    if (an_dataset_split(ds, val_fraction, seed, &train, &val) != AN_OK) {
      rc = cli_fail("pack");
    } else {
      rc = pack_one(train, out, side, threads);
      if (rc == 0) rc = pack_one(val, val_out, side, threads);
    }
  } else {
    rc = pack_one(ds, out, side, threads);
  }
  an_dataset_destroy(val);
  an_dataset_destroy(train);
  an_dataset_destroy(ds);
  return rc;
}
