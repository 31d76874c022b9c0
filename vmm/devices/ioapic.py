"""IOAPIC: an 82093AA-style I/O APIC with 24 pins at 0xFEC00000 (Intel 82093AA datasheet,
290566; Intel SDM vol. 3A ch. 10 for the messages it sends).

Registers through IOREGSEL (offset 0x00) and IOWIN (offset 0x10): 0x00 ID, 0x01 version
(0x11, 24 entries), 0x02 arbitration ID, 0x10-0x3F the redirection table (pin n: low dword at
0x10 + 2n, high dword at 0x11 + 2n).

- Pins: the ISA lines arrive through the board's ISA IRQ wiring with the PC's one override,
  IRQ 0 (the PIT) on pin 2; IRQ n is pin n otherwise. Pins 16-23 are for PCI INTx:
  `pin_line(n)` returns an `IrqLine` that a chipset model raises and lowers
  (`set_pin(n, level)` does the same).
- Edge-triggered pins send a message on each rising edge while unmasked (an edge arriving
  while masked is lost). Level-triggered pins send while asserted and unmasked with remote
  IRR clear, set remote IRR, and send again after the LAPIC's EOI for that vector if still
  asserted. Pins carry the asserted state: the polarity bit is kept as written; MADT and MP
  table declare ISA pins active-high and PCI pins active-low, which is what the wiring means.
- Fixed and lowest-priority messages go to the LAPIC when the destination (physical APIC ID,
  broadcast 0xFF, or a logical destination matching its LDR) names it. SMI, NMI, INIT and
  ExtINT through the IOAPIC are fail-stops when a pin actually fires with them.
- Guest misuse (IOREGSEL naming no register, writes to read-only registers, a narrower access,
  a reserved delivery mode) is a fail-stop naming the register.
"""
from vmm.devices import register
try:
    from vmm.devices import _apic          # register fast paths in C (optional)
except ImportError:
    _apic = None
from vmm.devices.base import Device
from vmm.irq import IrqLine

DEFAULT_BASE = 0xFEC00000
PINS = 24
VERSION = 0x11 | ((PINS - 1) << 16)
ISA_OVERRIDES = {0: 2}             # ISA IRQ -> pin (the PIT's output on pin 2)

MASKED = 1 << 16
LEVEL = 1 << 15
REMOTE_IRR = 1 << 14
POLARITY_LOW = 1 << 13
DELIVERY_STATUS = 1 << 12
LOGICAL = 1 << 11
WRITABLE_LOW = 0x1AFFF             # vector, mode, dest mode, polarity, trigger, mask
DM_NAMES = {0: "fixed", 1: "lowest priority", 2: "SMI", 4: "NMI", 5: "INIT", 7: "ExtINT"}


PCI_INTX_BASE = 16                 # PCI INTA-INTD of slot s go to pins 16-19, rotated by slot


def isa_pin(irq):
    return ISA_OVERRIDES.get(irq, irq)


# pin -> the ISA line wired to it (the lowest one, for pins more than one line could reach)
_ISA_SOURCE = {isa_pin(irq): irq for irq in range(15, -1, -1)}


def pci_intx_pin(slot, intx):
    """The IOAPIC pin PCI slot `slot`'s INTx (0 = INTA ... 3 = INTD) reaches: the board's slot
    wiring gives PIRQ (slot + intx - 1) mod 4 (the PC's rotation, so that the INTA of
    neighbouring slots do not share one; vmm/devices/pci.py), and the PIIX3 drives PIRQ A-D onto
    pins 16-19. The MP table and the ACPI _PRT publish exactly this wiring."""
    return PCI_INTX_BASE + ((slot + intx - 1) & 3)


@register("IOAPIC")
class IOAPIC(Device):
    def __init__(self, dev_id, lapic_id=None, base=DEFAULT_BASE, apic_id=1):
        super().__init__(dev_id)
        self.lapic_id = lapic_id
        self.base = base
        self.boot_id = apic_id
        self.levels = [0] * PINS
        self.sent = [0] * PINS             # messages sent per pin (tests, telemetry)
        self._fast = None                  # the C fast path (vmm/devices/_apic.c), when built
        self.power_on()

    @classmethod
    def from_spec(cls, spec, ctx):
        return cls(spec.id, lapic_id=spec.value("apic"))

    def attach(self, ctx):
        self.ctx = ctx
        if self.lapic_id is not None:
            self.lapic = ctx.find_device(self.lapic_id, wanted_by=self.id)
        else:
            self.lapic = ctx.lapic
        if self.lapic is None or not hasattr(self.lapic, "accept"):
            from v3tools.errors import ConfigError
            raise ConfigError(f"IOAPIC {self.id}: needs a LAPIC defined before it "
                              f"(<apic>ID</apic> names it)")
        self.lapic.ioapic = self
        ctx.ioapic = self
        self._fast = _apic.IoapicFast(self) if _apic is not None else None
        ctx.mmio.attach(self.base, 0x20, self._read, self._write, self.id, widths=(4,),
                        fast=self._fast)
        ctx.add_irq_listener(self._isa_line)

    def power_on(self):
        self.ioregsel = 0
        self.apic_id = self.boot_id
        self.redir = [MASKED] * PINS           # low dwords
        self.dest = [0] * PINS                 # high dwords (destination in bits 24-31)

    def reset(self):
        self.power_on()

    # -- inputs ----------------------------------------------------------------------------------
    def _isa_line(self, irq, level):
        if irq < 16:
            self.set_pin(isa_pin(irq), level)

    def pin_line(self, pin):
        """An IrqLine driving pin `pin` (for PCI INTx routing: pins 16-23)."""
        if not 0 <= pin < PINS:
            raise ValueError(f"IOAPIC: no pin {pin}")
        return IrqLine(pin, self.set_pin)

    def set_pin(self, pin, level):
        # done in C (vmm/devices/_apic.c) when it delivers nothing or a PCI pin's message
        if self._fast is not None and self._fast.set_pin(pin, level):
            return
        level = 1 if level else 0
        was = self.levels[pin]
        self.levels[pin] = level
        if self.log.on and was != level:
            self.log.debug(f"pin {pin} {'raised' if level else 'lowered'}")
        entry = self.redir[pin]
        if entry & MASKED:
            return
        if entry & LEVEL:
            if level and not entry & REMOTE_IRR:
                self._send(pin)
        elif level and not was:
            self._send(pin)

    def isa_request_pending(self, irq):
        """For the ISA line `irq`: None if its pin is masked (the guest does not take it
        through the IOAPIC), else whether its vector still waits in the LAPIC's IRR."""
        pin = isa_pin(irq)
        entry = self.redir[pin]
        if entry & MASKED:
            return None
        return self.lapic.vector_pending(entry & 0xFF)

    # -- messages --------------------------------------------------------------------------------
    def _send(self, pin):
        entry = self.redir[pin]
        mode = (entry >> 8) & 7
        reg = 0x10 + 2 * pin
        if mode not in (0, 1):
            self._misuse(reg, f"pin {pin} fired with delivery mode "
                              f"{DM_NAMES.get(mode, mode)}, which is not modelled")
        dest = self.dest[pin] >> 24
        logical = bool(entry & LOGICAL)
        level = bool(entry & LEVEL)
        if not self.lapic.matches(dest, logical):
            if self.log.on:
                self.log.debug(f"pin {pin}: destination {dest:#x} "
                               f"({'logical' if logical else 'physical'}) names no APIC: dropped")
            return
        source = _ISA_SOURCE.get(pin)
        if self.lapic.accept(entry & 0xFF, level=level, source=source):
            self.sent[pin] += 1
            if level:
                self.redir[pin] |= REMOTE_IRR

    def eoi(self, vector):
        """The LAPIC's EOI broadcast for a level-triggered vector."""
        want = LEVEL | REMOTE_IRR | vector
        for pin, entry in enumerate(self.redir):
            if entry & (LEVEL | REMOTE_IRR | 0xFF) == want:
                self.redir[pin] = entry & ~REMOTE_IRR
                if self.levels[pin] and not entry & MASKED:
                    self._send(pin)

    # -- registers -------------------------------------------------------------------------------
    def _misuse(self, reg, what):
        self.unimplemented(f"register {reg:#04x} ({self._reg_name(reg)}): {what}")

    @staticmethod
    def _reg_name(reg):
        if reg == 0:
            return "ID"
        if reg == 1:
            return "version"
        if reg == 2:
            return "arbitration ID"
        if 0x10 <= reg < 0x10 + 2 * PINS:
            return f"redirection entry {(reg - 0x10) // 2} {'high' if reg & 1 else 'low'}"
        return "no such register"

    def _read(self, offset, size):
        if offset == 0x00:
            return self.ioregsel
        if offset == 0x10:
            return self._read_reg(self.ioregsel)
        self.unimplemented(f"read at offset {offset:#x} (only IOREGSEL at 0x00 and IOWIN "
                           f"at 0x10 exist)")

    def _write(self, offset, size, value):
        if offset == 0x00:
            self.ioregsel = value & 0xFF
        elif offset == 0x10:
            self._write_reg(self.ioregsel, value)
        else:
            self.unimplemented(f"write of {value:#x} at offset {offset:#x} (only IOREGSEL at "
                               f"0x00 and IOWIN at 0x10 exist)")

    def _read_reg(self, reg):
        if reg == 0:
            return (self.apic_id & 0xF) << 24
        if reg == 1:
            return VERSION
        if reg == 2:
            return (self.apic_id & 0xF) << 24
        if 0x10 <= reg < 0x10 + 2 * PINS:
            pin = (reg - 0x10) // 2
            return self.dest[pin] if reg & 1 else self.redir[pin]
        self._misuse(reg, "read through IOWIN")

    def _write_reg(self, reg, value):
        if self.log.on:
            self.log.debug(f"{self._reg_name(reg)} <- {value:#010x}")
        if reg == 0:
            self.apic_id = (value >> 24) & 0xF
            return
        if reg in (1, 2):
            self._misuse(reg, f"write of {value:#x} to a read-only register")
        if not 0x10 <= reg < 0x10 + 2 * PINS:
            self._misuse(reg, f"write of {value:#x} through IOWIN")
        pin = (reg - 0x10) // 2
        if reg & 1:
            self.dest[pin] = value & 0xFF000000
            return
        mode = (value >> 8) & 7
        if mode in (3, 6):
            self._misuse(reg, f"{value:#x}: reserved delivery mode {mode}")
        old = self.redir[pin]
        new = (value & WRITABLE_LOW) | (old & REMOTE_IRR)
        if not new & LEVEL:
            new &= ~REMOTE_IRR                  # remote IRR has no meaning for edge pins
        self.redir[pin] = new
        if not new & MASKED and (new & 0xFF) < 16 and mode in (0, 1):
            self._misuse(reg, f"{value:#x}: illegal vector {new & 0xFF} (0-15 are reserved)")
        # unmasking an asserted level-triggered pin delivers it now
        if old & MASKED and not new & MASKED and new & LEVEL and self.levels[pin] \
                and not new & REMOTE_IRR:
            self._send(pin)
