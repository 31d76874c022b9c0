"""HPET (vmm/devices/hpet.py) on a manual clock: counter, one-shot and periodic comparators in
32- and 64-bit mode, legacy replacement (timer 0 on ISA IRQ 0 instead of the PIT), IOAPIC
routing with level-triggered status, and the fail-stops."""
import io

import pytest

from v3tools.errors import Unimplemented
from vmm.clock import ManualClock
from vmm.context import BoardContext
from vmm.devices.hpet import HPET
from vmm.log import VMMLog

B = 0xFED00000
MS = 1_000_000


class Board:
    def __init__(self):
        self.ctx = ctx = BoardContext(clock=ManualClock(), log=VMMLog(stream=io.StringIO()))
        self.isa = []                                    # (virtual ns, line, level) delivered
        ctx.add_irq_listener(lambda n, lvl: self.isa.append((ctx.clock.now_ns(), n, lvl)))
        self.pins = []
        self.hpet = ctx.add_device(HPET("hpet"))

        class FakeIoapic:
            def pin_line(_, pin):
                from vmm.irq import IrqLine
                return IrqLine(pin, lambda p, lvl: self.pins.append((ctx.clock.now_ns(), p, lvl)))
        ctx.ioapic = FakeIoapic()

    def w(self, off, value):
        self.ctx.mmio.write(B + off, 4, value)

    def r(self, off):
        return self.ctx.mmio.read(B + off, 4)

    def run_to(self, ns):
        clock = self.ctx.clock
        while True:
            nxt = self.ctx.timers.next_deadline()
            if nxt is None or nxt > ns:
                break
            clock.skip_to(nxt)
            self.ctx.timers.run_due()
        clock.skip_to(ns)

    def rises(self, line=0):
        return [t for t, n, lvl in self.isa if n == line and lvl]


@pytest.fixture
def b():
    return Board()


def test_capabilities_and_counter(b):
    cap = b.r(0x000)
    assert cap & 0xFF == 1 and (cap >> 8) & 0x1F == 2          # revision 1, 3 timers
    assert cap & (1 << 13) and cap & (1 << 15)                 # 64-bit, legacy capable
    assert cap >> 16 == 0x8086 and b.r(0x004) == 10_000_000    # 10 ns period
    b.ctx.clock.advance(5 * MS)
    assert b.r(0x0F0) == 0                                     # halted
    b.w(0x010, 1)
    b.ctx.clock.advance(5 * MS)
    assert b.r(0x0F0) == 500_000 and b.r(0x0F4) == 0           # 100 MHz
    b.w(0x010, 0)
    b.ctx.clock.advance(5 * MS)
    assert b.r(0x0F0) == 500_000
    b.w(0x0F0, 0xFFFFFFF0)
    b.w(0x0F4, 1)
    b.w(0x010, 1)
    b.ctx.clock.advance(1000)
    assert (b.r(0x0F4), b.r(0x0F0)) == (2, 0x54)               # carried into the high half


def test_legacy_replacement_one_shot_32bit_replaces_the_pit(b):
    pit = b.ctx.irq(0)
    b.w(0x010, 2)                                              # legacy, halted
    pit.pulse()
    assert b.rises(0) == []                                    # the PIT is cut from IRQ 0
    b.w(0x100, (1 << 2) | (1 << 8))                            # INT_ENB, 32-bit
    b.w(0x108, 300_000)                                        # 3 ms
    b.w(0x010, 3)
    b.run_to(10 * MS)
    assert b.rises(0) == [3 * MS]
    assert b.hpet.comparators[0].fires == 1
    b.w(0x010, 1)                                              # legacy off: the PIT is back
    pit.pulse()
    assert b.rises(0) == [3 * MS, 10 * MS]


def test_periodic_as_linux_programs_it(b):
    """Counter halted, TYPE|VAL_SET|32-bit, comparator = now + delta, then delta alone sets
    the period (the second write, VAL_SET having cleared itself)."""
    b.w(0x010, 2)
    b.w(0x100, (1 << 2) | (1 << 3) | (1 << 6) | (1 << 8))
    b.w(0x108, 400_000)
    b.w(0x108, 400_000)
    assert not b.r(0x100) & (1 << 6)
    b.w(0x010, 3)
    b.run_to(21 * MS)
    assert b.rises(0) == [4 * MS, 8 * MS, 12 * MS, 16 * MS, 20 * MS]


def test_periodic_catches_up_after_a_late_run(b):
    b.w(0x010, 2)
    b.w(0x100, 1 << 2)                                         # one-shot, 64-bit:
    b.w(0x108, 100_000)                                        # writes set the match value
    b.w(0x10C, 0)
    b.w(0x100, (1 << 2) | (1 << 3))                            # periodic: a write sets
    b.w(0x108, 100_000)                                        # the period (1 ms)
    b.w(0x010, 3)
    b.ctx.clock.advance(int(3.5 * MS))                         # the loop was busy
    for _ in range(5):
        b.ctx.timers.run_due()
    assert len(b.rises(0)) == 3                                # the 1, 2 and 3 ms ticks
    b.run_to(int(5.5 * MS))
    assert b.rises(0)[-2:] == [4 * MS, 5 * MS]


def test_level_interrupt_on_an_ioapic_pin_until_status_cleared(b):
    b.w(0x010, 1)
    b.w(0x140, (1 << 1) | (1 << 2) | (21 << 9))                # timer 2, level, pin 21
    b.w(0x148, 200_000)
    b.w(0x14C, 0)
    b.run_to(5 * MS)
    assert b.pins == [(2 * MS, 21, 1)]
    assert b.r(0x020) == 1 << 2
    b.w(0x020, 1 << 2)
    assert b.r(0x020) == 0 and b.pins[-1] == (5 * MS, 21, 0)


def test_fail_stops_name_the_register(b):
    with pytest.raises(Unimplemented, match="GCAP_ID"):
        b.w(0x000, 0)
    with pytest.raises(Unimplemented, match="T0_CONF_CAP.*route"):
        b.w(0x100, (1 << 2) | (3 << 9))                        # pin 3 not offered
    with pytest.raises(Unimplemented, match="FSB"):
        b.w(0x100, 1 << 14)
    b.w(0x010, 1)
    with pytest.raises(Unimplemented, match="MAIN_CNT.*runs"):
        b.w(0x0F0, 5)
    with pytest.raises(Unimplemented, match="reserved"):
        b.r(0x0A0)
