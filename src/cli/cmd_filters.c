/* alexnet filters: conv1's kernels as a PNG grid, each kernel contrast-normalised and enlarged; for
 * alexnet the two columns' 48 kernels side by side, as Figure 3 of the paper. Needs no device. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "alexnet/infer.h"
#include "cli.h"

static void help(void) {
  printf("usage: alexnet filters --weights W -o conv1.png [options]\n\n"
         "Draws the first convolution's kernels (each (3, K, K) kernel scaled on its own so that its\n"
         "smallest weight is black and its largest white, then enlarged) as a grid on grey. For alexnet\n"
         "the kernels of the two columns (0-47 and 48-95, the paper's two GPUs) are two grids side by\n"
         "side, as Figure 3 of the paper: after training one column is mostly colour-agnostic, the\n"
         "other colour-specific.\n\n"
         "  --weights W     .safetensors weights or checkpoint\n"
         "  -o, --out F     output image, .png or .bmp\n"
         "  --scale S       pixels per weight                                  (default 4)\n"
         "  --pad P         pixels between kernels                             (default 2)\n"
         "  --model M       model when the file does not name one\n");
}

int cmd_filters(int argc, char **argv) {
  enum { O_SCALE = 256, O_PAD };
  static const struct option opts[] = {{"weights", required_argument, NULL, 'w'}, {"out", required_argument, NULL, 'o'},
                                       {"scale", required_argument, NULL, O_SCALE}, {"pad", required_argument, NULL, O_PAD},
                                       {"model", required_argument, NULL, 'm'},     {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  const char *weights = NULL, *out = NULL, *model = NULL;
  int scale = 4, pad = 2, c;
  while ((c = getopt_long(argc, argv, "w:o:m:h", opts, NULL)) != -1) {
    switch (c) {
      case 'w': weights = optarg; break;
      case 'o': out = optarg; break;
      case O_SCALE: scale = atoi(optarg); break;
      case O_PAD: pad = atoi(optarg); break;
      case 'm': model = optarg; break;
      case 'h': help(); return 0;
      default: fprintf(stderr, "see: alexnet filters --help\n"); return 2;
    }
  }
  if (optind < argc || !weights || !out) {
    fprintf(stderr, "alexnet filters: --weights and -o are required (see --help)\n");
    return 2;
  }
  an_image img;
  an_filters_layout L;
  if (an_filters_render(weights, model, scale, pad, &img, &L) != AN_OK) return cli_fail("drawing the filters");
  const an_status st = an_image_write(out, &img);
  an_image_free(&img);
  if (st != AN_OK) return cli_fail("writing the image");
  printf("%s: %d kernels of %dx%d%s, %dx%d pixels\n", out, L.kernels, L.kernel, L.kernel,
         L.columns == 2 ? " in two columns" : "", L.width, L.height);
  return 0;
}
