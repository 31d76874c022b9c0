"""ACPI tables (ACPI specification 6.x, chapter 5) for this machine, built from its devices.

    RSDP (revision 2) -> RSDT and XSDT -> FADT -> FACS, DSDT
                                        -> MADT  (with a LAPIC)
                                        -> HPET  (with an HPET device)

* FADT (revision 3 layout, 244 bytes): SCI on ISA IRQ 9; no SMI command port (the machine is
  always in ACPI mode: SCI_EN reads 1); PM1a event block, PM1a control block and the 32-bit
  PM timer at the ACPI device's ports; no GPE blocks; no C2/C3; no fixed power or sleep button;
  the reset register is port 0xCF9 (value 6); IA-PC boot flags: legacy devices and an 8042.
* DSDT: `\\_S5` (soft off, SLP_TYP 5, which the ACPI device turns into a power-off), and
  `\\_SB.PCI0` (PNP0A03, bus 0) with its `_CRS` (bus numbers 0-255, ports 0xCF8-0xCFF for
  itself, every other port, the VGA window and the memory from above RAM to 0xFEBFFFFF) and a
  `_PRT` routing every slot's INTA-INTD to the IOAPIC pins
  `vmm.devices.ioapic.pci_intx_pin` gives (when there is an IOAPIC).
* MADT: the local APIC (enabled), the IOAPIC (GSI base 0), the interrupt source overrides
  ISA IRQ 0 -> GSI 2 and the SCI (IRQ 9, level, active high), LINT1 as NMI; PCAT_COMPAT set
  (the 8259A pair is present).
* HPET: the event timer block's capabilities, base address, minimum tick.
"""
import struct

from vmm.tables import aml, pack, with_checksum

OEM_ID = b"V3TOOL"
OEM_TABLE_ID = b"V3PC    "
OEM_REVISION = 1
CREATOR_ID = b"V3TL"
CREATOR_REVISION = 1
SCI_IRQ = 9
S5_SLP_TYP = 5
RESET_PORT, RESET_VALUE = 0xCF9, 0x06
CENTURY_CMOS = 0x32                 # the NVRAM keeps the century at CMOS 0x32

# FADT flags (5.2.9, table 5.10)
F_WBINVD, F_PROC_C1, F_PWR_BUTTON, F_SLP_BUTTON, F_FIX_RTC, F_TMR_VAL_EXT, F_RESET_REG_SUP = \
    1 << 0, 1 << 2, 1 << 4, 1 << 5, 1 << 6, 1 << 8, 1 << 10
# IA-PC boot architecture flags
BOOT_LEGACY_DEVICES, BOOT_8042, BOOT_MSI_NOT_SUPPORTED = 1 << 0, 1 << 1, 1 << 3
# MPS INTI flags (5.2.12.5): polarity bits 0-1, trigger bits 2-3
INTI_CONFORMING, INTI_LEVEL_HIGH = 0, 0x1 | (0x3 << 2)


def header(signature, length, revision):
    return pack("4sIBB6s8sI4sI", signature, length, revision, 0, OEM_ID, OEM_TABLE_ID,
                OEM_REVISION, CREATOR_ID, CREATOR_REVISION)


def sdt(signature, revision, body):
    return with_checksum(header(signature, 36 + len(body), revision) + body, 9)


def gas(space, bit_width, address, access_size, bit_offset=0):
    """Generic Address Structure (5.2.3.2): space 0 memory, 1 I/O."""
    return pack("BBBBQ", space, bit_width, bit_offset, access_size, address)


def fadt(pm, dsdt_addr, facs_addr):
    no_gas = bytes(12)
    body = b"".join((
        pack("II", facs_addr, dsdt_addr),
        pack("BBH", 0, 0, SCI_IRQ),                       # reserved, PM profile, SCI_INT
        pack("IBBBB", 0, 0, 0, 0, 0),                     # SMI_CMD, enable/disable, S4BIOS, PSTATE
        pack("IIIIIIII", pm.pm1_evt, 0, pm.pm1_cnt, 0, 0, pm.pm_tmr, 0, 0),
        pack("BBBBBBBB", 4, 2, 0, 4, 0, 0, 0, 0),         # lengths, GPE1_BASE, CST_CNT
        pack("HHHHBBBBB", 101, 1001, 0, 0, 0, 0, 0, 0, CENTURY_CMOS),   # no C2/C3 or duty
        pack("HB", BOOT_LEGACY_DEVICES | BOOT_8042 | BOOT_MSI_NOT_SUPPORTED, 0),
        pack("I", F_WBINVD | F_PROC_C1 | F_PWR_BUTTON | F_SLP_BUTTON | F_FIX_RTC |
             F_TMR_VAL_EXT | F_RESET_REG_SUP),
        gas(1, 8, RESET_PORT, 1), pack("B3x", RESET_VALUE),
        pack("QQ", 0, dsdt_addr),           # X_FIRMWARE_CTRL 0: FIRMWARE_CTRL holds the FACS
        gas(1, 32, pm.pm1_evt, 2), no_gas,                # X_PM1a/b_EVT_BLK
        gas(1, 16, pm.pm1_cnt, 2), no_gas,                # X_PM1a/b_CNT_BLK
        no_gas,                                           # X_PM2_CNT_BLK
        gas(1, 32, pm.pm_tmr, 3),                         # X_PM_TMR_BLK
        no_gas, no_gas,                                   # X_GPE0/1_BLK
    ))
    assert len(body) == 244 - 36, len(body)
    return sdt(b"FACP", 3, body)


def facs():
    # signature, length, hardware signature, waking vector, global lock, flags,
    # X waking vector, version 1, reserved
    data = pack("4sIIIIIQB31x", b"FACS", 64, 0, 0, 0, 0, 0, 1)
    assert len(data) == 64
    return data


def madt(ctx):
    from vmm.devices.ioapic import isa_pin
    lapic, ioapic = ctx.lapic, ctx.ioapic
    entries = [pack("BBBBI", 0, 8, 0, lapic.boot_id, 1)]          # processor local APIC
    if ioapic is not None:
        entries.append(pack("BBBBII", 1, 12, ioapic.boot_id, 0, ioapic.base, 0))
        for irq in range(16):
            if isa_pin(irq) != irq:
                entries.append(pack("BBBBIH", 2, 10, 0, irq, isa_pin(irq), INTI_CONFORMING))
        entries.append(pack("BBBBIH", 2, 10, 0, SCI_IRQ, SCI_IRQ, INTI_LEVEL_HIGH))
    entries.append(pack("BBBHB", 4, 6, 0xFF, INTI_CONFORMING, 1))   # LINT1 = NMI, every CPU
    pcat_compat = 1 if ctx.legacy_intc is not None else 0
    return sdt(b"APIC", 3, pack("II", lapic.base, pcat_compat) + b"".join(entries))


def hpet_table(hpet):
    body = pack("I", hpet.capabilities() & 0xFFFFFFFF) + gas(0, 64, hpet.base, 0) + \
        pack("BHB", 0, hpet.min_tick, 0)
    return sdt(b"HPET", 1, body)


PCI_WINDOW_END = 0xFEBFFFFF             # below the IOAPIC, HPET, LAPIC and the BIOS at the top


def pci_window_base(ctx):
    """The 32-bit PCI memory window starts above RAM (rounded up to 256 MiB, at least 2 GiB
    below the top, as chipsets decode it)."""
    top = max(ctx.memory_size, 1 << 20)
    return min((top + 0x0FFFFFFF) & ~0x0FFFFFFF, 0xE0000000)


def dsdt(ctx):
    from vmm.devices.ioapic import pci_intx_pin
    terms = [aml.name("\\_S5", aml.package(S5_SLP_TYP, S5_SLP_TYP, 0, 0))]
    if ctx.pci_bus is not None:
        pci = [aml.name("_HID", aml.eisa_id("PNP0A03")), aml.name("_ADR", 0),
               aml.name("_UID", 0), aml.name("_BBN", 0),
               aml.name("_CRS", aml.resource_template(
                   aml.word_bus_number(0, 0xFF),
                   aml.io_port(0xCF8, 0xCF8, 1, 8),
                   aml.word_io(0x0000, 0x0CF7),
                   aml.word_io(0x0D00, 0xFFFF),
                   aml.dword_memory(0xA0000, 0xBFFFF),
                   aml.dword_memory(pci_window_base(ctx), PCI_WINDOW_END)))]
        if ctx.ioapic is not None:
            routes = [aml.package(aml.dword((slot << 16) | 0xFFFF), intx, 0,
                                  pci_intx_pin(slot, intx))
                      for slot in range(32) for intx in range(4)]
            pci.append(aml.name("_PRT", aml.package(*routes)))
        terms.append(aml.scope("\\_SB", aml.device("PCI0", *pci)))
    hpet = ctx.hpet
    if hpet is not None:
        terms.append(aml.scope("\\_SB", aml.device(
            "HPET", aml.name("_HID", aml.eisa_id("PNP0103")), aml.name("_UID", 0),
            aml.name("_CRS", aml.resource_template(aml.memory32_fixed(hpet.base, 0x400))))))
    return sdt(b"DSDT", 2, b"".join(terms))


def build(ctx, area, pm):
    """Place every table; return the RSDP's address."""
    facs_addr = area.place(facs(), align=64, name="ACPI FACS")
    dsdt_addr = area.place(dsdt(ctx), name="ACPI DSDT")
    tables = [area.place(fadt(pm, dsdt_addr, facs_addr), name="ACPI FADT")]
    if ctx.lapic is not None:
        tables.append(area.place(madt(ctx), name="ACPI MADT"))
    if ctx.hpet is not None:
        tables.append(area.place(hpet_table(ctx.hpet), name="ACPI HPET"))
    rsdt = area.place(sdt(b"RSDT", 1, b"".join(struct.pack("<I", t) for t in tables)),
                      name="ACPI RSDT")
    xsdt = area.place(sdt(b"XSDT", 1, b"".join(struct.pack("<Q", t) for t in tables)),
                      name="ACPI XSDT")
    rsdp = bytearray(pack("8sB6sBIIQB3x", b"RSD PTR ", 0, OEM_ID, 2, rsdt, 36, xsdt, 0))
    rsdp[8] = (-sum(rsdp[:20])) & 0xFF
    rsdp[32] = (-sum(rsdp)) & 0xFF
    return area.place(bytes(rsdp), name="ACPI RSDP")
