"""The Kitten `make isoimage` layout: which files go on the CD and what isolinux.cfg says.

Every file sits in the root directory, next to isolinux.bin, where isolinux looks first:

    isolinux.bin   the El Torito no-emulation boot image (4 sectors loaded, boot info table)
    boot.cat       the El Torito boot catalog
    isolinux.cfg   SERIAL 0 115200 / TIMEOUT 1 / default lwk <args> initrd=initrd.img
    ldlinux.c32    only for isolinux >= 5
    lwk            the kernel (Kitten's LWK, any Linux-protocol kernel, or the v3 stub)
    initrd.img     the initrd, or a Palacios guest image (.dat)
"""
KERNEL_NAME = "lwk"
INITRD_NAME = "initrd.img"
ISOLINUX_BIN = "isolinux.bin"
ISOLINUX_CFG = "isolinux.cfg"
LDLINUX_C32 = "ldlinux.c32"
BOOT_CAT = "boot.cat"

DEFAULT_APPEND = "console=serial"
SERIAL_LINE = "SERIAL 0 115200"     # isolinux talks on COM1 at 115200 too
TIMEOUT_LINE = "TIMEOUT 1"          # tenths of a second: boot at once


def isolinux_cfg(append=DEFAULT_APPEND, serial=True, initrd=True):
    """The text of isolinux.cfg."""
    args = " ".join(part for part in (append.strip(), f"initrd={INITRD_NAME}" if initrd else "") if part)
    lines = [SERIAL_LINE] if serial else []
    lines += [TIMEOUT_LINE, f"default {KERNEL_NAME} {args}".rstrip()]
    return "\n".join(lines) + "\n"


def iso9660_name(name):
    """The ISO 9660 level-1 identifier of a root file ("lwk" -> "/LWK.;1")."""
    stem, dot, ext = name.upper().partition(".")
    return f"/{stem[:8]}.{ext[:3]};1"
