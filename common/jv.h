/* jv.h - a small value tree: a JSON parser (RFC 8259) and a loader that
 * turns a YAML document (libyaml) into the same tree.
 *
 * Used for configuration and scenario files and by the test tools (which
 * compare smtpscope's JSON Lines with .expect.yaml files).  Scalars keep their
 * source text, so comparisons are textual ("1" equals 1, "true" true); each
 * YAML node remembers its line and column for error messages.
 */
#ifndef SC_COMMON_JV_H
#define SC_COMMON_JV_H

#include <stdbool.h>
#include <stddef.h>

enum jv_type { JV_NULL, JV_BOOL, JV_NUM, JV_STR, JV_ARR, JV_OBJ };

struct jv {
    enum jv_type type;
    char *s;       /* JV_STR: the decoded string; JV_NUM/JV_BOOL: source text */
    size_t n;      /* JV_ARR/JV_OBJ: number of items */
    struct jv **v; /* items */
    char **k;      /* JV_OBJ: keys */
    unsigned line; /* YAML: 1-based position of the node, 0 for JSON */
    unsigned col;
};

/* Parses one JSON value from s (NUL-terminated).  Returns NULL on a syntax
 * error and puts a message in err (at least 128 bytes). */
struct jv *jv_parse(const char *s, char *err, size_t errlen);

/* Loads the first document of a YAML file.  NULL on error (message in err). */
struct jv *jv_load_yaml(const char *path, char *err, size_t errlen);

/* Loads the first YAML document of the n bytes at p (not NUL-terminated, not
 * retained); `name` stands for the path in error messages.  NULL on error
 * (message in err). */
struct jv *jv_load_yaml_mem(const char *p, size_t n, const char *name, char *err, size_t errlen);

void jv_free(struct jv *v);

/* Member of an object by key, or NULL. */
const struct jv *jv_get(const struct jv *o, const char *key);

/* The scalar's text: strings as decoded, numbers/bools as written, "null". */
const char *jv_text(const struct jv *v);

#endif
