"""i440FX host bridge on the PCI bus."""
import io
import random

import pytest
from lxml import etree

from v3tools.errors import ConfigError, Unimplemented
from vmm.clock import ManualClock
from vmm.config import DeviceSpec
from vmm.context import BoardContext
from vmm.devices import lookup
from vmm.devices.pci import PciBus
from vmm.log import VMMLog


def spec(xml):
    return DeviceSpec.from_element(etree.fromstring(xml))


@pytest.fixture
def ctx():
    c = BoardContext(clock=ManualClock(), log=VMMLog(stream=io.StringIO()))
    c.add_device(PciBus("pci0"))
    cls = lookup("i440fx")
    c.add_device(cls.from_spec(spec('<device class="i440FX" id="nb"><bus>pci0</bus></device>'), c))
    return c


def cfg(ctx, reg, size=1):
    return ctx.pci_bus.read_config(0, 0, 0, reg, size)


def test_identity_at_00_00_0(ctx):
    assert cfg(ctx, 0, 4) == 0x12378086
    assert cfg(ctx, 0x08, 4) == 0x06000002
    assert cfg(ctx, 0x0E) == 0x00
    assert cfg(ctx, 0x72) == 0x02
    assert ctx.pci_bus.find_class(0x060000) == (0, 0, 0)


def test_pam_and_smram_are_stored(ctx):
    for reg in range(0x59, 0x60):
        ctx.pci_bus.write_config(0, 0, 0, reg, 1, 0x33)
    ctx.pci_bus.write_config(0, 0, 0, 0x72, 1, 0x0A)
    assert [cfg(ctx, r) for r in range(0x59, 0x60)] == [0x33] * 7
    assert ctx.devices["nb"].pam(6) == 0x33
    assert cfg(ctx, 0x72) == 0x0A
    ctx.devices["nb"].reset()
    assert cfg(ctx, 0x59) == 0 and cfg(ctx, 0x72) == 0x02


def test_undocumented_register_write_is_unimplemented(ctx):
    with pytest.raises(Unimplemented):
        ctx.pci_bus.write_config(0, 0, 0, 0xF0, 1, 1)


def test_bus_is_required_and_must_be_pci(ctx):
    cls = lookup("I440FX")
    with pytest.raises(ConfigError, match="needs <bus>"):
        cls.from_spec(spec('<device class="i440FX" id="x"/>'), ctx)
    with pytest.raises(ConfigError, match="not defined"):
        ctx.add_device(cls.from_spec(spec('<device class="i440FX" id="y" bus="nope"/>'), ctx))
    with pytest.raises(ConfigError, match="not a PCI bus"):
        ctx.add_device(cls.from_spec(spec('<device class="i440FX" id="z" bus="nb"/>'), ctx))


def test_random_register_fuzz(ctx):
    rng = random.Random(0x1237)
    for _ in range(3000):
        reg, size = rng.randrange(256), rng.choice((1, 2, 4))
        try:
            ctx.pci_bus.write_config(0, 0, 0, reg, size, rng.randrange(1 << (8 * size)))
        except Unimplemented:
            pass
        assert cfg(ctx, 0, 4) == 0x12378086
