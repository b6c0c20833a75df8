/* dump.c - pcap writing through libpcap (see dump.h). */
#include "capture/dump.h"

#include <errno.h>
#include <pcap/pcap.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct cap_dump {
    char *path;
    FILE *f; /* created at open; handed to libpcap at the first packet */
    pcap_t *dead;
    pcap_dumper_t *dumper;
    uint32_t linktype;
    uint64_t count;
    bool failed;
};

struct cap_dump *cap_dump_open(const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "wb");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    struct cap_dump *d = calloc(1, sizeof(*d));
    if (d)
        d->path = strdup(path);
    if (!d || !d->path) {
        fclose(f);
        free(d);
        snprintf(err, errlen, "%s: out of memory", path);
        return NULL;
    }
    d->f = f;
    return d;
}

static int cap__dump_start(struct cap_dump *d, uint32_t linktype)
{
    d->dead = pcap_open_dead_with_tstamp_precision((int)linktype, CAP_DUMP_SNAPLEN,
                                                   PCAP_TSTAMP_PRECISION_NANO);
    if (!d->dead)
        return -1;
    d->dumper = pcap_dump_fopen(d->dead, d->f);
    if (!d->dumper)
        return -1;
    d->f = NULL; /* libpcap owns it now */
    d->linktype = linktype;
    return 0;
}

int cap_dump_write(struct cap_dump *d, uint32_t linktype, sc_time ts, const uint8_t *data,
                   uint32_t caplen, uint32_t wirelen)
{
    if (d->failed)
        return -1;
    if (!d->dumper && cap__dump_start(d, linktype) != 0) {
        d->failed = true;
        return -1;
    }
    if (linktype != d->linktype)
        return 1;
    struct pcap_pkthdr h;
    memset(&h, 0, sizeof(h));
    /* With nanosecond precision libpcap takes tv_usec as nanoseconds. */
    sc_time sec = ts / SC_NS_PER_SEC, ns = ts % SC_NS_PER_SEC;
    if (ns < 0) {
        ns += SC_NS_PER_SEC;
        sec -= 1;
    }
    h.ts.tv_sec = (time_t)sec;
    h.ts.tv_usec = (suseconds_t)ns;
    h.caplen = caplen;
    h.len = wirelen;
    pcap_dump((u_char *)d->dumper, &h, data);
    d->count++;
    return 0;
}

uint64_t cap_dump_count(const struct cap_dump *d)
{
    return d->count;
}

int cap_dump_close(struct cap_dump *d)
{
    if (!d)
        return 0;
    int rc = d->failed ? -1 : 0;
    if (!d->dumper && !d->failed && cap__dump_start(d, 1 /* Ethernet */) != 0)
        rc = -1;
    if (d->dumper) {
        if (pcap_dump_flush(d->dumper) != 0 || ferror(pcap_dump_file(d->dumper)))
            rc = -1;
        pcap_dump_close(d->dumper);
    }
    if (d->f && fclose(d->f) != 0)
        rc = -1;
    if (d->dead)
        pcap_close(d->dead);
    free(d->path);
    free(d);
    return rc;
}
