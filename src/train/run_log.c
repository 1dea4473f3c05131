/* log.jsonl's recipe line and what a resumed run reads back from the log: see run_log.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "runtime/check.h"
#include "train/run_log.h"

double train_log_best_top1(const char *path) {
  FILE *f = fopen(path, "r");
  double best = -1;
  char line[1024];
  if (!f) return best;
  while (fgets(line, sizeof line, f)) {
    const char *p = strstr(line, "\"val_top1\":");
    if (p && strstr(line, "\"best\":true")) {
      const double v = strtod(p + 11, NULL);
      if (v > best) best = v;
    }
  }
  fclose(f);
  return best;
}

/* ---- the run's recipe: written as log.jsonl's first line, checked when resuming ---- */

typedef struct recipe_field {
  const char *key, *option;
  char value[300];
} recipe_field;

enum { N_RECIPE = 14 };

an_augment train_run_augment(const an_train_config *cfg) {
  return cfg->aug ? *cfg->aug : an_augment_default(cfg->input);
}

static void recipe_of(const an_train_config *cfg, recipe_field f[N_RECIPE]) {
  static const char *const keys[N_RECIPE][2] = {
      {"model", "--model"},
      {"data", "--data"},
      {"val", "--val/--val-fraction"},
      {"batch", "--batch"},
      {"input_size", "--input-size"},
      {"epochs", "--epochs"},
      {"max_steps", "--max-steps"},
      {"lr", "--lr"},
      {"momentum", "--momentum"},
      {"weight_decay", "--weight-decay"},
      {"lr_schedule", "--lr-schedule"},
      {"patience", "--patience"},
      {"freeze_features", "--freeze-features"},
      {"augment", "the augmentation (--augment, --resize, --crop, --no-flip, --pca-std, --norm)"}};
  for (int i = 0; i < N_RECIPE; i++) f[i].key = keys[i][0], f[i].option = keys[i][1];
  const size_t n = sizeof f[0].value;
  snprintf(f[0].value, n, "%s", cfg->model);
  snprintf(f[1].value, n, "%s (%d images)", an_dataset_source(cfg->train), an_dataset_count(cfg->train));
  if (cfg->val) snprintf(f[2].value, n, "%s (%d images)", an_dataset_source(cfg->val), an_dataset_count(cfg->val));
  else snprintf(f[2].value, n, "none");
  snprintf(f[3].value, n, "%d", cfg->batch);
  snprintf(f[4].value, n, "%d", cfg->input);
  snprintf(f[5].value, n, "%d", cfg->epochs);
  snprintf(f[6].value, n, "%lld", (long long)cfg->max_steps);
  snprintf(f[7].value, n, "%.7g", cfg->sgd.lr); /* 7 digits: a float as it was typed */
  snprintf(f[8].value, n, "%.7g", cfg->sgd.momentum);
  snprintf(f[9].value, n, "%.7g%s", cfg->sgd.weight_decay, cfg->sgd.no_bias_decay ? " (not on biases)" : "");
  snprintf(f[10].value, n, "%s", an_lr_schedule_name(cfg->schedule));
  if (cfg->schedule == AN_LR_PLATEAU) snprintf(f[11].value, n, "%d", an_plateau_start(cfg->patience).patience);
  else snprintf(f[11].value, n, "-");
  snprintf(f[12].value, n, "%s", cfg->freeze_features ? "yes" : "no");
  const an_augment aug = train_run_augment(cfg);
  an_augment_describe(&aug, f[13].value, n);
}

an_status train_log_write_recipe(FILE *log, const an_train_config *cfg, int devices, double loader_img_s) {
  recipe_field f[N_RECIPE];
  recipe_of(cfg, f);
  cJSON *o = cJSON_CreateObject();
  char seed[32];
  snprintf(seed, sizeof seed, "%llu", (unsigned long long)cfg->seed);
  int ok = o && cJSON_AddStringToObject(o, "type", "run");
  for (int i = 0; ok && i < N_RECIPE; i++) ok = cJSON_AddStringToObject(o, f[i].key, f[i].value) != NULL;
  ok = ok && cJSON_AddStringToObject(o, "seed", seed) && cJSON_AddNumberToObject(o, "devices", devices) &&
       cJSON_AddNumberToObject(o, "loader_img_s", loader_img_s);
  if (ok && cfg->init) ok = cJSON_AddStringToObject(o, "init", cfg->init) != NULL; /* where it started from */
  if (ok && cfg->accumulate > 1) /* how it ran, like devices: not part of the recipe a resume checks */
    ok = cJSON_AddNumberToObject(o, "accumulate", cfg->accumulate) != NULL;
  char *text = ok ? cJSON_PrintUnformatted(o) : NULL;
  cJSON_Delete(o);
  if (!text) return AN_FAIL(AN_ERR_HOST_ALLOC, "out of host memory for the run's log line");
  fprintf(log, "%s\n", text);
  cJSON_free(text);
  fflush(log);
  return AN_OK;
}

an_status train_log_check_recipe(const char *log_path, const an_train_config *cfg) {
  FILE *lf = fopen(log_path, "r");
  if (!lf)
    return AN_FAIL(AN_ERR_ARGUMENT,
                   "%s: cannot open (%s), so the run to resume is unknown: --resume needs the "
                   "run's log",
                   log_path, strerror(errno));
  char line[4096];
  cJSON *run = NULL;
  while (!run && fgets(line, sizeof line, lf))
    if (strstr(line, "\"type\":\"run\"")) run = cJSON_Parse(line);
  fclose(lf);
  if (!run)
    return AN_FAIL(AN_ERR_ARGUMENT,
                   "%s: no \"run\" line, so the recipe of the run to resume is unknown "
                   "(--resume needs a log written by this version)",
                   log_path);
  recipe_field f[N_RECIPE];
  recipe_of(cfg, f);
  an_status st = AN_OK;
  for (int i = 0; i < N_RECIPE && st == AN_OK; i++) {
    const char *logged = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(run, f[i].key));
    char fixed[300];
    if (!logged && i == N_RECIPE - 1) { /* logs from before the augmentation was an option: the default */
      const an_augment d = an_augment_default(cfg->input);
      an_augment_describe(&d, fixed, sizeof fixed);
      logged = fixed;
    }
    if (!logged && !strcmp(f[i].key, "freeze_features")) logged = "no"; /* logs from before the option */
    if (!logged || strcmp(logged, f[i].value))
      st = AN_FAIL(AN_ERR_ARGUMENT,
                   "--resume: %s is %s here, the run being resumed (%s) has %s; give the run's "
                   "options, or another --out for a new run",
                   f[i].option, f[i].value, log_path, logged ? logged : "(not logged)");
  }
  cJSON_Delete(run);
  return st;
}

/* The plateau state at checkpoint step `upto`, replayed from the validations logged up to it. Lines a
 * killed attempt logged past its last checkpoint are followed by the resumed attempt's: a validation at
 * a step not after the previous one discards the previous ones from that step on. */
an_plateau train_log_plateau(const char *path, int patience, int64_t upto) {
  enum { MAX_VALS = 4096 };
  static double top1s[MAX_VALS];
  static int64_t steps[MAX_VALS];
  int n = 0;
  FILE *f = fopen(path, "r");
  char line[1024];
  while (f && fgets(line, sizeof line, f)) {
    const char *v = strstr(line, "\"val_top1\":"), *s = strstr(line, "\"step\":");
    if (!v || !s) continue;
    const int64_t step = strtoll(s + 7, NULL, 10);
    if (step > upto) continue;
    while (n > 0 && steps[n - 1] >= step) n--;
    if (n == MAX_VALS) continue;
    steps[n] = step;
    top1s[n++] = strtod(v + 11, NULL);
  }
  if (f) fclose(f);
  an_plateau p = an_plateau_start(patience);
  for (int i = 0; i < n; i++) an_plateau_step(&p, top1s[i]);
  return p;
}
