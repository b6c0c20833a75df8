/* yamlout.c - JSON Lines records re-emitted as YAML documents (libyaml).
 *
 * The JSON writers stay the single source of every record's content; this
 * file parses each JSON line back (common/jv.h) and walks the tree through
 * libyaml's emitter, one explicit document ("---") per record.  Strings are
 * always double-quoted, so a string that looks like a number, a boolean or
 * null ("1.0", "true", "~") keeps its type; numbers, booleans and null are
 * plain scalars.  Keys are plain when they are identifiers (all of ours are).
 */
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "common/jv.h"
#include "report/report.h"

/* Deepest nesting of a record (ours are 4 levels deep). */
#define REP_YAML_MAX_DEPTH 32
/* Lines wider than this are folded by the emitter (strings are double-quoted,
 * so folding never changes their value). */
#define REP_YAML_WIDTH 100

static int rep__yaml_out(void *data, unsigned char *buf, size_t size)
{
    FILE *out = data;
    return fwrite(buf, 1, size, out) == size;
}

static int rep__yaml_scalar(yaml_emitter_t *e, const char *s, size_t n, yaml_scalar_style_t st)
{
    yaml_event_t ev;
    int plain = st == YAML_PLAIN_SCALAR_STYLE;
    /* libyaml copies the value but declares it non-const. */
    yaml_char_t *val = (yaml_char_t *)(uintptr_t)s;
    if (n > INT_MAX ||
        !yaml_scalar_event_initialize(&ev, NULL, NULL, val, (int)n, plain, !plain, st))
        return 0;
    return yaml_emitter_emit(e, &ev);
}

static bool rep__yaml_ident(const char *k)
{
    if (!*k)
        return false;
    for (const char *p = k; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '_' ||
              (p != k && *p >= '0' && *p <= '9')))
            return false;
    /* YAML 1.1 reads these as booleans or null. */
    static const char *const words[] = {"y",     "Y",    "n",    "N",    "yes",  "Yes",   "YES",
                                        "no",    "No",   "NO",   "on",   "On",   "ON",    "off",
                                        "Off",   "OFF",  "true", "True", "TRUE", "false", "False",
                                        "FALSE", "null", "Null", "NULL"};
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
        if (strcmp(k, words[i]) == 0)
            return false;
    return true;
}

static int rep__yaml_value(yaml_emitter_t *e, const struct jv *v, int depth)
{
    yaml_event_t ev;
    if (depth > REP_YAML_MAX_DEPTH)
        return 0;
    switch (v->type) {
    case JV_NULL:
        return rep__yaml_scalar(e, "null", 4, YAML_PLAIN_SCALAR_STYLE);
    case JV_BOOL:
    case JV_NUM:
        return rep__yaml_scalar(e, v->s, strlen(v->s), YAML_PLAIN_SCALAR_STYLE);
    case JV_STR:
        return rep__yaml_scalar(e, v->s, strlen(v->s), YAML_DOUBLE_QUOTED_SCALAR_STYLE);
    case JV_ARR:
        if (!yaml_sequence_start_event_initialize(
                &ev, NULL, NULL, 1, v->n ? YAML_BLOCK_SEQUENCE_STYLE : YAML_FLOW_SEQUENCE_STYLE) ||
            !yaml_emitter_emit(e, &ev))
            return 0;
        for (size_t i = 0; i < v->n; i++)
            if (!rep__yaml_value(e, v->v[i], depth + 1))
                return 0;
        return yaml_sequence_end_event_initialize(&ev) && yaml_emitter_emit(e, &ev);
    case JV_OBJ:
        if (!yaml_mapping_start_event_initialize(
                &ev, NULL, NULL, 1, v->n ? YAML_BLOCK_MAPPING_STYLE : YAML_FLOW_MAPPING_STYLE) ||
            !yaml_emitter_emit(e, &ev))
            return 0;
        for (size_t i = 0; i < v->n; i++) {
            yaml_scalar_style_t ks = rep__yaml_ident(v->k[i]) ? YAML_PLAIN_SCALAR_STYLE
                                                              : YAML_DOUBLE_QUOTED_SCALAR_STYLE;
            if (!rep__yaml_scalar(e, v->k[i], strlen(v->k[i]), ks) ||
                !rep__yaml_value(e, v->v[i], depth + 1))
                return 0;
        }
        return yaml_mapping_end_event_initialize(&ev) && yaml_emitter_emit(e, &ev);
    }
    return 0;
}

/* Emits one record as a YAML stream of one document. */
static int rep__yaml_record(FILE *out, const struct jv *v)
{
    yaml_emitter_t e;
    yaml_event_t ev;
    if (!yaml_emitter_initialize(&e))
        return -1;
    yaml_emitter_set_output(&e, rep__yaml_out, out);
    yaml_emitter_set_unicode(&e, 0); /* our JSON is ASCII; keep YAML ASCII too */
    yaml_emitter_set_width(&e, REP_YAML_WIDTH);
    int ok = yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING) &&
             yaml_emitter_emit(&e, &ev) &&
             yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 0) &&
             yaml_emitter_emit(&e, &ev) && rep__yaml_value(&e, v, 0) &&
             yaml_document_end_event_initialize(&ev, 1) && yaml_emitter_emit(&e, &ev) &&
             yaml_stream_end_event_initialize(&ev) && yaml_emitter_emit(&e, &ev) &&
             yaml_emitter_flush(&e);
    yaml_emitter_delete(&e);
    return ok ? 0 : -1;
}

int rep_write_records(FILE *out, enum rep_format fmt, const void *data, size_t n)
{
    const char *p = data;
    if (fmt != REP_YAML)
        return fwrite(data, 1, n, out) == n ? 0 : -1;
    int rc = 0;
    while (n) {
        const char *nl = memchr(p, '\n', n);
        size_t len = nl ? (size_t)(nl - p) : n;
        char *line = malloc(len + 1);
        if (!line)
            return -1;
        memcpy(line, p, len);
        line[len] = '\0';
        char err[256];
        struct jv *v = len ? jv_parse(line, err, sizeof(err)) : NULL;
        free(line);
        if (len && (!v || rep__yaml_record(out, v) != 0))
            rc = -1;
        jv_free(v);
        p += nl ? len + 1 : len;
        n -= nl ? len + 1 : len;
    }
    return rc;
}
