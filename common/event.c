/* event.c - bounded, aggregated event list. */
#include "common/event.h"

#include <stdlib.h>
#include <string.h>

const char *sc_dir_name(enum sc_dir d)
{
    switch (d) {
    case SC_DIR_C2S:
        return "c2s";
    case SC_DIR_S2C:
        return "s2c";
    default:
        return "-";
    }
}

void sc_events_init(struct sc_events *e)
{
    memset(e, 0, sizeof(*e));
}

void sc_events_free(struct sc_events *e)
{
    for (size_t i = 0; i < e->n; i++)
        free(e->v[i].detail);
    free(e->v);
    sc_events_init(e);
}

void sc_events_add(struct sc_events *e, const char *kind, enum sc_dir dir, uint64_t frame,
                   sc_time ts, const char *detail)
{
    for (size_t i = 0; i < e->n; i++) {
        struct sc_event *ev = &e->v[i];
        if (ev->dir == dir && (ev->kind == kind || strcmp(ev->kind, kind) == 0)) {
            ev->count++;
            ev->last_frame = frame;
            return;
        }
    }
    if (e->n >= SC_EVENT_KINDS_MAX) {
        e->dropped++;
        return;
    }
    if (!e->v) {
        e->v = calloc(SC_EVENT_KINDS_MAX, sizeof(*e->v));
        if (!e->v) {
            e->dropped++;
            return;
        }
    }
    struct sc_event *ev = &e->v[e->n++];
    ev->kind = kind;
    ev->dir = dir;
    ev->frame = frame;
    ev->last_frame = frame;
    ev->ts = ts;
    ev->count = 1;
    ev->detail = NULL;
    if (detail) {
        size_t len = strnlen(detail, SC_EVENT_DETAIL_MAX);
        ev->detail = malloc(len + 1);
        if (ev->detail) {
            memcpy(ev->detail, detail, len);
            ev->detail[len] = 0;
        }
    }
}

uint64_t sc_events_count(const struct sc_events *e, const char *kind)
{
    uint64_t n = 0;
    for (size_t i = 0; i < e->n; i++)
        if (strcmp(e->v[i].kind, kind) == 0)
            n += e->v[i].count;
    return n;
}
