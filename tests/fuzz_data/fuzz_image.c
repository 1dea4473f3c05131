/* Fuzz harness: image bytes -> an_image_decode (stb_image behind the project's size checks), then the
 * resize and a ten-crop preprocessing of whatever decodes, as the loader would. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alexnet/data.h"
#include "fuzz.h"
#include "../test_data_fixture.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  an_image img;
  if (an_image_decode(data, size, "fuzz", &img) != AN_OK) return 0;
  an_augment aug = an_augment_none(8);
  aug.resize = 13;
  aug.ten_crop = 1;
  float out[10 * 3 * 8 * 8]; /* (10, 3, 8, 8) */
  an_preprocess(&img, &aug, NULL, 0, 0, out);
  an_image_free(&img);
  return 0;
}

static void add_file_as_seed(const char *path, void (*add)(const uint8_t *, size_t)) {
  FILE *f = fopen(path, "rb");
  if (!f) return;
  uint8_t buf[1 << 16];
  size_t n = fread(buf, 1, sizeof buf, f);
  fclose(f);
  add(buf, n);
}

void fuzz_seeds(void (*add)(const uint8_t *, size_t)) {
  /* a colour and a grey image through each writer (PNG, BMP) */
  uint8_t rgb[12 * 9 * 3], grey[12 * 9];
  for (int i = 0; i < 12 * 9; i++) {
    grey[i] = (uint8_t)(i * 7);
    for (int c = 0; c < 3; c++) rgb[i * 3 + c] = (uint8_t)(i * (c + 3));
  }
  const an_image images[2] = {{12, 9, 3, rgb}, {12, 9, 1, grey}};
  const char *exts[2] = {"png", "bmp"};
  char dir[] = "/tmp/alexnet_fuzz_seedsXXXXXX";
  if (mkdtemp(dir)) {
    for (int k = 0; k < 2; k++)
      for (int e = 0; e < 2; e++) {
        char path[256];
        snprintf(path, sizeof path, "%s/s%d.%s", dir, k, exts[e]);
        if (an_image_write(path, &images[k]) == AN_OK) add_file_as_seed(path, add);
        remove(path);
      }
    rmdir(dir);
  }
  add(test_jpeg_16, sizeof test_jpeg_16); /* the project writes no JPEG: a fixture */
  static const uint8_t gif[] = "GIF89a\x02\x00\x02\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00!\xf9\x04\x01\x00\x00"
                               "\x00\x00,\x00\x00\x00\x00\x02\x00\x02\x00\x00\x02\x02\x44\x01\x00;";
  add(gif, sizeof gif - 1);
  static const uint8_t pgm[] = "P5\n4 3\n255\n\x00\x10\x20\x30\x40\x50\x60\x70\x80\x90\xa0\xb0";
  add(pgm, sizeof pgm - 1);
  static const uint8_t ppm[] = "P6\n2 1\n255\n\xff\x00\x00\x00\xff\x00";
  add(ppm, sizeof ppm - 1);
}
