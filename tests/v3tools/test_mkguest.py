"""`v3 mkguest`: exit codes and exact output."""
import os
import shutil

import pytest

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
    shutil.copy(isoimage.STUB_KERNEL, tmp_path / "bzImage")
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
    shutil.copy(isoimage.STUB_KERNEL, tmp_path / "bzImage")
    result = v3("mkguest", "--kernel", "bzImage", "--busybox", dynamic)
    interp = mg.elf_interpreter(dynamic)
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == (f"v3: error: {dynamic} is dynamically linked (interpreter {interp}); the "
                             f"initramfs needs a static busybox (Debian package busybox-static)\n")
    assert os.listdir(tmp_path) == ["bzImage"]


def test_bad_add(v3, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    shutil.copy(isoimage.STUB_KERNEL, tmp_path / "bzImage")
    result = v3("mkguest", "--kernel", "bzImage", "--add", "relative")
    assert result.exit_code == 1
    assert result.stderr.startswith("v3: error: ")
    assert result.stderr.count("\n") == 1
    assert os.listdir(tmp_path) == ["bzImage"]


# an ELF64 header with no program headers: "static" to mkguest's check, never run here
STATIC_ELF = b"\x7fELF\x02\x01\x01" + bytes(57)

# -- bad input, table-driven: exit status, one line, no file created or changed -------------------
SAME = "; refusing to overwrite an input"
BAD_INPUT = [
    # (args, exit, message); the directory holds bz (a bzImage), bb (a static ELF standing in for
    # busybox), init.sh, data/ (a directory with one file), hard.bz (a hard link to bz)
    (["--kernel", "bz", "-o", "bz"], 1, "-o bz: is the same file as --kernel bz" + SAME),
    (["--kernel", "./bz", "-o", "hard.bz"], 1, "-o hard.bz: is the same file as --kernel ./bz" + SAME),
    (["--kernel", "bz", "--init", "init.sh", "-o", "init.sh"], 1,
     "-o init.sh: is the same file as --init init.sh" + SAME),
    (["--kernel", "bz", "--add", "data/f:/f", "-o", "data/f"], 1,
     "-o data/f: is the same file as --add data/f" + SAME),
    (["--kernel", "bz", "--add", "data:/data", "-o", "data/new.iso"], 1,
     "-o data/new.iso: lies inside --add data; the ISO would be packed into its own initramfs "
     "(write it elsewhere)"),
    # inputs that cannot work
    (["--kernel", "random.bin"], 1, "--kernel random.bin: not a Linux kernel (no boot-protocol "
                                    "header: 55AA at 0x1FE and HdrS at 0x202); give a bzImage"),
    (["--kernel", "init.sh"], 1, "--kernel init.sh: not a Linux kernel (no boot-protocol "
                                 "header: 55AA at 0x1FE and HdrS at 0x202); give a bzImage"),
    (["--kernel", "bz", "--isolinux", "random.bin"], 1,
     "--isolinux random.bin: not an isolinux.bin (no ISOLINUX banner); give the one from the "
     "Debian package `isolinux`"),
    (["--kernel", "bz", "--append", "console=ttyS0\ninit=/bin/sh"], 1,
     "--append 'console=ttyS0\\ninit=/bin/sh': control character 0x0a is not allowed (the kernel "
     "arguments are one line of isolinux.cfg)"),
    (["--kernel", "nope"], 1, "kernel nope not found"),
    (["--kernel", "bz", "--add", "relative"], 1,
     "--add relative: expected SRC:DEST with an absolute DEST (e.g. app:/bin/app)"),
    (["--kernel", "bz", "--add", "nope:/x"], 1, "--add: nope not found"),
]


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    shutil.copy(isoimage.STUB_KERNEL, "bz")
    os.link("bz", "hard.bz")
    (tmp_path / "init.sh").write_text("#!/bin/sh\n")
    (tmp_path / "bb").write_bytes(STATIC_ELF)
    (tmp_path / "random.bin").write_bytes(bytes((i * 151 + 7) * (i >> 3) & 0xFF for i in range(8192)))
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "f").write_text("payload")
    return tmp_path


@pytest.mark.parametrize("args, code, message", BAD_INPUT, ids=[" ".join(c[0]) for c in BAD_INPUT])
def test_bad_input(workdir, bad_input, args, code, message):
    bad_input(["mkguest", "--busybox", "bb", *args], code, message)
