/* Small pieces src/data shares: the dataset shuffle and per-sample keys (drawn from runtime/rng.h's
 * splitmix64, so results do not depend on the C library), a parallel-for over pthreads, warning lines. */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "data/data_internal.h"

void an_data_shuffle(int *v, int n, an_rng *r) {
  for (int i = n - 1; i > 0; i--) {
    int j = an_rng_below(r, i + 1);
    int t = v[i];
    v[i] = v[j];
    v[j] = t;
  }
}

uint64_t an_sample_key(uint64_t seed, uint64_t epoch, uint64_t index) {
  return an_mix64(an_mix64(an_mix64(seed ^ 0x5851F42D4C957F2Dull) ^ epoch) + index * AN_RNG_GOLDEN);
}

/* ---- parallel-for ---- */

typedef struct pfor {
  pthread_mutex_t mu;
  int next, n_tasks;
  void (*fn)(void *, int, int);
  void *ctx;
} pfor;

typedef struct pfor_arg {
  pfor *p;
  int worker;
} pfor_arg;

static void *pfor_run(void *arg) {
  pfor_arg *a = arg;
  pfor *p = a->p;
  for (;;) {
    pthread_mutex_lock(&p->mu);
    int task = p->next < p->n_tasks ? p->next++ : -1;
    pthread_mutex_unlock(&p->mu);
    if (task < 0) break;
    p->fn(p->ctx, task, a->worker);
  }
  return NULL;
}

an_status an_data_parallel_for(int n_tasks, int threads, void (*fn)(void *, int, int), void *ctx) {
  if (n_tasks <= 0) return AN_OK;
  if (threads < 1) threads = 1;
  if (threads > n_tasks) threads = n_tasks;
  pfor p = {.next = 0, .n_tasks = n_tasks, .fn = fn, .ctx = ctx};
  if (pthread_mutex_init(&p.mu, NULL) != 0) return AN_FAIL(AN_ERR_HOST_ALLOC, "cannot create a mutex");
  pthread_t *tids = malloc(sizeof *tids * (size_t)threads);
  pfor_arg *args = malloc(sizeof *args * (size_t)threads);
  if (!tids || !args) {
    free(tids);
    free(args);
    pthread_mutex_destroy(&p.mu);
    return AN_FAIL(AN_ERR_HOST_ALLOC, "out of host memory for %d threads", threads);
  }
  int started = 0;
  for (int t = 1; t < threads; t++) { /* worker 0 is the caller */
    args[t] = (pfor_arg){&p, t};
    if (pthread_create(&tids[t], NULL, pfor_run, &args[t]) != 0) break;
    started = t;
  }
  args[0] = (pfor_arg){&p, 0};
  pfor_run(&args[0]); /* fewer threads than asked still finish every task */
  for (int t = 1; t <= started; t++) pthread_join(tids[t], NULL);
  free(tids);
  free(args);
  pthread_mutex_destroy(&p.mu);
  return AN_OK;
}

/* ---- warnings ---- */

void an_data_warn(an_warn_fn warn, void *ctx, const char *fmt, ...) {
  char line[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  if (warn) warn(ctx, line);
  else fprintf(stderr, "alexnet: warning: %s\n", line);
}
