/* An application of the installed library (alexnet/alexnet.h): the top-5 classes of images.
 *   classify WEIGHTS IMAGE...
 * The library decodes the image files (an_classifier_files: all in one call, any number); binary PPMs
 * (P6) are read here instead and classified from their RGB8 pixels in memory (an_classifier_rgb8), as
 * an application holding decoded frames would. */
#include <alexnet/alexnet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A binary PPM (P6, maxval 255) into malloc'd RGB8 pixels; NULL when it is not one. */
static unsigned char *read_ppm(const char *path, an_rgb8 *img) {
  FILE *f = fopen(path, "rb");
  int maxval = 0;
  unsigned char *px = NULL;
  if (f && fscanf(f, "P6 %d %d %d", &img->width, &img->height, &maxval) == 3 && maxval == 255 && fgetc(f) != EOF &&
      img->width > 0 && img->height > 0 && (px = malloc((size_t)img->width * img->height * 3))) {
    if (fread(px, 3, (size_t)img->width * img->height, f) != (size_t)img->width * img->height) free(px), px = NULL;
  }
  if (f) fclose(f);
  return (unsigned char *)(img->pixels = px);
}

/* Prints one image's top classes as soon as its batch is done; ctx: the names of the pixel buffers. */
static void print(void *ctx, int index, const char *file, const an_prediction *p) {
  printf("%s\n", file ? file : ((const char **)ctx)[index]);
  if (!p->ok) printf("  error: %s\n", p->error);
  for (int t = 0; t < p->top_k; t++)
    printf("  %d %s %.6f\n", p->class_index[t], p->name[t] ? p->name[t] : "-", p->prob[t]);
}

int main(int argc, char **argv) {
  if (argc < 3) return fprintf(stderr, "usage: %s WEIGHTS IMAGE...\n", argv[0]), 2;
  an_classifier *c;
  if (an_classifier_open(argv[1], NULL, &c) != AN_OK) return fprintf(stderr, "%s\n", an_last_error()), 1;
  const char **files = calloc((size_t)argc, sizeof *files), **ppm_names = calloc((size_t)argc, sizeof *ppm_names);
  an_rgb8 *pixels = calloc((size_t)argc, sizeof *pixels);
  int n_files = 0, n_ppm = 0;
  for (int i = 2; files && ppm_names && pixels && i < argc; i++) {
    const char *dot = strrchr(argv[i], '.');
    if (!dot || strcmp(dot, ".ppm")) files[n_files++] = argv[i];
    else if (read_ppm(argv[i], &pixels[n_ppm])) ppm_names[n_ppm++] = argv[i];
    else printf("%s\n  error: not a binary PPM\n", argv[i]);
  }
  an_status st = an_classifier_files(c, files, n_files, 5, NULL, print, NULL);
  if (st == AN_OK) st = an_classifier_rgb8(c, pixels, n_ppm, 5, NULL, print, ppm_names);
  if (st == AN_OK) printf("device memory: %zu bytes\n", an_classifier_device_bytes(c));
  else fprintf(stderr, "%s: %s\n", an_status_name(st), an_last_error());
  for (int i = 0; i < n_ppm; i++) free((void *)pixels[i].pixels);
  free(pixels), free(ppm_names), free(files);
  an_classifier_close(c);
  return st == AN_OK ? 0 : 1;
}
