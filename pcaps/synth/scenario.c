/* scenario.c - scenario files (YAML) and the run that turns them into captures. */
#include "pcaps/synth/scenario.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/evp.h>

#include "pcaps/synth/oracle.h"

#define MS (1000000LL)
/* Distinct certificates (servers and middleboxes) in one scenario. */
#define SYN_TLS_CACHE 16
#define SEC (1000000000LL)

/* ---- loading ---- */

struct ld {
    const char *path;
    char *err;
    size_t errlen;
    bool failed;
};

static void ld_fail(struct ld *l, const struct jv *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void ld_fail(struct ld *l, const struct jv *at, const char *fmt, ...)
{
    if (l->failed)
        return;
    l->failed = true;
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    snprintf(l->err, l->errlen, "%s:%u:%u: %s", l->path, at ? at->line : 0, at ? at->col : 0, msg);
}

/* Checks that a mapping has only the keys listed (NULL-terminated). */
static void ld_keys(struct ld *l, const struct jv *o, const char *const *keys)
{
    if (!o)
        return;
    if (o->type != JV_OBJ) {
        ld_fail(l, o, "expected a mapping");
        return;
    }
    for (size_t i = 0; i < o->n; i++) {
        bool ok = false;
        for (int k = 0; keys[k] && !ok; k++)
            ok = strcmp(keys[k], o->k[i]) == 0;
        if (!ok)
            ld_fail(l, o->v[i], "unknown key \"%s\"", o->k[i]);
    }
}

static const char *ld_str(struct ld *l, const struct jv *o, const char *key, const char *def)
{
    const struct jv *v = jv_get(o, key);
    if (!v || v->type == JV_NULL)
        return def;
    if (v->type == JV_ARR || v->type == JV_OBJ) {
        ld_fail(l, v, "\"%s\" must be a single value", key);
        return def;
    }
    return v->s;
}

static double ld_num(struct ld *l, const struct jv *o, const char *key, double def)
{
    const char *s = ld_str(l, o, key, NULL);
    if (!s)
        return def;
    char *end;
    errno = 0;
    double d = strtod(s, &end);
    if (errno || *end || end == s) {
        /* Allow hexadecimal integers such as isn offsets. */
        unsigned long long u = strtoull(s, &end, 0);
        if (*end || end == s) {
            ld_fail(l, jv_get(o, key), "\"%s\" must be a number, not \"%s\"", key, s);
            return def;
        }
        d = (double)u;
    }
    return d;
}

static bool ld_bool(struct ld *l, const struct jv *o, const char *key, bool def)
{
    const char *s = ld_str(l, o, key, NULL);
    if (!s)
        return def;
    if (strcmp(s, "true") == 0 || strcmp(s, "yes") == 0)
        return true;
    if (strcmp(s, "false") == 0 || strcmp(s, "no") == 0)
        return false;
    ld_fail(l, jv_get(o, key), "\"%s\" must be true or false", key);
    return def;
}

static bool parse_addr(const char *s, struct cap_addr *a)
{
    uint8_t v4[4];
    if (inet_pton(AF_INET, s, v4) == 1) {
        memset(a->b, 0, 10);
        a->b[10] = a->b[11] = 0xff;
        memcpy(a->b + 12, v4, 4);
        return true;
    }
    return inet_pton(AF_INET6, s, a->b) == 1;
}

static void ld_addr(struct ld *l, const struct jv *o, const char *key, const char *def,
                    struct cap_addr *a)
{
    const char *s = ld_str(l, o, key, def);
    if (!parse_addr(s, a))
        ld_fail(l, jv_get(o, key), "\"%s\" is not an IPv4 or IPv6 address", s);
}

/* A list of strings (a scalar counts as a list of one). */
static size_t ld_list(struct ld *l, const struct jv *o, const char *key, const char **out)
{
    const struct jv *v = jv_get(o, key);
    if (!v || v->type == JV_NULL)
        return 0;
    if (v->type != JV_ARR) {
        if (v->type == JV_OBJ) {
            ld_fail(l, v, "\"%s\" must be a list", key);
            return 0;
        }
        out[0] = v->s;
        return 1;
    }
    if (v->n > SYN_MAX_LIST) {
        ld_fail(l, v, "\"%s\" has more than %d items", key, SYN_MAX_LIST);
        return 0;
    }
    for (size_t i = 0; i < v->n; i++) {
        if (v->v[i]->type == JV_ARR || v->v[i]->type == JV_OBJ) {
            ld_fail(l, v->v[i], "\"%s\" items must be strings", key);
            return 0;
        }
        out[i] = v->v[i]->s ? v->v[i]->s : "";
    }
    return v->n;
}

static sc_time secs(double d)
{
    return (sc_time)(d * (double)SEC);
}

/* An unsigned integer scalar (decimal or 0x hexadecimal) in [min, max]. */
static uint32_t ld_uint_node(struct ld *l, const struct jv *v, const char *what, uint32_t min,
                             uint32_t max)
{
    if (!v || v->type == JV_ARR || v->type == JV_OBJ || v->type == JV_NULL || !v->s) {
        ld_fail(l, v, "%s must be a number", what);
        return min;
    }
    char *end;
    errno = 0;
    unsigned long long u = strtoull(v->s, &end, 0);
    if (errno || *end || end == v->s || v->s[0] == '-' || u < min || u > max) {
        ld_fail(l, v, "%s must be %u..%u, not \"%s\"", what, min, max, v->s);
        return min;
    }
    return (uint32_t)u;
}

/* Default tunnel endpoints (RFC 5737 TEST-NET-2): the tunnel head and the far end or the
 * mirror collector. */
#define SYN_TUNNEL_SRC "198.51.100.1"
#define SYN_TUNNEL_DST "198.51.100.2"

/* One layer of an encap list: a bare name ("gre", "ipip"), or a mapping of one name to its
 * id, list of ids, or options. */
static void ld_encap_layer(struct ld *l, const struct jv *it, struct syn_encap_layer *y)
{
    static const char *const gre_keys[] = {"key", "seq", "csum", "src", "dst", NULL};
    static const char *const erspan_keys[] = {"session", "index", "src", "dst", NULL};
    static const char *const erspan3_keys[] = {"session", "src", "dst", NULL};
    static const char *const vni_keys[] = {"vni", "src", "dst", NULL};
    static const char *const ip_keys[] = {"src", "dst", NULL};
    const char *name = NULL;
    const struct jv *v = NULL;
    memset(y, 0, sizeof(*y));
    if (it->type == JV_OBJ && it->n == 1) {
        name = it->k[0];
        v = it->v[0];
    } else if (it->type != JV_ARR && it->type != JV_OBJ && it->s) {
        name = it->s;
    } else {
        ld_fail(l, it, "an encap layer is a name or a mapping of one name to its value");
        return;
    }
    int kind = -1;
    for (int k = 0; k < SYN_ENC__COUNT; k++)
        if (strcmp(name, syn_encap_kind_name((enum syn_encap_kind)k)) == 0)
            kind = k;
    if (kind < 0) {
        ld_fail(l, it, "unknown encap layer \"%s\"", name);
        return;
    }
    y->kind = (enum syn_encap_kind)kind;
    bool none = !v || v->type == JV_NULL || (v->type == JV_OBJ && v->n == 0);
    bool map = v && v->type == JV_OBJ;
    const struct jv *at = v ? v : it;
    if (none && y->kind != SYN_ENC_GRE && y->kind != SYN_ENC_IPIP && y->kind != SYN_ENC_IP6IP) {
        ld_fail(l, it, "%s needs a value (see pcaps/README.md, Encapsulations)", name);
        return;
    }
    if (syn_encap_is_tunnel(y->kind)) {
        ld_addr(l, map ? v : NULL, "src", SYN_TUNNEL_SRC, &y->src);
        ld_addr(l, map ? v : NULL, "dst", SYN_TUNNEL_DST, &y->dst);
    }
    switch (y->kind) {
    case SYN_ENC_VLAN:
        y->id[0] = ld_uint_node(l, at, "a VLAN id", 1, 4094);
        y->nid = 1;
        break;
    case SYN_ENC_QINQ:
    case SYN_ENC_MPLS: {
        bool qinq = y->kind == SYN_ENC_QINQ;
        size_t n = 0; /* a list, or (mpls) a single label */
        if (v && v->type == JV_ARR)
            n = v->n;
        else if (!none && !map && !qinq)
            n = 1;
        if ((qinq && n != 2) || n < 1 || n > SYN_ENCAP_IDS) {
            ld_fail(l, at, qinq ? "qinq takes [S-VLAN, C-VLAN]" : "mpls takes 1 to 4 labels");
            return;
        }
        for (size_t k = 0; k < n; k++)
            /* MPLS: 0..15 are reserved labels, and the reverse direction uses label + 1. */
            y->id[k] = ld_uint_node(l, v->type == JV_ARR ? v->v[k] : v,
                                    qinq ? "a VLAN id" : "an MPLS label", qinq ? 1 : 16,
                                    qinq ? 4094 : 0xffffe);
        y->nid = (uint8_t)n;
        break;
    }
    case SYN_ENC_PPPOE:
        y->id[0] = ld_uint_node(l, at, "a PPPoE session id", 1, 0xfffe);
        y->nid = 1;
        break;
    case SYN_ENC_GRE:
        if (!none && !map) {
            ld_fail(l, at, "gre takes a mapping {key:, seq:, csum:, src:, dst:}");
            return;
        }
        if (map) {
            ld_keys(l, v, gre_keys);
            if (jv_get(v, "key")) {
                y->key = true;
                y->id[0] = ld_uint_node(l, jv_get(v, "key"), "a GRE key", 0, 0xffffffffu);
                y->nid = 1;
            }
            y->seq = ld_bool(l, v, "seq", false);
            y->csum = ld_bool(l, v, "csum", false);
        }
        break;
    case SYN_ENC_ERSPAN2:
    case SYN_ENC_ERSPAN3:
    case SYN_ENC_VXLAN:
    case SYN_ENC_GENEVE: {
        bool vni = y->kind == SYN_ENC_VXLAN || y->kind == SYN_ENC_GENEVE;
        const char *idkey = vni ? "vni" : "session";
        if (map) {
            ld_keys(l, v, vni ? vni_keys : y->kind == SYN_ENC_ERSPAN2 ? erspan_keys : erspan3_keys);
            at = jv_get(v, idkey);
            if (!at) {
                ld_fail(l, v, "%s needs \"%s\"", name, idkey);
                return;
            }
            if (y->kind == SYN_ENC_ERSPAN2 && jv_get(v, "index"))
                y->index = ld_uint_node(l, jv_get(v, "index"), "an ERSPAN index", 0, 0xfffff);
        }
        y->id[0] =
            ld_uint_node(l, at, vni ? "a VNI" : "an ERSPAN session id", 0, vni ? 0xffffff : 1023);
        y->nid = 1;
        break;
    }
    case SYN_ENC_IPIP:
    case SYN_ENC_IP6IP:
        if (!none && !map)
            ld_fail(l, at, "%s takes nothing or a mapping {src:, dst:}", name);
        if (map)
            ld_keys(l, v, ip_keys);
        break;
    default:
        break;
    }
}

/* An encap list (outermost first) and its outer_mtu, from the mapping o that holds them. */
static void ld_encap(struct ld *l, const struct jv *o, struct syn_encap_cfg *c)
{
    const struct jv *list = jv_get(o, "encap");
    if (!list)
        return;
    memset(c, 0, sizeof(*c));
    if (list->type != JV_ARR) {
        ld_fail(l, list, "encap must be a list of layers, outermost first");
        return;
    }
    if (list->n > SYN_ENCAP_MAX) {
        ld_fail(l, list, "encap has more than %d layers", SYN_ENCAP_MAX);
        return;
    }
    for (size_t i = 0; i < list->n; i++)
        ld_encap_layer(l, list->v[i], &c->layer[i]);
    c->n = list->n;
    if (jv_get(o, "outer_mtu"))
        c->outer_mtu = ld_uint_node(l, jv_get(o, "outer_mtu"), "outer_mtu", 68, 65535);
}

static void ld_vantage(struct ld *l, const struct jv *o, struct syn_vantage_cfg *v, bool def_on,
                       const struct syn_encap_cfg *encap)
{
    static const char *const keys[] = {"vlan",         "loss",  "duplicate", "conflict", "position",
                                       "clock_offset", "encap", "outer_mtu", NULL};
    v->on = def_on || o != NULL;
    v->position = 0.1;
    v->encap = *encap;
    if (!o)
        return;
    ld_keys(l, o, keys);
    if (jv_get(o, "outer_mtu") && !jv_get(o, "encap"))
        ld_fail(l, jv_get(o, "outer_mtu"), "outer_mtu goes with the encap list beside it");
    ld_encap(l, o, &v->encap);
    if (v->encap.n && jv_get(o, "vlan"))
        ld_fail(l, jv_get(o, "vlan"), "with encap, give VLAN tags as vlan/qinq layers");
    const char *vl[SYN_MAX_LIST];
    size_t n = ld_list(l, o, "vlan", vl);
    if (n > 2)
        ld_fail(l, jv_get(o, "vlan"), "at most two VLAN tags");
    for (size_t i = 0; i < n && i < 2; i++)
        v->vlan[i] = (uint16_t)(atoi(vl[i]) & 0xfff);
    v->nvlan = (uint8_t)(n > 2 ? 2 : n);
    v->loss = ld_num(l, o, "loss", 0);
    v->duplicate = ld_num(l, o, "duplicate", 0);
    v->conflict = ld_num(l, o, "conflict", 0);
    v->position = ld_num(l, o, "position", 0.1);
    v->clock_offset = secs(ld_num(l, o, "clock_offset", 0));
}

static int ld_enum(struct ld *l, const struct jv *o, const char *key, const char *def,
                   const char *const *names)
{
    const char *s = ld_str(l, o, key, def);
    for (int i = 0; names[i]; i++)
        if (strcasecmp(s, names[i]) == 0)
            return i;
    ld_fail(l, jv_get(o, key), "\"%s\" is not a valid %s", s, key);
    return 0;
}

static char *own(struct syn_session_cfg *ss, char *s)
{
    if (ss->nowned < SYN_MAX_LIST)
        ss->owned[ss->nowned++] = s;
    return s;
}

static void ld_session(struct ld *l, struct syn_scenario *sc, const struct jv *o,
                       struct syn_session_cfg *ss)
{
    static const char *const keys[] = {"count", "at", "every", "bypass", "client", "server", NULL};
    static const char *const ckeys[] = {
        "persona",    "helo",      "from",           "to",           "rcpts",
        "messages",   "size",      "long_header",    "long_line",    "filename_len",
        "attachment", "starttls",  "pipelining",     "auth",         "require_exchange_auth",
        "script",     "end",       "reply_timeout",  "think",        "keystroke",
        "subject",    "dot_delay", "rst_after_quit", "implicit_tls", NULL};
    static const char *const skeys[] = {
        "persona", "hostname", "banner",       "banner_lines", "starttls",     "auth", "keywords",
        "reject",  "tls",      "idle_timeout", "think",        "implicit_tls", NULL};
    static const char *const tkeys[] = {"version", "cn", "issuer", "ec", NULL};
    static const char *const akeys[] = {"mech", "user", "pass", NULL};
    static const char *const cli_names[] = {"postfix", "exchange", "swaks", "telnet", "raw", NULL};
    static const char *const srv_names[] = {"postfix",      "sendmail",  "exchange",
                                            "exchange2003", "cisco-esa", NULL};
    static const char *const tls_names[] = {"auto", "always", "never", NULL};
    static const char *const end_names[] = {"quit", "fin", "rst", NULL};
    ld_keys(l, o, keys);
    ss->count = (int)ld_num(l, o, "count", 1);
    if (ss->count < 1 || ss->count > 1000000)
        ld_fail(l, jv_get(o, "count"), "count must be 1..1000000");
    ss->at = secs(ld_num(l, o, "at", 0.1));
    ss->every = secs(ld_num(l, o, "every", 1.0));
    ss->bypass = ld_bool(l, o, "bypass", false);

    const struct jv *c = jv_get(o, "client");
    ld_keys(l, c, ckeys);
    struct syn_client_cfg *cc = &ss->client;
    cc->kind = (enum syn_client_kind)ld_enum(l, c, "persona", "postfix", cli_names);
    cc->helo = ld_str(l, c, "helo", "mail.example.org");
    cc->mail_from = ld_str(l, c, "from", "alice@example.org");
    cc->nrcpt = ld_list(l, c, "to", ss->rcpt);
    size_t gen = (size_t)ld_num(l, c, "rcpts", 0);
    for (size_t i = 0; i < gen && cc->nrcpt < SYN_MAX_LIST; i++) {
        char *a = malloc(48);
        if (!a)
            abort();
        snprintf(a, 48, "user%zu@example.com", i + 1);
        ss->rcpt[cc->nrcpt++] = own(ss, a);
    }
    if (cc->nrcpt == 0)
        ss->rcpt[cc->nrcpt++] = "bob@example.com";
    cc->rcpt = ss->rcpt;
    cc->messages = (int)ld_num(l, c, "messages", 1);
    cc->body.size = (size_t)ld_num(l, c, "size", 2000);
    cc->body.long_header = (size_t)ld_num(l, c, "long_header", 0);
    cc->body.long_line = (size_t)ld_num(l, c, "long_line", 0);
    cc->body.filename_len = (size_t)ld_num(l, c, "filename_len", 0);
    cc->body.attachment = (size_t)ld_num(l, c, "attachment", 0);
    cc->body.subject = ld_str(l, c, "subject", NULL);
    cc->body.date = sc->start;
    cc->starttls = (enum syn_tls_use)ld_enum(l, c, "starttls", "auto", tls_names);
    cc->pipelining = ld_bool(l, c, "pipelining", true);
    cc->require_exchange_auth = ld_bool(l, c, "require_exchange_auth", false);
    const struct jv *auth = jv_get(c, "auth");
    if (auth) {
        ld_keys(l, auth, akeys);
        cc->auth_mech = ld_str(l, auth, "mech", "LOGIN");
        cc->auth_user = ld_str(l, auth, "user", "alice");
        cc->auth_pass = ld_str(l, auth, "pass", "secret");
        if (strcmp(cc->auth_mech, "PLAIN") != 0 && strcmp(cc->auth_mech, "LOGIN") != 0)
            ld_fail(l, jv_get(auth, "mech"), "auth mech must be PLAIN or LOGIN");
    }
    cc->nscript = ld_list(l, c, "script", ss->script);
    cc->script = ss->script;
    if (cc->kind == CLI_RAW && cc->nscript == 0)
        ld_fail(l, c, "the raw persona needs a script");
    cc->end = (enum syn_client_end)ld_enum(l, c, "end", "quit", end_names);
    cc->reply_timeout = secs(ld_num(l, c, "reply_timeout", 300));
    cc->think = secs(ld_num(l, c, "think", 0.0005));
    cc->keystroke = secs(ld_num(l, c, "keystroke", 0.12));
    cc->dot_delay = secs(ld_num(l, c, "dot_delay", 0));
    cc->rst_after_quit = ld_bool(l, c, "rst_after_quit", false);
    cc->implicit_tls = ld_bool(l, c, "implicit_tls", false);

    const struct jv *s = jv_get(o, "server");
    ld_keys(l, s, skeys);
    struct syn_server_cfg *sv = &ss->server;
    sv->kind = (enum syn_server_kind)ld_enum(l, s, "persona", "postfix", srv_names);
    sv->hostname = ld_str(l, s, "hostname", "mx.example.com");
    sv->banner = ld_str(l, s, "banner", NULL);
    sv->banner_lines = (int)ld_num(l, s, "banner_lines", 1);
    sv->starttls = ld_bool(l, s, "starttls", true);
    sv->auth = ld_bool(l, s, "auth", false);
    sv->nkeywords = ld_list(l, s, "keywords", ss->keywords);
    sv->keywords = ss->keywords;
    sv->nreject = ld_list(l, s, "reject", ss->reject);
    sv->reject = ss->reject;
    sv->idle_timeout = secs(ld_num(l, s, "idle_timeout", 300));
    sv->implicit_tls = ld_bool(l, s, "implicit_tls", false);
    sv->think = secs(ld_num(l, s, "think", 0.0003));
    const struct jv *t = jv_get(s, "tls");
    ld_keys(l, t, tkeys);
    ss->tls_version = (int)ld_num(l, t, "version", 12);
    if (ss->tls_version != 12 && ss->tls_version != 13)
        ld_fail(l, jv_get(t, "version"), "tls version must be 12 or 13");
    ss->tls_cn = ld_str(l, t, "cn", sv->hostname);
    ss->tls_issuer = ld_str(l, t, "issuer", NULL);
    ss->tls_ec = ld_bool(l, t, "ec", false);
}

struct syn_scenario *syn_scenario_load(const char *path, char *err, size_t errlen)
{
    struct ld l = {path, err, errlen, false};
    struct jv *doc = jv_load_yaml(path, err, errlen);
    if (!doc)
        return NULL;
    struct syn_scenario *sc = calloc(1, sizeof(*sc));
    if (!sc)
        abort();
    sc->doc = doc;
    static const char *const keys[] = {"description", "seed",    "start",     "duration",
                                       "capture",     "network", "middlebox", "sessions",
                                       "background",  NULL};
    static const char *const capkeys[] = {"format", "link",  "snaplen",   "outside",
                                          "inside", "encap", "outer_mtu", NULL};
    static const char *const netkeys[] = {
        "ipv6",        "client",       "server",      "port",
        "client_port", "rtt_outside",  "rtt_inside",  "hops_outside",
        "hops_inside", "loss_outside", "loss_inside", "reorder",
        "duplicate",   "client_os",    "server_os",   NULL};
    static const char *const mbkeys[] = {
        "model",      "mask_spaces", "no_space_after_code", "mask_vrfy", "reset", "nat",
        "isn_offset", "cert_cn",     "special_character",   "limits",    "ttl",   "mss",
        NULL};
    static const char *const limkeys[] = {"cmd_line", "rcpt",     "header_line",
                                          "sender",   "filename", NULL};
    static const char *const bgkeys[] = {"tls_flows", "tls_bytes", "dns_queries", NULL};
    static const char *const fmt_names[] = {"pcap", "pcap-ns", "pcapng", NULL};
    static const char *const link_names[] = {"ethernet", "sll2", "raw", NULL};
    static const char *const os_names[] = {"linux", "windows", NULL};
    ld_keys(&l, doc, keys);
    sc->description = ld_str(&l, doc, "description", "");
    sc->seed = (uint64_t)ld_num(&l, doc, "seed", 1);
    sc->start = (int64_t)ld_num(&l, doc, "start", 1709287200); /* 2024-03-01 10:00 UTC */
    sc->duration = secs(ld_num(&l, doc, "duration", 3600));

    const struct jv *cap = jv_get(doc, "capture");
    ld_keys(&l, cap, capkeys);
    sc->format = (enum syn_format)ld_enum(&l, cap, "format", "pcap", fmt_names);
    sc->link = (enum syn_link)ld_enum(&l, cap, "link", "ethernet", link_names);
    sc->snaplen = (uint32_t)ld_num(&l, cap, "snaplen", 262144);
    struct syn_encap_cfg encap;
    memset(&encap, 0, sizeof(encap));
    if (jv_get(cap, "outer_mtu") && !jv_get(cap, "encap"))
        ld_fail(&l, jv_get(cap, "outer_mtu"), "outer_mtu goes with the encap list beside it");
    ld_encap(&l, cap, &encap);
    ld_vantage(&l, jv_get(cap, "outside"), &sc->outside, true, &encap);
    ld_vantage(&l, jv_get(cap, "inside"), &sc->inside, false, &encap);

    const struct jv *net = jv_get(doc, "network");
    ld_keys(&l, net, netkeys);
    sc->ipv6 = ld_bool(&l, net, "ipv6", false);
    ld_addr(&l, net, "client", sc->ipv6 ? "2001:db8:c::10" : "203.0.113.10", &sc->client);
    ld_addr(&l, net, "server", sc->ipv6 ? "2001:db8:5::25" : "192.0.2.25", &sc->server);
    if (cap_addr_is_v4(&sc->client) != cap_addr_is_v4(&sc->server))
        ld_fail(&l, net, "client and server must be of the same IP version");
    sc->ipv6 = !cap_addr_is_v4(&sc->server);
    sc->port = (uint16_t)ld_num(&l, net, "port", 25);
    sc->client_port = (uint16_t)ld_num(&l, net, "client_port", 40000);
    sc->rtt_outside = secs(ld_num(&l, net, "rtt_outside", 0.030));
    sc->rtt_inside = secs(ld_num(&l, net, "rtt_inside", 0.001));
    sc->hops_outside = (uint8_t)ld_num(&l, net, "hops_outside", 6);
    sc->hops_inside = (uint8_t)ld_num(&l, net, "hops_inside", 1);
    sc->loss_outside = ld_num(&l, net, "loss_outside", 0);
    sc->loss_inside = ld_num(&l, net, "loss_inside", 0);
    sc->reorder = ld_num(&l, net, "reorder", 0);
    sc->duplicate = ld_num(&l, net, "duplicate", 0);
    sc->client_windows = ld_enum(&l, net, "client_os", "linux", os_names) == 1;
    sc->server_windows = ld_enum(&l, net, "server_os", "linux", os_names) == 1;
    /* Encapsulations need the inner IP version and an Ethernet capture. */
    const struct syn_vantage_cfg *vcs[2] = {&sc->outside, &sc->inside};
    const char *vnames[2] = {"outside", "inside"};
    for (int k = 0; k < 2; k++) {
        if (!vcs[k]->encap.n)
            continue;
        const struct jv *at = jv_get(jv_get(cap, vnames[k]), "encap");
        at = at ? at : jv_get(cap, "encap");
        const char *why = syn_encap_check(&vcs[k]->encap, sc->ipv6);
        if (why)
            ld_fail(&l, at, "%s", why);
        if (sc->link != SYN_LINK_ETHERNET)
            ld_fail(&l, at, "encap needs link: ethernet (the outermost header)");
    }

    const struct jv *mb = jv_get(doc, "middlebox");
    ld_keys(&l, mb, mbkeys);
    const char *model = ld_str(&l, mb, "model", "none");
    int m = mb_model_parse(model);
    if (m < 0) {
        ld_fail(&l, jv_get(mb, "model"), "unknown middlebox model \"%s\"", model);
        m = 0;
    }
    mb_cfg_defaults(&sc->mbox, (enum mb_model)m);
    sc->mbox.mask_spaces = ld_bool(&l, mb, "mask_spaces", sc->mbox.mask_spaces);
    sc->mbox.no_space_after_code = ld_bool(&l, mb, "no_space_after_code", false);
    sc->mbox.mask_vrfy = ld_bool(&l, mb, "mask_vrfy", true);
    sc->mbox.reset_on_drop = ld_bool(&l, mb, "reset", sc->mbox.reset_on_drop);
    sc->mbox.special_character = ld_bool(&l, mb, "special_character", sc->mbox.special_character);
    sc->mbox.ttl = (uint8_t)ld_num(&l, mb, "ttl", sc->mbox.ttl);
    sc->mbox.mss = (uint16_t)ld_num(&l, mb, "mss", sc->mbox.mss);
    const char *nat = ld_str(&l, mb, "nat", NULL);
    if (nat) {
        sc->mbox.nat = true;
        if (!parse_addr(nat, &sc->mbox.nat_addr))
            ld_fail(&l, jv_get(mb, "nat"), "\"%s\" is not an address", nat);
    }
    sc->mbox.isn_offset = (uint32_t)ld_num(&l, mb, "isn_offset", 0);
    sc->mbox_cn = ld_str(&l, mb, "cert_cn", "firewall.example.net");
    const struct jv *lim = jv_get(mb, "limits");
    ld_keys(&l, lim, limkeys);
    sc->mbox.cmd_line_max = (size_t)ld_num(&l, lim, "cmd_line", 512);
    sc->mbox.rcpt_max = (size_t)ld_num(&l, lim, "rcpt", 100);
    sc->mbox.header_line_max = (size_t)ld_num(&l, lim, "header_line", 998);
    sc->mbox.sender_max = (size_t)ld_num(&l, lim, "sender", 320);
    sc->mbox.filename_max = (size_t)ld_num(&l, lim, "filename", 255);

    const struct jv *ss = jv_get(doc, "sessions");
    if (ss && ss->type != JV_ARR)
        ld_fail(&l, ss, "sessions must be a list");
    for (size_t i = 0; ss && ss->type == JV_ARR && i < ss->n; i++) {
        if (sc->nsessions >= SYN_MAX_SESSIONS) {
            ld_fail(&l, ss->v[i], "more than %d session entries", SYN_MAX_SESSIONS);
            break;
        }
        ld_session(&l, sc, ss->v[i], &sc->sessions[sc->nsessions++]);
    }
    const struct jv *bg = jv_get(doc, "background");
    ld_keys(&l, bg, bgkeys);
    sc->bg_tls_flows = (int)ld_num(&l, bg, "tls_flows", 0);
    sc->bg_tls_bytes = (size_t)ld_num(&l, bg, "tls_bytes", 100000);
    sc->bg_dns = (int)ld_num(&l, bg, "dns_queries", 0);
    if (l.failed) {
        syn_scenario_free(sc);
        return NULL;
    }
    return sc;
}

void syn_scenario_free(struct syn_scenario *sc)
{
    if (!sc)
        return;
    for (size_t i = 0; i < sc->nsessions; i++)
        for (size_t k = 0; k < sc->sessions[i].nowned; k++)
            free(sc->sessions[i].owned[k]);
    jv_free(sc->doc);
    free(sc);
}

/* ---- running ---- */

struct run_sess {
    const struct syn_session_cfg *cfg;
    struct sc_buf log[4]; /* outside c2s, outside s2c, inside c2s, inside s2c */
    struct sim_link out, in;
    struct sim_vantage vo, vi;
    struct mb_box *mb;
    struct syn_server *sv;
    struct syn_client *cl;
    struct tlsgen_ctx *tls, *mtls;
};

struct run {
    const struct syn_scenario *sc;
    struct sim *sim;
    struct syn_writer *w[2];
    struct syn_encap *enc[2]; /* the encapsulation of each capture file, or NULL */
    struct run_sess *sess;
    size_t nsess;
    struct bg_flow *bg;
    size_t nbg;
    bool logs; /* record the streams for the oracle */
    /* One TLS context per certificate: a server (or the intercepting
     * middlebox) presents the same certificate in every session, as a real
     * one does.  The contexts' generators advance from session to session,
     * so handshakes still differ. */
    struct {
        int version;
        bool ec;
        const char *cn, *issuer;
        struct tlsgen_ctx *ctx;
    } tls_cache[SYN_TLS_CACHE];
    size_t ntls;
};

static void link_init(struct run *r, struct sim_link *l, struct sim_vantage *v,
                      const struct syn_vantage_cfg *vc, struct syn_writer *w, sc_time rtt,
                      uint8_t hops, double loss, uint64_t stream)
{
    const struct syn_scenario *sc = r->sc;
    memset(l, 0, sizeof(*l));
    l->delay = rtt / 2;
    l->loss = loss;
    l->reorder = sc->reorder;
    l->reorder_delay = rtt / 4 + MS;
    l->duplicate = sc->duplicate;
    /* hops[1]: routers between the host and the vantage; the vantage sits
     * next to the middlebox, so hops[0] is 0. */
    l->hops[1] = hops;
    syn_rng_seed(&l->rng, sc->seed, stream);
    if (vc->on && w) {
        memset(v, 0, sizeof(*v));
        v->w = w;
        v->link.type = sc->link;
        v->link.nvlan = vc->nvlan;
        memcpy(v->link.vlan, vc->vlan, sizeof(v->link.vlan));
        /* Locally administered MACs: the vantage's two neighbours, the
         * middlebox with one address per interface (outside ..:02, inside
         * ..:03), so the two legs never share an address. */
        bool in = vc == &sc->inside;
        uint8_t a[6] = {0x02, 0x00, 0x5e, 0x10, 0x00, (uint8_t)(in ? 0x03 : 0x01)};
        uint8_t b[6] = {0x02, 0x00, 0x5e, 0x10, 0x00, (uint8_t)(in ? 0x04 : 0x02)};
        memcpy(v->link.src_mac, a, 6);
        memcpy(v->link.dst_mac, b, 6);
        v->position = vc->position;
        v->loss = vc->loss;
        v->duplicate = vc->duplicate;
        v->conflict = vc->conflict;
        v->clock_offset = vc->clock_offset;
        v->encap = r->enc[in];
        v->host_is_client = !in; /* the outside link ends at the client, the inside at the server */
        syn_rng_seed(&v->rng, sc->seed, stream ^ 0x7a5);
        l->vantage = v;
    }
}

static void ep_profile(struct sim_ep_opts *o, bool windows, bool v6, struct syn_rng *rng)
{
    o->mss = v6 ? 1440 : 1460;
    o->sack = true;
    o->ws = true;
    o->ts = !windows;
    o->wscale = windows ? 8 : 7;
    o->ttl = windows ? 128 : 64;
    o->iss = (uint32_t)syn_rng_next(rng);
    o->ts_base = (uint32_t)syn_rng_next(rng);
    o->ipid = (uint16_t)syn_rng_next(rng);
    o->delack = 40 * MS;
    o->rto_min = 200 * MS;
    o->max_retries = 6;
}

static struct tlsgen_ctx *make_tls(const struct syn_scenario *sc, const struct syn_session_cfg *ss,
                                   const char *cn, const char *issuer, uint64_t seed)
{
    struct tlsgen_opts to;
    memset(&to, 0, sizeof(to));
    to.version = ss->tls_version;
    to.seed = seed;
    to.cn = cn;
    to.issuer_cn = issuer;
    to.ec = ss->tls_ec;
    to.not_before = sc->start - 30 * 86400;
    to.not_after = sc->start + 365 * 86400;
    to.sni = NULL;
    return tlsgen_ctx_new(&to);
}

static bool same_str(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a && b && strcmp(a, b) == 0);
}

/* The run's context for this certificate, created on first use. */
static struct tlsgen_ctx *tls_for(struct run *r, const struct syn_session_cfg *ss, const char *cn,
                                  const char *issuer, uint64_t seed)
{
    for (size_t i = 0; i < r->ntls; i++)
        if (r->tls_cache[i].version == ss->tls_version && r->tls_cache[i].ec == ss->tls_ec &&
            same_str(r->tls_cache[i].cn, cn) && same_str(r->tls_cache[i].issuer, issuer))
            return r->tls_cache[i].ctx;
    if (r->ntls >= SYN_TLS_CACHE) {
        fprintf(stderr, "smtpscope-synth: more than %d TLS configurations\n", SYN_TLS_CACHE);
        return NULL;
    }
    struct tlsgen_ctx *c = make_tls(r->sc, ss, cn, issuer, seed);
    if (c) {
        r->tls_cache[r->ntls].version = ss->tls_version;
        r->tls_cache[r->ntls].ec = ss->tls_ec;
        r->tls_cache[r->ntls].cn = cn;
        r->tls_cache[r->ntls].issuer = issuer;
        r->tls_cache[r->ntls++].ctx = c;
    }
    return c;
}

static int session_setup(struct run *r, const struct syn_session_cfg *ss, size_t idx, sc_time at)
{
    const struct syn_scenario *sc = r->sc;
    struct run_sess *rs = &r->sess[idx];
    rs->cfg = ss;
    struct syn_rng rng;
    syn_rng_seed(&rng, sc->seed, 0x1000 + idx);
    link_init(r, &rs->out, &rs->vo, &sc->outside, r->w[0], sc->rtt_outside, sc->hops_outside,
              sc->loss_outside, 0x2000 + idx * 2);
    link_init(r, &rs->in, &rs->vi, &sc->inside, r->w[1], sc->rtt_inside, sc->hops_inside,
              sc->loss_inside, 0x2001 + idx * 2);
    uint16_t cport = (uint16_t)(sc->client_port + (idx * 7) % 20000);
    struct sim_ep_opts co, so;
    memset(&co, 0, sizeof(co));
    memset(&so, 0, sizeof(so));
    ep_profile(&co, sc->client_windows, sc->ipv6, &rng);
    ep_profile(&so, sc->server_windows, sc->ipv6, &rng);
    co.addr = sc->client;
    co.port = cport;
    co.peer_addr = sc->server;
    co.peer_port = sc->port;
    struct mb_cfg mc = sc->mbox;
    if (ss->bypass) {
        /* Another path: the device does not see this connection. */
        mc.model = MB_NONE;
        mc.nat = false;
        mc.isn_offset = 0;
    }
    if (mc.nat)
        mc.nat_port = (uint16_t)(30000 + idx % 30000);
    so.addr = sc->server;
    so.port = sc->port;
    so.peer_addr = mc.nat ? mc.nat_addr : sc->client;
    so.peer_port = mc.nat ? mc.nat_port : cport;
    /* TLS: the server's certificate, and the middlebox's own when it intercepts. */
    struct syn_server_cfg svc = ss->server;
    struct syn_client_cfg clc = ss->client;
    uint64_t tseed = sc->seed * 0x9e3779b97f4a7c15ull + idx + 1;
    if (svc.starttls || mc.model == MB_TLS_INTERCEPT) {
        rs->tls = tls_for(r, ss, ss->tls_cn, ss->tls_issuer, tseed);
        if (!rs->tls)
            return -1;
    }
    if (mc.model == MB_TLS_INTERCEPT) {
        rs->mtls = tls_for(r, ss, sc->mbox_cn, "Middlebox Inspection CA", tseed ^ 0xf00d);
        if (!rs->mtls)
            return -1;
        mc.own_tls = rs->mtls;
        mc.server_tls = rs->tls;
    }
    svc.tls = rs->tls;
    clc.tls = mc.model == MB_TLS_INTERCEPT ? rs->mtls : rs->tls;
    /* Client-side view of the server for a proxy, and server-side view of the client. */
    struct sim_ep_opts proxy_srv = so, proxy_cli = co;
    proxy_srv.peer_addr = sc->client;
    proxy_srv.peer_port = cport;
    rs->mb = mb_box_new(r->sim, &mc, &rs->out, &rs->in, &proxy_srv, &proxy_cli,
                        sc->seed ^ (0x3000 + idx));
    rs->sv = syn_server_new(r->sim, &svc, &so, &rs->in, 1, sc->seed ^ (0x4000 + idx));
    rs->cl = syn_client_new(r->sim, &clc, &co, &rs->out, 1, at, sc->seed ^ (0x5000 + idx));
    if (r->logs) {
        for (int k = 0; k < 4; k++)
            sc_buf_init(&rs->log[k], 0);
        sim_ep_set_log(syn_client_ep(rs->cl), &rs->log[0]);
        mb_box_set_logs(rs->mb, &rs->log[2], &rs->log[1]);
        sim_ep_set_log(syn_server_ep(rs->sv), &rs->log[3]);
    }
    return 0;
}

/* ---- background traffic: bulk TLS-like flows on 443 and DNS over UDP ---- */

struct bg_flow {
    struct sim_link out, in;
    struct sim_vantage vo, vi;
    struct mb_box *mb;
    struct sim_ep *c, *s;
    size_t want, got;
    bool started;
    struct syn_rng rng;
    bool dns;
    struct cap_addr caddr, saddr;
    uint16_t cport;
    struct sim_node cnode, snode;
};

static void bg_record(struct sc_buf *b, struct syn_rng *rng, uint8_t type, size_t n)
{
    uint8_t h[5] = {type, 3, 3, (uint8_t)(n >> 8), (uint8_t)n};
    sc_buf_append(b, h, 5);
    for (size_t i = 0; i < n; i++)
        sc_buf_putc(b, (uint8_t)syn_rng_next(rng));
}

static void bg_c_connected(struct sim *s, struct sim_ep *e, void *app)
{
    struct bg_flow *f = app;
    struct sc_buf b;
    sc_buf_init(&b, 0);
    bg_record(&b, &f->rng, 22, 250 + syn_rng_below(&f->rng, 200));
    sim_ep_write(s, e, b.data, b.len);
    sc_buf_free(&b);
}

static void bg_s_data(struct sim *s, struct sim_ep *e, void *app, const uint8_t *p, size_t n)
{
    (void)p;
    (void)n;
    struct bg_flow *f = app;
    if (f->started)
        return;
    f->started = true;
    struct sc_buf b;
    sc_buf_init(&b, 0);
    bg_record(&b, &f->rng, 22, 3000 + syn_rng_below(&f->rng, 1500));
    for (size_t sent = 0; sent < f->want;) {
        size_t k = 1000 + syn_rng_below(&f->rng, 15000);
        bg_record(&b, &f->rng, 23, k);
        sent += k;
    }
    sim_ep_write(s, e, b.data, b.len);
    sim_ep_close(s, e);
    sc_buf_free(&b);
}

static void bg_c_data(struct sim *s, struct sim_ep *e, void *app, const uint8_t *p, size_t n)
{
    (void)s;
    (void)e;
    (void)p;
    struct bg_flow *f = app;
    f->got += n;
}

static void bg_c_fin(struct sim *s, struct sim_ep *e, void *app)
{
    (void)app;
    sim_ep_close(s, e);
}

static const struct sim_ep_cb bg_ccb = {bg_c_connected, bg_c_data, bg_c_fin, NULL};
static const struct sim_ep_cb bg_scb = {NULL, bg_s_data, NULL, NULL};

static void bg_connect_ev(struct sim *s, void *arg)
{
    struct bg_flow *f = arg;
    sim_ep_connect(s, f->c);
}

/* A DNS query for a name and its answer (RFC 1035 4.1). */
static size_t dns_msg(uint8_t *out, uint16_t id, const char *name, bool answer, const uint8_t ip[4])
{
    size_t o = 0;
    out[o++] = (uint8_t)(id >> 8);
    out[o++] = (uint8_t)id;
    out[o++] = answer ? 0x81 : 0x01;
    out[o++] = answer ? 0x80 : 0x00;
    out[o++] = 0;
    out[o++] = 1; /* QDCOUNT */
    out[o++] = 0;
    out[o++] = answer ? 1 : 0;
    memset(out + o, 0, 4);
    o += 4;
    const char *p = name;
    while (*p) {
        const char *dot = strchr(p, '.');
        size_t len = dot ? (size_t)(dot - p) : strlen(p);
        out[o++] = (uint8_t)len;
        memcpy(out + o, p, len);
        o += len;
        p += len + (dot ? 1 : 0);
    }
    out[o++] = 0;
    static const uint8_t q[4] = {0, 1, 0, 1}; /* type A, class IN */
    memcpy(out + o, q, 4);
    o += 4;
    if (answer) {
        static const uint8_t rr[12] = {0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0x0e, 0x10, 0, 4};
        memcpy(out + o, rr, 12);
        o += 12;
        memcpy(out + o, ip, 4);
        o += 4;
    }
    return o;
}

static void dns_srv_recv(struct sim *s, struct sim_node *n, struct sim_link *from,
                         struct sim_pkt *p)
{
    struct bg_flow *f = (struct bg_flow *)((char *)n - offsetof(struct bg_flow, snode));
    if (p->udp && p->len >= 12) {
        uint16_t id = (uint16_t)(p->data[0] << 8 | p->data[1]);
        uint8_t ip[4] = {198, 51, 100, (uint8_t)(id & 0xff)};
        struct sim_pkt *a = sim_pkt_new(512);
        a->udp = true;
        a->ip.src = p->ip.dst;
        a->ip.dst = p->ip.src;
        a->ip.ttl = 64;
        a->ip.ipid = (uint16_t)syn_rng_next(&f->rng);
        a->u.sport = p->u.dport;
        a->u.dport = p->u.sport;
        a->len = dns_msg(a->data, id, "mail.example.com", true, ip);
        sim_send(s, from, 1, a);
    }
    sim_pkt_free(p);
}

static void dns_cli_recv(struct sim *s, struct sim_node *n, struct sim_link *from,
                         struct sim_pkt *p)
{
    (void)s;
    (void)n;
    (void)from;
    sim_pkt_free(p);
}

static void dns_query_ev(struct sim *s, void *arg)
{
    struct bg_flow *f = arg;
    struct sim_pkt *q = sim_pkt_new(512);
    uint16_t id = (uint16_t)syn_rng_next(&f->rng);
    q->udp = true;
    q->ip.src = f->caddr;
    q->ip.dst = f->saddr;
    q->ip.ttl = 64;
    q->ip.ipid = (uint16_t)syn_rng_next(&f->rng);
    q->u.sport = f->cport;
    q->u.dport = 53;
    static const uint8_t none[4] = {0, 0, 0, 0};
    q->len = dns_msg(q->data, id, "mail.example.com", false, none);
    sim_send(s, &f->out, 1, q);
}

static void bg_setup(struct run *r)
{
    const struct syn_scenario *sc = r->sc;
    size_t n = (size_t)(sc->bg_tls_flows > 0 ? sc->bg_tls_flows : 0) +
               (size_t)(sc->bg_dns > 0 ? sc->bg_dns : 0);
    if (n == 0)
        return;
    r->bg = calloc(n, sizeof(*r->bg));
    if (!r->bg)
        abort();
    r->nbg = n;
    struct mb_cfg none;
    mb_cfg_defaults(&none, MB_NONE);
    for (size_t i = 0; i < n; i++) {
        struct bg_flow *f = &r->bg[i];
        f->dns = i >= (size_t)(sc->bg_tls_flows > 0 ? sc->bg_tls_flows : 0);
        syn_rng_seed(&f->rng, sc->seed, 0x9000 + i);
        link_init(r, &f->out, &f->vo, &sc->outside, r->w[0], sc->rtt_outside, sc->hops_outside, 0,
                  0x8000 + i * 2);
        link_init(r, &f->in, &f->vi, &sc->inside, r->w[1], sc->rtt_inside, sc->hops_inside, 0,
                  0x8001 + i * 2);
        f->mb = mb_box_new(r->sim, &none, &f->out, &f->in, NULL, NULL, sc->seed ^ (0xa000 + i));
        f->caddr = sc->client;
        /* Other hosts: vary the last byte of the client address. */
        f->caddr.b[15] = (uint8_t)(f->caddr.b[15] + 1 + i % 200);
        f->saddr = sc->server;
        f->saddr.b[15] = (uint8_t)(f->saddr.b[15] + 7 + i % 100);
        f->cport = (uint16_t)(50000 + i);
        sc_time at = (sc_time)syn_rng_below(
            &f->rng, (uint64_t)(sc->duration > 20 * SEC ? 20 * SEC : sc->duration / 2 + 1));
        if (f->dns) {
            f->snode.recv = dns_srv_recv;
            f->cnode.recv = dns_cli_recv;
            f->out.end[1] = &f->cnode;
            f->in.end[1] = &f->snode;
            f->saddr = sc->server;
            f->saddr.b[15] = (uint8_t)(f->saddr.b[15] + 53);
            sim_at(r->sim, at, dns_query_ev, f);
            continue;
        }
        f->want = sc->bg_tls_bytes;
        struct sim_ep_opts co, so;
        memset(&co, 0, sizeof(co));
        memset(&so, 0, sizeof(so));
        ep_profile(&co, false, sc->ipv6, &f->rng);
        ep_profile(&so, false, sc->ipv6, &f->rng);
        co.addr = f->caddr;
        co.port = f->cport;
        co.peer_addr = f->saddr;
        co.peer_port = 443;
        so.addr = f->saddr;
        so.port = 443;
        so.peer_addr = f->caddr;
        so.peer_port = f->cport;
        f->c = sim_ep_new(r->sim, &co, &f->out, 1, &bg_ccb, f);
        f->s = sim_ep_new(r->sim, &so, &f->in, 1, &bg_scb, f);
        sim_at(r->sim, at, bg_connect_ev, f);
    }
}

/* YAML double-quoted string, with captured-text escaping kept simple: the
 * views hold printable text. */
static void yq(FILE *f, const char *s, size_t n)
{
    fputc('"', f);
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '"' || ch == '\\')
            fprintf(f, "\\%c", ch);
        else if (ch < 0x20 || ch >= 0x7f)
            fprintf(f, "\\x%02x", ch);
        else
            fputc(ch, f);
    }
    fputc('"', f);
}

static const char *view_starttls(const struct syn_view *v)
{
    if (!v->attempted)
        return v->offered ? "not_attempted" : "not_offered";
    if (!v->replied)
        return "no_reply";
    if (v->starttls_code != 220)
        return "refused";
    if (syn_view_cleartext_after_tls(v))
        return "cleartext_after_220";
    return v->tls ? "tls_established" : "accepted";
}

static void write_view(FILE *f, const struct syn_view *v, const char *client, const char *server,
                       const char *encap, bool full, bool implicit, const char *const *rules,
                       size_t nrules)
{
    fprintf(f, "  - server: \"%s\"\n    client: \"%s\"\n", server, client);
    if (encap)
        fprintf(f, "    encap: \"%s\"\n", encap);
    /* With capture loss the evidence may be gone: then the findings may
     * only be fewer, never others. */
    fputs(full ? "    findings: [" : "    findings_at_most: [", f);
    for (size_t i = 0; i < nrules; i++)
        fprintf(f, "%s%s", i ? ", " : "", rules[i]);
    fputs("]\n", f);
    if (!full)
        return;
    if (v->banner.len) {
        fputs("    banner: ", f);
        yq(f, (const char *)v->banner.data, v->banner.len);
        fputc('\n', f);
    }
    if (v->helo.len) {
        fputs("    helo: ", f);
        yq(f, (const char *)v->helo.data, v->helo.len);
        fputc('\n', f);
    }
    if (v->keywords_set) {
        fputs("    ehlo_keywords: [", f);
        const char *k = (const char *)v->keywords.data;
        for (size_t i = 0; i < v->nkeywords; i++) {
            if (i)
                fputs(", ", f);
            yq(f, k, strlen(k));
            k += strlen(k) + 1;
        }
        fputs("]\n", f);
    }
    if (implicit)
        fputs("    implicit_tls: true\n", f);
    fprintf(f, "    starttls: {offered: %s, attempted: %s, result: %s}\n",
            v->offered ? "true" : "false", v->attempted ? "true" : "false", view_starttls(v));
    if (v->mail_from.len) {
        fputs("    mail_from: ", f);
        yq(f, (const char *)v->mail_from.data, v->mail_from.len);
        fputc('\n', f);
    }
    fprintf(f, "    rcpt_count: %d\n    messages: %d\n", v->rcpt_count, v->messages);
    if (v->auth.len)
        fprintf(f, "    auth: %s\n", sc_buf_str(&v->auth));
    const struct sc_buf *lists[2] = {&v->commands, &v->replies};
    for (int k = 0; k < 2; k++) {
        /* Blank-separated in the view, a YAML flow list here. */
        fputs(k == 0 ? "    commands: [" : "    replies: [", f);
        for (const char *p = sc_buf_str(lists[k]); *p; p++) {
            if (*p == ' ')
                fputs(", ", f);
            else
                fputc(*p, f);
        }
        fputs("]\n", f);
    }
}

static void sha256_hex(const struct sc_buf *b, char out[65])
{
    unsigned char md[32];
    unsigned int n = 0;
    EVP_Digest(b->data ? b->data : (const uint8_t *)"", b->len, md, &n, EVP_sha256(), NULL);
    for (unsigned i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* The streams oracle: per session, what each vantage must show. */
static int write_streams(const struct run *r, const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "smtpscope-synth: %s: %s\n", path, strerror(errno));
        return -1;
    }
    const struct syn_scenario *sc = r->sc;
    fputs("# Generated by smtpscope-synth: the bytes of each TCP stream at each vantage\n"
          "# (length, SHA-256), as the model sent them; checked against tshark.\n",
          f);
    fprintf(f, "middlebox: %s\nsessions:\n", mb_model_name(sc->mbox.model));
    static const char *const names[4] = {"outside_c2s", "outside_s2c", "inside_c2s", "inside_s2c"};
    for (size_t i = 0; i < r->nsess; i++) {
        const struct run_sess *rs = &r->sess[i];
        char cl[80], icl[80], sv[80];
        uint16_t cport = (uint16_t)(sc->client_port + (i * 7) % 20000);
        cap_endpoint_str(cl, sizeof(cl), &sc->client, cport);
        cap_endpoint_str(icl, sizeof(icl), sc->mbox.nat ? &sc->mbox.nat_addr : &sc->client,
                         sc->mbox.nat ? (uint16_t)(30000 + i % 30000) : cport);
        cap_endpoint_str(sv, sizeof(sv), &sc->server, sc->port);
        fprintf(f, "  - outside: {client: \"%s\", server: \"%s\"%s}\n", cl, sv,
                sc->outside.loss > 0 ? ", lossy: true" : "");
        fprintf(f, "    inside: {client: \"%s\", server: \"%s\"%s}\n", icl, sv,
                sc->inside.loss > 0 ? ", lossy: true" : "");
        for (int k = 0; k < 4; k++) {
            char h[65];
            sha256_hex(&rs->log[k], h);
            fprintf(f, "    %s: {len: %zu, sha256: %s}\n", names[k], rs->log[k].len, h);
        }
    }
    return fclose(f) == 0 ? 0 : -1;
}

/* Rule ids expected of one session, sorted. */
struct exp_rules {
    const char *v[SYN_ORACLE_MAX + 2];
    size_t n;
};

static void er_add(struct exp_rules *e, const char *rule)
{
    for (size_t k = 0; k < e->n; k++)
        if (strcmp(e->v[k], rule) == 0)
            return;
    size_t k = e->n++;
    for (; k > 0 && strcmp(e->v[k - 1], rule) > 0; k--)
        e->v[k] = e->v[k - 1];
    e->v[k] = rule;
}

/* The compare oracle: per session, the differences the two captures must
 * show (oracle.c), keyed by the outside client endpoint. */
static int write_compare(const struct run *r, const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "smtpscope-synth: %s: %s\n", path, strerror(errno));
        return -1;
    }
    const struct syn_scenario *sc = r->sc;
    bool lossy = sc->outside.loss > 0 || sc->inside.loss > 0 || sc->outside.conflict > 0 ||
                 sc->inside.conflict > 0 || sc->snaplen < 1500;
    fputs("# Generated by smtpscope-synth from what the middlebox did to each session;\n"
          "# the differences `smtpscope compare` must find (severity info left out).\n",
          f);
    fprintf(f, "middlebox: %s\nexact: %s\npairs:\n", mb_model_name(sc->mbox.model),
            lossy ? "false" : "true");
    for (size_t i = 0; i < r->nsess; i++) {
        const struct run_sess *rs = &r->sess[i];
        char cl[80];
        uint16_t cport = (uint16_t)(sc->client_port + (i * 7) % 20000);
        cap_endpoint_str(cl, sizeof(cl), &sc->client, cport);
        struct syn_oracle_diff v[SYN_ORACLE_DIFFS_MAX];
        size_t n = syn_oracle_compare(rs->mb ? mb_box_actions(rs->mb) : 0, v, SYN_ORACLE_DIFFS_MAX);
        fprintf(f, "  - client: \"%s\"\n    diffs: [", cl);
        for (size_t k = 0; k < n; k++)
            fprintf(f, "%s\"%s %s\"", k ? ", " : "", v[k].kind, v[k].rule);
        fputs("]\n", f);
    }
    return fclose(f) == 0 ? 0 : -1;
}

static int write_expect(const struct run *r, const char *path, bool inside, const char *name)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "smtpscope-synth: %s: %s\n", path, strerror(errno));
        return -1;
    }
    const struct syn_scenario *sc = r->sc;
    const struct syn_vantage_cfg *vc = inside ? &sc->inside : &sc->outside;
    /* Capture loss hides evidence at random: then only the sessions are promised. */
    bool full = vc->loss == 0 && vc->conflict == 0 && sc->snaplen >= 1500;
    fprintf(f,
            "# Generated by smtpscope-synth from the %s's own view of the dialogue;\n"
            "# regenerate with pcaps/make-synth.sh, do not hand-edit.\n",
            inside ? "server" : "client");
    fputs("description: ", f);
    yq(f, sc->description, strlen(sc->description));
    fprintf(f, "\ngenerator: \"smtpscope-synth %s, %s vantage, middlebox %s\"\n", name ? name : "",
            inside ? "inside" : "outside", mb_model_name(sc->mbox.model));
    /* The findings oracle: per session from what the device did, then
     * across the sessions (all of a scenario's go to one server). */
    struct exp_rules *er = calloc(r->nsess ? r->nsess : 1, sizeof(*er));
    if (!er)
        abort();
    unsigned offered = 0, missing = 0, masked = 0, normal = 0;
    bool *miss = calloc(r->nsess ? r->nsess : 1, sizeof(*miss));
    if (!miss)
        abort();
    for (size_t i = 0; i < r->nsess; i++) {
        const struct run_sess *rs = &r->sess[i];
        struct syn_oracle_in oi = {
            .actions = rs->mb ? mb_box_actions(rs->mb) : 0,
            .inside = inside,
            .view = inside ? syn_server_view(rs->sv) : syn_client_view(rs->cl),
            .client = rs->cfg->client.kind,
            .server = rs->cfg->server.kind,
            .result = syn_client_result(rs->cl),
        };
        er[i].n = syn_oracle_session(&oi, er[i].v, SYN_ORACLE_MAX);
        struct syn_oracle_seen seen;
        syn_oracle_seen(&oi, &seen);
        if (seen.banner_seen) {
            masked += seen.banner_masked;
            normal += !seen.banner_masked;
        }
        if (seen.keywords_seen) {
            offered += seen.tls_offered;
            miss[i] = !seen.tls_offered && !seen.tls_masked;
            missing += miss[i];
        }
    }
    bool tls_mixed = offered > 0 && missing > 0;
    bool inconsistent = tls_mixed || (masked > 0 && normal > 0);
    /* tls_intercepted: sessions whose visible certificate is not the one
     * most sessions show (the first seen on a tie).  Outside, an
     * intercepted session shows the middlebox's certificate; every other
     * TLS 1.2 session shows the server's. */
    size_t with_cert[2] = {0, 0}, first_kind = 2;
    for (size_t i = 0; i < r->nsess; i++) {
        const struct syn_view *v =
            inside ? syn_server_view(r->sess[i].sv) : syn_client_view(r->sess[i].cl);
        if (!v->tls || r->sess[i].cfg->tls_version == 13)
            continue;
        bool mbox = !inside && (mb_box_actions(r->sess[i].mb) & MB_ACT_TLS_INTERCEPT);
        with_cert[mbox]++;
        if (first_kind == 2)
            first_kind = mbox;
    }
    if (with_cert[0] && with_cert[1]) {
        size_t ref = with_cert[1] > with_cert[0] ? 1 : with_cert[0] > with_cert[1] ? 0 : first_kind;
        for (size_t i = 0; i < r->nsess; i++) {
            const struct syn_view *v =
                inside ? syn_server_view(r->sess[i].sv) : syn_client_view(r->sess[i].cl);
            if (!v->tls || r->sess[i].cfg->tls_version == 13)
                continue;
            size_t kind = !inside && (mb_box_actions(r->sess[i].mb) & MB_ACT_TLS_INTERCEPT);
            if (kind != ref)
                er_add(&er[i], "tls_intercepted");
        }
    }
    for (size_t i = 0; i < r->nsess && tls_mixed; i++) {
        if (!miss[i])
            continue;
        er_add(&er[i], "starttls_stripped"); /* deleted where the server offers it elsewhere (O1) */
    }
    /* A vantage that captures conflicting copies of the same bytes shows the
     * overlap evidence of injected_reset; where it falls is up to the dice. */
    for (size_t i = 0; i < r->nsess && vc->conflict > 0; i++)
        er_add(&er[i], "injected_reset");
    bool any = inconsistent;
    for (size_t i = 0; i < r->nsess; i++)
        any = any || er[i].n > 0;
    char sv[80];
    cap_endpoint_str(sv, sizeof(sv), &sc->server, sc->port);
    /* The decoder's encapsulation path, as the client's SYN shows it. */
    char encap[SYN_ENCAP_PATH_MAX];
    syn_encap_path(&vc->encap, sc->ipv6, encap, sizeof(encap));
    fprintf(f, "exit_status: %s\n", full ? (any ? "1" : "0") : "\"*\"");
    if (full)
        fprintf(f, "inconsistent_servers: [%s%s%s]\n", inconsistent ? "\"" : "",
                inconsistent ? sv : "", inconsistent ? "\"" : "");
    fputs("match: by_address\nsessions:\n", f);
    for (size_t i = 0; i < r->nsess; i++) {
        const struct run_sess *rs = &r->sess[i];
        char cl[80];
        uint16_t cport = (uint16_t)(sc->client_port + (i * 7) % 20000);
        bool nat = inside && sc->mbox.nat && !rs->cfg->bypass;
        cap_endpoint_str(cl, sizeof(cl), nat ? &sc->mbox.nat_addr : &sc->client,
                         nat ? (uint16_t)(30000 + i % 30000) : cport);
        write_view(f, inside ? syn_server_view(rs->sv) : syn_client_view(rs->cl), cl, sv,
                   vc->encap.n ? encap : NULL, full,
                   rs->cfg->client.implicit_tls && rs->cfg->server.implicit_tls, er[i].v, er[i].n);
    }
    free(er);
    free(miss);
    return fclose(f) == 0 ? 0 : -1;
}

int syn_scenario_run(const struct syn_scenario *sc, const char *out_path, const char *in_path,
                     const char *cert_path, struct syn_run_stats *st)
{
    return syn_scenario_run_expect(sc, out_path, in_path, cert_path, NULL, st);
}

int syn_scenario_run_expect(const struct syn_scenario *sc, const char *out_path,
                            const char *in_path, const char *cert_path,
                            const struct syn_expect_paths *ex, struct syn_run_stats *st)
{
    struct run r;
    memset(&r, 0, sizeof(r));
    memset(st, 0, sizeof(*st));
    r.sc = sc;
    r.logs = ex && ex->streams;
    uint32_t lt = syn_linktype(sc->link);
    if (out_path && !(r.w[0] = syn_writer_open(out_path, sc->format, lt, sc->snaplen))) {
        fprintf(stderr, "smtpscope-synth: %s: %s\n", out_path, strerror(errno));
        return -1;
    }
    if (in_path && !(r.w[1] = syn_writer_open(in_path, sc->format, lt, sc->snaplen))) {
        fprintf(stderr, "smtpscope-synth: %s: %s\n", in_path, strerror(errno));
        syn_writer_close(r.w[0]);
        return -1;
    }
    const struct syn_vantage_cfg *vcs[2] = {&sc->outside, &sc->inside};
    for (int k = 0; k < 2; k++) {
        if (!r.w[k] || !vcs[k]->encap.n)
            continue;
        r.enc[k] = syn_encap_new(&vcs[k]->encap, sc->seed ^ (0xe000u + (uint64_t)k));
        if (!r.enc[k])
            abort();
    }
    r.sim = sim_new(sc->start * SEC);
    size_t total = 0;
    for (size_t i = 0; i < sc->nsessions; i++)
        total += (size_t)sc->sessions[i].count;
    r.sess = calloc(total ? total : 1, sizeof(*r.sess));
    if (!r.sess)
        abort();
    int rc = 0;
    for (size_t i = 0; i < sc->nsessions && rc == 0; i++) {
        const struct syn_session_cfg *ss = &sc->sessions[i];
        for (int k = 0; k < ss->count && rc == 0; k++) {
            rc = session_setup(&r, ss, r.nsess, ss->at + (sc_time)k * ss->every);
            r.nsess++;
        }
    }
    if (rc == 0) {
        bg_setup(&r);
        if (cert_path && r.nsess && r.sess[0].tls && tlsgen_write_cert(r.sess[0].tls, cert_path)) {
            fprintf(stderr, "smtpscope-synth: %s: cannot write the certificate\n", cert_path);
            rc = -1;
        }
    }
    if (rc == 0)
        sim_run(r.sim, sc->duration);
    if (rc == 0 && ex && ex->outside && write_expect(&r, ex->outside, false, ex->name))
        rc = -1;
    if (rc == 0 && ex && ex->inside && write_expect(&r, ex->inside, true, ex->name))
        rc = -1;
    if (rc == 0 && r.logs && write_streams(&r, ex->streams))
        rc = -1;
    if (rc == 0 && ex && ex->compare && write_compare(&r, ex->compare))
        rc = -1;
    for (size_t i = 0; i < r.nsess; i++) {
        struct run_sess *rs = &r.sess[i];
        if (rs->cl) {
            const struct syn_client_result *cr = syn_client_result(rs->cl);
            st->sessions++;
            st->tls_sessions += cr->tls;
            st->messages_accepted += (uint64_t)cr->messages_accepted;
            st->aborted += cr->aborted;
        }
        syn_client_free(rs->cl);
        syn_server_free(rs->sv);
        mb_box_free(rs->mb);

        if (r.logs)
            for (int k = 0; k < 4; k++)
                sc_buf_free(&rs->log[k]);
    }
    for (size_t i = 0; i < r.nbg; i++) {
        sim_ep_free(r.bg[i].c);
        sim_ep_free(r.bg[i].s);
        mb_box_free(r.bg[i].mb);
    }
    free(r.bg);
    for (size_t i = 0; i < r.ntls; i++)
        tlsgen_ctx_free(r.tls_cache[i].ctx);
    free(r.sess);
    sim_free(r.sim);
    for (int k = 0; k < 2; k++) {
        if (r.enc[k] && syn_encap_dropped(r.enc[k])) {
            fprintf(stderr, "smtpscope-synth: %llu datagrams too large to encapsulate\n",
                    (unsigned long long)syn_encap_dropped(r.enc[k]));
            rc = -1;
        }
        syn_encap_free(r.enc[k]);
    }
    st->packets[0] = r.w[0] ? syn_writer_count(r.w[0]) : 0;
    st->packets[1] = r.w[1] ? syn_writer_count(r.w[1]) : 0;
    if (r.w[0] && syn_writer_close(r.w[0]) != 0) {
        fprintf(stderr, "smtpscope-synth: %s: write error\n", out_path);
        rc = -1;
    }
    if (r.w[1] && syn_writer_close(r.w[1]) != 0) {
        fprintf(stderr, "smtpscope-synth: %s: write error\n", in_path);
        rc = -1;
    }
    return rc;
}
