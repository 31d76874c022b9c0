"""A writer (and a small reader) for "newc" cpio archives, the format of Linux initramfs images.

Format (Linux Documentation/driver-api/early-userspace/buffer-format.rst, "newc" = magic 070701):
each entry is a 110-byte ASCII header of the magic and 13 eight-digit hex fields, the NUL-ended
name, padding to a multiple of 4, the data, padding to a multiple of 4. The archive ends with an
entry named TRAILER!!!.

Device nodes, owners and modes are just header fields, so an archive with /dev/console, root-owned
files and setuid bits is written without root and without mknod. Entries are streamed to any
binary file object (gzip.GzipFile for a compressed initramfs).
"""
import gzip
import os
import stat
from dataclasses import dataclass

MAGIC = b"070701"
TRAILER = "TRAILER!!!"
HEADER_SIZE = 110
# header fields after the magic, in order
FIELDS = ("ino", "mode", "uid", "gid", "nlink", "mtime", "filesize",
          "devmajor", "devminor", "rdevmajor", "rdevminor", "namesize", "check")


def _pad4(n):
    return (4 - n % 4) % 4


@dataclass
class Entry:
    """One archive member as read back by read_archive."""

    name: str
    mode: int
    uid: int
    gid: int
    nlink: int
    mtime: int
    rdevmajor: int
    rdevminor: int
    data: bytes

    @property
    def kind(self):
        return stat.S_IFMT(self.mode)


class CpioWriter:
    """Stream newc entries to `fileobj`; names are archive paths ("dev/console", "/init" ok).

    Parent directories are not implied: add them first (`directory`), as the kernel's unpacker
    creates nothing on its own. `close()` writes the trailer (the file object stays open).
    """

    def __init__(self, fileobj, mtime=0, uid=0, gid=0):
        self._f = fileobj
        self._mtime, self._uid, self._gid = mtime, uid, gid
        self._ino = 0
        self.names = set()

    def _entry(self, name, mode, data=b"", nlink=1, rdev=(0, 0)):
        name = name.strip("/") or "."
        if name in self.names:
            raise ValueError(f"cpio: duplicate entry {name}")
        self.names.add(name)
        self._ino += 1
        self._write(name, mode, data, nlink, rdev, ino=self._ino)

    def _write(self, name, mode, data, nlink, rdev, ino):
        raw = name.encode() + b"\0"
        values = (ino, mode, self._uid, self._gid, nlink, self._mtime, len(data),
                  0, 0, rdev[0], rdev[1], len(raw), 0)
        header = MAGIC + b"".join(b"%08X" % v for v in values)
        self._f.write(header + raw + b"\0" * _pad4(HEADER_SIZE + len(raw)))
        self._f.write(data)
        self._f.write(b"\0" * _pad4(len(data)))

    def directory(self, name, mode=0o755):
        self._entry(name, stat.S_IFDIR | mode, nlink=2)

    def file(self, name, data, mode=0o644):
        """A regular file; `data` is bytes or a host path (read whole)."""
        if not isinstance(data, (bytes, bytearray)):
            with open(data, "rb") as f:
                data = f.read()
        self._entry(name, stat.S_IFREG | mode, bytes(data))

    def symlink(self, name, target):
        self._entry(name, stat.S_IFLNK | 0o777, target.encode())

    def char_device(self, name, major, minor, mode=0o600):
        self._entry(name, stat.S_IFCHR | mode, rdev=(major, minor))

    def block_device(self, name, major, minor, mode=0o600):
        self._entry(name, stat.S_IFBLK | mode, rdev=(major, minor))

    def fifo(self, name, mode=0o644):
        self._entry(name, stat.S_IFIFO | mode)

    def tree(self, src, dest):
        """Copy the host directory `src` to archive path `dest` (symlinks kept as links)."""
        self.ensure_dirs(dest, include_self=True)
        for root, dirs, files in os.walk(src):
            rel = os.path.relpath(root, src)
            base = dest if rel == "." else f"{dest.rstrip('/')}/{rel}"
            for name in sorted(dirs) + sorted(files):
                path = os.path.join(root, name)
                target = f"{base.rstrip('/')}/{name}"
                if os.path.islink(path):
                    self.symlink(target, os.readlink(path))
                elif os.path.isdir(path):
                    self.directory(target, stat.S_IMODE(os.stat(path).st_mode))
                else:
                    self.file(target, path, stat.S_IMODE(os.stat(path).st_mode))
            dirs[:] = [d for d in dirs if not os.path.islink(os.path.join(root, d))]
            dirs.sort()

    def ensure_dirs(self, name, include_self=False):
        """Add the missing parent directories of `name` (and `name` itself if include_self)."""
        parts = name.strip("/").split("/")
        upto = len(parts) if include_self else len(parts) - 1
        for i in range(1, upto + 1):
            path = "/".join(parts[:i])
            if path and path not in self.names:
                self.directory(path)

    def close(self):
        self._write(TRAILER, 0, b"", 1, (0, 0), ino=0)


def write_gzip_archive(path, fill, mtime=0, level=6):
    """Write a gzip'd newc archive to `path`: fill(writer) adds the entries."""
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=mtime,
                                                compresslevel=level) as gz:
        writer = CpioWriter(gz, mtime=mtime)
        fill(writer)
        writer.close()


def read_archive(data):
    """Parse a newc archive (bytes, gzip'd or not) into a list of Entry (trailer excluded)."""
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    entries, pos = [], 0
    while True:
        if data[pos:pos + 6] != MAGIC:
            raise ValueError(f"cpio: bad magic at offset {pos}")
        values = dict(zip(FIELDS, (int(data[pos + 6 + 8 * i:pos + 14 + 8 * i], 16) for i in range(13))))
        name_end = pos + HEADER_SIZE + values["namesize"]
        name = data[pos + HEADER_SIZE:name_end - 1].decode()
        start = name_end + _pad4(HEADER_SIZE + values["namesize"])
        body = data[start:start + values["filesize"]]
        pos = start + values["filesize"] + _pad4(values["filesize"])
        if name == TRAILER:
            return entries
        entries.append(Entry(name, values["mode"], values["uid"], values["gid"], values["nlink"],
                             values["mtime"], values["rdevmajor"], values["rdevminor"], body))
