/* body.h - realistic message bodies for synthesized SMTP sessions
 * (RFC 5322 headers, RFC 2045/2046 MIME, RFC 5321 4.5.2 dot-stuffing).
 *
 * A body has headers (From, To, Subject, Date, Message-ID, MIME-Version),
 * optionally one over-long header line, a text part with 60-76 character
 * lines, and optionally a base64 attachment (76-character lines) with a
 * filename of a chosen length.  Lines that start with "." are dot-stuffed, so
 * the result can be sent as DATA as it is; the terminating CRLF.CRLF is not
 * included.  Deterministic for a given generator state.
 */
#ifndef SC_SYNTH_BODY_H
#define SC_SYNTH_BODY_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "pcaps/synth/rng.h"

struct syn_body_opts {
    size_t size;      /* approximate total size in bytes (at least the headers) */
    const char *from; /* addresses for the headers */
    const char *to;
    const char *subject; /* NULL: a generated one */
    int64_t date;        /* Date header, seconds since the epoch */
    size_t long_header;  /* > 0: add an X-Long header line of this many bytes */
    size_t long_line;    /* > 0: add a body text line of this many bytes */
    size_t filename_len; /* > 0: add an attachment whose filename has this length */
    size_t attachment;   /* bytes of attachment data (before base64) */
};

/* Appends the body to out. */
void syn_body(struct sc_buf *out, const struct syn_body_opts *o, struct syn_rng *r);

#endif
