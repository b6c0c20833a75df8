/* tls.h - TLS handshake reader for STARTTLS and implicit-TLS sessions
 * (RFC 5246 for TLS 1.2 and earlier, RFC 8446 for TLS 1.3).
 *
 * Fed each direction's bytes after the switch to TLS, across any
 * segmentation, it walks the record layer and reassembles the cleartext
 * handshake messages across records: the ClientHello (offered versions,
 * SNI, ALPN, cipher suites, a JA3 fingerprint), the ServerHello (the chosen
 * version and cipher), the Certificate chain of TLS 1.2 and earlier (every
 * certificate through OpenSSL's d2i_X509: subject, issuer, validity, SHA-256
 * fingerprint, self-signed), cleartext alerts, and where application data
 * starts.  TLS 1.3 encrypts the certificate: the reader says so and does not
 * guess.  Encrypted bytes are only counted.
 *
 * Malformed input never stops the session: a record header that cannot be
 * TLS ends the walk of that direction, a malformed handshake message is
 * skipped, and each becomes an event.
 */
#ifndef SC_DISSECT_TLS_H
#define SC_DISSECT_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/event.h"
#include "common/time.h"

#define TLS_CT_CHANGE_CIPHER_SPEC 20
#define TLS_CT_ALERT 21
#define TLS_CT_HANDSHAKE 22
#define TLS_CT_APPLICATION_DATA 23
#define TLS_CT_HEARTBEAT 24

/* RFC 8446 5.2: a TLSCiphertext fragment is at most 2^14 + 256 bytes; TLS 1.2
 * allows 2^14 + 2048.  A longer record is not TLS. */
#define TLS_RECORD_MAX (16384 + 2048)
/* Bytes of one handshake message reassembled.  Real ClientHellos are under
 * 2 KiB and server certificate chains under 16 KiB; 64 KiB leaves room for
 * long chains.  A longer message is skipped ("tls_message_too_long"). */
#define TLS_MESSAGE_MAX (64 * 1024)
/* Certificates of a chain described (the rest are counted). */
#define TLS_CHAIN_MAX 8
/* Bytes kept of a name, SNI, ALPN list or JA3 string (escaped to ASCII). */
#define TLS_NAME_MAX 256
#define TLS_JA3_MAX 2048
/* Versions kept from a ClientHello's supported_versions. */
#define TLS_VERSIONS_MAX 8

/* True if b can start a TLS record (a content type 20..24). */
static inline bool tls_plausible_start(uint8_t b)
{
    return b >= TLS_CT_CHANGE_CIPHER_SPEC && b <= TLS_CT_HEARTBEAT;
}

struct tls_cert {
    char subject[TLS_NAME_MAX]; /* RFC 2253, ASCII */
    char issuer[TLS_NAME_MAX];
    char not_before[24]; /* 2026-11-27T01:47:31Z */
    char not_after[24];
    char sha256[65]; /* of the DER, lower-case hex */
    bool self_signed;
    bool parsed; /* d2i_X509 accepted it; otherwise only sha256 is set */
    uint32_t der_len;
};

/* How the handshake ended, as far as the capture shows. */
enum tls_outcome {
    TLS_OUT_NONE = 0,        /* nothing was seen */
    TLS_OUT_ESTABLISHED,     /* handshakes both ways, then application data both ways */
    TLS_OUT_ALERT,           /* a cleartext alert ended it */
    TLS_OUT_NO_SERVER_HELLO, /* a ClientHello and no ServerHello */
    TLS_OUT_NO_CLIENT_HELLO, /* the client sent no ClientHello */
    TLS_OUT_INCOMPLETE,      /* hellos seen, no application data both ways */
    TLS_OUT__COUNT
};

/* "established", "alert", "no_server_hello", ... */
const char *tls_outcome_name(enum tls_outcome o);
/* "TLSv1.2", or "0x7f1c" for a value without a name. */
void tls_version_str(char *out, size_t outlen, uint16_t v);
/* IANA name of a cipher suite ("TLS_AES_128_GCM_SHA256"), or NULL. */
const char *tls_cipher_name(uint16_t suite);
/* Alert description name ("handshake_failure"), or NULL. */
const char *tls_alert_name(uint8_t desc);

struct tls_info {
    /* ClientHello (the first one) */
    bool client_hello;
    struct sc_meta client_hello_meta;
    uint16_t client_version;                     /* legacy_version */
    uint16_t offered_versions[TLS_VERSIONS_MAX]; /* supported_versions, GREASE left out */
    uint8_t n_offered_versions;
    uint16_t n_ciphers; /* cipher suites offered */
    char sni[TLS_NAME_MAX];
    char alpn[TLS_NAME_MAX]; /* protocols offered, comma-separated */
    char ja3[TLS_JA3_MAX];
    char ja3_md5[33];
    /* ServerHello (a HelloRetryRequest is counted, not kept) */
    bool server_hello;
    struct sc_meta server_hello_meta;
    uint16_t version; /* negotiated (supported_versions when present) */
    uint16_t cipher;
    bool hello_retry;
    /* Certificate */
    bool cert_hidden; /* TLS 1.3: encrypted */
    struct tls_cert chain[TLS_CHAIN_MAX];
    uint8_t n_chain;
    uint32_t chain_total; /* certificates in the message */
    struct sc_meta cert_meta;
    /* The first cleartext alert */
    bool alert;
    enum sc_dir alert_dir;
    uint8_t alert_level, alert_desc;
    struct sc_meta alert_meta;
    /* Records per direction */
    uint32_t records[2];
    uint32_t app_data[2];
    struct sc_meta first_app_data[2];
    uint32_t alerts[2];
    uint64_t bytes[2];
    bool desync[2]; /* a header was not TLS: counting only from there */
};

/* Certificates described once per run.  Parsing a certificate through
 * OpenSSL (d2i_X509, names, validity, the self-signature check) costs about
 * as much as reading a megabyte of capture, and a mail server presents the
 * same certificate in every session, so the description is remembered under
 * the SHA-256 of the DER.  256 slots, in sets of 4 picked by the digest,
 * cover the servers of a busy relay; a new certificate replaces the least
 * recently used one of its set, which is parsed again if it comes back.  The
 * cache also holds the SHA-256 and MD5 (JA3) digests, fetched from OpenSSL's
 * providers once instead of at every use.  One cache per analysis (not
 * thread-safe). */
#define TLS_CERT_CACHE_SLOTS 256

struct tls_cert_cache;

/* Creates an empty cache (about 170 KB).  NULL on OOM. */
struct tls_cert_cache *tls_cert_cache_new(void);
void tls_cert_cache_free(struct tls_cert_cache *c);

/* Parses and hashes that took place, and those the cache answered. */
void tls_cert_cache_stats(const struct tls_cert_cache *c, uint64_t *parsed, uint64_t *hits);

struct tls_conn;

/* Creates a reader; events go to ev (not owned); certificates are described
 * through `cache` (not owned, may be NULL: every certificate is parsed).
 * NULL on OOM. */
struct tls_conn *tls_conn_new(struct sc_events *ev, struct tls_cert_cache *cache);
void tls_conn_free(struct tls_conn *t);

/* Feeds n more bytes of direction dir. */
void tls_conn_feed(struct tls_conn *t, enum sc_dir dir, const uint8_t *p, size_t n,
                   const struct sc_meta *m);

/* Bytes of direction dir are missing: its walk stops (counting only). */
void tls_conn_gap(struct tls_conn *t, enum sc_dir dir, uint64_t len);

/* Results so far. */
const struct tls_info *tls_conn_info(const struct tls_conn *t);

/* The outcome from what was seen; `reset` says the connection ended with a
 * RST (a reset right after the ClientHello is its own failure). */
enum tls_outcome tls_conn_outcome(const struct tls_conn *t);

#endif
