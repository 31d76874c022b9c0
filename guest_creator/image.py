"""The guest image (.dat) format: constants, header encoding, and the validating reader.

Layout (little-endian, no padding): cookie b"v3vee" + 3-byte big-endian version (v0: the 8
bytes b"v3vee\\0\\0\\0"); u32 XML length; XML; 8 zero bytes; u64 file count; per file u32 index,
u32 size, u64 absolute offset (+ u64 hash in v1); 8 zero bytes; file data.

The reader is the loader API the VMM uses too: `open_image(path)` for a file,
`open_image_bytes(data)` for an image held in memory (e.g. read out of an ISO). It never
trusts a length from the header before checking it against the real size, and every defect
is an ImageFormatError with one line of explanation.
"""
from __future__ import annotations

import io
import os
import struct
from dataclasses import dataclass

from guest_creator import hashing
from guest_creator.xmlconfig import file_refs, parse_bytes
from v3tools.errors import ConfigError, ImageFormatError

MAGIC = b"v3vee"
SUPPORTED_VERSIONS = (0, 1)
ENTRY_SIZE = {0: 16, 1: 24}
MAX_FILE_SIZE = 0xFFFFFFFF  # the table's size field is 32 bits
CHUNK = 1 << 20


def cookie(version: int) -> bytes:
    return MAGIC + version.to_bytes(3, "big")


def header_size(xml_len: int, count: int, version: int) -> int:
    """Bytes before the first file's data."""
    return 8 + 4 + xml_len + 8 + 8 + count * ENTRY_SIZE[version] + 8


def encode_header(xml: bytes, sizes, hashes, version: int) -> bytes:
    """Everything up to the data: `sizes` per file, `hashes` per file (ignored for v0)."""
    count = len(sizes)
    offset = header_size(len(xml), count, version)
    parts = [cookie(version), struct.pack("<I", len(xml)), xml, bytes(8), struct.pack("<Q", count)]
    for index, size in enumerate(sizes):
        if version == 0:
            parts.append(struct.pack("<IIQ", index, size, offset))
        else:
            parts.append(struct.pack("<IIQQ", index, size, offset, hashes[index]))
        offset += size
    parts.append(bytes(8))
    return b"".join(parts)


# --- reader -----------------------------------------------------------------------------------
@dataclass
class ImageEntry:
    """One file of an image. `id`/`filename` come from the embedded XML's <file index=N>."""

    index: int
    size: int
    offset: int
    hash: int | None  # None for v0
    id: str | None = None
    filename: str | None = None
    verified: bool | None = None  # None: not checked (v0, or verify not run yet)


class GuestImage:
    """A validated image: `.version`, `.xml` (bytes), `.xml_text`, `.files`, `.read(entry)`."""

    def __init__(self, source, size: int, name: str, owns: bool):
        self._src = source  # a binary file object positioned anywhere
        self._size = size
        self.name = name
        self._owns = owns
        self.version = 0
        self.xml = b""
        self.files: list[ImageEntry] = []
        self.config = None  # the parsed embedded XML (xmlconfig.Document) or None
        self.data_offset = 0

    # -- context manager / lifetime
    def close(self):
        if self._owns and self._src is not None:
            self._src.close()
        self._src = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @property
    def size(self):
        return self._size

    @property
    def xml_text(self) -> str:
        return self.xml.decode("utf-8", "replace")

    def _fail(self, message):
        return ImageFormatError(f"{self.name}: {message}")

    def _read_at(self, offset: int, length: int) -> bytes:
        if self._src is None:
            raise ImageFormatError(f"{self.name}: image is closed")
        if offset + length > self._size:
            raise self._fail(f"truncated: needs {offset + length} bytes, has {self._size}")
        self._src.seek(offset)
        data = self._src.read(length)
        if len(data) != length:
            raise self._fail(f"truncated: short read at offset {offset}")
        return data

    # -- parsing
    def _parse(self):
        head = self._read_at(0, min(12, self._size))
        if head[:5] != MAGIC[:len(head[:5])]:
            raise self._fail("not a guest image (no v3vee cookie)")
        if len(head) < 12:
            raise self._fail(f"truncated: {self._size} bytes, shorter than the 12-byte header")
        self.version = int.from_bytes(head[5:8], "big")
        if self.version not in SUPPORTED_VERSIONS:
            raise self._fail(f"unsupported image version {self.version} (this v3 reads 0 and 1)")
        (xml_len,) = struct.unpack_from("<I", head, 8)
        pos = 12
        if pos + xml_len + 16 > self._size:
            raise self._fail(f"truncated or corrupt: XML length {xml_len} runs past the end "
                             f"of the {self._size}-byte image")
        self.xml = self._read_at(pos, xml_len)
        pos += xml_len
        pad, count = struct.unpack("<8sQ", self._read_at(pos, 16))
        if pad != bytes(8):
            raise self._fail(f"corrupt: padding after the XML at offset {pos} is not zero")
        pos += 16
        esize = ENTRY_SIZE[self.version]
        room = (self._size - pos - 8) // esize if self._size >= pos + 8 else -1
        if count > max(room, 0) or room < 0:
            raise self._fail(f"corrupt: file count {count} does not fit in the "
                             f"{self._size}-byte image (room for at most {max(room, 0)})")
        table = self._read_at(pos, count * esize + 8)
        if table[-8:] != bytes(8):
            raise self._fail(f"corrupt: padding after the file table at offset "
                             f"{pos + count * esize} is not zero")
        self.data_offset = pos + count * esize + 8
        for i in range(count):
            if self.version == 0:
                index, size, offset = struct.unpack_from("<IIQ", table, i * esize)
                digest = None
            else:
                index, size, offset, digest = struct.unpack_from("<IIQQ", table, i * esize)
            if index != i:
                raise self._fail(f"corrupt: table entry {i} has index {index}")
            if offset < self.data_offset or offset + size > self._size:
                raise self._fail(f"corrupt: file {i} ({size} bytes at offset {offset}) lies "
                                 f"outside the data area {self.data_offset}..{self._size}")
            self.files.append(ImageEntry(i, size, offset, digest))
        self._attach_names()

    def _attach_names(self):
        try:
            doc = parse_bytes(self.xml, f"{self.name} (embedded XML)")
            refs = file_refs(doc)
        except ConfigError as exc:
            raise ImageFormatError(f"corrupt: {exc}") from None
        self.config = doc
        by_index = {}
        for ref in refs:
            raw = ref.element.attr(b"index")
            try:
                by_index.setdefault(int(raw), ref)
            except (TypeError, ValueError):
                continue
        for entry in self.files:
            ref = by_index.get(entry.index)
            if ref is not None:
                entry.id = None if ref.id is None else ref.id.decode("utf-8", "replace")
                entry.filename = None if ref.filename is None else ref.filename.decode("utf-8", "replace")

    # -- data access
    def chunks(self, entry: ImageEntry, chunk: int = CHUNK):
        """The entry's bytes in chunks (bounded memory)."""
        done = 0
        while done < entry.size:
            n = min(chunk, entry.size - done)
            yield self._read_at(entry.offset + done, n)
            done += n

    def read(self, entry: ImageEntry) -> bytes:
        return self._read_at(entry.offset, entry.size)

    def entry(self, file_id: str) -> ImageEntry:
        for entry in self.files:
            if entry.id == file_id:
                return entry
        raise ImageFormatError(f"{self.name}: no file with id {file_id!r}")

    def read_by_id(self, file_id: str) -> bytes:
        return self.read(self.entry(file_id))

    def compute_hash(self, entry: ImageEntry) -> int:
        hasher = hashing.Hasher()
        for block in self.chunks(entry):
            hasher.update(block)
        return hasher.value

    def verify(self, progress=None) -> list[ImageEntry]:
        """Check every v1 hash; fills `.verified`; returns the entries that do not match."""
        bad = []
        if self.version == 0:
            return bad
        for entry in self.files:
            entry.verified = self.compute_hash(entry) == entry.hash
            if not entry.verified:
                bad.append(entry)
            if progress:
                progress(entry)
        return bad


def _verify_or_raise(image: GuestImage):
    bad = image.verify()
    if bad:
        first = bad[0]
        what = f"file {first.index}" + (f" (id {first.id!r})" if first.id is not None else "")
        more = f" and {len(bad) - 1} more" if len(bad) > 1 else ""
        raise ImageFormatError(f"{image.name}: hash mismatch in {what}{more}: the image is corrupted")


def open_image(path, verify: bool = True) -> GuestImage:
    """Open and validate an image file; with verify, check every v1 hash (streamed)."""
    name = os.fsdecode(path)
    try:
        fh = open(path, "rb")
    except OSError as exc:
        raise ImageFormatError(f"{name}: cannot open the image: {exc.strerror}") from None
    try:
        size = os.fstat(fh.fileno()).st_size
        if not os.path.isfile(path):
            raise ImageFormatError(f"{name}: not a regular file")
        image = GuestImage(fh, size, name, owns=True)
        image._parse()
        if verify:
            _verify_or_raise(image)
    except BaseException:
        fh.close()
        raise
    return image


def open_image_bytes(data, verify: bool = True, name: str = "<memory>") -> GuestImage:
    """Open and validate an image held in memory (bytes, bytearray or memoryview)."""
    buf = io.BytesIO(bytes(data))
    image = GuestImage(buf, len(buf.getbuffer()), name, owns=True)
    image._parse()
    if verify:
        _verify_or_raise(image)
    return image
