"""`v3 img info` and `v3 img grow` (v3tools/diskimage.py) on tables made by Debian's own tools
(sfdisk, sgdisk, mkfs.msdos, syslinux): truncated images grow to what their table needs, a GPT
image gets its backup table back (sgdisk verifies it), a grown SYSLINUX disk boots, and bad
input changes no byte."""
import hashlib
import os
import struct
import subprocess

import pytest

MIB = 1 << 20
STUB_MARKER = "v3 lwk stub: run it with"


def _sfdisk(require_tool, image, script, size):
    sfdisk = require_tool("sfdisk", "fdisk")
    with open(image, "wb") as f:
        f.truncate(size)
    subprocess.run([sfdisk, "-q", str(image)], input=script.encode(), check=True,
                   capture_output=True)


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_mbr_with_logical_partitions(tmp_path, v3, require_tool):
    image = tmp_path / "disk.img"
    _sfdisk(require_tool, image, "label: dos\n,4M,83,*\n,,5\n,2M,83\n,3M,82\n", 16 * MIB)
    with open(image, "r+b") as f:
        f.truncate(9 * MIB)
    r = v3("img", "info", str(image))
    assert r.exit_code == 0, r
    lines = r.stdout.splitlines()
    assert "MBR partition table" in lines[0]
    assert any("1 primary   type 83" in x and "bootable" in x for x in lines)
    assert any("2 extended  type 05" in x for x in lines)
    assert any("5 logical   type 83" in x for x in lines)
    assert any("6 logical   type 82" in x for x in lines)
    assert "the file is SHORT" in lines[-1]
    r = v3("img", "grow", str(image))
    assert r.exit_code == 0, r
    assert os.path.getsize(image) == 16 * MIB
    assert "holds everything" in v3("img", "info", str(image)).stdout


def test_gpt_grows_and_gets_its_backup_table(tmp_path, v3, require_tool):
    sgdisk = require_tool("sgdisk", "gdisk")
    image = tmp_path / "gpt.img"
    _sfdisk(require_tool, image, "label: gpt\n,8M\n,4M\n", 20 * MIB)
    with open(image, "r+b") as f:
        f.truncate(13 * MIB)                      # the backup header and array are gone
    r = v3("img", "info", str(image))
    assert "GPT partition table" in r.stdout and "the file is SHORT" in r.stdout
    assert v3("img", "grow", str(image)).exit_code == 0
    assert os.path.getsize(image) == 20 * MIB
    check = subprocess.run([sgdisk, "-v", str(image)], capture_output=True, text=True)
    assert "No problems found" in check.stdout, check.stdout


def test_grown_syslinux_disk_boots(tmp_path, v3, require_tool):
    """A 32 MiB SYSLINUX disk cut to 12 MiB (inside its partition), grown back, booted."""
    for program, package in (("syslinux", "syslinux"), ("mkfs.msdos", "dosfstools"),
                             ("mcopy", "mtools")):
        require_tool(program, package)
    from isoimage import STUB_KERNEL
    mbr = "/usr/lib/syslinux/mbr/mbr.bin"
    if not os.path.isfile(mbr):
        pytest.fail("SYSLINUX's mbr.bin is missing (Debian package syslinux-common)")
    image = tmp_path / "disk.img"
    _sfdisk(require_tool, image, "label: dos\n2048,,6,*\n", 32 * MIB)
    with open(image, "r+b") as f:
        f.write(open(mbr, "rb").read()[:440])
    offset = 2048 * 512
    subprocess.run(["mkfs.msdos", f"--offset={2048}", "-F", "16", str(image),
                    str((32 * MIB - offset) // 1024)], check=True, capture_output=True)
    subprocess.run(["syslinux", "--install", "--offset", str(offset), str(image)], check=True,
                   capture_output=True)
    cfg = tmp_path / "syslinux.cfg"
    cfg.write_text("SERIAL 0 115200\nTIMEOUT 1\nDEFAULT stub\nLABEL stub\n  KERNEL stub\n")
    for src, name in ((cfg, "syslinux.cfg"), (STUB_KERNEL, "stub")):
        subprocess.run(["mcopy", "-o", "-i", f"{image}@@{offset}", str(src), f"::{name}"],
                       check=True, capture_output=True)
    with open(image, "r+b") as f:
        f.truncate(12 * MIB)
    assert "the file is SHORT" in v3("img", "info", str(image)).stdout
    before = image.read_bytes()
    r = v3("img", "grow", str(image))
    assert r.exit_code == 0, r
    assert image.read_bytes()[:len(before)] == before           # no byte changed
    r = v3("run", "--hda", str(image), "--serial", f"file:{tmp_path / 'serial.out'}",
           "--until", STUB_MARKER, "--timeout", "60", "-m", "64")
    assert r.exit_code == 0, r
    assert "SYSLINUX" in (tmp_path / "serial.out").read_text(errors="replace")


def _bad_flag_disk(path):
    sector = bytearray(512)
    sector[0x1BE:0x1CE] = struct.pack("<B3sB3sII", 0x42, b"\0\0\0", 0x83, b"\0\0\0", 2048, 100)
    sector[510:] = b"\x55\xaa"
    path.write_bytes(bytes(sector) + bytes(4096))


def _overlapping_disk(path):
    sector = bytearray(512)
    for i, (start, count) in enumerate(((2048, 4096), (4000, 1000))):
        sector[0x1BE + 16 * i:0x1CE + 16 * i] = struct.pack("<B3sB3sII", 0, b"\0\0\0", 0x83,
                                                            b"\0\0\0", start, count)
    sector[510:] = b"\x55\xaa"
    path.write_bytes(bytes(sector) + bytes(4096))


@pytest.mark.parametrize("make, args, message", [
    (lambda p: p.write_bytes(os.urandom(4096).replace(b"\x55\xaa", b"\0\0")), ("grow",),
     "{p}: no partition table (no 55AAh signature in sector 0)"),
    (lambda p: p.write_bytes(bytes(510) + b"\x55\xaa" + bytes(1024)), ("info",),
     "{p}: the MBR's partition table is empty"),
    (_bad_flag_disk, ("grow",), "{p}: partition 1 has boot flag 0x42 (only 00h or 80h are "
                                "valid): not a partition table"),
    (_overlapping_disk, ("grow",), "{p}: partitions 1 and 2 overlap: the table is inconsistent"),
    (lambda p: p.mkdir(), ("info",), "{p}: is a directory"),
])
def test_bad_images_change_nothing(tmp_path, v3, make, args, message):
    p = tmp_path / "x.img"
    make(p)
    before = _sha(p) if p.is_file() else None
    r = v3("img", *args, str(p))
    assert r.exit_code == 1
    assert r.stderr.strip() == "v3: error: " + message.format(p=p)
    if before is not None:
        assert _sha(p) == before


def test_grow_never_shrinks_and_checks_size(tmp_path, v3, require_tool):
    image = tmp_path / "disk.img"
    _sfdisk(require_tool, image, "label: dos\n,4M,83\n", 16 * MIB)
    before = _sha(image)
    r = v3("img", "grow", str(image), "1M")
    assert r.exit_code == 1
    assert "is less than its partitions need" in r.stderr and "refusing" in r.stderr
    r = v3("img", "grow", str(image), "8M")
    assert r.exit_code == 1 and "never shrinks" in r.stderr
    r = v3("img", "grow", str(image), "lots")
    assert r.exit_code == 1
    assert r.stderr.strip() == ("v3: error: SIZE lots: expected a number of bytes, optionally "
                                "with K, M, G or T")
    assert _sha(image) == before
    assert v3("img", "grow", str(image), "32M").exit_code == 0
    assert os.path.getsize(image) == 32 * MIB


def test_dos_style_table_rounds_to_whole_cylinders(tmp_path, v3):
    """Partition 1 from sector 63 (track-aligned, 16 heads x 63 sectors) ending mid-cylinder:
    the disk is grown to the end of that cylinder."""
    def chs(lba, heads=16, spt=63):
        c, h, s = lba // (heads * spt), (lba // spt) % heads, lba % spt + 1
        return bytes([h, ((c >> 2) & 0xC0) | s, c & 0xFF])
    start, count = 63, 5000
    sector = bytearray(512)
    sector[0x1BE:0x1CE] = (bytes([0x80]) + chs(start) + bytes([0x83]) + chs(start + count - 1)
                           + struct.pack("<II", start, count))
    sector[510:] = b"\x55\xaa"
    image = tmp_path / "dos.img"
    image.write_bytes(bytes(sector) + bytes(511 * 1024))
    r = v3("img", "info", str(image))
    assert "geometry (from the CHS fields): 16 heads, 63 sectors per track" in r.stdout
    assert v3("img", "grow", str(image)).exit_code == 0
    cylinder = 16 * 63
    assert os.path.getsize(image) == -(-(start + count) // cylinder) * cylinder * 512
