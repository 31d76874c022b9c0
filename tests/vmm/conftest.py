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
