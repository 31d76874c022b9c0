"""FILEDISK: a host file behind an IDE drive; writes persist when writable."""
import pytest
from lxml import etree

from v3tools.errors import ConfigError
from vmm.clock import ManualClock
from vmm.config import DeviceSpec
from vmm.context import BoardContext
from vmm.devices import lookup
from vmm.devices.ide import IDE
from vmm.media import MediumError


def add(ctx, xml):
    s = DeviceSpec.from_element(etree.fromstring(xml), "test.xml")
    return ctx.add_device(lookup(s.class_name).from_spec(s, ctx))


def board():
    ctx = BoardContext(clock=ManualClock())
    ctx.add_device(IDE("ide"))
    return ctx


def disk_xml(path, writable=None, tag="writable"):
    w = f"<{tag}>{writable}</{tag}>" if writable is not None else ""
    return (f'<device class="FILEDISK" id="HD0"><path>{path}</path>{w}'
            f'<frontend tag="ide"><type>HD</type><bus_num>0</bus_num><drive_num>0</drive_num>'
            f'</frontend></device>')


def write_sector(ctx, lba, data):
    ctx.io.write(0x1F6, 1, 0xE0)
    for reg, v in ((2, 1), (3, lba), (4, 0), (5, 0)):
        ctx.io.write(0x1F0 + reg, 1, v)
    ctx.io.write(0x1F7, 1, 0x30)
    for i in range(0, 512, 2):
        ctx.io.write(0x1F0, 2, data[i] | data[i + 1] << 8)
    return ctx.io.read(0x1F7, 1)


def test_writable_filedisk_persists(tmp_path):
    path = tmp_path / "disk.img"
    path.write_bytes(bytes(512 * 4))
    ctx = board()
    dev = add(ctx, disk_xml(path, 1))
    assert dev.medium.writable and ctx.drives[0].kind == "disk"
    assert write_sector(ctx, 2, b"\xa5" * 512) == 0x50
    assert path.read_bytes()[1024:1536] == b"\xa5" * 512


def test_writeable_spelling_and_relative_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "d.img").write_bytes(bytes(1024))
    assert add(board(), disk_xml("d.img", "1", tag="writeable")).medium.writable


def test_read_only_by_default_and_write_stops(tmp_path):
    path = tmp_path / "disk.img"
    path.write_bytes(bytes(512 * 4))
    ctx = board()
    assert not add(ctx, disk_xml(path, 0)).medium.writable
    with pytest.raises(MediumError, match="read-only"):
        write_sector(ctx, 1, bytes(512))


def test_missing_path_or_file(tmp_path):
    with pytest.raises(ConfigError, match="no <path>"):
        add(board(), '<device class="FILEDISK" id="X"><frontend tag="ide"/></device>')
    with pytest.raises(ConfigError, match="HD0.*cannot open"):
        add(board(), disk_xml(tmp_path / "missing.img"))
