"""INT 19h from a CD: El Torito no-emulation, floppy and hard-disk emulation; AX=4B01h."""
import io

import pycdlib
import pytest

from vmm.bios import NoBootableDevice
from vmm.bios import eltorito

LOADER = bytes(range(256)) * 8          # 2048 bytes: 4 virtual sectors


def make_iso(boot, media="noemul", load_size=4):
    iso = pycdlib.PyCdlib()
    iso.new()
    iso.add_fp(io.BytesIO(boot), len(boot), "/BOOT.IMG;1")
    iso.add_eltorito("/BOOT.IMG;1", bootcatfile="/BOOT.CAT;1", media_name=media,
                     boot_load_size=load_size)
    out = io.BytesIO()
    iso.write_fp(out)
    iso.close()
    return out.getvalue()


def floppy_image():
    img = bytearray(1474560)
    img[0:512] = b"\xEB\x3C" + bytes(508) + b"\x55\xAA"
    for lba in range(2880):
        img[lba * 512 + 8:lba * 512 + 12] = lba.to_bytes(4, "little")
    return bytes(img)


def hd_image():
    img = bytearray(2 * 16 * 63 * 512)                 # two cylinders of 16 heads x 63 sectors
    img[446:462] = bytes((0x80, 1, 1, 0, 0x06, 15, 63, 1)) + (63).to_bytes(4, "little") \
        + (2 * 16 * 63 - 63).to_bytes(4, "little")
    img[510:512] = b"\x55\xAA"
    img[600:604] = b"HDEM"
    return bytes(img)


def test_no_emulation_boot(board, drive, fake_call):
    b = board([drive(make_iso(LOADER), "cdrom", 2048)])
    c = b.call(0x19)
    assert c.returned_to == (0, 0x7C00) and c.dl == 0xE0
    assert b.mem(0x7C00, 2048) == LOADER
    # isolinux asks which drive it booted from
    c = b.call(0x13, ax=0x4B01, dl=0xE0, ds=0, si=0x600)
    packet = b.mem(0x600, 0x13)
    assert not c.cf and packet[0] == 0x13 and packet[1] == 0 and packet[2] == 0xE0
    assert int.from_bytes(packet[0x0C:0x0E], "little") == 0x7C0
    assert int.from_bytes(packet[0x0E:0x10], "little") == 4
    lba = int.from_bytes(packet[4:8], "little")
    assert b.ctx.drives[0].medium.read(lba, 1) == LOADER


def test_floppy_emulation_boot_maps_drive_00(board, drive):
    real_floppy = drive(bytes(1474560), "floppy")
    b = board([drive(make_iso(floppy_image(), "floppy", 2880), "cdrom", 2048), real_floppy])
    c = b.call(0x19)
    assert c.dl == 0x00 and b.mem(0x7DFE, 2) == b"\x55\xAA"
    nums = b.bios.disks.by_number
    assert nums[0x00].emulated and nums[0x01].medium is real_floppy.medium
    # CHS read of C/H/S 10/1/5 inside the emulated 1.44 MB image
    c = b.call(0x13, ah=0x02, al=1, ch=10, cl=5, dh=1, dl=0, es=0x2000, bx=0)
    lba = (10 * 2 + 1) * 18 + 4
    assert not c.cf and b.mem(0x20008, 4) == lba.to_bytes(4, "little")
    c = b.call(0x13, ah=0x08, dl=0)
    assert c.bl == 4 and c.cl == 18
    # terminate the emulation: the real floppy is drive 00h again
    c = b.call(0x13, ax=0x4B00, dl=0x00, si=0x600)
    assert not c.cf and b.mem(0x601, 2) == b"\x02\x00"
    assert b.bios.disks.by_number[0x00].medium is real_floppy.medium


def test_hard_disk_emulation_boot(board, drive):
    b = board([drive(make_iso(hd_image(), "hdemul", 1), "cdrom", 2048), drive(bytes(1 << 20))])
    c = b.call(0x19)
    assert c.dl == 0x80 and b.mem(0x7C00 + 510, 2) == b"\x55\xAA"
    disks = b.bios.disks.by_number
    assert disks[0x80].emulated and disks[0x81].kind == "disk"
    c = b.call(0x13, ah=0x08, dl=0x80)
    assert c.dh == 15 and c.cl & 0x3F == 63 and c.dl == 2
    c = b.call(0x13, ah=0x02, al=1, cl=2, dl=0x80, es=0x2000, bx=0)
    assert not c.cf and b.mem(0x20000 + 600 - 512, 4) == b"HDEM"       # LBA 1


def test_catalog_errors():
    from vmm.media import BytesMedium
    blank = BytesMedium(bytes(2048 * 40), 2048)
    with pytest.raises(eltorito.NotBootable, match="sector 17"):
        eltorito.read_catalog(blank)
    iso = bytearray(make_iso(LOADER))
    cat = int.from_bytes(iso[17 * 2048 + 0x47:17 * 2048 + 0x4B], "little")
    iso[cat * 2048 + 0x1C] ^= 1                          # break the checksum
    with pytest.raises(eltorito.NotBootable, match="checksum"):
        eltorito.read_catalog(BytesMedium(bytes(iso), 2048))


def test_boot_order_falls_through_and_reports(board, drive):
    mbr = bytearray(512 * 4)
    mbr[510:512] = b"\x55\xAA"
    b = board([drive(bytes(2048 * 40), "cdrom", 2048), drive(bytes(mbr))])
    c = b.call(0x19)
    assert c.dl == 0x80 and c.returned_to == (0, 0x7C00)
    b = board([drive(bytes(2048 * 40), "cdrom", 2048), drive(bytes(2048))])
    with pytest.raises(NoBootableDevice) as exc:
        b.call(0x19)
    msg = str(exc.value)
    assert "cdrom E0h" in msg and "El Torito" in msg and "55AAh" in msg and "floppy: no drive" in msg


def test_floppy_boot(board, drive):
    img = bytearray(1474560)
    img[0:3] = b"\xEB\xFE\x90"
    b = board([drive(bytes(img), "floppy")])
    b.ctx.boot_order = ["floppy"]
    c = b.call(0x19)
    assert c.dl == 0 and b.mem(0x7C00, 3) == b"\xEB\xFE\x90"
