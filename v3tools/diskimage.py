"""Raw disk images: their partition tables (MBR with logical partitions, GPT) and growing an
image to what its table says it holds (`v3 img info`, `v3 img grow`).

Images cut short are common: OpenWRT's x86 images end where the last partition's data ends, not
where its table entry does, and a guest that writes near the end of that partition then reads
or writes past the file. `grow` extends such a file (sparse, never shrinking, never touching a
byte already there) to the size the table defines: for an MBR, the end of its last partition,
rounded up to a whole cylinder of the CHS geometry its entries imply when the table is DOS-style
(partitions starting on track boundaries; the geometry is solved from every entry's CHS and LBA
fields); for GPT, up to the backup header's LBA, and it then writes the backup partition array
and header there (CRCs computed as the specification says).

Layouts: MBR entries at 0x1BE (status, CHS first, type, CHS last, LBA first, sector count), the
55AAh signature at 0x1FE; extended partitions (05h, 0Fh, 85h) chain EBRs for logical partitions;
GPT (UEFI 2.x, ch. 5): a protective MBR entry of type EEh, the header "EFI PART" at LBA 1, the
partition entry array it points to, and the backup header at its AlternateLBA.
"""
import os
import struct
import zlib
from dataclasses import dataclass, field

from v3tools.errors import V3Error

SECTOR = 512
EXTENDED_TYPES = {0x05, 0x0F, 0x85}
GPT_PROTECTIVE = 0xEE
MAX_LOGICAL = 128


@dataclass
class Partition:
    number: int
    start: int                 # first LBA
    sectors: int
    kind: str                  # "primary", "extended", "logical", "gpt"
    type: str                  # hex MBR type or GPT type GUID
    name: str = ""
    bootable: bool = False

    @property
    def end(self):             # one past the last LBA
        return self.start + self.sectors


@dataclass
class Table:
    scheme: str                # "mbr" or "gpt"
    partitions: list = field(default_factory=list)
    needed: int = 0            # bytes the table says the disk has (rounded)
    geometry: tuple = None     # (heads, sectors per track) implied by MBR CHS fields
    gpt: dict = None           # header fields for GPT


def _read(f, lba, count=1):
    f.seek(lba * SECTOR)
    return f.read(count * SECTOR)


def _chs(raw):
    head, sec_cyl, cyl_lo = raw
    return ((sec_cyl & 0xC0) << 2) | cyl_lo, head, sec_cyl & 0x3F


def _entries(sector):
    for i in range(4):
        e = sector[0x1BE + 16 * i:0x1BE + 16 * (i + 1)]
        status, ptype = e[0], e[4]
        start, count = struct.unpack_from("<II", e, 8)
        yield i, status, ptype, start, count, _chs(e[1:4]), _chs(e[5:8])


def read_table(path):
    """The partition table of the image at `path`; V3Error (one line) if there is none or it
    is inconsistent."""
    try:
        size = os.path.getsize(path)
        f = open(path, "rb")
    except IsADirectoryError:
        raise V3Error(f"{path}: is a directory")
    except OSError as exc:
        raise V3Error(f"{path}: cannot read: {exc.strerror}")
    with f:
        mbr = _read(f, 0)
        if len(mbr) < SECTOR or mbr[510:512] != b"\x55\xAA":
            raise V3Error(f"{path}: no partition table (no 55AAh signature in sector 0)")
        entries = [e for e in _entries(mbr) if e[2] != 0]
        if not entries:
            raise V3Error(f"{path}: the MBR's partition table is empty")
        if any(e[2] == GPT_PROTECTIVE for e in entries):
            return _read_gpt(path, f)
        return _read_mbr(path, f, mbr, entries)


def _read_mbr(path, f, mbr, entries):
    table = Table("mbr")
    pairs = []                                  # (LBA, (C, H, S)) for the geometry
    for i, status, ptype, start, count, first, last in entries:
        if status not in (0x00, 0x80):
            raise V3Error(f"{path}: partition {i + 1} has boot flag {status:#04x} (only 00h or "
                          f"80h are valid): not a partition table")
        if start == 0 or count == 0:
            raise V3Error(f"{path}: partition {i + 1} starts at LBA {start} with {count} "
                          f"sectors: the table is inconsistent")
        kind = "extended" if ptype in EXTENDED_TYPES else "primary"
        table.partitions.append(Partition(i + 1, start, count, kind, f"{ptype:02x}",
                                          bootable=status == 0x80))
        pairs += [(start, first), (start + count - 1, last)]
        if kind == "extended":
            table.partitions.extend(_logical(path, f, start))
    parts = sorted((p for p in table.partitions if p.kind != "extended"), key=lambda p: p.start)
    for a, b in zip(parts, parts[1:]):
        if b.start < a.end:
            raise V3Error(f"{path}: partitions {a.number} and {b.number} overlap: the table is "
                          f"inconsistent")
    end = max(p.end for p in table.partitions)
    table.geometry = _geometry(pairs)
    if table.geometry and all(p.start % table.geometry[1] == 0 for p in table.partitions):
        # a DOS-style table (partitions start on track boundaries): the disk is a whole
        # number of cylinders of that geometry. Tables aligned to 1 MiB are taken as they are.
        cylinder = table.geometry[0] * table.geometry[1]
        end = -(-end // cylinder) * cylinder
    table.needed = end * SECTOR
    return table


def _geometry(pairs):
    """(heads, sectors per track) under which every CHS field matches its LBA, or None.
    CHS fields of 1023 cylinders (or all zero) say "beyond CHS" and are not evidence."""
    usable = [(lba, chs) for lba, chs in pairs if chs[2] and chs[0] < 1023]
    if not usable:
        return None
    for spt in range(63, 0, -1):
        for heads in (255, 254, 240, 128, 64, 32, 16) + tuple(range(1, 256)):
            if all((c * heads + h) * spt + s - 1 == lba and h < heads and s <= spt
                   for lba, (c, h, s) in usable):
                return heads, spt
    return None


def _logical(path, f, ext_start):
    out, ebr_lba, number = [], ext_start, 5
    while ebr_lba and len(out) < MAX_LOGICAL:
        ebr = _read(f, ebr_lba)
        if len(ebr) < SECTOR or ebr[510:512] != b"\x55\xAA":
            raise V3Error(f"{path}: the extended partition's EBR at LBA {ebr_lba} has no 55AAh "
                          f"signature (beyond the end of the file?)")
        ents = list(_entries(ebr))
        _, _, ptype, start, count, _, _ = ents[0]
        if ptype and count:
            out.append(Partition(number, ebr_lba + start, count, "logical", f"{ptype:02x}"))
            number += 1
        nxt = ents[1]
        ebr_lba = ext_start + nxt[3] if nxt[2] in EXTENDED_TYPES and nxt[4] else 0
    return out


def _guid(raw):
    a, b, c = struct.unpack_from("<IHH", raw)
    return f"{a:08X}-{b:04X}-{c:04X}-{raw[8:10].hex().upper()}-{raw[10:16].hex().upper()}"


def _read_gpt(path, f):
    hdr = _read(f, 1)
    if len(hdr) < 92 or hdr[:8] != b"EFI PART":
        raise V3Error(f"{path}: a protective MBR but no GPT header at LBA 1")
    hsize, crc = struct.unpack_from("<II", hdr, 12)
    check = bytearray(hdr[:hsize])
    struct.pack_into("<I", check, 16, 0)
    if hsize < 92 or hsize > SECTOR or zlib.crc32(check) != crc:
        raise V3Error(f"{path}: the GPT header's CRC does not match: the table is inconsistent")
    current, alternate, first_usable, last_usable = struct.unpack_from("<QQQQ", hdr, 24)
    entries_lba, count, esize, entries_crc = struct.unpack_from("<QIII", hdr, 72)
    if esize < 128 or count > 4096:
        raise V3Error(f"{path}: GPT entries of {esize} bytes x {count}: inconsistent")
    raw = _read(f, entries_lba, -(-count * esize // SECTOR))[:count * esize]
    if len(raw) < count * esize or zlib.crc32(raw) != entries_crc:
        raise V3Error(f"{path}: the GPT partition array's CRC does not match: the table is "
                      f"inconsistent")
    table = Table("gpt", gpt={"header": bytes(hdr[:hsize]), "entries": raw,
                              "alternate": alternate, "entries_lba": entries_lba,
                              "count": count, "esize": esize, "last_usable": last_usable})
    for i in range(count):
        e = raw[i * esize:(i + 1) * esize]
        if e[:16] == bytes(16):
            continue
        first, last = struct.unpack_from("<QQ", e, 32)
        name = e[56:128].decode("utf-16-le", "replace").rstrip("\0")
        if last < first or first < first_usable or last > last_usable:
            raise V3Error(f"{path}: GPT partition {i + 1} ({first}-{last}) lies outside the "
                          f"usable LBAs {first_usable}-{last_usable}: inconsistent")
        table.partitions.append(Partition(i + 1, first, last - first + 1, "gpt", _guid(e),
                                          name=name))
    table.needed = (alternate + 1) * SECTOR
    return table


def parse_size(text):
    """'64M', '1G', '2GiB', '123456' (bytes) -> bytes; V3Error otherwise."""
    import re
    m = re.fullmatch(r"(\d+)\s*([KMGT]?)(?:I?B)?", text.strip().upper())
    if m is None:
        raise V3Error(f"SIZE {text}: expected a number of bytes, optionally with K, M, G or T")
    value = int(m.group(1)) << {"": 0, "K": 10, "M": 20, "G": 30, "T": 40}[m.group(2)]
    if value <= 0:
        raise V3Error(f"SIZE {text}: must be above 0")
    return value


def grow(path, size=None):
    """Extend the image at `path` to `size` bytes, or (None) to what its partition table
    needs. Never shrinks and never changes a byte that is there; for GPT, writes the backup
    header and partition array at the new end. Returns (old size, new size, table)."""
    table = read_table(path)
    old = os.path.getsize(path)
    target = table.needed if size is None else size
    if size is not None and size < table.needed:
        raise V3Error(f"{path}: {size} bytes is less than its partitions need "
                      f"({table.needed}); refusing")
    if target < old:
        raise V3Error(f"{path}: is {old} bytes, more than {target}; v3 img grow never shrinks "
                      f"an image")
    if target % SECTOR:
        raise V3Error(f"{path}: {target} bytes is not a whole number of 512-byte sectors")
    if target == old:
        return old, old, table
    try:
        with open(path, "r+b") as f:
            f.truncate(target)                  # grows: the new bytes read as zeros
            if table.scheme == "gpt":
                _write_backup_gpt(f, table, target)
    except OSError as exc:
        raise V3Error(f"{path}: cannot grow: {exc.strerror}")
    return old, target, table


def _write_backup_gpt(f, table, size):
    g = table.gpt
    alt = g["alternate"]
    if (alt + 1) * SECTOR > size:
        return
    entry_sectors = -(-g["count"] * g["esize"] // SECTOR)
    backup_entries = alt - entry_sectors
    f.seek(alt * SECTOR)
    if f.read(8) == b"EFI PART":
        return                                  # the backup is there already
    hdr = bytearray(g["header"])
    current = struct.unpack_from("<Q", hdr, 24)[0]
    struct.pack_into("<QQ", hdr, 24, alt, current)      # MyLBA, AlternateLBA swapped
    struct.pack_into("<Q", hdr, 72, backup_entries)
    struct.pack_into("<I", hdr, 16, 0)
    struct.pack_into("<I", hdr, 16, zlib.crc32(hdr))
    f.seek(backup_entries * SECTOR)
    f.write(g["entries"].ljust(entry_sectors * SECTOR, b"\0"))
    f.seek(alt * SECTOR)
    f.write(bytes(hdr).ljust(SECTOR, b"\0"))


def describe(path):
    """(lines, table) for `v3 img info`."""
    table = read_table(path)
    size = os.path.getsize(path)
    lines = [f"{path}: {size} bytes ({size / (1 << 20):.1f} MiB), "
             f"{'GPT' if table.scheme == 'gpt' else 'MBR'} partition table"]
    if table.geometry:
        lines.append(f"geometry (from the CHS fields): {table.geometry[0]} heads, "
                     f"{table.geometry[1]} sectors per track")
    for p in table.partitions:
        extra = f" name {p.name!r}" if p.name else ""
        boot = " bootable" if p.bootable else ""
        lines.append(f"  {p.number:3d} {p.kind:9s} type {p.type}  LBA {p.start}-{p.end - 1} "
                     f"({p.sectors * SECTOR / (1 << 20):.1f} MiB){boot}{extra}")
    if size < table.needed:
        lines.append(f"the file is SHORT: the table needs {table.needed} bytes, "
                     f"{table.needed - size} more (v3 img grow {path})")
    else:
        lines.append(f"the file holds everything its table needs ({table.needed} bytes)")
    return lines, table
