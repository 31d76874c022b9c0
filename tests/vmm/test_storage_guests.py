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


def make_iso(path, payload):
    """An ISO 9660 image holding `payload` as /DATA.BIN; returns the file's first LBA."""
    import io
    import pycdlib
    iso = pycdlib.PyCdlib()
    iso.new()
    iso.add_fp(io.BytesIO(payload), len(payload), "/DATA.BIN;1")
    iso.write(str(path))
    lba = iso.get_record(iso_path="/DATA.BIN;1").extent_location()
    iso.close()
    return lba


def test_atapi_packet_commands(tmp_path):
    sectors, limit = 5, 1000                        # 10240 bytes in DRQ blocks of at most 1000
    rng = random.Random(20240612)
    cdrom = tmp_path / "cd.iso"
    lba = make_iso(cdrom, rng.randbytes(sectors * CD - 100))
    image = cdrom.read_bytes()
    assert len(image) % CD == 0
    data = image[lba * CD:(lba + sectors) * CD]     # the file, padded to whole sectors
    boot_sector = bytearray((GUESTS / "atapi_read.bin").read_bytes())
    boot_sector[0x1F0:0x1F8] = struct.pack(">IH", lba, sectors) + struct.pack("<H", limit)
    disk = tmp_path / "boot.img"
    disk.write_bytes(bytes(boot_sector).ljust(64 * HD, b"\0"))
    result, text = boot(tmp_path, hda=str(disk), cdrom=str(cdrom), boot="c")
    assert result.status == EXIT_OK and result.reason == "guest reset", (result, text)

    capacity = struct.pack(">II", len(image) // CD - 1, CD)

    def sense(asc):
        return bytes([0x70, 0, 0x05, 0, 0, 0, 0, 10, 0, 0, 0, 0, asc, 0, 0, 0, 0, 0])

    done = "03 50 00"                               # status phase: I/O+C/D, DRDY+DSC, no error
    check = "03 41 50"                              # CHECK CONDITION: ERR, sense key 5 in ERROR
    assert text.splitlines() == [
        "SIG EB14",                                 # packet-device signature
        f"T {done} 0000 {fletcher(b'', 2)}",        # TEST UNIT READY: no data
        f"K {done} 0001 {fletcher(capacity, 2)} {capacity.hex().upper()}",
        f"R {done} {-(-sectors * CD // limit):04X} {fletcher(data, 2)}",
        f"B {check} 0000 {fletcher(b'', 2)}",       # opcode 0xFF
        f"S {done} 0001 {fletcher(sense(0x20), 2)} {sense(0x20)[:14].hex().upper()}",
        f"E {check} 0000 {fletcher(b'', 2)}",       # READ(10) beyond the last sector
        f"S {done} 0001 {fletcher(sense(0x21), 2)} {sense(0x21)[:14].hex().upper()}",
        "ATAPI-DONE",
    ]
