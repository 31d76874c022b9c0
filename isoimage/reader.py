"""Reading files back from an ISO (the VMM pulls a guest image out of a hosted ISO this way)."""
import io
import os

import pycdlib

from isoimage import layout
from v3tools.errors import ImageFormatError, V3Error

GUEST_MAGIC = b"v3vee"      # Palacios guest images start with "v3vee" + a 3-byte version


def _open(iso_path):
    if not os.path.isfile(iso_path):
        raise V3Error(f"{iso_path}: no such file")
    iso = pycdlib.PyCdlib()
    try:
        iso.open(os.fspath(iso_path))
    except pycdlib.pycdlibexception.PyCdlibException as exc:
        raise ImageFormatError(f"{iso_path}: not an ISO 9660 image ({exc})") from exc
    return iso


def _lookups(iso, name):
    """pycdlib keyword arguments that may name `name` in this ISO, best first."""
    name = "/" + name.lstrip("/")
    tries = []
    if iso.has_rock_ridge():
        tries.append({"rr_path": name})
    if iso.has_joliet():
        tries.append({"joliet_path": name})
    base = name.rsplit("/", 1)
    stem, _, ext = base[1].upper().partition(".")
    tries.append({"iso_path": f"{base[0].upper()}/{stem}.{ext};1"})
    return tries


def _record(iso, iso_path, name):
    for kwargs in _lookups(iso, name):
        try:
            return iso.get_record(**kwargs), kwargs
        except pycdlib.pycdlibexception.PyCdlibException:
            continue
    raise V3Error(f"{iso_path}: has no file {name}")


def read_file_from_iso(iso_path, name):
    """The bytes of file `name` (e.g. "/initrd.img") in the ISO at `iso_path`."""
    iso = _open(iso_path)
    try:
        _, kwargs = _record(iso, iso_path, name)
        out = io.BytesIO()
        iso.get_file_from_iso_fp(out, **kwargs)
        return out.getvalue()
    finally:
        iso.close()


def file_extent(iso_path, name):
    """(byte offset, length) of file `name` inside the ISO, for reading it without copying."""
    iso = _open(iso_path)
    try:
        record, _ = _record(iso, iso_path, name)
        return record.extent_location() * iso.logical_block_size, record.get_data_length()
    finally:
        iso.close()


def is_hosted_iso(path):
    """True if `path` is an ISO whose /initrd.img is a Palacios guest image (v3 isoimage --guest)."""
    try:
        with open(path, "rb") as f:
            f.seek(16 * 2048 + 1)
            if f.read(5) != b"CD001":
                return False
        offset, length = file_extent(path, "/" + layout.INITRD_NAME)
    except (OSError, V3Error):
        return False
    if length < len(GUEST_MAGIC):
        return False
    with open(path, "rb") as f:
        f.seek(offset)
        return f.read(len(GUEST_MAGIC)) == GUEST_MAGIC
