/* Growing arrays by doubling: the one place the project's realloc growth lives. Plain C, no OpenCL, so
 * data/, io/ and tests include it as well as runtime/. */
#ifndef ALEXNET_GROW_H
#define ALEXNET_GROW_H

#include <stdlib.h>

/* Room for one more item in a growing array (n used, *cap allocated): the array, moved if it had to
 * grow, or NULL when out of memory (the old array is then still valid). */
static inline void *an_grow(void *items, int n, int *cap, size_t item_size) {
  if (n < *cap) return items;
  const int more = *cap ? 2 * *cap : 16;
  void *grown = realloc(items, (size_t)more * item_size);
  if (grown) *cap = more;
  return grown;
}

/* Room for at least one more byte in a buffer that grows toward a limit (a file read or inflated whole):
 * a NULL buf gets its first *cap bytes (> 0), a full one (used == *cap) twice as many, never more than
 * limit. Returns the buffer, moved if it had to grow, or NULL with the old buffer still valid and *cap
 * unchanged: out of memory, or full at the limit (used == *cap == limit). */
static inline void *an_grow_bytes(void *buf, size_t used, size_t *cap, size_t limit) {
  if (buf && used < *cap) return buf;
  size_t more = buf ? 2 * *cap : *cap;
  if (more > limit) more = limit;
  if (buf && more == *cap) return NULL; /* at the limit */
  void *grown = realloc(buf, more);
  if (grown) *cap = more;
  return grown;
}

#endif
