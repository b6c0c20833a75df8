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
#include <unistd.h>

#include "cli/analyze.h"
#include "cli/compare.h"
#include "cli/config.h"
#include "cli/live.h"
#include "cli/par.h"
#include "common/ascii.h"

#define EXIT_USAGE 2

static void usage(FILE *f)
{
    fputs("Usage: smtpscope analyze [OPTIONS] FILE...\n"
          "       smtpscope live -i IFACE [OPTIONS]            (see live --help)\n"
          "       smtpscope compare [OPTIONS] OUTSIDE INSIDE   (see compare --help)\n"
          "       smtpscope rules [-f text|json|yaml|markdown] [-c FILE.yaml]\n"
          "       smtpscope --help | --version\n"
          "\n"
          "Rebuild every SMTP session in pcap/pcapng captures, report what each one did\n"
          "(banner, EHLO keywords, STARTTLS, envelope, bytes, how it ended) and what a\n"
          "middlebox did to it: masked banners and keywords, stripped STARTTLS, dropped\n"
          "connections, with the frame to open in Wireshark.  FILE may be \"-\" for\n"
          "standard input.\n"
          "\n"
          "Options:\n"
          "  -f, --format FMT     text (default), json (JSON Lines, one record a line) or\n"
          "                       yaml (one YAML document a record)\n"
          "  -o, --output FILE    write records to FILE instead of standard output\n"
          "  -c, --config FILE    YAML configuration: rules, severities, thresholds,\n"
          "                       ports, signatures (docs/USAGE.md); options given on\n"
          "                       the command line take precedence\n"
          "  -p, --ports LIST     SMTP ports, e.g. 25,587,2525-2530 (default 25,587);\n"
          "                       other ports are followed when the handshake is in the\n"
          "                       capture and the connection speaks SMTP\n"
          "      --tls-ports LIST implicit-TLS ports, TLS from the first byte (default\n"
          "                       465; \"\" for none)\n"
          "      --no-detect      follow only the ports in --ports and --tls-ports\n"
          "  -w, --write-flagged FILE.pcap\n"
          "                       write every packet of every session with a finding\n"
          "                       at or above the --fail-on severity to FILE.pcap\n"
          "      --fail-on SEV    exit 1 for findings of this severity or more: info,\n"
          "                       low (default), medium, high, or never\n"
          "      --transcript     add every command and reply line with frame and time\n"
          "      --color WHEN     colours in text output: auto (on a terminal, unless\n"
          "                       NO_COLOR is set), always, never\n"
          "  -j, --jobs N         analyse with N threads (1 to 16; 0: one per CPU); the\n"
          "                       output is the same as with one (default 1)\n"
          "  -v, --verbose        list protocol anomalies (events) in text output\n"
          "  -q, --quiet          no progress line\n"
          "  -h, --help           show this help\n"
          "  -V, --version        show the version\n"
          "\n"
          "Exit status: 0 no findings, 1 findings, 2 usage error or unreadable input.\n",
          f);
}

enum { OPT_TRANSCRIPT = 256, OPT_NO_DETECT, OPT_FAIL_ON, OPT_TLS_PORTS, OPT_COLOR };

static int cmd_analyze(int argc, char **argv)
{
    struct an_options o;
    an_options_defaults(&o);
    const char *output = NULL, *config = NULL, *ports = NULL, *fail_on = NULL, *tls_ports = NULL;
    const char *color = "auto";
    bool transcript = false;
    static const struct option longopts[] = {
        {"format", required_argument, NULL, 'f'},
        {"output", required_argument, NULL, 'o'},
        {"config", required_argument, NULL, 'c'},
        {"ports", required_argument, NULL, 'p'},
        {"write-flagged", required_argument, NULL, 'w'},
        {"fail-on", required_argument, NULL, OPT_FAIL_ON},
        {"tls-ports", required_argument, NULL, OPT_TLS_PORTS},
        {"color", required_argument, NULL, OPT_COLOR},
        {"transcript", no_argument, NULL, OPT_TRANSCRIPT},
        {"no-detect", no_argument, NULL, OPT_NO_DETECT},
        {"jobs", required_argument, NULL, 'j'},
        {"verbose", no_argument, NULL, 'v'},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "f:o:c:p:w:j:vqhV", longopts, NULL)) != -1) {
        switch (c) {
        case 'f':
            if (strcmp(optarg, "text") == 0) {
                o.rep.format = REP_TEXT;
            } else if (strcmp(optarg, "json") == 0) {
                o.rep.format = REP_JSON;
            } else if (strcmp(optarg, "yaml") == 0) {
                o.rep.format = REP_YAML;
            } else {
                fprintf(stderr, "smtpscope: --format: \"%s\" is not one of text, json, yaml\n",
                        optarg);
                return EXIT_USAGE;
            }
            break;
        case 'o':
            output = optarg;
            break;
        case 'c':
            config = optarg;
            break;
        case 'p':
            ports = optarg;
            break;
        case 'w':
            o.write_flagged = optarg;
            break;
        case OPT_FAIL_ON:
            fail_on = optarg;
            break;
        case OPT_TLS_PORTS:
            tls_ports = optarg;
            break;
        case OPT_COLOR:
            if (strcmp(optarg, "auto") != 0 && strcmp(optarg, "always") != 0 &&
                strcmp(optarg, "never") != 0) {
                fprintf(stderr, "smtpscope: --color: \"%s\" is not one of auto, always, never\n",
                        optarg);
                return EXIT_USAGE;
            }
            color = optarg;
            break;
        case OPT_TRANSCRIPT:
            transcript = true;
            break;
        case OPT_NO_DETECT:
            o.detect = false;
            break;
        case 'j': {
            char *end;
            errno = 0;
            long n = strtol(optarg, &end, 10);
            if (errno || end == optarg || *end || n < 0 || n > PAR_MAX_WORKERS) {
                fprintf(stderr, "smtpscope: --jobs: \"%s\" is not a number from 0 to %d\n", optarg,
                        PAR_MAX_WORKERS);
                return EXIT_USAGE;
            }
            if (n == 0) {
                long cpus = sysconf(_SC_NPROCESSORS_ONLN);
                n = cpus < 1 ? 1 : cpus > PAR_MAX_WORKERS ? PAR_MAX_WORKERS : cpus;
            }
            o.jobs = (unsigned)n;
            break;
        }
        case 'v':
            o.rep.verbose = true;
            break;
        case 'q':
            o.quiet = true;
            break;
        case 'h':
            usage(stdout);
            return 0;
        case 'V':
            printf("smtpscope %s\n", SMTPSCOPE_VERSION);
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
    int rc = EXIT_USAGE;
    /* The file first, then the command line over it. */
    char err[CFG_ERR_MAX];
    if (config && cfg_load(config, &o, err, sizeof(err)) != 0) {
        fprintf(stderr, "smtpscope: %s\n" AN_CONFIG_HINT, err);
        goto out;
    }
    if (ports && !cfg_parse_ports(ports, o.cap.ports, false)) {
        fprintf(stderr,
                "smtpscope: --ports: \"%s\" is not a list of ports 1-65535 such as "
                "25,587,2525-2530\n",
                ports);
        goto out;
    }
    if (tls_ports && !cfg_parse_ports(tls_ports, o.tls_ports, true)) {
        fprintf(stderr,
                "smtpscope: --tls-ports: \"%s\" is not a list of ports 1-65535 such as 465 "
                "(or \"\" for none)\n",
                tls_ports);
        goto out;
    }
    if (fail_on) {
        int sev = strcmp(fail_on, "never") == 0 ? HEUR_HIGH + 1 : heur_sev_parse(fail_on);
        if (sev < 0) {
            fprintf(stderr,
                    "smtpscope: --fail-on: \"%s\" is not one of info, low, medium, high, "
                    "never\n",
                    fail_on);
            goto out;
        }
        o.fail_on = sev;
    }
    if (transcript) {
        o.rep.transcript = true;
        o.smtp.transcript_max = o.transcript_lines;
    }
    if (o.write_flagged) {
        for (int i = optind; i < argc; i++) {
            if (strcmp(argv[i], "-") == 0) {
                fputs("smtpscope: -w reads the input twice, so it needs files, not standard "
                      "input (save it with tcpdump -w first)\n",
                      stderr);
                goto out;
            }
        }
    }
    FILE *out = stdout;
    if (output && strcmp(output, "-") != 0) {
        out = fopen(output, "w");
        if (!out) {
            fprintf(stderr, "smtpscope: %s: %s\n", output, strerror(errno));
            goto out;
        }
    }
    /* Colour: on a terminal unless NO_COLOR is set (https://no-color.org),
     * or as --color says. */
    const char *no_color = getenv("NO_COLOR");
    o.rep.color = strcmp(color, "always") == 0 ||
                  (strcmp(color, "auto") == 0 && isatty(fileno(out)) && !(no_color && *no_color));
    o.output_name = out == stdout ? "standard output" : output;
    rc = an_run(&o, argv + optind, argc - optind, out);
    if (out != stdout && fclose(out) != 0) {
        fprintf(stderr, "smtpscope: %s: %s\n", output, strerror(errno));
        rc = EXIT_USAGE;
    }
out:
    heur_config_free(&o.heur);
    return rc;
}

static void usage_rules(FILE *f)
{
    fputs("Usage: smtpscope rules [OPTIONS]\n"
          "\n"
          "Lists the detection rules: id, default severity, the rows of the middlebox\n"
          "catalogue (SIGNATURES.md) they rest on, what they detect, and the custom\n"
          "signatures of a configuration file.\n"
          "\n"
          "Options:\n"
          "  -f, --format FMT     text (default), json, yaml, or markdown (docs/RULES.md)\n"
          "  -c, --config FILE    show severities and enabled flags as FILE sets them\n"
          "  -h, --help           show this help\n",
          f);
}

static int cmd_rules(int argc, char **argv)
{
    struct an_options o;
    an_options_defaults(&o);
    enum rep_rules_format fmt = REP_RULES_TEXT;
    const char *config = NULL;
    static const struct option longopts[] = {
        {"format", required_argument, NULL, 'f'},
        {"config", required_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "f:c:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'f':
            if (strcmp(optarg, "text") == 0) {
                fmt = REP_RULES_TEXT;
            } else if (strcmp(optarg, "json") == 0) {
                fmt = REP_RULES_JSON;
            } else if (strcmp(optarg, "markdown") == 0) {
                fmt = REP_RULES_MARKDOWN;
            } else if (strcmp(optarg, "yaml") == 0) {
                fmt = REP_RULES_YAML;
            } else {
                fprintf(stderr,
                        "smtpscope: --format: \"%s\" is not one of text, json, yaml, markdown\n",
                        optarg);
                return EXIT_USAGE;
            }
            break;
        case 'c':
            config = optarg;
            break;
        case 'h':
            usage_rules(stdout);
            return 0;
        default:
            fputs("Try 'smtpscope rules --help' for more information.\n", stderr);
            return EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "smtpscope: rules takes no arguments (\"%s\")\n", argv[optind]);
        return EXIT_USAGE;
    }
    int rc = 0;
    char err[CFG_ERR_MAX];
    if (config && cfg_load(config, &o, err, sizeof(err)) != 0) {
        fprintf(stderr, "smtpscope: %s\n" AN_CONFIG_HINT, err);
        rc = EXIT_USAGE;
    } else if (rep_rules(stdout, fmt, &o.heur) != 0) {
        fprintf(stderr, "smtpscope: standard output: write error: %s\n", strerror(errno));
        rc = EXIT_USAGE;
    }
    heur_config_free(&o.heur);
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
    if (strcmp(cmd, "rules") == 0)
        return cmd_rules(argc - 1, argv + 1);
    if (strcmp(cmd, "compare") == 0)
        return cli_compare(argc - 1, argv + 1);
    if (strcmp(cmd, "live") == 0)
        return cli_live(argc - 1, argv + 1);
    fprintf(stderr, "smtpscope: unknown command \"%s\"\n", cmd);
    fputs("Try 'smtpscope --help' for more information.\n", stderr);
    return EXIT_USAGE;
}
