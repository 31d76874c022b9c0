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


def test_an_armed_expiry_a_little_earlier_is_kept_and_a_later_one_is_not():
    m = spinning_machine()
    timer = stoptimer.StopTimer(m.uc)
    try:
        t0 = time.monotonic_ns() + 200_000_000
        timer.arm(t0)
        assert timer.settimes == 1
        timer.arm(t0 + stoptimer.SLACK_NS // 2)        # kept: stops at most SLACK_NS early
        assert timer.settimes == 1 and timer.armed == t0
        timer.arm(t0 - 1)                              # earlier: must be programmed
        assert timer.settimes == 2 and timer.armed == t0 - 1
        timer.arm(t0 + 2 * stoptimer.SLACK_NS)         # too much earlier than wanted
        assert timer.settimes == 3 and timer.armed == t0 + 2 * stoptimer.SLACK_NS
        timer.release()                                # still ahead: stays armed
        assert timer.settimes == 3 and timer.armed is not None
        timer.disarm()
        assert timer.settimes == 4 and timer.armed is None
    finally:
        timer.close()


def test_a_kept_expiry_still_stops_the_next_run_and_release_disarms_it_once_reached():
    m = spinning_machine()
    timer = stoptimer.StopTimer(m.uc)
    try:
        t0 = time.monotonic_ns()
        timer.arm(t0 + 20_000_000)
        timer.release()                                # a run that ended early
        timer.arm(t0 + 20_000_000 + stoptimer.SLACK_NS)  # the next run's deadline: kept
        m.cpu.run()
        elapsed = time.monotonic_ns() - t0
        assert 20_000_000 <= elapsed
        timer.release()                                # reached: it repeats, so disarmed
        assert timer.armed is None
    finally:
        timer.close()
