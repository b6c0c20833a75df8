/* tshark_diff.c - differential test: smtpscope against Wireshark's SMTP
 * dissector on real third-party captures.
 *
 * For every capture under the shared pcaps folder (its INDEX.md lists them),
 * the sequence of client command verbs and server reply codes of each TCP
 * connection must be the same in
 *     smtpscope analyze -f json --transcript F
 * and in
 *     tshark -r F -Y smtp -T fields -e tcp.stream -e smtp.req.command
 *            -e smtp.response.code
 * (plus address fields to pair connections, and "-d tcp.port==P,smtp" for
 * the non-standard ports smtpscope found SMTP on, so both look at the same
 * connections).  Where they differ and tshark is the one that is wrong, the
 * difference is listed in the allowlist with the reason next to it; an
 * allowlist entry that no longer differs fails the test too, so the list
 * stays true.
 *
 * Usage: tshark_diff SMTPSCOPE PCAPS_DIR ALLOWLIST [-v]
 * Exit: 0 all agree (or allowlisted), 1 a difference, 77 skipped (no tshark
 * or no captures), 2 usage or tool error.
 */
#include <dirent.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/jv.h"

#define SKIP 77
#define MAX_TOKENS 100000

struct seq {
    char key[160]; /* "endpointA|endpointB", sorted */
    long stream;   /* tshark tcp.stream, or our session id */
    unsigned long first_frame;
    size_t n;
    char **tok; /* "C:EHLO" or "R:250" */
    bool used;
};

struct seqs {
    struct seq *v;
    size_t n;
};

struct allow {
    char *file;
    long stream; /* -1: every stream of the file */
    char *reason;
    bool hit;
};

static struct allow *allows;
static size_t nallows;
static bool verbose;

static void seq_add_tok(struct seq *s, const char *t)
{
    if (s->n >= MAX_TOKENS)
        return;
    s->tok = realloc(s->tok, (s->n + 1) * sizeof(*s->tok));
    s->tok[s->n++] = strdup(t);
}

static struct seq *seqs_new(struct seqs *ss)
{
    ss->v = realloc(ss->v, (ss->n + 1) * sizeof(*ss->v));
    struct seq *s = &ss->v[ss->n++];
    memset(s, 0, sizeof(*s));
    return s;
}

static void seqs_free(struct seqs *ss)
{
    for (size_t i = 0; i < ss->n; i++) {
        for (size_t k = 0; k < ss->v[i].n; k++)
            free(ss->v[i].tok[k]);
        free(ss->v[i].tok);
    }
    free(ss->v);
    ss->v = NULL;
    ss->n = 0;
}

static void make_key(char *out, size_t len, const char *a, const char *b)
{
    if (strcmp(a, b) <= 0)
        snprintf(out, len, "%s|%s", a, b);
    else
        snprintf(out, len, "%s|%s", b, a);
}

static void upcase(char *s)
{
    for (; *s; s++)
        if (*s >= 'a' && *s <= 'z')
            *s = (char)(*s - 'a' + 'A');
}

/* "C:STARTTLS" -> "C:STAR": Wireshark's smtp.req.command holds only the first
 * four characters of a command line (packet-smtp.c: cmdlen = 4), so verbs are
 * compared on those on both sides. */
static void verb4(char *tok)
{
    if (tok[0] == 'C' && strlen(tok) > 6)
        tok[6] = 0;
}

/* Reads a whole command's output. */
static char *run(const char *cmd)
{
    FILE *p = popen(cmd, "r");
    if (!p)
        return NULL;
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    size_t got;
    while ((got = fread(buf + len, 1, cap - len - 1, p)) > 0) {
        len += got;
        if (cap - len < 4096) {
            cap *= 2;
            buf = realloc(buf, cap);
        }
    }
    buf[len] = 0;
    pclose(p);
    return buf;
}

/* Our side: one seq per session, from the JSON transcript.  Collects the
 * non-standard server ports into ports (comma list for tshark -d). */
static int load_ours(const char *smtpscope, const char *file, struct seqs *out, char *ports,
                     size_t plen)
{
    char cmd[4096];
    snprintf(cmd, sizeof(cmd), "'%s' analyze -q -f json --transcript '%s' 2>/dev/null", smtpscope,
             file);
    char *txt = run(cmd);
    if (!txt)
        return -1;
    ports[0] = 0;
    for (char *line = strtok(txt, "\n"); line; line = strtok(NULL, "\n")) {
        char err[256];
        struct jv *r = jv_parse(line, err, sizeof(err));
        if (!r) {
            fprintf(stderr, "tshark_diff: %s: bad JSON from smtpscope: %s\n", file, err);
            free(txt);
            return -1;
        }
        if (strcmp(jv_text(jv_get(r, "type")), "session") == 0) {
            struct seq *s = seqs_new(out);
            const char *cl = jv_text(jv_get(r, "client"));
            const char *sv = jv_text(jv_get(r, "server"));
            make_key(s->key, sizeof(s->key), cl, sv);
            s->stream = atol(jv_text(jv_get(r, "id")));
            s->first_frame = strtoul(jv_text(jv_get(r, "first_frame")), NULL, 10);
            const char *colon = strrchr(sv, ':');
            /* Through a proxy, tshark finds SMTP by itself (SOCKS hands it
             * over); forcing the port to SMTP would hide the tunnel. */
            if (colon && jv_get(r, "proxy") && jv_get(r, "proxy")->type != JV_NULL)
                colon = NULL;
            if (colon) {
                int port = atoi(colon + 1);
                if (port != 25 && port != 587 && port != 465) {
                    char one[16];
                    snprintf(one, sizeof(one), "%d", port);
                    if (!strstr(ports, one) && strlen(ports) + 8 < plen) {
                        if (ports[0])
                            strcat(ports, ",");
                        strcat(ports, one);
                    }
                }
            }
            const struct jv *tr = jv_get(r, "transcript");
            for (size_t i = 0; tr && i < tr->n; i++) {
                const struct jv *e = tr->v[i];
                const char *kind = jv_text(jv_get(e, "kind"));
                char tok[96];
                if (strcmp(kind, "command") == 0) {
                    snprintf(tok, sizeof(tok), "C:%s", jv_text(jv_get(e, "cmd")));
                    upcase(tok);
                    verb4(tok);
                    seq_add_tok(s, tok);
                } else if (strcmp(kind, "reply") == 0 && strcmp(jv_text(jv_get(e, "code")), "0")) {
                    if (strcmp(jv_text(jv_get(e, "last")), "true") == 0) {
                        snprintf(tok, sizeof(tok), "R:%s", jv_text(jv_get(e, "code")));
                        seq_add_tok(s, tok);
                    }
                }
            }
        }
        jv_free(r);
    }
    free(txt);
    return 0;
}

/* tshark's side: one seq per tcp.stream that has SMTP frames. */
static int load_tshark(const char *file, const char *ports, struct seqs *out)
{
    char cmd[8192], dec[2048] = "";
    if (ports[0]) {
        char tmp[2048];
        snprintf(tmp, sizeof(tmp), "%s", ports);
        for (char *p = strtok(tmp, ","); p; p = strtok(NULL, ",")) {
            size_t l = strlen(dec);
            snprintf(dec + l, sizeof(dec) - l, " -d tcp.port==%s,smtp", p);
        }
    }
    snprintf(cmd, sizeof(cmd),
             "tshark -r '%s'%s -Y smtp -T fields -E separator=/t -E occurrence=a "
             "-E aggregator=, -e tcp.stream -e frame.number -e ip.src -e ipv6.src -e tcp.srcport "
             "-e ip.dst -e ipv6.dst -e tcp.dstport -e smtp.req.command -e smtp.response.code "
             "2>/dev/null",
             file, dec);
    char *txt = run(cmd);
    if (!txt)
        return -1;
    char *save = NULL;
    for (char *line = strtok_r(txt, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *f[10] = {0};
        int nf = 0;
        char *p = line;
        while (nf < 10) {
            f[nf++] = p;
            char *t = strchr(p, '\t');
            if (!t)
                break;
            *t = 0;
            p = t + 1;
        }
        if (nf < 10)
            continue;
        long stream = atol(f[0]);
        struct seq *s = NULL;
        for (size_t i = 0; i < out->n; i++)
            if (out->v[i].stream == stream)
                s = &out->v[i];
        if (!s) {
            s = seqs_new(out);
            s->stream = stream;
            s->first_frame = strtoul(f[1], NULL, 10);
            char a[80], b[80];
            const char *src = f[2][0] ? f[2] : f[3];
            const char *dst = f[5][0] ? f[5] : f[6];
            if (strchr(src, ':'))
                snprintf(a, sizeof(a), "[%s]:%s", src, f[4]);
            else
                snprintf(a, sizeof(a), "%s:%s", src, f[4]);
            if (strchr(dst, ':'))
                snprintf(b, sizeof(b), "[%s]:%s", dst, f[7]);
            else
                snprintf(b, sizeof(b), "%s:%s", dst, f[7]);
            make_key(s->key, sizeof(s->key), a, b);
        }
        char *save2 = NULL;
        for (char *c = strtok_r(f[8], ",", &save2); c; c = strtok_r(NULL, ",", &save2)) {
            char tok[96];
            snprintf(tok, sizeof(tok), "C:%s", c);
            upcase(tok);
            verb4(tok);
            seq_add_tok(s, tok);
        }
        for (char *c = strtok_r(f[9], ",", &save2); c; c = strtok_r(NULL, ",", &save2)) {
            char tok[96];
            snprintf(tok, sizeof(tok), "R:%s", c);
            seq_add_tok(s, tok);
        }
    }
    free(txt);
    return 0;
}

static bool same(const struct seq *a, const struct seq *b)
{
    if (a->n != b->n)
        return false;
    for (size_t i = 0; i < a->n; i++)
        if (strcmp(a->tok[i], b->tok[i]) != 0)
            return false;
    return true;
}

static void print_seq(const char *who, const struct seq *s)
{
    printf("      %-9s", who);
    for (size_t i = 0; s && i < s->n && i < 60; i++)
        printf(" %s", s->tok[i]);
    if (s && s->n > 60)
        printf(" ... (%zu)", s->n);
    printf("\n");
}

static struct allow *find_allow(const char *rel, long stream)
{
    for (size_t i = 0; i < nallows; i++)
        if (strcmp(allows[i].file, rel) == 0 &&
            (allows[i].stream < 0 || allows[i].stream == stream))
            return &allows[i];
    return NULL;
}

static void load_allowlist(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    char line[2048];
    while (fgets(line, sizeof(line), f)) {
        line[strcspn(line, "\n")] = 0;
        if (!line[0] || line[0] == '#')
            continue;
        char *a = strtok(line, "\t");
        char *b = strtok(NULL, "\t");
        char *c = strtok(NULL, "");
        if (!a || !b || !c)
            continue;
        allows = realloc(allows, (nallows + 1) * sizeof(*allows));
        allows[nallows].file = strdup(a);
        allows[nallows].stream = strcmp(b, "*") == 0 ? -1 : atol(b);
        allows[nallows].reason = strdup(c);
        allows[nallows].hit = false;
        nallows++;
    }
    fclose(f);
}

static char **files;
static size_t nfiles;

static void collect(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        struct stat st;
        if (stat(path, &st) != 0)
            continue;
        if (S_ISDIR(st.st_mode)) {
            collect(path);
        } else {
            size_t l = strlen(e->d_name);
            if ((l > 5 && strcmp(e->d_name + l - 5, ".pcap") == 0) ||
                (l > 7 && strcmp(e->d_name + l - 7, ".pcapng") == 0)) {
                files = realloc(files, (nfiles + 1) * sizeof(*files));
                files[nfiles++] = strdup(path);
            }
        }
    }
    closedir(d);
}

static int cmpstr(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: tshark_diff SMTPSCOPE PCAPS_DIR ALLOWLIST [-v]\n");
        return 2;
    }
    verbose = argc > 4 && strcmp(argv[4], "-v") == 0;
    const char *bin = argv[1], *dir = argv[2];
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        printf("SKIP: %s does not exist; the differential test against tshark needs the shared "
               "captures\n",
               dir);
        return SKIP;
    }
    if (system("tshark --version >/dev/null 2>&1") != 0) {
        printf("SKIP: tshark is not installed (apt-get install tshark); differential test "
               "skipped\n");
        return SKIP;
    }
    load_allowlist(argv[3]);
    collect(dir);
    qsort(files, nfiles, sizeof(*files), cmpstr);
    size_t dlen = strlen(dir);
    unsigned long n_caps = 0, n_match = 0, n_allowed = 0, n_fail = 0, n_sessions = 0;
    for (size_t fi = 0; fi < nfiles; fi++) {
        const char *rel = files[fi] + dlen + (files[fi][dlen] == '/');
        struct seqs ours = {0}, theirs = {0};
        char ports[512];
        if (load_ours(bin, files[fi], &ours, ports, sizeof(ports)) != 0 ||
            load_tshark(files[fi], ports, &theirs) != 0) {
            printf("ERROR %s: could not run the tools\n", rel);
            n_fail++;
            continue;
        }
        n_caps++;
        /* Pair connections by endpoints, in order of appearance. */
        for (size_t i = 0; i < theirs.n; i++) {
            struct seq *t = &theirs.v[i], *o = NULL;
            for (size_t k = 0; k < ours.n; k++) {
                if (!ours.v[k].used && strcmp(ours.v[k].key, t->key) == 0) {
                    o = &ours.v[k];
                    break;
                }
            }
            if (o)
                o->used = true;
            if (!o && t->n == 0)
                continue; /* tshark saw only message data or TLS: nothing to compare */
            n_sessions++;
            bool ok = o && same(o, t);
            if (ok) {
                n_match++;
                continue;
            }
            struct allow *al = find_allow(rel, t->stream);
            if (al) {
                al->hit = true;
                n_allowed++;
                if (verbose) {
                    printf("ALLOWED %s stream %ld: %s\n", rel, t->stream, al->reason);
                    print_seq("smtpscope", o);
                    print_seq("tshark", t);
                }
                continue;
            }
            n_fail++;
            printf("DIFF %s tcp.stream %ld (%s)\n", rel, t->stream, t->key);
            print_seq("smtpscope", o);
            print_seq("tshark", t);
        }
        for (size_t k = 0; k < ours.n; k++) {
            struct seq *o = &ours.v[k];
            if (o->used || o->n == 0)
                continue;
            n_sessions++;
            struct allow *al = find_allow(rel, LONG_MIN); /* only a "*" entry covers it */
            if (al) {
                al->hit = true;
                n_allowed++;
                continue;
            }
            n_fail++;
            printf("ONLY-SMTPSCOPE %s session %ld (%s)\n", rel, o->stream, o->key);
            print_seq("smtpscope", o);
        }
        seqs_free(&ours);
        seqs_free(&theirs);
    }
    for (size_t i = 0; i < nallows; i++) {
        if (!allows[i].hit) {
            printf("STALE allowlist entry (no longer differs): %s %ld\n", allows[i].file,
                   allows[i].stream);
            n_fail++;
        }
    }
    printf("tshark_diff: %lu captures, %lu sessions compared: %lu identical, %lu allowlisted, "
           "%lu failing\n",
           n_caps, n_sessions, n_match, n_allowed, n_fail);
    return n_fail ? 1 : 0;
}
