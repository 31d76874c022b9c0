"""The MP table (Intel MultiProcessor Specification 1.4, chapter 4): the MP floating pointer
structure and the MP configuration table, built from the VM's devices.

Entries, in the order the specification requires (by entry type):
* one processor entry for the LAPIC (enabled, bootstrap processor; CPU signature and feature
  flags from CPUID leaf 1 as the guest sees them);
* bus entries: ISA (bus 1) always, PCI (bus 0) when the board has a PCI bus;
* one I/O APIC entry;
* I/O interrupt entries: ISA IRQs 0-15 except the cascade (IRQ 2), IRQ 0 (the PIT) on pin 2 and
  IRQ n on pin n, conforming polarity and trigger (ISA: edge, active high); PCI INTx of every
  function on bus 0 that has an interrupt pin, level-triggered active-low, on the pin
  `vmm.devices.ioapic.pci_intx_pin` gives;
* local interrupt entries: ExtINT on LINT0 (the 8259A, virtual wire) and NMI on LINT1.
"""
from vmm.tables import cpu_signature, pack, with_checksum

SPEC_REV = 4                       # MP specification 1.4
OEM_ID = b"V3TOOLS "
PRODUCT_ID = b"V3 PC       "
PCI_BUS, ISA_BUS = 0, 1

ENTRY_PROCESSOR, ENTRY_BUS, ENTRY_IOAPIC, ENTRY_IOINT, ENTRY_LOCALINT = 0, 1, 2, 3, 4
INT_INT, INT_NMI, INT_SMI, INT_EXTINT = 0, 1, 2, 3
# I/O interrupt flags: polarity bits 0-1 (01 high, 11 low), trigger bits 2-3 (01 edge, 11 level)
FLAGS_CONFORMING = 0
FLAGS_PCI = 0x3 | (0x3 << 2)       # active low, level


def build(ctx, area):
    """Place the configuration table, then the floating pointer; return the pointer's address."""
    lapic, ioapic = ctx.lapic, ctx.ioapic
    entries = []
    signature, features = cpu_signature(ctx)
    from vmm.devices.lapic import VERSION as LAPIC_VERSION
    apic_id = lapic.boot_id if lapic is not None else 0
    version = LAPIC_VERSION
    entries.append(pack("BBBBII8x", ENTRY_PROCESSOR, apic_id, version, 0x3, signature, features))
    pci = ctx.pci_bus
    if pci is not None:
        entries.append(pack("BB6s", ENTRY_BUS, PCI_BUS, b"PCI   "))
    entries.append(pack("BB6s", ENTRY_BUS, ISA_BUS, b"ISA   "))
    if ioapic is not None:
        from vmm.devices.ioapic import VERSION, isa_pin
        entries.append(pack("BBBBI", ENTRY_IOAPIC, ioapic.boot_id, VERSION & 0xFF, 1, ioapic.base))
        for irq in range(16):
            if irq == 2:
                continue
            entries.append(pack("BBHBBBB", ENTRY_IOINT, INT_INT, FLAGS_CONFORMING, ISA_BUS, irq,
                                ioapic.boot_id, isa_pin(irq)))
        for slot, intx, pin in pci_interrupts(ctx):
            entries.append(pack("BBHBBBB", ENTRY_IOINT, INT_INT, FLAGS_PCI, PCI_BUS,
                                (slot << 2) | intx, ioapic.boot_id, pin))
    entries.append(pack("BBHBBBB", ENTRY_LOCALINT, INT_EXTINT, FLAGS_CONFORMING, ISA_BUS, 0,
                        0xFF, 0))
    entries.append(pack("BBHBBBB", ENTRY_LOCALINT, INT_NMI, FLAGS_CONFORMING, ISA_BUS, 0,
                        0xFF, 1))
    body = b"".join(entries)
    lapic_base = lapic.base if lapic is not None else 0xFEE00000
    header = pack("4sHBB8s12sIHHIHBB", b"PCMP", 44 + len(body), SPEC_REV, 0, OEM_ID, PRODUCT_ID,
                  0, 0, len(entries), lapic_base, 0, 0, 0)
    table = with_checksum(header + body, 7)
    table_addr = area.place(table, name="MP configuration table")
    # floating pointer: length 1 (16 bytes), feature byte 1 = 0 (a configuration table is
    # present), feature byte 2 bit 7 clear (virtual wire mode, no IMCR)
    fp = with_checksum(pack("4sIBBB5s", b"_MP_", table_addr, 1, SPEC_REV, 0, bytes(5)), 10)
    return area.place(fp, name="MP floating pointer"), table_addr


def pci_interrupts(ctx):
    """(slot, intx, ioapic pin) for every PCI function on bus 0 with an interrupt pin."""
    from vmm.devices.ioapic import pci_intx_pin
    from vmm.devices.pci import INTERRUPT_PIN
    pci = ctx.pci_bus
    seen = set()
    if pci is None:
        return []
    for (bus, slot, function), cfg in sorted(pci.functions.items()):
        pin = cfg.read(INTERRUPT_PIN, 1)
        if bus == 0 and 1 <= pin <= 4 and (slot, pin - 1) not in seen:
            seen.add((slot, pin - 1))
    return [(slot, intx, pci_intx_pin(slot, intx)) for slot, intx in sorted(seen)]
