/* par.c - dispatcher, worker threads and the ordered merge (par.h). */
#include "cli/par.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct par_worker {
    struct par *p;
    uint32_t index;
    void *user;
    pthread_t thread;
    bool started;
    /* Under p->mu: */
    struct par_batch *queue[PAR_QUEUE_DEPTH]; /* ring of batches to run */
    unsigned qhead, qlen;
    struct par_item *out, **out_tail; /* items produced, in key order */
    struct par_item *back;            /* items recycled, to release */
    uint64_t frontier;                /* every packet up to this frame is done */
    bool done;                        /* finish ran */
    bool local;                       /* run by the dispatcher (no thread, no queue) */
    /* Dispatcher only: the batch being filled. */
    struct par_batch *cur;
    /* The last batch when no other could be allocated (empty, never
     * recycled). */
    struct par_batch stop;
};

struct par {
    unsigned n;
    par_run_fn run;
    par_self_fn self; /* self-reading workers (no batches) */
    bool quit;        /* self: the dispatcher stopped before the end (under mu) */
    par_finish_fn finish;
    par_release_fn release;
    pthread_mutex_t mu;
    pthread_cond_t work;  /* a batch was queued (workers wait) */
    pthread_cond_t moved; /* a batch was taken or finished (dispatcher waits) */
    struct par_batch *free_batches[PAR_MAX_WORKERS * (PAR_QUEUE_DEPTH + 2)];
    unsigned nfree;
    struct par_worker w[PAR_MAX_WORKERS];
};

static struct par_batch *par__batch_new(void)
{
    struct par_batch *b = calloc(1, sizeof(*b));
    if (!b)
        return NULL;
    b->e = malloc(PAR_BATCH_ENTRIES * sizeof(*b->e));
    b->arena = malloc(PAR_BATCH_BYTES);
    if (!b->e || !b->arena) {
        free(b->e);
        free(b->arena);
        free(b);
        return NULL;
    }
    return b;
}

static void par__batch_free(struct par_batch *b)
{
    if (!b)
        return;
    free(b->e);
    free(b->arena);
    free(b);
}

/* A batch to fill: a recycled one, or a new one. */
static struct par_batch *par__batch_get(struct par *p)
{
    struct par_batch *b = NULL;
    pthread_mutex_lock(&p->mu);
    if (p->nfree)
        b = p->free_batches[--p->nfree];
    pthread_mutex_unlock(&p->mu);
    if (!b)
        b = par__batch_new();
    if (b) {
        b->n = 0;
        b->used = 0;
        b->last = false;
    }
    return b;
}

static void par__release(struct par *p, struct par_worker *w, struct par_item *it)
{
    while (it) {
        struct par_item *next = it->next;
        p->release(w->user, it);
        it = next;
    }
}

static void *par__main(void *arg)
{
    struct par_worker *w = arg;
    struct par *p = w->p;
    for (;;) {
        pthread_mutex_lock(&p->mu);
        while (w->qlen == 0)
            pthread_cond_wait(&p->work, &p->mu);
        struct par_batch *b = w->queue[w->qhead];
        w->qhead = (w->qhead + 1) % PAR_QUEUE_DEPTH;
        w->qlen--;
        struct par_item *back = w->back;
        w->back = NULL;
        pthread_cond_broadcast(&p->moved);
        pthread_mutex_unlock(&p->mu);
        par__release(p, w, back);

        if (b->n)
            p->run(w->user, b);
        bool last = b->last;
        uint64_t reached = b->n ? b->e[b->n - 1].frame : 0;
        if (last)
            p->finish(w->user);

        pthread_mutex_lock(&p->mu);
        if (last) {
            w->frontier = UINT64_MAX;
            w->done = true;
        } else if (reached > w->frontier) {
            w->frontier = reached;
        }
        if (b != &w->stop) { /* the stop batch is not allocated */
            if (p->nfree < sizeof(p->free_batches) / sizeof(p->free_batches[0]))
                p->free_batches[p->nfree++] = b;
            else
                par__batch_free(b);
        }
        pthread_cond_broadcast(&p->moved);
        pthread_mutex_unlock(&p->mu);
        if (last)
            return NULL;
    }
}

/* A self-reading worker's thread. */
static void *par__self_main(void *arg)
{
    struct par_worker *w = arg;
    struct par *p = w->p;
    p->self(p, w->user);
    p->finish(w->user);
    /* Release what was recycled to it, then say it is done: from then on
     * par_recycle releases in the dispatcher, never both at once. */
    for (;;) {
        pthread_mutex_lock(&p->mu);
        struct par_item *back = w->back;
        w->back = NULL;
        if (!back) {
            w->frontier = UINT64_MAX;
            w->done = true;
            pthread_cond_broadcast(&p->moved);
            pthread_mutex_unlock(&p->mu);
            return NULL;
        }
        pthread_mutex_unlock(&p->mu);
        par__release(p, w, back);
    }
}

static void par__stop(struct par *p);

/* What par_new and par_new_self share: the structure and its workers, no
 * thread yet (worker n - 1 local when `local`). */
static struct par *par__alloc(unsigned n, bool local, par_finish_fn finish, par_release_fn release,
                              void *const wusers[])
{
    if (n < 1 || n > PAR_MAX_WORKERS)
        return NULL;
    struct par *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    p->n = n;
    p->finish = finish;
    p->release = release;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->work, NULL);
    pthread_cond_init(&p->moved, NULL);
    for (unsigned i = 0; i < n; i++) {
        struct par_worker *w = &p->w[i];
        w->p = p;
        w->index = i;
        w->user = wusers[i];
        w->out_tail = &w->out;
        w->local = local && i == n - 1;
    }
    return p;
}

/* Starts a thread running `main` for every worker but the local one;
 * false (p freed, no thread left running) on failure. */
static bool par__start(struct par *p, void *(*main)(void *))
{
    for (unsigned i = 0; i < p->n; i++) {
        if (p->w[i].local)
            continue;
        if (pthread_create(&p->w[i].thread, NULL, main, &p->w[i]) != 0) {
            par__stop(p);
            par_free(p);
            return false;
        }
        p->w[i].started = true;
    }
    return true;
}

struct par *par_new_self(unsigned n, par_self_fn self, par_finish_fn finish, par_release_fn release,
                         void *const wusers[])
{
    struct par *p = par__alloc(n, true, finish, release, wusers);
    if (!p)
        return NULL;
    p->self = self;
    return par__start(p, par__self_main) ? p : NULL;
}

bool par_reached(struct par *p, uint32_t wi, uint64_t frame)
{
    struct par_worker *w = &p->w[wi];
    pthread_mutex_lock(&p->mu);
    if (frame > w->frontier)
        w->frontier = frame;
    pthread_cond_broadcast(&p->moved);
    for (;;) {
        uint64_t slow = UINT64_MAX;
        for (unsigned i = 0; i < p->n; i++)
            if (i != wi && !p->w[i].done && p->w[i].frontier < slow)
                slow = p->w[i].frontier;
        if (p->quit || slow == UINT64_MAX || frame < slow || frame - slow <= PAR_AHEAD_FRAMES)
            break;
        pthread_cond_wait(&p->moved, &p->mu);
    }
    bool go = !p->quit;
    struct par_item *back = w->back;
    w->back = NULL;
    pthread_mutex_unlock(&p->mu);
    par__release(p, w, back);
    return go;
}

struct par *par_new(unsigned n, bool local, par_run_fn run, par_finish_fn finish,
                    par_release_fn release, void *const wusers[])
{
    struct par *p = par__alloc(n, local, finish, release, wusers);
    if (!p)
        return NULL;
    p->run = run;
    for (unsigned i = 0; i < n; i++) {
        struct par_worker *w = &p->w[i];
        if (w->local)
            continue;
        w->cur = par__batch_get(p);
        if (!w->cur) {
            par__stop(p);
            par_free(p);
            return NULL;
        }
    }
    return par__start(p, par__main) ? p : NULL;
}

/* Queues worker w's current batch (waiting while its queue is full) and
 * starts a new one.  False on OOM (the worker keeps its emptied batch). */
static bool par__flush(struct par *p, struct par_worker *w, bool last)
{
    struct par_batch *b = w->cur;
    b->last = last;
    pthread_mutex_lock(&p->mu);
    while (w->qlen == PAR_QUEUE_DEPTH)
        pthread_cond_wait(&p->moved, &p->mu);
    w->queue[(w->qhead + w->qlen) % PAR_QUEUE_DEPTH] = b;
    w->qlen++;
    pthread_cond_broadcast(&p->work);
    pthread_mutex_unlock(&p->mu);
    w->cur = last ? NULL : par__batch_get(p);
    return last || w->cur != NULL;
}

/* Makes room in w's batch for one entry and `bytes` of packet. */
static bool par__room(struct par *p, struct par_worker *w, size_t bytes)
{
    if (!w->cur)
        return false;
    if (w->cur->n < PAR_BATCH_ENTRIES && w->cur->used + bytes <= PAR_BATCH_BYTES)
        return true;
    return par__flush(p, w, false);
}

bool par_packet(struct par *p, uint32_t owner, uint64_t frame, sc_time ts, const uint8_t *data,
                uint32_t caplen, uint32_t wirelen, uint32_t linktype, bool stable)
{
    bool ok = true;
    if (caplen > PAR_BATCH_BYTES)
        caplen = PAR_BATCH_BYTES; /* beyond any snaplen the reader accepts */
    for (uint32_t i = 0; i < p->n; i++) {
        struct par_worker *w = &p->w[i];
        if (w->local)
            continue;
        bool whole = owner == PAR_ALL || owner == i;
        if (!par__room(p, w, whole && !stable ? caplen : 0)) {
            ok = false;
            continue;
        }
        struct par_batch *b = w->cur;
        struct par_entry *e = &b->e[b->n++];
        e->frame = frame;
        e->ts = ts;
        e->tick = !whole;
        e->counted = owner == i || (owner == PAR_ALL && i == 0);
        e->caplen = whole ? caplen : 0;
        e->wirelen = wirelen;
        e->linktype = linktype;
        e->data = data;
        if (whole && caplen && !stable) {
            e->data = b->arena + b->used;
            memcpy(b->arena + b->used, data, caplen);
            b->used += caplen;
        }
    }
    return ok;
}

void par_local_reached(struct par *p, uint64_t frame)
{
    struct par_worker *w = &p->w[p->n - 1];
    if (!w->local)
        return;
    if (p->self) {
        /* Other threads read it (par_reached): under the lock. */
        pthread_mutex_lock(&p->mu);
        w->frontier = frame;
        w->done = frame == UINT64_MAX;
        pthread_cond_broadcast(&p->moved);
        pthread_mutex_unlock(&p->mu);
        return;
    }
    /* Only the dispatcher reads or writes a local worker's frontier and
     * `done` (no thread of the pool touches another worker's), so this
     * runs for every packet without taking the lock. */
    w->frontier = frame;
    w->done = frame == UINT64_MAX;
}

uint64_t par_frontier(struct par *p)
{
    uint64_t f = UINT64_MAX;
    pthread_mutex_lock(&p->mu);
    for (unsigned i = 0; i < p->n; i++)
        if (p->w[i].frontier < f)
            f = p->w[i].frontier;
    pthread_mutex_unlock(&p->mu);
    return f;
}

void par_push(struct par *p, uint32_t w, struct par_item *it)
{
    it->next = NULL;
    it->worker = w;
    pthread_mutex_lock(&p->mu);
    *p->w[w].out_tail = it;
    p->w[w].out_tail = &it->next;
    pthread_mutex_unlock(&p->mu);
}

void par_recycle(struct par *p, struct par_item *it)
{
    struct par_worker *w = &p->w[it->worker];
    pthread_mutex_lock(&p->mu);
    bool running = w->started && !w->done;
    if (running) {
        it->next = w->back;
        w->back = it;
    }
    pthread_mutex_unlock(&p->mu);
    if (!running)
        p->release(w->user, it); /* its thread is gone or going */
}

static int par__cmp(const struct par_key *a, const struct par_key *b)
{
    if (a->frame != b->frame)
        return a->frame < b->frame ? -1 : 1;
    if (a->phase != b->phase)
        return a->phase < b->phase ? -1 : 1;
    if (a->sub != b->sub)
        return a->sub < b->sub ? -1 : 1;
    return 0;
}

void par_drain(struct par *p, par_out_fn out, void *user)
{
    pthread_mutex_lock(&p->mu);
    for (;;) {
        struct par_worker *best = NULL;
        for (unsigned i = 0; i < p->n; i++) {
            struct par_worker *w = &p->w[i];
            if (w->out && (!best || par__cmp(&w->out->key, &best->out->key) < 0))
                best = w;
        }
        if (!best)
            break;
        const struct par_key *k = &best->out->key;
        bool safe = true;
        for (unsigned i = 0; i < p->n && safe; i++) {
            const struct par_worker *w = &p->w[i];
            /* A worker with nothing waiting may still produce an item for
             * any frame it has not finished. */
            if (w != best && !w->out && !w->done && w->frontier < k->frame)
                safe = false;
        }
        if (!safe)
            break;
        struct par_item *it = best->out;
        best->out = it->next;
        if (!best->out)
            best->out_tail = &best->out;
        pthread_mutex_unlock(&p->mu);
        out(user, it);
        pthread_mutex_lock(&p->mu);
    }
    pthread_mutex_unlock(&p->mu);
}

/* Sends every worker its last batch and waits until all have finished. */
static void par__stop(struct par *p)
{
    if (p->self) {
        /* Before the local worker's end (an early stop): the others stop
         * at their next par_reached instead of waiting on it. */
        pthread_mutex_lock(&p->mu);
        if (!p->w[p->n - 1].done)
            p->quit = true;
        pthread_cond_broadcast(&p->moved);
        pthread_mutex_unlock(&p->mu);
    }
    for (unsigned i = 0; i < p->n && !p->self; i++) {
        struct par_worker *w = &p->w[i];
        if (!w->started) {
            par__batch_free(w->cur);
            w->cur = NULL;
            continue;
        }
        if (!w->cur)
            w->cur = &w->stop; /* OOM earlier: end with the empty batch */
        par__flush(p, w, true);
    }
    for (unsigned i = 0; i < p->n; i++) {
        if (p->w[i].started) {
            pthread_join(p->w[i].thread, NULL);
            p->w[i].started = false;
        }
        par__release(p, &p->w[i], p->w[i].back);
        p->w[i].back = NULL;
    }
}

void par_finish(struct par *p, par_out_fn out, void *user)
{
    par__stop(p);
    par_drain(p, out, user);
}

void par_free(struct par *p)
{
    if (!p)
        return;
    par__stop(p); /* nothing left to do after par_finish */
    /* Items never given out (a caller that stops early): every thread has
     * stopped, so they are released here. */
    for (unsigned i = 0; i < p->n; i++) {
        par__release(p, &p->w[i], p->w[i].out);
        p->w[i].out = NULL;
        p->w[i].out_tail = &p->w[i].out;
    }
    for (unsigned i = 0; i < p->n; i++)
        par__batch_free(p->w[i].cur);
    for (unsigned i = 0; i < p->nfree; i++)
        par__batch_free(p->free_batches[i]);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->work);
    pthread_cond_destroy(&p->moved);
    free(p);
}
