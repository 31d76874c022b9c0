"""BOCHS_DEBUG: BIOS panic/info/debug ports and the port 0xE9 console."""
import io
import random

import pytest

from v3tools.errors import Unimplemented
from vmm.clock import ManualClock
from vmm.context import BoardContext
from vmm.devices.bochs_debug import BochsDebug
from vmm.log import VMMLog


@pytest.fixture
def ctx():
    c = BoardContext(clock=ManualClock(), log=VMMLog(stream=io.StringIO()))
    c.add_device(BochsDebug("bochs debug"))
    return c


def log_text(ctx):
    return ctx.vmmlog.stream.getvalue()


def puts(ctx, port, text):
    for b in text:
        ctx.io.write(port, 1, b)


def test_console_port_is_line_buffered(ctx):
    puts(ctx, 0xE9, b"Hello\r\nwor")
    assert "port 0xe9> Hello\n" in log_text(ctx)
    assert "wor" not in log_text(ctx)
    puts(ctx, 0xE9, b"ld\n")
    assert "port 0xe9> world\n" in log_text(ctx)


def test_info_and_debug_ports(ctx):
    puts(ctx, 0x402, b"info line\n")
    puts(ctx, 0x403, b"debug line\n")
    assert "BIOS info> info line\n" in log_text(ctx)
    assert "BIOS debug> debug line\n" in log_text(ctx)


def test_wide_write_uses_the_low_byte(ctx):
    ctx.io.write(0xE9, 2, 0x4141)
    ctx.io.write(0xE9, 1, 0x0A)
    assert "port 0xe9> A\n" in log_text(ctx)


def test_panic_port_logs_the_value(ctx):
    ctx.io.write(0x400, 2, 1234)
    assert "BIOS panic (port 0x400): 0x4d2 (1234)" in log_text(ctx)


def test_long_lines_are_flushed(ctx):
    puts(ctx, 0xE9, b"x" * 1030)
    assert "port 0xe9> " + "x" * 1024 + "\n" in log_text(ctx)


def test_reads(ctx):
    assert ctx.io.read(0xE9, 1) == 0xE9
    assert ctx.io.read(0x402, 1) == 0xE9
    assert ctx.io.read(0x403, 1) == 0xFF
    assert ctx.io.read(0x400, 2) == 0xFFFF


def test_random_register_fuzz(ctx):
    rng = random.Random(0xE9)
    ports = (0x400, 0x401, 0x402, 0x403, 0xE9)
    for _ in range(3000):
        try:
            if rng.random() < 0.7:
                ctx.io.write(rng.choice(ports), 1, rng.randrange(256))
            else:
                ctx.io.read(rng.choice(ports), 1)
        except Unimplemented:
            pass
