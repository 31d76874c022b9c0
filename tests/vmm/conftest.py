"""Fixtures for VMM tests: a bare machine (CPU, memory, no devices, no BIOS) that runs one of
the project's tiny guests loaded at 0x7C00, with port 0xE9 captured."""
from pathlib import Path

import pytest

from vmm.net import Backend

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


class LoopBackend(Backend):
    """A network backend that keeps every frame the card sends."""

    def __init__(self):
        super().__init__()
        self.sent = []

    def send(self, frame):
        self.sent.append(bytes(frame))


def _nic_board(card, memory=4 << 20, options=""):
    """Network card `card` (a PciNic class) on the smallest board its Linux driver meets: the
    8259A, the PCI bus, the i440FX and the PIIX3 (INTx routing through PIRQ and ELCR), id
    "nic0" with MAC 52:54:00:ab:cd:ef, connected to a LoopBackend, its BARs and interrupt line
    assigned as the BIOS does; `options` is more XML for the card. Returns (ctx, nic, backend)."""
    import io
    from lxml import etree
    from vmm.bios import pci_init
    from vmm.clock import ManualClock
    from vmm.config import DeviceSpec
    from vmm.context import BoardContext, BytesMemory
    from vmm.devices.i440fx import I440FX
    from vmm.devices.i8259 import PIC8259
    from vmm.devices.pci import PciBus
    from vmm.devices.piix3 import PIIX3
    from vmm.log import VMMLog
    from vmm.net import Port

    def spec(xml):
        return DeviceSpec.from_element(etree.fromstring(xml))

    c = BoardContext(memory=BytesMemory(memory), clock=ManualClock(),
                     log=VMMLog(stream=io.StringIO()))
    c.memory_size = memory
    c.add_device(PIC8259("pic"))
    c.add_device(PciBus("pci0"))
    c.add_device(I440FX("northbridge", "pci0"))
    c.add_device(PIIX3.from_spec(spec('<device class="PIIX3" id="sb"><bus>pci0</bus></device>'), c))
    nic = card.from_spec(spec(f'<device class="{card.CLASS_NAME}" id="nic0"><bus>pci0</bus>'
                              f'<mac>52:54:00:ab:cd:ef</mac>{options}</device>'), c)
    c.add_device(nic)
    loop = LoopBackend()
    nic.connect_port(Port(loop))
    pci_init.assign(c)
    return c, nic, loop


@pytest.fixture
def nic_board():
    """_nic_board, for the network cards' device tests."""
    return _nic_board

