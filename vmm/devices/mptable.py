"""MPTABLE: publishes the MP specification 1.4 tables (vmm/tables/mptable.py) describing this
VM's processor, buses, I/O APIC and interrupt wiring, as Palacios' MPTABLE device does.

It has no registers: it builds its tables when the board is finished, from the devices defined
in the configuration (LAPIC, IOAPIC, PCI and the PCI functions on it), into the BIOS's table
area in the F segment, where operating systems look for the floating pointer.
"""
from vmm.devices import register
from vmm.devices.base import Device


@register("MPTABLE")
class MPTable(Device):
    def __init__(self, dev_id):
        super().__init__(dev_id)
        self.floating_pointer = None
        self.table = None

    def build_tables(self, area, ctx):
        from vmm.tables import mptable
        if ctx.lapic is None:
            from v3tools.errors import ConfigError
            raise ConfigError(f"MPTABLE {self.id}: an MP table describes the local APIC, and "
                              f"this VM has no LAPIC device")
        self.floating_pointer, self.table = mptable.build(ctx, area)
        if self.log is not None:
            self.log.debug(f"MP floating pointer at {self.floating_pointer:#x}, "
                           f"configuration table at {self.table:#x}")
