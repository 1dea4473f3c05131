/* libFuzzer harness for the safetensors parser (an_st_parse on arbitrary bytes).
 *
 * Any input must either fail with a recorded message and no result, or parse into tensors whose every
 * byte can be read, whose names can be found, and which serialise and parse back to the same tensors.
 * A violation aborts (a crash for the fuzzer). Built with -fsanitize=fuzzer by tools/fuzz.sh or, with
 * clang, by tests/fuzz/CMakeLists.txt; replay.c runs the same function over files with any compiler. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alexnet/io.h"

#define REQUIRE(cond)                                                               \
  do {                                                                              \
    if (!(cond)) {                                                                  \
      fprintf(stderr, "fuzz_safetensors: %s failed at line %d\n", #cond, __LINE__); \
      abort();                                                                      \
    }                                                                               \
  } while (0)

/* serialise the parsed tensors and metadata, parse again, compare */
static void round_trip(const an_safetensors *st, void *const *data) {
  an_st_entry *e = calloc((size_t)st->n_tensors + 1, sizeof *e); /* (n_tensors) */
  REQUIRE(e);
  for (int i = 0; i < st->n_tensors; i++) {
    const an_st_tensor *t = &st->tensors[i];
    e[i] = (an_st_entry){t->name, t->dtype, t->ndim, {0}, data[i]};
    memcpy(e[i].shape, t->shape, sizeof e[i].shape);
  }
  uint8_t *bytes = NULL;
  size_t n = 0;
  /* names or keys that collide once cut at an embedded NUL are refused by the writer: not a bug */
  if (an_st_serialize(e, st->n_tensors, st->meta, st->n_meta, &bytes, &n) == AN_OK) {
    an_safetensors *again = NULL;
    REQUIRE(an_st_parse(bytes, n, "again", &again) == AN_OK);
    REQUIRE(again->n_tensors == st->n_tensors && again->n_meta == st->n_meta);
    for (int i = 0; i < st->n_tensors; i++) {
      const an_st_tensor *a = &st->tensors[i], *b = &again->tensors[i];
      REQUIRE(!strcmp(a->name, b->name) && a->dtype == b->dtype && a->ndim == b->ndim && a->count == b->count);
      REQUIRE(!memcmp(a->shape, b->shape, (size_t)a->ndim * sizeof a->shape[0]));
      const size_t size = (size_t)(b->end - b->begin);
      REQUIRE(size == (size_t)(a->end - a->begin));
      uint8_t *copy = malloc(size ? size : 1);
      REQUIRE(copy);
      REQUIRE(an_st_read(again, i, copy, size) == AN_OK);
      REQUIRE(!size || !memcmp(copy, data[i], size));
      free(copy);
    }
    for (int i = 0; i < st->n_meta; i++) REQUIRE(!strcmp(an_st_meta_get(again, st->meta[i].key), st->meta[i].value));
    an_st_close(again);
    free(bytes);
  }
  free(e);
}

int LLVMFuzzerTestOneInput(const uint8_t *bytes, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *bytes, size_t size) {
  an_safetensors *st = (an_safetensors *)&st; /* must be overwritten */
  an_clear_error();
  if (an_st_parse(bytes, size, "fuzz", &st) != AN_OK) {
    REQUIRE(st == NULL);
    REQUIRE(strstr(an_last_error(), "fuzz") != NULL); /* the message names the source */
    return 0;
  }
  REQUIRE(st != NULL && st->n_tensors >= 0 && st->header_bytes + 8 + st->data_bytes == size);
  void **data = calloc((size_t)st->n_tensors + 1, sizeof *data); /* (n_tensors) each tensor's bytes */
  REQUIRE(data);
  for (int i = 0; i < st->n_tensors; i++) {
    const an_st_tensor *t = &st->tensors[i];
    REQUIRE(t->begin <= t->end && t->end <= st->data_bytes);
    REQUIRE(t->end - t->begin == t->count * an_dtype_bytes(t->dtype));
    REQUIRE(an_st_find(st, t->name) >= 0);
    const size_t n = (size_t)(t->end - t->begin);
    data[i] = malloc(n ? n : 1);
    REQUIRE(data[i]);
    REQUIRE(an_st_read(st, i, data[i], n) == AN_OK);
  }
  for (int i = 0; i < st->n_meta; i++) REQUIRE(an_st_meta_get(st, st->meta[i].key) != NULL);
  round_trip(st, data);
  for (int i = 0; i < st->n_tensors; i++) free(data[i]);
  free(data);
  an_st_close(st);
  return 0;
}
