import io
import os
import shutil
import stat

import pytest

import isoimage
from guest_creator import mkguest as mg
from guest_creator.cpio import CpioWriter, read_archive
from v3tools import artefacts
from v3tools.errors import ToolMissing, V3Error


def _dynamic_binary():
    for path in ("/bin/ls", "/usr/bin/ls", "/bin/true", "/usr/bin/env"):
        if os.path.isfile(path) and mg.elf_interpreter(path):
            return path
    pytest.skip("no dynamically linked binary on this host")


def test_elf_interpreter_static_and_dynamic(require_artefact):
    busybox = require_artefact(artefacts.busybox_static, "amd64")
    assert mg.elf_interpreter(busybox) is None
    assert mg.elf_interpreter(_dynamic_binary()).startswith("/lib")


def test_elf_interpreter_on_a_32_bit_static_busybox(require_artefact):
    busybox = require_artefact(artefacts.busybox_static, "i386")
    assert mg.elf_interpreter(busybox) is None


def test_dynamic_busybox_is_refused():
    path = _dynamic_binary()
    with pytest.raises(V3Error, match=f"{path} is dynamically linked .* static busybox"):
        mg.find_busybox(path)


def test_not_elf(tmp_path):
    (tmp_path / "x").write_bytes(b"#!/bin/sh\n")
    with pytest.raises(V3Error, match="not an ELF"):
        mg.find_busybox(str(tmp_path / "x"))


def test_no_host_kernel(monkeypatch):
    monkeypatch.setattr(mg.glob, "glob", lambda pattern: [])
    with pytest.raises(ToolMissing, match="give --kernel"):
        mg.find_host_kernel()


def test_add_spec_parsing():
    assert mg._parse_add("a:b:/opt/x") == ("a:b", "/opt/x")
    with pytest.raises(V3Error, match="SRC:DEST"):
        mg._parse_add("nodest")


def test_initramfs_contents(tmp_path, require_artefact, monkeypatch):
    busybox = require_artefact(artefacts.busybox_static, "amd64")
    extra = tmp_path / "hello.txt"
    extra.write_text("hi")
    buf = io.BytesIO()
    w = CpioWriter(buf)
    links = mg.fill_initramfs(w, busybox, mg.DEFAULT_INIT, [(str(extra), "/opt/hello.txt")])
    w.close()
    entries = {e.name: e for e in read_archive(buf.getvalue())}
    assert links > 100 and entries["bin/sh"].data == b"/bin/busybox"
    shell_tools = [e for n, e in entries.items() if n.rsplit("/", 1)[-1] in ("cttyhack", "setsid")]
    assert len(shell_tools) == 2 and all(e.kind == stat.S_IFLNK for e in shell_tools)
    assert entries["dev/console"].kind == stat.S_IFCHR
    assert (entries["dev/console"].rdevmajor, entries["dev/console"].rdevminor) == (5, 1)
    assert entries["init"].data.decode() == mg.DEFAULT_INIT and stat.S_IMODE(entries["init"].mode) == 0o755
    assert entries["opt/hello.txt"].data == b"hi" and "opt" in entries


def test_applets_fall_back_to_the_builtin_list(tmp_path):
    fake = tmp_path / "busybox"
    fake.write_bytes(b"\x7fELF not runnable")
    assert mg.applet_paths(str(fake)) == list(mg.FALLBACK_APPLETS)


def test_mkguest_errors_write_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    shutil.copy(isoimage.STUB_KERNEL, tmp_path / "k")
    with pytest.raises(V3Error, match="dynamically linked"):
        mg.mkguest("g.iso", kernel="k", busybox=_dynamic_binary())
    with pytest.raises(V3Error, match="kernel missing not found"):
        mg.mkguest("g.iso", kernel="missing")
    assert sorted(os.listdir(tmp_path)) == ["k"]


@pytest.mark.artefacts
@pytest.mark.slow
def test_mkguest_iso_boots_to_its_banner(tmp_path, require_artefact, qemu_boot):
    kernel = require_artefact(artefacts.debian_kernel, "amd64")
    busybox = require_artefact(artefacts.busybox_static, "amd64")
    out = tmp_path / "guest.iso"
    result = mg.mkguest(out, kernel=kernel, busybox=busybox)
    assert result.applets > 100 and sorted(os.listdir(tmp_path)) == ["guest.iso"]
    assert isoimage.read_file_from_iso(out, "/isolinux.cfg").endswith(
        b"default lwk console=ttyS0 initrd=initrd.img\n")
    log = qemu_boot(out, mg.BANNER, timeout=180)
    assert "Linux version" in log
