"""What goes on a boot CD must be able to boot: checks of the kernel, isolinux.bin, the guest
image and the kernel command line, each failing with one line before anything is written.
"""
import os

from v3tools.errors import ImageFormatError, V3Error

# Linux boot protocol (Documentation/arch/x86/boot.rst): the boot sector's 55AA signature at
# 0x1FE and the setup header's magic "HdrS" at 0x202 (protocol 2.00 and later; isolinux loads
# such kernels, bzImage included, and so does Kitten's LWK).
_BOOT_FLAG = (0x1FE, b"\x55\xaa")
_HEADER_MAGIC = (0x202, b"HdrS")


def check_kernel(path, label="--kernel"):
    """`path` must be a Linux boot-protocol kernel (a bzImage); V3Error otherwise."""
    try:
        with open(path, "rb") as f:
            head = f.read(0x206)
    except OSError as exc:
        raise V3Error(f"{label} {path}: cannot read: {exc.strerror}") from None
    for offset, magic in (_BOOT_FLAG, _HEADER_MAGIC):
        if head[offset:offset + len(magic)] != magic:
            raise V3Error(f"{label} {path}: not a Linux kernel (no boot-protocol header: 55AA at "
                          f"0x1FE and HdrS at 0x202); give a bzImage")


def check_isolinux(path, version, label="--isolinux"):
    """`version` is isolinux_version(path): an isolinux.bin carries its `ISOLINUX x.yy` banner."""
    if version is None or os.path.getsize(path) < 2048:
        raise V3Error(f"{label} {path}: not an isolinux.bin (no ISOLINUX banner); give the one "
                      f"from the Debian package `isolinux`")


def check_guest(path, label="--guest"):
    """`path` must be a whole, valid guest image: the checks of `v3 inspect` (hashes included)."""
    from guest_creator.image import open_image
    try:
        with open_image(path, verify=True):
            pass
    except ImageFormatError as exc:
        raise ImageFormatError(f"{label} {exc}") from None


def check_append(append, label="--append"):
    """Kernel arguments go on one isolinux.cfg line: no control characters (a newline would
    start a new configuration line)."""
    for ch in append:
        if ord(ch) < 0x20 or ord(ch) == 0x7F:
            raise V3Error(f"{label} {append!r}: control character {ord(ch):#04x} is not allowed "
                          f"(the kernel arguments are one line of isolinux.cfg)")
