"""OS_DEBUG: the 0xC0C0 console and the 0x99 heartbeat."""
import io
import random

import pytest

from v3tools.errors import Unimplemented
from vmm.clock import ManualClock
from vmm.context import BoardContext
from vmm.devices.os_debug import OsDebug
from vmm.log import VMMLog


@pytest.fixture
def ctx():
    c = BoardContext(clock=ManualClock(), log=VMMLog(stream=io.StringIO()))
    c.add_device(OsDebug("os debug"))
    return c


def log_text(ctx):
    return ctx.vmmlog.stream.getvalue()


def test_console_lines(ctx):
    for b in b"kitten up\n":
        ctx.io.write(0xC0C0, 1, b)
    assert "VM console> kitten up\n" in log_text(ctx)


def test_heartbeat_any_width(ctx):
    ctx.io.write(0x99, 1, 7)
    ctx.io.write(0x99, 4, 0x12345678)
    assert "heartbeat> 0x7 (7)" in log_text(ctx)
    assert "heartbeat> 0x12345678" in log_text(ctx)


def test_reads_float(ctx):
    assert ctx.io.read(0xC0C0, 1) == 0xFF
    assert ctx.io.read(0x99, 2) == 0xFFFF


def test_random_register_fuzz(ctx):
    rng = random.Random(0xC0C0)
    for _ in range(2000):
        try:
            port = rng.choice((0xC0C0, 0x99))
            size = rng.choice((1, 2, 4))
            if rng.random() < 0.7:
                ctx.io.write(port, size, rng.randrange(1 << (8 * size)))
            else:
                ctx.io.read(port, size)
        except Unimplemented:
            pass
