"""PCI: configuration mechanism 1 through ports 0xCF8/0xCFC, and the registration API."""
import io
import random

import pytest

from v3tools.errors import ConfigError, Unimplemented
from vmm.clock import ManualClock
from vmm.context import BoardContext
from vmm.devices.pci import PciBus, PciConfig
from vmm.log import VMMLog


@pytest.fixture
def ctx():
    c = BoardContext(clock=ManualClock(), log=VMMLog(stream=io.StringIO()))
    c.add_device(PciBus("pci0"))
    return c


def cfg_addr(bus, dev, fn, reg):
    return 0x80000000 | bus << 16 | dev << 11 | fn << 8 | (reg & 0xFC)


def cfg_read(ctx, bus, dev, fn, reg, size=4):
    ctx.io.write(0xCF8, 4, cfg_addr(bus, dev, fn, reg))
    return ctx.io.read(0xCFC + (reg & 3), size)


def cfg_write(ctx, bus, dev, fn, reg, size, value):
    ctx.io.write(0xCF8, 4, cfg_addr(bus, dev, fn, reg))
    ctx.io.write(0xCFC + (reg & 3), size, value)


def nic():
    c = PciConfig(0x10EC, 0x8139, 0x020000, revision=0x10, name="nic", interrupt_pin=1)
    c.set_bar(0, 0x100, io=True)
    c.set_bar(1, 0x1000)
    return c


def test_registers_itself_and_absent_devices_read_all_ones(ctx):
    assert ctx.pci_bus is ctx.devices["pci0"]
    assert cfg_read(ctx, 0, 0, 0, 0) == 0xFFFFFFFF
    assert cfg_read(ctx, 0, 5, 0, 0, 2) == 0xFFFF
    assert cfg_read(ctx, 1, 0, 0, 0) == 0xFFFFFFFF


def test_linux_type1_probe(ctx):
    ctx.io.write(0xCFB, 1, 0x01)                 # pci_check_type1: harmless byte write
    saved = ctx.io.read(0xCF8, 4)
    ctx.io.write(0xCF8, 4, 0x80000000)
    assert ctx.io.read(0xCF8, 4) == 0x80000000
    ctx.io.write(0xCF8, 4, saved)
    ctx.io.write(0xCF8, 4, 0xFFFFFFFF)
    assert ctx.io.read(0xCF8, 4) == 0x80FFFFFC   # reserved bits read 0
    assert ctx.io.read(0xCF8, 1) == 0xFF          # byte reads are not the address register


def test_header_fields_and_widths(ctx):
    pci = ctx.pci_bus
    assert pci.register_function(config_space=nic()) == (0, 0)
    assert cfg_read(ctx, 0, 0, 0, 0) == 0x813910EC
    assert cfg_read(ctx, 0, 0, 0, 2, 2) == 0x8139
    assert cfg_read(ctx, 0, 0, 0, 0x0B, 1) == 0x02
    assert cfg_read(ctx, 0, 0, 0, 0x08) == 0x02000010
    assert cfg_read(ctx, 0, 0, 0, 0x3D, 1) == 1
    cfg_write(ctx, 0, 0, 0, 0, 4, 0)             # IDs are read-only
    assert cfg_read(ctx, 0, 0, 0, 0) == 0x813910EC
    cfg_write(ctx, 0, 0, 0, 0x3C, 1, 11)
    assert cfg_read(ctx, 0, 0, 0, 0x3C, 1) == 11
    cfg_write(ctx, 0, 0, 0, 0x04, 2, 0xFFFF)
    assert cfg_read(ctx, 0, 0, 0, 0x04, 2) == 0x0547


def test_bar_sizing_and_change_hook(ctx):
    cfg = nic()
    changes = []
    cfg.on_bar_change = lambda index, base: changes.append((index, base))
    ctx.pci_bus.register_function(config_space=cfg)
    cfg_write(ctx, 0, 0, 0, 0x10, 4, 0xFFFFFFFF)
    assert cfg_read(ctx, 0, 0, 0, 0x10) == 0xFFFFFF01    # 256 bytes of I/O
    cfg_write(ctx, 0, 0, 0, 0x14, 4, 0xFFFFFFFF)
    assert cfg_read(ctx, 0, 0, 0, 0x14) == 0xFFFFF000    # 4 KiB of memory
    assert cfg_read(ctx, 0, 0, 0, 0x18) == 0             # unimplemented BAR
    cfg_write(ctx, 0, 0, 0, 0x10, 4, 0xC001)
    assert cfg.bar(0) == 0xC000
    assert changes[-1] == (0, 0xC000)


def test_status_error_bits_are_write_one_to_clear(ctx):
    cfg = nic()
    cfg.init(0x06, 2, 0x8000, w1c=0xF900)
    ctx.pci_bus.register_function(config_space=cfg)
    cfg_write(ctx, 0, 0, 0, 0x06, 2, 0x8000)
    assert cfg_read(ctx, 0, 0, 0, 0x06, 2) == 0


def test_device_specific_registers_must_be_declared(ctx):
    cfg = nic()
    cfg.declare(0x40, 2, 0x1234)
    ctx.pci_bus.register_function(config_space=cfg)
    cfg_write(ctx, 0, 0, 0, 0x40, 2, 0xBEEF)
    assert cfg_read(ctx, 0, 0, 0, 0x40, 2) == 0xBEEF
    assert cfg_read(ctx, 0, 0, 0, 0x50) == 0
    with pytest.raises(Unimplemented, match="0x50"):
        cfg_write(ctx, 0, 0, 0, 0x50, 1, 1)


def test_slots_functions_and_lookup(ctx):
    pci = ctx.pci_bus
    host = PciConfig(0x8086, 0x1237, 0x060000, name="host")
    pci.register_function(0, 0, 0, host)
    with pytest.raises(ConfigError, match="already taken by host"):
        pci.register_function(0, 0, 0, nic())
    isa = PciConfig(0x8086, 0x7000, 0x060100, header_type=0x80, name="isa")
    assert pci.register_function(0, None, 0, isa) == (1, 0)
    ide = PciConfig(0x8086, 0x7010, 0x010180, name="ide")
    assert pci.register_function(0, 1, 1, ide) == (1, 1)
    assert pci.register_function(config_space=nic()) == (2, 0)
    assert pci.find_device(0x8086, 0x7010) == (0, 1, 1)
    assert pci.find_device(0x8086, 0x7010, 1) is None
    assert pci.find_class(0x060100) == (0, 1, 0)
    assert pci.find_class(0x010180) == (0, 1, 1)
    assert pci.read_config(0, 1, 1, 0, 4) == 0x70108086
    pci.write_config(0, 2, 0, 0x3C, 1, 9)
    assert pci.read_config(0, 2, 0, 0x3C, 1) == 9


def test_function_above_zero_needs_multifunction_device(ctx):
    from v3tools.errors import V3Error
    ctx.pci_bus.register_function(0, 3, 0, nic())
    with pytest.raises(V3Error):
        ctx.pci_bus.register_function(0, 3, 1, nic())


def test_disabled_address_reads_all_ones(ctx):
    ctx.pci_bus.register_function(config_space=nic())
    ctx.io.write(0xCF8, 4, 0)
    assert ctx.io.read(0xCFC, 4) == 0xFFFFFFFF


def test_reset_control_port_requests_a_reset(ctx):
    assert ctx.io.read(0xCF9, 1) == 0
    ctx.io.write(0xCF9, 1, 0x02)
    assert ctx.requests == []
    ctx.io.write(0xCF9, 1, 0x06)
    assert ctx.requests == ["reset"]


def test_second_pci_bus_is_a_config_error(ctx):
    with pytest.raises(ConfigError):
        ctx.add_device(PciBus("pci1"))


def test_reset_restores_power_on_values(ctx):
    ctx.pci_bus.register_function(config_space=nic())
    cfg_write(ctx, 0, 0, 0, 0x3C, 1, 5)
    ctx.pci_bus.reset()
    assert ctx.io.read(0xCF8, 4) == 0
    assert cfg_read(ctx, 0, 0, 0, 0x3C, 1) == 0


def test_random_register_fuzz(ctx):
    ctx.pci_bus.register_function(config_space=nic())
    rng = random.Random(0xCF8)
    for _ in range(5000):
        size = rng.choice((1, 2, 4))
        try:
            if rng.random() < 0.3:
                ctx.io.write(0xCF8, 4, 0x80000000 | rng.randrange(1 << 16) & ~3)
            elif rng.random() < 0.5:
                ctx.io.write(0xCFC + rng.randrange(0, 4, size), size, rng.randrange(1 << (8 * size)))
            else:
                assert 0 <= ctx.io.read(0xCFC + rng.randrange(0, 4, size), size) < 1 << (8 * size)
        except Unimplemented:
            pass


def test_published_intx_wiring_matches_the_chipset():
    """The MP table and the ACPI _PRT publish pci_intx_pin(); the hardware is the bus's slot
    swizzle to PIRQ A-D, which the PIIX3 drives onto IOAPIC pins 16-19: the two must agree, or
    a guest in APIC mode never sees a card's interrupt."""
    from vmm.devices.ioapic import pci_intx_pin
    from vmm.devices.pci import PciBus

    class Cfg:
        def __init__(self, slot, pin):
            self.address, self.pin = (0, slot, 0), pin

        def read(self, offset, size):
            return self.pin

    for slot in range(32):
        for intx in range(4):
            assert 16 + PciBus.pirq_of(Cfg(slot, intx + 1)) == pci_intx_pin(slot, intx)
