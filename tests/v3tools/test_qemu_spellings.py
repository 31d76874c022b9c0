"""`v3 run` with QEMU's option spellings: the seeds' command lines with `qemu-system-x86_64`
replaced by `v3 run`, on real files; -snapshot keeps the image's bytes."""
import hashlib
from pathlib import Path

import pytest

from v3tools import artefacts

GUESTS = Path(__file__).resolve().parents[1] / "guests"


def sha(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def disk(workdir):
    code = (GUESTS / "diskwrite.bin").read_bytes()
    (workdir / "disk.img").write_bytes(code + bytes(2 * 1024 * 1024 - len(code)))
    return "disk.img"


def test_kitten_manual_line_runs_the_guest_the_iso_carries(workdir, v3, require_artefact):
    require_artefact(artefacts.isolinux_bin)
    assert v3("init").exit_code == 0
    assert v3("build-vm", "config.xml", "-o", "image.dat").exit_code == 0
    assert v3("isoimage").exit_code == 0
    # -smp 1 -m 1024 -serial file:./serial.out -cdrom image.iso < /dev/null
    r = v3("run", "-smp", "1", "-m", "1024", "-serial", "file:./serial.out", "-cdrom",
           "image.iso", input="")
    assert r.exit_code == 0, r
    assert "hello from the boot CD" in (workdir / "serial.out").read_text()
    notes = [line for line in r.stderr.splitlines() if "made by v3 isoimage" in line]
    assert len(notes) == 1 and "--plain-cdrom" in notes[0], r.stderr
    # the documented way to boot it as a plain CD: isolinux and the stub kernel
    r = v3("run", "-cdrom", "image.iso", "-plain-cdrom", "-serial", "file:./plain.out", input="")
    assert r.exit_code == 5, r
    assert "run it with `v3 run`" in (workdir / "plain.out").read_text()


def test_snapshot_keeps_the_image(workdir, v3, disk):
    before = sha(disk)
    # -snapshot, -m 64, -hda, -nographic, -k en-gb
    r = v3("run", "-snapshot", "-m", "64", "-hda", disk, "-nographic", "-k", "en-gb",
           "-serial", "file:out.txt", input="")
    assert r.exit_code == 5, r                      # the guest ends with cli; hlt
    assert (workdir / "out.txt").read_text() == "DISKWRITE OK\n"   # its write read back
    assert sha(disk) == before
    notes = [line for line in r.stderr.splitlines() if "-k en-gb" in line]
    assert len(notes) == 1, r.stderr
    # without -snapshot the same guest changes the file: the check above means something
    r = v3("run", "-hda", disk, "-serial", "file:out.txt", input="")
    assert (workdir / "out.txt").read_text() == "DISKWRITE OK\n"
    assert sha(disk) != before
    assert Path(disk).read_bytes()[512:1024] == b"W" * 512


@pytest.mark.parametrize("args, message", [
    (["-smp", "2"], "-smp 2: only one core is implemented so far"),
    (["-smp", "x"], "-smp x: expected a number of cores"),
    (["-accel", "kvm"], "-accel kvm: not supported by v3 run (the CPU is emulated: -accel tcg)"),
    (["-machine", "q35"], "-machine q35: not supported by v3 run (the i440FX PC: -machine pc)"),
    (["-display", "sdl"], "-display sdl: v3 run has no display (only -display none)"),
    (["-vga", "std"], "not supported by v3 run: -vga"),
    (["-L", "."], "not supported by v3 run: -L"),
    (["-enable-kvm"], "not supported by v3 run: -enable-kvm (the CPU is emulated (-accel tcg))"),
    (["-m", "lots"], "-m lots: expected the machine's memory in MB, a whole number from 1 to "
                     "3584 (or a size: 512M, 1G)"),
    (["-boot", "x"], "-boot x: expected d (CD), c (disk) or a (floppy)"),
])
def test_refusals_are_one_line(workdir, v3, disk, args, message):
    r = v3("run", "-hda", disk, *args, "-serial", "null")
    assert r.exit_code == 1, r
    assert r.stderr == f"v3: error: {message}\n"
    assert sorted(p.name for p in workdir.iterdir()) == ["disk.img"]


def test_accepted_spellings(workdir, v3, disk):
    r = v3("run", "-hda", disk, "-snapshot", "-accel", "tcg", "-machine", "pc", "-M", "pc",
           "-name", "demo", "-display", "none", "-no-reboot", "-m", "64M", "-boot", "order=c",
           "-serial", "file:out.txt", input="")
    assert r.exit_code == 5, r
    assert (workdir / "out.txt").read_text() == "DISKWRITE OK\n"


def test_drive(workdir, v3, disk):
    before = sha(disk)
    r = v3("run", "-drive", f"file={disk},if=ide,media=disk,format=raw,snapshot=on",
           "-serial", "file:out.txt", input="")
    assert r.exit_code == 5, r
    assert (workdir / "out.txt").read_text() == "DISKWRITE OK\n"
    assert sha(disk) == before
    # readonly=on: the BIOS answers the guest's write with an error, the file is untouched
    r = v3("run", "-drive", f"file={disk},format=raw,readonly=on", "-serial", "file:out.txt",
           input="")
    assert r.exit_code == 5, r
    assert (workdir / "out.txt").read_text() == "DISKWRITE FAILED\n"
    assert sha(disk) == before
    r = v3("run", "-drive", f"file={disk},format=raw", "-serial", "file:out.txt", input="")
    assert r.exit_code == 5, r
    assert sha(disk) != before


@pytest.mark.parametrize("spec, message", [
    ("file=disk.img,format=qcow2", "only format=raw (v3 run reads image files as they are)"),
    ("file=disk.img,if=virtio", "v3 run has IDE disks and CD-ROMs and a floppy "
                                "(if=ide|floppy, media=disk|cdrom)"),
    ("format=raw", "file= is needed"),
    ("file=disk.img,frob=1", "not supported by v3 run: frob"),
    ("disk.img", "expected key=value pairs (file=disk.img,format=raw)"),
])
def test_bad_drive_is_one_line(workdir, v3, disk, spec, message):
    r = v3("run", "-drive", spec, "-serial", "null")
    assert r.exit_code == 1, r
    assert r.stderr == f"v3: error: -drive {spec}: {message}\n"


def test_two_disks_refused(workdir, v3, disk):
    r = v3("run", "-hda", disk, "-drive", f"file={disk}", "-serial", "null")
    assert r.exit_code == 1 and r.stderr == f"v3: error: -drive file={disk}: one hda so far\n"
