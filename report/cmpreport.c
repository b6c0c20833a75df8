/* cmpreport.c - compare output: text (two columns in 80), JSON Lines, HTML. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/escape.h"
#include "common/str.h"
#include "report/report.h"

static const char *const rep__side_names[2] = {"outside", "inside"};

static void rep__jesc(struct sc_buf *b, const char *s)
{
    sc_buf_putc(b, '"');
    sc_json_escape(b, s, strlen(s));
    sc_buf_putc(b, '"');
}

/* Captured bytes of a line as a JSON string (escaped to ASCII first). */
static void rep__jline(struct sc_buf *b, const struct cmp_line *l)
{
    struct sc_buf t;
    sc_buf_init(&t, 0);
    sc_escape(&t, l->text, l->text_len);
    rep__jesc(b, sc_buf_str(&t));
    sc_buf_free(&t);
}

static void rep__epoch(struct sc_buf *b, sc_time t)
{
    char e[40];
    rep_fmt_epoch(e, sizeof(e), t);
    sc_buf_puts(b, e);
}

static void rep__json_cmp_session(struct sc_buf *b, const struct cmp_session *s, int side,
                                  long pair)
{
    sc_buf_printf(b, "{\"type\":\"session\",\"schema\":%d,\"side\":\"%s\",\"pair\":", REP_SCHEMA,
                  rep__side_names[side]);
    if (pair > 0)
        sc_buf_printf(b, "%ld", pair);
    else
        sc_buf_puts(b, "null");
    sc_buf_printf(b, ",\"id\":%" PRIu64 ",\"file\":", s->id);
    rep__jesc(b, s->file);
    sc_buf_puts(b, ",\"client\":");
    rep__jesc(b, s->client);
    sc_buf_puts(b, ",\"server\":");
    rep__jesc(b, s->server);
    sc_buf_printf(b, ",\"first_frame\":%" PRIu64 ",\"last_frame\":%" PRIu64 ",\"start\":",
                  s->first_frame, s->last_frame);
    rep__epoch(b, s->start);
    sc_buf_puts(b, ",\"end\":");
    rep__epoch(b, s->end);
    sc_buf_puts(b, ",\"close\":");
    rep__jesc(b, s->close);
    sc_buf_printf(b, ",\"bytes_c2s\":%" PRIu64 ",\"bytes_s2c\":%" PRIu64, s->bytes[0], s->bytes[1]);
    if (s->tls) {
        sc_buf_puts(b, ",\"tls\":{\"version\":");
        rep__jesc(b, s->tls->version);
        sc_buf_puts(b, ",\"cipher\":");
        rep__jesc(b, s->tls->cipher);
        sc_buf_puts(b, ",\"cert_sha256\":");
        if (s->tls->cert_sha256[0])
            rep__jesc(b, s->tls->cert_sha256);
        else
            sc_buf_puts(b, "null");
        sc_buf_putc(b, '}');
    } else {
        sc_buf_puts(b, ",\"tls\":null");
    }
    sc_buf_puts(b, ",\"findings\":[");
    /* The ids as a list (kept comma-separated in the session). */
    const char *p = s->findings;
    bool first = true;
    while (*p) {
        size_t n = strcspn(p, ",");
        if (n) {
            sc_buf_printf(b, "%s\"%.*s\"", first ? "" : ",", (int)n, p);
            first = false;
        }
        p += n;
        if (*p == ',')
            p++;
    }
    sc_buf_puts(b, "]}\n");
}

static void rep__json_diff(struct sc_buf *b, const struct cmp_pair *p, long pair,
                           const struct cmp_diff *d)
{
    sc_buf_printf(b,
                  "{\"type\":\"diff\",\"schema\":%d,\"pair\":%ld,\"session_outside\":%" PRIu64
                  ",\"session_inside\":%" PRIu64 ",\"kind\":\"%s\",\"direction\":",
                  REP_SCHEMA, pair, p->s[0]->id, p->s[1]->id, cmp_kind_name(d->kind));
    if (d->dir <= SC_DIR_S2C)
        sc_buf_printf(b, "\"%s\"", sc_dir_name(d->dir));
    else
        sc_buf_puts(b, "null");
    for (int side = 0; side < 2; side++) {
        sc_buf_printf(b, ",\"%s\":", rep__side_names[side]);
        const struct cmp_line *l = d->line[side];
        if (!l) {
            sc_buf_puts(b, "null");
            continue;
        }
        sc_buf_printf(b, "{\"frame\":%" PRIu64 ",\"line\":", l->frame);
        rep__jline(b, l);
        sc_buf_putc(b, '}');
    }
    sc_buf_puts(b, ",\"rule\":");
    if (d->rule)
        rep__jesc(b, d->rule);
    else
        sc_buf_puts(b, "null");
    sc_buf_printf(b, ",\"severity\":\"%s\",\"detail\":", heur_sev_name((enum heur_sev)d->severity));
    rep__jesc(b, d->what);
    sc_buf_puts(b, "}\n");
}

static void rep__json_compare(struct sc_buf *b, const struct rep_cmp_options *o,
                              const struct cmp_capture *cap[2], const struct cmp_result *r)
{
    for (size_t i = 0; i < r->npairs; i++) {
        const struct cmp_pair *p = &r->pairs[i];
        long pair = (long)i + 1;
        for (int side = 0; side < 2; side++)
            rep__json_cmp_session(b, p->s[side], side, pair);
        sc_buf_printf(b,
                      "{\"type\":\"pair\",\"schema\":%d,\"pair\":%ld,\"session_outside\":%" PRIu64
                      ",\"session_inside\":%" PRIu64
                      ",\"score\":%.2f,\"confidence\":%.2f,\"ambiguous\":%s,\"offset\":%.6f,"
                      "\"diffs\":%zu,\"diffs_dropped\":%" PRIu64 "}\n",
                      REP_SCHEMA, pair, p->s[0]->id, p->s[1]->id, p->score, p->confidence,
                      p->ambiguous ? "true" : "false", (double)p->offset / 1e9, p->nd, p->dropped);
        for (size_t k = 0; k < p->nd; k++)
            rep__json_diff(b, p, pair, &p->d[k]);
    }
    for (int side = 0; side < 2; side++)
        for (size_t i = 0; i < cap[side]->n; i++)
            if (!cap[side]->s[i].paired)
                rep__json_cmp_session(b, &cap[side]->s[i], side, 0);
    sc_buf_printf(b, "{\"type\":\"summary\",\"schema\":%d,\"mode\":\"compare\",\"names\":[",
                  REP_SCHEMA);
    rep__jesc(b, o->names[0]);
    sc_buf_putc(b, ',');
    rep__jesc(b, o->names[1]);
    sc_buf_puts(b, "],\"files\":[");
    rep__jesc(b, o->files[0] ? o->files[0] : "");
    sc_buf_putc(b, ',');
    rep__jesc(b, o->files[1] ? o->files[1] : "");
    sc_buf_printf(b,
                  "],\"swapped\":%s,\"sessions\":[%zu,%zu],\"pairs\":%zu,\"only_outside\":%zu,"
                  "\"only_inside\":%zu,\"clock_offset\":%.6f,\"offset_samples\":%zu,\"diffs\":{",
                  r->swapped ? "true" : "false", cap[0]->n, cap[1]->n, r->npairs, r->only[0],
                  r->only[1], (double)r->clock_offset / 1e9, r->offset_samples);
    for (int k = 0; k < CMP__KIND_COUNT; k++)
        sc_buf_printf(b, "%s\"%s\":%zu", k ? "," : "", cmp_kind_name((enum cmp_kind)k),
                      r->ndiffs[k]);
    sc_buf_printf(b, "},\"worst\":\"%s\"}\n", heur_sev_name((enum heur_sev)r->worst));
}

/* ---- text ---- */

/* Column width of the side-by-side view: two columns and a 3-byte gutter
 * fit 80 terminal columns. */
#define REP_CMP_COL 38

/* One column: direction letter and the escaped line, cut to width. */
static void rep__col(struct sc_buf *b, const struct cmp_line *l, enum sc_dir d, bool pad)
{
    char cell[REP_CMP_COL + 1];
    if (!l) {
        sc_strlcpy(cell, sizeof(cell), "");
    } else {
        struct sc_buf t;
        sc_buf_init(&t, 0);
        sc_escape(&t, l->text, l->text_len);
        const char *txt = sc_buf_str(&t);
        size_t w = REP_CMP_COL - 2;
        if (t.len > w)
            snprintf(cell, sizeof(cell), "%c %.*s..", d == SC_DIR_C2S ? 'C' : 'S', (int)(w - 2),
                     txt);
        else
            snprintf(cell, sizeof(cell), "%c %s", d == SC_DIR_C2S ? 'C' : 'S', txt);
        sc_buf_free(&t);
    }
    if (pad)
        sc_buf_printf(b, "%-*s", REP_CMP_COL, cell);
    else
        sc_buf_puts(b, cell);
}

static void rep__text_pair(struct sc_buf *b, const struct rep_cmp_options *o,
                           const struct cmp_pair *p, long pair)
{
    const struct cmp_session *a = p->s[0], *c = p->s[1];
    sc_buf_printf(b,
                  "pair %ld  %s %s -> %s  (session %" PRIu64 ", frames %" PRIu64 "-%" PRIu64 ")\n",
                  pair, o->names[0], a->client, a->server, a->id, a->first_frame, a->last_frame);
    sc_buf_printf(b, "%*s%s %s -> %s  (session %" PRIu64 ", frames %" PRIu64 "-%" PRIu64 ")\n",
                  (int)(snprintf(NULL, 0, "pair %ld  ", pair)), "", o->names[1], c->client,
                  c->server, c->id, c->first_frame, c->last_frame);
    sc_buf_printf(b, "  match     score %.2f, confidence %.2f%s, %s clock %+.3f s\n", p->score,
                  p->confidence,
                  p->ambiguous ? " (AMBIGUOUS: another candidate scores as well)" : "", o->names[1],
                  (double)p->offset / 1e9);
    if (p->nd == 0)
        sc_buf_puts(b, "  no difference in the dialogue, TLS or TCP options\n");
    for (size_t k = 0; k < p->nd; k++) {
        const struct cmp_diff *d = &p->d[k];
        sc_buf_printf(b, "  %-11s %-3s", cmp_kind_name(d->kind),
                      d->dir <= SC_DIR_S2C ? sc_dir_name(d->dir) : "-");
        if (d->frame[0] || d->frame[1]) {
            sc_buf_puts(b, " frames ");
            if (d->frame[0])
                sc_buf_printf(b, "%" PRIu64, d->frame[0]);
            else
                sc_buf_puts(b, "-");
            sc_buf_puts(b, " | ");
            if (d->frame[1])
                sc_buf_printf(b, "%" PRIu64, d->frame[1]);
            else
                sc_buf_puts(b, "-");
        }
        sc_buf_printf(b, "  %s", heur_sev_name((enum heur_sev)d->severity));
        if (d->rule)
            sc_buf_printf(b, " -> %s", d->rule);
        sc_buf_printf(b, "\n%14s%s\n", "", d->what);
    }
    if (p->dropped)
        sc_buf_printf(b, "  ... %" PRIu64 " more differences not listed\n", p->dropped);
    bool show = o->dialogue == REP_CMP_DIALOGUE_ALL ||
                (o->dialogue == REP_CMP_DIALOGUE_CHANGED && p->nd > 0);
    if (!show)
        return;
    struct cmp_row *rows = NULL;
    long nr = cmp_rows(p, &rows);
    if (nr < 0)
        return;
    sc_buf_printf(b, "  %-*s   %s\n", REP_CMP_COL, o->names[0], o->names[1]);
    for (long i = 0; i < nr; i++) {
        const struct cmp_row *r = &rows[i];
        sc_buf_puts(b, "  ");
        rep__col(b, r->line[0], r->dir, true);
        sc_buf_printf(b, " %c ", r->mark == '=' ? ' ' : r->mark);
        rep__col(b, r->line[1], r->dir, false);
        sc_buf_putc(b, '\n');
    }
    free(rows);
}

static void rep__text_compare(struct sc_buf *b, const struct rep_cmp_options *o,
                              const struct cmp_capture *cap[2], const struct cmp_result *r)
{
    if (o->files[0] && o->files[1])
        sc_buf_printf(b, "%s: %s\n%s: %s\n", o->names[0], o->files[0], o->names[1], o->files[1]);
    if (r->swapped)
        sc_buf_printf(b, "note: the second file given is the outside capture: %s\n",
                      r->swap_reason);
    sc_buf_putc(b, '\n');
    for (size_t i = 0; i < r->npairs; i++) {
        rep__text_pair(b, o, &r->pairs[i], (long)i + 1);
        sc_buf_putc(b, '\n');
    }
    for (int side = 0; side < 2; side++)
        for (size_t i = 0; i < cap[side]->n; i++) {
            const struct cmp_session *s = &cap[side]->s[i];
            if (s->paired)
                continue;
            sc_buf_printf(
                b, "only %s  %s -> %s  (session %" PRIu64 ", frames %" PRIu64 "-%" PRIu64 ")\n",
                o->names[side], s->client, s->server, s->id, s->first_frame, s->last_frame);
        }
    size_t total = 0;
    for (int k = 0; k < CMP__KIND_COUNT; k++)
        total += r->ndiffs[k];
    sc_buf_printf(b,
                  "\nsummary: %zu %s (%zu sessions %s only, %zu %s only), %zu %s, "
                  "%s clock %+.3f s (from %zu matches)\n",
                  r->npairs, r->npairs == 1 ? "pair" : "pairs", r->only[0], o->names[0], r->only[1],
                  o->names[1], total, total == 1 ? "difference" : "differences", o->names[1],
                  (double)r->clock_offset / 1e9, r->offset_samples);
    if (total) {
        sc_buf_puts(b, "  diffs    ");
        bool first = true;
        for (int k = 0; k < CMP__KIND_COUNT; k++) {
            if (!r->ndiffs[k])
                continue;
            sc_buf_printf(b, "%s%s x%zu", first ? "" : ", ", cmp_kind_name((enum cmp_kind)k),
                          r->ndiffs[k]);
            first = false;
        }
        sc_buf_printf(b, "; worst %s\n", heur_sev_name((enum heur_sev)r->worst));
    }
}

int rep_compare(FILE *out, const struct rep_cmp_options *o, const struct cmp_capture *outside,
                const struct cmp_capture *inside, const struct cmp_result *r)
{
    const struct cmp_capture *cap[2] = {outside, inside};
    struct sc_buf b;
    sc_buf_init(&b, 0);
    if (o->format != REP_TEXT)
        rep__json_compare(&b, o, cap, r);
    else
        rep__text_compare(&b, o, cap, r);
    bool ok = rep_write_records(out, o->format, b.data, b.len) == 0;
    sc_buf_free(&b);
    return ok && fflush(out) == 0 ? 0 : -1;
}

/* ---- HTML ---- */

/* Appends text with &, <, > and " escaped for HTML. */
static void rep__h(struct sc_buf *b, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        switch (s[i]) {
        case '&':
            sc_buf_puts(b, "&amp;");
            break;
        case '<':
            sc_buf_puts(b, "&lt;");
            break;
        case '>':
            sc_buf_puts(b, "&gt;");
            break;
        case '"':
            sc_buf_puts(b, "&quot;");
            break;
        default:
            sc_buf_putc(b, (uint8_t)s[i]);
        }
    }
}

static void rep__hs(struct sc_buf *b, const char *s)
{
    rep__h(b, s, strlen(s));
}

/* A line's escaped text, the bytes that differ from `other` in <mark>. */
static void rep__hline(struct sc_buf *b, const struct cmp_line *l, const struct cmp_line *other)
{
    if (!l)
        return;
    size_t lo = 0, ea = l->text_len;
    if (other) {
        size_t n = l->text_len < other->text_len ? l->text_len : other->text_len;
        while (lo < n && l->text[lo] == other->text[lo])
            lo++;
        size_t eb = other->text_len;
        while (ea > lo && eb > lo && l->text[ea - 1] == other->text[eb - 1]) {
            ea--;
            eb--;
        }
    }
    struct sc_buf t;
    sc_buf_init(&t, 0);
    sc_escape(&t, l->text, lo);
    rep__h(b, sc_buf_str(&t), t.len);
    if (other && ea > lo) {
        sc_buf_reset(&t);
        sc_escape(&t, l->text + lo, ea - lo);
        sc_buf_puts(b, "<mark>");
        rep__h(b, sc_buf_str(&t), t.len);
        sc_buf_puts(b, "</mark>");
    } else if (!other) {
        ea = lo;
    }
    sc_buf_reset(&t);
    sc_escape(&t, l->text + ea, l->text_len - ea);
    rep__h(b, sc_buf_str(&t), t.len);
    sc_buf_free(&t);
}

int rep_compare_html(FILE *out, const struct rep_cmp_options *o, const struct cmp_capture *outside,
                     const struct cmp_capture *inside, const struct cmp_result *r)
{
    const struct cmp_capture *cap[2] = {outside, inside};
    struct sc_buf b;
    sc_buf_init(&b, 0);
    sc_buf_puts(&b, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
                    "<title>smtpscope compare</title>\n<style>\n"
                    "body{font-family:sans-serif;margin:1.5em;color:#222}\n"
                    "table{border-collapse:collapse;margin:.5em 0}\n"
                    "td,th{border:1px solid #ccc;padding:2px 6px;vertical-align:top}\n"
                    "th{background:#eee;text-align:left}\n"
                    ".dlg td{font-family:monospace;white-space:pre-wrap;word-break:break-all;"
                    "width:46%}\n"
                    ".dlg td.m{width:2%;text-align:center;font-weight:bold}\n"
                    "tr.changed td{background:#fff3cd}\n"
                    "tr.outside-only td,tr.inside-only td{background:#f8d7da}\n"
                    "mark{background:#ff9800;color:#000}\n"
                    ".sev-high{color:#b00020;font-weight:bold}.sev-medium{color:#c25e00}\n"
                    ".sev-low{color:#555}.sev-info{color:#888}\n"
                    "</style></head><body>\n<h1>smtpscope compare</h1>\n");
    size_t total = 0;
    for (int k = 0; k < CMP__KIND_COUNT; k++)
        total += r->ndiffs[k];
    sc_buf_puts(&b, "<section id=\"summary\"><h2>Summary</h2><table>");
    for (int side = 0; side < 2; side++) {
        sc_buf_printf(&b, "<tr><th>%s</th><td id=\"capture-%s\">", side ? "inside" : "outside",
                      rep__side_names[side]);
        rep__hs(&b, o->names[side]);
        if (o->files[side]) {
            sc_buf_puts(&b, ": ");
            rep__hs(&b, o->files[side]);
        }
        sc_buf_printf(&b, " (%zu %s, %zu only here)</td></tr>", cap[side]->n,
                      cap[side]->n == 1 ? "session" : "sessions", r->only[side]);
    }
    sc_buf_printf(&b,
                  "<tr><th>pairs</th><td id=\"pairs\">%zu</td></tr>"
                  "<tr><th>differences</th><td id=\"differences\">%zu</td></tr>"
                  "<tr><th>clock offset</th><td>%+.3f s (from %zu matches)</td></tr>",
                  r->npairs, total, (double)r->clock_offset / 1e9, r->offset_samples);
    for (int k = 0; k < CMP__KIND_COUNT; k++)
        if (r->ndiffs[k])
            sc_buf_printf(&b, "<tr><th>%s</th><td class=\"count-%s\">%zu</td></tr>",
                          cmp_kind_name((enum cmp_kind)k), cmp_kind_name((enum cmp_kind)k),
                          r->ndiffs[k]);
    if (r->swapped) {
        sc_buf_puts(&b, "<tr><th>note</th><td>the inputs were given inside first: ");
        rep__hs(&b, r->swap_reason);
        sc_buf_puts(&b, "</td></tr>");
    }
    sc_buf_puts(&b, "</table></section>\n");
    for (size_t i = 0; i < r->npairs; i++) {
        const struct cmp_pair *p = &r->pairs[i];
        sc_buf_printf(&b, "<section class=\"pair\" id=\"pair-%zu\"><h2>Pair %zu</h2>\n<p>", i + 1,
                      i + 1);
        for (int side = 0; side < 2; side++) {
            rep__hs(&b, o->names[side]);
            sc_buf_puts(&b, ": ");
            rep__hs(&b, p->s[side]->client);
            sc_buf_puts(&b, " &rarr; ");
            rep__hs(&b, p->s[side]->server);
            sc_buf_printf(&b, " (session %" PRIu64 ", frames %" PRIu64 "-%" PRIu64 ")<br>",
                          p->s[side]->id, p->s[side]->first_frame, p->s[side]->last_frame);
        }
        sc_buf_printf(&b, "match score %.2f, confidence %.2f%s</p>\n", p->score, p->confidence,
                      p->ambiguous ? " <strong>(ambiguous)</strong>" : "");
        if (p->nd) {
            sc_buf_puts(&b, "<table class=\"diffs\"><tr><th>kind</th><th>dir</th><th>frames</th>"
                            "<th>severity</th><th>rule</th><th>detail</th></tr>\n");
            for (size_t k = 0; k < p->nd; k++) {
                const struct cmp_diff *d = &p->d[k];
                const char *sev = heur_sev_name((enum heur_sev)d->severity);
                sc_buf_printf(&b, "<tr class=\"diff kind-%s\"><td>%s</td><td>%s</td><td>",
                              cmp_kind_name(d->kind), cmp_kind_name(d->kind),
                              d->dir <= SC_DIR_S2C ? sc_dir_name(d->dir) : "-");
                if (d->frame[0])
                    sc_buf_printf(&b, "%" PRIu64, d->frame[0]);
                else
                    sc_buf_puts(&b, "-");
                sc_buf_puts(&b, " | ");
                if (d->frame[1])
                    sc_buf_printf(&b, "%" PRIu64, d->frame[1]);
                else
                    sc_buf_puts(&b, "-");
                sc_buf_printf(&b, "</td><td class=\"sev-%s\">%s</td><td class=\"rule\">%s</td><td>",
                              sev, sev, d->rule ? d->rule : "");
                rep__hs(&b, d->what);
                sc_buf_puts(&b, "</td></tr>\n");
            }
            sc_buf_puts(&b, "</table>\n");
        } else {
            sc_buf_puts(&b, "<p class=\"same\">No difference.</p>\n");
        }
        struct cmp_row *rows = NULL;
        long nr = cmp_rows(p, &rows);
        if (nr >= 0) {
            sc_buf_puts(&b, "<table class=\"dlg\"><tr><th>");
            rep__hs(&b, o->names[0]);
            sc_buf_puts(&b, "</th><th class=\"m\"></th><th>");
            rep__hs(&b, o->names[1]);
            sc_buf_puts(&b, "</th></tr>\n");
            for (long k = 0; k < nr; k++) {
                const struct cmp_row *row = &rows[k];
                const char *cls = row->mark == '!'   ? "changed"
                                  : row->mark == '<' ? "outside-only"
                                  : row->mark == '>' ? "inside-only"
                                                     : "same";
                sc_buf_printf(&b, "<tr class=\"%s\"><td>", cls);
                if (row->line[0]) {
                    sc_buf_puts(&b, row->dir == SC_DIR_C2S ? "C: " : "S: ");
                    rep__hline(&b, row->line[0], row->mark == '!' ? row->line[1] : NULL);
                }
                sc_buf_printf(&b, "</td><td class=\"m\">%s</td><td>",
                              row->mark == '='   ? ""
                              : row->mark == '!' ? "&ne;"
                              : row->mark == '<' ? "&lt;"
                                                 : "&gt;");
                if (row->line[1]) {
                    sc_buf_puts(&b, row->dir == SC_DIR_C2S ? "C: " : "S: ");
                    rep__hline(&b, row->line[1], row->mark == '!' ? row->line[0] : NULL);
                }
                sc_buf_puts(&b, "</td></tr>\n");
            }
            sc_buf_puts(&b, "</table>\n");
            free(rows);
        }
        sc_buf_puts(&b, "</section>\n");
    }
    for (int side = 0; side < 2; side++) {
        for (size_t i = 0; i < cap[side]->n; i++) {
            const struct cmp_session *s = &cap[side]->s[i];
            if (s->paired)
                continue;
            sc_buf_printf(&b, "<p class=\"only only-%s\">Only in ", rep__side_names[side]);
            rep__hs(&b, o->names[side]);
            sc_buf_puts(&b, ": ");
            rep__hs(&b, s->client);
            sc_buf_puts(&b, " &rarr; ");
            rep__hs(&b, s->server);
            sc_buf_printf(&b, " (session %" PRIu64 ")</p>\n", s->id);
        }
    }
    sc_buf_puts(&b, "</body></html>\n");
    bool ok = fwrite(b.data, 1, b.len, out) == b.len;
    sc_buf_free(&b);
    return ok && fflush(out) == 0 ? 0 : -1;
}
