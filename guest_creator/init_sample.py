"""`v3 init`: a ready config.xml (Palacios default.xml shape) and a sample guest CD to run.

The sample guest (guest_creator/sample/boot.asm) is an El Torito no-emulation boot program: it
needs no isolinux and no kernel, prints to COM1 and through the BIOS, then resets the machine,
which the VMM takes as a clean end. `sample.iso` is written with the isoimage library.
"""
import os
from dataclasses import dataclass
from pathlib import Path

from isoimage.eltorito import write_iso
from v3tools.errors import V3Error

SAMPLE_DIR = Path(__file__).with_name("sample")
SAMPLE_BOOT = SAMPLE_DIR / "boot.bin"
SAMPLE_ISO = "sample.iso"
CONFIG = "config.xml"
BANNER = "v3 sample guest: hello from the boot CD"

CONFIG_XML = """<?xml version="1.0"?>
<!-- A PC guest for `v3 build-vm config.xml -o image.dat && v3 isoimage && v3 run`, written by `v3 init`.
     It boots {iso} (the `boot-cd` file) from the CD-ROM on the first IDE channel. -->
<vm class="PC">
    <memory>{memory}</memory>
    <cores count="1">
        <core/>
    </cores>
    <files>
        <file id="boot-cd" filename="{iso}"/>
    </files>
    <devices>
        <device class="8259A" id="PIC"/>
        <device class="8254_PIT" id="PIT"/>
        <device class="MPTABLE" id="mptable"/>
        <device class="LAPIC" id="apic"/>
        <device class="IOAPIC" id="ioapic">
            <apic>apic</apic>
        </device>
        <device class="HPET" id="hpet"/>
        <device class="ACPI" id="acpi"/>
        <device class="KEYBOARD" id="keyboard"/>
        <device class="NVRAM" id="nvram">
            <storage>ide0</storage>
        </device>
        <device class="PCI" id="pci0"/>
        <device class="i440FX" id="northbridge">
            <bus>pci0</bus>
        </device>
        <device class="PIIX3" id="southbridge">
            <bus>pci0</bus>
        </device>
        <device class="IDE" id="ide0">
            <bus>pci0</bus>
            <controller>southbridge</controller>
        </device>
        <device class="RAMDISK" id="CD0">
            <file>boot-cd</file>
            <frontend tag="ide0">
                <model>V3Vee CDROM</model>
                <type>CDROM</type>
                <bus_num>0</bus_num>
                <drive_num>0</drive_num>
            </frontend>
        </device>
        <device class="SERIAL" id="serial"/>
        <device class="BOCHS_DEBUG" id="bochs debug"/>
        <device class="OS_DEBUG" id="os debug"/>
    </devices>
</vm>
"""

README = """This CD holds the v3tools sample guest: boot.bin, an El Torito no-emulation boot program.
Its source is guest_creator/sample/boot.asm in v3tools.
"""


@dataclass
class InitResult:
    """What init_project wrote."""

    directory: str
    config: str
    iso: str
    iso_size: int


def config_xml(iso=SAMPLE_ISO, memory=256):
    """The text of the config.xml `v3 init` writes."""
    return CONFIG_XML.format(iso=iso, memory=memory)


def write_sample_iso(output):
    """Write the sample guest CD (boot.bin as a 4-sector no-emulation boot image) to `output`."""
    size = SAMPLE_BOOT.stat().st_size
    write_iso(output, [("boot.bin", SAMPLE_BOOT), ("readme.txt", README.encode())], boot="boot.bin",
              load_size=(size + 511) // 512, boot_info_table=False, vol_ident="V3SAMPLE")
    return output


def init_project(directory=".", force=False):
    """Write config.xml and sample.iso into `directory` (created if missing).

    Existing files are left alone unless `force`: the check covers both files before anything
    is written, so a refusal writes nothing.
    """
    directory = os.fspath(directory)
    if os.path.exists(directory) and not os.path.isdir(directory):
        raise V3Error(f"{directory} exists and is not a directory")
    config, iso = os.path.join(directory, CONFIG), os.path.join(directory, SAMPLE_ISO)
    existing = [p for p in (config, iso) if os.path.exists(p)]
    if existing and not force:
        raise V3Error(f"{' and '.join(existing)} already exist{'s' if len(existing) == 1 else ''} "
                      f"(use --force to overwrite)")
    created = not os.path.isdir(directory)
    try:
        os.makedirs(directory, exist_ok=True)
        write_sample_iso(iso)
        tmp = config + ".tmp"
        with open(tmp, "w") as f:
            f.write(config_xml())
        os.replace(tmp, config)
    except OSError as exc:
        for path in (iso, config + ".tmp"):
            if os.path.exists(path) and path not in existing:
                os.unlink(path)
        if created and os.path.isdir(directory) and not os.listdir(directory):
            os.rmdir(directory)
        raise V3Error(f"{exc.filename or directory}: cannot write: {exc.strerror}") from None
    return InitResult(directory=directory, config=config, iso=iso, iso_size=os.path.getsize(iso))
