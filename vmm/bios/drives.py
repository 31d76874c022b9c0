"""The BIOS's view of the drives: drive numbers, geometry, and 512-byte views into CD images.

`BiosDisk` is what INT 13h serves: a medium (or a window of one) with a sector size, a sector
count and, for floppies and hard disks, a CHS geometry. Floppies get the standard geometry of
their size; hard disks get the geometry their MBR's partition table implies, else the usual
LBA-assisted translation (63 sectors per track, 16-255 heads).
"""
from dataclasses import dataclass

from vmm.media import Medium

# size in 512-byte sectors -> (cylinders, heads, sectors/track, INT 13h AH=08h drive type)
FLOPPY_FORMATS = (
    (720, (40, 2, 9, 1)),      # 360 KiB 5.25"
    (1440, (80, 2, 9, 3)),     # 720 KiB 3.5"
    (2400, (80, 2, 15, 2)),    # 1.2 MiB 5.25"
    (2880, (80, 2, 18, 4)),    # 1.44 MiB 3.5"
    (5760, (80, 2, 36, 6)),    # 2.88 MiB 3.5"
)
# El Torito boot media type -> floppy size in sectors
ELTORITO_FLOPPY = {1: 2400, 2: 2880, 3: 5760}


class ImageWindow(Medium):
    """512-byte sectors of an image stored inside a CD (El Torito emulation)."""

    def __init__(self, cd, rba, num_sectors, name):
        self.cd = cd
        self.base = rba * cd.sector_size
        self.sector_size = 512
        self.size = num_sectors * 512
        self.name = name
        self.writable = cd.writable

    def read_bytes(self, offset, length):
        return self.cd.read_bytes(self.base + offset, length)

    def write_bytes(self, offset, data):
        self.cd.write_bytes(self.base + offset, data)


@dataclass
class BiosDisk:
    number: int             # INT 13h drive number (DL)
    kind: str               # "floppy", "disk" or "cdrom"
    medium: Medium
    cylinders: int = 0
    heads: int = 0
    spt: int = 0
    floppy_type: int = 0
    emulated: bool = False  # an El Torito emulated drive (image inside a CD)
    channel: int = 0        # IDE channel and position, for EDD 3.0 device paths
    position: int = 0

    @property
    def sector_size(self):
        return self.medium.sector_size

    @property
    def sectors(self):
        return self.medium.num_sectors

    @property
    def writable(self):
        return self.medium.writable and self.kind != "cdrom"

    @property
    def has_chs(self):
        return self.kind != "cdrom"

    def chs_to_lba(self, c, h, s):
        """None when outside the geometry (INT 13h answers 'sector not found')."""
        if s < 1 or s > self.spt or h >= self.heads or c >= self.cylinders:
            return None
        return (c * self.heads + h) * self.spt + s - 1

    def describe(self):
        geom = f" C/H/S {self.cylinders}/{self.heads}/{self.spt}" if self.has_chs else ""
        emu = " (El Torito emulation)" if self.emulated else ""
        return (f"{self.number:02X}h {self.kind} {self.medium.name}: {self.sectors} x "
                f"{self.sector_size} B{geom}{emu}")


def floppy_disk(number, medium, emulated=False):
    sectors = medium.num_sectors
    for size, (c, h, s, t) in FLOPPY_FORMATS:
        if sectors <= size:
            return BiosDisk(number, "floppy", medium, c, h, s, t, emulated)
    c, h, s, t = FLOPPY_FORMATS[-1][1]
    return BiosDisk(number, "floppy", medium, sectors // (h * s), h, s, t, emulated)


def hard_disk(number, medium, emulated=False, channel=0, position=0):
    total = medium.num_sectors
    heads, spt = _geometry_from_mbr(medium.read(0, 1)) or _lba_assisted(total)
    cylinders = max(1, min(total // (heads * spt), 65535))
    return BiosDisk(number, "disk", medium, cylinders, heads, spt, 0, emulated, channel, position)


def cdrom_disk(number, medium, channel=0, position=0):
    return BiosDisk(number, "cdrom", medium, channel=channel, position=position)


def _geometry_from_mbr(mbr):
    """(heads, spt) from the end CHS of the partition entries, as partitioners wrote them."""
    if len(mbr) < 512 or mbr[510:512] != b"\x55\xAA":
        return None
    for i in range(4):
        e = mbr[446 + 16 * i:462 + 16 * i]
        if e[4] == 0:                       # unused entry
            continue
        end_head, end_sector = e[5], e[6] & 0x3F
        if end_sector and e[0] in (0, 0x80):
            return end_head + 1, end_sector
    return None


def _lba_assisted(total):
    if total <= 1024 * 16 * 63:
        return 16, 63
    for heads in (32, 64, 128):
        if total <= 1024 * heads * 63:
            return heads, 63
    return 255, 63
