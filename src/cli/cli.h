/* The alexnet command line: one function per subcommand, dispatched by main.c. */
#ifndef ALEXNET_CLI_H
#define ALEXNET_CLI_H

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

#endif
