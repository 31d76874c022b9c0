"""PIIX3: ISA bridge 00:01.0 and IDE function 00:01.1."""
import io
import random

import pytest
from lxml import etree

from v3tools.errors import ConfigError, Unimplemented
from vmm.clock import ManualClock
from vmm.config import DeviceSpec
from vmm.context import BoardContext
from vmm.devices.i440fx import I440FX
from vmm.devices.pci import PciBus
from vmm.devices.piix3 import PIIX3
from vmm.log import VMMLog


@pytest.fixture
def ctx():
    c = BoardContext(clock=ManualClock(), log=VMMLog(stream=io.StringIO()))
    c.add_device(PciBus("pci0"))
    c.add_device(I440FX("northbridge", "pci0"))
    c.add_device(PIIX3.from_spec(DeviceSpec.from_element(etree.fromstring(
        '<device class="PIIX3" id="southbridge"><bus>pci0</bus></device>')), c))
    return c


def isa(ctx, reg, size=1):
    return ctx.pci_bus.read_config(0, 1, 0, reg, size)


def ide(ctx, reg, size=1):
    return ctx.pci_bus.read_config(0, 1, 1, reg, size)


def test_isa_bridge_identity(ctx):
    assert isa(ctx, 0, 4) == 0x70008086
    assert isa(ctx, 0x09, 4) & 0xFFFFFF == 0x060100
    assert isa(ctx, 0x0E) == 0x80                # multi-function: the IDE function follows


def test_ide_function_identity_and_legacy_mode(ctx):
    sb = ctx.devices["southbridge"]
    assert sb.ide_address == (0, 1, 1)
    assert sb.ide_function.address == (0, 1, 1)
    assert ide(ctx, 0, 4) == 0x70108086
    assert ide(ctx, 0x09, 4) & 0xFFFFFF == 0x010180
    assert ctx.pci_bus.find_class(0x010180) == (0, 1, 1)
    assert ide(ctx, 0x41) & 0x80 and ide(ctx, 0x43) & 0x80   # ata_piix: channels enabled


def test_no_bus_master_bar(ctx):
    ctx.pci_bus.write_config(0, 1, 1, 0x20, 4, 0xFFFFFFFF)
    assert ide(ctx, 0x20, 4) == 0                # BAR4 absent: Linux falls back to PIO


def test_pirq_routing_registers(ctx):
    sb = ctx.devices["southbridge"]
    assert [isa(ctx, 0x60 + i) for i in range(4)] == [0x80] * 4
    assert sb.pirq_route(0) is None
    ctx.pci_bus.write_config(0, 1, 0, 0x60, 4, 0x0B0A0B0A)
    assert [sb.pirq_route(i) for i in range(4)] == [10, 11, 10, 11]
    ctx.pci_bus.write_config(0, 1, 0, 0x82, 1, 0x02)          # Linux: passive release
    assert isa(ctx, 0x82) == 0x02
    sb.reset()
    assert isa(ctx, 0x60) == 0x80


def test_ide_timing_registers_are_writable(ctx):
    ctx.pci_bus.write_config(0, 1, 1, 0x40, 2, 0xA307)
    ctx.pci_bus.write_config(0, 1, 1, 0x44, 1, 0x0B)
    assert ide(ctx, 0x40, 2) == 0xA307 and ide(ctx, 0x44) == 0x0B


def test_bus_is_required(ctx):
    with pytest.raises(ConfigError, match="needs <bus>"):
        PIIX3.from_spec(DeviceSpec.from_element(etree.fromstring('<device class="PIIX3" id="s"/>')), ctx)


def test_random_register_fuzz(ctx):
    rng = random.Random(0x7000)
    for _ in range(3000):
        fn, reg, size = rng.randrange(2), rng.randrange(256), rng.choice((1, 2, 4))
        try:
            ctx.pci_bus.write_config(0, 1, fn, reg, size, rng.randrange(1 << (8 * size)))
        except Unimplemented:
            pass
        assert ide(ctx, 0, 4) == 0x70108086 and isa(ctx, 0, 4) == 0x70008086
