/* Runs the fuzz harness over files without libFuzzer (any compiler): the seed corpus as a regression
 * test under ctest, or a crash file the fuzzer saved. Usage: fuzz_replay FILE... */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *bytes, size_t size);

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: fuzz_replay FILE...\n");
    return 2;
  }
  for (int i = 1; i < argc; i++) {
    FILE *f = fopen(argv[i], "rb");
    if (!f) {
      fprintf(stderr, "fuzz_replay: cannot open %s\n", argv[i]);
      return 1;
    }
    uint8_t *buf = NULL; /* (size) the whole file */
    size_t size = 0, cap = 0, got;
    do {
      if (size == cap) {
        cap = cap ? 2 * cap : 4096;
        uint8_t *grown = realloc(buf, cap);
        if (!grown) {
          fprintf(stderr, "fuzz_replay: out of memory reading %s\n", argv[i]);
          free(buf);
          fclose(f);
          return 1;
        }
        buf = grown;
      }
      got = fread(buf + size, 1, cap - size, f);
      size += got;
    } while (got > 0);
    fclose(f);
    LLVMFuzzerTestOneInput(buf, size); /* aborts on a violation */
    free(buf);
  }
  printf("fuzz_replay: %d inputs, no violation\n", argc - 1);
  return 0;
}
