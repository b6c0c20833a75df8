/* report.c - text and JSON Lines writers for session and summary records. */
#include "report/report.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/buf.h"
#include "common/escape.h"
#include "common/str.h"

struct rep_writer {
    struct rep_options opt;
    FILE *out;
    struct sc_buf b; /* one record at a time */
    struct sc_buf tmp;
    bool failed;
    uint64_t records;
};

/* Joins words that rep__wrap() must keep on one line; printed as a space.
 * Never in escaped capture text, which is printable ASCII. */
#define REP_NBSP '\037'

#define REP_RESET "\033[0m"
#define REP_BOLD "\033[1m"
#define REP_RED "\033[1;31m"
#define REP_YELLOW "\033[33m"
#define REP_CYAN "\033[36m"
#define REP_DIM "\033[2m"

/* An ANSI sequence when colour is on, else nothing. */
static const char *rep__c(const struct rep_writer *w, const char *code)
{
    return w->opt.color ? code : "";
}

static const char *rep__sev_color(enum heur_sev s)
{
    return s == HEUR_HIGH     ? REP_RED
           : s == HEUR_MEDIUM ? REP_YELLOW
           : s == HEUR_LOW    ? REP_CYAN
                              : REP_DIM;
}

struct rep_writer *rep_new(FILE *out, const struct rep_options *o)
{
    struct rep_writer *w = calloc(1, sizeof(*w));
    if (!w)
        return NULL;
    w->opt = *o;
    w->out = out;
    sc_buf_init(&w->b, 0);
    sc_buf_init(&w->tmp, 0);
    return w;
}

int rep_free(struct rep_writer *w)
{
    if (!w)
        return 0;
    if (fflush(w->out) != 0 || ferror(w->out))
        w->failed = true;
    int rc = w->failed ? -1 : 0;
    sc_buf_free(&w->b);
    sc_buf_free(&w->tmp);
    free(w);
    return rc;
}

static void rep__emit(struct rep_writer *w)
{
    if (w->b.len && rep_write_records(w->out, w->opt.format, w->b.data, w->b.len) != 0)
        w->failed = true;
    sc_buf_reset(&w->b);
    w->records++;
}

/* Writes v in decimal, right-aligned, ending at end; returns where it starts.
 * Zero-padded to at least `width` digits.  (Records are built by hand rather
 * than through printf: a session record has dozens of numbers, and printf's
 * format parsing was a tenth of the whole analysis of a capture of short
 * sessions.) */
static char *rep__digits(char *end, uint64_t v, int width)
{
    do {
        *--end = (char)('0' + v % 10);
        v /= 10;
        width--;
    } while (v || width > 0);
    return end;
}

void rep_fmt_epoch(char *out, size_t outlen, sc_time t)
{
    uint64_t u = (uint64_t)t;
    if (t < 0)
        u = (uint64_t)0 - (uint64_t)t;
    char d[40];
    char *end = d + sizeof(d) - 1;
    *end = 0;
    char *p = rep__digits(end, (u % 1000000000u) / 1000u, 6);
    *--p = '.';
    p = rep__digits(p, u / 1000000000u, 1);
    if (t < 0)
        *--p = '-';
    sc_strlcpy(out, outlen, p);
}

static void rep__u64(struct sc_buf *b, uint64_t v)
{
    char d[24];
    char *p = rep__digits(d + sizeof(d), v, 1);
    sc_buf_append(b, p, (size_t)(d + sizeof(d) - p));
}

/* "2009-10-05 06:06:07.123456" in UTC. */
static void rep__fmt_utc(char *out, size_t outlen, sc_time t)
{
    time_t sec = (time_t)(t / SC_NS_PER_SEC);
    long usec = (long)((t % SC_NS_PER_SEC) / 1000);
    if (usec < 0) {
        usec += 1000000;
        sec -= 1;
    }
    struct tm tm;
    if (!gmtime_r(&sec, &tm)) {
        snprintf(out, outlen, "?");
        return;
    }
    char d[32];
    strftime(d, sizeof(d), "%Y-%m-%d %H:%M:%S", &tm);
    snprintf(out, outlen, "%s.%06ld", d, usec);
}

/* ---- JSON ---- */

/* Appends captured bytes as a JSON string: escaped to printable ASCII first. */
static void rep__jbytes(struct rep_writer *w, const uint8_t *p, size_t n)
{
    sc_buf_putc(&w->b, '"');
    if (sc_plain_len(p, n) == n) {
        sc_buf_append(&w->b, p, n); /* both escapes would leave it as it is */
    } else {
        sc_buf_reset(&w->tmp);
        sc_escape(&w->tmp, p, n);
        sc_json_escape(&w->b, sc_buf_str(&w->tmp), w->tmp.len);
    }
    sc_buf_putc(&w->b, '"');
}

static void rep__jstr(struct rep_writer *w, const char *s)
{
    sc_buf_putc(&w->b, '"');
    sc_json_escape(&w->b, s, strlen(s));
    sc_buf_putc(&w->b, '"');
}

/* ,"name": -- inlined, so that a literal name's length is a constant and
 * the key goes in as one copy when the buffer has room (a session record
 * has about fifty keys). */
__attribute__((always_inline)) static inline void rep__jfield(struct rep_writer *w,
                                                              const char *name)
{
    struct sc_buf *b = &w->b;
    size_t n = strlen(name);
    if (b->cap == 0 && n + 4 < b->alloc - b->len) {
        uint8_t *q = b->data + b->len;
        q[0] = ',';
        q[1] = '"';
        memcpy(q + 2, name, n);
        q[n + 2] = '"';
        q[n + 3] = ':';
        q[n + 4] = 0;
        b->len += n + 4;
        return;
    }
    sc_buf_append(b, ",\"", 2);
    sc_buf_append(b, name, n);
    sc_buf_append(b, "\":", 2);
}

/* ,"name":123 */
__attribute__((always_inline)) static inline void rep__jnum(struct rep_writer *w, const char *name,
                                                            uint64_t v)
{
    rep__jfield(w, name);
    rep__u64(&w->b, v);
}

/* ,"name":true */
__attribute__((always_inline)) static inline void rep__jbool(struct rep_writer *w, const char *name,
                                                             bool v)
{
    rep__jfield(w, name);
    sc_buf_puts(&w->b, v ? "true" : "false");
}

/* ,"name":"s" for one of our own names (nothing to escape) */
static void rep__jname(struct rep_writer *w, const char *name, const char *s)
{
    rep__jfield(w, name);
    sc_buf_putc(&w->b, '"');
    sc_buf_puts(&w->b, s);
    sc_buf_putc(&w->b, '"');
}

static void rep__jtext_or_null(struct rep_writer *w, const char *name, const struct smtp_text *v)
{
    rep__jfield(w, name);
    if (v->len)
        rep__jbytes(w, v->data, v->len);
    else
        sc_buf_puts(&w->b, "null");
}

static void rep__jtime(struct rep_writer *w, const char *name, sc_time t)
{
    char e[40];
    rep_fmt_epoch(e, sizeof(e), t);
    rep__jfield(w, name);
    sc_buf_puts(&w->b, e);
}

static const char *rep__kind_name(enum smtp_line_kind k)
{
    switch (k) {
    case SMTP_L_COMMAND:
        return "command";
    case SMTP_L_REPLY:
        return "reply";
    case SMTP_L_AUTH:
        return "auth";
    case SMTP_L_DATA:
        return "data";
    case SMTP_L_GAP:
        return "gap";
    case SMTP_L_TLS:
        return "tls";
    default:
        return "other";
    }
}

/* The verb as the transcript names it: canonical for known verbs, the first
 * word as sent (escaped, cut) for unknown ones. */
static void rep__jverb(struct rep_writer *w, const struct smtp_line *l)
{
    if (l->verb != SMTP_V_UNKNOWN) {
        rep__jstr(w, smtp_verb_name(l->verb));
        return;
    }
    size_t k = 0;
    while (k < l->text_len && k < 32 && l->text[k] != ' ')
        k++;
    rep__jbytes(w, l->text, k);
}

static void rep__json_finding(struct rep_writer *w, const struct heur_finding *f, const char *file)
{
    struct sc_buf *b = &w->b;
    sc_buf_printf(b, "{\"type\":\"finding\",\"schema\":%d", REP_SCHEMA);
    rep__jfield(w, "rule");
    rep__jstr(w, f->rule);
    sc_buf_printf(b, ",\"severity\":\"%s\",\"confidence\":%.2f,\"session\":%" PRIu64,
                  heur_sev_name(f->severity), f->confidence, f->session);
    if (file) {
        rep__jfield(w, "file");
        rep__jstr(w, file);
    }
    rep__jfield(w, "client");
    if (f->client[0])
        rep__jstr(w, f->client);
    else
        sc_buf_puts(b, "null");
    rep__jfield(w, "server");
    rep__jstr(w, f->server);
    if (f->frame) {
        sc_buf_printf(b, ",\"frame\":%" PRIu64, f->frame);
        rep__jtime(w, "ts", f->ts);
        sc_buf_printf(b, ",\"filter\":\"frame.number == %" PRIu64 "\"", f->frame);
    } else {
        sc_buf_puts(b, ",\"frame\":null,\"ts\":null,\"filter\":null");
    }
    sc_buf_printf(b, ",\"direction\":\"%s\"", sc_dir_name(f->dir));
    rep__jfield(w, "evidence");
    rep__jstr(w, f->evidence);
    rep__jfield(w, "explanation");
    rep__jstr(w, f->explanation);
    rep__jfield(w, "suspect");
    rep__jstr(w, f->suspect ? f->suspect : "unknown");
    sc_buf_puts(b, "}\n");
    rep__emit(w);
}

/* A string the TLS reader already escaped to ASCII, or null when empty. */
static void rep__jstr_or_null(struct rep_writer *w, const char *name, const char *v)
{
    rep__jfield(w, name);
    if (v && v[0])
        rep__jstr(w, v);
    else
        sc_buf_puts(&w->b, "null");
}

static void rep__json_cert(struct rep_writer *w, const struct tls_cert *c)
{
    struct sc_buf *b = &w->b;
    sc_buf_printf(b, "{\"sha256\":\"%s\",\"der_len\":%u,\"parsed\":%s", c->sha256, c->der_len,
                  c->parsed ? "true" : "false");
    if (c->parsed) {
        rep__jfield(w, "subject");
        rep__jstr(w, c->subject);
        rep__jfield(w, "issuer");
        rep__jstr(w, c->issuer);
        sc_buf_printf(b, ",\"not_before\":\"%s\",\"not_after\":\"%s\",\"self_signed\":%s",
                      c->not_before, c->not_after, c->self_signed ? "true" : "false");
    }
    sc_buf_putc(b, '}');
}

/* The session's "tls" object (DESIGN.md), null when no TLS was seen. */
static void rep__json_tls(struct rep_writer *w, const struct smtp_info *in)
{
    struct sc_buf *b = &w->b;
    const struct tls_info *t = in->tls;
    rep__jfield(w, "tls");
    if (!t) {
        sc_buf_puts(b, "null");
        return;
    }
    char v[16];
    sc_buf_printf(b, "{\"handshake\":\"%s\"", tls_outcome_name(in->tls_outcome));
    if (t->server_hello) {
        tls_version_str(v, sizeof(v), t->version);
        const char *cn = tls_cipher_name(t->cipher);
        sc_buf_printf(b, ",\"version\":\"%s\",\"cipher\":", v);
        if (cn)
            sc_buf_printf(b, "\"%s\"", cn);
        else
            sc_buf_printf(b, "\"0x%04x\"", t->cipher);
        sc_buf_printf(b, ",\"cipher_id\":%u", t->cipher);
    } else {
        sc_buf_puts(b, ",\"version\":null,\"cipher\":null,\"cipher_id\":null");
    }
    rep__jstr_or_null(w, "sni", t->sni);
    const struct tls_cert *leaf = t->n_chain ? &t->chain[0] : NULL;
    rep__jstr_or_null(w, "cert_sha256", leaf ? leaf->sha256 : NULL);
    rep__jstr_or_null(w, "cert_subject", leaf && leaf->parsed ? leaf->subject : NULL);
    rep__jstr_or_null(w, "cert_issuer", leaf && leaf->parsed ? leaf->issuer : NULL);
    sc_buf_printf(b, ",\"cert_hidden\":%s", t->cert_hidden ? "true" : "false");
    if (t->client_hello) {
        tls_version_str(v, sizeof(v), t->client_version);
        sc_buf_printf(b, ",\"client_hello\":{\"frame\":%" PRIu64 ",\"legacy_version\":\"%s\"",
                      t->client_hello_meta.frame, v);
        sc_buf_puts(b, ",\"versions\":[");
        for (uint8_t i = 0; i < t->n_offered_versions; i++) {
            tls_version_str(v, sizeof(v), t->offered_versions[i]);
            sc_buf_printf(b, "%s\"%s\"", i ? "," : "", v);
        }
        sc_buf_printf(b, "],\"ciphers\":%u", t->n_ciphers);
        rep__jstr_or_null(w, "alpn", t->alpn);
        rep__jstr_or_null(w, "ja3", t->ja3);
        rep__jstr_or_null(w, "ja3_md5", t->ja3_md5);
        sc_buf_putc(b, '}');
    } else {
        sc_buf_puts(b, ",\"client_hello\":null");
    }
    if (t->server_hello)
        sc_buf_printf(b, ",\"server_hello_frame\":%" PRIu64, t->server_hello_meta.frame);
    sc_buf_printf(b, ",\"hello_retry\":%s", t->hello_retry ? "true" : "false");
    sc_buf_puts(b, ",\"chain\":[");
    for (uint8_t i = 0; i < t->n_chain; i++) {
        if (i)
            sc_buf_putc(b, ',');
        rep__json_cert(w, &t->chain[i]);
    }
    sc_buf_printf(b, "],\"chain_length\":%u", t->chain_total);
    if (t->alert) {
        const char *an = tls_alert_name(t->alert_desc);
        sc_buf_printf(
            b, ",\"alert\":{\"dir\":\"%s\",\"frame\":%" PRIu64 ",\"level\":\"%s\",\"description\":",
            sc_dir_name(t->alert_dir), t->alert_meta.frame,
            t->alert_level == 2 ? "fatal" : "warning");
        if (an)
            sc_buf_printf(b, "\"%s\"", an);
        else
            sc_buf_printf(b, "\"%u\"", t->alert_desc);
        sc_buf_putc(b, '}');
    } else {
        sc_buf_puts(b, ",\"alert\":null");
    }
    sc_buf_puts(b, ",\"first_app_data\":{");
    for (int d = 0; d < 2; d++) {
        sc_buf_printf(b, "%s\"%s\":", d ? "," : "", sc_dir_name((enum sc_dir)d));
        if (t->app_data[d])
            sc_buf_printf(b, "%" PRIu64, t->first_app_data[d].frame);
        else
            sc_buf_puts(b, "null");
    }
    sc_buf_printf(b, "},\"records\":{\"c2s\":%u,\"s2c\":%u}}", t->records[0], t->records[1]);
}

static void rep__json_session(struct rep_writer *w, const struct rep_session *s)
{
    const struct smtp_info *in = s->smtp;
    struct sc_buf *b = &w->b;
    sc_buf_puts(b, "{\"type\":\"session\"");
    rep__jnum(w, "schema", REP_SCHEMA);
    rep__jnum(w, "id", s->id);
    rep__jfield(w, "file");
    rep__jstr(w, s->file);
    rep__jfield(w, "client");
    rep__jstr(w, s->client);
    rep__jfield(w, "server");
    rep__jstr(w, s->server);
    rep__jnum(w, "first_frame", s->first_frame);
    rep__jnum(w, "last_frame", s->last_frame);
    rep__jtime(w, "start", s->start);
    rep__jtime(w, "end", s->end);
    rep__jbool(w, "partial", s->partial);
    rep__jfield(w, "encap");
    rep__jstr(w, s->encap ? s->encap : "ip");
    rep__jfield(w, "proxy");
    if (in->proxy.len)
        rep__jstr(w, (const char *)in->proxy.data);
    else
        sc_buf_puts(b, "null");
    rep__jtext_or_null(w, "banner", &in->banner);
    rep__jtext_or_null(w, "helo", &in->helo);
    rep__jfield(w, "ehlo_keywords");
    sc_buf_putc(b, '[');
    for (size_t i = 0; i < in->n_ehlo_keywords; i++) {
        if (i)
            sc_buf_putc(b, ',');
        rep__jbytes(w, in->ehlo_keywords[i].data, in->ehlo_keywords[i].len);
    }
    sc_buf_putc(b, ']');
    sc_buf_puts(b, ",\"starttls\":{\"offered\":");
    sc_buf_puts(b, in->starttls_offered ? "true" : "false");
    rep__jbool(w, "attempted", in->starttls_attempted);
    rep__jname(w, "result", smtp_starttls_name(in->starttls));
    sc_buf_putc(b, '}');
    rep__jbool(w, "implicit_tls", in->implicit_tls);
    rep__json_tls(w, in);
    rep__jtext_or_null(w, "auth", &in->auth_mech);
    if (in->auth_mech.len)
        rep__jbool(w, "auth_success", in->auth_success);
    rep__jtext_or_null(w, "mail_from", &in->mail_from);
    rep__jnum(w, "rcpt_count", in->rcpt_count);
    rep__jnum(w, "rcpt_accepted", in->rcpt_accepted);
    rep__jnum(w, "messages", in->messages);
    rep__jnum(w, "messages_accepted", in->messages_accepted);
    rep__jnum(w, "commands", in->commands);
    rep__jnum(w, "replies", in->replies);
    rep__jnum(w, "bytes_c2s", in->bytes[SC_DIR_C2S]);
    rep__jnum(w, "bytes_s2c", in->bytes[SC_DIR_S2C]);
    rep__jfield(w, "close");
    rep__jstr(w, s->close);
    rep__jnum(w, "gaps", in->gaps);
    rep__jnum(w, "gap_bytes", in->gap_bytes);
    if (in->confidence == 1.0) /* most sessions: no printf */
        sc_buf_puts(b, ",\"confidence\":1.00");
    else
        sc_buf_printf(b, ",\"confidence\":%.2f", in->confidence);
    rep__jfield(w, "tcp");
    for (int d = 0; d < 2; d++) {
        const struct rep_tcp_side *t = &s->tcp[d];
        sc_buf_puts(b, d ? ",\"server\":{\"syn\":" : "{\"client\":{\"syn\":");
        sc_buf_puts(b, t->syn_seen ? "true" : "false");
        if (t->syn_seen) {
            if (t->mss_present)
                rep__jnum(w, "mss", t->mss);
            if (t->wscale_present)
                rep__jnum(w, "wscale", t->wscale);
            rep__jbool(w, "sack_perm", t->sack_perm);
            rep__jbool(w, "timestamps", t->timestamps);
        }
        rep__jnum(w, "ttl", t->ttl);
        rep__jnum(w, "retransmits", t->retransmits);
        rep__jnum(w, "overlaps_diff", t->overlaps_diff);
        sc_buf_putc(b, '}');
    }
    sc_buf_putc(b, '}');
    rep__jfield(w, "findings");
    sc_buf_putc(b, '[');
    for (size_t i = 0; i < s->n_findings; i++) {
        if (i)
            sc_buf_putc(b, ',');
        rep__jstr(w, s->findings[i].rule);
    }
    sc_buf_putc(b, ']');
    rep__jfield(w, "vantage");
    rep__jstr(w, s->vantage ? s->vantage : "unknown");
    rep__jfield(w, "events");
    sc_buf_putc(b, '[');
    for (size_t i = 0; i < in->events.n; i++) {
        const struct sc_event *e = &in->events.v[i];
        if (i)
            sc_buf_putc(b, ',');
        sc_buf_puts(b, "{\"kind\":\"");
        sc_buf_puts(b, e->kind);
        sc_buf_putc(b, '"');
        rep__jname(w, "dir", sc_dir_name(e->dir));
        rep__jnum(w, "frame", e->frame);
        rep__jnum(w, "count", e->count);
        if (e->detail) {
            rep__jfield(w, "detail");
            rep__jstr(w, e->detail);
        }
        sc_buf_putc(b, '}');
    }
    sc_buf_putc(b, ']');
    if (w->opt.transcript) {
        rep__jfield(w, "transcript");
        sc_buf_putc(b, '[');
        for (size_t i = 0; i < in->n_transcript; i++) {
            const struct smtp_line *l = &in->transcript[i];
            char ts[40];
            rep_fmt_epoch(ts, sizeof(ts), l->meta.ts);
            if (i)
                sc_buf_putc(b, ',');
            sc_buf_puts(b, "{\"dir\":\"");
            sc_buf_puts(b, sc_dir_name(l->dir));
            sc_buf_putc(b, '"');
            rep__jnum(w, "frame", l->meta.frame);
            rep__jfield(w, "ts");
            sc_buf_puts(b, ts);
            rep__jname(w, "kind", rep__kind_name(l->kind));
            if (l->kind == SMTP_L_COMMAND) {
                rep__jfield(w, "cmd");
                rep__jverb(w, l);
            } else if (l->kind == SMTP_L_REPLY) {
                rep__jnum(w, "code", l->code);
                rep__jbool(w, "last", l->last);
                char enh[SMTP_ENH_SIZE];
                smtp_line_enh(l, enh);
                if (enh[0])
                    rep__jname(w, "enhanced", enh);
            }
            rep__jfield(w, "line");
            rep__jbytes(w, l->text, l->text_len);
            if (l->len > l->text_len && (l->kind == SMTP_L_COMMAND || l->kind == SMTP_L_REPLY))
                rep__jnum(w, "len", l->len);
            if (l->incomplete)
                sc_buf_puts(b, ",\"incomplete\":true");
            sc_buf_putc(b, '}');
        }
        sc_buf_putc(b, ']');
        if (in->transcript_dropped)
            sc_buf_printf(b, ",\"transcript_dropped\":%" PRIu64, in->transcript_dropped);
    }
    sc_buf_puts(b, "}\n");
    rep__emit(w);
    for (size_t i = 0; i < s->n_findings; i++)
        rep__json_finding(w, &s->findings[i], s->file);
}

static void rep__json_summary(struct rep_writer *w, const struct rep_summary *s)
{
    struct sc_buf *b = &w->b;
    sc_buf_printf(b,
                  "{\"type\":\"summary\",\"schema\":%d,\"files\":%" PRIu64
                  ",\"files_failed\":%" PRIu64 ",\"packets\":%" PRIu64 ",\"bytes\":%" PRIu64
                  ",\"sessions\":%" PRIu64 ",\"tcp_flows\":%" PRIu64
                  ",\"empty_connections\":%" PRIu64 ",\"not_ip\":%" PRIu64 ",\"not_tcp\":%" PRIu64
                  ",\"ip_fragments\":%" PRIu64 ",\"malformed\":%" PRIu64
                  ",\"link_unsupported\":%" PRIu64,
                  REP_SCHEMA, s->files, s->files_failed, s->packets, s->bytes, s->sessions,
                  s->tcp_flows, s->empty_connections, s->not_ip, s->not_tcp, s->ip_fragments,
                  s->malformed, s->link_unsupported);
    sc_buf_puts(b, ",\"findings\":{");
    for (size_t i = 0; i < s->n_rules; i++) {
        if (i)
            sc_buf_putc(b, ',');
        rep__jstr(w, s->rules[i].rule);
        sc_buf_printf(b, ":%" PRIu64, s->rules[i].count);
    }
    sc_buf_puts(b, "},\"findings_by_severity\":{");
    for (int i = HEUR_HIGH; i >= 0; i--)
        sc_buf_printf(b, "\"%s\":%" PRIu64 "%s", heur_sev_name((enum heur_sev)i), s->by_severity[i],
                      i ? "," : "");
    sc_buf_printf(b,
                  "},\"sessions_flagged\":%" PRIu64 ",\"vantage\":{\"outside\":%" PRIu64
                  ",\"inside\":%" PRIu64 "}",
                  s->sessions_flagged, s->vantage_outside, s->vantage_inside);
    if (s->write_flagged) {
        sc_buf_puts(b, ",\"written\":{\"file\":");
        sc_buf_putc(b, '"');
        sc_json_escape(b, s->write_flagged, strlen(s->write_flagged));
        sc_buf_printf(b, "\",\"packets\":%" PRIu64 "}", s->packets_written);
    }
    sc_buf_printf(b,
                  ",\"ip_reassembled\":%" PRIu64 ",\"ip_incomplete\":%" PRIu64
                  ",\"ip_fragment_conflicts\":%" PRIu64,
                  s->ip_reassembled, s->ip_incomplete, s->ip_frag_conflicts);
    const struct rep_named *nl[2] = {s->decap, s->encap_unsupported};
    size_t nn[2] = {s->n_decap, s->n_encap_unsupported};
    static const char *const nk[2] = {"decapsulated", "encap_unsupported"};
    for (int k = 0; k < 2; k++) {
        sc_buf_printf(b, ",\"%s\":{", nk[k]);
        for (size_t i = 0; i < nn[k]; i++) {
            if (i)
                sc_buf_putc(b, ',');
            rep__jstr(w, nl[k][i].name);
            sc_buf_printf(b, ":%" PRIu64, nl[k][i].count);
        }
        sc_buf_putc(b, '}');
    }
    sc_buf_puts(b, ",\"unsupported_linktypes\":{");
    for (uint32_t i = 0; i < s->n_unsupported; i++)
        sc_buf_printf(b, "%s\"%u\":%" PRIu64, i ? "," : "", s->unsupported_linktypes[i],
                      s->unsupported_counts[i]);
    if (s->live)
        sc_buf_printf(b, "},\"drops\":%" PRIu64, s->drops);
    else
        sc_buf_puts(b, "},\"drops\":null");
    sc_buf_printf(b, ",\"evicted\":%" PRIu64 ",\"ts_backwards\":%" PRIu64 ",\"elapsed\":%.3f}\n",
                  s->evicted, s->ts_backwards, s->elapsed);
    rep__emit(w);
}

/* ---- text ---- */

static void rep__tbytes(struct rep_writer *w, const uint8_t *p, size_t n)
{
    sc_escape(&w->b, p, n);
}

static void rep__size(char *out, size_t outlen, uint64_t n)
{
    if (n < 10000)
        snprintf(out, outlen, "%" PRIu64 " B", n);
    else if (n < 10000ull * 1024)
        snprintf(out, outlen, "%.1f KiB", (double)n / 1024.0);
    else if (n < 10000ull * 1024 * 1024)
        snprintf(out, outlen, "%.1f MiB", (double)n / (1024.0 * 1024.0));
    else
        snprintf(out, outlen, "%.1f GiB", (double)n / (1024.0 * 1024.0 * 1024.0));
}

static const char *rep__plural(uint64_t n, const char *one, const char *many)
{
    return n == 1 ? one : many;
}

static void rep__wrap(struct sc_buf *b, const char *t, size_t indent);

static void rep__text_envelope(struct rep_writer *w, const struct smtp_info *in)
{
    struct sc_buf e;
    sc_buf_init(&e, 0);
    if (in->mail_from.len) {
        sc_buf_puts(&e, "from ");
        sc_escape(&e, in->mail_from.data, in->mail_from.len);
        sc_buf_puts(&e, ", ");
    }
    sc_buf_printf(&e,
                  "%" PRIu64 "\037%s\037(%" PRIu64 "\037accepted), %" PRIu64 "\037%s\037(%" PRIu64
                  "\037accepted)",
                  in->rcpt_count, rep__plural(in->rcpt_count, "rcpt", "rcpts"), in->rcpt_accepted,
                  in->messages, rep__plural(in->messages, "message", "messages"),
                  in->messages_accepted);
    rep__wrap(&w->b, sc_buf_str(&e), 12);
    sc_buf_free(&e);
}

/* Appends text wrapped at REP_TEXT_WIDTH columns, each line indented. */
#define REP_TEXT_WIDTH 78
static void rep__wrap(struct sc_buf *b, const char *t, size_t indent)
{
    size_t col = indent;
    bool first = true;
    while (*t) {
        while (*t == ' ')
            t++;
        size_t wl = strcspn(t, " ");
        if (wl == 0)
            break;
        if (!first && col + 1 + wl > REP_TEXT_WIDTH) {
            sc_buf_printf(b, "\n%*s", (int)indent, "");
            col = indent;
            first = true;
        }
        if (!first) {
            sc_buf_putc(b, ' ');
            col++;
        }
        for (size_t i = 0; i < wl; i++)
            sc_buf_putc(b, (uint8_t)(t[i] == REP_NBSP ? ' ' : t[i]));
        col += wl;
        t += wl;
        first = false;
    }
    sc_buf_putc(b, '\n');
}

static void rep__text_finding(struct rep_writer *w, const struct heur_finding *f, bool standalone)
{
    struct sc_buf *b = &w->b;
    const char *pad = standalone ? "" : "  ";
    sc_buf_printf(b, "%s%s%-8s%s %s%s%s %s%s%s  confidence %.2f\n", pad, rep__c(w, REP_BOLD),
                  standalone ? "finding" : "FINDING", rep__c(w, REP_RESET),
                  rep__c(w, rep__sev_color(f->severity)), heur_sev_name(f->severity),
                  rep__c(w, REP_RESET), rep__c(w, REP_BOLD), f->rule, rep__c(w, REP_RESET),
                  f->confidence);
    if (standalone)
        sc_buf_printf(b, "%*sserver %s, session %" PRIu64 "\n", 9, "", f->server, f->session);
    sc_buf_printf(b, "%s%*ssuspect %s", pad, 9, "", f->suspect ? f->suspect : "unknown");
    if (f->frame)
        sc_buf_printf(b, ", frame %" PRIu64 " %s  wireshark: frame.number == %" PRIu64, f->frame,
                      sc_dir_name(f->dir), f->frame);
    sc_buf_putc(b, '\n');
    if (f->evidence[0])
        sc_buf_printf(b, "%s%*sevidence: %s\n", pad, 9, "", f->evidence);
    sc_buf_printf(b, "%s%*s", pad, 9, "");
    rep__wrap(b, f->explanation, strlen(pad) + 9);
}

static void rep__text_tls(struct rep_writer *w, const struct smtp_info *in)
{
    struct sc_buf *b = &w->b;
    const struct tls_info *t = in->tls;
    char v[16];
    sc_buf_printf(b, "  tls       %s", tls_outcome_name(in->tls_outcome));
    if (t->server_hello) {
        tls_version_str(v, sizeof(v), t->version);
        const char *cn = tls_cipher_name(t->cipher);
        if (cn)
            sc_buf_printf(b, ", %s %s", v, cn);
        else
            sc_buf_printf(b, ", %s cipher 0x%04x", v, t->cipher);
    }
    if (t->sni[0])
        sc_buf_printf(b, ", SNI %s", t->sni);
    if (t->alert) {
        const char *an = tls_alert_name(t->alert_desc);
        sc_buf_printf(b, ", %s alert %s from the %s (frame %" PRIu64 ")",
                      t->alert_level == 2 ? "fatal" : "warning", an ? an : "?",
                      t->alert_dir == SC_DIR_C2S ? "client" : "server", t->alert_meta.frame);
    }
    sc_buf_putc(b, '\n');
    if (t->cert_hidden) {
        sc_buf_puts(b, "  cert      encrypted in TLS 1.3, not visible in a capture\n");
    } else if (t->n_chain) {
        const struct tls_cert *c = &t->chain[0];
        if (c->parsed)
            sc_buf_printf(b, "  cert      %s, issuer %s%s\n            valid %s to %s\n",
                          c->subject, c->issuer, c->self_signed ? " (self-signed)" : "",
                          c->not_before, c->not_after);
        else
            sc_buf_puts(b, "  cert      (not DER X.509)\n");
        sc_buf_printf(b, "  sha256    %s\n", c->sha256);
        if (t->chain_total > 1)
            sc_buf_printf(b, "            chain of %u certificates\n", t->chain_total);
    }
    if (w->opt.verbose && t->client_hello)
        sc_buf_printf(b, "  ja3       %s %s\n", t->ja3_md5, t->ja3);
}

static void rep__text_session(struct rep_writer *w, const struct rep_session *s)
{
    const struct smtp_info *in = s->smtp;
    struct sc_buf *b = &w->b;
    char t0[48], sz[2][32];
    rep__fmt_utc(t0, sizeof(t0), s->start);
    double dur = (double)(s->end - s->start) / 1e9;
    sc_buf_printf(b, "%ssession %" PRIu64 "%s  %s -> %s  close=%s%s\n", rep__c(w, REP_BOLD), s->id,
                  rep__c(w, REP_RESET), s->client, s->server, s->close,
                  s->partial ? "  (picked up mid-stream)" : "");
    for (size_t i = 0; i < s->n_findings; i++)
        rep__text_finding(w, &s->findings[i], false);
    if (s->n_findings && s->vantage && strcmp(s->vantage, "unknown") != 0)
        sc_buf_printf(b, "  vantage   %s: captured %s of the device\n", s->vantage,
                      strcmp(s->vantage, "outside") == 0 ? "on the client side"
                                                         : "on the server side");
    sc_buf_printf(b, "  time      %s UTC, %.3f s, frames %" PRIu64 "-%" PRIu64 "\n", t0, dur,
                  s->first_frame, s->last_frame);
    if (s->encap && strchr(s->encap, '/'))
        sc_buf_printf(b, "  encap     %s\n", s->encap);
    if (in->proxy.len)
        sc_buf_printf(b, "  proxy     %s\n", (const char *)in->proxy.data);
    sc_buf_puts(b, "  banner    ");
    if (in->implicit_tls && !in->banner.len) {
        sc_buf_puts(b, "(inside TLS)");
    } else if (in->banner.len) {
        rep__tbytes(w, in->banner.data, in->banner.len);
        if (in->banner_lines > 1)
            sc_buf_printf(b, "  (+%u more lines)", in->banner_lines - 1);
    } else {
        sc_buf_puts(b, "(none seen)");
    }
    sc_buf_puts(b, "\n  helo      ");
    if (in->implicit_tls && !in->helo.len)
        sc_buf_puts(b, "(inside TLS)");
    else if (in->helo.len)
        rep__tbytes(w, in->helo.data, in->helo.len);
    else
        sc_buf_puts(b, "(none seen)");
    if (in->ehlo_code && in->ehlo_code != 250)
        sc_buf_printf(b, "  (answered %03u)", in->ehlo_code);
    sc_buf_putc(b, '\n');
    if (in->n_ehlo_keywords) {
        struct sc_buf kw;
        sc_buf_init(&kw, 0);
        for (size_t i = 0; i < in->n_ehlo_keywords; i++) {
            if (i)
                sc_buf_puts(&kw, " | ");
            sc_escape(&kw, in->ehlo_keywords[i].data, in->ehlo_keywords[i].len);
        }
        sc_buf_puts(b, "  ehlo      ");
        rep__wrap(b, sc_buf_str(&kw), 12);
        sc_buf_free(&kw);
    }
    if (in->implicit_tls)
        sc_buf_puts(b, "  starttls  n/a: implicit TLS from the first byte\n");
    else
        sc_buf_printf(b, "  starttls  %s, %s -> %s\n",
                      in->starttls_offered ? "offered" : "not offered",
                      in->starttls_attempted ? "attempted" : "not attempted",
                      smtp_starttls_name(in->starttls));
    if (in->tls)
        rep__text_tls(w, in);
    if (in->auth_mech.len) {
        sc_buf_puts(b, "  auth      ");
        rep__tbytes(w, in->auth_mech.data, in->auth_mech.len);
        sc_buf_puts(b, in->auth_success ? " (accepted)\n" : " (not accepted)\n");
    }
    sc_buf_puts(b, "  envelope  ");
    if (in->mail_from.len == 0 && in->rcpt_count == 0 && in->messages == 0 &&
        (in->starttls == SMTP_TLS_ESTABLISHED || in->implicit_tls)) {
        sc_buf_puts(b, in->implicit_tls ? "(inside TLS)\n" : "(after STARTTLS, inside TLS)\n");
    } else {
        rep__text_envelope(w, in);
    }
    rep__size(sz[0], sizeof(sz[0]), in->bytes[SC_DIR_C2S]);
    rep__size(sz[1], sizeof(sz[1]), in->bytes[SC_DIR_S2C]);
    sc_buf_printf(b, "  bytes     c2s %s, s2c %s", sz[0], sz[1]);
    if (in->tls_bytes[0] || in->tls_bytes[1]) {
        char tl[2][32];
        rep__size(tl[0], sizeof(tl[0]), in->tls_bytes[SC_DIR_C2S]);
        rep__size(tl[1], sizeof(tl[1]), in->tls_bytes[SC_DIR_S2C]);
        sc_buf_printf(b, " (TLS: %s, %s)", tl[0], tl[1]);
    }
    if (in->gaps)
        sc_buf_printf(b, "; %u %s (%" PRIu64 " bytes missing), confidence %.2f", in->gaps,
                      rep__plural(in->gaps, "gap", "gaps"), in->gap_bytes, in->confidence);
    else if (in->confidence < 1.0)
        sc_buf_printf(b, "; confidence %.2f", in->confidence);
    sc_buf_putc(b, '\n');
    if (w->opt.verbose) {
        for (int d = 0; d < 2; d++) {
            const struct rep_tcp_side *t = &s->tcp[d];
            sc_buf_printf(b, "  %s %s:", d ? "         " : "tcp      ", d ? "server" : "client");
            if (!t->syn_seen)
                sc_buf_puts(b, " (no SYN seen)");
            if (t->mss_present)
                sc_buf_printf(b, " mss %u", t->mss);
            if (t->wscale_present)
                sc_buf_printf(b, " wscale %u", t->wscale);
            if (t->sack_perm)
                sc_buf_puts(b, " sack");
            if (t->timestamps)
                sc_buf_puts(b, " timestamps");
            sc_buf_printf(b, " ttl %u, %u retransmissions", t->ttl, t->retransmits);
            if (t->overlaps_diff)
                sc_buf_printf(b, " (%u with different bytes)", t->overlaps_diff);
            sc_buf_putc(b, '\n');
        }
    }
    if (w->opt.verbose && in->events.n) {
        for (size_t i = 0; i < in->events.n; i++) {
            const struct sc_event *e = &in->events.v[i];
            sc_buf_printf(b, "  %s %-14s %s frame %" PRIu64, i == 0 ? "events" : "      ", e->kind,
                          sc_dir_name(e->dir), e->frame);
            if (e->count > 1)
                sc_buf_printf(b, " (x%" PRIu64 ", last frame %" PRIu64 ")", e->count,
                              e->last_frame);
            if (e->detail)
                sc_buf_printf(b, ": %s", e->detail);
            sc_buf_putc(b, '\n');
        }
    }
    if (w->opt.transcript && in->n_transcript) {
        sc_buf_puts(b, "  transcript (frame, time, direction)\n");
        for (size_t i = 0; i < in->n_transcript; i++) {
            const struct smtp_line *l = &in->transcript[i];
            char ts[48];
            rep__fmt_utc(ts, sizeof(ts), l->meta.ts);
            sc_buf_printf(b, "  %8" PRIu64 "  %s  %s  ", l->meta.frame, ts + 11,
                          l->dir == SC_DIR_C2S ? "C:" : "S:");
            rep__tbytes(w, l->text, l->text_len);
            if (l->len > l->text_len && (l->kind == SMTP_L_COMMAND || l->kind == SMTP_L_REPLY))
                sc_buf_printf(b, " [... %u bytes in all]", l->len);
            if (l->incomplete)
                sc_buf_puts(b, " [no line end]");
            sc_buf_putc(b, '\n');
        }
        if (in->transcript_dropped)
            sc_buf_printf(b, "  ... %" PRIu64 " more lines not kept\n", in->transcript_dropped);
    }
    sc_buf_putc(b, '\n');
    rep__emit(w);
}

/* ---- the verdict: one sentence for a busy admin ---- */

struct rep__device {
    const char *suspect, *name;
    const char *rules[8]; /* the symptoms, most telling first */
};

static const struct rep__device rep__devices[] = {
    {"cisco-asa-esmtp",
     "Cisco ASA ESMTP inspection",
     {"starttls_stripped", "limit_drop", "exchange_auth_failed", "multiline_banner_broken",
      "command_masked", "ehlo_keyword_masked", "banner_masked", NULL}},
    {"cisco-pix-mailguard",
     "Cisco PIX Mailguard",
     {"dot_split_drop", "ehlo_downgraded", "starttls_stripped", "command_masked", "banner_masked",
      NULL}},
    {"smtp-proxy",
     "an SMTP proxy or downgrade in the path",
     {"starttls_stripped", "ehlo_downgraded", "cleartext_after_starttls", NULL}},
    {"tls-proxy", "TLS interception", {"tls_intercepted", NULL}},
};

static const char *rep__symptom(const char *rule)
{
    static const char *const names[][2] = {
        {"starttls_stripped", "STARTTLS stripped"},
        {"banner_masked", "banner masked"},
        {"limit_drop", "connections dropped at length limits"},
        {"ehlo_keyword_masked", "EHLO keywords masked"},
        {"command_masked", "commands masked"},
        {"multiline_banner_broken", "multi-line banner broken"},
        {"ehlo_downgraded", "EHLO downgraded"},
        {"dot_split_drop", "end of data dropped"},
        {"exchange_auth_failed", "Exchange authentication failing"},
        {"tls_intercepted", "certificate replaced"},
        {"injected_reset", "forged resets"},
        {"inconsistent_server", "servers differing between sessions"},
        {"starttls_failed", "STARTTLS failing"},
        {"cleartext_after_starttls", "cleartext after STARTTLS"},
    };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strcmp(names[i][0], rule) == 0)
            return names[i][1];
    return rule;
}

static const char *rep__fix(const char *suspect, const char *rule)
{
    if (strcmp(suspect, "cisco-asa-esmtp") == 0) {
        if (strcmp(rule, "starttls_stripped") == 0)
            return "allow-tls in the esmtp policy-map, or `no inspect esmtp`";
        if (strcmp(rule, "limit_drop") == 0)
            return "raise the drop-connection limits in the esmtp policy-map, or `no inspect "
                   "esmtp`";
        return "`no inspect esmtp`, or no mask-banner and allowed keywords in the esmtp "
               "policy-map";
    }
    if (strcmp(suspect, "cisco-pix-mailguard") == 0)
        return "`no fixup protocol smtp`";
    if (strcmp(suspect, "smtp-proxy") == 0)
        return "find the SMTP proxy or ALG in the path and let STARTTLS and EHLO through";
    if (strcmp(suspect, "tls-proxy") == 0)
        return "exempt the mail server from TLS inspection";
    return "see each finding above (docs/TROUBLESHOOTING.md)";
}

static void rep__verdict(struct rep_writer *w, const struct rep_summary *s)
{
    struct sc_buf *b = &w->b;
    uint64_t serious = 0;
    for (int i = HEUR_LOW; i <= HEUR_HIGH; i++)
        serious += s->by_severity[i];
    if (serious == 0) {
        if (s->sessions)
            sc_buf_printf(b, "%sverdict:%s no sign of tampering in %" PRIu64 " %s%s.\n",
                          rep__c(w, REP_BOLD), rep__c(w, REP_RESET), s->sessions,
                          rep__plural(s->sessions, "session", "sessions"),
                          s->by_severity[HEUR_INFO] ? " (notes only)" : "");
        return;
    }
    /* The device class with the most sessions; "unknown" only if alone. */
    size_t best = SIZE_MAX;
    for (size_t i = 0; i < s->n_suspects; i++) {
        bool unknown = strcmp(s->suspects[i].suspect, "unknown") == 0;
        if (best == SIZE_MAX)
            best = i;
        else if (strcmp(s->suspects[best].suspect, "unknown") == 0 && !unknown)
            best = i;
        else if (!unknown && s->suspects[i].sessions > s->suspects[best].sessions)
            best = i;
    }
    if (best == SIZE_MAX)
        return;
    const char *suspect = s->suspects[best].suspect;
    const struct rep__device *dev = NULL;
    for (size_t i = 0; i < sizeof(rep__devices) / sizeof(rep__devices[0]); i++)
        if (strcmp(rep__devices[i].suspect, suspect) == 0)
            dev = &rep__devices[i];
    /* Its most telling symptom present; for "unknown", the most severe rule. */
    size_t rule = SIZE_MAX;
    for (size_t k = 0; dev && k < 8 && dev->rules[k] && rule == SIZE_MAX; k++)
        for (size_t i = 0; i < s->n_rules; i++)
            if (strcmp(s->rules[i].rule, dev->rules[k]) == 0)
                rule = i;
    for (size_t i = 0; rule == SIZE_MAX && i < s->n_rules; i++)
        if (s->rules[i].worst >= HEUR_LOW)
            rule = i;
    if (rule == SIZE_MAX)
        return;
    for (size_t i = 0; i < s->n_rules; i++)
        if (!dev && s->rules[i].worst > s->rules[rule].worst)
            rule = i;
    struct sc_buf v;
    sc_buf_init(&v, 0);
    sc_buf_printf(b, "%sverdict:%s ", rep__c(w, REP_BOLD), rep__c(w, REP_RESET));
    struct sc_buf *vb = &v;
    sc_buf_printf(
        vb, "%" PRIu64 " of %" PRIu64 " %s %s %s: %s (session%s ", s->suspects[best].sessions,
        s->sessions, rep__plural(s->sessions, "session", "sessions"),
        s->suspects[best].sessions == 1 ? "shows" : "show", dev ? dev->name : "signs of tampering",
        rep__symptom(s->rules[rule].rule), s->rules[rule].nsessions == 1 ? "" : "s");
    for (size_t i = 0; i < s->rules[rule].nsessions; i++)
        sc_buf_printf(vb, "%s%" PRIu64, i ? ", " : "", s->rules[rule].sessions[i]);
    if (s->rules[rule].count > s->rules[rule].nsessions &&
        s->rules[rule].nsessions == REP_VERDICT_SESSIONS)
        sc_buf_puts(vb, ", ...");
    sc_buf_printf(vb, "). Fix: %s.", rep__fix(suspect, s->rules[rule].rule));
    rep__wrap(b, sc_buf_str(vb), 9);
    sc_buf_free(&v);
}

static void rep__text_summary(struct rep_writer *w, const struct rep_summary *s)
{
    struct sc_buf *b = &w->b;
    char sz[32];
    rep__size(sz, sizeof(sz), s->bytes);
    uint64_t nf = 0;
    for (int i = 0; i <= HEUR_HIGH; i++)
        nf += s->by_severity[i];
    sc_buf_printf(b,
                  "summary: %" PRIu64 " SMTP %s in %" PRIu64 " %s (%s) %s%" PRIu64 " %s, %" PRIu64
                  " %s, %.2f s\n",
                  s->sessions, rep__plural(s->sessions, "session", "sessions"), s->packets,
                  rep__plural(s->packets, "packet", "packets"), sz, s->live ? "live, " : "from ",
                  s->live ? (uint64_t)1 : s->files,
                  s->live ? "interface" : rep__plural(s->files, "file", "files"), nf,
                  rep__plural(nf, "finding", "findings"), s->elapsed);
    if (nf) {
        struct sc_buf t;
        sc_buf_init(&t, 0);
        for (int i = HEUR_HIGH; i >= 0; i--)
            if (s->by_severity[i])
                sc_buf_printf(&t, "%" PRIu64 " %s ", s->by_severity[i],
                              heur_sev_name((enum heur_sev)i));
        sc_buf_printf(&t, "in %" PRIu64 " %s:", s->sessions_flagged,
                      rep__plural(s->sessions_flagged, "session", "sessions"));
        for (size_t i = 0; i < s->n_rules; i++)
            sc_buf_printf(&t, "%s %s\037x%" PRIu64, i ? "," : "", s->rules[i].rule,
                          s->rules[i].count);
        sc_buf_puts(b, "  findings  ");
        rep__wrap(b, sc_buf_str(&t), 12);
        sc_buf_free(&t);
    }
    if (s->write_flagged)
        sc_buf_printf(b, "  written   %" PRIu64 " %s of the flagged sessions to %s\n",
                      s->packets_written, rep__plural(s->packets_written, "packet", "packets"),
                      s->write_flagged);
    if (s->vantage_outside)
        sc_buf_printf(b,
                      "  vantage   %" PRIu64 " %s: this capture is outside the device "
                      "(client side)\n",
                      s->vantage_outside, rep__plural(s->vantage_outside, "session", "sessions"));
    if (s->vantage_inside)
        sc_buf_printf(b,
                      "  vantage   %" PRIu64 " %s: this capture is inside the device "
                      "(server side)\n",
                      s->vantage_inside, rep__plural(s->vantage_inside, "session", "sessions"));
    if (s->live && s->drops)
        sc_buf_printf(b,
                      "  WARNING: %" PRIu64 " packets were dropped by the kernel or the interface: "
                      "sessions may be incomplete (a larger -B buffer, or a narrower --bpf)\n",
                      s->drops);
    if (s->files_failed)
        sc_buf_printf(b, "  %" PRIu64 " %s could not be read completely (see the errors above)\n",
                      s->files_failed, rep__plural(s->files_failed, "file", "files"));
    if (s->empty_connections)
        sc_buf_printf(b, "  %" PRIu64 " TCP %s to SMTP ports carried no data\n",
                      s->empty_connections,
                      rep__plural(s->empty_connections, "connection", "connections"));
    if (s->n_decap) {
        sc_buf_puts(b, "  decapsulated");
        for (size_t i = 0; i < s->n_decap; i++)
            sc_buf_printf(b, "%s %s %" PRIu64, i ? "," : "", s->decap[i].name, s->decap[i].count);
        sc_buf_puts(b, " packets\n");
    }
    if (s->encap_unsupported_total) {
        sc_buf_printf(b, "  %" PRIu64 " packets in encapsulations not decoded (",
                      s->encap_unsupported_total);
        for (size_t i = 0; i < s->n_encap_unsupported; i++)
            sc_buf_printf(b, "%s%s %" PRIu64, i ? ", " : "", s->encap_unsupported[i].name,
                          s->encap_unsupported[i].count);
        sc_buf_puts(b, ")\n");
    }
    if (s->ip_fragments) {
        sc_buf_printf(b, "  %" PRIu64 " IP fragments: %" PRIu64 " datagrams reassembled",
                      s->ip_fragments, s->ip_reassembled);
        if (s->ip_incomplete)
            sc_buf_printf(b, ", %" PRIu64 " incomplete", s->ip_incomplete);
        if (s->ip_frag_conflicts)
            sc_buf_printf(b, ", %" PRIu64 " overlaps with different bytes", s->ip_frag_conflicts);
        sc_buf_putc(b, '\n');
    }
    if (s->malformed)
        sc_buf_printf(b, "  %" PRIu64 " packets had malformed headers\n", s->malformed);
    if (s->link_unsupported) {
        sc_buf_printf(b, "  %" PRIu64 " packets had an unsupported link type (",
                      s->link_unsupported);
        for (uint32_t i = 0; i < s->n_unsupported; i++)
            sc_buf_printf(b, "%s%u", i ? ", " : "", s->unsupported_linktypes[i]);
        sc_buf_puts(b, ")\n");
    }
    if (s->evicted)
        sc_buf_printf(b,
                      "  %" PRIu64 " connections were cut short because the flow table or the "
                      "memory cap was full (limits: max_flows, memory_mb)\n",
                      s->evicted);
    if (s->ts_backwards)
        sc_buf_printf(b, "  %" PRIu64 " packets had timestamps earlier than the packet before\n",
                      s->ts_backwards);
    rep__verdict(w, s);
    rep__emit(w);
}

void rep_session(struct rep_writer *w, const struct rep_session *s)
{
    if (w->opt.format != REP_TEXT)
        rep__json_session(w, s);
    else
        rep__text_session(w, s);
}

void rep_finding(struct rep_writer *w, const struct heur_finding *f)
{
    if (w->opt.format != REP_TEXT) {
        rep__json_finding(w, f, NULL);
    } else {
        rep__text_finding(w, f, true);
        sc_buf_putc(&w->b, '\n');
        rep__emit(w);
    }
}

void rep_summary_count(struct rep_summary *s, const struct heur_finding *f)
{
    if ((unsigned)f->severity <= HEUR_HIGH)
        s->by_severity[f->severity]++;
    size_t i = 0;
    while (i < s->n_rules && strcmp(s->rules[i].rule, f->rule) != 0)
        i++;
    if (i == s->n_rules) {
        if (s->n_rules >= REP_MAX_RULE_COUNTS)
            return;
        memset(&s->rules[i], 0, sizeof(s->rules[i]));
        s->rules[i].rule = f->rule;
        s->rules[i].worst = f->severity;
        s->n_rules++;
    }
    s->rules[i].count++;
    if (f->severity > s->rules[i].worst)
        s->rules[i].worst = f->severity;
    size_t ns = s->rules[i].nsessions;
    if (ns < REP_VERDICT_SESSIONS && (ns == 0 || s->rules[i].sessions[ns - 1] != f->session))
        s->rules[i].sessions[s->rules[i].nsessions++] = f->session;
    if (f->severity < HEUR_LOW)
        return; /* notes do not make a verdict */
    const char *sus = f->suspect ? f->suspect : "unknown";
    size_t k = 0;
    while (k < s->n_suspects && strcmp(s->suspects[k].suspect, sus) != 0)
        k++;
    if (k == s->n_suspects) {
        if (s->n_suspects >= REP_MAX_SUSPECTS)
            return;
        s->suspects[k].suspect = sus;
        s->suspects[k].sessions = 0;
        s->suspects[k].last = 0;
        s->n_suspects++;
    }
    if (s->suspects[k].last != f->session) {
        s->suspects[k].sessions++;
        s->suspects[k].last = f->session;
    }
}

void rep_summary(struct rep_writer *w, const struct rep_summary *s)
{
    if (w->opt.format != REP_TEXT)
        rep__json_summary(w, s);
    else
        rep__text_summary(w, s);
}

/* ---- the rule list ---- */

static const char *const rep__targets[] = {"banner", "ehlo", "reply", "command"};

int rep_rules(FILE *out, enum rep_rules_format fmt, const struct heur_config *cfg)
{
    const struct heur_rule_info *r = heur_rules();
    struct sc_buf b;
    sc_buf_init(&b, 0);
    if (fmt == REP_RULES_MARKDOWN) {
        sc_buf_puts(&b, "# Detection rules\n\n"
                        "<!-- Generated by `smtpscope rules -f markdown`; do not edit by hand "
                        "(the test rules_doc checks it). -->\n\n"
                        "Every rule rests on rows of the middlebox catalogue (SIGNATURES.md). "
                        "\"Evidence shows\" says where a capture must be taken for the rule to "
                        "see anything: *outside* is between the client and the device, "
                        "*inside* between the device and the server. Severities are defaults; "
                        "a configuration file can change them, disable rules and add "
                        "signatures (docs/USAGE.md). Weak evidence lowers a single finding's "
                        "severity below its rule's, as noted.\n\n"
                        "| Rule | Severity | Source | Evidence shows | Detects |\n"
                        "|---|---|---|---|---|\n");
        for (int i = 0; i < HR__COUNT; i++)
            sc_buf_printf(&b, "| `%s` | %s | %s | %s | %s |\n", r[i].id,
                          heur_sev_name(cfg->severity[i]), r[i].source, r[i].vantage, r[i].what);
        sc_buf_puts(&b, "\n## What each rule cannot see\n\n");
        for (int i = 0; i < HR__COUNT; i++)
            sc_buf_printf(&b, "- `%s`: %s.\n", r[i].id, r[i].misses);
    } else if (fmt == REP_RULES_JSON || fmt == REP_RULES_YAML) {
        for (int i = 0; i < HR__COUNT; i++) {
            sc_buf_printf(&b,
                          "{\"type\":\"rule\",\"schema\":%d,\"id\":\"%s\",\"severity\":\"%s\","
                          "\"enabled\":%s,\"source\":",
                          REP_SCHEMA, r[i].id, heur_sev_name(cfg->severity[i]),
                          cfg->enabled[i] ? "true" : "false");
            const char *f[4] = {r[i].source, r[i].vantage, r[i].what, r[i].misses};
            const char *names[4] = {"source", "vantage", "description", "misses"};
            for (int k = 0; k < 4; k++) {
                if (k)
                    sc_buf_printf(&b, ",\"%s\":", names[k]);
                sc_buf_putc(&b, '"');
                sc_json_escape(&b, f[k], strlen(f[k]));
                sc_buf_putc(&b, '"');
            }
            sc_buf_puts(&b, "}\n");
        }
        for (size_t i = 0; i < cfg->nsig; i++) {
            const struct heur_signature *g = &cfg->sig[i];
            sc_buf_printf(&b, "{\"type\":\"rule\",\"schema\":%d,\"id\":", REP_SCHEMA);
            sc_buf_putc(&b, '"');
            sc_json_escape(&b, g->id, strlen(g->id));
            sc_buf_printf(&b,
                          "\",\"severity\":\"%s\",\"enabled\":true,\"source\":\"config\","
                          "\"target\":\"%s\",\"pattern\":\"",
                          heur_sev_name(g->severity), rep__targets[g->target]);
            sc_json_escape(&b, g->pattern, strlen(g->pattern));
            sc_buf_puts(&b, "\",\"description\":\"");
            sc_json_escape(&b, g->explanation, strlen(g->explanation));
            sc_buf_puts(&b, "\"}\n");
        }
    } else {
        sc_buf_printf(&b, "%-26s %-8s %s\n", "RULE", "SEVERITY", "SOURCE (SIGNATURES.md)");
        for (int i = 0; i < HR__COUNT; i++) {
            sc_buf_printf(&b, "%-26s %-8s %s%s\n%*s", r[i].id, heur_sev_name(cfg->severity[i]),
                          r[i].source, cfg->enabled[i] ? "" : "  (disabled)", 4, "");
            rep__wrap(&b, r[i].what, 4);
        }
        for (size_t i = 0; i < cfg->nsig; i++) {
            const struct heur_signature *g = &cfg->sig[i];
            sc_buf_printf(&b, "%-26s %-8s config: %s =~ /%s/\n%*s", g->id,
                          heur_sev_name(g->severity), rep__targets[g->target], g->pattern, 4, "");
            rep__wrap(&b, g->explanation, 4);
        }
    }
    bool ok =
        rep_write_records(out, fmt == REP_RULES_YAML ? REP_YAML : REP_TEXT, b.data, b.len) == 0;
    sc_buf_free(&b);
    return ok && fflush(out) == 0 ? 0 : -1;
}

void rep_set_output(struct rep_writer *w, FILE *out)
{
    if (fflush(w->out) != 0)
        w->failed = true;
    w->out = out;
}

void rep_stats(struct rep_writer *w, const struct rep_stats *st)
{
    if (w->opt.format == REP_TEXT)
        return; /* text: the caller prints the line on stderr */
    sc_buf_printf(&w->b,
                  "{\"type\":\"stats\",\"schema\":%d,\"uptime\":%.3f,\"packets\":%" PRIu64
                  ",\"bytes\":%" PRIu64 ",\"flows_tracked\":%" PRIu64 ",\"sessions\":%" PRIu64
                  ",\"findings\":%" PRIu64 ",\"received\":%" PRIu64 ",\"dropped\":%" PRIu64
                  ",\"if_dropped\":%" PRIu64 ",\"rss\":%" PRIu64 "}\n",
                  REP_SCHEMA, st->uptime, st->packets, st->bytes, st->sessions_open, st->sessions,
                  st->findings, st->received, st->dropped, st->if_dropped, st->rss);
    rep__emit(w);
    fflush(w->out);
}
