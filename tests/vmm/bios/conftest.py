"""Fixtures for the BIOS unit tests: a board with no CPU, and `FakeCall`, a stand-in for the
core's BiosCall (registers, the caller's CF/ZF, physical memory, the return address)."""
import pytest

from vmm.bios import Bios, BiosOptions
from vmm.clock import ManualClock
from vmm.context import BoardContext, BytesMemory
from vmm.media import BytesMedium, Drive

_GPR32 = ("eax", "ebx", "ecx", "edx", "esi", "edi", "ebp", "esp")
_GPR16 = {r[1:]: r for r in _GPR32}
_GPR8 = {"al": ("eax", 0), "ah": ("eax", 8), "bl": ("ebx", 0), "bh": ("ebx", 8),
         "cl": ("ecx", 0), "ch": ("ecx", 8), "dl": ("edx", 0), "dh": ("edx", 8)}
_SEGS = ("ds", "es", "ss", "cs")


class FakeCall:
    def __init__(self, ctx, vector=None, **regs):
        object.__setattr__(self, "regs", {r: 0 for r in _GPR32 + _SEGS})
        object.__setattr__(self, "ctx", ctx)
        object.__setattr__(self, "vector", vector)
        object.__setattr__(self, "cf", False)
        object.__setattr__(self, "zf", False)
        object.__setattr__(self, "returned_to", None)
        for k, v in regs.items():
            setattr(self, k, v)

    def __getattr__(self, name):
        regs = self.__dict__["regs"]
        if name in regs:
            return regs[name]
        if name in _GPR16:
            return regs[_GPR16[name]] & 0xFFFF
        if name in _GPR8:
            reg, shift = _GPR8[name]
            return regs[reg] >> shift & 0xFF
        raise AttributeError(name)

    def __setattr__(self, name, value):
        regs = self.regs
        if name in ("cf", "zf"):
            object.__setattr__(self, name, bool(value))
        elif name in _GPR32 or name in _SEGS:
            assert 0 <= value <= (0xFFFFFFFF if name in _GPR32 else 0xFFFF), (name, value)
            regs[name] = value
        elif name in _GPR16:
            assert 0 <= value <= 0xFFFF, (name, value)
            r = _GPR16[name]
            regs[r] = regs[r] & 0xFFFF0000 | value
        elif name in _GPR8:
            assert 0 <= value <= 0xFF, (name, value)
            r, shift = _GPR8[name]
            regs[r] = regs[r] & ~(0xFF << shift) | value << shift
        else:
            raise AttributeError(f"BiosCall has no writable attribute {name}")

    @staticmethod
    def linear(seg, off):
        return (seg << 4) + off

    def read(self, linear, n):
        return self.ctx.mem.read(linear, n)

    def write(self, linear, data):
        self.ctx.mem.write(linear, data)

    def set_return(self, cs, ip):
        object.__setattr__(self, "returned_to", (cs, ip))


class Board:
    """A BoardContext with RAM, recorded port writes (PIC, PIT, ...) and a Bios after POST."""

    def __init__(self, drives=(), memory=32 << 20, serial=False, post=True, io_reads=None):
        self.ctx = BoardContext(memory=BytesMemory(memory), clock=ManualClock())
        self.ctx.memory_size = memory
        self.ctx.drives = list(drives)
        self.io_writes = []
        self.io_reads = io_reads if io_reads is not None else {}
        self.ctx.io.fallback = self._io
        self.bios = Bios(self.ctx, BiosOptions(bios_console_serial=serial))
        self.ctx.mem.write(0xF0000, self.bios.rom())           # what the core does at reset
        if post:
            self.bios.post.run()

    def _io(self, kind, addr, size, value, write):
        if write:
            self.io_writes.append((addr, value))
            return None
        v = self.io_reads.get(addr, 0xFF)
        return v(addr) if callable(v) else v

    def call(self, vector, **regs):
        """Run the INT `vector` service with the registers given; returns the FakeCall."""
        c = FakeCall(self.ctx, vector=vector, **regs)
        self.service(vector)(c)
        return c

    def service(self, vector):
        return self.bios.trap_service(self.bios.image.traps[f"int{vector:02x}"])

    def mem(self, addr, n):
        return self.ctx.mem.read(addr, n)


def disk_drive(data, kind="disk", sector_size=512, **kw):
    return Drive(kind, BytesMedium(data, sector_size=sector_size, name=kind), **kw)


@pytest.fixture
def board():
    return Board


@pytest.fixture
def drive():
    return disk_drive


@pytest.fixture
def fake_call():
    return FakeCall
