/* clean_gate.c - the false-alarm gate: real captures of ordinary mail must
 * not raise findings.
 *
 * Runs `smtpscope analyze -q -f json` on every capture given (directories
 * are walked for *.pcap, *.pcapng and *.cap files) and fails when:
 *   - any finding is of severity medium or high;
 *   - a low or info finding is not explained in the list file;
 *   - an entry of the list file no longer happens (the list stays honest).
 *
 * List file: one entry a line, "PATH<TAB>RULE<TAB>SEVERITY<TAB>why", PATH as
 * given relative to its root (for ../shared/pcaps: "nDPI/tests/.../x.pcap");
 * '#' starts a comment.
 *
 * Usage: clean_gate SMTPSCOPE LIST ROOT...
 *   A ROOT that does not exist is skipped; when none exists the exit status
 *   is 77 (ctest SKIP_RETURN_CODE).
 * Exit: 0 clean, 1 a false alarm or a stale entry, 2 setup error, 77 skipped.
 */
#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "common/jv.h"

#define GATE_MAX_ENTRIES 1024

struct entry {
    char *path, *rule, *sev;
    bool seen;
};

struct gate {
    const char *bin;
    struct entry e[GATE_MAX_ENTRIES];
    size_t n;
    int failures;
    size_t captures, findings;
};

static bool has_suffix(const char *s, const char *suf)
{
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && strcmp(s + a - b, suf) == 0;
}

static char *slurp_cmd(const char *cmd)
{
    FILE *p = popen(cmd, "r");
    if (!p)
        return NULL;
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    size_t k;
    while (buf && (k = fread(buf + len, 1, cap - len - 1, p)) > 0) {
        len += k;
        if (cap - len < 2) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
    }
    pclose(p);
    if (buf)
        buf[len] = 0;
    return buf;
}

static void check(struct gate *g, const char *full, const char *rel)
{
    char cmd[8192];
    snprintf(cmd, sizeof(cmd), "'%s' analyze -q -f json '%s' 2>/dev/null", g->bin, full);
    char *out = slurp_cmd(cmd);
    if (!out) {
        printf("FAIL %s: cannot run %s\n", rel, g->bin);
        g->failures++;
        return;
    }
    g->captures++;
    char *save = NULL;
    for (char *line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char err[256];
        struct jv *r = jv_parse(line, err, sizeof(err));
        if (!r)
            continue;
        if (strcmp(jv_text(jv_get(r, "type")), "finding") != 0) {
            jv_free(r);
            continue;
        }
        g->findings++;
        const char *rule = jv_text(jv_get(r, "rule"));
        const char *sev = jv_text(jv_get(r, "severity"));
        if (strcmp(sev, "medium") == 0 || strcmp(sev, "high") == 0) {
            printf("FAIL %s: %s finding %s at frame %s: %s\n", rel, sev, rule,
                   jv_text(jv_get(r, "frame")), jv_text(jv_get(r, "evidence")));
            g->failures++;
        } else {
            bool listed = false;
            for (size_t i = 0; i < g->n; i++) {
                struct entry *e = &g->e[i];
                if (strcmp(e->path, rel) == 0 && strcmp(e->rule, rule) == 0 &&
                    strcmp(e->sev, sev) == 0) {
                    e->seen = true;
                    listed = true;
                }
            }
            if (!listed) {
                printf("FAIL %s: %s finding %s at frame %s is not explained in the list: %s\n", rel,
                       sev, rule, jv_text(jv_get(r, "frame")), jv_text(jv_get(r, "evidence")));
                g->failures++;
            }
        }
        jv_free(r);
    }
    free(out);
}

static void walk(struct gate *g, const char *root, const char *rel)
{
    char full[4096];
    snprintf(full, sizeof(full), "%s%s%s", root, rel[0] ? "/" : "", rel);
    struct stat st;
    if (stat(full, &st) != 0)
        return;
    if (S_ISREG(st.st_mode)) {
        if (has_suffix(rel, ".pcap") || has_suffix(rel, ".pcapng") || has_suffix(rel, ".cap"))
            check(g, full, rel);
        return;
    }
    if (!S_ISDIR(st.st_mode))
        return;
    DIR *d = opendir(full);
    if (!d)
        return;
    /* Sorted, so the report reads the same on every machine. */
    char **names = NULL;
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        names = realloc(names, (n + 1) * sizeof(*names));
        names[n++] = strdup(de->d_name);
    }
    closedir(d);
    for (size_t i = 1; i < n; i++)
        for (size_t k = i; k > 0 && strcmp(names[k - 1], names[k]) > 0; k--) {
            char *t = names[k];
            names[k] = names[k - 1];
            names[k - 1] = t;
        }
    for (size_t i = 0; i < n; i++) {
        char sub[4096];
        snprintf(sub, sizeof(sub), "%s%s%s", rel, rel[0] ? "/" : "", names[i]);
        walk(g, root, sub);
        free(names[i]);
    }
    free(names);
}

static int load_list(struct gate *g, const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "clean_gate: %s: cannot open\n", path);
        return -1;
    }
    char line[2048];
    while (fgets(line, sizeof(line), f)) {
        line[strcspn(line, "\r\n")] = 0;
        if (line[0] == '#' || line[0] == 0)
            continue;
        char *save = NULL;
        char *p = strtok_r(line, "\t", &save);
        char *r = strtok_r(NULL, "\t", &save);
        char *s = strtok_r(NULL, "\t", &save);
        char *why = strtok_r(NULL, "\t", &save);
        if (!p || !r || !s || !why || g->n >= GATE_MAX_ENTRIES) {
            fprintf(stderr, "clean_gate: %s: bad entry (PATH TAB RULE TAB SEVERITY TAB why)\n",
                    path);
            fclose(f);
            return -1;
        }
        g->e[g->n++] = (struct entry){strdup(p), strdup(r), strdup(s), false};
    }
    fclose(f);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: clean_gate SMTPSCOPE LIST ROOT...\n");
        return 2;
    }
    static struct gate g;
    g.bin = argv[1];
    if (load_list(&g, argv[2]) != 0)
        return 2;
    bool any = false;
    for (int i = 3; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) {
            printf("clean_gate: %s does not exist, skipped\n", argv[i]);
            continue;
        }
        any = true;
        if (S_ISDIR(st.st_mode)) {
            walk(&g, argv[i], "");
        } else {
            const char *base = strrchr(argv[i], '/');
            check(&g, argv[i], base ? base + 1 : argv[i]);
        }
    }
    if (!any) {
        printf("clean_gate: no capture root exists: skipped\n");
        return 77;
    }
    /* Entries for roots that were not there cannot be judged stale. */
    for (size_t i = 0; i < g.n; i++) {
        if (!g.e[i].seen) {
            bool present = false;
            for (int k = 3; k < argc && !present; k++) {
                char full[4096];
                snprintf(full, sizeof(full), "%s/%s", argv[k], g.e[i].path);
                struct stat st;
                present =
                    stat(full, &st) == 0 ||
                    (strrchr(argv[k], '/') && strcmp(strrchr(argv[k], '/') + 1, g.e[i].path) == 0);
            }
            if (present) {
                printf("FAIL %s: listed %s %s finding no longer happens: update the list\n",
                       g.e[i].path, g.e[i].sev, g.e[i].rule);
                g.failures++;
            }
        }
        free(g.e[i].path);
        free(g.e[i].rule);
        free(g.e[i].sev);
    }
    printf("clean_gate: %zu captures, %zu findings, %d failures\n", g.captures, g.findings,
           g.failures);
    return g.failures ? 1 : 0;
}
