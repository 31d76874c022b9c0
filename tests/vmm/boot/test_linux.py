"""Direct kernel boot (vmm/boot/linux.py): the bzImage checks, the layout, the zero page, and
the CPU state at the 32-bit entry. A synthetic bzImage carries just a valid setup header; the
real Debian kernels boot in tests/vmm/test_real_guests.py."""
import struct

import pytest

from v3tools.errors import V3Error
from vmm.boot import linux


def fake_bzimage(tmp_path, version=0x020F, setup_sects=4, payload=b"\x90" * 4096, loadflags=1,
                 cmdline_size=2047, initrd_max=0x7FFFFFFF, init_size=0x200000, xload=1,
                 name="bzImage"):
    data = bytearray((setup_sects + 1) * 512)
    data[0x1F1] = setup_sects
    struct.pack_into("<I", data, 0x1F4, len(payload) // 16)
    data[0x1FE:0x200] = b"\x55\xAA"
    data[0x200:0x202] = b"\xEB\x66"                   # jmp over the header: ends at 0x268
    data[0x202:0x206] = b"HdrS"
    struct.pack_into("<H", data, 0x206, version)
    data[0x211] = loadflags
    struct.pack_into("<I", data, 0x214, 0x100000)
    struct.pack_into("<I", data, 0x22C, initrd_max)
    struct.pack_into("<HI", data, 0x236, xload, cmdline_size)
    struct.pack_into("<I", data, 0x260, init_size)
    path = tmp_path / name
    path.write_bytes(bytes(data) + payload)
    return path


def test_a_bzimage_is_recognised(tmp_path):
    k = linux.read_bzimage(fake_bzimage(tmp_path))
    assert (k.version, k.setup_sects, k.cmdline_size, k.is_64bit) == (0x020F, 4, 2047, True)
    assert k.payload == b"\x90" * 4096 and k.header_end == 0x268
    assert "boot protocol 2.15, 64-bit" in k.describe()


@pytest.mark.parametrize("mutate, message", [
    (lambda p: p.write_bytes(b"just text\n" * 100), "neither a Linux bzImage .* nor an ELF kernel"),
    (lambda p: p.write_bytes(b"\x7fELF" + bytes(0x400)), "not a little-endian ELF file"),
    (lambda p: p.write_bytes(p.read_bytes()[:3000]), "truncated: the setup header announces"),
])
def test_bad_kernels_are_one_line_errors(tmp_path, mutate, message):
    path = fake_bzimage(tmp_path)
    mutate(path)
    with pytest.raises(V3Error, match=message) as exc:
        linux.prepare(path, None, "", 64 << 20)
    assert "\n" not in str(exc.value) and str(path) in str(exc.value)


def test_old_protocols_and_zimages_are_refused(tmp_path):
    with pytest.raises(V3Error, match="boot protocol 2.4 is older than 2.06"):
        linux.read_bzimage(fake_bzimage(tmp_path, version=0x0204))
    with pytest.raises(V3Error, match="zImage"):
        linux.read_bzimage(fake_bzimage(tmp_path, loadflags=0))


def test_initrd_goes_high_below_the_kernels_limit(tmp_path):
    initrd = tmp_path / "initrd"
    initrd.write_bytes(b"\x1f\x8b" + bytes(10_000))
    boot = linux.prepare(fake_bzimage(tmp_path), initrd, "console=ttyS0", 64 << 20)
    assert boot.initrd_addr == ((64 << 20) - 10_002) & ~0xFFF
    boot = linux.prepare(fake_bzimage(tmp_path, initrd_max=0x37FFFFF), initrd, "", 256 << 20)
    assert boot.initrd_addr + 10_002 <= 0x3800000 and boot.initrd_addr % 4096 == 0


def test_initrd_that_does_not_fit_and_long_command_lines(tmp_path):
    initrd = tmp_path / "initrd"
    initrd.write_bytes(bytes(30 << 20))
    with pytest.raises(V3Error, match=r"--initrd .*do not fit in RAM.*raise -m"):
        linux.prepare(fake_bzimage(tmp_path), initrd, "", 32 << 20)
    with pytest.raises(V3Error, match="at most 255 \\(cmdline_size\\)"):
        linux.prepare(fake_bzimage(tmp_path, cmdline_size=255), None, "x" * 256, 64 << 20)
    with pytest.raises(V3Error, match="needs memory up to"):
        linux.prepare(fake_bzimage(tmp_path, init_size=0x4000000), None, "", 32 << 20)


def test_zero_page_carries_the_header_and_the_loader_fields(tmp_path):
    from vmm.bios.int15 import memory_map
    initrd = tmp_path / "initrd"
    initrd.write_bytes(bytes(5000))
    boot = linux.prepare(fake_bzimage(tmp_path), initrd, "console=ttyS0", 64 << 20)
    e820 = memory_map(64 << 20)
    zp = linux.boot_params(boot, e820)
    raw = boot.kernel.data
    assert zp[0x202:0x206] == b"HdrS" and zp[0x1F1] == raw[0x1F1]
    assert zp[0x210] == 0xFF and zp[0x211] & 1                    # type_of_loader, LOADED_HIGH
    assert struct.unpack_from("<III", zp, 0x218) == (boot.initrd_addr, 5000, 0)
    assert struct.unpack_from("<I", zp, 0x228)[0] == linux.CMDLINE_ADDR
    assert zp[0x1E8] == len(e820)
    for i, (base, length, kind) in enumerate(e820):
        assert struct.unpack_from("<QQI", zp, 0x2D0 + 20 * i) == (base, length, kind)
    assert (zp[0x06], zp[0x07], zp[0x0E], zp[0x0F]) == (3, 80, 25, 1)   # VGA text 80x25


def test_the_cpu_starts_at_the_32bit_entry_in_flat_protected_mode(tmp_path):
    from unicorn import x86_const as X
    from vmm.config import parse_vm_config
    from vmm.launch import standard_pc_xml
    from vmm.machine import Machine
    m = Machine(memory_mb=64)
    m.add_devices(parse_vm_config(standard_pc_xml(64).encode(), "<t>").devices)
    m.direct_boot = linux.prepare(fake_bzimage(tmp_path), None, "quiet", 64 << 20)
    m.finish_board()
    env, uc = m.cpu.env, m.uc
    assert env.seg(1)[:3] == (0x10, 0, 0xFFFFFFFF) and env.seg(3)[:3] == (0x18, 0, 0xFFFFFFFF)
    assert uc.reg_read(X.UC_X86_REG_CR0) & 0x80000001 == 1          # PE, no paging
    assert env.eip == 0x100000 and env.reg(6) == linux.BOOT_PARAMS   # ESI = zero page
    assert not m.cpu.interrupts_enabled
    assert bytes(m.ram[0x100000:0x101000]) == b"\x90" * 4096
    assert bytes(m.ram[linux.CMDLINE_ADDR:linux.CMDLINE_ADDR + 6]) == b"quiet\0"
    assert m.cpu.mode().startswith("protected")
