"""The transmit offloads of vmm/net/offload.py against a straightforward, independent
implementation: the word-by-word Internet checksum, IPv4/TCP/UDP checksums, TSO."""
import random
import struct

import pytest

from vmm.net.offload import (OffloadError, checksum_offload, internet_checksum, ones_sum,
                             rx_checksum_status, tso_segments)


def naive_sum(data):
    data = bytes(data) + (b"\0" if len(data) % 2 else b"")
    s = 0
    for i in range(0, len(data), 2):
        s += (data[i] << 8) | data[i + 1]
        s = (s & 0xFFFF) + (s >> 16)
    return s


def naive_checksum(data):
    return ~naive_sum(data) & 0xFFFF


def ipv4_frame(proto, l4, src="10.0.2.15", dst="10.0.2.2", ident=0x1234, flags=0x4000):
    ip = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(l4), ident, flags, 64, proto, 0,
                     bytes(map(int, src.split("."))), bytes(map(int, dst.split("."))))
    return b"\x52\x55\x0a\x00\x02\x02\x52\x54\x00\xab\xcd\xef\x08\x00" + ip + l4


def tcp_segment(payload, seq=1000, ack=2000, flags=0x18, window=0xFFFF):
    return struct.pack(">HHIIBBHHH", 80, 40000, seq, ack, 5 << 4, flags, window, 0, 0) + payload


def udp_datagram(payload):
    return struct.pack(">HHHH", 68, 67, 8 + len(payload), 0) + payload


def l4_checksum_ok(frame):
    """Independent check: the pseudo-header plus the segment sums to 0xFFFF."""
    ip = frame[14:34]
    total = struct.unpack(">H", ip[2:4])[0]
    seg = frame[34:14 + total]
    pseudo = ip[12:20] + bytes((0, ip[9])) + struct.pack(">H", len(seg))
    return naive_sum(pseudo + seg) == 0xFFFF


def test_fast_sum_is_the_ones_complement_sum():
    rng = random.Random(5)
    cases = [b"", b"\0", b"\0" * 64, b"\xff\xff", b"\xff" * 63, b"\x12\x34\xed\xcb"]
    cases += [rng.randbytes(rng.randrange(1, 3000)) for _ in range(300)]
    for data in cases:
        assert ones_sum(data) == naive_sum(data), data[:16]
        assert internet_checksum(data) == naive_checksum(data)


def test_ip_tcp_udp_checksums_match_an_independent_computation():
    rng = random.Random(6)
    for n in (0, 1, 7, 100, 1459):
        frame = bytearray(ipv4_frame(6, tcp_segment(rng.randbytes(n))))
        checksum_offload(frame, True, "tcp")
        assert naive_sum(frame[14:34]) == 0xFFFF and l4_checksum_ok(frame)
        frame = bytearray(ipv4_frame(17, udp_datagram(rng.randbytes(n))))
        checksum_offload(frame, True, "udp")
        assert naive_sum(frame[14:34]) == 0xFFFF and l4_checksum_ok(frame)
        assert frame[40:42] != b"\0\0"
        assert rx_checksum_status(bytes(frame)) == ("udp", True, True)
    frame = bytearray(ipv4_frame(6, tcp_segment(b"abc")))
    checksum_offload(frame, True, "tcp")
    assert rx_checksum_status(bytes(frame)) == ("tcp", True, True)
    frame[-1] ^= 1
    assert rx_checksum_status(bytes(frame)) == ("tcp", True, False)
    frame[24] ^= 1                                 # the IP header's TTL
    assert rx_checksum_status(bytes(frame))[1] is False
    assert rx_checksum_status(b"\xff" * 60) == (None, True, True)


def test_tso_cuts_mss_segments_with_ids_sequence_flags_and_checksums():
    payload = random.Random(7).randbytes(5000)
    seq = 0xFFFFF000                               # the sequence number wraps on the way
    frame = ipv4_frame(6, tcp_segment(payload, seq=seq, flags=0x80 | 0x18 | 0x01),
                       ident=0xFFFE)
    segs = tso_segments(frame, 1460)
    assert [len(s) - 54 for s in segs] == [1460, 1460, 1460, 620]
    got = b""
    for i, s in enumerate(segs):
        ip_total, ident = struct.unpack(">HH", s[16:20])
        assert ip_total == len(s) - 14
        assert ident == (0xFFFE + i) & 0xFFFF
        assert struct.unpack(">I", s[38:42])[0] == (seq + 1460 * i) & 0xFFFFFFFF
        flags = s[47]
        last, first = i == len(segs) - 1, i == 0
        assert bool(flags & 0x01) == last and bool(flags & 0x08) == last   # FIN, PSH
        assert bool(flags & 0x80) == first                                  # CWR
        assert flags & 0x10                                                  # ACK on all
        assert naive_sum(s[14:34]) == 0xFFFF and l4_checksum_ok(s)
        got += s[54:]
    assert got == payload


def test_offload_refuses_what_it_cannot_do():
    with pytest.raises(OffloadError, match="not IPv4"):
        checksum_offload(bytearray(b"\xff" * 12 + b"\x86\xdd" + bytes(60)), True, None)
    with pytest.raises(OffloadError, match="protocol 17"):
        tso_segments(ipv4_frame(17, udp_datagram(b"x" * 3000)), 1460)
    with pytest.raises(OffloadError, match="TCP checksum asked"):
        checksum_offload(bytearray(ipv4_frame(17, udp_datagram(b"x"))), True, "tcp")


def test_c_arithmetic_gives_what_the_python_gives(require_built):
    """vmm/net/_offload.c against the Python it replaces: sums of random data, and TSO of
    random TCP/IPv4 frames (IP options, TCP options, odd payloads, any MSS, flags, wraps)."""
    from vmm.net import offload
    require_built(offload._offload is not None, "the offload helper (vmm/net/_offload.c)")
    c = offload._offload
    rng = random.Random(11)
    for data in [b"", b"\0", b"\0\0", b"\xff\xff", b"\xff\xff\0\0"] + \
            [rng.randbytes(rng.randrange(0, 2000)) for _ in range(500)]:
        assert c.ones_sum(data) == offload._ones_sum(data), data[:16]
        assert c.ones_sum(bytearray(data)) == c.ones_sum(memoryview(data))
    for _ in range(400):
        ip_opts = rng.randbytes(4 * rng.randrange(0, 3))
        tcp_opts = rng.randbytes(4 * rng.randrange(0, 3))
        payload = rng.randbytes(rng.choice([0, 1, 7, 100, 1459, 1460, 2921, 5000, 9001]))
        seq = rng.choice([0, 1000, 0xFFFFFFFF - rng.randrange(10000)])
        flags = rng.randrange(256)
        tcp = struct.pack(">HHIIBBHHH", 80, 40000, seq, 1, (5 + len(tcp_opts) // 4) << 4, flags,
                          0xFFFF, rng.randrange(65536), 0) + tcp_opts + payload
        ihl = 20 + len(ip_opts)
        ip = struct.pack(">BBHHHBBH4s4s", 0x40 | ihl // 4, 0, ihl + len(tcp),
                         rng.randrange(65536), 0x4000, 64, 6, rng.randrange(65536),
                         rng.randbytes(4), rng.randbytes(4)) + ip_opts
        frame = rng.randbytes(12) + b"\x08\x00" + ip + tcp + rng.randbytes(rng.randrange(3))
        mss = rng.choice([1, 8, 536, 1000, 1460, 8960])
        ip_off, ihl2, l4, length, _ = offload._ipv4(frame)
        thl = (frame[l4 + 12] >> 4) * 4
        want = offload._tso_segments(frame, mss, ip_off, ihl2, l4, length, thl)
        got = c.tso(frame, ip_off, l4, thl, length, mss)
        assert got == want
        assert offload.tso_segments(bytearray(frame), mss) == want


def test_rx_checksum_status_on_odd_and_even_segments():
    rng = random.Random(12)
    for n in list(range(0, 9)) + [99, 100, 1459, 1460]:
        frame = bytearray(ipv4_frame(6, tcp_segment(rng.randbytes(n))))
        checksum_offload(frame, True, "tcp")
        assert rx_checksum_status(bytes(frame)) == ("tcp", True, True), n
        frame[-1 if n else 40] ^= 0x40
        assert rx_checksum_status(bytes(frame)) == ("tcp", True, False), n
