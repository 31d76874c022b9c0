"""Finding isolinux.bin (and ldlinux.c32, which isolinux >= 5 loads at start) on the host.

Debian ships isolinux.bin in the package `isolinux` (/usr/lib/ISOLINUX) and the BIOS modules,
ldlinux.c32 among them, in `syslinux-common` (/usr/lib/syslinux/modules/bios). Other
distributions use /usr/share/syslinux or /usr/lib/syslinux(/bios).
"""
import os
import re

from v3tools.errors import ToolMissing

SEARCH_DIRS = (
    "/usr/lib/ISOLINUX",
    "/usr/lib/syslinux",
    "/usr/lib/syslinux/modules/bios",
    "/usr/lib/syslinux/bios",
    "/usr/share/syslinux",
    "/usr/share/syslinux/bios",
    "/usr/local/share/syslinux",
    "/usr/local/lib/syslinux",
)

PACKAGES = "Debian packages `isolinux` and `syslinux-common`"

_VERSION = re.compile(rb"ISOLINUX (\d+)\.(\d+)")


def find_isolinux(override=None):
    """Path of isolinux.bin: `override` if given (it must exist), else the first in SEARCH_DIRS."""
    if override is not None:
        if not os.path.isfile(override):
            raise ToolMissing(f"isolinux.bin not found at {override} (install the {PACKAGES})")
        return os.fspath(override)
    for directory in SEARCH_DIRS:
        path = os.path.join(directory, "isolinux.bin")
        if os.path.isfile(path):
            return os.path.normpath(path)
    raise ToolMissing(f"isolinux.bin not found in {', '.join(SEARCH_DIRS[:-1])} (install the {PACKAGES})")


def isolinux_version(path):
    """(major, minor) from the banner inside isolinux.bin, or None if it has none."""
    with open(path, "rb") as f:
        match = _VERSION.search(f.read())
    return (int(match.group(1)), int(match.group(2))) if match else None


def find_ldlinux(isolinux_path):
    """ldlinux.c32 for this isolinux.bin, or None when that isolinux does not need one (< 5).

    The module must come from the same syslinux release; it is looked for next to isolinux.bin
    first, then in SEARCH_DIRS. An isolinux of unknown version gets one if one can be found.
    """
    version = isolinux_version(isolinux_path)
    if version is not None and version[0] < 5:
        return None
    for directory in (os.path.dirname(os.path.abspath(isolinux_path)), *SEARCH_DIRS):
        path = os.path.join(directory, "ldlinux.c32")
        if os.path.isfile(path):
            return os.path.normpath(path)
    if version is None:
        return None
    raise ToolMissing(f"isolinux {version[0]}.{version[1]} needs ldlinux.c32, which was not found "
                      f"(install the Debian package `syslinux-common`)")
