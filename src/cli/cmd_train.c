/* alexnet train: trains a model on a dataset with the threaded loader, validating each epoch, keeping the
 * last and the best checkpoint and a JSON-lines log in --out; --resume continues the exact run. On one
 * device, or split over two (--device A,B). */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alexnet/data.h"
#include "alexnet/io.h"
#include "alexnet/train.h"
#include "cli.h"

static void help(void) {
  printf("usage: alexnet train [options]\n\n"
         "Trains a model with SGD on a dataset; worker threads decode and augment the next batches while\n"
         "the device computes. The normalisation (mean/std) is computed on the training set and saved in\n"
         "the checkpoints. Validation top-1/top-5 after every epoch. In --out: last.safetensors (every\n"
         "--checkpoint-every steps, each epoch's end and the end), best.safetensors (best validation\n"
         "top-1), log.jsonl (the run's recipe, every step and epoch), classes.txt. Plot the log with\n"
         "tools/plot.py. Before training, the loader alone is timed for ~1.5 s (images/s with the device\n"
         "idle): when the training steps run at about that speed, the loader, not the device, is the limit.\n\n"
         "  --model M           alexnet | alexnet-half | alexnet-tv          (default alexnet-half)\n"
         "  --data D            fashion-mnist | a class-per-folder dir | a pack shard (default fashion-mnist)\n"
         "  --val D             validation set (fashion-mnist:test, a dir, a shard)\n"
         "  --val-fraction F    hold out F of the training set instead (default 0.1 without --val; 0: none)\n"
         "  --epochs E          epochs                                          (default 10)\n"
         "  --max-steps N       stop after N steps in all; the schedule spans them (default: epochs)\n"
         "  --batch B           images per step                                 (default 32)\n"
         "  --lr X              base learning rate                              (default 0.01)\n"
         "  --momentum X        SGD momentum                                    (default 0.9)\n"
         "  --weight-decay X    L2 weight decay                                 (default 5e-4)\n"
         "  --lr-schedule S     step (x0.1 at 1/3 and 2/3) | cosine | plateau | none (default cosine)\n"
         "                      plateau: lr x0.1 once validation top-1 has not improved (strictly) for\n"
         "                      --patience validations in a row (epoch ends, and --val-every steps)\n"
         "  --patience N        plateau's validations without improvement        (default 3)\n"
         "  --input-size S      input side in pixels (63 suits 28 px images)    (default 224)\n"
         "  --augment P         preprocessing preset; the options below change single settings:\n"
         "                        default: resize round(S·256/224), random crop, flip, PCA 0.1, mean/std\n"
         "                        paper:   the same with mean subtraction only (S 224: the paper's 256/224)\n"
         "                        none:    resize S, centre crop, no flip, no lighting, no normalisation\n"
         "  --resize N          short side to N, centre N x N: the base image crops come from (>= S)\n"
         "  --crop C            training crop: random | centre\n"
         "  --no-flip           no horizontal mirroring in training\n"
         "  --pca-std X         PCA lighting strength (std of the alphas; 0: off)\n"
         "  --norm N            mean_std | mean | none (statistics from the training set)\n"
         "                      Evaluation always takes the centre crop of the same base image; the\n"
         "                      checkpoints record resize and normalisation for eval and classify\n"
         "  --seed S            seed of weights, split, shuffling, augmentation, dropout (default 1)\n"
         "  --threads T         loader worker threads                           (default 2)\n"
         "  --checkpoint-every N  steps between last.safetensors writes         (default 200)\n"
         "  --log-every N       steps between progress lines when not a terminal (default 50)\n"
         "  --val-every N       also validate every N steps (curves of short runs) (default 0: epochs)\n"
         "  --out DIR           output directory                                (default runs/train)\n"
         "  --resume            continue the run in --out from last.safetensors; refused, naming the\n"
         "                      option, unless the options are the run's (log.jsonl's first line)\n"
         "  --device D          P:D index or name substring (default: ALEXNET_DEVICE, else first GPU);\n"
         "                      two separated by a comma (0:0,0:1) train on both: alexnet's two columns\n"
         "                      one per device, the batch halved for alexnet-half and alexnet-tv. Same\n"
         "                      checkpoints: a run may resume, and be evaluated, on one device or two\n"
         "  --separate-contexts two devices: one context each even on one platform (host-memory exchange)\n");
}

typedef struct progress {
  int tty, log_every, threads, patience;
  double t_last;
} progress;

static void fmt_time(double s, char *buf, size_t n) {
  if (!isfinite(s) || s < 0) s = 0;
  const long t = (long)(s + 0.5);
  if (t >= 3600) snprintf(buf, n, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
  else snprintf(buf, n, "%ld:%02ld", t / 60, t % 60);
}

static void on_event(void *ctx, const an_train_event *ev) {
  progress *p = ctx;
  char eta[32];
  fmt_time(ev->eta_s, eta, sizeof eta);
  if (ev->kind == AN_EVENT_STEP) {
    if (p->tty) {
      const int width = 24, filled = (int)((double)(ev->step + 1) / ev->steps_per_epoch * width);
      char bar[32];
      for (int i = 0; i < width; i++) bar[i] = i < filled ? '#' : '.';
      bar[width] = 0;
      fprintf(stderr, "\repoch %d/%d [%s] %d/%d  step %lld/%lld  loss %.4f  lr %.3g  %.1f img/s  ETA %s   ",
              ev->epoch + 1, ev->epochs, bar, ev->step + 1, ev->steps_per_epoch, (long long)ev->global_step,
              (long long)ev->total_steps, ev->loss, ev->lr, ev->images_per_s, eta);
      fflush(stderr);
    } else if (ev->global_step % p->log_every == 0 || ev->global_step == ev->total_steps) {
      printf("epoch %d/%d  step %lld/%lld  loss %.4f  lr %.3g  %.1f img/s  ETA %s\n", ev->epoch + 1, ev->epochs,
             (long long)ev->global_step, (long long)ev->total_steps, ev->loss, ev->lr, ev->images_per_s, eta);
      fflush(stdout);
    }
    return;
  }
  if (ev->kind == AN_EVENT_LOADER) {
    printf("loader alone: %.0f images/s with the device idle (%d threads); the steps' img/s below is the whole "
           "step's\n", ev->images_per_s, p->threads);
    fflush(stdout);
    return;
  }
  if (p->tty) fprintf(stderr, "\n");
  if (ev->lr_reduced) printf("plateau: no improvement for %d validations, lr x0.1\n", p->patience);
  if (ev->kind == AN_EVENT_VAL) {
    printf("step %lld: val top-1 %.2f%%  top-5 %.2f%%\n", (long long)ev->global_step, 100 * ev->val_top1,
           100 * ev->val_top5);
    fflush(stdout);
    return;
  }
  if (ev->val_top1 >= 0)
    printf("epoch %d done: step %lld  mean loss %.4f  val top-1 %.2f%%  top-5 %.2f%%%s\n", ev->epoch + 1,
           (long long)ev->global_step, ev->loss, 100 * ev->val_top1, 100 * ev->val_top5,
           ev->best ? "  (best so far: saved)" : "");
  else
    printf("epoch %d done: step %lld  mean loss %.4f  (no validation set)\n", ev->epoch + 1,
           (long long)ev->global_step, ev->loss);
  fflush(stdout);
}

int cmd_train(int argc, char **argv) {
  enum { O_MOMENTUM = 256, O_WD, O_SCHED, O_VALFRAC, O_MAXSTEPS, O_RESUME, O_THREADS, O_CKPT, O_LOGEVERY, O_VALEVERY,
         O_PATIENCE, O_SEPARATE, O_AUGMENT, O_RESIZE, O_CROP, O_NOFLIP, O_PCA, O_NORM };
  static const struct option opts[] = {
      {"model", required_argument, NULL, 'm'},      {"data", required_argument, NULL, 'D'},
      {"val", required_argument, NULL, 'V'},        {"val-fraction", required_argument, NULL, O_VALFRAC},
      {"epochs", required_argument, NULL, 'e'},     {"max-steps", required_argument, NULL, O_MAXSTEPS},
      {"batch", required_argument, NULL, 'b'},      {"lr", required_argument, NULL, 'l'},
      {"momentum", required_argument, NULL, O_MOMENTUM}, {"weight-decay", required_argument, NULL, O_WD},
      {"lr-schedule", required_argument, NULL, O_SCHED}, {"input-size", required_argument, NULL, 's'},
      {"seed", required_argument, NULL, 'r'},       {"threads", required_argument, NULL, O_THREADS},
      {"checkpoint-every", required_argument, NULL, O_CKPT}, {"log-every", required_argument, NULL, O_LOGEVERY},
      {"val-every", required_argument, NULL, O_VALEVERY}, {"patience", required_argument, NULL, O_PATIENCE},
      {"out", required_argument, NULL, 'o'},        {"resume", no_argument, NULL, O_RESUME},
      {"device", required_argument, NULL, 'd'},     {"separate-contexts", no_argument, NULL, O_SEPARATE},
      {"augment", required_argument, NULL, O_AUGMENT}, {"resize", required_argument, NULL, O_RESIZE},
      {"crop", required_argument, NULL, O_CROP},    {"no-flip", no_argument, NULL, O_NOFLIP},
      {"pca-std", required_argument, NULL, O_PCA},  {"norm", required_argument, NULL, O_NORM},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0}};
  const char *model = "alexnet-half", *data = "fashion-mnist", *val = NULL, *out = "runs/train", *device = NULL;
  const char *sched = "cosine", *preset = "default", *crop = NULL, *norm = NULL;
  int resize = 0, no_flip = 0;
  double pca_std = -1;
  double val_fraction = -1;
  int epochs = 10, batch = 32, size = 224, threads = 2, ckpt_every = 200, log_every = 50, val_every = 0, resume = 0, patience = 3;
  int separate = 0;
  long long max_steps = 0;
  an_sgd_params sgd = {0.01f, 0.9f, 5e-4f, 0};
  unsigned long long seed = 1;
  int c;
  while ((c = getopt_long(argc, argv, "m:D:V:e:b:l:s:r:o:d:h", opts, NULL)) != -1) {
    switch (c) {
      case 'm': model = optarg; break;
      case 'D': data = optarg; break;
      case 'V': val = optarg; break;
      case O_VALFRAC: val_fraction = atof(optarg); break;
      case 'e': epochs = atoi(optarg); break;
      case O_MAXSTEPS: max_steps = atoll(optarg); break;
      case 'b': batch = atoi(optarg); break;
      case 'l': sgd.lr = strtof(optarg, NULL); break;
      case O_MOMENTUM: sgd.momentum = strtof(optarg, NULL); break;
      case O_WD: sgd.weight_decay = strtof(optarg, NULL); break;
      case O_SCHED: sched = optarg; break;
      case 's': size = atoi(optarg); break;
      case 'r': seed = strtoull(optarg, NULL, 10); break;
      case O_THREADS: threads = atoi(optarg); break;
      case O_CKPT: ckpt_every = atoi(optarg); break;
      case O_LOGEVERY: log_every = atoi(optarg); break;
      case O_VALEVERY: val_every = atoi(optarg); break;
      case O_PATIENCE: patience = atoi(optarg); break;
      case 'o': out = optarg; break;
      case O_RESUME: resume = 1; break;
      case 'd': device = optarg; break;
      case O_SEPARATE: separate = 1; break;
      case O_AUGMENT: preset = optarg; break;
      case O_RESIZE: {
        double v;
        if (!cli_number(optarg, 1, 1, 4097, &v)) {
          fprintf(stderr, "alexnet train: --resize '%s' is not a side in pixels (1-4096)\n", optarg);
          return 2;
        }
        resize = (int)v;
        break;
      }
      case O_CROP: crop = optarg; break;
      case O_NOFLIP: no_flip = 1; break;
      case O_PCA:
        if (!cli_number(optarg, 0, 0, 10, &pca_std)) {
          fprintf(stderr, "alexnet train: --pca-std '%s' is not a number in [0, 10)\n", optarg);
          return 2;
        }
        break;
      case O_NORM: norm = optarg; break;
      case 'h': help(); return 0;
      default: fprintf(stderr, "see: alexnet train --help\n"); return 2;
    }
  }
  an_lr_schedule schedule;
  if (!strcmp(sched, "step")) schedule = AN_LR_STEP;
  else if (!strcmp(sched, "cosine")) schedule = AN_LR_COSINE;
  else if (!strcmp(sched, "plateau")) schedule = AN_LR_PLATEAU;
  else if (!strcmp(sched, "none")) schedule = AN_LR_NONE;
  else {
    fprintf(stderr, "alexnet train: unknown --lr-schedule '%s' (step, cosine, plateau, none)\n", sched);
    return 2;
  }
  if (optind < argc || epochs < 1 || batch < 1 || size < 1 || threads < 1 || max_steps < 0 || log_every < 1 ||
      ckpt_every < 0 || val_every < 0 || patience < 1 || !(sgd.lr > 0) || val_fraction >= 1) {
    fprintf(stderr, "alexnet train: invalid arguments (epochs, batch, input-size, threads, log-every, patience "
                    "must be positive, lr > 0, val-fraction < 1)\n");
    return 2;
  }
  an_augment aug;
  if (!strcmp(preset, "default") || !strcmp(preset, "paper")) {
    aug = an_augment_default(size);
    if (!strcmp(preset, "paper")) aug.norm = AN_NORM_MEAN;
  } else if (!strcmp(preset, "none")) {
    aug = an_augment_none(size);
  } else {
    fprintf(stderr, "alexnet train: unknown --augment '%s' (default, paper, none)\n", preset);
    return 2;
  }
  if (resize) aug.resize = resize;
  if (crop && strcmp(crop, "random") && strcmp(crop, "centre") && strcmp(crop, "center")) {
    fprintf(stderr, "alexnet train: unknown --crop '%s' (random, centre)\n", crop);
    return 2;
  }
  if (crop) aug.random_crop = !strcmp(crop, "random");
  if (no_flip) aug.flip = 0;
  if (pca_std != -1) aug.pca_std = (float)pca_std;
  if (norm && an_norm_parse(norm, &aug.norm) != AN_OK) {
    fprintf(stderr, "alexnet train: unknown --norm '%s' (mean_std, mean, none)\n", norm);
    return 2;
  }
  if (aug.resize < size) {
    fprintf(stderr, "alexnet train: --resize %d is smaller than --input-size %d (the crops come from it)\n",
            aug.resize, size);
    return 2;
  }
  if (!an_model_find(model)) {
    fprintf(stderr, "alexnet train: unknown model '%s' (alexnet, alexnet-half, alexnet-tv)\n", model);
    return 2;
  }
  if (val && val_fraction > 0) {
    fprintf(stderr, "alexnet train: give --val or --val-fraction, not both\n");
    return 2;
  }
  if (!val && val_fraction < 0) val_fraction = 0.1;

  int rc = 1;
  an_dataset *all = NULL, *train = NULL, *valset = NULL;
  an_runtime *rt = NULL, *rt1 = NULL;
  if (an_dataset_open(data, &all) != AN_OK) return cli_fail("opening the training set");
  if (val) {
    if (an_dataset_open(val, &valset) != AN_OK) {
      rc = cli_fail("opening the validation set");
      goto done;
    }
    train = all;
    all = NULL;
  } else if (val_fraction > 0) {
    if (an_dataset_split(all, val_fraction, seed, &train, &valset) != AN_OK) {
      rc = cli_fail("splitting off the validation set");
      goto done;
    }
  } else {
    train = all;
    all = NULL;
  }
  if ((rc = cli_open_devices(device, separate, &rt, &rt1)) != 0) goto done;
  rc = 1;
  if (rt1)
    printf("split over the two devices: %s\n", an_model_column(an_model_find(model))
                                                   ? "alexnet's two columns, one per device"
                                                   : "the batch, half on each device");
  char aug_text[160];
  an_augment_describe(&aug, aug_text, sizeof aug_text);
  printf("%s on %s: %d training images, %s%d validation images, %d classes; batch %d, input %d (%s), %s\n", model,
         an_dataset_source(train), an_dataset_count(train), val ? "" : "held-out ",
         valset ? an_dataset_count(valset) : 0,
         an_dataset_classes(train), batch, size, aug_text, resume ? "resuming" : "from scratch");
  fflush(stdout);
  progress prog = {.tty = isatty(STDERR_FILENO), .log_every = log_every, .threads = threads, .patience = patience};
  an_train_config cfg = {.model = model, .train = train, .val = valset, .batch = batch, .input = size,
                         .epochs = epochs, .max_steps = max_steps, .sgd = sgd, .schedule = schedule, .patience = patience, .seed = seed, .aug = &aug,
                         .threads = threads, .stats_images = 10000, .checkpoint_every = ckpt_every,
                         .val_every = val_every,
                         .out_dir = out, .resume = resume, .measure_loader = 1, .callback = on_event, .callback_ctx = &prog};
  an_train_result res;
  const double t0 = an_seconds();
  const an_status st = an_train_pair(rt, rt1, &cfg, &res);
  if (prog.tty) fprintf(stderr, "\n");
  if (st != AN_OK) {
    rc = cli_fail(st == AN_ERR_NOT_FINITE ? "training diverged" : "training");
    goto done;
  }
  printf("reached step %lld (this run started at step %lld) in %.1f s; final loss %.4f\n", (long long)res.steps_done,
         (long long)res.start_step, an_seconds() - t0, res.last_loss);
  if (res.val_top1 >= 0)
    printf("validation: top-1 %.2f%%  top-5 %.2f%%  (best top-1 %.2f%%)\n", 100 * res.val_top1, 100 * res.val_top5,
           100 * res.best_top1);
  printf("checkpoints: %s/last.safetensors, %s/best.safetensors; log: %s/log.jsonl "
         "(plot: /usr/bin/python3 tools/plot.py %s/log.jsonl)\n", out, out, out, out);
  rc = 0;
done:
  an_runtime_destroy(rt1);
  an_runtime_destroy(rt);
  an_dataset_destroy(valset);
  an_dataset_destroy(train);
  an_dataset_destroy(all);
  return rc;
}
