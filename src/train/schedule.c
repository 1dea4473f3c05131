/* Learning-rate schedules: their names (one table for the log's recipe and the command line), the rate
 * at a step, and the plateau schedule's state. */
#include <math.h>
#include <string.h>

#include "alexnet/train.h"

/* Indexed by an_lr_schedule, NULL-terminated (the command line's choice list reads it as it is). */
const char *const an_lr_schedule_names[] = {
    [AN_LR_NONE] = "none", [AN_LR_STEP] = "step", [AN_LR_COSINE] = "cosine", [AN_LR_PLATEAU] = "plateau", NULL};
enum { N_SCHEDULES = sizeof an_lr_schedule_names / sizeof an_lr_schedule_names[0] - 1 };

const char *an_lr_schedule_name(an_lr_schedule schedule) {
  return (int)schedule >= 0 && (int)schedule < (int)N_SCHEDULES ? an_lr_schedule_names[schedule] : "none";
}

int an_lr_schedule_parse(const char *name, an_lr_schedule *out) {
  for (int i = 0; name && i < N_SCHEDULES; i++)
    if (!strcmp(an_lr_schedule_names[i], name)) {
      *out = (an_lr_schedule)i;
      return 1;
    }
  return 0;
}

double an_lr_at(an_lr_schedule schedule, double base_lr, int64_t step, int64_t total) {
  const double t = total > 0 ? (double)step / (double)total : 0.0;
  switch (schedule) {
    case AN_LR_STEP: return base_lr * (t >= 2.0 / 3 ? 0.01 : t >= 1.0 / 3 ? 0.1 : 1.0);
    case AN_LR_COSINE: return base_lr * 0.5 * (1.0 + cos(M_PI * (t > 1 ? 1 : t)));
    default: return base_lr; /* none, and plateau before its factor */
  }
}

an_plateau an_plateau_start(int patience) {
  an_plateau p = {.patience = patience > 0 ? patience : 3, .best = -1, .bad = 0, .factor = 1.0};
  return p;
}

int an_plateau_step(an_plateau *p, double top1) {
  if (top1 < 0) return 0; /* no validation set: nothing to judge by */
  if (top1 > p->best) {
    p->best = top1;
    p->bad = 0;
    return 0;
  }
  if (++p->bad < p->patience) return 0;
  p->bad = 0;
  p->factor *= 0.1;
  return 1;
}
