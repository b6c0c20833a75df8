/* main.c - smtpscope-synth: turns a scenario file into one capture (the
 * outside view) or a pair (outside and inside of the middlebox).  See
 * pcaps/README.md for the scenario format. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pcaps/synth/scenario.h"

static void usage(FILE *f)
{
    fputs("Usage: smtpscope-synth [-o OUTSIDE.pcap] [-i INSIDE.pcap] [--cert FILE.pem] "
          "SCENARIO.yaml\n"
          "\n"
          "Simulates the scenario (clients, servers, the middlebox between them, TCP and\n"
          "TLS) and writes what a capture on each side of the middlebox would record.\n"
          "  -o, --outside FILE   capture between the client and the middlebox\n"
          "  -i, --inside FILE    capture between the middlebox and the server\n"
          "      --cert FILE      write the first session's server certificate (PEM)\n"
          "      --expect FILE    write what the client saw, as an .expect.yaml for -o\n"
          "      --expect-inside FILE  write what the server saw, for -i\n"
          "      --streams FILE   write each stream's length and SHA-256 at each vantage\n"
          "      --compare FILE   write the differences compare must find (two-sided)\n"
          "  -q, --quiet          no summary on standard error\n"
          "  -h, --help           this help\n"
          "The same scenario always produces byte-identical captures.\n",
          f);
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"outside", required_argument, NULL, 'o'}, {"inside", required_argument, NULL, 'i'},
        {"cert", required_argument, NULL, 'c'},    {"quiet", no_argument, NULL, 'q'},
        {"expect", required_argument, NULL, 'e'},  {"expect-inside", required_argument, NULL, 'E'},
        {"streams", required_argument, NULL, 's'}, {"compare", required_argument, NULL, 'C'},
        {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0},
    };
    const char *out = NULL, *in = NULL, *cert = NULL;
    struct syn_expect_paths ex = {NULL, NULL, NULL, NULL, NULL};
    int quiet = 0, c;
    while ((c = getopt_long(argc, argv, "o:i:qh", longopts, NULL)) != -1) {
        switch (c) {
        case 'o':
            out = optarg;
            break;
        case 'i':
            in = optarg;
            break;
        case 'c':
            cert = optarg;
            break;
        case 'q':
            quiet = 1;
            break;
        case 'e':
            ex.outside = optarg;
            break;
        case 'E':
            ex.inside = optarg;
            break;
        case 's':
            ex.streams = optarg;
            break;
        case 'C':
            ex.compare = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind != argc - 1 || (!out && !in)) {
        usage(stderr);
        return 2;
    }
    char err[512];
    struct syn_scenario *sc = syn_scenario_load(argv[optind], err, sizeof(err));
    if (!sc) {
        fprintf(stderr, "smtpscope-synth: %s\n", err);
        return 2;
    }
    if (in && !sc->inside.on) {
        /* An inside capture without settings: same link as the outside. */
        sc->inside.on = true;
        sc->inside.position = 0.1;
    }
    struct syn_run_stats st;
    const char *base = strrchr(argv[optind], '/');
    ex.name = base ? base + 1 : argv[optind];
    int rc = syn_scenario_run_expect(sc, out, in, cert, &ex, &st);
    if (rc == 0 && !quiet)
        fprintf(stderr,
                "smtpscope-synth: %llu sessions (%llu with TLS, %llu messages accepted, %llu "
                "aborted); %llu packets outside, %llu inside\n",
                (unsigned long long)st.sessions, (unsigned long long)st.tls_sessions,
                (unsigned long long)st.messages_accepted, (unsigned long long)st.aborted,
                (unsigned long long)st.packets[0], (unsigned long long)st.packets[1]);
    syn_scenario_free(sc);
    return rc == 0 ? 0 : 2;
}
