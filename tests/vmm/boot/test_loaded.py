"""The boot loader hand-off (vmm/boot/loaded.py): reading the boot_params a loader left, the
layout decision and every refusal. Synthetic kernels here; Debian's amd64 kernel is handed
over from isolinux in tests/vmm/test_real_guests.py."""
import gzip
import struct
import sys
from pathlib import Path

import pytest

from vmm.boot import linux, loaded, pvh

sys.path.insert(0, str(Path(__file__).parent))
from test_pvh import elf64  # noqa: E402  (the synthetic ELF kernel of the PVH tests)

MB = 1 << 20
RAM = [(0, 0x9FC00, 1), (0x9FC00, 0x400, 2), (0x100000, 256 * MB - 0x100000, 1)]
BP = 0x90000


def boot_params(version=0x020F, code32_start=0x100000, payload=(0x3A0, 0x1000), e820=RAM,
                ramdisk=(200 * MB, 4 * MB), cmdline=0x9E000, init_size=0x800000, xload=1,
                loadflags=0x01, syssize=0x80000 // 16):
    bp = bytearray(4096)
    bp[0x1E8] = len(e820)
    for i, entry in enumerate(e820):
        struct.pack_into("<QQI", bp, 0x2D0 + 20 * i, *entry)
    struct.pack_into("<I", bp, 0x1F4, syssize)
    bp[0x202:0x206] = b"HdrS"
    struct.pack_into("<H", bp, 0x206, version)
    bp[0x211] = loadflags
    struct.pack_into("<III", bp, 0x214, code32_start, *ramdisk)
    struct.pack_into("<I", bp, 0x228, cmdline)
    struct.pack_into("<IBBH", bp, 0x230, 0x200000, 1, 0, xload)
    struct.pack_into("<I", bp, 0x238, 2047)
    struct.pack_into("<II", bp, 0x248, *payload)
    struct.pack_into("<I", bp, 0x260, init_size)
    return bytes(bp)


def kernel(**kw):
    """A gzip payload holding a 64-bit vmlinux-like ELF (physical entry, as Linux's)."""
    return gzip.compress(elf64(entry=0x1000000, **kw))


def test_the_setup_header_a_loader_left():
    hdr = loaded.parse_boot_params(boot_params(), 0x100000)
    assert (hdr.version, hdr.code32_start, hdr.payload) == (0x020F, 0x100000, (0x3A0, 0x1000))
    assert hdr.ramdisk == (200 * MB, 4 * MB) and hdr.cmdline == (0x9E000, 2048)
    assert hdr.e820 == RAM and hdr.image_size == 0x80000 and hdr.init_size == 0x800000


@pytest.mark.parametrize("bp, why", [
    (bytes(4096), "no Linux setup header"),
    (boot_params(version=0x0207), "older than 2.08"),
    (boot_params(code32_start=0x1000000), "code32_start is 0x1000000, not the entry 0x100000"),
    (boot_params(payload=(0x3A0, 0)), "payload_length 0"),
    (boot_params(e820=[]), "0 E820 entries"),
    (boot_params(loadflags=0), "zImage"),
])
def test_headers_the_host_leaves_alone(bp, why):
    with pytest.raises(loaded.Refused, match=why):
        loaded.parse_boot_params(bp, 0x100000)


def test_a_64_bit_kernel_goes_to_its_physical_address_with_long_mode_tables():
    hdr = loaded.parse_boot_params(boot_params(), 0x100000)
    p = loaded.plan(hdr, BP, kernel())
    assert (p.bits, p.entry, p.compression) == (64, 0x1000000, "gzip")
    assert p.span == (0x1000000, 0x1800000)            # init_size counts
    assert p.tables == 0x100000                         # in the spent compressed image
    assert "decompressed on the host (gzip)" in p.describe()
    memory = {}
    loaded.load(p, memory.__setitem__)
    assert memory[0x100000] == linux.gdt64()
    tables = memory[0x101000]
    assert len(tables) == linux.IDENTITY_TABLES_SIZE
    assert struct.unpack_from("<Q", tables, 0)[0] == 0x102003          # PML4 -> PDPT
    assert struct.unpack_from("<Q", tables, 0x1000 + 24)[0] == 0x106003  # 4th GiB's PD
    assert struct.unpack_from("<Q", tables, 0x2000 + 8)[0] == (1 << 21) | 0x83


def test_tables_go_after_the_kernel_when_the_image_is_inside_it():
    hdr = loaded.parse_boot_params(boot_params(code32_start=0x1000000), 0x1000000)
    p = loaded.plan(hdr, BP, kernel())
    assert p.tables == 0x1800000


def test_the_kernel_version_comes_from_its_banner():
    segs = ((0x1000000, b"\xf4" * 16 + b"Linux version 6.1.0-99-amd64 (x@y) #1\0", 0x2000),)
    p = loaded.plan(loaded.parse_boot_params(boot_params(), 0x100000), BP, kernel(segs=segs))
    assert p.version == "6.1.0-99-amd64"


@pytest.mark.parametrize("change, payload, why", [
    ({}, b"not compressed", "not one the host reads"),
    ({}, gzip.compress(b"\x7fELF junk"), "not a little-endian ELF|unknown ELF class|truncated"),
    ({"xload": 0}, None, "64-bit ELF in a bzImage whose header says 32-bit"),
    ({"ramdisk": (0x1400000, MB)}, None, "the initrd .* lies where the kernel goes"),
    ({"cmdline": 0x17FF000}, None, "the command line"),
    ({"e820": [(0, 0x9FC00, 1), (0x100000, 8 * MB, 1)]}, None, "is not RAM in the E820 map"),
])
def test_layouts_the_host_leaves_alone(change, payload, why):
    hdr = loaded.parse_boot_params(boot_params(**change), 0x100000)
    with pytest.raises(loaded.Refused, match=why):
        loaded.plan(hdr, BP, payload or kernel())


def test_no_room_for_the_entry_tables_is_refused():
    e820 = [(0, 0x9FC00, 1), (0x1000000, 0x800000, 1)]     # the kernel's memory and no more
    hdr = loaded.parse_boot_params(boot_params(e820=e820, code32_start=0x1000000,
                                               ramdisk=(0, 0)), 0x1000000)
    with pytest.raises(loaded.Refused, match="no free memory"):
        loaded.plan(hdr, BP, kernel())


def test_setup_data_nodes_and_a_list_that_does_not_end():
    mem = {0x5000: struct.pack("<QII", 0x6000, 1, 32), 0x6000: struct.pack("<QII", 0, 2, 8)}
    assert loaded.setup_data_nodes(0x5000, lambda a, n: mem[a]) == [(0x5000, 48), (0x6000, 24)]
    loop = {0x5000: struct.pack("<QII", 0x5000, 1, 0)}
    with pytest.raises(loaded.Refused, match="more than 64 nodes"):
        loaded.setup_data_nodes(0x5000, lambda a, n: loop[a])


def test_physical_entry_of_a_virtual_entry_point():
    # an ELF whose entry is virtual (the segment's vaddr is paddr | 0xffffffff80000000)
    assert pvh.physical_entry(elf64(entry=0xffffffff81000010), "x") == (64, 0x1000010)
    assert pvh.physical_entry(elf64(entry=0x1000010), "x") == (64, 0x1000010)


def test_a_loader_entering_code32_start_is_handed_over_in_long_mode():
    """A machine with the hand-off armed; the 'boot loader' is the test: flat 32-bit
    protected mode at 1 MiB, ESI = boot_params, the bzImage's payload in place. The CPU ends
    in long mode at the ELF's entry (a HLT) with RSI = boot_params."""
    from v3tools.errors import VMStop
    from vmm.config import parse_vm_config
    from vmm.launch import standard_pc_xml
    from vmm.machine import Machine
    m = Machine(memory_mb=64)
    m.add_devices(parse_vm_config(standard_pc_xml(64).encode(), "<t>").devices)
    m.host_decompress = True
    m.finish_board()
    payload = kernel()
    e820 = [(0, 0x9FC00, 1), (0x100000, 63 * MB, 1)]
    m.ctx.mem.write(BP, boot_params(payload=(0x1000, len(payload)), e820=e820, ramdisk=(0, 0),
                                    init_size=0x10000, loadflags=0x03))
    m.ctx.mem.write(0x100000, b"\x90\x90\xeb\xfe")             # nop; nop; jmp $
    m.ctx.mem.write(0x101000, payload)
    linux.enter_protected(m.cpu, linux.GDT_ADDR, 0x100000, BP)
    m.ctx.mem.write(linux.GDT_ADDR, linux.gdt())
    with pytest.raises(VMStop, match="halted with interrupts disabled"):
        m.run(timeout=20)
    p = m.boot_handoff.result
    assert isinstance(p, loaded.Plan) and p.bits == 64 and p.tables == 0x100000
    assert m.cpu.mode() == "long" and m.cpu.env.eip == 0x1000001          # after the HLT
    assert m.cpu.env.reg(6) == BP
    assert m.ram[BP + 0x211] == 0x01                                      # KASLR flag cleared
    assert m.boot_handoff.hooks == []


def test_an_unreadable_payload_leaves_the_hand_off_to_the_guest():
    from v3tools.errors import VMStop
    from vmm.config import parse_vm_config
    from vmm.launch import standard_pc_xml
    from vmm.machine import Machine
    m = Machine(memory_mb=64)
    m.add_devices(parse_vm_config(standard_pc_xml(64).encode(), "<t>").devices)
    m.host_decompress = True
    m.finish_board()
    m.ctx.mem.write(BP, boot_params(payload=(0x1000, 64)))
    m.ctx.mem.write(0x100000, b"\x90\xf4")                     # nop; hlt: the 'decompressor'
    linux.enter_protected(m.cpu, linux.GDT_ADDR, 0x100000, BP)
    m.ctx.mem.write(linux.GDT_ADDR, linux.gdt())
    with pytest.raises(VMStop, match="halted with interrupts disabled"):
        m.run(timeout=20)
    assert "not one the host reads" in m.boot_handoff.result
    assert m.cpu.mode() == "protected 32-bit" and m.cpu.env.eip == 0x100002
