/* live.h - the `smtpscope live` subcommand (see live.c). */
#ifndef SC_CLI_LIVE_H
#define SC_CLI_LIVE_H

/* Runs `smtpscope live` with argv[0] = "live"; returns the exit status: 0 no
 * findings, 1 findings, 2 usage error or capture failure. */
int cli_live(int argc, char **argv);

#endif
