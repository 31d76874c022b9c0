"""GENERIC: Palacios' generic port/memory ranges."""
import io
import random

import pytest
from lxml import etree

from v3tools.errors import ConfigError, Unimplemented
from vmm.clock import ManualClock
from vmm.config import DeviceSpec
from vmm.context import BoardContext
from vmm.devices.generic import Generic
from vmm.log import VMMLog

PALACIOS_STYLE = """
<device class="GENERIC" id="generic">
    <ports><start>0x00</start><end>0x07</end><mode>PRINT_AND_IGNORE</mode></ports>
    <ports><start>3c0</start><end>3df</end><mode>PRINT_AND_PASSTHROUGH</mode></ports>
    <ports><start>0x274</start><end>0x277</end><mode>GENERIC_IGNORE</mode></ports>
    <memory><start>0xd0000</start><end>0xd0fff</end><mode>ignore</mode></memory>
</device>
"""


def make(xml, debug=()):
    ctx = BoardContext(clock=ManualClock(), log=VMMLog(stream=io.StringIO(), enabled=debug))
    spec = DeviceSpec.from_element(etree.fromstring(xml))
    ctx.add_device(Generic.from_spec(spec, ctx))
    return ctx


def test_ranges_read_zero_and_drop_writes():
    ctx = make(PALACIOS_STYLE)
    ctx.io.write(0x03, 1, 0x55)
    assert ctx.io.read(0x03, 1) == 0
    assert ctx.io.read(0x3C0, 2) == 0            # hex without 0x, as Palacios' atox
    assert ctx.io.read(0x277, 4) == 0
    assert ctx.mmio.read(0xD0800, 4) == 0
    assert ctx.io.find(0x08) is None and ctx.io.find(0x3E0) is None


def test_print_modes_log_accesses_at_debug_level():
    ctx = make(PALACIOS_STYLE, debug=("generic",))
    ctx.io.write(0x05, 1, 0x42)
    ctx.io.read(0x274, 1)                        # IGNORE: silent
    out = ctx.vmmlog.stream.getvalue()
    assert "write port 0x5 size 1 <- 0x42 (PRINT_AND_IGNORE)" in out
    assert "0x274" not in out


def test_passthrough_is_noted_once_per_range():
    ctx = make(PALACIOS_STYLE)
    for _ in range(3):
        ctx.io.write(0x3C4, 1, 1)
    ctx.io.read(0x3D5, 1)
    assert ctx.vmmlog.stream.getvalue().count("no host hardware") == 1


@pytest.mark.parametrize("body, message", [
    ("<ports><start>0x10</start><end>0x1</end><mode>IGNORE</mode></ports>", "bad <ports> range"),
    ("<ports><start>0x10</start><end>0x11</end><mode>SPY</mode></ports>", "unknown mode"),
    ("<ports><end>0x11</end><mode>IGNORE</mode></ports>", "needs <start>"),
    ("<ports><start>zz</start><end>0x11</end><mode>IGNORE</mode></ports>", "not a hexadecimal"),
    ("<ports><start>0x1</start><end>0x11</end></ports>", "needs <mode>"),
])
def test_config_errors(body, message):
    with pytest.raises(ConfigError, match=message):
        make(f'<device class="GENERIC" id="g">{body}</device>')


def test_host_device_forwarding_is_a_config_error():
    with pytest.raises(ConfigError, match="host devices"):
        make('<device class="GENERIC" id="g" forward="host_device"/>')


def test_memory_passthrough_is_unimplemented():
    with pytest.raises(Unimplemented):
        make('<device class="GENERIC" id="g"><memory><start>0xd0000</start><end>0xd0fff</end>'
             '<mode>PASSTHROUGH</mode></memory></device>')


def test_random_access_fuzz():
    ctx = make(PALACIOS_STYLE)
    rng = random.Random(7)
    for _ in range(2000):
        port = rng.choice((rng.randrange(0, 8), rng.randrange(0x3C0, 0x3E0)))
        if rng.random() < 0.5:
            ctx.io.write(port, 1, rng.randrange(256))
        else:
            assert ctx.io.read(port, 1) == 0


COM1_PASSTHROUGH = """
<device class="GENERIC" id="generic">
    <ports><start>0x3f8</start><end>0x3ff</end><mode>PASSTHROUGH</mode></ports>
    <ports><start>0x2f8</start><end>0x2ff</end><mode>PRINT_AND_IGNORE</mode></ports>
</device>
"""


def test_com_port_passthrough_reaches_the_hosts_uart():
    """PASSTHROUGH over COM1's ports reaches the VMM's own 16550 (the host hardware here), whose
    output is the console; an IGNORE range over COM2 stays ignored."""
    out = bytearray()
    ctx = BoardContext(clock=ManualClock(), log=VMMLog(stream=io.StringIO()))
    ctx.console.write = out.extend
    spec = DeviceSpec.from_element(etree.fromstring(COM1_PASSTHROUGH))
    ctx.add_device(Generic.from_spec(spec, ctx))
    for dev in ctx.devices.values():
        dev.reset()
    assert "COM1" in ctx.serial_ports and ctx.io.find(0x3F8).owner.startswith("generic")
    assert ctx.io.read(0x3FD, 1) & 0x60 == 0x60          # LSR: THRE and TEMT
    ctx.io.write(0x3FF, 1, 0x5A)                         # scratch register
    assert ctx.io.read(0x3FF, 1) == 0x5A
    ctx.io.write(0x3F8, 1, ord("h"))
    ctx.io.write(0x3F8, 1, ord("i"))
    assert bytes(out) == b"hi"
    ctx.io.write(0x2FF, 1, 0x5A)
    assert ctx.io.read(0x2FF, 1) == 0


def test_com_port_passthrough_survives_a_snapshot(tmp_path):
    """The host UART behind the passthrough is saved and restored with the machine."""
    from vmm.debug import snapshot
    from vmm.machine import Machine

    def machine():
        m = Machine(memory_mb=4)
        spec = DeviceSpec.from_element(etree.fromstring(COM1_PASSTHROUGH))
        m.ctx.add_device(Generic.from_spec(spec, m.ctx))
        m.finish_board()
        return m
    a = machine()
    a.ctx.io.write(0x3FF, 1, 0x5A)                       # scratch
    a.ctx.io.write(0x3FB, 1, 0x03)                       # LCR: 8N1
    snapshot.save(a, tmp_path / "s.v3snap")
    b = machine()
    snapshot.load(b, tmp_path / "s.v3snap")
    assert b.ctx.io.read(0x3FF, 1) == 0x5A and b.ctx.io.read(0x3FB, 1) == 0x03
