"""ACPI fixed hardware (vmm/devices/acpi.py): PM timer, PM1 status/enable, S5 power-off."""
import io

import pytest

from v3tools.errors import Unimplemented
from vmm.clock import ManualClock
from vmm.context import BoardContext
from vmm.devices.acpi import Acpi, PM_TIMER_HZ
from vmm.log import VMMLog


@pytest.fixture
def ctx():
    c = BoardContext(clock=ManualClock(), log=VMMLog(stream=io.StringIO()))
    c.add_device(Acpi("acpi"))
    return c


def test_pm_timer_counts_at_3_579545_mhz_of_virtual_time(ctx):
    t0 = ctx.io.read(0x608, 4)
    ctx.clock.advance(1_000_000_000)
    assert ctx.io.read(0x608, 4) - t0 == PM_TIMER_HZ == 3_579_545
    ctx.clock.advance(10_000_000)                       # 10 ms
    assert ctx.io.read(0x608, 4) - t0 == PM_TIMER_HZ + 35_795
    assert ctx.io.read(0x608, 2) == ctx.io.read(0x608, 4) & 0xFFFF


def test_pm_timer_is_32_bits_and_sets_tmr_sts_on_a_carry(ctx):
    ctx.clock.advance((1 << 31) * 1_000_000_000 // PM_TIMER_HZ + 1_000_000)
    assert ctx.io.read(0x600, 2) & 1                    # TMR_STS
    ctx.io.write(0x600, 2, 1)                           # write 1 to clear
    assert not ctx.io.read(0x600, 2) & 1
    ctx.clock.advance((1 << 31) * 1_000_000_000 // PM_TIMER_HZ)
    assert ctx.io.read(0x608, 4) < 1 << 31 and ctx.io.read(0x600, 2) & 1


def test_pm1_enable_is_kept_and_tmr_en_is_a_fail_stop(ctx):
    ctx.io.write(0x602, 2, 0x0120)                      # PWRBTN_EN | GBL_EN... as written
    assert ctx.io.read(0x602, 2) == 0x0120
    with pytest.raises(Unimplemented, match="TMR_EN"):
        ctx.io.write(0x602, 2, 0x0001)


def test_sci_en_reads_set_and_s5_powers_off(ctx):
    assert ctx.io.read(0x604, 2) & 1                    # always in ACPI mode
    ctx.io.write(0x604, 2, (5 << 10) | 1)               # SLP_TYP alone does nothing
    assert ctx.requests == []
    ctx.io.write(0x604, 2, (5 << 10) | (1 << 13) | 1)
    assert ctx.requests == ["poweroff"]


def test_other_sleep_states_are_fail_stops(ctx):
    with pytest.raises(Unimplemented, match="sleep type 3"):
        ctx.io.write(0x604, 2, (3 << 10) | (1 << 13))


def test_pm_timer_is_read_only(ctx):
    with pytest.raises(Unimplemented, match="PM_TMR"):
        ctx.io.write(0x608, 4, 0)
