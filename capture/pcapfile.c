/* pcapfile.c - pcap and pcapng reader (draft-ietf-opsawg-pcap, -pcapng). */
#include "capture/pcapfile.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/error.h"
#include "common/wire.h"

#define PCAP_MAGIC_US 0xa1b2c3d4u
#define PCAP_MAGIC_NS 0xa1b23c4du
#define PCAP_MAGIC_US_SWAP 0xd4c3b2a1u
#define PCAP_MAGIC_NS_SWAP 0x4d3cb2a1u
#define PCAP_MAGIC_KUZNETZOV 0xa1b2cd34u
#define PCAP_MAGIC_KUZNETZOV_SWAP 0x34cdb2a1u
#define PCAP_FILE_HDR_LEN 24
#define PCAP_REC_HDR_LEN 16

#define PCAPNG_SHB 0x0a0d0d0au
#define PCAPNG_IDB 0x00000001u
#define PCAPNG_OPB 0x00000002u
#define PCAPNG_SPB 0x00000003u
#define PCAPNG_EPB 0x00000006u
#define PCAPNG_BOM 0x1a2b3c4du
#define PCAPNG_MIN_BLOCK 12
#define PCAPNG_SHB_MIN 28

#define PCAPNG_OPT_TSRESOL 9
#define PCAPNG_OPT_TSOFFSET 14

/* Link type field: the low 26 bits name the link type, the rest carry FCS
 * information we do not use (draft-ietf-opsawg-pcap, section 4). */
#define PCAP_LINKTYPE_MASK 0x03ffffffu

enum cap__fmt { FMT_PCAP, FMT_PCAPNG };

struct cap__iface {
    uint32_t linktype;
    uint32_t snaplen;
    bool ts_pow2;   /* if_tsresol: units are 2^-exp seconds */
    uint8_t ts_exp; /* units are 10^-exp (or 2^-exp) seconds; default 6 */
    int64_t ts_off; /* if_tsoffset, seconds */
};

struct cap_reader {
    struct cap_reader_settings set;
    int fd;          /* -1 for memory input */
    bool eof;        /* fd reached end of input */
    uint8_t *buf;    /* fd input: owned buffer; mapped file: the mapping; memory
                      * input: the caller's bytes */
    bool owned;      /* buf is ours to free */
    bool mapped;     /* buf is a mapping of the whole file, alloc bytes long */
    bool ahead;      /* prefetch CAP_PREFETCH_AHEAD bytes (a mapping, or a view of one) */
    size_t released; /* mapped: bytes before this were given back (page aligned) */
    size_t fetched;  /* ahead: bytes before this were prefetched */
    bool held;       /* the caller releases (cap_reader_hold) */
    size_t alloc;
    size_t pos;        /* next unread byte in buf */
    size_t end;        /* bytes valid in buf */
    uint64_t consumed; /* bytes of input before buf[0] */
    enum cap__fmt fmt;
    bool swap; /* file byte order differs from what we parse as "native" (little endian) */
    bool big;  /* pcapng section / pcap file is big endian */
    bool nsec; /* classic pcap nanosecond variant */
    uint32_t linktype;
    uint32_t snaplen;
    struct cap__iface *ifs;
    uint32_t nifs;
    uint64_t frame;
    int err;
    char msg[256];
};

void cap_reader_defaults(struct cap_reader_settings *s)
{
    s->max_caplen = 262144;
    s->max_block = 262144 + 65536;
    s->max_interfaces = 1024;
    s->read_size = 1u << 20;
    s->map_files = true;
}

/* A mapped file's pages behind the read position are handed back to the
 * kernel every CAP_MAP_RELEASE bytes, so resident memory stays flat however
 * large the file (the pages stay in the page cache; touching them again would
 * read them back, never see zeros). */
#define CAP_MAP_RELEASE (4u << 20)
/* Pages are given back in runs aligned to this (a multiple of any page
 * size Linux uses on x86-64 and arm64 with 4 or 64 KiB pages). */
#define CAP_MAP_RELEASE_ALIGN (64u << 10)

static int cap__fail(struct cap_reader *r, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int cap__fail(struct cap_reader *r, int err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->msg, sizeof(r->msg), fmt, ap);
    va_end(ap);
    r->err = err;
    return err;
}

static uint32_t cap__u32(const struct cap_reader *r, const uint8_t *p)
{
    return r->big ? sc_load_be32(p) : sc_load_le32(p);
}

static uint16_t cap__u16(const struct cap_reader *r, const uint8_t *p)
{
    return r->big ? sc_load_be16(p) : sc_load_le16(p);
}

/* Bytes of a mapped file fetched into the cache ahead of the read position.
 * Records are a chain of lengths, so the next header's place is known only
 * once the current one is read.  The hardware prefetcher follows a reader
 * that touches every byte, but not one that reads the headers only (the
 * -j reading thread), which would wait on memory at every record; so every
 * cache line is fetched once, this far ahead. */
#define CAP_PREFETCH_AHEAD 4096u

/* Prefetches the next record's header, and on a mapped file every line up to
 * CAP_PREFETCH_AHEAD bytes past it. */
static inline void cap__prefetch(struct cap_reader *r)
{
    if (r->pos >= r->end)
        return;
    __builtin_prefetch(r->buf + r->pos);
    if (!r->ahead)
        return;
    size_t hi = r->end - r->pos > CAP_PREFETCH_AHEAD ? r->pos + CAP_PREFETCH_AHEAD : r->end;
    size_t at = r->fetched > r->pos ? r->fetched : r->pos;
    /* Four lines an iteration: a record brings a dozen new ones. */
    for (; at + 192 < hi; at += 256) {
        __builtin_prefetch(r->buf + at);
        __builtin_prefetch(r->buf + at + 64);
        __builtin_prefetch(r->buf + at + 128);
        __builtin_prefetch(r->buf + at + 192);
    }
    for (; at < hi; at += 64)
        __builtin_prefetch(r->buf + at);
    r->fetched = at;
}

/* cap__ensure when the bytes are not all there yet. */
static int cap__ensure_slow(struct cap_reader *r, size_t n)
{
    if (r->fd < 0 || r->eof)
        return 0;
    if (r->pos > 0) {
        memmove(r->buf, r->buf + r->pos, r->end - r->pos);
        r->consumed += r->pos;
        r->end -= r->pos;
        r->pos = 0;
    }
    if (n > r->alloc) {
        size_t want = n > r->set.read_size ? n : r->set.read_size;
        uint8_t *p = realloc(r->buf, want);
        if (!p)
            return cap__fail(r, SC_ENOMEM, "out of memory");
        r->buf = p;
        r->alloc = want;
    }
    while (r->end < n) {
        ssize_t got = read(r->fd, r->buf + r->end, r->alloc - r->end);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            return cap__fail(r, SC_EIO, "read error: %s", strerror(errno));
        }
        if (got == 0) {
            r->eof = true;
            return 0;
        }
        r->end += (size_t)got;
    }
    return 1;
}

/* Makes n bytes available at buf[pos].  Returns 1 when they are, 0 when the
 * input ended first (pos..end holds what there is), or SC_EIO/SC_ENOMEM.
 * Inline: a mapped file or a full buffer has them (twice per record). */
static inline int cap__ensure(struct cap_reader *r, size_t n)
{
    if (r->end - r->pos >= n)
        return 1;
    return cap__ensure_slow(r, n);
}

static sc_time cap__ts_scale(const struct cap__iface *ifc, uint64_t units)
{
    /* Convert units of 10^-exp or 2^-exp seconds to ns, saturating. */
    uint64_t ns;
    if (ifc->ts_pow2) {
        unsigned e = ifc->ts_exp > 63 ? 63 : ifc->ts_exp;
        uint64_t secs = units >> e;
        uint64_t frac = units & ((UINT64_C(1) << e) - 1);
        if (secs > (uint64_t)INT64_MAX / 1000000000u)
            return INT64_MAX;
        /* frac < 2^e; multiply in two halves to stay within 64 bits. */
        uint64_t fns = e >= 34 ? (frac >> (e - 30)) * 1000000000u >> 30 : (frac * 1000000000u) >> e;
        ns = secs * 1000000000u + fns;
    } else if (ifc->ts_exp <= 9) {
        uint64_t mul = 1;
        for (unsigned i = ifc->ts_exp; i < 9; i++)
            mul *= 10;
        if (units > (uint64_t)INT64_MAX / mul)
            return INT64_MAX;
        ns = units * mul;
    } else {
        uint64_t div = 1;
        for (unsigned i = 9; i < ifc->ts_exp && i < 28; i++)
            div = div > UINT64_MAX / 10 ? UINT64_MAX : div * 10;
        ns = units / div;
    }
    if (ns > (uint64_t)INT64_MAX)
        return INT64_MAX;
    sc_time t = (sc_time)ns;
    if (ifc->ts_off) {
        if (ifc->ts_off > 0 && ifc->ts_off < INT64_MAX / SC_NS_PER_SEC &&
            t < INT64_MAX - ifc->ts_off * SC_NS_PER_SEC)
            t += ifc->ts_off * SC_NS_PER_SEC;
        else if (ifc->ts_off < 0 && ifc->ts_off > INT64_MIN / SC_NS_PER_SEC)
            t += ifc->ts_off * SC_NS_PER_SEC;
    }
    return t;
}

static int cap__open_pcap(struct cap_reader *r)
{
    if (cap__ensure(r, PCAP_FILE_HDR_LEN) != 1)
        return r->err ? r->err
                      : cap__fail(r, SC_ETRUNC, "truncated pcap file header (%zu of %d bytes)",
                                  r->end - r->pos, PCAP_FILE_HDR_LEN);
    const uint8_t *h = r->buf + r->pos;
    uint32_t magic = sc_load_le32(h);
    switch (magic) {
    case PCAP_MAGIC_US:
        break;
    case PCAP_MAGIC_NS:
        r->nsec = true;
        break;
    case PCAP_MAGIC_US_SWAP:
        r->big = true;
        break;
    case PCAP_MAGIC_NS_SWAP:
        r->big = true;
        r->nsec = true;
        break;
    default:
        return cap__fail(r, SC_EFORMAT, "not a pcap or pcapng file");
    }
    uint16_t major = cap__u16(r, h + 4);
    if (major != 2)
        return cap__fail(r, SC_EUNSUPP, "pcap version %u is not supported", major);
    r->snaplen = cap__u32(r, h + 16);
    r->linktype = cap__u32(r, h + 20) & PCAP_LINKTYPE_MASK;
    r->pos += PCAP_FILE_HDR_LEN;
    r->fmt = FMT_PCAP;
    return 0;
}

static int cap__next_pcap(struct cap_reader *r, struct cap_record *rec)
{
    int e = cap__ensure(r, PCAP_REC_HDR_LEN);
    if (e < 0)
        return e;
    if (e == 0) {
        if (r->end == r->pos)
            return 0;
        return cap__fail(r, SC_ETRUNC,
                         "file ends inside the header of packet %llu (%zu of %d bytes)",
                         (unsigned long long)r->frame + 1, r->end - r->pos, PCAP_REC_HDR_LEN);
    }
    const uint8_t *h = r->buf + r->pos;
    uint32_t sec, frac, caplen, wirelen;
    if (!r->big) {
        sec = sc_load_le32(h);
        frac = sc_load_le32(h + 4);
        caplen = sc_load_le32(h + 8);
        wirelen = sc_load_le32(h + 12);
    } else {
        sec = sc_load_be32(h);
        frac = sc_load_be32(h + 4);
        caplen = sc_load_be32(h + 8);
        wirelen = sc_load_be32(h + 12);
    }
    if (caplen > r->set.max_caplen)
        return cap__fail(r, SC_ECORRUPT,
                         "packet %llu: captured length %u exceeds the maximum of %u bytes "
                         "(corrupt file?)",
                         (unsigned long long)r->frame + 1, caplen, r->set.max_caplen);
    e = cap__ensure(r, PCAP_REC_HDR_LEN + (size_t)caplen);
    if (e < 0)
        return e;
    if (e == 0)
        return cap__fail(r, SC_ETRUNC, "file ends inside packet %llu (%zu of %u bytes)",
                         (unsigned long long)r->frame + 1, r->end - r->pos - PCAP_REC_HDR_LEN,
                         caplen);
    rec->data = r->buf + r->pos + PCAP_REC_HDR_LEN;
    rec->caplen = caplen;
    rec->wirelen = wirelen < caplen ? caplen : wirelen;
    rec->linktype = r->linktype;
    rec->ifindex = 0;
    rec->ts = (sc_time)sec * SC_NS_PER_SEC + (sc_time)frac * (r->nsec ? 1 : 1000);
    rec->frame = ++r->frame;
    r->pos += PCAP_REC_HDR_LEN + (size_t)caplen;
    /* The next record's header is the next read: fetched while this packet
     * is analysed, its first touch is no longer a stall on memory (a mapped
     * file's bytes are not in the cache, as read()'s copy would have left
     * them). */
    cap__prefetch(r);
    return 1;
}

/* Parses an SHB whose first 12 bytes are at buf[pos]; sets the byte order and
 * forgets the previous section's interfaces. */
static int cap__pcapng_shb(struct cap_reader *r, bool first)
{
    const uint8_t *h = r->buf + r->pos;
    uint32_t bom = sc_load_le32(h + 8);
    if (bom == PCAPNG_BOM)
        r->big = false;
    else if (bom == 0x4d3c2b1au)
        r->big = true;
    else
        return first
                   ? cap__fail(r, SC_EFORMAT, "not a pcap or pcapng file")
                   : cap__fail(r, SC_ECORRUPT, "pcapng section header with a bad byte-order magic");
    r->nifs = 0;
    return 0;
}

static int cap__pcapng_idb(struct cap_reader *r, const uint8_t *b, uint32_t blen)
{
    if (blen < 20)
        return cap__fail(r, SC_ECORRUPT, "pcapng interface block too short (%u bytes)", blen);
    if (r->nifs >= r->set.max_interfaces)
        return cap__fail(r, SC_ELIMIT, "more than %u interfaces in one pcapng section",
                         r->set.max_interfaces);
    if (!r->ifs) {
        r->ifs = calloc(r->set.max_interfaces ? r->set.max_interfaces : 1, sizeof(*r->ifs));
        if (!r->ifs)
            return cap__fail(r, SC_ENOMEM, "out of memory");
    }
    struct cap__iface *ifc = &r->ifs[r->nifs++];
    ifc->linktype = cap__u16(r, b + 8);
    ifc->snaplen = cap__u32(r, b + 12);
    ifc->ts_pow2 = false;
    ifc->ts_exp = 6;
    ifc->ts_off = 0;
    /* Options: code(2) len(2) value padded to 4, ending with opt_endofopt. */
    size_t off = 16, lim = (size_t)blen - 4;
    while (off + 4 <= lim) {
        uint16_t code = cap__u16(r, b + off);
        uint16_t olen = cap__u16(r, b + off + 2);
        off += 4;
        if (code == 0 || off + olen > lim)
            break;
        if (code == PCAPNG_OPT_TSRESOL && olen >= 1) {
            ifc->ts_pow2 = (b[off] & 0x80) != 0;
            ifc->ts_exp = b[off] & 0x7f;
        } else if (code == PCAPNG_OPT_TSOFFSET && olen >= 8) {
            uint64_t hi = cap__u32(r, b + off), lo = cap__u32(r, b + off + 4);
            uint64_t v = r->big ? (hi << 32 | lo) : (lo << 32 | hi);
            ifc->ts_off = (int64_t)v;
        }
        off += ((size_t)olen + 3) & ~(size_t)3;
    }
    if (r->nifs == 1)
        r->linktype = ifc->linktype;
    return 0;
}

static int cap__next_pcapng(struct cap_reader *r, struct cap_record *rec)
{
    for (;;) {
        int e = cap__ensure(r, PCAPNG_MIN_BLOCK);
        if (e < 0)
            return e;
        if (e == 0) {
            if (r->end == r->pos)
                return 0;
            return cap__fail(r, SC_ETRUNC,
                             "file ends inside a pcapng block header (%zu bytes left)",
                             r->end - r->pos);
        }
        const uint8_t *h = r->buf + r->pos;
        uint32_t type = cap__u32(r, h);
        if (type == PCAPNG_SHB) {
            int se = cap__pcapng_shb(r, false);
            if (se < 0)
                return se;
        }
        uint32_t blen = cap__u32(r, h + 4);
        if (blen < PCAPNG_MIN_BLOCK || (blen & 3) != 0 ||
            (type == PCAPNG_SHB && blen < PCAPNG_SHB_MIN))
            return cap__fail(r, SC_ECORRUPT, "pcapng block of type 0x%08x has invalid length %u",
                             type, blen);
        if (blen > r->set.max_block)
            return cap__fail(r, SC_ECORRUPT,
                             "pcapng block of %u bytes exceeds the maximum of %u (corrupt file?)",
                             blen, r->set.max_block);
        e = cap__ensure(r, blen);
        if (e < 0)
            return e;
        if (e == 0)
            return cap__fail(r, SC_ETRUNC, "file ends inside a pcapng block (%zu of %u bytes)",
                             r->end - r->pos, blen);
        const uint8_t *b = r->buf + r->pos;
        if (cap__u32(r, b + blen - 4) != blen)
            return cap__fail(r, SC_ECORRUPT, "pcapng block trailer length does not match (%u)",
                             blen);
        r->pos += blen;
        uint32_t ifid = 0, caplen = 0, wirelen = 0;
        uint64_t units = 0;
        const uint8_t *data = NULL;
        switch (type) {
        case PCAPNG_IDB: {
            int ie = cap__pcapng_idb(r, b, blen);
            if (ie < 0)
                return ie;
            continue;
        }
        case PCAPNG_EPB:
            if (blen < 32)
                return cap__fail(r, SC_ECORRUPT, "pcapng packet block too short (%u bytes)", blen);
            ifid = cap__u32(r, b + 8);
            units = (uint64_t)cap__u32(r, b + 12) << 32 | cap__u32(r, b + 16);
            caplen = cap__u32(r, b + 20);
            wirelen = cap__u32(r, b + 24);
            if (caplen > blen - 32)
                return cap__fail(r, SC_ECORRUPT,
                                 "packet %llu: captured length %u exceeds its pcapng block",
                                 (unsigned long long)r->frame + 1, caplen);
            data = b + 28;
            break;
        case PCAPNG_OPB:
            if (blen < 32)
                return cap__fail(r, SC_ECORRUPT, "pcapng packet block too short (%u bytes)", blen);
            ifid = cap__u16(r, b + 8);
            units = (uint64_t)cap__u32(r, b + 12) << 32 | cap__u32(r, b + 16);
            caplen = cap__u32(r, b + 20);
            wirelen = cap__u32(r, b + 24);
            if (caplen > blen - 32)
                return cap__fail(r, SC_ECORRUPT,
                                 "packet %llu: captured length %u exceeds its pcapng block",
                                 (unsigned long long)r->frame + 1, caplen);
            data = b + 28;
            break;
        case PCAPNG_SPB:
            if (blen < 16)
                return cap__fail(r, SC_ECORRUPT, "pcapng simple packet block too short");
            wirelen = cap__u32(r, b + 8);
            caplen = blen - 16 < wirelen ? blen - 16 : wirelen;
            if (r->nifs > 0 && r->ifs[0].snaplen && caplen > r->ifs[0].snaplen)
                caplen = r->ifs[0].snaplen;
            data = b + 12;
            break;
        default:
            continue; /* SHB (already handled), NRB, ISB, DSB, custom...: not packets */
        }
        if (ifid >= r->nifs)
            return cap__fail(r, SC_ECORRUPT, "packet %llu names interface %u, but only %u defined",
                             (unsigned long long)r->frame + 1, ifid, r->nifs);
        if (caplen > r->set.max_caplen)
            return cap__fail(r, SC_ECORRUPT,
                             "packet %llu: captured length %u exceeds the maximum of %u bytes",
                             (unsigned long long)r->frame + 1, caplen, r->set.max_caplen);
        const struct cap__iface *ifc = &r->ifs[ifid];
        rec->data = data;
        rec->caplen = caplen;
        rec->wirelen = wirelen < caplen ? caplen : wirelen;
        rec->linktype = ifc->linktype;
        rec->ifindex = ifid;
        rec->ts = type == PCAPNG_SPB ? 0 : cap__ts_scale(ifc, units);
        rec->frame = ++r->frame;
        if (r->pos < r->end)
            cap__prefetch(r); /* as in cap__next_pcap */
        return 1;
    }
}

static int cap__open(struct cap_reader *r)
{
    int e = cap__ensure(r, PCAPNG_MIN_BLOCK);
    if (e < 0)
        return e;
    size_t have = r->end - r->pos;
    if (have == 0)
        return cap__fail(r, SC_EFORMAT, "empty file, not a pcap or pcapng file");
    if (have < 4)
        return cap__fail(r, SC_ETRUNC, "file too short to be a capture (%zu bytes)", have);
    uint32_t magic = sc_load_le32(r->buf + r->pos);
    if (magic == PCAPNG_SHB) {
        if (have < PCAPNG_MIN_BLOCK)
            return cap__fail(r, SC_ETRUNC, "truncated pcapng section header");
        r->fmt = FMT_PCAPNG;
        return cap__pcapng_shb(r, true);
    }
    if (magic == PCAP_MAGIC_KUZNETZOV || magic == PCAP_MAGIC_KUZNETZOV_SWAP)
        return cap__fail(r, SC_EUNSUPP,
                         "modified (Kuznetzov) pcap format is not supported; "
                         "convert it with editcap -F pcap");
    return cap__open_pcap(r);
}

static struct cap_reader *cap__alloc(const struct cap_reader_settings *s)
{
    struct cap_reader *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    if (s)
        r->set = *s;
    else
        cap_reader_defaults(&r->set);
    if (r->set.read_size < 4096)
        r->set.read_size = 4096;
    r->fd = -1;
    return r;
}

/* Maps a regular, non-empty file whole; false when it is not one or the
 * mapping fails (the caller reads instead). */
static bool cap__map(struct cap_reader *r, int fd)
{
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size <= 0 ||
        (uint64_t)st.st_size > SIZE_MAX)
        return false;
    size_t len = (size_t)st.st_size;
    void *p = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED)
        return false;
    (void)madvise(p, len, MADV_SEQUENTIAL);
    r->buf = p;
    r->end = len;
    r->alloc = len;
    r->mapped = true;
    r->ahead = true;
    return true;
}

int cap_reader_open_fd(struct cap_reader **out, int fd, const struct cap_reader_settings *s)
{
    struct cap_reader *r = cap__alloc(s);
    *out = r;
    if (!r)
        return SC_ENOMEM;
    if (r->set.map_files && lseek(fd, 0, SEEK_CUR) == 0 && cap__map(r, fd))
        return cap__open(r); /* fd stays -1: the mapping is all the input */
    r->fd = fd;
    r->buf = malloc(r->set.read_size);
    if (!r->buf)
        return cap__fail(r, SC_ENOMEM, "out of memory");
    r->owned = true;
    r->alloc = r->set.read_size;
    return cap__open(r);
}

int cap_reader_open_mem(struct cap_reader **out, const uint8_t *p, size_t len,
                        const struct cap_reader_settings *s)
{
    struct cap_reader *r = cap__alloc(s);
    *out = r;
    if (!r)
        return SC_ENOMEM;
    r->buf = (uint8_t *)(uintptr_t)p; /* never written: fd < 0 disables refills */
    r->end = len;
    r->alloc = len;
    return cap__open(r);
}

int cap_reader_open_view(struct cap_reader **out, const struct cap_reader *r)
{
    *out = NULL;
    if (r->owned)
        return SC_EINVAL;
    struct cap_reader *v = cap__alloc(&r->set);
    *out = v;
    if (!v)
        return SC_ENOMEM;
    /* Memory input to cap__open (never refilled, released or unmapped). */
    v->buf = r->buf;
    v->end = r->alloc; /* a mapping or memory input is whole from the start */
    v->alloc = r->alloc;
    v->ahead = r->ahead;
    return cap__open(v);
}

int cap_reader_next(struct cap_reader *r, struct cap_record *rec)
{
    if (r->err)
        return r->err;
    if (r->mapped && !r->held && r->pos - r->released >= CAP_MAP_RELEASE)
        cap_reader_release(r, r->pos); /* the last record may still be in use: its page stays */
    return r->fmt == FMT_PCAP ? cap__next_pcap(r, rec) : cap__next_pcapng(r, rec);
}

void cap_reader_hold(struct cap_reader *r)
{
    r->held = true;
}

void cap_reader_release(struct cap_reader *r, uint64_t offset)
{
    if (!r->mapped || offset > r->alloc)
        return;
    size_t upto = (size_t)offset & ~(size_t)(CAP_MAP_RELEASE_ALIGN - 1);
    if (upto > r->released) {
        (void)madvise(r->buf + r->released, upto - r->released, MADV_DONTNEED);
        r->released = upto;
    }
}

bool cap_reader_stable(const struct cap_reader *r)
{
    return !r->owned;
}

const char *cap_reader_errmsg(const struct cap_reader *r)
{
    return r->msg;
}

const char *cap_reader_format(const struct cap_reader *r)
{
    return r->fmt == FMT_PCAP ? "pcap" : "pcapng";
}

uint64_t cap_reader_offset(const struct cap_reader *r)
{
    return r->consumed + r->pos;
}

uint32_t cap_reader_linktype(const struct cap_reader *r)
{
    return r->linktype;
}

void cap_reader_free(struct cap_reader *r)
{
    if (!r)
        return;
    if (r->owned)
        free(r->buf);
    else if (r->mapped)
        munmap(r->buf, r->alloc);
    free(r->ifs);
    free(r);
}
