"""The I/O-port and MMIO buses.

Devices see offsets, not addresses: `attach(base, length, read, write, owner)` registers
`read(offset, size) -> int` and `write(offset, size, value)`. The bus owns the access-width
policy: a device declares the widths it implements (`widths`), and wider accesses are split into
little-endian pieces of the widest declared width that fits. A range may also declare block
ports, `blocks={offset: (read_block, write_block)}`: `read_block(size, count)` returns the bytes
of up to `count` (at least one) consecutive `size`-byte reads of the port, `write_block(size,
data)` does the writes of all the elements in `data`; REP INS/OUTS use them
(vmm/cpu/stringio.py) to move many elements in one exit. A port range may also carry a
register fast path in C (`fast`, vmm/cpu/fastport.h), which the C port dispatcher tries before
the Python handlers. Overlaps are rejected naming both owners. Lookups are a bisect over the
sorted bases.
"""
import bisect

from v3tools.errors import Unimplemented, UnhandledIO, V3Error


class BusError(V3Error):
    pass


class _Range:
    __slots__ = ("base", "end", "read", "write", "owner", "widths", "blocks", "fast")

    def __init__(self, base, length, read, write, owner, widths, blocks=None, fast=None):
        self.base, self.end = base, base + length
        self.read, self.write, self.owner, self.widths = read, write, owner, widths
        self.blocks = blocks or None
        self.fast = fast


class Bus:
    """One address space (ports or MMIO). `fallback(kind, addr, size, value, write)` handles
    accesses no device claims; by default they raise UnhandledIO (fail-stop)."""

    def __init__(self, kind, limit):
        self.kind = kind          # "port" or "mmio"
        self.limit = limit
        self._bases = []
        self._ranges = []
        self.fallback = None
        # The port space is small enough for a direct table: port -> range (or None).
        self.table = [None] * limit if limit <= 0x10000 else None
        # The C dispatcher of this space (vmm/cpu/portio.py, vmm/memory.py), when built: it is
        # told of every range with a register fast path in C (`fast`) as it comes and goes.
        self.fast_paths = None

    def attach(self, base, length, read, write, owner, widths=(1, 2, 4), blocks=None,
               fast=None):
        if length <= 0:
            raise BusError(f"{owner}: zero-length {self.kind} range at {base:#x}")
        if base < 0 or base + length > self.limit:
            raise BusError(f"{owner}: {self.kind} range {base:#x}+{length:#x} outside the bus")
        new = _Range(base, length, read, write, owner, tuple(sorted(widths)), blocks, fast)
        i = bisect.bisect_left(self._bases, base)
        for j in (i - 1, i):
            if 0 <= j < len(self._ranges):
                r = self._ranges[j]
                if r.base < new.end and new.base < r.end:
                    raise BusError(
                        f"{self.kind} range {base:#x}-{new.end - 1:#x} of {owner} overlaps "
                        f"{r.base:#x}-{r.end - 1:#x} of {r.owner}")
        self._bases.insert(i, base)
        self._ranges.insert(i, new)
        if self.table is not None:
            for a in range(base, new.end):
                self.table[a] = new
        if fast is not None and self.fast_paths is not None:
            self.fast_paths.map(base, length, fast)
        return new

    def use_fast_paths(self, dispatcher):
        """From now on `dispatcher` (map/unmap) learns of the ranges with a fast path in C,
        those attached already included."""
        self.fast_paths = dispatcher
        for r in self._ranges:
            if r.fast is not None:
                dispatcher.map(r.base, r.end - r.base, r.fast)

    def detach(self, rng):
        """Remove a range returned by attach() (a PCI BAR moving or being disabled)."""
        i = self._ranges.index(rng)
        del self._ranges[i]
        del self._bases[i]
        if rng.fast is not None and self.fast_paths is not None:
            self.fast_paths.unmap(rng.base, rng.end - rng.base)
        if self.table is not None:
            for a in range(rng.base, rng.end):
                self.table[a] = None

    def find(self, addr):
        if self.table is not None:
            return self.table[addr] if 0 <= addr < self.limit else None
        i = bisect.bisect_right(self._bases, addr) - 1
        if i >= 0:
            r = self._ranges[i]
            if addr < r.end:
                return r
        return None

    def owners(self):
        return [(r.base, r.end - r.base, r.owner) for r in self._ranges]

    # -- access ---------------------------------------------------------------------------------
    def read(self, addr, size):
        r = self.find(addr)
        if r is None:
            return self._unclaimed(addr, size, None, False)
        if size in r.widths:
            return r.read(addr - r.base, size) & ((1 << (8 * size)) - 1)
        w = _piece(r, size)
        value = 0
        for k in range(0, size, w):
            value |= (self.read(addr + k, w) & ((1 << (8 * w)) - 1)) << (8 * k)
        return value

    def write(self, addr, size, value):
        r = self.find(addr)
        if r is None:
            self._unclaimed(addr, size, value, True)
            return
        if size in r.widths:
            r.write(addr - r.base, size, value & ((1 << (8 * size)) - 1))
            return
        w = _piece(r, size)
        for k in range(0, size, w):
            self.write(addr + k, w, (value >> (8 * k)) & ((1 << (8 * w)) - 1))

    def _unclaimed(self, addr, size, value, write):
        if self.fallback is not None:
            return self.fallback(self.kind, addr, size, value, write)
        raise UnhandledIO(self.kind, addr, size, value, write)


def _piece(r, size):
    """The width to split a `size`-byte access into for range `r`. A narrower access than the
    device implements is a guest behaviour we do not model (a read of part of a register):
    a fail-stop naming the device."""
    for w in reversed(r.widths):
        if w < size and size % w == 0:
            return w
    raise Unimplemented(f"{size}-byte access to {r.owner} at offset range {r.base:#x}-"
                        f"{r.end - 1:#x}, which implements {'/'.join(map(str, r.widths))}-byte "
                        f"accesses only")
