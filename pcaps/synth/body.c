/* body.c - message bodies: RFC 5322 headers, RFC 2045 base64 parts, dot-stuffing. */
#include "pcaps/synth/body.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

static const char *const words[] = {
    "the",     "quarterly", "report",  "meeting",  "please", "review",   "attached", "budget",
    "network", "firewall",  "mail",    "server",   "update", "schedule", "project",  "team",
    "thanks",  "regards",   "invoice", "delivery", "status", "customer", "order",    "ticket",
    "change",  "window",    "friday",  "monday",   "notes",  "draft",    "final",    "summary",
};
#define NWORDS (sizeof(words) / sizeof(words[0]))

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* One text line of 60..76 characters of words (never starting with "."). */
static void text_line(struct sc_buf *out, struct syn_rng *r, size_t want)
{
    size_t n = 0;
    while (n < want) {
        const char *w = words[syn_rng_below(r, NWORDS)];
        size_t wl = strlen(w);
        if (n && n + 1 + wl > want + 6)
            break;
        if (n) {
            sc_buf_putc(out, ' ');
            n++;
        }
        sc_buf_append(out, w, wl);
        n += wl;
    }
    sc_buf_puts(out, "\r\n");
}

static void long_line(struct sc_buf *out, struct syn_rng *r, const char *prefix, size_t len)
{
    size_t n = strlen(prefix);
    sc_buf_puts(out, prefix);
    while (n < len) {
        sc_buf_putc(out, (uint8_t)('a' + syn_rng_below(r, 26)));
        n++;
    }
    sc_buf_puts(out, "\r\n");
}

void syn_body(struct sc_buf *out, const struct syn_body_opts *o, struct syn_rng *r)
{
    size_t start = out->len;
    char date[64];
    time_t t = (time_t)o->date;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
    uint64_t id = syn_rng_next(r);
    sc_buf_printf(out, "From: <%s>\r\nTo: <%s>\r\n", o->from ? o->from : "sender@example.org",
                  o->to ? o->to : "rcpt@example.com");
    if (o->subject)
        sc_buf_printf(out, "Subject: %s\r\n", o->subject);
    else
        sc_buf_printf(out, "Subject: %s %s %s\r\n", words[syn_rng_below(r, NWORDS)],
                      words[syn_rng_below(r, NWORDS)], words[syn_rng_below(r, NWORDS)]);
    sc_buf_printf(out, "Date: %s\r\nMessage-ID: <%016llx@synth.example>\r\nMIME-Version: 1.0\r\n",
                  date, (unsigned long long)id);
    if (o->long_header)
        long_line(out, r, "X-Long: ", o->long_header);
    bool mime = o->filename_len > 0 || o->attachment > 0;
    const char *boundary = "=_synth_boundary_0";
    if (mime) {
        sc_buf_printf(out, "Content-Type: multipart/mixed; boundary=\"%s\"\r\n\r\n", boundary);
        sc_buf_printf(out, "--%s\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n", boundary);
    } else {
        sc_buf_puts(out, "Content-Type: text/plain; charset=us-ascii\r\n\r\n");
    }
    if (o->long_line)
        long_line(out, r, "", o->long_line);
    /* Leave room for the attachment, if any. */
    size_t att = o->attachment ? o->attachment : (o->filename_len ? 256 : 0);
    size_t att_b64 = (att + 2) / 3 * 4 + (att + 56) / 57 * 2 + 200;
    size_t text_target = o->size > att_b64 ? o->size - att_b64 : 0;
    do {
        text_line(out, r, 60 + syn_rng_below(r, 17));
    } while (out->len - start < text_target);
    if (mime) {
        char name[300];
        size_t fl = o->filename_len ? o->filename_len : 12;
        if (fl > sizeof(name) - 1)
            fl = sizeof(name) - 1;
        for (size_t i = 0; i < fl; i++)
            name[i] = (char)('a' + syn_rng_below(r, 26));
        if (fl > 4)
            memcpy(name + fl - 4, ".pdf", 4);
        name[fl] = 0;
        sc_buf_printf(out,
                      "\r\n--%s\r\nContent-Type: application/pdf\r\n"
                      "Content-Disposition: attachment; filename=\"%s\"\r\n"
                      "Content-Transfer-Encoding: base64\r\n\r\n",
                      boundary, name);
        /* 57 input bytes -> one 76-character base64 line (RFC 2045 6.8). */
        for (size_t done = 0; done < att; done += 57) {
            size_t chunk = att - done < 57 ? att - done : 57;
            size_t chars = (chunk + 2) / 3 * 4;
            for (size_t i = 0; i < chars; i++) {
                bool pad = i >= (chunk * 4 + 2) / 3;
                sc_buf_putc(out, pad ? '=' : (uint8_t)b64[syn_rng_below(r, 64)]);
            }
            sc_buf_puts(out, "\r\n");
        }
        sc_buf_printf(out, "--%s--\r\n", boundary);
    }
}
