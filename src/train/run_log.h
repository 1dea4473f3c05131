/* A run's log.jsonl as the loop reads and writes it besides its step lines: the recipe ("run") line
 * written first and checked when resuming, and what a resumed run recovers from the log (the best
 * top-1, the plateau schedule's state). */
#ifndef ALEXNET_TRAIN_RUN_LOG_H
#define ALEXNET_TRAIN_RUN_LOG_H

#include <stdio.h>

#include "alexnet/train.h"

/* The run's training preprocessing: cfg->aug, or the default at its input size. */
an_augment train_run_augment(const an_train_config *cfg);

/* {"type":"run", recipe…, "seed":"…", "devices":…, "loader_img_s":…}; the device count is not part of the
 * recipe: a run may resume on one device or two. */
an_status train_log_write_recipe(FILE *log, const an_train_config *cfg, int devices, double loader_img_s);

/* A resumed run must be the logged one: the first differing option is an error naming both values. */
an_status train_log_check_recipe(const char *log_path, const an_train_config *cfg);

/* The best validation top-1 logged so far (a resumed run keeps its best checkpoint); -1 when none. */
double train_log_best_top1(const char *log_path);

/* The plateau state at checkpoint step `upto`, replayed from the validations logged up to it. */
an_plateau train_log_plateau(const char *log_path, int patience, int64_t upto);

#endif
