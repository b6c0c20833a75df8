/* dump.h - writing packets to a pcap file with libpcap (pcap_dump), as
 * tcpdump -w does: what -w/--write-flagged produces opens in Wireshark.
 *
 * The file is nanosecond-resolution pcap with one link type, fixed by the
 * first packet written; a packet of another link type is refused (counted
 * by the caller).  The file is created on open, so an unwritable path fails
 * before any analysis.
 */
#ifndef SC_CAPTURE_DUMP_H
#define SC_CAPTURE_DUMP_H

#include <stddef.h>
#include <stdint.h>

#include "common/time.h"

/* Snapshot length written in the file header: what the largest captured
 * record may be (pcapfile.h accepts up to 256 KiB). */
#define CAP_DUMP_SNAPLEN 262144

struct cap_dump;

/* Creates path for writing.  Returns NULL with a message in err. */
struct cap_dump *cap_dump_open(const char *path, char *err, size_t errlen);

/* Writes one record.  Returns 0, 1 if its link type differs from the file's
 * (not written), -1 on a write error. */
int cap_dump_write(struct cap_dump *d, uint32_t linktype, sc_time ts, const uint8_t *data,
                   uint32_t caplen, uint32_t wirelen);

/* Packets written so far. */
uint64_t cap_dump_count(const struct cap_dump *d);

/* Flushes and closes (also when nothing was written: an empty pcap with
 * link type Ethernet).  Returns 0, or -1 if anything failed. */
int cap_dump_close(struct cap_dump *d);

#endif
