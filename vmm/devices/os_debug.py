"""OS_DEBUG: Palacios' guest OS debug ports.

PORT C0C0 - character output, line-buffered to the VMM log (any width; the low byte counts)
PORT 0099 - heartbeat: each value written is logged

Both ports are write-only; reads return all ones (nothing drives the bus). Palacios' OS_DEBUG
also registers a hypercall (0xc0c0) that prints a guest buffer; this VMM has no hypercall
interface, so it is not provided.
"""
from vmm.devices import register
from vmm.devices.base import Device
from vmm.devices.bochs_debug import LineBuffer

DEBUG_PORT = 0xC0C0
HEARTBEAT_PORT = 0x99


@register("OS_DEBUG")
class OsDebug(Device):
    def __init__(self, dev_id):
        super().__init__(dev_id)
        self.console = LineBuffer(lambda line: self.log.info(f"VM console> {line}"))

    def attach(self, ctx):
        ctx.io.attach(DEBUG_PORT, 1, self._read_float, self._write_char,
                      owner=f"{self.id} (console)", widths=(1, 2, 4))
        ctx.io.attach(HEARTBEAT_PORT, 1, self._read_float, self._write_heartbeat,
                      owner=f"{self.id} (heartbeat)", widths=(1, 2, 4))

    def reset(self):
        self.console.buf.clear()

    def _write_char(self, offset, size, value):
        self.console.put(value & 0xFF)

    def _write_heartbeat(self, offset, size, value):
        self.log.info(f"heartbeat> {value:#x} ({value})")

    def _read_float(self, offset, size):
        return (1 << (8 * size)) - 1
