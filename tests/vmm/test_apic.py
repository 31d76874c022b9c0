"""LAPIC and IOAPIC (vmm/devices/lapic.py, ioapic.py) driven by the apictest guest on a
machine whose clock moves only when the guest halts, so virtual times are exact."""
import pytest

from vmm.clock import ManualClock
from vmm.machine import GuestHalted, Machine


class ApicBoard:
    def __init__(self):
        from vmm.devices.ioapic import IOAPIC
        from vmm.devices.lapic import LocalAPIC
        self.clock = ManualClock()
        self.machine = m = Machine(memory_mb=16, clock=self.clock)
        ctx = m.ctx
        self.lapic = ctx.add_device(LocalAPIC("apic"))
        self.ioapic = ctx.add_device(IOAPIC("ioapic", lapic_id="apic"))
        self.out = []                                  # (char, virtual ns)
        self.pin16 = self.ioapic.pin_line(16)
        ctx.io.attach(0xE9, 1, lambda o, s: 0,
                      lambda o, s, v: self.out.append((chr(v), self.clock.now_ns())), "test-e9")
        ctx.io.attach(0xE0, 1, lambda o, s: 0, lambda o, s, v: self.pin16.set(v), "test-pin16")
        ctx.io.attach(0xE1, 1, lambda o, s: 0, lambda o, s, v: ctx.irq(0).pulse(), "test-irq0")
        m.finish_board()

    def run_guest(self, name):
        from pathlib import Path
        code = (Path(__file__).resolve().parents[1] / "guests" / name).read_bytes()
        self.machine.uc.mem_write(0x7C00, code)
        self.machine.cpu.reset(cs=0, ip=0x7C00)
        with pytest.raises(GuestHalted):
            self.machine.run(timeout=30)

    @property
    def text(self):
        return "".join(c for c, _ in self.out)

    def times(self, ch):
        return [t for c, t in self.out if c == ch]


@pytest.fixture(scope="module")
def board():
    b = ApicBoard()
    b.run_guest("apictest.bin")
    return b


def test_apictest_output(board):
    assert board.text == "TTTTTP C O Z LRRLR- M E I DONE"


def test_periodic_timer_in_virtual_time(board):
    # divide by 16 at the 1 MHz crystal clock: 125 counts = 2 ms, from the write at t = 0
    assert board.times("T") == [2_000_000 * k for k in range(1, 6)]
    assert board.lapic.timer_fires == 5 + 1              # and the one-shot below


def test_one_shot_timer_in_virtual_time(board):
    # started right after the fifth tick (10 ms): 3000 counts divided by 1 = 3 ms
    assert board.times("O")[0] == 13_000_000


def test_level_pin_remote_irr_and_eoi(board):
    assert board.ioapic.sent[16] == 2                  # resent once after the first EOI
    assert not board.ioapic.redir[16] & (1 << 14)      # remote IRR clear at the end
    assert board.ioapic.sent[2] == 1                   # IRQ 0 through the pin-2 override


def test_crystal_clock_matches_cpuid():
    from vmm.cpu import cpuid
    from vmm.devices import lapic
    assert lapic.CRYSTAL_HZ == cpuid.CRYSTAL_HZ


def test_cpuid_advertises_the_apic_with_a_lapic(board):
    assert board.machine.cpu.cpuid.lookup(1, 0)[3] & (1 << 9)


@pytest.fixture
def bare_apics():
    from vmm.context import BoardContext
    from vmm.devices.ioapic import IOAPIC
    from vmm.devices.lapic import LocalAPIC
    ctx = BoardContext(clock=ManualClock())
    lapic = ctx.add_device(LocalAPIC("apic"))
    ioapic = ctx.add_device(IOAPIC("ioapic", lapic_id="apic"))
    lapic.reset()
    ioapic.reset()
    return ctx, lapic, ioapic


@pytest.mark.parametrize("offset, value, words", [
    (0x040, None, "reserved register 0x040"),
    (0x044, None, "not 16-byte aligned"),
    (0x320, 0x40040, "LVT timer"),                 # TSC-deadline mode
    (0x320, 0x00005, "LVT timer"),                 # illegal vector 5
    (0x350, 0x00300, "LVT LINT0"),                 # reserved delivery mode 3
    (0x3E0, 0x4, "timer divide configuration"),    # reserved bit
])
def test_lapic_misuse_names_the_register(bare_apics, offset, value, words):
    from v3tools.errors import Unimplemented
    ctx, lapic, _ = bare_apics
    with pytest.raises(Unimplemented) as e:
        if value is None:
            ctx.mmio.read(0xFEE00000 + offset, 4)
        else:
            ctx.mmio.write(0xFEE00000 + offset, 4, value)
    assert words in str(e.value)


@pytest.mark.parametrize("offset", [0x030, 0x090, 0x0A0, 0x0C0, 0x100, 0x180, 0x200, 0x390])
def test_lapic_read_only_registers_ignore_writes(bare_apics, offset):
    """Version, APR, PPR, RRD, ISR/TMR/IRR and the current count: the write is dropped, as on
    the hardware, and the register reads as before."""
    ctx, lapic, _ = bare_apics
    before = ctx.mmio.read(0xFEE00000 + offset, 4)
    ctx.mmio.write(0xFEE00000 + offset, 4, 0xFFFFFFFF)
    assert ctx.mmio.read(0xFEE00000 + offset, 4) == before


def test_lapic_narrow_access_is_a_failstop(bare_apics):
    from v3tools.errors import V3Error
    ctx, _, _ = bare_apics
    with pytest.raises(V3Error):
        ctx.mmio.read(0xFEE00020, 1)


@pytest.mark.parametrize("reg, value, words", [
    (0x10, 0x300, "redirection entry 0 low"),      # reserved delivery mode 3
    (0x01, 0, "version"),                          # read-only
    (0x40, 0, "no such register"),
])
def test_ioapic_misuse_names_the_register(bare_apics, reg, value, words):
    from v3tools.errors import Unimplemented
    ctx, _, _ = bare_apics
    ctx.mmio.write(0xFEC00000, 4, reg)
    with pytest.raises(Unimplemented) as e:
        ctx.mmio.write(0xFEC00010, 4, value)
    assert words in str(e.value)


def test_pic_reaches_the_cpu_through_lint0_until_masked(bare_apics):
    """Virtual wire: the 8259A's INTR enters through LINT0 (ExtINT) as the BIOS leaves it;
    once the guest masks LINT0 only the APIC path remains."""
    from vmm.devices.i8259 import PIC8259
    ctx, lapic, _ = bare_apics
    pic = ctx.add_device(PIC8259("pic"))
    pic.reset()
    for port, v in ((0x20, 0x11), (0x21, 0x08), (0x21, 0x04), (0x21, 0x01), (0x21, 0x00)):
        ctx.io.write(port, 1, v)
    assert ctx.intc is lapic
    ctx.irq(1).pulse()
    assert lapic.has_interrupt()
    assert lapic.acknowledge() == 0x09
    ctx.io.write(0x20, 1, 0x20)                           # EOI to the PIC
    ctx.mmio.write(0xFEE00350, 4, 0x10700)               # LINT0 masked
    ctx.irq(1).pulse()
    assert not lapic.has_interrupt()


def test_self_nmi_is_taken_with_if_clear_and_wakes_hlt():
    """ICR delivery mode NMI to self (tests/guests/nmitest.asm): vector 2 is delivered with
    IF=0, once per ICR write, and ends a HLT."""
    b = ApicBoard()
    b.run_guest("nmitest.bin")
    assert b.text == "SNRNWDONE"
    assert not b.lapic.nmi_pending
