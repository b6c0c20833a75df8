/* test_smtp.c - the SMTP engine, fed from strings.
 *
 * Every dialogue is a script of (direction, bytes) steps.  Each script runs
 * three ways: every step whole, every step split at every offset, and one
 * byte at a time; the resulting session (fields, events and transcript,
 * rendered to one canonical string) must be identical, and must hold the
 * expected values.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/buf.h"
#include "common/escape.h"
#include "dissect/smtp.h"

#define C SC_DIR_C2S
#define S SC_DIR_S2C

/* Allocation failure on demand: this test links with -Wl,--wrap=calloc
 * (tests/CMakeLists.txt), so every calloc of the engine comes here.  While
 * calloc_fail_in is positive it counts calls down, and the call that brings
 * it to 0 fails.  (State for a linker hook, which takes no argument: the
 * one file-scope variable of the suite.) */
void *__real_calloc(size_t n, size_t size);
void *__wrap_calloc(size_t n, size_t size);
static int calloc_fail_in;

void *__wrap_calloc(size_t n, size_t size)
{
    if (calloc_fail_in > 0 && --calloc_fail_in == 0)
        return NULL;
    return __real_calloc(n, size);
}

struct step {
    enum sc_dir dir;
    const char *bytes; /* NUL-terminated unless len is set */
    size_t len;
    uint64_t gap; /* non-zero: a gap of this many bytes instead of bytes */
};

#define END                                                                                        \
    {                                                                                              \
        SC_DIR_NONE, NULL, 0, 0                                                                    \
    }

enum split { WHOLE, AT, BYTES };

static size_t step_len(const struct step *st)
{
    return st->len ? st->len : strlen(st->bytes);
}

/* A flag of run(), not of smtp_session_new: the session reads message bodies
 * without AVX2 (smtp_settings.no_avx2). */
#define T_NO_AVX2 (1u << 30)

/* Runs a script; split=AT splits every step at offset k (clamped). */
static struct smtp_session *run(const struct step *script, enum split how, size_t k, unsigned flags,
                                enum smtp_feed_result *last)
{
    struct smtp_settings set;
    smtp_settings_defaults(&set);
    set.keep_transcript = true;
    set.no_avx2 = (flags & T_NO_AVX2) != 0;
    struct smtp_session *s = smtp_session_new(&set, flags & ~T_NO_AVX2);
    assert_non_null(s);
    uint64_t off[2] = {0, 0};
    enum smtp_feed_result r = SMTP_OK;
    for (size_t i = 0; script[i].dir != SC_DIR_NONE; i++) {
        const struct step *st = &script[i];
        struct sc_meta m = {i + 1, (sc_time)(i + 1) * 1000};
        if (st->gap) {
            r = smtp_gap(s, st->dir, st->gap, &m);
            off[st->dir] += st->gap;
            continue;
        }
        const uint8_t *p = (const uint8_t *)st->bytes;
        size_t n = step_len(st);
        if (how == WHOLE) {
            r = smtp_feed(s, st->dir, off[st->dir], p, n, &m);
        } else if (how == AT) {
            size_t cut = k < n ? k : n;
            r = smtp_feed(s, st->dir, off[st->dir], p, cut, &m);
            if (r == SMTP_OK)
                r = smtp_feed(s, st->dir, off[st->dir] + cut, p + cut, n - cut, &m);
        } else {
            for (size_t j = 0; j < n && r == SMTP_OK; j++)
                r = smtp_feed(s, st->dir, off[st->dir] + j, p + j, 1, &m);
        }
        off[st->dir] += n;
    }
    struct sc_meta end = {1000, 1000000};
    smtp_close(s, &end);
    if (last)
        *last = r;
    return s;
}

static void put_text(struct sc_buf *out, const char *name, const struct smtp_text *v)
{
    sc_buf_printf(out, "%s=", name);
    sc_escape(out, v->data, v->len);
    sc_buf_putc(out, '\n');
}

/* Renders everything the session found as one string. */
static char *render(const struct smtp_session *s)
{
    const struct smtp_info *in = smtp_session_info(s);
    struct sc_buf o;
    sc_buf_init(&o, 0);
    put_text(&o, "banner", &in->banner);
    put_text(&o, "helo", &in->helo);
    for (size_t i = 0; i < in->n_ehlo_keywords; i++)
        put_text(&o, "kw", &in->ehlo_keywords[i]);
    sc_buf_printf(&o, "starttls=%d,%d,%s\n", in->starttls_offered, in->starttls_attempted,
                  smtp_starttls_name(in->starttls));
    put_text(&o, "auth", &in->auth_mech);
    put_text(&o, "from", &in->mail_from);
    put_text(&o, "last_cmd", &in->last_command);
    put_text(&o, "proxy", &in->proxy);
    sc_buf_printf(&o, "rcpt=%llu/%llu msgs=%llu/%llu cmds=%llu replies=%llu gaps=%u conf=%.2f\n",
                  (unsigned long long)in->rcpt_count, (unsigned long long)in->rcpt_accepted,
                  (unsigned long long)in->messages, (unsigned long long)in->messages_accepted,
                  (unsigned long long)in->commands, (unsigned long long)in->replies, in->gaps,
                  in->confidence);
    sc_buf_printf(&o, "bytes=%llu/%llu tls=%llu/%llu\n", (unsigned long long)in->bytes[0],
                  (unsigned long long)in->bytes[1], (unsigned long long)in->tls_bytes[0],
                  (unsigned long long)in->tls_bytes[1]);
    sc_buf_printf(
        &o, "header_line=%llu@%llu filename=%llu@%llu\n", (unsigned long long)in->max_header_line,
        (unsigned long long)in->max_header_meta.frame, (unsigned long long)in->max_filename,
        (unsigned long long)in->max_filename_meta.frame);
    for (size_t i = 0; i < in->events.n; i++)
        sc_buf_printf(&o, "event %s %s x%llu frame %llu: %s\n", in->events.v[i].kind,
                      sc_dir_name(in->events.v[i].dir), (unsigned long long)in->events.v[i].count,
                      (unsigned long long)in->events.v[i].frame,
                      in->events.v[i].detail ? in->events.v[i].detail : "");
    for (size_t i = 0; i < in->n_transcript; i++) {
        const struct smtp_line *l = &in->transcript[i];
        char enh[SMTP_ENH_SIZE];
        smtp_line_enh(l, enh);
        sc_buf_printf(&o, "%llu %s k%d v%s c%u e%s%s%s len%u ", (unsigned long long)l->meta.frame,
                      sc_dir_name(l->dir), (int)l->kind, smtp_verb_name(l->verb), l->code, enh,
                      l->last ? " last" : "", l->incomplete ? " incomplete" : "", l->len);
        sc_escape(&o, l->text, l->text_len);
        sc_buf_putc(&o, '\n');
    }
    char *r = strdup(sc_buf_str(&o));
    sc_buf_free(&o);
    return r;
}

/* Runs the script all three ways and checks they agree; returns the session
 * fed whole (caller frees) and its rendering in *out.  Every other split, and
 * the byte-wise run, read message bodies without AVX2, so that on a CPU with
 * it both scans are held to the same results. */
static struct smtp_session *run_all(const struct step *script, unsigned flags, char **out)
{
    enum smtp_feed_result r0;
    struct smtp_session *whole = run(script, WHOLE, 0, flags, &r0);
    char *ref = render(whole);
    size_t maxlen = 0;
    for (size_t i = 0; script[i].dir != SC_DIR_NONE; i++)
        if (!script[i].gap && step_len(&script[i]) > maxlen)
            maxlen = step_len(&script[i]);
    for (size_t k = 0; k <= maxlen; k++) {
        enum smtp_feed_result r;
        struct smtp_session *s = run(script, AT, k, flags | (k % 2 ? T_NO_AVX2 : 0), &r);
        char *got = render(s);
        if (strcmp(ref, got) != 0)
            fail_msg("split at %zu differs:\n--- whole\n%s--- split\n%s", k, ref, got);
        assert_int_equal(r, r0);
        free(got);
        smtp_session_free(s);
    }
    enum smtp_feed_result r;
    struct smtp_session *s = run(script, BYTES, 0, flags | T_NO_AVX2, &r);
    char *got = render(s);
    if (strcmp(ref, got) != 0)
        fail_msg("byte-at-a-time differs:\n--- whole\n%s--- bytes\n%s", ref, got);
    assert_int_equal(r, r0);
    free(got);
    smtp_session_free(s);
    *out = ref;
    return whole;
}

/* The sequence of transcript commands ("EHLO MAIL ...") and reply codes. */
static char *dialogue(const struct smtp_session *s)
{
    const struct smtp_info *in = smtp_session_info(s);
    struct sc_buf o;
    sc_buf_init(&o, 0);
    for (size_t i = 0; i < in->n_transcript; i++) {
        const struct smtp_line *l = &in->transcript[i];
        if (l->kind == SMTP_L_COMMAND)
            sc_buf_printf(&o, "%s%s", o.len ? " " : "", smtp_verb_name(l->verb));
        else if (l->kind == SMTP_L_REPLY && l->last)
            sc_buf_printf(&o, "%s%u", o.len ? " " : "", l->code);
        else if (l->kind == SMTP_L_AUTH)
            sc_buf_printf(&o, "%s<auth>", o.len ? " " : "");
        else if (l->kind == SMTP_L_DATA)
            sc_buf_printf(&o, "%s<data>", o.len ? " " : "");
    }
    char *r = strdup(sc_buf_str(&o));
    sc_buf_free(&o);
    return r;
}

static bool has_event(const struct smtp_session *s, const char *kind)
{
    return sc_events_count(&smtp_session_info(s)->events, kind) > 0;
}

static void check_dialogue(const struct smtp_session *s, const char *want)
{
    char *d = dialogue(s);
    assert_string_equal(d, want);
    free(d);
}

static void text_eq(const struct smtp_text *t, const char *want)
{
    assert_int_equal(t->len, strlen(want));
    assert_memory_equal(t->data, want, t->len);
    assert_int_equal(t->data[t->len], 0);
}

/* ---- dialogues ---- */

static void test_plain_delivery(void **state)
{
    (void)state;
    static const struct step sc[] = {
        {S, "220 mx.example.org ESMTP Postfix\r\n", 0, 0},
        {C, "EHLO client.example.com\r\n", 0, 0},
        {S,
         "250-mx.example.org\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-STARTTLS\r\n"
         "250 8BITMIME\r\n",
         0, 0},
        {C, "MAIL FROM:<alice@example.com> SIZE=120\r\n", 0, 0},
        {S, "250 2.1.0 Ok\r\n", 0, 0},
        {C, "RCPT TO:<bob@example.org>\r\n", 0, 0},
        {S, "250 2.1.5 Ok\r\n", 0, 0},
        {C, "DATA\r\n", 0, 0},
        {S, "354 End data with <CR><LF>.<CR><LF>\r\n", 0, 0},
        {C, "Subject: hi\r\n\r\n..dot-stuffed\r\nbody\r\n.\r\n", 0, 0},
        {S, "250 2.0.0 Ok: queued as 1234\r\n", 0, 0},
        {C, "QUIT\r\n", 0, 0},
        {S, "221 2.0.0 Bye\r\n", 0, 0},
        END,
    };
    char *r;
    struct smtp_session *s = run_all(sc, 0, &r);
    const struct smtp_info *in = smtp_session_info(s);
    text_eq(&in->banner, "220 mx.example.org ESMTP Postfix");
    text_eq(&in->helo, "EHLO client.example.com");
    assert_int_equal(in->n_ehlo_keywords, 4);
    text_eq(&in->ehlo_keywords[1], "SIZE 10240000");
    text_eq(&in->ehlo_keywords[3], "8BITMIME");
    assert_true(in->starttls_offered);
    assert_int_equal(in->starttls, SMTP_TLS_NOT_ATTEMPTED);
    text_eq(&in->mail_from, "<alice@example.com>");
    assert_int_equal(in->rcpt_count, 1);
    assert_int_equal(in->rcpt_accepted, 1);
    assert_int_equal(in->messages, 1);
    assert_int_equal(in->messages_accepted, 1);
    assert_int_equal(in->events.n, 0);
    assert_true(in->confidence == 1.0);
    check_dialogue(s, "220 EHLO 250 MAIL 250 RCPT 250 DATA 354 <data> 250 QUIT 221");
    free(r);
    smtp_session_free(s);
}

static void test_pipelining_matches_replies(void **state)
{
    (void)state;
    /* RFC 2920: MAIL, two RCPT and DATA in one go; the second RCPT fails. */
    static const struct step sc[] = {
        {S, "220 mx ESMTP\r\n", 0, 0},
        {C, "EHLO c\r\n", 0, 0},
        {S, "250-mx\r\n250 PIPELINING\r\n", 0, 0},
        {C, "MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nRCPT TO:<nobody@y>\r\nDATA\r\n", 0, 0},
        {S, "250 ok\r\n250 ok\r\n550 5.1.1 no such user\r\n354 go\r\n", 0, 0},
        {C, "body\r\n.\r\nQUIT\r\n", 0, 0},
        {S, "250 queued\r\n221 bye\r\n", 0, 0},
        END,
    };
    char *r;
    struct smtp_session *s = run_all(sc, 0, &r);
    const struct smtp_info *in = smtp_session_info(s);
    assert_int_equal(in->rcpt_count, 2);
    assert_int_equal(in->rcpt_accepted, 1);
    assert_int_equal(in->messages_accepted, 1);
    check_dialogue(s, "220 EHLO 250 MAIL RCPT RCPT DATA 250 250 550 354 <data> QUIT 250 221");
    free(r);
    smtp_session_free(s);
}

/* Enhanced status codes (RFC 3463) are given back as they were sent, leading
 * zeros and all, whatever the line's length or form. */
static void test_enhanced_codes_as_sent(void **state)
{
    (void)state;
    static const struct step sc[] = {
        {S, "220 2.0.0 mx ready\r\n", 0, 0},
        {C, "EHLO c\r\n", 0, 0},
        {S, "250-mx\r\n250 8BITMIME\r\n", 0, 0},
        {C, "MAIL FROM:<a@x>\r\n", 0, 0},
        {S, "250 2.1.0 Ok\r\n", 0, 0},
        {C, "RCPT TO:<b@y>\r\n", 0, 0},
        {S, "550 5.07.001 no such user\r\n", 0, 0},
        {C, "RCPT TO:<c@y>\r\n", 0, 0},
        {S, "451 4.7.3 Cannot achieve Exchange Server authentication\r\n", 0, 0},
        {C, "RCPT TO:<d@y>\r\n", 0, 0},
        {S, "452 4.999.999\r\n", 0, 0},
        {C, "QUIT\r\n", 0, 0},
        {S, "221 2.0.0 Bye\r\n", 0, 0},
        END,
    };
    static const char *const want[] = {"2.0.0",    "",      "",          "2.1.0",
                                       "5.07.001", "4.7.3", "4.999.999", "2.0.0"};
    char *r;
    struct smtp_session *s = run_all(sc, 0, &r);
    const struct smtp_info *in = smtp_session_info(s);
    size_t k = 0;
    for (size_t i = 0; i < in->n_transcript; i++) {
        const struct smtp_line *l = &in->transcript[i];
        if (l->kind != SMTP_L_REPLY)
            continue;
        char enh[SMTP_ENH_SIZE];
        smtp_line_enh(l, enh);
        assert_true(k < sizeof(want) / sizeof(want[0]));
        assert_string_equal(enh, want[k]);
        k++;
    }
    assert_int_equal(k, sizeof(want) / sizeof(want[0]));
    free(r);
    smtp_session_free(s);
}

/* Feeds one step to s (direction and bytes), at frame `frame`. */
static void feed(struct smtp_session *s, uint64_t off[2], enum sc_dir d, const char *bytes,
                 uint64_t frame)
{
    struct sc_meta m = {frame, (sc_time)frame * 1000};
    size_t n = strlen(bytes);
    assert_int_equal(smtp_feed(s, d, off[d], (const uint8_t *)bytes, n, &m), SMTP_OK);
    off[d] += n;
}

/* The last command line is kept whether the transcript keeps it (a view of
 * its line), does not keep lines at all, or has stopped at transcript_max
 * (a copy): line_keep bytes of it, NUL-terminated, with its full length. */
static void test_last_command_with_and_without_transcript(void **state)
{
    (void)state;
    static const char *const steps[][2] = {
        {"S", "220 mx\r\n"}, {"C", "EHLO client.example.com\r\n"},
        {"S", "250 mx\r\n"}, {"C", "MAIL FROM:<alice@example.com>\r\n"},
        {"S", "250 ok\r\n"}, {"C", "RCPT TO:<bob@example.com> NOTIFY=NEVER\r\n"},
    };
    /* keep_transcript, transcript_max: kept; off; stopped before the RCPT */
    static const struct {
        bool keep;
        size_t max;
    } mode[] = {{true, 100}, {false, 100}, {true, 3}};
    for (size_t k = 0; k < sizeof(mode) / sizeof(mode[0]); k++) {
        struct smtp_settings set;
        smtp_settings_defaults(&set);
        set.keep_transcript = mode[k].keep;
        set.transcript_max = mode[k].max;
        set.line_keep = 16;
        struct smtp_session *s = smtp_session_new(&set, 0);
        assert_non_null(s);
        uint64_t off[2] = {0, 0};
        for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
            feed(s, off, steps[i][0][0] == 'C' ? C : S, steps[i][1], i + 1);
            const struct smtp_info *in = smtp_session_info(s);
            if (i == 3) /* the MAIL line, cut to 16 bytes */
                text_eq(&in->last_command, "MAIL FROM:<alice");
        }
        const struct smtp_info *in = smtp_session_info(s);
        text_eq(&in->last_command, "RCPT TO:<bob@exa");
        assert_int_equal(in->last_command_len, strlen("RCPT TO:<bob@example.com> NOTIFY=NEVER"));
        assert_int_equal(in->last_command_verb, SMTP_V_RCPT);
        assert_int_equal(in->last_command_meta.frame, 6);
        assert_int_equal(in->n_transcript, mode[k].keep ? (mode[k].max < 6 ? 3 : 6) : 0);
        struct sc_meta end = {7, 7};
        smtp_close(s, &end);
        text_eq(&smtp_session_info(s)->last_command, "RCPT TO:<bob@exa");
        smtp_session_free(s);
    }
}

/* The session's result fields point into the transcript's first text block,
 * which moves once as it grows: every field must follow it, an empty one (an
 * empty command line is the last command) too. */
static void test_fields_follow_the_first_text_block(void **state)
{
    (void)state;
    static const struct step sc[] = {
        {S, "220 mx\r\n", 0, 0},
        {C, "\r\n", 0, 0},
        {S, "500 5.5.2 Error: command not recognized, and a long reply line\r\n", 0, 0},
        END,
    };
    char *r;
    struct smtp_session *s = run_all(sc, 0, &r);
    const struct smtp_info *in = smtp_session_info(s);
    assert_int_equal(in->n_transcript, 3);
    const struct smtp_line *cmd = &in->transcript[1];
    assert_int_equal(cmd->kind, SMTP_L_COMMAND);
    assert_int_equal(cmd->text_len, 0);
    assert_int_equal(in->last_command.len, 0);
    assert_ptr_equal(in->last_command.data, cmd->text);
    assert_ptr_equal(in->banner.data, in->transcript[0].text);
    text_eq(&in->banner, "220 mx");
    free(r);
    smtp_session_free(s);
}

static unsigned count_kind(const struct smtp_info *in, const char *kind)
{
    unsigned k = 0;
    for (size_t i = 0; i < in->events.n; i++)
        k += strcmp(in->events.v[i].kind, kind) == 0;
    return k;
}

/* A session with the default settings and a transcript, fed a greeting and
 * a client's HELO, MAIL, RCPT and DATA (frames 1 and 2). */
static struct smtp_session *greeted_to_data(uint64_t off[2])
{
    struct smtp_settings set;
    smtp_settings_defaults(&set);
    set.keep_transcript = true;
    struct smtp_session *s = smtp_session_new(&set, 0);
    assert_non_null(s);
    feed(s, off, S, "220 mx\r\n", 1);
    feed(s, off, C, "HELO c\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n", 2);
    return s;
}

/* No memory for a message's state when the 354 comes: an event says so, the
 * rest of the client's bytes are only counted, and the session goes on. */
static void test_message_state_out_of_memory(void **state)
{
    (void)state;
    uint64_t off[2] = {0, 0};
    struct smtp_session *s = greeted_to_data(off);
    feed(s, off, S, "250 hi\r\n250 ok\r\n250 ok\r\n", 3);
    calloc_fail_in = 1; /* the next calloc: the message's state, at the 354 */
    feed(s, off, S, "354 go\r\n", 4);
    assert_int_equal(calloc_fail_in, 0);
    feed(s, off, C, "Subject: x\r\n\r\nbody\r\n.\r\nQUIT\r\n", 5);
    feed(s, off, S, "250 queued\r\n221 bye\r\n", 6);
    struct sc_meta end = {7, 7000};
    smtp_close(s, &end);
    const struct smtp_info *in = smtp_session_info(s);
    assert_int_equal(count_kind(in, "out_of_memory"), 1);
    assert_int_equal(in->messages, 0);
    assert_true(in->confidence <= 0.6);                      /* lost sync with the client */
    assert_int_equal(count_kind(in, "unexpected_reply"), 0); /* ... so said once */
    assert_int_equal(in->bytes[SC_DIR_C2S], off[SC_DIR_C2S]);
    assert_int_equal(in->max_header_line, 0); /* the body was not read */
    smtp_session_free(s);
}

/* No memory to hold bytes sent before the reply to DATA: they are read by
 * their content at once (here: the message), as with no reply at all. */
static void test_held_bytes_out_of_memory(void **state)
{
    (void)state;
    uint64_t off[2] = {0, 0};
    struct smtp_session *s = greeted_to_data(off);
    calloc_fail_in = 1; /* the next calloc: the held bytes' buffer */
    feed(s, off, C, "Subject: x\r\n\r\nbody\r\n.\r\nQUIT\r\n", 3);
    assert_int_equal(calloc_fail_in, 0);
    feed(s, off, S, "250 hi\r\n250 ok\r\n250 ok\r\n354 go\r\n250 queued\r\n221 bye\r\n", 4);
    struct sc_meta end = {5, 5000};
    smtp_close(s, &end);
    const struct smtp_info *in = smtp_session_info(s);
    assert_int_equal(count_kind(in, "out_of_memory"), 1);
    assert_int_equal(in->messages, 1);
    assert_int_equal(in->messages_accepted, 1);
    assert_int_equal(in->max_header_line, strlen("Subject: x"));
    check_dialogue(s, "220 HELO MAIL RCPT DATA <data> QUIT 250 250 250 354 250 221");
    smtp_session_free(s);
}

static void test_body_sent_before_354_is_held(void **state)
{
    (void)state;
    /* The client does not wait for 354: its message is held until the reply
     * says how to read it. */
    static const struct step sc[] = {
        {S, "220 mx\r\n", 0, 0},
        {C, "HELO c\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\nMAIL FROM:<fake>\r\n.\r\n", 0,
         0},
        {S, "250 hi\r\n250 ok\r\n250 ok\r\n354 go\r\n250 queued\r\n", 0, 0},
        END,
    };
    char *r;
    struct smtp_session *s = run_all(sc, 0, &r);
    const struct smtp_info *in = smtp_session_info(s);
    text_eq(&in->mail_from, "<a@x>");
    assert_int_equal(in->messages, 1);
    assert_int_equal(in->messages_accepted, 1);
    check_dialogue(s, "220 HELO MAIL RCPT DATA <data> 250 250 250 354 250");
    free(r);
    smtp_session_free(s);
}

static void test_refused_data_reads_commands(void **state)
{
    (void)state;
    static const struct step sc[] = {
        {S, "220 mx\r\n", 0, 0},        {C, "HELO c\r\n", 0, 0},
        {S, "250 hi\r\n", 0, 0},        {C, "DATA\r\n", 0, 0},
        {S, "503 need RCPT\r\n", 0, 0}, {C, "MAIL FROM:<a@x>\r\n", 0, 0},
        {S, "250 ok\r\n", 0, 0},        END,
    };
    char *r;
    struct smtp_session *s = run_all(sc, 0, &r);
    assert_int_equal(smtp_session_info(s)->messages, 0);
    check_dialogue(s, "220 HELO 250 DATA 503 MAIL 250");
    free(r);
    smtp_session_free(s);
}

static void test_one_sided_client_reads_body_by_content(void **state)
{
    (void)state;
    /* No server at all (one-sided capture): DATA's bytes are the message. */
    static const struct step sc[] = {
        {C,
         "EHLO c\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\nSubject: x\r\n\r\nhi\r\n.\r\n"
         "QUIT\r\n",
         0, 0},
        END,
    };
    char *r;
    struct smtp_session *s = run_all(sc, 0, &r);
    assert_int_equal(smtp_session_info(s)->messages, 1);
    check_dialogue(s, "EHLO MAIL RCPT DATA <data> QUIT");
    free(r);
    smtp_session_free(s);
}

static void test_bdat_chunks(void **state)
{
    (void)state;
    static const struct step sc[] = {
        {S, "220 mx\r\n", 0, 0},
        {C, "EHLO c\r\n", 0, 0},
        {S, "250-mx\r\n250-CHUNKING\r\n250 PIPELINING\r\n", 0, 0},
        {C, "MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nBDAT 9\r\n0123\r\n.\r\nBDAT 0 LAST\r\n", 0, 0},
        {S, "250 ok\r\n250 ok\r\n250 9 octets\r\n250 queued\r\n", 0, 0},
        {C, "BDAT 3 last\r\nxyzQUIT\r\n", 0, 0},
        {S, "503 no transaction\r\n221 bye\r\n", 0, 0},
        END,
    };
    char *r;
    struct smtp_session *s = run_all(sc, 0, &r);
    const struct smtp_info *in = smtp_session_info(s);
    /* The chunk's "\r\n.\r\n" is data, not an end of data. */
    assert_int_equal(in->messages, 2);
    assert_int_equal(in->messages_accepted, 1);
    check_dialogue(s, "220 EHLO 250 MAIL RCPT BDAT <data> BDAT <data> 250 250 250 250 BDAT <data> "
                      "QUIT 503 221");
    free(r);
    smtp_session_free(s);
}

static void test_bdat_invalid_sizes_stay_commands(void **state)
{
    (void)state;
    static const struct step sc[] = {
        {S, "220 mx\r\n", 0, 0},
        {C, "BDAT 99999999999999999999999 LAST\r\n", 0, 0},
        {S, "501 bad\r\n", 0, 0},
        {C, "BDAT -5\r\nBDAT 5 X\r\nQUIT\r\n", 0, 0},
        {S, "501 bad\r\n501 bad\r\n221 bye\r\n", 0, 0},
        END,
    };
    char *r;
    struct smtp_session *s = run_all(sc, 0, &r);
    assert_int_equal(sc_events_count(&smtp_session_info(s)->events, "bdat_invalid"), 3);
    check_dialogue(s, "220 BDAT 501 BDAT BDAT QUIT 501 501 221");
    free(r);
    smtp_session_free(s);
}

static void test_auth_plain_and_login_are_redacted(void **state)
{
    (void)state;
    static const struct step sc[] = {
        {S, "220 mx\r\n", 0, 0},           {C, "AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n", 0, 0},
        {S, "535 5.7.8 failed\r\n", 0, 0}, {C, "AUTH LOGIN\r\n", 0, 0},
        {S, "334 VXNlcm5hbWU6\r\n", 0, 0}, {C, "YWxpY2U=\r\n", 0, 0},
        {S, "334 UGFzc3dvcmQ6\r\n", 0, 0}, {C, "c2VjcmV0\r\n", 0, 0},
        {S, "235 2.7.0 ok\r\n", 0, 0},     {C, "MAIL FROM:<alice@x>\r\n", 0, 0},
        {S, "250 ok\r\n", 0, 0},           END,
    };
    char *r;
    struct smtp_session *s = run_all(sc, 0, &r);
    const struct smtp_info *in = smtp_session_info(s);
    text_eq(&in->auth_mech, "PLAIN");
    assert_true(in->auth_success);
    assert_null(strstr(r, "AGFsaWNlAHNlY3JldA"));
    assert_null(strstr(r, "YWxpY2U"));
    assert_null(strstr(r, "c2VjcmV0"));
    assert_non_null(strstr(r, "AUTH PLAIN [initial response redacted, 20 bytes]"));
    check_dialogue(s, "220 AUTH 535 AUTH 334 <auth> 334 <auth> 235 MAIL 250");
    free(r);
    smtp_session_free(s);
}

static void test_auth_never_leaks_when_replies_slip(void **state)
{
    (void)state;
    /* The server never answers EHLO, so the 334s arrive one reply early;
     * the credentials must still be treated as such. */
    static const struct step sc[] = {
        {S, "220 mx\r\n", 0, 0},
        {C, "EHLO c\r\n", 0, 0},
        {C, "AUTH LOGIN\r\n", 0, 0},
        {S, "334 VXNlcm5hbWU6\r\n", 0, 0},
        {C, "dXNlcjE=\r\n", 0, 0},
        {S, "334 UGFzc3dvcmQ6\r\n", 0, 0},
        {C, "UGFzczEyMw==\r\n", 0, 0},
        {S, "235 ok\r\n", 0, 0},
        {C, "QUIT\r\n", 0, 0},
        {S, "221 bye\r\n", 0, 0},
        END,
    };
    char *r;
    struct smtp_session *s = run_all(sc, 0, &r);
    assert_null(strstr(r, "dXNlcjE"));
    assert_null(strstr(r, "UGFzczEyMw"));
    assert_true(has_event(s, "reply_missing"));
    check_dialogue(s, "220 EHLO AUTH 334 <auth> 334 <auth> 235 QUIT 221");
    free(r);
    smtp_session_free(s);
}

static const uint8_t tls_client[] = {
    0x16, 0x03, 0x01, 0x00, 0x05, 1,    2,    3,   4, 5, /* handshake */
    0x14, 0x03, 0x03, 0x00, 0x01, 1,                     /* change cipher spec */
    0x17, 0x03, 0x03, 0x00, 0x03, 0xaa, 0xbb, 0xcc};     /* application data */
static const uint8_t tls_server[] = {0x16, 0x03, 0x03, 0x00, 0x02, 9,    9,
                                     0x17, 0x03, 0x03, 0x00, 0x02, 0xee, 0xff};

static void test_starttls_established(void **state)
{
    (void)state;
    static const struct step sc[] = {
        {S, "220 mx\r\n", 0, 0},
        {C, "EHLO c\r\n", 0, 0},
        {S, "250-mx\r\n250 STARTTLS\r\n", 0, 0},
        {C, "STARTTLS\r\n", 0, 0},
        {S, "220 2.0.0 Ready to start TLS\r\n", 0, 0},
        {C, (const char *)tls_client, sizeof(tls_client), 0},
        {S, (const char *)tls_server, sizeof(tls_server), 0},
        END,
    };
    char *r;
    struct smtp_session *s = run_all(sc, 0, &r);
    const struct smtp_info *in = smtp_session_info(s);
    assert_true(in->starttls_offered);
    assert_true(in->starttls_attempted);
    assert_int_equal(in->starttls, SMTP_TLS_ESTABLISHED);
    assert_int_equal(in->tls_bytes[C], sizeof(tls_client));
    assert_int_equal(in->tls_bytes[S], sizeof(tls_server));
    assert_int_equal(in->tls_records[C], 3);
    assert_int_equal(in->tls_records[S], 2);
    free(r);
    smtp_session_free(s);
}

static void test_starttls_outcomes(void **state)
{
    (void)state;
    static const struct step refused[] = {
        {S, "220 mx\r\n", 0, 0},
        {C, "EHLO c\r\n", 0, 0},
        {S, "250-mx\r\n250 STARTTLS\r\n", 0, 0},
        {C, "STARTTLS\r\n", 0, 0},
        {S, "454 4.7.0 TLS not available due to temporary reason\r\n", 0, 0},
        {C, "MAIL FROM:<a@x>\r\n", 0, 0},
        {S, "250 ok\r\n", 0, 0},
        END,
    };
    static const struct step noreply[] = {
        {S, "220 mx\r\n", 0, 0},
        {C, "EHLO c\r\n", 0, 0},
        {S, "250 STARTTLS?\r\n", 0, 0},
        {C, "STARTTLS\r\n", 0, 0},
        END,
    };
    static const struct step cleartext[] = {
        {S, "220 mx\r\n", 0, 0},
        {C, "EHLO c\r\n", 0, 0},
        {S, "250-mx\r\n250 STARTTLS\r\n", 0, 0},
        {C, "STARTTLS\r\n", 0, 0},
        {S, "220 go ahead\r\n", 0, 0},
        {C, "EHLO c\r\n", 0, 0},
        {S, "250 mx\r\n", 0, 0},
        END,
    };
    static const struct step accepted[] = {
        {S, "220 mx\r\n", 0, 0},
        {C, "STARTTLS\r\n", 0, 0},
        {S, "220 go ahead\r\n", 0, 0},
        {C, (const char *)tls_client, 10, 0},
        END,
    };
    char *r;
    struct smtp_session *s = run_all(refused, 0, &r);
    assert_int_equal(smtp_session_info(s)->starttls, SMTP_TLS_REFUSED);
    check_dialogue(s, "220 EHLO 250 STARTTLS 454 MAIL 250");
    free(r);
    smtp_session_free(s);
    s = run_all(noreply, 0, &r);
    assert_int_equal(smtp_session_info(s)->starttls, SMTP_TLS_NO_REPLY);
    assert_false(smtp_session_info(s)->starttls_offered); /* "STARTTLS?" is no keyword line */
    free(r);
    smtp_session_free(s);
    s = run_all(cleartext, 0, &r);
    assert_int_equal(smtp_session_info(s)->starttls, SMTP_TLS_CLEARTEXT_AFTER_220);
    assert_true(has_event(s, "cleartext_after_starttls"));
    check_dialogue(s, "220 EHLO 250 STARTTLS 220 EHLO 250");
    free(r);
    smtp_session_free(s);
    s = run_all(accepted, 0, &r);
    assert_int_equal(smtp_session_info(s)->starttls, SMTP_TLS_ACCEPTED);
    free(r);
    smtp_session_free(s);
}

static void test_reply_anomalies(void **state)
{
    (void)state;
    /* A banner with no space after the code (ASA style), a multi-line reply
     * whose code changes, a line with no code, bare LF, and a multi-line
     * reply that never ends (the A2 broken banner). */
    static const struct step sc[] = {
        {S, "220*****************\r\n", 0, 0}, {C, "EHLO c\n", 0, 0},
        {S, "250-mx\r\n251 odd\r\n", 0, 0},    {C, "NOOP\r\n", 0, 0},
        {S, "250-ok\r\n*********\r\n", 0, 0},  END,
    };
    char *r;
    struct smtp_session *s = run_all(sc, 0, &r);
    assert_true(has_event(s, "reply_separator"));
    assert_true(has_event(s, "reply_code_mismatch"));
    assert_true(has_event(s, "reply_malformed"));
    assert_true(has_event(s, "bare_lf"));
    assert_true(has_event(s, "reply_incomplete"));
    text_eq(&smtp_session_info(s)->banner, "220*****************");
    free(r);
    smtp_session_free(s);
}

static void test_long_and_unknown_commands_are_kept(void **state)
{
    (void)state;
    char line[700];
    memset(line, 'A', sizeof(line));
    memcpy(line, "XXXXXXXX ", 9);
    memcpy(line + sizeof(line) - 3, "\r\n", 3);
    struct step sc[] = {
        {S, "220 mx\r\n", 0, 0},
        {C, line, 0, 0},
        {S, "500 5.5.1 Command unrecognized: \"XXXXXXXX\"\r\n", 0, 0},
        END,
    };
    char *r;
    struct smtp_session *s = run_all(sc, 0, &r);
    assert_true(has_event(s, "line_too_long"));
    assert_true(has_event(s, "unknown_command"));
    assert_non_null(strstr(r, "unknown verb \"XXXXXXXX\""));
    const struct smtp_info *in = smtp_session_info(s);
    assert_int_equal(in->n_transcript, 3);
    assert_int_equal(in->transcript[1].len, sizeof(line) - 3);
    free(r);
    smtp_session_free(s);
}

static void test_gap_resynchronises(void **state)
{
    (void)state;
    static const struct step sc[] = {
        {S, "220 mx\r\n", 0, 0},
        {C, "EHLO c\r\nMAIL FR", 0, 0},
        {C, NULL, 0, 40},
        {C, "OM:<lost>\r\nRCPT TO:<b@y>\r\n", 0, 0},
        {S, "250 mx\r\n250 ok\r\n250 ok\r\n", 0, 0},
        END,
    };
    char *r;
    struct smtp_session *s = run_all(sc, 0, &r);
    const struct smtp_info *in = smtp_session_info(s);
    assert_int_equal(in->gaps, 1);
    assert_true(in->confidence < 1.0);
    assert_int_equal(in->rcpt_count, 1);
    assert_int_equal(in->mail_from.len, 0);
    free(r);
    smtp_session_free(s);
}

static void test_lax_end_of_data_follows_the_server(void **state)
{
    (void)state;
    /* Sendmail-style: the server takes "\n.\n" as the end, so what follows
     * it are commands. */
    static const struct step sc[] = {
        {S, "220 mx\r\n", 0, 0},
        {C, "DATA\r\n", 0, 0},
        {S, "354 go\r\n", 0, 0},
        {C, "hi\n.\nNOOP\r\n", 0, 0},
        {S, "250 queued\r\n250 ok\r\n", 0, 0},
        END,
    };
    char *r;
    struct smtp_session *s = run_all(sc, 0, &r);
    assert_true(has_event(s, "lax_end_of_data"));
    assert_int_equal(smtp_session_info(s)->messages_accepted, 1);
    check_dialogue(s, "220 DATA 354 <data> NOOP 250 250");
    free(r);
    smtp_session_free(s);

    /* A strict server: the same bytes stay inside the message. */
    static const struct step strict[] = {
        {S, "220 mx\r\n", 0, 0},     {C, "DATA\r\n", 0, 0},
        {S, "354 go\r\n", 0, 0},     {C, "hi\n.\nMAIL FROM:<x>\r\n.\r\n", 0, 0},
        {S, "250 queued\r\n", 0, 0}, END,
    };
    s = run_all(strict, 0, &r);
    assert_true(has_event(s, "bare_lf_dot_in_data"));
    assert_false(has_event(s, "lax_end_of_data"));
    assert_int_equal(smtp_session_info(s)->messages, 1);
    check_dialogue(s, "220 DATA 354 <data> 250");
    free(r);
    smtp_session_free(s);
}

static void test_probe_verdicts(void **state)
{
    (void)state;
    static const struct step ftp[] = {
        {S, "220 ProFTPD Server ready\r\n", 0, 0}, {C, "USER anonymous\r\n", 0, 0}, END};
    static const struct step http[] = {{C, "GET / HTTP/1.1\r\n\r\n", 0, 0}, END};
    static const struct step smtp[] = {
        {S, "220 mx ESMTP\r\n", 0, 0}, {C, "EHLO c\r\n", 0, 0}, {S, "250 mx\r\n", 0, 0}, END};
    static const struct step ssh[] = {{S, "SSH-2.0-OpenSSH_9.2\r\n", 0, 0}, END};
    enum smtp_feed_result r;
    struct smtp_session *s = run(ftp, WHOLE, 0, SMTP_F_PROBE, &r);
    assert_int_equal(r, SMTP_NOT_SMTP);
    assert_false(smtp_session_confirmed(s));
    smtp_session_free(s);
    s = run(http, BYTES, 0, SMTP_F_PROBE, &r);
    assert_int_equal(r, SMTP_NOT_SMTP);
    smtp_session_free(s);
    s = run(ssh, WHOLE, 0, SMTP_F_PROBE, &r);
    assert_int_equal(r, SMTP_NOT_SMTP);
    smtp_session_free(s);
    s = run(smtp, BYTES, 0, SMTP_F_PROBE, &r);
    assert_int_equal(r, SMTP_OK);
    assert_true(smtp_session_confirmed(s));
    smtp_session_free(s);
}

/* A probed line longer than SMTP_PROBE_LINE_MAX gives up however it is
 * segmented: fed whole (its LF in the same feed) it was dispatched, fed a
 * byte at a time it gave up (found by fuzz_smtp's incrementality check). */
static void test_probe_long_line_any_segmentation(void **state)
{
    (void)state;
    static char line[700];
    memset(line, 'x', sizeof(line));
    memcpy(line, "220 ", 4);
    memcpy(line + sizeof(line) - 3, "\r\n", 3); /* CR, LF, NUL */
    const struct step script[] = {{S, line, 0, 0}, END};
    static const struct step ok[] = {
        {S, "220 mx ESMTP\r\n", 0, 0}, {C, "EHLO c\r\n", 0, 0}, {S, "250 mx\r\n", 0, 0}, END};
    enum split hows[] = {WHOLE, BYTES, AT};
    for (size_t i = 0; i < 3; i++) {
        enum smtp_feed_result r;
        struct smtp_session *s = run(script, hows[i], 600, SMTP_F_PROBE, &r);
        assert_int_equal(r, SMTP_NOT_SMTP);
        assert_false(smtp_session_confirmed(s));
        smtp_session_free(s);
        s = run(ok, hows[i], 5, SMTP_F_PROBE, &r); /* short lines still probe as SMTP */
        assert_int_equal(r, SMTP_OK);
        assert_true(smtp_session_confirmed(s));
        smtp_session_free(s);
    }
}

static const uint8_t socks5_hello[] = {5, 1, 0};
static const uint8_t socks5_choice[] = {5, 0};
static const uint8_t socks5_req[] = {5, 1, 0, 3, 6, 'm', 'x', '.', 'o', 'r', 'g', 0, 25};
static const uint8_t socks5_rep[] = {5, 0, 0, 1, 10, 0, 0, 1, 0x04, 0x38};

static void test_smtp_through_socks5_and_connect(void **state)
{
    (void)state;
    static const struct step socks[] = {
        {C, (const char *)socks5_hello, sizeof(socks5_hello), 0},
        {S, (const char *)socks5_choice, sizeof(socks5_choice), 0},
        {C, (const char *)socks5_req, sizeof(socks5_req), 0},
        {S, (const char *)socks5_rep, sizeof(socks5_rep), 0},
        {S, "220 mx ESMTP\r\n", 0, 0},
        {C, "EHLO c\r\n", 0, 0},
        {S, "250 mx\r\n", 0, 0},
        END,
    };
    char *r;
    struct smtp_session *s = run_all(socks, SMTP_F_PROBE, &r);
    assert_true(smtp_session_confirmed(s));
    text_eq(&smtp_session_info(s)->proxy, "socks5 to mx.org:25");
    check_dialogue(s, "220 EHLO 250");
    free(r);
    smtp_session_free(s);

    static const struct step connect[] = {
        {C, "CONNECT mx.org:25 HTTP/1.1\r\nProxy-Authorization: Basic c2VjcmV0\r\n\r\n", 0, 0},
        {S, "HTTP/1.1 200 Connection established\r\n\r\n220 mx ESMTP\r\n", 0, 0},
        {C, "HELO c\r\n", 0, 0},
        {S, "250 mx\r\n", 0, 0},
        END,
    };
    s = run_all(connect, SMTP_F_PROBE, &r);
    assert_true(smtp_session_confirmed(s));
    text_eq(&smtp_session_info(s)->proxy, "http-connect to mx.org:25");
    assert_null(strstr(r, "c2VjcmV0"));
    free(r);
    smtp_session_free(s);

    static const struct step refused[] = {
        {C, (const char *)socks5_hello, sizeof(socks5_hello), 0},
        {S, "\x05\xff", 2, 0},
        END,
    };
    enum smtp_feed_result res;
    s = run(refused, WHOLE, 0, SMTP_F_PROBE, &res);
    assert_int_equal(res, SMTP_NOT_SMTP);
    smtp_session_free(s);
}

/* The segment that completes a proxy handshake may carry more than the
 * handshake limit (proxy_max) after it: here the proxy's SOCKS4 reply comes
 * with a 9 KB multi-line greeting.  The handshake itself fits, so the
 * tunnel is followed, as it is when the same bytes come one at a time
 * (run_all compares every way of cutting them). */
static void test_proxy_reply_with_long_greeting(void **state)
{
    (void)state;
    static const uint8_t socks4_req[] = {4, 1, 0, 25, 192, 0, 2, 25, 'u', 0};
    static const uint8_t socks4_rep[] = {0, 0x5a, 0, 0, 0, 0, 0, 0};
    struct sc_buf greet;
    sc_buf_init(&greet, 0);
    sc_buf_append(&greet, socks4_rep, sizeof(socks4_rep));
    for (int i = 0; i < 150; i++)
        sc_buf_puts(&greet, "220-mx.example.com welcomes you, line after line after line\r\n");
    sc_buf_puts(&greet, "220 mx ESMTP\r\n");
    assert_true(greet.len > 8192); /* smtp_settings_defaults' proxy_max */
    const struct step sc[] = {
        {C, (const char *)socks4_req, sizeof(socks4_req), 0},
        {S, (const char *)greet.data, greet.len, 0},
        {C, "EHLO c\r\n", 0, 0},
        {S, "250 mx\r\n", 0, 0},
        END,
    };
    char *r;
    struct smtp_session *s = run_all(sc, SMTP_F_PROBE, &r);
    assert_true(smtp_session_confirmed(s));
    text_eq(&smtp_session_info(s)->proxy, "socks4 to 192.0.2.25:25");
    assert_int_equal(smtp_session_info(s)->banner_lines, 151);
    check_dialogue(s, "220 EHLO 250");
    free(r);
    smtp_session_free(s);
    sc_buf_free(&greet);
}

static void test_midstream_start(void **state)
{
    (void)state;
    /* Picked up mid-session: replies to commands we never saw are no error. */
    static const struct step sc[] = {
        {S, "250 2.1.5 Ok\r\n", 0, 0}, {C, "DATA\r\n", 0, 0},       {S, "354 go\r\n", 0, 0},
        {C, "x\r\n.\r\n", 0, 0},       {S, "250 queued\r\n", 0, 0}, END,
    };
    char *r;
    struct smtp_session *s = run_all(sc, SMTP_F_MIDSTREAM, &r);
    const struct smtp_info *in = smtp_session_info(s);
    assert_true(in->midstream);
    assert_false(has_event(s, "unexpected_reply"));
    assert_int_equal(in->messages_accepted, 1);
    assert_int_equal(in->banner.len, 0);
    assert_true(in->confidence < 1.0);
    free(r);
    smtp_session_free(s);
}

/* A one-message dialogue around msg (the message with its final
 * CRLF.CRLF; len 0: NUL-terminated), for the message-reading tests. */
#define MSG_STEPS 14
static void message_dialogue(struct step sc[MSG_STEPS], const char *msg, size_t len)
{
    const struct step d[MSG_STEPS] = {
        {S, "220 mx ESMTP\r\n", 0, 0}, {C, "HELO c\r\n", 0, 0},
        {S, "250 mx\r\n", 0, 0},       {C, "MAIL FROM:<a@b>\r\n", 0, 0},
        {S, "250 ok\r\n", 0, 0},       {C, "RCPT TO:<c@d>\r\n", 0, 0},
        {S, "250 ok\r\n", 0, 0},       {C, "DATA\r\n", 0, 0},
        {S, "354 go\r\n", 0, 0},       {C, msg, len, 0},
        {S, "250 queued\r\n", 0, 0},   {C, "QUIT\r\n", 0, 0},
        {S, "221 bye\r\n", 0, 0},      END,
    };
    memcpy(sc, d, sizeof(d));
}

/* Message lines are read in place, 64 bytes at a time (smtp__body_lines):
 * the header-line length and the filename= found that way must be what
 * the byte-wise path finds, whatever the segmentation.  The lines cross
 * 64-byte blocks, a filename='s '=' sits at the last counted byte of its line
 * (byte 95) and one just past it (byte 96: not seen, by design), and bare LF
 * and dot-stuffed lines break the run of in-place lines. */
static void test_body_lines_any_segmentation(void **state)
{
    (void)state;
    char body[2048];
    char pad95[96], pad96[97], longhdr[201];
    /* "...filename=" with its '=' at index 95 and 96 of the line */
    memset(pad95, 'a', sizeof(pad95));
    memcpy(pad95 + 95 - 8, "filename", 8);
    pad95[95] = 0;
    memset(pad96, 'b', sizeof(pad96));
    memcpy(pad96 + 96 - 8, "FileName", 8);
    pad96[96] = 0;
    memset(longhdr, 'h', sizeof(longhdr));
    memcpy(longhdr, "X-Long: ", 8);
    longhdr[200] = 0;
    int n = snprintf(body, sizeof(body),
                     "Subject: lines\r\n%s\r\nMIME-Version: 1.0\r\n\r\n"
                     "--b\r\nContent-Disposition: attachment; filename=\"abc.txt\"\r\n"
                     "%s=\"0123456789012345678901234567890123456789\"\r\n"
                     "%s=\"never-seen-because-it-is-past-the-prefix\"\r\n"
                     "bare LF line\n..stuffed\r\nQP=3D=3D soft=\r\n"
                     "=\r\n\r\n\n",
                     longhdr, pad95, pad96);
    assert_true(n > 0 && (size_t)n < sizeof(body));
    /* the same body again, after the end, as a second message */
    static const char *const tail = ".\r\n";
    static char msg[2100];
    snprintf(msg, sizeof(msg), "%s%s", body, tail);
    struct step sc[MSG_STEPS];
    message_dialogue(sc, msg, 0);
    char *r;
    struct smtp_session *s = run_all(sc, 0, &r);
    const struct smtp_info *in = smtp_session_info(s);
    assert_int_equal(in->max_header_line, 200);
    assert_int_equal(in->max_header_meta.frame, 10);
    /* the '=' at byte 95 counts; its opening quote lies past the kept
     * prefix, so the value is measured to the line's end, quotes included */
    assert_int_equal(in->max_filename, 42);
    assert_int_equal(in->max_filename_meta.frame, 10);
    assert_int_equal(in->messages, 1);
    assert_int_equal(in->messages_accepted, 1);
    assert_false(in->eod_split);
    free(r);
    smtp_session_free(s);
}

/* Past the header section, blocks of base64 lines are passed over whole
 * (smtp__body_lines): the line after them must still start where it does.
 * A filename='s '=' at byte 95 of that line counts and one at byte 96 does
 * not, however many 77-byte lines come first (so at every alignment to the
 * 64-byte blocks). */
static void test_body_after_base64_blocks(void **state)
{
    (void)state;
    static const char b64[] =
        "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAxMjM0";
    for (unsigned at = 95; at <= 96; at++) {
        for (unsigned lines = 1; lines <= 9; lines++) {
            static char msg[2048];
            size_t n = (size_t)snprintf(msg, sizeof(msg), "Subject: b\r\n\r\n");
            for (unsigned k = 0; k < lines; k++)
                n += (size_t)snprintf(msg + n, sizeof(msg) - n, "%s\r\n", b64);
            memset(msg + n, 'a', at - 8);
            n += at - 8;
            n += (size_t)snprintf(msg + n, sizeof(msg) - n, "filename=x123456\r\n%s\r\n.\r\n", b64);
            struct step sc[MSG_STEPS];
            message_dialogue(sc, msg, 0);
            char *r;
            struct smtp_session *s = run_all(sc, 0, &r);
            const struct smtp_info *in = smtp_session_info(s);
            if (in->max_filename != (at == 95 ? 7u : 0u) || in->messages != 1)
                fail_msg("'=' at byte %u after %u lines: filename %llu, messages %llu", at, lines,
                         (unsigned long long)in->max_filename, (unsigned long long)in->messages);
            free(r);
            smtp_session_free(s);
        }
    }
}

/* Reply lines are kept in one buffer: line_keep bytes of each, at most
 * reply_lines_max of a reply.  A long greeting (more lines and bytes than an
 * idle session keeps room for) comes first, so the EHLO reply's lines are
 * read after that room was given back. */
static void test_reply_lines_kept_within_limits(void **state)
{
    (void)state;
    struct smtp_settings set;
    smtp_settings_defaults(&set);
    set.line_keep = 12;
    set.reply_lines_max = 4;
    for (int trimmed = 0; trimmed < 2; trimmed++) {
        set.reply_lines_max = trimmed ? 40 : 4;
        struct smtp_session *s = smtp_session_new(&set, 0);
        assert_non_null(s);
        struct sc_meta m = {1, 1};
        uint64_t off[2] = {0, 0};
        static char greet[4096];
        size_t g = 0;
        for (int i = 0; i < 30; i++)
            g += (size_t)snprintf(greet + g, sizeof(greet) - g,
                                  "220-%02d a greeting line longer than line_keep\r\n", i);
        g += (size_t)snprintf(greet + g, sizeof(greet) - g, "220 mx ready\r\n");
        const char *steps[][2] = {
            {"s", greet},
            {"c", "EHLO client.example\r\n"},
            {"s", "250-mx.example.org greets you\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n"
                  "250-STARTTLS\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n"},
            {"c", "QUIT\r\n"},
            {"s", "221 bye\r\n"},
        };
        for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
            enum sc_dir d = steps[i][0][0] == 'c' ? SC_DIR_C2S : SC_DIR_S2C;
            size_t n = strlen(steps[i][1]);
            smtp_feed(s, d, off[d], (const uint8_t *)steps[i][1], n, &m);
            off[d] += n;
            m.frame++;
        }
        smtp_close(s, &m);
        const struct smtp_info *in = smtp_session_info(s);
        text_eq(&in->ehlo_reply, "250 mx.examp"); /* ehlo_reply is cut at line_keep too */
        assert_true(in->starttls_offered);        /* seen in every line, kept or not */
        if (trimmed) {
            assert_int_equal(in->n_ehlo_keywords, 5);
            /* line_keep cuts the line as sent, "250-" included */
            text_eq(&in->ehlo_keywords[0], "PIPELINI");
            text_eq(&in->ehlo_keywords[1], "SIZE 102");
            text_eq(&in->ehlo_keywords[4], "SMTPUTF8");
        } else {
            assert_int_equal(in->n_ehlo_keywords, 3);
            text_eq(&in->ehlo_keywords[2], "STARTTLS");
        }
        assert_int_equal(in->ehlo_keywords[0].data[in->ehlo_keywords[0].len], 0);
        smtp_session_free(s);
    }
}

/* splitmix64, for the generated bodies below (fixed seeds). */
static uint64_t t_rng(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Writes into b (room for cap bytes) a generated message: header lines of
 * 1-300 bytes, an empty line, then body lines of 0-199 bytes over an alphabet
 * dense in '=', CR and '.', some of them carrying a filename= at a random
 * place, mostly ended by CRLF and sometimes by a bare LF, and the final
 * CRLF.CRLF.  Returns the length. */
static size_t t_gen_message(uint64_t *x, char *b, size_t cap)
{
    static const char alpha[] = "ab=\r.- ";
    size_t n = 0;
    unsigned headers = 1 + (unsigned)(t_rng(x) % 8);
    for (unsigned h = 0; h < headers && n + 310 < cap; h++) {
        size_t len = 1 + (size_t)(t_rng(x) % 300);
        for (size_t k = 0; k < len; k++)
            b[n++] = (char)('a' + t_rng(x) % 26);
        n += (size_t)sprintf(b + n, "\r\n");
    }
    n += (size_t)sprintf(b + n, "\r\n");
    /* Half the bodies look like base64 (lines of 60 to 80 bytes with no '='
     * for long stretches), the case the scan passes over a block at a time;
     * some of their lines start with '.' or are empty. */
    bool b64 = t_rng(x) % 2;
    while (n + 260 < cap) {
        size_t len = (size_t)(t_rng(x) % 200), start = n;
        if (b64) {
            len = 60 + (size_t)(t_rng(x) % 21);
            unsigned r = (unsigned)(t_rng(x) % 64);
            if (r == 0)
                len = 0;
            else if (r == 1)
                b[n++] = '.';
        }
        for (size_t k = n - start; k < len; k++)
            b[n++] = b64 ? (t_rng(x) % 500 ? "Zb9+/"[t_rng(x) % 5] : '=')
                         : alpha[t_rng(x) % (sizeof(alpha) - 1)];
        if (len > 20 && t_rng(x) % (b64 ? 40 : 4) == 0) {
            size_t at = start + (size_t)(t_rng(x) % (len - 20));
            memcpy(b + at, t_rng(x) % 2 ? "filename=\"f.txt\"" : "FileName=g.bin;", 15);
        }
        /* a line of only "." would end the message early */
        if (n - start == 1 && b[start] == '.')
            b[n++] = '.';
        if (t_rng(x) % (b64 ? 50 : 8))
            b[n++] = '\r';
        else if (!b64)
            b[n++] = 'x';
        b[n++] = '\n';
    }
    n += (size_t)sprintf(b + n, "\r\n.\r\n");
    return n;
}

/* The AVX2 and SSE2 scans of message lines, and the byte-wise path, must
 * find the same header-line length, filename= and line endings in any
 * message (on a CPU without AVX2 the first two are the same code). */
static void test_body_scans_agree(void **state)
{
    (void)state;
    static char msg[6000];
    uint64_t x = 42;
    for (unsigned round = 0; round < 300; round++) {
        size_t len = t_gen_message(&x, msg, 1000 + (size_t)(t_rng(&x) % 5000));
        struct step sc[MSG_STEPS];
        message_dialogue(sc, msg, len);
        struct smtp_session *w = run(sc, WHOLE, 0, 0, NULL);
        struct smtp_session *n = run(sc, WHOLE, 0, T_NO_AVX2, NULL);
        struct smtp_session *b = run(sc, BYTES, 0, T_NO_AVX2, NULL);
        /* Each step cut in two at the same place: the message resumes
         * mid-line or at a line start. */
        size_t k = (size_t)(t_rng(&x) % (len + 1));
        struct smtp_session *wa = run(sc, AT, k, 0, NULL);
        struct smtp_session *na = run(sc, AT, k, T_NO_AVX2, NULL);
        char *rw = render(w), *rn = render(n), *rb = render(b);
        char *rwa = render(wa), *rna = render(na);
        if (strcmp(rw, rn) != 0)
            fail_msg("round %u: AVX2 and SSE2 scans differ:\n--- avx2\n%s--- sse2\n%s", round, rw,
                     rn);
        if (strcmp(rn, rb) != 0)
            fail_msg("round %u: scan and byte-wise differ:\n--- scan\n%s--- bytes\n%s", round, rn,
                     rb);
        if (strcmp(rwa, rb) != 0 || strcmp(rna, rb) != 0)
            fail_msg("round %u: scans cut at %zu and byte-wise differ:\n--- avx2\n%s--- sse2\n%s"
                     "--- bytes\n%s",
                     round, k, rwa, rna, rb);
        assert_int_equal(smtp_session_info(w)->messages, 1);
        free(rw);
        free(rn);
        free(rb);
        free(rwa);
        free(rna);
        smtp_session_free(w);
        smtp_session_free(n);
        smtp_session_free(b);
        smtp_session_free(wa);
        smtp_session_free(na);
    }
}

/* Every verb's name looks up to the verb, in any case; near misses do not
 * (the four-letter ones go through a word compare of their own). */
static void test_verb_lookup_round_trips(void **state)
{
    (void)state;
    for (int v = SMTP_V_HELO; v < SMTP_V_CONNECT; v++) {
        const char *name = smtp_verb_name((enum smtp_verb)v);
        size_t n = strlen(name);
        char low[32];
        for (size_t i = 0; i <= n; i++)
            low[i] = (char)(name[i] >= 'A' && name[i] <= 'Z' ? name[i] + 32 : name[i]);
        if (smtp_verb_lookup((const uint8_t *)name, n) != (enum smtp_verb)v ||
            smtp_verb_lookup((const uint8_t *)low, n) != (enum smtp_verb)v)
            fail_msg("%s does not look up to itself", name);
        /* one letter off, one letter short: not a verb (the table has no
         * verb that is another's prefix or one letter from it) */
        char odd[32];
        memcpy(odd, name, n + 1);
        odd[n - 1] = odd[n - 1] == 'Q' ? 'Z' : 'Q';
        assert_int_equal(smtp_verb_lookup((const uint8_t *)odd, n), SMTP_V_UNKNOWN);
        assert_int_equal(smtp_verb_lookup((const uint8_t *)name, n - 1), SMTP_V_UNKNOWN);
    }
    assert_int_equal(smtp_verb_lookup((const uint8_t *)"<connect>", 9), SMTP_V_UNKNOWN);
    assert_int_equal(smtp_verb_lookup((const uint8_t *)"XXXX", 4), SMTP_V_UNKNOWN);
}

static void test_pending_queue_is_bounded(void **state)
{
    (void)state;
    struct smtp_settings set;
    smtp_settings_defaults(&set);
    set.pending_max = 4;
    struct smtp_session *s = smtp_session_new(&set, 0);
    struct sc_meta m = {1, 1};
    smtp_feed(s, S, 0, (const uint8_t *)"220 mx\r\n", 8, &m);
    uint64_t off = 0;
    for (int i = 0; i < 100; i++) {
        smtp_feed(s, C, off, (const uint8_t *)"NOOP\r\n", 6, &m);
        off += 6;
    }
    smtp_close(s, &m);
    assert_true(has_event(s, "pending_overflow"));
    assert_int_equal(smtp_session_info(s)->commands, 100);
    smtp_session_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_delivery),
        cmocka_unit_test(test_pipelining_matches_replies),
        cmocka_unit_test(test_enhanced_codes_as_sent),
        cmocka_unit_test(test_last_command_with_and_without_transcript),
        cmocka_unit_test(test_fields_follow_the_first_text_block),
        cmocka_unit_test(test_message_state_out_of_memory),
        cmocka_unit_test(test_held_bytes_out_of_memory),
        cmocka_unit_test(test_body_sent_before_354_is_held),
        cmocka_unit_test(test_refused_data_reads_commands),
        cmocka_unit_test(test_one_sided_client_reads_body_by_content),
        cmocka_unit_test(test_bdat_chunks),
        cmocka_unit_test(test_bdat_invalid_sizes_stay_commands),
        cmocka_unit_test(test_auth_plain_and_login_are_redacted),
        cmocka_unit_test(test_auth_never_leaks_when_replies_slip),
        cmocka_unit_test(test_starttls_established),
        cmocka_unit_test(test_starttls_outcomes),
        cmocka_unit_test(test_reply_anomalies),
        cmocka_unit_test(test_long_and_unknown_commands_are_kept),
        cmocka_unit_test(test_gap_resynchronises),
        cmocka_unit_test(test_lax_end_of_data_follows_the_server),
        cmocka_unit_test(test_probe_verdicts),
        cmocka_unit_test(test_probe_long_line_any_segmentation),
        cmocka_unit_test(test_smtp_through_socks5_and_connect),
        cmocka_unit_test(test_proxy_reply_with_long_greeting),
        cmocka_unit_test(test_midstream_start),
        cmocka_unit_test(test_pending_queue_is_bounded),
        cmocka_unit_test(test_body_lines_any_segmentation),
        cmocka_unit_test(test_body_scans_agree),
        cmocka_unit_test(test_body_after_base64_blocks),
        cmocka_unit_test(test_reply_lines_kept_within_limits),
        cmocka_unit_test(test_verb_lookup_round_trips),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
