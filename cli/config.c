/* config.c - the YAML configuration file (see config.h). */
#include "cli/config.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/ascii.h"
#include "common/ere.h"
#include "common/jv.h"
#include "common/str.h"

/* Loader state: the first error ends the load (longjmp back to cfg_load). */
struct cfg_ld {
    const char *path;
    char *err;
    size_t errlen;
    jmp_buf fail;
};

static void fail(struct cfg_ld *l, const struct jv *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4), noreturn));

static void fail(struct cfg_ld *l, const struct jv *at, const char *fmt, ...)
{
    int n = snprintf(l->err, l->errlen, "%s:%u:%u: ", l->path, at ? at->line : 0, at ? at->col : 0);
    va_list ap;
    va_start(ap, fmt);
    if (n >= 0 && (size_t)n < l->errlen)
        vsnprintf(l->err + n, l->errlen - (size_t)n, fmt, ap);
    va_end(ap);
    longjmp(l->fail, 1);
}

static void want_type(struct cfg_ld *l, const struct jv *v, enum jv_type t, const char *what)
{
    if (v->type != t)
        fail(l, v, "%s", what);
}

static void known_keys(struct cfg_ld *l, const struct jv *o, const char *where,
                       const char *const *keys)
{
    for (size_t i = 0; i < o->n; i++) {
        bool ok = false;
        for (size_t k = 0; keys[k] && !ok; k++)
            ok = strcmp(o->k[i], keys[k]) == 0;
        if (!ok) {
            char list[256] = "";
            size_t p = 0;
            for (size_t k = 0; keys[k] && p < sizeof(list); k++)
                p += (size_t)snprintf(list + p, sizeof(list) - p, "%s%s", k ? ", " : "", keys[k]);
            fail(l, o->v[i], "unknown key \"%s\" in %s (known: %s)", o->k[i], where, list);
        }
    }
}

static uint64_t num(struct cfg_ld *l, const struct jv *v, uint64_t lo, uint64_t hi)
{
    if (v->type != JV_NUM && v->type != JV_STR)
        fail(l, v, "expected a number");
    const char *s = jv_text(v);
    char *end;
    errno = 0;
    unsigned long long x = strtoull(s, &end, 10);
    if (errno || end == s || *end || !sc_is_digit((uint8_t)s[0]) || x < lo || x > hi)
        fail(l, v, "expected a whole number from %llu to %llu, not \"%s\"", (unsigned long long)lo,
             (unsigned long long)hi, s);
    return x;
}

static bool boolean(struct cfg_ld *l, const struct jv *v)
{
    const char *s = jv_text(v);
    if (strcmp(s, "true") == 0 || strcmp(s, "yes") == 0)
        return true;
    if (strcmp(s, "false") == 0 || strcmp(s, "no") == 0)
        return false;
    fail(l, v, "expected true or false, not \"%s\"", s);
}

static enum heur_sev severity(struct cfg_ld *l, const struct jv *v)
{
    int s = heur_sev_parse(jv_text(v));
    if (s < 0)
        fail(l, v, "unknown severity \"%s\" (info, low, medium or high)", jv_text(v));
    return (enum heur_sev)s;
}

static const char *str(struct cfg_ld *l, const struct jv *v, const char *what)
{
    if (v->type != JV_STR && v->type != JV_NUM)
        fail(l, v, "%s must be a string", what);
    return jv_text(v);
}

static char *dup(const char *s)
{
    char *d = strdup(s);
    if (!d)
        abort();
    return d;
}

static void ld_ports(struct cfg_ld *l, const struct jv *v, uint8_t *bitmap, const char *key,
                     bool allow_empty)
{
    if (v->type == JV_ARR) {
        memset(bitmap, 0, CAP_PORTS_BITMAP_BYTES);
        if (v->n == 0 && !allow_empty)
            fail(l, v, "%s: the list is empty", key);
        for (size_t i = 0; i < v->n; i++) {
            uint16_t p = (uint16_t)num(l, v->v[i], 1, 65535);
            bitmap[p >> 3] |= (uint8_t)(1u << (p & 7));
        }
        return;
    }
    if (!cfg_parse_ports(jv_text(v), bitmap, allow_empty))
        fail(l, v, "%s: \"%s\" is not a list of ports 1-65535 such as 25,587,2525-2530", key,
             jv_text(v));
}

static void ld_rules(struct cfg_ld *l, const struct jv *v, struct heur_config *h)
{
    want_type(l, v, JV_OBJ, "rules must be a mapping of rule id to settings");
    static const char *const keys[] = {"enabled", "severity", NULL};
    const struct heur_rule_info *ri = heur_rules();
    for (size_t i = 0; i < v->n; i++) {
        int r = -1;
        for (int k = 0; k < HR__COUNT; k++)
            if (strcmp(ri[k].id, v->k[i]) == 0)
                r = k;
        if (r < 0)
            fail(l, v->v[i], "unknown rule \"%s\" (smtpscope rules lists them)", v->k[i]);
        const struct jv *s = v->v[i];
        want_type(l, s, JV_OBJ, "a rule's settings must be a mapping (enabled, severity)");
        known_keys(l, s, v->k[i], keys);
        const struct jv *e = jv_get(s, "enabled");
        if (e)
            h->enabled[r] = boolean(l, e);
        const struct jv *sv = jv_get(s, "severity");
        if (sv)
            h->severity[r] = severity(l, sv);
    }
}

static void ld_thresholds(struct cfg_ld *l, const struct jv *v, struct heur_config *h)
{
    want_type(l, v, JV_OBJ, "thresholds must be a mapping");
    static const char *const keys[] = {"cmd_line_max", "rcpt_max",     "header_line_max",
                                       "sender_max",   "filename_max", NULL};
    known_keys(l, v, "thresholds", keys);
    const struct {
        const char *k;
        uint64_t *p;
    } t[] = {{"cmd_line_max", &h->cmd_line_max},
             {"rcpt_max", &h->rcpt_max},
             {"header_line_max", &h->header_line_max},
             {"sender_max", &h->sender_max},
             {"filename_max", &h->filename_max}};
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        const struct jv *x = jv_get(v, t[i].k);
        if (x)
            *t[i].p = num(l, x, 1, 1u << 30);
    }
}

static void ld_signatures(struct cfg_ld *l, const struct jv *v, struct heur_config *h)
{
    want_type(l, v, JV_ARR, "signatures must be a list");
    static const char *const keys[] = {"id", "target", "pattern", "severity", "explanation", NULL};
    static const char *const targets[] = {"banner", "ehlo", "reply", "command", NULL};
    for (size_t i = 0; i < v->n; i++) {
        const struct jv *s = v->v[i];
        want_type(l, s, JV_OBJ, "a signature must be a mapping (id, target, pattern, ...)");
        known_keys(l, s, "a signature", keys);
        if (h->nsig >= HEUR_MAX_SIGNATURES)
            fail(l, s, "more than %d signatures", HEUR_MAX_SIGNATURES);
        const struct jv *id = jv_get(s, "id"), *tg = jv_get(s, "target"),
                        *pat = jv_get(s, "pattern");
        if (!id || !tg || !pat)
            fail(l, s, "a signature needs id, target and pattern");
        const char *ids = str(l, id, "id");
        if (!ids[0])
            fail(l, id, "the id is empty");
        for (int k = 0; k < HR__COUNT; k++)
            if (strcmp(heur_rules()[k].id, ids) == 0)
                fail(l, id, "\"%s\" is a built-in rule id; give the signature its own", ids);
        for (size_t k = 0; k < h->nsig; k++)
            if (strcmp(h->sig[k].id, ids) == 0)
                fail(l, id, "signature id \"%s\" used twice", ids);
        int t = -1;
        for (int k = 0; targets[k]; k++)
            if (strcmp(targets[k], jv_text(tg)) == 0)
                t = k;
        if (t < 0)
            fail(l, tg, "unknown target \"%s\" (banner, ehlo, reply or command)", jv_text(tg));
        const char *ps = str(l, pat, "pattern");
        char m[160];
        struct ere *re = ere_compile(ps, strlen(ps), m, sizeof(m));
        if (!re)
            fail(l, pat, "pattern %s", m);
        struct heur_signature *sg = &h->sig[h->nsig];
        memset(sg, 0, sizeof(*sg));
        sg->re = re;
        h->nsig++; /* owns the compiled expression from here */
        sg->id = dup(ids);
        sg->target = (enum heur_target)t;
        sg->pattern = dup(jv_text(pat));
        const struct jv *sv = jv_get(s, "severity");
        sg->severity = sv ? severity(l, sv) : HEUR_MEDIUM;
        const struct jv *ex = jv_get(s, "explanation");
        sg->explanation = dup(ex ? str(l, ex, "explanation") : "A custom signature matched.");
    }
}

static void ld_no_tls(struct cfg_ld *l, const struct jv *v, struct heur_config *h)
{
    want_type(l, v, JV_ARR, "no_tls_servers must be a list of addresses");
    for (size_t i = 0; i < v->n; i++) {
        if (h->nno_tls >= HEUR_MAX_NO_TLS)
            fail(l, v->v[i], "more than %d servers in no_tls_servers", HEUR_MAX_NO_TLS);
        const char *s = str(l, v->v[i], "a server");
        if (!s[0])
            fail(l, v->v[i], "empty server address");
        h->no_tls[h->nno_tls++] = dup(s);
    }
}

/* Applies a loaded document to o and frees it; `name` prefixes the errors.
 * Returns 0, or -1 with a message in err. */
static int cfg__apply(struct jv *doc, const char *name, struct an_options *o, char *err,
                      size_t errlen)
{
    struct cfg_ld l;
    memset(&l, 0, sizeof(l));
    l.path = name;
    l.err = err;
    l.errlen = errlen;
    if (setjmp(l.fail)) {
        jv_free(doc);
        return -1;
    }
    want_type(&l, doc, JV_OBJ, "the configuration must be a mapping");
    static const char *const keys[] = {"ports",      "tls_ports", "fail_on",        "rules",
                                       "thresholds", "timeouts",  "limits",         "signatures",
                                       "decode",     "defrag",    "no_tls_servers", NULL};
    known_keys(&l, doc, "the configuration", keys);
    const struct jv *v;
    if ((v = jv_get(doc, "ports")))
        ld_ports(&l, v, o->cap.ports, "ports", false);
    if ((v = jv_get(doc, "tls_ports")))
        ld_ports(&l, v, o->tls_ports, "tls_ports", true);
    if ((v = jv_get(doc, "fail_on"))) {
        if (strcmp(jv_text(v), "never") == 0)
            o->fail_on = HEUR_HIGH + 1;
        else
            o->fail_on = (int)severity(&l, v);
    }
    if ((v = jv_get(doc, "rules")))
        ld_rules(&l, v, &o->heur);
    if ((v = jv_get(doc, "thresholds")))
        ld_thresholds(&l, v, &o->heur);
    if ((v = jv_get(doc, "timeouts"))) {
        want_type(&l, v, JV_OBJ, "timeouts must be a mapping");
        static const char *const tk[] = {"idle", NULL};
        known_keys(&l, v, "timeouts", tk);
        const struct jv *x = jv_get(v, "idle");
        if (x)
            o->cap.idle_timeout = (sc_time)num(&l, x, 1, 86400) * SC_NS_PER_SEC;
    }
    if ((v = jv_get(doc, "limits"))) {
        want_type(&l, v, JV_OBJ, "limits must be a mapping");
        static const char *const lk[] = {"max_flows", "memory_mb", "transcript_lines", NULL};
        known_keys(&l, v, "limits", lk);
        const struct jv *x = jv_get(v, "max_flows");
        if (x)
            o->cap.max_flows = (uint32_t)num(&l, x, 16, 1u << 26);
        x = jv_get(v, "memory_mb");
        if (x) /* 0: no cap */
            o->cap.mem_max = (size_t)num(&l, x, 0, 1u << 20) << 20;
        x = jv_get(v, "transcript_lines");
        if (x)
            o->transcript_lines = (size_t)num(&l, x, 16, 10000000);
    }
    if ((v = jv_get(doc, "decode"))) {
        want_type(&l, v, JV_OBJ, "decode must be a mapping");
        static const char *const dk[] = {"vxlan_port", "geneve_port", "vlan_in_key",
                                         "tunnel_in_key", NULL};
        known_keys(&l, v, "decode", dk);
        struct cap_decode_opts *d = &o->cap.decode;
        const struct jv *x;
        if ((x = jv_get(v, "vxlan_port")))
            d->vxlan_port = (uint16_t)num(&l, x, 0, 65535);
        if ((x = jv_get(v, "geneve_port")))
            d->geneve_port = (uint16_t)num(&l, x, 0, 65535);
        if ((x = jv_get(v, "vlan_in_key")))
            d->vlan_in_ctx = boolean(&l, x);
        if ((x = jv_get(v, "tunnel_in_key")))
            d->tunnel_in_ctx = boolean(&l, x);
    }
    if ((v = jv_get(doc, "defrag"))) {
        want_type(&l, v, JV_OBJ, "defrag must be a mapping");
        static const char *const fk[] = {"memory_mb", "datagrams", "timeout", NULL};
        known_keys(&l, v, "defrag", fk);
        struct cap_defrag_limits *f = &o->cap.defrag;
        const struct jv *x;
        if ((x = jv_get(v, "memory_mb")))
            f->mem_max = (size_t)num(&l, x, 1, 4096) << 20;
        if ((x = jv_get(v, "datagrams")))
            f->max_datagrams = (uint32_t)num(&l, x, 16, 1u << 20);
        if ((x = jv_get(v, "timeout")))
            f->timeout = (sc_time)num(&l, x, 1, 3600) * SC_NS_PER_SEC;
    }
    if ((v = jv_get(doc, "signatures")))
        ld_signatures(&l, v, &o->heur);
    if ((v = jv_get(doc, "no_tls_servers")))
        ld_no_tls(&l, v, &o->heur);
    jv_free(doc);
    return 0;
}

int cfg_load(const char *path, struct an_options *o, char *err, size_t errlen)
{
    char jerr[CFG_ERR_MAX];
    struct jv *doc = jv_load_yaml(path, jerr, sizeof(jerr));
    if (!doc) {
        sc_strlcpy(err, errlen, jerr);
        return -1;
    }
    return cfg__apply(doc, path, o, err, errlen);
}

int cfg_load_mem(const char *p, size_t n, const char *name, struct an_options *o, char *err,
                 size_t errlen)
{
    char jerr[CFG_ERR_MAX];
    struct jv *doc = jv_load_yaml_mem(p, n, name, jerr, sizeof(jerr));
    if (!doc) {
        sc_strlcpy(err, errlen, jerr);
        return -1;
    }
    return cfg__apply(doc, name, o, err, errlen);
}

bool cfg_parse_ports(const char *s, uint8_t bitmap[CAP_PORTS_BITMAP_BYTES], bool allow_empty)
{
    uint8_t out[CAP_PORTS_BITMAP_BYTES];
    memset(out, 0, sizeof(out));
    const char *p = s;
    if (!*p && !allow_empty)
        return false;
    while (*p) {
        char *end;
        errno = 0;
        if (!sc_is_digit((uint8_t)*p))
            return false;
        unsigned long lo = strtoul(p, &end, 10), hi = lo;
        if (errno || lo < 1 || lo > 65535)
            return false;
        p = end;
        if (*p == '-') {
            p++;
            if (!sc_is_digit((uint8_t)*p))
                return false;
            hi = strtoul(p, &end, 10);
            if (errno || hi < lo || hi > 65535)
                return false;
            p = end;
        }
        for (unsigned long port = lo; port <= hi; port++)
            out[port >> 3] |= (uint8_t)(1u << (port & 7));
        if (*p == ',')
            p++;
        else if (*p)
            return false;
    }
    memcpy(bitmap, out, sizeof(out));
    return true;
}
