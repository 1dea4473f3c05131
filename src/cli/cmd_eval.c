/* alexnet eval: top-1/top-5 of a checkpoint or weights file on a dataset, centre crop or ten-crop, with a
 * confusion matrix for up to 20 classes. Model and classes come from the file's tensor shapes (a
 * PyTorch file has no metadata), input size, base image size (resize) and normalisation from its
 * metadata. On one device, or split over two (--device A,B). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alexnet/data.h"
#include "alexnet/io.h"
#include "alexnet/train.h"
#include "cli.h"

static void help(void) {
  printf("usage: alexnet eval --weights W [options]\n\n"
         "Evaluates a checkpoint (alexnet train's last/best.safetensors) or a weights file on a dataset:\n"
         "top-1 and top-5 accuracy, and the confusion matrix when there are at most 20 classes.\n\n"
         "  --weights W      .safetensors file: this project's, or a PyTorch state_dict as\n"
         "                   safetensors.torch.save_file writes it (model and classes from the tensor\n"
         "                   shapes; input size and the preprocessing: resize, normalisation,\n"
         "                   mean/std, from its metadata when it has them)\n"
         "  --data D         fashion-mnist:test | fashion-mnist | a class-per-folder dir | a pack shard\n"
         "                   (default fashion-mnist:test)\n"
         "  --ten-crop       average the softmax over 4 corners + centre and their mirrors\n"
         "  --model M        the model the file must hold (default: the one its tensor shapes fit)\n"
         "  --input-size S   input side when the file does not say             (default 224)\n"
         "  --batch B        samples per forward pass                          (default 32)\n"
         "  --threads T      loader worker threads                             (default 2)\n"
         "  --device D       P:D index or name substring (default: ALEXNET_DEVICE, else first GPU);\n"
         "                   two separated by a comma (0:0,0:1) split the model across them as train\n"
         "                   does (any checkpoint: one device's and two devices' files are the same)\n");
}

int cmd_eval(int argc, char **argv) {
  const char *weights = NULL, *data = "fashion-mnist:test", *model = NULL, *device = NULL;
  int ten_crop = 0, size = 0, batch = 32, threads = 2;
  const cli_option options[] = {
      CLI_OPT_STRING("weights", 'w', &weights),
      CLI_OPT_STRING("data", 'D', &data),
      CLI_OPT_FLAG("ten-crop", 0, &ten_crop),
      CLI_OPT_STRING("model", 'm', &model),
      CLI_OPT_INT("input-size", 's', &size, 0, 4096), /* 0: the file's */
      CLI_OPT_INT("batch", 'b', &batch, 1, 65536),
      CLI_OPT_INT("threads", 0, &threads, 1, 256), /* the loader's most */
      CLI_OPT_STRING("device", 'd', &device),
  };
  const cli_command cmd = {"eval", options, sizeof options / sizeof options[0], help, 0};
  int n_positionals;
  const int status = cli_parse(&cmd, argc, argv, &n_positionals);
  if (status != CLI_CONTINUE) return status;
  if (!weights) return cli_usage_error("eval", "--weights is required (see alexnet eval --help)");
  /* the metadata decide the net before it exists */
  an_safetensors *st = NULL;
  if (an_st_open(weights, &st) != AN_OK) return cli_fail("reading the weights");
  const an_model_desc *md; /* from the shapes (a PyTorch file has no metadata); --model is a check */
  int classes;
  if (an_model_identify(st, model, &md, &classes) != AN_OK) {
    an_st_close(st);
    return cli_fail("reading the weights");
  }
  model = md->name;
  const char *v;
  const int file_size = (v = an_st_meta_get(st, "input_size")) ? atoi(v) : 0;
  if (!size) size = file_size ? file_size : 224;
  an_data_stats stats = an_data_stats_imagenet();
  const int have_norm = an_parse_rgb(an_st_meta_get(st, "mean"), stats.mean) &&
                        an_parse_rgb(an_st_meta_get(st, "std"), stats.std);
  an_augment aug; /* the base image and normalisation the model was trained with */
  const an_status aug_st = an_augment_from_meta(size, file_size, an_st_meta_get(st, "resize"),
                                                an_st_meta_get(st, "normalization"), &aug);
  an_st_close(st);
  if (aug_st != AN_OK) return cli_fail("reading the weights' preprocessing");

  int rc = 1;
  an_dataset *ds = NULL;
  an_runtime *rt = NULL, *rt1 = NULL;
  an_net *net = NULL;     /* one device */
  an_split *split = NULL; /* or two */
  int64_t *confusion = NULL;
  if (an_dataset_open(data, &ds) != AN_OK) return cli_fail("opening the dataset");
  if (an_dataset_classes(ds) > classes) {
    fprintf(stderr, "alexnet eval: %s has %d classes, %s was trained for %d\n", an_dataset_source(ds),
            an_dataset_classes(ds), weights, classes);
    goto done;
  }
  aug.ten_crop = ten_crop;
  const int crops = an_augment_crops(&aug, 0);
  if ((rc = cli_open_devices(device, 0, &rt, &rt1)) != 0) goto done;
  rc = 1;
  if ((rt1 ? an_split_create(rt, rt1, model, classes, batch * crops, size, &split)
           : an_net_create(rt, model, classes, batch * crops, size, &net)) != AN_OK) {
    rc = cli_fail(model);
    goto done;
  }
  if ((split ? an_split_load(split, weights, NULL) : an_net_load(net, weights, NULL)) != AN_OK) {
    rc = cli_fail("loading the weights");
    goto done;
  }
  confusion = calloc((size_t)classes * classes, sizeof *confusion);
  if (!confusion) {
    fprintf(stderr, "alexnet eval: out of host memory\n");
    goto done;
  }
  printf("%s (%s, %d classes, input %d from %d, %s%s) on %s: %d images, %s\n", weights, model, classes, size,
         aug.resize, an_norm_name(aug.norm), have_norm ? "" : ", ImageNet normalisation: the file has none",
         an_dataset_source(ds), an_dataset_count(ds), ten_crop ? "ten-crop" : "centre crop");
  fflush(stdout);
  an_eval_result e;
  const double t0 = an_seconds();
  if ((split ? an_evaluate_split(split, ds, &aug, &stats, threads, &e, confusion)
             : an_evaluate(net, ds, &aug, &stats, threads, &e, confusion)) != AN_OK) {
    rc = cli_fail("evaluating");
    goto done;
  }
  const double dt = an_seconds() - t0;
  if (e.samples == 0) {
    fprintf(stderr, "alexnet eval: no readable image in %s\n", data);
    goto done;
  }
  printf("top-1 %.2f%%  top-5 %.2f%%  (%lld images, %.1f s, %.1f img/s)\n", 100.0 * e.top1 / e.samples,
         100.0 * e.top5 / e.samples, (long long)e.samples, dt, e.samples / dt);
  const int n = an_dataset_classes(ds);
  if (n <= 20) {
    printf("\nconfusion matrix (rows: true class, columns: predicted)\n%14s", "");
    for (int j = 0; j < n; j++) printf(" %6d", j);
    printf("  recall\n");
    for (int i = 0; i < n; i++) {
      int64_t row = 0;
      for (int j = 0; j < classes; j++) row += confusion[(size_t)i * classes + j];
      printf("%2d %-11.11s", i, an_dataset_class_name(ds, i));
      for (int j = 0; j < n; j++) printf(" %6lld", (long long)confusion[(size_t)i * classes + j]);
      printf("  %5.1f%%\n", row ? 100.0 * confusion[(size_t)i * classes + i] / row : 0.0);
    }
  }
  rc = 0;
done:
  free(confusion);
  an_split_destroy(split);
  an_net_destroy(net);
  an_runtime_destroy(rt1);
  an_runtime_destroy(rt);
  an_dataset_destroy(ds);
  return rc;
}
