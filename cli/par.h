/* par.h - parallel analysis plumbing: the calling thread (the dispatcher)
 * reads a capture and hands its packets to N worker threads in batches; what
 * the workers produce comes back to it merged into one order.
 *
 * Every packet goes to every worker: whole to the worker that owns it (or
 * to all of them, for packets every worker needs, such as IP fragments), and
 * as a tick (frame number and time only) to the others, so each worker sees
 * capture time pass exactly as a single pipeline would.
 *
 * Workers produce items, each with a key; the keys one worker produces never
 * decrease, and an item's key names a frame the worker has reached.  The
 * dispatcher merges the workers' items by key: an item leaves once every
 * other worker has an item waiting with a larger key or has processed every
 * packet up to the item's frame.  So output leaves in key order while the
 * capture is still being read, and memory is bounded by the queues
 * (PAR_QUEUE_DEPTH batches per worker), not by the capture.
 *
 * The last worker may be local: it has no thread, and the dispatcher runs
 * it inline (par_packet skips it; the caller processes every packet of it
 * and ticks it for the others, then says how far it got with
 * par_local_reached).  The dispatcher then does a worker's share of the
 * analysis itself instead of waiting on queues, and N workers take N threads.
 *
 * When the capture is a mapped file or memory (its bytes stay valid), the
 * workers read it themselves instead (par_new_self): each thread walks every
 * record with its own reader, ticks on the others' packets and analyses its
 * own, so nothing is handed over and a packet is decoded by one thread
 * (except those every thread decodes to find their owner).  Workers say how
 * far they got with par_reached, which also keeps any worker from running
 * more than PAR_AHEAD_FRAMES frames ahead of the slowest one, so what waits
 * to be merged (and the mapped pages not yet given back) stays bounded.
 *
 * Contract: one dispatcher thread calls everything except par_push and
 * par_reached, which workers call from their run/self/finish callbacks (and
 * the dispatcher for the local worker).  No global state.
 */
#ifndef SC_CLI_PAR_H
#define SC_CLI_PAR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/time.h"

/* Workers at most (-j). */
#define PAR_MAX_WORKERS 16
/* Packets (and ticks) per batch, and packet bytes per batch. */
#define PAR_BATCH_ENTRIES 4096
#define PAR_BATCH_BYTES (512u * 1024u)
/* Batches queued per worker before the dispatcher waits. */
#define PAR_QUEUE_DEPTH 4
/* Self-reading workers: frames a worker may be ahead of the slowest
 * unfinished one.  About 6 MB of a capture of full-size packets: what one
 * thread reads stays in the shared cache for the other, and what waits to
 * be merged stays small. */
#define PAR_AHEAD_FRAMES 4096

/* Owner value that gives a packet whole to every worker; worker 0 is told
 * to count it (par_entry.counted), the others not. */
#define PAR_ALL UINT32_MAX

struct par;

struct par_key {
    uint64_t frame; /* UINT64_MAX: after the last packet */
    uint32_t phase;
    uint64_t sub;
};

/* Embed as the first member of whatever a worker produces. */
struct par_item {
    struct par_item *next;
    struct par_key key;
    uint32_t worker; /* set by par_push */
};

struct par_entry {
    uint64_t frame;
    sc_time ts;
    uint32_t caplen, wirelen, linktype;
    const uint8_t *data; /* the packet's bytes: in the batch's arena, or the
                          * caller's own when they stay valid */
    bool tick;           /* another worker's packet: frame and time only */
    bool counted;        /* this worker counts the packet in its statistics */
};

struct par_batch {
    struct par_entry *e;
    size_t n;
    uint8_t *arena;
    size_t used;
    bool last; /* the capture is over after this batch */
};

/* Runs in worker `w` for each batch, in order; then `finish` once. */
typedef void (*par_run_fn)(void *wuser, const struct par_batch *b);
typedef void (*par_finish_fn)(void *wuser);
/* Runs in worker `w` once: reads and analyses the whole capture, calling
 * par_reached (and par_push) on p as it goes (par_new_self); then `finish`
 * once. */
typedef void (*par_self_fn)(struct par *p, void *wuser);
/* Runs in the dispatcher for each item, in key order; owns the item until
 * it hands it back with par_recycle. */
typedef void (*par_out_fn)(void *user, struct par_item *it);
/* Runs in the worker that pushed an item, once the dispatcher recycled it
 * (or in the dispatcher, for items recycled after the worker stopped). */
typedef void (*par_release_fn)(void *wuser, struct par_item *it);

/* Starts n workers (1..PAR_MAX_WORKERS), worker i calling run and finish
 * with wusers[i]; with `local`, worker n - 1 is the dispatcher's own (no
 * thread: see above).  NULL on failure (no thread left running). */
struct par *par_new(unsigned n, bool local, par_run_fn run, par_finish_fn finish,
                    par_release_fn release, void *const wusers[]);

/* Same with self-reading workers: worker i's thread runs self(wusers[i]),
 * then finish.  Worker n - 1 is always local, the dispatcher's own. */
struct par *par_new_self(unsigned n, par_self_fn self, par_finish_fn finish, par_release_fn release,
                         void *const wusers[]);

/* Self-reading worker w (the local one too) has processed every packet up
 * to `frame`.  Waits while `frame` is more than PAR_AHEAD_FRAMES past the
 * slowest unfinished worker's, and releases the items recycled to w.  Call
 * it every few hundred frames (it takes a lock).  False when the dispatcher
 * stopped early (par_free before the local worker's end): stop reading. */
bool par_reached(struct par *p, uint32_t w, uint64_t frame);

/* The local worker has processed every packet up to `frame`
 * (UINT64_MAX: it has finished, and will push nothing more). */
void par_local_reached(struct par *p, uint64_t frame);

/* Queues one packet for `owner` (a worker index or PAR_ALL) and a tick for
 * the others, the local worker excepted.  Frames must increase.  With `stable`, data stays valid
 * until par_finish and is not copied.  Returns false on OOM (the packet is lost; nothing else is).
 */
bool par_packet(struct par *p, uint32_t owner, uint64_t frame, sc_time ts, const uint8_t *data,
                uint32_t caplen, uint32_t wirelen, uint32_t linktype, bool stable);

/* The frame up to which every worker has processed every packet. */
uint64_t par_frontier(struct par *p);

/* Worker side: hands an item to the dispatcher. */
void par_push(struct par *p, uint32_t w, struct par_item *it);

/* Dispatcher side: gives an item back to the worker that made it, to be
 * released there (memory freed by the thread that allocated it). */
void par_recycle(struct par *p, struct par_item *it);

/* Gives `out` every item that can leave now, in order. */
void par_drain(struct par *p, par_out_fn out, void *user);

/* The capture is over: waits for every worker to finish, gives out the
 * remaining items in order and stops the threads. */
void par_finish(struct par *p, par_out_fn out, void *user);

/* Frees what par_new or par_new_self made; call after par_finish (which
 * gives out every item), or on its own when the caller gives up early: the
 * workers stop (self-reading ones at their next par_reached) and the items
 * not given out are released. */
void par_free(struct par *p);

#endif
