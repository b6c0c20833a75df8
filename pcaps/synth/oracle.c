/* oracle.c - expected findings from what the middlebox did (see oracle.h).
 *
 * The visibility table, by SIGNATURES.md row; "outside" is a capture between
 * the client and the device, "inside" one between the device and the server:
 *
 *   row  action                          outside                   inside
 *   A1   banner masked                   banner_masked             -
 *   A2   continuation lines masked       multiline_banner_broken   -
 *   A3   250-STARTTLS masked             starttls_stripped         -
 *   A4   other keywords masked           ehlo_keyword_masked       -
 *   A5   STARTTLS verb masked            echo only (Sendmail)      starttls_stripped
 *   A5   other verb masked               echo only (Sendmail)      command_masked
 *   A6   verb typed in masked pieces     command_masked (*)        command_masked
 *   A7   dropped at a limit              limit_drop                -
 *   A7   ... with the reset action       + injected_reset          injected_reset
 *   P1   EHLO sent on as NOOP            ehlo_downgraded           ehlo_downgraded
 *   P3   split end of data discarded     dot_split_drop            -
 *   O1   STARTTLS deleted                cross-session only        -
 *   O4   STARTTLS answered 454           starttls_stripped         -
 *   O4   EHLO answered 502, HELO used    ehlo_downgraded           -
 *   A4   X-ANONYMOUSTLS masked, Exchange
 *        client gives up                 exchange_auth_failed      -
 *
 * (*) the server answers every typed verb "unrecognized", HELO and QUIT
 * included, which no server does on its own.
 *
 * Symptoms without a device: commands in cleartext after a 220 to STARTTLS
 * are cleartext_after_starttls; STARTTLS attempted and not completed is
 * starttls_failed where no stronger finding explains it.
 */
#include "pcaps/synth/oracle.h"

#include <string.h>

#include "pcaps/synth/mbox.h"

struct set {
    const char **v;
    size_t n, max;
};

static void put(struct set *s, const char *rule)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->v[i], rule) == 0)
            return;
    if (s->n < s->max)
        s->v[s->n++] = rule;
}

static bool has(const struct set *s, const char *rule)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->v[i], rule) == 0)
            return true;
    return false;
}

/* Whether the view's command list holds verb a, later followed by verb b. */
static bool verb_then(const struct syn_view *v, const char *a, const char *b)
{
    const char *p = strstr(sc_buf_str(&v->commands), a);
    return p && (!b || strstr(p + strlen(a), b));
}

bool syn_view_cleartext_after_tls(const struct syn_view *v)
{
    if (!v->replied || v->starttls_code != 220 || v->tls)
        return false;
    const char *c = sc_buf_str(&v->commands);
    const char *p = strstr(c, "STARTTLS");
    if (!p)
        p = strstr(c, "X-ANONYMOUSTLS");
    return p && strchr(p, ' ') != NULL; /* another verb follows */
}

size_t syn_oracle_session(const struct syn_oracle_in *in, const char **out, size_t max)
{
    struct set s = {out, 0, max};
    unsigned a = in->actions;
    const struct syn_view *v = in->view;
    bool echo = in->server == SRV_SENDMAIL; /* "500 5.5.1 Command unrecognized: "XXXX"" */
    if (!in->inside) {
        if (a & MB_ACT_BANNER_MASKED)
            put(&s, "banner_masked");
        if (a & MB_ACT_BANNER_MULTI)
            put(&s, "multiline_banner_broken");
        if (a & MB_ACT_KW_STARTTLS)
            put(&s, "starttls_stripped");
        if (a & MB_ACT_KW_OTHER)
            put(&s, "ehlo_keyword_masked");
        if ((a & MB_ACT_VERB_STARTTLS) && echo)
            put(&s, "starttls_stripped");
        if ((a & MB_ACT_VERB_OTHER) && echo)
            put(&s, "command_masked");
        if (a & MB_ACT_VERB_PIECE)
            put(&s, "command_masked");
        if (a & MB_ACT_VERB_NOOP)
            put(&s, "ehlo_downgraded");
        if (a & MB_ACT_DROP)
            put(&s, "limit_drop");
        if (a & MB_ACT_P3)
            put(&s, "dot_split_drop");
        if ((a & MB_ACT_STARTTLS_454) && v->offered)
            put(&s, "starttls_stripped");
        if ((a & MB_ACT_EHLO_502) && in->result && in->result->used_helo)
            put(&s, "ehlo_downgraded");
        if ((a & MB_ACT_KW_XANON) && in->client == CLI_EXCHANGE && in->result &&
            in->result->gave_up)
            put(&s, "exchange_auth_failed");
    } else {
        if (a & MB_ACT_VERB_STARTTLS)
            put(&s, "starttls_stripped");
        if (a & (MB_ACT_VERB_OTHER | MB_ACT_VERB_PIECE))
            put(&s, "command_masked");
        if (a & MB_ACT_VERB_NOOP)
            put(&s, "ehlo_downgraded");
    }
    if (a & MB_ACT_RESET)
        put(&s, "injected_reset");
    /* Commands in cleartext after a 220 to STARTTLS. */
    bool cleartext = syn_view_cleartext_after_tls(v);
    if (cleartext)
        put(&s, "cleartext_after_starttls");
    /* STARTTLS tried and not completed, with nothing stronger to explain it. */
    bool done = (v->replied && v->starttls_code == 220 && v->tls) || cleartext;
    if (v->attempted && !done && !has(&s, "starttls_stripped") &&
        (verb_then(v, "STARTTLS", NULL) || verb_then(v, "X-ANONYMOUSTLS", NULL)))
        put(&s, "starttls_failed");
    /* Sorted, so the expectation reads the same whatever the order above. */
    for (size_t i = 1; i < s.n; i++)
        for (size_t k = i; k > 0 && strcmp(s.v[k - 1], s.v[k]) > 0; k--) {
            const char *t = s.v[k];
            s.v[k] = s.v[k - 1];
            s.v[k - 1] = t;
        }
    return s.n;
}

void syn_oracle_seen(const struct syn_oracle_in *in, struct syn_oracle_seen *out)
{
    const struct syn_view *v = in->view;
    const char *rules[SYN_ORACLE_MAX];
    size_t n = syn_oracle_session(in, rules, SYN_ORACLE_MAX);
    memset(out, 0, sizeof(*out));
    out->banner_seen = v->banner.len > 0;
    out->banner_masked = !in->inside && (in->actions & MB_ACT_BANNER_MASKED);
    out->keywords_seen = v->keywords_set && v->nkeywords > 0;
    out->tls_offered = v->offered;
    for (size_t i = 0; i < n; i++)
        out->tls_masked = out->tls_masked || strcmp(rules[i], "starttls_stripped") == 0;
}

/* ---- compare ---- */

static void dput(struct syn_oracle_diff *v, size_t *n, size_t max, const char *kind,
                 const char *rule)
{
    for (size_t i = 0; i < *n; i++)
        if (strcmp(v[i].kind, kind) == 0 && strcmp(v[i].rule, rule) == 0)
            return;
    if (*n < max)
        v[(*n)++] = (struct syn_oracle_diff){kind, rule};
}

/* What each action leaves between the two captures, by SIGNATURES.md row:
 *   A1/P2 banner masked          masked      banner_masked
 *   A2 continuation lines        masked      multiline_banner_broken
 *   A3 / A4 keyword masks        masked      starttls_stripped / ehlo_keyword_masked
 *   A5 verb masks                masked      starttls_stripped / command_masked
 *   A6 typed pieces              masked      command_masked
 *   P1 EHLO as NOOP              rewritten   ehlo_downgraded
 *   A7 drop                      cut         limit_drop (the reset action: also
 *                                            cut/injected_reset for its RSTs)
 *   A8 '|' in addresses          rewritten   -
 *   P3 split end of data         cut         dot_split_drop
 *   O1 keyword lines deleted     removed     starttls_stripped / ehlo_keyword_masked,
 *                                rewritten   - (the new last line's "250 ")
 *   O4 454 / 502                 removed+inserted  starttls_stripped / ehlo_downgraded
 *   O3 interception              tls_changed tls_intercepted
 *   O2 TLS reset                 cut         starttls_failed, cut/injected_reset */
size_t syn_oracle_compare(unsigned a, struct syn_oracle_diff *v, size_t max)
{
    size_t n = 0;
    if (a & MB_ACT_BANNER_MASKED)
        dput(v, &n, max, "masked", "banner_masked");
    if (a & MB_ACT_BANNER_MULTI)
        dput(v, &n, max, "masked", "multiline_banner_broken");
    if (a & (MB_ACT_KW_STARTTLS | MB_ACT_VERB_STARTTLS))
        dput(v, &n, max, "masked", "starttls_stripped");
    if (a & MB_ACT_KW_OTHER)
        dput(v, &n, max, "masked", "ehlo_keyword_masked");
    if (a & (MB_ACT_VERB_OTHER | MB_ACT_VERB_PIECE))
        dput(v, &n, max, "masked", "command_masked");
    if (a & MB_ACT_VERB_NOOP)
        dput(v, &n, max, "rewritten", "ehlo_downgraded");
    if (a & MB_ACT_DROP)
        dput(v, &n, max, "cut", "limit_drop");
    if (a & MB_ACT_RESET)
        dput(v, &n, max, "cut", "injected_reset");
    if (a & MB_ACT_SPECIAL_CHAR)
        dput(v, &n, max, "rewritten", "-");
    if (a & MB_ACT_P3)
        dput(v, &n, max, "cut", "dot_split_drop");
    if (a & MB_ACT_DEL_STARTTLS)
        dput(v, &n, max, "removed", "starttls_stripped");
    if (a & MB_ACT_DEL_OTHER)
        dput(v, &n, max, "removed", "ehlo_keyword_masked");
    if (a & (MB_ACT_DEL_STARTTLS | MB_ACT_DEL_OTHER))
        dput(v, &n, max, "rewritten", "-");
    if (a & MB_ACT_STARTTLS_454) {
        dput(v, &n, max, "inserted", "starttls_stripped");
        dput(v, &n, max, "removed", "starttls_stripped");
    }
    if (a & MB_ACT_EHLO_502) {
        dput(v, &n, max, "inserted", "ehlo_downgraded");
        dput(v, &n, max, "removed", "ehlo_downgraded");
    }
    if (a & MB_ACT_TLS_INTERCEPT)
        dput(v, &n, max, "tls_changed", "tls_intercepted");
    if (a & MB_ACT_TLS_BLOCK)
        dput(v, &n, max, "cut", "starttls_failed");
    for (size_t i = 1; i < n; i++)
        for (size_t k = i; k > 0; k--) {
            int c = strcmp(v[k - 1].kind, v[k].kind);
            if (c < 0 || (c == 0 && strcmp(v[k - 1].rule, v[k].rule) <= 0))
                break;
            struct syn_oracle_diff t = v[k];
            v[k] = v[k - 1];
            v[k - 1] = t;
        }
    return n;
}
