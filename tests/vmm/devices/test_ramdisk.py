"""RAMDISK: XML options, connection to the IDE frontend, data seen through the ports."""
import pytest
from lxml import etree

from v3tools.errors import ConfigError
from vmm.clock import ManualClock
from vmm.config import DeviceSpec
from vmm.context import BoardContext
from vmm.devices import lookup
from vmm.devices.ide import IDE

CD_XML = """<device class="RAMDISK" id="CD0"><file>boot-cd</file>
  <frontend tag="ide"><model>V3Vee CDROM</model><type>CDROM</type>
  <bus_num>0</bus_num><drive_num>0</drive_num></frontend></device>"""
HD_XML = """<device class="RAMDISK" id="HD0" file="disk">
  <frontend tag="ide" type="HD" bus_num="1" drive_num="1"/></device>"""


def spec(xml):
    return DeviceSpec.from_element(etree.fromstring(xml), "test.xml")


def board(files):
    ctx = BoardContext(clock=ManualClock(), files=files)
    ctx.add_device(IDE("ide"))
    return ctx


def add(ctx, xml):
    s = spec(xml)
    return ctx.add_device(lookup(s.class_name).from_spec(s, ctx))


def read_sector(ctx, base, dev, lba):
    ctx.io.write(base + 6, 1, 0xE0 | dev << 4)
    for reg, v in ((2, 1), (3, lba & 0xFF), (4, lba >> 8 & 0xFF), (5, lba >> 16 & 0xFF)):
        ctx.io.write(base + reg, 1, v)
    ctx.io.write(base + 7, 1, 0x20)
    assert ctx.io.read(base + 7, 1) & 0x08
    return b"".join(ctx.io.read(base, 2).to_bytes(2, "little") for _ in range(256))


def test_cdrom_child_form_records_drive():
    ctx = board({"boot-cd": bytes(range(256)) * 8 * 10 + b"tail"})
    dev = add(ctx, CD_XML)
    assert dev.medium.sector_size == 2048 and dev.medium.num_sectors == 11
    assert not dev.medium.writable
    (drive,) = ctx.drives
    assert (drive.kind, drive.channel, drive.position, drive.owner) == ("cdrom", 0, 0, "CD0")
    assert [ctx.io.read(0x1F0 + r, 1) for r in (4, 5)] == [0x14, 0xEB]


def test_disk_attribute_form_is_writable_in_memory_only():
    image = bytes(512 * 8)
    ctx = board({"disk": image})
    dev = add(ctx, HD_XML)
    assert ctx.drives[0].kind == "disk" and dev.medium.writable
    ctx.io.write(0x170 + 6, 1, 0xF0)
    for reg, v in ((2, 1), (3, 3), (4, 0), (5, 0)):
        ctx.io.write(0x170 + reg, 1, v)
    ctx.io.write(0x170 + 7, 1, 0x30)
    for _ in range(256):
        ctx.io.write(0x170, 2, 0xBEEF)
    assert read_sector(ctx, 0x170, 1, 3) == b"\xef\xbe" * 256
    assert image == bytes(512 * 8)                        # the image file itself is untouched


def test_missing_file_names_file_and_device():
    ctx = board({})
    with pytest.raises(ConfigError, match="CD0.*boot-cd"):
        add(ctx, CD_XML)


def test_missing_frontend_fields_and_bad_type():
    ctx = board({"disk": bytes(512)})
    with pytest.raises(ConfigError, match="drive_num"):
        add(ctx, '<device class="RAMDISK" id="A" file="disk">'
                 '<frontend tag="ide" type="HD" bus_num="0"/></device>')
    with pytest.raises(ConfigError, match="CDROM or HD"):
        add(ctx, '<device class="RAMDISK" id="B" file="disk">'
                 '<frontend tag="ide" type="tape" bus_num="0" drive_num="0"/></device>')
    with pytest.raises(ConfigError, match="no <file>"):
        add(ctx, '<device class="RAMDISK" id="C"><frontend tag="ide"/></device>')


def test_frontend_must_exist_and_slot_must_be_free():
    ctx = board({"disk": bytes(1024)})
    with pytest.raises(ConfigError, match="nowhere"):
        add(ctx, '<device class="RAMDISK" id="A" file="disk">'
                 '<frontend tag="nowhere" type="HD" bus_num="0" drive_num="0"/></device>')
    add(ctx, '<device class="RAMDISK" id="B" file="disk">'
             '<frontend tag="ide" type="DISK" bus_num="0" drive_num="0"/></device>')
    with pytest.raises(ConfigError, match="occupied"):
        add(ctx, '<device class="RAMDISK" id="C" file="disk">'
                 '<frontend tag="ide" type="hd" bus_num="0" drive_num="0"/></device>')
