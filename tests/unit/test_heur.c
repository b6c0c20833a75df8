/* test_heur.c - the detection rules, on dialogues fed through the SMTP engine.
 *
 * Each case is a dialogue (what one capture point saw) plus the TCP facts
 * the rules read; the test checks the exact set of rule ids found, and for
 * some the confidence band, severity and suspect.  The byte patterns come
 * from SIGNATURES.md (the published Exchange 2003 reply through Cisco
 * inspection, the keyword orders of section 4), not from our own
 * synthesizer, so these tests do not share its assumptions.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dissect/smtp.h"
#include "heuristics/heur.h"

#define C SC_DIR_C2S
#define S SC_DIR_S2C

struct step {
    enum sc_dir dir;
    const char *bytes;
};

#define END                                                                                        \
    {                                                                                              \
        SC_DIR_NONE, NULL                                                                          \
    }

struct result {
    struct heur_finding f[HEUR_SESSION_FINDINGS_MAX];
    size_t n;
    enum heur_vantage v;
};

/* Feeds the dialogue, closes the session and runs the rules on it. */
static void analyse_how(struct heur_ctx *h, uint64_t id, const char *client, const struct step *d,
                        const struct heur_tcp *tcp, const char *close, struct result *r,
                        bool bytewise)
{
    struct smtp_settings set;
    smtp_settings_defaults(&set);
    set.keep_transcript = true;
    struct smtp_session *s = smtp_session_new(&set, 0);
    assert_non_null(s);
    uint64_t off[2] = {0, 0};
    uint64_t frame = 3;
    for (size_t i = 0; d[i].dir != SC_DIR_NONE; i++) {
        frame++; /* separate statement: an initializer list's order is unspecified */
        struct sc_meta m = {frame, (sc_time)frame * 1000000};
        size_t n = strlen(d[i].bytes);
        if (!bytewise) {
            smtp_feed(s, d[i].dir, off[d[i].dir], (const uint8_t *)d[i].bytes, n, &m);
            off[d[i].dir] += n;
            continue;
        }
        for (size_t k = 0; k < n; k++) /* telnet style: one byte a segment */
            smtp_feed(s, d[i].dir, off[d[i].dir]++, (const uint8_t *)d[i].bytes + k, 1, &m);
    }
    frame++;
    struct sc_meta end = {frame, (sc_time)frame * 1000000};
    smtp_close(s, &end);
    struct heur_session hs = {
        .id = id,
        .client = client,
        .server = "192.0.2.25:25",
        .close = close ? close : "fin",
        .smtp = smtp_session_info(s),
    };
    if (tcp) {
        hs.tcp[0] = tcp[0];
        hs.tcp[1] = tcp[1];
    }
    r->n = heur_session(h, &hs, r->f, HEUR_SESSION_FINDINGS_MAX, &r->v);
    smtp_session_free(s);
}

/* The finding of a rule; a missing one fails the test (and a blank stand-in
 * is returned so callers never see NULL). */
static void analyse(struct heur_ctx *h, uint64_t id, const char *client, const struct step *d,
                    const struct heur_tcp *tcp, const char *close, struct result *r)
{
    analyse_how(h, id, client, d, tcp, close, r, false);
}

static const char *rules(const struct result *r);

static const struct heur_finding *get(const struct result *r, const char *rule)
{
    static const struct heur_finding missing = {.rule = "(missing)", .suspect = "(missing)"};
    for (size_t i = 0; i < r->n; i++)
        if (strcmp(r->f[i].rule, rule) == 0)
            return &r->f[i];
    fail_msg("no %s finding", rule);
    return &missing;
}

/* The found rule ids, sorted and blank-separated, for one assert. */
static const char *rules(const struct result *r)
{
    static char out[512];
    const char *v[HEUR_SESSION_FINDINGS_MAX];
    for (size_t i = 0; i < r->n; i++)
        v[i] = r->f[i].rule;
    for (size_t i = 1; i < r->n; i++)
        for (size_t k = i; k > 0 && strcmp(v[k - 1], v[k]) > 0; k--) {
            const char *t = v[k];
            v[k] = v[k - 1];
            v[k - 1] = t;
        }
    out[0] = 0;
    for (size_t i = 0; i < r->n; i++) {
        strcat(out, i ? " " : "");
        strcat(out, v[i]);
    }
    return out;
}

struct fixture {
    struct heur_config cfg;
    struct heur_ctx *h;
    struct result r;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    heur_config_defaults(&f->cfg);
    f->h = heur_new(&f->cfg);
    *state = f;
    return f->h ? 0 : -1;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    heur_free(f->h);
    heur_config_free(&f->cfg);
    free(f);
    return 0;
}

/* Runs a dialogue fed whole and again one byte at a time: the findings must
 * not depend on how the bytes were segmented. */
static const char *one(void **state, const struct step *d)
{
    struct fixture *f = *state;
    static char bytewise[512];
    analyse_how(f->h, 1, "203.0.113.10:40000", d, NULL, "fin", &f->r, true);
    snprintf(bytewise, sizeof(bytewise), "%s", rules(&f->r));
    analyse(f->h, 1, "203.0.113.10:40000", d, NULL, "fin", &f->r);
    assert_string_equal(rules(&f->r), bytewise);
    return rules(&f->r);
}

/* ---- banners (A1, A2, P2) ---- */

static void banner_case(void **state, const char *banner, const char *want, const char *suspect)
{
    struct step d[] = {{S, banner},     {C, "EHLO a.example\r\n"}, {S, "250 mx.example.com\r\n"},
                       {C, "QUIT\r\n"}, {S, "221 Bye\r\n"},        END};
    assert_string_equal(one(state, d), want);
    if (suspect) {
        struct fixture *f = *state;
        assert_string_equal(get(&f->r, "banner_masked")->suspect, suspect);
        assert_int_equal(get(&f->r, "banner_masked")->frame, 4);
        assert_int_equal(f->r.v, HV_OUTSIDE);
    }
}

static void test_banner_variants(void **state)
{
    banner_case(state, "220 ****2*******************\r\n", "banner_masked", "cisco-asa-esmtp");
    banner_case(state, "220*************************\r\n", "banner_masked", "cisco-asa-esmtp");
    banner_case(state, "220 **20************ ***** ******** *****2******2*\r\n", "banner_masked",
                NULL);
    banner_case(state, "220 SMTP/cmap_______________\r\n", "banner_masked", "cisco-pix-mailguard");
    banner_case(state, "220 mail2.example.com ESMTP Postfix\r\n", "", NULL);
    banner_case(state, "220 ** ESMTP ready **\r\n", "", NULL); /* decoration, not a mask */
    banner_case(state, "220 *\r\n", "", NULL);
}

static void test_multiline_banner_broken(void **state)
{
    /* A2: continuation lines lost their 220, so the greeting never ends. */
    struct step d[] = {{S, "220-****************************\r\n"},
                       {S, "****************************************\r\n"},
                       {S, "**********\r\n"},
                       END};
    assert_string_equal(one(state, d), "banner_masked multiline_banner_broken");
    struct step ok[] = {{S, "220-mx.example.com ESMTP\r\n"},
                        {S, "220-Unauthorised use prohibited\r\n"},
                        {S, "220 Ready\r\n"},
                        {C, "EHLO a.example\r\n"},
                        {S, "250 mx.example.com\r\n"},
                        END};
    assert_string_equal(one(state, ok), "");
}

/* ---- EHLO keywords (A3, A4) ---- */

static void ehlo_case(void **state, const char *reply, const char *want)
{
    struct step d[] = {{S, "220 ****************************\r\n"},
                       {C, "EHLO relay.example.org\r\n"},
                       {S, reply},
                       {C, "MAIL FROM:<a@example.org>\r\n"},
                       {S, "250 2.1.0 Ok\r\n"},
                       {C, "QUIT\r\n"},
                       {S, "221 2.0.0 Bye\r\n"},
                       END};
    assert_string_equal(one(state, d), want);
}

static void test_exchange2003_published_reply(void **state)
{
    /* SIGNATURES.md A4: the published capture.  CHUNKING is the only 8-letter
     * mask and sits after BINARYMIME: no STARTTLS was there to strip. */
    ehlo_case(state,
              "250-ex.example.com Hello [203.0.113.10]\r\n250-XXXA\r\n250-SIZE\r\n250-ETRN\r\n"
              "250-PIPELINING\r\n250-DSN\r\n250-ENHANCEDSTATUSCODES\r\n250-8bitmime\r\n"
              "250-BINARYMIME\r\n250-XXXXXXXB\r\n250-XXXC\r\n250-XXXXXXXXXXXXXXXXXXXXXXXD\r\n"
              "250-XXXXXXXXXXXE\r\n250-AUTH GSSAPI NTLM LOGIN\r\n250-XXXXXXXXXF\r\n"
              "250-XXXXXXXXXXXG\r\n250-XXXXXXH\r\n250 XI\r\n",
              "banner_masked ehlo_keyword_masked");
    struct fixture *f = *state;
    const struct heur_finding *k = get(&f->r, "ehlo_keyword_masked");
    assert_true(k->confidence >= 0.9); /* the letters count A..I in order */
    assert_string_equal(k->evidence, "XXXA");
}

static void test_postfix_three_eight_letter_masks(void **state)
{
    /* STARTTLS, SMTPUTF8 and CHUNKING all masked: one of them is STARTTLS. */
    ehlo_case(state,
              "250-mx.example.com\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-XXXA\r\n"
              "250-ETRN\r\n250-XXXXXXXB\r\n250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n"
              "250-DSN\r\n250-XXXXXXXC\r\n250 XXXXXXXD\r\n",
              "banner_masked ehlo_keyword_masked starttls_stripped");
    struct fixture *f = *state;
    const struct heur_finding *s = get(&f->r, "starttls_stripped");
    assert_true(s->confidence >= 0.85);
    assert_string_equal(s->evidence, "XXXXXXXB"); /* between ETRN and ENHANCEDSTATUSCODES */
    assert_int_equal(s->severity, HEUR_HIGH);
}

static void test_postfix_without_starttls(void **state)
{
    /* The server offers no STARTTLS: the two 8-letter masks at the end are
     * SMTPUTF8 and CHUNKING. */
    ehlo_case(state,
              "250-mx.example.com\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-XXXA\r\n"
              "250-ETRN\r\n250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250-DSN\r\n"
              "250-XXXXXXXB\r\n250 XXXXXXXC\r\n",
              "banner_masked ehlo_keyword_masked");
}

static void test_gmail_order(void **state)
{
    ehlo_case(state,
              "250-mx.google.example at your service\r\n250-SIZE 157286400\r\n250-8BITMIME\r\n"
              "250-XXXXXXXA\r\n250-ENHANCEDSTATUSCODES\r\n250-PIPELINING\r\n250-CHUNKING\r\n"
              "250 SMTPUTF8\r\n",
              "banner_masked starttls_stripped");
    struct fixture *f = *state;
    assert_true(get(&f->r, "starttls_stripped")->confidence >= 0.85);
}

static void test_sendmail_order(void **state)
{
    ehlo_case(state,
              "250-mx.example.com Hello relay [203.0.113.10], pleased to meet you\r\n"
              "250-ENHANCEDSTATUSCODES\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-SIZE\r\n"
              "250-DSN\r\n250-ETRN\r\n250-AUTH GSSAPI\r\n250-XXXXXXXA\r\n250-DELIVERBY\r\n"
              "250 HELP\r\n",
              "banner_masked starttls_stripped");
}

static void test_starttls_visible_with_allow_tls(void **state)
{
    ehlo_case(state,
              "250-mx.example.com\r\n250-PIPELINING\r\n250-XXXA\r\n250-STARTTLS\r\n"
              "250 XXXXXXXB\r\n",
              "banner_masked ehlo_keyword_masked");
}

/* ---- verbs (A5, A6) ---- */

static void test_starttls_verb_echoed(void **state)
{
    struct step d[] = {{S, "220 mx.example.com ESMTP Sendmail\r\n"},
                       {C, "EHLO relay.example.org\r\n"},
                       {S, "250-mx.example.com\r\n250 HELP\r\n"},
                       {C, "STARTTLS\r\n"},
                       {S, "500 5.5.1 Command unrecognized: \"XXXXXXXX\"\r\n"},
                       {C, "QUIT\r\n"},
                       {S, "221 2.0.0 closing\r\n"},
                       END};
    assert_string_equal(one(state, d), "starttls_stripped");
    struct fixture *f = *state;
    assert_int_equal(get(&f->r, "starttls_stripped")->dir, S);
}

static void test_starttls_verb_seen_inside(void **state)
{
    struct step d[] = {{S, "220 mx.example.com ESMTP Postfix\r\n"},
                       {C, "EHLO relay.example.org\r\n"},
                       {S, "250-mx.example.com\r\n250 STARTTLS\r\n"},
                       {C, "XXXXXXXX\r\n"},
                       {S, "502 5.5.2 Error: command not recognized\r\n"},
                       {C, "QUIT\r\n"},
                       {S, "221 2.0.0 Bye\r\n"},
                       END};
    assert_string_equal(one(state, d), "starttls_stripped");
    struct fixture *f = *state;
    assert_int_equal(f->r.v, HV_INSIDE);
}

static void test_telnet_from_outside(void **state)
{
    /* A6 with an unmasked banner: HELO and QUIT answered "unrecognized". */
    struct step d[] = {{S, "220 mx.example.com ESMTP Postfix\r\n"},        {C, "EHLO me\r\n"},
                       {S, "502 5.5.2 Error: command not recognized\r\n"}, {C, "HELO me\r\n"},
                       {S, "502 5.5.2 Error: command not recognized\r\n"}, {C, "QUIT\r\n"},
                       {S, "502 5.5.2 Error: command not recognized\r\n"}, END};
    assert_string_equal(one(state, d), "command_masked");
}

static void test_unknown_verb_is_not_a_mask(void **state)
{
    struct step d[] = {{S, "220 mx.example.com ESMTP Postfix\r\n"},
                       {C, "HELO relay.example.org\r\n"},
                       {S, "250 mx.example.com\r\n"},
                       {C, "XYZZY\r\n"},
                       {S, "502 5.5.2 Error: command not recognized\r\n"},
                       {C, "QUIT\r\n"},
                       {S, "221 2.0.0 Bye\r\n"},
                       END};
    assert_string_equal(one(state, d), "");
}

/* ---- EHLO downgrades (P1, O4) ---- */

static void test_ehlo_as_noop(void **state)
{
    struct step pix[] = {{S, "220 **2**************************\r\n"},
                         {C, "EHLO relay.example.org\r\n"},
                         {S, "250 2.0.0 Ok\r\n"},
                         END};
    assert_string_equal(one(state, pix), "banner_masked ehlo_downgraded");
    struct fixture *f = *state;
    assert_int_equal(get(&f->r, "ehlo_downgraded")->severity, HEUR_MEDIUM);
    assert_string_equal(get(&f->r, "banner_masked")->suspect, "cisco-pix-mailguard");
    /* Without the masked banner: a note only. */
    struct step bare[] = {
        {S, "220 test.example\r\n"}, {C, "EHLO relay.example.org\r\n"}, {S, "250 OK\r\n"}, END};
    assert_string_equal(one(state, bare), "ehlo_downgraded");
    assert_int_equal(get(&f->r, "ehlo_downgraded")->severity, HEUR_INFO);
    /* Inside: the server receives NOOP with a host name. */
    struct step in[] = {{S, "220 mx.example.com ESMTP Postfix\r\n"},
                        {C, "NOOP relay.example.org\r\n"},
                        {S, "250 2.0.0 Ok\r\n"},
                        END};
    assert_string_equal(one(state, in), "ehlo_downgraded");
    assert_int_equal(f->r.v, HV_INSIDE);
}

static void test_ehlo_refused_then_helo(void **state)
{
    struct fixture *f = *state;
    struct step d502[] = {{S, "220 mx.example.com ESMTP\r\n"},
                          {C, "EHLO relay.example.org\r\n"},
                          {S, "502 5.5.2 Error: command not recognized\r\n"},
                          {C, "HELO relay.example.org\r\n"},
                          {S, "250 mx.example.com\r\n"},
                          END};
    assert_string_equal(one(state, d502), "ehlo_downgraded");
    assert_int_equal(get(&f->r, "ehlo_downgraded")->severity, HEUR_LOW);
    struct step d500[] = {{S, "220 old.example.com Sendmail 8.8.7\r\n"},
                          {C, "EHLO relay.example.org\r\n"},
                          {S, "500 Command unrecognized\r\n"},
                          {C, "HELO relay.example.org\r\n"},
                          {S, "250 old.example.com pleased to meet you\r\n"},
                          END};
    assert_string_equal(one(state, d500), "ehlo_downgraded");
    assert_int_equal(get(&f->r, "ehlo_downgraded")->severity, HEUR_INFO);
}

/* ---- STARTTLS outcomes ---- */

static void test_starttls_outcomes(void **state)
{
    struct fixture *f = *state;
    struct step s454[] = {{S, "220 mx.example.com ESMTP\r\n"},
                          {C, "EHLO relay.example.org\r\n"},
                          {S, "250-mx.example.com\r\n250 STARTTLS\r\n"},
                          {C, "STARTTLS\r\n"},
                          {S, "454 4.7.0 TLS not available due to temporary reason\r\n"},
                          END};
    assert_string_equal(one(state, s454), "starttls_stripped");
    assert_true(get(&f->r, "starttls_stripped")->confidence < 0.7);
    struct step refused[] = {{S, "220 mx.example.com ESMTP\r\n"},
                             {C, "EHLO relay.example.org\r\n"},
                             {S, "250-mx.example.com\r\n250 PIPELINING\r\n"},
                             {C, "STARTTLS\r\n"},
                             {S, "502 5.5.1 Error: command not implemented\r\n"},
                             END};
    assert_string_equal(one(state, refused), "starttls_failed");
    assert_int_equal(get(&f->r, "starttls_failed")->severity, HEUR_LOW);
    struct step clear[] = {{S, "220 mx.example.com ESMTP\r\n"},
                           {C, "EHLO relay.example.org\r\n"},
                           {S, "250-mx.example.com\r\n250 STARTTLS\r\n"},
                           {C, "STARTTLS\r\n"},
                           {S, "220 2.0.0 Ready to start TLS\r\n"},
                           {C, "MAIL FROM:<a@example.org>\r\n"},
                           END};
    assert_string_equal(one(state, clear), "cleartext_after_starttls");
    /* The client closes after three bytes of a record header: no TLS came
     * up (complete handshakes: test_tls.c). */
    struct step tls[] = {{S, "220 mx.example.com ESMTP\r\n"},
                         {C, "EHLO relay.example.org\r\n"},
                         {S, "250-mx.example.com\r\n250 STARTTLS\r\n"},
                         {C, "STARTTLS\r\n"},
                         {S, "220 2.0.0 Ready to start TLS\r\n"},
                         {C, "\x16\x03\x01"},
                         END};
    assert_string_equal(one(state, tls), "starttls_failed");
    assert_string_equal(get(&f->r, "starttls_failed")->evidence, "no TLS record after the 220");
}

static void test_exchange_5_7_3(void **state)
{
    struct step d[] = {{S, "220 ex1.example.com Microsoft ESMTP MAIL Service ready\r\n"},
                       {C, "EHLO ex2.example.org\r\n"},
                       {S, "250-ex1.example.com Hello\r\n250 XXXXXXXXXXXXXA\r\n"},
                       {C, "MAIL FROM:<a@example.org>\r\n"},
                       {S, "451 5.7.3 Cannot achieve Exchange Server authentication\r\n"},
                       END};
    assert_string_equal(one(state, d), "ehlo_keyword_masked exchange_auth_failed");
}

/* ---- connection deaths (A7, P3) and resets ---- */

static void test_limit_drop_needs_a_death(void **state)
{
    struct fixture *f = *state;
    static char line[700];
    memset(line, 0, sizeof(line));
    strcpy(line, "EHLO relay.");
    memset(line + strlen(line), 'x', 560);
    strcat(line, ".example.org\r\n");
    struct step d[] = {{S, "220 mx.example.com ESMTP\r\n"}, {C, line}, END};
    /* Sent, never acknowledged, sent again, then silence. */
    struct heur_tcp dead[2] = {{.packets = 6, .unacked = 600, .tail_retx = 4}, {.packets = 3}};
    analyse(f->h, 1, "203.0.113.10:40000", d, dead, "eof", &f->r);
    assert_string_equal(rules(&f->r), "limit_drop");
    assert_int_equal(get(&f->r, "limit_drop")->frame, 5);
    /* The same line, acknowledged and answered: no drop. */
    struct step alive[] = {{S, "220 mx.example.com ESMTP\r\n"},
                           {C, line},
                           {S, "250 mx.example.com\r\n"},
                           {C, "QUIT\r\n"},
                           {S, "221 Bye\r\n"},
                           END};
    analyse(f->h, 2, "203.0.113.10:40001", alive, NULL, "fin", &f->r);
    assert_string_equal(rules(&f->r), "");
    /* A death after short lines is not a limit. */
    struct step shortl[] = {
        {S, "220 mx.example.com ESMTP\r\n"}, {C, "EHLO relay.example.org\r\n"}, END};
    analyse(f->h, 3, "203.0.113.10:40002", shortl, dead, "eof", &f->r);
    assert_string_equal(rules(&f->r), "");
}

static void test_injected_reset(void **state)
{
    struct fixture *f = *state;
    struct step d[] = {{S, "220 mx.example.com ESMTP\r\n"},
                       {C, "EHLO a.example\r\n"},
                       {S, "250 mx.example.com\r\n"},
                       END};
    struct heur_tcp forged[2] = {
        {.packets = 5, .ttl_min = 58, .ttl_max = 58},
        {.packets = 5, .ttl_min = 62, .ttl_max = 62, .rst = true, .rst_ttl = 255, .rst_frame = 9}};
    analyse(f->h, 1, "203.0.113.10:40000", d, forged, "rst", &f->r);
    assert_string_equal(rules(&f->r), "injected_reset");
    assert_int_equal(get(&f->r, "injected_reset")->frame, 9);
    assert_int_equal(get(&f->r, "injected_reset")->dir, S);
    /* The server's own RST (same TTL), with an IP id out of pattern as Linux
     * sends them: nothing. */
    struct heur_tcp own[2] = {{.packets = 5, .ttl_min = 58, .ttl_max = 58},
                              {.packets = 5,
                               .ttl_min = 62,
                               .ttl_max = 62,
                               .rst = true,
                               .rst_ttl = 62,
                               .rst_ipid_mismatch = true}};
    analyse(f->h, 2, "203.0.113.10:40001", d, own, "rst", &f->r);
    assert_string_equal(rules(&f->r), "");
}

/* ---- across sessions ---- */

static void test_cross_session(void **state)
{
    struct fixture *f = *state;
    struct step with[] = {{S, "220 mx.example.com ESMTP\r\n"},
                          {C, "EHLO a.example\r\n"},
                          {S, "250-mx.example.com\r\n250-STARTTLS\r\n250 8BITMIME\r\n"},
                          {C, "QUIT\r\n"},
                          {S, "221 Bye\r\n"},
                          END};
    struct step without[] = {{S, "220 mx.example.com ESMTP\r\n"},
                             {C, "EHLO a.example\r\n"},
                             {S, "250-mx.example.com\r\n250 8BITMIME\r\n"},
                             {C, "QUIT\r\n"},
                             {S, "221 Bye\r\n"},
                             END};
    analyse(f->h, 1, "203.0.113.10:40000", with, NULL, "fin", &f->r);
    analyse(f->h, 2, "203.0.113.10:40001", without, NULL, "fin", &f->r);
    /* The same connection seen again (a second file of the same traffic)
     * does not count twice. */
    analyse(f->h, 3, "203.0.113.10:40001", without, NULL, "fin", &f->r);
    struct heur_finding out[HEUR_FINISH_MAX];
    size_t n = heur_finish(f->h, out, HEUR_FINISH_MAX);
    assert_int_equal(n, 2);
    assert_string_equal(out[0].rule, "inconsistent_server");
    assert_string_equal(out[1].rule, "starttls_stripped");
    assert_int_equal(out[1].session, 2);
    assert_string_equal(out[1].suspect, "smtp-proxy");
    assert_int_equal(heur_finish(f->h, out, HEUR_FINISH_MAX), 0);

    /* A server listed as not offering TLS on purpose is left alone. */
    struct heur_config cfg;
    heur_config_defaults(&cfg);
    cfg.no_tls[cfg.nno_tls++] = strdup("192.0.2.25");
    struct heur_ctx *h = heur_new(&cfg);
    analyse(h, 1, "203.0.113.10:40000", with, NULL, "fin", &f->r);
    analyse(h, 2, "203.0.113.10:40001", without, NULL, "fin", &f->r);
    assert_int_equal(heur_finish(h, out, HEUR_FINISH_MAX), 0);
    heur_free(h);
    heur_config_free(&cfg);
}

static void test_disabled_rule_and_severity(void **state)
{
    (void)state;
    struct heur_config cfg;
    heur_config_defaults(&cfg);
    cfg.enabled[HR_BANNER_MASKED] = false;
    cfg.severity[HR_EHLO_KEYWORD_MASKED] = HEUR_LOW;
    struct heur_ctx *h = heur_new(&cfg);
    struct result r;
    struct step d[] = {{S, "220 ****************************\r\n"},
                       {C, "EHLO a.example\r\n"},
                       {S, "250-mx.example.com\r\n250 XXXA\r\n"},
                       END};
    analyse(h, 1, "203.0.113.10:40000", d, NULL, "fin", &r);
    assert_string_equal(rules(&r), "ehlo_keyword_masked");
    assert_int_equal(get(&r, "ehlo_keyword_masked")->severity, HEUR_LOW);
    heur_free(h);
    heur_config_free(&cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_banner_variants, setup, teardown),
        cmocka_unit_test_setup_teardown(test_multiline_banner_broken, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exchange2003_published_reply, setup, teardown),
        cmocka_unit_test_setup_teardown(test_postfix_three_eight_letter_masks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_postfix_without_starttls, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gmail_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sendmail_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_starttls_visible_with_allow_tls, setup, teardown),
        cmocka_unit_test_setup_teardown(test_starttls_verb_echoed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_starttls_verb_seen_inside, setup, teardown),
        cmocka_unit_test_setup_teardown(test_telnet_from_outside, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_verb_is_not_a_mask, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ehlo_as_noop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ehlo_refused_then_helo, setup, teardown),
        cmocka_unit_test_setup_teardown(test_starttls_outcomes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exchange_5_7_3, setup, teardown),
        cmocka_unit_test_setup_teardown(test_limit_drop_needs_a_death, setup, teardown),
        cmocka_unit_test_setup_teardown(test_injected_reset, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cross_session, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disabled_rule_and_severity, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
