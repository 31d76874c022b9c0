"""The known-ignored legacy ports."""
import io

from vmm.clock import ManualClock
from vmm.context import BoardContext
from vmm.devices.serial import Serial
from vmm.ignored_ports import IGNORED_PORTS, attach_ignored_ports
from vmm.log import VMMLog


def make(*devices, debug=()):
    ctx = BoardContext(clock=ManualClock(), log=VMMLog(stream=io.StringIO(), enabled=debug))
    for d in devices:
        ctx.add_device(d)
    return ctx


def test_every_entry_is_documented_and_sane():
    for e in IGNORED_PORTS:
        assert 0 <= e.start <= e.end <= 0xFFFF and 0 <= e.read <= 0xFF and e.what


def test_reads_return_the_listed_value_and_writes_are_dropped():
    ctx = make()
    attach_ignored_ports(ctx)
    ctx.io.write(0x80, 1, 0x12)
    assert ctx.io.read(0x80, 1) == 0xFF
    assert ctx.io.read(0x0C, 1) == 0x00          # DMA
    assert ctx.io.read(0x3F4, 1) == 0xFF         # no floppy controller
    assert ctx.io.read(0x3FD, 1) == 0xFF         # no COM1: LSR 0xFF means no UART
    assert ctx.io.read(0x3DA, 1) == 0x00         # VGA input status
    assert ctx.io.read(0x3BD, 1) == 0xFF         # MDA parallel port keeps its own value
    assert ctx.io.read(0x378, 2) == 0xFFFF       # word access split into bytes


def test_claimed_ports_are_skipped():
    ctx = make(Serial("serial"))
    ctx.io.attach(0x3F6, 1, lambda o, s: 0x50, lambda o, s, v: None, owner="ide")
    claimed = attach_ignored_ports(ctx)
    assert ctx.io.find(0x3F8).owner.startswith("serial")
    assert ctx.io.read(0x3F6, 1) == 0x50
    assert ctx.io.read(0x3F7, 1) == 0xFF
    starts = {(s, n) for s, n, _ in claimed}
    assert (0x3F0, 6) in starts and (0x3F7, 1) in starts
    assert not any(s <= 0x3F8 < s + n for s, n, _ in claimed)


def test_first_access_per_port_is_logged_once():
    ctx = make(debug=("io",))
    attach_ignored_ports(ctx, ctx.vmmlog.component("io"))
    for _ in range(5):
        ctx.io.write(0x80, 1, 1)
    ctx.io.read(0x81, 1)
    out = ctx.vmmlog.stream.getvalue()
    assert out.count("port 0x80 ") == 1 and out.count("port 0x81 ") == 1


def test_running_twice_claims_nothing_more():
    ctx = make()
    attach_ignored_ports(ctx)
    assert attach_ignored_ports(ctx) == []
