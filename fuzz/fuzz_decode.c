/* fuzz_decode.c - libFuzzer target for capture/decode.h: one packet of any
 * supported link type through cap_decode().
 *
 * Input: one byte choosing the link type (its value modulo the table below,
 * whose last entry is a type we do not decode), then the packet as captured.
 * Checks that a TCP result points inside the packet and that the header
 * fields stay within their documented ranges.
 */
#include <string.h>

#include "capture/decode.h"
#include "fuzz/fuzz.h"

/* Every link type capture/decode.c's switch handles, and one it does not
 * (LINKTYPE_IEEE802_11_RADIOTAP) for the fallback. */
static const uint32_t fz_linktypes[] = {
    CAP_LINKTYPE_NULL,
    CAP_LINKTYPE_ETHERNET,
    CAP_LINKTYPE_RAW_OPENBSD,
    CAP_LINKTYPE_RAW_DLT,
    CAP_LINKTYPE_RAW,
    CAP_LINKTYPE_LOOP,
    CAP_LINKTYPE_LINUX_SLL,
    CAP_LINKTYPE_IPV4,
    CAP_LINKTYPE_IPV6,
    CAP_LINKTYPE_LINUX_SLL2,
    127,
};
#define FZ_NLINKTYPES (sizeof(fz_linktypes) / sizeof(fz_linktypes[0]))

/* cap_endpoint_str() of an address parses back to the same address. */
static void fz_endpoint_roundtrip(const struct cap_addr *a, uint16_t port)
{
    char ep[64];
    cap_endpoint_str(ep, sizeof(ep), a, port);
    char *end = memchr(ep, 0, sizeof(ep));
    FZ_CHECK(end != NULL);
    char *colon = strrchr(ep, ':');
    FZ_CHECK(colon != NULL);
    *colon = 0;
    const char *addr = ep;
    if (ep[0] == '[') {
        FZ_CHECK(colon > ep + 1 && colon[-1] == ']');
        colon[-1] = 0;
        addr = ep + 1;
    }
    struct cap_addr back;
    FZ_CHECK(cap_addr_parse(&back, addr));
    FZ_CHECK(memcmp(back.b, a->b, sizeof(back.b)) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size - 1 > UINT32_MAX)
        return 0;
    uint32_t linktype = fz_linktypes[data[0] % FZ_NLINKTYPES];
    const uint8_t *pkt_data = data + 1;
    uint32_t caplen = (uint32_t)(size - 1);

    struct cap_packet pkt;
    memset(&pkt, 0, sizeof(pkt));
    pkt.frame = 1;
    pkt.caplen = caplen;
    pkt.wirelen = caplen;
    enum cap_status st = cap_decode(&pkt, linktype, pkt_data, caplen);
    FZ_CHECK(st == pkt.status);
    FZ_CHECK((unsigned)st < CAP_ST__COUNT);
    FZ_CHECK(cap_status_name(st) != NULL);
    FZ_CHECK(pkt.nvlan <= CAP_MAX_VLAN_TAGS);
    if (st != CAP_ST_TCP)
        return 0;

    FZ_CHECK(pkt.ipver == 4 || pkt.ipver == 6);
    FZ_CHECK(pkt.payload_wire >= pkt.payload_len);
    FZ_CHECK(pkt.payload_len <= caplen);
    if (pkt.payload_len > 0) {
        /* The payload lies inside the packet; reading its ends lets ASan
         * check the memory too. */
        uintptr_t lo = (uintptr_t)pkt_data, hi = lo + caplen;
        uintptr_t pl = (uintptr_t)pkt.payload;
        FZ_CHECK(pl >= lo && pl <= hi && pkt.payload_len <= hi - pl);
        volatile uint8_t edge = pkt.payload[0];
        edge = pkt.payload[pkt.payload_len - 1];
        (void)edge;
    }
    if (pkt.ipver == 4) {
        FZ_CHECK(cap_addr_is_v4(&pkt.src));
        FZ_CHECK(cap_addr_is_v4(&pkt.dst));
    }
    fz_endpoint_roundtrip(&pkt.src, pkt.sport);
    fz_endpoint_roundtrip(&pkt.dst, pkt.dport);
    return 0;
}
