"""Multiboot direct boot (vmm/boot/multiboot.py) with tests/guests/mbtest.asm, a multiboot
kernel that reports what it was handed; QEMU's own multiboot loader is the reference."""
import struct
import subprocess
from pathlib import Path

import pytest

from v3tools.errors import V3Error
from vmm.boot import linux, multiboot
from vmm.launch import RunOptions, run

MBTEST = Path(__file__).resolve().parents[2] / "guests" / "mbtest.bin"


def module(tmp_path):
    path = tmp_path / "module.txt"
    path.write_text("hello from module zero\nsecond line\n")
    return path


def test_mbtest_gets_magic_command_line_memory_and_module(tmp_path):
    serial = tmp_path / "serial.out"
    result, _ = run(RunOptions(kernel=str(MBTEST), initrd=str(module(tmp_path)),
                               append="mb args here", memory_mb=64, serial=f"file:{serial}",
                               timeout=30))
    text = serial.read_text()
    assert result.status == 0 and result.reason == "guest reset", text
    assert text.splitlines() == [
        f"mbtest: magic ok, command line: {MBTEST} mb args here",    # file name first
        f"mbtest: mem_upper {(64 << 10) - 1024:08x}",            # KiB above 1 MiB
        "mbtest: module: hello from module zero",
        "mbtest: loader: v3tools"]


def test_qemu_hands_mbtest_the_same(tmp_path, require_tool):
    qemu = require_tool("qemu-system-x86_64", "qemu-system-x86")
    out = subprocess.run([qemu, "-accel", "tcg", "-m", "64", "-kernel", str(MBTEST), "-initrd",
                          str(module(tmp_path)), "-append", "mb args here", "-serial", "stdio",
                          "-display", "none", "-no-reboot"], capture_output=True, text=True,
                         timeout=60).stdout.splitlines()
    assert out[0].startswith("mbtest: magic ok, command line: ") and out[0].endswith("mb args here")
    assert out[1].startswith("mbtest: mem_upper ")
    assert out[2] == "mbtest: module: hello from module zero"


def test_header_checks(tmp_path):
    data = bytearray(MBTEST.read_bytes())
    assert multiboot.find_header(bytes(data)) == 0
    k = multiboot.parse(bytes(data), "mbtest")
    assert k.segments[0][0] == 0x100000 and k.segments[0][2] == len(data) + 4096
    bad = bytearray(data)
    struct.pack_into("<I", bad, 8, 0)                          # checksum broken
    assert multiboot.find_header(bytes(bad)) is None
    flags = 0x00010003 | (1 << 5)                              # an unknown required feature
    struct.pack_into("<II", data, 4, flags, (-(0x1BADB002 + flags)) & 0xFFFFFFFF)
    path = tmp_path / "mb"
    path.write_bytes(bytes(data))
    with pytest.raises(V3Error, match="requires features 0x20"):
        linux.prepare(path, None, "", 64 << 20)
