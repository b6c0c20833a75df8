#!/usr/bin/env bash
# Regenerates the seed corpora of the fuzz targets, fuzz/corpus/<target>/seed-*,
# from the captures in pcaps/ (and, for fuzz_yaml, configuration examples
# written here after cli/config.h's).  Files named crash-* are reproducers of
# past crashes: they are kept as they are.
#
#   fuzz_pcap     heads of captures (whole packets up to 4 KiB, in their own
#                 format), postfix-plain rewritten in every link type and
#                 file variant the reader knows (big-endian, nanosecond,
#                 pcapng with EPB, SPB and OPB, two sections), and a
#                 one-sided capture (the client's packets only)
#   fuzz_compare  heads of two-sided captures: u16 length of the outside
#                 head, the outside head, the inside head
#   fuzz_decode   single packets: the link-type selector byte of
#                 fuzz_decode.c's table, then the packet; every link type,
#                 VLAN tags, 802.3/SNAP, IPv4 options, IPv6 extension headers
#   fuzz_smtp     both directions of a session in fuzz_smtp.c's chunk format
#                 (in-order bytes, gaps where the capture lost some, FIN, close)
#   fuzz_tls      the TLS part of STARTTLS and implicit-TLS sessions in
#                 fuzz_tls.c's chunk format
#   fuzz_reasm    a connection's segments and ACKs as fuzz_reasm.c records, in
#                 order and with reordering, loss, changed retransmissions,
#                 cut segments, sequence wrap, flushes and stops
#   fuzz_yaml     configuration files, valid and not
#   fuzz_ere      a signature pattern, a NUL, a line: the documented examples,
#                 every construct of the dialect, refused ones, and patterns
#                 glibc's regcomp was slow on
#   fuzz_defrag   fuzz_defrag.c's records: IPv4 and IPv6 datagrams cut into
#                 fragments in order, reversed, overlapping (agreeing and
#                 not), tiny, cut by the snap length, past the largest size,
#                 waiting past the timeout, under tight limits, in every
#                 encapsulation, combs of one-byte pieces past the piece
#                 limit, datagrams left held at the end, and a fragment
#                 inside a fragment
#
# The output is the same on every run.  Every file stays under 4 KiB.
# Usage: fuzz/make-corpus.sh        (needs python3; no other tool)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
exec python3 - "$root" <<'PY'
import glob, os, struct, sys

ROOT = sys.argv[1]
PCAPS = os.path.join(ROOT, "pcaps")
CORPUS = os.path.join(ROOT, "fuzz", "corpus")
LIMIT = 4096  # bytes per seed file
TARGETS = ["fuzz_decode", "fuzz_reasm", "fuzz_smtp", "fuzz_tls", "fuzz_yaml", "fuzz_pcap",
           "fuzz_compare", "fuzz_defrag", "fuzz_ere"]

# fuzz_decode.c's link-type table, in its order.
LT_NULL, LT_EN10MB, LT_RAW14, LT_RAW12, LT_RAW, LT_LOOP, LT_SLL, LT_IPV4, LT_IPV6, LT_SLL2 = \
    0, 1, 14, 12, 101, 108, 113, 228, 229, 276
DECODE_TABLE = [LT_NULL, LT_EN10MB, LT_RAW14, LT_RAW12, LT_RAW, LT_LOOP, LT_SLL, LT_IPV4,
                LT_IPV6, LT_SLL2, 127]

written = {t: 0 for t in TARGETS}


def emit(target, name, data):
    assert len(data) <= LIMIT, (target, name, len(data))
    with open(os.path.join(CORPUS, target, "seed-" + name), "wb") as f:
        f.write(data)
    written[target] += 1


# ---- capture files ----

class Capture:
    """A capture's packets, with the raw bytes needed to cut it short."""

    def __init__(self, path):
        self.path = path
        self.name = os.path.basename(path)
        data = open(path, "rb").read()
        self.packets = []  # (linktype, ts_sec, ts_frac, wirelen, bytes)
        self.head = b""    # file/section header bytes (pcap: 24 bytes)
        self.units = []    # (is_packet, raw bytes) after the head, in order
        if data[:4] == b"\x0a\x0d\x0d\x0a":
            self._pcapng(data)
        else:
            self._pcap(data)

    def _pcap(self, d):
        magic = d[:4]
        e = "<" if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
        self.format = "pcap"
        self.linktype = struct.unpack(e + "I", d[20:24])[0]
        self.head = d[:24]
        at = 24
        while at + 16 <= len(d):
            sec, frac, incl, orig = struct.unpack(e + "IIII", d[at:at + 16])
            pkt = d[at + 16:at + 16 + incl]
            self.units.append((True, d[at:at + 16 + incl]))
            self.packets.append((self.linktype, sec, frac, orig, pkt))
            at += 16 + incl

    def _pcapng(self, d):
        self.format = "pcapng"
        at, e, ifaces = 0, "<", []
        self.linktype = None
        while at + 12 <= len(d):
            btype = struct.unpack("<I", d[at:at + 4])[0]
            if btype == 0x0A0D0D0A:
                e = "<" if d[at + 8:at + 12] == b"\x4d\x3c\x2b\x1a" else ">"
                ifaces = []
            blen = struct.unpack(e + "I", d[at + 4:at + 8])[0]
            body = d[at + 8:at + blen - 4]
            raw = d[at:at + blen]
            if btype in (0x0A0D0D0A, 1):
                if btype == 1:
                    ifaces.append(struct.unpack(e + "H", body[:2])[0])
                    if self.linktype is None:
                        self.linktype = ifaces[-1]
                if not self.units:
                    self.head += raw
                else:
                    self.units.append((False, raw))
            elif btype == 6:
                iface, hi, lo, incl, orig = struct.unpack(e + "IIIII", body[:20])
                self.packets.append((ifaces[iface], hi, lo, orig, body[20:20 + incl]))
                self.units.append((True, raw))
            else:
                self.units.append((False, raw))
            at += blen

    def cut(self, limit):
        """The head and as many whole units as fit in `limit` bytes."""
        out = self.head
        for is_packet, raw in self.units:
            if len(out) + len(raw) > limit:
                break
            out += raw
        return out


def pcap_file(packets, linktype, endian="<", nano=False):
    magic = 0xA1B23C4D if nano else 0xA1B2C3D4
    out = struct.pack(endian + "IHHiIII", magic, 2, 4, 0, 0, 262144, linktype)
    for sec, frac, pkt in packets:
        out += struct.pack(endian + "IIII", sec, frac, len(pkt), len(pkt)) + pkt
    return out


def ng_block(e, btype, body):
    body += b"\0" * (-len(body) % 4)
    n = len(body) + 12
    return struct.pack(e + "II", btype, n) + body + struct.pack(e + "I", n)


def ng_shb(e):
    return ng_block(e, 0x0A0D0D0A, struct.pack(e + "IHHq", 0x1A2B3C4D, 1, 0, -1))


def ng_idb(e, linktype, tsresol=None):
    body = struct.pack(e + "HHI", linktype, 0, 262144)
    if tsresol is not None:
        body += struct.pack(e + "HH", 9, 1) + bytes([tsresol]) + b"\0\0\0"
        body += struct.pack(e + "HH", 0, 0)
    return ng_block(e, 1, body)


def ng_epb(e, iface, ts, pkt):
    return ng_block(e, 6, struct.pack(e + "IIIII", iface, ts >> 32, ts & 0xFFFFFFFF, len(pkt),
                                      len(pkt)) + pkt)


def ng_spb(e, pkt):
    return ng_block(e, 3, struct.pack(e + "I", len(pkt)) + pkt)


def ng_opb(e, iface, ts, pkt):
    return ng_block(e, 2, struct.pack(e + "HHIIII", iface, 0, ts >> 32, ts & 0xFFFFFFFF,
                                      len(pkt), len(pkt)) + pkt)


# ---- packet decoding (enough for the repository's captures) ----

def link_to_ip(lt, p):
    """Returns (ethertype-like 4/6, ip bytes) or None."""
    if lt == LT_EN10MB:
        at, et = 14, struct.unpack(">H", p[12:14])[0]
        while et in (0x8100, 0x88A8, 0x9100):
            et = struct.unpack(">H", p[at + 2:at + 4])[0]
            at += 4
        return (4 if et == 0x0800 else 6 if et == 0x86DD else 0), p[at:]
    if lt == LT_SLL2:
        et = struct.unpack(">H", p[:2])[0]
        return (4 if et == 0x0800 else 6 if et == 0x86DD else 0), p[20:]
    if lt == LT_SLL:
        et = struct.unpack(">H", p[14:16])[0]
        return (4 if et == 0x0800 else 6 if et == 0x86DD else 0), p[16:]
    if lt in (LT_RAW, LT_RAW12, LT_RAW14):
        return p[0] >> 4, p
    return None


def decode(lt, p):
    """(src, dst, sport, dport, seq, ack, flags, payload) of a TCP packet, or None."""
    r = link_to_ip(lt, p)
    if not r:
        return None
    ver, ip = r
    if ver == 4:
        ihl = (ip[0] & 15) * 4
        if ip[9] != 6:
            return None
        total = struct.unpack(">H", ip[2:4])[0]
        src, dst, tcp = ip[12:16], ip[16:20], ip[ihl:total]
    elif ver == 6:
        if ip[6] != 6:
            return None
        plen = struct.unpack(">H", ip[4:6])[0]
        src, dst, tcp = ip[8:24], ip[24:40], ip[40:40 + plen]
    else:
        return None
    sport, dport, seq, ack, off, flags = struct.unpack(">HHIIBB", tcp[:14])
    return src, dst, sport, dport, seq, ack, flags, tcp[(off >> 4) * 4:]


FIN, SYN, RST, ACK = 1, 2, 4, 16


class Conn:
    """The first TCP connection of a capture with its segments in capture order."""

    def __init__(self, cap):
        self.segs = []  # (dir, seq, ack, flags, payload); dir 0 = client to server
        self.isn = [None, None]
        key = client = None
        for lt, _, _, _, pkt in cap.packets:
            d = decode(lt, pkt)
            if not d:
                continue
            src, dst, sport, dport, seq, ack, flags, pl = d
            k = frozenset([(src, sport), (dst, dport)])
            if key is None:
                key = k
            if k != key:
                continue
            if client is None:
                if flags & SYN and not flags & ACK:
                    client = (src, sport)
                elif pl[:3] == b"220":
                    client = (dst, dport)
                elif pl:
                    client = (src, sport)
                else:
                    continue
            di = 0 if (src, sport) == client else 1
            if flags & SYN:
                self.isn[di] = (seq + 1) & 0xFFFFFFFF
                if flags & ACK and self.isn[1 - di] is None:
                    self.isn[1 - di] = ack
                continue
            if self.isn[di] is None:
                self.isn[di] = seq
            self.segs.append((di, seq, ack, flags, pl))

    def streams(self):
        """Chunks (dir, 'data'|'gap', bytes or length) as a simple reassembler delivers them."""
        nxt = list(self.isn)
        out = []
        for di, seq, _, flags, pl in self.segs:
            if nxt[di] is None:
                nxt[di] = seq
            rel = (seq - nxt[di] + 2**31) % 2**32 - 2**31
            if rel > 0:
                out.append((di, "gap", rel))
                nxt[di] = (nxt[di] + rel) & 0xFFFFFFFF
                rel = 0
            if -rel < len(pl):
                data = pl[-rel:]
                out.append((di, "data", data))
                nxt[di] = (nxt[di] + len(data)) & 0xFFFFFFFF
            if flags & FIN:
                out.append((di, "fin", 0))
        return out


def load(name):
    return Capture(os.path.join(PCAPS, name))


# ---- fuzz_pcap and fuzz_compare ----

PCAP_HEADS = [
    "postfix-plain.pcap", "postfix-plain.pcapng", "postfix-any.pcap", "postfix-ipv6.pcap",
    "postfix-vlan.pcap", "postfix-auth-login.pcap", "postfix-auth-plain.pcap",
    "postfix-pipelining.pcap", "postfix-multi-message.pcap", "postfix-rcpt-rejected.pcap",
    "postfix-starttls-notattempted.pcap", "postfix-starttls-tls12.pcap",
    "postfix-starttls-tls13.pcap", "synth-sll2-pcapng.pcapng", "synth-asa-sll2-pcapng.pcapng",
    "synth-raw-ns.pcap", "synth-vlan-qinq.pcap", "synth-ipv6.pcap", "synth-implicit-tls.pcap",
    "synth-snaplen.pcap", "synth-tls-reset.pcap", "synth-cleartext-after-starttls.pcap",
    "synth-asa-exchange-auth.pcap", "synth-asa-multiline-banner.pcap", "synth-pix-split-dot.pcap",
    "synth-reorder-dup.pcap", "synth-capture-loss.pcap", "synth-clean-rst-after-quit.pcap",
]


def rewrite_link(lt, pkt, to):
    """The packet's IP datagram under another link layer."""
    ver, ip = link_to_ip(lt, pkt)
    if to == LT_NULL:
        return struct.pack("<I", 2 if ver == 4 else 10) + ip
    if to == LT_LOOP:
        return struct.pack(">I", 2 if ver == 4 else 24) + ip
    if to == LT_SLL:
        return struct.pack(">HHH8sH", 0, 1, 6, b"\x02\0\0\0\0\x01\0\0",
                           0x0800 if ver == 4 else 0x86DD) + ip
    if to == LT_SLL2:
        return struct.pack(">HHIHBB8s", 0x0800 if ver == 4 else 0x86DD, 0, 2, 1, 0, 6,
                           b"\x02\0\0\0\0\x01\0\0") + ip
    return ip  # RAW, IPV4, IPV6


def fuzz_pcap():
    for name in PCAP_HEADS:
        emit("fuzz_pcap", name.replace(".", "-") + "-head", load(name).cut(LIMIT))
    plain = load("postfix-plain.pcap")
    pk = [(s, f, p) for _, s, f, _, p in plain.packets]
    for lt, label in [(LT_NULL, "null"), (LT_LOOP, "loop"), (LT_SLL, "sll"), (LT_SLL2, "sll2"),
                      (LT_RAW, "raw"), (LT_RAW14, "raw14"), (LT_IPV4, "ipv4")]:
        emit("fuzz_pcap", "plain-linktype-" + label,
             pcap_file([(s, f, rewrite_link(LT_EN10MB, p, lt)) for s, f, p in pk], lt))
    emit("fuzz_pcap", "plain-bigendian", pcap_file(pk, LT_EN10MB, ">"))
    emit("fuzz_pcap", "plain-nanosecond",
         pcap_file([(s, f * 1000, p) for s, f, p in pk], LT_EN10MB, "<", True))
    # pcapng: a nanosecond interface with EPBs, then SPBs and OPBs, in two sections.
    for e, label in [("<", "le"), (">", "be")]:
        half = len(pk) // 2
        out = ng_shb(e) + ng_idb(e, LT_EN10MB, 9) + ng_idb(e, LT_RAW)
        for s, f, p in pk[:half]:
            out += ng_epb(e, 0, s * 10**9 + f * 1000, p)
        out += ng_shb(e) + ng_idb(e, LT_EN10MB)
        for i, (s, f, p) in enumerate(pk[half:]):
            ts = s * 10**6 + f
            out += ng_spb(e, p) if i % 3 == 2 else ng_opb(e, 0, ts, p) if i % 3 == 1 \
                else ng_epb(e, 0, ts, p)
        emit("fuzz_pcap", "plain-pcapng-mixed-" + label, out)
    # One-sided: only what the client sent (asymmetric routing, a capture
    # point that sees one direction).
    mm = load("postfix-multi-message.pcap")
    out = mm.head
    for is_packet, raw in mm.units:
        d = decode(mm.linktype, raw[16:])
        if d and d[3] == 25 and len(out) + len(raw) <= LIMIT:
            out += raw
    emit("fuzz_pcap", "multi-message-client-only", out)
    ip6 = load("postfix-ipv6.pcap")
    emit("fuzz_pcap", "ipv6-linktype-ipv6",
         pcap_file([(s, f, rewrite_link(LT_EN10MB, p, LT_IPV6)) for _, s, f, _, p in ip6.packets],
                   LT_IPV6))


COMPARE_PAIRS = [
    "postfix-routed", "synth-asa-banner-masked", "synth-asa-starttls-masked",
    "synth-alg-delete", "synth-asa-exchange-auth", "synth-asa-limit-cmdline",
    "synth-pix-split-dot", "synth-asa-nat-isn", "synth-asa-multiline-banner", "synth-tls-reset",
    "synth-asa-telnet", "synth-ipv6", "synth-vlan-qinq", "synth-asa-raw-ns",
    "synth-asa-sll2-pcapng",
]


def fuzz_compare():
    for base in COMPARE_PAIRS:
        ext = ".pcapng" if base.endswith("pcapng") else ".pcap"
        a = load(base + ext).cut(LIMIT // 2 - 1)
        b = load(base + "-inside" + ext).cut(LIMIT - 2 - len(a))
        emit("fuzz_compare", base, struct.pack("<H", len(a)) + a + b)


# ---- fuzz_decode ----

def ip_with_v4_options(ip):
    ihl = (ip[0] & 15) * 4
    opts = b"\x01\x01\x07\x07\x04\0\0\0\0"[:8]  # NOP NOP, record route (len 7), pad
    total = struct.unpack(">H", ip[2:4])[0] + len(opts)
    hdr = bytes([0x40 | (ihl + len(opts)) // 4, ip[1]]) + struct.pack(">H", total) + ip[4:ihl]
    return hdr + opts + ip[ihl:]


def ip6_with_ext(ip, frag):
    """Inserts a hop-by-hop options header, and a first-fragment header."""
    nh, plen = ip[6], struct.unpack(">H", ip[4:6])[0]
    ext = b""
    if frag:
        ext = bytes([nh, 0]) + struct.pack(">HI", 0x0001, 0x12345678)  # offset 0, more
        nh = 44
    ext = bytes([nh, 0, 1, 4, 0, 0, 0, 0]) + ext  # PadN
    return ip[:4] + struct.pack(">H", plen + len(ext)) + bytes([0]) + ip[7:40] + ext + ip[40:]


def fuzz_decode():
    def sel(lt):
        return bytes([DECODE_TABLE.index(lt)])

    seen = 0
    for name in ["postfix-plain.pcap", "postfix-ipv6.pcap", "postfix-vlan.pcap",
                 "postfix-any.pcap", "synth-raw-ns.pcap", "synth-vlan-qinq.pcap",
                 "synth-sll2-pcapng.pcapng", "synth-snaplen.pcap"]:
        # The SYN (options) and the first data segment of each.
        cap = load(name)
        picks = {}
        for lt, _, _, _, p in cap.packets:
            d = decode(lt, p)
            if not d:
                continue
            flags, pl = d[6], d[7]
            kind = "syn" if flags & SYN else "fin" if flags & FIN else "data" if pl else "ack"
            if kind in ("syn", "data"):
                picks.setdefault(kind, (lt, p))
        for kind, (lt, p) in sorted(picks.items()):
            emit("fuzz_decode", "%s-%s" % (name.split(".")[0], kind), sel(lt) + p[:LIMIT - 1])
            seen += 1
    # Every other link layer, from an IPv4 and an IPv6 data packet.
    base = {}
    for name, v in [("postfix-plain.pcap", 4), ("postfix-ipv6.pcap", 6)]:
        for lt, _, _, _, p in load(name).packets:
            d = decode(lt, p)
            if d and d[7]:
                base[v] = (lt, p)
                break
    for v, (lt, p) in sorted(base.items()):
        for to, label in [(LT_NULL, "null"), (LT_LOOP, "loop"), (LT_SLL, "sll"),
                          (LT_SLL2, "sll2"), (LT_RAW if v == 6 else LT_RAW12, "raw"),
                          (LT_IPV4 if v == 4 else LT_IPV6, "ip")]:
            emit("fuzz_decode", "v%d-%s" % (v, label), sel(to) + rewrite_link(lt, p, to))
        ver, ip = link_to_ip(lt, p)
        eth = p[:12]
        et = b"\x08\x00" if v == 4 else b"\x86\xdd"
        emit("fuzz_decode", "v%d-dot1q" % v, sel(LT_EN10MB) + eth + b"\x81\x00\x00\x64" + et + ip)
        emit("fuzz_decode", "v%d-qinq" % v,
             sel(LT_EN10MB) + eth + b"\x88\xa8\x00\x0a\x81\x00\x00\x64" + et + ip)
        snap = b"\xaa\xaa\x03\x00\x00\x00" + et + ip
        emit("fuzz_decode", "v%d-snap" % v,
             sel(LT_EN10MB) + eth + struct.pack(">H", len(snap)) + snap)
        emit("fuzz_decode", "v%d-unsupported-link" % v, bytes([len(DECODE_TABLE) - 1]) + p)
        if v == 4:
            emit("fuzz_decode", "v4-options", sel(LT_RAW) + ip_with_v4_options(ip))
            frag = bytearray(ip)
            frag[6:8] = struct.pack(">H", 0x0010)  # offset 128 bytes: not the first fragment
            emit("fuzz_decode", "v4-fragment", sel(LT_RAW) + bytes(frag))
        else:
            emit("fuzz_decode", "v6-hopbyhop", sel(LT_RAW) + ip6_with_ext(ip, False))
            emit("fuzz_decode", "v6-fragment", sel(LT_RAW) + ip6_with_ext(ip, True))


# ---- fuzz_smtp and fuzz_tls ----

def chunks_smtp(stream, limit, closing=True):
    """fuzz_smtp.c chunks (without the mode byte) for a reassembled dialogue."""
    pieces = []
    for di, kind, v in stream:
        if kind == "data":
            pieces += [bytes([di, len(v[i:i + 255])]) + v[i:i + 255] for i in range(0, len(v), 255)]
        elif kind == "gap":
            while v > 0:
                g = min(v, 4095)
                pieces.append(bytes([di | 5 << 1 | (g >> 8) << 4, g & 0xFF]))
                v -= g
        elif kind == "fin":
            pieces.append(bytes([di | 6 << 1, 0]))
    out = b""
    tail = b"\x0c\x00\x0d\x00\x0e\x00" if closing else b""
    for piece in pieces:
        if len(out) + len(piece) + len(tail) > limit:
            break
        out += piece
    return out + tail


SMTP_CASES = [
    # (capture, mode byte); mode bit 3 also checks byte-at-a-time feeding
    ("postfix-plain.pcap", 8), ("postfix-auth-login.pcap", 0), ("postfix-auth-plain.pcap", 8),
    ("postfix-pipelining.pcap", 8), ("postfix-multi-message.pcap", 0),
    ("postfix-multi-rcpt.pcap", 8), ("postfix-rcpt-rejected.pcap", 0),
    ("postfix-starttls-notattempted.pcap", 8), ("postfix-starttls-tls12.pcap", 0),
    ("postfix-starttls-tls13.pcap", 8), ("synth-asa-banner-masked.pcap", 8),
    ("synth-asa-banner-nospace.pcap", 0), ("synth-asa-starttls-masked.pcap", 8),
    ("synth-asa-starttls-verb.pcap", 0), ("synth-asa-exchange-auth.pcap", 8),
    ("synth-asa-exchange2003.pcap", 0), ("synth-asa-multiline-banner.pcap", 8),
    ("synth-asa-limit-cmdline.pcap", 4), ("synth-asa-limit-header.pcap", 12),
    ("synth-asa-limit-filename.pcap", 8), ("synth-asa-telnet.pcap", 0),
    ("synth-asa-special-char.pcap", 8), ("synth-pix-split-dot.pcap", 8),
    ("synth-pix-noop.pcap", 0), ("synth-striptls-454.pcap", 8),
    ("synth-striptls-502-ehlo.pcap", 0), ("synth-clean-exchange.pcap", 8),
    ("synth-clean-long-lines.pcap", 4), ("synth-clean-unknown-verb.pcap", 8),
    ("synth-clean-starttls-refused.pcap", 0), ("synth-cleartext-after-starttls.pcap", 8),
    ("synth-clean-auth.pcap", 8), ("synth-capture-loss.pcap", 8),
    ("synth-implicit-tls.pcap", 2), ("synth-implicit-tls-plain.pcap", 10),
    ("synth-conflict.pcap", 0),
]


def fuzz_smtp():
    for name, mode in SMTP_CASES:
        st = Conn(load(name)).streams()
        emit("fuzz_smtp", name.split(".")[0], bytes([mode]) + chunks_smtp(st, LIMIT - 1))
    # Picked up mid-stream (the greeting and EHLO not seen); and on a port
    # that is not known to be SMTP (probing: the greeting decides).
    st = Conn(load("postfix-pipelining.pcap")).streams()
    emit("fuzz_smtp", "midstream", bytes([16 | 8]) + chunks_smtp(st[4:], LIMIT - 1))
    emit("fuzz_smtp", "probe", bytes([1 | 8]) + chunks_smtp(st, LIMIT - 1))
    # One-sided: the client's bytes only (every reply missing).
    st = [c for c in Conn(load("postfix-multi-message.pcap")).streams() if c[0] == 0]
    emit("fuzz_smtp", "client-only-multi-message", bytes([8]) + chunks_smtp(st, LIMIT - 1))
    # Overlapping re-sends and jumps ahead, as fuzz_smtp.c encodes them.
    st = Conn(load("postfix-plain.pcap")).streams()
    out = bytes([8])
    for i, (di, kind, v) in enumerate(st):
        if kind == "data" and len(v) <= 255:
            skew = 2 if i % 3 == 1 else 3 if i % 5 == 4 else 0
            out += bytes([di | skew << 4 | 1 << 6, len(v)]) + v
    emit("fuzz_smtp", "overlap-and-jump", out + b"\x0e\x00")


def tls_part(conn):
    """The TLS bytes of each direction: from its first record header on."""
    started = [False, False]
    out = []
    for di, kind, v in conn.streams():
        if kind != "data":
            continue
        if not started[di]:
            at = v.find(b"\x16\x03")
            if at < 0 or (at > 0 and v[at - 1:at] != b"\n"):
                continue
            started[di], v = True, v[at:]
        out.append((di, "data", v))
    return out


TLS_CASES = [
    "postfix-starttls-tls12.pcap", "postfix-starttls-tls13.pcap", "synth-clean-starttls.pcap",
    "synth-clean-tls13.pcap", "synth-implicit-tls.pcap", "synth-tls-reset.pcap",
    "synth-tls-intercept.pcap", "synth-asa-allow-tls.pcap", "synth-golden-mirror-starttls.pcap",
    "synth-tls-intercept-some.pcap",
]


def fuzz_tls():
    for name in TLS_CASES:
        part = tls_part(Conn(load(name)))
        if not part:
            continue
        emit("fuzz_tls", name.split(".")[0], chunks_smtp(part, LIMIT, closing=False))
    # The ClientHello alone, one byte at a time; and after a gap.
    part = tls_part(Conn(load("postfix-starttls-tls12.pcap")))
    hello = part[0][2]
    emit("fuzz_tls", "clienthello-bytewise",
         b"".join(bytes([0, 1, b]) for b in hello[:LIMIT // 3]))
    emit("fuzz_tls", "gap-then-hello", bytes([1 | 7 << 1, 40]) + chunks_smtp(part[:2], LIMIT - 2,
                                                                             closing=False))


# ---- fuzz_reasm ----

def reasm_records(conn, cfg, isn0=None, variant=""):
    """fuzz_reasm.c input for a connection's segments; `variant` adds damage."""
    base = list(conn.isn)
    out = bytes([cfg]) + struct.pack("<I", base[0] if isn0 is None else isn0) + bytes([3])
    recs = []
    for di, seq, ack, flags, pl in conn.segs:
        rel = (seq - base[di]) & 0xFFFF
        if flags & ACK and base[1 - di] is not None:
            arel = (ack - base[1 - di]) & 0xFFFF
            recs.append(bytes([(1 - di) | 4 << 1]) + struct.pack("<H", arel))
        pieces = [pl[i:i + 255] for i in range(0, len(pl), 255)] or [b""]
        for i, c in enumerate(pieces):
            fin = 0x20 if flags & FIN and i == len(pieces) - 1 else 0
            if not c and not fin:
                continue
            recs.append(bytes([di | fin]) + struct.pack("<H", (rel + 255 * i) & 0xFFFF) +
                        bytes([len(c)]) + c)
    data_idx = [i for i, r in enumerate(recs) if (r[0] >> 1) & 7 == 0 and r[3] > 0]
    if variant == "reorder":
        for a in data_idx[1::4]:
            b = a + 1
            if b < len(recs):
                recs[a], recs[b] = recs[b], recs[a]
    elif variant == "loss":
        for a in reversed(data_idx[2::5]):
            del recs[a]
    elif variant == "retransmit":
        for a in reversed(data_idx[1::3]):
            r = bytearray(recs[a])
            r[-1] ^= 0x20  # same segment again, last byte changed
            recs.insert(a + 1, bytes(r))
    elif variant == "snaplen":
        for a in data_idx[::3]:
            r = recs[a]
            cut = max(1, r[3] // 2)
            recs[a] = bytes([r[0] | 0x40]) + r[1:3] + bytes([cut, r[3] - cut]) + r[4:4 + cut]
    elif variant == "flush-stop":
        recs.insert(len(recs) // 3, bytes([0 | 7 << 1, 3]))
        recs.insert(len(recs) // 2, bytes([1 | 5 << 1 | 3 << 4]))
        recs.insert(2 * len(recs) // 3, bytes([0 | 6 << 1]))
    for r in recs:
        if len(out) + len(r) > LIMIT:
            break
        out += r
    return out


REASM_CASES = [
    # (capture, limits byte, ISN override, variant)
    ("postfix-plain.pcap", 0xFF, None, ""),
    ("postfix-plain.pcap", 0xFF, None, "reorder"),
    ("postfix-plain.pcap", 0x65, None, "reorder"),
    ("postfix-plain.pcap", 0xFF, None, "loss"),
    ("postfix-plain.pcap", 0xBF, None, "retransmit"),
    ("postfix-plain.pcap", 0x5F, None, "retransmit"),
    ("postfix-plain.pcap", 0xFF, None, "snaplen"),
    ("postfix-plain.pcap", 0xFF, None, "flush-stop"),
    ("postfix-plain.pcap", 0xFF, 0xFFFFFF80, ""),
    ("postfix-plain.pcap", 0x00, 0xFFFFFFF0, "reorder"),
    ("postfix-pipelining.pcap", 0xAA, None, "reorder"),
    ("postfix-multi-message.pcap", 0xFF, None, "loss"),
    ("synth-reorder-dup.pcap", 0xFF, None, ""),
    ("synth-capture-loss.pcap", 0xFF, None, ""),
    ("synth-path-loss.pcap", 0xF5, None, ""),
    ("synth-snaplen.pcap", 0xFF, None, ""),
]


def fuzz_reasm():
    for name, cfg, isn0, variant in REASM_CASES:
        label = "%s-%02x%s%s" % (name.split(".")[0], cfg, "-wrap" if isn0 else "",
                                  "-" + variant if variant else "")
        emit("fuzz_reasm", label, reasm_records(Conn(load(name)), cfg, isn0, variant))
    # Hand-made: a hole closed late, a FIN before the data, a far sequence number.
    hdr = b"\xff" + struct.pack("<I", 1000) + b"\x03"
    emit("fuzz_reasm", "hole-then-fill",
         hdr + b"\x00\x05\x00\x03abc" + b"\x00\x00\x00\x05hello" + b"\x00\x08\x00\x02xy")
    emit("fuzz_reasm", "fin-first",
         hdr + b"\x20\x05\x00\x00" + b"\x00\x00\x00\x05hello" + b"\x08\x06\x00")
    emit("fuzz_reasm", "far-seq-and-ack",
         hdr + b"\x10\x00\x40\x03abc" + b"\x18\x00\x40" + b"\x08\x10\x00" + b"\x0a")


# ---- fuzz_yaml ----

YAML_SEEDS = {
    "full-example": """\
ports: [25, 587, 2525]
tls_ports: [465]
fail_on: low
rules:
  starttls_failed: {enabled: false}
  banner_masked: {severity: high}
thresholds:
  cmd_line_max: 512
  rcpt_max: 100
  header_line_max: 998
  sender_max: 320
  filename_max: 255
timeouts:
  idle: 600
limits:
  max_flows: 262144
  transcript_lines: 100000
signatures:
  - id: legacy_gateway
    target: banner
    pattern: "^220 .*MailGate"
    severity: medium
    explanation: "The old gateway answers instead of the server."
no_tls_servers: ["192.0.2.25", "198.51.100.7:25"]
""",
    "cli-test-c1": """\
# comment
fail_on: medium
rules:
  banner_masked: {enabled: false}
  ehlo_keyword_masked: {severity: low}
signatures:
  - id: postfix_banner
    target: banner
    pattern: "^220 [^ ]+ ESMTP"
    severity: info
    explanation: "The server speaks ESMTP."
""",
    "thresholds-flow": "thresholds: {rcpt_max: 200}\n",
    "no-tls": 'no_tls_servers: ["192.0.2.25"]\nports: [25]\n',
    "ports-string": 'ports: "25,587,2000-2010"\ntls_ports: []\nfail_on: never\n',
    "ports-bad-range": 'ports: "25-10"\n',
    "bad-rule": "rules:\n  banner_maskd: {enabled: false}\n",
    "bad-key": "ports: [25]\ntimeout: 5\n",
    "bad-regex": 'signatures:\n  - {id: x, target: banner, pattern: "a(b"}\n',
    "bad-severity": "rules: {banner_masked: {severity: loud}}\n",
    "bad-yaml": "ports: [25\nfail_on: low\n",
    "builtin-id": "signatures:\n  - {id: banner_masked, target: banner, pattern: x}\n",
    "duplicate-signature": "signatures:\n  - {id: a, target: ehlo, pattern: x}\n"
                           "  - {id: a, target: reply, pattern: y}\n",
    "signature-targets": "signatures:\n"
                         "  - {id: s1, target: command, pattern: '^XEXCH50', severity: low}\n"
                         "  - {id: s2, target: reply, pattern: '^5[0-9]{2} ', severity: info}\n"
                         "  - {id: s3, target: ehlo, pattern: 'X-ANONYMOUSTLS'}\n",
    "bad-types": "ports: {a: 1}\nrules: [1, 2]\nthresholds: 5\nlimits: []\n",
    "number-limits": "thresholds: {cmd_line_max: 0}\nlimits: {max_flows: 99999999999}\n",
    "bool-words": "rules:\n  starttls_failed: {enabled: no}\n  banner_masked: {enabled: yes}\n",
    "anchors": "base: &b {enabled: false}\nrules:\n  starttls_failed: *b\n",
    "anchors-nested": "a: &a [1, 2, 3]\nb: &b [*a, *a, *a]\nc: &c [*b, *b, *b]\nports: *a\n",
    "tags-and-styles": "ports: !!seq [25]\nfail_on: 'high'\nno_tls_servers:\n"
                       "  - >-\n    192.0.2.1\n  - |\n    10.0.0.1\n",
    "multi-document": "ports: [25]\n---\nports: [587]\n...\n",
    "empty": "",
    "null-root": "~\n",
    "scalar-root": "just a string\n",
    "deep-nesting": "rules: " + "[" * 70 + "]" * 70 + "\n",
    "unicode": "signatures:\n  - id: \"\\u00e9t\\u00e9\"\n    target: banner\n"
               "    pattern: \"\u00e9\"\n    explanation: \"\U0001F600\"\n",
    "bom-crlf": "\ufeffports: [25]\r\nfail_on: info\r\n",
    "timeouts-idle": "timeouts: {idle: 86400}\nlimits: {transcript_lines: 16}\n",
}


def fuzz_yaml():
    for name, text in sorted(YAML_SEEDS.items()):
        emit("fuzz_yaml", name + ".yaml", text.encode("utf-8"))
    # A few scenario and expectation files: valid YAML, not configurations.
    for path in ["scenarios/snaplen.yaml", "scenarios/implicit-tls.yaml",
                 "postfix-plain.expect.yaml"]:
        data = open(os.path.join(PCAPS, path), "rb").read()[:LIMIT]
        emit("fuzz_yaml", os.path.basename(path).replace(".yaml", "") + "-other.yaml", data)


# ---- fuzz_ere ----

ERE_SEEDS = {
    "banner-masked": (rb"^220 [*0 ]+$", b"220 ****** *****"),
    "starttls-x": (rb"^250-X{8}A$", b"250-XXXXXXXA"),
    "mailgate": (rb"^220 .*MailGate", b"220 mx.example MailGate ready"),
    "classes": (rb"[[:alpha:]][[:digit:]]+[^[:space:]]", b"a12x"),
    "brackets": (rb"[]a-][^]b]\.[[.-.]][[=e=]]", b"]-.-e"),
    "words": (rb"\<AUTH\>|\bLOGIN\b\w+\W\s\S", b"AUTH LOGIN x y"),
    "bounds": (rb"x{2,5}y{,3}z{4}w{1,}", b"xxxyyzzzzw"),
    "alternation": (rb"(EHLO|HELO|ehlo)( |-)+[a-z.]+", b"EHLO mail.example.org"),
    "nested": (rb"((a|b)*c)+(d?e)*", b"abcbcde"),
    "nullable": (rb"(|a){20}(a|)*b", b"aaaaab"),
    "stacked": (rb"a+?b*?", b"ab"),
    "unmatched-paren": (rb"a)b", b"a)b"),
    "backref": (rb"(a)\1", b"aa"),
    "errors": (rb"a(b[c", b""),
    "dotstar": (rb".*.*.*x", b"a" * 33),
    "escaped-line": (rb"^MAIL FROM:<[^>]*>\\r\\n$", rb"MAIL FROM:<a@b>\r\n"),
}


def fuzz_ere():
    for name, (pattern, line) in sorted(ERE_SEEDS.items()):
        emit("fuzz_ere", name, pattern + b"\0" + line)


# ---- fuzz_defrag ----

def dg_head(mem=3, dgs=3, encap=0, no_ctx=False, timeout=120, no_vxlan=False):
    """fuzz_defrag.c's two header bytes."""
    return bytes([mem | dgs << 2 | encap << 4 | (0x80 if no_ctx else 0),
                  timeout | (0x80 if no_vxlan else 0)])


def dg_frag(key, off8, n, more, fill=None, data=b"", tcp=True, cut=0):
    """A fragment record: fill=s for the pattern s + offset, else literal data."""
    op = key | (8 if more else 0) | (16 if fill is not None else 0) | (32 if tcp else 0)
    if cut:
        op |= 64
    o = off8 | (cut - 1 if cut else 0) << 13
    rec = bytes([op]) + struct.pack("<HH", o, n if fill is not None else len(data))
    return rec + (bytes([fill]) if fill is not None else data)


def dg_time(steps):
    return bytes([0x80 | steps])


DG_FLUSH, DG_DUP, DG_DRAIN, DG_BACK = b"\xc0", b"\xc2", b"\xc3", b"\xbf"


def dg_raw(lt_index, pkt):
    return b"\xc1" + bytes([lt_index]) + struct.pack("<H", len(pkt)) + pkt


def ip4(src, dst, proto, ident, off8, more, payload):
    h = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), ident,
                    off8 | (0x2000 if more else 0), 64, proto, 0, bytes(src), bytes(dst))
    return h + payload


def fuzz_defrag():
    smtp = (b"EHLO client.example.org\r\nMAIL FROM:<a@example.org>\r\n"
            b"RCPT TO:<b@example.net>\r\nDATA\r\n")
    # In order and reversed, IPv4 (key 0) and IPv6 (key 1).
    for key, name in ((0, "v4"), (1, "v6")):
        a = dg_frag(key, 0, 1000, True, fill=7)
        b = dg_frag(key, 125, 400, False, fill=7, tcp=False)
        emit("fuzz_defrag", name + "-in-order", dg_head() + a + b)
        emit("fuzz_defrag", name + "-reversed", dg_head() + b + a)
    # Literal SMTP bytes after the TCP header, in three 8-byte-aligned pieces.
    seg = bytes(20) + smtp
    pieces = [(0, 40), (40, 48), (88, len(seg) - 88)]
    for key, name in ((2, "smtp-literal"), (3, "smtp-literal-v6")):
        recs = b"".join(dg_frag(key, o // 8, 0, o + n < len(seg), data=seg[o:o + n])
                        for o, n in pieces)
        emit("fuzz_defrag", name, dg_head() + recs)
    # Overlaps: agreeing (same fill), conflicting (other fill), two ends.
    emit("fuzz_defrag", "overlap-agree",
         dg_head() + dg_frag(0, 0, 400, True, fill=1) + dg_frag(0, 40, 400, True, fill=1)
         + dg_frag(0, 20, 200, True, fill=1) + dg_frag(0, 90, 80, False, fill=1))
    emit("fuzz_defrag", "overlap-conflict",
         dg_head() + dg_frag(0, 0, 400, True, fill=1) + dg_frag(0, 40, 400, True, fill=9)
         + dg_frag(0, 10, 200, True, fill=3) + dg_frag(0, 90, 80, False, fill=1))
    emit("fuzz_defrag", "two-ends",
         dg_head() + dg_frag(1, 0, 64, True, fill=2) + dg_frag(1, 8, 64, False, fill=2)
         + dg_frag(1, 10, 8, False, fill=2))
    # Duplicates, the same datagram from swapped addresses (key 6), time back.
    emit("fuzz_defrag", "dup-swapped",
         dg_head() + dg_frag(0, 0, 64, True, fill=4) + DG_DUP + dg_frag(6, 0, 64, True, fill=5)
         + DG_BACK + dg_frag(6, 8, 16, False, fill=5) + DG_DUP + dg_frag(0, 8, 16, False, fill=4))
    # Tiny pieces: 1-byte literals (hostile, not multiples of 8) and 8-byte ones.
    tiny = b"".join(dg_frag(2, i, 0, True, data=bytes([65 + i])) for i in range(60))
    emit("fuzz_defrag", "tiny-pieces", dg_head() + tiny + dg_frag(2, 60, 8, False, fill=0))
    # Cut by the snap length, then the whole fragment again.
    emit("fuzz_defrag", "snaplen-cut",
         dg_head() + dg_frag(0, 0, 1400, True, fill=3, cut=4)
         + dg_frag(0, 175, 100, False, fill=3) + dg_frag(0, 0, 1400, True, fill=3))
    # Past CAP_DEFRAG_MAX_SIZE, and a datagram of exactly 65535 bytes.
    emit("fuzz_defrag", "too-big",
         dg_head() + dg_frag(0, 0x1fff, 200, False, fill=0)
         + dg_frag(0, 0, 65528, True, fill=1) + dg_frag(0, 8191, 7, False, fill=1))
    # Timeouts: the first fragment waits too long (partial delivery), a later
    # datagram completes; a flush delivers what is left.
    emit("fuzz_defrag", "timeout",
         dg_head(timeout=8) + dg_frag(0, 0, 200, True, fill=6) + dg_time(20)
         + dg_frag(0, 25, 50, False, fill=6) + dg_frag(2, 0, 100, True, fill=2) + DG_DRAIN
         + dg_time(5) + dg_frag(2, 13, 20, False, fill=2) + dg_frag(4, 0, 80, True, fill=3)
         + DG_FLUSH + dg_frag(4, 10, 8, False, fill=3))
    emit("fuzz_defrag", "timeout-zero",
         dg_head(timeout=0) + dg_frag(1, 0, 64, True, fill=1) + dg_time(1)
         + dg_frag(1, 8, 64, False, fill=1))
    # Tight limits: 2 KiB of data, one datagram, interleaved keys.
    recs = b""
    for i in range(6):
        recs += dg_frag(i % 4 * 2, 0, 600, True, fill=i) + dg_frag((i + 1) % 4 * 2, 75, 300,
                                                                    False, fill=i)
    emit("fuzz_defrag", "tight-limits", dg_head(mem=0, dgs=0) + recs)
    emit("fuzz_defrag", "three-datagrams", dg_head(mem=1, dgs=1) + recs)
    # Every encapsulation, IPv4 then IPv6; VXLAN also with its port off.
    for encap, name in enumerate(["raw", "eth", "vlan", "ipip", "gre", "vxlan", "sll", "qinq"]):
        body = (dg_frag(0, 0, 300, True, fill=encap) + dg_frag(1, 0, 300, True, fill=encap)
                + dg_frag(0, 30, 100, False, fill=encap) + dg_frag(1, 30, 100, False, fill=encap))
        emit("fuzz_defrag", "encap-" + name, dg_head(encap=encap) + body)
        if name in ("vlan", "ipip"):
            emit("fuzz_defrag", "encap-" + name + "-no-ctx", dg_head(encap=encap, no_ctx=True)
                 + body)
    emit("fuzz_defrag", "encap-vxlan-off", dg_head(encap=5, no_vxlan=True)
         + dg_frag(0, 0, 300, True, fill=1) + dg_frag(0, 30, 100, False, fill=1))
    # Combs of one-byte fragments (record 0xc4: key | block << 3, count - 1,
    # stride - 1, seed): past CAP_DEFRAG_MAX_PIECES, and a fill over the
    # holes between them.
    combs = b"".join(b"\xc4" + bytes([blk << 3, 255, 0, blk]) for blk in range(5))
    emit("fuzz_defrag", "comb-piece-limit", dg_head() + combs + dg_frag(0, 0, 64, False, fill=0))
    emit("fuzz_defrag", "comb-fill-holes",
         dg_head(mem=2) + b"\xc4" + bytes([1, 200, 1, 0]) + dg_frag(1, 0, 3200, True, fill=0)
         + dg_frag(1, 400, 8, False, fill=0))
    # Stop with datagrams held (record 0xc5): freed without a flush.
    emit("fuzz_defrag", "abandon",
         dg_head() + dg_frag(0, 0, 100, True, fill=1) + dg_frag(3, 0, 100, True, fill=1)
         + dg_time(63) + dg_frag(2, 0, 100, True, fill=1) + b"\xc5")
    # A fragment inside a fragment: an IPv4-in-IPv4 datagram cut in two raw
    # packets (link type raw, index 4), whose payload is the first fragment
    # of an inner datagram; the inner datagram's second fragment arrives
    # directly.
    a, b = [10, 0, 0, 1], [10, 0, 0, 2]
    c, d = [192, 0, 2, 9], [198, 51, 100, 9]
    tcp = struct.pack(">HHIIBBHHH", 40000, 25, 1000, 1, 0x50, 0x18, 65535, 0, 0)
    inner1 = ip4(c, d, 6, 77, 0, True, tcp + smtp[:44])
    outer = inner1
    emit("fuzz_defrag", "nested",
         dg_head() + dg_raw(4, ip4(a, b, 4, 5, 0, True, outer[:48]))
         + dg_raw(4, ip4(a, b, 4, 5, 6, False, outer[48:]))
         + dg_raw(4, ip4(c, d, 6, 77, 8, False, smtp[44:])))


# ---- main ----

for t in TARGETS:
    d = os.path.join(CORPUS, t)
    os.makedirs(d, exist_ok=True)
    for f in os.listdir(d):
        if f.startswith("seed-"):
            os.remove(os.path.join(d, f))
fuzz_pcap()
fuzz_compare()
fuzz_decode()
fuzz_smtp()
fuzz_tls()
fuzz_reasm()
fuzz_yaml()
fuzz_defrag()
fuzz_ere()
for t in TARGETS:
    print("make-corpus.sh: %-13s %d seeds" % (t, written[t]))
PY
