"""ATAPI CD-ROM packet commands through the IDE ports (vmm/devices/atapi.py)."""
import random
import struct

import pytest

from v3tools.errors import Unimplemented
from vmm.clock import ManualClock
from vmm.context import BoardContext
from vmm.devices.ide import IDE
from vmm.media import BytesMedium

SEC, SEC_CTL = 0x170, 0x376
DRQ, ERR = 0x08, 0x01
CD_SECTORS = 40


def make_board():
    ctx = BoardContext(clock=ManualClock())
    ide = ctx.add_device(IDE("ide"))
    image = random.Random(7).randbytes(CD_SECTORS * 2048)
    ide.connect(1, 0, "cdrom", BytesMedium(image, 2048, writable=False), "V3Vee CDROM")
    return ctx, image


def outb(ctx, port, value):
    ctx.io.write(port, 1, value)


def inb(ctx, port):
    return ctx.io.read(port, 1)


def irq(ctx):
    return ctx.irq(15).level


def packet(ctx, cdb, limit=0xFFFE):
    """Run one packet command. Returns (data, [(interrupt reason, byte count) per DRQ block],
    final status, final interrupt reason)."""
    cdb = bytes(cdb).ljust(12, b"\0")
    outb(ctx, SEC + 6, 0xA0)
    outb(ctx, SEC + 1, 0)
    outb(ctx, SEC + 4, limit & 0xFF)
    outb(ctx, SEC + 5, limit >> 8)
    outb(ctx, SEC + 7, 0xA0)
    assert irq(ctx) == 0                                   # no interrupt before the packet
    assert inb(ctx, SEC + 7) & (DRQ | ERR) == DRQ
    assert inb(ctx, SEC + 2) & 0x03 == 0x01                # CoD: the packet is wanted
    for i in range(0, 12, 2):
        ctx.io.write(SEC, 2, cdb[i] | cdb[i + 1] << 8)
    data, blocks = b"", []
    while True:
        assert irq(ctx) == 1
        status = inb(ctx, SEC + 7)
        assert irq(ctx) == 0
        if not status & DRQ:
            return data, blocks, status, inb(ctx, SEC + 2) & 0x03
        n = inb(ctx, SEC + 4) | inb(ctx, SEC + 5) << 8
        blocks.append((inb(ctx, SEC + 2) & 0x03, n))
        for _ in range((n + 1) // 2):
            data += ctx.io.read(SEC, 2).to_bytes(2, "little")
        data = data[:sum(b[1] for b in blocks)]


def sense(ctx):
    data, _, status, _ = packet(ctx, [0x03, 0, 0, 0, 18])
    assert status & ERR == 0
    return data[2] & 0x0F, data[12], data[13]


def test_ata_identify_aborted_with_signature():
    ctx, _ = make_board()
    outb(ctx, SEC + 6, 0xA0)
    assert [inb(ctx, SEC + r) for r in (2, 3, 4, 5)] == [1, 1, 0x14, 0xEB]
    outb(ctx, SEC + 7, 0xEC)
    assert irq(ctx) == 1
    assert inb(ctx, SEC + 7) & ERR and inb(ctx, SEC + 1) == 0x04
    assert (inb(ctx, SEC + 4), inb(ctx, SEC + 5)) == (0x14, 0xEB)


def test_identify_packet_device():
    ctx, _ = make_board()
    outb(ctx, SEC + 7, 0xA1)
    assert inb(ctx, SEC + 7) & DRQ
    w = struct.unpack("<256H", b"".join(ctx.io.read(SEC, 2).to_bytes(2, "little")
                                        for _ in range(256)))
    assert w[0] >> 14 == 2 and (w[0] >> 8) & 0x1F == 5 and w[0] & 0x80
    model = b"".join(struct.pack(">H", x) for x in w[27:47]).decode().rstrip()
    assert model == "V3Vee CDROM"
    assert not w[49] & 0x0100                              # no DMA
    assert inb(ctx, SEC + 7) == 0x50


def test_read10_spans_drq_blocks_with_small_byte_count():
    ctx, image = make_board()
    data, blocks, status, reason = packet(ctx, [0x28, 0, 0, 0, 0, 5, 0, 0, 3], limit=1000)
    assert data == image[5 * 2048:8 * 2048]
    assert blocks == [(0x02, 1000)] * 6 + [(0x02, 144)]    # IO=1 CoD=0 for data
    assert status == 0x50 and reason == 0x03               # IO=1 CoD=1: status phase


def test_read12_blocks_are_whole_sectors_when_limit_allows():
    ctx, image = make_board()
    data, blocks, _, _ = packet(ctx, [0xA8, 0, 0, 0, 0, 2, 0, 0, 0, 5], limit=5000)
    assert data == image[2 * 2048:7 * 2048]
    assert [n for _, n in blocks] == [4096, 4096, 2048]


def test_read_beyond_end_then_request_sense():
    ctx, _ = make_board()
    _, blocks, status, reason = packet(ctx, [0x28, 0, 0, 0, 0, CD_SECTORS - 1, 0, 0, 2])
    assert blocks == [] and status & ERR and reason == 0x03
    assert inb(ctx, SEC + 1) >> 4 == 0x05                  # ILLEGAL REQUEST in the error register
    assert sense(ctx) == (0x05, 0x21, 0)
    assert sense(ctx) == (0x00, 0, 0)                       # sense is consumed


def test_unknown_opcode_is_illegal_request():
    ctx, _ = make_board()
    _, _, status, _ = packet(ctx, [0xEE])
    assert status & ERR
    assert sense(ctx) == (0x05, 0x20, 0)


def test_inquiry_and_capacity_and_test_unit_ready():
    ctx, _ = make_board()
    data, _, _, _ = packet(ctx, [0x12, 0, 0, 0, 36])
    assert data[0] == 0x05 and data[1] & 0x80
    assert data[16:32].decode().rstrip() == "V3Vee CDROM"
    data, _, _, _ = packet(ctx, [0x25])
    assert struct.unpack(">II", data) == (CD_SECTORS - 1, 2048)
    _, blocks, status, _ = packet(ctx, [0x00])
    assert blocks == [] and status == 0x50


def test_read_toc_formats():
    ctx, _ = make_board()
    data, _, _, _ = packet(ctx, [0x43, 0, 0, 0, 0, 0, 0, 0, 100])
    assert data[:4] == bytes((0, 18, 1, 1))
    assert data[4:12] == bytes((0, 0x14, 1, 0, 0, 0, 0, 0))
    assert data[12:20] == bytes((0, 0x14, 0xAA, 0)) + struct.pack(">I", CD_SECTORS)
    data, _, _, _ = packet(ctx, [0x43, 0x02, 0, 0, 0, 0, 0, 0, 100])     # MSF
    assert data[8:12] == bytes((0, 0, 2, 0))
    assert data[16:20] == bytes((0, 0, 2, CD_SECTORS))
    data, _, _, _ = packet(ctx, [0x43, 0, 1, 0, 0, 0, 0, 0, 12])         # session info
    assert data == bytes((0, 10, 1, 1, 0, 0x14, 1, 0, 0, 0, 0, 0))
    data, _, _, _ = packet(ctx, [0x43, 0, 0, 0, 0, 0, 0, 0, 4])          # allocation length
    assert data == bytes((0, 18, 1, 1))


def test_mode_sense_pages():
    ctx, _ = make_board()
    data, _, status, _ = packet(ctx, [0x5A, 0, 0x2A, 0, 0, 0, 0, 0, 64])
    assert status == 0x50
    assert struct.unpack(">H", data[:2])[0] == len(data) - 2
    assert data[8] == 0x2A and data[9] == 20
    data, _, _, _ = packet(ctx, [0x1A, 0, 0x01, 0, 64])
    assert data[0] == len(data) - 1 and data[4:6] == bytes((0x01, 0x06))
    data, _, _, _ = packet(ctx, [0x5A, 0, 0x3F, 0, 0, 0, 0, 0xFF, 0xFF])
    assert len(data) == 8 + 8 + 22
    _, _, status, _ = packet(ctx, [0x5A, 0, 0x05, 0, 0, 0, 0, 0, 64])
    assert status & ERR and sense(ctx) == (0x05, 0x24, 0)


def test_get_configuration_event_status_disc_info_mechanism():
    ctx, _ = make_board()
    data, _, _, _ = packet(ctx, [0x46, 0, 0, 0, 0, 0, 0, 0, 8])
    assert struct.unpack(">H", data[6:8])[0] == 0x0008      # current profile: CD-ROM
    data, _, _, _ = packet(ctx, [0x46, 2, 0, 0x10, 0, 0, 0, 0, 64])
    assert struct.unpack(">H", data[8:10])[0] == 0x0010 and len(data) == 8 + 12
    data, _, _, _ = packet(ctx, [0x4A, 1, 0, 0, 0x10, 0, 0, 0, 8])
    assert data == bytes((0, 6, 0x04, 0x10, 0, 0x02, 0, 0))
    _, _, status, _ = packet(ctx, [0x4A, 0, 0, 0, 0x10, 0, 0, 0, 8])
    assert status & ERR
    data, _, _, _ = packet(ctx, [0x51, 0, 0, 0, 0, 0, 0, 0, 34])
    assert len(data) == 34 and data[2] == 0x0E
    data, _, _, _ = packet(ctx, [0xBD, 0, 0, 0, 0, 0, 0, 0, 0, 8])
    assert data == bytes(8)
    for cdb in ([0x1E, 0, 0, 0, 1], [0x1B, 0, 0, 0, 1], [0xBB, 0, 0xFF, 0xFF]):
        _, _, status, _ = packet(ctx, cdb)
        assert status == 0x50
    with pytest.raises(Unimplemented, match="eject"):
        packet(ctx, [0x1B, 0, 0, 0, 0x02])


def test_unknown_packet_opcode_logged_once(capsys):
    ctx, _ = make_board()
    for _ in range(3):
        packet(ctx, [0xEE])
    assert capsys.readouterr().err.count("0xee") == 1


def test_packet_with_dma_is_fail_stop():
    ctx, _ = make_board()
    outb(ctx, SEC + 1, 0x01)
    with pytest.raises(Unimplemented, match="DMA"):
        outb(ctx, SEC + 7, 0xA0)


def test_random_packet_fuzz():
    rng = random.Random(99)
    ctx, _ = make_board()
    ops = [0x00, 0x03, 0x12, 0x1A, 0x1B, 0x1E, 0x25, 0x28, 0x43, 0x46, 0x4A, 0x51, 0x5A, 0xA8,
           0xBB, 0xBD]
    for _ in range(400):
        cdb = bytes([rng.choice(ops)]) + rng.randbytes(11)
        if cdb[0] in (0x28, 0xA8):
            cdb = cdb[:6] + bytes((0, 0, 2)) + cdb[9:]      # keep transfers small
        try:
            packet(ctx, cdb, limit=rng.choice((0, 1, 2, 200, 2048, 0xFFFF)))
        except Unimplemented:
            ctx.devices["ide"].reset()
