/* An application of the installed library (alexnet/alexnet.h): the top-5 classes of images.
 *   classify WEIGHTS IMAGE...
 * The library decodes the image files (an_classifier_files, all in one call: any number); a binary PPM
 * (P6) is read here instead and classified from its RGB8 pixels in memory (an_classifier_rgb8), as an
 * application holding decoded frames would. */
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

/* Each prediction to its argument's place (two calls below, one for files, one for pixels). */
typedef struct sink {
  an_prediction *by_arg;
  const int *arg_of; /* (n) the argument each item of the call came from */
} sink;

static void store(void *ctx, int index, const char *file, const an_prediction *p) {
  const sink *s = ctx;
  s->by_arg[s->arg_of[index]] = *p;
  (void)file;
}

int main(int argc, char **argv) {
  if (argc < 3) return fprintf(stderr, "usage: %s WEIGHTS IMAGE...\n", argv[0]), 2;
  an_classifier *c;
  if (an_classifier_open(argv[1], NULL, &c) != AN_OK) return fprintf(stderr, "%s\n", an_last_error()), 1;
  const int n = argc - 2;
  an_prediction *p = calloc((size_t)n, sizeof *p);
  const char **files = calloc((size_t)n, sizeof *files);
  an_rgb8 *pixels = calloc((size_t)n, sizeof *pixels);
  int *file_arg = calloc((size_t)n, sizeof(int)), *pixel_arg = calloc((size_t)n, sizeof(int)), n_files = 0,
      n_pix = 0;
  an_status st = p && files && pixels && file_arg && pixel_arg ? AN_OK : AN_ERR_HOST_ALLOC;
  for (int i = 0; i < n && st == AN_OK; i++) {
    const char *dot = strrchr(argv[2 + i], '.');
    if (!dot || strcmp(dot, ".ppm")) file_arg[n_files] = i, files[n_files++] = argv[2 + i];
    else if (read_ppm(argv[2 + i], &pixels[n_pix])) pixel_arg[n_pix++] = i;
    else snprintf(p[i].error, sizeof p[i].error, "%s: not a binary PPM", argv[2 + i]);
  }
  sink to_files = {p, file_arg}, to_pixels = {p, pixel_arg};
  if (st == AN_OK) st = an_classifier_files(c, files, n_files, 5, NULL, store, &to_files);
  if (st == AN_OK) st = an_classifier_rgb8(c, pixels, n_pix, 5, NULL, store, &to_pixels);
  for (int i = 0; i < n && st == AN_OK; i++) {
    printf("%s\n", argv[2 + i]);
    if (!p[i].ok) printf("  error: %s\n", p[i].error);
    for (int t = 0; t < p[i].top_k; t++)
      printf("  %d %s %.6f\n", p[i].class_index[t], p[i].name[t] ? p[i].name[t] : "-", p[i].prob[t]);
  }
  if (st == AN_OK) printf("device memory: %zu bytes\n", an_classifier_device_bytes(c));
  else fprintf(stderr, "%s: %s\n", an_status_name(st), an_last_error());
  for (int i = 0; i < n_pix; i++) free((void *)pixels[i].pixels);
  free(file_arg), free(pixel_arg), free(pixels), free(files), free(p);
  an_classifier_close(c);
  return st == AN_OK ? 0 : 1;
}
