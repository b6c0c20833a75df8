/* smtp.c - SMTP session engine (RFC 5321, 2920, 3030, 3207, 3463, 4954). */
#include "dissect/smtp.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif
/* x86-64 with GCC or clang: message bodies are also scanned 32 bytes at a
 * compare when the CPU has AVX2 (chosen at run time; the build stays
 * baseline x86-64). */
#if defined(__x86_64__) && defined(__GNUC__)
#define SMTP_AVX2 1
#include <immintrin.h>
#endif

#include "common/ascii.h"
#include "common/escape.h"
#include "common/str.h"
#include "dissect/proxy.h"
#include "dissect/tls.h"

/* RFC 5321 4.5.3.1.4: a command line is at most 512 octets with its CRLF. */
#define SMTP_CMD_LINE_MAX 512
/* A probing session gives up on a first line longer than a command line. */
#define SMTP_PROBE_LINE_MAX SMTP_CMD_LINE_MAX
/* Bytes of a verb kept when it is not one we know (evidence). */
#define SMTP_VERB_KEEP 32

/* Bytes kept from the start of each message line: a Content-Disposition
 * header's filename= comes within its first 64 bytes. */
#define SMTP_BODY_PREFIX 96
/* The longest transcript note (our own texts, such as "[message body: N
 * bytes, ended by a bare-LF terminator]"). */
#define SMTP_NOTE_MAX 160

enum smtp__cmode {
    CM_CMD = 0, /* command lines */
    CM_HOLD,    /* waiting for the reply that decides how to read what follows */
    CM_BODY,    /* DATA: message until CRLF.CRLF */
    CM_BDAT,    /* BDAT: chunk bytes */
    CM_AUTH,    /* the next line answers a 334 challenge */
    CM_TLS,     /* TLS records (peeking at the first byte first) */
    CM_OPAQUE,  /* bytes we can no longer interpret: counted only */
};

enum smtp__smode {
    SM_REPLY = 0,
    SM_TLS,
    SM_OPAQUE,
};

/* States of the end-of-data matcher in a message body.  RFC 5321 4.1.1.4
 * ends the data with CRLF.CRLF; many servers also accept a "." line ended or
 * started by a bare LF (the "_LAX" states), which is what SMTP smuggling
 * abuses, so those are tracked as candidates the server's reply confirms. */
enum smtp__dot {
    DOT_MID = 0,   /* inside a line (dot_cr: the last byte was CR) */
    DOT_BOL,       /* at a line start reached by CRLF */
    DOT_BOL_LAX,   /* at a line start reached by a bare LF */
    DOT_DOT,       /* "." at a CRLF line start */
    DOT_DOT_LAX,   /* "." at a bare-LF line start */
    DOT_DOTCR,     /* ".\r" at a CRLF line start */
    DOT_DOTCR_LAX, /* ".\r" at a bare-LF line start */
};

struct smtp__linebuf {
    uint8_t *buf; /* line_keep bytes while a line is split over feeds, else NULL */
    uint64_t total;
    uint32_t len; /* bytes kept (at most line_keep) */
    uint8_t last; /* last byte appended (to see a CR before the LF) */
    bool resync;  /* the previous bytes were lost: drop the next line if it is garbage */
};

struct smtp__pending {
    enum smtp_verb verb;
    bool holding; /* client bytes after it are held until its reply */
    bool last;    /* BDAT ... LAST */
    struct sc_meta meta;
};

struct smtp__reply {
    bool open;
    bool starttls_kw; /* a continuation line is the STARTTLS keyword */
    uint16_t code;
    uint32_t nlines;
    char enh[SMTP_ENH_SIZE];
    struct smtp__lines *k; /* the lines kept, while the first EHLO reply may come */
};

/* A reply's kept lines (text after "NNN-", line_keep bytes of each): their
 * bytes one after the other in `text`, each followed by a NUL, and where each
 * starts and how long it is in `kept` (nkept_alloc entries). */
struct smtp__lines {
    struct sc_buf text;
    struct smtp__kept {
        uint32_t off, len;
    } * kept;
    uint32_t nkept_alloc; /* grows with the longest reply, up to reply_lines_max */
    uint32_t nkept;
};

/* Transcript text is carved from blocks freed with the session, one malloc
 * per block instead of one per line.  The first block has room for a
 * greeting (SMTP_TEXT_FIRST bytes) and, while it is the only one, is moved
 * once into SMTP_TEXT_BLOCK_FIRST bytes (a greeting and an EHLO exchange);
 * blocks then double to 8 KiB, so an open session holds little unused room;
 * a line longer than that gets a block of its own size. */
#define SMTP_TEXT_FIRST 64
#define SMTP_TEXT_BLOCK_FIRST 256
#define SMTP_TEXT_BLOCK_MAX 8192
/* Transcript entries: one for the greeting (a session that goes quiet after
 * it holds no more), then SMTP_TRANSCRIPT_SECOND (an EHLO command and its
 * reply), doubling up to SMTP_TRANSCRIPT_DOUBLE, then growing by half: a
 * session of 22 lines grows as often as from 4 (1, 8, 16, 24). */
#define SMTP_TRANSCRIPT_FIRST 1
#define SMTP_TRANSCRIPT_SECOND 8
#define SMTP_TRANSCRIPT_DOUBLE 16

struct smtp__tblock {
    struct smtp__tblock *next;
    size_t size, used;
    uint8_t data[];
};

/* A chunk of held client bytes: this header, then `len` bytes. */
struct smtp__hold_rec {
    uint32_t len;
    struct sc_meta meta;
};

/* Records kept in one held buffer (hold, lax): hold_max and lax_replay_max
 * count payload bytes, so the room does not depend on how the bytes were
 * segmented; this bounds the per-record headers of tiny segments. */
#define SMTP_HOLD_RECS_MAX 8192
/* Held bytes looked at to decide how to read them without a reply (the
 * first word, or a TLS record's first byte). */
#define SMTP_RELEASE_PEEK 64

/* The DATA message being read: what only CM_BODY needs, allocated when it
 * starts and freed when it ends, so that a session between messages (or one
 * that never sends one) does not carry it. */
struct smtp__msg {
    enum smtp__dot dot;
    bool dot_cr;
    bool lax_seen;   /* a bare-LF end-of-data candidate was seen */
    bool lax_dead;   /* ... but the bytes after it could not all be kept */
    bool bl_headers; /* still in the message's header section */
    uint8_t bl_last;
    uint64_t body_len;
    uint64_t lax_body_len;   /* body length up to and including the candidate */
    struct sc_meta lax_meta; /* frame holding the candidate */
    struct sc_buf lax;       /* held-record bytes after the candidate */
    size_t lax_payload, lax_recs;
    /* The message line being read: its length and first bytes (enough to
     * see a header name or a filename= parameter). */
    uint64_t bl_len;
    uint8_t bl_pre[SMTP_BODY_PREFIX];
};

/* Client bytes held until a reply decides how to read them (records: a
 * struct smtp__hold_rec, then its bytes), allocated with the first of them
 * and freed when they are replayed. */
struct smtp__held {
    struct sc_buf b;
    size_t payload, recs; /* held bytes and records in b */
};

/* Fields are grouped by what they serve and, within a group, the small
 * ones together: a session that goes idle keeps this whole struct. */
struct smtp_session {
    /* The settings it was created with, as 32-bit limits (a larger value
     * is taken as UINT32_MAX): line_keep is 1..SMTP_LINE_KEEP_MAX and
     * pending_max at least 1. */
    struct smtp__limits {
        uint32_t line_keep, pending_max, hold_max, transcript_max, reply_lines_max, proxy_max,
            lax_replay_max;
        bool keep_transcript;
    } lim;
    struct tls_cert_cache *cert_cache; /* the settings': not owned */
    unsigned flags;
    enum smtp__cmode cmode;
    enum smtp__smode smode;
    int verdict; /* probing: 0 undecided, 1 SMTP, -1 not SMTP */
    bool c_peek; /* CM_TLS: the first byte decides TLS or cleartext */
    bool s_peek;
    bool greeted;
    bool desync; /* commands or replies were lost: do not flag unmatched replies */
    bool closed;
    bool fin[2];
    bool auth_pending; /* AUTH issued, no final (non-334) reply yet */
    bool closed_reply; /* the reply being completed was cut by the end of the stream */
    bool cut_reply;    /* the reply being completed was cut by a gap */
    bool starttls_replied;
    bool cleartext_after;
    uint16_t starttls_code;
    struct smtp_info info;
    struct smtp__linebuf lb[2];
    uint64_t off[2];
    struct smtp__pending *pq; /* ring of pq_cap entries, grown up to pending_max */
    uint32_t pq_cap;
    uint32_t pq_head;
    uint32_t pq_len;
    enum smtp_verb hold_for;
    struct smtp__held *held; /* CM_HOLD: client bytes held, once there are some */
    bool wide_scan;          /* message lines are read with AVX2 */
    bool bdat_last;
    uint32_t tr_alloc; /* transcript entries allocated */
    uint64_t bdat_left;
    uint64_t bdat_size;
    struct smtp__msg *msg; /* exactly while cmode is CM_BODY */
    struct tls_conn *tls;  /* created at the switch to TLS */
    struct smtp__reply rep;
    struct smtp__tblock *text; /* transcript text blocks, newest first */
    /* The last command's bytes when the transcript did not keep its line
     * (info.last_command points here then, else at the line). */
    uint8_t *lc_own;
    uint32_t lc_own_size;
    bool tunnel;         /* a proxy handshake opened a tunnel: SMTP runs in it */
    struct proxy *proxy; /* probing: the proxy handshake being read */
};

static const char *const smtp__tls_names[SMTP_TLS__COUNT] = {
    "not_offered",     "not_attempted",       "accepted", "refused", "no_reply",
    "tls_established", "cleartext_after_220",
};

const char *smtp_starttls_name(enum smtp_starttls r)
{
    return (unsigned)r < SMTP_TLS__COUNT ? smtp__tls_names[r] : "unknown";
}

void smtp_settings_defaults(struct smtp_settings *s)
{
    s->line_keep = 1024;
    s->pending_max = 512;
    s->hold_max = 64 * 1024;
    s->transcript_max = 100000;
    s->reply_lines_max = 64;
    s->proxy_max = 8192;
    s->lax_replay_max = 4096;
    s->keep_transcript = false;
    s->no_avx2 = false;
    s->cert_cache = NULL;
}

/* ---- small helpers ---- */

static inline size_t smtp__min(size_t a, size_t b)
{
    return a < b ? a : b;
}

static void smtp__event(struct smtp_session *s, const char *kind, enum sc_dir dir,
                        const struct sc_meta *m, const char *detail)
{
    sc_events_add(&s->info.events, kind, dir, m ? m->frame : 0, m ? m->ts : 0, detail);
}

static void smtp__eventf(struct smtp_session *s, const char *kind, enum sc_dir dir,
                         const struct sc_meta *m, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static void smtp__eventf(struct smtp_session *s, const char *kind, enum sc_dir dir,
                         const struct sc_meta *m, const char *fmt, ...)
{
    char buf[SC_EVENT_DETAIL_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    smtp__event(s, kind, dir, m, buf);
}

/* Event detail quoting captured bytes (escaped, cut to 100 bytes). */
static void smtp__event_bytes(struct smtp_session *s, const char *kind, enum sc_dir dir,
                              const struct sc_meta *m, const char *prefix, const uint8_t *p,
                              size_t n)
{
    struct sc_buf b;
    sc_buf_init(&b, SC_EVENT_DETAIL_MAX - 1);
    sc_buf_puts(&b, prefix);
    sc_escape(&b, p, n < 100 ? n : 100);
    if (n > 100)
        sc_buf_puts(&b, "...");
    smtp__event(s, kind, dir, m, sc_buf_str(&b));
    sc_buf_free(&b);
}

/* The only text block, smaller than SMTP_TEXT_BLOCK_FIRST, moved into a
 * block of that size with the entries that point into it; false on OOM. */
static bool smtp__text_grow_first(struct smtp_session *s)
{
    struct smtp__tblock *b = s->text;
    struct smtp__tblock *nb = malloc(sizeof(*nb) + SMTP_TEXT_BLOCK_FIRST);
    if (!nb)
        return false;
    memcpy(nb, b, sizeof(*nb) + b->used);
    nb->size = SMTP_TEXT_BLOCK_FIRST;
    struct smtp_info *in = &s->info;
    for (size_t i = 0; i < in->n_transcript; i++)
        in->transcript[i].text = nb->data + (in->transcript[i].text - b->data);
    struct smtp_text *view[] = {&in->banner,    &in->helo,         &in->ehlo_reply, &in->mail_from,
                                &in->auth_mech, &in->last_command, &in->proxy};
    uintptr_t lo = (uintptr_t)b->data, hi = lo + b->used;
    for (size_t i = 0; i < sizeof(view) / sizeof(view[0]); i++)
        if ((uintptr_t)view[i]->data >= lo && (uintptr_t)view[i]->data < hi) /* even empty */
            view[i]->data = nb->data + ((uintptr_t)view[i]->data - lo);
    free(b);
    s->text = nb;
    return true;
}

/* smtp__text_alloc when the newest block lacks room. */
static uint8_t *smtp__text_alloc_slow(struct smtp_session *s, size_t n)
{
    struct smtp__tblock *b = s->text;
    if (b && b->size - b->used < n && !b->next && b->size < SMTP_TEXT_BLOCK_FIRST &&
        SMTP_TEXT_BLOCK_FIRST - b->used >= n) {
        if (!smtp__text_grow_first(s))
            return NULL;
        b = s->text;
    }
    if (!b || b->size - b->used < n) {
        size_t size = !b                                ? SMTP_TEXT_FIRST
                      : b->size < SMTP_TEXT_BLOCK_FIRST ? 2 * SMTP_TEXT_BLOCK_FIRST
                      : b->size < SMTP_TEXT_BLOCK_MAX   ? b->size * 2
                                                        : SMTP_TEXT_BLOCK_MAX;
        if (!b && n > size)
            size = SMTP_TEXT_BLOCK_FIRST;
        if (size < n)
            size = n;
        struct smtp__tblock *nb = malloc(sizeof(*nb) + size);
        if (!nb)
            return NULL;
        nb->next = b;
        nb->size = size;
        nb->used = 0;
        s->text = b = nb;
    }
    uint8_t *p = b->data + b->used;
    b->used += n;
    return p;
}

/* Room for n bytes of transcript text; NULL on OOM. */
static inline uint8_t *smtp__text_alloc(struct smtp_session *s, size_t n)
{
    struct smtp__tblock *b = s->text;
    if (!b || b->size - b->used < n)
        return smtp__text_alloc_slow(s, n);
    uint8_t *p = b->data + b->used;
    b->used += n;
    return p;
}

/* An enhanced status code "c.s.d" (as smtp__enhanced found it: a class
 * digit, then one to three digits twice) in 32 bits: bit 31 set; the class
 * digit in bits 0-3; the subject's digit count in bits 4-5 and value in
 * 6-15; the detail's in 16-17 and 18-27 (counts keep leading zeros). */
static uint32_t smtp__enh_pack(const char *e)
{
    uint32_t v = (1u << 31) | (uint32_t)(e[0] - '0');
    const char *p = e + 2;
    for (unsigned part = 0; part < 2; part++) {
        uint32_t n = 0, d = 0;
        while (*p >= '0' && *p <= '9')
            n = n * 10 + (uint32_t)(*p++ - '0'), d++;
        v |= (d << (4 + 12 * part)) | (n << (6 + 12 * part));
        if (*p == '.')
            p++;
    }
    return v;
}

void smtp_line_enh(const struct smtp_line *l, char out[SMTP_ENH_SIZE])
{
    out[0] = 0;
    if (!(l->enh >> 31))
        return;
    char *o = out;
    *o++ = (char)('0' + (l->enh & 0xf));
    for (unsigned part = 0; part < 2; part++) {
        uint32_t d = (l->enh >> (4 + 12 * part)) & 3, n = (l->enh >> (6 + 12 * part)) & 0x3ff;
        *o++ = '.';
        for (uint32_t k = d; k > 0; k--) {
            o[k - 1] = (char)('0' + n % 10);
            n /= 10;
        }
        o += d;
    }
    *o = 0;
}

/* Sets a result field to pre (pn bytes) then p (n bytes), cut to cap bytes,
 * copied into the transcript's text blocks.  When the transcript's newest
 * line holds those very bytes (a greeting or HELO line just added), the field
 * shares it.  An empty value, or OOM, leaves the field unset. */
static void smtp__text_set(struct smtp_session *s, struct smtp_text *t, const uint8_t *pre,
                           size_t pn, const uint8_t *p, size_t n, size_t cap)
{
    if (pn > cap)
        pn = cap;
    if (n > cap - pn)
        n = cap - pn;
    if (pn + n == 0)
        return;
    const struct smtp_info *in = &s->info;
    if (pn == 0 && in->n_transcript > 0) {
        const struct smtp_line *l = &in->transcript[in->n_transcript - 1];
        if (l->text_len == n && memcmp(l->text, p, n) == 0) {
            *t = (struct smtp_text){l->text, n};
            return;
        }
    }
    uint8_t *d = smtp__text_alloc(s, pn + n + 1);
    if (!d)
        return;
    if (pn)
        memcpy(d, pre, pn);
    if (n)
        memcpy(d + pn, p, n);
    d[pn + n] = 0;
    *t = (struct smtp_text){d, pn + n};
}

/* The last command line, when the transcript does not keep it: copied into
 * the session's own buffer (line_keep bytes at most).  On OOM the field
 * stays empty. */
static void smtp__last_command_own(struct smtp_session *s, enum smtp_line_kind kind,
                                   const uint8_t *text, size_t n)
{
    if (kind != SMTP_L_COMMAND)
        return;
    if (n > s->lim.line_keep)
        n = s->lim.line_keep;
    if (n + 1 > s->lc_own_size) {
        uint8_t *b = realloc(s->lc_own, n + 1);
        if (!b)
            return;
        s->lc_own = b;
        s->lc_own_size = (uint32_t)(n + 1); /* line_keep <= SMTP_LINE_KEEP_MAX */
    }
    memcpy(s->lc_own, text, n);
    s->lc_own[n] = 0;
    s->info.last_command = (struct smtp_text){s->lc_own, n};
}

/* Adds a transcript entry; `text` is raw bytes (or our own description). */
static void smtp__add_line(struct smtp_session *s, enum sc_dir dir, enum smtp_line_kind kind,
                           enum smtp_verb verb, uint16_t code, bool last, const uint8_t *text,
                           size_t text_len, uint64_t total, const struct sc_meta *m,
                           bool incomplete, const char *enh)
{
    struct smtp_info *in = &s->info;
    if (kind == SMTP_L_COMMAND) {
        in->last_command_len = total;
        in->last_command_verb = verb;
        in->last_command_meta = *m;
        /* Copied here if the transcript does not take the line. */
        in->last_command = (struct smtp_text){(const uint8_t *)"", 0};
    }
    if (!s->lim.keep_transcript) {
        smtp__last_command_own(s, kind, text, text_len);
        return;
    }
    if (in->n_transcript >= s->lim.transcript_max) {
        in->transcript_dropped++;
        smtp__last_command_own(s, kind, text, text_len);
        return;
    }
    if (in->n_transcript == s->tr_alloc) {
        /* Past SMTP_TRANSCRIPT_DOUBLE an open session holds at most half
         * as many entries again as it has lines. */
        size_t want = s->tr_alloc == 0                       ? SMTP_TRANSCRIPT_FIRST
                      : s->tr_alloc < SMTP_TRANSCRIPT_SECOND ? SMTP_TRANSCRIPT_SECOND
                      : s->tr_alloc < SMTP_TRANSCRIPT_DOUBLE
                          ? 2 * (size_t)s->tr_alloc
                          : s->tr_alloc + (size_t)s->tr_alloc / 2;
        if (want > s->lim.transcript_max)
            want = s->lim.transcript_max; /* > n_transcript, checked above */
        struct smtp_line *v = realloc(in->transcript, want * sizeof(*v));
        if (!v) {
            in->transcript_dropped++;
            smtp__last_command_own(s, kind, text, text_len);
            return;
        }
        in->transcript = v;
        s->tr_alloc = (uint32_t)want;
    }
    if (text_len > s->lim.line_keep)
        text_len = s->lim.line_keep;
    struct smtp_line *l = &in->transcript[in->n_transcript];
    memset(l, 0, sizeof(*l));
    l->text = smtp__text_alloc(s, text_len + 1);
    if (!l->text) {
        in->transcript_dropped++;
        smtp__last_command_own(s, kind, text, text_len);
        return;
    }
    memcpy(l->text, text, text_len);
    l->text[text_len] = 0;
    l->text_len = (uint16_t)text_len; /* line_keep <= SMTP_LINE_KEEP_MAX */
    l->len = (uint32_t)(total > UINT32_MAX ? UINT32_MAX : total);
    l->dir = (unsigned)dir & 3u;
    l->kind = (unsigned)kind & 7u;
    l->verb = (uint8_t)verb;
    l->code = code;
    l->last = last;
    l->incomplete = incomplete;
    l->meta = *m;
    if (enh)
        l->enh = smtp__enh_pack(enh);
    in->n_transcript++;
    if (kind == SMTP_L_COMMAND)
        in->last_command = (struct smtp_text){l->text, text_len};
}

_Static_assert(sizeof(struct smtp_line) == 40, "a transcript entry is 40 bytes (smtp.h)");

/* A note in the transcript (not a line on the wire): pre, then v in decimal
 * when pre is followed by a count (post != NULL), then post.  Built without
 * printf: a session adds at least one, for its message body. */
static void smtp__add_note_u(struct smtp_session *s, enum sc_dir dir, enum smtp_line_kind kind,
                             const struct sc_meta *m, const char *pre, uint64_t v, const char *post)
{
    if (!s->lim.keep_transcript)
        return;
    char buf[SMTP_NOTE_MAX];
    size_t len = strlen(pre), pl = post ? strlen(post) : 0;
    if (len + 20 + pl > sizeof(buf))
        return; /* notes are our own short texts */
    memcpy(buf, pre, len);
    if (post) {
        len = (size_t)(sc_put_u64(buf + len, v) - buf);
        memcpy(buf + len, post, pl);
        len += pl;
    }
    smtp__add_line(s, dir, kind, SMTP_V_UNKNOWN, 0, false, (const uint8_t *)buf, len, len, m, false,
                   NULL);
}

static void smtp__add_note(struct smtp_session *s, enum sc_dir dir, enum smtp_line_kind kind,
                           const struct sc_meta *m, const char *text)
{
    smtp__add_note_u(s, dir, kind, m, text, 0, NULL);
}

/* ---- pending-command queue ---- */

static struct smtp__pending *smtp__pq_at(struct smtp_session *s, size_t i)
{
    return &s->pq[(s->pq_head + i) % s->pq_cap];
}

/* Pending commands a session starts with room for: a pipelined MAIL, RCPT
 * and DATA (RFC 2920); the ring doubles from there up to pending_max, so an
 * idle session does not carry the whole bound. */
#define SMTP_PQ_INITIAL 4

/* Makes room for one more pending command; false on OOM. */
static bool smtp__pq_grow(struct smtp_session *s)
{
    if (s->pq_len < s->pq_cap)
        return true;
    size_t want = s->pq_cap ? 2 * (size_t)s->pq_cap : SMTP_PQ_INITIAL;
    if (want > s->lim.pending_max)
        want = s->lim.pending_max;
    struct smtp__pending *v = malloc(want * sizeof(*v));
    if (!v)
        return false;
    for (size_t i = 0; i < s->pq_len; i++)
        v[i] = *smtp__pq_at(s, i); /* linearised: the head moves to 0 */
    free(s->pq);
    s->pq = v;
    s->pq_cap = (uint32_t)want;
    s->pq_head = 0;
    return true;
}

static struct smtp__pending *smtp__push(struct smtp_session *s, enum smtp_verb v,
                                        const struct sc_meta *m)
{
    if (s->pq_len >= s->lim.pending_max || !smtp__pq_grow(s)) {
        smtp__event(s, "pending_overflow", SC_DIR_C2S, m,
                    "too many commands without replies; later replies are not matched");
        s->desync = true;
        return NULL;
    }
    struct smtp__pending *e = smtp__pq_at(s, s->pq_len++);
    memset(e, 0, sizeof(*e));
    e->verb = v;
    e->meta = *m;
    return e;
}

static void smtp__pop(struct smtp_session *s)
{
    if (s->pq_len == 0)
        return;
    s->pq_head = (s->pq_head + 1) % s->pq_cap;
    s->pq_len--;
}

/* ---- lifecycle ---- */

/* Ends the message being read (CM_BODY): its state goes. */
static void smtp__msg_free(struct smtp_session *s)
{
    if (!s->msg)
        return;
    sc_buf_free(&s->msg->lax);
    free(s->msg);
    s->msg = NULL;
}

struct smtp_session *smtp_session_new(const struct smtp_settings *set, unsigned flags)
{
    struct smtp_session *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->lim = (struct smtp__limits){
        .line_keep =
            set->line_keep == 0 ? 1 : (uint32_t)smtp__min(set->line_keep, SMTP_LINE_KEEP_MAX),
        .pending_max =
            set->pending_max == 0 ? 1 : (uint32_t)smtp__min(set->pending_max, UINT32_MAX),
        .hold_max = (uint32_t)smtp__min(set->hold_max, UINT32_MAX),
        .transcript_max = (uint32_t)smtp__min(set->transcript_max, UINT32_MAX),
        .reply_lines_max = (uint32_t)smtp__min(set->reply_lines_max, UINT32_MAX),
        .proxy_max = (uint32_t)smtp__min(set->proxy_max, UINT32_MAX),
        .lax_replay_max = (uint32_t)smtp__min(set->lax_replay_max, UINT32_MAX),
        .keep_transcript = set->keep_transcript,
    };
    s->cert_cache = set->cert_cache;
#if defined(SMTP_AVX2)
    s->wide_scan = !set->no_avx2 && __builtin_cpu_supports("avx2");
#endif
    s->flags = flags;
    s->info.banner = s->info.helo = s->info.auth_mech = s->info.mail_from = s->info.ehlo_reply =
        (struct smtp_text){(const uint8_t *)"", 0};
    s->info.proxy = s->info.last_command = (struct smtp_text){(const uint8_t *)"", 0};
    sc_events_init(&s->info.events);
    s->info.midstream = (flags & SMTP_F_MIDSTREAM) != 0;
    s->desync = s->info.midstream; /* earlier commands and replies are unknown */
    if (flags & SMTP_F_IMPLICIT_TLS) {
        /* Port 465 (RFC 8314): TLS from the first byte, SMTP inside it. */
        s->info.implicit_tls = true;
        s->cmode = CM_TLS;
        s->smode = SM_TLS;
        s->c_peek = s->s_peek = true;
    }
    s->info.confidence = 1.0;
    return s;
}

void smtp_session_free(struct smtp_session *s)
{
    if (!s)
        return;
    struct smtp_info *in = &s->info;
    tls_conn_free(s->tls);
    for (struct smtp__tblock *b = s->text, *next; b; b = next) {
        next = b->next;
        free(b);
    }
    free(in->transcript);
    free(in->ehlo_keywords); /* one block (smtp__keywords) */
    free(s->lc_own);
    if (s->proxy) {
        proxy_free(s->proxy);
        free(s->proxy);
    }
    sc_events_free(&in->events);
    if (s->rep.k) {
        sc_buf_free(&s->rep.k->text);
        free(s->rep.k->kept);
        free(s->rep.k);
    }
    free(s->lb[0].buf);
    free(s->lb[1].buf);
    if (s->held) {
        sc_buf_free(&s->held->b);
        free(s->held);
    }
    smtp__msg_free(s);
    free(s->pq);
    free(s);
}

const struct smtp_info *smtp_session_info(const struct smtp_session *s)
{
    return &s->info;
}

struct sc_events *smtp_session_events(struct smtp_session *s)
{
    return &s->info.events;
}

bool smtp_session_confirmed(const struct smtp_session *s)
{
    return s->verdict > 0;
}

/* ---- client side ---- */

static void smtp__feed_client(struct smtp_session *s, const uint8_t *p, size_t n,
                              const struct sc_meta *m);

/* Leaves CM_HOLD for `mode` and replays the held bytes in it. */
/* Appends client bytes to a buffer of held records (header, then bytes). */
static void smtp__lax_clear(struct smtp_session *s)
{
    struct smtp__msg *g = s->msg;
    sc_buf_reset(&g->lax);
    g->lax_payload = g->lax_recs = 0;
}

static void smtp__rec_append(struct sc_buf *b, const uint8_t *p, size_t n, const struct sc_meta *m)
{
    struct smtp__hold_rec r = {(uint32_t)n, *m};
    sc_buf_append(b, &r, sizeof(r));
    sc_buf_append(b, p, n);
}

/* Feeds the records of *b, which the caller took out of the session, to the
 * client side in the current mode (feeding may hold or capture bytes anew). */
static void smtp__replay(struct smtp_session *s, struct sc_buf *b)
{
    if (b->len == 0)
        return;
    struct sc_buf held = *b;
    sc_buf_init(b, 0);
    size_t i = 0;
    while (i + sizeof(struct smtp__hold_rec) <= held.len) {
        struct smtp__hold_rec r;
        memcpy(&r, held.data + i, sizeof(r));
        i += sizeof(r);
        if (r.len > held.len - i)
            break;
        smtp__feed_client(s, held.data + i, r.len, &r.meta);
        i += r.len;
    }
    sc_buf_free(&held);
}

/* A message starts (CM_BODY): its state, at the first line's start.  On
 * OOM the rest of the direction is only counted (an event says so). */
static bool smtp__body_start(struct smtp_session *s, const struct sc_meta *m)
{
    struct smtp__msg *g = s->msg;
    if (!g) {
        g = calloc(1, sizeof(*g));
        if (!g) {
            smtp__event(s, "out_of_memory", SC_DIR_C2S, m,
                        "no memory for the message: the rest of the client's bytes are only "
                        "counted");
            s->desync = true; /* the client's commands after it are not read */
            return false;
        }
        s->msg = g;
        sc_buf_init(&g->lax, 0);
    }
    g->bl_len = 0;
    g->bl_last = 0;
    g->bl_headers = true;
    g->dot = DOT_BOL;
    g->dot_cr = false;
    g->body_len = 0;
    g->lax_seen = false;
    g->lax_dead = false;
    smtp__lax_clear(s);
    return true;
}

/* Leaves CM_HOLD for `mode` and replays the held bytes in it. */
static void smtp__release(struct smtp_session *s, enum smtp__cmode mode, const struct sc_meta *m)
{
    if (s->cmode != CM_HOLD)
        return;
    if (mode == CM_BODY && !smtp__body_start(s, m))
        mode = CM_OPAQUE;
    s->cmode = mode;
    s->c_peek = mode == CM_TLS;
    if (s->held) {
        struct sc_buf b = s->held->b;
        free(s->held);
        s->held = NULL;
        smtp__replay(s, &b);
    }
}

/* Decides, without the server's reply, how held bytes must be read: by the
 * first of them, then of `more` (n bytes about to be fed, or NULL). */
static void smtp__release_by_content(struct smtp_session *s, const uint8_t *more, size_t more_n,
                                     const struct sc_meta *m)
{
    if (s->cmode != CM_HOLD)
        return;
    /* The first held bytes, across records (one byte per segment is
     * possible). */
    uint8_t p[SMTP_RELEASE_PEEK];
    size_t n = 0;
    const uint8_t *hd = s->held ? s->held->b.data : NULL;
    size_t hl = s->held ? s->held->b.len : 0;
    for (size_t i = 0; i + sizeof(struct smtp__hold_rec) <= hl && n < sizeof(p);) {
        struct smtp__hold_rec r;
        memcpy(&r, hd + i, sizeof(r));
        i += sizeof(r);
        if (r.len > hl - i)
            break;
        size_t take = r.len < sizeof(p) - n ? r.len : sizeof(p) - n;
        memcpy(p + n, hd + i, take);
        n += take;
        i += r.len;
    }
    if (more && n < sizeof(p)) {
        size_t take = more_n < sizeof(p) - n ? more_n : sizeof(p) - n;
        memcpy(p + n, more, take);
        n += take;
    }
    enum smtp__cmode mode = CM_CMD;
    switch (n == 0 ? SMTP_V_UNKNOWN : s->hold_for) {
    case SMTP_V_DATA:
        mode = CM_BODY; /* a client that sends after DATA is sending the message */
        break;
    case SMTP_V_STARTTLS:
        mode = (n > 0 && tls_plausible_start(p[0])) ? CM_TLS : CM_CMD;
        break;
    case SMTP_V_AUTH:
    case SMTP_V_AUTH_RESPONSE: {
        size_t k = 0;
        while (k < n && p[k] != ' ' && p[k] != '\r' && p[k] != '\n')
            k++;
        mode = (n > 0 && smtp_verb_lookup(p, k) != SMTP_V_UNKNOWN) ? CM_CMD : CM_AUTH;
        break;
    }
    default:
        break;
    }
    /* The reply, if it comes later, must not switch modes again. */
    for (size_t i = 0; i < s->pq_len; i++)
        smtp__pq_at(s, i)->holding = false;
    smtp__release(s, mode, m);
}

static void smtp__hold_bytes(struct smtp_session *s, const uint8_t *p, size_t n,
                             const struct sc_meta *m)
{
    struct smtp__held *h = s->held;
    if (!h && (h = calloc(1, sizeof(*h))) == NULL) {
        smtp__event(s, "out_of_memory", SC_DIR_C2S, m,
                    "no memory to hold client bytes until the reply: read by their content");
        smtp__release_by_content(s, p, n, m);
        smtp__feed_client(s, p, n, m);
        return;
    }
    s->held = h;
    if (h->payload + n > s->lim.hold_max || h->recs >= SMTP_HOLD_RECS_MAX) {
        smtp__eventf(s, "hold_overflow", SC_DIR_C2S, m,
                     "client sent over %" PRIu32 " bytes without waiting for the reply to %s",
                     s->lim.hold_max, smtp_verb_name(s->hold_for));
        smtp__release_by_content(s, NULL, 0, m);
        smtp__feed_client(s, p, n, m);
        return;
    }
    smtp__rec_append(&h->b, p, n, m);
    h->payload += n;
    h->recs++;
}

static void smtp__enter_hold(struct smtp_session *s, struct smtp__pending *e)
{
    if (!e)
        return; /* queue overflow: no reply will be matched; keep reading commands */
    e->holding = true;
    s->cmode = CM_HOLD;
    s->hold_for = e->verb;
}

/* Parses the address of "MAIL FROM:<addr> params" (RFC 5321 4.1.1.2). */
static void smtp__mail_from(struct smtp_session *s, const uint8_t *l, size_t n)
{
    size_t i = 4;
    while (i < n && sc_is_wsp(l[i]))
        i++;
    static const char from[] = "FROM:";
    for (size_t k = 0; k < 5; k++, i++)
        if (i >= n || sc_to_upper(l[i]) != (uint8_t)from[k])
            return;
    while (i < n && sc_is_wsp(l[i]))
        i++;
    size_t j = i;
    if (j < n && l[j] == '<') {
        while (j < n && l[j] != '>')
            j++;
        if (j < n)
            j++;
    } else {
        while (j < n && !sc_is_wsp(l[j]))
            j++;
    }
    smtp__text_set(s, &s->info.mail_from, NULL, 0, l + i, j - i, s->lim.line_keep);
}

/* Parses "BDAT size [LAST]" (RFC 3030 2).  Returns false if malformed. */
static bool smtp__bdat_args(const uint8_t *l, size_t n, uint64_t *size, bool *last)
{
    size_t i = 4;
    if (i >= n || !sc_is_wsp(l[i]))
        return false;
    while (i < n && sc_is_wsp(l[i]))
        i++;
    if (i >= n || !sc_is_digit(l[i]))
        return false;
    uint64_t v = 0;
    while (i < n && sc_is_digit(l[i])) {
        uint64_t d = (uint64_t)(l[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false; /* more than 64 bits */
        v = v * 10 + d;
        i++;
    }
    *last = false;
    while (i < n && sc_is_wsp(l[i]))
        i++;
    if (i + 4 <= n && sc_to_upper(l[i]) == 'L' && sc_to_upper(l[i + 1]) == 'A' &&
        sc_to_upper(l[i + 2]) == 'S' && sc_to_upper(l[i + 3]) == 'T') {
        *last = true;
        i += 4;
    }
    while (i < n && sc_is_wsp(l[i]))
        i++;
    if (i != n)
        return false;
    *size = v;
    return true;
}

static void smtp__bdat_done(struct smtp_session *s, const struct sc_meta *m)
{
    smtp__add_note_u(s, SC_DIR_C2S, SMTP_L_DATA, m, "[BDAT chunk: ", s->bdat_size,
                     s->bdat_last ? " bytes, last]" : " bytes]");
    if (s->bdat_last)
        s->info.messages++;
    s->cmode = CM_CMD;
}

/* One complete client line in CM_CMD or CM_AUTH.  `total` is its length on
 * the wire without the line ending; l holds at most line_keep bytes of it. */
static void smtp__client_line(struct smtp_session *s, const uint8_t *l, size_t n, uint64_t total,
                              const struct sc_meta *m, bool incomplete)
{
    struct smtp_info *in = &s->info;
    bool after_gap = s->lb[SC_DIR_C2S].resync;
    s->lb[SC_DIR_C2S].resync = false;

    if (s->cmode == CM_AUTH) {
        /* A response to a 334 challenge: credentials, never shown. */
        smtp__add_note_u(s, SC_DIR_C2S, SMTP_L_AUTH, m, "[AUTH response redacted, ", total,
                         " bytes]");
        smtp__enter_hold(s, smtp__push(s, SMTP_V_AUTH_RESPONSE, m));
        if (s->cmode != CM_HOLD)
            s->cmode = CM_CMD;
        return;
    }

    size_t vl = 0;
    while (vl < n && l[vl] != ' ' && l[vl] != '\t')
        vl++;
    enum smtp_verb v = smtp_verb_lookup(l, vl);

    if ((s->flags & SMTP_F_PROBE) && s->verdict == 0) {
        if ((v == SMTP_V_EHLO || v == SMTP_V_HELO || v == SMTP_V_LHLO) && s->greeted) {
            s->verdict = 1;
        } else {
            s->verdict = -1;
            return;
        }
    }
    if (v == SMTP_V_UNKNOWN && s->auth_pending) {
        /* Replies got out of step during AUTH: a line that is no command is
         * taken for a credential rather than risk showing one. */
        smtp__add_note_u(s, SC_DIR_C2S, SMTP_L_AUTH, m, "[AUTH response redacted, ", total,
                         " bytes]");
        smtp__enter_hold(s, smtp__push(s, SMTP_V_AUTH_RESPONSE, m));
        return;
    }
    if (after_gap && v == SMTP_V_UNKNOWN) {
        smtp__add_note_u(s, SC_DIR_C2S, SMTP_L_OTHER, m, "[partial line after a gap: ", total,
                         " bytes]");
        return;
    }
    if (n == 0 && total == 0 && !incomplete) {
        smtp__event(s, "empty_line", SC_DIR_C2S, m, "empty command line");
        smtp__add_line(s, SC_DIR_C2S, SMTP_L_COMMAND, SMTP_V_UNKNOWN, 0, false, l, 0, 0, m, false,
                       NULL);
        smtp__push(s, SMTP_V_UNKNOWN, m);
        in->commands++;
        return;
    }

    in->commands++;
    if (total + 2 > SMTP_CMD_LINE_MAX && v != SMTP_V_AUTH)
        smtp__eventf(s, "line_too_long", SC_DIR_C2S, m,
                     "command line of %llu bytes (RFC 5321 limit: 512 with CRLF)",
                     (unsigned long long)total + 2);

    if (v == SMTP_V_AUTH) {
        size_t ms = vl;
        while (ms < n && sc_is_wsp(l[ms]))
            ms++;
        size_t me = ms;
        while (me < n && !sc_is_wsp(l[me]))
            me++;
        if (in->auth_mech.len == 0) {
            uint8_t mech[SMTP_AUTH_MECH_MAX];
            size_t k = 0;
            for (size_t i = ms; i < me && k < sizeof(mech); i++)
                mech[k++] = sc_to_upper(l[i]);
            smtp__text_set(s, &in->auth_mech, NULL, 0, mech, k, sizeof(mech));
        }
        size_t ir = me; /* the initial response starts after the blanks */
        while (ir < n && sc_is_wsp(l[ir]))
            ir++;
        uint8_t red[96];
        int k =
            snprintf((char *)red, sizeof(red), "%.*s", (int)(me < 64 ? me : 64), (const char *)l);
        size_t rl = k < 0 ? 0 : (size_t)k;
        if (total > ir) {
            int k2 = snprintf((char *)red + rl, sizeof(red) - rl,
                              " [initial response redacted, %llu bytes]",
                              (unsigned long long)(total - ir));
            rl += k2 < 0 ? 0 : (size_t)k2;
            if (rl >= sizeof(red))
                rl = sizeof(red) - 1;
        }
        smtp__add_line(s, SC_DIR_C2S, SMTP_L_COMMAND, v, 0, false, red, rl, total, m, incomplete,
                       NULL);
        if (total + 2 > SMTP_CMD_LINE_MAX)
            smtp__eventf(s, "line_too_long", SC_DIR_C2S, m,
                         "AUTH line of %llu bytes (RFC 5321 limit: 512 with CRLF)",
                         (unsigned long long)total + 2);
        s->auth_pending = true;
        smtp__enter_hold(s, smtp__push(s, v, m));
        return;
    }

    smtp__add_line(s, SC_DIR_C2S, SMTP_L_COMMAND, v, 0, false, l, n, total, m, incomplete, NULL);
    if (incomplete)
        return; /* cut by the end of the stream: not a command the server saw */

    struct smtp__pending *e = NULL;
    switch (v) {
    case SMTP_V_HELO:
    case SMTP_V_EHLO:
    case SMTP_V_LHLO:
        if (in->helo.len == 0)
            smtp__text_set(s, &in->helo, NULL, 0, l, n, s->lim.line_keep);
        smtp__push(s, v, m);
        break;
    case SMTP_V_MAIL:
        if (in->mail_from.len == 0)
            smtp__mail_from(s, l, n);
        smtp__push(s, v, m);
        break;
    case SMTP_V_RCPT:
        in->rcpt_count++;
        smtp__push(s, v, m);
        break;
    case SMTP_V_DATA:
        smtp__enter_hold(s, smtp__push(s, v, m));
        break;
    case SMTP_V_STARTTLS:
    case SMTP_V_X_ANONYMOUSTLS: /* Exchange's STARTTLS between its own servers */
        in->starttls_attempted = true;
        in->starttls_meta = *m;
        s->starttls_replied = false;
        smtp__enter_hold(s, smtp__push(s, v, m));
        break;
    case SMTP_V_BDAT: {
        uint64_t size = 0;
        bool last = false;
        e = smtp__push(s, v, m);
        if (!smtp__bdat_args(l, n, &size, &last)) {
            smtp__event_bytes(s, "bdat_invalid", SC_DIR_C2S, m, "malformed BDAT: ", l, n);
            break;
        }
        if (e)
            e->last = last;
        s->bdat_size = size;
        s->bdat_left = size;
        s->bdat_last = last;
        if (size == 0)
            smtp__bdat_done(s, m);
        else
            s->cmode = CM_BDAT;
        break;
    }
    case SMTP_V_UNKNOWN: {
        struct sc_buf b;
        sc_buf_init(&b, 0);
        sc_buf_puts(&b, "unknown verb \"");
        sc_escape(&b, l, vl < SMTP_VERB_KEEP ? vl : SMTP_VERB_KEEP);
        sc_buf_puts(&b, "\"");
        smtp__event(s, "unknown_command", SC_DIR_C2S, m, sc_buf_str(&b));
        sc_buf_free(&b);
        smtp__push(s, v, m);
        break;
    }
    default:
        smtp__push(s, v, m);
        break;
    }
}

/* The message ends (`m` must not point into s->msg, which goes). */
static void smtp__end_body(struct smtp_session *s, uint64_t len, bool lax, const struct sc_meta *m)
{
    uint64_t size = len >= 3 ? len - 3 : 0;
    smtp__msg_free(s);
    smtp__add_note_u(s, SC_DIR_C2S, SMTP_L_DATA, m, "[message body: ", size,
                     lax ? " bytes, ended by a bare-LF terminator]" : " bytes]");
    s->info.messages++;
    s->cmode = CM_CMD;
    smtp__push(s, SMTP_V_END_OF_DATA, m);
}

/* A "." line that ends the data only for servers that accept bare LF. */
static void smtp__lax_candidate(struct smtp_session *s, size_t at, const struct sc_meta *m)
{
    struct smtp__msg *g = s->msg;
    if (g->lax_seen)
        return;
    g->lax_seen = true;
    g->lax_dead = false;
    g->lax_meta = *m;
    g->lax_body_len = g->body_len + at;
    smtp__lax_clear(s);
}

/* Counts message-line bytes, keeping the line's first bytes (inlined: the
 * body loops call it for the last line of every buffer). */
__attribute__((always_inline)) static inline void smtp__body_bytes(struct smtp_session *s,
                                                                   const uint8_t *p, size_t n)
{
    struct smtp__msg *g = s->msg;
    if (n == 0)
        return;
    if (g->bl_len < SMTP_BODY_PREFIX) {
        size_t k = SMTP_BODY_PREFIX - (size_t)g->bl_len;
        memcpy(g->bl_pre + g->bl_len, p, n < k ? n : k);
    }
    g->bl_len += n;
    g->bl_last = p[n - 1];
}

/* Length of a filename="..." (or filename=token) parameter at p, or 0. */
static uint64_t smtp__filename_len(const uint8_t *pre, size_t kept, uint64_t total)
{
    static const char key[] = "FILENAME";
    const size_t kl = sizeof(key) - 1;
    /* Every '=' is a candidate (memchr keeps base64 lines cheap): is it
     * preceded by "filename"? */
    for (const uint8_t *eq = memchr(pre, '=', kept); eq;
         eq = memchr(eq + 1, '=', kept - (size_t)(eq + 1 - pre))) {
        size_t at = (size_t)(eq - pre);
        if (at < kl)
            continue;
        size_t k = 0;
        while (k < kl && sc_to_upper(pre[at - kl + k]) == (uint8_t)key[k])
            k++;
        if (k < kl)
            continue;
        size_t v = at + 1;
        bool quoted = v < kept && pre[v] == '"';
        /* The value runs to the closing quote, or to the line's end when it is
         * longer than what was kept. */
        size_t j = v + (quoted ? 1 : 0);
        while (j < kept && pre[j] != (quoted ? '"' : ';') && pre[j] != '\r')
            j++;
        uint64_t start = v + (quoted ? 1 : 0);
        if (j < kept)
            return j - start;
        return total > start ? total - start - (quoted ? 1 : 0) : 0;
    }
    return 0;
}

/* A message line of `len` bytes (without its line ending) ended at its LF;
 * pre holds its first bytes (SMTP_BODY_PREFIX at most).  Inlined: it runs
 * once per message line, in the loops of smtp__body_lines_with. */
__attribute__((always_inline)) static inline void smtp__body_line_eq(struct smtp_session *s,
                                                                     const uint8_t *pre,
                                                                     uint64_t len, bool eq,
                                                                     const struct sc_meta *m)
{
    struct smtp__msg *g = s->msg;
    struct smtp_info *in = &s->info;
    if (g->bl_headers) {
        if (len == 0) {
            g->bl_headers = false;
        } else if (len > in->max_header_line) {
            in->max_header_line = len;
            in->max_header_meta = *m;
        }
    }
    if (eq) {
        size_t kept = len < SMTP_BODY_PREFIX ? (size_t)len : SMTP_BODY_PREFIX;
        uint64_t fl = smtp__filename_len(pre, kept, len);
        if (fl > in->max_filename) {
            in->max_filename = fl;
            in->max_filename_meta = *m;
        }
    }
    g->bl_len = 0;
    g->bl_last = 0;
}

/* Same, looking for a filename= in every line (eq: the caller knows whether
 * an '=' lies in its first SMTP_BODY_PREFIX bytes; without one there is
 * none to find). */
static void smtp__body_line(struct smtp_session *s, const uint8_t *pre, uint64_t len,
                            const struct sc_meta *m)
{
    smtp__body_line_eq(s, pre, len, true, m);
}

/* Bitmasks of the LFs and of the '='s among p[0..63] (bit k: p[k]).  SSE2
 * (every x86-64) does 16 bytes a compare; elsewhere, a byte at a time. */
static inline void smtp__masks64(const uint8_t *p, uint64_t *lf, uint64_t *eq)
{
#if defined(__SSE2__)
    const __m128i lfc = _mm_set1_epi8('\n');
    const __m128i eqc = _mm_set1_epi8('=');
    const __m128i *q = (const __m128i *)(const void *)p;
    __m128i v0 = _mm_loadu_si128(q), v1 = _mm_loadu_si128(q + 1);
    __m128i v2 = _mm_loadu_si128(q + 2), v3 = _mm_loadu_si128(q + 3);
#define SMTP__MM(v, c) ((uint64_t)(unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8((v), (c))))
    uint64_t l = SMTP__MM(v0, lfc) | SMTP__MM(v1, lfc) << 16 | SMTP__MM(v2, lfc) << 32 |
                 SMTP__MM(v3, lfc) << 48;
    uint64_t e = SMTP__MM(v0, eqc) | SMTP__MM(v1, eqc) << 16 | SMTP__MM(v2, eqc) << 32 |
                 SMTP__MM(v3, eqc) << 48;
#undef SMTP__MM
#else
    uint64_t l = 0, e = 0;
    for (unsigned k = 0; k < 64; k++) {
        l |= (uint64_t)(p[k] == '\n') << k;
        e |= (uint64_t)(p[k] == '=') << k;
    }
#endif
    *lf = l;
    *eq = e;
}

/* The bitmask of the '.'s among p[0..63], the same way. */
static inline uint64_t smtp__dots64(const uint8_t *p)
{
#if defined(__SSE2__)
    const __m128i dc = _mm_set1_epi8('.');
    const __m128i *q = (const __m128i *)(const void *)p;
#define SMTP__MM(k)                                                                                \
    ((uint64_t)(unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(_mm_loadu_si128(q + (k)), dc)))
    return SMTP__MM(0) | SMTP__MM(1) << 16 | SMTP__MM(2) << 32 | SMTP__MM(3) << 48;
#undef SMTP__MM
#else
    uint64_t d = 0;
    for (unsigned k = 0; k < 64; k++)
        d |= (uint64_t)(p[k] == '.') << k;
    return d;
#endif
}

#if defined(SMTP_AVX2)
/* The same with AVX2: two 32-byte compares per mask, half the work. */
__attribute__((target("avx2"))) static inline void smtp__masks64_avx2(const uint8_t *p,
                                                                      uint64_t *lf, uint64_t *eq)
{
    const __m256i lfc = _mm256_set1_epi8('\n');
    const __m256i eqc = _mm256_set1_epi8('=');
    const __m256i *q = (const __m256i *)(const void *)p;
    __m256i v0 = _mm256_loadu_si256(q), v1 = _mm256_loadu_si256(q + 1);
#define SMTP__MM(v, c) ((uint64_t)(uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8((v), (c))))
    *lf = SMTP__MM(v0, lfc) | SMTP__MM(v1, lfc) << 32;
    *eq = SMTP__MM(v0, eqc) | SMTP__MM(v1, eqc) << 32;
#undef SMTP__MM
}

__attribute__((target("avx2"))) static inline uint64_t smtp__dots64_avx2(const uint8_t *p)
{
    const __m256i dc = _mm256_set1_epi8('.');
    const __m256i *q = (const __m256i *)(const void *)p;
    uint64_t lo = (uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(_mm256_loadu_si256(q), dc));
    uint64_t hi = (uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(_mm256_loadu_si256(q + 1), dc));
    return lo | hi << 32;
}
#endif

/* The bits of a 64-bit mask at positions k and above (none for k >= 64). */
static inline uint64_t smtp__from_bit(size_t k)
{
    return k >= 64 ? 0 : ~(uint64_t)0 << k;
}

/* Reads in place the message lines that start at p[i] and end in this
 * buffer, the state being at a line's beginning and p[i] neither '.' nor LF.
 * For each it does what the byte-wise path of smtp__body would do.  Message
 * bodies are most of an SMTP capture's bytes, so the buffer is scanned once,
 * 64 bytes at a time, for LFs and '='s together (a '=' within a line's first
 * SMTP_BODY_PREFIX bytes may start a filename= parameter); `masks` builds the
 * two bitmasks of a block.  Returns the index of the first byte not consumed:
 * the buffer's end (a last line that does not end in it is kept as the
 * byte-wise path keeps it, in bl_pre), or the start of a line that begins
 * with '.' or LF, which the byte-wise path takes from there; so always more
 * than i.
 *
 * Past the message's header section, a line without '=' in reach has
 * nothing to record.  So a block whose lines are all like that, and whose
 * next lines start neither with '.' nor LF (`dots` gives the block's '.'s),
 * is passed over whole.  Base64 attachments, most of a capture's bytes, are
 * such blocks.  Always inlined, so that each caller gets `masks` and `dots`
 * inlined too. */
__attribute__((always_inline)) static inline size_t smtp__body_lines_with(
    struct smtp_session *s, const uint8_t *p, size_t i, size_t n, const struct sc_meta *m,
    void (*masks)(const uint8_t *, uint64_t *, uint64_t *), uint64_t (*dots)(const uint8_t *))
{
    struct smtp__msg *g = s->msg;
    size_t ls = i;         /* the current line's first byte */
    size_t feq = SIZE_MAX; /* its first '=', once seen */
    for (size_t pos = i; pos < n; pos += 64) {
        uint64_t lf, eq;
        if (!g->bl_headers && feq == SIZE_MAX && ls <= pos) {
            /* Whole blocks with no '=', and after each LF neither '.' nor
             * LF; bit 63 clear keeps the byte after each LF in the block.
             * `dot` stays at a line start: whether CRLF or a bare LF led
             * there matters only for a '.' after it, never passed over. */
            while (n - pos >= 64) {
                masks(p + pos, &lf, &eq);
                if ((eq | lf >> 63) != 0 || ((lf << 1) & (dots(p + pos) | lf)) != 0)
                    break;
                if (lf)
                    ls = pos + 64 - (size_t)__builtin_clzll(lf); /* after the last LF */
                pos += 64;
            }
            if (pos >= n)
                break;
        }
        /* The general case: the block at pos line by line. */
        if (n - pos >= 64) {
            masks(p + pos, &lf, &eq);
        } else {
            uint8_t tail[64] = {0}; /* NUL is neither LF nor '=' */
            memcpy(tail, p + pos, n - pos);
            masks(tail, &lf, &eq);
        }
        if (ls > pos)
            eq &= smtp__from_bit(ls - pos); /* '='s of lines already read */
        while (lf) {
            size_t j = pos + (size_t)__builtin_ctzll(lf);
            lf &= lf - 1;
            if (feq == SIZE_MAX) {
                uint64_t em = eq & ~smtp__from_bit(j - pos);
                if (em)
                    feq = pos + (size_t)__builtin_ctzll(em);
            }
            /* j > ls: the line's first byte is not the LF. */
            bool crlf = p[j - 1] == '\r';
            smtp__body_line_eq(s, p + ls, j - ls - (crlf ? 1 : 0),
                               feq != SIZE_MAX && feq - ls < SMTP_BODY_PREFIX, m);
            g->dot = crlf ? DOT_BOL : DOT_BOL_LAX;
            ls = j + 1;
            feq = SIZE_MAX;
            if (ls == n || p[ls] == '.' || p[ls] == '\n')
                return ls;
            eq &= smtp__from_bit(ls - pos);
        }
        if (feq == SIZE_MAX && eq)
            feq = pos + (size_t)__builtin_ctzll(eq);
    }
    /* The last line does not end in the buffer (ls < n, and p[ls] is neither
     * '.' nor LF): keep what the byte-wise path would keep of it. */
    g->dot = DOT_MID;
    g->dot_cr = p[n - 1] == '\r';
    smtp__body_bytes(s, p + ls, n - ls);
    return n;
}

static size_t smtp__body_lines_sse2(struct smtp_session *s, const uint8_t *p, size_t i, size_t n,
                                    const struct sc_meta *m)
{
    return smtp__body_lines_with(s, p, i, n, m, smtp__masks64, smtp__dots64);
}

#if defined(SMTP_AVX2)
__attribute__((target("avx2"))) static size_t smtp__body_lines_avx2(struct smtp_session *s,
                                                                    const uint8_t *p, size_t i,
                                                                    size_t n,
                                                                    const struct sc_meta *m)
{
    return smtp__body_lines_with(s, p, i, n, m, smtp__masks64_avx2, smtp__dots64_avx2);
}
#endif

/* smtp__body_lines_with, with the widest scan the session may use. */
static size_t smtp__body_lines(struct smtp_session *s, const uint8_t *p, size_t i, size_t n,
                               const struct sc_meta *m)
{
#if defined(SMTP_AVX2)
    if (s->wide_scan)
        return smtp__body_lines_avx2(s, p, i, n, m);
#endif
    return smtp__body_lines_sse2(s, p, i, n, m);
}

/* A message line ended (at its LF): the line is in bl_pre / bl_len. */
static void smtp__body_eol(struct smtp_session *s, const struct sc_meta *m)
{
    struct smtp__msg *g = s->msg;
    smtp__body_line(s, g->bl_pre, g->bl_len - (g->bl_len && g->bl_last == '\r' ? 1 : 0), m);
}

/* Body bytes in CM_BODY; returns bytes consumed (stops after CRLF.CRLF). */
static size_t smtp__body(struct smtp_session *s, const uint8_t *p, size_t n,
                         const struct sc_meta *m)
{
    struct smtp__msg *g = s->msg;
    size_t i = 0, lax_from = n; /* bytes from lax_from on follow a lax candidate */
    if (g->lax_seen && !g->lax_dead)
        lax_from = 0;
    while (i < n) {
        if ((g->dot == DOT_BOL || g->dot == DOT_BOL_LAX) && p[i] != '.' && p[i] != '\n') {
            i = smtp__body_lines(s, p, i, n, m); /* past one line at least */
            continue;
        }
        if (g->dot == DOT_MID) {
            const uint8_t *lf = memchr(p + i, '\n', n - i);
            if (!lf) {
                g->dot_cr = p[n - 1] == '\r';
                smtp__body_bytes(s, p + i, n - i);
                i = n;
                break;
            }
            size_t j = (size_t)(lf - p);
            bool crlf = j > i ? p[j - 1] == '\r' : g->dot_cr;
            smtp__body_bytes(s, p + i, j - i);
            smtp__body_eol(s, m);
            g->dot = crlf ? DOT_BOL : DOT_BOL_LAX;
            i = j + 1;
            continue;
        }
        uint8_t c = p[i++];
        if (c == '\n')
            smtp__body_eol(s, m);
        else
            smtp__body_bytes(s, &c, 1);
        enum smtp__dot d = g->dot;
        g->dot = DOT_MID;
        g->dot_cr = c == '\r';
        switch (d) {
        case DOT_BOL:
        case DOT_BOL_LAX:
            if (c == '.')
                g->dot = d == DOT_BOL ? DOT_DOT : DOT_DOT_LAX;
            else if (c == '\n')
                g->dot = DOT_BOL_LAX;
            break;
        case DOT_DOT:
        case DOT_DOT_LAX:
            if (c == '\r') {
                g->dot = d == DOT_DOT ? DOT_DOTCR : DOT_DOTCR_LAX;
            } else if (c == '\n') {
                smtp__lax_candidate(s, i, m); /* ".\n" */
                if (lax_from == n)
                    lax_from = i;
                g->dot = DOT_BOL_LAX;
            }
            break;
        case DOT_DOTCR:
            if (c == '\n') {
                if (i < 5 && g->body_len > 0 && !s->info.eod_split) {
                    /* CRLF.CRLF did not arrive in one piece (P3). */
                    s->info.eod_split = true;
                    s->info.eod_split_meta = *m;
                }
                g->body_len += i;
                if (g->lax_seen)
                    smtp__eventf(s, "bare_lf_dot_in_data", SC_DIR_C2S, m,
                                 "a \".\" line with a bare LF at byte %llu of the message did "
                                 "not end it (the SMTP smuggling pattern)",
                                 (unsigned long long)g->lax_body_len);
                smtp__lax_clear(s);
                g->lax_seen = false;
                smtp__end_body(s, g->body_len, false, m);
                return i;
            }
            break;
        case DOT_DOTCR_LAX:
            if (c == '\n') {
                smtp__lax_candidate(s, i, m); /* LF "." CRLF */
                if (lax_from == n)
                    lax_from = i;
                g->dot = DOT_BOL;
            }
            break;
        default:
            break;
        }
    }
    g->body_len += i;
    if (lax_from < i && g->lax_seen && !g->lax_dead) {
        if (g->lax_payload + (i - lax_from) > s->lim.lax_replay_max ||
            g->lax_recs >= SMTP_HOLD_RECS_MAX) {
            g->lax_dead = true;
            smtp__lax_clear(s);
            smtp__eventf(s, "lax_replay_overflow", SC_DIR_C2S, m,
                         "more than %" PRIu32
                         " bytes followed a bare-LF \".\" line inside the message",
                         s->lim.lax_replay_max);
        } else {
            smtp__rec_append(&g->lax, p + lax_from, i - lax_from, m);
            g->lax_payload += i - lax_from;
            g->lax_recs++;
        }
    }
    return i;
}

/* TLS bytes of one direction; `peek` decides on the first byte whether the
 * peer really switched to TLS. Returns bytes consumed (0 if it did not). */
static size_t smtp__tls(struct smtp_session *s, enum sc_dir dir, const uint8_t *p, size_t n,
                        const struct sc_meta *m)
{
    bool *peek = dir == SC_DIR_C2S ? &s->c_peek : &s->s_peek;
    if (*peek) {
        *peek = false;
        if (!tls_plausible_start(p[0]) && s->info.implicit_tls) {
            /* An implicit-TLS port that speaks plain SMTP: read it as such. */
            smtp__eventf(s, "implicit_tls_cleartext", dir, m,
                         "%s sent 0x%02x, not a TLS record, on an implicit-TLS port",
                         dir == SC_DIR_C2S ? "client" : "server", p[0]);
            s->info.implicit_tls = false;
            s->c_peek = s->s_peek = false;
            s->cmode = CM_CMD;
            s->smode = SM_REPLY;
            return 0;
        }
        if (!tls_plausible_start(p[0])) {
            /* The detail names only the first byte: the rest of the line may
             * not have arrived yet, and the transcript shows it anyway. */
            smtp__eventf(s, "cleartext_after_starttls", dir, m,
                         "%s sent 0x%02x ('%c'), not a TLS record, after the 220 to STARTTLS",
                         dir == SC_DIR_C2S ? "client" : "server", p[0],
                         sc_is_print(p[0]) ? p[0] : '.');
            if (dir == SC_DIR_C2S) {
                s->cleartext_after = true;
                s->cmode = CM_CMD;
            } else {
                s->smode = SM_REPLY;
            }
            return 0;
        }
        smtp__add_note(s, dir, SMTP_L_TLS, m, "[TLS from here on]");
    }
    if (!s->tls)
        s->tls = tls_conn_new(&s->info.events, s->cert_cache);
    if (s->tls)
        tls_conn_feed(s->tls, dir, p, n, m);
    s->info.tls_bytes[dir] += n;
    return n;
}

/* Feeds client bytes in the current mode. */
static void smtp__feed_client(struct smtp_session *s, const uint8_t *p, size_t n,
                              const struct sc_meta *m);

/* ---- line assembly (both directions) ---- */

static void smtp__server_line(struct smtp_session *s, const uint8_t *l, size_t n, uint64_t total,
                              const struct sc_meta *m, bool incomplete);

static void smtp__lb_append(struct smtp_session *s, struct smtp__linebuf *lb, const uint8_t *p,
                            size_t n)
{
    if (n == 0)
        return;
    if (!lb->buf) {
        lb->buf = malloc(s->lim.line_keep);
        if (!lb->buf)
            return;
    }
    size_t room = s->lim.line_keep - lb->len;
    size_t k = n < room ? n : room;
    memcpy(lb->buf + lb->len, p, k);
    lb->len += (uint32_t)k; /* k <= room <= line_keep */
    lb->total += n;
    lb->last = p[n - 1];
}

/* The line is over: its buffer goes (a session whose lines once arrived
 * in pieces does not keep line_keep bytes a direction for its life). */
static void smtp__lb_reset(struct smtp__linebuf *lb)
{
    free(lb->buf);
    lb->buf = NULL;
    lb->len = 0;
    lb->total = 0;
    lb->last = 0;
}

static void smtp__dispatch(struct smtp_session *s, enum sc_dir dir, const uint8_t *l, size_t n,
                           uint64_t total, const struct sc_meta *m, bool incomplete)
{
    if (dir == SC_DIR_C2S)
        smtp__client_line(s, l, n, total, m, incomplete);
    else
        smtp__server_line(s, l, n, total, m, incomplete);
}

/* Consumes bytes up to and including the next LF; dispatches the line. */
static size_t smtp__take_line(struct smtp_session *s, enum sc_dir dir, const uint8_t *p, size_t n,
                              const struct sc_meta *m)
{
    struct smtp__linebuf *lb = &s->lb[dir];
    const uint8_t *nl = memchr(p, '\n', n);
    if (!nl) {
        smtp__lb_append(s, lb, p, n);
        if ((s->flags & SMTP_F_PROBE) && s->verdict == 0 && lb->total > SMTP_PROBE_LINE_MAX)
            s->verdict = -1;
        return n;
    }
    size_t k = (size_t)(nl - p);
    const uint8_t *line;
    size_t len;
    uint64_t total;
    bool cr;
    if (lb->total == 0) {
        line = p;
        len = k < s->lim.line_keep ? k : s->lim.line_keep;
        total = k;
        cr = k > 0 && p[k - 1] == '\r';
    } else {
        smtp__lb_append(s, lb, p, k);
        line = lb->buf ? lb->buf : p;
        len = lb->buf ? lb->len : 0;
        total = lb->total;
        cr = lb->last == '\r';
    }
    /* The probe's line limit counts the bytes before the LF however they
     * arrived: fed without their LF they give up above, so a line that ends
     * in this feed must too, or the verdict would depend on segmentation. */
    if ((s->flags & SMTP_F_PROBE) && s->verdict == 0 && total > SMTP_PROBE_LINE_MAX) {
        s->verdict = -1;
        smtp__lb_reset(lb);
        return k + 1;
    }
    if (cr) {
        total--;
        if (len > total)
            len = (size_t)total;
    } else {
        smtp__event(s, "bare_lf", dir, m, "line ended by LF without CR");
    }
    smtp__dispatch(s, dir, line, len, total, m, false);
    smtp__lb_reset(lb);
    return k + 1;
}

static void smtp__feed_client(struct smtp_session *s, const uint8_t *p, size_t n,
                              const struct sc_meta *m)
{
    while (n > 0 && s->verdict >= 0) {
        size_t used = n;
        switch (s->cmode) {
        case CM_CMD:
        case CM_AUTH:
            used = smtp__take_line(s, SC_DIR_C2S, p, n, m);
            break;
        case CM_HOLD:
            smtp__hold_bytes(s, p, n, m);
            break;
        case CM_BODY:
            used = smtp__body(s, p, n, m);
            break;
        case CM_BDAT: {
            used = n < s->bdat_left ? n : (size_t)s->bdat_left;
            s->bdat_left -= used;
            if (s->bdat_left == 0)
                smtp__bdat_done(s, m);
            break;
        }
        case CM_TLS:
            used = smtp__tls(s, SC_DIR_C2S, p, n, m);
            break;
        case CM_OPAQUE:
            break;
        }
        p += used;
        n -= used;
    }
}

/* ---- server side ---- */

/* Parses "x.y.z" (RFC 3463 2) at the start of t; copies it to out. */
static void smtp__enhanced(const uint8_t *t, size_t n, char out[SMTP_ENH_SIZE])
{
    out[0] = 0;
    if (n < 5 || (t[0] != '2' && t[0] != '4' && t[0] != '5') || t[1] != '.')
        return;
    size_t i = 2, d = 0;
    while (i < n && sc_is_digit(t[i]) && d < 3)
        i++, d++;
    if (d == 0 || i >= n || t[i] != '.')
        return;
    i++;
    d = 0;
    while (i < n && sc_is_digit(t[i]) && d < 3)
        i++, d++;
    if (d == 0 || (i < n && !sc_is_wsp(t[i])))
        return;
    memcpy(out, t, i);
    out[i] = 0;
}

/* Inlined, so that the keyword's length is a constant. */
static inline bool smtp__is_kw(const uint8_t *t, size_t n, const char *kw)
{
    size_t k = strlen(kw);
    if (n < k || (n > k && !sc_is_wsp(t[k])))
        return false;
    for (size_t i = 0; i < k; i++)
        if (sc_to_upper(t[i]) != (uint8_t)kw[i])
            return false;
    return true;
}

/* Keeps reply line nkept (cut at line_keep with its code).  The table of kept
 * lines grows by doubling (4 first: most replies have one line) up to
 * reply_lines_max.  On OOM the line is counted, not kept. */
static void smtp__rep_keep(struct smtp_session *s, const uint8_t *p, size_t n)
{
    struct smtp__lines *r = s->rep.k;
    if (!r && (r = s->rep.k = calloc(1, sizeof(*r))) == NULL)
        return; /* OOM: the line is not kept */
    if (r->nkept >= s->lim.reply_lines_max)
        return;
    if (r->nkept == r->nkept_alloc) {
        size_t want = r->nkept_alloc ? (size_t)r->nkept_alloc * 2 : 4;
        if (want > s->lim.reply_lines_max)
            want = s->lim.reply_lines_max;
        struct smtp__kept *v = realloc(r->kept, want * sizeof(*v));
        if (!v)
            return;
        r->kept = v;
        r->nkept_alloc = (uint32_t)want;
    }
    size_t at = r->text.len; /* n <= line_keep: the line was cut as it was read */
    if (!sc_buf_append(&r->text, p, n) || !sc_buf_putc(&r->text, 0)) {
        r->text.len = at; /* OOM: not kept */
        if (r->text.data)
            r->text.data[at] = 0;
        return;
    }
    r->kept[r->nkept].off = (uint32_t)at;
    r->kept[r->nkept].len = (uint32_t)n;
    r->nkept++;
}

/* Kept line i of the reply being read. */
static inline const uint8_t *smtp__rep_line(const struct smtp_session *s, size_t i, size_t *len)
{
    *len = s->rep.k->kept[i].len;
    return s->rep.k->text.data + s->rep.k->kept[i].off;
}

/* What an idle session holds on to between replies: most replies have one
 * line; the bytes of a longer one (64 lines of 1 KiB at most) are given
 * back once read. */
#define SMTP_REP_TEXT_IDLE 1024
#define SMTP_REP_LINES_IDLE 16

/* After a reply: gives back room beyond the idle sizes, and all of it once
 * the first EHLO reply was read (no line is kept after it). */
static void smtp__rep_trim(struct smtp_session *s)
{
    struct smtp__lines *r = s->rep.k;
    if (s->rep.open || !r)
        return;
    bool done = s->info.ehlo_code != 0;
    if (r->text.alloc > SMTP_REP_TEXT_IDLE || done)
        sc_buf_free(&r->text);
    if (r->nkept_alloc > SMTP_REP_LINES_IDLE || done) {
        free(r->kept);
        r->kept = NULL;
        r->nkept_alloc = 0;
        r->nkept = 0;
    }
    if (done) {
        free(r);
        s->rep.k = NULL;
    }
}

static void smtp__rep_reset(struct smtp_session *s)
{
    s->rep.open = false;
    s->rep.code = 0;
    s->rep.nlines = 0;
    if (s->rep.k) {
        s->rep.k->nkept = 0;
        sc_buf_reset(&s->rep.k->text);
    }
    s->rep.starttls_kw = false;
    s->rep.enh[0] = 0;
}

/* Some reply codes answer one command only (354 DATA, 334 and 235 AUTH, 221
 * QUIT).  When such a reply meets another command at the head of the queue
 * and the command it answers is further back, the replies of the commands in
 * between never came (or were lost): drop them so pairing stays right. */
static void smtp__realign(struct smtp_session *s, uint16_t code, const struct sc_meta *m)
{
    enum smtp_verb want[2] = {SMTP_V__COUNT, SMTP_V__COUNT};
    switch (code) {
    case 354:
        want[0] = SMTP_V_DATA;
        break;
    case 334:
    case 235:
        want[0] = SMTP_V_AUTH;
        want[1] = SMTP_V_AUTH_RESPONSE;
        break;
    case 221:
        want[0] = SMTP_V_QUIT;
        break;
    default:
        return;
    }
    for (size_t i = 0; i < s->pq_len; i++) {
        enum smtp_verb v = smtp__pq_at(s, i)->verb;
        if (v != want[0] && v != want[1])
            continue;
        if (i > 0 && !s->desync)
            smtp__eventf(s, "reply_missing", SC_DIR_S2C, m,
                         "no reply to %s before the %03u that answers %s",
                         smtp_verb_name(smtp__pq_at(s, 0)->verb), code, smtp_verb_name(v));
        for (size_t k = 0; k < i; k++)
            smtp__pop(s);
        return;
    }
}

/* Keeps the keyword lines of the first EHLO reply.  One allocation holds
 * them all: the table, then their bytes (each NUL-terminated), which the
 * table points into (freed whole with the session). */
static void smtp__keywords(struct smtp_session *s)
{
    struct smtp_info *in = &s->info;
    const struct smtp__lines *r = s->rep.k;
    if (in->ehlo_keywords || !r || r->nkept < 2)
        return;
    size_t k = r->nkept - 1, bytes = 0;
    for (size_t i = 0; i < k; i++)
        bytes += r->kept[i + 1].len + 1;
    struct smtp_text *v = malloc(k * sizeof(*v) + bytes);
    if (!v)
        return;
    uint8_t *p = (uint8_t *)(v + k);
    for (size_t i = 0; i < k; i++) {
        size_t len;
        const uint8_t *l = smtp__rep_line(s, i + 1, &len);
        v[i].data = p;
        v[i].len = len;
        if (len)
            memcpy(p, l, len);
        p[len] = 0;
        p += len + 1;
    }
    in->ehlo_keywords = v;
    in->n_ehlo_keywords = k;
}

/* A complete reply: match it to the command it answers. */
static void smtp__reply_done(struct smtp_session *s, const struct sc_meta *m)
{
    struct smtp_info *in = &s->info;
    uint16_t code = s->rep.code;
    in->replies++;
    if (!s->greeted && (!in->midstream || (s->pq_len == 0 && code == 220))) {
        s->greeted = true;
        in->banner_complete = !s->closed_reply;
        in->banner_code = code;
        in->banner_lines = s->rep.nlines;
        return;
    }
    s->greeted = true;
    struct sc_buf replay;
    sc_buf_init(&replay, 0);
    if (s->cmode == CM_BODY && s->pq_len == 0 && s->msg->lax_seen && !s->msg->lax_dead) {
        /* The server answered a message whose data had no CRLF.CRLF: it took
         * the bare-LF "." line as the end.  What followed it were commands. */
        smtp__eventf(s, "lax_end_of_data", SC_DIR_C2S, m,
                     "the server ended the message at a bare-LF \".\" line (reply %03u), "
                     "not at CRLF.CRLF",
                     code);
        struct smtp__msg *g = s->msg;
        struct sc_meta at = g->lax_meta;
        replay = g->lax;
        sc_buf_init(&g->lax, 0);
        smtp__end_body(s, g->lax_body_len, true, &at);
    }
    if (s->pq_len == 0) {
        if (!s->desync)
            smtp__eventf(s, "unexpected_reply", SC_DIR_S2C, m,
                         "reply %03u with no command to answer", code);
        smtp__replay(s, &replay);
        return;
    }
    smtp__realign(s, code, m);
    struct smtp__pending e = *smtp__pq_at(s, 0);
    smtp__pop(s);
    bool ok = code >= 200 && code < 300;
    switch (e.verb) {
    case SMTP_V_EHLO:
    case SMTP_V_LHLO:
        if (in->ehlo_code == 0) {
            in->ehlo_code = code;
            in->ehlo_meta = e.meta;
            in->ehlo_complete = !s->cut_reply && !s->closed_reply;
            if (s->rep.k && s->rep.k->nkept > 0) {
                size_t len;
                const uint8_t *l = smtp__rep_line(s, 0, &len);
                /* "%03u " without printf: a reply code has three digits */
                char c3[4] = {(char)('0' + code / 100 % 10), (char)('0' + code / 10 % 10),
                              (char)('0' + code % 10), ' '};
                smtp__text_set(s, &in->ehlo_reply, (const uint8_t *)c3, sizeof(c3), l, len,
                               s->lim.line_keep);
            }
            if (code == 250) {
                in->starttls_offered = in->starttls_offered || s->rep.starttls_kw;
                smtp__keywords(s);
            }
        }
        break;
    case SMTP_V_RCPT:
        if (ok)
            in->rcpt_accepted++;
        break;
    case SMTP_V_DATA:
        if (e.holding) {
            if (code == 354) {
                smtp__release(s, CM_BODY, m);
            } else {
                smtp__release(s, CM_CMD, m);
            }
        }
        break;
    case SMTP_V_END_OF_DATA:
        if (ok)
            in->messages_accepted++;
        break;
    case SMTP_V_BDAT:
        if (ok && e.last)
            in->messages_accepted++;
        break;
    case SMTP_V_STARTTLS:
    case SMTP_V_X_ANONYMOUSTLS:
        s->starttls_replied = true;
        s->starttls_code = code;
        if (code == 220) {
            s->smode = SM_TLS;
            s->s_peek = true;
        }
        if (e.holding)
            smtp__release(s, code == 220 ? CM_TLS : CM_CMD, m);
        break;
    case SMTP_V_AUTH:
    case SMTP_V_AUTH_RESPONSE:
        if (code == 235)
            in->auth_success = true;
        if (code != 334)
            s->auth_pending = false;
        if (e.holding)
            smtp__release(s, code == 334 ? CM_AUTH : CM_CMD, m);
        break;
    default:
        break;
    }
    smtp__replay(s, &replay);
}

static void smtp__server_line(struct smtp_session *s, const uint8_t *l, size_t n, uint64_t total,
                              const struct sc_meta *m, bool incomplete)
{
    struct smtp__reply *r = &s->rep;
    bool after_gap = s->lb[SC_DIR_S2C].resync;
    s->lb[SC_DIR_S2C].resync = false;
    bool has_code = n >= 3 && sc_is_digit(l[0]) && sc_is_digit(l[1]) && sc_is_digit(l[2]);
    uint16_t code =
        has_code ? (uint16_t)((l[0] - '0') * 100 + (l[1] - '0') * 10 + (l[2] - '0')) : 0;
    if ((s->flags & SMTP_F_PROBE) && s->verdict == 0 && !s->greeted && !r->open && code != 220) {
        s->verdict = -1;
        return;
    }
    if (after_gap && !has_code) {
        smtp__add_note_u(s, SC_DIR_S2C, SMTP_L_OTHER, m, "[partial line after a gap: ", total,
                         " bytes]");
        return;
    }
    bool cont = has_code && n > 3 && l[3] == '-';
    if (has_code && n > 3 && l[3] != ' ' && l[3] != '-')
        smtp__event_bytes(s, "reply_separator", SC_DIR_S2C, m,
                          "no space or hyphen after the reply code: ", l, n);
    if (has_code && (l[0] < '2' || l[0] > '5' || l[1] > '5'))
        smtp__eventf(s, "reply_code_invalid", SC_DIR_S2C, m,
                     "reply code %03u is outside RFC 5321's 2yz-5yz range", code);
    if (!has_code) {
        smtp__event_bytes(s, "reply_malformed", SC_DIR_S2C, m,
                          "server line without a reply code: ", l, n);
        if (!r->open) {
            /* Stray text outside a reply: show it, match nothing. */
            smtp__add_line(s, SC_DIR_S2C, SMTP_L_REPLY, SMTP_V_UNKNOWN, 0, true, l, n, total, m,
                           incomplete, NULL);
            return;
        }
        cont = true; /* inside a multi-line reply: keep waiting for its end */
    } else if (r->open && code != r->code) {
        smtp__eventf(s, "reply_code_mismatch", SC_DIR_S2C, m,
                     "multi-line reply %03u continued with %03u", r->code, code);
    }
    if (!r->open) {
        smtp__rep_reset(s);
        r->open = true;
        r->code = code;
    }
    const uint8_t *text = n > 4 ? l + 4 : l + n;
    size_t tlen = n > 4 ? n - 4 : 0;
    if (!has_code) {
        text = l;
        tlen = n;
    }
    bool banner = false;
    if (r->nlines == 0) {
        smtp__enhanced(text, tlen, r->enh);
        if (!s->greeted && s->info.banner.len == 0 && (!s->info.midstream || code == 220)) {
            banner = true;
            s->info.banner_meta = *m;
        }
    } else if (smtp__is_kw(text, tlen, "STARTTLS") || smtp__is_kw(text, tlen, "X-ANONYMOUSTLS")) {
        r->starttls_kw = true;
    }
    /* Only the first EHLO reply's lines are read back (smtp__keywords, the
     * ehlo_reply field), and a greeting is never one (but midstream). */
    if (s->info.ehlo_code == 0 && (s->greeted || s->info.midstream))
        smtp__rep_keep(s, text, tlen);
    r->nlines++;
    bool last = !cont || incomplete;
    char enh[SMTP_ENH_SIZE];
    smtp__enhanced(text, tlen, enh);
    smtp__add_line(s, SC_DIR_S2C, SMTP_L_REPLY, SMTP_V_UNKNOWN, code, last, l, n, total, m,
                   incomplete, enh[0] ? enh : NULL);
    if (banner)
        smtp__text_set(s, &s->info.banner, NULL, 0, l, n, s->lim.line_keep);
    if (total + 2 > SMTP_CMD_LINE_MAX)
        smtp__eventf(s, "line_too_long", SC_DIR_S2C, m,
                     "reply line of %llu bytes (RFC 5321 limit: 512 with CRLF)",
                     (unsigned long long)total + 2);
    if (incomplete)
        smtp__event(s, "reply_incomplete", SC_DIR_S2C, m, "the server's reply was never finished");
    if (last) {
        r->open = false;
        smtp__reply_done(s, m);
        smtp__rep_trim(s);
    }
}

static void smtp__feed_server(struct smtp_session *s, const uint8_t *p, size_t n,
                              const struct sc_meta *m)
{
    while (n > 0 && s->verdict >= 0) {
        size_t used = n;
        switch (s->smode) {
        case SM_REPLY:
            used = smtp__take_line(s, SC_DIR_S2C, p, n, m);
            break;
        case SM_TLS:
            used = smtp__tls(s, SC_DIR_S2C, p, n, m);
            break;
        case SM_OPAQUE:
            break;
        }
        p += used;
        n -= used;
    }
}

/* ---- public feeding ---- */

/* Bytes of a proxy handshake; once the tunnel is open, what followed the
 * handshake in each direction is the SMTP dialogue (the server's greeting
 * comes first). */
static enum smtp_feed_result smtp__proxy_feed(struct smtp_session *s, enum sc_dir dir,
                                              const uint8_t *p, size_t n, const struct sc_meta *m)
{
    switch (proxy_feed(s->proxy, dir, p, n)) {
    case PROXY_MORE:
        return SMTP_OK;
    case PROXY_DONE:
        break;
    default:
        s->verdict = -1;
        return SMTP_NOT_SMTP;
    }
    char desc[sizeof(s->proxy->target) + 32]; /* + the kind's name and " to " */
    int dn =
        snprintf(desc, sizeof(desc), "%s to %s", proxy_kind_name(s->proxy->kind), s->proxy->target);
    smtp__text_set(s, &s->info.proxy, NULL, 0, (const uint8_t *)desc,
                   dn < 0                      ? 0
                   : (size_t)dn < sizeof(desc) ? (size_t)dn
                                               : sizeof(desc) - 1,
                   sizeof(desc));
    s->tunnel = true;
    /* What the proxy reader kept past the handshake, in the order it was
     * sent: the other direction's bytes came in earlier feeds, this
     * direction's are the rest of this one.  (Server first whatever the
     * direction made a session read the same bytes differently when the
     * handshake ended inside a segment than one byte at a time.) */
    enum sc_dir order[2] = {dir == SC_DIR_C2S ? SC_DIR_S2C : SC_DIR_C2S, dir};
    for (int i = 0; i < 2 && s->verdict >= 0; i++) {
        const uint8_t *b;
        size_t k;
        proxy_leftover(s->proxy, order[i], &b, &k);
        if (!k)
            continue;
        if (order[i] == SC_DIR_C2S)
            smtp__feed_client(s, b, k, m);
        else
            smtp__feed_server(s, b, k, m);
    }
    proxy_free(s->proxy); /* the handshake's reader is done with */
    free(s->proxy);
    s->proxy = NULL;
    return s->verdict < 0 ? SMTP_NOT_SMTP : SMTP_OK;
}

enum smtp_feed_result smtp_feed(struct smtp_session *s, enum sc_dir dir, uint64_t off,
                                const uint8_t *p, size_t n, const struct sc_meta *m)
{
    if (s->closed || dir > SC_DIR_S2C || s->verdict < 0)
        return s->verdict < 0 ? SMTP_NOT_SMTP : SMTP_OK;
    if (off > s->off[dir]) {
        if (smtp_gap(s, dir, off - s->off[dir], m) != SMTP_OK)
            return SMTP_NOT_SMTP;
    } else if (off < s->off[dir]) {
        uint64_t skip = s->off[dir] - off;
        if (skip >= n)
            return SMTP_OK;
        p += skip;
        n -= (size_t)skip;
    }
    s->off[dir] += n;
    s->info.bytes[dir] += n;
    if (dir == SC_DIR_C2S && (s->flags & SMTP_F_PROBE) && s->verdict == 0 && !s->greeted &&
        s->lb[SC_DIR_S2C].total == 0 && !s->rep.open && !s->proxy && !s->tunnel) {
        /* The client spoke first: not SMTP, unless it is opening a proxy
         * tunnel that SMTP then runs through. */
        s->proxy = malloc(sizeof(*s->proxy));
        if (!s->proxy) {
            s->verdict = -1;
            return SMTP_NOT_SMTP;
        }
        proxy_init(s->proxy, s->lim.proxy_max);
    }
    if (s->proxy)
        return smtp__proxy_feed(s, dir, p, n, m);
    if (dir == SC_DIR_C2S)
        smtp__feed_client(s, p, n, m);
    else
        smtp__feed_server(s, p, n, m);
    return s->verdict < 0 ? SMTP_NOT_SMTP : SMTP_OK;
}

enum smtp_feed_result smtp_gap(struct smtp_session *s, enum sc_dir dir, uint64_t len,
                               const struct sc_meta *m)
{
    if (s->closed || dir > SC_DIR_S2C || len == 0)
        return s->verdict < 0 ? SMTP_NOT_SMTP : SMTP_OK;
    if ((s->flags & SMTP_F_PROBE) && s->verdict == 0) {
        s->verdict = -1; /* cannot tell what it was */
        return SMTP_NOT_SMTP;
    }
    struct smtp_info *in = &s->info;
    s->off[dir] += len;
    in->gaps++;
    in->gap_bytes += len;
    smtp__eventf(s, "gap", dir, m, "%llu bytes missing from the capture", (unsigned long long)len);
    smtp__add_note_u(s, dir, SMTP_L_GAP, m, "[", len, " bytes missing from the capture]");
    if (dir == SC_DIR_C2S) {
        if (s->cmode == CM_HOLD)
            smtp__release_by_content(s, NULL, 0, m);
        switch (s->cmode) {
        case CM_CMD:
        case CM_AUTH:
        case CM_HOLD:
            smtp__lb_reset(&s->lb[dir]);
            s->lb[dir].resync = true;
            s->desync = true;
            if (s->cmode == CM_AUTH)
                s->cmode = CM_CMD;
            break;
        case CM_BODY:
            s->msg->dot = DOT_MID;
            s->msg->body_len += len;
            break;
        case CM_BDAT:
            if (len < s->bdat_left) {
                s->bdat_left -= len;
            } else {
                s->bdat_left = 0;
                smtp__bdat_done(s, m);
                s->lb[dir].resync = true;
                s->desync = true;
            }
            break;
        case CM_TLS:
            if (s->c_peek)
                s->c_peek = false;
            if (s->tls)
                tls_conn_gap(s->tls, dir, len);
            in->tls_bytes[dir] += len;
            break;
        case CM_OPAQUE:
            break;
        }
    } else {
        if (s->smode == SM_REPLY && s->rep.open && s->rep.code && s->greeted && s->pq_len > 0) {
            /* A multi-line reply cut by the gap still answered the command at
             * the head of the queue; what follows answers the next one. */
            smtp__eventf(s, "reply_cut", dir, m, "%03u reply cut after %u lines by missing bytes",
                         s->rep.code, s->rep.nlines);
            s->cut_reply = true;
            smtp__reply_done(s, m);
            s->cut_reply = false;
        }
        if (s->smode == SM_REPLY) {
            smtp__lb_reset(&s->lb[dir]);
            s->lb[dir].resync = true;
            smtp__rep_reset(s);
            s->desync = true;
        } else if (s->smode == SM_TLS) {
            s->s_peek = false;
            if (s->tls)
                tls_conn_gap(s->tls, dir, len);
            in->tls_bytes[dir] += len;
        }
    }
    return SMTP_OK;
}

void smtp_fin(struct smtp_session *s, enum sc_dir dir, const struct sc_meta *m)
{
    if (s->closed || dir > SC_DIR_S2C || s->fin[dir])
        return;
    s->fin[dir] = true;
    /* No reply will come: read held bytes by their content.  Replaying them
     * may hold the rest again (another DATA, AUTH or STARTTLS in them), so
     * repeat while that makes progress. */
    while (dir == SC_DIR_C2S && s->cmode == CM_HOLD) {
        size_t before = s->held ? s->held->payload : 0;
        smtp__release_by_content(s, NULL, 0, m);
        if (s->cmode == CM_HOLD && (s->held ? s->held->payload : 0) >= before)
            break;
    }
    struct smtp__linebuf *lb = &s->lb[dir];
    bool line_mode =
        dir == SC_DIR_C2S ? (s->cmode == CM_CMD || s->cmode == CM_AUTH) : s->smode == SM_REPLY;
    if (line_mode && lb->total > 0 && s->verdict >= 0) {
        smtp__dispatch(s, dir, lb->buf ? lb->buf : (const uint8_t *)"", lb->buf ? lb->len : 0,
                       lb->total, m, true);
        smtp__lb_reset(lb);
    }
}

/* Puts the transcript in capture order (frame number), keeping the order of
 * lines within a frame.  Held client bytes are read only when the reply that
 * decides their meaning arrives, so they were appended late. */
static void smtp__sort_transcript(struct smtp_info *in)
{
    size_t n = in->n_transcript;
    bool sorted = true;
    for (size_t i = 1; i < n && sorted; i++)
        sorted = in->transcript[i - 1].meta.frame <= in->transcript[i].meta.frame;
    if (sorted)
        return;
    struct smtp_line *tmp = malloc(n * sizeof(*tmp));
    if (!tmp)
        return; /* logical order is still a valid order */
    struct smtp_line *a = in->transcript, *b = tmp;
    for (size_t w = 1; w < n; w *= 2) {
        for (size_t lo = 0; lo < n; lo += 2 * w) {
            size_t mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n;
            size_t i = lo, j = mid, k = lo;
            while (i < mid && j < hi)
                b[k++] = a[j].meta.frame < a[i].meta.frame ? a[j++] : a[i++];
            while (i < mid)
                b[k++] = a[i++];
            while (j < hi)
                b[k++] = a[j++];
        }
        struct smtp_line *t = a;
        a = b;
        b = t;
    }
    if (a != in->transcript)
        memcpy(in->transcript, a, n * sizeof(*a));
    free(tmp);
}

static void smtp__finish_results(struct smtp_session *s)
{
    struct smtp_info *in = &s->info;
    if (!in->starttls_attempted) {
        in->starttls = in->starttls_offered ? SMTP_TLS_NOT_ATTEMPTED : SMTP_TLS_NOT_OFFERED;
    } else if (!s->starttls_replied) {
        in->starttls = SMTP_TLS_NO_REPLY;
    } else if (s->starttls_code != 220) {
        in->starttls = SMTP_TLS_REFUSED;
    } else if (s->cleartext_after) {
        in->starttls = SMTP_TLS_CLEARTEXT_AFTER_220;
    } else if (s->tls && tls_conn_outcome(s->tls) == TLS_OUT_ESTABLISHED) {
        in->starttls = SMTP_TLS_ESTABLISHED;
    } else {
        in->starttls = SMTP_TLS_ACCEPTED;
    }
    if (s->tls) {
        const struct tls_info *ti = tls_conn_info(s->tls);
        in->tls = ti;
        in->tls_outcome = tls_conn_outcome(s->tls);
        in->tls_records[0] = ti->records[0];
        in->tls_records[1] = ti->records[1];
    }
    double c = 1.0;
    if (in->midstream)
        c = 0.6;
    if (in->gaps && c > 0.7)
        c = 0.7;
    if (s->desync && c > 0.6)
        c = 0.6;
    in->confidence = c;
}

void smtp_close(struct smtp_session *s, const struct sc_meta *m)
{
    if (s->closed)
        return;
    smtp_fin(s, SC_DIR_C2S, m);
    smtp_fin(s, SC_DIR_S2C, m);
    if (s->rep.open) {
        smtp__event(s, "reply_incomplete", SC_DIR_S2C, m,
                    "a multi-line reply never reached its final line");
        s->rep.open = false;
        s->closed_reply = true;
        smtp__reply_done(s, m);
        s->closed_reply = false;
    }
    for (size_t i = 0; i < s->pq_len; i++) {
        const struct smtp__pending *e = smtp__pq_at(s, i);
        if (e->verb == SMTP_V_END_OF_DATA && !s->info.eod_unanswered) {
            s->info.eod_unanswered = true;
            s->info.eod_meta = e->meta;
        }
    }
    if (s->cmode == CM_BODY && s->msg->lax_seen)
        smtp__eventf(s, "data_incomplete", SC_DIR_C2S, m,
                     "message body ended after %llu bytes without CRLF.CRLF (a bare-LF \".\" "
                     "line ends it at byte %llu for servers that accept one)",
                     (unsigned long long)s->msg->body_len,
                     (unsigned long long)s->msg->lax_body_len);
    else if (s->cmode == CM_BODY)
        smtp__eventf(s, "data_incomplete", SC_DIR_C2S, m,
                     "message body ended after %llu bytes without CRLF.CRLF",
                     (unsigned long long)s->msg->body_len);
    if (s->cmode == CM_BDAT)
        smtp__eventf(s, "data_incomplete", SC_DIR_C2S, m, "BDAT chunk ended %llu bytes short",
                     (unsigned long long)s->bdat_left);
    s->closed = true;
    smtp__sort_transcript(&s->info);
    smtp__finish_results(s);
}
