"""IDE disk and CD-ROM reads done by tiny guests through the controller's ports (no INT 13h),
checked against sums computed here over seeded random media (tests/guests/ata_read.asm,
tests/guests/atapi_read.asm). Both are boot sectors booted by the built-in BIOS."""
import random
import struct
from pathlib import Path

from vmm.launch import RunOptions, run
from vmm.machine import EXIT_OK

GUESTS = Path(__file__).resolve().parents[1] / "guests"
HD = 512
CD = 2048

# The reads in ata_read.asm's table: label -> (first LBA, sectors).
HEADS, SPT = 16, 63                                # the drive's default CHS translation
ATA_READS = {
    "L": (0x0ABCDE01, 8),                          # READ SECTORS, LBA28 (bits 27:24 in DEVICE)
    "C": ((0x0102 * HEADS + 2) * SPT + 5 - 1, 3),  # READ SECTORS, CHS 0x102/2/5
    "X": (0x10000123, 257),                        # READ SECTORS EXT, LBA48, HOB count 1
}
DISK_SECTORS = 0x10000400                          # 128 GiB and a bit: a sparse file


def fletcher(data, width=4):
    """The guests' sum: s1 += word, s2 += s1 (mod 2^32) over little-endian words."""
    s1 = s2 = 0
    fmt = "<%d%s" % (len(data) // width, "I" if width == 4 else "H")
    for w in struct.unpack(fmt, data):
        s1 = (s1 + w) & 0xFFFFFFFF
        s2 = (s2 + s1) & 0xFFFFFFFF
    return f"{s1:08X} {s2:08X}"


def boot(tmp_path, **media):
    out = tmp_path / "serial.out"
    result, _ = run(RunOptions(serial=f"file:{out}", memory_mb=16, timeout=60, **media))
    return result, out.read_text("latin-1")


def test_ata_identify_lba28_chs_lba48_reads(tmp_path):
    rng = random.Random(20240611)
    disk = tmp_path / "hd.img"
    contents = {}
    with open(disk, "wb") as f:
        f.write((GUESTS / "ata_read.bin").read_bytes())
        for label, (lba, count) in ATA_READS.items():
            contents[label] = rng.randbytes(count * HD)
            f.seek(lba * HD)
            f.write(contents[label])
        f.truncate(DISK_SECTORS * HD)
    result, text = boot(tmp_path, hda=str(disk))
    assert result.status == EXIT_OK and result.reason == "guest reset", (result, text)
    expected = [f"ID {0x0FFFFFFF:08X} {DISK_SECTORS:08X}"]
    for label, (lba, count) in ATA_READS.items():
        expected.append(f"{label} {fletcher(contents[label])} 50 {count:04X}")
    expected.append("Z E10 51 0000")                # beyond the end: ERR, IDNF; DRDY+DSC kept
    expected.append("ATA-DONE")
    assert text.splitlines() == expected
