"""PCI resource assignment at POST, as a PC BIOS does it, so that an operating system finds
every function ready: BARs placed, decoding and bus mastering on, the interrupt routed and the
interrupt line register saying where.

- I/O BARs from 0xC000 upwards (skipping ports a legacy device claims), memory BARs from 0xFEB00000 upwards (below the IOAPIC at
  0xFEC00000), each aligned to its size (memory BARs to at least 4 KiB, so no two devices
  share a page).
- The PIIX3's PIRQ route registers get PIRQA-D -> IRQ 10, 10, 11, 11; the ELCR marks those
  IRQs level-triggered (PCI interrupts are level, active low); each function with an interrupt
  pin gets its routed IRQ in INTERRUPT_LINE (0x3C), which Linux uses when no $PIR or ACPI
  routing table exists.
"""
from vmm.devices.pci import (BAR0, BAR_IO, COMMAND, COMMAND_IO, COMMAND_MASTER, COMMAND_MEMORY,
                             INTERRUPT_LINE, INTERRUPT_PIN)

IO_START = 0xC000
IO_END = 0x10000
MMIO_START = 0xFEB00000
MMIO_END = 0xFEC00000
PIRQ_IRQS = (10, 10, 11, 11)
PIIX3_ISA = (0x8086, 0x7000)
PIRQRC = 0x60
ELCR_PORTS = (0x4D0, 0x4D1)


def assign(ctx, log=None):
    """Program every function on ctx.pci_bus; returns [(bdf, index, base, size)] placed."""
    bus = ctx.pci_bus
    if bus is None:
        return []
    placed = []
    io_next, mem_next = IO_START, MMIO_START
    router = bus.find_device(*PIIX3_ISA)
    routed = set()
    if router is not None:
        for pirq, irq in enumerate(PIRQ_IRQS):
            bus.write_config(*router, PIRQRC + pirq, 1, irq)
            routed.add(irq)
    for bdf, cfg in sorted(bus.functions.items()):
        command = 0
        for index, size in enumerate(cfg.bar_sizes):
            if not size:
                continue
            io = bool(cfg.read(BAR0 + 4 * index, 4) & BAR_IO)
            if io:
                base = _align(io_next, size)
                while base + size <= IO_END and _claimed(ctx.io, base, size):
                    base += size            # skip ports a legacy device owns (0xC0C0 ...)
                if base + size > IO_END:
                    _note(log, f"PCI {cfg.name}: no I/O space left for BAR{index}")
                    continue
                io_next = base + size
                command |= COMMAND_IO
            else:
                base = _align(mem_next, max(size, 0x1000))
                while base + size <= MMIO_END and _claimed(ctx.mmio, base, size):
                    base += max(size, 0x1000)
                if base + size > MMIO_END:
                    _note(log, f"PCI {cfg.name}: no memory space left for BAR{index}")
                    continue
                mem_next = base + max(size, 0x1000)
                command |= COMMAND_MEMORY
            bus.write_config(*bdf, BAR0 + 4 * index, 4, base)
            placed.append((bdf, index, base, size))
        pin = cfg.read(INTERRUPT_PIN, 1)
        if pin and router is not None:
            irq = PIRQ_IRQS[bus.pirq_of(cfg)]
            bus.write_config(*bdf, INTERRUPT_LINE, 1, irq)
        if command:
            bus.write_config(*bdf, COMMAND, 2, cfg.read(COMMAND, 2) | command | COMMAND_MASTER)
        for b, index, base, size in placed:
            if b == bdf:
                _note(log, f"PCI {bdf[1]:02x}.{bdf[2]} {cfg.name}: BAR{index} at {base:#x} "
                           f"({size} bytes)")
    if routed and ctx.io.find(ELCR_PORTS[0]) is not None:
        elcr = [ctx.io.read(p, 1) for p in ELCR_PORTS]
        for irq in routed:
            elcr[irq >> 3] |= 1 << (irq & 7)
        for port, value in zip(ELCR_PORTS, elcr):
            ctx.io.write(port, 1, value)
    return placed


def _claimed(bus, base, size):
    step = 1 if size <= 0x1000 else 0x1000
    return any(bus.find(a) is not None for a in range(base, base + size, step))


def _align(value, size):
    return (value + size - 1) & ~(size - 1)


def _note(log, text):
    if log is not None and log.on:
        log.debug(text)
