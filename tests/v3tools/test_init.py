"""`v3 init`: the files it writes, overwrite refusal, and the sample guest booting in QEMU."""
import os

import pytest
from lxml import etree

import isoimage
from guest_creator.init_sample import BANNER, SAMPLE_BOOT


def test_writes_config_and_sample(v3, tmp_path):
    result = v3("init", tmp_path / "proj")
    iso = tmp_path / "proj" / "sample.iso"
    assert (result.exit_code, result.stderr) == (0, "")
    assert result.stdout == (f"wrote {tmp_path}/proj/config.xml and {iso} ({iso.stat().st_size} bytes)\n"
                             f"next: cd {tmp_path}/proj && v3 build-vm config.xml -o image.dat && "
                             f"v3 isoimage && v3 run\n")
    assert sorted(os.listdir(tmp_path / "proj")) == ["config.xml", "sample.iso"]
    vm = etree.parse(str(tmp_path / "proj" / "config.xml")).getroot()
    assert vm.tag == "vm" and vm.get("class") == "PC" and vm.findtext("memory") == "256"
    assert vm.find("cores").get("count") == "1"
    assert vm.find("files/file").attrib == {"id": "boot-cd", "filename": "sample.iso"}
    classes = [d.get("class") for d in vm.find("devices")]
    assert classes == ["8259A", "8254_PIT", "MPTABLE", "LAPIC", "IOAPIC", "HPET", "ACPI",
                       "KEYBOARD", "NVRAM", "PCI", "i440FX", "PIIX3", "IDE",
                       "RAMDISK", "SERIAL", "BOCHS_DEBUG", "OS_DEBUG"]
    ide = vm.find("devices/device[@class='IDE']")
    assert (ide.get("id"), ide.findtext("bus"), ide.findtext("controller")) == ("ide0", "pci0", "southbridge")
    cd = vm.find("devices/device[@class='RAMDISK']")
    assert cd.findtext("file") == "boot-cd" and cd.find("frontend").get("tag") == "ide0"
    assert [(e.tag, e.text) for e in cd.find("frontend")] == [
        ("model", "V3Vee CDROM"), ("type", "CDROM"), ("bus_num", "0"), ("drive_num", "0")]
    assert isoimage.read_file_from_iso(iso, "/boot.bin") == SAMPLE_BOOT.read_bytes()


def test_default_directory_is_cwd(v3, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    r = v3("init")
    assert r.exit_code == 0
    assert r.stdout.endswith("\nnext: v3 build-vm config.xml -o image.dat && v3 isoimage && v3 run\n")
    assert sorted(os.listdir(tmp_path)) == ["config.xml", "sample.iso"]


def test_the_hint_is_the_flow_that_works(v3, tmp_path, monkeypatch, require_artefact):
    """Following `v3 init`'s hint boots the sample in v3 run (status 0: it resets)."""
    from v3tools import artefacts
    require_artefact(artefacts.isolinux_bin)
    monkeypatch.chdir(tmp_path)
    hint = v3("init").stdout.splitlines()[-1]
    steps = hint.removeprefix("next: ").split(" && ")
    assert steps == ["v3 build-vm config.xml -o image.dat", "v3 isoimage", "v3 run"]
    for step in steps:
        extra = ["--serial", "file:serial.out"] if step == "v3 run" else []
        r = v3(*step.split()[1:], *extra)
        assert r.exit_code == 0, (step, r)
    assert "v3 sample guest: done" in (tmp_path / "serial.out").read_text()


def test_refuses_to_overwrite_without_force(v3, tmp_path):
    (tmp_path / "config.xml").write_text("mine")
    result = v3("init", tmp_path)
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == f"v3: error: {tmp_path}/config.xml already exists (use --force to overwrite)\n"
    assert os.listdir(tmp_path) == ["config.xml"] and (tmp_path / "config.xml").read_text() == "mine"
    result = v3("init", "--force", tmp_path)
    assert result.exit_code == 0 and (tmp_path / "config.xml").read_text().startswith("<?xml")


@pytest.mark.artefacts
def test_sample_guest_boots_in_qemu(v3, tmp_path, qemu_boot):
    assert v3("init", tmp_path).exit_code == 0
    log = qemu_boot(tmp_path / "sample.iso", "resetting through the keyboard controller", timeout=60)
    assert BANNER in log and "base memory (INT 12h): 6" in log and "boot drive (DL): 0x" in log


def test_unwritable_directory_is_one_line(v3, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    target = blocker / "project"                  # a directory under a regular file
    r = v3("init", str(target))
    assert r.exit_code == 1
    assert r.stderr.startswith("v3: error: ") and r.stderr.count("\n") == 1
    assert "cannot write" in r.stderr
    assert sorted(os.listdir(tmp_path)) == ["file"]


# -- bad input, table-driven: exit status, one line, no file created or changed -------------------
BAD_INPUT = [
    (["afile"], 1, "Invalid value for '[DIRECTORY]': Directory 'afile' is a file (see `v3 init --help`)"),
    (["old"], 1, "old/config.xml already exists (use --force to overwrite)"),
    (["both"], 1, "both/config.xml and both/sample.iso already exist (use --force to overwrite)"),
    (["/proc/v3-init-test"], 1, "/proc/v3-init-test: cannot write: No such file or directory"),
    (["--nosuch"], 1, "No such option '--nosuch' (see `v3 init --help`)"),
    (["a", "b"], 1, "Got unexpected extra argument (b) (see `v3 init --help`)"),
]


@pytest.mark.parametrize("args, code, message", BAD_INPUT, ids=[" ".join(c[0]) for c in BAD_INPUT])
def test_bad_input(tmp_path, monkeypatch, bad_input, args, code, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "afile").write_text("x")
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "config.xml").write_text("mine")
    (tmp_path / "both").mkdir()
    (tmp_path / "both" / "config.xml").write_text("mine")
    (tmp_path / "both" / "sample.iso").write_text("mine too")
    bad_input(["init", *args], code, message)
