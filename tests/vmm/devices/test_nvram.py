"""MC146818 RTC and CMOS, driven through ports 0x70/0x71 with a manual clock."""
import random
from datetime import datetime

import pytest

from v3tools.errors import Unimplemented
from vmm.clock import ManualClock
from vmm.context import BoardContext
from vmm.devices.nvram import NVRAM
from vmm.media import BytesMedium, Drive

NS = 1_000_000_000
START = datetime(2024, 2, 29, 23, 59, 58)      # a Thursday
START_NS = int((START - datetime(1970, 1, 1)).total_seconds()) * NS


def make(memory_size=None, drives=(), boot_order=None, start_ns=START_NS):
    ctx = BoardContext(clock=ManualClock(start_ns=5 * NS))
    if memory_size is not None:
        ctx.memory_size = memory_size
    ctx.drives.extend(drives)
    if boot_order is not None:
        ctx.boot_order = boot_order
    rtc = ctx.add_device(NVRAM("nvram", start_time_ns=start_ns))
    rtc.reset()
    return ctx, rtc


@pytest.fixture
def board():
    return make()


def cmos_read(ctx, reg):
    ctx.io.write(0x70, 1, reg)
    return ctx.io.read(0x71, 1)


def cmos_write(ctx, reg, value):
    ctx.io.write(0x70, 1, reg)
    ctx.io.write(0x71, 1, value)


def advance(ctx, ns):
    ctx.clock.advance(ns)
    ctx.timers.run_due()


def irq8_level(ctx):
    return ctx.irq(8).level


def test_time_in_bcd_24h(board):
    ctx, rtc = board
    assert [cmos_read(ctx, r) for r in (0, 2, 4, 6, 7, 8, 9, 0x32)] == \
        [0x58, 0x59, 0x23, 0x05, 0x29, 0x02, 0x24, 0x20]


def test_time_follows_virtual_clock_across_midnight(board):
    ctx, rtc = board
    advance(ctx, 3 * NS)
    assert [cmos_read(ctx, r) for r in (0, 2, 4, 7, 8)] == [0x01, 0x00, 0x00, 0x01, 0x03]


def test_binary_and_12_hour_modes(board):
    ctx, rtc = board
    cmos_write(ctx, 0x0B, 0x04)                # binary, 12-hour
    assert cmos_read(ctx, 0x00) == 58
    assert cmos_read(ctx, 0x04) == 0x80 | 11   # 11 PM
    assert cmos_read(ctx, 0x32) == 20


def test_set_time_like_linux(board):
    """mc146818_set_time: SET, divider reset, write fields, restore B then A."""
    ctx, rtc = board
    b = cmos_read(ctx, 0x0B)
    cmos_write(ctx, 0x0B, b | 0x80)
    a = cmos_read(ctx, 0x0A)
    cmos_write(ctx, 0x0A, a | 0x70)
    for reg, value in ((0, 0x30), (2, 0x15), (4, 0x10), (7, 0x31), (8, 0x12), (9, 0x99),
                       (0x32, 0x19)):
        cmos_write(ctx, reg, value)
    advance(ctx, 10 * NS)                      # stopped while SET
    assert cmos_read(ctx, 0) == 0x30
    cmos_write(ctx, 0x0B, b)
    cmos_write(ctx, 0x0A, a)
    advance(ctx, NS // 2 - 1)
    assert cmos_read(ctx, 0) == 0x30
    advance(ctx, 1)
    assert cmos_read(ctx, 0) == 0x31           # first update 500 ms after the divider restarts
    assert [cmos_read(ctx, r) for r in (7, 8, 9, 0x32)] == [0x31, 0x12, 0x99, 0x19]


def test_uip_window_before_update(board):
    ctx, rtc = board
    frac = (ctx.clock.now_ns() + rtc.offset) % NS
    ctx.clock.advance(NS - frac - 244_001)
    assert not cmos_read(ctx, 0x0A) & 0x80
    ctx.clock.advance(2)
    assert cmos_read(ctx, 0x0A) & 0x80
    ctx.clock.advance(244_000)
    assert not cmos_read(ctx, 0x0A) & 0x80


def test_register_c_clears_and_d_reports_valid(board):
    ctx, rtc = board
    assert cmos_read(ctx, 0x0D) == 0x80
    advance(ctx, 2 * NS)
    c = cmos_read(ctx, 0x0C)
    assert c & 0x40 and c & 0x10 and not c & 0x80  # PF, UF, no IRQF without enables
    assert cmos_read(ctx, 0x0C) == 0


def test_update_interrupt_once_per_second(board):
    ctx, rtc = board
    cmos_write(ctx, 0x0B, 0x12)                # UIE, 24h, BCD
    edges = 0
    for _ in range(40):
        before = irq8_level(ctx)
        advance(ctx, NS // 10)
        if irq8_level(ctx) and not before:
            edges += 1
        if irq8_level(ctx):
            assert cmos_read(ctx, 0x0C) & 0x90 == 0x90
    assert edges == 4


def test_periodic_interrupt_rate(board):
    ctx, rtc = board
    cmos_write(ctx, 0x0A, 0x2F)                # 2 Hz
    cmos_write(ctx, 0x0B, 0x42)                # PIE
    cmos_read(ctx, 0x0C)
    count = 0
    for _ in range(300):
        advance(ctx, 10_000_000)
        if irq8_level(ctx):
            assert cmos_read(ctx, 0x0C) & 0xC0 == 0xC0
            count += 1
    assert count == 6


def test_irq_stays_asserted_until_c_read(board):
    ctx, rtc = board
    cmos_write(ctx, 0x0A, 0x26)
    cmos_write(ctx, 0x0B, 0x42)
    advance(ctx, 1_000_000)
    assert irq8_level(ctx)
    assert ctx.timers.next_deadline() is None   # nothing to schedule while asserted
    cmos_read(ctx, 0x0C)
    assert not irq8_level(ctx)
    assert ctx.timers.next_deadline() is not None


def test_late_register_c_reads_get_the_owed_periodic_interrupts(board):
    ctx, rtc = board
    cmos_write(ctx, 0x0A, 0x26)                # 1024 Hz
    cmos_write(ctx, 0x0B, 0x42)
    advance(ctx, 3_000_000)                    # three periods pass before the guest reads C
    assert irq8_level(ctx)
    for _ in range(2):
        assert cmos_read(ctx, 0x0C) & 0xC0 == 0xC0
        assert irq8_level(ctx)                 # the next owed interrupt is raised at once
    assert cmos_read(ctx, 0x0C) & 0xC0 == 0xC0
    assert not irq8_level(ctx)


def test_alarm_interrupt(board):
    ctx, rtc = board
    cmos_write(ctx, 0x01, 0x05)                # 00:00:05
    cmos_write(ctx, 0x03, 0x00)
    cmos_write(ctx, 0x05, 0x00)
    cmos_write(ctx, 0x0B, 0x22)                # AIE
    advance(ctx, 6 * NS)
    assert not irq8_level(ctx)
    advance(ctx, NS)
    assert irq8_level(ctx)
    assert cmos_read(ctx, 0x0C) & 0xA0 == 0xA0


def test_alarm_dont_care_fires_every_second(board):
    ctx, rtc = board
    for reg in (1, 3, 5):
        cmos_write(ctx, reg, 0xFF)
    cmos_write(ctx, 0x0B, 0x22)
    advance(ctx, NS)
    assert cmos_read(ctx, 0x0C) & 0xA0 == 0xA0


def test_index_nmi_bit_and_ram(board):
    ctx, rtc = board
    cmos_write(ctx, 0x80 | 0x40, 0x5A)
    assert rtc.nmi_masked
    assert cmos_read(ctx, 0x40) == 0x5A
    assert ctx.io.read(0x70, 1) == 0xFF


def test_memory_bytes_and_checksum():
    ctx, rtc = make(memory_size=5 << 30)
    below = 0xE0000000
    assert cmos_read(ctx, 0x15) | cmos_read(ctx, 0x16) << 8 == 640
    assert cmos_read(ctx, 0x17) | cmos_read(ctx, 0x18) << 8 == 0xFFFF
    assert cmos_read(ctx, 0x30) | cmos_read(ctx, 0x31) << 8 == 0xFFFF
    assert cmos_read(ctx, 0x34) | cmos_read(ctx, 0x35) << 8 == (below - (16 << 20)) >> 16
    above = cmos_read(ctx, 0x5B) | cmos_read(ctx, 0x5C) << 8 | cmos_read(ctx, 0x5D) << 16
    assert above == ((5 << 30) - below) >> 16
    total = sum(cmos_read(ctx, r) for r in range(0x10, 0x2E))
    assert cmos_read(ctx, 0x2E) << 8 | cmos_read(ctx, 0x2F) == total & 0xFFFF


def test_small_memory():
    ctx, rtc = make(memory_size=32 << 20)
    assert cmos_read(ctx, 0x17) | cmos_read(ctx, 0x18) << 8 == 31 * 1024
    assert cmos_read(ctx, 0x34) | cmos_read(ctx, 0x35) << 8 == (16 << 20) >> 16


def test_drives_and_boot_order():
    floppy = Drive("floppy", BytesMedium(bytes(1474560)), channel=0)
    disk = Drive("disk", BytesMedium(bytes(16 * 63 * 512 * 100)), channel=0, position=0)
    ctx, rtc = make(drives=[floppy, disk], boot_order=["cdrom", "disk", "floppy"])
    assert cmos_read(ctx, 0x10) == 0x40
    assert cmos_read(ctx, 0x14) == 0x03
    assert cmos_read(ctx, 0x12) == 0xF0
    assert cmos_read(ctx, 0x19) == 47
    assert cmos_read(ctx, 0x1B) | cmos_read(ctx, 0x1C) << 8 == 100
    assert cmos_read(ctx, 0x1D) == 16 and cmos_read(ctx, 0x23) == 63
    assert cmos_read(ctx, 0x3D) == 0x23
    assert cmos_read(ctx, 0x38) >> 4 == 1


def test_drives_attached_after_nvram_are_seen_at_reset():
    ctx = BoardContext(clock=ManualClock())
    ctx.add_device(NVRAM("nvram", start_time_ns=START_NS))
    ctx.drives.append(Drive("disk", BytesMedium(bytes(1 << 20)), channel=0, position=1))
    ctx.devices["nvram"].reset()
    assert cmos_read(ctx, 0x12) == 0x0F


def test_from_spec_accepts_storage():
    from vmm.config import DeviceSpec
    spec = DeviceSpec("device", {"class": "NVRAM", "id": "nvram"},
                      "", [DeviceSpec("storage", {}, "ide", [], 3)], 1)
    dev = NVRAM.from_spec(spec, None)
    assert dev.storage == "ide"


def test_invalid_date_is_unimplemented(board):
    ctx, rtc = board
    cmos_write(ctx, 0x0B, 0x82)
    cmos_write(ctx, 0x08, 0x13)                # month 13
    with pytest.raises(Unimplemented):
        cmos_write(ctx, 0x0B, 0x02)


def test_bios_style_field_writes_through_an_impossible_date(board):
    """INT 1Ah AH=05h writes year, month, day one by one while the clock runs: from
    2024-02-29 to 2023-03-31 passes through 2023-02-29."""
    ctx, rtc = board
    cmos_write(ctx, 0x09, 0x23)
    assert cmos_read(ctx, 0x09) == 0x23 and cmos_read(ctx, 0x07) == 0x29
    cmos_write(ctx, 0x08, 0x03)
    cmos_write(ctx, 0x07, 0x31)
    advance(ctx, NS)
    assert [cmos_read(ctx, r) for r in (7, 8, 9)] == [0x31, 0x03, 0x23]
    assert cmos_read(ctx, 0x00) == 0x59


def test_random_register_fuzz():
    rng = random.Random(146818)
    for _ in range(30):
        ctx, rtc = make()
        try:
            for _ in range(200):
                r = rng.random()
                if r < 0.4:
                    cmos_write(ctx, rng.randrange(256), rng.randrange(256))
                elif r < 0.8:
                    cmos_read(ctx, rng.randrange(256))
                else:
                    advance(ctx, rng.randrange(3 * NS))
        except Unimplemented:
            pass
