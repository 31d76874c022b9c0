"""`v3 isoimage`: exit codes and exact output."""
import os
import shutil

import pytest

import isoimage
from guest_creator import build_image

from guest_creator.image import encode_header

# a valid guest image (v0, no files)
GUEST = encode_header(b'<vm class="PC"><memory>16</memory></vm>', [], [], 0)


def test_defaults_read_image_dat_and_write_image_iso(v3, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "image.dat").write_bytes(GUEST)
    result = v3("isoimage")
    size = os.path.getsize("image.iso")
    assert (result.exit_code, result.stderr) == (0, "")
    assert result.stdout == (f"wrote image.iso ({size} bytes): isolinux.bin, isolinux.cfg, ldlinux.c32, "
                             f"lwk, initrd.img, boot.cat; lwk = v3 stub kernel\n")
    assert isoimage.read_file_from_iso("image.iso", "/initrd.img") == GUEST


def test_kernel_initrd_append_no_serial(v3, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    shutil.copy(isoimage.STUB_KERNEL, tmp_path / "bz")
    (tmp_path / "rd").write_bytes(b"r")
    result = v3("isoimage", "--kernel", "bz", "--initrd", "rd", "--append", "quiet", "--no-serial",
                "-o", "linux.iso")
    assert result.exit_code == 0 and result.stdout.startswith("wrote linux.iso (")
    assert result.stdout.endswith("; lwk = bz\n")
    assert isoimage.read_file_from_iso("linux.iso", "/isolinux.cfg") == (
        b"TIMEOUT 1\ndefault lwk quiet initrd=initrd.img\n")


def test_missing_image_dat(v3, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = v3("isoimage")
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == ("v3: error: no ./image.dat to package (run `v3 build-vm config.xml -o "
                             "image.dat`, or give --guest or --kernel)\n")
    assert os.listdir(tmp_path) == []


def test_missing_isolinux(v3, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "image.dat").write_bytes(GUEST)
    result = v3("isoimage", "--isolinux", "/nonexistent", "-o", "x.iso")
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == ("v3: error: isolinux.bin not found at /nonexistent (install the Debian "
                             "packages `isolinux` and `syslinux-common`)\n")
    assert os.listdir(tmp_path) == ["image.dat"]


def test_initrd_needs_kernel(v3, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "rd").write_bytes(b"r")
    result = v3("isoimage", "--initrd", "rd")
    assert (result.exit_code, result.stderr) == (1, "v3: error: --initrd needs --kernel\n")


def test_not_a_guest_image(v3, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "image.dat").write_bytes(b"junk")
    result = v3("isoimage")
    assert result.exit_code == 1
    assert result.stderr == ("v3: error: image.dat: not a Palacios guest image (no v3vee header); "
                             "use --kernel/--initrd for an ordinary initrd\n")
    assert os.listdir(tmp_path) == ["image.dat"]


def test_unwritable_output_is_one_line(v3, tmp_path, monkeypatch, require_artefact):
    from v3tools import artefacts
    require_artefact(artefacts.isolinux_bin)
    monkeypatch.chdir(tmp_path)
    shutil.copy(isoimage.STUB_KERNEL, tmp_path / "k")
    r = v3("isoimage", "--kernel", "k", "-o", "/proc/v3-test.iso")
    assert r.exit_code == 1
    assert r.stderr == "v3: error: /proc/v3-test.iso: cannot write: No such file or directory\n"


# -- bad input, table-driven: exit status, one line, no file created or changed -------------------
SAME = "; refusing to overwrite an input"
RANDOM = bytes((i * 151 + 7) * (i >> 3) & 0xFF for i in range(8192))    # no banner, no header
BAD_INPUT = [
    # (args, exit, message); the directory holds image.dat (a guest image), bz (a bzImage),
    # rd (an initrd), hard.dat (a hard link to image.dat)
    (["--guest", "image.dat", "-o", "image.dat"], 1,
     "-o image.dat: is the same file as --guest image.dat" + SAME),
    (["-o", "image.dat"], 1, "-o image.dat: is the same file as --guest image.dat" + SAME),
    (["--guest", "./image.dat", "-o", "hard.dat"], 1,
     "-o hard.dat: is the same file as --guest ./image.dat" + SAME),
    (["--kernel", "bz", "--initrd", "rd", "-o", "bz"], 1, "-o bz: is the same file as --kernel bz" + SAME),
    (["--kernel", "bz", "--initrd", "rd", "-o", "./rd"], 1, "-o ./rd: is the same file as --initrd rd" + SAME),
    (["--kernel", "bz", "--isolinux", "bz", "-o", "bz"], 1, "-o bz: is the same file as --kernel bz" + SAME),
    # inputs that cannot work
    (["--guest", "image.dat", "--isolinux", "random.bin"], 1,
     "--isolinux random.bin: not an isolinux.bin (no ISOLINUX banner); give the one from the Debian "
     "package `isolinux`"),
    (["--kernel", "random.bin", "--initrd", "rd"], 1,
     "--kernel random.bin: not a Linux kernel (no boot-protocol header: 55AA at 0x1FE and HdrS at "
     "0x202); give a bzImage"),
    (["--guest", "image.dat", "--kernel", "rd"], 1,
     "--kernel rd: not a Linux kernel (no boot-protocol header: 55AA at 0x1FE and HdrS at 0x202); "
     "give a bzImage"),
    (["--guest", "short.dat"], 1,
     "--guest short.dat: truncated or corrupt: XML length 71 runs past the end of the 60-byte image"),
    (["--guest", "corrupt.dat"], 1,
     "--guest corrupt.dat: hash mismatch in file 0 (id 'a'): the image is corrupted"),
    (["--guest", "random.bin"], 1,
     "random.bin: not a Palacios guest image (no v3vee header); use --kernel/--initrd for an "
     "ordinary initrd"),
    (["--guest", "image.dat", "--append", "console=ttyS0\nSAY injected"], 1,
     "--append 'console=ttyS0\\nSAY injected': control character 0x0a is not allowed (the kernel "
     "arguments are one line of isolinux.cfg)"),
    (["--kernel", "bz", "--append", "a\tb"], 1,
     "--append 'a\\tb': control character 0x09 is not allowed (the kernel arguments are one line "
     "of isolinux.cfg)"),
    (["--kernel", "bz", "--append", "a\x7fb"], 1,
     "--append 'a\\x7fb': control character 0x7f is not allowed (the kernel arguments are one line "
     "of isolinux.cfg)"),
    (["--guest", "nope.dat"], 1, "guest image nope.dat not found"),
    (["--initrd", "rd"], 1, "--initrd needs --kernel"),
    (["--nosuch"], 1, "No such option '--nosuch' (see `v3 isoimage --help`)"),
]


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "cfg.xml").write_text("<vm><memory>16</memory></vm>\n")
    build_image("cfg.xml", "image.dat")
    os.unlink("cfg.xml")
    shutil.copy(isoimage.STUB_KERNEL, "bz")
    (tmp_path / "rd").write_bytes(b"initrd")
    os.link("image.dat", "hard.dat")
    (tmp_path / "random.bin").write_bytes(RANDOM)
    (tmp_path / "a.bin").write_bytes(b"AAAA")
    (tmp_path / "cfg.xml").write_text('<vm><files><file id="a" filename="a.bin"/></files></vm>\n')
    build_image("cfg.xml", "whole.dat")
    whole = (tmp_path / "whole.dat").read_bytes()
    (tmp_path / "short.dat").write_bytes(whole[:60])
    (tmp_path / "corrupt.dat").write_bytes(whole[:-1] + b"B")
    for name in ("cfg.xml", "a.bin", "whole.dat"):
        os.unlink(name)
    return tmp_path


@pytest.mark.parametrize("args, code, message", BAD_INPUT, ids=[" ".join(c[0]) for c in BAD_INPUT])
def test_bad_input(workdir, bad_input, args, code, message):
    bad_input(["isoimage", *args], code, message)
