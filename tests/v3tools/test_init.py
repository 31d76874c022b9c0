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
                             "next: v3 build-vm config.xml -o image.dat && v3 run image.dat\n")
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
    assert v3("init").exit_code == 0
    assert sorted(os.listdir(tmp_path)) == ["config.xml", "sample.iso"]


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
