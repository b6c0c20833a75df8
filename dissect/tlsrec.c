/* tlsrec.c - TLS record-layer walker (RFC 8446 5.1). */
#include "dissect/tlsrec.h"

#include "common/wire.h"

void tls_rec_feed(struct tls_rec *t, const uint8_t *p, size_t n)
{
    size_t i = 0;
    while (i < n && !t->desync) {
        if (t->remaining > 0) {
            size_t k = n - i < t->remaining ? n - i : t->remaining;
            t->remaining -= (uint32_t)k;
            i += k;
            continue;
        }
        t->hdr[t->hdr_len++] = p[i++];
        if (t->hdr_len < 5)
            continue;
        t->hdr_len = 0;
        uint8_t type = t->hdr[0];
        uint16_t len = sc_load_be16(t->hdr + 3);
        if (!tls_rec_plausible_start(type) || t->hdr[1] != 3 || len > TLS_RECORD_MAX) {
            t->desync = true;
            break;
        }
        if (t->records++ == 0)
            t->first_version = sc_load_be16(t->hdr + 1);
        switch (type) {
        case TLS_CT_HANDSHAKE:
            t->handshake++;
            break;
        case TLS_CT_APPLICATION_DATA:
            t->app_data++;
            break;
        case TLS_CT_ALERT:
            t->alerts++;
            break;
        case TLS_CT_CHANGE_CIPHER_SPEC:
            t->ccs++;
            break;
        default:
            break;
        }
        t->remaining = len;
    }
}
