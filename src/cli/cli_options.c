/* The option parser every command uses: a table of options with kinds, destinations and ranges, read
 * strictly (a value is read whole and must lie in its range), so that a mistyped value stops the
 * command with one message naming the option instead of running with a number atoi made up. */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alexnet/model.h"
#include "cli.h"

int cli_check_model(const char *command, const char *model, int allow_all) {
  if (an_model_find(model) || (allow_all && !strcmp(model, "all"))) return CLI_CONTINUE;
  char names[128];
  an_model_names(names, sizeof names);
  return cli_usage_error(command, "--model: unknown model '%s' (%s%s)", model, names, allow_all ? ", all" : "");
}

int cli_usage_error(const char *command, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "alexnet%s%s: ", command ? " " : "", command ? command : "");
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  return 2;
}

/* "alexnet train", or "alexnet" for main's own options: where --help is. */
static const char *see(const cli_command *cmd) {
  static char buf[64];
  snprintf(buf, sizeof buf, "alexnet%s%s", cmd->name ? " " : "", cmd->name ? cmd->name : "");
  return buf;
}

/* What o accepts, for the messages: "an integer in [1, 65536]". */
static void describe(const cli_option *o, char *buf, size_t size) {
  switch (o->kind) {
    case CLI_FLAG: snprintf(buf, size, "no value"); return;
    case CLI_STRING: snprintf(buf, size, "a value"); return;
    case CLI_INT:
    case CLI_INT64: snprintf(buf, size, "an integer in [%lld, %lld]", o->int_min, o->int_max); return;
    case CLI_UINT64: snprintf(buf, size, "an integer in [0, %llu]", ULLONG_MAX); return;
    case CLI_FLOAT:
    case CLI_DOUBLE:
      if (isinf(o->real_max)) snprintf(buf, size, "a number %s %g", o->min_open ? ">" : ">=", o->real_min);
      else
        snprintf(buf, size, "a number in %c%g, %g%c", o->min_open ? '(' : '[', o->real_min, o->real_max,
                 o->max_open ? ')' : ']');
      return;
    case CLI_SIZE:
      snprintf(buf, size, "a size from %.0f byte to %.0fG (bytes, or with K, M or G: 512M, 2G)", o->real_min,
               o->real_max / 1073741824.0);
      return;
    case CLI_CHOICE: {
      size_t used = (size_t)snprintf(buf, size, "one of");
      for (int i = 0; o->choices[i] && used < size; i++)
        used += (size_t)snprintf(buf + used, size - used, "%s %s", i ? "," : "", o->choices[i]);
      return;
    }
  }
}

/* A signed decimal integer, all of text; leading blanks, trailing characters and overflow refused. */
static int read_integer(const char *text, long long *out) {
  if (!*text || isspace((unsigned char)*text)) return 0;
  char *end;
  errno = 0;
  const long long v = strtoll(text, &end, 10);
  if (*end || errno == ERANGE) return 0;
  *out = v;
  return 1;
}

/* An unsigned 64-bit integer: strtoull would take "-1" as its largest value. */
static int read_unsigned(const char *text, unsigned long long *out) {
  if (!*text || isspace((unsigned char)*text) || *text == '-') return 0;
  char *end;
  errno = 0;
  const unsigned long long v = strtoull(text, &end, 10);
  if (*end || errno == ERANGE) return 0;
  *out = v;
  return 1;
}

/* A finite real at the start of text (as float when as_float: strtof rounds once, as the earlier
 * code did, so a given value trains bit for bit as before); *end after it. */
static int read_real_prefix(const char *text, int as_float, double *out, char **end) {
  if (!*text || isspace((unsigned char)*text)) return 0;
  errno = 0;
  const double v = as_float ? (double)strtof(text, end) : strtod(text, end);
  if (*end == text || errno == ERANGE || !isfinite(v)) return 0;
  *out = v;
  return 1;
}

static int in_real_range(const cli_option *o, double v) {
  return (o->min_open ? v > o->real_min : v >= o->real_min) && (o->max_open ? v < o->real_max : v <= o->real_max);
}

/* Bytes with an optional binary K, M or G, then an optional "i", "iB" or "B" (512M, 2GiB, 1.5G). */
static int read_size(const cli_option *o, const char *text, size_t *out) {
  double v, mult = 1;
  char *end;
  if (!read_real_prefix(text, 0, &v, &end)) return 0;
  if (*end == 'K' || *end == 'k') mult = 1024.0, end++;
  else if (*end == 'M' || *end == 'm') mult = 1048576.0, end++;
  else if (*end == 'G' || *end == 'g') mult = 1073741824.0, end++;
  if (*end == 'i' || *end == 'B') end += *end == 'i' ? (end[1] == 'B' ? 2 : 1) : 1;
  if (*end || !in_real_range(o, v * mult)) return 0;
  *out = (size_t)(v * mult);
  return 1;
}

/* Stores text into o's destination; 0 when it is not a value o accepts. */
static int store(const cli_option *o, const char *text) {
  long long i;
  double r;
  char *end;
  switch (o->kind) {
    case CLI_FLAG: *(int *)o->dest = 1; return 1;
    case CLI_STRING: *(const char **)o->dest = text; return 1;
    case CLI_INT:
    case CLI_INT64:
      if (!read_integer(text, &i) || i < o->int_min || i > o->int_max) return 0;
      if (o->kind == CLI_INT) *(int *)o->dest = (int)i;
      else *(long long *)o->dest = i;
      return 1;
    case CLI_UINT64: return read_unsigned(text, (unsigned long long *)o->dest);
    case CLI_FLOAT:
    case CLI_DOUBLE:
      if (!read_real_prefix(text, o->kind == CLI_FLOAT, &r, &end) || *end || !in_real_range(o, r)) return 0;
      if (o->kind == CLI_FLOAT) *(float *)o->dest = (float)r;
      else *(double *)o->dest = r;
      return 1;
    case CLI_SIZE: return read_size(o, text, (size_t *)o->dest);
    case CLI_CHOICE:
      for (int k = 0; o->choices[k]; k++)
        if (!strcmp(text, o->choices[k])) {
          *(int *)o->dest = o->choice_values ? o->choice_values[k] : k;
          return 1;
        }
      return 0;
  }
  return 0;
}

/* The option named name (len characters of it): an exact name, else the one name it begins. NULL
 * with *help set for --help; NULL otherwise after the message, *status set to 2. */
static const cli_option *find_long(const cli_command *cmd, const char *name, size_t len, int *help, int *status) {
  *help = 0;
  if (len == 4 && !strncmp(name, "help", 4)) return *help = 1, NULL;
  const cli_option *match = NULL;
  int n_prefix = 0;
  for (int i = 0; i < cmd->n_options; i++) {
    const cli_option *o = &cmd->options[i];
    if (strlen(o->name) == len && !strncmp(o->name, name, len)) return o;
    if (!strncmp(o->name, name, len)) match = o, n_prefix++;
  }
  const int help_prefix = len > 0 && !strncmp("help", name, len);
  if (n_prefix == 1 && !help_prefix) return match;
  if (n_prefix == 0 && help_prefix) return *help = 1, NULL;
  if (n_prefix + help_prefix > 1) {
    fprintf(stderr, "alexnet%s%s: option '--%.*s' is ambiguous:", cmd->name ? " " : "", cmd->name ? cmd->name : "",
            (int)len, name);
    for (int i = 0; i < cmd->n_options; i++)
      if (!strncmp(cmd->options[i].name, name, len)) fprintf(stderr, " --%s", cmd->options[i].name);
    fprintf(stderr, "%s\n", help_prefix ? " --help" : "");
  } else {
    cli_usage_error(cmd->name, "unknown option '--%.*s' (see %s --help)", (int)len, name, see(cmd));
  }
  *status = 2;
  return NULL;
}

static const cli_option *find_short(const cli_command *cmd, char c) {
  for (int i = 0; i < cmd->n_options; i++)
    if (cmd->options[i].short_name == c) return &cmd->options[i];
  return NULL;
}

/* Stores value (NULL: none was given) into o, or prints the one message and returns 2. */
static int take_value(const cli_command *cmd, const cli_option *o, const char *value) {
  char accepts[256];
  describe(o, accepts, sizeof accepts);
  if (!value) return cli_usage_error(cmd->name, "--%s: missing value (%s)", o->name, accepts);
  if (!store(o, value)) return cli_usage_error(cmd->name, "--%s: '%s' is not %s", o->name, value, accepts);
  return CLI_CONTINUE;
}

/* "--name", "--name=value": *i moves past a value taken from the next argument. */
static int parse_long(const cli_command *cmd, int argc, char **argv, int *i) {
  const char *name = argv[*i] + 2, *eq = strchr(name, '=');
  const size_t len = eq ? (size_t)(eq - name) : strlen(name);
  int help, status = CLI_CONTINUE;
  const cli_option *o = find_long(cmd, name, len, &help, &status);
  if (help) {
    cmd->help();
    return 0;
  }
  if (!o) return status;
  if (o->kind == CLI_FLAG) {
    if (eq) return cli_usage_error(cmd->name, "--%s takes no value, not '%s'", o->name, eq + 1);
    return store(o, NULL), CLI_CONTINUE;
  }
  if (eq) return take_value(cmd, o, eq + 1);
  return take_value(cmd, o, *i + 1 < argc ? argv[++*i] : NULL);
}

/* "-x", "-xvalue", "-x value", "-xy" (flags bundled). */
static int parse_short(const cli_command *cmd, int argc, char **argv, int *i) {
  for (const char *p = argv[*i] + 1; *p; p++) {
    const cli_option *o = find_short(cmd, *p);
    if (!o && *p == 'h') {
      cmd->help();
      return 0;
    }
    if (!o) return cli_usage_error(cmd->name, "unknown option '-%c' (see %s --help)", *p, see(cmd));
    if (o->kind == CLI_FLAG) {
      store(o, NULL);
      continue;
    }
    if (p[1]) return take_value(cmd, o, p + 1);
    return take_value(cmd, o, *i + 1 < argc ? argv[++*i] : NULL);
  }
  return CLI_CONTINUE;
}

int cli_parse(const cli_command *cmd, int argc, char **argv, int *n_positionals) {
  int n = 0, options_done = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    int status = CLI_CONTINUE;
    if (options_done || a[0] != '-' || !a[1]) {
      if (n == cmd->max_positionals)
        return cli_usage_error(cmd->name, "unexpected argument '%s' (see %s --help)", a, see(cmd));
      argv[1 + n++] = argv[i]; /* 1 + n <= i: never over an argument not yet read */
      continue;
    }
    if (!strcmp(a, "--")) options_done = 1;
    else if (a[1] == '-') status = parse_long(cmd, argc, argv, &i);
    else status = parse_short(cmd, argc, argv, &i);
    if (status != CLI_CONTINUE) return status;
  }
  *n_positionals = n;
  return CLI_CONTINUE;
}
