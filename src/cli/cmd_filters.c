/* alexnet filters: conv1's kernels as a PNG grid, each kernel contrast-normalised and enlarged; for
 * alexnet the two columns' 48 kernels side by side, as Figure 3 of the paper. Needs no device. */
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
  const char *weights = NULL, *out = NULL, *model = NULL;
  int scale = 4, pad = 2;
  const cli_option options[] = {
      CLI_OPT_STRING("weights", 'w', &weights), CLI_OPT_STRING("out", 'o', &out),
      CLI_OPT_INT("scale", 0, &scale, 1, 64), /* what an_filters_render draws */
      CLI_OPT_INT("pad", 0, &pad, 0, 64),       CLI_OPT_STRING("model", 'm', &model),
  };
  const cli_command cmd = {"filters", options, sizeof options / sizeof options[0], help, 0};
  int n_positionals;
  const int status = cli_parse(&cmd, argc, argv, &n_positionals);
  if (status != CLI_CONTINUE) return status;
  if (!weights || !out) return cli_usage_error("filters", "--weights and -o are required (see --help)");
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
