/* test_par.c - cli/par.h with self-reading workers (par_new_self): the
 * merge gives every item once and in key order, no worker runs more than
 * PAR_AHEAD_FRAMES ahead of the slowest, and a dispatcher that stops early
 * stops the others instead of waiting on them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include <cmocka.h>

#include "cli/par.h"

#define T_WORKERS 3       /* two threads and the test's own (local) */
#define T_FRAMES 60000u   /* frames every worker walks */
#define T_REACH 128u      /* frames between two par_reached */
#define T_ITEM_EVERY 7u   /* a worker pushes an item on every 7th of its frames */
#define T_SLOW_EVERY 256u /* worker 0 pauses this often */

struct t_item {
    struct par_item item; /* first */
    uint64_t frame;
};

struct t_worker {
    uint32_t index;
    _Atomic uint64_t *pos; /* every worker's frame, shared */
    _Atomic uint64_t *max_lead;
    uint64_t frames; /* how far to go (UINT64_MAX: until told to stop) */
    unsigned pushed, released;
    bool finished;
};

/* Frame `f` done by worker w: notes its lead over the slowest unfinished
 * worker (frames the others have not reached yet). */
static void t_note(struct t_worker *w, uint64_t f)
{
    atomic_store(&w->pos[w->index], f);
    uint64_t slow = UINT64_MAX;
    for (uint32_t i = 0; i < T_WORKERS; i++) {
        uint64_t p = atomic_load(&w->pos[i]);
        if (i != w->index && p < slow)
            slow = p;
    }
    if (slow != UINT64_MAX && f > slow) {
        uint64_t lead = f - slow, m = atomic_load(w->max_lead);
        while (lead > m && !atomic_compare_exchange_weak(w->max_lead, &m, lead))
            ;
    }
}

static void t_pause(void)
{
    struct timespec ts = {0, 20000};
    nanosleep(&ts, NULL);
}

/* One worker's walk: an item on every T_ITEM_EVERY-th frame it owns.  (No
 * cmocka assertion in a worker thread: they jump back to the test's.) */
static bool t_walk(struct par *p, struct t_worker *w)
{
    for (uint64_t f = 1; f <= w->frames; f++) {
        if (w->index == 0 && f % T_SLOW_EVERY == 0)
            t_pause();
        if (f % T_WORKERS == w->index && (f / T_WORKERS) % T_ITEM_EVERY == 0) {
            struct t_item *it = calloc(1, sizeof(*it));
            if (!it)
                abort();
            it->frame = f;
            it->item.key.frame = f;
            par_push(p, w->index, &it->item);
            w->pushed++;
        }
        t_note(w, f);
        if (f % T_REACH == 0 && !par_reached(p, w->index, f))
            return false;
    }
    return true;
}

static void t_self(struct par *p, void *user)
{
    (void)t_walk(p, user);
}

static void t_finish(void *user)
{
    struct t_worker *w = user;
    w->finished = true;
    atomic_store(&w->pos[w->index], UINT64_MAX); /* done: leads no longer count it */
}

static void t_release(void *user, struct par_item *it)
{
    struct t_worker *w = user;
    w->released++;
    free(it);
}

struct t_out {
    uint64_t last, n;
    struct par *p;
};

static void t_out(void *user, struct par_item *it)
{
    struct t_out *o = user;
    const struct t_item *t = (const struct t_item *)(void *)it;
    assert_true(t->frame >= o->last);
    assert_int_equal(t->frame, it->key.frame);
    o->last = t->frame;
    o->n++;
    par_recycle(o->p, it);
}

/* The workers of one run and what they share. */
struct t_run {
    _Atomic uint64_t pos[T_WORKERS], lead;
    struct t_worker w[T_WORKERS];
};

/* Starts the threads of a run in which every worker walks `frames` frames. */
static struct par *t_start(struct t_run *r, uint64_t frames)
{
    void *users[T_WORKERS];
    atomic_store(&r->lead, 0);
    for (uint32_t i = 0; i < T_WORKERS; i++) {
        atomic_store(&r->pos[i], 0);
        r->w[i] =
            (struct t_worker){.index = i, .pos = r->pos, .max_lead = &r->lead, .frames = frames};
        users[i] = &r->w[i];
    }
    struct par *p = par_new_self(T_WORKERS, t_self, t_finish, t_release, users);
    assert_non_null(p);
    return p;
}

static void test_self_merge_order_and_throttle(void **state)
{
    (void)state;
    static struct t_run r;
    struct t_worker *w = r.w;
    struct par *p = t_start(&r, T_FRAMES);
    struct t_out o = {0, 0, p};
    struct t_worker *me = &w[T_WORKERS - 1];
    /* The local worker walks in this thread and drains as the reading
     * thread does. */
    for (uint64_t f = 1; f <= T_FRAMES; f++) {
        if (f % T_WORKERS == me->index && (f / T_WORKERS) % T_ITEM_EVERY == 0) {
            struct t_item *it = calloc(1, sizeof(*it));
            assert_non_null(it);
            it->frame = f;
            it->item.key.frame = f;
            par_push(p, me->index, &it->item);
            me->pushed++;
        }
        t_note(me, f);
        if (f % T_REACH == 0) {
            assert_true(par_reached(p, me->index, f));
            par_drain(p, t_out, &o);
        }
    }
    t_finish(me);
    par_local_reached(p, UINT64_MAX);
    par_finish(p, t_out, &o);
    par_free(p);
    unsigned pushed = 0, released = 0;
    for (uint32_t i = 0; i < T_WORKERS; i++) {
        assert_true(w[i].finished);
        pushed += w[i].pushed;
        released += w[i].released;
    }
    assert_true(pushed > 1000);
    assert_int_equal(o.n, pushed);
    assert_int_equal(released, pushed);
    /* par_reached holds a worker at PAR_AHEAD_FRAMES past the slowest
     * frontier, which trails the slowest worker by less than T_REACH; a
     * worker moves on at most T_REACH frames before it asks again. */
    uint64_t m = atomic_load(&r.lead);
    assert_true(m <= PAR_AHEAD_FRAMES + 2 * T_REACH);
    /* ... and the slow worker did hold the others back (the test tests
     * something). */
    assert_true(m >= PAR_AHEAD_FRAMES / 2);
}

/* The dispatcher gives up before its own end: par_free must not wait for
 * the others to walk on forever, nor for them to catch up with it. */
static void test_self_early_stop(void **state)
{
    (void)state;
    static struct t_run r;
    struct t_worker *w = r.w;
    struct par *p = t_start(&r, UINT64_MAX);
    struct t_worker *me = &w[T_WORKERS - 1];
    for (uint64_t f = 1; f <= 1000; f++)
        if (f % T_REACH == 0)
            assert_true(par_reached(p, me->index, f));
    par_free(p); /* no par_local_reached(UINT64_MAX), no par_finish */
    for (uint32_t i = 0; i + 1 < T_WORKERS; i++) {
        assert_true(w[i].finished);
        assert_int_equal(w[i].released, w[i].pushed);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_self_merge_order_and_throttle),
        cmocka_unit_test(test_self_early_stop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
