"""build_image: the `v3 build-vm` library call (Palacios' utils/guest_creator/build_vm).

Reads a Palacios XML configuration, takes the `<file>` entries of its first `<files>`
section, writes the re-serialised XML (each taken `<file>` gets index="N") and the files'
contents into one image. The output is written to a temporary file next to the target and
renamed at the end; on any error nothing is left behind. File data is streamed in 1 MiB
chunks; v1 hashes are computed on the way (in worker threads) and patched into the table afterwards.
"""
from __future__ import annotations

import os
import queue
import stat
import struct
import tempfile
import threading
from dataclasses import dataclass, field

from guest_creator import hashing, serialize
from guest_creator.image import CHUNK, ENTRY_SIZE, MAX_FILE_SIZE, SUPPORTED_VERSIONS, encode_header
from guest_creator.xmlconfig import file_refs, parse_file
from v3tools.errors import ConfigError, V3Error


@dataclass
class BuildEntry:
    """A file going into the image. `path` is where it was read from."""

    index: int
    id: str
    filename: str
    path: str
    size: int
    offset: int = 0
    hash: int | None = None


@dataclass
class BuildResult:
    output: str
    version: int
    xml: bytes
    entries: list = field(default_factory=list)
    size: int = 0


def default_output(config) -> str:
    """CONFIG with its extension replaced by .dat (appended if it has none)."""
    root, _ext = os.path.splitext(os.fsdecode(config))
    return root + ".dat"


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")


def collect_entries(doc, config_dir: str) -> list[BuildEntry]:
    """Validate the `<file>` entries and stat their files (ConfigError naming the entry)."""
    entries = []
    seen_ids = {}
    for ref in file_refs(doc):
        where = doc.location(ref.element)
        if ref.id is None:
            raise ConfigError(f"{where}: <file> entry {ref.index} has no id (attribute or <id> child)")
        label = f"<file id=\"{_text(ref.id)}\">"
        if ref.id in seen_ids:
            raise ConfigError(f"{where}: {label} repeats the id of the <file> at {seen_ids[ref.id]}")
        seen_ids[ref.id] = ref.element.where
        if not ref.filename:
            raise ConfigError(f"{where}: {label} has no filename (attribute or <filename> child)")
        path = os.path.join(config_dir, os.fsdecode(ref.filename))
        shown = _text(ref.filename)
        try:
            st = os.stat(path)
        except OSError as exc:
            raise ConfigError(f"{where}: {label}: {shown}: {exc.strerror}") from None
        if stat.S_ISDIR(st.st_mode):
            raise ConfigError(f"{where}: {label}: {shown}: is a directory")
        if not stat.S_ISREG(st.st_mode):
            raise ConfigError(f"{where}: {label}: {shown}: not a regular file")
        if st.st_size > MAX_FILE_SIZE:
            raise ConfigError(f"{where}: {label}: {shown} is {st.st_size} bytes; the image's 32-bit "
                              f"size field holds at most {MAX_FILE_SIZE}")
        if not os.access(path, os.R_OK):
            raise ConfigError(f"{where}: {label}: {shown}: Permission denied")
        entries.append(BuildEntry(ref.index, _text(ref.id), shown, path, st.st_size))
        ref.element.set_attr(b"index", str(ref.index).encode())
    return entries


def build_image(config, output=None, version: int = 1, progress=None) -> BuildResult:
    """Build the image for `config`; returns what was written.

    progress(entry, done, size) is called with done=0 before each file and after each chunk.
    """
    if version not in SUPPORTED_VERSIONS:
        raise ConfigError(f"image version {version}: only versions 0 and 1 are supported")
    config = os.fsdecode(config)
    doc = parse_file(config)
    entries = collect_entries(doc, os.path.dirname(config))
    xml = serialize.to_bytes(doc)
    if len(xml) > 0xFFFFFFFF:
        raise ConfigError(f"{config}: the serialised XML exceeds 4 GiB")
    output = os.fsdecode(output) if output is not None else default_output(config)
    if os.path.isdir(output):
        raise V3Error(f"{output}: output is a directory")

    header = encode_header(xml, [e.size for e in entries], [0] * len(entries), version)
    offset = len(header)
    for entry in entries:
        entry.offset = offset
        offset += entry.size
    result = BuildResult(output, version, xml, entries, offset)

    out_dir = os.path.dirname(os.path.abspath(output))
    try:
        fd, tmp = tempfile.mkstemp(dir=out_dir, prefix="." + os.path.basename(output) + ".", suffix=".tmp")
    except OSError as exc:
        raise V3Error(f"{output}: cannot write the image: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "wb", buffering=0) as out, _Hashers(version == 1) as hashers:
            _write_all(out, header)
            for entry in entries:
                _copy(entry, out, hashers, progress)
            hashers.finish(entries)
            if version == 1:
                table = len(header) - 8 - len(entries) * ENTRY_SIZE[1]
                for entry in entries:
                    out.seek(table + entry.index * ENTRY_SIZE[1] + 16)
                    out.write(struct.pack("<Q", entry.hash))
            umask = os.umask(0)
            os.umask(umask)
            os.fchmod(out.fileno(), 0o666 & ~umask)
        os.replace(tmp, output)
    except OSError as exc:
        _remove(tmp)
        raise V3Error(f"{output}: cannot write the image: {exc.strerror}") from None
    except BaseException:
        _remove(tmp)
        raise
    return result


def _write_all(out, data):
    view = memoryview(data)
    while view:
        view = view[out.write(view):]


def _remove(path):
    try:
        os.unlink(path)
    except OSError:
        pass


class _Hashers:
    """v1 hashing off the copy loop: worker threads (the C helper releases the GIL) hash
    the chunks the copy loop has written, one file per worker, in order. Queues are bounded,
    so memory stays bounded (at most 2 x 8 chunks in flight)."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.threaded = enabled and hashing.FAST and (os.cpu_count() or 1) > 1
        self.states = {}
        self.queues = []
        self.threads = []
        if self.threaded:
            for _ in range(2):
                q = queue.Queue(maxsize=8)
                t = threading.Thread(target=self._run, args=(q,), daemon=True)
                t.start()
                self.queues.append(q)
                self.threads.append(t)

    def _run(self, q):
        while True:
            job = q.get()
            if job is None:
                return
            index, pos, chunk = job
            self.states[index] = hashing.update(self.states.get(index, 0), pos, chunk)

    def add(self, index, pos, chunk):
        if not self.enabled:
            return
        if self.threaded:
            self.queues[index % len(self.queues)].put((index, pos, bytes(chunk)))
        else:
            self.states[index] = hashing.update(self.states.get(index, 0), pos, chunk)

    def _stop(self):
        for q in self.queues:
            q.put(None)
        for t in self.threads:
            t.join()
        self.queues, self.threads = [], []

    def finish(self, entries):
        self._stop()
        for entry in entries:
            entry.hash = self.states.get(entry.index, 0) if self.enabled else None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._stop()


def _copy(entry: BuildEntry, out, hashers: _Hashers, progress):
    """Append the entry's data to `out`, handing each chunk to the hashers."""
    if progress:
        progress(entry, 0, entry.size)
    try:
        src = open(entry.path, "rb", buffering=0)
    except OSError as exc:
        raise ConfigError(f"<file id=\"{entry.id}\">: {entry.filename}: {exc.strerror}") from None
    done = 0
    with src:
        while done < entry.size:
            try:
                chunk = src.read(min(CHUNK, entry.size - done))
            except OSError as exc:
                raise ConfigError(f"<file id=\"{entry.id}\">: {entry.filename}: "
                                  f"read error: {exc.strerror}") from None
            if not chunk:
                raise ConfigError(f"<file id=\"{entry.id}\">: {entry.filename} shrank while "
                                  f"being copied ({done} of {entry.size} bytes)")
            hashers.add(entry.index, done, chunk)
            _write_all(out, chunk)
            done += len(chunk)
            if progress:
                progress(entry, done, entry.size)
