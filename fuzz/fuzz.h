/* fuzz.h - what the fuzz targets share: the libFuzzer entry point, a
 * bounds-checked reader over the input, the failure macro for broken
 * contracts, and captures put in memory files.
 *
 * Nothing here keeps state between calls: every helper works on the caller's
 * stack or closes what it opened.
 */
#ifndef SC_FUZZ_FUZZ_H
#define SC_FUZZ_FUZZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

/* The entry point libFuzzer (or replay_main.c) calls once per input; returns 0. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A module broke a documented guarantee: say which and abort, so libFuzzer
 * (or the replay test) reports the input.  Hostile input alone must never
 * get here. */
#define FZ_CHECK(cond)                                                                             \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: guarantee broken: %s\n", __FILE__, __LINE__, #cond);           \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* The input, read front to back; reads past the end yield nothing. */
struct fz_in {
    const uint8_t *p;
    size_t n;
    size_t at;
};

static inline void fz_in_init(struct fz_in *in, const uint8_t *p, size_t n)
{
    in->p = p;
    in->n = n;
    in->at = 0;
}

static inline size_t fz_left(const struct fz_in *in)
{
    return in->n - in->at;
}

/* Reads one byte into *out; false at the end of the input. */
static inline bool fz_u8(struct fz_in *in, uint8_t *out)
{
    if (in->at >= in->n)
        return false;
    *out = in->p[in->at++];
    return true;
}

/* Reads a little-endian 16-bit value; false (and nothing consumed) when fewer
 * than two bytes are left. */
static inline bool fz_u16(struct fz_in *in, uint16_t *out)
{
    if (fz_left(in) < 2)
        return false;
    *out = (uint16_t)(in->p[in->at] | (in->p[in->at + 1] << 8));
    in->at += 2;
    return true;
}

/* Takes up to `want` bytes: *out points at them, the return value says how
 * many there were (fewer at the end of the input). */
static inline size_t fz_take(struct fz_in *in, size_t want, const uint8_t **out)
{
    size_t k = want < fz_left(in) ? want : fz_left(in);
    *out = in->p + in->at;
    in->at += k;
    return k;
}

/* Bytes of a "/proc/self/fd/N" path. */
#define FZ_PATH_MAX 32

/* Puts n bytes in a new memory file and its /proc path in path.  Returns the
 * descriptor (the caller closes it), or -1. */
static inline int fz_memfd(const uint8_t *p, size_t n, char path[FZ_PATH_MAX])
{
    int fd = memfd_create("smtpscope-fuzz", MFD_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t done = 0;
    while (done < n) {
        ssize_t w = write(fd, p + done, n - done);
        if (w <= 0) {
            close(fd);
            return -1;
        }
        done += (size_t)w;
    }
    snprintf(path, FZ_PATH_MAX, "/proc/self/fd/%d", fd);
    return fd;
}

#endif
