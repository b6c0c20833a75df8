/* pcapfile.h - streaming reader for pcap and pcapng capture files.
 *
 * Formats: classic pcap (microsecond and nanosecond magic, either byte order)
 * as documented in draft-ietf-opsawg-pcap, and pcapng (SHB, IDB, EPB, SPB,
 * OPB; other blocks are skipped) as in draft-ietf-opsawg-pcapng, including
 * several sections, several interfaces with different link types, if_tsresol
 * and if_tsoffset.  The reader maps a regular file, pulls from any other file
 * descriptor through one buffer (so pipes and stdin work), or walks a memory
 * range (fuzzing, tests).  It
 * never reads past what it was given and never trusts a length field: every
 * record is checked against the named limits in cap_reader_settings.
 *
 * Frame numbers count packet records from 1, exactly as Wireshark numbers
 * frames, so they can be typed into Wireshark's "Go to packet".
 */
#ifndef SC_CAPTURE_PCAPFILE_H
#define SC_CAPTURE_PCAPFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/time.h"

struct cap_reader_settings {
    /* Largest captured length accepted for one packet.  262144 is libpcap's
     * MAXIMUM_SNAPLEN; a bigger record means a corrupt file and stops the read
     * with SC_ECORRUPT. */
    uint32_t max_caplen;
    /* Largest pcapng block accepted (packet blocks carry options, so this is
     * max_caplen plus room for them).  Bigger blocks stop the read with
     * SC_ECORRUPT. */
    uint32_t max_block;
    /* Interfaces remembered per pcapng section; an IDB beyond this stops the
     * read with SC_ELIMIT.  Real captures have a handful. */
    uint32_t max_interfaces;
    /* Bytes read from the descriptor at a time. */
    size_t read_size;
    /* A regular file opened at offset 0 is mapped whole instead of read
     * (no copy through read(2); pages behind the read position are given
     * back as it goes).  The file must not shrink while it is read: a
     * truncated mapping faults (SIGBUS), as for any mmap reader. */
    bool map_files;
};

/* Fills s with the defaults documented above. */
void cap_reader_defaults(struct cap_reader_settings *s);

struct cap_record {
    const uint8_t *data; /* caplen bytes, valid until the next cap_reader_next() */
    uint32_t caplen;
    uint32_t wirelen; /* original length on the wire (>= caplen) */
    uint32_t linktype;
    uint32_t ifindex; /* pcapng interface id, 0 for pcap */
    uint64_t frame;   /* 1-based packet number */
    sc_time ts;
};

struct cap_reader;

/* Opens a reader on fd (not closed by the reader).  On error returns a
 * negative sc_err and sets *out to a reader whose cap_reader_errmsg() says
 * why (or NULL on SC_ENOMEM); the caller frees it either way. */
int cap_reader_open_fd(struct cap_reader **out, int fd, const struct cap_reader_settings *s);

/* Same over the memory range [p, p+len), which must outlive the reader. */
int cap_reader_open_mem(struct cap_reader **out, const uint8_t *p, size_t len,
                        const struct cap_reader_settings *s);

/* Opens a second reader over the bytes of r, a stable reader (a mapped file
 * or memory input; cap_reader_stable), from the input's start: it reads the
 * same records with the same frame numbers, independently of r (-j: each
 * thread reads the capture itself).  It never releases or unmaps the bytes;
 * free it before r.  SC_EINVAL when r is not stable; other errors as for
 * cap_reader_open_fd. */
int cap_reader_open_view(struct cap_reader **out, const struct cap_reader *r);

/* Reads the next packet record.  Returns 1 and fills rec, 0 at a clean end of
 * input, or a negative sc_err (SC_ETRUNC, SC_ECORRUPT, SC_EIO, SC_ELIMIT...)
 * with a message in cap_reader_errmsg().  After an error every call returns
 * the same error. */
int cap_reader_next(struct cap_reader *r, struct cap_record *rec);

/* True when every record's data stays valid until cap_reader_free (a mapped
 * file or memory input), not only until the next cap_reader_next. */
bool cap_reader_stable(const struct cap_reader *r);

/* A mapped file's pages are given back as reading moves on.  After
 * cap_reader_hold the caller says when instead, with cap_reader_release:
 * the pages wholly before input offset `offset` (cap_reader_offset) are no
 * longer in use.  Records there stay readable (the pages come back from
 * the page cache); this only bounds resident memory. */
void cap_reader_hold(struct cap_reader *r);
void cap_reader_release(struct cap_reader *r, uint64_t offset);

/* Returns the message for the last error, or "" if none. */
const char *cap_reader_errmsg(const struct cap_reader *r);

/* Returns "pcap" or "pcapng". */
const char *cap_reader_format(const struct cap_reader *r);

/* Returns the number of input bytes consumed so far (for progress). */
uint64_t cap_reader_offset(const struct cap_reader *r);

/* Returns the link type of the first interface (pcap: the file's). */
uint32_t cap_reader_linktype(const struct cap_reader *r);

void cap_reader_free(struct cap_reader *r);

#endif
