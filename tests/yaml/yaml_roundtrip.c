/* yaml_roundtrip.c - `-f yaml` says exactly what `-f json` says.
 *
 * Usage: yaml_roundtrip SMTPSCOPE -- ARGS...
 *
 * Runs `SMTPSCOPE ARGS -f json` and `SMTPSCOPE ARGS -f yaml`, parses every
 * JSON line (common/jv.h) and every YAML document (libyaml's parser, read
 * here event by event, not through jv's loader), and compares the two record
 * by record: same number of records, same keys in the same order, same
 * types and same values.  YAML types come from the scalar's style the way a
 * YAML 1.2 JSON-schema reader would take them: a quoted scalar is a string;
 * a plain one is null, a boolean or a number, and must be written as JSON
 * writes it.  Wall-clock fields (summary "elapsed") differ between the two
 * runs and are compared by type only.  Exit 0 when equal, 1 with the first
 * difference on stderr, 2 on a usage or I/O error.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <yaml.h>

#include "common/jv.h"

/* Nesting the YAML reader accepts. */
#define RT_MAX_DEPTH 64

/* Runs argv with "-f FMT" appended; returns its stdout (NUL-terminated) or
 * NULL.  The exit status is stored in *status (0-2 are all acceptable: the
 * two runs must agree). */
static char *rt_run(char **argv, int argc, const char *fmt, size_t *len, int *status)
{
    int fd[2];
    if (pipe(fd) != 0)
        return NULL;
    pid_t pid = fork();
    if (pid < 0)
        return NULL;
    if (pid == 0) {
        char **a = calloc((size_t)argc + 3, sizeof(*a));
        if (!a)
            _exit(127);
        for (int i = 0; i < argc; i++)
            a[i] = argv[i];
        char f[] = "-f", v[16];
        snprintf(v, sizeof(v), "%s", fmt);
        a[argc] = f;
        a[argc + 1] = v;
        dup2(fd[1], 1);
        close(fd[0]);
        close(fd[1]);
        execv(a[0], a);
        _exit(127);
    }
    close(fd[1]);
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (!buf)
            break;
        if (n + 1 >= cap) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
        ssize_t r = read(fd[0], buf + n, cap - n - 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    close(fd[0]);
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    *status = WIFEXITED(st) ? WEXITSTATUS(st) : 128;
    if (buf)
        buf[n] = '\0';
    *len = n;
    return buf;
}

/* ---- YAML documents as jv trees (types from the scalar style) ---- */

struct rt_y {
    yaml_parser_t p;
    char err[256];
};

static struct jv *rt_node(struct rt_y *y, yaml_event_t *ev, int depth);

static bool rt_is_json_number(const char *s)
{
    const char *p = s;
    if (*p == '-')
        p++;
    if (*p == '0')
        p++;
    else if (*p >= '1' && *p <= '9')
        while (*p >= '0' && *p <= '9')
            p++;
    else
        return false;
    if (*p == '.') {
        p++;
        if (!(*p >= '0' && *p <= '9'))
            return false;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '+' || *p == '-')
            p++;
        if (!(*p >= '0' && *p <= '9'))
            return false;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    return *p == '\0';
}

static struct jv *rt_scalar(struct rt_y *y, const yaml_event_t *ev)
{
    struct jv *v = calloc(1, sizeof(*v));
    if (!v)
        return NULL;
    size_t n = ev->data.scalar.length;
    v->s = malloc(n + 1);
    if (!v->s) {
        free(v);
        return NULL;
    }
    memcpy(v->s, ev->data.scalar.value, n);
    v->s[n] = '\0';
    if (strlen(v->s) != n) {
        snprintf(y->err, sizeof(y->err), "line %zu: scalar holds a NUL byte",
                 ev->start_mark.line + 1);
        jv_free(v);
        return NULL;
    }
    if (ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) {
        v->type = JV_STR;
    } else if (strcmp(v->s, "null") == 0) {
        v->type = JV_NULL;
    } else if (strcmp(v->s, "true") == 0 || strcmp(v->s, "false") == 0) {
        v->type = JV_BOOL;
    } else if (rt_is_json_number(v->s)) {
        v->type = JV_NUM;
    } else {
        /* Our writer quotes every string; a plain one is a defect. */
        snprintf(y->err, sizeof(y->err), "line %zu: plain scalar \"%.60s\" is no JSON value",
                 ev->start_mark.line + 1, v->s);
        jv_free(v);
        return NULL;
    }
    return v;
}

static bool rt_push(struct jv *c, struct jv *item, char *key)
{
    struct jv **nv = realloc(c->v, (c->n + 1) * sizeof(*nv));
    if (!nv)
        return false;
    c->v = nv;
    if (c->type == JV_OBJ) {
        char **nk = realloc(c->k, (c->n + 1) * sizeof(*nk));
        if (!nk)
            return false;
        c->k = nk;
        c->k[c->n] = key;
    }
    c->v[c->n++] = item;
    return true;
}

/* Reads the node that starts with *ev (consumed). */
static struct jv *rt_node(struct rt_y *y, yaml_event_t *ev, int depth)
{
    if (depth > RT_MAX_DEPTH) {
        snprintf(y->err, sizeof(y->err), "nesting deeper than %d", RT_MAX_DEPTH);
        yaml_event_delete(ev);
        return NULL;
    }
    if (ev->type == YAML_SCALAR_EVENT) {
        struct jv *v = rt_scalar(y, ev);
        yaml_event_delete(ev);
        return v;
    }
    if (ev->type != YAML_SEQUENCE_START_EVENT && ev->type != YAML_MAPPING_START_EVENT) {
        snprintf(y->err, sizeof(y->err), "line %zu: unexpected YAML event %d (alias?)",
                 ev->start_mark.line + 1, (int)ev->type);
        yaml_event_delete(ev);
        return NULL;
    }
    bool map = ev->type == YAML_MAPPING_START_EVENT;
    yaml_event_delete(ev);
    struct jv *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->type = map ? JV_OBJ : JV_ARR;
    for (;;) {
        yaml_event_t e;
        if (!yaml_parser_parse(&y->p, &e)) {
            snprintf(y->err, sizeof(y->err), "line %zu: %s", y->p.problem_mark.line + 1,
                     y->p.problem ? y->p.problem : "parse error");
            jv_free(c);
            return NULL;
        }
        if (e.type == (map ? YAML_MAPPING_END_EVENT : YAML_SEQUENCE_END_EVENT)) {
            yaml_event_delete(&e);
            return c;
        }
        char *key = NULL;
        if (map) {
            if (e.type != YAML_SCALAR_EVENT) {
                snprintf(y->err, sizeof(y->err), "line %zu: a key that is not a scalar",
                         e.start_mark.line + 1);
                yaml_event_delete(&e);
                jv_free(c);
                return NULL;
            }
            key = strndup((const char *)e.data.scalar.value, e.data.scalar.length);
            yaml_event_delete(&e);
            if (!key || !yaml_parser_parse(&y->p, &e)) {
                snprintf(y->err, sizeof(y->err), "parse error after key \"%s\"", key ? key : "?");
                free(key);
                jv_free(c);
                return NULL;
            }
        }
        struct jv *item = rt_node(y, &e, depth + 1);
        if (!item || !rt_push(c, item, key)) {
            jv_free(item);
            free(key);
            jv_free(c);
            return NULL;
        }
    }
}

/* ---- comparison ---- */

static const char *const rt_type_names[] = {"null", "bool", "number", "string", "array", "object"};

static bool rt_wallclock(const char *key)
{
    return key &&
           (strcmp(key, "elapsed") == 0 || strcmp(key, "uptime") == 0 || strcmp(key, "rss") == 0);
}

static bool rt_same(const struct jv *a, const struct jv *b, const char *key, char *path,
                    size_t plen, size_t cap)
{
    if (a->type != b->type) {
        fprintf(stderr, "yaml_roundtrip: %s: JSON has a %s, YAML a %s\n", path,
                rt_type_names[a->type], rt_type_names[b->type]);
        return false;
    }
    if (a->type == JV_ARR || a->type == JV_OBJ) {
        if (a->n != b->n) {
            fprintf(stderr, "yaml_roundtrip: %s: JSON has %zu members, YAML %zu\n", path, a->n,
                    b->n);
            return false;
        }
        for (size_t i = 0; i < a->n; i++) {
            const char *k = NULL;
            if (a->type == JV_OBJ) {
                if (strcmp(a->k[i], b->k[i]) != 0) {
                    fprintf(stderr,
                            "yaml_roundtrip: %s: key %zu is \"%s\" in JSON, \"%s\" in YAML\n", path,
                            i, a->k[i], b->k[i]);
                    return false;
                }
                k = a->k[i];
                snprintf(path + plen, cap - plen, ".%s", k);
            } else {
                snprintf(path + plen, cap - plen, "[%zu]", i);
            }
            if (!rt_same(a->v[i], b->v[i], k, path, strlen(path), cap))
                return false;
            path[plen] = '\0';
        }
        return true;
    }
    if (rt_wallclock(key))
        return true;
    const char *sa = jv_text(a), *sb = jv_text(b);
    if (strcmp(sa, sb) != 0) {
        fprintf(stderr, "yaml_roundtrip: %s: JSON \"%.200s\", YAML \"%.200s\"\n", path, sa, sb);
        return false;
    }
    return true;
}

int main(int argc, char **argv)
{
    if (argc < 4 || strcmp(argv[2], "--") != 0) {
        fputs("usage: yaml_roundtrip SMTPSCOPE -- ARGS...\n", stderr);
        return 2;
    }
    /* argv for the child: SMTPSCOPE ARGS... */
    int cargc = argc - 2;
    char **cargv = calloc((size_t)cargc + 1, sizeof(*cargv));
    if (!cargv)
        return 2;
    cargv[0] = argv[1];
    for (int i = 3; i < argc; i++)
        cargv[i - 2] = argv[i];

    size_t jlen, ylen;
    int jst, yst;
    char *js = rt_run(cargv, cargc, "json", &jlen, &jst);
    char *ys = rt_run(cargv, cargc, "yaml", &ylen, &yst);
    free(cargv);
    if (!js || !ys) {
        fputs("yaml_roundtrip: cannot run smtpscope\n", stderr);
        return 2;
    }
    if (jst != yst || jst > 2) {
        fprintf(stderr, "yaml_roundtrip: exit status %d with json, %d with yaml\n", jst, yst);
        return 1;
    }

    struct rt_y y;
    memset(&y, 0, sizeof(y));
    if (!yaml_parser_initialize(&y.p))
        return 2;
    yaml_parser_set_input_string(&y.p, (const unsigned char *)ys, ylen);

    int rc = 0;
    size_t records = 0;
    char *line = js;
    char path[512];
    for (;;) {
        /* Next YAML document, or the end of the stream. */
        yaml_event_t e;
        struct jv *yv = NULL;
        bool yend = false;
        for (;;) {
            if (!yaml_parser_parse(&y.p, &e)) {
                fprintf(stderr, "yaml_roundtrip: YAML output, line %zu: %s\n",
                        y.p.problem_mark.line + 1, y.p.problem ? y.p.problem : "parse error");
                rc = 1;
                goto out;
            }
            yaml_event_type_t t = e.type;
            if (t == YAML_STREAM_END_EVENT) {
                yaml_event_delete(&e);
                yend = true;
                break;
            }
            if (t == YAML_DOCUMENT_START_EVENT && e.data.document_start.implicit) {
                fprintf(stderr, "yaml_roundtrip: document %zu does not start with ---\n",
                        records + 1);
                yaml_event_delete(&e);
                rc = 1;
                goto out;
            }
            if (t == YAML_STREAM_START_EVENT || t == YAML_DOCUMENT_START_EVENT ||
                t == YAML_DOCUMENT_END_EVENT) {
                yaml_event_delete(&e);
                continue;
            }
            yv = rt_node(&y, &e, 0);
            if (!yv) {
                fprintf(stderr, "yaml_roundtrip: YAML document %zu: %s\n", records + 1, y.err);
                rc = 1;
                goto out;
            }
            break;
        }
        /* Next JSON line. */
        while (*line == '\n')
            line++;
        bool jend = *line == '\0';
        if (yend || jend) {
            jv_free(yv);
            if (yend != jend) {
                fprintf(stderr, "yaml_roundtrip: %s ends after %zu records, the other goes on\n",
                        yend ? "YAML" : "JSON", records);
                rc = 1;
            }
            break;
        }
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        char err[256];
        struct jv *jv = jv_parse(line, err, sizeof(err));
        line = nl ? nl + 1 : line + strlen(line);
        records++;
        if (!jv) {
            fprintf(stderr, "yaml_roundtrip: JSON record %zu: %s\n", records, err);
            jv_free(yv);
            rc = 1;
            break;
        }
        snprintf(path, sizeof(path), "record %zu", records);
        bool same = rt_same(jv, yv, NULL, path, strlen(path), sizeof(path));
        jv_free(jv);
        jv_free(yv);
        if (!same) {
            rc = 1;
            break;
        }
    }
out:
    yaml_parser_delete(&y.p);
    if (rc == 0 && records == 0) {
        fputs("yaml_roundtrip: no records at all\n", stderr);
        rc = 1;
    }
    if (rc == 0)
        printf("yaml_roundtrip: %zu records equal (exit status %d)\n", records, jst);
    free(js);
    free(ys);
    return rc;
}
