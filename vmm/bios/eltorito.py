"""Booting a CD: the El Torito boot catalog ("El Torito" Bootable CD-ROM Format Specification
1.0, Phoenix/IBM 1995), with no-emulation, floppy-emulation and hard-disk-emulation images.

Only the initial/default entry of the catalog is used (the x86 entry that BIOSes boot).
"""
from dataclasses import dataclass

from vmm.bios.drives import ELTORITO_FLOPPY, ImageWindow, floppy_disk, hard_disk

BOOT_RECORD_SECTOR = 17
EL_TORITO_ID = b"EL TORITO SPECIFICATION"
ISO_ID = b"CD001"
BOOTABLE = 0x88
NO_EMULATION, HARD_DISK_EMULATION = 0, 4
DEFAULT_LOAD_SEG = 0x07C0
BASE_MEMORY_END = 0x9FC00
MEDIA_NAMES = {0: "no emulation", 1: "1.2 MB floppy", 2: "1.44 MB floppy",
               3: "2.88 MB floppy", 4: "hard disk"}


class NotBootable(Exception):
    """Why a CD cannot be booted (collected into the 'no bootable device' message)."""


@dataclass
class Emulation:
    """The state INT 13h AX=4B01h reports (the specification packet)."""
    media_type: int
    drive: int
    rba: int
    load_seg: int
    sector_count: int
    cd: object = None               # the BiosDisk of the CD drive
    disk: object = None             # the emulated BiosDisk, or None (no emulation)

    def spec_packet(self):
        p = bytearray(0x13)
        p[0] = 0x13
        p[1] = self.media_type
        p[2] = self.drive
        p[3] = self.cd.channel if self.cd is not None else 0   # controller index
        p[4:8] = self.rba.to_bytes(4, "little")
        p[8:10] = (self.cd.position if self.cd is not None else 0).to_bytes(2, "little")
        p[0x0C:0x0E] = self.load_seg.to_bytes(2, "little")
        p[0x0E:0x10] = self.sector_count.to_bytes(2, "little")
        if self.disk is not None:
            max_cyl = min(self.disk.cylinders - 1, 1023)
            p[0x10] = max_cyl & 0xFF
            p[0x11] = (max_cyl >> 2 & 0xC0) | self.disk.spt
            p[0x12] = self.disk.heads - 1
        return bytes(p)


@dataclass
class BootEntry:
    media_type: int
    load_seg: int
    sector_count: int
    rba: int


def read_catalog(medium):
    """The initial/default entry of the CD's boot catalog, or NotBootable(reason)."""
    if medium.sector_size != 2048:
        raise NotBootable(f"sector size {medium.sector_size}, not 2048")
    if medium.num_sectors <= BOOT_RECORD_SECTOR:
        raise NotBootable("too small to hold an ISO 9660 volume")
    brvd = medium.read(BOOT_RECORD_SECTOR, 1)
    if brvd[0] != 0 or brvd[1:6] != ISO_ID or brvd[7:39].rstrip(b"\0") != EL_TORITO_ID:
        raise NotBootable("no El Torito boot record volume descriptor at sector 17")
    catalog_lba = int.from_bytes(brvd[0x47:0x4B], "little")
    if catalog_lba >= medium.num_sectors:
        raise NotBootable(f"boot catalog sector {catalog_lba} beyond the end of the CD")
    cat = medium.read(catalog_lba, 1)
    validation = cat[0:32]
    if validation[0] != 0x01 or validation[0x1E:0x20] != b"\x55\xAA":
        raise NotBootable("boot catalog has no validation entry")
    if sum(int.from_bytes(validation[i:i + 2], "little") for i in range(0, 32, 2)) & 0xFFFF:
        raise NotBootable("boot catalog validation entry checksum is wrong")
    entry = cat[32:64]
    if entry[0] != BOOTABLE:
        raise NotBootable("initial/default boot entry is not marked bootable")
    media = entry[1] & 0x0F
    if media not in MEDIA_NAMES:
        raise NotBootable(f"initial/default entry has unknown boot media type {media}")
    return BootEntry(media_type=media,
                     load_seg=int.from_bytes(entry[2:4], "little") or DEFAULT_LOAD_SEG,
                     sector_count=int.from_bytes(entry[6:8], "little"),
                     rba=int.from_bytes(entry[8:12], "little"))


def prepare_boot(disks, cd):
    """Set up the boot from CD `cd` (a BiosDisk): returns (load_seg, image bytes, boot drive).
    Installs the emulated drive in `disks` (DiskServices) and records the emulation state."""
    entry = read_catalog(cd.medium)
    if entry.rba >= cd.sectors:
        raise NotBootable(f"boot image at sector {entry.rba} beyond the end of the CD")
    if entry.media_type == NO_EMULATION:
        count = entry.sector_count or 1      # 512-byte virtual sectors
        n_cd = -(-count * 512 // 2048)
        if entry.rba + n_cd > cd.sectors:
            raise NotBootable("no-emulation boot image extends beyond the end of the CD")
        image = cd.medium.read(entry.rba, n_cd)[:count * 512]
        disks.emulation = Emulation(0, cd.number, entry.rba, entry.load_seg, count, cd)
        return entry.load_seg, image, cd.number
    if entry.media_type == HARD_DISK_EMULATION:
        window = ImageWindow(cd.medium, entry.rba, (cd.sectors - entry.rba) * 4,
                             f"{cd.medium.name}[hd image at {entry.rba}]")
        # a hard-disk image is as large as its partition table says
        window.size = min(window.size, _image_sectors(window) * 512)
        emulated = hard_disk(0x80, window, emulated=True)
    else:
        sectors = ELTORITO_FLOPPY[entry.media_type]
        if entry.rba + sectors // 4 > cd.sectors:
            raise NotBootable(f"{MEDIA_NAMES[entry.media_type]} image extends beyond the end "
                              "of the CD")
        window = ImageWindow(cd.medium, entry.rba, sectors,
                             f"{cd.medium.name}[floppy image at {entry.rba}]")
        emulated = floppy_disk(0x00, window, emulated=True)
    disks.install(emulated)
    count = entry.sector_count or 1
    if (entry.load_seg << 4) + count * 512 > BASE_MEMORY_END:
        count = 1       # some mastering tools store the image size here: load the boot sector
    disks.emulation = Emulation(entry.media_type, emulated.number, entry.rba, entry.load_seg,
                                count, cd, emulated)
    return entry.load_seg, emulated.medium.read(0, count), emulated.number


def _image_sectors(window):
    """End of the last partition of an emulated hard-disk image (its MBR), at least 1."""
    mbr = window.read(0, 1)
    end = 1
    for i in range(4):
        e = mbr[446 + 16 * i:462 + 16 * i]
        if e[4]:
            end = max(end, int.from_bytes(e[8:12], "little") + int.from_bytes(e[12:16], "little"))
    return end if end > 1 else window.num_sectors
