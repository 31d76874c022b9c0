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
from v3tools.paths import refuse_overwrite


@dataclass
class BuildEntry:
    """A file going into the image. `path` is where it was read from."""

    index: int
    id: str | None            # None: a <file> without id (packed, but no device can name it)
    filename: str
    path: str
    size: int
    offset: int = 0
    hash: int | None = None
    where: str = ""           # file:line:col of its <file> element

    @property
    def label(self):
        """How messages name the entry: <file id="x">, or <file> N for one without an id."""
        return f"<file id=\"{self.id}\">" if self.id is not None else f"<file> {self.index} (no id)"


@dataclass
class BuildResult:
    output: str
    version: int
    xml: bytes
    entries: list = field(default_factory=list)
    size: int = 0

    @property
    def notes(self):
        """What is worth saying about an image that was written (one line each)."""
        return [f"{e.where}: <file> {e.index} ({e.filename}) has no id: it is packed, indexed and "
                f"hashed as build_vm does, but no device can name it" for e in self.entries if e.id is None]


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
            # build_vm takes it (its id is ""): packed, indexed and hashed; nothing can name it
            label = f"<file> {ref.index} (no id)"
        else:
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
        entries.append(BuildEntry(ref.index, None if ref.id is None else _text(ref.id), shown, path,
                                  st.st_size, where=where))
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
    label = "-o" if output is not None else "output"
    output = os.fsdecode(output) if output is not None else default_output(config)
    if os.path.isdir(output):
        raise V3Error(f"{output}: output is a directory")
    refuse_overwrite([(label, output)],
                     [("CONFIG", config)] + [(entry.label, entry.path) for entry in entries])

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
        with os.fdopen(fd, "wb", buffering=0) as out, _Hashers(version == 1, entries) as hashers:
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
    """v1 hashing off the copy loop. The hash is a serial recurrence (a few dependent
    operations per byte, slower than copying), so it cannot be split within a file; files are
    independent, though. With the compiled helper and more than one core, worker threads (the
    helper releases the GIL) each hash whole files, reading them on their own while the main
    thread copies: the image takes about max(copy, total hash time / cores). Memory stays
    bounded: one CHUNK per worker. Without threads, the copy loop hashes its own chunks."""

    def __init__(self, enabled: bool, entries=()):
        self.enabled = enabled
        self.threaded = enabled and hashing.FAST and (os.cpu_count() or 1) > 1
        self.states = {}
        self.errors = []
        self.threads = []
        if self.threaded:
            self.todo = queue.Queue()
            for entry in sorted(entries, key=lambda e: -e.size):   # big files first
                self.todo.put(entry)
            for _ in range(min(os.cpu_count() or 1, max(1, len(entries)))):
                t = threading.Thread(target=self._run, daemon=True)
                t.start()
                self.threads.append(t)

    def _run(self):
        while not self.errors:
            try:
                entry = self.todo.get_nowait()
            except queue.Empty:
                return
            try:
                self.states[entry.index] = _hash_file(entry)
            except ConfigError as exc:
                self.errors.append(exc)

    def add(self, index, pos, chunk):
        if self.enabled and not self.threaded:
            self.states[index] = hashing.update(self.states.get(index, 0), pos, chunk)

    def _stop(self):
        for t in self.threads:
            t.join()
        self.threads = []

    def finish(self, entries):
        self._stop()
        if self.errors:
            raise self.errors[0]
        for entry in entries:
            entry.hash = self.states.get(entry.index, 0) if self.enabled else None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.threaded:
            self.errors.append(None)          # tell the workers to stop early
        self._stop()


def _hash_file(entry: BuildEntry) -> int:
    """The v1 hash of the entry's file, read on its own; the file must not change meanwhile."""
    where = f"{entry.label}: {entry.filename}"
    try:
        with open(entry.path, "rb", buffering=0) as src:
            before = os.fstat(src.fileno())
            state, done = 0, 0
            while done < entry.size:
                chunk = src.read(min(CHUNK, entry.size - done))
                if not chunk:
                    raise ConfigError(f"{where} shrank while being read ({done} of "
                                      f"{entry.size} bytes)")
                state = hashing.update(state, done, chunk)
                done += len(chunk)
            after = os.fstat(src.fileno())
    except OSError as exc:
        raise ConfigError(f"{where}: read error: {exc.strerror}") from None
    if (before.st_size, before.st_mtime_ns) != (after.st_size, after.st_mtime_ns) \
            or after.st_size != entry.size:
        raise ConfigError(f"{where} changed while the image was being built")
    return state


def _copy(entry: BuildEntry, out, hashers: _Hashers, progress):
    """Append the entry's data to `out`, handing each chunk to the hashers."""
    if progress:
        progress(entry, 0, entry.size)
    try:
        src = open(entry.path, "rb", buffering=0)
    except OSError as exc:
        raise ConfigError(f"{entry.label}: {entry.filename}: {exc.strerror}") from None
    done = 0
    with src:
        while done < entry.size:
            try:
                chunk = src.read(min(CHUNK, entry.size - done))
            except OSError as exc:
                raise ConfigError(f"{entry.label}: {entry.filename}: "
                                  f"read error: {exc.strerror}") from None
            if not chunk:
                raise ConfigError(f"{entry.label}: {entry.filename} shrank while "
                                  f"being copied ({done} of {entry.size} bytes)")
            hashers.add(entry.index, done, chunk)
            _write_all(out, chunk)
            done += len(chunk)
            if progress:
                progress(entry, done, entry.size)
