"""REP INS/OUTS block moves (vmm/cpu/stringio.py) against the engine's own element-by-element
execution: the same code runs on a port without and with block handlers, and memory, registers,
the device's sequence of accesses and page faults must come out the same."""
import struct

import pytest
from unicorn import x86_const as X

from vmm.cpu import ucinternals as U
from vmm.machine import GuestHalted, Machine

PORT = 0x300


class Device:
    """A port whose reads return a counting byte stream and whose writes are recorded.
    `limit` caps the elements one block read offers (a device that offers fewer)."""

    def __init__(self, limit=None):
        self.pos = 0
        self.out = []
        self.reads = 0
        self.limit = limit

    def _next(self, size):
        v = bytes((self.pos + i) * 7 & 0xFF for i in range(size))
        self.pos += size
        return v

    def read(self, offset, size):
        self.reads += 1
        return int.from_bytes(self._next(size), "little")

    def write(self, offset, size, value):
        self.out.append((size, value))

    def read_block(self, size, count):
        count = min(count, self.limit or count)
        self.reads += count
        return b"".join(self._next(size) for _ in range(count))

    def write_block(self, size, data):
        for i in range(0, len(data), size):
            self.out.append((size, int.from_bytes(data[i:i + size], "little")))


def machine(mode, limit=None):
    m = Machine(memory_mb=16)
    dev = Device(limit)
    blocks = None if mode == "engine" else {0: (dev.read_block, dev.write_block)}
    m.ctx.io.attach(PORT, 1, dev.read, dev.write, "test-strio", widths=(1, 2, 4), blocks=blocks)
    return m, dev


def state(m, dev, ranges):
    env = m.cpu.env
    regs = [env.reg(i) for i in range(8)] + [env.eip]
    mem = [bytes(m.ram[a:b]) for a, b in ranges]
    return regs, mem, dev.out, dev.reads


# Real mode, ES = 0x1000, FS = 0x2000, DX = 0x300:
#   cld; di=0x10: cx=37 rep insb; cx=300 rep insw; cx=0 rep insd; cx=100 rep insd
#   std; di=0x3000 cx=50 rep insw; di=0x3800 cx=20 rep insd; di=0x3f00 ecx=10 a32 rep insd
#   cld; insw (no REP); si=0x10 cx=200 es rep outsw; std si=0x3000 cx=30 es rep outsd;
#   si=0x100 cx=30 fs rep outsb; cld; mov ebx, 0x12345678; cli; hlt
REAL_MODE = bytes.fromhex(
    "b800108ec0b800208ee0ba0003fcbf1000b92500f36cb92c01f36db90000f3666db96400f3666dfdbf0030b9"
    "3200f36dbf0038b91400f3666dbf003f66b90a000000f366676dfc6dbe1000b9c800f3266ffdbe0030b91e00"
    "f326666fbe0001b91e00f3646efc66bb78563412faf4")


def run_real(mode, limit=None):
    m, dev = machine(mode, limit)
    m.uc.mem_write(0x20100, bytes(range(256)))
    m.uc.mem_write(0x7C00, REAL_MODE)
    m.cpu.reset(cs=0, ip=0x7C00)
    with pytest.raises(GuestHalted):
        m.run(timeout=10)
    assert m.cpu.env.reg(3) & 0xFFFFFFFF == 0x12345678
    return m, state(m, dev, [(0x10000, 0x20000)])


@pytest.mark.parametrize("limit", [None, 7])
def test_real_mode_sizes_directions_segments_match_the_engine(limit):
    _, ref = run_real("engine")
    m, got = run_real("blocks", limit)
    assert m.stringio.blocks > 0
    assert got == ref


# 32-bit flat protected mode with paging; linear 0x400000-0x407FFF mapped 1:1 except the
# not-present page 0x405000. `mov edi/esi, START; mov ecx, 0x800; cld/std; rep insd/outsd;
# mov ebx, 0x12345678; hlt`, and a #PF handler at 0x7D00 that stores the error code, CR2, ECX,
# EDI and ESI at 0x8000 and halts.
PM_CODE = bytes.fromhex("66ba0003bf44332211be44332211b900080000fcf36dbb78563412f4")
PM_HANDLER = bytes.fromhex("58a3008000000f20d0a304800000890d08800000893d0c800000893510800000f4")


def run_paged(flat, mode, start, down, outs, width=4):
    m, dev = machine(mode)
    code = bytearray(PM_CODE)
    code[5:9] = code[10:14] = struct.pack("<I", start)
    code[19] = 0xFD if down else 0xFC
    code[21] = (0x6E if outs else 0x6C) + (width > 1)
    if width == 2:
        code[20:20] = b"\x66"
    m.uc.mem_write(0x7C00, bytes(code))
    m.uc.mem_write(0x7D00, PM_HANDLER)
    m.uc.mem_write(0x400000, bytes(range(256)) * 0x80)
    pd, pt0, pt1 = 0x10000, 0x11000, 0x12000
    m.uc.mem_write(pd, struct.pack("<II", pt0 | 3, pt1 | 3))
    m.uc.mem_write(pt0, b"".join(struct.pack("<I", (i << 12) | 3) for i in range(1024)))
    m.uc.mem_write(pt1, b"".join(struct.pack("<I", 0 if i == 5 else (0x400000 + (i << 12)) | 3)
                                 for i in range(8)))
    # IDT at 0x9000: vector 14 -> 0008:00007D00, 32-bit interrupt gate
    m.uc.mem_write(0x9000 + 14 * 8, struct.pack("<HHHH", 0x7D00, 0x08, 0x8E00, 0))
    m.uc.reg_write(X.UC_X86_REG_IDTR, (0, 0x9000, 0x7FF, 0))
    m.uc.reg_write(X.UC_X86_REG_CR3, pd)
    env = flat(m, cr0=0x80000011)
    env.set_reg(4, 0x7000)
    env.eip = 0x7C00
    with pytest.raises(GuestHalted):
        m.run(timeout=10)
    return m, state(m, dev, [(0x8000, 0x8020), (0x400000, 0x408000)])


@pytest.mark.parametrize("outs", [False, True], ids=["ins", "outs"])
@pytest.mark.parametrize("start,down", [(0x404F00, False), (0x404F02, False),
                                        (0x406100, True), (0x406102, True),
                                        (0x400100, False), (0x407E00, True)])
def test_page_fault_in_the_middle_is_raised_by_the_engine_exactly(start, down, outs,
                                                                 flat_protected_mode):
    _, ref = run_paged(flat_protected_mode, "engine", start, down, outs)
    m, got = run_paged(flat_protected_mode, "blocks", start, down, outs)
    assert m.stringio.blocks > 0
    assert got == ref


def test_word_elements_with_paging(flat_protected_mode):
    _, ref = run_paged(flat_protected_mode, "engine", 0x404F01, False, False, width=2)
    _, got = run_paged(flat_protected_mode, "blocks", 0x404F01, False, False, width=2)
    assert got == ref


# 64-bit mode (identity-mapped first 2 MiB): `mov dx, 0x300; mov rdi, 0x10000; mov rcx, 100;
# rep insd; mov edi, 0x20000; mov ecx, 10; a32 rep insw; std; mov rsi, 0x13000; mov rcx, 50;
# rep outsd; fs rep outsb (FS base 0x1000, rsi 0x100, rcx 20); cld; hlt`
LONG_MODE = bytes.fromhex(
    "66ba0003" "48c7c700000100" "48c7c164000000" "f36d"
    "bf00000200" "b90a000000" "f36667 6d"
    "fd" "48c7c600300100" "48c7c132000000" "f36d6f"
    "48c7c600010000" "48c7c114000000" "f3646e" "fcf4")


def run_long(flat, mode):
    m, dev = machine(mode)
    m.uc.mem_write(0x7C00, LONG_MODE)
    m.uc.mem_write(0x11000, bytes(range(256)) * 32)
    m.uc.mem_write(0x1100, bytes(range(100, 200)))
    m.uc.mem_write(0x30000, struct.pack("<Q", 0x31000 | 3))
    m.uc.mem_write(0x31000, struct.pack("<Q", 0x32000 | 3))
    m.uc.mem_write(0x32000, struct.pack("<Q", 0x83))
    m.uc.reg_write(X.UC_X86_REG_MSR, (0xC0000080, 0x100))      # EFER.LME
    m.uc.reg_write(X.UC_X86_REG_CR4, 0x20)
    m.uc.reg_write(X.UC_X86_REG_CR3, 0x30000)
    env = flat(m, cr0=0x80000011, long_mode=True)
    env.set_seg(U.SEG_FS, 0, 0x1000, 0xFFFFFFFF, 0x00CF9300)
    assert m.cpu.mode() == "long"
    env.eip = 0x7C00
    with pytest.raises(GuestHalted):
        m.run(timeout=10)
    return m, state(m, dev, [(0x10000, 0x21000)])


def test_long_mode_a64_a32_and_fs_base_match_the_engine(flat_protected_mode):
    _, ref = run_long(flat_protected_mode, "engine")
    m, got = run_long(flat_protected_mode, "blocks")
    assert m.stringio.blocks == 4
    assert got == ref
