/* test_reasm.c - one direction of TCP reassembly (capture/reasm.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "capture/reasm.h"

/* What the stream delivered, in order. */
struct rec {
    uint8_t out[1 << 16];
    size_t len;    /* bytes written into out (gaps as '#') */
    uint64_t next; /* offset the next delivery must start at */
    int gaps;
    uint64_t gap_bytes;
    enum cap_gap_reason last_reason;
    int overlaps;
    char old_v[64], new_v[64];
    uint64_t overlap_off;
    int fins;
    uint64_t fin_off;
    int stop_after; /* non-zero: data callback asks to stop on that call */
    int calls;
};

static int on_data(void *u, uint64_t off, const uint8_t *p, size_t n, const struct sc_meta *m)
{
    struct rec *r = u;
    (void)m;
    assert_int_equal(off, r->next);
    assert_true(r->len + n <= sizeof(r->out));
    memcpy(r->out + r->len, p, n);
    r->len += n;
    r->next += n;
    return ++r->calls == r->stop_after;
}

static int on_gap(void *u, uint64_t off, uint64_t len, enum cap_gap_reason why,
                  const struct sc_meta *m)
{
    struct rec *r = u;
    (void)m;
    assert_int_equal(off, r->next);
    r->gaps++;
    r->gap_bytes += len;
    r->last_reason = why;
    for (uint64_t i = 0; i < len && r->len < sizeof(r->out); i++)
        r->out[r->len++] = '#';
    r->next += len;
    return 0;
}

static int on_overlap(void *u, uint64_t off, const uint8_t *op, size_t on, const uint8_t *np,
                      size_t nn, const struct sc_meta *m)
{
    struct rec *r = u;
    (void)m;
    r->overlaps++;
    r->overlap_off = off;
    snprintf(r->old_v, sizeof(r->old_v), "%.*s", (int)on, (const char *)op);
    snprintf(r->new_v, sizeof(r->new_v), "%.*s", (int)nn, (const char *)np);
    return 0;
}

static int on_fin(void *u, uint64_t off, const struct sc_meta *m)
{
    struct rec *r = u;
    (void)m;
    r->fins++;
    r->fin_off = off;
    return 0;
}

static const struct cap_stream_cb cb = {on_data, on_gap, on_overlap, on_fin};

struct fixture {
    struct cap_stream st;
    struct cap_stream_limits lim;
    size_t pool;
    struct rec r;
    uint32_t base;
};

static struct fixture *fx_new(uint32_t base)
{
    struct fixture *f = calloc(1, sizeof(*f));
    cap_stream_init(&f->st);
    cap_stream_set_base(&f->st, base);
    f->base = base;
    f->lim.ooo_max = 1 << 20;
    f->lim.pool_max = 1 << 22;
    f->lim.history = 2048;
    f->lim.evidence_max = 32;
    return f;
}

static void fx_free(struct fixture *f)
{
    cap_stream_free(&f->st, &f->pool);
    assert_int_equal(f->pool, 0); /* every held byte was given back */
    free(f);
}

static int seg(struct fixture *f, uint32_t rel, const char *data, bool fin)
{
    struct sc_meta m = {1, 1};
    size_t n = strlen(data);
    return cap_stream_segment(&f->st, &f->lim, &f->pool, f->base + rel, (const uint8_t *)data, n, n,
                              CAP_GAP_SNAPLEN, fin, &m, &cb, &f->r);
}

static void ack(struct fixture *f, uint32_t rel)
{
    struct sc_meta m = {1, 1};
    cap_stream_acked(&f->st, &f->lim, &f->pool, f->base + rel, &m, &cb, &f->r);
}

static void flush(struct fixture *f)
{
    struct sc_meta m = {1, 1};
    cap_stream_flush(&f->st, &f->lim, &f->pool, CAP_GAP_END, &m, &cb, &f->r);
}

static void out_eq(const struct fixture *f, const char *want)
{
    assert_int_equal(f->r.len, strlen(want));
    assert_memory_equal(f->r.out, want, f->r.len);
}

static void test_in_order_and_out_of_order(void **state)
{
    (void)state;
    struct fixture *f = fx_new(1000);
    seg(f, 0, "hello ", false);
    seg(f, 12, "there", true); /* ahead: held */
    out_eq(f, "hello ");
    assert_int_equal(f->r.fins, 0);
    seg(f, 6, "world ", false); /* fills the hole: both delivered, then the FIN */
    out_eq(f, "hello world there");
    assert_int_equal(f->r.fins, 1);
    assert_int_equal(f->r.fin_off, 17);
    assert_int_equal(f->r.gaps, 0);
    assert_int_equal(f->st.bytes, 17);
    fx_free(f);
}

static void test_retransmission_same_and_different_bytes(void **state)
{
    (void)state;
    struct fixture *f = fx_new(7);
    seg(f, 0, "250-STARTTLS\r\n", false);
    seg(f, 0, "250-STARTTLS\r\n", false); /* identical: only counted */
    assert_int_equal(f->r.overlaps, 0);
    assert_int_equal(f->st.retransmits, 1);
    seg(f, 0, "250-XXXXXXXA\r\n", false); /* same place, other bytes */
    assert_int_equal(f->r.overlaps, 1);
    assert_int_equal(f->r.overlap_off, 4);
    assert_string_equal(f->r.old_v, "STARTTLS\r\n");
    assert_string_equal(f->r.new_v, "XXXXXXXA\r\n");
    out_eq(f, "250-STARTTLS\r\n"); /* the first version stands */
    fx_free(f);
}

static void test_overlap_between_held_segments(void **state)
{
    (void)state;
    struct fixture *f = fx_new(0);
    seg(f, 10, "abcdef", false);
    seg(f, 12, "cdXXgh", false); /* overlaps the held one with other bytes */
    assert_int_equal(f->r.overlaps, 1);
    assert_string_equal(f->r.old_v, "ef");
    assert_string_equal(f->r.new_v, "XX");
    seg(f, 0, "0123456789", false);
    out_eq(f, "0123456789abcdefgh");
    fx_free(f);
}

static void test_partial_overlap_with_new_bytes(void **state)
{
    (void)state;
    struct fixture *f = fx_new(0);
    seg(f, 0, "abcd", false);
    seg(f, 2, "cdef", false); /* half old, half new */
    out_eq(f, "abcdef");
    assert_int_equal(f->r.overlaps, 0);
    fx_free(f);
}

static void test_keepalive_is_not_an_overlap(void **state)
{
    (void)state;
    struct fixture *f = fx_new(0);
    seg(f, 0, "QUIT\r\n", false);
    seg(f, 5, "\x00", false); /* seq = next - 1, one junk byte: a keep-alive (len 0 by strlen) */
    struct sc_meta m = {2, 2};
    const uint8_t junk = 0;
    cap_stream_segment(&f->st, &f->lim, &f->pool, 5, &junk, 1, 1, CAP_GAP_SNAPLEN, false, &m, &cb,
                       &f->r);
    assert_int_equal(f->r.overlaps, 0);
    out_eq(f, "QUIT\r\n");
    fx_free(f);
}

static void test_acked_unseen_bytes_become_a_gap(void **state)
{
    (void)state;
    struct fixture *f = fx_new(0);
    seg(f, 0, "EHLO x\r\n", false);
    ack(f, 20); /* the peer has 12 bytes we never saw */
    assert_int_equal(f->r.gaps, 1);
    assert_int_equal(f->r.gap_bytes, 12);
    assert_int_equal(f->r.last_reason, CAP_GAP_ACKED);
    seg(f, 20, "QUIT\r\n", false);
    out_eq(f, "EHLO x\r\n############QUIT\r\n");
    /* A retransmission of the lost range now cannot be compared. */
    seg(f, 8, "MAIL FROM:<>", false);
    assert_int_equal(f->r.overlaps, 0);
    fx_free(f);
}

static void test_ack_of_fin_and_of_lost_fin(void **state)
{
    (void)state;
    struct fixture *f = fx_new(0);
    seg(f, 0, "221 bye\r\n", true);
    ack(f, 10); /* covers the data and the FIN: no gap */
    assert_int_equal(f->r.gaps, 0);
    assert_int_equal(f->r.fins, 1);
    fx_free(f);

    f = fx_new(0);
    seg(f, 0, "221 bye\r\n", false);
    ack(f, 10); /* one more than the data: a FIN the capture lost, not a byte */
    assert_int_equal(f->r.gaps, 0);
    fx_free(f);
}

static void test_sequence_wrap(void **state)
{
    (void)state;
    struct fixture *f = fx_new(0xfffffffa);
    seg(f, 0, "0123", false);
    seg(f, 10, "abcd", false); /* wraps past 2^32, held */
    seg(f, 4, "456789", false);
    out_eq(f, "0123456789abcd");
    ack(f, 14);
    assert_int_equal(f->r.gaps, 0);
    fx_free(f);
}

static void test_buffer_limit_declares_gap(void **state)
{
    (void)state;
    struct fixture *f = fx_new(0);
    f->lim.ooo_max = 120; /* room for one held segment and its bookkeeping */
    seg(f, 0, "start", false);
    seg(f, 100, "AAAAAAAAAA", false);
    seg(f, 200, "BBBBBBBBBB", false); /* over the limit: give up the first hole */
    assert_true(f->r.gaps >= 1);
    assert_int_equal(f->r.last_reason, CAP_GAP_LIMIT);
    assert_true(f->st.ooo_bytes <= f->lim.ooo_max);
    flush(f);
    assert_int_equal(f->r.next, 210);
    assert_memory_equal(f->r.out + 100, "AAAAAAAAAA", 10);
    assert_memory_equal(f->r.out + 200, "BBBBBBBBBB", 10);
    fx_free(f);
}

static void test_pool_limit_is_shared(void **state)
{
    (void)state;
    struct fixture *a = fx_new(0), *b = fx_new(0);
    a->lim.pool_max = b->lim.pool_max = 400;
    size_t pool = 0;
    struct sc_meta m = {1, 1};
    uint8_t data[100];
    memset(data, 'x', sizeof(data));
    cap_stream_segment(&a->st, &a->lim, &pool, 1000, data, 100, 100, CAP_GAP_SNAPLEN, false, &m,
                       &cb, &a->r);
    cap_stream_segment(&b->st, &b->lim, &pool, 1000, data, 100, 100, CAP_GAP_SNAPLEN, false, &m,
                       &cb, &b->r);
    cap_stream_segment(&b->st, &b->lim, &pool, 2000, data, 100, 100, CAP_GAP_SNAPLEN, false, &m,
                       &cb, &b->r);
    assert_true(pool <= 400);
    assert_true(b->r.gaps >= 1); /* b had to give up a hole because a holds memory */
    cap_stream_free(&a->st, &pool);
    cap_stream_free(&b->st, &pool);
    assert_int_equal(pool, 0);
    free(a);
    free(b);
}

static void test_snaplen_cut_segments(void **state)
{
    (void)state;
    struct fixture *f = fx_new(0);
    struct sc_meta m = {1, 1};
    /* In order: 4 bytes captured of 10 on the wire. */
    cap_stream_segment(&f->st, &f->lim, &f->pool, 0, (const uint8_t *)"EHLO", 4, 10,
                       CAP_GAP_SNAPLEN, false, &m, &cb, &f->r);
    assert_int_equal(f->r.gaps, 1);
    assert_int_equal(f->r.last_reason, CAP_GAP_SNAPLEN);
    /* Out of order: held with its hole, delivered when reached. */
    cap_stream_segment(&f->st, &f->lim, &f->pool, 20, (const uint8_t *)"MAIL", 4, 10,
                       CAP_GAP_SNAPLEN, false, &m, &cb, &f->r);
    cap_stream_segment(&f->st, &f->lim, &f->pool, 10, (const uint8_t *)"0123456789", 10, 10,
                       CAP_GAP_SNAPLEN, false, &m, &cb, &f->r);
    out_eq(f, "EHLO######0123456789MAIL######");
    assert_int_equal(f->r.gaps, 2);
    fx_free(f);
}

static void test_flush_declares_end_holes(void **state)
{
    (void)state;
    struct fixture *f = fx_new(0);
    seg(f, 0, "a", false);
    seg(f, 5, "b", true);
    flush(f);
    out_eq(f, "a####b");
    assert_int_equal(f->r.last_reason, CAP_GAP_END);
    assert_int_equal(f->r.fins, 1);
    fx_free(f);
}

static void test_far_future_and_before_start(void **state)
{
    (void)state;
    struct fixture *f = fx_new(5000);
    seg(f, 0x50000000u, "bogus", false); /* beyond any window: ignored */
    assert_int_equal(f->st.ooo_count, 0);
    seg(f, (uint32_t)-3, "xyzabc", false); /* starts 3 bytes before offset 0 */
    out_eq(f, "abc");
    fx_free(f);
}

static void test_stop_request_stops_delivery(void **state)
{
    (void)state;
    struct fixture *f = fx_new(0);
    f->r.stop_after = 1;
    seg(f, 3, "def", false);
    assert_int_not_equal(seg(f, 0, "abc", false), 0); /* stops after "abc" */
    out_eq(f, "abc");
    fx_free(f);
}

/* xorshift64*, fixed seeds: the same "random" orders on every run. */
static uint64_t rnd(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ull;
}

static void test_random_orders_rebuild_the_stream(void **state)
{
    (void)state;
    enum { LEN = 6000, MAXSEG = 64 };
    static uint8_t data[LEN];
    for (uint64_t seed = 1; seed <= 300; seed++) {
        uint64_t s = seed * 0x9e3779b97f4a7c15ull;
        for (size_t i = 0; i < LEN; i++)
            data[i] = (uint8_t)('a' + rnd(&s) % 26);
        /* Segments with random sizes, plus duplicates and overlapping re-sends. */
        size_t off[1024], len[1024], n = 0;
        for (size_t o = 0; o < LEN && n < 900;) {
            size_t l = 1 + rnd(&s) % MAXSEG;
            if (o + l > LEN)
                l = LEN - o;
            off[n] = o;
            len[n++] = l;
            if (rnd(&s) % 4 == 0 && n < 1000) { /* duplicate */
                off[n] = o;
                len[n++] = l;
            }
            if (rnd(&s) % 5 == 0 && o > 10 && n < 1000) { /* overlapping re-send */
                off[n] = o - 10;
                len[n++] = l + 10 <= LEN - (o - 10) ? l + 10 : LEN - (o - 10);
            }
            o += l;
        }
        for (size_t i = n - 1; i > 0; i--) { /* Fisher-Yates shuffle */
            size_t j = rnd(&s) % (i + 1);
            size_t t = off[i];
            off[i] = off[j];
            off[j] = t;
            t = len[i];
            len[i] = len[j];
            len[j] = t;
        }
        uint32_t base = (uint32_t)rnd(&s); /* any base, wrap included */
        struct fixture *f = fx_new(base);
        struct sc_meta m = {1, 1};
        for (size_t i = 0; i < n; i++)
            cap_stream_segment(&f->st, &f->lim, &f->pool, base + (uint32_t)off[i], data + off[i],
                               len[i], len[i], CAP_GAP_SNAPLEN, false, &m, &cb, &f->r);
        flush(f);
        assert_int_equal(f->r.len, LEN);
        assert_memory_equal(f->r.out, data, LEN);
        assert_int_equal(f->r.gaps, 0);
        assert_int_equal(f->r.overlaps, 0);
        fx_free(f);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_in_order_and_out_of_order),
        cmocka_unit_test(test_retransmission_same_and_different_bytes),
        cmocka_unit_test(test_overlap_between_held_segments),
        cmocka_unit_test(test_partial_overlap_with_new_bytes),
        cmocka_unit_test(test_keepalive_is_not_an_overlap),
        cmocka_unit_test(test_acked_unseen_bytes_become_a_gap),
        cmocka_unit_test(test_ack_of_fin_and_of_lost_fin),
        cmocka_unit_test(test_sequence_wrap),
        cmocka_unit_test(test_buffer_limit_declares_gap),
        cmocka_unit_test(test_pool_limit_is_shared),
        cmocka_unit_test(test_snaplen_cut_segments),
        cmocka_unit_test(test_flush_declares_end_holes),
        cmocka_unit_test(test_far_future_and_before_start),
        cmocka_unit_test(test_stop_request_stops_delivery),
        cmocka_unit_test(test_random_orders_rebuild_the_stream),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
