/* tlsrec.h - TLS record-layer walker (RFC 8446 5.1, RFC 5246 6.2).
 *
 * After STARTTLS the SMTP engine hands each direction's bytes to a walker
 * that follows record boundaries across any segmentation and counts records
 * by content type.  It reads only the 5-byte record headers; handshake
 * contents are the TLS module's business.  A header that cannot be TLS
 * (unknown content type, wrong major version, a length over the RFC 8446
 * maximum) stops the walk: the rest of the direction is only counted.
 */
#ifndef SC_DISSECT_TLSREC_H
#define SC_DISSECT_TLSREC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TLS_CT_CHANGE_CIPHER_SPEC 20
#define TLS_CT_ALERT 21
#define TLS_CT_HANDSHAKE 22
#define TLS_CT_APPLICATION_DATA 23
#define TLS_CT_HEARTBEAT 24

/* RFC 8446 5.2: a TLSCiphertext fragment is at most 2^14 + 256 bytes; TLS 1.2
 * allows 2^14 + 2048.  Anything longer is not TLS. */
#define TLS_RECORD_MAX (16384 + 2048)

struct tls_rec {
    uint8_t hdr[5];
    uint8_t hdr_len;
    bool desync;        /* a header was not TLS; counting only from there */
    uint32_t remaining; /* body bytes left in the current record */
    uint32_t records;
    uint32_t handshake;
    uint32_t app_data;
    uint32_t alerts;
    uint32_t ccs;
    uint16_t first_version; /* legacy_record_version of the first record */
};

/* True if b can start a TLS record (a content type 20..24). */
static inline bool tls_rec_plausible_start(uint8_t b)
{
    return b >= TLS_CT_CHANGE_CIPHER_SPEC && b <= TLS_CT_HEARTBEAT;
}

/* Walks n more bytes of one direction. */
void tls_rec_feed(struct tls_rec *t, const uint8_t *p, size_t n);

#endif
