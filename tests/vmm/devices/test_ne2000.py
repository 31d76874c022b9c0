"""NE2000 (RTL8029) on a board with PCI, PIIX3 and 8259A: PROM through remote DMA as ne2k-pci
reads it, transmit, the receive ring and its wrap, CR semantics and fail-stops."""
import struct

import pytest
from lxml import etree

from v3tools.errors import Unimplemented
from vmm.config import DeviceSpec
from vmm.devices.ne2000 import NE2000

MAC = bytes.fromhex("525400abcdef")


def spec(xml):
    return DeviceSpec.from_element(etree.fromstring(xml))


@pytest.fixture
def board(nic_board):
    c, nic, loop = nic_board(NE2000, memory=1 << 20)
    return c, nic, nic.cfg.bar(0), loop


def init(c, b, start=0x4C, stop=0x80):
    o = lambda reg, v: c.io.write(b + reg, 1, v)
    o(0, 0x21)                    # stop, no DMA, page 0
    o(0x0E, 0x49)                 # word mode
    o(0x0C, 0x0C)                 # broadcast + multicast
    o(0x04, 0x40)
    o(0x01, start)
    o(0x03, stop - 1)
    o(0x02, stop)
    o(0x07, 0xFF)
    o(0x0F, 0x3F)
    o(0, 0x61)                    # page 1
    for i, byte in enumerate(MAC):
        o(1 + i, byte)
    o(0x07, start)
    o(0, 0x22)                    # start, page 0


def dma_read(c, b, addr, count):
    o = lambda reg, v: c.io.write(b + reg, 1, v)
    o(0x0A, count & 0xFF)
    o(0x0B, count >> 8)
    o(0x08, addr & 0xFF)
    o(0x09, addr >> 8)
    o(0, 0x0A)                    # remote read, start
    data = b"".join(struct.pack("<I", c.io.read(b + 0x10, 4)) for _ in range(count // 4))
    assert c.io.read(b + 0x07, 1) & 0x40            # RDC
    c.io.write(b + 0x07, 1, 0x40)
    return data


def test_reset_port_and_prom_as_ne2k_pci_reads_them(board):
    c, nic, b, _ = board
    c.io.write(b + 0x1F, 1, c.io.read(b + 0x1F, 1))
    assert c.io.read(b + 0x07, 1) & 0x80            # ISR.RST
    c.io.write(b + 0x0E, 1, 0x49)
    c.io.write(b + 0x0A, 1, 32)
    c.io.write(b + 0x0B, 1, 0)
    c.io.write(b + 0x08, 1, 0)
    c.io.write(b + 0x09, 1, 0)
    c.io.write(b, 1, 0x0A)
    prom = bytes(c.io.read(b + 0x10, 1) for _ in range(16))   # word mode: a byte moves two
    assert prom[:6] == MAC and prom[14:16] == b"\x57\x57"
    assert nic.cfg.read(0x3C, 1) in (10, 11)


def test_transmit_through_remote_dma(board):
    c, nic, b, loop = board
    init(c, b)
    frame = bytes(range(64))
    o = lambda reg, v: c.io.write(b + reg, 1, v)
    o(0x0A, 64), o(0x0B, 0), o(0x08, 0), o(0x09, 0x40), o(0, 0x12)
    for i in range(0, 64, 4):
        c.io.write(b + 0x10, 4, int.from_bytes(frame[i:i + 4], "little"))
    assert c.io.read(b + 0x07, 1) & 0x40
    o(0x04, 0x40), o(0x05, 64), o(0x06, 0), o(0, 0x26)
    assert loop.sent == [frame]
    assert c.io.read(b + 0x07, 1) & 0x02 and c.io.read(b + 0x04, 1) & 1
    assert not c.io.read(b, 1) & 0x04                # TXP clear: done
    o(0, 0x20)                                       # neither STA nor STP: still running
    assert c.io.read(b, 1) & 0x02


def test_receive_ring_wraps_and_holds_frames_until_bnry_moves(board):
    c, nic, b, _ = board
    init(c, b, 0x4C, 0x58)                           # a 12-page ring
    frame = MAC + bytes(6) + b"\x08\x00" + bytes(586)    # 600 bytes: 3 pages each
    bnry, got = 0x57, 0
    for n in range(10):
        nic.receive(frame)
        while True:
            c.io.write(b, 1, 0x62)
            curr = c.io.read(b + 0x07, 1)
            c.io.write(b, 1, 0x22)
            this = bnry + 1 if bnry + 1 < 0x58 else 0x4C
            if this == curr:
                break
            hdr = dma_read(c, b, this << 8, 4)
            status, nxt, count = hdr[0], hdr[1], hdr[2] | hdr[3] << 8
            assert status & 1 and count == len(frame) + 4
            got += 1
            bnry = nxt - 1 if nxt > 0x4C else 0x57
            c.io.write(b + 0x03, 1, bnry)
    assert got == 10
    for n in range(6):                               # 18 pages wanted, 11 free
        nic.receive(frame)
    assert len(nic.fifo) == 3


def test_page_two_is_a_fail_stop(board):
    c, nic, b, _ = board
    c.io.write(b, 1, 0xA1)
    with pytest.raises(Unimplemented, match="page-2"):
        c.io.read(b + 0x01, 1)


def dma_setup(c, b, addr, count, cmd):
    o = lambda reg, v: c.io.write(b + reg, 1, v)
    o(0x0A, count & 0xFF), o(0x0B, count >> 8), o(0x08, addr & 0xFF), o(0x09, addr >> 8)
    o(0, cmd)


@pytest.mark.parametrize("addr", [0x4C00, 0x57F0])       # inside the ring; across PSTOP
def test_data_port_blocks_match_element_reads(board, addr):
    """The block port (REP INSD/OUTSD in one exit) moves what element accesses would."""
    c, nic, b, _ = board
    init(c, b, 0x4C, 0x58)
    nic.mem[0x4C00:0x5800] = bytes(range(256)) * 12
    read_block = c.io.find(b + 0x10).blocks[0x10][0]
    ref = dma_read(c, b, addr, 64)
    dma_setup(c, b, addr, 64, 0x0A)
    assert read_block(4, 16) == ref
    assert c.io.read(b + 0x07, 1) & 0x40            # RDC at the end of the count
    assert (nic.rsar, nic.rbcr) == ((addr + 64 - 0x5800 + 0x4C00) if addr > 0x5700
                                    else addr + 64, 0)
    write_block = c.io.find(b + 0x10).blocks[0x10][1]
    dma_setup(c, b, 0x4000, 64, 0x12)
    write_block(4, bytes(range(64)))
    assert nic.mem[0x4000:0x4040] == bytes(range(64)) and c.io.read(b + 0x07, 1) & 0x40
