"""POST: IVT, BDA, EBDA, PIC/PIT programming, drive detection."""
from vmm.bios import bda, rom


def vector(b, v):
    return b.ctx.mem.read(v * 4 + 2, 2)[::-1].hex(), b.ctx.mem.read(v * 4, 2)[::-1].hex()


def test_ivt_points_at_stubs_and_tables(board):
    b = board()
    w = lambda a: int.from_bytes(b.mem(a, 2), "little")
    assert (w(0x13 * 4 + 2), w(0x13 * 4)) == (0xF000, 0xE3FE)
    assert (w(0x1E * 4 + 2), w(0x1E * 4)) == (0xF000, rom.DISKETTE_TABLE)
    assert (w(0x20 * 4 + 2), w(0x20 * 4)) == (0xF000, rom.DUMMY_IRET)
    assert (w(0x41 * 4 + 2) << 4) + w(0x41 * 4) == bda.EBDA_FDPT0
    assert w(0x60 * 4) == w(0x60 * 4 + 2) == 0                   # user vectors stay null
    assert (w(0x70 * 4 + 2), w(0x70 * 4)) == (0xF000, rom.IRQ_SLAVE_ENTRY)


def test_bda_and_ebda(board):
    b = board()
    w = lambda a: int.from_bytes(b.mem(a, 2), "little")
    assert w(bda.MEMORY_KIB) == 639
    assert w(bda.EBDA_SEG) == 0x9FC0
    assert b.mem(bda.EBDA_BASE, 1)[0] == 1
    assert w(bda.KBD_HEAD) == w(bda.KBD_TAIL) == w(bda.KBD_BUF_START) == 0x1E
    assert w(bda.KBD_BUF_END) == 0x3E
    assert b.mem(bda.VIDEO_MODE, 1)[0] == 3 and w(bda.VIDEO_COLS) == 80
    assert b.mem(0xB8000, 4) == b"\x20\x07\x20\x07"
    assert w(bda.COM_PORTS) == 0                                 # no SERIAL device


def test_com_ports_and_equipment(board):
    class Uart:
        base = 0x3F8
    b = board(post=False)
    b.ctx.serial_ports = {"COM1": Uart(), "COM2": object()}
    b.bios.post.run()
    w = lambda a: int.from_bytes(b.mem(a, 2), "little")
    assert (w(bda.COM_PORTS), w(bda.COM_PORTS + 2)) == (0x3F8, 0x2F8)
    assert w(bda.EQUIPMENT) >> 9 & 7 == 2


def test_pic_and_pit_programming(board):
    b = board()
    assert b.io_writes == [(0x20, 0x11), (0x21, 0x08), (0x21, 0x04), (0x21, 0x01), (0x21, 0xF8),
                           (0xA0, 0x11), (0xA1, 0x70), (0xA1, 0x02), (0xA1, 0x01), (0xA1, 0xFF),
                           (0x43, 0x36), (0x40, 0x00), (0x40, 0x00)]


def test_drive_numbers_and_counts(board, drive):
    b = board([drive(bytes(1474560), "floppy"), drive(bytes(10 << 20)),
               drive(bytes(2048 * 20), "cdrom", 2048), drive(bytes(1 << 20))])
    nums = {n: d.kind for n, d in b.bios.disks.by_number.items()}
    assert nums == {0x00: "floppy", 0x80: "disk", 0x81: "disk", 0xE0: "cdrom"}
    assert b.mem(bda.NUM_HARD_DISKS, 1)[0] == 2
    eq = int.from_bytes(b.mem(bda.EQUIPMENT, 2), "little")
    assert eq & 1 and eq >> 6 & 3 == 0
    fdpt = b.mem(bda.EBDA_FDPT0, 16)
    assert fdpt[2] == 16 and fdpt[14] == 63
