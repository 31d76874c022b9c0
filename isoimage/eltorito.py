"""Writing a bootable CD image with pycdlib: ISO 9660 + Joliet + Rock Ridge + El Torito.

The boot entry is a no-emulation one (El Torito 1.0, section 2.2 "no emulation"): the BIOS loads
`load_size` 512-byte virtual sectors of the boot file at 0000:7C00 and jumps there. isolinux.bin
wants 4 sectors and a boot info table (its own LBA, its length and a checksum, patched at byte 8),
as `mkisofs -no-emul-boot -boot-load-size 4 -boot-info-table` does.

The image is written to a temporary file in the output's directory and renamed over the output
at the end, so an error never leaves a half-written ISO behind.
"""
import io
import os
import re
import tempfile

import pycdlib

from isoimage import layout
from v3tools.errors import V3Error

ISO_BLOCK = 2048


def _iso_name(name):
    safe = re.sub(r"[^A-Za-z0-9_.]", "_", name)
    return layout.iso9660_name(safe)


def write_iso(output, files, boot=None, load_size=4, boot_info_table=True, vol_ident="V3TOOLS",
              progress=None):
    """Write an ISO holding `files` in its root directory.

    files: list of (name, source); a source is a path (read at write time, streamed) or bytes.
    boot: name (one of `files`) of the no-emulation El Torito boot file, or None.
    progress: optional callable(done_bytes, total_bytes).
    """
    output = os.fspath(output)
    directory = os.path.dirname(os.path.abspath(output))
    if not os.path.isdir(directory):
        raise V3Error(f"{output}: directory {directory} does not exist")
    iso = pycdlib.PyCdlib()
    iso.new(interchange_level=1, vol_ident=vol_ident, joliet=3, rock_ridge="1.09",
            app_ident_str="v3tools isoimage")
    keep_open = []
    try:
        for name, source in files:
            kwargs = dict(iso_path=_iso_name(name), rr_name=name, joliet_path=f"/{name}")
            if isinstance(source, (bytes, bytearray)):
                fp = io.BytesIO(bytes(source))
                keep_open.append(fp)
                iso.add_fp(fp, len(source), **kwargs)
            else:
                iso.add_file(os.fspath(source), **kwargs)
        if boot is not None:
            iso.add_eltorito(_iso_name(boot), bootcatfile=_iso_name(layout.BOOT_CAT),
                             rr_bootcatname=layout.BOOT_CAT, joliet_bootcatfile=f"/{layout.BOOT_CAT}",
                             boot_load_size=load_size, boot_info_table=boot_info_table,
                             media_name="noemul")
        try:
            fd, tmp = tempfile.mkstemp(prefix=".v3iso-", suffix=".tmp", dir=directory)
        except OSError as exc:
            raise V3Error(f"{output}: cannot write: {exc.strerror}") from None
        os.close(fd)
        try:
            cb = (lambda done, total, _opaque: progress(done, total)) if progress else None
            iso.write(tmp, progress_cb=cb)
            os.chmod(tmp, 0o644)
            os.replace(tmp, output)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
    except pycdlib.pycdlibexception.PyCdlibException as exc:
        raise V3Error(f"{output}: cannot build the ISO: {exc}") from exc
    except OSError as exc:
        raise V3Error(f"{output}: cannot write: {exc.strerror}") from None
    finally:
        iso.close()
        for fp in keep_open:
            fp.close()
    return output
