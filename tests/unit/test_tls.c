/* test_tls.c - the TLS handshake reader, on real OpenSSL handshakes.
 *
 * The synthesizer's tlsgen runs an OpenSSL client and server in memory; the
 * bytes each sends are fed to the reader whole, split at every offset, one
 * byte at a time, and re-framed into records of a few bytes each (handshake
 * messages may span records).  Every way must give the same result, and the
 * result must match what OpenSSL itself says: the negotiated version and
 * cipher, the certificate's SHA-256, the SNI the client sent.  Then alerts,
 * truncation and damage: never a crash, always an event.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/ssl.h>

#include "common/buf.h"
#include "common/event.h"
#include "dissect/tls.h"
#include "pcaps/synth/rng.h"
#include "pcaps/synth/tlsgen.h"

#define C SC_DIR_C2S
#define S SC_DIR_S2C
#define MAX_CHUNKS 64

/* A conversation: what each side sent, in order. */
struct convo {
    enum sc_dir dir[MAX_CHUNKS];
    struct sc_buf b[MAX_CHUNKS];
    size_t n;
    char version[16], cipher[64];
    uint8_t cert[32];
};

static void push(struct convo *cv, enum sc_dir d, struct sc_buf *b)
{
    if (b->len == 0)
        return;
    assert_true(cv->n < MAX_CHUNKS);
    cv->dir[cv->n] = d;
    sc_buf_init(&cv->b[cv->n], 0);
    sc_buf_append(&cv->b[cv->n], b->data, b->len);
    cv->n++;
    sc_buf_reset(b);
}

static void convo_free(struct convo *cv)
{
    for (size_t i = 0; i < cv->n; i++)
        sc_buf_free(&cv->b[i]);
    cv->n = 0;
}

/* Runs a handshake between client context cc and server context sc, then
 * one application record each way. */
static void handshake(struct convo *cv, struct tlsgen_ctx *cc, struct tlsgen_ctx *sc)
{
    memset(cv, 0, sizeof(*cv));
    struct tlsgen_end *cl = tlsgen_client(cc), *sv = tlsgen_server(sc);
    assert_non_null(cl);
    assert_non_null(sv);
    struct sc_buf out, app;
    sc_buf_init(&out, 0);
    sc_buf_init(&app, 0);
    tlsgen_start(cl, &out);
    push(cv, C, &out);
    for (int round = 0; round < 6 && !(tlsgen_established(cl) && tlsgen_established(sv)); round++) {
        tlsgen_input(sv, cv->b[cv->n - 1].data, cv->b[cv->n - 1].len, &out, &app);
        push(cv, S, &out);
        if (tlsgen_failed(sv) || cv->dir[cv->n - 1] != S)
            break;
        tlsgen_input(cl, cv->b[cv->n - 1].data, cv->b[cv->n - 1].len, &out, &app);
        push(cv, C, &out);
        if (tlsgen_failed(cl) || cv->dir[cv->n - 1] != C)
            break;
    }
    if (tlsgen_established(cl) && tlsgen_established(sv)) {
        /* The client's Finished may still be on its way to the server. */
        if (cv->dir[cv->n - 1] == C) {
            tlsgen_input(sv, cv->b[cv->n - 1].data, cv->b[cv->n - 1].len, &out, &app);
            push(cv, S, &out);
        }
        static const uint8_t ehlo[] = "EHLO client.example\r\n";
        static const uint8_t reply[] = "250-mx.example.com\r\n250 PIPELINING\r\n";
        tlsgen_write(cl, ehlo, sizeof(ehlo) - 1, 0, &out);
        push(cv, C, &out);
        tlsgen_write(sv, reply, sizeof(reply) - 1, 0, &out);
        push(cv, S, &out);
        snprintf(cv->version, sizeof(cv->version), "%s", tlsgen_version(cl));
        snprintf(cv->cipher, sizeof(cv->cipher), "%s", tlsgen_cipher(cl));
    }
    tlsgen_cert_sha256(sc, cv->cert);
    sc_buf_free(&out);
    sc_buf_free(&app);
    tlsgen_end_free(cl);
    tlsgen_end_free(sv);
}

/* Re-frames every handshake record into records of at most `frag` bytes. */
static void refragment(struct sc_buf *b, size_t frag)
{
    struct sc_buf o;
    sc_buf_init(&o, 0);
    size_t i = 0;
    while (i + 5 <= b->len) {
        uint8_t type = b->data[i];
        size_t len = (size_t)b->data[i + 3] << 8 | b->data[i + 4];
        if (i + 5 + len > b->len)
            break;
        if (type != TLS_CT_HANDSHAKE) {
            sc_buf_append(&o, b->data + i, 5 + len);
        } else {
            for (size_t k = 0; k < len; k += frag) {
                size_t n = len - k < frag ? len - k : frag;
                uint8_t h[5] = {type, b->data[i + 1], b->data[i + 2], (uint8_t)(n >> 8),
                                (uint8_t)n};
                sc_buf_append(&o, h, 5);
                sc_buf_append(&o, b->data + i + 5 + k, n);
            }
        }
        i += 5 + len;
    }
    sc_buf_append(&o, b->data + i, b->len - i);
    sc_buf_free(b);
    *b = o;
}

enum split { WHOLE, AT, BYTES };

/* What the reader made of a conversation, as one string. */
static void feed(const struct convo *cv, enum split how, size_t k, char *out, size_t outlen,
                 enum tls_outcome *oc, struct tls_info *copy, struct tls_cert_cache *cache)
{
    struct sc_events ev;
    sc_events_init(&ev);
    struct tls_conn *t = tls_conn_new(&ev, cache);
    assert_non_null(t);
    for (size_t i = 0; i < cv->n; i++) {
        struct sc_meta m = {i + 1, (sc_time)i};
        const uint8_t *p = cv->b[i].data;
        size_t n = cv->b[i].len;
        if (how == WHOLE) {
            tls_conn_feed(t, cv->dir[i], p, n, &m);
        } else if (how == AT) {
            size_t a = k < n ? k : n;
            tls_conn_feed(t, cv->dir[i], p, a, &m);
            tls_conn_feed(t, cv->dir[i], p + a, n - a, &m);
        } else {
            for (size_t j = 0; j < n; j++)
                tls_conn_feed(t, cv->dir[i], p + j, 1, &m);
        }
    }
    const struct tls_info *in = tls_conn_info(t);
    char v[16];
    tls_version_str(v, sizeof(v), in->version);
    snprintf(
        out, outlen, "%s %s 0x%04x sni=%s ja3=%s chain=%u/%s/%s hidden=%d alert=%d/%u app=%u,%u",
        tls_outcome_name(tls_conn_outcome(t)), v, in->cipher, in->sni, in->ja3_md5, in->chain_total,
        in->n_chain ? in->chain[0].sha256 : "-", in->n_chain ? in->chain[0].subject : "-",
        in->cert_hidden, in->alert, in->alert_desc, in->app_data[0] > 0, in->app_data[1] > 0);
    if (oc)
        *oc = tls_conn_outcome(t);
    if (copy)
        *copy = *in;
    assert_int_equal(sc_events_count(&ev, "tls_malformed"), 0);
    assert_int_equal(sc_events_count(&ev, "tls_handshake_malformed"), 0);
    tls_conn_free(t);
    sc_events_free(&ev);
}

/* Every way of feeding gives the same string; returns it.  The first feed
 * parses every certificate; the others share a certificate cache, which must
 * change nothing but the number of parses. */
static void all_ways(const struct convo *cv, char *want, size_t wantlen, struct tls_info *info,
                     enum tls_outcome *oc)
{
    feed(cv, WHOLE, 0, want, wantlen, oc, info, NULL);
    struct tls_cert_cache *cache = tls_cert_cache_new();
    assert_non_null(cache);
    char got[1024];
    feed(cv, BYTES, 0, got, sizeof(got), NULL, NULL, cache);
    assert_string_equal(got, want);
    size_t longest = 0;
    for (size_t i = 0; i < cv->n; i++)
        longest = cv->b[i].len > longest ? cv->b[i].len : longest;
    struct tls_info cached;
    for (size_t k = 1; k < longest; k++) {
        feed(cv, AT, k, got, sizeof(got), NULL, &cached, cache);
        assert_string_equal(got, want);
        assert_int_equal(cached.n_chain, info->n_chain);
        assert_memory_equal(cached.chain, info->chain, sizeof(info->chain[0]) * info->n_chain);
    }
    uint64_t parsed, hits;
    tls_cert_cache_stats(cache, &parsed, &hits);
    assert_true(parsed <= info->n_chain); /* each certificate parsed once at most */
    if (info->n_chain && longest > 2)
        assert_true(hits > 0);
    tls_cert_cache_free(cache);
}

static struct tlsgen_ctx *ctx(int version, bool ec, const char *issuer, const char *cipher,
                              uint64_t seed)
{
    struct tlsgen_opts o = {
        .version = version,
        .seed = seed,
        .cn = "mx.example.com",
        .issuer_cn = issuer,
        .ec = ec,
        .not_before = 1700000000,
        .not_after = 1800000000,
        .sni = "mx.example.com",
        .cipher = cipher,
    };
    struct tlsgen_ctx *c = tlsgen_ctx_new(&o);
    assert_non_null(c);
    return c;
}

static void check_against_openssl(const struct convo *cv, const struct tls_info *in)
{
    char v[16];
    tls_version_str(v, sizeof(v), in->version);
    assert_string_equal(v, cv->version);
    const char *iana = tls_cipher_name(in->cipher);
    assert_non_null(iana);
    const char *ossl = OPENSSL_cipher_name(iana);
    assert_string_equal(ossl, cv->cipher);
    assert_string_equal(in->sni, "mx.example.com");
    assert_true(in->client_hello && in->server_hello);
    assert_int_equal(strlen(in->ja3_md5), 32);
}

static void run_case(int version, bool ec, const char *issuer, size_t frag)
{
    struct tlsgen_ctx *c = ctx(version, ec, issuer, NULL, 42 + (uint64_t)version + (ec ? 7 : 0));
    struct convo cv;
    handshake(&cv, c, c);
    if (frag)
        for (size_t i = 0; i < cv.n; i++)
            refragment(&cv.b[i], frag);
    char want[1024];
    struct tls_info in;
    enum tls_outcome oc;
    all_ways(&cv, want, sizeof(want), &in, &oc);
    assert_int_equal(oc, TLS_OUT_ESTABLISHED);
    check_against_openssl(&cv, &in);
    if (version == 13) {
        assert_true(in.cert_hidden);
        assert_int_equal(in.n_chain, 0);
    } else {
        assert_false(in.cert_hidden);
        assert_true(in.n_chain >= 1);
        char hex[65];
        for (int i = 0; i < 32; i++)
            snprintf(hex + 2 * i, 3, "%02x", cv.cert[i]);
        assert_string_equal(in.chain[0].sha256, hex);
        assert_true(in.chain[0].parsed);
        assert_string_equal(in.chain[0].subject, "CN=mx.example.com");
        assert_int_equal(in.chain[0].self_signed, issuer == NULL);
        assert_string_equal(in.chain[0].not_before, "2023-11-14T22:13:20Z");
        if (issuer)
            assert_non_null(strstr(in.chain[0].issuer, issuer));
    }
    convo_free(&cv);
    tlsgen_ctx_free(c);
}

static void test_tls12_rsa(void **state)
{
    (void)state;
    run_case(12, false, NULL, 0);
}

static void test_tls12_ec_ca_signed(void **state)
{
    (void)state;
    run_case(12, true, "Example Mail CA", 0);
}

static void test_tls12_tiny_records(void **state)
{
    (void)state;
    /* Every handshake message spread over 5-byte records. */
    run_case(12, false, "Example Mail CA", 5);
}

static void test_tls13(void **state)
{
    (void)state;
    run_case(13, false, NULL, 0);
}

static void test_tls13_tiny_records(void **state)
{
    (void)state;
    run_case(13, true, NULL, 3);
}

static void test_handshake_failure_alert(void **state)
{
    (void)state;
    /* The client offers only AES-128, the server accepts only AES-256. */
    struct tlsgen_ctx *cc = ctx(12, false, NULL, "ECDHE-RSA-AES128-GCM-SHA256", 5);
    struct tlsgen_ctx *sc = ctx(12, false, NULL, "ECDHE-RSA-AES256-GCM-SHA384", 6);
    struct convo cv;
    handshake(&cv, cc, sc);
    char want[1024];
    struct tls_info in;
    enum tls_outcome oc;
    all_ways(&cv, want, sizeof(want), &in, &oc);
    assert_int_equal(oc, TLS_OUT_ALERT);
    assert_true(in.alert);
    assert_int_equal(in.alert_dir, S);
    assert_int_equal(in.alert_level, 2);
    assert_string_equal(tls_alert_name(in.alert_desc), "handshake_failure");
    assert_false(in.server_hello);
    convo_free(&cv);
    tlsgen_ctx_free(cc);
    tlsgen_ctx_free(sc);
}

static void test_only_client_hello(void **state)
{
    (void)state;
    /* A reset right after the ClientHello: no ServerHello. */
    struct tlsgen_ctx *c = ctx(12, false, NULL, NULL, 9);
    struct convo cv;
    handshake(&cv, c, c);
    size_t all = cv.n;
    cv.n = 1;
    char want[1024];
    enum tls_outcome oc;
    struct tls_info in;
    all_ways(&cv, want, sizeof(want), &in, &oc);
    assert_int_equal(oc, TLS_OUT_NO_SERVER_HELLO);
    assert_true(in.client_hello);
    cv.n = all;
    convo_free(&cv);
    tlsgen_ctx_free(c);
}

/* Feeds bytes and checks only that nothing breaks and events are named. */
static struct sc_events *feed_raw(enum sc_dir d, const uint8_t *p, size_t n)
{
    static struct sc_events ev;
    sc_events_free(&ev);
    sc_events_init(&ev);
    struct tls_conn *t = tls_conn_new(&ev, NULL);
    struct sc_meta m = {1, 0};
    tls_conn_feed(t, d, p, n, &m);
    (void)tls_conn_outcome(t);
    tls_conn_free(t);
    return &ev;
}

static void test_malformed(void **state)
{
    (void)state;
    /* Not a record header at all. */
    static const uint8_t junk[] = "EHLO client.example\r\n";
    assert_int_equal(sc_events_count(feed_raw(C, junk, sizeof(junk) - 1), "tls_malformed"), 1);
    /* A record longer than TLS allows. */
    static const uint8_t huge[] = {0x16, 0x03, 0x03, 0xff, 0xff, 0x01};
    assert_int_equal(sc_events_count(feed_raw(C, huge, sizeof(huge)), "tls_malformed"), 1);
    /* A ClientHello whose cipher list runs past its end. */
    static const uint8_t ch[] = {
        0x16, 0x03, 0x01, 0x00, 0x2b, 0x01, 0x00, 0x00, 0x27, 0x03, 0x03, 0,    0,    0,   0, 0, 0,
        0,    0,    0,    0,    0,    0,    0,    0,    0,    0,    0,    0,    0,    0,   0, 0, 0,
        0,    0,    0,    0,    0,    0,    0,    0,    0,    0x00, 0xff, 0xfe, 0x00, 0x2f};
    assert_int_equal(sizeof(ch), 5 + 4 + 0x27);
    assert_int_equal(sc_events_count(feed_raw(C, ch, sizeof(ch)), "tls_handshake_malformed"), 1);
    /* A handshake message announcing 16 MiB. */
    static const uint8_t big[] = {0x16, 0x03, 0x03, 0x00, 0x04, 0x0b, 0xff, 0xff, 0xff};
    assert_int_equal(sc_events_count(feed_raw(S, big, sizeof(big)), "tls_message_too_long"), 1);
    /* A Certificate message whose certificate is not DER. */
    static const uint8_t cert[] = {0x16, 0x03, 0x03, 0x00, 0x0d, 0x0b, 0x00, 0x00, 0x09,
                                   0x00, 0x00, 0x06, 0x00, 0x00, 0x03, 0x30, 0x01, 0x02};
    assert_int_equal(sc_events_count(feed_raw(S, cert, sizeof(cert)), "tls_certificate_unparsable"),
                     1);
    sc_events_free(feed_raw(C, NULL, 0));
}

static void test_damaged_handshakes_never_crash(void **state)
{
    (void)state;
    /* Real handshakes with bytes flipped, cut and duplicated at random
     * (fixed seed): the sanitizer build watches every access. */
    struct tlsgen_ctx *c = ctx(12, false, "Example Mail CA", NULL, 77);
    struct convo cv;
    handshake(&cv, c, c);
    struct syn_rng rng;
    syn_rng_seed(&rng, 2026, 1);
    for (int round = 0; round < 400; round++) {
        struct sc_events ev;
        sc_events_init(&ev);
        struct tls_conn *t = tls_conn_new(&ev, NULL);
        for (size_t i = 0; i < cv.n; i++) {
            struct sc_buf b;
            sc_buf_init(&b, 0);
            sc_buf_append(&b, cv.b[i].data, cv.b[i].len);
            for (int k = 0; k < 1 + round % 8; k++)
                b.data[syn_rng_below(&rng, b.len)] = (uint8_t)syn_rng_next(&rng);
            size_t cut = round % 3 == 0 ? syn_rng_below(&rng, b.len + 1) : b.len;
            struct sc_meta m = {i + 1, 0};
            tls_conn_feed(t, cv.dir[i], b.data, cut, &m);
            if (round % 5 == 0)
                tls_conn_gap(t, cv.dir[i], 1 + syn_rng_below(&rng, 100));
            sc_buf_free(&b);
        }
        (void)tls_conn_outcome(t);
        tls_conn_free(t);
        sc_events_free(&ev);
    }
    convo_free(&cv);
    tlsgen_ctx_free(c);
}

static void test_names(void **state)
{
    (void)state;
    char v[16];
    tls_version_str(v, sizeof(v), 0x0303);
    assert_string_equal(v, "TLSv1.2");
    tls_version_str(v, sizeof(v), 0x7f1c);
    assert_string_equal(v, "0x7f1c");
    assert_string_equal(tls_cipher_name(0x1302), "TLS_AES_256_GCM_SHA384");
    assert_null(tls_cipher_name(0x1234));
    assert_string_equal(tls_alert_name(40), "handshake_failure");
    assert_null(tls_alert_name(255));
    /* Every named suite is OpenSSL's idea of that number too. */
    SSL_CTX *sctx = SSL_CTX_new(TLS_method());
    SSL *ssl = SSL_new(sctx);
    for (unsigned id = 0; id <= 0xffff; id++) {
        const char *ours = tls_cipher_name((uint16_t)id);
        if (!ours)
            continue;
        uint8_t b[2] = {(uint8_t)(id >> 8), (uint8_t)id};
        const SSL_CIPHER *sc = SSL_CIPHER_find(ssl, b);
        if (sc)
            assert_string_equal(SSL_CIPHER_standard_name(sc), ours);
    }
    SSL_free(ssl);
    SSL_CTX_free(sctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_tls12_rsa),
        cmocka_unit_test(test_tls12_ec_ca_signed),
        cmocka_unit_test(test_tls12_tiny_records),
        cmocka_unit_test(test_tls13),
        cmocka_unit_test(test_tls13_tiny_records),
        cmocka_unit_test(test_handshake_failure_alert),
        cmocka_unit_test(test_only_client_hello),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_damaged_handshakes_never_crash),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
