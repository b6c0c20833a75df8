/* run_golden.c - checks the golden captures through the real CLI.
 *
 * For every pcaps/<case>.expect.yaml, runs
 *     smtpscope analyze -q -f json --transcript pcaps/<case>.pcap   (and .pcapng)
 * and compares each expected session with the session record of the same
 * index, field by field: every key in the expectation must be present in the
 * record with an equal value ('*' in an expected string matches any run of
 * characters; mappings compare recursively, lists element by element and in
 * full).  Two keys are derived from the transcript rather than read from the
 * record: `commands` (client command verbs in order) and `replies` (one code
 * per complete reply).  `absent_strings` must appear nowhere in the JSON
 * output nor in the verbose text output (credentials).  The number of
 * sessions must match exactly.  `findings` is the set of rule ids the
 * session must show (its record's list plus cross-session finding records
 * about it), `findings_at_most` a set it may only fall short of (lossy
 * captures); top-level `inconsistent_servers` lists the servers that must get
 * an inconsistent_server finding, and no others.
 *
 * With --records, nothing is run: the records of a JSON Lines file that
 * already exists (the output of `smtpscope live`, say) are compared with one
 * expectation the same way, restricted to the session keys named, if any
 * (see check_records_file).
 *
 * Usage: run_golden SMTPSCOPE PCAPS_DIR [CASE...]
 *        run_golden --records FILE.jsonl EXPECT.yaml [KEY...]
 * Exit: 0 all cases pass, 1 a case fails, 2 usage or setup error.
 */
#include <dirent.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "common/jv.h"

static int failures;

static char *run(const char *cmd, int *status)
{
    FILE *p = popen(cmd, "r");
    if (!p)
        return NULL;
    size_t cap = 1 << 16, len = 0, got;
    char *buf = malloc(cap);
    while ((got = fread(buf + len, 1, cap - len - 1, p)) > 0) {
        len += got;
        if (cap - len < 4096) {
            cap *= 2;
            buf = realloc(buf, cap);
        }
    }
    buf[len] = 0;
    int st = pclose(p);
    *status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return buf;
}

/* '*' matches any run of characters; everything else literally. */
static bool glob(const char *pat, const char *s)
{
    if (*pat == 0)
        return *s == 0;
    if (*pat == '*') {
        for (const char *t = s;; t++) {
            if (glob(pat + 1, t))
                return true;
            if (*t == 0)
                return false;
        }
    }
    return *s && *s == *pat && glob(pat + 1, s + 1);
}

static void fail(const char *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void fail(const char *ctx, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("  FAIL %s: ", ctx);
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    failures++;
}

/* Compares expected e with actual a; ctx names the field for messages. */
static void compare(const char *ctx, const struct jv *e, const struct jv *a)
{
    if (!a) {
        fail(ctx, "missing (expected %s)", jv_text(e));
        return;
    }
    switch (e->type) {
    case JV_OBJ:
        if (a->type != JV_OBJ) {
            fail(ctx, "expected a mapping, got %s", jv_text(a));
            return;
        }
        for (size_t i = 0; i < e->n; i++) {
            char sub[256];
            snprintf(sub, sizeof(sub), "%s.%s", ctx, e->k[i]);
            compare(sub, e->v[i], jv_get(a, e->k[i]));
        }
        return;
    case JV_ARR:
        if (a->type != JV_ARR) {
            fail(ctx, "expected a list, got %s", jv_text(a));
            return;
        }
        if (a->n != e->n) {
            char en[32], an[32];
            snprintf(en, sizeof(en), "%zu", e->n);
            snprintf(an, sizeof(an), "%zu", a->n);
            fail(ctx, "expected %s items, got %s", en, an);
        }
        for (size_t i = 0; i < e->n && i < a->n; i++) {
            char sub[256];
            snprintf(sub, sizeof(sub), "%s[%zu]", ctx, i);
            compare(sub, e->v[i], a->v[i]);
        }
        return;
    default:
        if (!glob(jv_text(e), jv_text(a)))
            fail(ctx, "expected \"%s\", got \"%s\"", jv_text(e), jv_text(a));
        return;
    }
}

/* Builds the derived `commands` or `replies` list from a transcript. */
/* A small sorted set of strings. */
struct strset {
    char **v;
    size_t n;
};

static void strset_add(struct strset *s, const char *x)
{
    size_t i = 0;
    while (i < s->n && strcmp(s->v[i], x) < 0)
        i++;
    if (i < s->n && strcmp(s->v[i], x) == 0)
        return;
    s->v = realloc(s->v, (s->n + 1) * sizeof(*s->v));
    memmove(&s->v[i + 1], &s->v[i], (s->n - i) * sizeof(*s->v));
    s->v[i] = strdup(x);
    s->n++;
}

static bool strset_has(const struct strset *s, const char *x)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->v[i], x) == 0)
            return true;
    return false;
}

static void strset_free(struct strset *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->v[i]);
    free(s->v);
}

static void strset_join(const struct strset *s, char *out, size_t n)
{
    size_t o = 0;
    out[0] = 0;
    for (size_t i = 0; i < s->n && o < n; i++)
        o += (size_t)snprintf(out + o, n - o, "%s%s", i ? ", " : "", s->v[i]);
}

/* The rule ids a session showed: those its record lists, plus the
 * cross-session findings reported about it at the end (inconsistent_server
 * is checked per server, not per session). */
static void session_findings(const struct jv *sess, struct jv **findings, size_t nfind,
                             struct strset *out)
{
    const struct jv *l = jv_get(sess, "findings");
    for (size_t i = 0; l && i < l->n; i++)
        strset_add(out, jv_text(l->v[i]));
    const char *id = jv_text(jv_get(sess, "id"));
    for (size_t i = 0; i < nfind; i++) {
        const char *rule = jv_text(jv_get(findings[i], "rule"));
        if (strcmp(jv_text(jv_get(findings[i], "session")), id) == 0 &&
            strcmp(rule, "inconsistent_server") != 0)
            strset_add(out, rule);
    }
}

/* exact: the sets must be equal; otherwise got must be a subset. */
static void check_findings(const char *ctx, const struct jv *want, const struct strset *got,
                           bool exact)
{
    struct strset w = {0};
    for (size_t i = 0; want && i < want->n; i++)
        strset_add(&w, jv_text(want->v[i]));
    bool ok = true;
    for (size_t i = 0; i < got->n; i++)
        ok = ok && strset_has(&w, got->v[i]);
    for (size_t i = 0; exact && i < w.n; i++)
        ok = ok && strset_has(got, w.v[i]);
    if (!ok) {
        char a[1024], b[1024];
        strset_join(&w, a, sizeof(a));
        strset_join(got, b, sizeof(b));
        fail(ctx, "expected %s[%s], got [%s]", exact ? "" : "at most ", a, b);
    }
    strset_free(&w);
}

static struct jv *derive(const struct jv *transcript, bool commands)
{
    char err[128];
    struct jv *out = jv_parse("[]", err, sizeof(err));
    for (size_t i = 0; transcript && i < transcript->n; i++) {
        const struct jv *t = transcript->v[i];
        const char *kind = jv_text(jv_get(t, "kind"));
        char item[128];
        if (commands && strcmp(kind, "command") == 0 && !jv_get(t, "incomplete")) {
            snprintf(item, sizeof(item), "\"%s\"", jv_text(jv_get(t, "cmd")));
        } else if (!commands && strcmp(kind, "reply") == 0 &&
                   strcmp(jv_text(jv_get(t, "last")), "true") == 0 &&
                   strcmp(jv_text(jv_get(t, "code")), "0") != 0) {
            snprintf(item, sizeof(item), "\"%s\"", jv_text(jv_get(t, "code")));
        } else {
            continue;
        }
        struct jv *v = jv_parse(item, err, sizeof(err));
        if (!v)
            continue;
        out->v = realloc(out->v, (out->n + 1) * sizeof(*out->v));
        out->v[out->n++] = v;
    }
    return out;
}

/* The session keys a check compares: every key of each expected session
 * (n == 0), or only the n keys in v (run_golden --records ... KEY...). */
struct keyset {
    char *const *v;
    int n;
};

static bool key_wanted(const struct keyset *keys, const char *k)
{
    if (keys->n == 0)
        return true;
    for (int i = 0; i < keys->n; i++)
        if (strcmp(keys->v[i], k) == 0)
            return true;
    return false;
}

/* Compares the session and finding records in json (JSON Lines, as
 * `smtpscope analyze -f json` or `smtpscope live -f json` writes them) with
 * the expectation. */
static void check_records(const char *json, const struct jv *exp, const struct keyset *keys)
{
    struct jv **sessions = NULL, **findings = NULL;
    size_t nsess = 0, nfind = 0;
    char *save = NULL;
    char *copy = strdup(json);
    for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char err[256];
        struct jv *r = jv_parse(line, err, sizeof(err));
        if (!r) {
            fail("output", "not JSON: %s (%s)", err, line);
            continue;
        }
        if (strcmp(jv_text(jv_get(r, "type")), "session") == 0) {
            sessions = realloc(sessions, (nsess + 1) * sizeof(*sessions));
            sessions[nsess++] = r;
        } else if (strcmp(jv_text(jv_get(r, "type")), "finding") == 0) {
            findings = realloc(findings, (nfind + 1) * sizeof(*findings));
            findings[nfind++] = r;
        } else {
            jv_free(r);
        }
    }
    free(copy);

    const struct jv *es = jv_get(exp, "sessions");
    size_t nexp = es ? es->n : 0;
    if (nexp != nsess) {
        char a[32], b[32];
        snprintf(a, sizeof(a), "%zu", nexp);
        snprintf(b, sizeof(b), "%zu", nsess);
        fail("sessions", "expected %s, got %s", a, b);
    }
    /* Sessions pair by index (the order smtpscope closes them in), or with
     * "match: by_address" by their client and server endpoints. */
    bool by_addr = strcmp(jv_text(jv_get(exp, "match")), "by_address") == 0;
    bool *used = calloc(nsess + 1, sizeof(*used));
    for (size_t i = 0; i < nexp && (by_addr || i < nsess); i++) {
        const struct jv *e = es->v[i];
        size_t ai = i;
        if (by_addr) {
            ai = nsess;
            for (size_t k = 0; k < nsess && ai == nsess; k++)
                if (!used[k] &&
                    glob(jv_text(jv_get(e, "client")), jv_text(jv_get(sessions[k], "client"))) &&
                    glob(jv_text(jv_get(e, "server")), jv_text(jv_get(sessions[k], "server"))))
                    ai = k;
            if (ai == nsess) {
                fail("sessions", "no session %s -> %s", jv_text(jv_get(e, "client")),
                     jv_text(jv_get(e, "server")));
                continue;
            }
            used[ai] = true;
        }
        for (int k = 0; k < keys->n; k++) {
            if (!jv_get(e, keys->v[k])) {
                char ctx[128];
                snprintf(ctx, sizeof(ctx), "session[%zu].%s", i, keys->v[k]);
                fail(ctx, "not in the expectation");
            }
        }
        for (size_t k = 0; k < e->n; k++) {
            if (!key_wanted(keys, e->k[k]))
                continue;
            char ctx[128];
            snprintf(ctx, sizeof(ctx), "session[%zu].%s", i, e->k[k]);
            if (strcmp(e->k[k], "findings") == 0 || strcmp(e->k[k], "findings_at_most") == 0) {
                struct strset got = {0};
                session_findings(sessions[ai], findings, nfind, &got);
                check_findings(ctx, e->v[k], &got, strcmp(e->k[k], "findings") == 0);
                strset_free(&got);
            } else if (strcmp(e->k[k], "commands") == 0 || strcmp(e->k[k], "replies") == 0) {
                struct jv *d =
                    derive(jv_get(sessions[ai], "transcript"), strcmp(e->k[k], "commands") == 0);
                compare(ctx, e->v[k], d);
                jv_free(d);
            } else {
                compare(ctx, e->v[k], jv_get(sessions[ai], e->k[k]));
            }
        }
    }
    free(used);
    const struct jv *incons = jv_get(exp, "inconsistent_servers");
    if (incons) {
        struct strset got = {0};
        for (size_t i = 0; i < nfind; i++)
            if (strcmp(jv_text(jv_get(findings[i], "rule")), "inconsistent_server") == 0)
                strset_add(&got, jv_text(jv_get(findings[i], "server")));
        check_findings("inconsistent_servers", incons, &got, true);
        strset_free(&got);
    }
    for (size_t i = 0; i < nfind; i++)
        jv_free(findings[i]);
    free(findings);
    for (size_t i = 0; i < nsess; i++)
        jv_free(sessions[i]);
    free(sessions);
}

static void check_capture(const char *bin, const char *capture, const struct jv *exp)
{
    char cmd[2 * 4096 + 64];
    int status = 0;
    printf("%s\n", capture);
    snprintf(cmd, sizeof(cmd), "'%s' analyze -q -f json --transcript '%s'", bin, capture);
    char *json = run(cmd, &status);
    if (!json) {
        fail(capture, "cannot run %s", bin);
        return;
    }
    const struct jv *want_status = jv_get(exp, "exit_status");
    char st[16];
    snprintf(st, sizeof(st), "%d", status);
    if (!glob(want_status ? jv_text(want_status) : "0", st))
        fail("exit status", "expected %s, got %s", want_status ? jv_text(want_status) : "0", st);

    const struct keyset all = {NULL, 0};
    check_records(json, exp, &all);
    const struct jv *absent = jv_get(exp, "absent_strings");
    if (absent && absent->n) {
        snprintf(cmd, sizeof(cmd), "'%s' analyze -q -v --transcript '%s'", bin, capture);
        char *text = run(cmd, &status);
        for (size_t i = 0; i < absent->n; i++) {
            const char *needle = jv_text(absent->v[i]);
            if (strstr(json, needle))
                fail("absent_strings", "\"%s\" appears in the JSON output", needle);
            if (text && strstr(text, needle))
                fail("absent_strings", "\"%s\" appears in the text output", needle);
        }
        free(text);
    }
    free(json);
}

/* The whole of a file, NUL-terminated, or NULL. */
static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 1 << 16, len = 0, got;
    char *buf = malloc(cap);
    while (buf && (got = fread(buf + len, 1, cap - len - 1, f)) > 0) {
        len += got;
        if (cap - len < 4096) {
            char *more = realloc(buf, 2 * cap);
            if (!more) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = more;
            cap *= 2;
        }
    }
    if (buf)
        buf[len] = 0;
    fclose(f);
    return buf;
}

/* run_golden --records FILE.jsonl EXPECT.yaml [KEY...]: the records of a run
 * that already happened (`smtpscope live`, for one) against an expectation.
 * There is no run here to check the exit status or the text output of, so
 * exit_status and absent_strings are not looked at; commands and replies
 * need records with a transcript.  With KEYs, only those session keys are
 * compared, and each must be in every expected session. */
static int check_records_file(const char *records, const char *expect, char *const *keys, int nkeys)
{
    char err[512];
    struct jv *exp = jv_load_yaml(expect, err, sizeof(err));
    if (!exp) {
        fprintf(stderr, "run_golden: %s: %s\n", expect, err);
        return 2;
    }
    char *json = slurp(records);
    if (!json) {
        fprintf(stderr, "run_golden: cannot read %s\n", records);
        jv_free(exp);
        return 2;
    }
    printf("%s against %s\n", records, expect);
    const struct keyset ks = {keys, nkeys};
    check_records(json, exp, &ks);
    printf("  %s\n", failures == 0 ? "ok" : "FAILED");
    printf("run_golden: %d failures\n", failures);
    free(json);
    jv_free(exp);
    return failures ? 1 : 0;
}

static bool exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "--records") == 0) {
        if (argc < 4) {
            fprintf(stderr, "usage: run_golden --records FILE.jsonl EXPECT.yaml [KEY...]\n");
            return 2;
        }
        return check_records_file(argv[2], argv[3], argv + 4, argc - 4);
    }
    if (argc < 3) {
        fprintf(stderr, "usage: run_golden SMTPSCOPE PCAPS_DIR [CASE...]\n"
                        "       run_golden --records FILE.jsonl EXPECT.yaml [KEY...]\n");
        return 2;
    }
    const char *bin = argv[1], *dir = argv[2];
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "run_golden: cannot open %s\n", dir);
        return 2;
    }
    char **cases = NULL;
    size_t ncases = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        size_t l = strlen(de->d_name);
        const char *suffix = ".expect.yaml";
        size_t sl = strlen(suffix);
        if (l <= sl || strcmp(de->d_name + l - sl, suffix) != 0)
            continue;
        char *name = strndup(de->d_name, l - sl);
        bool wanted = argc == 3;
        for (int i = 3; i < argc; i++)
            wanted = wanted || strcmp(argv[i], name) == 0;
        if (!wanted) {
            free(name);
            continue;
        }
        cases = realloc(cases, (ncases + 1) * sizeof(*cases));
        cases[ncases++] = name;
    }
    closedir(d);
    if (ncases == 0) {
        fprintf(stderr, "run_golden: no .expect.yaml files in %s\n", dir);
        return 2;
    }
    size_t checked = 0;
    for (size_t c = 0; c < ncases; c++) {
        char path[4096], cap[4096];
        snprintf(path, sizeof(path), "%s/%s.expect.yaml", dir, cases[c]);
        char err[512];
        struct jv *exp = jv_load_yaml(path, err, sizeof(err));
        if (!exp) {
            printf("FAIL %s: %s\n", path, err);
            failures++;
            continue;
        }
        const char *exts[] = {".pcap", ".pcapng"};
        bool any = false;
        for (int e = 0; e < 2; e++) {
            snprintf(cap, sizeof(cap), "%s/%s%s", dir, cases[c], exts[e]);
            if (!exists(cap))
                continue;
            any = true;
            int before = failures;
            check_capture(bin, cap, exp);
            checked++;
            printf("  %s\n", failures == before ? "ok" : "FAILED");
        }
        if (!any) {
            printf("FAIL %s: no %s.pcap or .pcapng next to it\n", path, cases[c]);
            failures++;
        }
        jv_free(exp);
        free(cases[c]);
    }
    free(cases);
    printf("run_golden: %zu captures checked, %d failures\n", checked, failures);
    return failures ? 1 : 0;
}
