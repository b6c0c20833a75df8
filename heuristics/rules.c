/* rules.c - detection rules over finished SMTP sessions (SIGNATURES.md). */
#include "heuristics/heur.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/ascii.h"
#include "common/buf.h"
#include "common/escape.h"
#include "common/str.h"

static const struct heur_rule_info heur__rules[HR__COUNT] = {
    [HR_BANNER_MASKED] =
        {"banner_masked", HEUR_MEDIUM,
         "220 greeting masked with '*' (all but 2 and 0, all of it, or SMTP/cmap___): inline "
         "SMTP inspection between the server and the capture",
         "A1, P2", "outside",
         "a capture on the server side (it sees the real banner); devices that mask with "
         "other characters or change the length; 'no mask-banner'"},
    [HR_EHLO_KEYWORD_MASKED] =
        {"ehlo_keyword_masked", HEUR_MEDIUM,
         "EHLO keyword lines replaced by X runs ending in a letter that counts up A, B, C...", "A4",
         "outside",
         "keywords deleted rather than masked (see starttls_stripped, inconsistent_server); "
         "server-side captures"},
    [HR_STARTTLS_STRIPPED] =
        {"starttls_stripped", HEUR_HIGH,
         "STARTTLS masked in the EHLO reply (XXXXXXXA) or as a command (XXXXXXXX, seen or "
         "echoed), deleted where the same server offers it in other sessions, or refused with "
         "454/501/bogus right after being offered: mail falls back to cleartext",
         "A3, A5, O1, O4", "outside or inside",
         "a deletion when no other session to the server shows STARTTLS; an 8-letter mask "
         "placed where CHUNKING or SMTPUTF8 usually sit; a 454 cannot be told from a server "
         "out of TLS resources (reported at confidence 0.55)"},
    [HR_COMMAND_MASKED] =
        {"command_masked", HEUR_MEDIUM,
         "a client verb replaced by X's: seen as sent (server side), echoed in the server's "
         "error, or basic verbs (HELO, QUIT...) answered 'unrecognized'",
         "A5, A6", "inside, or outside by its effects",
         "client-side captures where the server neither echoes the verb nor rejects a verb "
         "every server knows"},
    [HR_EHLO_DOWNGRADED] =
        {"ehlo_downgraded", HEUR_MEDIUM,
         "EHLO answered like NOOP (one-line 250 without the server's name), received as NOOP, "
         "or refused and followed by HELO: no extensions, no STARTTLS",
         "P1, O4", "outside or inside",
         "one capture cannot tell a downgrade's 502 from a server without ESMTP: reported at "
         "low (502) or info (500); a NOOP-like reply without a masked banner is info"},
    [HR_STARTTLS_FAILED] =
        {"starttls_failed", HEUR_LOW,
         "STARTTLS got no reply or a refusal, or TLS after it (or on an implicit-TLS port) "
         "did not come up: a fatal alert, a reset right after the ClientHello, no "
         "ServerHello, no application data; benign causes are named",
         "A3-A5, O2, O4 (symptom)", "either",
         "nothing it is meant to catch; it is a symptom, reported at low severity when "
         "nothing stronger explains it"},
    [HR_CLEARTEXT_AFTER_STARTTLS] =
        {"cleartext_after_starttls", HEUR_HIGH,
         "SMTP commands in cleartext where TLS should follow a 220 to STARTTLS", "O4", "either",
         "a downgrade that re-encrypts (see tls_intercepted); captures that end at the 220"},
    [HR_EXCHANGE_AUTH_FAILED] =
        {"exchange_auth_failed", HEUR_MEDIUM,
         "Exchange cannot authenticate its peer: a 451/530 5.7.3 reply, or a masked "
         "X-ANONYMOUSTLS (14 letters) followed by QUIT without mail",
         "A4, A5 (symptom)", "outside",
         "Exchange's own queue message (\"451 5.7.3 Cannot achieve Exchange Server "
         "authentication\") is never on the wire; server-side captures"},
    [HR_LIMIT_DROP] =
        {"limit_drop", HEUR_HIGH,
         "the connection dies (data never acknowledged, sent again, then silence; or a RST) "
         "right after a command line over 512 bytes, the 101st RCPT, a header line over 998, "
         "a sender over 320 or a MIME filename over 255 (configurable)",
         "A7", "outside",
         "one-directional captures (no ACKs to show the data was never taken); server-side "
         "captures (the offending segment never arrives); policies with other limits "
         "unless the thresholds are set to match"},
    [HR_MULTILINE_BANNER_BROKEN] =
        {"multiline_banner_broken", HEUR_HIGH,
         "a multi-line 220 greeting whose continuation lines lost their code, so the final "
         "line never comes and clients time out",
         "A2", "outside", "server-side captures"},
    [HR_DOT_SPLIT_DROP] =
        {"dot_split_drop", HEUR_HIGH,
         "a message end (CRLF.CRLF) split over two segments and never answered: a PIX "
         "discarded it",
         "P3", "outside",
         "server-side captures (the end never arrives); a split that the capture's own "
         "segmentation hides"},
    [HR_INCONSISTENT_SERVER] =
        {"inconsistent_server", HEUR_MEDIUM,
         "the same server offers STARTTLS, or a normal banner, in some sessions and a masked "
         "or missing form in others",
         "A1, A3, O1 (cross-session)", "either",
         "captures with one session per server; servers listed in no_tls_servers; a load "
         "balancer in front of differently configured servers triggers it legitimately"},
    [HR_TLS_INTERCEPTED] =
        {"tls_intercepted", HEUR_HIGH,
         "the same server presents a different leaf certificate in some sessions of the "
         "capture than in most: a device terminates TLS with its own certificate",
         "O3 (cross-session)", "outside",
         "TLS 1.3 sessions (the certificate is encrypted); captures with one TLS session per "
         "server; an interception device that copies the server's certificate; a renewal "
         "or differently configured servers behind one address trigger it legitimately"},
    [HR_INJECTED_RESET] =
        {"injected_reset", HEUR_MEDIUM,
         "a RST whose TTL does not fit the packets its claimed sender sent before, or "
         "retransmitted bytes that differ from the original (low)",
         "A7 (reset action), O4", "either",
         "devices that copy the TTL of the packets they spoof; senders with fewer than three "
         "packets; an IP id out of pattern alone (Linux sends RSTs with id 0)"},
};

const struct heur_rule_info *heur_rules(void)
{
    return heur__rules;
}

static const char *const heur__sev_names[] = {"info", "low", "medium", "high"};

const char *heur_sev_name(enum heur_sev s)
{
    return (unsigned)s <= HEUR_HIGH ? heur__sev_names[s] : "?";
}

int heur_sev_parse(const char *name)
{
    for (int i = 0; i <= HEUR_HIGH; i++)
        if (strcmp(name, heur__sev_names[i]) == 0)
            return i;
    return -1;
}

const char *heur_vantage_name(enum heur_vantage v)
{
    switch (v) {
    case HV_OUTSIDE:
        return "outside";
    case HV_INSIDE:
        return "inside";
    default:
        return "unknown";
    }
}

void heur_config_defaults(struct heur_config *c)
{
    memset(c, 0, sizeof(*c));
    for (int i = 0; i < HR__COUNT; i++) {
        c->enabled[i] = true;
        c->severity[i] = heur__rules[i].severity;
    }
    c->cmd_line_max = 512;
    c->rcpt_max = 100;
    c->header_line_max = 998;
    c->sender_max = 320;
    c->filename_max = 255;
}

void heur_config_free(struct heur_config *c)
{
    for (size_t i = 0; i < c->nsig; i++) {
        free(c->sig[i].id);
        free(c->sig[i].pattern);
        free(c->sig[i].explanation);
        ere_free(c->sig[i].re);
    }
    for (size_t i = 0; i < c->nno_tls; i++)
        free(c->no_tls[i]);
    c->nsig = 0;
    c->nno_tls = 0;
}

/* ---- cross-session memory ---- */

struct heur__server {
    char addr[64]; /* "addr:port" */
    uint32_t sessions, banner_normal, banner_masked, tls_offered, tls_missing;
    uint64_t missing_ids[HEUR_MAX_SERVER_SESSIONS]; /* sessions where STARTTLS was missing */
    uint32_t nmissing;
    uint64_t masked_id; /* a session with a masked banner */
    uint64_t normal_id; /* a session with a normal banner */
    uint64_t offered_id;
    uint64_t missing_frame[HEUR_MAX_SERVER_SESSIONS];
    sc_time missing_ts[HEUR_MAX_SERVER_SESSIONS];
    char client[HEUR_MAX_SERVER_SESSIONS][64];
    struct sc_meta masked_meta;
    char masked_client[64];
    /* Client endpoints seen (hashed): the same connection in a second file
     * of the same traffic is not a second session. */
    uint64_t seen[HEUR_MAX_SERVER_SESSIONS];
    uint32_t nseen;
    /* Leaf certificates the server presented (tls_intercepted). */
    struct {
        char sha256[65];
        char subject[96], issuer[96];
        bool self_signed;
        uint32_t count;
    } cert[HEUR_MAX_SERVER_CERTS];
    uint32_t ncert;
    struct {
        uint64_t id;
        uint8_t cert;
        struct sc_meta meta;
        char client[48];
    } cert_sess[HEUR_MAX_SERVER_SESSIONS];
    uint32_t ncert_sess;
    uint64_t hash;
};

/* FNV-1a of a string. */
static uint64_t heur__hash(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return h;
}

struct heur_ctx {
    const struct heur_config *cfg;
    struct heur__server *srv;
    size_t nsrv;
    uint32_t *index; /* open addressing on heur__server.hash: slot -> srv index + 1 */
    size_t index_size;
    size_t finish_pos; /* heur_finish progress */
};

struct heur_ctx *heur_new(const struct heur_config *cfg)
{
    struct heur_ctx *h = calloc(1, sizeof(*h));
    if (!h)
        return NULL;
    h->cfg = cfg;
    return h;
}

void heur_free(struct heur_ctx *h)
{
    if (!h)
        return;
    free(h->srv);
    free(h->index);
    free(h);
}

/* ---- helpers ---- */

struct heur__out {
    struct heur_finding *v;
    size_t n, max;
    const struct heur_session *s;
    const struct heur_config *cfg;
};

static struct heur_finding *add(struct heur__out *o, enum heur_rule r, double conf,
                                const char *suspect, enum sc_dir dir, const struct sc_meta *m)
{
    if (!o->cfg->enabled[r] || o->n >= o->max)
        return NULL;
    for (size_t i = 0; i < o->n; i++)
        if (o->v[i].rule == heur__rules[r].id)
            return NULL; /* one finding per rule and session */
    struct heur_finding *f = &o->v[o->n++];
    memset(f, 0, sizeof(*f));
    f->rule = heur__rules[r].id;
    f->severity = o->cfg->severity[r];
    f->confidence = conf;
    f->session = o->s->id;
    sc_strlcpy(f->client, sizeof(f->client), o->s->client);
    sc_strlcpy(f->server, sizeof(f->server), o->s->server);
    f->suspect = suspect;
    f->dir = dir;
    if (m) {
        f->frame = m->frame;
        f->ts = m->ts;
    }
    return f;
}

/* Lowers a finding's severity to at most `cap` (weak evidence). */
static void cap_severity(struct heur_finding *f, enum heur_sev cap)
{
    if (f && f->severity > cap)
        f->severity = cap;
}

/* Whether the session already has a finding of rule r. */
static bool found(const struct heur__out *o, enum heur_rule r)
{
    for (size_t i = 0; i < o->n; i++)
        if (o->v[i].rule == heur__rules[r].id)
            return true;
    return false;
}

static void evidence(struct heur_finding *f, const uint8_t *p, size_t n)
{
    if (!f)
        return;
    struct sc_buf b;
    sc_buf_init(&b, HEUR_EVIDENCE_MAX - 1);
    sc_escape(&b, p, n);
    sc_strlcpy(f->evidence, sizeof(f->evidence), sc_buf_str(&b));
    sc_buf_free(&b);
}

static void explain(struct heur_finding *f, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void explain(struct heur_finding *f, const char *fmt, ...)
{
    if (!f)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(f->explanation, sizeof(f->explanation), fmt, ap);
    va_end(ap);
}

/* Text after "NNN" and its separator (or right after the code when the
 * separator itself was masked). */
static const uint8_t *reply_text(const uint8_t *l, size_t n, size_t *tn)
{
    if (n <= 3) {
        *tn = 0;
        return l + n;
    }
    size_t k = (l[3] == ' ' || l[3] == '-') ? 4 : 3;
    *tn = n - k;
    return l + k;
}

/* A1/P2: '*' masking that kept only 2, 0 and blanks (or nothing), or the
 * old "SMTP/cmap___" form. */
static bool banner_is_masked(const uint8_t *l, size_t n, bool *full)
{
    if (n < 4 || !sc_is_digit(l[0]) || !sc_is_digit(l[1]) || !sc_is_digit(l[2]))
        return false;
    size_t tn;
    const uint8_t *t = reply_text(l, n, &tn);
    static const char cmap[] = "SMTP/cmap";
    if (tn >= sizeof(cmap) - 1 + 3 && memcmp(t, cmap, sizeof(cmap) - 1) == 0 &&
        t[sizeof(cmap) - 1] == '_') {
        *full = true;
        return true;
    }
    size_t stars = 0, kept = 0;
    for (size_t i = 0; i < tn; i++) {
        if (t[i] == '*')
            stars++;
        else if (t[i] == '2' || t[i] == '0' || sc_is_wsp(t[i]))
            kept++;
        else
            return false;
    }
    *full = kept == 0;
    return stars >= 3 && stars * 2 >= tn;
}

/* A3/A4: "XXX...X" plus an optional final capital letter, 2 bytes or more. */
static bool is_xmask(const uint8_t *t, size_t n)
{
    if (n < 2)
        return false;
    for (size_t i = 0; i + 1 < n; i++)
        if (t[i] != 'X')
            return false;
    return t[n - 1] == 'X' || (t[n - 1] >= 'A' && t[n - 1] <= 'Z');
}

/* An X run standing for a verb (A5): only X's, 3 or more. */
static bool is_xverb(const uint8_t *t, size_t n)
{
    if (n < 3)
        return false;
    for (size_t i = 0; i < n; i++)
        if (t[i] != 'X')
            return false;
    return true;
}

static size_t word_len(const uint8_t *t, size_t n)
{
    size_t k = 0;
    while (k < n && !sc_is_wsp(t[k]))
        k++;
    return k;
}

static bool contains_ci(const uint8_t *t, size_t n, const char *needle)
{
    size_t k = strlen(needle);
    for (size_t i = 0; i + k <= n; i++) {
        size_t j = 0;
        while (j < k && sc_to_upper(t[i + j]) == sc_to_upper((uint8_t)needle[j]))
            j++;
        if (j == k)
            return true;
    }
    return false;
}

/* The first transcript line of a kind/verb (and direction) after index i. */
static const struct smtp_line *find_line(const struct smtp_info *in, size_t from,
                                         enum smtp_line_kind kind, enum smtp_verb verb, size_t *at)
{
    for (size_t i = from; i < in->n_transcript; i++) {
        const struct smtp_line *l = &in->transcript[i];
        if (l->kind == kind &&
            (kind != SMTP_L_COMMAND || verb == SMTP_V__COUNT || l->verb == verb)) {
            if (at)
                *at = i;
            return l;
        }
    }
    return NULL;
}

/* The first complete reply (its last line) after index i. */
static const struct smtp_line *next_reply_end(const struct smtp_info *in, size_t from)
{
    for (size_t i = from; i < in->n_transcript; i++)
        if (in->transcript[i].kind == SMTP_L_REPLY && in->transcript[i].last &&
            in->transcript[i].dir == SC_DIR_S2C)
            return &in->transcript[i];
    return NULL;
}

/* Whether the session ended the way a dropped connection ends: no clean
 * close, and data the peer never acknowledged sent again, or a RST. */
static bool died(const struct heur_session *s, enum sc_dir *who)
{
    /* A FIN may still follow: a client that gives up closes its end. */
    for (int d = 0; d < 2; d++) {
        if (s->tcp[d].unacked > 0 && s->tcp[d].tail_retx >= 1) {
            *who = (enum sc_dir)d;
            return true;
        }
    }
    if (s->tcp[0].rst || s->tcp[1].rst) {
        *who = s->tcp[0].rst ? SC_DIR_C2S : SC_DIR_S2C;
        return true;
    }
    return false;
}

/* ---- the rules ---- */

static void r_banner(struct heur__out *o, enum heur_vantage *v)
{
    const struct smtp_info *in = o->s->smtp;
    if (in->banner.len == 0)
        return;
    bool full = false;
    bool masked = banner_is_masked(in->banner.data, in->banner.len, &full);
    bool multi = in->banner.len > 3 && in->banner.data[3] == '-';
    if (multi && !in->banner_complete &&
        (masked || sc_events_count(&in->events, "reply_malformed") > 0)) {
        struct heur_finding *f = add(o, HR_MULTILINE_BANNER_BROKEN, masked ? 0.9 : 0.6,
                                     "cisco-asa-esmtp", SC_DIR_S2C, &in->banner_meta);
        evidence(f, in->banner.data, in->banner.len);
        explain(f, "The server's multi-line 220 greeting reached this capture with its "
                   "continuation lines masked, codes included, so no final \"220 \" line ever "
                   "arrives and clients wait until they time out; a Cisco ASA/PIX 'inspect "
                   "esmtp' with mask-banner does this. Fix: 'no inspect esmtp', or 'no "
                   "mask-banner' in the esmtp policy-map, or a one-line banner on the server.");
        *v = HV_OUTSIDE;
    }
    if (!masked)
        return;
    *v = HV_OUTSIDE;
    bool cmap = in->banner.len > 13 && memcmp(in->banner.data + 4, "SMTP/cmap", 9) == 0;
    /* The ASA keeps 2 and 0 (PIX 5.1+ too); PIX 4.4 masks all; the cmap form is
     * older PIX.  A full mask may be an ASA on a banner without 2 or 0: the
     * session's other evidence (a NOOP for EHLO) settles it below. */
    const char *suspect = cmap ? "cisco-pix-mailguard" : "cisco-asa-esmtp";
    struct heur_finding *f = add(o, HR_BANNER_MASKED, 0.95, suspect, SC_DIR_S2C, &in->banner_meta);
    evidence(f, in->banner.data, in->banner.len);
    const struct smtp_line *helo = find_line(in, 0, SMTP_L_COMMAND, SMTP_V_HELO, NULL);
    const struct smtp_line *ehlo = find_line(in, 0, SMTP_L_COMMAND, SMTP_V_EHLO, NULL);
    explain(f,
            "The server's 220 greeting is masked with asterisks in this capture, so an "
            "inline SMTP inspection (Cisco ASA/PIX 'inspect esmtp', mask-banner) sits "
            "between the server and this capture point%s Fix: 'no inspect esmtp', or "
            "'parameters / no mask-banner' in the esmtp policy-map.",
            helo && !ehlo ? "; the client answered it with HELO (Postfix's PIX workaround), so "
                            "no ESMTP extension and no STARTTLS was possible."
                          : ".");
}

/* Whether keyword line k's first word is w (case-insensitive). */
/* Length of a keyword line's name: its bytes up to a space or '='. */
static size_t kw_name_len(const struct smtp_text *k)
{
    size_t wl = 0;
    while (wl < k->len && k->data[wl] != ' ' && k->data[wl] != '=')
        wl++;
    return wl;
}

/* Whether the keyword whose name is wl bytes long is w (upper case),
 * ignoring case. */
static bool kw_name_is(const struct smtp_text *k, size_t wl, const char *w)
{
    size_t n = strlen(w);
    if (wl != n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (sc_to_upper(k->data[i]) != (uint8_t)w[i])
            return false;
    return true;
}

static bool kw_is(const struct smtp_text *k, const char *w)
{
    return kw_name_is(k, kw_name_len(k), w);
}

/* How strongly one neighbour of an 8-letter mask says the mask hides
 * STARTTLS (> 0) rather than CHUNKING or SMTPUTF8 (< 0).  From the keyword
 * orders of SIGNATURES.md section 4: Postfix lists ETRN STARTTLS AUTH
 * ENHANCEDSTATUSCODES ... DSN SMTPUTF8 CHUNKING, Exchange ENHANCEDSTATUSCODES
 * STARTTLS X-ANONYMOUSTLS ... BINARYMIME CHUNKING XEXCH50, Sendmail AUTH
 * STARTTLS DELIVERBY. */
static int kw_weight(const struct smtp_text *k)
{
    static const char *const tls2[] = {"ETRN",      "AUTH",           "ENHANCEDSTATUSCODES",
                                       "DELIVERBY", "X-ANONYMOUSTLS", NULL};
    static const char *const tls1[] = {"SIZE", "PIPELINING", "VRFY", "EXPN", NULL};
    static const char *const tail1[] = {"DSN", "8BITMIME", "XEXCH50", "SMTPUTF8", "CHUNKING", NULL};
    if (is_xmask(k->data, k->len))
        return k->len == 14 ? 2 : k->len == 8 ? -1 : 0; /* X-ANONYMOUSTLS / a sibling */
    for (int i = 0; tls2[i]; i++)
        if (kw_is(k, tls2[i]))
            return 2;
    for (int i = 0; tls1[i]; i++)
        if (kw_is(k, tls1[i]))
            return 1;
    if (kw_is(k, "BINARYMIME"))
        return -2;
    for (int i = 0; tail1[i]; i++)
        if (kw_is(k, tail1[i]))
            return -1;
    return 0;
}

/* The EHLO reply: masked keyword lines, and the STARTTLS mask among them.
 *
 * Three common keywords have 8 letters: STARTTLS, CHUNKING and SMTPUTF8, and
 * the ASA masks all three.  STARTTLS is hidden for certain when three
 * 8-letter masks (or two plus a visible CHUNKING or SMTPUTF8...) leave no
 * other candidate; otherwise the mask's neighbours decide, and with no
 * STARTTLS-like neighbour the masks count as other keywords only. */
static void r_keywords(struct heur__out *o, enum heur_vantage *v)
{
    const struct smtp_info *in = o->s->smtp;
    size_t masked = 0, eight = 0, first = SIZE_MAX, seen_siblings = 0;
    bool starttls_visible = false, sequence = true;
    char expect = 'A';
    size_t best = SIZE_MAX;
    int best_score = 0, best_count = 0;
    for (size_t i = 0; i < in->n_ehlo_keywords; i++) {
        const struct smtp_text *k = &in->ehlo_keywords[i];
        size_t wl = kw_name_len(k); /* (every session reads its keywords) */
        if (wl == 8 && kw_name_is(k, wl, "STARTTLS"))
            starttls_visible = true;
        if (wl == 8 && (kw_name_is(k, wl, "CHUNKING") || kw_name_is(k, wl, "SMTPUTF8")))
            seen_siblings++;
        if (!is_xmask(k->data, k->len))
            continue;
        masked++;
        if (first == SIZE_MAX)
            first = i;
        if (k->data[k->len - 1] != 'X') {
            if (k->data[k->len - 1] != expect)
                sequence = false;
            expect = (char)(k->data[k->len - 1] + 1);
        }
        if (k->len != 8)
            continue;
        eight++;
        int score = (i > 0 ? kw_weight(&in->ehlo_keywords[i - 1]) : 0) +
                    (i + 1 < in->n_ehlo_keywords ? kw_weight(&in->ehlo_keywords[i + 1]) : -2);
        if (best == SIZE_MAX || score > best_score) {
            best = i;
            best_score = score;
            best_count = 1;
        } else if (score == best_score) {
            best_count++;
        }
    }
    if (masked == 0)
        return;
    *v = HV_OUTSIDE;
    /* Where to point: the frame of the first masked line (from the transcript). */
    struct sc_meta m = in->ehlo_meta;
    for (size_t i = 0; i < in->n_transcript; i++) {
        const struct smtp_line *l = &in->transcript[i];
        if (l->kind == SMTP_L_REPLY && l->meta.frame >= in->ehlo_meta.frame && l->text_len > 4 &&
            is_xmask(l->text + 4, l->text_len - 4)) {
            m = l->meta;
            break;
        }
    }
    bool certain = eight > 0 && eight + seen_siblings >= 3;
    bool stripped = !starttls_visible && eight > 0 && (certain || best_score > 0);
    if (stripped) {
        double conf = certain ? 0.9 : best_count == 1 ? 0.75 : 0.6;
        struct heur_finding *f =
            add(o, HR_STARTTLS_STRIPPED, conf, "cisco-asa-esmtp", SC_DIR_S2C, &m);
        const struct smtp_text *k = &in->ehlo_keywords[best];
        evidence(f, k->data, k->len);
        explain(f,
                "The server's EHLO reply reached this capture with STARTTLS masked as X's "
                "(Cisco ASA 'inspect esmtp' without allow-tls turns 250-STARTTLS into "
                "250-XXXXXXXA), so the client does not see STARTTLS and sends mail in "
                "cleartext%s. Fix: 'allow-tls' in the esmtp policy-map parameters, or 'no "
                "inspect esmtp'.",
                certain ? ""
                        : " (CHUNKING and SMTPUTF8 have the same length; the mask's place in the "
                          "list points at STARTTLS)");
    }
    size_t others = masked - (stripped ? 1 : 0);
    if (others == 0)
        return;
    struct heur_finding *f =
        add(o, HR_EHLO_KEYWORD_MASKED, sequence ? 0.95 : 0.8, "cisco-asa-esmtp", SC_DIR_S2C, &m);
    const struct smtp_text *k = &in->ehlo_keywords[first];
    evidence(f, k->data, k->len);
    explain(f,
            "%zu EHLO keyword line%s reached this capture as X runs%s: Cisco ASA 'inspect "
            "esmtp' masks the extensions it does not allow (ehlo-reply-parameter others), so "
            "clients lose them (Exchange, for one, needs X-ANONYMOUSTLS and X-EXPS)%s. Fix: "
            "'no inspect esmtp', or allow the parameters in the esmtp policy-map.",
            others, others == 1 ? "" : "s",
            sequence ? " whose last letters count up A, B, C..., the ASA's signature" : "",
            !stripped && eight > 0 && !starttls_visible
                ? "; an 8-letter mask could hide STARTTLS, but its place in the list points at "
                  "CHUNKING or SMTPUTF8"
                : "");
}

/* STARTTLS accepted (or port 465 opened) and no TLS session came of it:
 * say how the handshake ended, from what the TLS reader saw. */
static void tls_failed(struct heur__out *o, const struct sc_meta *at, bool implicit)
{
    const struct smtp_info *in = o->s->smtp;
    const struct tls_info *t = in->tls;
    bool rst = strcmp(o->s->close, "rst") == 0;
    bool fin = strcmp(o->s->close, "fin") == 0;
    char ev[HEUR_EVIDENCE_MAX];
    const char *why;
    double conf = 0.4;
    const struct sc_meta *m = at;
    enum sc_dir dir = SC_DIR_S2C;
    enum tls_outcome oc = t ? in->tls_outcome : TLS_OUT_NONE;
    switch (oc) {
    case TLS_OUT_ALERT: {
        const char *an = tls_alert_name(t->alert_desc);
        snprintf(ev, sizeof(ev), "handshake failed: fatal alert %s (%u) from the %s", an ? an : "?",
                 t->alert_desc, t->alert_dir == SC_DIR_C2S ? "client" : "server");
        why = "the two sides could not agree (protocol versions, ciphers) or one rejected the "
              "other's certificate; a TLS-intercepting device with an old or untrusted "
              "certificate causes the same";
        m = &t->alert_meta;
        dir = t->alert_dir;
        conf = 0.5;
        break;
    }
    case TLS_OUT_NO_SERVER_HELLO:
        snprintf(ev, sizeof(ev), "handshake failed: %s after the ClientHello",
                 rst ? "reset" : "no ServerHello");
        why = rst ? "something reset the connection right after the ClientHello: a server that "
                    "refuses every offered version or cipher, or a device in the path that "
                    "blocks TLS"
                  : "the server never answered the ClientHello (a stalled server, a device "
                    "that swallows TLS, or the capture ended)";
        m = &t->client_hello_meta;
        dir = SC_DIR_C2S;
        conf = rst ? 0.5 : 0.4;
        break;
    case TLS_OUT_NO_CLIENT_HELLO:
    case TLS_OUT_NONE:
        if (fin && oc == TLS_OUT_NONE && !implicit) {
            snprintf(ev, sizeof(ev), "no TLS record after the 220");
            why = "the client closed without starting the handshake (it may have disliked the "
                  "220, or been told to stop)";
        } else {
            snprintf(ev, sizeof(ev), "handshake never started: no ClientHello");
            why = "the client never sent a ClientHello (a client giving up, or the capture "
                  "ended)";
        }
        break;
    case TLS_OUT_INCOMPLETE:
        snprintf(ev, sizeof(ev), "handshake %s: hellos exchanged, no application data both ways",
                 fin ? "abandoned" : "cut");
        why = "the handshake began but no mail flowed inside it: most often the client rejected "
              "the server's certificate (TLS 1.3 hides the alert that says so), or the "
              "connection was cut";
        break;
    default:
        return;
    }
    if (!rst && !fin && oc == TLS_OUT_NONE)
        return; /* the capture just ended: no evidence either way */
    struct heur_finding *f = add(o, HR_STARTTLS_FAILED, conf, "unknown", dir, m);
    if (f)
        sc_strlcpy(f->evidence, sizeof(f->evidence), ev);
    explain(f,
            "%s, but no TLS session came of it: %s. Mail in this session was not delivered "
            "encrypted (the client may retry in cleartext).",
            implicit ? "The client connected to the implicit-TLS port"
                     : "The server accepted STARTTLS",
            why);
}

/* The STARTTLS command and what followed it. */
static void r_starttls(struct heur__out *o, enum heur_vantage *v)
{
    const struct smtp_info *in = o->s->smtp;
    size_t at = 0;
    const struct smtp_line *cmd = find_line(in, 0, SMTP_L_COMMAND, SMTP_V_STARTTLS, &at);
    if (!cmd)
        cmd = find_line(in, 0, SMTP_L_COMMAND, SMTP_V_X_ANONYMOUSTLS, &at);
    if (!in->starttls_attempted || !cmd)
        return;
    /* A mask already explains why STARTTLS went nowhere. */
    bool explained = found(o, HR_STARTTLS_STRIPPED);
    const struct smtp_line *rep = next_reply_end(in, at + 1);
    switch (in->starttls) {
    case SMTP_TLS_CLEARTEXT_AFTER_220: {
        const struct smtp_line *next = find_line(in, at + 1, SMTP_L_COMMAND, SMTP_V__COUNT, NULL);
        struct heur_finding *f = add(o, HR_CLEARTEXT_AFTER_STARTTLS, 0.8, "unknown", SC_DIR_C2S,
                                     next ? &next->meta : &cmd->meta);
        if (next)
            evidence(f, next->text, next->text_len);
        explain(f, "The server accepted STARTTLS with 220 but SMTP continued in cleartext: either "
                   "something in the path answered the STARTTLS and kept the session open "
                   "(a downgrade), or a broken client ignored the 220. Mail and any "
                   "credentials in this session were not encrypted.");
        return;
    }
    case SMTP_TLS_REFUSED: {
        bool echo = rep && rep->text_len > 4 && contains_ci(rep->text, rep->text_len, "XXXXXXXX");
        if (rep && !echo &&
            (rep->code == 454 || rep->code == 501 || rep->code < 200 || rep->code >= 600 ||
             rep->code / 100 == 2) &&
            in->starttls_offered) {
            /* Offered, then refused at once (O4): a downgrade tool's answer, or a server out
             * of TLS resources. */
            struct heur_finding *f =
                add(o, HR_STARTTLS_STRIPPED, 0.55, "smtp-proxy", SC_DIR_S2C, &rep->meta);
            evidence(f, rep->text, rep->text_len);
            explain(f,
                    "The server advertised STARTTLS, then refused it with %03u when the client "
                    "asked: STARTTLS-stripping devices answer this way (454 \"TLS not available "
                    "due to temporary reason\"), but a server short of TLS resources does too. "
                    "Check the server's logs for the STARTTLS.",
                    rep->code);
            *v = *v == HV_UNKNOWN ? HV_OUTSIDE : *v;
            return;
        }
        if (rep && !echo && !explained) {
            struct heur_finding *f =
                add(o, HR_STARTTLS_FAILED, 0.5, "unknown", SC_DIR_S2C, &rep->meta);
            evidence(f, rep->text, rep->text_len);
            explain(f,
                    "STARTTLS was refused (%03u), so this session ran in cleartext. Without "
                    "masking this is most often the server's own choice (no certificate, TLS "
                    "disabled), but a device that strips STARTTLS produces the same reply.",
                    rep->code);
        }
        return;
    }
    case SMTP_TLS_NO_REPLY: {
        if (explained)
            return;
        struct heur_finding *f = add(o, HR_STARTTLS_FAILED, 0.4, "unknown", SC_DIR_C2S, &cmd->meta);
        evidence(f, cmd->text, cmd->text_len);
        explain(f, "STARTTLS got no reply before the connection ended: a device may have "
                   "swallowed it, or the server or network stalled (benign explanations: a "
                   "slow server, a capture that ended early).");
        return;
    }
    case SMTP_TLS_ACCEPTED:
        if (!explained)
            tls_failed(o, rep ? &rep->meta : &cmd->meta, false);
        return;
    default:
        return;
    }
}

/* Whether a reply line says its command was not recognized. */
static bool says_unknown(const struct smtp_line *l)
{
    return (l->code == 500 || l->code == 502) && (contains_ci(l->text, l->text_len, "recogni") ||
                                                  contains_ci(l->text, l->text_len, "unknown") ||
                                                  contains_ci(l->text, l->text_len, "implemented"));
}

/* A6 seen from the client side: verbs every server knows (HELO, QUIT...)
 * answered "unrecognized".  The server got them masked, piece by piece as a
 * user typed them, or whole.  Counted for commands answered one at a time,
 * so pipelined batches cannot pair a reply with the wrong command. */
static void r_verbs_rejected(struct heur__out *o, enum heur_vantage *v)
{
    if (found(o, HR_COMMAND_MASKED))
        return;
    const struct smtp_info *in = o->s->smtp;
    static const enum smtp_verb basic[] = {SMTP_V_HELO, SMTP_V_EHLO, SMTP_V_MAIL, SMTP_V_RCPT,
                                           SMTP_V_DATA, SMTP_V_RSET, SMTP_V_NOOP, SMTP_V_QUIT};
    unsigned rejected = 0, core = 0;
    const struct smtp_line *first = NULL, *first_rep = NULL;
    for (size_t i = 0; i < in->n_transcript; i++) {
        const struct smtp_line *l = &in->transcript[i];
        if (l->kind != SMTP_L_COMMAND)
            continue;
        bool is_basic = false;
        for (size_t k = 0; k < sizeof(basic) / sizeof(basic[0]); k++)
            is_basic = is_basic || l->verb == basic[k];
        if (!is_basic)
            continue;
        const struct smtp_line *rep = NULL;
        for (size_t k = i + 1; k < in->n_transcript && !rep; k++) {
            const struct smtp_line *r = &in->transcript[k];
            if (r->kind == SMTP_L_COMMAND || r->kind == SMTP_L_DATA || r->kind == SMTP_L_AUTH)
                break; /* pipelined: which reply is whose is not certain here */
            if (r->kind == SMTP_L_REPLY && r->dir == SC_DIR_S2C)
                rep = r;
        }
        if (!rep || !says_unknown(rep))
            continue;
        rejected++;
        if (l->verb == SMTP_V_HELO || l->verb == SMTP_V_QUIT || l->verb == SMTP_V_NOOP ||
            l->verb == SMTP_V_RSET || l->verb == SMTP_V_MAIL)
            core++;
        if (!first) {
            first = l;
            first_rep = rep;
        }
    }
    bool inspector = found(o, HR_BANNER_MASKED) || found(o, HR_EHLO_KEYWORD_MASKED) ||
                     found(o, HR_STARTTLS_STRIPPED);
    if (rejected == 0 || (!inspector && (rejected < 2 || core == 0)))
        return;
    struct heur_finding *f = add(o, HR_COMMAND_MASKED, inspector ? 0.75 : 0.6, "cisco-asa-esmtp",
                                 SC_DIR_S2C, &first_rep->meta);
    evidence(f, first_rep->text, first_rep->text_len);
    explain(f,
            "The server answered %u command%s that every server knows (the first: %s) as "
            "unrecognized: an inline SMTP inspection (Cisco ASA/PIX) sent them on masked as "
            "X's, which it does to verbs typed one character per packet (telnet) and to verbs "
            "it does not allow. Fix: 'no inspect esmtp', or test with a client that sends whole "
            "lines.",
            rejected, rejected == 1 ? "" : "s", smtp_verb_name(first->verb));
    *v = *v == HV_UNKNOWN ? HV_OUTSIDE : *v;
}

/* Masked verbs: seen as sent (inside) or echoed by the server (outside). */
static void r_commands(struct heur__out *o, enum heur_vantage *v)
{
    const struct smtp_info *in = o->s->smtp;
    for (size_t i = 0; i < in->n_transcript; i++) {
        const struct smtp_line *l = &in->transcript[i];
        if (l->kind == SMTP_L_COMMAND && l->verb == SMTP_V_UNKNOWN) {
            size_t wl = word_len(l->text, l->text_len);
            if (!is_xverb(l->text, wl))
                continue;
            *v = HV_INSIDE;
            if (wl == 8) {
                struct heur_finding *f =
                    add(o, HR_STARTTLS_STRIPPED, 0.9, "cisco-asa-esmtp", SC_DIR_C2S, &l->meta);
                evidence(f, l->text, l->text_len);
                explain(f, "The client's STARTTLS reached the server as XXXXXXXX: Cisco ASA "
                           "'inspect esmtp' without allow-tls masks the verb, the server "
                           "rejects it, and mail goes out in cleartext. Fix: 'allow-tls' in the "
                           "esmtp policy-map parameters, or 'no inspect esmtp'.");
            } else {
                struct heur_finding *f =
                    add(o, HR_COMMAND_MASKED, 0.9, "cisco-asa-esmtp", SC_DIR_C2S, &l->meta);
                evidence(f, l->text, l->text_len);
                explain(f, "A client command reached the server with its verb replaced by X's: "
                           "Cisco ASA/PIX SMTP inspection masks verbs it does not allow (and every "
                           "verb typed one character per packet). Fix: 'no inspect esmtp', or "
                           "allow the command in the esmtp policy-map.");
            }
            continue;
        }
        if (l->kind != SMTP_L_REPLY || l->code / 100 != 5)
            continue;
        /* An echo such as: 500 5.5.1 Command unrecognized: "XXXXXXXX" */
        for (size_t k = 0; k + 4 < l->text_len; k++) {
            if (l->text[k] != '"' && l->text[k] != '\'')
                continue;
            size_t j = k + 1;
            while (j < l->text_len && l->text[j] == 'X')
                j++;
            if (j - k - 1 < 3 || (j < l->text_len && l->text[j] != l->text[k] && l->text[j] != ' '))
                continue;
            *v = *v == HV_UNKNOWN ? HV_OUTSIDE : *v;
            if (j - k - 1 == 8) {
                struct heur_finding *f =
                    add(o, HR_STARTTLS_STRIPPED, 0.9, "cisco-asa-esmtp", SC_DIR_S2C, &l->meta);
                evidence(f, l->text, l->text_len);
                explain(f, "The server echoes the client's STARTTLS as XXXXXXXX: a Cisco ASA "
                           "'inspect esmtp' without allow-tls masked it on the way, so this "
                           "session stayed in cleartext. Fix: 'allow-tls' in the esmtp "
                           "policy-map parameters, or 'no inspect esmtp'.");
            } else {
                struct heur_finding *f =
                    add(o, HR_COMMAND_MASKED, 0.85, "cisco-asa-esmtp", SC_DIR_S2C, &l->meta);
                evidence(f, l->text, l->text_len);
                explain(f, "The server's error echoes a client command as X's: an inline "
                           "SMTP inspection (Cisco ASA/PIX) masked the verb on its way to the "
                           "server. Fix: 'no inspect esmtp', or allow the command.");
            }
            break;
        }
    }
    r_verbs_rejected(o, v);
}

static void r_ehlo_downgraded(struct heur__out *o, enum heur_vantage *v)
{
    const struct smtp_info *in = o->s->smtp;
    (void)v;
    size_t at = 0;
    const struct smtp_line *ehlo = find_line(in, 0, SMTP_L_COMMAND, SMTP_V_EHLO, &at);
    if (ehlo && in->ehlo_code == 250 && in->ehlo_complete && in->n_ehlo_keywords == 0 &&
        in->ehlo_reply.len > 4) {
        /* A one-line 250 without the server's name: a NOOP's reply (P1). */
        size_t tn;
        const uint8_t *t = reply_text(in->ehlo_reply.data, in->ehlo_reply.len, &tn);
        size_t w = word_len(t, tn);
        bool enh = w >= 5 && sc_is_digit(t[0]) && t[1] == '.';
        const uint8_t *name = t;
        size_t nl = w;
        if (enh) {
            size_t k = w;
            while (k < tn && sc_is_wsp(t[k]))
                k++;
            name = t + k;
            nl = word_len(name, tn - k);
        }
        bool has_dot = false;
        for (size_t i = 0; i < nl; i++)
            has_dot = has_dot || name[i] == '.';
        if (!has_dot) {
            /* A PIX masks the banner too (P2); without that, minimal test
             * servers answer EHLO this way, so it is only worth a note. */
            bool pix = found(o, HR_BANNER_MASKED);
            struct heur_finding *f =
                add(o, HR_EHLO_DOWNGRADED, pix ? 0.85 : 0.3,
                    pix ? "cisco-pix-mailguard" : "unknown", SC_DIR_S2C, &in->ehlo_meta);
            if (!pix)
                cap_severity(f, HEUR_INFO);
            evidence(f, in->ehlo_reply.data, in->ehlo_reply.len);
            explain(f,
                    "EHLO got a one-line 250 without the server's name and without any "
                    "extension, the reply a NOOP gets: a PIX Mailguard / FWSM rewrites EHLO to "
                    "NOOP, so the client gets no extensions and no STARTTLS%s Fix: 'no fixup "
                    "protocol smtp' / 'no inspect esmtp'.",
                    pix ? " (the masked banner confirms the PIX)."
                        : "; with an unmasked banner this may also be a minimal server that "
                          "ignores RFC 5321's domain in the EHLO reply.");
            return;
        }
    }
    if (ehlo && (in->ehlo_code == 502 || in->ehlo_code == 500)) {
        size_t hat = 0;
        const struct smtp_line *helo = find_line(in, at + 1, SMTP_L_COMMAND, SMTP_V_HELO, &hat);
        const struct smtp_line *hrep = helo ? next_reply_end(in, hat + 1) : NULL;
        if (!hrep || hrep->code != 250 || found(o, HR_COMMAND_MASKED))
            return; /* no fallback, or HELO failed too: not a downgrade */
        /* One capture cannot tell a downgrade (O4 answers 502 "not implemented")
         * from a server without ESMTP (RFC 821 servers answer unknown commands
         * 500): low for 502, a note for 500. */
        bool e502 = in->ehlo_code == 502;
        struct heur_finding *f = add(o, HR_EHLO_DOWNGRADED, e502 ? 0.5 : 0.3,
                                     e502 ? "smtp-proxy" : "unknown", SC_DIR_S2C, &in->ehlo_meta);
        cap_severity(f, e502 ? HEUR_LOW : HEUR_INFO);
        evidence(f, in->ehlo_reply.data, in->ehlo_reply.len);
        explain(f,
                "EHLO was answered %03u and the client fell back to HELO, so no ESMTP "
                "extension (and no STARTTLS) was used: downgrade tools answer EHLO this way, "
                "but so does a server without ESMTP; if this server speaks ESMTP elsewhere, "
                "something in the path refused EHLO.",
                in->ehlo_code);
    }
    /* Inside a PIX: the server receives "NOOP name" where EHLO was sent. */
    for (size_t i = 0; i < in->n_transcript; i++) {
        const struct smtp_line *l = &in->transcript[i];
        if (l->kind != SMTP_L_COMMAND || l->verb != SMTP_V_NOOP || l->text_len < 6 ||
            in->helo.len > 0)
            continue;
        const uint8_t *arg = l->text + 4;
        size_t al = l->text_len - 4;
        while (al && sc_is_wsp(*arg))
            arg++, al--;
        if (al == 0)
            continue;
        struct heur_finding *f =
            add(o, HR_EHLO_DOWNGRADED, 0.7, "cisco-pix-mailguard", SC_DIR_C2S, &l->meta);
        evidence(f, l->text, l->text_len);
        explain(f, "The server received NOOP with a host name where a client greets with "
                   "EHLO: a PIX Mailguard / FWSM rewrote EHLO to NOOP, so the client got no "
                   "extensions and no STARTTLS. Fix: 'no fixup protocol smtp'.");
        *v = HV_INSIDE;
        break;
    }
}

static void r_exchange(struct heur__out *o)
{
    const struct smtp_info *in = o->s->smtp;
    for (size_t i = 0; i < in->n_transcript; i++) {
        const struct smtp_line *l = &in->transcript[i];
        char enh[SMTP_ENH_SIZE];
        if (l->kind == SMTP_L_REPLY && (l->code == 451 || l->code == 530) &&
            (smtp_line_enh(l, enh), strcmp(enh, "5.7.3") == 0)) {
            struct heur_finding *f =
                add(o, HR_EXCHANGE_AUTH_FAILED, 0.7, "cisco-asa-esmtp", SC_DIR_S2C, &l->meta);
            evidence(f, l->text, l->text_len);
            explain(f, "Exchange could not authenticate its peer (5.7.3): between Exchange "
                       "servers this happens when a firewall masks X-ANONYMOUSTLS, X-EXPS or "
                       "STARTTLS (Cisco 'inspect esmtp'); mail then queues on Retry. Fix: "
                       "'no inspect esmtp' on the path between the Exchange servers.");
            return;
        }
    }
    /* The sending Exchange gives up silently: EHLO, masked X-ANONYMOUSTLS
     * (14 letters), QUIT without mail. */
    bool xanon_masked = false;
    for (size_t i = 0; i < in->n_ehlo_keywords; i++)
        if (in->ehlo_keywords[i].len == 14 &&
            is_xmask(in->ehlo_keywords[i].data, in->ehlo_keywords[i].len))
            xanon_masked = true;
    const struct smtp_line *quit = find_line(in, 0, SMTP_L_COMMAND, SMTP_V_QUIT, NULL);
    const struct smtp_line *mail = find_line(in, 0, SMTP_L_COMMAND, SMTP_V_MAIL, NULL);
    if (xanon_masked && quit && !mail && in->ehlo_code == 250) {
        struct heur_finding *f =
            add(o, HR_EXCHANGE_AUTH_FAILED, 0.5, "cisco-asa-esmtp", SC_DIR_C2S, &quit->meta);
        evidence(f, quit->text, quit->text_len);
        explain(f, "The sending server quit right after EHLO without sending mail, and the "
                   "EHLO reply had a masked 14-letter keyword (X-ANONYMOUSTLS): Exchange "
                   "gives up this way and queues the mail with \"451 5.7.3 Cannot achieve "
                   "Exchange Server authentication\". Fix: 'no inspect esmtp'.");
    }
}

static void r_limit_drop(struct heur__out *o)
{
    const struct heur_session *s = o->s;
    const struct smtp_info *in = s->smtp;
    const struct heur_config *c = o->cfg;
    enum sc_dir who = SC_DIR_C2S;
    if (!died(s, &who))
        return;
    /* What was the client doing when the connection died? */
    const struct smtp_line *rcpt_over = NULL;
    size_t rcpts = 0;
    for (size_t i = 0; i < in->n_transcript && !rcpt_over; i++) {
        const struct smtp_line *l = &in->transcript[i];
        if (l->kind == SMTP_L_COMMAND && l->verb == SMTP_V_RCPT && ++rcpts == c->rcpt_max + 1)
            rcpt_over = l;
    }
    const char *what = NULL;
    const struct sc_meta *m = NULL;
    const uint8_t *ev = NULL;
    size_t evn = 0;
    char detail[160];
    if (in->last_command_len + 2 > c->cmd_line_max) {
        snprintf(detail, sizeof(detail), "a command line of %llu bytes (limit %llu)",
                 (unsigned long long)in->last_command_len + 2, (unsigned long long)c->cmd_line_max);
        what = detail;
        m = &in->last_command_meta;
        ev = in->last_command.data;
        evn = in->last_command.len;
    } else if (in->rcpt_count > c->rcpt_max && in->last_command_verb == SMTP_V_RCPT) {
        snprintf(detail, sizeof(detail), "RCPT number %llu (limit %llu)",
                 (unsigned long long)c->rcpt_max + 1, (unsigned long long)c->rcpt_max);
        what = detail;
        m = rcpt_over ? &rcpt_over->meta : &in->last_command_meta;
        ev = rcpt_over ? rcpt_over->text : in->last_command.data;
        evn = rcpt_over ? rcpt_over->text_len : in->last_command.len;
    } else if (in->mail_from.len > c->sender_max + 2) {
        snprintf(detail, sizeof(detail), "a sender address of %zu bytes (limit %llu)",
                 in->mail_from.len - 2, (unsigned long long)c->sender_max);
        what = detail;
        const struct smtp_line *mail = find_line(in, 0, SMTP_L_COMMAND, SMTP_V_MAIL, NULL);
        m = mail ? &mail->meta : &in->last_command_meta;
        ev = in->mail_from.data;
        evn = in->mail_from.len;
    } else if (in->max_header_line > c->header_line_max) {
        snprintf(detail, sizeof(detail), "a header line of %llu bytes (limit %llu)",
                 (unsigned long long)in->max_header_line, (unsigned long long)c->header_line_max);
        what = detail;
        m = &in->max_header_meta;
    } else if (in->max_filename > c->filename_max) {
        snprintf(detail, sizeof(detail), "a MIME filename of %llu bytes (limit %llu)",
                 (unsigned long long)in->max_filename, (unsigned long long)c->filename_max);
        what = detail;
        m = &in->max_filename_meta;
    }
    if (!what)
        return;
    bool retx = s->tcp[who].tail_retx > 0;
    struct heur_finding *f =
        add(o, HR_LIMIT_DROP, retx ? 0.85 : 0.7, "cisco-asa-esmtp", SC_DIR_C2S, m);
    if (ev)
        evidence(f, ev, evn);
    else if (f)
        sc_strlcpy(f->evidence, sizeof(f->evidence), detail);
    explain(f,
            "The connection died right after %s: %s. Cisco ASA 'inspect esmtp' drops the "
            "connection at these limits (command line 512, 100 recipients, header line 998, "
            "sender 320, filename 255). Fix: raise or remove the 'match ... drop-connection' "
            "lines in the esmtp policy-map, or 'no inspect esmtp'.",
            what,
            retx ? "the sender's last data was never acknowledged and was sent again, then "
                   "silence"
                 : "the connection was reset");
}

static void r_dot_split(struct heur__out *o)
{
    const struct heur_session *s = o->s;
    const struct smtp_info *in = s->smtp;
    if (!in->eod_split || !in->eod_unanswered)
        return;
    struct heur_finding *f = add(o, HR_DOT_SPLIT_DROP, s->tcp[SC_DIR_C2S].tail_retx ? 0.85 : 0.6,
                                 "cisco-pix-mailguard", SC_DIR_C2S, &in->eod_split_meta);
    if (f)
        snprintf(f->evidence, sizeof(f->evidence), "\\r\\n.\\r\\n split over two segments");
    explain(f, "The message's end (CRLF.CRLF) arrived split over two segments and the server "
               "never answered it: a PIX Mailguard discards such an end of data, the client "
               "times out and sends the message again later (duplicates). Fix: 'no fixup "
               "protocol smtp', or Postfix's smtp_pix_workarounds delay.");
}

static void r_injected_reset(struct heur__out *o)
{
    const struct heur_session *s = o->s;
    for (int d = 0; d < 2; d++) {
        const struct heur_tcp *t = &s->tcp[d];
        if (!t->rst || t->packets < 3 || t->ttl_max == 0)
            continue;
        /* A host's stack sends its RSTs with the TTL of its other packets.  An
         * IP id out of pattern alone proves nothing (Linux sends RSTs outside
         * any socket with id 0), so it only adds weight. */
        bool ttl_off = t->rst_ttl + 1 < t->ttl_min || t->rst_ttl > t->ttl_max + 1;
        if (!ttl_off)
            continue;
        struct sc_meta m = {t->rst_frame, t->rst_ts};
        double conf = t->rst_ipid_mismatch ? 0.85 : 0.7;
        struct heur_finding *f = add(o, HR_INJECTED_RESET, conf, "unknown", (enum sc_dir)d, &m);
        if (f)
            snprintf(f->evidence, sizeof(f->evidence),
                     "RST with TTL %u; the %s's other packets "
                     "had TTL %u-%u%s",
                     t->rst_ttl, d == SC_DIR_C2S ? "client" : "server", t->ttl_min, t->ttl_max,
                     t->rst_ipid_mismatch ? " and its IP id broke their pattern" : "");
        explain(f,
                "This RST claims to come from the %s but does not look like its other packets: "
                "a device in the path reset the connection in its name (a firewall's reset "
                "action, an IPS, or a downgrade tool).",
                d == SC_DIR_C2S ? "client" : "server");
        return;
    }
    for (int d = 0; d < 2; d++) {
        if (s->tcp[d].overlaps_diff == 0)
            continue;
        const struct sc_event *ev = NULL;
        for (size_t i = 0; i < s->smtp->events.n; i++)
            if (strcmp(s->smtp->events.v[i].kind, "overlap_mismatch") == 0 &&
                s->smtp->events.v[i].dir == (enum sc_dir)d)
                ev = &s->smtp->events.v[i];
        struct sc_meta m = {ev ? ev->frame : 0, ev ? ev->ts : 0};
        struct heur_finding *f = add(o, HR_INJECTED_RESET, 0.5, "unknown", (enum sc_dir)d, &m);
        cap_severity(f, HEUR_LOW);
        if (f && ev && ev->detail)
            sc_strlcpy(f->evidence, sizeof(f->evidence), ev->detail);
        explain(f, "The same TCP bytes were captured twice with different contents: something "
                   "in the path rewrote or injected data, this span port sees both sides of a "
                   "rewriting firewall, or the capture was edited.");
        return;
    }
}

static void r_signatures(struct heur__out *o)
{
    const struct smtp_info *in = o->s->smtp;
    for (size_t k = 0; k < o->cfg->nsig; k++) {
        const struct heur_signature *sg = &o->cfg->sig[k];
        for (size_t i = 0; i < in->n_transcript && o->n < o->max; i++) {
            const struct smtp_line *l = &in->transcript[i];
            bool applies = false;
            switch (sg->target) {
            case HT_BANNER:
                applies = l->kind == SMTP_L_REPLY && l->meta.frame == in->banner_meta.frame &&
                          in->banner.len > 0;
                break;
            case HT_EHLO:
                applies = l->kind == SMTP_L_REPLY && l->dir == SC_DIR_S2C &&
                          l->meta.frame != in->banner_meta.frame && l->code == 250 &&
                          l->meta.frame >= in->ehlo_meta.frame;
                break;
            case HT_REPLY:
                applies = l->kind == SMTP_L_REPLY;
                break;
            case HT_COMMAND:
                applies = l->kind == SMTP_L_COMMAND;
                break;
            }
            if (!applies)
                continue;
            /* Match on the escaped text, as the reports print it.  An
             * allocation failure (-1) counts as no match. */
            struct sc_buf b;
            sc_buf_init(&b, 0);
            sc_escape(&b, l->text, l->text_len);
            bool hit = ere_match(sg->re, (const uint8_t *)sc_buf_str(&b), b.len) == 1;
            sc_buf_free(&b);
            if (!hit)
                continue;
            struct heur_finding *f = &o->v[o->n++];
            memset(f, 0, sizeof(*f));
            f->rule = sg->id;
            f->severity = sg->severity;
            f->confidence = 0.9;
            f->session = o->s->id;
            sc_strlcpy(f->client, sizeof(f->client), o->s->client);
            sc_strlcpy(f->server, sizeof(f->server), o->s->server);
            f->suspect = "unknown";
            f->dir = l->dir;
            f->frame = l->meta.frame;
            f->ts = l->meta.ts;
            evidence(f, l->text, l->text_len);
            sc_strlcpy(f->explanation, sizeof(f->explanation), sg->explanation);
            break;
        }
    }
}

/* ---- cross-session memory ---- */

static bool no_tls_server(const struct heur_config *c, const char *server)
{
    for (size_t i = 0; i < c->nno_tls; i++) {
        size_t n = strlen(c->no_tls[i]);
        if (strcmp(c->no_tls[i], server) == 0 ||
            (strncmp(c->no_tls[i], server, n) == 0 && server[n] == ':'))
            return true;
    }
    return false;
}

/* The server's memory, created on first sight; NULL past HEUR_MAX_SERVERS
 * or without memory. */
static struct heur__server *find_server(struct heur_ctx *h, const char *addr)
{
    uint64_t hash = heur__hash(addr);
    if (h->index_size) {
        for (size_t k = hash & (h->index_size - 1);; k = (k + 1) & (h->index_size - 1)) {
            uint32_t i = h->index[k];
            if (i == 0)
                break;
            if (h->srv[i - 1].hash == hash && strcmp(h->srv[i - 1].addr, addr) == 0)
                return &h->srv[i - 1];
        }
    }
    if (h->nsrv >= HEUR_MAX_SERVERS)
        return NULL;
    if (2 * (h->nsrv + 1) > h->index_size) {
        /* Grow the index (kept at most half full) and the array. */
        size_t size = h->index_size ? h->index_size * 2 : 64;
        uint32_t *ix = calloc(size, sizeof(*ix));
        struct heur__server *v = realloc(h->srv, size / 2 * sizeof(*v));
        if (!ix || !v) {
            free(ix);
            if (v)
                h->srv = v;
            return NULL;
        }
        h->srv = v;
        for (size_t i = 0; i < h->nsrv; i++) {
            size_t k = h->srv[i].hash & (size - 1);
            while (ix[k])
                k = (k + 1) & (size - 1);
            ix[k] = (uint32_t)i + 1;
        }
        free(h->index);
        h->index = ix;
        h->index_size = size;
    }
    struct heur__server *sv = &h->srv[h->nsrv];
    memset(sv, 0, sizeof(*sv));
    sc_strlcpy(sv->addr, sizeof(sv->addr), addr);
    sv->hash = hash;
    size_t k = hash & (h->index_size - 1);
    while (h->index[k])
        k = (k + 1) & (h->index_size - 1);
    h->index[k] = (uint32_t)++h->nsrv;
    return sv;
}

/* The leaf certificate of a TLS session, for tls_intercepted. */
static void remember_cert(struct heur__server *sv, const struct heur_session *s)
{
    const struct tls_info *t = s->smtp->tls;
    if (!t || t->n_chain == 0 || !t->chain[0].sha256[0])
        return;
    const struct tls_cert *c = &t->chain[0];
    uint32_t k = 0;
    while (k < sv->ncert && strcmp(sv->cert[k].sha256, c->sha256) != 0)
        k++;
    if (k == sv->ncert) {
        if (sv->ncert >= HEUR_MAX_SERVER_CERTS)
            return;
        sv->ncert++;
        sc_strlcpy(sv->cert[k].sha256, sizeof(sv->cert[k].sha256), c->sha256);
        /* Names are kept cut to 95 bytes: enough to tell two certificates apart. */
        snprintf(sv->cert[k].subject, sizeof(sv->cert[k].subject), "%.95s",
                 c->parsed ? c->subject : "(not X.509)");
        snprintf(sv->cert[k].issuer, sizeof(sv->cert[k].issuer), "%.95s",
                 c->parsed ? c->issuer : "(not X.509)");
        sv->cert[k].self_signed = c->self_signed;
        sv->cert[k].count = 0;
    }
    sv->cert[k].count++;
    if (sv->ncert_sess < HEUR_MAX_SERVER_SESSIONS) {
        sv->cert_sess[sv->ncert_sess].id = s->id;
        sv->cert_sess[sv->ncert_sess].cert = (uint8_t)k;
        sv->cert_sess[sv->ncert_sess].meta = t->cert_meta;
        sc_strlcpy(sv->cert_sess[sv->ncert_sess].client, sizeof(sv->cert_sess[0].client),
                   s->client);
        sv->ncert_sess++;
    }
}

static void remember(struct heur_ctx *h, const struct heur_session *s, bool banner_masked,
                     bool keywords_seen, bool tls_offered, bool tls_masked)
{
    struct heur__server *sv = find_server(h, s->server);
    if (!sv)
        return;
    uint64_t ch = heur__hash(s->client);
    for (uint32_t i = 0; i < sv->nseen; i++)
        if (sv->seen[i] == ch)
            return;
    if (sv->nseen < HEUR_MAX_SERVER_SESSIONS)
        sv->seen[sv->nseen++] = ch;
    sv->sessions++;
    remember_cert(sv, s);
    if (s->smtp->banner.len) {
        if (banner_masked) {
            sv->banner_masked++;
            if (!sv->masked_id) {
                sv->masked_id = s->id;
                sv->masked_meta = s->smtp->banner_meta;
                sc_strlcpy(sv->masked_client, sizeof(sv->masked_client), s->client);
            }
        } else {
            sv->banner_normal++;
            sv->normal_id = sv->normal_id ? sv->normal_id : s->id;
        }
    }
    if (!keywords_seen)
        return;
    if (tls_offered) {
        sv->tls_offered++;
        sv->offered_id = sv->offered_id ? sv->offered_id : s->id;
    } else if (!tls_masked) {
        sv->tls_missing++;
        if (sv->nmissing < HEUR_MAX_SERVER_SESSIONS) {
            sv->missing_ids[sv->nmissing] = s->id;
            sv->missing_frame[sv->nmissing] = s->smtp->ehlo_meta.frame;
            sv->missing_ts[sv->nmissing] = s->smtp->ehlo_meta.ts;
            sc_strlcpy(sv->client[sv->nmissing], sizeof(sv->client[0]), s->client);
            sv->nmissing++;
        }
    }
}

size_t heur_session(struct heur_ctx *h, const struct heur_session *s, struct heur_finding *out,
                    size_t max, enum heur_vantage *vantage)
{
    struct heur__out o = {out, 0, max, s, h->cfg};
    enum heur_vantage v = HV_UNKNOWN;
    r_banner(&o, &v);
    r_keywords(&o, &v);
    r_commands(&o, &v);
    r_starttls(&o, &v);
    if (s->smtp->implicit_tls && s->smtp->tls_outcome != TLS_OUT_ESTABLISHED)
        tls_failed(&o, s->smtp->tls ? &s->smtp->tls->client_hello_meta : NULL, true);
    r_ehlo_downgraded(&o, &v);
    r_exchange(&o);
    r_limit_drop(&o);
    r_dot_split(&o);
    r_injected_reset(&o);
    r_signatures(&o);
    /* One device did it all: PIX evidence (EHLO sent on as NOOP) names it. */
    bool pix = false;
    for (size_t i = 0; i < o.n; i++)
        pix = pix || (o.v[i].suspect && strcmp(o.v[i].suspect, "cisco-pix-mailguard") == 0);
    for (size_t i = 0; i < o.n && pix; i++)
        if (o.v[i].suspect && strcmp(o.v[i].suspect, "cisco-asa-esmtp") == 0)
            o.v[i].suspect = "cisco-pix-mailguard";
    bool full = false;
    bool masked =
        s->smtp->banner.len && banner_is_masked(s->smtp->banner.data, s->smtp->banner.len, &full);
    bool tls_masked = false;
    for (size_t i = 0; i < o.n; i++)
        tls_masked = tls_masked || o.v[i].rule == heur__rules[HR_STARTTLS_STRIPPED].id;
    remember(h, s, masked,
             s->smtp->ehlo_code == 250 && s->smtp->ehlo_complete && s->smtp->n_ehlo_keywords > 0,
             s->smtp->starttls_offered, tls_masked);
    if (vantage)
        *vantage = v;
    return o.n;
}

/* Several leaf certificates for one server: the sessions that did not get
 * the one most sessions got (the first seen, on a tie) are flagged.  Writes
 * at most HEUR_MAX_SERVER_SESSIONS findings. */
static size_t intercepted(const struct heur_config *c, const struct heur__server *sv,
                          struct heur_finding *out)
{
    uint32_t ref = 0;
    for (uint32_t k = 1; k < sv->ncert; k++)
        if (sv->cert[k].count > sv->cert[ref].count)
            ref = k;
    size_t n = 0;
    for (uint32_t i = 0; i < sv->ncert_sess; i++) {
        uint32_t k = sv->cert_sess[i].cert;
        if (k == ref)
            continue;
        bool other_issuer = strcmp(sv->cert[k].issuer, sv->cert[ref].issuer) != 0;
        struct heur_finding *f = &out[n++];
        memset(f, 0, sizeof(*f));
        f->rule = heur__rules[HR_TLS_INTERCEPTED].id;
        f->severity = c->severity[HR_TLS_INTERCEPTED];
        f->confidence = other_issuer ? 0.8 : 0.55;
        f->session = sv->cert_sess[i].id;
        f->frame = sv->cert_sess[i].meta.frame;
        f->ts = sv->cert_sess[i].meta.ts;
        sc_strlcpy(f->server, sizeof(f->server), sv->addr);
        sc_strlcpy(f->client, sizeof(f->client), sv->cert_sess[i].client);
        f->suspect = "tls-proxy";
        f->dir = SC_DIR_S2C;
        snprintf(f->evidence, sizeof(f->evidence),
                 "certificate sha256 %.16s... (%s, issuer %s%s); %u other session%s got "
                 "%.16s... (issuer %s)",
                 sv->cert[k].sha256, sv->cert[k].subject, sv->cert[k].issuer,
                 sv->cert[k].self_signed ? ", self-signed" : "", sv->cert[ref].count,
                 sv->cert[ref].count == 1 ? "" : "s", sv->cert[ref].sha256, sv->cert[ref].issuer);
        snprintf(f->explanation, sizeof(f->explanation),
                 "Server %s presented a different certificate in this session than in %u "
                 "other%s%s: a device in the path that terminates TLS (an SMTP or TLS "
                 "inspection proxy) shows its own certificate; a certificate renewal or servers "
                 "with different certificates behind one address would too. Compare the "
                 "certificate with the one installed on the server.",
                 sv->addr, sv->cert[ref].count, sv->cert[ref].count == 1 ? "" : "s",
                 other_issuer ? ", and from another issuer" : "");
    }
    return n;
}

size_t heur_finish(struct heur_ctx *h, struct heur_finding *out, size_t max)
{
    size_t n = 0;
    const struct heur_config *c = h->cfg;
    /* Whole servers only: a server's findings never straddle two calls. */
    while (n == 0 && max >= HEUR_FINISH_MAX && h->finish_pos < h->nsrv) {
        struct heur__server *sv = &h->srv[h->finish_pos++];
        bool tls_mixed = sv->tls_offered > 0 && sv->tls_missing > 0 && !no_tls_server(c, sv->addr);
        bool banner_mixed = sv->banner_masked > 0 && sv->banner_normal > 0;
        if ((tls_mixed || banner_mixed) && c->enabled[HR_INCONSISTENT_SERVER]) {
            struct heur_finding *f = &out[n++];
            memset(f, 0, sizeof(*f));
            f->rule = heur__rules[HR_INCONSISTENT_SERVER].id;
            f->severity = c->severity[HR_INCONSISTENT_SERVER];
            f->confidence = 0.6;
            if (tls_mixed && sv->nmissing) {
                f->session = sv->missing_ids[0];
                f->frame = sv->missing_frame[0];
                f->ts = sv->missing_ts[0];
                sc_strlcpy(f->client, sizeof(f->client), sv->client[0]);
            } else {
                f->session = sv->masked_id;
                f->frame = sv->masked_meta.frame;
                f->ts = sv->masked_meta.ts;
                sc_strlcpy(f->client, sizeof(f->client), sv->masked_client);
            }
            sc_strlcpy(f->server, sizeof(f->server), sv->addr);
            f->suspect = "unknown";
            f->dir = SC_DIR_S2C;
            snprintf(f->evidence, sizeof(f->evidence),
                     "%u sessions: banner normal in %u, masked in %u; STARTTLS offered in %u, "
                     "missing in %u",
                     sv->sessions, sv->banner_normal, sv->banner_masked, sv->tls_offered,
                     sv->tls_missing);
            snprintf(f->explanation, sizeof(f->explanation),
                     "Server %s behaves differently from session to session (%s): some "
                     "connections pass a device that rewrites SMTP and others do not, or "
                     "several servers with different settings share the address (a load "
                     "balancer). Compare the sessions' paths.",
                     sv->addr,
                     tls_mixed ? "STARTTLS offered in some, missing in others"
                               : "banner normal in some, masked in others");
        }
        if (sv->ncert >= 2 && c->enabled[HR_TLS_INTERCEPTED])
            n += intercepted(c, sv, out + n);
        if (!tls_mixed || !c->enabled[HR_STARTTLS_STRIPPED])
            continue;
        /* STARTTLS deleted: one finding per session that lacked it. */
        for (uint32_t i = 0; i < sv->nmissing; i++) {
            struct heur_finding *f = &out[n++];
            memset(f, 0, sizeof(*f));
            f->rule = heur__rules[HR_STARTTLS_STRIPPED].id;
            f->severity = c->severity[HR_STARTTLS_STRIPPED];
            f->confidence = 0.55;
            f->session = sv->missing_ids[i];
            f->frame = sv->missing_frame[i];
            f->ts = sv->missing_ts[i];
            sc_strlcpy(f->server, sizeof(f->server), sv->addr);
            sc_strlcpy(f->client, sizeof(f->client), sv->client[i]);
            f->suspect = "smtp-proxy";
            f->dir = SC_DIR_S2C;
            snprintf(f->evidence, sizeof(f->evidence),
                     "EHLO reply without STARTTLS; the same server offered it in %u other "
                     "session%s",
                     sv->tls_offered, sv->tls_offered == 1 ? "" : "s");
            snprintf(f->explanation, sizeof(f->explanation),
                     "STARTTLS is missing from this session's EHLO reply although server %s "
                     "offers it in other sessions of the capture: an SMTP proxy or ALG "
                     "deletes the keyword on this path (or the address is shared by "
                     "servers with different settings). Mail on this path goes in "
                     "cleartext.",
                     sv->addr);
        }
    }
    return n;
}
