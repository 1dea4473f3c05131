/* Runs the fuzz harness over files without libFuzzer (any compiler): the seed corpus as a regression
 * test under ctest, or a crash file the fuzzer saved. Usage: fuzz_replay FILE|DIR... (a directory:
 * every file in it). */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *bytes, size_t size);

/* The whole file through the harness (which aborts on a violation); 1 when it cannot be read. */
static int replay_file(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    fprintf(stderr, "fuzz_replay: cannot open %s\n", path);
    return 1;
  }
  uint8_t *buf = NULL; /* (size) the whole file */
  size_t size = 0, cap = 0, got;
  do {
    if (size == cap) {
      cap = cap ? 2 * cap : 4096;
      uint8_t *grown = realloc(buf, cap);
      if (!grown) {
        fprintf(stderr, "fuzz_replay: out of memory reading %s\n", path);
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
  LLVMFuzzerTestOneInput(buf, size);
  free(buf);
  return 0;
}

/* Every regular file of dir; adds to *n how many ran. */
static int replay_dir(const char *dir, int *n) {
  DIR *d = opendir(dir);
  if (!d) {
    fprintf(stderr, "fuzz_replay: cannot open directory %s\n", dir);
    return 1;
  }
  struct dirent *e;
  int rc = 0;
  while (!rc && (e = readdir(d))) {
    char path[4096];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) continue;
    rc = replay_file(path);
    (*n)++;
  }
  closedir(d);
  return rc;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: fuzz_replay FILE|DIR...\n");
    return 2;
  }
  int n = 0;
  for (int i = 1; i < argc; i++) {
    struct stat st;
    const int is_dir = stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode);
    if (is_dir ? replay_dir(argv[i], &n) : (n++, replay_file(argv[i]))) return 1;
  }
  if (n == 0) {
    fprintf(stderr, "fuzz_replay: no input found\n");
    return 1;
  }
  printf("fuzz_replay: %d inputs, no violation\n", n);
  return 0;
}
