/* Small pieces src/data shares: the splitmix64 RNG every random choice derives from (so results do not
 * depend on the C library), a parallel-for over pthreads, and warning lines. */
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "data/data_internal.h"

uint64_t data_mix(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

uint64_t data_rng_next(data_rng *r) { return data_mix(r->state += 0x9E3779B97F4A7C15ull); }

double data_rng_uniform(data_rng *r) { return (double)(data_rng_next(r) >> 11) * 0x1.0p-53; }

int data_rng_below(data_rng *r, int bound) {
  int v = (int)(data_rng_uniform(r) * bound);
  return v < bound ? v : bound - 1;
}

double data_rng_normal(data_rng *r) {
  double u1 = data_rng_uniform(r), u2 = data_rng_uniform(r);
  return sqrt(-2.0 * log(1.0 - u1)) * cos(6.283185307179586 * u2); /* 1 - u1 in (0, 1] */
}

void data_shuffle(int *v, int n, data_rng *r) {
  for (int i = n - 1; i > 0; i--) { /* Fisher-Yates */
    int j = data_rng_below(r, i + 1);
    int t = v[i];
    v[i] = v[j];
    v[j] = t;
  }
}

uint64_t an_sample_key(uint64_t seed, uint64_t epoch, uint64_t index) {
  return data_mix(data_mix(data_mix(seed ^ 0x5851F42D4C957F2Dull) ^ epoch) + index * 0x9E3779B97F4A7C15ull);
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

an_status data_parallel_for(int n_tasks, int threads, void (*fn)(void *, int, int), void *ctx) {
  if (n_tasks <= 0) return AN_OK;
  if (threads < 1) threads = 1;
  if (threads > n_tasks) threads = n_tasks;
  pfor p = {.next = 0, .n_tasks = n_tasks, .fn = fn, .ctx = ctx};
  if (pthread_mutex_init(&p.mu, NULL) != 0) return DATA_ERR(AN_ERR_HOST_ALLOC, "cannot create a mutex");
  pthread_t *tids = malloc(sizeof *tids * (size_t)threads);
  pfor_arg *args = malloc(sizeof *args * (size_t)threads);
  if (!tids || !args) {
    free(tids);
    free(args);
    pthread_mutex_destroy(&p.mu);
    return DATA_ERR(AN_ERR_HOST_ALLOC, "out of host memory for %d threads", threads);
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

void data_warn(an_warn_fn warn, void *ctx, const char *fmt, ...) {
  char line[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  if (warn) warn(ctx, line);
  else fprintf(stderr, "alexnet: warning: %s\n", line);
}
