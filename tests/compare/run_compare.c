/* run_compare.c - `smtpscope compare` on every two-sided synthesized capture
 * against the synthesizer's compare oracle (pcaps/synth-NAME.compare.yaml).
 *
 * For each scenario: every session must be paired (none left on one side),
 * and per pair the set of differences above severity info, as "kind rule"
 * ("-" for no rule), must equal the oracle's (or be a subset of it when the
 * scenario loses capture data: `exact: false`).  Where the differences show
 * which capture is which (masks, deleted keyword lines), the captures are
 * also given the other way round: compare must notice, say so, and find
 * the same differences.
 *
 * Usage: run_compare SMTPSCOPE PCAPS_DIR
 * Exit: 0 all agree, 1 a difference, 2 setup error.
 */
#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/jv.h"

static int failures;

static char *slurp(const char *cmd)
{
    FILE *p = popen(cmd, "r");
    if (!p)
        return NULL;
    size_t cap = 1 << 16, len = 0, k;
    char *buf = malloc(cap);
    while (buf && (k = fread(buf + len, 1, cap - len - 1, p)) > 0) {
        len += k;
        if (cap - len < 2) {
            char *nb = realloc(buf, cap *= 2);
            if (!nb)
                free(buf);
            buf = nb;
        }
    }
    pclose(p);
    if (buf)
        buf[len] = 0;
    return buf;
}

static bool exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0;
}

/* Per outside client: the "kind rule" strings found, sorted, joined. */
struct found {
    char client[80];
    char diffs[2048];
};

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Runs compare; fills up to max entries; returns how many, -1 on error. */
static int run(const char *bin, const char *a, const char *b, struct found *f, int max,
               bool *swapped, int *only)
{
    char cmd[8192];
    snprintf(cmd, sizeof(cmd), "'%s' compare -f json '%s' '%s'", bin, a, b);
    char *out = slurp(cmd);
    if (!out)
        return -1;
    /* pair number -> outside client, and each pair's differences */
    char clients[256][80];
    char *lists[256][64];
    int nl[256];
    memset(nl, 0, sizeof(nl));
    memset(clients, 0, sizeof(clients));
    int npairs = 0;
    char *save = NULL;
    for (char *line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char err[256];
        struct jv *r = jv_parse(line, err, sizeof(err));
        if (!r)
            continue;
        const char *type = jv_text(jv_get(r, "type"));
        int pair = atoi(jv_text(jv_get(r, "pair")));
        if (strcmp(type, "session") == 0 && pair > 0 && pair < 256 &&
            strcmp(jv_text(jv_get(r, "side")), "outside") == 0) {
            snprintf(clients[pair], sizeof(clients[pair]), "%s", jv_text(jv_get(r, "client")));
            if (pair > npairs)
                npairs = pair;
        } else if (strcmp(type, "diff") == 0 && pair > 0 && pair < 256 &&
                   strcmp(jv_text(jv_get(r, "severity")), "info") != 0 && nl[pair] < 64) {
            const struct jv *rule = jv_get(r, "rule");
            char kr[128];
            snprintf(kr, sizeof(kr), "%s %s", jv_text(jv_get(r, "kind")),
                     rule && rule->type == JV_STR ? jv_text(rule) : "-");
            bool dup = false;
            for (int i = 0; i < nl[pair]; i++)
                dup = dup || strcmp(lists[pair][i], kr) == 0;
            if (!dup)
                lists[pair][nl[pair]++] = strdup(kr);
        } else if (strcmp(type, "summary") == 0) {
            *swapped = strcmp(jv_text(jv_get(r, "swapped")), "true") == 0;
            *only =
                atoi(jv_text(jv_get(r, "only_outside"))) + atoi(jv_text(jv_get(r, "only_inside")));
        }
        jv_free(r);
    }
    free(out);
    int n = 0;
    for (int p = 1; p <= npairs && n < max; p++) {
        qsort(lists[p], (size_t)nl[p], sizeof(char *), cmp_str);
        snprintf(f[n].client, sizeof(f[n].client), "%s", clients[p]);
        f[n].diffs[0] = 0;
        for (int i = 0; i < nl[p]; i++) {
            size_t l = strlen(f[n].diffs);
            snprintf(f[n].diffs + l, sizeof(f[n].diffs) - l, "%s%s", i ? ", " : "", lists[p][i]);
            free(lists[p][i]);
        }
        n++;
    }
    return n;
}

/* Whether every entry of got (", "-joined) is in want. */
static bool subset(const char *got, const char *want)
{
    char tmp[2048];
    snprintf(tmp, sizeof(tmp), "%s", got);
    char *save = NULL;
    for (char *t = strtok_r(tmp, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        while (*t == ' ')
            t++;
        char needle[140];
        snprintf(needle, sizeof(needle), "%s", t);
        bool in = false;
        char w[2048];
        snprintf(w, sizeof(w), "%s", want);
        char *s2 = NULL;
        for (char *u = strtok_r(w, ",", &s2); u; u = strtok_r(NULL, ",", &s2)) {
            while (*u == ' ')
                u++;
            in = in || strcmp(u, needle) == 0;
        }
        if (!in)
            return false;
    }
    return true;
}

static void check(const char *bin, const char *dir, const char *name)
{
    char path[4096], a[4096], b[4096];
    snprintf(path, sizeof(path), "%s/synth-%s.compare.yaml", dir, name);
    char err[512];
    struct jv *exp = jv_load_yaml(path, err, sizeof(err));
    if (!exp) {
        printf("FAIL %s: %s\n", path, err);
        failures++;
        return;
    }
    const char *ext = "pcap";
    snprintf(a, sizeof(a), "%s/synth-%s.pcap", dir, name);
    if (!exists(a))
        ext = "pcapng";
    snprintf(a, sizeof(a), "%s/synth-%s.%s", dir, name, ext);
    snprintf(b, sizeof(b), "%s/synth-%s-inside.%s", dir, name, ext);
    bool exact = strcmp(jv_text(jv_get(exp, "exact")), "true") == 0;
    const struct jv *pairs = jv_get(exp, "pairs");
    int before = failures;
    bool evident = false;
    for (int order = 0; order < 2; order++) {
        if (order == 1 && !evident)
            break;
        struct found f[256];
        bool swapped = false;
        int only = 0;
        int n = order == 0 ? run(bin, a, b, f, 256, &swapped, &only)
                           : run(bin, b, a, f, 256, &swapped, &only);
        const char *how = order == 0 ? "" : " (given inside first)";
        if (n < 0) {
            printf("FAIL %s: cannot run compare\n", name);
            failures++;
            break;
        }
        if (only)
            printf("FAIL %s%s: %d sessions left unpaired\n", name, how, only), failures++;
        if (swapped != (order == 1))
            printf("FAIL %s%s: swapped=%d\n", name, how, swapped), failures++;
        if ((size_t)n != (pairs ? pairs->n : 0))
            printf("FAIL %s%s: %d pairs, expected %zu\n", name, how, n, pairs ? pairs->n : 0),
                failures++;
        for (size_t i = 0; pairs && i < pairs->n; i++) {
            const struct jv *p = pairs->v[i];
            const struct jv *dl = jv_get(p, "diffs");
            char want[2048] = "";
            for (size_t k = 0; dl && k < dl->n; k++) {
                size_t l = strlen(want);
                snprintf(want + l, sizeof(want) - l, "%s%s", k ? ", " : "", jv_text(dl->v[k]));
                const char *t = jv_text(dl->v[k]);
                evident = evident || strncmp(t, "masked ", 7) == 0 ||
                          strcmp(t, "removed ehlo_keyword_masked") == 0;
            }
            const char *client = jv_text(jv_get(p, "client"));
            const struct found *g = NULL;
            for (int k = 0; k < n && !g; k++)
                if (strcmp(f[k].client, client) == 0)
                    g = &f[k];
            if (!g) {
                printf("FAIL %s%s: no pair for %s\n", name, how, client);
                failures++;
                continue;
            }
            bool ok = exact ? strcmp(g->diffs, want) == 0 : subset(g->diffs, want);
            if (!ok) {
                printf("FAIL %s%s %s: expected %s[%s], got [%s]\n", name, how, client,
                       exact ? "" : "at most ", want, g->diffs);
                failures++;
            }
        }
    }
    printf("%s %s\n", failures == before ? "ok  " : "FAIL", name);
    jv_free(exp);
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: run_compare SMTPSCOPE PCAPS_DIR\n");
        return 2;
    }
    DIR *d = opendir(argv[2]);
    if (!d) {
        fprintf(stderr, "run_compare: cannot open %s\n", argv[2]);
        return 2;
    }
    struct dirent *de;
    int n = 0;
    while ((de = readdir(d))) {
        const char *suf = ".compare.yaml";
        size_t l = strlen(de->d_name), sl = strlen(suf);
        if (l <= sl + 6 || strcmp(de->d_name + l - sl, suf) != 0 ||
            strncmp(de->d_name, "synth-", 6) != 0)
            continue;
        char name[256];
        snprintf(name, sizeof(name), "%.*s", (int)(l - sl - 6), de->d_name + 6);
        check(argv[1], argv[2], name);
        n++;
    }
    closedir(d);
    if (n == 0) {
        fprintf(stderr, "run_compare: no synth-*.compare.yaml in %s\n", argv[2]);
        return 2;
    }
    printf("run_compare: %d scenarios, %d failures\n", n, failures);
    return failures ? 1 : 0;
}
