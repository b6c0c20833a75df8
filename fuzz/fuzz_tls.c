/* fuzz_tls.c - libFuzzer target for the TLS handshake reader
 * (dissect/tls.h), both directions interleaved.
 *
 * Input: chunks h, len, then for a feed `len` bytes:
 *   h bit 0     direction (0 client to server, 1 server to client)
 *   h bits 1-3  operation: 0-6 feed the bytes, 7 a gap of `len` bytes
 * The layout is fuzz_smtp's without its mode byte, so a STARTTLS dialogue's
 * TLS part carries over.
 *
 * Checks that every string of the result is terminated within its array, the
 * counts within their limits, and the outcome and names within their tables.
 */
#include <string.h>

#include "dissect/tls.h"
#include "fuzz/fuzz.h"

static void fz_check_cert(const struct tls_cert *c)
{
    FZ_CHECK(memchr(c->subject, 0, sizeof(c->subject)) != NULL);
    FZ_CHECK(memchr(c->issuer, 0, sizeof(c->issuer)) != NULL);
    FZ_CHECK(memchr(c->not_before, 0, sizeof(c->not_before)) != NULL);
    FZ_CHECK(memchr(c->not_after, 0, sizeof(c->not_after)) != NULL);
    FZ_CHECK(memchr(c->sha256, 0, sizeof(c->sha256)) != NULL);
}

static void fz_check_info(const struct tls_info *ti, enum tls_outcome out)
{
    FZ_CHECK((unsigned)out < TLS_OUT__COUNT);
    FZ_CHECK(tls_outcome_name(out) != NULL);
    FZ_CHECK(memchr(ti->sni, 0, sizeof(ti->sni)) != NULL);
    FZ_CHECK(memchr(ti->alpn, 0, sizeof(ti->alpn)) != NULL);
    FZ_CHECK(memchr(ti->ja3, 0, sizeof(ti->ja3)) != NULL);
    FZ_CHECK(memchr(ti->ja3_md5, 0, sizeof(ti->ja3_md5)) != NULL);
    FZ_CHECK(ti->n_offered_versions <= TLS_VERSIONS_MAX);
    FZ_CHECK(ti->n_chain <= TLS_CHAIN_MAX);
    FZ_CHECK(ti->n_chain <= ti->chain_total);
    for (uint8_t i = 0; i < ti->n_chain; i++)
        fz_check_cert(&ti->chain[i]);
    char v[16];
    tls_version_str(v, sizeof(v), ti->version);
    FZ_CHECK(memchr(v, 0, sizeof(v)) != NULL);
    tls_version_str(v, sizeof(v), ti->client_version);
    (void)tls_cipher_name(ti->cipher);
    if (ti->alert)
        (void)tls_alert_name(ti->alert_desc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct sc_events ev;
    sc_events_init(&ev);
    /* Half the inputs (by their first byte) go through a certificate cache,
     * so both ways of describing a certificate are fuzzed. */
    struct tls_cert_cache *cache = size && (data[0] & 0x80) ? tls_cert_cache_new() : NULL;
    struct tls_conn *t = tls_conn_new(&ev, cache);
    if (!t) {
        tls_cert_cache_free(cache);
        sc_events_free(&ev);
        return 0;
    }
    struct fz_in in;
    fz_in_init(&in, data, size);
    uint64_t frame = 0;
    uint8_t h, len;
    while (fz_u8(&in, &h) && fz_u8(&in, &len)) {
        enum sc_dir dir = (h & 1) ? SC_DIR_S2C : SC_DIR_C2S;
        frame++;
        struct sc_meta m = {frame, (sc_time)frame * 1000000};
        if (((h >> 1) & 7) == 7) {
            tls_conn_gap(t, dir, len);
        } else {
            const uint8_t *p;
            size_t n = fz_take(&in, len, &p);
            tls_conn_feed(t, dir, p, n, &m);
        }
    }
    fz_check_info(tls_conn_info(t), tls_conn_outcome(t));
    FZ_CHECK(ev.n <= SC_EVENT_KINDS_MAX);
    tls_conn_free(t);
    tls_cert_cache_free(cache);
    sc_events_free(&ev);
    return 0;
}
