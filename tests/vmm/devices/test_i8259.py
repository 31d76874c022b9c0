"""8259A pair, driven through the port bus and the intc protocol."""
import random

import pytest

from v3tools.errors import Unimplemented
from vmm.clock import ManualClock
from vmm.context import BoardContext
from vmm.devices.i8259 import PIC8259


@pytest.fixture
def board():
    ctx = BoardContext(clock=ManualClock())
    pic = ctx.add_device(PIC8259("pic"))
    return ctx, pic


def outb(ctx, port, value):
    ctx.io.write(port, 1, value)


def inb(ctx, port):
    return ctx.io.read(port, 1)


def init_like_linux(ctx, aeoi=False):
    """The ICW sequence of Linux's init_8259A (vectors 0x30/0x38)."""
    icw4 = 0x03 if aeoi else 0x01
    outb(ctx, 0x21, 0xFF)
    outb(ctx, 0xA1, 0xFF)
    outb(ctx, 0x20, 0x11)
    outb(ctx, 0x21, 0x30)
    outb(ctx, 0x21, 0x04)
    outb(ctx, 0x21, icw4)
    outb(ctx, 0xA0, 0x11)
    outb(ctx, 0xA1, 0x38)
    outb(ctx, 0xA1, 0x02)
    outb(ctx, 0xA1, icw4)
    outb(ctx, 0x21, 0x00)
    outb(ctx, 0xA1, 0x00)


def test_registers_itself_as_interrupt_controller(board):
    ctx, pic = board
    assert ctx.intc is pic


def test_edge_irq_is_delivered_with_programmed_vector(board):
    ctx, pic = board
    init_like_linux(ctx)
    assert not pic.has_interrupt()
    ctx.irq(0).pulse()
    assert pic.has_interrupt()
    assert pic.acknowledge() == 0x30
    assert not pic.has_interrupt()
    outb(ctx, 0x20, 0x0B)                 # OCW3: read ISR
    assert inb(ctx, 0x20) == 0x01
    outb(ctx, 0x20, 0x20)                 # non-specific EOI
    assert inb(ctx, 0x20) == 0x00


def test_masked_request_is_latched_until_unmasked(board):
    ctx, pic = board
    init_like_linux(ctx)
    outb(ctx, 0x21, 0x02)
    ctx.irq(1).pulse()
    assert not pic.has_interrupt()
    outb(ctx, 0x20, 0x0A)                 # read IRR
    assert inb(ctx, 0x20) == 0x02
    outb(ctx, 0x21, 0x00)
    assert pic.acknowledge() == 0x31


def test_priority_and_nesting(board):
    ctx, pic = board
    init_like_linux(ctx)
    ctx.irq(4).pulse()
    assert pic.acknowledge() == 0x34
    ctx.irq(6).pulse()
    assert not pic.has_interrupt()        # lower priority than the one in service
    ctx.irq(1).pulse()
    assert pic.acknowledge() == 0x31      # higher priority nests
    outb(ctx, 0x20, 0x20)                 # EOI for IRQ 1
    assert not pic.has_interrupt()
    outb(ctx, 0x20, 0x64)                 # specific EOI for IRQ 4
    assert pic.acknowledge() == 0x36


def test_slave_irq_through_cascade(board):
    ctx, pic = board
    init_like_linux(ctx)
    ctx.irq(8).pulse()
    assert pic.has_interrupt()
    assert pic.acknowledge() == 0x38
    outb(ctx, 0x20, 0x0B)
    outb(ctx, 0xA0, 0x0B)
    assert inb(ctx, 0x20) == 0x04
    assert inb(ctx, 0xA0) == 0x01
    ctx.irq(14).pulse()
    assert not pic.has_interrupt()
    outb(ctx, 0xA0, 0x60)                 # specific EOI slave IRQ 0, as Linux does
    outb(ctx, 0x20, 0x62)                 # specific EOI master IRQ 2
    assert pic.acknowledge() == 0x3E


def test_level_triggered_via_elcr_and_spurious_irq7(board):
    ctx, pic = board
    init_like_linux(ctx)
    outb(ctx, 0x4D0, 0xFF)
    assert inb(ctx, 0x4D0) == 0xF8        # IRQ 0-2 cannot be level-triggered
    line = ctx.irq(5)
    line.raise_()
    assert pic.has_interrupt()
    line.lower()
    assert not pic.has_interrupt()
    assert pic.acknowledge() == 0x37      # the request went away: spurious IRQ 7
    outb(ctx, 0x20, 0x0B)
    assert inb(ctx, 0x20) == 0x00         # spurious does not set ISR


def test_spurious_irq15_keeps_master_ir2_in_service(board):
    ctx, pic = board
    init_like_linux(ctx)
    outb(ctx, 0x4D1, 0x02)                # IRQ 9 level
    ctx.irq(9).raise_()
    assert pic.has_interrupt()
    # the slave's request vanishes after the master saw INT on IR2 but before INTA
    pic.slave.lines = 0
    assert pic.acknowledge() == 0x3F
    outb(ctx, 0x20, 0x0B)
    assert inb(ctx, 0x20) == 0x04


def test_auto_eoi(board):
    ctx, pic = board
    init_like_linux(ctx, aeoi=True)
    ctx.irq(3).pulse()
    assert pic.acknowledge() == 0x33
    outb(ctx, 0x20, 0x0B)
    assert inb(ctx, 0x20) == 0x00
    ctx.irq(7).pulse()
    assert pic.acknowledge() == 0x37


def test_poll_mode(board):
    ctx, pic = board
    init_like_linux(ctx)
    ctx.irq(3).pulse()
    outb(ctx, 0x20, 0x0C)                 # OCW3 poll
    assert inb(ctx, 0x20) == 0x83
    outb(ctx, 0x20, 0x0C)
    assert inb(ctx, 0x20) == 0x00
    outb(ctx, 0x20, 0x0B)
    assert inb(ctx, 0x20) == 0x08         # poll acknowledged IRQ 3


def test_special_mask_mode_allows_lower_priority(board):
    ctx, pic = board
    init_like_linux(ctx)
    ctx.irq(1).pulse()
    assert pic.acknowledge() == 0x31
    outb(ctx, 0x21, 0x02)                 # mask the level in service
    outb(ctx, 0x20, 0x68)                 # OCW3 set special mask
    ctx.irq(5).pulse()
    assert pic.acknowledge() == 0x35
    outb(ctx, 0x20, 0x48)                 # reset special mask
    ctx.irq(6).pulse()
    assert not pic.has_interrupt()


def test_rotate_on_nonspecific_eoi(board):
    ctx, pic = board
    init_like_linux(ctx)
    ctx.irq(0).pulse()
    assert pic.acknowledge() == 0x30
    outb(ctx, 0x20, 0xA0)                 # rotate on non-specific EOI: IRQ 0 now lowest
    ctx.irq(0).pulse()
    ctx.irq(3).pulse()
    assert pic.acknowledge() == 0x33


def test_set_priority_command(board):
    ctx, pic = board
    init_like_linux(ctx)
    outb(ctx, 0x20, 0xC4)                 # IRQ 4 lowest, IRQ 5 highest
    ctx.irq(1).pulse()
    ctx.irq(6).pulse()
    assert pic.acknowledge() == 0x36


def test_imr_read_back_and_icw1_clears_imr(board):
    ctx, pic = board
    init_like_linux(ctx)
    outb(ctx, 0xA1, 0xA5)
    assert inb(ctx, 0xA1) == 0xA5
    outb(ctx, 0xA0, 0x11)
    assert inb(ctx, 0xA1) == 0x00


def test_edges_before_intc_attached_are_replayed():
    ctx = BoardContext(clock=ManualClock())
    ctx.irq(0).pulse()
    pic = ctx.add_device(PIC8259("pic"))
    init_like_linux(ctx)
    # ICW1 resets the edge latch, as on hardware: the early edge is gone
    assert not pic.has_interrupt()


def test_single_mode_is_unimplemented(board):
    ctx, pic = board
    with pytest.raises(Unimplemented):
        outb(ctx, 0x20, 0x13)


def test_random_register_fuzz():
    rng = random.Random(8259)
    for _ in range(50):
        ctx = BoardContext(clock=ManualClock())
        pic = ctx.add_device(PIC8259("pic"))
        try:
            for _ in range(200):
                r = rng.random()
                port = rng.choice((0x20, 0x21, 0xA0, 0xA1, 0x4D0, 0x4D1))
                if r < 0.4:
                    outb(ctx, port, rng.randrange(256))
                elif r < 0.6:
                    inb(ctx, port)
                elif r < 0.8:
                    n = rng.choice([i for i in range(16) if i != 2])
                    ctx.irq(n).set(rng.randrange(2))
                elif pic.has_interrupt():
                    assert 0 <= pic.acknowledge() < 256
        except Unimplemented:
            pass
