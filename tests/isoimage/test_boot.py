"""Real boots in QEMU (TCG): the stub kernel of a --guest ISO, and a real Linux kernel ISO."""
import pytest

import isoimage
from guest_creator.cpio import write_gzip_archive
from guest_creator.image import encode_header
from v3tools import artefacts

pytestmark = [pytest.mark.artefacts, pytest.mark.slow]

STUB_MESSAGE = "run it with `v3 run`"
INIT_MARKER = "v3 isoimage test: initramfs /init ran"


def test_guest_iso_boots_the_stub_and_says_to_use_v3_run(tmp_path, qemu_boot, require_artefact):
    require_artefact(artefacts.isolinux_bin)
    guest = tmp_path / "image.dat"
    guest.write_bytes(encode_header(b'<vm class="PC"><memory>16</memory></vm>', [], [], 0))
    iso = tmp_path / "image.iso"
    isoimage.build_iso(iso, guest=guest)
    log = qemu_boot(iso, STUB_MESSAGE, timeout=90)
    assert "Loading lwk" in log                      # isolinux (on serial) loaded our kernel
    assert "this ISO holds a Palacios (v3) guest image" in log


def test_linux_kernel_iso_boots_to_init(tmp_path, qemu_boot, require_artefact):
    kernel = require_artefact(artefacts.debian_kernel, "amd64")
    busybox = require_artefact(artefacts.busybox_static, "amd64")

    def fill(w):
        for d in ("bin", "dev", "proc"):
            w.directory(d)
        w.char_device("dev/console", 5, 1)
        w.file("bin/busybox", busybox, 0o755)
        w.symlink("bin/sh", "busybox")
        w.file("init", f"#!/bin/sh\necho '{INIT_MARKER}'\n/bin/busybox poweroff -f\n".encode(), 0o755)

    initrd = tmp_path / "initrd.gz"
    write_gzip_archive(initrd, fill)
    iso = tmp_path / "linux.iso"
    isoimage.build_iso(iso, kernel=kernel, initrd=initrd, append="console=ttyS0 panic=-1")
    log = qemu_boot(iso, INIT_MARKER, timeout=180)
    assert "Linux version" in log
