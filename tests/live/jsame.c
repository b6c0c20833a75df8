/* jsame.c - do two JSON Lines outputs hold the same session and finding
 * records, apart from what differs between a file and a live capture?
 *
 * Keeps the records whose "type" is session or finding, removes the keys
 * named on the command line at every depth (times, frame numbers, the input
 * name), writes each record in one canonical form (keys sorted), sorts the
 * records and compares the two lists.
 *
 * Usage: jsame A.jsonl B.jsonl [IGNORED_KEY...]
 * Exit: 0 same, 1 different (the first difference is printed), 2 error.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/escape.h"
#include "common/jv.h"

static char **ignored;
static int nignored;

static bool is_ignored(const char *k)
{
    for (int i = 0; i < nignored; i++)
        if (strcmp(ignored[i], k) == 0)
            return true;
    return false;
}

static void canon(struct sc_buf *b, const struct jv *v)
{
    switch (v->type) {
    case JV_OBJ: {
        /* keys in order, ignored ones left out */
        size_t *ix = malloc((v->n ? v->n : 1) * sizeof(*ix));
        size_t n = 0;
        for (size_t i = 0; i < v->n; i++)
            if (!is_ignored(v->k[i]))
                ix[n++] = i;
        for (size_t i = 1; i < n; i++)
            for (size_t k = i; k > 0 && strcmp(v->k[ix[k - 1]], v->k[ix[k]]) > 0; k--) {
                size_t t = ix[k];
                ix[k] = ix[k - 1];
                ix[k - 1] = t;
            }
        sc_buf_putc(b, '{');
        for (size_t i = 0; i < n; i++) {
            sc_buf_printf(b, "%s\"%s\":", i ? "," : "", v->k[ix[i]]);
            canon(b, v->v[ix[i]]);
        }
        sc_buf_putc(b, '}');
        free(ix);
        break;
    }
    case JV_ARR:
        sc_buf_putc(b, '[');
        for (size_t i = 0; i < v->n; i++) {
            if (i)
                sc_buf_putc(b, ',');
            canon(b, v->v[i]);
        }
        sc_buf_putc(b, ']');
        break;
    case JV_STR:
        sc_buf_putc(b, '"');
        sc_json_escape(b, v->s, strlen(v->s));
        sc_buf_putc(b, '"');
        break;
    default:
        sc_buf_puts(b, jv_text(v));
        break;
    }
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static char **load(const char *path, size_t *n)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "jsame: cannot open %s\n", path);
        exit(2);
    }
    char **v = NULL;
    *n = 0;
    static char line[1 << 20];
    while (fgets(line, sizeof(line), f)) {
        char err[256];
        struct jv *r = jv_parse(line, err, sizeof(err));
        if (!r)
            continue;
        const char *t = jv_text(jv_get(r, "type"));
        if (strcmp(t, "session") == 0 || strcmp(t, "finding") == 0) {
            struct sc_buf b;
            sc_buf_init(&b, 0);
            canon(&b, r);
            v = realloc(v, (*n + 1) * sizeof(*v));
            v[(*n)++] = strdup(sc_buf_str(&b));
            sc_buf_free(&b);
        }
        jv_free(r);
    }
    fclose(f);
    qsort(v, *n, sizeof(*v), cmp_str);
    return v;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: jsame A.jsonl B.jsonl [IGNORED_KEY...]\n");
        return 2;
    }
    ignored = argv + 3;
    nignored = argc - 3;
    size_t na, nb;
    char **a = load(argv[1], &na), **b = load(argv[2], &nb);
    int rc = 0;
    if (na != nb) {
        printf("jsame: %zu records in %s, %zu in %s\n", na, argv[1], nb, argv[2]);
        rc = 1;
    }
    for (size_t i = 0; i < na && i < nb && rc == 0; i++) {
        if (strcmp(a[i], b[i]) != 0) {
            printf("jsame: records differ:\n  %s\n  %s\n", a[i], b[i]);
            rc = 1;
        }
    }
    if (rc == 0)
        printf("jsame: %zu records, the same\n", na);
    for (size_t i = 0; i < na; i++)
        free(a[i]);
    for (size_t i = 0; i < nb; i++)
        free(b[i]);
    free(a);
    free(b);
    return rc;
}
