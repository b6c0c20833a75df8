/* tlsgen.h - real TLS handshakes between an OpenSSL client and server in
 * memory (memory BIOs), for the synthesizer.
 *
 * Each side of a connection is an endpoint: the simulator feeds it the bytes
 * its peer sent and collects the bytes it wants to send, exactly as a socket
 * would.  TLS 1.2 (the server certificate is visible on the wire) and TLS
 * 1.3 are selectable.  The server certificate is loaded from PEM files or
 * generated (RSA 2048 or EC P-256, self-signed or signed by a generated CA)
 * with the subject CN and validity the caller gives.
 *
 * Determinism: every random byte OpenSSL uses for a context (key generation,
 * client/server random, key shares, signatures, padding) comes from a DRBG
 * seeded with tlsgen_opts.seed, and certificate validity comes from the
 * options, not the clock, so the same options produce byte-identical
 * handshakes on every run.  No global state: several contexts (for example a
 * TLS-intercepting middlebox with its own certificate) can exist at once.
 */
#ifndef SC_SYNTH_TLSGEN_H
#define SC_SYNTH_TLSGEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

struct tlsgen_opts {
    int version;           /* 12 or 13 */
    uint64_t seed;         /* DRBG seed: same seed, same bytes */
    const char *cert_pem;  /* server certificate (chain) file, or NULL to generate */
    const char *key_pem;   /* its private key file (with cert_pem) */
    const char *cn;        /* generated certificate's subject CN (and SAN dNSName) */
    const char *issuer_cn; /* NULL: self-signed; else signed by a generated CA with this CN */
    bool ec;               /* generated key: EC P-256 (true) or RSA 2048 (false) */
    int64_t not_before;    /* validity, seconds since the epoch */
    int64_t not_after;
    const char *sni;    /* client's server_name, or NULL for none */
    const char *cipher; /* OpenSSL cipher string (TLS 1.2) or NULL for defaults */
};

struct tlsgen_ctx;

/* Shared state of one connection's pair: the server's key and certificate
 * and the two SSL_CTXs.  NULL on error (message on stderr). */
struct tlsgen_ctx *tlsgen_ctx_new(const struct tlsgen_opts *o);
void tlsgen_ctx_free(struct tlsgen_ctx *c);

/* SHA-256 of the server certificate (DER), for tests comparing with what
 * smtpscope extracts. */
void tlsgen_cert_sha256(const struct tlsgen_ctx *c, uint8_t out[32]);

/* Writes the server certificate as PEM to path (0, or -1). */
int tlsgen_write_cert(const struct tlsgen_ctx *c, const char *path);

struct tlsgen_end;

/* One endpoint.  A client's first output (ClientHello) is ready after
 * tlsgen_start. */
struct tlsgen_end *tlsgen_client(struct tlsgen_ctx *c);
struct tlsgen_end *tlsgen_server(struct tlsgen_ctx *c);
void tlsgen_end_free(struct tlsgen_end *e);

/* Client: begins the handshake, appending the ClientHello to out. */
void tlsgen_start(struct tlsgen_end *e, struct sc_buf *out);

/* Feeds bytes received from the peer (any split, records may straddle
 * calls); appends what this side sends in response to out (handshake
 * messages, alerts), and appends decrypted application data to app. */
void tlsgen_input(struct tlsgen_end *e, const uint8_t *p, size_t n, struct sc_buf *out,
                  struct sc_buf *app);

/* True once the handshake is complete on this side. */
bool tlsgen_established(const struct tlsgen_end *e);

/* True if the handshake failed (a fatal alert was sent or received). */
bool tlsgen_failed(const struct tlsgen_end *e);

/* Encrypts application bytes (handshake must be complete); appends records to
 * out.  max_record (0: OpenSSL's default) caps plaintext per record, so a
 * caller can make randomly sized records. */
void tlsgen_write(struct tlsgen_end *e, const uint8_t *p, size_t n, size_t max_record,
                  struct sc_buf *out);

/* Sends close_notify, appending it to out. */
void tlsgen_close(struct tlsgen_end *e, struct sc_buf *out);

/* Negotiated protocol ("TLSv1.2"/"TLSv1.3") and cipher name, after the handshake. */
const char *tlsgen_version(const struct tlsgen_end *e);
const char *tlsgen_cipher(const struct tlsgen_end *e);

#endif
