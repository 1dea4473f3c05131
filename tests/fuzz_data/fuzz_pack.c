/* Fuzz harness: pack shard bytes -> a temporary file -> an_dataset_open_pack, then every sample read.
 * Pack reading is pread on a file, so the input goes through one (in /tmp, removed at exit). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alexnet/data.h"
#include "fuzz.h"

static char path[64];

static void remove_path(void) {
  if (path[0]) remove(path);
}

static const char *temp_path(void) {
  if (!path[0]) {
    snprintf(path, sizeof path, "/tmp/alexnet_fuzz_pack_XXXXXX");
    const int fd = mkstemp(path);
    if (fd < 0) abort();
    close(fd);
    atexit(remove_path);
  }
  return path;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  FILE *f = fopen(temp_path(), "wb");
  if (!f) abort();
  if (size && fwrite(data, 1, size, f) != size) abort();
  fclose(f);
  an_dataset *ds = NULL;
  if (an_dataset_open_pack(path, &ds) != AN_OK) return 0;
  for (int i = 0; i < an_dataset_count(ds) && i < 64; i++) {
    an_image img;
    if (an_dataset_read(ds, i, &img) == AN_OK) an_image_free(&img);
  }
  an_dataset_destroy(ds);
  return 0;
}

void fuzz_seeds(void (*add)(const uint8_t *, size_t)) {
  an_synthetic_config cfg = {6, 3, 4, 0.1f, 1};
  an_dataset *ds = NULL;
  if (an_dataset_synthetic(&cfg, &ds) != AN_OK) abort();
  const char *p = temp_path();
  for (int side = 2; side <= 4; side += 2) {
    if (an_pack_write(ds, p, side, 1, NULL, NULL, NULL) != AN_OK) abort();
    FILE *f = fopen(p, "rb");
    uint8_t buf[4096];
    const size_t n = f ? fread(buf, 1, sizeof buf, f) : 0;
    if (f) fclose(f);
    add(buf, n);
  }
  an_dataset_destroy(ds);
}
