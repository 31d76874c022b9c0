"""`v3 mkguest`: exit codes and exact output."""
import os

import isoimage
from guest_creator import mkguest as mg
from v3tools import artefacts


def _dynamic_binary():
    for path in ("/bin/ls", "/usr/bin/ls", "/bin/true"):
        if os.path.isfile(path) and mg.elf_interpreter(path):
            return path


def test_writes_guest_iso(v3, tmp_path, monkeypatch, require_artefact):
    busybox = str(require_artefact(artefacts.busybox_static, "amd64"))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bzImage").write_bytes(b"kernel")
    (tmp_path / "my-init").write_text("#!/bin/sh\necho custom\n")
    (tmp_path / "data").write_text("payload")
    result = v3("mkguest", "--kernel", "bzImage", "--busybox", busybox, "--init", "my-init",
                "--add", "data:/root/data", "--append", "console=ttyS0 quiet")
    assert (result.exit_code, result.stderr) == (0, "")
    assert result.stdout.startswith(f"wrote guest.iso ({os.path.getsize('guest.iso')} bytes): "
                                    f"kernel bzImage, busybox {busybox} with ")
    assert sorted(os.listdir(tmp_path)) == ["bzImage", "data", "guest.iso", "my-init"]
    cfg = isoimage.read_file_from_iso("guest.iso", "/isolinux.cfg")
    assert cfg.endswith(b"default lwk console=ttyS0 quiet initrd=initrd.img\n")


def test_dynamic_busybox_refused(v3, tmp_path, monkeypatch):
    dynamic = _dynamic_binary()
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bzImage").write_bytes(b"kernel")
    result = v3("mkguest", "--kernel", "bzImage", "--busybox", dynamic)
    interp = mg.elf_interpreter(dynamic)
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == (f"v3: error: {dynamic} is dynamically linked (interpreter {interp}); the "
                             f"initramfs needs a static busybox (Debian package busybox-static)\n")
    assert os.listdir(tmp_path) == ["bzImage"]


def test_bad_add(v3, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bzImage").write_bytes(b"kernel")
    result = v3("mkguest", "--kernel", "bzImage", "--add", "relative")
    assert result.exit_code == 1
    assert result.stderr.startswith("v3: error: ")
    assert result.stderr.count("\n") == 1
    assert os.listdir(tmp_path) == ["bzImage"]
