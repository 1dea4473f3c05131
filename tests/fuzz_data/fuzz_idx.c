/* Fuzz harness: IDX image and label files (raw or gzip'd) -> an_dataset_open_idx_memory, then every
 * sample read. The input is a 4-byte little-endian length of the image part, the image bytes, then the
 * label bytes. */
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "alexnet/data.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 4) return 0;
  size_t split = (size_t)data[0] | (size_t)data[1] << 8 | (size_t)data[2] << 16 | (size_t)data[3] << 24;
  if (split > size - 4) split = size - 4;
  an_dataset *ds = NULL;
  if (an_dataset_open_idx_memory(data + 4, split, data + 4 + split, size - 4 - split, "fuzz", &ds) != AN_OK)
    return 0;
  for (int i = 0; i < an_dataset_count(ds) && i < 64; i++) {
    an_image img;
    if (an_dataset_read(ds, i, &img) == AN_OK) an_image_free(&img);
  }
  an_dataset_destroy(ds);
  return 0;
}

static size_t gzip(const uint8_t *in, size_t n, uint8_t *out, size_t cap) {
  z_stream z;
  memset(&z, 0, sizeof z);
  if (deflateInit2(&z, 9, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK) return 0;
  z.next_in = (Bytef *)in;
  z.avail_in = (uInt)n;
  z.next_out = out;
  z.avail_out = (uInt)cap;
  const int rc = deflate(&z, Z_FINISH);
  const size_t used = cap - z.avail_out;
  deflateEnd(&z);
  return rc == Z_STREAM_END ? used : 0;
}

static void put_be32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
}

void fuzz_seeds(void (*add)(const uint8_t *, size_t)) {
  uint8_t images[16 + 3 * 4 * 5], labels[8 + 3];
  put_be32(images, 0x803), put_be32(images + 4, 3), put_be32(images + 8, 4), put_be32(images + 12, 5);
  for (int i = 0; i < 60; i++) images[16 + i] = (uint8_t)(i * 4);
  put_be32(labels, 0x801), put_be32(labels + 4, 3);
  labels[8] = 0, labels[9] = 7, labels[10] = 2;
  uint8_t input[4 + 2 * 512];
  /* raw */
  input[0] = sizeof images, input[1] = input[2] = input[3] = 0;
  memcpy(input + 4, images, sizeof images);
  memcpy(input + 4 + sizeof images, labels, sizeof labels);
  add(input, 4 + sizeof images + sizeof labels);
  /* gzip'd */
  const size_t gi = gzip(images, sizeof images, input + 4, 512);
  const size_t gl = gzip(labels, sizeof labels, input + 4 + gi, 512);
  if (gi && gl) {
    input[0] = (uint8_t)gi, input[1] = (uint8_t)(gi >> 8), input[2] = input[3] = 0;
    add(input, 4 + gi + gl);
  }
}
