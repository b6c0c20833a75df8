/* test_synth_tlsgen.c - in-memory TLS handshakes of the synthesizer (pcaps/synth/tlsgen.h).
 *
 * Every test drives a real OpenSSL client and server through tlsgen and
 * checks what a passive observer would see on the wire: records, the
 * certificate (in clear for TLS 1.2 only), alerts; plus the determinism the
 * committed captures rely on: same seed, same bytes, in this process and in
 * fresh processes (the test binary re-runs itself with --transcript).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "common/buf.h"
#include "pcaps/synth/tlsgen.h"

/* Internal hooks of tlsgen.c. */
SSL *tlsgen__ssl(struct tlsgen_end *e);
void tlsgen__chacha20_block(const uint8_t key[32], uint32_t counter, const uint8_t nonce[12],
                            uint8_t out[64]);

/* 2030-01-01 and 2031-01-01, 00:00:00 UTC. */
#define NOT_BEFORE 1893456000
#define NOT_AFTER 1924992000

/* Size of the application data exchanged in each direction. */
#define APP_BYTES (100 * 1024)

/* TLS record content types (RFC 8446 section 5.1). */
#define CT_CCS 20
#define CT_ALERT 21
#define CT_HANDSHAKE 22
#define CT_APPDATA 23

/* ------------------------------------------------------------------------ */
/* Helpers                                                                   */

/* xorshift64*: the tests' own reproducible randomness. */
static uint64_t rnd(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545F4914F6CDD1DULL;
}

static size_t rnd_between(uint64_t *s, size_t lo, size_t hi)
{
    return lo + (size_t)(rnd(s) % (hi - lo + 1));
}

static struct tlsgen_opts opts(int version, bool ec, uint64_t seed)
{
    struct tlsgen_opts o;
    memset(&o, 0, sizeof(o));
    o.version = version;
    o.seed = seed;
    o.cn = "mx.example.net";
    o.ec = ec;
    o.not_before = NOT_BEFORE;
    o.not_after = NOT_AFTER;
    o.sni = "mx.example.net";
    return o;
}

/* One connection: both endpoints and everything each side sent. */
struct conn {
    struct tlsgen_ctx *cctx; /* owner of the client endpoint */
    struct tlsgen_ctx *sctx; /* owner of the server endpoint (may equal cctx) */
    struct tlsgen_end *cli;
    struct tlsgen_end *srv;
    struct sc_buf c2s, s2c;    /* all wire bytes, per direction */
    struct sc_buf capp, sapp;  /* application data each side received */
    size_t c2s_done, s2c_done; /* bytes already delivered to the peer */
    size_t first_flight;       /* server bytes sent in answer to the ClientHello */
};

static void conn_init2(struct conn *k, struct tlsgen_ctx *cctx, struct tlsgen_ctx *sctx)
{
    memset(k, 0, sizeof(*k));
    k->cctx = cctx;
    k->sctx = sctx;
    assert_non_null(cctx);
    assert_non_null(sctx);
    k->cli = tlsgen_client(cctx);
    k->srv = tlsgen_server(sctx);
    assert_non_null(k->cli);
    assert_non_null(k->srv);
    sc_buf_init(&k->c2s, 0);
    sc_buf_init(&k->s2c, 0);
    sc_buf_init(&k->capp, 0);
    sc_buf_init(&k->sapp, 0);
}

static void conn_init(struct conn *k, const struct tlsgen_opts *o)
{
    struct tlsgen_ctx *c = tlsgen_ctx_new(o);
    conn_init2(k, c, c);
}

static void conn_free(struct conn *k)
{
    tlsgen_end_free(k->cli);
    tlsgen_end_free(k->srv);
    if (k->sctx != k->cctx)
        tlsgen_ctx_free(k->sctx);
    tlsgen_ctx_free(k->cctx);
    sc_buf_free(&k->c2s);
    sc_buf_free(&k->s2c);
    sc_buf_free(&k->capp);
    sc_buf_free(&k->sapp);
}

/* Delivers what each side sent and the other has not seen yet, in pieces
 * of `step` bytes (0: all at once; SIZE_MAX: random sizes from *rs), until
 * nothing moves.  Returns the number of rounds that moved bytes. */
static int conn_pump(struct conn *k, size_t step, uint64_t *rs)
{
    int rounds = 0;
    for (;;) {
        bool moved = false;
        while (k->c2s_done < k->c2s.len) {
            size_t left = k->c2s.len - k->c2s_done;
            size_t n = step == 0 ? left : step == SIZE_MAX ? rnd_between(rs, 1, 3000) : step;
            if (n > left)
                n = left;
            size_t before = k->s2c.len;
            tlsgen_input(k->srv, k->c2s.data + k->c2s_done, n, &k->s2c, &k->sapp);
            k->c2s_done += n;
            if (k->first_flight == 0 && k->s2c.len > before)
                k->first_flight = k->s2c.len;
            moved = true;
        }
        while (k->s2c_done < k->s2c.len) {
            size_t left = k->s2c.len - k->s2c_done;
            size_t n = step == 0 ? left : step == SIZE_MAX ? rnd_between(rs, 1, 3000) : step;
            if (n > left)
                n = left;
            tlsgen_input(k->cli, k->s2c.data + k->s2c_done, n, &k->c2s, &k->capp);
            k->s2c_done += n;
            moved = true;
        }
        if (!moved)
            return rounds;
        rounds++;
    }
}

static void conn_handshake(struct conn *k, size_t step)
{
    tlsgen_start(k->cli, &k->c2s);
    assert_true(k->c2s.len > 0);
    assert_int_equal(k->c2s.data[0], CT_HANDSHAKE);
    conn_pump(k, step, NULL);
    assert_false(tlsgen_failed(k->cli));
    assert_false(tlsgen_failed(k->srv));
    assert_true(tlsgen_established(k->cli));
    assert_true(tlsgen_established(k->srv));
}

static const uint8_t *find(const uint8_t *hay, size_t hn, const uint8_t *needle, size_t nn)
{
    return memmem(hay, hn, needle, nn);
}

/* DER of the leaf certificate as tlsgen_write_cert writes it. */
static uint8_t *leaf_der(const struct tlsgen_ctx *c, int *len)
{
    char path[] = "/tmp/tlsgen_leaf_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(tlsgen_write_cert(c, path), 0);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    unlink(path);
    assert_non_null(x);
    uint8_t *der = NULL;
    *len = i2d_X509(x, &der);
    X509_free(x);
    assert_true(*len > 0);
    return der;
}

/* Walks the records of a byte stream; returns the count, fills per-type
 * counts and the largest record, and fails on a truncated record. */
struct recstat {
    int n;
    int by_type[256];
    size_t max_len;
};

static struct recstat records(const uint8_t *p, size_t n)
{
    struct recstat st;
    memset(&st, 0, sizeof(st));
    size_t off = 0;
    while (off < n) {
        assert_true(n - off >= 5);
        size_t len = (size_t)p[off + 3] << 8 | p[off + 4];
        assert_true(n - off - 5 >= len);
        st.n++;
        st.by_type[p[off]]++;
        if (len > st.max_len)
            st.max_len = len;
        off += 5 + len;
    }
    return st;
}

/* Sends APP_BYTES of pseudo-random data each way in random-sized records,
 * delivered in random-sized pieces, and checks both arrive intact. */
static void exchange(struct conn *k, uint64_t seed, size_t step)
{
    uint64_t rs = seed | 1;
    uint8_t *a = malloc(APP_BYTES), *b = malloc(APP_BYTES);
    assert_non_null(a);
    assert_non_null(b);
    for (size_t i = 0; i < APP_BYTES; i++) {
        a[i] = (uint8_t)rnd(&rs);
        b[i] = (uint8_t)rnd(&rs);
    }
    size_t capp0 = k->capp.len, sapp0 = k->sapp.len;
    for (size_t off = 0; off < APP_BYTES;) {
        size_t n = rnd_between(&rs, 1, 20000);
        if (n > APP_BYTES - off)
            n = APP_BYTES - off;
        tlsgen_write(k->cli, a + off, n, rnd_between(&rs, 0, 16384), &k->c2s);
        tlsgen_write(k->srv, b + off, n, rnd_between(&rs, 1, 5000), &k->s2c);
        off += n;
        conn_pump(k, step, &rs);
    }
    assert_int_equal(k->sapp.len - sapp0, APP_BYTES);
    assert_int_equal(k->capp.len - capp0, APP_BYTES);
    assert_memory_equal(k->sapp.data + sapp0, a, APP_BYTES);
    assert_memory_equal(k->capp.data + capp0, b, APP_BYTES);
    assert_false(tlsgen_failed(k->cli));
    assert_false(tlsgen_failed(k->srv));
    free(a);
    free(b);
}

/* Client closes, then the server; each sees the other's close_notify. */
static void close_both(struct conn *k)
{
    size_t before = k->c2s.len;
    tlsgen_close(k->cli, &k->c2s);
    assert_true(k->c2s.len > before);
    /* TLS 1.2 shows the alert type; TLS 1.3 hides it in application_data. */
    assert_int_equal(k->c2s.data[before],
                     strcmp(tlsgen_version(k->cli), "TLSv1.3") == 0 ? CT_APPDATA : CT_ALERT);
    conn_pump(k, 0, NULL);
    assert_true(SSL_get_shutdown(tlsgen__ssl(k->srv)) & SSL_RECEIVED_SHUTDOWN);
    assert_false(SSL_get_shutdown(tlsgen__ssl(k->cli)) & SSL_RECEIVED_SHUTDOWN);
    tlsgen_close(k->srv, &k->s2c);
    conn_pump(k, 0, NULL);
    assert_true(SSL_get_shutdown(tlsgen__ssl(k->cli)) & SSL_RECEIVED_SHUTDOWN);
    assert_false(tlsgen_failed(k->cli));
    assert_false(tlsgen_failed(k->srv));
}

static void hex(const uint8_t *p, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", p[i]);
}

static void sha256(const uint8_t *p, size_t n, uint8_t out[32])
{
    assert_true(EVP_Digest(p, n, out, NULL, EVP_sha256(), NULL));
}

/* ------------------------------------------------------------------------ */
/* The deterministic generator                                               */

/* The keystream block function against RFC 8439 section 2.3.2 and against
 * OpenSSL's own ChaCha20. */
static void test_chacha20_block(void **state)
{
    (void)state;
    static const uint8_t want[16] = {0x10, 0xf1, 0xe7, 0xe4, 0xd1, 0x3b, 0x59, 0x15,
                                     0x50, 0x0f, 0xdd, 0x1f, 0xa3, 0x20, 0x71, 0xc4};
    uint8_t key[32], nonce[12] = {0, 0, 0, 9, 0, 0, 0, 0x4a, 0, 0, 0, 0}, out[64];
    for (int i = 0; i < 32; i++)
        key[i] = (uint8_t)i;
    tlsgen__chacha20_block(key, 1, nonce, out);
    assert_memory_equal(out, want, sizeof(want));

    static const uint32_t counters[] = {0, 1, 7, 0xffffffffu};
    for (size_t t = 0; t < sizeof(counters) / sizeof(counters[0]); t++) {
        uint8_t iv[16], zero[64] = {0}, ref[64];
        int len = 0;
        iv[0] = (uint8_t)counters[t];
        iv[1] = (uint8_t)(counters[t] >> 8);
        iv[2] = (uint8_t)(counters[t] >> 16);
        iv[3] = (uint8_t)(counters[t] >> 24);
        memcpy(iv + 4, nonce, 12);
        EVP_CIPHER_CTX *cx = EVP_CIPHER_CTX_new();
        assert_non_null(cx);
        assert_int_equal(EVP_EncryptInit_ex(cx, EVP_chacha20(), NULL, key, iv), 1);
        assert_int_equal(EVP_EncryptUpdate(cx, ref, &len, zero, sizeof(zero)), 1);
        assert_int_equal(len, 64);
        EVP_CIPHER_CTX_free(cx);
        tlsgen__chacha20_block(key, counters[t], nonce, out);
        assert_memory_equal(out, ref, 64);
    }
}

/* ------------------------------------------------------------------------ */
/* Handshakes                                                                */

/* TLS 1.2, generated self-signed RSA: the certificate travels in clear in
 * the server's first flight; 100 KB each way; close_notify. */
static void test_tls12_rsa_selfsigned(void **state)
{
    (void)state;
    struct tlsgen_opts o = opts(12, false, 1);
    struct conn k;
    conn_init(&k, &o);
    conn_handshake(&k, 0);
    assert_string_equal(tlsgen_version(k.cli), "TLSv1.2");
    assert_string_equal(tlsgen_version(k.srv), "TLSv1.2");
    assert_string_equal(tlsgen_cipher(k.cli), "ECDHE-RSA-AES256-GCM-SHA384");
    assert_string_equal(tlsgen_cipher(k.srv), "ECDHE-RSA-AES256-GCM-SHA384");

    int dlen;
    uint8_t *der = leaf_der(k.cctx, &dlen);
    assert_non_null(find(k.s2c.data, k.first_flight, der, (size_t)dlen));
    OPENSSL_free(der);

    /* The handshake ends with CCS + Finished from both sides. */
    struct recstat cs = records(k.c2s.data, k.c2s.len);
    struct recstat ss = records(k.s2c.data, k.s2c.len);
    assert_int_equal(cs.by_type[CT_CCS], 1);
    assert_int_equal(ss.by_type[CT_CCS], 1);
    assert_int_equal(cs.by_type[CT_APPDATA] + ss.by_type[CT_APPDATA], 0);

    exchange(&k, 11, SIZE_MAX);
    close_both(&k);
    conn_free(&k);
}

/* TLS 1.3, generated EC certificate signed by a generated CA: the
 * certificate never appears in clear. */
static void test_tls13_ec_ca(void **state)
{
    (void)state;
    struct tlsgen_opts o = opts(13, true, 2);
    o.issuer_cn = "Example Test CA";
    struct conn k;
    conn_init(&k, &o);
    conn_handshake(&k, 0);
    assert_string_equal(tlsgen_version(k.cli), "TLSv1.3");
    assert_string_equal(tlsgen_version(k.srv), "TLSv1.3");
    assert_string_equal(tlsgen_cipher(k.cli), "TLS_AES_256_GCM_SHA384");
    assert_string_equal(tlsgen_cipher(k.srv), "TLS_AES_256_GCM_SHA384");

    int dlen;
    uint8_t *der = leaf_der(k.cctx, &dlen);
    assert_null(find(k.s2c.data, k.s2c.len, der, (size_t)dlen));
    assert_null(find(k.c2s.data, k.c2s.len, der, (size_t)dlen));
    /* Not even 24 bytes from its middle (inside the public key). */
    assert_null(find(k.s2c.data, k.s2c.len, der + dlen / 2, 24));
    OPENSSL_free(der);
    assert_null(find(k.s2c.data, k.s2c.len, (const uint8_t *)"Example Test CA", 15));

    /* No NewSessionTicket: after the server's flight, nothing until app data. */
    size_t s2c_after_hs = k.s2c.len;
    conn_pump(&k, 0, NULL);
    assert_int_equal(k.s2c.len, s2c_after_hs);

    exchange(&k, 12, SIZE_MAX);
    close_both(&k);
    conn_free(&k);
}

/* Parses the TLS 1.2 server flight: the Certificate message carries the
 * leaf then the CA; checks names, SAN, validity and signatures. */
static void test_tls12_ec_ca_chain(void **state)
{
    (void)state;
    struct tlsgen_opts o = opts(12, true, 3);
    o.issuer_cn = "Example Test CA";
    struct conn k;
    conn_init(&k, &o);
    conn_handshake(&k, 0);
    assert_string_equal(tlsgen_cipher(k.srv), "ECDHE-ECDSA-AES256-GCM-SHA384");

    /* Concatenate the handshake records of the first flight. */
    struct sc_buf hs;
    sc_buf_init(&hs, 0);
    for (size_t off = 0; off + 5 <= k.first_flight;) {
        size_t len = (size_t)k.s2c.data[off + 3] << 8 | k.s2c.data[off + 4];
        if (k.s2c.data[off] == CT_HANDSHAKE)
            sc_buf_append(&hs, k.s2c.data + off + 5, len);
        off += 5 + len;
    }
    X509 *certs[4] = {NULL};
    int ncert = 0;
    for (size_t off = 0; off + 4 <= hs.len;) {
        uint8_t type = hs.data[off];
        size_t len =
            (size_t)hs.data[off + 1] << 16 | (size_t)hs.data[off + 2] << 8 | hs.data[off + 3];
        assert_true(off + 4 + len <= hs.len);
        if (type == 11) { /* Certificate (RFC 5246 section 7.4.2) */
            const uint8_t *p = hs.data + off + 4;
            size_t total = (size_t)p[0] << 16 | (size_t)p[1] << 8 | p[2];
            assert_int_equal(total + 3, len);
            for (size_t q = 3; q < len;) {
                size_t cl = (size_t)p[q] << 16 | (size_t)p[q + 1] << 8 | p[q + 2];
                const uint8_t *c = p + q + 3;
                assert_true(ncert < 4);
                certs[ncert] = d2i_X509(NULL, &c, (long)cl);
                assert_non_null(certs[ncert]);
                ncert++;
                q += 3 + cl;
            }
        }
        off += 4 + len;
    }
    sc_buf_free(&hs);
    assert_int_equal(ncert, 2);

    /* certs[0] is the leaf tlsgen reports. */
    int dlen;
    uint8_t *der = leaf_der(k.cctx, &dlen), *der0 = NULL;
    int len0 = i2d_X509(certs[0], &der0);
    assert_int_equal(len0, dlen);
    assert_memory_equal(der0, der, (size_t)dlen);
    uint8_t fp[32], want[32];
    sha256(der, (size_t)dlen, want);
    tlsgen_cert_sha256(k.sctx, fp);
    assert_memory_equal(fp, want, 32);
    OPENSSL_free(der);
    OPENSSL_free(der0);

    char cn[256];
    assert_true(X509_NAME_get_text_by_NID(X509_get_subject_name(certs[0]), NID_commonName, cn,
                                          sizeof(cn)) > 0);
    assert_string_equal(cn, "mx.example.net");
    assert_true(X509_NAME_get_text_by_NID(X509_get_issuer_name(certs[0]), NID_commonName, cn,
                                          sizeof(cn)) > 0);
    assert_string_equal(cn, "Example Test CA");
    assert_true(X509_NAME_get_text_by_NID(X509_get_subject_name(certs[1]), NID_commonName, cn,
                                          sizeof(cn)) > 0);
    assert_string_equal(cn, "Example Test CA");
    assert_int_equal(X509_check_host(certs[0], "mx.example.net", 0, 0, NULL), 1);
    assert_int_equal(X509_verify(certs[0], X509_get0_pubkey(certs[1])), 1);
    assert_int_equal(X509_verify(certs[1], X509_get0_pubkey(certs[1])), 1);
    assert_int_equal(X509_check_ca(certs[1]), 1);
    assert_int_equal(X509_check_ca(certs[0]), 0);
    assert_int_equal(EVP_PKEY_get_id(X509_get0_pubkey(certs[0])), EVP_PKEY_EC);

    ASN1_TIME *nb = ASN1_TIME_set(NULL, NOT_BEFORE), *na = ASN1_TIME_set(NULL, NOT_AFTER);
    assert_int_equal(ASN1_TIME_compare(X509_get0_notBefore(certs[0]), nb), 0);
    assert_int_equal(ASN1_TIME_compare(X509_get0_notAfter(certs[0]), na), 0);
    assert_int_equal(ASN1_TIME_compare(X509_get0_notBefore(certs[1]), nb), 0);
    ASN1_TIME_free(nb);
    ASN1_TIME_free(na);

    const ASN1_INTEGER *sn = X509_get0_serialNumber(certs[0]);
    assert_int_equal(sn->type, V_ASN1_INTEGER); /* positive */
    assert_int_equal(sn->length, 16);

    for (int i = 0; i < ncert; i++)
        X509_free(certs[i]);
    exchange(&k, 13, 0);
    close_both(&k);
    conn_free(&k);
}

/* TLS 1.3, RSA, every byte delivered on its own: same result, and the same
 * bytes on the wire as with whole deliveries. */
static void test_tls13_rsa_bytewise(void **state)
{
    (void)state;
    struct tlsgen_opts o = opts(13, false, 4);
    struct conn k, w;
    conn_init(&k, &o);
    conn_handshake(&k, 1);
    assert_string_equal(tlsgen_version(k.srv), "TLSv1.3");
    conn_init(&w, &o);
    conn_handshake(&w, 0);

    static const char msg[] = "220 mx.example.net ESMTP\r\n";
    for (int i = 0; i < 3; i++) {
        tlsgen_write(k.srv, (const uint8_t *)msg, sizeof(msg) - 1, 7, &k.s2c);
        tlsgen_write(w.srv, (const uint8_t *)msg, sizeof(msg) - 1, 7, &w.s2c);
        tlsgen_write(k.cli, (const uint8_t *)"EHLO a\r\n", 8, 0, &k.c2s);
        tlsgen_write(w.cli, (const uint8_t *)"EHLO a\r\n", 8, 0, &w.c2s);
        conn_pump(&k, 1, NULL);
        conn_pump(&w, 0, NULL);
    }
    assert_int_equal(k.capp.len, 3 * (sizeof(msg) - 1));
    assert_memory_equal(k.capp.data, msg, sizeof(msg) - 1);
    assert_int_equal(k.sapp.len, 24);
    assert_int_equal(k.c2s.len, w.c2s.len);
    assert_int_equal(k.s2c.len, w.s2c.len);
    assert_memory_equal(k.c2s.data, w.c2s.data, k.c2s.len);
    assert_memory_equal(k.s2c.data, w.s2c.data, k.s2c.len);
    close_both(&k);
    conn_free(&k);
    conn_free(&w);
}

/* A TLS 1.2 cipher string is honoured, and max_record caps the plaintext
 * of each record. */
static void test_cipher_and_record_size(void **state)
{
    (void)state;
    struct tlsgen_opts o = opts(12, true, 5);
    o.cipher = "ECDHE-ECDSA-AES128-GCM-SHA256";
    struct conn k;
    conn_init(&k, &o);
    conn_handshake(&k, 0);
    assert_string_equal(tlsgen_cipher(k.cli), "ECDHE-ECDSA-AES128-GCM-SHA256");
    assert_string_equal(tlsgen_cipher(k.srv), "ECDHE-ECDSA-AES128-GCM-SHA256");

    uint8_t data[1000];
    memset(data, 'x', sizeof(data));
    size_t before = k.c2s.len;
    tlsgen_write(k.cli, data, sizeof(data), 100, &k.c2s);
    struct recstat st = records(k.c2s.data + before, k.c2s.len - before);
    assert_int_equal(st.n, 10);
    assert_int_equal(st.by_type[CT_APPDATA], 10);
    assert_int_equal(st.max_len, 100 + 8 + 16); /* explicit nonce + GCM tag */

    before = k.c2s.len;
    tlsgen_write(k.cli, data, sizeof(data), 0, &k.c2s);
    st = records(k.c2s.data + before, k.c2s.len - before);
    assert_int_equal(st.n, 1);
    conn_pump(&k, 0, NULL);
    assert_int_equal(k.sapp.len, 2000);
    conn_free(&k);

    /* TLS 1.3: ciphersuite name, and inner content type + tag overhead. */
    o = opts(13, true, 5);
    o.cipher = "TLS_CHACHA20_POLY1305_SHA256";
    conn_init(&k, &o);
    conn_handshake(&k, 0);
    assert_string_equal(tlsgen_cipher(k.srv), "TLS_CHACHA20_POLY1305_SHA256");
    before = k.s2c.len;
    tlsgen_write(k.srv, data, sizeof(data), 333, &k.s2c);
    st = records(k.s2c.data + before, k.s2c.len - before);
    assert_int_equal(st.n, 4);
    assert_int_equal(st.max_len, 333 + 1 + 16);
    conn_pump(&k, 0, NULL);
    assert_int_equal(k.capp.len, 1000);
    conn_free(&k);
}

/* The client's server_name reaches the server. */
static void test_sni(void **state)
{
    (void)state;
    struct tlsgen_opts o = opts(13, true, 6);
    o.sni = "smtp.example.org";
    struct conn k;
    conn_init(&k, &o);
    conn_handshake(&k, 0);
    const char *sn = SSL_get_servername(tlsgen__ssl(k.srv), TLSEXT_NAMETYPE_host_name);
    assert_non_null(sn);
    assert_string_equal(sn, "smtp.example.org");
    assert_non_null(find(k.c2s.data, k.c2s.len, (const uint8_t *)"smtp.example.org", 16));
    conn_free(&k);

    o.sni = NULL;
    conn_init(&k, &o);
    conn_handshake(&k, 0);
    assert_null(SSL_get_servername(tlsgen__ssl(k.srv), TLSEXT_NAMETYPE_host_name));
    conn_free(&k);
}

/* ------------------------------------------------------------------------ */
/* Determinism                                                               */

/* A fixed session: handshake, data both ways, closes.  Fills the three
 * digests (client bytes, server bytes, certificate). */
static void transcript(const struct tlsgen_opts *o, uint8_t c2s[32], uint8_t s2c[32],
                       uint8_t cert[32])
{
    struct conn k;
    uint8_t data[5000];
    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (uint8_t)(i * 7);
    conn_init(&k, o);
    conn_handshake(&k, 0);
    tlsgen_write(k.cli, data, sizeof(data), 700, &k.c2s);
    tlsgen_write(k.srv, data, 3000, 1000, &k.s2c);
    conn_pump(&k, 0, NULL);
    close_both(&k);
    sha256(k.c2s.data, k.c2s.len, c2s);
    sha256(k.s2c.data, k.s2c.len, s2c);
    tlsgen_cert_sha256(k.cctx, cert);
    conn_free(&k);
}

/* Two contexts with the same seed alive at once, driven in interleaved
 * steps, give identical bytes; another seed gives other bytes everywhere. */
static void same_seed(int version, bool ec, const char *issuer, const char *cipher)
{
    struct tlsgen_opts o = opts(version, ec, 0x5eed);
    o.issuer_cn = issuer;
    o.cipher = cipher;
    struct conn a, b, c;
    conn_init(&a, &o);
    conn_init(&b, &o);
    struct tlsgen_opts o2 = o;
    o2.seed = 0x5eee;
    conn_init(&c, &o2);

    tlsgen_start(a.cli, &a.c2s);
    tlsgen_start(b.cli, &b.c2s);
    tlsgen_start(c.cli, &c.c2s);
    conn_pump(&b, 0, NULL);
    conn_pump(&a, 3, NULL);
    conn_pump(&c, 0, NULL);
    uint64_t rs = 99;
    for (int i = 0; i < 20; i++) {
        uint8_t d[300];
        size_t n = rnd_between(&rs, 1, sizeof(d)), rec = rnd_between(&rs, 1, 64);
        memset(d, 'a' + i, n);
        struct conn *ks[3] = {&a, &b, &c};
        for (int j = 0; j < 3; j++) {
            tlsgen_write(ks[j]->cli, d, n, rec, &ks[j]->c2s);
            tlsgen_write(ks[j]->srv, d, n / 2 + 1, rec, &ks[j]->s2c);
        }
        conn_pump(&b, 0, NULL);
        conn_pump(&a, 0, NULL);
        conn_pump(&c, 0, NULL);
    }
    close_both(&a);
    close_both(&b);
    close_both(&c);

    assert_true(tlsgen_established(a.cli));
    assert_int_equal(a.c2s.len, b.c2s.len);
    assert_int_equal(a.s2c.len, b.s2c.len);
    assert_memory_equal(a.c2s.data, b.c2s.data, a.c2s.len);
    assert_memory_equal(a.s2c.data, b.s2c.data, a.s2c.len);
    uint8_t fa[32], fb[32], fc[32];
    tlsgen_cert_sha256(a.cctx, fa);
    tlsgen_cert_sha256(b.cctx, fb);
    tlsgen_cert_sha256(c.cctx, fc);
    assert_memory_equal(fa, fb, 32);

    /* Another seed: the certificate and both directions differ from the
     * first random bytes on (ClientHello.random at offset 11). */
    assert_memory_not_equal(fa, fc, 32);
    assert_true(c.c2s.len > 43 && c.s2c.len > 43);
    assert_memory_not_equal(a.c2s.data + 11, c.c2s.data + 11, 32);
    assert_memory_not_equal(a.s2c.data + 11, c.s2c.data + 11, 32);
    conn_free(&a);
    conn_free(&b);
    conn_free(&c);
}

static void test_determinism_tls12(void **state)
{
    (void)state;
    same_seed(12, true, NULL, NULL);
    same_seed(12, false, "Example Test CA", "ECDHE-RSA-AES128-SHA256"); /* CBC: random IVs */
}

static void test_determinism_tls13(void **state)
{
    (void)state;
    same_seed(13, true, "Example Test CA", NULL);
    same_seed(13, false, NULL, NULL); /* RSA-PSS salts */
}

static void transcript_line(const struct tlsgen_opts *o, char line[200])
{
    uint8_t d[3][32];
    transcript(o, d[0], d[1], d[2]);
    for (int i = 0; i < 3; i++) {
        hex(d[i], 32, line + 65 * i);
        line[65 * i + 64] = i < 2 ? ' ' : 0;
    }
}

/* The same transcript computed here and by two fresh processes (re-running
 * this binary in --transcript mode). */
static void test_determinism_processes(void **state)
{
    (void)state;
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n <= 0)
        skip();
    self[n] = 0;
    static const struct {
        int version;
        bool ec;
    } cases[] = {{12, true}, {13, false}};
    for (size_t t = 0; t < sizeof(cases) / sizeof(cases[0]); t++) {
        struct tlsgen_opts o = opts(cases[t].version, cases[t].ec, 424242);
        o.issuer_cn = "Example Test CA";
        char here[200];
        transcript_line(&o, here);
        for (int run = 0; run < 2; run++) {
            char cmd[4300], there[256] = "";
            snprintf(cmd, sizeof(cmd), "'%s' --transcript %d %d 424242", self, cases[t].version,
                     cases[t].ec ? 1 : 0);
            FILE *p = popen(cmd, "r");
            assert_non_null(p);
            assert_non_null(fgets(there, sizeof(there), p));
            assert_int_equal(pclose(p), 0);
            there[strcspn(there, "\n")] = 0;
            assert_string_equal(there, here);
        }
    }
}

/* ------------------------------------------------------------------------ */
/* Certificates from and to files                                            */

/* The fingerprint equals the one openssl x509 (or PEM_read + SHA-256)
 * computes from the written PEM. */
static void test_fingerprint(void **state)
{
    (void)state;
    struct tlsgen_opts o = opts(12, true, 7);
    struct tlsgen_ctx *c = tlsgen_ctx_new(&o);
    assert_non_null(c);
    uint8_t fp[32], want[32];
    tlsgen_cert_sha256(c, fp);

    int dlen;
    uint8_t *der = leaf_der(c, &dlen);
    sha256(der, (size_t)dlen, want);
    OPENSSL_free(der);
    assert_memory_equal(fp, want, 32);

    char path[] = "/tmp/tlsgen_fp_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(tlsgen_write_cert(c, path), 0);
    if (access("/usr/bin/openssl", X_OK) == 0) {
        char cmd[256], line[256] = "", expect[3 * 32 + 1];
        snprintf(cmd, sizeof(cmd), "/usr/bin/openssl x509 -noout -fingerprint -sha256 -in %s",
                 path);
        FILE *p = popen(cmd, "r");
        assert_non_null(p);
        assert_non_null(fgets(line, sizeof(line), p));
        assert_int_equal(pclose(p), 0);
        for (int i = 0; i < 32; i++)
            sprintf(expect + 3 * i, "%02X%s", fp[i], i < 31 ? ":" : "");
        const char *eq = strchr(line, '=');
        assert_non_null(eq);
        assert_true(strncmp(eq + 1, expect, strlen(expect)) == 0);
    }
    unlink(path);
    assert_int_equal(tlsgen_write_cert(c, "/nonexistent-dir/x.pem"), -1);
    tlsgen_ctx_free(c);
}

/* Writes a self-signed P-256 certificate and its key made with OpenSSL
 * directly (not tlsgen) to dir; returns the certificate's DER. */
static uint8_t *make_pem_files(const char *dir, int *dlen)
{
    char path[512];
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    assert_non_null(k);
    X509 *x = X509_new();
    assert_non_null(x);
    X509_set_version(x, X509_VERSION_3);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 4242);
    X509_NAME *nm = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_ASC, (const unsigned char *)"loaded.example", -1,
                               -1, 0);
    X509_set_issuer_name(x, nm);
    ASN1_TIME *t = ASN1_TIME_set(NULL, NOT_BEFORE);
    X509_set1_notBefore(x, t);
    ASN1_TIME_set(t, NOT_AFTER);
    X509_set1_notAfter(x, t);
    ASN1_TIME_free(t);
    X509_set_pubkey(x, k);
    assert_true(X509_sign(x, k, EVP_sha256()) > 0);

    snprintf(path, sizeof(path), "%s/cert.pem", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_true(PEM_write_X509(f, x));
    fclose(f);
    snprintf(path, sizeof(path), "%s/key.pem", dir);
    f = fopen(path, "w");
    assert_non_null(f);
    assert_true(PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL));
    fclose(f);

    /* A second, unrelated key. */
    EVP_PKEY *k2 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    assert_non_null(k2);
    snprintf(path, sizeof(path), "%s/other.pem", dir);
    f = fopen(path, "w");
    assert_non_null(f);
    assert_true(PEM_write_PrivateKey(f, k2, NULL, NULL, 0, NULL, NULL));
    fclose(f);

    uint8_t *der = NULL;
    *dlen = i2d_X509(x, &der);
    assert_true(*dlen > 0);
    EVP_PKEY_free(k2);
    EVP_PKEY_free(k);
    X509_free(x);
    return der;
}

/* A certificate and key loaded from PEM files are used as given. */
static void test_load_pem(void **state)
{
    (void)state;
    char dir[] = "/tmp/tlsgen_pem_XXXXXX", cert[512], key[512], other[512];
    assert_non_null(mkdtemp(dir));
    int dlen;
    uint8_t *der = make_pem_files(dir, &dlen);
    snprintf(cert, sizeof(cert), "%s/cert.pem", dir);
    snprintf(key, sizeof(key), "%s/key.pem", dir);
    snprintf(other, sizeof(other), "%s/other.pem", dir);

    struct tlsgen_opts o = opts(12, false, 8);
    o.cn = NULL;
    o.cert_pem = cert;
    o.key_pem = key;
    struct conn k;
    conn_init(&k, &o);
    conn_handshake(&k, 0);
    assert_string_equal(tlsgen_cipher(k.srv), "ECDHE-ECDSA-AES256-GCM-SHA384");
    assert_non_null(find(k.s2c.data, k.first_flight, der, (size_t)dlen));
    uint8_t fp[32], want[32];
    sha256(der, (size_t)dlen, want);
    tlsgen_cert_sha256(k.sctx, fp);
    assert_memory_equal(fp, want, 32);
    exchange(&k, 14, SIZE_MAX);

    /* Same files, same seed: same bytes (the loaded key's ECDSA nonces too). */
    struct conn k2;
    conn_init(&k2, &o);
    conn_handshake(&k2, 0);
    exchange(&k2, 14, SIZE_MAX);
    assert_int_equal(k.s2c.len, k2.s2c.len);
    assert_memory_equal(k.s2c.data, k2.s2c.data, k.s2c.len);
    assert_memory_equal(k.c2s.data, k2.c2s.data, k.c2s.len);
    conn_free(&k);
    conn_free(&k2);

    /* Failures: a key that does not match, missing files, no key. */
    o.key_pem = other;
    assert_null(tlsgen_ctx_new(&o));
    o.key_pem = key;
    o.cert_pem = "/nonexistent/cert.pem";
    assert_null(tlsgen_ctx_new(&o));
    o.cert_pem = cert;
    o.key_pem = NULL;
    assert_null(tlsgen_ctx_new(&o));
    o.key_pem = cert; /* a certificate is not a key */
    assert_null(tlsgen_ctx_new(&o));

    OPENSSL_free(der);
    unlink(cert);
    unlink(key);
    unlink(other);
    rmdir(dir);
}

/* ------------------------------------------------------------------------ */
/* Failures                                                                  */

/* TLS 1.2-only client against a TLS 1.3-only server: the server sends a
 * fatal protocol_version alert, both sides fail, nothing aborts. */
static void test_version_mismatch(void **state)
{
    (void)state;
    struct tlsgen_opts oc = opts(12, true, 9), os = opts(13, true, 9);
    struct conn k;
    conn_init2(&k, tlsgen_ctx_new(&oc), tlsgen_ctx_new(&os));
    tlsgen_start(k.cli, &k.c2s);
    conn_pump(&k, 1, NULL);
    assert_true(tlsgen_failed(k.srv));
    assert_true(tlsgen_failed(k.cli));
    assert_false(tlsgen_established(k.srv));
    assert_false(tlsgen_established(k.cli));
    assert_int_equal(k.s2c.len, 7);
    assert_int_equal(k.s2c.data[0], CT_ALERT);
    assert_int_equal(k.s2c.data[5], 2);  /* fatal */
    assert_int_equal(k.s2c.data[6], 70); /* protocol_version */

    /* Further calls are ignored, not fatal. */
    size_t c2s = k.c2s.len;
    tlsgen_write(k.cli, (const uint8_t *)"x", 1, 0, &k.c2s);
    tlsgen_close(k.cli, &k.c2s);
    tlsgen_input(k.cli, (const uint8_t *)"\x16\x03\x03", 3, &k.c2s, &k.capp);
    assert_int_equal(k.c2s.len, c2s);
    assert_int_equal(k.capp.len, 0);
    conn_free(&k);

    /* The other way round: TLS 1.3-only client, TLS 1.2-only server. */
    conn_init2(&k, tlsgen_ctx_new(&os), tlsgen_ctx_new(&oc));
    tlsgen_start(k.cli, &k.c2s);
    conn_pump(&k, 0, NULL);
    assert_true(tlsgen_failed(k.srv));
    assert_true(tlsgen_failed(k.cli));
    assert_true(k.s2c.len >= 7);
    assert_int_equal(k.s2c.data[0], CT_ALERT);
    conn_free(&k);
}

/* Garbage instead of a ClientHello fails the server with an alert; writes
 * before the handshake produce nothing; bad options give NULL. */
static void test_bad_input_and_options(void **state)
{
    (void)state;
    struct tlsgen_opts o = opts(13, true, 10);
    struct conn k;
    conn_init(&k, &o);
    tlsgen_write(k.cli, (const uint8_t *)"early", 5, 0, &k.c2s);
    tlsgen_close(k.cli, &k.c2s);
    assert_int_equal(k.c2s.len, 0);
    assert_string_equal(tlsgen_cipher(k.cli), "");
    /* Not TLS at all: OpenSSL gives up without an alert (no record layer to
     * send one in). */
    static const char junk[] = "EHLO client.example\r\n";
    tlsgen_input(k.srv, (const uint8_t *)junk, sizeof(junk) - 1, &k.s2c, &k.sapp);
    assert_true(tlsgen_failed(k.srv));
    assert_int_equal(k.s2c.len, 0);
    tlsgen_end_free(k.srv);
    /* A handshake record with an unknown message type: unexpected_message. */
    static const uint8_t bad[] = {CT_HANDSHAKE, 3, 1, 0, 5, 0x99, 0, 0, 1, 0};
    k.srv = tlsgen_server(k.sctx);
    assert_non_null(k.srv);
    for (size_t i = 0; i < sizeof(bad); i++)
        tlsgen_input(k.srv, bad + i, 1, &k.s2c, &k.sapp);
    assert_true(tlsgen_failed(k.srv));
    assert_false(tlsgen_established(k.srv));
    assert_int_equal(k.s2c.len, 7);
    assert_int_equal(k.s2c.data[0], CT_ALERT);
    assert_int_equal(k.s2c.data[5], 2);
    assert_int_equal(k.s2c.data[6], 10);
    conn_free(&k);

    o.version = 11;
    assert_null(tlsgen_ctx_new(&o));
    o = opts(12, true, 10);
    o.cn = NULL;
    assert_null(tlsgen_ctx_new(&o));
    o = opts(12, true, 10);
    o.cipher = "NO-SUCH-CIPHER";
    assert_null(tlsgen_ctx_new(&o));
    o = opts(12, true, 10);
    o.not_after = (int64_t)1 << 50; /* beyond year 9999 */
    assert_null(tlsgen_ctx_new(&o));
    o.not_after = 253402300800; /* 10000-01-01 */
    assert_null(tlsgen_ctx_new(&o));

    /* The extremes that still fit: GeneralizedTime from 2050 on (RFC 5280). */
    o.not_before = -62135596800;
    o.not_after = 253402300799;
    struct tlsgen_ctx *c = tlsgen_ctx_new(&o);
    assert_non_null(c);
    int dlen;
    uint8_t *der = leaf_der(c, &dlen);
    assert_non_null(find(der, (size_t)dlen, (const uint8_t *)"99991231235959Z", 15));
    assert_non_null(find(der, (size_t)dlen, (const uint8_t *)"00010101000000Z", 15));
    OPENSSL_free(der);
    tlsgen_ctx_free(c);
}

/* --transcript VERSION EC SEED: prints the transcript digests (used by
 * test_determinism_processes and for manual comparison between hosts). */
static int transcript_main(int argc, char **argv)
{
    if (argc != 5)
        return 2;
    struct tlsgen_opts o = opts(atoi(argv[2]), atoi(argv[3]) != 0, strtoull(argv[4], NULL, 0));
    o.issuer_cn = "Example Test CA";
    char line[200];
    transcript_line(&o, line);
    printf("%s\n", line);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--transcript") == 0)
        return transcript_main(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chacha20_block),
        cmocka_unit_test(test_tls12_rsa_selfsigned),
        cmocka_unit_test(test_tls13_ec_ca),
        cmocka_unit_test(test_tls12_ec_ca_chain),
        cmocka_unit_test(test_tls13_rsa_bytewise),
        cmocka_unit_test(test_cipher_and_record_size),
        cmocka_unit_test(test_sni),
        cmocka_unit_test(test_determinism_tls12),
        cmocka_unit_test(test_determinism_tls13),
        cmocka_unit_test(test_determinism_processes),
        cmocka_unit_test(test_fingerprint),
        cmocka_unit_test(test_load_pem),
        cmocka_unit_test(test_version_mismatch),
        cmocka_unit_test(test_bad_input_and_options),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
