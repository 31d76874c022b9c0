"""PIT and RTC interrupts reach the guest at their programmed rates in virtual time, and an
idle guest is fast-forwarded (tests/guests/timers.asm)."""
from pathlib import Path

import pytest

from vmm.config import parse_vm_config
from vmm.machine import GuestHalted, Machine

GUESTS = Path(__file__).resolve().parents[1] / "guests"
TIMER_PC = (b'<vm><devices><device class="8259A" id="pic"/><device class="8254_PIT" id="pit"/>'
            b'<device class="NVRAM" id="nvram"/></devices></vm>')


def test_pit_1000hz_and_rtc_1024hz():
    m = Machine(memory_mb=16)
    m.add_devices(parse_vm_config(TIMER_PC).devices)
    for dev in m.ctx.devices.values():
        dev.reset()
    marks = []
    m.ctx.io.attach(0xE9, 1, lambda o, s: 0,
                    lambda o, s, v: marks.append((chr(v), m.ctx.clock.now_ns())), "e9")
    m.uc.mem_write(0x7C00, (GUESTS / "timers.bin").read_bytes())
    m.cpu.reset(cs=0, ip=0x7C00)
    with pytest.raises(GuestHalted):
        m.run(timeout=30)
    assert [c for c, _ in marks] == ["S", "P", "R"]
    pit_ms = (marks[1][1] - marks[0][1]) / 1e6
    rtc_ms = (marks[2][1] - marks[1][1]) / 1e6
    # 200 ticks at 1193182/1193 Hz = 199.97 ms; 256 ticks at 1024 Hz = 250 ms (virtual time)
    assert 199.0 < pit_ms < 203.0, pit_ms
    assert 248.0 < rtc_ms < 253.0, rtc_ms
    assert m.stats.events[("irq", 0x20)] >= 200
    assert m.stats.events[("irq", 0x28)] >= 256
    assert m.stats.skipped_ns > 0            # halts were fast-forwarded
