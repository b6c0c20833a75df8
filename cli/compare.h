/* compare.h - the `smtpscope compare` subcommand (see compare/cmp.h). */
#ifndef SC_CLI_COMPARE_H
#define SC_CLI_COMPARE_H

/* Runs `smtpscope compare` with argv[0] = "compare"; returns the exit status:
 * 0 no difference beyond info, 1 differences, 2 usage error or unreadable
 * input. */
int cli_compare(int argc, char **argv);

#endif
