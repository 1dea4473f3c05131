/* The data fuzz harnesses: each defines LLVMFuzzerTestOneInput (the libFuzzer entry) and fuzz_seeds (a
 * few valid inputs built in code, so no binary corpus lives in the repository). fuzz_main.c is the
 * standalone driver used when the harness is not linked with libFuzzer: it runs the seeds, then a fixed
 * number of seeded mutations of them, and exits 0 only if nothing crashed. */
#ifndef ALEXNET_FUZZ_H
#define ALEXNET_FUZZ_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Calls add once per seed input (add copies the bytes). */
void fuzz_seeds(void (*add)(const uint8_t *data, size_t size));

#endif
