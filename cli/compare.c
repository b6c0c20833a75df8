/* compare.c - `smtpscope compare`: analyse two captures, pair and diff their
 * sessions (compare/), print the result (report/). */
#include "cli/compare.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "capture/decode.h"
#include "cli/analyze.h"
#include "cli/config.h"
#include "compare/cmp.h"
#include "report/report.h"

#define EXIT_USAGE 2

/* Collects one capture's sessions. */
struct cmpc_collect {
    struct cmp_capture *cap;
    const char *file;
    bool oom;
};

static void cmpc__session(void *user, const struct rep_session *rs)
{
    struct cmpc_collect *c = user;
    struct cmp_session *s = cmp_capture_new(c->cap);
    if (!s) {
        c->oom = true;
        return;
    }
    const struct smtp_info *in = rs->smtp;
    s->id = rs->id;
    snprintf(s->client, sizeof(s->client), "%s", rs->client);
    snprintf(s->server, sizeof(s->server), "%s", rs->server);
    const char *cp = strrchr(rs->client, ':'), *sp = strrchr(rs->server, ':');
    s->cport = cp ? (uint16_t)atoi(cp + 1) : 0;
    s->sport = sp ? (uint16_t)atoi(sp + 1) : 0;
    s->first_frame = rs->first_frame;
    s->last_frame = rs->last_frame;
    s->start = rs->start;
    s->end = rs->end;
    snprintf(s->close, sizeof(s->close), "%s", rs->close);
    snprintf(s->file, sizeof(s->file), "%s", rs->file);
    for (int d = 0; d < 2; d++) {
        const struct rep_tcp_side *t = &rs->tcp[d];
        s->tcp[d] = (struct cmp_tcp){
            .syn = t->syn_seen,
            .mss = t->mss,
            .mss_present = t->mss_present,
            .wscale_present = t->wscale_present,
            .sack_perm = t->sack_perm,
            .timestamps = t->timestamps,
            .wscale = t->wscale,
            .isn = t->isn,
            .ttl = t->ttl,
            .ttl_min = t->ttl_min,
            .ttl_max = t->ttl_max,
            .ipid_zero = t->ipid_zero,
            .ipid_small = t->ipid_small,
            .ipid_big = t->ipid_big,
            .rst = t->rst,
            .rst_ttl = t->rst_ttl,
            .rst_frame = t->rst_frame,
        };
        s->bytes[d] = in->bytes[d];
    }
    for (size_t i = 0; i < in->n_transcript; i++) {
        const struct smtp_line *l = &in->transcript[i];
        if (cmp_session_add_line(s, l->dir, l->kind, l->code, l->len, l->text, l->text_len,
                                 l->meta.frame, l->meta.ts) != 0)
            c->oom = true;
    }
    s->lines_dropped += in->transcript_dropped;
    if (in->tls && in->tls->server_hello) {
        const struct tls_info *t = in->tls;
        s->tls = true;
        tls_version_str(s->tls_version, sizeof(s->tls_version), t->version);
        const char *cn = tls_cipher_name(t->cipher);
        if (cn)
            snprintf(s->tls_cipher, sizeof(s->tls_cipher), "%s", cn);
        else
            snprintf(s->tls_cipher, sizeof(s->tls_cipher), "0x%04x", t->cipher);
        if (t->n_chain) {
            snprintf(s->cert_sha256, sizeof(s->cert_sha256), "%s", t->chain[0].sha256);
            snprintf(s->cert_issuer, sizeof(s->cert_issuer), "%.127s", t->chain[0].issuer);
        }
        s->cert_hidden = t->cert_hidden;
    }
    size_t fl = 0;
    for (size_t i = 0; i < rs->n_findings && fl < sizeof(s->findings) - 1; i++)
        fl += (size_t)snprintf(s->findings + fl, sizeof(s->findings) - fl, "%s%s", i ? "," : "",
                               rs->findings[i].rule);
}

/* Analyses one capture silently, collecting its sessions.  Returns the
 * analysis exit status (2: unreadable). */
static int cmpc__load(const struct an_options *base, char *file, struct cmp_capture *cap)
{
    struct an_options o = *base;
    struct cmpc_collect col = {cap, file, false};
    o.silent = true;
    o.on_session = cmpc__session;
    o.user = &col;
    o.write_flagged = NULL;
    o.smtp.transcript_max = o.transcript_lines;
    char *files[1] = {file};
    int rc = an_run(&o, files, 1, stdout);
    if (col.oom) {
        fprintf(stderr, "smtpscope: %s: out of memory keeping the sessions\n", file);
        rc = 2;
    }
    return rc == 2 ? 2 : 0;
}

static void cmpc__usage(FILE *f)
{
    fputs("Usage: smtpscope compare [OPTIONS] OUTSIDE INSIDE\n"
          "\n"
          "Pairs the SMTP sessions of two captures taken on either side of a firewall\n"
          "or VPN (NAT, new sequence numbers and resegmentation are fine) and shows,\n"
          "per pair, every difference in the dialogue, TLS and TCP options, with the\n"
          "frame on each side and the rule it supports.  The order of the two files\n"
          "does not matter: masks show which side is which.\n"
          "\n"
          "Options:\n"
          "  -f, --format FMT     text (default) or json (JSON Lines)\n"
          "  -o, --output FILE    write to FILE instead of standard output\n"
          "      --html FILE      also write one self-contained HTML report to FILE\n"
          "      --names A,B      labels for the two captures (default outside,inside)\n"
          "  -v, --verbose        show every pair's dialogues side by side (default:\n"
          "                       only pairs with differences)\n"
          "  -c, --config FILE    YAML configuration (ports, limits, thresholds)\n"
          "  -p, --ports LIST     SMTP ports (default 25,587)\n"
          "      --tls-ports LIST implicit-TLS ports (default 465)\n"
          "      --no-detect      follow only the ports given\n"
          "  -q, --quiet          no progress line\n"
          "\n"
          "Exit status: 0 no difference beyond info, 1 differences, 2 usage error or\n"
          "unreadable input.\n",
          f);
}

enum { OPT_NAMES = 300, OPT_HTML, OPT_TLS_PORTS2, OPT_NO_DETECT2 };

int cli_compare(int argc, char **argv)
{
    struct an_options o;
    an_options_defaults(&o);
    o.quiet = true;
    const char *output = NULL, *html = NULL, *config = NULL, *ports = NULL, *tls_ports = NULL;
    char names_buf[256] = "";
    const char *names[2] = {"outside", "inside"};
    struct rep_cmp_options ro = {REP_TEXT, {NULL, NULL}, {NULL, NULL}, REP_CMP_DIALOGUE_CHANGED};
    static const struct option longopts[] = {
        {"format", required_argument, NULL, 'f'},
        {"output", required_argument, NULL, 'o'},
        {"html", required_argument, NULL, OPT_HTML},
        {"names", required_argument, NULL, OPT_NAMES},
        {"config", required_argument, NULL, 'c'},
        {"ports", required_argument, NULL, 'p'},
        {"tls-ports", required_argument, NULL, OPT_TLS_PORTS2},
        {"no-detect", no_argument, NULL, OPT_NO_DETECT2},
        {"verbose", no_argument, NULL, 'v'},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "f:o:c:p:vqh", longopts, NULL)) != -1) {
        switch (c) {
        case 'f':
            if (strcmp(optarg, "text") == 0) {
                ro.format = REP_TEXT;
            } else if (strcmp(optarg, "json") == 0) {
                ro.format = REP_JSON;
            } else {
                fprintf(stderr, "smtpscope: --format: \"%s\" is not one of text, json\n", optarg);
                return EXIT_USAGE;
            }
            break;
        case 'o':
            output = optarg;
            break;
        case OPT_HTML:
            html = optarg;
            break;
        case OPT_NAMES: {
            snprintf(names_buf, sizeof(names_buf), "%s", optarg);
            char *comma = strchr(names_buf, ',');
            if (!comma || comma == names_buf || !comma[1] || strchr(comma + 1, ',')) {
                fprintf(stderr,
                        "smtpscope: --names: \"%s\" is not two labels such as "
                        "dmz,lan\n",
                        optarg);
                return EXIT_USAGE;
            }
            *comma = 0;
            names[0] = names_buf;
            names[1] = comma + 1;
            break;
        }
        case 'c':
            config = optarg;
            break;
        case 'p':
            ports = optarg;
            break;
        case OPT_TLS_PORTS2:
            tls_ports = optarg;
            break;
        case OPT_NO_DETECT2:
            o.detect = false;
            break;
        case 'v':
            ro.dialogue = REP_CMP_DIALOGUE_ALL;
            break;
        case 'q':
            o.quiet = true;
            break;
        case 'h':
            cmpc__usage(stdout);
            return 0;
        default:
            fputs("Try 'smtpscope compare --help' for more information.\n", stderr);
            return EXIT_USAGE;
        }
    }
    if (argc - optind != 2) {
        fputs("smtpscope: compare needs two capture files: OUTSIDE INSIDE\n", stderr);
        fputs("Try 'smtpscope compare --help' for more information.\n", stderr);
        return EXIT_USAGE;
    }
    int rc = EXIT_USAGE;
    char err[CFG_ERR_MAX];
    struct cmp_capture cap[2];
    cmp_capture_init(&cap[0], names[0]);
    cmp_capture_init(&cap[1], names[1]);
    struct cmp_result res;
    memset(&res, 0, sizeof(res));
    FILE *out = stdout;
    if (config && cfg_load(config, &o, err, sizeof(err)) != 0) {
        fprintf(stderr, "smtpscope: %s\n", err);
        goto done;
    }
    if (ports && !cfg_parse_ports(ports, o.cap.ports, false)) {
        fprintf(stderr, "smtpscope: --ports: \"%s\" is not a list of ports 1-65535\n", ports);
        goto done;
    }
    if (tls_ports && !cfg_parse_ports(tls_ports, o.tls_ports, true)) {
        fprintf(stderr, "smtpscope: --tls-ports: \"%s\" is not a list of ports 1-65535\n",
                tls_ports);
        goto done;
    }
    for (int i = 0; i < 2; i++) {
        if (strcmp(argv[optind + i], "-") == 0) {
            fputs("smtpscope: compare reads files, not standard input\n", stderr);
            goto done;
        }
    }
    /* Both files are read even when the first fails, so every problem is told. */
    int st0 = cmpc__load(&o, argv[optind], &cap[0]);
    int st1 = cmpc__load(&o, argv[optind + 1], &cap[1]);
    if (cmp_run(&cap[0], &cap[1], &res) != 0) {
        fprintf(stderr, "smtpscope: out of memory comparing the captures\n");
        goto done;
    }
    /* cmp_run may have found the inputs the other way round: labels the user
     * gave stay with their files, the default ones name the roles. */
    ro.names[0] = names_buf[0] ? cap[0].name : "outside";
    ro.names[1] = names_buf[0] ? cap[1].name : "inside";
    ro.files[0] = argv[optind + (res.swapped ? 1 : 0)];
    ro.files[1] = argv[optind + (res.swapped ? 0 : 1)];
    if (output && strcmp(output, "-") != 0) {
        out = fopen(output, "w");
        if (!out) {
            fprintf(stderr, "smtpscope: %s: %s\n", output, strerror(errno));
            out = stdout;
            goto done;
        }
    }
    if (rep_compare(out, &ro, &cap[0], &cap[1], &res) != 0) {
        fprintf(stderr, "smtpscope: error writing output: %s\n", strerror(errno));
        goto done;
    }
    if (html) {
        FILE *h = fopen(html, "w");
        if (!h || rep_compare_html(h, &ro, &cap[0], &cap[1], &res) != 0 || fclose(h) != 0) {
            fprintf(stderr, "smtpscope: %s: %s\n", html, strerror(errno));
            goto done;
        }
    }
    rc = st0 == 2 || st1 == 2 ? 2 : res.worst > CMP_INFO ? 1 : 0;
done:
    if (out != stdout && fclose(out) != 0) {
        fprintf(stderr, "smtpscope: %s: %s\n", output, strerror(errno));
        rc = EXIT_USAGE;
    }
    cmp_result_free(&res);
    cmp_capture_free(&cap[0]);
    cmp_capture_free(&cap[1]);
    heur_config_free(&o.heur);
    return rc;
}
