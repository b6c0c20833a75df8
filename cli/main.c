/* main.c - smtpscope command line: subcommands, options, exit status.
 *
 * Exit status, like diff(1): 0 ran and found nothing at or above the
 * threshold, 1 ran and found something, 2 usage error or unreadable input.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/analyze.h"
#include "common/ascii.h"

#define EXIT_USAGE 2

static void usage(FILE *f)
{
    fputs("Usage: smtpscope analyze [OPTIONS] FILE...\n"
          "       smtpscope --help | --version\n"
          "\n"
          "Rebuild every SMTP session in pcap/pcapng captures and report what each\n"
          "one did: banner, EHLO keywords, STARTTLS, envelope, bytes, how it ended.\n"
          "FILE may be \"-\" for standard input.\n"
          "\n"
          "Options:\n"
          "  -f, --format FMT     text (default) or json (JSON Lines, one record a line)\n"
          "  -o, --output FILE    write records to FILE instead of standard output\n"
          "  -p, --ports LIST     SMTP ports, e.g. 25,587,2525-2530 (default 25,587);\n"
          "                       other ports are followed when the handshake is in the\n"
          "                       capture and the connection speaks SMTP\n"
          "      --no-detect      follow only the ports in --ports\n"
          "      --transcript     add every command and reply line with frame and time\n"
          "  -v, --verbose        list protocol anomalies (events) in text output\n"
          "  -q, --quiet          no progress line\n"
          "  -h, --help           show this help\n"
          "  -V, --version        show the version\n"
          "\n"
          "Exit status: 0 no findings, 1 findings, 2 usage error or unreadable input.\n",
          f);
}

/* Parses "25,587,2000-2010" into the port bitmap.  Returns false on error. */
static bool parse_ports(const char *s, struct cap_settings *cap)
{
    memset(cap->ports, 0, sizeof(cap->ports));
    const char *p = s;
    if (!*p)
        return false;
    while (*p) {
        char *end;
        errno = 0;
        if (!sc_is_digit((uint8_t)*p))
            return false;
        unsigned long lo = strtoul(p, &end, 10);
        unsigned long hi = lo;
        if (errno || lo < 1 || lo > 65535)
            return false;
        p = end;
        if (*p == '-') {
            p++;
            if (!sc_is_digit((uint8_t)*p))
                return false;
            hi = strtoul(p, &end, 10);
            if (errno || hi < lo || hi > 65535)
                return false;
            p = end;
        }
        for (unsigned long port = lo; port <= hi; port++)
            cap_port_set(cap, (uint16_t)port, true);
        if (*p == ',')
            p++;
        else if (*p)
            return false;
    }
    return true;
}

enum { OPT_TRANSCRIPT = 256, OPT_NO_DETECT };

static int cmd_analyze(int argc, char **argv)
{
    struct an_options o;
    an_options_defaults(&o);
    const char *output = NULL;
    static const struct option longopts[] = {
        {"format", required_argument, NULL, 'f'},
        {"output", required_argument, NULL, 'o'},
        {"ports", required_argument, NULL, 'p'},
        {"transcript", no_argument, NULL, OPT_TRANSCRIPT},
        {"no-detect", no_argument, NULL, OPT_NO_DETECT},
        {"verbose", no_argument, NULL, 'v'},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "f:o:p:vqh", longopts, NULL)) != -1) {
        switch (c) {
        case 'f':
            if (strcmp(optarg, "text") == 0) {
                o.rep.format = REP_TEXT;
            } else if (strcmp(optarg, "json") == 0) {
                o.rep.format = REP_JSON;
            } else {
                fprintf(stderr, "smtpscope: --format: \"%s\" is not one of text, json\n", optarg);
                return EXIT_USAGE;
            }
            break;
        case 'o':
            output = optarg;
            break;
        case 'p':
            if (!parse_ports(optarg, &o.cap)) {
                fprintf(stderr,
                        "smtpscope: --ports: \"%s\" is not a list of ports 1-65535 "
                        "such as 25,587,2525-2530\n",
                        optarg);
                return EXIT_USAGE;
            }
            break;
        case OPT_TRANSCRIPT: {
            struct smtp_settings d;
            smtp_settings_defaults(&d);
            o.rep.transcript = true;
            o.smtp.transcript_max = d.transcript_max;
            break;
        }
        case OPT_NO_DETECT:
            o.detect = false;
            break;
        case 'v':
            o.rep.verbose = true;
            break;
        case 'q':
            o.quiet = true;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            fputs("Try 'smtpscope --help' for more information.\n", stderr);
            return EXIT_USAGE;
        }
    }
    if (optind >= argc) {
        fputs("smtpscope: analyze needs at least one capture file (or - for stdin)\n", stderr);
        fputs("Try 'smtpscope --help' for more information.\n", stderr);
        return EXIT_USAGE;
    }
    FILE *out = stdout;
    if (output && strcmp(output, "-") != 0) {
        out = fopen(output, "w");
        if (!out) {
            fprintf(stderr, "smtpscope: %s: %s\n", output, strerror(errno));
            return EXIT_USAGE;
        }
    }
    int rc = an_run(&o, argv + optind, argc - optind, out);
    if (out != stdout && fclose(out) != 0) {
        fprintf(stderr, "smtpscope: %s: %s\n", output, strerror(errno));
        rc = EXIT_USAGE;
    }
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(cmd, "-V") == 0 || strcmp(cmd, "--version") == 0) {
        printf("smtpscope %s\n", SMTPSCOPE_VERSION);
        return 0;
    }
    if (strcmp(cmd, "analyze") == 0)
        return cmd_analyze(argc - 1, argv + 1);
    fprintf(stderr, "smtpscope: unknown command \"%s\"\n", cmd);
    fputs("Try 'smtpscope --help' for more information.\n", stderr);
    return EXIT_USAGE;
}
