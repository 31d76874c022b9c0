"""Acceptance: `v3 run` boots guests no one on this project wrote.

Artefacts come from Debian packages the way a user gets them (tests/conftest.py's
`require_artefact`: skipped with the reason outside CI, a failure under CI). Every guest runs in
this one process through the library API, as `v3 run` would run it.
"""
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from guest_creator.init_sample import config_xml
from v3tools import artefacts
from vmm.launch import RunOptions, run

LINUX_MARKER = "v3 guest: busybox initramfs up"
# The Palacios default.xml-shaped configuration `v3 init` writes, booting guest.iso
CONFIG_WITH_BOOT_CD = config_xml(iso="guest.iso", memory=512)


def boot(tmp_path, until, timeout=240, **kw):
    serial = tmp_path / "serial.out"
    result, machine = run(RunOptions(serial=f"file:{serial}", until=until, timeout=timeout, **kw))
    return result, serial.read_bytes().decode("latin-1")


@pytest.mark.parametrize("arch, how", [("amd64", "bzImage"), ("amd64", "no-host-decompress"),
                                       ("amd64", "vmlinux"), ("i386", "bzImage")])
def test_debian_linux_direct_kernel_boot(tmp_path, arch, how, require_artefact, linux_iso,
                                         linux64_iso):
    """`v3 run --kernel K --initrd f --append console=ttyS0`, no boot loader, no POST:
    - amd64 bzImage: its payload decompressed on the host, the ELF entered through its PVH note;
    - amd64 bzImage with --no-host-decompress: the boot protocol's 32-bit entry, the kernel's
      own decompressor, then long mode;
    - amd64 vmlinux (the ELF out of the bzImage) given as --kernel: PVH;
    - i386 bzImage: no PVH note in that kernel, so the 32-bit entry (said in the log)."""
    import isoimage
    from vmm.boot import linux, pvh
    kernel = require_artefact(artefacts.debian_kernel, arch)
    iso = linux64_iso if arch == "amd64" else linux_iso
    initrd = tmp_path / "initrd.img"
    initrd.write_bytes(isoimage.read_file_from_iso(iso, "/initrd.img"))
    if how == "vmlinux":
        compression, elf = pvh.decompress_payload(linux.read_bzimage(kernel))
        assert compression == "xz"
        kernel = tmp_path / "vmlinux"
        kernel.write_bytes(elf)
    log = tmp_path / "vmm.log"
    result, serial = boot(tmp_path, LINUX_MARKER, kernel=str(kernel), initrd=str(initrd),
                          append="console=ttyS0", host_decompress=how != "no-host-decompress",
                          log=str(log))
    assert result.status == 0, serial[-2000:]
    assert "ISOLINUX" not in serial and "Decompressing Linux" not in serial
    assert "command line: console=ttys0" in serial.lower()
    assert "APIC: Switch to symmetric I/O mode setup" in serial and "ACPI: RSDP" in serial
    text = log.read_text()
    if how == "bzImage" and arch == "amd64":
        assert "payload decompressed on the host (xz) and entered through its PVH note" in text
    elif arch == "i386":
        assert "not decompressed on the host" in text and "no PVH entry note" in text
    else:
        assert "decompressed on the host" not in text


def type_after(text, command):
    """An on_machine hook: once `text` has appeared on COM1, type `command` there."""
    def hook(machine):
        console = machine.ctx.console
        typed = []

        def on_output(data):
            if not typed and text.encode() in console.captured:
                typed.append(True)
                console.feed(command.encode())
        console.listeners.append(on_output)
    return hook


def test_debian_amd64_linux_from_isolinux_cd(tmp_path, linux64_iso, require_built):
    """The 64-bit kernel on the standard PC, command line `console=ttyS0` only: isolinux, the
    kernel in long mode, /init's marker. The kernel found the ACPI tables and switched to the
    APIC (IOAPIC for the ISA interrupts, the LAPIC timer as its clock event device, the HPET
    as the global one and a clocksource); then
    `poweroff -f` in the guest's shell ends the run with status 0 (ACPI S5)."""
    serial_path = tmp_path / "serial.out"
    result, machine = run(RunOptions(serial=f"file:{serial_path}", timeout=240,
                                     cdrom=str(linux64_iso)),
                          on_machine=type_after(LINUX_MARKER, "cat /proc/interrupts "
                                                "/sys/devices/system/clockevents/clockevent0/"
                                                "current_device /sys/devices/system/"
                                                "clockevents/broadcast/current_device; "
                                                "grep -r . /sys/devices/system/cpu/"
                                                "vulnerabilities/; poweroff -f\n"))
    serial = serial_path.read_bytes().decode("latin-1")
    assert (result.status, result.reason) == (0, "guest poweroff"), serial[-2000:]
    assert serial.index("ISOLINUX") < serial.index("Linux version") < serial.index(LINUX_MARKER)
    assert "-amd64" in serial[serial.index("Linux version"):][:200]
    for line in ("ACPI: RSDP 0x", "ACPI: FACP 0x", "ACPI: APIC 0x", "ACPI: DSDT 0x",
                 "ACPI: PM-Timer IO Port: 0x608", "ACPI: Using ACPI (MADT) for SMP",
                 "ACPI: PM: (supports S0 S5)", "ACPI: Using IOAPIC for interrupt routing",
                 "APIC: Switch to symmetric I/O mode setup", "reboot: Power down"):
        assert line in serial, line
    listing = serial[serial.index(LINUX_MARKER):]
    assert re.search(r"^\s*4:\s+[1-9]\d*\s+IO-APIC\s+4-edge\s+ttyS0", listing, re.M)
    assert re.search(r"^\s*9:\s+\d+\s+IO-APIC\s+9-fasteoi\s+acpi", listing, re.M)
    loc = re.search(r"^\s*LOC:\s+(\d+)", listing, re.M)
    assert loc and int(loc.group(1)) > 0
    assert re.search(r"^lapic\s*$", listing, re.M)
    # the HPET: a clocksource, and the global clock event device in legacy replacement mode
    # (timer 0 on ISA IRQ 0, i.e. IOAPIC pin 2)
    assert "clocksource: hpet:" in serial and "hpet0: 3 comparators, 64-bit" in serial
    assert re.search(r"^\s*0:\s+[1-9]\d*\s+IO-APIC\s+2-edge\s+timer", listing, re.M)
    assert re.search(r"^hpet\s*$", listing, re.M)
    # the LAPIC's EOIs and the engine's acknowledges of its vectors ran in C (vmm/devices/_apic.c)
    intr = machine._intr
    require_built(machine.memmap.fast is not None and intr is not None and intr.fast is not None,
                  "the APIC fast paths and the engine's INTR input")
    assert machine.memmap.fast.counts()[0xFEE00000][1] > 0 and intr.fast.done > 0
    # IA32_ARCH_CAPABILITIES: the emulated CPU has none of the flaws with a "not affected" bit,
    # so the kernel runs without page-table isolation or buffer clearing
    assert "page tables isolation: enabled" not in serial
    for flaw in ("meltdown", "mds", "l1tf", "tsx_async_abort", "mmio_stale_data",
                 "gather_data_sampling", "indirect_target_selection"):
        assert f"vulnerabilities/{flaw}:Not affected" in listing, flaw


@pytest.mark.parametrize("host_decompress", [True, False])
def test_debian_amd64_cd_boot_loader_handoff(tmp_path, linux64_iso, host_decompress):
    """isolinux hands the 64-bit kernel over at its 32-bit entry; the VMM catches that entry,
    decompresses the payload on the host and enters startup_64 in long mode (one log line),
    so the guest never runs its decompressor; --no-host-decompress leaves it to the guest."""
    log = tmp_path / "vmm.log"
    result, serial = boot(tmp_path, LINUX_MARKER, cdrom=str(linux64_iso), log=str(log),
                          host_decompress=host_decompress)
    assert result.status == 0, serial[-2000:]
    assert serial.index("ISOLINUX") < serial.index("Linux version") < serial.index(LINUX_MARKER)
    text = log.read_text()
    line = re.search(r"boot: boot loader handoff: Linux (\S+) decompressed on the host \(xz\)"
                     r".* entered at startup_64 in long mode", text)
    if host_decompress:
        assert line and line.group(1) in serial, text
    else:
        assert "boot loader handoff" not in text


def test_quick_start(tmp_path, monkeypatch, v3, require_artefact):
    require_artefact(artefacts.isolinux_bin)
    monkeypatch.chdir(tmp_path)
    assert v3("init").exit_code == 0
    assert v3("build-vm", "config.xml", "-o", "image.dat").exit_code == 0
    assert v3("isoimage").exit_code == 0
    r = v3("run", "--serial", "file:serial.out", "--timeout", "60")
    assert r.exit_code == 0, r.stderr
    assert "v3 sample guest: hello from the boot CD" in (tmp_path / "serial.out").read_text()


def test_debian_i386_linux_from_isolinux_cd(tmp_path, linux_iso):
    """isolinux's banner, the kernel (handed over at isolinux's hand-off), /init's marker; then
    a command typed on COM1 runs in the busybox shell (the answer, 42, is computed by the
    guest's shell)."""
    def type_once_booted(machine):
        console = machine.ctx.console

        def on_output(data):
            if not typed and LINUX_MARKER.encode() in console.captured:
                typed.append(True)
                console.feed(b"echo typed-$((6*7))\n")
        typed = []
        console.listeners.append(on_output)

    serial_path = tmp_path / "serial.out"
    log = tmp_path / "vmm.log"
    result, machine = run(RunOptions(serial=f"file:{serial_path}", until="typed-42", timeout=240,
                                     cdrom=str(linux_iso), log=str(log)),
                          on_machine=type_once_booted)
    serial = serial_path.read_bytes().decode("latin-1")
    assert result.status == 0
    # isolinux's hand-off: the 32-bit kernel decompressed on the host, entered at startup_32
    assert re.search(r"boot: boot loader handoff: Linux \S+-686 decompressed on the host "
                     r"\(xz\).* entered at startup_32", log.read_text()), log.read_text()
    isolinux = serial.index("ISOLINUX")
    kernel = serial.index("Linux version")
    marker = serial.index(LINUX_MARKER)
    assert isolinux < kernel < marker < serial.index("typed-42")
    assert "tsc: Detected" in serial and "Switched to clocksource tsc" in serial


def test_debian_linux_inside_a_palacios_guest_image(tmp_path, monkeypatch, v3, linux_iso):
    hosted_pipeline_boots(tmp_path, monkeypatch, v3, linux_iso, CONFIG_WITH_BOOT_CD)


def hosted_pipeline_boots(tmp_path, monkeypatch, v3, iso, config_xml):
    """build-vm, isoimage, run, as a user would: the guest image's boot CD reaches the marker
    through isolinux."""
    monkeypatch.chdir(tmp_path)
    shutil.copy(iso, "guest.iso")
    Path("config.xml").write_text(config_xml)
    assert v3("build-vm", "config.xml", "-o", "image.dat").exit_code == 0
    assert v3("isoimage").exit_code == 0
    r = v3("run", "--serial", "file:serial.out", "--until", LINUX_MARKER, "--timeout", "240")
    assert r.exit_code == 0, r.stderr
    serial = (tmp_path / "serial.out").read_text(errors="replace")
    assert serial.index("ISOLINUX") < serial.index("Linux version") < serial.index(LINUX_MARKER)


def test_grub2_rescue_cd_menu_and_entry(tmp_path, require_artefact):
    mkrescue = require_artefact(artefacts.grub_mkrescue)
    root = tmp_path / "iso" / "boot" / "grub"
    root.mkdir(parents=True)
    (root / "grub.cfg").write_text(
        "serial --unit=0 --speed=115200\nterminal_input serial\nterminal_output serial\n"
        "set timeout=1\n"
        'menuentry "v3 test entry" {\n  echo "v3 grub entry running"\n  reboot\n}\n')
    iso = tmp_path / "grub.iso"
    subprocess.run([str(mkrescue), "-o", str(iso), str(tmp_path / "iso")], check=True,
                   capture_output=True)
    result, serial = boot(tmp_path, "v3 grub entry running", timeout=120, cdrom=str(iso))
    assert result.status == 0
    assert "GNU GRUB" in serial
    assert serial.index("v3 test entry") < serial.index("Booting `v3 test entry'")


def test_memtest86plus_ia32_banner(tmp_path, require_artefact):
    from isoimage import build_iso
    memtest = require_artefact(artefacts.memtest86)
    require_artefact(artefacts.isolinux_bin)
    iso = tmp_path / "memtest.iso"
    build_iso(iso, kernel=memtest, append="console=ttyS0,115200")
    result, serial = boot(tmp_path, "Memtest86+", timeout=120, cdrom=str(iso), memory_mb=256)
    assert result.status == 0
    assert serial.index("ISOLINUX") < serial.index("Memtest86+")


def test_seabios_boots_the_sample_cd(tmp_path, monkeypatch, v3, require_artefact):
    """Someone else's firmware (Debian's SeaBIOS, built for QEMU) on our devices: it finds the
    ATAPI CD-ROM on the IDE controller, boots it through El Torito, and the guest's BIOS calls
    (INT 12h, INT 11h) are answered by SeaBIOS."""
    bios = require_artefact(artefacts.seabios)
    monkeypatch.chdir(tmp_path)
    assert v3("init").exit_code == 0
    r = v3("run", "--bios", bios, "--cdrom", "sample.iso", "--serial", "file:serial.out",
           "--timeout", "60", "--log", "vmm.log", "--debug", "debugport")
    assert r.exit_code == 0, r.stderr
    assert "v3 sample guest: hello from the boot CD" in (tmp_path / "serial.out").read_text()
    log = (tmp_path / "vmm.log").read_text()
    assert "SeaBIOS (version" in log and "Booting from DVD/CD" in log


def test_seabios_boots_debian_linux(tmp_path, linux_iso, require_artefact):
    bios = require_artefact(artefacts.seabios)
    result, serial = boot(tmp_path, LINUX_MARKER, cdrom=str(linux_iso), bios=str(bios))
    assert result.status == 0
    assert serial.index("ISOLINUX") < serial.index("Linux version") < serial.index(LINUX_MARKER)


STUB_MARKER = "v3 lwk stub: run it with"


def _fat_image(path, size_kib, offset=0):
    subprocess.run(["mkfs.msdos", "-C", str(path), str(size_kib)] if not offset else
                   ["mkfs.msdos", f"--offset={offset // 512}", "-F", "16", str(path),
                    str(size_kib)], check=True, capture_output=True)


def _syslinux_volume(image, offset=0):
    """Install SYSLINUX on the FAT volume at `offset` and give it the v3 stub kernel (a Linux
    boot-protocol image that prints a line on COM1 and halts) to boot, over serial."""
    from isoimage import STUB_KERNEL
    subprocess.run(["syslinux", "--install", *(["--offset", str(offset)] if offset else []),
                    str(image)], check=True, capture_output=True)
    cfg = image.parent / "syslinux.cfg"
    cfg.write_text("SERIAL 0 115200\nTIMEOUT 1\nDEFAULT stub\nLABEL stub\n  KERNEL stub\n")
    target = f"{image}@@{offset}" if offset else str(image)
    for src, name in ((cfg, "syslinux.cfg"), (STUB_KERNEL, "stub")):
        subprocess.run(["mcopy", "-o", "-i", target, str(src), f"::{name}"], check=True,
                       capture_output=True)


def _floppy(tmp_path):
    image = tmp_path / "floppy.img"
    _fat_image(image, 1440)
    _syslinux_volume(image)
    return image


def _mbr_disk(tmp_path, require_artefact):
    """A 32 MiB disk: an MBR with SYSLINUX's boot code and one bootable FAT16 partition."""
    import struct
    mbr = require_artefact(_syslinux_mbr)
    image = tmp_path / "disk.img"
    sectors, start = 65536, 2048
    with open(image, "wb") as f:
        f.truncate(sectors * 512)
        f.seek(0)
        f.write(mbr.read_bytes()[:440])
        f.seek(0x1BE)
        f.write(struct.pack("<B3sB3sII", 0x80, b"\x20\x21\x00", 0x06, b"\xfe\xff\xff", start,
                            sectors - start))
        f.seek(510)
        f.write(b"\x55\xaa")
    _fat_image(image, (sectors - start) // 2, offset=start * 512)
    _syslinux_volume(image, offset=start * 512)
    return image


def _syslinux_mbr():
    from v3tools.errors import ToolMissing
    mbr = Path("/usr/lib/syslinux/mbr/mbr.bin")
    if not mbr.is_file():
        raise ToolMissing("SYSLINUX's mbr.bin is missing (Debian package syslinux-common)")
    return mbr


def _el_torito(tmp_path, image, hard_disk):
    """A CD whose El Torito boot entry emulates a floppy or a hard disk with `image`."""
    root = tmp_path / "cd"
    root.mkdir()
    (root / image.name).write_bytes(image.read_bytes())
    iso = tmp_path / "emulated.iso"
    subprocess.run(["xorriso", "-as", "mkisofs", "-quiet", "-b", image.name,
                    *(["-hard-disk-boot"] if hard_disk else []), "-c", "boot.cat",
                    "-o", str(iso), str(root)], check=True, capture_output=True)
    return iso


@pytest.mark.parametrize("medium", ["floppy", "mbr-disk", "cd-floppy-emulation",
                                    "cd-hard-disk-emulation"])
def test_syslinux_boots_from_every_bios_boot_path(tmp_path, medium, require_tool, require_artefact):
    """SYSLINUX (Debian's syslinux) loads a kernel through the BIOS from a floppy, an MBR hard
    disk, and El Torito floppy and hard-disk emulation (INT 13h on drives 00h and 80h mapped
    onto the image inside the CD)."""
    for program, package in (("syslinux", "syslinux"), ("mkfs.msdos", "dosfstools"),
                             ("mcopy", "mtools"), ("xorriso", "xorriso")):
        require_tool(program, package)
    if medium == "floppy":
        opts = dict(fda=str(_floppy(tmp_path)))
    elif medium == "mbr-disk":
        opts = dict(hda=str(_mbr_disk(tmp_path, require_artefact)))
    elif medium == "cd-floppy-emulation":
        opts = dict(cdrom=str(_el_torito(tmp_path, _floppy(tmp_path), hard_disk=False)))
    else:
        opts = dict(cdrom=str(_el_torito(tmp_path, _mbr_disk(tmp_path, require_artefact),
                                         hard_disk=True)))
    result, serial = boot(tmp_path, STUB_MARKER, timeout=60, memory_mb=64, **opts)
    assert result.status == 0
    assert serial.index("SYSLINUX") < serial.index("Loading stub") < serial.index(STUB_MARKER)


@pytest.mark.parametrize("arch", ["i386", "amd64"])
def test_grub2_boots_debian_linux(tmp_path, arch, request, require_artefact):
    """GRUB 2's own Linux loader (its `linux` and `initrd` commands, which load the kernel
    through the BIOS disk services and enter it themselves) boots the Debian guest: the 32-bit
    kernel on the PIC, the 64-bit one on the standard PC's APIC platform."""
    import isoimage
    guest_iso = request.getfixturevalue("linux_iso" if arch == "i386" else "linux64_iso")
    mkrescue = require_artefact(artefacts.grub_mkrescue)
    kernel = require_artefact(artefacts.debian_kernel, arch)
    bootdir = tmp_path / "iso" / "boot"
    (bootdir / "grub").mkdir(parents=True)
    (bootdir / "vmlinuz").write_bytes(Path(kernel).read_bytes())
    (bootdir / "initrd.img").write_bytes(isoimage.read_file_from_iso(guest_iso, "/initrd.img"))
    (bootdir / "grub" / "grub.cfg").write_text(
        "serial --unit=0 --speed=115200\nterminal_input serial\nterminal_output serial\n"
        "set timeout=1\n"
        f'menuentry "Debian {arch} via GRUB" {{\n  linux /boot/vmlinuz console=ttyS0\n'
        "  initrd /boot/initrd.img\n}\n")
    iso = tmp_path / f"grub-linux-{arch}.iso"
    subprocess.run([str(mkrescue), "-o", str(iso), str(tmp_path / "iso")], check=True,
                   capture_output=True)
    log = tmp_path / "vmm.log"
    result, serial = boot(tmp_path, LINUX_MARKER, cdrom=str(iso), log=str(log))
    assert result.status == 0, serial[-2000:]
    # GRUB's own 32-bit entry is handed over too (vmm/boot/loaded.py)
    mode = "startup_64 in long mode" if arch == "amd64" else "startup_32"
    assert re.search(rf"boot: boot loader handoff: Linux \S+ decompressed on the host .* "
                     rf"entered at {mode}", log.read_text()), log.read_text()
    assert (serial.index(f"Booting `Debian {arch} via GRUB'") < serial.index("Linux version")
            < serial.index(LINUX_MARKER))


def test_debian_amd64_inside_a_palacios_guest_image(tmp_path, monkeypatch, v3, linux64_iso):
    """The hosted pipeline: v3 init's config.xml (the APIC platform included), build-vm,
    isoimage, run."""
    monkeypatch.chdir(tmp_path)
    shutil.copy(linux64_iso, "guest.iso")
    Path("config.xml").write_text(CONFIG_WITH_BOOT_CD)
    assert v3("build-vm", "config.xml", "-o", "image.dat").exit_code == 0
    assert v3("isoimage").exit_code == 0
    r = v3("run", "--serial", "file:serial.out", "--until", LINUX_MARKER, "--timeout", "240")
    assert r.exit_code == 0, r.stderr
    serial = (tmp_path / "serial.out").read_text(errors="replace")
    assert serial.index("ISOLINUX") < serial.index("Linux version") < serial.index(LINUX_MARKER)
    assert "APIC: Switch to symmetric I/O mode setup" in serial


def stock_default_xml(cd_file):
    """Palacios' stock default.xml with only two changes: its boot-cd file name, and its COM1
    range (a GENERIC PRINT_AND_IGNORE range there) made PASSTHROUGH, so the guest's console
    reaches the host's serial port."""
    stock = Path(__file__).resolve().parents[1] / "guest_creator" / "vectors" / "default_stock.xml"
    text = stock.read_text()
    com1 = re.compile(r"(<!-- Serial COM 1 -->\s*<start>0x3f8</start>\s*<end>0x3ff</end>\s*"
                      r"<mode>)PRINT_AND_IGNORE(</mode>)")
    assert len(com1.findall(text)) == 1 and text.count('filename="image.iso"') == 1
    return com1.sub(r"\1PASSTHROUGH\2", text).replace('filename="image.iso"',
                                                       f'filename="{cd_file}"')


def test_debian_amd64_from_palacios_stock_default_xml(tmp_path, monkeypatch, v3, linux64_iso):
    """Palacios' own default.xml (the PC: PIC, PIT, LAPIC, IOAPIC, MP table, PCI, i440FX,
    PIIX3, IDE, RAMDISK CD, NVRAM, GENERIC), built, packed and run as a user would."""
    hosted_pipeline_boots(tmp_path, monkeypatch, v3, linux64_iso, stock_default_xml("guest.iso"))


def test_xen_with_a_debian_pv_dom0(tmp_path, require_artefact, linux64_iso):
    """Debian's Xen hypervisor (gzip-compressed, multiboot) as --kernel, Debian's amd64 kernel
    as its PV dom0 (module 1) and the busybox initramfs (module 2), QEMU's module-list
    spelling. Xen runs dom0 in ring 3 with IOPL 0: its port I/O must fault through the TSS
    I/O bitmap (engine patch 0006) for Xen to forward it; Xen also patches itself under a
    self-NMI and reads IA32_PLATFORM_ID."""
    import isoimage
    xen = require_artefact(artefacts.xen_hypervisor)
    kernel = require_artefact(artefacts.debian_kernel, "amd64")
    initrd = tmp_path / "initrd.img"
    initrd.write_bytes(isoimage.read_file_from_iso(linux64_iso, "/initrd.img"))
    result, serial = boot(tmp_path, LINUX_MARKER, kernel=str(xen), memory_mb=512,
                          initrd=f"{kernel} console=hvc0,{initrd}",
                          append="console=com1 com1=115200,8n1 dom0_mem=256M noreboot")
    assert result.status == 0, serial[-3000:]
    assert (serial.index("(XEN) Xen version") < serial.index("Linux version")
            < serial.index(LINUX_MARKER))
    assert "Booting kernel on Xen" in serial                   # dom0 knows it is a PV guest


def test_memtest86plus_x64_banner(tmp_path, require_artefact):
    from isoimage import build_iso
    memtest = require_artefact(artefacts.memtest86, "memtest86+x64.bin")
    require_artefact(artefacts.isolinux_bin)
    iso = tmp_path / "memtest64.iso"
    build_iso(iso, kernel=memtest, append="console=ttyS0,115200")
    result, serial = boot(tmp_path, "Memtest86+", timeout=120, cdrom=str(iso), memory_mb=256)
    assert result.status == 0, serial[-2000:]
    assert serial.index("ISOLINUX") < serial.index("Memtest86+")


def test_memtest86plus_x64_direct_kernel_boot(tmp_path, require_artefact):
    """memtest86+ x64 is a Linux boot-protocol image of another design (no compressed
    payload): --kernel enters it through the 32-bit entry."""
    memtest = require_artefact(artefacts.memtest86, "memtest86+x64.bin")
    result, serial = boot(tmp_path, "Memtest86+", timeout=120, kernel=str(memtest),
                          append="console=ttyS0,115200", memory_mb=256)
    assert result.status == 0, serial[-2000:]

