"""Transmit offloads a network card performs for its driver, on whole Ethernet frames: the
Internet checksum (RFC 1071), the IPv4 header checksum, the TCP and UDP checksums over the
IPv4 pseudo-header, and TCP segmentation (TSO: one large TCP/IPv4 frame cut into MSS-sized
segments). Used by the RTL8139's C+ mode (vmm/devices/rtl8139_cplus.py).

The ones'-complement sum of 16-bit big-endian words is computed as one big integer modulo
0xFFFF: 2**16 is 1 modulo 0xFFFF, so the integer of an even-length byte string is congruent
to the sum of its words. The remainder 0 stands for 0xFFFF unless every byte is zero (a
non-zero ones'-complement sum is never +0).

A frame the offload cannot handle (not IPv4, or not TCP/UDP where that is asked, or headers
past the frame's end) raises OffloadError with the reason; the card turns it into a fail-stop.

When the install could build vmm/net/_offload.c, the sum and the segmentation of a checked
frame run there, with the same results (tests/vmm/net/test_offload.py compares the two).
"""
try:
    from vmm.net import _offload               # the arithmetic in C (optional)
except ImportError:
    _offload = None

ETH_HLEN = 14
ETHERTYPE_IPV4 = 0x0800
ETHERTYPE_VLAN = 0x8100
PROTO_TCP, PROTO_UDP = 6, 17
TCP_FIN, TCP_PSH, TCP_CWR = 0x01, 0x08, 0x80


class OffloadError(ValueError):
    pass


def ones_sum(data):
    """The folded 16-bit ones'-complement sum of `data` (big-endian words, an odd length padded
    with a zero byte)."""
    if _offload is not None:
        return _offload.ones_sum(data)
    return _ones_sum(data)


def _ones_sum(data):
    if len(data) & 1:
        data = bytes(data) + b"\0"
    value = int.from_bytes(data, "big")
    s = value % 0xFFFF
    if s == 0 and value:
        return 0xFFFF
    return s


def internet_checksum(data):
    """The checksum field value: the complement of the ones'-complement sum."""
    return ~ones_sum(data) & 0xFFFF


def _l3_offset(frame):
    """The offset of the IPv4 header in an Ethernet frame (after one VLAN tag if present)."""
    if len(frame) < ETH_HLEN + 20:
        raise OffloadError(f"a {len(frame)}-byte frame is too short for an IPv4 header")
    ethertype = (frame[12] << 8) | frame[13]
    off = ETH_HLEN
    if ethertype == ETHERTYPE_VLAN:
        ethertype = (frame[16] << 8) | frame[17]
        off += 4
    if ethertype != ETHERTYPE_IPV4 or frame[off] >> 4 != 4:
        raise OffloadError(f"the frame is not IPv4 (ethertype {ethertype:#06x})")
    return off


def _ipv4(frame):
    """(IP header offset, its length, the L4 offset, the L4 length, the protocol)."""
    ip = _l3_offset(frame)
    ihl = (frame[ip] & 0x0F) * 4
    total = (frame[ip + 2] << 8) | frame[ip + 3]
    if ihl < 20 or total < ihl or ip + total > len(frame):
        raise OffloadError(f"bad IPv4 header (header {ihl} bytes, total length {total}, "
                           f"{len(frame) - ip} bytes in the frame)")
    return ip, ihl, ip + ihl, total - ihl, frame[ip + 9]


def _set_ip_checksum(frame, ip, ihl):
    frame[ip + 10:ip + 12] = b"\0\0"
    frame[ip + 10:ip + 12] = internet_checksum(frame[ip:ip + ihl]).to_bytes(2, "big")


def _pseudo_sum(frame, ip, proto, length):
    """The pseudo-header's integer (its value modulo 0xFFFF is its ones'-complement sum)."""
    return int.from_bytes(bytes(frame[ip + 12:ip + 20]) + bytes((0, proto)) +
                          length.to_bytes(2, "big"), "big")


def _set_l4_checksum(frame, ip, l4, length, proto):
    field = l4 + (16 if proto == PROTO_TCP else 6)
    if field + 2 > l4 + length:
        raise OffloadError(f"the {'TCP' if proto == PROTO_TCP else 'UDP'} header does not fit "
                           f"in the IPv4 payload ({length} bytes)")
    frame[field:field + 2] = b"\0\0"
    seg = frame[l4:l4 + length]
    if length & 1:
        seg = bytes(seg) + b"\0"
    value = _pseudo_sum(frame, ip, proto, length) + int.from_bytes(seg, "big")
    s = value % 0xFFFF or 0xFFFF           # the pseudo-header is never all zero
    csum = ~s & 0xFFFF
    if proto == PROTO_UDP and csum == 0:
        csum = 0xFFFF                      # UDP: 0 means "no checksum"
    frame[field:field + 2] = csum.to_bytes(2, "big")


def checksum_offload(frame, ip_header, l4):
    """Fill in the checksums of the IPv4 frame `frame` (a bytearray, changed in place):
    the IPv4 header's if `ip_header`, and the TCP or UDP checksum if `l4` is "tcp"/"udp"
    (the packet must be of that protocol)."""
    ip, ihl, l4_off, length, proto = _ipv4(frame)
    if ip_header:
        _set_ip_checksum(frame, ip, ihl)
    if l4:
        want = PROTO_TCP if l4 == "tcp" else PROTO_UDP
        if proto != want:
            raise OffloadError(f"{l4.upper()} checksum asked for an IPv4 packet of "
                               f"protocol {proto}")
        if (frame[ip + 6] & 0x3F) or frame[ip + 7]:
            raise OffloadError(f"{l4.upper()} checksum asked for a fragment of an IPv4 packet")
        _set_l4_checksum(frame, ip, l4_off, length, proto)
    return frame


def tso_segments(frame, mss):
    """Cut the TCP/IPv4 frame `frame` into frames of at most `mss` bytes of TCP payload: the
    headers copied, the IPv4 total length and identification (+1 per segment), the TCP
    sequence number advanced, FIN and PSH only on the last segment, CWR only on the first,
    and both checksums computed. Returns the list of frames (bytes)."""
    if mss <= 0:
        raise OffloadError(f"large send with an MSS of {mss}")
    ip, ihl, l4, length, proto = _ipv4(frame)
    if proto != PROTO_TCP:
        raise OffloadError(f"large send of an IPv4 packet of protocol {proto} (only TCP is "
                           f"segmented)")
    if length < 20:
        raise OffloadError(f"large send with a {length}-byte TCP segment")
    thl = (frame[l4 + 12] >> 4) * 4
    if thl < 20 or thl > length:
        raise OffloadError(f"large send with a bad TCP header length ({thl})")
    if _offload is not None:
        return _offload.tso(frame, ip, l4, thl, length, mss)
    return _tso_segments(frame, mss, ip, ihl, l4, length, thl)


def _tso_segments(frame, mss, ip, ihl, l4, length, thl):
    eth = bytes(frame[:ip])
    iph = bytearray(frame[ip:l4])
    tcph = bytearray(frame[l4:l4 + thl])
    payload = bytes(frame[l4 + thl:l4 + length])
    ident = (iph[4] << 8) | iph[5]
    seq = int.from_bytes(tcph[4:8], "big")
    flags = tcph[13]
    iph[10:12] = tcph[16:18] = b"\0\0"
    # every piece summed below starts at an even offset of its checksummed block, so the
    # pieces' integers add up modulo 0xFFFF (see ones_sum)
    pseudo = int.from_bytes(bytes(iph[12:20]), "big") + PROTO_TCP
    out = []
    count = max(1, -(-len(payload) // mss))
    for i in range(count):
        chunk = payload[i * mss:(i + 1) * mss]
        iph[2:4] = (ihl + thl + len(chunk)).to_bytes(2, "big")
        iph[4:6] = ((ident + i) & 0xFFFF).to_bytes(2, "big")
        iph[10:12] = b"\0\0"
        csum = ~(int.from_bytes(iph, "big") % 0xFFFF or 0xFFFF) & 0xFFFF   # never all zero
        iph[10:12] = csum.to_bytes(2, "big")
        tcph[4:8] = ((seq + i * mss) & 0xFFFFFFFF).to_bytes(4, "big")
        f = flags
        if i != count - 1:
            f &= ~(TCP_FIN | TCP_PSH)
        if i != 0:
            f &= ~TCP_CWR
        tcph[13] = f
        tcph[16:18] = b"\0\0"
        data = int.from_bytes(chunk, "big")
        if len(chunk) & 1:
            data <<= 8                     # the pad byte
        total = pseudo + thl + len(chunk) + int.from_bytes(tcph, "big") + data
        tcph[16:18] = (~(total % 0xFFFF or 0xFFFF) & 0xFFFF).to_bytes(2, "big")
        out.append(eth + iph + tcph + chunk)
    return out


def rx_checksum_status(frame):
    """For a received frame: (protocol, ip_ok, l4_ok) with protocol "tcp", "udp", "ip" (another
    IPv4 protocol or a fragment) or None (not IPv4); l4_ok is True where there is nothing to
    check (not TCP/UDP, a UDP datagram without checksum)."""
    try:
        ip, ihl, l4, length, proto = _ipv4(frame)
    except OffloadError:
        return None, True, True
    ip_ok = ones_sum(frame[ip:ip + ihl]) == 0xFFFF
    if (frame[ip + 6] & 0x3F) or frame[ip + 7] or proto not in (PROTO_TCP, PROTO_UDP):
        return "ip", ip_ok, True
    name = "tcp" if proto == PROTO_TCP else "udp"
    if proto == PROTO_UDP and length >= 8 and frame[l4 + 6] == 0 and frame[l4 + 7] == 0:
        return name, ip_ok, True
    # ones_sum(seg) is congruent to the segment's integer modulo 0xFFFF (see above)
    value = _pseudo_sum(frame, ip, proto, length) + ones_sum(frame[l4:l4 + length])
    return name, ip_ok, value % 0xFFFF == 0
