"""PVH boot (vmm/boot/pvh.py): ELF parsing and the PVH note, host decompression of a bzImage's
payload, hvm_start_info, and the entry state. Synthetic kernels here; Debian's amd64 kernel
boots through PVH in tests/vmm/test_real_guests.py."""
import gzip
import struct

import pytest

from v3tools.errors import V3Error
from vmm.boot import linux, pvh


def elf64(entry=0x1000850, note=True, segs=((0x1000000, b"\xf4" * 64, 0x2000),)):
    """A minimal ELF64 executable: PT_LOAD segments and (optionally) a Xen PHYS32_ENTRY note."""
    notes = b""
    if note:
        notes += struct.pack("<III", 4, 8, 6) + b"Xen\0" + b"linux\0\0\0"       # another note
        notes += struct.pack("<III", 4, 8, 18) + b"Xen\0" + struct.pack("<Q", entry)
    phdrs, body = [], b""
    data_off = 64 + 56 * (len(segs) + 1)
    for paddr, data, memsz in segs:
        phdrs.append(struct.pack("<IIQQQQQQ", 1, 5, data_off + len(body), paddr | 0xffffffff80000000,
                                 paddr, len(data), memsz, 0x1000))
        body += data
    phdrs.append(struct.pack("<IIQQQQQQ", 4, 4, data_off + len(body), 0, 0, len(notes), len(notes), 4))
    body += notes
    head = b"\x7fELF" + bytes((2, 1, 1)) + bytes(9) + struct.pack(
        "<HHIQQQIHHHHHH", 2, 62, 1, entry, 64, 0, 0, 64, 56, len(phdrs), 64, 0, 0)
    return head + b"".join(phdrs) + body


def test_segments_and_the_pvh_entry():
    k = pvh.parse_elf(elf64(), "vmlinux")
    assert k.entry == 0x1000850 and k.segments == [(0x1000000, b"\xf4" * 64, 0x2000)]
    assert k.end == 0x1002000
    assert "PVH note at 0x1000850" in k.describe()


def test_an_elf_without_a_pvh_note_or_truncated_is_a_one_line_error():
    with pytest.raises(V3Error, match="no PVH entry note"):
        pvh.parse_elf(elf64(note=False), "vmlinux")
    with pytest.raises(V3Error, match="truncated"):
        pvh.parse_elf(elf64()[:200], "vmlinux")


def test_start_info_version_1():
    e820 = [(0, 0x9FC00, 1), (0x100000, 0x3F00000, 1)]
    blob = pvh.start_info(0x20000, 0xF4AB0, e820, initrd=(0x3000000, 5000))
    magic, version, flags, nr, modlist, cmdline, rsdp, memmap, entries, _ = \
        struct.unpack_from("<IIIIQQQQII", blob)
    assert (magic, version, nr, cmdline, rsdp, entries) == (0x336EC578, 1, 1, 0x20000, 0xF4AB0, 2)
    assert struct.unpack_from("<QQ", blob, modlist - pvh.START_INFO) == (0x3000000, 5000)
    assert struct.unpack_from("<QQI", blob, memmap - pvh.START_INFO + 24) == (0x100000, 0x3F00000, 1)


def test_a_bzimages_payload_is_decompressed_on_the_host_unless_turned_off(tmp_path):
    import importlib.util
    from pathlib import Path
    spec = importlib.util.spec_from_file_location("tl", Path(__file__).with_name("test_linux.py"))
    tl = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tl)
    payload = gzip.compress(elf64())
    path = tl.fake_bzimage(tmp_path, payload=payload + bytes(-len(payload) % 16))
    raw = bytearray(path.read_bytes())
    struct.pack_into("<II", raw, 0x248, 0, len(payload))           # payload_offset/length
    path.write_bytes(bytes(raw))
    boot = linux.prepare(path, None, "console=ttyS0", 64 << 20)
    assert boot.elf is not None and boot.elf.compression == "gzip" and boot.elf.entry == 0x1000850
    assert "decompressed on the host (gzip)" in boot.describe()
    boot = linux.prepare(path, None, "console=ttyS0", 64 << 20, host_decompress=False)
    assert boot.elf is None
    # a payload the host cannot read: the kernel decompresses itself, and the reason is kept
    raw[(4 + 1) * 512:(4 + 1) * 512 + 4] = b"\x02\x21\x4c\x18"          # lz4 legacy magic
    path.write_bytes(bytes(raw))
    boot = linux.prepare(path, None, "", 64 << 20)
    assert boot.elf is None and "not one the host reads" in boot.note


def test_an_elf_kernel_file_is_entered_through_pvh(tmp_path):
    from vmm.config import parse_vm_config
    from vmm.launch import standard_pc_xml
    from vmm.machine import Machine
    path = tmp_path / "vmlinux"
    path.write_bytes(elf64())
    m = Machine(memory_mb=64)
    m.add_devices(parse_vm_config(standard_pc_xml(64).encode(), "<t>").devices)
    m.direct_boot = linux.prepare(path, None, "quiet", 64 << 20)
    m.finish_board()
    env = m.cpu.env
    assert env.eip == 0x1000850 and env.reg(3) == pvh.START_INFO          # EBX
    assert env.seg(1)[:3] == (0x10, 0, 0xFFFFFFFF) and not m.cpu.interrupts_enabled
    assert bytes(m.ram[0x1000000:0x1000040]) == b"\xf4" * 64
    assert bytes(m.ram[0x1000040:0x1002000]) == bytes(0x1FC0)              # memsz beyond filesz
    info = bytes(m.ram[pvh.START_INFO:pvh.START_INFO + 56])
    rsdp = struct.unpack_from("<Q", info, 32)[0]
    assert bytes(m.ram[rsdp:rsdp + 8]) == b"RSD PTR "                       # the ACPI tables
