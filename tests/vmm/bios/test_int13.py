"""INT 13h: CHS, LBA and extended reads/writes, parameters, EDD, status."""
import hashlib

import pytest

from vmm.bios import bda

BUF = 0x10000


def pattern(nsect, size=512):
    return b"".join(hashlib.sha256(i.to_bytes(4, "little")).digest() * (size // 32)
                    for i in range(nsect))


def mbr_disk(nsect):
    data = bytearray(pattern(nsect))
    data[510:512] = b"\x55\xAA"
    return bytes(data)


def test_chs_read_of_a_floppy(board, drive):
    img = pattern(2880)
    b = board([drive(img, "floppy")])
    # cylinder 1, head 1, sector 3 -> LBA (1*2+1)*18+2 = 56; 3 sectors
    c = b.call(0x13, ah=0x02, al=3, ch=1, cl=3, dh=1, dl=0, es=BUF >> 4, bx=0)
    assert not c.cf and c.ah == 0 and c.al == 3
    assert b.mem(BUF, 3 * 512) == img[56 * 512:59 * 512]


def test_chs_read_of_a_hard_disk_uses_lba_assisted_geometry(board, drive):
    img = pattern(20000)
    b = board([drive(img)])
    c = b.call(0x13, ah=0x08, dl=0x80)
    assert not c.cf and c.dl == 1 and c.dh == 15 and c.cl & 0x3F == 63
    assert c.ch | (c.cl & 0xC0) << 2 == 20000 // (16 * 63) - 1
    # C/H/S 2/5/7 -> (2*16+5)*63+6
    c = b.call(0x13, ah=0x02, al=1, ch=2, cl=7, dh=5, dl=0x80, es=0x1000, bx=0x20)
    lba = (2 * 16 + 5) * 63 + 6
    assert not c.cf and b.mem(0x10020, 512) == img[lba * 512:(lba + 1) * 512]


def test_chs_errors_and_status(board, drive):
    b = board([drive(pattern(2880), "floppy")])
    c = b.call(0x13, ah=0x02, al=1, ch=0, cl=19, dh=0, dl=0, es=0x1000)
    assert c.cf and c.ah == 0x04 and b.mem(bda.FLOPPY_STATUS, 1)[0] == 0x04
    c = b.call(0x13, ah=0x01, dl=0)
    assert c.cf and c.ah == 0x04
    c = b.call(0x13, ah=0x00, dl=0)
    assert not c.cf and c.ah == 0
    c = b.call(0x13, ah=0x02, al=1, cl=1, dl=1)                  # no second floppy
    assert c.cf and c.ah == 0x01


def test_chs_write_then_read_back(board, drive):
    b = board([drive(bytes(2880 * 512), "floppy")])
    b.ctx.mem.write(0x20000, b"\xA5" * 1024)
    c = b.call(0x13, ah=0x03, al=2, ch=0, cl=1, dh=1, dl=0, es=0x2000, bx=0)
    assert not c.cf and c.al == 2
    assert b.ctx.drives[0].medium.read(18, 2) == b"\xA5" * 1024


def test_write_protected(board, drive):
    d = drive(bytes(2880 * 512), "floppy")
    d.medium.writable = False
    b = board([d])
    c = b.call(0x13, ah=0x03, al=1, cl=1, dl=0, es=0x2000)
    assert c.cf and c.ah == 0x03


def test_floppy_params_and_absent_floppy(board, drive):
    b = board([drive(pattern(2880), "floppy")])
    c = b.call(0x13, ah=0x08, dl=0)
    assert not c.cf and c.bl == 4 and c.ch == 79 and c.cl == 18 and c.dh == 1 and c.dl == 1
    assert (c.es, c.di) == (0xF000, 0xEFC7)
    c = b.call(0x13, ah=0x08, dl=1)
    assert not c.cf and c.dl == 1 and c.cx == 0


def test_get_type(board, drive):
    b = board([drive(pattern(2880), "floppy"), drive(pattern(5000))])
    assert b.call(0x13, ah=0x15, dl=0).ah == 0x01
    c = b.call(0x13, ah=0x15, dl=0x80)
    assert c.ah == 0x03 and (c.cx << 16 | c.dx) == 5000
    c = b.call(0x13, ah=0x15, dl=0x81)
    assert c.ah == 0 and not c.cf


def test_extensions_check(board, drive):
    b = board([drive(pattern(2880), "floppy"), drive(pattern(100))])
    c = b.call(0x13, ah=0x41, bx=0x55AA, dl=0x80)
    assert not c.cf and c.bx == 0xAA55 and c.ah == 0x30 and c.cx & 1
    c = b.call(0x13, ah=0x41, bx=0x55AA, dl=0x00)
    assert c.cf and c.ah == 0x01


def dap(b, addr, count, lba, seg=0x3000, off=0, flat=None):
    d = bytes((0x18 if flat is not None else 0x10, 0)) + count.to_bytes(2, "little")
    if flat is not None:
        d += b"\xff\xff\xff\xff" + lba.to_bytes(8, "little") + flat.to_bytes(8, "little")
    else:
        d += off.to_bytes(2, "little") + seg.to_bytes(2, "little") + lba.to_bytes(8, "little")
    b.ctx.mem.write(addr, d)


def test_extended_read_segment_and_flat_buffers(board, drive):
    img = mbr_disk(3000)
    b = board([drive(img)])
    dap(b, 0x500, 7, 1234)
    c = b.call(0x13, ah=0x42, dl=0x80, ds=0, si=0x500)
    assert not c.cf
    assert hashlib.sha256(b.mem(0x30000, 7 * 512)).digest() == \
        hashlib.sha256(img[1234 * 512:1241 * 512]).digest()
    dap(b, 0x500, 2, 10, flat=0x1200000)                         # 64-bit buffer at 18 MiB
    c = b.call(0x13, ah=0x42, dl=0x80, ds=0, si=0x500)
    assert not c.cf and b.mem(0x1200000, 1024) == img[10 * 512:12 * 512]


def test_extended_read_past_the_end_reports_count(board, drive):
    b = board([drive(pattern(100))])
    dap(b, 0x500, 8, 96)
    c = b.call(0x13, ah=0x42, dl=0x80, si=0x500)
    assert c.cf and c.ah == 0x04 and int.from_bytes(b.mem(0x502, 2), "little") == 4


def test_extended_write(board, drive):
    b = board([drive(pattern(100))])
    b.ctx.mem.write(0x30000, b"\x5A" * 512)
    dap(b, 0x500, 1, 42)
    c = b.call(0x13, ah=0x43, al=0, dl=0x80, si=0x500)
    assert not c.cf and b.ctx.drives[0].medium.read(42, 1) == b"\x5A" * 512


@pytest.mark.parametrize("size,expect", [(0x1A, 0x1A), (0x1E, 0x1E), (0x42, 0x42), (0x4A, 0x42)])
def test_ext_params_sizes(board, drive, size, expect):
    b = board([drive(pattern(20000))])
    b.ctx.mem.write(0x600, size.to_bytes(2, "little"))
    c = b.call(0x13, ah=0x48, dl=0x80, si=0x600)
    out = b.mem(0x600, expect)
    assert not c.cf and int.from_bytes(out[0:2], "little") == expect
    assert int.from_bytes(out[16:24], "little") == 20000
    assert int.from_bytes(out[24:26], "little") == 512
    if expect == 0x42:
        assert out[0x1E:0x20] == b"\xdd\xbe" and out[0x24:0x28] == b"ISA "
        assert sum(out[0x1E:0x42]) & 0xFF == 0


def test_ext_params_buffer_too_small(board, drive):
    b = board([drive(pattern(100))])
    b.ctx.mem.write(0x600, (0x10).to_bytes(2, "little"))
    assert b.call(0x13, ah=0x48, dl=0x80, si=0x600).cf


def test_cdrom_2048_byte_sectors(board, drive):
    img = pattern(40, 2048)
    b = board([drive(img, "cdrom", 2048)])
    assert b.call(0x13, ah=0x41, bx=0x55AA, dl=0xE0).bx == 0xAA55
    dap(b, 0x500, 2, 17)
    c = b.call(0x13, ah=0x42, dl=0xE0, si=0x500)
    assert not c.cf and b.mem(0x30000, 4096) == img[17 * 2048:19 * 2048]
    b.ctx.mem.write(0x600, (0x1E).to_bytes(2, "little"))
    b.call(0x13, ah=0x48, dl=0xE0, si=0x600)
    assert int.from_bytes(b.mem(0x600 + 24, 2), "little") == 2048
    assert b.call(0x13, ah=0x02, al=1, cl=1, dl=0xE0, es=0x3000).cf   # no CHS on a CD
    assert b.call(0x13, ah=0x43, dl=0xE0, si=0x500).ah == 0x03       # write protected


def test_unknown_function_is_unimplemented(board, drive):
    from v3tools.errors import Unimplemented
    b = board([drive(pattern(100))])
    with pytest.raises(Unimplemented, match="INT 13h AH=05h"):
        b.call(0x13, ah=0x05, dl=0x80)


def test_geometry_from_partition_table(board, drive):
    img = bytearray(mbr_disk(200000))
    img[446:462] = bytes((0x80, 1, 1, 0, 0x83, 31, 0xE0 | 32, 0xFF)) + (32).to_bytes(4, "little") \
        + (199000).to_bytes(4, "little")
    b = board([drive(bytes(img))])
    c = b.call(0x13, ah=0x08, dl=0x80)
    assert c.dh == 31 and c.cl & 0x3F == 32
