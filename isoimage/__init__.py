"""Bootable ISO images, as Kitten's `make isoimage` makes them, written in Python (pycdlib).

    build_iso("image.iso", guest="image.dat")                  # a hosted v3 guest image
    build_iso("linux.iso", kernel="bzImage", initrd="initrd")  # an ordinary Linux boot CD
    read_file_from_iso("image.iso", "/initrd.img")             # -> bytes
    is_hosted_iso("image.iso")                                 # -> True

See docs/isoimage.md. Nothing here prints; errors are V3Error subclasses.
"""
import os
from dataclasses import dataclass, field
from pathlib import Path

from isoimage import layout
from isoimage.bootfiles import check_append, check_guest, check_isolinux, check_kernel
from isoimage.eltorito import write_iso
from isoimage.isolinux import find_isolinux, find_ldlinux, isolinux_version
from isoimage.reader import GUEST_MAGIC, file_extent, is_hosted_iso, read_file_from_iso
from v3tools.errors import ImageFormatError, V3Error
from v3tools.paths import refuse_overwrite

STUB_KERNEL = Path(__file__).with_name("stub") / "lwk.bin"

__all__ = ["build_iso", "read_file_from_iso", "is_hosted_iso", "file_extent", "write_iso",
           "IsoResult", "STUB_KERNEL"]


@dataclass
class IsoResult:
    """What build_iso wrote."""

    path: str
    size: int
    kernel: str                 # path of the kernel put on the CD as `lwk`
    stub_kernel: bool           # True when `lwk` is the v3 placeholder
    isolinux: str
    isolinux_version: tuple | None
    files: list = field(default_factory=list)   # names in the ISO root, in order
    cfg: str = ""


def _need_file(path, what):
    if not os.path.isfile(path):
        raise V3Error(f"{what} {path} not found")
    return os.fspath(path)


def build_iso(output, kernel=None, initrd=None, guest=None, append=None, serial=True,
              isolinux=None, progress=None):
    """Write a bootable isolinux CD to `output`; return an IsoResult.

    kernel:  Linux-boot-protocol kernel put on the CD as `lwk`; without one, a guest image gets
             the v3 stub kernel (it prints that the CD must be run with `v3 run`, then halts).
    initrd:  initrd put on the CD as `initrd.img` (needs `kernel`).
    guest:   Palacios guest image (.dat) put on the CD as `initrd.img` (excludes `initrd`).
    append:  kernel command line (default "console=serial"); `initrd=initrd.img` is added.
    serial:  isolinux.cfg starts with SERIAL 0 115200.
    isolinux: isolinux.bin to use (default: the host's, see isoimage.isolinux).
    """
    if guest is not None and initrd is not None:
        raise V3Error("give either a guest image or an initrd, not both (both become initrd.img)")
    if kernel is None and guest is None:
        raise V3Error("nothing to boot: give a guest image, or a kernel (and an initrd)")
    if append is not None:
        check_append(append)
    payload = None
    if guest is not None:
        payload = _need_file(guest, "guest image")
        with open(payload, "rb") as f:
            if f.read(len(GUEST_MAGIC)) != GUEST_MAGIC:
                raise ImageFormatError(f"{guest}: not a Palacios guest image (no v3vee header); "
                                       f"use --kernel/--initrd for an ordinary initrd")
        check_guest(payload)
    elif initrd is not None:
        payload = _need_file(initrd, "initrd")
    stub = kernel is None
    kernel = os.fspath(STUB_KERNEL) if stub else _need_file(kernel, "kernel")
    if not stub:
        check_kernel(kernel)
    inputs = [("--guest", guest), ("--initrd", initrd), ("--kernel", None if stub else kernel),
              ("--isolinux", isolinux)]
    refuse_overwrite([("-o", output)], inputs)
    isolinux_bin = find_isolinux(isolinux)
    check_isolinux(isolinux_bin, isolinux_version(isolinux_bin),
                   "--isolinux" if isolinux is not None else "isolinux.bin")
    ldlinux = find_ldlinux(isolinux_bin)
    refuse_overwrite([("-o", output)], inputs + [("isolinux.bin", isolinux_bin), ("ldlinux.c32", ldlinux)])

    cfg = layout.isolinux_cfg(layout.DEFAULT_APPEND if append is None else append,
                              serial=serial, initrd=payload is not None)
    files = [(layout.ISOLINUX_BIN, isolinux_bin), (layout.ISOLINUX_CFG, cfg.encode())]
    if ldlinux:
        files.append((layout.LDLINUX_C32, ldlinux))
    files.append((layout.KERNEL_NAME, kernel))
    if payload is not None:
        files.append((layout.INITRD_NAME, payload))
    write_iso(output, files, boot=layout.ISOLINUX_BIN, load_size=4, boot_info_table=True,
              progress=progress)
    return IsoResult(path=os.fspath(output), size=os.path.getsize(output), kernel=kernel,
                     stub_kernel=stub, isolinux=isolinux_bin,
                     isolinux_version=isolinux_version(isolinux_bin),
                     files=[name for name, _ in files] + [layout.BOOT_CAT], cfg=cfg)
