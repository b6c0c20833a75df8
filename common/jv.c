/* jv.c - JSON parser (RFC 8259) and YAML-to-tree loader (libyaml). */
#include "common/jv.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

struct jv__p {
    const char *s;
    char *err;
    size_t errlen;
    int depth;
};

#define JV_MAX_DEPTH 64

/* Nodes built from one YAML document, aliases expanded.  An alias repeats
 * its anchor's whole subtree, so a few hundred bytes of nested aliases
 * could ask for 10^9 nodes ("billion laughs").  The largest YAML file the
 * project reads (pcaps/synth-busy.streams.yaml) has a few thousand nodes;
 * 100000 leaves ample room.  Past it the load fails with a message. */
#define JV_YAML_NODES_MAX 100000

static struct jv *jv__new(enum jv_type t)
{
    struct jv *v = calloc(1, sizeof(*v));
    if (v)
        v->type = t;
    return v;
}

void jv_free(struct jv *v)
{
    if (!v)
        return;
    for (size_t i = 0; i < v->n; i++) {
        jv_free(v->v[i]);
        if (v->k)
            free(v->k[i]);
    }
    free(v->v);
    free(v->k);
    free(v->s);
    free(v);
}

static void jv__ws(struct jv__p *p)
{
    while (*p->s == ' ' || *p->s == '\t' || *p->s == '\n' || *p->s == '\r')
        p->s++;
}

static struct jv *jv__fail(struct jv__p *p, const char *what)
{
    if (!p->err[0])
        snprintf(p->err, p->errlen, "%s near \"%.20s\"", what, p->s);
    return NULL;
}

static bool jv__push(struct jv *a, struct jv *item, char *key)
{
    struct jv **nv = realloc(a->v, (a->n + 1) * sizeof(*nv));
    if (!nv)
        return false;
    a->v = nv;
    if (a->type == JV_OBJ) {
        char **nk = realloc(a->k, (a->n + 1) * sizeof(*nk));
        if (!nk)
            return false;
        a->k = nk;
        a->k[a->n] = key;
    }
    a->v[a->n++] = item;
    return true;
}

static void jv__utf8(char **o, unsigned cp)
{
    char *q = *o;
    if (cp < 0x80) {
        *q++ = (char)cp;
    } else if (cp < 0x800) {
        *q++ = (char)(0xc0 | (cp >> 6));
        *q++ = (char)(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
        *q++ = (char)(0xe0 | (cp >> 12));
        *q++ = (char)(0x80 | ((cp >> 6) & 0x3f));
        *q++ = (char)(0x80 | (cp & 0x3f));
    } else {
        *q++ = (char)(0xf0 | (cp >> 18));
        *q++ = (char)(0x80 | ((cp >> 12) & 0x3f));
        *q++ = (char)(0x80 | ((cp >> 6) & 0x3f));
        *q++ = (char)(0x80 | (cp & 0x3f));
    }
    *o = q;
}

static char *jv__string(struct jv__p *p)
{
    /* p->s is at the opening quote. */
    const char *s = ++p->s;
    size_t cap = 0;
    while (s[cap] && s[cap] != '"') {
        if (s[cap] == '\\' && s[cap + 1])
            cap++;
        cap++;
    }
    char *out = malloc(cap * 2 + 8);
    if (!out)
        return NULL;
    char *o = out;
    while (*p->s && *p->s != '"') {
        unsigned char c = (unsigned char)*p->s++;
        if (c < 0x20) {
            free(out);
            jv__fail(p, "control character in string");
            return NULL;
        }
        if (c != '\\') {
            *o++ = (char)c;
            continue;
        }
        char e = *p->s++;
        switch (e) {
        case '"':
        case '\\':
        case '/':
            *o++ = e;
            break;
        case 'b':
            *o++ = '\b';
            break;
        case 'f':
            *o++ = '\f';
            break;
        case 'n':
            *o++ = '\n';
            break;
        case 'r':
            *o++ = '\r';
            break;
        case 't':
            *o++ = '\t';
            break;
        case 'u': {
            unsigned cp = 0;
            for (int i = 0; i < 4; i++) {
                char h = *p->s++;
                cp <<= 4;
                if (h >= '0' && h <= '9')
                    cp |= (unsigned)(h - '0');
                else if (h >= 'a' && h <= 'f')
                    cp |= (unsigned)(h - 'a' + 10);
                else if (h >= 'A' && h <= 'F')
                    cp |= (unsigned)(h - 'A' + 10);
                else {
                    free(out);
                    jv__fail(p, "bad \\u escape");
                    return NULL;
                }
            }
            jv__utf8(&o, cp);
            break;
        }
        default:
            free(out);
            jv__fail(p, "bad escape");
            return NULL;
        }
    }
    if (*p->s != '"') {
        free(out);
        jv__fail(p, "unterminated string");
        return NULL;
    }
    p->s++;
    *o = 0;
    return out;
}

static struct jv *jv__value(struct jv__p *p)
{
    jv__ws(p);
    if (++p->depth > JV_MAX_DEPTH)
        return jv__fail(p, "nesting too deep");
    struct jv *v = NULL;
    char c = *p->s;
    if (c == '{' || c == '[') {
        v = jv__new(c == '{' ? JV_OBJ : JV_ARR);
        if (!v)
            return NULL;
        p->s++;
        jv__ws(p);
        char close = c == '{' ? '}' : ']';
        if (*p->s == close) {
            p->s++;
            p->depth--;
            return v;
        }
        for (;;) {
            char *key = NULL;
            if (v->type == JV_OBJ) {
                jv__ws(p);
                if (*p->s != '"' || !(key = jv__string(p))) {
                    jv_free(v);
                    return jv__fail(p, "expected a key");
                }
                jv__ws(p);
                if (*p->s++ != ':') {
                    free(key);
                    jv_free(v);
                    return jv__fail(p, "expected ':'");
                }
            }
            struct jv *item = jv__value(p);
            if (!item || !jv__push(v, item, key)) {
                free(key);
                jv_free(item);
                jv_free(v);
                return NULL;
            }
            jv__ws(p);
            if (*p->s == ',') {
                p->s++;
                continue;
            }
            if (*p->s == close) {
                p->s++;
                break;
            }
            jv_free(v);
            return jv__fail(p, "expected ',' or a closing bracket");
        }
    } else if (c == '"') {
        v = jv__new(JV_STR);
        if (v && !(v->s = jv__string(p))) {
            jv_free(v);
            return NULL;
        }
    } else if (strncmp(p->s, "true", 4) == 0 || strncmp(p->s, "false", 5) == 0) {
        v = jv__new(JV_BOOL);
        size_t n = p->s[0] == 't' ? 4 : 5;
        if (v)
            v->s = strndup(p->s, n);
        p->s += n;
    } else if (strncmp(p->s, "null", 4) == 0) {
        v = jv__new(JV_NULL);
        p->s += 4;
    } else if (c == '-' || (c >= '0' && c <= '9')) {
        const char *st = p->s;
        while (*p->s && strchr("+-0123456789.eE", *p->s))
            p->s++;
        v = jv__new(JV_NUM);
        if (v)
            v->s = strndup(st, (size_t)(p->s - st));
    } else {
        return jv__fail(p, "unexpected character");
    }
    p->depth--;
    return v;
}

struct jv *jv_parse(const char *s, char *err, size_t errlen)
{
    struct jv__p p = {s, err, errlen, 0};
    err[0] = 0;
    struct jv *v = jv__value(&p);
    if (v) {
        jv__ws(&p);
        if (*p.s) {
            jv_free(v);
            jv__fail(&p, "trailing characters");
            return NULL;
        }
    }
    return v;
}

const struct jv *jv_get(const struct jv *o, const char *key)
{
    if (!o || o->type != JV_OBJ)
        return NULL;
    for (size_t i = 0; i < o->n; i++)
        if (strcmp(o->k[i], key) == 0)
            return o->v[i];
    return NULL;
}

const char *jv_text(const struct jv *v)
{
    if (!v || v->type == JV_NULL)
        return "null";
    if (v->type == JV_ARR)
        return "[array]";
    if (v->type == JV_OBJ)
        return "{object}";
    return v->s ? v->s : "";
}

/* ---- YAML ---- */

static struct jv *jv__ynode(yaml_document_t *d, yaml_node_t *n, int depth, size_t *budget)
{
    if (!n || depth > JV_MAX_DEPTH || *budget == 0)
        return NULL;
    --*budget;
    struct jv *v = NULL;
    switch (n->type) {
    case YAML_SCALAR_NODE: {
        const char *txt = (const char *)n->data.scalar.value;
        size_t len = n->data.scalar.length;
        bool plain = n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
        if (plain && (len == 0 || strcmp(txt, "null") == 0 || strcmp(txt, "~") == 0)) {
            v = jv__new(JV_NULL);
        } else {
            v = jv__new(plain && (strcmp(txt, "true") == 0 || strcmp(txt, "false") == 0) ? JV_BOOL
                                                                                         : JV_STR);
            if (v)
                v->s = strndup(txt, len);
        }
        break;
    }
    case YAML_SEQUENCE_NODE:
        v = jv__new(JV_ARR);
        for (yaml_node_item_t *i = n->data.sequence.items.start;
             v && i < n->data.sequence.items.top; i++) {
            struct jv *item = jv__ynode(d, yaml_document_get_node(d, *i), depth + 1, budget);
            if (!item || !jv__push(v, item, NULL)) {
                jv_free(item);
                jv_free(v);
                return NULL;
            }
        }
        break;
    case YAML_MAPPING_NODE:
        v = jv__new(JV_OBJ);
        for (yaml_node_pair_t *pr = n->data.mapping.pairs.start;
             v && pr < n->data.mapping.pairs.top; pr++) {
            yaml_node_t *kn = yaml_document_get_node(d, pr->key);
            if (!kn || kn->type != YAML_SCALAR_NODE) {
                jv_free(v);
                return NULL;
            }
            char *key = strndup((const char *)kn->data.scalar.value, kn->data.scalar.length);
            struct jv *item = jv__ynode(d, yaml_document_get_node(d, pr->value), depth + 1, budget);
            if (!key || !item || !jv__push(v, item, key)) {
                free(key);
                jv_free(item);
                jv_free(v);
                return NULL;
            }
        }
        break;
    default:
        break;
    }
    if (v) {
        v->line = (unsigned)n->start_mark.line + 1;
        v->col = (unsigned)n->start_mark.column + 1;
    }
    return v;
}

/* Loads the first document from a parser whose input is set; `name` prefixes
 * the error messages. */
static struct jv *jv__load(yaml_parser_t *ps, const char *name, char *err, size_t errlen)
{
    yaml_document_t doc;
    struct jv *v = NULL;
    if (!yaml_parser_load(ps, &doc)) {
        snprintf(err, errlen, "%s:%zu:%zu: not valid YAML: %s%s%s", name, ps->problem_mark.line + 1,
                 ps->problem_mark.column + 1, ps->problem ? ps->problem : "?",
                 ps->context ? " " : "", ps->context ? ps->context : "");
    } else {
        size_t budget = JV_YAML_NODES_MAX;
        v = jv__ynode(&doc, yaml_document_get_root_node(&doc), 0, &budget);
        if (!v && budget == 0)
            snprintf(err, errlen, "%s: more than %d nodes (aliases expanded)", name,
                     JV_YAML_NODES_MAX);
        else if (!v)
            snprintf(err, errlen, "%s: empty or unsupported YAML", name);
        yaml_document_delete(&doc);
    }
    return v;
}

struct jv *jv_load_yaml(const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    yaml_parser_t ps;
    if (!yaml_parser_initialize(&ps)) {
        snprintf(err, errlen, "%s: out of memory", path);
        fclose(f);
        return NULL;
    }
    yaml_parser_set_input_file(&ps, f);
    struct jv *v = jv__load(&ps, path, err, errlen);
    yaml_parser_delete(&ps);
    fclose(f);
    return v;
}

struct jv *jv_load_yaml_mem(const char *p, size_t n, const char *name, char *err, size_t errlen)
{
    yaml_parser_t ps;
    if (!yaml_parser_initialize(&ps)) {
        snprintf(err, errlen, "%s: out of memory", name);
        return NULL;
    }
    yaml_parser_set_input_string(&ps, (const unsigned char *)p, n);
    struct jv *v = jv__load(&ps, name, err, errlen);
    yaml_parser_delete(&ps);
    return v;
}
