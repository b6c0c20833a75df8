/* mirror.c - a real capture and its synthesized mirror give the same session
 * record.
 *
 * Runs smtpscope on both captures and compares every field of their session
 * records except the ones named on the command line (addresses, times and
 * frame numbers always differ; message bodies and queue ids are not
 * reproduced byte for byte, so byte counts differ too).
 *
 * Usage: mirror SMTPSCOPE REAL.pcap SYNTH.pcap [IGNORED_KEY_OR_PATH...]
 * Exit: 0 same, 1 different, 2 error.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/jv.h"

static struct jv *first_session(const char *bin, const char *file)
{
    char cmd[4096];
    snprintf(cmd, sizeof(cmd), "'%s' analyze -q -f json '%s'", bin, file);
    FILE *p = popen(cmd, "r");
    if (!p)
        return NULL;
    char line[1 << 16];
    struct jv *found = NULL;
    while (!found && fgets(line, sizeof(line), p)) {
        char err[256];
        struct jv *r = jv_parse(line, err, sizeof(err));
        if (r && strcmp(jv_text(jv_get(r, "type")), "session") == 0)
            found = r;
        else
            jv_free(r);
    }
    while (fgets(line, sizeof(line), p))
        ;
    pclose(p);
    return found;
}

static int diffs;
static char **ignored;
static int nignored;

/* A key on the command line names a field ("tcp") or a path into one
 * ("tls.chain"): it and everything under it are skipped. */
static bool is_ignored(const char *path)
{
    for (int k = 0; k < nignored; k++) {
        size_t n = strlen(ignored[k]);
        if (strncmp(path, ignored[k], n) == 0 && (path[n] == 0 || path[n] == '.' || path[n] == '['))
            return true;
    }
    return false;
}

static void cmp(const char *path, const struct jv *a, const struct jv *b)
{
    if (is_ignored(path))
        return;
    if (!a || !b || a->type != b->type) {
        printf("  %s: %s vs %s\n", path, jv_text(a), jv_text(b));
        diffs++;
        return;
    }
    if (a->type == JV_OBJ || a->type == JV_ARR) {
        if (a->n != b->n) {
            printf("  %s: %zu vs %zu items\n", path, a->n, b->n);
            diffs++;
            return;
        }
        for (size_t i = 0; i < a->n; i++) {
            char sub[512];
            if (a->type == JV_OBJ)
                snprintf(sub, sizeof(sub), "%s.%s", path, a->k[i]);
            else
                snprintf(sub, sizeof(sub), "%s[%zu]", path, i);
            cmp(sub, a->v[i], a->type == JV_OBJ ? jv_get(b, a->k[i]) : b->v[i]);
        }
        return;
    }
    if (strcmp(jv_text(a), jv_text(b)) != 0) {
        printf("  %s: \"%s\" vs \"%s\"\n", path, jv_text(a), jv_text(b));
        diffs++;
    }
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: mirror SMTPSCOPE REAL SYNTH [IGNORED_KEY...]\n");
        return 2;
    }
    struct jv *a = first_session(argv[1], argv[2]);
    struct jv *b = first_session(argv[1], argv[3]);
    if (!a || !b) {
        fprintf(stderr, "mirror: no session record in %s\n", a ? argv[3] : argv[2]);
        return 2;
    }
    ignored = argv + 4;
    nignored = argc - 4;
    size_t compared = 0;
    for (size_t i = 0; i < a->n; i++) {
        if (is_ignored(a->k[i]))
            continue;
        cmp(a->k[i], a->v[i], jv_get(b, a->k[i]));
        compared++;
    }
    printf("mirror: %zu fields compared, %d differ\n", compared, diffs);
    jv_free(a);
    jv_free(b);
    return diffs ? 1 : 0;
}
