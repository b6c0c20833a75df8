/* pcap_loop.c - the floor of any libpcap tool: read every packet of a capture
 * with pcap_next_ex() and do nothing with it but count.
 *
 * bench/run.sh measures smtpscope against this loop: whatever smtpscope does
 * beyond it (decoding, flows, reassembly, SMTP) is the cost the performance
 * targets of docs/PERFORMANCE.md are expressed against.  The byte sum keeps
 * the compiler from skipping the packet data altogether, as a real reader
 * would at least touch the headers.
 *
 * Usage: smtpscope-pcap-loop FILE   (prints packets and captured bytes)
 */
#include <inttypes.h>
#include <pcap/pcap.h>
#include <stdio.h>

int main(int argc, char **argv)
{
    if (argc != 2) {
        fputs("usage: smtpscope-pcap-loop FILE.pcap\n", stderr);
        return 2;
    }
    char err[PCAP_ERRBUF_SIZE];
    pcap_t *p = pcap_open_offline(argv[1], err);
    if (!p) {
        fprintf(stderr, "smtpscope-pcap-loop: %s: %s\n", argv[1], err);
        return 2;
    }
    struct pcap_pkthdr *h;
    const u_char *data;
    uint64_t packets = 0, bytes = 0;
    unsigned sum = 0;
    int rc;
    while ((rc = pcap_next_ex(p, &h, &data)) == 1) {
        packets++;
        bytes += h->caplen;
        if (h->caplen > 0)
            sum += data[0];
    }
    if (rc == PCAP_ERROR) {
        fprintf(stderr, "smtpscope-pcap-loop: %s: %s\n", argv[1], pcap_geterr(p));
        pcap_close(p);
        return 2;
    }
    pcap_close(p);
    printf("%" PRIu64 " packets, %" PRIu64 " bytes (%u)\n", packets, bytes, sum & 0xff);
    return 0;
}
