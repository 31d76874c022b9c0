"""Block media behind the IDE drives and the BIOS disk services.

A `Medium` is an array of fixed-size sectors: `read(lba, count) -> bytes`, `write(lba, data)`.
`BytesMedium` serves a guest-image file (RAMDISK; writes stay in memory), `FileMedium` a host
file (FILEDISK, `--hda`, `--cdrom`, `--fda`), writable unless opened read-only. The board keeps
a list of `Drive`s (what is attached where) that the BIOS uses to detect and boot drives.
"""
import os
from dataclasses import dataclass

from v3tools.errors import V3Error, VMStop

CD_SECTOR = 2048
HD_SECTOR = 512


class MediumError(VMStop):
    pass


class Medium:
    sector_size = HD_SECTOR
    writable = False
    name = "?"

    @property
    def num_sectors(self):
        return self.size // self.sector_size

    def _check(self, lba, count):
        if lba < 0 or count < 0 or lba + count > self.num_sectors:
            raise MediumError(f"{self.name}: access to sectors {lba}..{lba + count - 1} beyond the "
                              f"end of the medium ({self.num_sectors} sectors)")

    def read_bytes(self, offset, length):
        raise NotImplementedError

    def write_bytes(self, offset, data):
        raise NotImplementedError

    def read(self, lba, count=1):
        self._check(lba, count)
        return self.read_bytes(lba * self.sector_size, count * self.sector_size)

    def write(self, lba, data):
        if not self.writable:
            raise MediumError(f"{self.name}: write to a read-only medium")
        if len(data) % self.sector_size:
            raise MediumError(f"{self.name}: a write of {len(data)} bytes is not a whole number "
                              f"of {self.sector_size}-byte sectors")
        count = len(data) // self.sector_size
        self._check(lba, count)
        self.write_bytes(lba * self.sector_size, data)


class BytesMedium(Medium):
    """A medium over bytes (a file of the guest image). The last partial sector reads as zeros."""

    def __init__(self, data, sector_size=HD_SECTOR, name="ramdisk", writable=True):
        self.data = bytearray(data)
        pad = (-len(self.data)) % sector_size
        self.data += bytes(pad)
        self.size = len(self.data)
        self.sector_size = sector_size
        self.name = name
        self.writable = writable

    def read_bytes(self, offset, length):
        return bytes(self.data[offset:offset + length])

    def write_bytes(self, offset, data):
        self.data[offset:offset + len(data)] = data


class FileMedium(Medium):
    """A host file. With `snapshot` (QEMU's -snapshot) the file is only read: guest writes go
    to a temporary overlay (an unlinked file, by sector) that vanishes with the run."""

    def __init__(self, path, sector_size=HD_SECTOR, writable=False, snapshot=False):
        self.name = str(path)
        self.sector_size = sector_size
        self.writable = writable
        self.snapshot = snapshot
        self.overlay = None                # the overlay's descriptor, made at the first write
        self.dirty = set()                 # sectors that live in the overlay
        try:
            self.fd = os.open(path, os.O_RDWR if writable and not snapshot else os.O_RDONLY)
        except OSError as exc:
            raise V3Error(f"{path}: cannot open: {exc.strerror}")
        self.size = os.fstat(self.fd).st_size
        if self.size == 0:
            os.close(self.fd)
            self.fd = None
            raise V3Error(f"{path}: empty medium")

    def read_bytes(self, offset, length):
        data = os.pread(self.fd, length, offset)
        if len(data) < length:       # a trailing partial sector reads as zeros
            data += bytes(length - len(data))
        if self.dirty:
            ss = self.sector_size
            first, last = offset // ss, (offset + length - 1) // ss
            if any(n in self.dirty for n in range(first, last + 1)):
                data = bytearray(data)
                for n in range(first, last + 1):
                    if n in self.dirty:
                        lo = max(n * ss, offset)
                        hi = min((n + 1) * ss, offset + length)
                        data[lo - offset:hi - offset] = os.pread(self.overlay, hi - lo, lo)
                data = bytes(data)
        return data

    def write_bytes(self, offset, data):
        if not self.snapshot:
            os.pwrite(self.fd, data, offset)
            return
        if self.overlay is None:
            import tempfile
            try:
                fd, tmp = tempfile.mkstemp(prefix="v3-snapshot-")
            except OSError as exc:
                raise MediumError(f"{self.name}: -snapshot: cannot create the overlay in "
                                  f"{tempfile.gettempdir()}: {exc.strerror}")
            os.unlink(tmp)                   # gone with the descriptor, whatever happens
            self.overlay = fd
        os.pwrite(self.overlay, data, offset)     # whole sectors (Medium.write checks)
        ss = self.sector_size
        self.dirty.update(range(offset // ss, (offset + len(data)) // ss))

    @property
    def num_sectors(self):
        return -(-self.size // self.sector_size)

    def close(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
        if self.overlay is not None:
            os.close(self.overlay)
            self.overlay = None


@dataclass
class Drive:
    kind: str            # "cdrom", "disk" or "floppy"
    medium: Medium
    channel: int = 0     # IDE channel (0 primary, 1 secondary); floppies: unit number
    position: int = 0    # 0 master, 1 slave
    owner: str = ""      # the device id that attached it
