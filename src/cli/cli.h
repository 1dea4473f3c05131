/* The alexnet command line: one function per subcommand, dispatched by main.c. */
#ifndef ALEXNET_CLI_H
#define ALEXNET_CLI_H

#include <stddef.h>

#include "alexnet/runtime.h"
#include "alexnet/tune.h"

int cmd_devices(int argc, char **argv);
int cmd_step(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_tune(int argc, char **argv);
int cmd_pack(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_classify(int argc, char **argv);
int cmd_filters(int argc, char **argv);

/* The host's BLAS (host_blas.c), looked up at run time: its library name (NULL: none installed), with
 * threads set to `threads` where it can; then the best of `rounds` passes over the calls, in seconds,
 * and their FLOPs. Returns 0, or 1 without a BLAS or host memory. */
const char *host_blas_open(int threads);
int host_blas_time(const an_gemm_call *calls, int n, int rounds, double *seconds, double *flop);

/* Prints "alexnet: <message>" for the library's last error and returns the exit code 1. */
int cli_fail(const char *what);

/* The one option parser of every command: a table of options, each with its kind, destination and, for
 * numbers, the range it accepts. A number is read whole (no trailing characters, no empty value, no
 * overflow, no NaN or infinity) and must lie in its range; anything else ends the command with exit
 * status 2 and one message naming the option, the value and what it accepts. */
typedef enum cli_kind {
  CLI_FLAG,   /* int: set to 1; takes no value */
  CLI_STRING, /* const char *: the value as given */
  CLI_INT,    /* int in [int_min, int_max] */
  CLI_INT64,  /* long long in [int_min, int_max] */
  CLI_UINT64, /* unsigned long long: any 64-bit unsigned integer (seeds) */
  CLI_FLOAT,  /* float in real_min..real_max (each bound closed unless *_open) */
  CLI_DOUBLE, /* double, likewise */
  CLI_SIZE,   /* size_t bytes, optionally with K, M or G (binary; KiB, MB... read alike), in real range */
  CLI_CHOICE, /* int: choice_values[i] (or i) for the value equal to choices[i] */
} cli_kind;

typedef struct cli_option {
  const char *name; /* without the dashes: "batch" for --batch */
  char short_name;  /* '-x' alias, or 0 */
  cli_kind kind;
  void *dest; /* the type its kind names; written only when the option is given */
  long long int_min, int_max;
  double real_min, real_max;
  unsigned char min_open, max_open; /* reals: the bound itself is excluded */
  const char *const *choices;       /* CLI_CHOICE: NULL-terminated */
  const int *choice_values;         /* CLI_CHOICE: one per choice, or NULL for the index */
} cli_option;

/* Table entries, all fields designated; the conditional expressions make the compiler check each
 * destination's type. */
#define CLI_OPT_(name_, short_, kind_, type_, dest_) \
  .name = (name_), .short_name = (short_), .kind = (kind_), .dest = (1 ? (dest_) : (type_ *)0)
#define CLI_OPT_FLAG(name, short_name, dest) \
  { CLI_OPT_(name, short_name, CLI_FLAG, int, dest) }
#define CLI_OPT_STRING(name, short_name, dest) \
  { CLI_OPT_(name, short_name, CLI_STRING, const char *, dest) }
#define CLI_OPT_INT(name, short_name, dest, lo, hi) \
  { CLI_OPT_(name, short_name, CLI_INT, int, dest), .int_min = (lo), .int_max = (hi) }
#define CLI_OPT_INT64(name, short_name, dest, lo, hi) \
  { CLI_OPT_(name, short_name, CLI_INT64, long long, dest), .int_min = (lo), .int_max = (hi) }
#define CLI_OPT_UINT64(name, short_name, dest) \
  { CLI_OPT_(name, short_name, CLI_UINT64, unsigned long long, dest) }
#define CLI_OPT_FLOAT(name, short_name, dest, lo, hi, lo_open, hi_open)                                            \
  {                                                                                                                \
    CLI_OPT_(name, short_name, CLI_FLOAT, float, dest), .real_min = (lo), .real_max = (hi), .min_open = (lo_open), \
                                                        .max_open = (hi_open)                                      \
  }
#define CLI_OPT_DOUBLE(name, short_name, dest, lo, hi, lo_open, hi_open)                               \
  {                                                                                                    \
    CLI_OPT_(name, short_name, CLI_DOUBLE, double, dest), .real_min = (lo), .real_max = (hi),          \
                                                          .min_open = (lo_open), .max_open = (hi_open) \
  }
#define CLI_OPT_SIZE(name, short_name, dest, lo, hi) \
  { CLI_OPT_(name, short_name, CLI_SIZE, size_t, dest), .real_min = (lo), .real_max = (hi) }
#define CLI_OPT_CHOICE(name, short_name, dest, names, values) \
  { CLI_OPT_(name, short_name, CLI_CHOICE, int, dest), .choices = (names), .choice_values = (values) }

typedef struct cli_command {
  const char *name; /* "train": messages read "alexnet train: ..." */
  const cli_option *options;
  int n_options;
  void (*help)(void);  /* --help and -h print it */
  int max_positionals; /* arguments that are not options: more is an error */
} cli_command;

/* What cli_parse returns when the command goes on; any other value is the exit status to return. */
#define CLI_CONTINUE (-1)

/* Parses argv[1..argc) against cmd's table, in order: --name value, --name=value, a unique prefix of
 * a name, -x value, -xvalue, bundled short flags; "--" ends the options. The arguments that are not
 * options are moved, in order, to argv[1..1 + *n_positionals). Returns CLI_CONTINUE, 0 after printing
 * the help, or 2 after printing one message (an unknown option, a missing or bad value, too many
 * arguments). */
int cli_parse(const cli_command *cmd, int argc, char **argv, int *n_positionals);

/* Prints "alexnet <command>: <message>" and returns the exit status of a usage error, 2. */
/* CLI_CONTINUE when model names a model of the table (or is "all" where allowed); else the usage error
 * naming --model and the models there are (status 2). */
int cli_check_model(const char *command, const char *model, int allow_all);
int cli_usage_error(const char *command, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* s as the inside of a JSON string (quotes, backslashes and control characters escaped) in buf;
 * returns buf (truncated to size - 1 bytes at a character boundary of the escaped text). */
const char *cli_json(const char *s, char *buf, size_t size);

/* Opens the device of spec (--device; NULL or "" reads ALEXNET_DEVICE), or the two of a spec with a
 * comma ("0:0,0:1", an_runtime_create_pair) for the split, and prints a line per device. *rt1 is NULL
 * for one device. Returns 0, or cli_fail's exit code with nothing left open. */
int cli_open_devices(const char *spec, int separate_contexts, an_runtime **rt0, an_runtime **rt1);
/* The same for one rank of an MPI job (cli_open_devices when the process runs alone): spec is a
 * ';'-separated list with one entry per local rank (each a device or a pair A,B), or one entry every rank
 * shares; without one, the local rank's index among the machine's GPUs (else its devices). Every rank
 * agrees: a rank without a device stops all of them, rank 0 saying why. */
int cli_open_rank_devices(const char *spec, int separate_contexts, an_runtime **rt0, an_runtime **rt1);

#endif
