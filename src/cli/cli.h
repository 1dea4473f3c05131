/* The alexnet command line: one function per subcommand, dispatched by main.c. */
#ifndef ALEXNET_CLI_H
#define ALEXNET_CLI_H

#include "alexnet/runtime.h"

int cmd_devices(int argc, char **argv);
int cmd_step(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_tune(int argc, char **argv);
int cmd_pack(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_classify(int argc, char **argv);
int cmd_filters(int argc, char **argv);

/* Prints "alexnet: <message>" for the library's last error and returns the exit code 1. */
int cli_fail(const char *what);

/* Parses all of text as a number (an integer when integer, else a real) into *out; 0 when text is not
 * one or *out falls outside [lo, hi) (the caller says which option and range). */
int cli_number(const char *text, int integer, double lo, double hi, double *out);

/* s as the inside of a JSON string (quotes, backslashes and control characters escaped) in buf;
 * returns buf (truncated to size - 1 bytes at a character boundary of the escaped text). */
const char *cli_json(const char *s, char *buf, size_t size);

/* Opens the device of spec (--device; NULL or "" reads ALEXNET_DEVICE), or the two of a spec with a
 * comma ("0:0,0:1", an_runtime_create_pair) for the split, and prints a line per device. *rt1 is NULL
 * for one device. Returns 0, or cli_fail's exit code with nothing left open. */
int cli_open_devices(const char *spec, int separate_contexts, an_runtime **rt0, an_runtime **rt1);

#endif
