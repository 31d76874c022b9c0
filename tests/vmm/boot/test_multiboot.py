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
    seen = {}

    def after_load(machine):                 # the machine as the kernel finds it
        seen["bda"] = bytes(machine.ctx.mem.read(0x400, 0x12))
    result, _ = run(RunOptions(kernel=str(MBTEST), initrd=str(module(tmp_path)),
                               append="mb args here", memory_mb=64, serial=f"file:{serial}",
                               timeout=30), on_machine=after_load)
    text = serial.read_text()
    assert result.status == 0 and result.reason == "guest reset", text
    # POST ran first: the BIOS data area lists COM1 and has an equipment word
    assert seen["bda"][:2] == b"\xf8\x03" and seen["bda"][0x10:0x12] != b"\0\0"
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


MB2TEST = MBTEST.with_name("mb2test.bin")


def test_mb2test_gets_the_multiboot2_boot_information(tmp_path):
    """Multiboot2 through --kernel: the boot information's tags, modules from QEMU's list
    spelling (",," is a comma inside an entry), strings starting with the file name."""
    mod = module(tmp_path)
    serial = tmp_path / "serial.out"
    result, _ = run(RunOptions(kernel=str(MB2TEST), initrd=f"{mod} a=1,,2,{mod}",
                               append="mb2 args", memory_mb=64, serial=f"file:{serial}",
                               timeout=30))
    text = serial.read_text()
    assert result.status == 0 and result.reason == "guest reset", text
    assert text.splitlines() == [
        "mb2test: magic ok",
        f"cmdline: {MB2TEST} mb2 args",
        "loader: v3tools",
        f"module: {mod} a=1,2",
        f"module: {mod}",
        f"mem_upper: {(64 << 10) - 1024:08x}",
        "mmap: 00000004",
        "acpi: RSD PTR "]


def test_module_list_spelling():
    assert multiboot.parse_modules("a b=1,c") == [("a", "a b=1"), ("c", "c")]
    assert multiboot.parse_modules("a x,,y") == [("a", "a x,y")]
    with pytest.raises(V3Error, match="empty module entry"):
        multiboot.parse_modules("a,,,")


def test_gzip_compressed_kernel_is_decompressed_on_the_host(tmp_path):
    import gzip
    packed = tmp_path / "mbtest.gz"
    packed.write_bytes(gzip.compress(MBTEST.read_bytes()))
    boot = linux.prepare(packed, None, "x", 64 << 20)
    assert boot.multiboot.compression == "gzip" and boot.cmdline == f"{packed} x".encode()
    assert "gzip-compressed multiboot kernel" in boot.describe()
    junk = tmp_path / "junk.gz"
    junk.write_bytes(gzip.compress(b"no header here" * 100))
    with pytest.raises(V3Error, match="without a multiboot header"):
        linux.prepare(junk, None, "", 64 << 20)


def test_multiboot2_header_checks():
    data = bytearray(MB2TEST.read_bytes())
    assert multiboot.find_header(bytes(data)) is None and multiboot.find_header2(bytes(data)) == 0
    k = multiboot.parse2(bytes(data), "mb2test")
    assert k.version == 2 and k.segments[0][0] == 0x100000 and k.entry > 0x100000
    struct.pack_into("<I", data, 24, 5)                  # ask for the BIOS boot device (type 5)
    with pytest.raises(V3Error, match="information type"):
        multiboot.parse2(bytes(data), "mb2test")


PALACIOS_MULTIBOOT = """<vm class="PC">
  <memory>64</memory>
  <files><file id="hrt" filename="mb2test.bin"/></files>
  <multiboot enable="y" file_id="hrt"/>
  <devices>
    <device class="8259A" id="PIC"/>
    <device class="KEYBOARD" id="keyboard"/>
    <device class="8254_PIT" id="PIT"/>
    <device class="SERIAL" id="serial"/>
  </devices>
</vm>
"""


def test_palacios_multiboot_block_boots_the_kernel_in_the_image(tmp_path, monkeypatch, v3):
    """Palacios' <multiboot enable="y" file_id=ID/>: the Multiboot2 kernel packed in the guest
    image is booted instead of a boot device."""
    import shutil
    monkeypatch.chdir(tmp_path)
    shutil.copy(MB2TEST, "mb2test.bin")
    (tmp_path / "config.xml").write_text(PALACIOS_MULTIBOOT)
    assert v3("build-vm", "config.xml", "-o", "image.dat").exit_code == 0
    r = v3("run", "image.dat", "--serial", "file:serial.out", "--timeout", "30")
    assert r.exit_code == 0, r.stderr
    lines = (tmp_path / "serial.out").read_text().splitlines()
    assert lines[:3] == ["mb2test: magic ok", "cmdline: mb2test.bin", "loader: v3tools"]


def test_multiboot_block_in_the_configuration():
    from v3tools.errors import ConfigError
    from vmm.config import parse_vm_config
    cfg = parse_vm_config(PALACIOS_MULTIBOOT.encode())
    assert cfg.multiboot == "hrt"
    off = parse_vm_config(PALACIOS_MULTIBOOT.replace('enable="y"', 'enable="n"').encode())
    assert off.multiboot is None
    with pytest.raises(ConfigError, match="needs file_id"):
        parse_vm_config(PALACIOS_MULTIBOOT.replace(' file_id="hrt"', "").encode())
