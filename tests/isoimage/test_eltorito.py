"""build_iso / write_iso / the reader, checked against our own parsing and against xorriso."""
import os
import struct
import subprocess

import pytest

import isoimage
from isoimage import layout
from guest_creator.image import encode_header
from v3tools.errors import ImageFormatError, ToolMissing, V3Error

_DATA = bytes(range(256)) * 40
# a valid guest image (v0) holding one file
GUEST = encode_header(b'<vm><files><file id="d" filename="d" index="0"></file></files></vm>',
                      [len(_DATA)], [0], 0) + _DATA
# what build_iso checks of a kernel: the Linux boot-protocol signatures
BZIMAGE = (b"K" * 0x1FE + b"\x55\xaa" + b"KK" + b"HdrS").ljust(3000, b"K")


@pytest.fixture
def guest(tmp_path):
    path = tmp_path / "image.dat"
    path.write_bytes(GUEST)
    return path


def _sector(iso, lba, count=1):
    with open(iso, "rb") as f:
        f.seek(lba * 2048)
        return f.read(count * 2048)


def test_guest_iso_contents(tmp_path, guest):
    out = tmp_path / "image.iso"
    result = isoimage.build_iso(out, guest=guest)
    assert result.stub_kernel and result.path == str(out) and result.size == out.stat().st_size
    assert isoimage.read_file_from_iso(out, "/initrd.img") == GUEST
    assert isoimage.read_file_from_iso(out, "/lwk") == isoimage.STUB_KERNEL.read_bytes()
    assert isoimage.read_file_from_iso(out, "/isolinux.cfg") == layout.isolinux_cfg().encode()
    assert isoimage.is_hosted_iso(out)
    offset, length = isoimage.file_extent(out, "/initrd.img")
    assert length == len(GUEST) and _sector(out, offset // 2048)[:8] == GUEST[:8]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["image.dat", "image.iso"]  # no temp left


def test_boot_catalog_and_boot_info_table(tmp_path, guest):
    out = tmp_path / "image.iso"
    isoimage.build_iso(out, guest=guest)
    # the boot record volume descriptor (sector 17) points to the catalog
    brvd = _sector(out, 17)
    assert brvd[0] == 0 and brvd[1:6] == b"CD001" and brvd[7:30].rstrip(b"\0") == b"EL TORITO SPECIFICATION"
    catalog = _sector(out, struct.unpack_from("<I", brvd, 0x47)[0])
    assert catalog[0] == 1 and catalog[0x1E:0x20] == b"\x55\xAA"      # validation entry
    boot_indicator, media, load_seg, _, _, sectors, lba = struct.unpack_from("<BBHBBHI", catalog, 32)
    assert (boot_indicator, media, load_seg, sectors) == (0x88, 0, 0, 4)  # bootable, no emulation
    # boot info table (isolinux reads it): PVD LBA, own LBA, length, checksum of bytes 64..end
    image = isoimage.read_file_from_iso(out, "/isolinux.bin")
    patched = _sector(out, lba, (len(image) + 2047) // 2048)[:len(image)]
    pvd_lba, file_lba, length, checksum = struct.unpack_from("<IIII", patched, 8)
    assert (pvd_lba, file_lba, length) == (16, lba, len(image))
    words = patched[64:] + b"\0" * (-len(patched) % 4)
    assert checksum == sum(struct.unpack(f"<{len(words) // 4}I", words)) & 0xFFFFFFFF


def test_xorriso_sees_the_boot_record_and_files(tmp_path, guest, require_tool):
    xorriso = require_tool("xorriso", "xorriso")
    out = tmp_path / "image.iso"
    isoimage.build_iso(out, guest=guest)
    report = subprocess.run([xorriso, "-indev", str(out), "-report_el_torito", "plain"],
                            capture_output=True, text=True, check=True).stdout
    assert "El Torito boot img :   1  BIOS  y   none  0x0000  0x00      4" in report
    assert "El Torito img path :   1  /isolinux.bin" in report
    assert "boot-info-table" in report
    listing = subprocess.run([xorriso, "-indev", str(out), "-find", "/", "-type", "f"],
                             capture_output=True, text=True, check=True).stdout.split()
    assert sorted(listing) == sorted(f"'/{n}'" for n in ("isolinux.bin", "isolinux.cfg", "ldlinux.c32",
                                                         "lwk", "initrd.img"))
    assert "El Torito cat path : /boot.cat" in report    # the catalog is not a regular file


def test_linux_iso_with_append_and_no_serial(tmp_path):
    kernel, initrd = tmp_path / "bzImage", tmp_path / "initrd"
    kernel.write_bytes(BZIMAGE)
    initrd.write_bytes(b"I" * 5000)
    out = tmp_path / "linux.iso"
    result = isoimage.build_iso(out, kernel=kernel, initrd=initrd, append="root=/dev/ram0", serial=False)
    assert not result.stub_kernel
    assert isoimage.read_file_from_iso(out, "/lwk") == BZIMAGE
    assert isoimage.read_file_from_iso(out, "/isolinux.cfg") == (
        b"TIMEOUT 1\ndefault lwk root=/dev/ram0 initrd=initrd.img\n")
    assert not isoimage.is_hosted_iso(out)          # an ordinary initrd is no guest image


def test_reader_errors(tmp_path, guest):
    with pytest.raises(V3Error, match="no such file"):
        isoimage.read_file_from_iso(tmp_path / "none.iso", "/initrd.img")
    with pytest.raises(ImageFormatError):
        isoimage.read_file_from_iso(guest, "/initrd.img")
    out = tmp_path / "image.iso"
    isoimage.build_iso(out, guest=guest)
    with pytest.raises(V3Error, match="has no file /nothing"):
        isoimage.read_file_from_iso(out, "/nothing")
    assert not isoimage.is_hosted_iso(guest) and not isoimage.is_hosted_iso(tmp_path / "none.iso")


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(), V3Error, "nothing to boot"),
    (dict(guest="missing.dat"), V3Error, "guest image missing.dat not found"),
    (dict(guest="image.dat", initrd="image.dat"), V3Error, "either a guest image or an initrd"),
    (dict(kernel="nokernel", initrd="image.dat"), V3Error, "kernel nokernel not found"),
    (dict(guest="notaguest"), ImageFormatError, "not a Palacios guest image"),
    (dict(guest="image.dat", isolinux="/nonexistent"), ToolMissing, "isolinux.bin not found"),
])
def test_errors_write_nothing(tmp_path, guest, monkeypatch, kwargs, error, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notaguest").write_bytes(b"hello")
    before = sorted(os.listdir(tmp_path))
    with pytest.raises(error, match=message):
        isoimage.build_iso("out.iso", **kwargs)
    assert sorted(os.listdir(tmp_path)) == before
