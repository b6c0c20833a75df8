/* fuzz_smtp.c - libFuzzer target for the SMTP session engine (dissect/smtp.h),
 * driven from both directions as the reassembler would drive it.
 *
 * Input:
 *   byte 0   mode: bit 0 SMTP_F_PROBE|SMTP_F_MIDSTREAM, bit 1
 *            SMTP_F_IMPLICIT_TLS, bit 2 small limits (so the limit paths are
 *            reached by small inputs), bit 3 also check incrementality: the
 *            same chunks fed again one byte at a time must give the same
 *            dialogue, bit 4 SMTP_F_MIDSTREAM alone, bit 5 also check the
 *            two body scans: the same chunks fed to a session with no_avx2
 *            must give the same results, frames included
 *   chunks   h, len, then for a feed `len` bytes:
 *              h bit 0     direction (0 client to server, 1 server to client)
 *              h bits 1-3  operation: 0-4 feed, 5 gap, 6 FIN, 7 close
 *              feed:  h bits 4-5 where: 2 re-sends the last 1 + (h >> 6)
 *                     bytes' offset (an overlap the engine skips), 3 starts
 *                     1 + (h >> 6) bytes ahead (an implicit gap), else in
 *                     order
 *              gap:   len | (h >> 4) << 8 bytes are missing
 *   Settings are smtp_settings_defaults() with keep_transcript on.
 *
 * Checks what smtp.h promises about the results: the transcript and kept
 * lines within their limits, every string and line readable.
 */
#include <string.h>

#include "dissect/smtp.h"
#include "fuzz/fuzz.h"

/* Small limits, each well under a default, so short inputs overflow them. */
static void fz_small_limits(struct smtp_settings *set)
{
    set->line_keep = 64;
    set->pending_max = 4;
    set->hold_max = 256;
    set->transcript_max = 24;
    set->reply_lines_max = 3;
    set->proxy_max = 128;
    set->lax_replay_max = 64;
}

/* Feeds every chunk of the input after the mode byte; with `bytewise`, each
 * feed one byte at a time (same offsets, same frame).  Returns true if a
 * probing session gave up (SMTP_NOT_SMTP). */
static bool fz_run(struct smtp_session *s, const uint8_t *data, size_t size, bool bytewise)
{
    struct fz_in in;
    fz_in_init(&in, data, size);
    uint64_t cur[2] = {0, 0}; /* where each direction is, as the engine counts */
    uint64_t frame = 0;
    uint8_t h, len;
    bool gave_up = false;
    while (fz_u8(&in, &h) && fz_u8(&in, &len)) {
        enum sc_dir dir = (h & 1) ? SC_DIR_S2C : SC_DIR_C2S;
        unsigned op = (h >> 1) & 7;
        frame++;
        struct sc_meta m = {frame, (sc_time)frame * 1000000};
        if (op <= 4) {
            const uint8_t *p;
            size_t n = fz_take(&in, len, &p);
            uint64_t off = cur[dir];
            uint64_t k = 1u + (h >> 6);
            if (((h >> 4) & 3) == 2)
                off -= k < off ? k : off;
            else if (((h >> 4) & 3) == 3)
                off += k;
            if (bytewise) {
                for (size_t i = 0; i < n; i++)
                    gave_up |= smtp_feed(s, dir, off + i, p + i, 1, &m) == SMTP_NOT_SMTP;
                if (n == 0)
                    gave_up |= smtp_feed(s, dir, off, p, 0, &m) == SMTP_NOT_SMTP;
            } else {
                gave_up |= smtp_feed(s, dir, off, p, n, &m) == SMTP_NOT_SMTP;
            }
            if (off + n > cur[dir])
                cur[dir] = off + n;
        } else if (op == 5) {
            uint64_t glen = len | (uint64_t)(h >> 4) << 8;
            gave_up |= smtp_gap(s, dir, glen, &m) == SMTP_NOT_SMTP;
            cur[dir] += glen;
        } else if (op == 6) {
            smtp_fin(s, dir, &m);
        } else {
            smtp_close(s, &m);
        }
    }
    frame++;
    struct sc_meta m = {frame, (sc_time)frame * 1000000};
    smtp_close(s, &m);
    return gave_up;
}

/* A result field: its bytes and the NUL after them. */
static void fz_read_text(const struct smtp_text *v, uint32_t *sum)
{
    for (size_t i = 0; i <= v->len; i++)
        *sum = *sum * 31u + v->data[i];
}

/* Reads every result and checks the documented limits. */
static uint32_t fz_check_info(const struct smtp_session *s, const struct smtp_settings *set)
{
    const struct smtp_info *in = smtp_session_info(s);
    uint32_t sum = 0;
    fz_read_text(&in->banner, &sum);
    fz_read_text(&in->helo, &sum);
    fz_read_text(&in->ehlo_reply, &sum);
    fz_read_text(&in->auth_mech, &sum);
    fz_read_text(&in->mail_from, &sum);
    fz_read_text(&in->last_command, &sum);
    fz_read_text(&in->proxy, &sum);
    for (size_t i = 0; i < in->n_ehlo_keywords; i++)
        fz_read_text(&in->ehlo_keywords[i], &sum);
    FZ_CHECK((unsigned)in->starttls < SMTP_TLS__COUNT);
    FZ_CHECK(smtp_starttls_name(in->starttls) != NULL);
    FZ_CHECK((unsigned)in->last_command_verb < SMTP_V__COUNT);
    FZ_CHECK(smtp_verb_name(in->last_command_verb) != NULL);
    FZ_CHECK(in->confidence >= 0.0 && in->confidence <= 1.0);
    FZ_CHECK(in->n_transcript <= set->transcript_max);
    for (size_t i = 0; i < in->n_transcript; i++) {
        const struct smtp_line *l = &in->transcript[i];
        FZ_CHECK(l->dir == SC_DIR_C2S || l->dir == SC_DIR_S2C);
        FZ_CHECK((unsigned)l->verb < SMTP_V__COUNT);
        /* The packed enhanced code gives back the bytes it was read from:
         * after the reply code, or at the start of a line without one. */
        char enh[SMTP_ENH_SIZE];
        smtp_line_enh(l, enh);
        size_t el = strnlen(enh, sizeof(enh));
        FZ_CHECK(el < sizeof(enh));
        FZ_CHECK(el == 0 || l->text_len < 4 + el || memcmp(l->text + 4, enh, el) == 0 ||
                 memcmp(l->text, enh, el) == 0);
        /* Captured lines are cut at line_keep; an AUTH command line is our
         * redacted rendering of it instead (smtp.h: credentials never
         * leave the engine), bounded on its own. */
        bool captured =
            l->kind == SMTP_L_REPLY || (l->kind == SMTP_L_COMMAND && l->verb != SMTP_V_AUTH);
        if (captured) {
            FZ_CHECK(l->text_len <= l->len);
            FZ_CHECK(l->text_len <= set->line_keep);
        }
        for (uint32_t k = 0; k < l->text_len; k++)
            sum = sum * 31u + l->text[k];
    }
    const struct sc_events *ev = &in->events;
    FZ_CHECK(ev->n <= SC_EVENT_KINDS_MAX);
    for (size_t i = 0; i < ev->n; i++) {
        FZ_CHECK(ev->v[i].kind != NULL);
        if (ev->v[i].detail)
            FZ_CHECK(strlen(ev->v[i].detail) < SC_EVENT_DETAIL_MAX);
    }
    if (in->tls) {
        FZ_CHECK(memchr(in->tls->sni, 0, sizeof(in->tls->sni)) != NULL);
        FZ_CHECK(memchr(in->tls->ja3, 0, sizeof(in->tls->ja3)) != NULL);
        FZ_CHECK(in->tls->n_chain <= TLS_CHAIN_MAX);
    }
    (void)smtp_session_confirmed(s);
    return sum;
}

static bool fz_text_eq(const struct smtp_text *a, const struct smtp_text *b)
{
    return a->len == b->len && memcmp(a->data, b->data, a->len) == 0;
}

/* The dialogue as both runs must see it (segmentation-dependent results,
 * such as eod_split, events and frames, are left out). */
static void fz_same_dialogue(const struct smtp_info *a, const struct smtp_info *b)
{
    FZ_CHECK(fz_text_eq(&a->banner, &b->banner));
    FZ_CHECK(fz_text_eq(&a->helo, &b->helo));
    FZ_CHECK(fz_text_eq(&a->mail_from, &b->mail_from));
    FZ_CHECK(a->starttls == b->starttls);
    FZ_CHECK(a->commands == b->commands);
    FZ_CHECK(a->replies == b->replies);
    FZ_CHECK(a->rcpt_count == b->rcpt_count);
    FZ_CHECK(a->messages == b->messages);
    FZ_CHECK(a->bytes[0] == b->bytes[0] && a->bytes[1] == b->bytes[1]);
    FZ_CHECK(a->n_transcript == b->n_transcript);
    for (size_t i = 0; i < a->n_transcript; i++) {
        const struct smtp_line *x = &a->transcript[i], *y = &b->transcript[i];
        FZ_CHECK(x->dir == y->dir && x->kind == y->kind && x->verb == y->verb);
        FZ_CHECK(x->code == y->code && x->len == y->len && x->text_len == y->text_len);
        FZ_CHECK(x->text_len == 0 || memcmp(x->text, y->text, x->text_len) == 0);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t mode = data[0];
    unsigned flags = 0;
    if (mode & 1)
        flags |= SMTP_F_PROBE | SMTP_F_MIDSTREAM;
    if (mode & 2)
        flags |= SMTP_F_IMPLICIT_TLS;
    if (mode & 16)
        flags |= SMTP_F_MIDSTREAM;
    struct smtp_settings set;
    smtp_settings_defaults(&set);
    set.keep_transcript = true;
    if (mode & 4)
        fz_small_limits(&set);

    struct smtp_session *s = smtp_session_new(&set, flags);
    if (!s)
        return 0;
    bool gave_up = fz_run(s, data + 1, size - 1, false);
    (void)fz_check_info(s, &set);
    if (mode & 8) {
        struct smtp_session *t = smtp_session_new(&set, flags);
        if (t) {
            /* A probing session gives up at the same byte however it is fed;
             * what it counted after that does not matter (the caller drops
             * the session). */
            FZ_CHECK(fz_run(t, data + 1, size - 1, true) == gave_up);
            (void)fz_check_info(t, &set);
            if (!gave_up)
                fz_same_dialogue(smtp_session_info(s), smtp_session_info(t));
            smtp_session_free(t);
        }
    }
    if (mode & 32) {
        struct smtp_settings narrow = set;
        narrow.no_avx2 = true;
        struct smtp_session *t = smtp_session_new(&narrow, flags);
        if (t) {
            FZ_CHECK(fz_run(t, data + 1, size - 1, false) == gave_up);
            const struct smtp_info *a = smtp_session_info(s), *b = smtp_session_info(t);
            fz_same_dialogue(a, b);
            FZ_CHECK(a->max_header_line == b->max_header_line &&
                     a->max_header_meta.frame == b->max_header_meta.frame);
            FZ_CHECK(a->max_filename == b->max_filename &&
                     a->max_filename_meta.frame == b->max_filename_meta.frame);
            FZ_CHECK(a->events.n == b->events.n);
            smtp_session_free(t);
        }
    }
    smtp_session_free(s);
    return 0;
}
