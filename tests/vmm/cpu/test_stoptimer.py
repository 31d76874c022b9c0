"""vmm/cpu/stoptimer.py: a POSIX timer stops a spinning engine from C, repeating until disarmed."""
import time

import pytest

from vmm.cpu import stoptimer
from vmm.machine import Machine

pytestmark = pytest.mark.skipif(not stoptimer.available(),
                                reason="engine without uc_halt_state or no timer_create")


def spinning_machine():
    m = Machine(memory_mb=1)
    m.uc.mem_write(0x7C00, b"\xeb\xfe")           # jmp $
    m.cpu.reset(cs=0, ip=0x7C00)
    return m


def test_timer_stops_a_spinning_guest():
    m = spinning_machine()
    timer = stoptimer.StopTimer(m.uc)
    try:
        t0 = time.monotonic_ns()
        timer.arm(t0 + 30_000_000)
        m.cpu.run()
        elapsed = time.monotonic_ns() - t0
        timer.disarm()
        assert elapsed >= 30_000_000
        assert not m.cpu.ended_on_hlt()
    finally:
        timer.close()


def test_deadline_in_the_past_still_stops():
    # the first expiry may fire before emu_start begins (dropped): the repeat catches it
    m = spinning_machine()
    timer = stoptimer.StopTimer(m.uc)
    try:
        timer.arm(time.monotonic_ns() - 1_000_000)
        m.cpu.run()
        timer.disarm()
        assert not timer.armed
    finally:
        timer.close()
