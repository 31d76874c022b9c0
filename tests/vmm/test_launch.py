"""vmm/launch.py: plan() decides what to boot from content and size; SerialSink; the
standard PC description."""
import os

import pytest

from v3tools import artefacts
from v3tools.errors import ConfigError, V3Error
from vmm.launch import FLOPPY_SIZES, RunOptions, SerialSink, plan, standard_pc_xml

FLOPPY = 1474560


def boot_sector(size):
    return (b"\xfa\xf4".ljust(510, b"\0") + b"\x55\xaa").ljust(size, b"\0")


def iso_like(size=40 * 2048):
    """Enough of an ISO 9660 image for the content check: the CD001 descriptor at sector 16."""
    data = bytearray(size)
    data[16 * 2048:16 * 2048 + 6] = b"\x01CD001"
    return bytes(data)


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def sample(workdir, v3):
    """`v3 init`'s config.xml and sample.iso, and the guest image built from them."""
    assert v3("init").exit_code == 0
    assert v3("build-vm", "config.xml", "-o", "image.dat").exit_code == 0
    return workdir


def classes(p):
    return [d.class_name for d in p.config.devices]


def test_nothing_to_boot(workdir):
    with pytest.raises(V3Error, match=r"no \./image\.iso"):
        plan(RunOptions())


def test_default_image_iso_is_used(workdir):
    (workdir / "image.iso").write_bytes(iso_like())
    p = plan(RunOptions())
    assert p.description == "standard PC with cdrom image.iso"


def test_floppy_by_size(workdir):
    (workdir / "f.img").write_bytes(boot_sector(FLOPPY))
    p = plan(RunOptions(image="f.img"))
    assert p.floppy == "f.img" and p.files == {}
    assert "FILEDISK" not in classes(p)
    assert p.description == "standard PC with fda f.img"


@pytest.mark.parametrize("size", sorted(FLOPPY_SIZES))
def test_every_floppy_size(workdir, size):
    (workdir / "f.img").write_bytes(bytes(size))
    assert plan(RunOptions(image="f.img")).floppy == "f.img"


@pytest.mark.parametrize("size", [512, FLOPPY + 512, 10 * 1024 * 1024])
def test_disk_by_size(workdir, size):
    (workdir / "d.img").write_bytes(boot_sector(size))
    p = plan(RunOptions(image="d.img"))
    assert p.floppy is None
    hda = [d for d in p.config.devices if d.id == "hda"]
    assert len(hda) == 1 and hda[0].value("path") == os.path.abspath("d.img")
    assert hda[0].child("frontend").value("type") == "DISK"
    assert p.description == "standard PC with hda d.img"


def test_cdrom_by_content_beats_floppy_size(workdir):
    (workdir / "x.img").write_bytes(iso_like(FLOPPY))
    p = plan(RunOptions(image="x.img"))
    assert p.floppy is None
    cd = [d for d in p.config.devices if d.id == "cdrom"]
    assert cd[0].child("frontend").value("type") == "CDROM"
    assert cd[0].child("frontend").value("bus_num") == "1"


def test_plain_iso_is_a_cdrom(sample):
    p = plan(RunOptions(image="sample.iso"))
    assert p.description == "standard PC with cdrom sample.iso"
    assert p.files == {}


def test_guest_image_by_content(sample):
    os.rename("image.dat", "guest.bin")                  # the name does not matter
    p = plan(RunOptions(image="guest.bin"))
    assert p.description.startswith("guest image ")
    assert p.config.memory_mb == 256
    assert bytes(p.files["boot-cd"]) == (sample / "sample.iso").read_bytes()
    assert "RAMDISK" in classes(p)


def test_guest_image_memory_must_fit(sample):
    with pytest.raises(ConfigError, match=r"wants 256 MB .* machine has 128 MB \(-m 128\); raise -m$"):
        plan(RunOptions(image="image.dat", memory_mb=128))


def test_hosted_iso(sample, v3, require_artefact):
    require_artefact(artefacts.isolinux_bin)
    assert v3("isoimage", "--guest", "image.dat", "-o", "hosted.iso").exit_code == 0
    p = plan(RunOptions(image="hosted.iso"))
    assert p.description == "guest image hosted.iso:/initrd.img"
    assert "boot-cd" in p.files


def test_options_without_image(workdir):
    (workdir / "cd.iso").write_bytes(iso_like())
    (workdir / "d.img").write_bytes(boot_sector(4096))
    (workdir / "f.img").write_bytes(boot_sector(FLOPPY))
    p = plan(RunOptions(cdrom="cd.iso", hda="d.img", fda="f.img", memory_mb=64))
    assert p.config.memory_mb == 64
    assert [d.id for d in p.config.devices if d.class_name == "FILEDISK"] == ["hda", "cdrom"]
    assert p.floppy == "f.img"
    assert p.description == "standard PC with cdrom cd.iso, hda d.img, fda f.img"


@pytest.mark.parametrize("option", ["cdrom", "hda", "fda"])
def test_missing_option_file(workdir, option):
    with pytest.raises(V3Error, match=f"^--{option} gone.img: no such file$"):
        plan(RunOptions(**{option: "gone.img"}))


def test_directory_is_not_an_image(workdir):
    os.mkdir("sub")
    with pytest.raises(V3Error, match="^sub: is a directory$"):
        plan(RunOptions(image="sub"))


def test_guest_image_with_fda_is_not_silently_ignored(sample):
    (sample / "f.img").write_bytes(boot_sector(FLOPPY))
    try:
        p = plan(RunOptions(image="image.dat", fda="f.img"))
    except V3Error:
        return
    assert p.floppy == "f.img"


def test_standard_pc_xml_escapes_paths(workdir):
    from vmm.config import parse_vm_config
    xml = standard_pc_xml(32, cdrom="a&b<c>.iso")
    cfg = parse_vm_config(xml.encode(), "<standard PC>")
    cd = [d for d in cfg.devices if d.id == "cdrom"][0]
    assert cd.value("path") == os.path.abspath("a&b<c>.iso")
    assert cfg.memory_mb == 32


# -- SerialSink --------------------------------------------------------------------------------
def test_serial_sink_file(workdir):
    (workdir / "s.out").write_bytes(b"old contents")
    s = SerialSink("file:s.out")
    s.write(b"AB")
    assert (workdir / "s.out").read_bytes() == b"AB"      # truncated, unbuffered
    s.close()


def test_serial_sink_null(workdir):
    s = SerialSink("null")
    s.write(b"x")
    s.flush()
    s.close()
    assert os.listdir(workdir) == []


@pytest.mark.parametrize("spec, message", [
    ("bogus", "--serial bogus: expected file:PATH, stdio or null"),
    ("file:", "--serial file: needs a path (file:serial.out)"),
    ("file:/nonexistent/dir/x", "--serial file:/nonexistent/dir/x: cannot open: No such file or directory"),
])
def test_serial_sink_errors(workdir, spec, message):
    with pytest.raises(V3Error) as e:
        SerialSink(spec)
    assert str(e.value) == message
