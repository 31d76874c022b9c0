"""The built-in BIOS: high-level emulation in Python behind a real ROM image in guest memory.

`Bios(ctx, options).rom()` is the 64 KiB image the core copies to physical 0xF0000. Every BIOS
entry point in it is a trap stub: an `int3` (0xCC) the core intercepts, followed by ordinary
8086 code (usually just `iret`). The core asks `trap_service(linear)` for the Python function
behind an `int3` at a ROM address and calls it with a `BiosCall` (registers, the caller's
flags, memory); the stub then continues after the `int3`. See docs/bios.md for the layout, the
services implemented and the "unsupported" answers given to functions boot loaders probe.

A service that must wait for the guest's time to pass (INT 16h AH=00h with an empty keyboard
buffer, INT 15h AH=86h) raises `BiosWait`: the core idles the guest with interrupts enabled and
re-executes the trap after the next interrupt or at `until_ns`.
"""
from vmm.bios import bda
from vmm.bios.errors import BiosWait, NoBootableDevice, BootFailed
from vmm.bios.rom import RomImage, ROM_BASE
from vmm.bios.post import Post
from vmm.bios.int10 import Video
from vmm.bios.int13 import DiskServices
from vmm.bios.int15 import SystemServices
from vmm.bios.int16 import Keyboard
from vmm.bios.int1a import TimeServices
from vmm.bios.misc import MiscServices


class BiosOptions:
    def __init__(self, bios_console_serial=False):
        self.bios_console_serial = bios_console_serial


class Bios:
    """The BIOS of one board. `options` is any object with `bios_console_serial` (or None)."""

    def __init__(self, ctx, options=None):
        self.ctx = ctx
        self.options = options if options is not None else BiosOptions()
        self.log = ctx.vmmlog.component("bios")
        self.image = RomImage()
        self.video = Video(self)
        self.disks = DiskServices(self)
        self.system = SystemServices(self)
        self.keyboard = Keyboard(self)
        self.time = TimeServices(self)
        self.misc = MiscServices(self)
        self.post = Post(self)
        self._services = {}
        for name, linear in self.image.traps.items():
            self._services[linear] = _named(self._handler(name), name)

    # -- the core's interface ------------------------------------------------------------------
    def rom(self):
        """The 64 KiB image for physical 0xF0000-0xFFFFF."""
        return self.image.data

    def trap_service(self, linear):
        """The Python service behind the `int3` at `linear`, or None if it is not a BIOS trap."""
        return self._services.get(linear)

    # -- plumbing ------------------------------------------------------------------------------
    def _handler(self, name):
        table = {
            "post": self.post.service,
            "int10": self.video.service,
            "int13": self.disks.service,
            "int15": self.system.service,
            "int16": self.keyboard.service,
            "int09": self.keyboard.irq1,
            "int1a": self.time.service,
            "int08": self.time.tick,
            "int11": self.misc.int11,
            "int12": self.misc.int12,
            "int14": self.misc.int14,
            "int17": self.misc.int17,
            "int18": self.misc.int18,
            "int19": self.misc.int19,
            "int40": self.disks.service,
            "divide_error": self.misc.divide_error,
            "invalid_opcode": self.misc.invalid_opcode,
        }
        return table[name]

    # memory helpers used by every service (physical addresses)
    def rd8(self, addr):
        return self.ctx.mem.read(addr, 1)[0]

    def rd16(self, addr):
        return int.from_bytes(self.ctx.mem.read(addr, 2), "little")

    def rd32(self, addr):
        return int.from_bytes(self.ctx.mem.read(addr, 4), "little")

    def wr8(self, addr, value):
        self.ctx.mem.write(addr, bytes((value & 0xFF,)))

    def wr16(self, addr, value):
        self.ctx.mem.write(addr, (value & 0xFFFF).to_bytes(2, "little"))

    def wr32(self, addr, value):
        self.ctx.mem.write(addr, (value & 0xFFFFFFFF).to_bytes(4, "little"))


def _named(fn, name):
    """The service as the core sees it: `vector` (for "INT 13h AH=42h" telemetry) and a name."""
    def service(call):
        return fn(call)
    service.__name__ = name
    service.vector = int(name[3:], 16) if name.startswith("int") else None
    return service


__all__ = ["Bios", "BiosOptions", "BiosWait", "NoBootableDevice", "BootFailed", "ROM_BASE", "bda"]
