"""i8042 keyboard controller, PS/2 keyboard and port 0x92, driven through the port bus."""
import random

import pytest

from v3tools.errors import Unimplemented
from vmm.clock import ManualClock
from vmm.context import BoardContext
from vmm.devices.keyboard import I8042


@pytest.fixture
def board():
    ctx = BoardContext(clock=ManualClock())
    kbd = ctx.add_device(I8042("keyboard"))
    kbd.reset()
    return ctx, kbd


def outb(ctx, port, value):
    ctx.io.write(port, 1, value)


def inb(ctx, port):
    return ctx.io.read(port, 1)


def drain(ctx):
    """Everything in the output buffer, as (byte, status) pairs (Linux's i8042_flush)."""
    got = []
    while True:
        st = inb(ctx, 0x64)
        if not st & 0x01:
            return got
        got.append((inb(ctx, 0x60), st))
        assert len(got) < 64


def command(ctx, cmd, *params):
    outb(ctx, 0x64, cmd)
    for p in params:
        outb(ctx, 0x60, p)
    return [b for b, _ in drain(ctx)]


def rising_edges(ctx, n):
    return sum(1 for line, level in ctx.pending_irq_events if line == n and level)


def test_linux_probe_sequence(board):
    ctx, kbd = board
    kbd.inject_scancodes(b"\x1e\x9e")
    assert [b for b, _ in drain(ctx)] == [0x1E, 0x9E]    # flush
    ctr = command(ctx, 0x20)[0]
    assert ctr == 0x45
    assert command(ctx, 0xAA) == [0x55]
    assert inb(ctx, 0x64) & 0x04                         # SYS flag
    ctr &= ~0x03
    command(ctx, 0x60, ctr | 0x10)                       # IRQs off, keyboard disabled
    assert command(ctx, 0x20) == [ctr | 0x10]
    # aux loop test: the byte comes back as aux data
    outb(ctx, 0x64, 0xD3)
    outb(ctx, 0x60, 0x5A)
    [(byte, st)] = drain(ctx)
    assert byte == 0x5A and st & 0x20
    command(ctx, 0xA7)
    assert command(ctx, 0x20)[0] & 0x20
    command(ctx, 0xA8)
    assert not command(ctx, 0x20)[0] & 0x20
    assert command(ctx, 0xA9) == [0x00]
    assert command(ctx, 0xAB) == [0x00]


def test_aux_irq_delivery_test(board):
    ctx, kbd = board
    command(ctx, 0x60, 0x47)                             # both IRQs enabled
    ctx.pending_irq_events.clear()
    outb(ctx, 0x64, 0xD3)
    outb(ctx, 0x60, 0xA5)
    assert rising_edges(ctx, 12) == 1
    assert rising_edges(ctx, 1) == 0
    st = inb(ctx, 0x64)
    assert st & 0x21 == 0x21 and inb(ctx, 0x60) == 0xA5
    assert not ctx.irq(12).level


def test_no_mouse_answers_resend_with_timeout(board):
    ctx, kbd = board
    outb(ctx, 0x64, 0xD4)
    outb(ctx, 0x60, 0xF2)                                # mouse identify
    [(byte, st)] = drain(ctx)
    assert byte == 0xFE
    assert st & 0x60 == 0x60                             # aux data, timeout
    assert not inb(ctx, 0x64) & 0x40


def test_keyboard_identify_translated_and_raw(board):
    ctx, kbd = board
    outb(ctx, 0x60, 0xF2)
    assert [b for b, _ in drain(ctx)] == [0xFA, 0xAB, 0x41]
    command(ctx, 0x60, 0x05)                             # translation off
    outb(ctx, 0x60, 0xF2)
    assert [b for b, _ in drain(ctx)] == [0xFA, 0xAB, 0x83]


def test_keyboard_commands(board):
    ctx, kbd = board

    def kb(*data):
        for d in data:
            outb(ctx, 0x60, d)
        return [b for b, _ in drain(ctx)]

    assert kb(0xFF) == [0xFA, 0xAA]
    assert kb(0xED, 0x07) == [0xFA, 0xFA]
    assert kbd.kbd.leds == 7
    assert kb(0xF3, 0x20) == [0xFA, 0xFA]
    assert kb(0xF0, 0x00) == [0xFA, 0xFA, 0x41]
    assert kb(0xF0, 0x01) == [0xFA, 0xFA]
    assert kb(0xEE) == [0xEE]
    assert kb(0xF5) == [0xFA]
    kbd.inject_scancodes(b"\x1e")
    assert kb() == []                                    # scanning disabled
    assert kb(0xF4, 0xF6) == [0xFA, 0xFA]
    assert kb(0x12) == [0xFE]


def test_irq1_per_byte_when_enabled(board):
    ctx, kbd = board
    ctx.pending_irq_events.clear()
    kbd.inject_scancodes(b"\x1e\x9e\x30")
    for expected in (0x1E, 0x9E, 0x30):
        assert ctx.irq(1).level
        assert inb(ctx, 0x60) == expected
    assert not ctx.irq(1).level
    assert rising_edges(ctx, 1) == 3
    assert inb(ctx, 0x60) == 0x30                        # empty: last byte again


def test_disabled_keyboard_holds_bytes(board):
    ctx, kbd = board
    command(ctx, 0xAD)
    kbd.inject_scancodes(b"\x1e")
    assert not inb(ctx, 0x64) & 0x01
    assert command(ctx, 0x20)[0] & 0x10                  # controller replies still come
    assert command(ctx, 0xAE) == [0x1E]


def test_a20_and_reset_paths(board):
    ctx, kbd = board
    command(ctx, 0xDD)
    assert ctx.a20 is False
    assert command(ctx, 0xD0)[0] & 0x02 == 0
    command(ctx, 0xDF)
    assert ctx.a20 is True
    command(ctx, 0xD1, 0xDD)                             # output port: A20 off, no reset
    assert ctx.a20 is False and ctx.requests == []
    command(ctx, 0xD1, 0xDF)
    assert ctx.a20 is True
    command(ctx, 0xFF)                                   # pulse nothing
    assert ctx.requests == []
    command(ctx, 0xFE)
    assert ctx.requests == ["reset"]
    command(ctx, 0xD1, 0x02)
    assert ctx.requests == ["reset", "reset"]


def test_port_92(board):
    ctx, kbd = board
    assert inb(ctx, 0x92) & 0x02
    outb(ctx, 0x92, 0x00)
    assert ctx.a20 is False and inb(ctx, 0x92) == 0x00
    outb(ctx, 0x92, 0x02)
    assert ctx.a20 is True
    outb(ctx, 0x92, 0x03)
    assert ctx.requests == ["reset"]
    assert inb(ctx, 0x92) == 0x02


def test_status_cmd_bit(board):
    ctx, kbd = board
    outb(ctx, 0x64, 0x20)
    assert inb(ctx, 0x64) & 0x08
    inb(ctx, 0x60)
    outb(ctx, 0x60, 0xF4)
    assert not inb(ctx, 0x64) & 0x08


def test_unknown_controller_command_is_unimplemented(board):
    ctx, kbd = board
    with pytest.raises(Unimplemented):
        outb(ctx, 0x64, 0xA5)


def test_random_register_fuzz():
    rng = random.Random(8042)
    for _ in range(40):
        ctx = BoardContext(clock=ManualClock())
        kbd = ctx.add_device(I8042("keyboard"))
        try:
            for _ in range(300):
                r = rng.random()
                port = rng.choice((0x60, 0x64, 0x92))
                if r < 0.45:
                    outb(ctx, port, rng.randrange(256))
                elif r < 0.9:
                    inb(ctx, port)
                else:
                    kbd.inject_scancodes(bytes([rng.randrange(256)]))
        except Unimplemented:
            pass
