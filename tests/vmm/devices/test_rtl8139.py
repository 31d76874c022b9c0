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
