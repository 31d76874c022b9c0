"""The board context: what devices see of the machine.

It holds the two buses, the interrupt lines, the clock and timer queue, guest memory, the
device table (for references by id), the guest image's files, the console (COM1 sink and
source) and the machine-level requests (reset, power off, A20). `vmm.machine.Machine` builds
one around a CPU; device unit tests build one with `BytesMemory` and `ManualClock` and no CPU.
"""
import threading

from v3tools.errors import ConfigError
from vmm.bus import Bus
from vmm.clock import Clock, Timers
from vmm.irq import IrqLine
from vmm.log import VMMLog


class BytesMemory:
    """Guest-physical memory backed by a bytearray (tests, and the BIOS's own unit tests)."""

    def __init__(self, size):
        self.data = bytearray(size)

    def read(self, addr, size):
        return bytes(self.data[addr:addr + size])

    def write(self, addr, data):
        self.data[addr:addr + len(data)] = data

    def raw_access(self):
        """For devices' frame paths in C (vmm/memory.py GuestMemory.raw_access): the bytearray
        itself, written in place."""
        return (self.data, len(self.data), 0, 0)


class Console:
    """Where the guest's COM1 goes (`write(bytes)`) and what it receives (`read_available()`)."""

    def __init__(self, sink=None):
        self.sink = sink            # a binary file object or None
        self.captured = bytearray()  # the recent output, for --until and tests
        self.input = bytearray()
        self.listeners = []         # callables(bytes) e.g. the --until watcher
        self._lock = threading.Lock()

    CAPTURE_LIMIT = 1 << 20         # keep the last 1 MiB of output (for --until and tests)

    def write(self, data):
        self.captured += data
        if len(self.captured) > 2 * self.CAPTURE_LIMIT:
            del self.captured[:-self.CAPTURE_LIMIT]
        if self.sink is not None:
            self.sink.write(data)
            self.sink.flush()
        for fn in self.listeners:
            fn(data)

    def feed(self, data):
        """Input for the guest (may be called from another thread)."""
        with self._lock:
            self.input += data

    def read_available(self):
        if not self.input:
            return b""
        with self._lock:
            data = bytes(self.input)
            self.input.clear()
        return data


class BoardContext:
    def __init__(self, memory=None, clock=None, log=None, console=None, files=None):
        self.io = Bus("port", 0x10000)
        self.mmio = Bus("mmio", 1 << 32)
        self.clock = clock or Clock()
        self.timers = Timers(self.clock)
        self.mem = memory if memory is not None else BytesMemory(1 << 20)
        self.vmmlog = log or VMMLog()
        self.console = console or Console()
        self.files = files or {}              # guest image file id -> bytes-like
        self.devices = {}                     # id -> Device, in creation order
        self.intc = None                      # what the CPU asks for interrupts (8259A or LAPIC)
        self.legacy_intc = None               # the 8259A pair
        self.lapic = None                     # the local APIC
        self.ioapic = None                    # the I/O APIC (PCI INTx routing reaches it here)
        self.irq_listeners = []               # other sinks of the ISA lines (the IOAPIC)
        self.replaced_lines = {}              # ISA line -> its source's level, while the HPET
                                              # has replaced that source (legacy replacement)
        self.hpet = None                      # the HPET (the ACPI HPET table describes it)
        self._lines = {}
        self.ack_listeners = {}               # line -> callbacks run when the CPU takes it
        self.pending_irq_events = []          # (line, level) seen before an intc was attached
        self.disk_snapshot = False            # -snapshot: host files behind disks are never written
        self.requests = []                    # "reset", "poweroff", "quit" ... (run loop)
        self.a20 = True
        self.a20_listeners = []
        self.stop_requested = None            # callable set by the machine: interrupt the CPU now
        self.serial_ports = {}                # "COM1" -> serial device, for the BIOS
        self.drives = []                      # vmm.media.Drive: what is attached where (BIOS)
        self.memory_size = len(getattr(self.mem, "data", b""))  # guest RAM bytes (set by machine)
        self.boot_order = ["cdrom", "disk", "floppy"]
        self.pci_bus = None                   # the PCI device registers itself here
        self.cpuid = None                     # the CPUID policy (firmware tables read it)
        self.firmware_tables = None           # vmm.tables.TableArea once the board is built

    # -- devices -------------------------------------------------------------------------------
    def add_device(self, dev):
        if dev.id in self.devices:
            raise ConfigError(f"duplicate device id '{dev.id}'")
        self.devices[dev.id] = dev
        dev.log = self.vmmlog.component(_component_of(dev))
        dev.attach(self)
        return dev

    def find_device(self, dev_id, wanted_by=None):
        dev = self.devices.get(dev_id)
        if dev is None:
            who = f"device '{wanted_by}' refers to " if wanted_by else ""
            raise ConfigError(f"{who}device '{dev_id}', which is not defined before it")
        return dev

    def devices_of(self, cls):
        return [d for d in self.devices.values() if isinstance(d, cls)]

    # -- interrupts ----------------------------------------------------------------------------
    # ISA lines (ctx.irq(n), 0-15) go to the 8259A pair and to every other listener (the
    # IOAPIC's ISA inputs). The CPU asks `ctx.intc` for interrupts: the 8259A on a PIC-only
    # board; the LAPIC when there is one (the 8259A then reaches the CPU through the LAPIC's
    # LINT0 in ExtINT mode, the virtual-wire wiring of the MP specification).
    def irq(self, number):
        """The IrqLine for ISA interrupt line `number` (0-15)."""
        line = self._lines.get(number)
        if line is None:
            line = self._lines[number] = IrqLine(number, self._irq_sink)
        return line

    def _irq_sink(self, number, level):
        if number in self.replaced_lines:
            # cut from its ISA source (HPET legacy replacement): remember the level only
            self.replaced_lines[number] = level
            return
        self._deliver_isa(number, level)

    def replace_isa_line(self, number, enabled):
        """HPET legacy replacement: while enabled, line `number`'s ISA source (the PIT for 0,
        the RTC for 8) no longer reaches the interrupt controllers; `replacement_line(number)`
        drives it instead. Disabling gives the line back to its source at the source's level."""
        if enabled and number not in self.replaced_lines:
            self.replaced_lines[number] = self.irq(number).level
            self._deliver_isa(number, 0)
        elif not enabled and number in self.replaced_lines:
            del self.replaced_lines[number]
            self._deliver_isa(number, self.irq(number).level)

    def replacement_line(self, number):
        """The IrqLine a replacing device (the HPET) drives ISA line `number` with."""
        return IrqLine(number, self._deliver_isa)

    def _deliver_isa(self, number, level):
        pic = self.legacy_intc
        if pic is None and not self.irq_listeners:
            self.pending_irq_events.append((number, level))
            return
        if pic is not None:
            pic.set_irq(number, level)
        for listener in self.irq_listeners:
            listener(number, level)
        if level and self.stop_requested is not None:
            self.stop_requested()

    def on_acknowledge(self, number, callback):
        """Call `callback()` whenever the CPU takes (acknowledges) an interrupt from line
        `number`: sources that owe the guest interrupts (a late timer) hand over the next one."""
        self.ack_listeners.setdefault(number, []).append(callback)

    def acknowledged(self, number):
        """Called by the interrupt controller on INTA for line `number`."""
        for callback in self.ack_listeners.get(number, ()):
            callback()

    def set_interrupt_controller(self, intc):
        """The 8259A registers itself: set_irq(n, level), has_interrupt() -> bool,
        acknowledge() -> vector, is_requested(n)."""
        self.legacy_intc = intc
        if self.lapic is None:
            self.intc = intc
        else:
            self.lapic.extint_source = intc
        self._replay_irq_events()

    def set_local_apic(self, lapic):
        """The LAPIC registers itself: it becomes what the CPU asks for interrupts, and the
        8259A (if any) its ExtINT source."""
        self.lapic = lapic
        lapic.extint_source = self.legacy_intc
        self.intc = lapic

    def add_irq_listener(self, listener):
        """listener(number, level) sees every ISA line change (the IOAPIC's ISA inputs)."""
        self.irq_listeners.append(listener)
        self._replay_irq_events()

    def _replay_irq_events(self):
        events, self.pending_irq_events = self.pending_irq_events, []
        for number, level in events:
            self._irq_sink(number, level)

    # -- machine requests ----------------------------------------------------------------------
    def request(self, what):
        """'reset' (keyboard controller 0xFE, port 0xCF9, triple fault), 'poweroff', or from
        the host: 'quit' (the console's Ctrl-A x), 'signal N' (the VMM process got signal N)."""
        self.requests.append(what)
        if self.stop_requested is not None:
            self.stop_requested()

    def set_a20(self, enabled):
        enabled = bool(enabled)
        if enabled != self.a20:
            self.a20 = enabled
            for fn in self.a20_listeners:
                fn(enabled)


def _component_of(dev):
    name = dev.CLASS_NAME.upper()
    return {
        "8259A": "pic", "8254_PIT": "pit", "NVRAM": "nvram", "KEYBOARD": "keyboard",
        "SERIAL": "serial", "BOCHS_DEBUG": "debugport", "OS_DEBUG": "debugport",
        "GENERIC": "generic", "PCI": "pci", "I440FX": "pci", "PIIX3": "pci", "IDE": "ide",
        "RAMDISK": "ide", "FILEDISK": "ide", "LAPIC": "apic", "IOAPIC": "apic",
        "MPTABLE": "config", "ACPI": "acpi", "HPET": "hpet",
    }.get(name, name.lower())
