/* tls.c - TLS handshake reader (see tls.h). */
#include "dissect/tls.h"

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/escape.h"
#include "common/str.h"
#include "common/wire.h"

#define TLS_HS_CLIENT_HELLO 1
#define TLS_HS_SERVER_HELLO 2
#define TLS_HS_CERTIFICATE 11

#define TLS_EXT_SERVER_NAME 0
#define TLS_EXT_SUPPORTED_GROUPS 10
#define TLS_EXT_EC_POINT_FORMATS 11
#define TLS_EXT_ALPN 16
#define TLS_EXT_SUPPORTED_VERSIONS 43

/* One direction's walk. */
struct tls__dir {
    uint8_t hdr[5];
    uint8_t hdr_len;
    uint8_t type;       /* content type of the current record */
    uint32_t remaining; /* its body bytes still to come */
    bool encrypted;     /* handshake records of this direction are ciphertext now */
    /* The handshake message being reassembled, across records. */
    uint8_t hs_hdr[4];
    uint8_t hs_hdr_len;
    uint32_t hs_len, hs_got;
    bool hs_skip; /* too long to keep: counted through only */
    struct sc_buf hs;
    struct sc_meta hs_meta; /* where its last byte arrived */
    uint8_t alert[2];
    uint8_t alert_len;
};

struct tls_conn {
    struct tls__dir d[2];
    struct tls_info info;
    struct sc_events *ev;
    struct tls_cert_cache *cache;
};

/* Slots per set: a certificate may sit in any of the 4 slots of the set its
 * digest picks, so a few servers hashing to one set do not evict each other. */
#define TLS__CACHE_WAYS 4

struct tls__cache_slot {
    uint64_t used;  /* stamp of the last use; 0: empty */
    uint8_t md[32]; /* SHA-256 of the DER */
    struct tls_cert cert;
};

struct tls_cert_cache {
    struct tls__cache_slot slot[TLS_CERT_CACHE_SLOTS];
    uint64_t parsed, hits, clock;
    /* Digests fetched once: EVP_sha256() and EVP_md5() look the algorithm
     * up in the provider tables on every EVP_Digest call (OpenSSL 3). */
    EVP_MD *sha256, *md5;
};

struct tls_cert_cache *tls_cert_cache_new(void)
{
    struct tls_cert_cache *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    c->md5 = EVP_MD_fetch(NULL, "MD5", NULL);
    return c;
}

void tls_cert_cache_free(struct tls_cert_cache *c)
{
    if (!c)
        return;
    EVP_MD_free(c->sha256);
    EVP_MD_free(c->md5);
    free(c);
}

void tls_cert_cache_stats(const struct tls_cert_cache *c, uint64_t *parsed, uint64_t *hits)
{
    *parsed = c ? c->parsed : 0;
    *hits = c ? c->hits : 0;
}

static const char *const tls__outcomes[TLS_OUT__COUNT] = {
    "none", "established", "alert", "no_server_hello", "no_client_hello", "incomplete",
};

const char *tls_outcome_name(enum tls_outcome o)
{
    return (unsigned)o < TLS_OUT__COUNT ? tls__outcomes[o] : "?";
}

void tls_version_str(char *out, size_t outlen, uint16_t v)
{
    switch (v) {
    case 0x0300:
        snprintf(out, outlen, "SSLv3");
        break;
    case 0x0301:
        snprintf(out, outlen, "TLSv1.0");
        break;
    case 0x0302:
        snprintf(out, outlen, "TLSv1.1");
        break;
    case 0x0303:
        snprintf(out, outlen, "TLSv1.2");
        break;
    case 0x0304:
        snprintf(out, outlen, "TLSv1.3");
        break;
    default:
        snprintf(out, outlen, "0x%04x", v);
        break;
    }
}

/* The suites seen in practice on mail servers (IANA registry names). */
static const struct {
    uint16_t v;
    const char *name;
} tls__ciphers[] = {
    {0x0005, "TLS_RSA_WITH_RC4_128_SHA"},
    {0x000a, "TLS_RSA_WITH_3DES_EDE_CBC_SHA"},
    {0x002f, "TLS_RSA_WITH_AES_128_CBC_SHA"},
    {0x0033, "TLS_DHE_RSA_WITH_AES_128_CBC_SHA"},
    {0x0035, "TLS_RSA_WITH_AES_256_CBC_SHA"},
    {0x0039, "TLS_DHE_RSA_WITH_AES_256_CBC_SHA"},
    {0x003c, "TLS_RSA_WITH_AES_128_CBC_SHA256"},
    {0x003d, "TLS_RSA_WITH_AES_256_CBC_SHA256"},
    {0x0067, "TLS_DHE_RSA_WITH_AES_128_CBC_SHA256"},
    {0x006b, "TLS_DHE_RSA_WITH_AES_256_CBC_SHA256"},
    {0x009c, "TLS_RSA_WITH_AES_128_GCM_SHA256"},
    {0x009d, "TLS_RSA_WITH_AES_256_GCM_SHA384"},
    {0x009e, "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256"},
    {0x009f, "TLS_DHE_RSA_WITH_AES_256_GCM_SHA384"},
    {0x00ff, "TLS_EMPTY_RENEGOTIATION_INFO_SCSV"},
    {0x1301, "TLS_AES_128_GCM_SHA256"},
    {0x1302, "TLS_AES_256_GCM_SHA384"},
    {0x1303, "TLS_CHACHA20_POLY1305_SHA256"},
    {0x1304, "TLS_AES_128_CCM_SHA256"},
    {0x1305, "TLS_AES_128_CCM_8_SHA256"},
    {0x5600, "TLS_FALLBACK_SCSV"},
    {0xc009, "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA"},
    {0xc00a, "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA"},
    {0xc011, "TLS_ECDHE_RSA_WITH_RC4_128_SHA"},
    {0xc012, "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA"},
    {0xc013, "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"},
    {0xc014, "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA"},
    {0xc023, "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256"},
    {0xc024, "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384"},
    {0xc027, "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256"},
    {0xc028, "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384"},
    {0xc02b, "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"},
    {0xc02c, "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"},
    {0xc02f, "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"},
    {0xc030, "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"},
    {0xcca8, "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256"},
    {0xcca9, "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"},
    {0xccaa, "TLS_DHE_RSA_WITH_CHACHA20_POLY1305_SHA256"},
};

const char *tls_cipher_name(uint16_t suite)
{
    for (size_t i = 0; i < sizeof(tls__ciphers) / sizeof(tls__ciphers[0]); i++)
        if (tls__ciphers[i].v == suite)
            return tls__ciphers[i].name;
    return NULL;
}

const char *tls_alert_name(uint8_t desc)
{
    switch (desc) {
    case 0:
        return "close_notify";
    case 10:
        return "unexpected_message";
    case 20:
        return "bad_record_mac";
    case 22:
        return "record_overflow";
    case 40:
        return "handshake_failure";
    case 42:
        return "bad_certificate";
    case 43:
        return "unsupported_certificate";
    case 44:
        return "certificate_revoked";
    case 45:
        return "certificate_expired";
    case 46:
        return "certificate_unknown";
    case 47:
        return "illegal_parameter";
    case 48:
        return "unknown_ca";
    case 49:
        return "access_denied";
    case 50:
        return "decode_error";
    case 51:
        return "decrypt_error";
    case 70:
        return "protocol_version";
    case 71:
        return "insufficient_security";
    case 80:
        return "internal_error";
    case 86:
        return "inappropriate_fallback";
    case 90:
        return "user_canceled";
    case 100:
        return "no_renegotiation";
    case 109:
        return "missing_extension";
    case 110:
        return "unsupported_extension";
    case 112:
        return "unrecognized_name";
    case 113:
        return "bad_certificate_status_response";
    case 116:
        return "certificate_required";
    case 120:
        return "no_application_protocol";
    default:
        return NULL;
    }
}

struct tls_conn *tls_conn_new(struct sc_events *ev, struct tls_cert_cache *cache)
{
    struct tls_conn *t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    t->ev = ev;
    t->cache = cache;
    for (int d = 0; d < 2; d++)
        sc_buf_init(&t->d[d].hs, TLS_MESSAGE_MAX);
    return t;
}

void tls_conn_free(struct tls_conn *t)
{
    if (!t)
        return;
    for (int d = 0; d < 2; d++)
        sc_buf_free(&t->d[d].hs);
    free(t);
}

const struct tls_info *tls_conn_info(const struct tls_conn *t)
{
    return &t->info;
}

static void tls__event(struct tls_conn *t, const char *kind, enum sc_dir dir,
                       const struct sc_meta *m, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static void tls__event(struct tls_conn *t, const char *kind, enum sc_dir dir,
                       const struct sc_meta *m, const char *fmt, ...)
{
    char d[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d, sizeof(d), fmt, ap);
    va_end(ap);
    sc_events_add(t->ev, kind, dir, m ? m->frame : 0, m ? m->ts : 0, d);
}

/* RFC 8701: GREASE values are left out of fingerprints and version lists. */
static bool tls__grease(uint16_t v)
{
    return (v & 0x0f0f) == 0x0a0a && (v >> 8) == (v & 0xff);
}

/* Copies n captured bytes as escaped ASCII into out (size outlen). */
static void tls__text(char *out, size_t outlen, const uint8_t *p, size_t n)
{
    struct sc_buf b;
    sc_buf_init(&b, outlen - 1);
    sc_escape(&b, p, n);
    sc_strlcpy(out, outlen, sc_buf_str(&b));
    sc_buf_free(&b);
}

static void tls__hex(char *out, const uint8_t *md, unsigned n)
{
    static const char hx[] = "0123456789abcdef";
    for (unsigned i = 0; i < n; i++) {
        out[2 * i] = hx[md[i] >> 4];
        out[2 * i + 1] = hx[md[i] & 15];
    }
    out[2 * n] = 0;
}

/* Appends "a-b-c" (decimal) to a JA3 field. */
static void tls__ja3_list(struct sc_buf *b, const uint16_t *v, size_t n)
{
    bool first = true;
    for (size_t i = 0; i < n; i++) {
        if (tls__grease(v[i]))
            continue;
        char d[8]; /* "-65535" */
        size_t k = sizeof(d);
        unsigned x = v[i];
        do {
            d[--k] = (char)('0' + x % 10);
            x /= 10;
        } while (x);
        if (!first)
            d[--k] = '-';
        sc_buf_append(b, d + k, sizeof(d) - k);
        first = false;
    }
}

/* Most values kept per JA3 list: a ClientHello has at most 32767 suites,
 * real ones under 100. */
#define TLS_JA3_VALUES 512

static void tls__client_hello(struct tls_conn *t, const uint8_t *p, size_t n,
                              const struct sc_meta *m)
{
    struct tls_info *in = &t->info;
    if (in->client_hello)
        return; /* a second one (after HelloRetryRequest) changes nothing reported */
    struct sc_wire w = sc_wire_init(p, n);
    uint16_t legacy = sc_wire_u16(&w);
    sc_wire_skip(&w, 32);
    sc_wire_skip(&w, sc_wire_u8(&w));
    uint16_t cs_len = sc_wire_u16(&w);
    if (!sc_wire_need(&w, cs_len) || cs_len % 2) {
        tls__event(t, "tls_handshake_malformed", SC_DIR_C2S, m, "ClientHello cipher list cut");
        return;
    }
    static const size_t cap = TLS_JA3_VALUES;
    uint16_t *vals = calloc(4 * cap, sizeof(*vals));
    if (!vals)
        return;
    uint16_t *ciphers = vals, *exts = vals + cap, *groups = vals + 2 * cap,
             *formats = vals + 3 * cap;
    size_t nc = 0, ne = 0, ng = 0, nf = 0;
    for (size_t i = 0; i < cs_len / 2u; i++) {
        uint16_t c = sc_wire_u16(&w);
        if (nc < cap)
            ciphers[nc++] = c;
    }
    sc_wire_skip(&w, sc_wire_u8(&w)); /* compression methods */
    char sni[TLS_NAME_MAX] = "";
    struct sc_buf alpn;
    sc_buf_init(&alpn, TLS_NAME_MAX - 1);
    uint16_t versions[TLS_VERSIONS_MAX];
    uint8_t nv = 0;
    if (sc_wire_left(&w) >= 2) {
        uint16_t ext_len = sc_wire_u16(&w);
        struct sc_wire e = sc_wire_init(w.pos, sc_wire_need(&w, ext_len) ? ext_len : 0);
        sc_wire_skip(&w, ext_len);
        while (sc_wire_ok(&e) && sc_wire_left(&e) >= 4) {
            uint16_t type = sc_wire_u16(&e), len = sc_wire_u16(&e);
            if (!sc_wire_need(&e, len))
                break;
            struct sc_wire x = sc_wire_init(e.pos, len);
            sc_wire_skip(&e, len);
            if (ne < cap)
                exts[ne++] = type;
            switch (type) {
            case TLS_EXT_SERVER_NAME: {
                uint16_t ll = sc_wire_u16(&x);
                struct sc_wire l = sc_wire_init(x.pos, sc_wire_need(&x, ll) ? ll : 0);
                while (sc_wire_left(&l) >= 3 && !sni[0]) {
                    uint8_t nt = sc_wire_u8(&l);
                    uint16_t hl = sc_wire_u16(&l);
                    if (!sc_wire_need(&l, hl))
                        break;
                    if (nt == 0)
                        tls__text(sni, sizeof(sni), l.pos, hl);
                    sc_wire_skip(&l, hl);
                }
                break;
            }
            case TLS_EXT_ALPN: {
                uint16_t ll = sc_wire_u16(&x);
                struct sc_wire l = sc_wire_init(x.pos, sc_wire_need(&x, ll) ? ll : 0);
                while (sc_wire_left(&l) >= 1) {
                    uint8_t pl = sc_wire_u8(&l);
                    if (!sc_wire_need(&l, pl))
                        break;
                    if (alpn.len)
                        sc_buf_putc(&alpn, ',');
                    sc_escape(&alpn, l.pos, pl);
                    sc_wire_skip(&l, pl);
                }
                break;
            }
            case TLS_EXT_SUPPORTED_GROUPS: {
                uint16_t gl = sc_wire_u16(&x);
                for (size_t i = 0; i + 1 < gl && sc_wire_left(&x) >= 2; i += 2) {
                    uint16_t g = sc_wire_u16(&x);
                    if (ng < cap)
                        groups[ng++] = g;
                }
                break;
            }
            case TLS_EXT_EC_POINT_FORMATS: {
                uint8_t fl = sc_wire_u8(&x);
                for (size_t i = 0; i < fl && sc_wire_left(&x) >= 1; i++) {
                    uint8_t f = sc_wire_u8(&x);
                    if (nf < cap)
                        formats[nf++] = f;
                }
                break;
            }
            case TLS_EXT_SUPPORTED_VERSIONS: {
                uint8_t vl = sc_wire_u8(&x);
                for (size_t i = 0; i + 1 < vl && sc_wire_left(&x) >= 2; i += 2) {
                    uint16_t v = sc_wire_u16(&x);
                    if (!tls__grease(v) && nv < TLS_VERSIONS_MAX)
                        versions[nv++] = v;
                }
                break;
            }
            default:
                break;
            }
        }
    }
    if (!sc_wire_ok(&w))
        tls__event(t, "tls_handshake_malformed", SC_DIR_C2S, m, "ClientHello cut short");
    in->client_hello = true;
    in->client_hello_meta = *m;
    in->client_version = legacy;
    memcpy(in->offered_versions, versions, nv * sizeof(versions[0]));
    in->n_offered_versions = nv;
    in->n_ciphers = (uint16_t)(cs_len / 2u);
    sc_strlcpy(in->sni, sizeof(in->sni), sni);
    sc_strlcpy(in->alpn, sizeof(in->alpn), sc_buf_str(&alpn));
    sc_buf_free(&alpn);
    /* JA3: version,ciphers,extensions,groups,point formats (decimal). */
    struct sc_buf j;
    sc_buf_init(&j, sizeof(in->ja3) - 1);
    sc_buf_printf(&j, "%u,", legacy);
    tls__ja3_list(&j, ciphers, nc);
    sc_buf_putc(&j, ',');
    tls__ja3_list(&j, exts, ne);
    sc_buf_putc(&j, ',');
    tls__ja3_list(&j, groups, ng);
    sc_buf_putc(&j, ',');
    tls__ja3_list(&j, formats, nf);
    sc_strlcpy(in->ja3, sizeof(in->ja3), sc_buf_str(&j));
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    const EVP_MD *md5 = t->cache && t->cache->md5 ? t->cache->md5 : EVP_md5();
    if (!j.truncated && EVP_Digest(j.data, j.len, md, &mdlen, md5, NULL) == 1)
        tls__hex(in->ja3_md5, md, mdlen);
    sc_buf_free(&j);
    free(vals);
}

/* RFC 8446 4.1.3: a ServerHello with this random is a HelloRetryRequest. */
static const uint8_t tls__hrr_random[32] = {
    0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8, 0x91,
    0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c};

static void tls__server_hello(struct tls_conn *t, const uint8_t *p, size_t n,
                              const struct sc_meta *m)
{
    struct tls_info *in = &t->info;
    struct sc_wire w = sc_wire_init(p, n);
    uint16_t legacy = sc_wire_u16(&w);
    bool hrr = sc_wire_left(&w) >= 32 && memcmp(w.pos, tls__hrr_random, 32) == 0;
    sc_wire_skip(&w, 32);
    sc_wire_skip(&w, sc_wire_u8(&w));
    uint16_t cipher = sc_wire_u16(&w);
    sc_wire_skip(&w, 1); /* compression */
    uint16_t version = legacy;
    if (sc_wire_left(&w) >= 2) {
        uint16_t ext_len = sc_wire_u16(&w);
        struct sc_wire e = sc_wire_init(w.pos, sc_wire_need(&w, ext_len) ? ext_len : 0);
        while (sc_wire_left(&e) >= 4) {
            uint16_t type = sc_wire_u16(&e), len = sc_wire_u16(&e);
            if (!sc_wire_need(&e, len))
                break;
            if (type == TLS_EXT_SUPPORTED_VERSIONS && len == 2)
                version = sc_load_be16(e.pos);
            sc_wire_skip(&e, len);
        }
    }
    if (!sc_wire_ok(&w)) {
        tls__event(t, "tls_handshake_malformed", SC_DIR_S2C, m, "ServerHello cut short");
        return;
    }
    if (hrr) {
        in->hello_retry = true;
        return;
    }
    if (in->server_hello)
        return;
    in->server_hello = true;
    in->server_hello_meta = *m;
    in->version = version;
    in->cipher = cipher;
    if (version == 0x0304) {
        /* Everything after the ServerHello is encrypted (RFC 8446 2). */
        in->cert_hidden = true;
        t->d[SC_DIR_S2C].encrypted = true;
    }
}

static void tls__asn1_time(char *out, size_t outlen, const ASN1_TIME *a)
{
    struct tm tm;
    if (!a || ASN1_TIME_to_tm(a, &tm) != 1) {
        snprintf(out, outlen, "?");
        return;
    }
    strftime(out, outlen, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void tls__name(char *out, size_t outlen, const X509_NAME *nm)
{
    out[0] = 0;
    BIO *b = BIO_new(BIO_s_mem());
    if (!b)
        return;
    if (X509_NAME_print_ex(b, nm, 0, XN_FLAG_RFC2253) >= 0) {
        char *data = NULL;
        long len = BIO_get_mem_data(b, &data);
        if (data && len > 0)
            tls__text(out, outlen, (const uint8_t *)data, (size_t)len);
    }
    BIO_free(b);
}

static void tls__cert(struct tls_cert_cache *cache, struct tls_cert *c, const uint8_t *der,
                      size_t n)
{
    memset(c, 0, sizeof(*c));
    c->der_len = (uint32_t)n;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    const EVP_MD *sha = cache && cache->sha256 ? cache->sha256 : EVP_sha256();
    if (EVP_Digest(der, n, md, &mdlen, sha, NULL) != 1 || mdlen != 32)
        cache = NULL; /* no key: parse without the cache */
    else
        tls__hex(c->sha256, md, mdlen);
    struct tls__cache_slot *slot = NULL;
    if (cache) {
        /* The digest is uniform: its first bytes pick the set. */
        size_t sets = TLS_CERT_CACHE_SLOTS / TLS__CACHE_WAYS;
        struct tls__cache_slot *set =
            &cache->slot[(((size_t)md[0] << 8 | md[1]) % sets) * TLS__CACHE_WAYS];
        cache->clock++;
        for (int w = 0; w < TLS__CACHE_WAYS; w++) {
            struct tls__cache_slot *e = &set[w];
            if (e->used && memcmp(e->md, md, 32) == 0 && e->cert.der_len == n) {
                e->used = cache->clock;
                *c = e->cert;
                cache->hits++;
                return;
            }
            if (!slot || e->used < slot->used)
                slot = e; /* the empty or least recently used slot takes it */
        }
        cache->parsed++;
    }
    const unsigned char *q = der;
    X509 *x = d2i_X509(NULL, &q, (long)n);
    if (x) {
        c->parsed = true;
        tls__name(c->subject, sizeof(c->subject), X509_get_subject_name(x));
        tls__name(c->issuer, sizeof(c->issuer), X509_get_issuer_name(x));
        tls__asn1_time(c->not_before, sizeof(c->not_before), X509_get0_notBefore(x));
        tls__asn1_time(c->not_after, sizeof(c->not_after), X509_get0_notAfter(x));
        c->self_signed = X509_self_signed(x, 1) == 1;
        X509_free(x);
    }
    if (slot) {
        slot->used = cache->clock;
        memcpy(slot->md, md, 32);
        slot->cert = *c;
    }
}

static void tls__certificate(struct tls_conn *t, const uint8_t *p, size_t n,
                             const struct sc_meta *m)
{
    struct tls_info *in = &t->info;
    if (in->chain_total)
        return; /* the first chain is the one reported */
    struct sc_wire w = sc_wire_init(p, n);
    uint32_t list = (uint32_t)sc_wire_u8(&w) << 16;
    list |= sc_wire_u16(&w);
    struct sc_wire l = sc_wire_init(w.pos, sc_wire_need(&w, list) ? list : 0);
    if (!sc_wire_ok(&w)) {
        tls__event(t, "tls_handshake_malformed", SC_DIR_S2C, m, "Certificate list cut short");
        return;
    }
    in->cert_meta = *m;
    while (sc_wire_left(&l) >= 3) {
        uint32_t cl = (uint32_t)sc_wire_u8(&l) << 16;
        cl |= sc_wire_u16(&l);
        if (!sc_wire_need(&l, cl)) {
            tls__event(t, "tls_handshake_malformed", SC_DIR_S2C, m, "certificate cut short");
            break;
        }
        if (in->n_chain < TLS_CHAIN_MAX) {
            struct tls_cert *c = &in->chain[in->n_chain++];
            tls__cert(t->cache, c, l.pos, cl);
            if (!c->parsed)
                tls__event(t, "tls_certificate_unparsable", SC_DIR_S2C, m,
                           "certificate %u (%u bytes) is not DER X.509", in->chain_total + 1, cl);
        }
        in->chain_total++;
        sc_wire_skip(&l, cl);
    }
}

/* A complete cleartext handshake message of direction dir. */
static void tls__message(struct tls_conn *t, enum sc_dir dir, uint8_t type, const uint8_t *p,
                         size_t n, const struct sc_meta *m)
{
    if (type == TLS_HS_CLIENT_HELLO && dir == SC_DIR_C2S)
        tls__client_hello(t, p, n, m);
    else if (type == TLS_HS_SERVER_HELLO && dir == SC_DIR_S2C)
        tls__server_hello(t, p, n, m);
    else if (type == TLS_HS_CERTIFICATE && dir == SC_DIR_S2C && t->info.version != 0x0304)
        tls__certificate(t, p, n, m);
}

/* Handshake record bytes: messages reassembled across records. */
static void tls__handshake_bytes(struct tls_conn *t, enum sc_dir dir, const uint8_t *p, size_t n,
                                 const struct sc_meta *m)
{
    struct tls__dir *d = &t->d[dir];
    size_t i = 0;
    while (i < n && !d->encrypted) {
        if (d->hs_hdr_len < 4) {
            d->hs_hdr[d->hs_hdr_len++] = p[i++];
            if (d->hs_hdr_len == 4) {
                d->hs_len =
                    (uint32_t)d->hs_hdr[1] << 16 | (uint32_t)d->hs_hdr[2] << 8 | d->hs_hdr[3];
                d->hs_got = 0;
                d->hs_skip = d->hs_len > TLS_MESSAGE_MAX;
                sc_buf_reset(&d->hs);
                if (d->hs_skip)
                    tls__event(t, "tls_message_too_long", dir, m,
                               "handshake message type %u of %u bytes not read (limit %u)",
                               d->hs_hdr[0], d->hs_len, TLS_MESSAGE_MAX);
            }
            if (d->hs_hdr_len < 4 || d->hs_len > 0)
                continue;
        }
        size_t k = n - i < d->hs_len - d->hs_got ? n - i : d->hs_len - d->hs_got;
        if (!d->hs_skip)
            sc_buf_append(&d->hs, p + i, k);
        d->hs_got += (uint32_t)k;
        i += k;
        if (d->hs_got == d->hs_len) {
            if (!d->hs_skip)
                tls__message(t, dir, d->hs_hdr[0], d->hs.data ? d->hs.data : p, d->hs.len, m);
            d->hs_hdr_len = 0;
        }
    }
}

static void tls__alert_bytes(struct tls_conn *t, enum sc_dir dir, const uint8_t *p, size_t n,
                             const struct sc_meta *m)
{
    struct tls__dir *d = &t->d[dir];
    struct tls_info *in = &t->info;
    for (size_t i = 0; i < n; i++) {
        d->alert[d->alert_len++] = p[i];
        if (d->alert_len < 2)
            continue;
        d->alert_len = 0;
        const char *name = tls_alert_name(d->alert[1]);
        tls__event(t, "tls_alert", dir, m, "%s alert %s (%u) from the %s",
                   d->alert[0] == 2 ? "fatal" : "warning", name ? name : "?", d->alert[1],
                   dir == SC_DIR_C2S ? "client" : "server");
        if (!in->alert) {
            in->alert = true;
            in->alert_dir = dir;
            in->alert_level = d->alert[0];
            in->alert_desc = d->alert[1];
            in->alert_meta = *m;
        }
    }
}

/* The body of a record, as it arrives. */
static void tls__body(struct tls_conn *t, enum sc_dir dir, const uint8_t *p, size_t n,
                      const struct sc_meta *m)
{
    struct tls__dir *d = &t->d[dir];
    switch (d->type) {
    case TLS_CT_HANDSHAKE:
        if (!d->encrypted)
            tls__handshake_bytes(t, dir, p, n, m);
        break;
    case TLS_CT_ALERT:
        if (!d->encrypted)
            tls__alert_bytes(t, dir, p, n, m);
        break;
    default:
        break;
    }
}

/* A record header of direction dir is complete. */
static bool tls__header(struct tls_conn *t, enum sc_dir dir, const struct sc_meta *m)
{
    struct tls__dir *d = &t->d[dir];
    struct tls_info *in = &t->info;
    uint8_t type = d->hdr[0];
    uint16_t len = sc_load_be16(d->hdr + 3);
    if (!tls_plausible_start(type) || d->hdr[1] != 3 || len > TLS_RECORD_MAX) {
        in->desync[dir] = true;
        tls__event(t, "tls_malformed", dir, m,
                   "record header %02x %02x %02x %02x %02x is not TLS: the rest is only counted",
                   d->hdr[0], d->hdr[1], d->hdr[2], d->hdr[3], d->hdr[4]);
        return false;
    }
    if (d->hs_hdr_len > 0 && type != TLS_CT_HANDSHAKE && !d->encrypted) {
        tls__event(t, "tls_handshake_malformed", dir, m,
                   "a handshake message was interrupted by a record of type %u", type);
        d->hs_hdr_len = 0;
    }
    in->records[dir]++;
    d->type = type;
    d->remaining = len;
    switch (type) {
    case TLS_CT_CHANGE_CIPHER_SPEC:
        /* TLS 1.2: what follows is encrypted.  TLS 1.3 sends it for
         * compatibility only; its encryption follows the ServerHello. */
        if (in->version != 0x0304)
            d->encrypted = true;
        break;
    case TLS_CT_APPLICATION_DATA:
        if (in->app_data[dir]++ == 0)
            in->first_app_data[dir] = *m;
        break;
    case TLS_CT_ALERT:
        in->alerts[dir]++;
        break;
    default:
        break;
    }
    return true;
}

void tls_conn_feed(struct tls_conn *t, enum sc_dir dir, const uint8_t *p, size_t n,
                   const struct sc_meta *m)
{
    if (dir > SC_DIR_S2C)
        return;
    struct tls__dir *d = &t->d[dir];
    struct tls_info *in = &t->info;
    in->bytes[dir] += n;
    size_t i = 0;
    while (i < n && !in->desync[dir]) {
        if (d->remaining > 0) {
            size_t k = n - i < d->remaining ? n - i : d->remaining;
            tls__body(t, dir, p + i, k, m);
            d->remaining -= (uint32_t)k;
            i += k;
            continue;
        }
        d->hdr[d->hdr_len++] = p[i++];
        if (d->hdr_len < 5)
            continue;
        d->hdr_len = 0;
        if (!tls__header(t, dir, m))
            break;
    }
}

void tls_conn_gap(struct tls_conn *t, enum sc_dir dir, uint64_t len)
{
    if (dir > SC_DIR_S2C || len == 0)
        return;
    struct tls__dir *d = &t->d[dir];
    t->info.bytes[dir] += len;
    if (d->remaining >= len && d->type != TLS_CT_HANDSHAKE && d->type != TLS_CT_ALERT) {
        d->remaining -= (uint32_t)len; /* inside an encrypted record: still in step */
        return;
    }
    t->info.desync[dir] = true;
}

enum tls_outcome tls_conn_outcome(const struct tls_conn *t)
{
    const struct tls_info *in = &t->info;
    if (in->records[0] == 0 && in->records[1] == 0)
        return TLS_OUT_NONE;
    /* TLS 1.3 sends its encrypted handshake as application data records: the
     * client's Finished and the server's flight come first. */
    uint32_t need = in->version == 0x0304 ? 2 : 1;
    if (in->server_hello && in->app_data[0] >= need && in->app_data[1] >= need)
        return TLS_OUT_ESTABLISHED;
    if (in->alert && in->alert_level == 2)
        return TLS_OUT_ALERT;
    if (!in->client_hello && !in->server_hello) {
        /* Both sides past the hellos without us seeing them (a gap): judge by
         * the records alone. */
        if (in->app_data[0] && in->app_data[1] && !in->desync[0] && !in->desync[1])
            return TLS_OUT_ESTABLISHED;
        return in->records[0] ? TLS_OUT_INCOMPLETE : TLS_OUT_NO_CLIENT_HELLO;
    }
    if (!in->client_hello)
        return TLS_OUT_NO_CLIENT_HELLO;
    if (!in->server_hello)
        return TLS_OUT_NO_SERVER_HELLO;
    return TLS_OUT_INCOMPLETE;
}
