"""IDE channels and ATA disks, driven through the port bus only."""
import hashlib
import random
import struct

import pytest

from v3tools.errors import ConfigError, Unimplemented
from vmm.clock import ManualClock
from vmm.context import BoardContext
from vmm.devices.ide import IDE
from vmm.media import BytesMedium, Medium

PRI, PRI_CTL, SEC, SEC_CTL = 0x1F0, 0x3F6, 0x170, 0x376
BSY, DRDY, DRQ, ERR = 0x80, 0x40, 0x08, 0x01


def pattern_disk(sectors, seed=1):
    return bytes(random.Random(seed).randbytes(sectors * 512))


class HugeMedium(Medium):
    """A sparse 2^29-sector disk: each sector holds its LBA, repeated (needs LBA48)."""

    def __init__(self, sectors=1 << 29):
        self.size, self.writable = sectors * 512, True
        self.written = {}

    def read_bytes(self, offset, length):
        out = b""
        for lba in range(offset // 512, (offset + length) // 512):
            out += self.written.get(lba) or struct.pack("<Q", lba) * 64
        return out

    def write_bytes(self, offset, data):
        for i in range(0, len(data), 512):
            self.written[offset // 512 + i // 512] = data[i:i + 512]


def make_board(master=None, slave=None, model="Test Disk"):
    ctx = BoardContext(clock=ManualClock())
    ide = ctx.add_device(IDE("ide"))
    for pos, medium in enumerate((master, slave)):
        if medium is not None:
            ide.connect(0, pos, "disk", medium, model)
    return ctx, ide


# -- tiny port helpers ------------------------------------------------------------------------
def outb(ctx, port, value):
    ctx.io.write(port, 1, value)


def inb(ctx, port):
    return ctx.io.read(port, 1)


def insw(ctx, port, nwords):
    return b"".join(ctx.io.read(port, 2).to_bytes(2, "little") for _ in range(nwords))


def outsw(ctx, port, data):
    for i in range(0, len(data), 2):
        ctx.io.write(port, 2, int.from_bytes(data[i:i + 2], "little"))


def irq_level(ctx, base=PRI):
    return ctx.irq(14 if base == PRI else 15).level


def set_taskfile(ctx, lba, count, dev=0, lba48=False, base=PRI):
    outb(ctx, base + 6, 0xE0 | dev << 4 | (0 if lba48 else (lba >> 24) & 0x0F))
    if lba48:
        for reg, shift in ((2, 8), (3, 24), (4, 32), (5, 40)):
            outb(ctx, base + reg, (count if reg == 2 else lba) >> shift & 0xFF)
    for reg, value in ((2, count), (3, lba), (4, lba >> 8), (5, lba >> 16)):
        outb(ctx, base + reg, value & 0xFF)


def ata_read_sectors(ctx, lba, count, cmd=0x20, block=1, dev=0, lba48=False, base=PRI):
    """Issue a PIO read; returns (data, number of DRQ blocks / interrupts seen)."""
    set_taskfile(ctx, lba, count, dev, lba48, base)
    outb(ctx, base + 7, cmd)
    data, blocks, total = b"", 0, count or 256
    while len(data) < total * 512:
        assert irq_level(ctx, base) == 1
        status = inb(ctx, base + 7)
        assert status & (DRQ | ERR | BSY) == DRQ, hex(status)
        assert irq_level(ctx, base) == 0
        blocks += 1
        data += insw(ctx, base, min(block, total - len(data) // 512) * 256)
    assert inb(ctx, base + 7) == 0x50
    return data, blocks


def ata_write_sectors(ctx, lba, data, cmd=0x30, block=1, dev=0, lba48=False, base=PRI):
    count = len(data) // 512
    set_taskfile(ctx, lba, count, dev, lba48, base)
    outb(ctx, base + 7, cmd)
    done = 0
    while done < count:
        assert inb(ctx, base + 7) & (DRQ | ERR) == DRQ
        n = min(block, count - done)
        outsw(ctx, base, data[done * 512:(done + n) * 512])
        done += n
        assert irq_level(ctx, base) == 1
    assert inb(ctx, base + 7) == 0x50


def identify(ctx, cmd=0xEC, dev=0, base=PRI):
    outb(ctx, base + 6, 0xA0 | dev << 4)
    outb(ctx, base + 7, cmd)
    assert inb(ctx, base + 7) & (DRQ | ERR) == DRQ
    return struct.unpack("<256H", insw(ctx, base, 256))


def ata_string(words, first, count):
    return b"".join(struct.pack(">H", w) for w in words[first:first + count]).decode().rstrip()


def sha(data):
    return hashlib.sha256(data).hexdigest()


# -- IDENTIFY ---------------------------------------------------------------------------------
def test_identify_small_disk():
    sectors = 16 * 63 * 20 + 5
    ctx, _ = make_board(BytesMedium(pattern_disk(sectors)), model="V3Vee HARDDISK")
    w = identify(ctx)
    assert w[0] == 0x0040
    assert (w[1], w[3], w[6]) == (20, 16, 63)
    assert ata_string(w, 27, 20) == "V3Vee HARDDISK"
    assert ata_string(w, 10, 10).startswith("V3V")
    assert w[47] & 0xFF == 16 and w[47] >> 8 == 0x80
    assert w[49] & 0x0200 and not w[49] & 0x0100          # LBA, no DMA
    assert w[60] | w[61] << 16 == sectors
    assert w[83] & 0x0400 and w[86] & 0x0400              # LBA48 supported and enabled
    assert sum(w[100 + i] << (16 * i) for i in range(4)) == sectors
    assert w[59] == 0                                      # multiple mode off
    assert w[63] == 0 and w[88] == 0                       # no DMA modes
    assert inb(ctx, PRI + 7) == 0x50


def test_identify_huge_disk_caps_lba28():
    ctx, _ = make_board(HugeMedium())
    w = identify(ctx)
    assert w[60] | w[61] << 16 == 0x0FFFFFFF
    assert sum(w[100 + i] << (16 * i) for i in range(4)) == 1 << 29
    assert w[1] == 16383


# -- reads and writes -------------------------------------------------------------------------
def test_lba28_read_matches_medium():
    disk = pattern_disk(300)
    ctx, _ = make_board(BytesMedium(disk))
    data, blocks = ata_read_sectors(ctx, 7, 5)
    assert sha(data) == sha(disk[7 * 512:12 * 512])
    assert blocks == 5
    # the task file holds the last sector read
    assert (inb(ctx, PRI + 3), inb(ctx, PRI + 2)) == (11, 0)


def test_count_zero_means_256():
    disk = pattern_disk(300)
    ctx, _ = make_board(BytesMedium(disk))
    data, blocks = ata_read_sectors(ctx, 1, 0)
    assert sha(data) == sha(disk[512:257 * 512]) and blocks == 256


def test_chs_read_uses_default_geometry():
    disk = pattern_disk(16 * 63 * 3)
    ctx, _ = make_board(BytesMedium(disk))
    # cylinder 1, head 2, sector 5 -> (1*16 + 2)*63 + 4
    outb(ctx, PRI + 6, 0xA0 | 2)
    for reg, v in ((2, 2), (3, 5), (4, 1), (5, 0)):
        outb(ctx, PRI + reg, v)
    outb(ctx, PRI + 7, 0x20)
    lba = (1 * 16 + 2) * 63 + 4
    assert inb(ctx, PRI + 7) & DRQ
    assert insw(ctx, PRI, 256) == disk[lba * 512:(lba + 1) * 512]
    inb(ctx, PRI + 7)
    assert insw(ctx, PRI, 256) == disk[(lba + 1) * 512:(lba + 2) * 512]
    assert inb(ctx, PRI + 3) == 6                          # last sector read, CHS form


def test_initialize_device_parameters_changes_translation():
    disk = pattern_disk(16 * 63 * 3)
    ctx, _ = make_board(BytesMedium(disk))
    outb(ctx, PRI + 2, 32)
    outb(ctx, PRI + 6, 0xA0 | 7)                           # 8 heads
    outb(ctx, PRI + 7, 0x91)
    assert inb(ctx, PRI + 7) == 0x50
    w = identify(ctx)
    assert (w[55], w[56]) == (8, 32)
    outb(ctx, PRI + 6, 0xA0 | 1)
    for reg, v in ((2, 1), (3, 3), (4, 2), (5, 0)):
        outb(ctx, PRI + reg, v)
    outb(ctx, PRI + 7, 0x20)
    lba = (2 * 8 + 1) * 32 + 2
    inb(ctx, PRI + 7)
    assert insw(ctx, PRI, 256) == disk[lba * 512:(lba + 1) * 512]


def test_lba48_read_and_write_above_28_bits():
    medium = HugeMedium()
    ctx, _ = make_board(medium)
    lba = (1 << 28) + 12345
    data, _ = ata_read_sectors(ctx, lba, 2, cmd=0x24, lba48=True)
    assert data == struct.pack("<Q", lba) * 64 + struct.pack("<Q", lba + 1) * 64
    outb(ctx, PRI_CTL, 0x80)                               # HOB: the high-order bytes
    assert inb(ctx, PRI + 3) == ((lba + 1) >> 24) & 0xFF
    outb(ctx, PRI_CTL, 0x00)
    payload = bytes(range(256)) * 2
    ata_write_sectors(ctx, lba + 7, payload, cmd=0x34, lba48=True)
    assert medium.written[lba + 7] == payload


def test_write_persists_and_reads_back():
    medium = BytesMedium(pattern_disk(64))
    ctx, _ = make_board(medium)
    payload = random.Random(5).randbytes(3 * 512)
    ata_write_sectors(ctx, 10, payload)
    assert bytes(medium.data[10 * 512:13 * 512]) == payload
    assert ata_read_sectors(ctx, 10, 3)[0] == payload


def test_multiple_mode_blocks():
    disk = pattern_disk(64)
    ctx, _ = make_board(BytesMedium(disk))
    outb(ctx, PRI + 7, 0xC4)                               # before SET MULTIPLE: aborted
    assert inb(ctx, PRI + 7) & ERR and inb(ctx, PRI + 1) == 0x04
    outb(ctx, PRI + 2, 4)
    outb(ctx, PRI + 7, 0xC6)
    assert inb(ctx, PRI + 7) == 0x50
    assert identify(ctx)[59] == 0x0104
    data, blocks = ata_read_sectors(ctx, 3, 10, cmd=0xC4, block=4)
    assert data == disk[3 * 512:13 * 512] and blocks == 3
    payload = bytes(range(256)) * 2 * 6
    ata_write_sectors(ctx, 20, payload, cmd=0xC5, block=4)
    assert ata_read_sectors(ctx, 20, 6)[0] == payload
    outb(ctx, PRI + 2, 3)                                  # not a power of two
    outb(ctx, PRI + 7, 0xC6)
    assert inb(ctx, PRI + 7) & ERR


def test_read_beyond_end_is_idnf():
    ctx, _ = make_board(BytesMedium(pattern_disk(10)))
    set_taskfile(ctx, 8, 4)
    outb(ctx, PRI + 7, 0x20)
    assert irq_level(ctx) == 1
    assert inb(ctx, PRI + 7) == 0x51
    assert inb(ctx, PRI + 1) == 0x10


def test_dword_data_port_reads():
    disk = pattern_disk(8)
    ctx, _ = make_board(BytesMedium(disk))
    set_taskfile(ctx, 2, 1)
    outb(ctx, PRI + 7, 0x20)
    inb(ctx, PRI + 7)
    data = b"".join(ctx.io.read(PRI, 4).to_bytes(4, "little") for _ in range(128))
    assert data == disk[1024:1536]
    assert inb(ctx, PRI + 7) == 0x50


def test_non_data_commands_complete_with_interrupt():
    ctx, _ = make_board(BytesMedium(pattern_disk(8)))
    for cmd in (0x10, 0x70, 0xE7, 0xEA, 0xE0, 0xE1, 0xE3, 0x40):
        set_taskfile(ctx, 0, 1)
        outb(ctx, PRI + 7, cmd)
        assert irq_level(ctx) == 1, hex(cmd)
        assert inb(ctx, PRI + 7) == 0x50, hex(cmd)
    outb(ctx, PRI + 7, 0xE5)
    assert inb(ctx, PRI + 2) == 0xFF
    outb(ctx, PRI + 1, 0x03)                               # SET FEATURES: PIO mode 4
    outb(ctx, PRI + 2, 0x0C)
    outb(ctx, PRI + 7, 0xEF)
    assert inb(ctx, PRI + 7) == 0x50
    outb(ctx, PRI + 2, 0x42)                               # UDMA 2: aborted, not advertised
    outb(ctx, PRI + 1, 0x03)
    outb(ctx, PRI + 7, 0xEF)
    assert inb(ctx, PRI + 7) == 0x51


def test_packet_commands_aborted_by_disk_and_dma_is_fail_stop():
    ctx, _ = make_board(BytesMedium(pattern_disk(8)))
    outb(ctx, PRI + 7, 0xA1)
    assert inb(ctx, PRI + 7) == 0x51 and inb(ctx, PRI + 1) == 0x04
    with pytest.raises(Unimplemented, match="DMA"):
        outb(ctx, PRI + 7, 0xC8)
    with pytest.raises(Unimplemented, match="0xb0"):
        outb(ctx, PRI + 7, 0xB0)


# -- bus behaviour ------------------------------------------------------------------------------
def test_empty_channel_floats():
    ctx, _ = make_board(BytesMedium(pattern_disk(8)))
    assert [inb(ctx, SEC + r) for r in range(1, 8)] == [0xFF] * 7
    assert inb(ctx, SEC_CTL) == 0xFF
    outb(ctx, SEC + 7, 0xEC)                               # ignored
    assert irq_level(ctx, SEC) == 0


def test_absent_slave_reads_status_zero():
    ctx, _ = make_board(BytesMedium(pattern_disk(8)))
    outb(ctx, PRI + 6, 0xB0)
    assert inb(ctx, PRI + 7) == 0x00 and inb(ctx, PRI_CTL) == 0x00
    outb(ctx, PRI + 2, 0x55)                               # the register echo fails
    outb(ctx, PRI + 3, 0xAA)
    assert [inb(ctx, PRI + r) for r in range(1, 7)] == [0] * 6
    outb(ctx, PRI + 7, 0xEC)                               # ignored
    assert inb(ctx, PRI + 7) == 0x00 and irq_level(ctx) == 0
    outb(ctx, PRI + 6, 0xA0)
    assert inb(ctx, PRI + 7) == 0x50


def test_soft_reset_signatures():
    ctx, ide = make_board(BytesMedium(pattern_disk(8)))
    ide.connect(0, 1, "cdrom", BytesMedium(bytes(4096), 2048), "CD")
    outb(ctx, PRI_CTL, 0x04)
    assert inb(ctx, PRI + 7) == BSY and inb(ctx, PRI_CTL) == BSY
    outb(ctx, PRI_CTL, 0x00)
    sig = [inb(ctx, PRI + r) for r in (1, 2, 3, 4, 5)]
    assert sig == [0x01, 0x01, 0x01, 0x00, 0x00] and inb(ctx, PRI + 7) == 0x50
    outb(ctx, PRI + 6, 0xB0)
    sig = [inb(ctx, PRI + r) for r in (1, 2, 3, 4, 5)]
    assert sig == [0x01, 0x01, 0x01, 0x14, 0xEB] and inb(ctx, PRI + 7) == 0x00
    assert irq_level(ctx) == 0


def test_execute_diagnostic_sets_signatures_and_interrupts():
    ctx, ide = make_board(BytesMedium(pattern_disk(8)))
    set_taskfile(ctx, 0x123456, 9)
    outb(ctx, PRI + 7, 0x90)
    assert irq_level(ctx) == 1
    assert [inb(ctx, PRI + r) for r in (1, 2, 3, 4, 5)] == [1, 1, 1, 0, 0]
    assert inb(ctx, PRI + 7) == 0x50 and irq_level(ctx) == 0


def test_irq_level_alt_status_and_nien():
    ctx, _ = make_board(BytesMedium(pattern_disk(8)))
    set_taskfile(ctx, 0, 1)
    outb(ctx, PRI + 7, 0x20)
    assert irq_level(ctx) == 1
    assert inb(ctx, PRI_CTL) & DRQ and irq_level(ctx) == 1   # alternate status: no side effect
    outb(ctx, PRI_CTL, 0x02)                               # nIEN masks the pending interrupt
    assert irq_level(ctx) == 0
    outb(ctx, PRI_CTL, 0x00)
    assert irq_level(ctx) == 1
    inb(ctx, PRI + 7)
    assert irq_level(ctx) == 0
    insw(ctx, PRI, 256)
    outb(ctx, PRI_CTL, 0x02)
    set_taskfile(ctx, 0, 1)
    outb(ctx, PRI + 7, 0x20)
    assert irq_level(ctx) == 0 and inb(ctx, PRI_CTL) & DRQ


def test_selecting_other_device_hides_interrupt():
    ctx, ide = make_board(BytesMedium(pattern_disk(8)))
    outb(ctx, PRI + 7, 0xE7)
    assert irq_level(ctx) == 1
    outb(ctx, PRI + 6, 0xB0)                               # absent slave drives no INTRQ
    assert irq_level(ctx) == 0
    outb(ctx, PRI + 6, 0xA0)
    assert irq_level(ctx) == 1


def test_data_port_without_drq_is_fail_stop():
    ctx, _ = make_board(BytesMedium(pattern_disk(8)))
    with pytest.raises(Unimplemented):
        ctx.io.read(PRI, 2)


def test_connect_rejects_occupied_slot():
    ctx, ide = make_board(BytesMedium(pattern_disk(8)))
    with pytest.raises(ConfigError, match="occupied"):
        ide.connect(0, 0, "disk", BytesMedium(pattern_disk(8)), "x")
    with pytest.raises(ConfigError, match="channels 0-1"):
        ide.connect(2, 0, "disk", BytesMedium(pattern_disk(8)), "x")


def test_machine_reset_restores_power_on_state():
    ctx, ide = make_board(BytesMedium(pattern_disk(8)))
    outb(ctx, PRI + 2, 4)
    outb(ctx, PRI + 7, 0xC6)
    ide.reset()
    assert irq_level(ctx) == 0 and inb(ctx, PRI + 7) == 0x50
    assert identify(ctx)[59] == 0


def test_random_register_fuzz():
    rng = random.Random(1234)
    ctx, ide = make_board(BytesMedium(pattern_disk(64)))
    ide.connect(0, 1, "cdrom", BytesMedium(pattern_disk(8), 2048), "CD")
    ide.connect(1, 0, "disk", BytesMedium(pattern_disk(16)), "D2")
    ports = [PRI + i for i in range(8)] + [PRI_CTL] + [SEC + i for i in range(8)] + [SEC_CTL]
    stops = 0
    for _ in range(20000):
        port = rng.choice(ports)
        size = 2 if port in (PRI, SEC) and rng.random() < 0.8 else 1
        try:
            if rng.random() < 0.5:
                ctx.io.read(port, size)
            else:
                ctx.io.write(port, size, rng.randrange(1 << (8 * size)))
        except Unimplemented:
            stops += 1
            ide.reset()
    assert stops < 20000


def test_data_port_block_reads_stop_at_the_drq_block():
    """REP INSW in one exit (vmm/cpu/stringio.py): a block read offers the rest of the
    current DRQ block, and the next block comes as with element reads."""
    disk = pattern_disk(300)
    ctx, _ = make_board(BytesMedium(disk))
    set_taskfile(ctx, 7, 2)
    outb(ctx, PRI + 7, 0x20)
    read_block = ctx.io.find(PRI).blocks[0][0]
    first = read_block(2, 1000)
    assert first == disk[7 * 512:8 * 512]
    assert read_block(2, 10) + read_block(2, 1000) == disk[8 * 512:9 * 512]
    assert inb(ctx, PRI + 7) & 0x08 == 0              # DRQ off: the command is done
