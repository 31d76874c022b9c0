"""Per-component debug output, the runtime form of Palacios' DEBUG_* switches.

`--debug pic,pit,io,...` enables components; every device gets a `ComponentLog` whose `on`
attribute is checked before formatting, so disabled components cost one attribute read.
"""
import sys
import time

COMPONENTS = (
    "pic", "pit", "nvram", "keyboard", "serial", "io", "ide", "pci",
    "bios", "interrupts", "exceptions", "config", "generic", "debugport", "run", "memory",
    "apic", "acpi", "hpet", "msr", "boot",
)


class VMMLog:
    """The VMM's own log (stderr or --log FILE), never the guest's serial output."""

    def __init__(self, stream=None, enabled=()):
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = set()
        self.t0 = time.monotonic()
        self.enable(enabled)

    def enable(self, components):
        for c in components:
            c = c.strip().lower()
            if not c:
                continue
            if c == "all":
                self.enabled.update(COMPONENTS)
            else:
                self.enabled.add(c)

    def component(self, name):
        return ComponentLog(self, name)

    def write(self, component, msg):
        self.stream.write(f"[{time.monotonic() - self.t0:9.4f}] {component}: {msg}\n")
        self.stream.flush()


class ComponentLog:
    __slots__ = ("vmmlog", "name", "on")

    def __init__(self, vmmlog, name):
        self.vmmlog = vmmlog
        self.name = name
        self.on = name in vmmlog.enabled

    def debug(self, msg):
        if self.on:
            self.vmmlog.write(self.name, msg)

    def info(self, msg):
        """Always printed (device output such as BOCHS_DEBUG, notes worth seeing once)."""
        self.vmmlog.write(self.name, msg)
