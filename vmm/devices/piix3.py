"""PIIX3: the 82371SB PCI-to-ISA bridge (00:01.0) and its IDE function (00:01.1).

Function 0 is 8086:7000, class 0x060100, multi-function. Its registers (Intel 82371SB
datasheet, section 2.2) are stored. It is the board's PCI interrupt router: the PIRQ[A-D]
levels of the PCI bus go to the ISA IRQ named by the PIRQ route control registers 0x60-0x63
(bit 7 set: not routed), so a PCI card's level-triggered INTx reaches the 8259A (the BIOS sets
the ELCR bits of the IRQs it routes to, as a PC BIOS does), and to IOAPIC pins 16-19 (PIRQA-D)
when there is an IOAPIC. A route changed while a PIRQ is asserted moves the level with it;
several PIRQs on one IRQ are wired-OR.

Function 1 is the IDE controller, 8086:7010, class 0x010180: prog-if 0x80 says bus-master
capable with both channels in legacy (compatibility) mode, so the channels sit at the legacy
ports 0x1F0/0x3F6 (IRQ 14) and 0x170/0x376 (IRQ 15). Those ports belong to the IDE device, not
to this one; the IDE device finds this function through `<controller>` and `ide_function`.
Bus-master DMA is not implemented, so BAR4 (the bus-master I/O block) is absent: it reads 0
and sizes to 0, and Linux's ata_piix falls back to PIO ("BAR4 is zero"). IDETIM (0x40-0x43)
comes up with IDE decode enabled on both channels, which ata_piix checks before probing.

    <device class="PIIX3" id="southbridge"><bus>pci0</bus></device>
"""
from vmm.devices import register
from vmm.devices.base import Device
from vmm.devices.pci import HEADER_MULTIFUNCTION, PciConfig, bus_option, find_pci_bus

VENDOR_INTEL = 0x8086
DEVICE_PIIX3_ISA = 0x7000
DEVICE_PIIX3_IDE = 0x7010
CLASS_ISA_BRIDGE = 0x060100
CLASS_IDE_LEGACY_BM = 0x010180
PCI_DEVICE_NUMBER = 1       # 00:01.x, after the i440FX at 00:00.0 as in Palacios' default config

# Function 0 (ISA bridge).
IORT = 0x4C                 # ISA I/O recovery timer
XBCS = 0x4E                 # X-bus chip select (2 bytes)
PIRQRC = 0x60               # PIRQ[A-D] route control (0x60-0x63)
PIRQ_DISABLE = 0x80         # bit 7: routing disabled; bits 3:0: ISA IRQ
TOM = 0x69                  # top of memory
MSTAT = 0x6A                # miscellaneous status (2 bytes)
MBIRQ0 = 0x70               # motherboard device IRQ route 0-1 (0x70-0x71)
MBDMA0 = 0x76               # motherboard device DMA 0-1 (0x76-0x77)
PCSC = 0x78                 # programmable chip select control (2 bytes)
APICBASE = 0x80             # APIC base address relocation
DLC = 0x82                  # deterministic latency control (Linux sets passive release)
SMI_REGS = 0xA0             # SMICNTL, SMIEN, SEE, FTMR, SMIREQ, CTLTMR, CTHTMR (0xA0-0xAF)

# Function 1 (IDE).
IDETIM_PRIMARY = 0x40       # IDE timing, 2 bytes; bit 15 = IDE decode enable
IDETIM_SECONDARY = 0x42
SIDETIM = 0x44              # slave IDE timing
IDETIM_DECODE_ENABLE = 0x8000


@register("PIIX3")
class PIIX3(Device):
    def __init__(self, dev_id, bus_id):
        super().__init__(dev_id)
        self.bus_id = bus_id
        self.isa_function = self._isa_config()
        self.ide_function = self._ide_config()
        self.ide_address = None   # (bus, device, function) once attached
        self.ctx = None
        self.pci = None
        self._driven = {}         # ISA IRQ -> level this router drives on it

    def _isa_config(self):
        c = PciConfig(VENDOR_INTEL, DEVICE_PIIX3_ISA, CLASS_ISA_BRIDGE, name=f"{self.id} (PIIX3)",
                      header_type=HEADER_MULTIFUNCTION, command=0x0007, status=0x0200)
        c.declare(IORT, 1, 0x4D)
        c.declare(XBCS, 2, 0x0003)
        for i in range(4):
            c.declare(PIRQRC + i, 1, PIRQ_DISABLE, mask=0x8F)
        c.declare(TOM, 1, 0x02)
        c.declare(MSTAT, 2)
        c.declare(MBIRQ0, 2, 0x8080)
        c.declare(MBDMA0, 2, 0x0C0C)
        c.declare(PCSC, 2, 0x0002)
        c.declare(APICBASE, 1)
        c.declare(DLC, 1)
        c.declare(SMI_REGS, 16)
        return c

    def _ide_config(self):
        c = PciConfig(VENDOR_INTEL, DEVICE_PIIX3_IDE, CLASS_IDE_LEGACY_BM,
                      name=f"{self.id} (PIIX3 IDE)", status=0x0280)
        c.declare(IDETIM_PRIMARY, 2, IDETIM_DECODE_ENABLE)
        c.declare(IDETIM_SECONDARY, 2, IDETIM_DECODE_ENABLE)
        c.declare(SIDETIM, 1)
        return c

    @classmethod
    def from_spec(cls, spec, ctx):
        return cls(spec.id, bus_option(spec, "PIIX3"))

    def attach(self, ctx):
        pci = find_pci_bus(ctx, self.bus_id, self)
        self.ctx = ctx
        self.pci = pci
        pci.intx_router = self._pirq_changed
        self.isa_function.write_hooks.append(self._config_written)
        dev, _ = pci.register_function(0, PCI_DEVICE_NUMBER, 0, self.isa_function)
        pci.register_function(0, dev, 1, self.ide_function)
        self.ide_address = (0, dev, 1)

    def reset(self):
        self.isa_function.reset()
        self.ide_function.reset()

    def pirq_route(self, pirq):
        """ISA IRQ that PIRQ A-D (0-3) is routed to, or None when routing is disabled."""
        value = self.isa_function.data[PIRQRC + pirq]
        return None if value & PIRQ_DISABLE else value & 0x0F

    # -- PCI interrupt routing ---------------------------------------------------------------------
    def _config_written(self, offset, size, value):
        if offset < PIRQRC + 4 and offset + size > PIRQRC:
            self._reroute()

    def _pirq_changed(self, pirq, level):
        ioapic = self.ctx.ioapic
        if ioapic is not None:
            ioapic.set_pin(16 + pirq, level)
        # only the ISA IRQ this PIRQ is routed to can change (a card's every ISR write
        # comes here: no full re-route); the PIRQs routed to it are wired-OR
        irq = self.pirq_route(pirq)
        if irq is None:
            return
        want = level or any(self.pci.pirq_level(p) and self.pirq_route(p) == irq
                            for p in range(4))
        self._drive(irq, 1 if want else 0)

    def _reroute(self):
        want = {}
        for pirq in range(4):
            irq = self.pirq_route(pirq)
            if irq is None:
                continue
            want[irq] = want.get(irq, 0) | self.pci.pirq_level(pirq)
        for irq in set(want) | set(self._driven):
            self._drive(irq, want.get(irq, 0))

    def _drive(self, irq, level):
        if self._driven.get(irq, 0) != level:
            if self.log is not None and self.log.on:
                self.log.debug(f"PCI interrupt on IRQ {irq} {'raised' if level else 'lowered'}")
            self.ctx.irq(irq).set(level)
        self._driven[irq] = level
