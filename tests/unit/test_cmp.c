/* test_cmp.c - compare/cmp.h: what a capture keeps of its sessions.
 *
 * Sessions' lines, strings and TLS records are carved from blocks the
 * capture owns.  These tests fill captures the way cli/compare.c does and
 * the ways it does not (lines added to several sessions in turn without
 * room reserved, lines longer than a block's share, more lines than
 * CMP_LINES_MAX), then read everything back after the session array has
 * moved. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "compare/cmp.h"

/* The text of line i of session s in direction d: its length varies from 0
 * to past 16 KiB (a block of its own), its bytes with all three. */
static size_t line_len(size_t s, int d, size_t i)
{
    size_t k = (s * 31 + (size_t)d * 7 + i * 13) % 97;
    return k == 96 ? 20000 + s : k * k / 3;
}

static uint8_t line_byte(size_t s, int d, size_t i, size_t at)
{
    return (uint8_t)(s * 5 + (size_t)d * 11 + i * 3 + at * 7);
}

static void add(struct cmp_capture *c, size_t s, int d, size_t i)
{
    size_t n = line_len(s, d, i);
    uint8_t *t = malloc(n + 1);
    assert_non_null(t);
    for (size_t k = 0; k < n; k++)
        t[k] = line_byte(s, d, i, k);
    assert_int_equal(cmp_session_add_line(c, &c->s[s], (enum sc_dir)d, SMTP_L_REPLY,
                                          (uint16_t)(200 + i % 100), (uint32_t)(n + i), t,
                                          (uint32_t)n, 1000 * s + i, (sc_time)(s + i)),
                     0);
    free(t);
}

static void check(const struct cmp_capture *c, size_t s, int d, size_t nlines)
{
    const struct cmp_session *ss = &c->s[s];
    assert_int_equal(ss->nline[d], nlines);
    assert_true(ss->line_cap[d] >= nlines);
    if (nlines)
        assert_int_equal((uintptr_t)ss->line[d] % _Alignof(struct cmp_line), 0);
    for (size_t i = 0; i < nlines; i++) {
        const struct cmp_line *l = &ss->line[d][i];
        size_t n = line_len(s, d, i);
        assert_int_equal(l->text_len, n);
        assert_int_equal(l->len, n + i);
        assert_int_equal(l->code, 200 + i % 100);
        assert_int_equal(l->kind, SMTP_L_REPLY);
        assert_int_equal(l->frame, 1000 * s + i);
        assert_int_equal(l->ts, (sc_time)(s + i));
        for (size_t k = 0; k < n; k++)
            if (l->text[k] != line_byte(s, d, i, k))
                fail_msg("session %zu dir %d line %zu byte %zu differs", s, d, i, k);
        assert_int_equal(l->text[n], 0);
    }
}

/* Lines added a few at a time to 300 sessions in turn, half of them with
 * room reserved first: every array that grows keeps the lines it had, and
 * nothing one session adds lands on another's. */
static void test_lines_kept_whole(void **state)
{
    (void)state;
    struct cmp_capture c;
    cmp_capture_init(&c, "outside");
    enum { SESSIONS = 300, LINES = 70 };
    for (size_t s = 0; s < SESSIONS; s++) {
        struct cmp_session *ss = cmp_capture_new(&c);
        assert_non_null(ss);
        assert_string_equal(ss->client, "");
        assert_string_equal(ss->findings, "");
        assert_null(ss->tls);
        if (s % 2) {
            size_t n[2] = {LINES, LINES / 2};
            assert_int_equal(cmp_session_lines(&c, ss, n), 0);
            assert_int_equal(ss->line_cap[0], LINES);
        }
    }
    for (size_t round = 0; round < LINES; round += 5)
        for (size_t s = 0; s < SESSIONS; s++)
            for (size_t i = round; i < round + 5; i++) {
                add(&c, s, 0, i);
                if (i < LINES / 2)
                    add(&c, s, 1, i);
            }
    for (size_t s = 0; s < SESSIONS; s++) {
        check(&c, s, 0, LINES);
        check(&c, s, 1, LINES / 2);
        if (s % 2) /* reserved exactly: no growth */
            assert_int_equal(c.s[s].line_cap[0], LINES);
    }
    cmp_capture_free(&c);
    assert_null(c.s);
    assert_null(c.blocks);
}

/* Past CMP_LINES_MAX lines a direction only counts them, reserved or not. */
static void test_lines_max(void **state)
{
    (void)state;
    struct cmp_capture c;
    cmp_capture_init(&c, "inside");
    struct cmp_session *s = cmp_capture_new(&c);
    assert_non_null(s);
    size_t n[2] = {CMP_LINES_MAX + 50, 0};
    assert_int_equal(cmp_session_lines(&c, s, n), 0);
    assert_int_equal(s->line_cap[0], CMP_LINES_MAX);
    for (size_t i = 0; i < CMP_LINES_MAX + 7; i++)
        assert_int_equal(cmp_session_add_line(&c, s, SC_DIR_C2S, SMTP_L_COMMAND, 0, 4,
                                              (const uint8_t *)"NOOP", 4, i, 0),
                         0);
    assert_int_equal(s->nline[0], CMP_LINES_MAX);
    assert_int_equal(s->lines_dropped, 7);
    assert_string_equal((const char *)s->line[0][CMP_LINES_MAX - 1].text, "NOOP");
    cmp_capture_free(&c);
}

/* File names repeat from session to session and are kept once; other
 * strings are copies. */
static void test_strings(void **state)
{
    (void)state;
    struct cmp_capture c;
    cmp_capture_init(&c, "outside");
    char name[32];
    snprintf(name, sizeof(name), "a.pcap");
    const char *f1 = cmp_capture_file(&c, name);
    assert_non_null(f1);
    assert_ptr_not_equal(f1, name);
    assert_ptr_equal(cmp_capture_file(&c, "a.pcap"), f1);
    const char *f2 = cmp_capture_file(&c, "b.pcap");
    assert_ptr_not_equal(f2, f1);
    assert_string_equal(f2, "b.pcap");
    assert_string_equal(f1, "a.pcap");
    const char *s1 = cmp_capture_str(&c, "starttls_stripped,banner_masked");
    const char *s2 = cmp_capture_str(&c, "starttls_stripped,banner_masked");
    assert_ptr_not_equal(s1, s2);
    assert_string_equal(s2, "starttls_stripped,banner_masked");
    assert_string_equal(cmp_capture_str(&c, ""), "");
    cmp_capture_free(&c);
}

/* host_len covers the server's address without its port, IPv6 brackets
 * included, and the endpoints are copies. */
static void test_endpoints(void **state)
{
    (void)state;
    struct cmp_capture c;
    cmp_capture_init(&c, "outside");
    const char *servers[] = {"192.0.2.25:25", "[2001:db8::25]:587", "no-port", ""};
    const size_t hosts[] = {10, 14, 7, 0};
    for (size_t i = 0; i < 4; i++) {
        struct cmp_session *s = cmp_capture_new(&c);
        assert_non_null(s);
        char client[64];
        snprintf(client, sizeof(client), "203.0.113.%zu:4000%zu", i, i);
        assert_int_equal(cmp_session_endpoints(&c, s, client, servers[i]), 0);
        client[0] = 'X';
        assert_int_equal(s->host_len, hosts[i]);
        assert_string_equal(s->server, servers[i]);
        assert_int_equal(s->client[0], '2');
        struct cmp_tls *t = cmp_session_tls(&c, s);
        assert_non_null(t);
        assert_ptr_equal(s->tls, t);
        assert_string_equal(t->version, "");
        snprintf(t->version, sizeof(t->version), "TLS 1.%zu", i);
    }
    for (size_t i = 0; i < 4; i++) {
        char v[16];
        snprintf(v, sizeof(v), "TLS 1.%zu", i);
        assert_string_equal(c.s[i].tls->version, v);
        assert_string_equal(c.s[i].server, servers[i]);
    }
    cmp_capture_free(&c);
}

/* One session for the pairing: the same dialogue and endpoints every
 * time, starting `start_s` seconds in. */
static void pairing_session(struct cmp_capture *c, uint64_t id, int start_s)
{
    struct cmp_session *s = cmp_capture_new(c);
    assert_non_null(s);
    s->id = id;
    assert_int_equal(cmp_session_endpoints(c, s, "203.0.113.9:40000", "192.0.2.25:25"), 0);
    s->cport = 40000;
    s->sport = 25;
    s->start = (sc_time)start_s * SC_NS_PER_SEC;
    s->end = s->start + SC_NS_PER_SEC / 10;
    s->first_frame = id * 10;
    s->last_frame = id * 10 + 9;
    static const char *const lines[] = {"220 mx.example.com ESMTP", "EHLO relay", "250 mx"};
    for (int k = 0; k < 3; k++) {
        enum sc_dir d = k == 1 ? SC_DIR_C2S : SC_DIR_S2C;
        uint16_t code = k == 0 ? 220 : k == 2 ? 250 : 0;
        size_t n = strlen(lines[k]);
        assert_int_equal(cmp_session_add_line(c, s, d, k == 1 ? SMTP_L_COMMAND : SMTP_L_REPLY, code,
                                              (uint32_t)n, (const uint8_t *)lines[k], (uint32_t)n,
                                              s->first_frame + (uint64_t)k, s->start),
                         0);
    }
}

/* Forty look-alike sessions that all start at second 20 outside, and one
 * a second from 0 to 39 inside: every outside session ranks the inside
 * ones alike (nearest first, the earlier of two as near), so the k-th to
 * be paired gets the one ceil(k/2) seconds away, the earlier one first.
 * Past the sixteenth, a session's first CMP_RUN_KEEP candidates are all
 * taken, and it is paired only if its window is scored again for the next
 * ones in the same order. */
static void test_pairing_past_held_candidates(void **state)
{
    (void)state;
    struct cmp_capture out, in;
    cmp_capture_init(&out, "outside");
    cmp_capture_init(&in, "inside");
    enum { N = 40 };
    for (int i = 0; i < N; i++)
        pairing_session(&out, (uint64_t)i + 1, 20);
    for (int i = 0; i < N; i++)
        pairing_session(&in, (uint64_t)i + 1, i);
    struct cmp_result res;
    assert_int_equal(cmp_run(&out, &in, &res), 0);
    assert_false(res.swapped);
    assert_int_equal(res.clock_offset, 0);
    assert_int_equal(res.npairs, N);
    assert_int_equal(res.only[CMP_OUTSIDE], 0);
    assert_int_equal(res.only[CMP_INSIDE], 0);
    for (size_t k = 0; k < res.npairs; k++) {
        const struct cmp_pair *p = &res.pairs[k];
        /* Pairs are made best first: the k-th is outside session k + 1. */
        assert_int_equal(p->s[CMP_OUTSIDE]->id, k + 1);
        long dist = (long)(k + 1) / 2, want = k % 2 ? 20 - dist : 20 + dist;
        if (k == 0)
            want = 20;
        assert_int_equal(p->s[CMP_INSIDE]->start, (sc_time)want * SC_NS_PER_SEC);
    }
    cmp_result_free(&res);
    cmp_capture_free(&out);
    cmp_capture_free(&in);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lines_kept_whole),
        cmocka_unit_test(test_lines_max),
        cmocka_unit_test(test_strings),
        cmocka_unit_test(test_endpoints),
        cmocka_unit_test(test_pairing_past_held_candidates),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
