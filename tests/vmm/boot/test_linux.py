"""Direct Linux boot (vmm/boot/linux.py, `v3 run --kernel/--initrd/--append`): the boot
protocol header checks, the memory layout, and Debian's own i386 and amd64 kernels booted with
an initramfs and a command line, no boot loader involved."""
import struct

import pytest

from v3tools import artefacts
from v3tools.errors import V3Error
from vmm.boot.linux import (CMDLINE_ADDR, KERNEL_ADDR, SETUP_ADDR, LinuxKernel)
from vmm.launch import RunOptions, plan, run

LINUX_MARKER = "v3 guest: busybox initramfs up"
MB = 1 << 20


def fake_bzimage(version=0x020F, loadflags=0x01, setup_sects=4, pm_size=64 * 1024,
                 cmdline_size=2047, initrd_max=0x7FFFFFFF, init_size=0):
    setup = bytearray((setup_sects + 1) * 512)
    setup[0x1F1] = setup_sects
    struct.pack_into("<H", setup, 0x1FE, 0xAA55)
    setup[0x202:0x206] = b"HdrS"
    struct.pack_into("<H", setup, 0x206, version)
    setup[0x211] = loadflags
    struct.pack_into("<I", setup, 0x22C, initrd_max)
    struct.pack_into("<I", setup, 0x238, cmdline_size)
    struct.pack_into("<I", setup, 0x260, init_size)
    return bytes(setup) + b"\x90" * pm_size


@pytest.mark.parametrize("kernel, message", [
    (b"\x7fELF" + bytes(4096), "--kernel: not a Linux x86 kernel image (no 'HdrS' boot header "
                               "at offset 0x202)"),
    (fake_bzimage(version=0x0202), "--kernel: Linux boot protocol 2.02 is older than 2.04, "
                                   "which v3 loads"),
    (fake_bzimage(loadflags=0), "--kernel: a zImage (loaded low); only bzImage kernels are "
                                "supported"),
])
def test_kernels_refused_in_one_line(kernel, message):
    with pytest.raises(V3Error) as exc:
        LinuxKernel(kernel)
    assert str(exc.value) == message


def test_command_line_checks():
    with pytest.raises(V3Error, match=r"^--append: control character 0x0a in the kernel command "
                                      r"line; give printable text$"):
        LinuxKernel(fake_bzimage(), cmdline="console=ttyS0\ninit=/bin/sh")
    with pytest.raises(V3Error, match=r"^--append: 300 bytes; this kernel takes at most 255$"):
        LinuxKernel(fake_bzimage(cmdline_size=255), cmdline="x" * 300)


def test_layout_follows_the_boot_protocol():
    k = LinuxKernel(fake_bzimage(), initrd=b"I" * 5000, cmdline="console=ttyS0 quiet")
    mem = {}
    seg, off = k.load(lambda addr, data: mem.__setitem__(addr, bytes(data)), 64 * MB)
    setup = mem[SETUP_ADDR]
    assert setup[0x210] == 0xFF and setup[0x211] & 0x81 == 0x81          # loader, heap, high
    assert struct.unpack_from("<H", setup, 0x224)[0] == 0xDE00
    assert struct.unpack_from("<I", setup, 0x228)[0] == CMDLINE_ADDR
    image, size = struct.unpack_from("<II", setup, 0x218)
    assert size == 5000 and image % 4096 == 0 and image + size <= 64 * MB
    assert image + size > 64 * MB - 4096                                  # as high as it goes
    assert mem[CMDLINE_ADDR] == b"console=ttyS0 quiet\0"
    assert mem[KERNEL_ADDR] == b"\x90" * 64 * 1024
    assert mem[image] == b"I" * 5000
    stub = mem[(seg << 4) + off]
    assert stub[0] == 0xFA and stub[-5:] == b"\xEA\x00\x00\x20\x90"        # cli ... jmp 9020:0


def test_memory_too_small_is_one_line():
    k = LinuxKernel(fake_bzimage(), initrd=b"I" * (3 * MB))
    with pytest.raises(V3Error, match=r"^--initrd: 3 MB does not fit between the kernel and the "
                                      r"top of memory \(2 MB\); raise -m$"):
        k.check_fits(2 * MB)
    k = LinuxKernel(fake_bzimage(init_size=40 * MB))
    with pytest.raises(V3Error, match=r"^--kernel: the kernel needs 40 MB above 1 MB but the "
                                      r"machine has 32 MB; raise -m$"):
        k.check_fits(32 * MB)


def test_options_that_need_kernel(tmp_path):
    with pytest.raises(V3Error, match=r"^--initrd needs --kernel \(direct Linux boot\)$"):
        plan(RunOptions(initrd=str(tmp_path / "x"), cdrom=None))
    with pytest.raises(V3Error, match=r"^--append needs --kernel \(direct Linux boot\)$"):
        plan(RunOptions(append="quiet"))
    with pytest.raises(V3Error, match=r"^--kernel .*nope: cannot read: No such file or directory$"):
        plan(RunOptions(kernel=str(tmp_path / "nope")))
    with pytest.raises(V3Error, match=r"^--kernel .*: is a directory$"):
        plan(RunOptions(kernel=str(tmp_path)))


def _initramfs(tmp_path_factory, require_artefact, arch):
    """The initramfs `v3 mkguest` builds (busybox-static for `arch`, its /init prints the
    marker), taken out of the ISO it writes."""
    from guest_creator.mkguest import mkguest
    from isoimage import read_file_from_iso
    busybox = require_artefact(artefacts.busybox_static, arch)
    kernel = require_artefact(artefacts.debian_kernel, arch)
    require_artefact(artefacts.isolinux_bin)
    out = tmp_path_factory.mktemp(f"kboot-{arch}") / "guest.iso"
    mkguest(out, kernel=kernel, busybox=busybox, append="console=ttyS0")
    initrd = out.parent / "initrd.img"
    initrd.write_bytes(read_file_from_iso(str(out), "/initrd.img"))
    return kernel, initrd


@pytest.mark.parametrize("arch", ["i386", "amd64"])
def test_debian_kernel_boots_directly(arch, tmp_path, tmp_path_factory, require_artefact):
    """Debian's kernel, no boot loader: the command line arrives whole, the initrd is found,
    /init prints its marker. The amd64 kernel goes through its setup code to long mode."""
    kernel, initrd = _initramfs(tmp_path_factory, require_artefact, arch)
    serial = tmp_path / "serial.out"
    result, machine = run(RunOptions(kernel=str(kernel), initrd=str(initrd),
                                     append="console=ttyS0 v3.kboot=1", memory_mb=256,
                                     serial=f"file:{serial}", until=LINUX_MARKER, timeout=240))
    text = serial.read_bytes().decode("latin-1")
    assert result.status == 0, text[-2000:]
    assert "Kernel command line: console=ttyS0 v3.kboot=1" in text
    assert "Trying to unpack rootfs image as initramfs" in text
    assert f"-{'amd64' if arch == 'amd64' else '686'}" in text[text.index("Linux version"):][:200]
    assert "ISOLINUX" not in text
