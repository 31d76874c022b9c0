"""8254 PIT and port 0x61, driven through the port bus with a manual clock."""
import random

import pytest

from v3tools.errors import Unimplemented
from vmm.clock import ManualClock
from vmm.context import BoardContext
from vmm.devices.i8254 import PIT8254, ns_at, ticks_at

TICK_NS = 838                     # one PIT clock, rounded down


@pytest.fixture
def board():
    ctx = BoardContext(clock=ManualClock(start_ns=1_000_000))
    pit = ctx.add_device(PIT8254("pit"))
    return ctx, pit


def outb(ctx, port, value):
    ctx.io.write(port, 1, value)


def inb(ctx, port):
    return ctx.io.read(port, 1)


def irq0_edges(ctx):
    return sum(1 for n, level in ctx.pending_irq_events if n == 0 and level)


def advance(ctx, ns):
    ctx.clock.advance(ns)
    ctx.timers.run_due()


def read_word(ctx, port):
    lsb = inb(ctx, port)
    return lsb | inb(ctx, port) << 8


def test_tick_conversion_round_trips():
    for tick in (0, 1, 1193181, 1193182, 10**9 + 7):
        assert ticks_at(ns_at(tick)) == tick
        assert ticks_at(ns_at(tick) - 1) == tick - 1


def test_channel0_mode2_periodic_irq(board):
    ctx, pit = board
    outb(ctx, 0x43, 0x34)                 # channel 0, LSB then MSB, mode 2 (Linux)
    outb(ctx, 0x40, 1193 & 0xFF)          # ~1 kHz
    outb(ctx, 0x40, 1193 >> 8)
    for _ in range(100):
        advance(ctx, 100_000)
    assert irq0_edges(ctx) == 10          # 10 ms at ~1 kHz


def test_channel0_short_backlog_is_delivered_edge_by_edge(board):
    ctx, pit = board
    outb(ctx, 0x43, 0x34)
    outb(ctx, 0x40, 1193 & 0xFF)
    outb(ctx, 0x40, 1193 >> 8)
    advance(ctx, 10_000_000)              # the host was busy for 10 ms
    assert irq0_edges(ctx) == 1           # one edge per pass of the timer queue...
    for _ in range(100):
        advance(ctx, 100_000)
    assert irq0_edges(ctx) == 20          # ...so the 10 owed edges arrive, then 10 more


def test_channel0_clock_jump_is_coalesced(board):
    ctx, pit = board
    outb(ctx, 0x43, 0x34)
    outb(ctx, 0x40, 1193 & 0xFF)
    outb(ctx, 0x40, 1193 >> 8)
    advance(ctx, 5_000_000_000)           # a 5 s jump: more than MAX_CATCHUP_NS behind
    assert irq0_edges(ctx) == 1
    for _ in range(100):
        advance(ctx, 100_000)
    assert irq0_edges(ctx) == 11          # no backlog: one pulse, then the normal rate


def test_channel0_mode3_bios_rate(board):
    ctx, pit = board
    outb(ctx, 0x43, 0x36)                 # mode 3, count 0 = 65536 (18.2 Hz)
    outb(ctx, 0x40, 0)
    outb(ctx, 0x40, 0)
    for _ in range(1000):
        advance(ctx, 1_000_000)
    assert irq0_edges(ctx) == 18          # 1 s / 54.925 ms


def test_mode0_one_shot_irq(board):
    ctx, pit = board
    outb(ctx, 0x43, 0x30)
    outb(ctx, 0x40, 100)
    outb(ctx, 0x40, 0)
    advance(ctx, 99 * TICK_NS)
    assert irq0_edges(ctx) == 0
    advance(ctx, 3 * TICK_NS)
    assert irq0_edges(ctx) == 1
    advance(ctx, 100_000_000)
    assert irq0_edges(ctx) == 1
    assert ctx.timers.next_deadline() is None


def test_counter_reads_count_down_and_latch_holds(board):
    ctx, pit = board
    outb(ctx, 0x43, 0x34)
    outb(ctx, 0x40, 0x00)
    outb(ctx, 0x40, 0x10)                 # 4096
    ctx.clock.advance(ns_at(ticks_at(ctx.clock.now_ns()) + 1 + 96) - ctx.clock.now_ns())
    assert read_word(ctx, 0x40) == 4096 - 96
    outb(ctx, 0x43, 0x00)                 # latch channel 0
    ctx.clock.advance(1000 * TICK_NS)
    assert read_word(ctx, 0x40) == 4096 - 96
    assert read_word(ctx, 0x40) < 4096 - 96 - 900


def test_read_back_status_and_count(board):
    ctx, pit = board
    outb(ctx, 0x43, 0xB0)                 # channel 2, LSB/MSB, mode 0
    assert inb(ctx, 0x61) & 0x20 == 0
    outb(ctx, 0x43, 0xE8)                 # read-back: latch status (and count) of channel 2
    status = inb(ctx, 0x42)
    assert status == 0x40 | 0x30 | 0x00  # null count, LSB/MSB, mode 0, OUT low
    outb(ctx, 0x61, 0x01)                 # gate high
    outb(ctx, 0x42, 0x34)
    outb(ctx, 0x42, 0x12)
    ctx.clock.advance(10 * TICK_NS)
    outb(ctx, 0x43, 0xC8)                 # latch status and count
    status = inb(ctx, 0x42)
    assert status & 0x40 == 0             # the count was loaded
    count = read_word(ctx, 0x42)
    assert 0x1234 - 11 <= count <= 0x1234 - 8


def test_linux_pit_calibrate_tsc_poll(board):
    """pit_calibrate_tsc: channel 2 mode 0, gate via 0x61, poll bit 5 until OUT goes high."""
    ctx, pit = board
    outb(ctx, 0x61, (inb(ctx, 0x61) & ~0x02) | 0x01)
    outb(ctx, 0x43, 0xB0)
    latch = 1193182 // 100                # 10 ms
    outb(ctx, 0x42, latch & 0xFF)
    outb(ctx, 0x42, latch >> 8)
    polls = 0
    while not inb(ctx, 0x61) & 0x20:
        polls += 1
        ctx.clock.advance(10_000)
        assert polls < 10_000
    assert 999 <= polls <= 1001


def test_linux_quick_pit_calibrate_msb(board):
    """quick_pit_calibrate / pit_expect_msb: read LSB then MSB, the MSB steps down every 256."""
    ctx, pit = board
    outb(ctx, 0x61, (inb(ctx, 0x61) & ~0x02) | 0x01)
    outb(ctx, 0x43, 0xB0)
    outb(ctx, 0x42, 0xFF)
    outb(ctx, 0x42, 0xFF)
    seen = []
    for _ in range(4000):                 # 800 us: about 954 clocks
        ctx.clock.advance(200)
        inb(ctx, 0x42)
        msb = inb(ctx, 0x42)
        if not seen or seen[-1] != msb:
            seen.append(msb)
    assert seen[:3] == [0xFF, 0xFE, 0xFD]


def test_gate_low_suspends_mode0(board):
    ctx, pit = board
    outb(ctx, 0x61, 0x01)
    outb(ctx, 0x43, 0x90)                 # channel 2, LSB only, mode 0
    outb(ctx, 0x42, 200)
    ctx.clock.advance(50 * TICK_NS)
    outb(ctx, 0x61, 0x00)
    held = inb(ctx, 0x42)
    ctx.clock.advance(500 * TICK_NS)
    assert inb(ctx, 0x42) == held
    assert not inb(ctx, 0x61) & 0x20
    outb(ctx, 0x61, 0x01)
    ctx.clock.advance(300 * TICK_NS)
    assert inb(ctx, 0x61) & 0x20


def test_mode3_square_wave_on_channel2(board):
    ctx, pit = board
    outb(ctx, 0x61, 0x03)
    outb(ctx, 0x43, 0xB6)                 # channel 2, mode 3 (the speaker beep)
    outb(ctx, 0x42, 100)
    outb(ctx, 0x42, 0)
    levels = []
    for _ in range(200):
        ctx.clock.advance(TICK_NS + 1)
        levels.append(bool(inb(ctx, 0x61) & 0x20))
    assert 90 <= sum(levels) <= 110


def test_bcd_count(board):
    ctx, pit = board
    outb(ctx, 0x43, 0x35)                 # channel 0, mode 2, BCD
    outb(ctx, 0x40, 0x00)
    outb(ctx, 0x40, 0x10)                 # 1000 decimal
    ctx.clock.advance(11 * TICK_NS)
    outb(ctx, 0x43, 0x00)
    value = read_word(ctx, 0x40)
    assert value in (0x0990, 0x0991)
    with pytest.raises(Unimplemented):
        outb(ctx, 0x40, 0xAB)
        outb(ctx, 0x40, 0x00)


def test_new_count_in_mode2_waits_for_period_end(board):
    ctx, pit = board
    outb(ctx, 0x43, 0x34)
    outb(ctx, 0x40, 0x00)
    outb(ctx, 0x40, 0x04)                 # 1024
    ctx.clock.advance(100 * TICK_NS)
    outb(ctx, 0x40, 0x00)
    outb(ctx, 0x40, 0x02)                 # 512, from the next period on
    outb(ctx, 0x43, 0xE2)                 # read-back status channel 0
    assert inb(ctx, 0x40) & 0x40          # null count until the new value loads
    c = read_word(ctx, 0x40)
    assert 900 < c < 1024


def test_port61_refresh_toggles_and_keeps_writable_bits(board):
    ctx, pit = board
    outb(ctx, 0x61, 0xFE)
    a, b = inb(ctx, 0x61), inb(ctx, 0x61)
    assert (a ^ b) & 0x10
    assert a & 0x0F == 0x0E


def test_reset_cancels_irq(board):
    ctx, pit = board
    outb(ctx, 0x43, 0x34)
    outb(ctx, 0x40, 0x00)
    outb(ctx, 0x40, 0x10)
    assert ctx.timers.next_deadline() is not None
    pit.reset()
    assert ctx.timers.next_deadline() is None


def test_random_register_fuzz():
    rng = random.Random(8254)
    for _ in range(40):
        ctx = BoardContext(clock=ManualClock())
        ctx.add_device(PIT8254("pit"))
        try:
            for _ in range(300):
                r = rng.random()
                if r < 0.45:
                    outb(ctx, rng.choice((0x40, 0x41, 0x42, 0x43, 0x61)), rng.randrange(256))
                elif r < 0.85:
                    inb(ctx, rng.choice((0x40, 0x41, 0x42, 0x43, 0x61)))
                else:
                    ctx.clock.advance(rng.randrange(10**7))
                    ctx.timers.run_due()
        except Unimplemented:
            pass


def test_ticks_due_while_irq0_is_pending_are_owed_not_lost():
    """With the 8259A attached: edges that come while the previous IRQ 0 still waits in IRR
    (the guest runs with interrupts off) are owed, and each acknowledge hands over the next."""
    from vmm.clock import ManualClock
    from vmm.config import parse_vm_config
    from vmm.context import BoardContext
    from vmm import devices
    ctx = BoardContext(clock=ManualClock())
    for spec in parse_vm_config(b'<vm><devices><device class="8259A" id="pic"/>'
                                b'<device class="8254_PIT" id="pit"/></devices></vm>').devices:
        ctx.add_device(devices.lookup(spec.class_name).from_spec(spec, ctx))
    for dev in ctx.devices.values():
        dev.reset()
    for port, value in ((0x20, 0x11), (0x21, 0x20), (0x21, 0x04), (0x21, 0x01), (0x21, 0xFE)):
        ctx.io.write(port, 1, value)          # ICW1-4, only IRQ 0 unmasked
    ctx.io.write(0x43, 1, 0x34)
    ctx.io.write(0x40, 1, 1193 & 0xFF)
    ctx.io.write(0x40, 1, 1193 >> 8)
    for _ in range(55):                        # 5.5 ms with interrupts off: nobody takes IRQ 0
        ctx.clock.advance(100_000)
        ctx.timers.run_due()
    taken = 0
    while ctx.intc.has_interrupt():
        assert ctx.intc.acknowledge() == 0x20
        ctx.io.write(0x20, 1, 0x20)            # EOI
        taken += 1
    assert taken == 5                          # one pending plus four owed, none lost


class BusyHostClock(ManualClock):
    """A clock that moves on by `step_ns` at every read, as the virtual clock does while a busy
    host (preempted, collecting garbage) takes its time over one exit."""

    def __init__(self, start_ns, step_ns):
        super().__init__(start_ns)
        self.step_ns = step_ns

    def now_ns(self):
        self._now += self.step_ns
        return self._now


@pytest.mark.parametrize("mode", [0, 4])
def test_a_short_one_shot_count_is_not_lost_when_the_exit_takes_longer(mode):
    """Linux's one-shot ticks (mode 4) are often a few dozen clocks. If handling the write of
    the count takes longer than the count, the edge is already due when the PIT looks for it:
    it must still fire (late), or the guest's only timer is gone for good."""
    ctx = BoardContext(clock=BusyHostClock(start_ns=1_000_000, step_ns=100_000))
    ctx.add_device(PIT8254("pit"))
    outb(ctx, 0x43, 0x30 | mode << 1)          # channel 0, LSB then MSB
    outb(ctx, 0x40, 33)
    outb(ctx, 0x40, 0)
    assert ctx.timers.next_deadline() is not None
    ctx.clock.advance(1_000_000)
    ctx.timers.run_due()
    assert irq0_edges(ctx) == 1
