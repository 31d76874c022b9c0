"""Fixtures for VMM tests: a bare machine (CPU, memory, no devices, no BIOS) that runs one of
the project's tiny guests loaded at 0x7C00, with port 0xE9 captured."""
from pathlib import Path

import pytest

GUESTS = Path(__file__).resolve().parents[1] / "guests"


class Bare:
    def __init__(self, memory_mb=16):
        from vmm.machine import Machine
        self.machine = Machine(memory_mb=memory_mb)
        self.out = bytearray()
        self.machine.ctx.io.attach(0xE9, 1, lambda o, s: 0,
                                   lambda o, s, v: self.out.append(v), "test-e9")

    def load(self, name, addr=0x7C00):
        code = (GUESTS / name).read_bytes()
        self.machine.uc.mem_write(addr, code)
        self.machine.cpu.reset(cs=0, ip=addr)
        return self

    def run(self, **kw):
        return self.machine.run(**kw)

    @property
    def text(self):
        return self.out.decode("latin-1")


@pytest.fixture
def bare():
    return Bare


FLAT_GDT = bytes.fromhex("0000000000000000 ffff0000009acf00 ffff00000092cf00")
CODE32, CODE64, DATA = 0x00CF9B00, 0x00AF9B00, 0x00CF9300


def _flat_protected_mode(m, gdt_at=0x800, cr0=0x11, long_mode=False):
    """Flat protected mode as a boot loader leaves it, set up by the host: FLAT_GDT at
    `gdt_at` (selector 0x08 code, 0x10 data; base 0, limit 4 GiB), CS = 0x08, DS/ES/SS = 0x10,
    CR0 = `cr0`. For paging or long mode the caller loads CR3, CR4 and EFER first and passes
    PG in `cr0` (and long_mode=True for a 64-bit CS). Returns the CPU state for further edits
    (EIP, ESP)."""
    code = CODE64 if long_mode else CODE32
    from unicorn import x86_const as X
    from vmm.cpu import ucinternals as U
    m.uc.mem_write(gdt_at, FLAT_GDT)
    m.uc.reg_write(X.UC_X86_REG_GDTR, (0, gdt_at, len(FLAT_GDT) - 1, 0))
    m.uc.reg_write(X.UC_X86_REG_CR0, cr0)
    env = m.cpu.env
    env.set_seg(U.SEG_CS, 0x08, 0, 0xFFFFFFFF, code)
    for seg in (U.SEG_DS, U.SEG_SS, U.SEG_ES):
        env.set_seg(seg, 0x10, 0, 0xFFFFFFFF, DATA)
    env.hflags = env.hflags | U.HF_PE
    env.recompute_hflags()
    return env


@pytest.fixture
def flat_protected_mode():
    """_flat_protected_mode, for tests that build their own Machine."""
    return _flat_protected_mode
