"""Firmware tables the built-in BIOS publishes for the guest: the MP table (`mptable.py`, MP
specification 1.4) and ACPI (`acpi.py`, `aml.py`; ACPI specification 6.x).

They are built from the VM's actual devices when the board is finished: every device with a
`build_tables(area, ctx)` method (MPTABLE, ACPI) places its tables in one `TableArea`, a 32 KiB
window of the BIOS ROM segment (physical 0xF4000-0xFBFFF, `vmm.bios.rom.TABLES_AREA`). That
range is in the F segment, where an operating system searches for the MP floating pointer and
the ACPI RSDP, and the E820 map reports it reserved, so nothing reuses it.
"""
import struct

from v3tools.errors import ConfigError


def checksum(data):
    """The byte that makes `data` (with this byte included as 0) sum to 0 modulo 256."""
    return (-sum(data)) & 0xFF


def with_checksum(data, offset):
    """`data` with its checksum byte at `offset` filled in."""
    data = bytearray(data)
    data[offset] = 0
    data[offset] = checksum(data)
    return bytes(data)


def sums_to_zero(data):
    return sum(data) & 0xFF == 0


class TableArea:
    """A bump allocator over a window of guest-physical memory; `data` is written to the guest
    in one piece by `install`."""

    def __init__(self, base, size):
        self.base = base
        self.size = size
        self.data = bytearray(size)
        self.used = 0
        self.placed = []                  # (address, name, length): for logs and tests

    def alloc(self, length, align=16, name="table"):
        start = (self.used + align - 1) & ~(align - 1)
        if start + length > self.size:
            raise ConfigError(f"firmware tables: no room for {name} ({length} bytes) in the "
                              f"{self.size // 1024} KiB table area")
        self.used = start + length
        self.placed.append((self.base + start, name, length))
        return self.base + start

    def put(self, addr, data):
        off = addr - self.base
        self.data[off:off + len(data)] = data

    def place(self, data, align=16, name="table"):
        addr = self.alloc(len(data), align, name)
        self.put(addr, data)
        return addr

    def read(self, addr, length):
        off = addr - self.base
        return bytes(self.data[off:off + length])


def build_tables(ctx, area):
    """Let every table-building device place its tables (in device order)."""
    for dev in ctx.devices.values():
        build = getattr(dev, "build_tables", None)
        if build is not None:
            build(area, ctx)
    return area


def cpu_signature(ctx):
    """(signature, feature flags): CPUID leaf 1 EAX and EDX as the guest sees them."""
    cpuid = getattr(ctx, "cpuid", None)
    if cpuid is None:
        return 0, 0
    a, _, _, d = cpuid.lookup(1, 0)
    return a, d


def pack(fmt, *values):
    return struct.pack("<" + fmt, *values)
