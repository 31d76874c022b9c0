#!/usr/bin/env python3
"""Host cost of one PCI interrupt-line change on `v3 run`'s standard PC.

A network card on the standard PC (i440FX, PIIX3, 8259A, IOAPIC, LAPIC) raises and lowers its
INTx line N times, the IOAPIC's PCI pins programmed as Linux programs them (level-triggered,
unmasked, fixed delivery to the boot CPU): the path a card interrupt takes through PCI INTx,
the PIIX3's PIRQ routing, the IOAPIC pin and the ISA IRQ it is also routed to. Prints
microseconds per change (the median of --rounds rounds).

    python3 scripts/bench_irq.py [--card ne2k_pci|rtl8139] [--changes N] [--rounds R]
"""
import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--card", choices=["ne2k_pci", "rtl8139"], default="ne2k_pci")
    ap.add_argument("--changes", type=int, default=20000)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    if args.changes < 2 or args.rounds < 1:
        ap.error("--changes must be at least 2 and --rounds at least 1")
    from vmm.bios import pci_init
    from vmm.config import parse_vm_config
    from vmm.launch import standard_pc_xml
    from vmm.machine import Machine
    from vmm.net.options import add_to_config
    from vmm.net.card import PciNic
    cfg = parse_vm_config(standard_pc_xml(32).encode(), "<standard PC>")
    add_to_config(cfg, [f"user,model={args.card},restrict=on"])
    m = Machine(memory_mb=32)
    m.add_devices(cfg.devices)
    m.finish_board()
    pci_init.assign(m.ctx)
    nic = next(d for d in m.ctx.devices.values() if isinstance(d, PciNic))
    ioapic = m.ctx.ioapic
    for pin in range(16, 24):               # level, active low, unmasked, vector 0x26, CPU 0
        ioapic._write(0, 4, 0x10 + 2 * pin)
        ioapic._write(0x10, 4, 0xA026)
    line = nic.irq
    per = []
    for _ in range(args.rounds):
        t0 = time.perf_counter()
        for _ in range(args.changes // 2):
            line.set(1)
            line.set(0)
        per.append((time.perf_counter() - t0) / (args.changes // 2 * 2) * 1e6)
    print(f"{args.card}: {statistics.median(per):.2f} us per interrupt-line change "
          f"(rounds: {', '.join(f'{p:.2f}' for p in per)})")
    m.close()


if __name__ == "__main__":
    main()
