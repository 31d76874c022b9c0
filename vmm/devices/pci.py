"""PCI: bus 0 behind configuration mechanism 1 (PCI Local Bus Specification 2.1, 3.7.4.1).

PORT 0CF8 (32-bit) CONFIG_ADDRESS: bit 31 enable, 23:16 bus, 15:11 device, 10:8 function,
7:2 register. PORT 0CFC-0CFF CONFIG_DATA: the addressed dword, accessed by byte, word or dword
at its offset. Only dword accesses to 0CF8 are configuration cycles; the other widths at
0CF8/0CFA-0CFB are not decoded (reads float to all ones, writes go nowhere), which is what
Linux's type-1 probe expects. PORT 0CF9 is the PIIX3 reset control register; this device
claims it unless another device already has.

PCI interrupts (INTx): a function raises its INTA#-INTD# pin through `intx_line(config)`, a
level-triggered line. The board swizzles device pin to PIRQ like the PC's slot wiring
(PIRQ = (device + pin - 2) mod 4, pin 1 = INTA#) and hands PIRQ levels to the interrupt router
(the PIIX3, which routes them to the 8259A through its PIRQ route registers and to IOAPIC pins
16-19). Several functions on one PIRQ are wired-OR; COMMAND bit 10 (interrupt disable) masks a
function's output and STATUS bit 3 shows its pending interrupt.

`BarDecoder` keeps a function's BARs mapped on the I/O and MMIO buses as the guest programs
them: a BAR decodes only while its COMMAND enable bit (I/O or memory space) is set.

Other devices register functions with `register_function()`, handing over a `PciConfig`: 256
bytes with per-bit write masks, so read-only fields (IDs, class code) ignore writes and BAR
sizing by writing all ones reads back the size mask. The built-in BIOS uses `read_config`,
`write_config`, `find_device` and `find_class` for its INT 1Ah PCI BIOS functions.
"""
from v3tools.errors import ConfigError, Unimplemented, V3Error
from vmm import irq
from vmm.devices import register
from vmm.devices.base import Device

CONFIG_ADDRESS = 0xCF8
RESET_CONTROL = 0xCF9
CONFIG_DATA = 0xCFC
ADDRESS_ENABLE = 0x80000000
ADDRESS_MASK = 0x80FFFFFC   # reserved bits 30:24 and 1:0 read as 0

# Type-0 header offsets.
VENDOR_ID = 0x00
DEVICE_ID = 0x02
COMMAND = 0x04
STATUS = 0x06
REVISION = 0x08
CLASS_CODE = 0x09           # prog-if, subclass, class (3 bytes)
CACHE_LINE = 0x0C
LATENCY = 0x0D
HEADER_TYPE = 0x0E
BAR0 = 0x10
SUBSYS_VENDOR = 0x2C
SUBSYS_ID = 0x2E
INTERRUPT_LINE = 0x3C
INTERRUPT_PIN = 0x3D
DEVICE_SPECIFIC = 0x40      # from here on, registers must be declared by the device

HEADER_MULTIFUNCTION = 0x80
COMMAND_WRITABLE = 0x0547   # I/O, memory, bus master, parity, SERR#, INTx disable
COMMAND_IO = 0x0001
COMMAND_MEMORY = 0x0002
COMMAND_MASTER = 0x0004
COMMAND_INTX_DISABLE = 0x0400
STATUS_INTERRUPT = 0x0008   # read-only: the function asserts INTx
STATUS_W1C = 0xF900         # error bits: write 1 to clear
BAR_IO = 0x01
BAR_MEM_PREFETCH = 0x08

RCR_SYS_RESET = 0x02        # with RCR_RESET_CPU: hard reset instead of soft
RCR_RESET_CPU = 0x04        # writing 1 starts the reset (reads back 0)
RCR_FULL_RESET = 0x08       # (later ICHs; stored)


class PciConfig:
    """Configuration space of one function (type-0 header)."""

    def __init__(self, vendor, device, class_code, revision=0, header_type=0, name="",
                 command=0, status=0, interrupt_pin=0, subsystem_vendor=0, subsystem=0):
        self.name = name or f"{vendor:04x}:{device:04x}"
        self.data = bytearray(256)
        self.defaults = bytearray(256)  # power-on image, restored by reset()
        self.wmask = bytearray(256)     # bits the guest may write
        self.w1c = bytearray(256)       # bits cleared by writing 1
        self.declared = bytearray(256)  # device-specific bytes the device implements
        self.bar_sizes = [0] * 6
        self.on_bar_change = None       # callable(index, base) after a BAR changes
        self.write_hooks = []           # callables(offset, size, value) after any write
        self.address = None             # (bus, device, function) once registered
        self.init(VENDOR_ID, 2, vendor)
        self.init(DEVICE_ID, 2, device)
        self.init(COMMAND, 2, command, mask=COMMAND_WRITABLE)
        self.init(STATUS, 2, status, w1c=STATUS_W1C)
        self.init(REVISION, 1, revision)
        self.init(CLASS_CODE, 3, class_code)
        self.init(CACHE_LINE, 1, 0, mask=0xFF)
        self.init(LATENCY, 1, 0, mask=0xFF)
        self.init(HEADER_TYPE, 1, header_type)
        self.init(SUBSYS_VENDOR, 2, subsystem_vendor)
        self.init(SUBSYS_ID, 2, subsystem)
        self.init(INTERRUPT_LINE, 1, 0, mask=0xFF)
        self.init(INTERRUPT_PIN, 1, interrupt_pin)

    # -- building ------------------------------------------------------------------------------
    def init(self, offset, size, value, mask=0, w1c=0):
        """Set a field's power-on value and which of its bits the guest may write/clear."""
        for i in range(size):
            b = (value >> (8 * i)) & 0xFF
            self.data[offset + i] = self.defaults[offset + i] = b
            self.wmask[offset + i] = (mask >> (8 * i)) & 0xFF
            self.w1c[offset + i] = (w1c >> (8 * i)) & 0xFF
            if offset + i >= DEVICE_SPECIFIC:
                self.declared[offset + i] = 1

    def declare(self, offset, size=1, value=0, mask=None, w1c=0):
        """A device-specific register: stored, with `mask` writable bits (default all)."""
        if mask is None:
            mask = (1 << (8 * size)) - 1
        self.init(offset, size, value, mask, w1c)

    def set_bar(self, index, size, io=False, prefetchable=False):
        """A BAR decoding `size` bytes (a power of two): sizing reads back ~(size - 1)."""
        if size & (size - 1) or size < (4 if io else 16):
            raise V3Error(f"{self.name}: BAR{index} size {size:#x} is not a valid power of two")
        kind = BAR_IO if io else (BAR_MEM_PREFETCH if prefetchable else 0)
        low_bits = 0x3 if io else 0xF
        self.bar_sizes[index] = size
        self.init(BAR0 + 4 * index, 4, kind, mask=~(size - 1) & 0xFFFFFFFF & ~low_bits)

    def bar(self, index):
        """The base address currently programmed in BAR `index` (type bits removed)."""
        value = self.read(BAR0 + 4 * index, 4)
        return value & (~0x3 if value & BAR_IO else ~0xF) & 0xFFFFFFFF

    @property
    def vendor(self):
        return self.read(VENDOR_ID, 2)

    @property
    def device(self):
        return self.read(DEVICE_ID, 2)

    @property
    def class_code(self):
        return self.read(CLASS_CODE, 4) & 0xFFFFFF

    def reset(self):
        self.data[:] = self.defaults

    # -- access --------------------------------------------------------------------------------
    def read(self, offset, size):
        return int.from_bytes(self.data[offset:offset + size].ljust(size, b"\xff"), "little")

    def write(self, offset, size, value):
        bars_before = self.data[BAR0:BAR0 + 24]
        for i in range(size):
            off = offset + i
            if off >= 256:
                break
            b = (value >> (8 * i)) & 0xFF
            if off >= DEVICE_SPECIFIC and not self.declared[off] and b:
                raise Unimplemented(f"PCI {self.name}: write {b:#04x} to config register "
                                    f"{off:#04x}, which is not modelled", device=self.name,
                                    offset=off, value=b)
            old = self.data[off]
            new = (old & ~self.wmask[off]) | (b & self.wmask[off])
            self.data[off] = new & ~(b & self.w1c[off]) & 0xFF
        if self.on_bar_change is not None and self.data[BAR0:BAR0 + 24] != bars_before:
            for index in range(6):
                lo = BAR0 + 4 * index
                if self.data[lo:lo + 4] != bars_before[lo - BAR0:lo - BAR0 + 4]:
                    self.on_bar_change(index, self.bar(index))
        for hook in self.write_hooks:
            hook(offset, size, value)


@register("PCI")
class PciBus(Device):
    """PCI bus 0 and configuration mechanism 1. Registers itself as `ctx.pci_bus`."""

    last_bus = 0              # PCI BIOS B101h reports it (no PCI-to-PCI bridges)

    def __init__(self, dev_id):
        super().__init__(dev_id)
        self.functions = {}       # (bus, device, function) -> PciConfig
        self.intx_router = None   # callable(pirq, level): the PIIX3 sets it
        self._intx = {}           # PciConfig -> level the function drives
        self._pirq = {}           # PciConfig -> the PIRQ its INTx pin is wired to (intx_line)
        self._pirq_levels = [0, 0, 0, 0]
        self.config_address = 0
        self.rcr = 0
        self.ctx = None

    def attach(self, ctx):
        if ctx.pci_bus is not None:
            raise ConfigError(f"PCI '{self.id}': the VM already has a PCI bus "
                              f"('{getattr(ctx.pci_bus, 'id', '?')}')")
        self.ctx = ctx
        ctx.pci_bus = self
        ctx.io.attach(CONFIG_ADDRESS, 1, self._read_address, self._write_address,
                      owner=f"{self.id} (CONFIG_ADDRESS)", widths=(1, 2, 4))
        if ctx.io.find(RESET_CONTROL) is None:
            ctx.io.attach(RESET_CONTROL, 1, self._read_rcr, self._write_rcr,
                          owner=f"{self.id} (reset control)", widths=(1,))
        else:
            self.log.debug(f"port {RESET_CONTROL:#x} already claimed; no reset control here")
        ctx.io.attach(CONFIG_ADDRESS + 2, 2, self._read_undecoded, self._write_undecoded,
                      owner=f"{self.id} (CONFIG_ADDRESS)", widths=(1, 2, 4))
        ctx.io.attach(CONFIG_DATA, 4, self._read_data, self._write_data,
                      owner=f"{self.id} (CONFIG_DATA)", widths=(1, 2, 4))

    def reset(self):
        self.config_address = 0
        self.rcr = 0
        for cfg in self.functions.values():
            cfg.reset()

    # -- registration --------------------------------------------------------------------------
    def register_function(self, bus=0, device=None, function=0, config_space=None):
        """Put `config_space` at bus:device.function; device None takes the lowest free slot.
        Returns (device, function)."""
        if bus != 0:
            raise ConfigError(f"PCI '{self.id}': {config_space.name} wants bus {bus}; "
                              f"only bus 0 exists")
        if device is None:
            if function != 0:
                raise V3Error(f"{config_space.name}: function {function} needs a device number")
            taken = {d for (_, d, _) in self.functions}
            free = [d for d in range(32) if d not in taken]
            if not free:
                raise ConfigError(f"PCI '{self.id}': no free slot for {config_space.name}")
            device = free[0]
        key = (bus, device, function)
        if key in self.functions:
            raise ConfigError(f"PCI '{self.id}': {config_space.name} wants "
                              f"{bus:02x}:{device:02x}.{function}, already taken by "
                              f"{self.functions[key].name}")
        if function:
            fn0 = self.functions.get((bus, device, 0))
            if fn0 is None or not fn0.read(HEADER_TYPE, 1) & HEADER_MULTIFUNCTION:
                raise V3Error(f"{config_space.name}: function {function} of device {device} "
                              f"needs a multi-function function 0")
        self.functions[key] = config_space
        config_space.address = key
        self.log.debug(f"{bus:02x}:{device:02x}.{function} {config_space.vendor:04x}:"
                       f"{config_space.device:04x} {config_space.name}")
        return device, function

    # -- interrupts ---------------------------------------------------------------------------
    def intx_line(self, cfg):
        """The level-triggered INTx output of function `cfg` (registered, INTERRUPT_PIN set)."""
        if not cfg.read(INTERRUPT_PIN, 1):
            raise V3Error(f"{cfg.name}: INTx needs an interrupt pin in its configuration space")
        cfg.write_hooks.append(lambda off, size, value: self._command_written(cfg, off, size))
        # the wiring is fixed (the slot and the read-only INTERRUPT_PIN): look it up once
        self._pirq[cfg] = self.pirq_of(cfg)
        return IntxLine(self, cfg)

    @staticmethod
    def pirq_of(cfg):
        """PIRQ (0-3 = A-D) that function `cfg`'s interrupt pin is wired to."""
        return (cfg.address[1] + cfg.read(INTERRUPT_PIN, 1) - 2) & 3

    def set_intx(self, cfg, level):
        self._intx[cfg] = level
        status = cfg.data[STATUS]
        cfg.data[STATUS] = (status | STATUS_INTERRUPT) if level else (status & ~STATUS_INTERRUPT)
        self._update_pirq(self._pirq[cfg])

    def _command_written(self, cfg, offset, size):
        if offset <= COMMAND + 1 and offset + size > COMMAND and self._intx.get(cfg):
            self._update_pirq(self._pirq[cfg])

    def _update_pirq(self, pirq):
        # the functions wired to one PIRQ are wired-OR (a disabled INTx drives nothing)
        level = 0
        pirqs = self._pirq
        for cfg, lv in self._intx.items():
            if lv and pirqs[cfg] == pirq and \
                    not cfg.data[COMMAND + 1] & (COMMAND_INTX_DISABLE >> 8):
                level = 1
                break
        if level == self._pirq_levels[pirq]:
            return
        self._pirq_levels[pirq] = level
        if self.intx_router is None:
            if level:
                raise Unimplemented(f"PCI '{self.id}': a function raised PIRQ{'ABCD'[pirq]} but "
                                    f"the board has no interrupt router (add a PIIX3)",
                                    device=self.id)
            return
        self.intx_router(pirq, level)

    def pirq_level(self, pirq):
        return self._pirq_levels[pirq]

    # -- configuration space (also the PCI BIOS's entry points) --------------------------------
    def read_config(self, bus, device, function, offset, size):
        cfg = self.functions.get((bus, device, function))
        if cfg is None:
            return (1 << (8 * size)) - 1       # no device: master abort, all ones
        return cfg.read(offset & 0xFF, size)

    def write_config(self, bus, device, function, offset, size, value):
        cfg = self.functions.get((bus, device, function))
        if cfg is not None:
            cfg.write(offset & 0xFF, size, value)

    def find_device(self, vendor, device, index=0):
        """(bus, device, function) of the index-th function with these IDs, or None."""
        hits = [k for k, c in sorted(self.functions.items())
                if c.vendor == vendor and c.device == device]
        return hits[index] if index < len(hits) else None

    def find_class(self, class_code, index=0):
        """(bus, device, function) of the index-th function of a 24-bit class code, or None."""
        hits = [k for k, c in sorted(self.functions.items()) if c.class_code == class_code]
        return hits[index] if index < len(hits) else None

    # -- ports ---------------------------------------------------------------------------------
    def _read_address(self, offset, size):
        if size == 4:
            return self.config_address
        return self._read_undecoded(offset, size)

    def _write_address(self, offset, size, value):
        if size == 4:
            self.config_address = value & ADDRESS_MASK
        else:
            self._write_undecoded(offset, size, value)

    def _read_undecoded(self, offset, size):
        return (1 << (8 * size)) - 1

    def _write_undecoded(self, offset, size, value):
        if self.log.on:
            self.log.debug(f"{size}-byte write {value:#x} near {CONFIG_ADDRESS:#x} "
                           f"(not a configuration cycle) dropped")

    def _target(self, offset):
        a = self.config_address
        return (a >> 16) & 0xFF, (a >> 11) & 0x1F, (a >> 8) & 0x7, (a & 0xFC) + offset

    def _read_data(self, offset, size):
        if not self.config_address & ADDRESS_ENABLE:
            return (1 << (8 * size)) - 1
        value = self.read_config(*self._target(offset), size)
        if self.log.on:
            self.log.debug(f"read  {self._fmt(offset)} size {size} -> {value:#x}")
        return value

    def _write_data(self, offset, size, value):
        if not self.config_address & ADDRESS_ENABLE:
            return
        if self.log.on:
            self.log.debug(f"write {self._fmt(offset)} size {size} <- {value:#x}")
        self.write_config(*self._target(offset), size, value)

    def _fmt(self, offset):
        bus, dev, fn, reg = self._target(offset)
        return f"{bus:02x}:{dev:02x}.{fn} reg {reg:#04x}"

    def _read_rcr(self, offset, size):
        return self.rcr

    def _write_rcr(self, offset, size, value):
        self.rcr = value & (RCR_SYS_RESET | RCR_FULL_RESET)
        if value & RCR_RESET_CPU:
            kind = "hard" if value & RCR_SYS_RESET else "soft"
            self.log.info(f"reset requested through port {RESET_CONTROL:#x} ({kind})")
            self.ctx.request("reset")


def bus_option(spec, class_name):
    """The <bus> option of a device that sits on a PCI bus: the id of its PCI device."""
    bus = spec.value("bus")
    if not bus:
        raise ConfigError(f"{spec.where()}: {class_name} '{spec.id}' needs <bus> (the PCI device id)")
    return bus


def find_pci_bus(ctx, bus_id, owner):
    """The PciBus named by a device's <bus> option (`owner` is the device asking)."""
    pci = ctx.find_device(bus_id, wanted_by=owner.id)
    if not isinstance(pci, PciBus):
        raise ConfigError(f"{owner.CLASS_NAME} '{owner.id}': <bus>{bus_id}</bus> is a "
                          f"{pci.CLASS_NAME}, not a PCI bus")
    return pci


class IntxLine:
    """A PCI function's INTx output: `set(level)`, `raise_()`, `lower()` (level-triggered);
    `set(level, urgent=False)` for an interrupt that may wait for the next exit (vmm/irq.py)."""

    __slots__ = ("bus", "cfg", "level")

    def __init__(self, bus, cfg):
        self.bus = bus
        self.cfg = cfg
        self.level = 0

    def set(self, level, urgent=True):
        level = 1 if level else 0
        if level != self.level:
            self.level = level
            irq.deliver(self.bus.set_intx, (self.cfg, level), urgent)

    def raise_(self):
        self.set(1)

    def lower(self):
        self.set(0)


class BarDecoder:
    """Maps a function's BARs on the buses while decoding is enabled. `handlers` maps a BAR
    index to (read, write, widths), (read, write, widths, blocks) or (read, write, widths,
    blocks, fast): the device's register handlers, called with offsets, its block ports and
    its register fast path in C, if it has one (vmm/bus.py)."""

    # What it maps follows from the configuration space (BARs, COMMAND), which a snapshot
    # saves: the decoder itself is wiring, and `update()` after a restore maps the BARs again.
    SNAPSHOT_WIRING = True

    def __init__(self, ctx, cfg, owner, handlers):
        self.ctx = ctx
        self.cfg = cfg
        self.owner = owner
        self.handlers = handlers
        self.mapped = {}              # index -> (bus, range)
        cfg.on_bar_change = lambda index, base: self.update()
        cfg.write_hooks.append(self._written)

    def _written(self, offset, size, value):
        if offset <= COMMAND + 1 and offset + size > COMMAND:
            self.update()

    def update(self):
        command = self.cfg.read(COMMAND, 2)
        for index, (read, write, widths, *extra) in self.handlers.items():
            size = self.cfg.bar_sizes[index]
            io = bool(self.cfg.read(BAR0 + 4 * index, 4) & BAR_IO)
            base = self.cfg.bar(index)
            enabled = command & (COMMAND_IO if io else COMMAND_MEMORY)
            bus = self.ctx.io if io else self.ctx.mmio
            want = None
            if enabled and base and base + size <= bus.limit:
                want = (bus, base)
            cur = self.mapped.get(index)
            if cur is not None and want == (cur[0], cur[1].base):
                continue
            if cur is not None:
                cur[0].detach(cur[1])
                del self.mapped[index]
            if want is not None:
                try:
                    rng = bus.attach(base, size, read, write,
                                     owner=f"{self.owner} (BAR{index})", widths=widths,
                                     blocks=extra[0] if extra else None,
                                     fast=extra[1] if len(extra) > 1 else None)
                except V3Error as exc:
                    raise Unimplemented(f"{self.owner}: BAR{index} programmed to {base:#x}: "
                                        f"{exc}", device=self.owner)
                self.mapped[index] = (bus, rng)

    def unmap(self):
        for bus, rng in self.mapped.values():
            bus.detach(rng)
        self.mapped.clear()
