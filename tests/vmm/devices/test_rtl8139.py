"""RTL8139 on a board with the PCI bus, PIIX3 and 8259A: BIOS resource assignment, INTx
routing (level-triggered through the ELCR), the 93C46 EEPROM, transmit, the receive ring and
its wrap, and fail-stops."""
import io
import struct

import pytest
from lxml import etree

from v3tools.errors import ConfigError, Unimplemented
from vmm.clock import ManualClock
from vmm.config import DeviceSpec
from vmm.context import BoardContext
from vmm.devices.rtl8139 import RTL8139
from vmm.log import VMMLog

MAC = bytes.fromhex("525400abcdef")


def spec(xml):
    return DeviceSpec.from_element(etree.fromstring(xml))


@pytest.fixture
def board(nic_board):
    return nic_board(RTL8139)


def io_base(c, nic):
    return nic.cfg.bar(0)


def test_bios_places_bars_routes_intx_and_sets_elcr(board):
    c, nic, _ = board
    assert nic.cfg.read(0x08, 1) < 0x20                      # classic 8139, not C+
    assert nic.cfg.bar(0) >= 0xC000 and nic.cfg.read(0x10, 4) & 1
    assert 0xFEB00000 <= nic.cfg.bar(1) < 0xFEC00000
    irq = nic.cfg.read(0x3C, 1)
    assert irq in (10, 11)
    assert c.io.read(0x4D1, 1) & (1 << (irq - 8))            # level-triggered
    assert c.io.read(nic.cfg.bar(0) + 0x40, 4) & 0x7C800000 == 0x74000000
    assert c.mmio.read(nic.cfg.bar(1) + 0x40, 4) & 0x7C800000 == 0x74000000


def read_eeprom(c, base, location, addr_len):
    w = lambda v: c.io.write(base + 0x50, 1, v)
    cmd = location | (6 << addr_len)
    w(0x80)
    w(0x88)
    for i in range(4 + addr_len, -1, -1):
        d = 2 if cmd & (1 << i) else 0
        w(0x88 | d)
        w(0x88 | d | 4)
    w(0x88)
    value = 0
    for _ in range(16):
        w(0x8C)
        value = (value << 1) | (c.io.read(base + 0x50, 1) & 1)
        w(0x88)
    w(0)
    return value


def test_eeprom_holds_the_mac_as_8139too_reads_it(board):
    c, nic, _ = board
    base = io_base(c, nic)
    assert read_eeprom(c, base, 0, 8) != 0x8129                # a 93C46: 6 address bits
    assert read_eeprom(c, base, 0, 6) == 0x8129
    words = [read_eeprom(c, base, 7 + i, 6) for i in range(3)]
    assert b"".join(struct.pack("<H", w) for w in words) == MAC


def start(c, nic, ring=0x10000, wrap=True):
    base = io_base(c, nic)
    c.io.write(base + 0x37, 1, 0x10)                           # reset
    assert c.io.read(base + 0x37, 1) & 0x10 == 0
    c.io.write(base + 0x30, 4, ring)
    c.io.write(base + 0x37, 1, 0x0C)
    c.io.write(base + 0x44, 4, 0xE70A | (0x80 if wrap else 0))  # 8K ring, AB + APM
    c.io.write(base + 0x3C, 2, 0xC07F)
    return base


def test_transmit_raises_tok_and_the_level_interrupt_until_acknowledged(board):
    c, nic, loop = board
    base = start(c, nic)
    frame = bytes(range(60))
    c.mem.write(0x20000, frame)
    c.io.write(base + 0x20, 4, 0x20000)
    c.io.write(base + 0x10, 4, len(frame))
    assert loop.sent == [frame]
    assert c.io.read(base + 0x10, 4) & 0xA000 == 0xA000           # OWN | TOK
    irq = nic.cfg.read(0x3C, 1)
    pic = c.legacy_intc
    assert pic.slave.lines & (1 << (irq - 8))
    c.io.write(base + 0x3E, 2, 0x04)                              # acknowledge TOK
    assert not pic.slave.lines & (1 << (irq - 8))


def test_receive_ring_records_wrap_and_backpressure(board):
    c, nic, _ = board
    ring = 0x10000
    base = start(c, nic, ring)
    assert c.io.read(base + 0x37, 1) & 1                           # BUFE: empty
    frame = MAC + bytes(6) + b"\x08\x00" + bytes(1000)
    cur = 0
    delivered = 0
    for n in range(30):                                            # 8K ring: it must wrap
        nic.receive(frame)
        while not c.io.read(base + 0x37, 1) & 1:
            status, length = struct.unpack("<HH", c.mem.read(ring + cur % 8192, 4))
            assert status & 1 and length == len(frame) + 4
            data = c.mem.read(ring + cur % 8192 + 4, len(frame))
            assert data == frame
            delivered += 1
            cur = (cur + length + 4 + 3) & ~3
            c.io.write(base + 0x38, 2, (cur - 16) & 0xFFFF)
            c.io.write(base + 0x3E, 2, 0x01)
    assert delivered == 30 and cur > 8192
    # a full ring holds frames back instead of overwriting; freeing space lets them in
    for n in range(12):
        nic.receive(frame)
    assert nic.fifo
    got = 0
    while not c.io.read(base + 0x37, 1) & 1:
        _, length = struct.unpack("<HH", c.mem.read(ring + cur % 8192, 4))
        cur = (cur + length + 4 + 3) & ~3
        c.io.write(base + 0x38, 2, (cur - 16) & 0xFFFF)
        got += 1
    assert got == 12 and not nic.fifo


def test_frames_for_others_are_filtered(board):
    c, nic, _ = board
    base = start(c, nic)
    nic.receive(bytes.fromhex("020000000001") + bytes(54))
    assert c.io.read(base + 0x37, 1) & 1


def test_misprogramming_is_a_fail_stop_naming_the_register(board):
    c, nic, _ = board
    base = start(c, nic)
    c.io.write(base + 0x24, 4, 0xFFFFF000)
    with pytest.raises(Unimplemented, match="TSAD1"):
        c.io.write(base + 0x14, 4, 100)
    with pytest.raises(Unimplemented, match="offset 0xe0"):
        c.io.read(base + 0xE0, 1)


def test_mac_must_be_a_mac():
    c = BoardContext(clock=ManualClock(), log=VMMLog(stream=io.StringIO()))
    with pytest.raises(ConfigError, match="not a MAC"):
        RTL8139.from_spec(spec('<device class="RTL8139" id="n"><bus>pci0</bus>'
                               '<mac>52:54:00:zz:00:01</mac></device>'), c)


# -- C+ mode (<cplus>on</cplus>): what Linux's 8139cp uses ----------------------------------------
from tests.vmm.net.test_offload import (ipv4_frame, l4_checksum_ok, naive_sum,  # noqa: E402
                                        tcp_segment, udp_datagram)

OWN, EOR, FS, LS, LGSEN = 1 << 31, 1 << 30, 1 << 29, 1 << 28, 1 << 27
IPCS, UDPCS, TCPCS = 1 << 18, 1 << 17, 1 << 16
RX_RING, TX_RING = 0x30000, 0x31000


@pytest.fixture
def cboard(nic_board):
    return nic_board(RTL8139, options="<cplus>on</cplus>")


class Regs:
    """The card's registers through BAR1 (MMIO), as 8139cp reaches them."""

    def __init__(self, c, nic):
        self.c, self.base = c, nic.cfg.bar(1)

    def r(self, off, size):
        return self.c.mmio.read(self.base + off, size)

    def w(self, off, size, value):
        self.c.mmio.write(self.base + off, size, value)


def put_desc(c, ring, i, opts1, addr, opts2=0):
    c.mem.write(ring + 16 * i, struct.pack("<IIQ", opts1, opts2, addr))


def get_desc(c, ring, i):
    return struct.unpack("<IIQ", c.mem.read(ring + 16 * i, 16))


def cp_open(c, nic, rx_descs=4, buf_size=1536):
    """8139cp's probe and open: stop, reset, C+ command, rings, RE|TE, filter, interrupts."""
    r = Regs(c, nic)
    r.w(0x3C, 2, 0)
    r.w(0x37, 1, 0)
    r.w(0xE0, 2, 0)
    r.w(0x37, 1, 0x10)
    assert r.r(0x37, 1) & 0x10 == 0
    r.w(0xE0, 2, 0x003B)                        # PCIDAC PCIMulRW RxChkSum CpRxOn CpTxOn
    assert r.r(0xE0, 2) == 0x003B
    for i in range(rx_descs):
        put_desc(c, RX_RING, i, OWN | (EOR if i == rx_descs - 1 else 0) | buf_size,
                 0x40000 + 0x800 * i)
    r.w(0x28, 4, 0)
    r.w(0x2C, 4, 0)
    r.w(0xE4, 4, RX_RING)
    r.w(0xE8, 4, 0)
    assert r.r(0xE4, 4) == RX_RING
    r.w(0x20, 4, TX_RING)
    r.w(0x24, 4, 0)
    assert r.r(0x20, 4) == TX_RING
    r.w(0x37, 1, 0x0C)
    r.w(0xEC, 1, 0x06)
    r.w(0x44, 4, 0xA00A)                        # AB | APM
    r.w(0x3C, 2, 0x80FF)                        # cp_intr_mask
    return r


def test_cplus_is_an_8139c_plus(cboard, board):
    c, nic, _ = cboard
    assert nic.cfg.read(0x08, 1) == 0x20                      # 8139cp binds, 8139too refuses
    assert nic.cfg.read(0x00, 4) == 0x813910EC
    assert c.mmio.read(nic.cfg.bar(1) + 0x40, 4) & 0x7C800000 == 0x74800000
    assert board[1].cfg.read(0x08, 1) == 0x10                 # the default stays classic
    assert read_eeprom(c, nic.cfg.bar(0), 0, 6) == 0x8129


def test_cplus_transmit_single_descriptor_with_checksum_offload(cboard):
    c, nic, loop = cboard
    r = cp_open(c, nic)
    frame = ipv4_frame(17, udp_datagram(b"hello, checksum"))
    c.mem.write(0x50000, frame)
    put_desc(c, TX_RING, 0, OWN | FS | LS | IPCS | UDPCS | len(frame), 0x50000)
    r.w(0xD9, 1, 0x40)                                        # NormalTxPoll
    assert len(loop.sent) == 1
    sent = loop.sent[0]
    assert sent[:24] == frame[:24] and sent[34:40] == frame[34:40] and sent[42:] == frame[42:]
    assert naive_sum(sent[14:34]) == 0xFFFF and l4_checksum_ok(sent)
    opts1, _, _ = get_desc(c, TX_RING, 0)
    assert opts1 == FS | LS | len(frame)                     # handed back, no error bits
    assert r.r(0x3E, 2) & 0x04                                # TxOK
    assert r.r(0x82, 2) == TX_RING & 0xFFFF                   # TxDmaOkLowDesc
    # a second poll with nothing owned sends nothing
    r.w(0xD9, 1, 0x40)
    assert len(loop.sent) == 1


def test_cplus_scatter_gather_waits_for_the_whole_frame_and_wraps(cboard):
    c, nic, loop = cboard
    r = cp_open(c, nic)
    r.w(0x20, 4, TX_RING)                                     # rings of 4: EOR on 3
    frame = ipv4_frame(6, tcp_segment(bytes(range(256)) * 4))
    pieces = [frame[:54], frame[54:500], frame[500:]]
    for i in range(3):                                        # slots 0-2: one small frame first
        c.mem.write(0x50000 + 0x1000 * i, frame)
    small = ipv4_frame(17, udp_datagram(b"x" * 20))
    c.mem.write(0x58000, small)
    put_desc(c, TX_RING, 0, OWN | FS | LS | len(small), 0x58000)
    put_desc(c, TX_RING, 1, OWN | FS | IPCS | TCPCS | len(pieces[0]), 0x60000)
    put_desc(c, TX_RING, 2, OWN | IPCS | TCPCS | len(pieces[1]), 0x61000)
    put_desc(c, TX_RING, 3, EOR | IPCS | TCPCS | LS | len(pieces[2]), 0x62000)   # not yet owned
    for addr, p in zip((0x60000, 0x61000, 0x62000), pieces):
        c.mem.write(addr, p)
    r.w(0xD9, 1, 0x40)
    assert loop.sent == [small]                               # the split frame is incomplete
    assert get_desc(c, TX_RING, 1)[0] & OWN
    put_desc(c, TX_RING, 3, OWN | EOR | IPCS | TCPCS | LS | len(pieces[2]), 0x62000)
    r.w(0xD9, 1, 0x40)
    assert len(loop.sent) == 2
    sent = loop.sent[1]
    assert len(sent) == len(frame) and sent[54:] == frame[54:]
    assert naive_sum(sent[14:34]) == 0xFFFF and l4_checksum_ok(sent)
    assert get_desc(c, TX_RING, 3)[0] == EOR | LS | len(pieces[2])
    assert nic.stats["tx_gather"] == 1
    # after the RingEnd descriptor the card is back at slot 0
    put_desc(c, TX_RING, 0, OWN | FS | LS | len(small), 0x58000)
    r.w(0xD9, 1, 0x40)
    assert loop.sent[2] == small


def test_cplus_large_send_segments_the_frame(cboard):
    c, nic, loop = cboard
    r = cp_open(c, nic)
    payload = bytes(random_bytes(4000))
    frame = ipv4_frame(6, tcp_segment(payload, seq=5000, flags=0x19), ident=100)
    c.mem.write(0x50000, frame[:1000])
    c.mem.write(0x52000, frame[1000:])
    mss = 1448
    put_desc(c, TX_RING, 0, OWN | FS | LGSEN | (mss << 16) | 1000, 0x50000)
    put_desc(c, TX_RING, 1, OWN | LS | LGSEN | (mss << 16) | (len(frame) - 1000), 0x52000)
    r.w(0xD9, 1, 0x40)
    assert [len(s) - 54 for s in loop.sent] == [1448, 1448, 1104]
    for i, s in enumerate(loop.sent):
        assert struct.unpack(">H", s[18:20])[0] == 100 + i
        assert struct.unpack(">I", s[38:42])[0] == 5000 + mss * i
        assert (s[47] & 0x09 != 0) == (i == 2)                # FIN/PSH on the last only
        assert naive_sum(s[14:34]) == 0xFFFF and l4_checksum_ok(s)
    assert b"".join(s[54:] for s in loop.sent) == payload
    # MSS bits must not come back as error bits (8139cp reads TxError, bit 23)
    assert get_desc(c, TX_RING, 0)[0] == FS | 1000


def random_bytes(n):
    import random
    return random.Random(n).randbytes(n)


def rx_frame(n, proto="tcp", bad=False):
    payload = random_bytes(n)
    l4 = tcp_segment(payload) if proto == "tcp" else udp_datagram(payload)
    frame = bytearray(ipv4_frame(6 if proto == "tcp" else 17, l4,
                                 src="10.0.2.2", dst="10.0.2.15"))
    frame[0:6], frame[6:12] = MAC, bytes.fromhex("525500000202")
    from vmm.net.offload import checksum_offload
    checksum_offload(frame, True, proto)
    if bad:
        frame[-1] ^= 0xFF
    return bytes(frame)


def test_cplus_receive_into_descriptors_with_ring_end_wrap(cboard):
    c, nic, _ = cboard
    r = cp_open(c, nic, rx_descs=4)
    tail = 0
    for n in range(10):                                       # a ring of 4 wraps twice
        frame = rx_frame(100 + n, "tcp" if n % 2 else "udp", bad=(n == 5))
        nic.receive(frame)
        opts1, opts2, addr = get_desc(c, RX_RING, tail)
        assert not opts1 & OWN and opts1 & (FS | LS) == FS | LS
        assert opts1 & 0x1FFF == len(frame) + 4                 # with the CRC
        assert opts1 & (1 << 25)                              # PAM: our MAC
        assert bool(opts1 & EOR) == (tail == 3)
        proto = (opts1 >> 16) & 3
        assert proto == (1 if n % 2 else 2)                   # 8139cp: 1 TCP, 2 UDP
        assert bool(opts1 & (1 << 13)) == (n == 5)            # TCPFail on the damaged one
        assert not opts1 & ((1 << 14) | (1 << 15))
        assert c.mem.read(addr, len(frame)) == frame
        assert r.r(0x3E, 2) & 0x01                            # RxOK
        # the driver takes it and hands the descriptor back
        put_desc(c, RX_RING, tail, OWN | (EOR if tail == 3 else 0) | 1536, addr)
        r.w(0x3E, 2, 0x01)
        tail = (tail + 1) % 4
    assert nic.stats["rx"] == 10


def test_cplus_receive_waits_in_the_fifo_until_descriptors_come_back(cboard):
    c, nic, _ = cboard
    r = cp_open(c, nic, rx_descs=2)
    frames = [rx_frame(200 + n) for n in range(5)]
    for f in frames:
        nic.receive(f)
    assert len(nic.fifo) == 3                                 # two descriptors, three wait
    assert r.r(0x3E, 2) & 0x10                                # RxEmpty
    # 8139cp's poll: ack (ISR write), take both, give them back, unmask (IMR write)
    r.w(0x3C, 2, 0x80FF & ~0x53)
    r.w(0x3E, 2, 0x53)
    got = []
    for i in range(2):
        opts1, _, addr = get_desc(c, RX_RING, i)
        got.append(c.mem.read(addr, (opts1 & 0x1FFF) - 4))
        put_desc(c, RX_RING, i, OWN | (EOR if i == 1 else 0) | 1536, addr)
    assert len(nic.fifo) == 3                                 # no register write yet
    r.w(0x3C, 2, 0x80FF)
    assert len(nic.fifo) == 1
    for i in range(2):
        opts1, _, addr = get_desc(c, RX_RING, i)
        got.append(c.mem.read(addr, (opts1 & 0x1FFF) - 4))
        put_desc(c, RX_RING, i, OWN | (EOR if i == 1 else 0) | 1536, addr)
    r.w(0x3E, 2, 0x01)
    opts1, _, addr = get_desc(c, RX_RING, 0)
    got.append(c.mem.read(addr, (opts1 & 0x1FFF) - 4))
    assert got == frames and not nic.fifo


def test_cplus_interrupt_level_follows_isr_and_imr(cboard):
    c, nic, _ = cboard
    r = cp_open(c, nic)
    irq = nic.cfg.read(0x3C, 1)
    pic = c.legacy_intc
    assert not pic.slave.lines & (1 << (irq - 8))
    r.w(0xD9, 1, 0x01)                                        # FSWInt: SWInt, masked
    assert r.r(0x3E, 2) & 0x100 and not pic.slave.lines & (1 << (irq - 8))
    r.w(0x3C, 2, 0x81FF)                                      # unmasked
    assert r.r(0x3E, 2) & 0x100 and pic.slave.lines & (1 << (irq - 8))
    r.w(0x3E, 2, r.r(0x3E, 2))
    assert not pic.slave.lines & (1 << (irq - 8))


def test_cplus_misprogramming_is_a_fail_stop_naming_the_descriptor(cboard):
    c, nic, _ = cboard
    r = cp_open(c, nic)
    put_desc(c, TX_RING, 0, OWN | FS | LS | 100, 0xFFFFF000)
    with pytest.raises(Unimplemented, match="TxRingAddr descriptor 0 buffer"):
        r.w(0xD9, 1, 0x40)
    r.w(0x20, 4, 0xFFFF0000)
    r.w(0x24, 4, 0x7)
    with pytest.raises(Unimplemented, match="TxRingAddr descriptor 0: 0x7fff"):
        r.w(0xD9, 1, 0x40)
    r.w(0xE4, 4, 0xFFFFFFF0)
    with pytest.raises(Unimplemented, match="RxRingAddr descriptor 0"):
        nic.receive(rx_frame(100))
    r.w(0x20, 4, TX_RING)
    r.w(0x24, 4, 0)
    udp = ipv4_frame(17, udp_datagram(b"x" * 3000))
    c.mem.write(0x50000, udp)
    put_desc(c, TX_RING, 0, OWN | FS | LS | LGSEN | (1400 << 16) | len(udp), 0x50000)
    with pytest.raises(Unimplemented, match="descriptor 0: large send.*protocol 17"):
        r.w(0xD9, 1, 0x40)
    with pytest.raises(Unimplemented, match="StatsAddr"):
        r.w(0x10, 4, 0x8 | 0x1000)
    with pytest.raises(Unimplemented, match="offset 0xf0"):
        r.r(0xF0, 4)


@pytest.mark.parametrize("value", ["maybe", ""])
def test_cplus_option_must_be_on_or_off(value):
    c = BoardContext(clock=ManualClock(), log=VMMLog(stream=io.StringIO()))
    with pytest.raises(ConfigError, match="<cplus> must be on or off") as e:
        RTL8139.from_spec(spec(f'<device class="RTL8139" id="n"><bus>pci0</bus>'
                               f'<cplus>{value}</cplus></device>'), c)
    assert "\n" not in str(e.value)


def test_cplus_card_with_c_plus_mode_off_works_as_the_classic_chip(cboard):
    c, nic, loop = cboard
    base = start(c, nic)                                      # CpCmd stays 0
    frame = bytes(range(60))
    c.mem.write(0x20000, frame)
    c.io.write(base + 0x20, 4, 0x20000)
    c.io.write(base + 0x10, 4, len(frame))
    assert loop.sent == [frame] and c.io.read(base + 0x3E, 2) & 0x04
    nic.receive(MAC + bytes(6) + b"\x08\x00" + bytes(100))
    status, length = struct.unpack("<HH", c.mem.read(0x10000, 4))
    assert status & 1 and length == 118


def test_cplus_receive_spreads_a_long_frame_over_small_buffers(cboard):
    c, nic, _ = cboard
    cp_open(c, nic, rx_descs=4, buf_size=256)
    frame = rx_frame(560)                                     # 614 bytes + CRC: 3 buffers
    nic.receive(frame)
    descs = [get_desc(c, RX_RING, i) for i in range(4)]
    assert [d[0] & (OWN | FS | LS) for d in descs] == [FS, 0, LS, OWN]
    assert [d[0] & 0x1FFF for d in descs[:3]] == [256, 256, len(frame) + 4]
    data = b"".join(c.mem.read(d[2], 256) for d in descs[:3])
    assert data[:len(frame)] == frame


def test_cplus_frame_without_last_frag_round_the_ring_is_a_fail_stop(cboard):
    c, nic, _ = cboard
    r = cp_open(c, nic)
    for i in range(4):
        put_desc(c, TX_RING, i, OWN | (FS if i == 0 else 0) | (EOR if i == 3 else 0) | 60,
                 0x50000)                                     # no LastFrag anywhere
    with pytest.raises(Unimplemented, match="descriptor 0: FirstFrag inside a frame"):
        r.w(0xD9, 1, 0x40)


# -- C+ mode: errors, long frames, ring restarts, interrupt bits ----------------------------------
TES, RES, RWT = 1 << 23, 1 << 20, 1 << 21
RX_OK, RX_ERR, TX_OK, TX_ERR = 0x01, 0x02, 0x04, 0x08
RX_EMPTY, RX_FIFO_OVR, TX_EMPTY, SW_INT = 0x10, 0x40, 0x80, 0x100


def irq_up(c, nic):
    irq = nic.cfg.read(0x3C, 1)
    return bool(c.legacy_intc.slave.lines & (1 << (irq - 8)))


def test_cplus_frame_the_chip_cannot_send_is_handed_back_with_tes_and_txerr(cboard):
    c, nic, loop = cboard
    r = cp_open(c, nic)
    big = bytes(MAC) + bytes(6) + b"\x08\x00" + bytes(4097 - 14)    # one byte over 4096
    c.mem.write(0x50000, big[:2000])
    c.mem.write(0x52000, big[2000:])
    put_desc(c, TX_RING, 0, OWN | FS | 2000, 0x50000)
    put_desc(c, TX_RING, 1, OWN | LS | (len(big) - 2000), 0x52000)
    put_desc(c, TX_RING, 2, OWN | FS | LS | 0, 0x50000)                 # an empty frame
    r.w(0x3E, 2, 0xFFFF)
    r.w(0xD9, 1, 0x40)
    assert loop.sent == []
    assert get_desc(c, TX_RING, 0)[0] == FS | 2000                      # handed back
    assert get_desc(c, TX_RING, 1)[0] == LS | TES | (len(big) - 2000)   # TES on LastFrag
    assert get_desc(c, TX_RING, 2)[0] == FS | LS | TES
    isr = r.r(0x3E, 2)
    assert isr & TX_ERR and not isr & TX_OK and isr & TX_EMPTY
    assert irq_up(c, nic) and nic.stats["tx_errors"] == 2
    # the next frame, of the longest length the chip sends, goes out: TxOK, no error bits
    r.w(0x3E, 2, 0xFFFF)
    ok = big[:4096]
    c.mem.write(0x50000, ok)
    put_desc(c, TX_RING, 3, OWN | EOR | FS | LS | len(ok), 0x50000)
    r.w(0xD9, 1, 0x40)
    assert loop.sent == [ok] and get_desc(c, TX_RING, 3)[0] == EOR | FS | LS | len(ok)
    isr = r.r(0x3E, 2)
    assert isr & TX_OK and not isr & TX_ERR


def test_cplus_poll_finding_no_owned_descriptor_raises_tx_empty_not_tx_ok(cboard):
    c, nic, loop = cboard
    r = cp_open(c, nic)
    r.w(0x3E, 2, 0xFFFF)
    r.w(0xD9, 1, 0x40)                                        # nothing handed over
    isr = r.r(0x3E, 2)
    assert isr & TX_EMPTY and not isr & (TX_OK | TX_ERR) and loop.sent == []
    # after a frame went out and was acknowledged, an empty poll again raises no TxOK
    frame = ipv4_frame(17, udp_datagram(b"once"))
    c.mem.write(0x50000, frame)
    put_desc(c, TX_RING, 0, OWN | FS | LS | len(frame), 0x50000)
    r.w(0xD9, 1, 0x40)
    assert r.r(0x3E, 2) & TX_OK
    r.w(0x3E, 2, 0xFFFF)
    r.w(0xD9, 1, 0x40)
    assert not r.r(0x3E, 2) & TX_OK and len(loop.sent) == 1


def test_cplus_long_packet_is_a_receive_error(cboard):
    c, nic, _ = cboard
    r = cp_open(c, nic, rx_descs=4)
    frame = rx_frame(4100)                                    # 4154 bytes: over 4096
    r.w(0x3E, 2, 0xFFFF)
    nic.receive(frame)                                        # RCR without AcceptErr: dropped
    isr = r.r(0x3E, 2)
    assert isr & RX_ERR and not isr & RX_OK and irq_up(c, nic)
    assert get_desc(c, RX_RING, 0)[0] & OWN and nic.stats["rx_errors"] == 1
    r.w(0x3E, 2, 0xFFFF)
    r.w(0x44, 4, 0xA00A | 0x20)                               # AcceptErr: stored, RES|RWT
    nic.receive(frame)
    descs = [get_desc(c, RX_RING, i) for i in range(4)]
    assert [d[0] & (OWN | FS | LS) for d in descs] == [FS, 0, LS, OWN]
    assert all(d[0] & (RES | RWT) == RES | RWT for d in descs[:3])
    assert descs[2][0] & 0x1FFF == len(frame) + 4
    assert b"".join(c.mem.read(d[2], 1536) for d in descs[:3])[:len(frame)] == frame
    isr = r.r(0x3E, 2)
    assert isr & RX_ERR and not isr & RX_OK


def test_cplus_frame_longer_than_the_whole_ring_is_a_fail_stop_not_an_overwrite(cboard):
    c, nic, _ = cboard
    cp_open(c, nic, rx_descs=2, buf_size=256)
    frame = rx_frame(560)                                     # 618 bytes with CRC > 2 x 256
    with pytest.raises(Unimplemented, match="RxRingAddr: a 618-byte frame"):
        nic.receive(frame)
    assert all(get_desc(c, RX_RING, i)[0] & OWN for i in range(2))     # nothing written


def test_cplus_fifo_overflow_raises_rx_fifo_ovr(cboard, board):
    c, nic, _ = cboard
    r = cp_open(c, nic, rx_descs=1)
    frame = rx_frame(100)
    for _ in range(1 + 512):                                  # one in the ring, 512 waiting
        nic.receive(frame)
    assert r.r(0x3E, 2) & RX_EMPTY and not r.r(0x3E, 2) & RX_FIFO_OVR
    nic.receive(frame)                                        # lost
    assert r.r(0x3E, 2) & RX_FIFO_OVR and r.r(0x4C, 4) == 1
    # the classic chip reports the same loss as RxOverflow (bit 4), as before
    c2, nic2, _ = board
    base = start(c2, nic2)
    nic2.receive(MAC + bytes(6) + b"\x08\x00" + bytes(7000))  # too long: dropped
    big = MAC + bytes(6) + b"\x08\x00" + bytes(1400)
    for _ in range(5 + 512 + 1):
        nic2.receive(big)
    assert c2.io.read(base + 0x3E, 2) & 0x10 and not c2.io.read(base + 0x3E, 2) & 0x40


def test_cplus_receives_frames_longer_than_1514_and_strips_their_vlan_tag(cboard):
    c, nic, _ = cboard
    r = cp_open(c, nic, rx_descs=4)
    plain = rx_frame(1460)                                    # 1514 bytes
    tagged = plain[:12] + b"\x81\x00\x20\x05" + plain[12:]    # 1518: VLAN 5, priority 1
    nic.receive(tagged)                                       # RxVlanOn clear: kept
    opts1, opts2, addr = get_desc(c, RX_RING, 0)
    assert opts1 & (OWN | FS | LS) == FS | LS and opts1 & 0x1FFF == 1518 + 4
    assert c.mem.read(addr, 1518) == tagged and not opts2 & (1 << 16)
    r.w(0xE0, 2, 0x007B)                                      # RxVlanOn
    nic.receive(tagged)
    opts1, opts2, addr = get_desc(c, RX_RING, 1)
    assert opts1 & (OWN | FS | LS) == FS | LS and opts1 & 0x1FFF == 1514 + 4
    assert c.mem.read(addr, 1514) == plain
    assert opts2 == (1 << 16) | 0x0520                        # the tag, byte-swapped
    assert opts1 & (3 << 16) == 1 << 16                       # TCP, checksummed untagged
    assert nic.stats["rx"] == 2 and nic.stats["rx_dropped"] == 0
    # with C+ receive off, the classic path still drops them
    r.w(0xE0, 2, 0x0001)
    before = nic.stats["rx_dropped"]
    nic.receive(tagged)
    assert nic.stats["rx_dropped"] == before + 1


def tx_one(c, r, slot, eor=False):
    frame = ipv4_frame(17, udp_datagram(bytes([slot]) * 8))
    c.mem.write(0x50000 + 0x100 * slot, frame)
    put_desc(c, TX_RING, slot, OWN | FS | LS | (EOR if eor else 0) | len(frame),
             0x50000 + 0x100 * slot)
    r.w(0xD9, 1, 0x40)
    return frame


def test_cplus_ring_indices_restart_after_8139cp_stop_and_start(cboard):
    c, nic, loop = cboard
    r = cp_open(c, nic, rx_descs=4)
    for slot in range(2):                                     # the card at TX 2, RX 2
        tx_one(c, r, slot)
        nic.receive(rx_frame(100))
    # cp_tx_timeout: cp_stop_hw, the rings rebuilt from slot 0, cp_start_hw
    r.w(0x3E, 2, ~r.r(0x3E, 2) & 0xFFFF)
    r.w(0x3C, 2, 0)
    r.w(0x37, 1, 0)
    r.w(0xE0, 2, 0)
    for i in range(4):
        put_desc(c, RX_RING, i, OWN | (EOR if i == 3 else 0) | 1536, 0x40000 + 0x800 * i)
        put_desc(c, TX_RING, i, EOR if i == 3 else 0, 0)
    r.w(0xE0, 2, 0x003B)
    r.w(0x28, 4, 0)
    r.w(0x2C, 4, 0)
    r.w(0xE4, 4, RX_RING)
    r.w(0xE8, 4, 0)
    r.w(0x20, 4, TX_RING)
    r.w(0x24, 4, 0)
    r.w(0x37, 1, 0x0C)
    r.w(0x3C, 2, 0x80FF)
    sent = tx_one(c, r, 0)
    assert loop.sent[-1] == sent and not get_desc(c, TX_RING, 0)[0] & OWN
    nic.receive(rx_frame(120))
    assert not get_desc(c, RX_RING, 0)[0] & OWN and get_desc(c, RX_RING, 2)[0] & OWN


def test_cplus_enabling_the_engines_restarts_the_rings_without_new_addresses(cboard):
    c, nic, loop = cboard
    r = cp_open(c, nic, rx_descs=4)
    for slot in range(2):
        tx_one(c, r, slot)
        nic.receive(rx_frame(100))
    # feature changes rewrite CpCmd with the engines on: no restart
    r.w(0xE0, 2, 0x001B)                                      # RxChkSum off
    r.w(0xE0, 2, 0x003B)
    tx_one(c, r, 2)
    assert not get_desc(c, TX_RING, 2)[0] & OWN
    # CpCmd off and on, CR off and on, the ring addresses not written again: slot 0
    for i in range(4):
        put_desc(c, RX_RING, i, OWN | (EOR if i == 3 else 0) | 1536, 0x40000 + 0x800 * i)
    r.w(0x37, 1, 0)
    r.w(0xE0, 2, 0)
    r.w(0xE0, 2, 0x003B)
    r.w(0x37, 1, 0x0C)
    n = len(loop.sent)
    tx_one(c, r, 0)
    assert len(loop.sent) == n + 1 and not get_desc(c, TX_RING, 0)[0] & OWN
    nic.receive(rx_frame(120))
    assert not get_desc(c, RX_RING, 0)[0] & OWN and get_desc(c, RX_RING, 2)[0] & OWN
    # CR alone (the C+ engines left on) restarts them too
    tx_one(c, r, 1)
    nic.receive(rx_frame(120))
    r.w(0x37, 1, 0)
    r.w(0x37, 1, 0x0C)
    for i in range(4):
        put_desc(c, RX_RING, i, OWN | (EOR if i == 3 else 0) | 1536, 0x40000 + 0x800 * i)
    n = len(loop.sent)
    tx_one(c, r, 0)
    assert len(loop.sent) == n + 1
    nic.receive(rx_frame(120))
    assert not get_desc(c, RX_RING, 0)[0] & OWN and get_desc(c, RX_RING, 1)[0] & OWN


def test_cplus_interrupt_bits_with_c_plus_mode_off(cboard, board):
    c, nic, loop = cboard
    base = start(c, nic)                                      # CpCmd 0: classic operation
    c.io.write(base + 0x3C, 2, 0x81FF)
    assert c.io.read(base + 0x3C, 2) == 0x81FF                # one register: the bits stay
    c.io.write(base + 0xD9, 1, 0x41)                          # FSWInt, NPQ: C+ sources only
    assert not c.io.read(base + 0x3E, 2) & (SW_INT | TX_EMPTY) and not irq_up(c, nic)
    c.io.write(base + 0xE0, 2, 0x0001)                        # C+ transmit on: SWInt works
    c.io.write(base + 0xD9, 1, 0x01)
    assert c.io.read(base + 0x3E, 2) & SW_INT and irq_up(c, nic)
    # the classic 8139C has no such bits
    c2, nic2, _ = board
    base2 = start(c2, nic2)
    c2.io.write(base2 + 0x3C, 2, 0x81FF)
    assert c2.io.read(base2 + 0x3C, 2) == 0x807F
