"""BOCHS_DEBUG: the Bochs BIOS debug ports, as Palacios' bochs_debug device hooks them.

PORT 0400-0401 - BIOS panic (rombios writes the source line of a BX_PANIC)
PORT 0402      - BIOS info message output, one character per write
PORT 0403      - BIOS debug message output, one character per write
PORT 00E9      - Bochs "port E9 hack" console output, one character per write

Character ports are line-buffered and printed to the VMM log (always, like Palacios' V3_Print
for the console port); like Palacios, any access width is accepted and its low byte is the
character. Reads: 0xE9 and 0x402 return 0xE9, the value the Bochs/QEMU debug consoles return so
a guest can detect them; the panic and debug ports are write-only and read 0xFF (nothing drives
the bus).
"""
from vmm.devices import register
from vmm.devices.base import Device

PANIC_PORT = 0x400          # and 0x401
INFO_PORT = 0x402
DEBUG_PORT = 0x403
CONSOLE_PORT = 0xE9
DETECT_VALUE = 0xE9         # what a read of the console ports returns
LINE_MAX = 1024             # flush a line this long even without a newline (Palacios' BUF_SIZE)


class LineBuffer:
    """Collects characters and hands complete lines to `emit(str)`."""

    def __init__(self, emit):
        self.emit = emit
        self.buf = bytearray()

    def put(self, byte):
        if byte == 0x0A:
            self.flush()
        elif byte != 0x0D:
            self.buf.append(byte)
            if len(self.buf) >= LINE_MAX:
                self.flush()

    def flush(self):
        self.emit(self.buf.decode("latin-1"))
        self.buf.clear()


@register("BOCHS_DEBUG")
class BochsDebug(Device):
    def __init__(self, dev_id):
        super().__init__(dev_id)
        self.info = LineBuffer(lambda line: self.log.info(f"BIOS info> {line}"))
        self.debug = LineBuffer(lambda line: self.log.info(f"BIOS debug> {line}"))
        self.console = LineBuffer(lambda line: self.log.info(f"port 0xe9> {line}"))

    def attach(self, ctx):
        w = (1, 2, 4)
        ctx.io.attach(PANIC_PORT, 2, self._read_float, self._write_panic,
                      owner=f"{self.id} (panic)", widths=w)
        ctx.io.attach(INFO_PORT, 1, self._read_detect, self._char_writer(self.info),
                      owner=f"{self.id} (info)", widths=w)
        ctx.io.attach(DEBUG_PORT, 1, self._read_float, self._char_writer(self.debug),
                      owner=f"{self.id} (debug)", widths=w)
        ctx.io.attach(CONSOLE_PORT, 1, self._read_detect, self._char_writer(self.console),
                      owner=f"{self.id} (console)", widths=w)

    def reset(self):
        for lb in (self.info, self.debug, self.console):
            lb.buf.clear()

    @staticmethod
    def _char_writer(line_buffer):
        def write(offset, size, value):
            line_buffer.put(value & 0xFF)
        return write

    def _write_panic(self, offset, size, value):
        self.log.info(f"BIOS panic (port {PANIC_PORT + offset:#x}): {value:#x} ({value})")

    def _read_detect(self, offset, size):
        return DETECT_VALUE

    def _read_float(self, offset, size):
        return (1 << (8 * size)) - 1
